//! The scenarios: how each is prepared through the API, and the closed loop
//! that measures one cell (one scenario at one client count).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::CellResult;

/// Messages in the `history` conversation.
pub(crate) const HISTORY_MESSAGES: usize = 200;
/// Messages the `history` scenario reads per request (the latest ones).
pub(crate) const HISTORY_PAGE: usize = 50;
/// Bytes per value in the KV scenarios.
pub(crate) const KV_VALUE_BYTES: usize = 256;
/// Keys pre-populated for `kv-get`.
pub(crate) const KV_GET_KEYS: usize = 1000;
/// Characters of content per appended message.
pub(crate) const MESSAGE_CHARS: usize = 200;
/// Points in the `vector-search` collection.
pub(crate) const SEARCH_POINTS: usize = 2000;
/// Dimension of the `vector-search` collection (all-MiniLM-L6-v2's).
pub(crate) const SEARCH_DIM: usize = 384;
/// Results per `vector-search` request.
pub(crate) const SEARCH_K: usize = 10;
/// Candidate list size of `vector-search` requests.
pub(crate) const SEARCH_EF: usize = 64;
/// Error bodies kept per cell for the report.
const ERROR_SAMPLES: usize = 3;

/// One benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// `GET /health`: the HTTP stack alone, the baseline for the ratios.
    Health,
    /// Each client appends to its own conversation.
    Append,
    /// All clients append to one shared conversation.
    AppendShared,
    /// Read the latest 50 messages of a 200-message conversation.
    History,
    /// Each client PUTs 256-byte values under its own, always new, keys.
    KvPut,
    /// GET of pre-populated 256-byte values.
    KvGet,
    /// `POST …/points/search` with a 384-float query on a small collection:
    /// the per-request cost of the vectors API around a cheap search.
    VectorSearch,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::Append => "append",
            Scenario::AppendShared => "append-shared",
            Scenario::History => "history",
            Scenario::KvPut => "kv-put",
            Scenario::KvGet => "kv-get",
            Scenario::VectorSearch => "vector-search",
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Scenario::Health => "`GET /health` (no auth, no storage): the baseline".into(),
            Scenario::Append => format!(
                "`POST …/conversations/{{conv}}/messages`, one {MESSAGE_CHARS}-character \
                 message per request; each client appends to its own conversation"
            ),
            Scenario::AppendShared => format!(
                "`POST …/conversations/{{conv}}/messages`, one {MESSAGE_CHARS}-character \
                 message per request; all clients append to one shared conversation"
            ),
            Scenario::History => format!(
                "`GET …/conversations/{{conv}}/messages?latest=true&limit={HISTORY_PAGE}` \
                 of a conversation holding {HISTORY_MESSAGES} messages \
                 ({MESSAGE_CHARS} characters each); all clients read the same conversation"
            ),
            Scenario::KvPut => format!(
                "`PUT /v1/bots/{{bot}}/kv/{{key}}` of {KV_VALUE_BYTES}-byte values; each \
                 client writes its own keys, a new key per request"
            ),
            Scenario::KvGet => format!(
                "`GET /v1/bots/{{bot}}/kv/{{key}}` of {KV_VALUE_BYTES}-byte values, cycling \
                 over {KV_GET_KEYS} pre-populated keys"
            ),
            Scenario::VectorSearch => format!(
                "`POST …/collections/{{name}}/points/search` with a {SEARCH_DIM}-float query \
                 (floats written as Python's `json.dumps` writes them, ~19 characters each), \
                 k {SEARCH_K}, ef {SEARCH_EF}, payloads returned, on a cosine collection of \
                 {SEARCH_POINTS} random points: the API's per-request cost around a cheap search"
            ),
        }
    }
}

/// What one client task sends, request after request.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// The same GET every time.
    Get { url: String, auth: Option<String> },
    /// The same JSON POST every time.
    PostJson {
        url: String,
        auth: String,
        body: Vec<u8>,
    },
    /// PUT to `prefix` + a counter: a new key per request.
    PutSeq {
        prefix: String,
        auth: String,
        body: Vec<u8>,
    },
    /// GET of `prefix` + `{:04}` of keys `start`, `start+1`, … modulo `keys`.
    GetCycle {
        prefix: String,
        auth: String,
        keys: usize,
        start: usize,
    },
}

