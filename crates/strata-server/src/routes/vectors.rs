//! Vector collections and their points: ANN search with payload filters,
//! scroll, count, delete, payload indexes, and a streaming NDJSON export and
//! import.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata::vectors::{
    CollectionInfo, CollectionSpec, ExportHeader, ExportedPoint, FieldType, Filter, HnswParams,
    Metric, Point, PointId, PointInput, PointSelector, Quantization, ScoredPoint, ScrollRequest,
    SearchRequest, VectorExport, VectorImport,
};
use strata::{BotScope, Cursor, Error, ErrorKind, PageRequest};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiResult;
use crate::extract::{AdminScope, Json, Query, ReadScope, WriteScope};
use crate::AppState;

// ------------------------------------------------------------ document-only schemas
//
// What the API document says about bodies whose Rust types live in the core
// crates (or are parsed from JSON by hand): the same rules the server
// enforces, as JSON Schema.

/// A 32-bit float: a JSON number that rounds to a finite `f32` (larger
/// magnitudes would round to infinity, which is `invalid_vector`).
pub(crate) struct F32;

impl utoipa::PartialSchema for F32 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        // 2^128 - 2^103: the f32 rounding boundary; below it a number rounds
        // to at most f32::MAX.
        const F32_LIMIT: f64 = 3.402_823_567_797_336_6e38;
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Float)))
            .exclusive_minimum(Some(-F32_LIMIT))
            .exclusive_maximum(Some(F32_LIMIT))
            .into()
    }
}

impl ToSchema for F32 {}

/// A point id: an unsigned 64-bit integer, or a string of 1 to 256 characters
/// without control characters (UUIDs included).
pub(crate) struct PointIdDoc;

impl utoipa::PartialSchema for PointIdDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .description(Some(
                "An unsigned 64-bit integer, or a string of 1 to 256 characters without control characters",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0))
                    .maximum(Some(u64::MAX)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(256))
                    .pattern(Some("^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
            )
            .into()
    }
}

impl ToSchema for PointIdDoc {}

/// One point of an upsert.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct PointInputDoc {
    id: PointIdDoc,
    /// Of the collection's dimension (`dimension_mismatch` otherwise); under
    /// the cosine metric not all zeros (`zero_vector`).
    #[schema(value_type = Vec<F32>, min_items = 1, max_items = 4096)]
    vector: Vec<f32>,
    /// A JSON object (or null: none).
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    /// The point expires this many seconds after the write: 1 to 315360000.
    #[schema(minimum = 1, maximum = 315360000)]
    ttl_seconds: Option<i64>,
}

/// HNSW graph parameters; absent fields take their defaults.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct HnswParamsDoc {
    /// Links per node on the upper layers (twice that on layer 0): 2 to 128
    /// (default 16).
    #[serde(default)]
    #[schema(minimum = 2, maximum = 128)]
    m: usize,
    /// Candidate list size while inserting: 4 to 4096 (default 100).
    #[serde(default)]
    #[schema(minimum = 4, maximum = 4096)]
    ef_construction: usize,
    /// Default candidate list size while searching: 1 to 4096 (default 64).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4096)]
    ef_search: usize,
}

/// The distance of a collection.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum MetricName {
    Cosine,
    Dot,
    Euclidean,
}

/// How the in-memory index stores vectors.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum QuantizationName {
    None,
    F16,
    I8,
}

/// The type of a payload index.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum IndexType {
    Keyword,
    Integer,
    Float,
    Datetime,
    Bool,
}

/// A payload index declared by an import header.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImportIndex {
    /// A payload key, dotted for nested objects: 1 to 255 characters, no empty
    /// segment, no control characters.
    #[schema(
        max_length = 255,
        pattern = "^[^.\\x00-\\x1f\\x7f-\\x9f]+(\\.[^.\\x00-\\x1f\\x7f-\\x9f]+)*$"
    )]
    field: String,
    #[serde(rename = "type")]
    field_type: IndexType,
}

/// The collection an import describes (an export's header).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImportCollection {
    /// The exported collection's name (informative: the path names the target).
    name: String,
    /// 1 to 4096. An existing target must have this dimension and metric
    /// (409 `collection_mismatch` otherwise).
    #[schema(minimum = 1, maximum = 4096)]
    dimension: usize,
    /// Default `cosine`.
    #[serde(default)]
    metric: MetricName,
    #[serde(default)]
    hnsw: HnswParamsDoc,
    /// Default `none`.
    #[serde(default)]
    quantization: QuantizationName,
    #[serde(default)]
    indexes: Vec<ImportIndex>,
}

