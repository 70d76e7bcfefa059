//! Session tokens resolved through the cache layer.
//!
//! The records store is the truth: a session row with its expiry. Resolving
//! a token goes through the cache:
//!
//! 1. `sgen:{hash}` holds the session's generation: absent, a random value
//!    set by every change (state update), or `r` once revoked.
//! 2. `sess:{hash}` holds `{gen, session}` as read from the store, for at
//!    most [`ENTRY_TTL`]. It is served only while its `gen` equals the current
//!    generation, the session has not expired, and its expiry was slid less
//!    than [`slide_every`] ago; otherwise the store resolves (and slides) it
//!    and the entry is written again under the generation read *before* the
//!    store was asked.
//!
//! A change writes the store first, then a new generation, before answering:
//! an entry read by anyone before the change can no longer match, so a
//! revoked session stops resolving at once in every process sharing the
//! cache. Generations live [`GEN_TTL`] (longer than any entry), and every
//! change draws a fresh random one, so an expired generation can never make
//! an old entry current again. With the cache down every resolve goes to
//! the store, as without a cache.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use strata_core::types::{BotId, Session};
use strata_core::{Result, Timestamp};

use crate::Strata;

/// Longest time a resolved session is kept in the cache.
pub const ENTRY_TTL: Duration = Duration::from_secs(60);
/// Lifetime of a generation marker (longer than any entry).
pub const GEN_TTL: Duration = Duration::from_secs(180);

/// How stale the persisted slide of a cached session may get: a tenth of
/// its idle lifetime, at most a minute.
pub fn slide_every(ttl_seconds: i64) -> i64 {
    (ttl_seconds.max(1) * 100).min(60_000)
}

#[derive(Serialize, Deserialize)]
struct Entry {
    gen: String,
    session: Session,
}

fn gen_key(hash: &str) -> String {
    format!("sgen:{hash}")
}

fn entry_key(hash: &str) -> String {
    format!("sess:{hash}")
}

impl Strata {
    async fn session_gen(&self, bot: &BotId, hash: &str) -> String {
        match self.inner.cache.get(bot.as_str(), &gen_key(hash)).await {
            Ok(Some(v)) => String::from_utf8_lossy(&v).into_owned(),
            _ => String::new(),
        }
    }

    /// Resolves a token hash through the cache, sliding the expiry in the
    /// store when the persisted slide is older than [`slide_every`].
    pub(crate) async fn resolve_session_cached(&self, bot: &BotId, hash: &str) -> Result<Session> {
        let gen = self.session_gen(bot, hash).await;
        if gen == "r" {
            return Err(strata_core::Error::not_found(
                "session (expired, revoked or unknown token)",
            ));
        }
        let now = Timestamp::now();
        if let Ok(Some(raw)) = self.inner.cache.get(bot.as_str(), &entry_key(hash)).await {
            if let Ok(entry) = serde_json::from_slice::<Entry>(&raw) {
                let s = &entry.session;
                let fresh =
                    now.as_millis() - s.last_seen_at.as_millis() < slide_every(s.ttl_seconds);
                if entry.gen == gen && s.expires_at > now && fresh {
                    let mut session = entry.session;
                    session.token_hash = hash.to_owned();
                    return Ok(session);
                }
            }
        }
        let session = self.inner.records.resolve_session(bot, hash, now).await?;
        let remaining = (session.expires_at.as_millis() - now.as_millis()).max(1) as u64;
        let ttl = ENTRY_TTL.min(Duration::from_millis(remaining));
        if let Ok(raw) = serde_json::to_vec(&Entry {
            gen,
            session: session.clone(),
        }) {
            let _ = self
                .inner
                .cache
                .set(bot.as_str(), &entry_key(hash), raw.into(), ttl)
                .await;
        }
        Ok(session)
    }

    /// The user of a live session, looked up without side effects: the
    /// session's expiry does not slide and nothing is cached. For the rate
    /// limiter, which must not change what it only looks at.
    pub(crate) async fn peek_session_user(&self, bot: &BotId, hash: &str) -> Option<String> {
        let gen = self.session_gen(bot, hash).await;
        if gen == "r" {
            return None;
        }
        let now = Timestamp::now();
        if let Ok(Some(raw)) = self.inner.cache.get(bot.as_str(), &entry_key(hash)).await {
            if let Ok(entry) = serde_json::from_slice::<Entry>(&raw) {
                if entry.gen == gen && entry.session.expires_at > now {
                    return Some(entry.session.user_id);
                }
            }
        }
        self.inner
            .records
            .peek_session(bot, hash, now)
            .await
            .ok()
            .map(|s| s.user_id)
    }

    /// Marks a session changed (or revoked) for every process sharing the
    /// cache; call after the store was written, before answering.
    pub(crate) async fn session_changed(&self, bot: &BotId, hash: &str, revoked: bool) {
        let marker = if revoked {
            "r".to_owned()
        } else {
            crate::auth::random_secret()
        };
        let _ = self
            .inner
            .cache
            .set(bot.as_str(), &gen_key(hash), marker.into(), GEN_TTL)
            .await;
        let _ = self
            .inner
            .cache
            .delete(bot.as_str(), &entry_key(hash))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_are_persisted_often_enough() {
        assert_eq!(slide_every(86_400), 60_000);
        assert_eq!(slide_every(10), 1_000);
        assert_eq!(slide_every(0), 100);
    }
}
