//! `STRATA_EMBEDDER=openai:<base url>`: any OpenAI-compatible
//! `/v1/embeddings` endpoint (OpenAI, Ollama, text-embeddings-inference,
//! vLLM, …).
//!
//! Inputs go in batches of at most [`OPENAI_BATCH_SIZE`]; each request is
//! tried up to [`MAX_ATTEMPTS`] times on 429, 5xx, timeouts and connection
//! errors, waiting `Retry-After` when the server sends one and otherwise an
//! exponential backoff with full jitter. Answers are put in input order by
//! their `index`.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use reqwest::{header, StatusCode};
use serde::{Deserialize, Serialize};
use strata_core::embed::Embedder;
use strata_core::{Error, ErrorKind, Result};

/// The model asked for when `STRATA_EMBEDDER_MODEL` is not set.
pub const DEFAULT_OPENAI_MODEL: &str = "text-embedding-3-small";
/// Inputs per request.
pub const OPENAI_BATCH_SIZE: usize = 96;
/// Tries per request, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// How to reach an OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiOptions {
    /// The base url (`https://api.openai.com` or `…/v1`).
    pub base_url: String,
    /// Bearer token (`STRATA_EMBEDDER_API_KEY`).
    pub api_key: Option<String>,
    /// Model name sent with every request.
    pub model: String,
    /// The expected dimension; learned from the first answer when `None`.
    pub dimension: Option<usize>,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Inputs per request (at most [`OPENAI_BATCH_SIZE`]).
    pub batch_size: usize,
}

impl OpenAiOptions {
    /// Defaults for `base_url`: no key, [`DEFAULT_OPENAI_MODEL`], 60 s.
    pub fn new(base_url: impl Into<String>) -> Self {
        OpenAiOptions {
            base_url: base_url.into(),
            api_key: None,
            model: DEFAULT_OPENAI_MODEL.to_owned(),
            dimension: None,
            timeout: Duration::from_secs(60),
            batch_size: OPENAI_BATCH_SIZE,
        }
    }
}

impl fmt::Debug for OpenAiOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiOptions")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("timeout", &self.timeout)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// An OpenAI-compatible embeddings endpoint.
pub struct OpenAiEmbedder {
    name: String,
    url: String,
    /// `url` without credentials, for messages and logs.
    display_url: String,
    api_key: Option<String>,
    model: String,
    batch_size: usize,
    dimension: OnceLock<usize>,
    client: reqwest::Client,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("name", &self.name)
            .field("url", &self.display_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimension", &self.dimension.get())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

/// `<base>/v1/embeddings`, without doubling a `/v1` the base already has.
pub(crate) fn embeddings_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/embeddings")
    } else {
        format!("{base}/v1/embeddings")
    }
}

fn unavailable(message: String) -> Error {
    Error::unavailable(message).with_code("embedder_unavailable")
}

/// Whether a failed try may succeed when repeated, and how long the server
/// asked us to wait.
enum Attempt {
    Retry(Error, Option<Duration>),
    Fail(Error),
}

