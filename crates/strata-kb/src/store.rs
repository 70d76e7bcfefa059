//! The knowledge base's rows in the records database: the job queue,
//! documents, chunks and their FTS5 index (migration `0004_kb.sql`).
//!
//! Every state change of a job and the document it concerns happens in one
//! transaction on the database's writer thread, so a crash leaves either the
//! old or the new state — never a document whose chunks are half replaced.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use strata_core::filter::Filter;
use strata_core::types::BotId;
use strata_core::{Error, Result, Timestamp};
use strata_records::sqlite::map_sqlite_error;
use strata_records::SqliteDatabase;

use crate::chunk::{Chunk, CHUNKER_VERSION};
use strata_core::worker::QueueStats;

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub bot: BotId,
    pub key: String,
    /// The version the upload created (informational: a job always indexes
    /// the drive's current version).
    pub version: Option<i64>,
    /// Re-index even when the content and embedder are unchanged.
    pub force: bool,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// Status of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    pub key: String,
    pub version: Option<i64>,
    pub status: String,
    pub chunks: i64,
    /// Chunks the chunker found (see [`crate::KnowledgeBase::documents`]).
    pub chunks_found: Option<i64>,
    /// Chunks done of those found.
    pub chunks_done: Option<i64>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub content_type: Option<String>,
    pub embedder: Option<String>,
    pub fingerprint: Option<String>,
    pub updated_at: Timestamp,
}

/// How far the indexing of one document got: chunks found by the chunker
/// and chunks done (embedded and written; without an embedder, written to
/// the full-text index).
#[derive(Debug)]
pub struct IndexProgress {
    /// Chunks found; -1 until the document is chunked.
    found: AtomicI64,
    done: Arc<AtomicU64>,
}

impl Default for IndexProgress {
    fn default() -> Self {
        IndexProgress {
            found: AtomicI64::new(-1),
            done: Arc::default(),
        }
    }
}

impl IndexProgress {
    /// Chunks found, once the document is chunked.
    pub fn chunks_found(&self) -> Option<u64> {
        u64::try_from(self.found.load(Ordering::Relaxed)).ok()
    }

    /// Chunks done so far.
    pub fn chunks_done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Sets the chunks found.
    pub fn set_found(&self, n: u64) {
        self.found
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Counts `n` more chunks done.
    pub fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a successful index writes.
#[derive(Debug, Clone)]
pub struct IndexedDocument {
    pub version: i64,
    pub content_sha256: String,
    pub content_type: String,
    pub fingerprint: String,
    pub embedder: String,
    pub meta: Value,
}

/// A chunk found by a search, with its document's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHit {
    pub key: String,
    pub version: i64,
    pub chunk: i64,
    pub text: String,
    pub score: f32,
}

/// Filters of a search (all optional, all must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KbFilter {
    /// Document keys starting with this (relative to the bot's `.gbkb/`
    /// folder or absolute within the drive: both are accepted).
    pub key_prefix: Option<String>,
    /// The detected content type (`text/markdown`, `application/pdf`, …).
    pub content_type: Option<String>,
    /// A filter (the vectors layer's language) over the document metadata:
    /// `key`, `name`, `ext`, `dirs`, `content_type`, `size`, `title`.
    pub metadata: Option<Filter>,
}

/// The knowledge base's tables.
#[derive(Debug, Clone)]
pub struct KbStore {
    db: SqliteDatabase,
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn bot_of(s: String) -> Result<BotId> {
    BotId::parse(&s)
}

impl KbStore {
    pub fn new(db: SqliteDatabase) -> Self {
        KbStore { db }
    }

    /// Brings the knowledge base up to date at start: a bot with chunks but
    /// no FTS table of its own (a database from before keyword search was
    /// scoped per bot), or one without the `head` column (from before
    /// contextual chunk headers), gets one, filled from its chunks in one
    /// transaction; then every document indexed with an older
    /// [`CHUNKER_VERSION`] is queued again ([`KbStore::requeue_outdated`]).
    /// Returns how many bots' FTS tables were built.
    pub async fn prepare(&self) -> Result<usize> {
        let bots: Vec<String> = self
            .db
            .read(|c| {
                let mut st = c
                    .prepare("SELECT DISTINCT bot_id FROM kb_chunks")
                    .map_err(map_sqlite_error)?;
                let mut missing = Vec::new();
                for bot in st
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(map_sqlite_error)?
                {
                    let bot = bot.map_err(map_sqlite_error)?;
                    if !fts_is_current(c, &fts_table(&bot))? {
                        missing.push(bot);
                    }
                }
                Ok(missing)
            })
            .await?;
        for bot in &bots {
            let bot = bot.clone();
            self.db
                .write(move |c| {
                    c.execute_batch(&format!("DROP TABLE IF EXISTS \"{}\"", fts_table(&bot)))
                        .map_err(map_sqlite_error)?;
                    let fts = ensure_fts(c, &bot)?;
                    c.execute(
                        &format!(
                            "INSERT INTO \"{fts}\" (rowid, text, head) SELECT id, text, head FROM kb_chunks WHERE bot_id = ?1"
                        ),
                        params![bot],
                    )
                    .map_err(map_sqlite_error)?;
                    Ok(())
                })
                .await?;
        }
        if !bots.is_empty() {
            tracing::info!(bots = bots.len(), "built per-bot keyword indexes");
        }
        let requeued = self.requeue_outdated().await?;
        if requeued > 0 {
            tracing::info!(
                documents = requeued,
                chunker = CHUNKER_VERSION,
                "re-indexing documents indexed by an older chunker"
            );
        }
        Ok(bots.len())
    }

