//! Sessions as a client meets them, on the in-process cache and (when
//! STRATA_TEST_REDIS_URL is set) on Redis: resolve slides the idle expiry,
//! a state change is read back at once, revocation and the user's deletion
//! take effect at once, and the idle lifetime is configurable per bot.

mod common;

use common::{Server, ADMIN_KEY};
use serde_json::{json, Value};
use std::time::Duration;

async fn resolve(server: &Server, key: &str, token: &str) -> (u16, Value) {
    let r = server
        .req(
            reqwest::Method::POST,
            "/v1/bots/s/sessions/resolve",
            Some(key),
        )
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("resolve");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn exercise(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), env).await;
    let key = server.bot_with_key("s", "writer").await;
    server
        .post_ok("/v1/bots/s/users", &key, json!({ "id": "u" }))
        .await;

    // Sliding idle expiry.
    let created = server
        .post_ok(
            "/v1/bots/s/sessions",
            &key,
            json!({ "user_id": "u", "ttl_seconds": 2 }),
        )
        .await;
    let token = created["token"].as_str().expect("token").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(
        created.get("token_hash").is_none(),
        "the hash is never shown"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        resolve(&server, &key, &token).await.0,
        200,
        "alive within its idle lifetime"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        resolve(&server, &key, &token).await.0,
        200,
        "the resolve at 1.2 s slid the expiry past 2 s"
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        resolve(&server, &key, &token).await.0,
        404,
        "idle longer than its lifetime: gone"
    );

    // State changes are read back at once, through the cache.
    let created = server
        .post_ok(
            "/v1/bots/s/sessions",
            &key,
            json!({ "user_id": "u", "state": { "step": 1 } }),
        )
        .await;
    let token = created["token"].as_str().expect("token").to_owned();
    let id2 = created["id"].as_str().expect("id").to_owned();
    for step in 2..6 {
        assert_eq!(
            resolve(&server, &key, &token).await.1["state"]["step"],
            step - 1
        );
        let r = server
            .req(
                reqwest::Method::PATCH,
                &format!("/v1/bots/s/sessions/{id2}"),
                Some(&key),
            )
            .json(&json!({ "state": { "step": step } }))
            .send()
            .await
            .expect("patch");
        assert_eq!(r.status(), 200);
        assert_eq!(
            resolve(&server, &key, &token).await.1["state"]["step"],
            step,
            "read your own state change"
        );
    }

    // Revocation takes effect at once, although the session is cached.
    let r = server
        .req(
            reqwest::Method::DELETE,
            &format!("/v1/bots/s/sessions/{id2}"),
            Some(&key),
        )
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 200);
    assert_eq!(
        resolve(&server, &key, &token).await.0,
        404,
        "a revoked session no longer resolves"
    );
    let _ = id;

    // Deleting the user ends their sessions at once.
    let created = server
        .post_ok("/v1/bots/s/sessions", &key, json!({ "user_id": "u" }))
        .await;
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(resolve(&server, &key, &token).await.0, 200);
    let r = server
        .req(reqwest::Method::DELETE, "/v1/bots/s/users/u", Some(&key))
        .send()
        .await
        .expect("delete user");
    assert_eq!(r.status(), 200);
    assert_eq!(
        resolve(&server, &key, &token).await.0,
        404,
        "the user's sessions end with the user"
    );

    // The default idle lifetime is configurable per bot.
    let r = server
        .req(
            reqwest::Method::PUT,
            "/v1/bots/s/config/session_ttl_seconds",
            Some(ADMIN_KEY),
        )
        .json(&json!(5))
        .send()
        .await
        .expect("config");
    assert!(r.status().is_success());
    server
        .post_ok("/v1/bots/s/users", &key, json!({ "id": "u2" }))
        .await;
    let created = server
        .post_ok("/v1/bots/s/sessions", &key, json!({ "user_id": "u2" }))
        .await;
    assert_eq!(created["ttl_seconds"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_on_the_in_process_cache() {
    exercise(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_on_redis() {
    let Some(url) = strata_testkit::backend("STRATA_TEST_REDIS_URL", "sessions_on_redis") else {
        return;
    };
    exercise(&[("STRATA_CACHE_URL", url.as_str())]).await;
}
