//! The records layer: the authoritative store of bots, keys, people,
//! sessions, conversations, messages and bot configuration.
//!
//! One trait per aggregate, gathered in [`RecordStore`]. Every method that
//! touches tenant data takes the [`BotId`] and must not see another bot's rows:
//! a row of bot B asked for under bot A is `NotFound`.
//!
//! # Behaviour every backend honours
//! - A call that returned `Ok` is durable (per the backend's documented
//!   durability setting).
//! - `get_*`, `update_*` and `delete_*` of a missing row return `NotFound`;
//!   `create_*` with a client-chosen id that exists returns `AlreadyExists`.
//! - Lists are ordered by id (ids are UUIDv7 unless the client chose one) and
//!   paginated with [`PageRequest`]; a page's cursor is the last id.
//! - Deleting a parent deletes its children in the same transaction (bot →
//!   everything; user → sessions, conversations, messages; conversation →
//!   messages).

use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::types::*;
use crate::{Page, PageRequest, Result, Timestamp};

/// Bots: the tenants.
#[async_trait]
pub trait BotStore: Send + Sync {
    /// Creates a bot. `AlreadyExists` when the id is taken; `Conflict`
    /// (code `bot_deleting`) while a deleted bot of that id is still being
    /// purged.
    async fn create_bot(&self, id: &BotId, name: &str) -> Result<Bot>;
    /// One live bot, or `NotFound` (a deleted bot is not found at once).
    async fn get_bot(&self, id: &BotId) -> Result<Bot>;
    /// All live bots, by id.
    async fn list_bots(&self, page: &PageRequest) -> Result<Page<Bot>>;
    /// Renames a live bot.
    async fn update_bot(&self, id: &BotId, name: &str) -> Result<Bot>;
    /// Deletes a bot, atomically: it is not found from now on, its keys
    /// are revoked, its id stays taken, and its purge is queued in the same
    /// transaction ([`BotStore::bots_to_purge`]). `NotFound` when there is
    /// no live bot of that id.
    async fn delete_bot(&self, id: &BotId) -> Result<()>;
    /// Deleted bots whose data is still being purged, with when they were
    /// deleted, oldest first.
    async fn bots_to_purge(&self) -> Result<Vec<(BotId, Timestamp)>>;
    /// Removes a deleted bot's rows (in bounded batches, then the bot row,
    /// which ends its purge). Idempotent; `Ok` when there is nothing left.
    /// A live bot is never touched.
    async fn purge_bot_rows(&self, id: &BotId) -> Result<()>;
    /// Records that a purge attempt failed (it is tried again later).
    async fn bot_purge_failed(&self, id: &BotId, error: &str) -> Result<()>;
}

/// API keys of bots. Secrets are never stored, only their SHA-256.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key. The bot must exist.
    async fn create_key(&self, key: &ApiKey, secret_hash: &str) -> Result<()>;
    /// A key by id, revoked or not, with its hash; `None` when unknown.
    async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>>;
    /// The bot's keys (revoked ones included, marked).
    async fn list_keys(&self, bot: &BotId, page: &PageRequest) -> Result<Page<ApiKey>>;
    /// Revokes a key; revoking twice succeeds. `NotFound` for another bot's key.
    async fn revoke_key(&self, bot: &BotId, key_id: &str) -> Result<ApiKey>;
}

/// Users of a bot.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, bot: &BotId, user: &NewUser) -> Result<User>;
    async fn get_user(&self, bot: &BotId, id: &str) -> Result<User>;
    async fn list_users(&self, bot: &BotId, page: &PageRequest) -> Result<Page<User>>;
    async fn update_user(&self, bot: &BotId, id: &str, patch: &UserPatch) -> Result<User>;
    /// Deletes the user with their sessions, conversations and messages.
    async fn delete_user(&self, bot: &BotId, id: &str) -> Result<()>;
}

/// Sessions of users; the token itself is never stored, only its hash.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session for an existing user (`NotFound` otherwise).
    async fn create_session(&self, bot: &BotId, session: &NewSession) -> Result<Session>;
    /// One live (unexpired, unrevoked) session by id.
    async fn get_session(&self, bot: &BotId, id: &str, now: Timestamp) -> Result<Session>;
    /// Finds the live session with this token hash and slides its expiry to
    /// `now + ttl_seconds`, atomically. `NotFound` when expired or revoked.
    async fn resolve_session(
        &self,
        bot: &BotId,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Session>;
    /// Finds the live session with this token hash without changing it (no
    /// slide): for looking a session up on the side, such as the rate
    /// limiter finding the user of a request. `NotFound` when expired or
    /// revoked.
    async fn peek_session(&self, bot: &BotId, token_hash: &str, now: Timestamp) -> Result<Session>;
    /// Replaces a live session's `state`.
    async fn update_session_state(
        &self,
        bot: &BotId,
        id: &str,
        state: &Value,
        now: Timestamp,
    ) -> Result<Session>;
    /// Revokes a session: it is never found again.
    async fn revoke_session(&self, bot: &BotId, id: &str) -> Result<()>;
    /// The token hashes of every session of a user (revoked ones included).
    async fn session_token_hashes(&self, bot: &BotId, user_id: &str) -> Result<Vec<String>>;
}

