//! Text extraction: bytes of a document → plain text.
//!
//! # Behaviour
//! - The type is detected from the content type, then the key's extension,
//!   then the first bytes (`%PDF-`, a zip holding `word/document.xml`, text).
//!   A declared type the bytes contradict (a "PDF" without a PDF header) is
//!   `invalid_document`, never a panic.
//! - Plain text, Markdown, HTML (scripts, styles and `<head>` dropped, via
//!   `html2text`), PDF (`lopdf`, at most [`ExtractLimits::max_pages`] pages),
//!   DOCX (`zip` + `quick-xml`), CSV (one line per row, cells joined by
//!   ` | `), JSON (every string value, with its path) are extracted; any
//!   other type is `unsupported_type`.
//! - A 0-byte file is `empty_document`: a knowledge-base document with no
//!   text is almost always a failed upload, and saying so is clearer than
//!   an "indexed" document with no chunks.
//! - Bounds: file size (`document_too_large`), PDF pages (only the first
//!   `max_pages` are read), zip entries, total uncompressed size and
//!   compression ratio (`zip_bomb`), extracted text length (cut at
//!   `max_text_bytes`), and wall time (`extraction_timeout`; checked
//!   between pages and entries, and by [`extract_with_timeout`]).

use std::io::{Cursor, Read};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_core::{Error, Result};

/// What kind of document a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
    Csv,
    Json,
}

impl DocKind {
    /// The canonical content type of this kind.
    pub fn content_type(self) -> &'static str {
        match self {
            DocKind::Text => "text/plain",
            DocKind::Markdown => "text/markdown",
            DocKind::Html => "text/html",
            DocKind::Pdf => "application/pdf",
            DocKind::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            DocKind::Csv => "text/csv",
            DocKind::Json => "application/json",
        }
    }

    fn from_content_type(ct: &str) -> Option<Self> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        Some(match essence.as_str() {
            "text/plain" => DocKind::Text,
            "text/markdown" | "text/x-markdown" => DocKind::Markdown,
            "text/html" | "application/xhtml+xml" => DocKind::Html,
            "application/pdf" => DocKind::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                DocKind::Docx
            }
            "text/csv" => DocKind::Csv,
            "application/json" => DocKind::Json,
            _ => return None,
        })
    }

    fn from_extension(key: &str) -> Option<Self> {
        let name = key.rsplit('/').next().unwrap_or(key);
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext.to_ascii_lowercase().as_str() {
            "txt" | "text" | "log" => DocKind::Text,
            "md" | "markdown" | "mdx" => DocKind::Markdown,
            "html" | "htm" | "xhtml" => DocKind::Html,
            "pdf" => DocKind::Pdf,
            "docx" => DocKind::Docx,
            "csv" => DocKind::Csv,
            "json" => DocKind::Json,
            _ => return None,
        })
    }
}

/// Bounds of one extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// PDF pages read (later pages are left out).
    pub max_pages: usize,
    /// Entries a zip-based document may hold.
    pub max_zip_entries: usize,
    /// Total uncompressed bytes of the entries read from a zip.
    pub max_uncompressed_bytes: u64,
    /// Largest uncompressed/compressed ratio of a zip entry.
    pub max_compression_ratio: u64,
    /// Extracted text is cut at this many bytes.
    pub max_text_bytes: usize,
    /// Wall time of one extraction.
    pub timeout: Duration,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_file_bytes: 64 * 1024 * 1024,
            max_pages: 2_000,
            max_zip_entries: 10_000,
            max_uncompressed_bytes: 256 * 1024 * 1024,
            max_compression_ratio: 100,
            max_text_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The text of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedText {
    pub text: String,
    pub kind: DocKind,
    /// Pages of a PDF (all of them, also when only the first were read).
    pub pages: Option<usize>,
    /// Whether a bound cut the text short.
    pub truncated: bool,
}

fn failed(code: &'static str, msg: impl Into<String>) -> Error {
    Error::invalid(msg).with_code(code)
}

