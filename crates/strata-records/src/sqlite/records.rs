//! [`RecordStore`] on SQLite.
//!
//! Writes are closures run by the database's writer thread (group commit,
//! one savepoint each); reads run on a pooled read-only connection. Every
//! statement is prepared once per connection and cached.

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Params, Row};
use serde_json::Value;
use std::collections::BTreeMap;

use strata_core::page::{Page, PageRequest};
use strata_core::records::*;
use strata_core::types::*;
use strata_core::{Error, ErrorKind, Result, Timestamp};

use super::db::{map_sqlite_error as db_err, SqliteDatabase};

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
}

// ---------------------------------------------------------------- helpers

type RowResult<T> = rusqlite::Result<T>;

fn conversion(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

fn ts(r: &Row, col: &str) -> RowResult<Timestamp> {
    Ok(Timestamp::from_millis(r.get::<_, i64>(col)?))
}

fn opt_ts(r: &Row, col: &str) -> RowResult<Option<Timestamp>> {
    Ok(r.get::<_, Option<i64>>(col)?.map(Timestamp::from_millis))
}

fn json(r: &Row, col: &str) -> RowResult<Value> {
    let s: String = r.get(col)?;
    serde_json::from_str(&s).map_err(|e| conversion(0, e))
}

fn opt_json(r: &Row, col: &str) -> RowResult<Option<Value>> {
    match r.get::<_, Option<String>>(col)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| conversion(0, e)),
    }
}

fn bot_id_col(r: &Row, col: &str) -> RowResult<BotId> {
    let s: String = r.get(col)?;
    BotId::parse(&s).map_err(|e| conversion(0, e))
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

/// Re-labels `NotFound`/`AlreadyExists` from constraint violations.
fn relabel(e: Error, on_fk: impl FnOnce() -> Error, on_unique: impl FnOnce() -> Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound => on_fk(),
        ErrorKind::AlreadyExists => on_unique(),
        _ => e,
    }
}

fn one<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    map: impl FnOnce(&Row) -> RowResult<T>,
) -> Result<Option<T>> {
    let mut st = c.prepare_cached(sql).map_err(db_err)?;
    st.query_row(p, map).optional().map_err(db_err)
}

fn all<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    map: impl FnMut(&Row) -> RowResult<T>,
) -> Result<Vec<T>> {
    let mut st = c.prepare_cached(sql).map_err(db_err)?;
    let rows = st.query_map(p, map).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(db_err)
}

fn exec(c: &Connection, sql: &str, p: impl Params) -> Result<usize> {
    let mut st = c.prepare_cached(sql).map_err(db_err)?;
    st.execute(p).map_err(db_err)
}

fn cursor_key(page: &PageRequest) -> String {
    page.cursor
        .as_ref()
        .map(|c| c.key().to_owned())
        .unwrap_or_default()
}

