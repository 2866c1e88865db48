//! ReportingService: series, breakdowns, target progress and programme scorecards.
//!
//! Every expected figure is worked out by hand in the comments next to it, never by the
//! code under test. Rates and ratios (doubles) are compared to 1e-6 relative.

use tonic::Code;
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;
use tradewatch::proto::v1::reporting_service_client::ReportingServiceClient;

use crate::helpers::{
    Ch, TestApp, assert_invalid, indicator, initiative, level_target, reason, spawn_app,
};

use pb::target_progress::Status;

/// The clients this module needs, on their own channel to the test server.
struct Clients {
    reports: ReportingServiceClient<Ch>,
    observations: ObservationServiceClient<Ch>,
}

async fn clients(app: &TestApp) -> Clients {
    let channel = app.channel().await;
    Clients {
        reports: ReportingServiceClient::new(channel.clone()),
        observations: ObservationServiceClient::new(channel),
    }
}

impl Clients {
    /// Writes `(period, value)` pairs of `indicators/{id}` in one batch; an empty value
    /// is written as SDMX `O` (missing). Returns the written versions.
    async fn write(&mut self, id: &str, values: &[(&str, &str)]) -> Vec<pb::Observation> {
        let observations = values
            .iter()
            .map(|(period, value)| pb::Observation {
                name: format!("indicators/{id}/observations/{period}"),
                value: value.to_string(),
                status: if value.is_empty() {
                    pb::observation::Status::Missing as i32
                } else {
                    pb::observation::Status::Normal as i32
                },
                ..Default::default()
            })
            .collect();
        self.observations
            .batch_create_observations(pb::BatchCreateObservationsRequest {
                request_id: String::new(),
                observations,
                validate_only: false,
            })
            .await
            .unwrap_or_else(|e| panic!("write {id}: {e:?}"))
            .into_inner()
            .observations
    }

    async fn series(&mut self, req: pb::QuerySeriesRequest) -> pb::QuerySeriesResponse {
        self.reports
            .query_series(req.clone())
            .await
            .unwrap_or_else(|e| panic!("QuerySeries {req:?}: {e:?}"))
            .into_inner()
    }

    async fn progress(
        &mut self,
        name: &str,
        as_of: Option<prost_types::Timestamp>,
    ) -> pb::TargetProgress {
        self.reports
            .get_target_progress(pb::GetTargetProgressRequest {
                name: name.into(),
                as_of,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("GetTargetProgress {name}: {e:?}"))
            .into_inner()
    }

    async fn breakdown(&mut self, req: pb::QueryBreakdownRequest) -> pb::QueryBreakdownResponse {
        self.reports
            .query_breakdown(req.clone())
            .await
            .unwrap_or_else(|e| panic!("QueryBreakdown {req:?}: {e:?}"))
            .into_inner()
    }
}

/// Creates `indicators/{id}` from the helper's valid annual 10^8 USD export indicator,
/// changed by `edit`.
async fn create_indicator(app: &mut TestApp, id: &str, edit: impl FnOnce(&mut pb::Indicator)) {
    let mut ind = indicator(&format!("Indicator {id}"));
    edit(&mut ind);
    app.indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(ind),
            indicator_id: id.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("create indicators/{id}: {e:?}"));
}

fn monthly(ind: &mut pb::Indicator) {
    ind.frequency = pb::Frequency::Monthly as i32;
}

fn series_request(id: &str) -> pb::QuerySeriesRequest {
    pb::QuerySeriesRequest {
        indicator: format!("indicators/{id}"),
        ..Default::default()
    }
}

/// `(period, value)` of each point.
fn values(r: &pb::QuerySeriesResponse) -> Vec<(&str, &str)> {
    r.points
        .iter()
        .map(|p| (p.period.as_str(), p.value.as_str()))
        .collect()
}

/// `(period, partial, parts, expected_parts)` of each point.
fn parts(r: &pb::QuerySeriesResponse) -> Vec<(&str, bool, i32, i32)> {
    r.points
        .iter()
        .map(|p| (p.period.as_str(), p.partial, p.parts, p.expected_parts))
        .collect()
}

/// Asserts `actual` is set and within 1e-6 relative of `expected`.
#[track_caller]
fn assert_close(actual: Option<f64>, expected: f64, what: &str) {
    let a = actual.unwrap_or_else(|| panic!("{what} is unset, expected {expected}"));
    let tolerance = 1e-6 * expected.abs().max(1e-12);
    assert!(
        (a - expected).abs() <= tolerance,
        "{what}: got {a}, expected {expected}"
    );
}

/// One microsecond before `t` (the database's precision).
fn just_before(t: &Option<prost_types::Timestamp>) -> Option<prost_types::Timestamp> {
    let t = t.as_ref().expect("a timestamp");
    let micros = t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000 - 1;
    Some(prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

// ---------------------------------------------------------------------------------------
// QuerySeries

/// 2019: month × 10 (10, 20, …, 120); 2020: month × 10 + 5 (15, 25, …, 125).
fn two_years_of_months() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in 1..=12 {
        out.push((format!("2019-M{m:02}"), (m * 10).to_string()));
    }
    for m in 1..=12 {
        out.push((format!("2020-M{m:02}"), (m * 10 + 5).to_string()));
    }
    out
}

#[tokio::test]
async fn series_rolls_monthly_sums_up_to_quarters_and_years() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "monthly-sum", monthly).await;
    let months = two_years_of_months();
    let pairs: Vec<(&str, &str)> = months
        .iter()
        .map(|(p, v)| (p.as_str(), v.as_str()))
        .collect();
    c.write("monthly-sum", &pairs).await;

    // No frequency: the indicator's own (monthly), one part per period.
    let raw = c.series(series_request("monthly-sum")).await;
    assert_eq!(raw.frequency, pb::Frequency::Monthly as i32);
    assert_eq!(raw.transform, pb::Transform::Level as i32);
    assert_eq!((raw.unit.as_str(), raw.unit_multiplier), ("USD", 8));
    assert_eq!(raw.points.len(), 24);
    assert_eq!(values(&raw)[0], ("2019-M01", "10"));
    assert_eq!(values(&raw)[23], ("2020-M12", "125"));
    assert!(
        raw.points
            .iter()
            .all(|p| !p.partial && p.parts == 1 && p.expected_parts == 1)
    );

    let quarterly = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            ..series_request("monthly-sum")
        })
        .await;
    assert_eq!(quarterly.frequency, pb::Frequency::Quarterly as i32);
    // 2019: Q1 10+20+30 = 60, Q2 40+50+60 = 150, Q3 70+80+90 = 240, Q4 100+110+120 = 330.
    // 2020: each month 5 more, so each quarter 15 more: 75, 165, 255, 345.
    assert_eq!(
        values(&quarterly),
        vec![
            ("2019-Q1", "60"),
            ("2019-Q2", "150"),
            ("2019-Q3", "240"),
            ("2019-Q4", "330"),
            ("2020-Q1", "75"),
            ("2020-Q2", "165"),
            ("2020-Q3", "255"),
            ("2020-Q4", "345"),
        ]
    );
    assert!(
        quarterly
            .points
            .iter()
            .all(|p| !p.partial && p.parts == 3 && p.expected_parts == 3)
    );

    let annual = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Annual as i32,
            ..series_request("monthly-sum")
        })
        .await;
    // 2019 = 10 × (1 + … + 12) = 10 × 78 = 780; 2020 = 780 + 12 × 5 = 840.
    assert_eq!(values(&annual), vec![("2019", "780"), ("2020", "840")]);
    assert_eq!(
        parts(&annual),
        vec![("2019", false, 12, 12), ("2020", false, 12, 12)]
    );

    // Half-years: 2019-S1 = 60 + 150 = 210, 2019-S2 = 240 + 330 = 570.
    let halves = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::HalfYearly as i32,
            end_period: "2019-S2".into(),
            ..series_request("monthly-sum")
        })
        .await;
    assert_eq!(
        values(&halves),
        vec![("2019-S1", "210"), ("2019-S2", "570")]
    );
}

#[tokio::test]
async fn series_marks_periods_with_missing_months_partial() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "gappy", monthly).await;
    // 2019 at month × 10, except May (never published) and August (published as
    // missing, SDMX `O`, without a value).
    c.write(
        "gappy",
        &[
            ("2019-M01", "10"),
            ("2019-M02", "20"),
            ("2019-M03", "30"),
            ("2019-M04", "40"),
            ("2019-M06", "60"),
            ("2019-M07", "70"),
            ("2019-M08", ""),
            ("2019-M09", "90"),
            ("2019-M10", "100"),
            ("2019-M11", "110"),
            ("2019-M12", "120"),
        ],
    )
    .await;
    let quarterly = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            ..series_request("gappy")
        })
        .await;
    // Q1 = 60 and Q4 = 330 are complete; Q2 lacks May and Q3 lacks August: 2 of 3
    // parts each, and no value (never a partial sum such as 40 + 60 = 100).
    assert_eq!(
        values(&quarterly),
        vec![
            ("2019-Q1", "60"),
            ("2019-Q2", ""),
            ("2019-Q3", ""),
            ("2019-Q4", "330"),
        ]
    );
    assert_eq!(
        parts(&quarterly),
        vec![
            ("2019-Q1", false, 3, 3),
            ("2019-Q2", true, 2, 3),
            ("2019-Q3", true, 2, 3),
            ("2019-Q4", false, 3, 3),
        ]
    );
    let annual = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Annual as i32,
            ..series_request("gappy")
        })
        .await;
    // 10 of 12 months have a value.
    assert_eq!(values(&annual), vec![("2019", "")]);
    assert_eq!(parts(&annual), vec![("2019", true, 10, 12)]);
}

#[tokio::test]
async fn series_year_ago_transforms_period_filters_and_as_of() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "monthly-sum", monthly).await;
    let months = two_years_of_months();
    let pairs: Vec<(&str, &str)> = months
        .iter()
        .map(|(p, v)| (p.as_str(), v.as_str()))
        .collect();
    let first = c.write("monthly-sum", &pairs).await;

    let annual = |transform: pb::Transform| pb::QuerySeriesRequest {
        frequency: pb::Frequency::Annual as i32,
        transform: transform as i32,
        ..series_request("monthly-sum")
    };
    // 2020 − 2019 = 840 − 780 = 60; 2019 has no year before it.
    let change = c.series(annual(pb::Transform::ChangeYearAgo)).await;
    assert_eq!(change.transform, pb::Transform::ChangeYearAgo as i32);
    assert_eq!(values(&change), vec![("2019", ""), ("2020", "60")]);
    // 60 / 780 = 7.692307692… %, as a rate, no exact value.
    let pct = c.series(annual(pb::Transform::PercentChangeYearAgo)).await;
    assert_eq!(pct.points.len(), 2);
    assert_eq!(pct.points[0].rate, None);
    assert_eq!(pct.points[1].value, "");
    assert_close(pct.points[1].rate, 7.692_307_692_3, "2020 on 2019");

    // A range: 2019-Q3 .. 2020-Q2 of the quarterly sums.
    let range = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            start_period: "2019-Q3".into(),
            end_period: "2020-Q2".into(),
            ..series_request("monthly-sum")
        })
        .await;
    assert_eq!(
        values(&range),
        vec![
            ("2019-Q3", "240"),
            ("2019-Q4", "330"),
            ("2020-Q1", "75"),
            ("2020-Q2", "165"),
        ]
    );
    // Year-ago change of 2020's quarters: the range starts in 2020, yet 2019 is read
    // to compare with. Every month is 5 higher, so every quarter 15 higher.
    let yoy = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            start_period: "2020-Q1".into(),
            transform: pb::Transform::ChangeYearAgo as i32,
            ..series_request("monthly-sum")
        })
        .await;
    assert_eq!(
        values(&yoy),
        vec![
            ("2020-Q1", "15"),
            ("2020-Q2", "15"),
            ("2020-Q3", "15"),
            ("2020-Q4", "15"),
        ]
    );
    // Monthly, last two months: 11 × 10 + 5 = 115 and 125.
    let tail = c
        .series(pb::QuerySeriesRequest {
            start_period: "2020-M11".into(),
            end_period: "2020-M12".into(),
            ..series_request("monthly-sum")
        })
        .await;
    assert_eq!(
        values(&tail),
        vec![("2020-M11", "115"), ("2020-M12", "125")]
    );

    // December 2020 is revised from 125 to 135: 2020 becomes 840 + 10 = 850.
    let revised = c.write("monthly-sum", &[("2020-M12", "135")]).await;
    let now = c.series(annual(pb::Transform::Level)).await;
    assert_eq!(values(&now), vec![("2019", "780"), ("2020", "850")]);
    // Just before the revision the year was still 840, and the answer says so.
    let before = just_before(&revised[0].known_from);
    let then = c
        .series(pb::QuerySeriesRequest {
            as_of: before,
            ..annual(pb::Transform::Level)
        })
        .await;
    assert_eq!(values(&then), vec![("2019", "780"), ("2020", "840")]);
    assert_eq!(then.as_of, before);
    // Before the first write nothing was known.
    let nothing = c
        .series(pb::QuerySeriesRequest {
            as_of: just_before(&first[0].known_from),
            ..annual(pb::Transform::Level)
        })
        .await;
    assert!(nothing.points.is_empty(), "{:?}", nothing.points);
}

