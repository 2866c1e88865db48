//! Flag values of the client commands (enums, names, `key=value` pairs) and the
//! readable forms of what the server returns.

use clap::{Args, ValueEnum};

use super::Failure;
use crate::domain::period::Period;
use crate::proto::v1 as pb;

/// `--start` / `--end`: a range of periods, the one spelling of every command that
/// takes one (`report series`, `export`, `observations list`). `--start-period` and
/// `--end-period`, as the RPCs name the fields, are accepted too (hidden aliases).
#[derive(Debug, Clone, Default, Args)]
pub struct PeriodRange {
    /// First period to include, SDMX syntax (`2020`, `2020-Q3`, `2020-M07`); default:
    /// no lower bound.
    #[arg(long, value_name = "PERIOD", alias = "start-period")]
    pub start: Option<String>,
    /// Last period to include (inclusive), SDMX syntax; default: no upper bound.
    #[arg(long, value_name = "PERIOD", alias = "end-period")]
    pub end: Option<String>,
}

impl PeriodRange {
    /// The `start_period` and `end_period` of a request (empty when not given), each
    /// checked before anything is sent: a malformed one is a usage error naming its
    /// flag.
    pub fn periods(&self) -> Result<(String, String), Failure> {
        let check = |flag: &str, p: &Option<String>| match p {
            None => Ok(String::new()),
            Some(p) => period(format_args!("--{flag}"), p),
        };
        Ok((check("start", &self.start)?, check("end", &self.end)?))
    }
}

/// A period given as `what` (a flag or an argument), checked and in its canonical
/// form (`2020-07` becomes `2020-M07`); a malformed one is a usage error naming
/// `what`.
pub fn period(what: impl std::fmt::Display, text: &str) -> Result<String, Failure> {
    Period::parse(text)
        .map(|p| p.to_string())
        .map_err(|e| Failure::Usage(format!("{what}: {}", e.message)))
}

/// `--frequency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FrequencyArg {
    /// Annual (SDMX `A`).
    #[value(alias = "a", alias = "A")]
    Annual,
    /// Half-yearly (SDMX `S`).
    #[value(alias = "s", alias = "S")]
    HalfYearly,
    /// Quarterly (SDMX `Q`).
    #[value(alias = "q", alias = "Q")]
    Quarterly,
    /// Monthly (SDMX `M`).
    #[value(alias = "m", alias = "M")]
    Monthly,
}

impl From<FrequencyArg> for pb::Frequency {
    fn from(v: FrequencyArg) -> Self {
        match v {
            FrequencyArg::Annual => pb::Frequency::Annual,
            FrequencyArg::HalfYearly => pb::Frequency::HalfYearly,
            FrequencyArg::Quarterly => pb::Frequency::Quarterly,
            FrequencyArg::Monthly => pb::Frequency::Monthly,
        }
    }
}

/// `--direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// Higher values are better.
    #[value(alias = "higher")]
    HigherIsBetter,
    /// Lower values are better.
    #[value(alias = "lower")]
    LowerIsBetter,
}

impl From<DirectionArg> for pb::Direction {
    fn from(v: DirectionArg) -> Self {
        match v {
            DirectionArg::HigherIsBetter => pb::Direction::HigherIsBetter,
            DirectionArg::LowerIsBetter => pb::Direction::LowerIsBetter,
        }
    }
}

/// `--flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowArg {
    /// Exports (BPM6 credit).
    Export,
    /// Imports (BPM6 debit).
    Import,
    /// Exports plus imports.
    Total,
    /// Exports minus imports.
    Balance,
    /// Not a trade flow.
    None,
}

impl From<FlowArg> for pb::indicator::Flow {
    fn from(v: FlowArg) -> Self {
        use pb::indicator::Flow;
        match v {
            FlowArg::Export => Flow::Export,
            FlowArg::Import => Flow::Import,
            FlowArg::Total => Flow::Total,
            FlowArg::Balance => Flow::Balance,
            FlowArg::None => Flow::None,
        }
    }
}

/// `--aggregation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AggregationArg {
    /// Flows: sums.
    Sum,
    /// Rates: means.
    Average,
    /// Stocks: the last value.
    EndOfPeriod,
}

impl From<AggregationArg> for pb::indicator::Aggregation {
    fn from(v: AggregationArg) -> Self {
        use pb::indicator::Aggregation;
        match v {
            AggregationArg::Sum => Aggregation::Sum,
            AggregationArg::Average => Aggregation::Average,
            AggregationArg::EndOfPeriod => Aggregation::EndOfPeriod,
        }
    }
}

