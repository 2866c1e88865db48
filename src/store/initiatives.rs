//! Initiatives: a tree per programme, with the indicators that measure each node.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};

use super::{begin, check_etag, has_dependants, id, is_unique_violation};
use crate::domain::names::{InitiativeName, ProgramName};
use crate::domain::program::{InitiativeSpec, InitiativeState, MAX_INITIATIVE_DEPTH, Meta};
use crate::domain::{FieldViolation, ResourceId};
use crate::error::{Error, Result};
use crate::filter::{EnumType, Field, FieldType, Keyed, ListQuery, Schema};

/// A stored initiative.
#[derive(Debug, Clone, PartialEq)]
pub struct Initiative {
    /// Its name.
    pub name: InitiativeName,
    /// Its content.
    pub spec: InitiativeSpec,
    /// Bookkeeping.
    pub meta: Meta,
}

macro_rules! columns {
    () => {
        "i.program_id::text AS program_id, i.initiative_id::text AS initiative_id, \
    i.parent_initiative_id::text AS parent_initiative_id, i.title, i.description, i.lead_agency, \
    i.state, i.start_date, i.end_date, i.tags, i.position, i.create_time, i.update_time, i.version, \
    ARRAY(SELECT ii.indicator_id::text FROM initiative_indicators ii \
           WHERE ii.program_id = i.program_id AND ii.initiative_id = i.initiative_id \
           ORDER BY ii.ordinal) AS indicators"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    program_id: String,
    initiative_id: String,
    parent_initiative_id: Option<String>,
    title: String,
    description: String,
    lead_agency: String,
    state: String,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    tags: Vec<String>,
    position: i32,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    version: i64,
    indicators: Vec<String>,
}

impl TryFrom<Row> for Initiative {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let state = InitiativeState::from_code(&r.state)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown state {:?}", r.state)))?;
        Ok(Initiative {
            name: InitiativeName {
                program: id(r.program_id),
                initiative: id(r.initiative_id),
            },
            spec: InitiativeSpec {
                parent_initiative: r.parent_initiative_id.map(id),
                title: r.title,
                description: r.description,
                lead_agency: r.lead_agency,
                state,
                start_date: r.start_date,
                end_date: r.end_date,
                tags: r.tags,
                indicators: r.indicators.into_iter().map(id).collect(),
                position: r.position,
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
    name: &InitiativeName,
    lock: bool,
) -> Result<Initiative> {
    let sql = if lock {
        concat!(
            "SELECT ",
            columns!(),
            " FROM initiatives i WHERE i.program_id = $1 AND i.initiative_id = $2 FOR UPDATE OF i"
        )
    } else {
        concat!(
            "SELECT ",
            columns!(),
            " FROM initiatives i WHERE i.program_id = $1 AND i.initiative_id = $2"
        )
    };
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(name.program.as_str())
        .bind(name.initiative.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.ok_or_else(|| Error::NotFound(name.to_string()))?
        .try_into()
}

/// Locks the programme row so that structural changes to its tree are serialised
/// (two concurrent re-parentings could otherwise form a cycle that neither saw).
/// `FOR NO KEY UPDATE` does not block the foreign-key checks of plain inserts.
async fn lock_program(tx: &mut Transaction<'static, Postgres>, program: &ResourceId) -> Result<()> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM programs WHERE program_id = $1 FOR NO KEY UPDATE")
            .bind(program.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::NotFound(ProgramName(program.clone()).to_string()))
}

/// Checks what the database must know to accept `spec` for `name`: the parent exists
/// in the same programme, no cycle, the depth limit, and the indicators exist.
async fn check_references(
    tx: &mut Transaction<'static, Postgres>,
    name: &InitiativeName,
    spec: &InitiativeSpec,
    field_prefix: &str,
    existing: bool,
) -> Result<()> {
    let mut violations = Vec::new();
    if let Some(parent) = &spec.parent_initiative {
        let field = format!("{field_prefix}.parent_initiative");
        let parent_name = InitiativeName {
            program: name.program.clone(),
            initiative: parent.clone(),
        };
        // The parent and its ancestors, nearest first.
        let chain: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE up(initiative_id, parent_id, depth) AS ( \
               SELECT initiative_id::text, parent_initiative_id::text, 1 FROM initiatives \
                WHERE program_id = $1 AND initiative_id = $2 \
               UNION ALL \
               SELECT i.initiative_id::text, i.parent_initiative_id::text, up.depth + 1 \
                 FROM initiatives i JOIN up ON i.program_id = $1 AND i.initiative_id = up.parent_id \
                WHERE up.depth < 1000) \
             SELECT initiative_id FROM up ORDER BY depth",
        )
        .bind(name.program.as_str())
        .bind(parent.as_str())
        .fetch_all(&mut **tx)
        .await?;
        if chain.is_empty() {
            violations.push(FieldViolation::new(
                field,
                "NOT_FOUND",
                format!("{parent_name} does not exist (the parent must be in the same programme)"),
            ));
        } else if chain.iter().any(|c| c == name.initiative.as_str()) {
            violations.push(FieldViolation::new(
                field,
                "CYCLE",
                format!("{parent_name} is {name} itself or one of its descendants"),
            ));
        } else {
            // Height of the subtree that moves along (1 for a leaf or a new initiative).
            let height: i32 = if existing {
                sqlx::query_scalar(
                    "WITH RECURSIVE down(initiative_id, depth) AS ( \
                       SELECT $2::text COLLATE \"C\", 1 \
                       UNION ALL \
                       SELECT i.initiative_id::text, down.depth + 1 FROM initiatives i \
                         JOIN down ON i.program_id = $1 AND i.parent_initiative_id = down.initiative_id \
                        WHERE down.depth < 1000) \
                     SELECT max(depth) FROM down",
                )
                .bind(name.program.as_str())
                .bind(name.initiative.as_str())
                .fetch_one(&mut **tx)
                .await?
            } else {
                1
            };
            let depth = chain.len() + height as usize;
            if depth > MAX_INITIATIVE_DEPTH {
                violations.push(FieldViolation::new(
                    field,
                    "TOO_DEEP",
                    format!(
                        "the initiative tree would be {depth} levels deep; at most \
                         {MAX_INITIATIVE_DEPTH} are allowed"
                    ),
                ));
            }
        }
    }
    if !spec.indicators.is_empty() {
        let wanted: Vec<&str> = spec.indicators.iter().map(ResourceId::as_str).collect();
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT indicator_id::text FROM indicators WHERE indicator_id = ANY($1::text[])",
        )
        .bind(&wanted)
        .fetch_all(&mut **tx)
        .await?;
        for (i, w) in wanted.iter().enumerate() {
            if !found.iter().any(|f| f == w) {
                violations.push(FieldViolation::new(
                    format!("{field_prefix}.indicators[{i}]"),
                    "NOT_FOUND",
                    format!("indicators/{w} does not exist"),
                ));
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

async fn write_indicators(
    tx: &mut Transaction<'static, Postgres>,
    name: &InitiativeName,
    indicators: &[ResourceId],
) -> Result<()> {
    sqlx::query("DELETE FROM initiative_indicators WHERE program_id = $1 AND initiative_id = $2")
        .bind(name.program.as_str())
        .bind(name.initiative.as_str())
        .execute(&mut **tx)
        .await?;
    if indicators.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = indicators.iter().map(ResourceId::as_str).collect();
    sqlx::query(
        "INSERT INTO initiative_indicators (program_id, initiative_id, indicator_id, ordinal) \
         SELECT $1, $2, t.indicator_id, t.ordinal::integer \
           FROM unnest($3::text[]) WITH ORDINALITY AS t(indicator_id, ordinal)",
    )
    .bind(name.program.as_str())
    .bind(name.initiative.as_str())
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates an initiative. NOT_FOUND when the programme does not exist, ALREADY_EXISTS
/// when the id is taken, INVALID_ARGUMENT for a missing parent or indicator.
pub async fn create(
    pool: &PgPool,
    name: &InitiativeName,
    spec: &InitiativeSpec,
) -> Result<Initiative> {
    let mut tx = begin(pool).await?;
    lock_program(&mut tx, &name.program).await?;
    check_references(&mut tx, name, spec, "initiative", false).await?;
    sqlx::query(
        "INSERT INTO initiatives (program_id, initiative_id, parent_initiative_id, title, \
         description, lead_agency, state, start_date, end_date, tags, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(name.program.as_str())
    .bind(name.initiative.as_str())
    .bind(spec.parent_initiative.as_ref().map(ResourceId::as_str))
    .bind(&spec.title)
    .bind(&spec.description)
    .bind(&spec.lead_agency)
    .bind(spec.state.code())
    .bind(spec.start_date)
    .bind(spec.end_date)
    .bind(&spec.tags)
    .bind(spec.position)
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::AlreadyExists(name.to_string())
        } else {
            e.into()
        }
    })?;
    write_indicators(&mut tx, name, &spec.indicators).await?;
    let created = fetch(&mut tx, name, false).await?;
    tx.commit().await?;
    Ok(created)
}

/// Reads an initiative.
pub async fn get(pool: &PgPool, name: &InitiativeName) -> Result<Initiative> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM initiatives i WHERE i.program_id = $1 AND i.initiative_id = $2"
    );
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(name.program.as_str())
        .bind(name.initiative.as_str())
        .fetch_optional(pool)
        .await?;
    row.ok_or_else(|| Error::NotFound(name.to_string()))?
        .try_into()
}

/// Filterable and orderable fields of ListInitiatives (the table is aliased `i`).
pub static FILTER_SCHEMA: Schema = Schema {
    fields: &[
        Field::new(
            "name",
            "('programs/' || i.program_id || '/initiatives/' || i.initiative_id)",
            FieldType::String,
        )
        .orderable("i.initiative_id"),
        Field::new(
            "parent_initiative",
            "COALESCE('programs/' || i.program_id || '/initiatives/' || i.parent_initiative_id, '')",
            FieldType::String,
        ),
        Field::new("title", "i.title", FieldType::String).orderable("i.title COLLATE \"C\""),
        Field::new("description", "i.description", FieldType::String),
        Field::new("lead_agency", "i.lead_agency", FieldType::String)
            .orderable("i.lead_agency COLLATE \"C\""),
        Field::new("state", "i.state", FieldType::Enum(&STATE)),
        Field::new("start_date", "i.start_date", FieldType::Date)
            .nullable()
            .orderable("i.start_date"),
        Field::new("end_date", "i.end_date", FieldType::Date)
            .nullable()
            .orderable("i.end_date"),
        Field::new("tags", "i.tags", FieldType::StringList),
        Field::new(
            "indicators",
            "ARRAY(SELECT 'indicators/' || ii.indicator_id FROM initiative_indicators ii \
             WHERE ii.program_id = i.program_id AND ii.initiative_id = i.initiative_id)",
            FieldType::StringList,
        ),
        Field::new("position", "i.position", FieldType::Integer).orderable("i.position"),
        Field::new("create_time", "i.create_time", FieldType::Timestamp).orderable("i.create_time"),
        Field::new("update_time", "i.update_time", FieldType::Timestamp).orderable("i.update_time"),
    ],
    id_sort: "i.initiative_id",
};

/// Values of the initiatives' `state`.
pub(crate) static STATE: EnumType = EnumType {
    prefix: "STATE_",
    values: &[
        ("STATE_PLANNED", "planned"),
        ("STATE_ACTIVE", "active"),
        ("STATE_COMPLETED", "completed"),
        ("STATE_SUSPENDED", "suspended"),
        ("STATE_CANCELLED", "cancelled"),
    ],
};

/// Lists up to `limit` initiatives of a programme matching `query`, after the page key
/// `after`, each with the page key of its row; NOT_FOUND when the programme does not
/// exist.
pub async fn list(
    pool: &PgPool,
    program: &ResourceId,
    query: &ListQuery,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Initiative, String)>> {
    let mut qb = QueryBuilder::new(concat!("SELECT ", columns!(), ", "));
    query.order.push_key_column(&mut qb);
    qb.push(" FROM initiatives i WHERE i.program_id = ");
    qb.push_bind(program.as_str().to_owned());
    query.push_tail(&mut qb, after, limit)?;
    let rows: Vec<Keyed<Row>> = qb.build_query_as().fetch_all(pool).await?;
    if rows.is_empty() {
        super::programs::get(pool, program).await?;
    }
    rows.into_iter()
        .map(|k| Ok((Initiative::try_from(k.row)?, query.order.token_key(&k.key))))
        .collect()
}

/// Every initiative of a programme, in id order.
pub async fn list_all(
    db: impl sqlx::PgExecutor<'_>,
    program: &ResourceId,
) -> Result<Vec<Initiative>> {
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM initiatives i WHERE i.program_id = $1 ORDER BY i.initiative_id"
    ))
    .bind(program.as_str())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Initiative::try_from).collect()
}

/// Updates an initiative (see `programs::update` for the protocol).
pub async fn update(
    pool: &PgPool,
    name: &InitiativeName,
    etag: Option<&str>,
    change: impl FnOnce(&Initiative) -> Result<InitiativeSpec>,
) -> Result<Initiative> {
    let mut tx = begin(pool).await?;
    let current = fetch(&mut tx, name, true).await?;
    check_etag(&name.to_string(), etag, &current.meta.etag())?;
    let spec = change(&current)?;
    if spec == current.spec {
        return Ok(current);
    }
    if spec.parent_initiative != current.spec.parent_initiative {
        lock_program(&mut tx, &name.program).await?;
    }
    check_references(&mut tx, name, &spec, "initiative", true).await?;
    sqlx::query(
        "UPDATE initiatives SET parent_initiative_id = $3, title = $4, description = $5, \
         lead_agency = $6, state = $7, start_date = $8, end_date = $9, tags = $10, position = $11, \
         update_time = now(), version = version + 1 \
         WHERE program_id = $1 AND initiative_id = $2",
    )
    .bind(name.program.as_str())
    .bind(name.initiative.as_str())
    .bind(spec.parent_initiative.as_ref().map(ResourceId::as_str))
    .bind(&spec.title)
    .bind(&spec.description)
    .bind(&spec.lead_agency)
    .bind(spec.state.code())
    .bind(spec.start_date)
    .bind(spec.end_date)
    .bind(&spec.tags)
    .bind(spec.position)
    .execute(&mut *tx)
    .await?;
    if spec.indicators != current.spec.indicators {
        write_indicators(&mut tx, name, &spec.indicators).await?;
    }
    let updated = fetch(&mut tx, name, false).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes an initiative. Without `force`, FAILED_PRECONDITION while it has child
/// initiatives or targets belong to it; with it, the subtree is deleted and those
/// targets are detached.
pub async fn delete(
    pool: &PgPool,
    name: &InitiativeName,
    etag: Option<&str>,
    force: bool,
) -> Result<()> {
    let mut tx = begin(pool).await?;
    lock_program(&mut tx, &name.program).await?;
    let current = fetch(&mut tx, name, true).await?;
    let display = name.to_string();
    check_etag(&display, etag, &current.meta.etag())?;
    // The initiative and all its descendants.
    let subtree: Vec<String> = sqlx::query_scalar(
        "WITH RECURSIVE down(initiative_id, depth) AS ( \
           SELECT $2::text COLLATE \"C\", 0 \
           UNION ALL \
           SELECT i.initiative_id::text, down.depth + 1 FROM initiatives i \
             JOIN down ON i.program_id = $1 AND i.parent_initiative_id = down.initiative_id \
            WHERE down.depth < 1000) \
         SELECT initiative_id FROM down ORDER BY depth, initiative_id",
    )
    .bind(name.program.as_str())
    .bind(name.initiative.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let targets: Vec<String> = sqlx::query_scalar(
        "SELECT target_id::text FROM targets WHERE program_id = $1 AND initiative_id = ANY($2::text[]) \
         ORDER BY target_id",
    )
    .bind(name.program.as_str())
    .bind(&subtree)
    .fetch_all(&mut *tx)
    .await?;
    if !force && (subtree.len() > 1 || !targets.is_empty()) {
        let program = &name.program;
        let dependants: Vec<String> = subtree
            .iter()
            .skip(1)
            .map(|i| format!("programs/{program}/initiatives/{i}"))
            .chain(
                targets
                    .iter()
                    .map(|t| format!("programs/{program}/targets/{t}")),
            )
            .collect();
        return Err(has_dependants(
            &display,
            "child initiatives or targets",
            dependants,
        ));
    }
    sqlx::query(
        "UPDATE targets SET initiative_id = NULL, update_time = now(), version = version + 1 \
         WHERE program_id = $1 AND initiative_id = ANY($2::text[])",
    )
    .bind(name.program.as_str())
    .bind(&subtree)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM initiatives WHERE program_id = $1 AND initiative_id = ANY($2::text[])",
    )
    .bind(name.program.as_str())
    .bind(&subtree)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
