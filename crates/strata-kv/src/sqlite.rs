//! The SQLite backend: the `kv` table of the database the records layer
//! opened ([`SqliteDatabase`]).
//!
//! ```sql
//! kv(ns TEXT, key TEXT, value BLOB, expires_at INTEGER NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID
//! ```
//!
//! - `expires_at` is Unix milliseconds (`NULL`: never). Every read filters
//!   with `expires_at IS NULL OR expires_at > now`, so an expired row is
//!   invisible at once; [`purge_expired`](KvStore::purge_expired) deletes
//!   such rows later through the partial index on `expires_at`.
//! - Writes are closures run by the database's writer thread (one savepoint
//!   each inside a group commit); reads run on its read-only connections (WAL:
//!   readers never block the writer).
//! - Keys are `TEXT` compared with SQLite's default `BINARY` collation
//!   (`memcmp` of the UTF-8 bytes), which is the byte order the contract
//!   asks for. A prefix is the half-open key range `[prefix, upper)`, never
//!   `LIKE`, so `%` and `_` in a prefix match literally and the primary key
//!   index bounds the scan.
//! - `transaction` validates every operation, then applies them in one
//!   SQLite transaction; `batch` applies its valid operations in one SQLite
//!   transaction too (the outcome per operation is the same as applying
//!   them one by one, with fewer commits).
//! - Driver errors are mapped by [`map_sqlite_error`] and never leave this
//!   module.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use strata_core::kv::{
    validate_key, validate_ttl, KvOp, KvOpOutcome, KvStats, KvStore, SetOptions,
};
use strata_core::{Page, PageRequest, Result, Timestamp};
use strata_records::sqlite::{map_sqlite_error, SqliteDatabase};

use crate::contract;

/// The SQLite [`KvStore`]; `backend()` is `"sqlite"`.
#[derive(Debug, Clone)]
pub struct SqliteKv {
    db: SqliteDatabase,
}

impl SqliteKv {
    /// A key-value store over `db`'s `kv` table (created by its migrations).
    pub fn new(db: SqliteDatabase) -> Self {
        SqliteKv { db }
    }

    /// The database this store lives in.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }
}

/// The current time in Unix milliseconds, the unit of `expires_at`.
fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

/// `expires_at` for a write at `now` with `ttl`.
fn expires_at(now: i64, ttl: Option<std::time::Duration>) -> Option<i64> {
    ttl.map(|ttl| now.saturating_add(contract::ttl_millis(ttl)))
}

/// Non-negative SQLite integers (counts, sums) as `u64`.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Upserts one row, replacing value and TTL.
fn upsert(
    c: &Connection,
    ns: &str,
    key: &str,
    value: &[u8],
    expires_at: Option<i64>,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO kv (ns, key, value, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    )
    .and_then(|mut st| st.execute(params![ns, key, value, expires_at]))
    .map_err(map_sqlite_error)?;
    Ok(())
}

/// Applies one already validated operation inside a writer transaction.
fn apply(c: &Connection, ns: &str, op: &KvOp, now: i64) -> Result<()> {
    match op {
        KvOp::Set { key, value, ttl } => upsert(c, ns, key, value, expires_at(now, *ttl)),
        KvOp::Delete { key } => {
            c.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")
                .and_then(|mut st| st.execute(params![ns, key]))
                .map_err(map_sqlite_error)?;
            Ok(())
        }
    }
}

/// `WHERE` clause (after `ns = ?`) selecting the keys of a prefix's range:
/// `key >= ?` (or `key > ?` when the start is exclusive), then `key < ?`
/// when the range has an upper bound.
fn key_range_sql(exclusive_start: bool, bounded: bool) -> String {
    let mut sql = String::from(if exclusive_start {
        " AND key > ?"
    } else {
        " AND key >= ?"
    });
    if bounded {
        sql.push_str(" AND key < ?");
    }
    sql
}

/// Parameters `ns, start[, upper], extra…` for a range query.
fn range_params(ns: &str, start: &str, upper: &Option<String>, extra: &[i64]) -> Vec<SqlValue> {
    let mut p = vec![
        SqlValue::Text(ns.to_owned()),
        SqlValue::Text(start.to_owned()),
    ];
    if let Some(u) = upper {
        p.push(SqlValue::Text(u.clone()));
    }
    p.extend(extra.iter().map(|n| SqlValue::Integer(*n)));
    p
}