/// `--state` of an initiative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    /// Announced, not started.
    Planned,
    /// Under way.
    Active,
    /// Finished as planned.
    Completed,
    /// Paused.
    Suspended,
    /// Abandoned.
    Cancelled,
}

impl From<StateArg> for pb::initiative::State {
    fn from(v: StateArg) -> Self {
        use pb::initiative::State;
        match v {
            StateArg::Planned => State::Planned,
            StateArg::Active => State::Active,
            StateArg::Completed => State::Completed,
            StateArg::Suspended => State::Suspended,
            StateArg::Cancelled => State::Cancelled,
        }
    }
}

/// `--kind` of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Reach a value by the target period.
    Level,
    /// Grow at an average annual rate (percent) from the baseline to the target period.
    GrowthRate,
}

impl From<KindArg> for pb::target::Kind {
    fn from(v: KindArg) -> Self {
        match v {
            KindArg::Level => pb::target::Kind::Level,
            KindArg::GrowthRate => pb::target::Kind::GrowthRate,
        }
    }
}

/// `--transform` of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransformArg {
    /// The values themselves.
    Level,
    /// Difference from the previous period.
    Change,
    /// Difference from a year earlier.
    ChangeYearAgo,
    /// Percent change from the previous period.
    PercentChange,
    /// Percent change from a year earlier.
    PercentChangeYearAgo,
    /// Compound annual growth rate in percent from the first period.
    #[value(alias = "cagr")]
    CompoundAnnualGrowth,
    /// Cumulative from January to each period's end, as year-to-date releases read.
    #[value(alias = "ytd")]
    YearToDate,
    /// The cumulative value's difference from the same months a year earlier.
    YearToDateChangeYearAgo,
    /// The cumulative value's percent change on the same months a year earlier.
    YearToDatePercentChangeYearAgo,
}

impl From<TransformArg> for pb::Transform {
    fn from(v: TransformArg) -> Self {
        match v {
            TransformArg::Level => pb::Transform::Level,
            TransformArg::Change => pb::Transform::Change,
            TransformArg::ChangeYearAgo => pb::Transform::ChangeYearAgo,
            TransformArg::PercentChange => pb::Transform::PercentChange,
            TransformArg::PercentChangeYearAgo => pb::Transform::PercentChangeYearAgo,
            TransformArg::CompoundAnnualGrowth => pb::Transform::CompoundAnnualGrowth,
            TransformArg::YearToDate => pb::Transform::YearToDate,
            TransformArg::YearToDateChangeYearAgo => pb::Transform::YearToDateChangeYearAgo,
            TransformArg::YearToDatePercentChangeYearAgo => {
                pb::Transform::YearToDatePercentChangeYearAgo
            }
        }
    }
}

/// `--group-by` of a breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupByArg {
    /// The EBOPS 2010 service category.
    ServiceCategory,
    /// The flow.
    Flow,
    /// The region.
    Region,
    /// A free dimension, named by `--dimension-key`.
    Free,
}

impl From<GroupByArg> for pb::BreakdownDimension {
    fn from(v: GroupByArg) -> Self {
        match v {
            GroupByArg::ServiceCategory => pb::BreakdownDimension::ServiceCategory,
            GroupByArg::Flow => pb::BreakdownDimension::Flow,
            GroupByArg::Region => pb::BreakdownDimension::Region,
            GroupByArg::Free => pb::BreakdownDimension::Free,
        }
    }
}

/// Parses `key=value` (a free dimension).
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

/// Parses `key=value` pairs given to `flag` (empty entries are skipped, so `''` is
/// the empty map).
pub fn parse_key_values(
    flag: &str,
    list: &[String],
) -> Result<std::collections::HashMap<String, String>, Failure> {
    list.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(key_value)
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::Usage(format!("{flag}: {e}")))
}

/// `programs/{id}` from a bare id or that name.
pub fn program_name(id: &str) -> String {
    if id.starts_with("programs/") {
        id.to_owned()
    } else {
        format!("programs/{id}")
    }
}

/// `indicators/{id}` from a bare id or that name; empty stays empty (clears a field).
pub fn indicator_name(id: &str) -> String {
    if id.is_empty() || id.starts_with("indicators/") {
        id.to_owned()
    } else {
        format!("indicators/{id}")
    }
}

