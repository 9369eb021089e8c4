//! The daemon: cycles on an interval until an injected shutdown future fires.
//!
//! The shutdown future is a parameter (the binary passes SIGINT/SIGTERM,
//! tests pass a channel), so the loop is tested under tokio's paused clock.
//! On shutdown no new cycle starts; a cycle in progress gets a bounded grace
//! period to finish its in-flight lookups and sends, then is dropped. Anything
//! dropped mid-send stays a pending intent in the outbox, never half-written.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Default time between cycle starts.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Default time a running cycle gets to finish after a shutdown signal:
/// long enough for in-flight requests to hit their own timeouts.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How the daemon loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonExit {
    /// Shut down between cycles, or the last cycle finished within the grace period.
    Clean,
    /// The grace period ran out and the running cycle was dropped.
    GraceExpired,
}

/// Runs `cycle` every `interval` (measured start to start; a cycle longer
/// than the interval is followed immediately by the next) until `shutdown`.
pub async fn run<C, F, S>(
    interval: Duration,
    grace: Duration,
    mut cycle: C,
    shutdown: S,
) -> DaemonExit
where
    C: FnMut() -> F,
    F: Future<Output = ()>,
    S: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    loop {
        let started = Instant::now();
        let running = cycle();
        tokio::pin!(running);
        tokio::select! {
            () = &mut running => {}
            () = &mut shutdown => {
                tracing::info!(grace = ?grace, "shutting down: letting the running cycle finish");
                return match tokio::time::timeout(grace, running).await {
                    Ok(()) => DaemonExit::Clean,
                    Err(_) => {
                        tracing::warn!("grace period over: stopping mid-cycle; unsent alerts stay pending and are retried next run");
                        DaemonExit::GraceExpired
                    }
                };
            }
        }
        let next = started + interval;
        tracing::debug!(
            in_secs = next.saturating_duration_since(Instant::now()).as_secs(),
            "next cycle scheduled"
        );
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = &mut shutdown => {
                tracing::info!("shutting down between cycles");
                return DaemonExit::Clean;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn runs_on_the_interval_until_shutdown() {
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let counter = count.clone();
        let handle = tokio::spawn(run(
            Duration::from_secs(60),
            DEFAULT_GRACE,
            move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            },
            async move {
                let _ = rx.await;
            },
        ));
        tokio::time::sleep(Duration::from_secs(150)).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            3,
            "cycles at 0 s, 60 s and 120 s"
        );
        tx.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), DaemonExit::Clean);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_cycle_finishes_within_the_grace_period() {
        let finished = Arc::new(AtomicUsize::new(0));
        let done = finished.clone();
        let exit = run(
            Duration::from_secs(60),
            Duration::from_secs(30),
            move || {
                let done = done.clone();
                async move {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            },
            tokio::time::sleep(Duration::from_secs(1)),
        )
        .await;
        assert_eq!(exit, DaemonExit::Clean);
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the in-flight cycle completed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_cycle_is_dropped_after_the_grace_period() {
        let start = Instant::now();
        let exit = run(
            Duration::from_secs(60),
            Duration::from_secs(30),
            std::future::pending::<()>,
            tokio::time::sleep(Duration::from_secs(5)),
        )
        .await;
        assert_eq!(exit, DaemonExit::GraceExpired);
        assert_eq!(Instant::now() - start, Duration::from_secs(35));
    }
}
