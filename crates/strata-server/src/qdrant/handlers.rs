//! The Qdrant API's handlers: parse Qdrant's body, call the facade, shape
//! Qdrant's result.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use strata::vectors::{
    CollectionInfo, CollectionSpec, Condition, FieldType, Filter, HnswParams, Metric,
    PayloadUpdate, Point, PointId, PointInput, PointSelector, Quantization, ScoredPoint,
    ScrollRequest, SearchRequest, MAX_K,
};
use strata::{BotScope, ErrorKind};

use super::filter::parse_filter;
use super::ids::{parse_id, parse_ids, parse_path_id, OutId};
use super::json_in::JsonIn;
use super::{ok, wait_requested, QBody, QError, QScope};
use crate::AppState;

pub use strata::vectors::VECTOR_NAME_SETTING;

/// Operation ids of update results: increasing within the process.
static OPERATION: AtomicU64 = AtomicU64::new(0);

fn update_result(started: Instant, uri: &Uri) -> Response {
    let id = OPERATION.fetch_add(1, Ordering::Relaxed) + 1;
    let status = if wait_requested(uri) {
        "completed"
    } else {
        "acknowledged"
    };
    ok(started, json!({"operation_id": id, "status": status}))
}

fn strata_err(c: &str) -> impl Fn(strata::Error) -> QError + '_ {
    move |e| QError::from_strata(e, c)
}

// ------------------------------------------------------------------ service

pub async fn root(State(state): State<AppState>) -> Response {
    let body = json!({
        "title": "qdrant - vector search engine",
        "version": state.strata.config().qdrant_version,
    });
    axum::Json(body).into_response()
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

pub async fn healthz() -> Response {
    text(StatusCode::OK, "healthz check passed")
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let layers = state.strata.readiness().await;
    if layers.iter().all(|l| l.ok || !l.required) {
        text(StatusCode::OK, "all shards are ready")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "some shards are not ready")
    }
}

// -------------------------------------------------------------- collections

/// The name of the collection's one vector (`""` unless created named).
async fn vector_name(scope: &BotScope, c: &str) -> Result<String, QError> {
    match scope
        .get_config_value(&format!("{VECTOR_NAME_SETTING}{c}"))
        .await
    {
        Ok(Value::String(s)) => Ok(s),
        Ok(_) => Ok(String::new()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(QError::from_strata(e, c)),
    }
}

/// Checks a vector name a request uses: `""` is the collection's vector
/// whatever its name (LangChain and LlamaIndex send it); another name
/// must be the one the collection was created with.
async fn check_vector_name(scope: &BotScope, c: &str, name: &str) -> Result<(), QError> {
    if name.is_empty() {
        return Ok(());
    }
    if vector_name(scope, c).await? == name {
        Ok(())
    } else {
        Err(QError::wrong_input(format!(
            "Not existing vector name error: {name}"
        )))
    }
}

fn distance_name(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "Cosine",
        Metric::Dot => "Dot",
        Metric::Euclidean => "Euclid",
    }
}

fn collection_info_json(info: &CollectionInfo, name: &str, schema: Value) -> Value {
    let params = json!({"size": info.dimension, "distance": distance_name(info.metric)});
    let vectors = if name.is_empty() {
        params
    } else {
        json!({ name: params })
    };
    let quantization = match info.quantization {
        Quantization::None => Value::Null,
        Quantization::F16 => json!({"scalar": {"type": "float16"}}),
        Quantization::I8 => json!({"scalar": {"type": "int8"}}),
    };
    json!({
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": if info.points >= 10_000 { info.points } else { 0 },
        "points_count": info.points,
        "segments_count": 1,
        "config": {
            "params": {
                "vectors": vectors,
                "shard_number": 1,
                "replication_factor": 1,
                "write_consistency_factor": 1,
                "on_disk_payload": true
            },
            "hnsw_config": {
                "m": info.hnsw.m,
                "ef_construct": info.hnsw.ef_construction,
                "full_scan_threshold": 10000,
                "max_indexing_threads": 0,
                "on_disk": false
            },
            "optimizer_config": {
                "deleted_threshold": 0.2,
                "vacuum_min_vector_number": 1000,
                "default_segment_number": 0,
                "max_segment_size": null,
                "memmap_threshold": null,
                "indexing_threshold": 10000,
                "flush_interval_sec": 5,
                "max_optimization_threads": null,
                "prevent_unoptimized": null
            },
            "wal_config": {
                "wal_capacity_mb": 32,
                "wal_segments_ahead": 0,
                "wal_retain_closed": 1
            },
            "quantization_config": quantization
        },
        "payload_schema": schema,
        "update_queue": {"length": 0}
    })
}

pub async fn list_collections(QScope(scope): QScope) -> Result<Response, QError> {
    let t = Instant::now();
    let all = scope.list_collections().await.map_err(strata_err(""))?;
    let names: Vec<Value> = all.iter().map(|c| json!({"name": c.name})).collect();
    Ok(ok(t, json!({ "collections": names })))
}