impl Op {
    fn request(&self, client: &Client, n: u64) -> reqwest::RequestBuilder {
        match self {
            Op::Get { url, auth } => {
                let rb = client.get(url);
                match auth {
                    Some(a) => rb.bearer_auth(a),
                    None => rb,
                }
            }
            Op::PostJson { url, auth, body } => client
                .post(url)
                .bearer_auth(auth)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone()),
            Op::PutSeq { prefix, auth, body } => client
                .put(format!("{prefix}{n}"))
                .bearer_auth(auth)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body.clone()),
            Op::GetCycle {
                prefix,
                auth,
                keys,
                start,
            } => {
                // `keys` is never 0 (set from a non-zero constant).
                let k = (*start as u64 + n) % (*keys).max(1) as u64;
                client.get(format!("{prefix}{k:04}")).bearer_auth(auth)
            }
        }
    }
}

/// Creates the bot, key, user, conversations and keys the scenarios use.
#[derive(Debug)]
pub(crate) struct Setup {
    http: Client,
    base: String,
    admin: String,
    bot: String,
    key: String,
    history_ready: bool,
    /// Counts prepared cells, so a retried cell gets fresh conversations
    /// and keys.
    cells: usize,
    kv_ready: bool,
    search_ready: bool,
}

/// A deterministic pseudo-random vector (xorshift), components in [-1, 1).
pub(crate) fn pseudo_random_vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A search body whose floats are written like Python's `json.dumps` of a
/// float32 array's `tolist()` (the reference client's): each f32 widened to
/// f64 and printed shortest-round-trip, e.g. `0.12345679104328156`.
pub(crate) fn search_body(vector: &[f32]) -> Result<Vec<u8>> {
    let v: Vec<f64> = vector.iter().map(|&f| f64::from(f)).collect();
    serde_json::to_vec(&json!({"vector": v, "k": SEARCH_K, "ef": SEARCH_EF}))
        .context("encoding the search body")
}

fn message_content() -> String {
    let words = "the quick brown fox jumps over the lazy dog and keeps the conversation going ";
    words.chars().cycle().take(MESSAGE_CHARS).collect()
}

fn kv_value() -> Vec<u8> {
    (0..KV_VALUE_BYTES).map(|i| b'a' + (i % 26) as u8).collect()
}

impl Setup {
    /// Creates the bot, a writer key and user `u1`.
    pub(crate) async fn new(base: &str, admin: &str, bot: &str) -> Result<Self> {
        let http = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        let mut s = Setup {
            http,
            base: base.to_string(),
            admin: admin.to_string(),
            bot: bot.to_string(),
            key: String::new(),
            history_ready: false,
            cells: 0,
            kv_ready: false,
            search_ready: false,
        };
        s.call_admin(
            Method::POST,
            "/v1/bots",
            Some(json!({"id": bot, "name": "strata-loadgen benchmark"})),
        )
        .await
        .context("creating the benchmark bot")?;
        let k = s
            .call_admin(
                Method::POST,
                &format!("/v1/bots/{bot}/keys"),
                Some(json!({"name": "loadgen", "role": "writer"})),
            )
            .await
            .context("creating a writer key")?;
        s.key = k
            .get("key")
            .and_then(Value::as_str)
            .context("the key response has no `key`")?
            .to_string();
        s.call(
            Method::POST,
            &format!("/v1/bots/{bot}/users"),
            Some(json!({"id": "u1", "name": "loadgen user"})),
        )
        .await
        .context("creating user u1")?;
        Ok(s)
    }

