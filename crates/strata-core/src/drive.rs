//! The drive layer: versioned file bodies per bot.
//!
//! # Behaviour every backend honours
//! - Keys are normalised by [`normalize_key`] before anything else: `..`,
//!   `.`, empty segments, a leading `/`, backslashes, NUL and control
//!   characters, and keys over [`MAX_KEY_LEN`] bytes are `InvalidInput`
//!   (`invalid_key`). Nothing is ever written outside the bot's area.
//! - Each `put` creates a new version (1, 2, …) of the key; `get`/`head`
//!   without a version read the current one, with a version an older one.
//! - `delete` removes the current view (later `get` → `NotFound`); older
//!   versions stay readable by number until retention purges them.
//! - Bodies stream in and out; a body over `max_size` is `PayloadTooLarge`
//!   and nothing is stored. The etag is the hex SHA-256 of the body.
//! - A `get` with a range returns exactly those bytes (end exclusive, clamped
//!   to the size); a range starting at or after the end is `InvalidInput`
//!   (`invalid_range`).
//! - `list` returns current objects under a prefix in key order; with a
//!   delimiter, keys with the delimiter after the prefix are rolled up into
//!   `prefixes` (like S3).
//! - Bots never see each other's objects.

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use utoipa::ToSchema;

use crate::types::BotId;
use crate::{Error, Result, Timestamp};

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// A body streaming in or out.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// What is known about one version of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ObjectMeta {
    pub key: String,
    pub version: i64,
    pub size: u64,
    /// Hex SHA-256 of the body.
    pub etag: String,
    pub content_type: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
    /// Whether this version is the current one (false for deleted or
    /// replaced versions).
    pub current: bool,
}

/// Options of a `put`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    pub content_type: String,
    /// Largest body accepted.
    pub max_size: u64,
}

/// A listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRequest {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Continue after this key (exclusive).
    pub after: Option<String>,
    pub limit: usize,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    pub prefixes: Vec<String>,
    /// The last key or prefix of this page when more may follow.
    pub next: Option<String>,
}

/// Checks and normalises a key (see the module documentation).
pub fn normalize_key(key: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(Error::invalid(format!("file key {key:?} is invalid: {why}")).with_code("invalid_key"))
    };
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("it is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("absolute paths are not allowed");
    }
    if key.contains('\\') {
        return bad("backslashes are not allowed");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("NUL and control characters are not allowed");
    }
    for seg in key.split('/') {
        match seg {
            "" => return bad("empty path segments are not allowed"),
            "." | ".." => return bad("'.' and '..' segments are not allowed"),
            _ => {}
        }
    }
    Ok(key.to_owned())
}

/// The drive layer.
#[async_trait]
pub trait DriveStore: Send + Sync + fmt::Debug {
    /// Stores a new version of `key` from `body`.
    async fn put(
        &self,
        bot: &BotId,
        key: &str,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta>;
    /// The current version, or `version`.
    async fn head(&self, bot: &BotId, key: &str, version: Option<i64>) -> Result<ObjectMeta>;
    /// The body of the current version (or `version`), optionally a range.
    async fn get(
        &self,
        bot: &BotId,
        key: &str,
        version: Option<i64>,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectMeta, ByteStream)>;
    /// Removes the current view; returns the version that was current.
    async fn delete(&self, bot: &BotId, key: &str) -> Result<ObjectMeta>;
    /// Current objects under a prefix.
    async fn list(&self, bot: &BotId, req: ListRequest) -> Result<ListPage>;
    /// Every stored version of `key`, newest first.
    async fn versions(&self, bot: &BotId, key: &str) -> Result<Vec<ObjectMeta>>;
    /// Removes bodies of versions that stopped being current before `before`.
    async fn purge_versions(&self, before: Timestamp) -> Result<u64>;
    /// Removes everything of a bot.
    async fn drop_bot(&self, bot: &BotId) -> Result<()>;
    async fn ping(&self) -> Result<()>;
    /// The store's name in readiness reports (`filesystem`, `s3`).
    fn backend(&self) -> &'static str {
        "drive"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for ok in ["a", "a/b.txt", "bot.gbai/bot.gbkb/doc one.pdf", "ü/ñ"] {
            assert_eq!(normalize_key(ok).expect(ok), ok);
        }
        let long = "x".repeat(MAX_KEY_LEN + 1);
        for bad in [
            "", "/a", "a/../b", "..", "./a", "a//b", "a/", "a\\b", "a\0b", "a\nb", &long,
        ] {
            let e = normalize_key(bad).expect_err(bad);
            assert_eq!(e.code(), "invalid_key", "{bad:?}");
        }
    }
}
