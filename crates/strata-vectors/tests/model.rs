//! Property test: random sequences of upserts (some with a TTL), deletes,
//! clock steps and searches (with and without filters) against an exact
//! brute-force model. Every result must be live, unexpired and pass its
//! filter, with the exact score; recall@k against the model must be ≥ 0.98
//! at ef ≥ 128.

use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use strata_core::filter::Filter;
use strata_vectors::*;

const DIM: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Upsert(Vec<(u64, Vec<f32>, u8, Option<i64>)>),
    Delete(Vec<u64>),
    Tick(i64),
    Search {
        q: Vec<f32>,
        k: usize,
        ef: usize,
        group: Option<u8>,
    },
}

fn vec_strategy() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-1.0f32..1.0, DIM)
        .prop_filter("non-zero", |v| v.iter().map(|x| x * x).sum::<f32>() > 1e-3)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(
            (0u64..400, vec_strategy(), 0u8..8, prop::option::weighted(0.2, 1i64..50)),
            1..60
        )
        .prop_map(Op::Upsert),
        1 => prop::collection::vec(0u64..400, 1..30).prop_map(Op::Delete),
        1 => (1i64..30).prop_map(Op::Tick),
        3 => (vec_strategy(), 1usize..20, 128usize..256, prop::option::of(0u8..8))
            .prop_map(|(q, k, ef, group)| Op::Search { q, k, ef, group }),
    ]
}

struct Model {
    points: BTreeMap<u64, (Vec<f32>, u8, Option<i64>)>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (na * nb)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn index_agrees_with_a_brute_force_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let idx = VectorIndex::new(IndexConfig {
            dimension: DIM,
            metric: Metric::Cosine,
            hnsw: HnswParams { m: 8, ef_construction: 64, ef_search: 64 },
            quantization: Quantization::None,
        });
        idx.create_field_index("g", FieldType::Integer);
        let mut model = Model { points: BTreeMap::new() };
        let mut now: i64 = 1_000;
        let (mut found, mut wanted) = (0usize, 0usize);
        for op in ops {
            match op {
                Op::Upsert(pts) => {
                    let mut batch = Vec::new();
                    for (id, v, g, ttl) in pts {
                        let exp = ttl.map(|t| now + t);
                        model.points.insert(id, (v.clone(), g, exp));
                        batch.push(IndexedPoint {
                            id: PointId::Num(id),
                            vector: v,
                            payload: Some(json!({"g": g})),
                            ingested_at: now,
                            expires_at: exp,
                        });
                    }
                    idx.upsert_batch(batch, 2);
                }
                Op::Delete(ids) => {
                    let pids: Vec<PointId> = ids.iter().map(|i| PointId::Num(*i)).collect();
                    let existed = ids
                        .iter()
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .filter(|i| model.points.remove(i).is_some())
                        .count();
                    prop_assert_eq!(idx.delete(&pids), existed);
                }
                Op::Tick(t) => now += t,
                Op::Search { q, k, ef, group } => {
                    let filter = group.map(|g| {
                        Filter::parse(&json!({"must": [{"key": "g", "match": {"value": g}}]}))
                            .expect("filter")
                    });
                    let got = idx.search(&q, k, ef, filter.as_ref(), now);
                    let alive = |p: &(Vec<f32>, u8, Option<i64>)| p.2.is_none_or(|e| e > now);
                    let mut exact: Vec<(f32, u64)> = model
                        .points
                        .iter()
                        .filter(|(_, p)| alive(p) && group.is_none_or(|g| p.1 == g))
                        .map(|(id, p)| (cosine(&q, &p.0), *id))
                        .collect();
                    exact.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    let want: Vec<u64> = exact.iter().take(k).map(|x| x.1).collect();
                    prop_assert_eq!(got.len(), want.len(), "as many results as live matches allow");
                    for (id, score) in &got {
                        let PointId::Num(n) = id else { panic!("numeric ids only") };
                        let p = model.points.get(n);
                        prop_assert!(p.is_some(), "deleted point {} returned", n);
                        let p = p.expect("checked");
                        prop_assert!(alive(p), "expired point {} returned", n);
                        prop_assert!(group.is_none_or(|g| p.1 == g), "point {} fails the filter", n);
                        prop_assert!((cosine(&q, &p.0) - score).abs() < 1e-4, "exact score");
                    }
                    for w in got.windows(2) {
                        prop_assert!(w[0].1 >= w[1].1, "best first");
                    }
                    let kth = exact.get(k.min(exact.len()).saturating_sub(1)).map(|x| x.0);
                    wanted += want.len();
                    // A result tied with the k-th exact score counts as found.
                    found += got
                        .iter()
                        .filter(|(id, s)| {
                            let PointId::Num(n) = id else { return false };
                            want.contains(n) || kth.is_some_and(|t| (s - t).abs() < 1e-6)
                        })
                        .count();
                    prop_assert_eq!(idx.count(filter.as_ref(), now) as usize, exact.len());
                }
            }
        }
        if wanted > 0 {
            let recall = found as f64 / wanted as f64;
            prop_assert!(recall >= 0.98, "recall {recall} over {wanted}");
        }
    }
}
