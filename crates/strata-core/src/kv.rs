//! The key-value layer: opaque keys to bytes, per namespace (the bot).
//!
//! # Behaviour every backend honours
//! - Keys are 1..=[`MAX_KEY_LEN`] bytes of UTF-8 without NUL; others are
//!   `InvalidInput` (`invalid_key`).
//! - A key whose TTL has passed is invisible to every read at once
//!   (`get`, `exists`, `list`, `stats`) and is purged later.
//! - `delete` of a missing key succeeds and returns `false`.
//! - `list` returns keys in byte order after the cursor.
//! - `transaction` validates every operation before applying any, and
//!   applies all or none; `batch` applies each valid operation on its own
//!   and reports each outcome.
//! - Namespaces never see each other's keys.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

use crate::{Error, Page, PageRequest, Result};

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest TTL accepted (10 years), so expiry arithmetic never overflows.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Options of a `set`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// The key expires this long after the write; `None`: never.
    pub ttl: Option<Duration>,
}

impl SetOptions {
    /// Options with a TTL.
    pub fn with_ttl(ttl: Duration) -> Self {
        SetOptions { ttl: Some(ttl) }
    }
}

/// One operation of a batch or transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    Set {
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
    },
}

impl KvOp {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Set { key, .. } | KvOp::Delete { key } => key,
        }
    }

    /// Checks the key and TTL.
    pub fn validate(&self) -> Result<()> {
        validate_key(self.key())?;
        if let KvOp::Set { ttl: Some(ttl), .. } = self {
            validate_ttl(*ttl)?;
        }
        Ok(())
    }
}

/// The outcome of one batch operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct KvOpOutcome {
    pub key: String,
    /// `ok`, or the error code.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Size of a namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct KvStats {
    /// Live keys.
    pub keys: u64,
    /// Bytes of live values.
    pub value_bytes: u64,
}

/// Checks a key against the contract.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('\0') {
        return Err(Error::invalid(format!(
            "key must be 1 to {MAX_KEY_LEN} bytes without NUL (got {} bytes)",
            key.len()
        ))
        .with_code("invalid_key"));
    }
    Ok(())
}

/// Checks a TTL: more than zero, at most [`MAX_TTL`].
pub fn validate_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::invalid(format!(
            "ttl must be between 1 second and {} seconds",
            MAX_TTL.as_secs()
        ))
        .with_code("invalid_ttl"));
    }
    Ok(())
}

/// A key-value backend.
#[async_trait]
pub trait KvStore: Send + Sync + std::fmt::Debug {
    /// The backend's name (`memory`, `sqlite`, …).
    fn backend(&self) -> &'static str;
    /// The live value of `key`, or `None`.
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>>;
    /// Stores `value` under `key`, replacing any value and TTL.
    async fn set(&self, ns: &str, key: &str, value: Bytes, opts: SetOptions) -> Result<()>;
    /// Removes `key`; `true` when a live value was removed.
    async fn delete(&self, ns: &str, key: &str) -> Result<bool>;
    /// Whether `key` has a live value.
    async fn exists(&self, ns: &str, key: &str) -> Result<bool>;
    /// Live keys starting with `prefix`, in byte order, paginated.
    async fn list(&self, ns: &str, prefix: &str, page: &PageRequest) -> Result<Page<String>>;
    /// Removes every key starting with `prefix` (all keys for `""`); returns
    /// how many live keys were removed.
    async fn clear_prefix(&self, ns: &str, prefix: &str) -> Result<u64>;
    /// Applies each operation on its own, in order; one failing does not stop
    /// the others.
    async fn batch(&self, ns: &str, ops: Vec<KvOp>) -> Result<Vec<KvOpOutcome>>;
    /// Applies all operations atomically, or none (`InvalidInput` naming the
    /// first invalid one).
    async fn transaction(&self, ns: &str, ops: Vec<KvOp>) -> Result<()>;
    /// Counts of live keys and bytes in the namespace.
    async fn stats(&self, ns: &str) -> Result<KvStats>;
    /// Physically removes expired keys in every namespace; returns how many.
    async fn purge_expired(&self) -> Result<u64>;
}

/// Applies a batch through single-key calls; backends may use it for `batch`.
pub async fn batch_one_by_one<S: KvStore + ?Sized>(
    store: &S,
    ns: &str,
    ops: Vec<KvOp>,
) -> Result<Vec<KvOpOutcome>> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let key = op.key().to_owned();
        let res = match op.validate() {
            Err(e) => Err(e),
            Ok(()) => match op {
                KvOp::Set { key, value, ttl } => {
                    store.set(ns, &key, value, SetOptions { ttl }).await
                }
                KvOp::Delete { key } => store.delete(ns, &key).await.map(|_| ()),
            },
        };
        out.push(match res {
            Ok(()) => KvOpOutcome {
                key,
                status: "ok".into(),
                error: None,
            },
            Err(e) if e.kind() == crate::ErrorKind::InvalidInput => KvOpOutcome {
                key,
                status: e.code().to_owned(),
                error: Some(e.message().to_owned()),
            },
            Err(e) => return Err(e),
        });
    }
    Ok(out)
}
