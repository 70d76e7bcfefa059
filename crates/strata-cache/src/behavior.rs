//! The behaviour suite every [`CacheStore`] backend passes.
//!
//! Each behaviour is a `pub async fn` that takes the store as
//! `&Arc<dyn CacheStore>` (an owned handle, because
//! [`concurrent_incr_is_atomic`] and [`concurrent_throttle_is_atomic`] spawn
//! tokio tasks with it), uses only the trait, and panics with the backend's
//! name and what went wrong.
//!
//! [`for_each_behavior!`] lists every behaviour once, so a backend's tests
//! make one test per behaviour — one failure never hides the others:
//!
//! ```no_run
//! use std::sync::Arc;
//! use strata_core::cache::CacheStore;
//!
//! macro_rules! memory_tests {
//!     ($($behavior:ident),* $(,)?) => {$(
//!         #[tokio::test(flavor = "multi_thread")]
//!         async fn $behavior() {
//!             let store: Arc<dyn CacheStore> = Arc::new(strata_cache::MemoryCache::new());
//!             strata_cache::behavior::$behavior(&store).await;
//!         }
//!     )*};
//! }
//! strata_cache::behavior::for_each_behavior!(memory_tests);
//! # fn main() {}
//! ```
//!
//! Every check works in namespaces of its own (a name unique to the process,
//! the time and a counter) and removes its keys at the end, so checks for
//! several backends — or several runs — can share one Redis database. The
//! TTL checks sleep past one- and two-second TTLs; the checks need a tokio
//! runtime with the `time` driver, and a multi-threaded one for the
//! concurrent checks.

use bytes::Bytes;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata_core::cache::{CacheStore, MAX_KEY_LEN, MAX_NAMESPACE_LEN, MAX_TTL};
use strata_core::rate::Rate;
use strata_core::{ErrorKind, Result};

/// A TTL long enough that nothing expires during a check.
const LONG: Duration = Duration::from_secs(300);

/// Calls `$callback! { behavior, behavior, … }` with the name of every
/// behaviour in this module, so a test file can generate one test per
/// (backend, behaviour). `for_each_behavior!(callback, args…)` passes the
/// extra arguments first: `$callback! { args… ; behavior, … }` (for example
/// the backend to open).
#[doc(hidden)]
#[macro_export]
macro_rules! __cache_for_each_behavior {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            $($($args)* ;)?
            ping_answers,
            get_set_overwrite_delete,
            binary_values_round_trip,
            invalid_keys_are_rejected,
            invalid_namespaces_are_rejected,
            invalid_ttls_are_rejected,
            incr_counts_and_reads_as_decimal,
            incr_rejects_non_counters_and_overflow,
            delete_prefix_matches_literally,
            delete_prefix_removes_many_keys,
            namespaces_are_isolated,
            ttl_expiry,
            incr_keeps_the_first_expiry,
            concurrent_incr_is_atomic,
            throttle_allows_a_burst_then_refuses,
            concurrent_throttle_is_atomic,
        }
    };
}
#[doc(inline)]
pub use crate::__cache_for_each_behavior as for_each_behavior;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A namespace no other check, suite or earlier run uses.
pub fn unique_namespace(check: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "cache-behavior-{check}-{}-{nanos:x}-{seq}",
        std::process::id()
    )
}

fn must<T>(store: &dyn CacheStore, what: &str, result: Result<T>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("[{}] {what} failed: {e}", store.backend()),
    }
}

fn must_be_invalid<T: Debug>(store: &dyn CacheStore, what: &str, result: Result<T>, code: &str) {
    match result {
        Ok(v) => panic!(
            "[{}] {what}: expected an InvalidInput error `{code}`, got Ok({v:?})",
            store.backend()
        ),
        Err(e) => {
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidInput,
                "[{}] {what}: wrong error kind: {e}",
                store.backend()
            );
            assert_eq!(
                e.code(),
                code,
                "[{}] {what}: wrong error code: {e}",
                store.backend()
            );
        }
    }
}

