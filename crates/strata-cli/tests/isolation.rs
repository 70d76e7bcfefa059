//! The isolation matrix: every operation of the OpenAPI document, asked by
//! every kind of caller that must be refused, and by the one that must not.
//!
//! `MATRIX` names each operation's access class. An operation that the
//! document has and the matrix lacks fails the test: when you add an
//! endpoint, add its row (and, if it takes a new path parameter or body, teach
//! `resolve` and `body_for` about it).

mod common;

use common::{Server, ADMIN_KEY};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No key needed (`security: []` in the document).
    Public,
    /// Only the global admin key. Bot keys get 403, except that another
    /// bot's key on a `{bot}` path gets 404.
    GlobalAdmin,
    /// A key of the bot with at least the reader role.
    BotRead,
    /// At least the writer role.
    BotWrite,
    /// The bot's admin role (or the global admin key).
    BotAdmin,
}

use Access::*;

/// Every operation of the API and who may call it.
const MATRIX: &[(&str, &str, Access)] = &[
    // service
    ("GET", "/health", Public),
    ("GET", "/ready", Public),
    ("GET", "/metrics", Public),
    ("GET", "/v1/openapi.json", Public),
    // bots and keys
    ("POST", "/v1/bots", GlobalAdmin),
    ("GET", "/v1/bots", GlobalAdmin),
    ("GET", "/v1/bots/{bot}", BotRead),
    ("PATCH", "/v1/bots/{bot}", BotAdmin),
    ("DELETE", "/v1/bots/{bot}", GlobalAdmin),
    ("POST", "/v1/bots/{bot}/keys", BotAdmin),
    ("GET", "/v1/bots/{bot}/keys", BotAdmin),
    ("DELETE", "/v1/bots/{bot}/keys/{id}", BotAdmin),
    ("GET", "/v1/bots/{bot}/audit", BotAdmin),
    // people
    ("POST", "/v1/bots/{bot}/users", BotWrite),
    ("GET", "/v1/bots/{bot}/users", BotRead),
    ("GET", "/v1/bots/{bot}/users/{user}", BotRead),
    ("PATCH", "/v1/bots/{bot}/users/{user}", BotWrite),
    ("DELETE", "/v1/bots/{bot}/users/{user}", BotWrite),
    ("POST", "/v1/bots/{bot}/sessions", BotWrite),
    ("POST", "/v1/bots/{bot}/sessions/resolve", BotRead),
    ("GET", "/v1/bots/{bot}/sessions/{id}", BotRead),
    ("PATCH", "/v1/bots/{bot}/sessions/{id}", BotWrite),
    ("DELETE", "/v1/bots/{bot}/sessions/{id}", BotWrite),
    ("POST", "/v1/bots/{bot}/groups", BotWrite),
    ("GET", "/v1/bots/{bot}/groups", BotRead),
    ("GET", "/v1/bots/{bot}/groups/{id}", BotRead),
    ("PUT", "/v1/bots/{bot}/groups/{id}", BotWrite),
    ("DELETE", "/v1/bots/{bot}/groups/{id}", BotWrite),
    // conversations
    ("POST", "/v1/bots/{bot}/conversations", BotWrite),
    ("GET", "/v1/bots/{bot}/conversations", BotRead),
    ("GET", "/v1/bots/{bot}/conversations/{conv}", BotRead),
    ("PATCH", "/v1/bots/{bot}/conversations/{conv}", BotWrite),
    ("DELETE", "/v1/bots/{bot}/conversations/{conv}", BotWrite),
    (
        "POST",
        "/v1/bots/{bot}/conversations/{conv}/messages",
        BotWrite,
    ),
    (
        "GET",
        "/v1/bots/{bot}/conversations/{conv}/messages",
        BotRead,
    ),
    // presets, tool logs, config
    ("POST", "/v1/bots/{bot}/presets", BotWrite),
    ("GET", "/v1/bots/{bot}/presets", BotRead),
    ("GET", "/v1/bots/{bot}/presets/{id}", BotRead),
    ("PUT", "/v1/bots/{bot}/presets/{id}", BotWrite),
    ("DELETE", "/v1/bots/{bot}/presets/{id}", BotWrite),
    ("POST", "/v1/bots/{bot}/tool-logs", BotWrite),
    ("GET", "/v1/bots/{bot}/tool-logs", BotRead),
    ("GET", "/v1/bots/{bot}/config", BotRead),
    ("PUT", "/v1/bots/{bot}/config", BotAdmin),
    ("GET", "/v1/bots/{bot}/config/{name}", BotRead),
    ("PUT", "/v1/bots/{bot}/config/{name}", BotAdmin),
    ("DELETE", "/v1/bots/{bot}/config/{name}", BotAdmin),
    // key-value
    ("PUT", "/v1/bots/{bot}/kv/{key}", BotWrite),
    ("GET", "/v1/bots/{bot}/kv/{key}", BotRead),
    ("HEAD", "/v1/bots/{bot}/kv/{key}", BotRead),
    ("DELETE", "/v1/bots/{bot}/kv/{key}", BotWrite),
    ("GET", "/v1/bots/{bot}/kv", BotRead),
    ("POST", "/v1/bots/{bot}/kv/batch", BotWrite),
    ("GET", "/v1/bots/{bot}/kv-stats", BotRead),
    // vectors
    ("POST", "/v1/bots/{bot}/collections", BotAdmin),
    ("GET", "/v1/bots/{bot}/collections", BotRead),
    ("GET", "/v1/bots/{bot}/collections/{name}", BotRead),
    ("DELETE", "/v1/bots/{bot}/collections/{name}", BotAdmin),
    ("PUT", "/v1/bots/{bot}/collections/{name}/points", BotWrite),
    (
        "GET",
        "/v1/bots/{bot}/collections/{name}/points/{id}",
        BotRead,
    ),
    (
        "POST",
        "/v1/bots/{bot}/collections/{name}/points/search",
        BotRead,
    ),
    (
        "POST",
        "/v1/bots/{bot}/collections/{name}/points/search/batch",
        BotRead,
    ),
    (
        "POST",
        "/v1/bots/{bot}/collections/{name}/points/scroll",
        BotRead,
    ),
    (
        "POST",
        "/v1/bots/{bot}/collections/{name}/points/count",
        BotRead,
    ),
    (
        "POST",
        "/v1/bots/{bot}/collections/{name}/points/delete",
        BotWrite,
    ),
    ("POST", "/v1/bots/{bot}/collections/{name}/index", BotAdmin),
    ("GET", "/v1/bots/{bot}/collections/{name}/export", BotRead),
    ("POST", "/v1/bots/{bot}/collections/{name}/import", BotWrite),
    // drive
    ("PUT", "/v1/bots/{bot}/files/{key}", BotWrite),
    ("GET", "/v1/bots/{bot}/files/{key}", BotRead),
    ("HEAD", "/v1/bots/{bot}/files/{key}", BotRead),
    ("DELETE", "/v1/bots/{bot}/files/{key}", BotWrite),
    ("GET", "/v1/bots/{bot}/files", BotRead),
    // knowledge base
    ("GET", "/v1/bots/{bot}/kb/documents", BotRead),
    ("POST", "/v1/bots/{bot}/kb/search", BotRead),
    ("POST", "/v1/bots/{bot}/kb/reindex", BotWrite),
    // conversation memory
    ("GET", "/v1/bots/{bot}/memory", BotRead),
    ("DELETE", "/v1/bots/{bot}/memory", BotWrite),
    ("POST", "/v1/bots/{bot}/memory/search", BotRead),
    ("POST", "/v1/bots/{bot}/memory/reindex", BotWrite),
];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// The seeded resources of one bot.
#[derive(Debug, Clone)]
struct Fixture {
    bot: String,
    user: String,
    user_name: String,
    session: String,
    session_token: String,
    conv: String,
    message_content: String,
    preset: String,
    group: String,
    tool_log: String,
    setting: String,
    kv_key: String,
    kv_value: String,
    /// A file in the drive (key with a folder).
    file_key: String,
    /// A vector collection with one point.
    collection: String,
    point: String,
    /// A live reader key whose id stands in for `/keys/{id}`.
    victim_key_id: String,
    victim_key: String,
}

