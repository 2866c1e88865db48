//! Targets of a programme.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};

use super::{begin, check_etag, id, is_unique_violation};
use crate::domain::names::TargetName;
use crate::domain::program::{Direction, Meta, TargetKind, TargetSpec};
use crate::domain::{Decimal, FieldViolation, Frequency, Period, ResourceId};
use crate::error::{Error, Result};
use crate::filter::{EnumType, Field, FieldType, Keyed, ListQuery, Schema};

/// A stored target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Its name.
    pub name: TargetName,
    /// Its content.
    pub spec: TargetSpec,
    /// Bookkeeping.
    pub meta: Meta,
}

macro_rules! columns {
    () => {
        "program_id::text AS program_id, target_id::text AS target_id, title, \
    description, indicator_id::text AS indicator_id, initiative_id::text AS initiative_id, kind, \
    target_value::text AS target_value, unit_multiplier, target_period::text AS target_period, \
    baseline_value::text AS baseline_value, baseline_period::text AS baseline_period, direction, \
    create_time, update_time, version"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    program_id: String,
    target_id: String,
    title: String,
    description: String,
    indicator_id: String,
    initiative_id: Option<String>,
    kind: String,
    target_value: String,
    unit_multiplier: i32,
    target_period: String,
    baseline_value: Option<String>,
    baseline_period: Option<String>,
    direction: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
}

fn corrupt(what: &str, value: &str) -> Error {
    Error::internal(anyhow::anyhow!(
        "stored target has an invalid {what}: {value:?}"
    ))
}

impl TryFrom<Row> for Target {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let period = |p: &str| Period::parse(p).map_err(|_| corrupt("period", p));
        Ok(Target {
            name: TargetName {
                program: id(r.program_id),
                target: id(r.target_id),
            },
            spec: TargetSpec {
                title: r.title,
                description: r.description,
                indicator: id(r.indicator_id),
                initiative: r.initiative_id.map(id),
                kind: TargetKind::from_code(&r.kind).ok_or_else(|| corrupt("kind", &r.kind))?,
                target_value: Decimal::from_db(r.target_value),
                unit_multiplier: r.unit_multiplier,
                target_period: period(&r.target_period)?,
                baseline_value: r.baseline_value.map(Decimal::from_db),
                baseline_period: r.baseline_period.as_deref().map(period).transpose()?,
                direction: Direction::from_code(&r.direction)
                    .ok_or_else(|| corrupt("direction", &r.direction))?,
            },
            meta: Meta {
                create_time: r.create_time,
                update_time: r.update_time,
                version: r.version,
            },
        })
    }
}

