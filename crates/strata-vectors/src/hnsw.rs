//! The HNSW graph (Malkov & Yashunin), written for Strata's needs:
//!
//! - **Lock-free reads.** Links are `AtomicU32`s read with relaxed loads (a
//!   plain load on x86), so searches never take a lock and run alongside
//!   inserts. Inserts lock one node at a time while rewriting its links.
//! - **Parallel build.** Several threads insert at once (per-node locks),
//!   like hnswlib.
//! - **Filters during traversal.** The search walks every node but only
//!   *accepts* those a predicate passes into the result set, and keeps going
//!   until it holds `ef` accepted nodes (the hnswlib strategy); the planner in
//!   [`crate::index`] sends very selective filters to an exact scan instead.
//! - **Tombstones.** A deleted node stays in the graph as a waypoint and is
//!   never accepted.
//!
//! Layer 0 keeps `2·m` links per node, upper layers `m`; neighbours are chosen
//! with the paper's heuristic (keeps links in diverse directions). Storage
//! grows only under the owner's write lock ([`Graph::reserve`]); everything
//! else takes `&self`.

use parking_lot::Mutex;
use std::cell::RefCell;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering};

/// Distances between stored nodes and to a query.
pub trait Space: Sync {
    /// The query as the space wants it (e.g. normalised).
    type Query: ?Sized;
    fn dist_query(&self, q: &Self::Query, node: u32) -> f32;
    fn dist_nodes(&self, a: u32, b: u32) -> f32;
    fn prefetch(&self, _node: u32) {}
}

/// A (distance, node) pair ordered by distance, then node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cand {
    pub dist: f32,
    pub node: u32,
}

impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.node.cmp(&other.node))
    }
}

const NONE: u32 = u32::MAX;

/// The graph's links.
#[derive(Debug)]
pub struct Graph {
    m: usize,
    m0: usize,
    ef_construction: usize,
    level_mult: f64,
    /// Layer 0: per node `[count, link × m0]`.
    links0: Vec<AtomicU32>,
    /// Layers 1..=level of every node with a level above 0, one after the
    /// other: `level × [count, link × m]` each.
    upper: Vec<AtomicU32>,
    /// Where each node's upper layers start in `upper` (`NONE`: level 0).
    upper_at: Vec<u32>,
    levels: Vec<u8>,
    locks: Vec<Mutex<()>>,
    /// Entry node and its level (`NONE` when empty).
    entry: Mutex<(u32, u8)>,
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

/// Generation-stamped visited marks (no clearing between searches).
#[derive(Debug, Default)]
struct Visited {
    marks: Vec<u16>,
    gen: u16,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.gen = 1;
        }
    }
    /// Marks `i`; returns whether it was already marked.
    #[inline]
    fn test_and_set(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        let seen = *m == self.gen;
        *m = self.gen;
        seen
    }
}

impl Graph {
    pub fn new(m: usize, ef_construction: usize) -> Self {
        let m = m.max(2);
        Graph {
            m,
            m0: 2 * m,
            ef_construction: ef_construction.max(m),
            level_mult: 1.0 / (m as f64).ln(),
            links0: Vec::new(),
            upper: Vec::new(),
            upper_at: Vec::new(),
            levels: Vec::new(),
            locks: Vec::new(),
            entry: Mutex::new((NONE, 0)),
        }
    }

