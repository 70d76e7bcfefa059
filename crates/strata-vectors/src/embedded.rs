//! The embedded vector store: rows in the records database (SQLite) are the
//! truth; each collection's [`VectorIndex`] in memory is derived from them.
//!
//! - **Writes** run under the collection's write lock: the rows and one
//!   `vector_log` entry per changed point are committed in one transaction
//!   (durable when the call returns), then the same change is applied to the
//!   index before the lock is released, so a reader never sees the index
//!   ahead of the rows and the writer's own next read sees its write.
//! - **Snapshots**: [`VectorStore::checkpoint`] writes each changed index to
//!   `<dir>/<collection id>.idx` (temporary file, fsync, rename) with the last
//!   log sequence number it contains, then truncates the log up to it.
//! - **Start**: each collection's snapshot is loaded and the log entries after
//!   it are replayed (a point whose row exists is upserted, else deleted). A
//!   missing or damaged snapshot means a rebuild from the rows — deleting the
//!   index files loses nothing.

use async_trait::async_trait;
use parking_lot::RwLock;
use rusqlite::{params, OptionalExtension};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use strata_core::filter::Filter;
use strata_core::types::BotId;
use strata_core::vectors::*;
use strata_core::{Error, Result, Timestamp};
use strata_records::sqlite::{map_sqlite_error, SqliteDatabase};

use crate::index::{IndexConfig, IndexedPoint, VectorIndex};

/// Threads used to link a batch into the graph.
const BUILD_THREADS: usize = 2;
/// Longest payload field name of an index.
const MAX_FIELD_LEN: usize = 256;
/// Longest TTL (10 years).
const MAX_TTL_SECONDS: i64 = 10 * 365 * 24 * 3600;

#[derive(Debug)]
struct Coll {
    id: i64,
    bot: String,
    name: String,
    spec: CollectionSpec,
    created_at: Timestamp,
    index: VectorIndex,
    /// Serialises writes (and snapshots) of this collection.
    write: tokio::sync::Mutex<()>,
    /// Last `vector_log.seq` applied to `index`.
    applied: AtomicU64,
    /// Last seq on disk in the snapshot.
    saved: AtomicU64,
    /// Log entries written since the last snapshot began: what a restart
    /// would replay. Past [`snapshot_after`] a snapshot is taken.
    unsaved: AtomicU64,
    /// A size-triggered snapshot is queued or running.
    saving: std::sync::atomic::AtomicBool,
    /// One snapshot of this collection at a time.
    snapshot: tokio::sync::Mutex<()>,
}

/// Log entries after which a collection is snapshotted again (besides the
/// janitor's rounds and a graceful stop), so a restart after a crash replays
/// a bounded amount: a fifth of the collection, between 5,000 and 100,000.
fn snapshot_after(live: u64) -> u64 {
    (live / 5).clamp(5_000, 100_000)
}

impl Coll {
    fn info(&self, now: i64) -> CollectionInfo {
        CollectionInfo {
            name: self.name.clone(),
            dimension: self.spec.dimension,
            metric: self.spec.metric,
            hnsw: self.spec.hnsw,
            quantization: self.spec.quantization,
            points: self.index.count(None, now),
            indexes: self
                .index
                .field_indexes()
                .into_iter()
                .map(|(field, field_type)| PayloadIndexInfo { field, field_type })
                .collect(),
            created_at: self.created_at,
        }
    }

    fn config(&self) -> IndexConfig {
        IndexConfig {
            dimension: self.spec.dimension,
            metric: self.spec.metric,
            hnsw: self.spec.hnsw,
            quantization: self.spec.quantization,
        }
    }
}

type Registry = HashMap<(String, String), Arc<Coll>>;

/// Vectors in the records database, searched through in-memory HNSW indexes
/// whose snapshots live under `dir`.
#[derive(Debug, Clone)]
pub struct EmbeddedVectors {
    db: SqliteDatabase,
    dir: PathBuf,
    colls: Arc<RwLock<Registry>>,
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

fn sql(e: rusqlite::Error) -> Error {
    map_sqlite_error(e)
}

fn encode_vector(v: &[f32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(v.len() * 4);
    for x in v {
        b.extend_from_slice(&x.to_le_bytes());
    }
    b
}

fn decode_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("collection {name:?}")).with_code("collection_not_found")
}

/// A row of `vector_points`.
struct Row {
    pid: String,
    vector: Vec<u8>,
    payload: Option<String>,
    ingested_at: i64,
    expires_at: Option<i64>,
}

