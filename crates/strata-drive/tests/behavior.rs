//! The drive behaviour suite on the local filesystem and on a real
//! S3-compatible server at `STRATA_TEST_S3_ENDPOINT` (`bash scripts/test.sh`
//! starts moto and sets it), as one test per (backend, behaviour):
//! `filesystem::versions`, `s3::versions`, … Each test gets a fresh records
//! database with two bots, and a fresh drive folder or bucket, so the tests
//! are independent and run in parallel. Without the variable the S3 tests
//! are skipped loudly, or fail under CI (`strata_testkit::backend`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use strata_core::drive::DriveStore;
use strata_core::records::BotStore;
use strata_core::types::BotId;
use strata_drive::{behavior, open_drive_with, Drive, S3Settings};
use strata_records::{SqliteDatabase, SqliteOptions, SqliteRecords};

/// One test's drive, its two bots, and what has to live as long as they do.
struct Fixture {
    drive: Drive,
    bot: BotId,
    other: BotId,
    db: SqliteDatabase,
    dir: tempfile::TempDir,
    /// The drive folder, for the filesystem backend.
    root: Option<PathBuf>,
}

impl Fixture {
    /// Checks what the backend left on disk, then closes the database.
    async fn finish(self) {
        if let Some(root) = &self.root {
            assert_filesystem_layout(self.dir.path(), root);
        }
        self.db.close().await;
    }
}

async fn db_with_bots(dir: &Path) -> (SqliteDatabase, BotId, BotId) {
    let db = SqliteDatabase::open(&dir.join("strata.db"), &SqliteOptions::default())
        .await
        .expect("open db");
    let r = SqliteRecords::new(db.clone());
    let one = BotId::parse("one").expect("id");
    let two = BotId::parse("two").expect("id");
    r.create_bot(&one, "one").await.expect("bot");
    r.create_bot(&two, "two").await.expect("bot");
    (db, one, two)
}

async fn open_filesystem(_test: &str) -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, bot, other) = db_with_bots(dir.path()).await;
    let root = dir.path().join("drive");
    let url = format!("file://{}", root.display());
    let drive = open_drive_with(&url, db.clone(), &S3Settings::default())
        .await
        .expect("open drive");
    assert_eq!(drive.backend(), "filesystem");
    Some(Fixture {
        drive,
        bot,
        other,
        db,
        dir,
        root: Some(root),
    })
}

/// Every body is a uuid under bots/<bot>/, whatever the keys were, and
/// nothing was written next to the drive folder.
fn assert_filesystem_layout(dir: &Path, root: &Path) {
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                let parts: Vec<&str> = rel.split('/').collect();
                assert_eq!(parts.len(), 3, "{rel}");
                assert_eq!(parts[0], "bots", "{rel}");
                assert!(uuid_like(parts[2]), "{rel}");
            }
        }
    }
    let beside: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("strata.db"))
        .collect();
    assert_eq!(beside, vec!["drive".to_owned()]);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The S3 endpoint, or `None` after a `SKIPPED` line (a failure under CI).
#[track_caller]
fn s3_endpoint(test: &str) -> Option<String> {
    strata_testkit::backend("STRATA_TEST_S3_ENDPOINT", test)
        .map(|e| e.trim_end_matches('/').to_owned())
}

fn s3_settings(endpoint: &str) -> S3Settings {
    S3Settings {
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
    }
}

/// Creates a bucket no other test or run uses; returns its name.
async fn fresh_bucket(endpoint: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let bucket = format!(
        "strata-test-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    // object_store cannot create buckets; moto accepts an unsigned PUT.
    let resp = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        resp.status().is_success(),
        "create bucket: {}",
        resp.status()
    );
    bucket
}

async fn open_s3(test: &str) -> Option<Fixture> {
    let endpoint = s3_endpoint(test)?;
    let bucket = fresh_bucket(&endpoint).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, bot, other) = db_with_bots(dir.path()).await;
    let drive = open_drive_with(
        &format!("s3://{bucket}"),
        db.clone(),
        &s3_settings(&endpoint),
    )
    .await
    .expect("open drive");
    assert_eq!(drive.backend(), "s3");
    Some(Fixture {
        drive,
        bot,
        other,
        db,
        dir,
        root: None,
    })
}

/// `mod $backend { one #[tokio::test] per behaviour }`.
macro_rules! backend_tests {
    ($backend:ident, $open:ident; $($behavior:ident($($arg:ident),*)),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $behavior() {
                    let test = concat!(stringify!($backend), "::", stringify!($behavior));
                    let Some(fixture) = super::$open(test).await else { return };
                    super::behavior::$behavior(&fixture.drive $(, &fixture.$arg)*).await;
                    fixture.finish().await;
                }
            )*
        }
    };
}

behavior::for_each_behavior!(backend_tests, filesystem, open_filesystem);
behavior::for_each_behavior!(backend_tests, s3, open_s3);

/// A drive under a prefix inside the bucket works the same way.
#[tokio::test(flavor = "multi_thread")]
async fn s3_drive_under_a_prefix_in_the_bucket() {
    let Some(endpoint) = s3_endpoint("s3_drive_under_a_prefix_in_the_bucket") else {
        return;
    };
    let bucket = fresh_bucket(&endpoint).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _, two) = db_with_bots(dir.path()).await;
    let prefixed = open_drive_with(
        &format!("s3://{bucket}/tenant-a"),
        db.clone(),
        &s3_settings(&endpoint),
    )
    .await
    .expect("open drive");
    behavior::versions(&prefixed, &two).await;
    prefixed.ping().await.expect("ping");
    db.close().await;
}
