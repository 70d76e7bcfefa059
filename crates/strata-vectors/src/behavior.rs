//! The behaviour suite every [`VectorStore`] backend passes (the embedded
//! engine now, Qdrant later). Each behaviour is a `pub async fn` that takes a
//! store and a bot (or two) that exist and own nothing yet.
//! [`for_each_behavior!`] lists them all, so a backend's tests make one test
//! per behaviour — one failure never hides the others.
//!
//! Cases compare against exact brute force where results are deterministic
//! (small collections, where the planner and the graph must both be exact).

use serde_json::{json, Value};
use strata_core::filter::Filter;
use strata_core::types::BotId;
use strata_core::vectors::*;
use strata_core::{ErrorKind, Result};

fn spec(name: &str, dim: usize, metric: Metric) -> CollectionSpec {
    CollectionSpec {
        name: name.into(),
        dimension: dim,
        metric,
        hnsw: HnswParams::default(),
        quantization: Quantization::None,
    }
}

/// A deterministic pseudo-random vector.
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 2001) as f32 / 1000.0) - 1.0
        })
        .collect()
}

fn point(id: u64, dim: usize, payload: Value) -> PointInput {
    PointInput {
        id: PointId::Num(id),
        vector: vector(id, dim),
        payload: Some(payload),
        ttl_seconds: None,
    }
}

fn search(v: Vec<f32>, k: usize, filter: Option<Value>) -> SearchRequest {
    SearchRequest {
        vector: v,
        k,
        filter: filter.map(|f| Filter::parse(&f).expect("test filter parses")),
        ef: Some(256),
        score_threshold: None,
        with_payload: true,
        with_vector: false,
    }
}

fn code_of<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().to_owned(),
    }
}

const Q: VectorQuota = VectorQuota {
    max_collections: 100,
    max_points: 1_000_000,
};

/// Exact top-k by the metric's score, best first.
fn brute(
    points: &[(PointId, Vec<f32>, Value)],
    q: &[f32],
    k: usize,
    metric: Metric,
    keep: impl Fn(&Value) -> bool,
) -> Vec<PointId> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut s: Vec<(f32, PointId)> = points
        .iter()
        .filter(|p| keep(&p.2))
        .map(|(id, v, _)| {
            let score = match metric {
                Metric::Dot => v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(),
                Metric::Cosine => {
                    v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>() / (norm(v) * norm(q))
                }
                Metric::Euclidean => -v
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt(),
            };
            (score, id.clone())
        })
        .collect();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    s.into_iter().take(k).map(|x| x.1).collect()
}

/// Calls `$callback! { behavior(args), … }` with every behaviour in this
/// module and the arguments it takes after the store: `bot` (a bot that
/// exists) and `other` (a second one). A test file turns each entry into
/// `behavior::$name(&store, $(&$arg),*)`. `for_each_behavior!(callback,
/// args…)` passes the extra arguments first: `$callback! { args… ; … }`.
#[doc(hidden)]
#[macro_export]
macro_rules! __vectors_for_each_behavior {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            $($($args)* ;)?
            collections(bot),
            points(bot),
            bad_input_changes_nothing(bot),
            search_matches_brute_force(bot),
            filters(bot),
            delete_scroll_count(bot),
            scroll_from_and_point_conditions(bot),
            ttl(bot),
            ingestion_time(bot),
            quotas(bot),
            isolation(bot, other),
        }
    };
}
#[doc(inline)]
pub use crate::__vectors_for_each_behavior as for_each_behavior;

