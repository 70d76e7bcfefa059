//! Durability: every acknowledged append survives SIGKILL of the server.
//!
//! Several concurrent clients append to a few conversations while the real
//! `strata serve` process is killed with SIGKILL mid-write; after each
//! restart every acknowledged message must be there with the seq it was
//! acknowledged with, and each conversation's seqs must be 1..=n with no gap
//! and no duplicate. Repeated over several kill cycles on one data folder.
//! Every cycle must have appends acknowledged in it; a kill counts only when
//! at least one append was in flight (sent, never answered) when it landed —
//! on a busy machine the server can have answered everything the clients
//! sent — and the test runs more cycles until `CYCLES` kills have counted.

mod common;

use common::{InFlight, Server, ADMIN_KEY};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const CONVERSATIONS: usize = 3;
/// Kills that found an append in flight.
const CYCLES: usize = 4;
/// Cycles at most, counted or not.
const MAX_CYCLES: usize = 3 * CYCLES;

/// content → (conversation, seq) for every acknowledged append.
type Acked = Arc<Mutex<BTreeMap<String, (usize, i64)>>>;

async fn all_messages(server: &Server, key: &str, conv: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/bots/dur/conversations/c{conv}/messages?limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = server.get_ok(&path, key).await;
        out.extend(page["messages"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn verify(server: &Server, key: &str, acked: &Acked) -> usize {
    let acked = acked.lock().expect("lock").clone();
    let mut total = 0;
    for conv in 0..CONVERSATIONS {
        let messages = all_messages(server, key, conv).await;
        let mut seen = HashSet::new();
        for (i, m) in messages.iter().enumerate() {
            let seq = m["seq"].as_i64().expect("seq");
            assert_eq!(
                seq,
                i as i64 + 1,
                "conversation c{conv}: seqs must be 1..=n without gaps"
            );
            let content = m["content"].as_str().expect("content").to_owned();
            assert!(
                seen.insert(content.clone()),
                "conversation c{conv}: duplicate message {content}"
            );
        }
        for (content, (c, seq)) in acked.iter().filter(|(_, (c, _))| *c == conv) {
            let found = messages
                .iter()
                .find(|m| m["content"].as_str() == Some(content))
                .unwrap_or_else(|| {
                    panic!("acknowledged message {content} (c{c}, seq {seq}) is missing")
                });
            assert_eq!(
                found["seq"].as_i64(),
                Some(*seq),
                "{content} moved from its acknowledged seq"
            );
        }
        total += messages.len();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path()).await;
    let key = server.bot_with_key("dur", "writer").await;
    server
        .post_ok("/v1/bots/dur/users", &key, json!({ "id": "u" }))
        .await;
    for c in 0..CONVERSATIONS {
        server
            .post_ok(
                "/v1/bots/dur/conversations",
                &key,
                json!({ "id": format!("c{c}"), "user_id": "u" }),
            )
            .await;
    }
    let acked: Acked = Arc::default();

    let mut counted = 0;
    for cycle in 0.. {
        assert!(
            cycle < MAX_CYCLES,
            "only {counted} of {cycle} kills found an append in flight"
        );
        let url = server.url.clone();
        let inflight = Arc::new(InFlight::default());
        let mut tasks = Vec::new();
        for client in 0..CLIENTS {
            let (url, key, acked) = (url.clone(), key.clone(), acked.clone());
            let inflight = inflight.clone();
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0usize;
                loop {
                    let conv = (client + n) % CONVERSATIONS;
                    let content = format!("cycle{cycle}-client{client}-n{n}");
                    let started = inflight.start();
                    let res = http
                        .post(format!("{url}/v1/bots/dur/conversations/c{conv}/messages"))
                        .bearer_auth(&key)
                        .json(&json!({ "role": "user", "content": content, "idempotency_key": content }))
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    let Ok(res) = res else {
                        inflight.unanswered(started);
                        return n;
                    };
                    if res.status().as_u16() != 201 {
                        inflight.answered();
                        return n;
                    }
                    let Ok(body) = res.json::<Value>().await else {
                        inflight.unanswered(started);
                        return n;
                    };
                    inflight.answered();
                    let seq = body["seq"].as_i64().expect("seq in 201 body");
                    acked.lock().expect("lock").insert(content, (conv, seq));
                    n += 1;
                }
            }));
        }
        // Let writes flow, then kill the server while they are in flight.
        tokio::time::sleep(Duration::from_millis(400 + 150 * cycle as u64)).await;
        inflight.wait_for_outstanding().await;
        let killed_at = Instant::now();
        server.kill();
        let mut sent = 0;
        for t in tasks {
            sent += t.await.expect("client task");
        }
        assert!(
            sent > 0,
            "cycle {cycle}: no append was acknowledged before the kill"
        );
        let cut = inflight.cut_off_by(killed_at);
        if cut > 0 {
            counted += 1;
        }

        server = Server::start(dir.path()).await;
        let stored = verify(&server, &key, &acked).await;
        let acked_n = acked.lock().expect("lock").len();
        assert!(
            stored >= acked_n,
            "cycle {cycle}: {stored} stored < {acked_n} acknowledged"
        );
        // At most one in-flight request per client can have been applied
        // without its acknowledgement reaching the client.
        assert!(
            stored <= acked_n + CLIENTS * (cycle + 1),
            "cycle {cycle}: more messages than were sent"
        );
        eprintln!(
            "cycle {cycle}: {sent} acknowledged this cycle, {cut} in flight at the kill{}, {stored} stored in total, all verified",
            if cut > 0 { "" } else { " (not counted: the kill found nothing to cut off)" }
        );
        if counted == CYCLES {
            break;
        }
    }

    // Appends work normally after the last restart and continue the numbering.
    let before = all_messages(&server, &key, 0).await.len() as i64;
    let body = server
        .post_ok(
            "/v1/bots/dur/conversations/c0/messages",
            &key,
            json!({ "role": "assistant", "content": "after the storm" }),
        )
        .await;
    assert_eq!(body["seq"].as_i64(), Some(before + 1));
    let _ = ADMIN_KEY;
}
