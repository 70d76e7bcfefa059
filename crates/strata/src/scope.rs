//! [`BotScope`]: every operation inside one bot, already authorised.

use bytes::Bytes;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

use strata_core::kv::{validate_key, validate_ttl, KvOp, KvOpOutcome, SetOptions};
use strata_core::page::{validate_limit, Cursor, Page, PageRequest};
use strata_core::records::RecordStore;
use strata_core::types::*;
use strata_core::{Error, ErrorKind, Result, Timestamp};

use crate::auth::{self, Principal};
use crate::Strata;

/// Most messages in one append call.
pub const MAX_MESSAGES_PER_APPEND: usize = 1000;
/// Most operations in one kv batch.
pub const MAX_KV_BATCH: usize = 1000;
/// Longest idle lifetime of a session (one year).
pub const MAX_SESSION_TTL_SECONDS: i64 = 365 * 24 * 3600;

/// Checks a required short name: 1..=200 characters, no control characters.
pub(crate) fn check_name<'a>(field: &str, s: &'a str) -> Result<&'a str> {
    check_text(field, s, 200)
}

/// Checks a text field: not blank, at most `max` characters as sent (the
/// OpenAPI document's `maxLength`), no control characters; returns it trimmed.
fn check_text<'a>(field: &str, s: &'a str, max: usize) -> Result<&'a str> {
    let t = s.trim();
    if t.is_empty() || s.chars().count() > max || s.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(format!(
            "{field} must be 1 to {max} characters without control characters"
        )));
    }
    Ok(t)
}

fn check_opt_text(field: &str, s: &Option<String>, max: usize) -> Result<()> {
    if let Some(s) = s {
        check_text(field, s, max)?;
    }
    Ok(())
}

fn check_object(field: &str, v: &Option<Value>) -> Result<()> {
    match v {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(Error::invalid(format!("{field} must be a JSON object"))),
    }
}

fn check_client_id(id: &Option<String>) -> Result<()> {
    match id {
        Some(id) => validate_resource_id(id),
        None => Ok(()),
    }
}

/// How to read a conversation's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    /// Messages after this `seq` (default 0: from the start).
    pub after_seq: Option<i64>,
    /// Only messages before this `seq`; returns the last `limit` of them.
    pub before_seq: Option<i64>,
    /// The last `limit` messages of the conversation (the history's tail).
    pub latest: bool,
    /// A cursor from a previous page (instead of `after_seq`).
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A page of messages in `seq` order.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// For forward reads: the cursor of the next page; `None` at the end.
    pub next_cursor: Option<Cursor>,
}

/// The result of a kv batch.
#[derive(Debug, Clone, PartialEq)]
pub enum KvBatchResult {
    /// `atomic: true` — everything was applied.
    Applied(usize),
    /// `atomic: false` — each operation's outcome.
    Outcomes(Vec<KvOpOutcome>),
}

/// One bot, opened for one principal. Every method checks the role it needs.
#[derive(Debug, Clone)]
pub struct BotScope {
    strata: Strata,
    bot: BotId,
    who: Principal,
}

impl BotScope {
    pub(crate) fn new(strata: Strata, bot: BotId, who: Principal) -> Self {
        BotScope { strata, bot, who }
    }

    /// The bot.
    pub fn bot_id(&self) -> &BotId {
        &self.bot
    }

    /// Who acts.
    pub fn principal(&self) -> &Principal {
        &self.who
    }

    pub(crate) fn strata(&self) -> &Strata {
        &self.strata
    }

    pub(crate) fn records(&self) -> &dyn RecordStore {
        self.strata.inner.records.as_ref()
    }

    pub(crate) fn need(&self, role: Role) -> Result<()> {
        self.who.authorize(&self.bot, role)
    }

    pub(crate) async fn audit(&self, action: &str, target: &str, details: Value) {
        self.strata
            .audit(&self.who, Some(&self.bot), action, target, details)
            .await;
    }

    // ------------------------------------------------------------ bot & keys

