//! Observations, bitemporal: see `migrations/0002_observations.sql` for the model.
//!
//! Every write goes the same way, whatever its size (one deletion, a batch of 10,000, a
//! streamed import of millions):
//!
//! 1. rows are streamed with `COPY` into a temporary staging table of the write's own
//!    transaction (nothing is buffered in memory, and nothing is visible to anyone);
//! 2. [`Staging::merge`] takes the write lock, classifies every staged row against the
//!    current versions in one join (insert, revise, unchanged, delete), closes the
//!    superseded versions, appends the new ones, numbers the commit, and notifies the
//!    change feed — all set-based, in the same transaction.
//!
//! If the call fails or the client goes away before the commit, the transaction rolls
//! back and no trace of the write remains.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Row as _, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::call::{self, Claim};
use super::{begin, is_unique_violation};
use crate::domain::observation::{ObsStatus, ObservationName};
use crate::domain::{Decimal, Frequency, Period, ResourceId};
use crate::error::{Error, Result};

/// Name of the PostgreSQL notification channel of the change feed.
pub const CHANNEL: &str = "tradewatch_observations";

/// Advisory lock key that sequences observation commits.
const WRITE_LOCK: i64 = 0x7472_6164_6577_6f62; // "tradewob"

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
        let frequency = Frequency::from_code(&frequency)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("bad frequency {frequency}")))?;
        out.insert(
            r.try_get("id")?,
            IndicatorRef {
                key: r.try_get("indicator_key")?,
                frequency,
            },
        );
    }
    Ok(out)
}

/// One row to write: an observation version or, with `deleted`, a deletion.
#[derive(Debug, Clone)]
pub struct StagedRow {
    /// Position in the caller's request (0-based), to name rows in errors.
    pub index: i64,
    /// The indicator's key.
    pub indicator_key: i32,
    /// Canonical period.
    pub period: Period,
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

/// Appends `s` to a COPY text-format line, escaping what COPY would interpret.
fn copy_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Counts of a merge.
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

/// Result of a merge.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The counts.
    pub counts: MergeCounts,
    /// The commit's `known_from`, when something changed (and was written).
    pub commit_time: Option<DateTime<Utc>>,
}

impl Merged {
    /// The form kept with an idempotency claim (JSON: the counts and the commit time in
    /// microseconds since the epoch).
    fn to_stored(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "counts": self.counts,
            "commit_time_us": self.commit_time.map(|t| t.timestamp_micros()),
        }))
        .unwrap_or_default()
    }

    /// Reads what [`to_stored`](Self::to_stored) wrote.
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

/// A write in progress: an open transaction with a staging table. Only used inside the
/// task of a [`StagingHandle`].
struct Staging {
    tx: Transaction<'static, Postgres>,
    rows: i64,
    line: String,
}

