//! API keys and the principal a request acts as.
//!
//! A bot key is `sk_<key id>_<secret>`: the id finds the stored row, the
//! secret's SHA-256 is compared in constant time. Keys are 256-bit random, so
//! a plain SHA-256 (not a slow password hash) is the right digest. The global
//! admin key is compared the same way against its configured or stored hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use strata_core::types::{BotId, Role};
use strata_core::{Error, ErrorKind};

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The global admin key: every bot.
    Admin,
    /// A bot key: one bot, one role.
    Bot {
        bot: BotId,
        role: Role,
        key_id: String,
    },
}

impl Principal {
    /// The actor name written to the audit log.
    pub fn actor(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::Bot { key_id, .. } => format!("key:{key_id}"),
        }
    }

    /// Whether this principal may act in `bot` with at least `need`.
    /// Another bot's key gets `NotFound` (the data "does not exist" for it);
    /// a weaker role gets `Forbidden`.
    pub fn authorize(&self, bot: &BotId, need: Role) -> Result<(), Error> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Bot { bot: own, role, .. } => {
                if own != bot {
                    Err(Error::not_found(format!("bot {:?}", bot.as_str())))
                } else if *role < need {
                    Err(Error::new(
                        ErrorKind::Forbidden,
                        format!(
                            "this key's role is {}; the operation needs {}",
                            role.as_str(),
                            need.as_str()
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Only the global admin passes.
    pub fn require_admin(&self) -> Result<(), Error> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Bot { .. } => Err(Error::new(
                ErrorKind::Forbidden,
                "this operation needs the global admin key",
            )),
        }
    }
}

/// 32 random bytes, URL-safe base64.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `secret`, hex.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of two hex digests.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A new bot key: (key id, the full key to give the client once, its hash).
pub fn new_bot_key() -> (String, String, String) {
    let id = uuid_simple();
    let secret = random_secret();
    let hash = hash_secret(&secret);
    (id.clone(), format!("sk_{id}_{secret}"), hash)
}

/// A new global admin key (`sa_…`).
pub fn new_admin_key() -> String {
    format!("sa_{}", random_secret())
}

/// Splits `sk_<id>_<secret>` into (id, secret).
pub fn parse_bot_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("sk_")?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty() {
        Some((id, secret))
    } else {
        None
    }
}

/// The key id a bot key claims (`sk_<32 hex>_…`), even when its secret is
/// wrong or missing: failed authentications are also counted per key id.
pub fn claimed_key_id(token: &str) -> Option<&str> {
    let rest = token.trim().strip_prefix("sk_")?;
    let id = rest.split('_').next()?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn uuid_simple() -> String {
    strata_core::types::new_id().replace('-', "")
}

/// SHA-256 of `secret`, raw bytes.
pub fn digest_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Keys whose secret was verified against the records store, so that a
/// request with a known key costs a hash and a map lookup instead of a
/// database read (the read was a third of an authenticated request's CPU).
///
/// # Behavior
///
/// Revocation stays exact: every revocation path ([`crate::BotScope::revoke_key`],
/// [`crate::Strata::delete_bot`]) calls [`VerifiedKeys::invalidate`] after the
/// store committed and before it answers, which advances an epoch. An entry is
/// used only while the epoch it was read at is current, and an entry is read
/// at the epoch taken *before* its database read — so an authentication that
/// raced with a revocation and read the row before the commit can never leave
/// a usable entry behind. Only successful authentications are cached; the
/// secret is still hashed and compared in constant time on every request.
/// The records store is owned by this process (SQLite, one process per data
/// folder): a records store shared between processes would need the epoch in
/// the shared cache layer, as sessions do.
#[derive(Debug)]
pub struct VerifiedKeys {
    epoch: std::sync::atomic::AtomicU64,
    cache: quick_cache::sync::Cache<String, VerifiedKey>,
}

#[derive(Debug, Clone)]
struct VerifiedKey {
    digest: [u8; 32],
    principal: Principal,
    epoch: u64,
}

impl Default for VerifiedKeys {
    fn default() -> Self {
        VerifiedKeys {
            epoch: std::sync::atomic::AtomicU64::new(0),
            cache: quick_cache::sync::Cache::new(VERIFIED_KEYS),
        }
    }
}

/// Keys kept verified at most (a few MB at the most).
const VERIFIED_KEYS: usize = 16_384;

impl VerifiedKeys {
    /// The current epoch; take it before reading a key from the store.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The principal of `key_id` when it was verified in the current epoch
    /// with this secret's digest.
    pub fn get(&self, key_id: &str, digest: &[u8; 32]) -> Option<Principal> {
        let v = self.cache.get(key_id)?;
        (v.epoch == self.epoch() && bool::from(v.digest.ct_eq(digest))).then_some(v.principal)
    }

    /// Remembers a key verified against a store read that started at `epoch`.
    pub fn insert(&self, key_id: &str, digest: [u8; 32], principal: Principal, epoch: u64) {
        if epoch == self.epoch() {
            self.cache.insert(
                key_id.to_owned(),
                VerifiedKey {
                    digest,
                    principal,
                    epoch,
                },
            );
        }
    }

    /// Forgets every verified key: call after a revocation committed,
    /// before answering.
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.cache.clear();
    }
}

/// The error for a missing, unknown or revoked key.
pub fn unauthorized(msg: &str) -> Error {
    Error::new(ErrorKind::Unauthorized, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_keys_parse_back() {
        let (id, key, hash) = new_bot_key();
        let (pid, secret) = parse_bot_key(&key).expect("parses");
        assert_eq!(pid, id);
        assert!(hashes_match(&hash_secret(secret), &hash));
        assert!(!hashes_match(&hash_secret("other"), &hash));
        assert!(parse_bot_key("sk_short_x").is_none());
        assert!(parse_bot_key("Bearer x").is_none());
    }

    #[test]
    fn verified_keys_need_the_same_secret_and_a_current_epoch() {
        let keys = VerifiedKeys::default();
        let who = Principal::Bot {
            bot: BotId::parse("a").expect("id"),
            role: Role::Writer,
            key_id: "k1".into(),
        };
        let good = digest_secret("secret");
        let e0 = keys.epoch();
        keys.insert("k1", good, who.clone(), e0);
        assert_eq!(keys.get("k1", &good), Some(who.clone()));
        assert_eq!(keys.get("k1", &digest_secret("other")), None);
        assert_eq!(keys.get("k2", &good), None);
        // A read that started before a revocation is never cached.
        keys.invalidate();
        assert_eq!(keys.get("k1", &good), None);
        keys.insert("k1", good, who.clone(), e0);
        assert_eq!(keys.get("k1", &good), None);
        keys.insert("k1", good, who.clone(), keys.epoch());
        assert_eq!(keys.get("k1", &good), Some(who));
        assert_eq!(hex::encode(good), hash_secret("secret"));
    }

    #[test]
    fn authorization_rules() {
        let a = BotId::parse("a").expect("id");
        let b = BotId::parse("b").expect("id");
        let reader = Principal::Bot {
            bot: a.clone(),
            role: Role::Reader,
            key_id: "k".into(),
        };
        assert!(reader.authorize(&a, Role::Reader).is_ok());
        assert_eq!(
            reader.authorize(&a, Role::Writer).map_err(|e| e.kind()),
            Err(ErrorKind::Forbidden)
        );
        assert_eq!(
            reader.authorize(&b, Role::Reader).map_err(|e| e.kind()),
            Err(ErrorKind::NotFound)
        );
        assert!(Principal::Admin.authorize(&b, Role::Admin).is_ok());
        assert_eq!(
            reader.require_admin().map_err(|e| e.kind()),
            Err(ErrorKind::Forbidden)
        );
    }
}