    async fn call_admin(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.send(method, path, &self.admin, body).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.send(method, path, &self.key, body).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut rb = self.http.request(method.clone(), &url).bearer_auth(key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{method} {url}: reading the body"))?;
        if !status.is_success() {
            bail!("{method} {url} answered {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {url}: not JSON: {text}"))
    }

    async fn put_raw(&self, path: &str, body: Vec<u8>) -> Result<()> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .put(&url)
            .bearer_auth(&self.key)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            bail!("PUT {url} answered {status}: {text}");
        }
        Ok(())
    }

    async fn create_conversation(&self, id: &str) -> Result<()> {
        self.call(
            Method::POST,
            &format!("/v1/bots/{}/conversations", self.bot),
            Some(json!({"id": id, "user_id": "u1", "title": "loadgen"})),
        )
        .await
        .with_context(|| format!("creating conversation {id}"))?;
        Ok(())
    }

    fn bot_url(&self, rest: &str) -> String {
        format!("{}/v1/bots/{}{rest}", self.base, self.bot)
    }

    fn append_body() -> Result<Vec<u8>> {
        serde_json::to_vec(&json!({"role": "user", "content": message_content()}))
            .context("encoding the message body")
    }

    /// Prepares server-side state for `scenario` at `clients` and returns
    /// one [`Op`] per client.
    pub(crate) async fn prepare(&mut self, scenario: Scenario, clients: usize) -> Result<Vec<Op>> {
        self.cells += 1;
        let cell = self.cells;
        let key = self.key.clone();
        Ok(match scenario {
            Scenario::Health => (0..clients)
                .map(|_| Op::Get {
                    url: format!("{}/health", self.base),
                    auth: None,
                })
                .collect(),
            Scenario::Append => {
                let body = Self::append_body()?;
                let mut ops = Vec::with_capacity(clients);
                for i in 0..clients {
                    let conv = format!("append-{cell}-c{clients}-{i}");
                    self.create_conversation(&conv).await?;
                    ops.push(Op::PostJson {
                        url: self.bot_url(&format!("/conversations/{conv}/messages")),
                        auth: key.clone(),
                        body: body.clone(),
                    });
                }
                ops
            }
            Scenario::AppendShared => {
                let body = Self::append_body()?;
                let conv = format!("shared-{cell}-c{clients}");
                self.create_conversation(&conv).await?;
                let url = self.bot_url(&format!("/conversations/{conv}/messages"));
                (0..clients)
                    .map(|_| Op::PostJson {
                        url: url.clone(),
                        auth: key.clone(),
                        body: body.clone(),
                    })
                    .collect()
            }
            Scenario::History => {
                let path = "/conversations/history/messages";
                if !self.history_ready {
                    self.fill_history().await?;
                    self.history_ready = true;
                }
                let url = self.bot_url(&format!("{path}?latest=true&limit={HISTORY_PAGE}"));
                (0..clients)
                    .map(|_| Op::Get {
                        url: url.clone(),
                        auth: Some(key.clone()),
                    })
                    .collect()
            }
            Scenario::KvPut => {
                let body = kv_value();
                (0..clients)
                    .map(|i| Op::PutSeq {
                        prefix: self.bot_url(&format!("/kv/put-{cell}-c{clients}-t{i}-")),
                        auth: key.clone(),
                        body: body.clone(),
                    })
                    .collect()
            }
            Scenario::KvGet => {
                if !self.kv_ready {
                    self.fill_kv().await?;
                    self.kv_ready = true;
                }
                let prefix = self.bot_url("/kv/get-");
                (0..clients)
                    .map(|i| Op::GetCycle {
                        prefix: prefix.clone(),
                        auth: key.clone(),
                        keys: KV_GET_KEYS,
                        // Spread the clients over the key space.
                        start: (i * 7919) % KV_GET_KEYS,
                    })
                    .collect()
            }
            Scenario::VectorSearch => {
                if !self.search_ready {
                    self.fill_collection().await?;
                    self.search_ready = true;
                }
                let url = self.bot_url("/collections/search/points/search");
                (0..clients)
                    .map(|i| {
                        Ok(Op::PostJson {
                            url: url.clone(),
                            auth: key.clone(),
                            body: search_body(&pseudo_random_vector(
                                1_000_000 + i as u64,
                                SEARCH_DIM,
                            ))?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        })
    }

    /// Creates collection `search` (with the global admin key: the bench
    /// key is a writer) and upserts [`SEARCH_POINTS`] points, then checks
    /// that a search finds a stored point by its own vector.
    async fn fill_collection(&self) -> Result<()> {
        self.call_admin(
            Method::POST,
            &format!("/v1/bots/{}/collections", self.bot),
            Some(json!({"name": "search", "dimension": SEARCH_DIM, "metric": "cosine"})),
        )
        .await
        .context("creating collection `search`")?;
        let path = format!("/v1/bots/{}/collections/search/points", self.bot);
        for start in (0..SEARCH_POINTS).step_by(500) {
            let points: Vec<Value> = (start..(start + 500).min(SEARCH_POINTS))
                .map(|i| {
                    json!({
                        "id": i,
                        "vector": pseudo_random_vector(i as u64, SEARCH_DIM),
                        "payload": {"n": i, "tag": format!("t{}", i % 10)},
                    })
                })
                .collect();
            self.call(Method::PUT, &path, Some(json!({ "points": points })))
                .await
                .context("upserting the search points")?;
        }
        let probe = 7usize;
        let url = format!(
            "{}/v1/bots/{}/collections/search/points/search",
            self.base, self.bot
        );
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.key)
            .header(CONTENT_TYPE, "application/json")
            .body(search_body(&pseudo_random_vector(
                probe as u64,
                SEARCH_DIM,
            ))?)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| format!("POST {url}"))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
        let first = v
            .get("results")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|p| p.get("id"))
            .and_then(Value::as_u64);
        if status != StatusCode::OK || first != Some(probe as u64) {
            bail!("searching for point {probe} by its own vector answered {status}: {text}");
        }
        Ok(())
    }

    /// Creates conversation `history` with [`HISTORY_MESSAGES`] messages and
    /// checks that the latest page reads back as expected.
    async fn fill_history(&self) -> Result<()> {
        self.create_conversation("history").await?;
        let path = format!("/v1/bots/{}/conversations/history/messages", self.bot);
        let content = message_content();
        let roles = ["user", "assistant"];
        let mut done = 0;
        while done < HISTORY_MESSAGES {
            let n = (HISTORY_MESSAGES - done).min(50);
            let messages: Vec<Value> = (done..done + n)
                .map(|i| json!({"role": roles[i % 2], "content": content}))
                .collect();
            self.call(Method::POST, &path, Some(json!({ "messages": messages })))
                .await
                .context("filling the history conversation")?;
            done += n;
        }
        let page = self
            .call(
                Method::GET,
                &format!("{path}?latest=true&limit={HISTORY_PAGE}"),
                None,
            )
            .await?;
        let msgs = page
            .get("messages")
            .and_then(Value::as_array)
            .context("the history page has no `messages` array")?;
        let last_seq = msgs
            .last()
            .and_then(|m| m.get("seq"))
            .and_then(Value::as_i64);
        if msgs.len() != HISTORY_PAGE || last_seq != Some(HISTORY_MESSAGES as i64) {
            bail!(
                "the history page has {} messages ending at seq {last_seq:?}; expected {HISTORY_PAGE} ending at {HISTORY_MESSAGES}",
                msgs.len()
            );
        }
        Ok(())
    }

    /// Stores [`KV_GET_KEYS`] values and checks one reads back.
    async fn fill_kv(&self) -> Result<()> {
        let value = kv_value();
        for k in 0..KV_GET_KEYS {
            self.put_raw(
                &format!("/v1/bots/{}/kv/get-{k:04}", self.bot),
                value.clone(),
            )
            .await
            .context("pre-populating kv-get keys")?;
        }
        let url = self.bot_url("/kv/get-0000");
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.bytes().await.with_context(|| format!("GET {url}"))?;
        if status != StatusCode::OK || body.as_ref() != value.as_slice() {
            bail!(
                "GET {url} answered {status} with {} bytes; expected the stored value",
                body.len()
            );
        }
        Ok(())
    }
}

/// What one client task saw.
#[derive(Debug, Default)]
struct TaskStats {
    /// Latencies of successful measured requests, in microseconds.
    lat_us: Vec<u32>,
    errors: u64,
    kinds: BTreeMap<String, u64>,
    samples: Vec<String>,
}

impl TaskStats {
    fn error(&mut self, kind: String, sample: String) {
        self.errors += 1;
        *self.kinds.entry(kind).or_insert(0) += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(sample);
        }
    }
}