#[tokio::test]
async fn series_compound_growth_on_the_chongqing_figures() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "offshore", |_| {}).await;
    c.write(
        "offshore",
        &[("2018", "21.5"), ("2019", "20.6"), ("2020", "22.8")],
    )
    .await;
    let g = c
        .series(pb::QuerySeriesRequest {
            transform: pb::Transform::CompoundAnnualGrowth as i32,
            ..series_request("offshore")
        })
        .await;
    // From the first period (2018): 2019 = 20.6 / 21.5 − 1 = −4.186047 %;
    // 2020 = (22.8 / 21.5)^(1/2) − 1 = 1.0604651^(1/2) − 1 = 2.978887 %.
    assert_eq!(g.points.len(), 3);
    assert_eq!(g.points[0].rate, None);
    assert_close(g.points[1].rate, -4.186_046_5, "CAGR 2018-2019");
    assert_close(g.points[2].rate, 2.978_887_0, "CAGR 2018-2020");
    // From the start of the requested range instead: 2020 on 2019 = 22.8 / 20.6 − 1
    // = 10.679612 % (one year), not 2.98 % from 2018.
    let from_2019 = c
        .series(pb::QuerySeriesRequest {
            start_period: "2019".into(),
            transform: pb::Transform::CompoundAnnualGrowth as i32,
            ..series_request("offshore")
        })
        .await;
    assert_eq!(from_2019.points.len(), 2);
    assert_eq!(from_2019.points[0].period, "2019");
    assert_eq!(from_2019.points[0].rate, None);
    assert_close(from_2019.points[1].rate, 10.679_611_65, "CAGR 2019-2020");
    // Percent change on the previous period: 22.8 / 20.6 − 1 = 10.679612 %.
    let p = c
        .series(pb::QuerySeriesRequest {
            transform: pb::Transform::PercentChange as i32,
            ..series_request("offshore")
        })
        .await;
    assert_close(p.points[2].rate, 10.679_611_65, "2020 on 2019");
    // Change: 20.6 − 21.5 = −0.9; 22.8 − 20.6 = 2.2 (exact).
    let d = c
        .series(pb::QuerySeriesRequest {
            transform: pb::Transform::Change as i32,
            ..series_request("offshore")
        })
        .await;
    assert_eq!(
        values(&d),
        vec![("2018", ""), ("2019", "-0.9"), ("2020", "2.2")]
    );
}

#[tokio::test]
async fn series_decumulates_year_to_date_and_combines_averages_and_stocks() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "ytd", |i| {
        monthly(i);
        i.year_to_date = true;
    })
    .await;
    // MOFCOM-style: January 10, January–February 25, January–March 45.
    c.write(
        "ytd",
        &[("2020-M01", "10"), ("2020-M02", "25"), ("2020-M03", "45")],
    )
    .await;
    let per_month = c.series(series_request("ytd")).await;
    // 10, 25 − 10 = 15, 45 − 25 = 20.
    assert_eq!(
        values(&per_month),
        vec![("2020-M01", "10"), ("2020-M02", "15"), ("2020-M03", "20")]
    );
    // Starting in February still de-cumulates from January: 15, 20.
    let from_feb = c
        .series(pb::QuerySeriesRequest {
            start_period: "2020-M02".into(),
            ..series_request("ytd")
        })
        .await;
    assert_eq!(
        values(&from_feb),
        vec![("2020-M02", "15"), ("2020-M03", "20")]
    );
    // Q1 = 10 + 15 + 20 = 45 (the March YTD figure, as it should be).
    let q = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            ..series_request("ytd")
        })
        .await;
    assert_eq!(values(&q), vec![("2020-Q1", "45")]);

    // A rate: averages.
    create_indicator(&mut app, "rate", |i| {
        monthly(i);
        i.unit = "%".into();
        i.unit_multiplier = 0;
        i.flow = pb::indicator::Flow::None as i32;
        i.service_category = String::new();
        i.aggregation = pb::indicator::Aggregation::Average as i32;
    })
    .await;
    c.write(
        "rate",
        &[
            ("2020-M01", "2.5"),
            ("2020-M02", "3.0"),
            ("2020-M03", "4.1"),
            ("2020-M04", "5"),
            ("2020-M05", "5"),
            ("2020-M06", "6"),
        ],
    )
    .await;
    let avg = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            ..series_request("rate")
        })
        .await;
    assert_eq!((avg.unit.as_str(), avg.unit_multiplier), ("%", 0));
    // Q1 = (2.5 + 3.0 + 4.1) / 3 = 9.6 / 3 = 3.2; Q2 = 16 / 3 = 5.333… to 12 decimals.
    assert_eq!(
        values(&avg),
        vec![("2020-Q1", "3.2"), ("2020-Q2", "5.333333333333")]
    );

    // A stock: the last month of the quarter.
    create_indicator(&mut app, "stock", |i| {
        monthly(i);
        i.unit = "1".into();
        i.unit_multiplier = 0;
        i.flow = pb::indicator::Flow::None as i32;
        i.aggregation = pb::indicator::Aggregation::EndOfPeriod as i32;
    })
    .await;
    c.write(
        "stock",
        &[
            ("2020-M01", "100"),
            ("2020-M02", "104"),
            ("2020-M03", "110"),
        ],
    )
    .await;
    let eop = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            ..series_request("stock")
        })
        .await;
    assert_eq!(values(&eop), vec![("2020-Q1", "110")]);
}

#[tokio::test]
async fn series_rejects_bad_requests() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "annual", |_| {}).await;
    create_indicator(&mut app, "monthly", monthly).await;

    // Monthly output from an annual indicator.
    let err = c
        .reports
        .query_series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Monthly as i32,
            ..series_request("annual")
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "frequency"), "FINER_THAN_INDICATOR");

    // A quarterly output range given as a month.
    let err = c
        .reports
        .query_series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            start_period: "2020-M01".into(),
            ..series_request("monthly")
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "start_period"),
        "PERIOD_FREQUENCY_MISMATCH"
    );
    // An unparsable period.
    let err = c
        .reports
        .query_series(pb::QuerySeriesRequest {
            end_period: "2020-Q5".into(),
            ..series_request("monthly")
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "end_period");

    // A range that ends before it starts.
    let err = c
        .reports
        .query_series(pb::QuerySeriesRequest {
            start_period: "2020".into(),
            end_period: "2019".into(),
            ..series_request("annual")
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "end_period"), "BEFORE_START");
    // Unknown enum values and an impossible timestamp.
    let err = c
        .reports
        .query_series(pb::QuerySeriesRequest {
            frequency: 99,
            transform: 99,
            as_of: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            ..series_request("annual")
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "frequency"), "INVALID_ENUM");
    assert_eq!(assert_invalid(&err, "transform"), "INVALID_ENUM");
    assert_eq!(assert_invalid(&err, "as_of"), "INVALID_TIMESTAMP");

    let err = c
        .reports
        .query_series(series_request("no-such-indicator"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(reason(&err), "NOT_FOUND");

    let err = c
        .reports
        .query_series(pb::QuerySeriesRequest::default())
        .await
        .unwrap_err();
    assert_invalid(&err, "indicator");
}

// ---------------------------------------------------------------------------------------
// Target progress

const OFFSHORE_TARGET: &str = "programs/cq/targets/offshore-2022";

/// Programme `cq`, the annual 10^8 USD indicator `offshore` with the Chongqing figures
/// (2018 21.5, 2019 20.6, 2020 22.8) and the level target "25 × 10^8 USD in 2022".
async fn chongqing_offshore(app: &mut TestApp, c: &mut Clients) -> Vec<pb::Observation> {
    app.create_program("cq").await;
    create_indicator(app, "offshore", |i| {
        i.title = "Offshore service outsourcing executed value".into();
    })
    .await;
    let written = c
        .write(
            "offshore",
            &[("2018", "21.5"), ("2019", "20.6"), ("2020", "22.8")],
        )
        .await;
    app.create_target(
        "cq",
        "offshore-2022",
        pb::Target {
            title: "Offshore outsourcing of 25 hundred million USD in 2022".into(),
            target_value: "25".into(),
            unit_multiplier: 8,
            target_period: "2022".into(),
            ..level_target("indicators/offshore")
        },
    )
    .await
    .expect("create the target");
    written
}

#[tokio::test]
async fn target_progress_on_the_chongqing_outsourcing_figures() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    chongqing_offshore(&mut app, &mut c).await;

    let p = c.progress(OFFSHORE_TARGET, None).await;
    assert_eq!(p.target, OFFSHORE_TARGET);
    assert_eq!(
        p.title,
        "Offshore outsourcing of 25 hundred million USD in 2022"
    );
    assert_eq!(p.indicator, "indicators/offshore");
    assert_eq!((p.unit.as_str(), p.unit_multiplier), ("USD", 8));
    // No baseline in the target: the first data point.
    assert_eq!(
        (p.baseline_period.as_str(), p.baseline_value.as_str()),
        ("2018", "21.5")
    );
    assert_eq!(
        (p.latest_period.as_str(), p.latest_value.as_str()),
        ("2020", "22.8")
    );
    assert_eq!(
        (p.target_period.as_str(), p.target_value.as_str()),
        ("2022", "25")
    );
    // observed = (22.8 / 21.5)^(1/2) − 1 = 1.06046512^(1/2) − 1 = 0.02978887
    assert_close(p.observed_cagr, 0.029_788_870, "observed CAGR");
    // required = (25 / 21.5)^(1/4) − 1 = 1.16279070^(1/4) − 1
    //          = exp(0.15082289 / 4) − 1 = exp(0.03770572) − 1 = 0.03842560
    assert_close(p.required_cagr, 0.038_425_603, "required CAGR");
    // R = 0.02978887 / 0.03842560 = 0.775235 (0.60 ≤ R < 0.95: acceleration needed
    // while 2022 was to come).
    assert_close(p.ratio, 0.775_234_94, "ratio");
    // But 2022 is over without a 2022 figure: no verdict until it is published.
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
    assert_eq!(
        p.reason,
        "the target period 2022 has ended without a figure for it; the latest is 2020 \
         (22.8 × 10^8 USD), growing 2.98 % a year against 3.84 % a year required"
    );
    // attainment = 22.8 / 25 = 0.912
    assert_close(p.attainment, 0.912, "attainment");
    // projected = 22.8 × (1 + observed)^2 = 22.8 × 22.8 / 21.5 = 519.84 / 21.5
    //           = 24.1786046511…, shown to 6 decimals.
    assert_eq!(p.projected_value, "24.178605");
    // still required = (25 / 22.8)^(1/2) − 1 = 1.09649123^(1/2) − 1 = 0.04713477
    assert_close(p.still_required_cagr, 0.047_134_771, "still required CAGR");
    assert!(p.as_of.is_some());

    // Unknown target.
    let err = c
        .reports
        .get_target_progress(pb::GetTargetProgressRequest {
            name: "programs/cq/targets/nope".into(),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = c
        .reports
        .get_target_progress(pb::GetTargetProgressRequest::default())
        .await
        .unwrap_err();
    assert_invalid(&err, "name");
}

#[tokio::test]
async fn a_revision_changes_the_status_and_as_of_still_shows_the_old_one() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    chongqing_offshore(&mut app, &mut c).await;
    // The 2022 figure 24.5 is published: below 25, missed.
    c.write("offshore", &[("2022", "24.5")]).await;
    let first = c.progress(OFFSHORE_TARGET, None).await;
    assert_eq!(first.status, Status::Missed as i32, "{first:?}");
    // attainment = 24.5 / 25 = 0.98
    assert_close(first.attainment, 0.98, "attainment");

    // 2022 revised from 24.5 to 25.3: it meets 25, achieved.
    // observed = (25.3 / 21.5)^(1/4) − 1 = 1.17674419^(1/4) − 1
    //          = exp(0.16275146 / 4) − 1 = 0.04152696;
    // R = 0.04152696 / 0.03842560 = 1.080711.
    let revised = c.write("offshore", &[("2022", "25.3")]).await;
    let now = c.progress(OFFSHORE_TARGET, None).await;
    assert_eq!(now.status, Status::Achieved as i32, "{now:?}");
    assert_eq!(
        (now.latest_period.as_str(), now.latest_value.as_str()),
        ("2022", "25.3")
    );
    assert_eq!(
        now.reason,
        "the 2022 value 25.3 × 10^8 USD meets the target 25 × 10^8 USD"
    );
    assert_close(now.observed_cagr, 0.041_526_958, "observed CAGR");
    assert_close(now.ratio, 1.080_710_65, "ratio");
    // attainment = 25.3 / 25 = 1.012
    assert_close(now.attainment, 1.012, "attainment");

    // As known just before the revision: the old figure and the old status.
    let before = just_before(&revised[0].known_from);
    let then = c.progress(OFFSHORE_TARGET, before).await;
    assert_eq!(then.status, Status::Missed as i32, "{then:?}");
    assert_eq!(then.latest_value, "24.5");
    assert_eq!(
        then.reason,
        "the target period has passed: the 2022 value 24.5 × 10^8 USD does not meet \
         the target 25 × 10^8 USD"
    );
    assert_eq!(then.as_of, before);
}

#[tokio::test]
async fn a_passed_target_period_unmet_is_missed() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    chongqing_offshore(&mut app, &mut c).await;
    // The same 25 but for 2019: 2019's figure 20.6 is known and below it. 2020's
    // higher figure is after the target period and does not count.
    app.create_target(
        "cq",
        "offshore-2019",
        pb::Target {
            target_value: "25".into(),
            unit_multiplier: 8,
            target_period: "2019".into(),
            ..level_target("indicators/offshore")
        },
    )
    .await
    .unwrap();
    let p = c.progress("programs/cq/targets/offshore-2019", None).await;
    assert_eq!(p.status, Status::Missed as i32, "{p:?}");
    assert_eq!(
        (p.latest_period.as_str(), p.latest_value.as_str()),
        ("2019", "20.6")
    );
    // attainment = 20.6 / 25 = 0.824
    assert_close(p.attainment, 0.824, "attainment");
    assert!(!p.reason.is_empty());
    // A missed target too: baseline 2018 (21.5), 2019 at 20.6: observed 20.6 / 21.5 - 1
    // = -4.186 %; required 25 / 21.5 - 1 = 16.279 %; R = -0.041860 / 0.162791 = -0.2571.
    assert_eq!(p.baseline_period, "2018", "{p:?}");
    assert_close(p.observed_cagr, 20.6 / 21.5 - 1.0, "observed_cagr");
    assert_close(p.required_cagr, 25.0 / 21.5 - 1.0, "required_cagr");
    assert_close(p.ratio, (20.6 / 21.5 - 1.0) / (25.0 / 21.5 - 1.0), "ratio");
    assert_eq!(p.projected_value, "20.6");
}

#[tokio::test]
async fn target_in_billions_on_an_indicator_in_hundred_millions_is_achieved() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("cq").await;
    create_indicator(&mut app, "services-total", |i| {
        i.flow = pb::indicator::Flow::Total as i32;
        i.service_category = "S".into();
        i.dimensions.clear();
    })
    .await;
    // 250 × 10^8 = 25 × 10^9; 310 × 10^8 = 31 × 10^9.
    c.write("services-total", &[("2019", "250"), ("2020", "310")])
        .await;
    // "30 billion USD in 2020": 30 × 10^9.
    app.create_target(
        "cq",
        "services-2020",
        level_target("indicators/services-total"),
    )
    .await
    .unwrap();
    let p = c.progress("programs/cq/targets/services-2020", None).await;
    assert_eq!(p.status, Status::Achieved as i32, "{p:?}");
    // Values are shown in the target's unit: billions.
    assert_eq!((p.unit.as_str(), p.unit_multiplier), ("USD", 9));
    assert_eq!(
        (p.baseline_period.as_str(), p.baseline_value.as_str()),
        ("2019", "25")
    );
    assert_eq!(
        (p.latest_period.as_str(), p.latest_value.as_str()),
        ("2020", "31")
    );
    assert_eq!(p.target_value, "30");
    // attainment = 31 / 30 = 1.033333
    assert_close(p.attainment, 1.033_333_333, "attainment");
    assert!(!p.reason.is_empty());
    // An achieved target still tells how it got there: observed growth 31 / 25 - 1 =
    // 24 % against the 30 / 25 - 1 = 20 % required, R = 0.24 / 0.20 = 1.2, and at the
    // target period the "projection" is the figure itself.
    assert_close(p.observed_cagr, 0.24, "observed_cagr");
    assert_close(p.required_cagr, 0.20, "required_cagr");
    assert_close(p.ratio, 1.2, "ratio");
    assert_eq!(p.projected_value, "31");
    assert_eq!(p.still_required_cagr, None, "nothing is still required");
}

