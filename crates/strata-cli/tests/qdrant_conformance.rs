//! Conformance replay: every request of `tests/qdrant/reference/raw_responses.md`
//! (a real Qdrant 1.19 server's verbatim answers, copied from the shared
//! notes) is sent to Strata's Qdrant listener in order, and each answer is
//! compared with the recorded one: status, `Content-Type` and body.
//!
//! What may differ, and why (everything else must be equal):
//! - `time` (a duration), `operation_id` and a point's `version` (Qdrant's
//!   internal operation counters: here any unsigned integer), and
//!   `segments_count` / `optimizer_config.default_segment_number` (Qdrant's
//!   storage layout, which Strata does not have).
//! - The file abbreviates 384-float vectors as `<384 floats: a, b, ...>`.
//!   A request's abbreviation is replaced by a vector derived from its text
//!   (the same text gives the same vector, so the query of point 3's vector
//!   finds point 3 at score 1.0); an abbreviated vector in an answer must be
//!   a list of that many numbers. Search results other than that exact
//!   match depend on the real vectors: for them, the number of results and
//!   each one's fields and id type are compared, not ids and scores.
//! - An error message's serde position (` at line L column C`) where Strata
//!   reports a filter error found after parsing.
//! - Recorded deviations, each checked for Strata's own answer: a create
//!   without `vectors` (Qdrant makes a vector-less collection; Strata's
//!   collections have one vector, so it is a 400), and the two `count`
//!   requests on the recorder's 50 000-point `bench` collection, replayed
//!   on `ref`, which the file has deleted by then (the point of those is the
//!   missing or `text/plain` `Content-Type`: the body is still read as JSON,
//!   so the answer is the collection's 404, not a 400 for the body).

mod common;

use common::{free_port, Server};
use serde_json::{json, Value};

const REFERENCE: &str = include_str!("../../../tests/qdrant/reference/raw_responses.md");

#[derive(Debug)]
struct Exchange {
    title: String,
    method: String,
    path: String,
    /// Raw text of the request body, if any.
    body: Option<String>,
    /// The `with body …` note of the curl section.
    note: String,
    status: u16,
    content_type: Option<String>,
    /// The raw response body (verbatim where the file has it).
    response: String,
}

/// The code blocks and lines of the file, in order.
fn parse(text: &str) -> Vec<Exchange> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut title = String::new();
    let mut i = 0;
    let block = |i: &mut usize| -> String {
        // `*i` is at a ``` line; returns the content up to the closing one.
        *i += 1;
        let mut s = Vec::new();
        while *i < lines.len() && !lines[*i].starts_with("```") {
            s.push(lines[*i]);
            *i += 1;
        }
        *i += 1;
        s.join("\n")
    };
    while i < lines.len() {
        let line = lines[i];
        if let Some(t) = line.strip_prefix("## ") {
            title = t.to_owned();
            i += 1;
            continue;
        }
        let Some(req) = line.strip_prefix("Request: `") else {
            i += 1;
            continue;
        };
        let (target, note) = req.split_once('`').unwrap_or((req, ""));
        let (method, path) = target.split_once(' ').expect("METHOD PATH");
        let mut ex = Exchange {
            title: title.clone(),
            method: method.to_owned(),
            path: path.to_owned(),
            body: None,
            note: note.trim().to_owned(),
            status: 0,
            content_type: None,
            response: String::new(),
        };
        i += 1;
        // The request body, then the response.
        while i < lines.len() && !lines[i].starts_with("Response:") && !lines[i].starts_with("```")
        {
            i += 1;
        }
        if title.starts_with("Extra") {
            // curl -i: status line, headers, blank line, body.
            let raw = block(&mut i);
            let mut parts = raw.splitn(2, "\n\n");
            let head = parts.next().unwrap_or("");
            ex.response = parts.next().unwrap_or("").trim().to_owned();
            let mut hl = head.lines();
            ex.status = hl
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|s| s.parse().ok())
                .expect("status line");
            for h in hl {
                if let Some(ct) = h.strip_prefix("content-type: ") {
                    ex.content_type = Some(ct.to_owned());
                }
            }
            out.push(ex);
            continue;
        }
        if lines[i].starts_with("```") {
            ex.body = Some(block(&mut i));
        }
        while !lines[i].starts_with("Response:") {
            i += 1;
        }
        // Response: HTTP 200, Content-Type: `application/json`
        let resp = lines[i];
        ex.status = resp
            .split_whitespace()
            .nth(2)
            .map(|s| s.trim_end_matches(','))
            .and_then(|s| s.parse().ok())
            .expect("status");
        ex.content_type = resp.split('`').nth(1).map(str::to_owned);
        i += 1;
        while !lines[i].starts_with("```") {
            i += 1;
        }
        ex.response = block(&mut i);
        // A verbatim raw body may follow before the next request.
        let mut j = i;
        while j < lines.len() && !lines[j].starts_with("## ") && !lines[j].starts_with("Request:") {
            if lines[j].starts_with("Raw body") {
                while !lines[j].starts_with("```") {
                    j += 1;
                }
                ex.response = block(&mut j);
                break;
            }
            j += 1;
        }
        i = j;
        out.push(ex);
    }
    out
}

