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
