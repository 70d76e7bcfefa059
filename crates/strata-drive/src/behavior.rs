//! The behaviour every [`DriveStore`] honours, as one suite that each
//! backend's tests run (the filesystem always, S3 against a real server). The
//! contract is written on the trait in `strata_core::drive`; each behaviour
//! here is a `pub async fn` that checks one part of it, on a store whose
//! bots exist and own nothing yet. [`for_each_behavior!`] lists them all, so a
//! backend's tests make one test per behaviour — one failure never hides the
//! others.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use strata_core::drive::{ByteStream, DriveStore, ListRequest, PutOptions, MAX_KEY_LEN};
use strata_core::types::BotId;
use strata_core::{Error, ErrorKind, Timestamp};

const LIMIT: u64 = 64 * 1024 * 1024;

fn opts(ct: &str) -> PutOptions {
    PutOptions {
        content_type: ct.to_owned(),
        max_size: LIMIT,
    }
}

/// A body made of `chunks`, streamed one by one.
pub fn chunked(chunks: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(
        chunks.into_iter().map(|c| Ok(Bytes::from(c))),
    ))
}

fn body(b: &[u8]) -> ByteStream {
    chunked(vec![b.to_vec()])
}

/// Reads a body to the end.
pub async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("body chunk"));
    }
    out
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn kind<T>(r: Result<T, Error>) -> (ErrorKind, String) {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => (e.kind(), e.code().to_owned()),
    }
}

async fn put(
    s: &dyn DriveStore,
    bot: &BotId,
    key: &str,
    b: &[u8],
) -> strata_core::drive::ObjectMeta {
    s.put(bot, key, body(b), opts("text/plain"))
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"))
}

async fn read(s: &dyn DriveStore, bot: &BotId, key: &str, v: Option<i64>) -> Vec<u8> {
    let (_, b) = s.get(bot, key, v, None).await.expect("get");
    collect(b).await
}

/// Calls `$callback! { behavior(args), … }` with every behaviour in this
/// module and the arguments it takes after the store: `bot` (a bot that
/// exists) and `other` (a second one). A test file turns each entry into
/// `behavior::$name(&store, $(&$arg),*)`. `for_each_behavior!(callback,
/// args…)` passes the extra arguments first: `$callback! { args… ; … }`.
#[doc(hidden)]
#[macro_export]
macro_rules! __drive_for_each_behavior {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            $($($args)* ;)?
            ping_answers(),
            versions(bot),
            ranges(bot),
            delete_semantics(bot),
            listing(bot),
            size_limit(bot),
            key_validation(bot),
            isolation(bot, other),
            large_body(bot),
            purge(bot),
            drop_bot(bot, other),
        }
    };
}
#[doc(inline)]
pub use crate::__drive_for_each_behavior as for_each_behavior;

/// The store answers `ping`.
pub async fn ping_answers(s: &dyn DriveStore) {
    s.ping().await.expect("ping");
}

/// Each put is a new version; older versions stay readable by number.
pub async fn versions(s: &dyn DriveStore, bot: &BotId) {
    let m1 = put(s, bot, "ver/doc.txt", b"first").await;
    assert_eq!((m1.version, m1.size, m1.current), (1, 5, true));
    assert_eq!(m1.etag, sha(b"first"));
    assert_eq!(m1.content_type, "text/plain");
    let m2 = s
        .put(bot, "ver/doc.txt", body(b"second!"), opts("text/markdown"))
        .await
        .unwrap();
    assert_eq!((m2.version, m2.size), (2, 7));
    assert_eq!(m2.created_at, m1.created_at, "created_at is the key's");
    assert!(m2.updated_at >= m1.updated_at);
    let head = s.head(bot, "ver/doc.txt", None).await.unwrap();
    assert_eq!(head, m2);
    assert_eq!(read(s, bot, "ver/doc.txt", None).await, b"second!");
    assert_eq!(read(s, bot, "ver/doc.txt", Some(1)).await, b"first");
    let old = s.head(bot, "ver/doc.txt", Some(1)).await.unwrap();
    assert_eq!(
        (old.version, old.current, old.etag),
        (1, false, sha(b"first"))
    );
    let all = s.versions(bot, "ver/doc.txt").await.unwrap();
    assert_eq!(
        all.iter()
            .map(|m| (m.version, m.current))
            .collect::<Vec<_>>(),
        vec![(2, true), (1, false)]
    );
    assert_eq!(
        kind(s.head(bot, "ver/doc.txt", Some(3)).await),
        (ErrorKind::NotFound, "file_not_found".into())
    );
    assert_eq!(
        kind(s.head(bot, "ver/doc.txt", Some(0)).await).0,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(s.head(bot, "ver/missing", None).await),
        (ErrorKind::NotFound, "file_not_found".into())
    );
    assert_eq!(
        kind(s.versions(bot, "ver/missing").await).0,
        ErrorKind::NotFound
    );
    // An empty body is a file too.
    let e = put(s, bot, "ver/empty", b"").await;
    assert_eq!((e.size, e.etag.as_str()), (0, sha(b"").as_str()));
    assert!(read(s, bot, "ver/empty", None).await.is_empty());
}