fn fetch_limit(page: &PageRequest) -> i64 {
    i64::from(page.limit) + 1
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

// ---------------------------------------------------------------- row mappers

fn bot_row(r: &Row) -> RowResult<Bot> {
    Ok(Bot {
        id: bot_id_col(r, "id")?,
        name: r.get("name")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn key_row(r: &Row) -> RowResult<ApiKey> {
    let role: String = r.get("role")?;
    Ok(ApiKey {
        id: r.get("id")?,
        bot_id: bot_id_col(r, "bot_id")?,
        name: r.get("name")?,
        role: Role::parse(&role).map_err(|e| conversion(0, e))?,
        created_at: ts(r, "created_at")?,
        revoked_at: opt_ts(r, "revoked_at")?,
    })
}

fn user_row(r: &Row) -> RowResult<User> {
    Ok(User {
        id: r.get("id")?,
        bot_id: bot_id_col(r, "bot_id")?,
        external_id: r.get("external_id")?,
        name: r.get("name")?,
        settings: json(r, "settings")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn session_row(r: &Row) -> RowResult<Session> {
    Ok(Session {
        id: r.get("id")?,
        bot_id: bot_id_col(r, "bot_id")?,
        user_id: r.get("user_id")?,
        state: json(r, "state")?,
        ttl_seconds: r.get("ttl_seconds")?,
        created_at: ts(r, "created_at")?,
        last_seen_at: ts(r, "last_seen_at")?,
        expires_at: ts(r, "expires_at")?,
        token_hash: r.get("token_hash")?,
    })
}

fn conversation_row(r: &Row) -> RowResult<Conversation> {
    Ok(Conversation {
        id: r.get("id")?,
        bot_id: bot_id_col(r, "bot_id")?,
        user_id: r.get("user_id")?,
        title: r.get("title")?,
        metadata: json(r, "metadata")?,
        last_seq: r.get("last_seq")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

const MESSAGE_COLS: &str =
    "id, conversation_id, seq, role, content, metadata, idempotency_key, created_at";

/// Maps a row selected with [`MESSAGE_COLS`], by position.
fn message_row(r: &Row) -> RowResult<Message> {
    let role: String = r.get(3)?;
    let metadata: String = r.get(5)?;
    Ok(Message {
        id: r.get(0)?,
        conversation_id: r.get(1)?,
        seq: r.get(2)?,
        role: MessageRole::parse(&role).map_err(|e| conversion(3, e))?,
        content: r.get(4)?,
        metadata: if metadata == "{}" {
            empty_object()
        } else {
            serde_json::from_str(&metadata).map_err(|e| conversion(5, e))?
        },
        idempotency_key: r.get(6)?,
        created_at: Timestamp::from_millis(r.get(7)?),
    })
}

fn preset_row(r: &Row) -> RowResult<Preset> {
    Ok(Preset {
        id: r.get("id")?,
        bot_id: bot_id_col(r, "bot_id")?,
        name: r.get("name")?,
        system_prompt: r.get("system_prompt")?,
        model: r.get("model")?,
        params: json(r, "params")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn group_row(r: &Row) -> RowResult<Group> {
    Ok(Group {
        id: r.get("id")?,
        bot_id: bot_id_col(r, "bot_id")?,
        name: r.get("name")?,
        settings: json(r, "settings")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn tool_log_row(r: &Row) -> RowResult<ToolLog> {
    Ok(ToolLog {
        id: r.get("id")?,
        bot_id: bot_id_col(r, "bot_id")?,
        conversation_id: r.get("conversation_id")?,
        tool: r.get("tool")?,
        input: json(r, "input")?,
        output: opt_json(r, "output")?,
        status: r.get("status")?,
        duration_ms: r.get("duration_ms")?,
        created_at: ts(r, "created_at")?,
    })
}

fn audit_row(r: &Row) -> RowResult<AuditEvent> {
    let bot: Option<String> = r.get("bot_id")?;
    Ok(AuditEvent {
        id: r.get("id")?,
        bot_id: bot
            .map(|b| BotId::parse(&b))
            .transpose()
            .map_err(|e| conversion(0, e))?,
        actor: r.get("actor")?,
        action: r.get("action")?,
        target: r.get("target")?,
        details: json(r, "details")?,
        created_at: ts(r, "created_at")?,
    })
}

/// Lists rows of a bot-scoped table by id after the cursor.
async fn list_by_id<T: Send + 'static>(
    db: &SqliteDatabase,
    table: &str,
    bot: &BotId,
    page: &PageRequest,
    map: fn(&Row) -> RowResult<T>,
    key: impl Fn(&T) -> String,
) -> Result<Page<T>> {
    let sql = format!("SELECT * FROM {table} WHERE bot_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
    let (bot, cursor, fetch) = (bot.to_string(), cursor_key(page), fetch_limit(page));
    let rows = db
        .read(move |c| all(c, &sql, params![bot, cursor, fetch], map))
        .await?;
    Ok(Page::from_overfetch(rows, page.limit, key))
}

async fn get_by_id<T: Send + 'static>(
    db: &SqliteDatabase,
    table: &str,
    what: &str,
    bot: &BotId,
    id: &str,
    map: fn(&Row) -> RowResult<T>,
) -> Result<T> {
    let sql = format!("SELECT * FROM {table} WHERE bot_id = ?1 AND id = ?2");
    let (b, i) = (bot.to_string(), id.to_owned());
    db.read(move |c| one(c, &sql, params![b, i], map))
        .await?
        .ok_or_else(|| not_found(what, id))
}

async fn delete_by_id(
    db: &SqliteDatabase,
    table: &'static str,
    what: &'static str,
    bot: &BotId,
    id: &str,
) -> Result<()> {
    let (bot, id) = (bot.to_string(), id.to_owned());
    db.write(move |c| {
        let n = exec(
            c,
            &format!("DELETE FROM {table} WHERE bot_id = ?1 AND id = ?2"),
            params![bot, id],
        )?;
        if n == 0 {
            Err(not_found(what, &id))
        } else {
            Ok(())
        }
    })
    .await
}

// ---------------------------------------------------------------- bots

#[async_trait]
impl BotStore for SqliteRecords {
    async fn create_bot(&self, id: &BotId, name: &str) -> Result<Bot> {
        let (id, name) = (id.clone(), name.to_owned());
        self.db
            .write(move |c| {
                let now = now_ms();
                one(
                    c,
                    "INSERT INTO bots (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) RETURNING *",
                    params![id.as_str(), name, now],
                    bot_row,
                )
                .map_err(|e| {
                    let deleting = e.kind() == strata_core::ErrorKind::AlreadyExists
                        && one(
                            c,
                            "SELECT 1 FROM bots WHERE id = ?1 AND deleted_at IS NOT NULL",
                            [id.as_str()],
                            |r| r.get::<_, i64>(0),
                        )
                        .ok()
                        .flatten()
                        .is_some();
                    if deleting {
                        return Error::new(
                            strata_core::ErrorKind::Conflict,
                            format!(
                                "bot {:?} was deleted and its data is still being removed; its id can be used again once that ends",
                                id.as_str()
                            ),
                        )
                        .with_code("bot_deleting");
                    }
                    relabel(e, || not_found("bot", id.as_str()), || Error::already_exists(format!("bot {:?}", id.as_str())))
                })?
                .ok_or_else(|| Error::internal("insert returned no row"))
            })
            .await
    }

    async fn get_bot(&self, id: &BotId) -> Result<Bot> {
        let i = id.to_string();
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT * FROM bots WHERE id = ?1 AND deleted_at IS NULL",
                    [i],
                    bot_row,
                )
            })
            .await?
            .ok_or_else(|| not_found("bot", id.as_str()))
    }

    async fn list_bots(&self, page: &PageRequest) -> Result<Page<Bot>> {
        let (cursor, fetch) = (cursor_key(page), fetch_limit(page));
        let rows = self
            .db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM bots WHERE deleted_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
                    params![cursor, fetch],
                    bot_row,
                )
            })
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, |b| b.id.to_string()))
    }

    async fn update_bot(&self, id: &BotId, name: &str) -> Result<Bot> {
        let (id, name) = (id.clone(), name.to_owned());
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE bots SET name = ?1, updated_at = ?2 WHERE id = ?3 AND deleted_at IS NULL RETURNING *",
                    params![name, now_ms(), id.as_str()],
                    bot_row,
                )?
                .ok_or_else(|| not_found("bot", id.as_str()))
            })
            .await
    }

    async fn delete_bot(&self, id: &BotId) -> Result<()> {
        let id = id.clone();
        self.db
            .write(move |c| {
                let now = now_ms();
                if exec(
                    c,
                    "UPDATE bots SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                    params![id.as_str(), now],
                )? == 0
                {
                    return Err(not_found("bot", id.as_str()));
                }
                // Its keys stop working in the same transaction.
                exec(
                    c,
                    "UPDATE api_keys SET revoked_at = ?2 WHERE bot_id = ?1 AND revoked_at IS NULL",
                    params![id.as_str(), now],
                )?;
                exec(
                    c,
                    "INSERT INTO bot_purges (bot_id, queued_at) VALUES (?1, ?2) ON CONFLICT (bot_id) DO NOTHING",
                    params![id.as_str(), now],
                )?;
                Ok(())
            })
            .await
    }

    async fn bots_to_purge(&self) -> Result<Vec<(BotId, Timestamp)>> {
        let rows: Vec<(String, i64)> = self
            .db
            .read(|c| {
                all(
                    c,
                    "SELECT p.bot_id, p.queued_at FROM bot_purges p JOIN bots b ON b.id = p.bot_id
                     WHERE b.deleted_at IS NOT NULL ORDER BY p.queued_at, p.bot_id",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await?;
        rows.iter()
            .map(|(s, at)| Ok((BotId::parse(s)?, Timestamp::from_millis(*at))))
            .collect()
    }

    async fn purge_bot_rows(&self, id: &BotId) -> Result<()> {
        // The large tables go in batches, each its own short transaction, so
        // a big bot never holds the single writer for long; the bot row goes
        // last and cascades to the rest (its purge row included).
        const BATCH: i64 = 5000;
        const TABLES: &[(&str, &str)] = &[
            (
                "messages",
                "DELETE FROM messages WHERE (bot_id, conversation_id, seq) IN
                 (SELECT bot_id, conversation_id, seq FROM messages WHERE bot_id = ?1 LIMIT ?2)",
            ),
            (
                "tool_logs",
                "DELETE FROM tool_logs WHERE rowid IN (SELECT rowid FROM tool_logs WHERE bot_id = ?1 LIMIT ?2)",
            ),
            (
                "sessions",
                "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE bot_id = ?1 LIMIT ?2)",
            ),
            (
                "conversations",
                "DELETE FROM conversations WHERE rowid IN (SELECT rowid FROM conversations WHERE bot_id = ?1 LIMIT ?2)",
            ),
            (
                "users",
                "DELETE FROM users WHERE rowid IN (SELECT rowid FROM users WHERE bot_id = ?1 LIMIT ?2)",
            ),
        ];
        let b = id.to_string();
        let live: bool = {
            let b = b.clone();
            self.db
                .read(move |c| {
                    Ok(one(
                        c,
                        "SELECT 1 FROM bots WHERE id = ?1 AND deleted_at IS NULL",
                        [b],
                        |r| r.get::<_, i64>(0),
                    )?
                    .is_some())
                })
                .await?
        };
        if live {
            return Err(Error::new(
                strata_core::ErrorKind::Conflict,
                format!("bot {b:?} is live; only a deleted bot is purged"),
            ));
        }
        for (_, sql) in TABLES {
            loop {
                let (b, sql) = (b.clone(), *sql);
                let n = self
                    .db
                    .write(move |c| exec(c, sql, params![b, BATCH]))
                    .await?;
                if n == 0 {
                    break;
                }
            }
        }
        self.db
            .write(move |c| {
                exec(
                    c,
                    "DELETE FROM bots WHERE id = ?1 AND deleted_at IS NOT NULL",
                    [b.as_str()],
                )?;
                Ok(())
            })
            .await
    }

    async fn bot_purge_failed(&self, id: &BotId, error: &str) -> Result<()> {
        let (b, e) = (id.to_string(), error.to_owned());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "UPDATE bot_purges SET attempts = attempts + 1, last_error = ?2 WHERE bot_id = ?1",
                    params![b, e],
                )?;
                Ok(())
            })
            .await
    }
}

// ---------------------------------------------------------------- keys

#[async_trait]
impl KeyStore for SqliteRecords {
    async fn create_key(&self, key: &ApiKey, secret_hash: &str) -> Result<()> {
        let (key, hash) = (key.clone(), secret_hash.to_owned());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO api_keys (id, bot_id, name, role, secret_hash, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
                    params![key.id, key.bot_id.as_str(), key.name, key.role.as_str(), hash, key.created_at.as_millis()],
                )
                .map_err(|e| relabel(e, || not_found("bot", key.bot_id.as_str()), || Error::already_exists(format!("key {:?}", key.id))))?;
                Ok(())
            })
            .await
    }

    async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>> {
        let key_id = key_id.to_owned();
        self.db
            .read(move |c| {
                one(c, "SELECT * FROM api_keys WHERE id = ?1", [key_id], |r| {
                    Ok(StoredKey {
                        key: key_row(r)?,
                        secret_hash: r.get("secret_hash")?,
                    })
                })
            })
            .await
    }

    async fn list_keys(&self, bot: &BotId, page: &PageRequest) -> Result<Page<ApiKey>> {
        list_by_id(&self.db, "api_keys", bot, page, key_row, |k| k.id.clone()).await
    }

    async fn revoke_key(&self, bot: &BotId, key_id: &str) -> Result<ApiKey> {
        let (bot, key_id) = (bot.clone(), key_id.to_owned());
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE bot_id = ?2 AND id = ?3 RETURNING *",
                    params![now_ms(), bot.as_str(), key_id],
                    key_row,
                )?
                .ok_or_else(|| not_found("key", &key_id))
            })
            .await
    }
}