async fn set(store: &dyn CacheStore, ns: &str, key: &str, value: &[u8], ttl: Duration) {
    must(
        store,
        &format!("set {key:?}"),
        store.set(ns, key, Bytes::copy_from_slice(value), ttl).await,
    );
}

async fn get(store: &dyn CacheStore, ns: &str, key: &str) -> Option<Bytes> {
    must(store, &format!("get {key:?}"), store.get(ns, key).await)
}

async fn delete(store: &dyn CacheStore, ns: &str, key: &str) -> bool {
    must(
        store,
        &format!("delete {key:?}"),
        store.delete(ns, key).await,
    )
}

async fn incr(store: &dyn CacheStore, ns: &str, key: &str, by: i64, ttl: Duration) -> i64 {
    must(
        store,
        &format!("incr {key:?} by {by}"),
        store.incr(ns, key, by, ttl).await,
    )
}

async fn delete_prefix(store: &dyn CacheStore, ns: &str, prefix: &str) -> u64 {
    must(
        store,
        &format!("delete_prefix {prefix:?}"),
        store.delete_prefix(ns, prefix).await,
    )
}

fn assert_value(store: &dyn CacheStore, key: &str, got: Option<Bytes>, want: Option<&[u8]>) {
    assert_eq!(
        got.as_deref(),
        want,
        "[{}] value of {key:?}",
        store.backend()
    );
}

/// Removes everything a check wrote.
async fn clean(store: &dyn CacheStore, ns: &str) {
    delete_prefix(store, ns, "").await;
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// `ping` succeeds on a working backend.
pub async fn ping_answers(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    must(store, "ping", store.ping().await);
}

/// `set` stores, a second `set` replaces, `delete` removes and reports
/// whether something was there; missing keys read as `None`.
pub async fn get_set_overwrite_delete(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("basic");
    assert_value(store, "k", get(store, &ns, "k").await, None);
    set(store, &ns, "k", b"one", LONG).await;
    assert_value(store, "k", get(store, &ns, "k").await, Some(b"one"));
    set(store, &ns, "k", b"two", LONG).await;
    assert_value(store, "k", get(store, &ns, "k").await, Some(b"two"));
    assert!(
        delete(store, &ns, "k").await,
        "[{}] delete of a present key returned false",
        store.backend()
    );
    assert_value(store, "k", get(store, &ns, "k").await, None);
    assert!(
        !delete(store, &ns, "k").await,
        "[{}] delete of a missing key returned true",
        store.backend()
    );
    // Keys with the separator and odd characters are ordinary keys.
    for key in ["a:b", "a:b:c", "sp ace", "ünï/cødé", "*", "?x", "[y]"] {
        set(store, &ns, key, key.as_bytes(), LONG).await;
    }
    for key in ["a:b", "a:b:c", "sp ace", "ünï/cødé", "*", "?x", "[y]"] {
        assert_value(store, key, get(store, &ns, key).await, Some(key.as_bytes()));
    }
    let longest = "k".repeat(MAX_KEY_LEN);
    set(store, &ns, &longest, b"long", LONG).await;
    assert_value(
        store,
        "longest",
        get(store, &ns, &longest).await,
        Some(b"long"),
    );
    clean(store, &ns).await;
}

/// Values are bytes: empty, NUL, invalid UTF-8 and 1 MiB round-trip.
pub async fn binary_values_round_trip(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("binary");
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let values: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("nul", b"a\0b"),
        ("invalid-utf8", &[0xff, 0xfe, 0x00, 0x80]),
        ("big", &big),
    ];
    for (key, value) in values {
        set(store, &ns, key, value, LONG).await;
    }
    for (key, value) in values {
        assert_value(store, key, get(store, &ns, key).await, Some(value));
    }
    clean(store, &ns).await;
}

