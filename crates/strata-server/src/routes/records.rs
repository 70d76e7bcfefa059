//! Presets, tool logs and bot configuration.

use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use strata::{NewToolLog, Preset, PresetFields, ToolLog};
use utoipa::{IntoParams, ToSchema};

use super::{cursor_out, deleted, Deleted, ListQuery};
use crate::error::ApiResult;
use crate::extract::{AdminScope, Json, Query, ReadScope, WriteScope};

#[derive(Deserialize, ToSchema)]
pub(crate) struct PresetBody {
    /// 1 to 200 characters, not blank, no control characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    system_prompt: Option<String>,
    /// 1 to 200 characters, not blank, no control characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    model: Option<String>,
    /// Free-form JSON object (temperature, max_tokens, …).
    #[schema(value_type = Option<Object>)]
    params: Option<Value>,
}

impl From<PresetBody> for PresetFields {
    fn from(b: PresetBody) -> Self {
        PresetFields {
            name: b.name,
            system_prompt: b.system_prompt,
            model: b.model,
            params: b.params,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct PresetList {
    presets: Vec<Preset>,
    next_cursor: Option<String>,
}

/// Create an AI preset.
#[utoipa::path(post, path = "/v1/bots/{bot}/presets", tag = "bot data", request_body = PresetBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = Preset)))]
pub(crate) async fn create_preset(
    WriteScope(scope): WriteScope,
    Json(b): Json<PresetBody>,
) -> ApiResult<(StatusCode, Json<Preset>)> {
    Ok((
        StatusCode::CREATED,
        Json(scope.create_preset(b.into()).await?),
    ))
}

/// List presets.
#[utoipa::path(get, path = "/v1/bots/{bot}/presets", tag = "bot data",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ListQuery),
    responses((status = 200, body = PresetList)))]
pub(crate) async fn list_presets(
    ReadScope(scope): ReadScope,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<PresetList>> {
    let page = scope.list_presets(&q.page()?).await?;
    Ok(Json(PresetList {
        presets: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}

/// One preset.
#[utoipa::path(get, path = "/v1/bots/{bot}/presets/{id}", tag = "bot data",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Preset id")),
    responses((status = 200, body = Preset)))]
pub(crate) async fn get_preset(
    ReadScope(scope): ReadScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Preset>> {
    Ok(Json(scope.get_preset(&id).await?))
}

/// Replace a preset.
#[utoipa::path(put, path = "/v1/bots/{bot}/presets/{id}", tag = "bot data", request_body = PresetBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Preset id")),
    responses((status = 200, body = Preset)))]
pub(crate) async fn replace_preset(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
    Json(b): Json<PresetBody>,
) -> ApiResult<Json<Preset>> {
    Ok(Json(scope.replace_preset(&id, b.into()).await?))
}

/// Delete a preset.
#[utoipa::path(delete, path = "/v1/bots/{bot}/presets/{id}", tag = "bot data",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("id" = String, Path, description = "Preset id")),
    responses((status = 200, body = Deleted)))]
pub(crate) async fn delete_preset(
    WriteScope(scope): WriteScope,
    Path((_bot, id)): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    scope.delete_preset(&id).await?;
    Ok(deleted())
}

// ---------------------------------------------------------------- tool logs

