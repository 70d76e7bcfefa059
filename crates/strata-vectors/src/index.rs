//! One collection in memory: vectors, the HNSW graph, ids, payloads, expiry,
//! payload indexes — and the query planner.
//!
//! **Planner.** Without a filter, the graph answers. With one, the payload
//! indexes turn it into a candidate bitmap whose size is the exact number of
//! matches (or, for conditions no index answers, an estimate from a sample
//! of payloads). At or below [`VectorIndex::full_scan_threshold`] candidates
//! (10 MiB of vectors, like Qdrant's default) the candidates are scored
//! exactly — recall 1.0, cost proportional to the matches. Above it the graph
//! is searched with the filter applied during traversal: every node is a
//! waypoint, only passing ones enter the result. Should a filtered graph
//! search find fewer than `k` results while more exist, the exact scan runs
//! instead, so recall never collapses under a restrictive filter.
//!
//! **Writes** ([`VectorIndex::upsert_batch`]) allocate slots under the write
//! lock, link them into the graph under the *read* lock with several threads
//! (searches keep running), then publish them (and retire replaced slots)
//! under the write lock again. A replaced or deleted point's slot stays in
//! the graph as a tombstone waypoint.

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata_core::filter::Filter;
use strata_core::vectors::{FieldType, HnswParams, Metric, PointId, Quantization, ScoredPoint};
use strata_core::{Error, Result};

use crate::distance::{self, dot, l2_sq};
use crate::hnsw::{Cand, Graph, Space};
use crate::payload_index::PayloadIndexes;

/// Vectors scored exactly when a filter matches at most this many bytes of them.
pub const FULL_SCAN_BYTES: usize = 10 * 1024 * 1024;

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

/// How a filtered search was answered (for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Graph,
    FilteredGraph,
    ExactScan,
}

/// A column of plain values: a read-only mapped prefix (from a snapshot)
/// followed by owned values appended since.
#[derive(Debug)]
struct Column<T: bytemuck::Pod> {
    mapped: Option<(crate::mmap::Map, usize, usize)>,
    mapped_len: usize,
    owned: Vec<T>,
}

impl<T: bytemuck::Pod> Column<T> {
    fn new() -> Self {
        Column {
            mapped: None,
            mapped_len: 0,
            owned: Vec::new(),
        }
    }

    /// Maps `bytes` (offset and length inside `map`); copies them instead
    /// if they are not aligned for `T`.
    fn from_map(map: &crate::mmap::Map, offset: usize, bytes: usize) -> Option<Self> {
        let raw = map.get(offset..offset.checked_add(bytes)?)?;
        match bytemuck::try_cast_slice::<u8, T>(raw) {
            Ok(v) => Some(Column {
                mapped: Some((map.clone(), offset, bytes)),
                mapped_len: v.len(),
                owned: Vec::new(),
            }),
            Err(_) => Some(Column {
                mapped: None,
                mapped_len: 0,
                owned: raw
                    .chunks_exact(std::mem::size_of::<T>())
                    .map(bytemuck::pod_read_unaligned)
                    .collect(),
            }),
        }
    }

    #[inline]
    fn mapped(&self) -> &[T] {
        match &self.mapped {
            Some((m, off, len)) => bytemuck::cast_slice(&m[*off..*off + *len]),
            None => &[],
        }
    }

    fn len(&self) -> usize {
        self.mapped_len + self.owned.len()
    }

    /// `len` values from `start`; never spans the mapped/owned boundary
    /// because values are pushed a whole vector at a time.
    #[inline]
    fn slice(&self, start: usize, len: usize) -> &[T] {
        if start < self.mapped_len {
            &self.mapped()[start..start + len]
        } else {
            let s = start - self.mapped_len;
            &self.owned[s..s + len]
        }
    }

    fn bytes(&self) -> usize {
        (self.mapped_len + self.owned.capacity()) * std::mem::size_of::<T>()
    }

    fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(bytemuck::cast_slice(self.mapped()))?;
        w.write_all(bytemuck::cast_slice(&self.owned))
    }
}

/// Vector storage.
///
/// Every collection keeps 8-bit codes of its vectors (per-vector scale) for
/// graph traversal: a quarter of the memory traffic of f32, which is what a
/// search on a large collection waits for. Unquantized collections also keep
/// the f32 vectors, and every result is re-scored with them, so scores are
/// exact and recall is that of the f32 graph; `f16` keeps half-precision
/// vectors for re-scoring instead, `i8` only the codes.
#[derive(Debug)]
struct Store {
    kind: Quantization,
    dim: usize,
    f32s: Column<f32>,
    f16s: Vec<half::f16>,
    codes: Column<i8>,
    scales: Vec<f32>,
    /// Squared norms of the stored vectors (Euclidean traversal only).
    norms: Vec<f32>,
    keep_norms: bool,
}

