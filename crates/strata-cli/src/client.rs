//! A small HTTP client of a running Strata server, for the CLI's bot, key
//! and collection commands.

use anyhow::{bail, Context, Result};
use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Where the server is and which key to use.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Server URL (default: http://<STRATA_LISTEN>, i.e. http://127.0.0.1:8080).
    #[arg(long, global = true, env = "STRATA_URL", value_name = "URL")]
    url: Option<String>,
    /// API key (default: STRATA_API_KEY, else STRATA_ADMIN_KEY).
    #[arg(
        long,
        global = true,
        env = "STRATA_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    key: Option<String>,
    /// Print the server's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

/// A client bound to one server and key.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    json: bool,
}

impl Client {
    pub fn new(args: &ServerArgs, config_file: Option<&PathBuf>) -> Result<Self> {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("STRATA_"))
            .collect();
        let config = strata::ConfigBuilder::from_sources(config_file.map(|p| p.as_path()), &env)
            .and_then(|b| b.build())
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let base = args
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen))
            .trim_end_matches('/')
            .to_owned();
        let key = args
            .key
            .clone()
            .or_else(|| config.admin_key.as_ref().map(|k| k.expose().to_owned()))
            .context("no API key: pass --key or set STRATA_API_KEY or STRATA_ADMIN_KEY")?;
        Ok(Client {
            http: reqwest::Client::new(),
            base,
            key,
            json: args.json,
        })
    }

    /// A request to `path` with the key.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, path);
        self.http.request(method, &url).bearer_auth(&self.key)
    }

    /// Sends `req`; a response that is not a success becomes an error
    /// naming the problem's code and detail.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let text = res.text().await.context("reading the response")?;
        let (code, detail) = problem_of(&text);
        bail!("{status} {code}: {detail}");
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = self.send(req).await?;
        let text = res.text().await.context("reading the response")?;
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        })
    }

    /// Whether `--json` was given.
    pub(crate) fn json_output(&self) -> bool {
        self.json
    }

    pub(crate) fn show(&self, v: &Value, text: impl FnOnce(&Value) -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            println!("{}", text(v));
        }
    }

    pub async fn bot_create(&self, id: &str, name: &str) -> Result<()> {
        let v = self
            .call(
                Method::POST,
                "/v1/bots",
                Some(json!({ "id": id, "name": name })),
            )
            .await?;
        self.show(&v, |v| {
            format!("created bot {} ({})", s(v, "id"), s(v, "name"))
        });
        Ok(())
    }

    pub async fn bot_list(&self) -> Result<()> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/bots?limit=1000&cursor={c}"),
                None => "/v1/bots?limit=1000".to_owned(),
            };
            let v = self.call(Method::GET, &path, None).await?;
            all.extend(
                v.get("bots")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            cursor = v
                .get("next_cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        let v = Value::Array(all);
        self.show(&v, |v| {
            let rows = v.as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                return "no bots".into();
            }
            let mut out = format!("{:<32} {:<32} {}", "ID", "NAME", "CREATED");
            for b in rows {
                out.push_str(&format!(
                    "\n{:<32} {:<32} {}",
                    s(&b, "id"),
                    s(&b, "name"),
                    s(&b, "created_at")
                ));
            }
            out
        });
        Ok(())
    }

    pub async fn bot_delete(&self, id: &str) -> Result<()> {
        let v = self
            .call(Method::DELETE, &format!("/v1/bots/{id}"), None)
            .await?;
        self.show(&v, |_| format!("deleted bot {id} and all of its data"));
        Ok(())
    }

    pub async fn key_create(&self, bot: &str, name: &str, role: &str) -> Result<()> {
        let v = self
            .call(
                Method::POST,
                &format!("/v1/bots/{bot}/keys"),
                Some(json!({ "name": name, "role": role })),
            )
            .await?;
        self.show(&v, |v| {
            format!(
                "created {} key {} for bot {bot}. It is shown only now:\n\n    {}\n",
                s(v, "role"),
                s(v, "id"),
                s(v, "key")
            )
        });
        Ok(())
    }

    pub async fn key_list(&self, bot: &str) -> Result<()> {
        let v = self
            .call(
                Method::GET,
                &format!("/v1/bots/{bot}/keys?limit=1000"),
                None,
            )
            .await?;
        self.show(&v, |v| {
            let rows = v
                .get("keys")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if rows.is_empty() {
                return format!("bot {bot} has no keys");
            }
            let mut out = format!("{:<34} {:<24} {:<8} {}", "ID", "NAME", "ROLE", "STATE");
            for k in rows {
                let state = if k.get("revoked_at").is_some_and(|r| !r.is_null()) {
                    "revoked"
                } else {
                    "active"
                };
                out.push_str(&format!(
                    "\n{:<34} {:<24} {:<8} {}",
                    s(&k, "id"),
                    s(&k, "name"),
                    s(&k, "role"),
                    state
                ));
            }
            out
        });
        Ok(())
    }

    pub async fn key_revoke(&self, bot: &str, key_id: &str) -> Result<()> {
        let v = self
            .call(
                Method::DELETE,
                &format!("/v1/bots/{bot}/keys/{key_id}"),
                None,
            )
            .await?;
        self.show(&v, |_| format!("revoked key {key_id} of bot {bot}"));
        Ok(())
    }
}

/// The `code` and `detail` of a problem+json body (or the raw text).
pub(crate) fn problem_of(text: &str) -> (String, String) {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => (
            v.get("code")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned(),
            v.get("detail")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        ),
        Err(_) => ("error".to_owned(), text.trim().to_owned()),
    }
}

pub(crate) fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
}
