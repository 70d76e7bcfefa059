//! `strata-loadgen ann`: the in-process vector engine
//! (`strata_vectors::VectorIndex`) on an ANN dataset in the TEXMEX
//! fvecs/ivecs format, the same measurements `bench/ann_peer.py` makes with
//! hnswlib (see `bench/vectors.sh`).
//!
//! 1. Build: ids `0..n` (`PointId::Num`) with the payloads of
//!    `base_attrs.jsonl.gz` (`module_top`, `len_bucket`, `year`), upserted in
//!    batches with `--threads` threads; wall time, process RSS (VmRSS) before
//!    and after, `memory_bytes()`. Payload indexes are declared after the
//!    build and timed apart. A second, payload-free index is built in a child
//!    process (`--bare-only`) so that its RSS delta is not blurred by the
//!    first index's freed memory: that is the figure comparable with
//!    hnswlib, which holds no payload.
//! 2. Cells: each `--ef` unfiltered over all queries, then each filter of
//!    `filters.json` at each `--filter-ef` over the first `--filter-queries`
//!    queries (recall against `gt_filter_<name>.ivecs`). A cell is a warm-up
//!    (the first `--warmup` queries, untimed) and `--repeats` timed passes,
//!    single-threaded, one `search` call per query; the *median* pass gives
//!    the QPS, the first pass the recall@k.
//! 3. `--interleave`: the passes are run on command, so that a driver
//!    (`bench/ann_peer.py --strata-loadgen`) alternates them with the peer's
//!    passes and both engines see the same machine conditions. After the
//!    builds this prints `{"ready": true}` on stdout and then answers one
//!    JSON line per command line read from stdin:
//!    `{"cmd": "pass", "ef": 16, "filter": null | "<name>", "warmup": bool}`
//!    → `{"secs": s, "other_cpu": c}`; `{"cmd": "done"}` writes `--out` and
//!    answers `{"done": true}`.
//!
//! The results are written as JSON (`--out`); `bench/vectors_report.py`
//! turns them into the report.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use strata_core::filter::Filter;
use strata_vectors::{
    FieldType, HnswParams, IndexConfig, IndexedPoint, Metric, PointId, Quantization, VectorIndex,
};

use crate::scenario::{cpu_seconds, machine_busy_seconds};

/// A cell whose median pass saw other processes use more cores than this is
/// flagged in the log (and by the report).
const MAX_OTHER_CPU: f64 = 0.3;
/// Passes shorter than this get no other-process CPU figure: /proc/stat
/// counts in clock ticks (10 ms), too coarse for them.
const MIN_CPU_WINDOW_S: f64 = 0.1;

/// Options of `strata-loadgen ann`.
#[derive(clap::Args, Debug)]
pub(crate) struct AnnArgs {
    /// Dataset folder (base.fvecs, query.fvecs, groundtruth.ivecs,
    /// base_attrs.jsonl.gz, filters.json, gt_filter_<name>.ivecs).
    #[arg(long)]
    data: PathBuf,
    /// HNSW links per node (twice that on layer 0).
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW candidate list size while inserting.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Threads for the build (`upsert_batch`).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Search ef values of the unfiltered sweep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,12,16,24,32,64,128,256"
    )]
    ef: Vec<usize>,
    /// Search ef values of the filtered runs.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    filter_ef: Vec<usize>,
    /// Results per query (recall@k).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Metric of the index. The dataset is L2-normalised, so `dot` is
    /// hnswlib's space='ip' and ranks exactly like `cosine`.
    #[arg(long, default_value = "dot")]
    metric: String,
    /// Quantization of the in-memory vectors: none, f16 or i8.
    #[arg(long, default_value = "none")]
    quantization: String,
    /// Points per `upsert_batch` call (the HTTP API takes 500 per request;
    /// small batches also keep freed input buffers out of the RSS figure).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Queries run once, untimed, before each timed cell.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Timed passes per cell; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Queries of each filtered pass (the first N; default all). The
    /// filtered cells of the hnswlib peer are slow, so the bench runs both
    /// engines on the same smaller set.
    #[arg(long)]
    filter_queries: Option<usize>,
    /// Run the passes on command from stdin (see the module docs).
    #[arg(long)]
    interleave: bool,
    /// Skip the payload-free index (built in a child process).
    #[arg(long)]
    no_bare: bool,
    /// Skip the filtered runs.
    #[arg(long)]
    no_filters: bool,
    /// Internal: build the payload-free index only and print its build and
    /// memory figures as JSON on stdout.
    #[arg(long, hide = true)]
    bare_only: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Vectors of an fvecs file, row-major.
