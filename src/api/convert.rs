//! Conversions between the wire messages and the domain types. Parsing destructures
//! every field of a message (no `..`), so a field added to a proto fails compilation
//! here until someone decides what it means.

use std::collections::BTreeMap;

use crate::domain::indicator::{
    self, Aggregation, Flow, IndicatorSpec, MAX_DIMENSIONS, MAX_UNIT_MULTIPLIER,
    MIN_UNIT_MULTIPLIER,
};
use crate::domain::names::{IndicatorName, InitiativeName, truncate};
use crate::domain::program::{
    Direction, InitiativeSpec, InitiativeState, ProgramSpec, TargetKind, TargetSpec,
};
use crate::domain::text::{self, limits};
use crate::domain::{Decimal, Frequency, Invalid, Period, ResourceId, Violations, codes};
use crate::proto::v1 as pb;
use crate::store;

fn at(prefix: &str, field: &str) -> String {
    format!("{prefix}.{field}")
}

/// The wire form of an instant.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Parses an optional instant of a request, recording a problem under `field`: `Some(None)`
/// when absent, `None` when invalid.
pub fn optional_time(
    v: &mut Violations,
    field: &str,
    t: &Option<prost_types::Timestamp>,
) -> Option<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(t) = t else {
        return Some(None);
    };
    if !(0..1_000_000_000).contains(&t.nanos) {
        v.push(
            field,
            "INVALID_TIMESTAMP",
            "nanos must be between 0 and 999,999,999",
        );
        return None;
    }
    // The range of google.protobuf.Timestamp, 0001-01-01T00:00:00Z to
    // 9999-12-31T23:59:59Z: chrono accepts more, and PostgreSQL refuses instants
    // before 4713 BC (which then failed as an internal error).
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    match chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .filter(|_| (MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds))
    {
        Some(t) => Some(Some(t)),
        None => {
            v.push(
                field,
                "INVALID_TIMESTAMP",
                "the timestamp is out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)",
            );
            None
        }
    }
}

