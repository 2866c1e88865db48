//! The reporting maths, as pure functions over periods and exact decimals: turning
//! year-to-date figures into per-period ones, rolling up to lower frequencies, the
//! series transforms, compound annual growth and target progress.
//!
//! Figures stay exact decimals ([`BigDecimal`]) through sums, differences and unit
//! conversions; only derived ratios (growth rates, attainment, the progress ratio) are
//! floating point, as the brief allows. Averages of a roll-up are rounded to
//! [`AVERAGE_SCALE`] decimals.
//!
//! Target progress follows the methods published by Open SDG / Statistics Canada
//! (Eurostat-inspired) and the UN Progress Chart:
//! - CAGR(v0 → v1) = (v1 / v0)^(1 / (t1 − t0)) − 1, t in years;
//! - observed CAGR: baseline → latest complete period; required CAGR: baseline → target;
//! - ratio R = direction × observed / |required|;
//! - achieved (latest meets the target) overrides everything; missed once the target
//!   period's figure is known and unmet; else on track (R ≥ 0.95), acceleration needed
//!   (0.60 ≤ R < 0.95), limited progress (0 ≤ R < 0.60), deterioration (R < 0); not
//!   assessable, with the reason, when fewer than two usable data points exist.

use std::collections::HashMap;

use bigdecimal::{BigDecimal, ToPrimitive, Zero};

use super::indicator::Aggregation;
use super::program::{Direction, TargetKind};
use super::{Frequency, Period};

/// Decimals kept when an average does not divide exactly.
pub const AVERAGE_SCALE: i64 = 12;
/// R at or above this: on track.
pub const ON_TRACK: f64 = 0.95;
/// R at or above this (and below [`ON_TRACK`]): acceleration needed.
pub const ACCELERATION_NEEDED: f64 = 0.60;

/// One value of a series; `None` when the observation says the value is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The period.
    pub period: Period,
    /// The value, in the indicator's units.
    pub value: Option<BigDecimal>,
}

/// `value × 10^power`, exactly.
pub fn scale(value: &BigDecimal, power: i32) -> BigDecimal {
    value * BigDecimal::new(1.into(), -i64::from(power))
}

/// Turns year-to-date cumulative values into per-period values: the first period of a
/// year is its own value; every later one is its YTD value minus the previous period's
/// YTD value. A period whose predecessor in the same year is missing cannot be
/// de-cumulated and becomes missing. `points` must be sorted and of one frequency.
pub fn decumulate(points: &[Point]) -> Vec<Point> {
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let value = if p.period.index() == 1 {
            p.value.clone()
        } else {
            let previous = i
                .checked_sub(1)
                .map(|j| &points[j])
                .filter(|q| Some(q.period) == p.period.offset(-1));
            match (previous.and_then(|q| q.value.as_ref()), &p.value) {
                (Some(prev), Some(v)) => Some(v - prev),
                _ => None,
            }
        };
        out.push(Point {
            period: p.period,
            value,
        });
    }
    out
}

/// One period of a rolled-up series.
#[derive(Debug, Clone, PartialEq)]
pub struct Rolled {
    /// The lower-frequency period.
    pub period: Period,
    /// The combined value; `None` unless every part is present with a value.
    pub value: Option<BigDecimal>,
    /// Parts present with a value.
    pub parts: u32,
    /// Parts the period has.
    pub expected: u32,
}

impl Rolled {
    /// True when some part is missing (the value is then `None`, never a partial sum).
    pub fn partial(&self) -> bool {
        self.parts < self.expected
    }
}

/// Combines `points` (sorted, one frequency) into periods of frequency `to` by
/// `aggregation`. Only periods with at least one point appear.
pub fn roll_up(points: &[Point], to: Frequency, aggregation: Aggregation) -> Vec<Rolled> {
    let mut out: Vec<Rolled> = Vec::new();
    let mut values: Vec<BigDecimal> = Vec::new();
    let flush = |out: &mut Vec<Rolled>, values: &mut Vec<BigDecimal>| {
        if let Some(last) = out.last_mut() {
            last.parts = values.len() as u32;
            last.value =
                (last.parts == last.expected && !values.is_empty()).then(|| match aggregation {
                    Aggregation::Sum => values.iter().sum(),
                    Aggregation::Average => {
                        let sum: BigDecimal = values.iter().sum();
                        (sum / BigDecimal::from(values.len() as u64))
                            .with_scale_round(AVERAGE_SCALE, bigdecimal::RoundingMode::HalfEven)
                            .normalized()
                    }
                    Aggregation::EndOfPeriod => values[values.len() - 1].clone(),
                });
        }
        values.clear();
    };
    for p in points {
        let Some(target) = p.period.containing(to) else {
            continue;
        };
        if out.last().map(|r| r.period) != Some(target) {
            flush(&mut out, &mut values);
            out.push(Rolled {
                period: target,
                value: None,
                parts: 0,
                expected: p.period.frequency().periods_per_year() / to.periods_per_year(),
            });
        }
        if let Some(v) = &p.value {
            values.push(v.clone());
        }
    }
    flush(&mut out, &mut values);
    out
}

/// Rolls year-to-date cumulative figures (sorted, one frequency) up to periods of
/// frequency `to`. A period's value is the cumulative figure at its last part minus the
/// one at the end of the period before it in the same year (nothing to subtract for
/// the year's first period), so a period is complete when those two figures are known,
/// whatever is known of the parts in between: a "January–February" release and the
/// March one give the first quarter although January alone is unknown. `parts` counts
/// the parts known one by one (all of them once the period is complete). Only periods
/// with at least one point appear.
pub fn roll_up_year_to_date(points: &[Point], to: Frequency) -> Vec<Rolled> {
    let Some(native) = points.first().map(|p| p.period.frequency()) else {
        return Vec::new();
    };
    let cumulative = |period: Option<Period>| value_at(points, period?);
    let per_part = roll_up(&decumulate(points), to, Aggregation::Sum);
    per_part
        .into_iter()
        .map(|mut r| {
            let months = 12 / native.periods_per_year();
            let end = Period::new(r.period.year(), native, r.period.last_month() / months);
            let value = match cumulative(end) {
                Some(at_end) if r.period.index() == 1 => Some(at_end.clone()),
                Some(at_end) => {
                    let before = Period::new(
                        r.period.year(),
                        native,
                        (r.period.first_month() - 1) / months,
                    );
                    cumulative(before).map(|b| at_end - b)
                }
                None => None,
            };
            if value.is_some() {
                r.parts = r.expected;
            }
            r.value = value;
            r
        })
        .collect()
}

