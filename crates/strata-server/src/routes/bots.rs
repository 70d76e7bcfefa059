//! Bots and their API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use strata::{ApiKey, AuditEvent, Bot, Role, Timestamp};
use utoipa::ToSchema;

use super::{cursor_out, deleted, Deleted, ListQuery};
use crate::error::ApiResult;
use crate::extract::{AdminScope, GlobalAdmin, Json, Query, ReadScope};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateBot {
    /// Slug: `[a-z0-9][a-z0-9_-]{0,62}`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
    id: String,
    /// 1 to 200 characters, not blank, no control characters (stored trimmed).
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateBot {
    /// 1 to 200 characters, not blank, no control characters (stored trimmed).
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct BotList {
    bots: Vec<Bot>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateKey {
    /// 1 to 200 characters, not blank, no control characters (stored trimmed).
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// `admin`, `writer` or `reader`.
    #[schema(value_type = Role)]
    role: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedKey {
    id: String,
    /// The key itself: shown only in this response.
    key: String,
    role: Role,
    name: String,
    created_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<ApiKey>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AuditList {
    events: Vec<AuditEvent>,
    next_cursor: Option<String>,
}

/// Create a bot (global admin).
#[utoipa::path(post, path = "/v1/bots", tag = "bots", request_body = CreateBot,
    responses((status = 201, body = Bot)))]
pub(crate) async fn create_bot(
    State(state): State<AppState>,
    GlobalAdmin(who): GlobalAdmin,
    Json(body): Json<CreateBot>,
) -> ApiResult<(StatusCode, Json<Bot>)> {
    let bot = state.strata.create_bot(&who, &body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(bot)))
}

/// List bots (global admin).
#[utoipa::path(get, path = "/v1/bots", tag = "bots", params(ListQuery),
    responses((status = 200, body = BotList)))]
pub(crate) async fn list_bots(
    State(state): State<AppState>,
    GlobalAdmin(who): GlobalAdmin,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<BotList>> {
    let page = state.strata.list_bots(&who, &q.page()?).await?;
    Ok(Json(BotList {
        bots: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}

/// One bot.
#[utoipa::path(get, path = "/v1/bots/{bot}", tag = "bots",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = Bot)))]
pub(crate) async fn get_bot(ReadScope(scope): ReadScope) -> ApiResult<Json<Bot>> {
    Ok(Json(scope.get_bot().await?))
}

/// Rename a bot (bot admin).
#[utoipa::path(patch, path = "/v1/bots/{bot}", tag = "bots", request_body = UpdateBot,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = Bot)))]
pub(crate) async fn update_bot(
    AdminScope(scope): AdminScope,
    Json(body): Json<UpdateBot>,
) -> ApiResult<Json<Bot>> {
    Ok(Json(scope.rename_bot(&body.name).await?))
}

/// Delete a bot and all its data (global admin).
#[utoipa::path(delete, path = "/v1/bots/{bot}", tag = "bots",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = Deleted)))]
pub(crate) async fn delete_bot(
    AdminScope(scope): AdminScope,
    State(state): State<AppState>,
) -> ApiResult<Json<Deleted>> {
    state
        .strata
        .delete_bot(scope.principal(), scope.bot_id().as_str())
        .await?;
    Ok(deleted())
}

/// Create an API key for the bot (bot admin). The key is shown only once.
#[utoipa::path(post, path = "/v1/bots/{bot}/keys", tag = "bots", request_body = CreateKey,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = CreatedKey)))]
pub(crate) async fn create_key(
    AdminScope(scope): AdminScope,
    Json(body): Json<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let role = Role::parse(&body.role)?;
    let (key, token) = scope.create_key(&body.name, role).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            id: key.id,
            key: token,
            role: key.role,
            name: key.name,
            created_at: key.created_at,
        }),
    ))
}

/// List the bot's keys, without secrets (bot admin).
#[utoipa::path(get, path = "/v1/bots/{bot}/keys", tag = "bots",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ListQuery),
    responses((status = 200, body = KeyList)))]
pub(crate) async fn list_keys(
    AdminScope(scope): AdminScope,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<KeyList>> {
    let page = scope.list_keys(&q.page()?).await?;
    Ok(Json(KeyList {
        keys: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}

/// Revoke a key; it stops working at once (bot admin).
#[utoipa::path(delete, path = "/v1/bots/{bot}/keys/{id}", tag = "bots",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Key id")),
    responses((status = 200, body = ApiKey)))]
pub(crate) async fn revoke_key(
    AdminScope(scope): AdminScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(scope.revoke_key(&id).await?))
}

/// The bot's audit log (bot admin).
#[utoipa::path(get, path = "/v1/bots/{bot}/audit", tag = "bots",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ListQuery),
    responses((status = 200, body = AuditList)))]
pub(crate) async fn list_audit(
    AdminScope(scope): AdminScope,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<AuditList>> {
    let page = state
        .strata
        .list_audit(scope.principal(), Some(scope.bot_id()), &q.page()?)
        .await?;
    Ok(Json(AuditList {
        events: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}