    /// The bot itself.
    pub async fn get_bot(&self) -> Result<Bot> {
        self.need(Role::Reader)?;
        self.records().get_bot(&self.bot).await
    }

    /// Renames the bot (bot admin).
    pub async fn rename_bot(&self, name: &str) -> Result<Bot> {
        self.need(Role::Admin)?;
        let name = check_name("name", name)?;
        self.records().update_bot(&self.bot, name).await
    }

    /// Creates a key; the returned string is the only time the secret exists
    /// outside the client.
    pub async fn create_key(&self, name: &str, role: Role) -> Result<(ApiKey, String)> {
        self.need(Role::Admin)?;
        let name = check_name("name", name)?;
        let (id, token, hash) = auth::new_bot_key();
        let key = ApiKey {
            id,
            bot_id: self.bot.clone(),
            name: name.to_owned(),
            role,
            created_at: Timestamp::now(),
            revoked_at: None,
        };
        self.records().create_key(&key, &hash).await?;
        self.audit(
            "key.create",
            &key.id,
            serde_json::json!({ "name": name, "role": role.as_str() }),
        )
        .await;
        Ok((key, token))
    }

    pub async fn list_keys(&self, page: &PageRequest) -> Result<Page<ApiKey>> {
        self.need(Role::Admin)?;
        self.records().list_keys(&self.bot, page).await
    }

    /// Revokes a key; it stops working at once.
    pub async fn revoke_key(&self, key_id: &str) -> Result<ApiKey> {
        self.need(Role::Admin)?;
        let key = self.records().revoke_key(&self.bot, key_id).await;
        // Whatever the outcome: a revocation may have committed.
        self.strata.forget_verified_keys();
        let key = key?;
        self.audit("key.revoke", key_id, Value::Null).await;
        Ok(key)
    }

    // ------------------------------------------------------------ users

    pub async fn create_user(&self, user: NewUser) -> Result<User> {
        self.need(Role::Writer)?;
        check_client_id(&user.id)?;
        check_opt_text("external_id", &user.external_id, 256)?;
        check_opt_text("name", &user.name, 256)?;
        check_object("settings", &user.settings)?;
        self.records().create_user(&self.bot, &user).await
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        self.need(Role::Reader)?;
        self.records().get_user(&self.bot, id).await
    }

    pub async fn list_users(&self, page: &PageRequest) -> Result<Page<User>> {
        self.need(Role::Reader)?;
        self.records().list_users(&self.bot, page).await
    }

    pub async fn update_user(&self, id: &str, patch: UserPatch) -> Result<User> {
        self.need(Role::Writer)?;
        check_opt_text("external_id", &patch.external_id, 256)?;
        check_opt_text("name", &patch.name, 256)?;
        check_object("settings", &patch.settings)?;
        self.records().update_user(&self.bot, id, &patch).await
    }