// ---------------------------------------------------------------- users

#[async_trait]
impl UserStore for SqliteRecords {
    async fn create_user(&self, bot: &BotId, user: &NewUser) -> Result<User> {
        let (bot, user) = (bot.clone(), user.clone());
        self.db
            .write(move |c| {
                let id = user.id.clone().unwrap_or_else(new_id);
                let settings = user.settings.clone().unwrap_or_else(empty_object);
                one(
                    c,
                    "INSERT INTO users (bot_id, id, external_id, name, settings, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING *",
                    params![bot.as_str(), id, user.external_id, user.name, to_json(&settings), now_ms()],
                    user_row,
                )
                .map_err(|e| relabel(e, || not_found("bot", bot.as_str()), || Error::already_exists(format!("user (id {id:?} or its external_id)"))))?
                .ok_or_else(|| Error::internal("insert returned no row"))
            })
            .await
    }

    async fn get_user(&self, bot: &BotId, id: &str) -> Result<User> {
        get_by_id(&self.db, "users", "user", bot, id, user_row).await
    }

    async fn list_users(&self, bot: &BotId, page: &PageRequest) -> Result<Page<User>> {
        list_by_id(&self.db, "users", bot, page, user_row, |u| u.id.clone()).await
    }

    async fn update_user(&self, bot: &BotId, id: &str, patch: &UserPatch) -> Result<User> {
        let (bot, id, patch) = (bot.clone(), id.to_owned(), patch.clone());
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE users SET external_id = COALESCE(?1, external_id), name = COALESCE(?2, name), \
                     settings = COALESCE(?3, settings), updated_at = ?4 WHERE bot_id = ?5 AND id = ?6 RETURNING *",
                    params![patch.external_id, patch.name, patch.settings.as_ref().map(to_json), now_ms(), bot.as_str(), id],
                    user_row,
                )
                .map_err(|e| relabel(e, || not_found("user", &id), || Error::already_exists("a user with this external_id")))?
                .ok_or_else(|| not_found("user", &id))
            })
            .await
    }

    async fn delete_user(&self, bot: &BotId, id: &str) -> Result<()> {
        delete_by_id(&self.db, "users", "user", bot, id).await
    }
}

