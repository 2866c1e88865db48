//! Reads for reports: one consistent snapshot per report.

use std::collections::HashMap;

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Row as _, Transaction};

use super::begin_snapshot;
use crate::domain::Period;
use crate::domain::reporting::Point;
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
}
