//! Conversation memory through the facade: switched on per bot by the
//! setting `memory.enabled` (bot config), searched with
//! [`BotScope::memory_search`]. See `strata_kb::memory` for how messages
//! get there.
//!
//! Roles: searching and the status need a reader; forgetting everything and
//! a re-index need a writer. Deleting a conversation or a user removes their
//! messages' points too.

pub use strata_kb::memory::{
    is_enabled_value, ConversationMemory, MemoryHit, MemoryQuery, MemoryStatus, MAX_MEMORY_K,
    MEMORY_COLLECTION, MEMORY_SETTING,
};

use std::sync::Arc;

use strata_core::types::Role;
use strata_core::{Error, Result};

use crate::scope::BotScope;
use crate::Strata;

/// Conversation memory over the given layers (`None` without SQLite
/// records, which hold its queue).
pub fn open_memory(
    sqlite: Option<&strata_records::SqliteDatabase>,
    vectors: Arc<dyn strata_core::vectors::VectorStore>,
    embedder: Arc<dyn strata_core::embed::Embedder>,
    records: Arc<dyn strata_core::records::RecordStore>,
    default_quota: strata_core::vectors::VectorQuota,
) -> Option<Arc<ConversationMemory>> {
    sqlite.map(|db| {
        Arc::new(ConversationMemory::new(
            db.clone(),
            vectors,
            embedder,
            records,
            strata_kb::memory::MemoryOptions {
                default_quota,
                ..Default::default()
            },
        ))
    })
}

impl Strata {
    /// Conversation memory (worker, search).
    pub fn memory(&self) -> Result<&Arc<ConversationMemory>> {
        self.inner
            .memory
            .as_ref()
            .ok_or_else(|| Error::unavailable("conversation memory needs sqlite:// records"))
    }

    /// Wakes the memory worker after messages were stored.
    pub(crate) fn memory_notify(&self) {
        if let Some(m) = &self.inner.memory {
            m.notify();
        }
    }

    /// Removes the memory points whose payload `key` is `value` (a deleted
    /// conversation or user). Failures are logged: search re-checks that
    /// each message still exists, so a left-over point is never returned.
    pub(crate) async fn memory_forget(
        &self,
        bot: &strata_core::types::BotId,
        key: &str,
        value: &str,
    ) {
        if let Some(m) = &self.inner.memory {
            if let Err(e) = m.forget(bot, key, value).await {
                tracing::warn!(bot = %bot.as_str(), key, error = %e, "removing remembered messages failed");
            }
        }
    }
}

impl BotScope {
    /// Searches the bot's remembered messages by meaning.
    pub async fn memory_search(&self, q: MemoryQuery) -> Result<Vec<MemoryHit>> {
        self.need(Role::Reader)?;
        self.strata().memory()?.search(self.bot_id(), &q).await
    }

    /// Whether memory is on, how many messages are remembered and queued.
    pub async fn memory_status(&self) -> Result<MemoryStatus> {
        self.need(Role::Reader)?;
        self.strata().memory()?.status(self.bot_id()).await
    }

    /// Forgets every remembered message (the setting stays as it is).
    pub async fn memory_forget_all(&self) -> Result<()> {
        self.need(Role::Writer)?;
        self.strata().memory()?.forget_all(self.bot_id()).await?;
        self.audit("memory.forget", "memory", serde_json::Value::Null)
            .await;
        Ok(())
    }

    /// Embeds every user and assistant message again; returns how many
    /// were queued.
    pub async fn memory_reindex(&self) -> Result<u64> {
        self.need(Role::Writer)?;
        let memory = self.strata().memory()?;
        if !memory.enabled(self.bot_id()).await? {
            return Err(Error::new(
                strata_core::ErrorKind::Conflict,
                format!(
                    "conversation memory is off for this bot: set {MEMORY_SETTING} to true first"
                ),
            )
            .with_code("memory_disabled"));
        }
        let n = memory.reindex(self.bot_id()).await?;
        self.audit(
            "memory.reindex",
            "memory",
            serde_json::json!({ "messages": n }),
        )
        .await;
        Ok(n)
    }
}
