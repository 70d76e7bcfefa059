//! Bad input gets a 4xx problem+json with a stable `code`, and changes
//! nothing that is stored.

mod common;

use common::{Server, ADMIN_KEY};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

/// A request body.
#[derive(Debug, Clone)]
enum Body {
    None,
    /// Serialised JSON with `Content-Type: application/json`.
    Json(Value),
    /// Text sent as `application/json` as it is (malformed on purpose).
    RawJson(String),
    /// Bytes with the given Content-Type (`None`: no Content-Type at all).
    Bytes(Vec<u8>, Option<&'static str>),
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(s: &Server, method: Method, path: &str, key: Option<&str>, body: Body) -> Reply {
    let ctx = format!("{method} {path}");
    let mut r = s.req(method, path, key);
    r = match body {
        Body::None => r,
        Body::Json(v) => r.json(&v),
        Body::RawJson(t) => r.header(CONTENT_TYPE, "application/json").body(t),
        Body::Bytes(b, Some(ct)) => r.header(CONTENT_TYPE, ct).body(b),
        Body::Bytes(b, None) => r.body(b),
    };
    let res = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: request failed: {e}"));
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = res
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{ctx}: reading the body failed: {e}"))
        .to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

/// Why `reply` is not the problem `status`/`code`, if it is not.
fn problem_mismatch(reply: &Reply, status: u16, code: &str) -> Option<String> {
    if reply.status != status {
        return Some(format!(
            "status {} (expected {status} {code}): {}",
            reply.status,
            reply.text()
        ));
    }
    if !reply.content_type.starts_with("application/problem+json") {
        return Some(format!(
            "Content-Type {:?} (expected application/problem+json)",
            reply.content_type
        ));
    }
    let v: Value = match serde_json::from_slice(&reply.body) {
        Ok(v) => v,
        Err(e) => return Some(format!("body is not JSON ({e}): {:?}", reply.text())),
    };
    for field in ["type", "title", "detail", "code"] {
        if !v[field].is_string() {
            return Some(format!("problem body lacks string `{field}`: {v}"));
        }
    }
    if v["status"].as_u64() != Some(u64::from(status)) {
        return Some(format!("problem `status` is not {status}: {v}"));
    }
    if v["code"] != code {
        return Some(format!("code {} (expected {code}): {v}", v["code"]));
    }
    None
}

/// Sends bad requests and collects every answer that is not the expected
/// problem, so one run reports all of them.
struct Checker<'a> {
    s: &'a Server,
    key: String,
    failures: Vec<String>,
    sent: usize,
}

impl std::fmt::Debug for Checker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("failures", &self.failures)
            .finish()
    }
}

impl Checker<'_> {
    /// Sends as the checker's key and expects the problem `status`/`code`.
    async fn expect(
        &mut self,
        what: &str,
        method: Method,
        path: &str,
        body: Body,
        status: u16,
        code: &str,
    ) {
        // Creating and listing bots needs the global admin key, which is
        // checked before the body is read.
        let key = if path == "/v1/bots" || path.starts_with("/v1/bots?") {
            ADMIN_KEY.to_owned()
        } else {
            self.key.clone()
        };
        self.expect_as(what, Some(&key), method, path, body, status, code)
            .await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn expect_as(
        &mut self,
        what: &str,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Body,
        status: u16,
        code: &str,
    ) {
        let m = method.to_string();
        let reply = send(self.s, method, path, key, body).await;
        self.sent += 1;
        if let Some(why) = problem_mismatch(&reply, status, code) {
            self.failures.push(format!("{what} ({m} {path}): {why}"));
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} bad requests were not answered as expected:\n{}",
            self.failures.len(),
            self.sent,
            self.failures.join("\n")
        );
    }
}

