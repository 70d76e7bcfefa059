//! The knowledge base: documents' indexing status, search, re-index.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata::kb::{parse_filter, Fusion, SearchMode, SearchQuery};
use strata::{Cursor, Error};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiResult;
use crate::extract::{Json, Query, ReadScope, WriteScope};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DocumentsQuery {
    /// Only documents whose key starts with this (relative to the bot's
    /// `.gbkb/` folder, or a full drive key).
    prefix: Option<String>,
    /// `next_cursor` of the previous page (opaque, format `cursor`).
    #[param(format = "cursor")]
    cursor: Option<String>,
    /// 1 to 1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// One document.
#[derive(Serialize, ToSchema)]
pub(crate) struct DocumentStatus {
    /// The file's key in the drive.
    key: String,
    /// The drive version the status refers to.
    version: Option<i64>,
    /// `pending`, `indexing`, `indexed` or `failed`.
    status: String,
    /// Chunks in the index.
    chunks: i64,
    /// Progress: chunks the chunker found in the document being indexed
    /// (equal to `chunks` once `indexed`; null before it is chunked, and
    /// while `pending` or `failed`).
    chunks_found: Option<i64>,
    /// Progress: chunks of `chunks_found` done — embedded and written (or,
    /// without an embedder, in the full-text index). Null when
    /// `chunks_found` is.
    chunks_done: Option<i64>,
    /// Why indexing failed (or is being retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// A stable code for the error (`unsupported_type`, `zip_bomb`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    /// The detected content type, once extracted.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    /// The embedder of its vectors (`none` without).
    #[serde(skip_serializing_if = "Option::is_none")]
    embedder: Option<String>,
    updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DocumentList {
    documents: Vec<DocumentStatus>,
    next_cursor: Option<String>,
}

/// A search.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KbSearchBody {
    /// The question or keywords: not blank, at most 4096 bytes of UTF-8.
    #[schema(
        max_length = 4096,
        pattern = "^[\\s\\S]*[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][\\s\\S]*$"
    )]
    query: String,
    /// `hybrid` (default), `dense` or `keyword`. Dense and hybrid need an
    /// embedder (`no_embedder` otherwise).
    #[schema(value_type = Option<KbSearchMode>)]
    mode: Option<String>,
    /// How many results, 1 to 100 (default 5).
    #[schema(minimum = 1, maximum = 100)]
    k: Option<usize>,
    /// `{"key_prefix"?, "content_type"?, "metadata"?}`; `metadata` is a
    /// filter in the vectors layer's language over the document metadata
    /// (`key`, `name`, `ext`, `dirs`, `content_type`, `size`, `title`).
    #[schema(value_type = Option<KbFilter>)]
    filter: Option<Value>,
    /// Hybrid only: `weighted` (the default: min-max normalised scores,
    /// `dense_weight` · dense + the rest · keyword), `rrf` (reciprocal rank
    /// fusion, k = 10) or `adaptive` (scores divided by each list's best,
    /// each list weighted by how sharply its scores fall from the 1st to the
    /// 10th).
    #[schema(value_type = Option<KbFusion>)]
    fusion: Option<String>,
    /// Weight of the dense score with `fusion: "weighted"` (0..1, default 0.4).
    #[schema(minimum = 0, maximum = 1)]
    dense_weight: Option<f32>,
}

/// How a search ranks chunks.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum KbSearchMode {
    Hybrid,
    Dense,
    Keyword,
}

/// How hybrid search fuses its dense and keyword lists.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum KbFusion {
    Adaptive,
    Rrf,
    Weighted,
}

/// Which documents a knowledge-base search looks at.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct KbFilter {
    /// Only documents whose key starts with this (relative to the bot's
    /// `.gbkb/` folder, or a full drive key).
    #[serde(default)]
    key_prefix: String,
    /// Only documents of this detected content type.
    #[serde(default)]
    content_type: String,
    /// A filter over the document metadata (`key`, `name`, `ext`, `dirs`,
    /// `content_type`, `size`, `title`).
    #[serde(default)]
    metadata: super::vectors::VectorFilter,
}

