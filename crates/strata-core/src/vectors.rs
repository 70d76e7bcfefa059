//! The vectors layer: per-bot collections of (id, vector, payload) with
//! approximate nearest-neighbour search under payload filters.
//!
//! # Behaviour every backend honours
//! - A collection's name is 1..=64 characters of `a-z 0-9 _ -` starting with a
//!   letter or digit (`invalid_collection_name`); its dimension (1..=[`MAX_DIMENSION`])
//!   and metric are fixed at creation.
//! - A vector of another dimension (`dimension_mismatch`), with NaN or infinite
//!   components (`invalid_vector`), or all zeros under cosine (`zero_vector`)
//!   is rejected, and a batch with one bad point changes nothing.
//! - Upsert is durable when it returns, and visible to every read after it.
//! - A point whose TTL has passed is invisible to every read at once and is
//!   purged later.
//! - Scores: cosine and dot are similarities (higher is better); euclidean is
//!   the distance (lower is better). Results are always best first, and
//!   `score_threshold` keeps only results at least that good.
//! - The reserved filter key `_ingested_at` is the time the point was last
//!   written (bi-temporal queries: event time in the payload, ingestion time
//!   here).
//! - Bots never see each other's collections.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use utoipa::ToSchema;

use crate::filter::Filter;
use crate::types::BotId;
use crate::{Error, Result, Timestamp};

/// Largest vector dimension accepted.
pub const MAX_DIMENSION: usize = 4096;
/// Most points in one upsert batch.
pub const MAX_BATCH: usize = 10_000;
/// Largest `k` of a search.
pub const MAX_K: usize = 1_000;
/// Longest string id, in characters.
pub const MAX_ID_LEN: usize = 256;
/// The filter key that holds a point's ingestion time.
pub const INGESTED_AT_KEY: &str = "_ingested_at";

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity (vectors are normalised on write).
    #[default]
    Cosine,
    /// Inner product.
    Dot,
    /// Euclidean (L2) distance.
    Euclidean,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::Euclidean => "euclidean",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "dot" => Ok(Metric::Dot),
            "euclidean" => Ok(Metric::Euclidean),
            other => Err(Error::invalid(format!(
                "metric {other:?} is unknown: expected cosine, dot or euclidean"
            ))
            .with_code("invalid_metric")),
        }
    }

    /// Whether a higher score is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Euclidean)
    }
}

/// Optional scalar quantization of the in-memory index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// Full f32 vectors.
    #[default]
    None,
    /// Half-precision floats (half the memory).
    F16,
    /// 8-bit integers with a per-vector scale (a quarter of the memory).
    I8,
}

impl Quantization {
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::F16 => "f16",
            Quantization::I8 => "i8",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Quantization::None),
            "f16" => Ok(Quantization::F16),
            "i8" => Ok(Quantization::I8),
            other => Err(Error::invalid(format!(
                "quantization {other:?} is unknown: expected none, f16 or i8"
            ))
            .with_code("invalid_quantization")),
        }
    }
}

/// HNSW graph parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HnswParams {
    /// Links per node on the upper layers (twice that on layer 0).
    #[serde(default = "HnswParams::default_m")]
    pub m: usize,
    /// Candidate list size while inserting.
    #[serde(default = "HnswParams::default_ef_construction")]
    pub ef_construction: usize,
    /// Default candidate list size while searching.
    #[serde(default = "HnswParams::default_ef_search")]
    pub ef_search: usize,
}

impl HnswParams {
    fn default_m() -> usize {
        16
    }
    fn default_ef_construction() -> usize {
        100
    }
    fn default_ef_search() -> usize {
        64
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m).with_code("invalid_hnsw"));
        if !(2..=128).contains(&self.m) {
            return bad(format!("hnsw.m must be 2..=128, got {}", self.m));
        }
        if !(4..=4096).contains(&self.ef_construction) {
            return bad(format!(
                "hnsw.ef_construction must be 4..=4096, got {}",
                self.ef_construction
            ));
        }
        if !(1..=4096).contains(&self.ef_search) {
            return bad(format!(
                "hnsw.ef_search must be 1..=4096, got {}",
                self.ef_search
            ));
        }
        Ok(())
    }
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: Self::default_m(),
            ef_construction: Self::default_ef_construction(),
            ef_search: Self::default_ef_search(),
        }
    }
}

/// What a new collection looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    pub name: String,
    pub dimension: usize,
    #[serde(default)]
    pub metric: Metric,
    #[serde(default)]
    pub hnsw: HnswParams,
    #[serde(default)]
    pub quantization: Quantization,
}

impl CollectionSpec {
    /// Checks every field.
    /// Checks the spec as a store accepts it (internal names included; the
    /// facade checks a client's names with [`validate_collection_name`]).
    pub fn validate(&self) -> Result<()> {
        validate_stored_collection_name(&self.name)?;
        if self.dimension == 0 || self.dimension > MAX_DIMENSION {
            return Err(Error::invalid(format!(
                "dimension must be 1..={MAX_DIMENSION}, got {}",
                self.dimension
            ))
            .with_code("invalid_dimension"));
        }
        self.hnsw.validate()
    }
}

