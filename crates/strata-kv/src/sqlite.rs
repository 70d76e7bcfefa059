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
//! - Writes go through the database's single writer connection, reads
//!   through its read-only pool (WAL: readers never block the writer).
//! - Keys are `TEXT` compared with SQLite's default `BINARY` collation
//!   (`memcmp` of the UTF-8 bytes), which is the byte order the contract
//!   asks for. A prefix is the half-open key range `[prefix, upper)`, never
//!   `LIKE`, so `%` and `_` in a prefix match literally and the primary key
//!   index bounds the scan.
//! - `transaction` validates every operation, then applies them in one
//!   SQLite transaction; `batch` applies its valid operations in one SQLite
//!   transaction too (the outcome per operation is the same as applying
//!   them one by one, with fewer commits).
//! - Driver errors are mapped by [`map_sqlx_error`] and never leave this
//!   module.

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::SqliteConnection;
use strata_core::kv::{
    validate_key, validate_ttl, KvOp, KvOpOutcome, KvStats, KvStore, SetOptions,
};
use strata_core::{Page, PageRequest, Result, Timestamp};
use strata_records::sqlite::{map_sqlx_error, SqliteDatabase};

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
async fn upsert(
    conn: &mut SqliteConnection,
    ns: &str,
    key: &str,
    value: &[u8],
    expires_at: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO kv (ns, key, value, expires_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    )
    .bind(ns)
    .bind(key)
    .bind(value)
    .bind(expires_at)
    .execute(conn)
    .await
    .map_err(map_sqlx_error)?;
    Ok(())
}

/// Applies one already validated operation inside a writer transaction.
async fn apply(conn: &mut SqliteConnection, ns: &str, op: &KvOp, now: i64) -> Result<()> {
    match op {
        KvOp::Set { key, value, ttl } => upsert(conn, ns, key, value, expires_at(now, *ttl)).await,
        KvOp::Delete { key } => {
            sqlx::query("DELETE FROM kv WHERE ns = ?1 AND key = ?2")
                .bind(ns)
                .bind(key)
                .execute(conn)
                .await
                .map_err(map_sqlx_error)?;
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

#[async_trait]
impl KvStore for SqliteKv {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>> {
        validate_key(key)?;
        let value: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT value FROM kv WHERE ns = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(ns)
        .bind(key)
        .bind(now_ms())
        .fetch_optional(self.db.reader())
        .await
        .map_err(map_sqlx_error)?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, ns: &str, key: &str, value: Bytes, opts: SetOptions) -> Result<()> {
        validate_key(key)?;
        if let Some(ttl) = opts.ttl {
            validate_ttl(ttl)?;
        }
        let mut conn = self.db.writer().acquire().await.map_err(map_sqlx_error)?;
        upsert(&mut conn, ns, key, &value, expires_at(now_ms(), opts.ttl)).await
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        validate_key(key)?;
        // The row goes whether or not it had expired; only a live one counts.
        let live: Option<i64> = sqlx::query_scalar(
            "DELETE FROM kv WHERE ns = ?1 AND key = ?2 \
             RETURNING (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(ns)
        .bind(key)
        .bind(now_ms())
        .fetch_optional(self.db.writer())
        .await
        .map_err(map_sqlx_error)?;
        Ok(live.is_some_and(|l| l != 0))
    }

    async fn exists(&self, ns: &str, key: &str) -> Result<bool> {
        validate_key(key)?;
        let found: i64 = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM kv WHERE ns = ?1 AND key = ?2 \
             AND (expires_at IS NULL OR expires_at > ?3))",
        )
        .bind(ns)
        .bind(key)
        .bind(now_ms())
        .fetch_one(self.db.reader())
        .await
        .map_err(map_sqlx_error)?;
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
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(ns).bind(start);
        if let Some(upper) = &upper {
            query = query.bind(upper);
        }
        let rows = query
            .bind(now_ms())
            .bind(i64::from(limit) + 1)
            .fetch_all(self.db.reader())
            .await
            .map_err(map_sqlx_error)?;
        Ok(Page::from_overfetch(rows, limit, |k| k.clone()))
    }

    async fn clear_prefix(&self, ns: &str, prefix: &str) -> Result<u64> {
        let upper = contract::prefix_upper_bound(prefix);
        let range = key_range_sql(false, upper.is_some());
        let delete_live = format!(
            "DELETE FROM kv WHERE ns = ?{range} AND (expires_at IS NULL OR expires_at > ?)"
        );
        let delete_rest = format!("DELETE FROM kv WHERE ns = ?{range}");
        let now = now_ms();

        let mut tx = self.db.writer().begin().await.map_err(map_sqlx_error)?;
        let mut live = sqlx::query(&delete_live).bind(ns).bind(prefix);
        if let Some(upper) = &upper {
            live = live.bind(upper);
        }
        let removed = live
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_sqlx_error)?
            .rows_affected();
        // Expired rows of the range go too; they were already invisible.
        let mut rest = sqlx::query(&delete_rest).bind(ns).bind(prefix);
        if let Some(upper) = &upper {
            rest = rest.bind(upper);
        }
        rest.execute(&mut *tx).await.map_err(map_sqlx_error)?;
        tx.commit().await.map_err(map_sqlx_error)?;
        Ok(removed)
    }

    async fn batch(&self, ns: &str, ops: Vec<KvOp>) -> Result<Vec<KvOpOutcome>> {
        let now = now_ms();
        let mut tx = self.db.writer().begin().await.map_err(map_sqlx_error)?;
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let outcome = match op.validate() {
                Ok(()) => {
                    apply(&mut tx, ns, &op, now).await?;
                    contract::applied(op.key().to_owned())
                }
                Err(e) => contract::rejected(op.key().to_owned(), &e),
            };
            outcomes.push(outcome);
        }
        tx.commit().await.map_err(map_sqlx_error)?;
        Ok(outcomes)
    }

    async fn transaction(&self, ns: &str, ops: Vec<KvOp>) -> Result<()> {
        contract::validate_transaction(&ops)?;
        let now = now_ms();
        let mut tx = self.db.writer().begin().await.map_err(map_sqlx_error)?;
        for op in &ops {
            apply(&mut tx, ns, op, now).await?;
        }
        tx.commit().await.map_err(map_sqlx_error)
    }

    async fn stats(&self, ns: &str) -> Result<KvStats> {
        let (keys, value_bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(length(value)), 0) FROM kv \
             WHERE ns = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .bind(ns)
        .bind(now_ms())
        .fetch_one(self.db.reader())
        .await
        .map_err(map_sqlx_error)?;
        Ok(KvStats {
            keys: count(keys),
            value_bytes: count(value_bytes),
        })
    }

    async fn purge_expired(&self) -> Result<u64> {
        // `expires_at IS NOT NULL` lets SQLite use the partial index.
        let done = sqlx::query("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1")
            .bind(now_ms())
            .execute(self.db.writer())
            .await
            .map_err(map_sqlx_error)?;
        Ok(done.rows_affected())
    }
}
