//! Qdrant's REST API over Strata's vector collections.
//!
//! The part of Qdrant's surface that its Python clients, LangChain's
//! `QdrantVectorStore` and LlamaIndex's Qdrant store use (see
//! `qdrant/COMPAT.md` in the shared notes): served at the root of
//! `STRATA_QDRANT_LISTEN` and under `/qdrant` of the main listener. A bot
//! key in the `api-key` header (or `Authorization: Bearer`) selects the
//! bot; its collections are ordinary Strata collections, so points written
//! through either API are visible through the other. Handlers only
//! translate Qdrant's shapes to the facade's calls (the same ones
//! `/v1/bots/{bot}/collections` uses) and back.
//!
//! Success: `{"result": …, "status": "ok", "time": seconds}`. Errors:
//! `{"status": {"error": "…"}, "time": …}` with Qdrant's wording where
//! clients test it (`already exists`, `doesn't exist`). What Strata does
//! not support (sparse and multiple vectors, multivectors, recommend,
//! discovery, snapshots, shard keys, geo conditions, full-text indexes) is
//! answered 400 with a message that says so.

mod filter;
mod handlers;
mod ids;
mod json_in;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::Router;
use bytes::Bytes;
use serde::Serialize;
use std::time::Instant;
use strata::{BotScope, ErrorKind, Principal, Role};

use crate::AppState;

/// Largest request body on the Qdrant API (Qdrant's own limit).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// An error in Qdrant's form.
#[derive(Debug, Clone)]
pub struct QError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl QError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        QError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `Format error in JSON body: …`.
    pub fn format(msg: impl std::fmt::Display) -> Self {
        QError::new(
            StatusCode::BAD_REQUEST,
            format!("Format error in JSON body: {msg}"),
        )
    }

    /// 400 `Wrong input: …`.
    pub fn wrong_input(msg: impl std::fmt::Display) -> Self {
        QError::new(StatusCode::BAD_REQUEST, format!("Wrong input: {msg}"))
    }

    /// 400 for a Qdrant feature Strata does not have.
    pub fn unsupported(what: impl std::fmt::Display) -> Self {
        QError::new(
            StatusCode::BAD_REQUEST,
            format!("Wrong input: {what} is not supported by Strata's Qdrant-compatible API"),
        )
    }

    /// 404 for a collection.
    pub fn no_collection(name: &str) -> Self {
        QError::new(
            StatusCode::NOT_FOUND,
            format!("Not found: Collection `{name}` doesn't exist!"),
        )
    }

    /// Maps a facade error; `collection` names the collection in messages.
    pub fn from_strata(e: strata::Error, collection: &str) -> Self {
        let msg = e.message().to_owned();
        match (e.kind(), e.code()) {
            (_, "collection_not_found") => QError::no_collection(collection),
            (_, "collection_exists") => QError::new(
                StatusCode::CONFLICT,
                format!("Wrong input: Collection `{collection}` already exists!"),
            ),
            (_, "dimension_mismatch") => match dimensions(&msg) {
                Some((got, expected)) => QError::wrong_input(format!(
                    "Vector dimension error: expected dim: {expected}, got {got}"
                )),
                None => QError::wrong_input(msg),
            },
            (_, "point_not_found") => QError::new(
                StatusCode::NOT_FOUND,
                format!("Not found: {}", point_message(&msg)),
            ),
            (ErrorKind::NotFound, _) => {
                QError::new(StatusCode::NOT_FOUND, format!("Not found: {msg}"))
            }
            (ErrorKind::InvalidInput, _) => QError::wrong_input(msg),
            (ErrorKind::AlreadyExists | ErrorKind::Conflict, _) => {
                QError::new(StatusCode::CONFLICT, format!("Wrong input: {msg}"))
            }
            (ErrorKind::Unauthorized, _) => {
                QError::new(StatusCode::UNAUTHORIZED, format!("Unauthorized: {msg}"))
            }
            (ErrorKind::Forbidden, _) => {
                QError::new(StatusCode::FORBIDDEN, format!("Forbidden: {msg}"))
            }
            (ErrorKind::QuotaExceeded, _) => {
                QError::new(StatusCode::FORBIDDEN, format!("Forbidden: {msg}"))
            }
            (ErrorKind::RateLimited, _) => QError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many requests: {msg}"),
            ),
            (ErrorKind::PayloadTooLarge, _) => QError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload too large: {msg}"),
            ),
            (ErrorKind::Unavailable, _) => QError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Service unavailable: {msg}"),
            ),
            _ => {
                tracing::error!(error = %e, "qdrant api request failed");
                QError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Service internal error: see the server log",
                )
            }
        }
    }
}

