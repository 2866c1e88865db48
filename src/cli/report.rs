//! `tradewatch report progress|series|vintages|vintage-list|breakdown|scorecard`:
//! ReportingService as tables.

use clap::{Args, Subcommand};

use super::json::to_json;
use super::table::{Table, fields, truncate};
use super::values::{
    self, FlowArg, FrequencyArg, GroupByArg, PeriodRange, TransformArg, child_name, indicator_name,
    parse_key_values, program_name,
};
use super::{ClientArgs, Failure, Outcome, connect, emit, parse_instant};
use crate::proto::v1 as pb;
use crate::proto::v1::reporting_service_client::ReportingServiceClient;

/// Widest title in a report table.
const TITLE_WIDTH: usize = 60;
/// Vintages asked for per page.
const MAX_PAGE: u32 = 1000;
/// Changed periods a vintage-list row names at most.
const PERIODS_SHOWN: usize = 6;

/// `tradewatch report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report.
    #[command(subcommand)]
    pub command: ReportCommand,
    /// Answer as known at this instant (RFC 3339, e.g. 2021-03-01T00:00:00Z); default
    /// now.
    #[arg(long, global = true, value_name = "INSTANT")]
    pub as_of: Option<String>,
    /// Report in this currency (ISO 4217, e.g. USD), converted through
    /// --exchange-rate (series, breakdown and progress).
    #[arg(long, global = true, value_name = "CODE", requires = "exchange_rate")]
    pub currency: Option<String>,
    /// The exchange-rate indicator (id or name) for --currency: its unit is a currency
    /// pair such as CNY/USD.
    #[arg(long, global = true, value_name = "INDICATOR", requires = "currency")]
    pub exchange_rate: Option<String>,
    /// Server and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The reports.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Progress of one target (--target), or of every target of a programme
    /// (--program).
    Progress {
        /// The programme (id or name): every target of it, or the one --target names.
        #[arg(long, value_name = "PROGRAM")]
        program: Option<String>,
        /// One target: its name, or its id with --program.
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
    },
    /// An indicator's values over a range of periods, rolled up and transformed.
    Series {
        /// The indicator (id or name).
        #[arg(long, value_name = "INDICATOR")]
        indicator: String,
        /// Output frequency, not finer than the indicator's (default: the indicator's).
        #[arg(long, value_enum)]
        frequency: Option<FrequencyArg>,
        /// Periods of the output (default: from the first to the last with data).
        #[command(flatten)]
        range: PeriodRange,
        /// Transform (default: level).
        #[arg(long, value_enum)]
        transform: Option<TransformArg>,
    },
    /// An indicator's series as first released and as latest known, with the revision
    /// per period (rolled up and transformed as `series` does).
    Vintages {
        /// The indicator (id or name).
        #[arg(long, value_name = "INDICATOR")]
        indicator: String,
        /// Output frequency, not finer than the indicator's (default: the indicator's).
        #[arg(long, value_enum)]
        frequency: Option<FrequencyArg>,
        /// Periods of the output (default: from the first to the last with data).
        #[command(flatten)]
        range: PeriodRange,
        /// Transform (default: level).
        #[arg(long, value_enum)]
        transform: Option<TransformArg>,
    },
    /// The instants at which an indicator's figures changed (its vintages), oldest
    /// first; each can be passed to --as-of.
    VintageList {
        /// The indicator (id or name).
        #[arg(long, value_name = "INDICATOR")]
        indicator: String,
        /// Only changes of periods in this range (the indicator's frequency).
        #[command(flatten)]
        range: PeriodRange,
        /// At most this many vintages, the oldest (default: all, fetched page by page).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// For one period, the matching indicators grouped by a dimension, with shares.
    Breakdown {
        /// The period, SDMX syntax.
        #[arg(long, value_name = "PERIOD")]
        period: String,
        /// What to group by.
        #[arg(long, value_enum)]
        group_by: GroupByArg,
        /// With `--group-by free`: the dimension key.
        #[arg(long, value_name = "KEY")]
        dimension_key: Option<String>,
        /// Only indicators of this region.
        #[arg(long, value_name = "CODE")]
        region: Option<String>,
        /// Only indicators of this flow.
        #[arg(long, value_enum)]
        flow: Option<FlowArg>,
        /// Only indicators of these EBOPS 2010 categories, comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "CODE,…")]
        service_categories: Vec<String>,
        /// Only indicators with these free dimension values, comma-separated
        /// `key=code` pairs.
        #[arg(long, value_delimiter = ',', value_name = "KEY=CODE,…")]
        dimensions: Vec<String>,
    },
    /// A programme's initiatives as a tree with their targets' progress and their
    /// indicators' latest values.
    Scorecard {
        /// The programme (id or name).
        #[arg(long, value_name = "PROGRAM")]
        program: String,
    },
}

