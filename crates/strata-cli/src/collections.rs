//! `strata collection …`: vector collections on a running server — create,
//! list, and a streaming NDJSON export and import.

use anyhow::{bail, Context, Result};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::client::{problem_of, s, Client};

/// Most bytes of NDJSON sent in one import request (the server reads the
/// body as a stream, so this only bounds the client's memory and the work
/// lost to a failed request).
const IMPORT_CHUNK_BYTES: usize = 4 << 20;
/// Most points in one import request.
const IMPORT_CHUNK_POINTS: usize = 5_000;

pub async fn create(
    c: &Client,
    bot: &str,
    name: &str,
    dimension: usize,
    metric: &str,
    quantization: Option<&str>,
) -> Result<()> {
    let mut body = json!({ "name": name, "dimension": dimension, "metric": metric });
    if let Some(q) = quantization {
        body["quantization"] = json!(q);
    }
    let v = c
        .call(
            Method::POST,
            &format!("/v1/bots/{bot}/collections"),
            Some(body),
        )
        .await?;
    c.show(&v, |v| {
        format!(
            "created collection {} in bot {bot}: {} dimensions, {}",
            s(v, "name"),
            v.get("dimension").and_then(Value::as_u64).unwrap_or(0),
            s(v, "metric")
        )
    });
    Ok(())
}

pub async fn list(c: &Client, bot: &str) -> Result<()> {
    let v = c
        .call(Method::GET, &format!("/v1/bots/{bot}/collections"), None)
        .await?;
    c.show(&v, |v| {
        let rows = v
            .get("collections")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if rows.is_empty() {
            return format!("bot {bot} has no collections");
        }
        let mut out = format!(
            "{:<32} {:>9} {:<10} {:<6} {:>10}",
            "NAME", "DIMENSION", "METRIC", "QUANT", "POINTS"
        );
        for r in rows {
            let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
            out.push_str(&format!(
                "\n{:<32} {:>9} {:<10} {:<6} {:>10}",
                s(&r, "name"),
                n("dimension"),
                s(&r, "metric"),
                s(&r, "quantization"),
                n("points")
            ));
        }
        out
    });
    Ok(())
}

/// A temporary file next to `out`, renamed over it once the export is whole.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

pub async fn export(c: &Client, bot: &str, name: &str, out: Option<&Path>) -> Result<()> {
    let mut res = c
        .send(c.request(
            Method::GET,
            &format!("/v1/bots/{bot}/collections/{name}/export"),
        ))
        .await?;
    let (mut sink, partial): (Box<dyn Write>, Option<PathBuf>) = match out {
        None => (Box::new(std::io::stdout().lock()), None),
        Some(path) => {
            let tmp = partial_path(path);
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            (Box::new(std::io::BufWriter::new(f)), Some(tmp))
        }
    };
    let mut lines = 0u64;
    let result: Result<()> = async {
        while let Some(chunk) = res
            .chunk()
            .await
            .context("the export was interrupted (the server stopped sending)")?
        {
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            sink.write_all(&chunk).context("writing the export")?;
        }
        sink.flush().context("writing the export")?;
        Ok(())
    }
    .await;
    drop(sink);
    if let Err(e) = result {
        if let Some(tmp) = &partial {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e);
    }
    let points = lines.saturating_sub(1);
    if let (Some(tmp), Some(path)) = (&partial, out) {
        std::fs::rename(tmp, path)
            .with_context(|| format!("cannot move the export to {}", path.display()))?;
        if c.json_output() {
            println!(
                "{}",
                json!({ "collection": name, "points": points, "file": path.display().to_string() })
            );
        } else {
            println!(
                "exported {points} points of collection {name} to {}",
                path.display()
            );
        }
    } else {
        eprintln!("exported {points} points of collection {name}");
    }
    Ok(())
}

/// One import request's NDJSON and where its lines came from.
struct Chunk {
    body: Vec<u8>,
    /// File line numbers of the request's lines (its first is the header).
    lines: Vec<usize>,
}

impl Chunk {
    fn new(header: &str, header_line: usize) -> Self {
        let mut body = Vec::with_capacity(IMPORT_CHUNK_BYTES + 4096);
        body.extend_from_slice(header.as_bytes());
        body.push(b'\n');
        Chunk {
            body,
            lines: vec![header_line],
        }
    }

    fn points(&self) -> usize {
        self.lines.len() - 1
    }