thread_local! {
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A vector quantized like the stored codes.
#[derive(Debug, Clone)]
struct Codes {
    codes: Vec<i8>,
    scale: f32,
    norm: f32,
}

fn quantize(v: &[f32]) -> Codes {
    let mut codes = Vec::with_capacity(v.len());
    let (scale, norm) = quantize_into(v, &mut codes);
    Codes { codes, scale, norm }
}

/// Appends `v`'s 8-bit codes to `out`; returns (scale, squared norm).
fn quantize_into(v: &[f32], out: &mut Vec<i8>) -> (f32, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    (scale, dot(v, v))
}

impl Store {
    fn new(kind: Quantization, dim: usize, metric: Metric) -> Self {
        Store {
            kind,
            dim,
            keep_norms: metric == Metric::Euclidean,
            f32s: Column::new(),
            f16s: Vec::new(),
            codes: Column::new(),
            scales: Vec::new(),
            norms: Vec::new(),
        }
    }

    fn reserve(&mut self, n: usize) {
        match self.kind {
            Quantization::None => self.f32s.owned.reserve_exact(n * self.dim),
            Quantization::F16 => self.f16s.reserve_exact(n * self.dim),
            Quantization::I8 => {}
        }
        self.codes.owned.reserve_exact(n * self.dim);
        self.scales.reserve_exact(n);
        if self.keep_norms {
            self.norms.reserve_exact(n);
        }
    }

    fn push(&mut self, v: &[f32]) {
        match self.kind {
            Quantization::None => self.f32s.owned.extend_from_slice(v),
            Quantization::F16 => self.f16s.extend(v.iter().map(|x| half::f16::from_f32(*x))),
            Quantization::I8 => {}
        }
        let (scale, norm) = quantize_into(v, &mut self.codes.owned);
        self.scales.push(scale);
        if self.keep_norms {
            self.norms.push(norm);
        }
    }

    fn bytes(&self) -> usize {
        self.f32s.bytes()
            + self.f16s.capacity() * 2
            + self.codes.bytes()
            + self.scales.capacity() * 4
            + self.norms.capacity() * 4
    }

    #[inline]
    fn code(&self, i: u32) -> &[i8] {
        let s = i as usize * self.dim;
        self.codes.slice(s, self.dim)
    }

    /// Runs `f` on node `i`'s best vector as f32 (decoding into `buf`).
    #[inline]
    fn with<R>(&self, i: u32, buf: &mut Vec<f32>, f: impl FnOnce(&[f32]) -> R) -> R {
        let s = i as usize * self.dim;
        match self.kind {
            Quantization::None => f(self.f32s.slice(s, self.dim)),
            Quantization::F16 => {
                buf.clear();
                buf.extend(self.f16s[s..s + self.dim].iter().map(|x| x.to_f32()));
                f(buf)
            }
            Quantization::I8 => {
                let sc = self.scales[i as usize];
                buf.clear();
                buf.extend(self.code(i).iter().map(|&c| c as f32 * sc));
                f(buf)
            }
        }
    }

    /// Exact (best available) distance between a query and node `i`.
    #[inline]
    fn exact_query(&self, metric: Metric, q: &[f32], i: u32) -> f32 {
        if self.kind == Quantization::None {
            let s = i as usize * self.dim;
            return raw_dist(metric, q, self.f32s.slice(s, self.dim));
        }
        SCRATCH.with(|sc| {
            let (x, _) = &mut *sc.borrow_mut();
            self.with(i, x, |v| raw_dist(metric, q, v))
        })
    }

    /// Approximate distance from the 8-bit codes.
    #[inline]
    fn approx(&self, metric: Metric, q: &Codes, i: u32) -> f32 {
        let d = distance::dot_i8(&q.codes, self.code(i)) as f32 * q.scale * self.scales[i as usize];
        match metric {
            Metric::Cosine | Metric::Dot => -d,
            Metric::Euclidean => (q.norm + self.norms[i as usize] - 2.0 * d).max(0.0),
        }
    }

    #[inline]
    fn prefetch_code(&self, i: u32) {
        distance::prefetch(self.code(i));
    }

    #[inline]
    fn prefetch_exact(&self, i: u32) {
        let s = i as usize * self.dim;
        match self.kind {
            Quantization::None => distance::prefetch(self.f32s.slice(s, self.dim)),
            Quantization::F16 => distance::prefetch(&self.f16s[s..s + self.dim]),
            Quantization::I8 => self.prefetch_code(i),
        }
    }
}

#[inline]
fn raw_dist(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Cosine | Metric::Dot => -dot(a, b),
        Metric::Euclidean => l2_sq(a, b),
    }
}

fn score_of(metric: Metric, dist: f32) -> f32 {
    match metric {
        Metric::Cosine | Metric::Dot => -dist,
        Metric::Euclidean => dist.max(0.0).sqrt(),
    }
}

/// Traversal between stored nodes (inserts): approximate, from the codes.
struct NodeCodeSpace<'a> {
    store: &'a Store,
    metric: Metric,
}

impl Space for NodeCodeSpace<'_> {
    type Query = u32;
    #[inline]
    fn dist_query(&self, q: &u32, node: u32) -> f32 {
        self.dist_nodes(*q, node)
    }
    #[inline]
    fn dist_nodes(&self, a: u32, b: u32) -> f32 {
        let s = &self.store;
        let d = distance::dot_i8(s.code(a), s.code(b)) as f32
            * s.scales[a as usize]
            * s.scales[b as usize];
        match self.metric {
            Metric::Cosine | Metric::Dot => -d,
            Metric::Euclidean => (s.norms[a as usize] + s.norms[b as usize] - 2.0 * d).max(0.0),
        }
    }
    #[inline]
    fn prefetch(&self, node: u32) {
        self.store.prefetch_code(node);
    }
}

/// Traversal for a query: approximate, from the codes.
struct QueryCodeSpace<'a> {
    store: &'a Store,
    metric: Metric,
}

impl Space for QueryCodeSpace<'_> {
    type Query = Codes;
    #[inline]
    fn dist_query(&self, q: &Codes, node: u32) -> f32 {
        self.store.approx(self.metric, q, node)
    }
    fn dist_nodes(&self, _a: u32, _b: u32) -> f32 {
        f32::INFINITY
    }
    #[inline]
    fn prefetch(&self, node: u32) {
        self.store.prefetch_code(node);
    }
}

/// Point ids by slot and slots by id, compact for numeric ids (8 bytes per
/// slot plus a `u64 → u32` map); string ids live in their own maps.
#[derive(Debug, Default)]
struct IdTable {
    /// The numeric id of each slot (meaningless for string-id or dead slots).
    nums: Vec<u64>,
    num_slots: HashMap<u64, u32>,
    /// String ids by slot, and slots by string id.
    strs: HashMap<u32, String>,
    str_slots: HashMap<String, u32>,
}

impl IdTable {
    fn push_slot(&mut self) {
        self.nums.push(0);
    }

    fn get(&self, id: &PointId) -> Option<u32> {
        match id {
            PointId::Num(n) => self.num_slots.get(n).copied(),
            PointId::Str(s) => self.str_slots.get(s).copied(),
        }
    }

    /// Points `id` at `slot`; returns the slot it pointed at before.
    fn insert(&mut self, id: PointId, slot: u32) -> Option<u32> {
        match id {
            PointId::Num(n) => {
                self.nums[slot as usize] = n;
                self.num_slots.insert(n, slot)
            }
            PointId::Str(s) => {
                self.strs.insert(slot, s.clone());
                self.str_slots.insert(s, slot)
            }
        }
    }

    fn remove(&mut self, id: &PointId) -> Option<u32> {
        match id {
            PointId::Num(n) => self.num_slots.remove(n),
            PointId::Str(s) => self.str_slots.remove(s),
        }
    }