#[tokio::test]
async fn lower_is_better_growth_rate_and_not_assessable_targets() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("p").await;
    let lower = |indicator: &str| pb::Target {
        title: "Down to 50 by 2020".into(),
        target_value: "50".into(),
        unit_multiplier: 8,
        target_period: "2020".into(),
        direction: pb::Direction::LowerIsBetter as i32,
        ..level_target(indicator)
    };

    // Lower is better, falling: 100 (2015) → 65 (2018), target 50 in 2020.
    create_indicator(&mut app, "falling", |_| {}).await;
    c.write("falling", &[("2015", "100"), ("2018", "65")]).await;
    app.create_target("p", "falling", lower("indicators/falling"))
        .await
        .unwrap();
    let p = c.progress("programs/p/targets/falling", None).await;
    // observed = 0.65^(1/3) − 1 = exp(−0.43078292 / 3) − 1 = 0.86623911 − 1 = −0.13376089
    // required = 0.5^(1/5) − 1 = 0.87055056 − 1 = −0.12944944
    // R = −1 × −0.13376089 / 0.12944944 = 1.033306 ≥ 0.95: on track while 2020 was to
    // come; 2020 is over without its figure: no verdict.
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
    assert_close(p.ratio, 1.033_306, "ratio");
    assert_close(p.observed_cagr, -0.133_760_895, "observed CAGR");
    assert_close(p.required_cagr, -0.129_449_437, "required CAGR");
    assert_close(p.ratio, 1.033_306_116, "ratio");

    // Lower is better, rising: 100 → 110 over 3 years.
    create_indicator(&mut app, "rising", |_| {}).await;
    c.write("rising", &[("2015", "100"), ("2018", "110")]).await;
    app.create_target("p", "rising", lower("indicators/rising"))
        .await
        .unwrap();
    let p = c.progress("programs/p/targets/rising", None).await;
    // observed = 1.1^(1/3) − 1 = 0.03228012; R = −0.03228012 / 0.12944944 = −0.249365:
    // deterioration by R, but 2020 is over without its figure: no verdict.
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
    assert_close(p.ratio, -0.249_364_665, "ratio");

    // A growth-rate target: 10 % a year from 2015 to 2020; 100 → 121 by 2017.
    create_indicator(&mut app, "growing", |_| {}).await;
    c.write("growing", &[("2015", "100"), ("2017", "121")])
        .await;
    app.create_target(
        "p",
        "growing",
        pb::Target {
            title: "Grow 10 % a year".into(),
            kind: pb::target::Kind::GrowthRate as i32,
            target_value: "10".into(),
            unit_multiplier: 0,
            baseline_period: "2015".into(),
            target_period: "2020".into(),
            ..level_target("indicators/growing")
        },
    )
    .await
    .unwrap();
    let p = c.progress("programs/p/targets/growing", None).await;
    // observed = (121 / 100)^(1/2) − 1 = 1.1 − 1 = 0.1 = required: R = 1 (on track by R),
    // but 2020 is over without its figure: no verdict.
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
    assert_close(p.observed_cagr, 0.1, "observed CAGR");
    assert_close(p.required_cagr, 0.1, "required CAGR");
    assert_close(p.ratio, 1.0, "ratio");
    // attainment = observed / required = 1.
    assert_close(p.attainment, 1.0, "attainment");
    // Values in the indicator's unit (10^8 USD); the target value is percent a year.
    assert_eq!(p.unit_multiplier, 8);
    assert_eq!(p.target_value, "10");
    assert_eq!(
        (p.baseline_period.as_str(), p.baseline_value.as_str()),
        ("2015", "100")
    );
    assert_eq!(
        (p.latest_period.as_str(), p.latest_value.as_str()),
        ("2017", "121")
    );
    // projected = 121 × 1.1^3 = 121 × 1.331 = 161.051; the path ends at
    // 100 × 1.1^5 = 161.051 too, so 10 % a year is still what it takes.
    assert_eq!(p.projected_value, "161.051");
    assert_close(p.still_required_cagr, 0.1, "still required CAGR");

    // No data at all.
    create_indicator(&mut app, "empty", |_| {}).await;
    app.create_target("p", "empty", level_target("indicators/empty"))
        .await
        .unwrap();
    let p = c.progress("programs/p/targets/empty", None).await;
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
    assert!(p.reason.contains("no complete"), "{}", p.reason);
    assert_eq!(
        (p.latest_value.as_str(), p.baseline_value.as_str()),
        ("", "")
    );
    assert_eq!((p.observed_cagr, p.ratio, p.attainment), (None, None, None));
    assert_eq!(p.projected_value, "");

    // One data point only: 2018 = 250 × 10^8, below 30 × 10^9.
    create_indicator(&mut app, "single", |_| {}).await;
    c.write("single", &[("2018", "250")]).await;
    app.create_target("p", "single", level_target("indicators/single"))
        .await
        .unwrap();
    let p = c.progress("programs/p/targets/single", None).await;
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
    assert!(p.reason.contains("one data point"), "{}", p.reason);
    assert_eq!(p.latest_value, "25");
}

#[tokio::test]
async fn an_annual_target_on_monthly_data_uses_complete_years_only() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("p").await;
    create_indicator(&mut app, "monthly", monthly).await;
    // 2019: 12 × 10 = 120; 2020: 12 × 11 = 132; 2021: six months of 50 (300 so far,
    // already above the target, but not a complete year).
    let mut values: Vec<(String, &str)> = Vec::new();
    for m in 1..=12 {
        values.push((format!("2019-M{m:02}"), "10"));
        values.push((format!("2020-M{m:02}"), "11"));
    }
    for m in 1..=6 {
        values.push((format!("2021-M{m:02}"), "50"));
    }
    let pairs: Vec<(&str, &str)> = values.iter().map(|(p, v)| (p.as_str(), *v)).collect();
    c.write("monthly", &pairs).await;
    app.create_target(
        "p",
        "t",
        pb::Target {
            target_value: "200".into(),
            unit_multiplier: 8,
            target_period: "2022".into(),
            ..level_target("indicators/monthly")
        },
    )
    .await
    .unwrap();
    let p = c.progress("programs/p/targets/t", None).await;
    assert_eq!(
        (p.latest_period.as_str(), p.latest_value.as_str()),
        ("2020", "132")
    );
    assert_eq!(
        (p.baseline_period.as_str(), p.baseline_value.as_str()),
        ("2019", "120")
    );
    // observed = 132 / 120 − 1 = 0.1; required = (200 / 120)^(1/3) − 1
    // = (5/3)^(1/3) − 1 = exp(0.51082562 / 3) − 1 = 0.18563110;
    // R = 0.1 / 0.18563110 = 0.538703: limited progress (0 ≤ R < 0.60).
    assert_close(p.observed_cagr, 0.1, "observed CAGR");
    assert_close(p.required_cagr, 0.185_631_101, "required CAGR");
    assert_close(p.ratio, 0.538_702_832, "ratio");
    // Limited progress by R, but 2022 is over without its figure: no verdict.
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
}

#[tokio::test]
async fn a_baseline_fixed_by_the_target_is_used_and_shown_in_its_unit() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("p").await;
    create_indicator(&mut app, "total", |_| {}).await;
    // One figure only: 2018 = 200 × 10^8 = 20 × 10^9.
    c.write("total", &[("2018", "200")]).await;
    // 30 × 10^9 in 2020 from a baseline of 10 × 10^9 in 2015 that the target states.
    app.create_target(
        "p",
        "t",
        pb::Target {
            baseline_value: "10".into(),
            baseline_period: "2015".into(),
            ..level_target("indicators/total")
        },
    )
    .await
    .unwrap();
    let p = c.progress("programs/p/targets/t", None).await;
    assert_eq!(
        (p.baseline_period.as_str(), p.baseline_value.as_str()),
        ("2015", "10")
    );
    assert_eq!(
        (p.latest_period.as_str(), p.latest_value.as_str()),
        ("2018", "20")
    );
    // observed = (20 / 10)^(1/3) − 1 = 2^(1/3) − 1 = 0.25992105
    // required = (30 / 10)^(1/5) − 1 = 3^(1/5) − 1 = 0.24573094
    // R = 0.25992105 / 0.24573094 = 1.057747: on track by R, but 2020 is over without
    // its figure: no verdict.
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
    assert_close(p.ratio, 1.057_747, "ratio");
    assert_close(p.observed_cagr, 0.259_921_050, "observed CAGR");
    assert_close(p.required_cagr, 0.245_730_940, "required CAGR");
    assert_close(p.ratio, 1.057_746_535, "ratio");
    // attainment = 20 / 30; projected = 20 × 2^(2/3) = 20 × 1.58740105 = 31.748021;
    // still required = (30 / 20)^(1/2) − 1 = 1.22474487 − 1 = 0.22474487.
    assert_close(p.attainment, 0.666_666_667, "attainment");
    assert_eq!(p.projected_value, "31.748021");
    assert_close(p.still_required_cagr, 0.224_744_871, "still required CAGR");
}

