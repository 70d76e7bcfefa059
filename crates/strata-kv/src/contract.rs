//! Rules of the [`KvStore`](strata_core::kv::KvStore) contract that every
//! backend of this crate applies the same way: validating a transaction
//! before applying any of it, batch outcomes, page sizes and the key range
//! a prefix covers.

use std::time::Duration;
use strata_core::kv::{KvOp, KvOpOutcome};
use strata_core::page::validate_limit;
use strata_core::{Error, PageRequest, Result};

/// How much of an offending key an error message quotes.
const QUOTED_KEY_CHARS: usize = 64;

/// Checks every operation of a transaction; the error names the first
/// invalid one (its position and key) and keeps its code (`invalid_key`,
/// `invalid_ttl`).
pub(crate) fn validate_transaction(ops: &[KvOp]) -> Result<()> {
    for (index, op) in ops.iter().enumerate() {
        if let Err(e) = op.validate() {
            let quoted: String = op.key().chars().take(QUOTED_KEY_CHARS).collect();
            return Err(Error::invalid(format!(
                "transaction operation {index} (key {quoted:?}) is invalid, nothing was applied: {}",
                e.message()
            ))
            .with_code(static_code(e.code())));
        }
    }
    Ok(())
}

/// The codes [`KvOp::validate`] produces, as `'static` strings.
fn static_code(code: &str) -> &'static str {
    match code {
        "invalid_key" => "invalid_key",
        "invalid_ttl" => "invalid_ttl",
        _ => "invalid_input",
    }
}

/// The outcome of a batch operation that was applied.
pub(crate) fn applied(key: String) -> KvOpOutcome {
    KvOpOutcome {
        key,
        status: "ok".into(),
        error: None,
    }
}

/// The outcome of a batch operation that failed validation (the same shape
/// as [`strata_core::kv::batch_one_by_one`] reports).
pub(crate) fn rejected(key: String, e: &Error) -> KvOpOutcome {
    KvOpOutcome {
        key,
        status: e.code().to_owned(),
        error: Some(e.message().to_owned()),
    }
}

/// The page size asked for, checked against `1..=MAX_LIMIT` (`invalid_limit`).
pub(crate) fn page_limit(page: &PageRequest) -> Result<u32> {
    validate_limit(Some(i64::from(page.limit)))
}

/// Where a listing starts: after the cursor when it lies at or past the
/// prefix, else at the prefix itself. `true` means the bound is exclusive.
pub(crate) fn list_start<'a>(prefix: &'a str, page: &'a PageRequest) -> (&'a str, bool) {
    match &page.cursor {
        Some(c) if c.key() >= prefix => (c.key(), true),
        _ => (prefix, false),
    }
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` when no such string exists (empty prefix, or one made only of
/// `char::MAX`).
///
/// UTF-8 byte order is code-point order, so replacing the last character
/// that can grow by its successor (skipping surrogates) and dropping what
/// follows gives the exclusive upper bound of the prefix's key range. Unlike
/// `LIKE`, the range treats `%` and `_` literally.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next Unicode scalar value after `c`.
fn next_char(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        char::MAX => None,
        c => char::from_u32(u32::from(c) + 1),
    }
}

/// A TTL in whole milliseconds, at least one (a sub-millisecond TTL still
/// keeps the key for a moment rather than never storing it visibly).
pub(crate) fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use strata_core::Cursor;

    #[test]
    fn upper_bound_covers_exactly_the_prefix() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("item/").as_deref(), Some("item0"));
        assert_eq!(prefix_upper_bound("a%").as_deref(), Some("a&"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("x\u{10FFFF}").as_deref(), Some("y"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        for (prefix, inside, outside) in [
            ("é", "é\u{10FFFF}zz", "ê"),
            ("a_", "a_\u{7F}", "a`"),
            ("ab", "ab", "ac"),
        ] {
            let upper = prefix_upper_bound(prefix).expect("bounded");
            assert!(
                inside.as_bytes() < upper.as_bytes(),
                "{inside:?} < {upper:?}"
            );
            assert!(
                outside.as_bytes() >= upper.as_bytes(),
                "{outside:?} >= {upper:?}"
            );
        }
    }

    #[test]
    fn transaction_validation_names_the_first_bad_operation() {
        let ops = vec![
            KvOp::Delete { key: "fine".into() },
            KvOp::Set {
                key: "k".into(),
                value: Bytes::new(),
                ttl: Some(Duration::ZERO),
            },
            KvOp::Delete { key: String::new() },
        ];
        let e = validate_transaction(&ops).expect_err("invalid");
        assert_eq!(e.code(), "invalid_ttl");
        assert!(e.message().contains("operation 1"), "{}", e.message());
        assert!(validate_transaction(&ops[..1]).is_ok());
        assert!(validate_transaction(&[]).is_ok());
    }

    #[test]
    fn listing_starts_at_the_later_of_prefix_and_cursor() {
        let first = PageRequest::first(10);
        assert_eq!(list_start("p/", &first), ("p/", false));
        let after = PageRequest {
            cursor: Some(Cursor::after("p/5")),
            limit: 10,
        };
        assert_eq!(list_start("p/", &after), ("p/5", true));
        let before = PageRequest {
            cursor: Some(Cursor::after("a")),
            limit: 10,
        };
        assert_eq!(list_start("p/", &before), ("p/", false));
    }

    #[test]
    fn page_limits_and_ttls_are_bounded() {
        assert!(page_limit(&PageRequest::first(0)).is_err());
        assert_eq!(page_limit(&PageRequest::first(7)).ok(), Some(7));
        assert!(page_limit(&PageRequest::first(1_000_000)).is_err());
        assert_eq!(ttl_millis(Duration::from_micros(10)), 1);
        assert_eq!(ttl_millis(Duration::from_secs(2)), 2000);
    }
}
