//! [`RecordStore`] on SQLite.
//!
//! Every write runs on the database's single writer connection; a
//! read-modify-write transaction starts with a write statement so it holds
//! the write lock from its first step. Reads use the read-only pool.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use std::collections::BTreeMap;

use strata_core::page::{Page, PageRequest};
use strata_core::records::*;
use strata_core::types::*;
use strata_core::{Error, ErrorKind, Result, Timestamp};

use super::db::{map_sqlx_error as db_err, SqliteDatabase};

/// The records layer on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteRecords {
    db: SqliteDatabase,
}

impl SqliteRecords {
    /// Records over an open database.
    pub fn new(db: SqliteDatabase) -> Self {
        SqliteRecords { db }
    }

    /// The underlying database (shared with the kv layer).
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.db.writer().begin().await.map_err(db_err)
    }
}

// ---------------------------------------------------------------- helpers

fn ts(row: &SqliteRow, col: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_millis(
        row.try_get::<i64, _>(col).map_err(db_err)?,
    ))
}

fn opt_ts(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(row
        .try_get::<Option<i64>, _>(col)
        .map_err(db_err)?
        .map(Timestamp::from_millis))
}

fn text(row: &SqliteRow, col: &str) -> Result<String> {
    row.try_get::<String, _>(col).map_err(db_err)
}

fn opt_text(row: &SqliteRow, col: &str) -> Result<Option<String>> {
    row.try_get::<Option<String>, _>(col).map_err(db_err)
}

fn json(row: &SqliteRow, col: &str) -> Result<Value> {
    let s = text(row, col)?;
    serde_json::from_str(&s)
        .map_err(|e| Error::internal(format!("stored JSON in {col} is corrupt")).with_source(e))
}

fn opt_json(row: &SqliteRow, col: &str) -> Result<Option<Value>> {
    match opt_text(row, col)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| {
            Error::internal(format!("stored JSON in {col} is corrupt")).with_source(e)
        }),
    }
}

fn bot_id(row: &SqliteRow) -> Result<BotId> {
    BotId::parse(&text(row, "bot_id")?)
}

fn to_json(v: &Value) -> String {
    v.to_string()
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn not_found(what: &str, id: &str) -> Error {
    Error::not_found(format!("{what} {id:?}"))
}

/// Maps `AlreadyExists` from a unique violation to a message naming the thing.
fn exists_as(what: &str, id: &str) -> impl FnOnce(sqlx::Error) -> Error {
    let msg = format!("{what} {id:?}");
    move |e| {
        let err = db_err(e);
        if err.kind() == ErrorKind::AlreadyExists {
            Error::already_exists(msg)
        } else {
            err
        }
    }
}

fn cursor_key(page: &PageRequest) -> &str {
    page.cursor.as_ref().map(|c| c.key()).unwrap_or("")
}

fn fetch_limit(page: &PageRequest) -> i64 {
    i64::from(page.limit) + 1
}

fn rows_to_page<T>(
    rows: Vec<SqliteRow>,
    page: &PageRequest,
    f: impl Fn(&SqliteRow) -> Result<T>,
    key: impl Fn(&T) -> String,
) -> Result<Page<T>> {
    let items = rows.iter().map(f).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_overfetch(items, page.limit, key))
}

// ---------------------------------------------------------------- row mappers

