//! Extraction and chunking of every supported type, and hostile files.

use strata_kb::extract::{detect, extract, DocKind, ExtractLimits};
use strata_kb::{chunk_text, testdocs, Chunking};

fn limits() -> ExtractLimits {
    ExtractLimits::default()
}

#[test]
fn plain_text_and_markdown() {
    let t = extract(
        "\u{feff}hello world".as_bytes(),
        "text/plain",
        "a.txt",
        &limits(),
    )
    .expect("text");
    assert_eq!(t.text, "hello world");
    assert_eq!(t.kind, DocKind::Text);
    let md = extract(b"# Title\n\nBody *here*.", "", "notes/a.md", &limits()).expect("md");
    assert_eq!(md.kind, DocKind::Markdown);
    assert!(md.text.contains("Body *here*"));
}

#[test]
fn html_drops_scripts_styles_and_head() {
    let html = br#"<html><head><title>T</title><style>.x{color:red}</style></head>
        <body><script>var secret = 1;</script><h1>Refunds</h1><p>Within <b>30 days</b>.</p></body></html>"#;
    let t = extract(html, "text/html; charset=utf-8", "p.html", &limits()).expect("html");
    assert!(t.text.contains("Refunds"), "{}", t.text);
    assert!(t.text.contains("30 days"), "{}", t.text);
    assert!(!t.text.contains("secret"), "{}", t.text);
    assert!(!t.text.contains("color"), "{}", t.text);
}

#[test]
fn pdf_pages_are_read_and_bounded() {
    let pdf = testdocs::pdf(&[
        "The warranty lasts two years.",
        "Second page text.",
        "Third page.",
    ])
    .expect("pdf");
    let t = extract(&pdf, "application/pdf", "w.pdf", &limits()).expect("pdf");
    assert_eq!(t.kind, DocKind::Pdf);
    assert_eq!(t.pages, Some(3));
    assert!(t.text.contains("warranty lasts two years"), "{:?}", t.text);
    assert!(t.text.contains("Third page"), "{:?}", t.text);
    assert!(!t.truncated);
    let two = ExtractLimits {
        max_pages: 2,
        ..limits()
    };
    let t = extract(&pdf, "application/pdf", "w.pdf", &two).expect("pdf");
    assert!(t.text.contains("Second page"));
    assert!(!t.text.contains("Third page"));
    assert!(t.truncated);
    // Found by magic bytes alone.
    assert_eq!(
        detect(&pdf, "application/octet-stream", "blob").expect("magic"),
        DocKind::Pdf
    );
}

#[test]
fn a_pdf_that_is_not_one_fails_cleanly() {
    let e = extract(
        b"this is just text",
        "application/pdf",
        "fake.pdf",
        &limits(),
    )
    .expect_err("fake");
    assert_eq!(e.code(), "invalid_document");
    assert!(e.message().contains("not a PDF"), "{}", e.message());
    let e = extract(b"%PDF-1.7\n garbage \0\xff", "", "broken.pdf", &limits()).expect_err("broken");
    assert_eq!(e.code(), "invalid_document");
}

#[test]
fn docx_paragraphs_become_lines() {
    let docx = testdocs::docx(&["Shipping takes 5 days.", "Fish & chips <fast>."]).expect("docx");
    let t = extract(&docx, "", "guide.docx", &limits()).expect("docx");
    assert_eq!(t.kind, DocKind::Docx);
    assert_eq!(t.text, "Shipping takes 5 days.\nFish & chips <fast>.\n");
    assert_eq!(detect(&docx, "", "noext").expect("magic"), DocKind::Docx);
}

#[test]
fn a_zip_bomb_docx_fails() {
    let bomb = testdocs::zip_bomb_docx(64).expect("bomb");
    assert!(
        bomb.len() < 1024 * 1024,
        "the bomb is small: {}",
        bomb.len()
    );
    let e = extract(&bomb, "", "bomb.docx", &limits()).expect_err("bomb");
    assert_eq!(e.code(), "zip_bomb", "{e}");
    // A tight size bound catches it too.
    let tight = ExtractLimits {
        max_uncompressed_bytes: 1024 * 1024,
        max_compression_ratio: u64::MAX,
        ..limits()
    };
    let e = extract(&bomb, "", "bomb.docx", &tight).expect_err("bomb");
    assert_eq!(e.code(), "zip_bomb", "{e}");
}

