//! Domain types: bots, keys, people, sessions, conversations and messages.
//!
//! These are what the records layer stores and the API returns. JSON fields
//! (`settings`, `metadata`, `state`, `params`) are free-form objects owned by
//! the client.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use utoipa::ToSchema;

use crate::{Error, Result, Timestamp};

/// A bot's id: a client-chosen slug, `[a-z0-9][a-z0-9_-]{0,62}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
pub struct BotId(String);

impl BotId {
    /// Validates a bot id.
    pub fn parse(s: &str) -> Result<Self> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 63
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if ok {
            Ok(BotId(s.to_owned()))
        } else {
            Err(Error::invalid(format!(
                "bot id {s:?} is invalid: use 1-63 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
            ))
            .with_code("invalid_bot_id"))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BotId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        BotId::parse(&s)
    }
}

impl From<BotId> for String {
    fn from(b: BotId) -> String {
        b.0
    }
}

impl fmt::Display for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotId({})", self.0)
    }
}

/// A new server-generated id: a UUIDv7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Validates a client-supplied resource id (users, conversations, …).
pub fn validate_resource_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "id {id:?} is invalid: use 1-128 characters from A-Z, a-z, 0-9, '_', '-', '.', ':'"
        ))
        .with_code("invalid_id"))
    }
}

/// What a bot key may do inside its bot.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only.
    Reader,
    /// Read and write data.
    Writer,
    /// Everything in the bot, including keys and configuration.
    Admin,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or client-supplied role name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "admin" => Ok(Role::Admin),
            other => Err(Error::invalid(format!(
                "unknown role {other:?}: expected admin, writer or reader"
            ))
            .with_code("invalid_role")),
        }
    }
}

/// A tenant: everything else belongs to one bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Bot {
    pub id: BotId,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub bot_id: BotId,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// What the records layer keeps to check a presented key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub key: ApiKey,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
}

/// A person who talks to a bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub bot_id: BotId,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub settings: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields of a new user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewUser {
    pub id: Option<String>,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub settings: Option<Value>,
}

/// Changes to a user; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub settings: Option<Value>,
}

/// A login session of a user; found by its token, which slides its expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: String,
    pub bot_id: BotId,
    pub user_id: String,
    pub state: Value,
    /// Idle lifetime: each resolve moves `expires_at` this far ahead.
    pub ttl_seconds: i64,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// SHA-256 of the token (never serialised): how caches find the session.
    #[serde(skip)]
    pub token_hash: String,
}

/// Fields of a new session; the facade makes the token and passes its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub user_id: String,
    pub token_hash: String,
    pub ttl_seconds: i64,
    pub state: Value,
}

/// A conversation between a user and a bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    pub bot_id: BotId,
    pub user_id: String,
    pub title: Option<String>,
    pub metadata: Value,
    /// The `seq` of the newest message (0 when empty).
    pub last_seq: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields of a new conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewConversation {
    pub id: Option<String>,
    pub user_id: String,
    pub title: Option<String>,
    pub metadata: Option<Value>,
}

/// Changes to a conversation; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationPatch {
    pub title: Option<String>,
    pub metadata: Option<Value>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    System,
    User,
    Assistant,
    Tool,
}

impl MessageRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::System => "system",
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::Tool => "tool",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "system" => Ok(MessageRole::System),
            "user" => Ok(MessageRole::User),
            "assistant" => Ok(MessageRole::Assistant),
            "tool" => Ok(MessageRole::Tool),
            other => Err(Error::invalid(format!(
                "unknown message role {other:?}: expected system, user, assistant or tool"
            ))
            .with_code("invalid_role")),
        }
    }
}

/// One message of a conversation; `seq` is gap-free from 1 per conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub role: MessageRole,
    pub content: String,
    pub metadata: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
}

/// A message to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub role: MessageRole,
    pub content: String,
    pub metadata: Option<Value>,
    pub idempotency_key: Option<String>,
}

/// The outcome of appending one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub message: Message,
    /// True when the idempotency key was already used: `message` is the original.
    pub replayed: bool,
}

/// Which messages of a conversation to read, always returned in `seq` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRange {
    /// Only messages with `seq > after_seq`.
    pub after_seq: i64,
    /// Only messages with `seq < before_seq`; with it, the *last* `limit` of
    /// the range are returned (the tail of the history).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// An AI preset: a named system prompt, model and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preset {
    pub id: String,
    pub bot_id: BotId,
    pub name: String,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
    pub params: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields of a preset (create or full replace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresetFields {
    pub name: String,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
    pub params: Option<Value>,
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: String,
    pub bot_id: BotId,
    pub name: String,
    pub settings: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields of a group (create or full replace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupFields {
    pub name: String,
    pub settings: Option<Value>,
}

/// A record of a tool call made by a bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolLog {
    pub id: String,
    pub bot_id: BotId,
    pub conversation_id: Option<String>,
    pub tool: String,
    pub input: Value,
    pub output: Option<Value>,
    pub status: String,
    pub duration_ms: Option<i64>,
    pub created_at: Timestamp,
}

/// Fields of a new tool log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToolLog {
    pub conversation_id: Option<String>,
    pub tool: String,
    pub input: Value,
    pub output: Option<Value>,
    pub status: String,
    pub duration_ms: Option<i64>,
}

/// A sensitive operation, kept in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub bot_id: Option<BotId>,
    /// `admin` for the global key, else the key id.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: Value,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_ids_follow_the_slug_rule() {
        for ok in ["a", "0", "my-bot_2", &"a".repeat(63)] {
            assert!(BotId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "_a", "A", "a b", "a/b", "é", &"a".repeat(64)] {
            assert_eq!(
                BotId::parse(bad)
                    .err()
                    .map(|e| e.code().to_owned())
                    .as_deref(),
                Some("invalid_bot_id"),
                "{bad}"
            );
        }
    }

    #[test]
    fn roles_parse_and_order() {
        assert!(Role::Admin > Role::Writer && Role::Writer > Role::Reader);
        assert_eq!(Role::parse("writer").ok(), Some(Role::Writer));
        assert_eq!(
            Role::parse("owner")
                .err()
                .map(|e| e.code().to_owned())
                .as_deref(),
            Some("invalid_role")
        );
    }

    #[test]
    fn resource_ids() {
        assert!(validate_resource_id("u-1.x:y").is_ok());
        assert!(validate_resource_id("").is_err());
        assert!(validate_resource_id("a/b").is_err());
        assert!(validate_resource_id(&"x".repeat(129)).is_err());
    }
}
