//! [`Drive`]: bodies in an object store, metadata in SQLite.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};
use rusqlite::{params, Connection, OptionalExtension, Row};
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use strata_core::drive::{
    normalize_key, ByteStream, DriveStore, ListPage, ListRequest, ObjectMeta, PutOptions,
};
use strata_core::types::BotId;
use strata_core::{Error, ErrorKind, Result, Timestamp};
use strata_records::sqlite::map_sqlite_error;
use strata_records::SqliteDatabase;

/// Parts uploaded at the same time by one put (each up to 5 MiB in memory).
const UPLOAD_CONCURRENCY: usize = 4;
/// Largest page of a listing.
pub const MAX_LIST_LIMIT: usize = 1000;
/// Rows handled per round by `purge_versions`.
const PURGE_BATCH: usize = 500;

/// The drive: an object store for bodies plus the `drive_objects` table.
#[derive(Clone)]
pub struct Drive {
    store: Arc<dyn ObjectStore>,
    db: SqliteDatabase,
    backend: &'static str,
    /// The folder of a `file://` drive (its free space is checked).
    local_dir: Option<std::path::PathBuf>,
    /// Below this many free bytes a local drive reports it cannot write.
    min_free_bytes: u64,
    /// Whether the last uploads succeeded (readiness).
    write_health: Arc<strata_core::worker::WriteHealth>,
}

impl fmt::Debug for Drive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drive")
            .field("backend", &self.backend)
            .field("store", &self.store.to_string())
            .finish()
    }
}

fn sql(e: rusqlite::Error) -> Error {
    map_sqlite_error(e)
}

/// Maps an object store failure at this crate's boundary.
fn store_err(what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => {
            Error::not_found(format!("the body of {what}")).with_code("file_not_found")
        }
        other => Error::unavailable(format!("the drive's object store failed to {what}"))
            .with_source(other),
    }
}

fn file_not_found(key: &str, version: Option<i64>) -> Error {
    match version {
        Some(v) => Error::not_found(format!("version {v} of file {key:?}")),
        None => Error::not_found(format!("file {key:?}")),
    }
    .with_code("file_not_found")
}

const COLS: &str = "key, version, size, etag, content_type, created_at, updated_at, current, body";

struct Stored {
    meta: ObjectMeta,
    body: String,
}

fn read_row(r: &Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        meta: ObjectMeta {
            key: r.get(0)?,
            version: r.get(1)?,
            size: r.get::<_, i64>(2)?.max(0) as u64,
            etag: r.get(3)?,
            content_type: r.get(4)?,
            created_at: Timestamp::from_millis(r.get(5)?),
            updated_at: Timestamp::from_millis(r.get(6)?),
            current: r.get::<_, i64>(7)? != 0,
        },
        body: r.get(8)?,
    })
}

fn find(conn: &Connection, bot: &str, key: &str, version: Option<i64>) -> Result<Option<Stored>> {
    let q = match version {
        Some(_) => format!(
            "SELECT {COLS} FROM drive_objects WHERE bot_id = ?1 AND key = ?2 AND version = ?3"
        ),
        None => format!(
            "SELECT {COLS} FROM drive_objects WHERE bot_id = ?1 AND key = ?2 AND current = 1 AND ?3 IS NULL"
        ),
    };
    conn.prepare_cached(&q)
        .map_err(sql)?
        .query_row(params![bot, key, version], read_row)
        .optional()
        .map_err(sql)
}

/// The smallest byte string greater than every string that starts with `p`
/// (UTF-8 never contains 0xFF).
fn past_prefix(p: &str) -> Vec<u8> {
    let mut v = p.as_bytes().to_vec();
    v.push(0xFF);
    v
}

impl Drive {
    /// A drive over `store` (bodies) and `db` (metadata); `backend` names
    /// the store in readiness reports.
    pub fn new(store: Arc<dyn ObjectStore>, db: SqliteDatabase, backend: &'static str) -> Self {
        Drive {
            store,
            db,
            backend,
            local_dir: None,
            min_free_bytes: strata_records::sqlite::DEFAULT_MIN_FREE_BYTES,
            write_health: Default::default(),
        }
    }