fn date_text(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Parses a proto enum value: unspecified (0) is REQUIRED, unknown numbers invalid.
fn enum_value<E: TryFrom<i32>>(value: i32, unspecified: bool, allowed: &str) -> Result<E, Invalid> {
    match E::try_from(value) {
        Ok(_) if unspecified => Err(Invalid::new(
            "REQUIRED",
            format!("a value is required (one of {allowed})"),
        )),
        Ok(e) => Ok(e),
        Err(_) => Err(Invalid::new(
            "INVALID_ENUM",
            format!("{value} is not a known value (one of {allowed})"),
        )),
    }
}

fn region(s: &str) -> Result<String, Invalid> {
    if s.is_empty() {
        return Err(Invalid::new(
            "REQUIRED",
            "an ISO 3166-2 or ISO 3166-1 alpha-2 code is required",
        ));
    }
    codes::check_region(s)
        .map(|_| s.to_owned())
        .map_err(Invalid::from)
}

fn unit_multiplier(m: i32) -> Result<i32, Invalid> {
    if (MIN_UNIT_MULTIPLIER..=MAX_UNIT_MULTIPLIER).contains(&m) {
        Ok(m)
    } else {
        Err(Invalid::new(
            "OUT_OF_RANGE",
            format!(
                "{m} is not a power of ten between {MIN_UNIT_MULTIPLIER} and {MAX_UNIT_MULTIPLIER}"
            ),
        ))
    }
}

fn year(y: i32) -> Result<i32, Invalid> {
    if y == 0 {
        Err(Invalid::new("REQUIRED", "a year is required"))
    } else if (1800..=2200).contains(&y) {
        Ok(y)
    } else {
        Err(Invalid::new(
            "OUT_OF_RANGE",
            format!("{y} is not a year between 1800 and 2200"),
        ))
    }
}

fn frequency(value: i32) -> Result<Frequency, Invalid> {
    let allowed = "FREQUENCY_ANNUAL, FREQUENCY_HALF_YEARLY, FREQUENCY_QUARTERLY, FREQUENCY_MONTHLY";
    Ok(
        match enum_value::<pb::Frequency>(value, value == 0, allowed)? {
            pb::Frequency::Annual => Frequency::Annual,
            pb::Frequency::HalfYearly => Frequency::HalfYearly,
            pb::Frequency::Quarterly => Frequency::Quarterly,
            pb::Frequency::Monthly => Frequency::Monthly,
            pb::Frequency::Unspecified => {
                return Err(Invalid::new("REQUIRED", "a frequency is required"));
            }
        },
    )
}

fn direction(value: i32) -> Result<Direction, Invalid> {
    let allowed = "DIRECTION_HIGHER_IS_BETTER, DIRECTION_LOWER_IS_BETTER";
    Ok(
        match enum_value::<pb::Direction>(value, value == 0, allowed)? {
            pb::Direction::HigherIsBetter => Direction::HigherIsBetter,
            pb::Direction::LowerIsBetter => Direction::LowerIsBetter,
            pb::Direction::Unspecified => {
                return Err(Invalid::new("REQUIRED", "a direction is required"));
            }
        },
    )
}

/// The wire value of a frequency.
pub fn frequency_to_proto(f: Frequency) -> pb::Frequency {
    match f {
        Frequency::Annual => pb::Frequency::Annual,
        Frequency::HalfYearly => pb::Frequency::HalfYearly,
        Frequency::Quarterly => pb::Frequency::Quarterly,
        Frequency::Monthly => pb::Frequency::Monthly,
    }
}

fn direction_to_proto(d: Direction) -> pb::Direction {
    match d {
        Direction::HigherIsBetter => pb::Direction::HigherIsBetter,
        Direction::LowerIsBetter => pb::Direction::LowerIsBetter,
    }
}

// ---------------------------------------------------------------------------------------
// Programmes

/// Parses the content of a programme, recording problems under `prefix`.
pub fn program_spec(p: &pb::Program, prefix: &str, v: &mut Violations) -> Option<ProgramSpec> {
    let pb::Program {
        name: _,
        title,
        issuing_body,
        adoption_date,
        jurisdiction,
        start_year,
        end_year,
        summary,
        source_uri,
        create_time: _,
        update_time: _,
        etag: _,
    } = p;
    let title = v.check(
        &at(prefix, "title"),
        text::required_line(title, limits::TITLE),
    );
    let issuing_body = v.check(
        &at(prefix, "issuing_body"),
        text::optional_line(issuing_body, limits::AGENCY),
    );
    let adoption_date = v.check(
        &at(prefix, "adoption_date"),
        text::optional_date(adoption_date),
    );
    let jurisdiction = v.check(&at(prefix, "jurisdiction"), region(jurisdiction));
    let start_year = v.check(&at(prefix, "start_year"), year(*start_year));
    let end_year = v.check(&at(prefix, "end_year"), year(*end_year));
    if let (Some(s), Some(e)) = (start_year, end_year)
        && e < s
    {
        v.push(
            at(prefix, "end_year"),
            "BEFORE_START",
            format!("end_year {e} is before start_year {s}"),
        );
    }
    let summary = v.check(
        &at(prefix, "summary"),
        text::optional_text(summary, limits::LONG_TEXT),
    );
    let source_uri = v.check(&at(prefix, "source_uri"), text::optional_uri(source_uri));
    Some(ProgramSpec {
        title: title?,
        issuing_body: issuing_body?,
        adoption_date: adoption_date?,
        jurisdiction: jurisdiction?,
        start_year: start_year?,
        end_year: end_year?,
        summary: summary?,
        source_uri: source_uri?,
    })
}

/// The wire form of a stored programme.
pub fn program_to_proto(p: &store::programs::Program) -> pb::Program {
    let s = &p.spec;
    pb::Program {
        name: p.name().to_string(),
        title: s.title.clone(),
        issuing_body: s.issuing_body.clone(),
        adoption_date: date_text(s.adoption_date),
        jurisdiction: s.jurisdiction.clone(),
        start_year: s.start_year,
        end_year: s.end_year,
        summary: s.summary.clone(),
        source_uri: s.source_uri.clone(),
        create_time: Some(timestamp(p.meta.create_time)),
        update_time: Some(timestamp(p.meta.update_time)),
        etag: p.meta.etag(),
    }
}

// ---------------------------------------------------------------------------------------
// Initiatives

/// Most tags on one initiative.
pub const MAX_TAGS: usize = 32;
/// Most indicators listed on one initiative.
pub const MAX_INITIATIVE_INDICATORS: usize = 100;

fn initiative_state(value: i32) -> Result<InitiativeState, Invalid> {
    use pb::initiative::State;
    let allowed = "STATE_PLANNED, STATE_ACTIVE, STATE_COMPLETED, STATE_SUSPENDED, STATE_CANCELLED";
    Ok(match enum_value::<State>(value, value == 0, allowed)? {
        State::Planned => InitiativeState::Planned,
        State::Active => InitiativeState::Active,
        State::Completed => InitiativeState::Completed,
        State::Suspended => InitiativeState::Suspended,
        State::Cancelled => InitiativeState::Cancelled,
        State::Unspecified => return Err(Invalid::new("REQUIRED", "a state is required")),
    })
}

/// Parses the content of an initiative of programme `program`.
pub fn initiative_spec(
    p: &pb::Initiative,
    program: &ResourceId,
    prefix: &str,
    v: &mut Violations,
) -> Option<InitiativeSpec> {
    let pb::Initiative {
        name: _,
        parent_initiative,
        title,
        description,
        lead_agency,
        state,
        start_date,
        end_date,
        tags,
        indicators,
        position,
        create_time: _,
        update_time: _,
        etag: _,
    } = p;
    let parent = if parent_initiative.is_empty() {
        Some(None)
    } else {
        let field = at(prefix, "parent_initiative");
        match v.check(&field, InitiativeName::parse(parent_initiative)) {
            Some(n) if &n.program != program => {
                v.push(
                    field,
                    "OTHER_PROGRAM",
                    format!(
                        "{n} is not in programs/{program}; the parent must be in the same programme"
                    ),
                );
                None
            }
            Some(n) => Some(Some(n.initiative)),
            None => None,
        }
    };
    let title = v.check(
        &at(prefix, "title"),
        text::required_line(title, limits::TITLE),
    );
    let description = v.check(
        &at(prefix, "description"),
        text::optional_text(description, limits::LONG_TEXT),
    );
    let lead_agency = v.check(
        &at(prefix, "lead_agency"),
        text::optional_line(lead_agency, limits::AGENCY),
    );
    let state = v.check(&at(prefix, "state"), initiative_state(*state));
    let start = v.check(&at(prefix, "start_date"), text::optional_date(start_date));
    let end = v.check(&at(prefix, "end_date"), text::optional_date(end_date));
    if let (Some(Some(s)), Some(Some(e))) = (start, end)
        && e < s
    {
        v.push(
            at(prefix, "end_date"),
            "BEFORE_START",
            format!("end_date {e} is before start_date {s}"),
        );
    }
    let tags_ok = list_limit(v, &at(prefix, "tags"), tags.len(), MAX_TAGS);
    let mut parsed_tags = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let field = format!("{prefix}.tags[{i}]");
        if let Some(t) = v.check(&field, text::tag(t)) {
            if parsed_tags.contains(&t) {
                v.push(field, "DUPLICATE", format!("tag {t:?} is listed twice"));
            } else {
                parsed_tags.push(t);
            }
        }
    }
    let indicators_ok = list_limit(
        v,
        &at(prefix, "indicators"),
        indicators.len(),
        MAX_INITIATIVE_INDICATORS,
    );
    let mut parsed_indicators = Vec::new();
    for (i, ind) in indicators.iter().enumerate() {
        let field = format!("{prefix}.indicators[{i}]");
        if let Some(n) = v.check(&field, IndicatorName::parse(ind)) {
            if parsed_indicators.contains(&n.0) {
                v.push(field, "DUPLICATE", format!("{n} is listed twice"));
            } else {
                parsed_indicators.push(n.0);
            }
        }
    }
    let position = v.check(
        &at(prefix, "position"),
        if (0..=10_000).contains(position) {
            Ok(*position)
        } else {
            Err(Invalid::new(
                "OUT_OF_RANGE",
                format!("{position} is not between 0 and 10000"),
            ))
        },
    );
    tags_ok?;
    indicators_ok?;
    Some(InitiativeSpec {
        parent_initiative: parent?,
        title: title?,
        description: description?,
        lead_agency: lead_agency?,
        state: state?,
        start_date: start?,
        end_date: end?,
        tags: parsed_tags,
        indicators: parsed_indicators,
        position: position?,
    })
}

