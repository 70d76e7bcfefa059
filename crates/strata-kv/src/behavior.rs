//! The behaviour suite every [`KvStore`] backend passes.
//!
//! Each behaviour is a `pub async fn` that takes the store as
//! `&Arc<dyn KvStore>` (an owned handle, because
//! [`spawned_tasks_set_distinct_keys`] spawns tokio tasks with it), uses only
//! the trait, and panics with the backend's name and what went wrong.
//!
//! [`for_each_behavior!`] lists every behaviour once, so a backend's tests
//! make one test per behaviour — one failure never hides the others:
//!
//! ```no_run
//! use std::sync::Arc;
//! use strata_core::kv::KvStore;
//!
//! macro_rules! memory_tests {
//!     ($($behavior:ident),* $(,)?) => {$(
//!         #[tokio::test(flavor = "multi_thread")]
//!         async fn $behavior() {
//!             let store: Arc<dyn KvStore> = Arc::new(strata_kv::MemoryKv::new());
//!             strata_kv::behavior::$behavior(&store).await;
//!         }
//!     )*};
//! }
//! strata_kv::behavior::for_each_behavior!(memory_tests);
//! # fn main() {}
//! ```
//!
//! Every check works in namespaces of its own (a name unique to the process,
//! the time and a counter) and clears them at the end, so checks for several
//! backends — or several runs — can share one database. Two assumptions:
//! - reads never delete expired keys themselves (purging is
//!   `purge_expired`'s job), so [`ttl_expiry`] can count what it purges;
//! - the checks need a multi-threaded tokio runtime only for
//!   [`spawned_tasks_set_distinct_keys`]; the rest run on any runtime with
//!   the `time` driver enabled.

use bytes::Bytes;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata_core::kv::{KvOp, KvOpOutcome, KvStats, KvStore, SetOptions, MAX_KEY_LEN, MAX_TTL};
use strata_core::{Cursor, ErrorKind, PageRequest, Result};

/// Calls `$callback! { behavior, behavior, … }` with the name of every
/// behaviour in this module, so a test file can generate one test per
/// (backend, behaviour). `for_each_behavior!(callback, args…)` passes the
/// extra arguments first: `$callback! { args… ; behavior, … }` (for example
/// the backend to open). The `ttl_expiry`
/// behaviour sleeps past a one-second TTL.
#[doc(hidden)]
#[macro_export]
macro_rules! __kv_for_each_behavior {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            $($($args)* ;)?
            get_set_overwrite_delete_exists,
            invalid_keys_are_rejected,
            invalid_ttls_are_rejected,
            binary_values_round_trip,
            list_paginates_in_byte_order,
            list_prefix_matches_literally,
            clear_prefix_removes_only_matching_keys,
            namespaces_are_isolated,
            batch_reports_each_operation,
            transaction_with_an_invalid_op_applies_nothing,
            transaction_applies_every_op_in_order,
            stats_count_live_keys_and_bytes,
            concurrent_sets_all_land,
            spawned_tasks_set_distinct_keys,
            ttl_expiry,
        }
    };
}
#[doc(inline)]
pub use crate::__kv_for_each_behavior as for_each_behavior;

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
    format!("kv-behavior-{check}-{}-{nanos:x}-{seq}", std::process::id())
}

fn must<T>(store: &dyn KvStore, what: &str, result: Result<T>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("[{}] {what} failed: {e}", store.backend()),
    }
}

