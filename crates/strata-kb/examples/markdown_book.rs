//! A large Markdown document, generated deterministically, and how fast it
//! is extracted and chunked.
//!
//! ```sh
//! cargo run --release -p strata-kb --example markdown_book -- 40000000 --out big.md
//! cargo run --release -p strata-kb --example markdown_book -- 4000000 --time
//! ```
//!
//! `--out FILE` writes the document (`testdocs::markdown_book(bytes, 1)`);
//! `--time` extracts and chunks it with the defaults (800/150, Markdown) and
//! prints one JSON line: bytes, chunks, seconds and MB/s of each step.

use std::time::Instant;

use strata_kb::chunk::{chunk_text, Chunking};
use strata_kb::testdocs::markdown_book;
use strata_kb::{extract, ExtractLimits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut bytes = 40_000_000usize;
    let mut out = None;
    let mut time = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(args.next().ok_or("--out needs a file")?),
            "--time" => time = true,
            n => {
                bytes = n
                    .parse()
                    .map_err(|_| format!("{n:?} is not a size in bytes"))?
            }
        }
    }
    let doc = markdown_book(bytes, 1);
    if let Some(path) = out {
        std::fs::write(&path, &doc)?;
    }
    if time {
        let limits = ExtractLimits {
            max_file_bytes: u64::MAX,
            max_text_bytes: usize::MAX,
            ..Default::default()
        };
        let t = Instant::now();
        let text = extract(doc.as_bytes(), "text/markdown", "book.md", &limits)?;
        let extract_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let chunks = chunk_text(&text.text, text.kind, Chunking::default())?;
        let chunk_s = t.elapsed().as_secs_f64();
        let mb = doc.len() as f64 / 1e6;
        println!(
            "{}",
            serde_json::json!({
                "bytes": doc.len(),
                "chunks": chunks.len(),
                "extract_s": extract_s,
                "chunk_s": chunk_s,
                "extract_mb_s": mb / extract_s,
                "chunk_mb_s": mb / chunk_s,
            })
        );
    }
    Ok(())
}
