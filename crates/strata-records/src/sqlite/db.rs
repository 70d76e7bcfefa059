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
//! - **Read-only connections** in a small pool; a read runs on the calling
//!   thread with a pooled connection (reads are short and never wait for the
//!   writer in WAL mode).
//! - **Durability.** `synchronous = NORMAL` by default: in WAL mode a committed
//!   transaction is in the WAL file before the caller is answered, so it
//!   survives the process being killed; only an OS crash or power loss can drop
//!   the last commits. [`Durability::Fsync`] (`synchronous = FULL`) fsyncs the
//!   WAL on every commit and survives power loss too.
//! - **Versioned migrations** from `migrations/`, applied at open in one
//!   transaction each; the version is SQLite's `user_version`.

use rusqlite::{Connection, OpenFlags};
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
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Process,
            busy_timeout: Duration::from_secs(5),
            max_idle_readers: 16,
            max_group_commit: 256,
        }
    }
}

/// The migrations, in order; `user_version` counts how many are applied.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_foundation",
        include_str!("../../migrations/0001_foundation.sql"),
    ),
    (
        "0002_vectors",
        include_str!("../../migrations/0002_vectors.sql"),
    ),
    (
        "0003_drive",
        include_str!("../../migrations/0003_drive.sql"),
    ),
    ("0004_kb", include_str!("../../migrations/0004_kb.sql")),
    (
        "0005_memory",
        include_str!("../../migrations/0005_memory.sql"),
    ),
];

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
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_sqlite_error)?;
    if applied as usize > MIGRATIONS.len() {
        return Err(Error::new(
            ErrorKind::Internal,
            format!(
                "{} was written by a newer Strata (schema version {applied}, this build knows {})",
                path.display(),
                MIGRATIONS.len()
            ),
        ));
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction().map_err(map_sqlite_error)?;
        tx.execute_batch(sql)
            .and_then(|_| tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)))
            .and_then(|_| tx.commit())
            .map_err(|e| {
                Error::internal(format!("migration {name} failed on {}", path.display()))
                    .with_source(e)
            })?;
        tracing::info!(migration = name, "applied migration");
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
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read-only connection. Each statement sees everything
    /// committed before it started; use [`read_snapshot`](Self::read_snapshot)
    /// when several statements must see the same state.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
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

    /// Runs `f` on a read-only connection inside one read transaction: every
    /// statement of `f` sees the same snapshot.
    pub fn read_snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read(|c| {
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
        rx.await
            .map_err(|_| Error::unavailable("the database writer stopped before answering"))?
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
