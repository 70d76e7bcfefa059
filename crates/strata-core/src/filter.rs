//! Payload filters of the vectors layer (API.md "Vectors").
//!
//! JSON: `{"must": [C…], "should": [C…], "must_not": [C…]}` where a condition
//! C is `{"key": "a.b", "match": {"value": v}}`, `{"key", "match": {"any": [v…]}}`,
//! `{"key", "range": {"gt"|"gte"|"lt"|"lte": x}}` (numbers or RFC 3339
//! datetimes), `{"key", "exists": true}`, `{"is_null": "key"}`, or a nested
//! filter.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{json, Map, Number, Value};

use crate::vectors::{PointId, INGESTED_AT_KEY};
use crate::{Error, Result, Timestamp};

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
    Match {
        key: String,
        value: MatchValue,
    },
    MatchAny {
        key: String,
        any: Vec<MatchValue>,
    },
    Range {
        key: String,
        range: Range,
    },
    Exists {
        key: String,
        exists: bool,
    },
    IsNull {
        key: String,
    },
    Nested(Filter),
    /// Some value at `key` is none of `except` (Qdrant's `match.except`);
    /// false when the key is missing or holds only an empty array.
    Except {
        key: String,
        except: Vec<MatchValue>,
    },
    /// Some string at `key` contains `text` (a substring match).
    Text {
        key: String,
        text: String,
    },
    /// The number of values at `key` is in `range`: an array counts its
    /// elements, `null` and a missing key count 0, anything else 1.
    ValuesCount {
        key: String,
        range: Range,
    },
    /// `key` is missing, `null` or an empty array (`[null]` is not empty).
    IsEmpty {
        key: String,
    },
    /// The point's id is one of these (matches nothing where the id is
    /// not known: [`Filter::matches`]).
    HasId(Vec<PointId>),
    /// Some element of the array of objects at `key` (or the object itself)
    /// passes `filter` on its own, keys relative to the element.
    NestedArray {
        key: String,
        filter: Filter,
    },
    /// At least `min_count` of `conditions` hold.
    MinShould {
        conditions: Vec<Condition>,
        min_count: usize,
    },
}

/// Deepest nesting of filters (the top level is depth 1).
pub const MAX_DEPTH: usize = 16;
/// Most conditions in one filter, nested ones included.
pub const MAX_CONDITIONS: usize = 1024;
/// Longest key, in characters (what the API document's `maxLength` counts).
pub const MAX_KEY_LEN: usize = 256;