    /// Queues every indexed document of a live bot whose chunks were made by
    /// an older [`CHUNKER_VERSION`] (its old chunks keep serving searches
    /// until the new ones replace them), in one transaction. Returns how
    /// many were queued.
    pub async fn requeue_outdated(&self) -> Result<u64> {
        self.db
            .write(|c| {
                let now = now_ms();
                c.execute(
                    "INSERT INTO kb_jobs (bot_id, key, version, force, state, attempts, next_run_at, updated_at, enqueued_at)
                     SELECT d.bot_id, d.key, d.version, 0, 'queued', 0, ?2, ?2, ?2
                       FROM kb_documents d JOIN bots b ON b.id = d.bot_id
                      WHERE d.chunker < ?1 AND d.status = 'indexed' AND b.deleted_at IS NULL
                        AND NOT EXISTS (SELECT 1 FROM kb_jobs j WHERE j.bot_id = d.bot_id
                                        AND j.key = d.key AND j.state = 'queued')",
                    params![CHUNKER_VERSION, now],
                )
                .map_err(map_sqlite_error)?;
                let n = c
                    .execute(
                        "UPDATE kb_documents SET status = 'pending', updated_at = ?2
                          WHERE chunker < ?1 AND status = 'indexed'
                            AND EXISTS (SELECT 1 FROM kb_jobs j WHERE j.bot_id = kb_documents.bot_id
                                        AND j.key = kb_documents.key AND j.state = 'queued')",
                        params![CHUNKER_VERSION, now],
                    )
                    .map_err(map_sqlite_error)?;
                Ok(n as u64)
            })
            .await
    }

    /// Removes everything the knowledge base holds for a bot (its purge):
    /// jobs, documents, chunks and its FTS table, in bounded batches.
    /// Running it again is harmless.
    pub async fn drop_bot(&self, bot: &BotId) -> Result<()> {
        let b = bot.as_str().to_owned();
        loop {
            let b2 = b.clone();
            let n = self
                .db
                .write(move |c| {
                    c.execute(
                        "DELETE FROM kb_chunks WHERE id IN (SELECT id FROM kb_chunks WHERE bot_id = ?1 LIMIT 5000)",
                        params![b2],
                    )
                    .map_err(map_sqlite_error)
                })
                .await?;
            if n == 0 {
                break;
            }
        }
        self.db
            .write(move |c| {
                c.execute_batch(&format!("DROP TABLE IF EXISTS \"{}\"", fts_table(&b)))
                    .map_err(map_sqlite_error)?;
                c.execute("DELETE FROM kb_jobs WHERE bot_id = ?1", params![b])
                    .map_err(map_sqlite_error)?;
                c.execute("DELETE FROM kb_documents WHERE bot_id = ?1", params![b])
                    .map_err(map_sqlite_error)?;
                Ok(())
            })
            .await
    }

    /// Queues (or refreshes the queued) job for `key` and marks the
    /// document `pending`.
    pub async fn enqueue(
        &self,
        bot: &BotId,
        key: &str,
        version: Option<i64>,
        force: bool,
    ) -> Result<()> {
        let bot = bot.as_str().to_owned();
        let key = key.to_owned();
        self.db
            .write(move |c| {
                let now = now_ms();
                c.execute(
                    "DELETE FROM kb_jobs WHERE bot_id = ?1 AND key = ?2 AND state IN ('done', 'failed')",
                    params![bot, key],
                )
                .map_err(map_sqlite_error)?;
                c.execute(
                    "INSERT INTO kb_jobs (bot_id, key, version, force, state, attempts, next_run_at, updated_at, enqueued_at)
                     VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?5, ?5)
                     ON CONFLICT (bot_id, key) WHERE state = 'queued' DO UPDATE SET
                        version = excluded.version,
                        force = max(force, excluded.force),
                        attempts = 0,
                        error = NULL,
                        next_run_at = excluded.next_run_at,
                        updated_at = excluded.updated_at",
                    params![bot, key, version, force as i64, now],
                )
                .map_err(map_sqlite_error)?;
                c.execute(
                    "INSERT INTO kb_documents (bot_id, key, version, status, updated_at)
                     VALUES (?1, ?2, ?3, 'pending', ?4)
                     ON CONFLICT (bot_id, key) DO UPDATE SET
                        version = coalesce(excluded.version, version),
                        status = 'pending',
                        updated_at = excluded.updated_at",
                    params![bot, key, version, now],
                )
                .map_err(map_sqlite_error)?;
                Ok(())
            })
            .await
    }

