//! Configuration: `strata.toml`, then `STRATA_*` environment variables.
//!
//! Every setting has a default; the file's keys mirror the environment names
//! without the prefix (`STRATA_RECORDS_URL` ↔ `records_url`). [`ConfigBuilder`]
//! validates everything in one place and names the offending setting.
//! `Debug` never prints the admin key or URL credentials.

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use strata_core::types::BotId;
use strata_core::{Error, Result};
use strata_records::Durability;

/// Default request body limit: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default `STRATA_MAX_UPLOAD_BYTES`: 100 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
/// Default `STRATA_DRIVE_VERSION_RETENTION_DAYS`.
pub const DEFAULT_DRIVE_VERSION_RETENTION_DAYS: i64 = 30;
/// Default requests per minute per API key and endpoint group (1000/s
/// sustained, a full minute's worth as a burst).
pub const DEFAULT_RATE_LIMIT: u32 = 60_000;
/// Default failed authentications per minute per client address (and per
/// key id).
pub const DEFAULT_AUTH_FAILURE_LIMIT: u32 = 60;
/// Default size of the history cache: 64 MiB.
pub const DEFAULT_HISTORY_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Default idle lifetime of a session: 24 hours.
pub const DEFAULT_SESSION_TTL_SECONDS: i64 = 24 * 3600;
/// Default most vector collections per bot.
pub const DEFAULT_VECTOR_MAX_COLLECTIONS: u64 = 100;
/// Default most vector points per bot (all collections together).
pub const DEFAULT_VECTOR_MAX_POINTS: u64 = 10_000_000;

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the records layer (and kv and full-text, which share it) lives.
#[derive(Clone, PartialEq, Eq)]
pub enum RecordsUrl {
    /// `sqlite://<path>` — the embedded default.
    Sqlite(PathBuf),
    /// `postgres://…` — planned.
    Postgres(String),
}

impl fmt::Debug for RecordsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordsUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            RecordsUrl::Postgres(u) => write!(f, "{}", redact_url(u)),
        }
    }
}

pub use strata_core::redact::redact_url;

/// A setting that holds a URL (or, for `STRATA_EMBEDDER`, a prefixed URL)
/// which may carry a credential. `Debug` and `Display` print it through
/// [`redact_url`]; [`UrlSetting::expose`] gives the real value to the code
/// that connects.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlSetting(String);

impl UrlSetting {
    /// Wraps a URL.
    pub fn new(s: impl Into<String>) -> Self {
        UrlSetting(s.into())
    }

    /// The URL itself, credentials included; only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for UrlSetting {
    fn from(s: String) -> Self {
        UrlSetting(s)
    }
}

impl From<&str> for UrlSetting {
    fn from(s: &str) -> Self {
        UrlSetting(s.to_owned())
    }
}

