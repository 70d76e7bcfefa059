//! Opening a SQLite database the way Strata needs it.
//!
//! - **WAL journal**, so readers never block the writer.
//! - **One writer thread with group commit.** SQLite allows one writer at a
//!   time anyway. Every write is a closure sent to a dedicated thread that owns
//!   the only read-write connection; the thread takes every write waiting in
//!   its queue, runs each inside its own `SAVEPOINT` of one `BEGIN IMMEDIATE`
//!   transaction, commits once, and only then answers each caller. A failing
//!   write rolls back to its savepoint and affects no other. Under load many
//!   writes share one commit; alone, a write commits by itself.
//! - **Read-only connections** in a small pool; a read runs on one of
//!   tokio's blocking threads with a pooled connection (SQLite calls block,
//!   so they never run on an async worker; reads never wait for the writer
//!   in WAL mode).
//! - **Durability.** `synchronous = NORMAL` by default: in WAL mode a committed
//!   transaction is in the WAL file before the caller is answered, so it
//!   survives the process being killed; only an OS crash or power loss can drop
//!   the last commits. [`Durability::Fsync`] (`synchronous = FULL`) fsyncs the
//!   WAL on every commit and survives power loss too.
//! - **Versioned migrations** from `migrations/`, applied at open in one
//!   transaction each; the version is SQLite's `user_version`.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_core::{Error, ErrorKind, Result};

/// How far an acknowledged write is guaranteed to survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of the process (WAL, `synchronous = NORMAL`).
    #[default]
    Process,
    /// Survives power loss (WAL, `synchronous = FULL`: fsync on every commit).
    Fsync,
}

impl FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "process" | "normal" => Ok(Durability::Process),
            "fsync" | "full" => Ok(Durability::Fsync),
            other => Err(Error::invalid(format!(
                "durability {other:?} is unknown: expected \"process\" or \"fsync\""
            ))),
        }
    }
}

/// Settings of a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// How long a statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// Idle read-only connections kept for reuse.
    pub max_idle_readers: usize,
    /// Most writes committed together in one transaction.
    pub max_group_commit: usize,
    /// Below this many free bytes on the database's file system the
    /// database reports that it cannot write ([`SqliteDatabase::write_health`]).
    pub min_free_bytes: u64,
}

/// Default [`SqliteOptions::min_free_bytes`]: 16 MiB.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 16 << 20;

/// Free bytes (for an unprivileged writer) on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Process,
            busy_timeout: Duration::from_secs(5),
            max_idle_readers: 16,
            max_group_commit: 256,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

/// One schema migration: applied once, in order, in its own transaction.
/// An applied migration is never edited: its SHA-256 is recorded in
/// `schema_migrations` and checked at every open, and a database whose
/// recorded checksum differs from this build's file is refused. Fixes go
/// into a new migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1-based; `user_version` counts how many are applied.
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_foundation",
        sql: include_str!("../../migrations/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "0002_vectors",
        sql: include_str!("../../migrations/0002_vectors.sql"),
    },
    Migration {
        version: 3,
        name: "0003_drive",
        sql: include_str!("../../migrations/0003_drive.sql"),
    },
    Migration {
        version: 4,
        name: "0004_kb",
        sql: include_str!("../../migrations/0004_kb.sql"),
    },
    Migration {
        version: 5,
        name: "0005_memory",
        sql: include_str!("../../migrations/0005_memory.sql"),
    },
    Migration {
        version: 6,
        name: "0006_memory_case",
        sql: include_str!("../../migrations/0006_memory_case.sql"),
    },
    Migration {
        version: 7,
        name: "0007_hardening",
        sql: include_str!("../../migrations/0007_hardening.sql"),
    },
    Migration {
        version: 8,
        name: "0008_kb_context",
        sql: include_str!("../../migrations/0008_kb_context.sql"),
    },
];

/// The hex SHA-256 of a migration's SQL, as recorded in `schema_migrations`.
pub fn migration_checksum(sql: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(sql.as_bytes()))
}

