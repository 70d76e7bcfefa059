//! Tenancy through the facade (issue 10): keyword search ranks each bot's
//! chunks with that bot's own statistics, and a deleted bot disappears at
//! once while its purge is durable and idempotent.

use strata::{Config, Principal, Role, Strata};
use strata_core::drive::ByteStream;

fn body(text: &str) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from(
        text.to_owned(),
    ))]))
}

async fn bot(strata: &Strata, id: &str) -> strata::BotScope {
    strata
        .create_bot(&Principal::Admin, id, id)
        .await
        .expect("bot");
    strata
        .scope(&Principal::Admin, id, Role::Admin)
        .await
        .expect("scope")
}

async fn upload(scope: &strata::BotScope, bot: &str, name: &str, text: &str) {
    scope
        .put_file(
            &format!("{bot}.gbai/{bot}.gbkb/{name}"),
            body(text),
            Some("text/markdown"),
            None,
        )
        .await
        .expect("upload");
}

async fn keyword(scope: &strata::BotScope, q: &str) -> Vec<(String, f32)> {
    scope
        .kb_search(strata::kb::SearchQuery {
            query: q.to_owned(),
            mode: strata::kb::SearchMode::Keyword,
            k: 10,
            filter: Default::default(),
            fusion: None,
        })
        .await
        .expect("search")
        .into_iter()
        .map(|h| (h.document, h.score))
        .collect()
}

/// A bot's keyword scores do not change when another bot adds documents
/// that hold the same words: the index and its BM25 statistics are the
/// bot's own.
#[tokio::test(flavor = "multi_thread")]
async fn keyword_scores_are_each_bots_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strata = Strata::open(Config::embedded(dir.path()))
        .await
        .expect("open");
    let kb = strata.knowledge_base().expect("kb").clone();
    let small = bot(&strata, "small").await;
    for (i, text) in [
        "# Refunds\nRefunds are paid within five days of the return.",
        "# Shipping\nParcels ship the next working day; refunds for lost parcels too.",
        "# Hours\nThe shop opens at nine.",
    ]
    .iter()
    .enumerate()
    {
        upload(&small, "small", &format!("d{i}.md"), text).await;
    }
    kb.drain().await.expect("index");
    let queries = ["refunds", "parcels refunds days", "shop opens"];
    let mut before = Vec::new();
    for q in queries {
        let hits = keyword(&small, q).await;
        assert!(!hits.is_empty(), "{q}");
        before.push(hits);
    }

    // Another bot holds many documents full of the same words.
    let big = bot(&strata, "big").await;
    for i in 0..150 {
        upload(
            &big,
            "big",
            &format!("b{i}.md"),
            &format!("# Note {i}\nrefunds refunds parcels days shop opens refunds {i}"),
        )
        .await;
    }
    kb.drain().await.expect("index");
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(&keyword(&small, q).await, want, "scores of {q:?} changed");
    }
    // And the big bot never sees the small bot's documents.
    assert!(keyword(&big, "shipping")
        .await
        .iter()
        .all(|(d, _)| d.starts_with("big.gbai/")));
}

/// Deleting a bot: gone at once and its id taken until the purge ends; the
/// purge survives a restart (a fresh process) and running it twice is
/// harmless; afterwards the id starts empty in every layer.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_bot_is_purged_durably_and_idempotently() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let strata = Strata::open(Config::embedded(dir.path()))
            .await
            .expect("open");
        let scope = bot(&strata, "doomed").await;
        scope
            .kv_put("k", bytes::Bytes::from_static(b"v"), None)
            .await
            .expect("kv");
        upload(&scope, "doomed", "a.md", "# A\nwords").await;
        strata
            .knowledge_base()
            .expect("kb")
            .drain()
            .await
            .expect("index");
        strata
            .delete_bot(&Principal::Admin, "doomed")
            .await
            .expect("delete");
        // Gone at once; the id cannot be taken yet.
        assert_eq!(
            strata
                .scope(&Principal::Admin, "doomed", Role::Reader)
                .await
                .expect_err("gone")
                .code(),
            "not_found"
        );
        let reuse = strata
            .create_bot(&Principal::Admin, "doomed", "again")
            .await
            .expect_err("purging");
        assert_eq!(reuse.code(), "bot_deleting");
        // The process ends before any purge ran (no workers here).
        strata.close().await;
    }
    let strata = Strata::open(Config::embedded(dir.path()))
        .await
        .expect("reopen");
    assert_eq!(
        strata
            .create_bot(&Principal::Admin, "doomed", "again")
            .await
            .expect_err("still purging")
            .code(),
        "bot_deleting"
    );
    assert_eq!(strata.purge_deleted_bots().await.expect("purge"), 1);
    assert_eq!(strata.purge_deleted_bots().await.expect("again"), 0);
    let scope = bot(&strata, "doomed").await;
    assert_eq!(
        scope.kv_get("k").await.expect_err("kv gone").code(),
        "not_found"
    );
    assert!(scope
        .kb_documents(None, None, None)
        .await
        .expect("documents")
        .documents
        .is_empty());
    assert!(keyword(&scope, "words").await.is_empty());
}