    /// Forgets a retired slot's string id (numeric ones cost nothing).
    fn clear_slot(&mut self, slot: u32) {
        self.strs.remove(&slot);
    }

    /// The id whose current slot is `slot`.
    fn id_of(&self, slot: u32) -> Option<PointId> {
        if let Some(s) = self.strs.get(&slot) {
            return (self.str_slots.get(s) == Some(&slot)).then(|| PointId::Str(s.clone()));
        }
        let n = *self.nums.get(slot as usize)?;
        (self.num_slots.get(&n) == Some(&slot)).then_some(PointId::Num(n))
    }

    fn bytes(&self) -> usize {
        self.nums.capacity() * 8
            + self.num_slots.capacity() * 13
            + (self.strs.capacity() + self.str_slots.capacity()) * 29
            + self.strs.values().map(|s| s.len() * 2).sum::<usize>()
    }
}

#[derive(Debug)]
struct Inner {
    graph: Graph,
    store: Store,
    ids: IdTable,
    payloads: Vec<Option<Box<Value>>>,
    ingested: Vec<i64>,
    /// `i64::MAX`: never.
    expires: Vec<i64>,
    live: RoaringBitmap,
    live_bits: Vec<u64>,
    payload_idx: PayloadIndexes,
    /// Live points with an expiry (0: skip the checks).
    expiring: usize,
    /// Slots stored but not linked into the graph yet (points replayed at
    /// start, linked in the background): searches score them exactly and
    /// merge them with what the graph finds, so they are found at once.
    unlinked: RoaringBitmap,
}

impl Inner {
    #[inline]
    fn is_live(&self, slot: u32) -> bool {
        self.live_bits
            .get(slot as usize / 64)
            .is_some_and(|w| w & (1u64 << (slot % 64)) != 0)
    }

    #[inline]
    fn alive(&self, slot: u32, now: i64) -> bool {
        self.is_live(slot) && (self.expiring == 0 || self.expires[slot as usize] > now)
    }

    fn set_live(&mut self, slot: u32, on: bool) {
        let w = slot as usize / 64;
        if self.live_bits.len() <= w {
            self.live_bits.resize(w + 1, 0);
        }
        if on {
            self.live_bits[w] |= 1u64 << (slot % 64);
            self.live.insert(slot);
        } else {
            self.live_bits[w] &= !(1u64 << (slot % 64));
            self.live.remove(slot);
        }
    }

    fn kill(&mut self, slot: u32) {
        if !self.is_live(slot) {
            return;
        }
        self.set_live(slot, false);
        let payload = self.payloads[slot as usize].take();
        self.payload_idx.remove(slot, payload.as_deref());
        self.ids.clear_slot(slot);
        if self.expires[slot as usize] != i64::MAX {
            self.expiring = self.expiring.saturating_sub(1);
        }
    }
}

/// One collection's in-memory index.
#[derive(Debug)]
pub struct VectorIndex {
    cfg: IndexConfig,
    inner: RwLock<Inner>,
    writer: Mutex<()>,
}

/// Bounded top-k of (dist, slot), worst on top.
struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }
    #[inline]
    fn push(&mut self, c: Cand) {
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(w) = self.heap.peek() {
            if c < *w {
                self.heap.pop();
                self.heap.push(c);
            }
        }
    }
    fn into_sorted(self) -> Vec<Cand> {
        self.heap.into_sorted_vec()
    }
}