fn list_limit(v: &mut Violations, field: &str, len: usize, max: usize) -> Option<()> {
    if len > max {
        v.push(
            field,
            "TOO_MANY",
            format!("{len} entries; at most {max} are allowed"),
        );
        None
    } else {
        Some(())
    }
}

/// The wire form of a stored initiative.
pub fn initiative_to_proto(i: &store::initiatives::Initiative) -> pb::Initiative {
    let s = &i.spec;
    use pb::initiative::State;
    let state = match s.state {
        InitiativeState::Planned => State::Planned,
        InitiativeState::Active => State::Active,
        InitiativeState::Completed => State::Completed,
        InitiativeState::Suspended => State::Suspended,
        InitiativeState::Cancelled => State::Cancelled,
    };
    pb::Initiative {
        name: i.name.to_string(),
        parent_initiative: s
            .parent_initiative
            .as_ref()
            .map(|p| format!("programs/{}/initiatives/{p}", i.name.program))
            .unwrap_or_default(),
        title: s.title.clone(),
        description: s.description.clone(),
        lead_agency: s.lead_agency.clone(),
        state: state as i32,
        start_date: date_text(s.start_date),
        end_date: date_text(s.end_date),
        tags: s.tags.clone(),
        indicators: s
            .indicators
            .iter()
            .map(|i| format!("indicators/{i}"))
            .collect(),
        position: s.position,
        create_time: Some(timestamp(i.meta.create_time)),
        update_time: Some(timestamp(i.meta.update_time)),
        etag: i.meta.etag(),
    }
}