/// `<384 floats: a, b, ...>` → (384, [a, b]).
fn abbreviation(s: &str) -> Option<(usize, Vec<f32>)> {
    let inner = s.strip_prefix('<')?.strip_suffix('>')?;
    let (n, rest) = inner.split_once(" floats:")?;
    let n = n.trim().parse().ok()?;
    let heads = rest
        .split(',')
        .map(str::trim)
        .filter(|x| *x != "...")
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((n, heads))
}

/// The vector an abbreviation stands for here: its shown components, then
/// values derived from its text.
fn expand(s: &str) -> Option<Value> {
    let (n, heads) = abbreviation(s)?;
    let mut x: u64 = s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let v: Vec<f32> = (0..n)
        .map(|i| {
            if let Some(h) = heads.get(i) {
                return *h;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 20_000) as f32 / 10_000.0) - 1.0
        })
        .collect();
    Some(json!(v))
}

fn expand_all(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(x) = expand(s) {
                *v = x;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(expand_all),
        Value::Object(m) => m.values_mut().for_each(expand_all),
        _ => {}
    }
}

/// ` at line L column C` removed.
fn without_position(s: &str) -> &str {
    match s.find(" at line ") {
        Some(i) if s[i..].contains(" column ") => &s[..i],
        _ => s,
    }
}

const ANY_INTEGER: &[&str] = &["operation_id", "version"];
const IGNORED: &[&str] = &["time", "segments_count", "default_segment_number"];

fn compare(want: &Value, got: &Value, path: &str, errs: &mut Vec<String>) {
    match (want, got) {
        (Value::String(w), _) if abbreviation(w).is_some() => {
            let n = abbreviation(w).map(|a| a.0).unwrap_or(0);
            let ok = got
                .as_array()
                .is_some_and(|a| a.len() == n && a.iter().all(Value::is_number));
            if !ok {
                errs.push(format!("{path}: want a list of {n} numbers, got {got}"));
            }
        }
        (Value::Object(w), Value::Object(g)) => {
            let keys: std::collections::BTreeSet<&String> = w.keys().chain(g.keys()).collect();
            for k in keys {
                if IGNORED.contains(&k.as_str()) {
                    continue;
                }
                let p = format!("{path}.{k}");
                match (w.get(k), g.get(k)) {
                    (Some(wv), Some(gv)) if ANY_INTEGER.contains(&k.as_str()) && wv.is_u64() => {
                        if !(wv.is_u64() && gv.is_u64()) {
                            errs.push(format!("{p}: want an integer, got {gv}"));
                        }
                    }
                    (Some(Value::String(a)), Some(Value::String(b))) if k == "error" => {
                        if without_position(a) != without_position(b) {
                            errs.push(format!("{p}: want {a:?}, got {b:?}"));
                        }
                    }
                    (Some(wv), Some(gv)) => compare(wv, gv, &p, errs),
                    (Some(_), None) => errs.push(format!("{p}: missing")),
                    (None, Some(gv)) => errs.push(format!("{p}: not expected, got {gv}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                errs.push(format!(
                    "{path}: want {} items, got {}: {got}",
                    w.len(),
                    g.len()
                ));
                return;
            }
            let scored = w.iter().any(|x| x.get("score").is_some());
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                let p = format!("{path}[{i}]");
                let exact_match = wv.get("score").and_then(Value::as_f64) == Some(1.0);
                if scored && !exact_match {
                    // Depends on the real vectors: fields and id type only.
                    let keys = |v: &Value| -> Vec<String> {
                        v.as_object()
                            .map(|m| m.keys().cloned().collect())
                            .unwrap_or_default()
                    };
                    if keys(wv) != keys(gv)
                        || wv["id"].is_u64() != gv["id"].is_u64()
                        || !gv["score"].is_number()
                    {
                        errs.push(format!("{p}: want the fields of {wv}, got {gv}"));
                    }
                } else {
                    compare(wv, gv, &p, errs);
                }
            }
        }
        (Value::Number(w), Value::Number(g)) => {
            let integral = w.is_u64() || w.is_i64();
            let equal = if integral {
                w == g
            } else {
                let (a, b) = (
                    w.as_f64().unwrap_or(f64::NAN),
                    g.as_f64().unwrap_or(f64::NAN),
                );
                (a - b).abs() <= 1e-5 * a.abs().max(1.0)
            };
            if !equal {
                errs.push(format!("{path}: want {w}, got {g}"));
            }
        }
        _ => {
            if want != got {
                errs.push(format!("{path}: want {want}, got {got}"));
            }
        }
    }
}