impl fmt::Debug for UrlSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for UrlSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// The validated configuration of a Strata system.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data folder of the embedded default (`STRATA_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Address the server binds (`STRATA_LISTEN`).
    pub listen: SocketAddr,
    /// The global admin key (`STRATA_ADMIN_KEY`); `None`: generated once and
    /// its hash kept in the records store.
    pub admin_key: Option<Secret>,
    /// The records layer (`STRATA_RECORDS_URL`).
    pub records: RecordsUrl,
    /// SQLite durability (`STRATA_DURABILITY`: `process` or `fsync`).
    pub durability: Durability,
    /// The drive (`STRATA_DRIVE_URL`), kept for the planned drive layer.
    pub drive_url: UrlSetting,
    /// The cache (`STRATA_CACHE_URL`).
    pub cache_url: UrlSetting,
    /// The vector engine (`STRATA_VECTORS_URL`).
    pub vectors_url: UrlSetting,
    /// The embedder (`STRATA_EMBEDDER`): `none`, `local:<model folder>` or
    /// `openai:<base url>`.
    pub embedder: UrlSetting,
    /// Bearer token of an `openai:` embedder (`STRATA_EMBEDDER_API_KEY`).
    pub embedder_api_key: Option<Secret>,
    /// Model an `openai:` embedder asks for (`STRATA_EMBEDDER_MODEL`;
    /// default `text-embedding-3-small`).
    pub embedder_model: Option<String>,
    /// Dimension of an `openai:` embedder's vectors
    /// (`STRATA_EMBEDDER_DIMENSION`; learned from its first answer if unset).
    pub embedder_dimension: Option<usize>,
    /// Arithmetic of a `local:` embedder's matrix products
    /// (`STRATA_EMBEDDER_PRECISION`: `auto`, `f32` or `bf16`).
    pub embedder_precision: strata_embed::LocalPrecision,
    /// Request body limit in bytes (`STRATA_MAX_BODY_BYTES`).
    pub max_body_bytes: u64,
    /// Largest file upload in bytes (`STRATA_MAX_UPLOAD_BYTES`); file
    /// uploads stream and are not bound by `max_body_bytes`.
    pub max_upload_bytes: u64,
    /// Days a replaced or deleted file version stays readable by number
    /// (`STRATA_DRIVE_VERSION_RETENTION_DAYS`).
    pub drive_version_retention_days: i64,
    /// Default requests per minute per key (`STRATA_RATE_LIMIT`).
    pub rate_limit: u32,
    /// Failed authentications per minute per client address and per key id
    /// before they are answered 429 (`STRATA_AUTH_FAILURE_LIMIT`).
    pub auth_failure_limit: u32,
    /// Below this many free bytes on a data file system the layer reports
    /// that it cannot write (`STRATA_MIN_FREE_BYTES`).
    pub min_free_bytes: u64,
    /// Default idle lifetime of sessions (`STRATA_SESSION_TTL_SECONDS`).
    pub session_ttl_seconds: i64,
    /// Bytes of serialised history reads kept in memory
    /// (`STRATA_HISTORY_CACHE_BYTES`; 0 turns the history cache off).
    pub history_cache_bytes: u64,
    /// Most vector collections per bot (`STRATA_VECTOR_MAX_COLLECTIONS`);
    /// a bot's `vectors.max_collections` setting overrides it.
    pub vector_max_collections: u64,
    /// Most vector points per bot (`STRATA_VECTOR_MAX_POINTS`); a bot's
    /// `vectors.max_points` setting overrides it.
    pub vector_max_points: u64,
    /// Address of the Qdrant-compatible REST listener
    /// (`STRATA_QDRANT_LISTEN`); off when `None`.
    pub qdrant_listen: Option<SocketAddr>,
    /// The version `GET /` of the Qdrant API reports
    /// (`STRATA_QDRANT_VERSION`; clients compare its major and minor with
    /// their own).
    pub qdrant_version: String,
    /// A bot whose admin a request without a key acts as on the Qdrant
    /// listener (`STRATA_QDRANT_KEYLESS_BOT`), like a Qdrant without an
    /// `api_key`, for tools that send none; `None` (the default): every
    /// request needs a key. Never applies under `/qdrant` of the main
    /// listener.
    pub qdrant_keyless_bot: Option<String>,
}

/// The Qdrant version the Qdrant-compatible API reports by default.
pub const DEFAULT_QDRANT_VERSION: &str = "1.19.0";

impl Config {
    /// The embedded default rooted at `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        ConfigBuilder::default()
            .data_dir(data_dir)
            .build()
            .unwrap_or_else(|_| unreachable_default())
    }

    /// Loads `file` (when given, or `./strata.toml` when it exists), then the
    /// process environment.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("STRATA_"))
            .collect();
        ConfigBuilder::from_sources(file, &env)?.build()
    }
}

fn unreachable_default() -> Config {
    // The defaults are valid by construction; this is never reached.
    Config {
        data_dir: PathBuf::from("./data"),
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        admin_key: None,
        records: RecordsUrl::Sqlite(PathBuf::from("./data/strata.db")),
        durability: Durability::Process,
        drive_url: "file://./data/drive".into(),
        cache_url: "memory://".into(),
        vectors_url: "embedded".into(),
        embedder: "none".into(),
        embedder_api_key: None,
        embedder_model: None,
        embedder_dimension: None,
        embedder_precision: strata_embed::LocalPrecision::Auto,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        drive_version_retention_days: DEFAULT_DRIVE_VERSION_RETENTION_DAYS,
        rate_limit: DEFAULT_RATE_LIMIT,
        auth_failure_limit: DEFAULT_AUTH_FAILURE_LIMIT,
        min_free_bytes: strata_records::sqlite::DEFAULT_MIN_FREE_BYTES,
        session_ttl_seconds: DEFAULT_SESSION_TTL_SECONDS,
        history_cache_bytes: DEFAULT_HISTORY_CACHE_BYTES,
        vector_max_collections: DEFAULT_VECTOR_MAX_COLLECTIONS,
        vector_max_points: DEFAULT_VECTOR_MAX_POINTS,
        qdrant_listen: None,
        qdrant_version: DEFAULT_QDRANT_VERSION.to_owned(),
        qdrant_keyless_bot: None,
    }
}

