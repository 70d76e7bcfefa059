//! The SQLite backend of the records layer.

mod db;
mod records;

pub use db::{map_sqlite_error, Durability, SqliteDatabase, SqliteOptions};
pub use records::SqliteRecords;
