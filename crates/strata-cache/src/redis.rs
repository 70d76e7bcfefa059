//! `RedisCache`: the Redis / Valkey cache backend.
//!
//! One `redis::aio::ConnectionManager` (a multiplexed connection that
//! reconnects by itself) is shared by every call; it is cheap to clone.
//! Keys are `strata:{ns}:{key}` — namespaces cannot contain `:`, so two
//! namespaces never share a key. Every entry is written with a `PX` expiry.
//!
//! - `incr` is one `MULTI`/`EXEC` transaction: `SET key 0 NX PX ttl` (creates
//!   the counter with its expiry only when absent) then `INCRBY key by`;
//!   Redis runs both without interleaving, so the window's expiry is set
//!   exactly once and no increment is lost. (A Lua script would do the same
//!   but returns integers through Lua doubles.)
//! - `delete_prefix` walks `SCAN MATCH strata:{ns}:{prefix}*` with the glob
//!   characters of the namespace and prefix escaped, and `UNLINK`s each
//!   batch; it sums what `UNLINK` reports.
//!
//! Every `redis::RedisError` is mapped here into `strata_core::Error`:
//! `Unavailable` (retryable) for failures of the server or the connection,
//! `InvalidInput` for a counter that is not an integer or would overflow.

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt;
use std::time::Duration;
use strata_core::cache::{
    counter_overflow, not_a_counter, validate_entry, validate_namespace, validate_prefix,
    validate_ttl, CacheStore,
};
use strata_core::rate::{throttle_from_parts, Rate, Throttle};
use strata_core::{Error, Result};