#[derive(Debug)]
struct Matrix {
    rows: usize,
    dim: usize,
    data: Vec<f32>,
}

impl Matrix {
    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Reads a TEXMEX file: records of a little-endian u32 `d` followed by `d`
/// 4-byte little-endian values. Returns (rows, dim, raw 4-byte words).
fn read_vecs_words(path: &Path) -> Result<(usize, usize, Vec<[u8; 4]>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 4 {
        bail!("{} is empty", path.display());
    }
    let dim = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let rec = 4 * (dim + 1);
    if dim == 0 || bytes.len() % rec != 0 {
        bail!(
            "{}: {} bytes is not a whole number of records of dimension {dim}",
            path.display(),
            bytes.len()
        );
    }
    let rows = bytes.len() / rec;
    let mut words = Vec::with_capacity(rows * dim);
    for r in 0..rows {
        let at = r * rec;
        let d = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        if d as usize != dim {
            bail!(
                "{}: record {r} has dimension {d}, the first has {dim}",
                path.display()
            );
        }
        for c in bytes[at + 4..at + rec].chunks_exact(4) {
            words.push([c[0], c[1], c[2], c[3]]);
        }
    }
    Ok((rows, dim, words))
}

fn read_fvecs(path: &Path) -> Result<Matrix> {
    let (rows, dim, words) = read_vecs_words(path)?;
    Ok(Matrix {
        rows,
        dim,
        data: words.into_iter().map(f32::from_le_bytes).collect(),
    })
}

/// An ivecs file as rows of ids (`-1` padding kept).
fn read_ivecs(path: &Path) -> Result<Vec<Vec<i32>>> {
    let (rows, dim, words) = read_vecs_words(path)?;
    let ids: Vec<i32> = words.into_iter().map(i32::from_le_bytes).collect();
    let out: Vec<Vec<i32>> = ids.chunks_exact(dim).map(<[i32]>::to_vec).collect();
    debug_assert_eq!(out.len(), rows);
    Ok(out)
}

/// `base_attrs.jsonl.gz`: one payload object per id, in id order.
fn read_attrs(path: &Path, n: usize) -> Result<Vec<Value>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut text)
        .with_context(|| format!("decompressing {}", path.display()))?;
    let mut out: Vec<Option<Value>> = vec![None; n];
    for (lineno, line) in BufReader::new(text.as_bytes()).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}", path.display(), lineno + 1))?;
        let id = v["id"]
            .as_u64()
            .with_context(|| format!("{} line {}: no id", path.display(), lineno + 1))?
            as usize;
        if id >= n {
            bail!("{}: id {id} is outside 0..{n}", path.display());
        }
        out[id] = Some(json!({
            "module_top": v["module_top"],
            "len_bucket": v["len_bucket"],
            "year": v["year"],
        }));
    }
    out.into_iter()
        .enumerate()
        .map(|(i, v)| v.with_context(|| format!("{}: id {i} is missing", path.display())))
        .collect()
}

/// The process's resident set size in bytes (VmRSS of /proc/self/status).
fn rss_bytes() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest
                .split_whitespace()
                .next()
                .context("VmRSS without a value")?
                .parse()
                .context("VmRSS value")?;
            return Ok(kb * 1024);
        }
    }
    bail!("no VmRSS line in /proc/self/status")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A `filters.json` entry's conditions (`["f","eq",v]`, `["f","range",lo,hi]`