/// One result.
#[derive(Serialize, ToSchema)]
pub(crate) struct KbSearchResult {
    /// The document's key in the drive.
    document: String,
    /// The document version the chunk was indexed from.
    version: i64,
    /// The chunk's position in the document, from 0.
    chunk: i64,
    text: String,
    /// Higher is better; its scale depends on the mode (negated BM25,
    /// cosine similarity, or the fused score).
    score: f32,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KbSearchResults {
    results: Vec<KbSearchResult>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Reindexed {
    /// Documents queued.
    queued: u64,
}

/// The bot's knowledge-base documents and their indexing status.
#[utoipa::path(get, path = "/v1/bots/{bot}/kb/documents", tag = "kb",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), DocumentsQuery),
    responses((status = 200, body = DocumentList)))]
pub(crate) async fn list_documents(
    ReadScope(scope): ReadScope,
    Query(q): Query<DocumentsQuery>,
) -> ApiResult<Json<DocumentList>> {
    let after = match q.cursor.as_deref() {
        Some(c) => Some(Cursor::decode(c)?.key().to_owned()),
        None => None,
    };
    let page = scope
        .kb_documents(q.prefix.as_deref(), after.as_deref(), q.limit)
        .await?;
    Ok(Json(DocumentList {
        documents: page
            .documents
            .into_iter()
            .map(|d| DocumentStatus {
                key: d.key,
                version: d.version,
                status: d.status,
                chunks: d.chunks,
                chunks_found: d.chunks_found,
                chunks_done: d.chunks_done,
                error: d.error,
                error_code: d.error_code,
                content_type: d.content_type,
                embedder: d.embedder,
                updated_at: d.updated_at.to_rfc3339(),
            })
            .collect(),
        next_cursor: page.next.map(|k| Cursor::after(&k).encode()),
    }))
}

/// Keyword (BM25), dense or hybrid search over the bot's documents.
#[utoipa::path(post, path = "/v1/bots/{bot}/kb/search", tag = "kb", request_body = KbSearchBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = KbSearchResults)))]
pub(crate) async fn search(
    ReadScope(scope): ReadScope,
    Json(b): Json<KbSearchBody>,
) -> ApiResult<Json<KbSearchResults>> {
    let mode = SearchMode::parse(b.mode.as_deref().unwrap_or("hybrid"))?;
    // Checked whenever it is sent, as the document says, not only with
    // `fusion: "weighted"`.
    let dense_weight = b.dense_weight.unwrap_or(Fusion::DEFAULT_DENSE_WEIGHT);
    if !(0.0..=1.0).contains(&dense_weight) {
        return Err(Error::invalid("dense_weight must be between 0 and 1")
            .with_code("invalid_fusion")
            .into());
    }
    let fusion = match b.fusion.as_deref() {
        None => None,
        Some("adaptive") => Some(Fusion::Adaptive),
        Some("rrf") => Some(Fusion::Rrf {
            k: Fusion::DEFAULT_RRF_K,
        }),
        Some("weighted") => Some(Fusion::Weighted { dense_weight }),
        Some(other) => {
            return Err(Error::invalid(format!(
                "fusion {other:?} is unknown: expected adaptive, rrf or weighted"
            ))
            .with_code("invalid_fusion")
            .into())
        }
    };
    let hits = scope
        .kb_search(SearchQuery {
            query: b.query,
            mode,
            k: b.k.unwrap_or(5),
            filter: parse_filter(b.filter.as_ref())?,
            fusion,
        })
        .await?;
    Ok(Json(KbSearchResults {
        results: hits
            .into_iter()
            .map(|h| KbSearchResult {
                document: h.document,
                version: h.version,
                chunk: h.chunk,
                text: h.text,
                score: h.score,
            })
            .collect(),
    }))
}

/// Re-indexes every document (for example after changing the embedder or
/// the chunking settings); indexing runs in the background.
#[utoipa::path(post, path = "/v1/bots/{bot}/kb/reindex", tag = "kb",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 202, body = Reindexed)))]
pub(crate) async fn reindex(
    WriteScope(scope): WriteScope,
) -> ApiResult<(axum::http::StatusCode, Json<Reindexed>)> {
    let queued = scope.kb_reindex().await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(Reindexed { queued })))
}
