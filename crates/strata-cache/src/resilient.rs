//! [`ResilientCache`]: the layer that makes losing the cache cost speed,
//! never a request.
//!
//! It wraps any [`CacheStore`] and never returns a backend failure: a read
//! that fails is a miss, a write that fails is dropped, a rate-limit check
//! that fails lets the request through. Every failure is logged (at most
//! once a second) and counted, and every operation's outcome and latency go
//! to the metrics that `/metrics` renders:
//!
//! - `strata_cache_operations_total{backend, op, result}` with `result` one
//!   of `hit`, `miss`, `ok`, `error`;
//! - `strata_cache_operation_seconds{backend, op}`;
//! - `strata_cache_hit_ratio{backend}`: hits / (hits + misses) of `get`
//!   since start (a failed `get` counts as a miss).
//!
//! After a failure the backend is left alone for [`PAUSE_AFTER_FAILURE`]
//! (every call is a miss at once), so an outage costs each request at most
//! one round trip's timeout per pause, not one per call. The next call after
//! the pause tries the backend again; its client reconnects by itself.
//!
//! Invalid arguments are still errors: they are the caller's bug, not an
//! outage.

use async_trait::async_trait;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_core::cache::CacheStore;
use strata_core::rate::{Rate, Throttle};
use strata_core::{ErrorKind, Result, Timestamp};

/// How long the backend is bypassed after it failed.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(500);

/// A cache that degrades instead of failing.
#[derive(Debug, Clone)]
pub struct ResilientCache {
    inner: Arc<dyn CacheStore>,
    last_log_ms: Arc<AtomicU64>,
    paused_until_ms: Arc<AtomicU64>,
    /// `get` hits and lookups since start, for the hit-ratio gauge.
    gets: Arc<(AtomicU64, AtomicU64)>,
}

impl ResilientCache {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn CacheStore>) -> Self {
        ResilientCache {
            inner,
            last_log_ms: Arc::new(AtomicU64::new(0)),
            paused_until_ms: Arc::new(AtomicU64::new(0)),
            gets: Arc::new((AtomicU64::new(0), AtomicU64::new(0))),
        }
    }

    fn now_ms() -> u64 {
        Timestamp::now().as_millis().max(0) as u64
    }

    /// An outage error when the backend is being left alone.
    fn paused(&self) -> Option<strata_core::Error> {
        (Self::now_ms() < self.paused_until_ms.load(Ordering::Relaxed))
            .then(|| strata_core::Error::unavailable("cache paused after a failure"))
    }

    fn record(&self, op: &'static str, result: &'static str, started: Instant) {
        let backend = self.inner.backend();
        metrics::counter!("strata_cache_operations_total", "backend" => backend, "op" => op, "result" => result)
            .increment(1);
        metrics::histogram!("strata_cache_operation_seconds", "backend" => backend, "op" => op)
            .record(started.elapsed().as_secs_f64());
        if op == "get" {
            let hits = self
                .gets
                .0
                .fetch_add(u64::from(result == "hit"), Ordering::Relaxed)
                + u64::from(result == "hit");
            let all = self.gets.1.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::gauge!("strata_cache_hit_ratio", "backend" => backend)
                .set(hits as f64 / all as f64);
        }
    }

    /// Hits / lookups of `get` since start (`None` before the first).
    pub fn hit_ratio(&self) -> Option<f64> {
        let all = self.gets.1.load(Ordering::Relaxed);
        (all > 0).then(|| self.gets.0.load(Ordering::Relaxed) as f64 / all as f64)
    }

    /// Logs a backend failure, at most once a second.
    fn failed(&self, op: &'static str, e: &strata_core::Error, started: Instant) {
        self.record(op, "error", started);
        let now = Self::now_ms();
        if !e.message().starts_with("cache paused") {
            self.paused_until_ms.store(
                now + PAUSE_AFTER_FAILURE.as_millis() as u64,
                Ordering::Relaxed,
            );
        }
        let last = self.last_log_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(backend = self.inner.backend(), op, error = %e, "cache unavailable; serving from the authoritative stores");
        }
    }
}

fn is_outage(e: &strata_core::Error) -> bool {
    e.kind() != ErrorKind::InvalidInput
}

#[async_trait]
impl CacheStore for ResilientCache {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>> {
        strata_core::cache::validate_entry(ns, key)?;
        let started = Instant::now();
        match match self.paused() {
            Some(e) => Err(e),
            None => self.inner.get(ns, key).await,
        } {
            Ok(Some(v)) => {
                self.record("get", "hit", started);
                Ok(Some(v))
            }
            Ok(None) => {
                self.record("get", "miss", started);
                Ok(None)
            }
            Err(e) if is_outage(&e) => {
                self.failed("get", &e, started);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn set(&self, ns: &str, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        strata_core::cache::validate_entry(ns, key)?;
        let started = Instant::now();
        match match self.paused() {
            Some(e) => Err(e),
            None => self.inner.set(ns, key, value, ttl).await,
        } {
            Ok(()) => {
                self.record("set", "ok", started);
                Ok(())
            }
            Err(e) if is_outage(&e) => {
                self.failed("set", &e, started);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        strata_core::cache::validate_entry(ns, key)?;
        let started = Instant::now();
        match match self.paused() {
            Some(e) => Err(e),
            None => self.inner.delete(ns, key).await,
        } {
            Ok(v) => {
                self.record("delete", "ok", started);
                Ok(v)
            }
            Err(e) if is_outage(&e) => {
                self.failed("delete", &e, started);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn incr(&self, ns: &str, key: &str, by: i64, ttl: Duration) -> Result<i64> {
        strata_core::cache::validate_entry(ns, key)?;
        // A counter has no safe default: an outage is reported to the caller.
        let started = Instant::now();
        let r = match self.paused() {
            Some(e) => Err(e),
            None => self.inner.incr(ns, key, by, ttl).await,
        };
        match &r {
            Ok(_) => self.record("incr", "ok", started),
            Err(e) if is_outage(e) => self.failed("incr", e, started),
            Err(_) => {}
        }
        r
    }

    async fn delete_prefix(&self, ns: &str, prefix: &str) -> Result<u64> {
        strata_core::cache::validate_namespace(ns)?;
        strata_core::cache::validate_prefix(prefix)?;
        let started = Instant::now();
        match match self.paused() {
            Some(e) => Err(e),
            None => self.inner.delete_prefix(ns, prefix).await,
        } {
            Ok(n) => {
                self.record("delete_prefix", "ok", started);
                Ok(n)
            }
            Err(e) if is_outage(&e) => {
                self.failed("delete_prefix", &e, started);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    async fn throttle(&self, ns: &str, key: &str, rate: Rate) -> Result<Throttle> {
        strata_core::cache::validate_entry(ns, key)?;
        let started = Instant::now();
        match match self.paused() {
            Some(e) => Err(e),
            None => self.inner.throttle(ns, key, rate).await,
        } {
            Ok(t) => {
                self.record(
                    "throttle",
                    if t.allowed { "ok" } else { "limited" },
                    started,
                );
                Ok(t)
            }
            Err(e) if is_outage(&e) => {
                self.failed("throttle", &e, started);
                Ok(Throttle::unchecked(&rate))
            }
            Err(e) => Err(e),
        }
    }

    async fn ping(&self) -> Result<()> {
        if let Some(e) = self.paused() {
            return Err(e);
        }
        let started = Instant::now();
        let r = self.inner.ping().await;
        match &r {
            Ok(()) => self.record("ping", "ok", started),
            Err(e) => self.failed("ping", e, started),
        }
        r
    }
}
