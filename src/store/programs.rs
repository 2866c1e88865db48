//! Programmes.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, QueryBuilder};

use super::{begin, check_etag, has_dependants, id, is_unique_violation};
use crate::domain::ResourceId;
use crate::domain::names::ProgramName;
use crate::domain::program::{Meta, ProgramSpec};
use crate::error::{Error, Result};
use crate::filter::{Field, FieldType, Keyed, ListQuery, Schema};

/// A stored programme.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Its id (`programs/{id}`).
    pub id: ResourceId,
    /// Its content.
    pub spec: ProgramSpec,
    /// Bookkeeping.
    pub meta: Meta,
}

impl Program {
    /// The resource name.
    pub fn name(&self) -> ProgramName {
        ProgramName(self.id.clone())
    }
}

macro_rules! columns {
    () => {
        "program_id::text AS program_id, title, issuing_body, adoption_date, \
    jurisdiction::text AS jurisdiction, \
    start_year, end_year, summary, source_uri, create_time, update_time, version"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    program_id: String,
    title: String,
    issuing_body: String,
    adoption_date: Option<NaiveDate>,
    jurisdiction: String,
    start_year: i32,
    end_year: i32,
    summary: String,
    source_uri: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
}

impl From<Row> for Program {
    fn from(r: Row) -> Self {
        Program {
            id: id(r.program_id),
            spec: ProgramSpec {
                title: r.title,
                issuing_body: r.issuing_body,
                adoption_date: r.adoption_date,
                jurisdiction: r.jurisdiction,
                start_year: r.start_year,
                end_year: r.end_year,
                summary: r.summary,
                source_uri: r.source_uri,
            },
            meta: Meta {
                create_time: r.create_time,
                update_time: r.update_time,
                version: r.version,
            },
        }
    }
}

/// Creates a programme; ALREADY_EXISTS when the id is taken.
pub async fn create(pool: &PgPool, program_id: &ResourceId, spec: &ProgramSpec) -> Result<Program> {
    let sql = concat!(
        "INSERT INTO programs (program_id, title, issuing_body, adoption_date, jurisdiction, \
         start_year, end_year, summary, source_uri) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING ",
        columns!(),
        ""
    );
    let mut tx = begin(pool).await?;
    let row: Row = sqlx::query_as(sql)
        .bind(program_id.as_str())
        .bind(&spec.title)
        .bind(&spec.issuing_body)
        .bind(spec.adoption_date)
        .bind(&spec.jurisdiction)
        .bind(spec.start_year)
        .bind(spec.end_year)
        .bind(&spec.summary)
        .bind(&spec.source_uri)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::AlreadyExists(ProgramName(program_id.clone()).to_string())
            } else {
                e.into()
            }
        })?;
    tx.commit().await?;
    Ok(row.into())
}

/// Reads a programme.
pub async fn get(db: impl sqlx::PgExecutor<'_>, program_id: &ResourceId) -> Result<Program> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM programs WHERE program_id = $1"
    );
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(program_id.as_str())
        .fetch_optional(db)
        .await?;
    row.map(Program::from)
        .ok_or_else(|| Error::NotFound(ProgramName(program_id.clone()).to_string()))
}

/// Filterable and orderable fields of ListPrograms.
pub static FILTER_SCHEMA: Schema = Schema {
    fields: &[
        Field::new("name", "('programs/' || program_id)", FieldType::String)
            .orderable("programs.program_id"),
        Field::new("title", "title", FieldType::String).orderable("programs.title COLLATE \"C\""),
        Field::new("issuing_body", "issuing_body", FieldType::String)
            .orderable("programs.issuing_body COLLATE \"C\""),
        Field::new("adoption_date", "adoption_date", FieldType::Date)
            .nullable()
            .orderable("programs.adoption_date"),
        Field::new("jurisdiction", "jurisdiction::text", FieldType::String)
            .orderable("programs.jurisdiction::text COLLATE \"C\""),
        Field::new("start_year", "start_year", FieldType::Integer).orderable("programs.start_year"),
        Field::new("end_year", "end_year", FieldType::Integer).orderable("programs.end_year"),
        Field::new("summary", "summary", FieldType::String),
        Field::new("source_uri", "source_uri", FieldType::String),
        Field::new("create_time", "create_time", FieldType::Timestamp)
            .orderable("programs.create_time"),
        Field::new("update_time", "update_time", FieldType::Timestamp)
            .orderable("programs.update_time"),
    ],
    id_sort: "programs.program_id",
};