/// Collections: create, get, list, drop, duplicates, names, dimensions.
pub async fn collections(s: &dyn VectorStore, bot: &BotId) {
    let info = s
        .create_collection(bot, spec("docs", 8, Metric::Cosine), Q)
        .await
        .expect("create");
    assert_eq!(
        (info.name.as_str(), info.dimension, info.points),
        ("docs", 8, 0)
    );
    assert_eq!(info.metric, Metric::Cosine);
    assert_eq!(
        code_of(
            s.create_collection(bot, spec("docs", 4, Metric::Dot), Q)
                .await
        ),
        "collection_exists"
    );
    for bad in ["", "Docs", "a b", "-x", &"x".repeat(65), "ü"] {
        assert_eq!(
            code_of(s.create_collection(bot, spec(bad, 4, Metric::Dot), Q).await),
            "invalid_collection_name",
            "{bad:?}"
        );
    }
    for dim in [0, MAX_DIMENSION + 1] {
        assert_eq!(
            code_of(
                s.create_collection(bot, spec("d", dim, Metric::Dot), Q)
                    .await
            ),
            "invalid_dimension"
        );
    }
    let mut bad_hnsw = spec("h", 4, Metric::Dot);
    bad_hnsw.hnsw.m = 1;
    assert_eq!(
        code_of(s.create_collection(bot, bad_hnsw, Q).await),
        "invalid_hnsw"
    );
    s.create_collection(bot, spec("alpha", 3, Metric::Euclidean), Q)
        .await
        .expect("create");
    let names: Vec<String> = s
        .list_collections(bot)
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["alpha", "docs"]);
    assert_eq!(
        s.get_collection(bot, "alpha").await.expect("get").dimension,
        3
    );
    s.drop_collection(bot, "alpha").await.expect("drop");
    assert_eq!(
        s.get_collection(bot, "alpha")
            .await
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        s.drop_collection(bot, "alpha")
            .await
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::NotFound)
    );
    s.drop_collection(bot, "docs").await.expect("drop");
}

/// Upsert, get, replace; numeric and string ids.
pub async fn points(s: &dyn VectorStore, bot: &BotId) {
    s.create_collection(bot, spec("pts", 4, Metric::Dot), Q)
        .await
        .expect("create");
    let n = s
        .upsert(
            bot,
            "pts",
            vec![
                PointInput {
                    id: PointId::Num(7),
                    vector: vec![1.0, 0.0, 0.0, 0.0],
                    payload: Some(json!({"lang": "en"})),
                    ttl_seconds: None,
                },
                PointInput {
                    id: PointId::Str("5f0c1a2e-1111-4e4e-9c9c-0123456789ab".into()),
                    vector: vec![0.0, 1.0, 0.0, 0.0],
                    payload: None,
                    ttl_seconds: None,
                },
            ],
            Q,
        )
        .await
        .expect("upsert");
    assert_eq!(n, 2);
    let p = s
        .get_point(bot, "pts", &PointId::Num(7), true)
        .await
        .expect("get");
    assert_eq!(p.vector.as_deref(), Some(&[1.0, 0.0, 0.0, 0.0][..]));
    assert_eq!(p.payload, Some(json!({"lang": "en"})));
    let p = s
        .get_point(bot, "pts", &PointId::Num(7), false)
        .await
        .expect("get");
    assert_eq!(p.vector, None);
    // Replace: new vector and payload win everywhere.
    s.upsert(
        bot,
        "pts",
        vec![PointInput {
            id: PointId::Num(7),
            vector: vec![0.0, 0.0, 2.0, 0.0],
            payload: Some(json!({"lang": "de"})),
            ttl_seconds: None,
        }],
        Q,
    )
    .await
    .expect("replace");
    assert_eq!(s.count(bot, "pts", None).await.expect("count"), 2);
    let hits = s
        .search(bot, "pts", search(vec![0.0, 0.0, 1.0, 0.0], 1, None))
        .await
        .expect("search");
    assert_eq!(hits[0].id, PointId::Num(7));
    assert!(
        (hits[0].score - 2.0).abs() < 1e-5,
        "dot score {}",
        hits[0].score
    );
    assert_eq!(hits[0].payload, Some(json!({"lang": "de"})));
    assert_eq!(
        s.get_point(bot, "pts", &PointId::Num(8), false)
            .await
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::NotFound)
    );
    s.drop_collection(bot, "pts").await.expect("drop");
}

