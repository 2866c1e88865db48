//! The stable horizon and the change feed's wake-ups, one task per server process.
//!
//! The horizon ([`store::observations::stable_horizon`]) is the instant before which no
//! write in flight can still add a version. `as_of` reads of instants after it wait for
//! it ([`ChangeFeed::settle`], which asks the database itself); WatchObservations
//! streams deliver versions up to it. While the process has streams, the task recomputes
//! it when this process commits a write, when another replica says it did (a PostgreSQL
//! NOTIFY, sent by the replica after its commit and outside the writing transaction, at
//! most once per tick), every few milliseconds while a write holds it back, and every
//! second otherwise. It publishes the horizon and the latest version at or before it
//! through a `tokio::sync::watch` channel, which wakes the streams only when that latest
//! version moves. A lost notification (say, while the listener reconnects after a
//! database restart) costs latency, not data.
//!
//! A replica only announces its commits while another replica has streams: a replica
//! with streams names its listening connection [`WATCHING`] (and says so with a NOTIFY
//! when it starts), and the others look for such a connection in `pg_stat_activity` at
//! most once per [`WATCHERS_FRESH`] while they commit. Each NOTIFY is a transaction of
//! its own (with an id, a commit and a WAL flush) and wakes every listening replica:
//! sent whether anyone watches or not, they were about as many transactions as the
//! writes themselves at 16 writers on two replicas.
//!
//! Writes used to NOTIFY inside their own transaction; PostgreSQL serialises the
//! commits of every transaction that notifies on one database-wide lock, which is
//! exactly the global lock the write path does without.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use crate::error::{Error, Result};
use crate::store::observations::{CHANNEL, latest_known_from, stable_horizon};

/// Recomputation interval while a write in flight holds the horizon back.
const HELD_BACK_POLL: Duration = Duration::from_millis(10);
/// Recomputation interval otherwise (also the latency of a lost notification).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Shortest interval between two recomputations, however many commits wake the task.
const MIN_TICK: Duration = Duration::from_millis(5);
/// `application_name` of a replica's listening connection while the replica has
/// WatchObservations streams (and the payload of the NOTIFY it sends when it starts to).
pub const WATCHING: &str = "tradewatch watching";
/// How long the answer to "does another replica have streams?" is trusted.
const WATCHERS_FRESH: Duration = Duration::from_secs(1);

/// What the task publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedState {
    /// The stable horizon.
    pub horizon: DateTime<Utc>,
    /// The latest `known_from` at or before it.
    pub latest: Option<DateTime<Utc>>,
}

/// Aborts the task when the last handle goes.
#[derive(Debug)]
struct TaskGuard(tokio::task::AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct Shared {
    pool: PgPool,
    /// The latest horizon known to this process, in microseconds since the epoch (it
    /// only ever grows).
    stable_us: AtomicI64,
    /// Wakes the task.
    wake: Notify,
    /// A commit of this process has not been announced to the other replicas yet.
    announce: AtomicBool,
    /// Publishes the state to the subscribers (WatchObservations streams).
    tx: watch::Sender<FeedState>,
}

impl Shared {
    fn remember(&self, h: DateTime<Utc>) {
        self.stable_us
            .fetch_max(h.timestamp_micros(), Ordering::AcqRel);
    }

    fn cached(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.stable_us.load(Ordering::Acquire))
            .unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// The horizon now (one query), remembered.
    async fn query(&self) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
        let (h, now) = stable_horizon(&self.pool).await?;
        self.remember(h);
        Ok((h, now))
    }
}

/// A handle on the horizon and the change feed's wake-ups.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    shared: Arc<Shared>,
    _task: Arc<TaskGuard>,
}

impl ChangeFeed {
    /// Starts the task.
    pub fn start(pool: PgPool) -> Self {
        let (tx, _) = watch::channel(FeedState {
            horizon: DateTime::UNIX_EPOCH,
            latest: None,
        });
        let shared = Arc::new(Shared {
            pool,
            stable_us: AtomicI64::new(0),
            wake: Notify::new(),
            announce: AtomicBool::new(false),
            tx,
        });
        let task = tokio::spawn(run(shared.clone()));
        Self {
            shared,
            _task: Arc::new(TaskGuard(task.abort_handle())),
        }
    }

    /// A receiver that wakes up when versions at or before the horizon were added.
    ///
    /// The task computes the horizon only while there are subscribers; a new one wakes
    /// it, and until its first tick sees the horizon as last published (older, which
    /// only delays what it delivers).
    pub fn subscribe(&self) -> watch::Receiver<FeedState> {
        let rx = self.shared.tx.subscribe();
        self.shared.wake.notify_one();
        rx
    }

    /// Says that this process committed a write: the horizon is recomputed and the
    /// other replicas are told.
    pub fn committed(&self) {
        self.shared.announce.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }

    /// The stable horizon now (one query).
    pub async fn horizon(&self) -> Result<DateTime<Utc>> {
        Ok(self.shared.query().await?.0)
    }

    /// A stable instant, without a query when one not older than `fresh` is known.
    pub async fn recent_horizon(&self, fresh: Duration) -> Result<DateTime<Utc>> {
        let cached = self.shared.cached();
        let age = (Utc::now() - cached).to_std().unwrap_or_default();
        if age <= fresh {
            Ok(cached)
        } else {
            self.horizon().await
        }
    }

