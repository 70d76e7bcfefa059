//! Strata's core: the domain types every layer shares, the layer traits that
//! backends implement, and the one error type that crosses crate boundaries.
//!
//! Nothing in here talks to a database, a socket or a file. Backends live in
//! their layer crates (`strata-records`, `strata-kv`, …) and are opened by the
//! facade crate `strata`.

pub mod cache;
pub mod drive;
pub mod embed;
pub mod error;
pub mod filter;
pub mod kv;
pub mod page;
pub mod rate;
pub mod records;
pub mod redact;
pub mod time;
pub mod types;
pub mod vectors;
pub mod worker;

pub use error::{Error, ErrorKind, Result};
pub use page::{Cursor, Page, PageRequest};
pub use time::Timestamp;