    /// The server's "line N" / "lines A-B" in a detail, as file lines.
    fn map_detail(&self, detail: &str) -> String {
        let file_line = |n: &str| -> Option<String> {
            let n: usize = n.parse().ok()?;
            self.lines.get(n.checked_sub(1)?).map(|l| l.to_string())
        };
        if let Some((head, rest)) = detail.split_once(':') {
            if let Some(n) = head.strip_prefix("line ") {
                if let Some(l) = file_line(n) {
                    return format!("line {l}:{rest}");
                }
            }
            if let Some((a, b)) = head.strip_prefix("lines ").and_then(|r| r.split_once('-')) {
                if let (Some(a), Some(b)) = (file_line(a), file_line(b)) {
                    return format!("lines {a}-{b}:{rest}");
                }
            }
        }
        detail.to_owned()
    }
}

#[derive(Default)]
struct Totals {
    imported: u64,
    expired: u64,
    created: bool,
}

async fn send_chunk(c: &Client, path: &str, mut chunk: Chunk, totals: &mut Totals) -> Result<()> {
    let first = chunk.lines.get(1).copied().unwrap_or(0);
    let res = c
        .request(Method::POST, path)
        .header(CONTENT_TYPE, "application/x-ndjson")
        .body(std::mem::take(&mut chunk.body))
        .send()
        .await
        .context("cannot reach the server")?;
    let status = res.status();
    let text = res.text().await.context("reading the response")?;
    if !status.is_success() {
        let (code, detail) = problem_of(&text);
        let done = if totals.imported > 0 {
            format!(
                " ({} points before line {first} were imported)",
                totals.imported
            )
        } else {
            String::new()
        };
        bail!("{status} {code}: {}{done}", chunk.map_detail(&detail));
    }
    let v: Value = serde_json::from_str(&text).context("the server's reply is not JSON")?;
    totals.imported += v.get("imported").and_then(Value::as_u64).unwrap_or(0);
    totals.expired += v.get("expired").and_then(Value::as_u64).unwrap_or(0);
    totals.created |= v.get("created").and_then(Value::as_bool).unwrap_or(false);
    Ok(())
}

pub async fn import(c: &Client, bot: &str, file: &str, name: Option<&str>) -> Result<()> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?,
        ))
    };
    let mut lines = reader.lines().enumerate().map(|(i, l)| (i + 1, l));
    // The header: the first line that is not blank.
    let (header_line, header) = loop {
        match lines.next() {
            None => bail!("{file} is empty: expected a collection export"),
            Some((n, l)) => {
                let l = l.with_context(|| format!("reading {file}"))?;
                if !l.trim().is_empty() {
                    break (n, l);
                }
            }
        }
    };
    let parsed: Value = serde_json::from_str(&header)
        .with_context(|| format!("line {header_line} of {file} is not JSON"))?;
    let header_name = parsed
        .get("collection")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(name) = name.map(str::to_owned).or(header_name) else {
        bail!("line {header_line} of {file} is not a collection header {{\"collection\": {{\"name\": …}}}}; pass --name to choose the collection");
    };
    let path = format!("/v1/bots/{bot}/collections/{name}/import");
    let mut totals = Totals::default();
    let mut chunk = Chunk::new(&header, header_line);
    for (n, l) in lines {
        let l = l.with_context(|| format!("reading {file} at line {n}"))?;
        if l.trim().is_empty() {
            continue;
        }
        chunk.body.extend_from_slice(l.as_bytes());
        chunk.body.push(b'\n');
        chunk.lines.push(n);
        if chunk.body.len() >= IMPORT_CHUNK_BYTES || chunk.points() >= IMPORT_CHUNK_POINTS {
            let full = std::mem::replace(&mut chunk, Chunk::new(&header, header_line));
            send_chunk(c, &path, full, &mut totals).await?;
        }
    }
    // The last request (also for an export without points: it creates the
    // collection).
    if chunk.points() > 0 || totals.imported == 0 {
        send_chunk(c, &path, chunk, &mut totals).await?;
    }
    let v = json!({
        "collection": name,
        "imported": totals.imported,
        "expired": totals.expired,
        "created": totals.created,
    });
    c.show(&v, |_| {
        let mut out = format!(
            "imported {} points into {} collection {name} of bot {bot}",
            totals.imported,
            if totals.created { "new" } else { "existing" }
        );
        if totals.expired > 0 {
            out.push_str(&format!(" ({} expired points left out)", totals.expired));
        }
        out
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_line_numbers_become_file_line_numbers() {
        let mut c = Chunk::new("{}", 3);
        c.lines.extend([10, 11, 14]);
        assert_eq!(c.map_detail("line 1: bad header"), "line 3: bad header");
        assert_eq!(c.map_detail("line 4: bad point"), "line 14: bad point");
        assert_eq!(c.map_detail("lines 2-4: quota"), "lines 10-14: quota");
        assert_eq!(c.map_detail("line 9: out of range"), "line 9: out of range");
        assert_eq!(c.map_detail("no line"), "no line");
    }
}