fn must_be_invalid<T: Debug>(store: &dyn KvStore, what: &str, result: Result<T>, code: &str) {
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

async fn set(store: &dyn KvStore, ns: &str, key: &str, value: &[u8]) {
    must(
        store,
        &format!("set {key:?}"),
        store
            .set(
                ns,
                key,
                Bytes::copy_from_slice(value),
                SetOptions::default(),
            )
            .await,
    );
}

async fn set_ttl(store: &dyn KvStore, ns: &str, key: &str, value: &[u8], ttl: Duration) {
    must(
        store,
        &format!("set {key:?} with ttl {ttl:?}"),
        store
            .set(
                ns,
                key,
                Bytes::copy_from_slice(value),
                SetOptions::with_ttl(ttl),
            )
            .await,
    );
}

async fn get(store: &dyn KvStore, ns: &str, key: &str) -> Option<Bytes> {
    must(store, &format!("get {key:?}"), store.get(ns, key).await)
}

async fn exists(store: &dyn KvStore, ns: &str, key: &str) -> bool {
    must(
        store,
        &format!("exists {key:?}"),
        store.exists(ns, key).await,
    )
}

async fn delete(store: &dyn KvStore, ns: &str, key: &str) -> bool {
    must(
        store,
        &format!("delete {key:?}"),
        store.delete(ns, key).await,
    )
}

async fn stats(store: &dyn KvStore, ns: &str) -> KvStats {
    must(store, "stats", store.stats(ns).await)
}

fn assert_value(store: &dyn KvStore, key: &str, got: Option<Bytes>, want: Option<&[u8]>) {
    assert_eq!(
        got.as_deref(),
        want,
        "[{}] value of {key:?}",
        store.backend()
    );
}

/// Every key under `prefix`, page by page of `limit`, passing each cursor
/// through its client-visible encoding. Returns the keys and the page sizes.
async fn list_all(
    store: &dyn KvStore,
    ns: &str,
    prefix: &str,
    limit: u32,
) -> (Vec<String>, Vec<usize>) {
    let mut keys = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = PageRequest { cursor, limit };
        let got = must(
            store,
            &format!("list {prefix:?}"),
            store.list(ns, prefix, &page).await,
        );
        assert!(
            got.items.len() <= limit as usize,
            "[{}] list {prefix:?} returned {} items for limit {limit}",
            store.backend(),
            got.items.len()
        );
        sizes.push(got.items.len());
        keys.extend(got.items);
        cursor = match got.next_cursor {
            None => return (keys, sizes),
            Some(c) => Some(must(store, "decode cursor", Cursor::decode(&c.encode()))),
        };
        assert!(
            sizes.len() <= 10_000,
            "[{}] list {prefix:?} never ends",
            store.backend()
        );
    }
}

async fn keys_of(store: &dyn KvStore, ns: &str, prefix: &str) -> Vec<String> {
    list_all(store, ns, prefix, 1000).await.0
}

