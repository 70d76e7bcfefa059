//! The vectors layer through the facade: every [`VectorStore`] operation
//! inside one bot, with its role check, validation and the bot's quota, plus
//! a portable export and import.
//!
//! Roles: reads (get, list, search, scroll, count, export) need a reader;
//! point writes (upsert, delete, import into an existing collection) a
//! writer; creating and dropping collections and declaring payload indexes
//! change the bot's structure and need the bot's admin, like its
//! configuration (they are audited too).
//!
//! Quotas: `STRATA_VECTOR_MAX_COLLECTIONS` and `STRATA_VECTOR_MAX_POINTS`,
//! overridden per bot by the settings `vectors.max_collections` and
//! `vectors.max_points` in the bot's configuration.
//!
//! Export format (NDJSON): the first line is [`ExportHeader`]
//! (`{"collection": {name, dimension, metric, hnsw, quantization, indexes}}`),
//! then one [`ExportedPoint`] per live point (`{"id", "vector", "payload"?,
//! "expires_at"?}`). [`BotScope::import_vectors`] reads the same format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use strata_core::filter::{Bound, Condition, Filter, MatchValue, Range};
pub use strata_core::vectors::*;

use strata_core::types::Role;
use strata_core::{Error, ErrorKind, Result, Timestamp};

use crate::scope::{ttl_from_seconds, BotScope};

/// Most searches in one batch.
pub const MAX_SEARCH_BATCH: usize = 100;
/// Prefix of the bot setting that keeps the name of a collection's one
/// vector when the Qdrant-compatible API created it with a name
/// (`{"vectors": {"dense": {…}}}`), followed by the collection's name.
/// Replacing a bot's whole configuration keeps these settings (they
/// describe collections, not the bot), and dropping a collection removes
/// its own.
pub const VECTOR_NAME_SETTING: &str = "qdrant.vector_name.";
/// Points per upsert while importing.
pub const IMPORT_BATCH: usize = 500;
/// Points per page while exporting.
pub const EXPORT_PAGE: usize = 256;
/// Longest payload field name of an index, in characters.
pub const MAX_FIELD_LEN: usize = 255;
/// Largest `ef` of a search.
pub const MAX_EF: usize = 4096;

/// The first line of an export: what the collection is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportHeader {
    pub collection: ExportedCollection,
}

/// A collection's definition, as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedCollection {
    pub name: String,
    pub dimension: usize,
    #[serde(default)]
    pub metric: Metric,
    #[serde(default)]
    pub hnsw: HnswParams,
    #[serde(default)]
    pub quantization: Quantization,
    #[serde(default)]
    pub indexes: Vec<PayloadIndexInfo>,
}

impl From<&CollectionInfo> for ExportedCollection {
    fn from(c: &CollectionInfo) -> Self {
        ExportedCollection {
            name: c.name.clone(),
            dimension: c.dimension,
            metric: c.metric,
            hnsw: c.hnsw,
            quantization: c.quantization,
            indexes: c.indexes.clone(),
        }
    }
}

/// One point of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedPoint {
    pub id: PointId,
    pub vector: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

impl ExportedPoint {
    /// The upsert of this point at `now`; `None` when it has expired. An
    /// expiry further ahead than the longest TTL (ten years) is brought
    /// down to it: any RFC 3339 time is a valid `expires_at`.
    pub fn into_input(self, now: Timestamp) -> Option<PointInput> {
        let ttl_seconds = match self.expires_at {
            None => None,
            Some(at) => {
                let left_ms = at.as_millis().saturating_sub(now.as_millis());
                if left_ms <= 0 {
                    return None;
                }
                let max = strata_core::kv::MAX_TTL.as_secs() as i64;
                Some(((left_ms + 999) / 1000).min(max))
            }
        };
        Some(PointInput {
            id: self.id,
            vector: self.vector,
            payload: self.payload,
            ttl_seconds,
        })
    }
}

/// An export in progress: the header, then pages of points in id order.
#[derive(Debug)]
pub struct VectorExport {
    scope: BotScope,
    info: CollectionInfo,
    after: Option<PointId>,
    done: bool,
}

impl VectorExport {
    /// The collection being exported (as it was when the export began).
    pub fn collection(&self) -> &CollectionInfo {
        &self.info
    }

    /// The first line of the export.
    pub fn header(&self) -> ExportHeader {
        ExportHeader {
            collection: ExportedCollection::from(&self.info),
        }
    }