fn filter_error(path: &str, msg: impl fmt::Display) -> Error {
    Error::invalid(format!("{path}: {msg}")).with_code("invalid_filter")
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Walks `JSON -> Filter`, counting conditions.
struct Parser {
    conditions: usize,
}

impl Parser {
    fn filter(&mut self, v: &Value, path: &str, depth: usize) -> Result<Filter> {
        if depth > MAX_DEPTH {
            return Err(filter_error(
                path,
                format_args!("filters nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        let Some(obj) = v.as_object() else {
            return Err(filter_error(
                path,
                format_args!(
                    "expected an object with must, should or must_not, got {}",
                    json_kind(v)
                ),
            ));
        };
        let mut f = Filter::default();
        for (k, val) in obj {
            let list = match k.as_str() {
                "must" => &mut f.must,
                "should" => &mut f.should,
                "must_not" => &mut f.must_not,
                other => {
                    return Err(filter_error(
                        path,
                        format_args!("unknown field {other:?}: expected must, should or must_not"),
                    ))
                }
            };
            let part = format!("{path}.{k}");
            match val {
                Value::Null => {}
                Value::Array(items) => {
                    list.reserve(items.len());
                    for (i, c) in items.iter().enumerate() {
                        list.push(self.condition(c, &format!("{part}[{i}]"), depth)?);
                    }
                }
                other => {
                    return Err(filter_error(
                        &part,
                        format_args!("expected an array of conditions, got {}", json_kind(other)),
                    ))
                }
            }
        }
        Ok(f)
    }

    fn condition(&mut self, v: &Value, path: &str, depth: usize) -> Result<Condition> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(filter_error(
                path,
                format_args!("a filter has at most {MAX_CONDITIONS} conditions"),
            ));
        }
        let Some(obj) = v.as_object() else {
            return Err(filter_error(
                path,
                format_args!("expected a condition object, got {}", json_kind(v)),
            ));
        };
        if let Some(key) = obj.get("key") {
            let key = parse_key(key, &format!("{path}.key"))?;
            let mut cond: Option<Condition> = None;
            for (k, val) in obj {
                let c = match k.as_str() {
                    "key" => continue,
                    "match" => parse_match(&key, val, &format!("{path}.match"))?,
                    "range" => Condition::Range {
                        key: key.clone(),
                        range: parse_range(val, &format!("{path}.range"))?,
                    },
                    "exists" => match val {
                        Value::Bool(b) => Condition::Exists {
                            key: key.clone(),
                            exists: *b,
                        },
                        other => {
                            return Err(filter_error(
                                &format!("{path}.exists"),
                                format_args!("expected true or false, got {}", json_kind(other)),
                            ))
                        }
                    },
                    other => {
                        return Err(filter_error(
                            path,
                            format_args!(
                                "unknown field {other:?}: a condition on a key has one of match, range or exists"
                            ),
                        ))
                    }
                };
                if cond.is_some() {
                    return Err(filter_error(
                        path,
                        "a condition on a key has exactly one of match, range or exists",
                    ));
                }
                cond = Some(c);
            }
            return cond.ok_or_else(|| {
                filter_error(
                    path,
                    "a condition on a key needs one of match, range or exists",
                )
            });
        }
        if let Some(key) = obj.get("is_null") {
            if let Some(other) = obj.keys().find(|k| *k != "is_null") {
                return Err(filter_error(
                    path,
                    format_args!(
                        "unknown field {other:?}: an is_null condition has no other fields"
                    ),
                ));
            }
            let key = parse_key(key, &format!("{path}.is_null"))?;
            return Ok(Condition::IsNull { key });
        }
        if obj
            .keys()
            .any(|k| matches!(k.as_str(), "must" | "should" | "must_not"))
        {
            return Ok(Condition::Nested(self.filter(v, path, depth + 1)?));
        }
        match obj.keys().next() {
            None => Err(filter_error(
                path,
                "empty condition: expected key, is_null or a nested filter (must, should, must_not)",
            )),
            Some(other) => Err(filter_error(
                path,
                format_args!(
                    "unknown field {other:?}: expected key, is_null or a nested filter (must, should, must_not)"
                ),
            )),
        }
    }
}

fn parse_key(v: &Value, path: &str) -> Result<String> {
    let Some(key) = v.as_str() else {
        return Err(filter_error(
            path,
            format_args!("expected a string key, got {}", json_kind(v)),
        ));
    };
    if key.is_empty() {
        return Err(filter_error(path, "the key must not be empty"));
    }
    if key.chars().count() > MAX_KEY_LEN {
        return Err(filter_error(
            path,
            format_args!("the key is longer than {MAX_KEY_LEN} characters"),
        ));
    }
    if key.split('.').any(str::is_empty) {
        return Err(filter_error(
            path,
            format_args!("the key {key:?} has an empty path segment"),
        ));
    }
    Ok(key.to_owned())
}

fn parse_scalar(v: &Value, path: &str) -> Result<MatchValue> {
    match v {
        Value::String(s) => Ok(MatchValue::Str(s.clone())),
        Value::Bool(b) => Ok(MatchValue::Bool(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(MatchValue::Int(i)),
            (None, Some(f)) if f.is_finite() => Ok(MatchValue::Float(f)),
            _ => Err(filter_error(path, "the number is out of range")),
        },
        other => Err(filter_error(
            path,
            format_args!(
                "expected a string, number or bool, got {}",
                json_kind(other)
            ),
        )),
    }
}

fn parse_match(key: &str, v: &Value, path: &str) -> Result<Condition> {
    let Some(obj) = v.as_object() else {
        return Err(filter_error(
            path,
            format_args!("expected an object with value or any, got {}", json_kind(v)),
        ));
    };
    let mut fields = obj.iter();
    let (Some((k, val)), None) = (fields.next(), fields.next()) else {
        return Err(filter_error(path, "expected exactly one of value or any"));
    };
    match k.as_str() {
        "value" => Ok(Condition::Match {
            key: key.to_owned(),
            value: parse_scalar(val, &format!("{path}.value"))?,
        }),
        "any" => {
            let part = format!("{path}.any");
            let Some(items) = val.as_array() else {
                return Err(filter_error(
                    &part,
                    format_args!("expected an array of values, got {}", json_kind(val)),
                ));
            };
            if items.is_empty() {
                return Err(filter_error(&part, "the list must not be empty"));
            }
            let any = items
                .iter()
                .enumerate()
                .map(|(i, x)| parse_scalar(x, &format!("{part}[{i}]")))
                .collect::<Result<Vec<_>>>()?;
            Ok(Condition::MatchAny {
                key: key.to_owned(),
                any,
            })
        }
        other => Err(filter_error(
            path,
            format_args!("unknown field {other:?}: expected value or any"),
        )),
    }
}

fn parse_range(v: &Value, path: &str) -> Result<Range> {
    let Some(obj) = v.as_object() else {
        return Err(filter_error(
            path,
            format_args!(
                "expected an object with gt, gte, lt or lte, got {}",
                json_kind(v)
            ),
        ));
    };
    if obj.is_empty() {
        return Err(filter_error(
            path,
            "a range needs at least one of gt, gte, lt or lte",
        ));
    }
    let mut range = Range::default();
    let mut datetimes: Option<bool> = None;
    for (k, val) in obj {
        let slot = match k.as_str() {
            "gt" => &mut range.gt,
            "gte" => &mut range.gte,
            "lt" => &mut range.lt,
            "lte" => &mut range.lte,
            other => {
                return Err(filter_error(
                    path,
                    format_args!("unknown field {other:?}: expected gt, gte, lt or lte"),
                ))
            }
        };
        let part = format!("{path}.{k}");
        let bound = match val {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => Bound::Number(f),
                _ => return Err(filter_error(&part, "the number is out of range")),
            },
            Value::String(s) => match Timestamp::parse_rfc3339(s) {
                Some(t) => Bound::Datetime(t.as_millis()),
                None => {
                    return Err(filter_error(
                        &part,
                        format_args!("{s:?} is not an RFC 3339 datetime"),
                    ))
                }
            },
            other => {
                return Err(filter_error(
                    &part,
                    format_args!(
                        "expected a number or an RFC 3339 datetime, got {}",
                        json_kind(other)
                    ),
                ))
            }
        };
        let is_dt = matches!(bound, Bound::Datetime(_));
        if *datetimes.get_or_insert(is_dt) != is_dt {
            return Err(filter_error(
                path,
                "the bounds of a range are all numbers or all datetimes",
            ));
        }
        *slot = Some(bound);
    }
    Ok(range)
}

fn match_value_json(v: &MatchValue) -> Value {
    match v {
        MatchValue::Str(s) => Value::String(s.clone()),
        MatchValue::Int(i) => Value::from(*i),
        MatchValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        MatchValue::Bool(b) => Value::Bool(*b),
    }
}

fn bound_json(b: Bound) -> Value {
    match b {
        // Integral values are written as JSON integers; they parse back to
        // the same `Bound::Number`.
        Bound::Number(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            Value::from(f as i64)
        }
        Bound::Number(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Bound::Datetime(ms) => Value::String(Timestamp::from_millis(ms).to_rfc3339()),
    }
}

fn range_json(range: &Range) -> Value {
    let mut m = Map::new();
    for (name, b) in [
        ("gt", range.gt),
        ("gte", range.gte),
        ("lt", range.lt),
        ("lte", range.lte),
    ] {
        if let Some(b) = b {
            m.insert(name.to_owned(), bound_json(b));
        }
    }
    Value::Object(m)
}

/// What a condition is checked against.
struct Point<'a> {
    payload: Option<&'a Value>,
    ingested_at_ms: i64,
    id: Option<&'a dyn Fn() -> Option<PointId>>,
}

fn filter_json(f: &Filter, nested: bool) -> Value {
    let mut m = Map::new();
    for (name, list) in [
        ("must", &f.must),
        ("should", &f.should),
        ("must_not", &f.must_not),
    ] {
        if !list.is_empty() {
            m.insert(
                name.to_owned(),
                Value::Array(list.iter().map(Condition::to_json).collect()),
            );
        }
    }
    if nested && m.is_empty() {
        // `{}` is not a condition; an empty nested filter keeps its shape.
        m.insert("must".to_owned(), Value::Array(Vec::new()));
    }
    Value::Object(m)
}

/// Compares an integer with a float exactly (`None` for NaN).
fn cmp_int_f64(v: i128, x: f64) -> Option<Ordering> {
    if x.is_nan() {
        return None;
    }
    // Every integer here is an i64 or a u64, far inside ±1e20.
    if x > 1e20 {
        return Some(Ordering::Less);
    }
    if x < -1e20 {
        return Some(Ordering::Greater);
    }
    let fl = x.floor();
    Some(match v.cmp(&(fl as i128)) {
        Ordering::Equal if x > fl => Ordering::Less,
        o => o,
    })
}

/// Compares a JSON number with a float exactly.
pub fn cmp_number_f64(n: &Number, x: f64) -> Option<Ordering> {
    if let Some(i) = n.as_i64() {
        cmp_int_f64(i128::from(i), x)
    } else if let Some(u) = n.as_u64() {
        cmp_int_f64(i128::from(u), x)
    } else {
        n.as_f64()?.partial_cmp(&x)
    }
}

/// Whether a JSON number equals an integer exactly.
pub fn number_eq_i64(n: &Number, i: i64) -> bool {
    if let Some(v) = n.as_i64() {
        v == i
    } else if n.is_u64() {
        false // above i64::MAX
    } else {
        n.as_f64()
            .and_then(|f| cmp_int_f64(i128::from(i), f))
            .is_some_and(Ordering::is_eq)
    }
}

/// A path segment: a field name, optionally followed by `[]` (every
/// element: what a plain name does anyway) or `[N]` (element N only).
fn segment(head: &str) -> (&str, Option<usize>) {
    if let Some(open) = head.rfind('[') {
        if let Some(inner) = head[open + 1..].strip_suffix(']') {
            if inner.is_empty() {
                return (&head[..open], None);
            }
            if let Ok(i) = inner.parse::<usize>() {
                return (&head[..open], Some(i));
            }
        }
    }
    (head, None)
}

/// The child `head` (a segment) of an object.
fn child<'v>(v: &'v Value, head: &str) -> Option<&'v Value> {
    let (name, index) = segment(head);
    let c = match v {
        Value::Object(m) => m.get(name)?,
        _ => return None,
    };
    match index {
        None => Some(c),
        Some(i) => c.as_array()?.get(i),
    }
}

