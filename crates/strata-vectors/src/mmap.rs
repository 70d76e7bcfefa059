//! Read-only memory maps of index snapshots, so a restart serves searches
//! without first copying every vector into memory.
//!
//! Mapping a file is `unsafe` because another process could change the file
//! under the map. Snapshot files are never modified in place: a new snapshot
//! is written to a temporary file and renamed over the old one (the old inode
//! lives on, unchanged, while it is mapped), and the data folder is locked to
//! one Strata process. That is the invariant that makes this sound.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// A read-only map of a whole file.
pub type Map = Arc<memmap2::Mmap>;

/// Maps `path` read-only.
pub fn map(path: &Path) -> std::io::Result<Map> {
    let file = File::open(path)?;
    // SAFETY: see the module documentation — snapshot files are immutable
    // once renamed into place, and only this process writes the folder.
    let m = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Arc::new(m))
}
