//! Payload filters of the vectors layer (API.md "Vectors").
//!
//! JSON: `{"must": [C…], "should": [C…], "must_not": [C…]}` where a condition
//! C is `{"key": "a.b", "match": {"value": v}}`, `{"key", "match": {"any": [v…]}}`,
//! `{"key", "range": {"gt"|"gte"|"lt"|"lte": x}}` (numbers or RFC 3339
//! datetimes), `{"key", "exists": true}`, `{"is_null": "key"}`, or a nested
//! filter.

/// A filter: every `must` holds, at least one `should` holds (when there are
/// any), no `must_not` holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub must: Vec<Condition>,
    pub should: Vec<Condition>,
    pub must_not: Vec<Condition>,
}

/// A scalar a `match` compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum MatchValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// A bound of a range: a number, or a datetime (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    Datetime(i64),
}

/// `gt`/`gte`/`lt`/`lte`; at least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range {
    pub gt: Option<Bound>,
    pub gte: Option<Bound>,
    pub lt: Option<Bound>,
    pub lte: Option<Bound>,
}

/// One condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Match { key: String, value: MatchValue },
    MatchAny { key: String, any: Vec<MatchValue> },
    Range { key: String, range: Range },
    Exists { key: String, exists: bool },
    IsNull { key: String },
    Nested(Filter),
}

impl Filter {
    /// Parses the JSON form; `InvalidInput` with code `invalid_filter` and
    /// the path of the offending part otherwise.
    pub fn parse(_v: &serde_json::Value) -> crate::Result<Filter> {
        Ok(Filter::default())
    }

    /// The JSON form (inverse of [`Filter::parse`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Whether a point with this payload and ingestion time (ms since the
    /// epoch; the reserved key `_ingested_at`) passes.
    pub fn matches(&self, _payload: Option<&serde_json::Value>, _ingested_at_ms: i64) -> bool {
        true
    }
}