impl OpenAiEmbedder {
    /// A client for `options`; makes no request.
    pub fn new(options: OpenAiOptions) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::internal(format!("building the HTTP client: {e}")))?;
        let dimension = OnceLock::new();
        if let Some(d) = options.dimension {
            let _ = dimension.set(d);
        }
        Ok(OpenAiEmbedder {
            name: format!("openai:{}", options.model),
            url: embeddings_url(&options.base_url),
            display_url: strata_core::redact::redact_url(&embeddings_url(&options.base_url)),
            api_key: options.api_key,
            model: options.model,
            batch_size: options.batch_size.clamp(1, OPENAI_BATCH_SIZE),
            dimension,
            client,
        })
    }

    /// The full url requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn embed_batch(&self, input: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut attempt = 1;
        loop {
            match self.try_once(input).await {
                Ok(vectors) => return self.check(input.len(), vectors),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(e, retry_after)) => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(unavailable(format!(
                            "embedding endpoint {} failed {MAX_ATTEMPTS} times; last: {}",
                            self.display_url,
                            e.message()
                        )));
                    }
                    let wait = retry_after.unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(
                        url = %self.display_url, attempt, wait_ms = wait.as_millis() as u64,
                        error = %e.message(), "embedding request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn try_once(&self, input: &[String]) -> std::result::Result<Vec<Vec<f32>>, Attempt> {
        let mut request = self.client.post(&self.url).json(&EmbeddingsRequest {
            model: &self.model,
            input,
        });
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let timeout_or_connect = e.is_timeout() || e.is_connect() || e.is_request();
                // reqwest's message names the URL; drop it, the redacted
                // one is ours.
                let e = e.without_url();
                let err = unavailable(format!("embedding endpoint {}: {e}", self.display_url));
                return Err(if timeout_or_connect {
                    Attempt::Retry(err, None)
                } else {
                    Attempt::Fail(err)
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            let bytes = read_limited(response, MAX_RESPONSE_BYTES, false)
                .await
                .map_err(|e| match e {
                    BodyError::Transport(e) if e.is_timeout() => Attempt::Retry(
                        unavailable(format!(
                            "embedding endpoint {}: {}",
                            self.display_url,
                            e.without_url()
                        )),
                        None,
                    ),
                    e => Attempt::Retry(
                        unavailable(format!(
                            "embedding endpoint {}: {}",
                            self.display_url,
                            e.describe()
                        )),
                        None,
                    ),
                })?;
            let body: EmbeddingsResponse = serde_json::from_slice(&bytes).map_err(|e| {
                Attempt::Fail(unavailable(format!(
                    "embedding endpoint {} answered an unreadable body: {e}",
                    self.display_url
                )))
            })?;
            return order_by_index(body.data, input.len()).map_err(Attempt::Fail);
        }
        let retry_after = retry_after(response.headers());
        let text = read_limited(response, 4096, true).await.unwrap_or_default();
        let detail: String = String::from_utf8_lossy(&text).chars().take(300).collect();
        let message = format!(
            "embedding endpoint {} answered {status}: {detail}",
            self.display_url
        );
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Attempt::Retry(unavailable(message), retry_after));
        }
        Err(Attempt::Fail(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Error::unavailable(format!("{message} (check STRATA_EMBEDDER_API_KEY)"))
                    .with_code("embedder_unauthorized")
                    .with_retryable(false)
            }
            StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::BAD_REQUEST
            | StatusCode::UNPROCESSABLE_ENTITY => {
                Error::invalid(message).with_code("embedder_rejected_input")
            }
            _ => unavailable(message).with_retryable(false),
        }))
    }

    /// Every vector has the endpoint's dimension (learned from the first
    /// answer, or configured).
    fn check(&self, expected: usize, vectors: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        if vectors.len() != expected {
            return Err(unavailable(format!(
                "embedding endpoint {} answered {} vectors for {expected} inputs",
                self.display_url,
                vectors.len()
            )));
        }
        let Some(first) = vectors.first() else {
            return Ok(vectors);
        };
        let dim = *self.dimension.get_or_init(|| first.len());
        if let Some(v) = vectors.iter().find(|v| v.len() != dim || v.is_empty()) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "embedding endpoint {} answered a {}-dimensional vector; expected {dim} (STRATA_EMBEDDER_DIMENSION or its first answer)",
                    self.display_url,
                    v.len()
                ),
            )
            .with_code("embedder_dimension_mismatch")
            .with_retryable(false));
        }
        Ok(vectors)
    }
}

/// Largest embeddings response read (96 inputs of 3,072 dimensions as JSON
/// take about 6 MiB).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

enum BodyError {
    Transport(reqwest::Error),
    TooLarge(usize),
}