/// The cumulative "January–N" series at frequency `to` (not finer than the points'),
/// as year-to-date releases publish it: each period's value is the sum of the year's
/// values from its first period to the period's end. From per-period `points` (sorted,
/// one frequency) of a sum; complete when every part from January on is known (`parts`
/// of `expected`). Only periods with at least one point appear.
pub fn cumulate(points: &[Point], to: Frequency) -> Vec<Rolled> {
    let Some(native) = points.first().map(|p| p.period.frequency()) else {
        return Vec::new();
    };
    let months = 12 / native.periods_per_year();
    let mut out: Vec<Rolled> = Vec::new();
    // The year, and the running sum of its values known so far with their count.
    let mut year: Option<i32> = None;
    let mut sum = BigDecimal::zero();
    let mut known = 0u32;
    for p in points {
        let Some(target) = p.period.containing(to) else {
            continue;
        };
        if year != Some(p.period.year()) {
            year = Some(p.period.year());
            sum = BigDecimal::zero();
            known = 0;
        }
        if let Some(v) = &p.value {
            sum += v;
            known += 1;
        }
        // Parts from January to the period's end; until its last part is seen, the
        // period is incomplete.
        let expected = target.last_month() / months;
        let at_end = p.period.index() == expected;
        let rolled = Rolled {
            period: target,
            value: (at_end && known == expected).then(|| sum.clone()),
            parts: known,
            expected,
        };
        match out.last_mut() {
            Some(last) if last.period == target => *last = rolled,
            _ => out.push(rolled),
        }
    }
    out
}

/// The cumulative "January–N" series at frequency `to` from year-to-date releases:
/// the release at each period's end, as published.
pub fn cumulative_releases(points: &[Point], to: Frequency) -> Vec<Rolled> {
    let Some(native) = points.first().map(|p| p.period.frequency()) else {
        return Vec::new();
    };
    let months = 12 / native.periods_per_year();
    let mut out: Vec<Rolled> = Vec::new();
    for p in points {
        let Some(target) = p.period.containing(to) else {
            continue;
        };
        if out.last().map(|r| r.period) != Some(target) {
            out.push(Rolled {
                period: target,
                value: None,
                parts: 0,
                expected: 1,
            });
        }
        if p.period.index() == target.last_month() / months
            && let (Some(last), Some(v)) = (out.last_mut(), &p.value)
        {
            last.value = Some(v.clone());
            last.parts = 1;
        }
    }
    out
}

/// Decimals a converted value keeps, in the unit multiplier it is stated in: a
/// conversion rounds half to even there (a division rarely ends).
pub const CONVERSION_SCALE: i64 = 6;

/// A currency conversion through an exchange-rate indicator of unit `PRICE/BASE`
/// (units of PRICE per unit of BASE): values in BASE are multiplied by the rate, values
/// in PRICE divided by it.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The currency reported in.
    pub to: String,
    /// The rate's price currency (CNY in CNY/USD).
    pub price: String,
    /// The rate's base currency (USD in CNY/USD).
    pub base: String,
    /// Rates in plain units, at the rate indicator's frequency and every coarser one
    /// (complete periods only, combined by the rate indicator's aggregation).
    rates: HashMap<Period, BigDecimal>,
}

/// The rate a conversion used: its period and value (PRICE per BASE, plain units).
#[derive(Debug, Clone, PartialEq)]
pub struct RateUsed {
    /// The period of the rate (the value's own, or a longer one containing it).
    pub period: Period,
    /// The rate.
    pub rate: BigDecimal,
}

impl Conversion {
    /// A conversion into `to` with the points of a rate indicator of unit
    /// `price/base`, multiplier `multiplier` and aggregation `aggregation`.
    pub fn new(
        to: &str,
        (price, base): (&str, &str),
        points: &[Point],
        multiplier: i32,
        aggregation: Aggregation,
    ) -> Self {
        let mut rates = HashMap::new();
        if let Some(native) = points.first().map(|p| p.period.frequency()) {
            for p in points {
                if let Some(v) = &p.value {
                    rates.insert(p.period, scale(v, multiplier));
                }
            }
            for f in FINEST_FIRST {
                if f < native {
                    for r in roll_up(points, f, aggregation) {
                        if let Some(v) = r.value {
                            rates.insert(r.period, scale(&v, multiplier));
                        }
                    }
                }
            }
        }
        Self {
            to: to.to_owned(),
            price: price.to_owned(),
            base: base.to_owned(),
            rates,
        }
    }

    /// Whether values in `from` need converting (false when already in the target
    /// currency), or why this rate cannot convert them.
    pub fn applies(&self, from: &str) -> Result<bool, String> {
        if from == self.to {
            return Ok(false);
        }
        let pair = [self.price.as_str(), self.base.as_str()];
        if pair.contains(&from) && pair.contains(&self.to.as_str()) {
            return Ok(true);
        }
        Err(format!(
            "a {}/{} rate cannot convert {from} into {}",
            self.price, self.base, self.to
        ))
    }

    /// The rate for period `p`: its own, else that of the shortest longer period
    /// containing it (a year's average rate for a month, say). Never another period's.
    pub fn rate_for(&self, p: Period) -> Option<RateUsed> {
        std::iter::once(Some(p))
            .chain(
                FINEST_FIRST
                    .iter()
                    .filter(|f| **f < p.frequency())
                    .map(|f| p.containing(*f)),
            )
            .flatten()
            .find_map(|q| {
                self.rates
                    .get(&q)
                    .filter(|r| !r.is_zero())
                    .map(|r| RateUsed {
                        period: q,
                        rate: r.clone(),
                    })
            })
    }