impl Row {
    fn indexed(&self) -> Result<IndexedPoint> {
        Ok(IndexedPoint {
            id: PointId::from_storage_key(&self.pid)?,
            vector: decode_vector(&self.vector),
            payload: match &self.payload {
                Some(p) => Some(
                    serde_json::from_str(p)
                        .map_err(|e| Error::internal(format!("stored payload is not JSON: {e}")))?,
                ),
                None => None,
            },
            ingested_at: self.ingested_at,
            expires_at: self.expires_at,
        })
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        pid: r.get(0)?,
        vector: r.get(1)?,
        payload: r.get(2)?,
        ingested_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

const ROW_COLS: &str = "pid, vector, payload, ingested_at, expires_at";

impl EmbeddedVectors {
    /// Opens the store: loads every collection's snapshot (or rebuilds it
    /// from the rows) and replays the changes after it.
    pub async fn open(db: SqliteDatabase, dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::unavailable(format!("cannot create {}", dir.display())).with_source(e)
        })?;
        let store = EmbeddedVectors {
            db,
            dir,
            colls: Arc::new(RwLock::new(HashMap::new())),
        };
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.load_all())
            .await
            .map_err(|e| Error::internal(format!("loading vector indexes panicked: {e}")))??;
        // Points replayed at start are searchable already; link them into
        // the graphs in the background, then snapshot what was replayed.
        let s = store.clone();
        tokio::spawn(async move { s.link_all_pending().await });
        Ok(store)
    }

    /// Links every collection's unlinked points into its graph, a batch at a
    /// time on a blocking thread (inserts wait at most one batch), then
    /// snapshots the collections whose log is long.
    async fn link_all_pending(&self) {
        let colls: Vec<Arc<Coll>> = self.colls.read().values().cloned().collect();
        for c in colls {
            loop {
                let c2 = c.clone();
                match tokio::task::spawn_blocking(move || {
                    c2.index.link_pending(2_000, BUILD_THREADS)
                })
                .await
                {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(collection = %c.name, error = %e, "linking replayed points panicked");
                        break;
                    }
                }
            }
            self.maybe_snapshot(&c);
        }
    }

    /// Queues a snapshot of `c` in the background when its log since the
    /// last one passed [`snapshot_after`].
    fn maybe_snapshot(&self, c: &Arc<Coll>) {
        let live = c.index.len() as u64;
        if c.unsaved.load(Ordering::Acquire) < snapshot_after(live) {
            return;
        }
        if c.saving.swap(true, Ordering::AcqRel) {
            return;
        }
        let (store, c) = (self.clone(), c.clone());
        tokio::spawn(async move {
            if let Err(e) = store.save(&c).await {
                tracing::warn!(collection = %c.name, error = %e, "writing an index snapshot failed");
            }
            c.saving.store(false, Ordering::Release);
        });
    }

    fn snapshot_path(&self, id: i64) -> PathBuf {
        self.dir.join(format!("{id}.idx"))
    }

    fn load_all(&self) -> Result<()> {
        type Def = (
            i64,
            String,
            String,
            CollectionSpec,
            i64,
            Vec<(String, String)>,
        );
        let defs: Vec<Def> = self.db.read_blocking(|c| {
            let mut st = c
                .prepare(
                    "SELECT id, bot_id, name, dimension, metric, m, ef_construction, ef_search, quantization, created_at FROM vector_collections ORDER BY id",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, i64>(9)?,
                    ))
                })
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            let mut out = Vec::new();
            for (id, bot, name, dim, metric, m, efc, efs, q, created) in rows {
                let spec = CollectionSpec {
                    name: name.clone(),
                    dimension: dim as usize,
                    metric: Metric::parse(&metric)?,
                    hnsw: HnswParams {
                        m: m as usize,
                        ef_construction: efc as usize,
                        ef_search: efs as usize,
                    },
                    quantization: Quantization::parse(&q)?,
                };
                let mut st = c
                    .prepare_cached("SELECT field, type FROM vector_indexes WHERE collection_id = ?1 ORDER BY field")
                    .map_err(sql)?;
                let fields = st
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sql)?;
                out.push((id, bot, name, spec, created, fields));
            }
            Ok(out)
        })?;
        let known: HashSet<i64> = defs.iter().map(|d| d.0).collect();
        // Snapshots of collections that no longer exist.
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let p = e.path();
                let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                let stale = match stem.parse::<i64>() {
                    Ok(id) => !known.contains(&id),
                    Err(_) => p.extension().is_some_and(|x| x == "tmp"),
                };
                if stale {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        for (id, bot, name, spec, created, fields) in defs {
            let coll = self.load_one(id, bot.clone(), name.clone(), spec, created, fields)?;
            self.colls.write().insert((bot, name), Arc::new(coll));
        }
        Ok(())
    }

    fn load_one(
        &self,
        id: i64,
        bot: String,
        name: String,
        spec: CollectionSpec,
        created: i64,
        fields: Vec<(String, String)>,
    ) -> Result<Coll> {
        let cfg = IndexConfig {
            dimension: spec.dimension,
            metric: spec.metric,
            hnsw: spec.hnsw,
            quantization: spec.quantization,
        };
        let path = self.snapshot_path(id);
        let loaded = match crate::mmap::map(&path) {
            Ok(map) => match VectorIndex::read_snapshot(&map, cfg) {
                Ok(x) => Some(x),
                Err(e) => {
                    tracing::warn!(collection = %name, error = %e, "index snapshot unusable; rebuilding from the rows");
                    None
                }
            },
            Err(_) => None,
        };
        let (index, applied, saved, replayed) = match loaded {
            Some((index, seq)) => {
                let (applied, replayed) = self.replay(id, &index, seq)?;
                (index, applied, seq, replayed)
            }
            None => {
                let index = VectorIndex::new(cfg);
                let (seq, rows) = self.rebuild(id, &index)?;
                (index, seq, 0, rows)
            }
        };
        for (f, t) in fields {
            let t = FieldType::parse(&t)?;
            if !index
                .field_indexes()
                .iter()
                .any(|(x, y)| *x == f && *y == t)
            {
                index.create_field_index(&f, t);
            }
        }
        Ok(Coll {
            id,
            bot,
            name,
            spec,
            created_at: Timestamp::from_millis(created),
            index,
            write: tokio::sync::Mutex::new(()),
            applied: AtomicU64::new(applied),
            saved: AtomicU64::new(saved),
            unsaved: AtomicU64::new(replayed),
            saving: Default::default(),
            snapshot: tokio::sync::Mutex::new(()),
        })
    }

    /// Fills an empty index from every row (stored, not linked yet: the
    /// background linker builds the graph while searches already find
    /// every point); returns the log position it covers and the rows.
    fn rebuild(&self, id: i64, index: &VectorIndex) -> Result<(u64, u64)> {
        let (rows, seq) = self.db.read_snapshot_blocking(|c| {
            let seq = log_position(c)?;
            let mut st = c
                .prepare(&format!(
                    "SELECT {ROW_COLS} FROM vector_points WHERE collection_id = ?1"
                ))
                .map_err(sql)?;
            let rows = st
                .query_map([id], read_row)
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            Ok((rows, seq))
        })?;
        for chunk in rows.chunks(10_000) {
            let pts = chunk.iter().map(Row::indexed).collect::<Result<Vec<_>>>()?;
            index.insert_unlinked(pts);
        }
        Ok((seq, rows.len() as u64))
    }

    /// Applies the log after `from` to `index` — points stored unlinked, so
    /// a restart does not wait for the graph — and returns the position
    /// reached and how many points it replayed.
    fn replay(&self, id: i64, index: &VectorIndex, from: u64) -> Result<(u64, u64)> {
        let (rows, gone, seq) = self.db.read_snapshot_blocking(|c| {
            let seq = log_position(c)?;
            let mut st = c
                .prepare(
                    "SELECT DISTINCT pid FROM vector_log WHERE collection_id = ?1 AND seq > ?2",
                )
                .map_err(sql)?;
            let pids = st
                .query_map(params![id, from as i64], |r| r.get::<_, String>(0))
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            let mut get = c
                .prepare(&format!(
                    "SELECT {ROW_COLS} FROM vector_points WHERE collection_id = ?1 AND pid = ?2"
                ))
                .map_err(sql)?;
            let (mut rows, mut gone) = (Vec::new(), Vec::new());
            for pid in pids {
                match get
                    .query_row(params![id, pid], read_row)
                    .optional()
                    .map_err(sql)?
                {
                    Some(r) => rows.push(r),
                    None => gone.push(PointId::from_storage_key(&pid)?),
                }
            }
            Ok((rows, gone, seq))
        })?;
        if seq < from {
            // The log was reset under the snapshot: it cannot be trusted.
            return Err(Error::internal("index snapshot is newer than the log"));
        }
        index.delete(&gone);
        let replayed = (rows.len() + gone.len()) as u64;
        for chunk in rows.chunks(10_000) {
            let pts = chunk.iter().map(Row::indexed).collect::<Result<Vec<_>>>()?;
            index.insert_unlinked(pts);
        }
        Ok((seq, replayed))
    }

    fn coll(&self, bot: &BotId, name: &str) -> Result<Arc<Coll>> {
        self.colls
            .read()
            .get(&(bot.as_str().to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    fn bot_points(&self, bot: &BotId, now: i64) -> u64 {
        self.colls
            .read()
            .values()
            .filter(|c| c.bot == bot.as_str())
            .map(|c| c.index.count(None, now))
            .sum()
    }

    /// Writes one collection's snapshot if it changed since the last one.
    /// Writes wait only while the index is copied into the file's pages;
    /// the fsync and the rename happen after they resume. Skipped while
    /// replayed points are still being linked (the next round takes it).
    async fn save(&self, c: &Arc<Coll>) -> Result<()> {
        let _one = c.snapshot.lock().await;
        let path = self.snapshot_path(c.id);
        let tmp = path.with_extension("tmp");
        let (applied, file) = {
            let _w = c.write.lock().await;
            let applied = c.applied.load(Ordering::Acquire);
            if applied == c.saved.load(Ordering::Acquire) && path.exists() {
                return Ok(());
            }
            if c.index.pending_links() > 0 {
                return Ok(());
            }
            let (c2, tmp2) = (c.clone(), tmp.clone());
            let file = tokio::task::spawn_blocking(move || {
                write_unsynced(&tmp2, |w| c2.index.write_snapshot(w, applied))
            })
            .await
            .map_err(|e| Error::internal(format!("snapshot task panicked: {e}")))??;
            // Everything logged up to here is in this snapshot.
            c.unsaved.store(0, Ordering::Release);
            (applied, file)
        };
        let (tmp2, path2) = (tmp.clone(), path.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let io = |e: std::io::Error| {
                Error::unavailable(format!("cannot write {}", path2.display())).with_source(e)
            };
            file.sync_all().map_err(io)?;
            std::fs::rename(&tmp2, &path2).map_err(io)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("snapshot task panicked: {e}")))??;
        c.saved.store(applied, Ordering::Release);
        let id = c.id;
        self.db
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM vector_log WHERE collection_id = ?1 AND seq <= ?2",
                    params![id, applied as i64],
                )
                .map_err(sql)?;
                Ok(())
            })
            .await
    }

    /// Deletes `ids` under the collection's write lock (held by the caller).
    async fn delete_locked(
        &self,
        c: &Arc<Coll>,
        ids: Vec<PointId>,
        only_expired_at: Option<i64>,
    ) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let id = c.id;
        let keys: Vec<String> = ids.iter().map(PointId::storage_key).collect();
        let (n, seq) = self
            .db
            .write(move |conn| {
                let mut del = conn
                    .prepare_cached(
                        "DELETE FROM vector_points WHERE collection_id = ?1 AND pid = ?2 AND (?3 IS NULL OR expires_at <= ?3)",
                    )
                    .map_err(sql)?;
                let mut log = conn
                    .prepare_cached("INSERT INTO vector_log (collection_id, pid) VALUES (?1, ?2)")
                    .map_err(sql)?;
                let mut n = 0u64;
                for k in &keys {
                    let changed = del.execute(params![id, k, only_expired_at]).map_err(sql)?;
                    if changed > 0 {
                        log.execute(params![id, k]).map_err(sql)?;
                        n += 1;
                    }
                }
                Ok((n, conn.last_insert_rowid() as u64))
            })
            .await?;
        let gone: Vec<PointId> = match only_expired_at {
            None => ids,
            Some(t) => ids
                .into_iter()
                .filter(|i| !c.index.contains(i, t))
                .collect(),
        };
        c.index.delete(&gone);
        if n > 0 {
            c.applied.fetch_max(seq, Ordering::AcqRel);
            c.unsaved.fetch_add(n, Ordering::AcqRel);
            // Runs once the caller's write lock is released.
            self.maybe_snapshot(c);
        }
        Ok(n)
    }
}