#[tokio::test]
async fn a_growth_target_with_a_stated_baseline_reads_it_in_the_indicator_unit() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("p").await;
    create_indicator(&mut app, "growing", |_| {}).await;
    // Only 2017 = 121 (× 10^8 USD) is in the data; the target states 2015 = 100.
    c.write("growing", &[("2017", "121")]).await;
    app.create_target(
        "p",
        "growing",
        pb::Target {
            title: "Grow 10 % a year from 100".into(),
            kind: pb::target::Kind::GrowthRate as i32,
            target_value: "10".into(),
            unit_multiplier: 0,
            baseline_value: "100".into(),
            baseline_period: "2015".into(),
            target_period: "2020".into(),
            ..level_target("indicators/growing")
        },
    )
    .await
    .unwrap();
    let p = c.progress("programs/p/targets/growing", None).await;
    // Values of a growth-rate target are shown in the indicator's unit (10^8 USD, as
    // the growth_rate case above shows for a baseline read from the data), so the
    // stated baseline must come back as it was written, and count in the same unit.
    assert_eq!(p.unit_multiplier, 8);
    assert_eq!(
        (p.baseline_period.as_str(), p.baseline_value.as_str()),
        ("2015", "100")
    );
    // observed = (121 / 100)^(1/2) − 1 = 0.1 = required: R = 1 (on track by R), but 2020
    // is over without its figure: no verdict.
    assert_close(p.observed_cagr, 0.1, "observed CAGR");
    assert_close(p.ratio, 1.0, "ratio");
    assert_eq!(p.status, Status::NotAssessable as i32, "{p:?}");
}

#[tokio::test]
async fn list_target_progress_returns_every_target_in_name_order() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    chongqing_offshore(&mut app, &mut c).await;
    // Created out of order: c, a (plus offshore-2022 from the fixture).
    create_indicator(&mut app, "empty", |_| {}).await;
    app.create_target("cq", "c-empty", level_target("indicators/empty"))
        .await
        .unwrap();
    app.create_target(
        "cq",
        "a-offshore-2019",
        pb::Target {
            target_value: "25".into(),
            unit_multiplier: 8,
            target_period: "2019".into(),
            ..level_target("indicators/offshore")
        },
    )
    .await
    .unwrap();
    let list = c
        .reports
        .list_target_progress(pb::ListTargetProgressRequest {
            parent: "programs/cq".into(),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .progress;
    let got: Vec<(&str, i32)> = list.iter().map(|p| (p.target.as_str(), p.status)).collect();
    assert_eq!(
        got,
        vec![
            ("programs/cq/targets/a-offshore-2019", Status::Missed as i32),
            ("programs/cq/targets/c-empty", Status::NotAssessable as i32),
            // 2022 is over without a 2022 figure.
            (OFFSHORE_TARGET, Status::NotAssessable as i32),
        ]
    );

    let err = c
        .reports
        .list_target_progress(pb::ListTargetProgressRequest {
            parent: "programs/no-such-programme".into(),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(reason(&err), "NOT_FOUND");
}

// ---------------------------------------------------------------------------------------
// QueryBreakdown

fn breakdown_request(period: &str) -> pb::QueryBreakdownRequest {
    pb::QueryBreakdownRequest {
        period: period.into(),
        region: "CN-CQ".into(),
        flow: pb::indicator::Flow::Export as i32,
        group_by: pb::BreakdownDimension::ServiceCategory as i32,
        ..Default::default()
    }
}

/// `(key, value, indicators)` of each group.
fn groups(r: &pb::QueryBreakdownResponse) -> Vec<(&str, &str, Vec<&str>)> {
    r.groups
        .iter()
        .map(|g| {
            (
                g.key.as_str(),
                g.value.as_str(),
                g.indicators.iter().map(|s| s.as_str()).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn breakdown_by_service_category_in_the_smallest_unit() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    for (id, category, multiplier, value) in [
        ("ex-sc", "SC", 8, "21.5"),
        ("ex-si", "SI", 8, "12.25"),
        ("ex-sj", "SJ", 8, "6"),
        ("ex-sk", "SK", 4, "2500"),
    ] {
        create_indicator(&mut app, id, |i| {
            i.service_category = category.into();
            i.unit_multiplier = multiplier;
            // All ITO (the helper's) but the cultural one.
            if category == "SK" {
                i.dimensions.insert("outsourcing".into(), "BPO".into());
            }
        })
        .await;
        c.write(id, &[("2020", value)]).await;
    }
    // Left out by the filter: an import, and an export of another region.
    create_indicator(&mut app, "im-sc", |i| {
        i.flow = pb::indicator::Flow::Import as i32;
        i.service_category = "SC".into();
    })
    .await;
    c.write("im-sc", &[("2020", "100")]).await;
    create_indicator(&mut app, "bj-sc", |i| {
        i.region = "CN-BJ".into();
        i.service_category = "SC".into();
    })
    .await;
    c.write("bj-sc", &[("2020", "50")]).await;

    let b = c.breakdown(breakdown_request("2020")).await;
    assert_eq!(b.period, "2020");
    // The smallest multiplier, 10^4: 21.5 × 10^8 = 215000 × 10^4, 12.25 × 10^8 =
    // 122500 × 10^4, 6 × 10^8 = 60000 × 10^4, and 2500 × 10^4 as it is.
    assert_eq!((b.unit.as_str(), b.unit_multiplier), ("USD", 4));
    assert_eq!(
        groups(&b),
        vec![
            ("SC", "215000", vec!["indicators/ex-sc"]),
            ("SI", "122500", vec!["indicators/ex-si"]),
            ("SJ", "60000", vec!["indicators/ex-sj"]),
            ("SK", "2500", vec!["indicators/ex-sk"]),
        ]
    );
    // 215000 + 122500 + 60000 + 2500 = 400000.
    assert_eq!(b.total, "400000");
    // Shares: 215000 / 400000 = 53.75 %, 122500 / 400000 = 30.625 %,
    // 60000 / 400000 = 15 %, 2500 / 400000 = 0.625 %; together 100 %.
    let shares: Vec<f64> = b.groups.iter().map(|g| g.share).collect();
    for (got, want) in shares.iter().zip([53.75, 30.625, 15.0, 0.625]) {
        assert_close(Some(*got), want, "share");
    }
    assert_close(Some(shares.iter().sum()), 100.0, "sum of shares");
    assert!(b.missing.is_empty(), "{:?}", b.missing);

    // By region, exports only: CN-BJ 50 × 10^8 = 500000 × 10^4 against CN-CQ's 400000.
    let by_region = c
        .breakdown(pb::QueryBreakdownRequest {
            region: String::new(),
            group_by: pb::BreakdownDimension::Region as i32,
            ..breakdown_request("2020")
        })
        .await;
    let keys: Vec<(&str, &str)> = by_region
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.value.as_str()))
        .collect();
    assert_eq!(keys, vec![("CN-BJ", "500000"), ("CN-CQ", "400000")]);
    assert_eq!(by_region.total, "900000");

    // By a free dimension: ITO = 215000 + 122500 + 60000 = 397500, BPO = 2500.
    let by_kind = c
        .breakdown(pb::QueryBreakdownRequest {
            group_by: pb::BreakdownDimension::Free as i32,
            dimension_key: "outsourcing".into(),
            ..breakdown_request("2020")
        })
        .await;
    let keys: Vec<(&str, &str)> = by_kind
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.value.as_str()))
        .collect();
    assert_eq!(keys, vec![("ITO", "397500"), ("BPO", "2500")]);
    // 397500 / 400000 = 99.375 %.
    assert_close(Some(by_kind.groups[0].share), 99.375, "ITO share");
    // Filtered on the dimension: the BPO indicator alone, 100 %.
    let bpo = c
        .breakdown(pb::QueryBreakdownRequest {
            dimensions: [("outsourcing".to_string(), "BPO".to_string())].into(),
            ..breakdown_request("2020")
        })
        .await;
    assert_eq!(groups(&bpo), vec![("SK", "2500", vec!["indicators/ex-sk"])]);
    assert_eq!((bpo.unit_multiplier, bpo.total.as_str()), (4, "2500"));
    assert_close(Some(bpo.groups[0].share), 100.0, "BPO share");
    let err = c
        .reports
        .query_breakdown(pb::QueryBreakdownRequest {
            group_by: pb::BreakdownDimension::Free as i32,
            ..breakdown_request("2020")
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "dimension_key"), "REQUIRED");

    // A CNY export of Chongqing matches the same filter: the units cannot be added.
    create_indicator(&mut app, "ex-sd-cny", |i| {
        i.unit = "CNY".into();
        i.service_category = "SD".into();
    })
    .await;
    c.write("ex-sd-cny", &[("2020", "3")]).await;
    let err = c
        .reports
        .query_breakdown(breakdown_request("2020"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "MIXED_UNITS");
    // Narrowed to the four categories, it answers again.
    let narrowed = c
        .breakdown(pb::QueryBreakdownRequest {
            service_categories: vec!["SC".into(), "SI".into(), "SJ".into(), "SK".into()],
            ..breakdown_request("2020")
        })
        .await;
    assert_eq!(narrowed.total, "400000");

    // group_by is required.
    let err = c
        .reports
        .query_breakdown(pb::QueryBreakdownRequest {
            group_by: pb::BreakdownDimension::Unspecified as i32,
            ..breakdown_request("2020")
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "group_by"), "REQUIRED");
}

#[tokio::test]
async fn breakdown_rolls_monthly_indicators_up_and_lists_incomplete_ones() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    // SA: monthly, a full 2020 of 1 a month; SB: monthly, January to June only;
    // SC: annual, 36.
    create_indicator(&mut app, "full-year", |i| {
        monthly(i);
        i.service_category = "SA".into();
    })
    .await;
    create_indicator(&mut app, "half-year", |i| {
        monthly(i);
        i.service_category = "SB".into();
    })
    .await;
    create_indicator(&mut app, "annual", |i| {
        i.service_category = "SC".into();
    })
    .await;
    let full: Vec<String> = (1..=12).map(|m| format!("2020-M{m:02}")).collect();
    let pairs: Vec<(&str, &str)> = full.iter().map(|p| (p.as_str(), "1")).collect();
    c.write("full-year", &pairs).await;
    c.write("half-year", &pairs[..6]).await;
    c.write("annual", &[("2020", "36")]).await;

    let year = c.breakdown(breakdown_request("2020")).await;
    // SC 36 and SA 12 × 1 = 12; SB has half a year, so no 2020 value: missing.
    // Total 48; shares 36 / 48 = 75 %, 12 / 48 = 25 %.
    assert_eq!(
        groups(&year),
        vec![
            ("SC", "36", vec!["indicators/annual"]),
            ("SA", "12", vec!["indicators/full-year"]),
        ]
    );
    assert_eq!(year.total, "48");
    assert_close(Some(year.groups[0].share), 75.0, "SC share");
    assert_close(Some(year.groups[1].share), 25.0, "SA share");
    assert_eq!(year.missing, vec!["indicators/half-year".to_string()]);

    // A quarter: the annual indicator is coarser and left out (not missing); both
    // monthly ones have Q1 = 1 + 1 + 1 = 3, 50 % each.
    let q1 = c.breakdown(breakdown_request("2020-Q1")).await;
    assert_eq!(
        groups(&q1),
        vec![
            ("SA", "3", vec!["indicators/full-year"]),
            ("SB", "3", vec!["indicators/half-year"]),
        ]
    );
    assert_eq!(q1.total, "6");
    assert_close(Some(q1.groups[0].share), 50.0, "SA share");
    assert!(q1.missing.is_empty(), "{:?}", q1.missing);
}

// ---------------------------------------------------------------------------------------
// GetProgramScorecard

async fn create_initiative(app: &mut TestApp, id: &str, edit: impl FnOnce(&mut pb::Initiative)) {
    let mut i = initiative(&format!("Initiative {id}"));
    edit(&mut i);
    app.programs
        .create_initiative(pb::CreateInitiativeRequest {
            request_id: String::new(),
            parent: "programs/sc".into(),
            initiative: Some(i),
            initiative_id: id.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("create initiative {id}: {e:?}"));
}

#[tokio::test]
async fn scorecard_shows_the_tree_with_statuses_and_latest_values() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("sc").await;
    create_indicator(&mut app, "offshore", |i| {
        i.title = "Offshore service outsourcing executed value".into();
    })
    .await;
    c.write(
        "offshore",
        &[("2018", "21.5"), ("2019", "20.6"), ("2020", "22.8")],
    )
    .await;
    create_indicator(&mut app, "services-total", |i| {
        i.flow = pb::indicator::Flow::Total as i32;
        i.service_category = "S".into();
    })
    .await;
    c.write("services-total", &[("2019", "250"), ("2020", "310")])
        .await;

    // Ids in the opposite order of the positions: the scorecard follows the positions.
    create_initiative(&mut app, "a-outsourcing", |i| {
        i.title = "Develop offshore service outsourcing".into();
        i.position = 2;
    })
    .await;
    create_initiative(&mut app, "b-e-commerce", |i| {
        i.title = "Develop cross-border trade e-commerce".into();
        i.position = 1;
        i.state = pb::initiative::State::Planned as i32;
    })
    .await;
    create_initiative(&mut app, "a-outsourcing-city", |i| {
        i.title = "Build the outsourcing demonstration city".into();
        i.parent_initiative = "programs/sc/initiatives/a-outsourcing".into();
        i.indicators = vec!["indicators/offshore".into()];
        i.position = 1;
    })
    .await;
    // A target of the outsourcing area, and a programme-wide one.
    app.create_target(
        "sc",
        "offshore-2022",
        pb::Target {
            initiative: "programs/sc/initiatives/a-outsourcing".into(),
            target_value: "25".into(),
            unit_multiplier: 8,
            target_period: "2022".into(),
            ..level_target("indicators/offshore")
        },
    )
    .await
    .unwrap();
    app.create_target(
        "sc",
        "services-2020",
        level_target("indicators/services-total"),
    )
    .await
    .unwrap();

    let card = c
        .reports
        .get_program_scorecard(pb::GetProgramScorecardRequest {
            name: "programs/sc".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card.program.as_ref().unwrap().name, "programs/sc");
    assert!(card.as_of.is_some());
    let tops: Vec<(&str, i32)> = card
        .initiatives
        .iter()
        .map(|c| {
            let i = c.initiative.as_ref().unwrap();
            (i.name.as_str(), i.state)
        })
        .collect();
    assert_eq!(
        tops,
        vec![
            (
                "programs/sc/initiatives/b-e-commerce",
                pb::initiative::State::Planned as i32
            ),
            (
                "programs/sc/initiatives/a-outsourcing",
                pb::initiative::State::Active as i32
            ),
        ]
    );
    // The e-commerce area: nothing under it.
    let e_commerce = &card.initiatives[0];
    assert!(e_commerce.children.is_empty());
    assert!(e_commerce.targets.is_empty());
    assert!(e_commerce.indicators.is_empty());

    // The outsourcing area: its target (25 × 10^8 in 2022, acceleration needed as
    // worked out in target_progress_on_the_chongqing_outsourcing_figures) and one child.
    let outsourcing = &card.initiatives[1];
    let statuses: Vec<(&str, i32)> = outsourcing
        .targets
        .iter()
        .map(|t| (t.target.as_str(), t.status))
        .collect();
    assert_eq!(
        statuses,
        vec![(
            "programs/sc/targets/offshore-2022",
            Status::NotAssessable as i32
        )]
    );
    assert!(outsourcing.indicators.is_empty());
    assert_eq!(outsourcing.children.len(), 1);
    let city = &outsourcing.children[0];
    assert_eq!(
        city.initiative.as_ref().unwrap().name,
        "programs/sc/initiatives/a-outsourcing-city"
    );
    assert!(city.children.is_empty());
    assert!(city.targets.is_empty());
    assert_eq!(city.indicators.len(), 1);
    let latest = &city.indicators[0];
    assert_eq!(latest.indicator, "indicators/offshore");
    assert_eq!(latest.title, "Offshore service outsourcing executed value");
    assert_eq!((latest.unit.as_str(), latest.unit_multiplier), ("USD", 8));
    assert_eq!(
        (latest.period.as_str(), latest.value.as_str()),
        ("2020", "22.8")
    );
    // 22.8 − 20.6 = 2.2; 2.2 / 20.6 = 10.679612 %.
    assert_eq!(latest.change_year_ago, "2.2");
    assert_close(latest.percent_change_year_ago, 10.679_611_65, "on 2019");

    // The programme-wide target: 31 × 10^9 in 2020 meets 30 × 10^9.
    let wide: Vec<(&str, i32, &str)> = card
        .targets
        .iter()
        .map(|t| (t.target.as_str(), t.status, t.latest_value.as_str()))
        .collect();
    assert_eq!(
        wide,
        vec![(
            "programs/sc/targets/services-2020",
            Status::Achieved as i32,
            "31"
        )]
    );

    let err = c
        .reports
        .get_program_scorecard(pb::GetProgramScorecardRequest {
            name: "programs/no-such-programme".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

#[tokio::test]
async fn scorecard_of_the_builtin_chongqing_programme() {
    let app = spawn_app().await;
    let mut c = clients(&app).await;
    assert!(tradewatch::seed::load(&app.pool).await.unwrap());
    let card = c
        .reports
        .get_program_scorecard(pb::GetProgramScorecardRequest {
            name: "programs/cq-2015-service-trade".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    // The seven development areas in the document's order, with the 3+2+2+2+1+3+2
    // measures the text names under them.
    let areas: Vec<(&str, usize)> = card
        .initiatives
        .iter()
        .map(|c| {
            (
                c.initiative.as_ref().unwrap().title.as_str(),
                c.children.len(),
            )
        })
        .collect();
    assert_eq!(areas.len(), 7, "{areas:?}");
    assert_eq!(areas[0], ("Develop cross-border trade e-commerce", 3));
    assert_eq!(areas[6], ("Develop offshore service outsourcing", 2));
    let counts: Vec<usize> = areas.iter().map(|a| a.1).collect();
    assert_eq!(counts, vec![3, 2, 2, 2, 1, 3, 2]);
    // The headline target (30 billion USD in 2020) belongs to no area; no figures are
    // loaded, so it cannot be assessed, and the answer says why.
    assert_eq!(card.targets.len(), 1);
    let headline = &card.targets[0];
    assert_eq!(
        headline.target,
        "programs/cq-2015-service-trade/targets/services-trade-2020"
    );
    assert_eq!(
        headline.status,
        Status::NotAssessable as i32,
        "{headline:?}"
    );
    assert!(!headline.reason.is_empty());
    assert_eq!(headline.latest_value, "");
}

// ---------------------------------------------------------------------------------------
// Year-to-date releases, the cumulative view and honest targets (issue 12)

fn rates(r: &pb::QuerySeriesResponse) -> Vec<(&str, Option<f64>)> {
    r.points
        .iter()
        .map(|p| (p.period.as_str(), p.rate))
        .collect()
}

#[track_caller]
fn assert_rates(got: &[(&str, Option<f64>)], want: &[(&str, f64)]) {
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((gp, gr), (wp, wr)) in got.iter().zip(want) {
        assert_eq!(gp, wp);
        assert_close(*gr, *wr, gp);
    }
}

/// MOFCOM-style releases: the first of each year is January–February.
async fn mofcom_releases(app: &mut TestApp, c: &mut Clients) {
    create_indicator(app, "ytd", |i| {
        monthly(i);
        i.year_to_date = true;
    })
    .await;
    c.write(
        "ytd",
        &[
            ("2020-M02", "30"),
            ("2020-M03", "50"),
            ("2020-M06", "100"),
            ("2020-M09", "160"),
            ("2020-M12", "220"),
            ("2021-M02", "36"),
            ("2021-M03", "60"),
            ("2021-M06", "115"),
            ("2021-M09", "176"),
        ],
    )
    .await;
}

#[tokio::test]
async fn year_to_date_periods_are_complete_from_the_releases_at_their_ends() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    mofcom_releases(&mut app, &mut c).await;

    let q = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            ..series_request("ytd")
        })
        .await;
    // Q1 = the January–March release; later quarters the difference of the releases at
    // their ends: 2020 50, 100 − 50 = 50, 160 − 100 = 60, 220 − 160 = 60;
    // 2021 60, 115 − 60 = 55, 176 − 115 = 61. No January release is needed.
    assert_eq!(
        values(&q),
        vec![
            ("2020-Q1", "50"),
            ("2020-Q2", "50"),
            ("2020-Q3", "60"),
            ("2020-Q4", "60"),
            ("2021-Q1", "60"),
            ("2021-Q2", "55"),
            ("2021-Q3", "61"),
        ]
    );
    assert!(
        q.points
            .iter()
            .all(|p| !p.partial && p.parts == 3 && p.expected_parts == 3),
        "{:?}",
        parts(&q)
    );
    // Half years: 2020-S1 = 100, S2 = 220 − 100 = 120; 2021-S1 = 115.
    let s = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::HalfYearly as i32,
            ..series_request("ytd")
        })
        .await;
    assert_eq!(
        values(&s),
        vec![
            ("2020-S1", "100"),
            ("2020-S2", "120"),
            ("2021-S1", "115"),
            ("2021-S2", "")
        ]
    );
    // 2021-S2 lacks the December release: partial. Of its months only none is known
    // alone (each needs the month before): 0 of 6.
    assert_eq!(parts(&s)[3], ("2021-S2", true, 0, 6));
    // The year 2020 is the December release, 220; 2021 has none yet: partial, and of
    // its months only March (60 − 36 = 24) is known alone.
    let y = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Annual as i32,
            ..series_request("ytd")
        })
        .await;
    assert_eq!(values(&y), vec![("2020", "220"), ("2021", "")]);
    assert_eq!(parts(&y)[1], ("2021", true, 1, 12));
}

#[tokio::test]
async fn the_cumulative_view_and_its_growth_on_a_year_earlier() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    mofcom_releases(&mut app, &mut c).await;
    let cumulative = |id: &str, t: pb::Transform| pb::QuerySeriesRequest {
        start_period: "2021-M01".into(),
        transform: t as i32,
        ..series_request(id)
    };

    // The releases as published.
    let levels = c.series(cumulative("ytd", pb::Transform::YearToDate)).await;
    assert_eq!(levels.transform, pb::Transform::YearToDate as i32);
    assert_eq!(
        values(&levels),
        vec![
            ("2021-M02", "36"),
            ("2021-M03", "60"),
            ("2021-M06", "115"),
            ("2021-M09", "176"),
        ]
    );
    // The headlines: January–February 36 / 30 − 1 = +20 %, January–March 60 / 50 − 1 =
    // +20 %, January–June 115 / 100 − 1 = +15 %, January–September 176 / 160 − 1 = +10 %.
    let yoy = c
        .series(cumulative(
            "ytd",
            pb::Transform::YearToDatePercentChangeYearAgo,
        ))
        .await;
    assert_rates(
        &rates(&yoy),
        &[
            ("2021-M02", 20.0),
            ("2021-M03", 20.0),
            ("2021-M06", 15.0),
            ("2021-M09", 10.0),
        ],
    );
    // Quarterly: each quarter's last release (2021-Q3: January–September 176).
    let q = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            start_period: "2021-Q1".into(),
            ..cumulative("ytd", pb::Transform::YearToDateChangeYearAgo)
        })
        .await;
    // 60 − 50 = 10, 115 − 100 = 15, 176 − 160 = 16.
    assert_eq!(
        values(&q),
        vec![("2021-Q1", "10"), ("2021-Q2", "15"), ("2021-Q3", "16")]
    );

    // An indicator stored month by month: summed from January.
    create_indicator(&mut app, "flow", monthly).await;
    c.write(
        "flow",
        &[
            ("2020-M01", "10"),
            ("2020-M02", "15"),
            ("2020-M03", "20"),
            ("2021-M01", "11"),
            ("2021-M02", "19"),
            ("2021-M03", "24"),
        ],
    )
    .await;
    let sums = c
        .series(cumulative("flow", pb::Transform::YearToDate))
        .await;
    // 11, 11 + 19 = 30, 30 + 24 = 54.
    assert_eq!(
        values(&sums),
        vec![("2021-M01", "11"), ("2021-M02", "30"), ("2021-M03", "54")]
    );
    assert_eq!(parts(&sums)[2], ("2021-M03", false, 3, 3));
    // On 10, 25, 45 a year earlier: +10 %, +20 %, +20 %.
    let yoy = c
        .series(cumulative(
            "flow",
            pb::Transform::YearToDatePercentChangeYearAgo,
        ))
        .await;
    assert_rates(
        &rates(&yoy),
        &[("2021-M01", 10.0), ("2021-M02", 20.0), ("2021-M03", 20.0)],
    );

    // What cannot be right is refused.
    create_indicator(&mut app, "rate", |i| {
        monthly(i);
        i.unit = "%".into();
        i.unit_multiplier = 0;
        i.aggregation = pb::indicator::Aggregation::Average as i32;
    })
    .await;
    let err = c
        .reports
        .query_series(cumulative("rate", pb::Transform::YearToDate))
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "transform"), "CUMULATIVE_NEEDS_SUM");
}

