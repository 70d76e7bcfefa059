//! Conversations and their messages.

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata::{
    Conversation, ConversationPatch, Message, MessageQuery, MessageRole, NewConversation,
    NewMessage, Timestamp,
};
use utoipa::{IntoParams, ToSchema};

use super::{cursor_out, deleted, Deleted, ListQuery};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query, ReadScope, WriteScope};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateConversation {
    /// Optional client-chosen id (1-128 of `A-Z a-z 0-9 _ - . :`); generated when absent.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    id: Option<String>,
    /// An existing user of the bot.
    #[schema(min_length = 1)]
    user_id: String,
    /// 1 to 1000 characters, not blank, no control characters.
    #[schema(
        max_length = 1000,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    title: Option<String>,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateConversation {
    /// 1 to 1000 characters, not blank, no control characters.
    #[schema(
        max_length = 1000,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    title: Option<String>,
    /// Free-form JSON object; replaces the metadata.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationList {
    conversations: Vec<Conversation>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConversationQuery {
    /// Only this user's conversations.
    user_id: Option<String>,
    /// `next_cursor` of the previous page (opaque, format `cursor`).
    #[param(format = "cursor")]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Create a conversation for a user.
#[utoipa::path(post, path = "/v1/bots/{bot}/conversations", tag = "conversations", request_body = CreateConversation,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = Conversation)))]
pub(crate) async fn create_conversation(
    WriteScope(scope): WriteScope,
    Json(b): Json<CreateConversation>,
) -> ApiResult<(StatusCode, Json<Conversation>)> {
    let c = scope
        .create_conversation(NewConversation {
            id: b.id,
            user_id: b.user_id,
            title: b.title,
            metadata: b.metadata,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// List conversations, optionally of one user.
#[utoipa::path(get, path = "/v1/bots/{bot}/conversations", tag = "conversations",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ConversationQuery),
    responses((status = 200, body = ConversationList)))]
pub(crate) async fn list_conversations(
    ReadScope(scope): ReadScope,
    Query(q): Query<ConversationQuery>,
) -> ApiResult<Json<ConversationList>> {
    let page = ListQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .page()?;
    let page = scope
        .list_conversations(q.user_id.as_deref(), &page)
        .await?;
    Ok(Json(ConversationList {
        conversations: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}

/// One conversation.
#[utoipa::path(get, path = "/v1/bots/{bot}/conversations/{conv}", tag = "conversations",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("conv" = String, Path, description = "Conversation id")),
    responses((status = 200, body = Conversation)))]
pub(crate) async fn get_conversation(
    ReadScope(scope): ReadScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Conversation>> {
    Ok(Json(scope.get_conversation(&id).await?))
}

/// Update a conversation's title or metadata.
#[utoipa::path(patch, path = "/v1/bots/{bot}/conversations/{conv}", tag = "conversations", request_body = UpdateConversation,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("conv" = String, Path, description = "Conversation id")),
    responses((status = 200, body = Conversation)))]
pub(crate) async fn update_conversation(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
    Json(b): Json<UpdateConversation>,
) -> ApiResult<Json<Conversation>> {
    let patch = ConversationPatch {
        title: b.title,
        metadata: b.metadata,
    };
    Ok(Json(scope.update_conversation(&id, patch).await?))
}

/// Delete a conversation with its messages.
#[utoipa::path(delete, path = "/v1/bots/{bot}/conversations/{conv}", tag = "conversations",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("conv" = String, Path, description = "Conversation id")),
    responses((status = 200, body = Deleted)))]
pub(crate) async fn delete_conversation(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    scope.delete_conversation(&id).await?;
    Ok(deleted())
}

// ---------------------------------------------------------------- messages

/// One message to append.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageIn {
    /// `system`, `user`, `assistant` or `tool`.
    #[schema(value_type = MessageRole)]
    role: String,
    content: String,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// A repeated append with the same key returns the original message;
    /// 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
}

/// Several messages appended in one call, all or none.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageBatch {
    /// 1 to 1000 messages, appended in this order.
    #[schema(min_items = 1, max_items = 1000)]
    messages: Vec<MessageIn>,
}

/// The body of an append: either one message (`role`, `content`, …) or
/// `{messages: [...]}`, never both (a body with `messages` and any of the
/// single message's fields is `invalid_input`).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum AppendBody {
    One(MessageIn),
    Batch(MessageBatch),
}

/// The single message's fields, named when a batch body carries one.
const ONE_MESSAGE_FIELDS: [&str; 4] = ["role", "content", "metadata", "idempotency_key"];

