//! The local embedder against sentence-transformers' own vectors, and its
//! behaviour on batches, order and broken model folders.

mod common;

use std::time::Instant;

use common::{cosine, fixture, model_dir, norm};
use strata_embed::{open_embedder, LocalEmbedder, LocalEngine, LocalPrecision, LOCAL_BATCH_SIZE};

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

/// The accuracy gate of the bf16 engine: every text's vector within a
/// cosine of 0.999 of the f32 engine's (which itself equals
/// sentence-transformers' to float32 rounding).
#[tokio::test]
async fn bf16_products_keep_every_vector_within_the_accuracy_gate() {
    let Some(dir) = model_dir("bf16_products_keep_every_vector_within_the_accuracy_gate") else {
        return;
    };
    if !strata_bf16::supported() {
        // Not a silent pass: the engine must refuse to open here.
        let err = LocalEmbedder::open_with(&dir, LocalEngine::PackedBf16)
            .expect_err("bf16 without AVX-512 BF16");
        assert!(err.message().contains("AVX-512 BF16"), "{err}");
        assert_eq!(LocalPrecision::Auto.engine(), LocalEngine::Packed);
        return;
    }
    assert_eq!(LocalPrecision::Auto.engine(), LocalEngine::PackedBf16);
    let f32_engine = LocalEmbedder::open_with(&dir, LocalEngine::Packed).expect("f32");
    let bf16_engine = LocalEmbedder::open_with(&dir, LocalEngine::PackedBf16).expect("bf16");
    let fixture = fixture();
    let texts: Vec<String> = fixture.texts.iter().map(|t| t.text.clone()).collect();
    let exact = f32_engine.embed_blocking(&texts).expect("f32 vectors");
    let fast = bf16_engine.embed_blocking(&texts).expect("bf16 vectors");
    let (mut worst_f32, mut worst_bf16) = (f64::MAX, f64::MAX);
    for ((t, e), f) in fixture.texts.iter().zip(&exact).zip(&fast) {
        let c_f32 = cosine(e, &t.vector);
        assert!(c_f32 >= 0.99999, "text {}: f32 engine cosine {c_f32}", t.id);
        let c = cosine(f, e);
        assert!(
            c >= 0.999,
            "text {} ({}): the bf16 vector has cosine {c:.6} with the f32 one",
            t.id,
            t.why
        );
        assert!((norm(f) - 1.0).abs() < 1e-4, "text {} not normalised", t.id);
        worst_f32 = worst_f32.min(c_f32);
        worst_bf16 = worst_bf16.min(c);
    }
    // bf16 is not f32 under another name: the vectors differ somewhere.
    assert!(worst_bf16 < 0.999_999_9, "bf16 equals f32: {worst_bf16}");
    eprintln!(
        "{} texts: minimum cosine f32 vs sentence-transformers {worst_f32:.7}, bf16 vs f32 {worst_bf16:.7}",
        texts.len()
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