type Completion = Box<dyn FnOnce(Option<&str>) + Send>;
type WriteJob = Box<dyn FnOnce(&Connection) -> Completion + Send>;

enum Command {
    Write(WriteJob),
    Close(tokio::sync::oneshot::Sender<()>),
}

/// An open SQLite database: a writer thread, a pool of readers, migrated.
#[derive(Clone)]
pub struct SqliteDatabase {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    opts: SqliteOptions,
    writer: Mutex<Option<mpsc::Sender<Command>>>,
    readers: Mutex<Vec<Connection>>,
    /// Reader threads with a connection each, for `read`.
    pool: ReadPool,
    /// Whether the last writes succeeded (readiness).
    write_health: strata_core::worker::WriteHealth,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection, opts: &SqliteOptions) -> rusqlite::Result<()> {
    conn.busy_timeout(opts.busy_timeout)?;
    let sync = match opts.durability {
        Durability::Process => "NORMAL",
        Durability::Fsync => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;"
    ))?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    migrate_with(conn, path, MIGRATIONS)
}

/// Checks the recorded checksums of the applied migrations, then applies
/// the pending ones. Databases from before checksums were recorded get the
/// checksums of this build's files for what they already applied.
pub(crate) fn migrate_with(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            sha256     TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(map_sqlite_error)?;
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_sqlite_error)?;
    if applied as usize > migrations.len() {
        return Err(Error::new(
            ErrorKind::Internal,
            format!(
                "{} was written by a newer Strata (schema version {applied}, this build knows {})",
                path.display(),
                migrations.len()
            ),
        )
        .with_code("schema_too_new"));
    }
    let now = strata_core::Timestamp::now().as_millis();
    for m in &migrations[..applied as usize] {
        let want = migration_checksum(m.sql);
        let recorded: Option<String> = conn
            .query_row(
                "SELECT sha256 FROM schema_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_sqlite_error)?;
        match recorded {
            None => {
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![m.version, m.name, want, now],
                )
                .map_err(map_sqlite_error)?;
            }
            Some(got) if got != want => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!(
                        "migration {} applied to {} does not match this build's (recorded sha256 {got}, this build's {want}): an applied migration was changed; refusing to start",
                        m.name,
                        path.display()
                    ),
                )
                .with_code("migration_changed"));
            }
            Some(_) => {}
        }
    }
    for m in migrations.iter().skip(applied as usize) {
        let tx = conn.transaction().map_err(map_sqlite_error)?;
        tx.execute_batch(m.sql)
            .and_then(|_| {
                tx.execute(
                    "INSERT OR REPLACE INTO schema_migrations (version, name, sha256, applied_at) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![m.version, m.name, migration_checksum(m.sql), now],
                )
            })
            .and_then(|_| tx.execute_batch(&format!("PRAGMA user_version = {}", m.version)))
            .and_then(|_| tx.commit())
            .map_err(|e| {
                Error::internal(format!("migration {} failed on {}", m.name, path.display()))
                    .with_source(e)
            })?;
        tracing::info!(migration = m.name, "applied migration");
    }
    Ok(())
}

