//! Conversation memory: a bot's past messages searchable by meaning.
//! Switched on per bot with the setting `memory.enabled` = true
//! (`PUT /v1/bots/{bot}/config/memory.enabled`).

use serde::{Deserialize, Serialize};
use strata::memory::MemoryQuery;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Json, ReadScope, WriteScope};

/// A search of remembered messages.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemorySearchBody {
    /// What to look for, in natural language: not blank, at most 4096 bytes
    /// of UTF-8.
    #[schema(
        max_length = 4096,
        pattern = "^[\\s\\S]*[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][\\s\\S]*$"
    )]
    query: String,
    /// How many messages, 1 to 100 (default 5).
    #[schema(minimum = 1, maximum = 100)]
    k: Option<usize>,
    /// Only this user's messages.
    user_id: Option<String>,
    /// Only this conversation's messages.
    conversation_id: Option<String>,
    /// Only `user` or only `assistant` messages.
    #[schema(value_type = Option<RememberedRole>)]
    role: Option<String>,
    /// Leave out messages whose cosine similarity is below this.
    #[schema(value_type = Option<super::vectors::F32>)]
    min_score: Option<f32>,
}

/// The roles conversation memory keeps.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum RememberedRole {
    User,
    Assistant,
}

/// One remembered message.
#[derive(Serialize, ToSchema)]
pub(crate) struct MemoryResult {
    message_id: String,
    conversation_id: String,
    user_id: String,
    seq: i64,
    role: String,
    content: String,
    created_at: String,
    /// Cosine similarity to the query; higher is closer.
    score: f32,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct MemoryResults {
    results: Vec<MemoryResult>,
}

/// Where a bot's memory stands.
#[derive(Serialize, ToSchema)]
pub(crate) struct MemoryStatusBody {
    /// The bot's `memory.enabled` setting.
    enabled: bool,
    /// Messages remembered (embedded).
    indexed: u64,
    /// Messages waiting to be embedded.
    pending: u64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct MemoryReindexed {
    /// Messages queued.
    queued: u64,
}

/// Searches the bot's past messages by meaning, optionally one user's, one
/// conversation's or one role's.
#[utoipa::path(post, path = "/v1/bots/{bot}/memory/search", tag = "memory",
    request_body = MemorySearchBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = MemoryResults)))]
pub(crate) async fn search(
    ReadScope(scope): ReadScope,
    Json(b): Json<MemorySearchBody>,
) -> ApiResult<Json<MemoryResults>> {
    if let Some(s) = b.min_score {
        if !s.is_finite() {
            return Err(strata::Error::invalid("min_score must be a finite number")
                .with_code("invalid_input")
                .into());
        }
    }
    let hits = scope
        .memory_search(MemoryQuery {
            query: b.query,
            k: b.k.unwrap_or(5),
            user_id: b.user_id,
            conversation_id: b.conversation_id,
            role: b.role,
            min_score: b.min_score,
        })
        .await?;
    Ok(Json(MemoryResults {
        results: hits
            .into_iter()
            .map(|h| MemoryResult {
                message_id: h.message_id,
                conversation_id: h.conversation_id,
                user_id: h.user_id,
                seq: h.seq,
                role: h.role,
                content: h.content,
                created_at: h.created_at.to_rfc3339(),
                score: h.score,
            })
            .collect(),
    }))
}

/// Whether memory is on, and how many messages are remembered and queued.
#[utoipa::path(get, path = "/v1/bots/{bot}/memory", tag = "memory",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = MemoryStatusBody)))]
pub(crate) async fn status(ReadScope(scope): ReadScope) -> ApiResult<Json<MemoryStatusBody>> {
    let s = scope.memory_status().await?;
    Ok(Json(MemoryStatusBody {
        enabled: s.enabled,
        indexed: s.indexed,
        pending: s.pending,
    }))
}

/// Forgets every remembered message (messages themselves stay; the
/// setting stays as it is, so new messages are remembered again).
#[utoipa::path(delete, path = "/v1/bots/{bot}/memory", tag = "memory",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 204)))]
pub(crate) async fn forget(WriteScope(scope): WriteScope) -> ApiResult<axum::http::StatusCode> {
    scope.memory_forget_all().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Embeds every user and assistant message again (after changing the
/// embedder); runs in the background.
#[utoipa::path(post, path = "/v1/bots/{bot}/memory/reindex", tag = "memory",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 202, body = MemoryReindexed)))]
pub(crate) async fn reindex(
    WriteScope(scope): WriteScope,
) -> ApiResult<(axum::http::StatusCode, Json<MemoryReindexed>)> {
    let queued = scope.memory_reindex().await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(MemoryReindexed { queued }),
    ))
}
