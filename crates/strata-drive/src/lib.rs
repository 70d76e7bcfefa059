//! Strata's drive layer: versioned file bodies per bot.
//!
//! [`Drive`] implements [`strata_core::drive::DriveStore`] with two halves:
//! - **Bodies** live in an [`object_store`] store — the local filesystem
//!   (`file://<folder>`) or any S3-compatible service (`s3://bucket[/prefix]`).
//!   Each version's body is an object named `bots/<bot>/<uuid v7>`, never
//!   the user's key, so no key can reach outside the bot's area whatever it
//!   contains. Uploads stream through `WriteMultipart` (at most a few 5 MiB
//!   parts in memory), hashing with SHA-256 and counting bytes on the way; a
//!   body over the limit aborts the upload.
//! - **Metadata** (key, version, size, etag, content type, timestamps,
//!   current/deleted) lives in the records database's `drive_objects` table.
//!   A version's row is committed only after its body is complete, so a row
//!   always names a whole body; a failed put leaves no row and removes what
//!   it wrote.
//!
//! [`open_drive`] opens the store a URL names; [`behavior`] is the suite
//! every store passes (tests/behavior.rs runs each behaviour
//! [`behavior::for_each_behavior!`] lists as its own test, on the filesystem
//! and on an S3-compatible server).

pub mod behavior;
mod store;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use strata_core::{Error, Result};
use strata_records::SqliteDatabase;

pub use store::{body_from, Drive, FILE_READ_CHUNK, MAX_LIST_LIMIT};

/// S3 connection settings beyond what the URL says. Unset fields fall back
/// to the standard `AWS_*` environment variables.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// e.g. `http://127.0.0.1:9000` for MinIO or moto; `None` = AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl S3Settings {
    /// `STRATA_S3_ENDPOINT`, `STRATA_S3_REGION`, `STRATA_S3_ACCESS_KEY_ID`
    /// and `STRATA_S3_SECRET_ACCESS_KEY`, where set.
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        S3Settings {
            endpoint: var("STRATA_S3_ENDPOINT"),
            region: var("STRATA_S3_REGION"),
            access_key_id: var("STRATA_S3_ACCESS_KEY_ID"),
            secret_access_key: var("STRATA_S3_SECRET_ACCESS_KEY"),
        }
    }
}

fn invalid_url(url: &str, why: impl fmt::Display) -> Error {
    Error::invalid(format!(
        "invalid setting STRATA_DRIVE_URL: {:?}: {why}",
        redact(url)
    ))
    .with_code("invalid_config")
}

/// The URL without a password (one redactor for the whole system).
fn redact(url: &str) -> String {
    strata_core::redact::redact_url(url)
}

/// Opens the drive a URL names, with S3 settings from the environment.
pub async fn open_drive(url: &str, db: SqliteDatabase) -> Result<Drive> {
    open_drive_with(url, db, &S3Settings::from_env()).await
}

/// Opens the drive a URL names:
/// - `file://<folder>` — bodies under the folder (created if missing);
/// - `s3://<bucket>[/<prefix>]` — bodies in the bucket (which must exist),
///   configured from `s3` and then the standard `AWS_*` variables; plain
///   `http://` endpoints are allowed (local S3-compatible servers).
pub async fn open_drive_with(url: &str, db: SqliteDatabase, s3: &S3Settings) -> Result<Drive> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(invalid_url(url, "file:// needs a folder"));
        }
        let dir = PathBuf::from(path);
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::unavailable(format!("cannot create the drive folder {}", dir.display()))
                .with_source(e)
        })?;
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
            Error::unavailable(format!("cannot open the drive folder {}", dir.display()))
                .with_source(e)
        })?;
        return Ok(Drive::new(Arc::new(fs), db, "filesystem")
            .with_local_dir(dir, strata_records::sqlite::DEFAULT_MIN_FREE_BYTES));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (rest, ""),
        };
        if bucket.is_empty() {
            return Err(invalid_url(url, "s3:// needs a bucket name"));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let env_endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .ok();
        if let Some(e) = &s3.endpoint {
            b = b.with_endpoint(e);
        }
        if s3
            .endpoint
            .as_ref()
            .or(env_endpoint.as_ref())
            .is_some_and(|e| e.starts_with("http://"))
        {
            b = b.with_allow_http(true);
        }
        if let Some(r) = &s3.region {
            b = b.with_region(r);
        }
        if let Some(k) = &s3.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &s3.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        let store = b.build().map_err(|e| invalid_url(url, e))?;
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(store)
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        return Ok(Drive::new(store, db, "s3"));
    }
    Err(invalid_url(
        url,
        "expected file://<folder> or s3://<bucket>",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("s3://k:secret@b"), "s3://k:***@b");
        assert_eq!(redact("file:///x"), "file:///x");
    }

    #[test]
    fn s3_settings_debug_hides_the_secret() {
        let s = S3Settings {
            secret_access_key: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
