//! Strata: storage for conversational AI, as a library.
//!
//! [`Strata::open`] opens a configured system — the records layer, the kv
//! layer and (as they land) the drive, cache and vector layers — and is the
//! one facade the HTTP server and the CLI call. Business rules live here:
//! authentication, tenant scoping, validation, auditing. The layers below
//! only store; the server above only translates HTTP.
//!
//! ```no_run
//! # async fn demo() -> strata::Result<()> {
//! use strata::{Config, Strata, Principal, NewMessage, MessageRole};
//! let strata = Strata::open(Config::embedded("./data")).await?;
//! let bot = strata.create_bot(&Principal::Admin, "support", "Support bot").await?;
//! let scope = strata.scope(&Principal::Admin, "support", strata::Role::Writer).await?;
//! let user = scope.create_user(strata::NewUser::default()).await?;
//! let conv = scope
//!     .create_conversation(strata::NewConversation { user_id: user.id, ..Default::default() })
//!     .await?;
//! scope
//!     .append_messages(&conv.id, vec![NewMessage {
//!         role: MessageRole::User,
//!         content: "hello".into(),
//!         metadata: None,
//!         idempotency_key: None,
//!     }])
//!     .await?;
//! # let _ = bot; Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod files;
pub mod kb;
pub mod limits;
pub mod lock;
pub mod memory;
mod scope;
pub mod sessions;
pub mod vectors;
mod versions;
pub mod workers;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use auth::Principal;
pub use config::{Config, ConfigBuilder, RecordsUrl, Secret};
pub use scope::{
    ttl_from_seconds as scope_ttl, BotScope, KvBatchResult, MessagePage, MessageQuery,
};
pub use strata_core::cache::CacheStore;
pub use strata_core::drive::DriveStore;
pub use strata_core::embed::Embedder;
pub use strata_core::kv::{KvOp, KvOpOutcome, KvStats, KvStore};
pub use strata_core::page::{Cursor, Page, PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
pub use strata_core::rate::{Rate, Throttle};
pub use strata_core::records::RecordStore;
pub use strata_core::types::*;
pub use strata_core::vectors::VectorStore;
pub use strata_core::worker;
pub use strata_core::{Error, ErrorKind, Result, Timestamp};
pub use versions::HistoryVersion;

use strata_kv::SqliteKv;
use strata_records::{SqliteDatabase, SqliteOptions, SqliteRecords};
use strata_vectors::EmbeddedVectors;

const ADMIN_KEY_META: &str = "admin_key_sha256";

/// The readiness backend name of an embedder (`local:all-MiniLM-L6-v2` → `local`).
fn embedder_backend(name: &str) -> &'static str {
    match name.split(':').next() {
        Some("local") => "local",
        Some("openai") => "openai",
        _ => "none",
    }
}

/// Readiness of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerHealth {
    pub layer: &'static str,
    /// Whether the system is unready without this layer (the cache is not:
    /// losing it costs speed, never data).
    pub required: bool,
    pub backend: &'static str,
    pub ok: bool,
    pub latency_ms: f64,
    pub error: Option<String>,
}

/// An open Strata system. Cheap to clone; clones share everything.
#[derive(Clone, Debug)]
pub struct Strata {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    records: Arc<dyn RecordStore>,
    kv: Arc<dyn KvStore>,
    admin_key_hash: Option<String>,
    sqlite: Option<SqliteDatabase>,
    versions: versions::HistoryVersions,
    cache: Arc<dyn CacheStore>,
    vectors: Arc<dyn VectorStore>,
    drive: Arc<dyn DriveStore>,
    embedder: Arc<dyn Embedder>,
    /// The knowledge base (indexing worker, search); needs sqlite:// records
    /// and the drive: built by [`kb::open_knowledge_base`].
    kb: Option<Arc<strata_kb::KnowledgeBase>>,
    /// Conversation memory (needs sqlite:// records): [`memory::open_memory`].
    memory: Option<Arc<strata_kb::ConversationMemory>>,
    limits: limits::BotLimits,
    /// Bot keys verified against the records store (`auth::VerifiedKeys`).
    verified_keys: auth::VerifiedKeys,
    janitor_state: Arc<strata_core::worker::WorkerState>,
    purge_state: Arc<strata_core::worker::WorkerState>,
    purge_wake: Arc<tokio::sync::Notify>,
}