    /// The bodies live in `dir` on the local file system: readiness checks
    /// that it has at least `min_free_bytes` free.
    pub fn with_local_dir(mut self, dir: std::path::PathBuf, min_free_bytes: u64) -> Self {
        self.local_dir = Some(dir);
        self.min_free_bytes = min_free_bytes;
        self
    }

    /// Below `n` free bytes a local drive reports that it cannot write.
    pub fn with_min_free_bytes(mut self, n: u64) -> Self {
        self.min_free_bytes = n;
        self
    }

    async fn put_unchecked(
        &self,
        bot: &BotId,
        key: &str,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        let key = normalize_key(key)?;
        let path = Self::body_path(bot);
        let (size, etag) = self.upload(&path, body, opts.max_size).await?;
        let now = Timestamp::now().as_millis();
        let b = bot.as_str().to_owned();
        let body_name = path.to_string();
        let content_type = opts.content_type;
        let written = self
            .db
            .write(move |c| {
                let prev: Option<(i64, i64)> = c
                    .prepare_cached(
                        "SELECT MAX(version), (SELECT created_at FROM drive_objects WHERE bot_id = ?1 AND key = ?2 AND current = 1) FROM drive_objects WHERE bot_id = ?1 AND key = ?2 HAVING MAX(version) IS NOT NULL",
                    )
                    .map_err(sql)?
                    .query_row(params![b, key], |r| {
                        Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(now)))
                    })
                    .optional()
                    .map_err(sql)?;
                let (version, created) = match prev {
                    Some((v, created)) => (v + 1, created),
                    None => (1, now),
                };
                c.prepare_cached(
                    "UPDATE drive_objects SET current = 0, retired_at = ?3 WHERE bot_id = ?1 AND key = ?2 AND current = 1",
                )
                .map_err(sql)?
                .execute(params![b, key, now])
                .map_err(sql)?;
                c.prepare_cached(
                    "INSERT INTO drive_objects (bot_id, key, version, size, etag, content_type, body, created_at, updated_at, current) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)",
                )
                .map_err(sql)?
                .execute(params![b, key, version, size as i64, etag, content_type, body_name, created, now])
                .map_err(|e| match map_sqlite_error(e) {
                    // The bot was deleted while the body streamed in.
                    e if e.kind() == ErrorKind::NotFound => {
                        Error::not_found(format!("bot {b:?}")).with_code("bot_not_found")
                    }
                    e => e,
                })?;
                Ok(ObjectMeta {
                    key,
                    version,
                    size,
                    etag,
                    content_type,
                    created_at: Timestamp::from_millis(created),
                    updated_at: Timestamp::from_millis(now),
                    current: true,
                })
            })
            .await;
        if written.is_err() {
            self.remove_body(&path).await;
        }
        written
    }

    /// `filesystem` or `s3`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    fn body_path(bot: &BotId) -> StorePath {
        StorePath::from(format!("bots/{}/{}", bot.as_str(), uuid::Uuid::now_v7()))
    }

    async fn remove_body(&self, path: &StorePath) {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(error = %e, body = %path, "removing a drive body failed"),
        }
    }

    async fn lookup(&self, bot: &BotId, key: &str, version: Option<i64>) -> Result<Stored> {
        let key = normalize_key(key)?;
        if let Some(v) = version {
            if v < 1 {
                return Err(
                    Error::invalid(format!("version {v} is invalid: versions start at 1"))
                        .with_code("invalid_version"),
                );
            }
        }
        let (b, k) = (bot.as_str().to_owned(), key.clone());
        self.db
            .read(move |c| find(c, &b, &k, version))
            .await?
            .ok_or_else(|| file_not_found(&key, version))
    }

    /// Streams `body` into a new object at `path`; returns (size, etag).
    async fn upload(
        &self,
        path: &StorePath,
        mut body: ByteStream,
        max_size: u64,
    ) -> Result<(u64, String)> {
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| store_err("start an upload", e))?;
        let mut w = WriteMultipart::new(upload);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let failure = loop {
            match body.next().await {
                None => break None,
                Some(Err(e)) => break Some(e),
                Some(Ok(chunk)) => {
                    size += chunk.len() as u64;
                    if size > max_size {
                        break Some(
                            Error::new(
                                ErrorKind::PayloadTooLarge,
                                format!("the file is larger than the limit of {max_size} bytes"),
                            )
                            .with_code("payload_too_large"),
                        );
                    }
                    hasher.update(&chunk);
                    if let Err(e) = w.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                        break Some(store_err("upload a part", e));
                    }
                    w.put(chunk);
                }
            }
        };
        if let Some(e) = failure {
            if let Err(abort) = w.abort().await {
                tracing::warn!(error = %abort, body = %path, "aborting a drive upload failed");
            }
            return Err(e);
        }
        w.finish()
            .await
            .map_err(|e| store_err("complete an upload", e))?;
        Ok((size, hex::encode(hasher.finalize())))
    }
}