/// Decides the kind of a document (see the module documentation).
pub fn detect(bytes: &[u8], content_type: &str, key: &str) -> Result<DocKind> {
    let declared =
        DocKind::from_content_type(content_type).or_else(|| DocKind::from_extension(key));
    if let Some(kind) = declared {
        return Ok(kind);
    }
    let ct = content_type.trim();
    let generic = ct.is_empty()
        || ct.starts_with("application/octet-stream")
        || ct.starts_with("binary/octet-stream");
    if !generic && !ct.starts_with("text/") {
        return Err(unsupported(key, ct));
    }
    if bytes.starts_with(b"%PDF-") {
        return Ok(DocKind::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return if zip_has_entry(bytes, "word/document.xml") {
            Ok(DocKind::Docx)
        } else {
            Err(unsupported(key, "a zip archive that is not a DOCX"))
        };
    }
    let sample = &bytes[..bytes.len().min(8192)];
    let valid_prefix = match std::str::from_utf8(sample) {
        Ok(_) => true,
        // A sample cut inside a multi-byte character is still text.
        Err(e) => e.error_len().is_none(),
    };
    if valid_prefix && !sample.contains(&0) {
        return Ok(DocKind::Text);
    }
    Err(unsupported(
        key,
        if ct.is_empty() { "binary data" } else { ct },
    ))
}

fn unsupported(key: &str, what: &str) -> Error {
    failed(
        "unsupported_type",
        format!(
            "{key}: {what} is not a supported document type (text, Markdown, HTML, PDF, DOCX, CSV, JSON)"
        ),
    )
}

fn zip_has_entry(bytes: &[u8], name: &str) -> bool {
    zip::ZipArchive::new(Cursor::new(bytes))
        .map(|z| z.index_for_name(name).is_some())
        .unwrap_or(false)
}

/// Extracts the text of a document, synchronously (run it on a blocking
/// thread: PDF parsing is CPU-bound).
pub fn extract(
    bytes: &[u8],
    content_type: &str,
    key: &str,
    limits: &ExtractLimits,
) -> Result<ExtractedText> {
    let deadline = Instant::now() + limits.timeout;
    if bytes.is_empty() {
        return Err(failed(
            "empty_document",
            format!("{key}: the file is empty (0 bytes)"),
        ));
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(failed(
            "document_too_large",
            format!(
                "{key}: {} bytes is over the extraction limit of {} bytes",
                bytes.len(),
                limits.max_file_bytes
            ),
        ));
    }
    let kind = detect(bytes, content_type, key)?;
    let mut pages = None;
    let text = match kind {
        DocKind::Text | DocKind::Markdown => utf8(bytes, key)?.to_owned(),
        DocKind::Html => html_text(bytes, key)?,
        DocKind::Csv => csv_text(bytes, key, limits)?,
        DocKind::Json => json_text(bytes, key, limits)?,
        DocKind::Pdf => {
            let (t, n) = pdf_text(bytes, key, limits, deadline)?;
            pages = Some(n);
            t
        }
        DocKind::Docx => docx_text(bytes, key, limits, deadline)?,
    };
    let (text, cut) = truncate(text, limits.max_text_bytes);
    let truncated = cut || pages.is_some_and(|n| n > limits.max_pages);
    Ok(ExtractedText {
        text,
        kind,
        pages,
        truncated,
    })
}

/// [`extract`] on a blocking thread, bounded by `limits.timeout`. A parser
/// that overruns is abandoned (it stops at its next deadline check).
pub async fn extract_with_timeout(
    bytes: bytes::Bytes,
    content_type: String,
    key: String,
    limits: ExtractLimits,
) -> Result<ExtractedText> {
    let k = key.clone();
    let task = tokio::task::spawn_blocking(move || extract(&bytes, &content_type, &key, &limits));
    match tokio::time::timeout(limits.timeout + Duration::from_secs(1), task).await {
        Err(_) => Err(timeout_error(&k, limits.timeout)),
        Ok(Err(join)) => Err(failed(
            "invalid_document",
            format!("{k}: the document could not be parsed (the parser failed: {join})"),
        )),
        Ok(Ok(r)) => r,
    }
}

fn timeout_error(key: &str, t: Duration) -> Error {
    failed(
        "extraction_timeout",
        format!("{key}: extraction took longer than {} s", t.as_secs()),
    )
}

fn check_deadline(deadline: Instant, key: &str, limits: &ExtractLimits) -> Result<()> {
    if Instant::now() > deadline {
        Err(timeout_error(key, limits.timeout))
    } else {
        Ok(())
    }
}

fn truncate(mut text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

fn utf8<'a>(bytes: &'a [u8], key: &str) -> Result<&'a str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        failed(
            "invalid_document",
            format!(
                "{key}: the text is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ),
        )
    })
}