/// What [`Strata::bootstrap_admin_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminKeyStatus {
    /// `STRATA_ADMIN_KEY` is set; nothing stored.
    FromConfig,
    /// A key was generated now; this is the only time it is shown.
    Generated(String),
    /// A key was generated earlier; only its hash is kept.
    Existing,
}

impl Strata {
    /// Opens the layers named by `config`, applying migrations. Does not take
    /// the data-folder lock: the server and CLI take it with [`lock::DataDirLock`].
    pub async fn open(config: Config) -> Result<Self> {
        let (records, kv, sqlite): (
            Arc<dyn RecordStore>,
            Arc<dyn KvStore>,
            Option<SqliteDatabase>,
        ) = match &config.records {
            RecordsUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        Error::unavailable(format!("cannot create {}", parent.display()))
                            .with_source(e)
                    })?;
                }
                let opts = SqliteOptions {
                    durability: config.durability,
                    min_free_bytes: config.min_free_bytes,
                    ..SqliteOptions::default()
                };
                let db = SqliteDatabase::open(path, &opts).await?;
                (
                    Arc::new(SqliteRecords::new(db.clone())),
                    Arc::new(SqliteKv::new(db.clone())),
                    Some(db),
                )
            }
            RecordsUrl::Postgres(_) => {
                return Err(Error::invalid(
                    "invalid setting STRATA_RECORDS_URL: the PostgreSQL backend is planned and not built yet; use sqlite://",
                )
                .with_code("invalid_config"));
            }
        };
        let cache = strata_cache::open_cache(config.cache_url.expose())
            .await
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("invalid setting STRATA_CACHE_URL: {}", e.message()),
                )
                .with_code("invalid_config")
            })?;
        let cache: Arc<dyn CacheStore> = Arc::new(strata_cache::ResilientCache::new(cache));
        let vectors: Arc<dyn VectorStore> = match (config.vectors_url.expose(), &sqlite) {
            ("embedded", Some(db)) => {
                let dir = config.data_dir.join("vectors");
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::unavailable(format!("cannot create {}", dir.display())).with_source(e)
                })?;
                Arc::new(EmbeddedVectors::open(db.clone(), dir).await?)
            }
            ("embedded", None) => {
                return Err(Error::invalid(
                    "invalid setting STRATA_VECTORS_URL: the embedded vector engine needs sqlite:// records",
                )
                .with_code("invalid_config"));
            }
            (other, _) => {
                return Err(Error::invalid(format!(
                    "invalid setting STRATA_VECTORS_URL: {:?}: only the embedded engine is built yet; use embedded",
                    config::redact_url(other)
                ))
                .with_code("invalid_config"));
            }
        };
        // A local model that does not load stops start-up here, naming the
        // folder and the file.
        let embedder = strata_embed::open_embedder_with(
            config.embedder.expose(),
            strata_embed::EmbedderOptions {
                api_key: config
                    .embedder_api_key
                    .as_ref()
                    .map(|k| k.expose().to_owned()),
                model: config.embedder_model.clone(),
                dimension: config.embedder_dimension,
                timeout: None,
                precision: config.embedder_precision,
            },
        )
        .await?;
        let drive: Arc<dyn DriveStore> = match &sqlite {
            // A bad URL is `invalid_config` naming STRATA_DRIVE_URL; a
            // folder that cannot be created is `unavailable`.
            Some(db) => Arc::new(
                strata_drive::open_drive(config.drive_url.expose(), db.clone())
                    .await?
                    .with_min_free_bytes(config.min_free_bytes),
            ),
            None => {
                return Err(Error::invalid(
                    "invalid setting STRATA_DRIVE_URL: the drive keeps its metadata in the records database and needs sqlite:// records",
                )
                .with_code("invalid_config"));
            }
        };
        let admin_key_hash = match &config.admin_key {
            Some(k) => Some(auth::hash_secret(k.expose())),
            None => records.get_meta(ADMIN_KEY_META).await?,
        };
        let quota = strata_core::vectors::VectorQuota {
            max_collections: config.vector_max_collections,
            max_points: config.vector_max_points,
        };
        let kb = kb::open_knowledge_base(
            sqlite.as_ref(),
            drive.clone(),
            vectors.clone(),
            embedder.clone(),
            records.clone(),
            quota,
        );
        if let Some(kb) = &kb {
            kb.store().prepare().await?;
        }
        let memory = memory::open_memory(
            sqlite.as_ref(),
            vectors.clone(),
            embedder.clone(),
            records.clone(),
            quota,
        );
        Ok(Strata {
            inner: Arc::new(Inner {
                config,
                records,
                kv,
                admin_key_hash,
                sqlite,
                versions: Default::default(),
                cache,
                vectors,
                drive,
                embedder,
                kb,
                memory,
                limits: Default::default(),
                verified_keys: Default::default(),
                janitor_state: Arc::new(strata_core::worker::WorkerState::new("janitor")),
                purge_state: Arc::new(strata_core::worker::WorkerState::new("bot_purger")),
                purge_wake: Arc::new(tokio::sync::Notify::new()),
            }),
        })
    }

    /// Makes sure a global admin key exists: from the configuration, stored
    /// earlier, or generated now (returned once, only its hash is kept).
    /// Returns a handle that knows the key.
    pub async fn bootstrap_admin_key(self) -> Result<(Self, AdminKeyStatus)> {
        if self.inner.config.admin_key.is_some() {
            return Ok((self, AdminKeyStatus::FromConfig));
        }
        if self.inner.admin_key_hash.is_some() {
            return Ok((self, AdminKeyStatus::Existing));
        }
        let key = auth::new_admin_key();
        let hash = auth::hash_secret(&key);
        let stored = self
            .inner
            .records
            .set_meta_if_absent(ADMIN_KEY_META, &hash)
            .await?;
        let status = if stored == hash {
            AdminKeyStatus::Generated(key)
        } else {
            AdminKeyStatus::Existing
        };
        let inner = Inner {
            config: self.inner.config.clone(),
            records: self.inner.records.clone(),
            kv: self.inner.kv.clone(),
            admin_key_hash: Some(stored),
            sqlite: self.inner.sqlite.clone(),
            versions: Default::default(),
            cache: self.inner.cache.clone(),
            vectors: self.inner.vectors.clone(),
            drive: self.inner.drive.clone(),
            embedder: self.inner.embedder.clone(),
            kb: self.inner.kb.clone(),
            memory: self.inner.memory.clone(),
            limits: Default::default(),
            verified_keys: Default::default(),
            janitor_state: self.inner.janitor_state.clone(),
            purge_state: self.inner.purge_state.clone(),
            purge_wake: self.inner.purge_wake.clone(),
        };
        Ok((
            Strata {
                inner: Arc::new(inner),
            },
            status,
        ))
    }

    /// The configuration this system was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The records layer (for tools and tests; the API goes through scopes).
    pub fn records(&self) -> &Arc<dyn RecordStore> {
        &self.inner.records
    }

    /// The kv layer.
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.inner.kv
    }

    /// The cache layer (already wrapped so that an outage degrades, never fails).
    pub fn cache(&self) -> &Arc<dyn CacheStore> {
        &self.inner.cache
    }

    /// The vectors layer.
    pub fn vectors(&self) -> &Arc<dyn VectorStore> {
        &self.inner.vectors
    }

    /// The drive layer (file bodies and their versions).
    pub fn drive(&self) -> &Arc<dyn DriveStore> {
        &self.inner.drive
    }

    /// The server's vector quota per bot (`STRATA_VECTOR_MAX_COLLECTIONS`,
    /// `STRATA_VECTOR_MAX_POINTS`), before a bot's own settings.
    pub fn default_vector_quota(&self) -> strata_core::vectors::VectorQuota {
        strata_core::vectors::VectorQuota {
            max_collections: self.inner.config.vector_max_collections,
            max_points: self.inner.config.vector_max_points,
        }
    }

    /// The embedder (`STRATA_EMBEDDER`); `none` answers `no_embedder`.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner.embedder
    }

    /// Saves the vector indexes' snapshots, then closes database pools
    /// (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        if let Err(e) = self.inner.vectors.checkpoint().await {
            tracing::warn!(error = %e, "saving the vector index snapshots failed");
        }
        if let Some(db) = &self.inner.sqlite {
            db.close().await;
        }
    }

    /// Resolves a bearer token to a principal. No token, an unknown token or
    /// a revoked key is `Unauthorized`.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                auth::unauthorized("missing API key: send Authorization: Bearer <key>")
            })?;
        if let Some((key_id, secret)) = auth::parse_bot_key(token) {
            let digest = auth::digest_secret(secret);
            if let Some(who) = self.inner.verified_keys.get(key_id, &digest) {
                return Ok(who);
            }
            // Taken before the read: a revocation committed after it makes
            // the entry stale at once (see `VerifiedKeys`).
            let epoch = self.inner.verified_keys.epoch();
            let stored = self.inner.records.find_key(key_id).await?;
            if let Some(stored) = stored {
                if auth::hashes_match(&hex::encode(digest), &stored.secret_hash) {
                    if stored.key.revoked_at.is_some() {
                        return Err(auth::unauthorized("this API key has been revoked"));
                    }
                    let who = Principal::Bot {
                        bot: stored.key.bot_id,
                        role: stored.key.role,
                        key_id: stored.key.id,
                    };
                    self.inner
                        .verified_keys
                        .insert(key_id, digest, who.clone(), epoch);
                    return Ok(who);
                }
            }
            return Err(auth::unauthorized("unknown API key"));
        }
        match &self.inner.admin_key_hash {
            Some(h) if auth::hashes_match(&auth::hash_secret(token), h) => Ok(Principal::Admin),
            _ => Err(auth::unauthorized("unknown API key")),
        }
    }

    /// Forgets every verified bot key (after a revocation committed).
    pub(crate) fn forget_verified_keys(&self) {
        self.inner.verified_keys.invalidate();
    }

    /// Opens `bot` for `who`, requiring role `need`: an invalid id is
    /// `invalid_bot_id`, another bot's key or a missing bot `NotFound`, a
    /// weaker role `Forbidden`.
    pub async fn scope(&self, who: &Principal, bot: &str, need: Role) -> Result<BotScope> {
        let bot = BotId::parse(bot)?;
        who.authorize(&bot, need)?;
        if matches!(who, Principal::Admin) {
            // A bot key proves its bot exists (keys die with their bot);
            // the admin key does not.
            self.inner.records.get_bot(&bot).await?;
        }
        Ok(BotScope::new(self.clone(), bot, who.clone()))
    }

    /// Checks that `bot` exists (and is not being deleted). A success is
    /// remembered until the next key revocation or bot deletion (the
    /// verified-key epoch), so a caller that acts as a bot without a key —
    /// the Qdrant listener's keyless bot — costs no store read per request.
    pub async fn ensure_bot(&self, bot: &BotId) -> Result<()> {
        // Key ids never start with a NUL: this entry cannot shadow a key.
        let id = format!("\u{0}bot:{bot}");
        if self.inner.verified_keys.get(&id, &[0; 32]).is_some() {
            return Ok(());
        }
        let epoch = self.inner.verified_keys.epoch();
        self.inner.records.get_bot(bot).await?;
        self.inner
            .verified_keys
            .insert(&id, [0; 32], Principal::Admin, epoch);
        Ok(())
    }

    /// Creates a bot (global admin only).
    pub async fn create_bot(&self, who: &Principal, id: &str, name: &str) -> Result<Bot> {
        who.require_admin()?;
        let id = BotId::parse(id)?;
        let name = scope::check_name("name", name)?;
        let bot = self.inner.records.create_bot(&id, name).await?;
        // A bot id may be reused after deletion: make sure nothing of an
        // earlier bot with this id survives in the kv layer. Only after the
        // create succeeded: a duplicate create must not wipe the live bot's kv.
        self.inner.kv.clear_prefix(id.as_str(), "").await?;
        self.inner.vectors.drop_bot(&id).await?;
        self.inner.drive.drop_bot(&id).await?;
        self.audit(
            who,
            Some(&id),
            "bot.create",
            id.as_str(),
            serde_json::json!({ "name": name }),
        )
        .await;
        Ok(bot)
    }

    /// Lists bots (global admin only).
    pub async fn list_bots(&self, who: &Principal, page: &PageRequest) -> Result<Page<Bot>> {
        who.require_admin()?;
        self.inner.records.list_bots(page).await
    }

    /// Deletes a bot (global admin only). The bot disappears at once and
    /// atomically — its keys stop working, its id cannot be reused until
    /// its data is gone — and its data is removed from every layer by the
    /// bot purger, a durable background job that survives a restart and can
    /// run any number of times ([`Strata::purge_deleted_bots`]).
    pub async fn delete_bot(&self, who: &Principal, id: &str) -> Result<()> {
        let id = BotId::parse(id)?;
        who.authorize(&id, Role::Admin)?;
        who.require_admin()?;
        let deleted = self.inner.records.delete_bot(&id).await;
        // The bot's keys were revoked with it (or may have been, if the
        // call failed after its commit): they must stop working now.
        self.inner.verified_keys.invalidate();
        deleted?;
        self.inner.versions.bump_all();
        // Cached sessions, generations and rate buckets of the bot go now;
        // the purge removes them again after the data.
        let _ = self.inner.cache.delete_prefix(id.as_str(), "").await;
        self.audit(
            who,
            Some(&id),
            "bot.delete",
            id.as_str(),
            serde_json::Value::Null,
        )
        .await;
        self.inner.purge_wake.notify_one();
        Ok(())
    }

    /// Purges every deleted bot's data from every layer: cache, kv,
    /// vectors, drive, knowledge base, memory queue, and last its records
    /// (which ends the purge and frees the id). Each step is idempotent, so
    /// a purge cut short by a crash is simply run again. Returns how many
    /// bots were purged; a bot whose purge failed is left for the next run.
    pub async fn purge_deleted_bots(&self) -> Result<usize> {
        let bots = self.inner.records.bots_to_purge().await?;
        let mut done = 0;
        for (bot, _) in bots {
            match self.purge_bot(&bot).await {
                Ok(()) => {
                    done += 1;
                    tracing::info!(bot = %bot.as_str(), "purged a deleted bot's data");
                }
                Err(e) => {
                    tracing::warn!(bot = %bot.as_str(), error = %e, "purging a deleted bot failed; it is tried again");
                    self.inner
                        .purge_state
                        .failed(format!("bot {}: {e}", bot.as_str()));
                    let _ = self
                        .inner
                        .records
                        .bot_purge_failed(&bot, &e.to_string())
                        .await;
                }
            }
        }
        Ok(done)
    }

    async fn purge_bot(&self, bot: &BotId) -> Result<()> {
        self.inner.cache.delete_prefix(bot.as_str(), "").await?;
        self.inner.kv.clear_prefix(bot.as_str(), "").await?;
        self.inner.vectors.drop_bot(bot).await?;
        self.inner.drive.drop_bot(bot).await?;
        if let Some(kb) = &self.inner.kb {
            kb.store().drop_bot(bot).await?;
        }
        if let Some(memory) = &self.inner.memory {
            memory.drop_bot(bot).await?;
        }
        self.inner.records.purge_bot_rows(bot).await?;
        self.inner.versions.bump_all();
        Ok(())
    }

    /// The bot purger's loop (a supervised worker of `strata serve`).
    pub async fn run_bot_purger(self, stop: CancellationToken) -> Result<()> {
        let state = self.inner.purge_state.clone();
        state.running();
        loop {
            match self.purge_deleted_bots().await {
                Ok(_) => state.progress(),
                Err(e) => {
                    tracing::warn!(error = %e, "looking for deleted bots to purge failed");
                    state.failed(&e);
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = self.inner.purge_wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
        }
    }

    /// Readiness of every layer, with the latency of a round trip.
    pub async fn readiness(&self) -> Vec<LayerHealth> {
        let start = Instant::now();
        let records = self.inner.records.ping().await;
        let records_ms = start.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let kv = self.inner.kv.exists("_strata", "ready").await;
        let kv_ms = start.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let cache = self.inner.cache.ping().await;
        let cache_ms = start.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let vectors = self.inner.vectors.ping().await;
        let vectors_ms = start.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let drive = self.inner.drive.ping().await;
        let drive_ms = start.elapsed().as_secs_f64() * 1000.0;
        vec![
            LayerHealth {
                layer: "records",
                required: true,
                backend: self.inner.records.backend(),
                ok: records.is_ok(),
                latency_ms: records_ms,
                error: records.err().map(|e| e.to_string()),
            },
            LayerHealth {
                layer: "kv",
                required: true,
                backend: self.inner.kv.backend(),
                ok: kv.is_ok(),
                latency_ms: kv_ms,
                error: kv.err().map(|e| e.to_string()),
            },
            LayerHealth {
                layer: "vectors",
                required: true,
                backend: "embedded",
                ok: vectors.is_ok(),
                latency_ms: vectors_ms,
                error: vectors.err().map(|e| e.to_string()),
            },
            // Loaded at start (a local model that fails stops start-up);
            // an openai endpoint is not called here, its failures show on
            // the calls that embed. Without an embedder only dense search
            // is missing, so it is never required.
            LayerHealth {
                layer: "embedder",
                required: false,
                backend: embedder_backend(self.inner.embedder.name()),
                ok: true,
                latency_ms: 0.0,
                error: None,
            },
            LayerHealth {
                layer: "drive",
                required: true,
                backend: self.inner.drive.backend(),
                ok: drive.is_ok(),
                latency_ms: drive_ms,
                error: drive.err().map(|e| e.to_string()),
            },
            // The cache may be lost at any time without losing data, so a
            // cache that does not answer degrades readiness but is reported.
            LayerHealth {
                layer: "cache",
                required: false,
                backend: self.inner.cache.backend(),
                ok: cache.is_ok(),
                latency_ms: cache_ms,
                error: cache.err().map(|e| e.to_string()),
            },
        ]
    }

    /// Runs housekeeping every `every` until `stop` is cancelled: purges
    /// expired kv keys, sessions, old file versions and vector points, and
    /// saves the vector index snapshots. A failed step is logged and
    /// reported in the worker's state; the next round tries again.
    pub async fn run_janitor(self, every: Duration, stop: CancellationToken) -> Result<()> {
        let state = self.inner.janitor_state.clone();
        state.running();
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            let mut failed = false;
            let mut fail = |what: &str, e: Error| {
                tracing::warn!(error = %e, "{what} failed");
                state.failed(format!("{what}: {e}"));
                failed = true;
            };
            if let Err(e) = self.inner.kv.purge_expired().await {
                fail("purging expired kv keys", e);
            }
            if let Err(e) = self
                .inner
                .records
                .purge_expired_sessions(Timestamp::now())
                .await
            {
                fail("purging expired sessions", e);
            }
            let retention = self.inner.config.drive_version_retention_days;
            let before = Timestamp::now().plus_seconds(-retention * 24 * 3600);
            match self.inner.drive.purge_versions(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(versions = n, "purged old file versions"),
                Err(e) => fail("purging old file versions", e),
            }
            if let Err(e) = self.inner.vectors.purge_expired().await {
                fail("purging expired vector points", e);
            }
            if let Err(e) = self.inner.vectors.checkpoint().await {
                fail("saving the vector index snapshots", e);
            }
            if !failed {
                state.progress();
            }
        }
    }

    /// Lists audit events (global admin: all or one bot).
    pub async fn list_audit(
        &self,
        who: &Principal,
        bot: Option<&BotId>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        match bot {
            None => who.require_admin()?,
            Some(b) => who.authorize(b, Role::Admin)?,
        }
        self.inner.records.list_audit(bot, page).await
    }

    pub(crate) async fn audit(
        &self,
        who: &Principal,
        bot: Option<&BotId>,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) {
        let event = AuditEvent {
            id: new_id(),
            bot_id: bot.cloned(),
            actor: who.actor(),
            action: action.to_owned(),
            target: target.to_owned(),
            details: if details.is_null() {
                serde_json::json!({})
            } else {
                details
            },
            created_at: Timestamp::now(),
        };
        // The operation itself succeeded; a failed audit write is logged, not
        // turned into a failure of the call the client already saw applied.
        if let Err(e) = self.inner.records.record_audit(&event).await {
            tracing::error!(error = %e, action, target, "writing the audit event failed");
        }
    }
}