async fn client_task(op: Op, measure_from: Instant, end: Instant) -> Result<TaskStats> {
    // One client per task, at most one idle connection: each task keeps its
    // own keep-alive connection.
    let client = Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building a client")?;
    let mut st = TaskStats {
        lat_us: Vec::with_capacity(64 * 1024),
        ..TaskStats::default()
    };
    let mut n: u64 = 0;
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        let req = op.request(&client, n);
        n += 1;
        let outcome = async {
            let resp = req.send().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let done = Instant::now();
        let measured = start >= measure_from && done <= end;
        match outcome {
            Ok((status, _)) if status.is_success() => {
                if measured {
                    let us = done.duration_since(start).as_micros();
                    st.lat_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.chars().take(300).collect();
                st.error(
                    format!("HTTP {}", status.as_u16()),
                    format!("HTTP {status}: {text}"),
                );
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "transport: timeout"
                } else if e.is_connect() {
                    "transport: connect"
                } else {
                    "transport: other"
                };
                st.error(kind.to_string(), format!("{kind}: {e}"));
            }
        }
    }
    Ok(st)
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let idx = rank.saturating_sub(1).min(sorted.len() - 1);
    f64::from(sorted[idx]) / 1000.0
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (Linux; `None` elsewhere or when unreadable).
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, the 12th and 13th after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some((utime + stime) / 100.0)
}