#[tokio::test]
async fn qdrant_conformance_replay() {
    let exchanges = parse(REFERENCE);
    assert!(
        exchanges.len() >= 45,
        "parsed only {} exchanges",
        exchanges.len()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let s = Server::start_with(dir.path(), &[("STRATA_QDRANT_LISTEN", &listen)]).await;
    let key = s.bot_with_key("conformance", "admin").await;
    let base = format!("http://{listen}");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for ex in &exchanges {
        let mut path = ex.path.clone();
        let mut want_status = ex.status;
        let mut want_body = ex.response.clone();
        let mut content_type = Some("application/json");
        if ex.note.contains("Content-Type") {
            content_type = if ex.note.contains("text/plain") {
                Some("text/plain")
            } else {
                None
            };
        }
        let mut body = ex.body.clone();
        if ex.note.contains("with body `{}`") {
            body = Some("{}".into());
        }
        if ex.note.contains("empty body") {
            body = Some(String::new());
        }
        if path == "/collections/bench/points/count" {
            // Replayed on `ref`, deleted by now: the body must still be read
            // as JSON (a 404 for the collection, not a 400 for the body).
            path = "/collections/ref/points/count".into();
            want_status = 404;
            want_body =
                r#"{"status":{"error":"Not found: Collection `ref` doesn't exist!"},"time":0.0}"#
                    .into();
        }
        if ex.title.starts_with("ERROR: missing required field") {
            // Deviation: Strata's collections have exactly one vector.
            want_status = 400;
            want_body = r#"{"status":{"error":"Wrong input: Strata's collections have exactly one dense vector: send vectors: {size, distance}"},"time":0.0}"#.into();
        }
        // The request, abbreviations expanded; malformed bodies go as they are.
        let payload = body.map(|b| match serde_json::from_str::<Value>(&b) {
            Ok(mut v) => {
                expand_all(&mut v);
                v.to_string()
            }
            Err(_) => b,
        });
        let method: reqwest::Method = ex.method.parse().expect("method");
        let mut r = s
            .http
            .request(method, format!("{base}{path}"))
            .header("api-key", &key);
        if let Some(b) = payload {
            if let Some(ct) = content_type {
                r = r.header("content-type", ct);
            }
            r = r.body(b);
        }
        let res = r.send().await.expect("send");
        replayed += 1;
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res.text().await.expect("body");
        let what = format!("{} ({} {})", ex.title, ex.method, ex.path);
        if status != want_status {
            failures.push(format!(
                "{what}: status {status}, want {want_status}: {text}"
            ));
            continue;
        }
        if let Some(want_ct) = &ex.content_type {
            if ct.as_deref() != Some(want_ct.as_str()) {
                failures.push(format!("{what}: content-type {ct:?}, want {want_ct:?}"));
            }
        }
        let mut errs = Vec::new();
        match (
            serde_json::from_str::<Value>(&want_body),
            serde_json::from_str::<Value>(&text),
        ) {
            (Ok(w), Ok(g)) => compare(&w, &g, "", &mut errs),
            _ => {
                if want_body.trim() != text.trim() {
                    errs.push(format!("body {text:?}, want {want_body:?}"));
                }
            }
        }
        for e in errs {
            failures.push(format!("{what}: {e}"));
        }
    }
    assert_eq!(replayed, exchanges.len());
    assert!(
        failures.is_empty(),
        "{} of {} exchanges differ:\n{}",
        failures.len(),
        exchanges.len(),
        failures.join("\n")
    );
}

#[test]
fn the_reference_parses_and_abbreviations_expand() {
    let ex = parse(REFERENCE);
    let titles: Vec<&str> = ex.iter().map(|e| e.title.as_str()).collect();
    assert!(titles.contains(&"Upsert, batch (columnar) form"));
    let get_missing = ex
        .iter()
        .find(|e| e.path == "/collections/ref/points/999")
        .expect("get missing");
    assert_eq!(get_missing.status, 404);
    assert!(get_missing.response.contains("does not exists!"));
    let a = expand("<384 floats: 0.3479, -0.4558, ...>").expect("expands");
    assert_eq!(a.as_array().map(Vec::len), Some(384));
    assert_eq!(a[0].as_f64().map(|x| (x * 10_000.0).round()), Some(3479.0));
    assert_eq!(
        a,
        expand("<384 floats: 0.3479, -0.4558, ...>").expect("same")
    );
    assert_ne!(
        a,
        expand("<384 floats: 0.2789, -0.95, ...>").expect("other")
    );
    assert_eq!(without_position("x at line 1 column 59"), "x");
}