impl VectorIndex {
    pub fn new(cfg: IndexConfig) -> Self {
        VectorIndex {
            cfg,
            inner: RwLock::new(Inner {
                graph: Graph::new(cfg.hnsw.m, cfg.hnsw.ef_construction),
                store: Store::new(cfg.quantization, cfg.dimension, cfg.metric),
                ids: IdTable::default(),
                payloads: Vec::new(),
                ingested: Vec::new(),
                expires: Vec::new(),
                live: RoaringBitmap::new(),
                live_bits: Vec::new(),
                payload_idx: PayloadIndexes::new(),
                expiring: 0,
                unlinked: RoaringBitmap::new(),
            }),
            writer: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &IndexConfig {
        &self.cfg
    }

    /// Candidates at or below which a filtered search scores them exactly.
    pub fn full_scan_threshold(&self) -> usize {
        (FULL_SCAN_BYTES / (self.cfg.dimension * 4)).max(256)
    }

    /// Normalises in place under cosine.
    fn normalize(&self, v: &mut [f32]) {
        if self.cfg.metric == Metric::Cosine {
            let n = dot(v, v).sqrt();
            if n > 0.0 {
                v.iter_mut().for_each(|x| *x /= n);
            }
        }
    }

    /// The vector as the index stores it (normalised under cosine).
    fn prepare(&self, v: &[f32]) -> Vec<f32> {
        if self.cfg.metric == Metric::Cosine {
            let n = dot(v, v).sqrt();
            if n > 0.0 {
                return v.iter().map(|x| x / n).collect();
            }
        }
        v.to_vec()
    }

    /// Inserts or replaces points, using up to `threads` threads. Vectors
    /// must have been validated (dimension, finite).
    pub fn upsert_batch(&self, points: Vec<IndexedPoint>, threads: usize) {
        if points.is_empty() {
            return;
        }
        let _w = self.writer.lock();
        let n = points.len();
        let first = self.push_slots(&points);
        self.link(&(first..first + n as u32).collect::<Vec<_>>(), threads);
        self.publish(first, points, false);
    }

    /// Stores points without linking them into the graph (a restart's
    /// replay: linking is most of the cost of an insert). They are live and
    /// found by every search at once — scored exactly beside the graph's
    /// results — and linked later by [`VectorIndex::link_pending`].
    pub fn insert_unlinked(&self, points: Vec<IndexedPoint>) {
        if points.is_empty() {
            return;
        }
        let _w = self.writer.lock();
        let first = self.push_slots(&points);
        self.publish(first, points, true);
    }

    /// Links up to `max` of the stored-but-unlinked points into the graph
    /// with `threads` threads; returns how many are still unlinked.
    pub fn link_pending(&self, max: usize, threads: usize) -> usize {
        let _w = self.writer.lock();
        let (batch, dead): (Vec<u32>, Vec<u32>) = {
            let g = self.inner.read();
            g.unlinked.iter().take(max).partition(|&s| g.is_live(s))
        };
        // A slot that died meanwhile (replaced, deleted) is never searched:
        // it needs no links.
        self.link(&batch, threads);
        let mut g = self.inner.write();
        for s in batch.into_iter().chain(dead) {
            g.unlinked.remove(s);
        }
        g.unlinked.len() as usize
    }

    /// Points stored but not linked into the graph yet.
    pub fn pending_links(&self) -> usize {
        self.inner.read().unlinked.len() as usize
    }

    /// Phase 1 (writer lock held): new slots for `points`, their vectors
    /// and metadata, not yet live. Returns the first slot.
    fn push_slots(&self, points: &[IndexedPoint]) -> u32 {
        let mut g = self.inner.write();
        let n = points.len();
        g.graph.reserve(n);
        g.store.reserve(n);
        let first = g.graph.len() as u32;
        let mut rng = rand::rng();
        let mut v = Vec::with_capacity(self.cfg.dimension);
        for p in points {
            let level = g.graph.random_level(&mut rng);
            g.graph.push_node(level);
            v.clear();
            v.extend_from_slice(&p.vector);
            self.normalize(&mut v);
            g.store.push(&v);
            g.ids.push_slot();
            g.payloads.push(None);
            g.ingested.push(p.ingested_at);
            g.expires.push(p.expires_at.unwrap_or(i64::MAX));
        }
        let slots = g.graph.len();
        let words = slots.div_ceil(64);
        if g.live_bits.len() < words {
            g.live_bits.resize(words, 0);
        }
        first
    }

    /// Phase 2 (writer lock held): links `slots` into the graph, on up to
    /// `threads` threads; searches run meanwhile.
    fn link(&self, slots: &[u32], threads: usize) {
        if slots.is_empty() {
            return;
        }
        let g = self.inner.read();
        let metric = self.cfg.metric;
        let fast = NodeCodeSpace {
            store: &g.store,
            metric,
        };
        let n = slots.len();
        let next = AtomicUsize::new(0);
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            g.graph.insert(&fast, &fast, slots[i]);
        };
        let threads = threads.clamp(1, 64).min(n.div_ceil(64).max(1));
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
    }

    /// Phase 3 (writer lock held): makes the points live (replacing
    /// earlier slots of the same ids), optionally as unlinked.
    fn publish(&self, first: u32, points: Vec<IndexedPoint>, unlinked: bool) {
        let mut g = self.inner.write();
        for (i, p) in points.into_iter().enumerate() {
            let slot = first + i as u32;
            if let Some(old) = g.ids.insert(p.id, slot) {
                g.kill(old);
            }
            g.payload_idx.insert(slot, p.payload.as_ref());
            g.payloads[slot as usize] = p.payload.map(Box::new);
            if p.expires_at.is_some() {
                g.expiring += 1;
            }
            g.set_live(slot, true);
            if unlinked {
                g.unlinked.insert(slot);
            }
        }
    }

    /// Removes points; returns how many existed.
    pub fn delete(&self, ids: &[PointId]) -> usize {
        let _w = self.writer.lock();
        let mut g = self.inner.write();
        let mut n = 0;
        for id in ids {
            if let Some(slot) = g.ids.remove(id) {
                g.kill(slot);
                n += 1;
            }
        }
        n
    }

    /// The best `k` live points for `query` passing `filter` at `now_ms`,
    /// best first, with their scores (see the metric).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&Filter>,
        now_ms: i64,
    ) -> Vec<(PointId, f32)> {
        self.search_full(query, k, ef, filter, now_ms, None, false)
            .0
            .into_iter()
            .map(|p| (p.id, p.score))
            .collect()
    }

    /// Search with everything the API offers; also says how it was answered.
    #[allow(clippy::too_many_arguments)]
    pub fn search_full(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&Filter>,
        now_ms: i64,
        score_threshold: Option<f32>,
        with_payload: bool,
    ) -> (Vec<ScoredPoint>, Plan) {
        if k == 0 || query.len() != self.cfg.dimension {
            return (Vec::new(), Plan::Graph);
        }
        let q = self.prepare(query);
        let g = self.inner.read();
        let ef = ef.max(k);
        let (found, plan) = self.plan_and_run(&g, &q, k, ef, filter, now_ms);
        let metric = self.cfg.metric;
        let out = found
            .into_iter()
            .take(k)
            .filter_map(|c| {
                let score = score_of(metric, c.dist);
                if let Some(t) = score_threshold {
                    let good = if metric.higher_is_better() {
                        score >= t
                    } else {
                        score <= t
                    };
                    if !good {
                        return None;
                    }
                }
                let id = g.ids.id_of(c.node)?;
                Some(ScoredPoint {
                    id,
                    score,
                    payload: if with_payload {
                        g.payloads[c.node as usize].as_deref().cloned()
                    } else {
                        None
                    },
                    vector: None,
                })
            })
            .collect();
        (out, plan)
    }

