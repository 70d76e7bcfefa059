//! The knowledge base through the facade: a bot's documents (files under
//! `<bot>.gbai/<bot>.gbkb/` in the drive) and search over them.
//!
//! Roles: listing documents and searching need a reader; a re-index needs
//! a writer (it changes no data, but costs embedding time). Writes and
//! deletes of documents go through the drive; the drive's write path calls
//! [`Strata::kb_file_changed`], which queues the indexing job.

use serde_json::Value;

pub use strata_kb::{
    kb_prefix, DocumentRow, Fusion, KbFilter, KeywordParams, KnowledgeBase, SearchHit, SearchMode,
    SearchQuery,
};

use strata_core::filter::Filter;
use strata_core::page::validate_limit;
use strata_core::types::{BotId, Role};
use strata_core::{Error, Result};

use crate::scope::BotScope;
use crate::Strata;

/// Most documents in one page of the listing.
pub const MAX_DOCUMENTS_PAGE: usize = 1000;

/// A page of documents.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentPage {
    pub documents: Vec<DocumentRow>,
    /// The last key of this page when more may follow.
    pub next: Option<String>,
}

/// What a search filter may hold (JSON: `{"key_prefix"?, "content_type"?,
/// "metadata"?}`; `metadata` is a filter in the vectors layer's language
/// over the document metadata `key`, `name`, `ext`, `dirs`, `content_type`,
/// `size`, `title`).
pub fn parse_filter(v: Option<&Value>) -> Result<KbFilter> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(KbFilter::default());
    };
    let bad = |m: String| Error::invalid(m).with_code("invalid_filter");
    let obj = v.as_object().ok_or_else(|| {
        bad("filter must be an object with key_prefix, content_type or metadata".into())
    })?;
    let mut f = KbFilter::default();
    for (k, val) in obj {
        match k.as_str() {
            "key_prefix" => {
                f.key_prefix = Some(
                    val.as_str()
                        .ok_or_else(|| bad("filter.key_prefix must be a string".into()))?
                        .to_owned(),
                )
            }
            "content_type" => {
                f.content_type = Some(
                    val.as_str()
                        .ok_or_else(|| bad("filter.content_type must be a string".into()))?
                        .to_owned(),
                )
            }
            "metadata" => f.metadata = Some(Filter::parse(val)?),
            other => {
                return Err(bad(format!(
                    "unknown filter field {other:?}: expected key_prefix, content_type or metadata"
                )))
            }
        }
    }
    Ok(f)
}

/// The knowledge base over the given layers (`None` without SQLite
/// records, which hold its queue, chunks and full-text index).
pub fn open_knowledge_base(
    sqlite: Option<&strata_records::SqliteDatabase>,
    drive: std::sync::Arc<dyn strata_core::drive::DriveStore>,
    vectors: std::sync::Arc<dyn strata_core::vectors::VectorStore>,
    embedder: std::sync::Arc<dyn strata_core::embed::Embedder>,
    records: std::sync::Arc<dyn strata_core::records::RecordStore>,
    default_quota: strata_core::vectors::VectorQuota,
) -> Option<std::sync::Arc<KnowledgeBase>> {
    sqlite.map(|db| {
        std::sync::Arc::new(KnowledgeBase::new(
            strata_kb::KbStore::new(db.clone()),
            drive,
            vectors,
            embedder,
            records,
            strata_kb::KbOptions {
                default_quota,
                ..Default::default()
            },
        ))
    })
}

impl Strata {
    /// The knowledge base (worker, search).
    pub fn knowledge_base(&self) -> Result<&std::sync::Arc<KnowledgeBase>> {
        self.inner
            .kb
            .as_ref()
            .ok_or_else(|| Error::unavailable("the knowledge base needs sqlite:// records"))
    }

    /// Queues the (re)indexing or removal of `key` when it is a document of
    /// the bot's knowledge base; other keys are ignored. Called by the drive
    /// after a successful write (`version` = the new version) or delete
    /// (`None`).
    pub async fn kb_file_changed(
        &self,
        bot: &BotId,
        key: &str,
        version: Option<i64>,
    ) -> Result<()> {
        match &self.inner.kb {
            Some(kb) => kb.file_changed(bot, key, version).await,
            None => Ok(()),
        }
    }
}

impl BotScope {
    /// The bot's documents and their indexing status, in key order.
    pub async fn kb_documents(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<DocumentPage> {
        self.need(Role::Reader)?;
        let limit = match limit {
            None => MAX_DOCUMENTS_PAGE,
            Some(l) => (validate_limit(Some(l))? as usize).min(MAX_DOCUMENTS_PAGE),
        };
        let kb = self.strata().knowledge_base()?;
        let mut prefix_full = kb_prefix(self.bot_id());
        if let Some(p) = prefix {
            if p.starts_with(&prefix_full) {
                prefix_full = p.to_owned();
            } else {
                prefix_full.push_str(p);
            }
        }
        let mut documents = kb
            .documents(self.bot_id(), &prefix_full, after, limit + 1)
            .await?;
        let next = if documents.len() > limit {
            documents.truncate(limit);
            documents.last().map(|d| d.key.clone())
        } else {
            None
        };
        Ok(DocumentPage { documents, next })
    }

    /// Searches the bot's knowledge base.
    pub async fn kb_search(&self, q: SearchQuery) -> Result<Vec<SearchHit>> {
        self.need(Role::Reader)?;
        self.strata()
            .knowledge_base()?
            .search(self.bot_id(), q)
            .await
    }

    /// Queues every document for a forced re-index; returns how many.
    pub async fn kb_reindex(&self) -> Result<u64> {
        self.need(Role::Writer)?;
        let n = self
            .strata()
            .knowledge_base()?
            .reindex(self.bot_id())
            .await?;
        self.strata()
            .audit(
                self.principal(),
                Some(self.bot_id()),
                "kb.reindex",
                self.bot_id().as_str(),
                serde_json::json!({ "documents": n }),
            )
            .await;
        Ok(n)
    }
}