/// The first line of an import: `{"collection": {...}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImportHeader {
    collection: ImportCollection,
}

/// A point line of an import.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImportPoint {
    id: PointIdDoc,
    /// Of the collection's dimension; under cosine not all zeros.
    #[schema(value_type = Vec<F32>, min_items = 1, max_items = 4096)]
    vector: Vec<f32>,
    /// A JSON object (or null: none).
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    /// When the point expires (RFC 3339); points already expired are left
    /// out, and an expiry more than ten years ahead (the longest TTL) is
    /// brought down to ten years.
    #[schema(format = DateTime, pattern = "^(?:\\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[Tt](?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$")]
    expires_at: Option<String>,
}

/// An NDJSON import, one JSON value a line: the header, then the points.
pub(crate) struct ImportLines;

impl utoipa::PartialSchema for ImportLines {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ArrayItems, Schema};
        use utoipa::openapi::{Ref, RefOr};
        let header = match <ImportHeader as utoipa::PartialSchema>::schema() {
            RefOr::T(s) => s,
            RefOr::Ref(_) => Schema::default(),
        };
        ArrayBuilder::new()
            .description(Some(
                "The lines of the NDJSON body, each one JSON value: the collection header, then the points",
            ))
            .prefix_items([header])
            .items(ArrayItems::RefOrSchema(Box::new(
                Ref::from_schema_name("ImportPoint").into(),
            )))
            .min_items(Some(1))
            .into()
    }
}

impl ToSchema for ImportLines {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "ImportPoint".into(),
            <ImportPoint as utoipa::PartialSchema>::schema(),
        ));
        <ImportPoint as ToSchema>::schemas(schemas);
        <ImportHeader as ToSchema>::schemas(schemas);
    }
}

/// Adds the filter's recursive schemas, which the operations refer to but
/// do not collect (their recursion is cut with `no_recursion`).
pub(crate) fn add_recursive_schemas(doc: &mut utoipa::openapi::OpenApi) {
    let mut schemas = vec![
        (
            "FilterCondition".to_owned(),
            <FilterCondition as utoipa::PartialSchema>::schema(),
        ),
        (
            "NestedFilter".to_owned(),
            <NestedFilter as utoipa::PartialSchema>::schema(),
        ),
        (
            "VectorFilter".to_owned(),
            <VectorFilter as utoipa::PartialSchema>::schema(),
        ),
    ];
    <FilterCondition as ToSchema>::schemas(&mut schemas);
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in schemas {
        components.schemas.entry(name).or_insert(schema);
    }
    // At least one field: a nested filter (`{}` is `invalid_filter`) and a
    // range. Set here: utoipa 5.5 writes `min_properties` as `maxProperties`.
    for name in ["NestedFilter", "NumberRange", "DatetimeRange"] {
        if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(o))) =
            components.schemas.get_mut(name)
        {
            o.min_properties = Some(1);
            o.max_properties = None;
        }
    }
}

/// A payload filter: every `must` condition holds, at least one `should`
/// condition holds (when there are any), no `must_not` condition holds.
/// Filters nest at most 16 deep and hold at most 1024 conditions.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct VectorFilter {
    #[schema(no_recursion)]
    must: Option<Vec<FilterCondition>>,
    #[schema(no_recursion)]
    should: Option<Vec<FilterCondition>>,
    #[schema(no_recursion)]
    must_not: Option<Vec<FilterCondition>>,
}

/// A nested filter: a condition made of `must`, `should` and `must_not`
/// (at least one of them).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NestedFilter {
    #[schema(no_recursion)]
    must: Option<Vec<FilterCondition>>,
    #[schema(no_recursion)]
    should: Option<Vec<FilterCondition>>,
    #[schema(no_recursion)]
    must_not: Option<Vec<FilterCondition>>,
}

/// A payload key, dotted for nested objects (`meta.lang`): at most 256
/// characters, no empty segment.
pub(crate) struct FilterKey;

impl utoipa::PartialSchema for FilterKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A payload key, dotted for nested objects (`meta.lang`): at most 256 characters, no empty segment",
            ))
            .max_length(Some(256))
            .pattern(Some("^[^.]+(\\.[^.]+)*$"))
            .into()
    }
}