pub async fn get_collection(
    QScope(scope): QScope,
    Path(c): Path<String>,
) -> Result<Response, QError> {
    let t = Instant::now();
    let info = scope
        .get_collection(&c)
        .await
        .map_err(|e| not_found_as(e, &c))?;
    let name = vector_name(&scope, &c).await?;
    let mut schema = Map::new();
    for idx in &info.indexes {
        let present = Filter {
            must: vec![Condition::Exists {
                key: idx.field.clone(),
                exists: true,
            }],
            ..Filter::default()
        };
        let points = scope
            .count_points(&c, Some(present))
            .await
            .map_err(strata_err(&c))?;
        schema.insert(
            idx.field.clone(),
            json!({"data_type": idx.field_type.as_str(), "params": null, "points": points}),
        );
    }
    Ok(ok(
        t,
        collection_info_json(&info, &name, Value::Object(schema)),
    ))
}

/// An invalid name is a collection that does not exist.
fn not_found_as(e: strata::Error, c: &str) -> QError {
    if matches!(
        e.code(),
        "invalid_collection_name" | "reserved_collection_name"
    ) {
        QError::no_collection(c)
    } else {
        QError::from_strata(e, c)
    }
}

pub async fn collection_exists(
    QScope(scope): QScope,
    Path(c): Path<String>,
) -> Result<Response, QError> {
    let t = Instant::now();
    let exists = match scope.get_collection(&c).await {
        Ok(_) => true,
        Err(e)
            if e.kind() == ErrorKind::NotFound
                || matches!(
                    e.code(),
                    "invalid_collection_name" | "reserved_collection_name"
                ) =>
        {
            false
        }
        Err(e) => return Err(QError::from_strata(e, &c)),
    };
    Ok(ok(t, json!({ "exists": exists })))
}

#[derive(Deserialize, Default)]
struct CreateCollectionBody {
    vectors: Option<Value>,
    sparse_vectors: Option<Value>,
    hnsw_config: Option<HnswConfigBody>,
    quantization_config: Option<Value>,
    sharding_method: Option<Value>,
    init_from: Option<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct HnswConfigBody {
    m: Option<usize>,
    ef_construct: Option<usize>,
}

fn metric_of(distance: &Value) -> Result<Metric, QError> {
    match distance.as_str() {
        Some("Cosine") => Ok(Metric::Cosine),
        Some("Dot") => Ok(Metric::Dot),
        Some("Euclid") => Ok(Metric::Euclidean),
        Some("Manhattan") => Err(QError::unsupported("the Manhattan distance")),
        _ => Err(QError::format(format!(
            "unknown variant {distance}, expected one of `Cosine`, `Euclid`, `Dot`, `Manhattan`"
        ))),
    }
}

/// The one vector of a create body.
struct VectorParams<'a> {
    name: String,
    size: usize,
    metric: Metric,
    hnsw: Option<HnswConfigBody>,
    quantization: Option<&'a Value>,
}

fn vector_params(v: &Value) -> Result<VectorParams<'_>, QError> {
    let obj = v
        .as_object()
        .ok_or_else(|| QError::format("vectors is an object"))?;
    let (name, params) = if obj.contains_key("size") {
        (String::new(), obj)
    } else {
        let mut it = obj.iter();
        match (it.next(), it.next()) {
            (Some((n, p)), None) => (
                n.clone(),
                p.as_object()
                    .ok_or_else(|| QError::format(format!("vectors.{n} is an object")))?,
            ),
            (None, _) => return Err(QError::wrong_input("a collection needs one vector")),
            (Some(_), Some(_)) => {
                return Err(QError::unsupported("more than one vector per point"))
            }
        }
    };
    let size = params
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| QError::format("missing field `size`"))? as usize;
    let metric = metric_of(params.get("distance").unwrap_or(&Value::Null))?;
    if params
        .get("multivector_config")
        .is_some_and(|m| !m.is_null())
    {
        return Err(QError::unsupported("multivectors"));
    }
    let hnsw = params
        .get("hnsw_config")
        .filter(|h| !h.is_null())
        .map(|h| serde_json::from_value::<HnswConfigBody>(h.clone()))
        .transpose()
        .map_err(QError::format)?;
    let quant = params.get("quantization_config").filter(|q| !q.is_null());
    Ok(VectorParams {
        name,
        size,
        metric,
        hnsw,
        quantization: quant,
    })
}

fn quantization_of(q: Option<&Value>) -> Result<Quantization, QError> {
    let Some(q) = q.filter(|q| !q.is_null()) else {
        return Ok(Quantization::None);
    };
    match q
        .get("scalar")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
    {
        Some("int8") => Ok(Quantization::I8),
        Some("float16") => Ok(Quantization::F16),
        _ => Err(QError::unsupported(
            "this quantization (scalar int8 and float16 are)",
        )),
    }
}