fn strings(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

async fn cleanup(store: &dyn KvStore, ns: &str) {
    must(store, "clear namespace", store.clear_prefix(ns, "").await);
}

fn set_op(key: &str, value: &[u8], ttl: Option<Duration>) -> KvOp {
    KvOp::Set {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(value),
        ttl,
    }
}

fn delete_op(key: &str) -> KvOp {
    KvOp::Delete {
        key: key.to_owned(),
    }
}

/// Polls all futures concurrently on the current task; outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// A value can be written, read, replaced and removed; `delete` reports
/// whether there was a value, and deleting a missing key succeeds.
pub async fn get_set_overwrite_delete_exists(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("basic");
    let ns = ns.as_str();
    assert_value(store, "k", get(store, ns, "k").await, None);
    assert!(
        !exists(store, ns, "k").await,
        "[{}] missing key exists",
        store.backend()
    );

    set(store, ns, "k", b"one").await;
    assert_value(store, "k", get(store, ns, "k").await, Some(b"one"));
    assert!(
        exists(store, ns, "k").await,
        "[{}] stored key does not exist",
        store.backend()
    );

    set(store, ns, "k", b"two, longer").await;
    assert_value(store, "k", get(store, ns, "k").await, Some(b"two, longer"));

    assert!(
        delete(store, ns, "k").await,
        "[{}] delete of a stored key returned false",
        store.backend()
    );
    assert_value(store, "k", get(store, ns, "k").await, None);
    assert!(
        !exists(store, ns, "k").await,
        "[{}] deleted key exists",
        store.backend()
    );
    assert!(
        !delete(store, ns, "k").await,
        "[{}] second delete returned true",
        store.backend()
    );
    assert!(
        !delete(store, ns, "never-set").await,
        "[{}] delete of a missing key returned true",
        store.backend()
    );
    cleanup(store, ns).await;
}

/// Empty keys, keys with NUL and keys over [`MAX_KEY_LEN`] bytes are
/// `invalid_key` for every single-key method; the longest legal key works.
pub async fn invalid_keys_are_rejected(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("invalid-keys");
    let ns = ns.as_str();
    let too_long = "x".repeat(MAX_KEY_LEN + 1);
    // 2-byte characters: 513 of them are 1026 bytes though only 513 chars.
    let too_long_multibyte = "é".repeat(MAX_KEY_LEN / 2 + 1);
    for (name, key) in [
        ("empty", ""),
        ("with NUL", "a\0b"),
        ("over the limit", too_long.as_str()),
        ("over the limit in bytes", too_long_multibyte.as_str()),
    ] {
        let what = |method: &str| format!("{method} of a key {name}");
        must_be_invalid(store, &what("get"), store.get(ns, key).await, "invalid_key");
        must_be_invalid(
            store,
            &what("set"),
            store
                .set(ns, key, Bytes::from_static(b"v"), SetOptions::default())
                .await,
            "invalid_key",
        );
        must_be_invalid(
            store,
            &what("delete"),
            store.delete(ns, key).await,
            "invalid_key",
        );
        must_be_invalid(
            store,
            &what("exists"),
            store.exists(ns, key).await,
            "invalid_key",
        );
    }
    assert_eq!(
        stats(store, ns).await,
        KvStats::default(),
        "[{}] a rejected set stored something",
        store.backend()
    );

    let longest = "y".repeat(MAX_KEY_LEN);
    let longest_multibyte = "é".repeat(MAX_KEY_LEN / 2);
    for key in [&longest, &longest_multibyte] {
        set(store, ns, key, b"v").await;
        assert_value(
            store,
            "the longest key",
            get(store, ns, key).await,
            Some(b"v"),
        );
    }
    cleanup(store, ns).await;
}

/// A zero TTL or one over [`MAX_TTL`] is `invalid_ttl`; `MAX_TTL` itself works.
pub async fn invalid_ttls_are_rejected(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("invalid-ttls");
    let ns = ns.as_str();
    for ttl in [Duration::ZERO, MAX_TTL + Duration::from_secs(1)] {
        must_be_invalid(
            store,
            &format!("set with ttl {ttl:?}"),
            store
                .set(ns, "k", Bytes::from_static(b"v"), SetOptions::with_ttl(ttl))
                .await,
            "invalid_ttl",
        );
    }
    assert!(
        !exists(store, ns, "k").await,
        "[{}] a rejected set stored the key",
        store.backend()
    );
    set_ttl(store, ns, "k", b"v", MAX_TTL).await;
    assert_value(store, "k", get(store, ns, "k").await, Some(b"v"));
    cleanup(store, ns).await;
}

/// Values are opaque bytes: every byte value, invalid UTF-8, NUL, the empty
/// value and a large value come back exactly.
pub async fn binary_values_round_trip(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("binary");
    let ns = ns.as_str();
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let large: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: [(&str, &[u8]); 5] = [
        ("every-byte", &every_byte),
        ("invalid-utf8", &[0xff, 0xfe, 0xc3, 0x28, 0x80]),
        ("nul", &[0, 0, 1, 0]),
        ("empty", &[]),
        ("large", &large),
    ];
    for (key, value) in cases {
        set(store, ns, key, value).await;
    }
    for (key, value) in cases {
        assert_value(store, key, get(store, ns, key).await, Some(value));
        assert!(
            exists(store, ns, key).await,
            "[{}] {key:?} does not exist",
            store.backend()
        );
    }
    let bytes: u64 = cases.iter().map(|(_, v)| v.len() as u64).sum();
    assert_eq!(
        stats(store, ns).await,
        KvStats {
            keys: cases.len() as u64,
            value_bytes: bytes
        },
        "[{}] stats after binary values",
        store.backend()
    );
    cleanup(store, ns).await;
}

/// `list` returns exactly the prefix's keys, in byte order, in pages that
/// neither repeat nor skip a key; a cursor before the prefix starts at it.
pub async fn list_paginates_in_byte_order(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("list");
    let ns = ns.as_str();
    let mut inside: Vec<String> = (0..20).map(|i| format!("item/{i:02}")).collect();
    inside.extend(strings(&["item/", "item/Z", "item/z", "item/é", "item/😀"]));
    let outside = strings(&[
        "item", "item.", "item0", "iten/", "ite", "Item/x", "é", "é/1", "ê", "e",
    ]);
    // Written in an order that is not the byte order.
    for (i, key) in inside.iter().rev().chain(outside.iter()).enumerate() {
        set(store, ns, key, format!("v{i}").as_bytes()).await;
    }
    let mut expected = inside.clone();
    expected.sort();
    assert_eq!(expected.len(), 25);

    let (keys, sizes) = list_all(store, ns, "item/", 10).await;
    assert_eq!(
        sizes,
        vec![10, 10, 5],
        "[{}] page sizes for 25 keys by 10",
        store.backend()
    );
    assert_eq!(
        keys,
        expected,
        "[{}] keys under \"item/\" in byte order",
        store.backend()
    );

    let (keys, sizes) = list_all(store, ns, "item/", 25).await;
    assert_eq!(
        sizes,
        vec![25],
        "[{}] an exactly full page has no next cursor",
        store.backend()
    );
    assert_eq!(keys, expected);
    let (keys, sizes) = list_all(store, ns, "item/", 1).await;
    assert_eq!(sizes.len(), 25, "[{}] pages of one", store.backend());
    assert_eq!(keys, expected);

    let mut everything: Vec<String> = inside.iter().chain(outside.iter()).cloned().collect();
    everything.sort();
    assert_eq!(
        keys_of(store, ns, "").await,
        everything,
        "[{}] the whole namespace",
        store.backend()
    );
    assert_eq!(
        keys_of(store, ns, "é").await,
        strings(&["é", "é/1"]),
        "[{}] a non-ASCII prefix",
        store.backend()
    );
    assert_eq!(keys_of(store, ns, "item/é").await, strings(&["item/é"]));
    assert!(
        keys_of(store, ns, "nothing/").await.is_empty(),
        "[{}] a prefix with no keys",
        store.backend()
    );

    let early = PageRequest {
        cursor: Some(Cursor::after("a")),
        limit: 100,
    };
    let page = must(
        store,
        "list after an early cursor",
        store.list(ns, "item/", &early).await,
    );
    assert_eq!(
        page.items,
        expected,
        "[{}] a cursor before the prefix",
        store.backend()
    );
    assert!(page.next_cursor.is_none());
    let late = PageRequest {
        cursor: Some(Cursor::after("item/😀")),
        limit: 100,
    };
    let page = must(
        store,
        "list after the last key",
        store.list(ns, "item/", &late).await,
    );
    assert!(
        page.items.is_empty(),
        "[{}] a cursor after the last key: {:?}",
        store.backend(),
        page.items
    );
    assert!(page.next_cursor.is_none());
    cleanup(store, ns).await;
}

/// `%`, `_` and `\` in a prefix match themselves only (no `LIKE` patterns).
pub async fn list_prefix_matches_literally(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("list-literal");
    let ns = ns.as_str();
    for key in [
        "a%", "a%b", "a%c", "axb", "a_1", "ab1", "a\\x", "a\\", "abc",
    ] {
        set(store, ns, key, b"v").await;
    }
    assert_eq!(
        keys_of(store, ns, "a%").await,
        strings(&["a%", "a%b", "a%c"]),
        "[{}] prefix \"a%\"",
        store.backend()
    );
    assert_eq!(
        keys_of(store, ns, "a_").await,
        strings(&["a_1"]),
        "[{}] prefix \"a_\"",
        store.backend()
    );
    assert_eq!(
        keys_of(store, ns, "a\\").await,
        strings(&["a\\", "a\\x"]),
        "[{}] prefix \"a\\\"",
        store.backend()
    );
    assert!(
        keys_of(store, ns, "%").await.is_empty(),
        "[{}] prefix \"%\"",
        store.backend()
    );
    assert!(
        keys_of(store, ns, "_").await.is_empty(),
        "[{}] prefix \"_\"",
        store.backend()
    );
    let cleared = must(store, "clear \"a_\"", store.clear_prefix(ns, "a_").await);
    assert_eq!(
        cleared,
        1,
        "[{}] clear_prefix(\"a_\") count",
        store.backend()
    );
    let cleared = must(store, "clear \"a%\"", store.clear_prefix(ns, "a%").await);
    assert_eq!(
        cleared,
        3,
        "[{}] clear_prefix(\"a%\") count",
        store.backend()
    );
    assert_eq!(
        keys_of(store, ns, "").await,
        strings(&["a\\", "a\\x", "ab1", "abc", "axb"])
    );
    cleanup(store, ns).await;
}

/// `clear_prefix` removes exactly the keys starting with the prefix and
/// counts them; `""` clears the namespace.
pub async fn clear_prefix_removes_only_matching_keys(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("clear");
    let ns = ns.as_str();
    for key in [
        "tmp/1",
        "tmp/2",
        "tmp/3",
        "tmp/sub/4",
        "tmp",
        "tmpx",
        "tm",
        "keep/1",
    ] {
        set(store, ns, key, b"v").await;
    }
    let cleared = must(
        store,
        "clear \"tmp/\"",
        store.clear_prefix(ns, "tmp/").await,
    );
    assert_eq!(
        cleared,
        4,
        "[{}] clear_prefix(\"tmp/\") count",
        store.backend()
    );
    assert_eq!(
        keys_of(store, ns, "").await,
        strings(&["keep/1", "tm", "tmp", "tmpx"])
    );
    assert_value(store, "tmp/1", get(store, ns, "tmp/1").await, None);
    let cleared = must(
        store,
        "clear \"tmp/\" again",
        store.clear_prefix(ns, "tmp/").await,
    );
    assert_eq!(
        cleared,
        0,
        "[{}] clearing an empty prefix again",
        store.backend()
    );
    let cleared = must(store, "clear \"\"", store.clear_prefix(ns, "").await);
    assert_eq!(cleared, 4, "[{}] clear_prefix(\"\") count", store.backend());
    assert_eq!(stats(store, ns).await, KvStats::default());
    let cleared = must(
        store,
        "clear an empty namespace",
        store.clear_prefix(ns, "").await,
    );
    assert_eq!(cleared, 0);
}

/// Namespaces never see each other's keys, in any method.
pub async fn namespaces_are_isolated(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let a = unique_namespace("ns-a");
    let b = unique_namespace("ns-b");
    let (a, b) = (a.as_str(), b.as_str());
    set(store, a, "shared", b"from a").await;
    set(store, b, "shared", b"from b, longer").await;
    set(store, a, "only-a", b"1").await;
    assert_value(
        store,
        "a/shared",
        get(store, a, "shared").await,
        Some(b"from a"),
    );
    assert_value(
        store,
        "b/shared",
        get(store, b, "shared").await,
        Some(b"from b, longer"),
    );
    assert!(
        !exists(store, b, "only-a").await,
        "[{}] key of a seen in b",
        store.backend()
    );
    assert_eq!(keys_of(store, a, "").await, strings(&["only-a", "shared"]));
    assert_eq!(keys_of(store, b, "").await, strings(&["shared"]));
    assert_eq!(
        stats(store, b).await,
        KvStats {
            keys: 1,
            value_bytes: 14
        }
    );

    assert!(delete(store, a, "shared").await);
    assert_value(
        store,
        "b/shared",
        get(store, b, "shared").await,
        Some(b"from b, longer"),
    );
    must(
        store,
        "transaction in a",
        store
            .transaction(a, vec![delete_op("shared"), set_op("t", b"x", None)])
            .await,
    );
    assert!(
        !exists(store, b, "t").await,
        "[{}] transaction in a wrote to b",
        store.backend()
    );
    let cleared = must(store, "clear a", store.clear_prefix(a, "").await);
    assert_eq!(cleared, 2, "[{}] clear of a", store.backend());
    assert_eq!(
        stats(store, b).await,
        KvStats {
            keys: 1,
            value_bytes: 14
        },
        "[{}] b after clearing a",
        store.backend()
    );
    cleanup(store, b).await;
}

/// A batch applies each valid operation and reports every outcome in order;
/// invalid ones carry their error code and message.
pub async fn batch_reports_each_operation(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("batch");
    let ns = ns.as_str();
    set(store, ns, "gone", b"x").await;
    let ops = vec![
        set_op("b1", b"one", None),
        set_op("", b"empty key", None),
        delete_op("gone"),
        set_op("b2", b"zero ttl", Some(Duration::ZERO)),
        delete_op("missing"),
        set_op("b3", b"huge ttl", Some(MAX_TTL + Duration::from_secs(1))),
        set_op("b4", b"four", Some(Duration::from_secs(3600))),
        delete_op("bad\0key"),
    ];
    let outcomes = must(store, "batch", store.batch(ns, ops).await);
    let summary: Vec<(&str, &str, bool)> = outcomes
        .iter()
        .map(|o: &KvOpOutcome| (o.key.as_str(), o.status.as_str(), o.error.is_some()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("b1", "ok", false),
            ("", "invalid_key", true),
            ("gone", "ok", false),
            ("b2", "invalid_ttl", true),
            ("missing", "ok", false),
            ("b3", "invalid_ttl", true),
            ("b4", "ok", false),
            ("bad\0key", "invalid_key", true),
        ],
        "[{}] batch outcomes (key, status, has error)",
        store.backend()
    );
    assert_value(store, "b1", get(store, ns, "b1").await, Some(b"one"));
    assert_value(store, "gone", get(store, ns, "gone").await, None);
    assert_value(store, "b2", get(store, ns, "b2").await, None);
    assert_value(store, "b3", get(store, ns, "b3").await, None);
    assert_value(store, "b4", get(store, ns, "b4").await, Some(b"four"));
    let empty = must(store, "empty batch", store.batch(ns, Vec::new()).await);
    assert!(
        empty.is_empty(),
        "[{}] an empty batch has no outcomes",
        store.backend()
    );
    cleanup(store, ns).await;
}

/// A transaction with any invalid operation is `InvalidInput` and changes
/// nothing, wherever the invalid operation is.
pub async fn transaction_with_an_invalid_op_applies_nothing(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("tx-invalid");
    let ns = ns.as_str();
    set(store, ns, "keep", b"v1").await;
    set(store, ns, "doomed", b"d").await;
    let valid = || {
        vec![
            set_op("keep", b"v2", None),
            set_op("new1", b"n", None),
            delete_op("doomed"),
            set_op("new2", b"n", Some(Duration::from_secs(60))),
        ]
    };
    let too_long = "k".repeat(MAX_KEY_LEN + 1);
    let cases: Vec<(&str, KvOp, &str)> = vec![
        ("an empty key", set_op("", b"x", None), "invalid_key"),
        (
            "a zero ttl",
            set_op("new3", b"x", Some(Duration::ZERO)),
            "invalid_ttl",
        ),
        (
            "a delete of a key with NUL",
            delete_op("a\0"),
            "invalid_key",
        ),
        (
            "a key over the limit",
            set_op(&too_long, b"x", None),
            "invalid_key",
        ),
    ];
    for (name, bad, code) in cases {
        for position in [0, 2, 4] {
            let mut ops = valid();
            ops.insert(position, bad.clone());
            must_be_invalid(
                store,
                &format!("transaction with {name} at {position}"),
                store.transaction(ns, ops).await,
                code,
            );
            assert_value(store, "keep", get(store, ns, "keep").await, Some(b"v1"));
            assert_value(store, "doomed", get(store, ns, "doomed").await, Some(b"d"));
            for key in ["new1", "new2", "new3"] {
                assert!(
                    !exists(store, ns, key).await,
                    "[{}] transaction with {name} at {position} created {key:?}",
                    store.backend()
                );
            }
        }
    }
    assert_eq!(keys_of(store, ns, "").await, strings(&["doomed", "keep"]));
    cleanup(store, ns).await;
}

/// A valid transaction applies every operation, in order.
pub async fn transaction_applies_every_op_in_order(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("tx-valid");
    let ns = ns.as_str();
    set(store, ns, "keep", b"v1").await;
    set(store, ns, "doomed", b"d").await;
    let ops = vec![
        set_op("t1", b"one", None),
        set_op("t2", b"two", Some(Duration::from_secs(3600))),
        delete_op("doomed"),
        set_op("x", b"set then deleted", None),
        delete_op("x"),
        delete_op("y"),
        set_op("y", b"deleted then set", None),
        set_op("keep", b"v2", None),
        set_op("keep", b"v3", None),
    ];
    must(store, "valid transaction", store.transaction(ns, ops).await);
    assert_value(store, "t1", get(store, ns, "t1").await, Some(b"one"));
    assert_value(store, "t2", get(store, ns, "t2").await, Some(b"two"));
    assert_value(store, "doomed", get(store, ns, "doomed").await, None);
    assert_value(store, "x", get(store, ns, "x").await, None);
    assert_value(
        store,
        "y",
        get(store, ns, "y").await,
        Some(b"deleted then set"),
    );
    assert_value(store, "keep", get(store, ns, "keep").await, Some(b"v3"));
    assert_eq!(
        keys_of(store, ns, "").await,
        strings(&["keep", "t1", "t2", "y"])
    );
    must(
        store,
        "empty transaction",
        store.transaction(ns, Vec::new()).await,
    );
    cleanup(store, ns).await;
}

/// `stats` counts live keys and the bytes of their values.
pub async fn stats_count_live_keys_and_bytes(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("stats");
    let ns = ns.as_str();
    assert_eq!(
        stats(store, ns).await,
        KvStats::default(),
        "[{}] empty namespace",
        store.backend()
    );
    set(store, ns, "a", b"abc").await;
    set(store, ns, "b", b"12345").await;
    set(store, ns, "c", b"").await;
    assert_eq!(
        stats(store, ns).await,
        KvStats {
            keys: 3,
            value_bytes: 8
        },
        "[{}] three keys",
        store.backend()
    );
    set(store, ns, "b", b"1234567890").await;
    assert_eq!(
        stats(store, ns).await,
        KvStats {
            keys: 3,
            value_bytes: 13
        },
        "[{}] after overwrite",
        store.backend()
    );
    assert!(delete(store, ns, "a").await);
    assert_eq!(
        stats(store, ns).await,
        KvStats {
            keys: 2,
            value_bytes: 10
        },
        "[{}] after delete",
        store.backend()
    );
    cleanup(store, ns).await;
}

/// Many sets in flight at once, to distinct keys, all land.
pub async fn concurrent_sets_all_land(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("concurrent");
    let ns = ns.as_str();
    let writers = (0..8).map(|w| async move {
        for i in 0..25 {
            let key = format!("w{w}/{i:02}");
            store
                .set(
                    ns,
                    &key,
                    Bytes::from(key.clone().into_bytes()),
                    SetOptions::default(),
                )
                .await?;
        }
        Ok::<(), strata_core::Error>(())
    });
    for result in join_all(writers.collect()).await {
        must(store, "concurrent set", result);
    }
    check_writers(store, ns, 8, 25).await;
    cleanup(store, ns).await;
}

/// Sets from several spawned tokio tasks (on a multi-threaded runtime: from
/// several threads) to distinct keys all land.
pub async fn spawned_tasks_set_distinct_keys(store: &Arc<dyn KvStore>) {
    let ns = unique_namespace("tasks");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = Arc::clone(store);
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let key = format!("w{w}/{i:02}");
                store
                    .set(
                        &ns,
                        &key,
                        Bytes::from(key.clone().into_bytes()),
                        SetOptions::default(),
                    )
                    .await?;
            }
            Ok::<(), strata_core::Error>(())
        }));
    }
    for task in tasks {
        match task.await {
            Ok(result) => must(store.as_ref(), "set from a task", result),
            Err(e) => panic!("[{}] a writer task failed: {e}", store.backend()),
        }
    }
    check_writers(store.as_ref(), &ns, 8, 25).await;
    cleanup(store.as_ref(), &ns).await;
}