// ---------------------------------------------------------------------------------------
// Targets

fn target_kind(value: i32) -> Result<TargetKind, Invalid> {
    use pb::target::Kind;
    Ok(
        match enum_value::<Kind>(value, value == 0, "KIND_LEVEL, KIND_GROWTH_RATE")? {
            Kind::Level => TargetKind::Level,
            Kind::GrowthRate => TargetKind::GrowthRate,
            Kind::Unspecified => return Err(Invalid::new("REQUIRED", "a kind is required")),
        },
    )
}

/// Parses the content of a target of programme `program`. Checks that need the
/// database (the indicator exists, its frequency) are done by the store.
pub fn target_spec(
    p: &pb::Target,
    program: &ResourceId,
    prefix: &str,
    v: &mut Violations,
) -> Option<TargetSpec> {
    let pb::Target {
        name: _,
        title,
        description,
        indicator,
        initiative,
        kind,
        target_value,
        unit_multiplier: multiplier,
        target_period,
        baseline_value,
        baseline_period,
        direction: dir,
        create_time: _,
        update_time: _,
        etag: _,
    } = p;
    let title = v.check(
        &at(prefix, "title"),
        text::required_line(title, limits::TITLE),
    );
    let description = v.check(
        &at(prefix, "description"),
        text::optional_text(description, limits::LONG_TEXT),
    );
    let indicator = v
        .check(&at(prefix, "indicator"), IndicatorName::parse(indicator))
        .map(|n| n.0);
    let initiative = if initiative.is_empty() {
        Some(None)
    } else {
        let field = at(prefix, "initiative");
        match v.check(&field, InitiativeName::parse(initiative)) {
            Some(n) if &n.program != program => {
                v.push(
                    field,
                    "OTHER_PROGRAM",
                    format!("{n} is not in programs/{program}; a target belongs to an initiative of its own programme"),
                );
                None
            }
            Some(n) => Some(Some(n.initiative)),
            None => None,
        }
    };
    let kind = v.check(&at(prefix, "kind"), target_kind(*kind));
    let target_value = v.check(&at(prefix, "target_value"), Decimal::parse(target_value));
    let multiplier = v.check(&at(prefix, "unit_multiplier"), unit_multiplier(*multiplier));
    let target_period = v.check(&at(prefix, "target_period"), Period::parse(target_period));
    let baseline_value = if baseline_value.is_empty() {
        Some(None)
    } else {
        v.check(
            &at(prefix, "baseline_value"),
            Decimal::parse(baseline_value),
        )
        .map(Some)
    };
    let baseline_period = if baseline_period.is_empty() {
        Some(None)
    } else {
        v.check(
            &at(prefix, "baseline_period"),
            Period::parse(baseline_period),
        )
        .map(Some)
    };
    let direction = v.check(&at(prefix, "direction"), direction(*dir));

    // Rules between fields.
    if let (Some(Some(b)), Some(t)) = (baseline_period, target_period) {
        if b.frequency() != t.frequency() {
            v.push(
                at(prefix, "baseline_period"),
                "FREQUENCY_MISMATCH",
                format!("baseline period {b} and target period {t} must have the same frequency"),
            );
        } else if b.start_key() >= t.start_key() {
            v.push(
                at(prefix, "baseline_period"),
                "NOT_BEFORE_TARGET",
                format!("baseline period {b} must come before target period {t}"),
            );
        }
    }
    if let (Some(Some(_)), Some(None)) = (&baseline_value, baseline_period) {
        v.push(
            at(prefix, "baseline_period"),
            "REQUIRED",
            "a baseline period is required when a baseline value is given",
        );
    }
    if kind == Some(TargetKind::GrowthRate) {
        if baseline_period == Some(None) {
            v.push(
                at(prefix, "baseline_period"),
                "REQUIRED",
                "a growth-rate target needs the baseline period its span starts from",
            );
        }
        if multiplier.is_some_and(|m| m != 0) {
            v.push(
                at(prefix, "unit_multiplier"),
                "NOT_APPLICABLE",
                "a growth-rate target is in percent per year; unit_multiplier must be 0",
            );
        }
    }
    if kind == Some(TargetKind::Level) && direction == Some(Direction::HigherIsBetter) {
        // A level target of "higher is better" below its own baseline is contradictory.
        if let (Some(t), Some(Some(b))) = (&target_value, &baseline_value)
            && compare(t, b) == Some(std::cmp::Ordering::Less)
        {
            v.push(
                at(prefix, "target_value"),
                "CONTRADICTS_DIRECTION",
                format!("target {t} is below baseline {b} although higher is better"),
            );
        }
    }
    Some(TargetSpec {
        title: title?,
        description: description?,
        indicator: indicator?,
        initiative: initiative?,
        kind: kind?,
        target_value: target_value?,
        unit_multiplier: multiplier?,
        target_period: target_period?,
        baseline_value: baseline_value?,
        baseline_period: baseline_period?,
        direction: direction?,
    })
}

