//! Runs the behaviour suite against every embedded backend: `MemoryKv`, and
//! `SqliteKv` on a fresh database in a temporary directory.

use std::sync::Arc;
use strata_core::kv::KvStore;
use strata_kv::{behavior, MemoryKv, SqliteKv};
use strata_records::{SqliteDatabase, SqliteOptions};

#[tokio::test(flavor = "multi_thread")]
async fn memory_backend_passes_the_suite() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    assert_eq!(store.backend(), "memory");
    behavior::run_all(store.as_ref()).await;
    behavior::spawned_tasks_set_distinct_keys(store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_backend_passes_the_suite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = SqliteDatabase::open(&dir.path().join("strata.db"), &SqliteOptions::default())
        .await
        .expect("open SQLite database");
    let store: Arc<dyn KvStore> = Arc::new(SqliteKv::new(db.clone()));
    assert_eq!(store.backend(), "sqlite");
    behavior::run_all(store.as_ref()).await;
    behavior::spawned_tasks_set_distinct_keys(store).await;
    db.close().await;
}

/// Values written through one `SqliteKv` are there after the database is
/// closed and opened again.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_values_survive_reopening() {
    use bytes::Bytes;
    use std::time::Duration;
    use strata_core::kv::SetOptions;

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("strata.db");
    let db = SqliteDatabase::open(&path, &SqliteOptions::default())
        .await
        .expect("open SQLite database");
    let kv = SqliteKv::new(db.clone());
    kv.set(
        "bot",
        "plain",
        Bytes::from_static(b"p"),
        SetOptions::default(),
    )
    .await
    .expect("set plain");
    kv.set(
        "bot",
        "ttl",
        Bytes::from_static(b"t"),
        SetOptions::with_ttl(Duration::from_secs(3600)),
    )
    .await
    .expect("set with ttl");
    db.close().await;

    let db = SqliteDatabase::open(&path, &SqliteOptions::default())
        .await
        .expect("reopen SQLite database");
    let kv = SqliteKv::new(db.clone());
    assert_eq!(
        kv.get("bot", "plain").await.expect("get plain").as_deref(),
        Some(&b"p"[..])
    );
    assert_eq!(
        kv.get("bot", "ttl").await.expect("get ttl").as_deref(),
        Some(&b"t"[..])
    );
    assert_eq!(kv.stats("bot").await.expect("stats").keys, 2);
    db.close().await;
}
