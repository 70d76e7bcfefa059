//! Rate limiting: every authenticated `/v1` request is counted against its
//! key's limit for the endpoint group (and its user's, when the request
//! names a session in `X-Strata-Session`). Over the limit → 429 with
//! `Retry-After`; every limited response carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`.
//!
//! A request whose key fails authentication (unknown, malformed or revoked)
//! is counted against the client address's failure bucket — and the key
//! id's, where the key carries one — at `STRATA_AUTH_FAILURE_LIMIT` per
//! minute: past it, 429 with `Retry-After` instead of 401. A request without
//! any key guesses nothing and is simply answered 401; requests with valid
//! keys never touch those buckets.
//!
//! Looking up the session's user has no side effect: the session's expiry
//! does not slide (only resolving a session does that).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use strata::limits::endpoint_group;
use strata::{Principal, Role, Throttle};

use crate::error::problem;
use crate::extract::bearer_token;
use crate::AppState;

/// The principal the rate limiter authenticated, reused by the extractors.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// The header naming a user session for per-user limits.
pub const SESSION_HEADER: &str = "x-strata-session";

fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

fn set_headers(headers: &mut HeaderMap, t: &Throttle) {
    let mut put = |name: &'static str, v: u64| {
        if let Ok(value) = HeaderValue::from_str(&v.to_string()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("ratelimit-limit", u64::from(t.limit));
    put("ratelimit-remaining", u64::from(t.remaining));
    put("ratelimit-reset", ceil_secs(t.reset_after));
    if let Some(retry) = t.retry_after {
        put("retry-after", ceil_secs(retry).max(1));
    }
}

/// Whether the request carries a key at all (any `Authorization` value): a
/// request without one guesses nothing.
fn presented_a_key(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
}

/// The middleware.
pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/v1/") || path == "/v1/openapi.json" {
        return next.run(req).await;
    }
    let token = bearer_token(req.headers());
    let who = match state.strata.authenticate(token).await {
        Ok(who) => who,
        Err(e) if e.kind() == strata::ErrorKind::Unauthorized && presented_a_key(req.headers()) => {
            // Key guessing is throttled per address and per key id; under
            // the limit the extractors answer 401 as before.
            let client = req
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip());
            let key_id = token
                .and_then(strata::auth::claimed_key_id)
                .map(str::to_owned);
            let decision = state
                .strata
                .throttle_auth_failure(client, key_id.as_deref())
                .await;
            if !decision.allowed {
                let retry = decision.retry_after.map(ceil_secs).unwrap_or(1).max(1);
                let mut res = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many failed authentications from this client; retry in {retry} s"),
                );
                set_headers(res.headers_mut(), &decision);
                return res;
            }
            return next.run(req).await;
        }
        // The records store did not answer: the extractor reports it.
        Err(_) => return next.run(req).await,
    };
    let (bot, group) = endpoint_group(&path);
    let user = match (
        req.headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok()),
        bot,
    ) {
        (Some(token), Some(bot)) => match state.strata.scope(&who, bot, Role::Reader).await {
            Ok(scope) => scope.session_user(token).await,
            Err(_) => None,
        },
        _ => None,
    };
    let decision = state
        .strata
        .throttle(&who, bot, group, user.as_deref())
        .await;
    if !decision.allowed {
        let retry = decision.retry_after.map(ceil_secs).unwrap_or(1).max(1);
        let mut res = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "rate limit of {} requests per minute for the {group} endpoints exceeded; retry in {retry} s",
                decision.limit
            ),
        );
        set_headers(res.headers_mut(), &decision);
        return res;
    }
    req.extensions_mut().insert(Authenticated(who));
    let mut res = next.run(req).await;
    set_headers(res.headers_mut(), &decision);
    res
}