fn visit<F: FnMut(&Value) -> bool>(v: &Value, path: Option<&str>, f: &mut F) -> bool {
    if let Value::Array(items) = v {
        return items.iter().any(|x| visit(x, path, f));
    }
    match path {
        None => f(v),
        Some(p) => {
            let (head, rest) = match p.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (p, None),
            };
            child(v, head).is_some_and(|c| visit(c, rest, f))
        }
    }
}

/// The values at the dot path `key`, arrays crossed on the way but the
/// last value kept whole (an array stays one array).
fn values_at<'v>(v: &'v Value, path: &str, out: &mut Vec<&'v Value>) {
    if let Value::Array(items) = v {
        for x in items {
            values_at(x, path, out);
        }
        return;
    }
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if let Some(c) = child(v, head) {
        match rest {
            None => out.push(c),
            Some(r) => values_at(c, r, out),
        }
    }
}

/// Whether `f` holds for any value at the dot path `key` of `payload`.
///
/// Arrays met on the way (and at the end) are crossed: each element is
/// visited in turn, so `{"a": [{"b": 1}, {"b": [2, 3]}]}` has the values 1,
/// 2 and 3 at `a.b`. Visiting stops at the first value `f` holds for; to see
/// every value, return `false`.
pub fn any_value_at<F: FnMut(&Value) -> bool>(payload: &Value, key: &str, mut f: F) -> bool {
    visit(payload, Some(key), &mut f)
}

impl MatchValue {
    /// Whether a payload value equals this (numbers compare numerically).
    pub fn matches_json(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Str(s), Value::String(x)) => s == x,
            (MatchValue::Int(i), Value::Number(n)) => number_eq_i64(n, *i),
            (MatchValue::Float(f), Value::Number(n)) => {
                cmp_number_f64(n, *f).is_some_and(Ordering::is_eq)
            }
            (MatchValue::Bool(b), Value::Bool(x)) => b == x,
            _ => false,
        }
    }

    /// Whether a time (ms) equals this: integers and floats as ms, strings
    /// as RFC 3339 datetimes.
    fn matches_ms(&self, ms: i64) -> bool {
        match self {
            MatchValue::Int(i) => *i == ms,
            MatchValue::Float(f) => cmp_int_f64(i128::from(ms), *f).is_some_and(Ordering::is_eq),
            MatchValue::Str(s) => Timestamp::parse_rfc3339(s).is_some_and(|t| t.as_millis() == ms),
            MatchValue::Bool(_) => false,
        }
    }
}

impl Bound {
    fn is_datetime(self) -> bool {
        matches!(self, Bound::Datetime(_))
    }
}

impl Range {
    /// Whether every set bound holds, `cmp` giving `value.cmp(bound)` (or
    /// `None` when they cannot be compared).
    fn holds(&self, mut cmp: impl FnMut(Bound) -> Option<Ordering>) -> bool {
        let check = |b: Option<Bound>,
                     ok: fn(Ordering) -> bool,
                     cmp: &mut dyn FnMut(Bound) -> Option<Ordering>| {
            b.is_none_or(|b| cmp(b).is_some_and(ok))
        };
        check(self.gt, Ordering::is_gt, &mut cmp)
            && check(self.gte, Ordering::is_ge, &mut cmp)
            && check(self.lt, Ordering::is_lt, &mut cmp)
            && check(self.lte, Ordering::is_le, &mut cmp)
    }

    fn has_datetime(&self) -> bool {
        [self.gt, self.gte, self.lt, self.lte]
            .into_iter()
            .flatten()
            .any(Bound::is_datetime)
    }

