//! The cache layer: short-lived bytes and counters, per namespace (the bot).
//!
//! The cache holds derived or disposable state — session tokens, rate-limit
//! counters, hot conversation state, cached search results. A backend may
//! lose any entry at any time (eviction, restart); callers treat a miss as
//! "recompute", never as "does not exist".
//!
//! # Behaviour every backend honours
//! - Namespaces are 1..=[`MAX_NAMESPACE_LEN`] bytes without `:` or NUL
//!   (bot ids qualify); others are `InvalidInput` (`invalid_namespace`).
//!   Namespaces never see each other's keys, counters or prefixes.
//! - Keys are 1..=[`MAX_KEY_LEN`] bytes of UTF-8 without NUL; others are
//!   `InvalidInput` (`invalid_key`). A prefix is a key that may be empty.
//! - Every entry has a TTL of more than zero and at most [`MAX_TTL`]; others
//!   are `InvalidInput` (`invalid_ttl`). An entry whose TTL has passed is
//!   invisible to every read at once.
//! - Counters are stored as the decimal text of an `i64`, so `get` of a
//!   counter returns e.g. `b"42"`, and `set` of such text makes a counter.
//! - Prefixes match literally: `*`, `?`, `[`, `]` and `\` have no special
//!   meaning.
//! - A backend failure (connection refused, timeout, server error) is
//!   `Unavailable` and retryable; a driver's own error type never escapes.

use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

use crate::{Error, Result};

/// Longest key or prefix, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 128;
/// Longest TTL accepted (10 years), so expiry arithmetic never overflows.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Checks a namespace: 1..=[`MAX_NAMESPACE_LEN`] bytes without `:` or NUL.
///
/// `:` separates the namespace from the key in shared key spaces (Redis keys
/// are `strata:{ns}:{key}`), so forbidding it keeps namespaces apart.
pub fn validate_namespace(ns: &str) -> Result<()> {
    if ns.is_empty() || ns.len() > MAX_NAMESPACE_LEN || ns.contains([':', '\0']) {
        return Err(Error::invalid(format!(
            "cache namespace must be 1 to {MAX_NAMESPACE_LEN} bytes without ':' or NUL (got {} bytes)",
            ns.len()
        ))
        .with_code("invalid_namespace"));
    }
    Ok(())
}

/// Checks a key: 1..=[`MAX_KEY_LEN`] bytes without NUL.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains('\0') {
        return Err(Error::invalid(format!(
            "cache key must be 1 to {MAX_KEY_LEN} bytes without NUL (got {} bytes)",
            key.len()
        ))
        .with_code("invalid_key"));
    }
    Ok(())
}

/// Checks a prefix: like a key, but it may be empty (every key).
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_KEY_LEN || prefix.contains('\0') {
        return Err(Error::invalid(format!(
            "cache key prefix must be at most {MAX_KEY_LEN} bytes without NUL (got {} bytes)",
            prefix.len()
        ))
        .with_code("invalid_key"));
    }
    Ok(())
}

/// Checks a TTL: more than zero, at most [`MAX_TTL`].
pub fn validate_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::invalid(format!(
            "cache ttl must be more than zero and at most {} seconds",
            MAX_TTL.as_secs()
        ))
        .with_code("invalid_ttl"));
    }
    Ok(())
}

/// Checks a namespace and a key together (the common case).
pub fn validate_entry(ns: &str, key: &str) -> Result<()> {
    validate_namespace(ns)?;
    validate_key(key)
}

/// The error of `incr` on a value that is not the decimal text of an `i64`.
pub fn not_a_counter(key: &str) -> Error {
    Error::invalid(format!(
        "cache key {key:?} holds a value that is not an integer counter"
    ))
    .with_code("not_a_counter")
}

/// The error of `incr` whose result would not fit an `i64`.
pub fn counter_overflow(key: &str) -> Error {
    Error::invalid(format!(
        "incrementing cache counter {key:?} would overflow a 64-bit integer"
    ))
    .with_code("counter_overflow")
}