/// The last `vector_log.seq` ever handed out (AUTOINCREMENT keeps it even
/// when the log is truncated).
fn log_position(c: &rusqlite::Connection) -> Result<u64> {
    let seq: Option<i64> = c
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    Ok(seq.unwrap_or(0).max(0) as u64)
}

/// Writes `tmp` through `f` into the page cache (no fsync yet); returns
/// the file for the caller to sync and rename.
fn write_unsynced(
    tmp: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<std::fs::File> {
    let io = |e: std::io::Error| {
        Error::unavailable(format!("cannot write {}", tmp.display())).with_source(e)
    };
    let file = std::fs::File::create(tmp).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    f(&mut w).map_err(io)?;
    w.into_inner().map_err(|e| io(e.into_error()))
}

fn validate_search(c: &Coll, r: &SearchRequest) -> Result<()> {
    if r.k == 0 || r.k > MAX_K {
        return Err(
            Error::invalid(format!("k must be 1..={MAX_K}, got {}", r.k)).with_code("invalid_k"),
        );
    }
    if let Some(ef) = r.ef {
        if ef == 0 || ef > 4096 {
            return Err(
                Error::invalid(format!("ef must be 1..=4096, got {ef}")).with_code("invalid_ef")
            );
        }
    }
    if r.score_threshold.is_some_and(|t| !t.is_finite()) {
        return Err(Error::invalid("score_threshold must be a finite number")
            .with_code("invalid_score_threshold"));
    }
    validate_vector(&r.vector, c.spec.dimension, c.spec.metric)
}

#[async_trait]
impl VectorStore for EmbeddedVectors {
    async fn create_collection(
        &self,
        bot: &BotId,
        spec: CollectionSpec,
        quota: VectorQuota,
    ) -> Result<CollectionInfo> {
        spec.validate()?;
        let key = (bot.as_str().to_owned(), spec.name.clone());
        if self.colls.read().contains_key(&key) {
            return Err(Error::already_exists(format!("collection {:?}", spec.name))
                .with_code("collection_exists"));
        }
        // Strata's own collections (knowledge base, memory) do not count
        // against the collection quota; their points count against the
        // points quota like any other.
        let have = self
            .colls
            .read()
            .values()
            .filter(|c| c.bot == bot.as_str() && !is_internal_collection(&c.name))
            .count() as u64;
        if !is_internal_collection(&spec.name) && have >= quota.max_collections {
            return Err(Error::new(
                strata_core::ErrorKind::QuotaExceeded,
                format!(
                    "the bot has {have} collections, its quota is {}",
                    quota.max_collections
                ),
            ));
        }
        let created = Timestamp::now();
        let (b, s) = (bot.as_str().to_owned(), spec.clone());
        let id = self
            .db
            .write(move |c| {
                c.execute(
                    "INSERT INTO vector_collections (bot_id, name, dimension, metric, m, ef_construction, ef_search, quantization, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        b,
                        s.name,
                        s.dimension as i64,
                        s.metric.as_str(),
                        s.hnsw.m as i64,
                        s.hnsw.ef_construction as i64,
                        s.hnsw.ef_search as i64,
                        s.quantization.as_str(),
                        created.as_millis()
                    ],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
                    {
                        Error::already_exists(format!("collection {:?}", s.name)).with_code("collection_exists")
                    }
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                    {
                        Error::not_found(format!("bot {b:?}"))
                    }
                    e => sql(e),
                })?;
                Ok(c.last_insert_rowid())
            })
            .await?;
        // A stale snapshot with this id (cannot happen with AUTOINCREMENT-like
        // rowids unless the table was emptied) must not be picked up.
        let _ = std::fs::remove_file(self.snapshot_path(id));
        let coll = Arc::new(Coll {
            id,
            bot: bot.as_str().to_owned(),
            name: spec.name.clone(),
            index: VectorIndex::new(IndexConfig {
                dimension: spec.dimension,
                metric: spec.metric,
                hnsw: spec.hnsw,
                quantization: spec.quantization,
            }),
            spec,
            created_at: created,
            write: tokio::sync::Mutex::new(()),
            applied: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            unsaved: AtomicU64::new(0),
            saving: Default::default(),
            snapshot: tokio::sync::Mutex::new(()),
        });
        let info = coll.info(now_ms());
        self.colls.write().insert(key, coll);
        Ok(info)
    }

    async fn list_collections(&self, bot: &BotId) -> Result<Vec<CollectionInfo>> {
        let now = now_ms();
        let mut v: Vec<CollectionInfo> = self
            .colls
            .read()
            .values()
            .filter(|c| c.bot == bot.as_str())
            .map(|c| c.info(now))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn get_collection(&self, bot: &BotId, name: &str) -> Result<CollectionInfo> {
        Ok(self.coll(bot, name)?.info(now_ms()))
    }

    async fn drop_collection(&self, bot: &BotId, name: &str) -> Result<()> {
        let c = self.coll(bot, name)?;
        let _w = c.write.lock().await;
        let id = c.id;
        self.db
            .write(move |conn| {
                conn.execute("DELETE FROM vector_log WHERE collection_id = ?1", [id])
                    .map_err(sql)?;
                conn.execute("DELETE FROM vector_collections WHERE id = ?1", [id])
                    .map_err(sql)?;
                Ok(())
            })
            .await?;
        self.colls
            .write()
            .remove(&(bot.as_str().to_owned(), name.to_owned()));
        let _ = std::fs::remove_file(self.snapshot_path(id));
        Ok(())
    }

    async fn drop_bot(&self, bot: &BotId) -> Result<()> {
        let names: Vec<String> = self
            .colls
            .read()
            .values()
            .filter(|c| c.bot == bot.as_str())
            .map(|c| c.name.clone())
            .collect();
        for n in names {
            match self.drop_collection(bot, &n).await {
                Ok(()) => {}
                Err(e) if e.kind() == strata_core::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn create_index(
        &self,
        bot: &BotId,
        name: &str,
        field: &str,
        field_type: FieldType,
    ) -> Result<CollectionInfo> {
        if field.is_empty()
            || field.chars().count() > MAX_FIELD_LEN
            || field.chars().any(|c| c.is_control())
        {
            return Err(Error::invalid(format!(
                "index field {field:?} is invalid: use 1-{MAX_FIELD_LEN} characters without control characters"
            ))
            .with_code("invalid_field"));
        }
        let c = self.coll(bot, name)?;
        let _w = c.write.lock().await;
        let (id, f) = (c.id, field.to_owned());
        self.db
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO vector_indexes (collection_id, field, type) VALUES (?1, ?2, ?3) ON CONFLICT (collection_id, field) DO UPDATE SET type = excluded.type",
                    params![id, f, field_type.as_str()],
                )
                .map_err(sql)?;
                Ok(())
            })
            .await?;
        let (c2, f) = (c.clone(), field.to_owned());
        tokio::task::spawn_blocking(move || c2.index.create_field_index(&f, field_type))
            .await
            .map_err(|e| Error::internal(format!("index build panicked: {e}")))?;
        // Snapshots carry the declared fields: make the next checkpoint write.
        c.saved.store(u64::MAX, Ordering::Release);
        Ok(c.info(now_ms()))
    }

    async fn upsert(
        &self,
        bot: &BotId,
        name: &str,
        points: Vec<PointInput>,
        quota: VectorQuota,
    ) -> Result<u64> {
        if points.len() > MAX_BATCH {
            return Err(Error::invalid(format!(
                "a batch holds at most {MAX_BATCH} points, got {}",
                points.len()
            ))
            .with_code("batch_too_large"));
        }
        let c = self.coll(bot, name)?;
        for (i, p) in points.iter().enumerate() {
            let at = |e: Error| {
                let code = e.code().to_owned();
                let msg = format!("points[{i}]: {}", e.message());
                Error::invalid(msg).with_code(static_code(&code))
            };
            p.id.validate().map_err(at)?;
            validate_vector(&p.vector, c.spec.dimension, c.spec.metric).map_err(at)?;
            if let Some(t) = p.ttl_seconds {
                if !(1..=MAX_TTL_SECONDS).contains(&t) {
                    return Err(Error::invalid(format!(
                        "points[{i}]: ttl_seconds must be 1..={MAX_TTL_SECONDS}, got {t}"
                    ))
                    .with_code("invalid_ttl"));
                }
            }
            if let Some(pl) = &p.payload {
                if !pl.is_object() {
                    return Err(Error::invalid(format!(
                        "points[{i}]: payload must be a JSON object"
                    ))
                    .with_code("invalid_payload"));
                }
            }
        }
        if points.is_empty() {
            return Ok(0);
        }
        let _w = c.write.lock().await;
        let now = now_ms();
        let fresh: HashSet<&PointId> = points
            .iter()
            .map(|p| &p.id)
            .filter(|id| !c.index.contains(id, i64::MIN))
            .collect();
        let have = self.bot_points(bot, now);
        if have + fresh.len() as u64 > quota.max_points {
            return Err(Error::new(
                strata_core::ErrorKind::QuotaExceeded,
                format!(
                    "the bot holds {have} points; {} more would pass its quota of {}",
                    fresh.len(),
                    quota.max_points
                ),
            ));
        }
        let rows: Vec<(String, Vec<u8>, Option<String>, Option<i64>)> = points
            .iter()
            .map(|p| {
                (
                    p.id.storage_key(),
                    encode_vector(&p.vector),
                    p.payload.as_ref().map(Value::to_string),
                    p.ttl_seconds.map(|t| now + t * 1000),
                )
            })
            .collect();
        let id = c.id;
        let seq = self
            .db
            .write(move |conn| {
                let mut up = conn
                    .prepare_cached(
                        "INSERT INTO vector_points (collection_id, pid, vector, payload, ingested_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (collection_id, pid) DO UPDATE SET vector = excluded.vector, payload = excluded.payload, ingested_at = excluded.ingested_at, expires_at = excluded.expires_at",
                    )
                    .map_err(sql)?;
                let mut log = conn
                    .prepare_cached("INSERT INTO vector_log (collection_id, pid) VALUES (?1, ?2)")
                    .map_err(sql)?;
                for (pid, v, pl, exp) in &rows {
                    up.execute(params![id, pid, v, pl, now, exp]).map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _)
                            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                        {
                            not_found("(dropped)")
                        }
                        e => sql(e),
                    })?;
                    log.execute(params![id, pid]).map_err(sql)?;
                }
                Ok(conn.last_insert_rowid() as u64)
            })
            .await?;
        let n = points.len() as u64;
        let pts: Vec<IndexedPoint> = points
            .into_iter()
            .map(|p| IndexedPoint {
                expires_at: p.ttl_seconds.map(|t| now + t * 1000),
                id: p.id,
                vector: p.vector,
                payload: p.payload,
                ingested_at: now,
            })
            .collect();
        let c2 = c.clone();
        tokio::task::spawn_blocking(move || c2.index.upsert_batch(pts, BUILD_THREADS))
            .await
            .map_err(|e| Error::internal(format!("index insert panicked: {e}")))?;
        c.applied.fetch_max(seq, Ordering::AcqRel);
        c.unsaved.fetch_add(n, Ordering::AcqRel);
        drop(_w);
        self.maybe_snapshot(&c);
        Ok(n)
    }

    async fn get_point(
        &self,
        bot: &BotId,
        name: &str,
        id: &PointId,
        with_vector: bool,
    ) -> Result<Point> {
        id.validate()?;
        let c = self.coll(bot, name)?;
        let (cid, key) = (c.id, id.storage_key());
        let row = self
            .db
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {ROW_COLS} FROM vector_points WHERE collection_id = ?1 AND pid = ?2"
                ))
                .map_err(sql)?
                .query_row(params![cid, key], read_row)
                .optional()
                .map_err(sql)
            })
            .await?;
        let now = now_ms();
        match row {
            Some(r) if r.expires_at.is_none_or(|e| e > now) => {
                let p = r.indexed()?;
                Ok(Point {
                    id: p.id,
                    vector: with_vector.then_some(p.vector),
                    payload: p.payload,
                    ingested_at: Timestamp::from_millis(p.ingested_at),
                    expires_at: p.expires_at.map(Timestamp::from_millis),
                })
            }
            _ => Err(Error::not_found(format!("point {id}")).with_code("point_not_found")),
        }
    }

    async fn delete_points(&self, bot: &BotId, name: &str, sel: PointSelector) -> Result<u64> {
        let c = self.coll(bot, name)?;
        let _w = c.write.lock().await;
        let ids = match sel {
            PointSelector::Ids(ids) => {
                if ids.len() > MAX_BATCH {
                    return Err(
                        Error::invalid(format!("at most {MAX_BATCH} ids per delete"))
                            .with_code("batch_too_large"),
                    );
                }
                for i in &ids {
                    i.validate()?;
                }
                ids
            }
            PointSelector::Filter(f) => c.index.matching_ids(Some(&f), now_ms()),
        };
        let mut total = 0;
        for chunk in ids.chunks(MAX_BATCH) {
            total += self.delete_locked(&c, chunk.to_vec(), None).await?;
        }
        Ok(total)
    }

    async fn scroll(&self, bot: &BotId, name: &str, req: ScrollRequest) -> Result<ScrollPage> {
        let c = self.coll(bot, name)?;
        let limit = req.limit.clamp(1, 1000);
        let now = now_ms();
        // `from` is inclusive (the first query only), `after` exclusive.
        let mut inclusive = req.from.is_some();
        let mut after = match (&req.from, &req.after) {
            (Some(from), _) => from.storage_key(),
            (None, Some(a)) => a.storage_key(),
            (None, None) => String::new(),
        };
        let mut points = Vec::new();
        let cid = c.id;
        loop {
            let after_key = after.clone();
            let first_inclusive = std::mem::take(&mut inclusive);
            let batch = self.db.read(move |conn| {
                let after = after_key;
                let op = if first_inclusive { ">=" } else { ">" };
                conn.prepare_cached(&format!(
                    "SELECT {ROW_COLS} FROM vector_points WHERE collection_id = ?1 AND pid {op} ?2 AND (expires_at IS NULL OR expires_at > ?3) ORDER BY pid LIMIT ?4"
                ))
                .map_err(sql)?
                .query_map(params![cid, after, now, (limit * 2) as i64], read_row)
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)
            }).await?;
            let exhausted = batch.len() < limit * 2;
            for r in batch {
                after = r.pid.clone();
                let p = r.indexed()?;
                if let Some(f) = &req.filter {
                    let id = p.id.clone();
                    if !f.matches_point(p.payload.as_ref(), p.ingested_at, &|| Some(id.clone())) {
                        continue;
                    }
                }
                points.push(Point {
                    id: p.id,
                    vector: req.with_vector.then_some(p.vector),
                    payload: p.payload,
                    ingested_at: Timestamp::from_millis(p.ingested_at),
                    expires_at: p.expires_at.map(Timestamp::from_millis),
                });
                if points.len() == limit {
                    let next = points.last().map(|p| p.id.clone());
                    return Ok(ScrollPage { points, next });
                }
            }
            if exhausted {
                return Ok(ScrollPage { points, next: None });
            }
        }
    }

    async fn count(&self, bot: &BotId, name: &str, filter: Option<Filter>) -> Result<u64> {
        let c = self.coll(bot, name)?;
        Ok(c.index.count(filter.as_ref(), now_ms()))
    }

    async fn search(
        &self,
        bot: &BotId,
        name: &str,
        req: SearchRequest,
    ) -> Result<Vec<ScoredPoint>> {
        let c = self.coll(bot, name)?;
        validate_search(&c, &req)?;
        self.run_search(&c, req).await
    }

    async fn search_batch(
        &self,
        bot: &BotId,
        name: &str,
        reqs: Vec<SearchRequest>,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        let c = self.coll(bot, name)?;
        if reqs.len() > 100 {
            return Err(Error::invalid(format!(
                "at most 100 searches per batch, got {}",
                reqs.len()
            ))
            .with_code("batch_too_large"));
        }
        for (i, r) in reqs.iter().enumerate() {
            validate_search(&c, r).map_err(|e| {
                let code = e.code().to_owned();
                Error::invalid(format!("searches[{i}]: {}", e.message()))
                    .with_code(static_code(&code))
            })?;
        }
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.run_search(&c, r).await?);
        }
        Ok(out)
    }

    async fn purge_expired(&self) -> Result<u64> {
        let colls: Vec<Arc<Coll>> = self.colls.read().values().cloned().collect();
        let mut n = 0;
        for c in colls {
            let now = now_ms();
            let ids = c.index.expired_ids(now);
            if ids.is_empty() {
                continue;
            }
            let _w = c.write.lock().await;
            for chunk in ids.chunks(MAX_BATCH) {
                n += self.delete_locked(&c, chunk.to_vec(), Some(now)).await?;
            }
        }
        Ok(n)
    }

    async fn checkpoint(&self) -> Result<()> {
        let colls: Vec<Arc<Coll>> = self.colls.read().values().cloned().collect();
        for c in colls {
            if let Err(e) = self.save(&c).await {
                tracing::warn!(collection = %c.name, error = %e, "writing the index snapshot failed");
                return Err(e);
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.db
            .read(|c| {
                c.query_row("SELECT 1 FROM vector_collections LIMIT 1", [], |_| Ok(()))
                    .optional()
                    .map_err(sql)?;
                Ok(())
            })
            .await
    }
}

impl EmbeddedVectors {
    async fn run_search(&self, c: &Coll, req: SearchRequest) -> Result<Vec<ScoredPoint>> {
        let ef = req.ef.unwrap_or(c.spec.hnsw.ef_search);
        let (mut hits, _) = c.index.search_full(
            &req.vector,
            req.k,
            ef,
            req.filter.as_ref(),
            now_ms(),
            req.score_threshold,
            req.with_payload,
        );
        if req.with_vector && !hits.is_empty() {
            let cid = c.id;
            let keys: Vec<String> = hits.iter().map(|h| h.id.storage_key()).collect();
            let vectors = self
                .db
                .read(move |conn| {
                    let mut st = conn
                        .prepare_cached(
                            "SELECT vector FROM vector_points WHERE collection_id = ?1 AND pid = ?2",
                        )
                        .map_err(sql)?;
                    keys.iter()
                        .map(|k| {
                            st.query_row(params![cid, k], |r| r.get::<_, Vec<u8>>(0))
                                .optional()
                                .map_err(sql)
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .await?;
            for (h, v) in hits.iter_mut().zip(vectors) {
                h.vector = v.map(|b| decode_vector(&b));
            }
        }
        Ok(hits)
    }

    /// The collection's index configuration (for tests and tools).
    pub fn index_config(&self, bot: &BotId, name: &str) -> Result<IndexConfig> {
        Ok(self.coll(bot, name)?.config())
    }

    /// What a restart of a collection would redo now: log entries written
    /// since its last snapshot began, and points stored but not linked into
    /// its graph yet (tests and metrics).
    pub fn restart_backlog(&self, bot: &BotId, name: &str) -> Result<(u64, usize)> {
        let c = self.coll(bot, name)?;
        Ok((c.unsaved.load(Ordering::Acquire), c.index.pending_links()))
    }

    /// Whether a size-triggered snapshot of the collection is queued or
    /// being written (tests).
    pub fn snapshot_running(&self, bot: &BotId, name: &str) -> Result<bool> {
        let c = self.coll(bot, name)?;
        Ok(c.saving.load(Ordering::Acquire))
    }

    /// Points in the index and in the rows of a collection, for consistency
    /// checks: (index ids, row ids), both sorted.
    pub async fn consistency(
        &self,
        bot: &BotId,
        name: &str,
    ) -> Result<(Vec<PointId>, Vec<PointId>)> {
        let c = self.coll(bot, name)?;
        let mut in_index = c.index.matching_ids(None, i64::MIN);
        in_index.sort();
        let cid = c.id;
        let keys: Vec<String> = self
            .db
            .read(move |conn| {
                conn.prepare("SELECT pid FROM vector_points WHERE collection_id = ?1 ORDER BY pid")
                    .map_err(sql)?
                    .query_map([cid], |r| r.get(0))
                    .map_err(sql)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sql)
            })
            .await?;
        let mut rows = keys
            .iter()
            .map(|k| PointId::from_storage_key(k))
            .collect::<Result<Vec<_>>>()?;
        rows.sort();
        Ok((in_index, rows))
    }
}

/// Error codes are `&'static str`; map a dynamic one back to its constant.
fn static_code(code: &str) -> &'static str {
    match code {
        "dimension_mismatch" => "dimension_mismatch",
        "invalid_vector" => "invalid_vector",
        "zero_vector" => "zero_vector",
        "invalid_point_id" => "invalid_point_id",
        "invalid_k" => "invalid_k",
        "invalid_ef" => "invalid_ef",
        "invalid_score_threshold" => "invalid_score_threshold",
        _ => "invalid_input",
    }
}