    /// The next page of live points with their vectors and payloads;
    /// `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ExportedPoint>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .scope
            .scroll_points(
                &self.info.name,
                ScrollRequest {
                    from: None,
                    filter: None,
                    limit: EXPORT_PAGE,
                    after: self.after.take(),
                    with_vector: true,
                },
            )
            .await?;
        self.after = page.next;
        self.done = self.after.is_none();
        if page.points.is_empty() && self.done {
            return Ok(None);
        }
        let points = page
            .points
            .into_iter()
            .map(|p| {
                let vector = p.vector.ok_or_else(|| {
                    Error::internal(format!("point {} came back without its vector", p.id))
                })?;
                Ok(ExportedPoint {
                    id: p.id,
                    vector,
                    payload: p.payload,
                    expires_at: p.expires_at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(points))
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    /// Points upserted.
    pub imported: u64,
    /// Points left out because they had expired.
    pub expired: u64,
    /// Whether the import created the collection.
    pub created: bool,
}

/// An import in progress: points are validated as they come and upserted
/// in batches of [`IMPORT_BATCH`]. Not atomic: batches written before a
/// failure stay (every write is an upsert, so running the import again is
/// safe).
#[derive(Debug)]
pub struct VectorImport {
    scope: BotScope,
    info: CollectionInfo,
    pending: Vec<PointInput>,
    /// Label (line number) of the first pending point.
    pending_from: Option<usize>,
    pending_to: usize,
    summary: ImportSummary,
    now: Timestamp,
}

impl VectorImport {
    /// The target collection.
    pub fn collection(&self) -> &CollectionInfo {
        &self.info
    }

    /// Adds one point; `line` names it in errors. Writes a batch when one
    /// is full.
    pub async fn push(&mut self, line: usize, point: ExportedPoint) -> Result<()> {
        let at = |e: Error| relabel(e, &format!("line {line}"));
        point.id.validate().map_err(at)?;
        validate_vector(&point.vector, self.info.dimension, self.info.metric).map_err(at)?;
        let mut point = point;
        point.payload = normalise_payload(point.payload).map_err(at)?;
        let Some(input) = point.into_input(self.now) else {
            self.summary.expired += 1;
            return Ok(());
        };
        self.pending_from.get_or_insert(line);
        self.pending_to = line;
        self.pending.push(input);
        if self.pending.len() >= IMPORT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let from = self.pending_from.take().unwrap_or(0);
        let n = self
            .scope
            .upsert_points(&self.info.name, batch)
            .await
            .map_err(|e| relabel(e, &format!("lines {from}-{}", self.pending_to)))?;
        self.summary.imported += n;
        Ok(())
    }

    /// Writes what is left and reports.
    pub async fn finish(mut self) -> Result<ImportSummary> {
        self.flush().await?;
        Ok(self.summary)
    }
}

/// How [`BotScope::update_payload`] changes a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadUpdate {
    /// Set the given keys, keep the others.
    Merge,
    /// The given object becomes the whole payload (or the whole object at
    /// the key).
    Replace,
}

/// `old` changed by `update` at the dot path `key` (the top level when
/// `None`).
fn apply_payload(
    old: Option<Value>,
    update: &serde_json::Map<String, Value>,
    key: Option<&str>,
    mode: PayloadUpdate,
) -> Value {
    let mut root = match old {
        Some(Value::Object(m)) => Value::Object(m),
        _ => Value::Object(serde_json::Map::new()),
    };
    let mut target = &mut root;
    if let Some(path) = key {
        for part in path.split('.') {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            let Value::Object(m) = target else { break };
            target = m
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
    }
    if mode == PayloadUpdate::Replace || !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(m) = target {
        for (k, v) in update {
            m.insert(k.clone(), v.clone());
        }
    }
    root
}

/// `e` with its message prefixed by `prefix`, keeping its kind and code.
pub fn relabel(e: Error, prefix: &str) -> Error {
    let code = static_code(e.code(), e.kind());
    Error::new(e.kind(), format!("{prefix}: {}", e.message()))
        .with_code(code)
        .with_retryable(e.is_retryable())
}

/// The `'static` form of the codes this layer's validation gives.
fn static_code(code: &str, kind: ErrorKind) -> &'static str {
    const KNOWN: &[&str] = &[
        "dimension_mismatch",
        "invalid_vector",
        "zero_vector",
        "invalid_point_id",
        "invalid_payload",
        "invalid_ttl",
        "invalid_filter",
        "invalid_collection_name",
        "reserved_collection_name",
        "invalid_dimension",
        "invalid_hnsw",
        "invalid_metric",
        "invalid_quantization",
        "invalid_index_type",
        "invalid_field",
        "invalid_k",
        "invalid_ef",
        "invalid_score_threshold",
        "batch_too_large",
        "quota_exceeded",
        "collection_mismatch",
        "collection_not_found",
        "collection_exists",
        "point_not_found",
    ];
    KNOWN
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or_else(|| kind.default_code())
}

fn invalid_vector() -> Error {
    Error::invalid("vector holds NaN or infinite values").with_code("invalid_vector")
}

/// Rejects NaN and infinities (JSON numbers too large for f32 arrive as
/// infinity) before they reach the engine.
fn check_finite(v: &[f32]) -> Result<()> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(invalid_vector())
    }
}