    /// `value` of period `p`, in `from` (which [`Self::applies`] accepted), in the
    /// target currency, rounded to [`CONVERSION_SCALE`] decimals; `None` without a rate.
    pub fn convert(
        &self,
        from: &str,
        value: &BigDecimal,
        p: Period,
    ) -> Option<(BigDecimal, RateUsed)> {
        let used = self.rate_for(p)?;
        let exact = if from == self.base {
            value * &used.rate
        } else {
            value / &used.rate
        };
        let rounded = exact
            .with_scale_round(CONVERSION_SCALE, bigdecimal::RoundingMode::HalfEven)
            .normalized();
        Some((rounded, used))
    }
}

/// Frequencies from the finest to the coarsest.
const FINEST_FIRST: [Frequency; 4] = [
    Frequency::Monthly,
    Frequency::Quarterly,
    Frequency::HalfYearly,
    Frequency::Annual,
];

/// The value of `period` in `points` (sorted, one frequency), if present with one.
fn value_at(points: &[Point], period: Period) -> Option<&BigDecimal> {
    points
        .binary_search_by_key(&period.ordinal(), |p| p.period.ordinal())
        .ok()
        .and_then(|i| points[i].value.as_ref())
}

/// A series transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The values themselves.
    Level,
    /// Difference from the previous period.
    Change,
    /// Difference from the same period a year earlier.
    ChangeYearAgo,
    /// Percent change from the previous period.
    PercentChange,
    /// Percent change from the same period a year earlier.
    PercentChangeYearAgo,
    /// Compound annual growth rate, in percent, from the first period of the series.
    CompoundAnnualGrowth,
}

/// A transformed value: exact for levels and differences, floating point for rates.
#[derive(Debug, Clone, PartialEq)]
pub enum Transformed {
    /// An exact decimal.
    Exact(BigDecimal),
    /// A derived rate (percent).
    Rate(f64),
    /// Not computable (a missing operand, a zero base).
    Missing,
}

/// Applies `t` to a sorted series of one frequency.
pub fn transform(points: &[Point], t: Transform) -> Vec<(Period, Transformed)> {
    let find = |period: Option<Period>| value_at(points, period?);
    let first = points.iter().find(|p| p.value.is_some());
    points
        .iter()
        .map(|p| {
            let lag = match t {
                Transform::Change | Transform::PercentChange => 1,
                _ => i64::from(p.period.frequency().periods_per_year()),
            };
            let value = match (t, &p.value) {
                (_, None) => Transformed::Missing,
                (Transform::Level, Some(v)) => Transformed::Exact(v.clone()),
                (Transform::Change | Transform::ChangeYearAgo, Some(v)) => {
                    match find(p.period.offset(-lag)) {
                        Some(base) => Transformed::Exact(v - base),
                        None => Transformed::Missing,
                    }
                }
                (Transform::PercentChange | Transform::PercentChangeYearAgo, Some(v)) => {
                    match find(p.period.offset(-lag)).and_then(|base| ratio(v, base)) {
                        Some(r) => Transformed::Rate((r - 1.0) * 100.0),
                        None => Transformed::Missing,
                    }
                }
                (Transform::CompoundAnnualGrowth, Some(v)) => match first {
                    Some(f) if f.period != p.period => {
                        let years = p.period.years_since(f.period);
                        f.value
                            .as_ref()
                            .and_then(|v0| cagr(v0, v, years).ok())
                            .map(|g| Transformed::Rate(g * 100.0))
                            .unwrap_or(Transformed::Missing)
                    }
                    _ => Transformed::Missing,
                },
            };
            (p.period, value)
        })
        .collect()
}

/// `a / b` as a float; `None` when `b` is zero.
///
/// Divides in floating point: the result is a derived ratio (a float on the wire), and
/// each operand converts with a relative error of 1e-16, whereas an exact decimal
/// division computes 100 digits and cost most of a scorecard's CPU time.
pub fn ratio(a: &BigDecimal, b: &BigDecimal) -> Option<f64> {
    if b.is_zero() {
        return None;
    }
    Some(a.to_f64()? / b.to_f64()?)
}

/// Why a compound growth rate cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CagrError {
    /// The start value is zero or negative.
    NonPositiveStart,
    /// The end value is negative (a fractional power of a negative ratio).
    NegativeEnd,
    /// The span is not positive.
    NoSpan,
}

/// Compound annual growth rate from `v0` to `v1` over `years` (a fraction, not percent).
pub fn cagr(v0: &BigDecimal, v1: &BigDecimal, years: f64) -> Result<f64, CagrError> {
    if years <= 0.0 {
        return Err(CagrError::NoSpan);
    }
    if v0 <= &BigDecimal::zero() {
        return Err(CagrError::NonPositiveStart);
    }
    if v1 < &BigDecimal::zero() {
        return Err(CagrError::NegativeEnd);
    }
    let r = ratio(v1, v0).ok_or(CagrError::NonPositiveStart)?;
    Ok(r.powf(1.0 / years) - 1.0)
}

/// Progress status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStatus {
    /// The latest value meets the target.
    Achieved,
    /// R ≥ 0.95.
    OnTrack,
    /// 0.60 ≤ R < 0.95.
    AccelerationNeeded,
    /// 0 ≤ R < 0.60.
    LimitedProgress,
    /// R < 0.
    Deterioration,
    /// The target period's figure is known and does not meet the target.
    Missed,
    /// Not enough data; see the reason.
    NotAssessable,
}

