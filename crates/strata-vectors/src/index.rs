//! One collection in memory (stub: the engine lands next).

use serde_json::Value;
use strata_core::filter::Filter;
use strata_core::vectors::{FieldType, HnswParams, Metric, PointId, Quantization};

/// What an index is built for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexConfig {
    pub dimension: usize,
    pub metric: Metric,
    pub hnsw: HnswParams,
    pub quantization: Quantization,
}

/// A point as the index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedPoint {
    pub id: PointId,
    pub vector: Vec<f32>,
    pub payload: Option<Value>,
    pub ingested_at: i64,
    pub expires_at: Option<i64>,
}

/// One collection's in-memory index.
#[derive(Debug)]
pub struct VectorIndex {}

impl VectorIndex {
    pub fn new(_cfg: IndexConfig) -> Self {
        VectorIndex {}
    }

    /// Inserts or replaces points, using up to `threads` threads.
    pub fn upsert_batch(&self, _points: Vec<IndexedPoint>, _threads: usize) {}

    /// Removes points; returns how many existed.
    pub fn delete(&self, _ids: &[PointId]) -> usize {
        0
    }

    /// The best `k` live points for `query` passing `filter` at `now_ms`,
    /// best first, with their scores (see the metric).
    pub fn search(
        &self,
        _query: &[f32],
        _k: usize,
        _ef: usize,
        _filter: Option<&Filter>,
        _now_ms: i64,
    ) -> Vec<(PointId, f32)> {
        Vec::new()
    }

    /// Declares a payload index.
    pub fn create_field_index(&self, _field: &str, _ty: FieldType) {}

    /// Live points.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the index holds (vectors, graph, ids, payloads).
    pub fn memory_bytes(&self) -> usize {
        0
    }
}
