//! The vectors behaviour suite against the embedded engine, as one test per
//! behaviour (`embedded::filters`, …), and its persistence: snapshots, replay
//! of later changes, rebuild without files.

use serde_json::json;
use std::path::Path;
use strata_core::records::BotStore;
use strata_core::types::BotId;
use strata_records::{SqliteDatabase, SqliteOptions, SqliteRecords};
use strata_vectors::behavior::{self, vector};
use strata_vectors::*;

async fn open(dir: &Path) -> (SqliteDatabase, EmbeddedVectors) {
    let db = SqliteDatabase::open(&dir.join("strata.db"), &SqliteOptions::default())
        .await
        .expect("open db");
    let v = EmbeddedVectors::open(db.clone(), dir.join("vectors"))
        .await
        .expect("open vectors");
    (db, v)
}

async fn bots(db: &SqliteDatabase, names: &[&str]) -> Vec<BotId> {
    let r = SqliteRecords::new(db.clone());
    let mut out = Vec::new();
    for n in names {
        let id = BotId::parse(n).expect("bot id");
        r.create_bot(&id, n).await.expect("bot");
        out.push(id);
    }
    out
}

/// The bots a behaviour gets, by the names `for_each_behavior!` gives them.
struct Bots {
    bot: BotId,
    other: BotId,
}

/// `mod embedded { one #[tokio::test] per behaviour }`, each on a fresh
/// database and vectors folder with two bots.
macro_rules! embedded_tests {
    ($($behavior:ident($($arg:ident),*)),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $behavior() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let (db, v) = super::open(dir.path()).await;
                    let mut b = super::bots(&db, &["one", "two"]).await;
                    let bots = super::Bots {
                        other: b.remove(1),
                        bot: b.remove(0),
                    };
                    super::behavior::$behavior(&v $(, &bots.$arg)*).await;
                    db.close().await;
                }
            )*
        }
    };
}

behavior::for_each_behavior!(embedded_tests);

const Q: VectorQuota = VectorQuota {
    max_collections: 10,
    max_points: 1_000_000,
};

fn pts(from: u64, to: u64, dim: usize) -> Vec<PointInput> {
    (from..to)
        .map(|i| PointInput {
            id: PointId::Num(i),
            vector: vector(i, dim),
            payload: Some(json!({"g": i % 7, "s": format!("p{i}")})),
            ttl_seconds: None,
        })
        .collect()
}

async fn answers(v: &EmbeddedVectors, bot: &BotId, dim: usize) -> Vec<Vec<(PointId, u32)>> {
    let mut out = Vec::new();
    for q in 0..20u64 {
        for filter in [
            None,
            Some(json!({"must": [{"key": "g", "match": {"value": 3}}]})),
        ] {
            let hits = v
                .search(
                    bot,
                    "c",
                    SearchRequest {
                        vector: vector(10_000 + q, dim),
                        k: 10,
                        filter: filter.map(|f| strata_core::filter::Filter::parse(&f).expect("f")),
                        ef: Some(200),
                        score_threshold: None,
                        with_payload: false,
                        with_vector: false,
                    },
                )
                .await
                .expect("search");
            out.push(
                hits.into_iter()
                    .map(|h| (h.id, (h.score * 1e4).round() as u32))
                    .collect(),
            );
        }
    }
    out
}

