//! [`KnowledgeBase`]: the indexing worker and search over the other layers.
//!
//! # The pipeline of one job
//! 1. `head` the key in the drive. Gone → remove the document: its chunks
//!    and FTS rows in one transaction, then its vectors.
//! 2. The fingerprint — sha256 of (content sha256, embedder, chunking) — is
//!    what the document was last indexed from: only the version moves, no
//!    re-extraction and no re-embedding (unless the job is a forced reindex).
//! 3. Read the body (bounded), extract (blocking thread, timeout), chunk.
//! 4. With an embedder: embed the chunks and upsert them into the bot's `kb`
//!    collection under ids derived from (key, fingerprint, chunk) —
//!    idempotent, and distinct from the previous content's points.
//! 5. One transaction replaces the chunks and FTS rows, updates the document
//!    row and deletes the job.
//! 6. The previous content's vectors are deleted by filter. Dense results are
//!    joined with the current chunk rows by fingerprint, so a vector left
//!    behind by a crash between 5 and 6 is never returned.
//!
//! Failures: a document that cannot be extracted fails at once (retrying
//! cannot help); anything else (drive, embedder, vectors unavailable) is
//! retried up to [`KbOptions::max_attempts`] claims with backoff, then the
//! document is `failed` with the last error. A process that dies mid-job
//! leaves it `running`; [`KnowledgeBase::run_worker`] queues it again at
//! start, and the attempts count includes those claims, so a document that
//! kills the process cannot loop forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use strata_core::drive::{DriveStore, ListRequest, ObjectMeta};
use strata_core::embed::Embedder;
use strata_core::filter::{Condition, Filter, MatchValue};
use strata_core::records::RecordStore;
use strata_core::types::BotId;
use strata_core::vectors::{
    CollectionSpec, FieldType, Metric, PointId, PointInput, PointSelector, SearchRequest,
    VectorQuota, VectorStore,
};
use strata_core::worker::{QueueStats, WorkerState};
use strata_core::{Error, ErrorKind, Result};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::chunk::{
    chunk_heads, chunk_text, embedding_text, Chunking, CHUNKER_VERSION, CHUNK_OVERLAP_SETTING,
    CHUNK_SIZE_SETTING,
};
use crate::extract::{extract_with_timeout, ExtractLimits};
use crate::fusion::{fuse, Fusion};
use crate::store::{DocumentRow, IndexProgress, IndexedDocument, Job, KbFilter, KbStore};

/// The per-bot collection that holds the knowledge base's vectors. Its
/// leading `_` makes it Strata's own: no client can create, write, read,
/// drop or list a collection of that name.
pub const KB_COLLECTION: &str = "_kb";
/// Largest `k` of a search.
pub const MAX_K: usize = 100;
/// Longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// The bot setting that turns contextual chunk headers off (`false`): each
/// chunk is then embedded and keyword-indexed as its text alone.
pub const CHUNK_CONTEXT_SETTING: &str = "kb.chunk_context";
/// Fewest candidates hybrid search takes from each of its two lists.
pub const HYBRID_MIN_CANDIDATES: usize = 40;

/// Tuning of the worker.
#[derive(Debug, Clone)]
pub struct KbOptions {
    /// Claims of one job before its document is `failed`.
    pub max_attempts: i64,
    /// Wait before the first retry; each further retry waits 4× longer.
    pub retry_backoff: Duration,
    /// How long a claim holds a job before another worker may take it.
    pub lease: Duration,
    /// Texts per embedder call.
    pub embed_batch: usize,
    pub limits: ExtractLimits,
    /// The server's vector quota per bot; a bot's `vectors.max_points`
    /// setting overrides it. The knowledge base's points count against it.
    pub default_quota: VectorQuota,
    /// Longest wait between tries while the embedder does not answer
    /// (those tries do not use up a document's attempts).
    pub max_embedder_backoff: Duration,
}

impl Default for KbOptions {
    fn default() -> Self {
        KbOptions {
            max_attempts: 3,
            retry_backoff: Duration::from_secs(2),
            lease: Duration::from_secs(30 * 60),
            embed_batch: 32,
            limits: ExtractLimits::default(),
            default_quota: VectorQuota::default(),
            max_embedder_backoff: Duration::from_secs(60),
        }
    }
}

/// How a search ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Keyword,
    Dense,
    Hybrid,
}

impl SearchMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "keyword" => Ok(SearchMode::Keyword),
            "dense" => Ok(SearchMode::Dense),
            "hybrid" => Ok(SearchMode::Hybrid),
            other => Err(Error::invalid(format!(
                "mode {other:?} is unknown: expected hybrid, dense or keyword"
            ))
            .with_code("invalid_mode")),
        }
    }
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub query: String,
    pub mode: SearchMode,
    pub k: usize,
    pub filter: KbFilter,
    /// Hybrid only; [`Fusion::default`] when `None`.
    pub fusion: Option<Fusion>,
}

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The document's key in the drive.
    pub document: String,
    pub version: i64,
    /// The chunk's position in the document, from 0.
    pub chunk: i64,
    pub text: String,
    pub score: f32,
}

