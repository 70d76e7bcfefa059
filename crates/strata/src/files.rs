//! The drive through the facade: a bot's files, with role checks, the
//! upload limit and the bot-package rules.
//!
//! Roles: reads (head, get, list, versions) need a reader; put and delete a
//! writer — except the bot's configuration file
//! `<bot>.gbai/<bot>.gbot/config.csv`, which changes the bot's settings and
//! so needs the bot's admin, like `PUT /config`.
//!
//! Uploads stream into the drive and are bounded by
//! `STRATA_MAX_UPLOAD_BYTES` (a declared `Content-Length` over it is refused
//! before a byte is read; a body that grows past it is stopped and nothing
//! is stored). `config.csv` is the exception that is read whole, because it
//! is validated before it is stored: at most [`MAX_CONFIG_CSV_BYTES`], rows
//! `name,value` (an optional `name,value` header, quoted values allowed); a
//! malformed file is refused with `invalid_config_csv` and nothing is
//! stored. After it is stored, its rows are merged into the bot's settings.
//!
//! After every successful put or delete the facade calls
//! `on_file_changed` — the knowledge base's hook.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::Value;
use std::ops::Range;

pub use strata_core::drive::{
    normalize_key, ByteStream, ListPage, ListRequest, ObjectMeta, PutOptions, MAX_KEY_LEN,
};

use strata_core::page::{Cursor, MAX_LIMIT};
use strata_core::types::Role;
use strata_core::{Error, ErrorKind, Result};

use crate::scope::BotScope;

/// Largest `config.csv`, in bytes.
pub const MAX_CONFIG_CSV_BYTES: u64 = 1024 * 1024;
/// Content type of a body that names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Default page size of a listing.
pub const DEFAULT_LIST_LIMIT: usize = 1000;

/// The key of a bot's configuration file.
pub fn config_csv_key(bot: &str) -> String {
    format!("{bot}.gbai/{bot}.gbot/config.csv")
}

/// What a successful write did to a file, as the knowledge base hears it.
#[derive(Debug, Clone, Copy)]
pub enum FileChange<'a> {
    /// A new current version was stored.
    Stored(&'a ObjectMeta),
    /// The current version was deleted (the meta is the version that was
    /// current).
    Deleted(&'a ObjectMeta),
}

/// A range a client asked for, before the file's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (both inclusive).
    Bounded { first: u64, last: u64 },
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses one `Range: bytes=…` header value (a single range).
    pub fn parse_header(v: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "Range {v:?} is not supported: use bytes=a-b, bytes=a- or bytes=-n (one range)"
            ))
            .with_code("invalid_range")
        };
        let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?.trim();
        if spec.contains(',') {
            return Err(bad());
        }
        let (a, b) = spec.split_once('-').ok_or_else(bad)?;
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        match (a.trim().is_empty(), b.trim().is_empty()) {
            (true, false) => Ok(ByteRange::Suffix(num(b)?)),
            (false, true) => Ok(ByteRange::From(num(a)?)),
            (false, false) => {
                let (first, last) = (num(a)?, num(b)?);
                if last < first {
                    return Err(bad());
                }
                Ok(ByteRange::Bounded { first, last })
            }
            (true, true) => Err(bad()),
        }
    }

    /// The byte offsets (end exclusive) within a body of `size` bytes;
    /// `range_not_satisfiable` when none of it is inside.
    pub fn resolve(self, size: u64) -> Result<Range<u64>> {
        let r = match self {
            ByteRange::Bounded { first, last } => first..last.saturating_add(1).min(size),
            ByteRange::From(first) => first..size,
            ByteRange::Suffix(n) => size.saturating_sub(n)..size,
        };
        if r.start >= size || r.start >= r.end {
            return Err(
                Error::invalid(format!("the range is outside the file's {size} bytes"))
                    .with_code("range_not_satisfiable"),
            );
        }
        Ok(r)
    }
}

/// A page of a bot's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePage {
    pub objects: Vec<ObjectMeta>,
    /// Rolled-up "folders" when a delimiter was given.
    pub prefixes: Vec<String>,
    pub next_cursor: Option<String>,
}

fn check_content_type(ct: Option<&str>) -> Result<String> {
    match ct.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(DEFAULT_CONTENT_TYPE.to_owned()),
        Some(c) if c.len() <= 255 && c.contains('/') && c.chars().all(|ch| (' '..='~').contains(&ch)) => {
            Ok(c.to_owned())
        }
        Some(c) => Err(Error::invalid(format!(
            "content type {c:?} is invalid: expected type/subtype in printable ASCII, at most 255 bytes"
        ))
        .with_code("invalid_content_type")),
    }
}

fn too_large(limit: u64) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        format!(
            "the file is larger than the upload limit of {limit} bytes (STRATA_MAX_UPLOAD_BYTES)"
        ),
    )
    .with_code("payload_too_large")
}