/// Lists up to `limit` programmes matching `query`, after the page key `after`, each
/// with the page key of its row.
pub async fn list(
    pool: &PgPool,
    query: &ListQuery,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Program, String)>> {
    let mut qb = QueryBuilder::new(concat!("SELECT ", columns!(), ", "));
    query.order.push_key_column(&mut qb);
    qb.push(" FROM programs WHERE TRUE");
    query.push_tail(&mut qb, after, limit)?;
    let rows: Vec<Keyed<Row>> = qb.build_query_as().fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|k| (Program::from(k.row), query.order.token_key(&k.key)))
        .collect())
}

/// Updates a programme: locks it, checks the etag, lets `change` compute the new
/// content from the current one, and writes it (a no-op change writes nothing).
pub async fn update(
    pool: &PgPool,
    program_id: &ResourceId,
    etag: Option<&str>,
    change: impl FnOnce(&Program) -> Result<ProgramSpec>,
) -> Result<Program> {
    let name = ProgramName(program_id.clone()).to_string();
    let mut tx = begin(pool).await?;
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM programs WHERE program_id = $1 FOR UPDATE"
    );
    let current: Program = sqlx::query_as::<_, Row>(sql)
        .bind(program_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .map(Program::from)
        .ok_or_else(|| Error::NotFound(name.clone()))?;
    check_etag(&name, etag, &current.meta.etag())?;
    let spec = change(&current)?;
    if spec == current.spec {
        return Ok(current);
    }
    let sql = concat!(
        "UPDATE programs SET title = $2, issuing_body = $3, adoption_date = $4, \
         jurisdiction = $5, start_year = $6, end_year = $7, summary = $8, source_uri = $9, \
         update_time = now(), version = version + 1 WHERE program_id = $1 RETURNING ",
        columns!(),
        ""
    );
    let row: Row = sqlx::query_as(sql)
        .bind(program_id.as_str())
        .bind(&spec.title)
        .bind(&spec.issuing_body)
        .bind(spec.adoption_date)
        .bind(&spec.jurisdiction)
        .bind(spec.start_year)
        .bind(spec.end_year)
        .bind(&spec.summary)
        .bind(&spec.source_uri)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Deletes a programme. Without `force`, FAILED_PRECONDITION while it has initiatives
/// or targets; with it, they are deleted too (by the cascading foreign keys).
pub async fn delete(
    pool: &PgPool,
    program_id: &ResourceId,
    etag: Option<&str>,
    force: bool,
) -> Result<()> {
    let name = ProgramName(program_id.clone()).to_string();
    let mut tx = begin(pool).await?;
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM programs WHERE program_id = $1 FOR UPDATE"
    );
    let current: Program = sqlx::query_as::<_, Row>(sql)
        .bind(program_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .map(Program::from)
        .ok_or_else(|| Error::NotFound(name.clone()))?;
    check_etag(&name, etag, &current.meta.etag())?;
    if !force {
        let children: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM ( \
               SELECT 'programs/' || program_id || '/initiatives/' || initiative_id AS name \
                 FROM initiatives WHERE program_id = $1 \
               UNION ALL \
               SELECT 'programs/' || program_id || '/targets/' || target_id \
                 FROM targets WHERE program_id = $1) c ORDER BY name LIMIT 1000",
        )
        .bind(program_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        if !children.is_empty() {
            return Err(has_dependants(&name, "initiatives or targets", children));
        }
    }
    // Targets first: they reference initiatives, whose cascade would otherwise race
    // the targets' own cascade inside one statement.
    sqlx::query("DELETE FROM targets WHERE program_id = $1")
        .bind(program_id.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM programs WHERE program_id = $1")
        .bind(program_id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
