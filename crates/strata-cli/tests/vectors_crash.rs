//! Crash safety of the vectors layer: `strata serve` is SIGKILLed during
//! concurrent upserts and deletes. After each restart every acknowledged
//! upsert is stored and searchable, every acknowledged delete is gone, and
//! the index (count, search) agrees with the stored rows (scroll). One cycle
//! shuts down gracefully in between, so a restart also loads a snapshot and
//! replays the changes after it. Every cycle must have upserts acknowledged
//! in it; a SIGKILL counts only when an upsert was in flight (sent, never
//! answered) when it landed — on a busy machine the server can have answered
//! everything the clients sent — and the test runs more cycles until `KILLS`
//! kills have counted.

mod common;

use common::{InFlight, Server};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DIM: usize = 16;
const UPSERTERS: u64 = 3;
const DELETERS: usize = 2;
/// SIGKILLs that found an upsert in flight (besides the graceful stop of
/// cycle 1).
const KILLS: usize = 2;
/// Cycles at most, counted or not.
const MAX_CYCLES: u64 = 8;
const BASE: &str = "/v1/bots/vc/collections/crash";

fn vector(id: u64) -> Vec<f32> {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[derive(Default, Clone)]
struct Acked {
    upserted: BTreeSet<u64>,
    /// Ids whose delete was sent: unacknowledged ones may or may not be gone.
    delete_sent: BTreeSet<u64>,
    deleted: BTreeSet<u64>,
}

async fn all_ids(server: &Server, key: &str) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({"limit": 1000});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = server
            .post_ok(&format!("{BASE}/points/scroll"), key, body)
            .await;
        for p in page["points"].as_array().expect("points") {
            out.insert(p["id"].as_u64().expect("numeric id"));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn verify(server: &Server, key: &str, acked: &Acked) {
    let rows = all_ids(server, key).await;
    for id in &acked.upserted {
        if !acked.delete_sent.contains(id) {
            assert!(rows.contains(id), "acknowledged upsert {id} is missing");
        }
    }
    for id in &acked.deleted {
        assert!(!rows.contains(id), "acknowledged delete {id} came back");
    }
    let count = server
        .post_ok(&format!("{BASE}/points/count"), key, json!({}))
        .await["count"]
        .as_u64()
        .expect("count");
    assert_eq!(count, rows.len() as u64, "index count == stored rows");
    // Every stored point is found by its own vector; no deleted one is.
    for id in rows.iter().chain(acked.deleted.iter()) {
        let hits = server
            .post_ok(
                &format!("{BASE}/points/search"),
                key,
                json!({"vector": vector(*id), "k": 1, "ef": 128, "with_payload": false}),
            )
            .await;
        let top = hits["results"][0]["id"].as_u64();
        if rows.contains(id) {
            assert_eq!(
                top,
                Some(*id),
                "stored point {id} is not found by its vector"
            );
        } else {
            assert_ne!(top, Some(*id), "deleted point {id} is still searchable");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_vector_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path()).await;
    let key = server.bot_with_key("vc", "admin").await;
    server
        .post_ok(
            "/v1/bots/vc/collections",
            &key,
            json!({"name": "crash", "dimension": DIM, "metric": "cosine"}),
        )
        .await;
    let acked: Arc<Mutex<Acked>> = Arc::default();

    let mut counted = 0;
    for cycle in 0.. {
        assert!(
            cycle < MAX_CYCLES,
            "only {counted} of the SIGKILLs in {cycle} cycles found an upsert in flight"
        );
        let url = server.url.clone();
        let deletable: Vec<u64> = {
            let a = acked.lock().expect("lock");
            a.upserted.difference(&a.delete_sent).copied().collect()
        };
        let inflight = Arc::new(InFlight::default());
        let mut upserters = Vec::new();
        for client in 0..UPSERTERS {
            let (url, key, acked) = (url.clone(), key.clone(), acked.clone());
            let inflight = inflight.clone();
            upserters.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0u64;
                loop {
                    // Fresh ids only: no upsert races a delete of the same id.
                    let first = cycle * 1_000_000 + client * 100_000 + n * 10;
                    let ids: Vec<u64> = (first..first + 10).collect();
                    let points: Vec<Value> = ids
                        .iter()
                        .map(|i| json!({"id": i, "vector": vector(*i), "payload": {"c": cycle}}))
                        .collect();
                    let started = inflight.start();
                    let res = http
                        .put(format!("{url}{BASE}/points"))
                        .bearer_auth(&key)
                        .json(&json!({ "points": points }))
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().is_success() => {
                            inflight.answered();
                            acked.lock().expect("lock").upserted.extend(ids);
                            n += 1;
                        }
                        Ok(_) => {
                            inflight.answered();
                            return n;
                        }
                        Err(_) => {
                            inflight.unanswered(started);
                            return n;
                        }
                    }
                }
            }));
        }
        let mut deleters = Vec::new();
        for d in 0..DELETERS {
            let (url, key, acked) = (url.clone(), key.clone(), acked.clone());
            let mine: Vec<u64> = deletable
                .iter()
                .copied()
                .filter(|i| (*i as usize) % DELETERS == d)
                .collect();
            deleters.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0u64;
                for chunk in mine.chunks(3) {
                    acked.lock().expect("lock").delete_sent.extend(chunk);
                    let res = http
                        .post(format!("{url}{BASE}/points/delete"))
                        .bearer_auth(&key)
                        .json(&json!({ "ids": chunk }))
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().expect("lock").deleted.extend(chunk);
                            n += 1;
                        }
                        _ => return n,
                    }
                }
                n
            }));
        }
        tokio::time::sleep(Duration::from_millis(700 + 200 * cycle)).await;
        let graceful = cycle == 1;
        if graceful {
            // A graceful stop writes index snapshots; later writes are replayed.
            server.terminate();
        } else {
            inflight.wait_for_outstanding().await;
        }
        let killed_at = Instant::now();
        if !graceful {
            server.kill();
        }
        let mut upserted = 0;
        for t in upserters {
            upserted += t.await.expect("upsert task");
        }
        for t in deleters {
            t.await.expect("delete task");
        }
        assert!(
            upserted > 0,
            "cycle {cycle}: no upsert was acknowledged in this cycle"
        );
        // A graceful stop answers what it accepted; a SIGKILL cuts off what
        // was in flight.
        let cut = inflight.cut_off_by(killed_at);
        if !graceful && cut > 0 {
            counted += 1;
        }
        server = Server::start(dir.path()).await;
        let snapshot = acked.lock().expect("lock").clone();
        verify(&server, &key, &snapshot).await;
        eprintln!(
            "cycle {cycle}: {upserted} upsert batches acknowledged and {cut} in flight at the {}; {} upserts and {} deletes acknowledged so far, all verified",
            match (graceful, cut) {
                (true, _) => "graceful stop",
                (false, 0) => "kill (not counted: it found nothing to cut off)",
                (false, _) => "kill",
            },
            snapshot.upserted.len(),
            snapshot.deleted.len()
        );
        if counted == KILLS && cycle >= 1 {
            break;
        }
    }
}
