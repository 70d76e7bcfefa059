//! `MemoryCache`: the in-process cache backend, on a `moka` future cache.
//!
//! Each entry carries its absolute deadline; moka's [`Expiry`] hook turns
//! that deadline into the entry's time to live on every write, so `set`
//! replaces the expiry and `incr` on a live counter keeps it. Reads check
//! the deadline themselves as well, so an expired entry is invisible at once
//! even before moka's housekeeping removes it. The cache is bounded by an
//! approximate byte budget; moka evicts the least useful entries beyond it
//! (the cache layer's contract allows losing any entry).

use async_trait::async_trait;
use bytes::Bytes;
use moka::future::Cache;
use moka::ops::compute::Op;
use moka::Expiry;
use std::fmt;
use std::time::{Duration, Instant};
use strata_core::cache::{
    counter_overflow, not_a_counter, validate_entry, validate_namespace, validate_prefix,
    validate_ttl, CacheStore,
};
use strata_core::rate::{gcra_step, Rate, Throttle};
use strata_core::Timestamp;
use strata_core::{Error, Result};

/// Default byte budget of [`MemoryCache::new`]: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Bytes charged per entry on top of its key and value (bookkeeping).
const ENTRY_OVERHEAD: usize = 96;

type EntryKey = (String, String);

#[derive(Clone)]
struct Entry {
    value: Bytes,
    expires_at: Instant,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at > now
    }
}

/// Every entry lives until its own deadline.
struct Deadline;

impl Expiry<EntryKey, Entry> for Deadline {
    fn expire_after_create(
        &self,
        _key: &EntryKey,
        value: &Entry,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.expires_at.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &EntryKey,
        value: &Entry,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.expires_at.saturating_duration_since(updated_at))
    }
}

/// The in-process cache backend (`memory://`), lost at exit.
#[derive(Clone)]
pub struct MemoryCache {
    entries: Cache<EntryKey, Entry>,
    max_bytes: u64,
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.entries.entry_count())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache::new()
    }
}

impl MemoryCache {
    /// A cache bounded by [`DEFAULT_MAX_BYTES`].
    pub fn new() -> Self {
        MemoryCache::with_max_bytes(DEFAULT_MAX_BYTES)
    }

    /// A cache that evicts entries beyond about `max_bytes` of keys and
    /// values.
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &EntryKey, entry: &Entry| {
                let bytes = key.0.len() + key.1.len() + entry.value.len() + ENTRY_OVERHEAD;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(Deadline)
            .build();
        MemoryCache { entries, max_bytes }
    }

    fn deadline(ttl: Duration) -> Result<Instant> {
        Instant::now()
            .checked_add(ttl)
            .ok_or_else(|| Error::internal("cache ttl overflows the clock"))
    }
}

fn entry_key(ns: &str, key: &str) -> EntryKey {
    (ns.to_owned(), key.to_owned())
}

#[async_trait]
impl CacheStore for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>> {
        validate_entry(ns, key)?;
        let now = Instant::now();
        Ok(self
            .entries
            .get(&entry_key(ns, key))
            .await
            .filter(|e| e.is_live(now))
            .map(|e| e.value))
    }

    async fn set(&self, ns: &str, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        validate_entry(ns, key)?;
        validate_ttl(ttl)?;
        let expires_at = MemoryCache::deadline(ttl)?;
        self.entries
            .insert(entry_key(ns, key), Entry { value, expires_at })
            .await;
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        validate_entry(ns, key)?;
        let now = Instant::now();
        Ok(self
            .entries
            .remove(&entry_key(ns, key))
            .await
            .is_some_and(|e| e.is_live(now)))
    }

    async fn incr(&self, ns: &str, key: &str, by: i64, ttl: Duration) -> Result<i64> {
        validate_entry(ns, key)?;
        validate_ttl(ttl)?;
        let mut outcome: Result<i64> = Err(Error::internal("cache incr did not run"));
        let outcome_slot = &mut outcome;
        // `and_compute_with` runs at most one closure per key at a time, so
        // the read-modify-write below is atomic with respect to other incrs.
        self.entries
            .entry(entry_key(ns, key))
            .and_compute_with(|current| {
                let now = Instant::now();
                let live = current.map(|e| e.into_value()).filter(|e| e.is_live(now));
                let (op, result) = match live {
                    None => match MemoryCache::deadline(ttl) {
                        Ok(expires_at) => (
                            Op::Put(Entry {
                                value: Bytes::from(by.to_string()),
                                expires_at,
                            }),
                            Ok(by),
                        ),
                        Err(e) => (Op::Nop, Err(e)),
                    },
                    Some(entry) => match parse_counter(&entry.value) {
                        None => (Op::Nop, Err(not_a_counter(key))),
                        Some(n) => match n.checked_add(by) {
                            None => (Op::Nop, Err(counter_overflow(key))),
                            Some(next) => (
                                Op::Put(Entry {
                                    value: Bytes::from(next.to_string()),
                                    expires_at: entry.expires_at,
                                }),
                                Ok(next),
                            ),
                        },
                    },
                };
                *outcome_slot = result;
                std::future::ready(op)
            })
            .await;
        outcome
    }

    async fn throttle(&self, ns: &str, key: &str, rate: Rate) -> Result<Throttle> {
        validate_entry(ns, key)?;
        rate.validate()?;
        let mut outcome: Option<Throttle> = None;
        let outcome_slot = &mut outcome;
        // One closure per key at a time: the GCRA step is atomic.
        self.entries
            .entry(entry_key(ns, key))
            .and_compute_with(|current| {
                let now = Instant::now();
                let now_us = Timestamp::now().as_millis().saturating_mul(1000);
                let stored = current
                    .map(|e| e.into_value())
                    .filter(|e| e.is_live(now))
                    .and_then(|e| parse_counter(&e.value));
                let (decision, new_tat) = gcra_step(stored, now_us, &rate);
                *outcome_slot = Some(decision);
                let op = match new_tat {
                    Some(tat) => Op::Put(Entry {
                        value: Bytes::from(tat.to_string()),
                        expires_at: now + Duration::from_micros((tat - now_us).max(1) as u64),
                    }),
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        outcome.ok_or_else(|| Error::internal("cache throttle did not run"))
    }

    async fn delete_prefix(&self, ns: &str, prefix: &str) -> Result<u64> {
        validate_namespace(ns)?;
        validate_prefix(prefix)?;
        let matching: Vec<EntryKey> = self
            .entries
            .iter()
            .filter(|(k, _)| k.0 == ns && k.1.starts_with(prefix))
            .map(|(k, _)| EntryKey::clone(&k))
            .collect();
        let mut removed = 0;
        for key in matching {
            let now = Instant::now();
            if self
                .entries
                .remove(&key)
                .await
                .is_some_and(|e| e.is_live(now))
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// The value of a counter: the canonical decimal text of an `i64` (no `+`,
/// no leading zeros, no spaces), as Redis accepts it.
fn parse_counter(value: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == value).then_some(n)
}