#[async_trait]
impl KvStore for SqliteKv {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>> {
        validate_key(key)?;
        let (ns, key) = (ns.to_owned(), key.to_owned());
        let value: Option<Vec<u8>> = self
            .db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT value FROM kv WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                )
                .and_then(|mut st| st.query_row(params![ns, key, now_ms()], |r| r.get(0)).optional())
                .map_err(map_sqlite_error)
            })
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, ns: &str, key: &str, value: Bytes, opts: SetOptions) -> Result<()> {
        validate_key(key)?;
        if let Some(ttl) = opts.ttl {
            validate_ttl(ttl)?;
        }
        let (ns, key) = (ns.to_owned(), key.to_owned());
        self.db
            .write(move |c| upsert(c, &ns, &key, &value, expires_at(now_ms(), opts.ttl)))
            .await
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        validate_key(key)?;
        let (ns, key) = (ns.to_owned(), key.to_owned());
        // The row goes whether or not it had expired; only a live one counts.
        let live: Option<i64> = self
            .db
            .write(move |c| {
                c.prepare_cached(
                    "DELETE FROM kv WHERE ns = ?1 AND key = ?2 \
                     RETURNING (expires_at IS NULL OR expires_at > ?3)",
                )
                .and_then(|mut st| {
                    st.query_row(params![ns, key, now_ms()], |r| r.get(0))
                        .optional()
                })
                .map_err(map_sqlite_error)
            })
            .await?;
        Ok(live.is_some_and(|l| l != 0))
    }

    async fn exists(&self, ns: &str, key: &str) -> Result<bool> {
        validate_key(key)?;
        let (ns, key) = (ns.to_owned(), key.to_owned());
        let found: i64 = self
            .db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM kv WHERE ns = ?1 AND key = ?2 \
                     AND (expires_at IS NULL OR expires_at > ?3))",
                )
                .and_then(|mut st| st.query_row(params![ns, key, now_ms()], |r| r.get(0)))
                .map_err(map_sqlite_error)
            })
            .await?;
        Ok(found != 0)
    }

    async fn list(&self, ns: &str, prefix: &str, page: &PageRequest) -> Result<Page<String>> {
        let limit = contract::page_limit(page)?;
        let (start, exclusive) = contract::list_start(prefix, page);
        let upper = contract::prefix_upper_bound(prefix);
        let sql = format!(
            "SELECT key FROM kv WHERE ns = ?{} AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
            key_range_sql(exclusive, upper.is_some())
        );
        let p = range_params(ns, start, &upper, &[now_ms(), i64::from(limit) + 1]);
        let rows: Vec<String> = self
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(&sql).map_err(map_sqlite_error)?;
                let rows = st
                    .query_map(params_from_iter(p), |r| r.get(0))
                    .map_err(map_sqlite_error)?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(map_sqlite_error)
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, |k| k.clone()))
    }

    async fn clear_prefix(&self, ns: &str, prefix: &str) -> Result<u64> {
        let upper = contract::prefix_upper_bound(prefix);
        let range = key_range_sql(false, upper.is_some());
        let delete_live = format!(
            "DELETE FROM kv WHERE ns = ?{range} AND (expires_at IS NULL OR expires_at > ?)"
        );
        let delete_rest = format!("DELETE FROM kv WHERE ns = ?{range}");
        let live_params = range_params(ns, prefix, &upper, &[now_ms()]);
        let rest_params = range_params(ns, prefix, &upper, &[]);
        self.db
            .write(move |c| {
                let removed = c
                    .prepare_cached(&delete_live)
                    .and_then(|mut st| st.execute(params_from_iter(live_params)))
                    .map_err(map_sqlite_error)?;
                // Expired rows of the range go too; they were already invisible.
                c.prepare_cached(&delete_rest)
                    .and_then(|mut st| st.execute(params_from_iter(rest_params)))
                    .map_err(map_sqlite_error)?;
                Ok(removed as u64)
            })
            .await
    }

    async fn batch(&self, ns: &str, ops: Vec<KvOp>) -> Result<Vec<KvOpOutcome>> {
        let ns = ns.to_owned();
        self.db
            .write(move |c| {
                let now = now_ms();
                let mut outcomes = Vec::with_capacity(ops.len());
                for op in ops {
                    let outcome = match op.validate() {
                        Ok(()) => {
                            apply(c, &ns, &op, now)?;
                            contract::applied(op.key().to_owned())
                        }
                        Err(e) => contract::rejected(op.key().to_owned(), &e),
                    };
                    outcomes.push(outcome);
                }
                Ok(outcomes)
            })
            .await
    }

    async fn transaction(&self, ns: &str, ops: Vec<KvOp>) -> Result<()> {
        contract::validate_transaction(&ops)?;
        let ns = ns.to_owned();
        self.db
            .write(move |c| {
                let now = now_ms();
                for op in &ops {
                    apply(c, &ns, op, now)?;
                }
                Ok(())
            })
            .await
    }

    async fn stats(&self, ns: &str) -> Result<KvStats> {
        let ns = ns.to_owned();
        let (keys, value_bytes): (i64, i64) = self
            .db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(length(value)), 0) FROM kv \
                     WHERE ns = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                )
                .and_then(|mut st| {
                    st.query_row(params![ns, now_ms()], |r| Ok((r.get(0)?, r.get(1)?)))
                })
                .map_err(map_sqlite_error)
            })
            .await?;
        Ok(KvStats {
            keys: count(keys),
            value_bytes: count(value_bytes),
        })
    }

    async fn purge_expired(&self) -> Result<u64> {
        // `expires_at IS NOT NULL` lets SQLite use the partial index.
        self.db
            .write(|c| {
                c.prepare_cached("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1")
                    .and_then(|mut st| st.execute([now_ms()]))
                    .map(|n| n as u64)
                    .map_err(map_sqlite_error)
            })
            .await
    }
}
