//! The vectors API end to end against the real binary: collections, upsert,
//! search with and without filters, scroll, count, delete, TTL, export and
//! import through the CLI; bad input that must be refused without changing
//! anything; quotas and the `vectors` rate-limit group.

mod common;

use common::{Server, ADMIN_KEY};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Sends `body` (JSON, or raw bytes when it is a string starting with
/// `RAW:`) and returns the status and the JSON body (`Null` when empty).
async fn call(
    s: &Server,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = s.req(method.clone(), path, Some(key));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// Sends raw bytes.
async fn call_raw(
    s: &Server,
    method: Method,
    path: &str,
    key: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let res = s
        .req(method.clone(), path, Some(key))
        .header(CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn ok(s: &Server, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
    let (status, v) = call(s, method.clone(), path, key, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path} -> {status}: {v}"
    );
    v
}

/// A deterministic 4-d vector for point `i`.
fn vec_of(i: u64) -> Vec<f32> {
    let x = i as f32 * 0.37;
    vec![x.cos(), x.sin(), (i % 5) as f32 * 0.25 + 0.1, 1.0]
}

fn category(i: u64) -> &'static str {
    ["a", "b", "c"][(i % 3) as usize]
}

/// Runs the `strata` CLI against `s` with `key`.
fn cli(s: &Server, key: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.args(args)
        .env_remove("STRATA_ADMIN_KEY")
        .env_remove("STRATA_CONFIG")
        .env("STRATA_URL", &s.url)
        .env("STRATA_API_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("run strata");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("strata output")
}

fn out_text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ids_of(results: &Value) -> Vec<Value> {
    results
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].clone())
        .collect()
}

fn filter_eq(key: &str, value: Value) -> Value {
    json!({ "must": [{ "key": key, "match": { "value": value } }] })
}

/// Every point of a collection through the scroll cursor, `limit` at a time.
async fn scroll_all(
    s: &Server,
    c: &str,
    key: &str,
    limit: u64,
    filter: Option<Value>,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut body = json!({ "limit": limit });
        if let Some(cur) = &cursor {
            body["cursor"] = json!(cur);
        }
        if let Some(f) = &filter {
            body["filter"] = f.clone();
        }
        let page = ok(
            s,
            Method::POST,
            &format!("{c}/points/scroll"),
            key,
            Some(body),
        )
        .await;
        let points = page["points"].as_array().expect("points").clone();
        assert!(points.len() as u64 <= limit, "page over the limit: {page}");
        all.extend(points);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
    panic!("the scroll did not end");
}

async fn count(s: &Server, c: &str, key: &str, filter: Option<Value>) -> u64 {
    let body = match filter {
        Some(f) => json!({ "filter": f }),
        None => json!({}),
    };
    ok(
        s,
        Method::POST,
        &format!("{c}/points/count"),
        key,
        Some(body),
    )
    .await["count"]
        .as_u64()
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_points_search_scroll_ttl_export_import() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = Server::start(dir.path()).await;
    let admin = s.bot_with_key("vec", "admin").await;
    let writer = s.key("vec", "writer").await;
    let reader = s.key("vec", "reader").await;
    let b = "/v1/bots/vec";
    let c = format!("{b}/collections/docs");

    // The vectors layer is part of readiness.
    let ready = s.get_ok("/ready", ADMIN_KEY).await;
    assert_eq!(ready["layers"]["vectors"]["status"], "ok", "{ready}");

    // Create through the CLI and over HTTP.
    let o = cli(
        &s,
        &admin,
        &["collection", "create", "vec", "docs", "--dimension", "4"],
        None,
    );
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("created collection docs"),
        "{}",
        out_text(&o)
    );
    let notes = ok(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        Some(json!({
            "name": "notes", "dimension": 8, "metric": "euclidean",
            "hnsw": { "m": 8, "ef_construction": 50, "ef_search": 32 },
            "quantization": "f16"
        })),
    )
    .await;
    assert_eq!(notes["dimension"], 8, "{notes}");
    assert_eq!(notes["metric"], "euclidean", "{notes}");
    assert_eq!(notes["quantization"], "f16", "{notes}");
    assert_eq!(notes["hnsw"]["m"], 8, "{notes}");
    assert_eq!(notes["points"], 0, "{notes}");
    let (status, _) = call(
        &s,
        Method::DELETE,
        &format!("{b}/collections/notes"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, v) = call(
        &s,
        Method::GET,
        &format!("{b}/collections/notes"),
        &reader,
        None,
    )
    .await;
    assert_eq!(status, 404, "{v}");

    let info = ok(
        &s,
        Method::POST,
        &format!("{c}/index"),
        &admin,
        Some(json!({ "field": "category", "type": "keyword" })),
    )
    .await;
    assert!(
        info["indexes"].as_array().is_some_and(|i| i
            .iter()
            .any(|x| x["field"] == "category" && x["type"] == "keyword")),
        "{info}"
    );

    // 50 numeric ids and 10 string ids, with payloads.
    let numeric: Vec<Value> = (1..=50u64)
        .map(|i| {
            json!({ "id": i, "vector": vec_of(i),
                    "payload": { "category": category(i), "n": i, "meta": { "even": i % 2 == 0 } } })
        })
        .collect();
    let v = ok(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &writer,
        Some(json!({ "points": numeric })),
    )
    .await;
    assert_eq!(v["upserted"], 50, "{v}");
    let strings: Vec<Value> = (0..10u64)
        .map(|i| {
            json!({ "id": format!("s-{i:02}"), "vector": vec_of(100 + i),
                    "payload": { "category": "d", "n": 100 + i } })
        })
        .collect();
    let v = ok(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &writer,
        Some(json!({ "points": strings })),
    )
    .await;
    assert_eq!(v["upserted"], 10, "{v}");
    // One point that lives an hour: its expiry travels through export/import.
    ok(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &writer,
        Some(
            json!({ "points": [{ "id": "long-lived", "vector": vec_of(77), "ttl_seconds": 3600,
                                   "payload": { "category": "e", "n": 77 } }] }),
        ),
    )
    .await;
    let info = ok(&s, Method::GET, &c, &reader, None).await;
    assert_eq!(info["points"], 61, "{info}");

    // Get: numeric and string ids, with and without the vector.
    let p7 = ok(&s, Method::GET, &format!("{c}/points/7"), &reader, None).await;
    assert_eq!(p7["id"], 7, "{p7}");
    assert_eq!(p7["payload"]["category"], category(7), "{p7}");
    assert_eq!(p7["vector"].as_array().map(Vec::len), Some(4), "{p7}");
    let p7 = ok(
        &s,
        Method::GET,
        &format!("{c}/points/7?with_vector=false"),
        &reader,
        None,
    )
    .await;
    assert!(p7.get("vector").is_none(), "{p7}");
    let ps = ok(&s, Method::GET, &format!("{c}/points/s-03"), &reader, None).await;
    assert_eq!(ps["id"], "s-03", "{ps}");
    let (status, v) = call(&s, Method::GET, &format!("{c}/points/12345"), &reader, None).await;
    assert_eq!(status, 404, "{v}");

    // Search: the point itself comes first.
    let r = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(json!({ "vector": vec_of(7), "k": 5 })),
    )
    .await;
    let results = &r["results"];
    assert_eq!(results.as_array().map(Vec::len), Some(5), "{r}");
    assert_eq!(results[0]["id"], 7, "{r}");
    assert!(results[0]["score"].as_f64().expect("score") > 0.999, "{r}");
    assert!(results[0]["payload"].is_object(), "payload by default: {r}");
    assert!(
        results[0].get("vector").is_none(),
        "no vector by default: {r}"
    );
    let scores: Vec<f64> = results
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["score"].as_f64().expect("score"))
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    let r = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(json!({ "vector": vec_of(7), "k": 2, "with_payload": false, "with_vector": true })),
    )
    .await;
    assert!(r["results"][0].get("payload").is_none(), "{r}");
    assert_eq!(
        r["results"][0]["vector"].as_array().map(Vec::len),
        Some(4),
        "{r}"
    );
    // score_threshold keeps only results at least that good.
    let r = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(json!({ "vector": vec_of(7), "k": 10, "score_threshold": 0.9999 })),
    )
    .await;
    assert!(
        r["results"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x["score"].as_f64() >= Some(0.9999))),
        "{r}"
    );

    // Filtered searches return only matching points, as many as asked.
    let r = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(json!({ "vector": vec_of(7), "k": 5, "filter": filter_eq("category", json!("b")) })),
    )
    .await;
    let results = r["results"].as_array().expect("results");
    assert_eq!(results.len(), 5, "{r}");
    assert!(
        results.iter().all(|x| x["payload"]["category"] == "b"),
        "{r}"
    );
    let range = json!({ "must": [{ "key": "n", "range": { "gte": 10, "lt": 20 } }],
                        "must_not": [{ "key": "meta.even", "match": { "value": true } }] });
    let r = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(json!({ "vector": vec_of(1), "k": 50, "filter": range })),
    )
    .await;
    let mut got: Vec<u64> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["id"].as_u64().expect("numeric id"))
        .collect();
    got.sort_unstable();
    assert_eq!(got, vec![11, 13, 15, 17, 19], "{r}");

    // Batch search: one result list per search, in order.
    let r = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search/batch"),
        &reader,
        Some(json!({ "searches": [
            { "vector": vec_of(3), "k": 1 },
            { "vector": vec_of(103), "k": 2, "filter": filter_eq("category", json!("d")) }
        ] })),
    )
    .await;
    assert_eq!(r["results"].as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(r["results"][0][0]["id"], 3, "{r}");
    assert_eq!(r["results"][1][0]["id"], "s-03", "{r}");

    // Scroll: every point once, numbers first in order, then strings.
    let all = scroll_all(&s, &c, &reader, 7, None).await;
    let ids: Vec<Value> = all.iter().map(|p| p["id"].clone()).collect();
    let mut expected: Vec<Value> = (1..=50u64).map(|i| json!(i)).collect();
    let mut strs: Vec<String> = (0..10).map(|i| format!("s-{i:02}")).collect();
    strs.push("long-lived".into());
    strs.sort();
    expected.extend(strs.into_iter().map(Value::from));
    assert_eq!(ids, expected, "scroll order");
    assert!(
        all.iter().all(|p| p.get("vector").is_none()),
        "no vectors by default"
    );
    let bs = scroll_all(&s, &c, &reader, 4, Some(filter_eq("category", json!("b")))).await;
    let n_b = (1..=50u64).filter(|i| category(*i) == "b").count();
    assert_eq!(bs.len(), n_b);
    assert!(bs.iter().all(|p| p["payload"]["category"] == "b"));

    // Count.
    assert_eq!(count(&s, &c, &reader, None).await, 61);
    assert_eq!(
        count(&s, &c, &reader, Some(filter_eq("category", json!("b")))).await,
        n_b as u64
    );

    // Delete by ids (missing ids are not counted) and by filter.
    let v = ok(
        &s,
        Method::POST,
        &format!("{c}/points/delete"),
        &writer,
        Some(json!({ "ids": [1, 2, "s-00", 999] })),
    )
    .await;
    assert_eq!(v["deleted"], 3, "{v}");
    let (status, _) = call(&s, Method::GET, &format!("{c}/points/1"), &reader, None).await;
    assert_eq!(status, 404);
    assert_eq!(count(&s, &c, &reader, None).await, 58);
    let n_c = (3..=50u64).filter(|i| category(*i) == "c").count() as u64;
    let v = ok(
        &s,
        Method::POST,
        &format!("{c}/points/delete"),
        &writer,
        Some(json!({ "filter": filter_eq("category", json!("c")) })),
    )
    .await;
    assert_eq!(v["deleted"], n_c, "{v}");
    let live = 58 - n_c;
    assert_eq!(count(&s, &c, &reader, None).await, live);
    assert_eq!(
        count(&s, &c, &reader, Some(filter_eq("category", json!("c")))).await,
        0
    );

    // TTL: a point with ttl_seconds 1 is gone from every read after it expires.
    ok(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &writer,
        Some(json!({ "points": [{ "id": "short", "vector": vec_of(5000), "ttl_seconds": 1 }] })),
    )
    .await;
    let short = ok(&s, Method::GET, &format!("{c}/points/short"), &reader, None).await;
    assert!(short["expires_at"].is_string(), "{short}");
    assert_eq!(count(&s, &c, &reader, None).await, live + 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, v) = call(&s, Method::GET, &format!("{c}/points/short"), &reader, None).await;
    assert_eq!(status, 404, "expired point: {v}");
    assert_eq!(count(&s, &c, &reader, None).await, live);
    let r = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(json!({ "vector": vec_of(5000), "k": 100 })),
    )
    .await;
    assert!(!ids_of(&r["results"]).contains(&json!("short")), "{r}");
    assert!(scroll_all(&s, &c, &reader, 1000, None)
        .await
        .iter()
        .all(|p| p["id"] != "short"));

    // Export over HTTP: NDJSON, header first.
    let res = s
        .req(Method::GET, &format!("{c}/export"), Some(&reader))
        .send()
        .await
        .expect("export");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson")));
    let text = res.text().await.expect("export body");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len() as u64,
        live + 1,
        "header + one line per live point"
    );
    let header: Value = serde_json::from_str(lines[0]).expect("header is JSON");
    assert_eq!(header["collection"]["name"], "docs", "{header}");
    assert_eq!(header["collection"]["dimension"], 4, "{header}");
    assert_eq!(header["collection"]["metric"], "cosine", "{header}");
    assert_eq!(
        header["collection"]["indexes"][0]["field"], "category",
        "{header}"
    );
    let first: Value = serde_json::from_str(lines[1]).expect("point line");
    assert!(
        first["vector"].is_array() && first["id"].is_number(),
        "{first}"
    );
    let long: Value = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .find(|v| v["id"] == "long-lived")
        .expect("the long-lived point is exported");
    assert!(long["expires_at"].is_string(), "{long}");

    // Export through the CLI to a file, import it under another name.
    let file = dir.path().join("docs.ndjson");
    let file_s = file.to_string_lossy().into_owned();
    let o = cli(
        &s,
        &reader,
        &["collection", "export", "vec", "docs", "--out", &file_s],
        None,
    );
    assert!(o.status.success(), "{}", out_text(&o));
    let exported = std::fs::read_to_string(&file).expect("export file");
    assert_eq!(exported.lines().count() as u64, live + 1);
    let o = cli(
        &s,
        &admin,
        &[
            "collection",
            "import",
            "vec",
            &file_s,
            "--name",
            "docs-copy",
        ],
        None,
    );
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!(
            "imported {live} points into new collection docs-copy"
        )),
        "{}",
        out_text(&o)
    );
    let copy = format!("{b}/collections/docs-copy");
    let info = ok(&s, Method::GET, &copy, &reader, None).await;
    assert_eq!(info["points"].as_u64(), Some(live), "{info}");
    assert_eq!(info["dimension"], 4, "{info}");
    assert_eq!(info["indexes"][0]["field"], "category", "{info}");
    let long = ok(
        &s,
        Method::GET,
        &format!("{copy}/points/long-lived"),
        &reader,
        None,
    )
    .await;
    assert!(
        long["expires_at"].is_string(),
        "the expiry survives: {long}"
    );
    for (q, filter) in [
        (vec_of(4), None),
        (vec_of(20), Some(filter_eq("category", json!("a")))),
        (vec_of(105), Some(filter_eq("category", json!("d")))),
        (vec![0.3, -0.2, 0.5, 1.0], None),
    ] {
        let mut body = json!({ "vector": q, "k": 8 });
        if let Some(f) = filter {
            body["filter"] = f;
        }
        let a = ok(
            &s,
            Method::POST,
            &format!("{c}/points/search"),
            &reader,
            Some(body.clone()),
        )
        .await;
        let b2 = ok(
            &s,
            Method::POST,
            &format!("{copy}/points/search"),
            &reader,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            ids_of(&a["results"]),
            ids_of(&b2["results"]),
            "{body}: {a} vs {b2}"
        );
        for (x, y) in a["results"]
            .as_array()
            .expect("results")
            .iter()
            .zip(b2["results"].as_array().expect("results"))
        {
            let (x, y) = (
                x["score"].as_f64().unwrap_or(0.0),
                y["score"].as_f64().unwrap_or(1.0),
            );
            assert!((x - y).abs() < 1e-4, "{body}: scores {x} vs {y}");
            assert_eq!(a["results"][0]["payload"], b2["results"][0]["payload"]);
        }
    }
    // Import from stdin with the header's name: into the existing collection.
    let o = cli(
        &s,
        &writer,
        &["collection", "import", "vec", "-"],
        Some(exported.as_bytes()),
    );
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("into existing collection docs"),
        "{}",
        out_text(&o)
    );
    assert_eq!(count(&s, &c, &reader, None).await, live);
    // The CLI lists both.
    let o = cli(&s, &reader, &["collection", "list", "vec"], None);
    assert!(o.status.success(), "{}", out_text(&o));
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        listed.contains("docs-copy") && listed.contains("docs "),
        "{listed}"
    );
    let o = cli(&s, &reader, &["collection", "list", "vec", "--json"], None);
    let v: Value = serde_json::from_slice(&o.stdout).expect("--json output");
    let names: BTreeSet<&str> = v["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["docs", "docs-copy"]));

    // A malformed import names the line; an import into a collection of
    // another dimension is a conflict.
    let body = format!(
        "{}\n{}\nnot json\n",
        json!({ "collection": { "name": "x", "dimension": 4 } }),
        json!({ "id": 900, "vector": [1.0, 0.0, 0.0, 0.0] })
    );
    let (status, v) = call_raw(
        &s,
        Method::POST,
        &format!("{b}/collections/fresh/import"),
        &admin,
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["code"], "invalid_import", "{v}");
    assert!(
        v["detail"].as_str().is_some_and(|d| d.contains("line 3")),
        "{v}"
    );
    let body = format!(
        "{}\n",
        json!({ "collection": { "name": "x", "dimension": 5 } })
    );
    let (status, v) = call_raw(
        &s,
        Method::POST,
        &format!("{c}/import"),
        &admin,
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["code"], "collection_mismatch", "{v}");
    // A writer may import into an existing collection but not create one.
    let body = format!(
        "{}\n",
        json!({ "collection": { "name": "x", "dimension": 4 } })
    );
    let (status, v) = call_raw(
        &s,
        Method::POST,
        &format!("{b}/collections/by-writer/import"),
        &writer,
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 403, "{v}");

    // A SIGKILL loses nothing: the rows are the truth and the index comes back.
    let probe = json!({ "vector": vec_of(4), "k": 8, "filter": filter_eq("category", json!("a")) });
    let before = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(probe.clone()),
    )
    .await;
    s.kill();
    let s = Server::start(dir.path()).await;
    assert_eq!(count(&s, &c, &reader, None).await, live);
    let after = ok(
        &s,
        Method::POST,
        &format!("{c}/points/search"),
        &reader,
        Some(probe),
    )
    .await;
    assert_eq!(ids_of(&before["results"]), ids_of(&after["results"]));
    let info = ok(&s, Method::GET, &copy, &reader, None).await;
    assert_eq!(info["points"].as_u64(), Some(live), "{info}");

    // Deleting the bot drops its collections; a new bot of that id starts empty.
    let (status, v) = call(&s, Method::DELETE, b, ADMIN_KEY, None).await;
    assert!((200..300).contains(&status), "{v}");
    let admin = s.bot_with_key("vec", "admin").await;
    let v = ok(&s, Method::GET, &format!("{b}/collections"), &admin, None).await;
    assert_eq!(v["collections"], json!([]), "{v}");
}