/// A cache backend.
///
/// Every method validates its arguments first (see the module docs) and
/// touches nothing when one is invalid.
#[async_trait]
pub trait CacheStore: Send + Sync + std::fmt::Debug {
    /// The backend's name (`memory`, `redis`, …).
    fn backend(&self) -> &'static str;

    /// The live value of `key`, or `None` when it is missing, expired or
    /// was evicted.
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>>;

    /// Stores `value` under `key` for `ttl`, replacing any value and expiry
    /// (a counter included).
    async fn set(&self, ns: &str, key: &str, value: Bytes, ttl: Duration) -> Result<()>;

    /// Removes `key`; `true` when a live value was removed. Deleting a
    /// missing key succeeds and returns `false`.
    async fn delete(&self, ns: &str, key: &str) -> Result<bool>;

    /// Atomically adds `by` (which may be zero or negative) to the counter at
    /// `key` and returns the new value.
    ///
    /// # Behavior
    /// - When `key` is absent (or expired) the counter is created at `by`
    ///   and expires `ttl` later.
    /// - When `key` is present its expiry is kept and `ttl` is ignored: a
    ///   fixed-window counter, whose window starts at the first `incr`.
    /// - Concurrent calls never lose an increment: `n` calls of `incr(1)`
    ///   within one window end at exactly `n`.
    /// - A value that is not the decimal text of an `i64` is `InvalidInput`
    ///   (`not_a_counter`); a result outside `i64` is `InvalidInput`
    ///   (`counter_overflow`). Neither changes the stored value.
    async fn incr(&self, ns: &str, key: &str, by: i64, ttl: Duration) -> Result<i64>;

    /// Removes every live key of `ns` that starts with `prefix` (all of the
    /// namespace's keys for `""`), matching the prefix literally; returns how
    /// many were removed. Keys written while it runs may or may not be
    /// removed; keys of other namespaces never are.
    async fn delete_prefix(&self, ns: &str, prefix: &str) -> Result<u64>;

    /// Runs one step of the rate limit `rate` for `key` with the generic cell
    /// rate algorithm ([`crate::rate::gcra_step`]) and returns the decision.
    ///
    /// # Behavior
    /// - Atomic: concurrent calls, from any process sharing the backend,
    ///   never let more than `rate.limit` requests through in a burst.
    /// - A denied request changes nothing.
    /// - The state lives under `key` and expires when the bucket is full again.
    /// - An invalid `rate` is `InvalidInput` (`invalid_rate`).
    async fn throttle(
        &self,
        ns: &str,
        key: &str,
        rate: crate::rate::Rate,
    ) -> Result<crate::rate::Throttle>;

    /// Checks that the backend answers; `Unavailable` when it does not.
    async fn ping(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn validation_codes() {
        assert!(validate_namespace("bot-1").is_ok());
        for ns in ["", "a:b", "a\0b"] {
            let e = validate_namespace(ns).expect_err(ns);
            assert_eq!(e.code(), "invalid_namespace");
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
        assert_eq!(
            validate_namespace(&"n".repeat(MAX_NAMESPACE_LEN + 1))
                .expect_err("long")
                .code(),
            "invalid_namespace"
        );
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        for key in ["", "a\0"] {
            assert_eq!(validate_key(key).expect_err(key).code(), "invalid_key");
        }
        assert!(validate_prefix("").is_ok());
        assert_eq!(
            validate_prefix("\0").expect_err("nul").code(),
            "invalid_key"
        );
        assert!(validate_ttl(Duration::from_millis(1)).is_ok());
        assert!(validate_ttl(MAX_TTL).is_ok());
        assert_eq!(
            validate_ttl(Duration::ZERO).expect_err("zero").code(),
            "invalid_ttl"
        );
        assert_eq!(
            validate_ttl(MAX_TTL + Duration::from_secs(1))
                .expect_err("long")
                .code(),
            "invalid_ttl"
        );
    }
}
