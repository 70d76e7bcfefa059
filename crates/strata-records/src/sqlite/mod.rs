//! The SQLite backend of the records layer.

mod db;
mod records;

pub use db::{map_sqlx_error, Durability, SqliteDatabase, SqliteOptions};
pub use records::SqliteRecords;