// ---------------------------------------------------------------- sessions

#[async_trait]
impl SessionStore for SqliteRecords {
    async fn create_session(&self, bot: &BotId, s: &NewSession) -> Result<Session> {
        let (bot, s) = (bot.clone(), s.clone());
        self.db
            .write(move |c| {
                let now = Timestamp::now();
                one(
                    c,
                    "INSERT INTO sessions (bot_id, id, user_id, token_hash, state, ttl_seconds, created_at, last_seen_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) RETURNING *",
                    params![
                        bot.as_str(),
                        new_id(),
                        s.user_id,
                        s.token_hash,
                        to_json(&s.state),
                        s.ttl_seconds,
                        now.as_millis(),
                        now.plus_seconds(s.ttl_seconds).as_millis()
                    ],
                    session_row,
                )
                .map_err(|e| relabel(e, || not_found("user", &s.user_id), || Error::already_exists("session token")))?
                .ok_or_else(|| Error::internal("insert returned no row"))
            })
            .await
    }

    async fn get_session(&self, bot: &BotId, id: &str, now: Timestamp) -> Result<Session> {
        let (b, i) = (bot.to_string(), id.to_owned());
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT * FROM sessions WHERE bot_id = ?1 AND id = ?2 AND revoked_at IS NULL AND expires_at > ?3",
                    params![b, i, now.as_millis()],
                    session_row,
                )
            })
            .await?
            .ok_or_else(|| not_found("session", id))
    }

    async fn resolve_session(
        &self,
        bot: &BotId,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Session> {
        let (bot, hash) = (bot.clone(), token_hash.to_owned());
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE sessions SET last_seen_at = ?1, expires_at = ?1 + ttl_seconds * 1000 \
                     WHERE bot_id = ?2 AND token_hash = ?3 AND revoked_at IS NULL AND expires_at > ?1 RETURNING *",
                    params![now.as_millis(), bot.as_str(), hash],
                    session_row,
                )?
                .ok_or_else(|| Error::not_found("session (expired, revoked or unknown token)"))
            })
            .await
    }

    async fn peek_session(&self, bot: &BotId, token_hash: &str, now: Timestamp) -> Result<Session> {
        let (bot, hash) = (bot.to_string(), token_hash.to_owned());
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT * FROM sessions WHERE bot_id = ?1 AND token_hash = ?2 AND revoked_at IS NULL AND expires_at > ?3",
                    params![bot, hash, now.as_millis()],
                    session_row,
                )
            })
            .await?
            .ok_or_else(|| Error::not_found("session (expired, revoked or unknown token)"))
    }

    async fn update_session_state(
        &self,
        bot: &BotId,
        id: &str,
        state: &Value,
        now: Timestamp,
    ) -> Result<Session> {
        let (bot, id, state) = (bot.clone(), id.to_owned(), to_json(state));
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE sessions SET state = ?1 WHERE bot_id = ?2 AND id = ?3 AND revoked_at IS NULL AND expires_at > ?4 RETURNING *",
                    params![state, bot.as_str(), id, now.as_millis()],
                    session_row,
                )?
                .ok_or_else(|| not_found("session", &id))
            })
            .await
    }

    async fn revoke_session(&self, bot: &BotId, id: &str) -> Result<()> {
        let (bot, id) = (bot.clone(), id.to_owned());
        self.db
            .write(move |c| {
                let n = exec(
                    c,
                    "UPDATE sessions SET revoked_at = ?1 WHERE bot_id = ?2 AND id = ?3 AND revoked_at IS NULL",
                    params![now_ms(), bot.as_str(), id],
                )?;
                if n == 0 {
                    Err(not_found("session", &id))
                } else {
                    Ok(())
                }
            })
            .await
    }

    async fn session_token_hashes(&self, bot: &BotId, user_id: &str) -> Result<Vec<String>> {
        let (b, u) = (bot.to_string(), user_id.to_owned());
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT token_hash FROM sessions WHERE bot_id = ?1 AND user_id = ?2",
                    params![b, u],
                    |r| r.get(0),
                )
            })
            .await
    }
}