/// Bad vectors, ids, TTLs and payloads are refused, and a batch with one bad
/// point stores nothing.
pub async fn bad_input_changes_nothing(s: &dyn VectorStore, bot: &BotId) {
    s.create_collection(bot, spec("bad", 3, Metric::Cosine), Q)
        .await
        .expect("create");
    s.upsert(
        bot,
        "bad",
        vec![PointInput {
            id: PointId::Num(1),
            vector: vec![1.0, 2.0, 3.0],
            payload: Some(json!({"v": 1})),
            ttl_seconds: None,
        }],
        Q,
    )
    .await
    .expect("upsert");
    let good = |id| PointInput {
        id: PointId::Num(id),
        vector: vec![3.0, 2.0, 1.0],
        payload: Some(json!({"v": 2})),
        ttl_seconds: None,
    };
    let cases: Vec<(PointInput, &str)> = vec![
        (
            PointInput {
                vector: vec![1.0, 2.0],
                ..good(1)
            },
            "dimension_mismatch",
        ),
        (
            PointInput {
                vector: vec![1.0, f32::NAN, 0.0],
                ..good(1)
            },
            "invalid_vector",
        ),
        (
            PointInput {
                vector: vec![1.0, f32::INFINITY, 0.0],
                ..good(1)
            },
            "invalid_vector",
        ),
        (
            PointInput {
                vector: vec![0.0, 0.0, 0.0],
                ..good(1)
            },
            "zero_vector",
        ),
        (
            PointInput {
                id: PointId::Str(String::new()),
                ..good(1)
            },
            "invalid_point_id",
        ),
        (
            PointInput {
                ttl_seconds: Some(0),
                ..good(1)
            },
            "invalid_ttl",
        ),
        (
            PointInput {
                payload: Some(json!([1, 2])),
                ..good(1)
            },
            "invalid_payload",
        ),
    ];
    for (bad, code) in cases {
        // The bad point comes second: the good first one must not land either.
        let r = s.upsert(bot, "bad", vec![good(2), bad], Q).await;
        assert_eq!(code_of(r), code);
        assert_eq!(s.count(bot, "bad", None).await.expect("count"), 1);
        let p = s
            .get_point(bot, "bad", &PointId::Num(1), true)
            .await
            .expect("get");
        assert_eq!(p.vector, Some(vec![1.0, 2.0, 3.0]));
        assert_eq!(p.payload, Some(json!({"v": 1})));
    }
    for (req, code) in [
        (search(vec![1.0, 0.0], 3, None), "dimension_mismatch"),
        (search(vec![0.0, 0.0, 0.0], 3, None), "zero_vector"),
        (search(vec![1.0, 0.0, 0.0], 0, None), "invalid_k"),
        (search(vec![1.0, 0.0, 0.0], MAX_K + 1, None), "invalid_k"),
    ] {
        assert_eq!(code_of(s.search(bot, "bad", req).await), code);
    }
    assert_eq!(
        code_of(s.upsert(bot, "nope", vec![good(3)], Q).await),
        "collection_not_found"
    );
    s.drop_collection(bot, "bad").await.expect("drop");
}

/// Search is exact on small collections for every metric, best first, and
/// `score_threshold` keeps only results at least that good.
pub async fn search_matches_brute_force(s: &dyn VectorStore, bot: &BotId) {
    for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
        let name = format!("m-{}", metric.as_str());
        let dim = 16;
        s.create_collection(bot, spec(&name, dim, metric), Q)
            .await
            .expect("create");
        let pts: Vec<PointInput> = (0..300).map(|i| point(i, dim, json!({"i": i}))).collect();
        let model: Vec<(PointId, Vec<f32>, Value)> = pts
            .iter()
            .map(|p| (p.id.clone(), p.vector.clone(), json!({})))
            .collect();
        s.upsert(bot, &name, pts, Q).await.expect("upsert");
        for qs in 1000..1010u64 {
            let q = vector(qs, dim);
            let hits = s
                .search(bot, &name, search(q.clone(), 10, None))
                .await
                .expect("search");
            let want = brute(&model, &q, 10, metric, |_| true);
            let got: Vec<PointId> = hits.iter().map(|h| h.id.clone()).collect();
            assert_eq!(got, want, "{metric:?}");
            for w in hits.windows(2) {
                if metric.higher_is_better() {
                    assert!(w[0].score >= w[1].score);
                } else {
                    assert!(w[0].score <= w[1].score);
                }
            }
            // Threshold at the 5th score: exactly the first five stay.
            let t = hits[4].score;
            let mut req = search(q, 10, None);
            req.score_threshold = Some(t);
            let cut = s.search(bot, &name, req).await.expect("search");
            assert!(
                cut.len() >= 5
                    && cut.iter().all(|h| if metric.higher_is_better() {
                        h.score >= t
                    } else {
                        h.score <= t
                    })
            );
        }
        let batch = s
            .search_batch(
                bot,
                &name,
                vec![
                    search(vector(1, dim), 3, None),
                    search(vector(2, dim), 2, None),
                ],
            )
            .await
            .expect("batch");
        assert_eq!(batch.len(), 2);
        assert_eq!((batch[0].len(), batch[1].len()), (3, 2));
        assert_eq!(batch[0][0].id, PointId::Num(1));
        s.drop_collection(bot, &name).await.expect("drop");
    }
}