    /// Puts jobs left `running` by a process that stopped back in the queue
    /// (call at start, while no worker runs: one process owns the data
    /// folder). Jobs that already used `max_attempts` claims fail.
    pub async fn recover(&self, max_attempts: i64) -> Result<u64> {
        self.db
            .write(move |c| {
                let now = now_ms();
                let failed = c
                    .execute(
                        "UPDATE kb_documents SET status = 'failed', chunks = 0, fingerprint = NULL,
                            error_code = 'indexing_interrupted',
                            error = 'indexing stopped (the process ended) on every attempt',
                            updated_at = ?2
                         WHERE (bot_id, key) IN (SELECT bot_id, key FROM kb_jobs
                                                 WHERE state = 'running' AND attempts >= ?1)",
                        params![max_attempts, now],
                    )
                    .map_err(map_sqlite_error)?;
                if failed > 0 {
                    let docs: Vec<(String, String)> = c
                        .prepare(
                            "SELECT bot_id, key FROM kb_jobs WHERE state = 'running' AND attempts >= ?1",
                        )
                        .and_then(|mut st| {
                            st.query_map(params![max_attempts], |r| Ok((r.get(0)?, r.get(1)?)))?
                                .collect::<rusqlite::Result<Vec<_>>>()
                        })
                        .map_err(map_sqlite_error)?;
                    for (bot, key) in docs {
                        delete_doc_chunks(c, &bot, &key)?;
                    }
                }
                c.execute(
                    "UPDATE kb_jobs SET state = 'failed', error = 'indexing stopped (the process ended) on every attempt',
                        updated_at = ?2 WHERE state = 'running' AND attempts >= ?1",
                    params![max_attempts, now],
                )
                .map_err(map_sqlite_error)?;
                // A running job whose key already has a queued one is superseded.
                c.execute(
                    "DELETE FROM kb_jobs WHERE state = 'running' AND EXISTS (
                        SELECT 1 FROM kb_jobs q WHERE q.state = 'queued'
                          AND q.bot_id = kb_jobs.bot_id AND q.key = kb_jobs.key)",
                    [],
                )
                .map_err(map_sqlite_error)?;
                let n = c
                    .execute(
                        "UPDATE kb_jobs SET state = 'queued', lease_until = NULL, next_run_at = ?1, updated_at = ?1
                         WHERE state = 'running'",
                        params![now],
                    )
                    .map_err(map_sqlite_error)?;
                Ok(n as u64)
            })
            .await
    }

    /// Claims the next runnable job: a queued one whose time has come, or a
    /// running one whose lease expired. Marks its document `indexing`.
    pub async fn claim(&self, lease_ms: i64) -> Result<Option<Job>> {
        self.db
            .write(move |c| {
                let now = now_ms();
                let row = c
                    .query_row(
                        "SELECT id, bot_id, key, version, force, attempts FROM kb_jobs
                         WHERE (state = 'queued' AND next_run_at <= ?1)
                            OR (state = 'running' AND lease_until < ?1)
                         ORDER BY next_run_at, id LIMIT 1",
                        params![now],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, Option<i64>>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, i64>(5)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(map_sqlite_error)?;
                let Some((id, bot, key, version, force, attempts)) = row else {
                    return Ok(None);
                };
                c.execute(
                    "UPDATE kb_jobs SET state = 'running', attempts = attempts + 1,
                        lease_until = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, now + lease_ms, now],
                )
                .map_err(map_sqlite_error)?;
                c.execute(
                    "UPDATE kb_documents SET status = 'indexing', updated_at = ?3
                     WHERE bot_id = ?1 AND key = ?2",
                    params![bot, key, now],
                )
                .map_err(map_sqlite_error)?;
                Ok(Some(Job {
                    id,
                    bot: bot_of(bot)?,
                    key,
                    version,
                    force: force != 0,
                    attempts: attempts + 1,
                }))
            })
            .await
    }

    /// Puts a claimed job back in the queue without using up an attempt
    /// (the worker was stopped while running it). A job that already ended
    /// is left alone.
    pub async fn release(&self, job: &Job) -> Result<()> {
        let job = job.clone();
        self.db
            .write(move |c| {
                if !job_exists(c, job.id)? {
                    return Ok(());
                }
                let now = now_ms();
                if queued_exists(c, &job)? {
                    delete_job(c, job.id)?;
                } else {
                    c.execute(
                        "UPDATE kb_jobs SET state = 'queued', attempts = max(attempts - 1, 0),
                            lease_until = NULL, next_run_at = ?2, updated_at = ?2
                         WHERE id = ?1 AND state = 'running'",
                        params![job.id, now],
                    )
                    .map_err(map_sqlite_error)?;
                }
                c.execute(
                    "UPDATE kb_documents SET status = 'pending', updated_at = ?3
                     WHERE bot_id = ?1 AND key = ?2 AND status = 'indexing'",
                    params![job.bot.as_str(), job.key, now],
                )
                .map_err(map_sqlite_error)?;
                Ok(())
            })
            .await
    }

    /// Queues a job again after `retry_in_ms` without using up an attempt:
    /// something it depends on (the embedder) did not answer. The document
    /// stays `pending`, its error says why it waits.
    pub async fn retry_without_attempt(
        &self,
        job: &Job,
        error: &Error,
        retry_in_ms: i64,
    ) -> Result<()> {
        let job = job.clone();
        let message = error.message().to_owned();
        let code = error.code().to_owned();
        self.db
            .write(move |c| {
                if !job_exists(c, job.id)? {
                    return Ok(());
                }
                if queued_exists(c, &job)? {
                    delete_job(c, job.id)?;
                    return Ok(());
                }
                let now = now_ms();
                c.execute(
                    "UPDATE kb_jobs SET state = 'queued', attempts = max(attempts - 1, 0), error = ?2,
                        lease_until = NULL, next_run_at = ?3, updated_at = ?4 WHERE id = ?1",
                    params![job.id, message, now + retry_in_ms, now],
                )
                .map_err(map_sqlite_error)?;
                c.execute(
                    "UPDATE kb_documents SET status = 'pending', error = ?3, error_code = ?4,
                        updated_at = ?5 WHERE bot_id = ?1 AND key = ?2",
                    params![
                        job.bot.as_str(),
                        job.key,
                        format!("waiting for the embedder: {message}"),
                        code,
                        now
                    ],
                )
                .map_err(map_sqlite_error)?;
                Ok(())
            })
            .await
    }

    /// Jobs not finished (queued or running) and the age of the oldest.
    pub async fn queue_stats(&self) -> Result<QueueStats> {
        let (depth, oldest): (i64, Option<i64>) = self
            .db
            .read(|c| {
                c.query_row(
                    "SELECT count(*), min(coalesce(enqueued_at, updated_at)) FROM kb_jobs
                     WHERE state IN ('queued', 'running')",
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

    /// The last successful fingerprint of a document.
    pub async fn fingerprint(&self, bot: &BotId, key: &str) -> Result<Option<String>> {
        let (b, k) = (bot.as_str().to_owned(), key.to_owned());
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT fingerprint FROM kb_documents WHERE bot_id = ?1 AND key = ?2",
                    params![b, k],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()
                .map(Option::flatten)
                .map_err(map_sqlite_error)
            })
            .await
    }

    /// Replaces the document's chunks (and their FTS rows) and marks it
    /// indexed, and ends the job — one transaction. Returns `false` when the
    /// job no longer exists (its bot was deleted): nothing is written.
    /// `progress`, when given, counts the chunks written as they are.
    pub async fn complete_index(
        &self,
        job: &Job,
        doc: IndexedDocument,
        chunks: Vec<Chunk>,
        progress: Option<&IndexProgress>,
    ) -> Result<bool> {
        let heads = vec![String::new(); chunks.len()];
        self.complete_index_with_heads(job, doc, chunks, heads, progress)
            .await
    }

    /// [`KbStore::complete_index`] with each chunk's context head (see
    /// [`crate::chunk::chunk_heads`]; `heads[i]` belongs to `chunks[i]`),
    /// recording the current [`CHUNKER_VERSION`].
    pub async fn complete_index_with_heads(
        &self,
        job: &Job,
        doc: IndexedDocument,
        chunks: Vec<Chunk>,
        heads: Vec<String>,
        progress: Option<&IndexProgress>,
    ) -> Result<bool> {
        if heads.len() != chunks.len() {
            return Err(Error::internal(format!(
                "{} heads for {} chunks",
                heads.len(),
                chunks.len()
            )));
        }
        let job = job.clone();
        let progress = progress.map(|p| Arc::clone(&p.done));
        self.db
            .write(move |c| {
                if !job_exists(c, job.id)? {
                    return Ok(false);
                }
                let now = now_ms();
                let bot = job.bot.as_str();
                let status = status_after(c, &job)?;
                delete_doc_chunks(c, bot, &job.key)?;
                c.execute(
                    "INSERT INTO kb_documents (bot_id, key, version, content_sha256, content_type, fingerprint,
                        status, chunks, error, error_code, embedder, meta, updated_at, chunker)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, ?9, ?10, ?11, ?12)
                     ON CONFLICT (bot_id, key) DO UPDATE SET
                        version = excluded.version, content_sha256 = excluded.content_sha256,
                        content_type = excluded.content_type, fingerprint = excluded.fingerprint,
                        status = excluded.status, chunks = excluded.chunks, error = NULL,
                        error_code = NULL, embedder = excluded.embedder, meta = excluded.meta,
                        updated_at = excluded.updated_at, chunker = excluded.chunker",
                    params![
                        bot,
                        job.key,
                        doc.version,
                        doc.content_sha256,
                        doc.content_type,
                        doc.fingerprint,
                        status,
                        chunks.len() as i64,
                        doc.embedder,
                        doc.meta.to_string(),
                        now,
                        CHUNKER_VERSION
                    ],
                )
                .map_err(map_sqlite_error)?;
                {
                    let fts = ensure_fts(c, bot)?;
                    let mut ins = c
                        .prepare_cached(
                            "INSERT INTO kb_chunks (bot_id, key, version, chunk, start, text, head)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )
                        .map_err(map_sqlite_error)?;
                    let mut ins_fts = c
                        .prepare_cached(&format!(
                            "INSERT INTO \"{fts}\" (rowid, text, head) VALUES (?1, ?2, ?3)"
                        ))
                        .map_err(map_sqlite_error)?;
                    for (ch, head) in chunks.iter().zip(&heads) {
                        ins.execute(params![
                            bot,
                            job.key,
                            doc.version,
                            ch.index as i64,
                            ch.start as i64,
                            ch.text,
                            head
                        ])
                        .map_err(map_sqlite_error)?;
                        ins_fts
                            .execute(params![c.last_insert_rowid(), ch.text, head])
                            .map_err(map_sqlite_error)?;
                        if let Some(p) = &progress {
                            p.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                delete_job(c, job.id)?;
                Ok(true)
            })
            .await
    }

    /// The content is what is already indexed: only the version moves.
    pub async fn complete_unchanged(&self, job: &Job, version: i64) -> Result<bool> {
        let job = job.clone();
        self.db
            .write(move |c| {
                if !job_exists(c, job.id)? {
                    return Ok(false);
                }
                let status = status_after(c, &job)?;
                let bot = job.bot.as_str();
                c.execute(
                    "UPDATE kb_chunks SET version = ?3 WHERE bot_id = ?1 AND key = ?2",
                    params![bot, job.key, version],
                )
                .map_err(map_sqlite_error)?;
                c.execute(
                    "UPDATE kb_documents SET version = ?3, status = ?4, error = NULL, error_code = NULL,
                        updated_at = ?5 WHERE bot_id = ?1 AND key = ?2",
                    params![bot, job.key, version, status, now_ms()],
                )
                .map_err(map_sqlite_error)?;
                delete_job(c, job.id)?;
                Ok(true)
            })
            .await
    }

    /// The file is gone from the drive: its chunks and document row go.
    pub async fn complete_removed(&self, job: &Job) -> Result<bool> {
        let job = job.clone();
        self.db
            .write(move |c| {
                if !job_exists(c, job.id)? {
                    return Ok(false);
                }
                let bot = job.bot.as_str();
                delete_doc_chunks(c, bot, &job.key)?;
                if queued_exists(c, &job)? {
                    // Uploaded again meanwhile: the queued job indexes it.
                    c.execute(
                        "UPDATE kb_documents SET status = 'pending', chunks = 0, fingerprint = NULL,
                            updated_at = ?3 WHERE bot_id = ?1 AND key = ?2",
                        params![bot, job.key, now_ms()],
                    )
                    .map_err(map_sqlite_error)?;
                } else {
                    c.execute(
                        "DELETE FROM kb_documents WHERE bot_id = ?1 AND key = ?2",
                        params![bot, job.key],
                    )
                    .map_err(map_sqlite_error)?;
                }
                delete_job(c, job.id)?;
                Ok(true)
            })
            .await
    }

    /// Records a failed attempt. A permanent failure, or the last allowed
    /// attempt, marks the document `failed` (its chunks go: the index never
    /// serves a version the drive replaced); otherwise the job is queued
    /// again after `retry_in_ms`.
    pub async fn fail(
        &self,
        job: &Job,
        error: &Error,
        permanent: bool,
        max_attempts: i64,
        retry_in_ms: i64,
        version: Option<i64>,
    ) -> Result<()> {
        let job = job.clone();
        let message = error.message().to_owned();
        let code = error.code().to_owned();
        self.db
            .write(move |c| {
                if !job_exists(c, job.id)? {
                    return Ok(());
                }
                let now = now_ms();
                let bot = job.bot.as_str();
                let superseded = queued_exists(c, &job)?;
                if superseded {
                    delete_job(c, job.id)?;
                    return Ok(());
                }
                if permanent || job.attempts >= max_attempts {
                    c.execute(
                        "UPDATE kb_jobs SET state = 'failed', error = ?2, lease_until = NULL,
                            updated_at = ?3 WHERE id = ?1",
                        params![job.id, message, now],
                    )
                    .map_err(map_sqlite_error)?;
                    delete_doc_chunks(c, bot, &job.key)?;
                    c.execute(
                        "UPDATE kb_documents SET status = 'failed', chunks = 0, fingerprint = NULL,
                            error = ?3, error_code = ?4, version = coalesce(?5, version), updated_at = ?6
                         WHERE bot_id = ?1 AND key = ?2",
                        params![bot, job.key, message, code, version, now],
                    )
                    .map_err(map_sqlite_error)?;
                } else {
                    c.execute(
                        "UPDATE kb_jobs SET state = 'queued', error = ?2, lease_until = NULL,
                            next_run_at = ?3, updated_at = ?4 WHERE id = ?1",
                        params![job.id, message, now + retry_in_ms, now],
                    )
                    .map_err(map_sqlite_error)?;
                    c.execute(
                        "UPDATE kb_documents SET status = 'pending', error = ?3, error_code = ?4,
                            updated_at = ?5 WHERE bot_id = ?1 AND key = ?2",
                        params![bot, job.key, format!("retrying: {message}"), code, now],
                    )
                    .map_err(map_sqlite_error)?;
                }
                Ok(())
            })
            .await
    }

    /// Documents of a bot in key order, after `after`, at most `limit`.
    pub async fn documents(
        &self,
        bot: &BotId,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentRow>> {
        let (bot, prefix, after) = (
            bot.as_str().to_owned(),
            prefix.to_owned(),
            after.unwrap_or("").to_owned(),
        );
        self.db
            .read(move |c| {
                let mut st = c
                .prepare_cached(
                    "SELECT key, version, status, chunks, error, error_code, content_type, embedder,
                            fingerprint, updated_at
                     FROM kb_documents WHERE bot_id = ?1 AND key > ?2 AND substr(key, 1, ?3) = ?4
                     ORDER BY key LIMIT ?5",
                )
                .map_err(map_sqlite_error)?;
                let rows = st
                    .query_map(
                        params![
                            bot,
                            after,
                            prefix.chars().count() as i64,
                            prefix,
                            limit as i64
                        ],
                        |r| {
                            let status: String = r.get(2)?;
                            let chunks: i64 = r.get(3)?;
                            // An indexed document is done; the worker knows
                            // how far an `indexing` one got.
                            let known = (status == "indexed").then_some(chunks);
                            Ok(DocumentRow {
                                key: r.get(0)?,
                                version: r.get(1)?,
                                status,
                                chunks,
                                chunks_found: known,
                                chunks_done: known,
                                error: r.get(4)?,
                                error_code: r.get(5)?,
                                content_type: r.get(6)?,
                                embedder: r.get(7)?,
                                fingerprint: r.get(8)?,
                                updated_at: ts(r.get(9)?),
                            })
                        },
                    )
                    .map_err(map_sqlite_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_sqlite_error)
            })
            .await
    }

    /// Every document key of a bot.
    pub async fn document_keys(&self, bot: &BotId) -> Result<Vec<String>> {
        let bot = bot.as_str().to_owned();
        self.db
            .read(move |c| {
                let mut st = c
                    .prepare_cached("SELECT key FROM kb_documents WHERE bot_id = ?1 ORDER BY key")
                    .map_err(map_sqlite_error)?;
                let rows = st
                    .query_map(params![bot], |r| r.get::<_, String>(0))
                    .map_err(map_sqlite_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_sqlite_error)
            })
            .await
    }

    /// Jobs not finished yet (queued or running), for tests and status.
    pub async fn open_jobs(&self) -> Result<i64> {
        self.db
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM kb_jobs WHERE state IN ('queued', 'running')",
                    [],
                    |r| r.get(0),
                )
                .map_err(map_sqlite_error)
            })
            .await
    }

    /// BM25 keyword search over the bot's chunks (best first; the score is
    /// the negated bm25, so higher is better). The query is turned into
    /// quoted terms joined by OR, so quotes and FTS operators typed by a
    /// user are plain words.
    pub async fn keyword_search(
        &self,
        bot: &BotId,
        query: &str,
        k: usize,
        filter: &KbFilter,
    ) -> Result<Vec<ChunkHit>> {
        self.keyword_search_with(bot, query, k, filter, KeywordParams::default())
            .await
    }

    /// [`KbStore::keyword_search`] with explicit [`KeywordParams`] (the
    /// retrieval evaluation compares them).
    pub async fn keyword_search_with(
        &self,
        bot: &BotId,
        query: &str,
        k: usize,
        filter: &KbFilter,
        params: KeywordParams,
    ) -> Result<Vec<ChunkHit>> {
        let Some(fts_query) = fts_query_with(query, params.drop_stopwords) else {
            return Ok(Vec::new());
        };
        let prefix = filter.key_prefix.clone().unwrap_or_default();
        // Metadata filters are checked per hit: fetch more than k.
        let fetch = if filter.metadata.is_some() {
            (k * 10).max(100)
        } else {
            k
        };
        let (bot, filter) = (bot.as_str().to_owned(), filter.clone());
        let params = params.clamped();
        self.db
            .read(move |c| {
                // The bot's own index: only its chunks are ranked, and the BM25
                // statistics are its own.
                let fts = fts_table(&bot);
                if !table_exists(c, &fts)? {
                    return Ok(Vec::new());
                }
                let mut st = c
                    .prepare_cached(&format!(
                    "SELECT ch.key, ch.version, ch.chunk, ch.text, -bm25(\"{fts}\", 1.0, ?7) AS score, d.meta
                     FROM \"{fts}\"
                     JOIN kb_chunks ch ON ch.id = \"{fts}\".rowid
                     JOIN kb_documents d ON d.bot_id = ch.bot_id AND d.key = ch.key
                     WHERE \"{fts}\" MATCH ?1 AND ch.bot_id = ?2
                       AND substr(ch.key, 1, ?3) = ?4
                       AND (?5 IS NULL OR d.content_type = ?5)
                     ORDER BY bm25(\"{fts}\", 1.0, ?7) LIMIT ?6"
                ))
                    .map_err(map_sqlite_error)?;
                let rows = st
                    .query_map(
                        params![
                            fts_query,
                            bot,
                            prefix.chars().count() as i64,
                            prefix,
                            filter.content_type,
                            fetch as i64,
                            params.head_weight
                        ],
                        |r| {
                            Ok((
                                ChunkHit {
                                    key: r.get(0)?,
                                    version: r.get(1)?,
                                    chunk: r.get(2)?,
                                    text: r.get(3)?,
                                    score: r.get::<_, f64>(4)? as f32,
                                },
                                r.get::<_, String>(5)?,
                            ))
                        },
                    )
                    .map_err(map_sqlite_error)?;
                let mut out = Vec::new();
                for row in rows {
                    let (hit, meta) = row.map_err(map_sqlite_error)?;
                    if let Some(f) = &filter.metadata {
                        let meta: Value = serde_json::from_str(&meta).unwrap_or(Value::Null);
                        if !f.matches(Some(&meta), 0) {
                            continue;
                        }
                    }
                    out.push(hit);
                    if out.len() == k {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    /// The current chunks named by (key, fingerprint, chunk), in the same
    /// order; `None` for one that is not current (a stale vector).
    pub async fn current_chunks(
        &self,
        bot: &BotId,
        wanted: Vec<(String, String, i64)>,
    ) -> Result<Vec<Option<ChunkHit>>> {
        let bot = bot.as_str().to_owned();
        self.db
            .read_snapshot(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT ch.version, ch.text FROM kb_chunks ch
                     JOIN kb_documents d ON d.bot_id = ch.bot_id AND d.key = ch.key
                     WHERE ch.bot_id = ?1 AND ch.key = ?2 AND ch.chunk = ?3 AND d.fingerprint = ?4",
                    )
                    .map_err(map_sqlite_error)?;
                wanted
                    .iter()
                    .map(|(key, fp, chunk)| {
                        st.query_row(params![bot, key, chunk, fp], |r| {
                            Ok(ChunkHit {
                                key: key.clone(),
                                version: r.get(0)?,
                                chunk: *chunk,
                                text: r.get(1)?,
                                score: 0.0,
                            })
                        })
                        .optional()
                        .map_err(map_sqlite_error)
                    })
                    .collect()
            })
            .await
    }

    /// Chunk rows of a document (tests and tools).
    pub async fn chunk_count(&self, bot: &BotId, key: &str) -> Result<(i64, i64)> {
        let (bot, key) = (bot.as_str().to_owned(), key.to_owned());
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT count(*), count(DISTINCT chunk) FROM kb_chunks WHERE bot_id = ?1 AND key = ?2",
                    params![bot, key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(map_sqlite_error)
            })
            .await
    }
}

/// The FTS5 table of a bot's chunks: `kb_fts_<hex of the bot id>` (bot ids
/// may hold `-`; hex makes any id a plain identifier).
pub fn fts_table(bot: &str) -> String {
    format!("kb_fts_{}", hex::encode(bot.as_bytes()))
}

fn table_exists(c: &Connection, name: &str) -> Result<bool> {
    c.prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")
        .and_then(|mut st| st.exists([name]))
        .map_err(map_sqlite_error)
}

/// Whether the bot's FTS5 table exists with today's columns (`text`,
/// `head`).
fn fts_is_current(c: &Connection, name: &str) -> Result<bool> {
    let sql: Option<String> = c
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_sqlite_error)?;
    Ok(sql.is_some_and(|s| {
        s.split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .any(|w| w == "head")
    }))
}

/// The bot's FTS5 table, created if missing: contentless (the text lives
/// once, in kb_chunks; rowid = kb_chunks.id), rows deletable, the same
/// tokenizer as before (Unicode words, diacritics folded); two columns, the
/// chunk's `text` and its context `head`, which BM25 weighs apart
/// ([`KeywordParams::head_weight`]).
fn ensure_fts(c: &Connection, bot: &str) -> Result<String> {
    let t = fts_table(bot);
    c.execute_batch(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS \"{t}\" USING fts5(
            text, head, content = '', contentless_delete = 1,
            tokenize = 'unicode61 remove_diacritics 2')"
    ))
    .map_err(map_sqlite_error)?;
    Ok(t)
}

/// Deletes a document's chunks and their rows in the bot's FTS table.
fn delete_doc_chunks(c: &Connection, bot: &str, key: &str) -> Result<()> {
    let fts = fts_table(bot);
    if table_exists(c, &fts)? {
        c.execute(
            &format!(
                "DELETE FROM \"{fts}\" WHERE rowid IN (SELECT id FROM kb_chunks WHERE bot_id = ?1 AND key = ?2)"
            ),
            params![bot, key],
        )
        .map_err(map_sqlite_error)?;
    }
    c.execute(
        "DELETE FROM kb_chunks WHERE bot_id = ?1 AND key = ?2",
        params![bot, key],
    )
    .map_err(map_sqlite_error)?;
    Ok(())
}

fn job_exists(c: &Connection, id: i64) -> Result<bool> {
    c.query_row("SELECT 1 FROM kb_jobs WHERE id = ?1", params![id], |_| {
        Ok(())
    })
    .optional()
    .map(|o| o.is_some())
    .map_err(map_sqlite_error)
}

fn queued_exists(c: &Connection, job: &Job) -> Result<bool> {
    c.query_row(
        "SELECT 1 FROM kb_jobs WHERE bot_id = ?1 AND key = ?2 AND state = 'queued' AND id != ?3",
        params![job.bot.as_str(), job.key, job.id],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(map_sqlite_error)
}

/// `indexed`, or `pending` when a newer upload is already queued.
fn status_after(c: &Connection, job: &Job) -> Result<&'static str> {
    Ok(if queued_exists(c, job)? {
        "pending"
    } else {
        "indexed"
    })
}

fn delete_job(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM kb_jobs WHERE id = ?1", params![id])
        .map_err(map_sqlite_error)?;
    Ok(())
}

/// A safe FTS5 query: the words of `q` (letters, digits, `_`), each quoted,
/// joined by OR; `None` when there are none.
pub fn fts_query(q: &str) -> Option<String> {
    fts_query_with(q, false)
}

/// English function words a question is made of ("how do I ... with
/// the ..."): [`fts_query_with`] leaves them out when asked to.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
    "how", "i", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "so", "that", "the",
    "their", "them", "then", "there", "these", "this", "to", "was", "what", "when", "where",
    "which", "while", "who", "why", "will", "with", "without", "you", "your",
];

