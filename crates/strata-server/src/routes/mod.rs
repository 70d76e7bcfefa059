//! The API's routes, grouped like API.md's sections.

mod bots;
mod conversations;
mod files;
mod kb;
mod kv;
mod memory;
mod people;
mod records;
mod service;
mod vectors;

use serde::{Deserialize, Serialize};
use strata::{PageRequest, Result};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) fn register(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let mut r = api_routes(files::register(r));
    vectors::add_recursive_schemas(r.get_openapi_mut());
    r
}

fn api_routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(service::health))
        .routes(routes!(service::ready))
        .routes(routes!(service::metrics))
        .routes(routes!(service::openapi_json))
        .routes(routes!(bots::create_bot, bots::list_bots))
        .routes(routes!(bots::get_bot, bots::update_bot, bots::delete_bot))
        .routes(routes!(bots::create_key, bots::list_keys))
        .routes(routes!(bots::revoke_key))
        .routes(routes!(bots::list_audit))
        .routes(routes!(people::create_user, people::list_users))
        .routes(routes!(
            people::get_user,
            people::update_user,
            people::delete_user
        ))
        .routes(routes!(people::create_session))
        .routes(routes!(people::resolve_session))
        .routes(routes!(
            people::get_session,
            people::update_session,
            people::revoke_session
        ))
        .routes(routes!(people::create_group, people::list_groups))
        .routes(routes!(
            people::get_group,
            people::replace_group,
            people::delete_group
        ))
        .routes(routes!(
            conversations::create_conversation,
            conversations::list_conversations
        ))
        .routes(routes!(
            conversations::get_conversation,
            conversations::update_conversation,
            conversations::delete_conversation
        ))
        .routes(routes!(
            conversations::append_messages,
            conversations::list_messages
        ))
        .routes(routes!(records::create_preset, records::list_presets))
        .routes(routes!(
            records::get_preset,
            records::replace_preset,
            records::delete_preset
        ))
        .routes(routes!(records::create_tool_log, records::list_tool_logs))
        .routes(routes!(records::get_config, records::replace_config))
        .routes(routes!(
            records::get_setting,
            records::put_setting,
            records::delete_setting
        ))
        .routes(routes!(
            kv::put_value,
            kv::get_value,
            kv::head_value,
            kv::delete_value
        ))
        .routes(routes!(kv::list_keys))
        .routes(routes!(kb::list_documents))
        .routes(routes!(kb::search))
        .routes(routes!(kb::reindex))
        .routes(routes!(memory::search))
        .routes(routes!(memory::status, memory::forget))
        .routes(routes!(memory::reindex))
        .routes(routes!(kv::batch))
        .routes(routes!(kv::stats))
        .routes(routes!(
            vectors::create_collection,
            vectors::list_collections
        ))
        .routes(routes!(vectors::get_collection, vectors::drop_collection))
        .routes(routes!(vectors::upsert_points))
        .routes(routes!(vectors::get_point))
        .routes(routes!(vectors::search))
        .routes(routes!(vectors::search_batch))
        .routes(routes!(vectors::delete_points))
        .routes(routes!(vectors::scroll))
        .routes(routes!(vectors::count))
        .routes(routes!(vectors::create_index))
        .routes(routes!(vectors::export))
        .routes(routes!(vectors::import))
}

/// Pagination of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// `next_cursor` of the previous page of this listing: an opaque string
    /// (format `cursor`); one the server did not issue is `invalid_cursor`.
    #[param(format = "cursor")]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

impl ListQuery {
    pub(crate) fn page(&self) -> Result<PageRequest> {
        PageRequest::parse(self.cursor.as_deref(), self.limit)
    }
}

/// An empty success body for deletes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deleted {
    deleted: bool,
}

pub(crate) fn deleted() -> crate::extract::Json<Deleted> {
    crate::extract::Json(Deleted { deleted: true })
}

/// The opaque cursor as clients see it.
pub(crate) fn cursor_out(c: Option<strata::Cursor>) -> Option<String> {
    c.map(|c| c.encode())
}
