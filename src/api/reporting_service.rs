//! `tradewatch.v1.ReportingService`: reads one snapshot, hands the figures to the pure
//! maths of `domain::reporting`, and encodes the answer.

use std::collections::{BTreeMap, HashMap};

use bigdecimal::{BigDecimal, Zero};
use chrono::{DateTime, Datelike, Utc};
use tonic::{Request, Response, Status};

use super::convert::{
    frequency_to_proto, initiative_to_proto, optional_time, program_to_proto, timestamp,
};
use super::{Context, finish};
use crate::domain::indicator::{Aggregation, Flow};
use crate::domain::names::{IndicatorName, ProgramName, TargetName};
use crate::domain::program::TargetKind;
use crate::domain::reporting::{
    self, Conversion, Point, Progress, ProgressStatus, RateUsed, Rolled, TargetFacts, Transform,
    Transformed, scale,
};
use crate::domain::vintages::{self, Reach};
use crate::domain::{Frequency, Invalid, Period, Violations, codes};
use crate::error::Error;
use crate::proto::v1 as pb;
use crate::proto::v1::reporting_service_server::ReportingService;
use crate::store::indicators::{self, Indicator};
use crate::store::reports::Snapshot;
use crate::store::targets::{self, Target};
use crate::store::{initiatives, programs};

/// Serves reports.
#[derive(Debug, Clone)]
pub struct ReportingApi {
    ctx: Context,
}

