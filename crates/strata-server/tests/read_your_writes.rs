//! Read-your-writes through every cache in the request path: random
//! interleavings of message appends, kv upserts, session state changes and
//! reads (history tails served from the history cache, sessions resolved
//! through the session cache) against a model. Every read must show every
//! write acknowledged before it.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{json, Value};
use strata::{ConfigBuilder, Strata};
use tower::ServiceExt;

const ADMIN: &str = "ryw-admin-key-0123456789";

#[derive(Debug, Clone)]
enum Op {
    Append { conv: usize, text: String },
    ReadTail { conv: usize, limit: i64 },
    ReadAfter { conv: usize, after: i64 },
    KvPut { key: usize, value: String },
    KvGet { key: usize },
    SetState { n: i64 },
    Resolve,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, "[a-z]{1,8}").prop_map(|(conv, text)| Op::Append { conv, text }),
        3 => (0..2usize, 1..6i64).prop_map(|(conv, limit)| Op::ReadTail { conv, limit }),
        1 => (0..2usize, 0..8i64).prop_map(|(conv, after)| Op::ReadAfter { conv, after }),
        2 => (0..3usize, "[a-z]{1,8}").prop_map(|(key, value)| Op::KvPut { key, value }),
        2 => (0..3usize).prop_map(|key| Op::KvGet { key }),
        1 => (0..1000i64).prop_map(|n| Op::SetState { n }),
        2 => Just(Op::Resolve),
    ]
}

struct App {
    router: axum::Router,
}

impl App {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        raw: Option<&str>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN}"));
        let body = match (body, raw) {
            (Some(v), _) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            (None, Some(r)) => Body::from(r.to_owned()),
            _ => Body::empty(),
        };
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("response");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, bytes) = self.call(method, path, body, None).await;
        assert!(
            status.is_success(),
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).expect("json")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_read_sees_every_acknowledged_write(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        runtime().block_on(async {
            let config = ConfigBuilder::default().data_dir(dir.path()).admin_key(ADMIN).build().expect("config");
            let strata = Strata::open(config).await.expect("open");
            let app = App { router: strata_server::router(strata.clone()) };
            app.json("POST", "/v1/bots", Some(json!({ "id": "ryw", "name": "ryw" }))).await;
            app.json("POST", "/v1/bots/ryw/users", Some(json!({ "id": "u" }))).await;
            for c in 0..2 {
                app.json("POST", "/v1/bots/ryw/conversations", Some(json!({ "id": format!("c{c}"), "user_id": "u" }))).await;
            }
            let session = app.json("POST", "/v1/bots/ryw/sessions", Some(json!({ "user_id": "u", "state": { "n": -1 } }))).await;
            let token = session["token"].as_str().expect("token").to_owned();
            let session_id = session["id"].as_str().expect("id").to_owned();

            let mut messages: [Vec<String>; 2] = [Vec::new(), Vec::new()];
            let mut kv: [Option<String>; 3] = [None, None, None];
            let mut state = -1i64;
            for op in &ops {
                match op {
                    Op::Append { conv, text } => {
                        let m = app.json("POST", &format!("/v1/bots/ryw/conversations/c{conv}/messages"), Some(json!({ "role": "user", "content": text }))).await;
                        messages[*conv].push(text.clone());
                        prop_assert_eq!(m["seq"].as_i64(), Some(messages[*conv].len() as i64));
                    }
                    Op::ReadTail { conv, limit } => {
                        let page = app.json("GET", &format!("/v1/bots/ryw/conversations/c{conv}/messages?latest=true&limit={limit}"), None).await;
                        let got: Vec<String> = page["messages"].as_array().expect("messages").iter().map(|m| m["content"].as_str().unwrap_or("").to_owned()).collect();
                        let all = &messages[*conv];
                        let expected: Vec<String> = all[all.len().saturating_sub(*limit as usize)..].to_vec();
                        prop_assert_eq!(got, expected);
                    }
                    Op::ReadAfter { conv, after } => {
                        let page = app.json("GET", &format!("/v1/bots/ryw/conversations/c{conv}/messages?after_seq={after}"), None).await;
                        let got: Vec<String> = page["messages"].as_array().expect("messages").iter().map(|m| m["content"].as_str().unwrap_or("").to_owned()).collect();
                        let expected: Vec<String> = messages[*conv].iter().skip(*after as usize).cloned().collect();
                        prop_assert_eq!(got, expected);
                    }
                    Op::KvPut { key, value } => {
                        let (status, _) = app.call("PUT", &format!("/v1/bots/ryw/kv/k{key}"), None, Some(value)).await;
                        prop_assert_eq!(status, StatusCode::NO_CONTENT);
                        kv[*key] = Some(value.clone());
                    }
                    Op::KvGet { key } => {
                        let (status, body) = app.call("GET", &format!("/v1/bots/ryw/kv/k{key}"), None, None).await;
                        match &kv[*key] {
                            Some(v) => {
                                prop_assert_eq!(status, StatusCode::OK);
                                prop_assert_eq!(String::from_utf8_lossy(&body).into_owned(), v.clone());
                            }
                            None => prop_assert_eq!(status, StatusCode::NOT_FOUND),
                        }
                    }
                    Op::SetState { n } => {
                        app.json("PATCH", &format!("/v1/bots/ryw/sessions/{session_id}"), Some(json!({ "state": { "n": n } }))).await;
                        state = *n;
                    }
                    Op::Resolve => {
                        let s = app.json("POST", "/v1/bots/ryw/sessions/resolve", Some(json!({ "token": token }))).await;
                        prop_assert_eq!(s["state"]["n"].as_i64(), Some(state));
                    }
                }
            }
            strata.close().await;
            Ok(())
        })?;
    }
}
