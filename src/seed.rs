//! The built-in Chongqing 2015 programme: the *Implementation Opinion of Chongqing
//! People's Government about Speeding up the Development of Service Trade and Service
//! Outsourcing Industry* (reported 2015-05-25; source text in `shared/seeds/`).
//!
//! Facts from the source text only: its headline target (service-trade imports plus
//! exports of 30 billion USD in 2020), its seven development areas and the measures it
//! names under each. No figures are invented: the target has no baseline (the text
//! gives none), and no observations are loaded.

use sqlx::PgPool;

use crate::domain::indicator::{Aggregation, Flow, IndicatorSpec};
use crate::domain::names::{InitiativeName, TargetName};
use crate::domain::program::{
    Direction, InitiativeSpec, InitiativeState, ProgramSpec, TargetKind, TargetSpec,
};
use crate::domain::{Decimal, Frequency, Period, ResourceId};
use crate::error::{Error, Result};
use crate::store;

/// Id of the built-in programme.
pub const PROGRAM_ID: &str = "cq-2015-service-trade";
/// Id of the indicator of its headline target.
pub const INDICATOR_ID: &str = "cq-services-trade-total";
/// Id of its headline target.
pub const TARGET_ID: &str = "services-trade-2020";
/// Name under which the first-start load is recorded.
const SEED_NAME: &str = "cq-2015-service-trade";

/// The seven development areas, in the document's order, with the measures it names.
/// An initiative of the seed: id and title.
type Seeded = (&'static str, &'static str);

const AREAS: &[(&str, &str, &[Seeded])] = &[
    (
        "cross-border-e-commerce",
        "Develop cross-border trade e-commerce",
        &[
            (
                "e-commerce-trade-mode",
                "Create the cross-border e-commerce trade mode",
            ),
            (
                "e-commerce-service-platform",
                "Perfect the public service platform",
            ),
            (
                "e-commerce-demonstration-base",
                "Construct demonstration bases",
            ),
        ],
    ),
    (
        "cloud-computing-big-data",
        "Develop internet, cloud computing and big data industries",
        &[
            (
                "cloud-industry-layout",
                "Optimise the layout of the internet, cloud computing and big data industries",
            ),
            (
                "cloud-industry-chain",
                "Construct a whole cloud-computing industrial chain serving the world, with \
                 breakthroughs in the middle reaches and the upstream and downstream following",
            ),
        ],
    ),
    (
        "cross-border-finance",
        "Develop cross-border settlement, investment and financing",
        &[
            (
                "settlement-highland",
                "Build a highland of cross-border financial settlement",
            ),
            (
                "investment-financing-facilitation",
                "Actively promote the facilitation of cross-border investment and financing",
            ),
        ],
    ),
    (
        "international-transport",
        "Develop international transportation",
        &[
            (
                "three-dimensional-transport",
                "Construct a three-dimensional transportation system",
            ),
            (
                "transport-industry-cluster",
                "Cultivate an industrial group of international transportation",
            ),
        ],
    ),
    (
        "bonded-trade",
        "Develop bonded trade",
        &[(
            "coordinated-trade-development",
            "Promote the collaborative development of bonded trade, service trade and goods trade",
        )],
    ),
    (
        "foreign-cultural-trade",
        "Develop the trade of foreign culture",
        &[
            (
                "culture-brands",
                "Cultivate local culture brands with international competitive ability",
            ),
            (
                "culture-trade-platform",
                "Construct a platform of culture trade",
            ),
            (
                "art-works-trade",
                "Develop the demonstration, delivery and auction of global culture and art works",
            ),
        ],
    ),
    (
        "offshore-outsourcing",
        "Develop offshore service outsourcing",
        &[
            (
                "outsourcing-demonstration-city",
                "Speed up the construction of the service outsourcing demonstration city",
            ),
            (
                "outsourcing-structure",
                "Optimise the structure of service outsourcing",
            ),
        ],
    ),
];

fn rid(s: &str) -> Result<ResourceId> {
    ResourceId::parse(s)
        .map_err(|e| Error::internal(anyhow::anyhow!("bad seed id {s}: {}", e.message)))
}