/// A target as the maths needs it: values already in base units (× 10^multiplier).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFacts {
    /// Level or growth rate.
    pub kind: TargetKind,
    /// Level in base units, or percent per year.
    pub value: BigDecimal,
    /// Target period.
    pub period: Period,
    /// Baseline period, if fixed by the target.
    pub baseline_period: Option<Period>,
    /// Baseline value in base units, if fixed by the target.
    pub baseline_value: Option<BigDecimal>,
    /// Desired direction.
    pub direction: Direction,
    /// How the reason texts show values: the unit and multiplier of the figures shown.
    pub shown: Shown,
    /// The month the assessment is as of, as [`Period::start_key`] counts (a target
    /// whose period has ended without a figure is no longer judged by its path).
    pub as_of_month: i64,
}

/// The unit and unit multiplier values are shown in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shown {
    /// Unit (`USD`, `%`, `1` for counts, ...).
    pub unit: String,
    /// Power of ten of the values shown.
    pub multiplier: i32,
}

impl Shown {
    /// A value in base units as shown: `22.8 × 10^9 USD`, `5.2 %`, `1200` (counts).
    pub fn show(&self, base: &BigDecimal) -> String {
        let v = scale(base, -self.multiplier).normalized().to_plain_string();
        let unit = match self.unit.as_str() {
            "" | "1" => String::new(),
            u => format!(" {u}"),
        };
        match self.multiplier {
            0 => format!("{v}{unit}"),
            m => format!("{v} × 10^{m}{unit}"),
        }
    }
}

/// The assessment of a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The status.
    pub status: ProgressStatus,
    /// Why the status is what it is (always set for NotAssessable).
    pub reason: String,
    /// Baseline used, in base units.
    pub baseline: Option<(Period, BigDecimal)>,
    /// Latest complete value up to the target period, in base units.
    pub latest: Option<(Period, BigDecimal)>,
    /// latest / target (levels), or observed / required growth (growth targets).
    pub attainment: Option<f64>,
    /// Observed CAGR baseline → latest.
    pub observed_cagr: Option<f64>,
    /// Required CAGR baseline → target.
    pub required_cagr: Option<f64>,
    /// direction × observed / |required|.
    pub ratio: Option<f64>,
    /// Value at the target period if the observed CAGR continues, in base units.
    pub projected: Option<f64>,
    /// CAGR still needed from the latest value to reach the target.
    pub still_required_cagr: Option<f64>,
}

impl Progress {
    /// No verdict, for `reason`, and no figures.
    pub fn not_assessable(reason: impl Into<String>) -> Self {
        Self {
            status: ProgressStatus::NotAssessable,
            reason: reason.into(),
            baseline: None,
            latest: None,
            attainment: None,
            observed_cagr: None,
            required_cagr: None,
            ratio: None,
            projected: None,
            still_required_cagr: None,
        }
    }
}

fn sign(d: Direction) -> f64 {
    match d {
        Direction::HigherIsBetter => 1.0,
        Direction::LowerIsBetter => -1.0,
    }
}

fn status_for_ratio(r: f64) -> ProgressStatus {
    if r >= ON_TRACK {
        ProgressStatus::OnTrack
    } else if r >= ACCELERATION_NEEDED {
        ProgressStatus::AccelerationNeeded
    } else if r >= 0.0 {
        ProgressStatus::LimitedProgress
    } else {
        ProgressStatus::Deterioration
    }
}

fn cagr_reason(e: &CagrError, what: &str) -> String {
    match e {
        CagrError::NonPositiveStart => {
            format!(
                "the {what} starts from zero or a negative value, so compound growth is undefined"
            )
        }
        CagrError::NegativeEnd => {
            format!("the {what} ends at a negative value, so compound growth is undefined")
        }
        CagrError::NoSpan => format!("the {what} spans no time"),
    }
}

/// Assesses a target against `data`: complete values at the target's frequency, in base
/// units, sorted by period.
pub fn assess(target: &TargetFacts, data: &[(Period, BigDecimal)]) -> Progress {
    let dir = sign(target.direction);
    // Latest complete value up to the target period (later figures are ignored: the
    // target is about its own period).
    let latest = data
        .iter()
        .rev()
        .find(|(p, _)| p.start_key() <= target.period.start_key())
        .cloned();
    let Some(latest) = latest else {
        return Progress::not_assessable(format!(
            "no complete {} value up to {}",
            target.period.frequency().describe(),
            target.period
        ));
    };
    // Baseline: fixed by the target, or the first data point.
    let baseline = match (&target.baseline_period, &target.baseline_value) {
        (Some(p), Some(v)) => Some((*p, v.clone())),
        (Some(p), None) => match data.iter().find(|(q, _)| q == p) {
            Some(found) => Some(found.clone()),
            None => {
                let mut out =
                    Progress::not_assessable(format!("no value for the baseline period {p}"));
                out.latest = Some(latest);
                return out;
            }
        },
        (None, _) => data.first().cloned(),
    };
    let target_reached = latest.0.start_key() >= target.period.start_key();

    let mut out = Progress::not_assessable("");
    out.latest = Some(latest.clone());
    out.baseline = baseline.clone();
    let growth = growth(target, baseline.as_ref(), &latest);
    if let Ok(g) = &growth {
        out.observed_cagr = Some(g.observed);
        out.required_cagr = Some(g.required);
        out.ratio = g.ratio;
        out.projected = g.projected;
        out.still_required_cagr = g.still_required;
    }

    if target.kind == TargetKind::Level {
        out.attainment = ratio(&latest.1, &target.value);
        let meets = match target.direction {
            Direction::HigherIsBetter => latest.1 >= target.value,
            Direction::LowerIsBetter => latest.1 <= target.value,
        };
        // A verdict; the growth figures above stay, when they can be computed.
        if meets {
            out.status = ProgressStatus::Achieved;
            out.reason = format!(
                "the {} value {} meets the target {}",
                latest.0,
                target.shown.show(&latest.1),
                target.shown.show(&target.value)
            );
            return out;
        }
        if target_reached {
            out.status = ProgressStatus::Missed;
            out.reason = format!(
                "the target period has passed: the {} value {} does not meet the target {}",
                latest.0,
                target.shown.show(&latest.1),
                target.shown.show(&target.value)
            );
            return out;
        }
    }
    let g = match growth {
        Ok(g) => g,
        Err(reason) => {
            out.reason = reason;
            return out;
        }
    };
    if target.kind == TargetKind::GrowthRate {
        out.attainment = (g.required != 0.0).then(|| g.observed / g.required);
        if target_reached {
            let met = dir * (g.observed - g.required) >= 0.0;
            out.status = if met {
                ProgressStatus::Achieved
            } else {
                ProgressStatus::Missed
            };
            out.reason = format!(
                "observed growth {:.2} % a year against the required {:.2} %",
                g.observed * 100.0,
                g.required * 100.0
            );
            return out;
        }
    }
    // The target period is over but its figure is not known (not yet published, or
    // never): the path to it no longer says anything, and the outcome is unknown.
    if target.as_of_month > target.period.end_key() {
        out.status = ProgressStatus::NotAssessable;
        out.reason = format!(
            "the target period {} has ended without a figure for it; the latest is {} ({}), \
             growing {:.2} % a year against {:.2} % a year required",
            target.period,
            latest.0,
            target.shown.show(&latest.1),
            g.observed * 100.0,
            g.required * 100.0
        );
        return out;
    }
    out.status = status_for_ratio(g.raw_ratio);
    out.reason = format!(
        "observed growth {:.2} % a year since {} against {:.2} % a year required to reach the target",
        g.observed * 100.0,
        g.since,
        g.required * 100.0
    );
    out
}