/// A bad request: what it is, method, path, body, expected status and code.
type Case = (
    &'static str,
    Method,
    String,
    Option<Value>,
    u16,
    &'static str,
);

/// What the bad requests must leave alone.
async fn snapshot(s: &Server, c: &str) -> Value {
    json!({
        "info": s.get_ok(c, ADMIN_KEY).await,
        "points": s.post_ok(&format!("{c}/points/scroll"), ADMIN_KEY, json!({ "limit": 1000, "with_vector": true })).await,
        "p1": s.get_ok(&format!("{c}/points/1"), ADMIN_KEY).await,
        "pa": s.get_ok(&format!("{c}/points/a"), ADMIN_KEY).await,
        "collections": s.get_ok("/v1/bots/alpha/collections", ADMIN_KEY).await,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_vector_input_is_a_problem_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Server::start(dir.path()).await;
    let admin = s.bot_with_key("alpha", "admin").await;
    let b = "/v1/bots/alpha";
    let c = format!("{b}/collections/docs");
    ok(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        Some(json!({ "name": "docs", "dimension": 3 })),
    )
    .await;
    ok(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &admin,
        Some(json!({ "points": [
            { "id": 1, "vector": [1.0, 0.0, 0.0], "payload": { "k": "one" } },
            { "id": 2, "vector": [0.0, 1.0, 0.0] },
            { "id": "a", "vector": [0.0, 0.0, 1.0], "payload": { "k": "a" } }
        ] })),
    )
    .await;
    let before = snapshot(&s, &c).await;
    assert_eq!(before["info"]["points"], 3);

    let good = |id: u64| json!({ "id": id, "vector": [0.5, 0.5, 0.5], "payload": { "new": true } });
    let replace_1 = json!({ "id": 1, "vector": [0.0, 0.0, 5.0], "payload": { "k": "replaced" } });
    let pts = |bad: Value| Some(json!({ "points": [replace_1.clone(), good(10), bad] }));
    let search = |body: Value| (Method::POST, format!("{c}/points/search"), Some(body));
    let cases: Vec<Case> = vec![
        // collections
        (
            "duplicate collection",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "docs", "dimension": 3 })),
            409,
            "collection_exists",
        ),
        (
            "bad collection name",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "Bad Name", "dimension": 3 })),
            400,
            "invalid_collection_name",
        ),
        (
            "name too long",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "x".repeat(65), "dimension": 3 })),
            400,
            "invalid_collection_name",
        ),
        (
            "bad name in the path",
            Method::GET,
            format!("{b}/collections/UPPER"),
            None,
            400,
            "invalid_collection_name",
        ),
        (
            "dimension 0",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "zero", "dimension": 0 })),
            400,
            "invalid_dimension",
        ),
        (
            "dimension too big",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "huge", "dimension": 5000 })),
            400,
            "invalid_dimension",
        ),
        (
            "unknown metric",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "m", "dimension": 3, "metric": "manhattan" })),
            400,
            "invalid_metric",
        ),
        (
            "unknown quantization",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "q", "dimension": 3, "quantization": "i4" })),
            400,
            "invalid_quantization",
        ),
        (
            "bad hnsw",
            Method::POST,
            format!("{b}/collections"),
            Some(json!({ "name": "h", "dimension": 3, "hnsw": { "m": 1 } })),
            400,
            "invalid_hnsw",
        ),
        (
            "unknown collection",
            Method::GET,
            format!("{b}/collections/nope"),
            None,
            404,
            "collection_not_found",
        ),
        (
            "upsert into unknown collection",
            Method::PUT,
            format!("{b}/collections/nope/points"),
            Some(json!({ "points": [good(1)] })),
            404,
            "collection_not_found",
        ),
        // upserts: one bad point fails the whole batch
        (
            "wrong dimension",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": [1.0, 2.0] })),
            400,
            "dimension_mismatch",
        ),
        (
            "infinite component (1e39 overflows f32)",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": [1.0, 1e39, 0.0] })),
            400,
            "invalid_vector",
        ),
        (
            "negative infinity",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": [-1e39, 1.0, 0.0] })),
            400,
            "invalid_vector",
        ),
        (
            "zero vector under cosine",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": [0.0, 0.0, 0.0] })),
            400,
            "zero_vector",
        ),
        (
            "payload not an object",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": [1.0, 1.0, 1.0], "payload": [1, 2] })),
            400,
            "invalid_payload",
        ),
        (
            "ttl 0",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": [1.0, 1.0, 1.0], "ttl_seconds": 0 })),
            400,
            "invalid_ttl",
        ),
        (
            "empty string id",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": "", "vector": [1.0, 1.0, 1.0] })),
            400,
            "invalid_point_id",
        ),
        (
            "id too long",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": "i".repeat(300), "vector": [1.0, 1.0, 1.0] })),
            400,
            "invalid_point_id",
        ),
        (
            "negative id",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": -5, "vector": [1.0, 1.0, 1.0] })),
            400,
            "invalid_input",
        ),
        (
            "vector not numbers",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": ["x", 1.0, 1.0] })),
            400,
            "invalid_input",
        ),
        (
            "unknown point field",
            Method::PUT,
            format!("{c}/points"),
            pts(json!({ "id": 11, "vector": [1.0, 1.0, 1.0], "vectors": [] })),
            400,
            "invalid_input",
        ),
        (
            "too many points",
            Method::PUT,
            format!("{c}/points"),
            Some(
                json!({ "points": (0..10_001u64).map(|i| json!({ "id": i, "vector": [1.0, 1.0, 1.0] })).collect::<Vec<_>>() }),
            ),
            400,
            "batch_too_large",
        ),
        // searches
        {
            let (m, p, body) = search(json!({ "vector": [1.0, 0.0, 0.0], "k": 0 }));
            ("k 0", m, p, body, 400, "invalid_k")
        },
        {
            let (m, p, body) = search(json!({ "vector": [1.0, 0.0, 0.0], "k": 1001 }));
            ("k 1001", m, p, body, 400, "invalid_k")
        },
        {
            let (m, p, body) = search(json!({ "vector": [1.0, 0.0], "k": 3 }));
            ("search dimension", m, p, body, 400, "dimension_mismatch")
        },
        {
            let (m, p, body) = search(json!({ "vector": [1e39, 0.0, 0.0], "k": 3 }));
            ("search infinity", m, p, body, 400, "invalid_vector")
        },
        {
            let (m, p, body) = search(json!({ "vector": [1.0, 0.0, 0.0], "k": 3, "ef": 0 }));
            ("ef 0", m, p, body, 400, "invalid_ef")
        },
        {
            let (m, p, body) =
                search(json!({ "vector": [1.0, 0.0, 0.0], "k": 3, "filter": "k = 1" }));
            ("filter not an object", m, p, body, 400, "invalid_filter")
        },
        {
            let (m, p, body) = search(json!({ "vector": [1.0, 0.0, 0.0], "k": 3,
            "filter": { "must": [{ "key": "k", "bogus": 1 }] } }));
            ("unknown condition", m, p, body, 400, "invalid_filter")
        },
        {
            let (m, p, body) = search(json!({ "vector": [1.0, 0.0, 0.0], "k": 3,
            "filter": { "must": [{ "key": "n", "range": { "gt": "soon" } }] } }));
            ("bad range", m, p, body, 400, "invalid_filter")
        },
        (
            "batch with a bad search",
            Method::POST,
            format!("{c}/points/search/batch"),
            Some(
                json!({ "searches": [{ "vector": [1.0, 0.0, 0.0], "k": 1 }, { "vector": [1.0, 0.0, 0.0], "k": 0 }] }),
            ),
            400,
            "invalid_k",
        ),
        (
            "too many searches",
            Method::POST,
            format!("{c}/points/search/batch"),
            Some(
                json!({ "searches": (0..101).map(|_| json!({ "vector": [1.0, 0.0, 0.0], "k": 1 })).collect::<Vec<_>>() }),
            ),
            400,
            "batch_too_large",
        ),
        // delete, scroll, count, index
        (
            "delete with ids and filter",
            Method::POST,
            format!("{c}/points/delete"),
            Some(json!({ "ids": [1], "filter": filter_eq("k", json!("one")) })),
            400,
            "invalid_selector",
        ),
        (
            "delete with neither",
            Method::POST,
            format!("{c}/points/delete"),
            Some(json!({})),
            400,
            "invalid_selector",
        ),
        (
            "delete with a bad filter",
            Method::POST,
            format!("{c}/points/delete"),
            Some(json!({ "filter": { "must": 5 } })),
            400,
            "invalid_filter",
        ),
        (
            "scroll limit 0",
            Method::POST,
            format!("{c}/points/scroll"),
            Some(json!({ "limit": 0 })),
            400,
            "invalid_limit",
        ),
        (
            "scroll limit 1001",
            Method::POST,
            format!("{c}/points/scroll"),
            Some(json!({ "limit": 1001 })),
            400,
            "invalid_limit",
        ),
        (
            "scroll bad cursor",
            Method::POST,
            format!("{c}/points/scroll"),
            Some(json!({ "cursor": "!!" })),
            400,
            "invalid_cursor",
        ),
        (
            "scroll forged cursor",
            Method::POST,
            format!("{c}/points/scroll"),
            Some(json!({ "cursor": "eHl6" })),
            400,
            "invalid_cursor",
        ),
        (
            "count with a bad filter",
            Method::POST,
            format!("{c}/points/count"),
            Some(json!({ "filter": { "should": [{ "is_null": 3 }] } })),
            400,
            "invalid_filter",
        ),
        (
            "unknown index type",
            Method::POST,
            format!("{c}/index"),
            Some(json!({ "field": "k", "type": "text" })),
            400,
            "invalid_index_type",
        ),
        (
            "empty index field",
            Method::POST,
            format!("{c}/index"),
            Some(json!({ "field": "", "type": "keyword" })),
            400,
            "invalid_field",
        ),
    ];
    let mut failures = Vec::new();
    for (what, method, path, body, status, code) in cases {
        let (got, v) = call(&s, method.clone(), &path, &admin, body).await;
        if got != status || v["code"] != code {
            failures.push(format!(
                "{what} ({method} {path}): {got} {v} (expected {status} {code})"
            ));
        }
    }
    // Imports: a bad line is refused with its line number; lines before it
    // in the same batch are not written.
    let header = json!({ "collection": { "name": "docs", "dimension": 3 } }).to_string();
    for (what, lines, code, line) in [
        (
            "bad JSON",
            vec![header.clone(), good(20).to_string(), "{oops".into()],
            "invalid_import",
            3,
        ),
        (
            "wrong dimension",
            vec![
                header.clone(),
                good(20).to_string(),
                json!({ "id": 21, "vector": [1.0] }).to_string(),
            ],
            "dimension_mismatch",
            3,
        ),
        (
            "infinite",
            vec![
                header.clone(),
                json!({ "id": 21, "vector": [1e39, 1.0, 1.0] }).to_string(),
            ],
            "invalid_vector",
            2,
        ),
        (
            "not a header",
            vec![good(20).to_string()],
            "invalid_import",
            1,
        ),
        (
            "bad header",
            vec![json!({ "collection": { "name": "docs", "dimension": "three" } }).to_string()],
            "invalid_import",
            1,
        ),
    ] {
        let body = lines.join("\n").into_bytes();
        let (got, v) = call_raw(&s, Method::POST, &format!("{c}/import"), &admin, body).await;
        let detail = v["detail"].as_str().unwrap_or("");
        if got != 400 || v["code"] != code || !detail.starts_with(&format!("line {line}:")) {
            failures.push(format!(
                "import {what}: {got} {v} (expected 400 {code} at line {line})"
            ));
        }
    }
    let (got, v) = call_raw(&s, Method::POST, &format!("{c}/import"), &admin, Vec::new()).await;
    if got != 400 || v["code"] != "invalid_import" {
        failures.push(format!("empty import: {got} {v}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let after = snapshot(&s, &c).await;
    assert_eq!(before, after, "refused requests changed the stored points");
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_and_the_vectors_rate_limit_group() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Server::start_with(dir.path(), &[("STRATA_VECTOR_MAX_COLLECTIONS", "2")]).await;
    let admin = s.bot_with_key("q", "admin").await;
    let b = "/v1/bots/q";
    let create = |name: &str| Some(json!({ "name": name, "dimension": 2, "metric": "dot" }));
    ok(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        create("one"),
    )
    .await;
    ok(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        create("two"),
    )
    .await;
    let (status, v) = call(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        create("three"),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{v}"
    );
    // The bot's setting overrides the server's default.
    ok(
        &s,
        Method::PUT,
        &format!("{b}/config/vectors.max_collections"),
        &admin,
        Some(json!(3)),
    )
    .await;
    ok(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        create("three"),
    )
    .await;

    ok(
        &s,
        Method::PUT,
        &format!("{b}/config/vectors.max_points"),
        &admin,
        Some(json!("5")),
    )
    .await;
    let points = |ids: std::ops::Range<u64>| {
        Some(
            json!({ "points": ids.map(|i| json!({ "id": i, "vector": [1.0, i as f32] })).collect::<Vec<_>>() }),
        )
    };
    let c = format!("{b}/collections/one");
    let (status, v) = call(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &admin,
        points(0..6),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{v}"
    );
    assert_eq!(
        count(&s, &c, &admin, None).await,
        0,
        "a refused batch writes nothing"
    );
    ok(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &admin,
        points(0..3),
    )
    .await;
    // The quota is per bot: every collection counts.
    ok(
        &s,
        Method::PUT,
        &format!("{b}/collections/two/points"),
        &admin,
        points(0..2),
    )
    .await;
    let (status, v) = call(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &admin,
        points(3..4),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("quota_exceeded")),
        "{v}"
    );
    // Replacing existing points does not grow the bot.
    ok(
        &s,
        Method::PUT,
        &format!("{c}/points"),
        &admin,
        points(0..3),
    )
    .await;

    // Collections and points share the `vectors` rate-limit group.
    ok(
        &s,
        Method::PUT,
        &format!("{b}/config/rate_limit.vectors"),
        &admin,
        Some(json!(3)),
    )
    .await;
    // A fresh key: its bucket holds nothing from the requests above at the
    // default rate, so after three requests the next slot is 20 s away and
    // a slow machine cannot reach it between the calls below.
    let limited = s.key("q", "admin").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _) = call(&s, Method::GET, &format!("{b}/collections"), &limited, None).await;
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let (status, v) = call(
        &s,
        Method::POST,
        &format!("{c}/points/count"),
        &limited,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["code"], "rate_limited");
    // Other groups are unaffected.
    let (status, _) = call(&s, Method::GET, &format!("{b}/kv"), &limited, None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn big_upserts_fit_the_default_body_limit_and_imports_stream_past_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A small body limit: the import streams, so only a line is bounded.
    let s = Server::start_with(dir.path(), &[("STRATA_MAX_BODY_BYTES", "64KiB")]).await;
    let admin = s.bot_with_key("big", "admin").await;
    let b = "/v1/bots/big";
    ok(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        Some(json!({ "name": "wide", "dimension": 64, "metric": "euclidean" })),
    )
    .await;
    let line = |i: u64| {
        json!({ "id": i, "vector": (0..64).map(|j| ((i * 64 + j) % 97) as f32 / 97.0).collect::<Vec<_>>() })
            .to_string()
    };
    let mut body =
        json!({ "collection": { "name": "wide", "dimension": 64, "metric": "euclidean" } })
            .to_string();
    for i in 0..1200 {
        body.push('\n');
        body.push_str(&line(i));
    }
    assert!(
        body.len() > 64 * 1024 * 4,
        "the import body is well over the limit"
    );
    let (status, v) = call_raw(
        &s,
        Method::POST,
        &format!("{b}/collections/wide/import"),
        &admin,
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["imported"], 1200, "{v}");
    assert_eq!(v["created"], false, "{v}");
    // An upsert over the limit is refused as too large.
    let big: Vec<Value> = (0..200u64)
        .map(|i| serde_json::from_str(&line(i)).expect("line"))
        .collect();
    let (status, v) = call(
        &s,
        Method::PUT,
        &format!("{b}/collections/wide/points"),
        &admin,
        Some(json!({ "points": big })),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
    // One line over the limit is refused, naming it.
    let long = format!(
        "{}\n{}\n",
        json!({ "collection": { "name": "wide", "dimension": 64, "metric": "euclidean" } }),
        "x".repeat(70 * 1024)
    );
    let (status, v) = call_raw(
        &s,
        Method::POST,
        &format!("{b}/collections/wide/import"),
        &admin,
        long.into_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{v}");
    assert!(
        v["detail"].as_str().is_some_and(|d| d.contains("line 2")),
        "{v}"
    );
    drop(s);

    // The default limit takes 500 384-d points (about 2.5 MB of JSON).
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Server::start(dir.path()).await;
    let admin = s.bot_with_key("big", "admin").await;
    ok(
        &s,
        Method::POST,
        &format!("{b}/collections"),
        &admin,
        Some(json!({ "name": "mini", "dimension": 384 })),
    )
    .await;
    let points: Vec<Value> = (0..500u64)
        .map(|i| json!({ "id": i, "vector": (0..384u64).map(|j| ((i * 7 + j * 13) % 101) as f32 / 101.0 - 0.4321).collect::<Vec<_>>(),
                         "payload": { "text": format!("chunk {i} of some document") } }))
        .collect();
    let body = json!({ "points": points });
    assert!(serde_json::to_vec(&body).expect("json").len() > 2_000_000);
    let v = ok(
        &s,
        Method::PUT,
        &format!("{b}/collections/mini/points"),
        &admin,
        Some(body),
    )
    .await;
    assert_eq!(v["upserted"], 500, "{v}");
}
