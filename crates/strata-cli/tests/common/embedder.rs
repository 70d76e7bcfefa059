//! An OpenAI-compatible embeddings endpoint on loopback whose answers a test
//! switches at will: sane (deterministic bag-of-words vectors, so texts that
//! share words are near), or one of the kinds of nonsense a broken or hostile
//! endpoint sends. It is a real HTTP server speaking the protocol Strata's
//! `openai:` embedder speaks; the nonsense is what the tests are about.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Response, StatusCode};
use axum::routing::post;
use axum::Router;

/// Dimension of the sane vectors.
pub const DIM: usize = 16;

/// What the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Correct embeddings.
    Sane = 0,
    /// Each request gets the next kind of nonsense, in turn.
    Nonsense = 1,
    /// 429 with `Retry-After: 1e30` (once panicked the caller).
    RetryAfterHuge = 2,
    /// Waits 60 s before answering (a job stuck in the embedder).
    Slow = 3,
    /// Like [`Mode::Sane`] after 300 ms: the knowledge-base worker prepares
    /// the next documents meanwhile, so its next call mixes their chunks.
    Delayed = 4,
}

#[derive(Debug, Default)]
struct Shared {
    mode: AtomicU8,
    calls: AtomicU64,
    huge_calls: AtomicU64,
    turn: AtomicU64,
    refused: AtomicU64,
    mixed_refused: AtomicU64,
}

/// A text holding this word is refused with 400 (as an endpoint refuses a
/// text over its length limit or its content filter) while the endpoint is
/// [`Mode::Sane`] or [`Mode::Delayed`].
pub const REFUSED_WORD: &str = "REFUSEME";

/// A running endpoint; stops when dropped.
#[derive(Debug)]
pub struct FakeEmbedder {
    /// `http://127.0.0.1:<port>` — use as `STRATA_EMBEDDER=openai:<url>`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEmbedder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Deterministic unit vector of `text`: each word adds to a few buckets.
pub fn embed(text: &str) -> Vec<f32> {
    let mut v = [0f32; DIM];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = word.to_lowercase();
        let mut h: u64 = 1469598103934665603;
        for b in w.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(1099511628211);
        }
        v[(h % DIM as u64) as usize] += 1.0;
        v[((h >> 20) % DIM as u64) as usize] += 0.5;
    }
    if v.iter().all(|x| *x == 0.0) {
        v[0] = 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn inputs(body: &serde_json::Value) -> Vec<String> {
    match &body["input"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

fn reply(status: StatusCode, headers: &[(&str, &str)], body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(body.into())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn sane(texts: &[String]) -> Response<Body> {
    let data: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"object": "embedding", "index": i, "embedding": embed(t)}))
        .collect();
    reply(
        StatusCode::OK,
        &[("content-type", "application/json")],
        serde_json::json!({"object": "list", "data": data, "model": "fake"}).to_string(),
    )
}

/// The kinds of nonsense, in the order they are served.
fn nonsense(turn: u64, texts: &[String]) -> Response<Body> {
    let n = texts.len();
    let json = [("content-type", "application/json")];
    match turn % 10 {
        // A 200 whose body is not JSON at all.
        0 => reply(
            StatusCode::OK,
            &[("content-type", "text/html")],
            "<html>oops</html>",
        ),
        // No vectors for the inputs.
        1 => reply(
            StatusCode::OK,
            &json,
            serde_json::json!({"data": []}).to_string(),
        ),
        // An index far outside the inputs.
        2 => {
            let data: Vec<serde_json::Value> = (0..n)
                .map(|i| serde_json::json!({"index": 1u64 << 60 | i as u64, "embedding": embed("x")}))
                .collect();
            reply(
                StatusCode::OK,
                &json,
                serde_json::json!({"data": data}).to_string(),
            )
        }
        // Server error with a negative Retry-After.
        3 => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[("retry-after", "-5")],
            "boom",
        ),
        // Service unavailable with a Retry-After that is not a number.
        4 => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &[("retry-after", "soon")],
            "",
        ),
        // JSON of the wrong shape.
        5 => reply(StatusCode::OK, &json, r#"{"data": "not a list"}"#),
        // Numbers too large for any float.
        6 => reply(
            StatusCode::OK,
            &json,
            r#"{"data": [{"index": 0, "embedding": [1e999]}]}"#,
        ),
        // An empty 200.
        7 => reply(StatusCode::OK, &json, ""),
        // Headers that make no sense.
        8 => reply(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", "NaN"), ("content-length", "0")],
            "",
        ),
        // A truncated JSON body.
        _ => reply(StatusCode::OK, &json, r#"{"data": [{"index": 0, "embedd"#),
    }
}

async fn handle(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response<Body> {
    shared.calls.fetch_add(1, Ordering::SeqCst);
    let texts = serde_json::from_slice::<serde_json::Value>(&body)
        .map(|v| inputs(&v))
        .unwrap_or_default();
    let mut mode = shared.mode.load(Ordering::SeqCst);
    if mode == Mode::Delayed as u8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        mode = Mode::Sane as u8;
    }
    match mode {
        0 if texts.iter().any(|t| t.contains(REFUSED_WORD)) => {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            if texts.iter().any(|t| !t.contains(REFUSED_WORD)) {
                shared.mixed_refused.fetch_add(1, Ordering::SeqCst);
            }
            reply(
                StatusCode::BAD_REQUEST,
                &[("content-type", "application/json")],
                r#"{"error": {"message": "input rejected", "type": "invalid_request_error"}}"#,
            )
        }
        0 => sane(&texts),
        2 => {
            shared.huge_calls.fetch_add(1, Ordering::SeqCst);
            reply(
                StatusCode::TOO_MANY_REQUESTS,
                &[
                    ("retry-after", "1e30"),
                    (header::CONTENT_TYPE.as_str(), "text/plain"),
                ],
                "slow down",
            )
        }
        3 => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            sane(&texts)
        }
        _ => {
            let turn = shared.turn.fetch_add(1, Ordering::SeqCst);
            nonsense(turn, &texts)
        }
    }
}

impl FakeEmbedder {
    /// Starts the endpoint on a free loopback port in `mode`.
    pub async fn start(mode: Mode) -> FakeEmbedder {
        let shared = Arc::new(Shared::default());
        shared.mode.store(mode as u8, Ordering::SeqCst);
        let app = Router::new()
            .route("/v1/embeddings", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake embedder");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("fake embedder address")
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeEmbedder { url, shared, task }
    }

    /// Switches what the endpoint answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Requests received so far.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Requests refused for a text with [`REFUSED_WORD`], and of those the
    /// ones that also carried other texts.
    pub fn refusals(&self) -> (u64, u64) {
        (
            self.shared.refused.load(Ordering::SeqCst),
            self.shared.mixed_refused.load(Ordering::SeqCst),
        )
    }

    /// Requests answered with `Retry-After: 1e30`.
    pub fn huge_retry_after_calls(&self) -> u64 {
        self.shared.huge_calls.load(Ordering::SeqCst)
    }
}