/// The knowledge base of every bot.
#[derive(Debug)]
pub struct KnowledgeBase {
    store: KbStore,
    drive: Arc<dyn DriveStore>,
    vectors: Arc<dyn VectorStore>,
    embedder: Arc<dyn Embedder>,
    records: Arc<dyn RecordStore>,
    opts: KbOptions,
    wake: Notify,
    /// The indexing worker's live state (`/ready`, `/metrics`).
    state: Arc<WorkerState>,
    /// Consecutive jobs that found the embedder unavailable: the backoff
    /// before the next try grows with it, and a success resets it.
    embedder_outage: AtomicU32,
    /// Query text → its embedding (the embedder is fixed for the process):
    /// a repeated question, and hybrid after dense, costs no model call.
    query_vectors: quick_cache::sync::Cache<String, Arc<Vec<f32>>>,
    /// Progress of the documents being indexed now (in memory: the worker
    /// that indexes a document is the one that knows how far it got).
    progress: Mutex<HashMap<(BotId, String), Arc<IndexProgress>>>,
}

/// Documents stage 1 of the pipeline prepares ahead of the embedder.
const PIPELINE_AHEAD: usize = 4;

/// A chunk in an embedder call: its job's id and its position.
type ChunkRef = (i64, usize);

/// An embedder call's chunks and what it answered.
type EmbeddedCall = (Vec<ChunkRef>, Result<Vec<Vec<f32>>>);

/// How a job ended, or its error with the version it concerned.
type JobResult = std::result::Result<&'static str, (Error, Option<i64>)>;

/// What stage 1 made of a job.
enum Prepared<'a> {
    /// Nothing to embed or write: removed or unchanged.
    Finished(&'static str),
    Doc(Box<PreparedDoc<'a>>),
}

/// A document extracted and chunked, on its way through stage 2.
struct PreparedDoc<'a> {
    job: Job,
    meta: ObjectMeta,
    content_type: &'static str,
    fingerprint: String,
    /// The start of its vectors' ids.
    key_hash: String,
    doc_meta: Value,
    chunks: Vec<crate::chunk::Chunk>,
    /// Each chunk's context head (`heads[i]` belongs to `chunks[i]`).
    heads: Vec<String>,
    quota: VectorQuota,
    progress: ProgressEntry<'a>,
    started: std::time::Instant,
    /// Chunks whose vectors are written.
    written: usize,
    /// The first failure: the document goes no further.
    error: Option<Error>,
    /// The wait an embedder outage set (shared by one call's documents).
    outage_wait: Option<Duration>,
}

/// Locks a mutex whose data stays valid if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps a document's entry in [`KnowledgeBase::progress`] while its job
/// runs and removes it however the job ends (done, failed, cancelled).
struct ProgressEntry<'a> {
    kb: &'a KnowledgeBase,
    id: (BotId, String),
    progress: Arc<IndexProgress>,
}

impl Drop for ProgressEntry<'_> {
    fn drop(&mut self) {
        let mut map = self
            .kb
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map
            .get(&self.id)
            .is_some_and(|p| Arc::ptr_eq(p, &self.progress))
        {
            map.remove(&self.id);
        }
    }
}

/// Query embeddings kept (384-d: ~1.5 KiB each).
const QUERY_CACHE_ENTRIES: usize = 4096;

