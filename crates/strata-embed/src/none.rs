//! `STRATA_EMBEDDER=none`.

use async_trait::async_trait;
use strata_core::embed::Embedder;
use strata_core::{Error, Result};

/// No embedder: keyword search only; vector APIs take client vectors.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEmbedder;

#[async_trait]
impl Embedder for NoEmbedder {
    fn name(&self) -> &str {
        "none"
    }

    fn dimension(&self) -> Option<usize> {
        None
    }

    fn enabled(&self) -> bool {
        false
    }

    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Err(Error::unavailable(
            "no embedder is configured (STRATA_EMBEDDER=none); set STRATA_EMBEDDER to local:<model folder> or openai:<base url>",
        )
        .with_code("no_embedder")
        .with_retryable(false))
    }
}
