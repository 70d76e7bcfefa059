//! Payload indexes: per declared field, a map from values to the slots that
//! hold them, so a filter can be turned into a candidate set without looking
//! at every payload.
//!
//! Each index also keeps the slots where the field holds a non-null value
//! (answers `exists`), a null (answers `is_null`), and a number the index
//! cannot key exactly (an integer index's `2.5`, a float index's `2^53 + 1`):
//! those are added to every numeric answer of the index, which is then
//! inexact, so no matching slot is ever left out. Values of another type
//! (a string in an integer index) are not indexed; no condition the index
//! answers can match them.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound as Edge;

use roaring::{MultiOps, RoaringBitmap};
use serde_json::Value;
use strata_core::filter::{any_value_at, Bound, Condition, Filter, MatchValue, Range};
use strata_core::vectors::{FieldType, INGESTED_AT_KEY};
use strata_core::Timestamp;

/// The slots a filter may match, computed from the payload indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// Every slot that matches is in here (a superset when `exact` is false).
    pub slots: RoaringBitmap,
    /// Whether every slot in `slots` is known to match, so the payloads need
    /// not be checked.
    pub exact: bool,
}

/// An `f64` ordered by `total_cmp`, with `-0.0` folded into `0.0`.
#[derive(Debug, Clone, Copy)]
struct OrdF64(f64);

impl OrdF64 {
    fn new(x: f64) -> Self {
        OrdF64(if x == 0.0 { 0.0 } else { x })
    }
}

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The value → slots maps of one index.
#[derive(Debug)]
enum Values {
    Keyword(HashMap<String, RoaringBitmap>),
    Integer(BTreeMap<i64, RoaringBitmap>),
    Float(BTreeMap<OrdF64, RoaringBitmap>),
    Datetime(BTreeMap<i64, RoaringBitmap>),
    Bool {
        yes: RoaringBitmap,
        no: RoaringBitmap,
    },
}

/// How one payload value is held by an index.
enum Key<'v> {
    Str(&'v str),
    Int(i64),
    Float(OrdF64),
    Bool(bool),
    /// A number the index cannot key exactly.
    Unindexed,
}

/// 2^63: `i64` spans `[-TWO_63, TWO_63)`.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// `x` as an `i64` when it is one exactly.
fn f64_to_i64(x: f64) -> Option<i64> {
    (x.fract() == 0.0 && (-TWO_63..TWO_63).contains(&x)).then_some(x as i64)
}

/// `v` as an `f64` when the conversion is exact.
fn int_to_f64(v: i128) -> Option<f64> {
    let f = v as f64;
    (f as i128 == v).then_some(f)
}

impl Values {
    fn new(ty: FieldType) -> Self {
        match ty {
            FieldType::Keyword => Values::Keyword(HashMap::new()),
            FieldType::Integer => Values::Integer(BTreeMap::new()),
            FieldType::Float => Values::Float(BTreeMap::new()),
            FieldType::Datetime => Values::Datetime(BTreeMap::new()),
            FieldType::Bool => Values::Bool {
                yes: RoaringBitmap::new(),
                no: RoaringBitmap::new(),
            },
        }
    }

    /// How this index holds a (non-null, non-array) payload value, if at all.
    fn key<'v>(&self, v: &'v Value) -> Option<Key<'v>> {
        match (self, v) {
            (Values::Keyword(_), Value::String(s)) => Some(Key::Str(s)),
            (Values::Integer(_), Value::Number(n)) => Some(if let Some(i) = n.as_i64() {
                Key::Int(i)
            } else if n.is_u64() {
                Key::Unindexed // above i64::MAX
            } else {
                n.as_f64()
                    .and_then(f64_to_i64)
                    .map_or(Key::Unindexed, Key::Int)
            }),
            (Values::Float(_), Value::Number(n)) => Some(if let Some(i) = n.as_i64() {
                int_to_f64(i128::from(i)).map_or(Key::Unindexed, |f| Key::Float(OrdF64::new(f)))
            } else if let Some(u) = n.as_u64() {
                int_to_f64(i128::from(u)).map_or(Key::Unindexed, |f| Key::Float(OrdF64::new(f)))
            } else {
                n.as_f64()
                    .map_or(Key::Unindexed, |f| Key::Float(OrdF64::new(f)))
            }),
            (Values::Datetime(_), Value::String(s)) => {
                Timestamp::parse_rfc3339(s).map(|t| Key::Int(t.as_millis()))
            }
            (Values::Bool { .. }, Value::Bool(b)) => Some(Key::Bool(*b)),
            _ => None,
        }
    }

    /// Adds (or removes) `slot` under `key`; `false` when the key is
    /// [`Key::Unindexed`].
    fn update(&mut self, key: Key<'_>, slot: u32, add: bool) -> bool {
        fn in_map<K: Ord>(map: &mut BTreeMap<K, RoaringBitmap>, k: K, slot: u32, add: bool) {
            if add {
                map.entry(k).or_default().insert(slot);
            } else if let std::collections::btree_map::Entry::Occupied(mut e) = map.entry(k) {
                e.get_mut().remove(slot);
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
        match (self, key) {
            (_, Key::Unindexed) => return false,
            (Values::Keyword(map), Key::Str(s)) => {
                if let Some(bits) = map.get_mut(s) {
                    if add {
                        bits.insert(slot);
                    } else {
                        bits.remove(slot);
                        if bits.is_empty() {
                            map.remove(s);
                        }
                    }
                } else if add {
                    map.insert(s.to_owned(), RoaringBitmap::from_iter([slot]));
                }
            }
            (Values::Integer(map) | Values::Datetime(map), Key::Int(i)) => {
                in_map(map, i, slot, add)
            }
            (Values::Float(map), Key::Float(f)) => in_map(map, f, slot, add),
            (Values::Bool { yes, no }, Key::Bool(b)) => {
                let bits = if b { yes } else { no };
                if add {
                    bits.insert(slot);
                } else {
                    bits.remove(slot);
                }
            }
            _ => {}
        }
        true
    }
}

/// A candidate set borrowed from an index or computed.
type Bits<'a> = Cow<'a, RoaringBitmap>;

/// What the indexes say about a condition: a superset of its slots, and
/// whether it is exact. `None` (not answerable) stands for every slot.
type Answer<'a> = Option<(Bits<'a>, bool)>;