fn compare(a: &Decimal, b: &Decimal) -> Option<std::cmp::Ordering> {
    let a: bigdecimal::BigDecimal = a.as_str().parse().ok()?;
    let b: bigdecimal::BigDecimal = b.as_str().parse().ok()?;
    a.partial_cmp(&b)
}

/// The wire form of a stored target.
pub fn target_to_proto(t: &store::targets::Target) -> pb::Target {
    let s = &t.spec;
    let kind = match s.kind {
        TargetKind::Level => pb::target::Kind::Level,
        TargetKind::GrowthRate => pb::target::Kind::GrowthRate,
    };
    pb::Target {
        name: t.name.to_string(),
        title: s.title.clone(),
        description: s.description.clone(),
        indicator: format!("indicators/{}", s.indicator),
        initiative: s
            .initiative
            .as_ref()
            .map(|i| format!("programs/{}/initiatives/{i}", t.name.program))
            .unwrap_or_default(),
        kind: kind as i32,
        target_value: s.target_value.to_string(),
        unit_multiplier: s.unit_multiplier,
        target_period: s.target_period.to_string(),
        baseline_value: s
            .baseline_value
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        baseline_period: s.baseline_period.map(|p| p.to_string()).unwrap_or_default(),
        direction: direction_to_proto(s.direction) as i32,
        create_time: Some(timestamp(t.meta.create_time)),
        update_time: Some(timestamp(t.meta.update_time)),
        etag: t.meta.etag(),
    }
}