fn bad_csv(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("config.csv is invalid: {why}")).with_code("invalid_config_csv")
}

/// Parses a `config.csv`: `name,value` rows, an optional `name,value`
/// header, quoted values allowed; a later row wins over an earlier one.
pub fn parse_config_csv(data: &[u8]) -> Result<Vec<(String, String)>> {
    // The csv reader takes an unterminated quote as running to the end of
    // the file; an odd number of quote characters is exactly that case.
    if data.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
        return Err(bad_csv("a quoted value is not closed"));
    }
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut rows = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(bad_csv)?;
        let line = rec.position().map(|p| p.line()).unwrap_or(i as u64 + 1);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != 2 {
            return Err(bad_csv(format!(
                "line {line} has {} fields; expected name,value",
                rec.len()
            )));
        }
        let (name, value) = (&rec[0], &rec[1]);
        if i == 0 && name.eq_ignore_ascii_case("name") && value.eq_ignore_ascii_case("value") {
            continue;
        }
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(bad_csv(format!(
                "line {line}: setting names must be 1 to 255 bytes without control characters"
            )));
        }
        rows.push((name.to_owned(), value.to_owned()));
    }
    Ok(rows)
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
async fn read_small(mut body: ByteStream, limit: u64) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!("config.csv is larger than {limit} bytes"),
            )
            .with_code("payload_too_large"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

impl BotScope {
    fn drive(&self) -> &dyn strata_core::drive::DriveStore {
        self.strata().drive().as_ref()
    }

    /// Stores a new version of `key` from a streamed body. `declared_len`
    /// (the request's `Content-Length`) lets an oversized upload be refused
    /// before it is read.
    pub async fn put_file(
        &self,
        key: &str,
        body: ByteStream,
        content_type: Option<&str>,
        declared_len: Option<u64>,
    ) -> Result<ObjectMeta> {
        self.need(Role::Writer)?;
        let key = normalize_key(key)?;
        let content_type = check_content_type(content_type)?;
        let limit = self.strata().config().max_upload_bytes;
        if declared_len.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let is_config = key == config_csv_key(self.bot_id().as_str());
        let (body, settings) = if is_config {
            self.need(Role::Admin)?;
            let data = read_small(body, MAX_CONFIG_CSV_BYTES.min(limit)).await?;
            let settings = parse_config_csv(&data)?;
            let once: ByteStream = Box::pin(futures_util::stream::iter([Ok(data)]));
            (once, Some(settings))
        } else {
            (body, None)
        };
        let opts = PutOptions {
            content_type,
            max_size: limit,
        };
        let meta = self
            .drive()
            .put(self.bot_id(), &key, body, opts)
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::PayloadTooLarge {
                    too_large(limit)
                } else {
                    e
                }
            })?;
        if let Some(settings) = settings {
            let mut config = self.get_config().await?;
            let names: Vec<String> = settings.iter().map(|(n, _)| n.clone()).collect();
            for (name, value) in settings {
                config.insert(name, Value::String(value));
            }
            self.replace_config(config).await?;
            self.audit(
                "config.load_csv",
                &key,
                serde_json::json!({ "version": meta.version, "settings": names }),
            )
            .await;
        }
        self.on_file_changed(FileChange::Stored(&meta)).await;
        Ok(meta)
    }

    /// What is known about the current version of `key`, or `version`.
    pub async fn head_file(&self, key: &str, version: Option<i64>) -> Result<ObjectMeta> {
        self.need(Role::Reader)?;
        self.drive().head(self.bot_id(), key, version).await
    }

    /// The body of the current version (or `version`), optionally a range.
    /// A range is resolved against the size of the version read, and that
    /// same version is streamed.
    pub async fn get_file(
        &self,
        key: &str,
        version: Option<i64>,
        range: Option<ByteRange>,
    ) -> Result<(ObjectMeta, Option<Range<u64>>, ByteStream)> {
        self.need(Role::Reader)?;
        match range {
            None => {
                let (meta, body) = self.drive().get(self.bot_id(), key, version, None).await?;
                Ok((meta, None, body))
            }
            Some(r) => {
                let meta = self.drive().head(self.bot_id(), key, version).await?;
                let bytes = r.resolve(meta.size).map_err(|e| {
                    Error::invalid(format!("{} ({} bytes)", e.message(), meta.size))
                        .with_code("range_not_satisfiable")
                })?;
                let (meta, body) = self
                    .drive()
                    .get(self.bot_id(), key, Some(meta.version), Some(bytes.clone()))
                    .await?;
                Ok((meta, Some(bytes), body))
            }
        }
    }

    /// Deletes the current version of `key` (older versions stay readable
    /// by number until retention removes them).
    pub async fn delete_file(&self, key: &str) -> Result<ObjectMeta> {
        self.need(Role::Writer)?;
        let meta = self.drive().delete(self.bot_id(), key).await?;
        self.on_file_changed(FileChange::Deleted(&meta)).await;
        Ok(meta)
    }

    /// Current files under `prefix`, in key order, `limit` entries (objects
    /// plus rolled-up prefixes) a page.
    pub async fn list_files(
        &self,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<FilePage> {
        self.need(Role::Reader)?;
        let limit = match limit {
            None => DEFAULT_LIST_LIMIT,
            Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => n as usize,
            Some(n) => {
                return Err(
                    Error::invalid(format!("limit {n} is invalid: use 1 to {MAX_LIMIT}"))
                        .with_code("invalid_limit"),
                );
            }
        };
        let after = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(Cursor::decode(c)?.key().to_owned()),
            None => None,
        };
        let delimiter = delimiter.filter(|d| !d.is_empty()).map(str::to_owned);
        if delimiter.as_ref().is_some_and(|d| d.len() > 16) {
            return Err(Error::invalid("the delimiter is longer than 16 bytes")
                .with_code("invalid_delimiter"));
        }
        let page = self
            .drive()
            .list(
                self.bot_id(),
                ListRequest {
                    prefix: prefix.unwrap_or("").to_owned(),
                    delimiter,
                    after,
                    limit,
                },
            )
            .await?;
        Ok(FilePage {
            objects: page.objects,
            prefixes: page.prefixes,
            next_cursor: page.next.map(|k| Cursor::after(&k).encode()),
        })
    }

    /// Every stored version of `key`, newest first.
    pub async fn file_versions(&self, key: &str) -> Result<Vec<ObjectMeta>> {
        self.need(Role::Reader)?;
        self.drive().versions(self.bot_id(), key).await
    }

    /// Called after every successful put or delete of any key of this bot.
    ///
    /// KNOWLEDGE BASE HOOK (owned by the KB work): files under
    /// `<bot>.gbai/<bot>.gbkb/` are to be (re-)indexed on `Stored` and
    /// their chunks and vectors removed on `Deleted`. It must not fail the
    /// write the client already saw succeed: enqueue durably and log errors.
    pub(crate) async fn on_file_changed(&self, change: FileChange<'_>) {
        let (key, version) = match change {
            FileChange::Stored(m) => (m.key.as_str(), Some(m.version)),
            FileChange::Deleted(m) => (m.key.as_str(), None),
        };
        if let Err(e) = self
            .strata()
            .kb_file_changed(self.bot_id(), key, version)
            .await
        {
            tracing::error!(bot = %self.bot_id().as_str(), key, error = %e, "queueing the knowledge-base job failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve() {
        let r = |s: &str| ByteRange::parse_header(s).expect(s);
        assert_eq!(r("bytes=0-9").resolve(100).expect("ok"), 0..10);
        assert_eq!(r("bytes=90-").resolve(100).expect("ok"), 90..100);
        assert_eq!(r("bytes=-5").resolve(100).expect("ok"), 95..100);
        assert_eq!(r("bytes=-500").resolve(100).expect("ok"), 0..100);
        assert_eq!(r("bytes=50-1000").resolve(100).expect("ok"), 50..100);
        for bad in ["bytes=100-", "bytes=200-300", "bytes=-0"] {
            assert_eq!(
                r(bad).resolve(100).expect_err(bad).code(),
                "range_not_satisfiable"
            );
        }
        assert_eq!(
            r("bytes=0-").resolve(0).expect_err("empty").code(),
            "range_not_satisfiable"
        );
        for bad in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=-",
        ] {
            assert_eq!(
                ByteRange::parse_header(bad).expect_err(bad).code(),
                "invalid_range"
            );
        }
    }

    #[test]
    fn config_csv_rows() {
        let rows = parse_config_csv(
            b"name,value\ngreeting,\"Hello, world\"\n\nrate_limit, 120 \n\"quoted \"\"name\"\"\",x\n",
        )
        .expect("parse");
        assert_eq!(
            rows,
            vec![
                ("greeting".into(), "Hello, world".into()),
                ("rate_limit".into(), "120".into()),
                ("quoted \"name\"".into(), "x".into()),
            ]
        );
        assert!(parse_config_csv(b"").expect("empty").is_empty());
        for bad in [
            &b"a,b,c\n"[..],
            b"just-a-name\n",
            b",value\n",
            b"a,\"unterminated\n",
            b"\xff\xfe,x\n",
        ] {
            let e = parse_config_csv(bad).expect_err("bad csv");
            assert_eq!(e.code(), "invalid_config_csv", "{bad:?}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            check_content_type(None).expect("default"),
            DEFAULT_CONTENT_TYPE
        );
        assert_eq!(
            check_content_type(Some("text/plain; charset=utf-8")).expect("ok"),
            "text/plain; charset=utf-8"
        );
        assert!(check_content_type(Some("nonsense")).is_err());
        assert!(check_content_type(Some("text/\u{7}")).is_err());
    }
}