#[test]
fn csv_and_json() {
    let csv = extract(
        b"name,price\nwidget,3\n\"a, b\",4\n",
        "text/csv",
        "p.csv",
        &limits(),
    )
    .expect("csv");
    assert_eq!(csv.text, "name | price\nwidget | 3\na, b | 4\n");
    let json = extract(
        br#"{"faq":[{"q":"Open on Sunday?","a":"No"}],"n":3,"x":null}"#,
        "",
        "f.json",
        &limits(),
    )
    .expect("json");
    // Object keys come in sorted order (serde_json's map).
    assert_eq!(json.text, "faq.a: No\nfaq.q: Open on Sunday?\nn: 3\n");
    let e = extract(b"{not json", "", "f.json", &limits()).expect_err("bad json");
    assert_eq!(e.code(), "invalid_document");
}

#[test]
fn empty_unsupported_and_too_large() {
    let e = extract(b"", "text/plain", "empty.txt", &limits()).expect_err("empty");
    assert_eq!(e.code(), "empty_document");
    let e = extract(b"\x89PNG\r\n\x1a\n\0\0\0", "image/png", "x.png", &limits()).expect_err("png");
    assert_eq!(e.code(), "unsupported_type");
    let e = extract(&[0u8, 1, 2, 3], "", "data.bin", &limits()).expect_err("bin");
    assert_eq!(e.code(), "unsupported_type");
    let small = ExtractLimits {
        max_file_bytes: 4,
        ..limits()
    };
    let e = extract(b"hello", "text/plain", "a.txt", &small).expect_err("large");
    assert_eq!(e.code(), "document_too_large");
    let e = extract(b"\xff\xfe bad", "text/plain", "a.txt", &limits()).expect_err("utf8");
    assert_eq!(e.code(), "invalid_document");
}

#[test]
fn chunks_respect_size_and_overlap() {
    let sentence = "The quick brown fox jumps over the lazy dog. ";
    let text = sentence.repeat(100);
    let chunks = chunk_text(&text, DocKind::Text, Chunking::default()).expect("chunks");
    assert!(chunks.len() >= 5, "{}", chunks.len());
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index, i);
        assert!(c.text.chars().count() <= 800);
        assert_eq!(&text[c.start..c.start + c.text.len()], c.text);
    }
    // Neighbours overlap.
    let a = &chunks[0];
    let b = &chunks[1];
    assert!(b.start < a.start + a.text.len(), "chunks overlap");
    let small = Chunking {
        size: 100,
        overlap: 20,
    };
    assert!(
        chunk_text(&text, DocKind::Text, small)
            .expect("small")
            .len()
            > chunks.len()
    );
    let bad = Chunking {
        size: 100,
        overlap: 80,
    };
    assert_eq!(
        chunk_text(&text, DocKind::Text, bad)
            .expect_err("bad")
            .code(),
        "invalid_chunking"
    );
}

#[test]
fn markdown_chunks_follow_sections() {
    let md = format!(
        "# Returns\n\n{}\n\n# Shipping\n\n{}\n",
        "Returns are accepted within thirty days. ".repeat(12),
        "Orders ship from Lisbon. ".repeat(12)
    );
    let chunks = chunk_text(
        &md,
        DocKind::Markdown,
        Chunking {
            size: 600,
            overlap: 0,
        },
    )
    .expect("md");
    assert!(chunks.len() >= 2);
    assert!(
        chunks.iter().any(|c| c.text.starts_with("# Shipping")),
        "{chunks:#?}"
    );
    assert!(chunks
        .iter()
        .all(|c| !(c.text.contains("Lisbon") && c.text.contains("thirty"))));
}