impl ToSchema for FilterKey {}

/// One condition of a filter.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum FilterCondition {
    Match(MatchCondition),
    Range(RangeCondition),
    Exists(ExistsCondition),
    IsNull(IsNullCondition),
    #[schema(no_recursion)]
    Nested(NestedFilter),
}

/// The key's value equals `value`, or is one of `any`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct MatchCondition {
    key: FilterKey,
    #[serde(rename = "match")]
    matches: MatchSpec,
}

/// `{"value": v}` or `{"any": [v, …]}`.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum MatchSpec {
    Value(MatchValueSpec),
    Any(MatchAnySpec),
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct MatchValueSpec {
    value: Scalar,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct MatchAnySpec {
    #[schema(min_items = 1)]
    any: Vec<Scalar>,
}

/// A string, number or bool.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum Scalar {
    Str(String),
    Bool(bool),
    Number(f64),
}

/// The key's value lies in a range: numbers, or RFC 3339 datetimes.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct RangeCondition {
    key: FilterKey,
    range: RangeSpec,
}

/// At least one bound; all numbers or all datetimes.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum RangeSpec {
    Numbers(NumberRange),
    Datetimes(DatetimeRange),
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NumberRange {
    #[serde(default)]
    gt: f64,
    #[serde(default)]
    gte: f64,
    #[serde(default)]
    lt: f64,
    #[serde(default)]
    lte: f64,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct DatetimeRange {
    #[serde(default)]
    #[schema(format = DateTime, pattern = "^(?:\\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[Tt](?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$")]
    gt: String,
    #[serde(default)]
    #[schema(format = DateTime, pattern = "^(?:\\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[Tt](?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$")]
    gte: String,
    #[serde(default)]
    #[schema(format = DateTime, pattern = "^(?:\\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[Tt](?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$")]
    lt: String,
    #[serde(default)]
    #[schema(format = DateTime, pattern = "^(?:\\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[Tt](?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$")]
    lte: String,
}

/// The key is present (`true`) or absent (`false`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ExistsCondition {
    key: FilterKey,
    exists: bool,
}

/// The key is null or absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct IsNullCondition {
    is_null: FilterKey,
}

