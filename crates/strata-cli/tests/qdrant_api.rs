//! The Qdrant-compatible REST API end to end against the real binary, on
//! its own listener (`STRATA_QDRANT_LISTEN`) and under `/qdrant` of the main
//! one: collections, both upsert forms, retrieve, query and legacy search
//! against an exact search of the same data, scroll through every page,
//! count, payload set and overwrite, payload indexes, deletes by ids and by
//! filter, keys and roles, another bot's key, errors in Qdrant's form,
//! unsupported features, 32 MiB bodies, and durability across a SIGKILL.

mod common;

use common::{free_port, Server, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A deterministic pseudo-random vector.
fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 20_000) as f32 / 10_000.0) - 1.0
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

struct Qdrant {
    server: Server,
    base: String,
}

async fn start(dir: &std::path::Path) -> Qdrant {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_with(dir, &[("STRATA_QDRANT_LISTEN", &listen)]).await;
    Qdrant {
        server,
        base: format!("http://{listen}"),
    }
}

impl Qdrant {
    /// A request to the Qdrant listener with `key` in the `api-key` header.
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        call_at(
            &self.server,
            &format!("{}{path}", self.base),
            method,
            key,
            body,
        )
        .await
    }

    async fn ok(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method.clone(), path, Some(key), body).await;
        assert_eq!(status, 200, "{method} {path}: {v}");
        assert_eq!(v["status"], "ok", "{method} {path}: {v}");
        assert!(v["time"].is_number(), "{v}");
        v["result"].clone()
    }
}

async fn call_at(
    s: &Server,
    url: &str,
    method: Method,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = s.http.request(method.clone(), url);
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
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

fn error_of(v: &Value) -> &str {
    v["status"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not a Qdrant error: {v}"))
}

const DIM: usize = 8;
const N: u64 = 300;

fn city(i: u64) -> &'static str {
    ["London", "Berlin", "Moscow", "Paris"][(i % 4) as usize]
}

/// The exact top `k` ids under cosine among `ids` passing `keep`.
fn exact_top(q: &[f32], k: usize, keep: impl Fn(u64) -> bool) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = (0..N)
        .filter(|i| keep(*i))
        .map(|i| (cosine(q, &vector(i, DIM)), i))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all.into_iter().take(k).map(|(_, i)| i).collect()
}

fn ids_of(points: &Value) -> Vec<u64> {
    points
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["id"].as_u64().expect("integer id"))
        .collect()
}