/// `(got, expected)` of the engine's "vector has N dimensions; the
/// collection has M".
fn dimensions(msg: &str) -> Option<(usize, usize)> {
    let num_after = |pat: &str| -> Option<usize> {
        let rest = &msg[msg.find(pat)? + pat.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some((num_after("vector has ")?, num_after("collection has ")?))
}

/// Qdrant's "Point with id N does not exists!" from the engine's "point N
/// not found".
fn point_message(msg: &str) -> String {
    match msg
        .strip_prefix("point ")
        .and_then(|m| m.strip_suffix(" not found"))
    {
        Some(id) => format!("Point with id {id} does not exists!"),
        None => msg.to_owned(),
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: ErrorStatus<'a>,
    time: f64,
}

#[derive(Serialize)]
struct ErrorStatus<'a> {
    error: &'a str,
}

impl IntoResponse for QError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            status: ErrorStatus {
                error: &self.message,
            },
            time: 0.0,
        })
        .unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// The success envelope.
#[derive(Serialize)]
struct Envelope<T> {
    result: T,
    status: &'static str,
    time: f64,
}

/// `{"result": result, "status": "ok", "time": seconds since started}`.
pub fn ok<T: Serialize>(started: Instant, result: T) -> Response {
    let body = serde_json::to_vec(&Envelope {
        result,
        status: "ok",
        time: started.elapsed().as_secs_f64(),
    });
    match body {
        Ok(b) => {
            let mut res = (StatusCode::OK, b).into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(e) => QError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Service internal error: {e}"),
        )
        .into_response(),
    }
}

/// The key of a request: `api-key`, else `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .or_else(|| crate::extract::bearer_token(headers).map(str::trim))
}

/// The bot scope of the request's key, rate limited like the `vectors`
/// endpoints of `/v1`. The global admin key is refused: the Qdrant API has
/// no bot in its paths, so only a bot key says whose collections these are.
#[derive(Debug, Clone)]
pub struct QScope(pub BotScope);

impl FromRequestParts<AppState> for QScope {
    type Rejection = QError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, QError> {
        let token = presented_key(&parts.headers);
        let keyless = parts.extensions.get::<KeylessBot>();
        let who = match (token, keyless) {
            (None, Some(KeylessBot(bot))) => {
                // The bot must exist (a key would prove it); remembered
                // until a bot is deleted, so no store read per request.
                state
                    .strata
                    .ensure_bot(bot)
                    .await
                    .map_err(|e| QError::from_strata(e, ""))?;
                Ok(Principal::Bot {
                    bot: bot.clone(),
                    role: Role::Admin,
                    key_id: "qdrant-keyless".into(),
                })
            }
            _ => state.strata.authenticate(token).await,
        };
        let who = match who {
            Ok(who) => who,
            Err(e) if e.kind() == ErrorKind::Unauthorized => {
                if token.is_some() {
                    let client = parts
                        .extensions
                        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                        .map(|c| c.0.ip());
                    let key_id = token.and_then(strata::auth::claimed_key_id);
                    let d = state.strata.throttle_auth_failure(client, key_id).await;
                    if !d.allowed {
                        let retry = d.retry_after.map(|r| r.as_secs().max(1)).unwrap_or(1);
                        let mut err = QError::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            format!("Too many requests: too many failed authentications from this client; retry in {retry} s"),
                        );
                        err.retry_after = Some(retry);
                        return Err(err);
                    }
                }
                return Err(QError::new(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "Unauthorized: {}; send a Strata bot key in the api-key header",
                        e.message()
                    ),
                ));
            }
            Err(e) => return Err(QError::from_strata(e, "")),
        };
        let bot = match &who {
            Principal::Bot { bot, .. } => bot.clone(),
            Principal::Admin => {
                return Err(QError::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden: the global admin key has no collections of its own; use a bot key (POST /v1/bots/{bot}/keys) with the Qdrant API",
                ))
            }
        };
        let decision = state
            .strata
            .throttle(&who, Some(bot.as_str()), "vectors", None)
            .await;
        if !decision.allowed {
            let retry = decision
                .retry_after
                .map(|r| r.as_millis().div_ceil(1000) as u64)
                .unwrap_or(1)
                .max(1);
            let mut err = QError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many requests: rate limit of {} requests per minute exceeded; retry in {retry} s",
                    decision.limit
                ),
            );
            err.retry_after = Some(retry);
            return Err(err);
        }
        state
            .strata
            .scope(&who, bot.as_str(), Role::Reader)
            .await
            .map(QScope)
            .map_err(|e| QError::from_strata(e, ""))
    }
}

