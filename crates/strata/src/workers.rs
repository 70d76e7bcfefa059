//! Background workers and the supervisor that keeps them running.
//!
//! `strata serve` runs the janitor, the knowledge-base indexer and the
//! conversation-memory embedder (and the bot purger) as supervised tasks
//! ([`Strata::start_workers`]). A worker whose task ends — it panicked, or
//! returned an error it could not get past — is started again after a
//! backoff (0.5 s doubling to 30 s; back to 0.5 s once it ran a minute), and
//! its state (running / restarting, restarts, last error, queue depth, age
//! of the oldest pending job) is reported by [`Strata::worker_report`] in
//! `/ready` and `/metrics`. [`WorkerSet::shutdown`] cancels them all and
//! waits a bounded time: a knowledge-base job cut short is put back in its
//! queue and resumes at the next start, so stopping never waits for a large
//! document.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::worker::{QueueStats, WorkerSnapshot, WorkerState};
use strata_core::Result;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Strata;

/// First wait before a restart.
const RESTART_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait before a restart.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);
/// A worker that ran this long starts its next backoff from the beginning.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// One worker as `/ready` and `/metrics` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerReport {
    pub name: &'static str,
    pub state: WorkerSnapshot,
    /// `None` for workers without a queue (the janitor) or when the queue
    /// could not be read (then `queue_error` says why).
    pub queue: Option<QueueStats>,
    pub queue_error: Option<String>,
}

/// The running workers of one server.
#[derive(Debug)]
pub struct WorkerSet {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl WorkerSet {
    /// Cancels every worker and waits at most `timeout` for them to stop.
    /// Returns the names of those that had not stopped in time (their
    /// tasks are abandoned; their work is durable and resumes at start).
    pub async fn shutdown(self, timeout: Duration) -> Vec<&'static str> {
        self.stop.cancel();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut late = Vec::new();
        for (name, task) in self.tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                late.push(name);
            }
        }
        late
    }
}

/// The text of a panic payload.
fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return format!("the worker's task was cancelled: {e}");
    }
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("the worker panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("the worker panicked: {s}")
    } else {
        "the worker panicked".to_owned()
    }
}

/// Runs `run` until `stop` is cancelled, starting it again with backoff
/// whenever its task ends by itself.
pub async fn supervise<F, Fut>(state: Arc<WorkerState>, stop: CancellationToken, run: F)
where
    F: Fn(CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let name = state.name();
    let mut backoff = RESTART_BACKOFF;
    loop {
        let started = Instant::now();
        let outcome = tokio::spawn(run(stop.child_token())).await;
        if stop.is_cancelled() {
            state.stopped();
            return;
        }
        let why = match outcome {
            Ok(Ok(())) => "the worker stopped by itself".to_owned(),
            Ok(Err(e)) => format!("the worker failed: {e}"),
            Err(e) => panic_text(e),
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = RESTART_BACKOFF;
        }
        state.restarting(&why);
        tracing::error!(worker = name, error = %why, restart_in_ms = backoff.as_millis() as u64, "a background worker stopped; starting it again");
        tokio::select! {
            _ = stop.cancelled() => {
                state.stopped();
                return;
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
    }
}

impl Strata {
    /// Starts the janitor (every `janitor_every`), the knowledge-base
    /// indexer, the memory embedder and the bot purger, each supervised.
    pub fn start_workers(&self, janitor_every: Duration) -> WorkerSet {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let s = self.clone();
        tasks.push((
            "janitor",
            tokio::spawn(supervise(
                self.inner.janitor_state.clone(),
                stop.clone(),
                move |stop| s.clone().run_janitor(janitor_every, stop),
            )),
        ));
        let s = self.clone();
        tasks.push((
            "bot_purger",
            tokio::spawn(supervise(
                self.inner.purge_state.clone(),
                stop.clone(),
                move |stop| s.clone().run_bot_purger(stop),
            )),
        ));
        if let Some(kb) = self.inner.kb.clone() {
            let state = kb.worker_state().clone();
            tasks.push((
                "kb",
                tokio::spawn(supervise(state, stop.clone(), move |stop| {
                    kb.clone().run_worker(stop)
                })),
            ));
        }
        if let Some(memory) = self.inner.memory.clone() {
            let state = memory.worker_state().clone();
            tasks.push((
                "memory",
                tokio::spawn(supervise(state, stop.clone(), move |stop| {
                    memory.clone().run_worker(stop)
                })),
            ));
        }
        WorkerSet { stop, tasks }
    }

    /// Every worker's state, with its queue where it has one.
    pub async fn worker_report(&self) -> Vec<WorkerReport> {
        let mut out = vec![WorkerReport {
            name: "janitor",
            state: self.inner.janitor_state.snapshot(),
            queue: None,
            queue_error: None,
        }];
        let (queue, queue_error) = split(self.inner.records.bots_to_purge().await.map(|b| {
            QueueStats {
                depth: b.len() as u64,
                oldest_age_seconds: b
                    .first()
                    .map(|(_, at)| {
                        (crate::Timestamp::now().as_millis() - at.as_millis()).max(0) as f64
                            / 1000.0
                    })
                    .unwrap_or(0.0),
            }
        }));
        out.push(WorkerReport {
            name: "bot_purger",
            state: self.inner.purge_state.snapshot(),
            queue,
            queue_error,
        });
        if let Some(kb) = &self.inner.kb {
            let (queue, queue_error) = split(kb.queue_stats().await);
            out.push(WorkerReport {
                name: "kb",
                state: kb.worker_state().snapshot(),
                queue,
                queue_error,
            });
        }
        if let Some(memory) = &self.inner.memory {
            let (queue, queue_error) = split(memory.queue_stats().await);
            out.push(WorkerReport {
                name: "memory",
                state: memory.worker_state().snapshot(),
                queue,
                queue_error,
            });
        }
        out
    }
}

fn split(r: Result<QueueStats>) -> (Option<QueueStats>, Option<String>) {
    match r {
        Ok(q) => (Some(q), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use strata_core::worker::WorkerPhase;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_worker_is_restarted_with_backoff_and_reported() {
        let state = Arc::new(WorkerState::new("test"));
        let stop = CancellationToken::new();
        let starts = Arc::new(AtomicU32::new(0));
        let s = starts.clone();
        let task = tokio::spawn(supervise(state.clone(), stop.clone(), move |stop| {
            let n = s.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => panic!("boom"),
                    1 => Err(strata_core::Error::unavailable("database gone")),
                    _ => {
                        stop.cancelled().await;
                        Ok(())
                    }
                }
            }
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let snap = state.snapshot();
        assert_eq!(snap.phase, WorkerPhase::Restarting);
        assert!(
            snap.last_error
                .as_ref()
                .is_some_and(|e| e.1.contains("panicked: boom")),
            "{snap:?}"
        );
        // 0.5 s, then 1 s of backoff: the third start runs for good.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        let snap = state.snapshot();
        assert_eq!(snap.restarts, 2);
        assert!(snap
            .last_error
            .as_ref()
            .is_some_and(|e| e.1.contains("database gone")));
        stop.cancel();
        task.await.expect("supervisor ends");
        assert_eq!(state.snapshot().phase, WorkerPhase::Stopped);
    }
}