pub async fn create_collection(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: CreateCollectionBody = body.parse_or_default()?;
    if b.sparse_vectors
        .as_ref()
        .is_some_and(|s| s.as_object().is_some_and(|m| !m.is_empty()))
    {
        return Err(QError::unsupported("sparse vectors"));
    }
    if b.sharding_method
        .as_ref()
        .is_some_and(|s| s.as_str() == Some("custom"))
    {
        return Err(QError::unsupported("shard keys (custom sharding)"));
    }
    if b.init_from.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("init_from"));
    }
    let Some(vectors) = b.vectors.as_ref().filter(|v| !v.is_null()) else {
        return Err(QError::wrong_input(
            "Strata's collections have exactly one dense vector: send vectors: {size, distance}",
        ));
    };
    let VectorParams {
        name,
        size: dimension,
        metric,
        hnsw: vec_hnsw,
        quantization: vec_quant,
    } = vector_params(vectors)?;
    let h = vec_hnsw.or(b.hnsw_config).unwrap_or_default();
    let defaults = HnswParams::default();
    let hnsw = HnswParams {
        m: h.m.unwrap_or(defaults.m),
        ef_construction: h.ef_construct.unwrap_or(defaults.ef_construction),
        ef_search: defaults.ef_search,
    };
    let quantization = quantization_of(vec_quant.or(b.quantization_config.as_ref()))?;
    scope
        .create_collection(CollectionSpec {
            name: c.clone(),
            dimension,
            metric,
            hnsw,
            quantization,
        })
        .await
        .map_err(strata_err(&c))?;
    let key = format!("{VECTOR_NAME_SETTING}{c}");
    let remembered = if name.is_empty() {
        match scope.delete_config_value(&key).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    } else {
        scope.set_config_value(&key, Value::String(name)).await
    };
    if let Err(e) = remembered {
        // Without its name the collection would answer wrongly: undo.
        let _ = scope.drop_collection(&c).await;
        return Err(QError::from_strata(e, &c));
    }
    Ok(ok(t, true))
}

pub async fn delete_collection(
    QScope(scope): QScope,
    Path(c): Path<String>,
) -> Result<Response, QError> {
    let t = Instant::now();
    let existed = match scope.drop_collection(&c).await {
        Ok(()) => true,
        Err(e)
            if e.kind() == ErrorKind::NotFound
                || matches!(
                    e.code(),
                    "invalid_collection_name" | "reserved_collection_name"
                ) =>
        {
            false
        }
        Err(e) => return Err(QError::from_strata(e, &c)),
    };
    // Dropping the collection forgot its vector name too.
    Ok(ok(t, existed))
}

#[derive(Deserialize)]
struct IndexBody {
    field_name: String,
    field_schema: Option<Value>,
}

pub async fn create_index(
    QScope(scope): QScope,
    Path(c): Path<String>,
    uri: Uri,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: IndexBody = body.parse()?;
    let schema = b.field_schema.unwrap_or(Value::Null);
    let kind = match &schema {
        Value::String(s) => s.as_str(),
        Value::Object(m) => m.get("type").and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    let field_type = match kind {
        "keyword" | "uuid" => FieldType::Keyword,
        "integer" => FieldType::Integer,
        "float" => FieldType::Float,
        "bool" => FieldType::Bool,
        "datetime" => FieldType::Datetime,
        "text" => return Err(QError::unsupported("full-text payload indexes")),
        "geo" => return Err(QError::unsupported("geo payload indexes")),
        "" => {
            return Err(QError::wrong_input(
                "field_schema is required (keyword, integer, float, bool, datetime or uuid)",
            ))
        }
        other => {
            return Err(QError::format(format!(
                "unknown variant `{other}`, expected one of `keyword`, `integer`, `float`, `geo`, `text`, `bool`, `datetime`, `uuid`"
            )))
        }
    };
    let field = b.field_name.replace("[]", "");
    let exists = scope
        .get_collection(&c)
        .await
        .map_err(|e| not_found_as(e, &c))?
        .indexes
        .iter()
        .any(|i| i.field == field && i.field_type == field_type);
    if !exists {
        scope
            .create_payload_index(&c, &field, field_type)
            .await
            .map_err(strata_err(&c))?;
    }
    Ok(update_result(t, &uri))
}

pub async fn unsupported_update_collection(_: QScope) -> QError {
    QError::unsupported("updating a collection's parameters")
}

pub async fn unsupported_aliases(_: QScope) -> QError {
    QError::unsupported("collection aliases")
}

pub async fn unsupported_recommend(_: QScope) -> QError {
    QError::unsupported("recommend")
}

pub async fn unsupported_discover(_: QScope) -> QError {
    QError::unsupported("discovery")
}

pub async fn unsupported_groups(_: QScope) -> QError {
    QError::unsupported("grouped search")
}

pub async fn unsupported_vectors(_: QScope) -> QError {
    QError::unsupported("updating or deleting named vectors")
}

pub async fn unsupported_snapshots(_: QScope) -> QError {
    QError::unsupported("snapshots")
}

pub async fn unsupported_shards(_: QScope) -> QError {
    QError::unsupported("shard keys")
}

pub async fn unsupported_cluster(_: QScope) -> QError {
    QError::unsupported("cluster operations")
}

// ------------------------------------------------------------------- points

/// A point's vector as sent: a list, or `{name: list}`.
fn vector_of(v: JsonIn, what: &str) -> Result<(String, Vec<f32>), QError> {
    let v = match v {
        JsonIn::Floats(f) => return Ok((String::new(), f)),
        JsonIn::Other(v) => v,
    };
    match &v {
        Value::Array(items) => Ok((String::new(), floats(items)?)),
        Value::Object(m) => {
            let mut it = m.iter();
            match (it.next(), it.next()) {
                (Some((name, Value::Array(items))), None) => Ok((name.clone(), floats(items)?)),
                (Some((_, other)), None) if other.get("indices").is_some() => {
                    Err(QError::unsupported("sparse vectors"))
                }
                (Some((_, Value::Object(_))), None) => {
                    Err(QError::unsupported("documents and images to embed"))
                }
                (Some((_, _)), None) => Err(QError::format(format!("{what} is not a vector"))),
                (None, _) => Err(QError::wrong_input(format!("{what} has no vector"))),
                (Some(_), Some(_)) => Err(QError::unsupported("more than one vector per point")),
            }
        }
        _ => Err(QError::format(format!("{what} is not a vector"))),
    }
}

fn floats(items: &[Value]) -> Result<Vec<f32>, QError> {
    items
        .iter()
        .map(|x| match x {
            Value::Number(n) => n
                .as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| QError::format("a vector holds numbers")),
            Value::Array(_) => Err(QError::unsupported("multivectors")),
            _ => Err(QError::format("a vector holds numbers")),
        })
        .collect()
}