    /// Graph search on the codes, then the `ef` found re-scored exactly.
    fn graph_search(
        &self,
        g: &Inner,
        q: &[f32],
        ef: usize,
        accept: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<Cand> {
        let metric = self.cfg.metric;
        let space = QueryCodeSpace {
            store: &g.store,
            metric,
        };
        let codes = quantize(q);
        let found = g.graph.search(&space, &codes, ef, accept);
        let mut out: Vec<Cand> = Vec::with_capacity(found.len());
        for (i, c) in found.iter().enumerate() {
            if let Some(n) = found.get(i + 1) {
                g.store.prefetch_exact(n.node);
            }
            out.push(Cand {
                dist: g.store.exact_query(metric, q, c.node),
                node: c.node,
            });
        }
        if !g.unlinked.is_empty() {
            // Points not linked yet are out of the graph's reach: score them
            // exactly and merge (a point being linked right now may be in
            // both lists).
            let extra = self.exact(g, q, ef, g.unlinked.iter(), accept);
            let seen: std::collections::HashSet<u32> = out.iter().map(|c| c.node).collect();
            out.extend(extra.into_iter().filter(|c| !seen.contains(&c.node)));
        }
        out.sort_unstable();
        out
    }

    /// Scores `slots` that `pass`: first on the 8-bit codes (a quarter of
    /// the memory traffic), keeping the best `max(8k, 64)`, then those
    /// exactly; the best `k`, nearest first.
    fn exact(
        &self,
        g: &Inner,
        q: &[f32],
        k: usize,
        slots: impl Iterator<Item = u32>,
        pass: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<Cand> {
        let metric = self.cfg.metric;
        let keep = (k * 8).max(64);
        let codes = quantize(q);
        let mut top = TopK::new(keep);
        let mut slots = slots.peekable();
        while let Some(s) = slots.next() {
            if let Some(&n) = slots.peek() {
                g.store.prefetch_code(n);
            }
            if pass(s) {
                top.push(Cand {
                    dist: g.store.approx(metric, &codes, s),
                    node: s,
                });
            }
        }
        let mut out: Vec<Cand> = top
            .into_sorted()
            .into_iter()
            .map(|c| Cand {
                dist: g.store.exact_query(metric, q, c.node),
                node: c.node,
            })
            .collect();
        out.sort_unstable();
        out.truncate(k);
        out
    }

    fn plan_and_run(
        &self,
        g: &Inner,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&Filter>,
        now: i64,
    ) -> (Vec<Cand>, Plan) {
        let Some(f) = filter else {
            let mut accept = |s: u32| g.alive(s, now);
            let mut found = self.graph_search(g, q, ef, &mut accept);
            if found.len() < k && (g.live.len() as usize) > found.len() {
                // Tiny or heavily deleted graphs: make sure k are found.
                found = self.exact(g, q, k, g.live.iter(), &mut accept);
                return (found, Plan::ExactScan);
            }
            return (found, Plan::Graph);
        };
        let threshold = self.full_scan_threshold();
        let matches = |s: u32| {
            f.matches_point(
                g.payloads[s as usize].as_deref(),
                g.ingested[s as usize],
                &|| g.ids.id_of(s),
            )
        };
        match g.payload_idx.candidates(f, &g.live) {
            Some(c) => {
                let exact_set = c.exact;
                let mut pass = |s: u32| g.alive(s, now) && (exact_set || matches(s));
                if c.slots.len() as usize <= threshold {
                    let found = self.exact(g, q, k, c.slots.iter(), &mut pass);
                    return (found, Plan::ExactScan);
                }
                let mut bits = vec![0u64; g.graph.len().div_ceil(64)];
                for s in c.slots.iter() {
                    bits[s as usize / 64] |= 1 << (s % 64);
                }
                let mut accept = |s: u32| {
                    bits.get(s as usize / 64)
                        .is_some_and(|w| w & (1 << (s % 64)) != 0)
                        && pass(s)
                };
                let found = self.graph_search(g, q, ef, &mut accept);
                if found.len() < k {
                    let mut pass = |s: u32| g.alive(s, now) && (exact_set || matches(s));
                    return (
                        self.exact(g, q, k, c.slots.iter(), &mut pass),
                        Plan::ExactScan,
                    );
                }
                (found, Plan::FilteredGraph)
            }
            None => {
                // No index narrows it: estimate the selectivity from a sample.
                let live = g.live.len();
                let sample = live.min(512);
                let step = (live / sample.max(1)).max(1);
                let hits = (0..sample)
                    .filter_map(|i| g.live.select((i * step) as u32))
                    .filter(|&s| matches(s))
                    .count() as u64;
                let est = (hits * live).checked_div(sample).unwrap_or(0);
                let mut pass = |s: u32| g.alive(s, now) && matches(s);
                if est as usize <= threshold {
                    return (
                        self.exact(g, q, k, g.live.iter(), &mut pass),
                        Plan::ExactScan,
                    );
                }
                let found = self.graph_search(g, q, ef, &mut pass);
                if found.len() < k {
                    return (
                        self.exact(g, q, k, g.live.iter(), &mut pass),
                        Plan::ExactScan,
                    );
                }
                (found, Plan::FilteredGraph)
            }
        }
    }

    /// Live, unexpired points passing `filter`.
    pub fn count(&self, filter: Option<&Filter>, now: i64) -> u64 {
        self.matching(filter, now).len() as u64
    }

    /// Ids of live, unexpired points passing `filter`.
    pub fn matching_ids(&self, filter: Option<&Filter>, now: i64) -> Vec<PointId> {
        let g = self.inner.read();
        self.matching_in(&g, filter, now)
            .into_iter()
            .filter_map(|s| g.ids.id_of(s))
            .collect()
    }

    fn matching(&self, filter: Option<&Filter>, now: i64) -> Vec<u32> {
        let g = self.inner.read();
        self.matching_in(&g, filter, now)
    }

    fn matching_in(&self, g: &Inner, filter: Option<&Filter>, now: i64) -> Vec<u32> {
        let Some(f) = filter else {
            return g.live.iter().filter(|&s| g.alive(s, now)).collect();
        };
        let matches = |s: u32| {
            f.matches_point(
                g.payloads[s as usize].as_deref(),
                g.ingested[s as usize],
                &|| g.ids.id_of(s),
            )
        };
        match g.payload_idx.candidates(f, &g.live) {
            Some(c) => c
                .slots
                .iter()
                .filter(|&s| g.alive(s, now) && (c.exact || matches(s)))
                .collect(),
            None => g
                .live
                .iter()
                .filter(|&s| g.alive(s, now) && matches(s))
                .collect(),
        }
    }

    /// Ids of live points whose TTL has passed.
    pub fn expired_ids(&self, now: i64) -> Vec<PointId> {
        let g = self.inner.read();
        if g.expiring == 0 {
            return Vec::new();
        }
        g.live
            .iter()
            .filter(|&s| g.expires[s as usize] <= now)
            .filter_map(|s| g.ids.id_of(s))
            .collect()
    }

    /// Whether `id` is live (unexpired at `now`).
    pub fn contains(&self, id: &PointId, now: i64) -> bool {
        let g = self.inner.read();
        g.ids.get(id).is_some_and(|s| g.alive(s, now))
    }

    /// Declares a payload index (filled from the current points).
    pub fn create_field_index(&self, field: &str, ty: FieldType) {
        let _w = self.writer.lock();
        let mut g = self.inner.write();
        let Inner {
            payload_idx,
            payloads,
            live,
            ..
        } = &mut *g;
        payload_idx.add_field(
            field,
            ty,
            live.iter().map(|s| (s, payloads[s as usize].as_deref())),
        );
    }

    /// The declared payload indexes.
    pub fn field_indexes(&self) -> Vec<(String, FieldType)> {
        self.inner.read().payload_idx.fields()
    }

    /// Live points (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.inner.read().live.len() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in the graph, tombstones included.
    pub fn slots(&self) -> usize {
        self.inner.read().graph.len()
    }

    /// Bytes of memory the index holds (vectors, graph, ids, payloads).
    pub fn memory_bytes(&self) -> usize {
        let g = self.inner.read();
        let n = g.graph.len();
        let m = g.graph.m();
        let links = n * (2 * m + 1) * 4 + n * 6 + g.graph.upper_bytes();
        let payload: usize = g
            .payloads
            .iter()
            .flatten()
            .map(|p| p.to_string().len() * 2)
            .sum();
        g.store.bytes()
            + links
            + g.ids.bytes()
            + g.payloads.capacity() * std::mem::size_of::<Option<Box<Value>>>()
            + payload
            + n * 16
            + g.live_bits.capacity() * 8
    }

    /// Writes the whole index (see [`VectorIndex::read_snapshot`]).
    pub fn write_snapshot(&self, w: &mut impl Write, last_seq: u64) -> std::io::Result<()> {
        if cfg!(target_endian = "big") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "index snapshots are little-endian; this machine rebuilds at start instead",
            ));
        }
        // No insert or link runs while the graph is written: the snapshot
        // is one consistent state.
        let _writer = self.writer.lock();
        let g = self.inner.read();
        if !g.unlinked.is_empty() {
            // A snapshot's graph must reach every live point.
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "points are still being linked into the graph; snapshot later",
            ));
        }
        let mut w = Counting { w, pos: 0 };
        let w = &mut w;
        let c = &self.cfg;
        w.write_all(SNAP_MAGIC)?;
        put_u64(w, last_seq)?;
        put_u64(w, c.dimension as u64)?;
        w.write_all(&[metric_code(c.metric), quant_code(c.quantization)])?;
        for x in [c.hnsw.m, c.hnsw.ef_construction, c.hnsw.ef_search] {
            put_u64(w, x as u64)?;
        }
        let (levels, links0, upper, entry) = g.graph.export();
        put_u64(w, levels.len() as u64)?;
        w.write_all(&levels)?;
        put_u32s(w, &links0)?;
        put_u32s(w, &upper)?;
        put_u64(w, entry.0 as u64)?;
        w.write_all(&[entry.1])?;
        let st = &g.store;
        put_aligned(w, (st.f32s.len() * 4) as u64, |w| st.f32s.write_to(w))?;
        let mut buf = Vec::with_capacity(st.f16s.len() * 2);
        for x in &st.f16s {
            buf.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        put_bytes(w, &buf)?;
        put_aligned(w, st.codes.len() as u64, |w| st.codes.write_to(w))?;
        put_f32s(w, &st.scales)?;
        put_f32s(w, &st.norms)?;
        let mut buf = Vec::with_capacity(g.ingested.len() * 16);
        for x in g.ingested.iter().chain(g.expires.iter()) {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        put_bytes(w, &buf)?;
        let mut lb = Vec::new();
        g.live.serialize_into(&mut lb)?;
        put_bytes(w, &lb)?;
        let mut ids = Vec::new();
        for slot in 0..g.graph.len() as u32 {
            let k = g
                .ids
                .id_of(slot)
                .filter(|_| g.is_live(slot))
                .map(|i| i.storage_key())
                .unwrap_or_default();
            ids.extend_from_slice(&(k.len() as u32).to_le_bytes());
            ids.extend_from_slice(k.as_bytes());
        }
        put_bytes(w, &ids)?;
        let mut pl = Vec::new();
        for p in &g.payloads {
            let s = p.as_ref().map(|v| v.to_string()).unwrap_or_default();
            pl.extend_from_slice(&(s.len() as u32).to_le_bytes());
            pl.extend_from_slice(s.as_bytes());
        }
        put_bytes(w, &pl)?;
        let fields = g.payload_idx.fields();
        put_u64(w, fields.len() as u64)?;
        for (f, t) in fields {
            put_bytes(w, f.as_bytes())?;
            w.write_all(&[field_code(t)])?;
        }
        w.write_all(SNAP_END)?;
        Ok(())
    }

    /// Maps a snapshot file and reads it (see [`VectorIndex::read_snapshot`]).
    pub fn open_snapshot(path: &std::path::Path, cfg: IndexConfig) -> Result<(VectorIndex, u64)> {
        let map = crate::mmap::map(path).map_err(|e| {
            Error::unavailable(format!("cannot map {}", path.display())).with_source(e)
        })?;
        Self::read_snapshot(&map, cfg)
    }

    /// Reads a snapshot written for `cfg`; returns the index and the last
    /// change it contains. Any mismatch or damage is an error (the caller
    /// then rebuilds from the rows).
    pub fn read_snapshot(map: &crate::mmap::Map, cfg: IndexConfig) -> Result<(VectorIndex, u64)> {
        let bytes: &[u8] = map;
        let bad = |what: &str| Error::internal(format!("index snapshot is damaged: {what}"));
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(SNAP_MAGIC.len()).ok_or_else(|| bad("magic"))? != SNAP_MAGIC
            || !bytes.ends_with(SNAP_END)
        {
            return Err(bad("magic"));
        }
        let last_seq = r.u64().ok_or_else(|| bad("header"))?;
        let dim = r.u64().ok_or_else(|| bad("header"))? as usize;
        let codes = r.take(2).ok_or_else(|| bad("header"))?;
        let (m, efc, efs) = (
            r.u64().ok_or_else(|| bad("header"))? as usize,
            r.u64().ok_or_else(|| bad("header"))? as usize,
            r.u64().ok_or_else(|| bad("header"))? as usize,
        );
        if dim != cfg.dimension
            || codes[0] != metric_code(cfg.metric)
            || codes[1] != quant_code(cfg.quantization)
            || m != cfg.hnsw.m
            || efc != cfg.hnsw.ef_construction
        {
            return Err(bad("made for another configuration"));
        }
        let _ = efs;
        let n = r.u64().ok_or_else(|| bad("levels"))? as usize;
        let levels = r.take(n).ok_or_else(|| bad("levels"))?.to_vec();
        let links0 = r.u32s().ok_or_else(|| bad("links"))?;
        let upper = r.u32s().ok_or_else(|| bad("links"))?;
        let entry = (
            r.u64().ok_or_else(|| bad("entry"))? as u32,
            r.take(1).ok_or_else(|| bad("entry"))?[0],
        );
        let graph =
            Graph::import(m, efc, levels, links0, upper, entry).ok_or_else(|| bad("graph"))?;
        let (off, len) = r.aligned().ok_or_else(|| bad("vectors"))?;
        let f32s = Column::<f32>::from_map(map, off, len).ok_or_else(|| bad("vectors"))?;
        let f16s = r
            .bytes()
            .ok_or_else(|| bad("vectors"))?
            .chunks_exact(2)
            .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
            .collect::<Vec<_>>();
        let (off, len) = r.aligned().ok_or_else(|| bad("vectors"))?;
        let codes = Column::<i8>::from_map(map, off, len).ok_or_else(|| bad("vectors"))?;
        let scales = f32s_of(r.bytes().ok_or_else(|| bad("vectors"))?);
        let norms = f32s_of(r.bytes().ok_or_else(|| bad("vectors"))?);
        let full = match cfg.quantization {
            Quantization::None => f32s.len(),
            Quantization::F16 => f16s.len(),
            Quantization::I8 => codes.len(),
        };
        let keep_norms = cfg.metric == Metric::Euclidean;
        if full != n * dim
            || codes.len() != n * dim
            || scales.len() != n
            || norms.len() != if keep_norms { n } else { 0 }
        {
            return Err(bad("vector count"));
        }
        let store = Store {
            kind: cfg.quantization,
            dim,
            f32s,
            f16s,
            codes,
            scales,
            norms,
            keep_norms,
        };
        let times = r.bytes().ok_or_else(|| bad("times"))?;
        if times.len() != n * 16 {
            return Err(bad("times"));
        }
        let t: Vec<i64> = times
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let (ingested, expires) = (t[..n].to_vec(), t[n..].to_vec());
        let live = RoaringBitmap::deserialize_from(r.bytes().ok_or_else(|| bad("live"))?)
            .map_err(|_| bad("live"))?;
        if live.max().is_some_and(|m| m as usize >= n) {
            return Err(bad("live"));
        }
        let mut ids = IdTable::default();
        ids.nums.reserve_exact(n);
        ids.num_slots.reserve(live.len() as usize);
        let mut ir = Reader {
            b: r.bytes().ok_or_else(|| bad("ids"))?,
            at: 0,
        };
        for slot in 0..n as u32 {
            let k = ir.bytes32().ok_or_else(|| bad("ids"))?;
            ids.push_slot();
            if k.is_empty() {
                if live.contains(slot) {
                    return Err(bad("ids"));
                }
                continue;
            }
            let key = std::str::from_utf8(k).map_err(|_| bad("ids"))?;
            let id = PointId::from_storage_key(key)?;
            if live.contains(slot) {
                ids.insert(id, slot);
            }
        }
        let mut payloads = Vec::with_capacity(n);
        let mut pr = Reader {
            b: r.bytes().ok_or_else(|| bad("payloads"))?,
            at: 0,
        };
        for _ in 0..n {
            let p = pr.bytes32().ok_or_else(|| bad("payloads"))?;
            payloads.push(if p.is_empty() {
                None
            } else {
                Some(Box::new(
                    serde_json::from_slice(p).map_err(|_| bad("payloads"))?,
                ))
            });
        }
        let nf = r.u64().ok_or_else(|| bad("fields"))?;
        let mut payload_idx = PayloadIndexes::new();
        for _ in 0..nf {
            let f = std::str::from_utf8(r.bytes().ok_or_else(|| bad("fields"))?)
                .map_err(|_| bad("fields"))?
                .to_owned();
            let t = field_from_code(r.take(1).ok_or_else(|| bad("fields"))?[0])
                .ok_or_else(|| bad("fields"))?;
            payload_idx.add_field(
                &f,
                t,
                live.iter().map(|s| (s, payloads[s as usize].as_deref())),
            );
        }
        let mut live_bits = vec![0u64; n.div_ceil(64)];
        for s in live.iter() {
            live_bits[s as usize / 64] |= 1 << (s % 64);
        }
        let expiring = live
            .iter()
            .filter(|&s| expires[s as usize] != i64::MAX)
            .count();
        let mut cfg = cfg;
        cfg.hnsw.ef_search = cfg.hnsw.ef_search.max(1);
        Ok((
            VectorIndex {
                cfg,
                inner: RwLock::new(Inner {
                    graph,
                    store,
                    ids,
                    payloads,
                    ingested,
                    expires,
                    live,
                    live_bits,
                    payload_idx,
                    expiring,
                    unlinked: RoaringBitmap::new(),
                }),
                writer: Mutex::new(()),
            },
            last_seq,
        ))
    }
}

