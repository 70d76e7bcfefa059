//! Conversation memory: a bot's past messages, searchable by meaning.
//!
//! When a bot's config has `memory.enabled` = true, its `user` and
//! `assistant` messages are embedded into its `memory` vector collection
//! (one point per message, id = message id, payload `conversation_id`,
//! `user_id`, `role`, `seq`, `created_at`). Search embeds the query, searches
//! that collection (optionally only one user's, one conversation's or one
//! role's messages) and reads each hit's message back from the records
//! database, so a message that was deleted is never returned even if its
//! point outlived it.
//!
//! # Durability
//! Triggers of migration `0005_memory` queue each message in the
//! transaction that stores it (and a bot's earlier messages when memory is
//! switched on), so the queue misses nothing that was acknowledged. The
//! worker ([`ConversationMemory::run_worker`]) embeds a batch, upserts it,
//! then deletes the queue rows; a crash in between repeats the batch, which
//! is harmless (same ids). A batch that keeps failing is retried with
//! backoff and dropped after [`MAX_ATTEMPTS`], with a warning.
//!
//! Messages longer than the embedder's input are embedded from their start
//! (the local model reads 256 word pieces).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};
use strata_core::embed::Embedder;
use strata_core::filter::{Condition, Filter, MatchValue};
use strata_core::records::RecordStore;
use strata_core::types::BotId;
use strata_core::vectors::{
    CollectionSpec, FieldType, Metric, PointId, PointInput, PointSelector, SearchRequest,
    VectorQuota, VectorStore,
};
use strata_core::worker::{QueueStats, WorkerState};
use strata_core::{Error, ErrorKind, Result, Timestamp};
use strata_records::sqlite::map_sqlite_error;
use strata_records::SqliteDatabase;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::base::is_embedder_outage;

/// The per-bot collection that holds conversation memory (Strata's own:
/// no client name can start with `_`).
pub const MEMORY_COLLECTION: &str = "_memory";
/// The bot setting that switches memory on.
pub const MEMORY_SETTING: &str = "memory.enabled";
/// Messages embedded per batch.
pub const MEMORY_BATCH: usize = 64;
/// Claims of a queued message before it is dropped.
pub const MAX_ATTEMPTS: i64 = 5;
/// Largest `k` of a memory search.
pub const MAX_MEMORY_K: usize = 100;
/// Longest query, in bytes.
pub const MAX_MEMORY_QUERY_BYTES: usize = 4096;

/// Whether a stored `memory.enabled` value means "on" (the same values the
/// migration's triggers accept, in any case).
pub fn is_enabled_value(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        _ => false,
    }
}

/// A memory search.
#[derive(Debug, Clone, Default)]
pub struct MemoryQuery {
    pub query: String,
    pub k: usize,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
    /// `user` or `assistant`.
    pub role: Option<String>,
    /// Hits scoring below this (cosine) are left out.
    pub min_score: Option<f32>,
}

/// One remembered message.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryHit {
    pub message_id: String,
    pub conversation_id: String,
    pub user_id: String,
    pub seq: i64,
    pub role: String,
    pub content: String,
    pub created_at: Timestamp,
    pub score: f32,
}

/// Where a bot's memory stands.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryStatus {
    pub enabled: bool,
    /// Messages in the collection.
    pub indexed: u64,
    /// Messages queued for embedding.
    pub pending: u64,
}

struct Queued {
    id: i64,
    bot: String,
    attempts: i64,
    /// `None` when the message no longer exists.
    message: Option<QueuedMessage>,
}

struct QueuedMessage {
    id: String,
    conversation_id: String,
    user_id: String,
    seq: i64,
    role: String,
    content: String,
    created_at: i64,
}

/// Tuning of conversation memory.
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// The server's vector quota per bot (a bot's `vectors.max_points`
    /// overrides it); remembered messages count against it.
    pub default_quota: VectorQuota,
    /// Longest wait between tries while the embedder does not answer
    /// (those tries do not count against a message's attempts).
    pub max_embedder_backoff: Duration,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            default_quota: VectorQuota::default(),
            max_embedder_backoff: Duration::from_secs(60),
        }
    }
}