#[tokio::test]
async fn the_scorecard_shows_a_year_to_date_indicator_as_published() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("sc").await;
    mofcom_releases(&mut app, &mut c).await;
    create_initiative(&mut app, "trade", |i| {
        i.indicators = vec!["indicators/ytd".into()];
    })
    .await;
    let card = c
        .reports
        .get_program_scorecard(pb::GetProgramScorecardRequest {
            name: "programs/sc".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    let latest = &card.initiatives[0].indicators[0];
    // The latest release, January–September 2021: 176, on 160 a year earlier: +16,
    // 16 / 160 = +10 % (not the de-cumulated September).
    assert!(latest.cumulative);
    assert_eq!(
        (latest.period.as_str(), latest.value.as_str()),
        ("2021-M09", "176")
    );
    assert_eq!(latest.change_year_ago, "16");
    assert_close(latest.percent_change_year_ago, 10.0, "percent change");
}

#[tokio::test]
async fn a_breakdown_of_percentages_has_no_total_and_no_shares() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    for (id, category, value) in [("growth-sc", "SC", "5"), ("growth-si", "SI", "3")] {
        create_indicator(&mut app, id, |i| {
            i.service_category = category.into();
            i.unit = "%".into();
            i.unit_multiplier = 0;
            i.aggregation = pb::indicator::Aggregation::Average as i32;
        })
        .await;
        c.write(id, &[("2020", value)]).await;
    }
    let b = c.breakdown(breakdown_request("2020")).await;
    // 5 % and 3 % are not 8 %: each group its own value, no total, no shares.
    assert!(b.non_additive);
    assert_eq!(
        groups(&b),
        vec![
            ("SC", "5", vec!["indicators/growth-sc"]),
            ("SI", "3", vec!["indicators/growth-si"]),
        ]
    );
    assert_eq!(b.total, "");
    assert!(b.groups.iter().all(|g| g.share == 0.0), "{b:?}");

    // Grouped by flow, both fall in one group: no value for it either.
    let by_flow = c
        .breakdown(pb::QueryBreakdownRequest {
            group_by: pb::BreakdownDimension::Flow as i32,
            ..breakdown_request("2020")
        })
        .await;
    assert_eq!(
        groups(&by_flow),
        vec![(
            "export",
            "",
            vec!["indicators/growth-sc", "indicators/growth-si"]
        )]
    );
}