impl SqliteDatabase {
    /// Opens (creating if needed) the database file at `path` and applies
    /// pending migrations.
    pub async fn open(path: &Path, opts: &SqliteOptions) -> Result<Self> {
        let path_buf = path.to_owned();
        let o = opts.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = Connection::open(&path_buf).map_err(|e| open_error(&path_buf, e))?;
            conn.execute_batch("PRAGMA journal_mode = WAL;")
                .map_err(|e| open_error(&path_buf, e))?;
            configure(&conn, &o).map_err(|e| open_error(&path_buf, e))?;
            migrate(&mut conn, &path_buf)?;
            Ok(conn)
        })
        .await
        .map_err(|e| Error::internal("opening the database panicked").with_source(e))??;

        let checkpointer = {
            let c = Connection::open(path).map_err(|e| open_error(path, e))?;
            configure(&c, opts).map_err(map_sqlite_error)?;
            c
        };
        let (stop_checkpoints, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("strata-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, stop_rx))
            .map_err(|e| {
                Error::internal("cannot start the SQLite checkpoint thread").with_source(e)
            })?;
        let (tx, rx) = mpsc::channel::<Command>();
        let max_group = opts.max_group_commit.max(1);
        std::thread::Builder::new()
            .name("strata-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, max_group, stop_checkpoints))
            .map_err(|e| Error::internal("cannot start the SQLite writer thread").with_source(e))?;
        Ok(SqliteDatabase {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                opts: opts.clone(),
                writer: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                pool: ReadPool::start(path, opts),
                write_health: Default::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read-only connection, on tokio's blocking threads
    /// (never on an async worker: SQLite calls block). Each statement sees
    /// everything committed before it started; use
    /// [`read_snapshot`](Self::read_snapshot) when several statements must
    /// see the same state.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: ReadJob = Box::new(move |conn: &Connection| {
            let _ = tx.send(f(conn));
        });
        // A reader thread of the pool when one is idle (its connection and
        // prepared statements stay warm, and a handful of threads serve
        // any number of concurrent reads); else tokio's blocking pool, so a
        // few long reads never hold up the short ones.
        if let Err(job) = self.inner.pool.try_dispatch(job) {
            let db = self.clone();
            tokio::task::spawn_blocking(move || {
                db.read_blocking(|c| {
                    job(c);
                    Ok(())
                })
            })
            .await
            .map_err(|e| Error::internal("a database read panicked").with_source(e))??;
        }
        rx.await
            .map_err(|_| Error::internal("a database read panicked"))?
    }

    /// Like [`read`](Self::read), inside one read transaction: every
    /// statement of `f` sees the same snapshot.
    pub async fn read_snapshot<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.read(move |c| {
            c.execute_batch("BEGIN DEFERRED")
                .map_err(map_sqlite_error)?;
            let result = f(c);
            c.execute_batch("COMMIT").map_err(map_sqlite_error)?;
            result
        })
        .await
    }

    /// Runs `f` on a read-only connection on the calling thread: only for
    /// code that already runs on a blocking thread.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.inner.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(|e| open_error(&self.inner.path, e))?;
                configure(&c, &self.inner.opts).map_err(map_sqlite_error)?;
                c
            }
        };
        let result = f(&conn);
        // A connection left inside a transaction is not reused.
        if conn.is_autocommit() {
            if let Ok(mut idle) = self.inner.readers.lock() {
                if idle.len() < self.inner.opts.max_idle_readers {
                    idle.push(conn);
                }
            }
        }
        result
    }

    /// [`read_snapshot`](Self::read_snapshot) on the calling thread.
    pub fn read_snapshot_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read_blocking(|c| {
            c.execute_batch("BEGIN DEFERRED")
                .map_err(map_sqlite_error)?;
            let result = f(c);
            c.execute_batch("COMMIT").map_err(map_sqlite_error)?;
            result
        })
    }

    /// Runs `f` on the writer connection inside its own savepoint of a group
    /// transaction and answers after that transaction committed. If `f`
    /// returns an error, its changes are rolled back and nothing else is
    /// affected.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: WriteJob = Box::new(move |conn: &Connection| {
            let result = run_in_savepoint(conn, f);
            Box::new(move |commit_error: Option<&str>| {
                let out = match (result, commit_error) {
                    (Ok(v), None) => Ok(v),
                    (Ok(_), Some(msg)) => Err(Error::unavailable(format!("commit failed: {msg}"))),
                    (Err(e), _) => Err(e),
                };
                let _ = tx.send(out);
            }) as Completion
        });
        {
            let guard = self
                .inner
                .writer
                .lock()
                .map_err(|_| Error::internal("writer handle poisoned"))?;
            let sender = guard
                .as_ref()
                .ok_or_else(|| Error::unavailable("the database is closed"))?;
            sender
                .send(Command::Write(job))
                .map_err(|_| Error::unavailable("the database writer has stopped"))?;
        }
        let out = rx
            .await
            .map_err(|_| Error::unavailable("the database writer stopped before answering"))?;
        match &out {
            Ok(_) => self.inner.write_health.succeeded(),
            // Disk full, I/O errors, a read-only file system, a commit
            // that failed: the database cannot write.
            Err(e) if e.kind() == ErrorKind::Unavailable => self.inner.write_health.failed(e),
            Err(_) => {}
        }
        out
    }

    /// Whether the database can write now: its file system has at least
    /// [`SqliteOptions::min_free_bytes`] free, and its last write did not
    /// fail — or, when it did, a small probe write succeeds now.
    pub async fn write_health(&self) -> Result<()> {
        let dir = self
            .inner
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Ok(free) = free_bytes(dir) {
            if free < self.inner.opts.min_free_bytes {
                return Err(Error::unavailable(format!(
                    "cannot write: {free} bytes free on the file system of {} (at least {} needed)",
                    self.inner.path.display(),
                    self.inner.opts.min_free_bytes
                ))
                .with_code("disk_full"));
            }
        }
        if let Some((at, why)) = self.inner.write_health.failure() {
            // Probe: a tiny write through the same path as every other.
            let probe = self
                .write(|c| {
                    c.execute(
                        "INSERT INTO server_meta (key, value) VALUES ('ready_probe', ?1)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [strata_core::Timestamp::now().as_millis().to_string()],
                    )
                    .map_err(map_sqlite_error)?;
                    Ok(())
                })
                .await;
            if probe.is_err() {
                return Err(Error::unavailable(format!(
                    "cannot write: the last write failed at {at}: {why}"
                ))
                .with_code("cannot_write"));
            }
        }
        Ok(())
    }

    /// Waits for queued writes, checkpoints the WAL and stops the writer.
    pub async fn close(&self) {
        let sender = self.inner.writer.lock().ok().and_then(|mut g| g.take());
        if let Some(sender) = sender {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if sender.send(Command::Close(tx)).is_ok() {
                let _ = rx.await;
            }
        }
        if let Ok(mut idle) = self.inner.readers.lock() {
            idle.clear();
        }
        self.inner.pool.stop();
    }
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A few reader threads, each with its own read-only connection.
struct ReadPool {
    tx: Mutex<Option<crossbeam_channel::Sender<ReadJob>>>,
    /// Threads waiting for a job.
    idle: Arc<std::sync::atomic::AtomicUsize>,
}