async fn fetch(
    tx: &mut Transaction<'static, Postgres>,
    name: &TargetName,
    lock: bool,
) -> Result<Target> {
    let sql = if lock {
        concat!(
            "SELECT ",
            columns!(),
            " FROM targets WHERE program_id = $1 AND target_id = $2 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            columns!(),
            " FROM targets WHERE program_id = $1 AND target_id = $2"
        )
    };
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(name.program.as_str())
        .bind(name.target.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.ok_or_else(|| Error::NotFound(name.to_string()))?
        .try_into()
}

/// Checks the references of a target: the indicator exists and its frequency is not
/// coarser than the target's periods; the initiative exists in the same programme.
async fn check_references(
    tx: &mut Transaction<'static, Postgres>,
    name: &TargetName,
    spec: &TargetSpec,
) -> Result<()> {
    let mut violations = Vec::new();
    let frequency: Option<String> = sqlx::query_scalar(
        "SELECT frequency FROM indicators WHERE indicator_id = $1 FOR KEY SHARE",
    )
    .bind(spec.indicator.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    match frequency.as_deref().and_then(Frequency::from_code) {
        None => violations.push(FieldViolation::new(
            "target.indicator",
            "NOT_FOUND",
            format!("indicators/{} does not exist", spec.indicator),
        )),
        Some(freq) => {
            let periods = [
                ("target.target_period", Some(spec.target_period)),
                ("target.baseline_period", spec.baseline_period),
            ];
            for (field, period) in periods {
                if let Some(p) = period.filter(|p| p.frequency() > freq) {
                    violations.push(FieldViolation::new(
                        field,
                        "PERIOD_FINER_THAN_INDICATOR",
                        format!(
                            "{p} is {} but indicators/{} is only {}",
                            p.frequency().describe(),
                            spec.indicator,
                            freq.describe()
                        ),
                    ));
                }
            }
        }
    }
    if let Some(initiative) = &spec.initiative {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM initiatives WHERE program_id = $1 AND initiative_id = $2 FOR KEY SHARE",
        )
        .bind(name.program.as_str())
        .bind(initiative.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if found.is_none() {
            violations.push(FieldViolation::new(
                "target.initiative",
                "NOT_FOUND",
                format!(
                    "programs/{}/initiatives/{initiative} does not exist (the initiative must be \
                     in the target's programme)",
                    name.program
                ),
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

fn bind_spec<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    spec: &'q TargetSpec,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    q.bind(&spec.title)
        .bind(&spec.description)
        .bind(spec.indicator.as_str())
        .bind(spec.initiative.as_ref().map(ResourceId::as_str))
        .bind(spec.kind.code())
        .bind(spec.target_value.as_str())
        .bind(spec.unit_multiplier)
        .bind(spec.target_period.to_string())
        .bind(spec.baseline_value.as_ref().map(Decimal::as_str))
        .bind(spec.baseline_period.map(|p| p.to_string()))
        .bind(spec.direction.code())
}

/// Creates a target. NOT_FOUND when the programme does not exist, ALREADY_EXISTS when
/// the id is taken, INVALID_ARGUMENT for a missing indicator or initiative.
pub async fn create(pool: &PgPool, name: &TargetName, spec: &TargetSpec) -> Result<Target> {
    let mut tx = begin(pool).await?;
    let program: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM programs WHERE program_id = $1 FOR KEY SHARE")
            .bind(name.program.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    if program.is_none() {
        return Err(Error::NotFound(name.program_name().to_string()));
    }
    check_references(&mut tx, name, spec).await?;
    let q = sqlx::query(
        "INSERT INTO targets (program_id, target_id, title, description, indicator_id, \
         initiative_id, kind, target_value, unit_multiplier, target_period, baseline_value, \
         baseline_period, direction) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9, $10, $11::numeric, $12, $13)",
    )
    .bind(name.program.as_str())
    .bind(name.target.as_str());
    bind_spec(q, spec).execute(&mut *tx).await.map_err(|e| {
        if is_unique_violation(&e) {
            Error::AlreadyExists(name.to_string())
        } else {
            e.into()
        }
    })?;
    let created = fetch(&mut tx, name, false).await?;
    tx.commit().await?;
    Ok(created)
}

/// Reads a target.
pub async fn get(db: impl sqlx::PgExecutor<'_>, name: &TargetName) -> Result<Target> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM targets WHERE program_id = $1 AND target_id = $2"
    );
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(name.program.as_str())
        .bind(name.target.as_str())
        .fetch_optional(db)
        .await?;
    row.ok_or_else(|| Error::NotFound(name.to_string()))?
        .try_into()
}

/// Filterable and orderable fields of ListTargets.
pub static FILTER_SCHEMA: Schema = Schema {
    fields: &[
        Field::new(
            "name",
            "('programs/' || program_id || '/targets/' || target_id)",
            FieldType::String,
        )
        .orderable("targets.target_id"),
        Field::new("title", "title", FieldType::String).orderable("targets.title COLLATE \"C\""),
        Field::new("description", "description", FieldType::String),
        Field::new(
            "indicator",
            "('indicators/' || indicator_id)",
            FieldType::String,
        )
        .orderable("targets.indicator_id"),
        Field::new(
            "initiative",
            "COALESCE('programs/' || program_id || '/initiatives/' || initiative_id, '')",
            FieldType::String,
        )
        .orderable("COALESCE(targets.initiative_id::text, '') COLLATE \"C\""),
        Field::new("kind", "kind", FieldType::Enum(&KIND)),
        Field::new("target_value", "target_value", FieldType::Decimal)
            .orderable("targets.target_value"),
        Field::new("unit_multiplier", "unit_multiplier", FieldType::Integer)
            .orderable("targets.unit_multiplier"),
        Field::new("target_period", "target_period::text", FieldType::String)
            .orderable("targets.target_period::text COLLATE \"C\""),
        Field::new("baseline_value", "baseline_value", FieldType::Decimal)
            .nullable()
            .orderable("targets.baseline_value"),
        Field::new(
            "baseline_period",
            "COALESCE(baseline_period::text, '')",
            FieldType::String,
        )
        .orderable("COALESCE(targets.baseline_period::text, '') COLLATE \"C\""),
        Field::new("direction", "direction", FieldType::Enum(&DIRECTION)),
        Field::new("create_time", "create_time", FieldType::Timestamp)
            .orderable("targets.create_time"),
        Field::new("update_time", "update_time", FieldType::Timestamp)
            .orderable("targets.update_time"),
    ],
    id_sort: "targets.target_id",
};

/// Values of the targets' `kind`.
pub(crate) static KIND: EnumType = EnumType {
    prefix: "KIND_",
    values: &[("KIND_LEVEL", "level"), ("KIND_GROWTH_RATE", "growth_rate")],
};

/// Values of the `direction` of targets and indicators.
pub(crate) static DIRECTION: EnumType = EnumType {
    prefix: "DIRECTION_",
    values: &[
        ("DIRECTION_HIGHER_IS_BETTER", "higher"),
        ("DIRECTION_LOWER_IS_BETTER", "lower"),
    ],
};

/// Lists up to `limit` targets of a programme matching `query`, after the page key
/// `after`, each with the page key of its row; NOT_FOUND when the programme does not
/// exist.
pub async fn list(
    pool: &PgPool,
    program: &ResourceId,
    query: &ListQuery,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Target, String)>> {
    let mut qb = QueryBuilder::new(concat!("SELECT ", columns!(), ", "));
    query.order.push_key_column(&mut qb);
    qb.push(" FROM targets WHERE program_id = ");
    qb.push_bind(program.as_str().to_owned());
    query.push_tail(&mut qb, after, limit)?;
    let rows: Vec<Keyed<Row>> = qb.build_query_as().fetch_all(pool).await?;
    if rows.is_empty() {
        super::programs::get(pool, program).await?;
    }
    rows.into_iter()
        .map(|k| Ok((Target::try_from(k.row)?, query.order.token_key(&k.key))))
        .collect()
}

/// Every target of a programme, in id order.
pub async fn list_all(db: impl sqlx::PgExecutor<'_>, program: &ResourceId) -> Result<Vec<Target>> {
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM targets WHERE program_id = $1 ORDER BY target_id"
    ))
    .bind(program.as_str())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Target::try_from).collect()
}

/// Updates a target (see `programs::update` for the protocol).
pub async fn update(
    pool: &PgPool,
    name: &TargetName,
    etag: Option<&str>,
    change: impl FnOnce(&Target) -> Result<TargetSpec>,
) -> Result<Target> {
    let mut tx = begin(pool).await?;
    let current = fetch(&mut tx, name, true).await?;
    check_etag(&name.to_string(), etag, &current.meta.etag())?;
    let spec = change(&current)?;
    if spec == current.spec {
        return Ok(current);
    }
    check_references(&mut tx, name, &spec).await?;
    let q = sqlx::query(
        "UPDATE targets SET title = $3, description = $4, indicator_id = $5, initiative_id = $6, \
         kind = $7, target_value = $8::numeric, unit_multiplier = $9, target_period = $10, \
         baseline_value = $11::numeric, baseline_period = $12, direction = $13, \
         update_time = now(), version = version + 1 \
         WHERE program_id = $1 AND target_id = $2",
    )
    .bind(name.program.as_str())
    .bind(name.target.as_str());
    bind_spec(q, &spec).execute(&mut *tx).await?;
    let updated = fetch(&mut tx, name, false).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes a target.
pub async fn delete(pool: &PgPool, name: &TargetName, etag: Option<&str>) -> Result<()> {
    let mut tx = begin(pool).await?;
    let current = fetch(&mut tx, name, true).await?;
    check_etag(&name.to_string(), etag, &current.meta.etag())?;
    sqlx::query("DELETE FROM targets WHERE program_id = $1 AND target_id = $2")
        .bind(name.program.as_str())
        .bind(name.target.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