/// Empty, too long and NUL-containing keys are `invalid_key` everywhere.
pub async fn invalid_keys_are_rejected(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("invalid-key");
    let too_long = "k".repeat(MAX_KEY_LEN + 1);
    for key in ["", "a\0b", too_long.as_str()] {
        let what = format!("key of {} bytes", key.len());
        must_be_invalid(store, &what, store.get(&ns, key).await, "invalid_key");
        must_be_invalid(
            store,
            &what,
            store.set(&ns, key, Bytes::from_static(b"v"), LONG).await,
            "invalid_key",
        );
        must_be_invalid(store, &what, store.delete(&ns, key).await, "invalid_key");
        must_be_invalid(
            store,
            &what,
            store.incr(&ns, key, 1, LONG).await,
            "invalid_key",
        );
    }
    for prefix in ["a\0", too_long.as_str()] {
        must_be_invalid(
            store,
            &format!("prefix of {} bytes", prefix.len()),
            store.delete_prefix(&ns, prefix).await,
            "invalid_key",
        );
    }
}

/// Empty, too long, `:`- or NUL-containing namespaces are
/// `invalid_namespace` everywhere.
pub async fn invalid_namespaces_are_rejected(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let too_long = "n".repeat(MAX_NAMESPACE_LEN + 1);
    for ns in ["", "a:b", "a\0b", too_long.as_str()] {
        let what = format!("namespace {ns:?}");
        must_be_invalid(store, &what, store.get(ns, "k").await, "invalid_namespace");
        must_be_invalid(
            store,
            &what,
            store.set(ns, "k", Bytes::from_static(b"v"), LONG).await,
            "invalid_namespace",
        );
        must_be_invalid(
            store,
            &what,
            store.delete(ns, "k").await,
            "invalid_namespace",
        );
        must_be_invalid(
            store,
            &what,
            store.incr(ns, "k", 1, LONG).await,
            "invalid_namespace",
        );
        must_be_invalid(
            store,
            &what,
            store.delete_prefix(ns, "").await,
            "invalid_namespace",
        );
    }
}

/// A zero TTL or one over [`MAX_TTL`] is `invalid_ttl` and writes nothing.
pub async fn invalid_ttls_are_rejected(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("invalid-ttl");
    for ttl in [Duration::ZERO, MAX_TTL + Duration::from_secs(1)] {
        let what = format!("ttl {ttl:?}");
        must_be_invalid(
            store,
            &what,
            store.set(&ns, "k", Bytes::from_static(b"v"), ttl).await,
            "invalid_ttl",
        );
        must_be_invalid(
            store,
            &what,
            store.incr(&ns, "n", 1, ttl).await,
            "invalid_ttl",
        );
    }
    assert_value(store, "k", get(store, &ns, "k").await, None);
    assert_value(store, "n", get(store, &ns, "n").await, None);
    // The longest TTL is accepted.
    set(store, &ns, "k", b"v", MAX_TTL).await;
    assert_eq!(incr(store, &ns, "n", 1, MAX_TTL).await, 1);
    clean(store, &ns).await;
}

/// `incr` creates at `by`, adds positive, zero and negative steps, and the
/// counter reads back as decimal text; `set` of decimal text is a counter.
pub async fn incr_counts_and_reads_as_decimal(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("incr");
    assert_eq!(incr(store, &ns, "c", 5, LONG).await, 5);
    assert_eq!(incr(store, &ns, "c", 1, LONG).await, 6);
    assert_eq!(incr(store, &ns, "c", 0, LONG).await, 6);
    assert_eq!(incr(store, &ns, "c", -10, LONG).await, -4);
    assert_value(store, "c", get(store, &ns, "c").await, Some(b"-4"));
    assert_eq!(incr(store, &ns, "neg", -3, LONG).await, -3);
    set(store, &ns, "text", b"41", LONG).await;
    assert_eq!(incr(store, &ns, "text", 1, LONG).await, 42);
    assert!(delete(store, &ns, "c").await);
    assert_eq!(
        incr(store, &ns, "c", 2, LONG).await,
        2,
        "[{}] incr after delete must start again",
        store.backend()
    );
    // Large values keep full i64 precision.
    let big = i64::MAX - 1;
    assert_eq!(incr(store, &ns, "big", big, LONG).await, big);
    assert_eq!(incr(store, &ns, "big", 1, LONG).await, i64::MAX);
    clean(store, &ns).await;
}