/// Raw settings as read from the file and the environment, before validation.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBuilder {
    data_dir: Option<String>,
    listen: Option<String>,
    admin_key: Option<String>,
    records_url: Option<String>,
    durability: Option<String>,
    drive_url: Option<String>,
    cache_url: Option<String>,
    vectors_url: Option<String>,
    embedder: Option<String>,
    embedder_api_key: Option<String>,
    embedder_model: Option<String>,
    embedder_dimension: Option<toml::Value>,
    embedder_precision: Option<String>,
    max_body_bytes: Option<toml::Value>,
    max_upload_bytes: Option<toml::Value>,
    drive_version_retention_days: Option<toml::Value>,
    rate_limit: Option<toml::Value>,
    auth_failure_limit: Option<toml::Value>,
    min_free_bytes: Option<toml::Value>,
    session_ttl_seconds: Option<toml::Value>,
    history_cache_bytes: Option<toml::Value>,
    vector_max_collections: Option<toml::Value>,
    vector_max_points: Option<toml::Value>,
    qdrant_listen: Option<String>,
    qdrant_version: Option<String>,
    qdrant_keyless_bot: Option<String>,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder").finish_non_exhaustive()
    }
}

fn setting_error(name: &str, msg: impl fmt::Display) -> Error {
    Error::invalid(format!("invalid setting {name}: {msg}")).with_code("invalid_config")
}

