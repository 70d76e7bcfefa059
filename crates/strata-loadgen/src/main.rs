//! `strata-loadgen`: a closed-loop HTTP load generator for a running strata
//! server.
//!
//! `strata-loadgen run` sets up its own bot, writer key, user, conversations
//! and keys through the API (with the global admin key), then runs every
//! scenario at every client count. Each client is a tokio task with its own
//! `reqwest::Client` (one keep-alive connection) issuing requests
//! back-to-back: a warm-up, then a measured window. Every latency of the
//! measured window is recorded; the run reports requests/s, p50, p99, max and
//! errors (any non-2xx answer or transport failure), and can write the results
//! as JSON and as a markdown report. `bench/http.sh` drives it end to end.
//!
//! `strata-loadgen cache-bench` and `strata-loadgen ann` are in-process
//! benchmarks of the cache layer (`bench/cache.sh`) and of the vector engine
//! (`bench/vectors.sh`).

mod ann;
mod cachebench;
mod report;
mod scenario;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::scenario::{run_cell, Scenario, Setup};

#[derive(Parser, Debug)]
#[command(
    name = "strata-loadgen",
    version,
    about = "Closed-loop HTTP load generator for strata"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print a currently free TCP port on 127.0.0.1.
    FreePort,
    /// Wait until `GET <url>/health` answers 200.
    Wait {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long, env = "STRATA_URL")]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
    /// Run the benchmark matrix (scenarios × client counts).
    Run(Box<RunArgs>),
    /// Benchmark Strata's cache layer against peers (in-process caches,
    /// redis-benchmark) and report end-to-end runs (see bench/cache.sh).
    CacheBench(Box<cachebench::CacheArgs>),
    /// Benchmark the in-process vector engine on an ANN dataset (fvecs /
    /// ivecs): build, recall@k and QPS per ef, filtered search (see
    /// bench/vectors.sh).
    Ann(Box<ann::AnnArgs>),
}

/// Options of `strata-loadgen run`.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "STRATA_URL")]
    url: String,
    /// The server's global admin key (used only for setup).
    #[arg(long, env = "STRATA_ADMIN_KEY", hide_env_values = true)]
    admin_key: String,
    /// Scenarios to run, in this order (`health` first gives the ratios).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "health,append,append-shared,history,kv-put,kv-get"
    )]
    scenarios: Vec<Scenario>,
    /// Concurrent clients per cell.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Warm-up seconds per cell (requests run but are not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Pause between cells, in milliseconds, to let the server settle.
    #[arg(long, default_value_t = 500)]
    pause_ms: u64,
    /// Bot id to create for the run (default: bench-<unix seconds>).
    #[arg(long)]
    bot: Option<String>,
    /// The server's process id, to report its CPU use per cell (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A cell during which other processes used more CPU cores than this is
    /// flagged, and re-run up to `--retries` times.
    #[arg(long, default_value_t = 0.15)]
    max_other_cpu: f64,
    /// Re-runs of a cell disturbed by other processes (needs --server-pid).
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Seconds to wait before re-running a disturbed cell.
    #[arg(long, default_value_t = 15)]
    retry_wait_s: u64,
    /// Client count the verdict is judged at.
    #[arg(long, default_value_t = 64)]
    verdict_clients: usize,
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
    #[arg(long = "meta", value_parser = parse_meta)]
    meta: Vec<(String, String)>,
    /// Free-text notes for the report (repeatable).
    #[arg(long = "note")]
    notes: Vec<String>,
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected name=value, got {s:?}")),
    }
}

