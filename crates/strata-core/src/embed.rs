//! Embedders: text → vectors (DESIGN.md "Embeddings").
//!
//! `STRATA_EMBEDDER` chooses one: `none` (keyword search only; vector APIs
//! take client vectors), `local:<model folder>` (a BERT-family
//! sentence-transformer run in-process), `openai:<base url>` (any
//! OpenAI-compatible `/v1/embeddings` endpoint).

use async_trait::async_trait;
use std::fmt;

use crate::Result;

/// Turns texts into vectors.
#[async_trait]
pub trait Embedder: Send + Sync + fmt::Debug {
    /// A stable name (`none`, `local:all-MiniLM-L6-v2`, `openai:<model>`);
    /// stored with what it embedded so a change of embedder is noticed.
    fn name(&self) -> &str;
    /// The dimension of its vectors, when known: `None` for `none`, and for
    /// an endpoint whose dimension is learned from its first answer until
    /// it has answered. Use [`Embedder::probe_dimension`] to learn it.
    fn dimension(&self) -> Option<usize>;
    /// Whether this embedder turns text into vectors at all (`none` does
    /// not). An enabled embedder whose [`dimension`](Embedder::dimension) is
    /// still unknown must be asked, never skipped.
    fn enabled(&self) -> bool {
        true
    }
    /// One vector per text, in order. `none` answers `Unavailable` with
    /// code `no_embedder`.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// The dimension of its vectors, asking the embedder once (one short
    /// text) when it is not known yet. Fails like [`Embedder::embed`] while
    /// the embedder does not answer: callers retry with backoff.
    async fn probe_dimension(&self) -> Result<usize> {
        if let Some(d) = self.dimension() {
            return Ok(d);
        }
        let vectors = self.embed(&["dimension probe".to_owned()]).await?;
        match vectors.first() {
            Some(v) if !v.is_empty() => Ok(v.len()),
            _ => Err(crate::Error::unavailable(format!(
                "the embedder {} answered no vector to learn its dimension from",
                self.name()
            ))
            .with_code("embedder_unavailable")),
        }
    }
}
