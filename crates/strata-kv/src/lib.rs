//! Strata's key-value layer: opaque keys to bytes, one keyspace per
//! namespace (the bot), with optional TTLs.
//!
//! The trait and its contract are [`strata_core::kv::KvStore`]; this crate
//! holds its embedded backends and the behaviour suite every backend passes:
//!
//! | backend        | type         | storage                                            |
//! |----------------|--------------|----------------------------------------------------|
//! | `memory`       | [`MemoryKv`] | a `BTreeMap` per namespace, lost at exit           |
//! | `sqlite`       | [`SqliteKv`] | the `kv` table of the shared [`SqliteDatabase`](strata_records::SqliteDatabase) |
//!
//! [`behavior`] is backend-agnostic: it only talks to `&dyn KvStore`, so a
//! new backend is done when every behaviour [`behavior::for_each_behavior!`]
//! lists passes against it (`tests/behavior.rs` makes one test of each).
//!
//! ```
//! use bytes::Bytes;
//! use strata_core::kv::{KvStore, SetOptions};
//! use strata_kv::MemoryKv;
//!
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(async {
//! let kv = MemoryKv::new();
//! kv.set("bot-1", "greeting", Bytes::from_static(b"hello"), SetOptions::default())
//!     .await
//!     .expect("set");
//! assert_eq!(kv.get("bot-1", "greeting").await.expect("get").as_deref(), Some(&b"hello"[..]));
//! assert_eq!(kv.get("bot-2", "greeting").await.expect("get"), None);
//! # });
//! ```

pub mod behavior;
mod contract;
pub mod memory;
pub mod sqlite;

pub use memory::MemoryKv;
pub use sqlite::SqliteKv;