    /// Whether a payload value is in the range: numbers against number
    /// bounds, RFC 3339 strings against datetime bounds.
    pub fn contains_json(&self, v: &Value) -> bool {
        match v {
            Value::Number(n) => self.holds(|b| match b {
                Bound::Number(x) => cmp_number_f64(n, x),
                Bound::Datetime(_) => None,
            }),
            Value::String(s) if self.has_datetime() => match Timestamp::parse_rfc3339(s) {
                Some(t) => {
                    let ms = t.as_millis();
                    self.holds(|b| match b {
                        Bound::Datetime(d) => Some(ms.cmp(&d)),
                        Bound::Number(_) => None,
                    })
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Whether a time (ms) is in the range (number bounds count ms too).
    pub fn contains_ms(&self, ms: i64) -> bool {
        self.holds(|b| match b {
            Bound::Datetime(d) => Some(ms.cmp(&d)),
            Bound::Number(x) => cmp_int_f64(i128::from(ms), x),
        })
    }
}

impl Condition {
    /// The key the condition is on (`None` for a nested filter).
    pub fn key(&self) -> Option<&str> {
        match self {
            Condition::Match { key, .. }
            | Condition::MatchAny { key, .. }
            | Condition::Range { key, .. }
            | Condition::Exists { key, .. }
            | Condition::IsNull { key }
            | Condition::Except { key, .. }
            | Condition::Text { key, .. }
            | Condition::ValuesCount { key, .. }
            | Condition::IsEmpty { key }
            | Condition::NestedArray { key, .. } => Some(key),
            Condition::Nested(_) | Condition::HasId(_) | Condition::MinShould { .. } => None,
        }
    }

    /// Whether a point with this payload and ingestion time passes (an
    /// id condition does not: [`Condition::matches_point`]).
    pub fn matches(&self, payload: Option<&Value>, ingested_at_ms: i64) -> bool {
        self.eval(&Point {
            payload,
            ingested_at_ms,
            id: None,
        })
    }

    /// Like [`Condition::matches`], `id` giving the point's id when an
    /// id condition asks for it.
    pub fn matches_point(
        &self,
        payload: Option<&Value>,
        ingested_at_ms: i64,
        id: &dyn Fn() -> Option<PointId>,
    ) -> bool {
        self.eval(&Point {
            payload,
            ingested_at_ms,
            id: Some(id),
        })
    }

    fn eval(&self, p: &Point<'_>) -> bool {
        let (payload, ingested_at_ms) = (p.payload, p.ingested_at_ms);
        if let Some(key) = self.key() {
            if key == INGESTED_AT_KEY {
                return match self {
                    Condition::Match { value, .. } => value.matches_ms(ingested_at_ms),
                    Condition::MatchAny { any, .. } => {
                        any.iter().any(|v| v.matches_ms(ingested_at_ms))
                    }
                    Condition::Range { range, .. } => range.contains_ms(ingested_at_ms),
                    Condition::Exists { exists, .. } => *exists,
                    Condition::Except { except, .. } => {
                        !except.iter().any(|v| v.matches_ms(ingested_at_ms))
                    }
                    Condition::ValuesCount { range, .. } => range.contains_ms(1),
                    _ => false,
                };
            }
        }
        let at = |key: &str, f: &mut dyn FnMut(&Value) -> bool| {
            payload.is_some_and(|p| any_value_at(p, key, f))
        };
        let whole = |key: &str| {
            let mut out = Vec::new();
            if let Some(p) = payload {
                values_at(p, key, &mut out);
            }
            out
        };
        match self {
            Condition::Match { key, value } => at(key, &mut |v| value.matches_json(v)),
            Condition::MatchAny { key, any } => {
                at(key, &mut |v| any.iter().any(|m| m.matches_json(v)))
            }
            Condition::Range { key, range } => at(key, &mut |v| range.contains_json(v)),
            Condition::Exists { key, exists } => at(key, &mut |v| !v.is_null()) == *exists,
            Condition::IsNull { key } => at(key, &mut Value::is_null),
            Condition::Nested(f) => f.eval(p),
            Condition::Except { key, except } => {
                at(key, &mut |v| !except.iter().any(|m| m.matches_json(v)))
            }
            Condition::Text { key, text } => at(key, &mut |v| {
                v.as_str().is_some_and(|s| s.contains(text.as_str()))
            }),
            Condition::ValuesCount { key, range } => {
                let n: usize = whole(key)
                    .iter()
                    .map(|v| match v {
                        Value::Array(a) => a.len(),
                        Value::Null => 0,
                        _ => 1,
                    })
                    .sum();
                range.contains_json(&Value::from(n as u64))
            }
            Condition::IsEmpty { key } => whole(key).iter().all(|v| match v {
                Value::Null => true,
                Value::Array(a) => a.is_empty(),
                _ => false,
            }),
            Condition::HasId(ids) => p.id.and_then(|id| id()).is_some_and(|id| ids.contains(&id)),
            Condition::NestedArray { key, filter } => whole(key).iter().any(|v| {
                let one = |e: &Value| {
                    filter.eval(&Point {
                        payload: Some(e),
                        ingested_at_ms,
                        id: None,
                    })
                };
                match v {
                    Value::Array(items) => items.iter().any(one),
                    other => one(other),
                }
            }),
            Condition::MinShould {
                conditions,
                min_count,
            } => {
                conditions
                    .iter()
                    .filter(|c| c.eval(p))
                    .take(*min_count)
                    .count()
                    >= *min_count
            }
        }
    }

    /// The JSON form of one condition.
    pub fn to_json(&self) -> Value {
        match self {
            Condition::Match { key, value } => {
                json!({"key": key, "match": {"value": match_value_json(value)}})
            }
            Condition::MatchAny { key, any } => json!({
                "key": key,
                "match": {"any": any.iter().map(match_value_json).collect::<Vec<_>>()},
            }),
            Condition::Range { key, range } => json!({"key": key, "range": range_json(range)}),
            Condition::Exists { key, exists } => json!({"key": key, "exists": exists}),
            Condition::IsNull { key } => json!({ "is_null": key }),
            Condition::Nested(f) => filter_json(f, true),
            Condition::Except { key, except } => json!({
                "key": key,
                "match": {"except": except.iter().map(match_value_json).collect::<Vec<_>>()},
            }),
            Condition::Text { key, text } => json!({"key": key, "match": {"text": text}}),
            Condition::ValuesCount { key, range } => {
                json!({"key": key, "values_count": range_json(range)})
            }
            Condition::IsEmpty { key } => json!({"is_empty": {"key": key}}),
            Condition::HasId(ids) => json!({ "has_id": ids }),
            Condition::NestedArray { key, filter } => {
                json!({"nested": {"key": key, "filter": filter_json(filter, false)}})
            }
            Condition::MinShould {
                conditions,
                min_count,
            } => json!({"min_should": {
                "conditions": conditions.iter().map(Condition::to_json).collect::<Vec<_>>(),
                "min_count": min_count,
            }}),
        }
    }
}

impl Filter {
    /// Parses the JSON form; `InvalidInput` with code `invalid_filter` and
    /// the path of the offending part otherwise.
    pub fn parse(v: &Value) -> Result<Filter> {
        Parser { conditions: 0 }.filter(v, "filter", 1)
    }

    /// The JSON form (inverse of [`Filter::parse`]).
    pub fn to_json(&self) -> Value {
        filter_json(self, false)
    }

    /// Whether the filter has no conditions (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.should.is_empty() && self.must_not.is_empty()
    }

    /// Whether a point with this payload and ingestion time (ms since the
    /// epoch; the reserved key `_ingested_at`) passes.
    ///
    /// Keys are dot paths into objects; where a path crosses an array the
    /// condition holds if any element satisfies it. A missing key matches
    /// nothing (`exists: false` aside).
    pub fn matches(&self, payload: Option<&Value>, ingested_at_ms: i64) -> bool {
        self.eval(&Point {
            payload,
            ingested_at_ms,
            id: None,
        })
    }

    /// Like [`Filter::matches`] for a point whose id `id` gives (called
    /// only when a `HasId` condition asks).
    pub fn matches_point(
        &self,
        payload: Option<&Value>,
        ingested_at_ms: i64,
        id: &dyn Fn() -> Option<PointId>,
    ) -> bool {
        self.eval(&Point {
            payload,
            ingested_at_ms,
            id: Some(id),
        })
    }

    fn eval(&self, p: &Point<'_>) -> bool {
        self.must.iter().all(|c| c.eval(p))
            && (self.should.is_empty() || self.should.iter().any(|c| c.eval(p)))
            && !self.must_not.iter().any(|c| c.eval(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn parse(v: Value) -> Filter {
        Filter::parse(&v).expect("valid filter")
    }

    /// Parses, checks the error shape and returns the message.
    fn parse_err(v: Value) -> String {
        let e = Filter::parse(&v).expect_err("invalid filter");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.code(), "invalid_filter", "{e}");
        e.to_string()
    }

    fn assert_err(v: Value, path: &str, needle: &str) {
        let msg = parse_err(v);
        assert!(
            msg.contains(&format!("{path}: ")),
            "{msg:?} should name {path}"
        );
        assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
    }

    fn ms(s: &str) -> i64 {
        Timestamp::parse_rfc3339(s).expect("datetime").as_millis()
    }

    fn m(filter: Value, payload: Value) -> bool {
        parse(filter).matches(Some(&payload), 0)
    }

    fn must(c: Value) -> Value {
        json!({ "must": [c] })
    }

    #[test]
    fn parse_every_condition_shape() {
        let f = parse(json!({
            "must": [
                {"key": "a", "match": {"value": "x"}},
                {"key": "b", "match": {"value": 7}},
                {"key": "c", "match": {"value": 2.5}},
                {"key": "d", "match": {"value": true}},
                {"key": "e", "match": {"any": ["x", 1, 1.5, false]}},
            ],
            "should": [
                {"key": "f", "range": {"gt": 1, "lte": 2.5}},
                {"key": "g", "range": {"gte": "2020-01-01T00:00:00Z", "lt": "2021-01-01T00:00:00+01:00"}},
                {"key": "h", "exists": true},
                {"key": "i", "exists": false},
            ],
            "must_not": [
                {"is_null": "j.k"},
                {"should": [{"key": "l", "match": {"value": "y"}}]},
            ],
        }));
        assert_eq!(
            f.must,
            vec![
                Condition::Match {
                    key: "a".into(),
                    value: MatchValue::Str("x".into())
                },
                Condition::Match {
                    key: "b".into(),
                    value: MatchValue::Int(7)
                },
                Condition::Match {
                    key: "c".into(),
                    value: MatchValue::Float(2.5)
                },
                Condition::Match {
                    key: "d".into(),
                    value: MatchValue::Bool(true)
                },
                Condition::MatchAny {
                    key: "e".into(),
                    any: vec![
                        MatchValue::Str("x".into()),
                        MatchValue::Int(1),
                        MatchValue::Float(1.5),
                        MatchValue::Bool(false),
                    ],
                },
            ]
        );
        assert_eq!(
            f.should,
            vec![
                Condition::Range {
                    key: "f".into(),
                    range: Range {
                        gt: Some(Bound::Number(1.0)),
                        lte: Some(Bound::Number(2.5)),
                        ..Range::default()
                    },
                },
                Condition::Range {
                    key: "g".into(),
                    range: Range {
                        gte: Some(Bound::Datetime(1_577_836_800_000)),
                        lt: Some(Bound::Datetime(1_609_455_600_000)),
                        ..Range::default()
                    },
                },
                Condition::Exists {
                    key: "h".into(),
                    exists: true
                },
                Condition::Exists {
                    key: "i".into(),
                    exists: false
                },
            ]
        );
        assert_eq!(
            f.must_not,
            vec![
                Condition::IsNull { key: "j.k".into() },
                Condition::Nested(Filter {
                    should: vec![Condition::Match {
                        key: "l".into(),
                        value: MatchValue::Str("y".into()),
                    }],
                    ..Filter::default()
                }),
            ]
        );
    }

    #[test]
    fn parse_empty_and_null_parts() {
        assert_eq!(parse(json!({})), Filter::default());
        assert_eq!(
            parse(json!({"must": [], "should": null, "must_not": []})),
            Filter::default()
        );
        assert!(parse(json!({})).is_empty());
        // An empty nested filter is a condition that always holds.
        let f = parse(json!({"must": [{"must": []}]}));
        assert_eq!(f.must, vec![Condition::Nested(Filter::default())]);
        assert!(f.matches(None, 0));
    }

    #[test]
    fn parse_numbers() {
        let v = |x: Value| match parse(must(json!({"key": "a", "match": {"value": x}})))
            .must
            .remove(0)
        {
            Condition::Match { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(v(json!(-3)), MatchValue::Int(-3));
        assert_eq!(v(json!(i64::MAX)), MatchValue::Int(i64::MAX));
        assert_eq!(v(json!(u64::MAX)), MatchValue::Float(u64::MAX as f64));
        assert_eq!(v(json!(3.0)), MatchValue::Float(3.0));
        let text: Value = serde_json::from_str("3.0").expect("json");
        assert_eq!(v(text), MatchValue::Float(3.0));
        let big: Value = serde_json::from_str("1e300").expect("json");
        assert_eq!(v(big), MatchValue::Float(1e300));
    }

    #[test]
    fn parse_errors_top_level() {
        assert_err(json!(null), "filter", "expected an object");
        assert_err(json!([]), "filter", "expected an object");
        assert_err(json!("x"), "filter", "expected an object");
        assert_err(json!({"filter": []}), "filter", "unknown field \"filter\"");
        assert_err(json!({"must": {}}), "filter.must", "expected an array");
        assert_err(json!({"should": "x"}), "filter.should", "expected an array");
        assert_err(
            json!({"must_not": 1}),
            "filter.must_not",
            "expected an array",
        );
    }

    #[test]
    fn parse_errors_conditions() {
        assert_err(
            json!({"must": [1]}),
            "filter.must[0]",
            "expected a condition object",
        );
        assert_err(
            json!({"must": [null]}),
            "filter.must[0]",
            "expected a condition object",
        );
        assert_err(json!({"must": [{}]}), "filter.must[0]", "empty condition");
        assert_err(
            json!({"must": [{"foo": 1}]}),
            "filter.must[0]",
            "unknown field \"foo\"",
        );
        assert_err(
            json!({"must": [{"key": "a", "match": {"value": 1}}, {"key": "a"}]}),
            "filter.must[1]",
            "needs one of match, range or exists",
        );
        assert_err(
            json!({"must": [{"key": "a", "match": {"value": 1}, "exists": true}]}),
            "filter.must[0]",
            "exactly one of",
        );
        assert_err(
            json!({"must": [{"key": "a", "match": {"value": 1}, "extra": 1}]}),
            "filter.must[0]",
            "unknown field \"extra\"",
        );
        assert_err(
            json!({"must": [{"key": "a", "exists": "yes"}]}),
            "filter.must[0].exists",
            "expected true or false",
        );
        assert_err(
            json!({"must": [{"is_null": "a", "key": "b", "exists": true}]}),
            "filter.must[0]",
            "unknown field \"is_null\"",
        );
        assert_err(
            json!({"must": [{"is_null": "a", "other": 1}]}),
            "filter.must[0]",
            "unknown field \"other\"",
        );
        assert_err(
            json!({"must": [{"is_null": 3}]}),
            "filter.must[0].is_null",
            "expected a string key",
        );
        assert_err(
            json!({"should": [{"must": [], "foo": 1}]}),
            "filter.should[0]",
            "unknown field \"foo\"",
        );
        assert_err(
            json!({"should": [{"must": [{"key": 1, "exists": true}]}]}),
            "filter.should[0].must[0].key",
            "expected a string key",
        );
    }

    #[test]
    fn parse_errors_keys() {
        assert_err(
            must(json!({"key": "", "exists": true})),
            "filter.must[0].key",
            "empty",
        );
        assert_err(
            must(json!({"key": null, "exists": true})),
            "filter.must[0].key",
            "string",
        );
        assert_err(
            must(json!({"key": "a..b", "exists": true})),
            "filter.must[0].key",
            "empty path segment",
        );
        assert_err(
            must(json!({"key": ".a", "exists": true})),
            "filter.must[0].key",
            "empty path segment",
        );
        assert_err(
            must(json!({"key": "a.", "exists": true})),
            "filter.must[0].key",
            "empty path segment",
        );
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_err(
            must(json!({"key": long, "exists": true})),
            "filter.must[0].key",
            "longer than 256",
        );
        let ok = "k".repeat(MAX_KEY_LEN);
        parse(must(json!({"key": ok, "exists": true})));
        // Multi-byte keys count characters, as JSON Schema's maxLength does.
        let wide = "é".repeat(MAX_KEY_LEN + 1);
        assert_err(
            must(json!({"key": wide, "exists": true})),
            "filter.must[0].key",
            "longer than 256",
        );
        parse(must(
            json!({"key": "é".repeat(MAX_KEY_LEN), "exists": true}),
        ));
    }

    #[test]
    fn parse_errors_match() {
        let p = "filter.must[0].match";
        assert_err(
            must(json!({"key": "a", "match": 1})),
            p,
            "expected an object",
        );
        assert_err(
            must(json!({"key": "a", "match": {}})),
            p,
            "exactly one of value or any",
        );
        assert_err(
            must(json!({"key": "a", "match": {"value": 1, "any": [1]}})),
            p,
            "exactly one of value or any",
        );
        assert_err(
            must(json!({"key": "a", "match": {"text": "x"}})),
            p,
            "unknown field \"text\"",
        );
        assert_err(
            must(json!({"key": "a", "match": {"value": null}})),
            "filter.must[0].match.value",
            "got null",
        );
        assert_err(
            must(json!({"key": "a", "match": {"value": [1]}})),
            "filter.must[0].match.value",
            "got an array",
        );
        assert_err(
            must(json!({"key": "a", "match": {"value": {}}})),
            "filter.must[0].match.value",
            "got an object",
        );
        assert_err(
            must(json!({"key": "a", "match": {"any": []}})),
            "filter.must[0].match.any",
            "must not be empty",
        );
        assert_err(
            must(json!({"key": "a", "match": {"any": "x"}})),
            "filter.must[0].match.any",
            "expected an array",
        );
        assert_err(
            must(json!({"key": "a", "match": {"any": ["x", null]}})),
            "filter.must[0].match.any[1]",
            "got null",
        );
        assert_err(
            must(json!({"key": "a", "match": {"any": [["x"]]}})),
            "filter.must[0].match.any[0]",
            "got an array",
        );
    }

    #[test]
    fn parse_errors_range() {
        let p = "filter.must[0].range";
        assert_err(
            must(json!({"key": "a", "range": 3})),
            p,
            "expected an object",
        );
        assert_err(must(json!({"key": "a", "range": {}})), p, "at least one");
        assert_err(
            must(json!({"key": "a", "range": {"eq": 1}})),
            p,
            "unknown field \"eq\"",
        );
        assert_err(
            must(json!({"key": "a", "range": {"gt": null}})),
            "filter.must[0].range.gt",
            "got null",
        );
        assert_err(
            must(json!({"key": "a", "range": {"lt": true}})),
            "filter.must[0].range.lt",
            "got a bool",
        );
        assert_err(
            must(json!({"key": "a", "range": {"lte": "yesterday"}})),
            "filter.must[0].range.lte",
            "not an RFC 3339 datetime",
        );
        assert_err(
            must(json!({"key": "a", "range": {"gte": "2020-01-01"}})),
            "filter.must[0].range.gte",
            "not an RFC 3339 datetime",
        );
        assert_err(
            must(json!({"key": "a", "range": {"gte": 1, "lt": "2020-01-01T00:00:00Z"}})),
            p,
            "all numbers or all datetimes",
        );
        // The path names the offending condition, not the first one.
        assert_err(
            json!({"must": [{"key": "a", "exists": true}, {"key": "b", "range": {}}]}),
            "filter.must[1].range",
            "at least one",
        );
    }

    fn nest(depth: usize) -> Value {
        let mut v = json!({"must": [{"key": "a", "exists": true}]});
        for _ in 1..depth {
            v = json!({ "must": [v] });
        }
        v
    }

    #[test]
    fn parse_depth_limit() {
        parse(nest(MAX_DEPTH));
        let msg = parse_err(nest(MAX_DEPTH + 1));
        assert!(msg.contains("deeper than 16"), "{msg}");
        assert!(msg.contains("filter.must[0].must[0]"), "{msg}");
    }

    #[test]
    fn parse_condition_limit() {
        let cond = json!({"key": "a", "exists": true});
        parse(json!({ "must": vec![cond.clone(); MAX_CONDITIONS] }));
        assert_err(
            json!({ "must": vec![cond.clone(); MAX_CONDITIONS + 1] }),
            "filter.must[1024]",
            "at most 1024 conditions",
        );
        // Nested filters and their conditions count.
        let nested = json!({ "must": vec![cond.clone(); 511] });
        parse(json!({ "must": [nested.clone(), nested.clone()] })); // 2 + 1022
        let msg = parse_err(json!({ "must": [nested.clone(), nested, cond] }));
        assert!(msg.contains("at most 1024 conditions"), "{msg}");
    }

    #[test]
    fn round_trip() {
        let cases = [
            json!({}),
            json!({"must": [{"key": "a.b", "match": {"value": "x"}}]}),
            json!({"must": [{"key": "a", "match": {"value": 3}}, {"key": "a", "match": {"value": 3.5}}]}),
            json!({"must": [{"key": "a", "match": {"value": u64::MAX}}]}),
            json!({"should": [{"key": "a", "match": {"any": ["x", 2, 2.5, true]}}]}),
            json!({"must_not": [{"key": "a", "range": {"gt": 1, "lt": 2.25}}]}),
            json!({"must_not": [{"key": "a", "range": {"gte": -1e300, "lte": 1e-300}}]}),
            json!({"must": [{"key": "t", "range": {"gte": "2020-02-29T12:34:56.789+02:00", "lt": "2030-01-01T00:00:00Z"}}]}),
            json!({"must": [{"key": "a", "exists": true}, {"key": "b", "exists": false}, {"is_null": "c"}]}),
            json!({"must": [{"must": []}, {"should": [{"must_not": [{"is_null": "z"}]}]}]}),
            nest(MAX_DEPTH),
        ];
        for case in cases {
            let f = parse(case.clone());
            let json = f.to_json();
            assert_eq!(
                Filter::parse(&json).expect("round trip"),
                f,
                "{case} -> {json}"
            );
            // Through text too.
            let text = serde_json::to_string(&json).expect("text");
            let back: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(Filter::parse(&back).expect("round trip"), f, "{text}");
        }
        // Float match values stay floats, datetimes come back as RFC 3339.
        let f = parse(json!({"must": [
            {"key": "a", "match": {"value": 3.0}},
            {"key": "t", "range": {"gte": "2020-01-01T01:00:00+01:00"}},
        ]}));
        assert_eq!(
            f.to_json(),
            json!({"must": [
                {"key": "a", "match": {"value": 3.0}},
                {"key": "t", "range": {"gte": "2020-01-01T00:00:00.000Z"}},
            ]})
        );
        // Number bounds that are integral are written as integers.
        let f = parse(must(json!({"key": "a", "range": {"gt": 2.0, "lt": 2.5}})));
        assert_eq!(
            f.to_json(),
            json!({"must": [{"key": "a", "range": {"gt": 2, "lt": 2.5}}]})
        );
    }

    #[test]
    fn match_scalars() {
        let eq = |v: Value, p: Value| {
            m(
                must(json!({"key": "a", "match": {"value": v}})),
                json!({ "a": p }),
            )
        };
        assert!(eq(json!("x"), json!("x")));
        assert!(!eq(json!("x"), json!("X")));
        assert!(!eq(json!("1"), json!(1)));
        assert!(!eq(json!(1), json!("1")));
        assert!(eq(json!(3), json!(3)));
        assert!(eq(json!(3), json!(3.0)));
        assert!(eq(json!(3.0), json!(3)));
        assert!(eq(json!(2.5), json!(2.5)));
        assert!(!eq(json!(2.5), json!(2)));
        assert!(!eq(json!(3), json!(3.5)));
        assert!(eq(json!(-7), json!(-7)));
        assert!(eq(json!(0.0), json!(-0.0)));
        assert!(eq(json!(true), json!(true)));
        assert!(!eq(json!(true), json!(false)));
        assert!(!eq(json!(true), json!(1)));
        assert!(!eq(json!(1), json!(true)));
        assert!(!eq(json!(1), json!(null)));
        assert!(!eq(json!("x"), json!({"x": 1})));
        // Exact integer comparison beyond f64 precision.
        assert!(eq(json!(i64::MAX), json!(i64::MAX)));
        assert!(!eq(json!(i64::MAX - 1), json!(i64::MAX)));
        assert!(!eq(
            json!(9_007_199_254_740_993_i64),
            json!(9_007_199_254_740_992.0)
        ));
        assert!(eq(
            json!(9_007_199_254_740_992_i64),
            json!(9_007_199_254_740_992.0)
        ));
        // Integers beyond i64 parse as floats and compare exactly, so a
        // match value of u64::MAX (read as 2^64) does not equal u64::MAX.
        assert!(!eq(json!(u64::MAX), json!(u64::MAX)));
        assert!(eq(
            json!(18_446_744_073_709_551_616.0),
            json!(18_446_744_073_709_551_616.0)
        ));
    }

    #[test]
    fn match_missing_key_never_matches() {
        let f = parse(must(json!({"key": "a", "match": {"value": 1}})));
        assert!(!f.matches(None, 0));
        assert!(!f.matches(Some(&json!({})), 0));
        assert!(!f.matches(Some(&json!({"b": 1})), 0));
        assert!(!f.matches(Some(&json!(1)), 0));
        let f = parse(json!({"must_not": [{"key": "a", "match": {"value": 1}}]}));
        assert!(f.matches(None, 0));
        assert!(f.matches(Some(&json!({"a": 2})), 0));
        assert!(!f.matches(Some(&json!({"a": 1})), 0));
    }

    #[test]
    fn match_any() {
        let f = must(json!({"key": "a", "match": {"any": ["x", 2, true]}}));
        assert!(m(f.clone(), json!({"a": "x"})));
        assert!(m(f.clone(), json!({"a": 2.0})));
        assert!(m(f.clone(), json!({"a": true})));
        assert!(m(f.clone(), json!({"a": ["q", 2]})));
        assert!(!m(f.clone(), json!({"a": "y"})));
        assert!(!m(f.clone(), json!({"a": false})));
        assert!(!m(f.clone(), json!({"a": []})));
        assert!(!m(f, json!({})));
    }

    #[test]
    fn dot_paths_and_arrays() {
        let f = |c: Value| parse(must(c));
        let payload = json!({
            "tags": ["a", "b"],
            "meta": {"lang": "en", "n": [1, [2, 3]]},
            "items": [{"k": "x", "v": 1}, {"k": "y", "v": [5, null]}, 7, {"deep": {"z": true}}],
            "matrix": [[{"q": 1}]],
            "empty": [],
            "nulls": [null],
            "dotted.key": 1,
        });
        let yes = |c: Value| assert!(f(c.clone()).matches(Some(&payload), 0), "{c}");
        let no = |c: Value| assert!(!f(c.clone()).matches(Some(&payload), 0), "{c}");
        yes(json!({"key": "tags", "match": {"value": "a"}}));
        yes(json!({"key": "tags", "match": {"value": "b"}}));
        no(json!({"key": "tags", "match": {"value": "c"}}));
        yes(json!({"key": "meta.lang", "match": {"value": "en"}}));
        no(json!({"key": "meta.lang.x", "match": {"value": "en"}}));
        no(json!({"key": "meta", "match": {"value": "en"}}));
        yes(json!({"key": "meta.n", "match": {"value": 3}}));
        yes(json!({"key": "items.k", "match": {"value": "y"}}));
        yes(json!({"key": "items.v", "match": {"value": 5}}));
        no(json!({"key": "items.v", "match": {"value": 7}}));
        yes(json!({"key": "items.deep.z", "match": {"value": true}}));
        yes(json!({"key": "matrix.q", "match": {"value": 1}}));
        yes(json!({"key": "items.v", "range": {"gt": 4}}));
        no(json!({"key": "items.v", "range": {"gt": 5}}));
        // Any element may satisfy each bound... but one element must satisfy all.
        no(json!({"key": "meta.n", "range": {"gt": 1, "lt": 2}}));
        yes(json!({"key": "meta.n", "range": {"gt": 1, "lt": 3}}));
        // A literal dotted key is not addressable: the dot is a path separator.
        no(json!({"key": "dotted.key", "exists": true}));
        yes(json!({"key": "items.v", "exists": true}));
        yes(json!({"key": "items.v", "exists": true}));
        yes(json!({"is_null": "items.v"}));
        no(json!({"is_null": "items.k"}));
        no(json!({"key": "empty", "exists": true}));
        yes(json!({"key": "empty", "exists": false}));
        no(json!({"key": "nulls", "exists": true}));
        yes(json!({"is_null": "nulls"}));
        no(json!({"is_null": "empty"}));
    }

    #[test]
    fn exists_and_is_null() {
        let ex = |b: bool, p: Value| m(must(json!({"key": "a", "exists": b})), p);
        let null = |p: Value| m(must(json!({ "is_null": "a" })), p);
        for (payload, exists, is_null) in [
            (json!({}), false, false),
            (json!({"a": null}), false, true),
            (json!({"a": 0}), true, false),
            (json!({"a": ""}), true, false),
            (json!({"a": false}), true, false),
            (json!({"a": {}}), true, false),
            (json!({"a": []}), false, false),
            (json!({"a": [null, 1]}), true, true),
            (json!({"b": null}), false, false),
        ] {
            assert_eq!(ex(true, payload.clone()), exists, "{payload}");
            assert_eq!(ex(false, payload.clone()), !exists, "{payload}");
            assert_eq!(null(payload.clone()), is_null, "{payload}");
        }
        assert!(!parse(must(json!({"key": "a", "exists": true}))).matches(None, 0));
        assert!(parse(must(json!({"key": "a", "exists": false}))).matches(None, 0));
        assert!(!parse(must(json!({"is_null": "a"}))).matches(None, 0));
    }

    #[test]
    fn number_ranges() {
        let r = |range: Value, p: Value| {
            m(must(json!({"key": "a", "range": range})), json!({ "a": p }))
        };
        assert!(r(json!({"gt": 1}), json!(2)));
        assert!(!r(json!({"gt": 1}), json!(1)));
        assert!(r(json!({"gte": 1}), json!(1)));
        assert!(r(json!({"gte": 1}), json!(1.0)));
        assert!(!r(json!({"lt": 1}), json!(1)));
        assert!(r(json!({"lte": 1}), json!(1)));
        assert!(r(json!({"gt": 2.5}), json!(3)));
        assert!(!r(json!({"gt": 2.5}), json!(2)));
        assert!(r(json!({"gt": 2.5}), json!(2.6)));
        assert!(!r(json!({"lt": -2.5}), json!(-2)));
        assert!(r(json!({"lt": -2.5}), json!(-3)));
        assert!(r(json!({"gte": 2000, "lte": 2002}), json!(2001)));
        assert!(!r(json!({"gte": 2000, "lte": 2002}), json!(2003)));
        assert!(!r(json!({"gt": 5, "lt": 3}), json!(4)));
        assert!(r(json!({"gt": 1, "gte": 2}), json!(2)));
        assert!(!r(json!({"gt": 2, "gte": 1}), json!(2)));
        // A number is required: strings, bools and datetimes are not numbers.
        assert!(!r(json!({"gt": 1}), json!("5")));
        assert!(!r(json!({"gt": 1}), json!(true)));
        assert!(!r(json!({"gt": 1}), json!("2020-01-01T00:00:00Z")));
        assert!(!r(json!({"gt": 1}), json!(null)));
        assert!(!r(json!({"gt": 1}), json!({"x": 5})));
        // Exact comparisons of big integers.
        assert!(r(
            json!({"gt": 9_007_199_254_740_992.0}),
            json!(9_007_199_254_740_993_i64)
        ));
        assert!(!r(
            json!({"lt": 9_007_199_254_740_992.0}),
            json!(9_007_199_254_740_993_i64)
        ));
        assert!(r(json!({"gt": 1e19}), json!(u64::MAX)));
        assert!(!r(json!({"gt": 1e20}), json!(u64::MAX)));
        assert!(r(json!({"gt": -1e300}), json!(i64::MIN)));
        assert!(r(json!({"lt": 1e300}), json!(1e299)));
    }

    #[test]
    fn datetime_ranges() {
        let f = parse(must(json!({"key": "t", "range": {
            "gte": "2020-01-01T00:00:00Z",
            "lt": "2021-01-01T00:00:00Z",
        }})));
        let at = |t: Value| f.matches(Some(&json!({ "t": t })), 0);
        assert!(at(json!("2020-01-01T00:00:00Z")));
        assert!(at(json!("2020-06-15T12:00:00.123+05:30")));
        assert!(at(json!("2020-12-31T23:59:59.999Z")));
        assert!(!at(json!("2021-01-01T00:00:00Z")));
        assert!(!at(json!("2019-12-31T23:59:59.999Z")));
        // Offsets are honoured: 00:30+01:00 is 2019-12-31T23:30Z.
        assert!(!at(json!("2020-01-01T00:30:00+01:00")));
        assert!(at(json!("2020-01-01T00:30:00-01:00")));
        // A number is not a datetime, nor is an unparsable string.
        assert!(!at(json!(ms("2020-06-01T00:00:00Z"))));
        assert!(!at(json!("2020-06-01")));
        assert!(!at(json!("June 2020")));
        assert!(!at(json!(null)));
        assert!(at(json!(["1999-01-01T00:00:00Z", "2020-03-03T00:00:00Z"])));
        assert!(!f.matches(None, 0));
    }

    #[test]
    fn ingested_at() {
        let t = ms("2024-05-01T10:00:00Z");
        let at = |c: Value, payload: Option<Value>| parse(must(c)).matches(payload.as_ref(), t);
        let range = |r: Value| json!({"key": INGESTED_AT_KEY, "range": r});
        assert!(at(range(json!({"gte": "2024-05-01T00:00:00Z"})), None));
        assert!(at(
            range(json!({"gte": "2024-05-01T10:00:00Z", "lte": "2024-05-01T10:00:00Z"})),
            None
        ));
        assert!(!at(range(json!({"gt": "2024-05-01T10:00:00Z"})), None));
        assert!(!at(range(json!({"lt": "2024-05-01T12:00:00+02:00"})), None));
        assert!(at(range(json!({"gte": t})), None));
        assert!(!at(range(json!({"gt": t})), None));
        assert!(at(range(json!({"gt": t as f64 - 0.5})), None));
        let mat = |v: Value| json!({"key": INGESTED_AT_KEY, "match": {"value": v}});
        assert!(at(mat(json!(t)), None));
        assert!(!at(mat(json!(t + 1)), None));
        assert!(at(mat(json!(t as f64)), None));
        assert!(at(mat(json!("2024-05-01T12:00:00+02:00")), None));
        assert!(!at(mat(json!(true)), None));
        assert!(at(
            json!({"key": INGESTED_AT_KEY, "match": {"any": [1, t]}}),
            None
        ));
        assert!(at(json!({"key": INGESTED_AT_KEY, "exists": true}), None));
        assert!(!at(json!({"key": INGESTED_AT_KEY, "exists": false}), None));
        assert!(!at(json!({ "is_null": INGESTED_AT_KEY }), None));
        // The payload cannot shadow the reserved key.
        let payload = json!({ INGESTED_AT_KEY: 5, "x": 1 });
        assert!(!at(mat(json!(5)), Some(payload.clone())));
        assert!(at(mat(json!(t)), Some(payload.clone())));
        assert!(!at(
            json!({ "is_null": INGESTED_AT_KEY }),
            Some(json!({ INGESTED_AT_KEY: null }))
        ));
        // Bi-temporal: event time in the payload, ingestion time here.
        let f = parse(json!({"must": [
            {"key": "event_at", "range": {"lt": "2024-01-01T00:00:00Z"}},
            {"key": INGESTED_AT_KEY, "range": {"gte": "2024-04-01T00:00:00Z"}},
        ]}));
        assert!(f.matches(Some(&json!({"event_at": "2023-12-01T00:00:00Z"})), t));
        assert!(!f.matches(
            Some(&json!({"event_at": "2023-12-01T00:00:00Z"})),
            ms("2024-03-01T00:00:00Z")
        ));
        assert!(!f.matches(Some(&json!({"event_at": "2024-02-01T00:00:00Z"})), t));
    }

    #[test]
    fn boolean_structure() {
        let p = json!({"a": 1, "b": "x", "c": [1, 2]});
        let c = |k: &str, v: Value| json!({"key": k, "match": {"value": v}});
        let t = c("a", json!(1));
        let f = c("a", json!(2));
        let check = |filter: Value, want: bool| {
            assert_eq!(parse(filter.clone()).matches(Some(&p), 0), want, "{filter}");
        };
        check(json!({}), true);
        check(json!({"must": [t.clone(), t.clone()]}), true);
        check(json!({"must": [t.clone(), f.clone()]}), false);
        check(json!({"should": [f.clone(), t.clone()]}), true);
        check(json!({"should": [f.clone(), f.clone()]}), false);
        check(json!({"must_not": [f.clone()]}), true);
        check(json!({"must_not": [f.clone(), t.clone()]}), false);
        check(json!({"must": [t.clone()], "should": [f.clone()]}), false);
        check(
            json!({"must": [t.clone()], "should": [f.clone(), t.clone()], "must_not": [f.clone()]}),
            true,
        );
        // Nested: a OR (b AND NOT c)
        check(
            json!({"should": [f.clone(), {"must": [c("b", json!("x"))], "must_not": [c("c", json!(2))]}]}),
            false,
        );
        check(
            json!({"should": [f.clone(), {"must": [c("b", json!("x"))], "must_not": [c("c", json!(3))]}]}),
            true,
        );
        check(json!({"must_not": [{"must_not": [t.clone()]}]}), true);
        check(json!({"must_not": [{"must": []}]}), false);
        check(json!({"must": [{"should": [f.clone()]}]}), false);
        check(nest(MAX_DEPTH), true);
        check(json!({"must_not": [nest(MAX_DEPTH - 1)]}), false);
    }

    #[test]
    fn any_value_at_visits_every_value() {
        let p = json!({"a": [{"b": 1}, {"b": [2, [3]]}, {"c": 4}, 5], "d": null});
        let mut seen = Vec::new();
        assert!(!any_value_at(&p, "a.b", |v| {
            seen.push(v.clone());
            false
        }));
        assert_eq!(seen, vec![json!(1), json!(2), json!(3)]);
        assert!(any_value_at(&p, "d", Value::is_null));
        assert!(!any_value_at(&p, "e", |_| true));
    }

    #[test]
    fn exact_numeric_helpers() {
        let n = |v: Value| match v {
            Value::Number(n) => n,
            other => panic!("{other}"),
        };
        assert_eq!(cmp_number_f64(&n(json!(3)), 2.5), Some(Ordering::Greater));
        assert_eq!(cmp_number_f64(&n(json!(2)), 2.5), Some(Ordering::Less));
        assert_eq!(cmp_number_f64(&n(json!(-3)), -2.5), Some(Ordering::Less));
        assert_eq!(cmp_number_f64(&n(json!(-2)), -2.5), Some(Ordering::Greater));
        assert_eq!(cmp_number_f64(&n(json!(-2)), -2.0), Some(Ordering::Equal));
        assert_eq!(
            cmp_number_f64(&n(json!(u64::MAX)), 1.8446744073709552e19),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_number_f64(&n(json!(i64::MAX)), 9.223372036854776e18),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_number_f64(&n(json!(i64::MIN)), -9.223372036854776e18),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_number_f64(&n(json!(0.5)), 0.25),
            Some(Ordering::Greater)
        );
        assert!(number_eq_i64(&n(json!(7.0)), 7));
        assert!(!number_eq_i64(&n(json!(7.5)), 7));
        assert!(!number_eq_i64(&n(json!(u64::MAX)), -1));
        assert!(!number_eq_i64(&n(json!(9.223372036854776e18)), i64::MAX));
    }
}
