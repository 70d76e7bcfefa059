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
    /// The dimension of its vectors; `None` for `none`.
    fn dimension(&self) -> Option<usize>;
    /// One vector per text, in order. `none` answers `Unavailable` with
    /// code `no_embedder`.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}
