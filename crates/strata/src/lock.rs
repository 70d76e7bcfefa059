//! The data-folder lock: one process per embedded data folder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use strata_core::{Error, ErrorKind, Result};

/// Holds `<data>/strata.lock` exclusively until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates the folder if needed and takes its lock, or fails with a clear
    /// message naming the folder and the holder's pid.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot create data folder {}", dir.display()),
            )
            .with_source(e)
        })?;
        let path = dir.join("strata.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot open {}", path.display()),
                )
                .with_source(e)
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "data folder {} is in use by another strata process{}; stop it first or use another STRATA_DATA_DIR",
                        dir.display(),
                        if holder.is_empty() { String::new() } else { format!(" (pid {holder})") }
                    ),
                )
                .with_code("data_dir_locked"));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot lock {}", path.display()),
                )
                .with_source(e));
            }
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_first_drops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first");
        let err = DataDirLock::acquire(dir.path()).expect_err("second must fail");
        assert_eq!(err.code(), "data_dir_locked");
        assert!(err.message().contains("in use"), "{}", err.message());
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again");
    }
}
