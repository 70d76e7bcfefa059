//! The error type shared by every Strata crate.
//!
//! An [`Error`] has a [`ErrorKind`] (what the caller can do about it), a
//! stable machine-readable `code` (what the HTTP API puts into problem+json),
//! a human message, and whether retrying can help. Driver errors (`rusqlite`,
//! `redis`, …) are mapped into it at each backend's boundary and never leak.

use std::borrow::Cow;
use std::fmt;

/// What kind of failure an [`Error`] is; decides the HTTP status in one place.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The thing asked for does not exist (or belongs to another tenant).
    NotFound,
    /// A create collided with an existing thing of the same identity.
    AlreadyExists,
    /// The request is malformed or violates a documented limit.
    InvalidInput,
    /// The request conflicts with the current state (e.g. a version check).
    Conflict,
    /// No credentials, or credentials that are unknown or revoked.
    Unauthorized,
    /// Valid credentials whose role does not allow the operation.
    Forbidden,
    /// A per-bot quota would be exceeded.
    QuotaExceeded,
    /// Too many requests; retry later.
    RateLimited,
    /// A body or upload over the configured size limit.
    PayloadTooLarge,
    /// A backend is unreachable or overloaded; retrying may help.
    Unavailable,
    /// A bug or an unexpected backend failure.
    Internal,
}

impl ErrorKind {
    /// The default stable code for this kind.
    pub fn default_code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Strata's error: a kind, a stable code, a message and an optional source.
pub struct Error {
    kind: ErrorKind,
    code: Cow<'static, str>,
    message: String,
    retryable: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with Strata's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with the kind's default code.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            code: Cow::Borrowed(kind.default_code()),
            message: message.into(),
            retryable: matches!(kind, ErrorKind::Unavailable | ErrorKind::RateLimited),
            source: None,
        }
    }

    /// Replaces the stable code (e.g. `invalid_cursor` for an `InvalidInput`).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Cow::Borrowed(code);
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Marks whether retrying the same call can succeed.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// `NotFound` naming what was missing.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::new(ErrorKind::NotFound, format!("{what} not found"))
    }

    /// `InvalidInput` with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// `AlreadyExists` naming the thing.
    pub fn already_exists(what: impl fmt::Display) -> Self {
        Error::new(ErrorKind::AlreadyExists, format!("{what} already exists"))
    }

    /// `Internal` with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// `Unavailable` (retryable) with a message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same call can help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// A copy with the same kind, code, message and retryability, without
    /// the source (which cannot be copied): for one failure that concerns
    /// several items, such as an embedder call for chunks of several
    /// documents.
    pub fn detached(&self) -> Error {
        Error {
            kind: self.kind,
            code: self.code.clone(),
            message: self.message.clone(),
            retryable: self.retryable,
            source: None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("retryable", &self.retryable);
        if let Some(s) = &self.source {
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            kind_name(self.kind),
            self.message
        )?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

fn kind_name(kind: ErrorKind) -> &'static str {
    kind.default_code()
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal("JSON encoding failed").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_defaults_to_kind_and_can_be_specialised() {
        let e = Error::invalid("bad cursor");
        assert_eq!(e.code(), "invalid_input");
        let e = e.with_code("invalid_cursor");
        assert_eq!(e.code(), "invalid_cursor");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.is_retryable());
        assert!(Error::unavailable("db down").is_retryable());
        assert_eq!(e.to_string(), "invalid_cursor (invalid_input): bad cursor");
    }
}
