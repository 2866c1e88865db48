//! The change feed's wake-up signal: one PostgreSQL `LISTEN` per server process
//! (not one per watcher, which would take a pooled connection each), fanned out to
//! every `WatchObservations` stream through a `tokio::sync::watch` channel carrying the
//! latest commit number. Notifications only wake watchers up — they then read the
//! changes from the table — so a lost notification (say, while the listener
//! reconnects after a database restart) costs latency, not data: a poll every few
//! seconds catches up.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::store::observations::{CHANNEL, latest_commit};

/// How often the latest commit is polled in case a notification was missed.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Aborts the listener task when the last handle goes.
#[derive(Debug)]
struct TaskGuard(tokio::task::AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A handle on the latest observation commit number.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    rx: watch::Receiver<i64>,
    _task: Arc<TaskGuard>,
}

impl ChangeFeed {
    /// Starts listening.
    pub fn start(pool: PgPool) -> Self {
        let (tx, rx) = watch::channel(0i64);
        let task = tokio::spawn(run(pool, tx));
        Self {
            rx,
            _task: Arc::new(TaskGuard(task.abort_handle())),
        }
    }

    /// A receiver that wakes up on every new commit.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.rx.clone()
    }
}

async fn run(pool: PgPool, tx: watch::Sender<i64>) {
    let bump = |seq: i64| {
        tx.send_if_modified(|cur| {
            if seq > *cur {
                *cur = seq;
                true
            } else {
                false
            }
        });
    };
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "change feed: cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::debug!(error = %e, "change feed: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Catch up on anything committed while not listening.
        if let Ok(seq) = latest_commit(&pool).await {
            bump(seq);
        }
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => {
                        if let Ok(seq) = n.payload().parse::<i64>() {
                            bump(seq);
                        }
                    }
                    // The connection was lost: reconnect, then catch up.
                    Ok(None) | Err(_) => break,
                },
                () = tokio::time::sleep(POLL_INTERVAL) => {
                    if let Ok(seq) = latest_commit(&pool).await {
                        bump(seq);
                    }
                }
            }
        }
    }
}