impl ReportingApi {
    /// A service over `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

fn frequency_from_proto(value: i32) -> Result<Option<Frequency>, Invalid> {
    Ok(match pb::Frequency::try_from(value) {
        Ok(pb::Frequency::Unspecified) => None,
        Ok(pb::Frequency::Annual) => Some(Frequency::Annual),
        Ok(pb::Frequency::HalfYearly) => Some(Frequency::HalfYearly),
        Ok(pb::Frequency::Quarterly) => Some(Frequency::Quarterly),
        Ok(pb::Frequency::Monthly) => Some(Frequency::Monthly),
        Err(_) => {
            return Err(Invalid::new(
                "INVALID_ENUM",
                format!("{value} is not a known frequency"),
            ));
        }
    })
}

fn transform_from_proto(value: i32) -> Result<Transform, Invalid> {
    Ok(match pb::Transform::try_from(value) {
        Ok(pb::Transform::Unspecified | pb::Transform::Level) => Transform::Level,
        Ok(pb::Transform::Change) => Transform::Change,
        Ok(pb::Transform::ChangeYearAgo) => Transform::ChangeYearAgo,
        Ok(pb::Transform::PercentChange) => Transform::PercentChange,
        Ok(pb::Transform::PercentChangeYearAgo) => Transform::PercentChangeYearAgo,
        Ok(pb::Transform::CompoundAnnualGrowth) => Transform::CompoundAnnualGrowth,
        // The same transforms on the cumulative view (see `prepare_cumulative`).
        Ok(pb::Transform::YearToDate) => Transform::Level,
        Ok(pb::Transform::YearToDateChangeYearAgo) => Transform::ChangeYearAgo,
        Ok(pb::Transform::YearToDatePercentChangeYearAgo) => Transform::PercentChangeYearAgo,
        Err(_) => {
            return Err(Invalid::new(
                "INVALID_ENUM",
                format!("{value} is not a known transform"),
            ));
        }
    })
}

/// Prepares an indicator's raw points for reporting at frequency `to`: year-to-date
/// figures become per-period ones (a period from the releases at its end and at the
/// end of the period before it), others combine by the indicator's rule.
fn prepare(points: &[Point], indicator: &Indicator, to: Frequency) -> Vec<Rolled> {
    if indicator.spec.year_to_date {
        return reporting::roll_up_year_to_date(points, to);
    }
    if to == indicator.spec.frequency {
        points
            .iter()
            .map(|p| Rolled {
                period: p.period,
                value: p.value.clone(),
                parts: u32::from(p.value.is_some()),
                expected: 1,
            })
            .collect()
    } else {
        reporting::roll_up(points, to, indicator.spec.aggregation)
    }
}

/// The cumulative "January–N" view of an indicator's raw points at frequency `to`: a
/// year-to-date indicator's releases as published, another's values summed from
/// January.
fn prepare_cumulative(points: &[Point], indicator: &Indicator, to: Frequency) -> Vec<Rolled> {
    if indicator.spec.year_to_date {
        reporting::cumulative_releases(points, to)
    } else {
        reporting::cumulate(points, to)
    }
}

/// Checks a request's currency conversion: the currency and the rate indicator's name.
fn check_conversion(
    v: &mut Violations,
    c: Option<&pb::CurrencyConversion>,
) -> Option<Option<(String, IndicatorName)>> {
    let Some(c) = c else {
        return Some(None);
    };
    let currency = if codes::is_iso4217(&c.currency) {
        Some(c.currency.clone())
    } else {
        v.push(
            "conversion.currency",
            "NOT_A_CURRENCY",
            format!(
                "{:?} is not an ISO 4217 currency code (such as USD or CNY)",
                crate::domain::names::truncate(&c.currency)
            ),
        );
        None
    };
    let rate = v.check(
        "conversion.exchange_rate",
        IndicatorName::parse(&c.exchange_rate),
    );
    Some(Some((currency?, rate?)))
}

/// Reads the exchange-rate indicator of a conversion into `currency` and its rates.
async fn load_conversion(
    snap: &mut Snapshot,
    currency: &str,
    rate: &IndicatorName,
) -> Result<Conversion, Status> {
    let mut found = indicators::get_many(snap.conn(), &[rate.0.as_str()]).await?;
    let (key, ind) = found
        .pop()
        .ok_or_else(|| Error::NotFound(rate.to_string()))?;
    let mut v = Violations::new();
    let pair = codes::currency_pair(&ind.spec.unit);
    match pair {
        None => v.push(
            "conversion.exchange_rate",
            "NOT_AN_EXCHANGE_RATE",
            format!(
                "{rate} is in {}, not an exchange rate: its unit must be a currency pair such as CNY/USD",
                ind.spec.unit
            ),
        ),
        Some((price, base)) if price != currency && base != currency => v.push(
            "conversion.currency",
            "EXCHANGE_RATE_MISMATCH",
            format!("{rate} is {}: it converts {price} and {base}, not {currency}", ind.spec.unit),
        ),
        Some(_) => {}
    }
    let pair = finish(v, || pair)?;
    let mut points = snap.points(&[key], None, None).await?;
    Ok(Conversion::new(
        currency,
        pair,
        &points.remove(&key).unwrap_or_default(),
        ind.spec.unit_multiplier,
        ind.spec.aggregation,
    ))
}

fn rate_used(r: &RateUsed) -> pb::ExchangeRateUsed {
    pb::ExchangeRateUsed {
        period: r.period.to_string(),
        rate: text(&r.rate),
    }
}

fn text(d: &BigDecimal) -> String {
    d.normalized().to_plain_string()
}

/// Rounds a derived float for display as a decimal string.
fn float_text(f: f64) -> String {
    if !f.is_finite() {
        return String::new();
    }
    let s = format!("{f:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Vintages per page when a request says 0.
const DEFAULT_VINTAGES_PAGE: i64 = 500;
/// Most vintages per page.
const MAX_VINTAGES_PAGE: i64 = 10_000;

/// An optional period of a request: `Some(None)` when empty, `None` when invalid.
fn optional_period(v: &mut Violations, field: &str, text: &str) -> Option<Option<Period>> {
    if text.is_empty() {
        Some(None)
    } else {
        v.check(field, Period::parse(text)).map(Some)
    }
}

/// The transform a response names: the request's, level when unspecified.
fn wire_transform(transform: i32) -> i32 {
    if transform == 0 {
        pb::Transform::Level as i32
    } else {
        transform
    }
}

/// A transformed value as `(value, rate)` on the wire.
fn wire_value(value: Transformed) -> (String, Option<f64>) {
    match value {
        Transformed::Exact(d) => (text(&d), None),
        Transformed::Rate(f) => (String::new(), Some(f)),
        Transformed::Missing => (String::new(), None),
    }
}

/// The inputs of a series report (QuerySeries, QuerySeriesVintages), checked.
struct SeriesQuery {
    name: IndicatorName,
    start: Option<Period>,
    end: Option<Period>,
    to: Option<Frequency>,
    /// The transform, on the cumulative view when `cumulative`.
    transform: Transform,
    /// A year-to-date transform: the January-to-period view.
    cumulative: bool,
    /// The currency and the exchange-rate indicator of a conversion.
    conversion: Option<(String, IndicatorName)>,
    when: Option<DateTime<Utc>>,
}

impl SeriesQuery {
    /// Checks the fields that need no database: INVALID_ARGUMENT naming each bad one.
    fn parse(
        indicator: &str,
        start_period: &str,
        end_period: &str,
        frequency: i32,
        transform: i32,
        as_of: &Option<prost_types::Timestamp>,
        conversion: Option<&pb::CurrencyConversion>,
    ) -> Result<Self, Status> {
        let cumulative = matches!(
            pb::Transform::try_from(transform),
            Ok(pb::Transform::YearToDate
                | pb::Transform::YearToDateChangeYearAgo
                | pb::Transform::YearToDatePercentChangeYearAgo)
        );
        let mut v = Violations::new();
        let name = v.check("indicator", IndicatorName::parse(indicator));
        let start = optional_period(&mut v, "start_period", start_period);
        let end = optional_period(&mut v, "end_period", end_period);
        let to = v.check("frequency", frequency_from_proto(frequency));
        let t = v.check("transform", transform_from_proto(transform));
        let when = optional_time(&mut v, "as_of", as_of);
        let conversion = check_conversion(&mut v, conversion);
        if cumulative && matches!(conversion, Some(Some(_))) {
            v.push(
                "conversion",
                "CONVERSION_OF_YEAR_TO_DATE",
                "a year-to-date view cannot be converted at one period's rate; ask for the \
                 converted per-period series instead",
            );
        }
        let (name, start, end, to, transform, when, conversion) = finish(v, || {
            Some((name?, start?, end?, to?, t?, when?, conversion?))
        })?;
        Ok(Self {
            name,
            start,
            end,
            to,
            transform,
            cumulative,
            conversion,
            when,
        })
    }

    /// Reads the indicator (NOT_FOUND if there is none) and checks the fields that
    /// depend on it; returns its key, itself and the output frequency.
    async fn indicator(&self, snap: &mut Snapshot) -> Result<(i32, Indicator, Frequency), Status> {
        let name = &self.name;
        let mut found = indicators::get_many(snap.conn(), &[name.0.as_str()]).await?;
        let (key, ind) = found
            .pop()
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let to = self.to.unwrap_or(ind.spec.frequency);
        let mut v = Violations::new();
        if to > ind.spec.frequency {
            v.push(
                "frequency",
                "FINER_THAN_INDICATOR",
                format!(
                    "{name} is {}; it cannot be reported {}",
                    ind.spec.frequency.describe(),
                    to.describe()
                ),
            );
        }
        for (field, p) in [("start_period", self.start), ("end_period", self.end)] {
            if let Some(p) = p.filter(|p| p.frequency() != to) {
                v.push(
                    field,
                    "PERIOD_FREQUENCY_MISMATCH",
                    format!("{p} is not {} like the output", to.describe()),
                );
            }
        }
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e.start_key() < s.start_key()
        {
            v.push("end_period", "BEFORE_START", format!("{e} is before {s}"));
        }
        if self.cumulative && ind.spec.aggregation != Aggregation::Sum {
            v.push(
                "transform",
                "CUMULATIVE_NEEDS_SUM",
                format!(
                    "{name} is not a sum (AGGREGATION_SUM): its values do not accumulate from \
                     January, so it has no year-to-date transform"
                ),
            );
        }
        finish(v, || Some(()))?;
        Ok((key, ind, to))
    }

    /// The period texts of the indicator's figures to read: from a year before the
    /// range (for year-ago transforms), from the start of that year (for year-to-date
    /// figures), to the end of the range.
    fn window(&self, ind: &Indicator) -> (Option<String>, Option<String>) {
        let from = self
            .start
            .and_then(|s| Period::new(s.year() - 1, Frequency::Annual, 1))
            .map(|y| {
                Period::new(y.year(), ind.spec.frequency, 1)
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            });
        let to = self.end.and_then(|e| {
            let last_month = e.last_month();
            let months = 12 / ind.spec.frequency.periods_per_year();
            Period::new(e.year(), ind.spec.frequency, (last_month - 1) / months + 1)
                .map(|p| p.to_string())
        });
        (from, to)
    }

    /// True when the output period lies in the requested range.
    fn keeps(&self, period: Period) -> bool {
        self.start
            .is_none_or(|s| period.start_key() >= s.start_key())
            && self.end.is_none_or(|e| period.start_key() <= e.end_key())
    }
}

/// One output period of a series: its roll-up, its transformed value and, with a
/// currency conversion, the rate its value used.
struct Answer {
    rolled: Rolled,
    value: Transformed,
    rate: Option<RateUsed>,
}

/// A series' output periods with their transformed values, from an indicator's raw
/// points: de-cumulated and rolled up to `to` ([`prepare`]) or cumulated from January
/// ([`prepare_cumulative`]), converted into another currency at each period's rate
/// when `conversion` is given, then transformed. CAGR is measured from the first
/// period of the requested range, the periods before it having none. QuerySeries and
/// every vintage of QuerySeriesVintages answer by it.
fn series_answers(
    points: &[Point],
    indicator: &Indicator,
    to: Frequency,
    q: &SeriesQuery,
    conversion: Option<&Conversion>,
) -> Vec<Answer> {
    let (t, start) = (q.transform, q.start);
    let mut rolled = if q.cumulative {
        prepare_cumulative(points, indicator, to)
    } else {
        prepare(points, indicator, to)
    };
    let mut rates: Vec<Option<RateUsed>> = vec![None; rolled.len()];
    if let Some(c) = conversion {
        for (r, used) in rolled.iter_mut().zip(rates.iter_mut()) {
            if let Some(v) = r.value.take()
                && let Some((converted, rate)) = c.convert(&indicator.spec.unit, &v, r.period)
            {
                r.value = Some(converted);
                *used = Some(rate);
            }
        }
    }
    let series: Vec<Point> = rolled
        .iter()
        .map(|r| Point {
            period: r.period,
            value: r.value.clone(),
        })
        .collect();
    let transformed = if t == Transform::CompoundAnnualGrowth {
        let before = |p: &Point| start.is_some_and(|s| p.period.start_key() < s.start_key());
        let from_start: Vec<Point> = series.iter().filter(|p| !before(p)).cloned().collect();
        let mut all: Vec<(Period, Transformed)> = series
            .iter()
            .filter(|p| before(p))
            .map(|p| (p.period, Transformed::Missing))
            .collect();
        all.extend(reporting::transform(&from_start, t));
        all
    } else {
        reporting::transform(&series, t)
    };
    rolled
        .into_iter()
        .zip(rates)
        .zip(transformed)
        .map(|((rolled, rate), (_, value))| Answer {
            rolled,
            value,
            rate,
        })
        .collect()
}

/// Assesses a target from its indicator's points.
fn progress(
    target: &Target,
    indicator: &Indicator,
    points: &[Point],
    as_of: DateTime<Utc>,
    conversion: Option<&Conversion>,
) -> pb::TargetProgress {
    let s = &target.spec;
    let freq = s.target_period.frequency();
    let unit = indicator.spec.unit.as_str();
    // With a conversion: whether this indicator's values need it, or why they cannot.
    let convert = conversion.map(|c| (c, c.applies(unit)));
    let mut unconvertible: Option<String> = match &convert {
        Some((c, Err(why))) => Some(format!("no conversion into {}: {why}", c.to)),
        _ => None,
    };
    let converter = match convert {
        Some((c, Ok(true))) => Some(c),
        _ => None,
    };
    // Each value at its own period's rate; a period without one is left out.
    let data: Vec<(Period, BigDecimal)> = prepare(points, indicator, freq)
        .into_iter()
        .filter_map(|r| {
            let v = r.value?;
            let v = match converter {
                Some(c) => c.convert(unit, &v, r.period)?.0,
                None => v,
            };
            Some((r.period, scale(&v, indicator.spec.unit_multiplier)))
        })
        .collect();
    let parse = |d: &crate::domain::Decimal| d.as_str().parse::<BigDecimal>().unwrap_or_default();
    // A target's own figures (target and baseline values) at their periods' rates.
    let mut own = |value: BigDecimal, period: Period, what: &str| -> BigDecimal {
        let Some(c) = converter else {
            return value;
        };
        match c.convert(unit, &value, period) {
            Some((v, _)) => v,
            None => {
                unconvertible.get_or_insert_with(|| {
                    format!(
                        "no exchange rate into {} for the {what} period {period}",
                        c.to
                    )
                });
                value
            }
        }
    };
    let level = s.kind == TargetKind::Level;
    // Values are shown in the target's multiplier (growth targets: the indicator's).
    let shown = if level {
        s.unit_multiplier
    } else {
        indicator.spec.unit_multiplier
    };
    let target_value = if level {
        own(parse(&s.target_value), s.target_period, "target")
    } else {
        parse(&s.target_value)
    };
    // A level target's baseline is in the target's multiplier; a growth target's (whose
    // own multiplier is 0) in the indicator's, like the values shown.
    let baseline_value = match (&s.baseline_value, s.baseline_period) {
        (Some(b), Some(p)) => Some(scale(&own(parse(b), p, "baseline"), shown)),
        (Some(b), None) => Some(scale(&parse(b), shown)),
        _ => None,
    };
    // Converted only when every figure could be: otherwise nothing is assessed, and the
    // target's own figures are shown as they are, in the indicator's currency.
    let converter = converter.filter(|_| unconvertible.is_none());
    let shown_unit = converter.map_or(unit, |c| c.to.as_str()).to_owned();
    let facts = TargetFacts {
        kind: s.kind,
        value: if level {
            scale(&target_value, s.unit_multiplier)
        } else {
            target_value.clone()
        },
        period: s.target_period,
        baseline_period: s.baseline_period,
        baseline_value,
        direction: s.direction,
        shown: reporting::Shown {
            unit: shown_unit.clone(),
            multiplier: shown,
        },
        as_of_month: i64::from(as_of.year()) * 12 + i64::from(as_of.month0()),
    };
    let out = match unconvertible {
        Some(why) => Progress::not_assessable(why),
        None => reporting::assess(&facts, &data),
    };
    let show = |v: &BigDecimal| text(&scale(v, -shown));
    let status = match out.status {
        ProgressStatus::Achieved => pb::target_progress::Status::Achieved,
        ProgressStatus::OnTrack => pb::target_progress::Status::OnTrack,
        ProgressStatus::AccelerationNeeded => pb::target_progress::Status::AccelerationNeeded,
        ProgressStatus::LimitedProgress => pb::target_progress::Status::LimitedProgress,
        ProgressStatus::Deterioration => pb::target_progress::Status::Deterioration,
        ProgressStatus::Missed => pb::target_progress::Status::Missed,
        ProgressStatus::NotAssessable => pb::target_progress::Status::NotAssessable,
    };
    pb::TargetProgress {
        target: target.name.to_string(),
        title: s.title.clone(),
        indicator: format!("indicators/{}", s.indicator),
        status: status as i32,
        reason: out.reason.clone(),
        unit: shown_unit,
        unit_multiplier: shown,
        baseline_period: out
            .baseline
            .as_ref()
            .map(|b| b.0.to_string())
            .unwrap_or_default(),
        baseline_value: out
            .baseline
            .as_ref()
            .map(|b| show(&b.1))
            .unwrap_or_default(),
        latest_period: out
            .latest
            .as_ref()
            .map(|l| l.0.to_string())
            .unwrap_or_default(),
        latest_value: out.latest.as_ref().map(|l| show(&l.1)).unwrap_or_default(),
        target_period: s.target_period.to_string(),
        target_value: if converter.is_some() {
            text(&target_value)
        } else {
            s.target_value.to_string()
        },
        attainment: out.attainment,
        observed_cagr: out.observed_cagr,
        required_cagr: out.required_cagr,
        ratio: out.ratio,
        projected_value: out
            .projected
            .map(|p| float_text(p / 10f64.powi(shown)))
            .unwrap_or_default(),
        still_required_cagr: out.still_required_cagr,
        as_of: Some(timestamp(as_of)),
        converted_from: if converter.is_some() {
            unit.to_owned()
        } else {
            String::new()
        },
    }
}

/// Reads the indicators of `targets` and their points, then assesses each target.
async fn assess_all(
    snap: &mut Snapshot,
    targets: &[Target],
    conversion: Option<&Conversion>,
) -> Result<Vec<pb::TargetProgress>, Error> {
    let ids: Vec<&str> = targets.iter().map(|t| t.spec.indicator.as_str()).collect();
    let inds = indicators::get_many(snap.conn(), &ids).await?;
    let keys: Vec<i32> = inds.iter().map(|(k, _)| *k).collect();
    let points = snap.points(&keys, None, None).await?;
    let by_id: HashMap<&str, &(i32, Indicator)> =
        inds.iter().map(|i| (i.1.id.as_str(), i)).collect();
    let empty = Vec::new();
    targets
        .iter()
        .map(|t| {
            let (key, ind) = by_id
                .get(t.spec.indicator.as_str())
                .copied()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("target without indicator")))?;
            Ok(progress(
                t,
                ind,
                points.get(key).unwrap_or(&empty),
                snap.effective,
                conversion,
            ))
        })
        .collect()
}

/// The latest value of an indicator with its change on a year earlier.
fn latest(indicator: &Indicator, points: &[Point]) -> pb::IndicatorLatest {
    // A year-to-date indicator as its source publishes it: the latest cumulative release.
    let cumulative = indicator.spec.year_to_date;
    let series = if cumulative {
        prepare_cumulative(points, indicator, indicator.spec.frequency)
    } else {
        prepare(points, indicator, indicator.spec.frequency)
    };
    let series: Vec<Point> = series
        .into_iter()
        .map(|r| Point {
            period: r.period,
            value: r.value,
        })
        .collect();
    let mut out = pb::IndicatorLatest {
        indicator: indicator.name().to_string(),
        title: indicator.spec.title.clone(),
        unit: indicator.spec.unit.clone(),
        unit_multiplier: indicator.spec.unit_multiplier,
        cumulative,
        ..Default::default()
    };
    if let Some(last) = series.iter().rposition(|p| p.value.is_some()) {
        // Only the last value and the one a year before it matter: transform that tail,
        // not the whole history.
        let year_ago = series[last].period.offset(-i64::from(
            series[last].period.frequency().periods_per_year(),
        ));
        let first = year_ago
            .and_then(|y| {
                series
                    .iter()
                    .position(|p| p.period.ordinal() >= y.ordinal())
            })
            .unwrap_or(last);
        let series = &series[first..=last];
        let last = series.len() - 1;
        let p = &series[last];
        out.period = p.period.to_string();
        out.value = p.value.as_ref().map(text).unwrap_or_default();
        if let Some((_, Transformed::Exact(d))) =
            reporting::transform(series, Transform::ChangeYearAgo).get(last)
        {
            out.change_year_ago = text(d);
        }
        if let Some((_, Transformed::Rate(r))) =
            reporting::transform(series, Transform::PercentChangeYearAgo).get(last)
        {
            out.percent_change_year_ago = Some(*r);
        }
    }
    out
}

#[tonic::async_trait]
impl ReportingService for ReportingApi {
    async fn query_series(
        &self,
        request: Request<pb::QuerySeriesRequest>,
    ) -> Result<Response<pb::QuerySeriesResponse>, Status> {
        let pb::QuerySeriesRequest {
            indicator,
            start_period,
            end_period,
            frequency,
            transform,
            as_of,
            conversion,
        } = request.into_inner();
        let q = SeriesQuery::parse(
            &indicator,
            &start_period,
            &end_period,
            frequency,
            transform,
            &as_of,
            conversion.as_ref(),
        )?;
        let mut snap = self.ctx.snapshot(q.when).await?;
        let (key, ind, to) = q.indicator(&mut snap).await?;
        let (from, to_text) = q.window(&ind);
        let mut points = snap
            .points(&[key], from.as_deref(), to_text.as_deref())
            .await?;
        let points = points.remove(&key).unwrap_or_default();
        let mut unit = ind.spec.unit.clone();
        let mut converted_from = String::new();
        let conversion = match &q.conversion {
            Some((currency, rate)) => {
                let c = load_conversion(&mut snap, currency, rate).await?;
                let needed = c.applies(&ind.spec.unit).map_err(|why| {
                    Error::invalid(
                        "conversion.currency",
                        "EXCHANGE_RATE_MISMATCH",
                        format!("{} is in {}: {why}", q.name, ind.spec.unit),
                    )
                })?;
                if needed {
                    converted_from = std::mem::replace(&mut unit, c.to.clone());
                }
                needed.then_some(c)
            }
            None => None,
        };
        let points = series_answers(&points, &ind, to, &q, conversion.as_ref())
            .into_iter()
            .filter(|a| q.keeps(a.rolled.period))
            .map(|a| {
                let (value, rate) = wire_value(a.value);
                let r = a.rolled;
                pb::SeriesPoint {
                    period: r.period.to_string(),
                    value,
                    rate,
                    partial: r.partial(),
                    parts: r.parts as i32,
                    expected_parts: r.expected as i32,
                    exchange_rate: a.rate.as_ref().map(rate_used),
                }
            })
            .collect();
        Ok(Response::new(pb::QuerySeriesResponse {
            indicator: q.name.to_string(),
            frequency: frequency_to_proto(to) as i32,
            transform: wire_transform(transform),
            unit,
            unit_multiplier: ind.spec.unit_multiplier,
            points,
            as_of: Some(timestamp(snap.effective)),
            converted_from,
        }))
    }