// ---------------------------------------------------------------- conversations

#[async_trait]
impl ConversationStore for SqliteRecords {
    async fn create_conversation(
        &self,
        bot: &BotId,
        conv: &NewConversation,
    ) -> Result<Conversation> {
        let (bot, conv) = (bot.clone(), conv.clone());
        self.db
            .write(move |c| {
                let id = conv.id.clone().unwrap_or_else(new_id);
                one(
                    c,
                    "INSERT INTO conversations (bot_id, id, user_id, title, metadata, last_seq, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6) RETURNING *",
                    params![
                        bot.as_str(),
                        id,
                        conv.user_id,
                        conv.title,
                        to_json(conv.metadata.as_ref().unwrap_or(&empty_object())),
                        now_ms()
                    ],
                    conversation_row,
                )
                .map_err(|e| relabel(e, || not_found("user", &conv.user_id), || Error::already_exists(format!("conversation {id:?}"))))?
                .ok_or_else(|| Error::internal("insert returned no row"))
            })
            .await
    }

    async fn get_conversation(&self, bot: &BotId, id: &str) -> Result<Conversation> {
        get_by_id(
            &self.db,
            "conversations",
            "conversation",
            bot,
            id,
            conversation_row,
        )
        .await
    }

    async fn list_conversations(
        &self,
        bot: &BotId,
        user_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Conversation>> {
        let (b, u, cursor, fetch) = (
            bot.to_string(),
            user_id.map(str::to_owned),
            cursor_key(page),
            fetch_limit(page),
        );
        let rows = self
            .db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM conversations WHERE bot_id = ?1 AND (?2 IS NULL OR user_id = ?2) AND id > ?3 ORDER BY id LIMIT ?4",
                    params![b, u, cursor, fetch],
                    conversation_row,
                )
            })
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, |c| c.id.clone()))
    }

    async fn update_conversation(
        &self,
        bot: &BotId,
        id: &str,
        patch: &ConversationPatch,
    ) -> Result<Conversation> {
        let (bot, id, patch) = (bot.clone(), id.to_owned(), patch.clone());
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE conversations SET title = COALESCE(?1, title), metadata = COALESCE(?2, metadata), updated_at = ?3 \
                     WHERE bot_id = ?4 AND id = ?5 RETURNING *",
                    params![patch.title, patch.metadata.as_ref().map(to_json), now_ms(), bot.as_str(), id],
                    conversation_row,
                )?
                .ok_or_else(|| not_found("conversation", &id))
            })
            .await
    }

    async fn delete_conversation(&self, bot: &BotId, id: &str) -> Result<()> {
        delete_by_id(&self.db, "conversations", "conversation", bot, id).await
    }

    async fn append_messages(
        &self,
        bot: &BotId,
        conv: &str,
        messages: &[NewMessage],
    ) -> Result<Vec<Appended>> {
        // Everything that needs no database (ids, JSON) is prepared here,
        // off the writer thread, which only runs the statements.
        let now = now_ms();
        let prepared: Vec<(Message, String)> = messages
            .iter()
            .map(|m| {
                let metadata = m.metadata.clone().unwrap_or_else(empty_object);
                let json = to_json(&metadata);
                let message = Message {
                    id: new_id(),
                    conversation_id: conv.to_owned(),
                    seq: 0,
                    role: m.role,
                    content: m.content.clone(),
                    metadata,
                    idempotency_key: m.idempotency_key.clone(),
                    created_at: Timestamp::from_millis(now),
                };
                (message, json)
            })
            .collect();
        let (bot, conv) = (bot.clone(), conv.to_owned());
        self.db
            .write(move |c| {
                let keyed = prepared.iter().any(|(m, _)| m.idempotency_key.is_some());
                let mut out = Vec::with_capacity(prepared.len());
                if !keyed {
                    // The common case: claim n seqs in one statement.
                    let n = prepared.len() as i64;
                    let last: i64 = one(
                        c,
                        "UPDATE conversations SET last_seq = last_seq + ?1, updated_at = ?2 \
                         WHERE bot_id = ?3 AND id = ?4 RETURNING last_seq",
                        params![n, now, bot.as_str(), conv],
                        |r| r.get(0),
                    )?
                    .ok_or_else(|| not_found("conversation", &conv))?;
                    for (i, (mut message, json)) in prepared.into_iter().enumerate() {
                        message.seq = last - n + 1 + i as i64;
                        insert_message(c, &bot, &message, &json)?;
                        out.push(Appended { message, replayed: false });
                    }
                    return Ok(out);
                }
                // With idempotency keys: look each key up first. This runs on
                // the single writer inside one savepoint, so nothing can move
                // `last_seq` between this read and the update below.
                let mut seq: i64 = one(
                    c,
                    "SELECT last_seq FROM conversations WHERE bot_id = ?1 AND id = ?2",
                    params![bot.as_str(), conv],
                    |r| r.get(0),
                )?
                .ok_or_else(|| not_found("conversation", &conv))?;
                for (mut message, json) in prepared {
                    if let Some(key) = &message.idempotency_key {
                        let original = one(
                            c,
                            "SELECT id, conversation_id, seq, role, content, metadata, idempotency_key, created_at \
                             FROM messages WHERE bot_id = ?1 AND conversation_id = ?2 AND idempotency_key = ?3",
                            params![bot.as_str(), conv, key],
                            message_row,
                        )?;
                        if let Some(message) = original {
                            out.push(Appended { message, replayed: true });
                            continue;
                        }
                    }
                    seq += 1;
                    message.seq = seq;
                    insert_message(c, &bot, &message, &json)?;
                    out.push(Appended { message, replayed: false });
                }
                exec(
                    c,
                    "UPDATE conversations SET last_seq = ?1, updated_at = ?2 WHERE bot_id = ?3 AND id = ?4",
                    params![seq, now, bot.as_str(), conv],
                )?;
                Ok(out)
            })
            .await
    }

    async fn list_messages(
        &self,
        bot: &BotId,
        conv: &str,
        range: &MessageRange,
    ) -> Result<(Vec<Message>, bool)> {
        let limit = i64::from(range.limit) + 1;
        let (b, cv, after_seq, before_seq) = (
            bot.to_string(),
            conv.to_owned(),
            range.after_seq,
            range.before_seq,
        );
        let mut messages = self.db.read(move |c| {
            let (bot, conv) = (b.as_str(), cv.as_str());
            let rows = match before_seq {
                None => all(
                    c,
                    &format!(
                        "SELECT {MESSAGE_COLS} FROM messages WHERE bot_id = ?1 AND conversation_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"
                    ),
                    params![bot, conv, after_seq, limit],
                    message_row,
                )?,
                Some(before) => all(
                    c,
                    &format!(
                        "SELECT {MESSAGE_COLS} FROM messages WHERE bot_id = ?1 AND conversation_id = ?2 AND seq > ?3 AND seq < ?4 \
                         ORDER BY seq DESC LIMIT ?5"
                    ),
                    params![bot, conv, after_seq, before, limit],
                    message_row,
                )?,
            };
            // An empty page is only valid for a conversation that exists.
            if rows.is_empty()
                && one(c, "SELECT 1 FROM conversations WHERE bot_id = ?1 AND id = ?2", params![bot, conv], |r| {
                    r.get::<_, i64>(0)
                })?
                .is_none()
            {
                return Err(not_found("conversation", conv));
            }
            Ok(rows)
        }).await?;
        let more = messages.len() > range.limit as usize;
        messages.truncate(range.limit as usize);
        if range.before_seq.is_some() {
            messages.reverse();
        }
        Ok((messages, more))
    }
}