/// Ranges return exactly the bytes asked for, clamped to the size.
pub async fn ranges(s: &dyn DriveStore, bot: &BotId) {
    let data: Vec<u8> = (0..=255u8).collect();
    put(s, bot, "range/bytes", &data).await;
    let get = |r: std::ops::Range<u64>| async move {
        let (m, b) = s.get(bot, "range/bytes", None, Some(r)).await?;
        Ok::<_, Error>((m, collect(b).await))
    };
    let (m, b) = get(0..10).await.unwrap();
    assert_eq!(m.size, 256, "meta tells the whole size");
    assert_eq!(b, &data[..10]);
    assert_eq!(get(100..200).await.unwrap().1, &data[100..200]);
    assert_eq!(get(255..256).await.unwrap().1, vec![255]);
    assert_eq!(get(250..10_000).await.unwrap().1, &data[250..], "clamped");
    for bad in [256..300, 1000..2000, 5..5] {
        assert_eq!(
            kind(get(bad.clone()).await),
            (ErrorKind::InvalidInput, "invalid_range".into()),
            "{bad:?}"
        );
    }
    put(s, bot, "range/empty", b"").await;
    assert_eq!(
        kind(s.get(bot, "range/empty", None, Some(0..1)).await).1,
        "invalid_range"
    );
    // A range of an older version.
    put(s, bot, "range/bytes", b"new").await;
    let (_, b) = s
        .get(bot, "range/bytes", Some(1), Some(10..12))
        .await
        .unwrap();
    assert_eq!(collect(b).await, vec![10, 11]);
}

