//! Reads for reports: one consistent snapshot per report.

use std::collections::HashMap;

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Row as _, Transaction};

use super::begin_snapshot;
use crate::domain::Period;
use crate::domain::reporting::Point;
use crate::domain::vintages::Version;
use crate::error::{Error, Result};

/// Starts a report: the snapshot's instant, and the longest a report's statement may run
/// (PostgreSQL `statement_timeout`, 30 s, for this transaction only).
const REPORT_START_SQL: &str = "SELECT now(), set_config('statement_timeout', '30s', true)";

/// A read-only REPEATABLE READ transaction and the instant a report is as of: every
/// query of the report sees the same data.
pub struct Snapshot {
    tx: Transaction<'static, Postgres>,
    /// The instant requested, if any (`None`: now, i.e. the snapshot's current data).
    pub as_of: Option<DateTime<Utc>>,
    /// The instant the answer is as of (the request's, or the snapshot's start).
    pub effective: DateTime<Utc>,
}

impl Snapshot {
    /// Opens a snapshot.
    pub async fn open(pool: &PgPool, as_of: Option<DateTime<Utc>>) -> Result<Self> {
        let mut tx = begin_snapshot(pool).await?;
        // One round trip: the snapshot's instant, and a statement timeout so that a
        // runaway report is stopped by the database (DEADLINE_EXCEEDED to the caller)
        // instead of holding a connection and a snapshot indefinitely.
        let (now, _): (DateTime<Utc>, String) =
            sqlx::query_as(REPORT_START_SQL).fetch_one(&mut *tx).await?;
        Ok(Self {
            tx,
            as_of,
            effective: as_of.unwrap_or(now),
        })
    }