#[tokio::test]
async fn a_target_still_to_come_is_judged_by_its_path() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("p").await;
    create_indicator(&mut app, "future", |_| {}).await;
    c.write("future", &[("2024", "100"), ("2026", "121")]).await;
    app.create_target(
        "p",
        "t-2040",
        pb::Target {
            title: "400 × 10^8 USD in 2040".into(),
            target_value: "400".into(),
            unit_multiplier: 8,
            target_period: "2040".into(),
            ..level_target("indicators/future")
        },
    )
    .await
    .unwrap();
    let p = c.progress("programs/p/targets/t-2040", None).await;
    // observed = (121 / 100)^(1/2) − 1 = 0.1; required = 4^(1/16) − 1
    // = exp(1.38629436 / 16) − 1 = exp(0.08664340) − 1 = 0.09050773;
    // R = 0.1 / 0.09050773 = 1.104877 ≥ 0.95: on track.
    assert_close(p.observed_cagr, 0.1, "observed CAGR");
    assert_close(p.required_cagr, 0.090_507_733, "required CAGR");
    assert_eq!(p.status, Status::OnTrack as i32, "{p:?}");
    assert_eq!(
        p.reason,
        "observed growth 10.00 % a year since 2024 against 9.05 % a year required to reach \
         the target"
    );
}

// ---------------------------------------------------------------------------------------
// QuerySeriesVintages and ListSeriesVintages

impl Clients {
    async fn vintages(
        &mut self,
        req: pb::QuerySeriesVintagesRequest,
    ) -> pb::QuerySeriesVintagesResponse {
        self.reports
            .query_series_vintages(req.clone())
            .await
            .unwrap_or_else(|e| panic!("QuerySeriesVintages {req:?}: {e:?}"))
            .into_inner()
    }

    async fn vintage_list(
        &mut self,
        req: pb::ListSeriesVintagesRequest,
    ) -> pb::ListSeriesVintagesResponse {
        self.reports
            .list_series_vintages(req.clone())
            .await
            .unwrap_or_else(|e| panic!("ListSeriesVintages {req:?}: {e:?}"))
            .into_inner()
    }

    /// Writes like [`Clients::write`] and returns the write's instant (its versions'
    /// `known_from`).
    async fn write_at(&mut self, id: &str, values: &[(&str, &str)]) -> prost_types::Timestamp {
        let written = self.write(id, values).await;
        let t = written[0].known_from.expect("known_from");
        assert!(written.iter().all(|o| o.known_from == Some(t)));
        t
    }
}

fn vintages_request(id: &str) -> pb::QuerySeriesVintagesRequest {
    pb::QuerySeriesVintagesRequest {
        indicator: format!("indicators/{id}"),
        ..Default::default()
    }
}

fn list_request(id: &str) -> pb::ListSeriesVintagesRequest {
    pb::ListSeriesVintagesRequest {
        indicator: format!("indicators/{id}"),
        ..Default::default()
    }
}

fn vintage_point<'a>(
    r: &'a pb::QuerySeriesVintagesResponse,
    period: &str,
) -> &'a pb::SeriesVintagePoint {
    r.points
        .iter()
        .find(|p| p.period == period)
        .unwrap_or_else(|| panic!("no point {period} in {:?}", r.points))
}

/// `(period, first release, latest, revision, revised)` of each point.
fn releases(r: &pb::QuerySeriesVintagesResponse) -> Vec<(&str, &str, &str, &str, bool)> {
    r.points
        .iter()
        .map(|p| {
            (
                p.period.as_str(),
                p.first_release_value.as_str(),
                p.latest_value.as_str(),
                p.revision.as_str(),
                p.revised,
            )
        })
        .collect()
}

/// Three writes of a monthly sum: t1 publishes 2019 (month × 10) and 2020-M01 15,
/// 2020-M02 25; t2 publishes 2020-M03 35 and revises 2019-M03 30 → 33; t3 revises
/// 2020-M01 15 → 18 and publishes 2020-M04 45.
async fn three_vintages(c: &mut Clients, id: &str) -> [prost_types::Timestamp; 3] {
    let mut first: Vec<(String, String)> = (1..=12)
        .map(|m| (format!("2019-M{m:02}"), (m * 10).to_string()))
        .collect();
    first.push(("2020-M01".into(), "15".into()));
    first.push(("2020-M02".into(), "25".into()));
    let pairs: Vec<(&str, &str)> = first
        .iter()
        .map(|(p, v)| (p.as_str(), v.as_str()))
        .collect();
    let t1 = c.write_at(id, &pairs).await;
    let t2 = c
        .write_at(id, &[("2020-M03", "35"), ("2019-M03", "33")])
        .await;
    let t3 = c
        .write_at(id, &[("2020-M01", "18"), ("2020-M04", "45")])
        .await;
    [t1, t2, t3]
}

#[tokio::test]
async fn vintages_first_release_latest_and_revision_per_month() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "vintage-m", monthly).await;
    let [t1, t2, t3] = three_vintages(&mut c, "vintage-m").await;

    let r = c
        .vintages(pb::QuerySeriesVintagesRequest {
            start_period: "2019-M02".into(),
            ..vintages_request("vintage-m")
        })
        .await;
    assert_eq!((r.unit.as_str(), r.unit_multiplier), ("USD", 8));
    assert_eq!(r.frequency, pb::Frequency::Monthly as i32);
    assert_eq!(r.transform, pb::Transform::Level as i32);
    assert_eq!(r.vintage_count, 3);
    // 2019-M02 .. 2020-M04: 11 + 4 periods.
    assert_eq!(r.points.len(), 15);
    let rows = releases(&r);
    assert_eq!(rows[0], ("2019-M02", "20", "20", "0", false));
    // Revised 30 → 33 at t2: revision 3.
    assert_eq!(rows[1], ("2019-M03", "30", "33", "3", true));
    let m3 = vintage_point(&r, "2019-M03");
    assert_eq!(
        (m3.first_release_time, m3.latest_time),
        (Some(t1), Some(t2))
    );
    // 2020-M01: 15 at t1, 18 at t3.
    assert_eq!(rows[11], ("2020-M01", "15", "18", "3", true));
    let jan = vintage_point(&r, "2020-M01");
    assert_eq!(
        (jan.first_release_time, jan.latest_time),
        (Some(t1), Some(t3))
    );
    // 2020-M02 never revised: latest known since t1.
    let feb = vintage_point(&r, "2020-M02");
    assert_eq!(
        (
            feb.first_release_value.as_str(),
            feb.latest_value.as_str(),
            feb.revised
        ),
        ("25", "25", false)
    );
    assert_eq!(feb.latest_time, Some(t1));
    assert_eq!(rows[13], ("2020-M03", "35", "35", "0", false));
    assert_eq!(vintage_point(&r, "2020-M03").first_release_time, Some(t2));
    assert_eq!(rows[14], ("2020-M04", "45", "45", "0", false));
    assert_eq!(vintage_point(&r, "2020-M04").first_release_time, Some(t3));
    assert!(r.points.iter().all(|p| !p.partial && p.parts == 1));

    // The latest equals QuerySeries now.
    let now = c
        .series(pb::QuerySeriesRequest {
            start_period: "2019-M02".into(),
            ..series_request("vintage-m")
        })
        .await;
    let latest: Vec<(&str, &str)> = r
        .points
        .iter()
        .map(|p| (p.period.as_str(), p.latest_value.as_str()))
        .collect();
    assert_eq!(latest, values(&now));

    // Change on a year earlier, first released: 2020-M01 = 15 − 10 = 5 at t1; latest
    // 18 − 10 = 8 (t3). 2020-M03 is first released at t2, when 2019-M03 is already
    // revised to 33: 35 − 33 = 2 (not 35 − 30).
    let change = c
        .vintages(pb::QuerySeriesVintagesRequest {
            transform: pb::Transform::ChangeYearAgo as i32,
            start_period: "2020-M01".into(),
            ..vintages_request("vintage-m")
        })
        .await;
    assert_eq!(
        releases(&change),
        vec![
            ("2020-M01", "5", "8", "3", true),
            ("2020-M02", "5", "5", "0", false),
            ("2020-M03", "2", "2", "0", false),
            ("2020-M04", "5", "5", "0", false),
        ]
    );

    // As of t2: t3 is not known yet; 2020-M01's latest is its first release.
    let at_t2 = c
        .vintages(pb::QuerySeriesVintagesRequest {
            as_of: Some(t2),
            start_period: "2020-M01".into(),
            ..vintages_request("vintage-m")
        })
        .await;
    assert_eq!(at_t2.vintage_count, 2);
    assert_eq!(at_t2.as_of, Some(t2));
    assert_eq!(
        releases(&at_t2),
        vec![
            ("2020-M01", "15", "15", "0", false),
            ("2020-M02", "25", "25", "0", false),
            ("2020-M03", "35", "35", "0", false),
        ]
    );
}

#[tokio::test]
async fn vintages_of_a_quarterly_roll_up_and_a_first_release_growth_rate() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "vintage-q", monthly).await;
    let [t1, t2, t3] = three_vintages(&mut c, "vintage-q").await;

    let q = c
        .vintages(pb::QuerySeriesVintagesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            ..vintages_request("vintage-q")
        })
        .await;
    assert_eq!(q.frequency, pb::Frequency::Quarterly as i32);
    // 2019-Q1: 10 + 20 + 30 = 60 at t1, 10 + 20 + 33 = 63 at t2.
    // 2019-Q2..Q4: 150, 240, 330 since t1.
    // 2020-Q1: two months at t1 (no release); complete at t2: 15 + 25 + 35 = 75; at t3
    // 18 + 25 + 35 = 78.
    // 2020-Q2: April only: partial, never released.
    assert_eq!(
        releases(&q),
        vec![
            ("2019-Q1", "60", "63", "3", true),
            ("2019-Q2", "150", "150", "0", false),
            ("2019-Q3", "240", "240", "0", false),
            ("2019-Q4", "330", "330", "0", false),
            ("2020-Q1", "75", "78", "3", true),
            ("2020-Q2", "", "", "", false),
        ]
    );
    let q1 = vintage_point(&q, "2020-Q1");
    assert_eq!(
        q1.first_release_time,
        Some(t2),
        "released once March is known"
    );
    assert_eq!(q1.latest_time, Some(t3));
    assert_eq!((q1.partial, q1.parts, q1.expected_parts), (false, 3, 3));
    assert_eq!(vintage_point(&q, "2019-Q1").first_release_time, Some(t1));
    let q2 = vintage_point(&q, "2020-Q2");
    assert_eq!((q2.partial, q2.parts, q2.expected_parts), (true, 1, 3));
    assert_eq!((q2.first_release_time, q2.latest_time), (None, None));

    // Percent change on a year earlier, first released: 2020-Q1 at t2 against 2019-Q1
    // as known at t2 (63, already revised): 75 / 63 − 1 = 19.047619 % (not 75 / 60 − 1
    // = 25 %). Latest: 78 / 63 − 1 = 23.809524 %. Revision: 3 / 63 = 4.761905 pp.
    let g = c
        .vintages(pb::QuerySeriesVintagesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            transform: pb::Transform::PercentChangeYearAgo as i32,
            start_period: "2020-Q1".into(),
            ..vintages_request("vintage-q")
        })
        .await;
    assert_eq!(
        g.points
            .iter()
            .map(|p| p.period.as_str())
            .collect::<Vec<_>>(),
        vec!["2020-Q1", "2020-Q2"]
    );
    let g1 = vintage_point(&g, "2020-Q1");
    assert_close(
        g1.first_release_rate,
        75.0 / 63.0 * 100.0 - 100.0,
        "first rate",
    );
    assert_close(g1.latest_rate, 78.0 / 63.0 * 100.0 - 100.0, "latest rate");
    assert_close(g1.revision_rate, 3.0 / 63.0 * 100.0, "revision rate");
    assert!(g1.revised);
    assert_eq!(
        (g1.first_release_value.as_str(), g1.revision.as_str()),
        ("", "")
    );
    assert_eq!(
        (g1.first_release_time, g1.latest_time),
        (Some(t2), Some(t3))
    );
    let g2 = vintage_point(&g, "2020-Q2");
    assert_eq!((g2.first_release_rate, g2.latest_rate), (None, None));

    // The latest equals QuerySeries' answer.
    let now = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            transform: pb::Transform::PercentChangeYearAgo as i32,
            start_period: "2020-Q1".into(),
            ..series_request("vintage-q")
        })
        .await;
    assert_eq!(now.points[0].rate, g1.latest_rate);
}