impl Staging {
    /// Opens the transaction and its staging table.
    async fn begin(pool: &PgPool) -> Result<Self> {
        let mut tx = begin(pool).await?;
        // Room for the merge's hash joins and aggregates over a large import.
        sqlx::query("SET LOCAL work_mem = '64MB'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TEMP TABLE staging ( \
               idx bigint NOT NULL, indicator_key integer NOT NULL, period text NOT NULL, \
               value numeric, status text NOT NULL, comment text NOT NULL, source text NOT NULL, \
               deleted boolean NOT NULL) ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await?;
        Ok(Self {
            tx,
            rows: 0,
            line: String::new(),
        })
    }

    /// Streams `rows` into the staging table with one COPY.
    async fn append(&mut self, rows: &[StagedRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut buf = String::with_capacity(rows.len() * 64);
        for r in rows {
            let line = &mut self.line;
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(line, "{}\t{}\t{}\t", r.index, r.indicator_key, r.period);
            match &r.value {
                Some(v) => line.push_str(v.as_str()),
                None => line.push_str("\\N"),
            }
            line.push('\t');
            line.push_str(r.status.code());
            line.push('\t');
            copy_escape(line, &r.comment);
            line.push('\t');
            copy_escape(line, &r.source);
            line.push_str(if r.deleted { "\tt\n" } else { "\tf\n" });
            buf.push_str(line);
        }
        let mut copy = self
            .tx
            .copy_in_raw(
                "COPY staging (idx, indicator_key, period, value, status, comment, source, deleted) \
                 FROM STDIN",
            )
            .await?;
        copy.send(buf.into_bytes()).await?;
        copy.finish().await?;
        self.rows += rows.len() as i64;
        Ok(())
    }

    /// Rows that name the same observation as an earlier row: (index, first index).
    async fn duplicates(&mut self, limit: i64) -> Result<Vec<(i64, i64)>> {
        // Statistics first: the planner would otherwise guess the size of the freshly
        // filled temporary table and pick disk sorts.
        sqlx::query("ANALYZE staging")
            .execute(&mut *self.tx)
            .await?;
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT s.idx, d.first_idx FROM staging s \
               JOIN (SELECT indicator_key, period, min(idx) AS first_idx FROM staging \
                      GROUP BY indicator_key, period HAVING count(*) > 1) d \
                 USING (indicator_key, period) \
              WHERE s.idx <> d.first_idx ORDER BY s.idx LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows)
    }

    /// Classifies and writes the staged rows (see the module docs), or with
    /// `validate_only` only classifies them and rolls back. `method` is recorded with
    /// the commit.
    async fn merge(
        mut self,
        method: &str,
        validate_only: bool,
        claim: Option<Claim>,
    ) -> Result<Merged> {
        let tx = &mut self.tx;
        let mut commit_time: DateTime<Utc> = Utc::now();
        let mut seq: i64 = 0;
        if !validate_only {
            // From here to the commit, observation writers go one at a time: commit
            // numbers follow commit order, and known_from never goes backwards.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut **tx)
                .await?;
            let (next, time): (i64, DateTime<Utc>) = sqlx::query_as(
                "SELECT coalesce(max(seq), 0) + 1, \
                        greatest(clock_timestamp(), \
                                 coalesce(max(commit_time), '-infinity') + interval '1 microsecond') \
                   FROM (SELECT seq, commit_time FROM observation_commits ORDER BY seq DESC LIMIT 1) last",
            )
            .fetch_one(&mut **tx)
            .await?;
            seq = next;
            commit_time = time;
            // Keep the indicators written to from being deleted until this commits (the
            // integrity triggers check per statement, not per row).
            sqlx::query(
                "SELECT 1 FROM indicators WHERE indicator_key IN \
                   (SELECT DISTINCT indicator_key FROM staging) FOR KEY SHARE",
            )
            .execute(&mut **tx)
            .await?;
        }
        // I: insert, X: re-create after a deletion, R: revise, D: delete,
        // U: unchanged, N: delete of something that does not exist.
        sqlx::query(
            "CREATE TEMP TABLE classified ON COMMIT DROP AS \
             SELECT s.*, CASE \
               WHEN v.indicator_key IS NULL THEN CASE WHEN s.deleted THEN 'N' ELSE 'I' END \
               WHEN v.deleted THEN CASE WHEN s.deleted THEN 'N' ELSE 'X' END \
               WHEN s.deleted THEN 'D' \
               WHEN v.value IS NOT DISTINCT FROM s.value AND v.status = s.status \
                    AND v.comment = s.comment AND v.source = s.source THEN 'U' \
               ELSE 'R' END AS action \
             FROM staging s LEFT JOIN observation_versions v \
               ON v.indicator_key = s.indicator_key AND v.period = s.period AND v.known_until IS NULL",
        )
        .execute(&mut **tx)
        .await?;
        let counts_rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT action, count(*) FROM classified GROUP BY action")
                .fetch_all(&mut **tx)
                .await?;
        let mut counts = MergeCounts::default();
        let mut not_found = 0;
        for (action, n) in counts_rows {
            match action.as_str() {
                "I" | "X" => counts.inserted += n,
                "R" => counts.revised += n,
                "U" => counts.unchanged += n,
                "D" => counts.deleted += n,
                _ => not_found += n,
            }
        }
        let changed = counts.inserted + counts.revised + counts.deleted;
        if not_found > 0 {
            let missing: Option<(i64,)> = sqlx::query_as(
                "SELECT idx FROM classified WHERE action = 'N' ORDER BY idx LIMIT 1",
            )
            .fetch_optional(&mut **tx)
            .await?;
            return Err(Error::NotFound(format!(
                "observation (row {})",
                missing.map(|m| m.0).unwrap_or(0)
            )));
        }
        if validate_only {
            // Nothing to write: roll back (dropping the transaction does).
            return Ok(Merged {
                counts,
                commit_time: None,
            });
        }
        if changed == 0 {
            let merged = Merged {
                counts,
                commit_time: None,
            };
            // A no-op still claims its request id, so that the id cannot be reused
            // for a different request.
            if let Some(claim) = claim {
                save_claim(&mut self.tx, claim, merged.to_stored()).await?;
                self.tx.commit().await?;
            }
            return Ok(merged);
        }
        sqlx::query(
            "UPDATE observation_versions v SET known_until = $1 FROM classified c \
              WHERE c.action IN ('R', 'X', 'D') AND v.indicator_key = c.indicator_key \
                AND v.period = c.period AND v.known_until IS NULL",
        )
        .bind(commit_time)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO observation_versions \
               (indicator_key, period, value, status, comment, source, deleted, known_from, commit_seq) \
             SELECT indicator_key, period, value, status, comment, source, deleted, $1, $2 \
               FROM classified WHERE action IN ('I', 'X', 'R', 'D')",
        )
        .bind(commit_time)
        .bind(seq)
        .execute(&mut **tx)
        .await?;
        sqlx::query("INSERT INTO observation_commits (seq, commit_time, method, versions) VALUES ($1, $2, $3, $4)")
            .bind(seq)
            .bind(commit_time)
            .bind(method)
            .bind(changed)
            .execute(&mut **tx)
            .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(seq.to_string())
            .execute(&mut **tx)
            .await?;
        // One audit event per indicator written to, with counts (not one per row).
        let actor = call::current().unwrap_or_default();
        sqlx::query(
            "INSERT INTO audit_events (actor, method, resource, action, request_id, after) \
             SELECT $1, $2, 'indicators/' || i.indicator_id || '/observations', 'IMPORT', $3, \
                    jsonb_build_object('commit', $4::bigint, \
                      'inserted', count(*) FILTER (WHERE c.action IN ('I', 'X')), \
                      'revised', count(*) FILTER (WHERE c.action = 'R'), \
                      'deleted', count(*) FILTER (WHERE c.action = 'D'), \
                      'unchanged', count(*) FILTER (WHERE c.action = 'U')) \
               FROM classified c JOIN indicators i USING (indicator_key) \
              GROUP BY i.indicator_id ORDER BY i.indicator_id",
        )
        .bind(actor.actor.as_deref())
        .bind(if actor.method.is_empty() {
            method
        } else {
            actor.method.as_str()
        })
        .bind(&actor.request_id)
        .bind(seq)
        .execute(&mut **tx)
        .await?;
        let merged = Merged {
            counts,
            commit_time: Some(commit_time),
        };
        if let Some(claim) = claim {
            save_claim(&mut self.tx, claim, merged.to_stored()).await?;
        }
        self.tx.commit().await?;
        Ok(Merged {
            counts,
            commit_time: Some(commit_time),
        })
    }
}