    /// The connection, for the other stores' readers.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The published values (deletions left out) of the given indicators, by key, in
    /// period order, restricted to periods whose text lies in `[from, to]` when given
    /// (periods of one indicator share its frequency, so text order is time order).
    pub async fn points(
        &mut self,
        keys: &[i32],
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<HashMap<i32, Vec<Point>>> {
        // Two statements rather than one with `CASE WHEN $as_of IS NULL`: PostgreSQL
        // caches a generic plan for a prepared statement after a few executions, and a
        // generic plan cannot use the partial index of current versions (nor the period
        // range) behind such a CASE; it would read every superseded version too. The
        // bounds default to values outside the SDMX period range for the same reason.
        let (from, to) = (from.unwrap_or("0000"), to.unwrap_or("9999~"));
        let query = match self.as_of {
            None => sqlx::query(
                "SELECT indicator_key, period::text AS period, value::text AS value \
                   FROM observation_versions \
                  WHERE indicator_key = ANY($1) AND known_until IS NULL AND NOT deleted \
                    AND period BETWEEN $2 AND $3 \
                  ORDER BY indicator_key, period",
            )
            .bind(keys)
            .bind(from)
            .bind(to),
            Some(as_of) => sqlx::query(
                "SELECT indicator_key, period::text AS period, value::text AS value \
                   FROM observation_versions \
                  WHERE indicator_key = ANY($1) AND NOT deleted \
                    AND known_from <= $4 AND (known_until IS NULL OR known_until > $4) \
                    AND period BETWEEN $2 AND $3 \
                  ORDER BY indicator_key, period",
            )
            .bind(keys)
            .bind(from)
            .bind(to)
            .bind(as_of),
        };
        let rows = query.fetch_all(&mut *self.tx).await?;
        let mut out: HashMap<i32, Vec<Point>> = HashMap::new();
        for r in rows {
            let key: i32 = r.try_get("indicator_key")?;
            let period: String = r.try_get("period")?;
            let value: Option<String> = r.try_get("value")?;
            let period = Period::parse(&period)
                .map_err(|_| Error::internal(anyhow::anyhow!("stored period {period:?}")))?;
            let value = value
                .map(|v| {
                    v.parse::<BigDecimal>()
                        .map_err(|_| Error::internal(anyhow::anyhow!("stored value {v:?}")))
                })
                .transpose()?;
            out.entry(key).or_default().push(Point { period, value });
        }
        Ok(out)
    }

    /// Every version of one indicator's observations whose period text lies in
    /// `[from, to]` (when given), oldest first (by `known_from`, then period): first
    /// values, revisions, missing values (no value) and deletions. With an `as_of`,
    /// only versions known at or before it; without, every version this snapshot sees
    /// (so that the newest state is exactly what [`Snapshot::points`] reads now).
    pub async fn versions(
        &mut self,
        key: i32,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<Version<DateTime<Utc>>>> {
        let (from, to) = (from.unwrap_or("0000"), to.unwrap_or("9999~"));
        // The primary key (indicator_key, period, known_from) serves the key and the
        // period range; the instant is a filter on what it finds.
        let rows = sqlx::query(
            "SELECT period::text AS period, value::text AS value, deleted, known_from \
               FROM observation_versions \
              WHERE indicator_key = $1 AND period BETWEEN $2 AND $3 \
                AND ($4::timestamptz IS NULL OR known_from <= $4) \
              ORDER BY known_from, period",
        )
        .bind(key)
        .bind(from)
        .bind(to)
        .bind(self.as_of)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|r| {
                let period: String = r.try_get("period")?;
                let value: Option<String> = r.try_get("value")?;
                let period = Period::parse(&period)
                    .map_err(|_| Error::internal(anyhow::anyhow!("stored period {period:?}")))?;
                let value = value
                    .map(|v| {
                        v.parse::<BigDecimal>()
                            .map_err(|_| Error::internal(anyhow::anyhow!("stored value {v:?}")))
                    })
                    .transpose()?;
                Ok(Version {
                    period,
                    value,
                    deleted: r.try_get("deleted")?,
                    known_from: r.try_get("known_from")?,
                })
            })
            .collect()
    }

    /// One indicator's vintages known at or before `until`, oldest first, after
    /// `after` (exclusive) when given, at most `limit`: for each distinct
    /// `known_from` of its versions with a period text in `[from, to]`, how many
    /// versions it published, which periods changed value (first published, revised,
    /// deleted or made missing; at most [`VINTAGE_PERIODS_SHOWN`] named) and how many
    /// were deleted.
    pub async fn vintages(
        &mut self,
        key: i32,
        from: Option<&str>,
        to: Option<&str>,
        until: DateTime<Utc>,
        after: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<VintageRow>> {
        let (from, to) = (from.unwrap_or("0000"), to.unwrap_or("9999~"));
        // A version changes its period when its value or its deletion differs from the
        // version before it (a first version always does: lag() is NULL there).
        let rows = sqlx::query(
            "WITH v AS ( \
               SELECT period, known_from, deleted, \
                      (value IS DISTINCT FROM lag(value) OVER w \
                       OR deleted IS DISTINCT FROM lag(deleted) OVER w) AS changed \
                 FROM observation_versions \
                WHERE indicator_key = $1 AND period BETWEEN $2 AND $3 AND known_from <= $4 \
               WINDOW w AS (PARTITION BY period ORDER BY known_from)) \
             SELECT known_from, count(*) AS versions, \
                    count(*) FILTER (WHERE changed) AS changed, \
                    count(*) FILTER (WHERE changed AND deleted) AS deleted, \
                    coalesce((array_agg(period::text ORDER BY period) \
                              FILTER (WHERE changed))[1:$7], '{}') AS periods \
               FROM v \
              WHERE known_from > coalesce($5, '-infinity'::timestamptz) \
              GROUP BY known_from \
              ORDER BY known_from \
              LIMIT $6",
        )
        .bind(key)
        .bind(from)
        .bind(to)
        .bind(until)
        .bind(after)
        .bind(limit)
        .bind(VINTAGE_PERIODS_SHOWN)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(VintageRow {
                    time: r.try_get("known_from")?,
                    versions: r.try_get("versions")?,
                    changed: r.try_get("changed")?,
                    deleted: r.try_get("deleted")?,
                    periods: r.try_get("periods")?,
                })
            })
            .collect()
    }
}

/// Periods a vintage names at most.
pub const VINTAGE_PERIODS_SHOWN: i32 = 100;

/// One vintage of an indicator, as [`Snapshot::vintages`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct VintageRow {
    /// The instant (the versions' `known_from`).
    pub time: DateTime<Utc>,
    /// Versions published at it.
    pub versions: i64,
    /// Periods whose value changed.
    pub changed: i64,
    /// Periods deleted.
    pub deleted: i64,
    /// The first [`VINTAGE_PERIODS_SHOWN`] changed periods, in period order.
    pub periods: Vec<String>,
}