// ---------------------------------------------------------------------------------------
// Indicators

fn flow(value: i32) -> Result<Flow, Invalid> {
    use pb::indicator::Flow as F;
    let allowed = "FLOW_EXPORT, FLOW_IMPORT, FLOW_TOTAL, FLOW_BALANCE, FLOW_NONE";
    Ok(match enum_value::<F>(value, value == 0, allowed)? {
        F::Export => Flow::Export,
        F::Import => Flow::Import,
        F::Total => Flow::Total,
        F::Balance => Flow::Balance,
        F::None => Flow::None,
        F::Unspecified => return Err(Invalid::new("REQUIRED", "a flow is required")),
    })
}

fn aggregation(value: i32) -> Result<Aggregation, Invalid> {
    use pb::indicator::Aggregation as A;
    let allowed = "AGGREGATION_SUM, AGGREGATION_AVERAGE, AGGREGATION_END_OF_PERIOD";
    Ok(match enum_value::<A>(value, value == 0, allowed)? {
        A::Sum => Aggregation::Sum,
        A::Average => Aggregation::Average,
        A::EndOfPeriod => Aggregation::EndOfPeriod,
        A::Unspecified => return Err(Invalid::new("REQUIRED", "an aggregation is required")),
    })
}

/// Parses the content of an indicator.
pub fn indicator_spec(
    p: &pb::Indicator,
    prefix: &str,
    v: &mut Violations,
) -> Option<IndicatorSpec> {
    let pb::Indicator {
        name: _,
        title,
        description,
        unit,
        unit_multiplier: multiplier,
        frequency: freq,
        flow: fl,
        service_category,
        region: reg,
        dimensions,
        aggregation: agg,
        year_to_date,
        direction: dir,
        source_agency,
        create_time: _,
        update_time: _,
        etag: _,
    } = p;
    let title = v.check(
        &at(prefix, "title"),
        text::required_line(title, limits::SHORT_TITLE),
    );
    let description = v.check(
        &at(prefix, "description"),
        text::optional_text(description, limits::DESCRIPTION),
    );
    let unit = v.check(
        &at(prefix, "unit"),
        if unit.is_empty() {
            Err(Invalid::new(
                "REQUIRED",
                "a unit is required: an ISO 4217 currency (USD) or a plain unit (1, %, TEU)",
            ))
        } else {
            codes::check_unit(unit)
                .map(|_| unit.clone())
                .map_err(Invalid::from)
        },
    );
    let multiplier = v.check(&at(prefix, "unit_multiplier"), unit_multiplier(*multiplier));
    let frequency = v.check(&at(prefix, "frequency"), frequency(*freq));
    let flow = v.check(&at(prefix, "flow"), flow(*fl));
    let service_category = if service_category.is_empty() {
        Some(None)
    } else {
        v.check(
            &at(prefix, "service_category"),
            codes::check_ebops2010(service_category)
                .map(|_| Some(service_category.clone()))
                .map_err(Invalid::from),
        )
    };
    let region = v.check(&at(prefix, "region"), region(reg));
    let mut dims = BTreeMap::new();
    let dims_ok = list_limit(
        v,
        &at(prefix, "dimensions"),
        dimensions.len(),
        MAX_DIMENSIONS,
    );
    // Sorted so that violations come out in a stable order.
    let mut entries: Vec<(&String, &String)> = dimensions.iter().collect();
    entries.sort();
    for (k, val) in entries {
        let field = format!("{prefix}.dimensions[{:?}]", truncate(k));
        let key_ok = v.check(&field, indicator::check_dimension_key(k));
        let value_ok = v.check(&field, indicator::check_dimension_value(val));
        if key_ok.is_some() && value_ok.is_some() {
            dims.insert(k.clone(), val.clone());
        }
    }
    let aggregation = v.check(&at(prefix, "aggregation"), aggregation(*agg));
    let direction = v.check(&at(prefix, "direction"), direction(*dir));
    let source_agency = v.check(
        &at(prefix, "source_agency"),
        text::optional_line(source_agency, limits::AGENCY),
    );
    // A year-to-date figure is a running sum from January: its months (or quarters) are
    // the differences of consecutive figures. That is only meaningful for sums within a
    // year: an average or an end-of-period stock does not de-cumulate, and an annual
    // figure is its own year.
    if *year_to_date {
        let why = match (aggregation, frequency) {
            (Some(Aggregation::Average | Aggregation::EndOfPeriod), _) => Some((
                "YEAR_TO_DATE_NEEDS_SUM",
                "a year-to-date indicator must have AGGREGATION_SUM: averages and \
                 end-of-period stocks are not cumulated over the year",
            )),
            (_, Some(Frequency::Annual)) => Some((
                "YEAR_TO_DATE_ANNUAL",
                "an annual indicator cannot be year-to-date: its figure is already the \
                 whole year (year_to_date is for monthly, quarterly or half-yearly figures \
                 published as January-to-date sums)",
            )),
            _ => None,
        };
        if let Some((reason, why)) = why {
            v.push(at(prefix, "year_to_date"), reason, why);
        }
    }
    dims_ok?;
    Some(IndicatorSpec {
        title: title?,
        description: description?,
        unit: unit?,
        unit_multiplier: multiplier?,
        frequency: frequency?,
        flow: flow?,
        service_category: service_category?,
        region: region?,
        dimensions: dims,
        aggregation: aggregation?,
        year_to_date: *year_to_date,
        direction: direction?,
        source_agency: source_agency?,
    })
}