fn html_text(bytes: &[u8], key: &str) -> Result<String> {
    html2text::config::plain_no_decorate()
        .string_from_read(bytes, usize::MAX / 4)
        .map_err(|e| {
            failed(
                "invalid_document",
                format!("{key}: the HTML could not be read: {e}"),
            )
        })
}

fn csv_text(bytes: &[u8], key: &str, limits: &ExtractLimits) -> Result<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(utf8(bytes, key)?.as_bytes());
    let mut out = String::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            failed(
                "invalid_document",
                format!("{key}: the CSV could not be read at row {}: {e}", i + 1),
            )
        })?;
        let cells: Vec<&str> = record
            .iter()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if !cells.is_empty() {
            out.push_str(&cells.join(" | "));
            out.push('\n');
        }
        if out.len() > limits.max_text_bytes {
            break;
        }
    }
    Ok(out)
}

fn json_text(bytes: &[u8], key: &str, limits: &ExtractLimits) -> Result<String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        failed(
            "invalid_document",
            format!("{key}: the JSON could not be parsed: {e}"),
        )
    })?;
    let mut out = String::new();
    flatten_json(&value, &mut String::new(), &mut out, limits.max_text_bytes);
    Ok(out)
}

/// Appends `path: string` lines for every string (and number/bool) leaf.
fn flatten_json(v: &Value, path: &mut String, out: &mut String, max: usize) {
    if out.len() > max {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                flatten_json(child, path, out, max);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for child in a {
                flatten_json(child, path, out, max);
            }
        }
        Value::String(s) => push_leaf(out, path, s),
        Value::Number(n) => push_leaf(out, path, &n.to_string()),
        Value::Bool(b) => push_leaf(out, path, if *b { "true" } else { "false" }),
        Value::Null => {}
    }
}

fn push_leaf(out: &mut String, path: &str, s: &str) {
    if s.trim().is_empty() {
        return;
    }
    if !path.is_empty() {
        out.push_str(path);
        out.push_str(": ");
    }
    out.push_str(s);
    out.push('\n');
}

fn pdf_text(
    bytes: &[u8],
    key: &str,
    limits: &ExtractLimits,
    deadline: Instant,
) -> Result<(String, usize)> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(failed(
            "invalid_document",
            format!("{key}: this is not a PDF (the file does not start with %PDF-)"),
        ));
    }
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| {
        failed(
            "invalid_document",
            format!("{key}: the PDF could not be parsed: {e}"),
        )
    })?;
    if doc.is_encrypted() {
        return Err(failed(
            "invalid_document",
            format!("{key}: the PDF is encrypted"),
        ));
    }
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let per_page_limit = usize::try_from(limits.max_uncompressed_bytes).unwrap_or(usize::MAX);
    let mut text = String::new();
    for page in pages.iter().take(limits.max_pages) {
        check_deadline(deadline, key, limits)?;
        match doc.extract_text_with_limit(&[*page], per_page_limit) {
            Ok(t) => {
                text.push_str(&t);
                if !t.ends_with('\n') {
                    text.push('\n');
                }
            }
            Err(e) => {
                // A page whose text cannot be decoded is left out; the rest
                // of the document is still worth indexing.
                tracing::debug!(key, page, error = %e, "PDF page text could not be extracted");
            }
        }
        if text.len() > limits.max_text_bytes {
            break;
        }
    }
    Ok((text, pages.len()))
}

