//! The embedded vector store (stub: lands next).

use async_trait::async_trait;
use std::path::PathBuf;
use strata_core::filter::Filter;
use strata_core::types::BotId;
use strata_core::vectors::*;
use strata_core::{Error, Result};
use strata_records::sqlite::SqliteDatabase;

/// Vectors in the records database, searched through in-memory HNSW indexes
/// whose snapshots live under `dir`.
#[derive(Debug, Clone)]
pub struct EmbeddedVectors {
    #[allow(dead_code)]
    db: SqliteDatabase,
    #[allow(dead_code)]
    dir: PathBuf,
}

impl EmbeddedVectors {
    /// Opens the store: loads every collection's snapshot (or rebuilds it
    /// from the rows) and replays the changes after it.
    pub async fn open(db: SqliteDatabase, dir: PathBuf) -> Result<Self> {
        Ok(EmbeddedVectors { db, dir })
    }
}

fn unbuilt() -> Error {
    Error::unavailable("vectors engine not built yet")
}

#[async_trait]
impl VectorStore for EmbeddedVectors {
    async fn create_collection(
        &self,
        _b: &BotId,
        _s: CollectionSpec,
        _q: VectorQuota,
    ) -> Result<CollectionInfo> {
        Err(unbuilt())
    }
    async fn list_collections(&self, _b: &BotId) -> Result<Vec<CollectionInfo>> {
        Err(unbuilt())
    }
    async fn get_collection(&self, _b: &BotId, _n: &str) -> Result<CollectionInfo> {
        Err(unbuilt())
    }
    async fn drop_collection(&self, _b: &BotId, _n: &str) -> Result<()> {
        Err(unbuilt())
    }
    async fn drop_bot(&self, _b: &BotId) -> Result<()> {
        Ok(())
    }
    async fn create_index(
        &self,
        _b: &BotId,
        _n: &str,
        _f: &str,
        _t: FieldType,
    ) -> Result<CollectionInfo> {
        Err(unbuilt())
    }
    async fn upsert(
        &self,
        _b: &BotId,
        _n: &str,
        _p: Vec<PointInput>,
        _q: VectorQuota,
    ) -> Result<u64> {
        Err(unbuilt())
    }
    async fn get_point(&self, _b: &BotId, _n: &str, _id: &PointId, _v: bool) -> Result<Point> {
        Err(unbuilt())
    }
    async fn delete_points(&self, _b: &BotId, _n: &str, _s: PointSelector) -> Result<u64> {
        Err(unbuilt())
    }
    async fn scroll(&self, _b: &BotId, _n: &str, _r: ScrollRequest) -> Result<ScrollPage> {
        Err(unbuilt())
    }
    async fn count(&self, _b: &BotId, _n: &str, _f: Option<Filter>) -> Result<u64> {
        Err(unbuilt())
    }
    async fn search(&self, _b: &BotId, _n: &str, _r: SearchRequest) -> Result<Vec<ScoredPoint>> {
        Err(unbuilt())
    }
    async fn search_batch(
        &self,
        _b: &BotId,
        _n: &str,
        _r: Vec<SearchRequest>,
    ) -> Result<Vec<Vec<ScoredPoint>>> {
        Err(unbuilt())
    }
    async fn purge_expired(&self) -> Result<u64> {
        Ok(0)
    }
    async fn checkpoint(&self) -> Result<()> {
        Ok(())
    }
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