impl ConfigBuilder {
    /// Reads `file` (or `./strata.toml` when `None` and it exists) and then
    /// overlays the `STRATA_*` variables in `env`.
    pub fn from_sources(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self> {
        let path = match file {
            Some(p) => Some(p.to_owned()),
            None => env
                .get("STRATA_CONFIG")
                .map(PathBuf::from)
                .or_else(|| Some(PathBuf::from("strata.toml")).filter(|p| p.exists())),
        };
        let mut b = match path {
            None => ConfigBuilder::default(),
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    setting_error("config file", format!("cannot read {}: {e}", p.display()))
                })?;
                parse_file(&p, &text)?
            }
        };
        let s = |k: &str| env.get(k).cloned();
        let n = |k: &str| env.get(k).map(|v| toml::Value::String(v.clone()));
        b.data_dir = s("STRATA_DATA_DIR").or(b.data_dir);
        b.listen = s("STRATA_LISTEN").or(b.listen);
        b.admin_key = s("STRATA_ADMIN_KEY").or(b.admin_key);
        b.records_url = s("STRATA_RECORDS_URL").or(b.records_url);
        b.durability = s("STRATA_DURABILITY").or(b.durability);
        b.drive_url = s("STRATA_DRIVE_URL").or(b.drive_url);
        b.cache_url = s("STRATA_CACHE_URL").or(b.cache_url);
        b.vectors_url = s("STRATA_VECTORS_URL").or(b.vectors_url);
        b.embedder = s("STRATA_EMBEDDER").or(b.embedder);
        b.embedder_api_key = s("STRATA_EMBEDDER_API_KEY").or(b.embedder_api_key);
        b.embedder_model = s("STRATA_EMBEDDER_MODEL").or(b.embedder_model);
        b.embedder_dimension = n("STRATA_EMBEDDER_DIMENSION").or(b.embedder_dimension);
        b.embedder_precision = s("STRATA_EMBEDDER_PRECISION").or(b.embedder_precision);
        b.max_body_bytes = n("STRATA_MAX_BODY_BYTES").or(b.max_body_bytes);
        b.max_upload_bytes = n("STRATA_MAX_UPLOAD_BYTES").or(b.max_upload_bytes);
        b.drive_version_retention_days =
            n("STRATA_DRIVE_VERSION_RETENTION_DAYS").or(b.drive_version_retention_days);
        b.rate_limit = n("STRATA_RATE_LIMIT").or(b.rate_limit);
        b.auth_failure_limit = n("STRATA_AUTH_FAILURE_LIMIT").or(b.auth_failure_limit);
        b.min_free_bytes = n("STRATA_MIN_FREE_BYTES").or(b.min_free_bytes);
        b.session_ttl_seconds = n("STRATA_SESSION_TTL_SECONDS").or(b.session_ttl_seconds);
        b.history_cache_bytes = n("STRATA_HISTORY_CACHE_BYTES").or(b.history_cache_bytes);
        b.vector_max_collections = n("STRATA_VECTOR_MAX_COLLECTIONS").or(b.vector_max_collections);
        b.vector_max_points = n("STRATA_VECTOR_MAX_POINTS").or(b.vector_max_points);
        b.qdrant_listen = s("STRATA_QDRANT_LISTEN").or(b.qdrant_listen);
        b.qdrant_version = s("STRATA_QDRANT_VERSION").or(b.qdrant_version);
        b.qdrant_keyless_bot = s("STRATA_QDRANT_KEYLESS_BOT").or(b.qdrant_keyless_bot);
        Ok(b)
    }

    /// Sets the data folder.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into().to_string_lossy().into_owned());
        self
    }

    /// Sets the admin key.
    pub fn admin_key(mut self, key: impl Into<String>) -> Self {
        self.admin_key = Some(key.into());
        self
    }

    /// Sets the listen address.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Sets the address of the Qdrant-compatible listener.
    pub fn qdrant_listen(mut self, addr: impl Into<String>) -> Self {
        self.qdrant_listen = Some(addr.into());
        self
    }

    /// Sets the body limit.
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = Some(toml::Value::Integer(n as i64));
        self
    }

    /// Sets the file upload limit.
    pub fn max_upload_bytes(mut self, n: u64) -> Self {
        self.max_upload_bytes = Some(toml::Value::Integer(n as i64));
        self
    }

    /// Validates every setting.
    pub fn build(self) -> Result<Config> {
        let data_dir = PathBuf::from(self.data_dir.unwrap_or_else(|| "./data".into()));
        if data_dir.as_os_str().is_empty() {
            return Err(setting_error("STRATA_DATA_DIR", "must not be empty"));
        }
        let listen_s = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = SocketAddr::from_str(&listen_s).map_err(|_| {
            setting_error(
                "STRATA_LISTEN",
                format!("{listen_s:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let qdrant_listen = match self.qdrant_listen.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => Some(SocketAddr::from_str(a).map_err(|_| {
                setting_error(
                    "STRATA_QDRANT_LISTEN",
                    format!("{a:?} is not an address like 127.0.0.1:6333"),
                )
            })?),
        };
        let qdrant_version = self
            .qdrant_version
            .unwrap_or_else(|| DEFAULT_QDRANT_VERSION.to_owned());
        {
            let mut parts = qdrant_version.split('.');
            let numeric = |p: Option<&str>| p.is_some_and(|x| x.parse::<u32>().is_ok());
            if !(numeric(parts.next()) && numeric(parts.next())) {
                return Err(setting_error(
                    "STRATA_QDRANT_VERSION",
                    format!("{qdrant_version:?} is not a version like 1.19.0"),
                ));
            }
        }
        let qdrant_keyless_bot = match self.qdrant_keyless_bot.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(b) => Some(
                BotId::parse(b)
                    .map_err(|e| setting_error("STRATA_QDRANT_KEYLESS_BOT", e.message()))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let admin_key = match self.admin_key {
            None => None,
            Some(k) if k.len() < 16 => {
                return Err(setting_error(
                    "STRATA_ADMIN_KEY",
                    "must be at least 16 characters",
                ));
            }
            Some(k) if k.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(setting_error(
                    "STRATA_ADMIN_KEY",
                    "must not contain whitespace",
                ));
            }
            Some(k) => Some(Secret(k)),
        };
        let records = match self.records_url {
            None => RecordsUrl::Sqlite(data_dir.join("strata.db")),
            Some(u) => parse_records_url(&u)?,
        };
        let durability = match self.durability {
            None => Durability::Process,
            Some(d) => Durability::from_str(&d)
                .map_err(|e| setting_error("STRATA_DURABILITY", e.message()))?,
        };
        let drive_url = self
            .drive_url
            .unwrap_or_else(|| format!("file://{}", data_dir.join("drive").display()));
        check_scheme("STRATA_DRIVE_URL", &drive_url, &["file://", "s3://"])?;
        let cache_url = self.cache_url.unwrap_or_else(|| "memory://".into());
        check_scheme(
            "STRATA_CACHE_URL",
            &cache_url,
            &["memory://", "redis://", "rediss://", "valkey://"],
        )?;
        let vectors_url = self.vectors_url.unwrap_or_else(|| "embedded".into());
        if vectors_url != "embedded" {
            check_scheme(
                "STRATA_VECTORS_URL",
                &vectors_url,
                &["qdrant://", "http://", "https://"],
            )?;
        }
        let embedder = self.embedder.unwrap_or_else(|| "none".into());
        check_embedder(&embedder)?;
        let embedder_api_key = match self.embedder_api_key {
            Some(k) if k.is_empty() => None,
            Some(k) if k.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(setting_error(
                    "STRATA_EMBEDDER_API_KEY",
                    "must not contain whitespace",
                ));
            }
            k => k.map(Secret),
        };
        let embedder_model = self.embedder_model.filter(|m| !m.trim().is_empty());
        let embedder_precision =
            strata_embed::LocalPrecision::parse(self.embedder_precision.as_deref().unwrap_or(""))
                .map_err(|e| setting_error("STRATA_EMBEDDER_PRECISION", e.message()))?;
        let embedder_dimension = match self.embedder_dimension {
            None => None,
            Some(v) => {
                Some(int_setting("STRATA_EMBEDDER_DIMENSION", Some(v), 0, 1, 65_536)? as usize)
            }
        };
        let max_body_bytes = int_setting(
            "STRATA_MAX_BODY_BYTES",
            self.max_body_bytes,
            DEFAULT_MAX_BODY_BYTES as i64,
            1024,
            1 << 40,
        )? as u64;
        let max_upload_bytes = int_setting(
            "STRATA_MAX_UPLOAD_BYTES",
            self.max_upload_bytes,
            DEFAULT_MAX_UPLOAD_BYTES as i64,
            1,
            1 << 42,
        )? as u64;
        let drive_version_retention_days = int_setting(
            "STRATA_DRIVE_VERSION_RETENTION_DAYS",
            self.drive_version_retention_days,
            DEFAULT_DRIVE_VERSION_RETENTION_DAYS,
            0,
            100 * 365,
        )?;
        let rate_limit = int_setting(
            "STRATA_RATE_LIMIT",
            self.rate_limit,
            DEFAULT_RATE_LIMIT.into(),
            1,
            100_000_000,
        )? as u32;
        let auth_failure_limit = int_setting(
            "STRATA_AUTH_FAILURE_LIMIT",
            self.auth_failure_limit,
            DEFAULT_AUTH_FAILURE_LIMIT.into(),
            1,
            100_000_000,
        )? as u32;
        let min_free_bytes = int_setting(
            "STRATA_MIN_FREE_BYTES",
            self.min_free_bytes,
            strata_records::sqlite::DEFAULT_MIN_FREE_BYTES as i64,
            0,
            1 << 50,
        )? as u64;
        let session_ttl_seconds = int_setting(
            "STRATA_SESSION_TTL_SECONDS",
            self.session_ttl_seconds,
            DEFAULT_SESSION_TTL_SECONDS,
            1,
            10 * 365 * 24 * 3600,
        )?;
        let history_cache_bytes = int_setting(
            "STRATA_HISTORY_CACHE_BYTES",
            self.history_cache_bytes,
            DEFAULT_HISTORY_CACHE_BYTES as i64,
            0,
            1 << 40,
        )? as u64;
        let vector_max_collections = int_setting(
            "STRATA_VECTOR_MAX_COLLECTIONS",
            self.vector_max_collections,
            DEFAULT_VECTOR_MAX_COLLECTIONS as i64,
            0,
            1_000_000,
        )? as u64;
        let vector_max_points = int_setting(
            "STRATA_VECTOR_MAX_POINTS",
            self.vector_max_points,
            DEFAULT_VECTOR_MAX_POINTS as i64,
            0,
            1 << 40,
        )? as u64;
        Ok(Config {
            history_cache_bytes,
            vector_max_collections,
            vector_max_points,
            qdrant_listen,
            qdrant_version,
            qdrant_keyless_bot,
            data_dir,
            listen,
            admin_key,
            records,
            durability,
            drive_url: drive_url.into(),
            cache_url: cache_url.into(),
            vectors_url: vectors_url.into(),
            embedder: embedder.into(),
            embedder_api_key,
            embedder_model,
            embedder_dimension,
            embedder_precision,
            max_body_bytes,
            max_upload_bytes,
            drive_version_retention_days,
            rate_limit,
            auth_failure_limit,
            min_free_bytes,
            session_ttl_seconds,
        })
    }
}