/// The drive folder whose files are a bot's knowledge-base documents.
pub fn kb_prefix(bot: &BotId) -> String {
    format!("{0}.gbai/{0}.gbkb/", bot.as_str())
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Failures that trying again cannot fix: the document itself (invalid,
/// too large) or the bot's vector quota, which the document does not fit.
fn is_permanent(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidInput | ErrorKind::PayloadTooLarge | ErrorKind::QuotaExceeded
    )
}

/// The embedder did not answer (down, overloaded, timing out): nothing is
/// wrong with the document, so the try does not count against it.
pub fn is_embedder_outage(e: &Error) -> bool {
    e.is_retryable() && e.code().starts_with("embedder_")
}

impl KnowledgeBase {
    pub fn new(
        store: KbStore,
        drive: Arc<dyn DriveStore>,
        vectors: Arc<dyn VectorStore>,
        embedder: Arc<dyn Embedder>,
        records: Arc<dyn RecordStore>,
        opts: KbOptions,
    ) -> Self {
        KnowledgeBase {
            store,
            drive,
            vectors,
            embedder,
            records,
            opts,
            wake: Notify::new(),
            state: Arc::new(WorkerState::new("kb")),
            embedder_outage: AtomicU32::new(0),
            query_vectors: quick_cache::sync::Cache::new(QUERY_CACHE_ENTRIES),
            progress: Mutex::new(HashMap::new()),
        }
    }

    /// The progress of `key` while it is being indexed (`None` otherwise).
    pub fn progress(&self, bot: &BotId, key: &str) -> Option<Arc<IndexProgress>> {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(bot.clone(), key.to_owned()))
            .cloned()
    }

    /// The bot's documents in key order (after `after`, at most `limit`),
    /// with the live progress of those being indexed now: `chunks_found`
    /// and `chunks_done` are both the chunk count of an indexed document,
    /// what the worker has reached for an `indexing` one, and unknown
    /// (`None`) before a document is chunked.
    pub async fn documents(
        &self,
        bot: &BotId,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DocumentRow>> {
        let mut rows = self.store.documents(bot, prefix, after, limit).await?;
        for row in rows.iter_mut().filter(|r| r.status == "indexing") {
            if let Some(found) = self
                .progress(bot, &row.key)
                .and_then(|p| p.chunks_found().map(|f| (f, p.chunks_done())))
            {
                row.chunks_found = Some(found.0 as i64);
                row.chunks_done = Some(found.1.min(found.0) as i64);
            }
        }
        Ok(rows)
    }

    fn track_progress(&self, bot: &BotId, key: &str) -> ProgressEntry<'_> {
        let id = (bot.clone(), key.to_owned());
        let progress = Arc::new(IndexProgress::default());
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id.clone(), Arc::clone(&progress));
        ProgressEntry {
            kb: self,
            id,
            progress,
        }
    }

    /// The rows.
    pub fn store(&self) -> &KbStore {
        &self.store
    }

    /// The embedder in use.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Whether `key` is a knowledge-base document of `bot`.
    pub fn is_document(bot: &BotId, key: &str) -> bool {
        key.starts_with(&kb_prefix(bot)) && key.len() > kb_prefix(bot).len()
    }

    /// Called after a drive write or delete of `key`: a document is queued
    /// for (re)indexing or removal. Other keys are ignored.
    pub async fn file_changed(&self, bot: &BotId, key: &str, version: Option<i64>) -> Result<()> {
        if !Self::is_document(bot, key) {
            return Ok(());
        }
        self.store.enqueue(bot, key, version, false).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Queues every document of the bot (drive files under its `.gbkb/`
    /// folder, and documents whose file is gone) for a forced re-index.
    /// Returns how many were queued.
    pub async fn reindex(&self, bot: &BotId) -> Result<u64> {
        let prefix = kb_prefix(bot);
        let mut keys: Vec<String> = self.store.document_keys(bot).await?;
        let mut after = None;
        loop {
            let page = self
                .drive
                .list(
                    bot,
                    ListRequest {
                        prefix: prefix.clone(),
                        delimiter: None,
                        after: after.take(),
                        limit: 1000,
                    },
                )
                .await?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        keys.sort();
        keys.dedup();
        for key in &keys {
            self.store.enqueue(bot, key, None, true).await?;
        }
        self.wake.notify_one();
        Ok(keys.len() as u64)
    }

    /// The indexing worker's live state.
    pub fn worker_state(&self) -> &Arc<WorkerState> {
        &self.state
    }

    /// Jobs not finished yet and the age of the oldest.
    pub async fn queue_stats(&self) -> Result<QueueStats> {
        self.store.queue_stats().await
    }

    /// Runs the indexing worker until `stop` is cancelled: first puts jobs
    /// interrupted by a previous run back in the queue, then runs the
    /// pipeline (see [`KnowledgeBase::run_pipeline`]), sleeping when there
    /// are no jobs. Jobs running when `stop` fires are put back in the
    /// queue (without using up an attempt) and resume at the next start.
    /// Returns an error only when it cannot go on; the supervisor starts it
    /// again.
    pub async fn run_worker(self: Arc<Self>, stop: CancellationToken) -> Result<()> {
        match self.store.recover(self.opts.max_attempts).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "resuming interrupted knowledge-base jobs"),
            Err(e) => return Err(e),
        }
        self.state.running();
        let claimed = Mutex::new(Vec::new());
        tokio::select! {
            biased;
            _ = stop.cancelled() => {}
            _ = self.run_pipeline(&claimed, true) => {}
        }
        let interrupted = std::mem::take(&mut *lock(&claimed));
        for job in interrupted {
            if let Err(e) = self.store.release(&job).await {
                tracing::warn!(error = %e, key = %job.key, "putting an interrupted knowledge-base job back failed; it resumes after its lease");
            }
        }
        Ok(())
    }

    /// Runs jobs until none is runnable (tests and tools); returns how many
    /// ran.
    pub async fn drain(&self) -> Result<usize> {
        let claimed = Mutex::new(Vec::new());
        Ok(self.run_pipeline(&claimed, false).await)
    }

    /// The indexing pipeline, two stages that run at the same time:
    ///
    /// 1. claim a job, read, extract and chunk its document (or finish it
    ///    at once: removed, unchanged, failed), and hand it on — a few
    ///    documents ahead of the embedder at most;
    /// 2. embed the chunks in calls of [`KbOptions::embed_batch`] texts
    ///    that mix the chunks of consecutive documents (small documents
    ///    would otherwise make small calls), write each call's vectors
    ///    while the next call embeds, and complete each document (chunks,
    ///    full-text rows, status in one transaction) once its vectors are
    ///    written.
    ///
    /// `claimed` holds the jobs claimed and not finished yet (the caller
    /// puts them back when it drops this future). With `wait`, it runs
    /// until dropped, sleeping while there are no jobs; without, it returns
    /// when no job is runnable. Returns the jobs run.
    pub async fn run_pipeline(&self, claimed: &Mutex<Vec<Job>>, wait: bool) -> usize {
        let (tx, rx) = tokio::sync::mpsc::channel::<PreparedDoc<'_>>(PIPELINE_AHEAD);
        let ran_total = AtomicU64::new(0);
        let ran = &ran_total;
        // `move`: the sender is dropped when stage 1 ends, which ends
        // stage 2 once it has the rest.
        let produce = async move {
            loop {
                let lease_ms = self.opts.lease.as_millis() as i64;
                match self.store.claim(lease_ms).await {
                    Ok(Some(job)) => {
                        // A newer job of a document still in stage 2 waits
                        // for it: the older one's completion deletes the
                        // vectors of other contents than its own.
                        lock(claimed).push(job.clone());
                        while lock(claimed)
                            .iter()
                            .any(|j| j.id != job.id && j.bot == job.bot && j.key == job.key)
                        {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        ran.fetch_add(1, Ordering::Relaxed);
                        let started = std::time::Instant::now();
                        match self.prepare(&job).await {
                            Ok(Prepared::Doc(doc)) => {
                                if tx.send(*doc).await.is_err() {
                                    return;
                                }
                            }
                            Ok(Prepared::Finished(outcome)) => {
                                self.finish_job(claimed, &job, Ok(outcome), started, None)
                                    .await
                            }
                            Err(e) => self.finish_job(claimed, &job, Err(e), started, None).await,
                        }
                    }
                    Ok(None) if !wait => return,
                    Ok(None) => {
                        tokio::select! {
                            _ = self.wake.notified() => {}
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a knowledge-base job failed");
                        self.state.failed(format!("claiming a job: {e}"));
                        if !wait {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        };
        tokio::join!(produce, self.consume(claimed, rx));
        ran_total.into_inner() as usize
    }

    /// Stage 2 of [`KnowledgeBase::run_pipeline`].
    async fn consume<'a>(
        &'a self,
        claimed: &Mutex<Vec<Job>>,
        mut rx: tokio::sync::mpsc::Receiver<PreparedDoc<'a>>,
    ) {
        let embedded = self.embedder.enabled();
        let batch = self.opts.embed_batch.max(1);
        // Documents taken from stage 1, oldest first, with how many of
        // their chunks were sent to the embedder.
        let mut queue: std::collections::VecDeque<(PreparedDoc<'a>, usize)> = Default::default();
        // The call whose vectors are to be written next.
        let mut written: Option<EmbeddedCall> = None;
        let mut open = true;
        loop {
            // Take what stage 1 has ready; wait only when there is nothing
            // to embed or write.
            while open {
                let queued: usize = queue.iter().map(|(d, sent)| d.chunks.len() - sent).sum();
                if queued >= batch {
                    break;
                }
                let next = if queued == 0 && written.is_none() {
                    rx.recv().await
                } else {
                    match rx.try_recv() {
                        Ok(d) => Some(d),
                        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => None,
                    }
                };
                match next {
                    Some(d) => queue.push_back((d, 0)),
                    None => open = false,
                }
            }
            // The next call: up to `batch` chunks, across documents.
            let mut call: Vec<ChunkRef> = Vec::new();
            let mut texts: Vec<String> = Vec::new();
            if embedded {
                for (d, sent) in queue.iter_mut() {
                    if d.error.is_some() {
                        continue;
                    }
                    while *sent < d.chunks.len() && call.len() < batch {
                        call.push((d.job.id, *sent));
                        texts.push(embedding_text(
                            d.heads.get(*sent).map_or("", String::as_str),
                            &d.chunks[*sent].text,
                        ));
                        *sent += 1;
                    }
                    if call.len() == batch {
                        break;
                    }
                }
            }
            let embed_next = async {
                if texts.is_empty() {
                    None
                } else {
                    Some(self.embed_owned(texts, "index").await)
                }
            };
            let write_previous = async {
                if let Some((call, result)) = written.take() {
                    self.write_call(&mut queue, call, result).await;
                }
            };
            let (next, ()) = tokio::join!(embed_next, write_previous);
            if let Some(result) = next {
                written = Some((call, result));
            }
            // Complete the documents whose vectors are all written (or that
            // failed), in order.
            while queue.front().is_some_and(|(d, sent)| {
                d.error.is_some()
                    || !embedded
                    || (*sent == d.chunks.len() && d.written == d.chunks.len())
            }) {
                let Some((doc, _)) = queue.pop_front() else {
                    break;
                };
                self.complete(claimed, doc).await;
            }
            if !open && queue.is_empty() && written.is_none() {
                return;
            }
        }
    }

    /// Writes one embedder call's vectors, document by document; an error
    /// stops the documents it concerns (an embedder outage: all of them;
    /// a refused call: the document whose chunks it refuses).
    async fn write_call(
        &self,
        queue: &mut std::collections::VecDeque<(PreparedDoc<'_>, usize)>,
        call: Vec<ChunkRef>,
        result: Result<Vec<Vec<f32>>>,
    ) {
        let vectors = match result {
            Ok(v) if v.len() == call.len() => v,
            other => {
                let e = match other {
                    Err(e) => e,
                    Ok(v) => Error::internal(format!(
                        "the embedder returned {} vectors for {} texts",
                        v.len(),
                        call.len()
                    )),
                };
                if is_embedder_outage(&e) {
                    // The embedder does not answer: every document waiting
                    // for it waits, one step of the backoff for all.
                    let wait = Some(self.next_outage_wait());
                    for (d, _) in queue.iter_mut().filter(|(d, _)| d.error.is_none()) {
                        d.error = Some(e.detached());
                        d.outage_wait = wait;
                    }
                    return;
                }
                // The embedder refused this call (a text it will not take):
                // a call that mixed documents is retried one document at a
                // time, so that only the document it refuses fails.
                let mut docs: Vec<i64> = call.iter().map(|(seq, _)| *seq).collect();
                docs.dedup();
                if docs.len() > 1 {
                    for seq in docs {
                        let part: Vec<ChunkRef> =
                            call.iter().copied().filter(|(s, _)| *s == seq).collect();
                        let Some((doc, _)) = queue.iter().find(|(d, _)| d.job.id == seq) else {
                            continue;
                        };
                        if doc.error.is_some() {
                            continue;
                        }
                        let texts: Vec<String> = part
                            .iter()
                            .filter_map(|(_, i)| {
                                let chunk = doc.chunks.get(*i)?;
                                let head = doc.heads.get(*i).map_or("", String::as_str);
                                Some(embedding_text(head, &chunk.text))
                            })
                            .collect();
                        let result = self.embed_owned(texts, "index").await;
                        Box::pin(self.write_call(queue, part, result)).await;
                    }
                    return;
                }
                for (d, _) in queue
                    .iter_mut()
                    .filter(|(d, _)| d.error.is_none() && docs.contains(&d.job.id))
                {
                    d.error = Some(e.detached());
                }
                return;
            }
        };
        let mut vectors = vectors.into_iter();
        let mut i = 0;
        while i < call.len() {
            let seq = call[i].0;
            let run = call[i..].iter().take_while(|(s, _)| *s == seq).count();
            let part: Vec<Vec<f32>> = vectors.by_ref().take(run).collect();
            let chunks = &call[i..i + run];
            i += run;
            let Some((doc, _)) = queue.iter_mut().find(|(d, _)| d.job.id == seq) else {
                continue;
            };
            if doc.error.is_some() {
                continue;
            }
            if let Err(e) = self.write_vectors(doc, chunks, part).await {
                doc.error = Some(e);
            }
        }
    }

    /// Ends a document of stage 2: completes it, or records its failure.
    async fn complete(&self, claimed: &Mutex<Vec<Job>>, mut doc: PreparedDoc<'_>) {
        let version = Some(doc.meta.version);
        let result = match doc.error.take() {
            Some(e) => Err((e, version)),
            None => self
                .complete_index(&mut doc)
                .await
                .map_err(|e| (e, version)),
        };
        self.finish_job(claimed, &doc.job, result, doc.started, doc.outage_wait)
            .await;
    }

    /// The wait before the next try while the embedder does not answer:
    /// it grows with consecutive outages (`retry_backoff` doubling up to
    /// `max_embedder_backoff`); the documents of one failed call share one
    /// step.
    fn next_outage_wait(&self) -> Duration {
        let n = self.embedder_outage.fetch_add(1, Ordering::Relaxed);
        self.opts
            .retry_backoff
            .saturating_mul(1u32 << n.min(16))
            .min(self.opts.max_embedder_backoff)
    }

    /// Records how a job ended and removes it from `claimed`.
    async fn finish_job(
        &self,
        claimed: &Mutex<Vec<Job>>,
        job: &Job,
        result: JobResult,
        started: std::time::Instant,
        outage_wait: Option<Duration>,
    ) {
        match result {
            Ok(outcome) => {
                self.embedder_outage.store(0, Ordering::Relaxed);
                self.state.progress();
                tracing::debug!(bot = %job.bot.as_str(), key = %job.key, outcome, ms = started.elapsed().as_millis() as u64, "knowledge-base job done");
            }
            Err((e, _)) if is_embedder_outage(&e) => {
                // The embedder is down: the document waits, its attempts
                // stay, and the wait grows while the outage lasts.
                let wait = outage_wait.unwrap_or_else(|| self.next_outage_wait());
                tracing::warn!(bot = %job.bot.as_str(), key = %job.key, wait_ms = wait.as_millis() as u64, error = %e, "the embedder did not answer; the document waits");
                self.state.failed(format!("embedder: {e}"));
                if let Err(e2) = self
                    .store
                    .retry_without_attempt(job, &e, wait.as_millis() as i64)
                    .await
                {
                    tracing::warn!(error = %e2, "recording a knowledge-base retry failed");
                }
            }
            Err((e, version)) => {
                let permanent = is_permanent(&e);
                let retry_ms = self.opts.retry_backoff.as_millis() as i64
                    * 4i64.saturating_pow(job.attempts.saturating_sub(1).clamp(0, 8) as u32);
                tracing::warn!(bot = %job.bot.as_str(), key = %job.key, attempt = job.attempts, permanent, error = %e, "indexing a document failed");
                self.state.failed(format!("{}: {e}", job.key));
                if let Err(e2) = self
                    .store
                    .fail(
                        job,
                        &e,
                        permanent,
                        self.opts.max_attempts,
                        retry_ms,
                        version,
                    )
                    .await
                {
                    tracing::warn!(error = %e2, "recording a knowledge-base failure failed");
                }
                if permanent || job.attempts >= self.opts.max_attempts {
                    self.delete_vectors(&job.bot, &job.key, None).await;
                }
            }
        }
        lock(claimed).retain(|j| j.id != job.id);
    }

    fn chunking(config: &std::collections::BTreeMap<String, Value>) -> Result<Chunking> {
        let num = |name: &str| -> Result<Option<usize>> {
            match config.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n.as_u64().map(|n| Some(n as usize)).ok_or(()),
                Some(Value::String(s)) => s.trim().parse::<usize>().map(Some).map_err(|_| ()),
                Some(_) => Err(()),
            }
            .map_err(|_| {
                Error::invalid(format!("the bot setting {name} must be a whole number"))
                    .with_code("invalid_chunking")
            })
        };
        let d = Chunking::default();
        let c = Chunking {
            size: num(CHUNK_SIZE_SETTING)?.unwrap_or(d.size),
            overlap: num(CHUNK_OVERLAP_SETTING)?.unwrap_or(d.overlap),
        };
        c.validate()?;
        Ok(c)
    }

    /// The bot setting [`CHUNK_CONTEXT_SETTING`]: whether chunks carry
    /// their context head (default: yes).
    fn chunk_context(config: &std::collections::BTreeMap<String, Value>) -> Result<bool> {
        match config.get(CHUNK_CONTEXT_SETTING) {
            None | Some(Value::Null) => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(Error::invalid(format!(
                "the bot setting {CHUNK_CONTEXT_SETTING} must be true or false"
            ))
            .with_code("invalid_chunking")),
        }
    }

    /// Stage 1 of one job: finishes it when nothing is to embed or write
    /// (removed, unchanged), else reads, extracts and chunks the document.
    /// The error comes with the version it concerned, when known.
    async fn prepare(&self, job: &Job) -> std::result::Result<Prepared<'_>, (Error, Option<i64>)> {
        let bot = &job.bot;
        let started = std::time::Instant::now();
        let meta = match self.drive.head(bot, &job.key, None).await {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.store
                    .complete_removed(job)
                    .await
                    .map_err(|e| (e, None))?;
                self.delete_vectors(bot, &job.key, None).await;
                return Ok(Prepared::Finished("removed"));
            }
            Err(e) => return Err((e, None)),
        };
        let v = Some(meta.version);
        let config = self.records.get_config(bot).await.map_err(|e| (e, v))?;
        let chunking = Self::chunking(&config).map_err(|e| (e, v))?;
        let context = Self::chunk_context(&config).map_err(|e| (e, v))?;
        let quota = VectorQuota::from_settings(self.opts.default_quota, &config);
        let fingerprint = hex_sha256(&[
            meta.etag.as_bytes(),
            self.embedder.name().as_bytes(),
            chunking.tag().as_bytes(),
            format!("chunker {CHUNKER_VERSION} context {context}").as_bytes(),
        ])[..32]
            .to_owned();
        if !job.force
            && self
                .store
                .fingerprint(bot, &job.key)
                .await
                .map_err(|e| (e, v))?
                .as_deref()
                == Some(fingerprint.as_str())
        {
            self.store
                .complete_unchanged(job, meta.version)
                .await
                .map_err(|e| (e, v))?;
            return Ok(Prepared::Finished("unchanged"));
        }
        let limits = self.opts.limits;
        if meta.size > limits.max_file_bytes {
            return Err((
                Error::invalid(format!(
                    "{}: {} bytes is over the extraction limit of {} bytes",
                    job.key, meta.size, limits.max_file_bytes
                ))
                .with_code("document_too_large"),
                v,
            ));
        }
        let progress = self.track_progress(bot, &job.key);
        let body = self.read_body(bot, &meta).await.map_err(|e| (e, v))?;
        let extracted =
            extract_with_timeout(body, meta.content_type.clone(), job.key.clone(), limits)
                .await
                .map_err(|e| (e, v))?;
        let kind = extracted.kind;
        let text = extracted.text;
        let rel_path = job
            .key
            .strip_prefix(kb_prefix(bot).as_str())
            .unwrap_or(&job.key)
            .to_owned();
        let (chunks, heads) = tokio::task::spawn_blocking(move || {
            chunk_text(&text, kind, chunking).map(|chunks| {
                let heads = if context {
                    chunk_heads(&rel_path, &text, kind, &chunks)
                } else {
                    vec![String::new(); chunks.len()]
                };
                (chunks, heads)
            })
        })
        .await
        .map_err(|e| (Error::internal("chunking panicked").with_source(e), v))?
        .map_err(|e| (e, v))?;
        progress.progress.set_found(chunks.len() as u64);
        let doc_meta = document_meta(&job.key, kind.content_type(), meta.size, &chunks);
        let key_hash = hex_sha256(&[job.key.as_bytes()])[..24].to_owned();
        let doc = PreparedDoc {
            job: job.clone(),
            meta,
            content_type: kind.content_type(),
            fingerprint,
            key_hash,
            doc_meta,
            chunks,
            heads,
            quota,
            progress,
            started,
            written: 0,
            error: None,
            outage_wait: None,
        };
        // With an embedder, a document is `indexed` only once its vectors
        // are written: an endpoint whose dimension is not known yet is asked
        // (and the job waits while it does not answer), never skipped.
        if self.embedder.enabled() {
            let dim = self.embedder.probe_dimension().await.map_err(|e| (e, v))?;
            if !doc.chunks.is_empty() {
                self.ensure_collection(bot, dim, quota)
                    .await
                    .map_err(|e| (e, v))?;
            }
        }
        Ok(Prepared::Doc(Box::new(doc)))
    }

    /// The last step of a document: its chunks, full-text rows and status
    /// in one transaction, then its previous content's vectors go.
    async fn complete_index(&self, doc: &mut PreparedDoc<'_>) -> Result<&'static str> {
        let embedded = self.embedder.enabled();
        let written = self
            .store
            .complete_index_with_heads(
                &doc.job,
                IndexedDocument {
                    version: doc.meta.version,
                    content_sha256: doc.meta.etag.clone(),
                    content_type: doc.content_type.to_owned(),
                    fingerprint: doc.fingerprint.clone(),
                    embedder: self.embedder.name().to_owned(),
                    meta: doc.doc_meta.clone(),
                },
                std::mem::take(&mut doc.chunks),
                std::mem::take(&mut doc.heads),
                // Without an embedder the chunks are done as the full-text
                // index takes them.
                (!embedded).then_some(&*doc.progress.progress),
            )
            .await?;
        if written && embedded {
            self.delete_vectors(&doc.job.bot, &doc.job.key, Some(&doc.fingerprint))
                .await;
        }
        Ok("indexed")
    }

    async fn read_body(&self, bot: &BotId, meta: &ObjectMeta) -> Result<bytes::Bytes> {
        let (_, mut stream) = self
            .drive
            .get(bot, &meta.key, Some(meta.version), None)
            .await?;
        let max = self.opts.limits.max_file_bytes;
        let mut buf = Vec::with_capacity(meta.size.min(max) as usize);
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            if (buf.len() + piece.len()) as u64 > max {
                return Err(Error::invalid(format!(
                    "{}: the file is over the extraction limit of {max} bytes",
                    meta.key
                ))
                .with_code("document_too_large"));
            }
            buf.extend_from_slice(&piece);
        }
        Ok(buf.into())
    }

    /// The bot's `kb` collection with dimension `dim`, created (or, after a
    /// change of embedder, re-created) as needed.
    async fn ensure_collection(&self, bot: &BotId, dim: usize, quota: VectorQuota) -> Result<()> {
        match self.vectors.get_collection(bot, KB_COLLECTION).await {
            Ok(info) if info.dimension == dim => return Ok(()),
            Ok(_) => self.vectors.drop_collection(bot, KB_COLLECTION).await?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let spec = CollectionSpec {
            name: KB_COLLECTION.to_owned(),
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
        self.vectors
            .create_index(bot, KB_COLLECTION, "key", FieldType::Keyword)
            .await?;
        Ok(())
    }

    /// [`KnowledgeBase::embed_timed`] of texts it owns (so the call does
    /// not borrow what the pipeline changes meanwhile).
    async fn embed_owned(
        &self,
        texts: Vec<String>,
        purpose: &'static str,
    ) -> Result<Vec<Vec<f32>>> {
        self.embed_timed(&texts, purpose).await
    }

    /// Embeds `texts`, timing the call into the `strata_embed_seconds`
    /// histogram (label `purpose`: `index` or `query`) that `/metrics`
    /// renders.
    async fn embed_timed(&self, texts: &[String], purpose: &'static str) -> Result<Vec<Vec<f32>>> {
        let started = std::time::Instant::now();
        let vectors = self.embedder.embed(texts).await;
        metrics::histogram!("strata_embed_seconds", "purpose" => purpose)
            .record(started.elapsed().as_secs_f64());
        vectors
    }

    /// Upserts the vectors of some of a document's chunks (`chunks`: its
    /// chunk positions, in order) into the bot's `kb` collection under ids
    /// derived from (key, fingerprint, chunk): idempotent, and distinct from
    /// the previous content's points.
    async fn write_vectors(
        &self,
        doc: &mut PreparedDoc<'_>,
        chunks: &[ChunkRef],
        vectors: Vec<Vec<f32>>,
    ) -> Result<()> {
        if vectors.len() != chunks.len() {
            return Err(Error::internal(format!(
                "the embedder returned {} vectors for {} texts",
                vectors.len(),
                chunks.len()
            )));
        }
        let points = chunks
            .iter()
            .zip(vectors)
            .map(|(&(_, c), vector)| {
                let mut payload = doc.doc_meta.clone();
                if let Value::Object(m) = &mut payload {
                    m.insert("chunk".into(), json!(doc.chunks[c].index));
                    m.insert("fingerprint".into(), json!(doc.fingerprint));
                }
                PointInput {
                    id: PointId::Str(format!(
                        "{}:{}:{}",
                        doc.key_hash, doc.fingerprint, doc.chunks[c].index
                    )),
                    vector,
                    payload: Some(payload),
                    ttl_seconds: None,
                }
            })
            .collect();
        self.vectors
            .upsert(&doc.job.bot, KB_COLLECTION, points, doc.quota)
            .await?;
        doc.written += chunks.len();
        doc.progress.progress.add_done(chunks.len() as u64);
        Ok(())
    }

    /// Deletes a document's vectors, all of them or those of other content
    /// than `keep`. Failures are logged: stale vectors are never returned.
    async fn delete_vectors(&self, bot: &BotId, key: &str, keep: Option<&str>) {
        let mut filter = Filter {
            must: vec![Condition::Match {
                key: "key".into(),
                value: MatchValue::Str(key.to_owned()),
            }],
            ..Default::default()
        };
        if let Some(fp) = keep {
            filter.must_not.push(Condition::Match {
                key: "fingerprint".into(),
                value: MatchValue::Str(fp.to_owned()),
            });
        }
        match self
            .vectors
            .delete_points(bot, KB_COLLECTION, PointSelector::Filter(filter))
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(bot = %bot.as_str(), key, error = %e, "deleting old knowledge-base vectors failed")
            }
        }
    }

    /// Searches the bot's knowledge base.
    pub async fn search(&self, bot: &BotId, q: SearchQuery) -> Result<Vec<SearchHit>> {
        if q.k == 0 || q.k > MAX_K {
            return Err(
                Error::invalid(format!("k must be 1..={MAX_K}, got {}", q.k))
                    .with_code("invalid_k"),
            );
        }
        if q.query.len() > MAX_QUERY_BYTES {
            return Err(Error::invalid(format!(
                "the query is longer than {MAX_QUERY_BYTES} bytes"
            ))
            .with_code("invalid_query"));
        }
        if q.query.trim().is_empty() {
            return Err(Error::invalid("the query is empty").with_code("invalid_query"));
        }
        let mut filter = q.filter.clone();
        if let Some(p) = &filter.key_prefix {
            let root = format!("{}.gbai/", bot.as_str());
            if !p.starts_with(&root) {
                filter.key_prefix = Some(format!("{}{}", kb_prefix(bot), p));
            }
        }
        if q.mode != SearchMode::Keyword && !self.embedder.enabled() {
            return Err(Error::invalid(
                "dense and hybrid search need an embedder: start the server with STRATA_EMBEDDER=local:<model folder> or openai:<url>, or use mode \"keyword\"",
            )
            .with_code("no_embedder"));
        }
        let hits = match q.mode {
            SearchMode::Keyword => self
                .store
                .keyword_search(bot, &q.query, q.k, &filter)
                .await?
                .into_iter()
                .map(|h| SearchHit {
                    document: h.key,
                    version: h.version,
                    chunk: h.chunk,
                    text: h.text,
                    score: h.score,
                })
                .collect(),
            SearchMode::Dense => {
                let mut d = self.dense(bot, &q.query, q.k * 2, &filter).await?;
                d.truncate(q.k);
                d
            }
            SearchMode::Hybrid => {
                // Fusion needs both lists deep enough to overlap and to
                // show how sharply their scores fall.
                let depth = (q.k * 2).max(HYBRID_MIN_CANDIDATES);
                let kw = self
                    .store
                    .keyword_search(bot, &q.query, depth, &filter)
                    .await?;
                let de = self.dense(bot, &q.query, depth, &filter).await?;
                let mut by_id: HashMap<(String, i64), SearchHit> = HashMap::new();
                let kw_rank: Vec<((String, i64), f32)> = kw
                    .into_iter()
                    .map(|h| {
                        let id = (h.key.clone(), h.chunk);
                        let s = h.score;
                        by_id.entry(id.clone()).or_insert(SearchHit {
                            document: h.key,
                            version: h.version,
                            chunk: h.chunk,
                            text: h.text,
                            score: 0.0,
                        });
                        (id, s)
                    })
                    .collect();
                let de_rank: Vec<((String, i64), f32)> = de
                    .into_iter()
                    .map(|h| {
                        let id = (h.document.clone(), h.chunk);
                        let s = h.score;
                        by_id.entry(id.clone()).or_insert(h);
                        (id, s)
                    })
                    .collect();
                fuse(&kw_rank, &de_rank, q.fusion.unwrap_or_default())
                    .into_iter()
                    .take(q.k)
                    .filter_map(|(id, score)| {
                        by_id.remove(&id).map(|mut h| {
                            h.score = score;
                            h
                        })
                    })
                    .collect()
            }
        };
        Ok(hits)
    }

    async fn dense(
        &self,
        bot: &BotId,
        query: &str,
        k: usize,
        filter: &KbFilter,
    ) -> Result<Vec<SearchHit>> {
        let vector = match self.query_vectors.get(query) {
            Some(v) => v.as_ref().clone(),
            None => {
                let mut vectors = self.embed_timed(&[query.to_owned()], "query").await?;
                let Some(vector) = vectors.pop() else {
                    return Err(Error::internal("the embedder returned no vector"));
                };
                self.query_vectors
                    .insert(query.to_owned(), Arc::new(vector.clone()));
                vector
            }
        };
        let mut must = Vec::new();
        if let Some(f) = &filter.metadata {
            must.push(Condition::Nested(f.clone()));
        }
        if let Some(ct) = &filter.content_type {
            must.push(Condition::Match {
                key: "content_type".into(),
                value: MatchValue::Str(ct.clone()),
            });
        }
        let prefix = filter.key_prefix.clone();
        if let Some(p) = prefix.as_deref().filter(|p| p.ends_with('/')) {
            must.push(Condition::Match {
                key: "dirs".into(),
                value: MatchValue::Str(p.to_owned()),
            });
        }
        let vfilter = (!must.is_empty()).then(|| Filter {
            must,
            ..Default::default()
        });
        // A prefix that is not a folder is checked per hit: fetch more.
        let fetch = if prefix.as_deref().is_some_and(|p| !p.ends_with('/')) {
            (k * 5).min(1000)
        } else {
            k
        };
        let found = match self
            .vectors
            .search(
                bot,
                KB_COLLECTION,
                SearchRequest {
                    vector,
                    k: fetch.max(1),
                    filter: vfilter,
                    ef: Some((fetch * 2).clamp(64, 4096)),
                    score_threshold: None,
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
        let mut wanted = Vec::new();
        let mut scores = Vec::new();
        for p in &found {
            let Some(payload) = &p.payload else { continue };
            let (Some(key), Some(fp), Some(chunk)) = (
                payload.get("key").and_then(Value::as_str),
                payload.get("fingerprint").and_then(Value::as_str),
                payload.get("chunk").and_then(Value::as_i64),
            ) else {
                continue;
            };
            if let Some(p) = &prefix {
                if !key.starts_with(p.as_str()) {
                    continue;
                }
            }
            wanted.push((key.to_owned(), fp.to_owned(), chunk));
            scores.push(p.score);
        }
        let rows = self.store.current_chunks(bot, wanted).await?;
        Ok(rows
            .into_iter()
            .zip(scores)
            .filter_map(|(row, score)| {
                row.map(|h| SearchHit {
                    document: h.key,
                    version: h.version,
                    chunk: h.chunk,
                    text: h.text,
                    score,
                })
            })
            .take(k)
            .collect())
    }
}

/// The metadata a document's search filters see.
pub fn document_meta(
    key: &str,
    content_type: &str,
    size: u64,
    chunks: &[crate::chunk::Chunk],
) -> Value {
    let name = key.rsplit('/').next().unwrap_or(key);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let mut dirs = Vec::new();
    for (i, c) in key.char_indices() {
        if c == '/' {
            dirs.push(key[..=i].to_owned());
        }
    }
    let mut meta = json!({
        "key": key,
        "name": name,
        "ext": ext,
        "dirs": dirs,
        "content_type": content_type,
        "size": size,
    });
    if content_type == "text/markdown" {
        if let Some(title) = chunks.first().and_then(|c| {
            c.text
                .lines()
                .find_map(|l| l.strip_prefix("# ").map(|t| t.trim().to_owned()))
        }) {
            meta["title"] = json!(title);
        }
    }
    meta
}
