//! Indicators.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::{begin, check_etag, has_dependants, id, is_unique_violation};
use crate::domain::indicator::{Aggregation, Flow, IndicatorSpec};
use crate::domain::names::IndicatorName;
use crate::domain::program::{Direction, Meta};
use crate::domain::{Frequency, ResourceId};
use crate::error::{Error, Result};
use crate::filter::{EnumType, Field, FieldType, Keyed, ListQuery, Schema};

/// A stored indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// Its id (`indicators/{id}`).
    pub id: ResourceId,
    /// Its content.
    pub spec: IndicatorSpec,
    /// Bookkeeping.
    pub meta: Meta,
}

impl Indicator {
    /// The resource name.
    pub fn name(&self) -> IndicatorName {
        IndicatorName(self.id.clone())
    }
}

macro_rules! columns {
    () => {
        "indicator_id::text AS indicator_id, title, description, unit, \
    unit_multiplier, frequency, flow, service_category, region::text AS region, dimensions, \
    aggregation, year_to_date, direction, source_agency, create_time, update_time, version"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    indicator_id: String,
    title: String,
    description: String,
    unit: String,
    unit_multiplier: i32,
    frequency: String,
    flow: String,
    service_category: Option<String>,
    region: String,
    dimensions: Json<BTreeMap<String, String>>,
    aggregation: String,
    year_to_date: bool,
    direction: String,
    source_agency: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
}

fn corrupt(what: &str, value: &str) -> Error {
    Error::internal(anyhow::anyhow!(
        "stored indicator has an invalid {what}: {value:?}"
    ))
}

impl TryFrom<Row> for Indicator {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Indicator {
            id: id(r.indicator_id),
            spec: IndicatorSpec {
                title: r.title,
                description: r.description,
                unit: r.unit,
                unit_multiplier: r.unit_multiplier,
                frequency: Frequency::from_code(&r.frequency)
                    .ok_or_else(|| corrupt("frequency", &r.frequency))?,
                flow: Flow::from_code(&r.flow).ok_or_else(|| corrupt("flow", &r.flow))?,
                service_category: r.service_category,
                region: r.region,
                dimensions: r.dimensions.0,
                aggregation: Aggregation::from_code(&r.aggregation)
                    .ok_or_else(|| corrupt("aggregation", &r.aggregation))?,
                year_to_date: r.year_to_date,
                direction: Direction::from_code(&r.direction)
                    .ok_or_else(|| corrupt("direction", &r.direction))?,
                source_agency: r.source_agency,
            },
            meta: Meta {
                create_time: r.create_time,
                update_time: r.update_time,
                version: r.version,
            },
        })
    }
}

fn bind_spec<'q>(
    q: sqlx::query::QueryAs<'q, Postgres, Row, sqlx::postgres::PgArguments>,
    spec: &'q IndicatorSpec,
) -> sqlx::query::QueryAs<'q, Postgres, Row, sqlx::postgres::PgArguments> {
    q.bind(&spec.title)
        .bind(&spec.description)
        .bind(&spec.unit)
        .bind(spec.unit_multiplier)
        .bind(spec.frequency.code())
        .bind(spec.flow.code())
        .bind(spec.service_category.as_deref())
        .bind(&spec.region)
        .bind(Json(&spec.dimensions))
        .bind(spec.aggregation.code())
        .bind(spec.year_to_date)
        .bind(spec.direction.code())
        .bind(&spec.source_agency)
}