fn from_json<T: serde::de::DeserializeOwned>(
    v: serde_json::Map<String, Value>,
) -> strata::Result<T> {
    serde_json::from_value(Value::Object(v))
        .map_err(|e| strata::Error::invalid(format!("Failed to deserialize the JSON body: {e}")))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AppendedMessage {
    id: String,
    seq: i64,
    created_at: Timestamp,
    role: MessageRole,
    content: String,
    metadata: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    /// True when the idempotency key had been used: this is the original.
    replayed: bool,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AppendedMessages {
    messages: Vec<AppendedMessage>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MessagesQuery {
    /// Messages with `seq` greater than this (default 0).
    #[param(minimum = 0)]
    after_seq: Option<i64>,
    /// Messages with `seq` less than this; returns the last `limit` of them.
    #[param(minimum = 1)]
    before_seq: Option<i64>,
    /// `true`: the last `limit` messages of the conversation.
    latest: Option<bool>,
    /// `next_cursor` of the previous page (opaque, format `cursor`); instead
    /// of `after_seq`.
    #[param(format = "cursor")]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct MessageList {
    /// In `seq` order.
    messages: Vec<Message>,
    next_cursor: Option<String>,
}

fn new_message(m: MessageIn) -> strata::Result<NewMessage> {
    Ok(NewMessage {
        role: MessageRole::parse(&m.role)?,
        content: m.content,
        metadata: m.metadata,
        idempotency_key: m.idempotency_key,
    })
}

fn appended_out(a: strata::Appended) -> AppendedMessage {
    AppendedMessage {
        id: a.message.id,
        seq: a.message.seq,
        created_at: a.message.created_at,
        role: a.message.role,
        content: a.message.content,
        metadata: a.message.metadata,
        idempotency_key: a.message.idempotency_key,
        replayed: a.replayed,
    }
}

/// Append one message or a batch; `seq` is assigned gap-free. A body with
/// `messages` answers `{messages: [...]}`, a single message answers itself.
#[utoipa::path(post, path = "/v1/bots/{bot}/conversations/{conv}/messages", tag = "conversations", request_body = AppendBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("conv" = String, Path, description = "Conversation id")),
    responses((status = 201, description = "Appended (or replayed: header `Idempotent-Replayed: true`). \
A single message answers `AppendedMessage`; the `{messages: [...]}` form answers `AppendedMessages`.",
        content((AppendedMessage), (AppendedMessages)))))]
pub(crate) async fn append_messages(
    WriteScope(scope): WriteScope,
    Path((_bot, conv)): Path<(String, String)>,
    Json(body): Json<serde_json::Map<String, Value>>,
) -> ApiResult<Response> {
    let batch = body.contains_key("messages");
    let messages = if batch {
        if body
            .keys()
            .any(|k| ONE_MESSAGE_FIELDS.contains(&k.as_str()))
        {
            return Err(ApiError(strata::Error::invalid(
                "send either one message (role, content) or {messages: [...]}, not both",
            )));
        }
        let b: MessageBatch = from_json(body)?;
        b.messages
            .into_iter()
            .map(new_message)
            .collect::<strata::Result<Vec<_>>>()?
    } else {
        vec![new_message(from_json(body)?)?]
    };
    let appended = scope.append_messages(&conv, messages).await?;
    let all_replayed = appended.iter().all(|a| a.replayed);
    let mut res = if batch {
        (
            StatusCode::CREATED,
            Json(AppendedMessages {
                messages: appended.into_iter().map(appended_out).collect(),
            }),
        )
            .into_response()
    } else {
        let one = appended
            .into_iter()
            .next()
            .map(appended_out)
            .ok_or_else(|| ApiError(strata::Error::internal("append returned nothing")))?;
        (StatusCode::CREATED, Json(one)).into_response()
    };
    if all_replayed {
        res.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(res)
}

/// Read messages in `seq` order.
///
/// Served from an in-memory cache of serialised responses while the
/// conversation's history version is unchanged (see `strata::HistoryVersion`).
#[utoipa::path(get, path = "/v1/bots/{bot}/conversations/{conv}/messages", tag = "conversations",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("conv" = String, Path, description = "Conversation id"), MessagesQuery),
    responses((status = 200, body = MessageList)))]
pub(crate) async fn list_messages(
    State(state): State<AppState>,
    ReadScope(scope): ReadScope,
    Path((_bot, conv)): Path<(String, String)>,
    Query(q): Query<MessagesQuery>,
) -> ApiResult<Response> {
    let key = (
        scope.bot_id().to_string(),
        conv.clone(),
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            q.after_seq, q.before_seq, q.latest, q.cursor, q.limit
        ),
    );
    // The version is taken before the read, so a cached body can only be
    // older than a write that has not been acknowledged yet.
    let version = scope.history_version(&conv);
    let cached = if state.history_cache_on {
        state.history_cache.get(&key)
    } else {
        None
    };
    if let Some((cached_version, body)) = cached {
        if cached_version == version {
            return Ok(json_body(body));
        }
    }
    let page = scope
        .list_messages(
            &conv,
            &MessageQuery {
                after_seq: q.after_seq,
                before_seq: q.before_seq,
                latest: q.latest.unwrap_or(false),
                cursor: q.cursor,
                limit: q.limit,
            },
        )
        .await?;
    let body = serde_json::to_vec(&MessageList {
        messages: page.messages,
        next_cursor: cursor_out(page.next_cursor),
    })
    .map_err(|e| ApiError(strata::Error::from(e)))?;
    let body = bytes::Bytes::from(body);
    if state.history_cache_on {
        state.history_cache.insert(key, (version, body.clone()));
    }
    Ok(json_body(body))
}

fn json_body(body: bytes::Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