/// Names of Strata's own collections (the knowledge base's `_kb`,
/// conversation memory's `_memory`) start with this. A user's name never
/// does: [`validate_collection_name`] refuses it, so a client can neither
/// create, write, read, drop nor list an internal collection as its own.
pub const INTERNAL_PREFIX: char = '_';

/// Whether `name` is one of Strata's own collections.
pub fn is_internal_collection(name: &str) -> bool {
    name.starts_with(INTERNAL_PREFIX)
}

/// Checks a collection name a client chose: 1-64 of `a-z`, `0-9`, `_`, `-`,
/// starting with a letter or digit (a leading `_` is reserved).
pub fn validate_collection_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
    if ok {
        Ok(())
    } else if is_internal_collection(name) {
        Err(Error::invalid(format!(
            "collection name {name:?} is reserved: names starting with '_' belong to Strata's own collections (knowledge base, conversation memory)"
        ))
        .with_code("reserved_collection_name"))
    } else {
        Err(Error::invalid(format!(
            "collection name {name:?} is invalid: use 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
        ))
        .with_code("invalid_collection_name"))
    }
}

/// Checks a name as a store accepts it: a client's name, or an internal
/// one (`_` followed by a client's name).
pub fn validate_stored_collection_name(name: &str) -> Result<()> {
    match name.strip_prefix(INTERNAL_PREFIX) {
        Some(rest) => validate_collection_name(rest),
        None => validate_collection_name(name),
    }
}

/// The type of a payload index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Keyword,
    Integer,
    Float,
    Datetime,
    Bool,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Keyword => "keyword",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Datetime => "datetime",
            FieldType::Bool => "bool",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "keyword" => Ok(FieldType::Keyword),
            "integer" => Ok(FieldType::Integer),
            "float" => Ok(FieldType::Float),
            "datetime" => Ok(FieldType::Datetime),
            "bool" => Ok(FieldType::Bool),
            other => Err(Error::invalid(format!(
                "index type {other:?} is unknown: expected keyword, integer, float, datetime or bool"
            ))
            .with_code("invalid_index_type")),
        }
    }
}

/// A declared payload index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayloadIndexInfo {
    pub field: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

/// What a collection is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CollectionInfo {
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    pub hnsw: HnswParams,
    pub quantization: Quantization,
    /// Live (unexpired) points.
    pub points: u64,
    pub indexes: Vec<PayloadIndexInfo>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

/// A point id: an unsigned integer or a string (UUIDs included).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PointId {
    Num(u64),
    Str(String),
}