/// Creates an indicator; ALREADY_EXISTS when the id is taken.
pub async fn create(
    pool: &PgPool,
    indicator_id: &ResourceId,
    spec: &IndicatorSpec,
) -> Result<Indicator> {
    let sql = concat!(
        "INSERT INTO indicators (indicator_id, title, description, unit, unit_multiplier, \
         frequency, flow, service_category, region, dimensions, aggregation, year_to_date, \
         direction, source_agency) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING ",
        columns!(),
        ""
    );
    let mut tx = begin(pool).await?;
    let q = sqlx::query_as::<_, Row>(sql).bind(indicator_id.as_str());
    let row = bind_spec(q, spec).fetch_one(&mut *tx).await.map_err(|e| {
        if is_unique_violation(&e) {
            Error::AlreadyExists(IndicatorName(indicator_id.clone()).to_string())
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    row.try_into()
}

/// Reads an indicator.
pub async fn get(db: impl sqlx::PgExecutor<'_>, indicator_id: &ResourceId) -> Result<Indicator> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM indicators WHERE indicator_id = $1"
    );
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(indicator_id.as_str())
        .fetch_optional(db)
        .await?;
    row.ok_or_else(|| Error::NotFound(IndicatorName(indicator_id.clone()).to_string()))?
        .try_into()
}

/// Reads the indicators with the given ids (missing ones are left out), with their
/// compact keys.
pub async fn get_many(
    db: impl sqlx::PgExecutor<'_>,
    ids: &[&str],
) -> Result<Vec<(i32, Indicator)>> {
    let rows = sqlx::query(concat!(
        "SELECT indicator_key, ",
        columns!(),
        " FROM indicators WHERE indicator_id = ANY($1::text[]) ORDER BY indicator_id"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            let key: i32 = sqlx::Row::try_get(&r, "indicator_key")?;
            let row = <Row as sqlx::FromRow<'_, sqlx::postgres::PgRow>>::from_row(&r)?;
            Ok((key, Indicator::try_from(row)?))
        })
        .collect()
}

/// Indicators matching a breakdown filter, with their compact keys.
pub async fn matching(
    db: impl sqlx::PgExecutor<'_>,
    region: Option<&str>,
    flow: Option<&str>,
    categories: &[String],
    dimensions: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(i32, Indicator)>> {
    let rows = sqlx::query(concat!(
        "SELECT indicator_key, ",
        columns!(),
        " FROM indicators WHERE ($1::text IS NULL OR region = $1) \
           AND ($2::text IS NULL OR flow = $2) \
           AND (cardinality($3::text[]) = 0 OR service_category = ANY($3)) \
           AND dimensions @> $4 ORDER BY indicator_id"
    ))
    .bind(region)
    .bind(flow)
    .bind(categories)
    .bind(Json(dimensions))
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            let key: i32 = sqlx::Row::try_get(&r, "indicator_key")?;
            let row = <Row as sqlx::FromRow<'_, sqlx::postgres::PgRow>>::from_row(&r)?;
            Ok((key, Indicator::try_from(row)?))
        })
        .collect()
}

/// Filterable and orderable fields of ListIndicators.
pub static FILTER_SCHEMA: Schema = Schema {
    fields: &[
        Field::new("name", "('indicators/' || indicator_id)", FieldType::String)
            .orderable("indicators.indicator_id"),
        Field::new("title", "title", FieldType::String).orderable("indicators.title COLLATE \"C\""),
        Field::new("description", "description", FieldType::String),
        Field::new("unit", "unit", FieldType::String).orderable("indicators.unit COLLATE \"C\""),
        Field::new("unit_multiplier", "unit_multiplier", FieldType::Integer)
            .orderable("indicators.unit_multiplier"),
        Field::new("frequency", "frequency", FieldType::Enum(&FREQUENCY)),
        Field::new("flow", "flow", FieldType::Enum(&FLOW)),
        Field::new(
            "service_category",
            "COALESCE(service_category, '')",
            FieldType::String,
        )
        .orderable("COALESCE(indicators.service_category, '') COLLATE \"C\""),
        Field::new("region", "region::text", FieldType::String)
            .orderable("indicators.region::text COLLATE \"C\""),
        Field::new("dimensions", "dimensions", FieldType::Map),
        Field::new("aggregation", "aggregation", FieldType::Enum(&AGGREGATION)),
        Field::new("year_to_date", "year_to_date", FieldType::Bool),
        Field::new(
            "direction",
            "direction",
            FieldType::Enum(&super::targets::DIRECTION),
        ),
        Field::new("source_agency", "source_agency", FieldType::String)
            .orderable("indicators.source_agency COLLATE \"C\""),
        Field::new("create_time", "create_time", FieldType::Timestamp)
            .orderable("indicators.create_time"),
        Field::new("update_time", "update_time", FieldType::Timestamp)
            .orderable("indicators.update_time"),
    ],
    id_sort: "indicators.indicator_id",
};

/// Values of the indicators' `frequency`.
pub(crate) static FREQUENCY: EnumType = EnumType {
    prefix: "FREQUENCY_",
    values: &[
        ("FREQUENCY_ANNUAL", "A"),
        ("FREQUENCY_HALF_YEARLY", "S"),
        ("FREQUENCY_QUARTERLY", "Q"),
        ("FREQUENCY_MONTHLY", "M"),
    ],
};

/// Values of the indicators' `flow`.
pub(crate) static FLOW: EnumType = EnumType {
    prefix: "FLOW_",
    values: &[
        ("FLOW_EXPORT", "export"),
        ("FLOW_IMPORT", "import"),
        ("FLOW_TOTAL", "total"),
        ("FLOW_BALANCE", "balance"),
        ("FLOW_NONE", "none"),
    ],
};

/// Values of the indicators' `aggregation`.
pub(crate) static AGGREGATION: EnumType = EnumType {
    prefix: "AGGREGATION_",
    values: &[
        ("AGGREGATION_SUM", "sum"),
        ("AGGREGATION_AVERAGE", "average"),
        ("AGGREGATION_END_OF_PERIOD", "end_of_period"),
    ],
};

/// Lists up to `limit` indicators matching `query`, after the page key `after`, each
/// with the page key of its row.
pub async fn list(
    pool: &PgPool,
    query: &ListQuery,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Indicator, String)>> {
    let mut qb = QueryBuilder::new(concat!("SELECT ", columns!(), ", "));
    query.order.push_key_column(&mut qb);
    qb.push(" FROM indicators WHERE TRUE");
    query.push_tail(&mut qb, after, limit)?;
    let rows: Vec<Keyed<Row>> = qb.build_query_as().fetch_all(pool).await?;
    rows.into_iter()
        .map(|k| Ok((Indicator::try_from(k.row)?, query.order.token_key(&k.key))))
        .collect()
}

/// Updates an indicator (see `programs::update` for the protocol). The frequency is
/// immutable: `change` must keep it (the database refuses otherwise).
pub async fn update(
    pool: &PgPool,
    indicator_id: &ResourceId,
    etag: Option<&str>,
    change: impl FnOnce(&Indicator) -> Result<IndicatorSpec>,
) -> Result<Indicator> {
    let name = IndicatorName(indicator_id.clone()).to_string();
    let mut tx = begin(pool).await?;
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM indicators WHERE indicator_id = $1 FOR UPDATE"
    );
    let current: Indicator = sqlx::query_as::<_, Row>(sql)
        .bind(indicator_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(name.clone()))?
        .try_into()?;
    check_etag(&name, etag, &current.meta.etag())?;
    let spec = change(&current)?;
    if spec == current.spec {
        return Ok(current);
    }
    let sql = concat!(
        "UPDATE indicators SET title = $2, description = $3, unit = $4, unit_multiplier = $5, \
         frequency = $6, flow = $7, service_category = $8, region = $9, dimensions = $10, \
         aggregation = $11, year_to_date = $12, direction = $13, source_agency = $14, \
         update_time = now(), version = version + 1 WHERE indicator_id = $1 RETURNING ",
        columns!(),
        ""
    );
    let q = sqlx::query_as::<_, Row>(sql).bind(indicator_id.as_str());
    let row = bind_spec(q, &spec).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    row.try_into()
}