/// The full name `indicators/{id}/observations/{period}` of an observation given as
/// INDICATOR PERIOD (the indicator by id or name), or as that full name alone.
pub fn observation_name(indicator: &str, period_arg: Option<&str>) -> Result<String, Failure> {
    let (indicator, period_text) = match (indicator.split_once("/observations/"), period_arg) {
        (Some((ind, p)), None) => (ind, p),
        (Some(_), Some(_)) => {
            return Err(Failure::Usage(format!(
                "{indicator:?} is a full observation name already: give INDICATOR PERIOD, or \
                 the full name alone"
            )));
        }
        (None, Some(p)) => (indicator, p),
        (None, None) => {
            let id = indicator.strip_prefix("indicators/").unwrap_or(indicator);
            return Err(Failure::Usage(format!(
                "give the PERIOD after {indicator:?}, or a full name like \
                 indicators/{id}/observations/PERIOD"
            )));
        }
    };
    if indicator.is_empty() || indicator == "indicators" || indicator.ends_with('/') {
        return Err(Failure::Usage(format!(
            "{indicator:?} is neither an indicator id nor a name like indicators/ID"
        )));
    }
    let period = period("PERIOD", period_text)?;
    Ok(format!(
        "{}/observations/{period}",
        indicator_name(indicator)
    ))
}

/// The parent and id of a programme's child (`initiatives` or `targets`), given as a
/// full name `programs/{p}/{collection}/{id}` or as a bare id with `--program`.
pub fn split_child(
    arg: &str,
    program: Option<&str>,
    collection: &str,
) -> Result<(String, String), Failure> {
    if let Some(rest) = arg.strip_prefix("programs/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if let [p, c, id] = parts.as_slice()
            && *c == collection
        {
            let parent = format!("programs/{p}");
            if let Some(given) = program
                && program_name(given) != parent
            {
                return Err(Failure::Usage(format!("{arg} is not in --program {given}")));
            }
            return Ok((parent, (*id).to_owned()));
        }
        return Err(Failure::Usage(format!(
            "{arg:?} is neither an id nor a name like programs/PROGRAM/{collection}/ID"
        )));
    }
    match program {
        Some(p) => Ok((program_name(p), arg.to_owned())),
        None => Err(Failure::Usage(format!(
            "give --program PROGRAM for {arg:?}, or a full name like programs/PROGRAM/{collection}/{arg}"
        ))),
    }
}

/// The full name of a programme's child; see [`split_child`].
pub fn child_name(arg: &str, program: Option<&str>, collection: &str) -> Result<String, Failure> {
    let (parent, id) = split_child(arg, program, collection)?;
    Ok(format!("{parent}/{collection}/{id}"))
}

/// The programme `programs/{p}` of a child's full name.
pub fn parent_of(name: &str) -> &str {
    let mut slashes = name.match_indices('/');
    match slashes.nth(1) {
        Some((i, _)) => &name[..i],
        None => name,
    }
}

/// The readable form of a proto enum name: `FREQUENCY_HALF_YEARLY` → `half-yearly`
/// (the flag value); `?N` for a number this build does not know.
fn readable(name: Option<&str>, prefix: &str, number: i32) -> String {
    match name {
        Some(n) if n.ends_with("_UNSPECIFIED") => String::new(),
        Some(n) => n
            .strip_prefix(prefix)
            .unwrap_or(n)
            .to_ascii_lowercase()
            .replace('_', "-"),
        None => format!("?{number}"),
    }
}

/// A frequency, readable.
pub fn frequency(v: i32) -> String {
    let e = pb::Frequency::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "FREQUENCY_", v)
}

/// A direction, readable.
pub fn direction(v: i32) -> String {
    let e = pb::Direction::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "DIRECTION_", v)
}

/// A flow, readable.
pub fn flow(v: i32) -> String {
    let e = pb::indicator::Flow::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "FLOW_", v)
}

/// An aggregation, readable.
pub fn aggregation(v: i32) -> String {
    let e = pb::indicator::Aggregation::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "AGGREGATION_", v)
}

/// An initiative state, readable.
pub fn state(v: i32) -> String {
    let e = pb::initiative::State::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "STATE_", v)
}

/// A target kind, readable.
pub fn kind(v: i32) -> String {
    let e = pb::target::Kind::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "KIND_", v)
}

/// A transform, readable.
pub fn transform(v: i32) -> String {
    let e = pb::Transform::try_from(v).ok();
    match readable(e.map(|e| e.as_str_name()), "TRANSFORM_", v) {
        t if t.is_empty() => "level".to_owned(),
        t => t,
    }
}

/// A breakdown dimension, readable.
pub fn group_by(v: i32) -> String {
    let e = pb::BreakdownDimension::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "BREAKDOWN_DIMENSION_", v)
}