/// Keys of `strata.toml` whose values are strings; the others are integers.
const STRING_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "admin_key",
    "records_url",
    "durability",
    "drive_url",
    "cache_url",
    "vectors_url",
    "embedder",
    "embedder_api_key",
    "embedder_model",
    "embedder_precision",
    "qdrant_listen",
    "qdrant_version",
    "qdrant_keyless_bot",
];
const NUMBER_KEYS: &[&str] = &[
    "max_body_bytes",
    "max_upload_bytes",
    "drive_version_retention_days",
    "rate_limit",
    "auth_failure_limit",
    "min_free_bytes",
    "session_ttl_seconds",
    "history_cache_bytes",
    "vector_max_collections",
    "vector_max_points",
    "embedder_dimension",
];

/// `STRATA_EMBEDDER`: `none`, `local:<model folder>` or `openai:<http(s) url>`.
fn check_embedder(embedder: &str) -> Result<()> {
    let expected = "expected none, local:<model folder> or openai:<base url>";
    if embedder == "none" {
        return Ok(());
    }
    if let Some(dir) = embedder.strip_prefix("local:") {
        if dir.trim().is_empty() {
            return Err(setting_error(
                "STRATA_EMBEDDER",
                format!("{embedder:?}: the model folder is missing ({expected})"),
            ));
        }
        return Ok(());
    }
    if let Some(url) = embedder.strip_prefix("openai:") {
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if host.is_none_or(|h| h.trim_matches('/').is_empty()) {
            return Err(setting_error(
                "STRATA_EMBEDDER",
                format!(
                    "{embedder:?}: the base url must be http(s)://host[:port][/path] ({expected})"
                ),
            ));
        }
        return Ok(());
    }
    Err(setting_error(
        "STRATA_EMBEDDER",
        format!("{embedder:?}: {expected}"),
    ))
}