/// The stored state the bad requests must leave alone.
async fn snapshot(s: &Server, conv: &str, user: &str) -> Value {
    let b = "/v1/bots/alpha";
    let mut kv = serde_json::Map::new();
    for k in ["k1", "k2", "new-key", "big"] {
        let r = send(
            s,
            Method::GET,
            &format!("{b}/kv/{k}"),
            Some(ADMIN_KEY),
            Body::None,
        )
        .await;
        kv.insert(
            k.to_owned(),
            json!({ "status": r.status, "value": r.text() }),
        );
    }
    json!({
        "bots": s.get_ok("/v1/bots", ADMIN_KEY).await,
        "keys": s.get_ok(&format!("{b}/keys"), ADMIN_KEY).await,
        "users": s.get_ok(&format!("{b}/users"), ADMIN_KEY).await,
        "user": s.get_ok(&format!("{b}/users/{user}"), ADMIN_KEY).await,
        "conversations": s.get_ok(&format!("{b}/conversations"), ADMIN_KEY).await,
        "messages": s.get_ok(&format!("{b}/conversations/{conv}/messages"), ADMIN_KEY).await,
        "groups": s.get_ok(&format!("{b}/groups"), ADMIN_KEY).await,
        "presets": s.get_ok(&format!("{b}/presets"), ADMIN_KEY).await,
        "tool_logs": s.get_ok(&format!("{b}/tool-logs"), ADMIN_KEY).await,
        "config": s.get_ok(&format!("{b}/config"), ADMIN_KEY).await,
        "kv_keys": s.get_ok(&format!("{b}/kv"), ADMIN_KEY).await,
        "kv": kv,
    })
}