/// Records a request id's claim with its result, in the write's transaction. A
/// concurrent write with the same id got there first when this is a unique violation.
async fn save_claim(
    tx: &mut Transaction<'static, Postgres>,
    claim: Claim,
    response: Vec<u8>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (request_id, method, fingerprint, response) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(claim.request_id)
    .bind(claim.method)
    .bind(claim.fingerprint)
    .bind(response)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::RequestReplayed
        } else {
            e.into()
        }
    })?;
    Ok(())
}

enum Command {
    Append(Vec<StagedRow>),
    Duplicates(i64, oneshot::Sender<Result<Vec<(i64, i64)>>>),
    Merge(
        &'static str,
        bool,
        Option<Claim>,
        oneshot::Sender<Result<Merged>>,
    ),
}

/// A write in progress, driven from a task of its own.
///
/// The transaction and its `COPY`s run in a spawned task that the caller talks to
/// through a channel. When a client cancels its call, the caller's future is dropped
/// at an `await` — but the database conversation is never cut in the middle of a
/// protocol exchange (a half-sent `COPY` would put the pooled connection out of step
/// with the server): the task finishes the step it is on, sees the channel closed,
/// rolls the transaction back and returns the connection clean.
pub struct StagingHandle {
    tx: mpsc::Sender<Command>,
    rows: i64,
}

fn task_gone() -> Error {
    Error::internal(anyhow::anyhow!("the staging task ended unexpectedly"))
}

