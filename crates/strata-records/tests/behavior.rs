//! The records behaviour suite against the SQLite backend, as one test per
//! behaviour (`sqlite::bots_crud_and_cascade`, …), each on a fresh database
//! in a temporary directory.

use strata_records::{behavior, SqliteDatabase, SqliteOptions, SqliteRecords};

/// `mod $backend { one #[tokio::test] per behaviour }`.
macro_rules! sqlite_tests {
    ($($behavior:ident),* $(,)?) => {
        mod sqlite {
            use super::{SqliteDatabase, SqliteOptions, SqliteRecords};
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $behavior() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let db = SqliteDatabase::open(
                        &dir.path().join("strata.db"),
                        &SqliteOptions::default(),
                    )
                    .await
                    .expect("open");
                    super::behavior::$behavior(&SqliteRecords::new(db.clone())).await;
                    db.close().await;
                }
            )*
        }
    };
}

behavior::for_each_behavior!(sqlite_tests);

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_reopening_with_fsync_durability() {
    use strata_core::records::BotStore;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("strata.db");
    let opts = SqliteOptions {
        durability: strata_records::Durability::Fsync,
        ..SqliteOptions::default()
    };
    let db = SqliteDatabase::open(&path, &opts).await.expect("open");
    let bot = behavior::unique_bot("reopen");
    SqliteRecords::new(db.clone())
        .create_bot(&bot, "r")
        .await
        .expect("bot");
    db.close().await;
    let db = SqliteDatabase::open(&path, &opts)
        .await
        .expect("reopen (migrations are idempotent)");
    assert_eq!(
        SqliteRecords::new(db.clone())
            .get_bot(&bot)
            .await
            .expect("bot")
            .name,
        "r"
    );
    db.close().await;
}