/// Runs `tradewatch report …`.
pub async fn run(args: ReportArgs) -> Outcome {
    let json = args.client.json;
    let as_of = args
        .as_of
        .as_deref()
        .map(|t| parse_instant("--as-of", t))
        .transpose()?;
    let conversion = match (&args.currency, &args.exchange_rate) {
        (Some(currency), Some(rate)) => Some(pb::CurrencyConversion {
            currency: currency.clone(),
            exchange_rate: indicator_name(rate),
        }),
        _ => None,
    };
    if conversion.is_some()
        && matches!(
            args.command,
            ReportCommand::Vintages { .. }
                | ReportCommand::VintageList { .. }
                | ReportCommand::Scorecard { .. }
        )
    {
        return Err(Failure::Usage(
            "--currency and --exchange-rate apply to report progress, series and breakdown only"
                .into(),
        ));
    }
    match args.command {
        ReportCommand::Progress { program, target } => {
            let program = program.as_deref();
            match target {
                Some(target) => {
                    let name = child_name(&target, program, "targets")?;
                    let mut client = client(&args.client).await?;
                    let p = client
                        .get_target_progress(pb::GetTargetProgressRequest {
                            name,
                            as_of,
                            conversion,
                        })
                        .await?
                        .into_inner();
                    if json {
                        emit(&to_json(&p)?)
                    } else {
                        emit(&progress_fields(&p))
                    }
                }
                None => {
                    let parent = program.map(program_name).ok_or_else(|| {
                        Failure::Usage("give --program PROGRAM, --target TARGET, or both".into())
                    })?;
                    let mut client = client(&args.client).await?;
                    let r = client
                        .list_target_progress(pb::ListTargetProgressRequest {
                            parent,
                            as_of,
                            conversion,
                        })
                        .await?
                        .into_inner();
                    if json {
                        emit(&to_json(&r)?)
                    } else {
                        emit(&progress_table(&r.progress))
                    }
                }
            }
        }
        ReportCommand::Series {
            indicator,
            frequency,
            range,
            transform,
        } => {
            let (start_period, end_period) = range.periods()?;
            let request = pb::QuerySeriesRequest {
                indicator: indicator_name(&indicator),
                start_period,
                end_period,
                frequency: frequency.map_or(0, |f| pb::Frequency::from(f) as i32),
                transform: transform.map_or(0, |t| pb::Transform::from(t) as i32),
                as_of,
                conversion,
            };
            let r = client(&args.client)
                .await?
                .query_series(request)
                .await?
                .into_inner();
            if json {
                emit(&to_json(&r)?)
            } else {
                emit(&series_text(&r))
            }
        }
        ReportCommand::Vintages {
            indicator,
            frequency,
            range,
            transform,
        } => {
            let (start_period, end_period) = range.periods()?;
            let request = pb::QuerySeriesVintagesRequest {
                indicator: indicator_name(&indicator),
                start_period,
                end_period,
                frequency: frequency.map_or(0, |f| pb::Frequency::from(f) as i32),
                transform: transform.map_or(0, |t| pb::Transform::from(t) as i32),
                as_of,
            };
            let r = client(&args.client)
                .await?
                .query_series_vintages(request)
                .await?
                .into_inner();
            if json {
                emit(&to_json(&r)?)
            } else {
                emit(&vintages_text(&r))
            }
        }
        ReportCommand::VintageList {
            indicator,
            range,
            limit,
        } => {
            let (start_period, end_period) = range.periods()?;
            let mut client = client(&args.client).await?;
            let mut request = pb::ListSeriesVintagesRequest {
                indicator: indicator_name(&indicator),
                start_period,
                end_period,
                as_of,
                page_size: 0,
                page_token: String::new(),
            };
            // Every page, or the first `limit` vintages; the answer is as of the first
            // page's instant (every page is cut there).
            let mut vintages = Vec::new();
            let mut first_as_of = None;
            loop {
                let want = limit.map_or(MAX_PAGE, |l| (l - vintages.len() as u32).min(MAX_PAGE));
                request.page_size = want as i32;
                let r = client
                    .list_series_vintages(request.clone())
                    .await?
                    .into_inner();
                first_as_of = first_as_of.or(r.as_of);
                vintages.extend(r.vintages);
                if let Some(l) = limit {
                    vintages.truncate(l as usize);
                    if vintages.len() as u32 >= l {
                        break;
                    }
                }
                if r.next_page_token.is_empty() {
                    break;
                }
                request.page_token = r.next_page_token;
            }
            let response = pb::ListSeriesVintagesResponse {
                vintages,
                next_page_token: String::new(),
                as_of: first_as_of,
            };
            if json {
                emit(&to_json(&response)?)
            } else {
                emit(&vintage_list_text(&request.indicator, &response))
            }
        }
        ReportCommand::Breakdown {
            period,
            group_by,
            dimension_key,
            region,
            flow,
            service_categories,
            dimensions,
        } => {
            let request = pb::QueryBreakdownRequest {
                period: values::period("--period", &period)?,
                region: region.unwrap_or_default(),
                flow: flow.map_or(0, |f| pb::indicator::Flow::from(f) as i32),
                service_categories: service_categories
                    .into_iter()
                    .filter(|c| !c.is_empty())
                    .collect(),
                dimensions: parse_key_values("--dimensions", &dimensions)?,
                group_by: pb::BreakdownDimension::from(group_by) as i32,
                dimension_key: dimension_key.unwrap_or_default(),
                as_of,
                conversion,
            };
            let r = client(&args.client)
                .await?
                .query_breakdown(request)
                .await?
                .into_inner();
            if json {
                emit(&to_json(&r)?)
            } else {
                emit(&breakdown_text(&r))
            }
        }
        ReportCommand::Scorecard { program } => {
            let r = client(&args.client)
                .await?
                .get_program_scorecard(pb::GetProgramScorecardRequest {
                    name: program_name(&program),
                    as_of,
                })
                .await?
                .into_inner();
            if json {
                emit(&to_json(&r)?)
            } else {
                emit(&scorecard_text(&r))
            }
        }
    }
}

