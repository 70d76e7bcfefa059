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
    /// The key expires this many seconds after the write: 1 to 315360000
    /// (ten years).
    #[param(minimum = 1, maximum = 315360000)]
    ttl_seconds: Option<i64>,
}

/// Store raw bytes under a key (URL-encode `/` in keys as `%2F`). An empty
/// (or absent) body stores the empty value.
#[utoipa::path(put, path = "/v1/bots/{bot}/kv/{key}", tag = "kv",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "Key: 1 to 1024 bytes of UTF-8 without NUL", min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$"), PutQuery),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream",
        description = "The value's bytes; empty or absent: the empty value"),
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
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "Key: 1 to 1024 bytes of UTF-8 without NUL", min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$")),
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
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "Key: 1 to 1024 bytes of UTF-8 without NUL", min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$")),
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
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("key" = String, Path, description = "Key: 1 to 1024 bytes of UTF-8 without NUL", min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$")),
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
    /// `next_cursor` of the previous page (opaque, format `cursor`).
    #[param(format = "cursor")]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
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
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ListKeysQuery),
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

#[derive(Deserialize)]
pub(crate) struct BatchOp {
    op: String,
    key: String,
    value_base64: Option<String>,
    ttl_seconds: Option<i64>,
}

/// The names of a batch operation.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum SetOpName {
    Set,
}

/// The names of a batch operation.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum DeleteOpName {
    Delete,
}

/// Store a value.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct SetOp {
    op: SetOpName,
    /// 1 to 1024 bytes of UTF-8 without NUL.
    #[schema(min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$")]
    key: String,
    /// The value, standard base64 with padding.
    #[schema(
        pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    value_base64: String,
    /// The key expires this many seconds after the write: 1 to 315360000.
    #[schema(minimum = 1, maximum = 315360000)]
    ttl_seconds: Option<i64>,
}

/// Delete a key (its other fields are ignored).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct DeleteOp {
    op: DeleteOpName,
    /// 1 to 1024 bytes of UTF-8 without NUL.
    #[schema(min_length = 1, max_length = 1024, pattern = "^[^\\x00]+$")]
    key: String,
}

/// One operation of a batch.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum BatchOpDoc {
    Set(SetOp),
    Delete(DeleteOp),
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct BatchBody {
    /// 1 to 1000 operations.
    #[schema(value_type = Vec<BatchOpDoc>, min_items = 1, max_items = 1000)]
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
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
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
    // A malformed operation (a key the schema does not allow) makes the
    // request invalid in both modes; `atomic: false` reports per operation
    // only what fails while applying.
    for (i, op) in ops.iter().enumerate() {
        op.validate().map_err(|e| {
            let code = if e.code() == "invalid_key" {
                "invalid_key"
            } else {
                "invalid_input"
            };
            Error::invalid(format!("ops[{i}]: {}", e.message())).with_code(code)
        })?;
    }
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
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = KvStats)))]
pub(crate) async fn stats(ReadScope(scope): ReadScope) -> ApiResult<Json<KvStats>> {
    Ok(Json(scope.kv_stats().await?))
}