/// A new collection.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCollection {
    /// 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: String,
    /// 1 to 4096; fixed at creation.
    #[schema(minimum = 1, maximum = 4096)]
    dimension: usize,
    /// `cosine` (default), `dot` or `euclidean`; fixed at creation.
    #[schema(value_type = Option<MetricName>)]
    metric: Option<String>,
    /// HNSW graph parameters (defaults: m 16, ef_construction 100, ef_search 64).
    #[schema(value_type = Option<HnswParamsDoc>)]
    hnsw: Option<HnswParams>,
    /// `none` (default), `f16` or `i8`: how the in-memory index stores vectors.
    #[schema(value_type = Option<QuantizationName>)]
    quantization: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct CollectionList {
    collections: Vec<CollectionInfo>,
    /// Always null: a bot's collections come in one page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertBody {
    /// At most 10000 points; all are written or none.
    #[schema(value_type = Vec<PointInputDoc>, max_items = 10000)]
    points: Vec<PointInput>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Upserted {
    upserted: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PointQuery {
    /// Include the vector (default true).
    with_vector: Option<bool>,
}

fn yes() -> bool {
    true
}

/// One search.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchBody {
    /// The query vector, of the collection's dimension (`dimension_mismatch`
    /// otherwise); under the cosine metric not all zeros (`zero_vector`).
    #[schema(value_type = Vec<F32>, min_items = 1, max_items = 4096)]
    vector: Vec<f32>,
    /// How many results, 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    k: usize,
    /// A payload filter: `{"must": [...], "should": [...], "must_not": [...]}`.
    #[schema(value_type = Option<VectorFilter>)]
    filter: Option<Value>,
    /// Candidate list size, 1 to 4096 (default: the collection's `ef_search`).
    #[schema(minimum = 1, maximum = 4096)]
    ef: Option<usize>,
    /// Keep only results at least this good (similarity for cosine and
    /// dot, at most this distance for euclidean).
    #[schema(value_type = Option<F32>)]
    score_threshold: Option<f32>,
    /// Include payloads (default true).
    #[serde(default = "yes")]
    with_payload: bool,
    /// Include vectors (default false).
    #[serde(default)]
    with_vector: bool,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SearchResults {
    /// Best first.
    results: Vec<ScoredPoint>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchBatchBody {
    /// At most 100 searches.
    #[schema(max_items = 100)]
    searches: Vec<SearchBody>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SearchBatchResults {
    /// One list per search, in request order, each best first.
    results: Vec<Vec<ScoredPoint>>,
}

/// Which points to delete: `ids` or `filter`, exactly one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteBody {
    ids: Option<Vec<PointId>>,
    filter: Option<Value>,
}

/// Delete these points (at most 10000 ids).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct DeleteByIds {
    #[schema(max_items = 10000)]
    ids: Vec<PointIdDoc>,
}

/// Delete the points a filter matches.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct DeleteByFilter {
    filter: VectorFilter,
}

/// Which points to delete: `{ids}` or `{filter}`, exactly one.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum DeleteSelector {
    Ids(DeleteByIds),
    Filter(DeleteByFilter),
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DeletedPoints {
    /// How many of the points existed.
    deleted: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScrollBody {
    #[schema(value_type = Option<VectorFilter>)]
    filter: Option<Value>,
    /// 1 to 1000 (default 100).
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page (opaque, format `cursor`).
    #[schema(format = "cursor")]
    cursor: Option<String>,
    /// Include vectors (default false).
    #[serde(default)]
    with_vector: bool,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ScrollResult {
    /// In id order: numbers first (ascending), then strings.
    points: Vec<Point>,
    /// Null at the end.
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountBody {
    #[schema(value_type = Option<VectorFilter>)]
    filter: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct PointCount {
    count: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexBody {
    /// A payload key, dotted for nested objects (`meta.lang`): 1 to 255
    /// characters, no empty segment, no control characters.
    #[schema(
        max_length = 255,
        pattern = "^[^.\\x00-\\x1f\\x7f-\\x9f]+(\\.[^.\\x00-\\x1f\\x7f-\\x9f]+)*$"
    )]
    field: String,
    /// `keyword`, `integer`, `float`, `datetime` or `bool`.
    #[serde(rename = "type")]
    #[schema(value_type = IndexType)]
    field_type: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Imported {
    /// Points written.
    imported: u64,
    /// Points left out because they had expired.
    expired: u64,
    /// Whether the import created the collection.
    created: bool,
}

/// A filter from its JSON form; `null` is no filter.
fn parse_filter(v: Option<Value>) -> strata::Result<Option<Filter>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) if !v.is_object() => Err(Error::invalid(
            "filter must be a JSON object with must, should and must_not",
        )
        .with_code("invalid_filter")),
        Some(v) => Filter::parse(&v).map(Some),
    }
}

fn search_request(b: SearchBody) -> strata::Result<SearchRequest> {
    Ok(SearchRequest {
        vector: b.vector,
        k: b.k,
        filter: parse_filter(b.filter)?,
        ef: b.ef,
        score_threshold: b.score_threshold,
        with_payload: b.with_payload,
        with_vector: b.with_vector,
    })
}

/// Create a collection (bot admin).
#[utoipa::path(post, path = "/v1/bots/{bot}/collections", tag = "vectors", request_body = CreateCollection,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 201, body = CollectionInfo), (status = 409, description = "The collection exists (`already_exists`)")))]
pub(crate) async fn create_collection(
    AdminScope(scope): AdminScope,
    Json(b): Json<CreateCollection>,
) -> ApiResult<(StatusCode, Json<CollectionInfo>)> {
    let spec = CollectionSpec {
        name: b.name,
        dimension: b.dimension,
        metric: match b.metric.as_deref() {
            None => Metric::default(),
            Some(m) => Metric::parse(m)?,
        },
        hnsw: b.hnsw.unwrap_or_default(),
        quantization: match b.quantization.as_deref() {
            None => Quantization::default(),
            Some(q) => Quantization::parse(q)?,
        },
    };
    Ok((
        StatusCode::CREATED,
        Json(scope.create_collection(spec).await?),
    ))
}

/// List the bot's collections.
#[utoipa::path(get, path = "/v1/bots/{bot}/collections", tag = "vectors",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    responses((status = 200, body = CollectionList)))]
pub(crate) async fn list_collections(
    ReadScope(scope): ReadScope,
) -> ApiResult<Json<CollectionList>> {
    Ok(Json(CollectionList {
        collections: scope.list_collections().await?,
        next_cursor: None,
    }))
}

/// One collection, with its live point count and payload indexes.
#[utoipa::path(get, path = "/v1/bots/{bot}/collections/{name}", tag = "vectors",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = CollectionInfo)))]
pub(crate) async fn get_collection(
    ReadScope(scope): ReadScope,
    Path((_bot, name)): Path<(String, String)>,
) -> ApiResult<Json<CollectionInfo>> {
    Ok(Json(scope.get_collection(&name).await?))
}

/// Drop a collection and all of its points (bot admin).
#[utoipa::path(delete, path = "/v1/bots/{bot}/collections/{name}", tag = "vectors",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 204, description = "Dropped")))]
pub(crate) async fn drop_collection(
    AdminScope(scope): AdminScope,
    Path((_bot, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    scope.drop_collection(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Insert or replace points; all or nothing, durable on return.
#[utoipa::path(put, path = "/v1/bots/{bot}/collections/{name}/points", tag = "vectors", request_body = UpsertBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = Upserted)))]
pub(crate) async fn upsert_points(
    WriteScope(scope): WriteScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(b): Json<UpsertBody>,
) -> ApiResult<Json<Upserted>> {
    Ok(Json(Upserted {
        upserted: scope.upsert_points(&name, b.points).await?,
    }))
}

/// One point (digits in the path are a numeric id).
#[utoipa::path(get, path = "/v1/bots/{bot}/collections/{name}/points/{id}", tag = "vectors",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"),
        ("id" = String, Path, description = "Point id: digits are an unsigned integer id, anything else a string id (1 to 256 characters, no control characters)", max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"), PointQuery),
    responses((status = 200, body = Point)))]
pub(crate) async fn get_point(
    ReadScope(scope): ReadScope,
    Path((_bot, name, id)): Path<(String, String, String)>,
    Query(q): Query<PointQuery>,
) -> ApiResult<Json<Point>> {
    let id = PointId::from_path(&id)?;
    Ok(Json(
        scope
            .get_point(&name, &id, q.with_vector.unwrap_or(true))
            .await?,
    ))
}

/// The `k` nearest points, best first, optionally filtered by payload.
#[utoipa::path(post, path = "/v1/bots/{bot}/collections/{name}/points/search", tag = "vectors", request_body = SearchBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = SearchResults)))]
pub(crate) async fn search(
    ReadScope(scope): ReadScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(b): Json<SearchBody>,
) -> ApiResult<Json<SearchResults>> {
    let req = search_request(b)?;
    Ok(Json(SearchResults {
        results: scope.search_points(&name, req).await?,
    }))
}

/// Several searches of one collection in one call.
#[utoipa::path(post, path = "/v1/bots/{bot}/collections/{name}/points/search/batch", tag = "vectors", request_body = SearchBatchBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = SearchBatchResults)))]
pub(crate) async fn search_batch(
    ReadScope(scope): ReadScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(b): Json<SearchBatchBody>,
) -> ApiResult<Json<SearchBatchResults>> {
    let reqs = b
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            search_request(s).map_err(|e| strata::vectors::relabel(e, &format!("searches[{i}]")))
        })
        .collect::<strata::Result<Vec<_>>>()?;
    Ok(Json(SearchBatchResults {
        results: scope.search_points_batch(&name, reqs).await?,
    }))
}

/// Delete points by `ids` or by `filter` (exactly one of them).
#[utoipa::path(post, path = "/v1/bots/{bot}/collections/{name}/points/delete", tag = "vectors", request_body = DeleteSelector,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = DeletedPoints)))]
pub(crate) async fn delete_points(
    WriteScope(scope): WriteScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(b): Json<DeleteBody>,
) -> ApiResult<Json<DeletedPoints>> {
    let sel = match (b.ids, b.filter) {
        (Some(ids), None) => PointSelector::Ids(ids),
        (None, Some(f)) if !f.is_null() => match parse_filter(Some(f))? {
            Some(f) => PointSelector::Filter(f),
            None => return Err(selector_error().into()),
        },
        _ => return Err(selector_error().into()),
    };
    Ok(Json(DeletedPoints {
        deleted: scope.delete_points(&name, sel).await?,
    }))
}

fn selector_error() -> Error {
    Error::invalid("send either ids or filter, not both and not neither")
        .with_code("invalid_selector")
}

/// Page through points in id order, optionally filtered.
#[utoipa::path(post, path = "/v1/bots/{bot}/collections/{name}/points/scroll", tag = "vectors", request_body = ScrollBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = ScrollResult)))]
pub(crate) async fn scroll(
    ReadScope(scope): ReadScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(b): Json<ScrollBody>,
) -> ApiResult<Json<ScrollResult>> {
    let page = PageRequest::parse(b.cursor.as_deref(), b.limit)?;
    let after = match &page.cursor {
        None => None,
        Some(c) => Some(PointId::from_storage_key(c.key()).map_err(|_| {
            Error::invalid("cursor is not one this server returned").with_code("invalid_cursor")
        })?),
    };
    let req = ScrollRequest {
        from: None,
        filter: parse_filter(b.filter)?,
        limit: page.limit as usize,
        after,
        with_vector: b.with_vector,
    };
    let page = scope.scroll_points(&name, req).await?;
    Ok(Json(ScrollResult {
        points: page.points,
        next_cursor: page
            .next
            .map(|id| Cursor::after(&id.storage_key()).encode()),
    }))
}

/// How many live points match a filter (all of them without one).
#[utoipa::path(post, path = "/v1/bots/{bot}/collections/{name}/points/count", tag = "vectors", request_body = CountBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = PointCount)))]
pub(crate) async fn count(
    ReadScope(scope): ReadScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(b): Json<CountBody>,
) -> ApiResult<Json<PointCount>> {
    Ok(Json(PointCount {
        count: scope.count_points(&name, parse_filter(b.filter)?).await?,
    }))
}

/// Declare a payload index, which lets the planner estimate and narrow
/// filtered searches (bot admin).
#[utoipa::path(post, path = "/v1/bots/{bot}/collections/{name}/index", tag = "vectors", request_body = IndexBody,
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, body = CollectionInfo)))]
pub(crate) async fn create_index(
    AdminScope(scope): AdminScope,
    Path((_bot, name)): Path<(String, String)>,
    Json(b): Json<IndexBody>,
) -> ApiResult<Json<CollectionInfo>> {
    let field_type = FieldType::parse(&b.field_type)?;
    Ok(Json(
        scope
            .create_payload_index(&name, &b.field, field_type)
            .await?,
    ))
}