#[tokio::test]
async fn vintage_list_gives_the_write_instants_and_each_is_an_as_of() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "vintage-l", monthly).await;
    let [t1, t2, t3] = three_vintages(&mut c, "vintage-l").await;

    let list = c.vintage_list(list_request("vintage-l")).await;
    assert_eq!(list.next_page_token, "");
    let summary: Vec<(Option<prost_types::Timestamp>, i32, i32, i32)> = list
        .vintages
        .iter()
        .map(|v| (v.time, v.versions, v.periods_changed, v.periods_deleted))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some(t1), 14, 14, 0),
            (Some(t2), 2, 2, 0),
            (Some(t3), 2, 2, 0)
        ]
    );
    assert_eq!(list.vintages[0].periods.len(), 14);
    assert_eq!(list.vintages[0].periods[0], "2019-M01");
    assert_eq!(list.vintages[0].periods[13], "2020-M02");
    assert_eq!(list.vintages[1].periods, vec!["2019-M03", "2020-M03"]);
    assert_eq!(list.vintages[2].periods, vec!["2020-M01", "2020-M04"]);

    // Each listed instant, as QuerySeries' as_of, gives that vintage.
    let quarters = |t: prost_types::Timestamp| pb::QuerySeriesRequest {
        frequency: pb::Frequency::Quarterly as i32,
        as_of: Some(t),
        ..series_request("vintage-l")
    };
    let at = c.series(quarters(list.vintages[0].time.unwrap())).await;
    // t1: 2019-Q1 = 60; 2020-Q1 has two months.
    assert_eq!(
        values(&at),
        vec![
            ("2019-Q1", "60"),
            ("2019-Q2", "150"),
            ("2019-Q3", "240"),
            ("2019-Q4", "330"),
            ("2020-Q1", ""),
        ]
    );
    let at = c.series(quarters(list.vintages[1].time.unwrap())).await;
    assert_eq!(values(&at)[0], ("2019-Q1", "63"));
    assert_eq!(values(&at)[4], ("2020-Q1", "75"));
    // A microsecond before t2 is still t1's vintage.
    let before = c
        .series(pb::QuerySeriesRequest {
            as_of: just_before(&list.vintages[1].time),
            ..quarters(t1)
        })
        .await;
    assert_eq!(values(&before)[0], ("2019-Q1", "60"));
    let at = c.series(quarters(list.vintages[2].time.unwrap())).await;
    assert_eq!(values(&at)[4], ("2020-Q1", "78"));

    // Period bounds, and as_of.
    let bounded = c
        .vintage_list(pb::ListSeriesVintagesRequest {
            start_period: "2020-M01".into(),
            end_period: "2020-M03".into(),
            ..list_request("vintage-l")
        })
        .await;
    let summary: Vec<(Option<prost_types::Timestamp>, i32, Vec<String>)> = bounded
        .vintages
        .iter()
        .map(|v| (v.time, v.versions, v.periods.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some(t1), 2, vec!["2020-M01".into(), "2020-M02".into()]),
            (Some(t2), 1, vec!["2020-M03".into()]),
            (Some(t3), 1, vec!["2020-M01".into()]),
        ]
    );
    let until_t2 = c
        .vintage_list(pb::ListSeriesVintagesRequest {
            as_of: Some(t2),
            ..list_request("vintage-l")
        })
        .await;
    assert_eq!(until_t2.as_of, Some(t2));
    assert_eq!(
        until_t2.vintages.iter().map(|v| v.time).collect::<Vec<_>>(),
        vec![Some(t1), Some(t2)]
    );
}

#[tokio::test]
async fn vintages_count_deletions_and_status_only_changes_and_page() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    // Annual, 10^8 USD.
    create_indicator(&mut app, "vintage-a", |_| {}).await;
    let t1 = c
        .write_at("vintage-a", &[("2018", "21.5"), ("2019", "20.6")])
        .await;
    // The same value, now provisional: a version, but no change of value.
    let t2 = c
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: vec![pb::Observation {
                name: "indicators/vintage-a/observations/2019".into(),
                value: "20.6".into(),
                status: pb::observation::Status::Provisional as i32,
                ..Default::default()
            }],
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .observations[0]
        .known_from
        .unwrap();
    c.observations
        .delete_observation(pb::DeleteObservationRequest {
            name: "indicators/vintage-a/observations/2018".into(),
        })
        .await
        .unwrap();
    let t4 = c.write_at("vintage-a", &[("2020", "22.8")]).await;

    let list = c.vintage_list(list_request("vintage-a")).await;
    let summary: Vec<(i32, i32, i32, Vec<String>)> = list
        .vintages
        .iter()
        .map(|v| {
            (
                v.versions,
                v.periods_changed,
                v.periods_deleted,
                v.periods.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, 2, 0, vec!["2018".into(), "2019".into()]),
            (1, 0, 0, vec![]),
            (1, 1, 1, vec!["2018".into()]),
            (1, 1, 0, vec!["2020".into()]),
        ]
    );
    let t3 = list.vintages[2].time.unwrap();
    assert_eq!(
        list.vintages.iter().map(|v| v.time).collect::<Vec<_>>(),
        vec![Some(t1), Some(t2), Some(t3), Some(t4)]
    );

    // Page by page, one at a time: the same vintages; a token is bound to its request.
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let page = c
            .vintage_list(pb::ListSeriesVintagesRequest {
                page_size: 1,
                page_token: token.clone(),
                ..list_request("vintage-a")
            })
            .await;
        assert!(page.vintages.len() <= 1);
        paged.extend(page.vintages);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        let err = c
            .reports
            .list_series_vintages(pb::ListSeriesVintagesRequest {
                page_size: 1,
                page_token: token.clone(),
                start_period: "2019".into(),
                ..list_request("vintage-a")
            })
            .await
            .unwrap_err();
        assert_invalid(&err, "page_token");
    }
    assert_eq!(paged, list.vintages);

    // Only 2019 and later: t3 (2018's deletion) changed none of them.
    let later = c
        .vintage_list(pb::ListSeriesVintagesRequest {
            start_period: "2019".into(),
            ..list_request("vintage-a")
        })
        .await;
    assert_eq!(
        later.vintages.iter().map(|v| v.time).collect::<Vec<_>>(),
        vec![Some(t1), Some(t2), Some(t4)]
    );

    // 2018 was deleted at t3: released, then lost (revised, no latest value, no
    // revision). 2019 is unchanged since t1 (a status change is no revision).
    let r = c.vintages(vintages_request("vintage-a")).await;
    assert_eq!(r.vintage_count, 4);
    assert_eq!(
        releases(&r),
        vec![
            ("2018", "21.5", "", "", true),
            ("2019", "20.6", "20.6", "0", false),
            ("2020", "22.8", "22.8", "0", false),
        ]
    );
    let y2018 = vintage_point(&r, "2018");
    assert_eq!(
        (y2018.first_release_time, y2018.latest_time),
        (Some(t1), Some(t3))
    );
    assert_eq!(vintage_point(&r, "2019").latest_time, Some(t1));
    // The listed instant is exactly the deletion's: as of t3 2018 is gone, a
    // microsecond before it is there.
    let at_t3 = c
        .series(pb::QuerySeriesRequest {
            as_of: Some(t3),
            ..series_request("vintage-a")
        })
        .await;
    assert_eq!(values(&at_t3), vec![("2019", "20.6")]);
    let before_t3 = c
        .series(pb::QuerySeriesRequest {
            as_of: just_before(&Some(t3)),
            ..series_request("vintage-a")
        })
        .await;
    assert_eq!(values(&before_t3), vec![("2018", "21.5"), ("2019", "20.6")]);

    // Percent change: 2019 first released at t1, 20.6 / 21.5 − 1 = −4.186047 %; lost
    // at t3 with 2018. 2020 at t4: 22.8 / 20.6 − 1 = 10.679612 %.
    let g = c
        .vintages(pb::QuerySeriesVintagesRequest {
            transform: pb::Transform::PercentChange as i32,
            ..vintages_request("vintage-a")
        })
        .await;
    let g19 = vintage_point(&g, "2019");
    assert_close(
        g19.first_release_rate,
        (20.6 / 21.5 - 1.0) * 100.0,
        "2019 first",
    );
    assert_eq!(
        (g19.latest_rate, g19.revision_rate, g19.revised),
        (None, None, true)
    );
    assert_eq!(
        (g19.first_release_time, g19.latest_time),
        (Some(t1), Some(t3))
    );
    let g20 = vintage_point(&g, "2020");
    assert_close(
        g20.first_release_rate,
        (22.8 / 20.6 - 1.0) * 100.0,
        "2020 first",
    );
    assert_close(g20.revision_rate.map(|r| r + 1.0), 1.0, "2020 revision + 1");
    assert_eq!(g20.first_release_time, Some(t4));
}