/// `incr` of a value that is not an integer is `not_a_counter`; past
/// `i64::MAX` is `counter_overflow`; neither changes the value.
pub async fn incr_rejects_non_counters_and_overflow(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("incr-invalid");
    for (key, value) in [
        ("word", &b"hello"[..]),
        ("float", b"1.5"),
        ("empty", b""),
        ("spaces", b" 1"),
    ] {
        set(store, &ns, key, value, LONG).await;
        must_be_invalid(
            store,
            &format!("incr of {value:?}"),
            store.incr(&ns, key, 1, LONG).await,
            "not_a_counter",
        );
        assert_value(store, key, get(store, &ns, key).await, Some(value));
    }
    assert_eq!(incr(store, &ns, "max", i64::MAX, LONG).await, i64::MAX);
    must_be_invalid(
        store,
        "incr past i64::MAX",
        store.incr(&ns, "max", 1, LONG).await,
        "counter_overflow",
    );
    assert_value(
        store,
        "max",
        get(store, &ns, "max").await,
        Some(i64::MAX.to_string().as_bytes()),
    );
    clean(store, &ns).await;
}

/// `delete_prefix` removes exactly the keys that start with the prefix,
/// treating glob characters literally, in one namespace only.
pub async fn delete_prefix_matches_literally(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("prefix");
    let other = unique_namespace("prefix-other");
    let keys = [
        "a*b/1", "a*b/2", "a*bc", "aXb/1", "a?b/1", "aYb/1", "a[b]/1", "ab]/1", "a\\b/1", "a/b/1",
        "other",
    ];
    for key in keys {
        set(store, &ns, key, b"v", LONG).await;
        set(store, &other, key, b"v", LONG).await;
    }
    let cases: [(&str, &[&str]); 5] = [
        ("a*b/", &["a*b/1", "a*b/2"]),
        ("a?", &["a?b/1"]),
        ("a[b]", &["a[b]/1"]),
        ("a\\", &["a\\b/1"]),
        ("nothing-here", &[]),
    ];
    let mut gone: Vec<&str> = Vec::new();
    for (prefix, removed) in cases {
        assert_eq!(
            delete_prefix(store, &ns, prefix).await,
            removed.len() as u64,
            "[{}] delete_prefix {prefix:?} count",
            store.backend()
        );
        gone.extend(removed);
        for key in keys {
            let want: Option<&[u8]> = if gone.contains(&key) {
                None
            } else {
                Some(b"v")
            };
            assert_value(store, key, get(store, &ns, key).await, want);
        }
    }
    // Everything in the other namespace is untouched.
    for key in keys {
        assert_value(store, key, get(store, &other, key).await, Some(b"v"));
    }
    // The empty prefix removes the rest of the namespace.
    assert_eq!(
        delete_prefix(store, &ns, "").await,
        (keys.len() - gone.len()) as u64,
        "[{}] delete_prefix \"\" count",
        store.backend()
    );
    for key in keys {
        assert_value(store, key, get(store, &ns, key).await, None);
        assert_value(store, key, get(store, &other, key).await, Some(b"v"));
    }
    clean(store, &other).await;
}

/// `delete_prefix` over more keys than one backend batch.
pub async fn delete_prefix_removes_many_keys(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("prefix-many");
    for i in 0..1_200 {
        set(store, &ns, &format!("bulk/{i:05}"), b"v", LONG).await;
    }
    set(store, &ns, "keep", b"v", LONG).await;
    assert_eq!(
        delete_prefix(store, &ns, "bulk/").await,
        1_200,
        "[{}] delete_prefix of 1200 keys",
        store.backend()
    );
    assert_value(
        store,
        "bulk/00000",
        get(store, &ns, "bulk/00000").await,
        None,
    );
    assert_value(
        store,
        "bulk/01199",
        get(store, &ns, "bulk/01199").await,
        None,
    );
    assert_value(store, "keep", get(store, &ns, "keep").await, Some(b"v"));
    clean(store, &ns).await;
}

