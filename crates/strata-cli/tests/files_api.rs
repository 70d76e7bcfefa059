//! The drive end to end against the real binary: put/get/head/delete,
//! versions, ranges, listing, hostile keys (sent as raw HTTP so no client
//! normalises them), the upload limit, config.csv, and the CLI.

mod common;

use common::Server;
use reqwest::header::{self, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UPLOAD_LIMIT: usize = 64 * 1024;

async fn start(dir: &Path) -> Server {
    Server::start_with(
        dir,
        &[
            ("STRATA_MAX_UPLOAD_BYTES", "65536"),
            // Uploads are bound by the upload limit, not the body limit.
            ("STRATA_MAX_BODY_BYTES", "2048"),
        ],
    )
    .await
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

async fn put(s: &Server, key: &str, path: &str, body: Vec<u8>, ct: Option<&str>) -> (u16, Value) {
    let mut r = s.req(Method::PUT, path, Some(key)).body(body);
    if let Some(ct) = ct {
        r = r.header(CONTENT_TYPE, ct);
    }
    let res = r.send().await.expect("put");
    let status = res.status().as_u16();
    let text = res.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(s: &Server, key: &str, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut r = s.req(Method::GET, path, Some(key));
    if let Some(range) = range {
        r = r.header(header::RANGE, range);
    }
    r.send().await.expect("get")
}

fn hdr(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Sends one HTTP/1.1 request exactly as written (no URL normalisation).
async fn raw(s: &Server, method: &str, target: &str, key: &str, body: &[u8]) -> (u16, String) {
    let addr = s.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    conn.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Every regular file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .expect("inside")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn put_get_head_delete_versions_ranges_and_listing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path()).await;
    let w = s.bot_with_key("docs", "writer").await;
    let r = s.key("docs", "reader").await;

    let (st, m1) = put(
        &s,
        &w,
        "/v1/bots/docs/files/notes/a.txt",
        b"hello world".to_vec(),
        Some("text/plain"),
    )
    .await;
    assert_eq!(st, 201, "{m1}");
    assert_eq!(m1["version"], 1);
    assert_eq!(m1["size"], 11);
    assert_eq!(m1["etag"], sha(b"hello world"));
    assert_eq!(m1["content_type"], "text/plain");
    assert_eq!(m1["key"], "notes/a.txt");

    let res = get(&s, &r, "/v1/bots/docs/files/notes/a.txt", None).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(hdr(&res, "content-type"), "text/plain");
    assert_eq!(hdr(&res, "etag"), format!("\"{}\"", sha(b"hello world")));
    assert_eq!(hdr(&res, "content-length"), "11");
    assert_eq!(hdr(&res, "accept-ranges"), "bytes");
    assert_eq!(hdr(&res, "x-strata-version"), "1");
    assert!(hdr(&res, "last-modified").ends_with(" GMT"));
    assert_eq!(res.bytes().await.expect("body").as_ref(), b"hello world");

    let head = s
        .req(Method::HEAD, "/v1/bots/docs/files/notes/a.txt", Some(&r))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(hdr(&head, "content-length"), "11");
    assert_eq!(hdr(&head, "x-strata-version"), "1");

    // A second version; the first stays readable by number.
    let (st, m2) = put(
        &s,
        &w,
        "/v1/bots/docs/files/notes/a.txt",
        b"HELLO WORLD!!".to_vec(),
        None,
    )
    .await;
    assert_eq!((st, m2["version"].clone()), (201, Value::from(2)), "{m2}");
    assert_eq!(m2["content_type"], "application/octet-stream");
    let old = get(&s, &r, "/v1/bots/docs/files/notes/a.txt?version=1", None).await;
    assert_eq!(hdr(&old, "x-strata-version"), "1");
    assert_eq!(old.bytes().await.expect("body").as_ref(), b"hello world");
    let v = s
        .get_ok("/v1/bots/docs/files/notes/a.txt?versions", &r)
        .await;
    let versions: Vec<(i64, bool)> = v["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|m| {
            (
                m["version"].as_i64().unwrap_or(0),
                m["current"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(versions, vec![(2, true), (1, false)]);

    // Ranges.
    let body = b"HELLO WORLD!!";
    for (range, want, content_range) in [
        ("bytes=0-4", &body[0..5], "bytes 0-4/13"),
        ("bytes=6-", &body[6..], "bytes 6-12/13"),
        ("bytes=-3", &body[10..], "bytes 10-12/13"),
        ("bytes=10-1000", &body[10..], "bytes 10-12/13"),
    ] {
        let res = get(&s, &r, "/v1/bots/docs/files/notes/a.txt", Some(range)).await;
        assert_eq!(res.status().as_u16(), 206, "{range}");
        assert_eq!(hdr(&res, "content-range"), content_range, "{range}");
        assert_eq!(hdr(&res, "content-length"), want.len().to_string());
        assert_eq!(res.bytes().await.expect("body").as_ref(), want, "{range}");
    }
    let res = get(&s, &r, "/v1/bots/docs/files/notes/a.txt", Some("bytes=13-")).await;
    assert_eq!(res.status().as_u16(), 416);
    assert_eq!(hdr(&res, "content-type"), "application/problem+json");
    assert_eq!(hdr(&res, "content-range"), "bytes */13");
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["code"], "range_not_satisfiable");
    // A range of an older version.
    let res = get(
        &s,
        &r,
        "/v1/bots/docs/files/notes/a.txt?version=1",
        Some("bytes=6-"),
    )
    .await;
    assert_eq!(res.bytes().await.expect("body").as_ref(), b"world");

    // An upload larger than STRATA_MAX_BODY_BYTES but within the upload limit.
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let (st, m) = put(&s, &w, "/v1/bots/docs/files/big.bin", big.clone(), None).await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["etag"], sha(&big));
    let res = get(&s, &r, "/v1/bots/docs/files/big.bin", None).await;
    assert_eq!(res.bytes().await.expect("body").as_ref(), &big[..]);

    // Roles.
    let (st, p) = put(&s, &r, "/v1/bots/docs/files/x", b"x".to_vec(), None).await;
    assert_eq!((st, p["code"].as_str()), (403, Some("forbidden")));

    // Listing with prefix, delimiter and cursor.
    for k in [
        "lib/a/1.md",
        "lib/a/2.md",
        "lib/b/3.md",
        "lib/top.md",
        "lib/z.md",
    ] {
        let (st, _) = put(
            &s,
            &w,
            &format!("/v1/bots/docs/files/{k}"),
            k.as_bytes().to_vec(),
            Some("text/markdown"),
        )
        .await;
        assert_eq!(st, 201);
    }
    let l = s
        .get_ok("/v1/bots/docs/files?prefix=lib/&delimiter=/", &r)
        .await;
    let keys: Vec<&str> = l["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["key"].as_str())
        .collect();
    assert_eq!(keys, vec!["lib/top.md", "lib/z.md"]);
    assert_eq!(l["prefixes"], serde_json::json!(["lib/a/", "lib/b/"]));
    assert!(l["next_cursor"].is_null());
    let o = &l["objects"][0];
    for field in [
        "key",
        "size",
        "etag",
        "content_type",
        "version",
        "updated_at",
    ] {
        assert!(!o[field].is_null(), "{field} in {o}");
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/bots/docs/files?prefix=lib/&limit=2&cursor={c}"),
            None => "/v1/bots/docs/files?prefix=lib/&limit=2".to_owned(),
        };
        let page = s.get_ok(&path, &r).await;
        let objs = page["objects"].as_array().expect("objects");
        assert!(objs.len() <= 2);
        seen.extend(
            objs.iter()
                .filter_map(|o| o["key"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![
            "lib/a/1.md",
            "lib/a/2.md",
            "lib/b/3.md",
            "lib/top.md",
            "lib/z.md"
        ]
    );
    let res = s
        .req(Method::GET, "/v1/bots/docs/files?cursor=!!", Some(&r))
        .send()
        .await
        .expect("list");
    assert_eq!(res.status().as_u16(), 400);

    // Delete: the current view goes, older versions stay readable.
    let res = s
        .req(Method::DELETE, "/v1/bots/docs/files/notes/a.txt", Some(&w))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status().as_u16(), 204);
    let res = get(&s, &r, "/v1/bots/docs/files/notes/a.txt", None).await;
    assert_eq!(res.status().as_u16(), 404);
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["code"], "file_not_found");
    let res = get(&s, &r, "/v1/bots/docs/files/notes/a.txt?version=2", None).await;
    assert_eq!(res.bytes().await.expect("body").as_ref(), b"HELLO WORLD!!");
    let res = s
        .req(Method::DELETE, "/v1/bots/docs/files/notes/a.txt", Some(&w))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status().as_u16(), 404);
    let l = s.get_ok("/v1/bots/docs/files?prefix=notes/", &r).await;
    assert_eq!(l["objects"], serde_json::json!([]));

    // /ready reports the drive.
    let ready = s.get_ok("/ready", &r).await;
    assert_eq!(ready["layers"]["drive"]["status"], "ok", "{ready}");
    assert_eq!(ready["layers"]["drive"]["backend"], "filesystem", "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_keys_are_refused_and_nothing_lands_outside_the_bot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path()).await;
    let w = s.bot_with_key("docs", "writer").await;
    let long = "k".repeat(1025);
    let targets = [
        "/v1/bots/docs/files/../x".to_owned(),
        "/v1/bots/docs/files/a/../../x".to_owned(),
        "/v1/bots/docs/files/%2e%2e/x".to_owned(),
        "/v1/bots/docs/files/%2E%2E/%2E%2E/escape".to_owned(),
        "/v1/bots/docs/files//abs".to_owned(),
        "/v1/bots/docs/files/%2Fetc%2Fpasswd".to_owned(),
        "/v1/bots/docs/files/a%5Cb".to_owned(),
        "/v1/bots/docs/files/..%5C..%5Cx".to_owned(),
        "/v1/bots/docs/files/a%00b".to_owned(),
        "/v1/bots/docs/files/a/./b".to_owned(),
        "/v1/bots/docs/files/%ff%fe".to_owned(),
        format!("/v1/bots/docs/files/{long}"),
    ];
    for t in &targets {
        let (status, text) = raw(&s, "PUT", t, &w, b"evil").await;
        assert_eq!(status, 400, "PUT {t}: {text}");
        // Bytes that are not UTF-8 are refused by the path parser already.
        let code = if t.ends_with("%ff%fe") {
            "invalid_input"
        } else {
            "invalid_key"
        };
        assert!(text.contains(code), "PUT {t}: {text}");
        let (status, _) = raw(&s, "GET", t, &w, b"").await;
        assert_eq!(status, 400, "GET {t}");
    }
    // The longest allowed key works.
    let ok = format!("/v1/bots/docs/files/{}", "k".repeat(1024));
    let (status, text) = raw(&s, "PUT", &ok, &w, b"fine").await;
    assert_eq!(status, 201, "{text}");
    // Nothing outside <data>/drive/bots/docs/, and only uuid-named bodies.
    let drive = dir.path().join("drive");
    let stored = files_under(&drive);
    assert_eq!(stored.len(), 1, "{stored:?}");
    for f in &stored {
        assert!(f.starts_with("bots/docs/"), "{f}");
        assert_eq!(f.split('/').count(), 3, "{f}");
    }
    for f in files_under(dir.path()) {
        let name = f.rsplit('/').next().unwrap_or("");
        assert!(
            !["x", "escape", "passwd", "b", "abs"].contains(&name),
            "a hostile key reached the disk: {f}"
        );
    }
    assert!(!dir.path().join("x").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_over_the_limit_are_413_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path()).await;
    let w = s.bot_with_key("docs", "writer").await;
    // Declared too large: refused before the body is read (the client
    // sends only the head, as one waiting for 100-continue would).
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/bots/docs/files/huge.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {w}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        UPLOAD_LIMIT + 1
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.expect("read");
    let reply = String::from_utf8_lossy(&out);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("payload_too_large"), "{reply}");
    // Streamed (chunked, no length): stopped once it passes the limit.
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/bots/docs/files/stream.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {w}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let (mut rd, mut wr) = conn.into_split();
    let writer = tokio::spawn(async move {
        let chunk = [9u8; 8192];
        for _ in 0..20 {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            if wr.write_all(&frame).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let _ = writer.await;
    let reply = String::from_utf8_lossy(&out);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    for k in ["huge.bin", "stream.bin"] {
        let res = get(&s, &w, &format!("/v1/bots/docs/files/{k}"), None).await;
        assert_eq!(res.status().as_u16(), 404, "{k}");
        let res = get(&s, &w, &format!("/v1/bots/docs/files/{k}?versions"), None).await;
        assert_eq!(res.status().as_u16(), 404, "{k}");
    }
    let stored = files_under(&dir.path().join("drive"));
    assert!(stored.is_empty(), "bodies left behind: {stored:?}");
    // Exactly at the limit is fine.
    let (st, _) = put(
        &s,
        &w,
        "/v1/bots/docs/files/edge.bin",
        vec![1; UPLOAD_LIMIT],
        None,
    )
    .await;
    assert_eq!(st, 201);
    // The server is still up.
    s.get_ok("/health", &w).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_csv_upload_sets_the_bot_config_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path()).await;
    let admin = s.bot_with_key("shop", "admin").await;
    let w = s.key("shop", "writer").await;
    let path = "/v1/bots/shop/files/shop.gbai/shop.gbot/config.csv";
    let csv = "name,value\ngreeting,\"Hello, world\"\nrate_limit, 500\n";
    let (st, m) = put(&s, &admin, path, csv.as_bytes().to_vec(), Some("text/csv")).await;
    assert_eq!(st, 201, "{m}");
    let config = s.get_ok("/v1/bots/shop/config", &admin).await;
    assert_eq!(config["greeting"], "Hello, world", "{config}");
    assert_eq!(config["rate_limit"], "500", "{config}");
    // The file itself is stored like any other.
    let res = get(&s, &admin, path, None).await;
    assert_eq!(res.text().await.expect("body"), csv);

    // A writer may not change the bot's settings through the file.
    let (st, p) = put(&s, &w, path, b"greeting,hi\n".to_vec(), None).await;
    assert_eq!(st, 403, "{p}");
    // Malformed: refused, nothing stored, settings unchanged.
    for bad in ["a,b,c\n", "greeting,\"unterminated\n", ",nameless\n"] {
        let (st, p) = put(&s, &admin, path, bad.as_bytes().to_vec(), None).await;
        assert_eq!(st, 400, "{bad:?}: {p}");
        assert_eq!(p["code"], "invalid_config_csv", "{bad:?}");
    }
    let v = s.get_ok(&format!("{path}?versions"), &admin).await;
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(1));
    let config = s.get_ok("/v1/bots/shop/config", &admin).await;
    assert_eq!(config["greeting"], "Hello, world");
    // Another bot's config.csv name is just a file.
    let (st, _) = put(
        &s,
        &w,
        "/v1/bots/shop/files/other.gbai/other.gbot/config.csv",
        b"a,b,c".to_vec(),
        None,
    )
    .await;
    assert_eq!(st, 201);
}

fn cli(s: &Server, key: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_ADMIN_KEY")
        .env_remove("STRATA_CONFIG")
        .env("STRATA_URL", &s.url)
        .env("STRATA_API_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .output()
        .expect("run strata")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_put_get_ls_rm_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path()).await;
    let w = s.bot_with_key("docs", "writer").await;
    let local = dir.path().join("report 2024.md");
    let content: Vec<u8> = (0..30_000u32)
        .map(|i| b"abcdefgh\n"[(i % 9) as usize])
        .collect();
    std::fs::write(&local, &content).expect("write");
    let local_s = local.to_string_lossy().into_owned();

    let o = cli(
        &s,
        &w,
        &["files", "put", "docs", &local_s, "reports/2024 q1.md"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("version 1"),
        "{}",
        text(&o)
    );
    let o = cli(&s, &w, &["files", "put", "docs", &local_s]);
    assert!(o.status.success(), "{}", text(&o));

    let res = get(&s, &w, "/v1/bots/docs/files/reports/2024%20q1.md", None).await;
    assert_eq!(hdr(&res, "content-type"), "text/markdown; charset=utf-8");

    let o = cli(&s, &w, &["files", "ls", "docs", "--delimiter", "/"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("report 2024.md") && out.contains("reports/"),
        "{out}"
    );
    let o = cli(
        &s,
        &w,
        &["files", "ls", "docs", "--prefix", "reports/", "--json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["objects"][0]["key"], "reports/2024 q1.md");

    let back = dir.path().join("back.md");
    let o = cli(
        &s,
        &w,
        &[
            "files",
            "get",
            "docs",
            "reports/2024 q1.md",
            "--out",
            &back.to_string_lossy(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&back).expect("read"), content);
    let o = cli(&s, &w, &["files", "get", "docs", "reports/2024 q1.md"]);
    assert_eq!(o.stdout, content);

    let o = cli(&s, &w, &["files", "rm", "docs", "reports/2024 q1.md"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&s, &w, &["files", "get", "docs", "reports/2024 q1.md"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("file_not_found"),
        "{}",
        text(&o)
    );
    let o = cli(
        &s,
        &w,
        &[
            "files",
            "get",
            "docs",
            "reports/2024 q1.md",
            "--version",
            "1",
        ],
    );
    assert_eq!(o.stdout, content);
}