fn ndjson_line(v: &impl Serialize, out: &mut Vec<u8>) -> strata::Result<()> {
    serde_json::to_writer(&mut *out, v)
        .map_err(|e| Error::internal(format!("serialising an export line: {e}")))?;
    out.push(b'\n');
    Ok(())
}

/// The next chunk of an export stream: the header first, then one page of
/// points per chunk.
async fn export_chunk(
    mut export: VectorExport,
    header: Option<Vec<u8>>,
) -> Option<(
    std::io::Result<Bytes>,
    Option<(VectorExport, Option<Vec<u8>>)>,
)> {
    if let Some(h) = header {
        return Some((Ok(Bytes::from(h)), Some((export, None))));
    }
    let page = match export.next_page().await {
        Ok(Some(page)) => page,
        Ok(None) => return None,
        Err(e) => {
            // The status line is gone: abort the body so the client sees a
            // truncated transfer rather than a short, valid-looking export.
            tracing::error!(error = %e, "exporting vectors failed mid-stream");
            return Some((Err(std::io::Error::other(e.to_string())), None));
        }
    };
    let mut buf = Vec::with_capacity(page.len() * 64);
    for p in &page {
        if let Err(e) = ndjson_line(p, &mut buf) {
            return Some((Err(std::io::Error::other(e.to_string())), None));
        }
    }
    Some((Ok(Bytes::from(buf)), Some((export, None))))
}

