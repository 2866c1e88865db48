//! Observations, bitemporal: see `migrations/0002_observations.sql` for the model and
//! `docs/consistency.md` for why the guarantees below hold.
//!
//! Writers serialise per indicator, on its row in `observation_heads`, and on nothing
//! else: writers of different indicators never wait for each other. A write stamps its
//! versions (`known_from`) after it holds its locks, later than every version it can
//! see, so the versions of one observation follow each other in the order the writes
//! took effect. Two shapes of write:
//!
//! - a batch (BatchCreateObservations, DeleteObservation: at most 10,000 rows) is one
//!   call of `observations_write_batch()` ([`BATCH_SQL`]), with the rows as arrays: it
//!   resolves the indicators, refuses unknown ones and periods of another frequency,
//!   replays a request id, takes the indicators' locks, and then, in a statement whose
//!   snapshot is taken after the locks, classifies every row against the current
//!   versions, closes the superseded versions, appends the new ones, writes one audit
//!   event per indicator and the request id's claim, checks the deadline and commits:
//!   one round trip, no temporary table;
//! - an import ([`Import`]) is one transaction that writes each message's rows as the
//!   client sends the next (`observations_import_chunk()`), all stamped with one instant
//!   taken when it began.
//!
//! Readers cut what they read at a stable horizon ([`stable_horizon`]): an instant
//! before which no write still in flight can add a version. `as_of` reads of recent
//! instants wait for it, and the change feed ([`changes_after`]) delivers versions in
//! (known_from, indicator, period) order up to it.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Row as _, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::begin;
use super::call::{self, Claim};
use crate::domain::observation::{ObsStatus, ObservationName};
use crate::domain::{Decimal, Frequency, Period, ResourceId};
use crate::error::{Error, Result};

/// Name of the PostgreSQL notification channel that wakes the change feeds of every
/// replica (sent after commits, outside the writing transactions; see `crate::feed`).
pub const CHANNEL: &str = "tradewatch_observations";

/// What the store needs to know about an indicator to accept its observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndicatorRef {
    /// The compact key used by the observation tables.
    pub key: i32,
    /// Its frequency: every period must be in it.
    pub frequency: Frequency,
}

/// Looks up indicators by id; missing ones are absent from the map.
pub async fn lookup_indicators(
    pool: &PgPool,
    ids: &[&str],
) -> Result<HashMap<String, IndicatorRef>> {
    let rows = sqlx::query(
        "SELECT indicator_id::text AS id, indicator_key, frequency FROM indicators \
         WHERE indicator_id = ANY($1::text[])",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let frequency: String = r.try_get("frequency")?;
        out.insert(
            r.try_get("id")?,
            IndicatorRef {
                key: r.try_get("indicator_key")?,
                frequency: stored_frequency(&frequency)?,
            },
        );
    }
    Ok(out)
}

fn stored_frequency(code: &str) -> Result<Frequency> {
    Frequency::from_code(code)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("stored frequency {code:?}")))
}

/// Counts of a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MergeCounts {
    /// New observations (or deleted ones written again).
    pub inserted: i64,
    /// Observations whose published version changed.
    pub revised: i64,
    /// Observations written with their current content.
    pub unchanged: i64,
    /// Observations deleted.
    pub deleted: i64,
}

impl MergeCounts {
    /// Observations whose published version changed in any way.
    pub fn changed(&self) -> i64 {
        self.inserted + self.revised + self.deleted
    }
}

/// Result of a write, as kept with its request id's claim.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The counts.
    pub counts: MergeCounts,
    /// The write's `known_from`, when something changed.
    pub commit_time: Option<DateTime<Utc>>,
}

impl Merged {
    /// Reads the claim's stored result: JSON with the counts and the commit time in
    /// microseconds since the epoch (written by the SQL of the writes).
    pub fn from_stored(bytes: &[u8]) -> Result<Merged> {
        #[derive(serde::Deserialize)]
        struct Stored {
            counts: MergeCounts,
            commit_time_us: Option<i64>,
        }
        let s: Stored = serde_json::from_slice(bytes)
            .map_err(|e| Error::internal(anyhow::anyhow!("stored merge result: {e}")))?;
        Ok(Merged {
            counts: s.counts,
            commit_time: s.commit_time_us.and_then(DateTime::from_timestamp_micros),
        })
    }
}

/// Milliseconds the current call leaves the database before its deadline, for the
/// writes' own deadline checks (a day when the call has none).
fn deadline_ms() -> i32 {
    const NONE: i64 = 86_400_000;
    call::current()
        .and_then(|c| c.database_ms())
        .unwrap_or(NONE)
        .clamp(1, NONE) as i32
}

/// The SQLSTATE of a database error, if it is one.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Maps a write's unique violation on the request-id table to a replay.
fn claim_error(e: sqlx::Error, claimed: bool) -> Error {
    if claimed
        && let sqlx::Error::Database(db) = &e
        && db.constraint() == Some("idempotency_keys_pkey")
    {
        return Error::RequestReplayed;
    }
    Error::from(e)
}

// ---------------------------------------------------------------------------------------
// Batch writes

/// One row of a batch write: an observation version or, with `deleted`, a deletion.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// Which observation.
    pub name: ObservationName,
    /// Value, `None` for missing statuses and deletions.
    pub value: Option<Decimal>,
    /// Status.
    pub status: ObsStatus,
    /// Comment.
    pub comment: String,
    /// Source.
    pub source: String,
    /// A deletion.
    pub deleted: bool,
}

/// Batch rows as the write functions' array parameters, one array per column.
#[derive(Default)]
struct Columns<'a> {
    ids: Vec<&'a str>,
    periods: Vec<String>,
    frequencies: Vec<&'static str>,
    values: Vec<Option<&'a str>>,
    statuses: Vec<&'static str>,
    comments: Vec<&'a str>,
    sources: Vec<&'a str>,
    deleted: Vec<bool>,
}

impl<'a> Columns<'a> {
    fn of(rows: impl IntoIterator<Item = &'a BatchRow>) -> Self {
        let mut c = Columns::default();
        for r in rows {
            c.ids.push(r.name.indicator.as_str());
            c.periods.push(r.name.period.to_string());
            c.frequencies.push(r.name.period.frequency().code());
            c.values.push(r.value.as_ref().map(Decimal::as_str));
            c.statuses.push(r.status.code());
            c.comments.push(r.comment.as_str());
            c.sources.push(r.source.as_str());
            c.deleted.push(r.deleted);
        }
        c
    }
}

/// Why a row of a batch was refused (nothing of the batch was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Row `index` names an indicator that does not exist.
    UnknownIndicator(i64),
    /// Row `index` has a period in another frequency than its indicator's.
    OtherFrequency {
        /// The row.
        index: i64,
        /// The indicator's frequency.
        frequency: Frequency,
    },
    /// Row `index` deletes an observation that does not exist.
    NothingToDelete(i64),
}

/// What a batch write did.
#[derive(Debug, Clone)]
pub enum BatchOutcome {
    /// Nothing was written: these rows are refused (at most 100, in row order).
    Refused(Vec<Refusal>),
    /// The request id was used before by this very request: its stored result.
    Replay(Option<Vec<u8>>),
    /// The request id was used before by a different request.
    RequestIdReused,
    /// Nothing was written: another writer holds one of the indicators (a batch of another
    /// replica, an import); [`BatchWriter::write`] tries again.
    Busy,
    /// Written (or, with `validate_only`, classified).
    Written {
        /// The counts.
        counts: MergeCounts,
        /// The write's `known_from`, when something changed.
        commit_time: Option<DateTime<Utc>>,
        /// Each row's observation as the write left it, in request order (empty with
        /// `validate_only`).
        versions: Vec<Version>,
    },
}

/// The batch write: one call of `observations_write_batch()` (see
/// migrations/0004_concurrent_writes.sql) with the rows as arrays: the indicator ids, the
/// periods and their frequencies, values, statuses, comments, sources and deletions, then
/// the audit's caller
/// (key, method, request id), the request id's claim (id, method, fingerprint),
/// validate_only and the milliseconds left before the deadline.
pub const BATCH_SQL: &str = "SELECT ord, outcome, value, status, comment, source, deleted, known_from, \
    frequency, stored FROM observations_write_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
    $11, $12, $13, $14, $15, $16)";

/// How often a batch write is run again after PostgreSQL found a deadlock. Writers take
/// their locks in key order, so there should be none; a retry is the cheap insurance.
const MAX_ATTEMPTS: u32 = 5;