    async fn query_series_vintages(
        &self,
        request: Request<pb::QuerySeriesVintagesRequest>,
    ) -> Result<Response<pb::QuerySeriesVintagesResponse>, Status> {
        let pb::QuerySeriesVintagesRequest {
            indicator,
            start_period,
            end_period,
            frequency,
            transform,
            as_of,
        } = request.into_inner();
        let q = SeriesQuery::parse(
            &indicator,
            &start_period,
            &end_period,
            frequency,
            transform,
            &as_of,
            None,
        )?;
        let mut snap = self.ctx.snapshot(q.when).await?;
        let (key, ind, to) = q.indicator(&mut snap).await?;
        let (from, to_text) = q.window(&ind);
        let versions = snap
            .versions(key, from.as_deref(), to_text.as_deref())
            .await?;
        let reach = Reach {
            to,
            // A change reaches the next period in a year-to-date indicator, and every
            // later period of its year in the cumulative view.
            year_to_date: ind.spec.year_to_date,
            to_year_end: q.cumulative,
            lag: match q.transform {
                Transform::Level => Some(0),
                Transform::Change | Transform::PercentChange => Some(1),
                Transform::ChangeYearAgo | Transform::PercentChangeYearAgo => {
                    Some(i64::from(to.periods_per_year()))
                }
                Transform::CompoundAnnualGrowth => None,
            },
        };
        let replayed = vintages::replay(
            &versions,
            reach,
            |points| {
                series_answers(points, &ind, to, &q, None)
                    .into_iter()
                    .map(|a| (a.rolled, a.value))
                    .collect()
            },
            |p| q.keeps(p),
        );
        let points = replayed
            .points
            .into_iter()
            .map(|p| {
                let (first, first_time) = match p.first {
                    Some((v, t)) => (v, Some(timestamp(t))),
                    None => (Transformed::Missing, None),
                };
                let (revision, revision_rate) = match (&first, &p.latest.value) {
                    (Transformed::Exact(a), Transformed::Exact(b)) => (text(&(b - a)), None),
                    (Transformed::Rate(a), Transformed::Rate(b)) => (String::new(), Some(b - a)),
                    _ => (String::new(), None),
                };
                let revised = first_time.is_some() && first != p.latest.value;
                let (first_release_value, first_release_rate) = wire_value(first);
                let partial = p.latest.parts < p.latest.expected;
                let (latest_value, latest_rate) = wire_value(p.latest.value);
                pb::SeriesVintagePoint {
                    period: p.period.to_string(),
                    first_release_value,
                    first_release_rate,
                    first_release_time: first_time,
                    latest_value,
                    latest_rate,
                    latest_time: p.latest_time.map(timestamp),
                    revision,
                    revision_rate,
                    revised,
                    partial,
                    parts: p.latest.parts as i32,
                    expected_parts: p.latest.expected as i32,
                }
            })
            .collect();
        Ok(Response::new(pb::QuerySeriesVintagesResponse {
            indicator: q.name.to_string(),
            frequency: frequency_to_proto(to) as i32,
            transform: wire_transform(transform),
            unit: ind.spec.unit.clone(),
            unit_multiplier: ind.spec.unit_multiplier,
            points,
            vintage_count: i32::try_from(replayed.count).unwrap_or(i32::MAX),
            as_of: Some(timestamp(snap.effective)),
        }))
    }