fn payload_of(p: Option<Value>) -> Result<Option<Value>, QError> {
    match p {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(QError::format("a payload is an object")),
    }
}

#[derive(Deserialize)]
struct UpsertBody {
    points: Option<Vec<PointBody>>,
    batch: Option<BatchBody>,
    shard_key: Option<Value>,
}

#[derive(Deserialize)]
struct PointBody {
    id: Value,
    vector: JsonIn,
    payload: Option<Value>,
}

#[derive(Deserialize)]
struct BatchBody {
    ids: Vec<Value>,
    vectors: Value,
    payloads: Option<Vec<Value>>,
}

pub async fn upsert(
    QScope(scope): QScope,
    Path(c): Path<String>,
    uri: Uri,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: UpsertBody = body.parse()?;
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    let mut names: Vec<String> = Vec::new();
    let mut points = Vec::new();
    match (b.points, b.batch) {
        (Some(ps), None) => {
            points.reserve(ps.len());
            for (i, p) in ps.into_iter().enumerate() {
                let id = parse_id(&p.id)?;
                let (name, vector) = vector_of(p.vector, &format!("points[{i}].vector"))?;
                if !names.contains(&name) {
                    names.push(name);
                }
                points.push(PointInput {
                    id,
                    vector,
                    payload: payload_of(p.payload)?,
                    ttl_seconds: None,
                });
            }
        }
        (None, Some(batch)) => {
            let (name, vectors): (String, &Vec<Value>) = match &batch.vectors {
                Value::Array(v) => (String::new(), v),
                Value::Object(m) if m.len() == 1 => match m.iter().next() {
                    Some((n, Value::Array(v))) => (n.clone(), v),
                    _ => return Err(QError::format("batch.vectors is a list of vectors")),
                },
                Value::Object(m) if m.len() > 1 => {
                    return Err(QError::unsupported("more than one vector per point"))
                }
                _ => return Err(QError::format("batch.vectors is a list of vectors")),
            };
            if vectors.len() != batch.ids.len()
                || batch
                    .payloads
                    .as_ref()
                    .is_some_and(|p| p.len() != batch.ids.len())
            {
                return Err(QError::wrong_input(
                    "batch.ids, batch.vectors and batch.payloads must have the same length",
                ));
            }
            names.push(name);
            let mut payloads = batch.payloads.map(Vec::into_iter);
            for (id, v) in batch.ids.iter().zip(vectors) {
                let vector = match v {
                    Value::Array(items) => floats(items)?,
                    _ => return Err(QError::format("batch.vectors is a list of vectors")),
                };
                points.push(PointInput {
                    id: parse_id(id)?,
                    vector,
                    payload: payload_of(payloads.as_mut().and_then(Iterator::next))?,
                    ttl_seconds: None,
                });
            }
        }
        _ => {
            return Err(QError::format(
                "the body has either points: [...] or batch: {ids, vectors, payloads}",
            ))
        }
    }
    for n in &names {
        check_vector_name(&scope, &c, n).await?;
    }
    if !points.is_empty() {
        scope
            .upsert_points(&c, points)
            .await
            .map_err(strata_err(&c))?;
    } else {
        scope
            .get_collection(&c)
            .await
            .map_err(|e| not_found_as(e, &c))?;
    }
    Ok(update_result(t, &uri))
}

/// Which payload keys to return.
enum PayloadSel {
    None,
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

fn payload_sel(v: Option<&Value>, default: bool) -> Result<PayloadSel, QError> {
    let strings = |v: &Value| -> Result<Vec<String>, QError> {
        v.as_array()
            .ok_or_else(|| QError::format("with_payload lists keys"))?
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| QError::format("with_payload lists keys"))
            })
            .collect()
    };
    Ok(match v {
        None | Some(Value::Null) => {
            if default {
                PayloadSel::All
            } else {
                PayloadSel::None
            }
        }
        Some(Value::Bool(true)) => PayloadSel::All,
        Some(Value::Bool(false)) => PayloadSel::None,
        Some(a @ Value::Array(_)) => PayloadSel::Include(strings(a)?),
        Some(Value::Object(m)) => {
            if let Some(i) = m.get("include") {
                PayloadSel::Include(strings(i)?)
            } else if let Some(e) = m.get("exclude") {
                PayloadSel::Exclude(strings(e)?)
            } else {
                return Err(QError::format(
                    "with_payload is a bool, a list of keys, {include} or {exclude}",
                ));
            }
        }
        Some(other) => return Err(QError::format(format!("with_payload: unexpected {other}"))),
    })
}