/// A request body.
#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

/// How a request authenticates.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(String),
    /// A raw `Authorization` header value.
    Header(String),
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(s: &Server, method: &Method, path: &str, auth: &Auth, body: &Body) -> Reply {
    let mut r = s.http.request(method.clone(), s.at(path));
    r = match auth {
        Auth::None => r,
        Auth::Bearer(k) => r.bearer_auth(k),
        Auth::Header(h) => r.header(AUTHORIZATION, h.as_str()),
    };
    r = match body {
        Body::None => r,
        Body::Json(v) => r.json(v),
        Body::Raw(b) => r.body(b.clone()),
    };
    let res = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: request failed: {e}"));
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
        .unwrap_or_else(|e| panic!("{method} {path}: reading the body failed: {e}"))
        .to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

/// Checks that `reply` is the problem `status`/`code`; returns a failure text.
fn check_problem(method: &Method, reply: &Reply, status: u16, code: &str) -> Option<String> {
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
    if *method == Method::HEAD {
        // HEAD answers carry no body to inspect.
        return None;
    }
    let Some(v) = reply.json() else {
        return Some(format!("body is not JSON: {:?}", reply.text()));
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

/// Fills a path template with the fixture's ids.
fn resolve(template: &str, fx: &Fixture) -> String {
    let mut out = Vec::new();
    let mut prev = "";
    for seg in template.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let value = match (prev, name) {
                ("bots", "bot") => &fx.bot,
                ("users", _) => &fx.user,
                ("sessions", _) => &fx.session,
                ("conversations", _) => &fx.conv,
                ("presets", _) => &fx.preset,
                ("groups", _) => &fx.group,
                ("tool-logs", _) => &fx.tool_log,
                ("keys", _) => &fx.victim_key_id,
                ("config", _) => &fx.setting,
                ("kv", _) => &fx.kv_key,
                ("files", _) => &fx.file_key,
                ("collections", _) => &fx.collection,
                ("points", _) => &fx.point,
                _ => panic!(
                    "no value for path parameter {seg} (after {prev:?}) in {template}: \
                     seed such a resource in `seed` and add it to `resolve` in \
                     crates/strata-cli/tests/isolation.rs"
                ),
            };
            out.push(value.clone());
        } else {
            out.push(seg.to_owned());
        }
        prev = seg;
    }
    out.join("/")
}

/// A plausible body for an operation, and whether the test knows it well
/// enough to expect success from the right key. Refused requests carry the
/// same body, so that a missing check would really change data.
fn body_for(method: &str, template: &str, fx: &Fixture) -> (Body, bool) {
    let suffix = template.strip_prefix("/v1/bots/{bot}").unwrap_or(template);
    let j = |v: Value| (Body::Json(v), true);
    match (method, template, suffix) {
        ("POST", "/v1/bots", _) => j(json!({ "id": "made-by-matrix", "name": "Made" })),
        ("PATCH", _, "") => j(json!({ "name": "Renamed by matrix" })),
        ("POST", _, "/keys") => j(json!({ "name": "matrix", "role": "admin" })),
        ("POST", _, "/users") => j(json!({ "name": "matrix user" })),
        ("PATCH", _, "/users/{user}") => j(json!({ "name": "patched by matrix" })),
        ("POST", _, "/sessions") => j(json!({ "user_id": fx.user })),
        ("POST", _, "/sessions/resolve") => j(json!({ "token": fx.session_token })),
        ("PATCH", _, "/sessions/{id}") => j(json!({ "state": { "patched": true } })),
        ("POST", _, "/groups") | ("PUT", _, "/groups/{id}") => {
            j(json!({ "name": "matrix group", "settings": { "x": 1 } }))
        }
        ("POST", _, "/conversations") => j(json!({ "user_id": fx.user, "title": "matrix" })),
        ("PATCH", _, "/conversations/{conv}") => j(json!({ "title": "patched by matrix" })),
        ("POST", _, "/conversations/{conv}/messages") => {
            j(json!({ "role": "user", "content": "injected by matrix" }))
        }
        ("POST", _, "/presets") | ("PUT", _, "/presets/{id}") => {
            j(json!({ "name": "matrix preset", "model": "m", "params": { "t": 0.5 } }))
        }
        ("POST", _, "/tool-logs") => j(json!({
            "conversation_id": fx.conv,
            "tool": "matrix",
            "input": { "q": 1 },
            "status": "ok"
        })),
        ("PUT", _, "/config") => j(json!({ fx.setting.clone(): "replaced", "other": 2 })),
        ("PUT", _, "/config/{name}") => j(json!("overwritten by matrix")),
        ("PUT", _, "/kv/{key}") => (Body::Raw(b"overwritten by matrix".to_vec()), true),
        ("PUT", _, "/files/{key}") => (Body::Raw(b"file overwritten by matrix".to_vec()), true),
        ("POST", _, "/kv/batch") => j(json!({
            "ops": [
                { "op": "set", "key": fx.kv_key, "value_base64": "b3ZlcndyaXR0ZW4=" },
                { "op": "set", "key": "made-by-matrix", "value_base64": "eA==" }
            ],
            "atomic": true
        })),
        ("POST", _, "/collections") => j(json!({ "name": "made-by-matrix", "dimension": 3 })),
        ("PUT", _, "/collections/{name}/points") => j(json!({
            "points": [
                { "id": fx.point, "vector": [9.0, 9.0, 1.0], "payload": { "by": "matrix" } },
                { "id": 424242, "vector": [1.0, 2.0, 3.0] }
            ]
        })),
        ("POST", _, "/collections/{name}/points/search") => {
            j(json!({ "vector": [1.0, 0.0, 0.0], "k": 3 }))
        }
        ("POST", _, "/collections/{name}/points/search/batch") => j(json!({
            "searches": [{ "vector": [1.0, 0.0, 0.0], "k": 2 }]
        })),
        ("POST", _, "/collections/{name}/points/scroll") => j(json!({ "limit": 10 })),
        ("POST", _, "/collections/{name}/points/count") => j(json!({})),
        ("POST", _, "/collections/{name}/points/delete") => j(json!({ "ids": [fx.point] })),
        ("POST", _, "/collections/{name}/index") => {
            j(json!({ "field": "by_matrix", "type": "keyword" }))
        }
        ("POST", _, "/collections/{name}/import") => (
            Body::Raw(
                format!(
                    "{}\n{}\n",
                    json!({ "collection": { "name": "any", "dimension": 3, "metric": "cosine" } }),
                    json!({ "id": fx.point, "vector": [7.0, 7.0, 7.0], "payload": { "by": "import" } })
                )
                .into_bytes(),
            ),
            true,
        ),
        ("POST", _, "/kb/search") => j(json!({ "query": "matrix", "mode": "keyword", "k": 3 })),
        ("POST", _, "/kb/reindex") => (Body::None, true),
        ("POST" | "PUT" | "PATCH", _, _) => (Body::Json(json!({})), false),
        _ => (Body::None, true),
    }
}

/// Creates a user, session, conversation with a message, preset, group, tool
/// log, config setting, kv key, vector collection with a point and a spare
/// key in `bot` (as the global admin).
async fn seed(s: &Server, bot: &str) -> Fixture {
    let base = format!("/v1/bots/{bot}");
    let user_name = format!("{bot} user");
    let user = s
        .post_ok(
            &format!("{base}/users"),
            ADMIN_KEY,
            json!({ "name": user_name, "external_id": format!("ext-{bot}") }),
        )
        .await;
    let user = user["id"].as_str().expect("user id").to_owned();
    let session = s
        .post_ok(
            &format!("{base}/sessions"),
            ADMIN_KEY,
            json!({ "user_id": user, "state": { "step": 1 } }),
        )
        .await;
    let conv = s
        .post_ok(
            &format!("{base}/conversations"),
            ADMIN_KEY,
            json!({ "user_id": user, "title": "seeded" }),
        )
        .await;
    let conv = conv["id"].as_str().expect("conversation id").to_owned();
    let message_content = format!("hello from {bot}");
    s.post_ok(
        &format!("{base}/conversations/{conv}/messages"),
        ADMIN_KEY,
        json!({ "role": "user", "content": message_content }),
    )
    .await;
    let preset = s
        .post_ok(
            &format!("{base}/presets"),
            ADMIN_KEY,
            json!({ "name": "seeded preset", "system_prompt": "be brief" }),
        )
        .await;
    let group = s
        .post_ok(
            &format!("{base}/groups"),
            ADMIN_KEY,
            json!({ "name": "seeded group" }),
        )
        .await;
    let tool_log = s
        .post_ok(
            &format!("{base}/tool-logs"),
            ADMIN_KEY,
            json!({ "conversation_id": conv, "tool": "search", "input": { "q": "x" }, "status": "ok" }),
        )
        .await;
    let setting = "greeting".to_owned();
    let r = send(
        s,
        &Method::PUT,
        &format!("{base}/config/{setting}"),
        &Auth::Bearer(ADMIN_KEY.into()),
        &Body::Json(json!("seeded setting")),
    )
    .await;
    assert!(
        (200..300).contains(&r.status),
        "seed config: {} {}",
        r.status,
        r.text()
    );
    let kv_key = "seeded-key".to_owned();
    let kv_value = format!("seeded value of {bot}");
    let r = send(
        s,
        &Method::PUT,
        &format!("{base}/kv/{kv_key}"),
        &Auth::Bearer(ADMIN_KEY.into()),
        &Body::Raw(kv_value.clone().into_bytes()),
    )
    .await;
    assert!(
        (200..300).contains(&r.status),
        "seed kv: {} {}",
        r.status,
        r.text()
    );
    let file_key = "seeded/notes.txt".to_owned();
    let r = send(
        s,
        &Method::PUT,
        &format!("{base}/files/{file_key}"),
        &Auth::Bearer(ADMIN_KEY.into()),
        &Body::Raw(format!("seeded file of {bot}").into_bytes()),
    )
    .await;
    assert!(
        (200..300).contains(&r.status),
        "seed file: {} {}",
        r.status,
        r.text()
    );
    let collection = "seeded-docs".to_owned();
    s.post_ok(
        &format!("{base}/collections"),
        ADMIN_KEY,
        json!({ "name": collection, "dimension": 3, "metric": "cosine" }),
    )
    .await;
    let point = "seeded-point".to_owned();
    let r = send(
        s,
        &Method::PUT,
        &format!("{base}/collections/{collection}/points"),
        &Auth::Bearer(ADMIN_KEY.into()),
        &Body::Json(json!({
            "points": [{ "id": point, "vector": [1.0, 0.5, 0.25], "payload": { "bot": bot } }]
        })),
    )
    .await;
    assert!(
        (200..300).contains(&r.status),
        "seed points: {} {}",
        r.status,
        r.text()
    );
    let victim = s
        .post_ok(
            &format!("{base}/keys"),
            ADMIN_KEY,
            json!({ "name": "victim", "role": "reader" }),
        )
        .await;
    Fixture {
        bot: bot.to_owned(),
        user,
        user_name,
        session: session["id"].as_str().expect("session id").to_owned(),
        session_token: session["token"].as_str().expect("session token").to_owned(),
        conv,
        message_content,
        preset: preset["id"].as_str().expect("preset id").to_owned(),
        group: group["id"].as_str().expect("group id").to_owned(),
        tool_log: tool_log["id"].as_str().expect("tool log id").to_owned(),
        setting,
        kv_key,
        kv_value,
        file_key,
        collection,
        point,
        victim_key_id: victim["id"].as_str().expect("key id").to_owned(),
        victim_key: victim["key"].as_str().expect("key").to_owned(),
    }
}

async fn create_bot(s: &Server, bot: &str) {
    s.post_ok("/v1/bots", ADMIN_KEY, json!({ "id": bot, "name": bot }))
        .await;
}

/// (key id, key) of a new key of `role` in `bot`.
async fn new_key(s: &Server, bot: &str, role: &str) -> (String, String) {
    let v = s
        .post_ok(
            &format!("/v1/bots/{bot}/keys"),
            ADMIN_KEY,
            json!({ "name": format!("{role} key"), "role": role }),
        )
        .await;
    (
        v["id"].as_str().expect("key id").to_owned(),
        v["key"].as_str().expect("key").to_owned(),
    )
}

/// Everything of `fx.bot` a client can read, as the global admin sees it.
async fn snapshot(s: &Server, fx: &Fixture) -> Value {
    let b = format!("/v1/bots/{}", fx.bot);
    let kv = send(
        s,
        &Method::GET,
        &format!("{b}/kv/{}", fx.kv_key),
        &Auth::Bearer(ADMIN_KEY.into()),
        &Body::None,
    )
    .await;
    let c = format!("{b}/collections/{}", fx.collection);
    json!({
        "collections": s.get_ok(&format!("{b}/collections"), ADMIN_KEY).await,
        "collection": s.get_ok(&c, ADMIN_KEY).await,
        "points": s
            .post_ok(
                &format!("{c}/points/scroll"),
                ADMIN_KEY,
                json!({ "limit": 1000, "with_vector": true }),
            )
            .await,
        "bots": s.get_ok("/v1/bots", ADMIN_KEY).await,
        "bot": s.get_ok(&b, ADMIN_KEY).await,
        "keys": s.get_ok(&format!("{b}/keys"), ADMIN_KEY).await,
        "audit": s.get_ok(&format!("{b}/audit"), ADMIN_KEY).await,
        "users": s.get_ok(&format!("{b}/users"), ADMIN_KEY).await,
        "user": s.get_ok(&format!("{b}/users/{}", fx.user), ADMIN_KEY).await,
        "session": s.get_ok(&format!("{b}/sessions/{}", fx.session), ADMIN_KEY).await,
        "conversations": s.get_ok(&format!("{b}/conversations"), ADMIN_KEY).await,
        "conversation": s.get_ok(&format!("{b}/conversations/{}", fx.conv), ADMIN_KEY).await,
        "messages": s.get_ok(&format!("{b}/conversations/{}/messages", fx.conv), ADMIN_KEY).await,
        "presets": s.get_ok(&format!("{b}/presets"), ADMIN_KEY).await,
        "groups": s.get_ok(&format!("{b}/groups"), ADMIN_KEY).await,
        "tool_logs": s.get_ok(&format!("{b}/tool-logs"), ADMIN_KEY).await,
        "config": s.get_ok(&format!("{b}/config"), ADMIN_KEY).await,
        "kv_keys": s.get_ok(&format!("{b}/kv"), ADMIN_KEY).await,
        "kv_stats": s.get_ok(&format!("{b}/kv-stats"), ADMIN_KEY).await,
        "files": s.get_ok(&format!("{b}/files"), ADMIN_KEY).await,
        "file_versions": s.get_ok(&format!("{b}/files/{}?versions", fx.file_key), ADMIN_KEY).await,
        "kv_value": { "status": kv.status, "value": kv.text() },
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

/// Whether the document marks an operation as needing no key.
fn documented_public(op: &Value) -> bool {
    match op.get("security").and_then(Value::as_array) {
        // `[]` and `[{}]` both say "no credentials needed".
        Some(reqs) => reqs
            .iter()
            .all(|r| r.as_object().is_some_and(|o| o.is_empty())),
        None => false,
    }
}

fn role_rank(role: &str) -> u8 {
    match role {
        "reader" => 1,
        "writer" => 2,
        _ => 3,
    }
}

fn needed_rank(access: Access) -> u8 {
    match access {
        Public => 0,
        BotRead => 1,
        BotWrite => 2,
        BotAdmin => 3,
        // No bot key is enough.
        GlobalAdmin => 4,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_refuses_the_wrong_callers_and_serves_the_right_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Hundreds of deliberately failed authentications from one address:
    // their throttle (tested in hardening.rs) must not answer 429 here.
    let s = Server::start_with(dir.path(), &[("STRATA_AUTH_FAILURE_LIMIT", "1000000")]).await;

    // ---------------------------------------------------------------- 1. setup
    create_bot(&s, "alpha").await;
    create_bot(&s, "beta").await;
    let (_, alpha_admin) = new_key(&s, "alpha", "admin").await;
    let (_, alpha_writer) = new_key(&s, "alpha", "writer").await;
    let (_, alpha_reader) = new_key(&s, "alpha", "reader").await;
    let (revoked_id, revoked) = new_key(&s, "alpha", "admin").await;
    let r = send(
        &s,
        &Method::DELETE,
        &format!("/v1/bots/alpha/keys/{revoked_id}"),
        &Auth::Bearer(ADMIN_KEY.into()),
        &Body::None,
    )
    .await;
    assert_eq!(r.status, 200, "revoking a key: {}", r.text());
    let (_, beta_admin) = new_key(&s, "beta", "admin").await;
    let fx = seed(&s, "alpha").await;
    let beta_fx = seed(&s, "beta").await;

    // ---------------------------------------------------------------- 2. the document
    let doc = s.get_ok("/v1/openapi.json", ADMIN_KEY).await;
    let paths = doc["paths"]
        .as_object()
        .expect("paths in the OpenAPI document");
    let mut documented = BTreeSet::new();
    let mut failures = Vec::new();
    for (path, item) in paths {
        for m in HTTP_METHODS {
            if let Some(op) = item.get(*m) {
                let method = m.to_uppercase();
                if let Some((_, _, access)) = MATRIX
                    .iter()
                    .find(|(mm, pp, _)| *mm == method.as_str() && *pp == path.as_str())
                {
                    let public = documented_public(op);
                    if public != (*access == Public) {
                        failures.push(format!(
                            "{method} {path}: the matrix says {access:?} but the document's \
                             `security` says {}",
                            if public { "public" } else { "bearer auth" }
                        ));
                    }
                }
                documented.insert((method, path.clone()));
            }
        }
    }

    // ---------------------------------------------------------------- 3. the matrix covers it
    let listed: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        listed.len(),
        MATRIX.len(),
        "MATRIX lists an operation twice"
    );
    let missing: Vec<_> = documented.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "these operations are in /v1/openapi.json but not in the isolation matrix: {missing:?}. \
         Add a row with the operation's access class to MATRIX in \
         crates/strata-cli/tests/isolation.rs"
    );
    let stale: Vec<_> = listed.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "the isolation matrix lists operations that /v1/openapi.json lacks: {stale:?}. \
         Fix or remove their rows in MATRIX in crates/strata-cli/tests/isolation.rs"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Public operations answer without a key.
    for (m, p, access) in MATRIX {
        if *access != Public {
            continue;
        }
        let method = Method::from_bytes(m.as_bytes()).expect("method");
        let r = send(&s, &method, p, &Auth::None, &Body::None).await;
        assert!(
            (r.status != 401 && r.status != 403 && r.status < 500) || *p == "/ready",
            "public {m} {p} -> {}: {}",
            r.status,
            r.text()
        );
    }

    // ---------------------------------------------------------------- 4a. refusals
    let before = snapshot(&s, &fx).await;
    let beta_before = snapshot(&s, &beta_fx).await;

    let garbage = [
        Auth::Bearer(format!(
            "sk_0123456789abcdef0123456789abcdef_{}",
            "not-a-real-secret-at-all"
        )),
        // The victim key's id with a wrong secret.
        Auth::Bearer(format!("sk_{}_wrong-secret", fx.victim_key_id)),
        Auth::Bearer("sk_short_x".into()),
        Auth::Bearer("just some random text".into()),
        Auth::Bearer(format!("{ADMIN_KEY}x")),
        Auth::Header(format!("Basic {ADMIN_KEY}")),
        Auth::Header("Bearer".into()),
        Auth::Header(format!("Bearer{ADMIN_KEY}")),
    ];
    let alpha_keys = [
        ("reader", alpha_reader.clone()),
        ("writer", alpha_writer.clone()),
        ("admin", alpha_admin.clone()),
    ];

    let mut refused = 0usize;
    for (m, template, access) in MATRIX {
        if *access == Public {
            continue;
        }
        let method = Method::from_bytes(m.as_bytes()).expect("method");
        let path = resolve(template, &fx);
        let (body, _) = body_for(m, template, &fx);
        let mut cases: Vec<(String, Auth, u16, &str)> = vec![
            ("no Authorization".into(), Auth::None, 401, "unauthorized"),
            (
                "the revoked key".into(),
                Auth::Bearer(revoked.clone()),
                401,
                "unauthorized",
            ),
        ];
        for g in &garbage {
            cases.push((format!("garbage {g:?}"), g.clone(), 401, "unauthorized"));
        }
        if template.contains("{bot}") {
            cases.push((
                "beta's admin key".into(),
                Auth::Bearer(beta_admin.clone()),
                404,
                "not_found",
            ));
        } else {
            cases.push((
                "beta's admin key".into(),
                Auth::Bearer(beta_admin.clone()),
                403,
                "forbidden",
            ));
        }
        for (role, key) in &alpha_keys {
            if role_rank(role) < needed_rank(*access) {
                cases.push((
                    format!("alpha's {role} key"),
                    Auth::Bearer(key.clone()),
                    403,
                    "forbidden",
                ));
            }
        }
        for (who, auth, status, code) in cases {
            let r = send(&s, &method, &path, &auth, &body).await;
            refused += 1;
            if let Some(why) = check_problem(&method, &r, status, code) {
                failures.push(format!("{m} {template} as {who}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {refused} refusals went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // ---------------------------------------------------------------- 5. nothing changed
    let after = snapshot(&s, &fx).await;
    let changed = snapshot_diff(&before, &after);
    assert!(
        changed.is_empty(),
        "refused requests changed alpha's data:\n{}",
        changed.join("\n")
    );
    let changed = snapshot_diff(&beta_before, &snapshot(&s, &beta_fx).await);
    assert!(
        changed.is_empty(),
        "requests with beta's key on alpha's paths changed beta's data:\n{}",
        changed.join("\n")
    );
    let messages = &after["messages"]["messages"];
    assert_eq!(
        messages.as_array().map(Vec::len),
        Some(1),
        "alpha's messages: {messages}"
    );
    assert_eq!(messages[0]["content"], fx.message_content.as_str());
    assert_eq!(after["user"]["name"], fx.user_name.as_str());
    assert_eq!(after["kv_value"]["status"], 200);
    assert_eq!(after["kv_value"]["value"], fx.kv_value.as_str());
    assert_eq!(after["config"][&fx.setting], "seeded setting");
    let bots: Vec<&str> = after["bots"]["bots"]
        .as_array()
        .expect("bots list")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(bots, ["alpha", "beta"], "bots after the refusals");
    // The key used for `/keys/{id}` was not revoked by any refused request.
    let r = send(
        &s,
        &Method::GET,
        "/v1/bots/alpha",
        &Auth::Bearer(fx.victim_key.clone()),
        &Body::None,
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "the victim key stopped working: {}",
        r.text()
    );

    // ---------------------------------------------------------------- 4b. the right key
    // Reads first, then writes, then deletes (each on a throwaway bot), so
    // that no positive check breaks another.
    let phase = |m: &str| match m {
        "GET" | "HEAD" => 0,
        "DELETE" => 2,
        _ => 1,
    };
    let mut order: Vec<_> = MATRIX.iter().filter(|(_, _, a)| *a != Public).collect();
    order.sort_by_key(|(m, _, _)| phase(m));
    let mut throwaway = 0usize;
    for (m, template, access) in order {
        let method = Method::from_bytes(m.as_bytes()).expect("method");
        let (target, key) = if *m == "DELETE" {
            throwaway += 1;
            let bot = format!("throwaway-{throwaway}");
            create_bot(&s, &bot).await;
            let t = seed(&s, &bot).await;
            let key = match access {
                GlobalAdmin => ADMIN_KEY.to_owned(),
                BotRead => new_key(&s, &bot, "reader").await.1,
                BotWrite => new_key(&s, &bot, "writer").await.1,
                _ => new_key(&s, &bot, "admin").await.1,
            };
            (t, key)
        } else {
            let key = match access {
                GlobalAdmin => ADMIN_KEY.to_owned(),
                BotRead => alpha_reader.clone(),
                BotWrite => alpha_writer.clone(),
                _ => alpha_admin.clone(),
            };
            (fx.clone(), key)
        };
        let path = resolve(template, &target);
        let (body, known) = body_for(m, template, &target);
        let r = send(&s, &method, &path, &Auth::Bearer(key), &body).await;
        let refused_it = r.status == 401 || r.status == 403;
        if refused_it || (known && !(200..300).contains(&r.status)) {
            failures.push(format!(
                "{m} {template} with the needed role ({access:?}) -> {}: {}",
                r.status,
                r.text()
            ));
        }
        if *m == "DELETE" && *template == "/v1/bots/{bot}" {
            let gone = send(
                &s,
                &Method::GET,
                &path,
                &Auth::Bearer(ADMIN_KEY.into()),
                &Body::None,
            )
            .await;
            if gone.status != 404 {
                failures.push(format!(
                    "the bot {} answers {} after its DELETE",
                    target.bot, gone.status
                ));
            }
        }
        // Reads of the bot's data also work with the global admin key.
        if phase(m) == 0 && *access != GlobalAdmin {
            let r = send(&s, &method, &path, &Auth::Bearer(ADMIN_KEY.into()), &body).await;
            if !(200..300).contains(&r.status) {
                failures.push(format!(
                    "{m} {template} with the global admin key -> {}: {}",
                    r.status,
                    r.text()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "callers with the needed role were refused:\n{}",
        failures.join("\n")
    );

    // Writes with the right key did land (the checks above are not vacuous).
    let messages = s
        .get_ok(
            &format!("/v1/bots/alpha/conversations/{}/messages", fx.conv),
            &alpha_reader,
        )
        .await;
    assert_eq!(
        messages["messages"].as_array().map(Vec::len),
        Some(2),
        "alpha's writer appended one message: {messages}"
    );
    let bots = s.get_ok("/v1/bots", ADMIN_KEY).await;
    let ids: Vec<&str> = bots["bots"]
        .as_array()
        .expect("bots list")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"made-by-matrix"),
        "the global admin's POST /v1/bots: {ids:?}"
    );
}

/// The isolation matrix of the Qdrant-compatible listener
/// (`STRATA_QDRANT_LISTEN`): every data operation asked with no key, a bad
/// key, the global admin key, another bot's admin key and each role of the
/// owning bot. The same access classes as `/v1`: a caller without the role
/// is refused (Qdrant's error form), another bot's key finds nothing, and
/// alpha's data is the same afterwards as before, unless the right caller
/// changed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qdrant_listener_refuses_the_wrong_callers_and_serves_the_right_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let s = Server::start_with(dir.path(), &[("STRATA_QDRANT_LISTEN", &listen)]).await;
    let base = format!("http://{listen}");
    create_bot(&s, "alpha").await;
    create_bot(&s, "beta").await;
    let (_, a_admin) = new_key(&s, "alpha", "admin").await;
    let (_, a_writer) = new_key(&s, "alpha", "writer").await;
    let (_, a_reader) = new_key(&s, "alpha", "reader").await;
    let (_, b_admin) = new_key(&s, "beta", "admin").await;

    let call = |method: Method, path: String, key: Option<String>, body: Option<Value>| {
        let s = &s;
        let url = format!("{base}{path}");
        async move {
            let mut r = s.http.request(method.clone(), &url);
            if let Some(k) = key {
                r = r.header("api-key", k);
            }
            if let Some(b) = body {
                r = r.json(&b);
            }
            let res = r
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let status = res.status().as_u16();
            let text = res.text().await.expect("body");
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, v)
        }
    };

    // alpha's collection with three points, made by alpha's admin.
    let (st, v) = call(
        Method::PUT,
        "/collections/c".into(),
        Some(a_admin.clone()),
        Some(json!({ "vectors": { "size": 4, "distance": "Cosine" } })),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let points = json!({ "points": [
        { "id": 1, "vector": [1.0, 0.0, 0.0, 0.0], "payload": { "k": "a" } },
        { "id": 2, "vector": [0.0, 1.0, 0.0, 0.0], "payload": { "k": "b" } },
        { "id": 3, "vector": [0.0, 0.0, 1.0, 0.0], "payload": { "k": "c" } }
    ]});
    let (st, v) = call(
        Method::PUT,
        "/collections/c/points?wait=true".into(),
        Some(a_admin.clone()),
        Some(points),
    )
    .await;
    assert_eq!(st, 200, "{v}");

    let q = json!({ "query": [1.0, 0.0, 0.0, 0.0], "limit": 3 });
    let ops: Vec<(Method, &str, Option<Value>, Access)> = vec![
        (Method::GET, "/collections", None, BotRead),
        (Method::GET, "/collections/c", None, BotRead),
        (Method::GET, "/collections/c/exists", None, BotRead),
        (Method::GET, "/collections/c/points/1", None, BotRead),
        (
            Method::POST,
            "/collections/c/points",
            Some(json!({ "ids": [1, 2] })),
            BotRead,
        ),
        (
            Method::POST,
            "/collections/c/points/query",
            Some(q.clone()),
            BotRead,
        ),
        (
            Method::POST,
            "/collections/c/points/search",
            Some(json!({ "vector": [1.0, 0.0, 0.0, 0.0], "limit": 3 })),
            BotRead,
        ),
        (
            Method::POST,
            "/collections/c/points/scroll",
            Some(json!({ "limit": 10 })),
            BotRead,
        ),
        (
            Method::POST,
            "/collections/c/points/count",
            Some(json!({ "exact": true })),
            BotRead,
        ),
        (
            Method::PUT,
            "/collections/c/points?wait=true",
            Some(json!({ "points": [{ "id": 9, "vector": [0.0, 0.0, 0.0, 1.0] }] })),
            BotWrite,
        ),
        (
            Method::POST,
            "/collections/c/points/payload?wait=true",
            Some(json!({ "payload": { "seen": true }, "points": [1] })),
            BotWrite,
        ),
        (
            Method::PUT,
            "/collections/c/points/payload?wait=true",
            Some(json!({ "payload": { "k": "a2" }, "points": [1] })),
            BotWrite,
        ),
        (
            Method::POST,
            "/collections/c/points/delete?wait=true",
            Some(json!({ "points": [9] })),
            BotWrite,
        ),
        (
            Method::PUT,
            "/collections/c/index?wait=true",
            Some(json!({ "field_name": "k", "field_schema": "keyword" })),
            BotAdmin,
        ),
        (
            Method::PUT,
            "/collections/made_by_matrix",
            Some(json!({ "vectors": { "size": 4, "distance": "Dot" } })),
            BotAdmin,
        ),
        (
            Method::DELETE,
            "/collections/made_by_matrix",
            None,
            BotAdmin,
        ),
    ];

    let count = |key: String| {
        let call = &call;
        async move {
            let (st, v) = call(
                Method::POST,
                "/collections/c/points/count".into(),
                Some(key),
                Some(json!({ "exact": true })),
            )
            .await;
            assert_eq!(st, 200, "{v}");
            v["result"]["count"].as_u64().expect("count")
        }
    };
    let before = count(a_admin.clone()).await;
    assert_eq!(before, 3);

    let mut wrong = Vec::new();
    for (method, path, body, access) in &ops {
        // Callers that must be refused, and with which status.
        let refused: Vec<(&str, Option<String>, u16)> = vec![
            ("no key", None, 401),
            (
                "a bad key",
                Some("sk_nobody_0000000000000000".to_owned()),
                401,
            ),
            ("the global admin key", Some(ADMIN_KEY.to_owned()), 403),
        ];
        for (who, key, want) in refused {
            let (st, v) = call(method.clone(), (*path).to_owned(), key, body.clone()).await;
            let qdrant_form = v["status"]["error"].is_string();
            if st != want || !qdrant_form {
                wrong.push(format!("{method} {path} by {who}: {st} {v}"));
            }
        }
        // Another bot's admin key: alpha's collection does not exist for it.
        let (st, v) = call(
            method.clone(),
            (*path).to_owned(),
            Some(b_admin.clone()),
            body.clone(),
        )
        .await;
        let sees_alpha = match *path {
            "/collections" => v["result"]["collections"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["name"] == "c")),
            "/collections/c/exists" => v["result"]["exists"] == json!(true),
            // Creating and dropping its own collection of that name is beta's right.
            "/collections/made_by_matrix" => false,
            _ => st != 404,
        };
        if sees_alpha {
            wrong.push(format!(
                "{method} {path} by beta's admin key reached alpha's data: {st} {v}"
            ));
        }
        // alpha's own keys: refused below the needed role, served at it.
        for (role, key) in [
            ("reader", &a_reader),
            ("writer", &a_writer),
            ("admin", &a_admin),
        ] {
            let (st, v) = call(
                method.clone(),
                (*path).to_owned(),
                Some(key.clone()),
                body.clone(),
            )
            .await;
            let allowed = role_rank(role) >= needed_rank(*access);
            if allowed && st != 200 {
                wrong.push(format!("{method} {path} by alpha's {role}: {st} {v}"));
            }
            if !allowed && (st != 403 || !v["status"]["error"].is_string()) {
                wrong.push(format!(
                    "{method} {path} by alpha's {role} (must be 403): {st} {v}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the Qdrant listener's matrix:\n{}",
        wrong.join("\n")
    );

    // alpha's points are all there; the writer's payload changes landed;
    // point 9 was upserted and deleted again.
    assert_eq!(count(a_reader.clone()).await, 3);
    let (st, v) = call(
        Method::GET,
        "/collections/c/points/1".into(),
        Some(a_reader.clone()),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["payload"], json!({ "k": "a2" }), "{v}");
    // beta's collection list holds only what beta made (nothing is left).
    let (st, v) = call(
        Method::GET,
        "/collections".into(),
        Some(b_admin.clone()),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"]["collections"], json!([]), "{v}");
}
