//! Test harness: runs the real `strata serve` binary on a temporary data
//! folder and a free loopback port.
#![allow(dead_code)]

pub mod embedder;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A running `strata serve` process.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Server {
    /// Starts the server on `data_dir` with extra environment variables and
    /// waits until `/health` answers.
    pub async fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_logged(data_dir, env, None).await
    }

    /// Like [`Server::start_with`], with the process's stdout and stderr
    /// appended to `log` (when given; `STRATA_LOG` may be set in `env`).
    pub async fn start_logged(data_dir: &Path, env: &[(&str, &str)], log: Option<&Path>) -> Server {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.arg("serve")
            .env_remove("STRATA_CONFIG")
            .env("STRATA_DATA_DIR", data_dir)
            .env("STRATA_LISTEN", format!("127.0.0.1:{port}"))
            .env("STRATA_ADMIN_KEY", ADMIN_KEY)
            .env("STRATA_LOG", "warn");
        match log {
            Some(path) => {
                let open = || {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("open the server log")
                };
                cmd.stdout(open()).stderr(open());
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn strata serve");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let server = Server {
            child: Some(child),
            url,
            data_dir: data_dir.to_owned(),
            http,
        };
        server.wait_ready().await;
        server
    }

    /// Starts the server on `data_dir` with the default settings.
    pub async fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[]).await
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{}/health", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "strata serve did not become healthy in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILLs the process (no shutdown hooks run) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM: a graceful stop (shutdown hooks run); waits for the exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits at most `max` for the process to exit; returns
    /// how long it took, or `None` when it did not exit in time (it is then
    /// killed).
    pub fn terminate_within(&mut self, max: Duration) -> Option<Duration> {
        let mut c = self.child.take()?;
        let started = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        while started.elapsed() < max {
            if let Ok(Some(_)) = c.try_wait() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// `{url}{path}`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// A request builder with a bearer key.
    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.at(path));
        match key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// POST JSON as `key`, expecting a success status; returns the body.
    pub async fn post_ok(
        &self,
        path: &str,
        key: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let r = self
            .req(reqwest::Method::POST, path, Some(key))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let v: serde_json::Value = r.json().await.expect("json body");
        assert!(status.is_success(), "POST {path} -> {status}: {v}");
        v
    }

    /// GET as `key`, expecting success; returns the JSON body.
    pub async fn get_ok(&self, path: &str, key: &str) -> serde_json::Value {
        let r = self
            .req(reqwest::Method::GET, path, Some(key))
            .send()
            .await
            .expect("request");
        let status = r.status();
        let v: serde_json::Value = r.json().await.expect("json body");
        assert!(status.is_success(), "GET {path} -> {status}: {v}");
        v
    }

    /// Creates a bot and a key of `role` for it; returns the key.
    /// A bot id that was just deleted is free again once its purge ended:
    /// creating it waits for that (`409 bot_deleting` meanwhile).
    pub async fn bot_with_key(&self, bot: &str, role: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .req(reqwest::Method::POST, "/v1/bots", Some(ADMIN_KEY))
                .json(&serde_json::json!({ "id": bot, "name": bot }))
                .send()
                .await
                .expect("create bot");
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if status.as_u16() == 409 && body["code"] == "bot_deleting" {
                assert!(
                    Instant::now() < deadline,
                    "the deleted bot {bot} was not purged in 30 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert!(
                status.is_success() || status.as_u16() == 409,
                "create bot: {status} {body}"
            );
            return self.key(bot, role).await;
        }
    }

    /// Creates a key of `role` for an existing bot.
    pub async fn key(&self, bot: &str, role: &str) -> String {
        let v = self
            .post_ok(
                &format!("/v1/bots/{bot}/keys"),
                ADMIN_KEY,
                serde_json::json!({ "name": role, "role": role }),
            )
            .await;
        v["key"].as_str().expect("key in response").to_owned()
    }
}

/// Client requests around a kill, so a crash test can show that work was in
/// flight when the server died: how many requests are outstanding now, and
/// when each request that never got its answer was sent.
#[derive(Debug, Default)]
pub struct InFlight {
    outstanding: AtomicUsize,
    unanswered: Mutex<Vec<Instant>>,
}

impl InFlight {
    /// A request is about to be sent; returns when.
    pub fn start(&self) -> Instant {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        Instant::now()
    }

    /// The request sent at `started` got a response (any status).
    pub fn answered(&self) {
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
    }

    /// The request sent at `started` got no (complete) response.
    pub fn unanswered(&self, started: Instant) {
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        self.unanswered.lock().expect("lock").push(started);
    }

    /// Waits (up to 10 s) until at least one request is outstanding, so a
    /// kill that follows lands while work is in flight.
    pub async fn wait_for_outstanding(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.outstanding.load(Ordering::SeqCst) == 0 {
            assert!(
                Instant::now() < deadline,
                "no request was outstanding for 10 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Requests sent before `kill` that never got their answer: they were
    /// in flight when the server was killed.
    pub fn cut_off_by(&self, kill: Instant) -> usize {
        self.unanswered
            .lock()
            .expect("lock")
            .iter()
            .filter(|started| **started < kill)
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
