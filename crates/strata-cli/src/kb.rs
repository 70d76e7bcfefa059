//! `strata kb …`: a bot's knowledge base on a running server — ingest a
//! folder (upload, then wait for indexing with a progress bar), status,
//! search.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::{s, Client};

/// How often `kb ingest` prints a progress line when stderr is not a
/// terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Percent-encodes one path segment of a drive key.
fn encode_segment(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_key(key: &str) -> String {
    key.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

fn content_type_of(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("md" | "markdown") => "text/markdown",
        Some("txt") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("pdf") => "application/pdf",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

async fn documents(c: &Client, bot: &str) -> Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/bots/{bot}/kb/documents?limit=1000");
        if let Some(cur) = &cursor {
            path.push_str(&format!("&cursor={}", encode_segment(cur)));
        }
        let v = c.call(Method::GET, &path, None).await?;
        if let Some(docs) = v.get("documents").and_then(Value::as_array) {
            all.extend(docs.iter().cloned());
        }
        match v.get("next_cursor").and_then(Value::as_str) {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    Ok(all)
}

/// A document being indexed: its key and chunks done of chunks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub key: String,
    pub done: i64,
    pub found: i64,
}

/// The indexing bar's message: chunks so far (those of indexed documents
/// and those done of documents being indexed), both rates, labelled and
/// rounded, and the largest document being indexed with its chunks done of
/// chunks found (`1234 chunks · 2.5 files/s · 31 chunks/s · big.md 120/4000
/// chunks`).
pub fn progress_message(
    chunks: i64,
    files_done: u64,
    secs: f64,
    in_flight: Option<&InFlight>,
) -> String {
    let secs = secs.max(0.001);
    let files_rate = files_done as f64 / secs;
    let files = if files_rate >= 10.0 {
        format!("{files_rate:.0} files/s")
    } else {
        format!("{files_rate:.1} files/s")
    };
    let mut out = format!(
        "{chunks} chunks · {files} · {:.0} chunks/s",
        chunks as f64 / secs
    );
    if let Some(d) = in_flight {
        let name = d.key.rsplit('/').next().unwrap_or(&d.key);
        out.push_str(&format!(" · {name} {}/{} chunks", d.done, d.found));
    }
    out
}

/// Uploads every file under `folder` to `<bot>.gbai/<bot>.gbkb/<relative
/// path>`, then waits until each is indexed or failed.
pub async fn ingest(c: &Client, bot: &str, folder: &Path, timeout: Duration) -> Result<()> {
    let files = files_under(folder)?;
    if files.is_empty() {
        bail!("{} holds no files", folder.display());
    }
    let prefix = format!("{bot}.gbai/{bot}.gbkb/");
    let quiet = c.json_output();
    // Documents are indexed while the rest are uploaded: rates and the
    // total time count from the start of the upload (counting from its end
    // showed a thousand files "done" in 0.1 s as 10,000 files/s).
    let started = Instant::now();
    let upload = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    upload.set_style(
        ProgressStyle::with_template("uploading {bar:30} {pos}/{len} files {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // key → version uploaded
    let mut expected: HashMap<String, i64> = HashMap::new();
    let mut upload_errors = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(folder)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let key = format!("{prefix}{rel}");
        upload.set_message(rel.clone());
        let body = tokio::fs::read(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        let req = c
            .request(
                Method::PUT,
                &format!("/v1/bots/{bot}/files/{}", encode_key(&key)),
            )
            .header(CONTENT_TYPE, content_type_of(path))
            .body(body);
        match c.send(req).await {
            Ok(res) => {
                let v: Value = res.json().await.unwrap_or(Value::Null);
                expected.insert(key, v.get("version").and_then(Value::as_i64).unwrap_or(0));
            }
            Err(e) => upload_errors.push(format!("{rel}: {e}")),
        }
        upload.inc(1);
    }
    upload.finish_and_clear();

    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(expected.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("indexing {bar:30} {pos}/{len} files · {msg} · ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let waiting = Instant::now();
    // Without a terminal (a log, CI) the bar draws nothing: a plain line
    // every few seconds shows the progress instead.
    let plain = !quiet && !std::io::stderr().is_terminal();
    let mut last_line: Option<Instant> = None;
    let mut failures: Vec<(String, String)>;
    let mut chunks: i64;
    loop {
        let docs = documents(c, bot).await?;
        let mut done = 0u64;
        chunks = 0;
        let mut in_flight_chunks = 0;
        let mut largest: Option<InFlight> = None;
        failures = Vec::new();
        for d in &docs {
            let key = s(d, "key");
            let Some(want) = expected.get(&key) else {
                continue;
            };
            let version = d.get("version").and_then(Value::as_i64).unwrap_or(0);
            let status = s(d, "status");
            if version < *want {
                continue;
            }
            match status.as_str() {
                "indexed" => {
                    done += 1;
                    chunks += d.get("chunks").and_then(Value::as_i64).unwrap_or(0);
                }
                "failed" => {
                    done += 1;
                    failures.push((key, s(d, "error")));
                }
                "indexing" => {
                    let n = |f: &str| d.get(f).and_then(Value::as_i64).unwrap_or(0);
                    let (found, done) = (n("chunks_found"), n("chunks_done"));
                    in_flight_chunks += done;
                    if found > 0 && largest.as_ref().is_none_or(|l| found > l.found) {
                        largest = Some(InFlight { key, done, found });
                    }
                }
                _ => {}
            }
        }
        bar.set_position(done);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let message = progress_message(chunks + in_flight_chunks, done, secs, largest.as_ref());
        if plain && last_line.is_none_or(|t| t.elapsed() >= PLAIN_PROGRESS_EVERY) {
            eprintln!(
                "indexing {done}/{} files · {message} · {:.1} s",
                expected.len(),
                secs
            );
            last_line = Some(Instant::now());
        }
        bar.set_message(message);
        if done as usize >= expected.len() {
            break;
        }
        if waiting.elapsed() > timeout {
            bar.abandon();
            bail!(
                "timed out after {} s: {done} of {} documents finished",
                timeout.as_secs(),
                expected.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bar.finish_and_clear();
    let indexed = expected.len() - failures.len();
    let summary = json!({
        "uploaded": expected.len(),
        "indexed": indexed,
        "failed": failures.iter().map(|(k, e)| json!({"key": k, "error": e})).collect::<Vec<_>>(),
        "upload_errors": upload_errors,
        "chunks": chunks,
        "seconds": started.elapsed().as_secs_f64(),
    });
    c.show(&summary, |_| {
        let mut out = format!(
            "{indexed} of {} documents indexed ({chunks} chunks) in {:.1} s",
            expected.len(),
            started.elapsed().as_secs_f64()
        );
        for (k, e) in &failures {
            out.push_str(&format!("\nfailed: {k}: {e}"));
        }
        for e in &upload_errors {
            out.push_str(&format!("\nnot uploaded: {e}"));
        }
        out
    });
    if !upload_errors.is_empty() {
        bail!("{} files could not be uploaded", upload_errors.len());
    }
    Ok(())
}

/// Prints every document with its status.
pub async fn status(c: &Client, bot: &str) -> Result<()> {
    let docs = documents(c, bot).await?;
    let v = json!({ "documents": docs });
    c.show(&v, |_| {
        if docs.is_empty() {
            return format!("bot {bot} has no knowledge-base documents");
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut lines = Vec::new();
        for d in &docs {
            let status = s(d, "status");
            *counts.entry(status.clone()).or_default() += 1;
            let n = |f: &str| d.get(f).and_then(Value::as_i64);
            let chunks = match (status.as_str(), n("chunks_done"), n("chunks_found")) {
                ("indexing", Some(done), Some(found)) => format!("{done}/{found}"),
                _ => n("chunks").unwrap_or(0).to_string(),
            };
            let mut line = format!(
                "{:<9} v{:<4} {:>11} chunks  {}",
                status,
                n("version").unwrap_or(0),
                chunks,
                s(d, "key")
            );
            if let Some(e) = d.get("error").and_then(Value::as_str) {
                line.push_str(&format!("  ({e})"));
            }
            lines.push(line);
        }
        let mut summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        summary.sort();
        lines.push(summary.join(", "));
        lines.join("\n")
    });
    Ok(())
}

/// Searches and prints the results best first.
pub async fn search(c: &Client, bot: &str, query: &str, mode: &str, k: usize) -> Result<()> {
    let v = c
        .call(
            Method::POST,
            &format!("/v1/bots/{bot}/kb/search"),
            Some(json!({ "query": query, "mode": mode, "k": k })),
        )
        .await?;
    c.show(&v, |v| {
        let rows = v
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if rows.is_empty() {
            return "no results".to_owned();
        }
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                let text: String = s(r, "text").chars().take(200).collect();
                format!(
                    "{}. {} #{} (score {:.4})\n   {}",
                    i + 1,
                    s(r, "document"),
                    r.get("chunk").and_then(Value::as_i64).unwrap_or(0),
                    r.get("score").and_then(Value::as_f64).unwrap_or(0.0),
                    text.replace('\n', " ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{progress_message, InFlight};

    #[test]
    fn the_progress_message_labels_and_rounds_its_rates() {
        assert_eq!(
            progress_message(1234, 5, 2.0, None),
            "1234 chunks · 2.5 files/s · 617 chunks/s"
        );
        assert_eq!(
            progress_message(0, 120, 4.0, None),
            "0 chunks · 30 files/s · 0 chunks/s"
        );
        // No unlabelled rate with four decimals.
        assert!(!progress_message(7, 1, 0.061, None).contains(".0000"));
    }

    #[test]
    fn the_progress_message_shows_the_document_being_indexed() {
        let big = InFlight {
            key: "b.gbai/b.gbkb/docs/big.md".into(),
            done: 120,
            found: 4000,
        };
        assert_eq!(
            progress_message(150, 1, 1.0, Some(&big)),
            "150 chunks · 1.0 files/s · 150 chunks/s · big.md 120/4000 chunks"
        );
    }
}