impl StagingHandle {
    /// Opens the transaction and its staging table.
    pub async fn begin(pool: &PgPool) -> Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Command>(2);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let pool = pool.clone();
        // The task does not inherit the call's context: hand it over.
        let call = call::current().unwrap_or_default();
        tokio::spawn(call::scope(call, async move {
            let mut staging = match Staging::begin(&pool).await {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            // The first failed append; reported by the next command that answers.
            let mut failed: Option<Error> = None;
            while let Some(command) = rx.recv().await {
                match command {
                    Command::Append(rows) => {
                        if failed.is_none()
                            && let Err(e) = staging.append(&rows).await
                        {
                            failed = Some(e);
                        }
                    }
                    Command::Duplicates(limit, reply) => {
                        let _ = reply.send(match failed.take() {
                            Some(e) => Err(e),
                            None => staging.duplicates(limit).await,
                        });
                    }
                    Command::Merge(method, validate_only, claim, reply) => {
                        let _ = reply.send(match failed.take() {
                            Some(e) => Err(e),
                            None => staging.merge(method, validate_only, claim).await,
                        });
                        return;
                    }
                }
            }
            // The caller went away without merging: nothing is written.
            if let Err(e) = staging.tx.rollback().await {
                tracing::warn!(error = %e, "rollback of an abandoned write failed");
            }
        }));
        ready_rx.await.map_err(|_| task_gone())??;
        Ok(Self { tx, rows: 0 })
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (reply, response) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| task_gone())?;
        response.await.map_err(|_| task_gone())?
    }

    /// Rows staged so far.
    pub fn rows(&self) -> i64 {
        self.rows
    }

    /// Streams `rows` into the staging table with one COPY. Does not wait for the COPY:
    /// the caller parses the next chunk while PostgreSQL ingests this one (the channel
    /// holds two chunks, which bounds memory). A failure surfaces at the next
    /// [`duplicates`](Self::duplicates) or [`merge`](Self::merge).
    pub async fn append(&mut self, rows: Vec<StagedRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.rows += rows.len() as i64;
        self.tx
            .send(Command::Append(rows))
            .await
            .map_err(|_| task_gone())
    }

    /// Rows that name the same observation as an earlier row: (index, first index).
    pub async fn duplicates(&mut self, limit: i64) -> Result<Vec<(i64, i64)>> {
        self.call(|reply| Command::Duplicates(limit, reply)).await
    }

    /// Classifies and writes the staged rows, or with `validate_only` only classifies
    /// them; see [`Staging::merge`].
    /// With a `claim`, the request id is recorded with the result in the same
    /// transaction ([`Error::RequestReplayed`] when a concurrent write holds it).
    pub async fn merge(
        self,
        method: &'static str,
        validate_only: bool,
        claim: Option<Claim>,
    ) -> Result<Merged> {
        self.call(|reply| Command::Merge(method, validate_only, claim, reply))
            .await
    }
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

/// The versions of `keys` (that exist) current at `as_of`, or now when `None`, for a
/// batch response.
pub async fn current(
    pool: &PgPool,
    keys: &[(i32, String)],
    as_of: Option<DateTime<Utc>>,
) -> Result<HashMap<(i32, String), Version>> {
    let ks: Vec<i32> = keys.iter().map(|k| k.0).collect();
    let ps: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let rows = sqlx::query(concat!(
        "SELECT v.indicator_key, ",
        version_columns!(),
        " FROM unnest($1::integer[], $2::text[]) AS k(indicator_key, period) \
          JOIN observation_versions v ON v.indicator_key = k.indicator_key AND v.period = k.period \
           AND CASE WHEN $3::timestamptz IS NULL THEN v.known_until IS NULL \
                    ELSE v.known_from <= $3 AND (v.known_until IS NULL OR v.known_until > $3) END \
          JOIN indicators i ON i.indicator_key = v.indicator_key"
    ))
    .bind(&ks)
    .bind(&ps)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let key: i32 = r.try_get("indicator_key")?;
        let mut v = version_from_row(&r)?;
        // As it was at `as_of`: not yet superseded.
        if as_of.is_some() && v.known_until > as_of {
            v.known_until = None;
        }
        out.insert((key, v.name.period.to_string()), v);
    }
    Ok(out)
}

/// Position in the change feed: after commit `seq`, and within it after
/// `(indicator_key, period)` when given (else after the whole commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPosition {
    /// Commit number.
    pub seq: i64,
    /// Last change seen within that commit.
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

/// The number of the latest commit (0 when none).
pub async fn latest_commit(pool: &PgPool) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM observation_commits")
        .fetch_one(pool)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// Up to `limit` changes after `from`, in commit order, optionally only of the
/// indicators with the given keys.
pub async fn changes_after(
    pool: &PgPool,
    from: &FeedPosition,
    indicator_keys: Option<&[i32]>,
    limit: i64,
) -> Result<Vec<Change>> {
    let (within_key, within_period) = match &from.within {
        Some((k, p)) => (Some(*k), Some(p.as_str())),
        None => (None, None),
    };
    let rows = sqlx::query(concat!(
        "SELECT v.commit_seq, v.indicator_key, ",
        version_columns!(),
        ", EXISTS (SELECT 1 FROM observation_versions p \
                   WHERE p.indicator_key = v.indicator_key AND p.period = v.period \
                     AND p.known_until = v.known_from AND NOT p.deleted) AS had_previous \
          FROM observation_versions v JOIN indicators i USING (indicator_key) \
         WHERE v.commit_seq >= $1 \
           AND (v.commit_seq > $1 OR ($2::integer IS NOT NULL \
                AND (v.indicator_key, v.period::text) > ($2::integer, $3::text))) \
           AND ($4::integer[] IS NULL OR v.indicator_key = ANY($4)) \
         ORDER BY v.commit_seq, v.indicator_key, v.period LIMIT $5"
    ))
    .bind(from.seq)
    .bind(within_key)
    .bind(within_period)
    .bind(indicator_keys)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
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
                    seq: r.try_get("commit_seq")?,
                    within: Some((r.try_get("indicator_key")?, version.name.period.to_string())),
                },
                kind,
                version,
            })
        })
        .collect()
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