/// The value at a dot path, for `include`.
fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            if let Some(v) = from.get(path) {
                to.insert(path.to_owned(), v.clone());
            }
        }
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = from.get(head) {
                let slot = to
                    .entry(head.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(out) = slot {
                    copy_path(inner, out, rest);
                }
            }
        }
    }
}

fn remove_path(m: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            m.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = m.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

impl PayloadSel {
    fn wanted(&self) -> bool {
        !matches!(self, PayloadSel::None)
    }

    /// The payload to return (`{}` for a point without one).
    fn apply(&self, p: Option<Value>) -> Option<Value> {
        let m = match p {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        match self {
            PayloadSel::None => None,
            PayloadSel::All => Some(Value::Object(m)),
            PayloadSel::Include(keys) => {
                let mut out = Map::new();
                for k in keys {
                    copy_path(&m, &mut out, k);
                }
                Some(Value::Object(out))
            }
            PayloadSel::Exclude(keys) => {
                let mut m = m;
                for k in keys {
                    remove_path(&mut m, k);
                }
                Some(Value::Object(m))
            }
        }
    }
}

/// Whether vectors are asked for (`true` or a list of names).
fn vector_sel(v: Option<&Value>, default: bool) -> Result<Option<Vec<String>>, QError> {
    match v {
        None | Some(Value::Null) => Ok(default.then(Vec::new)),
        Some(Value::Bool(b)) => Ok(b.then(Vec::new)),
        Some(Value::Array(names)) => Ok(Some(
            names
                .iter()
                .map(|n| n.as_str().unwrap_or_default().to_owned())
                .collect(),
        )),
        Some(other) => Err(QError::format(format!("with_vector: unexpected {other}"))),
    }
}

/// A point's vector as Qdrant writes it: a list for the unnamed vector,
/// `{name: list}` for a named one.
#[derive(Serialize)]
#[serde(untagged)]
enum OutVector {
    Plain(Vec<f32>),
    Named(BTreeMap<String, Vec<f32>>),
}

/// How the asked-for vectors come out.
struct VectorOut {
    name: String,
    /// Names were asked for and the collection's is not among them.
    none: bool,
}

async fn vector_out(
    scope: &BotScope,
    c: &str,
    sel: &Option<Vec<String>>,
) -> Result<Option<VectorOut>, QError> {
    let Some(names) = sel else { return Ok(None) };
    let name = vector_name(scope, c).await?;
    let none = !names.is_empty() && !names.iter().any(|n| *n == name || n.is_empty());
    Ok(Some(VectorOut { name, none }))
}

impl VectorOut {
    fn shape(&self, v: Option<Vec<f32>>) -> Option<OutVector> {
        let v = v?;
        if self.none {
            return Some(OutVector::Named(BTreeMap::new()));
        }
        Some(if self.name.is_empty() {
            OutVector::Plain(v)
        } else {
            OutVector::Named(BTreeMap::from([(self.name.clone(), v)]))
        })
    }
}

/// A Record (retrieve, scroll) or ScoredPoint (query, search).
#[derive(Serialize)]
struct OutPoint {
    id: OutId,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<OutVector>,
}

fn record(p: Point, payload: &PayloadSel, vectors: &Option<VectorOut>) -> OutPoint {
    OutPoint {
        id: OutId(p.id),
        version: None,
        score: None,
        payload: payload.apply(p.payload),
        vector: vectors.as_ref().and_then(|o| o.shape(p.vector)),
    }
}

fn scored(p: ScoredPoint, payload: &PayloadSel, vectors: &Option<VectorOut>) -> OutPoint {
    OutPoint {
        id: OutId(p.id),
        // Strata keeps no per-point operation number.
        version: Some(0),
        score: Some(p.score),
        payload: payload.apply(p.payload),
        vector: vectors.as_ref().and_then(|o| o.shape(p.vector)),
    }
}

#[derive(Deserialize)]
struct RetrieveBody {
    ids: Value,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    shard_key: Option<Value>,
}

pub async fn retrieve(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: RetrieveBody = body.parse()?;
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    let ids = parse_ids(&b.ids)?;
    if ids.len() > MAX_SCROLL {
        return Err(QError::wrong_input(format!(
            "a retrieve names at most {MAX_SCROLL} ids, got {}",
            ids.len()
        )));
    }
    let payload = payload_sel(b.with_payload.as_ref(), true)?;
    let vsel = vector_sel(b.with_vector.as_ref(), false)?;
    let vectors = vector_out(&scope, &c, &vsel).await?;
    let mut out = Vec::with_capacity(ids.len());
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            continue;
        }
        match scope.get_point(&c, &id, vsel.is_some()).await {
            Ok(p) => out.push(record(p, &payload, &vectors)),
            Err(e) if e.code() == "point_not_found" => {}
            Err(e) => return Err(not_found_as(e, &c)),
        }
    }
    Ok(ok(t, out))
}

pub async fn get_point(
    QScope(scope): QScope,
    Path((c, id)): Path<(String, String)>,
) -> Result<Response, QError> {
    let t = Instant::now();
    let id = parse_path_id(&id)?;
    let vsel = Some(Vec::new());
    let vectors = vector_out(&scope, &c, &vsel).await?;
    let p = scope
        .get_point(&c, &id, true)
        .await
        .map_err(|e| not_found_as(e, &c))?;
    Ok(ok(t, record(p, &PayloadSel::All, &vectors)))
}