/// Filters agree with the brute-force model, with and without payload
/// indexes, also when they match very few points.
pub async fn filters(s: &dyn VectorStore, bot: &BotId) {
    let dim = 8;
    s.create_collection(bot, spec("flt", dim, Metric::Cosine), Q)
        .await
        .expect("create");
    let colors = ["red", "green", "blue"];
    let pts: Vec<PointInput> = (0..1500u64)
        .map(|i| {
            let mut p = json!({
                "color": colors[(i % 3) as usize],
                "n": i % 100,
                "price": (i % 50) as f64 / 2.0,
                "when": format!("2024-01-{:02}T00:00:00Z", 1 + i % 28),
                "tags": if i.is_multiple_of(2) { json!(["even", "x"]) } else { json!(["odd"]) },
                "meta": {"rare": i % 97 == 0},
            });
            if i % 10 == 0 {
                p["maybe"] = Value::Null;
            }
            if i % 10 == 1 {
                p["maybe"] = json!(1);
            }
            point(i, dim, p)
        })
        .collect();
    let model: Vec<(PointId, Vec<f32>, Value)> = pts
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                p.vector.clone(),
                p.payload.clone().unwrap_or(Value::Null),
            )
        })
        .collect();
    s.upsert(bot, "flt", pts, Q).await.expect("upsert");
    let filters = [
        json!({"must": [{"key": "color", "match": {"value": "red"}}]}),
        json!({"must": [{"key": "n", "range": {"gte": 10, "lt": 13}}]}),
        json!({"must": [{"key": "color", "match": {"any": ["red", "blue"]}}], "must_not": [{"key": "n", "range": {"gt": 5}}]}),
        json!({"should": [{"key": "tags", "match": {"value": "odd"}}, {"key": "n", "match": {"value": 4}}]}),
        json!({"must": [{"key": "when", "range": {"gte": "2024-01-10T00:00:00Z", "lte": "2024-01-11T00:00:00Z"}}]}),
        json!({"must": [{"key": "meta.rare", "match": {"value": true}}]}),
        json!({"must": [{"is_null": "maybe"}]}),
        json!({"must": [{"key": "maybe", "exists": true}]}),
        json!({"must": [{"must": [{"key": "color", "match": {"value": "green"}}], "must_not": [{"key": "price", "range": {"lt": 20.0}}]}]}),
        json!({"must": [{"key": "n", "match": {"value": 42}}, {"key": "color", "match": {"value": "red"}}]}),
    ];
    let check = |phase: &'static str| {
        let model = &model;
        let filters = &filters;
        async move {
            for f in filters.iter() {
                let parsed = Filter::parse(f).expect("parses");
                let keep = |p: &Value| parsed.matches(Some(p), 0);
                let want_count = model.iter().filter(|p| keep(&p.2)).count() as u64;
                assert_eq!(
                    s.count(bot, "flt", Some(parsed.clone()))
                        .await
                        .expect("count"),
                    want_count,
                    "{phase} count {f}"
                );
                for qs in [5000u64, 5001, 5002] {
                    let q = vector(qs, dim);
                    let hits = s
                        .search(bot, "flt", search(q.clone(), 10, Some(f.clone())))
                        .await
                        .expect("search");
                    for h in &hits {
                        let p = h.payload.as_ref().expect("payload");
                        assert!(keep(p), "{phase}: {f} returned {p}");
                    }
                    let want = brute(model, &q, 10, Metric::Cosine, keep);
                    let got: Vec<PointId> = hits.iter().map(|h| h.id.clone()).collect();
                    let overlap = got.iter().filter(|g| want.contains(g)).count();
                    assert!(
                        got.len() == want.len() && overlap as f64 >= 0.9 * want.len() as f64,
                        "{phase} {f}: got {got:?} want {want:?}"
                    );
                }
            }
        }
    };
    check("no index").await;
    for (field, t) in [
        ("color", FieldType::Keyword),
        ("n", FieldType::Integer),
        ("price", FieldType::Float),
        ("when", FieldType::Datetime),
        ("meta.rare", FieldType::Bool),
        ("tags", FieldType::Keyword),
    ] {
        s.create_index(bot, "flt", field, t).await.expect("index");
    }
    let info = s.get_collection(bot, "flt").await.expect("info");
    assert_eq!(info.indexes.len(), 6);
    check("indexed").await;
    // Deleting by filter removes exactly the matching points.
    let f = Filter::parse(&json!({"must": [{"key": "color", "match": {"value": "red"}}]}))
        .expect("parses");
    let n = s
        .delete_points(bot, "flt", PointSelector::Filter(f.clone()))
        .await
        .expect("delete");
    assert_eq!(n, 500);
    assert_eq!(s.count(bot, "flt", Some(f)).await.expect("count"), 0);
    assert_eq!(s.count(bot, "flt", None).await.expect("count"), 1000);
    assert_eq!(
        code_of(Filter::parse(&json!({"must": [{"key": "x", "range": {}}]}))),
        "invalid_filter"
    );
    s.drop_collection(bot, "flt").await.expect("drop");
}

