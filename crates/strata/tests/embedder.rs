//! The embedder through the facade: opened by `Strata::open` from
//! `STRATA_EMBEDDER`, reported by readiness, a broken model stops start-up.

use strata::{Config, Strata};

#[tokio::test]
async fn none_is_ready_and_answers_no_embedder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strata = Strata::open(Config::embedded(dir.path()))
        .await
        .expect("open");
    assert_eq!(strata.embedder().name(), "none");
    let err = strata
        .embedder()
        .embed(&["hello".to_owned()])
        .await
        .expect_err("none");
    assert_eq!(err.code(), "no_embedder");
    let layer = strata
        .readiness()
        .await
        .into_iter()
        .find(|l| l.layer == "embedder")
        .expect("embedder in readiness");
    assert!(layer.ok && !layer.required);
    assert_eq!(layer.backend, "none");
    strata.close().await;
}

#[tokio::test]
async fn a_model_that_does_not_load_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::embedded(dir.path());
    config.embedder = format!("local:{}", dir.path().join("no-model").display()).into();
    let err = Strata::open(config).await.expect_err("missing model");
    assert_eq!(err.code(), "embedder_load_failed");
    assert!(
        err.message().contains("STRATA_EMBEDDER=local:") && err.message().contains("no-model"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_local_model_is_opened_and_reported() {
    let Some(model) = strata_testkit::backend(
        "STRATA_TEST_MODEL_DIR",
        "a_local_model_is_opened_and_reported",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::embedded(dir.path());
    config.embedder = format!("local:{}", std::path::Path::new(&model).display()).into();
    let strata = Strata::open(config)
        .await
        .expect("open with the local model");
    assert_eq!(strata.embedder().dimension(), Some(384));
    assert!(strata.embedder().name().starts_with("local:"));
    let v = strata
        .embedder()
        .embed(&["Where is my order?".to_owned()])
        .await
        .expect("embed");
    assert_eq!(v[0].len(), 384);
    let layer = strata
        .readiness()
        .await
        .into_iter()
        .find(|l| l.layer == "embedder")
        .expect("embedder in readiness");
    assert_eq!(layer.backend, "local");
    assert!(layer.ok);
    strata.close().await;
}
