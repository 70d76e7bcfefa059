//! The queue, the atomic chunk swap and BM25 keyword search on a real
//! SQLite database.

use serde_json::json;
use strata_core::records::BotStore;
use strata_core::types::BotId;
use strata_core::Error;
use strata_kb::store::{IndexedDocument, KbFilter, KbStore};
use strata_kb::{chunk_text, Chunking, DocKind};
use strata_records::{SqliteDatabase, SqliteOptions, SqliteRecords};

async fn open() -> (tempfile::TempDir, KbStore, BotId) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SqliteDatabase::open(&dir.path().join("s.db"), &SqliteOptions::default())
        .await
        .expect("open");
    let records = SqliteRecords::new(db.clone());
    let bot = BotId::parse("acme").expect("bot");
    records.create_bot(&bot, "Acme").await.expect("create bot");
    (dir, KbStore::new(db), bot)
}

fn doc(version: i64, fp: &str, key: &str) -> IndexedDocument {
    IndexedDocument {
        version,
        content_sha256: format!("sha-{fp}"),
        content_type: "text/plain".into(),
        fingerprint: fp.into(),
        embedder: "none".into(),
        meta: json!({ "key": key, "lang": if key.contains("pt") { "pt" } else { "en" } }),
    }
}

async fn index(store: &KbStore, bot: &BotId, key: &str, version: i64, fp: &str, text: &str) {
    store
        .enqueue(bot, key, Some(version), false)
        .await
        .expect("enqueue");
    let job = store.claim(60_000).await.expect("claim").expect("a job");
    assert_eq!(job.key, key);
    let chunks = chunk_text(
        text,
        DocKind::Text,
        Chunking {
            size: 200,
            overlap: 0,
        },
    )
    .expect("chunks");
    assert!(store
        .complete_index(&job, doc(version, fp, key), chunks, None)
        .await
        .expect("complete"));
}

#[tokio::test]
async fn keyword_search_ranks_by_bm25_and_survives_hostile_queries() {
    let (_d, store, bot) = open().await;
    index(
        &store,
        &bot,
        "k/refunds.txt",
        1,
        "a",
        "Refunds are paid within thirty days. Refunds need a receipt. Refunds refunds.",
    )
    .await;
    index(
        &store,
        &bot,
        "k/shipping.txt",
        1,
        "b",
        "Shipping takes five days. Refunds for shipping are not paid.",
    )
    .await;
    index(
        &store,
        &bot,
        "k/pt/horario.txt",
        1,
        "c",
        "Abrimos às nove horas, de segunda a sexta.",
    )
    .await;
    let hits = store
        .keyword_search(&bot, "refunds", 10, &KbFilter::default())
        .await
        .expect("search");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].key, "k/refunds.txt", "more occurrences rank first");
    assert!(hits[0].score > hits[1].score);
    // Diacritics folded.
    let hits = store
        .keyword_search(&bot, "as nove", 10, &KbFilter::default())
        .await
        .expect("search");
    assert_eq!(hits[0].key, "k/pt/horario.txt");
    for q in [
        "\"",
        "refunds\" OR",
        "NEAR(a b)",
        "*",
        "a:b",
        "(((",
        "-x",
        "'; DROP TABLE kb_chunks; --",
    ] {
        store
            .keyword_search(&bot, q, 5, &KbFilter::default())
            .await
            .expect(q);
    }
    // Filters: prefix, content type, metadata.
    let f = KbFilter {
        key_prefix: Some("k/pt/".into()),
        ..Default::default()
    };
    assert!(store
        .keyword_search(&bot, "refunds", 10, &f)
        .await
        .expect("prefix")
        .is_empty());
    let f = KbFilter {
        content_type: Some("application/pdf".into()),
        ..Default::default()
    };
    assert!(store
        .keyword_search(&bot, "refunds", 10, &f)
        .await
        .expect("ctype")
        .is_empty());
    let meta = strata_core::filter::Filter::parse(
        &json!({"must": [{"key": "key", "match": {"value": "k/shipping.txt"}}]}),
    )
    .expect("filter");
    let f = KbFilter {
        metadata: Some(meta),
        ..Default::default()
    };
    let hits = store
        .keyword_search(&bot, "refunds", 10, &f)
        .await
        .expect("meta");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, "k/shipping.txt");
    // Another bot sees nothing.
    let other = BotId::parse("other").expect("bot");
    assert!(store
        .keyword_search(&other, "refunds", 10, &KbFilter::default())
        .await
        .expect("other")
        .is_empty());
}

