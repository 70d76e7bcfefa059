//! Downloads from the local file system are read in large pieces (one
//! blocking call per MiB, not per 8 KiB: downloads of large files ran at a
//! quarter of the upload speed), and ranges still come back exact.

use futures_util::StreamExt;
use strata_core::drive::{DriveStore, PutOptions};
use strata_core::records::BotStore;
use strata_core::types::BotId;
use strata_drive::{body_from, open_drive, FILE_READ_CHUNK};
use strata_records::{SqliteDatabase, SqliteOptions, SqliteRecords};

#[tokio::test(flavor = "multi_thread")]
async fn local_downloads_stream_in_large_pieces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SqliteDatabase::open(&dir.path().join("strata.db"), &SqliteOptions::default())
        .await
        .expect("db");
    let bot = BotId::parse("dl").expect("bot");
    SqliteRecords::new(db.clone())
        .create_bot(&bot, "dl")
        .await
        .expect("bot");
    let drive = open_drive(
        &format!("file://{}", dir.path().join("drive").display()),
        db.clone(),
    )
    .await
    .expect("drive");
    let data: Vec<u8> = (0..5 * FILE_READ_CHUNK + 1234)
        .map(|i| (i % 253) as u8)
        .collect();
    drive
        .put(
            &bot,
            "big.bin",
            body_from(data.clone()),
            PutOptions {
                content_type: "application/octet-stream".into(),
                max_size: 1 << 30,
            },
        )
        .await
        .expect("put");
    let (_, mut stream) = drive.get(&bot, "big.bin", None, None).await.expect("get");
    let mut sizes = Vec::new();
    let mut got = Vec::new();
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("piece");
        sizes.push(piece.len());
        got.extend_from_slice(&piece);
    }
    assert_eq!(got, data);
    assert_eq!(sizes.len(), 6, "{sizes:?}");
    assert!(
        sizes[..5].iter().all(|s| *s == FILE_READ_CHUNK),
        "{sizes:?}"
    );
    // A range across piece boundaries is exact.
    let start = FILE_READ_CHUNK as u64 - 10;
    let end = 3 * FILE_READ_CHUNK as u64 + 17;
    let (_, mut stream) = drive
        .get(&bot, "big.bin", None, Some(start..end))
        .await
        .expect("range");
    let mut got = Vec::new();
    while let Some(piece) = stream.next().await {
        got.extend_from_slice(&piece.expect("piece"));
    }
    assert_eq!(got, data[start as usize..end as usize]);
    db.close().await;
}
