//! Schema migrations: applied once, never edited, checked at every open.

use rusqlite::Connection;
use serde_json::json;
use strata_core::records::{BotStore, ConfigStore, ConversationStore, UserStore};
use strata_core::types::{BotId, MessageRole, NewConversation, NewMessage, NewUser};
use strata_records::{SqliteDatabase, SqliteOptions, SqliteRecords, MIGRATIONS};

/// A database as a build with only the first `n` migrations (and no
/// checksum table) left it.
fn old_database(path: &std::path::Path, n: usize) {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .expect("pragmas");
    for m in &MIGRATIONS[..n] {
        conn.execute_batch(m.sql).expect(m.name);
    }
    conn.execute_batch(&format!("PRAGMA user_version = {n}"))
        .expect("user_version");
}

async fn queued(db: &SqliteDatabase) -> i64 {
    db.read(|c| {
        c.query_row("SELECT count(*) FROM memory_queue", [], |r| r.get(0))
            .map_err(strata_records::sqlite::map_sqlite_error)
    })
    .await
    .expect("count the memory queue")
}

/// A database created by the build that shipped `0005_memory` (triggers
/// comparing `memory.enabled` as written) is brought to today's state:
/// `"True"`, as a config.csv row gives it, switches memory on.
#[tokio::test]
async fn a_database_from_before_0006_remembers_with_any_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("strata.db");
    old_database(&path, 5);
    let db = SqliteDatabase::open(&path, &SqliteOptions::default())
        .await
        .expect("open and migrate");
    let records = SqliteRecords::new(db.clone());
    let bot = BotId::parse("b1").expect("bot id");
    records.create_bot(&bot, "B").await.expect("bot");
    let user = records
        .create_user(&bot, &NewUser::default())
        .await
        .expect("user");
    let conv = records
        .create_conversation(
            &bot,
            &NewConversation {
                user_id: user.id,
                ..Default::default()
            },
        )
        .await
        .expect("conversation");
    records
        .set_config_value(&bot, "memory.enabled", &json!("True"))
        .await
        .expect("config");
    records
        .append_messages(
            &bot,
            &conv.id,
            &[NewMessage {
                role: MessageRole::User,
                content: "remember me".into(),
                metadata: None,
                idempotency_key: None,
            }],
        )
        .await
        .expect("append");
    assert_eq!(queued(&db).await, 1, "the message is queued for memory");
    let recorded: i64 = db
        .read(|c| {
            c.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
                .map_err(strata_records::sqlite::map_sqlite_error)
        })
        .await
        .expect("checksums");
    assert_eq!(recorded as usize, MIGRATIONS.len());
    db.close().await;
}

/// A database whose recorded checksum of an applied migration differs from
/// this build's file is refused, naming the migration; nothing is applied.
#[tokio::test]
async fn a_changed_applied_migration_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("strata.db");
    let db = SqliteDatabase::open(&path, &SqliteOptions::default())
        .await
        .expect("fresh database");
    db.close().await;
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute(
            "UPDATE schema_migrations SET sha256 = 'edited' WHERE name = '0003_drive'",
            [],
        )
        .expect("tamper");
    }
    let err = SqliteDatabase::open(&path, &SqliteOptions::default())
        .await
        .expect_err("a changed migration must be refused");
    assert_eq!(err.code(), "migration_changed");
    assert!(err.message().contains("0003_drive"), "{}", err.message());

    // Put back, it opens again.
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute(
            "UPDATE schema_migrations SET sha256 = ?1 WHERE name = '0003_drive'",
            [strata_records::migration_checksum(MIGRATIONS[2].sql)],
        )
        .expect("restore");
    }
    let db = SqliteDatabase::open(&path, &SqliteOptions::default())
        .await
        .expect("opens again");
    db.close().await;
}

/// A database written by a newer build is refused.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("strata.db");
    old_database(&path, MIGRATIONS.len());
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len() + 1))
            .expect("user_version");
    }
    let err = SqliteDatabase::open(&path, &SqliteOptions::default())
        .await
        .expect_err("newer schema");
    assert_eq!(err.code(), "schema_too_new");
}

/// Reads run on blocking threads, never on an async worker: on a runtime
/// with one thread, a read whose closure waits for a message sent by another
/// task of that same runtime completes. Were the read run on the runtime's
/// thread, the sender could never run and the read would time out.
#[test]
fn reads_never_block_the_async_worker() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteDatabase::open(&dir.path().join("strata.db"), &SqliteOptions::default())
            .await
            .expect("open");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let read = db.read(move |c| {
            rx.recv_timeout(std::time::Duration::from_secs(5))
                .map_err(|_| {
                    strata_core::Error::internal(
                        "the other task never ran: the read blocked the runtime's thread",
                    )
                })?;
            c.query_row("SELECT 41 + 1", [], |r| r.get::<_, i64>(0))
                .map_err(strata_records::sqlite::map_sqlite_error)
        });
        let sender = tokio::spawn(async move {
            let _ = tx.send(());
        });
        assert_eq!(read.await.expect("read"), 42);
        sender.await.expect("sender");
        db.close().await;
    });
}