/// Delete by ids, scroll in id order with a cursor, count.
pub async fn delete_scroll_count(s: &dyn VectorStore, bot: &BotId) {
    let dim = 4;
    s.create_collection(bot, spec("sc", dim, Metric::Euclidean), Q)
        .await
        .expect("create");
    let mut pts: Vec<PointInput> = (0..250u64)
        .map(|i| point(i, dim, json!({"k": i % 2})))
        .collect();
    pts.push(PointInput {
        id: PointId::Str("zeta".into()),
        ..point(999, dim, json!({"k": 0}))
    });
    pts.push(PointInput {
        id: PointId::Str("alpha".into()),
        ..point(998, dim, json!({"k": 1}))
    });
    s.upsert(bot, "sc", pts, Q).await.expect("upsert");
    let deleted = s
        .delete_points(
            bot,
            "sc",
            PointSelector::Ids(vec![
                PointId::Num(3),
                PointId::Num(4),
                PointId::Num(100_000),
            ]),
        )
        .await
        .expect("delete");
    assert_eq!(deleted, 2);
    assert_eq!(s.count(bot, "sc", None).await.expect("count"), 250);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .scroll(
                bot,
                "sc",
                ScrollRequest {
                    from: None,
                    filter: None,
                    limit: 40,
                    after: after.clone(),
                    with_vector: false,
                },
            )
            .await
            .expect("scroll");
        assert!(page.points.len() <= 40);
        seen.extend(page.points.into_iter().map(|p| p.id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 250);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "scroll in id order");
    assert_eq!(seen[0], PointId::Num(0));
    assert_eq!(seen[248], PointId::Str("alpha".into()));
    assert!(!seen.contains(&PointId::Num(3)));
    let odd = Filter::parse(&json!({"must": [{"key": "k", "match": {"value": 1}}]})).expect("f");
    let page = s
        .scroll(
            bot,
            "sc",
            ScrollRequest {
                from: None,
                filter: Some(odd.clone()),
                limit: 1000,
                after: None,
                with_vector: true,
            },
        )
        .await
        .expect("scroll");
    assert_eq!(
        page.points.len() as u64,
        s.count(bot, "sc", Some(odd)).await.expect("c")
    );
    assert!(page
        .points
        .iter()
        .all(|p| p.vector.as_ref().is_some_and(|v| v.len() == dim)));
    s.drop_collection(bot, "sc").await.expect("drop");
}

