//! Users, groups and sessions.

use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata::{Group, GroupFields, NewUser, Session, Timestamp, User, UserPatch};
use utoipa::ToSchema;

use super::{cursor_out, deleted, Deleted, ListQuery};
use crate::error::ApiResult;
use crate::extract::{Json, Query, ReadScope, WriteScope};

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateUser {
    /// Optional client-chosen id (1-128 of `A-Z a-z 0-9 _ - . :`); generated when absent.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    id: Option<String>,
    /// The user's id in the client's own system (unique per bot); 1 to 256
    /// characters, not blank, no control characters.
    #[schema(
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    external_id: Option<String>,
    /// 1 to 256 characters, not blank, no control characters.
    #[schema(
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateUser {
    /// 1 to 256 characters, not blank, no control characters.
    #[schema(
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    external_id: Option<String>,
    /// 1 to 256 characters, not blank, no control characters.
    #[schema(
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    /// Free-form JSON object; replaces the settings.
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserList {
    users: Vec<User>,
    next_cursor: Option<String>,
}

/// Create a user.
#[utoipa::path(post, path = "/v1/bots/{bot}/users", tag = "people", request_body = CreateUser,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = User)))]
pub(crate) async fn create_user(
    WriteScope(scope): WriteScope,
    Json(b): Json<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = scope
        .create_user(NewUser {
            id: b.id,
            external_id: b.external_id,
            name: b.name,
            settings: b.settings,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// List users.
#[utoipa::path(get, path = "/v1/bots/{bot}/users", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ListQuery),
    responses((status = 200, body = UserList)))]
pub(crate) async fn list_users(
    ReadScope(scope): ReadScope,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<UserList>> {
    let page = scope.list_users(&q.page()?).await?;
    Ok(Json(UserList {
        users: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}

/// One user.
#[utoipa::path(get, path = "/v1/bots/{bot}/users/{user}", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("user" = String, Path, description = "User id")),
    responses((status = 200, body = User)))]
pub(crate) async fn get_user(
    ReadScope(scope): ReadScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<User>> {
    Ok(Json(scope.get_user(&id).await?))
}

/// Update a user (absent fields are kept).
#[utoipa::path(patch, path = "/v1/bots/{bot}/users/{user}", tag = "people", request_body = UpdateUser,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("user" = String, Path, description = "User id")),
    responses((status = 200, body = User)))]
pub(crate) async fn update_user(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
    Json(b): Json<UpdateUser>,
) -> ApiResult<Json<User>> {
    let patch = UserPatch {
        external_id: b.external_id,
        name: b.name,
        settings: b.settings,
    };
    Ok(Json(scope.update_user(&id, patch).await?))
}

/// Delete a user with their sessions and conversations.
#[utoipa::path(delete, path = "/v1/bots/{bot}/users/{user}", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("user" = String, Path, description = "User id")),
    responses((status = 200, body = Deleted)))]
pub(crate) async fn delete_user(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    scope.delete_user(&id).await?;
    Ok(deleted())
}

// ---------------------------------------------------------------- sessions

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateSession {
    user_id: String,
    /// Idle lifetime in seconds, 1 to 31536000 (a year); each resolve slides
    /// the expiry this far ahead (default: the bot's `session_ttl_seconds`,
    /// else `STRATA_SESSION_TTL_SECONDS`).
    #[schema(minimum = 1, maximum = 31536000)]
    ttl_seconds: Option<i64>,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    state: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedSession {
    id: String,
    /// The session token: shown only in this response.
    token: String,
    user_id: String,
    expires_at: Timestamp,
    ttl_seconds: i64,
    state: Value,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct ResolveSession {
    /// The token `POST …/sessions` returned.
    #[schema(min_length = 1, max_length = 256)]
    token: String,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateSession {
    /// Replaces the session's state (a JSON object).
    #[schema(value_type = Object)]
    state: Value,
}

/// Open a session for a user; returns its token once.
#[utoipa::path(post, path = "/v1/bots/{bot}/sessions", tag = "people", request_body = CreateSession,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = CreatedSession)))]
pub(crate) async fn create_session(
    WriteScope(scope): WriteScope,
    Json(b): Json<CreateSession>,
) -> ApiResult<(StatusCode, Json<CreatedSession>)> {
    let (s, token) = scope
        .create_session(&b.user_id, b.ttl_seconds, b.state)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSession {
            id: s.id,
            token,
            user_id: s.user_id,
            expires_at: s.expires_at,
            ttl_seconds: s.ttl_seconds,
            state: s.state,
        }),
    ))
}

/// Find the session of a token, sliding its expiry; 404 when expired or revoked.
#[utoipa::path(post, path = "/v1/bots/{bot}/sessions/resolve", tag = "people", request_body = ResolveSession,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = Session)))]
pub(crate) async fn resolve_session(
    ReadScope(scope): ReadScope,
    Json(b): Json<ResolveSession>,
) -> ApiResult<Json<Session>> {
    Ok(Json(scope.resolve_session(&b.token).await?))
}

/// One live session.
#[utoipa::path(get, path = "/v1/bots/{bot}/sessions/{id}", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session)))]
pub(crate) async fn get_session(
    ReadScope(scope): ReadScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Session>> {
    Ok(Json(scope.get_session(&id).await?))
}

/// Replace a session's state.
#[utoipa::path(patch, path = "/v1/bots/{bot}/sessions/{id}", tag = "people", request_body = UpdateSession,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session)))]
pub(crate) async fn update_session(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
    Json(b): Json<UpdateSession>,
) -> ApiResult<Json<Session>> {
    Ok(Json(scope.update_session_state(&id, b.state).await?))
}

/// Revoke a session; its token stops resolving at once.
#[utoipa::path(delete, path = "/v1/bots/{bot}/sessions/{id}", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Deleted)))]
pub(crate) async fn revoke_session(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    scope.revoke_session(&id).await?;
    Ok(deleted())
}

// ---------------------------------------------------------------- groups

#[derive(Deserialize, ToSchema)]
pub(crate) struct GroupBody {
    /// 1 to 200 characters, not blank, no control characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
}

impl From<GroupBody> for GroupFields {
    fn from(b: GroupBody) -> Self {
        GroupFields {
            name: b.name,
            settings: b.settings,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct GroupList {
    groups: Vec<Group>,
    next_cursor: Option<String>,
}

/// Create a group.
#[utoipa::path(post, path = "/v1/bots/{bot}/groups", tag = "people", request_body = GroupBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = Group)))]
pub(crate) async fn create_group(
    WriteScope(scope): WriteScope,
    Json(b): Json<GroupBody>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    Ok((
        StatusCode::CREATED,
        Json(scope.create_group(b.into()).await?),
    ))
}

/// List groups.
#[utoipa::path(get, path = "/v1/bots/{bot}/groups", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ListQuery),
    responses((status = 200, body = GroupList)))]
pub(crate) async fn list_groups(
    ReadScope(scope): ReadScope,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<GroupList>> {
    let page = scope.list_groups(&q.page()?).await?;
    Ok(Json(GroupList {
        groups: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}

/// One group.
#[utoipa::path(get, path = "/v1/bots/{bot}/groups/{id}", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Group id")),
    responses((status = 200, body = Group)))]
pub(crate) async fn get_group(
    ReadScope(scope): ReadScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Group>> {
    Ok(Json(scope.get_group(&id).await?))
}

/// Replace a group.
#[utoipa::path(put, path = "/v1/bots/{bot}/groups/{id}", tag = "people", request_body = GroupBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Group id")),
    responses((status = 200, body = Group)))]
pub(crate) async fn replace_group(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
    Json(b): Json<GroupBody>,
) -> ApiResult<Json<Group>> {
    Ok(Json(scope.replace_group(&id, b.into()).await?))
}

/// Delete a group.
#[utoipa::path(delete, path = "/v1/bots/{bot}/groups/{id}", tag = "people",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Group id")),
    responses((status = 200, body = Deleted)))]
pub(crate) async fn delete_group(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    scope.delete_group(&id).await?;
    Ok(deleted())
}
