//! Extractors: authentication, bot scopes, and JSON/query/body extractors
//! whose rejections are problem+json like every other error.

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use strata::{BotScope, Principal, Role};

use crate::error::{problem, ApiError};
use crate::AppState;

/// JSON body; malformed JSON, wrong types and oversized bodies are problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        // serde_json directly: axum's `Json::from_bytes` runs every value
        // through `serde_path_to_error` (a tracked seed per array element,
        // ~5 % of a 384-float search's server CPU). Only a body that fails
        // is parsed again through axum, for the same error and its path.
        if let Ok(v) = serde_json::from_slice::<T>(&bytes) {
            return Ok(Json(v));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::JsonDataError(e)) => match from_integral_json(&bytes) {
                Some(v) => Ok(Json(v)),
                None => Err(json_rejection(JsonRejection::JsonDataError(e))),
            },
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

/// `application/json` or `application/<anything>+json`, as axum's own
/// extractor accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// JSON Schema's `integer` admits `3.0` (a number with no fraction), so the
/// API document's integers do too: a body that serde refused is read again
/// with every integral float written as an integer. Only refused bodies pay
/// for the second parse.
pub fn from_integral_json<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !integralize(&mut v) {
        return None;
    }
    serde_json::from_value(v).ok()
}

/// Rewrites integral floats that fit an `i64` or `u64` as integers; true
/// when anything changed.
fn integralize(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return false };
            if f.fract() != 0.0 || !f.is_finite() {
                return false;
            }
            // Exact: the float is an integer below 2^64 in magnitude.
            let int = if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                Some(Value::from(f as u64))
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                Some(Value::from(f as i64))
            } else {
                None
            };
            match int {
                Some(i) => {
                    *v = i;
                    true
                }
                None => false,
            }
        }
        Value::Array(items) => items.iter_mut().fold(false, |c, x| integralize(x) | c),
        Value::Object(map) => map.values_mut().fold(false, |c, x| integralize(x) | c),
        _ => false,
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rej: JsonRejection) -> Response {
    let status = rej.status();
    let detail = rej.body_text();
    match rej {
        JsonRejection::JsonSyntaxError(_) => {
            problem(StatusCode::BAD_REQUEST, "invalid_json", detail)
        }
        JsonRejection::JsonDataError(_) => {
            problem(StatusCode::BAD_REQUEST, "invalid_input", detail)
        }
        JsonRejection::MissingJsonContentType(_) => problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => problem(StatusCode::BAD_REQUEST, "invalid_input", detail),
    }
}

fn too_large() -> Response {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the server's limit (STRATA_MAX_BODY_BYTES)",
    )
}

/// Query string; wrong types are `invalid_input`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rej) => Err(query_rejection(rej)),
        }
    }
}

fn query_rejection(rej: QueryRejection) -> Response {
    problem(StatusCode::BAD_REQUEST, "invalid_input", rej.body_text())
}

/// A raw body (kv values), bounded by the body limit.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(rej) => Err(bytes_rejection(rej)),
        }
    }
}

fn bytes_rejection(rej: BytesRejection) -> Response {
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        problem(rej.status(), "invalid_input", rej.body_text())
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(crate::rate_limit::Authenticated(who)) =
            parts.extensions.get::<crate::rate_limit::Authenticated>()
        {
            return Ok(Caller(who.clone()));
        }
        state
            .strata
            .authenticate(bearer_token(&parts.headers))
            .await
            .map(Caller)
            .map_err(|e| ApiError(e).into_response())
    }
}

async fn scope_for(parts: &mut Parts, state: &AppState, need: Role) -> Result<BotScope, Response> {
    let Caller(who) = Caller::from_request_parts(parts, state).await?;
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| problem(StatusCode::BAD_REQUEST, "invalid_input", e.body_text()))?;
    let bot = params
        .iter()
        .find(|(k, _)| *k == "bot")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    state
        .strata
        .scope(&who, &bot, need)
        .await
        .map_err(|e| ApiError(e).into_response())
}

macro_rules! scope_extractor {
    ($name:ident, $role:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub BotScope);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Response;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                scope_for(parts, state, $role).await.map($name)
            }
        }
    };
}

scope_extractor!(
    ReadScope,
    Role::Reader,
    "The `{bot}` of the path, for a key with at least the reader role."
);
scope_extractor!(
    WriteScope,
    Role::Writer,
    "The `{bot}` of the path, for a key with at least the writer role."
);
scope_extractor!(
    AdminScope,
    Role::Admin,
    "The `{bot}` of the path, for a bot admin key or the global admin key."
);

/// The caller, who must hold the global admin key (checked before the body).
#[derive(Debug, Clone)]
pub struct GlobalAdmin(pub Principal);

impl FromRequestParts<AppState> for GlobalAdmin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(who) = Caller::from_request_parts(parts, state).await?;
        who.require_admin()
            .map_err(|e| ApiError(e).into_response())?;
        Ok(GlobalAdmin(who))
    }
}
