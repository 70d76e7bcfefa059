//! The local embedder against sentence-transformers' own vectors, and its
//! behaviour on batches, order and broken model folders.

mod common;

use std::time::Instant;

use common::{cosine, fixture, model_dir, norm};
use strata_embed::{open_embedder, LocalEmbedder, LOCAL_BATCH_SIZE};

#[tokio::test]
async fn vectors_match_sentence_transformers() {
    let Some(dir) = model_dir("vectors_match_sentence_transformers") else {
        return;
    };
    let embedder = open_embedder(&format!("local:{}", dir.display()), None)
        .await
        .expect("open the local embedder");
    assert_eq!(embedder.dimension(), Some(384));
    let folder = dir.file_name().expect("folder name").to_string_lossy();
    assert_eq!(embedder.name(), format!("local:{folder}"));

    let fixture = fixture();
    assert!(
        fixture.texts.len() >= 30,
        "the fixture has {} texts",
        fixture.texts.len()
    );
    assert!(
        fixture.texts.iter().any(|t| t.min_word_pieces > 256),
        "the fixture must hold texts longer than the 256-piece limit"
    );
    let texts: Vec<String> = fixture.texts.iter().map(|t| t.text.clone()).collect();
    let started = Instant::now();
    let vectors = embedder.embed(&texts).await.expect("embed");
    eprintln!(
        "embedded {} fixture texts in {:?}",
        texts.len(),
        started.elapsed()
    );
    assert_eq!(vectors.len(), texts.len());

    let mut worst = (f64::MAX, 0u64, String::new());
    for (t, v) in fixture.texts.iter().zip(&vectors) {
        assert_eq!(v.len(), 384);
        assert!(
            (norm(v) - 1.0).abs() < 1e-4,
            "text {} is not normalised",
            t.id
        );
        let c = cosine(v, &t.vector);
        if c < worst.0 {
            worst = (c, t.id, t.why.clone());
        }
        assert!(
            c >= 0.999,
            "text {} ({}) has cosine {c:.6} with sentence-transformers' vector: {:?}",
            t.id,
            t.why,
            t.text
        );
    }
    eprintln!(
        "minimum cosine with sentence-transformers over {} texts: {:.9} (1 - cos = {:.2e}; text {}, {})",
        fixture.texts.len(),
        worst.0,
        1.0 - worst.0,
        worst.1,
        worst.2
    );
}

#[tokio::test]
async fn batching_and_order_do_not_change_vectors() {
    let Some(dir) = model_dir("batching_and_order_do_not_change_vectors") else {
        return;
    };
    let embedder = open_embedder(&format!("local:{}", dir.display()), None)
        .await
        .expect("open");
    let fixture = fixture();
    // More than two batches, lengths mixed, some repeated.
    let texts: Vec<String> = fixture
        .texts
        .iter()
        .chain(fixture.texts.iter().rev())
        .map(|t| t.text.clone())
        .take(LOCAL_BATCH_SIZE * 2 + 5)
        .collect();
    let together = embedder.embed(&texts).await.expect("embed together");
    assert_eq!(together.len(), texts.len());
    for (i, text) in texts.iter().enumerate().step_by(7) {
        let alone = embedder
            .embed(std::slice::from_ref(text))
            .await
            .expect("embed alone");
        let c = cosine(&alone[0], &together[i]);
        assert!(c > 0.99999, "text {i}: alone vs in a batch cosine {c}");
    }
    assert!(embedder.embed(&[]).await.expect("empty").is_empty());
    let empty = embedder.embed(&[String::new()]).await.expect("empty text");
    assert!((norm(&empty[0]) - 1.0).abs() < 1e-4);
}

#[test]
fn broken_model_folders_are_clear_errors() {
    let missing = LocalEmbedder::open("/nonexistent/strata-model").expect_err("missing folder");
    assert_eq!(missing.code(), "embedder_load_failed");
    assert!(
        missing.message().contains("does not exist"),
        "{}",
        missing.message()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let err = LocalEmbedder::open(dir.path()).expect_err("empty folder");
    assert!(
        err.message().contains("config.json is missing"),
        "{}",
        err.message()
    );

    std::fs::write(dir.path().join("config.json"), "{\"not\": \"bert\"}").expect("write");
    std::fs::write(dir.path().join("tokenizer.json"), "{}").expect("write");
    std::fs::write(dir.path().join("model.safetensors"), b"garbage").expect("write");
    let err = LocalEmbedder::open(dir.path()).expect_err("bad config");
    assert!(err.message().contains("config.json"), "{}", err.message());

    if let Some(model) = model_dir("broken_model_folders_are_clear_errors (real config part)") {
        for f in ["config.json", "tokenizer.json"] {
            std::fs::copy(model.join(f), dir.path().join(f)).expect("copy");
        }
        let err = LocalEmbedder::open(dir.path()).expect_err("bad weights");
        assert_eq!(err.code(), "embedder_load_failed");
        assert!(
            err.message().contains("model.safetensors"),
            "{}",
            err.message()
        );
    }
}