/// A payload is a JSON object or nothing (`null` is nothing).
fn normalise_payload(p: Option<Value>) -> Result<Option<Value>> {
    match p {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => {
            Err(Error::invalid("payload must be a JSON object").with_code("invalid_payload"))
        }
    }
}

fn check_search(r: &SearchRequest) -> Result<()> {
    if r.k == 0 || r.k > MAX_K {
        return Err(
            Error::invalid(format!("k must be 1 to {MAX_K}, got {}", r.k)).with_code("invalid_k"),
        );
    }
    check_finite(&r.vector)?;
    if let Some(ef) = r.ef {
        if ef == 0 || ef > MAX_EF {
            return Err(
                Error::invalid(format!("ef must be 1 to {MAX_EF}, got {ef}"))
                    .with_code("invalid_ef"),
            );
        }
    }
    if matches!(r.score_threshold, Some(t) if !t.is_finite()) {
        return Err(Error::invalid("score_threshold must be a finite number")
            .with_code("invalid_score_threshold"));
    }
    Ok(())
}

fn check_field(field: &str) -> Result<()> {
    if field.is_empty()
        || field.chars().count() > MAX_FIELD_LEN
        || field.chars().any(|c| c.is_control())
        || field.split('.').any(str::is_empty)
    {
        return Err(Error::invalid(format!(
            "field {field:?} is invalid: use 1-{MAX_FIELD_LEN} characters of dot-separated names without control characters"
        ))
        .with_code("invalid_field"));
    }
    Ok(())
}

impl BotScope {
    /// The bot's vector quota: its `vectors.max_collections` and
    /// `vectors.max_points` settings, else the server's defaults.
    pub async fn vector_quota(&self) -> Result<VectorQuota> {
        let settings = self.records().get_config(self.bot_id()).await?;
        Ok(VectorQuota::from_settings(
            self.strata().default_vector_quota(),
            &settings,
        ))
    }

    fn vectors(&self) -> &dyn VectorStore {
        self.strata().vectors().as_ref()
    }

    /// Creates a collection (bot admin).
    pub async fn create_collection(&self, spec: CollectionSpec) -> Result<CollectionInfo> {
        self.need(Role::Admin)?;
        validate_collection_name(&spec.name)?;
        spec.validate()?;
        let quota = self.vector_quota().await?;
        let info = self
            .vectors()
            .create_collection(self.bot_id(), spec, quota)
            .await?;
        self.audit(
            "collection.create",
            &info.name,
            serde_json::json!({
                "dimension": info.dimension,
                "metric": info.metric.as_str(),
            }),
        )
        .await;
        Ok(info)
    }

    pub async fn list_collections(&self) -> Result<Vec<CollectionInfo>> {
        self.need(Role::Reader)?;
        let mut all = self.vectors().list_collections(self.bot_id()).await?;
        // The knowledge base's and memory's collections are Strata's own.
        all.retain(|c| !is_internal_collection(&c.name));
        Ok(all)
    }

    pub async fn get_collection(&self, name: &str) -> Result<CollectionInfo> {
        self.need(Role::Reader)?;
        validate_collection_name(name)?;
        self.vectors().get_collection(self.bot_id(), name).await
    }