impl PointId {
    /// Checks a string id.
    pub fn validate(&self) -> Result<()> {
        match self {
            PointId::Num(_) => Ok(()),
            PointId::Str(s) => {
                if s.is_empty()
                    || s.chars().count() > MAX_ID_LEN
                    || s.chars().any(|c| c.is_control())
                {
                    Err(Error::invalid(format!(
                        "point id {s:?} is invalid: use 1-{MAX_ID_LEN} characters without control characters"
                    ))
                    .with_code("invalid_point_id"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// A text key that sorts numbers first (numerically), then strings.
    pub fn storage_key(&self) -> String {
        match self {
            PointId::Num(n) => format!("0{n:020}"),
            PointId::Str(s) => format!("1{s}"),
        }
    }

    /// The inverse of [`PointId::storage_key`].
    pub fn from_storage_key(k: &str) -> Result<Self> {
        if let Some(n) = k.strip_prefix('0') {
            n.parse::<u64>()
                .map(PointId::Num)
                .map_err(|_| Error::internal(format!("corrupt point key {k:?}")))
        } else if let Some(s) = k.strip_prefix('1') {
            Ok(PointId::Str(s.to_owned()))
        } else {
            Err(Error::internal(format!("corrupt point key {k:?}")))
        }
    }

    /// Parses a path segment: digits are a number, anything else a string.
    pub fn from_path(s: &str) -> Result<Self> {
        let id = match s.parse::<u64>() {
            Ok(n) if !s.starts_with('+') => PointId::Num(n),
            _ => PointId::Str(s.to_owned()),
        };
        id.validate()?;
        Ok(id)
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Str(s) => f.write_str(s),
        }
    }
}

/// One point of an upsert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointInput {
    pub id: PointId,
    pub vector: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// The point expires this many seconds after the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

/// A stored point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Point {
    pub id: PointId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[schema(value_type = String)]
    pub ingested_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
}

/// A search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub vector: Vec<f32>,
    pub k: usize,
    pub filter: Option<Filter>,
    /// Candidate list size; the collection's `ef_search` when `None`.
    pub ef: Option<usize>,
    pub score_threshold: Option<f32>,
    pub with_payload: bool,
    pub with_vector: bool,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScoredPoint {
    pub id: PointId,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// Which points a delete removes.
#[derive(Debug, Clone, PartialEq)]
pub enum PointSelector {
    Ids(Vec<PointId>),
    Filter(Filter),
}

/// A page of a scroll.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollRequest {
    pub filter: Option<Filter>,
    pub limit: usize,
    /// Continue after this id (exclusive).
    pub after: Option<PointId>,
    /// Start at this id (inclusive; Qdrant's scroll `offset`); when set,
    /// `after` is ignored.
    pub from: Option<PointId>,
    pub with_vector: bool,
}

/// Points in id order (numbers first, then strings) and where to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    pub points: Vec<Point>,
    pub next: Option<PointId>,
}

/// Per-bot limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorQuota {
    pub max_collections: u64,
    pub max_points: u64,
}

/// The bot setting that overrides the server's most collections per bot.
pub const MAX_COLLECTIONS_SETTING: &str = "vectors.max_collections";
/// The bot setting that overrides the server's most points per bot.
pub const MAX_POINTS_SETTING: &str = "vectors.max_points";

impl VectorQuota {
    /// `defaults` overridden by the bot's `vectors.max_collections` and
    /// `vectors.max_points` settings (numbers, or strings of digits).
    pub fn from_settings(
        defaults: VectorQuota,
        settings: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> VectorQuota {
        let value = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        VectorQuota {
            max_collections: settings
                .get(MAX_COLLECTIONS_SETTING)
                .and_then(value)
                .unwrap_or(defaults.max_collections),
            max_points: settings
                .get(MAX_POINTS_SETTING)
                .and_then(value)
                .unwrap_or(defaults.max_points),
        }
    }
}

impl Default for VectorQuota {
    fn default() -> Self {
        VectorQuota {
            max_collections: 100,
            max_points: 10_000_000,
        }
    }
}

/// Checks a vector against a collection's dimension and metric.
pub fn validate_vector(v: &[f32], dimension: usize, metric: Metric) -> Result<()> {
    if v.len() != dimension {
        return Err(Error::invalid(format!(
            "vector has {} dimensions; the collection has {dimension}",
            v.len()
        ))
        .with_code("dimension_mismatch"));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(
            Error::invalid("vector holds NaN or infinite values").with_code("invalid_vector")
        );
    }
    if metric == Metric::Cosine && v.iter().all(|x| *x == 0.0) {
        return Err(Error::invalid(
            "vector is all zeros, which has no direction under the cosine metric",
        )
        .with_code("zero_vector"));
    }
    Ok(())
}

/// The vectors layer.
#[async_trait]
pub trait VectorStore: Send + Sync + fmt::Debug {
    async fn create_collection(
        &self,
        bot: &BotId,
        spec: CollectionSpec,
        quota: VectorQuota,
    ) -> Result<CollectionInfo>;
    async fn list_collections(&self, bot: &BotId) -> Result<Vec<CollectionInfo>>;
    async fn get_collection(&self, bot: &BotId, name: &str) -> Result<CollectionInfo>;
    async fn drop_collection(&self, bot: &BotId, name: &str) -> Result<()>;
    /// Drops every collection of a bot (the bot is being deleted).
    async fn drop_bot(&self, bot: &BotId) -> Result<()>;
    async fn create_index(
        &self,
        bot: &BotId,
        name: &str,
        field: &str,
        field_type: FieldType,
    ) -> Result<CollectionInfo>;
    /// Inserts or replaces points; all or nothing. Returns how many.
    async fn upsert(
        &self,
        bot: &BotId,
        name: &str,
        points: Vec<PointInput>,
        quota: VectorQuota,
    ) -> Result<u64>;
    async fn get_point(
        &self,
        bot: &BotId,
        name: &str,
        id: &PointId,
        with_vector: bool,
    ) -> Result<Point>;
    /// Deletes points; returns how many existed.
    async fn delete_points(&self, bot: &BotId, name: &str, sel: PointSelector) -> Result<u64>;
    async fn scroll(&self, bot: &BotId, name: &str, req: ScrollRequest) -> Result<ScrollPage>;
    async fn count(&self, bot: &BotId, name: &str, filter: Option<Filter>) -> Result<u64>;
    async fn search(&self, bot: &BotId, name: &str, req: SearchRequest)
        -> Result<Vec<ScoredPoint>>;
    async fn search_batch(
        &self,
        bot: &BotId,
        name: &str,
        reqs: Vec<SearchRequest>,
    ) -> Result<Vec<Vec<ScoredPoint>>>;
    /// Removes expired points; returns how many.
    async fn purge_expired(&self) -> Result<u64>;
    /// Saves derived state (index snapshots) so a restart is fast.
    async fn checkpoint(&self) -> Result<()>;
    async fn ping(&self) -> Result<()>;
}
