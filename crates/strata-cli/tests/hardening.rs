//! Defects found in review (issue 10), each driven end to end through the
//! real `strata serve`: secrets in logs, internal collections, workers that
//! die, readiness with a full disk, key guessing, side effects of rate
//! limiting, bot deletion order, colour codes in log files.

mod common;

use common::embedder::{FakeEmbedder, Mode, REFUSED_WORD};
use common::{Server, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `f` every 100 ms until it returns `Some`, at most `max`.
async fn wait_for<T, F, Fut>(max: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + max;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(
    s: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = s.req(method, path, key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn put_file(s: &Server, bot: &str, key: &str, auth: &str, body: &str) -> (u16, Value) {
    let res = s
        .req(
            Method::PUT,
            &format!("/v1/bots/{bot}/files/{key}"),
            Some(auth),
        )
        .header("content-type", "text/markdown")
        .body(body.to_owned())
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A `redis-server` of the test's own (killed when dropped).
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    fn start(password: &str) -> RedisServer {
        let port = common::free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                password,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisServer { child, port }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `strata serve` with `env` for at most `max`, and returns everything
/// it printed (it is killed if it is still running then).
fn run_briefly(data_dir: &Path, env: &[(&str, &str)], max: Duration) -> String {
    let port = common::free_port();
    let log = data_dir.join("brief.log");
    let out = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.arg("serve")
        .env_remove("STRATA_CONFIG")
        .env("STRATA_DATA_DIR", data_dir)
        .env("STRATA_LISTEN", format!("127.0.0.1:{port}"))
        .env("STRATA_ADMIN_KEY", ADMIN_KEY)
        .env("STRATA_LOG", "debug")
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn strata serve");
    let started = Instant::now();
    while started.elapsed() < max {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log).unwrap_or_default()
}

fn assert_no_secret(where_: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !text.contains(s),
            "the secret {s:?} appears in {where_}:\n{}",
            text.lines()
                .filter(|l| l.contains(s))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Item 1: with a password in every URL setting and every credential
/// variable, the secret is nowhere in the server's output (start, requests,
/// failing backends, shutdown), in `/ready` or in `/metrics`; nor in what a
/// failed start prints.
#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_logs_or_the_api() {
    if !strata_testkit::facility(
        "hardening::no_secret_reaches_the_logs_or_the_api",
        (!which("redis-server")).then(|| "redis-server is not installed".to_owned()),
    ) {
        return;
    }
    const REDIS_PW: &str = "hunter2-redis-pw";
    const EMB_URL_PW: &str = "emb-url-secret-pw";
    const EMB_KEY: &str = "sk-embedder-secret-key-123";
    const S3_SECRET: &str = "s3-secret-access-key-xyz";
    const AWS_SECRET: &str = "aws-secret-access-key-xyz";
    let secrets = [
        REDIS_PW, EMB_URL_PW, EMB_KEY, S3_SECRET, AWS_SECRET, ADMIN_KEY,
    ];

    let redis = RedisServer::start(REDIS_PW);
    // An embedder that answers nonsense, so its errors (with its URL) are
    // logged.
    let emb = FakeEmbedder::start(Mode::Nonsense).await;
    let emb_url = emb
        .url
        .replace("http://", &format!("http://emb-user:{EMB_URL_PW}@"));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let cache_url = format!("redis://:{REDIS_PW}@127.0.0.1:{}/0", redis.port);
    let embedder = format!("openai:{emb_url}");
    let env = [
        ("STRATA_CACHE_URL", cache_url.as_str()),
        ("STRATA_EMBEDDER", embedder.as_str()),
        ("STRATA_EMBEDDER_API_KEY", EMB_KEY),
        ("STRATA_S3_SECRET_ACCESS_KEY", S3_SECRET),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("STRATA_LOG", "debug"),
    ];
    let mut s = Server::start_logged(dir.path(), &env, Some(&log)).await;
    let key = s.bot_with_key("sec", "admin").await;
    let (st, _) = call(
        &s,
        Method::PUT,
        "/v1/bots/sec/config/memory.enabled",
        Some(&key),
        Some(json!(true)),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = put_file(
        &s,
        "sec",
        "sec.gbai/sec.gbkb/a.md",
        &key,
        "# A\nsome words to embed",
    )
    .await;
    assert_eq!(st, 201);
    let user = s.post_ok("/v1/bots/sec/users", &key, json!({})).await;
    let conv = s
        .post_ok(
            "/v1/bots/sec/conversations",
            &key,
            json!({"user_id": user["id"]}),
        )
        .await;
    let conv = conv["id"].as_str().expect("conversation id").to_owned();
    s.post_ok(
        &format!("/v1/bots/sec/conversations/{conv}/messages"),
        &key,
        json!({"role": "user", "content": "remember this"}),
    )
    .await;
    // Let the workers meet the embedder's nonsense a few times.
    wait_for(Duration::from_secs(30), "embedder calls", || async {
        (emb.calls() >= 3).then_some(())
    })
    .await;
    let (_, ready_before) = call(&s, Method::GET, "/ready", None, None).await;
    // A failing backend: the cache goes away under load.
    drop(redis);
    for _ in 0..5 {
        let _ = call(&s, Method::GET, "/v1/bots/sec/users", Some(&key), None).await;
    }
    let (_, bad) = call(
        &s,
        Method::GET,
        "/v1/bots/sec/users",
        Some("sk_wrong"),
        None,
    )
    .await;
    assert!(bad.is_object());
    let (_, ready_after) = call(&s, Method::GET, "/ready", None, None).await;
    assert_eq!(
        ready_after["layers"]["cache"]["status"], "down",
        "{ready_after}"
    );
    let metrics = s
        .req(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    s.terminate();
    let output = std::fs::read_to_string(&log).expect("server log");
    assert!(
        output.contains("starting strata"),
        "the log holds the start: {output}"
    );
    assert_no_secret("the server's output", &output, &secrets);
    assert_no_secret("/ready", &ready_before.to_string(), &secrets);
    assert_no_secret("/ready", &ready_after.to_string(), &secrets);
    assert_no_secret("/metrics", &metrics, &secrets);

    // What failed starts print: a password in each URL setting in turn.
    let failing = [
        (
            "STRATA_RECORDS_URL",
            "postgres://app:pg-secret-pw@127.0.0.1:1/strata",
            "pg-secret-pw",
        ),
        (
            "STRATA_VECTORS_URL",
            "qdrant://qd:qdrant-secret-pw@127.0.0.1:1",
            "qdrant-secret-pw",
        ),
        (
            "STRATA_CACHE_URL",
            "redis://:wrong-secret-pw@127.0.0.1:1/0",
            "wrong-secret-pw",
        ),
        (
            "STRATA_CACHE_URL",
            "redis://:p@ss-secret@127.0.0.1:99999999/0",
            "ss-secret",
        ),
        (
            "STRATA_DRIVE_URL",
            "s3://AKIA:drive-secret-pw@bucket/prefix",
            "drive-secret-pw",
        ),
        (
            "STRATA_EMBEDDER",
            "openai:http://u:emb-secret-2@127.0.0.1:1",
            "emb-secret-2",
        ),
    ];
    for (var, value, secret) in failing {
        let d = tempfile::tempdir().expect("tempdir");
        let out = run_briefly(d.path(), &[(var, value)], Duration::from_secs(4));
        assert!(!out.is_empty(), "{var}: the server printed nothing");
        assert_no_secret(
            &format!("the output with {var}"),
            &out,
            &[secret, ADMIN_KEY],
        );
    }
}

/// Item 2: `kb` and `memory` are ordinary names a client may use; the
/// knowledge base's and memory's own collections are `_kb` and `_memory`,
/// which no client can create, read, write, drop or list, and which count
/// against the bot's point quota.
#[tokio::test(flavor = "multi_thread")]
async fn internal_collections_are_reserved_and_survive_the_workers() {
    let emb = FakeEmbedder::start(Mode::Sane).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = format!("openai:{}", emb.url);
    let s = Server::start_with(dir.path(), &[("STRATA_EMBEDDER", embedder.as_str())]).await;
    let key = s.bot_with_key("res", "admin").await;
    let b = "/v1/bots/res";
    for name in ["kb", "memory"] {
        s.post_ok(
            &format!("{b}/collections"),
            &key,
            json!({"name": name, "dimension": 3}),
        )
        .await;
        let (st, v) = call(
            &s,
            Method::PUT,
            &format!("{b}/collections/{name}/points"),
            Some(&key),
            Some(json!({"points": [{"id": 1, "vector": [1.0, 0.0, 0.0]}]})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }
    // Every operation on a reserved name is refused.
    for (method, path, body) in [
        (
            Method::POST,
            format!("{b}/collections"),
            Some(json!({"name": "_kb", "dimension": 3})),
        ),
        (Method::GET, format!("{b}/collections/_kb"), None),
        (Method::DELETE, format!("{b}/collections/_memory"), None),
        (
            Method::PUT,
            format!("{b}/collections/_kb/points"),
            Some(json!({"points": [{"id": 2, "vector": [0.0, 1.0, 0.0]}]})),
        ),
        (
            Method::POST,
            format!("{b}/collections/_memory/points/search"),
            Some(json!({"vector": [0.0, 1.0, 0.0], "k": 1})),
        ),
    ] {
        let (st, v) = call(&s, method.clone(), &path, Some(&key), body).await;
        assert_eq!(st, 400, "{method} {path}: {v}");
        assert_eq!(
            v["code"], "reserved_collection_name",
            "{method} {path}: {v}"
        );
    }
    // The knowledge base and memory at work.
    let (st, _) = call(
        &s,
        Method::PUT,
        &format!("{b}/config/memory.enabled"),
        Some(&key),
        Some(json!(true)),
    )
    .await;
    assert_eq!(st, 200);
    let (st, v) = put_file(
        &s,
        "res",
        "res.gbai/res.gbkb/refunds.md",
        &key,
        "# Refunds\nRefunds take five days to reach your card.",
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let user = s.post_ok(&format!("{b}/users"), &key, json!({})).await;
    let conv = s
        .post_ok(
            &format!("{b}/conversations"),
            &key,
            json!({"user_id": user["id"]}),
        )
        .await;
    let conv = conv["id"].as_str().expect("id").to_owned();
    s.post_ok(
        &format!("{b}/conversations/{conv}/messages"),
        &key,
        json!({"role": "user", "content": "my parcel is late"}),
    )
    .await;
    wait_for(Duration::from_secs(60), "indexing and memory", || async {
        let docs = s.get_ok(&format!("{b}/kb/documents"), &key).await;
        let mem = s.get_ok(&format!("{b}/memory"), &key).await;
        (docs["documents"][0]["status"] == "indexed" && mem["indexed"] == 1).then_some(())
    })
    .await;
    // The client's collections are untouched and are all it sees.
    for name in ["kb", "memory"] {
        let v = s.get_ok(&format!("{b}/collections/{name}"), &key).await;
        assert_eq!(
            (v["dimension"].as_u64(), v["points"].as_u64()),
            (Some(3), Some(1)),
            "{name}: {v}"
        );
    }
    let list = s.get_ok(&format!("{b}/collections"), &key).await;
    let names: Vec<&str> = list["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["kb", "memory"]);
    let hits = s
        .post_ok(
            &format!("{b}/kb/search"),
            &key,
            json!({"query": "refunds card", "mode": "dense", "k": 3}),
        )
        .await;
    assert!(
        hits["results"][0]["document"]
            .as_str()
            .is_some_and(|d| d.ends_with("refunds.md")),
        "{hits}"
    );

    // The knowledge base's points count against the bot's point quota.
    let key2 = s.bot_with_key("tight", "admin").await;
    for (name, value) in [
        ("vectors.max_points", json!(2)),
        ("kb.chunk_size", json!(60)),
        ("kb.chunk_overlap", json!(0)),
    ] {
        let (st, v) = call(
            &s,
            Method::PUT,
            &format!("/v1/bots/tight/config/{name}"),
            Some(&key2),
            Some(value),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }
    let long = (0..12)
        .map(|i| format!("Paragraph {i} holds enough words to be its own chunk here."))
        .collect::<Vec<_>>()
        .join("\n\n");
    let (st, _) = put_file(&s, "tight", "tight.gbai/tight.gbkb/long.md", &key2, &long).await;
    assert_eq!(st, 201);
    let doc = wait_for(
        Duration::from_secs(60),
        "the over-quota document",
        || async {
            let docs = s.get_ok("/v1/bots/tight/kb/documents", &key2).await;
            let d = docs["documents"][0].clone();
            (d["status"] == "failed").then_some(d)
        },
    )
    .await;
    assert_eq!(doc["error_code"], "quota_exceeded", "{doc}");
}

async fn kb_status(s: &Server, key: &str) -> Value {
    s.get_ok("/v1/bots/emb/kb/documents", key).await["documents"][0].clone()
}

/// Items 3 and 10: an embedder answering nonsense headers, bodies and
/// status codes (and `Retry-After: 1e30`, which panicked the worker) never
/// stops indexing: documents stay `pending` (never `indexed` without
/// vectors), the worker keeps running and says what goes wrong in `/ready`,
/// `strata serve` stops within seconds of SIGTERM while a job waits on the
/// embedder, and after a restart with a sane embedder every document and
/// message is embedded.
#[tokio::test(flavor = "multi_thread")]
async fn a_nonsense_embedder_never_stops_indexing() {
    let emb = FakeEmbedder::start(Mode::Nonsense).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // No STRATA_EMBEDDER_DIMENSION: the dimension is learned by asking.
    let embedder = format!("openai:{}", emb.url);
    let env = [("STRATA_EMBEDDER", embedder.as_str())];
    let mut s = Server::start_with(dir.path(), &env).await;
    let key = s.bot_with_key("emb", "admin").await;
    let (st, _) = call(
        &s,
        Method::PUT,
        "/v1/bots/emb/config/memory.enabled",
        Some(&key),
        Some(json!(true)),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = put_file(
        &s,
        "emb",
        "emb.gbai/emb.gbkb/guide.md",
        &key,
        "# Guide\nOpening hours are nine to five.",
    )
    .await;
    assert_eq!(st, 201);
    let user = s.post_ok("/v1/bots/emb/users", &key, json!({})).await;
    let conv = s
        .post_ok(
            "/v1/bots/emb/conversations",
            &key,
            json!({"user_id": user["id"]}),
        )
        .await;
    let conv = conv["id"].as_str().expect("id").to_owned();
    s.post_ok(
        &format!("/v1/bots/emb/conversations/{conv}/messages"),
        &key,
        json!({"role": "user", "content": "when do you open"}),
    )
    .await;

    // Every kind of nonsense (ten kinds, served in turn; the workers back
    // off more and more while it lasts).
    wait_for(
        Duration::from_secs(120),
        "the embedder to be asked",
        || async { (emb.calls() >= 10).then_some(()) },
    )
    .await;
    let doc = kb_status(&s, &key).await;
    assert!(
        doc["status"] == "pending" || doc["status"] == "indexing",
        "never indexed without vectors: {doc}"
    );
    let ready = s.get_ok("/ready", &key).await;
    let kb = &ready["workers"]["kb"];
    assert_eq!(kb["status"], "running", "{ready}");
    assert!(
        kb["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{ready}"
    );
    assert!(kb["queue_depth"].as_u64() >= Some(1), "{ready}");
    assert_eq!(ready["workers"]["memory"]["status"], "running", "{ready}");
    assert!(
        ready["workers"]["memory"]["queue_depth"].as_u64() >= Some(1),
        "{ready}"
    );
    let metrics = s
        .req(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("strata_worker_queue_depth{worker=\"kb\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strata_worker_up{worker=\"kb\"} 1"),
        "{metrics}"
    );

    // `Retry-After: 1e30`: the worker must survive it.
    emb.set_mode(Mode::RetryAfterHuge);
    wait_for(
        Duration::from_secs(90),
        "a request answered Retry-After: 1e30",
        || async { (emb.huge_retry_after_calls() >= 1).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = s.get_ok("/ready", &key).await;
    assert_eq!(ready["workers"]["kb"]["restarts"], 0, "{ready}");
    let doc = kb_status(&s, &key).await;
    assert!(
        doc["status"] == "pending" || doc["status"] == "indexing",
        "waiting on the embedder, never indexed without vectors: {doc}"
    );

    // A job waiting on the embedder does not hold a stop.
    let took = s.terminate_within(Duration::from_secs(15));
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(10)),
        "strata serve took {took:?} to stop after SIGTERM"
    );

    // The job was durable: with a sane embedder it finishes after a restart.
    emb.set_mode(Mode::Sane);
    let s = Server::start_with(dir.path(), &env).await;
    let doc = wait_for(
        Duration::from_secs(90),
        "the document to be indexed",
        || async {
            let d = kb_status(&s, &key).await;
            (d["status"] == "indexed").then_some(d)
        },
    )
    .await;
    assert!(doc["chunks"].as_u64() >= Some(1), "{doc}");
    let hits = s
        .post_ok(
            "/v1/bots/emb/kb/search",
            &key,
            json!({"query": "opening hours", "mode": "dense", "k": 1}),
        )
        .await;
    assert!(
        hits["results"][0]["document"]
            .as_str()
            .is_some_and(|d| d.ends_with("guide.md")),
        "dense search finds the document: {hits}"
    );
    wait_for(
        Duration::from_secs(90),
        "the message to be remembered",
        || async {
            let m = s.get_ok("/v1/bots/emb/memory", &key).await;
            (m["indexed"] == 1 && m["pending"] == 0).then_some(())
        },
    )
    .await;
    let ready = s.get_ok("/ready", &key).await;
    assert!(ready["workers"]["kb"]["last_error"].is_null(), "{ready}");
}

/// An embedder that refuses one text (400, as an endpoint refuses a text
/// over its limit or its content filter) fails only the document that
/// holds it, even when the refused call mixed chunks of several documents:
/// the others are indexed with their vectors and nothing of theirs is
/// deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_text_fails_only_its_own_document() {
    // Nonsense first, so that every document waits; then answers that take
    // 300 ms each, so that the worker prepares documents meanwhile and its
    // calls mix their chunks.
    let emb = FakeEmbedder::start(Mode::Nonsense).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = format!("openai:{}", emb.url);
    let env = [
        ("STRATA_EMBEDDER", embedder.as_str()),
        ("STRATA_EMBEDDER_DIMENSION", "16"),
    ];
    let s = Server::start_with(dir.path(), &env).await;
    let key = s.bot_with_key("ref", "admin").await;
    let docs = [
        ("a.md", "Opening hours are nine to five.".to_owned()),
        (
            "b.md",
            format!("Parking is behind the {REFUSED_WORD} building."),
        ),
        ("c.md", "Refunds take fourteen days.".to_owned()),
        ("d.md", "The cafeteria serves lunch at noon.".to_owned()),
        ("e.md", "Lost badges are replaced at reception.".to_owned()),
        ("f.md", "Visitors sign in at the front desk.".to_owned()),
        (
            "g.md",
            format!("Printers jam when {REFUSED_WORD} paper is used."),
        ),
        ("h.md", "The library closes at eight on Fridays.".to_owned()),
    ];
    for (name, body) in &docs {
        let (st, _) = put_file(&s, "ref", &format!("ref.gbai/ref.gbkb/{name}"), &key, body).await;
        assert_eq!(st, 201);
    }
    wait_for(
        Duration::from_secs(60),
        "the embedder to be asked",
        || async { (emb.calls() >= 2).then_some(()) },
    )
    .await;
    emb.set_mode(Mode::Delayed);
    let list = wait_for(
        Duration::from_secs(120),
        "every document to be indexed or failed",
        || async {
            let list = s.get_ok("/v1/bots/ref/kb/documents", &key).await;
            let done = list["documents"].as_array().is_some_and(|d| {
                d.len() == docs.len()
                    && d.iter()
                        .all(|d| d["status"] == "indexed" || d["status"] == "failed")
            });
            done.then_some(list)
        },
    )
    .await;
    let (refused, mixed) = emb.refusals();
    assert!(refused >= 1, "the refused text reached the embedder");
    assert!(
        mixed >= 1,
        "a refused call carried other documents' chunks too ({refused} refused calls)"
    );
    for d in list["documents"].as_array().into_iter().flatten() {
        let path = d["key"].as_str().unwrap_or_default();
        if path.ends_with("b.md") || path.ends_with("g.md") {
            assert_eq!(d["status"], "failed", "{d}");
        } else {
            assert_eq!(d["status"], "indexed", "{d}");
            assert!(d["chunks"].as_u64() >= Some(1), "{d}");
        }
    }
    for (query, name) in [
        ("opening hours", "a.md"),
        ("refunds days", "c.md"),
        ("lunch noon cafeteria", "d.md"),
    ] {
        let hits = s
            .post_ok(
                "/v1/bots/ref/kb/search",
                &key,
                json!({"query": query, "mode": "dense", "k": 1}),
            )
            .await;
        assert!(
            hits["results"][0]["document"]
                .as_str()
                .is_some_and(|d| d.ends_with(name)),
            "dense search finds {name}: {hits}"
        );
    }
}

/// Runs `cmd` and says whether it succeeded.
fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A tmpfs mounted for the test (unmounted when dropped).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let opts = format!("size={size}");
        if ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir.path()))
        {
            Ok(Tmpfs(dir))
        } else {
            Err("mounting a tmpfs failed (it needs root)".to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Item 3 (readiness): with the disk full, writes are answered 503 (clean
/// problem+json, never 500), `/ready` answers 503 naming the layers that
/// cannot write, nothing acknowledged is lost or damaged, and everything
/// works again once space is freed.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_makes_the_server_unready_and_loses_nothing() {
    let fs = match Tmpfs::mount("48m") {
        Ok(fs) => fs,
        Err(why) => {
            assert!(!strata_testkit::facility(
                "hardening::a_full_disk_makes_the_server_unready_and_loses_nothing",
                Some(why)
            ));
            return;
        }
    };
    let data = fs.0.path().join("data");
    let env = [("STRATA_MIN_FREE_BYTES", "4MiB")];
    let mut s = Server::start_with(&data, &env).await;
    let key = s.bot_with_key("full", "writer").await;
    let b = "/v1/bots/full";
    let user = s.post_ok(&format!("{b}/users"), &key, json!({})).await;
    let conv = s
        .post_ok(
            &format!("{b}/conversations"),
            &key,
            json!({"user_id": user["id"]}),
        )
        .await;
    let conv = conv["id"].as_str().expect("id").to_owned();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let text = format!("message {i}");
        s.post_ok(
            &format!("{b}/conversations/{conv}/messages"),
            &key,
            json!({"role": "user", "content": text}),
        )
        .await;
        acknowledged.push(text);
    }
    let original: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let res = s
        .req(Method::PUT, &format!("{b}/files/keep.bin"), Some(&key))
        .body(original.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(
        s.req(Method::GET, "/ready", None)
            .send()
            .await
            .expect("ready")
            .status()
            .as_u16(),
        200
    );

    // Fill the disk.
    let filler = fs.0.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let ready = wait_for(Duration::from_secs(10), "/ready to say 503", || async {
        let r = s
            .req(Method::GET, "/ready", None)
            .send()
            .await
            .expect("ready");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(ready["layers"]["records"]["status"], "down", "{ready}");
    assert_eq!(ready["layers"]["drive"]["status"], "down", "{ready}");
    // Writes fail cleanly: 503 problem+json (a small append may still fit).
    let big: Vec<u8> = vec![7u8; 2 << 20];
    let res = s
        .req(Method::PUT, &format!("{b}/files/big.bin"), Some(&key))
        .body(big)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 503, "an upload to a full disk");
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    for i in 0..50 {
        let (st, v) = call(
            &s,
            Method::POST,
            &format!("{b}/conversations/{conv}/messages"),
            Some(&key),
            Some(
                json!({"role": "user", "content": format!("while full {i} {}", "x".repeat(4000))}),
            ),
        )
        .await;
        assert!(st == 201 || st == 503, "append while full: {st} {v}");
        if st == 201 {
            acknowledged.push(format!("while full {i} {}", "x".repeat(4000)));
        } else {
            assert!(v["code"].is_string(), "{v}");
        }
    }
    // Free the disk: the server comes back by itself.
    std::fs::remove_file(&filler).expect("free the disk");
    wait_for(
        Duration::from_secs(15),
        "/ready to say 200 again",
        || async {
            let r = s
                .req(Method::GET, "/ready", None)
                .send()
                .await
                .expect("ready");
            (r.status().as_u16() == 200).then_some(())
        },
    )
    .await;
    s.post_ok(
        &format!("{b}/conversations/{conv}/messages"),
        &key,
        json!({"role": "user", "content": "after"}),
    )
    .await;
    acknowledged.push("after".to_owned());
    // A restart: every acknowledged message and the file are intact.
    s.terminate();
    let s = Server::start_with(&data, &env).await;
    let page = s
        .get_ok(
            &format!("{b}/conversations/{conv}/messages?limit=1000"),
            &key,
        )
        .await;
    let got: Vec<&str> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        got,
        acknowledged.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let body = s
        .req(Method::GET, &format!("{b}/files/keep.bin"), Some(&key))
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.as_ref(), original.as_slice());
}

/// A client whose requests come from `ip` (any 127.x address reaches the
/// server on 127.0.0.1).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn status_from(client: &reqwest::Client, s: &Server, key: &str) -> (u16, Option<String>) {
    let r = client
        .get(s.at("/v1/bots/guard/users"))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), retry)
}

/// Item 5: failed authentications are throttled per client address and per
/// key id (429 with Retry-After past the limit), while valid keys from the
/// same address are not slowed.
#[tokio::test(flavor = "multi_thread")]
async fn failed_authentications_are_throttled_per_address_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start_with(dir.path(), &[("STRATA_AUTH_FAILURE_LIMIT", "5")]).await;
    let good = s.bot_with_key("guard", "reader").await;
    let a = client_from([127, 0, 0, 1]);
    for i in 0..5 {
        assert_eq!(status_from(&a, &s, &format!("wrong-key-{i}")).await.0, 401);
    }
    let (st, retry) = status_from(&a, &s, "wrong-key-x").await;
    assert_eq!(st, 429, "the sixth failure from one address");
    assert!(retry
        .and_then(|r| r.parse::<u64>().ok())
        .is_some_and(|r| r >= 1));
    // A request without any key guesses nothing: it is answered 401.
    let r = a
        .get(s.at("/v1/bots/guard/users"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
    // The valid key from the same address is not slowed.
    for _ in 0..20 {
        assert_eq!(status_from(&a, &s, &good).await.0, 200);
    }
    // Another address has its own bucket.
    let b = client_from([127, 0, 0, 2]);
    assert_eq!(status_from(&b, &s, "wrong-key").await.0, 401);
    // A wrong secret for a real key id, from ever new addresses: the key
    // id's bucket stops the guessing.
    let id = good
        .strip_prefix("sk_")
        .and_then(|r| r.split('_').next())
        .expect("key id");
    let guess = format!("sk_{id}_guessed-secret");
    let mut statuses = Vec::new();
    for last in 10..17u8 {
        let c = client_from([127, 0, 0, last]);
        statuses.push(status_from(&c, &s, &guess).await.0);
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
}

/// Item 5: the rate limiter looks the session's user up without side
/// effects: naming a session in `X-Strata-Session` never slides its expiry.
#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limiter_never_slides_a_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path()).await;
    let key = s.bot_with_key("slide", "writer").await;
    let admin = s.key("slide", "admin").await;
    let (st, _) = call(
        &s,
        Method::PUT,
        "/v1/bots/slide/config/session_ttl_seconds",
        Some(&admin),
        Some(json!(10)),
    )
    .await;
    assert_eq!(st, 200);
    let user = s.post_ok("/v1/bots/slide/users", &key, json!({})).await;
    let session = s
        .post_ok(
            "/v1/bots/slide/sessions",
            &key,
            json!({"user_id": user["id"]}),
        )
        .await;
    let (id, token) = (
        session["id"].as_str().expect("id").to_owned(),
        session["token"].as_str().expect("token").to_owned(),
    );
    let expires = session["expires_at"].clone();
    // Long enough for a slide to be written (a tenth of the lifetime).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        let r = s
            .req(Method::GET, "/v1/bots/slide/users", Some(&key))
            .header("x-strata-session", &token)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 200);
    }
    let now = s
        .get_ok(&format!("/v1/bots/slide/sessions/{id}"), &key)
        .await;
    assert_eq!(
        now["expires_at"], expires,
        "looking the user up slid the session"
    );
    // Resolving it does slide it.
    let resolved = s
        .post_ok(
            "/v1/bots/slide/sessions/resolve",
            &key,
            json!({"token": token}),
        )
        .await;
    assert_ne!(resolved["expires_at"], expires);
}

/// Item 8: a deleted bot is gone at once (keys refused, not found, id not
/// reusable), its data is purged in the background, and a purge cut short
/// by a crash finishes after the restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_bot_is_gone_at_once_and_purged_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start(dir.path()).await;
    let key = s.bot_with_key("gone", "admin").await;
    let b = "/v1/bots/gone";
    let (st, _) = call(
        &s,
        Method::PUT,
        &format!("{b}/kv/greeting"),
        Some(&key),
        None,
    )
    .await;
    assert!(st < 300);
    let (st, _) = put_file(&s, "gone", "notes.md", &key, "hello").await;
    assert_eq!(st, 201);
    s.post_ok(
        &format!("{b}/collections"),
        &key,
        json!({"name": "c", "dimension": 2}),
    )
    .await;
    let user = s.post_ok(&format!("{b}/users"), &key, json!({})).await;
    let conv = s
        .post_ok(
            &format!("{b}/conversations"),
            &key,
            json!({"user_id": user["id"]}),
        )
        .await;
    let conv = conv["id"].as_str().expect("id").to_owned();
    for i in 0..200 {
        s.post_ok(
            &format!("{b}/conversations/{conv}/messages"),
            &key,
            json!({"role": "user", "content": format!("m{i}")}),
        )
        .await;
    }
    let (st, v) = call(&s, Method::DELETE, b, Some(ADMIN_KEY), None).await;
    assert!((200..300).contains(&st), "{st} {v}");
    // Gone at once, and crash right away (the purge may be cut short).
    let (st, v) = call(&s, Method::GET, &format!("{b}/users"), Some(&key), None).await;
    assert_eq!(st, 401, "its keys stop working at once: {v}");
    let (st, _) = call(&s, Method::GET, b, Some(ADMIN_KEY), None).await;
    assert_eq!(st, 404);
    s.kill();
    let s = Server::start(dir.path()).await;
    let (st, _) = call(&s, Method::GET, b, Some(ADMIN_KEY), None).await;
    assert_eq!(st, 404, "still deleted after the restart");
    // The purge finishes by itself; then the id starts empty.
    let key = s.bot_with_key("gone", "admin").await;
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("{b}/kv/greeting"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("{b}/files/notes.md"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(st, 404);
    let v = s.get_ok(&format!("{b}/collections"), &key).await;
    assert_eq!(v["collections"], json!([]));
    let v = s.get_ok(&format!("{b}/users"), &key).await;
    assert!(v["users"].as_array().is_some_and(|u| u.is_empty()), "{v}");
    // The purge files are gone from the drive too.
    let bodies = dir.path().join("drive").join("bots").join("gone");
    let left = std::fs::read_dir(&bodies).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        left,
        0,
        "file bodies of the deleted bot are left in {}",
        bodies.display()
    );
}

/// Item 11: a log written to a file (not a terminal) holds no ANSI colour
/// codes.
#[tokio::test(flavor = "multi_thread")]
async fn logs_written_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("server.log");
    let mut s = Server::start_logged(
        &dir.path().join("data"),
        &[("STRATA_LOG", "info")],
        Some(&log),
    )
    .await;
    let _ = call(&s, Method::GET, "/v1/bots", Some("wrong"), None).await;
    s.terminate();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("strata is listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text}"
    );
}