async fn client(args: &ClientArgs) -> Result<ReportingServiceClient<super::Conn>, Failure> {
    Ok(ReportingServiceClient::new(connect(&args.server).await?))
}

fn ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.3}")).unwrap_or_default()
}

/// One target's assessment, a field a line.
pub fn progress_fields(p: &pb::TargetProgress) -> String {
    fields(&[
        ("target", p.target.clone()),
        ("title", p.title.clone()),
        ("indicator", p.indicator.clone()),
        ("status", values::status(p.status)),
        ("reason", p.reason.clone()),
        ("unit", values::unit(&p.unit, p.unit_multiplier)),
        ("converted from", p.converted_from.clone()),
        (
            "baseline",
            values::at(&p.baseline_value, &p.baseline_period),
        ),
        ("latest", values::at(&p.latest_value, &p.latest_period)),
        (
            "target value",
            values::at(&p.target_value, &p.target_period),
        ),
        ("attainment", values::percent(p.attainment)),
        ("observed CAGR", values::percent(p.observed_cagr)),
        ("required CAGR", values::percent(p.required_cagr)),
        ("ratio", ratio(p.ratio)),
        (
            "projected",
            values::at(&p.projected_value, &p.target_period),
        ),
        (
            "still required CAGR",
            values::percent(p.still_required_cagr),
        ),
        ("as of", values::time(&p.as_of)),
    ])
}

/// Several targets' assessments, a row each.
pub fn progress_table(list: &[pb::TargetProgress]) -> String {
    let mut t = Table::new([
        "TARGET",
        "STATUS",
        "UNIT",
        "BASELINE",
        "LATEST",
        "TARGET VALUE",
        "ATTAINMENT",
        "OBSERVED",
        "REQUIRED",
        "RATIO",
    ])
    .right(&[6, 7, 8, 9]);
    for p in list {
        t.row([
            p.target.rsplit('/').next().unwrap_or_default().to_owned(),
            values::status(p.status),
            values::unit(&p.unit, p.unit_multiplier),
            values::at(&p.baseline_value, &p.baseline_period),
            values::at(&p.latest_value, &p.latest_period),
            values::at(&p.target_value, &p.target_period),
            values::percent(p.attainment),
            values::percent(p.observed_cagr),
            values::percent(p.required_cagr),
            ratio(p.ratio),
        ]);
    }
    t.render()
}