/// The top-level fields of two snapshots that differ, each shown both ways.
fn snapshot_diff(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    b.keys()
        .chain(a.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  before: {}\n  after:  {}",
                b.get(k).unwrap_or(&Value::Null),
                a.get(k).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

async fn put_kv(s: &Server, path: &str, value: &[u8]) {
    let r = send(
        s,
        Method::PUT,
        path,
        Some(ADMIN_KEY),
        Body::Bytes(value.to_vec(), None),
    )
    .await;
    assert_eq!(r.status, 204, "PUT {path}: {}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_problem_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Server::start(dir.path()).await;
    let admin = s.bot_with_key("alpha", "admin").await;
    let b = "/v1/bots/alpha";

    // Seed: a user, a conversation with two messages, a session, kv keys.
    let user = s
        .post_ok(
            &format!("{b}/users"),
            &admin,
            json!({ "name": "Ada", "external_id": "ada" }),
        )
        .await;
    let user = user["id"].as_str().expect("user id").to_owned();
    let conv = s
        .post_ok(
            &format!("{b}/conversations"),
            &admin,
            json!({ "user_id": user, "title": "seeded" }),
        )
        .await;
    let conv = conv["id"].as_str().expect("conversation id").to_owned();
    s.post_ok(
        &format!("{b}/conversations/{conv}/messages"),
        &admin,
        json!({ "messages": [
            { "role": "user", "content": "hello" },
            { "role": "assistant", "content": "hi there" }
        ] }),
    )
    .await;
    let session = s
        .post_ok(&format!("{b}/sessions"), &admin, json!({ "user_id": user }))
        .await;
    let session = session["id"].as_str().expect("session id").to_owned();
    put_kv(&s, &format!("{b}/kv/k1"), b"value one").await;
    put_kv(&s, &format!("{b}/kv/k2"), b"value two").await;

    let before = snapshot(&s, &conv, &user).await;

    let users = format!("{b}/users");
    let convs = format!("{b}/conversations");
    let conv_path = format!("{b}/conversations/{conv}");
    let messages = format!("{conv_path}/messages");
    let groups = format!("{b}/groups");
    let kv_batch = format!("{b}/kv/batch");
    let mut c = Checker {
        s: &s,
        key: admin.clone(),
        failures: Vec::new(),
        sent: 0,
    };

    // ------------------------------------------------------------ malformed JSON
    for (what, path, text) in [
        ("truncated object", users.as_str(), r#"{"name": "x""#),
        (
            "trailing comma",
            messages.as_str(),
            r#"{"role":"user","content":"hi",}"#,
        ),
        ("not JSON at all", "/v1/bots", "this is not json"),
        ("an open array", kv_batch.as_str(), r#"{"ops": ["#),
        ("an empty body", messages.as_str(), ""),
    ] {
        c.expect(
            what,
            Method::POST,
            path,
            Body::RawJson(text.into()),
            400,
            "invalid_json",
        )
        .await;
    }
    c.expect(
        "malformed config",
        Method::PUT,
        &format!("{b}/config"),
        Body::RawJson("{".into()),
        400,
        "invalid_json",
    )
    .await;

    // ------------------------------------------------------------ wrong types
    let wrong_types: Vec<(&str, Method, String, Value)> = vec![
        (
            "content: 5",
            Method::POST,
            messages.clone(),
            json!({ "role": "user", "content": 5 }),
        ),
        (
            "content: 5 in a batch",
            Method::POST,
            messages.clone(),
            json!({ "messages": [{ "role": "user", "content": "ok" }, { "role": "user", "content": 5 }] }),
        ),
        (
            "name: []",
            Method::POST,
            groups.clone(),
            json!({ "name": [] }),
        ),
        (
            "bot name: []",
            Method::POST,
            "/v1/bots".into(),
            json!({ "id": "gamma", "name": [] }),
        ),
        (
            "user name: 7",
            Method::PATCH,
            format!("{users}/{user}"),
            json!({ "name": 7 }),
        ),
        (
            "an array instead of an object",
            Method::POST,
            users.clone(),
            json!([]),
        ),
        (
            "settings not an object",
            Method::POST,
            users.clone(),
            json!({ "name": "x", "settings": "nope" }),
        ),
        (
            "missing user_id",
            Method::POST,
            convs.clone(),
            json!({ "title": "t" }),
        ),
        (
            "metadata not an object",
            Method::PATCH,
            conv_path.clone(),
            json!({ "metadata": [1, 2] }),
        ),
        (
            "session state not an object",
            Method::PATCH,
            format!("{b}/sessions/{session}"),
            json!({ "state": [1] }),
        ),
        (
            "ops: a string",
            Method::POST,
            kv_batch.clone(),
            json!({ "ops": "set" }),
        ),
        (
            "bad base64",
            Method::POST,
            kv_batch.clone(),
            json!({ "ops": [{ "op": "set", "key": "new-key", "value_base64": "!!!" }] }),
        ),
        (
            "one message and a batch at once",
            Method::POST,
            messages.clone(),
            json!({ "role": "user", "content": "a", "messages": [{ "role": "user", "content": "b" }] }),
        ),
        (
            "an empty batch of messages",
            Method::POST,
            messages.clone(),
            json!({ "messages": [] }),
        ),
        (
            "an empty idempotency key",
            Method::POST,
            messages.clone(),
            json!({ "role": "user", "content": "a", "idempotency_key": "" }),
        ),
        (
            "an empty group name",
            Method::POST,
            groups.clone(),
            json!({ "name": "   " }),
        ),
        (
            "a 300-character group name",
            Method::POST,
            groups.clone(),
            json!({ "name": "g".repeat(300) }),
        ),
        (
            "an empty bot name",
            Method::PATCH,
            b.into(),
            json!({ "name": "" }),
        ),
        (
            "a negative tool duration",
            Method::POST,
            format!("{b}/tool-logs"),
            json!({ "tool": "t", "input": {}, "status": "ok", "duration_ms": -1 }),
        ),
        (
            "an empty kv batch",
            Method::POST,
            kv_batch.clone(),
            json!({ "ops": [] }),
        ),
    ];
    for (what, method, path, body) in wrong_types {
        c.expect(what, method, &path, Body::Json(body), 400, "invalid_input")
            .await;
    }
    c.expect(
        "a user id with a space",
        Method::POST,
        &users,
        Body::Json(json!({ "id": "has space" })),
        400,
        "invalid_id",
    )
    .await;
    c.expect(
        "limit=abc",
        Method::GET,
        &format!("{users}?limit=abc"),
        Body::None,
        400,
        "invalid_input",
    )
    .await;

    // ------------------------------------------------------------ unknown roles
    c.expect(
        "an unknown key role",
        Method::POST,
        &format!("{b}/keys"),
        Body::Json(json!({ "name": "k", "role": "superuser" })),
        400,
        "invalid_role",
    )
    .await;
    c.expect(
        "an upper-case key role",
        Method::POST,
        &format!("{b}/keys"),
        Body::Json(json!({ "name": "k", "role": "Admin" })),
        400,
        "invalid_role",
    )
    .await;
    c.expect(
        "an unknown message role",
        Method::POST,
        &messages,
        Body::Json(json!({ "role": "robot", "content": "beep" })),
        400,
        "invalid_role",
    )
    .await;
    c.expect(
        "an unknown message role after a valid one",
        Method::POST,
        &messages,
        Body::Json(json!({ "messages": [
            { "role": "user", "content": "fine" },
            { "role": "robot", "content": "beep" }
        ] })),
        400,
        "invalid_role",
    )
    .await;

    // ------------------------------------------------------------ bot ids
    let long_id = "a".repeat(64);
    for bad in ["Alpha", "-alpha", "_x", "al.pha", long_id.as_str()] {
        c.expect(
            &format!("bot id {bad:?} in the path"),
            Method::GET,
            &format!("/v1/bots/{bad}/users"),
            Body::None,
            400,
            "invalid_bot_id",
        )
        .await;
        c.expect_as(
            &format!("bot id {bad:?} in the path, global admin"),
            Some(ADMIN_KEY),
            Method::GET,
            &format!("/v1/bots/{bad}"),
            Body::None,
            400,
            "invalid_bot_id",
        )
        .await;
        c.expect_as(
            &format!("bot id {bad:?} in POST /v1/bots"),
            Some(ADMIN_KEY),
            Method::POST,
            "/v1/bots",
            Body::Json(json!({ "id": bad, "name": "x" })),
            400,
            "invalid_bot_id",
        )
        .await;
    }
    for bad in ["", "has space", "UPPER"] {
        c.expect_as(
            &format!("bot id {bad:?} in POST /v1/bots"),
            Some(ADMIN_KEY),
            Method::POST,
            "/v1/bots",
            Body::Json(json!({ "id": bad, "name": "x" })),
            400,
            "invalid_bot_id",
        )
        .await;
    }

    // ------------------------------------------------------------ missing things
    c.expect(
        "a missing conversation",
        Method::GET,
        &format!("{convs}/no-such-conversation"),
        Body::None,
        404,
        "not_found",
    )
    .await;
    c.expect(
        "appending to a missing conversation",
        Method::POST,
        &format!("{convs}/no-such-conversation/messages"),
        Body::Json(json!({ "role": "user", "content": "lost" })),
        404,
        "not_found",
    )
    .await;
    c.expect(
        "reading messages of a missing conversation",
        Method::GET,
        &format!("{convs}/no-such-conversation/messages"),
        Body::None,
        404,
        "not_found",
    )
    .await;
    c.expect(
        "a conversation for a missing user",
        Method::POST,
        &convs,
        Body::Json(json!({ "user_id": "no-such-user" })),
        404,
        "not_found",
    )
    .await;
    c.expect(
        "a tool log of a missing conversation",
        Method::POST,
        &format!("{b}/tool-logs"),
        Body::Json(json!({ "conversation_id": "nope", "tool": "t", "input": {}, "status": "ok" })),
        404,
        "not_found",
    )
    .await;
    c.expect(
        "a missing kv key",
        Method::GET,
        &format!("{b}/kv/no-such-key"),
        Body::None,
        404,
        "not_found",
    )
    .await;
    c.expect_as(
        "a missing bot",
        Some(ADMIN_KEY),
        Method::GET,
        "/v1/bots/no-such-bot/users",
        Body::None,
        404,
        "not_found",
    )
    .await;

    // ------------------------------------------------------------ limits and cursors
    let lists = [
        users.clone(),
        convs.clone(),
        messages.clone(),
        groups.clone(),
        format!("{b}/presets"),
        format!("{b}/tool-logs"),
        format!("{b}/kv"),
        format!("{b}/keys"),
        "/v1/bots".to_owned(),
    ];
    for list in &lists {
        let key = if list == "/v1/bots" {
            ADMIN_KEY
        } else {
            &admin
        };
        for limit in ["-1", "0", "1001", "1000000", "9223372036854775807"] {
            c.expect_as(
                &format!("limit={limit}"),
                Some(key),
                Method::GET,
                &format!("{list}?limit={limit}"),
                Body::None,
                400,
                "invalid_limit",
            )
            .await;
        }
        for cursor in ["!!!", "%25%25", "a b", "%C3%28"] {
            c.expect_as(
                &format!("cursor={cursor}"),
                Some(key),
                Method::GET,
                &format!("{list}?cursor={cursor}"),
                Body::None,
                400,
                "invalid_cursor",
            )
            .await;
        }
    }
    // A cursor that decodes but is not one of the messages list's.
    c.expect(
        "a non-numeric message cursor",
        Method::GET,
        &format!("{messages}?cursor=bm90LWEtbnVtYmVy"),
        Body::None,
        400,
        "invalid_cursor",
    )
    .await;
    c.expect(
        "after_seq=-1",
        Method::GET,
        &format!("{messages}?after_seq=-1"),
        Body::None,
        400,
        "invalid_seq",
    )
    .await;
    c.expect(
        "before_seq=0",
        Method::GET,
        &format!("{messages}?before_seq=0"),
        Body::None,
        400,
        "invalid_seq",
    )
    .await;
    c.expect(
        "after_seq=abc",
        Method::GET,
        &format!("{messages}?after_seq=abc"),
        Body::None,
        400,
        "invalid_input",
    )
    .await;

    // ------------------------------------------------------------ kv
    c.expect(
        "an atomic batch with an empty key",
        Method::POST,
        &kv_batch,
        Body::Json(json!({ "atomic": true, "ops": [
            { "op": "set", "key": "k1", "value_base64": "Y2hhbmdlZA==" },
            { "op": "delete", "key": "k2" },
            { "op": "set", "key": "new-key", "value_base64": "bmV3" },
            { "op": "set", "key": "", "value_base64": "eA==" }
        ] })),
        400,
        "invalid_key",
    )
    .await;
    c.expect(
        "an atomic batch with an unknown op",
        Method::POST,
        &kv_batch,
        Body::Json(json!({ "atomic": true, "ops": [
            { "op": "set", "key": "k1", "value_base64": "Y2hhbmdlZA==" },
            { "op": "upsert", "key": "k2", "value_base64": "eA==" }
        ] })),
        400,
        "invalid_op",
    )
    .await;
    c.expect(
        "an atomic batch with a zero ttl",
        Method::POST,
        &kv_batch,
        Body::Json(json!({ "atomic": true, "ops": [
            { "op": "delete", "key": "k2" },
            { "op": "set", "key": "new-key", "value_base64": "eA==", "ttl_seconds": 0 }
        ] })),
        400,
        "invalid_ttl",
    )
    .await;
    for ttl in ["0", "-5"] {
        c.expect(
            &format!("kv PUT with ttl_seconds={ttl}"),
            Method::PUT,
            &format!("{b}/kv/k1?ttl_seconds={ttl}"),
            Body::Bytes(b"changed".to_vec(), None),
            400,
            "invalid_ttl",
        )
        .await;
    }
    c.expect(
        "kv PUT with ttl_seconds=abc",
        Method::PUT,
        &format!("{b}/kv/k1?ttl_seconds=abc"),
        Body::Bytes(b"changed".to_vec(), None),
        400,
        "invalid_input",
    )
    .await;
    c.expect(
        "a session with ttl_seconds=0",
        Method::POST,
        &format!("{b}/sessions"),
        Body::Json(json!({ "user_id": user, "ttl_seconds": 0 })),
        400,
        "invalid_ttl",
    )
    .await;

    // ------------------------------------------------------------ conflicts
    c.expect_as(
        "a duplicate bot id",
        Some(ADMIN_KEY),
        Method::POST,
        "/v1/bots",
        Body::Json(json!({ "id": "alpha", "name": "Alpha again" })),
        409,
        "already_exists",
    )
    .await;
    c.expect(
        "a duplicate user id",
        Method::POST,
        &users,
        Body::Json(json!({ "id": user, "name": "Impostor" })),
        409,
        "already_exists",
    )
    .await;

    // ------------------------------------------------------------ routing
    for (key, path) in [
        (None, "/v1/nope"),
        (Some(ADMIN_KEY), "/v1/nope"),
        (Some(admin.as_str()), "/v1/bots/alpha/no-such-collection"),
        (None, "/v2/bots"),
    ] {
        c.expect_as(
            "an unknown route",
            key,
            Method::GET,
            path,
            Body::None,
            404,
            "not_found",
        )
        .await;
    }
    for (method, path) in [
        (Method::DELETE, "/v1/bots"),
        (Method::PATCH, "/health"),
        (Method::PUT, users.as_str()),
        (Method::POST, conv_path.as_str()),
    ] {
        c.expect_as(
            "a wrong method",
            Some(ADMIN_KEY),
            method,
            path,
            Body::None,
            405,
            "method_not_allowed",
        )
        .await;
    }

    // ------------------------------------------------------------ content type
    for (what, path, ct) in [
        ("no Content-Type", users.as_str(), None),
        ("text/plain", users.as_str(), Some("text/plain")),
        ("no Content-Type on messages", messages.as_str(), None),
        (
            "form encoding on a kv batch",
            kv_batch.as_str(),
            Some("application/x-www-form-urlencoded"),
        ),
    ] {
        let body = match path {
            p if p == messages => r#"{"role":"user","content":"sneaky"}"#,
            p if p == kv_batch => r#"{"ops":[{"op":"delete","key":"k1"}]}"#,
            _ => r#"{"name":"sneaky"}"#,
        };
        c.expect(
            what,
            Method::POST,
            path,
            Body::Bytes(body.as_bytes().to_vec(), ct),
            415,
            "unsupported_media_type",
        )
        .await;
    }

    c.finish();

    // ------------------------------------------------------------ nothing changed
    let after = snapshot(&s, &conv, &user).await;
    let changed = snapshot_diff(&before, &after);
    assert!(
        changed.is_empty(),
        "bad requests changed stored data:\n{}",
        changed.join("\n")
    );
    let msgs = after["messages"]["messages"]
        .as_array()
        .expect("messages list");
    let contents: Vec<&str> = msgs.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents, ["hello", "hi there"]);
    let seqs: Vec<i64> = msgs.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(after["kv"]["k1"]["value"], "value one");
    assert_eq!(after["kv"]["k2"]["value"], "value two");
    assert_eq!(after["kv"]["new-key"]["status"], 404);
    let bot_ids: Vec<&str> = after["bots"]["bots"]
        .as_array()
        .expect("bots list")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(bot_ids, ["alpha"]);
    assert_eq!(after["bots"]["bots"][0]["name"], "alpha");
    let user_names: Vec<&str> = after["users"]["users"]
        .as_array()
        .expect("users list")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(user_names, ["Ada"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused_and_not_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Server::start_with(dir.path(), &[("STRATA_MAX_BODY_BYTES", "4096")]).await;
    let admin = s.bot_with_key("alpha", "admin").await;
    let b = "/v1/bots/alpha";
    put_kv(&s, &format!("{b}/kv/k1"), b"small").await;
    // Just under the limit still works.
    put_kv(&s, &format!("{b}/kv/fits"), &[b'x'; 4000]).await;

    let mut c = Checker {
        s: &s,
        key: admin.clone(),
        failures: Vec::new(),
        sent: 0,
    };
    let big = "x".repeat(10 * 1024);
    c.expect(
        "a 10 KB JSON body",
        Method::POST,
        &format!("{b}/users"),
        Body::Json(json!({ "name": "big", "settings": { "blob": big } })),
        413,
        "payload_too_large",
    )
    .await;
    c.expect(
        "a 10 KB kv value",
        Method::PUT,
        &format!("{b}/kv/big"),
        Body::Bytes(big.clone().into_bytes(), None),
        413,
        "payload_too_large",
    )
    .await;
    c.expect(
        "a 10 KB kv value over an existing key",
        Method::PUT,
        &format!("{b}/kv/k1"),
        Body::Bytes(big.clone().into_bytes(), Some("application/octet-stream")),
        413,
        "payload_too_large",
    )
    .await;
    c.expect(
        "a 10 KB kv batch",
        Method::POST,
        &format!("{b}/kv/batch"),
        Body::Json(json!({ "ops": [{ "op": "set", "key": "big", "value_base64": big }] })),
        413,
        "payload_too_large",
    )
    .await;
    c.finish();

    let users = s.get_ok(&format!("{b}/users"), &admin).await;
    assert_eq!(
        users["users"].as_array().map(Vec::len),
        Some(0),
        "a user was stored from an oversized body: {users}"
    );
    let r = send(
        &s,
        Method::GET,
        &format!("{b}/kv/big"),
        Some(&admin),
        Body::None,
    )
    .await;
    assert_eq!(r.status, 404, "an oversized kv value was stored");
    let r = send(
        &s,
        Method::GET,
        &format!("{b}/kv/k1"),
        Some(&admin),
        Body::None,
    )
    .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "small"),
        "an oversized PUT changed k1"
    );
}