    async fn list_series_vintages(
        &self,
        request: Request<pb::ListSeriesVintagesRequest>,
    ) -> Result<Response<pb::ListSeriesVintagesResponse>, Status> {
        let pb::ListSeriesVintagesRequest {
            indicator,
            start_period,
            end_period,
            as_of,
            page_size,
            page_token,
        } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("indicator", IndicatorName::parse(&indicator));
        let start = optional_period(&mut v, "start_period", &start_period);
        let end = optional_period(&mut v, "end_period", &end_period);
        let when = optional_time(&mut v, "as_of", &as_of);
        let (name, start, end, when) = finish(v, || Some((name?, start?, end?, when?)))?;
        let fingerprint =
            format!("ListSeriesVintages {name} {start_period} {end_period} {as_of:?}");
        let page = self.ctx.page_tokens.page_sized(
            &fingerprint,
            page_size,
            &page_token,
            DEFAULT_VINTAGES_PAGE,
            MAX_VINTAGES_PAGE,
        )?;
        // The token carries the last vintage and the instant of the first page, so that
        // every page of one listing is cut at the same instant.
        let (after, when) = match page.after.as_deref() {
            None => (None, when),
            Some(key) => {
                let bad = || {
                    Status::from(Error::invalid(
                        "page_token",
                        "INVALID_PAGE_TOKEN",
                        "bad page token",
                    ))
                };
                let (last, until) = key.split_once('@').ok_or_else(bad)?;
                let micros = |s: &str| {
                    s.parse::<i64>()
                        .ok()
                        .and_then(DateTime::from_timestamp_micros)
                        .ok_or_else(bad)
                };
                (Some(micros(last)?), Some(micros(until)?))
            }
        };
        let mut snap = self.ctx.snapshot(when).await?;
        let mut found = indicators::get_many(snap.conn(), &[name.0.as_str()]).await?;
        let (key, ind) = found
            .pop()
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let mut v = Violations::new();
        for (field, p) in [("start_period", start), ("end_period", end)] {
            if let Some(p) = p.filter(|p| p.frequency() != ind.spec.frequency) {
                v.push(
                    field,
                    "PERIOD_FREQUENCY_MISMATCH",
                    format!("{p} is not {} like {name}", ind.spec.frequency.describe()),
                );
            }
        }
        if let (Some(s), Some(e)) = (start, end)
            && e.start_key() < s.start_key()
        {
            v.push("end_period", "BEFORE_START", format!("{e} is before {s}"));
        }
        finish(v, || Some(()))?;
        let (from, to) = (start.map(|p| p.to_string()), end.map(|p| p.to_string()));
        let until = snap.effective;
        let mut rows = snap
            .vintages(
                key,
                from.as_deref(),
                to.as_deref(),
                until,
                after,
                page.fetch_limit(),
            )
            .await?;
        let until_us = until.timestamp_micros();
        let next_page_token = self
            .ctx
            .page_tokens
            .finish(&fingerprint, &page, &mut rows, |r| {
                format!("{}@{until_us}", r.time.timestamp_micros())
            });
        let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(Response::new(pb::ListSeriesVintagesResponse {
            vintages: rows
                .into_iter()
                .map(|r| pb::SeriesVintage {
                    time: Some(timestamp(r.time)),
                    versions: count(r.versions),
                    periods_changed: count(r.changed),
                    periods: r.periods,
                    periods_deleted: count(r.deleted),
                })
                .collect(),
            next_page_token,
            as_of: Some(timestamp(until)),
        }))
    }

