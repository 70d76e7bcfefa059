//! Qdrant's filter grammar translated to [`strata::vectors::Filter`].
//!
//! ```text
//! Filter := {must?: C|[C], should?: C|[C], must_not?: C|[C], min_should?: {conditions:[C], min_count}}
//! C      := {key, match: {value|any|except|text|phrase|text_any}} | {key, range} | {key, values_count}
//!         | {key, is_empty: bool} | {key, is_null: bool} | {is_empty: {key}} | {is_null: {key}}
//!         | {has_id: [id]} | {nested: {key, filter}} | Filter
//! ```
//!
//! Qdrant's rules hold: `should: []` matches nothing; a missing key fails
//! `match`, `range` and `except`; `is_empty` holds for a missing key, `null`
//! and `[]`; a condition on an array holds when an element does; keys may
//! carry `[]` and `[N]`.

use serde_json::{Map, Value};
use strata::vectors::{Bound, Condition, Filter, MatchValue, PointId, Range};

use super::ids::parse_ids;
use super::QError;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 16;
/// Most conditions in one filter.
const MAX_CONDITIONS: usize = 1024;

/// Parses a Qdrant filter (`null` is no filter).
pub fn parse_filter(v: Option<&Value>) -> Result<Option<Filter>, QError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let mut count = 0;
            filter(v, 1, &mut count).map(Some)
        }
    }
}

fn bad(msg: impl Into<String>) -> QError {
    QError::format(msg.into())
}

fn conditions(v: &Value, depth: usize, count: &mut usize) -> Result<Vec<Condition>, QError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(|c| condition(c, depth, count)).collect(),
        other => Ok(vec![condition(other, depth, count)?]),
    }
}

fn filter(v: &Value, depth: usize, count: &mut usize) -> Result<Filter, QError> {
    if depth > MAX_DEPTH {
        return Err(QError::wrong_input(format!(
            "filters nest deeper than {MAX_DEPTH} levels"
        )));
    }
    let Some(obj) = v.as_object() else {
        return Err(bad(format!("a filter is an object, got {v}")));
    };
    let mut f = Filter::default();
    for (k, val) in obj {
        match k.as_str() {
            "must" => f.must.extend(conditions(val, depth, count)?),
            "must_not" => f.must_not = conditions(val, depth, count)?,
            "should" => {
                let present = !val.is_null();
                f.should = conditions(val, depth, count)?;
                if present && f.should.is_empty() {
                    // Qdrant: an empty `should` matches nothing.
                    f.must.push(Condition::HasId(Vec::new()));
                }
            }
            "min_should" => {
                if val.is_null() {
                    continue;
                }
                let m = val
                    .as_object()
                    .ok_or_else(|| bad("min_should is {conditions, min_count}"))?;
                let conds = conditions(m.get("conditions").unwrap_or(&Value::Null), depth, count)?;
                let min_count = m
                    .get("min_count")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("min_should.min_count must be an unsigned integer"))?
                    as usize;
                f.must.push(Condition::MinShould {
                    conditions: conds,
                    min_count,
                });
            }
            other => return Err(bad(format!("unknown field `{other}` in a filter"))),
        }
    }
    Ok(f)
}

fn key_of(v: &Value) -> Result<String, QError> {
    match v.as_str() {
        Some(k) if !k.is_empty() && k.split('.').all(|s| !s.is_empty()) => Ok(k.to_owned()),
        _ => Err(bad(format!("{v} is not a payload key"))),
    }
}

fn negate(c: Condition) -> Condition {
    Condition::Nested(Filter {
        must_not: vec![c],
        ..Filter::default()
    })
}