/// [`fts_query`], leaving out [`STOPWORDS`] when `drop_stopwords` (unless
/// the query has nothing else) and repeated words.
pub fn fts_query_with(q: &str, drop_stopwords: bool) -> Option<String> {
    let words: Vec<&str> = q
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    let is_stop = |w: &str| STOPWORDS.contains(&w.to_lowercase().as_str());
    let keep_all = !drop_stopwords || words.iter().all(|w| is_stop(w));
    let mut seen = std::collections::HashSet::new();
    let terms: Vec<String> = words
        .into_iter()
        .filter(|w| keep_all || !is_stop(w))
        .filter(|w| seen.insert(w.to_lowercase()))
        .take(64)
        .map(|t| format!("\"{t}\""))
        .collect();
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" OR "))
    }
}

/// How keyword search ranks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordParams {
    /// BM25 weight of a chunk's context head (its document's path, title
    /// and section headings) against its text (1).
    pub head_weight: f64,
    /// Leave English function words out of the query ([`STOPWORDS`]).
    pub drop_stopwords: bool,
}

impl KeywordParams {
    /// The weight of the head when none is asked for. Chosen on the dev
    /// halves of the labelled evaluations (`bench/results/retrieval.md`).
    pub const DEFAULT_HEAD_WEIGHT: f64 = 2.0;