    async fn query_breakdown(
        &self,
        request: Request<pb::QueryBreakdownRequest>,
    ) -> Result<Response<pb::QueryBreakdownResponse>, Status> {
        let pb::QueryBreakdownRequest {
            period,
            region,
            flow,
            service_categories,
            dimensions,
            group_by,
            dimension_key,
            as_of: when,
            conversion,
        } = request.into_inner();
        let mut v = Violations::new();
        let period = v.check("period", Period::parse(&period));
        let region = if region.is_empty() {
            Some(None)
        } else {
            v.check(
                "region",
                codes::check_region(&region)
                    .map(|_| Some(region.clone()))
                    .map_err(Invalid::from),
            )
        };
        let flow = match pb::indicator::Flow::try_from(flow) {
            Ok(pb::indicator::Flow::Unspecified) => Some(None),
            Ok(pb::indicator::Flow::Export) => Some(Some(Flow::Export)),
            Ok(pb::indicator::Flow::Import) => Some(Some(Flow::Import)),
            Ok(pb::indicator::Flow::Total) => Some(Some(Flow::Total)),
            Ok(pb::indicator::Flow::Balance) => Some(Some(Flow::Balance)),
            Ok(pb::indicator::Flow::None) => Some(Some(Flow::None)),
            Err(_) => {
                v.push(
                    "flow",
                    "INVALID_ENUM",
                    format!("{flow} is not a known flow"),
                );
                None
            }
        };
        for (i, c) in service_categories.iter().enumerate() {
            v.check(
                &format!("service_categories[{i}]"),
                codes::check_ebops2010(c).map_err(Invalid::from),
            );
        }
        let dims: BTreeMap<String, String> = dimensions.into_iter().collect();
        // Checked as indicators' dimensions are (no other could match), so that no
        // value PostgreSQL refuses (NUL) reaches the query.
        for (k, val) in &dims {
            let field = format!("dimensions[{:?}]", crate::domain::names::truncate(k));
            v.check(&field, crate::domain::indicator::check_dimension_key(k));
            v.check(&field, crate::domain::indicator::check_dimension_value(val));
        }
        if !dimension_key.is_empty() {
            v.check(
                "dimension_key",
                crate::domain::indicator::check_dimension_key(&dimension_key),
            );
        }
        let group = match pb::BreakdownDimension::try_from(group_by) {
            Ok(pb::BreakdownDimension::Unspecified) | Err(_) => {
                v.push(
                    "group_by",
                    "REQUIRED",
                    "group_by is required: SERVICE_CATEGORY, FLOW, REGION or FREE (with dimension_key)",
                );
                None
            }
            Ok(g) => Some(g),
        };
        if group == Some(pb::BreakdownDimension::Free) && dimension_key.is_empty() {
            v.push(
                "dimension_key",
                "REQUIRED",
                "grouping by a free dimension needs its key",
            );
        }
        let when = optional_time(&mut v, "as_of", &when);
        let conversion = check_conversion(&mut v, conversion.as_ref());
        let (period, region, flow, group, when, conversion) = finish(v, || {
            Some((period?, region?, flow?, group?, when?, conversion?))
        })?;

        let mut snap = self.ctx.snapshot(when).await?;
        let matched = indicators::matching(
            snap.conn(),
            region.as_deref(),
            flow.map(|f| f.code()),
            &service_categories,
            &dims,
        )
        .await?;
        // Indicators coarser than the period cannot answer for it.
        let matched: Vec<(i32, Indicator)> = matched
            .into_iter()
            .filter(|(_, i)| i.spec.frequency >= period.frequency())
            .collect();
        let conversion = match &conversion {
            Some((currency, rate)) => Some(load_conversion(&mut snap, currency, rate).await?),
            None => None,
        };
        // With a conversion, the units once converted: the rate's other currency becomes
        // the requested one.
        let units: std::collections::BTreeSet<&str> = matched
            .iter()
            .map(|(_, i)| match &conversion {
                Some(c) if c.applies(&i.spec.unit).is_ok() => c.to.as_str(),
                _ => i.spec.unit.as_str(),
            })
            .collect();
        if units.len() > 1 {
            return Err(Error::FailedPrecondition {
                reason: "MIXED_UNITS",
                message: format!(
                    "the matching indicators are in different units ({}); narrow the filter to one unit",
                    units.into_iter().collect::<Vec<_>>().join(", ")
                ),
                subjects: vec![],
            }
            .into());
        }
        let unit = units.into_iter().next().unwrap_or("").to_owned();
        let min_mult = matched
            .iter()
            .map(|(_, i)| i.spec.unit_multiplier)
            .min()
            .unwrap_or(0);
        let keys: Vec<i32> = matched.iter().map(|(k, _)| *k).collect();
        // Every period of the year: enough to de-cumulate and roll up to any period in it.
        let (lo, hi) = (format!("{}", period.year()), format!("{}-~", period.year()));
        let points = snap.points(&keys, Some(&lo), Some(&hi)).await?;
        let mut groups: BTreeMap<String, (BigDecimal, Vec<String>)> = BTreeMap::new();
        let mut missing = Vec::new();
        let empty = Vec::new();
        let mut rate = None;
        for (key, ind) in &matched {
            let value = prepare(points.get(key).unwrap_or(&empty), ind, period.frequency())
                .into_iter()
                .find(|r| r.period == period)
                .and_then(|r| r.value);
            let value = match (&conversion, value) {
                (Some(c), Some(v)) if c.applies(&ind.spec.unit) == Ok(true) => {
                    c.convert(&ind.spec.unit, &v, period).map(|(cv, used)| {
                        rate = Some(used);
                        cv
                    })
                }
                (_, v) => v,
            };
            let Some(value) = value else {
                missing.push(ind.name().to_string());
                continue;
            };
            let value = scale(&value, ind.spec.unit_multiplier - min_mult);
            let group_key = match group {
                pb::BreakdownDimension::ServiceCategory => {
                    ind.spec.service_category.clone().unwrap_or_default()
                }
                pb::BreakdownDimension::Flow => ind.spec.flow.code().to_owned(),
                pb::BreakdownDimension::Region => ind.spec.region.clone(),
                _ => ind
                    .spec
                    .dimensions
                    .get(&dimension_key)
                    .cloned()
                    .unwrap_or_default(),
            };
            let entry = groups
                .entry(group_key)
                .or_insert_with(|| (BigDecimal::zero(), Vec::new()));
            entry.0 += value;
            entry.1.push(ind.name().to_string());
        }
        // Averages, rates and percentages do not add up across indicators.
        let non_additive = matched
            .iter()
            .any(|(_, i)| i.spec.aggregation == Aggregation::Average || i.spec.unit == "%");
        let total: BigDecimal = groups.values().map(|g| &g.0).sum();
        let mut groups: Vec<pb::BreakdownGroup> = groups
            .into_iter()
            .map(|(key, (value, indicators))| pb::BreakdownGroup {
                share: if non_additive {
                    0.0
                } else {
                    reporting::ratio(&value, &total)
                        .map(|r| r * 100.0)
                        .unwrap_or(0.0)
                },
                key,
                value: if non_additive && indicators.len() > 1 {
                    String::new()
                } else {
                    text(&value)
                },
                indicators,
            })
            .collect();
        // Largest first; groups without a value last.
        groups.sort_by(|a, b| {
            let (x, y): (Option<BigDecimal>, Option<BigDecimal>) =
                (a.value.parse().ok(), b.value.parse().ok());
            y.cmp(&x).then_with(|| a.key.cmp(&b.key))
        });
        Ok(Response::new(pb::QueryBreakdownResponse {
            period: period.to_string(),
            unit,
            unit_multiplier: min_mult,
            groups,
            total: if non_additive {
                String::new()
            } else {
                text(&total)
            },
            missing,
            as_of: Some(timestamp(snap.effective)),
            non_additive,
            exchange_rate: rate.as_ref().map(rate_used),
        }))
    }

