//! Embedding speed of the local embedder.
//!
//! ```sh
//! zcat ../shared/bench/data/base.jsonl.gz | head -n 1000 |
//!     cargo run --release -p strata-embed --example embed_speed -- "$(scripts/fetch-model.sh)"
//! ```
//!
//! Reads JSON lines with a `text` field (or plain lines) on stdin, embeds them
//! all in one call and prints texts per second.

use std::io::BufRead;
use std::time::Instant;

use strata_core::embed::Embedder;
use strata_embed::LocalEmbedder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: embed_speed <model folder> < texts.jsonl")?;
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
    let embedder = LocalEmbedder::open(&dir)?;
    println!("loaded {} in {:.2?}", embedder.name(), started.elapsed());
    // Warm up (first allocations, thread pool start).
    embedder.embed(&texts[..texts.len().min(32)]).await?;
    let started = Instant::now();
    let vectors = embedder.embed(&texts).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "embedded {} texts in {secs:.2} s: {:.1} texts/s ({} dimensions)",
        vectors.len(),
        vectors.len() as f64 / secs,
        embedder.dimension().unwrap_or(0)
    );
    Ok(())
}
