//! Rate limits as a client meets them: per key and endpoint group, per bot
//! configuration, 429 with Retry-After and RateLimit-* headers, and shared by
//! two server processes through one Redis.

mod common;

use common::{free_port, Server};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

fn header(r: &reqwest::Response, name: &str) -> Option<u64> {
    r.headers().get(name)?.to_str().ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_limit_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &[("STRATA_RATE_LIMIT", "5")]).await;
    let key = server.bot_with_key("rl", "writer").await;
    let other = server.key("rl", "reader").await;

    for expected in (0..5).rev() {
        let r = server
            .req(reqwest::Method::GET, "/v1/bots/rl/users", Some(&key))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-limit"), Some(5));
        assert_eq!(header(&r, "ratelimit-remaining"), Some(expected));
    }
    let r = server
        .req(reqwest::Method::GET, "/v1/bots/rl/users", Some(&key))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 429);
    let retry = header(&r, "retry-after").expect("Retry-After");
    assert!(
        (1..=12).contains(&retry),
        "retry after one emission interval, got {retry}"
    );
    assert_eq!(header(&r, "ratelimit-remaining"), Some(0));
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let body: Value = r.json().await.expect("problem body");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["status"], 429);

    // Another endpoint group and another key have their own budgets.
    let r = server
        .req(reqwest::Method::GET, "/v1/bots/rl/kv", Some(&key))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "the kv group is counted apart");
    let r = server
        .req(reqwest::Method::GET, "/v1/bots/rl/users", Some(&other))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "another key is counted apart");
    // Refused requests change nothing and public endpoints are never limited.
    for _ in 0..20 {
        assert_eq!(
            server
                .http
                .get(server.at("/health"))
                .send()
                .await
                .expect("health")
                .status(),
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_configures_its_own_limits_per_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path()).await;
    let key = server.bot_with_key("cfg", "writer").await;
    let r = server
        .req(
            reqwest::Method::PUT,
            "/v1/bots/cfg/config/rate_limit.conversations",
            Some(common::ADMIN_KEY),
        )
        .json(&json!(2))
        .send()
        .await
        .expect("set limit");
    assert!(r.status().is_success(), "{}", r.status());
    for _ in 0..2 {
        let r = server
            .req(
                reqwest::Method::GET,
                "/v1/bots/cfg/conversations",
                Some(&key),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
    }
    let r = server
        .req(
            reqwest::Method::GET,
            "/v1/bots/cfg/conversations",
            Some(&key),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.status(),
        429,
        "the bot's own limit for the group applies at once"
    );
    let r = server
        .req(reqwest::Method::GET, "/v1/bots/cfg/users", Some(&key))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "other groups keep the default");
}

/// Two processes, each with its own data folder, share one Redis and the
/// same admin key: the limit holds across both.
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_sharing_redis_share_the_limit() {
    let Some(redis) = strata_testkit::backend(
        "STRATA_TEST_REDIS_URL",
        "two_processes_sharing_redis_share_the_limit",
    ) else {
        return;
    };
    // A fresh admin key per run, so earlier runs' buckets in Redis don't count.
    let admin = format!("shared-admin-{}-{}", std::process::id(), free_port());
    let env = [
        ("STRATA_CACHE_URL", redis.as_str()),
        ("STRATA_RATE_LIMIT", "10"),
        ("STRATA_ADMIN_KEY", admin.as_str()),
    ];
    let (d1, d2) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let a = Server::start_with(d1.path(), &env).await;
    let b = Server::start_with(d2.path(), &env).await;
    let mut statuses = Vec::new();
    for i in 0..11 {
        let server = if i % 2 == 0 { &a } else { &b };
        let r = server
            .req(reqwest::Method::GET, "/v1/bots", Some(&admin))
            .send()
            .await
            .expect("request");
        statuses.push((r.status().as_u16(), header(&r, "retry-after")));
    }
    assert!(
        statuses[..10].iter().all(|(s, _)| *s == 200),
        "the first 10 pass: {statuses:?}"
    );
    assert_eq!(
        statuses[10].0, 429,
        "request 11 of 10 per minute is refused across processes: {statuses:?}"
    );
    assert!(
        statuses[10].1.is_some_and(|r| r >= 1),
        "with Retry-After: {statuses:?}"
    );
}

/// The Redis a server uses goes away and comes back: no request fails.
#[tokio::test(flavor = "multi_thread")]
async fn requests_succeed_while_redis_is_down_and_after_it_returns() {
    // It starts its own redis-server, so it is a Redis test like the others.
    if strata_testkit::backend(
        "STRATA_TEST_REDIS_URL",
        "requests_succeed_while_redis_is_down_and_after_it_returns",
    )
    .is_none()
    {
        return;
    }
    let port = free_port();
    let start_redis = || {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the fault test")
    };
    let mut redis = start_redis();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let url = format!("redis://127.0.0.1:{port}/0");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(dir.path(), &[("STRATA_CACHE_URL", url.as_str())]).await;
    let key = server.bot_with_key("fault", "writer").await;
    server
        .post_ok("/v1/bots/fault/users", &key, json!({ "id": "u" }))
        .await;
    server
        .post_ok(
            "/v1/bots/fault/conversations",
            &key,
            json!({ "id": "c", "user_id": "u" }),
        )
        .await;

    let mut appended = 0i64;
    for phase in 0..3 {
        if phase == 1 {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        if phase == 2 {
            redis = start_redis();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        for i in 0..40 {
            let body = server
                .post_ok(
                    "/v1/bots/fault/conversations/c/messages",
                    &key,
                    json!({ "role": "user", "content": format!("p{phase}-{i}") }),
                )
                .await;
            appended += 1;
            assert_eq!(body["seq"].as_i64(), Some(appended));
            let page = server
                .get_ok(
                    "/v1/bots/fault/conversations/c/messages?latest=true&limit=1",
                    &key,
                )
                .await;
            assert_eq!(
                page["messages"][0]["seq"].as_i64(),
                Some(appended),
                "no stale read in phase {phase}"
            );
        }
        let ready = server
            .http
            .get(server.at("/ready"))
            .send()
            .await
            .expect("ready");
        let status = ready.status();
        let ready: Value = ready.json().await.expect("json");
        assert_eq!(
            status, 200,
            "losing the cache does not make the server unready: {ready}"
        );
        let cache = ready["layers"]["cache"]["status"].as_str().unwrap_or("");
        if phase == 1 {
            assert_eq!(cache, "down", "readiness reports the cache outage: {ready}");
        }
    }
    let metrics = server
        .http
        .get(server.at("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("strata_cache_operations_total"),
        "cache metrics are exported"
    );
    assert!(
        metrics.contains("result=\"error\""),
        "cache errors are counted"
    );
    let _ = redis.kill();
    let _ = redis.wait();
}