/// Writes a batch (see [`BATCH_SQL`]), or with `validate_only` only classifies it.
/// With a `claim`, the request id is recorded with the result in the same statement
/// ([`Error::RequestReplayed`] when a concurrent write with the same id committed first).
/// Runs in a writer of [`BatchWriter`], a task of its own: once sent, a statement is seen
/// through to its end even if the caller goes away, so its outcome is known either way.
async fn write_batch_now(
    conn: &mut Held,
    rows: &[BatchRow],
    validate_only: bool,
    claim: Option<&Claim>,
) -> Result<BatchOutcome> {
    let c = Columns::of(rows);
    let caller = call::current().unwrap_or_default();
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let run = sqlx::query(BATCH_SQL)
            .bind(&c.ids)
            .bind(&c.periods)
            .bind(&c.frequencies)
            .bind(&c.values)
            .bind(&c.statuses)
            .bind(&c.comments)
            .bind(&c.sources)
            .bind(&c.deleted)
            .bind(caller.actor.as_deref().unwrap_or(""))
            .bind(&caller.method)
            .bind(&caller.request_id)
            .bind(claim.map(|c| c.request_id))
            .bind(claim.map(|c| c.method.as_str()))
            .bind(claim.map(|c| c.fingerprint.as_slice()))
            .bind(validate_only)
            .bind(deadline_ms());
        let run = match conn.get().await {
            Ok(c) => run.fetch_all(c).await,
            Err(e) => Err(e),
        };
        let run = conn.check(run);
        match run {
            Err(e) if attempt < MAX_ATTEMPTS && sqlstate(&e).as_deref() == Some("40P01") => {
                let ms = rand::random_range(0..10 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            other => break other,
        }
    };
    let result = result.map_err(|e| claim_error(e, claim.is_some()))?;
    if attempt > 1 {
        tracing::warn!(attempt, "batch write ran again after a deadlock");
    }
    batch_outcome(rows, &result, validate_only)
}

fn batch_outcome(
    rows: &[BatchRow],
    result: &[sqlx::postgres::PgRow],
    validate_only: bool,
) -> Result<BatchOutcome> {
    let mut refused = Vec::new();
    let mut counts = MergeCounts::default();
    let mut commit_time = None;
    let mut versions: Vec<(i64, Version)> = Vec::with_capacity(rows.len());
    for r in result {
        let outcome: String = r.try_get("outcome")?;
        let ord: Option<i32> = r.try_get("ord")?;
        // WITH ORDINALITY counts from 1.
        let index = i64::from(ord.unwrap_or(1)) - 1;
        let row = || {
            usize::try_from(index)
                .ok()
                .and_then(|i| rows.get(i))
                .ok_or_else(|| Error::internal(anyhow::anyhow!("batch row {index} out of range")))
        };
        match outcome.as_str() {
            "busy" => return Ok(BatchOutcome::Busy),
            "replay" => return Ok(BatchOutcome::Replay(r.try_get("stored")?)),
            "reused" => return Ok(BatchOutcome::RequestIdReused),
            "unknown_indicator" => refused.push(Refusal::UnknownIndicator(index)),
            "frequency" => {
                let code: String = r.try_get("frequency")?;
                refused.push(Refusal::OtherFrequency {
                    index,
                    frequency: stored_frequency(&code)?,
                });
            }
            "N" => refused.push(Refusal::NothingToDelete(index)),
            action => {
                match action {
                    "I" | "J" | "X" => counts.inserted += 1,
                    "R" => counts.revised += 1,
                    "D" => counts.deleted += 1,
                    "U" => counts.unchanged += 1,
                    other => {
                        return Err(Error::internal(anyhow::anyhow!(
                            "batch write outcome {other:?}"
                        )));
                    }
                }
                let known_from: Option<DateTime<Utc>> = r.try_get("known_from")?;
                if action != "U" {
                    commit_time = known_from;
                }
                if validate_only {
                    continue;
                }
                let known_from = known_from.ok_or_else(|| {
                    Error::internal(anyhow::anyhow!("batch row {index} has no known_from"))
                })?;
                let status: String = r.try_get("status")?;
                versions.push((
                    index,
                    Version {
                        name: row()?.name.clone(),
                        value: r
                            .try_get::<Option<String>, _>("value")?
                            .map(Decimal::from_db),
                        status: ObsStatus::from_code(&status)
                            .ok_or_else(|| Error::internal(anyhow::anyhow!("status {status:?}")))?,
                        comment: r.try_get("comment")?,
                        source: r.try_get("source")?,
                        deleted: r.try_get("deleted")?,
                        known_from,
                        known_until: None,
                    },
                ));
            }
        }
    }
    if !refused.is_empty() {
        refused.sort_by_key(|r| match r {
            Refusal::UnknownIndicator(i)
            | Refusal::OtherFrequency { index: i, .. }
            | Refusal::NothingToDelete(i) => *i,
        });
        refused.truncate(100);
        return Ok(BatchOutcome::Refused(refused));
    }
    if counts.changed() == 0 || validate_only {
        commit_time = None;
    }
    versions.sort_by_key(|(i, _)| *i);
    Ok(BatchOutcome::Written {
        counts,
        commit_time,
        versions: versions.into_iter().map(|(_, v)| v).collect(),
    })
}

/// Most batches one database call writes together, and most rows.
const MAX_GROUP: usize = 16;
const MAX_GROUP_ROWS: usize = 10_000;
/// Longest the writer waits, once the grouped call before ended, for that call's
/// callers' next batches (see [`run_writer`]).
const REJOIN: Duration = Duration::from_millis(3);
/// A batch of more rows than this is written beside the grouped writes, not by the
/// writer itself, so that its length never holds up the batches that arrive meanwhile.
const LONG_BATCH: usize = 1_000;

struct Job {
    rows: Vec<BatchRow>,
    validate_only: bool,
    claim: Option<Claim>,
    call: call::CallContext,
    reply: oneshot::Sender<Result<BatchOutcome>>,
}

impl Job {
    /// Whether the job may share a database call with others: new observations only.
    fn groupable(&self) -> bool {
        !self.validate_only && !self.rows.iter().any(|r| r.deleted)
    }
}

/// Writes the batches of this process, grouping the ones that arrive together.
///
/// A batch write costs the database mostly per call (a PL/pgSQL call, its statements'
/// start and end, its locks, its commit) and little per row: measured with pgbench on
/// `observations_write_batches()` (rolled back, so without the commit's flush), one batch
/// of 10 rows took 0.41 ms and sixteen 1.68 ms. So one task of this process, the
/// writer, takes up to [`MAX_GROUP`] batches whose indicators do not overlap and writes
/// them in one call (one transaction, one stamp, each batch with its own audit events
/// and request id, as if it had come alone), on a connection it keeps ([`Held`]). The
/// batches that arrive while the call is in the database wait in the queue, without
/// waking anyone, and make the next group when it ends. Once a call has ended and its
/// callers have their answers, the next group waits up to [`REJOIN`] for them (until it
/// has as many batches again as the call carried): they send their next batches within
/// about a millisecond, and stay one cohort in calls of all their batches instead of
/// two cohorts taking turns with calls of half as many. A lone caller never waits: its
/// last call had one batch.
///
/// One writer, not several taking turns: with two, one collected the next group while
/// the other's call was in the database, every batch that arrived meanwhile woke it,
/// and two replicas on one database at 16 writers made 0.96× one replica's rate
/// (medians, bench/writes.sh); with one, 1.10× (BENCHMARKS.md). Passing one connection
/// between the two (so that every call went to the same PostgreSQL process) did not
/// make up the difference.
///
/// Batches that could hold the writer up are written beside it, each in a task of its
/// own, at most `writers - 1` at once, on connections they leave to each other
/// ([`Held::leave`]): batches that are not only new observations (deletions,
/// validate_only), batches of more than [`LONG_BATCH`] rows, and the batches of a group
/// whose call found that they are not all new observations or failed, written again one
/// by one, so one caller's bad batch or request id never decides another's outcome. A
/// lone batch of new observations goes at once on the writer's connection (a revision
/// among them is found and written as such in the same call). A full group while more
/// batches wait (at 64 writers, say) also goes beside, and the writer goes on with the
/// next: so two grouped calls can be in the database at once when one would not take
/// all the batches waiting. A batch of an indicator already in the group (two callers
/// of one indicator) waits for the next group, in its turn, without ending this one; a
/// group does not go while a group beside holds one of its indicators.
///
/// No write waits for another in the database: a batch whose indicator is held by
/// another writer (of another replica, or an import) comes back [`BatchOutcome::Busy`],
/// and its caller tries again a little later (until its deadline) without holding a
/// writer or a connection.
#[derive(Debug, Clone)]
pub struct BatchWriter {
    tx: mpsc::Sender<Job>,
}

impl BatchWriter {
    /// Starts the writer on `pool`, with up to `writers` connections writing batches: the
    /// writer's, and `writers - 1` (at least one) for the batches written beside it.
    pub fn start(pool: PgPool, writers: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(1024);
        let beside = Beside {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(
                writers.saturating_sub(1).max(1),
            )),
            spare: Spare::default(),
            groups: std::sync::Arc::default(),
        };
        tokio::spawn(run_writer(pool, rx, beside));
        Self { tx }
    }

    /// Writes a batch (see [`write_batch_now`]), trying again while another writer holds one
    /// of its indicators, until the call's deadline.
    pub async fn write(
        &self,
        rows: Vec<BatchRow>,
        validate_only: bool,
        claim: Option<Claim>,
    ) -> Result<BatchOutcome> {
        let call = call::current().unwrap_or_default();
        let mut pause = Duration::from_millis(1);
        loop {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                rows: rows.clone(),
                validate_only,
                claim: claim.clone(),
                call: call.clone(),
                reply,
            };
            self.tx.send(job).await.map_err(|_| Error::Unavailable)?;
            let outcome = answer.await.map_err(|_| {
                Error::internal(anyhow::anyhow!("a batch writer ended without an answer"))
            })??;
            if !matches!(outcome, BatchOutcome::Busy) {
                return Ok(outcome);
            }
            // Held by another writer: wait a little, without a writer or a connection,
            // and give up (nothing was written) in time for the answer to reach the
            // client before its deadline.
            let left = call
                .deadline
                .map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_some_and(|left| left <= pause + call::DATABASE_MARGIN) {
                return Err(Error::DeadlineExceeded);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// How long the writer keeps its connection while it has nothing to write.
const KEEP_IDLE: Duration = Duration::from_secs(1);

/// A connection kept from one write to the next while there is work.
///
/// sqlx tests every connection given back to its pool with a round trip (a `Sync`,
/// answered by `ReadyForQuery`, in a task of its own) before another call may take it.
/// Taken and given back per write, that was one more round trip, and wake-ups of
/// PostgreSQL's process and of this one, for every grouped write. So the writer keeps
/// its connection while it writes, and gives it back after [`KEEP_IDLE`] without work,
/// or at once when a call on it failed other than with an error of PostgreSQL's (it may
/// be broken: the pool tests it and replaces it, and the next write takes another,
/// waiting as long as any call).
struct Held {
    pool: PgPool,
    spare: Spare,
    conn: Option<PoolConnection>,
}

type PoolConnection = sqlx::pool::PoolConnection<Postgres>;

/// Connections the writes beside the writer leave for the next ones (the writer gives
/// them back to the pool with its own after [`KEEP_IDLE`] without work).
type Spare = std::sync::Arc<std::sync::Mutex<Vec<PoolConnection>>>;

impl Held {
    fn new(pool: PgPool, spare: Spare) -> Self {
        Self {
            pool,
            spare,
            conn: None,
        }
    }

    fn spare(&self) -> std::sync::MutexGuard<'_, Vec<PoolConnection>> {
        // Poisoned only if a writer panicked while pushing or popping: the connections
        // in it are as good as before.
        self.spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection: the one held, else a spare one, else one from the pool.
    async fn get(&mut self) -> std::result::Result<&mut sqlx::PgConnection, sqlx::Error> {
        if self.conn.is_none() {
            let spare = self.spare().pop();
            self.conn = spare;
        }
        if self.conn.is_none() {
            self.conn = Some(self.pool.acquire().await?);
        }
        Ok(self.conn.as_deref_mut().expect("just taken"))
    }

    /// Leaves the connection, if any, for the next write beside the writer.
    fn leave(mut self) {
        if let Some(conn) = self.conn.take() {
            self.spare().push(conn);
        }
    }

    /// Passes `result` on, giving the connection back first when it may be broken.
    fn check<T>(
        &mut self,
        result: std::result::Result<T, sqlx::Error>,
    ) -> std::result::Result<T, sqlx::Error> {
        if let Err(e) = &result
            && !matches!(e, sqlx::Error::Database(_) | sqlx::Error::RowNotFound)
        {
            self.conn = None;
        }
        result
    }

    /// Waits for `work`, giving the connections back (its own and the spare ones) every
    /// [`KEEP_IDLE`] it waits, and at once when the pool closes (which waits for them).
    async fn idle<F: std::future::Future>(&mut self, work: F) -> F::Output {
        tokio::pin!(work);
        let closed = self.pool.close_event();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(KEEP_IDLE) => self.give_back(),
                () = &mut closed => {
                    self.give_back();
                    return work.await;
                }
            }
        }
    }

    /// Gives the connections back to the pool.
    fn give_back(&mut self) {
        self.conn = None;
        let spare = std::mem::take(&mut *self.spare());
        drop(spare);
    }
}

/// Whether a job is written beside the writer rather than by it.
fn beside_the_writer(job: &Job) -> bool {
    !job.groupable() || job.rows.len() > LONG_BATCH
}

/// Writes a job in a task of its own, on a connection of its own, once one of the
/// `beside` permits is free; its caller waits for the answer as for any other.
fn write_beside(pool: &PgPool, beside: &Beside, job: Job) {
    let pool = pool.clone();
    let beside = beside.clone();
    tokio::spawn(async move {
        let Ok(_permit) = beside.permits.clone().acquire_owned().await else {
            return;
        };
        let mut conn = Held::new(pool, beside.spare.clone());
        let result = call::scope(
            job.call,
            write_batch_now(&mut conn, &job.rows, job.validate_only, job.claim.as_ref()),
        )
        .await;
        conn.leave();
        let _ = job.reply.send(result);
    });
}

/// What the writes beside the writer share: at most so many at once, their spare
/// connections, and the indicators of the groups written beside it now.
#[derive(Clone)]
struct Beside {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    spare: Spare,
    groups: std::sync::Arc<GroupsBeside>,
}

#[derive(Default)]
struct GroupsBeside {
    indicators: std::sync::Mutex<std::collections::HashSet<ResourceId>>,
    ended: tokio::sync::Notify,
}

impl Beside {
    fn indicators(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<ResourceId>> {
        // Poisoned only if a writer panicked while it held the lock: the set is whole.
        self.groups
            .indicators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks a group's indicators as written beside the writer.
    fn take(&self, ids: &std::collections::HashSet<ResourceId>) {
        self.indicators().extend(ids.iter().cloned());
    }

    /// Ends [`Beside::take`] once the group's call has ended.
    fn free(&self, ids: &std::collections::HashSet<ResourceId>) {
        self.indicators().retain(|id| !ids.contains(id));
        self.groups.ended.notify_waiters();
    }

    /// Waits until no group written beside the writer holds any of `ids`.
    async fn wait_until_free(&self, ids: &std::collections::HashSet<ResourceId>) {
        loop {
            let ended = self.groups.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.indicators().is_disjoint(ids) {
                return;
            }
            ended.await;
        }
    }
}

async fn run_writer(pool: PgPool, mut rx: mpsc::Receiver<Job>, beside: Beside) {
    let mut conn = Held::new(pool.clone(), beside.spare.clone());
    // Jobs taken from the queue that could not join the last group (one of their
    // indicators was in it, or it was full), in the order they came: the next groups'.
    let mut held: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
    // How many batches the last group had: about as many callers are sending again now
    // that they have their answers.
    let mut last_group = 1;
    loop {
        let first = match held.pop_front() {
            Some(j) => j,
            None => match conn.idle(rx.recv()).await {
                Some(j) => j,
                None => return,
            },
        };
        if beside_the_writer(&first) {
            write_beside(&pool, &beside, first);
            continue;
        }
        let indicators = |job: &Job| {
            job.rows
                .iter()
                .map(|r| r.name.indicator.clone())
                .collect::<Vec<_>>()
        };
        let mut ids: std::collections::HashSet<ResourceId> =
            indicators(&first).into_iter().collect();
        let mut rows = first.rows.len();
        let mut group = vec![first];
        // The group takes the jobs held from the last one that fit, then what is queued
        // (what arrived while the last call was in the database), then, while fewer
        // batches than the last group's came, what arrives within REJOIN (the callers
        // just answered send their next batches within about a millisecond). One call
        // for all of them costs the database far less than one each. A job that does not
        // fit (one of its indicators is in the group already, or a job held before it
        // has one of them, so that the writes of an indicator keep their order) is held
        // for the next group; a job that goes beside the writer goes now unless it too
        // must wait its turn.
        let mut waiting: std::collections::HashSet<ResourceId> = std::collections::HashSet::new();
        let mut later = std::collections::VecDeque::new();
        let rejoin = tokio::time::Instant::now() + REJOIN;
        loop {
            let next = match held.pop_front() {
                Some(next) => next,
                None if group.len() >= MAX_GROUP || later.len() >= MAX_GROUP => break,
                None => match rx.try_recv() {
                    Ok(next) => next,
                    Err(_) if group.len() < last_group => {
                        match tokio::time::timeout_at(rejoin, rx.recv()).await {
                            Ok(Some(next)) => next,
                            Ok(None) | Err(_) => break,
                        }
                    }
                    Err(_) => break,
                },
            };
            let its = indicators(&next);
            let must_wait = its.iter().any(|i| ids.contains(i) || waiting.contains(i));
            if beside_the_writer(&next) && !must_wait {
                write_beside(&pool, &beside, next);
                continue;
            }
            if must_wait
                || beside_the_writer(&next)
                || group.len() >= MAX_GROUP
                || rows + next.rows.len() > MAX_GROUP_ROWS
            {
                waiting.extend(its);
                later.push_back(next);
                continue;
            }
            ids.extend(its);
            rows += next.rows.len();
            group.push(next);
        }
        held = later;
        last_group = group.len();
        // A group written beside may hold some of these indicators: its call would make
        // this one skip them (and write its batches one by one, or come back busy).
        beside.wait_until_free(&ids).await;
        if let [_] = group.as_slice() {
            let job = group.pop().expect("one job");
            let result = call::scope(
                job.call,
                write_batch_now(&mut conn, &job.rows, job.validate_only, job.claim.as_ref()),
            )
            .await;
            let _ = job.reply.send(result);
            continue;
        }
        // More batches waiting than this call takes (at 64 writers, say): it goes
        // beside, if a connection beside is free, and the writer goes on with the next
        // group at once (a group never queues for one: it is written here then).
        if group.len() == MAX_GROUP
            && (!held.is_empty() || !rx.is_empty())
            && let Ok(permit) = beside.permits.clone().try_acquire_owned()
        {
            let (pool, beside) = (pool.clone(), beside.clone());
            beside.take(&ids);
            tokio::spawn(async move {
                let mut conn = Held::new(pool.clone(), beside.spare.clone());
                let written = write_group(&mut conn, &group).await;
                conn.leave();
                drop(permit);
                beside.free(&ids);
                answer_group(group, written, &pool, &beside);
            });
            continue;
        }
        let written = write_group(&mut conn, &group).await;
        answer_group(group, written, &pool, &beside);
    }
}

/// Answers the callers of a group from its call's outcome; when the call wrote nothing
/// (not only new observations, or it failed), writes its batches again one by one,
/// beside the writer.
fn answer_group(
    group: Vec<Job>,
    written: Result<Option<DateTime<Utc>>>,
    pool: &PgPool,
    beside: &Beside,
) {
    let stamp = match written {
        Ok(Some(stamp)) => stamp,
        other => {
            if let Err(e) = other {
                tracing::debug!(error = %e, batches = group.len(), "a grouped write failed; writing its batches one by one");
            }
            for job in group {
                write_beside(pool, beside, job);
            }
            return;
        }
    };
    for job in group {
        let counts = MergeCounts {
            inserted: job.rows.len() as i64,
            ..MergeCounts::default()
        };
        let versions = job
            .rows
            .into_iter()
            .map(|r| Version {
                name: r.name,
                value: r.value,
                status: r.status,
                comment: r.comment,
                source: r.source,
                deleted: false,
                known_from: stamp,
                known_until: None,
            })
            .collect();
        let _ = job.reply.send(Ok(BatchOutcome::Written {
            counts,
            commit_time: Some(stamp),
            versions,
        }));
    }
}

/// Writes a group in one call; `None` when its batches must be written one by one.
async fn write_group(conn: &mut Held, group: &[Job]) -> Result<Option<DateTime<Utc>>> {
    let calls: Vec<i32> = group
        .iter()
        .enumerate()
        .flat_map(|(c, job)| std::iter::repeat_n(c as i32 + 1, job.rows.len()))
        .collect();
    let c = Columns::of(group.iter().flat_map(|job| &job.rows));
    let actors: Vec<&str> = group
        .iter()
        .map(|j| j.call.actor.as_deref().unwrap_or(""))
        .collect();
    let methods: Vec<&str> = group.iter().map(|j| j.call.method.as_str()).collect();
    let request_ids: Vec<&str> = group.iter().map(|j| j.call.request_id.as_str()).collect();
    let claims: Vec<Option<uuid::Uuid>> = group
        .iter()
        .map(|j| j.claim.as_ref().map(|c| c.request_id))
        .collect();
    let claim_methods: Vec<Option<&str>> = group
        .iter()
        .map(|j| j.claim.as_ref().map(|c| c.method.as_str()))
        .collect();
    let fingerprints: Vec<Option<&[u8]>> = group
        .iter()
        .map(|j| j.claim.as_ref().map(|c| c.fingerprint.as_slice()))
        .collect();
    // The group's deadline is its earliest batch's.
    let deadline = group
        .iter()
        .filter_map(|j| j.call.database_ms())
        .min()
        .unwrap_or(86_400_000)
        .clamp(1, 86_400_000) as i32;
    let query = sqlx::query_as(
        "SELECT outcome, known_from FROM observations_write_batches($1, $2, $3, $4, $5, $6, \
         $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&calls)
    .bind(&c.ids)
    .bind(&c.periods)
    .bind(&c.frequencies)
    .bind(&c.values)
    .bind(&c.statuses)
    .bind(&c.comments)
    .bind(&c.sources)
    .bind(&actors)
    .bind(&methods)
    .bind(&request_ids)
    .bind(&claims)
    .bind(&claim_methods)
    .bind(&fingerprints)
    .bind(deadline);
    let written = match conn.get().await {
        Ok(c) => query.fetch_one(c).await,
        Err(e) => Err(e),
    };
    let written = conn.check(written);
    let row: (String, Option<DateTime<Utc>>) = match written {
        Ok(row) => row,
        // Not only new observations, past the earliest deadline, a request id claimed
        // meanwhile, a deadlock: each batch on its own.
        Err(e)
            if matches!(
                sqlstate(&e).as_deref(),
                Some("TW006" | "TW002" | "23505" | "40P01")
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(match row {
        (outcome, Some(stamp)) if outcome == "written" => Some(stamp),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------
// Imports

/// One staged row of an import.
#[derive(Debug, Clone)]
pub struct StagedRow {
    /// Position in the caller's stream (0-based), to name rows in errors.
    pub index: i64,
    /// The indicator's key.
    pub indicator_key: i32,
    /// Canonical period.
    pub period: Period,
    /// Value, `None` for missing statuses.
    pub value: Option<Decimal>,
    /// Status.
    pub status: ObsStatus,
    /// Comment.
    pub comment: String,
    /// Source.
    pub source: String,
}

/// Up to this many rows, an import finds its duplicates itself as the rows arrive, and
/// names the earlier row (about 24 bytes of memory a row); beyond, the memory is given
/// back and the database refuses a repeated observation without naming the earlier row.
pub const DUPLICATES_IN_MEMORY: usize = 4_000_000;

/// Most duplicates an import reports.
const MAX_DUPLICATES: usize = 100;

/// What an import did.
#[derive(Debug, Clone)]
pub enum ImportOutcome {
    /// Nothing was written: these rows repeat an earlier row, (row, earlier row).
    Duplicates(Vec<(i64, i64)>),
    /// Written (or, with `validate_only`, classified).
    Merged(Merged),
}

enum Command {
    Append(Vec<StagedRow>),
    Finish(Option<Claim>, oneshot::Sender<Result<ImportOutcome>>),
}

/// An import in progress, one transaction from its first rows to its end.
///
/// The import stamps all its versions with one instant, taken when its first rows
/// arrive, and writes each message's rows straight into observation_versions as the
/// client sends the next one (`observations_import_chunk()`, from a task that owns the
/// transaction; the channel holds two messages, which bounds memory): no staging and no
/// merge at the end, so an import costs about what its inserts cost. It locks the
/// indicators' heads as its messages reach them, and holds them to its end: writers of
/// those indicators wait for it; so do `as_of` reads of instants after it began, and the
/// change feed (see docs/consistency.md). [`Import::finish`] writes the audit events and
/// the request id's claim, and commits. If the caller goes away before (or while) it
/// finishes, the transaction rolls back and nothing is written.
///
/// The caller's cancellation never cuts a statement in the middle of the protocol: the
/// task finishes the step it is on.
pub struct Import {
    tx: mpsc::Sender<Command>,
    rows: i64,
    seen: Option<HashMap<(i32, Period), i64, foldhash::fast::RandomState>>,
    duplicates: Vec<(i64, i64)>,
}

fn task_gone() -> Error {
    Error::internal(anyhow::anyhow!("the import task ended unexpectedly"))
}

impl Import {
    /// Starts an import (its transaction begins with its first rows). With
    /// `validate_only`, the rows are classified and nothing is written or locked.
    pub fn begin(pool: &PgPool, validate_only: bool) -> Self {
        let (tx, rx) = mpsc::channel::<Command>(2);
        let pool = pool.clone();
        // The task does not inherit the call's context: hand it over.
        let call = call::current().unwrap_or_default();
        tokio::spawn(call::scope(call, run_import(pool, rx, validate_only)));
        Self {
            tx,
            rows: 0,
            seen: Some(HashMap::default()),
            duplicates: Vec::new(),
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> i64 {
        self.rows
    }

    /// Rows that repeat an earlier row (row, earlier row), found so far; once there is
    /// one, rows are no longer written (the import is refused).
    pub fn duplicates(&self) -> &[(i64, i64)] {
        &self.duplicates
    }

    /// Writes `rows`. Does not wait for them to be written: a failure surfaces at
    /// [`finish`](Self::finish).
    pub async fn append(&mut self, rows: Vec<StagedRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(seen) = self.seen.as_mut() {
            for r in &rows {
                match seen.entry((r.indicator_key, r.period)) {
                    std::collections::hash_map::Entry::Occupied(first) => {
                        if self.duplicates.len() < MAX_DUPLICATES {
                            self.duplicates.push((r.index, *first.get()));
                        }
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(r.index);
                    }
                }
            }
            if seen.len() > DUPLICATES_IN_MEMORY {
                self.seen = None;
            }
        }
        self.rows += rows.len() as i64;
        if !self.duplicates.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Command::Append(rows))
            .await
            .map_err(|_| task_gone())
    }

    /// Ends the import: writes its audit events and, with a `claim`, records the request
    /// id with the result, and commits (with `validate_only`, reports the counts).
    pub async fn finish(self, claim: Option<Claim>) -> Result<ImportOutcome> {
        if !self.duplicates.is_empty() {
            return Ok(ImportOutcome::Duplicates(self.duplicates));
        }
        let (reply, response) = oneshot::channel();
        self.tx
            .send(Command::Finish(claim, reply))
            .await
            .map_err(|_| task_gone())?;
        response.await.map_err(|_| task_gone())?
    }
}

/// An import's transaction, once its first rows arrived.
struct Written {
    tx: Transaction<'static, Postgres>,
    stamp: Option<DateTime<Utc>>,
    /// Per indicator: inserted, revised, unchanged.
    counts: HashMap<i32, [i64; 3]>,
    /// The indicators reached so far (their heads are locked), and whether each had no
    /// observation then: the import's rows for those are all new and go in with COPY.
    reached: HashMap<i32, bool>,
}

/// PostgreSQL's epoch (2000-01-01 UTC) in Unix microseconds.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Appends one field of PostgreSQL's binary COPY format: its length, then its bytes.
fn copy_field(out: &mut Vec<u8>, bytes: &[u8]) {
    // Fields here are at most a few KiB (comments are limited to 1,000 characters).
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `d` as a binary `numeric` field: digit count, weight (of the first base-10000
/// digit), sign, display scale, then base-10000 digits, without leading or trailing zero
/// digits (what numeric_send produces). `d` is in canonical plain notation.
fn copy_numeric(out: &mut Vec<u8>, d: &str) {
    let (negative, digits) = match d.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, d),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let decimal = |s: &[u8]| s.iter().fold(0i16, |n, c| n * 10 + i16::from(c - b'0'));
    // Base-10000 digits: the integer part in groups of 4 from the point leftwards, the
    // fraction in groups of 4 from the point rightwards (the last padded with zeros).
    let lead = int.len() % 4;
    let mut groups: Vec<i16> = Vec::with_capacity(int.len() / 4 + frac.len() / 4 + 2);
    if lead > 0 {
        groups.push(decimal(&int.as_bytes()[..lead]));
    }
    groups.extend(int.as_bytes()[lead..].chunks(4).map(decimal));
    let mut weight = groups.len() as i16 - 1;
    groups.extend(frac.as_bytes().chunks(4).map(|c| {
        let n = decimal(c);
        n * [1, 1000, 100, 10, 1][c.len()]
    }));
    let skip = groups.iter().take_while(|g| **g == 0).count();
    weight -= skip as i16;
    let end = groups.len() - groups.iter().rev().take_while(|g| **g == 0).count();
    let groups = if skip >= end {
        &[][..]
    } else {
        &groups[skip..end]
    };
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&(8 + 2 * groups.len() as i32).to_be_bytes());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(frac.len() as i16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// `rows` as new current versions known from `stamp`, added in bulk, in PostgreSQL's
/// binary COPY format (`indicator_key, period, value, status, comment, source, deleted,
/// known_from, bulk`): the database then has no text to parse (a tenth of its time in
/// an import with the text format). Hand-written: the format is a few lines of
/// PostgreSQL's documentation (COPY, "Binary Format"), and no well-kept crate writes it
/// for sqlx's raw COPY.
fn copy_binary(rows: &[&StagedRow], stamp: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(19 + rows.len() * 110 + 2);
    // Signature, flags, header extension length.
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    let stamp = (stamp.timestamp_micros() - PG_EPOCH_US).to_be_bytes();
    let mut period = String::with_capacity(8);
    for r in rows {
        use std::fmt::Write as _;
        out.extend_from_slice(&9i16.to_be_bytes());
        copy_field(&mut out, &r.indicator_key.to_be_bytes());
        period.clear();
        let _ = write!(period, "{}", r.period);
        copy_field(&mut out, period.as_bytes());
        match &r.value {
            Some(v) => copy_numeric(&mut out, v.as_str()),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        copy_field(&mut out, r.status.code().as_bytes());
        copy_field(&mut out, r.comment.as_bytes());
        copy_field(&mut out, r.source.as_bytes());
        copy_field(&mut out, &[0]);
        copy_field(&mut out, &stamp);
        copy_field(&mut out, &[1]);
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

async fn run_import(pool: PgPool, mut rx: mpsc::Receiver<Command>, validate_only: bool) {
    let mut written: Option<Written> = None;
    // The first failure; reported when the caller asks for the result.
    let mut failed: Option<Error> = None;
    while let Some(command) = rx.recv().await {
        match command {
            Command::Append(rows) => {
                if failed.is_none()
                    && let Err(e) = write_chunk(&pool, &mut written, &rows, validate_only).await
                {
                    failed = Some(e);
                }
            }
            Command::Finish(claim, mut reply) => {
                let result = match failed.take() {
                    Some(e) => Err(e),
                    None => finish_import(written.take(), validate_only, claim, &mut reply).await,
                };
                let _ = reply.send(result);
                return;
            }
        }
    }
    // The caller went away before the end: dropping the transaction rolls it back.
}

async fn write_chunk(
    pool: &PgPool,
    written: &mut Option<Written>,
    rows: &[StagedRow],
    validate_only: bool,
) -> Result<()> {
    if written.is_none() {
        let mut tx = begin(pool).await?;
        // The import's statements look rows up by indicator (whether one has versions
        // yet, its current versions): index lookups, whatever the statistics say. Planned
        // while observation_versions was empty (just truncated, a new database), they
        // became sequential scans or hash joins over every row this import had added so
        // far: an import after a TRUNCATE took 13 s instead of 3 (bench/writes.sh).
        sqlx::query(
            "SELECT set_config('enable_seqscan', 'off', true), \
                    set_config('enable_hashjoin', 'off', true), \
                    set_config('enable_mergejoin', 'off', true)",
        )
        .execute(&mut *tx)
        .await?;
        *written = Some(Written {
            tx,
            stamp: None,
            counts: HashMap::new(),
            reached: HashMap::new(),
        });
    }
    let w = written.as_mut().ok_or_else(task_gone)?;
    // The indicators this message reaches first: lock their heads (in key order) and
    // learn which have no observation yet.
    let mut new_keys: Vec<i32> = rows
        .iter()
        .map(|r| r.indicator_key)
        .filter(|k| !w.reached.contains_key(k))
        .collect();
    new_keys.sort_unstable();
    new_keys.dedup();
    if !new_keys.is_empty() {
        // One index probe per indicator (LATERAL … LIMIT 1). A `NOT EXISTS (…)` here was
        // planned with a hashed alternative, chosen whenever the statistics made
        // observation_versions look small (after a TRUNCATE, in a new database) and then
        // kept as the connection's generic plan: every message of the import then read
        // every version the import had added so far, 18 ms per message of 5,000 rows,
        // and a 300,000-row import took 1.7-2.1 s instead of 1.0-1.2 (bench/writes.sh:
        // 3 of 6 imports).
        macro_rules! reached {
            () => {
                "SELECT h.indicator_key, e.found IS NULL \
                   FROM observation_heads h \
                   LEFT JOIN LATERAL (SELECT true AS found FROM observation_versions v \
                                       WHERE v.indicator_key = h.indicator_key LIMIT 1) e \
                     ON true \
                  WHERE h.indicator_key = ANY($1)"
            };
        }
        let sql = if validate_only {
            reached!()
        } else {
            concat!(reached!(), " ORDER BY h.indicator_key FOR UPDATE OF h")
        };
        let found: Vec<(i32, bool)> = sqlx::query_as(sql)
            .bind(&new_keys)
            .fetch_all(&mut *w.tx)
            .await?;
        if found.len() != new_keys.len() {
            return Err(Error::FailedPrecondition {
                reason: "INDICATOR_DELETED",
                message: "an indicator of the import was deleted while it ran; nothing was written"
                    .into(),
                subjects: vec![],
            });
        }
        w.reached.extend(found);
    }
    if w.stamp.is_none() && !validate_only {
        // The stamp, once the transaction has its id and holds the heads of the first
        // message's indicators (see docs/consistency.md): later than every version of
        // those, so an import whose indicators all come in its first message never meets
        // a later write of one of them.
        let t: DateTime<Utc> = sqlx::query_scalar(
            "SELECT greatest(clock_timestamp(), \
                    observations_latest_known_from() + interval '1 microsecond') \
               FROM (SELECT pg_current_xact_id()) AS id",
        )
        .fetch_one(&mut *w.tx)
        .await?;
        w.stamp = Some(t);
    }
    let (fresh, others): (Vec<&StagedRow>, Vec<&StagedRow>) = rows
        .iter()
        .partition(|r| w.reached.get(&r.indicator_key) == Some(&true));
    for r in &fresh {
        w.counts.entry(r.indicator_key).or_default()[0] += 1;
    }
    if let (Some(stamp), false) = (w.stamp, fresh.is_empty()) {
        // New observations of indicators that had none: straight in, at COPY speed, marked
        // `bulk` (left out of the per-row feed index; finish_import records them in
        // observation_bulk: migrations/0005_bulk_feed.sql).
        let mut copy =
            w.tx.copy_in_raw(
                "COPY observation_versions \
                   (indicator_key, period, value, status, comment, source, deleted, known_from, \
                    bulk) \
                 FROM STDIN (FORMAT binary)",
            )
            .await?;
        copy.send(copy_binary(&fresh, stamp)).await?;
        copy.finish().await.map_err(|e| match &e {
            // Beyond DUPLICATES_IN_MEMORY rows, the unique key finds repeats.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => Error::invalid(
                "observations",
                "DUPLICATE",
                "the import names the same observation twice; each may appear once per call",
            ),
            _ => Error::from(e),
        })?;
    }
    if others.is_empty() {
        return Ok(());
    }
    let rows = others;
    let n = rows.len();
    let mut keys = Vec::with_capacity(n);
    let mut periods = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut comments = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    for r in &rows {
        keys.push(r.indicator_key);
        periods.push(r.period.to_string());
        values.push(r.value.as_ref().map(Decimal::as_str));
        statuses.push(r.status.code());
        comments.push(r.comment.as_str());
        sources.push(r.source.as_str());
    }
    let result: Vec<(i32, i64, i64, i64)> = sqlx::query_as(
        "SELECT r_key, r_inserted, r_revised, r_unchanged \
           FROM observations_import_chunk($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(w.stamp)
    .bind(&keys)
    .bind(&periods)
    .bind(&values)
    .bind(&statuses)
    .bind(&comments)
    .bind(&sources)
    .bind(validate_only)
    .fetch_all(&mut *w.tx)
    .await
    .map_err(|e| match sqlstate(&e).as_deref() {
        // Beyond DUPLICATES_IN_MEMORY rows, the database finds repeated observations.
        Some("TW005") => Error::invalid(
            "observations",
            "DUPLICATE",
            "the import names the same observation twice; each may appear once per call",
        ),
        _ => Error::from(e),
    })?;
    for (key, inserted, revised, unchanged) in result {
        let c = w.counts.entry(key).or_default();
        c[0] += inserted;
        c[1] += revised;
        c[2] += unchanged;
    }
    Ok(())
}

async fn finish_import(
    written: Option<Written>,
    validate_only: bool,
    claim: Option<Claim>,
    reply: &mut oneshot::Sender<Result<ImportOutcome>>,
) -> Result<ImportOutcome> {
    let Some(mut w) = written else {
        // No rows: nothing to write.
        return Ok(ImportOutcome::Merged(Merged {
            counts: MergeCounts::default(),
            commit_time: None,
        }));
    };
    let mut keys: Vec<i32> = w.counts.keys().copied().collect();
    keys.sort_unstable();
    let column = |i: usize| -> Vec<i64> { keys.iter().map(|k| w.counts[k][i]).collect() };
    let (inserted, revised, unchanged) = (column(0), column(1), column(2));
    let counts = MergeCounts {
        inserted: inserted.iter().sum(),
        revised: revised.iter().sum(),
        unchanged: unchanged.iter().sum(),
        deleted: 0,
    };
    if validate_only {
        w.tx.rollback().await?;
        return Ok(ImportOutcome::Merged(Merged {
            counts,
            commit_time: None,
        }));
    }
    // The versions added in bulk, one group per indicator that had no observation when
    // the import reached it (all of its rows were inserted with COPY), for the feed.
    let (bulk_keys, bulk_versions): (Vec<i32>, Vec<i64>) = keys
        .iter()
        .filter(|k| w.reached.get(k) == Some(&true) && w.counts[k][0] > 0)
        .map(|k| (*k, w.counts[k][0]))
        .unzip();
    if !bulk_keys.is_empty() {
        sqlx::query(
            "INSERT INTO observation_bulk (known_from, indicator_key, versions) \
             SELECT $1, k, n FROM unnest($2::integer[], $3::bigint[]) AS x(k, n)",
        )
        .bind(w.stamp)
        .bind(&bulk_keys)
        .bind(&bulk_versions)
        .execute(&mut *w.tx)
        .await?;
    }
    let caller = call::current().unwrap_or_default();
    sqlx::query(
        "SELECT observations_import_finish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(w.stamp)
    .bind(&keys)
    .bind(&inserted)
    .bind(&revised)
    .bind(&unchanged)
    .bind(caller.actor.as_deref().unwrap_or(""))
    .bind(&caller.method)
    .bind(&caller.request_id)
    .bind(claim.as_ref().map(|c| c.request_id))
    .bind(claim.as_ref().map(|c| c.method.as_str()))
    .bind(claim.as_ref().map(|c| c.fingerprint.as_slice()))
    .bind(deadline_ms())
    .execute(&mut *w.tx)
    .await
    .map_err(|e| claim_error(e, claim.is_some()))?;
    // A client that cancels a client-streaming call ends its stream, then resets it:
    // if the call is gone by now, nothing is committed.
    if reply.is_closed() {
        w.tx.rollback().await?;
        return Err(Error::internal(anyhow::anyhow!(
            "the import's caller went away before its commit"
        )));
    }
    w.tx.commit().await?;
    Ok(ImportOutcome::Merged(Merged {
        counts,
        commit_time: w.stamp.filter(|_| counts.changed() > 0),
    }))
}

/// Analyzes `observation_versions` when its statistics lag far behind its contents;
/// true when it did. The write functions' plans are pinned to index lookups, but the
/// other statements (reads, the import merge) are planned from the statistics, and
/// autovacuum refreshes them at most once per `autovacuum_naptime` (a minute by
/// default): a bulk load into a new database would meanwhile be planned as if the table
/// were empty. PostgreSQL re-plans cached statements after an ANALYZE.
pub async fn refresh_statistics(pool: &PgPool) -> Result<bool> {
    let stale: Option<bool> = sqlx::query_scalar(
        "SELECT s.n_mod_since_analyze > greatest(1000, 0.2 * greatest(c.reltuples, 0)) \
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
          WHERE s.relid = 'observation_versions'::regclass",
    )
    .fetch_optional(pool)
    .await?;
    if stale != Some(true) {
        return Ok(false);
    }
    sqlx::query("ANALYZE observation_versions")
        .execute(pool)
        .await?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------
// The stable horizon

/// The stable horizon, and the database's clock: an instant such that every version with a `known_from` at or
/// before it is committed, and no write in flight or to come can add another one.
///
/// A write stamps its versions with the database clock after its transaction got its
/// id, so its `known_from` is later than the start of its transaction (`xact_start`).
/// The horizon is therefore the earliest start of a transaction that holds an id in
/// this database (pg_stat_activity lists them; one still listed has not yet become
/// visible), or now when there is none, less a microsecond. A transaction that has no
/// id yet will stamp later than now. Reads cut at the horizon must take their snapshot
/// after this query: then every version at or before it is in their snapshot.
///
/// The service's sessions must be visible in pg_stat_activity (the same role on every
/// replica, or `pg_read_all_stats`): a writing session whose start is hidden from us
/// is not waited for.
pub async fn stable_horizon(pool: &PgPool) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    // statement_timestamp(), not clock_timestamp(): the time the statement arrived,
    // before pg_stat_activity is read; a writer that gets its id after that read stamps
    // later still.
    let (h, now): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT least(statement_timestamp(), min(a.xact_start)) - interval '1 microsecond', \
                statement_timestamp() \
           FROM pg_stat_activity a \
          WHERE a.backend_xid IS NOT NULL AND a.datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    Ok((h, now))
}

/// The latest `known_from` at or before `horizon`, if any (one step down an index).
pub async fn latest_known_from(
    pool: &PgPool,
    horizon: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let t: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT greatest( \
            (SELECT max(known_from) FROM observation_versions WHERE NOT bulk AND known_from <= $1), \
            (SELECT max(known_from) FROM observation_bulk WHERE known_from <= $1))",
    )
    .bind(horizon)
    .fetch_one(pool)
    .await?;
    Ok(t)
}

/// One stored version of an observation, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Which observation.
    pub name: ObservationName,
    /// Value (plain notation).
    pub value: Option<Decimal>,
    /// Status.
    pub status: ObsStatus,
    /// Comment.
    pub comment: String,
    /// Source.
    pub source: String,
    /// A deletion.
    pub deleted: bool,
    /// Published from.
    pub known_from: DateTime<Utc>,
    /// Published until (None while current).
    pub known_until: Option<DateTime<Utc>>,
}

macro_rules! version_columns {
    () => {
        "i.indicator_id::text AS indicator_id, v.period::text AS period, v.value::text AS value, \
         v.status, v.comment, v.source, v.deleted, v.known_from, v.known_until"
    };
}

fn version_from_row(r: &sqlx::postgres::PgRow) -> Result<Version> {
    let period: String = r.try_get("period")?;
    let status: String = r.try_get("status")?;
    Ok(Version {
        name: ObservationName {
            indicator: ResourceId::from_db(r.try_get("indicator_id")?),
            period: Period::parse(&period)
                .map_err(|_| Error::internal(anyhow::anyhow!("stored period {period:?}")))?,
        },
        value: r
            .try_get::<Option<String>, _>("value")?
            .map(Decimal::from_db),
        status: ObsStatus::from_code(&status)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("stored status {status:?}")))?,
        comment: r.try_get("comment")?,
        source: r.try_get("source")?,
        deleted: r.try_get("deleted")?,
        known_from: r.try_get("known_from")?,
        known_until: r.try_get("known_until")?,
    })
}

/// The version of one observation published at `as_of` (now when `None`); NOT_FOUND
/// when there was none or it was a deletion.
pub async fn get(
    pool: &PgPool,
    name: &ObservationName,
    as_of: Option<DateTime<Utc>>,
) -> Result<Version> {
    let row = sqlx::query(concat!(
        "SELECT ",
        version_columns!(),
        " FROM observation_versions v JOIN indicators i USING (indicator_key) \
          WHERE i.indicator_id = $1 AND v.period = $2 AND \
            CASE WHEN $3::timestamptz IS NULL THEN v.known_until IS NULL \
                 ELSE v.known_from <= $3 AND (v.known_until IS NULL OR v.known_until > $3) END"
    ))
    .bind(name.indicator.as_str())
    .bind(name.period.to_string())
    .bind(as_of)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(r) => {
            let v = version_from_row(&r)?;
            if v.deleted {
                Err(Error::NotFound(name.to_string()))
            } else {
                Ok(v)
            }
        }
        None => Err(Error::NotFound(name.to_string())),
    }
}

/// Filter of [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// First period (inclusive).
    pub start: Option<Period>,
    /// Last period (inclusive).
    pub end: Option<Period>,
    /// As known at this instant (now when `None`).
    pub as_of: Option<DateTime<Utc>>,
    /// Only versions known after this instant, deletions included.
    pub updated_after: Option<DateTime<Utc>>,
}

/// Lists observations of one indicator in period order, after period `after`.
/// Periods of one indicator share its frequency, so their canonical text sorts in time
/// order.
pub async fn list(
    pool: &PgPool,
    indicator: &ResourceId,
    filter: &ListFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Version>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        version_columns!(),
        " FROM observation_versions v JOIN indicators i USING (indicator_key) \
          WHERE i.indicator_id = $1 \
            AND CASE WHEN $2::timestamptz IS NULL THEN v.known_until IS NULL \
                     ELSE v.known_from <= $2 AND (v.known_until IS NULL OR v.known_until > $2) END \
            AND ($3::text IS NULL OR v.period >= $3) \
            AND ($4::text IS NULL OR v.period <= $4) \
            AND ($5::text IS NULL OR v.period > $5) \
            AND CASE WHEN $6::timestamptz IS NULL THEN NOT v.deleted ELSE v.known_from > $6 END \
          ORDER BY v.period LIMIT $7"
    ))
    .bind(indicator.as_str())
    .bind(filter.as_of)
    .bind(filter.start.map(|p| p.to_string()))
    .bind(filter.end.map(|p| p.to_string()))
    .bind(after)
    .bind(filter.updated_after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(version_from_row).collect()
}

/// Every version of one observation, oldest first, after `after` (a known_from in
/// microseconds since the epoch).
pub async fn revisions(
    pool: &PgPool,
    name: &ObservationName,
    after: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Version>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        version_columns!(),
        " FROM observation_versions v JOIN indicators i USING (indicator_key) \
          WHERE i.indicator_id = $1 AND v.period = $2 \
            AND ($3::timestamptz IS NULL OR v.known_from > $3) \
          ORDER BY v.known_from LIMIT $4"
    ))
    .bind(name.indicator.as_str())
    .bind(name.period.to_string())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(version_from_row).collect()
}

/// The versions of the named observations (those that exist) current at `as_of`, or
/// now when `None`, for a replayed batch's response.
pub async fn current(
    pool: &PgPool,
    names: &[ObservationName],
    as_of: Option<DateTime<Utc>>,
) -> Result<HashMap<ObservationName, Version>> {
    let ids: Vec<&str> = names.iter().map(|n| n.indicator.as_str()).collect();
    let periods: Vec<String> = names.iter().map(|n| n.period.to_string()).collect();
    let rows = sqlx::query(concat!(
        "SELECT ",
        version_columns!(),
        " FROM unnest($1::text[], $2::text[]) AS k(indicator_id, period) \
          JOIN indicators i ON i.indicator_id = k.indicator_id \
          JOIN observation_versions v ON v.indicator_key = i.indicator_key AND v.period = k.period \
           AND CASE WHEN $3::timestamptz IS NULL THEN v.known_until IS NULL \
                    ELSE v.known_from <= $3 AND (v.known_until IS NULL OR v.known_until > $3) END"
    ))
    .bind(&ids)
    .bind(&periods)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let mut v = version_from_row(&r)?;
        // As it was at `as_of`: not yet superseded.
        if as_of.is_some() && v.known_until > as_of {
            v.known_until = None;
        }
        out.insert(v.name.clone(), v);
    }
    Ok(out)
}

/// Position in the change feed: after every version known before `known_from`, and of
/// those known at `known_from`, after `(indicator_key, period)` when given (else after
/// all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPosition {
    /// The instant reached.
    pub known_from: DateTime<Utc>,
    /// Last change seen at that instant.
    pub within: Option<(i32, String)>,
}

/// Kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// New (or re-created after a deletion).
    Created,
    /// Revised.
    Revised,
    /// Deleted.
    Deleted,
}

/// One change of the feed.
#[derive(Debug, Clone)]
pub struct Change {
    /// Where it is in the feed.
    pub position: FeedPosition,
    /// What happened.
    pub kind: ChangeKind,
    /// The version written.
    pub version: Version,
}

/// The instant of commit `seq` of the commit numbering used before migration 0004, to
/// resume from a cursor handed out then.
pub async fn commit_time_of(pool: &PgPool, seq: i64) -> Result<Option<DateTime<Utc>>> {
    let t: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT commit_time FROM observation_commits WHERE seq = $1")
            .bind(seq)
            .fetch_optional(pool)
            .await?;
    Ok(t)
}

/// Up to `limit` changes after `from` and known at or before `until` (a stable horizon:
/// nothing can be added before it later), in (known_from, indicator, period) order,
/// optionally only of the indicators with the given keys.
pub async fn changes_after(
    pool: &PgPool,
    from: &FeedPosition,
    until: DateTime<Utc>,
    indicator_keys: Option<&[i32]>,
    limit: i64,
) -> Result<Vec<Change>> {
    // "After all of the instant" is the row comparison's largest tail.
    let (within_key, within_period) = match &from.within {
        Some((k, p)) => (*k, p.as_str()),
        None => (i32::MAX, "~"),
    };
    // Two sources in the same order, merged here: the versions in the feed index
    // (`NOT bulk`), and those an import added in bulk, found group by group (one group
    // per stamp and indicator, all its versions) through observation_bulk and the unique
    // key. A page takes as many groups as make up `limit` versions after the position
    // (the position's own group, partly delivered, is not counted), and from each at most
    // `limit` versions in period order: so each source yields its first `limit`.
    let rows = sqlx::query(concat!(
        "(SELECT v.indicator_key, ",
        version_columns!(),
        ", EXISTS (SELECT 1 FROM observation_versions p \
                   WHERE p.indicator_key = v.indicator_key AND p.period = v.period \
                     AND p.known_until = v.known_from AND NOT p.deleted) AS had_previous \
          FROM observation_versions v JOIN indicators i USING (indicator_key) \
         WHERE NOT v.bulk \
           AND (v.known_from, v.indicator_key, v.period::text) \
                 > ($1, $2, $3::text COLLATE \"C\") \
           AND v.known_from <= $4 \
           AND ($5::integer[] IS NULL OR v.indicator_key = ANY($5)) \
         ORDER BY v.known_from, v.indicator_key, v.period LIMIT $6) \
         UNION ALL \
         (SELECT v.indicator_key, ",
        version_columns!(),
        ", false AS had_previous \
          FROM (SELECT g.known_from, g.indicator_key, \
                       sum(CASE WHEN (g.known_from, g.indicator_key) = ($1, $2) THEN 0 \
                                ELSE g.versions END) \
                         OVER (ORDER BY g.known_from, g.indicator_key \
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before \
                  FROM (SELECT b.known_from, b.indicator_key, b.versions \
                          FROM observation_bulk b \
                         WHERE (b.known_from, b.indicator_key) >= ($1, $2) \
                           AND b.known_from <= $4 \
                           AND ($5::integer[] IS NULL OR b.indicator_key = ANY($5)) \
                         ORDER BY b.known_from, b.indicator_key LIMIT $6 + 1) g) g \
          CROSS JOIN LATERAL ( \
                SELECT v.* FROM observation_versions v \
                 WHERE v.indicator_key = g.indicator_key AND v.known_from = g.known_from \
                   AND v.bulk AND (v.known_from, v.indicator_key, v.period::text) \
                                    > ($1, $2, $3::text COLLATE \"C\") \
                 ORDER BY v.period LIMIT $6) v \
          JOIN indicators i ON i.indicator_key = v.indicator_key \
         WHERE coalesce(g.before, 0) < $6)"
    ))
    .bind(from.known_from)
    .bind(within_key)
    .bind(within_period)
    .bind(until)
    .bind(indicator_keys)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut changes = rows
        .iter()
        .map(|r| {
            let version = version_from_row(r)?;
            let had_previous: bool = r.try_get("had_previous")?;
            let kind = if version.deleted {
                ChangeKind::Deleted
            } else if had_previous {
                ChangeKind::Revised
            } else {
                ChangeKind::Created
            };
            Ok(Change {
                position: FeedPosition {
                    known_from: version.known_from,
                    within: Some((r.try_get("indicator_key")?, version.name.period.to_string())),
                },
                kind,
                version,
            })
        })
        .collect::<Result<Vec<Change>>>()?;
    // The merge: positions compare as (known_from, indicator key, period), the period's
    // canonical text in byte order (the column's "C" collation).
    changes.sort_unstable_by(|a, b| {
        (a.position.known_from, &a.position.within)
            .cmp(&(b.position.known_from, &b.position.within))
    });
    changes.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(changes)
}

/// A row of an export, with what SDMX-CSV needs of its indicator.
#[derive(Debug, Clone)]
pub struct ExportRow {
    /// The version.
    pub version: Version,
    /// The indicator's unit.
    pub unit: String,
    /// The indicator's unit multiplier.
    pub unit_multiplier: i32,
    /// The indicator's frequency.
    pub frequency: Frequency,
}

/// Streams an export in (indicator, period) order from one snapshot, calling `sink`
/// with chunks of at most `chunk` rows. The whole read runs in one REPEATABLE READ,
/// read-only transaction, so the export is consistent even while writes go on.
pub async fn export<F, Fut>(
    pool: &PgPool,
    indicator_ids: Option<&[String]>,
    as_of: Option<DateTime<Utc>>,
    chunk: usize,
    mut sink: F,
) -> Result<()>
where
    F: FnMut(Vec<ExportRow>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    use futures_util::TryStreamExt as _;
    let mut tx = begin(pool).await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut rows = sqlx::query(concat!(
        "SELECT ",
        version_columns!(),
        ", i.unit, i.unit_multiplier, i.frequency \
          FROM observation_versions v JOIN indicators i USING (indicator_key) \
         WHERE ($1::text[] IS NULL OR i.indicator_id = ANY($1)) \
           AND NOT v.deleted \
           AND CASE WHEN $2::timestamptz IS NULL THEN v.known_until IS NULL \
                    ELSE v.known_from <= $2 AND (v.known_until IS NULL OR v.known_until > $2) END \
         ORDER BY i.indicator_id, v.period"
    ))
    .bind(indicator_ids)
    .bind(as_of)
    .fetch(&mut *tx);
    let mut buf = Vec::with_capacity(chunk);
    while let Some(r) = rows.try_next().await? {
        let frequency: String = r.try_get("frequency")?;
        buf.push(ExportRow {
            version: version_from_row(&r)?,
            unit: r.try_get("unit")?,
            unit_multiplier: r.try_get("unit_multiplier")?,
            frequency: Frequency::from_code(&frequency)
                .ok_or_else(|| Error::internal(anyhow::anyhow!("bad frequency")))?,
        });
        if buf.len() >= chunk {
            sink(std::mem::replace(&mut buf, Vec::with_capacity(chunk))).await?;
        }
    }
    if !buf.is_empty() {
        sink(buf).await?;
    }
    drop(rows);
    tx.rollback().await?;
    Ok(())
}