/// Scroll can start at an id (inclusive; Qdrant's `offset`), and the
/// conditions that need the point's id or Qdrant's rules — `HasId`,
/// `Except`, `IsEmpty`, `ValuesCount`, `NestedArray`, `MinShould` — hold in
/// search, count, scroll and delete alike, with and without a payload index
/// on their key.
pub async fn scroll_from_and_point_conditions(s: &dyn VectorStore, bot: &BotId) {
    use strata_core::filter::Condition;
    s.create_collection(bot, spec("pc", 4, Metric::Cosine), Q)
        .await
        .expect("create");
    let pts: Vec<PointInput> = (0..60u64)
        .map(|i| {
            let tags = if i.is_multiple_of(3) { json!([]) } else { json!(["a", "b"]) };
            point(
                i,
                4,
                json!({"k": i % 4, "tags": tags, "items": [{"c": "red", "n": i}, {"c": "blue", "n": 0}]}),
            )
        })
        .collect();
    s.upsert(bot, "pc", pts, Q).await.expect("upsert");
    let scroll =
        |from: Option<PointId>, after: Option<PointId>, filter: Option<Filter>| ScrollRequest {
            filter,
            limit: 5,
            after,
            from,
            with_vector: false,
        };
    let ids = |p: &ScrollPage| p.points.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    let page = s
        .scroll(bot, "pc", scroll(Some(PointId::Num(10)), None, None))
        .await
        .expect("scroll");
    assert_eq!(ids(&page), (10..15).map(PointId::Num).collect::<Vec<_>>());
    // `from` an id that does not exist starts at the next one.
    s.delete_points(bot, "pc", PointSelector::Ids(vec![PointId::Num(20)]))
        .await
        .expect("delete");
    let page = s
        .scroll(bot, "pc", scroll(Some(PointId::Num(20)), None, None))
        .await
        .expect("scroll");
    assert_eq!(ids(&page)[0], PointId::Num(21));
    let has = |ids: Vec<u64>| Filter {
        must: vec![Condition::HasId(
            ids.into_iter().map(PointId::Num).collect(),
        )],
        ..Filter::default()
    };
    for indexed in [false, true] {
        if indexed {
            s.create_index(bot, "pc", "k", FieldType::Integer)
                .await
                .expect("index");
            s.create_index(bot, "pc", "tags", FieldType::Keyword)
                .await
                .expect("index");
        }
        assert_eq!(
            s.count(bot, "pc", Some(has(vec![1, 2, 20, 999])))
                .await
                .expect("count"),
            2,
            "has_id, deleted and unknown ids left out (indexed: {indexed})"
        );
        let mut f = has(vec![1, 2, 3, 4, 5, 6, 7]);
        f.must.push(Condition::Match {
            key: "k".into(),
            value: strata_core::filter::MatchValue::Int(1),
        });
        let found = s
            .search(
                bot,
                "pc",
                SearchRequest {
                    vector: vector(5, 4),
                    k: 10,
                    filter: Some(f),
                    ef: Some(64),
                    score_threshold: None,
                    with_payload: false,
                    with_vector: false,
                },
            )
            .await
            .expect("search");
        let mut got: Vec<_> = found.into_iter().map(|p| p.id).collect();
        got.sort();
        assert_eq!(
            got,
            vec![PointId::Num(1), PointId::Num(5)],
            "indexed: {indexed}"
        );
        let not_in = Filter {
            must: vec![Condition::Except {
                key: "k".into(),
                except: vec![strata_core::filter::MatchValue::Int(0)],
            }],
            ..Filter::default()
        };
        assert_eq!(s.count(bot, "pc", Some(not_in)).await.expect("count"), 45);
        let empty = Filter {
            must: vec![Condition::IsEmpty { key: "tags".into() }],
            ..Filter::default()
        };
        assert_eq!(s.count(bot, "pc", Some(empty)).await.expect("count"), 20);
        let two = Filter {
            must: vec![Condition::ValuesCount {
                key: "tags".into(),
                range: strata_core::filter::Range {
                    gte: Some(strata_core::filter::Bound::Number(2.0)),
                    ..Default::default()
                },
            }],
            ..Filter::default()
        };
        assert_eq!(s.count(bot, "pc", Some(two)).await.expect("count"), 39);
        // Both conditions on one element of `items`: only n = i of a red one.
        let nested = Filter {
            must: vec![Condition::NestedArray {
                key: "items".into(),
                filter: Filter::parse(&json!({"must": [
                    {"key": "c", "match": {"value": "blue"}},
                    {"key": "n", "range": {"gte": 1}}
                ]}))
                .expect("f"),
            }],
            ..Filter::default()
        };
        assert_eq!(s.count(bot, "pc", Some(nested)).await.expect("count"), 0);
        let min2 = Filter {
            must: vec![Condition::MinShould {
                conditions: vec![
                    Condition::Match {
                        key: "k".into(),
                        value: strata_core::filter::MatchValue::Int(1),
                    },
                    Condition::HasId(vec![PointId::Num(1), PointId::Num(2)]),
                    Condition::IsEmpty { key: "tags".into() },
                ],
                min_count: 2,
            }],
            ..Filter::default()
        };
        // k = 1 and id 1 or 2: 1; k = 1 and empty tags: 9, 21, 33, 45, 57;
        // id 2 is k = 2 with tags; id 1 has tags.
        assert_eq!(s.count(bot, "pc", Some(min2)).await.expect("count"), 6);
        let page = s
            .scroll(bot, "pc", scroll(None, None, Some(has(vec![40, 3, 50]))))
            .await
            .expect("scroll");
        assert_eq!(
            ids(&page),
            vec![PointId::Num(3), PointId::Num(40), PointId::Num(50)]
        );
    }
    let deleted = s
        .delete_points(bot, "pc", PointSelector::Filter(has(vec![3, 4, 5])))
        .await
        .expect("delete by has_id");
    assert_eq!(deleted, 3);
    assert_eq!(s.count(bot, "pc", None).await.expect("count"), 56);
}