/// Stream a collection as NDJSON: a `{"collection": {...}}` header line,
/// then one `{"id", "vector", "payload"?, "expires_at"?}` line per live point.
#[utoipa::path(get, path = "/v1/bots/{bot}/collections/{name}/export", tag = "vectors",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses((status = 200, description = "The collection as NDJSON", content_type = "application/x-ndjson", body = String)))]
pub(crate) async fn export(
    ReadScope(scope): ReadScope,
    Path((_bot, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let export = scope.export_vectors(&name).await?;
    let mut header = Vec::new();
    ndjson_line(&export.header(), &mut header)?;
    let stream = futures_util::stream::unfold(Some((export, Some(header))), |state| async move {
        let (export, header) = state?;
        export_chunk(export, header).await
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The import's state while its body streams in.
struct Importer {
    scope: BotScope,
    name: String,
    target: Option<VectorImport>,
}

fn bad_line(line: usize, what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("line {line}: {what}: {e}")).with_code("invalid_import")
}

impl Importer {
    async fn line(&mut self, n: usize, raw: &[u8]) -> strata::Result<()> {
        let text = raw.strip_suffix(b"\r").unwrap_or(raw);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match &mut self.target {
            None => {
                let header: ExportHeader = serde_json::from_slice(text)
                    .or_else(|e| crate::extract::from_integral_json(text).ok_or(e))
                    .map_err(|e| {
                        bad_line(
                            n,
                            "expected the collection header {\"collection\": {...}}",
                            e,
                        )
                    })?;
                // The header is checked whole even when the target exists
                // and its HNSW parameters go unused, as the document says.
                header
                    .collection
                    .hnsw
                    .validate()
                    .map_err(|e| bad_line(n, "the collection header", e.message()))?;
                self.target = Some(self.scope.import_vectors(&self.name, header).await?);
            }
            Some(target) => {
                let point: ExportedPoint = serde_json::from_slice(text)
                    .or_else(|e| crate::extract::from_integral_json(text).ok_or(e))
                    .map_err(|e| bad_line(n, "expected a point {\"id\", \"vector\", ...}", e))?;
                target.push(n, point).await?;
            }
        }
        Ok(())
    }
}

fn line_too_long(line: usize, max: usize) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        format!(
            "line {line} is longer than the server's limit of {max} bytes (STRATA_MAX_BODY_BYTES)"
        ),
    )
}

/// Import NDJSON in the export's format into this collection (created from
/// the header when missing, which needs the bot's admin). The body streams:
/// it is not bound by `STRATA_MAX_BODY_BYTES`, each line is. Points are
/// upserted in batches of 500; a bad line stops the import with a 400 naming
/// it (batches before it stay written; running the import again is safe).
#[utoipa::path(post, path = "/v1/bots/{bot}/collections/{name}/import", tag = "vectors",
    params(("bot" = String, Path, description = "Bot id", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$"), ("name" = String, Path, description = "Collection name: 1-64 characters of `a-z 0-9 _ -`, starting with a letter or digit", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    request_body(content = ImportLines, content_type = "application/x-ndjson", description = "An export: the header line, then one line per point"),
    responses((status = 200, body = Imported)))]
pub(crate) async fn import(
    WriteScope(scope): WriteScope,
    State(state): State<AppState>,
    Path((_bot, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Imported>> {
    let max_line = usize::try_from(state.strata.config().max_body_bytes).unwrap_or(usize::MAX);
    let mut importer = Importer {
        scope,
        name,
        target: None,
    };
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut line = 0usize;
    loop {
        let chunk = stream.next().await;
        let eof = chunk.is_none();
        // Bytes before this offset hold no newline (a long line is scanned once).
        let mut scan = buf.len();
        if let Some(chunk) = chunk {
            let chunk = chunk
                .map_err(|e| Error::invalid(format!("reading the request body failed: {e}")))?;
            buf.extend_from_slice(&chunk);
        }
        let mut start = 0;
        while let Some(pos) = buf[scan..].iter().position(|b| *b == b'\n') {
            let end = scan + pos;
            line += 1;
            if end - start > max_line {
                return Err(line_too_long(line, max_line).into());
            }
            importer.line(line, &buf[start..end]).await?;
            start = end + 1;
            scan = start;
        }
        buf.drain(..start);
        if buf.len() > max_line {
            return Err(line_too_long(line + 1, max_line).into());
        }
        if eof {
            if !buf.is_empty() {
                line += 1;
                importer.line(line, &buf).await?;
            }
            break;
        }
    }
    let Some(target) = importer.target else {
        return Err(Error::invalid(
            "the body is empty: its first line must be the collection header {\"collection\": {...}}",
        )
        .with_code("invalid_import")
        .into());
    };
    let summary = target.finish().await?;
    Ok(Json(Imported {
        imported: summary.imported,
        expired: summary.expired,
        created: summary.created,
    }))
}
