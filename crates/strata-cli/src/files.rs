//! `strata files …`: a bot's drive on a running server — put (streamed from
//! disk), get (streamed to a file or stdout), ls and rm.

use anyhow::{Context, Result};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::client::{s, Client};

/// Percent-encodes a key for the URL path, keeping `/` as the separator.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn encode_query(v: &str) -> String {
    encode_key(v).replace('/', "%2F")
}

/// A content type from the file name's extension.
fn guess_content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "text" | "log" => "text/plain; charset=utf-8",
        "md" | "markdown" => "text/markdown; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

pub async fn put(
    c: &Client,
    bot: &str,
    file: &Path,
    key: Option<&str>,
    content_type: Option<&str>,
) -> Result<()> {
    let key = match key {
        Some(k) => k.to_owned(),
        None => file
            .file_name()
            .and_then(|n| n.to_str())
            .context("the file has no usable name; give the key explicitly")?
            .to_owned(),
    };
    let f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let len = f
        .metadata()
        .await
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let ct = content_type.unwrap_or_else(|| guess_content_type(file));
    let req = c
        .request(
            Method::PUT,
            &format!("/v1/bots/{bot}/files/{}", encode_key(&key)),
        )
        .header(CONTENT_TYPE, ct)
        .header(CONTENT_LENGTH, len)
        .body(reqwest::Body::from(f));
    let res = c.send(req).await?;
    let v: Value = res.json().await.context("reading the response")?;
    c.show(&v, |v| {
        format!(
            "stored {} as version {} ({} bytes, sha256 {})",
            s(v, "key"),
            v.get("version").and_then(Value::as_i64).unwrap_or(0),
            v.get("size").and_then(Value::as_u64).unwrap_or(0),
            s(v, "etag")
        )
    });
    Ok(())
}

/// A temporary file next to `out`, renamed over it once the download is whole.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

pub async fn get(
    c: &Client,
    bot: &str,
    key: &str,
    out: Option<&Path>,
    version: Option<i64>,
) -> Result<()> {
    let mut path = format!("/v1/bots/{bot}/files/{}", encode_key(key));
    if let Some(v) = version {
        path.push_str(&format!("?version={v}"));
    }
    let mut res = c.send(c.request(Method::GET, &path)).await?;
    let (mut sink, partial): (Box<dyn Write>, Option<PathBuf>) = match out {
        None => (Box::new(std::io::stdout().lock()), None),
        Some(p) => {
            let tmp = partial_path(p);
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            (Box::new(std::io::BufWriter::new(f)), Some(tmp))
        }
    };
    let mut bytes = 0u64;
    let result: Result<()> = async {
        while let Some(chunk) = res.chunk().await.context("the download was interrupted")? {
            bytes += chunk.len() as u64;
            sink.write_all(&chunk).context("writing the file")?;
        }
        sink.flush().context("writing the file")?;
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
    if let (Some(tmp), Some(p)) = (&partial, out) {
        std::fs::rename(tmp, p).with_context(|| format!("cannot write {}", p.display()))?;
        if c.json_output() {
            println!(
                "{}",
                json!({ "key": key, "bytes": bytes, "file": p.display().to_string() })
            );
        } else {
            println!("wrote {bytes} bytes of {key} to {}", p.display());
        }
    }
    Ok(())
}

pub async fn ls(
    c: &Client,
    bot: &str,
    prefix: Option<&str>,
    delimiter: Option<&str>,
) -> Result<()> {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![];
        if let Some(p) = prefix {
            q.push(format!("prefix={}", encode_query(p)));
        }
        if let Some(d) = delimiter {
            q.push(format!("delimiter={}", encode_query(d)));
        }
        if let Some(cur) = &cursor {
            q.push(format!("cursor={}", encode_query(cur)));
        }
        let path = format!("/v1/bots/{bot}/files?{}", q.join("&"));
        let v = c.call(Method::GET, &path, None).await?;
        if let Some(a) = v.get("objects").and_then(Value::as_array) {
            objects.extend(a.iter().cloned());
        }
        if let Some(a) = v.get("prefixes").and_then(Value::as_array) {
            prefixes.extend(a.iter().cloned());
        }
        match v.get("next_cursor").and_then(Value::as_str) {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    let all = json!({ "objects": objects, "prefixes": prefixes });
    c.show(&all, |v| {
        let objects = v["objects"].as_array().cloned().unwrap_or_default();
        let prefixes = v["prefixes"].as_array().cloned().unwrap_or_default();
        if objects.is_empty() && prefixes.is_empty() {
            return format!("no files in bot {bot}");
        }
        let mut out = format!(
            "{:>12} {:>7} {:<24} {}",
            "SIZE", "VERSION", "UPDATED", "KEY"
        );
        for p in prefixes {
            out.push_str(&format!(
                "\n{:>12} {:>7} {:<24} {}",
                "DIR",
                "",
                "",
                p.as_str().unwrap_or("")
            ));
        }
        for o in objects {
            out.push_str(&format!(
                "\n{:>12} {:>7} {:<24} {}",
                o.get("size").and_then(Value::as_u64).unwrap_or(0),
                o.get("version").and_then(Value::as_i64).unwrap_or(0),
                s(&o, "updated_at"),
                s(&o, "key")
            ));
        }
        out
    });
    Ok(())
}

pub async fn rm(c: &Client, bot: &str, key: &str) -> Result<()> {
    c.call(
        Method::DELETE,
        &format!("/v1/bots/{bot}/files/{}", encode_key(key)),
        None,
    )
    .await?;
    c.show(&json!({ "key": key, "deleted": true }), |_| {
        format!("deleted {key} (older versions stay readable until retention removes them)")
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_for_the_path() {
        assert_eq!(encode_key("a/b c.txt"), "a/b%20c.txt");
        assert_eq!(encode_key("ü?#%"), "%C3%BC%3F%23%25");
        assert_eq!(encode_query("a/b"), "a%2Fb");
    }
}
