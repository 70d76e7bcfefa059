//! The committed `docs/openapi.json` is the document the code generates.
//! Regenerate it with `STRATA_BLESS=1 cargo test -p strata-server --test openapi_doc`.

use std::path::PathBuf;

#[test]
fn committed_openapi_document_is_current() {
    let doc = strata_server::openapi();
    let json = serde_json::to_string_pretty(&doc).expect("serialise") + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("STRATA_BLESS").is_some() {
        std::fs::write(&path, &json).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == json,
        "docs/openapi.json is out of date: run STRATA_BLESS=1 cargo test -p strata-server --test openapi_doc"
    );
}

#[test]
fn every_operation_is_documented() {
    let doc = serde_json::to_value(strata_server::openapi()).expect("serialise");
    let paths = doc["paths"].as_object().expect("paths");
    let mut ops = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            ops += 1;
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has no tag"
            );
        }
    }
    assert!(
        ops >= 50,
        "expected the foundation's operations, found {ops}"
    );
}
