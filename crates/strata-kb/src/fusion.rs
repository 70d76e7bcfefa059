//! Fusing a keyword ranking and a dense ranking into one (hybrid search).

use std::collections::HashMap;

/// How hybrid search fuses its two rankings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ 1 / (k + rank)` (rank from 1).
    Rrf { k: f32 },
    /// Weighted sum of scores normalised per ranking (min–max over the
    /// candidates; a list with one candidate scores it 1): `dense_weight ·
    /// dense + (1 − dense_weight) · keyword`.
    Weighted { dense_weight: f32 },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: 60.0 }
    }
}

/// Fuses rankings of ids (best first, each with its own score) into one
/// ranking of (id, fused score), best first. Ties keep the keyword order.
pub fn fuse<K: Clone + Eq + std::hash::Hash>(
    keyword: &[(K, f32)],
    dense: &[(K, f32)],
    fusion: Fusion,
) -> Vec<(K, f32)> {
    let mut scores: HashMap<K, (f32, usize)> = HashMap::new();
    let mut order = 0usize;
    let mut add = |id: &K, s: f32| {
        let e = scores.entry(id.clone()).or_insert_with(|| {
            order += 1;
            (0.0, order)
        });
        e.0 += s;
    };
    match fusion {
        Fusion::Rrf { k } => {
            for (rank, (id, _)) in keyword.iter().enumerate() {
                add(id, 1.0 / (k + rank as f32 + 1.0));
            }
            for (rank, (id, _)) in dense.iter().enumerate() {
                add(id, 1.0 / (k + rank as f32 + 1.0));
            }
        }
        Fusion::Weighted { dense_weight } => {
            let w = dense_weight.clamp(0.0, 1.0);
            for (id, s) in normalise(keyword) {
                add(id, (1.0 - w) * s);
            }
            for (id, s) in normalise(dense) {
                add(id, w * s);
            }
        }
    }
    let mut out: Vec<(K, f32, usize)> = scores.into_iter().map(|(id, (s, o))| (id, s, o)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(id, s, _)| (id, s)).collect()
}

fn normalise<K>(list: &[(K, f32)]) -> impl Iterator<Item = (&K, f32)> {
    let max = list.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
    let min = list.iter().map(|x| x.1).fold(f32::INFINITY, f32::min);
    let span = max - min;
    list.iter().map(move |(id, s)| {
        let n = if span > f32::EPSILON {
            (s - min) / span
        } else {
            1.0
        };
        (id, n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let kw = [("a", 9.0), ("b", 5.0), ("c", 1.0)];
        let de = [("d", 0.9), ("b", 0.8), ("c", 0.1)];
        let f = fuse(&kw, &de, Fusion::default());
        assert_eq!(f[0].0, "b");
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn weighted_follows_the_weight() {
        let kw = [("a", 9.0), ("b", 1.0)];
        let de = [("b", 0.9), ("a", 0.1)];
        let f = fuse(&kw, &de, Fusion::Weighted { dense_weight: 0.8 });
        assert_eq!(f[0].0, "b");
        let f = fuse(&kw, &de, Fusion::Weighted { dense_weight: 0.2 });
        assert_eq!(f[0].0, "a");
    }
}
