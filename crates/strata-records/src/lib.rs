//! Strata's records layer: the authoritative store of bots, API keys, users,
//! groups, sessions, conversations, messages, presets, tool logs, bot
//! configuration and audit events.
//!
//! The trait is [`strata_core::records::RecordStore`]; this crate holds its
//! backends. The embedded default is [`sqlite::SqliteRecords`] over a
//! [`sqlite::SqliteDatabase`], which the kv layer shares.

pub mod behavior;
pub mod sqlite;

pub use sqlite::{
    migration_checksum, Durability, Migration, SqliteDatabase, SqliteOptions, SqliteRecords,
    MIGRATIONS,
};