#[async_trait]
impl DriveStore for Drive {
    async fn put(
        &self,
        bot: &BotId,
        key: &str,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        let out = self.put_unchecked(bot, key, body, opts).await;
        match &out {
            Ok(_) => self.write_health.succeeded(),
            // The store or the metadata database could not write (disk
            // full, I/O errors): readiness reports it until a write works.
            Err(e) if e.kind() == ErrorKind::Unavailable => self.write_health.failed(e),
            Err(_) => {}
        }
        out
    }

    async fn head(&self, bot: &BotId, key: &str, version: Option<i64>) -> Result<ObjectMeta> {
        Ok(self.lookup(bot, key, version).await?.meta)
    }

    async fn get(
        &self,
        bot: &BotId,
        key: &str,
        version: Option<i64>,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectMeta, ByteStream)> {
        let found = self.lookup(bot, key, version).await?;
        let size = found.meta.size;
        let range = match range {
            None => None,
            Some(r) if r.start >= size || r.end <= r.start => {
                return Err(Error::invalid(format!(
                    "the range {}..{} is outside the file's {size} bytes",
                    r.start, r.end
                ))
                .with_code("invalid_range"));
            }
            Some(r) => Some(r.start..r.end.min(size)),
        };
        if size == 0 {
            // Nothing to read (and some stores reject even a full read of
            // an empty multipart object's range).
            let empty: ByteStream = Box::pin(futures_util::stream::empty());
            return Ok((found.meta, empty));
        }
        let path = StorePath::from(found.body.as_str());
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let res = self
            .store
            .get_opts(&path, opts)
            .await
            .map_err(|e| store_err("read a body", e))?;
        let stream: ByteStream = match res.payload {
            // A local file: read it in large pieces. object_store's own
            // stream reads 8 KiB per blocking task, which held downloads to
            // about a quarter of the upload speed.
            object_store::GetResultPayload::File(file, _) => {
                file_stream(file, res.range.start, res.range.end - res.range.start)
            }
            object_store::GetResultPayload::Stream(s) => {
                Box::pin(s.map(|r| r.map_err(|e| store_err("read a body", e))))
            }
        };
        Ok((found.meta, stream))
    }

    async fn delete(&self, bot: &BotId, key: &str) -> Result<ObjectMeta> {
        let key = normalize_key(key)?;
        let b = bot.as_str().to_owned();
        let now = Timestamp::now().as_millis();
        self.db
            .write(move |c| {
                let found = find(c, &b, &key, None)?.ok_or_else(|| file_not_found(&key, None))?;
                c.prepare_cached(
                    "UPDATE drive_objects SET current = 0, retired_at = ?4, deleted_at = ?4 WHERE bot_id = ?1 AND key = ?2 AND version = ?3",
                )
                .map_err(sql)?
                .execute(params![b, key, found.meta.version, now])
                .map_err(sql)?;
                Ok(ObjectMeta {
                    current: false,
                    ..found.meta
                })
            })
            .await
    }

