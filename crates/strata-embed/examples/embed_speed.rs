//! Embedding speed of the local embedder.
//!
//! ```sh
//! zcat ../shared/bench/data/base.jsonl.gz | head -n 1000 |
//!     cargo run --release -p strata-embed --example embed_speed -- "$(scripts/fetch-model.sh)"
//! ```
//!
//! Reads JSON lines with a `text` field (or plain lines) on stdin, embeds them
//! all in one call and prints texts per second, on the server's default
//! engine (`STRATA_EMBEDDER_PRECISION=auto`). `--engine packed` runs the
//! packed encoder in f32, `--engine packed-bf16` with bf16 products,
//! `--engine candle` candle-transformers' `BertModel`; `--json` prints the
//! figures as one JSON object.

use std::io::BufRead;
use std::time::Instant;

use strata_core::embed::Embedder;
use strata_embed::{LocalEmbedder, LocalEngine, LocalPrecision};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = None;
    // The server's default: bf16 products where the CPU has them.
    let mut engine = LocalPrecision::Auto.engine();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--engine" => {
                engine = match args.next().as_deref() {
                    Some("packed") => LocalEngine::Packed,
                    Some("packed-bf16") => LocalEngine::PackedBf16,
                    Some("candle") => LocalEngine::CandleBert,
                    _ => return Err("--engine is packed, packed-bf16 or candle".into()),
                }
            }
            "--json" => json = true,
            _ => dir = Some(arg),
        }
    }
    let dir = dir.ok_or(
        "usage: embed_speed [--engine packed|packed-bf16|candle] [--json] <model folder> < texts.jsonl",
    )?;
    let mut texts = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let text = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) => v["text"].as_str().map(str::to_owned).unwrap_or(line),
            Err(_) => line,
        };
        texts.push(text);
    }
    let started = Instant::now();
    let embedder = LocalEmbedder::open_with(&dir, engine)?;
    let load_s = started.elapsed().as_secs_f64();
    if !json {
        println!("loaded {} ({engine:?}) in {load_s:.2} s", embedder.name());
    }
    // Warm up (first allocations, thread pool start).
    embedder.embed(&texts[..texts.len().min(32)]).await?;
    let started = Instant::now();
    let vectors = embedder.embed(&texts).await?;
    let secs = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "engine": format!("{engine:?}"),
                "texts": vectors.len(),
                "seconds": secs,
                "texts_per_s": vectors.len() as f64 / secs,
                "load_s": load_s,
            })
        );
    } else {
        println!(
            "embedded {} texts in {secs:.2} s: {:.1} texts/s ({} dimensions)",
            vectors.len(),
            vectors.len() as f64 / secs,
            embedder.dimension().unwrap_or(0)
        );
    }
    Ok(())
}