#[tokio::test]
async fn vintages_refuse_bad_input_and_unknown_indicators() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "vintage-bad", monthly).await;
    let err = c
        .reports
        .query_series_vintages(pb::QuerySeriesVintagesRequest {
            start_period: "2020-M13".into(),
            ..vintages_request("vintage-bad")
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "start_period");
    let err = c
        .reports
        .query_series_vintages(pb::QuerySeriesVintagesRequest {
            start_period: "2020".into(),
            ..vintages_request("vintage-bad")
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "start_period");
    assert_eq!(reason(&err), "PERIOD_FREQUENCY_MISMATCH");
    let err = c
        .reports
        .query_series_vintages(pb::QuerySeriesVintagesRequest {
            transform: 99,
            indicator: "nope/x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "transform");
    assert_invalid(&err, "indicator");
    let err = c
        .reports
        .query_series_vintages(vintages_request("no-such-indicator"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let err = c
        .reports
        .list_series_vintages(pb::ListSeriesVintagesRequest {
            start_period: "2020-Q1".into(),
            ..list_request("vintage-bad")
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "start_period");
    let err = c
        .reports
        .list_series_vintages(pb::ListSeriesVintagesRequest {
            end_period: "20x0".into(),
            page_size: -1,
            ..list_request("vintage-bad")
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "end_period");
    let err = c
        .reports
        .list_series_vintages(pb::ListSeriesVintagesRequest {
            page_token: "forged".into(),
            ..list_request("vintage-bad")
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "page_token");
    let err = c
        .reports
        .list_series_vintages(list_request("no-such-indicator"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // An indicator without figures has no vintages.
    let empty = c.vintage_list(list_request("vintage-bad")).await;
    assert!(empty.vintages.is_empty());
    let r = c.vintages(vintages_request("vintage-bad")).await;
    assert_eq!((r.points.len(), r.vintage_count), (0, 0));
}

// ---------------------------------------------------------------------------------------
// Currency conversion (issue 12)

/// The annual average CNY per USD rate `cny-usd` with hand-picked figures: 2015 6.25,
/// 2018 6.65, 2019 7, 2020 6.4, 2021 6.45 (none for 2022).
async fn cny_per_usd(app: &mut TestApp, c: &mut Clients) {
    create_indicator(app, "cny-usd", |i| {
        i.title = "CNY per USD, annual average".into();
        yuan_per_dollar(i);
    })
    .await;
    c.write(
        "cny-usd",
        &[
            ("2015", "6.25"),
            ("2018", "6.65"),
            ("2019", "7"),
            ("2020", "6.4"),
            ("2021", "6.45"),
        ],
    )
    .await;
}

/// Makes `i` an exchange rate: yuan per dollar, an average, not a trade flow.
fn yuan_per_dollar(i: &mut pb::Indicator) {
    i.unit = "CNY/USD".into();
    i.unit_multiplier = 0;
    i.flow = pb::indicator::Flow::None as i32;
    i.service_category = String::new();
    i.dimensions.clear();
    i.aggregation = pb::indicator::Aggregation::Average as i32;
}

fn into(currency: &str, rate: &str) -> Option<pb::CurrencyConversion> {
    Some(pb::CurrencyConversion {
        currency: currency.into(),
        exchange_rate: format!("indicators/{rate}"),
    })
}

/// `(period, value, rate period, rate)` of each point.
fn converted(r: &pb::QuerySeriesResponse) -> Vec<(&str, &str, &str, &str)> {
    r.points
        .iter()
        .map(|p| {
            let (rp, rate) = p
                .exchange_rate
                .as_ref()
                .map_or(("", ""), |e| (e.period.as_str(), e.rate.as_str()));
            (p.period.as_str(), p.value.as_str(), rp, rate)
        })
        .collect()
}

#[tokio::test]
async fn a_series_in_another_currency_at_each_periods_rate() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    cny_per_usd(&mut app, &mut c).await;
    create_indicator(&mut app, "trade-cny", |i| i.unit = "CNY".into()).await;
    c.write(
        "trade-cny",
        &[
            ("2019", "1400"),
            ("2020", "1600"),
            ("2021", "1000"),
            ("2022", "500"),
        ],
    )
    .await;
    let usd = c
        .series(pb::QuerySeriesRequest {
            conversion: into("USD", "cny-usd"),
            ..series_request("trade-cny")
        })
        .await;
    assert_eq!((usd.unit.as_str(), usd.unit_multiplier), ("USD", 8));
    assert_eq!(usd.converted_from, "CNY");
    // 1400 / 7 = 200; 1600 / 6.4 = 250; 1000 / 6.45 = 155.0387596899… → 155.038760 at 6
    // decimals; 2022 has no rate: no value, never another year's rate.
    assert_eq!(
        converted(&usd),
        vec![
            ("2019", "200", "2019", "7"),
            ("2020", "250", "2020", "6.4"),
            ("2021", "155.03876", "2021", "6.45"),
            ("2022", "", "", ""),
        ]
    );
    // Growth in dollars: 250 / 200 − 1 = +25 % (in yuan it is 1600 / 1400 − 1 = 14.29 %).
    let growth = c
        .series(pb::QuerySeriesRequest {
            start_period: "2020".into(),
            end_period: "2020".into(),
            transform: pb::Transform::PercentChangeYearAgo as i32,
            conversion: into("USD", "cny-usd"),
            ..series_request("trade-cny")
        })
        .await;
    assert_close(growth.points[0].rate, 25.0, "growth in USD");

    // Dollars into yuan multiply: 22.8 × 6.4 = 145.92.
    create_indicator(&mut app, "trade-usd", |_| {}).await;
    c.write("trade-usd", &[("2020", "22.8")]).await;
    let cny = c
        .series(pb::QuerySeriesRequest {
            conversion: into("CNY", "cny-usd"),
            ..series_request("trade-usd")
        })
        .await;
    assert_eq!(cny.unit, "CNY");
    assert_eq!(converted(&cny), vec![("2020", "145.92", "2020", "6.4")]);

    // Monthly values with only annual rates: the year's rate, and it says so.
    create_indicator(&mut app, "monthly-cny", |i| {
        monthly(i);
        i.unit = "CNY".into();
    })
    .await;
    c.write(
        "monthly-cny",
        &[("2020-M01", "64"), ("2020-M02", "65"), ("2020-M03", "63")],
    )
    .await;
    let m = c
        .series(pb::QuerySeriesRequest {
            conversion: into("USD", "cny-usd"),
            ..series_request("monthly-cny")
        })
        .await;
    // 64 / 6.4 = 10; 65 / 6.4 = 10.15625; 63 / 6.4 = 9.84375.
    assert_eq!(
        converted(&m),
        vec![
            ("2020-M01", "10", "2020", "6.4"),
            ("2020-M02", "10.15625", "2020", "6.4"),
            ("2020-M03", "9.84375", "2020", "6.4"),
        ]
    );
    // With monthly rates too, each month at its own; the quarter at the quarter's
    // average rate (6.4 + 6.5 + 6.3) / 3 = 6.4: 192 / 6.4 = 30.
    create_indicator(&mut app, "cny-usd-m", |i| {
        monthly(i);
        yuan_per_dollar(i);
    })
    .await;
    c.write(
        "cny-usd-m",
        &[
            ("2020-M01", "6.4"),
            ("2020-M02", "6.5"),
            ("2020-M03", "6.3"),
        ],
    )
    .await;
    let m = c
        .series(pb::QuerySeriesRequest {
            conversion: into("USD", "cny-usd-m"),
            ..series_request("monthly-cny")
        })
        .await;
    assert_eq!(
        converted(&m),
        vec![
            ("2020-M01", "10", "2020-M01", "6.4"),
            ("2020-M02", "10", "2020-M02", "6.5"),
            ("2020-M03", "10", "2020-M03", "6.3"),
        ]
    );
    let q = c
        .series(pb::QuerySeriesRequest {
            frequency: pb::Frequency::Quarterly as i32,
            conversion: into("USD", "cny-usd-m"),
            ..series_request("monthly-cny")
        })
        .await;
    assert_eq!(converted(&q), vec![("2020-Q1", "30", "2020-Q1", "6.4")]);

    // Already in the currency asked: unchanged, no rate.
    let same = c
        .series(pb::QuerySeriesRequest {
            conversion: into("USD", "cny-usd"),
            ..series_request("trade-usd")
        })
        .await;
    assert_eq!(converted(&same), vec![("2020", "22.8", "", "")]);
    assert_eq!(same.converted_from, "");
}

#[tokio::test]
async fn conversions_that_cannot_be_right_are_refused() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    cny_per_usd(&mut app, &mut c).await;
    create_indicator(&mut app, "trade-cny", |i| {
        monthly(i);
        i.unit = "CNY".into();
    })
    .await;
    let ask = |conversion: Option<pb::CurrencyConversion>| pb::QuerySeriesRequest {
        conversion,
        ..series_request("trade-cny")
    };
    for (conversion, field, reason) in [
        (
            into("usd", "cny-usd"),
            "conversion.currency",
            Some("NOT_A_CURRENCY"),
        ),
        (
            into("%", "cny-usd"),
            "conversion.currency",
            Some("NOT_A_CURRENCY"),
        ),
        (
            Some(pb::CurrencyConversion {
                currency: "USD".into(),
                exchange_rate: "cny-usd".into(),
            }),
            "conversion.exchange_rate",
            None,
        ),
        // A rate between yuan and dollars cannot give euros.
        (
            into("EUR", "cny-usd"),
            "conversion.currency",
            Some("EXCHANGE_RATE_MISMATCH"),
        ),
        // An indicator in yuan is not an exchange rate.
        (
            into("USD", "trade-cny"),
            "conversion.exchange_rate",
            Some("NOT_AN_EXCHANGE_RATE"),
        ),
    ] {
        let err = c.reports.query_series(ask(conversion)).await.unwrap_err();
        let got = assert_invalid(&err, field);
        if let Some(reason) = reason {
            assert_eq!(got, reason, "{err:?}");
        }
    }
    // A year-to-date view is not converted at one period's rate.
    let err = c
        .reports
        .query_series(pb::QuerySeriesRequest {
            transform: pb::Transform::YearToDate as i32,
            ..ask(into("USD", "cny-usd"))
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "conversion"),
        "CONVERSION_OF_YEAR_TO_DATE"
    );
    // An unknown rate indicator.
    let err = c
        .reports
        .query_series(ask(into("USD", "no-such-rate")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

#[tokio::test]
async fn a_breakdown_of_yuan_and_dollar_series_in_one_currency() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    cny_per_usd(&mut app, &mut c).await;
    create_indicator(&mut app, "ex-sc", |i| i.service_category = "SC".into()).await;
    c.write("ex-sc", &[("2020", "100")]).await;
    create_indicator(&mut app, "ex-si", |i| {
        i.service_category = "SI".into();
        i.unit = "CNY".into();
    })
    .await;
    c.write("ex-si", &[("2020", "320")]).await;

    // Without a conversion: refused, as before.
    let err = c
        .reports
        .query_breakdown(breakdown_request("2020"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "MIXED_UNITS");

    // In dollars: 320 / 6.4 = 50 beside 100; total 150; shares 66.67 % and 33.33 %.
    let usd = c
        .breakdown(pb::QueryBreakdownRequest {
            conversion: into("USD", "cny-usd"),
            ..breakdown_request("2020")
        })
        .await;
    assert_eq!((usd.unit.as_str(), usd.unit_multiplier), ("USD", 8));
    assert_eq!(
        groups(&usd),
        vec![
            ("SC", "100", vec!["indicators/ex-sc"]),
            ("SI", "50", vec!["indicators/ex-si"]),
        ]
    );
    assert_eq!(usd.total, "150");
    assert_close(Some(usd.groups[0].share), 200.0 / 3.0, "SC share");
    let rate = usd.exchange_rate.as_ref().expect("the rate used");
    assert_eq!((rate.period.as_str(), rate.rate.as_str()), ("2020", "6.4"));
    // In yuan: 100 × 6.4 = 640 beside 320; total 960.
    let cny = c
        .breakdown(pb::QueryBreakdownRequest {
            conversion: into("CNY", "cny-usd"),
            ..breakdown_request("2020")
        })
        .await;
    assert_eq!(cny.unit, "CNY");
    assert_eq!(cny.total, "960");
    // A year without a rate: the yuan series is missing, never converted at another.
    c.write("ex-sc", &[("2022", "100")]).await;
    c.write("ex-si", &[("2022", "320")]).await;
    let no_rate = c
        .breakdown(pb::QueryBreakdownRequest {
            conversion: into("USD", "cny-usd"),
            ..breakdown_request("2022")
        })
        .await;
    assert_eq!(no_rate.missing, vec!["indicators/ex-si"]);
    assert_eq!(no_rate.total, "100");
    assert!(no_rate.exchange_rate.is_none());
}

#[tokio::test]
async fn target_progress_in_another_currency() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    app.create_program("p").await;
    cny_per_usd(&mut app, &mut c).await;
    create_indicator(&mut app, "services-cny", |i| i.unit = "CNY".into()).await;
    c.write(
        "services-cny",
        &[("2015", "1000"), ("2018", "1330"), ("2020", "1600")],
    )
    .await;
    app.create_target(
        "p",
        "t",
        pb::Target {
            title: "1800 × 10^8 CNY in 2020".into(),
            target_value: "1800".into(),
            unit_multiplier: 8,
            target_period: "2020".into(),
            ..level_target("indicators/services-cny")
        },
    )
    .await
    .unwrap();
    let p = c
        .reports
        .get_target_progress(pb::GetTargetProgressRequest {
            name: "programs/p/targets/t".into(),
            conversion: into("USD", "cny-usd"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Each figure at its own year's rate: baseline 1000 / 6.25 = 160, latest
    // 1600 / 6.4 = 250, target 1800 / 6.4 = 281.25 (10^8 USD).
    assert_eq!((p.unit.as_str(), p.converted_from.as_str()), ("USD", "CNY"));
    assert_eq!(
        (
            p.baseline_value.as_str(),
            p.latest_value.as_str(),
            p.target_value.as_str()
        ),
        ("160", "250", "281.25")
    );
    assert_eq!(p.status, Status::Missed as i32, "{p:?}");
    assert_eq!(
        p.reason,
        "the target period has passed: the 2020 value 250 × 10^8 USD does not meet the \
         target 281.25 × 10^8 USD"
    );
    // attainment 250 / 281.25 = 0.888889; observed (250 / 160)^(1/5) − 1
    // = exp(0.44628710 / 5) − 1 = 0.09336207; required (281.25 / 160)^(1/5) − 1
    // = exp(0.56407014 / 5) − 1 = 0.11942373.
    assert_close(p.attainment, 250.0 / 281.25, "attainment");
    assert_close(p.observed_cagr, 0.093_362_074, "observed CAGR");
    assert_close(p.required_cagr, 0.119_423_732, "required CAGR");

    // A target year without a rate: no verdict, and why.
    app.create_target(
        "p",
        "t-2030",
        pb::Target {
            target_value: "3000".into(),
            unit_multiplier: 8,
            target_period: "2030".into(),
            ..level_target("indicators/services-cny")
        },
    )
    .await
    .unwrap();
    let list = c
        .reports
        .list_target_progress(pb::ListTargetProgressRequest {
            parent: "programs/p".into(),
            conversion: into("USD", "cny-usd"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .progress;
    let later = list
        .iter()
        .find(|p| p.target == "programs/p/targets/t-2030")
        .unwrap();
    assert_eq!(later.status, Status::NotAssessable as i32, "{later:?}");
    assert_eq!(
        later.reason,
        "no exchange rate into USD for the target period 2030"
    );
    // Nothing converted: the target's own figure, in the indicator's currency.
    assert_eq!(
        (
            later.unit.as_str(),
            later.target_value.as_str(),
            later.converted_from.as_str()
        ),
        ("CNY", "3000", "")
    );
}

#[tokio::test]
async fn vintages_of_the_cumulative_view_follow_a_revision_to_the_end_of_its_year() {
    let mut app = spawn_app().await;
    let mut c = clients(&app).await;
    create_indicator(&mut app, "flow", monthly).await;
    c.write(
        "flow",
        &[
            ("2021-M01", "10"),
            ("2021-M02", "20"),
            ("2021-M03", "30"),
            ("2022-M01", "40"),
        ],
    )
    .await;
    // January 2021 revised from 10 to 15: every January-to-month total of 2021 moves by
    // 5 (10 → 15, 30 → 35, 60 → 65); 2022 does not.
    c.write("flow", &[("2021-M01", "15")]).await;
    let r = c
        .vintages(pb::QuerySeriesVintagesRequest {
            transform: pb::Transform::YearToDate as i32,
            ..vintages_request("flow")
        })
        .await;
    assert_eq!(
        releases(&r),
        vec![
            ("2021-M01", "10", "15", "5", true),
            ("2021-M02", "30", "35", "5", true),
            ("2021-M03", "60", "65", "5", true),
            ("2022-M01", "40", "40", "0", false),
        ]
    );
}