fn is_rate(transform: i32) -> bool {
    [
        pb::Transform::PercentChange as i32,
        pb::Transform::PercentChangeYearAgo as i32,
        pb::Transform::CompoundAnnualGrowth as i32,
        pb::Transform::YearToDatePercentChangeYearAgo as i32,
    ]
    .contains(&transform)
}

/// A series: a heading line, then a row per period.
pub fn series_text(r: &pb::QuerySeriesResponse) -> String {
    let rate = is_rate(r.transform);
    let mut out = format!(
        "{}: {}, {}, {}, as of {}\n",
        r.indicator,
        if rate {
            "percent".to_owned()
        } else {
            values::unit(&r.unit, r.unit_multiplier)
        },
        values::frequency(r.frequency),
        values::transform(r.transform),
        values::time(&r.as_of)
    );
    let converted = !r.converted_from.is_empty();
    if converted {
        out.push_str(&format!("converted from {}\n", r.converted_from));
    }
    let mut headings = vec!["PERIOD", if rate { "RATE" } else { "VALUE" }, "PARTS"];
    if converted {
        headings.push("EXCHANGE RATE");
    }
    headings.push("");
    let mut t = Table::new(headings).right(&[1, 2]);
    for p in &r.points {
        let mut row = vec![
            p.period.clone(),
            if rate {
                p.rate.map(|r| format!("{r:.2}")).unwrap_or_default()
            } else {
                p.value.clone()
            },
            format!("{}/{}", p.parts, p.expected_parts),
        ];
        if converted {
            row.push(exchange_rate(p.exchange_rate.as_ref()));
        }
        row.push(
            if p.partial {
                "partial"
            } else if converted && p.exchange_rate.is_none() {
                "no rate"
            } else {
                ""
            }
            .to_owned(),
        );
        t.row(row);
    }
    out.push_str(&t.render());
    out
}

/// The rate a converted value used, `6.4 (2020)`; empty without one.
fn exchange_rate(r: Option<&pb::ExchangeRateUsed>) -> String {
    r.map(|r| values::at(&r.rate, &r.period))
        .unwrap_or_default()
}