fn insert_message(c: &Connection, bot: &BotId, m: &Message, metadata_json: &str) -> Result<()> {
    exec(
        c,
        "INSERT INTO messages (bot_id, conversation_id, seq, id, role, content, metadata, idempotency_key, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            bot.as_str(),
            m.conversation_id,
            m.seq,
            m.id,
            m.role.as_str(),
            m.content,
            metadata_json,
            m.idempotency_key,
            m.created_at.as_millis()
        ],
    )?;
    Ok(())
}

// ---------------------------------------------------------------- presets, groups, tool logs

#[async_trait]
impl PresetStore for SqliteRecords {
    async fn create_preset(&self, bot: &BotId, p: &PresetFields) -> Result<Preset> {
        let (bot, p) = (bot.clone(), p.clone());
        self.db
            .write(move |c| {
                one(
                    c,
                    "INSERT INTO presets (bot_id, id, name, system_prompt, model, params, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING *",
                    params![
                        bot.as_str(),
                        new_id(),
                        p.name,
                        p.system_prompt,
                        p.model,
                        to_json(p.params.as_ref().unwrap_or(&empty_object())),
                        now_ms()
                    ],
                    preset_row,
                )?
                .ok_or_else(|| Error::internal("insert returned no row"))
            })
            .await
    }