/// Every key `w{w}/{i:02}` is there, holding its own name.
async fn check_writers(store: &dyn KvStore, ns: &str, writers: usize, per_writer: usize) {
    let mut expected: Vec<String> = (0..writers)
        .flat_map(|w| (0..per_writer).map(move |i| format!("w{w}/{i:02}")))
        .collect();
    expected.sort();
    assert_eq!(
        keys_of(store, ns, "").await,
        expected,
        "[{}] keys after concurrent sets",
        store.backend()
    );
    for key in &expected {
        assert_value(store, key, get(store, ns, key).await, Some(key.as_bytes()));
    }
    let bytes: u64 = expected.iter().map(|k| k.len() as u64).sum();
    assert_eq!(
        stats(store, ns).await,
        KvStats {
            keys: expected.len() as u64,
            value_bytes: bytes
        }
    );
}

/// A key whose TTL passed is invisible to `get`, `exists`, `list`, `stats`,
/// `delete` and `clear_prefix` at once; an overwrite without TTL clears the
/// TTL; an expired key can be set again; `purge_expired` removes expired
/// keys physically. Sleeps about 1.2 s.
pub async fn ttl_expiry(store: &Arc<dyn KvStore>) {
    let store: &dyn KvStore = store.as_ref();
    let ns = unique_namespace("ttl");
    let ns = ns.as_str();
    let second = Duration::from_secs(1);
    set(store, ns, "plain", b"p").await;
    set_ttl(store, ns, "long", b"l", Duration::from_secs(3600)).await;
    set_ttl(store, ns, "cleared", b"first", second).await;
    set(store, ns, "cleared", b"second").await;
    set(store, ns, "gone/live", b"g").await;
    set_ttl(store, ns, "gone/expiring", b"g", second).await;
    set_ttl(store, ns, "revived", b"r1", second).await;
    set_ttl(store, ns, "deleted", b"d", second).await;
    set_ttl(store, ns, "short", b"s", second).await;
    let last_ttl_set = Instant::now();

    // Before the deadline everything is visible.
    assert_value(store, "short", get(store, ns, "short").await, Some(b"s"));
    assert!(
        exists(store, ns, "short").await,
        "[{}] key with a TTL invisible before expiry",
        store.backend()
    );
    let all = strings(&[
        "cleared",
        "deleted",
        "gone/expiring",
        "gone/live",
        "long",
        "plain",
        "revived",
        "short",
    ]);
    assert_eq!(
        keys_of(store, ns, "").await,
        all,
        "[{}] keys before expiry",
        store.backend()
    );
    assert_eq!(
        stats(store, ns).await.keys,
        8,
        "[{}] stats before expiry",
        store.backend()
    );

    tokio::time::sleep_until((last_ttl_set + Duration::from_millis(1200)).into()).await;

    assert_value(store, "short", get(store, ns, "short").await, None);
    assert!(
        !exists(store, ns, "short").await,
        "[{}] expired key exists",
        store.backend()
    );
    assert_value(
        store,
        "cleared",
        get(store, ns, "cleared").await,
        Some(b"second"),
    );
    assert_value(store, "long", get(store, ns, "long").await, Some(b"l"));
    let live = strings(&["cleared", "gone/live", "long", "plain"]);
    assert_eq!(
        keys_of(store, ns, "").await,
        live,
        "[{}] keys after expiry",
        store.backend()
    );
    assert_eq!(
        stats(store, ns).await,
        KvStats {
            keys: 4,
            value_bytes: 9
        },
        "[{}] stats after expiry",
        store.backend()
    );
    assert!(
        !delete(store, ns, "deleted").await,
        "[{}] delete of an expired key returned true",
        store.backend()
    );
    let cleared = must(
        store,
        "clear \"gone/\"",
        store.clear_prefix(ns, "gone/").await,
    );
    assert_eq!(
        cleared,
        1,
        "[{}] clear_prefix counts only live keys",
        store.backend()
    );

    set(store, ns, "revived", b"r2").await;
    assert_value(
        store,
        "revived",
        get(store, ns, "revived").await,
        Some(b"r2"),
    );

    // "short" is still stored, invisible; purging removes it.
    let purged = must(store, "purge_expired", store.purge_expired().await);
    assert!(
        purged >= 1,
        "[{}] purge_expired removed {purged} keys, expected at least 1",
        store.backend()
    );
    assert_value(store, "short", get(store, ns, "short").await, None);
    assert_eq!(
        keys_of(store, ns, "").await,
        strings(&["cleared", "long", "plain", "revived"])
    );
    assert_eq!(
        stats(store, ns).await,
        KvStats {
            keys: 4,
            value_bytes: 10
        }
    );
    cleanup(store, ns).await;
}