/// An expired point is invisible to every read at once and purged later.
pub async fn ttl(s: &dyn VectorStore, bot: &BotId) {
    let dim = 4;
    s.create_collection(bot, spec("ttl", dim, Metric::Cosine), Q)
        .await
        .expect("create");
    let mut short = point(1, dim, json!({"t": "short"}));
    short.ttl_seconds = Some(1);
    let long = point(2, dim, json!({"t": "long"}));
    s.upsert(bot, "ttl", vec![short, long], Q)
        .await
        .expect("upsert");
    let got = s
        .get_point(bot, "ttl", &PointId::Num(1), false)
        .await
        .expect("get");
    assert!(got.expires_at.is_some());
    assert_eq!(s.count(bot, "ttl", None).await.expect("count"), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(s.count(bot, "ttl", None).await.expect("count"), 1);
    assert_eq!(
        s.get_point(bot, "ttl", &PointId::Num(1), false)
            .await
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::NotFound)
    );
    let hits = s
        .search(bot, "ttl", search(vector(1, dim), 10, None))
        .await
        .expect("search");
    assert_eq!(
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        [PointId::Num(2)]
    );
    let f =
        Filter::parse(&json!({"must": [{"key": "t", "match": {"value": "short"}}]})).expect("f");
    let hits = s
        .search(bot, "ttl", search(vector(1, dim), 10, Some(f.to_json())))
        .await
        .expect("search");
    assert!(hits.is_empty());
    let page = s
        .scroll(
            bot,
            "ttl",
            ScrollRequest {
                from: None,
                filter: None,
                limit: 10,
                after: None,
                with_vector: false,
            },
        )
        .await
        .expect("scroll");
    assert_eq!(page.points.len(), 1);
    assert!(s.purge_expired().await.expect("purge") >= 1);
    assert_eq!(s.count(bot, "ttl", None).await.expect("count"), 1);
    s.drop_collection(bot, "ttl").await.expect("drop");
}

