//! `strata-loadgen cache-bench`: Strata's cache layer measured against peers
//! in the same run.
//!
//! 1. In-process: `strata_cache::MemoryCache` through the `CacheStore` trait
//!    versus `moka::future::Cache` and `quick_cache::sync::Cache` used
//!    directly, on a Zipf-distributed read-mostly workload.
//! 2. Redis: `strata_cache::RedisCache` versus `redis-benchmark` against the
//!    same server, at equal pipelining: N tasks on one shared connection
//!    manager (N requests in flight on one socket) against `redis-benchmark
//!    -c 1 -P N`, and N tasks with a connection each (one request in flight
//!    per socket) against `redis-benchmark -c N`.
//! 3. End to end: two `strata-loadgen run` JSON files (history cache on and
//!    off), read back and compared; `bench/cache.sh` produces them.
//!
//! The markdown report and the raw JSON are written by [`run`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};
use strata_cache::{MemoryCache, RedisCache};
use strata_core::cache::CacheStore;

use crate::scenario::{cpu_seconds, machine_busy_seconds};

/// Namespace every Strata cache call of the benchmark uses.
const NS: &str = "bench";
/// TTL of every Strata cache entry (longer than the run).
const TTL: Duration = Duration::from_secs(3600);
/// Bytes `MemoryCache` charges per entry on top of key and value
/// (`ENTRY_OVERHEAD` in strata-cache's memory.rs), used to size its byte
/// budget to the same entry count as the peers.
const STRATA_ENTRY_OVERHEAD: u64 = 96;
/// Keys of the Redis section (pre-populated, drawn uniformly).
const REDIS_KEYS: usize = 1000;

/// A round during which other processes used more cores than this is re-run.
const MAX_OTHER_CPU: f64 = 0.15;
/// Re-runs of a disturbed round.
const MAX_RERUNS: u32 = 2;