/// What the indexes say about a filter.
struct FilterAnswer<'a> {
    /// A superset of the matching slots; `None` for every live slot.
    bits: Option<Bits<'a>>,
    /// Whether `bits` (or every live slot) is exactly the matching set.
    exact: bool,
}

fn empty<'a>() -> Bits<'a> {
    Cow::Owned(RoaringBitmap::new())
}

fn union_all<'a>(mut sets: Vec<Bits<'a>>) -> Bits<'a> {
    match sets.len() {
        0 => empty(),
        1 => sets.pop().unwrap_or_else(empty),
        _ => Cow::Owned(sets.iter().map(|b| &**b).union()),
    }
}

/// Intersects, smallest first; `None` when there is nothing to intersect.
fn intersect_all(mut sets: Vec<Bits<'_>>) -> Option<Bits<'_>> {
    sets.sort_by_key(|b| b.len());
    let mut it = sets.into_iter();
    let mut acc = it.next()?;
    for b in it {
        if acc.is_empty() {
            break;
        }
        acc = Cow::Owned(match acc {
            Cow::Owned(mut a) => {
                a &= &*b;
                a
            }
            Cow::Borrowed(a) => a & &*b,
        });
    }
    Some(acc)
}

/// The integers `[lo, hi]` a number or datetime range admits; `None` when
/// the bounds are of the other kind (or the range has none).
fn int_interval(range: &Range, datetime: bool) -> Option<Option<(i64, i64)>> {
    let (mut lo, mut hi) = (i128::from(i64::MIN), i128::from(i64::MAX));
    let mut any = false;
    for (b, lower, strict) in [
        (range.gt, true, true),
        (range.gte, true, false),
        (range.lt, false, true),
        (range.lte, false, false),
    ] {
        let Some(b) = b else { continue };
        any = true;
        // The least admitted integer of a lower bound, the greatest of an
        // upper one.
        let edge: i128 = match (b, datetime) {
            (Bound::Number(x), false) => {
                // Beyond ±1e20 is beyond every i64 either way.
                let x = x.clamp(-1e20, 1e20);
                match (lower, strict) {
                    (true, true) => x.floor() as i128 + 1,
                    (true, false) => x.ceil() as i128,
                    (false, true) => x.ceil() as i128 - 1,
                    (false, false) => x.floor() as i128,
                }
            }
            (Bound::Datetime(ms), true) => {
                let ms = i128::from(ms);
                match (lower, strict) {
                    (true, true) => ms + 1,
                    (false, true) => ms - 1,
                    _ => ms,
                }
            }
            _ => return None,
        };
        if lower {
            lo = lo.max(edge);
        } else {
            hi = hi.min(edge);
        }
    }
    if !any {
        return None;
    }
    // Both ends are inside i64 once the interval is non-empty.
    Some((lo <= hi).then_some((lo as i64, hi as i64)))
}

/// The `f64` edges of a number range; `None` when it has datetime bounds
/// (or none), `Some(None)` when it is empty.
#[allow(clippy::type_complexity)]
fn float_interval(range: &Range) -> Option<Option<(Edge<OrdF64>, Edge<OrdF64>)>> {
    // (value, inclusive)
    let mut lo: Option<(f64, bool)> = None;
    let mut hi: Option<(f64, bool)> = None;
    for (b, lower, inclusive) in [
        (range.gt, true, false),
        (range.gte, true, true),
        (range.lt, false, false),
        (range.lte, false, true),
    ] {
        let Some(b) = b else { continue };
        let Bound::Number(x) = b else { return None };
        let x = OrdF64::new(x).0;
        let slot = if lower { &mut lo } else { &mut hi };
        let tighter = match *slot {
            None => true,
            Some((cur, cur_inc)) => {
                let beyond = if lower { x > cur } else { x < cur };
                beyond || (x == cur && cur_inc && !inclusive)
            }
        };
        if tighter {
            *slot = Some((x, inclusive));
        }
    }
    if lo.is_none() && hi.is_none() {
        return None;
    }
    if let (Some((l, li)), Some((h, hi_inc))) = (lo, hi) {
        if l > h || (l == h && !(li && hi_inc)) {
            return Some(None);
        }
    }
    let edge = |e: Option<(f64, bool)>| match e {
        None => Edge::Unbounded,
        Some((x, true)) => Edge::Included(OrdF64(x)),
        Some((x, false)) => Edge::Excluded(OrdF64(x)),
    };
    Some(Some((edge(lo), edge(hi))))
}

/// The index of one field.
#[derive(Debug)]
struct FieldIndex {
    field: String,
    ty: FieldType,
    values: Values,
    /// Slots with a number the index cannot key exactly.
    unindexed: RoaringBitmap,
    /// Slots where the field holds a non-null value.
    present: RoaringBitmap,
    /// Slots where the field holds a null.
    nulls: RoaringBitmap,
}

impl FieldIndex {
    fn new(field: &str, ty: FieldType) -> Self {
        FieldIndex {
            field: field.to_owned(),
            ty,
            values: Values::new(ty),
            unindexed: RoaringBitmap::new(),
            present: RoaringBitmap::new(),
            nulls: RoaringBitmap::new(),
        }
    }

    fn update(&mut self, slot: u32, payload: Option<&Value>, add: bool) {
        let FieldIndex {
            field,
            values,
            unindexed,
            present,
            nulls,
            ..
        } = self;
        if !add {
            unindexed.remove(slot);
            present.remove(slot);
            nulls.remove(slot);
        }
        let Some(payload) = payload else { return };
        any_value_at(payload, field, |v| {
            if v.is_null() {
                if add {
                    nulls.insert(slot);
                }
                return false;
            }
            if add {
                present.insert(slot);
            }
            if let Some(key) = values.key(v) {
                if !values.update(key, slot, add) && add {
                    unindexed.insert(slot);
                }
            }
            false
        });
    }

    /// A numeric answer: `bits` plus the unindexed numbers.
    fn with_unindexed<'a>(&'a self, bits: Bits<'a>) -> Answer<'a> {
        if self.unindexed.is_empty() {
            Some((bits, true))
        } else if bits.is_empty() {
            Some((Cow::Borrowed(&self.unindexed), false))
        } else {
            Some((Cow::Owned(&*bits | &self.unindexed), false))
        }
    }

    fn match_value(&self, value: &MatchValue) -> Answer<'_> {
        fn get<'a, K: Ord>(map: &'a BTreeMap<K, RoaringBitmap>, k: &K) -> Bits<'a> {
            map.get(k).map_or_else(empty, Cow::Borrowed)
        }
        match (&self.values, value) {
            (Values::Keyword(map), MatchValue::Str(s)) => {
                Some((map.get(s.as_str()).map_or_else(empty, Cow::Borrowed), true))
            }
            (Values::Integer(map), MatchValue::Int(i)) => Some((get(map, i), true)),
            (Values::Integer(map), MatchValue::Float(x)) => match f64_to_i64(*x) {
                Some(i) => Some((get(map, &i), true)),
                // Only an unindexed number can equal a non-integral float.
                None => self.with_unindexed(empty()),
            },
            (Values::Float(map), MatchValue::Float(x)) => Some((get(map, &OrdF64::new(*x)), true)),
            (Values::Float(map), MatchValue::Int(i)) => match int_to_f64(i128::from(*i)) {
                Some(f) => Some((get(map, &OrdF64::new(f)), true)),
                None => self.with_unindexed(empty()),
            },
            (Values::Bool { yes, no }, MatchValue::Bool(b)) => {
                Some((Cow::Borrowed(if *b { yes } else { no }), true))
            }
            _ => None,
        }
    }

    fn range(&self, range: &Range) -> Answer<'_> {
        fn collect<'a, K: 'a>(it: impl Iterator<Item = (&'a K, &'a RoaringBitmap)>) -> Bits<'a> {
            let mut sets: Vec<Bits<'a>> = it.map(|(_, b)| Cow::Borrowed(b)).collect();
            if sets.len() == 1 {
                sets.pop().unwrap_or_else(empty)
            } else {
                union_all(sets)
            }
        }
        match &self.values {
            Values::Integer(map) => {
                let bits = match int_interval(range, false)? {
                    Some((lo, hi)) => collect(map.range(lo..=hi)),
                    None => empty(),
                };
                self.with_unindexed(bits)
            }
            Values::Float(map) => {
                let bits = match float_interval(range)? {
                    Some(edges) => collect(map.range(edges)),
                    None => empty(),
                };
                self.with_unindexed(bits)
            }
            Values::Datetime(map) => match int_interval(range, true)? {
                Some((lo, hi)) => Some((collect(map.range(lo..=hi)), true)),
                None => Some((empty(), true)),
            },
            Values::Keyword(_) | Values::Bool { .. } => None,
        }
    }

    fn answer<'a>(&'a self, c: &Condition, live: &RoaringBitmap) -> Answer<'a> {
        match c {
            Condition::Match { value, .. } => self.match_value(value),
            Condition::MatchAny { any, .. } => {
                let mut exact = true;
                let mut sets = Vec::with_capacity(any.len());
                for v in any {
                    let (bits, e) = self.match_value(v)?;
                    exact &= e;
                    sets.push(bits);
                }
                Some((union_all(sets), exact))
            }
            Condition::Range { range, .. } => self.range(range),
            Condition::Exists { exists: true, .. } => Some((Cow::Borrowed(&self.present), true)),
            Condition::Exists { exists: false, .. } => {
                Some((Cow::Owned(live - &self.present), true))
            }
            Condition::IsNull { .. } => Some((Cow::Borrowed(&self.nulls), true)),
            // Checked point by point.
            Condition::Nested(_)
            | Condition::Except { .. }
            | Condition::Text { .. }
            | Condition::ValuesCount { .. }
            | Condition::IsEmpty { .. }
            | Condition::HasId(_)
            | Condition::NestedArray { .. }
            | Condition::MinShould { .. } => None,
        }
    }
}