    /// Drops a collection with all of its points (bot admin).
    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        self.need(Role::Admin)?;
        validate_collection_name(name)?;
        self.vectors().drop_collection(self.bot_id(), name).await?;
        // A later collection of the same name starts without the old one's
        // vector name, whichever API drops it.
        match self
            .records()
            .delete_config_value(self.bot_id(), &format!("{VECTOR_NAME_SETTING}{name}"))
            .await
        {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.audit("collection.drop", name, Value::Null).await;
        Ok(())
    }

    /// Declares a payload index (bot admin).
    pub async fn create_payload_index(
        &self,
        name: &str,
        field: &str,
        field_type: FieldType,
    ) -> Result<CollectionInfo> {
        self.need(Role::Admin)?;
        validate_collection_name(name)?;
        check_field(field)?;
        let info = self
            .vectors()
            .create_index(self.bot_id(), name, field, field_type)
            .await?;
        self.audit(
            "collection.index",
            name,
            serde_json::json!({ "field": field, "type": field_type.as_str() }),
        )
        .await;
        Ok(info)
    }

    /// Inserts or replaces points, all or nothing; durable on return.
    pub async fn upsert_points(&self, name: &str, points: Vec<PointInput>) -> Result<u64> {
        self.need(Role::Writer)?;
        validate_collection_name(name)?;
        if points.len() > MAX_BATCH {
            return Err(Error::invalid(format!(
                "a batch holds at most {MAX_BATCH} points, got {}",
                points.len()
            ))
            .with_code("batch_too_large"));
        }
        let mut points = points;
        for (i, p) in points.iter_mut().enumerate() {
            let at = |e: Error| relabel(e, &format!("points[{i}]"));
            p.id.validate().map_err(at)?;
            check_finite(&p.vector).map_err(at)?;
            p.payload = normalise_payload(p.payload.take()).map_err(at)?;
            ttl_from_seconds(p.ttl_seconds).map_err(at)?;
        }
        let quota = self.vector_quota().await?;
        self.vectors()
            .upsert(self.bot_id(), name, points, quota)
            .await
    }

    pub async fn get_point(&self, name: &str, id: &PointId, with_vector: bool) -> Result<Point> {
        self.need(Role::Reader)?;
        validate_collection_name(name)?;
        id.validate()?;
        self.vectors()
            .get_point(self.bot_id(), name, id, with_vector)
            .await
    }

    /// Deletes points by id or by filter; returns how many existed.
    pub async fn delete_points(&self, name: &str, sel: PointSelector) -> Result<u64> {
        self.need(Role::Writer)?;
        validate_collection_name(name)?;
        if let PointSelector::Ids(ids) = &sel {
            if ids.len() > MAX_BATCH {
                return Err(
                    Error::invalid(format!("at most {MAX_BATCH} ids per delete"))
                        .with_code("batch_too_large"),
                );
            }
            for id in ids {
                id.validate()?;
            }
        }
        self.vectors().delete_points(self.bot_id(), name, sel).await
    }