/// Deletes an indicator. Without `force`, FAILED_PRECONDITION while it has observations,
/// targets use it or initiatives list it; with it, its observations (with their whole
/// history) and those targets are deleted and the initiatives no longer list it.
pub async fn delete(
    pool: &PgPool,
    indicator_id: &ResourceId,
    etag: Option<&str>,
    force: bool,
) -> Result<()> {
    let name = IndicatorName(indicator_id.clone()).to_string();
    let mut tx = begin(pool).await?;
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM indicators WHERE indicator_id = $1 FOR UPDATE"
    );
    let current: Indicator = sqlx::query_as::<_, Row>(sql)
        .bind(indicator_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(name.clone()))?
        .try_into()?;
    check_etag(&name, etag, &current.meta.etag())?;
    if !force {
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM ( \
               SELECT 'programs/' || program_id || '/targets/' || target_id AS name \
                 FROM targets WHERE indicator_id = $1 \
               UNION ALL \
               SELECT 'programs/' || program_id || '/initiatives/' || initiative_id \
                 FROM initiative_indicators WHERE indicator_id = $1 \
               UNION ALL \
               (SELECT 'indicators/' || $1 || '/observations/' || v.period \
                  FROM observation_versions v JOIN indicators i USING (indicator_key) \
                 WHERE i.indicator_id = $1 AND v.known_until IS NULL AND NOT v.deleted \
                 ORDER BY v.period LIMIT 20)) u ORDER BY name LIMIT 1000",
        )
        .bind(indicator_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            return Err(has_dependants(
                &name,
                "observations, or targets or initiatives that use it",
                users,
            ));
        }
    }
    for sql in [
        "DELETE FROM targets WHERE indicator_id = $1",
        "DELETE FROM initiative_indicators WHERE indicator_id = $1",
        "DELETE FROM observation_versions WHERE indicator_key = \
           (SELECT indicator_key FROM indicators WHERE indicator_id = $1)",
        "DELETE FROM indicators WHERE indicator_id = $1",
    ] {
        sqlx::query(sql)
            .bind(indicator_id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