/// A replayed or rebuilt graph is another graph: the same answers up to the
/// ANN approximation, and identical where the planner scans exactly (the
/// filtered queries).
fn assert_same(before: &[Vec<(PointId, u32)>], after: &[Vec<(PointId, u32)>], what: &str) {
    let (mut shared, mut total) = (0, 0);
    for (i, (a, b)) in before.iter().zip(after).enumerate() {
        if i % 2 == 1 {
            assert_eq!(a, b, "{what}: filtered (exact) answers identical");
        }
        total += a.len();
        shared += a.iter().filter(|x| b.iter().any(|y| y.0 == x.0)).count();
    }
    assert!(
        shared as f64 >= 0.98 * total as f64,
        "{what}: {shared} of {total} shared"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_replay_and_rebuild_give_the_same_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dim = 24;
    let (db, v) = open(dir.path()).await;
    let bot = bots(&db, &["p"]).await.remove(0);
    let spec = CollectionSpec {
        name: "c".into(),
        dimension: dim,
        metric: Metric::Cosine,
        hnsw: HnswParams::default(),
        quantization: Quantization::None,
    };
    v.create_collection(&bot, spec, Q).await.expect("create");
    v.create_index(&bot, "c", "g", FieldType::Integer)
        .await
        .expect("index");
    v.upsert(&bot, "c", pts(0, 3000, dim), Q)
        .await
        .expect("upsert");
    let named = PointInput {
        id: PointId::Str("doc-ü-1".into()),
        vector: vector(77_777, dim),
        payload: Some(json!({"g": 3, "s": "named"})),
        ttl_seconds: None,
    };
    v.upsert(&bot, "c", vec![named], Q)
        .await
        .expect("upsert named");
    v.checkpoint().await.expect("checkpoint");
    let snap = dir.path().join("vectors");
    assert_eq!(std::fs::read_dir(&snap).expect("dir").count(), 1);
    // Changes after the snapshot: replayed at the next start.
    v.upsert(&bot, "c", pts(3000, 3500, dim), Q)
        .await
        .expect("upsert");
    v.delete_points(
        &bot,
        "c",
        PointSelector::Ids((0..200).map(PointId::Num).collect()),
    )
    .await
    .expect("delete");
    let mut replaced = pts(500, 600, dim);
    for p in &mut replaced {
        p.vector = vector(p.id.to_string().len() as u64 * 77 + 5, dim);
    }
    v.upsert(&bot, "c", replaced, Q).await.expect("replace");
    let before = answers(&v, &bot, dim).await;
    let count = v.count(&bot, "c", None).await.expect("count");
    assert_eq!(count, 3301);
    db.close().await;
    drop(v);

    // 1. Snapshot + replay (no clean shutdown: no checkpoint at close).
    let (db, v) = open(dir.path()).await;
    assert_eq!(v.count(&bot, "c", None).await.expect("count"), count);
    assert_same(
        &before,
        &answers(&v, &bot, dim).await,
        "after snapshot + replay",
    );
    let (idx, rows) = v.consistency(&bot, "c").await.expect("consistency");
    assert_eq!(idx, rows);
    let hit = v
        .search(
            &bot,
            "c",
            SearchRequest {
                vector: vector(77_777, dim),
                k: 1,
                filter: None,
                ef: Some(64),
                score_threshold: None,
                with_payload: true,
                with_vector: false,
            },
        )
        .await
        .expect("search");
    assert_eq!(hit[0].id, PointId::Str("doc-ü-1".into()));
    let info = v.get_collection(&bot, "c").await.expect("info");
    assert_eq!(info.indexes.len(), 1);
    db.close().await;
    drop(v);

    // 2. Index files deleted: rebuilt from the rows, same answers.
    std::fs::remove_dir_all(&snap).expect("rm");
    let (db, v) = open(dir.path()).await;
    assert_eq!(v.count(&bot, "c", None).await.expect("count"), count);
    let after = answers(&v, &bot, dim).await;
    assert_same(&before, &after, "after a rebuild from the rows");
    v.checkpoint().await.expect("checkpoint");
    db.close().await;
    drop(v);

    // 3. A damaged snapshot is ignored and rebuilt, never trusted.
    for e in std::fs::read_dir(&snap).expect("dir").flatten() {
        let mut b = std::fs::read(e.path()).expect("read");
        let mid = b.len() / 2;
        b.truncate(mid);
        std::fs::write(e.path(), b).expect("write");
    }
    let (db, v) = open(dir.path()).await;
    assert_eq!(v.count(&bot, "c", None).await.expect("count"), count);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quantized_collections_search_well() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dim = 32;
    let (db, v) = open(dir.path()).await;
    let bot = bots(&db, &["qz"]).await.remove(0);
    for (name, q) in [("f16", Quantization::F16), ("i8", Quantization::I8)] {
        let spec = CollectionSpec {
            name: name.into(),
            dimension: dim,
            metric: Metric::Cosine,
            hnsw: HnswParams::default(),
            quantization: q,
        };
        v.create_collection(&bot, spec, Q).await.expect("create");
        v.upsert(&bot, name, pts(0, 1000, dim), Q)
            .await
            .expect("upsert");
        // The query is a stored vector: it must come back first.
        for i in [0u64, 17, 999] {
            let hits = v
                .search(
                    &bot,
                    name,
                    SearchRequest {
                        vector: vector(i, dim),
                        k: 3,
                        filter: None,
                        ef: Some(64),
                        score_threshold: None,
                        with_payload: false,
                        with_vector: true,
                    },
                )
                .await
                .expect("search");
            assert_eq!(hits[0].id, PointId::Num(i), "{name}");
            assert!(hits[0].score > 0.99, "{name} score {}", hits[0].score);
            // with_vector returns the stored (exact) vector.
            assert_eq!(hits[0].vector.as_deref(), Some(&vector(i, dim)[..]));
        }
    }
    v.checkpoint().await.expect("checkpoint");
    db.close().await;
    drop(v);
    let (db, v) = open(dir.path()).await;
    assert_eq!(v.count(&bot, "i8", None).await.expect("count"), 1000);
    db.close().await;
}

/// Size-triggered snapshots bound what a restart redoes: after 12,000
/// upserts the log since the last snapshot stays under the threshold, and a
/// store reopened without a clean stop (a crash) finds every point at once,
/// the replayed ones before they are linked into the graph.
#[tokio::test(flavor = "multi_thread")]
async fn snapshots_follow_the_log_and_a_crash_replays_little() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, v) = open(dir.path()).await;
    let bot = bots(&db, &["big"]).await.remove(0);
    let dim = 16;
    v.create_collection(
        &bot,
        CollectionSpec {
            name: "c".into(),
            dimension: dim,
            metric: Metric::Cosine,
            hnsw: Default::default(),
            quantization: Default::default(),
        },
        Q,
    )
    .await
    .expect("collection");
    let total = 12_000u64;
    for start in (0..total).step_by(500) {
        v.upsert(&bot, "c", pts(start, start + 500, dim), Q)
            .await
            .expect("upsert");
    }
    // Let a snapshot that is being written finish.
    for _ in 0..600 {
        if !v.snapshot_running(&bot, "c").expect("state") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (unsaved, _) = v.restart_backlog(&bot, "c").expect("backlog");
    assert!(
        unsaved < 5_000 + 500,
        "{unsaved} log entries since the last snapshot: a restart would replay them all"
    );
    // A crash: no checkpoint, no close; the rows and the last snapshot stay.
    drop(v);
    let v = EmbeddedVectors::open(db.clone(), dir.path().join("vectors"))
        .await
        .expect("reopen");
    assert_eq!(v.count(&bot, "c", None).await.expect("count"), total);
    for i in (0..total).step_by(97).chain([total - 1]) {
        let hits = v
            .search(
                &bot,
                "c",
                SearchRequest {
                    vector: vector(i, dim),
                    k: 1,
                    filter: None,
                    ef: Some(64),
                    score_threshold: None,
                    with_payload: false,
                    with_vector: false,
                },
            )
            .await
            .expect("search");
        assert_eq!(
            hits.first().map(|h| &h.id),
            Some(&PointId::Num(i)),
            "point {i}"
        );
    }
    // The replayed points end up linked, and the consistency holds.
    for _ in 0..600 {
        if v.restart_backlog(&bot, "c").expect("backlog").1 == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(v.restart_backlog(&bot, "c").expect("backlog").1, 0);
    let (idx, rows) = v.consistency(&bot, "c").await.expect("consistency");
    assert_eq!(idx, rows);
    db.close().await;
}
