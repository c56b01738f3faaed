//! Storage reads from async code, on a few long-lived reader threads.
//!
//! The rule (ARCHITECTURE.md): a storage read never runs on a reactor thread. Handing each read
//! to tokio's blocking pool with its own `spawn_blocking` costs the pool's lock, a
//! condition-variable wake-up and two thread switches per read; under a GraphQL read load that
//! was a fifth of the CPU, more than the reads themselves. [`read`] puts the read on a channel
//! instead; [`readers`] threads, started on first use, take reads from it (a reader that is
//! already awake takes the next one without a wake-up) and send each answer back on a oneshot.
//!
//! A read that panics fails alone (its caller gets [`ReadFailed`]); the reader goes on. A read
//! whose caller has gone (a dropped request) is skipped. When every reader is busy (long scans,
//! reads waiting on the disk), a read goes to tokio's blocking pool instead of waiting behind
//! them; so it does when no reader thread could be started.

use crossbeam_channel::{Receiver, Sender};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::sync::oneshot;

/// A queued read.
type Job = Box<dyn FnOnce() + Send>;

/// A read that did not answer: it panicked, or no reader thread could be started.
#[derive(Debug, thiserror::Error)]
#[error("the storage read failed (it panicked, or no reader thread could start)")]
pub struct ReadFailed;

/// How many reader threads: two per core, and at least four, so a few long reads (big scans,
/// reads waiting on the disk) never hold up every other.
pub fn readers() -> usize {
    // Worked out once: `available_parallelism` reads cgroup files each time it is asked.
    static READERS: OnceLock<usize> = OnceLock::new();
    *READERS.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_mul(2).max(4))
}

/// The queue the reader threads take reads from; started on first use. `None` when not one
/// reader thread could be started.
fn queue() -> Option<&'static Sender<Job>> {
    static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = crossbeam_channel::unbounded::<Job>();
            let started = (0..readers())
                .filter(|n| {
                    let rx = rx.clone();
                    std::thread::Builder::new().name(format!("storage-reader-{n}")).spawn(move || serve(rx)).is_ok()
                })
                .count();
            if started == 0 {
                tracing::error!("no storage reader thread could be started");
            }
            (started > 0).then_some(tx)
        })
        .as_ref()
}

/// Readers running a read now.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// One reader thread: run reads as they come, for the life of the process.
fn serve(rx: Receiver<Job>) {
    for job in rx {
        BUSY.fetch_add(1, Ordering::AcqRel);
        // A panicking read drops its answer channel: its caller gets ReadFailed; the others go on.
        let _ = catch_unwind(AssertUnwindSafe(job));
        BUSY.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run the storage read `f` on a reader thread and answer its result.
pub async fn read<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ReadFailed> {
    let queue = queue().filter(|_| BUSY.load(Ordering::Acquire) < readers());
    let Some(queue) = queue else {
        return tokio::task::spawn_blocking(f).await.map_err(|_| ReadFailed);
    };
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // The caller may have gone (a dropped request): nothing to read for then.
        if !tx.is_closed() {
            let _ = tx.send(f());
        }
    });
    queue.send(job).map_err(|_| ReadFailed)?;
    rx.await.map_err(|_| ReadFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_answer_their_own_results_and_a_panic_fails_alone() {
        let reads: Vec<_> = (0..200u64)
            .map(|n| {
                tokio::spawn(read(move || {
                    if n == 7 {
                        panic!("read 7 breaks");
                    }
                    n * 2
                }))
            })
            .collect();
        for (n, handle) in reads.into_iter().enumerate() {
            let answer = handle.await.expect("the task runs");
            if n == 7 {
                assert!(answer.is_err(), "the panicking read fails");
            } else {
                assert_eq!(answer.expect("the read answers"), n as u64 * 2);
            }
        }
    }

    #[tokio::test]
    async fn reads_go_on_when_every_reader_is_busy() {
        let (release, hold) = crossbeam_channel::unbounded::<()>();
        let (started_tx, started) = crossbeam_channel::unbounded::<()>();
        let long: Vec<_> = (0..readers())
            .map(|_| {
                let (hold, started_tx) = (hold.clone(), started_tx.clone());
                tokio::spawn(read(move || {
                    let _ = started_tx.send(());
                    hold.recv().is_ok()
                }))
            })
            .collect();
        for _ in 0..readers() {
            tokio::task::spawn_blocking({
                let started = started.clone();
                move || started.recv_timeout(std::time::Duration::from_secs(10))
            })
            .await
            .expect("joins")
            .expect("every long read starts");
        }
        let short = tokio::time::timeout(std::time::Duration::from_secs(10), read(|| 7)).await;
        assert_eq!(short.expect("not held up by busy readers").expect("it answers"), 7);
        for _ in 0..readers() {
            release.send(()).expect("a long read waits");
        }
        for handle in long {
            assert!(handle.await.expect("joins").expect("answers"));
        }
    }

    #[tokio::test]
    async fn a_long_read_does_not_hold_up_the_others() {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let long = tokio::spawn(read(move || {
            let _ = started.send(());
            hold.recv().is_ok()
        }));
        running.await.expect("the long read starts");
        // The short read finishes while the long one still holds its reader.
        let short = tokio::time::timeout(std::time::Duration::from_secs(10), read(|| 42)).await;
        assert_eq!(short.expect("the short read is not held up").expect("it answers"), 42);
        release.send(()).expect("the long read waits");
        assert!(long.await.expect("the task runs").expect("it answers"));
    }
}
