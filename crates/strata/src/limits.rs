//! Rate limits per API key (and per user when a session is given), per
//! endpoint group, shared through the cache layer.
//!
//! The default is `STRATA_RATE_LIMIT` requests per minute for each key and
//! endpoint group. A bot overrides it with the settings `rate_limit`
//! (every group) and `rate_limit.<group>` (one group) in its configuration;
//! the settings are re-read at most every [`LIMITS_REFRESH`].
//!
//! Groups are the first path segment under the bot (`conversations`,
//! `users`, `sessions`, `kv`, `keys`, `config`, …; `vectors` for
//! `collections/…`) and `bots` for the bot itself and `/v1/bots`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::rate::{Rate, Throttle};
use strata_core::types::BotId;

use crate::{Principal, Strata};

/// The cache namespace of failed-authentication buckets (no bot owns them;
/// bot ids cannot start with `_`).
const AUTH_FAILURE_NS: &str = "_auth";

/// How long a bot's configured limits are used before they are read again.
pub const LIMITS_REFRESH: Duration = Duration::from_secs(5);

/// Per-bot limits read from the bot's configuration, briefly cached.
#[derive(Debug)]
pub struct BotLimits {
    cached: quick_cache::sync::Cache<BotId, (Instant, Arc<BTreeMap<String, u32>>)>,
}

impl Default for BotLimits {
    fn default() -> Self {
        BotLimits {
            cached: quick_cache::sync::Cache::new(10_000),
        }
    }
}

/// The endpoint group and bot of a request path (`/v1/bots/{bot}/{group}/…`).
pub fn endpoint_group(path: &str) -> (Option<&str>, &str) {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some("bots"), Some(bot), Some(group))
            if !bot.is_empty() && !group.is_empty() =>
        {
            // Collections and their points share the `vectors` group.
            let group = if group == "collections" {
                "vectors"
            } else {
                group
            };
            (Some(bot), group)
        }
        (Some("v1"), Some("bots"), Some(bot), _) if !bot.is_empty() => (Some(bot), "bots"),
        (Some("v1"), Some(group), _, _) => (None, group),
        _ => (None, "other"),
    }
}

fn limit_of(value: &serde_json::Value) -> Option<u32> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| *n > 0)
}

impl Strata {
    /// Drops the cached limits of `bot` (after its configuration changed).
    pub(crate) fn forget_limits(&self, bot: &BotId) {
        self.inner.limits.cached.remove(bot);
    }

    async fn bot_limits(&self, bot: &BotId) -> Arc<BTreeMap<String, u32>> {
        if let Some((at, limits)) = self.inner.limits.cached.get(bot) {
            if at.elapsed() < LIMITS_REFRESH {
                return limits;
            }
        }
        let limits: BTreeMap<String, u32> = match self.inner.records.get_config(bot).await {
            Ok(config) => config
                .iter()
                .filter(|(k, _)| *k == "rate_limit" || k.starts_with("rate_limit."))
                .filter_map(|(k, v)| limit_of(v).map(|n| (k.clone(), n)))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let limits = Arc::new(limits);
        self.inner
            .limits
            .cached
            .insert(bot.clone(), (Instant::now(), limits.clone()));
        limits
    }

    /// The rate that applies to `group` in `bot` (or the default).
    pub async fn rate_for(&self, bot: Option<&BotId>, group: &str) -> Rate {
        let default = self.inner.config.rate_limit;
        let Some(bot) = bot else {
            return Rate::per_minute(default);
        };
        let limits = self.bot_limits(bot).await;
        let n = limits
            .get(&format!("rate_limit.{group}"))
            .or_else(|| limits.get("rate_limit"))
            .copied()
            .unwrap_or(default);
        Rate::per_minute(n)
    }

    /// Counts one request of `who` to `group` of `path_bot` (and of the
    /// session's user, when given) against its limits. When the cache does
    /// not answer, the request passes unchecked.
    pub async fn throttle(
        &self,
        who: &Principal,
        path_bot: Option<&str>,
        group: &str,
        user: Option<&str>,
    ) -> Throttle {
        let (ns, bot) = match who {
            Principal::Bot { bot, .. } => (bot.as_str().to_owned(), Some(bot.clone())),
            // The global admin key is limited per admin key, across bots.
            Principal::Admin => (
                "_admin".to_owned(),
                path_bot.and_then(|b| BotId::parse(b).ok()),
            ),
        };
        let rate = self.rate_for(bot.as_ref(), group).await;
        let actor = match who {
            Principal::Bot { key_id, .. } => format!("key:{key_id}"),
            Principal::Admin => format!(
                "admin:{}",
                self.inner
                    .admin_key_hash
                    .as_deref()
                    .map(|h| &h[..h.len().min(16)])
                    .unwrap_or("")
            ),
        };
        let mut decision = self.check(&ns, &format!("rl:{group}:{actor}"), rate).await;
        if let (true, Some(user)) = (decision.allowed, user) {
            let per_user = self
                .check(&ns, &format!("rl:{group}:user:{user}"), rate)
                .await;
            if !per_user.allowed || per_user.remaining < decision.remaining {
                decision = per_user;
            }
        }
        decision
    }

    /// Counts one failed authentication (no key, an unknown, malformed or
    /// revoked key) from `client` — and against the key id a malformed or
    /// wrong key carries — at `STRATA_AUTH_FAILURE_LIMIT` per minute each.
    /// Requests with valid keys never reach these buckets, so a guesser
    /// sharing an address with a real client does not slow it.
    pub async fn throttle_auth_failure(
        &self,
        client: Option<std::net::IpAddr>,
        key_id: Option<&str>,
    ) -> Throttle {
        let rate = Rate::per_minute(self.inner.config.auth_failure_limit);
        let client = client
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        let mut decision = self
            .check(AUTH_FAILURE_NS, &format!("addr:{client}"), rate)
            .await;
        if let Some(id) = key_id {
            let per_key = self
                .check(AUTH_FAILURE_NS, &format!("key:{id}"), rate)
                .await;
            if !per_key.allowed || per_key.remaining < decision.remaining {
                decision = per_key;
            }
        }
        decision
    }

    async fn check(&self, ns: &str, key: &str, rate: Rate) -> Throttle {
        match self.inner.cache.throttle(ns, key, rate).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "rate limit check failed; request passes unchecked");
                Throttle::unchecked(&rate)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_from_the_path() {
        assert_eq!(endpoint_group("/v1/bots"), (None, "bots"));
        assert_eq!(endpoint_group("/v1/bots/b1"), (Some("b1"), "bots"));
        assert_eq!(
            endpoint_group("/v1/bots/b1/conversations/c/messages"),
            (Some("b1"), "conversations")
        );
        assert_eq!(endpoint_group("/v1/bots/b1/kv/x"), (Some("b1"), "kv"));
        assert_eq!(
            endpoint_group("/v1/bots/b1/collections/docs/points/search"),
            (Some("b1"), "vectors")
        );
        assert_eq!(endpoint_group("/health"), (None, "other"));
        assert_eq!(limit_of(&serde_json::json!(5)), Some(5));
        assert_eq!(limit_of(&serde_json::json!("7")), Some(7));
        assert_eq!(limit_of(&serde_json::json!(0)), None);
    }
}
