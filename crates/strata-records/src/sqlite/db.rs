//! Opening a SQLite database the way Strata needs it.
//!
//! - WAL journal, so readers never block the writer.
//! - One writer connection: SQLite allows one writer at a time anyway, and
//!   queueing writers in the pool instead of in SQLite's busy handler keeps
//!   latency flat and makes "first statement of a transaction is a write"
//!   enough to serialise read-modify-write transactions.
//! - A pool of read-only connections for queries.
//! - `synchronous = NORMAL` by default: in WAL mode a committed transaction is
//!   in the WAL file before the call returns, so it survives the process being
//!   killed; only an OS crash or power loss can drop the last commits.
//!   [`Durability::Fsync`] (`synchronous = FULL`) fsyncs the WAL on every
//!   commit and survives power loss too.
//! - Versioned migrations from `migrations/`, applied at open.

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
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
    /// Read-only connections in the reader pool.
    pub max_readers: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Process,
            busy_timeout: Duration::from_secs(5),
            max_readers: 8,
        }
    }
}

/// An open SQLite database: one writer connection, a reader pool, migrated.
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
}

impl SqliteDatabase {
    /// Opens (creating if needed) the database file at `path` and applies
    /// pending migrations.
    pub async fn open(path: &Path, opts: &SqliteOptions) -> Result<Self> {
        let synchronous = match opts.durability {
            Durability::Process => SqliteSynchronous::Normal,
            Durability::Fsync => SqliteSynchronous::Full,
        };
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(opts.busy_timeout)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| open_error(path, e))?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("migrating {} failed", path.display()),
                )
                .with_source(e)
            })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.max_readers.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| open_error(path, e))?;
        Ok(SqliteDatabase {
            writer,
            reader,
            path: path.to_owned(),
        })
    }

    /// The single writer connection's pool. Every write goes through it.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The read-only pool.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

fn open_error(path: &Path, e: sqlx::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("cannot open SQLite database {}", path.display()),
    )
    .with_source(e)
}

/// Maps a driver error into Strata's error at this crate's boundary.
pub fn map_sqlx_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::RowNotFound => Error::new(ErrorKind::NotFound, "row not found"),
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::new(
            ErrorKind::AlreadyExists,
            "a row with this identity already exists",
        ),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            Error::new(ErrorKind::NotFound, "a referenced row does not exist")
        }
        sqlx::Error::Database(db)
            if db.message().contains("database is locked") || db.message().contains("busy") =>
        {
            Error::unavailable("the database is busy").with_retryable(true)
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::unavailable("the records database is unavailable")
        }
        _ => Error::internal("records database error"),
    }
    .with_source(e)
}