#[derive(Deserialize, ToSchema)]
pub(crate) struct ToolLogBody {
    /// An existing conversation of the bot.
    conversation_id: Option<String>,
    /// 1 to 200 characters, not blank, no control characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    tool: String,
    /// Any JSON value.
    input: Value,
    /// Any JSON value.
    output: Option<Value>,
    /// e.g. `ok`, `error`, `timeout`: 1 to 50 characters, not blank, no
    /// control characters.
    #[schema(
        max_length = 50,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    status: String,
    #[schema(minimum = 0)]
    duration_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ToolLogList {
    tool_logs: Vec<ToolLog>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ToolLogQuery {
    /// Only this conversation's tool calls.
    conversation_id: Option<String>,
    /// `next_cursor` of the previous page (opaque, format `cursor`).
    #[param(format = "cursor")]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Record a tool call.
#[utoipa::path(post, path = "/v1/bots/{bot}/tool-logs", tag = "bot data", request_body = ToolLogBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = ToolLog)))]
pub(crate) async fn create_tool_log(
    WriteScope(scope): WriteScope,
    Json(b): Json<ToolLogBody>,
) -> ApiResult<(StatusCode, Json<ToolLog>)> {
    let log = scope
        .create_tool_log(NewToolLog {
            conversation_id: b.conversation_id,
            tool: b.tool,
            input: b.input,
            output: b.output,
            status: b.status,
            duration_ms: b.duration_ms,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(log)))
}

/// List tool calls, optionally of one conversation.
#[utoipa::path(get, path = "/v1/bots/{bot}/tool-logs", tag = "bot data",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ToolLogQuery),
    responses((status = 200, body = ToolLogList)))]
pub(crate) async fn list_tool_logs(
    ReadScope(scope): ReadScope,
    Query(q): Query<ToolLogQuery>,
) -> ApiResult<Json<ToolLogList>> {
    let page = ListQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .page()?;
    let page = scope
        .list_tool_logs(q.conversation_id.as_deref(), &page)
        .await?;
    Ok(Json(ToolLogList {
        tool_logs: page.items,
        next_cursor: cursor_out(page.next_cursor),
    }))
}

// ---------------------------------------------------------------- config

/// All settings as `{name: value}`: names are 1 to 255 characters without
/// control characters, values any JSON.
pub(crate) struct Settings;

impl utoipa::PartialSchema for Settings {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[^\\x00-\\x1f\\x7f-\\x9f]+$"));
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "Settings as `{name: value}`: names are 1 to 255 characters without \
                     control characters, values any JSON.",
                ))
                .property_names(Some(name))
                .additional_properties(Some(AdditionalProperties::FreeForm(true)))
                .build(),
        )
        .into()
    }
}

impl ToSchema for Settings {}

/// All settings as `{name: value}`.
#[utoipa::path(get, path = "/v1/bots/{bot}/config", tag = "bot data",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = Settings)))]
pub(crate) async fn get_config(
    ReadScope(scope): ReadScope,
) -> ApiResult<Json<BTreeMap<String, Value>>> {
    Ok(Json(scope.get_config().await?))
}

/// Replace all settings (bot admin).
#[utoipa::path(put, path = "/v1/bots/{bot}/config", tag = "bot data", request_body = Settings,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = Settings)))]
pub(crate) async fn replace_config(
    AdminScope(scope): AdminScope,
    Json(b): Json<BTreeMap<String, Value>>,
) -> ApiResult<Json<BTreeMap<String, Value>>> {
    scope.replace_config(b).await?;
    Ok(Json(scope.get_config().await?))
}

/// One setting's value.
#[utoipa::path(get, path = "/v1/bots/{bot}/config/{name}", tag = "bot data",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Setting name: 1 to 255 characters, no control characters", min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses((status = 200, body = Value)))]
pub(crate) async fn get_setting(
    ReadScope(scope): ReadScope,
    Path((_bot, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(scope.get_config_value(&name).await?))
}

/// Set one setting; the body is its JSON value (bot admin).
#[utoipa::path(put, path = "/v1/bots/{bot}/config/{name}", tag = "bot data", request_body = Value,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Setting name: 1 to 255 characters, no control characters", min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses((status = 200, body = Value)))]
pub(crate) async fn put_setting(
    AdminScope(scope): AdminScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(value): Json<Value>,
) -> ApiResult<Json<Value>> {
    scope.set_config_value(&name, value.clone()).await?;
    Ok(Json(value))
}

/// Delete one setting (bot admin).
#[utoipa::path(delete, path = "/v1/bots/{bot}/config/{name}", tag = "bot data",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Setting name: 1 to 255 characters, no control characters", min_length = 1, max_length = 255, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses((status = 200, body = Deleted)))]
pub(crate) async fn delete_setting(
    AdminScope(scope): AdminScope,
    Path((_bot, name)): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    scope.delete_config_value(&name).await?;
    Ok(deleted())
}
