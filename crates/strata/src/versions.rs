//! Versions of conversation histories, for caches of what a history read
//! returns.
//!
//! A reader takes [`HistoryVersions::current`] *before* it reads the store
//! and may cache what it read under that version; a writer calls
//! [`HistoryVersions::bump`] *after* its commit and before it answers. A
//! cached entry is served only while its version is still current, so no
//! client ever reads something older than a write it was told succeeded: a
//! reader that raced a write cached its result under a version that the
//! write has already replaced.
//!
//! Versions are per process, which is exact for the embedded default (one
//! process per data folder). Deployments with several processes share them
//! through the cache layer (planned).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use strata_core::types::BotId;

/// Above this many tracked conversations the table is cleared (which only
/// costs cache misses: an untracked conversation gets a fresh version).
const MAX_TRACKED: usize = 200_000;

/// The version of one conversation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryVersion {
    epoch: u64,
    conversation: u64,
}

/// The versions of every conversation this process has seen.
#[derive(Debug, Default)]
pub(crate) struct HistoryVersions {
    clock: AtomicU64,
    epoch: AtomicU64,
    conversations: Mutex<HashMap<(BotId, String), u64>>,
}

impl HistoryVersions {
    /// The current version of `conv`'s history.
    pub(crate) fn current(&self, bot: &BotId, conv: &str) -> HistoryVersion {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let conversation = match self.conversations.lock() {
            Ok(mut map) => {
                if let Some(v) = map.get(&(bot.clone(), conv.to_owned())) {
                    *v
                } else {
                    if map.len() >= MAX_TRACKED {
                        map.clear();
                    }
                    let v = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
                    map.insert((bot.clone(), conv.to_owned()), v);
                    v
                }
            }
            // A poisoned table never matches a cached entry.
            Err(_) => self.clock.fetch_add(1, Ordering::SeqCst) + 1,
        };
        HistoryVersion {
            epoch,
            conversation,
        }
    }

    /// Marks `conv`'s history changed.
    pub(crate) fn bump(&self, bot: &BotId, conv: &str) {
        let v = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut map) = self.conversations.lock() {
            map.insert((bot.clone(), conv.to_owned()), v);
        }
    }

    /// Marks every history changed (deletes that cascade over many).
    pub(crate) fn bump_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_change_the_version_and_reads_do_not() {
        let v = HistoryVersions::default();
        let bot = BotId::parse("b").expect("id");
        let a1 = v.current(&bot, "a");
        assert_eq!(
            v.current(&bot, "a"),
            a1,
            "reading does not change the version"
        );
        let b1 = v.current(&bot, "b");
        v.bump(&bot, "a");
        let a2 = v.current(&bot, "a");
        assert_ne!(a1, a2);
        assert_eq!(v.current(&bot, "b"), b1, "other conversations keep theirs");
        v.bump_all();
        assert_ne!(v.current(&bot, "b"), b1);
        assert_ne!(v.current(&bot, "a"), a2);
    }
}
