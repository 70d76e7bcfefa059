//! The live state of a background worker (knowledge-base indexing,
//! conversation memory, the janitor, the bot purger), shared between the
//! worker, the supervisor that restarts it and whoever reports it
//! (`/ready`, `/metrics`).
//!
//! A worker reports what it is doing with [`WorkerState::running`],
//! [`WorkerState::failed`] (an error it survived: a job that failed, a
//! claim that did not reach the database) and [`WorkerState::progress`]; the
//! supervisor reports [`WorkerState::restarting`] when the worker's task
//! ended (a panic, or an error it returned) and it waits to start it again.

use std::sync::Mutex;

use crate::Timestamp;

/// What a worker is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerPhase {
    /// Not started yet.
    Starting,
    /// Its loop is running (working or waiting for work).
    Running,
    /// Its task ended (panicked or failed); the supervisor starts it again
    /// after a backoff.
    Restarting,
    /// Stopped at shutdown.
    Stopped,
}

impl WorkerPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerPhase::Starting => "starting",
            WorkerPhase::Running => "running",
            WorkerPhase::Restarting => "restarting",
            WorkerPhase::Stopped => "stopped",
        }
    }
}

/// A copy of a worker's state at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSnapshot {
    pub phase: WorkerPhase,
    /// Times the supervisor started the worker again.
    pub restarts: u64,
    /// Errors reported since start (failed jobs, failed claims, panics).
    pub errors: u64,
    /// The last error and when it happened; cleared by the next success.
    pub last_error: Option<(Timestamp, String)>,
    /// When the worker last finished a unit of work.
    pub last_progress: Option<Timestamp>,
}

/// A worker's shared state. Cheap to update; never blocks for long.
#[derive(Debug)]
pub struct WorkerState {
    name: &'static str,
    inner: Mutex<WorkerSnapshot>,
}

impl WorkerState {
    pub fn new(name: &'static str) -> Self {
        WorkerState {
            name,
            inner: Mutex::new(WorkerSnapshot {
                phase: WorkerPhase::Starting,
                restarts: 0,
                errors: 0,
                last_error: None,
                last_progress: None,
            }),
        }
    }

    /// The worker's name (`kb`, `memory`, `janitor`, …).
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn update(&self, f: impl FnOnce(&mut WorkerSnapshot)) {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g);
    }

    /// The worker's loop runs.
    pub fn running(&self) {
        self.update(|s| s.phase = WorkerPhase::Running);
    }

    /// The worker survived an error (it goes on).
    pub fn failed(&self, error: impl std::fmt::Display) {
        let message = error.to_string();
        self.update(|s| {
            s.errors += 1;
            s.last_error = Some((Timestamp::now(), message));
        });
    }

    /// A unit of work succeeded: the last error is over.
    pub fn progress(&self) {
        self.update(|s| {
            s.last_progress = Some(Timestamp::now());
            s.last_error = None;
        });
    }

    /// The worker's task ended with `error`; it is started again later.
    pub fn restarting(&self, error: impl std::fmt::Display) {
        let message = error.to_string();
        self.update(|s| {
            s.phase = WorkerPhase::Restarting;
            s.errors += 1;
            s.restarts += 1;
            s.last_error = Some((Timestamp::now(), message));
        });
    }

    /// Stopped at shutdown.
    pub fn stopped(&self) {
        self.update(|s| s.phase = WorkerPhase::Stopped);
    }

    pub fn snapshot(&self) -> WorkerSnapshot {
        match self.inner.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// A worker's queue: how much waits and for how long the oldest has waited.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueStats {
    /// Jobs (or rows) not done yet, running ones included.
    pub depth: u64,
    /// Age of the oldest of them, in seconds (0 when empty).
    pub oldest_age_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_kept_until_progress() {
        let w = WorkerState::new("kb");
        assert_eq!(w.snapshot().phase, WorkerPhase::Starting);
        w.running();
        w.failed("embedder down");
        let s = w.snapshot();
        assert_eq!(s.errors, 1);
        assert_eq!(
            s.last_error.as_ref().map(|e| e.1.as_str()),
            Some("embedder down")
        );
        w.progress();
        assert!(w.snapshot().last_error.is_none());
        w.restarting("panicked: boom");
        let s = w.snapshot();
        assert_eq!(
            (s.phase, s.restarts, s.errors),
            (WorkerPhase::Restarting, 1, 2)
        );
    }
}

/// Whether a store can write, as its last writes showed: a failed write
/// (disk full, I/O error, read-only file system) marks it unable to write
/// until a later write succeeds. Readiness reports it, so a load balancer
/// stops sending writes to a server whose disk is full.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failure: Mutex<Option<(Timestamp, String)>>,
}

impl WriteHealth {
    pub fn new() -> Self {
        Self::default()
    }

    /// A write failed in a way that says the store cannot write.
    pub fn failed(&self, error: impl std::fmt::Display) {
        let message = error.to_string();
        if let Ok(mut g) = self.failure.lock() {
            *g = Some((Timestamp::now(), message));
        }
    }

    /// A write succeeded.
    pub fn succeeded(&self) {
        if let Ok(mut g) = self.failure.lock() {
            if g.is_some() {
                *g = None;
            }
        }
    }

    /// The last failure, unless a write succeeded since.
    pub fn failure(&self) -> Option<(Timestamp, String)> {
        self.failure.lock().ok().and_then(|g| g.clone())
    }
}
