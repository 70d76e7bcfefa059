//! Qdrant point ids: an unsigned integer or a UUID in any spelling the
//! clients send (hyphenated, 32 hex digits, braced, `urn:uuid:`), stored
//! as Strata's string id in the lowercase hyphenated form.

use serde::{Serialize, Serializer};
use serde_json::Value;
use strata::vectors::PointId;

use super::QError;

/// The canonical (lowercase, hyphenated) form of a UUID, or `None`.
pub fn canonical_uuid(s: &str) -> Option<String> {
    let t = s.trim();
    let t = t
        .strip_prefix("urn:uuid:")
        .or_else(|| t.strip_prefix("URN:UUID:"))
        .unwrap_or(t);
    let t = t
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(t);
    let hex: String = match t.len() {
        32 => t.to_owned(),
        36 => {
            let b = t.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            t.chars().filter(|c| *c != '-').collect()
        }
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn not_an_id(shown: &str) -> QError {
    QError::format(format!(
        "value {shown} is not a valid point ID, valid values are either an unsigned integer or a UUID"
    ))
}

/// A point id of a JSON body.
pub fn parse_id(v: &Value) -> Result<PointId, QError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(PointId::Num)
            .ok_or_else(|| not_an_id(&n.to_string())),
        Value::String(s) => canonical_uuid(s)
            .map(PointId::Str)
            .ok_or_else(|| not_an_id(s)),
        other => Err(not_an_id(&other.to_string())),
    }
}

/// A list of point ids.
pub fn parse_ids(v: &Value) -> Result<Vec<PointId>, QError> {
    match v {
        Value::Array(items) => items.iter().map(parse_id).collect(),
        other => Err(QError::format(format!(
            "expected a list of point ids, got {other}"
        ))),
    }
}

/// A point id of a path segment.
pub fn parse_path_id(s: &str) -> Result<PointId, QError> {
    if let Ok(n) = s.parse::<u64>() {
        if !s.starts_with('+') {
            return Ok(PointId::Num(n));
        }
    }
    canonical_uuid(s)
        .map(PointId::Str)
        .ok_or_else(|| QError::wrong_input(format!("Can not recognize \"{s}\" as point id")))
}

/// A point id as Qdrant writes it: a number, or a string.
#[derive(Debug, Clone)]
pub struct OutId(pub PointId);

impl Serialize for OutId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            PointId::Num(n) => s.serialize_u64(*n),
            PointId::Str(x) => s.serialize_str(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_uuid_spelling_is_one_id() {
        let want = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
        for s in [
            want,
            "5c56c79369f34fbf87e6c4bf54c28c26",
            "5C56C793-69F3-4FBF-87E6-C4BF54C28C26",
            "{5c56c793-69f3-4fbf-87e6-c4bf54c28c26}",
            "urn:uuid:5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
        ] {
            assert_eq!(canonical_uuid(s).as_deref(), Some(want), "{s}");
        }
        for s in [
            "abc",
            "5c56c793-69f3-4fbf-87e6-c4bf54c28c2",
            "5c56c79369f34fbf87e6c4bf54c28c2g",
            "5c56c793a69f3-4fbf-87e6-c4bf54c28c26",
        ] {
            assert_eq!(canonical_uuid(s), None, "{s}");
        }
    }

    #[test]
    fn ids_are_unsigned_integers_or_uuids() {
        assert_eq!(parse_id(&json!(5)).ok(), Some(PointId::Num(5)));
        assert!(parse_id(&json!(-1)).is_err());
        assert!(parse_id(&json!(1.5)).is_err());
        assert!(parse_id(&json!("doc-1")).is_err());
        let e = parse_id(&json!("abc")).expect_err("not a uuid");
        assert_eq!(
            e.message,
            "Format error in JSON body: value abc is not a valid point ID, valid values are either an unsigned integer or a UUID"
        );
        assert_eq!(parse_path_id("7").ok(), Some(PointId::Num(7)));
        assert!(parse_path_id("+7").is_err());
        let e = parse_path_id("abc").expect_err("not an id");
        assert_eq!(
            e.message,
            "Wrong input: Can not recognize \"abc\" as point id"
        );
    }
}