// ------------------------------------------------------------------ search

/// One query of `points/query` (also a sub-request of `query/batch`).
#[derive(Deserialize, Default)]
struct QueryBody {
    query: Option<JsonIn>,
    using: Option<String>,
    filter: Option<Value>,
    score_threshold: Option<f32>,
    limit: Option<usize>,
    offset: Option<usize>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    params: Option<SearchParamsBody>,
    prefetch: Option<Value>,
    lookup_from: Option<Value>,
    shard_key: Option<Value>,
}

/// `params` as sent (`quantization` and other fields are ignored).
#[derive(Deserialize, Default, Clone)]
struct SearchParamsBody {
    hnsw_ef: Option<usize>,
    exact: Option<bool>,
}

/// What a query asks the engine for.
enum Nearest {
    Vector(Vec<f32>),
    Point(PointId),
    /// No query: points in id order.
    None,
}

fn nearest_of(q: Option<JsonIn>) -> Result<Nearest, QError> {
    match q {
        None => Ok(Nearest::None),
        Some(JsonIn::Floats(v)) => Ok(Nearest::Vector(v)),
        Some(JsonIn::Other(v)) => nearest_of_value(&v),
    }
}

fn nearest_of_value(q: &Value) -> Result<Nearest, QError> {
    match q {
        Value::Null => Ok(Nearest::None),
        Value::Array(items) => {
            if items.first().is_some_and(Value::is_array) {
                return Err(QError::unsupported("multivector queries"));
            }
            Ok(Nearest::Vector(floats(items)?))
        }
        Value::Number(_) | Value::String(_) => Ok(Nearest::Point(parse_id(q)?)),
        Value::Object(m) => {
            if let Some(n) = m.get("nearest") {
                if m.get("mmr").is_some_and(|x| !x.is_null()) {
                    return Err(QError::unsupported(
                        "MMR (maximal marginal relevance) queries",
                    ));
                }
                if n.get("indices").is_some() {
                    return Err(QError::unsupported("sparse vectors"));
                }
                if n.is_object() {
                    return Err(QError::unsupported("documents and images to embed"));
                }
                return nearest_of_value(n);
            }
            if m.contains_key("indices") {
                return Err(QError::unsupported("sparse vectors"));
            }
            let kind = m.keys().next().map(String::as_str).unwrap_or("");
            Err(match kind {
                "recommend" => QError::unsupported("recommend"),
                "discover" | "context" => QError::unsupported("discovery"),
                "fusion" | "rrf" => QError::unsupported("hybrid fusion"),
                "order_by" => QError::unsupported("order_by"),
                "sample" => QError::unsupported("random sampling"),
                "formula" => QError::unsupported("score formulas"),
                _ => QError::format(format!("unknown query {q}")),
            })
        }
        _ => Err(QError::format(format!("unknown query {q}"))),
    }
}