/// What one cell (scenario × client count) measured.
#[derive(Debug, Clone)]
pub(crate) struct CellResult {
    pub scenario: Scenario,
    pub clients: usize,
    /// Successful responses inside the measured window.
    pub ok: u64,
    /// Non-2xx answers and transport failures, warm-up included.
    pub errors: u64,
    /// Errors by kind (`HTTP 500`, `transport: ...`).
    pub error_kinds: BTreeMap<String, u64>,
    /// A few error bodies, for diagnosis.
    pub error_samples: Vec<String>,
    pub duration_s: f64,
    pub rps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU cores the server process used over the measured window.
    pub server_cpu: Option<f64>,
    /// CPU cores this load generator used over the measured window.
    pub loadgen_cpu: Option<f64>,
    /// CPU cores everything else on the machine used over the measured
    /// window (interference: other builds, tests, daemons).
    pub other_cpu: Option<f64>,
    /// Runs it took (more than 1 when other processes disturbed it).
    pub attempts: u32,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::FreePort => free_port(),
        Cmd::Wait { url, timeout_s } => wait_healthy(&url, timeout_s).await,
        Cmd::Run(args) => run(*args).await,
        Cmd::CacheBench(args) => cachebench::run(*args).await,
        Cmd::Ann(args) => tokio::task::block_in_place(|| ann::run(*args)),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("strata-loadgen: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn free_port() -> Result<i32> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    println!("{}", l.local_addr().context("local address")?.port());
    Ok(0)
}

async fn wait_healthy(url: &str, timeout_s: u64) -> Result<i32> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building the HTTP client")?;
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    let health = format!("{}/health", url.trim_end_matches('/'));
    loop {
        match client.get(&health).send().await {
            Ok(r) if r.status().is_success() => return Ok(0),
            _ if Instant::now() >= deadline => {
                bail!("{health} did not answer 200 within {timeout_s} s")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn run(args: RunArgs) -> Result<i32> {
    if args.clients.is_empty() || args.clients.contains(&0) {
        bail!("--clients needs positive counts");
    }
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be > 0 and --warmup >= 0");
    }
    let url = args.url.trim_end_matches('/').to_string();
    let bot = match &args.bot {
        Some(b) => b.clone(),
        None => format!(
            "bench-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ),
    };
    let mut setup = Setup::new(&url, &args.admin_key, &bot).await?;
    eprintln!(
        "strata-loadgen: {url}, bot {bot}; {} s warm-up + {} s measured per cell; clients {:?}",
        args.warmup, args.duration, args.clients
    );

    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let mut results: Vec<CellResult> = Vec::new();
    let mut first = true;
    for &scenario in &args.scenarios {
        for &clients in &args.clients {
            if !first {
                tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
            }
            first = false;
            let mut attempt = 1;
            let r = loop {
                let plan = setup.prepare(scenario, clients).await.with_context(|| {
                    format!("setting up {} with {clients} clients", scenario.name())
                })?;
                let mut r =
                    run_cell(scenario, clients, plan, warmup, duration, args.server_pid).await?;
                r.attempts = attempt;
                match r.other_cpu {
                    Some(other) if other > args.max_other_cpu && attempt <= args.retries => {
                        eprintln!(
                            "  ~~ {} with {clients} clients: other processes used {other:.2} cores \
                             (> {}); retrying in {} s ({attempt}/{})",
                            scenario.name(),
                            args.max_other_cpu,
                            args.retry_wait_s,
                            args.retries
                        );
                        tokio::time::sleep(Duration::from_secs(args.retry_wait_s)).await;
                        attempt += 1;
                    }
                    _ => break r,
                }
            };
            eprintln!(
                "  {:<13} clients {:>3}: {:>9.1} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  errors {}  cpu: server {} loadgen {} other {}",
                scenario.name(),
                clients,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.errors,
                fmt_cores(r.server_cpu),
                fmt_cores(r.loadgen_cpu),
                fmt_cores(r.other_cpu)
            );
            if r.errors > 0 {
                eprintln!(
                    "  !!! {} ERRORS in {} with {clients} clients: {:?}",
                    r.errors,
                    scenario.name(),
                    r.error_kinds
                );
                for s in &r.error_samples {
                    eprintln!("  !!!   {s}");
                }
            }
            results.push(r);
        }
    }

    let rep = report::Report {
        command: args.command.as_deref(),
        meta: &args.meta,
        notes: &args.notes,
        warmup_s: args.warmup,
        duration_s: args.duration,
        clients: &args.clients,
        verdict_clients: args.verdict_clients,
        other_cpu_warn: args.max_other_cpu,
        retries: args.retries,
        results: &results,
    };
    if let Some(p) = &args.json {
        write_file(p, &rep.json())?;
    }
    let md = rep.markdown();
    if let Some(p) = &args.markdown {
        write_file(p, &md)?;
    }
    let verdict = rep.verdict();
    eprintln!("{}", verdict.line);

    let total_errors: u64 = results.iter().map(|r| r.errors).sum();
    if total_errors > 0 {
        eprintln!("!!! strata-loadgen: {total_errors} requests FAILED during the run; see above");
        return Ok(2);
    }
    Ok(0)
}

fn fmt_cores(c: Option<f64>) -> String {
    c.map_or_else(|| "-".to_string(), |x| format!("{x:.2}"))
}

fn write_file(p: &std::path::Path, text: &str) -> Result<()> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))
}