impl ReadPool {
    /// Two reader threads per core, at least 2, at most 16.
    fn threads() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(4)
            .clamp(2, 16)
    }

    fn start(path: &Path, opts: &SqliteOptions) -> ReadPool {
        let (tx, rx) = crossbeam_channel::unbounded::<ReadJob>();
        let idle = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for i in 0..Self::threads() {
            let (rx, idle, path, opts) = (rx.clone(), idle.clone(), path.to_owned(), opts.clone());
            let started = std::thread::Builder::new()
                .name(format!("strata-sqlite-reader-{i}"))
                .spawn(move || reader_loop(rx, idle, path, opts));
            if let Err(e) = started {
                tracing::warn!(error = %e, "cannot start a SQLite reader thread; reads use the blocking pool");
            }
        }
        ReadPool {
            tx: Mutex::new(Some(tx)),
            idle,
        }
    }

    /// Hands `job` to an idle reader thread, or gives it back when none is.
    fn try_dispatch(&self, job: ReadJob) -> std::result::Result<(), ReadJob> {
        use std::sync::atomic::Ordering;
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !claimed {
            return Err(job);
        }
        let guard = match self.tx.lock() {
            Ok(g) => g,
            Err(_) => {
                self.idle.fetch_add(1, Ordering::AcqRel);
                return Err(job);
            }
        };
        match guard.as_ref() {
            Some(tx) => tx.send(job).map_err(|e| {
                self.idle.fetch_add(1, Ordering::AcqRel);
                e.into_inner()
            }),
            None => {
                self.idle.fetch_add(1, Ordering::AcqRel);
                Err(job)
            }
        }
    }

    /// Lets the reader threads finish (they exit once the channel closes).
    fn stop(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
    }
}