    async fn list(&self, bot: &BotId, req: ListRequest) -> Result<ListPage> {
        if req.prefix.len() > strata_core::drive::MAX_KEY_LEN
            || req.prefix.chars().any(|c| c.is_control())
        {
            return Err(
                Error::invalid(format!("prefix {:?} is invalid", req.prefix))
                    .with_code("invalid_prefix"),
            );
        }
        let delimiter = req.delimiter.filter(|d| !d.is_empty());
        let limit = match req.limit {
            0 => MAX_LIST_LIMIT,
            n => n.min(MAX_LIST_LIMIT),
        };
        let prefix = req.prefix;
        // The scan reads keys from `seek` on (inclusive or not), in order.
        let (mut seek, mut inclusive) = (prefix.as_bytes().to_vec(), true);
        if let Some(a) = &req.after {
            let rolled_up = delimiter.as_ref().is_some_and(|d| {
                a.ends_with(d.as_str()) && a.len() > prefix.len() && a.starts_with(&prefix)
            });
            let after = if rolled_up {
                past_prefix(a)
            } else {
                a.as_bytes().to_vec()
            };
            if after.as_slice() >= prefix.as_bytes() {
                (seek, inclusive) = (after, false);
            }
        }
        let b = bot.as_str().to_owned();
        let mut page = ListPage::default();
        let mut last: Option<String> = None;
        let batch_size = limit + 1;
        'scan: loop {
            let (b, seek2) = (b.clone(), seek.clone());
            let batch: Vec<Stored> = self.db.read(move |c| {
                let (b, seek) = (&b, &seek2);
                let mut st = c
                    .prepare_cached(&format!(
                        "SELECT {COLS} FROM drive_objects WHERE bot_id = ?1 AND current = 1 AND key >= CAST(?2 AS TEXT) AND (?3 OR key > CAST(?2 AS TEXT)) ORDER BY key LIMIT ?4"
                    ))
                    .map_err(sql)?;
                let rows = st
                    .query_map(params![b, seek, inclusive, batch_size as i64], read_row)
                    .map_err(sql)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
            }).await?;
            let exhausted = batch.len() < batch_size;
            for s in batch {
                let key = s.meta.key.as_str();
                if !key.starts_with(&prefix) {
                    break 'scan;
                }
                let rolled = delimiter.as_ref().and_then(|d| {
                    key[prefix.len()..]
                        .find(d.as_str())
                        .map(|i| key[..prefix.len() + i + d.len()].to_owned())
                });
                if page.objects.len() + page.prefixes.len() == limit {
                    page.next = last;
                    break 'scan;
                }
                inclusive = false;
                match rolled {
                    Some(p) => {
                        // Skip every other key under this prefix.
                        seek = past_prefix(&p);
                        last = Some(p.clone());
                        page.prefixes.push(p);
                        continue 'scan;
                    }
                    None => {
                        seek = key.as_bytes().to_vec();
                        last = Some(key.to_owned());
                        page.objects.push(s.meta);
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(page)
    }

    async fn versions(&self, bot: &BotId, key: &str) -> Result<Vec<ObjectMeta>> {
        let key = normalize_key(key)?;
        let (b, k) = (bot.as_str().to_owned(), key.clone());
        let all = self.db.read(move |c| {
            let key = &k;
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM drive_objects WHERE bot_id = ?1 AND key = ?2 ORDER BY version DESC"
                ))
                .map_err(sql)?;
            let rows = st.query_map(params![b, key], read_row).map_err(sql)?;
            rows.map(|r| r.map(|s| s.meta))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)
        }).await?;
        if all.is_empty() {
            return Err(file_not_found(&key, None));
        }
        Ok(all)
    }