/// The wire form of a stored indicator.
pub fn indicator_to_proto(i: &store::indicators::Indicator) -> pb::Indicator {
    use pb::indicator::{Aggregation as A, Flow as F};
    let s = &i.spec;
    let flow = match s.flow {
        Flow::Export => F::Export,
        Flow::Import => F::Import,
        Flow::Total => F::Total,
        Flow::Balance => F::Balance,
        Flow::None => F::None,
    };
    let aggregation = match s.aggregation {
        Aggregation::Sum => A::Sum,
        Aggregation::Average => A::Average,
        Aggregation::EndOfPeriod => A::EndOfPeriod,
    };
    pb::Indicator {
        name: i.name().to_string(),
        title: s.title.clone(),
        description: s.description.clone(),
        unit: s.unit.clone(),
        unit_multiplier: s.unit_multiplier,
        frequency: frequency_to_proto(s.frequency) as i32,
        flow: flow as i32,
        service_category: s.service_category.clone().unwrap_or_default(),
        region: s.region.clone(),
        dimensions: s.dimensions.clone().into_iter().collect(),
        aggregation: aggregation as i32,
        year_to_date: s.year_to_date,
        direction: direction_to_proto(s.direction) as i32,
        source_agency: s.source_agency.clone(),
        create_time: Some(timestamp(i.meta.create_time)),
        update_time: Some(timestamp(i.meta.update_time)),
        etag: i.meta.etag(),
    }
}