/// Busy CPU time of the whole machine so far (all cores; user, nice,
/// system, irq, softirq and steal), from `/proc/stat`.
pub(crate) fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<Vec<f64>>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    Some(busy / 100.0)
}

/// Cores a process used between two samples `secs` apart.
fn cores(before: Option<f64>, after: Option<f64>, secs: f64) -> Option<f64> {
    Some((after? - before?) / secs)
}

/// Runs one cell: every op in its own task, `warmup` then `duration`.
pub(crate) async fn run_cell(
    scenario: Scenario,
    clients: usize,
    ops: Vec<Op>,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
) -> Result<CellResult> {
    let t0 = Instant::now();
    let measure_from = t0 + warmup;
    let end = measure_from + duration;
    let handles: Vec<_> = ops
        .into_iter()
        .map(|op| tokio::spawn(client_task(op, measure_from, end)))
        .collect();
    // Sample CPU use over the measured window.
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = (cpu_seconds(server_pid), cpu_seconds(None), Instant::now());
    let busy0 = machine_busy_seconds();
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = (cpu_seconds(server_pid), cpu_seconds(None), Instant::now());
    let busy1 = machine_busy_seconds();
    let cpu_secs = cpu1.2.duration_since(cpu0.2).as_secs_f64().max(1e-9);
    let server_cpu = if server_pid.is_some() {
        cores(cpu0.0, cpu1.0, cpu_secs)
    } else {
        None
    };
    let loadgen_cpu = cores(cpu0.1, cpu1.1, cpu_secs);
    let other_cpu = match (cores(busy0, busy1, cpu_secs), server_cpu, loadgen_cpu) {
        (Some(all), Some(s), Some(l)) => Some((all - s - l).max(0.0)),
        _ => None,
    };
    let mut lat: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples = Vec::new();
    for h in handles {
        let st = h.await.context("a client task panicked")??;
        lat.extend_from_slice(&st.lat_us);
        errors += st.errors;
        for (k, v) in st.kinds {
            *kinds.entry(k).or_insert(0) += v;
        }
        for s in st.samples {
            if samples.len() < ERROR_SAMPLES {
                samples.push(s);
            }
        }
    }
    lat.sort_unstable();
    let secs = duration.as_secs_f64();
    let ok = lat.len() as u64;
    let mean_ms = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|&u| f64::from(u)).sum::<f64>() / lat.len() as f64 / 1000.0
    };
    Ok(CellResult {
        scenario,
        clients,
        ok,
        errors,
        error_kinds: kinds,
        error_samples: samples,
        duration_s: secs,
        rps: ok as f64 / secs,
        mean_ms,
        p50_ms: percentile_ms(&lat, 0.50),
        p90_ms: percentile_ms(&lat, 0.90),
        p99_ms: percentile_ms(&lat, 0.99),
        max_ms: lat.last().map_or(0.0, |&u| f64::from(u) / 1000.0),
        server_cpu,
        loadgen_cpu,
        other_cpu,
        attempts: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.50), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&v, 1.0), 100.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
        assert_eq!(percentile_ms(&[7000], 0.99), 7.0);
    }

    #[test]
    fn fixed_payload_sizes() {
        assert_eq!(kv_value().len(), KV_VALUE_BYTES);
        assert_eq!(message_content().chars().count(), MESSAGE_CHARS);
    }

    #[test]
    fn search_bodies_write_floats_like_python() {
        let body = search_body(&[0.1f32, -1.0, 0.5]).expect("body");
        let text = String::from_utf8(body).expect("utf-8");
        // f32 0.1 widened to f64, as numpy's tolist() gives it to json.dumps.
        assert!(text.contains("[0.10000000149011612,-1.0,0.5]"), "{text}");
        let v = pseudo_random_vector(3, SEARCH_DIM);
        assert_eq!(v.len(), SEARCH_DIM);
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        assert_ne!(v, pseudo_random_vector(4, SEARCH_DIM));
    }
}
