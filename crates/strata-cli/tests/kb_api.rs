//! The knowledge base end to end against the real binary: ingest a folder
//! of mixed documents with `strata kb ingest`, keyword search, a changed and
//! a deleted file, hostile files, SIGKILL mid-indexing, and (with a local
//! model in STRATA_TEST_MODEL_DIR) dense and hybrid search.

mod common;

use common::{Server, ADMIN_KEY};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use strata_kb::testdocs;

fn key_path(bot: &str, rel: &str) -> String {
    format!("/v1/bots/{bot}/files/{bot}.gbai/{bot}.gbkb/{rel}")
}

async fn put(s: &Server, key: &str, bot: &str, rel: &str, ct: &str, body: Vec<u8>) -> (u16, Value) {
    let r = s
        .req(Method::PUT, &key_path(bot, rel), Some(key))
        .header(CONTENT_TYPE, ct)
        .body(body)
        .send()
        .await
        .expect("put");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn search(s: &Server, key: &str, bot: &str, body: Value) -> (u16, Value) {
    let r = s
        .req(
            Method::POST,
            &format!("/v1/bots/{bot}/kb/search"),
            Some(key),
        )
        .json(&body)
        .send()
        .await
        .expect("search");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn docs_of(results: &Value) -> Vec<String> {
    results["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["document"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until no document is pending or indexing; returns the documents.
async fn settle(s: &Server, key: &str, bot: &str, expect: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = s.get_ok(&format!("/v1/bots/{bot}/kb/documents"), key).await;
        let docs = v["documents"].as_array().cloned().unwrap_or_default();
        let busy = docs
            .iter()
            .any(|d| matches!(d["status"].as_str(), Some("pending" | "indexing")));
        if !busy && docs.len() >= expect {
            return docs;
        }
        assert!(Instant::now() < deadline, "indexing did not settle: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn doc<'a>(docs: &'a [Value], rel_suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["key"].as_str().is_some_and(|k| k.ends_with(rel_suffix)))
        .unwrap_or_else(|| panic!("no document {rel_suffix} in {docs:?}"))
}

fn write_corpus(dir: &Path) {
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    std::fs::write(
        dir.join("policies/refunds.md"),
        "# Refunds\n\nRefunds are paid within thirty days of the purchase.\n\n## Receipts\n\nKeep the receipt.\n",
    )
    .expect("md");
    std::fs::write(
        dir.join("hours.txt"),
        "The shop opens at nine and closes at six.",
    )
    .expect("txt");
    std::fs::write(
        dir.join("about.html"),
        "<html><head><style>p{}</style></head><body><script>var tracking=1;</script><p>We sell handmade ceramics.</p></body></html>",
    )
    .expect("html");
    std::fs::write(
        dir.join("warranty.pdf"),
        testdocs::pdf(&["The warranty covers glaze defects for two years."]).expect("pdf"),
    )
    .expect("pdf");
    std::fs::write(
        dir.join("shipping.docx"),
        testdocs::docx(&[
            "Parcels ship from Porto.",
            "Delivery takes five working days.",
        ])
        .expect("docx"),
    )
    .expect("docx");
    std::fs::write(dir.join("prices.csv"), "item,price\nmug,12\nbowl,18\n").expect("csv");
    std::fs::write(
        dir.join("faq.json"),
        r#"{"faq":[{"q":"Do you gift wrap?","a":"Yes, for free."}]}"#,
    )
    .expect("json");
}

#[tokio::test]
async fn ingest_search_change_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data")).await;
    let key = s.bot_with_key("shop", "writer").await;
    let corpus = dir.path().join("corpus");
    write_corpus(&corpus);

    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["kb", "ingest", "shop"])
        .arg(&corpus)
        .args(["--url", &s.url, "--key", &key, "--json"])
        .output()
        .expect("run strata kb ingest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ingest failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(&stdout).expect("ingest --json summary");
    assert_eq!(summary["uploaded"], 7, "{summary}");
    assert_eq!(summary["indexed"], 7, "{summary}");

    let docs = settle(&s, &key, "shop", 7).await;
    for d in &docs {
        assert_eq!(d["status"], "indexed", "{d}");
        assert!(d["chunks"].as_i64().unwrap_or(0) >= 1, "{d}");
        // An indexed document is done: all the chunks found.
        assert_eq!(d["chunks_found"], d["chunks"], "{d}");
        assert_eq!(d["chunks_done"], d["chunks"], "{d}");
    }
    assert_eq!(
        doc(&docs, "warranty.pdf")["content_type"],
        "application/pdf"
    );

    let expect = [
        ("thirty days refunds", "policies/refunds.md"),
        ("opens at nine", "hours.txt"),
        ("handmade ceramics", "about.html"),
        ("glaze defects warranty", "warranty.pdf"),
        ("parcels Porto", "shipping.docx"),
        ("bowl price", "prices.csv"),
        ("gift wrap", "faq.json"),
    ];
    for (q, want) in expect {
        let (st, v) = search(
            &s,
            &key,
            "shop",
            json!({"query": q, "mode": "keyword", "k": 3}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let found = docs_of(&v);
        assert!(
            found.first().is_some_and(|d| d.ends_with(want)),
            "{q}: {found:?}"
        );
        assert!(v["results"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        assert!(v["results"][0]["version"].as_i64().is_some());
    }
    // Scripts are not indexed; hostile query syntax is just words.
    let (_, v) = search(
        &s,
        &key,
        "shop",
        json!({"query": "tracking", "mode": "keyword", "k": 3}),
    )
    .await;
    assert!(docs_of(&v).is_empty(), "{v}");
    for q in ["\"unbalanced", "a AND (b OR", "NEAR(x y", "*", "col:val"] {
        let (st, v) = search(
            &s,
            &key,
            "shop",
            json!({"query": q, "mode": "keyword", "k": 3}),
        )
        .await;
        assert_eq!(st, 200, "{q}: {v}");
    }
    // Filters.
    let (_, v) = search(&s, &key, "shop", json!({"query": "refunds receipt", "mode": "keyword", "k": 5, "filter": {"key_prefix": "policies/"}})).await;
    assert!(
        docs_of(&v).iter().all(|d| d.contains("/policies/")) && !docs_of(&v).is_empty(),
        "{v}"
    );
    let (_, v) = search(&s, &key, "shop", json!({"query": "refunds", "mode": "keyword", "k": 5, "filter": {"content_type": "application/pdf"}})).await;
    assert!(docs_of(&v).is_empty(), "{v}");
    let (_, v) = search(&s, &key, "shop", json!({"query": "warranty", "mode": "keyword", "k": 5, "filter": {"metadata": {"must": [{"key": "ext", "match": {"value": "pdf"}}]}}})).await;
    assert_eq!(docs_of(&v).len(), 1, "{v}");
    // Dense and hybrid need an embedder.
    let (st, v) = search(
        &s,
        &key,
        "shop",
        json!({"query": "refunds", "mode": "dense", "k": 3}),
    )
    .await;
    assert_eq!((st, v["code"].as_str()), (400, Some("no_embedder")), "{v}");
    let (st, _) = search(
        &s,
        &key,
        "shop",
        json!({"query": "refunds", "mode": "fuzzy", "k": 3}),
    )
    .await;
    assert_eq!(st, 400);

    // Change a file: the old chunks are gone.
    let (st, _) = put(
        &s,
        &key,
        "shop",
        "hours.txt",
        "text/plain",
        b"Now open around the clock, every day.".to_vec(),
    )
    .await;
    assert_eq!(st, 201);
    let docs = settle(&s, &key, "shop", 7).await;
    assert_eq!(doc(&docs, "hours.txt")["version"], 2);
    let (_, v) = search(
        &s,
        &key,
        "shop",
        json!({"query": "nine", "mode": "keyword", "k": 5}),
    )
    .await;
    assert!(docs_of(&v).is_empty(), "old chunks gone: {v}");
    let (_, v) = search(
        &s,
        &key,
        "shop",
        json!({"query": "clock", "mode": "keyword", "k": 5}),
    )
    .await;
    assert_eq!(v["results"][0]["version"], 2, "{v}");

    // The same content again: indexed without change, version moves.
    let (st, _) = put(
        &s,
        &key,
        "shop",
        "hours.txt",
        "text/plain",
        b"Now open around the clock, every day.".to_vec(),
    )
    .await;
    assert_eq!(st, 201);
    let docs = settle(&s, &key, "shop", 7).await;
    assert_eq!(
        (
            doc(&docs, "hours.txt")["version"].as_i64(),
            doc(&docs, "hours.txt")["status"].as_str()
        ),
        (Some(3), Some("indexed"))
    );

    // Delete it: no results, no document.
    let r = s
        .req(Method::DELETE, &key_path("shop", "hours.txt"), Some(&key))
        .send()
        .await
        .expect("delete");
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = s.get_ok("/v1/bots/shop/kb/documents", &key).await;
        if v["documents"].as_array().is_some_and(|d| d.len() == 6) {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, v) = search(
        &s,
        &key,
        "shop",
        json!({"query": "clock", "mode": "keyword", "k": 5}),
    )
    .await;
    assert!(docs_of(&v).is_empty(), "{v}");

    // Reindex queues everything again and ends indexed.
    let v = s.post_ok("/v1/bots/shop/kb/reindex", &key, json!({})).await;
    assert_eq!(v["queued"], 6, "{v}");
    let docs = settle(&s, &key, "shop", 6).await;
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");

    // Another bot sees nothing; a reader may search but not reindex.
    let other = s.bot_with_key("other", "admin").await;
    let (st, _) = search(
        &s,
        &other,
        "shop",
        json!({"query": "refunds", "mode": "keyword", "k": 3}),
    )
    .await;
    assert_eq!(st, 404);
    let reader = s.key("shop", "reader").await;
    let (st, _) = search(
        &s,
        &reader,
        "shop",
        json!({"query": "refunds", "mode": "keyword", "k": 3}),
    )
    .await;
    assert_eq!(st, 200);
    let r = s
        .req(Method::POST, "/v1/bots/shop/kb/reindex", Some(&reader))
        .send()
        .await
        .expect("reindex");
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn hostile_files_fail_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data")).await;
    let key = s.bot_with_key("hostile", "writer").await;
    let bomb = testdocs::zip_bomb_docx(300).expect("bomb");
    let files: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("bomb.docx", "application/octet-stream", bomb, "zip_bomb"),
        (
            "fake.pdf",
            "application/pdf",
            b"I am not a PDF at all".to_vec(),
            "invalid_document",
        ),
        ("empty.txt", "text/plain", Vec::new(), "empty_document"),
        (
            "image.png",
            "image/png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "unsupported_type",
        ),
        (
            "good.md",
            "text/markdown",
            b"# Good\n\nThe good document mentions marmalade.".to_vec(),
            "",
        ),
    ];
    for (rel, ct, body, _) in &files {
        let (st, v) = put(&s, &key, "hostile", rel, ct, body.clone()).await;
        assert_eq!(st, 201, "{rel}: {v}");
    }
    // Traversal keys never reach the drive (`%2F` keeps the URL parser
    // from resolving the dots before the server sees them).
    let r = s
        .req(
            Method::PUT,
            "/v1/bots/hostile/files/hostile.gbai/hostile.gbkb/..%2F..%2Fetc%2Fpasswd",
            Some(&key),
        )
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 400);
    let docs = settle(&s, &key, "hostile", files.len()).await;
    for (rel, _, _, code) in &files {
        let d = doc(&docs, rel);
        if code.is_empty() {
            assert_eq!(d["status"], "indexed", "{d}");
        } else {
            assert_eq!(d["status"], "failed", "{d}");
            assert_eq!(d["error_code"], *code, "{d}");
            assert!(d["error"].as_str().is_some_and(|e| e.contains(rel)), "{d}");
        }
    }
    let (st, v) = search(
        &s,
        &key,
        "hostile",
        json!({"query": "marmalade", "mode": "keyword", "k": 3}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(docs_of(&v).len(), 1, "{v}");
    let h = s.http.get(s.at("/health")).send().await.expect("health");
    assert!(h.status().is_success(), "the server stays up");
}

/// Documents the listing shows as `pending` or `indexing`.
/// A large document's status shows how far its indexing got: chunks done
/// of chunks found, done never above found nor going back, and every
/// chunk done once indexed.
#[tokio::test]
async fn a_large_document_shows_its_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(&dir.path().join("data")).await;
    let key = s.bot_with_key("big", "writer").await;
    let book = strata_kb::testdocs::markdown_book(12_000_000, 3).into_bytes();
    let (st, v) = put(&s, &key, "big", "book.md", "text/markdown", book).await;
    assert_eq!(st, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen_in_flight = Vec::new();
    let doc = loop {
        let v = s.get_ok("/v1/bots/big/kb/documents", &key).await;
        let d = v["documents"][0].clone();
        match d["status"].as_str() {
            Some("indexed") => break d,
            Some("indexing") => {
                if let (Some(found), Some(done)) =
                    (d["chunks_found"].as_i64(), d["chunks_done"].as_i64())
                {
                    assert!(done <= found, "{d}");
                    seen_in_flight.push((found, done));
                } else {
                    assert!(d["chunks_done"].is_null(), "{d}");
                }
            }
            Some("pending") => {}
            _ => panic!("unexpected status: {d}"),
        }
        assert!(Instant::now() < deadline, "not indexed in time: {d}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let chunks = doc["chunks"].as_i64().expect("chunks");
    assert!(chunks > 10_000, "{doc}");
    assert_eq!(doc["chunks_found"], chunks, "{doc}");
    assert_eq!(doc["chunks_done"], chunks, "{doc}");
    assert!(
        !seen_in_flight.is_empty(),
        "the progress of the indexing document was never visible"
    );
    for w in seen_in_flight.windows(2) {
        assert_eq!(w[0].0, w[1].0, "chunks found changed: {seen_in_flight:?}");
        assert!(
            w[0].1 <= w[1].1,
            "chunks done went back: {seen_in_flight:?}"
        );
    }
    assert!(seen_in_flight.iter().all(|&(found, _)| found == chunks));
}

async fn busy_documents(s: &Server, key: &str, bot: &str) -> usize {
    let v = s.get_ok(&format!("/v1/bots/{bot}/kb/documents"), key).await;
    v["documents"]
        .as_array()
        .map(|docs| {
            docs.iter()
                .filter(|d| matches!(d["status"].as_str(), Some("pending" | "indexing")))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn sigkill_mid_indexing_then_restart_indexes_everything_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut s = Server::start(&data).await;
    let key = s.bot_with_key("crash", "writer").await;
    let body = |i: usize| {
        // Fixed-width numbers: every document has the same size.
        format!("Document number {i:03} talks about token{i:03}. ")
            .repeat(60)
            .into_bytes()
    };
    // Upload rounds of 40 documents, 8 at a time, until the listing shows
    // the worker behind: the kill must find documents still to index. A
    // worker that keeps up with every round leaves nothing to test.
    const ROUND: usize = 40;
    const MAX_DOCUMENTS: usize = 400;
    let mut n = 0;
    let busy = loop {
        let names: Vec<(usize, String)> = (n..n + ROUND)
            .map(|i| (i, format!("d{i:03}.txt")))
            .collect();
        for wave in names.chunks(8) {
            let puts = wave
                .iter()
                .map(|(i, name)| put(&s, &key, "crash", name, "text/plain", body(*i)));
            for (st, v) in futures::future::join_all(puts).await {
                assert_eq!(st, 201, "{v}");
            }
        }
        n += ROUND;
        let busy = busy_documents(&s, &key, "crash").await;
        if busy > 0 {
            break busy;
        }
        assert!(
            n < MAX_DOCUMENTS,
            "all {n} documents were indexed as fast as they were uploaded: nothing in flight to kill"
        );
    };
    s.kill();
    eprintln!("killed with {busy} of {n} documents pending or indexing");
    let s = Server::start(&data).await;
    let docs = settle(&s, &key, "crash", n).await;
    assert_eq!(docs.len(), n);
    let chunks0 = docs[0]["chunks"].as_i64().expect("chunks");
    assert!(chunks0 >= 2);
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d["status"], "indexed", "{d}");
        assert_eq!(
            d["chunks"].as_i64(),
            Some(chunks0),
            "same size, same chunks: {d}"
        );
        let (_, v) = search(
            &s,
            &key,
            "crash",
            json!({"query": format!("token{i:03}"), "mode": "keyword", "k": 100}),
        )
        .await;
        let hits = docs_of(&v);
        assert_eq!(
            hits.len() as i64,
            chunks0,
            "exactly one copy of each chunk: {v}"
        );
        let mut chunk_ids: Vec<i64> = v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["chunk"].as_i64().unwrap_or(-1))
            .collect();
        chunk_ids.sort();
        chunk_ids.dedup();
        assert_eq!(chunk_ids.len() as i64, chunks0);
    }
}

#[tokio::test]
async fn dense_and_hybrid_with_a_local_model() {
    let Some(model) = strata_testkit::backend(
        "STRATA_TEST_MODEL_DIR",
        "dense_and_hybrid_with_a_local_model",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let embedder = format!("local:{model}");
    let s = Server::start_with(
        &dir.path().join("data"),
        &[("STRATA_EMBEDDER", embedder.as_str())],
    )
    .await;
    let key = s.bot_with_key("dense", "writer").await;
    let docs = [
        (
            "cats.txt",
            "Cats are small domesticated felines that purr and chase mice.",
        ),
        (
            "rust.txt",
            "Rust is a systems programming language focused on memory safety.",
        ),
        (
            "bread.txt",
            "Sourdough bread rises with a natural yeast starter and flour.",
        ),
    ];
    for (rel, text) in docs {
        let (st, _) = put(
            &s,
            &key,
            "dense",
            rel,
            "text/plain",
            text.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(st, 201);
    }
    let listed = settle(&s, &key, "dense", 3).await;
    assert!(
        listed.iter().all(|d| d["status"] == "indexed"),
        "{listed:?}"
    );
    for mode in ["dense", "hybrid"] {
        for (q, want) in [
            ("kitten pets", "cats.txt"),
            ("compiler borrow checker", "rust.txt"),
            ("baking a loaf", "bread.txt"),
        ] {
            let (st, v) =
                search(&s, &key, "dense", json!({"query": q, "mode": mode, "k": 3})).await;
            assert_eq!(st, 200, "{v}");
            assert!(
                docs_of(&v).first().is_some_and(|d| d.ends_with(want)),
                "{mode} {q}: {v}"
            );
        }
    }
    // A changed document's stale vectors are never returned.
    let (st, _) = put(
        &s,
        &key,
        "dense",
        "cats.txt",
        "text/plain",
        b"Volcanoes erupt molten lava and ash.".to_vec(),
    )
    .await;
    assert_eq!(st, 201);
    settle(&s, &key, "dense", 3).await;
    let (_, v) = search(
        &s,
        &key,
        "dense",
        json!({"query": "kitten pets", "mode": "dense", "k": 3}),
    )
    .await;
    assert!(
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| !r["text"].as_str().unwrap_or("").contains("Cats")),
        "{v}"
    );
    let _ = ADMIN_KEY;
}