/// Parses the file, naming the key of any unknown or mistyped setting.
fn parse_file(path: &Path, text: &str) -> Result<ConfigBuilder> {
    let where_ = format!("in {}", path.display());
    let table: toml::Table =
        toml::from_str(text).map_err(|e| setting_error(&where_, e.message()))?;
    for (k, v) in &table {
        if STRING_KEYS.contains(&k.as_str()) {
            if !v.is_str() {
                return Err(setting_error(
                    &format!("{k} {where_}"),
                    format!("expected a string, got {v}"),
                ));
            }
        } else if NUMBER_KEYS.contains(&k.as_str()) {
            if !(v.is_integer() || v.is_str()) {
                return Err(setting_error(
                    &format!("{k} {where_}"),
                    format!("expected a whole number, got {v}"),
                ));
            }
        } else {
            return Err(setting_error(
                &format!("{k} {where_}"),
                format!(
                    "unknown setting; known settings are {}",
                    [STRING_KEYS, NUMBER_KEYS].concat().join(", ")
                ),
            ));
        }
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| setting_error(&where_, e.message()))
}

fn parse_records_url(u: &str) -> Result<RecordsUrl> {
    if let Some(rest) = u.strip_prefix("sqlite://") {
        let path = rest.split('?').next().unwrap_or("");
        if path.is_empty() {
            return Err(setting_error(
                "STRATA_RECORDS_URL",
                "sqlite:// needs a file path, e.g. sqlite://./data/strata.db",
            ));
        }
        Ok(RecordsUrl::Sqlite(PathBuf::from(path)))
    } else if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        Ok(RecordsUrl::Postgres(u.to_owned()))
    } else {
        Err(setting_error(
            "STRATA_RECORDS_URL",
            format!(
                "{:?}: expected sqlite://<path> or postgres://…",
                redact_url(u)
            ),
        ))
    }
}