    /// Waits until `t` is at or before the stable horizon, so that a read as of `t`
    /// gives the same answer however often it is asked. Instants already known to be
    /// stable cost nothing; a recent one waits for the writes in flight to end (a
    /// batch's milliseconds, an import's merge). The call's deadline bounds the wait.
    pub async fn settle(&self, t: DateTime<Utc>) -> Result<()> {
        if t <= self.shared.cached() {
            return Ok(());
        }
        let mut pause = Duration::from_millis(1);
        loop {
            let (h, _) = self.shared.query().await?;
            if t <= h {
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// The database clock, for checks of requested instants (one query).
    pub async fn database_now(&self) -> Result<DateTime<Utc>> {
        Ok(self.shared.query().await?.1)
    }
}

/// The listening connection.
struct Listening {
    listener: PgListener,
    /// Its backend's process id (to leave it out when looking for watchers).
    pid: i32,
    /// Whether it is named [`WATCHING`].
    watching: bool,
}

/// What the task knows of the other replicas' streams.
#[derive(Default)]
struct Watchers {
    /// When it was last asked (or told).
    checked: Option<tokio::time::Instant>,
    /// Another replica has streams.
    others: bool,
}

impl Watchers {
    fn set(&mut self, others: bool) {
        self.others = others;
        self.checked = Some(tokio::time::Instant::now());
    }

    fn fresh(&self) -> bool {
        self.checked.is_some_and(|t| t.elapsed() < WATCHERS_FRESH)
    }
}

async fn run(shared: Arc<Shared>) {
    let mut listening: Option<Listening> = None;
    let mut watchers = Watchers::default();
    let mut next = Duration::ZERO;
    loop {
        if listening.is_none() {
            listening = listen(&shared.pool).await;
        }
        let woken = async {
            match listening.as_mut() {
                Some(l) => match l.listener.try_recv().await {
                    // Another replica starts to watch (this one's own word is not news).
                    Ok(Some(n)) => Some(n.payload() == WATCHING && n.process_id() as i32 != l.pid),
                    // The connection was lost: reconnect at the next tick.
                    Ok(None) | Err(_) => None,
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shared.wake.notified() => {}
            woken = woken => match woken {
                Some(true) => watchers.set(true),
                Some(false) => {}
                None => listening = None,
            },
            () = tokio::time::sleep(next) => {}
        }
        if let Some(l) = listening.as_mut()
            && let Err(e) = say_watching(&shared, l).await
        {
            tracing::debug!(error = %e, "change feed: the listening connection failed; reconnecting");
            listening = None;
        }
        let pid = listening.as_ref().map_or(0, |l| l.pid);
        next = match tick(&shared, pid, &mut watchers).await {
            Ok(true) => HELD_BACK_POLL,
            Ok(false) => IDLE_POLL,
            Err(e) => {
                tracing::debug!(error = %e, "change feed: cannot compute the horizon; retrying");
                IDLE_POLL
            }
        };
        tokio::time::sleep(MIN_TICK).await;
    }
}

async fn listen(pool: &PgPool) -> Option<Listening> {
    let mut l = match PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(error = %e, "change feed: cannot listen; polling");
            return None;
        }
    };
    let pid = match l.listen(CHANNEL).await {
        Ok(()) => {
            sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                .fetch_one(&mut l)
                .await
        }
        Err(e) => Err(e),
    };
    match pid {
        Ok(pid) => Some(Listening {
            listener: l,
            pid,
            watching: false,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "change feed: LISTEN failed; polling");
            None
        }
    }
}

/// Names the listening connection after whether this process has streams; when it
/// starts to, tells the other replicas (so that they announce their commits from now on,
/// not only once they next look).
async fn say_watching(shared: &Shared, l: &mut Listening) -> Result<()> {
    let streams = shared.tx.receiver_count() > 0;
    if streams == l.watching {
        return Ok(());
    }
    let name = if streams {
        WATCHING
    } else {
        crate::store::APPLICATION_NAME
    };
    sqlx::query("SELECT set_config('application_name', $1, false)")
        .bind(name)
        .execute(&mut l.listener)
        .await?;
    l.watching = streams;
    if streams {
        notify(&mut l.listener, WATCHING).await?;
    }
    Ok(())
}

/// A NOTIFY on the service's channel (a transaction of its own).
async fn notify<'e>(on: impl sqlx::PgExecutor<'e>, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(on)
        .await?;
    Ok(())
}

/// Whether another replica has streams: a connection other than `own` (this process's
/// listening connection) named [`WATCHING`].
async fn others_watch(pool: &PgPool, own: i32) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
          WHERE datname = current_database() AND application_name = $1 AND pid <> $2)",
    )
    .bind(WATCHING)
    .bind(own)
    .fetch_one(pool)
    .await?)
}

/// Announces this process's commits to the replicas that have streams, then recomputes
/// and publishes; true when a write in flight holds the horizon back.
async fn tick(shared: &Shared, own: i32, watchers: &mut Watchers) -> Result<bool> {
    if shared.announce.swap(false, Ordering::AcqRel) {
        let announced = async {
            if !watchers.fresh() {
                watchers.set(others_watch(&shared.pool, own).await?);
            }
            if watchers.others {
                notify(&shared.pool, "").await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(e) = announced.await {
            shared.announce.store(true, Ordering::Release);
            return Err(e);
        }
    }
    if shared.tx.receiver_count() == 0 {
        // Nobody to wake: the horizon is computed where it is needed (settle, reads).
        return Ok(false);
    }
    let (horizon, now) = shared.query().await?;
    // After the horizon's query: every version at or before it is visible now.
    let latest = latest_known_from(&shared.pool, horizon).await?;
    shared.tx.send_if_modified(|state| {
        let moved = state.latest != latest;
        *state = FeedState { horizon, latest };
        moved
    });
    Ok(horizon < now - chrono::Duration::microseconds(1))
}