/// The payload indexes of one collection.
#[derive(Debug, Default)]
pub struct PayloadIndexes {
    indexes: Vec<FieldIndex>,
}

impl PayloadIndexes {
    pub fn new() -> Self {
        PayloadIndexes {
            indexes: Vec::new(),
        }
    }

    /// Declares an index and fills it from the existing points. Declaring a
    /// field again replaces its index.
    pub fn add_field<'a>(
        &mut self,
        field: &str,
        ty: FieldType,
        points: impl Iterator<Item = (u32, Option<&'a Value>)>,
    ) {
        let mut index = FieldIndex::new(field, ty);
        for (slot, payload) in points {
            index.update(slot, payload, true);
        }
        match self.indexes.iter_mut().find(|i| i.field == field) {
            Some(old) => *old = index,
            None => self.indexes.push(index),
        }
    }

    /// Drops a field's index; whether there was one.
    pub fn remove_field(&mut self, field: &str) -> bool {
        let before = self.indexes.len();
        self.indexes.retain(|i| i.field != field);
        self.indexes.len() != before
    }

    /// The declared indexes.
    pub fn fields(&self) -> Vec<(String, FieldType)> {
        self.indexes
            .iter()
            .map(|i| (i.field.clone(), i.ty))
            .collect()
    }

