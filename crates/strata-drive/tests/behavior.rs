//! The drive behaviour suite on the local filesystem, and on a real
//! S3-compatible server when `STRATA_TEST_S3_ENDPOINT` names one (`.ci/run`
//! starts moto and always sets it).

use std::path::Path;
use strata_core::drive::DriveStore;
use strata_core::records::BotStore;
use strata_core::types::BotId;
use strata_drive::{behavior, open_drive_with, S3Settings};
use strata_records::{SqliteDatabase, SqliteOptions, SqliteRecords};

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

#[tokio::test(flavor = "multi_thread")]
async fn filesystem_drive_passes_the_behaviour_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, one, two) = db_with_bots(dir.path()).await;
    let root = dir.path().join("drive");
    let url = format!("file://{}", root.display());
    let drive = open_drive_with(&url, db.clone(), &S3Settings::default())
        .await
        .expect("open drive");
    assert_eq!(drive.backend(), "filesystem");
    behavior::run_all(&drive, &one, &two).await;
    // Every body is a uuid under bots/<bot>/, whatever the keys were.
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&root)
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
    // Nothing was written next to the drive folder.
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("strata.db"))
        .collect();
    assert_eq!(beside, vec!["drive".to_owned()]);
    db.close().await;
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_drive_passes_the_behaviour_suite() {
    let Some(endpoint) = std::env::var("STRATA_TEST_S3_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!("NOTE: STRATA_TEST_S3_ENDPOINT is not set; skipping the S3 drive suite");
        return;
    };
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let bucket = format!("strata-test-{}", uuid_suffix());
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
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, one, two) = db_with_bots(dir.path()).await;
    let settings = S3Settings {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
    };
    let drive = open_drive_with(&format!("s3://{bucket}"), db.clone(), &settings)
        .await
        .expect("open drive");
    assert_eq!(drive.backend(), "s3");
    behavior::run_all(&drive, &one, &two).await;
    // A prefix inside the bucket works the same way.
    let prefixed = open_drive_with(&format!("s3://{bucket}/tenant-a"), db.clone(), &settings)
        .await
        .expect("open drive");
    behavior::versions(&prefixed, &two).await;
    prefixed.ping().await.expect("ping");
    db.close().await;
}

fn uuid_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}
