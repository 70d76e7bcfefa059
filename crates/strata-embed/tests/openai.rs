//! The `openai:` embedder against a real HTTP server: an axum app on
//! loopback that implements `/v1/embeddings` with the local embedder (so the
//! vectors are real; a deterministic stand-in when no model is fetched), and
//! that fails on purpose to prove the retries.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use common::cosine;
use serde_json::{json, Value};
use strata_core::embed::Embedder;
use strata_embed::{open_embedder, open_embedder_with, EmbedderOptions, LocalEmbedder};

/// What the fake endpoint answers next, before it answers normally.
#[derive(Clone, Copy, Debug)]
enum Fault {
    TooManyRequests,
    ServiceUnavailable,
    Unauthorized,
}

#[derive(Default)]
struct Seen {
    requests: usize,
    /// Input counts of the requests that were answered with vectors.
    batches: Vec<usize>,
    authorization: Vec<Option<String>>,
    models: Vec<String>,
}

struct Endpoint {
    local: Option<LocalEmbedder>,
    faults: Mutex<VecDeque<Fault>>,
    /// Fail every request with 500 (retries exhausted).
    always_fail: bool,
    seen: Mutex<Seen>,
}

/// A deterministic 8-dimensional vector when no model is fetched.
fn stand_in(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 8];
    for (i, b) in text.bytes().enumerate() {
        v[(i + usize::from(b)) % 8] += f32::from(b) / 255.0;
    }
    v[0] += 1.0;
    v
}

async fn embeddings(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let fault = {
        let mut seen = endpoint.seen.lock().expect("lock");
        seen.requests += 1;
        seen.authorization.push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        seen.models
            .push(body["model"].as_str().unwrap_or_default().to_owned());
        endpoint.faults.lock().expect("lock").pop_front()
    };
    if endpoint.always_fail {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("retry-after", "0")],
            "boom",
        )
            .into_response();
    }
    match fault {
        Some(Fault::TooManyRequests) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                "slow down",
            )
                .into_response()
        }
        Some(Fault::ServiceUnavailable) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
        }
        Some(Fault::Unauthorized) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"message": "bad key"}})),
            )
                .into_response()
        }
        None => {}
    }
    let inputs: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let vectors = match &endpoint.local {
        Some(local) => local.embed(&inputs).await.expect("local embed"),
        None => inputs.iter().map(|t| stand_in(t)).collect(),
    };
    endpoint
        .seen
        .lock()
        .expect("lock")
        .batches
        .push(inputs.len());
    // Answer out of order: the client must sort by `index`.
    let mut data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    data.reverse();
    let middle = data.len() / 2;
    data.swap(0, middle);
    Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
}

async fn serve(endpoint: Arc<Endpoint>) -> String {
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn endpoint(faults: &[Fault], always_fail: bool, test: &str) -> Arc<Endpoint> {
    // Without the model (by hand only: under CI this fails) the endpoint
    // answers deterministic stand-in vectors, and the real-model part of the
    // test is what is skipped.
    let dir = strata_testkit::backend(
        "STRATA_TEST_MODEL_DIR",
        &format!("{test} (its real-model part; it runs on stand-in vectors)"),
    );
    let local = match dir {
        Some(dir) => Some(
            tokio::task::spawn_blocking(move || LocalEmbedder::open(dir))
                .await
                .expect("join")
                .expect("open the local model"),
        ),
        None => None,
    };
    Arc::new(Endpoint {
        local,
        faults: Mutex::new(faults.iter().copied().collect()),
        always_fail,
        seen: Mutex::new(Seen::default()),
    })
}

#[tokio::test]
async fn batches_retries_and_ordering() {
    let ep = endpoint(
        &[
            Fault::TooManyRequests,
            Fault::TooManyRequests,
            Fault::ServiceUnavailable,
        ],
        false,
        "batches_retries_and_ordering",
    )
    .await;
    let base = serve(Arc::clone(&ep)).await;
    let embedder = open_embedder_with(
        &format!("openai:{base}"),
        EmbedderOptions {
            api_key: Some("sk-test-123".into()),
            model: Some("minilm".into()),
            ..EmbedderOptions::default()
        },
    )
    .await
    .expect("open");
    assert_eq!(embedder.name(), "openai:minilm");
    assert_eq!(
        embedder.dimension(),
        None,
        "not known before the first answer"
    );

    let texts: Vec<String> = (0..200)
        .map(|i| format!("sentence number {i}: {}", "word ".repeat(i % 13)))
        .collect();
    let started = Instant::now();
    let vectors = embedder.embed(&texts).await.expect("embed through retries");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "retries took {:?}",
        started.elapsed()
    );
    assert_eq!(vectors.len(), 200);

    {
        let seen = ep.seen.lock().expect("lock");
        assert_eq!(seen.batches, vec![96, 96, 8], "batches of at most 96");
        assert_eq!(seen.requests, 6, "3 failures retried + 3 batches");
        assert!(seen
            .authorization
            .iter()
            .all(|a| a.as_deref() == Some("Bearer sk-test-123")));
        assert!(seen.models.iter().all(|m| m == "minilm"));
    }

    // Each vector belongs to its own text despite the shuffled answers.
    match &ep.local {
        Some(local) => {
            assert_eq!(embedder.dimension(), Some(384));
            let direct = local.embed(&texts).await.expect("direct");
            for (i, (a, b)) in vectors.iter().zip(&direct).enumerate() {
                let c = cosine(a, b);
                assert!(c > 0.9999, "text {i}: cosine {c} with the direct embedding");
            }
        }
        None => {
            assert_eq!(embedder.dimension(), Some(8));
            for (t, v) in texts.iter().zip(&vectors) {
                assert_eq!(v, &stand_in(t));
            }
        }
    }
}

