//! Cursor pagination shared by every list operation.
//!
//! A cursor is opaque to clients: URL-safe base64 of the last sort key the
//! previous page returned. A cursor that does not decode is `invalid_cursor`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::{Error, Result};

/// Default page size when a request names none.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page a request may ask for; more is `invalid_limit`.
pub const MAX_LIMIT: u32 = 1000;

/// An opaque position in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor after the sort key `key`.
    pub fn after(key: &str) -> Self {
        Cursor(key.to_owned())
    }

    /// The sort key this cursor points after.
    pub fn key(&self) -> &str {
        &self.0
    }

    /// The opaque form given to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Parses a client-supplied cursor.
    pub fn decode(s: &str) -> Result<Self> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.as_bytes())
            .map_err(|_| invalid_cursor())?;
        let key = String::from_utf8(bytes).map_err(|_| invalid_cursor())?;
        if key.is_empty() {
            return Err(invalid_cursor());
        }
        Ok(Cursor(key))
    }
}

fn invalid_cursor() -> Error {
    Error::invalid("cursor is not one this server returned").with_code("invalid_cursor")
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this cursor (`None`: from the beginning).
    pub cursor: Option<Cursor>,
    /// At most this many items (1..=[`MAX_LIMIT`]).
    pub limit: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            cursor: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl PageRequest {
    /// Validates client input: the limit must be 1..=MAX_LIMIT, the cursor one we issued.
    pub fn parse(cursor: Option<&str>, limit: Option<i64>) -> Result<Self> {
        let limit = validate_limit(limit)?;
        let cursor = match cursor {
            None | Some("") => None,
            Some(c) => Some(Cursor::decode(c)?),
        };
        Ok(PageRequest { cursor, limit })
    }

    /// The first page with `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            cursor: None,
            limit,
        }
    }
}

/// Checks a client-supplied page size: 1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
pub fn validate_limit(limit: Option<i64>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(l) if (1..=i64::from(MAX_LIMIT)).contains(&l) => Ok(l as u32),
        Some(l) => Err(
            Error::invalid(format!("limit must be between 1 and {MAX_LIMIT}, got {l}"))
                .with_code("invalid_limit"),
        ),
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` at the end.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells
    /// that there is more, and the cursor points after the last kept row.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| Cursor::after(&key(r)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = Cursor::after("0190-abc");
        assert_eq!(
            Cursor::decode(&c.encode()).map(|c| c.0).ok(),
            Some("0190-abc".into())
        );
        assert_eq!(
            Cursor::decode("!!!").err().map(|e| e.code().to_owned()),
            Some("invalid_cursor".into())
        );
        assert!(Cursor::decode("").is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(validate_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(validate_limit(Some(5)).ok(), Some(5));
        assert!(validate_limit(Some(0)).is_err());
        assert!(validate_limit(Some(-3)).is_err());
        assert!(validate_limit(Some(1_000_000)).is_err());
    }

    #[test]
    fn overfetch_sets_cursor_only_when_more() {
        let p = Page::from_overfetch(vec![1, 2, 3], 2, |x| x.to_string());
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_cursor, Some(Cursor::after("2")));
        let p = Page::from_overfetch(vec![1, 2], 2, |x| x.to_string());
        assert_eq!(p.next_cursor, None);
    }
}