/// On the Qdrant listener with `STRATA_QDRANT_KEYLESS_BOT`: the bot a
/// request without a key acts as (its admin).
#[derive(Debug, Clone)]
pub struct KeylessBot(pub strata::BotId);

/// A JSON body, whatever its `Content-Type` (Qdrant reads any); an empty
/// body is `null`.
#[derive(Debug)]
pub struct QBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for QBody {
    type Rejection = QError;

    async fn from_request(req: Request, state: &S) -> Result<Self, QError> {
        Bytes::from_request(req, state)
            .await
            .map(QBody)
            .map_err(|rej| {
                if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    QError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("Payload error: the body is larger than {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    QError::new(rej.status(), format!("Payload error: {}", rej.body_text()))
                }
            })
    }
}

impl QBody {
    /// The body as `T`; Qdrant's "Format error in JSON body" otherwise.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, QError> {
        serde_json::from_slice(&self.0).map_err(QError::format)
    }

    /// Like [`QBody::parse`], an empty body being `T::default()`.
    pub fn parse_or_default<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, QError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.parse()
    }
}

/// Whether the query string says `wait=true`.
pub fn wait_requested(uri: &axum::http::Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.eq_ignore_ascii_case("wait=true") || kv == "wait")
    })
}

/// The Qdrant API's routes; state-less until the caller adds it.
pub fn router() -> Router<AppState> {
    use handlers::*;
    Router::new()
        .route("/", get(root))
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(readyz))
        .route("/collections", get(list_collections))
        .route("/collections/aliases", get(unsupported_aliases))
        .route(
            "/collections/{c}",
            get(get_collection)
                .put(create_collection)
                .delete(delete_collection)
                .patch(unsupported_update_collection),
        )
        .route("/collections/{c}/exists", get(collection_exists))
        .route("/collections/{c}/index", put(create_index))
        .route("/collections/{c}/points", put(upsert).post(retrieve))
        .route("/collections/{c}/points/{id}", get(get_point))
        .route("/collections/{c}/points/query", post(query))
        .route("/collections/{c}/points/query/batch", post(query_batch))
        .route("/collections/{c}/points/search", post(search))
        .route("/collections/{c}/points/search/batch", post(search_batch))
        .route("/collections/{c}/points/scroll", post(scroll))
        .route("/collections/{c}/points/count", post(count))
        .route("/collections/{c}/points/delete", post(delete_points))
        .route(
            "/collections/{c}/points/payload",
            post(set_payload).put(overwrite_payload),
        )
        .route(
            "/collections/{c}/points/recommend",
            any(unsupported_recommend),
        )
        .route(
            "/collections/{c}/points/recommend/{rest}",
            any(unsupported_recommend),
        )
        .route(
            "/collections/{c}/points/discover",
            any(unsupported_discover),
        )
        .route(
            "/collections/{c}/points/discover/{rest}",
            any(unsupported_discover),
        )
        .route(
            "/collections/{c}/points/query/groups",
            any(unsupported_groups),
        )
        .route(
            "/collections/{c}/points/search/groups",
            any(unsupported_groups),
        )
        .route("/collections/{c}/points/vectors", any(unsupported_vectors))
        .route(
            "/collections/{c}/points/vectors/{rest}",
            any(unsupported_vectors),
        )
        .route("/collections/{c}/snapshots", any(unsupported_snapshots))
        .route(
            "/collections/{c}/snapshots/{rest}",
            any(unsupported_snapshots),
        )
        .route("/snapshots", any(unsupported_snapshots))
        .route("/snapshots/{rest}", any(unsupported_snapshots))
        .route("/collections/{c}/shards", any(unsupported_shards))
        .route("/collections/{c}/aliases", any(unsupported_aliases))
        .route("/collections/{c}/cluster", any(unsupported_cluster))
        .route("/cluster", any(unsupported_cluster))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Qdrant answers an unknown path 404 with an empty body.
async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}