/// inclusive, `["f","in",[v…]]`) as the engine's filter JSON (an AND).
fn filter_json(name: &str, conditions: &Value) -> Result<Value> {
    let conds = conditions
        .as_array()
        .with_context(|| format!("filter {name}: conditions is not a list"))?;
    let mut must = Vec::new();
    for c in conds {
        let c = c
            .as_array()
            .with_context(|| format!("filter {name}: condition {c} is not a list"))?;
        let field = c.first().and_then(Value::as_str);
        let op = c.get(1).and_then(Value::as_str);
        must.push(match (field, op, c.len()) {
            (Some(f), Some("eq"), 3) => json!({"key": f, "match": {"value": c[2]}}),
            (Some(f), Some("in"), 3) => json!({"key": f, "match": {"any": c[2]}}),
            (Some(f), Some("range"), 4) => {
                json!({"key": f, "range": {"gte": c[2], "lte": c[3]}})
            }
            _ => bail!("filter {name}: condition {c:?} is not understood"),
        });
    }
    Ok(json!({ "must": must }))
}

/// Same filter evaluated here, to count the matching points.
fn passes(conditions: &Value, payload: &Value) -> bool {
    conditions.as_array().is_some_and(|conds| {
        conds.iter().all(|c| {
            let v = &payload[c[0].as_str().unwrap_or("")];
            match c[1].as_str() {
                Some("eq") => *v == c[2],
                Some("in") => c[2].as_array().is_some_and(|a| a.contains(v)),
                Some("range") => match (v.as_f64(), c[2].as_f64(), c[3].as_f64()) {
                    (Some(x), Some(lo), Some(hi)) => lo <= x && x <= hi,
                    _ => false,
                },
                _ => false,
            }
        })
    })
}

fn index_config(args: &AnnArgs, dim: usize) -> Result<IndexConfig> {
    let hnsw = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.ef.first().copied().unwrap_or(64),
    };
    hnsw.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(IndexConfig {
        dimension: dim,
        metric: Metric::parse(&args.metric).map_err(|e| anyhow::anyhow!("{e}"))?,
        hnsw,
        quantization: Quantization::parse(&args.quantization)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    })
}

/// What a build measured.
#[derive(Debug)]
struct Build {
    index: VectorIndex,
    build_s: f64,
    rss_before: u64,
    rss_after: u64,
    /// Cores this process used during the build.
    cpu: Option<f64>,
    /// Cores other processes used during the build.
    other_cpu: Option<f64>,
}

/// Cores used by this process and by everything else between two samples.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    busy: Option<f64>,
    me: Option<f64>,
    at: Instant,
}

impl CpuSample {
    fn now() -> CpuSample {
        CpuSample {
            busy: machine_busy_seconds(),
            me: cpu_seconds(None),
            at: Instant::now(),
        }
    }

    /// (this process's cores, other processes' cores) since `self`.
    fn cores_since(&self) -> (Option<f64>, Option<f64>) {
        let end = CpuSample::now();
        let secs = end.at.duration_since(self.at).as_secs_f64();
        if secs <= 0.0 {
            return (None, None);
        }
        let me = match (self.me, end.me) {
            (Some(a), Some(b)) => Some((b - a) / secs),
            _ => None,
        };
        let other = match (self.busy, end.busy, me) {
            (Some(a), Some(b), Some(m)) => Some(((b - a) / secs - m).max(0.0)),
            _ => None,
        };
        (me, other)
    }
}

/// Builds an index over `base` in batches; `payloads` when given.
fn build(
    cfg: IndexConfig,
    base: &Matrix,
    payloads: Option<&[Value]>,
    batch: usize,
    threads: usize,
) -> Result<Build> {
    let ingested_at = now_ms();
    let rss_before = rss_bytes()?;
    let cpu0 = CpuSample::now();
    let t = Instant::now();
    let index = VectorIndex::new(cfg);
    let mut start = 0;
    while start < base.rows {
        let end = (start + batch).min(base.rows);
        let points: Vec<IndexedPoint> = (start..end)
            .map(|i| IndexedPoint {
                id: PointId::Num(i as u64),
                vector: base.row(i).to_vec(),
                payload: payloads.map(|p| p[i].clone()),
                ingested_at,
                expires_at: None,
            })
            .collect();
        index.upsert_batch(points, threads);
        start = end;
    }
    let build_s = t.elapsed().as_secs_f64();
    let (cpu, other_cpu) = cpu0.cores_since();
    let rss_after = rss_bytes()?;
    Ok(Build {
        index,
        build_s,
        rss_before,
        rss_after,
        cpu,
        other_cpu,
    })
}