/// Conversation memory of every bot.
#[derive(Debug)]
pub struct ConversationMemory {
    db: SqliteDatabase,
    vectors: Arc<dyn VectorStore>,
    embedder: Arc<dyn Embedder>,
    records: Arc<dyn RecordStore>,
    opts: MemoryOptions,
    wake: Notify,
    state: Arc<WorkerState>,
    /// Consecutive batches that found the embedder unavailable.
    embedder_outage: std::sync::atomic::AtomicU32,
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

impl ConversationMemory {
    pub fn new(
        db: SqliteDatabase,
        vectors: Arc<dyn VectorStore>,
        embedder: Arc<dyn Embedder>,
        records: Arc<dyn RecordStore>,
        opts: MemoryOptions,
    ) -> Self {
        ConversationMemory {
            db,
            vectors,
            embedder,
            records,
            opts,
            wake: Notify::new(),
            state: Arc::new(WorkerState::new("memory")),
            embedder_outage: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The worker's live state.
    pub fn worker_state(&self) -> &Arc<WorkerState> {
        &self.state
    }

    /// Queued messages and how long the oldest has waited.
    pub async fn queue_stats(&self) -> Result<QueueStats> {
        let (depth, oldest): (i64, Option<i64>) = self
            .db
            .read(|c| {
                c.query_row(
                    "SELECT count(*), min(nullif(queued_at, 0)) FROM memory_queue",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(map_sqlite_error)
            })
            .await?;
        Ok(QueueStats {
            depth: depth.max(0) as u64,
            oldest_age_seconds: oldest
                .map(|t| ((now_ms() - t).max(0) as f64) / 1000.0)
                .unwrap_or(0.0),
        })
    }

    /// Wakes the worker (after messages were stored).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Whether the bot's config switches memory on.
    pub async fn enabled(&self, bot: &BotId) -> Result<bool> {
        let bot = bot.as_str().to_owned();
        let raw: Option<String> = self
            .db
            .read(move |c| {
                c.query_row(
                    "SELECT value FROM bot_config WHERE bot_id = ?1 AND name = ?2",
                    params![bot, MEMORY_SETTING],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_sqlite_error)
            })
            .await?;
        Ok(raw
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .is_some_and(|v| is_enabled_value(&v)))
    }

    /// Where the bot's memory stands.
    pub async fn status(&self, bot: &BotId) -> Result<MemoryStatus> {
        let enabled = self.enabled(bot).await?;
        let b = bot.as_str().to_owned();
        let pending: i64 = self
            .db
            .read(move |c| {
                c.query_row(
                    "SELECT COUNT(*) FROM memory_queue WHERE bot_id = ?1",
                    params![b],
                    |r| r.get(0),
                )
                .map_err(map_sqlite_error)
            })
            .await?;
        let indexed = match self.vectors.count(bot, MEMORY_COLLECTION, None).await {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(MemoryStatus {
            enabled,
            indexed,
            pending: pending.max(0) as u64,
        })
    }

    /// Forgets everything the bot remembers: drops its collection and its
    /// queue (the setting is left as it is).
    pub async fn forget_all(&self, bot: &BotId) -> Result<()> {
        let b = bot.as_str().to_owned();
        self.db
            .write(move |c| {
                c.execute("DELETE FROM memory_queue WHERE bot_id = ?1", params![b])
                    .map_err(map_sqlite_error)?;
                Ok(())
            })
            .await?;
        match self.vectors.drop_collection(bot, MEMORY_COLLECTION).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Drops a deleted bot's queued messages (its purge; the collection
    /// goes with the bot's vectors).
    pub async fn drop_bot(&self, bot: &BotId) -> Result<()> {
        let b = bot.as_str().to_owned();
        self.db
            .write(move |c| {
                c.execute("DELETE FROM memory_queue WHERE bot_id = ?1", params![b])
                    .map_err(map_sqlite_error)?;
                Ok(())
            })
            .await
    }

    /// Removes the points of one conversation or one user (called after
    /// they were deleted; search re-checks messages anyway).
    pub async fn forget(&self, bot: &BotId, key: &str, value: &str) -> Result<u64> {
        let filter = Filter {
            must: vec![Condition::Match {
                key: key.to_owned(),
                value: MatchValue::Str(value.to_owned()),
            }],
            ..Default::default()
        };
        match self
            .vectors
            .delete_points(bot, MEMORY_COLLECTION, PointSelector::Filter(filter))
            .await
        {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Runs the embedding worker until `stop` is cancelled. A batch cut
    /// short by `stop` is simply left queued (its rows are deleted only
    /// after its points are written), so it resumes at the next start.
    pub async fn run_worker(self: Arc<Self>, stop: CancellationToken) -> Result<()> {
        self.state.running();
        loop {
            let outcome = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                r = self.run_batch() => r,
            };
            match outcome {
                Ok(0) => {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "conversation memory: a batch failed; retrying");
                    self.state.failed(&e);
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Embeds queued messages until none is runnable; returns how many
    /// queue rows were handled (tests and tools).
    pub async fn drain(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.run_batch().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    async fn next_batch(&self) -> Result<Vec<Queued>> {
        let now = now_ms();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT q.id, q.bot_id, q.attempts, m.id, m.conversation_id, cv.user_id,
                            m.seq, m.role, m.content, m.created_at
                     FROM memory_queue q
                     LEFT JOIN messages m ON m.bot_id = q.bot_id
                          AND m.conversation_id = q.conversation_id AND m.seq = q.seq
                     LEFT JOIN conversations cv ON cv.bot_id = q.bot_id
                          AND cv.id = q.conversation_id
                     WHERE q.next_run_at <= ?1
                     ORDER BY q.id LIMIT ?2",
                    )
                    .map_err(map_sqlite_error)?;
                let rows = stmt
                    .query_map(params![now, MEMORY_BATCH as i64], |r| {
                        let message = match r.get::<_, Option<String>>(3)? {
                            Some(id) => Some(QueuedMessage {
                                id,
                                conversation_id: r.get(4)?,
                                user_id: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                                seq: r.get(6)?,
                                role: r.get(7)?,
                                content: r.get(8)?,
                                created_at: r.get(9)?,
                            }),
                            None => None,
                        };
                        Ok(Queued {
                            id: r.get(0)?,
                            bot: r.get(1)?,
                            attempts: r.get(2)?,
                            message,
                        })
                    })
                    .map_err(map_sqlite_error)?;
                rows.collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(map_sqlite_error)
            })
            .await
    }

    async fn finish(&self, ids: Vec<i64>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.db
            .write(move |c| {
                let mut stmt = c
                    .prepare_cached("DELETE FROM memory_queue WHERE id = ?1")
                    .map_err(map_sqlite_error)?;
                for id in ids {
                    stmt.execute(params![id]).map_err(map_sqlite_error)?;
                }
                Ok(())
            })
            .await
    }

    /// Puts rows back with backoff, or drops those out of attempts. With
    /// `outage_wait_ms`, the embedder did not answer: the rows wait that
    /// long and keep their attempts (a message is never dropped because
    /// the embedder was down).
    async fn retry_later(&self, rows: Vec<(i64, i64)>, outage_wait_ms: Option<i64>) -> Result<()> {
        let now = now_ms();
        self.db
            .write(move |c| {
                for (id, attempts) in rows {
                    if let Some(wait) = outage_wait_ms {
                        c.execute(
                            "UPDATE memory_queue SET next_run_at = ?2 WHERE id = ?1",
                            params![id, now + wait],
                        )
                        .map_err(map_sqlite_error)?;
                    } else if attempts + 1 >= MAX_ATTEMPTS {
                        c.execute("DELETE FROM memory_queue WHERE id = ?1", params![id])
                            .map_err(map_sqlite_error)?;
                    } else {
                        let wait = 1000i64 * 4i64.pow((attempts.clamp(0, 6)) as u32);
                        c.execute(
                            "UPDATE memory_queue SET attempts = attempts + 1, next_run_at = ?2
                             WHERE id = ?1",
                            params![id, now + wait],
                        )
                        .map_err(map_sqlite_error)?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// One batch of the queue; returns how many rows it handled.
    async fn run_batch(&self) -> Result<usize> {
        let batch = self.next_batch().await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let handled = batch.len();
        let mut done = Vec::new();
        let mut by_bot: BTreeMap<String, Vec<Queued>> = BTreeMap::new();
        for q in batch {
            if q.message.is_none() {
                done.push(q.id);
            } else {
                by_bot.entry(q.bot.clone()).or_default().push(q);
            }
        }
        for (bot, rows) in by_bot {
            let ids: Vec<i64> = rows.iter().map(|q| q.id).collect();
            let Ok(bot_id) = BotId::parse(&bot) else {
                done.extend(ids);
                continue;
            };
            // Switched off since it was queued, or no embedder to use.
            if !self.enabled(&bot_id).await? {
                done.extend(ids);
                continue;
            }
            if !self.embedder.enabled() {
                tracing::warn!(bot = %bot, messages = ids.len(), "conversation memory is enabled but STRATA_EMBEDDER is none: messages are not remembered");
                done.extend(ids);
                continue;
            }
            // An endpoint whose dimension is not known yet is asked; while
            // it does not answer the messages wait (they are never dropped
            // for that).
            let indexed = match self.embedder.probe_dimension().await {
                Ok(dim) => self.index(&bot_id, dim, &rows).await,
                Err(e) => Err(e),
            };
            match indexed {
                Ok(()) => {
                    self.embedder_outage
                        .store(0, std::sync::atomic::Ordering::Relaxed);
                    self.state.progress();
                    done.extend(ids)
                }
                Err(e) => {
                    tracing::warn!(bot = %bot, error = %e, "conversation memory: embedding messages failed");
                    self.state.failed(format!("bot {bot}: {e}"));
                    let outage_wait = is_embedder_outage(&e).then(|| {
                        let n = self
                            .embedder_outage
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Duration::from_secs(1)
                            .saturating_mul(1u32 << n.min(16))
                            .min(self.opts.max_embedder_backoff)
                            .as_millis() as i64
                    });
                    self.retry_later(
                        rows.iter().map(|q| (q.id, q.attempts)).collect(),
                        outage_wait,
                    )
                    .await?;
                }
            }
        }
        self.finish(done).await?;
        Ok(handled)
    }

    async fn ensure_collection(&self, bot: &BotId, dim: usize, quota: VectorQuota) -> Result<()> {
        match self.vectors.get_collection(bot, MEMORY_COLLECTION).await {
            Ok(info) if info.dimension == dim => return Ok(()),
            // A different embedder: the old vectors cannot be compared with
            // new queries; start over (POST …/memory/reindex re-embeds).
            Ok(_) => self.vectors.drop_collection(bot, MEMORY_COLLECTION).await?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let spec = CollectionSpec {
            name: MEMORY_COLLECTION.to_owned(),
            dimension: dim,
            metric: Metric::Cosine,
            hnsw: Default::default(),
            quantization: Default::default(),
        };
        match self.vectors.create_collection(bot, spec, quota).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for field in ["user_id", "conversation_id", "role"] {
            self.vectors
                .create_index(bot, MEMORY_COLLECTION, field, FieldType::Keyword)
                .await?;
        }
        Ok(())
    }

    async fn index(&self, bot: &BotId, dim: usize, rows: &[Queued]) -> Result<()> {
        let settings = self.records.get_config(bot).await?;
        let quota = VectorQuota::from_settings(self.opts.default_quota, &settings);
        self.ensure_collection(bot, dim, quota).await?;
        // Messages never change: one already remembered (a repeated batch,
        // memory switched off and on) is not embedded again.
        let mut todo: Vec<&QueuedMessage> = Vec::new();
        for m in rows.iter().filter_map(|q| q.message.as_ref()) {
            let id = PointId::Str(m.id.clone());
            match self
                .vectors
                .get_point(bot, MEMORY_COLLECTION, &id, false)
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => todo.push(m),
                Err(e) => return Err(e),
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = todo.iter().map(|m| m.content.clone()).collect();
        let vectors = self.embedder.embed(&texts).await?;
        if vectors.len() != todo.len() {
            return Err(Error::internal(format!(
                "the embedder returned {} vectors for {} messages",
                vectors.len(),
                todo.len()
            )));
        }
        let points = todo
            .iter()
            .zip(vectors)
            .filter(|(_, v)| v.iter().any(|x| *x != 0.0))
            .map(|(m, vector)| PointInput {
                id: PointId::Str(m.id.clone()),
                vector,
                payload: Some(json!({
                    "conversation_id": m.conversation_id,
                    "user_id": m.user_id,
                    "role": m.role,
                    "seq": m.seq,
                    "created_at": m.created_at,
                })),
                ttl_seconds: None,
            })
            .collect::<Vec<_>>();
        if points.is_empty() {
            return Ok(());
        }
        self.vectors
            .upsert(bot, MEMORY_COLLECTION, points, quota)
            .await?;
        Ok(())
    }

    /// Searches the bot's remembered messages by meaning.
    pub async fn search(&self, bot: &BotId, q: &MemoryQuery) -> Result<Vec<MemoryHit>> {
        if q.k == 0 || q.k > MAX_MEMORY_K {
            return Err(
                Error::invalid(format!("k must be 1..={MAX_MEMORY_K}, got {}", q.k))
                    .with_code("invalid_k"),
            );
        }
        if q.query.trim().is_empty() {
            return Err(Error::invalid("the query is empty").with_code("invalid_query"));
        }
        if q.query.len() > MAX_MEMORY_QUERY_BYTES {
            return Err(Error::invalid(format!(
                "the query is longer than {MAX_MEMORY_QUERY_BYTES} bytes"
            ))
            .with_code("invalid_query"));
        }
        if let Some(r) = &q.role {
            if r != "user" && r != "assistant" {
                return Err(Error::invalid(format!(
                    "role {r:?} is not remembered: expected user or assistant"
                ))
                .with_code("invalid_role"));
            }
        }
        if !self.embedder.enabled() {
            return Err(Error::invalid(
                "conversation memory needs an embedder: start the server with STRATA_EMBEDDER=local:<model folder> or openai:<url>",
            )
            .with_code("no_embedder"));
        }
        let mut vectors = self.embedder.embed(std::slice::from_ref(&q.query)).await?;
        let Some(vector) = vectors.pop() else {
            return Err(Error::internal("the embedder returned no vector"));
        };
        let mut must = Vec::new();
        for (key, value) in [
            ("user_id", &q.user_id),
            ("conversation_id", &q.conversation_id),
            ("role", &q.role),
        ] {
            if let Some(v) = value {
                must.push(Condition::Match {
                    key: key.into(),
                    value: MatchValue::Str(v.clone()),
                });
            }
        }
        let filter = (!must.is_empty()).then(|| Filter {
            must,
            ..Default::default()
        });
        // A few more than k: points of deleted messages are dropped below.
        let fetch = (q.k + q.k / 2 + 4).min(MAX_MEMORY_K * 2);
        let found = match self
            .vectors
            .search(
                bot,
                MEMORY_COLLECTION,
                SearchRequest {
                    vector,
                    k: fetch,
                    filter,
                    ef: Some((fetch * 2).clamp(64, 1024)),
                    score_threshold: q.min_score,
                    with_payload: true,
                    with_vector: false,
                },
            )
            .await
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // (message id, conversation, seq, score), best first.
        let wanted: Vec<(String, String, i64, f32)> = found
            .into_iter()
            .filter_map(|p| {
                let PointId::Str(id) = p.id else { return None };
                let payload = p.payload?;
                let conv = payload.get("conversation_id")?.as_str()?.to_owned();
                let seq = payload.get("seq")?.as_i64()?;
                Some((id, conv, seq, p.score))
            })
            .collect();
        let b = bot.as_str().to_owned();
        let k = q.k;
        // The message itself, by primary key: a hit whose message is gone
        // (deleted conversation or user) is left out.
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT m.id, cv.user_id, m.role, m.content, m.created_at
                     FROM messages m JOIN conversations cv
                          ON cv.bot_id = m.bot_id AND cv.id = m.conversation_id
                     WHERE m.bot_id = ?1 AND m.conversation_id = ?2 AND m.seq = ?3",
                    )
                    .map_err(map_sqlite_error)?;
                let mut out = Vec::new();
                for (id, conv, seq, score) in wanted {
                    if out.len() == k {
                        break;
                    }
                    let row = stmt
                        .query_row(params![b, conv, seq], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, String>(3)?,
                                r.get::<_, i64>(4)?,
                            ))
                        })
                        .optional()
                        .map_err(map_sqlite_error)?;
                    if let Some((mid, user_id, role, content, created_at)) = row {
                        if mid == id {
                            out.push(MemoryHit {
                                message_id: mid,
                                conversation_id: conv,
                                user_id,
                                seq,
                                role,
                                content,
                                created_at: Timestamp::from_millis(created_at),
                                score,
                            });
                        }
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Queues every user and assistant message of the bot again (after a
    /// change of embedder, or to fill a memory switched on while the
    /// embedder was `none`); returns how many.
    pub async fn reindex(&self, bot: &BotId) -> Result<u64> {
        self.forget_all(bot).await?;
        let b = bot.as_str().to_owned();
        let n = self
            .db
            .write(move |c| {
                c.execute(
                    "INSERT INTO memory_queue (bot_id, conversation_id, seq)
                     SELECT bot_id, conversation_id, seq FROM messages
                     WHERE bot_id = ?1 AND role IN ('user', 'assistant')
                     ORDER BY conversation_id, seq",
                    params![b],
                )
                .map_err(map_sqlite_error)
            })
            .await?;
        self.notify();
        Ok(n as u64)
    }
}