    async fn get_preset(&self, bot: &BotId, id: &str) -> Result<Preset> {
        get_by_id(&self.db, "presets", "preset", bot, id, preset_row).await
    }

    async fn list_presets(&self, bot: &BotId, page: &PageRequest) -> Result<Page<Preset>> {
        list_by_id(&self.db, "presets", bot, page, preset_row, |p| p.id.clone()).await
    }

    async fn replace_preset(&self, bot: &BotId, id: &str, p: &PresetFields) -> Result<Preset> {
        let (bot, id, p) = (bot.clone(), id.to_owned(), p.clone());
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE presets SET name = ?1, system_prompt = ?2, model = ?3, params = ?4, updated_at = ?5 \
                     WHERE bot_id = ?6 AND id = ?7 RETURNING *",
                    params![
                        p.name,
                        p.system_prompt,
                        p.model,
                        to_json(p.params.as_ref().unwrap_or(&empty_object())),
                        now_ms(),
                        bot.as_str(),
                        id
                    ],
                    preset_row,
                )?
                .ok_or_else(|| not_found("preset", &id))
            })
            .await
    }

    async fn delete_preset(&self, bot: &BotId, id: &str) -> Result<()> {
        delete_by_id(&self.db, "presets", "preset", bot, id).await
    }
}

#[async_trait]
impl GroupStore for SqliteRecords {
    async fn create_group(&self, bot: &BotId, g: &GroupFields) -> Result<Group> {
        let (bot, g) = (bot.clone(), g.clone());
        self.db
            .write(move |c| {
                one(
                    c,
                    "INSERT INTO groups (bot_id, id, name, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING *",
                    params![bot.as_str(), new_id(), g.name, to_json(g.settings.as_ref().unwrap_or(&empty_object())), now_ms()],
                    group_row,
                )?
                .ok_or_else(|| Error::internal("insert returned no row"))
            })
            .await
    }

    async fn get_group(&self, bot: &BotId, id: &str) -> Result<Group> {
        get_by_id(&self.db, "groups", "group", bot, id, group_row).await
    }

    async fn list_groups(&self, bot: &BotId, page: &PageRequest) -> Result<Page<Group>> {
        list_by_id(&self.db, "groups", bot, page, group_row, |g| g.id.clone()).await
    }

    async fn replace_group(&self, bot: &BotId, id: &str, g: &GroupFields) -> Result<Group> {
        let (bot, id, g) = (bot.clone(), id.to_owned(), g.clone());
        self.db
            .write(move |c| {
                one(
                    c,
                    "UPDATE groups SET name = ?1, settings = ?2, updated_at = ?3 WHERE bot_id = ?4 AND id = ?5 RETURNING *",
                    params![g.name, to_json(g.settings.as_ref().unwrap_or(&empty_object())), now_ms(), bot.as_str(), id],
                    group_row,
                )?
                .ok_or_else(|| not_found("group", &id))
            })
            .await
    }

    async fn delete_group(&self, bot: &BotId, id: &str) -> Result<()> {
        delete_by_id(&self.db, "groups", "group", bot, id).await
    }
}

#[async_trait]
impl ToolLogStore for SqliteRecords {
    async fn create_tool_log(&self, bot: &BotId, l: &NewToolLog) -> Result<ToolLog> {
        let (bot, l) = (bot.clone(), l.clone());
        self.db
            .write(move |c| {
                one(
                    c,
                    "INSERT INTO tool_logs (bot_id, id, conversation_id, tool, input, output, status, duration_ms, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING *",
                    params![
                        bot.as_str(),
                        new_id(),
                        l.conversation_id,
                        l.tool,
                        to_json(&l.input),
                        l.output.as_ref().map(to_json),
                        l.status,
                        l.duration_ms,
                        now_ms()
                    ],
                    tool_log_row,
                )?
                .ok_or_else(|| Error::internal("insert returned no row"))
            })
            .await
    }