/// Recall@k of `results` against the first k ids of each ground-truth row.
fn recall(results: &[Vec<(PointId, f32)>], gt: &[Vec<i32>], k: usize) -> f64 {
    let mut hits = 0usize;
    for (r, g) in results.iter().zip(gt) {
        let truth: Vec<i64> = g.iter().take(k).map(|&x| i64::from(x)).collect();
        hits += r
            .iter()
            .take(k)
            .filter(|(id, _)| match id {
                PointId::Num(x) => i64::try_from(*x).is_ok_and(|x| truth.contains(&x)),
                PointId::Str(_) => false,
            })
            .count();
    }
    hits as f64 / (k * gt.len()).max(1) as f64
}

/// One cell: (ef, filter) over the first `n` queries.
#[derive(Debug)]
struct Cell {
    ef: usize,
    filter: Option<String>,
    /// Results of the first timed pass (for recall).
    results: Vec<Vec<(PointId, f32)>>,
    /// (seconds, cores other processes used) per timed pass.
    passes: Vec<(f64, Option<f64>)>,
}

impl Cell {
    fn new(ef: usize, filter: Option<String>) -> Cell {
        Cell {
            ef,
            filter,
            results: Vec::new(),
            passes: Vec::new(),
        }
    }

    fn median_secs(&self) -> f64 {
        median(self.passes.iter().map(|p| p.0).collect()).unwrap_or(f64::INFINITY)
    }

    fn median_other(&self) -> Option<f64> {
        median(self.passes.iter().filter_map(|p| p.1).collect())
    }

    fn max_other(&self) -> Option<f64> {
        self.passes
            .iter()
            .filter_map(|p| p.1)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    }
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// A filter of `filters.json`, ready to run.
struct NamedFilter {
    filter: Filter,
    json: Value,
    gt: Vec<Vec<i32>>,
    matches: usize,
}

/// What the passes search: the index, the queries, the filters.
struct Bench<'a> {
    index: &'a VectorIndex,
    queries: &'a Matrix,
    filters: &'a BTreeMap<String, NamedFilter>,
    k: usize,
    warmup: usize,
    filter_queries: usize,
    now: i64,
}

impl Bench<'_> {
    fn queries_of(&self, filter: Option<&str>) -> usize {
        match filter {
            None => self.queries.rows,
            Some(_) => self.filter_queries,
        }
    }

    fn search(&self, q: &[f32], ef: usize, filter: Option<&Filter>) -> Vec<(PointId, f32)> {
        self.index.search(q, self.k, ef, filter, self.now)
    }

    fn lookup(&self, filter: Option<&str>) -> Result<Option<&Filter>> {
        filter
            .map(|name| {
                self.filters
                    .get(name)
                    .map(|f| &f.filter)
                    .with_context(|| format!("no filter named {name}"))
            })
            .transpose()
    }

    /// The first `--warmup` queries of the cell once, untimed.
    fn warm(&self, cell: &Cell) -> Result<()> {
        let filter = self.lookup(cell.filter.as_deref())?;
        let n = self.warmup.min(self.queries_of(cell.filter.as_deref()));
        for i in 0..n {
            std::hint::black_box(self.search(self.queries.row(i), cell.ef, filter));
        }
        Ok(())
    }

    /// One timed pass of `cell`; returns (seconds, other processes' cores).
    fn pass(&self, cell: &mut Cell) -> Result<(f64, Option<f64>)> {
        let filter = self.lookup(cell.filter.as_deref())?;
        let n = self.queries_of(cell.filter.as_deref());
        let cpu0 = CpuSample::now();
        let res: Vec<Vec<(PointId, f32)>> = (0..n)
            .map(|i| self.search(self.queries.row(i), cell.ef, filter))
            .collect();
        let secs = cpu0.at.elapsed().as_secs_f64();
        let (_, other) = cpu0.cores_since();
        let other = other.filter(|_| secs >= MIN_CPU_WINDOW_S);
        if cell.results.is_empty() {
            cell.results = res;
        }
        cell.passes.push((secs, other));
        Ok((secs, other))
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / 1_048_576.0
}

