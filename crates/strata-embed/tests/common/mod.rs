//! Shared by the embedder tests: the model folder and the reference fixture.

#![allow(dead_code)]

use std::path::PathBuf;

use serde::Deserialize;

/// `STRATA_TEST_MODEL_DIR` (`bash scripts/test.sh` sets it from
/// `scripts/fetch-model.sh`); without it a local-model test is skipped
/// loudly, or fails under CI (`strata_testkit::backend`).
#[track_caller]
pub fn model_dir(test: &str) -> Option<PathBuf> {
    strata_testkit::backend("STRATA_TEST_MODEL_DIR", test).map(PathBuf::from)
}

#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub model: String,
    pub source: String,
    pub texts: Vec<FixtureText>,
}

#[derive(Debug, Deserialize)]
pub struct FixtureText {
    pub id: u64,
    pub why: String,
    pub min_word_pieces: usize,
    pub text: String,
    pub vector: Vec<f32>,
}

pub fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/minilm_reference.json");
    let text = std::fs::read_to_string(&path).expect("read the fixture");
    serde_json::from_str(&text).expect("parse the fixture")
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "dimensions differ");
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    dot / (na.sqrt() * nb.sqrt())
}

pub fn norm(a: &[f32]) -> f64 {
    a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}