#[tokio::test]
async fn qdrant_api_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = start(dir.path()).await;
    let s = &q.server;
    let admin = s.bot_with_key("qa", "admin").await;
    let writer = s.key("qa", "writer").await;
    let reader = s.key("qa", "reader").await;
    let other = s.bot_with_key("qb", "admin").await;

    // Service endpoints need no key; GET / has no envelope.
    let (st, root) = q.call(Method::GET, "/", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(root["title"], "qdrant - vector search engine");
    assert_eq!(root["version"], "1.19.0");
    for (path, text) in [
        ("/healthz", "healthz check passed"),
        ("/livez", "healthz check passed"),
        ("/readyz", "all shards are ready"),
    ] {
        let (st, v) = q.call(Method::GET, path, None, None).await;
        assert_eq!((st, v.as_str()), (200, Some(text)), "{path}");
    }

    // Keys: none or a bad one is 401, the global admin key 403, all in
    // Qdrant's error form; Authorization: Bearer works like api-key.
    let (st, v) = q.call(Method::GET, "/collections", None, None).await;
    assert_eq!(st, 401, "{v}");
    error_of(&v);
    let (st, v) = q
        .call(Method::GET, "/collections", Some("sk_nope"), None)
        .await;
    assert_eq!(st, 401, "{v}");
    let (st, v) = q
        .call(Method::GET, "/collections", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(st, 403, "{v}");
    assert!(error_of(&v).contains("bot key"), "{v}");
    let bearer = s
        .http
        .get(format!("{}/collections", q.base))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("bearer");
    assert_eq!(bearer.status().as_u16(), 200);

    // Collections: create, duplicate, roles.
    let spec = json!({"vectors": {"size": DIM, "distance": "Cosine"}});
    let (st, v) = q
        .call(
            Method::PUT,
            "/collections/docs",
            Some(&writer),
            Some(spec.clone()),
        )
        .await;
    assert_eq!(st, 403, "a writer cannot create a collection: {v}");
    assert_eq!(
        q.ok(Method::PUT, "/collections/docs", &admin, Some(spec.clone()))
            .await,
        json!(true)
    );
    let (st, v) = q
        .call(Method::PUT, "/collections/docs", Some(&admin), Some(spec))
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(
        error_of(&v),
        "Wrong input: Collection `docs` already exists!"
    );
    assert_eq!(
        q.ok(Method::GET, "/collections/docs/exists", &reader, None)
            .await,
        json!({"exists": true})
    );
    assert_eq!(
        q.ok(Method::GET, "/collections/nope/exists", &reader, None)
            .await,
        json!({"exists": false})
    );
    let list = q.ok(Method::GET, "/collections", &reader, None).await;
    assert_eq!(list, json!({"collections": [{"name": "docs"}]}));

    // Upsert: a reader cannot; points form (wait=true) and batch form.
    let point = |i: u64| json!({"id": i, "vector": vector(i, DIM), "payload": {"city": city(i), "n": i, "tags": if i.is_multiple_of(2) { json!([]) } else { json!(["a", "b"]) }}});
    let (st, v) = q
        .call(
            Method::PUT,
            "/collections/docs/points?wait=true",
            Some(&reader),
            Some(json!({"points": [point(0)]})),
        )
        .await;
    assert_eq!(st, 403, "{v}");
    let first: Vec<Value> = (0..200).map(point).collect();
    let r = q
        .ok(
            Method::PUT,
            "/collections/docs/points?wait=true",
            &writer,
            Some(json!({"points": first})),
        )
        .await;
    assert_eq!(r["status"], "completed");
    assert!(r["operation_id"].is_u64());
    let ids: Vec<u64> = (200..N).collect();
    let r = q
        .ok(
            Method::PUT,
            "/collections/docs/points",
            &writer,
            Some(json!({"batch": {
                "ids": ids,
                "vectors": ids.iter().map(|i| vector(*i, DIM)).collect::<Vec<_>>(),
                "payloads": ids.iter().map(|i| json!({"city": city(*i), "n": i, "tags": if i.is_multiple_of(2) { json!([]) } else { json!(["a", "b"]) }})).collect::<Vec<_>>(),
            }})),
        )
        .await;
    assert_eq!(r["status"], "acknowledged", "wait=false is acknowledged");
    // A UUID sent as 32 hex digits comes back hyphenated. Its vector is
    // opposite to the query below, so it never ranks among the integers.
    let far: Vec<f32> = vector(4242, DIM).iter().map(|x| -x).collect();
    q.ok(
        Method::PUT,
        "/collections/docs/points?wait=true",
        &writer,
        Some(json!({"points": [{"id": "5C56C79369F34FBF87E6C4BF54C28C26", "vector": far}]})),
    )
    .await;
    let (st, v) = q
        .call(
            Method::PUT,
            "/collections/docs/points?wait=true",
            Some(&writer),
            Some(json!({"points": [{"id": "doc-1", "vector": vector(1, DIM)}]})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(error_of(&v).contains("is not a valid point ID"), "{v}");
    let (st, v) = q
        .call(
            Method::PUT,
            "/collections/docs/points?wait=true",
            Some(&writer),
            Some(json!({"points": [{"id": 1, "vector": [0.1, 0.2, 0.3]}]})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        error_of(&v),
        format!("Wrong input: Vector dimension error: expected dim: {DIM}, got 3")
    );

    // Retrieve: payload by default, missing ids left out, UUIDs hyphenated,
    // a point without payload gets {}.
    let got = q
        .ok(
            Method::POST,
            "/collections/docs/points",
            &reader,
            Some(json!({"ids": [3, 12345, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], "with_vector": false})),
        )
        .await;
    assert_eq!(
        got,
        json!([
            {"id": 3, "payload": {"city": "Paris", "n": 3, "tags": ["a", "b"]}},
            {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "payload": {}}
        ])
    );
    let one = q
        .ok(Method::GET, "/collections/docs/points/7", &reader, None)
        .await;
    assert_eq!(one["payload"]["n"], 7);
    assert_eq!(one["vector"].as_array().map(Vec::len), Some(DIM));
    let (st, v) = q
        .call(
            Method::GET,
            "/collections/docs/points/999999",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = q
        .call(
            Method::GET,
            "/collections/docs/points/abc",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(
        (st, error_of(&v)),
        (400, "Wrong input: Can not recognize \"abc\" as point id")
    );

    // Query with a filter and a threshold against the exact answer.
    let qv = vector(4242, DIM);
    let london = json!({"must": [{"key": "city", "match": {"value": "London"}}]});
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/query",
            &reader,
            Some(json!({"query": {"nearest": qv}, "using": "", "filter": london, "limit": 10, "with_payload": true, "with_vector": false})),
        )
        .await;
    let points = &r["points"];
    assert_eq!(ids_of(points), exact_top(&qv, 10, |i| city(i) == "London"));
    for p in points.as_array().expect("points") {
        assert_eq!(p["payload"]["city"], "London");
        assert!(p["version"].is_u64() && p["score"].is_f64(), "{p}");
        assert!(p.get("vector").is_none(), "{p}");
    }
    let top = exact_top(&qv, 20, |_| true);
    let threshold = cosine(&qv, &vector(top[4], DIM)) - 1e-4;
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/query",
            &reader,
            Some(json!({"query": qv, "limit": 20, "score_threshold": threshold})),
        )
        .await;
    assert_eq!(
        ids_of(&r["points"]),
        top[..5].to_vec(),
        "score_threshold keeps score >= it"
    );
    assert!(
        r["points"][0].get("payload").is_none(),
        "query: no payload unless asked"
    );
    // offset skips results; a point id as the query leaves that point out.
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/query",
            &reader,
            Some(json!({"query": qv, "limit": 5, "offset": 5})),
        )
        .await;
    assert_eq!(ids_of(&r["points"]), top[5..10].to_vec());
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/query",
            &reader,
            Some(json!({"query": {"nearest": 17}, "limit": 3})),
        )
        .await;
    let near17 = exact_top(&vector(17, DIM), 4, |i| i != 17);
    assert_eq!(ids_of(&r["points"]), near17[..3].to_vec());
    // The legacy search answers a bare list; the batches answer in order.
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/search",
            &reader,
            Some(json!({"vector": {"name": "", "vector": qv}, "limit": 10, "filter": {"must_not": [{"key": "city", "match": {"any": ["London", "Paris"]}}]}, "with_payload": ["city"]})),
        )
        .await;
    assert_eq!(
        ids_of(&r),
        exact_top(&qv, 10, |i| !matches!(city(i), "London" | "Paris"))
    );
    assert_eq!(r[0]["payload"].as_object().map(|m| m.len()), Some(1));
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/query/batch",
            &reader,
            Some(json!({"searches": [{"query": qv, "limit": 2}, {"query": vector(17, DIM), "limit": 1}]})),
        )
        .await;
    assert_eq!(ids_of(&r[0]["points"]), top[..2].to_vec());
    assert_eq!(ids_of(&r[1]["points"]), vec![17]);
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/search/batch",
            &reader,
            Some(json!({"searches": [{"vector": qv, "limit": 2}, {"vector": vector(17, DIM), "limit": 1}]})),
        )
        .await;
    assert_eq!(ids_of(&r[0]), top[..2].to_vec());
    assert_eq!(ids_of(&r[1]), vec![17]);

    // Scroll through every page, integer ids first, then the UUID.
    let mut seen: Vec<Value> = Vec::new();
    let mut offset = Value::Null;
    let mut pages = 0;
    loop {
        let r = q
            .ok(
                Method::POST,
                "/collections/docs/points/scroll",
                &reader,
                Some(json!({"limit": 7, "offset": offset, "with_payload": false})),
            )
            .await;
        pages += 1;
        for p in r["points"].as_array().expect("points") {
            assert!(p.get("payload").is_none(), "{p}");
            seen.push(p["id"].clone());
        }
        offset = r["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
        assert!(pages < 100, "scroll does not end");
    }
    let mut want: Vec<Value> = (0..N).map(Value::from).collect();
    want.push(json!("5c56c793-69f3-4fbf-87e6-c4bf54c28c26"));
    assert_eq!(seen, want);
    assert_eq!(pages, (N as usize + 1).div_ceil(7));
    // A filtered scroll with `nested`-free array rules.
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/scroll",
            &reader,
            Some(json!({"limit": 1000, "filter": {"must": [{"is_empty": {"key": "tags"}}, {"key": "n", "range": {"gte": 10.0, "lt": 20.0}}]}})),
        )
        .await;
    assert_eq!(ids_of(&r["points"]), vec![10, 12, 14, 16, 18]);

    // Count, with and without filters (should: [] matches nothing).
    let count = |f: Value| {
        let q = &q;
        let reader = reader.clone();
        async move {
            q.ok(
                Method::POST,
                "/collections/docs/points/count",
                &reader,
                Some(json!({"filter": f, "exact": true})),
            )
            .await["count"]
                .as_u64()
                .expect("count")
        }
    };
    assert_eq!(count(Value::Null).await, N + 1);
    assert_eq!(count(london.clone()).await, N / 4);
    assert_eq!(count(json!({"should": []})).await, 0);
    assert_eq!(
        count(json!({"must": [{"has_id": [1, 2, 3, 77777]}]})).await,
        3
    );
    assert_eq!(
        count(json!({"must": [{"key": "tags", "values_count": {"gt": 1}}]})).await,
        N / 2
    );
    assert_eq!(
        count(json!({"must": [{"key": "city", "match": {"except": ["London"]}}]})).await,
        N - N / 4
    );
    assert_eq!(count(json!({"min_should": {"conditions": [{"key": "city", "match": {"value": "Berlin"}}, {"key": "tags", "match": {"value": "a"}}], "min_count": 2}})).await, N / 4);
    assert_eq!(count(json!({"min_should": {"conditions": [{"key": "city", "match": {"value": "London"}}, {"key": "tags", "match": {"value": "a"}}], "min_count": 2}})).await, 0);

    // Payload set (merge) and overwrite, by ids and by filter.
    q.ok(
        Method::POST,
        "/collections/docs/points/payload?wait=true",
        &writer,
        Some(json!({"payload": {"extra": 1}, "points": [5, 6]})),
    )
    .await;
    q.ok(
        Method::PUT,
        "/collections/docs/points/payload?wait=true",
        &writer,
        Some(json!({"payload": {"only": true}, "points": [6]})),
    )
    .await;
    q.ok(Method::POST, "/collections/docs/points/payload?wait=true", &writer, Some(json!({"payload": {"flag": "x"}, "filter": {"must": [{"key": "n", "range": {"gte": 290}}]}}))).await;
    let got = q
        .ok(
            Method::POST,
            "/collections/docs/points",
            &reader,
            Some(json!({"ids": [5, 6, 295]})),
        )
        .await;
    assert_eq!(
        got[0]["payload"],
        json!({"city": "Berlin", "n": 5, "tags": ["a", "b"], "extra": 1})
    );
    assert_eq!(got[1]["payload"], json!({"only": true}));
    assert_eq!(got[2]["payload"]["flag"], "x");
    assert_eq!(
        count(json!({"must": [{"key": "flag", "match": {"value": "x"}}]})).await,
        10
    );
    // The vector survived the payload update.
    let r = q
        .ok(
            Method::POST,
            "/collections/docs/points/query",
            &reader,
            Some(json!({"query": vector(6, DIM), "limit": 1})),
        )
        .await;
    assert_eq!(ids_of(&r["points"]), vec![6]);

    // Payload index: declared, shown in payload_schema, and filters agree.
    let r = q
        .ok(
            Method::PUT,
            "/collections/docs/index?wait=true",
            &admin,
            Some(json!({"field_name": "city", "field_schema": "keyword"})),
        )
        .await;
    assert_eq!(r["status"], "completed");
    let info = q.ok(Method::GET, "/collections/docs", &reader, None).await;
    assert_eq!(info["payload_schema"]["city"]["data_type"], "keyword");
    assert_eq!(info["points_count"], N + 1);
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"size": DIM, "distance": "Cosine"})
    );
    assert_eq!(count(london.clone()).await, N / 4);

    // One engine: the points are Strata points of bot qa.
    let v = s
        .get_ok("/v1/bots/qa/collections/docs/points/3", &admin)
        .await;
    assert_eq!(v["payload"]["city"], "Paris");
    // The /qdrant prefix of the main listener is the same API.
    let (st, v) = call_at(
        s,
        &s.at("/qdrant/collections/docs/points/count"),
        Method::POST,
        Some(&reader),
        Some(json!({})),
    )
    .await;
    assert_eq!((st, v["result"]["count"].as_u64()), (200, Some(N + 1)));

    // Deletes by ids and by filter.
    q.ok(
        Method::POST,
        "/collections/docs/points/delete?wait=true",
        &writer,
        Some(json!({"points": [0, 1, "5c56c79369f34fbf87e6c4bf54c28c26"]})),
    )
    .await;
    assert_eq!(count(Value::Null).await, N - 2);
    q.ok(
        Method::POST,
        "/collections/docs/points/delete?wait=true",
        &writer,
        Some(json!({"filter": {"must": [{"key": "city", "match": {"value": "Moscow"}}]}})),
    )
    .await;
    // Point 6 (Moscow) lost its city to the overwrite above.
    assert_eq!(count(Value::Null).await, N - 2 - (N / 4 - 1));
    assert_eq!(
        count(json!({"must": [{"key": "city", "match": {"value": "Moscow"}}]})).await,
        0
    );

    // Another bot's key sees none of it.
    assert_eq!(
        q.ok(Method::GET, "/collections", &other, None).await,
        json!({"collections": []})
    );
    let (st, v) = q
        .call(Method::GET, "/collections/docs", Some(&other), None)
        .await;
    assert_eq!(
        (st, error_of(&v)),
        (404, "Not found: Collection `docs` doesn't exist!")
    );
    let (st, _) = q
        .call(
            Method::POST,
            "/collections/docs/points/count",
            Some(&other),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 404);

    // Unsupported features answer a clear 400.
    for (method, path, body) in [
        (
            Method::PUT,
            "/collections/sparse",
            json!({"vectors": {}, "sparse_vectors": {"text": {}}}),
        ),
        (
            Method::PUT,
            "/collections/two",
            json!({"vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}}}),
        ),
        (
            Method::POST,
            "/collections/docs/points/recommend",
            json!({"positive": [3]}),
        ),
        (
            Method::POST,
            "/collections/docs/points/query",
            json!({"query": {"recommend": {"positive": [3]}}}),
        ),
        (
            Method::POST,
            "/collections/docs/points/query",
            json!({"query": {"nearest": qv, "mmr": {"diversity": 0.5}}}),
        ),
        (
            Method::POST,
            "/collections/docs/points/query",
            json!({"prefetch": [{"query": qv}], "query": {"fusion": "rrf"}}),
        ),
        (Method::POST, "/collections/docs/snapshots", json!({})),
    ] {
        let (st, v) = q
            .call(method.clone(), path, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(st, 400, "{path}: {v}");
        assert!(error_of(&v).contains("not supported"), "{path}: {v}");
        // Without a key even an unsupported operation is 401 first.
        let (st, v) = q.call(method, path, None, Some(body)).await;
        assert_eq!(st, 401, "{path}: {v}");
    }

    // A collection whose vector has a name works under that name.
    q.ok(
        Method::PUT,
        "/collections/named",
        &admin,
        Some(json!({"vectors": {"dense": {"size": 3, "distance": "Dot"}}})),
    )
    .await;
    let info = q.ok(Method::GET, "/collections/named", &reader, None).await;
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"dense": {"size": 3, "distance": "Dot"}})
    );
    q.ok(Method::PUT, "/collections/named/points?wait=true", &writer, Some(json!({"points": [{"id": 1, "vector": {"dense": [1.0, 0.0, 0.0]}}, {"id": 2, "vector": {"dense": [0.0, 1.0, 0.0]}}]}))).await;
    let r = q.ok(Method::POST, "/collections/named/points/query", &reader, Some(json!({"query": [0.0, 2.0, 0.0], "using": "dense", "limit": 1, "with_vector": true}))).await;
    assert_eq!(r["points"][0]["id"], 2);
    assert_eq!(r["points"][0]["vector"], json!({"dense": [0.0, 1.0, 0.0]}));
    let (st, v) = q
        .call(
            Method::POST,
            "/collections/named/points/query",
            Some(&reader),
            Some(json!({"query": [0.0, 2.0, 0.0], "using": "other"})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(error_of(&v).contains("other"), "{v}");

    // Replacing the bot's settings through the main API keeps the vector
    // name; dropping the collection there forgets it.
    let res = s
        .req(Method::PUT, "/v1/bots/qa/config", Some(&admin))
        .json(&json!({"greeting": "hello"}))
        .send()
        .await
        .expect("put config");
    assert_eq!(res.status(), 200);
    let r = q
        .ok(
            Method::POST,
            "/collections/named/points/query",
            &reader,
            Some(json!({"query": [0.0, 2.0, 0.0], "using": "dense", "limit": 1})),
        )
        .await;
    assert_eq!(r["points"][0]["id"], 2, "{r}");
    let config = s.get_ok("/v1/bots/qa/config", &admin).await;
    assert_eq!(config["greeting"], "hello", "{config}");
    let res = s
        .req(
            Method::DELETE,
            "/v1/bots/qa/collections/named",
            Some(&admin),
        )
        .send()
        .await
        .expect("drop");
    assert!(res.status().is_success(), "{}", res.status());
    let config = s.get_ok("/v1/bots/qa/config", &admin).await;
    assert!(
        config
            .as_object()
            .is_some_and(|c| c.keys().all(|k| !k.starts_with("qdrant."))),
        "{config}"
    );
    q.ok(
        Method::PUT,
        "/collections/named",
        &admin,
        Some(json!({"vectors": {"dense": {"size": 3, "distance": "Dot"}}})),
    )
    .await;

    // Bounds: a query without `query` pages at most 10,000 points, a
    // batch holds at most 100 searches, a retrieve at most 10,000 ids.
    for (path, body) in [
        (
            "/collections/docs/points/query",
            json!({"limit": 1_000_000_000_000u64, "offset": 5}),
        ),
        (
            "/collections/docs/points/query",
            json!({"limit": 10, "offset": u64::MAX}),
        ),
        (
            "/collections/docs/points/query/batch",
            json!({"searches": vec![json!({"query": vec![0.1; DIM], "limit": 1}); 101]}),
        ),
        (
            "/collections/docs/points/search/batch",
            json!({"searches": vec![json!({"vector": vec![0.1; DIM], "limit": 1}); 101]}),
        ),
        (
            "/collections/docs/points",
            json!({"ids": (0..10_001).collect::<Vec<u64>>()}),
        ),
    ] {
        let (st, v) = q.call(Method::POST, path, Some(&reader), Some(body)).await;
        assert_eq!(st, 400, "{path}: {v}");
        assert!(error_of(&v).contains("at most"), "{path}: {v}");
    }

    // Errors: malformed JSON, unknown collection, an empty body.
    let res = s
        .http
        .post(format!("{}/collections/docs/points/query", q.base))
        .header("api-key", &reader)
        .body("{\"query\": [0.1, 0.2,, \"limit\": 2")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 400);
    let v: Value = res.json().await.expect("json");
    assert_eq!(
        error_of(&v),
        "Format error in JSON body: expected value at line 1 column 21"
    );
    let (st, v) = q
        .call(
            Method::POST,
            "/collections/nope/points/query",
            Some(&reader),
            Some(json!({"query": qv})),
        )
        .await;
    assert_eq!(
        (st, error_of(&v)),
        (404, "Not found: Collection `nope` doesn't exist!")
    );
    let (st, _) = q
        .call(Method::GET, "/nonexistent", Some(&reader), None)
        .await;
    assert_eq!(st, 404);

    // Bodies up to 32 MiB on this listener (the main one allows 10 MiB).
    let pad = "x".repeat(12 * 1024 * 1024);
    let (st, v) = q
        .call(
            Method::PUT,
            "/collections/docs/points?wait=true",
            Some(&writer),
            Some(json!({"points": [], "pad": pad})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let pad = "x".repeat(33 * 1024 * 1024);
    // Its own connection: the server may close it after refusing the body.
    let once = reqwest::Client::builder().build().expect("client");
    let res = once
        .put(format!("{}/collections/docs/points?wait=true", q.base))
        .header("api-key", &writer)
        .json(&json!({"points": [], "pad": pad}))
        .send()
        .await
        .expect("send");
    let st = res.status().as_u16();
    let v: Value = res.json().await.expect("json");
    assert_eq!(st, 413, "{v}");
    error_of(&v);

    // Deleting: a writer cannot; then true, then false.
    let (st, _) = q
        .call(Method::DELETE, "/collections/named", Some(&writer), None)
        .await;
    assert_eq!(st, 403);
    assert_eq!(
        q.ok(Method::DELETE, "/collections/named", &admin, None)
            .await,
        json!(true)
    );
    assert_eq!(
        q.ok(Method::DELETE, "/collections/named", &admin, None)
            .await,
        json!(false)
    );
    assert_eq!(
        q.ok(Method::GET, "/collections/named/exists", &admin, None)
            .await,
        json!({"exists": false})
    );
}

/// An acknowledged `wait=true` upsert survives a SIGKILL.
#[tokio::test]
async fn qdrant_upserts_survive_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut q = start(dir.path()).await;
    let admin = q.server.bot_with_key("qk", "admin").await;
    q.ok(
        Method::PUT,
        "/collections/k",
        &admin,
        Some(json!({"vectors": {"size": 4, "distance": "Euclid"}})),
    )
    .await;
    let mut written = BTreeSet::new();
    for i in 0..20u64 {
        q.ok(
            Method::PUT,
            "/collections/k/points?wait=true",
            &admin,
            Some(json!({"points": [{"id": i, "vector": vector(i, 4), "payload": {"i": i}}]})),
        )
        .await;
        written.insert(i);
    }
    q.server.kill();
    let q2 = start(dir.path()).await;
    let r = q2
        .ok(
            Method::POST,
            "/collections/k/points/scroll",
            &admin,
            Some(json!({"limit": 100})),
        )
        .await;
    let back: BTreeSet<u64> = ids_of(&r["points"]).into_iter().collect();
    assert_eq!(back, written);
    let info = q2.ok(Method::GET, "/collections/k", &admin, None).await;
    assert_eq!(info["config"]["params"]["vectors"]["distance"], "Euclid");
    // Euclid scores are distances: the point itself is at 0.
    let r = q2
        .ok(
            Method::POST,
            "/collections/k/points/query",
            &admin,
            Some(json!({"query": vector(3, 4), "limit": 1})),
        )
        .await;
    assert_eq!(r["points"][0]["id"], 3);
    assert!(r["points"][0]["score"].as_f64().expect("score").abs() < 1e-4);
}

/// `STRATA_QDRANT_KEYLESS_BOT`: on the Qdrant listener a request without a
/// key acts as that bot's admin while the bot exists (its existence is
/// remembered, so a deletion must end it at once); under `/qdrant` of the
/// main listener a key is always required.
#[tokio::test]
async fn the_keyless_bot_acts_until_it_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let s = Server::start_with(
        dir.path(),
        &[
            ("STRATA_QDRANT_LISTEN", &listen),
            ("STRATA_QDRANT_KEYLESS_BOT", "kl"),
        ],
    )
    .await;
    let base = format!("http://{listen}");
    // The bot does not exist yet: refused.
    let (st, v) = call_at(&s, &format!("{base}/collections"), Method::GET, None, None).await;
    assert_eq!(st, 404, "{v}");
    let admin = s.bot_with_key("kl", "admin").await;
    let (st, v) = call_at(
        &s,
        &format!("{base}/collections/c"),
        Method::PUT,
        None,
        Some(json!({"vectors": {"size": 2, "distance": "Dot"}})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    for _ in 0..3 {
        let (st, v) = call_at(&s, &format!("{base}/collections"), Method::GET, None, None).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["result"]["collections"][0]["name"], "c", "{v}");
    }
    // The collection is the bot's own, seen through its key on /v1.
    let c = s.get_ok("/v1/bots/kl/collections/c", &admin).await;
    assert_eq!(c["dimension"], 2, "{c}");
    // Never keyless under /qdrant of the main listener.
    let (st, v) = call_at(&s, &s.at("/qdrant/collections"), Method::GET, None, None).await;
    assert_eq!(st, 401, "{v}");
    // Deleting the bot ends it at once.
    let res = s
        .req(Method::DELETE, "/v1/bots/kl", Some(ADMIN_KEY))
        .send()
        .await
        .expect("delete the bot");
    assert!(res.status().is_success(), "{}", res.status());
    let (st, v) = call_at(&s, &format!("{base}/collections"), Method::GET, None, None).await;
    assert!(st == 404 || st == 409, "{st} {v}");
}