/// Runs one query; the points, best first.
async fn run_query(scope: &BotScope, c: &str, b: QueryBody) -> Result<Vec<OutPoint>, QError> {
    if b.prefetch
        .as_ref()
        .is_some_and(|p| !p.is_null() && p.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(QError::unsupported("prefetch"));
    }
    if b.lookup_from.as_ref().is_some_and(|l| !l.is_null()) {
        return Err(QError::unsupported("lookup_from"));
    }
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    if let Some(u) = &b.using {
        check_vector_name(scope, c, u).await?;
    }
    let nearest = nearest_of(b.query)?;
    let payload = payload_sel(b.with_payload.as_ref(), false)?;
    let vsel = vector_sel(b.with_vector.as_ref(), false)?;
    let limit = b.limit.unwrap_or(10);
    let offset = b.offset.unwrap_or(0);
    let mut filter = parse_filter(b.filter.as_ref())?;
    let vector = match nearest {
        Nearest::Vector(v) => v,
        Nearest::Point(id) => {
            let p = scope
                .get_point(c, &id, true)
                .await
                .map_err(|e| not_found_as(e, c))?;
            // The query point itself is left out, as Qdrant does.
            filter
                .get_or_insert_with(Filter::default)
                .must_not
                .push(Condition::HasId(vec![id]));
            p.vector.unwrap_or_default()
        }
        Nearest::None => {
            // A query without `query` pages through the points in id
            // order: bounded like a scroll page.
            let end = offset.saturating_add(limit);
            if end > MAX_SCROLL {
                return Err(QError::wrong_input(format!(
                    "limit + offset is at most {MAX_SCROLL} without a query, got {end}"
                )));
            }
            let vectors = vector_out(scope, c, &vsel).await?;
            let points = scroll_points(scope, c, filter, None, end, vsel.is_some())
                .await?
                .0;
            return Ok(points
                .into_iter()
                .skip(offset)
                .map(|p| {
                    let mut o = record(p, &payload, &vectors);
                    o.version = Some(0);
                    o.score = Some(0.0);
                    o
                })
                .collect());
        }
    };
    let params = b.params.unwrap_or_default();
    search_points(
        scope,
        c,
        vector,
        filter,
        limit,
        offset,
        b.score_threshold,
        params,
        payload,
        vsel,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn search_points(
    scope: &BotScope,
    c: &str,
    vector: Vec<f32>,
    filter: Option<Filter>,
    limit: usize,
    offset: usize,
    score_threshold: Option<f32>,
    params: SearchParamsBody,
    payload: PayloadSel,
    vsel: Option<Vec<String>>,
) -> Result<Vec<OutPoint>, QError> {
    if limit == 0 {
        scope
            .get_collection(c)
            .await
            .map_err(|e| not_found_as(e, c))?;
        return Ok(Vec::new());
    }
    let k = limit.saturating_add(offset);
    if k > MAX_K {
        return Err(QError::wrong_input(format!(
            "limit + offset is at most {MAX_K}, got {k}"
        )));
    }
    let vectors = vector_out(scope, c, &vsel).await?;
    // `exact` searches with the widest candidate list the engine allows.
    let ef = if params.exact == Some(true) {
        Some(strata::vectors::MAX_EF)
    } else {
        params
            .hnsw_ef
            .map(|ef| ef.clamp(1, strata::vectors::MAX_EF))
    };
    let found = scope
        .search_points(
            c,
            SearchRequest {
                vector,
                k,
                filter,
                ef,
                score_threshold,
                with_payload: payload.wanted(),
                with_vector: vsel.is_some(),
            },
        )
        .await
        .map_err(|e| not_found_as(e, c))?;
    Ok(found
        .into_iter()
        .skip(offset)
        .map(|p| scored(p, &payload, &vectors))
        .collect())
}

pub async fn query(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: QueryBody = body.parse()?;
    let points = run_query(&scope, &c, b).await?;
    Ok(ok(t, json!({ "points": points })))
}

#[derive(Deserialize)]
struct BatchOf<T> {
    searches: Vec<T>,
}

pub async fn query_batch(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: BatchOf<QueryBody> = body.parse()?;
    check_batch_len(b.searches.len())?;
    let mut out = Vec::with_capacity(b.searches.len());
    for q in b.searches {
        out.push(json!({ "points": run_query(&scope, &c, q).await? }));
    }
    Ok(ok(t, out))
}

/// The legacy `points/search` body.
#[derive(Deserialize)]
struct SearchBody {
    vector: JsonIn,
    filter: Option<Value>,
    limit: Option<usize>,
    offset: Option<usize>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    score_threshold: Option<f32>,
    params: Option<SearchParamsBody>,
    shard_key: Option<Value>,
}

async fn run_search(scope: &BotScope, c: &str, b: SearchBody) -> Result<Vec<OutPoint>, QError> {
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    let (name, vector) = match b.vector {
        JsonIn::Other(Value::Object(m)) if m.contains_key("vector") => {
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            match m.get("vector") {
                Some(Value::Array(items)) => (name, floats(items)?),
                Some(v) if v.get("indices").is_some() => {
                    return Err(QError::unsupported("sparse vectors"))
                }
                _ => return Err(QError::format("vector is a list of numbers")),
            }
        }
        other => vector_of(other, "vector")?,
    };
    check_vector_name(scope, c, &name).await?;
    search_points(
        scope,
        c,
        vector,
        parse_filter(b.filter.as_ref())?,
        b.limit.unwrap_or(10),
        b.offset.unwrap_or(0),
        b.score_threshold,
        b.params.unwrap_or_default(),
        payload_sel(b.with_payload.as_ref(), false)?,
        vector_sel(b.with_vector.as_ref(), false)?,
    )
    .await
}

pub async fn search(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: SearchBody = body.parse()?;
    Ok(ok(t, run_search(&scope, &c, b).await?))
}

pub async fn search_batch(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: BatchOf<SearchBody> = body.parse()?;
    check_batch_len(b.searches.len())?;
    let mut out = Vec::with_capacity(b.searches.len());
    for s in b.searches {
        out.push(run_search(&scope, &c, s).await?);
    }
    Ok(ok(t, out))
}

// ------------------------------------------------------- scroll and count

/// Up to `limit` points from `from` (inclusive) in id order, and the id of
/// the next one.
async fn scroll_points(
    scope: &BotScope,
    c: &str,
    filter: Option<Filter>,
    from: Option<PointId>,
    limit: usize,
    with_vector: bool,
) -> Result<(Vec<Point>, Option<PointId>), QError> {
    let page_max = strata::MAX_LIMIT as usize;
    let mut out: Vec<Point> = Vec::with_capacity(limit.min(page_max) + 1);
    let mut from = from;
    let mut after: Option<PointId> = None;
    loop {
        let want = limit
            .saturating_add(1)
            .saturating_sub(out.len())
            .min(page_max);
        let page = scope
            .scroll_points(
                c,
                ScrollRequest {
                    filter: filter.clone(),
                    limit: want,
                    after: after.take(),
                    from: from.take(),
                    with_vector,
                },
            )
            .await
            .map_err(|e| not_found_as(e, c))?;
        out.extend(page.points);
        match page.next {
            Some(n) if out.len() <= limit => after = Some(n),
            _ => break,
        }
    }
    let next = if out.len() > limit {
        out.pop().map(|p| p.id)
    } else {
        None
    };
    Ok((out, next))
}

#[derive(Deserialize, Default)]
struct ScrollBody {
    offset: Option<Value>,
    limit: Option<usize>,
    filter: Option<Value>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    order_by: Option<Value>,
    shard_key: Option<Value>,
}

/// Most points of one scroll page (and of one retrieve, and of a query
/// without `query`).
const MAX_SCROLL: usize = 10_000;

/// A batch of searches holds at most as many as the native batch search.
fn check_batch_len(n: usize) -> Result<(), QError> {
    if n > strata::vectors::MAX_SEARCH_BATCH {
        return Err(QError::wrong_input(format!(
            "a batch holds at most {} searches, got {n}",
            strata::vectors::MAX_SEARCH_BATCH
        )));
    }
    Ok(())
}

pub async fn scroll(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: ScrollBody = body.parse_or_default()?;
    if b.order_by.as_ref().is_some_and(|o| !o.is_null()) {
        return Err(QError::unsupported("order_by"));
    }
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    let limit = b.limit.unwrap_or(10);
    if limit > MAX_SCROLL {
        return Err(QError::wrong_input(format!(
            "limit is at most {MAX_SCROLL}, got {limit}"
        )));
    }
    let from = match b.offset.as_ref().filter(|o| !o.is_null()) {
        Some(o) => Some(parse_id(o)?),
        None => None,
    };
    let filter = parse_filter(b.filter.as_ref())?;
    let payload = payload_sel(b.with_payload.as_ref(), true)?;
    let vsel = vector_sel(b.with_vector.as_ref(), false)?;
    let vectors = vector_out(&scope, &c, &vsel).await?;
    let (points, next) = if limit == 0 {
        scope
            .get_collection(&c)
            .await
            .map_err(|e| not_found_as(e, &c))?;
        (Vec::new(), None)
    } else {
        scroll_points(&scope, &c, filter, from, limit, vsel.is_some()).await?
    };
    let points: Vec<OutPoint> = points
        .into_iter()
        .map(|p| record(p, &payload, &vectors))
        .collect();
    Ok(ok(
        t,
        json!({"points": points, "next_page_offset": next.map(OutId)}),
    ))
}

#[derive(Deserialize, Default)]
struct CountBody {
    filter: Option<Value>,
    #[allow(dead_code)]
    exact: Option<bool>,
    shard_key: Option<Value>,
}

pub async fn count(
    QScope(scope): QScope,
    Path(c): Path<String>,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: CountBody = body.parse_or_default()?;
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    let filter = parse_filter(b.filter.as_ref())?;
    let n = scope
        .count_points(&c, filter)
        .await
        .map_err(|e| not_found_as(e, &c))?;
    Ok(ok(t, json!({ "count": n })))
}

// ------------------------------------------------------ deletes, payloads

/// `points: [ids]` or `filter: {…}` (also `points: {filter}`, the other
/// spelling of a filter selector).
fn selector(points: Option<&Value>, filter: Option<&Value>) -> Result<PointSelector, QError> {
    match (
        points.filter(|p| !p.is_null()),
        filter.filter(|f| !f.is_null()),
    ) {
        (Some(Value::Array(_)), None) => Ok(PointSelector::Ids(parse_ids(
            points.unwrap_or(&Value::Null),
        )?)),
        (Some(Value::Object(m)), None) if m.contains_key("filter") => Ok(PointSelector::Filter(
            parse_filter(m.get("filter"))?.unwrap_or_default(),
        )),
        (None, Some(f)) => Ok(PointSelector::Filter(
            parse_filter(Some(f))?.unwrap_or_default(),
        )),
        _ => Err(QError::format(
            "select points with either points: [ids] or filter: {…}",
        )),
    }
}

#[derive(Deserialize)]
struct DeleteBody {
    points: Option<Value>,
    filter: Option<Value>,
    shard_key: Option<Value>,
}

pub async fn delete_points(
    QScope(scope): QScope,
    Path(c): Path<String>,
    uri: Uri,
    body: QBody,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: DeleteBody = body.parse()?;
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    let sel = selector(b.points.as_ref(), b.filter.as_ref())?;
    scope
        .delete_points(&c, sel)
        .await
        .map_err(|e| not_found_as(e, &c))?;
    Ok(update_result(t, &uri))
}

#[derive(Deserialize)]
struct PayloadBody {
    payload: Map<String, Value>,
    points: Option<Value>,
    filter: Option<Value>,
    key: Option<String>,
    shard_key: Option<Value>,
}

async fn update_payload(
    scope: BotScope,
    c: String,
    uri: Uri,
    body: QBody,
    mode: PayloadUpdate,
) -> Result<Response, QError> {
    let t = Instant::now();
    let b: PayloadBody = body.parse()?;
    if b.shard_key.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(QError::unsupported("shard keys"));
    }
    let sel = selector(b.points.as_ref(), b.filter.as_ref())?;
    scope
        .update_payload(&c, sel, b.payload, b.key.as_deref(), mode)
        .await
        .map_err(|e| not_found_as(e, &c))?;
    Ok(update_result(t, &uri))
}

pub async fn set_payload(
    QScope(scope): QScope,
    Path(c): Path<String>,
    uri: Uri,
    body: QBody,
) -> Result<Response, QError> {
    update_payload(scope, c, uri, body, PayloadUpdate::Merge).await
}

pub async fn overwrite_payload(
    QScope(scope): QScope,
    Path(c): Path<String>,
    uri: Uri,
    body: QBody,
) -> Result<Response, QError> {
    update_payload(scope, c, uri, body, PayloadUpdate::Replace).await
}