/// `_ingested_at` is a filter key (bi-temporal queries).
pub async fn ingestion_time(s: &dyn VectorStore, bot: &BotId) {
    let dim = 4;
    s.create_collection(bot, spec("bt", dim, Metric::Cosine), Q)
        .await
        .expect("create");
    s.upsert(
        bot,
        "bt",
        vec![point(1, dim, json!({"event": "2020-05-01T00:00:00Z"}))],
        Q,
    )
    .await
    .expect("upsert");
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let cut = strata_core::Timestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    s.upsert(
        bot,
        "bt",
        vec![point(2, dim, json!({"event": "2019-01-01T00:00:00Z"}))],
        Q,
    )
    .await
    .expect("upsert");
    let later = json!({"must": [{"key": INGESTED_AT_KEY, "range": {"gt": cut.to_rfc3339()}}]});
    let f = Filter::parse(&later).expect("f");
    assert_eq!(s.count(bot, "bt", Some(f)).await.expect("count"), 1);
    let hits = s
        .search(bot, "bt", search(vector(1, dim), 5, Some(later)))
        .await
        .expect("search");
    assert_eq!(
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        [PointId::Num(2)]
    );
    let event = json!({"must": [{"key": "event", "range": {"gte": "2020-01-01T00:00:00Z"}}]});
    let hits = s
        .search(bot, "bt", search(vector(1, dim), 5, Some(event)))
        .await
        .expect("search");
    assert_eq!(
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        [PointId::Num(1)]
    );
    s.drop_collection(bot, "bt").await.expect("drop");
}

/// Quotas answer `quota_exceeded` and store nothing.
pub async fn quotas(s: &dyn VectorStore, bot: &BotId) {
    let q = VectorQuota {
        max_collections: 1,
        max_points: 5,
    };
    s.create_collection(bot, spec("q1", 2, Metric::Dot), q)
        .await
        .expect("create");
    let e = s
        .create_collection(bot, spec("q2", 2, Metric::Dot), q)
        .await
        .err()
        .map(|e| e.kind());
    assert_eq!(e, Some(ErrorKind::QuotaExceeded));
    let pts = |from: u64, n: u64| -> Vec<PointInput> {
        (from..from + n)
            .map(|i| PointInput {
                id: PointId::Num(i),
                vector: vec![1.0, i as f32],
                payload: None,
                ttl_seconds: None,
            })
            .collect()
    };
    s.upsert(bot, "q1", pts(0, 4), q).await.expect("upsert");
    let e = s
        .upsert(bot, "q1", pts(4, 2), q)
        .await
        .err()
        .map(|e| e.kind());
    assert_eq!(e, Some(ErrorKind::QuotaExceeded));
    assert_eq!(s.count(bot, "q1", None).await.expect("count"), 4);
    // Replacing existing points does not count against the quota.
    s.upsert(bot, "q1", pts(0, 4), q).await.expect("replace");
    s.upsert(bot, "q1", pts(4, 1), q).await.expect("fill");
    s.drop_collection(bot, "q1").await.expect("drop");
}

/// Bots never see each other's collections.
pub async fn isolation(s: &dyn VectorStore, bot: &BotId, other: &BotId) {
    s.create_collection(bot, spec("mine", 2, Metric::Dot), Q)
        .await
        .expect("create");
    s.upsert(
        bot,
        "mine",
        vec![PointInput {
            id: PointId::Num(1),
            vector: vec![1.0, 1.0],
            payload: None,
            ttl_seconds: None,
        }],
        Q,
    )
    .await
    .expect("upsert");
    assert!(s.list_collections(other).await.expect("list").is_empty());
    let kinds = [
        s.get_collection(other, "mine")
            .await
            .err()
            .map(|e| e.kind()),
        s.search(other, "mine", search(vec![1.0, 0.0], 1, None))
            .await
            .err()
            .map(|e| e.kind()),
        s.get_point(other, "mine", &PointId::Num(1), false)
            .await
            .err()
            .map(|e| e.kind()),
        s.drop_collection(other, "mine")
            .await
            .err()
            .map(|e| e.kind()),
    ];
    assert!(
        kinds.iter().all(|k| *k == Some(ErrorKind::NotFound)),
        "{kinds:?}"
    );
    // The same name in another bot is another collection.
    s.create_collection(other, spec("mine", 3, Metric::Cosine), Q)
        .await
        .expect("create");
    assert_eq!(s.count(other, "mine", None).await.expect("count"), 0);
    assert_eq!(s.count(bot, "mine", None).await.expect("count"), 1);
    s.drop_bot(other).await.expect("drop bot");
    assert!(s.list_collections(other).await.expect("list").is_empty());
    assert_eq!(s.count(bot, "mine", None).await.expect("count"), 1);
    s.drop_collection(bot, "mine").await.expect("drop");
}