fn check_scheme(name: &str, url: &str, schemes: &[&str]) -> Result<()> {
    if schemes.iter().any(|s| url.starts_with(s)) {
        Ok(())
    } else {
        Err(setting_error(
            name,
            format!(
                "{:?}: expected a URL starting with one of {}",
                redact_url(url),
                schemes.join(", ")
            ),
        ))
    }
}

fn int_setting(
    name: &str,
    v: Option<toml::Value>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64> {
    let n = match v {
        None => return Ok(default),
        Some(toml::Value::Integer(i)) => i,
        Some(toml::Value::String(s)) => parse_size(&s)
            .ok_or_else(|| setting_error(name, format!("{s:?} is not a whole number")))?,
        Some(other) => {
            return Err(setting_error(
                name,
                format!("{other} is not a whole number"),
            ))
        }
    };
    if n < min || n > max {
        return Err(setting_error(name, format!("{n} is outside {min}..={max}")));
    }
    Ok(n)
}

/// Parses `1048576`, `512KiB`, `10MiB`, `1GiB`.
fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1 << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    num.trim().parse::<i64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn build(pairs: &[(&str, &str)]) -> Result<Config> {
        ConfigBuilder::from_sources(None, &env(pairs))?.build()
    }

    #[test]
    fn defaults() {
        let c = build(&[]).expect("defaults are valid");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.records,
            RecordsUrl::Sqlite(PathBuf::from("./data/strata.db"))
        );
        assert_eq!(c.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(c.durability, Durability::Process);
        assert_eq!(c.vector_max_collections, 100);
        assert_eq!(c.vector_max_points, 10_000_000);
    }

    #[test]
    fn the_qdrant_listener_is_off_unless_set_and_its_version_checked() {
        let c = build(&[]).expect("defaults are valid");
        assert_eq!(c.qdrant_listen, None);
        assert_eq!(c.qdrant_version, DEFAULT_QDRANT_VERSION);
        let c = build(&[
            ("STRATA_QDRANT_LISTEN", "127.0.0.1:6333"),
            ("STRATA_QDRANT_VERSION", "1.16.2"),
        ])
        .expect("valid");
        assert_eq!(c.qdrant_listen.map(|a| a.port()), Some(6333));
        assert_eq!(c.qdrant_version, "1.16.2");
        let err = build(&[("STRATA_QDRANT_LISTEN", "6333")]).expect_err("no host");
        assert!(err.message().contains("STRATA_QDRANT_LISTEN"), "{err}");
        let err = build(&[("STRATA_QDRANT_VERSION", "v1.2.3")]).expect_err("not MAJOR.MINOR");
        assert!(err.message().contains("STRATA_QDRANT_VERSION"), "{err}");
        assert_eq!(c.qdrant_keyless_bot, None);
        let c = build(&[("STRATA_QDRANT_KEYLESS_BOT", "bench")]).expect("valid");
        assert_eq!(c.qdrant_keyless_bot.as_deref(), Some("bench"));
        let err = build(&[("STRATA_QDRANT_KEYLESS_BOT", "Not A Bot")]).expect_err("bad id");
        assert!(err.message().contains("STRATA_QDRANT_KEYLESS_BOT"), "{err}");
    }

    #[test]
    fn vector_quotas_come_from_env_and_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("strata.toml");
        std::fs::write(
            &file,
            "vector_max_collections = 7\nvector_max_points = 500\n",
        )
        .expect("write");
        let c =
            ConfigBuilder::from_sources(Some(&file), &env(&[("STRATA_VECTOR_MAX_POINTS", "900")]))
                .and_then(|b| b.build())
                .expect("valid");
        assert_eq!(c.vector_max_collections, 7);
        assert_eq!(c.vector_max_points, 900);
        let err = build(&[("STRATA_VECTOR_MAX_COLLECTIONS", "-1")]).expect_err("negative");
        assert!(err.message().contains("STRATA_VECTOR_MAX_COLLECTIONS"));
    }

    #[test]
    fn env_overrides_file_and_errors_name_the_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("strata.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nmax_body_bytes = 2048\ndurability = \"fsync\"\n",
        )
        .expect("write");
        let c =
            ConfigBuilder::from_sources(Some(&file), &env(&[("STRATA_LISTEN", "127.0.0.1:9001")]))
                .and_then(|b| b.build())
                .expect("valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.durability, Durability::Fsync);

        for (k, v) in [
            ("STRATA_LISTEN", "nowhere"),
            ("STRATA_RECORDS_URL", "mysql://x"),
            ("STRATA_MAX_BODY_BYTES", "-5"),
            ("STRATA_ADMIN_KEY", "short"),
            ("STRATA_DURABILITY", "sometimes"),
            ("STRATA_CACHE_URL", "memcached://x"),
        ] {
            let err = build(&[(k, v)]).expect_err(k);
            assert!(err.message().contains(k), "{k}: {}", err.message());
        }
        std::fs::write(&file, "lisen = \"x\"\n").expect("write");
        let err = ConfigBuilder::from_sources(Some(&file), &env(&[])).expect_err("unknown key");
        assert!(err.message().contains("lisen"), "{}", err.message());
    }

    #[test]
    fn sizes_and_redaction() {
        assert_eq!(
            build(&[("STRATA_MAX_BODY_BYTES", "1MiB")])
                .map(|c| c.max_body_bytes)
                .ok(),
            Some(1 << 20)
        );
        let c = build(&[
            ("STRATA_RECORDS_URL", "postgres://u:pw@h/db"),
            ("STRATA_ADMIN_KEY", "0123456789abcdefXYZ"),
            ("STRATA_CACHE_URL", "redis://:hunter2@127.0.0.1:6379/15"),
            ("STRATA_DRIVE_URL", "s3://AKIA:wJal@bucket/prefix"),
            ("STRATA_VECTORS_URL", "http://qd:qdrant-pw@127.0.0.1:6333"),
            ("STRATA_EMBEDDER", "openai:http://u:emb-pw@127.0.0.1:9/v1"),
        ])
        .expect("valid");
        let dbg = format!("{c:?}");
        for secret in [
            "pw@",
            "0123456789abcdef",
            "hunter2",
            "wJal",
            "qdrant-pw",
            "emb-pw",
        ] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
        assert!(dbg.contains("127.0.0.1:6379/15"), "{dbg}");
        assert_eq!(c.cache_url.expose(), "redis://:hunter2@127.0.0.1:6379/15");
    }

    #[test]
    fn embedder_settings() {
        for ok in [
            "none",
            "local:/models/minilm",
            "openai:https://api.openai.com",
            "openai:http://127.0.0.1:11434/v1",
        ] {
            assert_eq!(
                build(&[("STRATA_EMBEDDER", ok)])
                    .map(|c| c.embedder.expose().to_owned())
                    .ok()
                    .as_deref(),
                Some(ok)
            );
        }
        for bad in [
            "local:",
            "openai:",
            "openai:ftp://x",
            "openai:http://",
            "bert:/m",
            "None",
        ] {
            let err = build(&[("STRATA_EMBEDDER", bad)]).expect_err(bad);
            assert!(
                err.message().contains("STRATA_EMBEDDER"),
                "{bad}: {}",
                err.message()
            );
        }
        let c = build(&[
            ("STRATA_EMBEDDER", "openai:https://api.openai.com"),
            ("STRATA_EMBEDDER_API_KEY", "sk-secret-embedder-key"),
            ("STRATA_EMBEDDER_MODEL", "text-embedding-3-large"),
            ("STRATA_EMBEDDER_DIMENSION", "3072"),
        ])
        .expect("valid");
        assert_eq!(
            c.embedder_api_key.as_ref().map(Secret::expose),
            Some("sk-secret-embedder-key")
        );
        assert_eq!(c.embedder_model.as_deref(), Some("text-embedding-3-large"));
        assert_eq!(c.embedder_dimension, Some(3072));
        assert!(
            !format!("{c:?}").contains("sk-secret"),
            "the key is redacted"
        );
        let err = build(&[("STRATA_EMBEDDER_DIMENSION", "0")]).expect_err("zero");
        assert!(err.message().contains("STRATA_EMBEDDER_DIMENSION"));
        assert_eq!(
            build(&[]).expect("defaults").embedder_precision,
            strata_embed::LocalPrecision::Auto
        );
        let c = build(&[("STRATA_EMBEDDER_PRECISION", "F32")]).expect("f32");
        assert_eq!(c.embedder_precision, strata_embed::LocalPrecision::F32);
        let err = build(&[("STRATA_EMBEDDER_PRECISION", "int4")]).expect_err("int4");
        assert!(err.message().contains("STRATA_EMBEDDER_PRECISION"));
    }
}
