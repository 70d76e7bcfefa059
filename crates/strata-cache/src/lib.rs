//! Strata's cache layer: short-lived bytes and fixed-window counters, one
//! keyspace per namespace (the bot), every entry with a TTL.
//!
//! The trait and its contract are [`strata_core::cache::CacheStore`]; this
//! crate holds its backends and the behaviour suite every backend passes:
//!
//! | backend  | type            | URL                                   | storage                              |
//! |----------|-----------------|---------------------------------------|--------------------------------------|
//! | `memory` | [`MemoryCache`] | `memory://`                           | a byte-bounded `moka` cache, lost at exit |
//! | `redis`  | [`RedisCache`]  | `redis://`, `rediss://`, `valkey://`  | Redis or Valkey, keys `strata:{ns}:{key}` |
//!
//! `rediss://` (TLS) needs a TLS feature of the `redis` crate, which this
//! build does not enable yet: such a URL is refused as `invalid_cache_url`.
//!
//! The cache is derived state: any entry may vanish (eviction, restart), and
//! callers recompute on a miss. [`behavior`] only talks to
//! the trait, so a new backend is done when every behaviour
//! [`behavior::for_each_behavior!`] lists passes against it
//! (`tests/behavior.rs` makes one test of each).
//!
//! ```
//! use bytes::Bytes;
//! use std::time::Duration;
//! use strata_core::cache::CacheStore;
//!
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(async {
//! let cache = strata_cache::open_cache("memory://").await.expect("open");
//! let minute = Duration::from_secs(60);
//! cache.set("bot-1", "greeting", Bytes::from_static(b"hello"), minute).await.expect("set");
//! assert_eq!(cache.get("bot-1", "greeting").await.expect("get").as_deref(), Some(&b"hello"[..]));
//! assert_eq!(cache.get("bot-2", "greeting").await.expect("get"), None);
//! assert_eq!(cache.incr("bot-1", "requests", 1, minute).await.expect("incr"), 1);
//! # });
//! ```

pub mod behavior;
pub mod memory;
pub mod redis;
pub mod resilient;

pub use memory::MemoryCache;
pub use redis::RedisCache;
pub use resilient::ResilientCache;

use std::sync::Arc;
use strata_core::cache::CacheStore;
use strata_core::{Error, Result};

/// Opens the cache named by `url` (`STRATA_CACHE_URL`):
/// `memory://` → [`MemoryCache`]; `redis://…`, `rediss://…` → [`RedisCache`];
/// `valkey://…` is read as `redis://…` (`valkeys://` as `rediss://`).
///
/// An unknown scheme is `InvalidInput` (`invalid_cache_url`); an unreachable
/// server is `Unavailable`. Messages never contain the URL's password.
pub async fn open_cache(url: &str) -> Result<Arc<dyn CacheStore>> {
    let url = url.trim();
    if url == "memory://" || url == "memory" {
        return Ok(Arc::new(MemoryCache::new()));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return Ok(Arc::new(RedisCache::connect(url).await?));
    }
    if let Some(rest) = url.strip_prefix("valkey://") {
        return Ok(Arc::new(
            RedisCache::connect(&format!("redis://{rest}")).await?,
        ));
    }
    if let Some(rest) = url.strip_prefix("valkeys://") {
        return Ok(Arc::new(
            RedisCache::connect(&format!("rediss://{rest}")).await?,
        ));
    }
    Err(Error::invalid(format!(
        "unsupported cache URL {}: use memory://, redis://, rediss:// or valkey://",
        crate::redis::redact_url(url)
    ))
    .with_code("invalid_cache_url"))
}