    /// Changes the payload of the selected points (writer): `Merge` sets
    /// the keys of `payload` and keeps the others, `Replace` makes `payload`
    /// the whole payload. With `key` (a dot path), the change applies to
    /// the object at that path (created when missing) instead of the
    /// payload's top level. Returns how many points changed.
    ///
    /// Each point is read and written again as an upsert with its vector
    /// and its remaining TTL: the points' `_ingested_at` moves to now, and
    /// a concurrent write to the same point may be overwritten (last
    /// writer wins). Ids that do not exist are `point_not_found`, and then
    /// nothing changes.
    pub async fn update_payload(
        &self,
        name: &str,
        sel: PointSelector,
        payload: serde_json::Map<String, Value>,
        key: Option<&str>,
        mode: PayloadUpdate,
    ) -> Result<u64> {
        self.need(Role::Writer)?;
        validate_collection_name(name)?;
        if let Some(k) = key {
            check_field(k)?;
        }
        let mut points = Vec::new();
        match sel {
            PointSelector::Ids(ids) => {
                if ids.len() > MAX_BATCH {
                    return Err(Error::invalid(format!(
                        "at most {MAX_BATCH} ids per payload update"
                    ))
                    .with_code("batch_too_large"));
                }
                for id in &ids {
                    id.validate()?;
                    points.push(
                        self.vectors()
                            .get_point(self.bot_id(), name, id, true)
                            .await?,
                    );
                }
            }
            PointSelector::Filter(f) => {
                let mut after = None;
                loop {
                    let page = self
                        .vectors()
                        .scroll(
                            self.bot_id(),
                            name,
                            ScrollRequest {
                                filter: Some(f.clone()),
                                limit: EXPORT_PAGE,
                                after: after.take(),
                                from: None,
                                with_vector: true,
                            },
                        )
                        .await?;
                    points.extend(page.points);
                    if points.len() > MAX_BATCH {
                        return Err(Error::invalid(format!(
                            "a payload update by filter changes at most {MAX_BATCH} points"
                        ))
                        .with_code("batch_too_large"));
                    }
                    match page.next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
            }
        }
        let now = Timestamp::now();
        let inputs: Vec<PointInput> = points
            .into_iter()
            .filter_map(|p| {
                let vector = p.vector?;
                let new_payload = apply_payload(p.payload, &payload, key, mode);
                ExportedPoint {
                    id: p.id,
                    vector,
                    payload: Some(new_payload),
                    expires_at: p.expires_at,
                }
                .into_input(now)
            })
            .collect();
        if inputs.is_empty() {
            return Ok(0);
        }
        let quota = self.vector_quota().await?;
        self.vectors()
            .upsert(self.bot_id(), name, inputs, quota)
            .await
    }

    /// A page of points in id order (numbers first, then strings).
    pub async fn scroll_points(&self, name: &str, req: ScrollRequest) -> Result<ScrollPage> {
        self.need(Role::Reader)?;
        validate_collection_name(name)?;
        if req.limit == 0 || req.limit > strata_core::page::MAX_LIMIT as usize {
            return Err(Error::invalid(format!(
                "limit must be 1 to {}",
                strata_core::page::MAX_LIMIT
            ))
            .with_code("invalid_limit"));
        }
        self.vectors().scroll(self.bot_id(), name, req).await
    }

    pub async fn count_points(&self, name: &str, filter: Option<Filter>) -> Result<u64> {
        self.need(Role::Reader)?;
        validate_collection_name(name)?;
        self.vectors().count(self.bot_id(), name, filter).await
    }

    /// The `k` best points, best first.
    pub async fn search_points(&self, name: &str, req: SearchRequest) -> Result<Vec<ScoredPoint>> {
        self.need(Role::Reader)?;
        validate_collection_name(name)?;
        check_search(&req)?;
        self.vectors().search(self.bot_id(), name, req).await
    }

    /// Several searches of one collection; results in request order.
    pub async fn search_points_batch(
        &self,
        name: &str,
        reqs: Vec<SearchRequest>,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        self.need(Role::Reader)?;
        validate_collection_name(name)?;
        if reqs.len() > MAX_SEARCH_BATCH {
            return Err(Error::invalid(format!(
                "at most {MAX_SEARCH_BATCH} searches per batch, got {}",
                reqs.len()
            ))
            .with_code("batch_too_large"));
        }
        for (i, r) in reqs.iter().enumerate() {
            check_search(r).map_err(|e| relabel(e, &format!("searches[{i}]")))?;
        }
        self.vectors().search_batch(self.bot_id(), name, reqs).await
    }

    /// Starts an export of a collection (reader): its header, then pages.
    pub async fn export_vectors(&self, name: &str) -> Result<VectorExport> {
        let info = self.get_collection(name).await?;
        Ok(VectorExport {
            scope: self.clone(),
            info,
            after: None,
            done: false,
        })
    }

    /// Starts an import into collection `name` (writer): creates it from
    /// `header` when it does not exist and declares the header's indexes it
    /// lacks (both need the bot's admin). An existing collection of another
    /// dimension or metric is a conflict (`collection_mismatch`).
    pub async fn import_vectors(&self, name: &str, header: ExportHeader) -> Result<VectorImport> {
        self.need(Role::Writer)?;
        validate_collection_name(name)?;
        let h = header.collection;
        let mut created = false;
        let mut info = match self.vectors().get_collection(self.bot_id(), name).await {
            Ok(info) => {
                if info.dimension != h.dimension || info.metric != h.metric {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "collection {name:?} exists with dimension {} and metric {}; the import has dimension {} and metric {}",
                            info.dimension,
                            info.metric.as_str(),
                            h.dimension,
                            h.metric.as_str()
                        ),
                    )
                    .with_code("collection_mismatch"));
                }
                info
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                created = true;
                self.create_collection(CollectionSpec {
                    name: name.to_owned(),
                    dimension: h.dimension,
                    metric: h.metric,
                    hnsw: h.hnsw,
                    quantization: h.quantization,
                })
                .await?
            }
            Err(e) => return Err(e),
        };
        for idx in &h.indexes {
            if !info.indexes.iter().any(|i| i.field == idx.field) {
                info = self
                    .create_payload_index(name, &idx.field, idx.field_type)
                    .await?;
            }
        }
        Ok(VectorImport {
            scope: self.clone(),
            info,
            pending: Vec::new(),
            pending_from: None,
            pending_to: 0,
            summary: ImportSummary {
                created,
                ..ImportSummary::default()
            },
            now: Timestamp::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_points_are_left_out_and_ttls_round_up() {
        let now = Timestamp::from_millis(1_000_000);
        let p = |exp: Option<i64>| ExportedPoint {
            id: PointId::Num(1),
            vector: vec![1.0],
            payload: None,
            expires_at: exp.map(Timestamp::from_millis),
        };
        assert_eq!(p(None).into_input(now).map(|i| i.ttl_seconds), Some(None));
        assert_eq!(p(Some(999_000)).into_input(now), None);
        assert_eq!(p(Some(1_000_000)).into_input(now), None);
        assert_eq!(
            p(Some(1_000_001)).into_input(now).map(|i| i.ttl_seconds),
            Some(Some(1))
        );
        assert_eq!(
            p(Some(1_002_000)).into_input(now).map(|i| i.ttl_seconds),
            Some(Some(2))
        );
    }

    #[test]
    fn payload_updates_merge_replace_and_follow_the_key() {
        use serde_json::json;
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        let old = Some(json!({"a": 1, "b": {"c": 2, "d": 3}}));
        assert_eq!(
            apply_payload(
                old.clone(),
                &m(json!({"a": 5, "e": 6})),
                None,
                PayloadUpdate::Merge
            ),
            json!({"a": 5, "b": {"c": 2, "d": 3}, "e": 6})
        );
        assert_eq!(
            apply_payload(
                old.clone(),
                &m(json!({"e": 6})),
                None,
                PayloadUpdate::Replace
            ),
            json!({"e": 6})
        );
        assert_eq!(
            apply_payload(
                old.clone(),
                &m(json!({"c": 9})),
                Some("b"),
                PayloadUpdate::Merge
            ),
            json!({"a": 1, "b": {"c": 9, "d": 3}})
        );
        assert_eq!(
            apply_payload(
                old,
                &m(json!({"x": 1})),
                Some("n.m"),
                PayloadUpdate::Replace
            ),
            json!({"a": 1, "b": {"c": 2, "d": 3}, "n": {"m": {"x": 1}}})
        );
        assert_eq!(
            apply_payload(None, &m(json!({"x": 1})), None, PayloadUpdate::Merge),
            json!({"x": 1})
        );
    }

    #[test]
    fn relabel_keeps_kind_and_code() {
        let e = validate_vector(&[1.0], 2, Metric::Cosine).expect_err("mismatch");
        let e = relabel(e, "line 3");
        assert_eq!(e.code(), "dimension_mismatch");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().starts_with("line 3: "), "{}", e.message());
        let e = relabel(Error::invalid("x").with_code("something_else"), "p");
        assert_eq!(e.code(), "invalid_input");
    }

    #[test]
    fn payloads_are_objects_and_vectors_finite() {
        assert!(normalise_payload(Some(serde_json::json!([1]))).is_err());
        assert_eq!(normalise_payload(Some(Value::Null)).ok(), Some(None));
        assert!(check_finite(&[1.0, f32::INFINITY]).is_err());
        assert!(check_field("a.b").is_ok());
        assert!(check_field("a..b").is_err());
        assert!(check_field("").is_err());
    }

    #[test]
    fn the_export_header_round_trips() {
        let h = ExportHeader {
            collection: ExportedCollection {
                name: "docs".into(),
                dimension: 3,
                metric: Metric::Dot,
                hnsw: HnswParams::default(),
                quantization: Quantization::F16,
                indexes: vec![PayloadIndexInfo {
                    field: "lang".into(),
                    field_type: FieldType::Keyword,
                }],
            },
        };
        let text = serde_json::to_string(&h).expect("serialise");
        assert!(text.contains("\"type\":\"keyword\""), "{text}");
        let back: ExportHeader = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, h);
    }
}