/// An observation status, readable, with its SDMX code: `provisional (P)`; empty when
/// unset (a deletion).
pub fn obs_status(v: i32) -> String {
    let e = pb::observation::Status::try_from(v).ok();
    let word = readable(e.map(|e| e.as_str_name()), "STATUS_", v);
    match crate::api::observation_service::status_from_proto(v) {
        Ok(s) if !word.is_empty() => format!("{word} ({})", s.code()),
        _ => word,
    }
}

/// A progress status, in words: `acceleration needed`.
pub fn status(v: i32) -> String {
    let e = pb::target_progress::Status::try_from(v).ok();
    readable(e.map(|e| e.as_str_name()), "STATUS_", v).replace('-', " ")
}

/// A unit with its multiplier: `USD`, `10^8 USD`, `10^-3 T`.
pub fn unit(unit: &str, multiplier: i32) -> String {
    match multiplier {
        0 => unit.to_owned(),
        m => format!("10^{m} {unit}"),
    }
}

/// A timestamp as RFC 3339 UTC (`2026-01-31T12:00:00Z`), empty when unset.
pub fn time(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// A fraction as a percentage with two decimals (`0.0298` → `2.98 %`); empty when
/// unset.
pub fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2} %", v * 100.0)).unwrap_or_default()
}

/// A number that is already a percentage (`5.1` → `5.10 %`); empty when unset.
pub fn percent_of(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2} %")).unwrap_or_default()
}

/// A value with its period, `22.8 (2020)`; empty when there is no value.
pub fn at(value: &str, period: &str) -> String {
    match (value.is_empty(), period.is_empty()) {
        (true, _) => String::new(),
        (false, true) => value.to_owned(),
        (false, false) => format!("{value} ({period})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(program_name("cq"), "programs/cq");
        assert_eq!(program_name("programs/cq"), "programs/cq");
        assert_eq!(indicator_name("x"), "indicators/x");
        assert_eq!(indicator_name(""), "");
        assert_eq!(
            child_name("a", Some("cq"), "initiatives").unwrap(),
            "programs/cq/initiatives/a"
        );
        assert_eq!(
            child_name("programs/cq/targets/t", None, "targets").unwrap(),
            "programs/cq/targets/t"
        );
        assert_eq!(
            child_name("programs/cq/targets/t", Some("programs/cq"), "targets").unwrap(),
            "programs/cq/targets/t"
        );
        assert!(child_name("t", None, "targets").is_err());
        assert!(child_name("programs/cq/initiatives/t", None, "targets").is_err());
        assert!(child_name("programs/cq/targets/t", Some("other"), "targets").is_err());
        assert_eq!(parent_of("programs/cq/targets/t"), "programs/cq");
        assert_eq!(
            observation_name("x", Some("2020-07")).unwrap(),
            "indicators/x/observations/2020-M07"
        );
        assert_eq!(
            observation_name("indicators/x", Some("2020-Q3")).unwrap(),
            "indicators/x/observations/2020-Q3"
        );
        assert_eq!(
            observation_name("indicators/x/observations/2020", None).unwrap(),
            "indicators/x/observations/2020"
        );
        assert!(observation_name("x", None).is_err());
        assert!(observation_name("x", Some("2020-13")).is_err());
        assert!(observation_name("indicators/x/observations/2020", Some("2020")).is_err());
    }

    #[test]
    fn readable_enums() {
        assert_eq!(frequency(pb::Frequency::HalfYearly as i32), "half-yearly");
        assert_eq!(frequency(0), "");
        assert_eq!(frequency(99), "?99");
        assert_eq!(
            status(pb::target_progress::Status::AccelerationNeeded as i32),
            "acceleration needed"
        );
        assert_eq!(transform(0), "level");
        assert_eq!(aggregation(3), "end-of-period");
        assert_eq!(unit("USD", 8), "10^8 USD");
        assert_eq!(percent(Some(0.029_788_87)), "2.98 %");
        assert_eq!(percent(None), "");
        assert_eq!(at("22.8", "2020"), "22.8 (2020)");
        assert_eq!(
            obs_status(pb::observation::Status::Provisional as i32),
            "provisional (P)"
        );
        assert_eq!(
            obs_status(pb::observation::Status::MissingNotCollected as i32),
            "missing-not-collected (L)"
        );
        assert_eq!(obs_status(0), "");
    }

    #[test]
    fn pairs() {
        assert_eq!(
            key_value("shore=OFFSHORE").unwrap(),
            ("shore".to_owned(), "OFFSHORE".to_owned())
        );
        assert!(key_value("shore").is_err());
        assert!(key_value("=x").is_err());
    }
}
