//! The in-memory backend: one `BTreeMap` per namespace behind a `RwLock`.
//!
//! For tests, development and single-process deployments that need no
//! persistence: everything is lost when the process exits.
//!
//! - Keys sort as Rust `String`s, which is byte order, so `list` needs no
//!   extra sorting and a prefix is one contiguous range of the map.
//! - Expiry uses the monotonic clock ([`Instant`]): an entry whose deadline
//!   has passed is skipped by every read at once and removed by `delete`,
//!   `set`, `clear_prefix` or [`purge_expired`](KvStore::purge_expired).
//! - Every operation takes the lock once, so a `transaction` (validated
//!   before the lock is taken) is applied atomically and readers never see
//!   half of it. No lock is held across an `.await`.

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use strata_core::kv::{
    validate_key, validate_ttl, KvOp, KvOpOutcome, KvStats, KvStore, SetOptions,
};
use strata_core::{Page, PageRequest, Result};

use crate::contract;

/// Keys of one namespace, in byte order.
type Namespace = BTreeMap<String, Entry>;

/// A stored value and when it stops being visible.
#[derive(Debug, Clone)]
struct Entry {
    value: Bytes,
    /// `None`: never expires.
    expires_at: Option<Instant>,
}

impl Entry {
    fn new(value: Bytes, ttl: Option<Duration>, now: Instant) -> Self {
        // A deadline the monotonic clock cannot represent is so far away that
        // the key simply never expires (TTLs are at most `MAX_TTL` anyway).
        Entry {
            value,
            expires_at: ttl.and_then(|ttl| now.checked_add(ttl)),
        }
    }

    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|deadline| deadline > now)
    }
}

/// The in-memory [`KvStore`]; `backend()` is `"memory"`.
#[derive(Debug, Default)]
pub struct MemoryKv {
    namespaces: RwLock<BTreeMap<String, Namespace>>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        MemoryKv::default()
    }

    // A panic while the lock is held cannot leave a `BTreeMap` half-updated
    // in a way later calls would misread, so a poisoned lock is still used.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Namespace>> {
        self.namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Namespace>> {
        self.namespaces
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies one already validated operation.
fn apply(namespaces: &mut BTreeMap<String, Namespace>, ns: &str, op: KvOp, now: Instant) {
    match op {
        KvOp::Set { key, value, ttl } => {
            namespaces
                .entry(ns.to_owned())
                .or_default()
                .insert(key, Entry::new(value, ttl, now));
        }
        KvOp::Delete { key } => {
            remove_key(namespaces, ns, &key, now);
        }
    }
}

/// Removes `key`; `true` when its value was live.
fn remove_key(
    namespaces: &mut BTreeMap<String, Namespace>,
    ns: &str,
    key: &str,
    now: Instant,
) -> bool {
    let Some(keys) = namespaces.get_mut(ns) else {
        return false;
    };
    let removed = keys.remove(key).is_some_and(|e| e.is_live(now));
    if keys.is_empty() {
        namespaces.remove(ns);
    }
    removed
}

#[async_trait]
impl KvStore for MemoryKv {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>> {
        validate_key(key)?;
        let now = Instant::now();
        Ok(self
            .read()
            .get(ns)
            .and_then(|keys| keys.get(key))
            .filter(|e| e.is_live(now))
            .map(|e| e.value.clone()))
    }

    async fn set(&self, ns: &str, key: &str, value: Bytes, opts: SetOptions) -> Result<()> {
        validate_key(key)?;
        if let Some(ttl) = opts.ttl {
            validate_ttl(ttl)?;
        }
        let op = KvOp::Set {
            key: key.to_owned(),
            value,
            ttl: opts.ttl,
        };
        apply(&mut self.write(), ns, op, Instant::now());
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        validate_key(key)?;
        Ok(remove_key(&mut self.write(), ns, key, Instant::now()))
    }

    async fn exists(&self, ns: &str, key: &str) -> Result<bool> {
        validate_key(key)?;
        let now = Instant::now();
        Ok(self
            .read()
            .get(ns)
            .and_then(|keys| keys.get(key))
            .is_some_and(|e| e.is_live(now)))
    }

    async fn list(&self, ns: &str, prefix: &str, page: &PageRequest) -> Result<Page<String>> {
        let limit = contract::page_limit(page)?;
        let (start, exclusive) = contract::list_start(prefix, page);
        let lower = if exclusive {
            Bound::Excluded(start)
        } else {
            Bound::Included(start)
        };
        let now = Instant::now();
        let namespaces = self.read();
        let rows: Vec<String> = match namespaces.get(ns) {
            None => Vec::new(),
            Some(keys) => keys
                .range::<str, _>((lower, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(_, e)| e.is_live(now))
                .take(limit as usize + 1)
                .map(|(k, _)| k.clone())
                .collect(),
        };
        Ok(Page::from_overfetch(rows, limit, |k| k.clone()))
    }

    async fn clear_prefix(&self, ns: &str, prefix: &str) -> Result<u64> {
        let now = Instant::now();
        let mut namespaces = self.write();
        let Some(keys) = namespaces.get_mut(ns) else {
            return Ok(0);
        };
        // Cut the prefix's range out of the map: [prefix, upper) is removed,
        // what lies after `upper` is put back.
        let mut removed = keys.split_off(prefix);
        if let Some(upper) = contract::prefix_upper_bound(prefix) {
            let mut after = removed.split_off(upper.as_str());
            keys.append(&mut after);
        }
        if keys.is_empty() {
            namespaces.remove(ns);
        }
        Ok(removed.values().filter(|e| e.is_live(now)).count() as u64)
    }

    async fn batch(&self, ns: &str, ops: Vec<KvOp>) -> Result<Vec<KvOpOutcome>> {
        let now = Instant::now();
        let mut namespaces = self.write();
        let outcomes = ops
            .into_iter()
            .map(|op| {
                let key = op.key().to_owned();
                match op.validate() {
                    Ok(()) => {
                        apply(&mut namespaces, ns, op, now);
                        contract::applied(key)
                    }
                    Err(e) => contract::rejected(key, &e),
                }
            })
            .collect();
        Ok(outcomes)
    }

    async fn transaction(&self, ns: &str, ops: Vec<KvOp>) -> Result<()> {
        contract::validate_transaction(&ops)?;
        let now = Instant::now();
        let mut namespaces = self.write();
        for op in ops {
            apply(&mut namespaces, ns, op, now);
        }
        Ok(())
    }

    async fn stats(&self, ns: &str) -> Result<KvStats> {
        let now = Instant::now();
        let namespaces = self.read();
        let mut stats = KvStats::default();
        for entry in namespaces
            .get(ns)
            .into_iter()
            .flat_map(|keys| keys.values())
        {
            if entry.is_live(now) {
                stats.keys += 1;
                stats.value_bytes += entry.value.len() as u64;
            }
        }
        Ok(stats)
    }

    async fn purge_expired(&self) -> Result<u64> {
        let now = Instant::now();
        let mut namespaces = self.write();
        let mut purged = 0u64;
        namespaces.retain(|_, keys| {
            let before = keys.len();
            keys.retain(|_, e| e.is_live(now));
            purged += (before - keys.len()) as u64;
            !keys.is_empty()
        });
        Ok(purged)
    }
}
