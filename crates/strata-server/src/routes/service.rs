//! Liveness, readiness, metrics and the OpenAPI document (no key needed).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok` when the process answers.
    status: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct LayerStatus {
    /// `ok` or `down`.
    status: String,
    backend: String,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct WorkerStatus {
    /// `running`, `restarting` (its task ended; it is started again after a
    /// backoff), `starting` or `stopped`.
    status: String,
    /// Times it was started again since the server started.
    restarts: u64,
    /// Errors it reported since the server started (failed jobs included).
    errors: u64,
    /// The last error, until a later unit of work succeeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error_at: Option<String>,
    /// Jobs (or queued messages) not done yet; absent for workers without
    /// a queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_depth: Option<u64>,
    /// How long the oldest of them has waited, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    oldest_pending_seconds: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ok` when every layer answers and can write and every worker runs;
    /// `degraded` (200: requests still succeed) when only the cache does
    /// not answer or a background worker is restarting; `down` (503) when a
    /// store does not answer or cannot write (disk full).
    status: String,
    layers: BTreeMap<String, LayerStatus>,
    /// The background workers (knowledge-base indexing, conversation
    /// memory, janitor).
    workers: BTreeMap<String, WorkerStatus>,
}

fn worker_status(w: &strata::workers::WorkerReport) -> WorkerStatus {
    WorkerStatus {
        status: w.state.phase.as_str().to_owned(),
        restarts: w.state.restarts,
        errors: w.state.errors,
        last_error: w
            .state
            .last_error
            .as_ref()
            .map(|e| e.1.clone())
            .or_else(|| w.queue_error.clone()),
        last_error_at: w.state.last_error.as_ref().map(|e| e.0.to_string()),
        queue_depth: w.queue.map(|q| q.depth),
        oldest_pending_seconds: w
            .queue
            .map(|q| (q.oldest_age_seconds * 1000.0).round() / 1000.0),
    }
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "service", security(()),
    responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness of every layer, with the latency of a round trip.
#[utoipa::path(get, path = "/ready", tag = "service", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let layers = state.strata.readiness().await;
    let workers = state.strata.worker_report().await;
    let workers_ok = workers
        .iter()
        .all(|w| w.state.phase != strata::worker::WorkerPhase::Restarting);
    let all_ok = layers.iter().all(|l| l.ok) && workers_ok;
    let ready = layers.iter().all(|l| l.ok || !l.required);
    let body = Readiness {
        status: if all_ok {
            "ok"
        } else if ready {
            "degraded"
        } else {
            "down"
        }
        .into(),
        layers: layers
            .into_iter()
            .map(|l| {
                (
                    l.layer.to_owned(),
                    LayerStatus {
                        status: if l.ok { "ok" } else { "down" }.into(),
                        backend: l.backend.to_owned(),
                        latency_ms: (l.latency_ms * 1000.0).round() / 1000.0,
                        error: l.error,
                    },
                )
            })
            .collect(),
        workers: workers
            .iter()
            .map(|w| (w.name.to_owned(), worker_status(w)))
            .collect(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Worker gauges are read at scrape time.
    for w in state.strata.worker_report().await {
        let s = &w.state;
        let name = w.name;
        metrics::gauge!("strata_worker_up", "worker" => name).set(
            if s.phase == strata::worker::WorkerPhase::Running {
                1.0
            } else {
                0.0
            },
        );
        metrics::gauge!("strata_worker_restarts", "worker" => name).set(s.restarts as f64);
        metrics::gauge!("strata_worker_errors", "worker" => name).set(s.errors as f64);
        metrics::gauge!("strata_worker_failing", "worker" => name).set(if s.last_error.is_some() {
            1.0
        } else {
            0.0
        });
        if let Some(q) = w.queue {
            metrics::gauge!("strata_worker_queue_depth", "worker" => name).set(q.depth as f64);
            metrics::gauge!("strata_worker_oldest_pending_seconds", "worker" => name)
                .set(q.oldest_age_seconds);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")))]
pub(crate) async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.openapi.as_ref().clone())
}