fn docx_text(bytes: &[u8], key: &str, limits: &ExtractLimits, deadline: Instant) -> Result<String> {
    let bad_zip = |e: zip::result::ZipError| {
        failed(
            "invalid_document",
            format!("{key}: the DOCX is not a valid zip archive: {e}"),
        )
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(bad_zip)?;
    if archive.len() > limits.max_zip_entries {
        return Err(failed(
            "zip_bomb",
            format!(
                "{key}: the DOCX holds {} entries, more than the limit of {}",
                archive.len(),
                limits.max_zip_entries
            ),
        ));
    }
    // Declared sizes first (cheap), then the real size while reading.
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(bad_zip)?;
        declared = declared.saturating_add(entry.size());
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        check_ratio(key, &name, entry.size(), entry.compressed_size(), limits)?;
    }
    if declared > limits.max_uncompressed_bytes {
        return Err(bomb_size(key, declared, limits));
    }
    check_deadline(deadline, key, limits)?;
    let mut entry = archive.by_name("word/document.xml").map_err(|_| {
        failed(
            "invalid_document",
            format!("{key}: the DOCX has no word/document.xml"),
        )
    })?;
    let compressed = entry.compressed_size();
    let mut xml = Vec::new();
    (&mut entry)
        .take(limits.max_uncompressed_bytes + 1)
        .read_to_end(&mut xml)
        .map_err(|e| {
            failed(
                "invalid_document",
                format!("{key}: word/document.xml could not be decompressed: {e}"),
            )
        })?;
    if xml.len() as u64 > limits.max_uncompressed_bytes {
        return Err(bomb_size(key, xml.len() as u64, limits));
    }
    check_ratio(
        key,
        "word/document.xml",
        xml.len() as u64,
        compressed,
        limits,
    )?;
    check_deadline(deadline, key, limits)?;
    let xml = std::str::from_utf8(&xml).map_err(|_| {
        failed(
            "invalid_document",
            format!("{key}: word/document.xml is not UTF-8"),
        )
    })?;
    docx_xml_text(xml, key, limits)
}

fn check_ratio(
    key: &str,
    name: &str,
    size: u64,
    compressed: u64,
    limits: &ExtractLimits,
) -> Result<()> {
    // Tiny entries compress arbitrarily well; only judge those over 1 MiB.
    if size > 1024 * 1024 && size / compressed.max(1) > limits.max_compression_ratio {
        return Err(failed(
            "zip_bomb",
            format!(
                "{key}: entry {name} expands {}x ({size} bytes from {compressed}), over the limit of {}x",
                size / compressed.max(1),
                limits.max_compression_ratio
            ),
        ));
    }
    Ok(())
}

fn bomb_size(key: &str, size: u64, limits: &ExtractLimits) -> Error {
    failed(
        "zip_bomb",
        format!(
            "{key}: the DOCX expands to {size} bytes, over the limit of {} bytes",
            limits.max_uncompressed_bytes
        ),
    )
}

/// The text of WordprocessingML: `w:t` runs, paragraphs as lines, tabs and
/// breaks kept.
fn docx_xml_text(xml: &str, key: &str, limits: &ExtractLimits) -> Result<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = String::new();
    let mut in_text = false;
    loop {
        let ev = reader.read_event().map_err(|e| {
            failed(
                "invalid_document",
                format!("{key}: word/document.xml is not well-formed: {e}"),
            )
        })?;
        match ev {
            Event::Start(e) if e.local_name().as_ref() == "t" => in_text = true,
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" => out.push('\t'),
                "br" | "cr" => out.push('\n'),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text => out.push_str(&t.into_inner()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else {
                    out.push_str(match r.into_inner().as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if out.len() > limits.max_text_bytes {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_order() {
        assert_eq!(
            detect(b"hello", "text/markdown", "a.txt").expect("md"),
            DocKind::Markdown
        );
        assert_eq!(
            detect(b"hello", "application/octet-stream", "a.md").expect("ext"),
            DocKind::Markdown
        );
        assert_eq!(detect(b"%PDF-1.4", "", "a").expect("magic"), DocKind::Pdf);
        assert_eq!(
            detect(b"plain words", "", "a").expect("text"),
            DocKind::Text
        );
        let e = detect(b"\x89PNG\r\n\x1a\n\0\0", "image/png", "a.png").expect_err("png");
        assert_eq!(e.code(), "unsupported_type");
        let e = detect(b"\0\x01\x02", "", "blob").expect_err("binary");
        assert_eq!(e.code(), "unsupported_type");
    }
}