    async fn purge_versions(&self, before: Timestamp) -> Result<u64> {
        let cutoff = before.as_millis();
        let mut purged = 0u64;
        loop {
            let batch: Vec<(String, String, i64, String)> = self.db.read(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT bot_id, key, version, body FROM drive_objects WHERE current = 0 AND retired_at < ?1 LIMIT ?2",
                    )
                    .map_err(sql)?;
                let rows = st
                    .query_map(params![cutoff, PURGE_BATCH as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .map_err(sql)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
            }).await?;
            if batch.is_empty() {
                return Ok(purged);
            }
            let n = batch.len();
            // Rows first: a row never names a missing body; a body whose
            // delete fails is an orphan that drop_bot still removes.
            let rows: Vec<(String, String, i64)> = batch
                .iter()
                .map(|(b, k, v, _)| (b.clone(), k.clone(), *v))
                .collect();
            self.db
                .write(move |c| {
                    let mut del = c
                        .prepare_cached(
                            "DELETE FROM drive_objects WHERE bot_id = ?1 AND key = ?2 AND version = ?3 AND current = 0",
                        )
                        .map_err(sql)?;
                    for (b, k, v) in &rows {
                        del.execute(params![b, k, v]).map_err(sql)?;
                    }
                    Ok(())
                })
                .await?;
            for (_, _, _, body) in &batch {
                self.remove_body(&StorePath::from(body.as_str())).await;
            }
            purged += n as u64;
            if n < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }

    async fn drop_bot(&self, bot: &BotId) -> Result<()> {
        let b = bot.as_str().to_owned();
        self.db
            .write(move |c| {
                c.execute("DELETE FROM drive_objects WHERE bot_id = ?1", params![b])
                    .map_err(sql)?;
                Ok(())
            })
            .await?;
        let prefix = StorePath::from(format!("bots/{}", bot.as_str()));
        let locations = self
            .store
            .list(Some(&prefix))
            .map(|m| m.map(|m| m.location))
            .boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_err("delete a bot's bodies", e)),
            }
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn ping(&self) -> Result<()> {
        self.db
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sql))
            .await?;
        match self.store.head(&StorePath::from("_strata/ping")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_err("answer", e)),
        }
        // Answering is not enough: can it write?
        if let Some(dir) = &self.local_dir {
            if let Ok(free) = strata_records::sqlite::free_bytes(dir) {
                if free < self.min_free_bytes {
                    return Err(Error::unavailable(format!(
                        "cannot write: {free} bytes free on the file system of {} (at least {} needed)",
                        dir.display(),
                        self.min_free_bytes
                    ))
                    .with_code("disk_full"));
                }
            }
        }
        if let Some((at, why)) = self.write_health.failure() {
            // Probe with a small object: the failure is over once it works.
            let probe = self
                .store
                .put(
                    &StorePath::from("_strata/ready-probe"),
                    Bytes::from(vec![0u8; 4096]).into(),
                )
                .await;
            match probe {
                Ok(_) => self.write_health.succeeded(),
                Err(_) => {
                    return Err(Error::unavailable(format!(
                        "cannot write: the last upload failed at {at}: {why}"
                    ))
                    .with_code("cannot_write"))
                }
            }
        }
        Ok(())
    }
}

/// Bytes a local file's download reads per blocking call.
pub const FILE_READ_CHUNK: usize = 1 << 20;

/// `len` bytes of `file` from `start`, read on blocking threads in pieces
/// of [`FILE_READ_CHUNK`] (one piece in memory at a time).
fn file_stream(file: std::fs::File, start: u64, len: u64) -> ByteStream {
    use std::io::{Read, Seek, SeekFrom};
    // State: the file (None once the stream ended or failed), the bytes
    // still to read, whether the start was sought.
    let read = move |(file, remaining, started): (Option<std::fs::File>, u64, bool)| async move {
        let mut file = file?;
        if remaining == 0 {
            return None;
        }
        let step = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            if !started {
                file.seek(SeekFrom::Start(start))?;
            }
            let want = remaining.min(FILE_READ_CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            let mut filled = 0;
            while filled < want {
                match file.read(&mut buf[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            buf.truncate(filled);
            Ok((file, buf))
        })
        .await;
        let failed = |e: Error| Some((Err(e), (None, 0, true)));
        match step {
            Ok(Ok((_, buf))) if buf.is_empty() => failed(Error::unavailable(
                "a drive body is shorter than its recorded size",
            )),
            Ok(Ok((file, buf))) => {
                let n = buf.len() as u64;
                Some((Ok(Bytes::from(buf)), (Some(file), remaining - n, true)))
            }
            Ok(Err(e)) => failed(Error::unavailable("reading a drive body failed").with_source(e)),
            Err(e) => failed(Error::internal("reading a drive body panicked").with_source(e)),
        }
    };
    Box::pin(futures_util::stream::unfold((Some(file), len, false), read))
}

/// A one-chunk body (for tests and small uploads).
pub fn body_from(bytes: impl Into<Bytes>) -> ByteStream {
    let b: Bytes = bytes.into();
    Box::pin(futures_util::stream::iter([Ok(b)]))
}
