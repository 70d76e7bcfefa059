//! Runs the behaviour suite against every cache backend as one test per
//! (backend, behaviour): `MemoryCache`, `ResilientCache` over a healthy
//! `MemoryCache`, and `RedisCache` at `STRATA_TEST_REDIS_URL`
//! (`bash scripts/test.sh` sets it). Each test opens its own store, and every
//! behaviour works in namespaces of its own, so the tests are independent and
//! run in parallel. Without the variable the Redis tests are skipped loudly,
//! or fail under CI (the policy is `strata_testkit::backend`).

use std::sync::Arc;
use strata_cache::{behavior, open_cache, MemoryCache, RedisCache, ResilientCache};
use strata_core::cache::CacheStore;
use strata_core::ErrorKind;

/// The Redis to test against, or `None` after a `SKIPPED` line (a failure
/// under CI).
#[track_caller]
fn redis_url(test: &str) -> Option<String> {
    strata_testkit::backend("STRATA_TEST_REDIS_URL", test)
}

async fn open_memory(_test: &str) -> Option<Arc<dyn CacheStore>> {
    Some(Arc::new(MemoryCache::new()))
}

async fn open_resilient(_test: &str) -> Option<Arc<dyn CacheStore>> {
    Some(Arc::new(ResilientCache::new(Arc::new(MemoryCache::new()))))
}

async fn open_redis(test: &str) -> Option<Arc<dyn CacheStore>> {
    let url = redis_url(test)?;
    match RedisCache::connect(&url).await {
        Ok(cache) => Some(Arc::new(cache)),
        Err(e) => panic!("Redis at STRATA_TEST_REDIS_URL is unreachable: {e}"),
    }
}

/// `mod $backend { one #[tokio::test] per behaviour }`; `$name` is what
/// `CacheStore::backend` answers.
macro_rules! backend_tests {
    ($backend:ident, $open:ident, $name:literal; $($behavior:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $behavior() {
                    let test = concat!(stringify!($backend), "::", stringify!($behavior));
                    let Some(store) = super::$open(test).await else { return };
                    assert_eq!(store.backend(), $name);
                    super::behavior::$behavior(&store).await;
                }
            )*
        }
    };
}

behavior::for_each_behavior!(backend_tests, memory, open_memory, "memory");
behavior::for_each_behavior!(backend_tests, resilient_memory, open_resilient, "memory");
behavior::for_each_behavior!(backend_tests, redis, open_redis, "redis");

#[tokio::test(flavor = "multi_thread")]
async fn open_cache_picks_the_backend_by_url() {
    let memory = open_cache("memory://").await.expect("memory://");
    assert_eq!(memory.backend(), "memory");

    let Some(url) = redis_url("open_cache_picks_the_backend_by_url") else {
        return;
    };
    let redis = open_cache(&url).await.expect("redis URL");
    assert_eq!(redis.backend(), "redis");
    if let Some(rest) = url.strip_prefix("redis://") {
        let valkey = open_cache(&format!("valkey://{rest}"))
            .await
            .expect("valkey:// URL");
        assert_eq!(valkey.backend(), "redis");
        valkey.ping().await.expect("ping through valkey://");
    }

    let err = open_cache("ftp://example.invalid")
        .await
        .expect_err("unknown scheme");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.code(), "invalid_cache_url");
}

/// An unreachable server is `Unavailable` (retryable) at connect, and the
/// message names the URL without its password.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_redis_is_unavailable_without_the_password() {
    let err = RedisCache::connect("redis://:hunter2@127.0.0.1:1/0")
        .await
        .expect_err("nothing listens on port 1");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// This build has no TLS support in the `redis` crate: `rediss://` is a
/// clear configuration error (not a hang, not a leaked password).
#[tokio::test(flavor = "multi_thread")]
async fn tls_urls_are_refused_without_tls_support() {
    let err = open_cache("rediss://:hunter2@127.0.0.1:6380/0")
        .await
        .expect_err("no TLS support compiled in");
    let text = format!("{err} {err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text}");
    assert_eq!(err.code(), "invalid_cache_url", "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// The resilient layer's hit ratio counts hits over lookups. (Over a
/// healthy backend it passes the suite: `resilient_memory::*`.)
#[tokio::test(flavor = "multi_thread")]
async fn resilient_layer_counts_its_hit_ratio() {
    let counted = ResilientCache::new(Arc::new(MemoryCache::new()));
    assert_eq!(counted.hit_ratio(), None);
    counted
        .set(
            "ratio",
            "k",
            bytes::Bytes::from_static(b"v"),
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("set");
    for key in ["k", "k", "k", "absent"] {
        counted.get("ratio", key).await.expect("get");
    }
    assert_eq!(counted.hit_ratio(), Some(0.75));
}

/// The resilient layer turns an outage into misses and unchecked limits: a
/// real Redis that goes away, and every call still answers. This starts its
/// own redis-server, so it is a backend test like the Redis ones.
#[tokio::test(flavor = "multi_thread")]
async fn resilient_layer_degrades_instead_of_failing() {
    if redis_url("resilient_layer_degrades_instead_of_failing").is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server must be installed to test the cache going away");
    let url = format!("redis://127.0.0.1:{port}/0");
    let mut connected = None;
    for _ in 0..100 {
        if let Ok(c) = RedisCache::connect(&url).await {
            connected = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let down = connected.expect("the test redis-server started");
    let probe = ResilientCache::new(Arc::new(down.clone()));
    probe
        .set(
            "ns",
            "k",
            bytes::Bytes::from_static(b"v"),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("set");
    assert_eq!(
        probe.get("ns", "k").await.expect("get").as_deref(),
        Some(&b"v"[..])
    );
    let _ = server.kill();
    let _ = server.wait();
    let cache = ResilientCache::new(Arc::new(down));
    assert_eq!(
        cache.get("ns", "k").await.expect("a miss, not an error"),
        None
    );
    cache
        .set(
            "ns",
            "k",
            bytes::Bytes::from_static(b"v"),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("a dropped write, not an error");
    let t = cache
        .throttle("ns", "k", strata_core::rate::Rate::per_minute(1))
        .await
        .expect("an unchecked limit, not an error");
    assert!(t.allowed);
    assert!(
        cache.get("ns", "").await.is_err(),
        "invalid input is still an error"
    );
}
