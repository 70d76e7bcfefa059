//! Runs the behaviour suite against every embedded backend — `MemoryKv`, and
//! `SqliteKv` on a fresh database in a temporary directory — as one test per
//! (backend, behaviour): `memory::ttl_expiry`, `sqlite::ttl_expiry`, …
//! Each test opens a fresh store, so they are independent and run in parallel.

use std::sync::Arc;
use strata_core::kv::KvStore;
use strata_kv::{behavior, MemoryKv, SqliteKv};
use strata_records::{SqliteDatabase, SqliteOptions};

/// One test's store, and what has to live as long as it.
struct Fixture {
    store: Arc<dyn KvStore>,
    db: Option<SqliteDatabase>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    async fn close(self) {
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

async fn open_memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryKv::new()),
        db: None,
        _dir: None,
    }
}

async fn open_sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = SqliteDatabase::open(&dir.path().join("strata.db"), &SqliteOptions::default())
        .await
        .expect("open SQLite database");
    Fixture {
        store: Arc::new(SqliteKv::new(db.clone())),
        db: Some(db),
        _dir: Some(dir),
    }
}

/// `mod $backend { one #[tokio::test] per behaviour }`.
macro_rules! backend_tests {
    ($backend:ident, $open:ident; $($behavior:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $behavior() {
                    let fixture = super::$open().await;
                    assert_eq!(fixture.store.backend(), stringify!($backend));
                    super::behavior::$behavior(&fixture.store).await;
                    fixture.close().await;
                }
            )*
        }
    };
}

behavior::for_each_behavior!(backend_tests, memory, open_memory);
behavior::for_each_behavior!(backend_tests, sqlite, open_sqlite);

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
