//! The results as JSON and as a markdown report, with the verdict against
//! the targets.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::scenario::{Scenario, HISTORY_MESSAGES, HISTORY_PAGE, KV_VALUE_BYTES, MESSAGE_CHARS};
use crate::CellResult;

/// Target: append throughput ≥ this × /health at the verdict client count.
const APPEND_RATIO_TARGET: f64 = 0.25;
/// Target: history throughput ≥ this × /health at the verdict client count.
const HISTORY_RATIO_TARGET: f64 = 0.5;
/// Target: p99 below this many milliseconds at the verdict client count.
const P99_TARGET_MS: f64 = 20.0;

/// Everything a report is made of.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub command: Option<&'a str>,
    pub meta: &'a [(String, String)],
    pub notes: &'a [String],
    pub warmup_s: f64,
    pub duration_s: f64,
    pub clients: &'a [usize],
    pub verdict_clients: usize,
    /// Other processes using more cores than this during a cell is flagged.
    pub other_cpu_warn: f64,
    /// Re-runs allowed for a disturbed cell.
    pub retries: u32,
    pub results: &'a [CellResult],
}

/// One checked target.
#[derive(Debug)]
pub(crate) struct Check {
    pub what: String,
    pub measured: String,
    pub target: String,
    /// `None`: not measured in this run.
    pub pass: Option<bool>,
}

/// The verdict against the targets.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub checks: Vec<Check>,
    /// `None` when some target could not be checked.
    pub pass: Option<bool>,
    /// One line for the console and the report.
    pub line: String,
}

fn mark(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "NOT MEASURED",
    }
}