/// Conversations and their messages.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Creates a conversation for an existing user (`NotFound` otherwise).
    async fn create_conversation(
        &self,
        bot: &BotId,
        conv: &NewConversation,
    ) -> Result<Conversation>;
    async fn get_conversation(&self, bot: &BotId, id: &str) -> Result<Conversation>;
    /// Conversations of the bot, optionally of one user, by id.
    async fn list_conversations(
        &self,
        bot: &BotId,
        user_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Conversation>>;
    async fn update_conversation(
        &self,
        bot: &BotId,
        id: &str,
        patch: &ConversationPatch,
    ) -> Result<Conversation>;
    /// Deletes the conversation and its messages.
    async fn delete_conversation(&self, bot: &BotId, id: &str) -> Result<()>;
    /// Appends messages in one transaction, numbering them with the next
    /// gap-free `seq`s of the conversation, also under concurrent appenders.
    /// A message whose `idempotency_key` was already used in this
    /// conversation is not stored again: the original comes back with
    /// `replayed = true`. All or nothing.
    async fn append_messages(
        &self,
        bot: &BotId,
        conv: &str,
        messages: &[NewMessage],
    ) -> Result<Vec<Appended>>;
    /// Messages in `seq` order within `range`; `more` tells whether messages
    /// beyond the returned ones exist in the range's direction.
    async fn list_messages(
        &self,
        bot: &BotId,
        conv: &str,
        range: &MessageRange,
    ) -> Result<(Vec<Message>, bool)>;
}

/// AI presets.
#[async_trait]
pub trait PresetStore: Send + Sync {
    async fn create_preset(&self, bot: &BotId, preset: &PresetFields) -> Result<Preset>;
    async fn get_preset(&self, bot: &BotId, id: &str) -> Result<Preset>;
    async fn list_presets(&self, bot: &BotId, page: &PageRequest) -> Result<Page<Preset>>;
    async fn replace_preset(&self, bot: &BotId, id: &str, preset: &PresetFields) -> Result<Preset>;
    async fn delete_preset(&self, bot: &BotId, id: &str) -> Result<()>;
}

/// Groups of users.
#[async_trait]
pub trait GroupStore: Send + Sync {
    async fn create_group(&self, bot: &BotId, group: &GroupFields) -> Result<Group>;
    async fn get_group(&self, bot: &BotId, id: &str) -> Result<Group>;
    async fn list_groups(&self, bot: &BotId, page: &PageRequest) -> Result<Page<Group>>;
    async fn replace_group(&self, bot: &BotId, id: &str, group: &GroupFields) -> Result<Group>;
    async fn delete_group(&self, bot: &BotId, id: &str) -> Result<()>;
}

/// Tool call logs.
#[async_trait]
pub trait ToolLogStore: Send + Sync {
    async fn create_tool_log(&self, bot: &BotId, log: &NewToolLog) -> Result<ToolLog>;
    async fn list_tool_logs(
        &self,
        bot: &BotId,
        conversation_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ToolLog>>;
}

/// Bot configuration: a map of setting name → JSON value.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    async fn get_config(&self, bot: &BotId) -> Result<BTreeMap<String, Value>>;
    /// Replaces all settings atomically.
    async fn replace_config(&self, bot: &BotId, config: &BTreeMap<String, Value>) -> Result<()>;
    /// Sets several settings atomically, keeping the others.
    async fn merge_config(&self, bot: &BotId, config: &BTreeMap<String, Value>) -> Result<()>;
    async fn get_config_value(&self, bot: &BotId, name: &str) -> Result<Value>;
    async fn set_config_value(&self, bot: &BotId, name: &str, value: &Value) -> Result<()>;
    async fn delete_config_value(&self, bot: &BotId, name: &str) -> Result<()>;
}

/// The audit log of sensitive operations.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record_audit(&self, event: &AuditEvent) -> Result<()>;
    async fn list_audit(&self, bot: Option<&BotId>, page: &PageRequest)
        -> Result<Page<AuditEvent>>;
}

/// Server-wide settings kept in the records store (e.g. the admin key hash).
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets `key` only if it has no value; returns the value now stored.
    async fn set_meta_if_absent(&self, key: &str, value: &str) -> Result<String>;
}

/// Everything the records layer offers, behind one handle.
#[async_trait]
pub trait RecordStore:
    BotStore
    + KeyStore
    + UserStore
    + SessionStore
    + ConversationStore
    + PresetStore
    + GroupStore
    + ToolLogStore
    + ConfigStore
    + AuditLog
    + MetaStore
    + std::fmt::Debug
{
    /// The backend's name (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// A cheap round trip that proves the store answers.
    async fn ping(&self) -> Result<()>;
    /// Removes sessions whose expiry has passed; returns how many.
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;
}