/// Keys, counters and prefixes of one namespace are invisible in another,
/// including one whose name extends the first.
pub async fn namespaces_are_isolated(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let a = unique_namespace("iso");
    let b = format!("{a}-b");
    set(store, &a, "k", b"from-a", LONG).await;
    assert_value(store, "k", get(store, &b, "k").await, None);
    assert!(!delete(store, &b, "k").await);
    set(store, &b, "k", b"from-b", LONG).await;
    assert_value(store, "k", get(store, &a, "k").await, Some(b"from-a"));
    assert_value(store, "k", get(store, &b, "k").await, Some(b"from-b"));
    assert_eq!(incr(store, &a, "n", 1, LONG).await, 1);
    assert_eq!(incr(store, &b, "n", 10, LONG).await, 10);
    assert_eq!(incr(store, &a, "n", 1, LONG).await, 2);
    // `b` starts with `a`, but deleting all of `a` leaves `b` alone.
    assert_eq!(delete_prefix(store, &a, "").await, 2);
    assert_value(store, "k", get(store, &b, "k").await, Some(b"from-b"));
    assert_value(store, "n", get(store, &b, "n").await, Some(b"10"));
    clean(store, &b).await;
}

/// An entry is there until its TTL passes and gone right after; `set`
/// replaces the expiry.
pub async fn ttl_expiry(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("ttl");
    let second = Duration::from_secs(1);
    set(store, &ns, "short", b"v", second).await;
    set(store, &ns, "renewed", b"v", second).await;
    set(store, &ns, "long", b"v", LONG).await;
    assert_eq!(incr(store, &ns, "counter", 1, second).await, 1);
    assert_value(store, "short", get(store, &ns, "short").await, Some(b"v"));
    // Replacing the value replaces a short TTL by a long one.
    set(store, &ns, "renewed", b"w", LONG).await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_value(store, "short", get(store, &ns, "short").await, None);
    assert_value(store, "counter", get(store, &ns, "counter").await, None);
    assert_value(
        store,
        "renewed",
        get(store, &ns, "renewed").await,
        Some(b"w"),
    );
    assert_value(store, "long", get(store, &ns, "long").await, Some(b"v"));
    assert!(
        !delete(store, &ns, "short").await,
        "[{}] delete of an expired key returned true",
        store.backend()
    );
    assert_eq!(
        incr(store, &ns, "counter", 1, second).await,
        1,
        "[{}] incr of an expired counter must start a new window",
        store.backend()
    );
    clean(store, &ns).await;
}

/// `incr` of a live counter keeps the expiry of its first `incr` (a fixed
/// window), whatever TTL the later calls pass.
pub async fn incr_keeps_the_first_expiry(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("window");
    assert_eq!(incr(store, &ns, "w", 1, Duration::from_secs(1)).await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(incr(store, &ns, "w", 1, LONG).await, 2);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_value(store, "w", get(store, &ns, "w").await, None);
    assert_eq!(incr(store, &ns, "w", 1, LONG).await, 1);
    clean(store, &ns).await;
}

/// 8 tasks × 200 `incr(1)` on one counter end at exactly 1600, and the
/// counter expires one TTL after the first increment: the TTL was set once.
pub async fn concurrent_incr_is_atomic(store: &Arc<dyn CacheStore>) {
    const TASKS: i64 = 8;
    const EACH: i64 = 200;
    let ns = unique_namespace("incr-concurrent");
    let ttl = Duration::from_secs(2);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(store);
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                must(
                    store.as_ref(),
                    "concurrent incr",
                    store.incr(&ns, "hits", 1, ttl).await,
                );
            }
        }));
    }
    for task in tasks {
        if let Err(e) = task.await {
            panic!("[{}] an incr task failed: {e}", store.backend());
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "[{}] {} increments took {elapsed:?}, more than 1 s; the check is void",
        store.backend(),
        TASKS * EACH
    );
    let total = TASKS * EACH;
    assert_value(
        store.as_ref(),
        "hits",
        get(store.as_ref(), &ns, "hits").await,
        Some(total.to_string().as_bytes()),
    );
    // One more increment a second into the window: had it renewed the TTL,
    // the counter would live until 3 s; set once, it is gone after 2 s.
    tokio::time::sleep(
        (started + Duration::from_secs(1)).saturating_duration_since(Instant::now()),
    )
    .await;
    assert_eq!(
        incr(store.as_ref(), &ns, "hits", 1, ttl).await,
        total + 1,
        "[{}] late incr",
        store.backend()
    );
    let deadline = started + ttl + Duration::from_millis(300);
    tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await;
    assert_value(
        store.as_ref(),
        "hits",
        get(store.as_ref(), &ns, "hits").await,
        None,
    );
    clean(store.as_ref(), &ns).await;
}