impl Report<'_> {
    fn cell(&self, scenario: Scenario, clients: usize) -> Option<&CellResult> {
        self.results
            .iter()
            .find(|r| r.scenario == scenario && r.clients == clients)
    }

    /// Throughput of `r` relative to /health at the same client count.
    fn ratio(&self, r: &CellResult) -> Option<f64> {
        let h = self.cell(Scenario::Health, r.clients)?;
        (h.rps > 0.0).then(|| r.rps / h.rps)
    }

    pub(crate) fn verdict(&self) -> Verdict {
        let c = self.verdict_clients;
        let mut checks = Vec::new();
        for (scenario, target) in [
            (Scenario::Append, APPEND_RATIO_TARGET),
            (Scenario::History, HISTORY_RATIO_TARGET),
        ] {
            let ratio = self.cell(scenario, c).and_then(|r| self.ratio(r));
            checks.push(Check {
                what: format!("{} req/s ÷ /health req/s at {c} clients", scenario.name()),
                measured: ratio.map_or("—".into(), |x| format!("{x:.2}×")),
                target: format!("≥ {target}×"),
                pass: ratio.map(|x| x >= target),
            });
        }
        let mut p99_seen = false;
        for r in self.results.iter().filter(|r| r.clients == c) {
            p99_seen = true;
            checks.push(Check {
                what: format!("{} p99 at {c} clients", r.scenario.name()),
                measured: format!("{:.2} ms", r.p99_ms),
                target: format!("< {P99_TARGET_MS} ms"),
                pass: Some(r.ok > 0 && r.p99_ms < P99_TARGET_MS),
            });
        }
        if !p99_seen {
            checks.push(Check {
                what: format!("p99 at {c} clients"),
                measured: "—".into(),
                target: format!("< {P99_TARGET_MS} ms"),
                pass: None,
            });
        }
        let errors: u64 = self.results.iter().map(|r| r.errors).sum();
        checks.push(Check {
            what: "errors (non-2xx or transport), all cells".into(),
            measured: errors.to_string(),
            target: "0".into(),
            pass: Some(errors == 0),
        });
        let pass = if checks.iter().any(|k| k.pass == Some(false)) {
            Some(false)
        } else if checks.iter().all(|k| k.pass == Some(true)) {
            Some(true)
        } else {
            None
        };
        let failed: Vec<String> = checks
            .iter()
            .filter(|k| k.pass != Some(true))
            .map(|k| format!("{} = {} (target {})", k.what, k.measured, k.target))
            .collect();
        let line = if failed.is_empty() {
            format!(
                "Verdict at {c} clients: PASS (append ≥ {APPEND_RATIO_TARGET}× and history ≥ \
                 {HISTORY_RATIO_TARGET}× of /health throughput, every p99 < {P99_TARGET_MS} ms, no errors)"
            )
        } else {
            format!(
                "Verdict at {c} clients: {}: {}",
                mark(pass),
                failed.join("; ")
            )
        };
        Verdict { checks, pass, line }
    }

    pub(crate) fn json(&self) -> String {
        let meta: serde_json::Map<String, Value> = self
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let results: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "scenario": r.scenario.name(),
                    "clients": r.clients,
                    "ok_requests": r.ok,
                    "errors": r.errors,
                    "error_kinds": r.error_kinds,
                    "error_samples": r.error_samples,
                    "duration_s": r.duration_s,
                    "rps": round(r.rps, 1),
                    "mean_ms": round(r.mean_ms, 3),
                    "p50_ms": round(r.p50_ms, 3),
                    "p90_ms": round(r.p90_ms, 3),
                    "p99_ms": round(r.p99_ms, 3),
                    "max_ms": round(r.max_ms, 3),
                    "ratio_to_health": self.ratio(r).map(|x| round(x, 3)),
                    "server_cpu_cores": r.server_cpu.map(|x| round(x, 2)),
                    "loadgen_cpu_cores": r.loadgen_cpu.map(|x| round(x, 2)),
                    "other_cpu_cores": r.other_cpu.map(|x| round(x, 2)),
                    "attempts": r.attempts,
                    "server_cpu_us_per_request": r
                        .server_cpu
                        .filter(|_| r.rps > 0.0)
                        .map(|c| round(c * 1e6 / r.rps, 1)),
                })
            })
            .collect();
        let v = self.verdict();
        let checks: Vec<Value> = v
            .checks
            .iter()
            .map(|k| {
                json!({"what": k.what, "measured": k.measured, "target": k.target, "pass": k.pass})
            })
            .collect();
        let doc = json!({
            "command": self.command,
            "meta": meta,
            "notes": self.notes,
            "config": {
                "warmup_s": self.warmup_s,
                "duration_s": self.duration_s,
                "clients": self.clients,
                "verdict_clients": self.verdict_clients,
                "history_messages": HISTORY_MESSAGES,
                "history_page": HISTORY_PAGE,
                "kv_value_bytes": KV_VALUE_BYTES,
                "message_chars": MESSAGE_CHARS,
            },
            "results": results,
            "verdict": {"pass": v.pass, "line": v.line, "checks": checks},
        });
        let mut s = serde_json::to_string_pretty(&doc)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }

    pub(crate) fn markdown(&self) -> String {
        let mut m = String::new();
        let v = self.verdict();
        let _ = writeln!(m, "# Strata HTTP benchmark\n");
        let _ = writeln!(
            m,
            "_Generated by `bench/http.sh` with `strata-loadgen`; rerun it rather than editing this file._\n"
        );
        let _ = writeln!(m, "**{}**\n", v.line);
        let _ = writeln!(m, "| target | measured | wanted | result |");
        let _ = writeln!(m, "|---|---:|---:|---|");
        for k in &v.checks {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                k.what,
                k.measured,
                k.target,
                mark(k.pass)
            );
        }
        let _ = writeln!(m);

        let total_errors: u64 = self.results.iter().map(|r| r.errors).sum();
        if total_errors > 0 {
            let _ = writeln!(
                m,
                "> **WARNING: {total_errors} requests failed during this run** — the affected \
                 cells are not valid measurements. See the error details at the end.\n"
            );
        }

        let noisy: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.other_cpu.is_some_and(|c| c > self.other_cpu_warn))
            .map(|r| format!("{}@{}", r.scenario.name(), r.clients))
            .collect();
        if !noisy.is_empty() {
            let _ = writeln!(
                m,
                "> **WARNING: other processes used more than {} cores during {}**; \
                 those cells are unreliable (a busy machine can slow the server down, or speed up \
                 single-client round trips by keeping cores awake). Rerun on a quiet machine.\n",
                self.other_cpu_warn,
                noisy.join(", ")
            );
        }

        let _ = writeln!(m, "## Machine and run\n");
        if let Some(c) = self.command {
            let _ = writeln!(m, "- **command**: `{c}`");
        }
        for (k, val) in self.meta {
            let _ = writeln!(m, "- **{k}**: {val}");
        }
        for n in self.notes {
            let _ = writeln!(m, "- {n}");
        }
        let _ = writeln!(m);

        let _ = writeln!(m, "## Method\n");
        let _ = writeln!(
            m,
            "- Closed loop: each client is a tokio task with its own HTTP/1.1 keep-alive \
             connection, sending the next request as soon as the previous answer is read."
        );
        let _ = writeln!(
            m,
            "- Per cell: {} s warm-up (not measured), then {} s measured. `req/s` counts \
             successful answers that started and finished inside the measured window; the \
             latencies are those answers' (send to last body byte), nearest-rank percentiles.",
            self.warmup_s, self.duration_s
        );
        let _ = writeln!(
            m,
            "- `errors`: non-2xx answers and transport failures over the whole cell, warm-up \
             included. `× /health`: req/s divided by `GET /health` req/s at the same client count. \
             `server CPU` / `loadgen CPU`: cores each process used over the measured window \
             (user + system time from `/proc/<pid>/stat`); a server pinned near 1.00 while \
             cores are free points at a serialised path. `other CPU`: what the rest of the machine \
             used meanwhile (other builds or tests distort the numbers); a cell where it exceeds {} \
             cores is re-run after a pause (up to {} times; `(try n)` marks a re-run cell), and \
             flagged if it still does.",
            self.other_cpu_warn, self.retries
        );
        let _ = writeln!(
            m,
            "- Cells run one after another in the order below, against one server and one data \
             folder (the writes of earlier cells stay in the database)."
        );
        let _ = writeln!(m);

        let mut scenarios: Vec<Scenario> = Vec::new();
        for r in self.results {
            if !scenarios.contains(&r.scenario) {
                scenarios.push(r.scenario);
            }
        }
        for s in scenarios {
            let _ = writeln!(m, "## {}\n", s.name());
            let _ = writeln!(m, "{}\n", s.describe());
            let _ = writeln!(
                m,
                "| clients | req/s | p50 ms | p99 ms | max ms | errors | × /health | server CPU | loadgen CPU | other CPU |"
            );
            let _ = writeln!(m, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for r in self.results.iter().filter(|r| r.scenario == s) {
                let ratio = self.ratio(r).map_or("—".into(), |x| format!("{x:.2}"));
                let errors = if r.errors > 0 {
                    format!("**{}**", r.errors)
                } else {
                    "0".into()
                };
                let cpu = |c: Option<f64>| c.map_or("—".into(), |x| format!("{x:.2}"));
                let _ = writeln!(
                    m,
                    "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                    r.clients,
                    r.rps,
                    r.p50_ms,
                    r.p99_ms,
                    r.max_ms,
                    errors,
                    ratio,
                    cpu(r.server_cpu),
                    cpu(r.loadgen_cpu),
                    if r.attempts > 1 {
                        format!("{} (try {})", cpu(r.other_cpu), r.attempts)
                    } else {
                        cpu(r.other_cpu)
                    }
                );
            }
            let _ = writeln!(m);
        }

        if total_errors > 0 {
            let _ = writeln!(m, "## Errors\n");
            for r in self.results.iter().filter(|r| r.errors > 0) {
                let _ = writeln!(
                    m,
                    "- {} with {} clients: {} errors {:?}",
                    r.scenario.name(),
                    r.clients,
                    r.errors,
                    r.error_kinds
                );
                for sample in &r.error_samples {
                    let _ = writeln!(m, "  - `{}`", sample.replace('`', "'"));
                }
            }
            let _ = writeln!(m);
        }
        let _ = writeln!(m, "Raw numbers: `bench/results/http.json`.");
        m
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