impl Drop for ReadPool {
    fn drop(&mut self) {
        self.stop();
    }
}

fn reader_loop(
    rx: crossbeam_channel::Receiver<ReadJob>,
    idle: Arc<std::sync::atomic::AtomicUsize>,
    path: PathBuf,
    opts: SqliteOptions,
) {
    use std::sync::atomic::Ordering;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .and_then(|c| configure(&c, &opts).map(|_| c));
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "a SQLite reader thread cannot open its connection");
            return;
        }
    };
    idle.fetch_add(1, Ordering::AcqRel);
    while let Ok(job) = rx.recv() {
        // A job that panics is the caller's error (its channel closes);
        // the thread and its connection go on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
        if !conn.is_autocommit() {
            // A read left a transaction open: end it before the next one.
            let _ = conn.execute_batch("ROLLBACK");
        }
        idle.fetch_add(1, Ordering::AcqRel);
    }
}

fn run_in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT strata_write")
        .map_err(map_sqlite_error)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE strata_write")
                .map_err(map_sqlite_error)?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO strata_write; RELEASE strata_write");
            Err(e)
        }
    }
}

/// How often the checkpoint thread copies committed WAL frames into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Checkpoints the WAL on its own connection, so the writer thread never
/// spends its time copying pages into the database file. `PASSIVE` never
/// blocks the writer or readers; the WAL restarts from its beginning once a
/// checkpoint has caught up.
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
            _ => return,
        }
    }
}

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Command>,
    max_group: usize,
    stop_checkpoints: mpsc::Sender<()>,
) {
    let mut pending: Vec<WriteJob> = Vec::new();
    loop {
        let first = match rx.recv() {
            Ok(c) => c,
            Err(_) => break,
        };
        let mut close = None;
        match first {
            Command::Write(j) => pending.push(j),
            Command::Close(t) => close = Some(t),
        }
        while close.is_none() && pending.len() < max_group {
            match rx.try_recv() {
                Ok(Command::Write(j)) => pending.push(j),
                Ok(Command::Close(t)) => close = Some(t),
                Err(_) => break,
            }
        }
        if !pending.is_empty() {
            commit_group(&conn, std::mem::take(&mut pending));
        }
        if let Some(done) = close {
            let _ = stop_checkpoints.send(());
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

fn commit_group(conn: &Connection, jobs: Vec<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unrun answers each caller with `Unavailable`.
        tracing::error!(error = %e, jobs = jobs.len(), "cannot begin a write transaction");
        return;
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
    for job in jobs {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))) {
            Ok(c) => completions.push(c),
            Err(_) => {
                // The job's caller sees its channel dropped; undo its changes.
                tracing::error!("a write panicked; its changes are rolled back");
                let _ = conn.execute_batch("ROLLBACK TO strata_write; RELEASE strata_write");
            }
        }
    }
    let commit = conn.execute_batch("COMMIT");
    let err = commit.as_ref().err().map(|e| e.to_string());
    if err.is_some() {
        let _ = conn.execute_batch("ROLLBACK");
        tracing::error!(error = ?err, "group commit failed");
    }
    for c in completions {
        c(err.as_deref());
    }
}

fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("cannot open SQLite database {}", path.display()),
    )
    .with_source(e)
}

/// Maps a driver error into Strata's error at this crate's boundary.
pub fn map_sqlite_error(e: rusqlite::Error) -> Error {
    use rusqlite::ffi::ErrorCode;
    let mapped = match &e {
        rusqlite::Error::QueryReturnedNoRows => Error::new(ErrorKind::NotFound, "row not found"),
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => match f.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    Error::new(ErrorKind::NotFound, "a referenced row does not exist")
                }
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Error::new(
                    ErrorKind::AlreadyExists,
                    "a row with this identity already exists",
                ),
                _ => Error::invalid("the write violates a constraint"),
            },
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                Error::unavailable("the database is busy")
            }
            ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::ReadOnly => Error::unavailable("the records database is unavailable"),
            _ => Error::internal("records database error"),
        },
        _ => Error::internal("records database error"),
    };
    mapped.with_source(e)
}