/// A vintage's instant to the microsecond (the database's precision), always with six
/// decimals so that columns line up and the text can be passed to --as-of as it is.
fn instant(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// A series' vintages: a heading line, then a row per period with its first release
/// and its latest value, when each became known, and the revision.
pub fn vintages_text(r: &pb::QuerySeriesVintagesResponse) -> String {
    let rate = is_rate(r.transform);
    let mut out = format!(
        "{}: {}, {}, {}, {} vintages, as of {}\n",
        r.indicator,
        if rate {
            "percent".to_owned()
        } else {
            values::unit(&r.unit, r.unit_multiplier)
        },
        values::frequency(r.frequency),
        values::transform(r.transform),
        r.vintage_count,
        values::time(&r.as_of)
    );
    let mut t = Table::new([
        "PERIOD",
        "FIRST RELEASE",
        "FIRST KNOWN",
        "LATEST",
        "LATEST KNOWN",
        "REVISION",
        "PARTS",
        "",
    ])
    .right(&[1, 3, 5, 6]);
    let shown = |value: &str, rate_value: Option<f64>| {
        if rate {
            rate_value.map(|r| format!("{r:.2}")).unwrap_or_default()
        } else {
            value.to_owned()
        }
    };
    for p in &r.points {
        let mut flags = Vec::new();
        if p.revised {
            flags.push("revised");
        }
        if p.partial {
            flags.push("partial");
        }
        t.row([
            p.period.clone(),
            shown(&p.first_release_value, p.first_release_rate),
            instant(&p.first_release_time),
            shown(&p.latest_value, p.latest_rate),
            instant(&p.latest_time),
            if rate {
                p.revision_rate
                    .map(|r| format!("{r:+.2} pp"))
                    .unwrap_or_default()
            } else {
                p.revision.clone()
            },
            format!("{}/{}", p.parts, p.expected_parts),
            flags.join(", "),
        ]);
    }
    out.push_str(&t.render());
    out
}

/// An indicator's vintages: a heading line, then a row per vintage.
pub fn vintage_list_text(indicator: &str, r: &pb::ListSeriesVintagesResponse) -> String {
    let mut out = format!(
        "{indicator}: {} vintages, as of {}\n",
        r.vintages.len(),
        values::time(&r.as_of)
    );
    let mut t = Table::new(["TIME", "VERSIONS", "CHANGED", "DELETED", "PERIODS"]).right(&[1, 2, 3]);
    for v in &r.vintages {
        let mut periods = v
            .periods
            .iter()
            .take(PERIODS_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if v.periods_changed as usize > PERIODS_SHOWN {
            periods.push_str(", …");
        }
        t.row([
            instant(&v.time),
            v.versions.to_string(),
            v.periods_changed.to_string(),
            v.periods_deleted.to_string(),
            periods,
        ]);
    }
    out.push_str(&t.render());
    out
}

/// A breakdown: a heading line, a row per group, the total and what is missing.
pub fn breakdown_text(r: &pb::QueryBreakdownResponse) -> String {
    let mut out = format!(
        "{}: {}, as of {}\n",
        r.period,
        values::unit(&r.unit, r.unit_multiplier),
        values::time(&r.as_of)
    );
    if let Some(rate) = &r.exchange_rate {
        out.push_str(&format!(
            "converted at the exchange rate {}\n",
            exchange_rate(Some(rate))
        ));
    }
    let mut t = Table::new(["GROUP", "VALUE", "SHARE", "INDICATORS"]).right(&[1, 2]);
    for g in &r.groups {
        t.row([
            if g.key.is_empty() {
                "(none)".to_owned()
            } else {
                g.key.clone()
            },
            g.value.clone(),
            values::percent_of((!r.non_additive).then_some(g.share)),
            g.indicators
                .iter()
                .map(|i| i.strip_prefix("indicators/").unwrap_or(i))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    if !r.non_additive {
        t.row(["total", r.total.as_str(), "", ""]);
    }
    out.push_str(&t.render());
    if r.non_additive {
        out.push_str("no total and no shares: rates, averages and percentages do not add up\n");
    }
    if !r.missing.is_empty() {
        out.push_str(&format!("missing: {}\n", r.missing.join(", ")));
    }
    out
}

/// A scorecard: the programme, then the initiative tree, each initiative followed by
/// its targets and indicators, then the programme-wide targets.
pub fn scorecard_text(r: &pb::ProgramScorecard) -> String {
    let mut out = String::new();
    if let Some(p) = &r.program {
        out.push_str(&format!(
            "{}: {}, as of {}\n",
            p.name,
            p.title,
            values::time(&r.as_of)
        ));
    }
    let mut t = Table::new([
        "ITEM",
        "STATE / STATUS",
        "UNIT",
        "LATEST",
        "TARGET VALUE",
        "CHANGE Y/Y",
    ]);
    fn targets(t: &mut Table, list: &[pb::TargetProgress], indent: &str) {
        for p in list {
            t.row([
                format!("{indent}target {}", truncate(&p.title, TITLE_WIDTH)),
                values::status(p.status),
                values::unit(&p.unit, p.unit_multiplier),
                values::at(&p.latest_value, &p.latest_period),
                values::at(&p.target_value, &p.target_period),
                String::new(),
            ]);
        }
    }
    fn cards(t: &mut Table, list: &[pb::InitiativeCard], depth: usize) {
        let indent = "  ".repeat(depth);
        for card in list {
            let (title, state) = card
                .initiative
                .as_ref()
                .map(|i| (i.title.as_str(), values::state(i.state)))
                .unwrap_or_default();
            t.row([format!("{indent}{}", truncate(title, TITLE_WIDTH)), state]);
            let inner = "  ".repeat(depth + 1);
            targets(t, &card.targets, &inner);
            for i in &card.indicators {
                let change = match (&i.change_year_ago[..], i.percent_change_year_ago) {
                    ("", _) => String::new(),
                    (c, None) => c.to_owned(),
                    (c, Some(pct)) => format!("{c} ({pct:+.2} %)"),
                };
                t.row([
                    format!("{inner}indicator {}", truncate(&i.title, TITLE_WIDTH)),
                    String::new(),
                    values::unit(&i.unit, i.unit_multiplier),
                    if i.cumulative && !i.value.is_empty() {
                        // A year-to-date release: January to the period.
                        format!("{} (Jan-)", values::at(&i.value, &i.period))
                    } else {
                        values::at(&i.value, &i.period)
                    },
                    String::new(),
                    change,
                ]);
            }
            cards(t, &card.children, depth + 1);
        }
    }
    cards(&mut t, &r.initiatives, 0);
    if !r.targets.is_empty() {
        t.row(["programme-wide"]);
        targets(&mut t, &r.targets, "  ");
    }
    out.push_str(&t.render());
    out
}