const SNAP_MAGIC: &[u8] = b"STRVIX03";
const SNAP_END: &[u8] = b"STRVEND1";

fn metric_code(m: Metric) -> u8 {
    match m {
        Metric::Cosine => 0,
        Metric::Dot => 1,
        Metric::Euclidean => 2,
    }
}
fn quant_code(q: Quantization) -> u8 {
    match q {
        Quantization::None => 0,
        Quantization::F16 => 1,
        Quantization::I8 => 2,
    }
}
fn field_code(t: FieldType) -> u8 {
    match t {
        FieldType::Keyword => 0,
        FieldType::Integer => 1,
        FieldType::Float => 2,
        FieldType::Datetime => 3,
        FieldType::Bool => 4,
    }
}
fn field_from_code(c: u8) -> Option<FieldType> {
    Some(match c {
        0 => FieldType::Keyword,
        1 => FieldType::Integer,
        2 => FieldType::Float,
        3 => FieldType::Datetime,
        4 => FieldType::Bool,
        _ => return None,
    })
}

fn put_u64(w: &mut impl Write, x: u64) -> std::io::Result<()> {
    w.write_all(&x.to_le_bytes())
}
fn put_bytes(w: &mut impl Write, b: &[u8]) -> std::io::Result<()> {
    put_u64(w, b.len() as u64)?;
    w.write_all(b)
}
fn put_f32s(w: &mut impl Write, v: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(v.len() * 4);
    for x in v {
        buf.extend_from_slice(&x.to_le_bytes());
    }
    put_bytes(w, &buf)
}

