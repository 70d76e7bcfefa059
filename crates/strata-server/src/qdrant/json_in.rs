//! A JSON value as a Qdrant client sends it where a dense vector is the
//! common case (a query, a point's vector), with a list of numbers read
//! straight into `f32`s.
//!
//! Reading `[0.1, …]` through `serde_json::Value` builds one `Value` per
//! number and drops them all again after the conversion: a profile of the
//! reference client's query loop put JSON at about 6 % of the server's
//! CPU per search, most of it in that detour (ARCHITECTURE.md, "Where a
//! Qdrant-listener request's CPU goes"). Anything other than a flat list
//! of numbers is kept as the `Value` it would have been, so every other
//! form (named vectors, point ids, `{"nearest": …}`, multivectors and the
//! errors they get) is handled exactly as before.

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::fmt;

/// A flat list of numbers as `f32`s, or any other JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonIn {
    Floats(Vec<f32>),
    Other(Value),
}

impl<'de> Deserialize<'de> for JsonIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

/// One element of a list: a number, or anything else as a `Value`.
enum Elem {
    Num(f64, Number),
    Other(Value),
}

impl<'de> Deserialize<'de> for Elem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElemVisitor)
    }
}

struct TopVisitor;
struct ElemVisitor;

/// The visits that turn a non-list into the `Value` it would have been.
macro_rules! scalar_visits {
    ($wrap:path) => {
        fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Ok($wrap(Value::Bool(b)))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok($wrap(Value::String(s.to_owned())))
        }
        fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
            Ok($wrap(Value::String(s)))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Value::Null))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Value::Null))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Value::deserialize(d).map($wrap)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Value::deserialize(MapAccessDeserializer::new(map)).map($wrap)
        }
    };
}

impl<'de> Visitor<'de> for ElemVisitor {
    type Value = Elem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_u64<E>(self, n: u64) -> Result<Elem, E> {
        Ok(Elem::Num(n as f64, Number::from(n)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Elem, E> {
        Ok(Elem::Num(n as f64, Number::from(n)))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Elem, E> {
        // JSON has no NaN or infinity: every parsed f64 has a Number.
        let num = Number::from_f64(n).ok_or_else(|| E::custom("a number is not finite"))?;
        Ok(Elem::Num(n, num))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Elem, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Elem::Other)
    }
    scalar_visits!(Elem::Other);
}

impl<'de> Visitor<'de> for TopVisitor {
    type Value = JsonIn;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_u64<E>(self, n: u64) -> Result<JsonIn, E> {
        Ok(JsonIn::Other(Value::Number(n.into())))
    }
    fn visit_i64<E>(self, n: i64) -> Result<JsonIn, E> {
        Ok(JsonIn::Other(Value::Number(n.into())))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<JsonIn, E> {
        Number::from_f64(n)
            .map(|n| JsonIn::Other(Value::Number(n)))
            .ok_or_else(|| E::custom("a number is not finite"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonIn, A::Error> {
        let mut floats = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(65_536));
        while let Some(e) = seq.next_element::<Elem>()? {
            match e {
                // As `Value::as_f64` then `as f32`: the same rounding as
                // the `Value` path.
                Elem::Num(f, _) => floats.push(f as f32),
                Elem::Other(v) => {
                    // Not a flat list of numbers: the `Value` it would have
                    // been, for the error a mixed list gets. The numbers
                    // before this element come back from their f32s; the
                    // rest as sent.
                    let mut items: Vec<Value> = floats
                        .iter()
                        .map(|&f: &f32| {
                            Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
                        })
                        .collect();
                    items.push(v);
                    while let Some(e) = seq.next_element::<Elem>()? {
                        items.push(match e {
                            Elem::Num(_, n) => Value::Number(n),
                            Elem::Other(v) => v,
                        });
                    }
                    return Ok(JsonIn::Other(Value::Array(items)));
                }
            }
        }
        Ok(JsonIn::Floats(floats))
    }
    scalar_visits!(JsonIn::Other);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> JsonIn {
        serde_json::from_str(s).expect("valid JSON")
    }

    #[test]
    fn a_flat_list_of_numbers_is_read_as_the_value_path_rounds_it() {
        let text = "[0.1, -2, 3e-5, 18446744073709551615, -9223372036854775808, 1.0000001, 1e38]";
        let via_value: Vec<f32> = serde_json::from_str::<Value>(text)
            .expect("valid")
            .as_array()
            .expect("a list")
            .iter()
            .map(|v| v.as_f64().expect("a number") as f32)
            .collect();
        assert_eq!(parse(text), JsonIn::Floats(via_value));
        assert_eq!(parse("[]"), JsonIn::Floats(vec![]));
    }

    #[test]
    fn every_other_form_is_the_value_it_would_have_been() {
        for text in [
            "7",
            "-3",
            "2.5",
            "\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\"",
            "true",
            "null",
            "{\"nearest\": [1, 2]}",
            "{\"dense\": [0.5, 0.25]}",
            "[[1, 2], [3, 4]]",
            "[\"a\", 1]",
            "[{\"x\": 1}]",
            "[null]",
        ] {
            let want: Value = serde_json::from_str(text).expect("valid");
            assert_eq!(parse(text), JsonIn::Other(want), "{text}");
        }
    }

    #[test]
    fn a_list_that_turns_mixed_keeps_its_elements_in_order() {
        // Numbers before the first non-number come back from their f32s
        // (exact for these), the rest as sent.
        let got = parse("[1, 0.5, [2], 3, \"x\"]");
        let want: Value = serde_json::from_str("[1.0, 0.5, [2], 3, \"x\"]").expect("valid");
        assert_eq!(got, JsonIn::Other(want));
    }

    #[test]
    fn malformed_json_is_still_an_error() {
        for text in ["[1, 2", "[1, ]", "[NaN]", "[1e999]", "{"] {
            assert!(serde_json::from_str::<JsonIn>(text).is_err(), "{text}");
        }
    }
}
