//! The per-bot key-value store: raw bytes in and out.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use strata::{Error, KvBatchResult, KvOp, KvOpOutcome, KvStats};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiResult;
use crate::extract::{Json, Query, RawBody, ReadScope, WriteScope};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PutQuery {
    /// The key expires this many seconds after the write.
    ttl_seconds: Option<i64>,
}

/// Store raw bytes under a key (URL-encode `/` in keys as `%2F`).
#[utoipa::path(put, path = "/v1/bots/{bot}/kv/{key}", tag = "kv",
    params(("bot" = String, Path, description = "Bot id"), ("key" = String, Path, description = "Key"), PutQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204, description = "Stored")))]
pub(crate) async fn put_value(
    WriteScope(scope): WriteScope,
    Path((_bot, key)): Path<(String, String)>,
    Query(q): Query<PutQuery>,
    RawBody(body): RawBody,
) -> ApiResult<StatusCode> {
    scope.kv_put(&key, body, q.ttl_seconds).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The bytes stored under a key.
#[utoipa::path(get, path = "/v1/bots/{bot}/kv/{key}", tag = "kv",
    params(("bot" = String, Path, description = "Bot id"), ("key" = String, Path, description = "Key")),
    responses((status = 200, description = "The value", content_type = "application/octet-stream", body = Vec<u8>)))]
pub(crate) async fn get_value(
    ReadScope(scope): ReadScope,
    Path((_bot, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    let value = scope.kv_get(&key).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response())
}

/// Whether a key has a live value (200 or 404, no body).
#[utoipa::path(head, path = "/v1/bots/{bot}/kv/{key}", tag = "kv",
    params(("bot" = String, Path, description = "Bot id"), ("key" = String, Path, description = "Key")),
    responses((status = 200, description = "The key exists"), (status = 404, description = "No such key")))]
pub(crate) async fn head_value(
    ReadScope(scope): ReadScope,
    Path((_bot, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if scope.kv_exists(&key).await? {
        Ok(StatusCode::OK)
    } else {
        Ok(StatusCode::NOT_FOUND)
    }
}

/// Delete a key; 404 when it had no live value.
#[utoipa::path(delete, path = "/v1/bots/{bot}/kv/{key}", tag = "kv",
    params(("bot" = String, Path, description = "Bot id"), ("key" = String, Path, description = "Key")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_value(
    WriteScope(scope): WriteScope,
    Path((_bot, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    scope.kv_delete(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListKeysQuery {
    /// Only keys starting with this.
    prefix: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KeyPage {
    /// In byte order.
    keys: Vec<String>,
    next_cursor: Option<String>,
}

/// List keys by prefix.
#[utoipa::path(get, path = "/v1/bots/{bot}/kv", tag = "kv",
    params(("bot" = String, Path, description = "Bot id"), ListKeysQuery),
    responses((status = 200, body = KeyPage)))]
pub(crate) async fn list_keys(
    ReadScope(scope): ReadScope,
    Query(q): Query<ListKeysQuery>,
) -> ApiResult<Json<KeyPage>> {
    let page = strata::PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let page = scope
        .kv_list(q.prefix.as_deref().unwrap_or(""), &page)
        .await?;
    Ok(Json(KeyPage {
        keys: page.items,
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct BatchOp {
    /// `set` or `delete`.
    op: String,
    key: String,
    /// The value of a `set`, base64.
    value_base64: Option<String>,
    ttl_seconds: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct BatchBody {
    ops: Vec<BatchOp>,
    /// `true`: all or nothing. `false`: each op on its own, with per-op results.
    #[serde(default = "yes")]
    atomic: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, ToSchema)]
pub(crate) struct BatchResult {
    /// Operations applied.
    applied: usize,
    /// With `atomic: false`, each operation's outcome in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Vec<KvOpOutcome>>,
}

fn to_op(i: usize, o: BatchOp) -> strata::Result<KvOp> {
    match o.op.as_str() {
        "set" => {
            let b64 = o
                .value_base64
                .ok_or_else(|| Error::invalid(format!("ops[{i}]: a set needs value_base64")))?;
            let value = STANDARD.decode(b64.as_bytes()).map_err(|_| {
                Error::invalid(format!("ops[{i}]: value_base64 is not valid base64"))
            })?;
            let ttl = strata::scope_ttl(o.ttl_seconds).map_err(|e| {
                Error::invalid(format!("ops[{i}]: {}", e.message())).with_code("invalid_ttl")
            })?;
            Ok(KvOp::Set {
                key: o.key,
                value: value.into(),
                ttl,
            })
        }
        "delete" => Ok(KvOp::Delete { key: o.key }),
        other => Err(Error::invalid(format!(
            "ops[{i}]: op {other:?} is unknown: expected set or delete"
        ))
        .with_code("invalid_op")),
    }
}

/// Apply several sets and deletes; with `atomic: true` (the default) all or nothing.
#[utoipa::path(post, path = "/v1/bots/{bot}/kv/batch", tag = "kv", request_body = BatchBody,
    params(("bot" = String, Path, description = "Bot id")),
    responses((status = 200, body = BatchResult)))]
pub(crate) async fn batch(
    WriteScope(scope): WriteScope,
    Json(b): Json<BatchBody>,
) -> ApiResult<Json<BatchResult>> {
    let ops = b
        .ops
        .into_iter()
        .enumerate()
        .map(|(i, o)| to_op(i, o))
        .collect::<strata::Result<Vec<_>>>()?;
    Ok(Json(match scope.kv_batch(ops, b.atomic).await? {
        KvBatchResult::Applied(n) => BatchResult {
            applied: n,
            results: None,
        },
        KvBatchResult::Outcomes(results) => BatchResult {
            applied: results.iter().filter(|r| r.status == "ok").count(),
            results: Some(results),
        },
    }))
}

/// Live keys and value bytes of the bot's key-value store.
#[utoipa::path(get, path = "/v1/bots/{bot}/kv-stats", tag = "kv",
    params(("bot" = String, Path, description = "Bot id")),
    responses((status = 200, body = KvStats)))]
pub(crate) async fn stats(ReadScope(scope): ReadScope) -> ApiResult<Json<KvStats>> {
    Ok(Json(scope.kv_stats().await?))
}