/// Keys handed to one `UNLINK` (and asked of one `SCAN` step).
const SCAN_BATCH: usize = 500;
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The Redis / Valkey cache backend (`redis://`, `rediss://`, `valkey://`).
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    /// The URL with any password replaced by `***`.
    display_url: String,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.display_url)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects to `url` (`redis://[user:password@]host:port/db`, or
    /// `rediss://…` where the `redis` crate was built with TLS) and checks
    /// the server answers `PING`.
    ///
    /// A malformed URL is `InvalidInput` (`invalid_cache_url`); a server
    /// that cannot be reached is `Unavailable`. Neither message contains the
    /// URL's password.
    pub async fn connect(url: &str) -> Result<Self> {
        let display_url = redact_url(url);
        let client = redis::Client::open(url).map_err(|e| {
            Error::invalid(format!("invalid cache URL {display_url}: {}", e))
                .with_code("invalid_cache_url")
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(1)
            .set_factor(50)
            .set_max_delay(200);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| {
                Error::unavailable(format!(
                    "cannot connect to the cache at {display_url}: {}",
                    e
                ))
            })?;
        let cache = RedisCache {
            connection,
            display_url,
        };
        cache.ping().await.map_err(|e| {
            Error::unavailable(format!(
                "the cache at {} does not answer PING: {}",
                cache.display_url,
                e.message()
            ))
        })?;
        Ok(cache)
    }

    /// The URL this cache was opened with, password redacted.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

/// The Redis key of `key` in `ns`.
fn redis_key(ns: &str, key: &str) -> String {
    format!("strata:{ns}:{key}")
}

/// Escapes the glob characters of `MATCH` patterns (`* ? [ ] \`).
fn glob_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn prefix_pattern(ns: &str, prefix: &str) -> String {
    let mut pattern = String::from("strata:");
    glob_escape(ns, &mut pattern);
    pattern.push(':');
    glob_escape(prefix, &mut pattern);
    pattern.push('*');
    pattern
}

fn ttl_millis(ttl: Duration) -> u64 {
    // At least 1 ms: PX 0 is an error in Redis, and validate_ttl already
    // rejected zero.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Maps a Redis failure of operation `op` into Strata's error. The text of a
/// `RedisError` names its kind, code and detail, never the connection URL.
fn unavailable(op: &str, e: redis::RedisError) -> Error {
    Error::unavailable(format!("cache {op} failed: {}", e))
}

fn map_incr_error(key: &str, e: redis::RedisError) -> Error {
    let text = e.to_string();
    if text.contains("not an integer") {
        not_a_counter(key)
    } else if text.contains("overflow") {
        counter_overflow(key)
    } else {
        unavailable("incr", e)
    }
}

#[async_trait]
impl CacheStore for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Bytes>> {
        validate_entry(ns, key)?;
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(redis_key(ns, key))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| unavailable("get", e))?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, ns: &str, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        validate_entry(ns, key)?;
        validate_ttl(ttl)?;
        let () = redis::cmd("SET")
            .arg(redis_key(ns, key))
            .arg(value.as_ref())
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| unavailable("set", e))?;
        Ok(())
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        validate_entry(ns, key)?;
        let removed: u64 = redis::cmd("UNLINK")
            .arg(redis_key(ns, key))
            .query_async(&mut self.connection())
            .await
            .map_err(|e| unavailable("delete", e))?;
        Ok(removed > 0)
    }

    async fn incr(&self, ns: &str, key: &str, by: i64, ttl: Duration) -> Result<i64> {
        validate_entry(ns, key)?;
        validate_ttl(ttl)?;
        let rkey = redis_key(ns, key);
        let (value,): (i64,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&rkey)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .ignore()
            .cmd("INCRBY")
            .arg(&rkey)
            .arg(by)
            .query_async(&mut self.connection())
            .await
            .map_err(|e| map_incr_error(key, e))?;
        Ok(value)
    }

    async fn delete_prefix(&self, ns: &str, prefix: &str) -> Result<u64> {
        validate_namespace(ns)?;
        validate_prefix(prefix)?;
        let pattern = prefix_pattern(ns, prefix);
        let mut connection = self.connection();
        let mut cursor: u64 = 0;
        let mut removed = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(&mut connection)
                .await
                .map_err(|e| unavailable("delete_prefix (SCAN)", e))?;
            for batch in keys.chunks(SCAN_BATCH) {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(batch)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| unavailable("delete_prefix (UNLINK)", e))?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    async fn throttle(&self, ns: &str, key: &str, rate: Rate) -> Result<Throttle> {
        validate_entry(ns, key)?;
        rate.validate()?;
        let (allowed, retry_after_us, reset_after_us): (i64, i64, i64) = GCRA
            .key(redis_key(ns, key))
            .arg(rate.emission_us())
            .arg(rate.burst_us())
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| unavailable("throttle", e))?;
        Ok(throttle_from_parts(
            &rate,
            allowed == 1,
            retry_after_us,
            reset_after_us,
        ))
    }

    async fn ping(&self) -> Result<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection())
            .await
            .map_err(|e| unavailable("ping", e))?;
        Ok(())
    }
}

/// One GCRA step (see `strata_core::rate::gcra_step`) as one atomic script,
/// on the Redis server's clock so every process agrees on "now". Times are
/// microseconds (exact in Lua's doubles for the next few centuries).
static GCRA: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - burst
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, 0, new_tat - now}
",
    )
});

/// `url` with its password replaced by `***` (Strata's one redactor,
/// [`strata_core::redact::redact_url`]).
pub fn redact_url(url: &str) -> String {
    strata_core::redact::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/15"),
            "redis://127.0.0.1:6379/15"
        );
        assert_eq!(
            redact_url("redis://:hunter2@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:p@ss@host/1"),
            "rediss://user:***@host/1"
        );
        // A user name alone is not a secret (redis-rs sends it as the ACL
        // user, never as the password).
        assert_eq!(redact_url("redis://app@host"), "redis://app@host");
    }

    #[test]
    fn patterns_escape_globs() {
        assert_eq!(
            prefix_pattern("bot", "a*b?[c]\\"),
            "strata:bot:a\\*b\\?\\[c\\]\\\\*"
        );
        assert_eq!(prefix_pattern("bot", ""), "strata:bot:*");
    }
}