impl BodyError {
    fn describe(self) -> String {
        match self {
            BodyError::Transport(e) => e.without_url().to_string(),
            BodyError::TooLarge(max) => format!("the response is larger than {max} bytes"),
        }
    }
}

/// The response body, at most `max` bytes: an endpoint that sends more is
/// not read further (an error with `truncate == false`, else the first
/// `max` bytes).
async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
    truncate: bool,
) -> std::result::Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if out.len() + chunk.len() > max {
            if truncate {
                out.extend_from_slice(&chunk[..max - out.len()]);
                return Ok(out);
            }
            return Err(BodyError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Puts `data` in input order by `index`; every index in `0..n` exactly once.
fn order_by_index(data: Vec<EmbeddingItem>, n: usize) -> Result<Vec<Vec<f32>>> {
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; n];
    for item in data {
        match slots.get_mut(item.index) {
            Some(slot @ None) => *slot = Some(item.embedding),
            Some(Some(_)) => {
                return Err(unavailable(format!(
                    "embedding response repeats index {}",
                    item.index
                )))
            }
            None => {
                return Err(unavailable(format!(
                    "embedding response has index {} for {n} inputs",
                    item.index
                )))
            }
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| unavailable(format!("embedding response lacks index {i}"))))
        .collect()
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: backoff applies).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = value.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Clamp before building the duration: `Duration::from_secs_f64` panics
    // on values it cannot represent (`Retry-After: 1e30`).
    Some(Duration::from_secs_f64(
        secs.min(RETRY_AFTER_MAX.as_secs_f64()),
    ))
}

/// Full jitter: uniform in `[0, min(max, base · 2^(attempt-1))]`.
fn backoff(attempt: u32) -> Duration {
    let cap = BACKOFF_BASE
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(BACKOFF_MAX);
    let millis = cap.as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> Option<usize> {
        self.dimension.get().copied()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_gets_v1_once() {
        assert_eq!(embeddings_url("http://h:1"), "http://h:1/v1/embeddings");
        assert_eq!(embeddings_url("http://h:1/"), "http://h:1/v1/embeddings");
        assert_eq!(
            embeddings_url("https://api.openai.com/v1"),
            "https://api.openai.com/v1/embeddings"
        );
        assert_eq!(
            embeddings_url("http://h/proxy/v1/"),
            "http://h/proxy/v1/embeddings"
        );
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..=MAX_ATTEMPTS {
            let cap = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_MAX);
            assert!(backoff(attempt) <= cap);
        }
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = header::HeaderMap::new();
        h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        // Huge, negative, fractional and non-numeric values never panic.
        for (v, want) in [
            ("1e30", Some(RETRY_AFTER_MAX)),
            ("1e309", None),
            ("18446744073709551616", Some(RETRY_AFTER_MAX)),
            ("-1", None),
            ("0.5", Some(Duration::from_millis(500))),
            ("NaN", None),
            ("inf", None),
            ("", None),
        ] {
            h.insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_str(v).expect("header value"),
            );
            assert_eq!(retry_after(&h), want, "Retry-After: {v}");
        }
    }

    #[test]
    fn answers_are_put_in_input_order() {
        let data = vec![
            EmbeddingItem {
                index: 1,
                embedding: vec![1.0],
            },
            EmbeddingItem {
                index: 0,
                embedding: vec![0.0],
            },
        ];
        assert_eq!(
            order_by_index(data, 2).ok(),
            Some(vec![vec![0.0], vec![1.0]])
        );
        let missing = vec![EmbeddingItem {
            index: 0,
            embedding: vec![0.0],
        }];
        assert!(order_by_index(missing, 2).is_err());
        let dup = vec![
            EmbeddingItem {
                index: 0,
                embedding: vec![0.0],
            },
            EmbeddingItem {
                index: 0,
                embedding: vec![0.0],
            },
        ];
        assert!(order_by_index(dup, 2).is_err());
    }
}
