//! History reads are served from a cache of serialised responses; a client
//! must never read something older than its own acknowledged write.

mod common;

use common::Server;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_after_an_acknowledged_append_always_sees_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let key = server.bot_with_key("ryw", "writer").await;
    server
        .post_ok("/v1/bots/ryw/users", &key, json!({ "id": "u" }))
        .await;
    server
        .post_ok(
            "/v1/bots/ryw/conversations",
            &key,
            json!({ "id": "c", "user_id": "u" }),
        )
        .await;

    let mut tasks = Vec::new();
    for client in 0..8 {
        let (url, key) = (server.url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..40 {
                // Warm the cache with the current tail, then write, then read.
                let tail =
                    format!("{url}/v1/bots/ryw/conversations/c/messages?latest=true&limit=5");
                http.get(&tail)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("read");
                let content = format!("client{client}-{i}");
                let acked: Value = http
                    .post(format!("{url}/v1/bots/ryw/conversations/c/messages"))
                    .bearer_auth(&key)
                    .json(&json!({ "role": "user", "content": content }))
                    .send()
                    .await
                    .expect("append")
                    .json()
                    .await
                    .expect("json");
                let seq = acked["seq"].as_i64().expect("seq");
                let page: Value = http
                    .get(&tail)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("read")
                    .json()
                    .await
                    .expect("json");
                let last = page["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .and_then(|m| m["seq"].as_i64())
                    .expect("a non-empty tail");
                assert!(
                    last >= seq,
                    "read after the append of seq {seq} returned a tail ending at {last}"
                );
                let after: Value = http
                    .get(format!(
                        "{url}/v1/bots/ryw/conversations/c/messages?after_seq={}",
                        seq - 1
                    ))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("read")
                    .json()
                    .await
                    .expect("json");
                assert_eq!(
                    after["messages"][0]["content"], content,
                    "the acknowledged message is readable at its seq"
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }

    // Deleting the conversation (and, separately, a user) is seen at once.
    let tail = "/v1/bots/ryw/conversations/c/messages?latest=true&limit=5";
    server.get_ok(tail, &key).await;
    let r = server
        .req(
            reqwest::Method::DELETE,
            "/v1/bots/ryw/conversations/c",
            Some(&key),
        )
        .send()
        .await
        .expect("delete");
    assert!(r.status().is_success());
    let r = server
        .req(reqwest::Method::GET, tail, Some(&key))
        .send()
        .await
        .expect("read");
    assert_eq!(
        r.status(),
        404,
        "a deleted conversation is not served from the cache"
    );

    server
        .post_ok(
            "/v1/bots/ryw/conversations",
            &key,
            json!({ "id": "c2", "user_id": "u" }),
        )
        .await;
    server
        .post_ok(
            "/v1/bots/ryw/conversations/c2/messages",
            &key,
            json!({ "role": "user", "content": "x" }),
        )
        .await;
    let tail2 = "/v1/bots/ryw/conversations/c2/messages?latest=true";
    server.get_ok(tail2, &key).await;
    let r = server
        .req(reqwest::Method::DELETE, "/v1/bots/ryw/users/u", Some(&key))
        .send()
        .await
        .expect("delete user");
    assert!(r.status().is_success());
    let r = server
        .req(reqwest::Method::GET, tail2, Some(&key))
        .send()
        .await
        .expect("read");
    assert_eq!(
        r.status(),
        404,
        "a user's deletion removes their conversations from reads at once"
    );
}
