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
pub(crate) struct Readiness {
    /// `ok` when every layer answers; `degraded` when only the cache does
    /// not (200: requests still succeed); `down` (503) when a store does not.
    status: String,
    layers: BTreeMap<String, LayerStatus>,
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
    let all_ok = layers.iter().all(|l| l.ok);
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
