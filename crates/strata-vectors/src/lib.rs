//! Strata's vectors layer on the embedded default.
//!
//! - [`distance`]: SIMD distance kernels (runtime CPU detection).
//! - [`hnsw`]: the HNSW graph (lock-free reads, per-node locks on insert,
//!   filter applied during traversal).
//! - [`payload_index`]: per-field payload indexes that turn a filter into a
//!   candidate bitmap, so the planner knows how many points it matches.
//! - [`index`]: one collection in memory: vectors, graph, ids, payloads,
//!   expiry, and the query planner (exact scan below a threshold, filtered
//!   graph search above it).
//! - [`embedded`]: [`EmbeddedVectors`], the [`VectorStore`] whose truth is
//!   the records database (SQLite) and whose index is derived: snapshots
//!   plus a change log replayed at start.
//! - [`behavior`]: the behaviour suite every [`VectorStore`] backend passes.

pub mod behavior;
pub mod distance;
pub mod embedded;
pub mod hnsw;
pub mod index;
mod mmap;
pub mod payload_index;

pub use embedded::EmbeddedVectors;
pub use index::{IndexConfig, IndexedPoint, VectorIndex};
pub use strata_core::vectors::*;