/// Phases the workers follow (set by the driver).
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Options of `strata-loadgen cache-bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct CacheArgs {
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Warm-up seconds per cell (runs, not measured).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Zipf exponents of the in-process workload.
    #[arg(long, value_delimiter = ',', default_value = "1.0,0.8")]
    zipf: Vec<f64>,
    /// Rounds per in-process cell (interleaved across the caches, each with
    /// a fresh cache); the report gives the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent tokio tasks of the in-process workload.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    tasks: Vec<usize>,
    /// Distinct keys of the in-process workload.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Cache capacity as a fraction of the key space.
    #[arg(long, default_value_t = 0.2)]
    capacity_fraction: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// Percentage of operations that are gets (the rest are inserts).
    #[arg(long, default_value_t = 90)]
    get_percent: u64,
    /// Redis to measure (skip the Redis section with `--redis-url none`).
    #[arg(
        long,
        env = "STRATA_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/15"
    )]
    redis_url: String,
    /// Concurrent tokio tasks of the Redis section.
    #[arg(long, value_delimiter = ',', default_value = "1,50")]
    redis_tasks: Vec<usize>,
    /// The `redis-benchmark` program.
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: String,
    /// `-n` of redis-benchmark runs with many clients.
    #[arg(long, default_value_t = 200_000)]
    redis_benchmark_requests: u64,
    /// `-n` of the redis-benchmark run with one client (slower, so fewer).
    #[arg(long, default_value_t = 50_000)]
    redis_benchmark_requests_single: u64,
    /// JSON of `strata-loadgen run` against the server with its history
    /// cache on (default configuration).
    #[arg(long)]
    e2e_on: Option<PathBuf>,
    /// JSON of `strata-loadgen run` against the server with
    /// `STRATA_HISTORY_CACHE_BYTES=0`.
    #[arg(long)]
    e2e_off: Option<PathBuf>,
    /// Write the raw results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the markdown report here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// The command that produced the run, shown verbatim in the report.
    #[arg(long)]
    command: Option<String>,
    /// `name=value` lines for the report's machine section (repeatable).
    #[arg(long = "meta", value_parser = crate::parse_meta)]
    meta: Vec<(String, String)>,
    /// Free-text notes for the report (repeatable).
    #[arg(long = "note")]
    notes: Vec<String>,
}

// ---------------------------------------------------------------- workload

/// xorshift64* — small, fast, good enough for picking keys.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Never zero (xorshift's fixed point); mix the seed a little.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        // The top 53 bits make an exact double in [0, 1).
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf(s) over ranks 0..n (rank r has weight 1 / (r+1)^s): the cumulative
/// distribution, sampled by binary search.
#[derive(Debug)]
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for r in 0..n {
            total += 1.0 / ((r + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }

    /// The probability mass of the `k` most popular keys: the hit ratio an
    /// ideal cache of `k` entries would reach on gets.
    fn top_mass(&self, k: usize) -> f64 {
        if k == 0 {
            0.0
        } else {
            self.cdf[k.min(self.cdf.len()) - 1]
        }
    }
}

/// The cache under test in the in-process section.
#[derive(Clone)]
enum Subject {
    Strata(Arc<dyn CacheStore>),
    Moka(moka::future::Cache<String, Bytes>),
    Quick(Arc<quick_cache::sync::Cache<String, Bytes>>),
}

impl Subject {
    fn name(&self) -> &'static str {
        match self {
            Subject::Strata(_) => "strata MemoryCache (CacheStore)",
            Subject::Moka(_) => "moka::future::Cache",
            Subject::Quick(_) => "quick_cache::sync::Cache",
        }
    }

    fn id(&self) -> &'static str {
        match self {
            Subject::Strata(_) => "strata",
            Subject::Moka(_) => "moka",
            Subject::Quick(_) => "quick_cache",
        }
    }

    async fn get(&self, key: &str) -> Result<bool> {
        Ok(match self {
            Subject::Strata(c) => c.get(NS, key).await?.is_some(),
            Subject::Moka(c) => c.get(key).await.is_some(),
            Subject::Quick(c) => c.get(key).is_some(),
        })
    }

    async fn insert(&self, key: &str, value: &Bytes) -> Result<()> {
        match self {
            Subject::Strata(c) => c.set(NS, key, value.clone(), TTL).await?,
            Subject::Moka(c) => c.insert(key.to_owned(), value.clone()).await,
            Subject::Quick(c) => c.insert(key.to_owned(), value.clone()),
        }
        Ok(())
    }
}

/// Counters of one worker over the measured window.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    gets: u64,
    hits: u64,
    inserts: u64,
}

/// One in-process cell.
#[derive(Debug, Clone)]
struct MemCell {
    zipf: f64,
    tasks: usize,
    subject: &'static str,
    name: &'static str,
    ops: u64,
    gets: u64,
    hits: u64,
    inserts: u64,
    seconds: f64,
    /// ops/s of each round (fresh cache each time).
    rounds: Vec<f64>,
    /// Highest CPU cores other processes used during a round (Linux).
    other_cpu: Option<f64>,
    /// Rounds re-run because other processes disturbed them.
    reruns: u32,
}

impl MemCell {
    /// The median over the rounds.
    fn ops_per_s(&self) -> f64 {
        let mut r = self.rounds.clone();
        r.sort_by(f64::total_cmp);
        match r.len() {
            0 => 0.0,
            n if n % 2 == 1 => r[n / 2],
            n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
        }
    }

    /// Lowest and highest round.
    fn spread(&self) -> (f64, f64) {
        let lo = self.rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.rounds.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }

    fn merge(&mut self, other: &MemCell) {
        self.ops += other.ops;
        self.gets += other.gets;
        self.hits += other.hits;
        self.inserts += other.inserts;
        self.seconds += other.seconds;
        self.rounds.extend_from_slice(&other.rounds);
        self.other_cpu = match (self.other_cpu, other.other_cpu) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.reruns += other.reruns;
    }
    fn hit_ratio(&self) -> f64 {
        if self.gets == 0 {
            0.0
        } else {
            self.hits as f64 / self.gets as f64
        }
    }
}

async fn mem_worker(
    subject: Subject,
    zipf: Arc<Zipf>,
    keys: Arc<Vec<String>>,
    value: Bytes,
    get_percent: u64,
    phase: Arc<AtomicU8>,
    seed: u64,
) -> Result<Counts> {
    let mut rng = Rng::new(seed);
    let mut counts = Counts::default();
    loop {
        let p = phase.load(Ordering::Relaxed);
        if p == STOP {
            return Ok(counts);
        }
        let measuring = p == MEASURE;
        // A batch between phase checks, so the atomic load is amortised.
        for _ in 0..64 {
            let key = &keys[zipf.sample(&mut rng)];
            if rng.next_u64() % 100 < get_percent {
                let hit = subject.get(key).await?;
                let mut inserted = false;
                if !hit {
                    // Read-through: a miss fills the cache.
                    subject.insert(key, &value).await?;
                    inserted = true;
                }
                if measuring {
                    counts.gets += 1;
                    counts.hits += u64::from(hit);
                    counts.inserts += u64::from(inserted);
                }
            } else {
                subject.insert(key, &value).await?;
                if measuring {
                    counts.inserts += 1;
                }
            }
        }
        // Let other tasks on this worker thread run (as a server would).
        tokio::task::yield_now().await;
    }
}

/// Runs `tasks` workers on `subject`: a warm-up, then the measured window.
async fn mem_cell(
    args: &CacheArgs,
    subject: Subject,
    zipf: &Arc<Zipf>,
    s: f64,
    keys: &Arc<Vec<String>>,
    tasks: usize,
) -> Result<MemCell> {
    let value = Bytes::from(vec![0xA5u8; args.value_bytes]);
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        handles.push(tokio::spawn(mem_worker(
            subject.clone(),
            Arc::clone(zipf),
            Arc::clone(keys),
            value.clone(),
            args.get_percent,
            Arc::clone(&phase),
            0x5EED + t as u64,
        )));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    phase.store(MEASURE, Ordering::Relaxed);
    let start = Instant::now();
    let (self0, busy0) = (cpu_seconds(None), machine_busy_seconds());
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    phase.store(STOP, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    let (self1, busy1) = (cpu_seconds(None), machine_busy_seconds());
    let other_cpu = match (self0, busy0, self1, busy1) {
        (Some(s0), Some(b0), Some(s1), Some(b1)) => {
            Some((((b1 - b0) - (s1 - s0)) / seconds).max(0.0))
        }
        _ => None,
    };
    let mut total = Counts::default();
    for h in handles {
        let c = h.await.context("in-process worker panicked")??;
        total.gets += c.gets;
        total.hits += c.hits;
        total.inserts += c.inserts;
    }
    Ok(MemCell {
        zipf: s,
        tasks,
        subject: subject.id(),
        name: subject.name(),
        ops: total.gets + total.inserts,
        gets: total.gets,
        hits: total.hits,
        inserts: total.inserts,
        seconds,
        rounds: vec![(total.gets + total.inserts) as f64 / seconds],
        other_cpu,
        reruns: 0,
    })
}

async fn memory_section(args: &CacheArgs) -> Result<Vec<MemCell>> {
    let keys: Arc<Vec<String>> = Arc::new((0..args.keys).map(|i| format!("k{i:07}")).collect());
    let capacity = ((args.keys as f64) * args.capacity_fraction).round() as u64;
    let key_len = keys.first().map_or(0, String::len) as u64;
    let strata_bytes =
        capacity * (NS.len() as u64 + key_len + args.value_bytes as u64 + STRATA_ENTRY_OVERHEAD);
    let mut cells = Vec::new();
    for &s in &args.zipf {
        let zipf = Arc::new(Zipf::new(args.keys, s));
        for &tasks in &args.tasks {
            let mut merged: Vec<MemCell> = Vec::new();
            for round in 1..=args.rounds {
                let subjects = [
                    Subject::Strata(Arc::new(MemoryCache::with_max_bytes(strata_bytes))),
                    Subject::Moka(
                        moka::future::Cache::builder()
                            .max_capacity(capacity)
                            .build(),
                    ),
                    Subject::Quick(Arc::new(quick_cache::sync::Cache::new(
                        usize::try_from(capacity).context("capacity")?,
                    ))),
                ];
                for subject in subjects {
                    let mut reruns = 0;
                    let mut cell = loop {
                        let c = mem_cell(args, subject.clone(), &zipf, s, &keys, tasks).await?;
                        match c.other_cpu {
                            Some(o) if o > MAX_OTHER_CPU && reruns < MAX_RERUNS => {
                                eprintln!(
                                "  ~~ other processes used {o:.2} cores during {}; re-running in 5 s",
                                c.name
                            );
                                reruns += 1;
                                tokio::time::sleep(Duration::from_secs(5)).await;
                            }
                            _ => break c,
                        }
                    };
                    cell.reruns = reruns;
                    eprintln!(
                    "  zipf {s:<4} tasks {tasks} round {round}: {:<32} {:>12.0} ops/s  hit ratio {:.3}",
                    cell.name,
                    cell.ops_per_s(),
                    cell.hit_ratio()
                );
                    match merged.iter_mut().find(|c| c.subject == cell.subject) {
                        Some(m) => m.merge(&cell),
                        None => merged.push(cell),
                    }
                }
            }
            cells.extend(merged);
        }
    }
    Ok(cells)
}

// ------------------------------------------------------------------- redis

/// One Strata RedisCache cell.
#[derive(Debug, Clone)]
struct RedisCell {
    op: &'static str,
    tasks: usize,
    /// TCP connections the tasks use (1: one shared `RedisCache`, whose
    /// connection manager multiplexes every task's requests; `tasks`: a
    /// `RedisCache` per task).
    connections: usize,
    ops: u64,
    errors: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl RedisCell {
    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    /// Requests in flight per connection, at most.
    fn depth(&self) -> usize {
        self.tasks / self.connections.max(1)
    }
}

/// One line of redis-benchmark's CSV.
#[derive(Debug, Clone)]
struct RbRow {
    label: String,
    clients: usize,
    pipeline: usize,
    test: String,
    rps: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

async fn redis_worker(
    cache: RedisCache,
    set: bool,
    keys: Arc<Vec<String>>,
    value: Bytes,
    phase: Arc<AtomicU8>,
    seed: u64,
) -> (Vec<u32>, u64) {
    let mut rng = Rng::new(seed);
    let mut lat_us = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    loop {
        let p = phase.load(Ordering::Relaxed);
        if p == STOP {
            return (lat_us, errors);
        }
        let key = &keys[(rng.next_u64() % keys.len() as u64) as usize];
        let t = Instant::now();
        let ok = if set {
            cache.set(NS, key, value.clone(), TTL).await.is_ok()
        } else {
            cache.get(NS, key).await.is_ok()
        };
        if p == MEASURE {
            if ok {
                lat_us.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
            } else {
                errors += 1;
            }
        }
    }
}

fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted_us[i.min(sorted_us.len() - 1)]) / 1000.0
}

async fn redis_strata(args: &CacheArgs) -> Result<Vec<RedisCell>> {
    let cache = RedisCache::connect(&args.redis_url)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))
        .with_context(|| format!("connecting to Redis at {}", args.redis_url))?;
    let keys: Arc<Vec<String>> = Arc::new((0..REDIS_KEYS).map(|i| format!("r{i:04}")).collect());
    let value = Bytes::from(vec![0x5Au8; args.value_bytes]);
    for k in keys.iter() {
        cache
            .set(NS, k, value.clone(), TTL)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))
            .context("pre-populating Redis")?;
    }
    let mut cells = Vec::new();
    for &tasks in &args.redis_tasks {
        // One shared connection (N in flight on it), and for N > 1 also a
        // connection per task (1 in flight on each).
        let mut shapes = vec![1];
        if tasks > 1 {
            shapes.push(tasks);
        }
        for connections in shapes {
            let mut caches = vec![cache.clone()];
            while caches.len() < connections {
                caches.push(
                    RedisCache::connect(&args.redis_url)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", e.message()))
                        .context("opening one connection per task")?,
                );
            }
            for (op, set) in [("get", false), ("set", true)] {
                let phase = Arc::new(AtomicU8::new(WARMUP));
                let handles: Vec<_> = (0..tasks)
                    .map(|t| {
                        tokio::spawn(redis_worker(
                            caches[t % caches.len()].clone(),
                            set,
                            Arc::clone(&keys),
                            value.clone(),
                            Arc::clone(&phase),
                            0xBEEF + t as u64,
                        ))
                    })
                    .collect();
                tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
                phase.store(MEASURE, Ordering::Relaxed);
                let start = Instant::now();
                tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
                phase.store(STOP, Ordering::Relaxed);
                let seconds = start.elapsed().as_secs_f64();
                let mut all = Vec::new();
                let mut errors = 0;
                for h in handles {
                    let (lat, e) = h.await.context("Redis worker panicked")?;
                    all.extend(lat);
                    errors += e;
                }
                all.sort_unstable();
                let cell = RedisCell {
                    op,
                    tasks,
                    connections,
                    ops: all.len() as u64,
                    errors,
                    seconds,
                    p50_ms: percentile_ms(&all, 0.50),
                    p99_ms: percentile_ms(&all, 0.99),
                };
                eprintln!(
                    "  strata RedisCache {op} tasks {tasks:>3} connections {connections:>3}: {:>10.0} ops/s  p50 {:.3} ms  p99 {:.3} ms  errors {errors}",
                    cell.ops_per_s(),
                    cell.p50_ms,
                    cell.p99_ms
                );
                if errors > 0 {
                    bail!("{errors} Strata RedisCache {op} calls failed with {tasks} tasks");
                }
                cells.push(cell);
            }
        }
    }
    cache
        .delete_prefix(NS, "")
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))
        .context("removing the benchmark's keys")?;
    Ok(cells)
}

fn redis_benchmark(args: &CacheArgs) -> Result<(Vec<RbRow>, Vec<String>)> {
    let client = redis::Client::open(args.redis_url.as_str()).context("parsing the Redis URL")?;
    let info = client.get_connection_info();
    let (host, port) = match &info.addr {
        redis::ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
        other => bail!("redis-benchmark comparison needs a plain TCP Redis URL, got {other:?}"),
    };
    let mut rows = Vec::new();
    let mut commands = Vec::new();
    // The same shapes as the Strata cells (connections x requests in
    // flight per connection), then the fixed ceiling run of earlier reports.
    let mut runs: Vec<(String, usize, usize, u64)> = Vec::new();
    for &tasks in &args.redis_tasks {
        let n = if tasks == 1 {
            args.redis_benchmark_requests_single
        } else {
            args.redis_benchmark_requests
        };
        runs.push((rb_label(tasks, 1), tasks, 1, n));
        if tasks > 1 {
            runs.push((rb_label(1, tasks), 1, tasks, args.redis_benchmark_requests));
        }
    }
    runs.push((rb_label(50, 16), 50, 16, args.redis_benchmark_requests));
    for (label, clients, pipeline, n) in runs {
        let mut argv: Vec<String> = vec![
            "-h".into(),
            host.clone(),
            "-p".into(),
            port.to_string(),
            "--dbnum".into(),
            info.redis.db.to_string(),
            "-n".into(),
            n.to_string(),
            "-c".into(),
            clients.to_string(),
            "-t".into(),
            "get,set".into(),
            "-d".into(),
            args.value_bytes.to_string(),
            "--csv".into(),
        ];
        if pipeline > 1 {
            argv.push("-P".into());
            argv.push(pipeline.to_string());
        }
        let shown = format!("{} {}", args.redis_benchmark, argv.join(" "));
        if let Some(user) = &info.redis.username {
            argv.push("--user".into());
            argv.push(user.clone());
        }
        if let Some(pass) = &info.redis.password {
            argv.push("-a".into());
            argv.push(pass.clone());
        }
        eprintln!("  $ {shown}");
        let out = std::process::Command::new(&args.redis_benchmark)
            .args(&argv)
            .output()
            .with_context(|| format!("running {}", args.redis_benchmark))?;
        if !out.status.success() {
            bail!(
                "{shown} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut got = 0;
        for line in text.lines() {
            let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
            if fields.len() < 2 || fields[0] == "test" {
                continue;
            }
            let Ok(rps) = fields[1].parse::<f64>() else {
                continue;
            };
            let p = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
            let row = RbRow {
                label: label.clone(),
                clients,
                pipeline,
                test: fields[0].to_ascii_lowercase(),
                rps,
                p50_ms: p(4),
                p99_ms: p(6),
            };
            eprintln!(
                "  redis-benchmark {label:<8} {:<4} {:>10.0} req/s",
                row.test, row.rps
            );
            rows.push(row);
            got += 1;
        }
        if got == 0 {
            bail!("{shown} printed no CSV results:\n{text}");
        }
        commands.push(shown);
    }
    // redis-benchmark's only key (no -r): remove it.
    if let Ok(mut conn) = client.get_connection() {
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg("key:__rand_int__").query(&mut conn);
    }
    Ok((rows, commands))
}

// --------------------------------------------------------------------- e2e

/// One cell of a `strata-loadgen run` JSON.
#[derive(Debug, Clone)]
struct E2eCell {
    scenario: String,
    clients: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    server_cpu: Option<f64>,
    other_cpu: Option<f64>,
}

fn read_e2e(path: &PathBuf) -> Result<Vec<E2eCell>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let results = doc["results"]
        .as_array()
        .with_context(|| format!("{} has no results array", path.display()))?;
    Ok(results
        .iter()
        .map(|r| E2eCell {
            scenario: r["scenario"].as_str().unwrap_or("?").to_string(),
            clients: r["clients"].as_u64().unwrap_or(0),
            rps: r["rps"].as_f64().unwrap_or(0.0),
            p50_ms: r["p50_ms"].as_f64().unwrap_or(0.0),
            p99_ms: r["p99_ms"].as_f64().unwrap_or(0.0),
            errors: r["errors"].as_u64().unwrap_or(0),
            server_cpu: r["server_cpu_cores"].as_f64(),
            other_cpu: r["other_cpu_cores"].as_f64(),
        })
        .collect())
}

// ------------------------------------------------------------------ driver

pub(crate) async fn run(args: CacheArgs) -> Result<i32> {
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be > 0 and --warmup >= 0");
    }
    if args.keys == 0
        || args.rounds == 0
        || args.tasks.contains(&0)
        || args.redis_tasks.contains(&0)
    {
        bail!("--keys, --tasks and --redis-tasks need positive values");
    }
    if !(args.capacity_fraction > 0.0 && args.capacity_fraction <= 1.0) || args.get_percent > 100 {
        bail!("--capacity-fraction must be in (0, 1] and --get-percent at most 100");
    }

    eprintln!("==> in-process caches");
    let mem = memory_section(&args).await?;

    let (redis_cells, rb_rows, rb_commands) = if args.redis_url == "none" {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        eprintln!(
            "==> Redis at {}",
            strata_cache::redis::redact_url(&args.redis_url)
        );
        let cells = redis_strata(&args).await?;
        let (rows, commands) = redis_benchmark(&args)?;
        (cells, rows, commands)
    };

    let on = args.e2e_on.as_ref().map(read_e2e).transpose()?;
    let off = args.e2e_off.as_ref().map(read_e2e).transpose()?;

    let doc = to_json(&args, &mem, &redis_cells, &rb_rows, &rb_commands, &on, &off);
    if let Some(p) = &args.json {
        crate::write_file(
            p,
            &serde_json::to_string_pretty(&doc).context("serialising")?,
        )?;
    }
    let md = markdown(&args, &mem, &redis_cells, &rb_rows, &rb_commands, &on, &off);
    if let Some(p) = &args.markdown {
        crate::write_file(p, &md)?;
    } else {
        println!("{md}");
    }
    let e2e_errors: u64 = on
        .iter()
        .chain(off.iter())
        .flatten()
        .map(|c| c.errors)
        .sum();
    if e2e_errors > 0 {
        eprintln!("!!! {e2e_errors} end-to-end requests failed");
        return Ok(2);
    }
    Ok(0)
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn find_mem<'a>(mem: &'a [MemCell], s: f64, tasks: usize, id: &str) -> Option<&'a MemCell> {
    mem.iter()
        .find(|c| c.zipf == s && c.tasks == tasks && c.subject == id)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{x:.2}×"))
}

fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let bytes = s.as_bytes();
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && (bytes.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(char::from(*b));
    }
    out
}

/// Worst other-process CPU over the cells, and their re-runs.
fn disturbance(cells: [Option<&MemCell>; 3]) -> String {
    let worst = cells
        .iter()
        .flatten()
        .filter_map(|c| c.other_cpu)
        .fold(None, |acc: Option<f64>, x| {
            Some(acc.map_or(x, |a| a.max(x)))
        });
    let reruns: u32 = cells.iter().flatten().map(|c| c.reruns).sum();
    let flag = if worst.is_some_and(|x| x > MAX_OTHER_CPU) {
        " ⚠"
    } else {
        ""
    };
    match worst {
        Some(x) => format!("{x:.2} cores ({reruns}){flag}"),
        None => "—".into(),
    }
}

fn rb_find<'a>(rows: &'a [RbRow], label: &str, test: &str) -> Option<&'a RbRow> {
    rows.iter().find(|r| r.label == label && r.test == test)
}

/// The label of a redis-benchmark run: `c<clients>` or `c<clients>-P<pipeline>`.
fn rb_label(clients: usize, pipeline: usize) -> String {
    if pipeline > 1 {
        format!("c{clients}-P{pipeline}")
    } else {
        format!("c{clients}")
    }
}

fn e2e_find<'a>(cells: &'a [E2eCell], scenario: &str, clients: u64) -> Option<&'a E2eCell> {
    cells
        .iter()
        .find(|c| c.scenario == scenario && c.clients == clients)
}

fn to_json(
    args: &CacheArgs,
    mem: &[MemCell],
    redis_cells: &[RedisCell],
    rb: &[RbRow],
    rb_commands: &[String],
    on: &Option<Vec<E2eCell>>,
    off: &Option<Vec<E2eCell>>,
) -> Value {
    let meta: serde_json::Map<String, Value> = args
        .meta
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mem_json: Vec<Value> = mem
        .iter()
        .map(|c| {
            let strata = find_mem(mem, c.zipf, c.tasks, "strata").map(MemCell::ops_per_s);
            json!({
                "zipf_s": c.zipf, "tasks": c.tasks, "cache": c.subject,
                "ops": c.ops, "gets": c.gets, "hits": c.hits, "inserts": c.inserts,
                "seconds": r3(c.seconds), "ops_per_s": c.ops_per_s().round(),
                "ops_per_s_rounds": c.rounds.iter().map(|x| x.round()).collect::<Vec<_>>(),
                "hit_ratio": r3(c.hit_ratio()),
                "other_cpu_cores_worst_round": c.other_cpu.map(r3), "reruns": c.reruns,
                "strata_ratio": strata.and_then(|s| ratio(s, c.ops_per_s())).map(r3),
            })
        })
        .collect();
    let redis_json: Vec<Value> = redis_cells
        .iter()
        .map(|c| {
            json!({
                "op": c.op, "tasks": c.tasks, "connections": c.connections,
                "in_flight_per_connection": c.depth(),
                "peer_same_shape": rb_label(c.connections, c.depth()),
                "ops": c.ops, "errors": c.errors,
                "seconds": r3(c.seconds), "ops_per_s": c.ops_per_s().round(),
                "p50_ms": c.p50_ms, "p99_ms": c.p99_ms,
            })
        })
        .collect();
    let rb_json: Vec<Value> = rb
        .iter()
        .map(|r| {
            json!({
                "run": r.label, "clients": r.clients, "pipeline": r.pipeline, "test": r.test,
                "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
            })
        })
        .collect();
    let e2e = |cells: &Option<Vec<E2eCell>>| -> Value {
        cells.as_ref().map_or(Value::Null, |cs| {
            Value::Array(
                cs.iter()
                    .map(|c| {
                        json!({
                            "scenario": c.scenario, "clients": c.clients, "rps": c.rps,
                            "p50_ms": c.p50_ms, "p99_ms": c.p99_ms, "errors": c.errors,
                            "server_cpu_cores": c.server_cpu, "other_cpu_cores": c.other_cpu,
                        })
                    })
                    .collect(),
            )
        })
    };
    json!({
        "command": args.command,
        "meta": meta,
        "notes": args.notes,
        "config": {
            "duration_s": args.duration, "warmup_s": args.warmup, "zipf": args.zipf,
            "tasks": args.tasks, "rounds": args.rounds, "keys": args.keys, "capacity_fraction": args.capacity_fraction,
            "value_bytes": args.value_bytes, "get_percent": args.get_percent,
            "redis_url": if args.redis_url == "none" { "none".to_string() } else { strata_cache::redis::redact_url(&args.redis_url) },
            "redis_tasks": args.redis_tasks, "redis_keys": REDIS_KEYS,
        },
        "in_process": mem_json,
        "redis_strata": redis_json,
        "redis_benchmark": {"commands": rb_commands, "results": rb_json},
        "e2e": {"history_cache_on": e2e(on), "history_cache_off": e2e(off)},
    })
}

fn markdown(
    args: &CacheArgs,
    mem: &[MemCell],
    redis_cells: &[RedisCell],
    rb: &[RbRow],
    rb_commands: &[String],
    on: &Option<Vec<E2eCell>>,
    off: &Option<Vec<E2eCell>>,
) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Strata cache benchmark\n");
    if let Some(c) = &args.command {
        let _ = writeln!(w, "Command: `{c}`\n");
    }
    let _ = writeln!(
        w,
        "Every comparison below is between measurements taken in the same run, \
         on the same machine, one after another.\n"
    );
    if !args.meta.is_empty() {
        let _ = writeln!(w, "## Machine\n");
        for (k, v) in &args.meta {
            let _ = writeln!(w, "- {k}: {v}");
        }
        let _ = writeln!(w);
    }
    for n in &args.notes {
        let _ = writeln!(w, "> {n}\n");
    }

    // Section 1.
    let capacity = ((args.keys as f64) * args.capacity_fraction).round() as u64;
    let _ = writeln!(w, "## 1. In-process cache\n");
    let _ = writeln!(
        w,
        "Workload: keys drawn from a Zipf distribution over {} keys (`k0000000`…; \
         hand-written sampler: precomputed CDF, binary search on a xorshift64* uniform); \
         {}% gets, {}% inserts of {}-byte values; a get that misses is followed by an \
         insert of that key (read-through fill), so inserts are the {}% blind writes plus \
         one per miss. Capacity {} entries ({:.0}% of the key space). Each cell: a fresh cache, \
         {} s warm-up (not counted), then {} s measured; N tokio tasks on the \
         multi-thread runtime (as many worker threads as cores); repeated {} times, the \
         rounds interleaved across the three caches. **ops/s counts every cache call** \
         (gets + inserts); the table gives the median round in millions of ops/s and, in \
         brackets, the slowest–fastest round; the ratios are of the medians; hit ratios are \
         over all rounds.\n",
        fmt_int(args.keys as f64),
        args.get_percent,
        100 - args.get_percent,
        args.value_bytes,
        100 - args.get_percent,
        fmt_int(capacity as f64),
        args.capacity_fraction * 100.0,
        args.warmup,
        args.duration,
        args.rounds
    );
    let _ = writeln!(
        w,
        "- **strata**: `strata_cache::MemoryCache::with_max_bytes` through \
         `Arc<dyn CacheStore>` (`get(ns, key)` / `set(ns, key, Bytes, ttl)`, namespace `{NS}`, \
         TTL 1 h). Its byte budget is sized to hold the same {} entries (key + namespace + value \
         + its 96-byte per-entry charge). Per call it validates the namespace and key, \
         allocates an owned `(String, String)` key, goes through `async_trait`'s boxed future, \
         and uses moka with a weigher and a per-entry expiry.",
        fmt_int(capacity as f64)
    );
    let _ = writeln!(
        w,
        "- **moka**: `moka::future::Cache<String, Bytes>` with `max_capacity({capacity})` \
         (entry count), no weigher, no expiry; `get(&str)` borrows the key."
    );
    let _ = writeln!(
        w,
        "- **quick_cache**: `quick_cache::sync::Cache<String, Bytes>::new({capacity})` as the \
         workspace builds it (`default-features = false`: std `RandomState` hasher and std \
         `RwLock`), called synchronously inside the same tokio tasks.\n"
    );
    let _ = writeln!(
        w,
        "| Zipf s | tasks | strata ops/s | moka ops/s | quick_cache ops/s | strata ÷ moka | strata ÷ quick_cache | hit ratio strata / moka / quick_cache | ideal hit ratio | other CPU, worst round (re-runs) |"
    );
    let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|---:|---|---:|---|");
    for &s in &args.zipf {
        let ideal = Zipf::new(args.keys, s).top_mass(capacity as usize);
        for &tasks in &args.tasks {
            let st = find_mem(mem, s, tasks, "strata");
            let mo = find_mem(mem, s, tasks, "moka");
            let qc = find_mem(mem, s, tasks, "quick_cache");
            let ops = |c: Option<&MemCell>| {
                c.map_or("—".into(), |c| {
                    let (lo, hi) = c.spread();
                    format!(
                        "{:.2} M ({:.2}–{:.2})",
                        c.ops_per_s() / 1e6,
                        lo / 1e6,
                        hi / 1e6
                    )
                })
            };
            let hit =
                |c: Option<&MemCell>| c.map_or("—".into(), |c| format!("{:.3}", c.hit_ratio()));
            let rat = |a: Option<&MemCell>, b: Option<&MemCell>| {
                fmt_ratio(
                    a.zip(b)
                        .and_then(|(a, b)| ratio(a.ops_per_s(), b.ops_per_s())),
                )
            };
            let _ = writeln!(
                w,
                "| {s:.1} | {tasks} | {} | {} | {} | **{}** | **{}** | {} / {} / {} | {ideal:.3} | {} |",
                ops(st),
                ops(mo),
                ops(qc),
                rat(st, mo),
                rat(st, qc),
                hit(st),
                hit(mo),
                hit(qc),
                disturbance([st, mo, qc]),
            );
        }
    }
    let _ = writeln!(
        w,
        "\n\"Ideal hit ratio\" is the probability mass of the {} most popular keys: what a \
         cache holding exactly the hottest keys would hit on gets. \"Other CPU\": cores the \
         rest of the machine used during the worst measured round (from `/proc/stat`); a \
         round above {MAX_OTHER_CPU} cores is re-run after 5 s, up to {MAX_RERUNS} times, \
         and ⚠ marks a row where one stayed disturbed. On a shared virtual machine the absolute \
         ops/s can drift between rounds and between runs even when no other process is busy \
         (see the brackets); the rounds are interleaved so that each ratio compares caches \
         measured under the same conditions.\n",
        fmt_int(capacity as f64)
    );

    // Section 2.
    let _ = writeln!(w, "## 2. Redis backend\n");
    if args.redis_url == "none" {
        let _ = writeln!(w, "Skipped (`--redis-url none`).\n");
    } else {
        let _ = writeln!(
            w,
            "Server: {} (the same server for both sides). **strata**: \
             `strata_cache::RedisCache` (a `ConnectionManager`, as the Strata server uses it) \
             driven by N tokio tasks, each issuing `get(\"{NS}\", key)` or `set(\"{NS}\", key, \
             {}-byte value, 1 h)` back to back over {REDIS_KEYS} pre-populated keys drawn \
             uniformly; {} s warm-up + {} s measured; latency per call. Two shapes per task \
             count: all tasks on **one shared** `RedisCache` (the server's way: one socket, its \
             requests multiplexed, so up to N in flight on it — pipelining in effect), and **one \
             `RedisCache` per task** (N sockets, one request in flight on each). \
             **redis-benchmark**: the C client as a subprocess, a single key \
             (`key:__rand_int__`, no `-r`), `SET` carries `-d {}` bytes, run in the same two \
             shapes — `-c N` (N connections, one request in flight each) and `-c 1 -P N` (one \
             connection, N requests pipelined) — plus `-c 50 -P 16`, a ceiling no Strata cell \
             matches:\n",
            strata_cache::redis::redact_url(&args.redis_url),
            args.value_bytes,
            args.warmup,
            args.duration,
            args.value_bytes
        );
        for c in rb_commands {
            let _ = writeln!(w, "- `{c}`");
        }
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "**Ratios are at equal pipelining only**: each Strata cell is compared with the \
             redis-benchmark run of the same shape (connections × requests in flight per \
             connection).\n"
        );
        let _ = writeln!(
            w,
            "| op | tasks | connections × in flight | strata RedisCache ops/s | p50 / p99 ms | redis-benchmark, same shape | req/s | p50 / p99 ms | **strata ÷ redis-benchmark** |"
        );
        let _ = writeln!(w, "|---|---:|---|---:|---|---|---:|---|---:|");
        let lat = |p50: Option<f64>, p99: Option<f64>| match (p50, p99) {
            (Some(a), Some(b)) => format!("{a:.3} / {b:.3}"),
            _ => "—".into(),
        };
        for c in redis_cells {
            let label = rb_label(c.connections, c.depth());
            let peer = rb_find(rb, &label, c.op);
            let shape = if c.connections == 1 && c.tasks > 1 {
                format!("1 × ≤{} (shared)", c.tasks)
            } else {
                format!("{} × 1", c.connections)
            };
            let rb_shape = if c.depth() > 1 {
                format!("`-c 1 -P {}`", c.depth())
            } else {
                format!("`-c {}`", c.connections)
            };
            let _ = writeln!(
                w,
                "| {} | {} | {shape} | {} | {} | {rb_shape} | {} | {} | **{}** |",
                c.op,
                c.tasks,
                fmt_int(c.ops_per_s()),
                lat(Some(c.p50_ms), Some(c.p99_ms)),
                peer.map_or("—".into(), |p| fmt_int(p.rps)),
                peer.map_or("—".into(), |p| lat(p.p50_ms, p.p99_ms)),
                fmt_ratio(peer.and_then(|p| ratio(c.ops_per_s(), p.rps))),
            );
        }
        let ceiling: Vec<String> = ["get", "set"]
            .iter()
            .filter_map(|op| {
                rb_find(rb, &rb_label(50, 16), op).map(|p| format!("{op} {} req/s", fmt_int(p.rps)))
            })
            .collect();
        if !ceiling.is_empty() {
            let _ = writeln!(
                w,
                "\nCeiling, not a comparison (no Strata cell has this shape): `redis-benchmark \
                 -c 50 -P 16` (50 connections × 16 pipelined) — {}.",
                ceiling.join(", ")
            );
        }
        let _ = writeln!(
            w,
            "\nA shared `RedisCache` keeps up to N requests in flight continuously; \
             `redis-benchmark -P N` sends N, waits for all N replies, then sends the next N, so \
             the shapes match in depth, not in every detail. redis-benchmark runs on the same \
             machine as the server, like the Strata client; Redis's own CPU counts as part of \
             the benchmark in the load figures.\n"
        );
    }

    // Section 3.
    let _ = writeln!(
        w,
        "## 3. End to end: history reads with the history cache on and off\n"
    );
    match (on, off) {
        (Some(on), Some(off)) => {
            let _ = writeln!(
                w,
                "Two `strata serve` processes (release build, fresh data folder each, \
                 `STRATA_RATE_LIMIT=100000000`), one after the other: **on** = default \
                 configuration (history cache on), **off** = `STRATA_HISTORY_CACHE_BYTES=0`. \
                 Each is driven by `strata-loadgen run --scenarios health,history` (see \
                 bench/http.sh; `history` = `GET …/messages?latest=true&limit=50` of one \
                 conversation all clients share; `health` = `GET /health`, the ceiling). \
                 Server and load generator share the machine's cores.\n"
            );
            let _ = writeln!(
                w,
                "| scenario | clients | on req/s | on p50 / p99 ms | off req/s | off p50 / p99 ms | on ÷ off | ÷ /health on / off | server cores on / off | server CPU µs per request on / off |"
            );
            let _ = writeln!(w, "|---|---:|---:|---|---:|---|---:|---|---|---|");
            let mut rows: Vec<(String, u64)> =
                on.iter().map(|c| (c.scenario.clone(), c.clients)).collect();
            rows.dedup();
            for (scenario, clients) in rows {
                let a = e2e_find(on, &scenario, clients);
                let b = e2e_find(off, &scenario, clients);
                let rl = |c: Option<&E2eCell>| {
                    c.map_or("—".into(), |c| {
                        format!("{:.2} / {:.2}", c.p50_ms, c.p99_ms)
                    })
                };
                let to_health = |cells: &[E2eCell], c: Option<&E2eCell>| {
                    c.zip(e2e_find(cells, "health", clients))
                        .and_then(|(c, h)| ratio(c.rps, h.rps))
                        .map_or("—".into(), |x| format!("{x:.2}"))
                };
                let us = |c: Option<&E2eCell>| {
                    c.and_then(|c| c.server_cpu.zip(Some(c.rps)))
                        .and_then(|(cores, rps)| ratio(cores * 1e6, rps))
                        .map_or("—".into(), |x| format!("{x:.0}"))
                };
                let cores = |c: Option<&E2eCell>| {
                    c.and_then(|c| c.server_cpu)
                        .map_or("—".into(), |x| format!("{x:.2}"))
                };
                let _ = writeln!(
                    w,
                    "| {scenario} | {clients} | {} | {} | {} | {} | **{}** | {} / {} | {} / {} | {} / {} |",
                    a.map_or("—".into(), |c| fmt_int(c.rps)),
                    rl(a),
                    b.map_or("—".into(), |c| fmt_int(c.rps)),
                    rl(b),
                    fmt_ratio(a.zip(b).and_then(|(a, b)| ratio(a.rps, b.rps))),
                    to_health(on, a),
                    to_health(off, b),
                    cores(a),
                    cores(b),
                    us(a),
                    us(b),
                );
            }
            let _ = writeln!(
                w,
                "\nThe `health` rows are the control: where their on ÷ off is far from 1.00× \
                 the machine's speed drifted between the two servers (they run one after the \
                 other), and the `÷ /health` column (each server's history throughput relative \
                 to its own /health ceiling) is the fairer on/off comparison."
            );
            let errors: u64 = on.iter().chain(off.iter()).map(|c| c.errors).sum();
            let disturbed: Vec<String> = on
                .iter()
                .map(|c| ("on", c))
                .chain(off.iter().map(|c| ("off", c)))
                .filter(|(_, c)| c.other_cpu.is_some_and(|x| x > 0.15))
                .map(|(which, c)| {
                    format!(
                        "{which} {} @{} ({:.2} cores)",
                        c.scenario,
                        c.clients,
                        c.other_cpu.unwrap_or(0.0)
                    )
                })
                .collect();
            let _ = writeln!(w, "\nErrors (non-2xx or transport), all cells: {errors}.");
            if disturbed.is_empty() {
                let _ = writeln!(
                    w,
                    "No cell was disturbed by other processes (> 0.15 cores)."
                );
            } else {
                let _ = writeln!(
                    w,
                    "Cells during which other processes used > 0.15 cores (after retries): {}.",
                    disturbed.join(", ")
                );
            }
            let _ = writeln!(w);
        }
        _ => {
            let _ = writeln!(
                w,
                "Not measured in this run (no `--e2e-on` / `--e2e-off`).\n"
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_samples_follow_the_distribution() {
        let n = 1000;
        let zipf = Zipf::new(n, 1.0);
        let mut rng = Rng::new(7);
        let draws = 200_000;
        let mut counts = vec![0u64; n];
        for _ in 0..draws {
            let r = zipf.sample(&mut rng);
            assert!(r < n);
            counts[r] += 1;
        }
        // Rank 0 has weight 1 / H(1000) ≈ 0.1336; rank 1 half of that.
        let p0 = counts[0] as f64 / draws as f64;
        let p1 = counts[1] as f64 / draws as f64;
        assert!((p0 - 0.1336).abs() < 0.005, "p0 = {p0}");
        assert!((p1 - 0.0668).abs() < 0.004, "p1 = {p1}");
        assert!((zipf.top_mass(n) - 1.0).abs() < 1e-9);
        assert!((zipf.top_mass(1) - p0).abs() < 0.005);
    }

    #[test]
    fn rng_uniform_is_in_range() {
        let mut rng = Rng::new(0);
        for _ in 0..10_000 {
            let u = rng.next_f64();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn peer_runs_have_the_cells_shapes() {
        assert_eq!(rb_label(1, 1), "c1");
        assert_eq!(rb_label(50, 1), "c50");
        assert_eq!(rb_label(1, 50), "c1-P50");
        let shared = RedisCell {
            op: "get",
            tasks: 50,
            connections: 1,
            ops: 0,
            errors: 0,
            seconds: 1.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
        };
        assert_eq!(rb_label(shared.connections, shared.depth()), "c1-P50");
        let own = RedisCell {
            connections: 50,
            ..shared
        };
        assert_eq!(rb_label(own.connections, own.depth()), "c50");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(fmt_int(0.0), "0");
        assert_eq!(fmt_int(999.0), "999");
        assert_eq!(fmt_int(1000.0), "1,000");
        assert_eq!(fmt_int(1_234_567.4), "1,234,567");
    }
}
