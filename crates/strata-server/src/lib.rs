//! Strata's HTTP API: a thin axum layer over the [`strata`] facade.
//!
//! Handlers only translate: extract the caller and the bot scope, parse the
//! body, call one facade method, shape the response. Errors become
//! problem+json in [`error`]. The OpenAPI document is generated from the
//! handlers' annotations and served at `/v1/openapi.json`.

pub mod error;
pub mod extract;
mod metrics_layer;
pub mod qdrant;
pub mod rate_limit;
mod routes;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use strata::Strata;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, Problem};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub strata: Strata,
    /// The OpenAPI document, serialised once.
    pub openapi: Arc<serde_json::Value>,
    pub metrics: PrometheusHandle,
    /// Serialised history reads, valid while their version is current.
    pub history_cache: Arc<HistoryCache>,
    /// `STRATA_HISTORY_CACHE_BYTES` > 0.
    pub history_cache_on: bool,
}

/// Key: bot, conversation, the normalised query. Value: the history version
/// the read started at, and the response body.
pub type HistoryCache = quick_cache::sync::Cache<
    (String, String, String),
    (strata::HistoryVersion, bytes::Bytes),
    BodyWeighter,
>;

/// Weighs a cached response by its size.
#[derive(Debug, Clone, Copy)]
pub struct BodyWeighter;

impl quick_cache::Weighter<(String, String, String), (strata::HistoryVersion, bytes::Bytes)>
    for BodyWeighter
{
    fn weight(
        &self,
        key: &(String, String, String),
        val: &(strata::HistoryVersion, bytes::Bytes),
    ) -> u64 {
        (key.0.len() + key.1.len() + key.2.len() + val.1.len() + 64) as u64
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Strata",
        description = "Storage for conversational AI: bots, people, sessions, conversations, key-value, vectors and more.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    security(("bearer" = [])),
    tags(
        (name = "service", description = "Liveness, readiness, metrics and this document"),
        (name = "bots", description = "Bots (tenants) and their API keys"),
        (name = "people", description = "Users, groups and sessions"),
        (name = "conversations", description = "Conversations and their messages"),
        (name = "bot data", description = "Presets, tool logs and bot configuration"),
        (name = "kv", description = "Per-bot key-value store"),
        (name = "vectors", description = "Vector collections: points with payloads, filtered ANN search, export and import"),
        (name = "memory", description = "Conversation memory: with the bot setting memory.enabled = true, user and assistant messages are embedded and searchable by meaning"),
        (name = "kb", description = "Knowledge base: documents under <bot>.gbai/<bot>.gbkb/ in the drive, their indexing status, keyword/dense/hybrid search"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    routes::register(OpenApiRouter::with_openapi(ApiDoc::openapi()))
}

/// Documents the problem+json error responses every operation can give.
fn add_problem_responses(doc: &mut OpenApiDoc) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.head,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let public = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
            let responses = &mut op.responses.responses;
            if !public {
                responses.entry("401".into()).or_insert_with(|| {
                    problem("No key, or an unknown or revoked key (`unauthorized`)").into()
                });
                responses.entry("403".into()).or_insert_with(|| {
                    problem("The key's role does not allow this (`forbidden`)").into()
                });
                responses.entry("404".into()).or_insert_with(|| {
                    problem("Not found, or another bot's data (`not_found`)").into()
                });
            }
            responses.entry("4XX".into()).or_insert_with(|| {
                problem("Invalid input and other client errors, with a stable `code`").into()
            });
        }
    }
}

/// The OpenAPI document, generated from the handlers.
pub fn openapi() -> OpenApiDoc {
    let mut doc = api_router().split_for_parts().1;
    add_problem_responses(&mut doc);
    doc
}

fn app_state(strata: Strata, openapi: serde_json::Value) -> AppState {
    let history_bytes = strata.config().history_cache_bytes;
    AppState {
        strata,
        openapi: Arc::new(openapi),
        metrics: metrics_layer::handle(),
        history_cache: Arc::new(quick_cache::sync::Cache::with_weighter(
            16_384,
            history_bytes.max(1),
            BodyWeighter,
        )),
        history_cache_on: history_bytes > 0,
    }
}

/// The full HTTP application over `strata`, with the Qdrant-compatible
/// API under `/qdrant`.
pub fn router(strata: Strata) -> Router {
    let (api, mut doc) = api_router().split_for_parts();
    add_problem_responses(&mut doc);
    let limit = usize::try_from(strata.config().max_body_bytes).unwrap_or(usize::MAX);
    let state = app_state(strata, serde_json::to_value(&doc).unwrap_or_default());
    api.nest("/qdrant", qdrant::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ))
        .layer(axum::middleware::from_fn(metrics_layer::track))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    error::problem(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> Response {
    error::problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response()
}

/// Serves `strata` on `listener` until `shutdown` resolves.
pub async fn serve(
    strata: Strata,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(router(strata), listener, shutdown).await
}

async fn serve_app(
    app: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // In-flight requests get a bounded time to finish once the signal
    // came (a long download must not hold a stop for minutes).
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    };
    // TCP_NODELAY on every connection, as HTTP servers do: a response
    // written in more than one piece must not wait for the client's
    // delayed ACK (axum 0.8 no longer sets it).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    tokio::select! {
        r = server.into_future() => r,
        _ = async {
            if signalled_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "requests still running after the shutdown grace period were cut off");
            Ok(())
        }
    }
}

/// The Qdrant-compatible API alone, at the root (`STRATA_QDRANT_LISTEN`).
pub fn qdrant_router(strata: Strata) -> Router {
    let keyless = strata
        .config()
        .qdrant_keyless_bot
        .as_deref()
        .and_then(|b| strata::BotId::parse(b).ok());
    let state = app_state(strata, serde_json::Value::Null);
    let app = qdrant::router().layer(axum::middleware::from_fn(metrics_layer::track));
    match keyless {
        Some(bot) => app
            .layer(axum::Extension(qdrant::KeylessBot(bot)))
            .with_state(state),
        None => app.with_state(state),
    }
}

/// Serves the Qdrant-compatible API on `listener` until `shutdown`
/// resolves.
pub async fn serve_qdrant(
    strata: Strata,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(qdrant_router(strata), listener, shutdown).await
}

/// How long in-flight requests may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