    /// Whether no index is declared.
    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty()
    }

    /// Adds a slot's payload to every index.
    pub fn insert(&mut self, slot: u32, payload: Option<&Value>) {
        for index in &mut self.indexes {
            index.update(slot, payload, true);
        }
    }

    /// Removes a slot's payload (the same payload it was inserted with).
    pub fn remove(&mut self, slot: u32, payload: Option<&Value>) {
        for index in &mut self.indexes {
            index.update(slot, payload, false);
        }
    }

    /// The candidate slots of `filter` among `live` slots, or `None` when no
    /// index narrows it (the caller then checks every live payload).
    ///
    /// Conditions on indexed fields are answered from the indexes (`match`,
    /// `range` of the index's kind, `exists`, `is_null`), nested filters
    /// recursively; `must` parts are intersected, `should` parts united when
    /// all of them are answered, and `must_not` parts subtracted when
    /// answered exactly. Anything else only makes the answer inexact.
    pub fn candidates(&self, filter: &Filter, live: &RoaringBitmap) -> Option<Candidates> {
        if self.indexes.is_empty() {
            return None;
        }
        let answer = self.filter(filter, live);
        let slots = match answer.bits? {
            Cow::Borrowed(b) => b & live,
            Cow::Owned(mut b) => {
                b &= live;
                b
            }
        };
        Some(Candidates {
            slots,
            exact: answer.exact,
        })
    }

    /// How many slots the indexes leave for `filter` (an upper bound on the
    /// matches), or `None` when no index narrows it.
    pub fn estimate(&self, filter: &Filter, live: &RoaringBitmap) -> Option<u64> {
        self.candidates(filter, live).map(|c| c.slots.len())
    }

    fn index_of(&self, key: &str) -> Option<&FieldIndex> {
        if key == INGESTED_AT_KEY {
            // Reserved: the ingestion time, never the payload's field.
            return None;
        }
        self.indexes.iter().find(|i| i.field == key)
    }

    fn condition<'a>(&'a self, c: &Condition, live: &'a RoaringBitmap) -> Answer<'a> {
        match c {
            Condition::Nested(f) => {
                let a = self.filter(f, live);
                match a.bits {
                    Some(bits) => Some((bits, a.exact)),
                    // An empty (or all-matching) nested filter holds for
                    // every live slot.
                    None if a.exact => Some((Cow::Borrowed(live), true)),
                    None => None,
                }
            }
            other => self
                .index_of(other.key().unwrap_or_default())?
                .answer(other, live),
        }
    }

    fn filter<'a>(&'a self, f: &Filter, live: &'a RoaringBitmap) -> FilterAnswer<'a> {
        let mut exact = true;
        let mut parts = Vec::with_capacity(f.must.len() + 1);
        for c in &f.must {
            match self.condition(c, live) {
                Some((bits, e)) => {
                    if bits.is_empty() {
                        // Nothing can match: that is exact whatever the rest.
                        return FilterAnswer {
                            bits: Some(bits),
                            exact: true,
                        };
                    }
                    exact &= e;
                    parts.push(bits);
                }
                None => exact = false,
            }
        }
        if !f.should.is_empty() {
            // United only when every part is answered.
            let mut sets = Vec::with_capacity(f.should.len());
            let mut should_exact = true;
            let mut answered = true;
            for c in &f.should {
                match self.condition(c, live) {
                    Some((bits, e)) => {
                        should_exact &= e;
                        sets.push(bits);
                    }
                    None => {
                        answered = false;
                        break;
                    }
                }
            }
            if answered {
                parts.push(union_all(sets));
            }
            exact &= answered && should_exact;
        }
        let mut acc = intersect_all(parts);
        for c in &f.must_not {
            match self.condition(c, live) {
                Some((bits, true)) => {
                    let base = acc.take().unwrap_or(Cow::Borrowed(live));
                    acc = Some(Cow::Owned(match base {
                        Cow::Owned(mut b) => {
                            b -= &*bits;
                            b
                        }
                        Cow::Borrowed(b) => b - &*bits,
                    }));
                }
                _ => exact = false,
            }
        }
        FilterAnswer { bits: acc, exact }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    fn filter(v: Value) -> Filter {
        Filter::parse(&v).expect("valid filter")
    }

    fn indexes(fields: &[(&str, FieldType)], payloads: &[Value]) -> PayloadIndexes {
        let mut idx = PayloadIndexes::new();
        for (f, ty) in fields {
            idx.add_field(
                f,
                *ty,
                payloads
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i as u32, Some(p))),
            );
        }
        idx
    }

    fn all(n: usize) -> RoaringBitmap {
        (0..n as u32).collect()
    }

    fn slots(c: &Option<Candidates>) -> Vec<u32> {
        c.as_ref().expect("narrowed").slots.iter().collect()
    }

    fn brute(f: &Filter, payloads: &[Value], live: &RoaringBitmap) -> RoaringBitmap {
        live.iter()
            .filter(|&s| f.matches(Some(&payloads[s as usize]), i64::from(s)))
            .collect()
    }

    #[test]
    fn keyword_and_integer_intersection() {
        let payloads = vec![
            json!({"year": 2007, "len": "long"}),
            json!({"year": 2007, "len": "short"}),
            json!({"year": 2008, "len": "long"}),
            json!({"year": 2007.0, "len": ["x", "long"]}),
            json!({"year": "2007", "len": "long"}),
        ];
        let idx = indexes(
            &[("year", FieldType::Integer), ("len", FieldType::Keyword)],
            &payloads,
        );
        let f = filter(json!({"must": [
            {"key": "year", "match": {"value": 2007}},
            {"key": "len", "match": {"value": "long"}},
        ]}));
        let c = idx.candidates(&f, &all(5));
        assert_eq!(slots(&c), vec![0, 3]);
        assert!(c.as_ref().is_some_and(|c| c.exact));
        // Dead slots are left out.
        let live: RoaringBitmap = [1, 2, 3, 4].into_iter().collect();
        assert_eq!(slots(&idx.candidates(&f, &live)), vec![3]);
        assert_eq!(idx.estimate(&f, &live), Some(1));
    }

    #[test]
    fn integer_ranges_with_float_bounds() {
        let payloads: Vec<Value> = (0..10).map(|i| json!({ "n": i })).collect();
        let idx = indexes(&[("n", FieldType::Integer)], &payloads);
        let got = |r: Value| {
            let c = idx.candidates(
                &filter(json!({"must": [{"key": "n", "range": r}]})),
                &all(10),
            );
            assert!(c.as_ref().is_some_and(|c| c.exact));
            slots(&c)
        };
        assert_eq!(got(json!({"gt": 2.5})), vec![3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(got(json!({"gte": 2.5, "lt": 5})), vec![3, 4]);
        assert_eq!(got(json!({"gt": 2, "lte": 4.9})), vec![3, 4]);
        assert_eq!(got(json!({"gte": 2, "lte": 2})), vec![2]);
        assert_eq!(got(json!({"gt": 2, "lt": 3})), Vec::<u32>::new());
        assert_eq!(got(json!({"gt": 5, "lt": 1})), Vec::<u32>::new());
        assert_eq!(got(json!({"lt": -2.5})), Vec::<u32>::new());
        assert_eq!(got(json!({"gt": -1e300})).len(), 10);
        assert_eq!(got(json!({"lt": 1e300})).len(), 10);
        assert_eq!(got(json!({"gt": 1e300})), Vec::<u32>::new());
        // Datetime bounds are not the integer index's to answer.
        let f = filter(json!({"must": [{"key": "n", "range": {"gt": "2020-01-01T00:00:00Z"}}]}));
        assert_eq!(idx.candidates(&f, &all(10)), None);
    }

    #[test]
    fn unindexed_numbers_make_answers_inexact() {
        let payloads = vec![
            json!({"n": 1, "f": 1.5}),
            json!({"n": 2.5, "f": 9_007_199_254_740_993_i64}),
            json!({"n": 3, "f": 3}),
        ];
        let idx = indexes(
            &[("n", FieldType::Integer), ("f", FieldType::Float)],
            &payloads,
        );
        let check = |f: Value, want: Vec<u32>, exact: bool| {
            let f = filter(f);
            let c = idx.candidates(&f, &all(3)).expect("narrowed");
            assert_eq!(c.slots.iter().collect::<Vec<_>>(), want, "{f:?}");
            assert_eq!(c.exact, exact, "{f:?}");
            assert!(brute(&f, &payloads, &all(3)).is_subset(&c.slots));
        };
        check(
            json!({"must": [{"key": "n", "range": {"gt": 2}}]}),
            vec![1, 2],
            false,
        );
        check(
            json!({"must": [{"key": "n", "match": {"value": 3}}]}),
            vec![2],
            true,
        );
        check(
            json!({"must": [{"key": "n", "match": {"value": 2.5}}]}),
            vec![1],
            false,
        );
        check(
            json!({"must": [{"key": "f", "match": {"value": 1.5}}]}),
            vec![0],
            true,
        );
        check(
            json!({"must": [{"key": "f", "match": {"value": 3}}]}),
            vec![2],
            true,
        );
        check(
            json!({"must": [{"key": "f", "range": {"gte": 2}}]}),
            vec![1, 2],
            false,
        );
        check(
            json!({"must": [{"key": "f", "match": {"value": 9_007_199_254_740_993_i64}}]}),
            vec![1],
            false,
        );
    }

    #[test]
    fn float_datetime_bool_indexes() {
        let payloads = vec![
            json!({"s": -0.0, "t": "2020-01-01T00:00:00Z", "b": true}),
            json!({"s": 0.5, "t": "2020-06-01T00:00:00+02:00", "b": false}),
            json!({"s": 2, "t": 1_600_000_000_000_i64, "b": [true, false]}),
            json!({"s": "2", "t": "not a date", "b": "true"}),
        ];
        let idx = indexes(
            &[
                ("s", FieldType::Float),
                ("t", FieldType::Datetime),
                ("b", FieldType::Bool),
            ],
            &payloads,
        );
        let got = |f: Value| {
            let c = idx.candidates(&filter(f), &all(4));
            assert!(c.as_ref().is_some_and(|c| c.exact));
            slots(&c)
        };
        assert_eq!(
            got(json!({"must": [{"key": "s", "match": {"value": 0}}]})),
            vec![0]
        );
        assert_eq!(
            got(json!({"must": [{"key": "s", "range": {"gte": 0.0, "lt": 2}}]})),
            vec![0, 1]
        );
        assert_eq!(
            got(json!({"must": [{"key": "s", "range": {"gt": -0.0}}]})),
            vec![1, 2]
        );
        assert_eq!(
            got(json!({"must": [{"key": "s", "range": {"gt": 1, "lt": 1}}]})),
            Vec::<u32>::new()
        );
        assert_eq!(
            got(json!({"must": [{"key": "t", "range": {"gt": "2020-01-01T00:00:00Z"}}]})),
            vec![1]
        );
        assert_eq!(
            got(json!({"must": [{"key": "t", "range": {"lte": "2020-05-31T22:00:00Z"}}]})),
            vec![0, 1]
        );
        assert_eq!(
            got(json!({"must": [{"key": "b", "match": {"value": true}}]})),
            vec![0, 2]
        );
        assert_eq!(
            got(json!({"must": [{"key": "b", "match": {"value": false}}]})),
            vec![1, 2]
        );
        assert_eq!(
            got(json!({"must": [{"key": "t", "exists": true}]})),
            vec![0, 1, 2, 3]
        );
        // Number bounds are not the datetime index's to answer.
        let f = filter(json!({"must": [{"key": "t", "range": {"gt": 0}}]}));
        assert_eq!(idx.candidates(&f, &all(4)), None);
        // Nor strings the bool index's.
        let f = filter(json!({"must": [{"key": "b", "match": {"value": "true"}}]}));
        assert_eq!(idx.candidates(&f, &all(4)), None);
    }

    #[test]
    fn what_does_not_narrow() {
        let payloads = vec![json!({"a": "x", "b": 1}), json!({"a": "y", "b": 2})];
        let idx = indexes(&[("a", FieldType::Keyword)], &payloads);
        let live = all(2);
        // No filter, unindexed keys, mismatched types.
        assert_eq!(idx.candidates(&Filter::default(), &live), None);
        assert_eq!(
            idx.candidates(
                &filter(json!({"must": [{"key": "b", "match": {"value": 1}}]})),
                &live
            ),
            None
        );
        assert_eq!(
            idx.candidates(
                &filter(json!({"must": [{"key": "a", "match": {"value": 1}}]})),
                &live
            ),
            None
        );
        assert_eq!(
            idx.candidates(
                &filter(json!({"must": [{"key": "a", "range": {"gt": 1}}]})),
                &live
            ),
            None
        );
        // A should with an unanswerable part does not narrow.
        let f = filter(json!({"should": [
            {"key": "a", "match": {"value": "x"}},
            {"key": "b", "match": {"value": 2}},
        ]}));
        assert_eq!(idx.candidates(&f, &live), None);
        // A must_not is subtracted only when exact.
        let f = filter(json!({"must_not": [{"key": "b", "match": {"value": 2}}]}));
        assert_eq!(idx.candidates(&f, &live), None);
        let f = filter(json!({"must_not": [{"key": "a", "match": {"value": "x"}}]}));
        assert_eq!(
            idx.candidates(&f, &live),
            Some(Candidates {
                slots: [1].into_iter().collect(),
                exact: true
            })
        );
        // A mix narrows inexactly.
        let f = filter(json!({"must": [
            {"key": "a", "match": {"value": "x"}},
            {"key": "b", "match": {"value": 2}},
        ]}));
        assert_eq!(
            idx.candidates(&f, &live),
            Some(Candidates {
                slots: [0].into_iter().collect(),
                exact: false
            })
        );
        // No index at all.
        assert_eq!(PayloadIndexes::new().candidates(&f, &live), None);
    }

    #[test]
    fn ingested_at_is_not_a_payload_field() {
        let payloads = vec![json!({ INGESTED_AT_KEY: 5 }), json!({ INGESTED_AT_KEY: 6 })];
        let idx = indexes(&[(INGESTED_AT_KEY, FieldType::Integer)], &payloads);
        let f = filter(json!({"must": [{"key": INGESTED_AT_KEY, "match": {"value": 5}}]}));
        assert_eq!(idx.candidates(&f, &all(2)), None);
    }

    #[test]
    fn exists_is_null_and_nesting() {
        let payloads = vec![
            json!({"a": "x"}),
            json!({"a": null}),
            json!({}),
            json!({"a": []}),
            json!({"a": [null, 3]}),
        ];
        let idx = indexes(&[("a", FieldType::Keyword)], &payloads);
        let live = all(5);
        let got = |f: Value| {
            let c = idx.candidates(&filter(f), &live);
            assert!(c.as_ref().is_some_and(|c| c.exact));
            slots(&c)
        };
        assert_eq!(
            got(json!({"must": [{"key": "a", "exists": true}]})),
            vec![0, 4]
        );
        assert_eq!(
            got(json!({"must": [{"key": "a", "exists": false}]})),
            vec![1, 2, 3]
        );
        assert_eq!(got(json!({"must": [{"is_null": "a"}]})), vec![1, 4]);
        assert_eq!(got(json!({"must_not": [{"is_null": "a"}]})), vec![0, 2, 3]);
        assert_eq!(
            got(json!({"should": [
                {"key": "a", "match": {"value": "x"}},
                {"must": [{"is_null": "a"}], "must_not": [{"key": "a", "exists": true}]},
            ]})),
            vec![0, 1]
        );
        // An empty nested filter holds everywhere; under must_not nowhere.
        assert_eq!(got(json!({"must": [{"must": []}]})), vec![0, 1, 2, 3, 4]);
        assert_eq!(got(json!({"must_not": [{"must": []}]})), Vec::<u32>::new());
    }

    #[test]
    fn insert_remove_and_redeclare() {
        let mut idx = PayloadIndexes::new();
        idx.add_field("k", FieldType::Keyword, std::iter::empty());
        assert_eq!(idx.fields(), vec![("k".to_owned(), FieldType::Keyword)]);
        let a = json!({"k": ["a", "b"], "n": 1});
        let b = json!({"k": "a", "n": 2.5});
        idx.insert(0, Some(&a));
        idx.insert(1, Some(&b));
        idx.insert(2, None);
        let f = filter(json!({"must": [{"key": "k", "match": {"value": "a"}}]}));
        let live = all(3);
        assert_eq!(slots(&idx.candidates(&f, &live)), vec![0, 1]);
        idx.remove(0, Some(&a));
        assert_eq!(slots(&idx.candidates(&f, &live)), vec![1]);
        let fb = filter(json!({"must": [{"key": "k", "match": {"value": "b"}}]}));
        assert_eq!(slots(&idx.candidates(&fb, &live)), Vec::<u32>::new());
        // Declaring a field fills it from the existing points.
        let points = [(1, Some(&b)), (2, None)];
        idx.add_field("n", FieldType::Integer, points.into_iter());
        let fields = idx.fields();
        assert_eq!(fields.len(), 2);
        let fn_ = filter(json!({"must": [{"key": "n", "range": {"gt": 2}}]}));
        let c = idx.candidates(&fn_, &live).expect("narrowed");
        assert_eq!(
            (c.slots.iter().collect::<Vec<_>>(), c.exact),
            (vec![1], false)
        );
        idx.remove(1, Some(&b));
        let c = idx.candidates(&fn_, &live).expect("narrowed");
        assert_eq!((c.slots.len(), c.exact), (0, true));
        // Redeclaring replaces.
        idx.add_field("n", FieldType::Float, std::iter::empty());
        assert_eq!(idx.fields().len(), 2);
        assert!(idx.fields().contains(&("n".to_owned(), FieldType::Float)));
        assert!(idx.remove_field("n"));
        assert!(!idx.remove_field("n"));
        assert_eq!(idx.fields(), vec![("k".to_owned(), FieldType::Keyword)]);
    }

    // ---- randomised comparison with `Filter::matches` ----

    const DATES: [&str; 6] = [
        "2020-01-01T00:00:00Z",
        "2020-01-01T01:00:00+01:00",
        "2020-06-15T12:30:00.250Z",
        "2021-03-01T00:00:00-05:00",
        "2019-12-31T23:59:59.999Z",
        "2022-02-02T02:02:02Z",
    ];

    fn pick<T: Clone>(rng: &mut StdRng, xs: &[T]) -> T {
        xs[rng.random_range(0..xs.len())].clone()
    }

    fn rand_scalar(rng: &mut StdRng) -> Value {
        match rng.random_range(0..12) {
            0..=2 => json!(rng.random_range(1998..2004)),
            3 => json!(pick(rng, &[2000.0, 2000.5, -0.0, 0.0, 1.5, 2.25])),
            4 => json!(pick(rng, &[9_007_199_254_740_993_i64, i64::MAX, -3])),
            5 => json!(u64::MAX),
            6..=7 => json!(pick(rng, &["a", "b", "c", "2001"])),
            8 => json!(pick(rng, &DATES)),
            9 => json!(rng.random_bool(0.5)),
            10 => Value::Null,
            _ => json!(pick(rng, &[0.5, 1.0, 2.0, 3.0])),
        }
    }

    fn rand_value(rng: &mut StdRng, depth: usize) -> Value {
        match rng.random_range(0..10) {
            0 if depth < 2 => {
                let n = rng.random_range(0..3);
                Value::Array((0..n).map(|_| rand_value(rng, depth + 1)).collect())
            }
            1 if depth < 2 => json!({ "x": rand_value(rng, depth + 1) }),
            _ => rand_scalar(rng),
        }
    }

    const KEYS: [&str; 8] = [
        "year",
        "tag",
        "score",
        "ts",
        "flag",
        "obj.x",
        "other",
        INGESTED_AT_KEY,
    ];

    fn rand_payload(rng: &mut StdRng) -> Value {
        let mut m = serde_json::Map::new();
        for key in [
            "year",
            "tag",
            "score",
            "ts",
            "flag",
            "other",
            INGESTED_AT_KEY,
        ] {
            if rng.random_bool(0.8) {
                m.insert(key.to_owned(), rand_value(rng, 0));
            }
        }
        if rng.random_bool(0.7) {
            let obj = if rng.random_bool(0.3) {
                json!([{ "x": rand_scalar(rng) }, { "x": rand_scalar(rng) }])
            } else {
                json!({ "x": rand_value(rng, 1) })
            };
            m.insert("obj".to_owned(), obj);
        }
        Value::Object(m)
    }

    fn rand_bound(rng: &mut StdRng, datetime: bool) -> Value {
        if datetime {
            json!(pick(rng, &DATES))
        } else {
            let year = rng.random_range(1997..2005);
            json!(pick(
                rng,
                &[
                    json!(year),
                    json!(1999.5),
                    json!(0),
                    json!(-0.0),
                    json!(0.5),
                    json!(2.25),
                    json!(9_007_199_254_740_992.0),
                    json!(1e300),
                    json!(-1e300),
                ]
            ))
        }
    }

    fn rand_condition(rng: &mut StdRng, depth: usize) -> Value {
        let key = pick(rng, &KEYS);
        let scalar = |rng: &mut StdRng| loop {
            let v = rand_scalar(rng);
            if !v.is_null() {
                return v;
            }
        };
        match rng.random_range(0..12) {
            0..=2 => json!({"key": key, "match": {"value": scalar(rng)}}),
            3 => {
                let n = rng.random_range(1..4);
                let any: Vec<Value> = (0..n).map(|_| scalar(rng)).collect();
                json!({"key": key, "match": {"any": any}})
            }
            4..=6 => {
                let datetime = rng.random_bool(0.3);
                let mut r = serde_json::Map::new();
                for b in ["gt", "gte", "lt", "lte"] {
                    if rng.random_bool(0.4) {
                        r.insert(b.to_owned(), rand_bound(rng, datetime));
                    }
                }
                if r.is_empty() {
                    r.insert("gte".to_owned(), rand_bound(rng, datetime));
                }
                json!({"key": key, "range": r})
            }
            7 => json!({"key": key, "exists": rng.random_bool(0.5)}),
            8 => json!({ "is_null": key }),
            _ if depth < 2 => rand_filter(rng, depth + 1),
            _ => json!({"key": key, "exists": true}),
        }
    }

    fn rand_filter(rng: &mut StdRng, depth: usize) -> Value {
        let mut m = serde_json::Map::new();
        for (part, max) in [("must", 3), ("should", 3), ("must_not", 2)] {
            let n = rng.random_range(0..=max);
            if n > 0 {
                let cs: Vec<Value> = (0..n).map(|_| rand_condition(rng, depth)).collect();
                m.insert(part.to_owned(), Value::Array(cs));
            }
        }
        if m.is_empty() && depth > 1 {
            // `{}` is not a condition; an empty nested filter is.
            m.insert("must".to_owned(), json!([]));
        }
        Value::Object(m)
    }

    const FIELDS: [(&str, FieldType); 7] = [
        ("year", FieldType::Integer),
        ("tag", FieldType::Keyword),
        ("score", FieldType::Float),
        ("ts", FieldType::Datetime),
        ("flag", FieldType::Bool),
        ("obj.x", FieldType::Integer),
        (INGESTED_AT_KEY, FieldType::Integer),
    ];

    #[derive(Default, Debug)]
    struct Stats {
        none: usize,
        exact: usize,
        inexact: usize,
    }

    fn compare(
        idx: &PayloadIndexes,
        payloads: &[Value],
        live: &RoaringBitmap,
        f: &Filter,
        stats: &mut Stats,
    ) {
        let want = brute(f, payloads, live);
        match idx.candidates(f, live) {
            None => stats.none += 1,
            Some(c) => {
                assert!(c.slots.is_subset(live), "{f:?}");
                assert!(
                    want.is_subset(&c.slots),
                    "missing {:?} for {}",
                    (&want - &c.slots).iter().collect::<Vec<_>>(),
                    f.to_json()
                );
                if c.exact {
                    stats.exact += 1;
                    assert_eq!(
                        c.slots.iter().collect::<Vec<_>>(),
                        want.iter().collect::<Vec<_>>(),
                        "exact answer differs for {}",
                        f.to_json()
                    );
                } else {
                    stats.inexact += 1;
                }
            }
        }
    }

    #[test]
    fn random_filters_agree_with_matches() {
        let mut rng = StdRng::seed_from_u64(0x0057_47a7);
        let mut stats = Stats::default();
        for round in 0..40 {
            let n = rng.random_range(1..200);
            let mut payloads: Vec<Value> = (0..n).map(|_| rand_payload(&mut rng)).collect();
            // Half the fields are declared up front, half after the points.
            let mut idx = PayloadIndexes::new();
            let (early, late) = FIELDS.split_at(round % FIELDS.len());
            for (f, ty) in early {
                idx.add_field(f, *ty, std::iter::empty());
            }
            for (slot, p) in payloads.iter().enumerate() {
                idx.insert(slot as u32, Some(p));
            }
            for (f, ty) in late {
                idx.add_field(
                    f,
                    *ty,
                    payloads
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i as u32, Some(p))),
                );
            }
            // Rewrite some points: remove, then insert a new payload.
            for _ in 0..n / 4 {
                let slot = rng.random_range(0..n);
                idx.remove(slot as u32, Some(&payloads[slot]));
                payloads[slot] = rand_payload(&mut rng);
                idx.insert(slot as u32, Some(&payloads[slot]));
            }
            // Some slots are dead (still indexed, or removed).
            let mut live = RoaringBitmap::new();
            for (slot, payload) in payloads.iter_mut().enumerate() {
                match rng.random_range(0..10) {
                    0 => {}
                    1 => {
                        idx.remove(slot as u32, Some(payload));
                        *payload = json!({});
                    }
                    _ => {
                        live.insert(slot as u32);
                    }
                }
            }
            for _ in 0..100 {
                let f = filter(rand_filter(&mut rng, 1));
                compare(&idx, &payloads, &live, &f, &mut stats);
            }
        }
        // The comparison means something only if the indexes answer.
        assert!(stats.exact > 150, "{stats:?}");
        assert!(stats.inexact > 500, "{stats:?}");
        assert!(stats.none > 200, "{stats:?}");
    }

    #[test]
    fn random_typical_filters_are_exact() {
        let mut rng = StdRng::seed_from_u64(7);
        let payloads: Vec<Value> = (0..2000)
            .map(|_| {
                json!({
                    "year": rng.random_range(1995..2010),
                    "len_bucket": pick(&mut rng, &["short", "medium", "long"]),
                    "module_top": pick(&mut rng, &["os", "sys", "multiprocessing", "json"]),
                })
            })
            .collect();
        let idx = indexes(
            &[
                ("year", FieldType::Integer),
                ("len_bucket", FieldType::Keyword),
                ("module_top", FieldType::Keyword),
            ],
            &payloads,
        );
        let live = all(payloads.len());
        for f in [
            json!({"must": [{"key": "year", "match": {"value": 2007}}, {"key": "len_bucket", "match": {"value": "long"}}]}),
            json!({"must": [{"key": "year", "range": {"gte": 2000, "lte": 2002}}]}),
            json!({"must": [{"key": "module_top", "match": {"value": "multiprocessing"}}]}),
            json!({"should": [{"key": "module_top", "match": {"any": ["os", "sys"]}}], "must_not": [{"key": "year", "range": {"lt": 2000}}]}),
        ] {
            let f = filter(f);
            let c = idx.candidates(&f, &live).expect("narrowed");
            assert!(c.exact);
            assert_eq!(c.slots, brute(&f, &payloads, &live));
            assert!(!c.slots.is_empty());
        }
    }
}
