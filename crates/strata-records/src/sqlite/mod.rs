//! The SQLite backend of the records layer.

mod db;
mod records;

pub use db::{
    free_bytes, map_sqlite_error, migration_checksum, Durability, Migration, SqliteDatabase,
    SqliteOptions, DEFAULT_MIN_FREE_BYTES, MIGRATIONS,
};
pub use records::SqliteRecords;