fn bot_row(r: &SqliteRow) -> Result<Bot> {
    Ok(Bot {
        id: BotId::parse(&text(r, "id")?)?,
        name: text(r, "name")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn key_row(r: &SqliteRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: text(r, "id")?,
        bot_id: bot_id(r)?,
        name: text(r, "name")?,
        role: Role::parse(&text(r, "role")?)?,
        created_at: ts(r, "created_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
    })
}

fn user_row(r: &SqliteRow) -> Result<User> {
    Ok(User {
        id: text(r, "id")?,
        bot_id: bot_id(r)?,
        external_id: opt_text(r, "external_id")?,
        name: opt_text(r, "name")?,
        settings: json(r, "settings")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn session_row(r: &SqliteRow) -> Result<Session> {
    Ok(Session {
        id: text(r, "id")?,
        bot_id: bot_id(r)?,
        user_id: text(r, "user_id")?,
        state: json(r, "state")?,
        ttl_seconds: r.try_get("ttl_seconds").map_err(db_err)?,
        created_at: ts(r, "created_at")?,
        last_seen_at: ts(r, "last_seen_at")?,
        expires_at: ts(r, "expires_at")?,
    })
}

fn conversation_row(r: &SqliteRow) -> Result<Conversation> {
    Ok(Conversation {
        id: text(r, "id")?,
        bot_id: bot_id(r)?,
        user_id: text(r, "user_id")?,
        title: opt_text(r, "title")?,
        metadata: json(r, "metadata")?,
        last_seq: r.try_get("last_seq").map_err(db_err)?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn message_row(r: &SqliteRow) -> Result<Message> {
    Ok(Message {
        id: text(r, "id")?,
        conversation_id: text(r, "conversation_id")?,
        seq: r.try_get("seq").map_err(db_err)?,
        role: MessageRole::parse(&text(r, "role")?)?,
        content: text(r, "content")?,
        metadata: json(r, "metadata")?,
        idempotency_key: opt_text(r, "idempotency_key")?,
        created_at: ts(r, "created_at")?,
    })
}

fn preset_row(r: &SqliteRow) -> Result<Preset> {
    Ok(Preset {
        id: text(r, "id")?,
        bot_id: bot_id(r)?,
        name: text(r, "name")?,
        system_prompt: opt_text(r, "system_prompt")?,
        model: opt_text(r, "model")?,
        params: json(r, "params")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn group_row(r: &SqliteRow) -> Result<Group> {
    Ok(Group {
        id: text(r, "id")?,
        bot_id: bot_id(r)?,
        name: text(r, "name")?,
        settings: json(r, "settings")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn tool_log_row(r: &SqliteRow) -> Result<ToolLog> {
    Ok(ToolLog {
        id: text(r, "id")?,
        bot_id: bot_id(r)?,
        conversation_id: opt_text(r, "conversation_id")?,
        tool: text(r, "tool")?,
        input: json(r, "input")?,
        output: opt_json(r, "output")?,
        status: text(r, "status")?,
        duration_ms: r.try_get("duration_ms").map_err(db_err)?,
        created_at: ts(r, "created_at")?,
    })
}

fn audit_row(r: &SqliteRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: text(r, "id")?,
        bot_id: opt_text(r, "bot_id")?
            .map(|b| BotId::parse(&b))
            .transpose()?,
        actor: text(r, "actor")?,
        action: text(r, "action")?,
        target: text(r, "target")?,
        details: json(r, "details")?,
        created_at: ts(r, "created_at")?,
    })
}

// ---------------------------------------------------------------- bots

#[async_trait]
impl BotStore for SqliteRecords {
    async fn create_bot(&self, id: &BotId, name: &str) -> Result<Bot> {
        let now = Timestamp::now().as_millis();
        let row = sqlx::query(
            "INSERT INTO bots (id, name, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING *",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(now)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(exists_as("bot", id.as_str()))?;
        bot_row(&row)
    }

    async fn get_bot(&self, id: &BotId) -> Result<Bot> {
        let row = sqlx::query("SELECT * FROM bots WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("bot", id.as_str()))?;
        bot_row(&row)
    }

    async fn list_bots(&self, page: &PageRequest) -> Result<Page<Bot>> {
        let rows = sqlx::query("SELECT * FROM bots WHERE id > ? ORDER BY id LIMIT ?")
            .bind(cursor_key(page))
            .bind(fetch_limit(page))
            .fetch_all(self.db.reader())
            .await
            .map_err(db_err)?;
        rows_to_page(rows, page, bot_row, |b| b.id.to_string())
    }

    async fn update_bot(&self, id: &BotId, name: &str) -> Result<Bot> {
        let row = sqlx::query("UPDATE bots SET name = ?, updated_at = ? WHERE id = ? RETURNING *")
            .bind(name)
            .bind(Timestamp::now().as_millis())
            .bind(id.as_str())
            .fetch_optional(self.db.writer())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("bot", id.as_str()))?;
        bot_row(&row)
    }

    async fn delete_bot(&self, id: &BotId) -> Result<()> {
        let mut tx = self.begin().await?;
        // Children without a direct foreign key to bots go first.
        for table in ["messages", "conversations", "sessions", "users"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE bot_id = ?"))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let done = sqlx::query("DELETE FROM bots WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(not_found("bot", id.as_str()));
        }
        tx.commit().await.map_err(db_err)
    }
}

// ---------------------------------------------------------------- keys

#[async_trait]
impl KeyStore for SqliteRecords {
    async fn create_key(&self, key: &ApiKey, secret_hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO api_keys (id, bot_id, name, role, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)")
            .bind(&key.id)
            .bind(key.bot_id.as_str())
            .bind(&key.name)
            .bind(key.role.as_str())
            .bind(secret_hash)
            .bind(key.created_at.as_millis())
            .execute(self.db.writer())
            .await
            .map_err(|e| {
                let err = db_err(e);
                if err.kind() == ErrorKind::NotFound {
                    not_found("bot", key.bot_id.as_str())
                } else {
                    err
                }
            })?;
        Ok(())
    }

    async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(key_id)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(StoredKey {
                key: key_row(&r)?,
                secret_hash: text(&r, "secret_hash")?,
            })
        })
        .transpose()
    }

    async fn list_keys(&self, bot: &BotId, page: &PageRequest) -> Result<Page<ApiKey>> {
        let rows =
            sqlx::query("SELECT * FROM api_keys WHERE bot_id = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(bot.as_str())
                .bind(cursor_key(page))
                .bind(fetch_limit(page))
                .fetch_all(self.db.reader())
                .await
                .map_err(db_err)?;
        rows_to_page(rows, page, key_row, |k| k.id.clone())
    }

    async fn revoke_key(&self, bot: &BotId, key_id: &str) -> Result<ApiKey> {
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE bot_id = ? AND id = ? RETURNING *",
        )
        .bind(Timestamp::now().as_millis())
        .bind(bot.as_str())
        .bind(key_id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found("key", key_id))?;
        key_row(&row)
    }
}

// ---------------------------------------------------------------- users

#[async_trait]
impl UserStore for SqliteRecords {
    async fn create_user(&self, bot: &BotId, user: &NewUser) -> Result<User> {
        let id = user.id.clone().unwrap_or_else(new_id);
        let now = Timestamp::now().as_millis();
        let settings = user.settings.clone().unwrap_or_else(empty_object);
        let row = sqlx::query(
            "INSERT INTO users (bot_id, id, external_id, name, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(bot.as_str())
        .bind(&id)
        .bind(&user.external_id)
        .bind(&user.name)
        .bind(to_json(&settings))
        .bind(now)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(exists_as("user (id or external_id)", &id))?;
        user_row(&row)
    }

    async fn get_user(&self, bot: &BotId, id: &str) -> Result<User> {
        let row = sqlx::query("SELECT * FROM users WHERE bot_id = ? AND id = ?")
            .bind(bot.as_str())
            .bind(id)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("user", id))?;
        user_row(&row)
    }

    async fn list_users(&self, bot: &BotId, page: &PageRequest) -> Result<Page<User>> {
        let rows =
            sqlx::query("SELECT * FROM users WHERE bot_id = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(bot.as_str())
                .bind(cursor_key(page))
                .bind(fetch_limit(page))
                .fetch_all(self.db.reader())
                .await
                .map_err(db_err)?;
        rows_to_page(rows, page, user_row, |u| u.id.clone())
    }

    async fn update_user(&self, bot: &BotId, id: &str, patch: &UserPatch) -> Result<User> {
        let row = sqlx::query(
            "UPDATE users SET external_id = COALESCE(?, external_id), name = COALESCE(?, name), \
             settings = COALESCE(?, settings), updated_at = ? WHERE bot_id = ? AND id = ? RETURNING *",
        )
        .bind(&patch.external_id)
        .bind(&patch.name)
        .bind(patch.settings.as_ref().map(to_json))
        .bind(Timestamp::now().as_millis())
        .bind(bot.as_str())
        .bind(id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(exists_as("user with this external_id", id))?
        .ok_or_else(|| not_found("user", id))?;
        user_row(&row)
    }

    async fn delete_user(&self, bot: &BotId, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM users WHERE bot_id = ? AND id = ?")
            .bind(bot.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(not_found("user", id));
        }
        tx.commit().await.map_err(db_err)
    }
}

// ---------------------------------------------------------------- sessions

const LIVE_SESSION: &str = "revoked_at IS NULL AND expires_at > ?";

#[async_trait]
impl SessionStore for SqliteRecords {
    async fn create_session(&self, bot: &BotId, s: &NewSession) -> Result<Session> {
        let now = Timestamp::now();
        let row = sqlx::query(
            "INSERT INTO sessions (bot_id, id, user_id, token_hash, state, ttl_seconds, created_at, last_seen_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(bot.as_str())
        .bind(new_id())
        .bind(&s.user_id)
        .bind(&s.token_hash)
        .bind(to_json(&s.state))
        .bind(s.ttl_seconds)
        .bind(now.as_millis())
        .bind(now.as_millis())
        .bind(now.plus_seconds(s.ttl_seconds).as_millis())
        .fetch_one(self.db.writer())
        .await
        .map_err(|e| {
            let err = db_err(e);
            if err.kind() == ErrorKind::NotFound {
                not_found("user", &s.user_id)
            } else {
                err
            }
        })?;
        session_row(&row)
    }

    async fn get_session(&self, bot: &BotId, id: &str, now: Timestamp) -> Result<Session> {
        let row = sqlx::query(&format!(
            "SELECT * FROM sessions WHERE bot_id = ? AND id = ? AND {LIVE_SESSION}"
        ))
        .bind(bot.as_str())
        .bind(id)
        .bind(now.as_millis())
        .fetch_optional(self.db.reader())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found("session", id))?;
        session_row(&row)
    }

    async fn resolve_session(
        &self,
        bot: &BotId,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Session> {
        let row = sqlx::query(
            "UPDATE sessions SET last_seen_at = ?1, expires_at = ?1 + ttl_seconds * 1000 \
             WHERE bot_id = ?2 AND token_hash = ?3 AND revoked_at IS NULL AND expires_at > ?1 RETURNING *",
        )
        .bind(now.as_millis())
        .bind(bot.as_str())
        .bind(token_hash)
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("session (expired, revoked or unknown token)"))?;
        session_row(&row)
    }

    async fn update_session_state(
        &self,
        bot: &BotId,
        id: &str,
        state: &Value,
        now: Timestamp,
    ) -> Result<Session> {
        let row = sqlx::query(&format!(
            "UPDATE sessions SET state = ? WHERE bot_id = ? AND id = ? AND {LIVE_SESSION} RETURNING *"
        ))
        .bind(to_json(state))
        .bind(bot.as_str())
        .bind(id)
        .bind(now.as_millis())
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found("session", id))?;
        session_row(&row)
    }

    async fn revoke_session(&self, bot: &BotId, id: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE bot_id = ? AND id = ? AND revoked_at IS NULL",
        )
        .bind(Timestamp::now().as_millis())
        .bind(bot.as_str())
        .bind(id)
        .execute(self.db.writer())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(not_found("session", id));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- conversations

async fn find_replay(
    tx: &mut Transaction<'static, Sqlite>,
    bot: &BotId,
    conv: &str,
    key: &str,
) -> Result<Option<Message>> {
    let row = sqlx::query(
        "SELECT * FROM messages WHERE bot_id = ? AND conversation_id = ? AND idempotency_key = ?",
    )
    .bind(bot.as_str())
    .bind(conv)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.as_ref().map(message_row).transpose()
}

#[async_trait]
impl ConversationStore for SqliteRecords {
    async fn create_conversation(&self, bot: &BotId, c: &NewConversation) -> Result<Conversation> {
        let id = c.id.clone().unwrap_or_else(new_id);
        let now = Timestamp::now().as_millis();
        let row = sqlx::query(
            "INSERT INTO conversations (bot_id, id, user_id, title, metadata, last_seq, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, 0, ?, ?) RETURNING *",
        )
        .bind(bot.as_str())
        .bind(&id)
        .bind(&c.user_id)
        .bind(&c.title)
        .bind(to_json(c.metadata.as_ref().unwrap_or(&empty_object())))
        .bind(now)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(|e| {
            let err = db_err(e);
            match err.kind() {
                ErrorKind::NotFound => not_found("user", &c.user_id),
                ErrorKind::AlreadyExists => Error::already_exists(format!("conversation {id:?}")),
                _ => err,
            }
        })?;
        conversation_row(&row)
    }

    async fn get_conversation(&self, bot: &BotId, id: &str) -> Result<Conversation> {
        let row = sqlx::query("SELECT * FROM conversations WHERE bot_id = ? AND id = ?")
            .bind(bot.as_str())
            .bind(id)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("conversation", id))?;
        conversation_row(&row)
    }

    async fn list_conversations(
        &self,
        bot: &BotId,
        user_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Conversation>> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE bot_id = ? AND (? IS NULL OR user_id = ?) AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(bot.as_str())
        .bind(user_id)
        .bind(user_id)
        .bind(cursor_key(page))
        .bind(fetch_limit(page))
        .fetch_all(self.db.reader())
        .await
        .map_err(db_err)?;
        rows_to_page(rows, page, conversation_row, |c| c.id.clone())
    }

    async fn update_conversation(
        &self,
        bot: &BotId,
        id: &str,
        patch: &ConversationPatch,
    ) -> Result<Conversation> {
        let row = sqlx::query(
            "UPDATE conversations SET title = COALESCE(?, title), metadata = COALESCE(?, metadata), updated_at = ? \
             WHERE bot_id = ? AND id = ? RETURNING *",
        )
        .bind(&patch.title)
        .bind(patch.metadata.as_ref().map(to_json))
        .bind(Timestamp::now().as_millis())
        .bind(bot.as_str())
        .bind(id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found("conversation", id))?;
        conversation_row(&row)
    }

    async fn delete_conversation(&self, bot: &BotId, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM conversations WHERE bot_id = ? AND id = ?")
            .bind(bot.as_str())
            .bind(id)
            .execute(self.db.writer())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(not_found("conversation", id));
        }
        Ok(())
    }

    async fn append_messages(
        &self,
        bot: &BotId,
        conv: &str,
        messages: &[NewMessage],
    ) -> Result<Vec<Appended>> {
        let now = Timestamp::now().as_millis();
        let mut tx = self.begin().await?;
        // The first statement writes, so this transaction holds the write lock
        // from here on and `last_seq` cannot move under it.
        let last_seq: i64 = sqlx::query_scalar(
            "UPDATE conversations SET updated_at = ? WHERE bot_id = ? AND id = ? RETURNING last_seq",
        )
        .bind(now)
        .bind(bot.as_str())
        .bind(conv)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found("conversation", conv))?;

        let mut seq = last_seq;
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            if let Some(key) = &m.idempotency_key {
                if let Some(original) = find_replay(&mut tx, bot, conv, key).await? {
                    out.push(Appended {
                        message: original,
                        replayed: true,
                    });
                    continue;
                }
            }
            seq += 1;
            let metadata = m.metadata.clone().unwrap_or_else(empty_object);
            let message = Message {
                id: new_id(),
                conversation_id: conv.to_owned(),
                seq,
                role: m.role,
                content: m.content.clone(),
                metadata,
                idempotency_key: m.idempotency_key.clone(),
                created_at: Timestamp::from_millis(now),
            };
            sqlx::query(
                "INSERT INTO messages (bot_id, conversation_id, seq, id, role, content, metadata, idempotency_key, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(bot.as_str())
            .bind(conv)
            .bind(seq)
            .bind(&message.id)
            .bind(message.role.as_str())
            .bind(&message.content)
            .bind(to_json(&message.metadata))
            .bind(&message.idempotency_key)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            out.push(Appended {
                message,
                replayed: false,
            });
        }
        if seq != last_seq {
            sqlx::query("UPDATE conversations SET last_seq = ? WHERE bot_id = ? AND id = ?")
                .bind(seq)
                .bind(bot.as_str())
                .bind(conv)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    async fn list_messages(
        &self,
        bot: &BotId,
        conv: &str,
        range: &MessageRange,
    ) -> Result<(Vec<Message>, bool)> {
        let mut conn = self.db.reader().acquire().await.map_err(db_err)?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM conversations WHERE bot_id = ? AND id = ?")
                .bind(bot.as_str())
                .bind(conv)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
        if exists.is_none() {
            return Err(not_found("conversation", conv));
        }
        let limit = i64::from(range.limit) + 1;
        let rows = match range.before_seq {
            None => sqlx::query(
                "SELECT * FROM messages WHERE bot_id = ? AND conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            )
            .bind(bot.as_str())
            .bind(conv)
            .bind(range.after_seq)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?,
            Some(before) => sqlx::query(
                "SELECT * FROM messages WHERE bot_id = ? AND conversation_id = ? AND seq > ? AND seq < ? \
                 ORDER BY seq DESC LIMIT ?",
            )
            .bind(bot.as_str())
            .bind(conv)
            .bind(range.after_seq)
            .bind(before)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?,
        };
        let mut messages = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        let more = messages.len() > range.limit as usize;
        messages.truncate(range.limit as usize);
        if range.before_seq.is_some() {
            messages.reverse();
        }
        Ok((messages, more))
    }
}

// ---------------------------------------------------------------- presets, groups, tool logs

#[async_trait]
impl PresetStore for SqliteRecords {
    async fn create_preset(&self, bot: &BotId, p: &PresetFields) -> Result<Preset> {
        let now = Timestamp::now().as_millis();
        let row = sqlx::query(
            "INSERT INTO presets (bot_id, id, name, system_prompt, model, params, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(bot.as_str())
        .bind(new_id())
        .bind(&p.name)
        .bind(&p.system_prompt)
        .bind(&p.model)
        .bind(to_json(p.params.as_ref().unwrap_or(&empty_object())))
        .bind(now)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(db_err)?;
        preset_row(&row)
    }

    async fn get_preset(&self, bot: &BotId, id: &str) -> Result<Preset> {
        let row = sqlx::query("SELECT * FROM presets WHERE bot_id = ? AND id = ?")
            .bind(bot.as_str())
            .bind(id)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("preset", id))?;
        preset_row(&row)
    }

    async fn list_presets(&self, bot: &BotId, page: &PageRequest) -> Result<Page<Preset>> {
        let rows =
            sqlx::query("SELECT * FROM presets WHERE bot_id = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(bot.as_str())
                .bind(cursor_key(page))
                .bind(fetch_limit(page))
                .fetch_all(self.db.reader())
                .await
                .map_err(db_err)?;
        rows_to_page(rows, page, preset_row, |p| p.id.clone())
    }

    async fn replace_preset(&self, bot: &BotId, id: &str, p: &PresetFields) -> Result<Preset> {
        let row = sqlx::query(
            "UPDATE presets SET name = ?, system_prompt = ?, model = ?, params = ?, updated_at = ? \
             WHERE bot_id = ? AND id = ? RETURNING *",
        )
        .bind(&p.name)
        .bind(&p.system_prompt)
        .bind(&p.model)
        .bind(to_json(p.params.as_ref().unwrap_or(&empty_object())))
        .bind(Timestamp::now().as_millis())
        .bind(bot.as_str())
        .bind(id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found("preset", id))?;
        preset_row(&row)
    }

    async fn delete_preset(&self, bot: &BotId, id: &str) -> Result<()> {
        delete_one(&self.db, "presets", "preset", bot, id).await
    }
}

async fn delete_one(
    db: &SqliteDatabase,
    table: &str,
    what: &str,
    bot: &BotId,
    id: &str,
) -> Result<()> {
    let done = sqlx::query(&format!("DELETE FROM {table} WHERE bot_id = ? AND id = ?"))
        .bind(bot.as_str())
        .bind(id)
        .execute(db.writer())
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found(what, id));
    }
    Ok(())
}

#[async_trait]
impl GroupStore for SqliteRecords {
    async fn create_group(&self, bot: &BotId, g: &GroupFields) -> Result<Group> {
        let now = Timestamp::now().as_millis();
        let row = sqlx::query(
            "INSERT INTO groups (bot_id, id, name, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(bot.as_str())
        .bind(new_id())
        .bind(&g.name)
        .bind(to_json(g.settings.as_ref().unwrap_or(&empty_object())))
        .bind(now)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(db_err)?;
        group_row(&row)
    }

    async fn get_group(&self, bot: &BotId, id: &str) -> Result<Group> {
        let row = sqlx::query("SELECT * FROM groups WHERE bot_id = ? AND id = ?")
            .bind(bot.as_str())
            .bind(id)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("group", id))?;
        group_row(&row)
    }

    async fn list_groups(&self, bot: &BotId, page: &PageRequest) -> Result<Page<Group>> {
        let rows =
            sqlx::query("SELECT * FROM groups WHERE bot_id = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(bot.as_str())
                .bind(cursor_key(page))
                .bind(fetch_limit(page))
                .fetch_all(self.db.reader())
                .await
                .map_err(db_err)?;
        rows_to_page(rows, page, group_row, |g| g.id.clone())
    }

    async fn replace_group(&self, bot: &BotId, id: &str, g: &GroupFields) -> Result<Group> {
        let row = sqlx::query("UPDATE groups SET name = ?, settings = ?, updated_at = ? WHERE bot_id = ? AND id = ? RETURNING *")
            .bind(&g.name)
            .bind(to_json(g.settings.as_ref().unwrap_or(&empty_object())))
            .bind(Timestamp::now().as_millis())
            .bind(bot.as_str())
            .bind(id)
            .fetch_optional(self.db.writer())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("group", id))?;
        group_row(&row)
    }

    async fn delete_group(&self, bot: &BotId, id: &str) -> Result<()> {
        delete_one(&self.db, "groups", "group", bot, id).await
    }
}

#[async_trait]
impl ToolLogStore for SqliteRecords {
    async fn create_tool_log(&self, bot: &BotId, l: &NewToolLog) -> Result<ToolLog> {
        let row = sqlx::query(
            "INSERT INTO tool_logs (bot_id, id, conversation_id, tool, input, output, status, duration_ms, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(bot.as_str())
        .bind(new_id())
        .bind(&l.conversation_id)
        .bind(&l.tool)
        .bind(to_json(&l.input))
        .bind(l.output.as_ref().map(to_json))
        .bind(&l.status)
        .bind(l.duration_ms)
        .bind(Timestamp::now().as_millis())
        .fetch_one(self.db.writer())
        .await
        .map_err(db_err)?;
        tool_log_row(&row)
    }

    async fn list_tool_logs(
        &self,
        bot: &BotId,
        conversation_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ToolLog>> {
        let rows = sqlx::query(
            "SELECT * FROM tool_logs WHERE bot_id = ? AND (? IS NULL OR conversation_id = ?) AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(bot.as_str())
        .bind(conversation_id)
        .bind(conversation_id)
        .bind(cursor_key(page))
        .bind(fetch_limit(page))
        .fetch_all(self.db.reader())
        .await
        .map_err(db_err)?;
        rows_to_page(rows, page, tool_log_row, |l| l.id.clone())
    }
}

// ---------------------------------------------------------------- config

async fn write_config(
    tx: &mut Transaction<'static, Sqlite>,
    bot: &BotId,
    config: &BTreeMap<String, Value>,
) -> Result<()> {
    let now = Timestamp::now().as_millis();
    for (name, value) in config {
        sqlx::query(
            "INSERT INTO bot_config (bot_id, name, value, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (bot_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(bot.as_str())
        .bind(name)
        .bind(to_json(value))
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl ConfigStore for SqliteRecords {
    async fn get_config(&self, bot: &BotId) -> Result<BTreeMap<String, Value>> {
        let rows = sqlx::query("SELECT name, value FROM bot_config WHERE bot_id = ? ORDER BY name")
            .bind(bot.as_str())
            .fetch_all(self.db.reader())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((text(r, "name")?, json(r, "value")?)))
            .collect()
    }

    async fn replace_config(&self, bot: &BotId, config: &BTreeMap<String, Value>) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM bot_config WHERE bot_id = ?")
            .bind(bot.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        write_config(&mut tx, bot, config).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn merge_config(&self, bot: &BotId, config: &BTreeMap<String, Value>) -> Result<()> {
        let mut tx = self.begin().await?;
        write_config(&mut tx, bot, config).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_config_value(&self, bot: &BotId, name: &str) -> Result<Value> {
        let row = sqlx::query("SELECT value FROM bot_config WHERE bot_id = ? AND name = ?")
            .bind(bot.as_str())
            .bind(name)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found("setting", name))?;
        json(&row, "value")
    }

    async fn set_config_value(&self, bot: &BotId, name: &str, value: &Value) -> Result<()> {
        let mut tx = self.begin().await?;
        write_config(
            &mut tx,
            bot,
            &BTreeMap::from([(name.to_owned(), value.clone())]),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_config_value(&self, bot: &BotId, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM bot_config WHERE bot_id = ? AND name = ?")
            .bind(bot.as_str())
            .bind(name)
            .execute(self.db.writer())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(not_found("setting", name));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- audit, meta

#[async_trait]
impl AuditLog for SqliteRecords {
    async fn record_audit(&self, e: &AuditEvent) -> Result<()> {
        sqlx::query("INSERT INTO audit_events (id, bot_id, actor, action, target, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&e.id)
            .bind(e.bot_id.as_ref().map(|b| b.as_str()))
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(to_json(&e.details))
            .bind(e.created_at.as_millis())
            .execute(self.db.writer())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_audit(
        &self,
        bot: Option<&BotId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        let bot = bot.map(|b| b.as_str());
        let rows = sqlx::query("SELECT * FROM audit_events WHERE (? IS NULL OR bot_id = ?) AND id > ? ORDER BY id LIMIT ?")
            .bind(bot)
            .bind(bot)
            .bind(cursor_key(page))
            .bind(fetch_limit(page))
            .fetch_all(self.db.reader())
            .await
            .map_err(db_err)?;
        rows_to_page(rows, page, audit_row, |a| a.id.clone())
    }
}

#[async_trait]
impl MetaStore for SqliteRecords {
    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM server_meta WHERE key = ?")
            .bind(key)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_err)
    }

    async fn set_meta_if_absent(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO server_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let stored: String = sqlx::query_scalar("SELECT value FROM server_meta WHERE key = ?")
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(stored)
    }
}

#[async_trait]
impl RecordStore for SqliteRecords {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(self.db.reader())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR revoked_at IS NOT NULL")
                .bind(now.as_millis())
                .execute(self.db.writer())
                .await
                .map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