#[tokio::test]
async fn a_base_url_ending_in_v1_is_not_doubled() {
    let ep = endpoint(&[], false, "a_base_url_ending_in_v1_is_not_doubled").await;
    let base = serve(Arc::clone(&ep)).await;
    let embedder = open_embedder(&format!("openai:{base}/v1/"), None)
        .await
        .expect("open");
    let v = embedder.embed(&["hello".to_owned()]).await.expect("embed");
    assert_eq!(v.len(), 1);
    let seen = ep.seen.lock().expect("lock");
    assert_eq!(seen.authorization, vec![None], "no key, no header");
    assert_eq!(seen.models, vec!["text-embedding-3-small".to_owned()]);
}

#[tokio::test]
async fn retries_stop_after_five_attempts() {
    let ep = endpoint(&[], true, "retries_stop_after_five_attempts").await;
    let base = serve(Arc::clone(&ep)).await;
    let embedder = open_embedder(&format!("openai:{base}"), None)
        .await
        .expect("open");
    let err = embedder
        .embed(&["x".to_owned()])
        .await
        .expect_err("always 500");
    assert_eq!(err.code(), "embedder_unavailable");
    assert!(err.is_retryable());
    assert!(err.message().contains("500"), "{}", err.message());
    assert_eq!(ep.seen.lock().expect("lock").requests, 5);
}

#[tokio::test]
async fn a_rejected_key_is_not_retried() {
    let ep = endpoint(
        &[Fault::Unauthorized],
        false,
        "a_rejected_key_is_not_retried",
    )
    .await;
    let base = serve(Arc::clone(&ep)).await;
    let embedder = open_embedder(&format!("openai:{base}"), Some("wrong".into()))
        .await
        .expect("open");
    let err = embedder.embed(&["x".to_owned()]).await.expect_err("401");
    assert_eq!(err.code(), "embedder_unauthorized");
    assert!(!err.is_retryable());
    assert!(
        err.message().contains("STRATA_EMBEDDER_API_KEY"),
        "{}",
        err.message()
    );
    assert_eq!(ep.seen.lock().expect("lock").requests, 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_then_unavailable() {
    // Bind and drop: nothing listens on that port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let embedder = open_embedder(&format!("openai:http://127.0.0.1:{port}"), None)
        .await
        .expect("open");
    let started = Instant::now();
    let err = embedder
        .embed(&["x".to_owned()])
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "embedder_unavailable");
    assert!(
        err.message().contains("failed 5 times"),
        "{}",
        err.message()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_configured_dimension_is_enforced() {
    let ep = endpoint(&[], false, "a_configured_dimension_is_enforced").await;
    let base = serve(Arc::clone(&ep)).await;
    let embedder = open_embedder_with(
        &format!("openai:{base}"),
        EmbedderOptions {
            dimension: Some(3),
            ..EmbedderOptions::default()
        },
    )
    .await
    .expect("open");
    assert_eq!(embedder.dimension(), Some(3));
    let err = embedder
        .embed(&["x".to_owned()])
        .await
        .expect_err("wrong dimension");
    assert_eq!(err.code(), "embedder_dimension_mismatch");
}

#[tokio::test]
async fn none_answers_no_embedder() {
    let embedder = open_embedder("none", None).await.expect("open none");
    assert_eq!(embedder.name(), "none");
    assert_eq!(embedder.dimension(), None);
    let err = embedder.embed(&["x".to_owned()]).await.expect_err("none");
    assert_eq!(err.code(), "no_embedder");
    assert_eq!(err.kind(), strata_core::ErrorKind::Unavailable);
}

#[tokio::test]
async fn malformed_specs_name_the_setting() {
    for spec in [
        "local:",
        "openai:ftp://x",
        "openai:",
        "bert:/models",
        "openai:http://",
    ] {
        let err = open_embedder(spec, None).await.expect_err(spec);
        assert_eq!(err.code(), "invalid_config", "{spec}");
        assert!(
            err.message().contains("STRATA_EMBEDDER"),
            "{spec}: {}",
            err.message()
        );
    }
    let err = open_embedder("local:/nonexistent/model", None)
        .await
        .expect_err("missing model");
    assert_eq!(err.code(), "embedder_load_failed");
}