    /// Nodes allocated (live or not).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn m(&self) -> usize {
        self.m
    }

    /// Bytes held by the upper layers' links.
    pub fn upper_bytes(&self) -> usize {
        self.upper.capacity() * 4 + self.upper_at.capacity() * 4
    }

    /// Draws a level for a new node.
    pub fn random_level(&self, rng: &mut impl rand::Rng) -> u8 {
        let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        ((-u.ln() * self.level_mult) as usize).min(32) as u8
    }

    /// Allocates a node with no links (needs exclusive access).
    pub fn push_node(&mut self, level: u8) -> u32 {
        let id = self.levels.len() as u32;
        self.levels.push(level);
        self.links0
            .extend((0..self.m0 + 1).map(|_| AtomicU32::new(0)));
        if level > 0 {
            self.upper_at.push(self.upper.len() as u32);
            self.upper
                .extend((0..level as usize * (self.m + 1)).map(|_| AtomicU32::new(0)));
        } else {
            self.upper_at.push(NONE);
        }
        self.locks.push(Mutex::new(()));
        id
    }

    /// Room for `extra` more nodes without reallocating.
    pub fn reserve(&mut self, extra: usize) {
        self.levels.reserve(extra);
        self.links0.reserve(extra * (self.m0 + 1));
        self.upper_at.reserve(extra);
        self.upper
            .reserve(extra.div_ceil(self.m) * (self.m + 1) + 64);
        self.locks.reserve(extra);
    }

    fn slot(&self, node: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let s = node as usize * (self.m0 + 1);
            &self.links0[s..s + self.m0 + 1]
        } else {
            let w = self.m + 1;
            let at = self.upper_at[node as usize];
            if at == NONE || layer > self.levels[node as usize] as usize {
                return &[];
            }
            let start = at as usize + (layer - 1) * w;
            &self.upper[start..start + w]
        }
    }

    /// The links of `node` on `layer` (copied out).
    #[inline]
    pub fn neighbors(&self, node: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        let s = self.slot(node, layer);
        if s.is_empty() {
            return;
        }
        let n = (s[0].load(Ordering::Relaxed) as usize).min(s.len() - 1);
        out.extend(s[1..=n].iter().map(|a| a.load(Ordering::Relaxed)));
    }

    fn set_neighbors(&self, node: u32, layer: usize, links: &[u32]) {
        let s = self.slot(node, layer);
        let n = links.len().min(s.len().saturating_sub(1));
        for (a, l) in s[1..=n].iter().zip(links) {
            a.store(*l, Ordering::Relaxed);
        }
        s[0].store(n as u32, Ordering::Release);
    }

    pub fn level(&self, node: u32) -> u8 {
        self.levels[node as usize]
    }

    /// Every node's links on every layer, for snapshots.
    pub fn export(&self) -> (Vec<u8>, Vec<u32>, Vec<u32>, (u32, u8)) {
        let l0 = self
            .links0
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        let up = self
            .upper
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        (self.levels.clone(), l0, up, *self.entry.lock())
    }

    /// Rebuilds a graph from [`Graph::export`]'s parts; `None` if they do not fit.
    pub fn import(
        m: usize,
        ef_construction: usize,
        levels: Vec<u8>,
        links0: Vec<u32>,
        upper: Vec<u32>,
        entry: (u32, u8),
    ) -> Option<Self> {
        let mut g = Graph::new(m, ef_construction);
        if g.m != m || links0.len() != levels.len() * (g.m0 + 1) {
            return None;
        }
        let mut at = 0usize;
        for &lv in &levels {
            if lv > 0 {
                g.upper_at.push(u32::try_from(at).ok()?);
                at += lv as usize * (g.m + 1);
            } else {
                g.upper_at.push(NONE);
            }
            g.locks.push(Mutex::new(()));
        }
        if at != upper.len() {
            return None;
        }
        let n = levels.len() as u32;
        let fits = |block: &[u32], width: usize| {
            block.chunks(width).all(|c| {
                c.first().is_some_and(|&cnt| (cnt as usize) < width)
                    && c[1..].iter().all(|&l| l < n)
            })
        };
        if !fits(&links0, g.m0 + 1) || !fits(&upper, g.m + 1) {
            return None;
        }
        g.upper = upper.into_iter().map(AtomicU32::new).collect();
        g.links0 = links0.into_iter().map(AtomicU32::new).collect();
        g.levels = levels;
        if entry.0 != NONE && entry.0 >= n {
            return None;
        }
        *g.entry.lock() = entry;
        Some(g)
    }

    /// Links a node allocated with [`Graph::push_node`] into the graph:
    /// candidates are found with `fast` (approximate) distances, re-scored
    /// and selected with `space` (exact) ones.
    pub fn insert<F: Space<Query = u32>, S: Space<Query = u32>>(
        &self,
        fast: &F,
        space: &S,
        node: u32,
    ) {
        let level = self.levels[node as usize] as usize;
        let (mut ep, top) = {
            let mut e = self.entry.lock();
            if e.0 == NONE {
                *e = (node, level as u8);
                return;
            }
            *e
        };
        let top = top as usize;
        let mut buf = Vec::new();
        let mut ep_d = fast.dist_query(&node, ep);
        for layer in (level + 1..=top).rev() {
            (ep, ep_d) = self.greedy(fast, &node, ep, ep_d, layer, &mut buf);
        }
        let mut entry_points = vec![Cand {
            dist: ep_d,
            node: ep,
        }];
        // First the new node's own links on every layer, then the links back
        // to it: it becomes reachable only once its lists are complete, so a
        // concurrent insert never descends through a half-linked node (nor
        // has its back-link overwritten by the node's own list).
        let mut back: Vec<(usize, usize, Vec<Cand>)> = Vec::new();
        for layer in (0..=level.min(top)).rev() {
            let found = self.search_layer(
                fast,
                &node,
                &entry_points,
                self.ef_construction,
                layer,
                &mut |_| true,
                Some(node),
            );
            let mut rescored: Vec<Cand> = found
                .iter()
                .map(|c| Cand {
                    dist: space.dist_nodes(node, c.node),
                    node: c.node,
                })
                .collect();
            rescored.sort_unstable();
            let max = if layer == 0 { self.m0 } else { self.m };
            let chosen = self.select(space, &rescored, self.m);
            {
                let _g = self.locks[node as usize].lock();
                let ids: Vec<u32> = chosen.iter().map(|c| c.node).collect();
                self.set_neighbors(node, layer, &ids);
            }
            back.push((layer, max, chosen));
            entry_points = found;
        }
        for (layer, max, chosen) in back {
            for c in &chosen {
                self.link_back(space, c.node, node, c.dist, layer, max, &mut buf);
            }
        }
        if level > top {
            let mut e = self.entry.lock();
            if level > e.1 as usize || e.0 == NONE {
                *e = (node, level as u8);
            }
        }
    }

    /// Adds `new` to `node`'s links on `layer`, pruning with the heuristic
    /// when the list is full.
    #[allow(clippy::too_many_arguments)]
    fn link_back<S: Space<Query = u32>>(
        &self,
        space: &S,
        node: u32,
        new: u32,
        dist: f32,
        layer: usize,
        max: usize,
        buf: &mut Vec<u32>,
    ) {
        let _g = self.locks[node as usize].lock();
        self.neighbors(node, layer, buf);
        if buf.contains(&new) {
            return;
        }
        if buf.len() < max {
            buf.push(new);
            self.set_neighbors(node, layer, buf);
            return;
        }
        let mut cands: Vec<Cand> = buf
            .iter()
            .map(|&n| Cand {
                dist: space.dist_nodes(node, n),
                node: n,
            })
            .collect();
        cands.push(Cand { dist, node: new });
        cands.sort_unstable();
        let kept = self.select(space, &cands, max);
        let ids: Vec<u32> = kept.iter().map(|c| c.node).collect();
        self.set_neighbors(node, layer, &ids);
    }

    /// The paper's neighbour heuristic over candidates sorted nearest first:
    /// keep a candidate only if it is closer to the base than to every kept one.
    fn select<S: Space<Query = u32>>(&self, space: &S, sorted: &[Cand], m: usize) -> Vec<Cand> {
        let mut kept: Vec<Cand> = Vec::with_capacity(m);
        for c in sorted {
            if kept.len() >= m {
                break;
            }
            if kept
                .iter()
                .all(|k| space.dist_nodes(c.node, k.node) > c.dist)
            {
                kept.push(*c);
            }
        }
        kept
    }

    fn greedy<S: Space>(
        &self,
        space: &S,
        q: &S::Query,
        mut ep: u32,
        mut ep_d: f32,
        layer: usize,
        buf: &mut Vec<u32>,
    ) -> (u32, f32) {
        loop {
            let mut moved = false;
            self.neighbors(ep, layer, buf);
            for &n in buf.iter() {
                let d = space.dist_query(q, n);
                if d < ep_d {
                    ep_d = d;
                    ep = n;
                    moved = true;
                }
            }
            if !moved {
                return (ep, ep_d);
            }
        }
    }

    /// Beam search on one layer. Every reached node is a waypoint; only those
    /// `accept` passes enter the result, which holds up to `ef` nodes, nearest
    /// first. `skip` is never visited (the node being inserted).
    #[allow(clippy::too_many_arguments)]
    pub fn search_layer<S: Space>(
        &self,
        space: &S,
        q: &S::Query,
        entry: &[Cand],
        ef: usize,
        layer: usize,
        accept: &mut dyn FnMut(u32) -> bool,
        skip: Option<u32>,
    ) -> Vec<Cand> {
        VISITED.with(|v| {
            let mut visited = v.borrow_mut();
            visited.reset(self.len());
            if let Some(s) = skip {
                visited.test_and_set(s);
            }
            let mut cands: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef * 4);
            let mut results: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
            for e in entry {
                if visited.test_and_set(e.node) {
                    continue;
                }
                cands.push(Reverse(*e));
                if accept(e.node) {
                    results.push(*e);
                }
            }
            let mut buf: Vec<u32> = Vec::with_capacity(self.m0);
            while let Some(Reverse(c)) = cands.pop() {
                if results.len() >= ef {
                    if let Some(worst) = results.peek() {
                        if c.dist > worst.dist {
                            break;
                        }
                    }
                }
                self.neighbors(c.node, layer, &mut buf);
                buf.retain(|&n| !visited.test_and_set(n));
                if let Some(&first) = buf.first() {
                    space.prefetch(first);
                }
                for i in 0..buf.len() {
                    let n = buf[i];
                    if let Some(&next) = buf.get(i + 1) {
                        space.prefetch(next);
                    }
                    let d = space.dist_query(q, n);
                    let worst = results.peek().map(|w| w.dist).unwrap_or(f32::INFINITY);
                    if results.len() < ef || d < worst {
                        let cand = Cand { dist: d, node: n };
                        cands.push(Reverse(cand));
                        if accept(n) {
                            results.push(cand);
                            if results.len() > ef {
                                results.pop();
                            }
                        }
                    }
                }
            }
            results.into_sorted_vec()
        })
    }

    /// k-NN search: greedy descent on the upper layers, beam search with
    /// `ef` on layer 0 accepting only what `accept` passes.
    pub fn search<S: Space>(
        &self,
        space: &S,
        q: &S::Query,
        ef: usize,
        accept: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<Cand> {
        let (ep, top) = *self.entry.lock();
        if ep == NONE {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let mut cur = (ep, space.dist_query(q, ep));
        for layer in (1..=top as usize).rev() {
            cur = self.greedy(space, q, cur.0, cur.1, layer, &mut buf);
        }
        self.search_layer(
            space,
            q,
            &[Cand {
                dist: cur.1,
                node: cur.0,
            }],
            ef,
            0,
            accept,
            None,
        )
    }
}