#[tokio::test]
async fn reindexing_replaces_chunks_and_removal_clears_them() {
    let (_d, store, bot) = open().await;
    index(&store, &bot, "k/a.txt", 1, "a", "alpha bravo charlie").await;
    index(&store, &bot, "k/a.txt", 2, "b", "delta echo foxtrot").await;
    assert!(store
        .keyword_search(&bot, "alpha", 5, &KbFilter::default())
        .await
        .expect("s")
        .is_empty());
    let hits = store
        .keyword_search(&bot, "echo", 5, &KbFilter::default())
        .await
        .expect("s");
    assert_eq!((hits[0].version, hits.len()), (2, 1));
    assert_eq!(
        store.chunk_count(&bot, "k/a.txt").await.expect("count"),
        (1, 1)
    );
    // The same content again: only the version moves.
    store
        .enqueue(&bot, "k/a.txt", Some(3), false)
        .await
        .expect("enqueue");
    let job = store.claim(60_000).await.expect("claim").expect("job");
    assert!(store.complete_unchanged(&job, 3).await.expect("unchanged"));
    let docs = store.documents(&bot, "", None, 10).await.expect("docs");
    assert_eq!(
        (docs[0].version, docs[0].status.as_str(), docs[0].chunks),
        (Some(3), "indexed", 1)
    );
    // Removal.
    store
        .enqueue(&bot, "k/a.txt", None, false)
        .await
        .expect("enqueue");
    let job = store.claim(60_000).await.expect("claim").expect("job");
    assert!(store.complete_removed(&job).await.expect("removed"));
    assert!(store
        .keyword_search(&bot, "echo", 5, &KbFilter::default())
        .await
        .expect("s")
        .is_empty());
    assert!(store
        .documents(&bot, "", None, 10)
        .await
        .expect("docs")
        .is_empty());
    assert_eq!(store.open_jobs().await.expect("jobs"), 0);
}

#[tokio::test]
async fn retries_are_bounded_and_interrupted_jobs_resume() {
    let (_d, store, bot) = open().await;
    store
        .enqueue(&bot, "k/x.txt", Some(1), false)
        .await
        .expect("enqueue");
    let err = Error::unavailable("drive down");
    for attempt in 1..=3 {
        let job = store.claim(60_000).await.expect("claim").expect("job");
        assert_eq!(job.attempts, attempt);
        store
            .fail(&job, &err, false, 3, 0, Some(1))
            .await
            .expect("fail");
    }
    assert!(
        store.claim(60_000).await.expect("claim").is_none(),
        "no endless loop"
    );
    let d = &store.documents(&bot, "", None, 10).await.expect("docs")[0];
    assert_eq!(d.status, "failed");
    assert_eq!(d.error.as_deref(), Some("drive down"));
    // A job left running by a dead process is queued again at start.
    store
        .enqueue(&bot, "k/y.txt", Some(1), false)
        .await
        .expect("enqueue");
    let job = store.claim(60_000).await.expect("claim").expect("job");
    assert!(
        store.claim(60_000).await.expect("claim").is_none(),
        "leased"
    );
    assert_eq!(store.recover(3).await.expect("recover"), 1);
    let again = store
        .claim(60_000)
        .await
        .expect("claim")
        .expect("job again");
    assert_eq!((again.id, again.attempts), (job.id, 2));
    // An expired lease is claimable without a restart.
    store.recover(3).await.expect("recover");
    let j = store.claim(-1).await.expect("claim").expect("job");
    let j2 = store
        .claim(60_000)
        .await
        .expect("claim")
        .expect("expired lease");
    assert_eq!(j.id, j2.id);
    // A permanent failure fails at once.
    store
        .fail(
            &j2,
            &Error::invalid("bad").with_code("invalid_document"),
            true,
            3,
            0,
            Some(1),
        )
        .await
        .expect("fail");
    let docs = store.documents(&bot, "k/y", None, 10).await.expect("docs");
    assert_eq!(
        (docs[0].status.as_str(), docs[0].error_code.as_deref()),
        ("failed", Some("invalid_document"))
    );
}