/// The growth figures of a target: from the baseline to the latest value, and what the
/// target requires.
struct Growth {
    /// The baseline period.
    since: Period,
    /// Observed CAGR baseline → latest.
    observed: f64,
    /// Required CAGR baseline → target.
    required: f64,
    /// direction × observed / |required| (±infinity when the target is the baseline).
    raw_ratio: f64,
    /// `raw_ratio` when finite.
    ratio: Option<f64>,
    /// The value at the target period if the observed CAGR continues (the latest value
    /// itself once it is the target period's).
    projected: Option<f64>,
    /// CAGR still needed from the latest value (before the target period only).
    still_required: Option<f64>,
}

/// The growth figures, or why they cannot be computed.
fn growth(
    target: &TargetFacts,
    baseline: Option<&(Period, BigDecimal)>,
    latest: &(Period, BigDecimal),
) -> Result<Growth, String> {
    let dir = sign(target.direction);
    let Some(baseline) = baseline else {
        return Err("no baseline".into());
    };
    if baseline.0.start_key() >= latest.0.start_key() {
        return Err(format!(
            "only one data point ({}) since the baseline; two are needed to measure progress",
            latest.0
        ));
    }
    let observed = cagr(&baseline.1, &latest.1, latest.0.years_since(baseline.0))
        .map_err(|e| cagr_reason(&e, "series"))?;
    let years_left = target.period.years_since(latest.0);
    let required = match target.kind {
        TargetKind::Level => cagr(
            &baseline.1,
            &target.value,
            target.period.years_since(baseline.0),
        )
        .map_err(|e| cagr_reason(&e, "path to the target"))?,
        TargetKind::GrowthRate => target.value.to_f64().unwrap_or(0.0) / 100.0,
    };
    let latest_f = latest.1.to_f64();
    let (projected, still_required) = if years_left > 0.0 {
        let goal = match target.kind {
            TargetKind::Level => target.value.to_f64(),
            TargetKind::GrowthRate => baseline
                .1
                .to_f64()
                .map(|b| b * (1.0 + required).powf(target.period.years_since(baseline.0))),
        };
        (
            latest_f.map(|l| l * (1.0 + observed).powf(years_left)),
            match (latest_f, goal) {
                (Some(l), Some(g)) if l > 0.0 && g >= 0.0 => {
                    Some((g / l).powf(1.0 / years_left) - 1.0)
                }
                _ => None,
            },
        )
    } else {
        (latest_f, None)
    };
    let raw_ratio = if required == 0.0 {
        // The target equals the baseline: any move in the desired direction is enough.
        if dir * observed >= 0.0 {
            f64::INFINITY
        } else {
            -1.0
        }
    } else {
        dir * observed / required.abs()
    };
    Ok(Growth {
        since: baseline.0,
        observed,
        required,
        raw_ratio,
        ratio: raw_ratio.is_finite().then_some(raw_ratio),
        projected,
        still_required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> BigDecimal {
        s.parse().unwrap()
    }

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    fn pts(items: &[(&str, Option<&str>)]) -> Vec<Point> {
        items
            .iter()
            .map(|(per, v)| Point {
                period: p(per),
                value: v.map(d),
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn decumulates_year_to_date_values() {
        // MOFCOM-style YTD: Jan 10, Jan–Feb 25, Jan–Mar 45; next year restarts.
        let ytd = pts(&[
            ("2020-M01", Some("10")),
            ("2020-M02", Some("25")),
            ("2020-M03", Some("45")),
            ("2020-M05", Some("70")),
            ("2021-M01", Some("12")),
        ]);
        let per = decumulate(&ytd);
        let values: Vec<Option<BigDecimal>> = per.into_iter().map(|p| p.value).collect();
        // May cannot be de-cumulated: April is missing.
        assert_eq!(
            values,
            vec![
                Some(d("10")),
                Some(d("15")),
                Some(d("20")),
                None,
                Some(d("12"))
            ]
        );
    }

    #[test]
    fn rolls_up_by_each_rule_and_flags_partial_periods() {
        let monthly = pts(&[
            ("2020-M01", Some("1.5")),
            ("2020-M02", Some("2")),
            ("2020-M03", Some("3")),
            ("2020-M04", Some("4")),
            ("2020-M05", None),
            ("2020-M06", Some("6")),
        ]);
        let sums = roll_up(&monthly, Frequency::Quarterly, Aggregation::Sum);
        assert_eq!(sums.len(), 2);
        assert_eq!(sums[0].period, p("2020-Q1"));
        assert_eq!(sums[0].value, Some(d("6.5")));
        assert!(!sums[0].partial());
        // Q2 has a missing May: flagged, never summed.
        assert_eq!(
            (sums[1].value.clone(), sums[1].parts, sums[1].expected),
            (None, 2, 3)
        );
        assert!(sums[1].partial());
        let avg = roll_up(&monthly[..3], Frequency::Quarterly, Aggregation::Average);
        // (1.5 + 2 + 3) / 3 = 2.1666… rounded to 12 decimals.
        assert_eq!(avg[0].value, Some(d("2.166666666667")));
        let eop = roll_up(
            &monthly[..3],
            Frequency::Quarterly,
            Aggregation::EndOfPeriod,
        );
        assert_eq!(eop[0].value, Some(d("3")));
        // A year of quarters with one quarter only is partial.
        let annual = roll_up(&monthly[..3], Frequency::Annual, Aggregation::Sum);
        assert_eq!((annual[0].parts, annual[0].expected), (3, 12));
        assert_eq!(annual[0].value, None);
    }

    #[test]
    fn transforms_on_the_chongqing_outsourcing_figures() {
        // Offshore service-outsourcing executed value, 10^8 USD (Chongqing Commerce
        // Commission, 2021): 21.5, 20.6, 22.8 for 2018–2020.
        let s = pts(&[
            ("2018", Some("21.5")),
            ("2019", Some("20.6")),
            ("2020", Some("22.8")),
        ]);
        let change = transform(&s, Transform::Change);
        assert_eq!(change[0].1, Transformed::Missing);
        assert_eq!(change[1].1, Transformed::Exact(d("-0.9")));
        assert_eq!(change[2].1, Transformed::Exact(d("2.2")));
        // Annual series: a year earlier is the previous period.
        assert_eq!(
            transform(&s, Transform::ChangeYearAgo)[2].1,
            Transformed::Exact(d("2.2"))
        );
        let pct = transform(&s, Transform::PercentChange);
        // 20.6 / 21.5 − 1 = −4.186046… %; 22.8 / 20.6 − 1 = 10.679611… %
        let Transformed::Rate(r1) = pct[1].1 else {
            panic!()
        };
        let Transformed::Rate(r2) = pct[2].1 else {
            panic!()
        };
        assert!((r1 - (-4.186_046_511_627_9)).abs() < 1e-9, "{r1}");
        assert!((r2 - 10.679_611_650_485_4).abs() < 1e-9, "{r2}");
        // CAGR 2018 → 2020: (22.8 / 21.5)^(1/2) − 1 = 2.978887 %.
        let Transformed::Rate(g) = transform(&s, Transform::CompoundAnnualGrowth)[2].1 else {
            panic!()
        };
        assert!((g - 2.978_886_976).abs() < 1e-6, "{g}");
        assert!(close(
            cagr(&d("21.5"), &d("22.8"), 2.0).unwrap(),
            (22.8f64 / 21.5).sqrt() - 1.0
        ));
    }

    #[test]
    fn monthly_change_on_a_year_earlier() {
        let s = pts(&[
            ("2019-M07", Some("100")),
            ("2020-M06", Some("1")),
            ("2020-M07", Some("130")),
        ]);
        let t = transform(&s, Transform::ChangeYearAgo);
        assert_eq!(t[2].1, Transformed::Exact(d("30")));
        let Transformed::Rate(r) = transform(&s, Transform::PercentChangeYearAgo)[2].1 else {
            panic!()
        };
        assert!(close(r, 30.0));
    }

    #[test]
    fn cagr_edge_cases() {
        assert_eq!(
            cagr(&d("0"), &d("5"), 2.0),
            Err(CagrError::NonPositiveStart)
        );
        assert_eq!(
            cagr(&d("-1"), &d("5"), 2.0),
            Err(CagrError::NonPositiveStart)
        );
        assert_eq!(cagr(&d("1"), &d("-5"), 2.0), Err(CagrError::NegativeEnd));
        assert_eq!(cagr(&d("1"), &d("5"), 0.0), Err(CagrError::NoSpan));
        assert!(close(cagr(&d("100"), &d("121"), 2.0).unwrap(), 0.1));
        assert!(close(cagr(&d("1"), &d("0"), 1.0).unwrap(), -1.0));
    }

    fn level(value: &str, period: &str, direction: Direction) -> TargetFacts {
        TargetFacts {
            kind: TargetKind::Level,
            value: d(value),
            period: p(period),
            baseline_period: None,
            baseline_value: None,
            direction,
            shown: Shown::default(),
            // December 2019: before every target period of these tests ends.
            as_of_month: 2019 * 12 + 11,
        }
    }

    fn data(items: &[(&str, &str)]) -> Vec<(Period, BigDecimal)> {
        items.iter().map(|(a, b)| (p(a), d(b))).collect()
    }

    #[test]
    fn chongqing_target_of_30_billion() {
        // Target 30 × 10^9 USD in 2020; figures in 10^8 USD converted to base units.
        let target = TargetFacts {
            value: scale(&d("30"), 9),
            ..level("0", "2020", Direction::HigherIsBetter)
        };
        assert_eq!(target.value, d("30000000000"));
        // Baseline 2015 = 100 × 10^8, latest 2018 = 200 × 10^8 (illustrative figures).
        let series = data(&[("2015", "10000000000"), ("2018", "20000000000")]);
        let out = assess(&target, &series);
        // observed: 2^(1/3) − 1 = 25.992 %; required: 3^(1/5) − 1 = 24.573 %;
        // R = 0.25992 / 0.24573 = 1.0578 → on track.
        assert_eq!(out.status, ProgressStatus::OnTrack, "{out:?}");
        assert!(close(
            out.observed_cagr.unwrap(),
            2f64.powf(1.0 / 3.0) - 1.0
        ));
        assert!(close(out.required_cagr.unwrap(), 3f64.powf(0.2) - 1.0));
        let r = (2f64.powf(1.0 / 3.0) - 1.0) / (3f64.powf(0.2) - 1.0);
        assert!(close(out.ratio.unwrap(), r));
        // Attainment 20 / 30; projection 2e10 × 2^(2/3); still required (30/20)^(1/2) − 1.
        assert!(close(out.attainment.unwrap(), 2.0 / 3.0));
        assert!((out.projected.unwrap() - 2e10 * 2f64.powf(2.0 / 3.0)).abs() < 1.0);
        assert!(close(out.still_required_cagr.unwrap(), 1.5f64.sqrt() - 1.0));
    }

    #[test]
    fn statuses_by_ratio() {
        let t = level("200", "2020", Direction::HigherIsBetter);
        // required: 100 → 200 over 5 years = 14.87 %/year.
        let req = 2f64.powf(0.2) - 1.0;
        let case = |latest: &str| assess(&t, &data(&[("2015", "100"), ("2017", latest)]));
        // observed 100 → 130 over 2 years = 14.02 %: R = 0.943 → acceleration needed.
        let a = case("130");
        assert!(close(a.ratio.unwrap(), (1.3f64.sqrt() - 1.0) / req));
        assert_eq!(a.status, ProgressStatus::AccelerationNeeded);
        assert_eq!(case("132").status, ProgressStatus::OnTrack); // R = 1.0014
        assert_eq!(case("110").status, ProgressStatus::LimitedProgress); // R = 0.33
        assert_eq!(case("90").status, ProgressStatus::Deterioration); // R < 0
        assert_eq!(case("200").status, ProgressStatus::Achieved);
        assert_eq!(case("250").status, ProgressStatus::Achieved);
    }

    #[test]
    fn lower_is_better_and_missed_and_not_assessable() {
        // Reduce from 100 to 50 by 2020.
        let t = level("50", "2020", Direction::LowerIsBetter);
        let on = assess(&t, &data(&[("2015", "100"), ("2018", "65")]));
        assert_eq!(on.status, ProgressStatus::OnTrack, "{on:?}");
        let worse = assess(&t, &data(&[("2015", "100"), ("2018", "110")]));
        assert_eq!(worse.status, ProgressStatus::Deterioration);
        // The 2020 figure is known and unmet: missed, whatever the trend.
        let missed = assess(&t, &data(&[("2015", "100"), ("2020", "60")]));
        assert_eq!(missed.status, ProgressStatus::Missed);
        // One data point only.
        let one = assess(&t, &data(&[("2018", "70")]));
        assert_eq!(one.status, ProgressStatus::NotAssessable);
        assert!(one.reason.contains("one data point"), "{}", one.reason);
        // No data.
        assert_eq!(assess(&t, &[]).status, ProgressStatus::NotAssessable);
        // A zero baseline.
        let zero = assess(
            &level("10", "2020", Direction::HigherIsBetter),
            &data(&[("2015", "0"), ("2018", "5")]),
        );
        assert_eq!(zero.status, ProgressStatus::NotAssessable);
        assert!(
            zero.reason.contains("zero or a negative"),
            "{}",
            zero.reason
        );
        // A negative baseline.
        let neg = assess(
            &level("10", "2020", Direction::HigherIsBetter),
            &data(&[("2015", "-3"), ("2018", "5")]),
        );
        assert_eq!(neg.status, ProgressStatus::NotAssessable);
        // The target's own baseline period has no value.
        let mut fixed = level("10", "2020", Direction::HigherIsBetter);
        fixed.baseline_period = Some(p("2014"));
        let missing = assess(&fixed, &data(&[("2015", "3"), ("2018", "5")]));
        assert!(
            missing.reason.contains("baseline period 2014"),
            "{}",
            missing.reason
        );
    }

    #[test]
    fn a_revision_can_change_the_status() {
        let t = level("200", "2020", Direction::HigherIsBetter);
        let before = assess(&t, &data(&[("2015", "100"), ("2017", "132")]));
        let after = assess(&t, &data(&[("2015", "100"), ("2017", "128")]));
        assert_eq!(before.status, ProgressStatus::OnTrack);
        assert_eq!(after.status, ProgressStatus::AccelerationNeeded);
    }

    #[test]
    fn growth_rate_targets() {
        // Grow 10 % a year from 2015 to 2020.
        let t = TargetFacts {
            kind: TargetKind::GrowthRate,
            value: d("10"),
            period: p("2020"),
            baseline_period: Some(p("2015")),
            baseline_value: None,
            direction: Direction::HigherIsBetter,
            ..level("0", "2020", Direction::HigherIsBetter)
        };
        // 100 → 121 over 2 years: exactly 10 %: R = 1 → on track.
        let on = assess(&t, &data(&[("2015", "100"), ("2017", "121")]));
        assert_eq!(on.status, ProgressStatus::OnTrack);
        assert!(close(on.ratio.unwrap(), 1.0));
        assert!(close(on.attainment.unwrap(), 1.0));
        // Reached the target period with 5 %/year: missed.
        let low = assess(&t, &data(&[("2015", "100"), ("2020", "127.62815625")]));
        assert_eq!(low.status, ProgressStatus::Missed);
        let high = assess(&t, &data(&[("2015", "100"), ("2020", "170")]));
        assert_eq!(high.status, ProgressStatus::Achieved);
    }

    #[test]
    fn partial_years_are_not_compared_with_annual_targets() {
        // The caller passes complete periods only: a roll-up leaves 2021's partial year
        // without a value, so the assessment stops at 2020.
        let monthly: Vec<Point> = (1..=12)
            .map(|m| Point {
                period: Period::new(2020, Frequency::Monthly, m).unwrap(),
                value: Some(d("10")),
            })
            .chain((1..=6).map(|m| Point {
                period: Period::new(2021, Frequency::Monthly, m).unwrap(),
                value: Some(d("50")),
            }))
            .collect();
        let annual = roll_up(&monthly, Frequency::Annual, Aggregation::Sum);
        let complete: Vec<(Period, BigDecimal)> = annual
            .into_iter()
            .filter_map(|r| r.value.map(|v| (r.period, v)))
            .collect();
        assert_eq!(complete, vec![(p("2020"), d("120"))]);
        let out = assess(&level("200", "2022", Direction::HigherIsBetter), &complete);
        assert_eq!(out.latest, Some((p("2020"), d("120"))));
        assert_eq!(out.status, ProgressStatus::NotAssessable);
    }

    #[test]
    fn a_year_to_date_period_needs_only_the_releases_at_its_ends() {
        // No January release; January–February 30, –March 50, –April 65, –June 100.
        let ytd = pts(&[
            ("2021-M02", Some("30")),
            ("2021-M03", Some("50")),
            ("2021-M04", Some("65")),
            ("2021-M06", Some("100")),
        ]);
        let q = roll_up_year_to_date(&ytd, Frequency::Quarterly);
        // Q1 = the March release, 50, complete; Q2 = 100 − 50 = 50 although May is unknown.
        assert_eq!(q.len(), 2);
        assert_eq!(
            (q[0].value.clone(), q[0].parts, q[0].expected),
            (Some(d("50")), 3, 3)
        );
        assert_eq!(
            (q[1].value.clone(), q[1].parts, q[1].expected),
            (Some(d("50")), 3, 3)
        );
        let s = roll_up_year_to_date(&ytd, Frequency::HalfYearly);
        assert_eq!(s[0].value, Some(d("100")));
        // Months: only March (50 − 30 = 20) and April (65 − 50 = 15) are known alone.
        let m = roll_up_year_to_date(&ytd, Frequency::Monthly);
        let got: Vec<_> = m.iter().map(|r| r.value.clone()).collect();
        assert_eq!(got, vec![None, Some(d("20")), Some(d("15")), None]);
        // Without the June release, Q2 is partial: only April is known alone (1 of 3).
        let q = roll_up_year_to_date(&ytd[..3], Frequency::Quarterly);
        assert_eq!(
            (q[1].value.clone(), q[1].parts, q[1].expected),
            (None, 1, 3)
        );
    }

    #[test]
    fn cumulates_per_period_values_from_january() {
        let m = pts(&[
            ("2020-M01", Some("10")),
            ("2020-M02", Some("15")),
            ("2020-M03", Some("20")),
            ("2020-M05", Some("5")),
            ("2021-M01", Some("12")),
        ]);
        let c = cumulate(&m, Frequency::Monthly);
        let got: Vec<_> = c
            .iter()
            .map(|r| (r.value.clone(), r.parts, r.expected))
            .collect();
        // 10, 25, 45; May lacks April: 4 of 5 known, no value; 2021 starts again at 12.
        assert_eq!(
            got,
            vec![
                (Some(d("10")), 1, 1),
                (Some(d("25")), 2, 2),
                (Some(d("45")), 3, 3),
                (None, 4, 5),
                (Some(d("12")), 1, 1),
            ]
        );
        // Quarterly: Q1 = January–March 45; Q2 (no June yet) incomplete.
        let q = cumulate(&m, Frequency::Quarterly);
        assert_eq!(
            (q[0].period, q[0].value.clone()),
            (p("2020-Q1"), Some(d("45")))
        );
        assert_eq!((q[1].value.clone(), q[1].expected), (None, 6));
        // Releases as published: a quarter is its last month's release.
        let ytd = pts(&[
            ("2020-M02", Some("30")),
            ("2020-M03", Some("50")),
            ("2020-M04", Some("9")),
        ]);
        let r = cumulative_releases(&ytd, Frequency::Quarterly);
        assert_eq!(
            (r[0].value.clone(), r[1].value.clone()),
            (Some(d("50")), None)
        );
    }

    #[test]
    fn an_ended_target_period_without_its_figure_gives_no_verdict() {
        // 30 × 10^9 USD in 2020, figures to 2019, assessed in December 2026.
        let target = TargetFacts {
            shown: Shown {
                unit: "USD".into(),
                multiplier: 9,
            },
            as_of_month: 2026 * 12 + 11,
            ..level("30000000000", "2020", Direction::HigherIsBetter)
        };
        let series = data(&[("2015", "10000000000"), ("2019", "12000000000")]);
        let out = assess(&target, &series);
        assert_eq!(out.status, ProgressStatus::NotAssessable, "{out:?}");
        assert!(
            out.reason.contains("2020 has ended without a figure")
                && out.reason.contains("2019 (12 × 10^9 USD)"),
            "{}",
            out.reason
        );
        // The growth figures stay: observed 1.2^(1/4) − 1, required 3^(1/5) − 1.
        assert!(close(out.observed_cagr.unwrap(), 1.2f64.powf(0.25) - 1.0));
        assert!(close(out.required_cagr.unwrap(), 3f64.powf(0.2) - 1.0));
        // In December 2020 the period has not ended: judged by its path (R < 0.60).
        let during = assess(
            &TargetFacts {
                as_of_month: 2020 * 12 + 11,
                ..target.clone()
            },
            &series,
        );
        assert_eq!(during.status, ProgressStatus::LimitedProgress);
        // Once the 2020 figure is known, the verdict: 31 meets 30.
        let done = assess(
            &target,
            &data(&[("2015", "10000000000"), ("2020", "31000000000")]),
        );
        assert_eq!(done.status, ProgressStatus::Achieved);
        assert_eq!(
            done.reason,
            "the 2020 value 31 × 10^9 USD meets the target 30 × 10^9 USD"
        );
    }

    #[test]
    fn values_are_shown_in_the_indicator_units() {
        let usd8 = Shown {
            unit: "USD".into(),
            multiplier: 8,
        };
        assert_eq!(usd8.show(&d("2280000000")), "22.8 × 10^8 USD");
        let pct = Shown {
            unit: "%".into(),
            multiplier: 0,
        };
        assert_eq!(pct.show(&d("5.20")), "5.2 %");
        assert_eq!(Shown::default().show(&d("1200")), "1200");
    }
}
