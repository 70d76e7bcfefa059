//! Payload indexes: per declared field, a map from values to the slots that
//! hold them, so a filter can be turned into a candidate set without looking
//! at every payload.

use roaring::RoaringBitmap;
use serde_json::Value;
use strata_core::filter::Filter;
use strata_core::vectors::FieldType;

/// The slots a filter may match, computed from the payload indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// Every slot that matches is in here (a superset when `exact` is false).
    pub slots: RoaringBitmap,
    /// Whether every slot in `slots` is known to match, so the payloads need
    /// not be checked.
    pub exact: bool,
}

/// The payload indexes of one collection.
#[derive(Debug, Default)]
pub struct PayloadIndexes {}

impl PayloadIndexes {
    pub fn new() -> Self {
        PayloadIndexes {}
    }

    /// Declares an index and fills it from the existing points.
    pub fn add_field<'a>(
        &mut self,
        _field: &str,
        _ty: FieldType,
        _points: impl Iterator<Item = (u32, Option<&'a Value>)>,
    ) {
    }

    /// The declared indexes.
    pub fn fields(&self) -> Vec<(String, FieldType)> {
        Vec::new()
    }

    /// Adds a slot's payload to every index.
    pub fn insert(&mut self, _slot: u32, _payload: Option<&Value>) {}

    /// Removes a slot's payload (the same payload it was inserted with).
    pub fn remove(&mut self, _slot: u32, _payload: Option<&Value>) {}

    /// The candidate slots of `filter` among `live` slots, or `None` when no
    /// index narrows it (the caller then checks every live payload).
    pub fn candidates(&self, _filter: &Filter, _live: &RoaringBitmap) -> Option<Candidates> {
        None
    }
}