    async fn list_tool_logs(
        &self,
        bot: &BotId,
        conversation_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ToolLog>> {
        let (b, cv, cursor, fetch) = (
            bot.to_string(),
            conversation_id.map(str::to_owned),
            cursor_key(page),
            fetch_limit(page),
        );
        let rows = self
            .db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM tool_logs WHERE bot_id = ?1 AND (?2 IS NULL OR conversation_id = ?2) AND id > ?3 ORDER BY id LIMIT ?4",
                    params![b, cv, cursor, fetch],
                    tool_log_row,
                )
            })
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, |l| l.id.clone()))
    }
}

// ---------------------------------------------------------------- config

fn write_config(c: &Connection, bot: &BotId, config: &BTreeMap<String, Value>) -> Result<()> {
    let now = now_ms();
    for (name, value) in config {
        exec(
            c,
            "INSERT INTO bot_config (bot_id, name, value, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (bot_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![bot.as_str(), name, to_json(value), now],
        )
        .map_err(|e| relabel(e, || not_found("bot", bot.as_str()), || Error::internal("config upsert conflict")))?;
    }
    Ok(())
}

#[async_trait]
impl ConfigStore for SqliteRecords {
    async fn get_config(&self, bot: &BotId) -> Result<BTreeMap<String, Value>> {
        let b = bot.to_string();
        let rows = self
            .db
            .read(move |c| {
                all(
                    c,
                    "SELECT name, value FROM bot_config WHERE bot_id = ?1 ORDER BY name",
                    [b],
                    |r| Ok((r.get::<_, String>(0)?, json(r, "value")?)),
                )
            })
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn replace_config(&self, bot: &BotId, config: &BTreeMap<String, Value>) -> Result<()> {
        let (bot, config) = (bot.clone(), config.clone());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "DELETE FROM bot_config WHERE bot_id = ?1",
                    [bot.as_str()],
                )?;
                write_config(c, &bot, &config)
            })
            .await
    }

    async fn merge_config(&self, bot: &BotId, config: &BTreeMap<String, Value>) -> Result<()> {
        let (bot, config) = (bot.clone(), config.clone());
        self.db.write(move |c| write_config(c, &bot, &config)).await
    }

    async fn get_config_value(&self, bot: &BotId, name: &str) -> Result<Value> {
        let (b, n) = (bot.to_string(), name.to_owned());
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT value FROM bot_config WHERE bot_id = ?1 AND name = ?2",
                    params![b, n],
                    |r| json(r, "value"),
                )
            })
            .await?
            .ok_or_else(|| not_found("setting", name))
    }

    async fn set_config_value(&self, bot: &BotId, name: &str, value: &Value) -> Result<()> {
        let (bot, config) = (
            bot.clone(),
            BTreeMap::from([(name.to_owned(), value.clone())]),
        );
        self.db.write(move |c| write_config(c, &bot, &config)).await
    }

    async fn delete_config_value(&self, bot: &BotId, name: &str) -> Result<()> {
        let (bot, name) = (bot.clone(), name.to_owned());
        self.db
            .write(move |c| {
                if exec(
                    c,
                    "DELETE FROM bot_config WHERE bot_id = ?1 AND name = ?2",
                    params![bot.as_str(), name],
                )? == 0
                {
                    Err(not_found("setting", &name))
                } else {
                    Ok(())
                }
            })
            .await
    }
}

// ---------------------------------------------------------------- audit, meta

#[async_trait]
impl AuditLog for SqliteRecords {
    async fn record_audit(&self, e: &AuditEvent) -> Result<()> {
        let e = e.clone();
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO audit_events (id, bot_id, actor, action, target, details, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        e.id,
                        e.bot_id.as_ref().map(|b| b.as_str()),
                        e.actor,
                        e.action,
                        e.target,
                        to_json(&e.details),
                        e.created_at.as_millis()
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn list_audit(
        &self,
        bot: Option<&BotId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        let (bot, cursor, fetch) = (
            bot.map(|b| b.to_string()),
            cursor_key(page),
            fetch_limit(page),
        );
        let rows = self
            .db
            .read(move |c| {
                all(
                    c,
                    "SELECT * FROM audit_events WHERE (?1 IS NULL OR bot_id = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
                    params![bot, cursor, fetch],
                    audit_row,
                )
            })
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, |a| a.id.clone()))
    }
}

#[async_trait]
impl MetaStore for SqliteRecords {
    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT value FROM server_meta WHERE key = ?1",
                    [key],
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn set_meta_if_absent(&self, key: &str, value: &str) -> Result<String> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.db
            .write(move |c| {
                exec(c, "INSERT INTO server_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING", params![key, value])?;
                one(c, "SELECT value FROM server_meta WHERE key = ?1", [&key], |r| r.get(0))?
                    .ok_or_else(|| Error::internal("meta value vanished"))
            })
            .await
    }
}

#[async_trait]
impl RecordStore for SqliteRecords {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.db
            .read(|c| one(c, "SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await?;
        // Answering reads is not enough: readiness also says whether the
        // database can write (disk full, a failed last write).
        self.db.write_health().await
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let now = now.as_millis();
        self.db
            .write(move |c| {
                let n = exec(
                    c,
                    "DELETE FROM sessions WHERE expires_at <= ?1 OR revoked_at IS NOT NULL",
                    [now],
                )?;
                Ok(n as u64)
            })
            .await
    }
}