/// Ignores ALREADY_EXISTS, so that loading again completes a partial load and keeps
/// whatever an operator changed since.
fn keep_existing<T>(r: Result<T>) -> Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(Error::AlreadyExists(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Loads the programme unless it was loaded before (first start only). Returns
/// whether it loaded anything.
pub async fn seed_on_first_start(pool: &PgPool) -> Result<bool> {
    let done: Option<String> = sqlx::query_scalar("SELECT name FROM seeds_applied WHERE name = $1")
        .bind(SEED_NAME)
        .fetch_optional(pool)
        .await?;
    if done.is_some() {
        return Ok(false);
    }
    load(pool).await
}

/// Loads every missing piece of the programme, leaving existing ones untouched, and
/// records the load. Returns whether anything was created.
pub async fn load(pool: &PgPool) -> Result<bool> {
    let program = rid(PROGRAM_ID)?;
    let mut created = keep_existing(
        store::programs::create(
            pool,
            &program,
            &ProgramSpec {
                title: "Implementation Opinion of Chongqing People's Government about Speeding up \
                        the Development of Service Trade and Service Outsourcing Industry"
                    .into(),
                issuing_body: "Chongqing Municipal People's Government".into(),
                adoption_date: None,
                jurisdiction: "CN-CQ".into(),
                start_year: 2015,
                end_year: 2020,
                summary: "Passed by the 92nd executive meeting of the municipal government \
                          (reported 2015-05-25). Puts forward seven main development areas of \
                          service trade and service outsourcing and a total value of import and \
                          export of service trade of 30 billion USD in 2020."
                    .into(),
                source_uri: String::new(),
            },
        )
        .await,
    )?;

    let indicator = rid(INDICATOR_ID)?;
    created |= keep_existing(
        store::indicators::create(
            pool,
            &indicator,
            &IndicatorSpec {
                title: "Chongqing service trade, imports plus exports".into(),
                description: "Total value of import and export of service trade of Chongqing \
                              municipality."
                    .into(),
                unit: "USD".into(),
                // Chinese releases give service trade in 亿 (10^8) USD.
                unit_multiplier: 8,
                frequency: Frequency::Annual,
                flow: Flow::Total,
                service_category: Some("S".into()),
                region: "CN-CQ".into(),
                dimensions: Default::default(),
                aggregation: Aggregation::Sum,
                year_to_date: false,
                direction: Direction::HigherIsBetter,
                source_agency: String::new(),
            },
        )
        .await,
    )?;

    for (position, (area_id, area_title, measures)) in AREAS.iter().enumerate() {
        let area = rid(area_id)?;
        created |= keep_existing(
            store::initiatives::create(
                pool,
                &InitiativeName {
                    program: program.clone(),
                    initiative: area.clone(),
                },
                &initiative(None, area_title, position),
            )
            .await,
        )?;
        for (m_position, (measure_id, measure_title)) in measures.iter().enumerate() {
            created |= keep_existing(
                store::initiatives::create(
                    pool,
                    &InitiativeName {
                        program: program.clone(),
                        initiative: rid(measure_id)?,
                    },
                    &initiative(Some(area.clone()), measure_title, m_position),
                )
                .await,
            )?;
        }
    }

    created |= keep_existing(
        store::targets::create(
            pool,
            &TargetName {
                program: program.clone(),
                target: rid(TARGET_ID)?,
            },
            &TargetSpec {
                title: "Service trade imports plus exports of 30 billion USD in 2020".into(),
                description: "Headline target: the total value of import and export of service \
                              trade will be 30 billion USD in 2020."
                    .into(),
                indicator,
                initiative: None,
                kind: TargetKind::Level,
                target_value: Decimal::parse("30")
                    .map_err(|e| Error::internal(anyhow::anyhow!(e.message)))?,
                unit_multiplier: 9,
                target_period: Period::parse("2020")
                    .map_err(|e| Error::internal(anyhow::anyhow!(e.message)))?,
                baseline_value: None,
                baseline_period: None,
                direction: Direction::HigherIsBetter,
            },
        )
        .await,
    )?;

    sqlx::query("INSERT INTO seeds_applied (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(SEED_NAME)
        .execute(pool)
        .await?;
    Ok(created)
}

fn initiative(parent: Option<ResourceId>, title: &str, position: usize) -> InitiativeSpec {
    InitiativeSpec {
        parent_initiative: parent,
        title: title.to_owned(),
        description: String::new(),
        lead_agency: String::new(),
        state: InitiativeState::Active,
        start_date: None,
        end_date: None,
        tags: Vec::new(),
        indicators: Vec::new(),
        position: position as i32 + 1,
    }
}