    /// Deletes a user with their sessions, conversations and messages.
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.need(Role::Writer)?;
        let sessions = self.records().session_token_hashes(&self.bot, id).await?;
        let deleted = self.records().delete_user(&self.bot, id).await;
        for hash in &sessions {
            self.strata.session_changed(&self.bot, hash, true).await;
        }
        self.strata.inner.versions.bump_all();
        deleted?;
        self.strata.memory_forget(&self.bot, "user_id", id).await;
        self.audit("user.delete", id, Value::Null).await;
        Ok(())
    }

    // ------------------------------------------------------------ sessions

    /// Creates a session; returns it with its token (shown only here).
    pub async fn create_session(
        &self,
        user_id: &str,
        ttl_seconds: Option<i64>,
        state: Option<Value>,
    ) -> Result<(Session, String)> {
        self.need(Role::Writer)?;
        let ttl = match ttl_seconds {
            Some(t) => t,
            None => self.default_session_ttl().await,
        };
        if !(1..=MAX_SESSION_TTL_SECONDS).contains(&ttl) {
            return Err(Error::invalid(format!(
                "ttl_seconds must be between 1 and {MAX_SESSION_TTL_SECONDS}"
            ))
            .with_code("invalid_ttl"));
        }
        check_object("state", &state)?;
        let token = format!("st_{}", auth::random_secret());
        let session = self
            .records()
            .create_session(
                &self.bot,
                &NewSession {
                    user_id: user_id.to_owned(),
                    token_hash: auth::hash_secret(&token),
                    ttl_seconds: ttl,
                    state: state.unwrap_or_else(|| Value::Object(Default::default())),
                },
            )
            .await?;
        Ok((session, token))
    }

    /// Finds the live session of `token` and slides its expiry.
    pub async fn resolve_session(&self, token: &str) -> Result<Session> {
        self.need(Role::Reader)?;
        if token.is_empty() || token.chars().count() > 256 {
            return Err(Error::invalid("token must be 1 to 256 characters"));
        }
        self.strata
            .resolve_session_cached(&self.bot, &auth::hash_secret(token))
            .await
    }

    /// The user of the live session `token`, without sliding its expiry or
    /// otherwise changing it (rate limits look sessions up this way).
    pub async fn session_user(&self, token: &str) -> Option<String> {
        if token.is_empty() || token.len() > 256 {
            return None;
        }
        self.strata
            .peek_session_user(&self.bot, &auth::hash_secret(token))
            .await
    }

    /// The bot's `session_ttl_seconds` setting, else `STRATA_SESSION_TTL_SECONDS`.
    async fn default_session_ttl(&self) -> i64 {
        match self
            .records()
            .get_config_value(&self.bot, "session_ttl_seconds")
            .await
        {
            Ok(Value::Number(n)) => n.as_i64(),
            Ok(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|t| (1..=MAX_SESSION_TTL_SECONDS).contains(t))
        .unwrap_or(self.strata.inner.config.session_ttl_seconds)
    }

    pub async fn get_session(&self, id: &str) -> Result<Session> {
        self.need(Role::Reader)?;
        self.records()
            .get_session(&self.bot, id, Timestamp::now())
            .await
    }

    pub async fn update_session_state(&self, id: &str, state: Value) -> Result<Session> {
        self.need(Role::Writer)?;
        check_object("state", &Some(state.clone()))?;
        let session = self
            .records()
            .update_session_state(&self.bot, id, &state, Timestamp::now())
            .await?;
        self.strata
            .session_changed(&self.bot, &session.token_hash, false)
            .await;
        Ok(session)
    }

    /// Revokes a session; its token stops resolving at once in every
    /// process sharing the cache.
    pub async fn revoke_session(&self, id: &str) -> Result<()> {
        self.need(Role::Writer)?;
        let session = self
            .records()
            .get_session(&self.bot, id, Timestamp::now())
            .await?;
        let revoked = self.records().revoke_session(&self.bot, id).await;
        self.strata
            .session_changed(&self.bot, &session.token_hash, true)
            .await;
        revoked
    }

    // ------------------------------------------------------------ conversations

    pub async fn create_conversation(&self, c: NewConversation) -> Result<Conversation> {
        self.need(Role::Writer)?;
        check_client_id(&c.id)?;
        check_opt_text("title", &c.title, 1000)?;
        check_object("metadata", &c.metadata)?;
        if c.user_id.is_empty() {
            return Err(Error::invalid("user_id is required"));
        }
        self.records().create_conversation(&self.bot, &c).await
    }

    pub async fn get_conversation(&self, id: &str) -> Result<Conversation> {
        self.need(Role::Reader)?;
        self.records().get_conversation(&self.bot, id).await
    }

    pub async fn list_conversations(
        &self,
        user_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Conversation>> {
        self.need(Role::Reader)?;
        self.records()
            .list_conversations(&self.bot, user_id, page)
            .await
    }

    pub async fn update_conversation(
        &self,
        id: &str,
        patch: ConversationPatch,
    ) -> Result<Conversation> {
        self.need(Role::Writer)?;
        check_opt_text("title", &patch.title, 1000)?;
        check_object("metadata", &patch.metadata)?;
        self.records()
            .update_conversation(&self.bot, id, &patch)
            .await
    }

    pub async fn delete_conversation(&self, id: &str) -> Result<()> {
        self.need(Role::Writer)?;
        let deleted = self.records().delete_conversation(&self.bot, id).await;
        self.strata.inner.versions.bump(&self.bot, id);
        deleted?;
        self.strata
            .memory_forget(&self.bot, "conversation_id", id)
            .await;
        Ok(())
    }

    /// Appends messages atomically with gap-free `seq`s; idempotency keys
    /// already used return the original message.
    pub async fn append_messages(
        &self,
        conv: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Appended>> {
        self.need(Role::Writer)?;
        if messages.is_empty() || messages.len() > MAX_MESSAGES_PER_APPEND {
            return Err(Error::invalid(format!(
                "send 1 to {MAX_MESSAGES_PER_APPEND} messages per call"
            )));
        }
        for m in &messages {
            check_object("metadata", &m.metadata)?;
            if let Some(k) = &m.idempotency_key {
                if k.is_empty() || k.chars().count() > 255 {
                    return Err(Error::invalid(
                        "idempotency_key must be 1 to 255 characters",
                    ));
                }
            }
        }
        let appended = self
            .records()
            .append_messages(&self.bot, conv, &messages)
            .await;
        // After the commit, before the caller hears of it (see `versions`);
        // also after a failure, whose outcome may be unknown.
        self.strata.inner.versions.bump(&self.bot, conv);
        if appended.is_ok() {
            self.strata.memory_notify();
        }
        appended
    }

    /// The current version of `conv`'s history. Take it *before* reading
    /// messages; a cached read is current while the version is unchanged.
    pub fn history_version(&self, conv: &str) -> crate::HistoryVersion {
        self.strata.inner.versions.current(&self.bot, conv)
    }

    /// Reads messages in `seq` order.
    pub async fn list_messages(&self, conv: &str, q: &MessageQuery) -> Result<MessagePage> {
        self.need(Role::Reader)?;
        let limit = validate_limit(q.limit)?;
        let mut after_seq = q.after_seq.unwrap_or(0);
        if after_seq < 0 {
            return Err(Error::invalid("after_seq must be 0 or more").with_code("invalid_seq"));
        }
        if let Some(c) = &q.cursor {
            if !c.is_empty() {
                let cursor = Cursor::decode(c)?;
                after_seq = cursor
                    .key()
                    .parse::<i64>()
                    .ok()
                    .filter(|s| *s >= 0)
                    .ok_or_else(|| {
                        Error::invalid("cursor is not one this server returned")
                            .with_code("invalid_cursor")
                    })?;
            }
        }
        let before_seq = match (q.before_seq, q.latest) {
            (Some(b), _) if b < 1 => {
                return Err(Error::invalid("before_seq must be 1 or more").with_code("invalid_seq"))
            }
            (Some(b), _) => Some(b),
            (None, true) => Some(i64::MAX),
            (None, false) => None,
        };
        let range = MessageRange {
            after_seq,
            before_seq,
            limit,
        };
        let (messages, more) = self
            .records()
            .list_messages(&self.bot, conv, &range)
            .await?;
        let next_cursor = match (before_seq, more, messages.last()) {
            (None, true, Some(last)) => Some(Cursor::after(&last.seq.to_string())),
            _ => None,
        };
        Ok(MessagePage {
            messages,
            next_cursor,
        })
    }

    // ------------------------------------------------------------ presets & groups

    fn check_preset(p: &PresetFields) -> Result<()> {
        check_name("name", &p.name)?;
        check_opt_text("model", &p.model, 200)?;
        check_object("params", &p.params)
    }

    pub async fn create_preset(&self, p: PresetFields) -> Result<Preset> {
        self.need(Role::Writer)?;
        Self::check_preset(&p)?;
        self.records().create_preset(&self.bot, &p).await
    }

    pub async fn get_preset(&self, id: &str) -> Result<Preset> {
        self.need(Role::Reader)?;
        self.records().get_preset(&self.bot, id).await
    }

    pub async fn list_presets(&self, page: &PageRequest) -> Result<Page<Preset>> {
        self.need(Role::Reader)?;
        self.records().list_presets(&self.bot, page).await
    }

    pub async fn replace_preset(&self, id: &str, p: PresetFields) -> Result<Preset> {
        self.need(Role::Writer)?;
        Self::check_preset(&p)?;
        self.records().replace_preset(&self.bot, id, &p).await
    }

    pub async fn delete_preset(&self, id: &str) -> Result<()> {
        self.need(Role::Writer)?;
        self.records().delete_preset(&self.bot, id).await
    }

    pub async fn create_group(&self, g: GroupFields) -> Result<Group> {
        self.need(Role::Writer)?;
        check_name("name", &g.name)?;
        check_object("settings", &g.settings)?;
        self.records().create_group(&self.bot, &g).await
    }

    pub async fn get_group(&self, id: &str) -> Result<Group> {
        self.need(Role::Reader)?;
        self.records().get_group(&self.bot, id).await
    }

    pub async fn list_groups(&self, page: &PageRequest) -> Result<Page<Group>> {
        self.need(Role::Reader)?;
        self.records().list_groups(&self.bot, page).await
    }

    pub async fn replace_group(&self, id: &str, g: GroupFields) -> Result<Group> {
        self.need(Role::Writer)?;
        check_name("name", &g.name)?;
        check_object("settings", &g.settings)?;
        self.records().replace_group(&self.bot, id, &g).await
    }

    pub async fn delete_group(&self, id: &str) -> Result<()> {
        self.need(Role::Writer)?;
        self.records().delete_group(&self.bot, id).await
    }

    // ------------------------------------------------------------ tool logs

    pub async fn create_tool_log(&self, l: NewToolLog) -> Result<ToolLog> {
        self.need(Role::Writer)?;
        check_name("tool", &l.tool)?;
        check_text("status", &l.status, 50)?;
        if matches!(l.duration_ms, Some(d) if d < 0) {
            return Err(Error::invalid("duration_ms must be 0 or more"));
        }
        if let Some(c) = &l.conversation_id {
            self.records().get_conversation(&self.bot, c).await?;
        }
        self.records().create_tool_log(&self.bot, &l).await
    }

    pub async fn list_tool_logs(
        &self,
        conversation_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ToolLog>> {
        self.need(Role::Reader)?;
        self.records()
            .list_tool_logs(&self.bot, conversation_id, page)
            .await
    }

    // ------------------------------------------------------------ config

    fn check_setting_name(name: &str) -> Result<()> {
        if name.is_empty() || name.chars().count() > 255 || name.chars().any(|c| c.is_control()) {
            return Err(Error::invalid(
                "setting names must be 1 to 255 characters without control characters",
            ));
        }
        Ok(())
    }

    pub async fn get_config(&self) -> Result<BTreeMap<String, Value>> {
        self.need(Role::Reader)?;
        self.records().get_config(&self.bot).await
    }

    /// Replaces all settings (bot admin).
    pub async fn replace_config(&self, config: BTreeMap<String, Value>) -> Result<()> {
        self.need(Role::Admin)?;
        for name in config.keys() {
            Self::check_setting_name(name)?;
        }
        // The collections' vector names are kept unless the new settings
        // name them: they describe collections, and a collection whose
        // name was lost would refuse every request that uses it.
        let mut config = config;
        for (name, value) in self.records().get_config(&self.bot).await? {
            if name.starts_with(crate::vectors::VECTOR_NAME_SETTING) {
                config.entry(name).or_insert(value);
            }
        }
        self.records().replace_config(&self.bot, &config).await?;
        self.strata.forget_limits(&self.bot);
        self.audit(
            "config.replace",
            "config",
            serde_json::json!({ "settings": config.len() }),
        )
        .await;
        Ok(())
    }

    pub async fn get_config_value(&self, name: &str) -> Result<Value> {
        self.need(Role::Reader)?;
        self.records().get_config_value(&self.bot, name).await
    }

    pub async fn set_config_value(&self, name: &str, value: Value) -> Result<()> {
        self.need(Role::Admin)?;
        Self::check_setting_name(name)?;
        self.records()
            .set_config_value(&self.bot, name, &value)
            .await?;
        self.strata.forget_limits(&self.bot);
        self.audit("config.set", name, Value::Null).await;
        Ok(())
    }

    pub async fn delete_config_value(&self, name: &str) -> Result<()> {
        self.need(Role::Admin)?;
        self.records().delete_config_value(&self.bot, name).await?;
        self.strata.forget_limits(&self.bot);
        self.audit("config.delete", name, Value::Null).await;
        Ok(())
    }

    // ------------------------------------------------------------ key-value

    fn kv(&self) -> &dyn strata_core::kv::KvStore {
        self.strata.inner.kv.as_ref()
    }

    /// Stores bytes under `key`, optionally expiring after `ttl_seconds`.
    pub async fn kv_put(&self, key: &str, value: Bytes, ttl_seconds: Option<i64>) -> Result<()> {
        self.need(Role::Writer)?;
        validate_key(key)?;
        let ttl = ttl_from_seconds(ttl_seconds)?;
        self.kv()
            .set(self.bot.as_str(), key, value, SetOptions { ttl })
            .await
    }

    pub async fn kv_get(&self, key: &str) -> Result<Bytes> {
        self.need(Role::Reader)?;
        validate_key(key)?;
        self.kv()
            .get(self.bot.as_str(), key)
            .await?
            .ok_or_else(|| Error::not_found(format!("key {key:?}")))
    }

    pub async fn kv_exists(&self, key: &str) -> Result<bool> {
        self.need(Role::Reader)?;
        validate_key(key)?;
        self.kv().exists(self.bot.as_str(), key).await
    }

    /// Deletes a key; `NotFound` when it had no live value.
    pub async fn kv_delete(&self, key: &str) -> Result<()> {
        self.need(Role::Writer)?;
        validate_key(key)?;
        if self.kv().delete(self.bot.as_str(), key).await? {
            Ok(())
        } else {
            Err(Error::not_found(format!("key {key:?}")))
        }
    }

    pub async fn kv_list(&self, prefix: &str, page: &PageRequest) -> Result<Page<String>> {
        self.need(Role::Reader)?;
        self.kv().list(self.bot.as_str(), prefix, page).await
    }

    /// Applies a batch: atomically (all or nothing) or one by one.
    pub async fn kv_batch(&self, ops: Vec<KvOp>, atomic: bool) -> Result<KvBatchResult> {
        self.need(Role::Writer)?;
        if ops.is_empty() || ops.len() > MAX_KV_BATCH {
            return Err(Error::invalid(format!(
                "send 1 to {MAX_KV_BATCH} operations per batch"
            )));
        }
        if atomic {
            let n = ops.len();
            self.kv().transaction(self.bot.as_str(), ops).await?;
            Ok(KvBatchResult::Applied(n))
        } else {
            Ok(KvBatchResult::Outcomes(
                self.kv().batch(self.bot.as_str(), ops).await?,
            ))
        }
    }

    pub async fn kv_stats(&self) -> Result<strata_core::kv::KvStats> {
        self.need(Role::Reader)?;
        self.kv().stats(self.bot.as_str()).await
    }
}

/// Converts a client TTL in seconds; `None` means no expiry.
pub fn ttl_from_seconds(ttl_seconds: Option<i64>) -> Result<Option<Duration>> {
    match ttl_seconds {
        None => Ok(None),
        Some(s) if s <= 0 => Err(Error::new(
            ErrorKind::InvalidInput,
            "ttl_seconds must be 1 or more",
        )
        .with_code("invalid_ttl")),
        Some(s) => {
            let d = Duration::from_secs(s as u64);
            validate_ttl(d)?;
            Ok(Some(d))
        }
    }
}