/// A limit of N per minute lets N through at once, refuses the next with a
/// retry time of one emission interval, and keeps keys and namespaces apart.
pub async fn throttle_allows_a_burst_then_refuses(store: &Arc<dyn CacheStore>) {
    let store: &dyn CacheStore = store.as_ref();
    let ns = unique_namespace("throttle");
    let rate = Rate::per_minute(5);
    for expected_remaining in (0..5).rev() {
        let t = store.throttle(&ns, "rl:key", rate).await.expect("throttle");
        assert!(t.allowed, "request within the burst must pass");
        assert_eq!(t.remaining, expected_remaining, "remaining counts down");
        assert_eq!(t.limit, 5);
    }
    let denied = store.throttle(&ns, "rl:key", rate).await.expect("throttle");
    assert!(!denied.allowed, "request 6 of 5 per minute must be refused");
    let retry = denied
        .retry_after
        .expect("a refused request says when to retry");
    assert!(
        retry > Duration::from_secs(10) && retry <= Duration::from_secs(12),
        "retry after one emission interval (12 s), got {retry:?}"
    );
    assert!(
        store
            .throttle(&ns, "rl:other", rate)
            .await
            .expect("throttle")
            .allowed,
        "keys are independent"
    );
    let other_ns = unique_namespace("throttle-other");
    assert!(
        store
            .throttle(&other_ns, "rl:key", rate)
            .await
            .expect("throttle")
            .allowed,
        "namespaces are independent"
    );
    let bad = store
        .throttle(
            &ns,
            "rl:key",
            Rate {
                limit: 0,
                period: Duration::from_secs(1),
            },
        )
        .await
        .expect_err("a zero limit is invalid");
    assert_eq!(bad.code(), "invalid_rate");
    // A fast rate refills: 10 per 100 ms allows again after ~20 ms.
    let fast = Rate {
        limit: 10,
        period: Duration::from_millis(100),
    };
    for _ in 0..10 {
        assert!(
            store
                .throttle(&ns, "rl:fast", fast)
                .await
                .expect("throttle")
                .allowed
        );
    }
    assert!(
        !store
            .throttle(&ns, "rl:fast", fast)
            .await
            .expect("throttle")
            .allowed
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(
        store
            .throttle(&ns, "rl:fast", fast)
            .await
            .expect("throttle")
            .allowed,
        "the bucket refills"
    );
}

/// Concurrent throttles never let more than the limit through.
pub async fn concurrent_throttle_is_atomic(store: &Arc<dyn CacheStore>) {
    let ns = unique_namespace("throttle-concurrent");
    let rate = Rate::per_minute(37);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, ns) = (Arc::clone(store), ns.clone());
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0;
            for _ in 0..20 {
                if store
                    .throttle(&ns, "shared", rate)
                    .await
                    .expect("throttle")
                    .allowed
                {
                    allowed += 1;
                }
            }
            allowed
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    assert_eq!(
        total, 37,
        "exactly the limit passes out of 160 concurrent requests"
    );
}
