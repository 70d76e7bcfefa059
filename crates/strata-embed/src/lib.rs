//! Strata's embedders: text → vectors (DESIGN.md "Embeddings").
//!
//! [`open_embedder`] turns a `STRATA_EMBEDDER` value into an
//! [`Embedder`](strata_core::embed::Embedder):
//!
//! - `none` — [`NoEmbedder`]: every `embed` is `Unavailable` with code
//!   `no_embedder`; keyword search still works and vector APIs take the
//!   client's vectors.
//! - `local:<model folder>` — [`LocalEmbedder`]: a BERT-family
//!   sentence-transformer (`config.json`, `tokenizer.json`,
//!   `model.safetensors`) run in-process with candle, pooled and normalised
//!   exactly as sentence-transformers does.
//! - `openai:<base url>` — [`OpenAiEmbedder`]: any OpenAI-compatible
//!   `/v1/embeddings` endpoint, batched, with retries and backoff.

mod local;
mod none;
mod openai;

use std::sync::Arc;
use std::time::Duration;

use strata_core::embed::Embedder;
use strata_core::{Error, Result};

pub use local::{LocalEmbedder, LocalEngine, LocalPrecision, LOCAL_BATCH_SIZE, LOCAL_MAX_TOKENS};
pub use none::NoEmbedder;
pub use openai::{OpenAiEmbedder, OpenAiOptions, DEFAULT_OPENAI_MODEL, OPENAI_BATCH_SIZE};

/// What an embedder needs besides its `STRATA_EMBEDDER` value.
#[derive(Clone, Default)]
pub struct EmbedderOptions {
    /// `STRATA_EMBEDDER_API_KEY`: the bearer token of an `openai:` endpoint.
    pub api_key: Option<String>,
    /// `STRATA_EMBEDDER_MODEL`: the model an `openai:` endpoint is asked for
    /// (default [`DEFAULT_OPENAI_MODEL`]).
    pub model: Option<String>,
    /// `STRATA_EMBEDDER_DIMENSION`: the dimension an `openai:` endpoint
    /// answers with, when known before the first call.
    pub dimension: Option<usize>,
    /// Timeout of one `openai:` request (default 60 s).
    pub timeout: Option<Duration>,
    /// `STRATA_EMBEDDER_PRECISION`: the arithmetic of a `local:` model's
    /// matrix products.
    pub precision: LocalPrecision,
}

impl std::fmt::Debug for EmbedderOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedderOptions")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("timeout", &self.timeout)
            .field("precision", &self.precision)
            .finish()
    }
}

/// The forms `STRATA_EMBEDDER` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedderSpec {
    /// `none`.
    None,
    /// `local:<model folder>`.
    Local(String),
    /// `openai:<base url>` (`http://` or `https://`).
    OpenAi(String),
}

impl EmbedderSpec {
    /// Parses a `STRATA_EMBEDDER` value; the error names the setting and the
    /// accepted forms.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        let bad = |why: &str| {
            Error::invalid(format!(
                "STRATA_EMBEDDER={:?}: {why}; expected `none`, `local:<model folder>` or `openai:<base url>`",
                strata_core::redact::redact_url(spec)
            ))
            .with_code("invalid_config")
        };
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return Ok(EmbedderSpec::None);
        }
        if let Some(dir) = spec.strip_prefix("local:") {
            if dir.trim().is_empty() {
                return Err(bad("the model folder is missing"));
            }
            return Ok(EmbedderSpec::Local(dir.trim().to_owned()));
        }
        if let Some(url) = spec.strip_prefix("openai:") {
            let url = url.trim();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad("the base url must start with http:// or https://"));
            }
            if url.len() <= "https://".len() {
                return Err(bad("the base url has no host"));
            }
            return Ok(EmbedderSpec::OpenAi(url.to_owned()));
        }
        Err(bad("unknown form"))
    }
}

/// Opens the embedder a `STRATA_EMBEDDER` value names, with `api_key` for an
/// `openai:` endpoint and defaults for everything else (see
/// [`open_embedder_with`]).
///
/// A `local:` model is loaded here: a missing or unreadable folder is an
/// error, so a server does not start with an embedder that cannot work.
pub async fn open_embedder(spec: &str, api_key: Option<String>) -> Result<Arc<dyn Embedder>> {
    open_embedder_with(
        spec,
        EmbedderOptions {
            api_key,
            ..EmbedderOptions::default()
        },
    )
    .await
}

/// [`open_embedder`] with every option.
pub async fn open_embedder_with(spec: &str, options: EmbedderOptions) -> Result<Arc<dyn Embedder>> {
    match EmbedderSpec::parse(spec)? {
        EmbedderSpec::None => Ok(Arc::new(NoEmbedder)),
        EmbedderSpec::Local(dir) => {
            let engine = options.precision.engine();
            let embedder =
                tokio::task::spawn_blocking(move || LocalEmbedder::open_with(&dir, engine))
                    .await
                    .map_err(|e| {
                        Error::internal(format!("loading the local embedder panicked: {e}"))
                    })??;
            Ok(Arc::new(embedder))
        }
        EmbedderSpec::OpenAi(base) => {
            let mut opts = OpenAiOptions::new(base);
            opts.api_key = options.api_key;
            if let Some(model) = options.model {
                opts.model = model;
            }
            opts.dimension = options.dimension;
            if let Some(timeout) = options.timeout {
                opts.timeout = timeout;
            }
            Ok(Arc::new(OpenAiEmbedder::new(opts)?))
        }
    }
}