    async fn get_target_progress(
        &self,
        request: Request<pb::GetTargetProgressRequest>,
    ) -> Result<Response<pb::TargetProgress>, Status> {
        let pb::GetTargetProgressRequest {
            name,
            as_of: when,
            conversion,
        } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", TargetName::parse(&name));
        let when = optional_time(&mut v, "as_of", &when);
        let conversion = check_conversion(&mut v, conversion.as_ref());
        let (name, when, conversion) = finish(v, || Some((name?, when?, conversion?)))?;
        let mut snap = self.ctx.snapshot(when).await?;
        let target = targets::get(snap.conn(), &name).await?;
        let conversion = match &conversion {
            Some((currency, rate)) => Some(load_conversion(&mut snap, currency, rate).await?),
            None => None,
        };
        let mut out = assess_all(
            &mut snap,
            std::slice::from_ref(&target),
            conversion.as_ref(),
        )
        .await?;
        out.pop()
            .map(Response::new)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("no assessment")).into())
    }

    async fn list_target_progress(
        &self,
        request: Request<pb::ListTargetProgressRequest>,
    ) -> Result<Response<pb::ListTargetProgressResponse>, Status> {
        let pb::ListTargetProgressRequest {
            parent,
            as_of: when,
            conversion,
        } = request.into_inner();
        let mut v = Violations::new();
        let parent = v.check("parent", ProgramName::parse(&parent));
        let when = optional_time(&mut v, "as_of", &when);
        let conversion = check_conversion(&mut v, conversion.as_ref());
        let (parent, when, conversion) = finish(v, || Some((parent?, when?, conversion?)))?;
        let mut snap = self.ctx.snapshot(when).await?;
        programs::get(snap.conn(), &parent.0).await?;
        let conversion = match &conversion {
            Some((currency, rate)) => Some(load_conversion(&mut snap, currency, rate).await?),
            None => None,
        };
        let all = targets::list_all(snap.conn(), &parent.0).await?;
        let progress = assess_all(&mut snap, &all, conversion.as_ref()).await?;
        Ok(Response::new(pb::ListTargetProgressResponse { progress }))
    }

    async fn get_program_scorecard(
        &self,
        request: Request<pb::GetProgramScorecardRequest>,
    ) -> Result<Response<pb::ProgramScorecard>, Status> {
        let pb::GetProgramScorecardRequest { name, as_of: when } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ProgramName::parse(&name));
        let when = optional_time(&mut v, "as_of", &when);
        let (name, when) = finish(v, || Some((name?, when?)))?;
        let mut snap = self.ctx.snapshot(when).await?;
        let program = programs::get(snap.conn(), &name.0).await?;
        let all_initiatives = initiatives::list_all(snap.conn(), &name.0).await?;
        let all_targets = targets::list_all(snap.conn(), &name.0).await?;

        // Every indicator the scorecard shows, read once with its points.
        let mut ids: Vec<&str> = all_targets
            .iter()
            .map(|t| t.spec.indicator.as_str())
            .collect();
        ids.extend(
            all_initiatives
                .iter()
                .flat_map(|i| i.spec.indicators.iter().map(|x| x.as_str())),
        );
        ids.sort_unstable();
        ids.dedup();
        let inds = indicators::get_many(snap.conn(), &ids).await?;
        let keys: Vec<i32> = inds.iter().map(|(k, _)| *k).collect();
        let points = snap.points(&keys, None, None).await?;
        let by_id: HashMap<&str, &(i32, Indicator)> =
            inds.iter().map(|i| (i.1.id.as_str(), i)).collect();
        let empty = Vec::new();
        let points_of = |id: &str| {
            by_id
                .get(id)
                .map(|(k, i)| (i, points.get(k).unwrap_or(&empty)))
        };

        let mut target_cards: HashMap<Option<String>, Vec<pb::TargetProgress>> = HashMap::new();
        for t in &all_targets {
            if let Some((ind, pts)) = points_of(t.spec.indicator.as_str()) {
                target_cards
                    .entry(t.spec.initiative.as_ref().map(|i| i.as_str().to_owned()))
                    .or_default()
                    .push(progress(t, ind, pts, snap.effective, None));
            }
        }
        let mut children: HashMap<Option<String>, Vec<&initiatives::Initiative>> = HashMap::new();
        for i in &all_initiatives {
            children
                .entry(
                    i.spec
                        .parent_initiative
                        .as_ref()
                        .map(|p| p.as_str().to_owned()),
                )
                .or_default()
                .push(i);
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| {
                a.spec
                    .position
                    .cmp(&b.spec.position)
                    .then_with(|| a.name.initiative.cmp(&b.name.initiative))
            });
        }
        fn card(
            i: &initiatives::Initiative,
            children: &HashMap<Option<String>, Vec<&initiatives::Initiative>>,
            targets: &mut HashMap<Option<String>, Vec<pb::TargetProgress>>,
            latest_of: &dyn Fn(&str) -> Option<pb::IndicatorLatest>,
            depth: usize,
        ) -> pb::InitiativeCard {
            let id = i.name.initiative.as_str().to_owned();
            let kids = if depth < 64 {
                children
                    .get(&Some(id.clone()))
                    .map(|c| {
                        c.iter()
                            .map(|k| card(k, children, targets, latest_of, depth + 1))
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            pb::InitiativeCard {
                initiative: Some(initiative_to_proto(i)),
                children: kids,
                targets: targets.remove(&Some(id)).unwrap_or_default(),
                indicators: i
                    .spec
                    .indicators
                    .iter()
                    .filter_map(|x| latest_of(x.as_str()))
                    .collect(),
            }
        }
        let latest_of = |id: &str| points_of(id).map(|(ind, pts)| latest(ind, pts));
        let roots: Vec<pb::InitiativeCard> = children
            .get(&None)
            .map(|r| {
                r.iter()
                    .map(|i| card(i, &children, &mut target_cards, &latest_of, 0))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ProgramScorecard {
            program: Some(program_to_proto(&program)),
            initiatives: roots,
            targets: target_cards.remove(&None).unwrap_or_default(),
            as_of: Some(timestamp(snap.effective)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_text_rounds_to_six_decimals() {
        assert_eq!(float_text(31.748_021_039_363_99), "31.748021");
        assert_eq!(float_text(2.0), "2");
        assert_eq!(float_text(-0.000_000_1), "0");
        assert_eq!(float_text(f64::NAN), "");
    }
}