/// `--bare-only`: the payload-free build, as JSON on stdout.
fn run_bare(args: &AnnArgs) -> Result<i32> {
    let base = read_fvecs(&args.data.join("base.fvecs"))?;
    let cfg = index_config(args, base.dim)?;
    let b = build(cfg, &base, None, args.batch, args.threads)?;
    let delta = b.rss_after.saturating_sub(b.rss_before);
    let out = json!({
        "build_s": b.build_s,
        "build_cpu": b.cpu,
        "build_other_cpu": b.other_cpu,
        "rss_before_bytes": b.rss_before,
        "rss_after_bytes": b.rss_after,
        "rss_delta_bytes": delta,
        "rss_delta_per_vector": delta as f64 / base.rows as f64,
        "memory_bytes": b.index.memory_bytes(),
        "memory_bytes_per_vector": b.index.memory_bytes() as f64 / base.rows as f64,
        "len": b.index.len(),
    });
    println!("{out}");
    Ok(0)
}

/// Runs this program again with `--bare-only` and reads its JSON.
fn spawn_bare(args: &AnnArgs) -> Result<Value> {
    let exe = std::env::current_exe().context("locating strata-loadgen")?;
    let out = Command::new(exe)
        .arg("ann")
        .arg("--data")
        .arg(&args.data)
        .args(["--m", &args.m.to_string()])
        .args(["--ef-construction", &args.ef_construction.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .args(["--metric", &args.metric])
        .args(["--quantization", &args.quantization])
        .args(["--batch", &args.batch.to_string()])
        .arg("--bare-only")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the payload-free build")?;
    if !out.status.success() {
        bail!("the payload-free build failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).context("reading the payload-free build's JSON")
}

pub(crate) fn run(args: AnnArgs) -> Result<i32> {
    if args.k == 0 || args.batch == 0 || args.threads == 0 || args.repeats == 0 {
        bail!("--k, --batch, --threads and --repeats must be positive");
    }
    if args.bare_only {
        return run_bare(&args);
    }
    if args.interleave && args.out.is_none() {
        bail!("--interleave needs --out (stdout carries the protocol)");
    }
    let wall = Instant::now();
    let mut notes: Vec<String> = Vec::new();

    let bare = if args.no_bare {
        None
    } else {
        eprintln!("ann: payload-free build (child process)");
        let v = spawn_bare(&args)?;
        eprintln!(
            "ann:   {:.1} s, RSS +{:.1} MiB, memory_bytes {:.1} MiB",
            v["build_s"].as_f64().unwrap_or(f64::NAN),
            mib(v["rss_delta_bytes"].as_u64().unwrap_or(0)),
            mib(v["memory_bytes"].as_u64().unwrap_or(0)),
        );
        Some(v)
    };

    let d = &args.data;
    let base = read_fvecs(&d.join("base.fvecs"))?;
    let queries = read_fvecs(&d.join("query.fvecs"))?;
    if queries.dim != base.dim {
        bail!(
            "query.fvecs has dimension {}, base.fvecs {}",
            queries.dim,
            base.dim
        );
    }
    let gt = read_ivecs(&d.join("groundtruth.ivecs"))?;
    if gt.len() != queries.rows {
        bail!(
            "groundtruth.ivecs has {} rows for {} queries",
            gt.len(),
            queries.rows
        );
    }
    let payloads = read_attrs(&d.join("base_attrs.jsonl.gz"), base.rows)?;
    let filters: BTreeMap<String, Value> = if args.no_filters {
        BTreeMap::new()
    } else {
        let p = d.join("filters.json");
        serde_json::from_slice(
            &std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?
    };
    eprintln!(
        "ann: {} base x {} dims, {} queries, {} filters; m={} ef_construction={} metric={} quantization={} threads={}",
        base.rows,
        base.dim,
        queries.rows,
        filters.len(),
        args.m,
        args.ef_construction,
        args.metric,
        args.quantization,
        args.threads
    );

    let cfg = index_config(&args, base.dim)?;
    eprintln!(
        "ann: build with payloads ({} points per upsert_batch)",
        args.batch
    );
    let b = build(cfg, &base, Some(&payloads), args.batch, args.threads)?;
    let index = b.index;
    let memory_after_build = index.memory_bytes();
    let t = Instant::now();
    index.create_field_index("module_top", FieldType::Keyword);
    index.create_field_index("len_bucket", FieldType::Keyword);
    index.create_field_index("year", FieldType::Integer);
    let payload_index_s = t.elapsed().as_secs_f64();
    let rss_after_indexes = rss_bytes()?;
    let memory_bytes = index.memory_bytes();
    let delta = b.rss_after.saturating_sub(b.rss_before);
    eprintln!(
        "ann:   {:.1} s{}, RSS +{:.1} MiB ({:.0} B/vector), memory_bytes {:.1} MiB; payload indexes {:.2} s; len {}",
        b.build_s,
        other_note(b.other_cpu),
        mib(delta),
        delta as f64 / base.rows as f64,
        mib(memory_bytes as u64),
        payload_index_s,
        index.len()
    );
    if index.len() != base.rows {
        notes.push(format!(
            "the index holds {} points after the build, not {}",
            index.len(),
            base.rows
        ));
        eprintln!("ann: !!! {}", notes.last().map_or("", String::as_str));
    }

    let filter_queries = args
        .filter_queries
        .unwrap_or(queries.rows)
        .min(queries.rows);
    if filter_queries == 0 {
        bail!("--filter-queries must be positive");
    }
    let mut named = BTreeMap::new();
    for (name, spec) in &filters {
        let conditions = &spec["conditions"];
        let fjson = filter_json(name, conditions)?;
        let filter = Filter::parse(&fjson).map_err(|e| anyhow::anyhow!("filter {name}: {e}"))?;
        let fgt = read_ivecs(&d.join(format!("gt_filter_{name}.ivecs")))?;
        if fgt.len() < filter_queries {
            bail!("gt_filter_{name}.ivecs has {} rows", fgt.len());
        }
        let matches = payloads.iter().filter(|p| passes(conditions, p)).count();
        named.insert(
            name.clone(),
            NamedFilter {
                filter,
                json: fjson,
                gt: fgt,
                matches,
            },
        );
    }
    let bench = Bench {
        index: &index,
        queries: &queries,
        filters: &named,
        k: args.k,
        warmup: args.warmup,
        filter_queries,
        now: now_ms(),
    };
    let mut cells: Vec<Cell> = Vec::new();
    if args.interleave {
        serve_passes(&bench, &mut cells)?;
    } else {
        let mut plan: Vec<(usize, Option<String>)> = args.ef.iter().map(|&e| (e, None)).collect();
        for name in named.keys() {
            plan.extend(args.filter_ef.iter().map(|&e| (e, Some(name.clone()))));
        }
        for (ef, filter) in plan {
            let mut cell = Cell::new(ef, filter);
            bench.warm(&cell)?;
            for _ in 0..args.repeats {
                bench.pass(&mut cell)?;
            }
            cells.push(cell);
        }
    }

    let mut sweep = Vec::new();
    let mut filtered = Vec::new();
    for cell in &cells {
        let n = bench.queries_of(cell.filter.as_deref());
        let qps = n as f64 / cell.median_secs();
        let passes_s: Vec<f64> = cell.passes.iter().map(|p| p.0).collect();
        let other_passes: Vec<Option<f64>> = cell.passes.iter().map(|p| p.1).collect();
        let ef = cell.ef;
        match &cell.filter {
            None => {
                let rec = recall(&cell.results, &gt, args.k);
                eprintln!(
                    "ann:   ef {ef:>4}: recall@{} {rec:.4}  {qps:>9.0} QPS (median of {}){}",
                    args.k,
                    passes_s.len(),
                    other_note(cell.median_other())
                );
                sweep.push(json!({
                    "ef": ef,
                    "recall10": rec,
                    "qps": qps,
                    "queries": n,
                    "passes_s": passes_s,
                    "other_cpu": cell.median_other(),
                    "other_cpu_max": cell.max_other(),
                    "other_cpu_passes": other_passes,
                }));
            }
            Some(name) => {
                let f = named
                    .get(name)
                    .with_context(|| format!("no filter named {name}"))?;
                let rec = recall(&cell.results, &f.gt[..n], args.k);
                eprintln!(
                    "ann:   {name:<26} ef {ef:>4}: recall@{} {rec:.4}  {qps:>9.0} QPS (median of {}){}",
                    args.k,
                    passes_s.len(),
                    other_note(cell.median_other())
                );
                filtered.push(json!({
                    "filter": name,
                    "ef": ef,
                    "recall10": rec,
                    "qps": qps,
                    "queries": n,
                    "passes_s": passes_s,
                    "other_cpu": cell.median_other(),
                    "other_cpu_max": cell.max_other(),
                    "other_cpu_passes": other_passes,
                    "matches": f.matches,
                    "selectivity": f.matches as f64 / base.rows as f64,
                    "filter_json": f.json,
                    "method": "search(filter=Some(&Filter)) with payload indexes",
                }));
            }
        }
    }

    let result = json!({
        "engine": "strata",
        "version": env!("CARGO_PKG_VERSION"),
        "params": format!(
            "VectorIndex metric={} m={} ef_construction={} quantization={}",
            args.metric, args.m, args.ef_construction, args.quantization
        ),
        "n": base.rows,
        "dim": base.dim,
        "queries": queries.rows,
        "k": args.k,
        "threads_build": args.threads,
        "batch": args.batch,
        "warmup_queries": args.warmup,
        "repeats": args.repeats,
        "filter_queries": filter_queries,
        "interleaved": args.interleave,
        "timing": "median of the timed passes",
        "build_s": b.build_s,
        "build_cpu": b.cpu,
        "build_other_cpu": b.other_cpu,
        "rss_before_bytes": b.rss_before,
        "rss_after_bytes": b.rss_after,
        "rss_delta_bytes": delta,
        "rss_delta_per_vector": delta as f64 / base.rows as f64,
        "rss_after_payload_indexes_bytes": rss_after_indexes,
        "memory_bytes_after_build": memory_after_build,
        "memory_bytes": memory_bytes,
        "memory_bytes_per_vector": memory_bytes as f64 / base.rows as f64,
        "payload_index_s": payload_index_s,
        "len": index.len(),
        "bare": bare,
        "sweep": sweep,
        "filtered": filtered,
        "notes": notes,
        "wall_s": wall.elapsed().as_secs_f64(),
    });
    let text = serde_json::to_string_pretty(&result)? + "\n";
    match &args.out {
        Some(p) => crate::write_file(p, &text)?,
        None => print!("{text}"),
    }
    if args.interleave {
        reply(&json!({"done": true}))?;
    }
    Ok(0)
}

/// One JSON line on stdout, flushed (the interleave protocol).
fn reply(v: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}").context("writing to stdout")?;
    out.flush().context("flushing stdout")
}

/// `--interleave`: runs passes as the driver asks until `{"cmd": "done"}`
/// (or the end of stdin, which is an error: the driver went away).
fn serve_passes(bench: &Bench<'_>, cells: &mut Vec<Cell>) -> Result<()> {
    reply(&json!({"ready": true}))?;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading a command from stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let cmd: Value =
            serde_json::from_str(&line).with_context(|| format!("command {line:?}"))?;
        match cmd["cmd"].as_str() {
            Some("pass") => {
                let ef = cmd["ef"]
                    .as_u64()
                    .and_then(|e| usize::try_from(e).ok())
                    .with_context(|| format!("command {line:?} has no ef"))?;
                let filter = cmd["filter"].as_str().map(str::to_owned);
                let at = match cells.iter().position(|c| c.ef == ef && c.filter == filter) {
                    Some(i) => i,
                    None => {
                        cells.push(Cell::new(ef, filter));
                        cells.len() - 1
                    }
                };
                let cell = &mut cells[at];
                if cmd["warmup"].as_bool().unwrap_or(false) {
                    bench.warm(cell)?;
                }
                let (secs, other) = bench.pass(cell)?;
                reply(&json!({"secs": secs, "other_cpu": other}))?;
            }
            Some("done") => return Ok(()),
            _ => bail!("unknown command {line:?}"),
        }
    }
    bail!("stdin closed before the driver said done")
}

fn other_note(other: Option<f64>) -> String {
    match other {
        Some(o) if o > MAX_OTHER_CPU => format!("  (other processes used {o:.2} cores)"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_conditions_become_engine_json() {
        let c = json!([["year", "eq", 2007], ["len_bucket", "eq", "long"]]);
        assert_eq!(
            filter_json("x", &c).expect("valid"),
            json!({"must": [
                {"key": "year", "match": {"value": 2007}},
                {"key": "len_bucket", "match": {"value": "long"}},
            ]})
        );
        let c = json!([["year", "range", 2000, 2002], ["m", "in", ["a", "b"]]]);
        assert_eq!(
            filter_json("x", &c).expect("valid"),
            json!({"must": [
                {"key": "year", "range": {"gte": 2000, "lte": 2002}},
                {"key": "m", "match": {"any": ["a", "b"]}},
            ]})
        );
        assert!(filter_json("x", &json!([["year", "near", 1]])).is_err());
    }

    #[test]
    fn local_filter_matches_like_the_dataset() {
        let p = json!({"module_top": "email", "len_bucket": "long", "year": 2001});
        assert!(passes(&json!([["year", "range", 2000, 2002]]), &p));
        assert!(!passes(&json!([["year", "range", 2002, 2003]]), &p));
        assert!(passes(
            &json!([["module_top", "in", ["asyncio", "email"]]]),
            &p
        ));
        assert!(!passes(
            &json!([["year", "eq", 2001], ["len_bucket", "eq", "short"]]),
            &p
        ));
    }

    #[test]
    fn median_of_passes() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        let mut c = Cell::new(16, None);
        c.passes = vec![(0.3, Some(0.1)), (0.1, None), (0.2, Some(0.5))];
        assert_eq!(c.median_secs(), 0.2);
        assert_eq!(c.median_other(), Some(0.3));
        assert_eq!(c.max_other(), Some(0.5));
    }

    #[test]
    fn vecs_round_trip_and_recall() {
        let dir = std::env::temp_dir().join(format!("strata-ann-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut f = Vec::new();
        for row in [[1.0f32, 2.0], [3.0, 4.0]] {
            f.extend_from_slice(&2u32.to_le_bytes());
            for x in row {
                f.extend_from_slice(&x.to_le_bytes());
            }
        }
        std::fs::write(dir.join("a.fvecs"), &f).expect("write");
        let m = read_fvecs(&dir.join("a.fvecs")).expect("read");
        assert_eq!((m.rows, m.dim), (2, 2));
        assert_eq!(m.row(1), &[3.0, 4.0]);
        std::fs::write(dir.join("bad.fvecs"), &f[..10]).expect("write");
        assert!(read_fvecs(&dir.join("bad.fvecs")).is_err());
        std::fs::remove_dir_all(&dir).ok();

        let res = vec![vec![(PointId::Num(1), 1.0), (PointId::Num(7), 0.5)]];
        assert!((recall(&res, &[vec![1, 2, 3]], 2) - 0.5).abs() < 1e-9);
    }
}