/// A knowledge base indexed before contextual chunk headers (chunker 1: no
/// heads, a one-column FTS table) is brought up to date at start: the
/// keyword table gets its `head` column at once (old chunks keep serving
/// searches) and every indexed document is queued again; re-indexing it
/// records the current chunker, and the next start queues nothing.
#[tokio::test]
async fn documents_from_an_older_chunker_are_requeued_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SqliteDatabase::open(&dir.path().join("s.db"), &SqliteOptions::default())
        .await
        .expect("open");
    let records = SqliteRecords::new(db.clone());
    let bot = BotId::parse("acme").expect("bot");
    records.create_bot(&bot, "Acme").await.expect("create bot");
    let store = KbStore::new(db.clone());
    let key = "acme.gbai/acme.gbkb/policy.md";
    let text = "Customers may return goods within thirty days.";
    index(&store, &bot, key, 1, "fp1", text).await;
    // What the old code path left: chunker 1, no heads, a keyword table
    // with the text column only.
    let fts = strata_kb::store::fts_table(bot.as_str());
    let old = fts.clone();
    db.write(move |c| {
        c.execute_batch(&format!(
            "UPDATE kb_documents SET chunker = 1;
             UPDATE kb_chunks SET head = '';
             DROP TABLE \"{old}\";
             CREATE VIRTUAL TABLE \"{old}\" USING fts5(text, content = '', contentless_delete = 1,
                 tokenize = 'unicode61 remove_diacritics 2');
             INSERT INTO \"{old}\" (rowid, text) SELECT id, text FROM kb_chunks;"
        ))
        .map_err(strata_records::sqlite::map_sqlite_error)
    })
    .await
    .expect("downgrade");
    let found = |store: KbStore, bot: BotId, q: &'static str| async move {
        store
            .keyword_search(&bot, q, 5, &KbFilter::default())
            .await
            .expect("search")
            .len()
    };
    assert_eq!(found(store.clone(), bot.clone(), "goods").await, 1);

    // Start: the keyword table is rebuilt with its head column, the
    // document queued again, its old chunks still found meanwhile.
    assert_eq!(store.prepare().await.expect("prepare"), 1);
    let docs = store.documents(&bot, "", None, 10).await.expect("docs");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].status, "pending");
    assert_eq!(found(store.clone(), bot.clone(), "goods").await, 1);
    // A second start before the worker ran queues nothing more.
    assert_eq!(store.requeue_outdated().await.expect("requeue"), 0);

    // The worker re-indexes it with heads.
    let job = store.claim(60_000).await.expect("claim").expect("a job");
    assert_eq!(job.key, key);
    assert!(store.claim(60_000).await.expect("claim").is_none());
    let chunks = chunk_text(text, DocKind::Markdown, Chunking::default()).expect("chunks");
    let heads = strata_kb::chunk_heads("policy.md", text, DocKind::Markdown, &chunks);
    assert_eq!(heads, ["policy.md"]);
    assert!(store
        .complete_index_with_heads(&job, doc(1, "fp2", key), chunks, heads, None)
        .await
        .expect("complete"));
    let docs = store.documents(&bot, "", None, 10).await.expect("docs");
    assert_eq!(docs[0].status, "indexed");
    // The head is indexed: the file's name finds the chunk.
    assert_eq!(found(store.clone(), bot.clone(), "policy").await, 1);
    assert_eq!(found(store.clone(), bot.clone(), "goods").await, 1);
    // Current everywhere: the next start neither rebuilds nor queues.
    assert_eq!(store.prepare().await.expect("prepare"), 0);
    assert!(store.claim(60_000).await.expect("claim").is_none());
    let chunker: i64 = db
        .read(|c| {
            c.query_row("SELECT chunker FROM kb_documents", [], |r| r.get(0))
                .map_err(strata_records::sqlite::map_sqlite_error)
        })
        .await
        .expect("chunker");
    assert_eq!(chunker, strata_kb::CHUNKER_VERSION);
}