/// Delete removes the current view; older versions stay readable.
pub async fn delete_semantics(s: &dyn DriveStore, bot: &BotId) {
    put(s, bot, "del/a", b"one").await;
    put(s, bot, "del/a", b"two").await;
    let gone = s.delete(bot, "del/a").await.unwrap();
    assert_eq!((gone.version, gone.current), (2, false));
    assert_eq!(
        kind(s.head(bot, "del/a", None).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.get(bot, "del/a", None, None).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(read(s, bot, "del/a", Some(2)).await, b"two");
    assert_eq!(read(s, bot, "del/a", Some(1)).await, b"one");
    assert_eq!(kind(s.delete(bot, "del/a").await).0, ErrorKind::NotFound);
    let listed = s
        .list(
            bot,
            ListRequest {
                prefix: "del/".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.objects.is_empty(), "{listed:?}");
    // Putting again continues the numbering.
    let again = put(s, bot, "del/a", b"three").await;
    assert_eq!(again.version, 3);
    assert_eq!(s.versions(bot, "del/a").await.unwrap().len(), 3);
    assert_eq!(
        kind(s.delete(bot, "del/never").await).0,
        ErrorKind::NotFound
    );
}

/// Prefix, delimiter and paging behave like S3's ListObjectsV2.
pub async fn listing(s: &dyn DriveStore, bot: &BotId) {
    let keys = [
        "ls/a/1.txt",
        "ls/a/2.txt",
        "ls/a/b/3.txt",
        "ls/a/b/c/4.txt",
        "ls/b.txt",
        "ls/c/x",
        "ls/c/y",
        "ls/d",
        "lt",
    ];
    for k in keys {
        put(s, bot, k, k.as_bytes()).await;
    }
    let list = |prefix: &str, delim: Option<&str>, after: Option<String>, limit: usize| {
        let req = ListRequest {
            prefix: prefix.into(),
            delimiter: delim.map(str::to_owned),
            after,
            limit,
        };
        async move { s.list(bot, req).await.unwrap() }
    };
    let all = list("ls/", None, None, 0).await;
    assert_eq!(
        all.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        keys[..8].to_vec()
    );
    assert!(all.prefixes.is_empty() && all.next.is_none());
    let o = &all.objects[0];
    assert_eq!(
        (o.size, o.version, o.etag.clone()),
        (10, 1, sha(b"ls/a/1.txt"))
    );

    let top = list("ls/", Some("/"), None, 0).await;
    assert_eq!(
        top.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        vec!["ls/b.txt", "ls/d"]
    );
    assert_eq!(top.prefixes, vec!["ls/a/", "ls/c/"]);
    let a = list("ls/a/", Some("/"), None, 0).await;
    assert_eq!(
        a.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["ls/a/1.txt", "ls/a/2.txt"]
    );
    assert_eq!(a.prefixes, vec!["ls/a/b/"]);
    // A prefix that is not a folder.
    let partial = list("ls/a/b", None, None, 0).await;
    assert_eq!(partial.objects.len(), 2);
    assert!(list("nothing/", Some("/"), None, 0)
        .await
        .objects
        .is_empty());

    // Paging, one entry at a time, gives the same sequence with and
    // without a delimiter.
    for delim in [None, Some("/")] {
        let whole = list("ls/", delim, None, 0).await;
        let mut want: Vec<String> = whole.objects.iter().map(|o| o.key.clone()).collect();
        want.extend(whole.prefixes.clone());
        want.sort();
        for size in [1, 2, 3] {
            let mut got = Vec::new();
            let mut after = None;
            for _ in 0..20 {
                let p = list("ls/", delim, after.clone(), size).await;
                assert!(p.objects.len() + p.prefixes.len() <= size);
                got.extend(p.objects.iter().map(|o| o.key.clone()));
                got.extend(p.prefixes.clone());
                match p.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            got.sort();
            assert_eq!(got, want, "delimiter {delim:?} page size {size}");
        }
    }
    // The last page of an exact fit has no next.
    let exact = list("ls/", Some("/"), None, 4).await;
    assert_eq!(exact.objects.len() + exact.prefixes.len(), 4);
    assert!(exact.next.is_none(), "{exact:?}");
}

/// A body over the limit is refused while it streams; nothing is stored.
pub async fn size_limit(s: &dyn DriveStore, bot: &BotId) {
    let small = PutOptions {
        content_type: "application/octet-stream".into(),
        max_size: 10,
    };
    let at = s
        .put(
            bot,
            "lim/ok",
            chunked(vec![vec![1; 4], vec![2; 6]]),
            small.clone(),
        )
        .await
        .unwrap();
    assert_eq!(at.size, 10);
    let over = s
        .put(
            bot,
            "lim/big",
            chunked(vec![vec![1; 6], vec![2; 6]]),
            small.clone(),
        )
        .await;
    assert_eq!(
        kind(over),
        (ErrorKind::PayloadTooLarge, "payload_too_large".into())
    );
    assert_eq!(
        kind(s.head(bot, "lim/big", None).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.versions(bot, "lim/big").await).0,
        ErrorKind::NotFound
    );
    // Over the limit on an existing key keeps the current version.
    let over = s.put(bot, "lim/ok", body(&[9; 11]), small.clone()).await;
    assert_eq!(kind(over).0, ErrorKind::PayloadTooLarge);
    assert_eq!(
        read(s, bot, "lim/ok", None).await,
        [vec![1; 4], vec![2; 6]].concat()
    );
    // A body whose stream fails stores nothing either.
    let failing: ByteStream = Box::pin(futures_util::stream::iter([
        Ok(Bytes::from_static(b"abc")),
        Err(Error::invalid("the client went away")),
    ]));
    let e = s.put(bot, "lim/broken", failing, opts("text/plain")).await;
    assert_eq!(kind(e).0, ErrorKind::InvalidInput);
    assert_eq!(
        kind(s.head(bot, "lim/broken", None).await).0,
        ErrorKind::NotFound
    );
}

/// Bad keys are refused by every operation with `invalid_key`.
pub async fn key_validation(s: &dyn DriveStore, bot: &BotId) {
    let long = "k".repeat(MAX_KEY_LEN + 1);
    for bad in [
        "../x",
        "a/../../x",
        "/abs",
        "a\\b",
        "a\0b",
        "a//b",
        "",
        long.as_str(),
    ] {
        let e = s.put(bot, bad, body(b"x"), opts("text/plain")).await;
        assert_eq!(
            kind(e),
            (ErrorKind::InvalidInput, "invalid_key".into()),
            "{bad:?}"
        );
        assert_eq!(
            kind(s.head(bot, bad, None).await).1,
            "invalid_key",
            "{bad:?}"
        );
        assert_eq!(kind(s.get(bot, bad, None, None).await).1, "invalid_key");
        assert_eq!(kind(s.delete(bot, bad).await).1, "invalid_key");
        assert_eq!(kind(s.versions(bot, bad).await).1, "invalid_key");
    }
    // The longest allowed key works.
    let longest = "k".repeat(MAX_KEY_LEN);
    put(s, bot, &longest, b"x").await;
    assert_eq!(read(s, bot, &longest, None).await, b"x");
    // Keys that look like paths of another bot stay inside this one.
    put(s, bot, "bots/other/x", b"mine").await;
    assert_eq!(read(s, bot, "bots/other/x", None).await, b"mine");
}

/// Bots never see each other's objects.
pub async fn isolation(s: &dyn DriveStore, bot: &BotId, other: &BotId) {
    put(s, bot, "iso/secret", b"bot one").await;
    assert_eq!(
        kind(s.head(other, "iso/secret", None).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.get(other, "iso/secret", Some(1), None).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.versions(other, "iso/secret").await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.delete(other, "iso/secret").await).0,
        ErrorKind::NotFound
    );
    let l = s.list(other, ListRequest::default()).await.unwrap();
    assert!(l.objects.iter().all(|o| !o.key.starts_with("iso/")));
    // The same key in the other bot is its own file.
    put(s, other, "iso/secret", b"bot two").await;
    assert_eq!(read(s, bot, "iso/secret", None).await, b"bot one");
    assert_eq!(read(s, other, "iso/secret", None).await, b"bot two");
    s.delete(other, "iso/secret").await.unwrap();
    assert_eq!(read(s, bot, "iso/secret", None).await, b"bot one");
}

fn big_chunk(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

/// A 20 MiB body streams in (in 64 KiB chunks, so several upload parts)
/// and out with the right size, etag and bytes.
pub async fn large_body(s: &dyn DriveStore, bot: &BotId) {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 320; // 20 MiB
    let mut hasher = Sha256::new();
    let chunks: Vec<Vec<u8>> = (0..CHUNKS).map(|i| big_chunk(i, CHUNK)).collect();
    for c in &chunks {
        hasher.update(c);
    }
    let want = hex::encode(hasher.finalize());
    let m = s
        .put(
            bot,
            "big/blob.bin",
            chunked(chunks),
            opts("application/octet-stream"),
        )
        .await
        .unwrap();
    assert_eq!(m.size, (CHUNK * CHUNKS) as u64);
    assert_eq!(m.etag, want);
    let (_, mut out) = s.get(bot, "big/blob.bin", None, None).await.unwrap();
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(c) = out.next().await {
        let c = c.unwrap();
        n += c.len() as u64;
        h.update(&c);
    }
    assert_eq!((n, hex::encode(h.finalize())), (m.size, want));
    // A range across a part boundary (5 MiB).
    let at = 5 * 1024 * 1024 - 3;
    let (_, b) = s
        .get(bot, "big/blob.bin", None, Some(at..at + 6))
        .await
        .unwrap();
    let got = collect(b).await;
    let expect: Vec<u8> = (at..at + 6)
        .map(|p| {
            let (i, j) = ((p as usize) / CHUNK, (p as usize) % CHUNK);
            ((i * 31 + j * 7) % 251) as u8
        })
        .collect();
    assert_eq!(got, expect);
}

/// Retention removes replaced and deleted versions, never current ones.
pub async fn purge(s: &dyn DriveStore, bot: &BotId) {
    put(s, bot, "purge/a", b"v1").await;
    put(s, bot, "purge/a", b"v2").await;
    put(s, bot, "purge/b", b"gone").await;
    s.delete(bot, "purge/b").await.unwrap();
    // Nothing retired before an old cut-off.
    let none = s.purge_versions(Timestamp::from_millis(0)).await.unwrap();
    assert_eq!(none, 0);
    let n = s
        .purge_versions(Timestamp::now().plus_seconds(1))
        .await
        .unwrap();
    assert!(n >= 2, "purged {n}");
    assert_eq!(
        kind(s.head(bot, "purge/a", Some(1)).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(read(s, bot, "purge/a", None).await, b"v2");
    assert_eq!(
        kind(s.versions(bot, "purge/b").await).0,
        ErrorKind::NotFound
    );
    assert_eq!(s.versions(bot, "purge/a").await.unwrap().len(), 1);
}

/// Dropping a bot removes its files and leaves the other bot's.
pub async fn drop_bot(s: &dyn DriveStore, bot: &BotId, other: &BotId) {
    put(s, bot, "iso/secret", b"bot one").await;
    put(s, other, "drop/x", b"x").await;
    put(s, other, "drop/x", b"y").await;
    s.drop_bot(other).await.unwrap();
    assert_eq!(
        kind(s.head(other, "drop/x", None).await).0,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.head(other, "drop/x", Some(1)).await).0,
        ErrorKind::NotFound
    );
    assert!(s
        .list(other, ListRequest::default())
        .await
        .unwrap()
        .objects
        .is_empty());
    assert_eq!(read(s, bot, "iso/secret", None).await, b"bot one");
    // The bot can store again afterwards.
    assert_eq!(put(s, other, "drop/x", b"z").await.version, 1);
}
