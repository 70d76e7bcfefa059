//! Minimal documents built in memory, for tests and benchmarks: a one-page-
//! per-paragraph PDF, a DOCX, and hostile files (a zip-bomb DOCX).

use std::io::{Cursor, Write};

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};
use strata_core::{Error, Result};
use zip::write::SimpleFileOptions;

fn build_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("building the test {what} failed: {e}"))
}

/// A PDF with one page per paragraph, each holding the paragraph's text in
/// Helvetica (ASCII text only).
pub fn pdf(paragraphs: &[&str]) -> Result<Vec<u8>> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for text in paragraphs {
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), 720.into()]),
                Operation::new("Tj", vec![Object::string_literal(*text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let bytes = content.encode().map_err(|e| build_error("PDF", e))?;
        let content_id = doc.add_object(Stream::new(dictionary! {}, bytes));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(Object::from(page_id));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(|e| build_error("PDF", e))?;
    Ok(out)
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `word/document.xml` of a DOCX with one paragraph per entry.
pub fn docx_xml(paragraphs: &[&str]) -> String {
    let mut body = String::new();
    for p in paragraphs {
        body.push_str("<w:p><w:r><w:t xml:space=\"preserve\">");
        body.push_str(&escape_xml(p));
        body.push_str("</w:t></w:r></w:p>");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    )
}

/// A DOCX (a zip with the parts Word needs) with one paragraph per entry.
pub fn docx(paragraphs: &[&str]) -> Result<Vec<u8>> {
    docx_with_parts(&[("word/document.xml", docx_xml(paragraphs).into_bytes())])
}

/// A DOCX whose `word/document.xml` inflates from a few hundred kilobytes to
/// `inflated_mib` MiB of whitespace (a zip bomb).
pub fn zip_bomb_docx(inflated_mib: usize) -> Result<Vec<u8>> {
    let mut xml = docx_xml(&["bomb"]).into_bytes();
    xml.resize(xml.len() + inflated_mib * 1024 * 1024, b' ');
    docx_with_parts(&[("word/document.xml", xml)])
}

fn docx_with_parts(parts: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let content_types = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
        <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
        <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
        </Types>";
    let mut write = |name: &str, data: &[u8]| -> Result<()> {
        zip.start_file(name, opts)
            .map_err(|e| build_error("DOCX", e))?;
        zip.write_all(data).map_err(|e| build_error("DOCX", e))
    };
    write("[Content_Types].xml", content_types.as_bytes())?;
    for (name, data) in parts {
        write(name, data)?;
    }
    let out = zip.finish().map_err(|e| build_error("DOCX", e))?;
    Ok(out.into_inner())
}

/// A deterministic Markdown "book" of about `bytes` bytes (the same bytes
/// for the same arguments): chapters (`#`), sections (`##`), subsections
/// (`###`), paragraphs of pseudo-words with sentence punctuation and inline
/// emphasis, bullet and numbered lists, fenced code blocks and tables — the
/// structures the Markdown chunker splits at. For tests of chunking and
/// benchmarks of large documents.
pub fn markdown_book(bytes: usize, seed: u64) -> String {
    const WORDS: &[&str] = &[
        "index", "query", "vector", "chunk", "storage", "bot", "session", "token", "latency",
        "replica", "backup", "restore", "drive", "cache", "record", "message", "filter", "policy",
        "refund", "invoice", "customer", "delivery", "warranty", "manual", "install", "config",
        "network", "server", "client", "request", "answer", "search", "ranking", "document", "the",
        "a", "of", "to", "and", "in", "is", "for", "with", "on", "that", "by", "from", "über",
        "café", "naïve", "résumé", "東京", "données",
    ];
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: usize| -> usize {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as usize
    };
    let mut out = String::with_capacity(bytes + 4096);
    let sentence = |out: &mut String, next: &mut dyn FnMut(usize) -> usize| {
        let words = 6 + next(14);
        for i in 0..words {
            let w = WORDS[next(WORDS.len())];
            if i == 0 {
                let mut cs = w.chars();
                if let Some(c) = cs.next() {
                    out.extend(c.to_uppercase());
                    out.push_str(cs.as_str());
                }
            } else {
                out.push(' ');
                match next(40) {
                    0 => {
                        out.push_str("**");
                        out.push_str(w);
                        out.push_str("**");
                    }
                    1 => {
                        out.push('`');
                        out.push_str(w);
                        out.push('`');
                    }
                    _ => out.push_str(w),
                }
            }
        }
        out.push_str(match next(8) {
            0 => "? ",
            1 => "! ",
            _ => ". ",
        });
    };
    let (mut chapter, mut section) = (0, 0);
    while out.len() < bytes {
        match next(20) {
            0 => {
                chapter += 1;
                section = 0;
                out.push_str(&format!("# Chapter {chapter}\n\n"));
            }
            1 | 2 => {
                section += 1;
                out.push_str(&format!("## Section {chapter}.{section}\n\n"));
            }
            3 | 4 => out.push_str(&format!("### Topic {}\n\n", WORDS[next(WORDS.len())])),
            5 => {
                for _ in 0..2 + next(5) {
                    out.push_str("- ");
                    sentence(&mut out, &mut next);
                    out.push('\n');
                }
                out.push('\n');
            }
            6 => {
                for i in 0..2 + next(4) {
                    out.push_str(&format!("{}. ", i + 1));
                    sentence(&mut out, &mut next);
                    out.push('\n');
                }
                out.push('\n');
            }
            7 => {
                out.push_str("```\n");
                for i in 0..1 + next(8) {
                    out.push_str(&format!(
                        "let {}_{i} = {}({});\n",
                        WORDS[next(34)],
                        WORDS[next(34)],
                        next(1000)
                    ));
                }
                out.push_str("```\n\n");
            }
            8 => {
                out.push_str("| name | value |\n|---|---|\n");
                for _ in 0..1 + next(5) {
                    out.push_str(&format!(
                        "| {} | {} |\n",
                        WORDS[next(WORDS.len())],
                        next(100_000)
                    ));
                }
                out.push('\n');
            }
            _ => {
                for _ in 0..1 + next(9) {
                    sentence(&mut out, &mut next);
                }
                out.push_str("\n\n");
            }
        }
    }
    out
}