fn condition(v: &Value, depth: usize, count: &mut usize) -> Result<Condition, QError> {
    *count += 1;
    if *count > MAX_CONDITIONS {
        return Err(QError::wrong_input(format!(
            "a filter has at most {MAX_CONDITIONS} conditions"
        )));
    }
    let Some(obj) = v.as_object() else {
        return Err(bad(format!("a condition is an object, got {v}")));
    };
    if let Some(key) = obj.get("key") {
        let key = key_of(key)?;
        return field_condition(key, obj);
    }
    if let Some(ids) = obj.get("has_id") {
        return Ok(Condition::HasId(parse_ids(ids)?));
    }
    for (name, is_null) in [("is_empty", false), ("is_null", true)] {
        if let Some(inner) = obj.get(name) {
            let key = key_of(inner.get("key").unwrap_or(&Value::Null))?;
            return Ok(if is_null {
                Condition::IsNull { key }
            } else {
                Condition::IsEmpty { key }
            });
        }
    }
    if let Some(n) = obj.get("nested") {
        let key = key_of(n.get("key").unwrap_or(&Value::Null))?;
        let inner = n
            .get("filter")
            .ok_or_else(|| bad("nested needs a filter"))?;
        return Ok(Condition::NestedArray {
            key,
            filter: filter(inner, depth + 1, count)?,
        });
    }
    if obj.contains_key("has_vector") {
        return Err(QError::unsupported("the has_vector condition"));
    }
    if obj
        .keys()
        .any(|k| matches!(k.as_str(), "must" | "should" | "must_not" | "min_should"))
    {
        return Ok(Condition::Nested(filter(v, depth + 1, count)?));
    }
    Err(bad(format!("unknown condition {v}")))
}

fn scalar(v: &Value) -> Result<MatchValue, QError> {
    match v {
        Value::String(s) => Ok(MatchValue::Str(s.clone())),
        Value::Bool(b) => Ok(MatchValue::Bool(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(MatchValue::Int(i)),
            (None, Some(f)) => Ok(MatchValue::Float(f)),
            _ => Err(bad(format!("{n} is out of range"))),
        },
        other => Err(bad(format!("{other} is not a string, integer or bool"))),
    }
}

fn list(v: &Value) -> Result<Vec<MatchValue>, QError> {
    v.as_array()
        .ok_or_else(|| bad(format!("expected a list of values, got {v}")))?
        .iter()
        .map(scalar)
        .collect()
}

fn bound(v: &Value) -> Result<Option<Bound>, QError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some(Bound::Number(f)))
            .ok_or_else(|| bad(format!("{n} is out of range"))),
        Value::String(s) => strata::Timestamp::parse_rfc3339(s)
            .map(|t| Some(Bound::Datetime(t.as_millis())))
            .ok_or_else(|| {
                bad(format!(
                    "'{s}' does not match accepted datetime format (RFC3339). Example: 2014-01-01T00:00:00Z"
                ))
            }),
        other => Err(bad(format!("{other} is not a number or a datetime"))),
    }
}

fn range(v: &Value) -> Result<Range, QError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad(format!("a range is an object, got {v}")))?;
    let mut r = Range::default();
    for (k, b) in obj {
        let slot = match k.as_str() {
            "gt" => &mut r.gt,
            "gte" => &mut r.gte,
            "lt" => &mut r.lt,
            "lte" => &mut r.lte,
            other => return Err(bad(format!("unknown field `{other}` in a range"))),
        };
        *slot = bound(b)?;
    }
    let bounds = [r.gt, r.gte, r.lt, r.lte];
    let dt = bounds
        .iter()
        .flatten()
        .filter(|b| matches!(b, Bound::Datetime(_)))
        .count();
    let set = bounds.iter().flatten().count();
    if dt != 0 && dt != set {
        return Err(QError::wrong_input(
            "the bounds of a range are all numbers or all datetimes",
        ));
    }
    Ok(r)
}