    fn clamped(self) -> Self {
        KeywordParams {
            head_weight: if self.head_weight.is_finite() {
                self.head_weight.clamp(0.0, 100.0)
            } else {
                Self::DEFAULT_HEAD_WEIGHT
            },
            ..self
        }
    }
}

impl Default for KeywordParams {
    fn default() -> Self {
        KeywordParams {
            head_weight: Self::DEFAULT_HEAD_WEIGHT,
            drop_stopwords: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_queries_are_quoted_words() {
        assert_eq!(fts_query("  "), None);
        assert_eq!(fts_query("\"\"*()"), None);
        assert_eq!(
            fts_query("rust AND \"db\" NEAR(x)").as_deref(),
            Some("\"rust\" OR \"AND\" OR \"db\" OR \"NEAR\" OR \"x\"")
        );
    }

    #[test]
    fn stopwords_go_unless_nothing_else_is_left() {
        assert_eq!(
            fts_query_with("How do I copy a directory tree?", true).as_deref(),
            Some("\"copy\" OR \"directory\" OR \"tree\"")
        );
        assert_eq!(
            fts_query_with("to be or to be", true).as_deref(),
            Some("\"to\" OR \"be\" OR \"or\"")
        );
        assert_eq!(
            fts_query_with("The the THE", false).as_deref(),
            Some("\"The\"")
        );
    }
}