fn f32s_of(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn put_u32s(w: &mut impl Write, v: &[u32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(v.len() * 4);
    for x in v {
        buf.extend_from_slice(&x.to_le_bytes());
    }
    put_bytes(w, &buf)
}

/// A writer that knows its position (for aligned sections).
struct Counting<'a, W: Write> {
    w: &'a mut W,
    pos: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// A section whose data starts on a 64-byte boundary of the file, so it can
/// be used in place from a memory map: `[pad len][pad][data len][data]`.
fn put_aligned<W: Write>(
    w: &mut Counting<'_, W>,
    len: u64,
    data: impl FnOnce(&mut Counting<'_, W>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let pad = (64 - (w.pos + 16) % 64) % 64;
    put_u64(w, pad)?;
    w.write_all(&vec![0u8; pad as usize])?;
    put_u64(w, len)?;
    let start = w.pos;
    data(w)?;
    if w.pos - start != len {
        return Err(std::io::Error::other("section length mismatch"));
    }
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        Some(u64::from_le_bytes(s.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n)
    }
    /// An aligned section: its offset and length.
    fn aligned(&mut self) -> Option<(usize, usize)> {
        let pad = usize::try_from(self.u64()?).ok()?;
        self.take(pad)?;
        let n = usize::try_from(self.u64()?).ok()?;
        let at = self.at;
        self.take(n)?;
        Some((at, n))
    }
    fn bytes32(&mut self) -> Option<&'a [u8]> {
        let s = self.take(4)?;
        let n = u32::from_le_bytes(s.try_into().ok()?) as usize;
        self.take(n)
    }
    fn u32s(&mut self) -> Option<Vec<u32>> {
        let b = self.bytes()?;
        if b.len() % 4 != 0 {
            return None;
        }
        Some(
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    /// Points stored unlinked (a restart's replay) are found by every kind
    /// of search at once, replace and are replaced like any other, and are
    /// found by the graph once linked.
    #[test]
    fn unlinked_points_are_searchable_before_and_after_linking() {
        use crate::behavior::vector;
        let cfg = IndexConfig {
            dimension: 16,
            metric: Metric::Cosine,
            hnsw: HnswParams::default(),
            quantization: Quantization::None,
        };
        let idx = VectorIndex::new(cfg);
        let point = |i: u64| IndexedPoint {
            id: PointId::Num(i),
            vector: vector(i, 16),
            payload: Some(serde_json::json!({ "g": i % 2 })),
            ingested_at: 0,
            expires_at: None,
        };
        // A linked graph of 3,000, then 1,000 more unlinked, one of them
        // replacing a linked point.
        idx.upsert_batch((0..3_000).map(point).collect(), 2);
        let mut tail: Vec<IndexedPoint> = (3_000..4_000).map(point).collect();
        tail.push(IndexedPoint {
            vector: vector(99_999, 16),
            ..point(7)
        });
        idx.insert_unlinked(tail);
        assert_eq!(idx.pending_links(), 1_001);
        assert_eq!(idx.len(), 4_000);
        let check = |idx: &VectorIndex| {
            for i in (3_000..4_000).step_by(37).chain([0, 1, 2_999]) {
                let hits = idx.search(&vector(i, 16), 1, 64, None, 0);
                assert_eq!(
                    hits.first().map(|h| &h.0),
                    Some(&PointId::Num(i)),
                    "point {i}"
                );
            }
            // The replaced point is found by its new vector only.
            let hits = idx.search(&vector(99_999, 16), 1, 64, None, 0);
            assert_eq!(hits.first().map(|h| &h.0), Some(&PointId::Num(7)));
            // Filtered through the graph (half the points pass).
            let f = Filter {
                must: vec![strata_core::filter::Condition::Match {
                    key: "g".into(),
                    value: strata_core::filter::MatchValue::Int(1),
                }],
                ..Default::default()
            };
            for i in (3_001..4_000).step_by(74) {
                let hits = idx.search(&vector(i, 16), 1, 64, Some(&f), 0);
                assert_eq!(
                    hits.first().map(|h| &h.0),
                    Some(&PointId::Num(i)),
                    "filtered {i}"
                );
            }
        };
        check(&idx);
        // No snapshot while points are unlinked: it could not reach them.
        let mut buf = Vec::new();
        assert!(idx.write_snapshot(&mut buf, 1).is_err());
        while idx.link_pending(300, 2) > 0 {}
        assert_eq!(idx.pending_links(), 0);
        check(&idx);
        buf.clear();
        idx.write_snapshot(&mut buf, 1)
            .expect("snapshot once linked");
    }

    use super::*;
    use crate::behavior::vector;

    fn build(metric: Metric, n: u64, dim: usize, threads: usize) -> VectorIndex {
        let idx = VectorIndex::new(IndexConfig {
            dimension: dim,
            metric,
            hnsw: HnswParams::default(),
            quantization: Quantization::None,
        });
        let pts = (0..n)
            .map(|i| IndexedPoint {
                id: PointId::Num(i),
                vector: vector(i, dim),
                payload: None,
                ingested_at: 0,
                expires_at: None,
            })
            .collect();
        idx.upsert_batch(pts, threads);
        idx
    }

    #[test]
    fn a_wide_search_on_a_small_graph_is_exact() {
        for metric in [Metric::Euclidean, Metric::Cosine, Metric::Dot] {
            for threads in [1, 2] {
                let idx = build(metric, 300, 16, threads);
                let mut misses = 0;
                for q in 0..300u64 {
                    let v = vector(q + 1000, 16);
                    let got: Vec<PointId> = idx
                        .search(&v, 10, 300, None, 0)
                        .into_iter()
                        .map(|x| x.0)
                        .collect();
                    let g = idx.inner.read();
                    let mut all: Vec<(f32, u32)> = (0..300u32)
                        .map(|s| (g.store.exact_query(metric, &v, s), s))
                        .collect();
                    all.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let want: Vec<PointId> =
                        all[..10].iter().map(|x| PointId::Num(x.1 as u64)).collect();
                    if got != want {
                        misses += 1;
                    }
                }
                assert_eq!(misses, 0, "{metric:?} threads {threads}");
            }
        }
    }
}