fn field_condition(key: String, obj: &Map<String, Value>) -> Result<Condition, QError> {
    if let Some(m) = obj.get("match").filter(|m| !m.is_null()) {
        let m = m
            .as_object()
            .ok_or_else(|| bad(format!("match is an object, got {m}")))?;
        if let Some(v) = m.get("value") {
            return Ok(Condition::Match {
                key,
                value: scalar(v)?,
            });
        }
        if let Some(v) = m.get("any") {
            return Ok(Condition::MatchAny { key, any: list(v)? });
        }
        if let Some(v) = m.get("except") {
            return Ok(Condition::Except {
                key,
                except: list(v)?,
            });
        }
        for name in ["text", "phrase"] {
            if let Some(v) = m.get(name) {
                let text = v
                    .as_str()
                    .ok_or_else(|| bad(format!("match.{name} is a string")))?;
                return Ok(Condition::Text {
                    key,
                    text: text.to_owned(),
                });
            }
        }
        if let Some(v) = m.get("text_any") {
            let text = v
                .as_str()
                .ok_or_else(|| bad("match.text_any is a string"))?;
            let should: Vec<Condition> = text
                .split_whitespace()
                .map(|w| Condition::Text {
                    key: key.clone(),
                    text: w.to_owned(),
                })
                .collect();
            return Ok(if should.is_empty() {
                Condition::HasId(Vec::<PointId>::new())
            } else {
                Condition::Nested(Filter {
                    should,
                    ..Filter::default()
                })
            });
        }
        return Err(bad(
            "match needs one of value, any, except, text, phrase or text_any",
        ));
    }
    if let Some(r) = obj.get("range").filter(|r| !r.is_null()) {
        return Ok(Condition::Range {
            key,
            range: range(r)?,
        });
    }
    if let Some(r) = obj.get("datetime_range").filter(|r| !r.is_null()) {
        return Ok(Condition::Range {
            key,
            range: range(r)?,
        });
    }
    if let Some(r) = obj.get("values_count").filter(|r| !r.is_null()) {
        return Ok(Condition::ValuesCount {
            key,
            range: range(r)?,
        });
    }
    if let Some(b) = obj.get("is_empty").and_then(Value::as_bool) {
        let c = Condition::IsEmpty { key };
        return Ok(if b { c } else { negate(c) });
    }
    if let Some(b) = obj.get("is_null").and_then(Value::as_bool) {
        let c = Condition::IsNull { key };
        return Ok(if b { c } else { negate(c) });
    }
    for geo in ["geo_bounding_box", "geo_radius", "geo_polygon"] {
        if obj.get(geo).is_some_and(|g| !g.is_null()) {
            return Err(QError::unsupported("geo conditions"));
        }
    }
    Err(bad(format!(
        "the condition on `{key}` needs one of match, range, values_count, is_empty or is_null"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn passes(f: &Value, payload: Value) -> bool {
        let f = parse_filter(Some(f)).expect("valid").expect("some");
        f.matches_point(Some(&payload), 0, &|| Some(PointId::Num(7)))
    }

    #[test]
    fn clauses_follow_qdrant() {
        let london = json!({"city": "London", "n": 3, "tags": ["a", "b"]});
        assert!(!passes(&json!({"should": []}), london.clone()));
        assert!(passes(&json!({"should": null}), london.clone()));
        assert!(passes(
            &json!({"must": {"key": "city", "match": {"value": "London"}}}),
            london.clone()
        ));
        assert!(passes(
            &json!({"min_should": {"conditions": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "n", "range": {"gte": 3.0}},
                {"key": "tags", "match": {"value": "z"}}
            ], "min_count": 2}}),
            london.clone()
        ));
        assert!(!passes(
            &json!({"min_should": {"conditions": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "tags", "match": {"value": "z"}}
            ], "min_count": 2}}),
            london.clone()
        ));
        assert!(passes(
            &json!({"must": [{"has_id": [7, 8]}]}),
            london.clone()
        ));
        assert!(!passes(&json!({"must": [{"has_id": [8]}]}), london.clone()));
        assert!(passes(
            &json!({"must": [{"must_not": [{"key": "city", "match": {"value": "Paris"}}]}]}),
            london
        ));
    }

    #[test]
    fn missing_fields_arrays_and_emptiness() {
        let except = json!({"must": [{"key": "city", "match": {"except": ["Paris"]}}]});
        assert!(passes(&except, json!({"city": "London"})));
        assert!(!passes(&except, json!({"city": "Paris"})));
        assert!(!passes(&except, json!({})), "a missing key fails except");
        let empty = json!({"must": [{"is_empty": {"key": "tags"}}]});
        assert!(passes(&empty, json!({})));
        assert!(passes(&empty, json!({"tags": null})));
        assert!(passes(&empty, json!({"tags": []})));
        assert!(!passes(&empty, json!({"tags": [null]})));
        assert!(!passes(&empty, json!({"tags": ["a"]})));
        let null = json!({"must": [{"is_null": {"key": "tags"}}]});
        assert!(!passes(&null, json!({})));
        assert!(passes(&null, json!({"tags": null})));
        assert!(passes(&null, json!({"tags": [null]})));
        assert!(!passes(&null, json!({"tags": []})));
        let any = json!({"must": [{"key": "tags", "match": {"any": ["b", "c"]}}]});
        assert!(passes(&any, json!({"tags": ["a", "b"]})));
        assert!(!passes(&any, json!({"tags": []})));
        let count = json!({"must": [{"key": "tags", "values_count": {"gte": 2}}]});
        assert!(passes(&count, json!({"tags": ["a", "b"]})));
        assert!(!passes(&count, json!({"tags": ["a"]})));
        assert!(!passes(&count, json!({})));
        let text = json!({"must": [{"key": "t", "match": {"text": "quick"}}]});
        assert!(passes(&text, json!({"t": "the quick fox"})));
        assert!(!passes(&text, json!({"t": "slow"})));
        let range = json!({"must": [{"key": "n", "range": {"gte": 10.0, "lt": 20.0}}]});
        assert!(passes(&range, json!({"n": 10})));
        assert!(!passes(&range, json!({"n": 20})));
        assert!(!passes(&range, json!({})));
    }

    #[test]
    fn nested_keys_and_nested_arrays() {
        let p = json!({"metadata": {"source": "s2"}, "diet": [
            {"food": "meat", "likes": false},
            {"food": "fish", "likes": true}
        ]});
        assert!(passes(
            &json!({"must": [{"key": "metadata.source", "match": {"value": "s2"}}]}),
            p.clone()
        ));
        assert!(passes(
            &json!({"must": [{"key": "diet[].food", "match": {"value": "fish"}}]}),
            p.clone()
        ));
        assert!(passes(
            &json!({"must": [{"key": "diet[0].food", "match": {"value": "meat"}}]}),
            p.clone()
        ));
        assert!(!passes(
            &json!({"must": [{"key": "diet[0].food", "match": {"value": "fish"}}]}),
            p.clone()
        ));
        // Both conditions on one element: only `nested` demands that.
        let nested = json!({"must": [{"nested": {"key": "diet", "filter": {"must": [
            {"key": "food", "match": {"value": "meat"}},
            {"key": "likes", "match": {"value": true}}
        ]}}}]});
        assert!(!passes(&nested, p.clone()));
        let flat = json!({"must": [
            {"key": "diet[].food", "match": {"value": "meat"}},
            {"key": "diet[].likes", "match": {"value": true}}
        ]});
        assert!(passes(&flat, p));
    }

    #[test]
    fn bad_filters_are_refused() {
        let e = parse_filter(Some(
            &json!({"must": [{"key": "n", "range": {"gte": "x"}}]}),
        ))
        .expect_err("not a datetime");
        assert!(
            e.message.starts_with(
                "Format error in JSON body: 'x' does not match accepted datetime format (RFC3339)"
            ),
            "{}",
            e.message
        );
        assert!(parse_filter(Some(&json!({"bogus": []}))).is_err());
        assert!(parse_filter(Some(&json!({"must": [{"key": "a", "geo_radius": {}}]}))).is_err());
        let mut deep = json!({"must": []});
        for _ in 0..40 {
            deep = json!({"must": [deep]});
        }
        assert!(parse_filter(Some(&deep)).is_err());
    }
}
