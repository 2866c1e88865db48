//! IndicatorService.

use prost_types::FieldMask;
use tonic::Code;
use tradewatch::proto::v1 as pb;

use crate::helpers::{Case, assert_invalid, indicator, level_target, reason, spawn_app};

#[tokio::test]
async fn indicator_crud_round_trip() {
    let mut app = spawn_app().await;
    let mut ind = indicator("Offshore outsourcing, executed value");
    ind.dimensions = [
        ("outsourcing", "ITO"),
        ("shore", "OFFSHORE"),
        ("basis", "EXECUTED"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // Published as January-to-date monthly sums.
    ind.year_to_date = true;
    ind.frequency = pb::Frequency::Monthly as i32;
    ind.description = "Executed value of offshore service outsourcing.".into();
    let created = app
        .indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(ind.clone()),
            indicator_id: "cq-offshore-outsourcing".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "indicators/cq-offshore-outsourcing");
    assert_eq!(created.dimensions.len(), 3);
    assert_eq!(created.dimensions["shore"], "OFFSHORE");
    assert!(created.year_to_date);
    assert_eq!(created.unit_multiplier, 8);
    assert_eq!(created.service_category, "SJ");

    let got = app
        .indicators
        .get_indicator(pb::GetIndicatorRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    // Clearing a field (service_category) needs an explicit mask: an empty value is
    // "not set" without one.
    let updated = app
        .indicators
        .update_indicator(pb::UpdateIndicatorRequest {
            indicator: Some(pb::Indicator {
                name: created.name.clone(),
                unit: "CNY".into(),
                unit_multiplier: 4,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec![
                    "unit".into(),
                    "unit_multiplier".into(),
                    "service_category".into(),
                ],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.unit.as_str(), updated.unit_multiplier), ("CNY", 4));
    assert_eq!(updated.service_category, "");
    assert_eq!(updated.dimensions, created.dimensions);

    // The frequency cannot change.
    let err = app
        .indicators
        .update_indicator(pb::UpdateIndicatorRequest {
            indicator: Some(pb::Indicator {
                name: created.name.clone(),
                frequency: pb::Frequency::Quarterly as i32,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "indicator.frequency"), "IMMUTABLE");

    let listed = app
        .indicators
        .list_indicators(pb::ListIndicatorsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.indicators.len(), 1);

    app.indicators
        .delete_indicator(pb::DeleteIndicatorRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = app
        .indicators
        .get_indicator(pb::GetIndicatorRequest { name: created.name })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn every_invalid_indicator_field_is_named() {
    let mut app = spawn_app().await;
    let cases: Vec<Case<pb::Indicator>> = vec![
        (
            "indicator.title",
            Box::new(|i| i.title = String::new()),
            "REQUIRED",
        ),
        (
            "indicator.title",
            Box::new(|i| i.title = "x".repeat(201)),
            "TOO_LONG",
        ),
        (
            "indicator.unit",
            Box::new(|i| i.unit = "UDS".into()),
            "UNKNOWN_CURRENCY",
        ),
        (
            "indicator.unit",
            Box::new(|i| i.unit = "usd".into()),
            "NOT_UPPERCASE",
        ),
        (
            "indicator.unit",
            Box::new(|i| i.unit = "FURLONG".into()),
            "UNKNOWN_UNIT",
        ),
        (
            "indicator.unit",
            Box::new(|i| i.unit = String::new()),
            "REQUIRED",
        ),
        (
            "indicator.unit_multiplier",
            Box::new(|i| i.unit_multiplier = -10),
            "OUT_OF_RANGE",
        ),
        (
            "indicator.frequency",
            Box::new(|i| i.frequency = 0),
            "REQUIRED",
        ),
        (
            "indicator.frequency",
            Box::new(|i| i.frequency = 99),
            "INVALID_ENUM",
        ),
        ("indicator.flow", Box::new(|i| i.flow = 0), "REQUIRED"),
        (
            "indicator.aggregation",
            Box::new(|i| i.aggregation = 0),
            "REQUIRED",
        ),
        (
            "indicator.direction",
            Box::new(|i| i.direction = 0),
            "REQUIRED",
        ),
        (
            "indicator.service_category",
            Box::new(|i| i.service_category = "SZ".into()),
            "UNKNOWN_SERVICE_CATEGORY",
        ),
        (
            "indicator.region",
            Box::new(|i| i.region = "CN-XX".into()),
            "UNKNOWN_SUBDIVISION",
        ),
        (
            "indicator.region",
            Box::new(|i| i.region = String::new()),
            "REQUIRED",
        ),
        (
            "indicator.dimensions[\"Shore\"]",
            Box::new(|i| {
                i.dimensions.insert("Shore".into(), "OFFSHORE".into());
            }),
            "INVALID_DIMENSION_KEY",
        ),
        (
            "indicator.dimensions[\"flow\"]",
            Box::new(|i| {
                i.dimensions.insert("flow".into(), "X".into());
            }),
            "RESERVED_DIMENSION_KEY",
        ),
        (
            "indicator.dimensions[\"partner\"]",
            Box::new(|i| {
                i.dimensions.insert("partner".into(), "U S".into());
            }),
            "INVALID_DIMENSION_VALUE",
        ),
        (
            "indicator.dimensions",
            Box::new(|i| {
                for n in 0..17 {
                    i.dimensions.insert(format!("k{n}"), "v".into());
                }
            }),
            "TOO_MANY",
        ),
        (
            "indicator.source_agency",
            Box::new(|i| i.source_agency = "a\nb".into()),
            "CONTROL_CHARACTERS",
        ),
    ];
    for (field, change, want) in cases {
        let mut ind = indicator("Valid");
        change(&mut ind);
        let err = app
            .indicators
            .create_indicator(pb::CreateIndicatorRequest {
                request_id: String::new(),
                indicator: Some(ind),
                indicator_id: "valid".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(assert_invalid(&err, field), want, "{field}");
    }
    let err = app
        .indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(indicator("x")),
            indicator_id: "x_y".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "indicator_id"), "INVALID_ID");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM indicators")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);

    // Plain units and sub-categories are accepted.
    let mut teu = indicator("Containers");
    teu.unit = "TEU".into();
    teu.unit_multiplier = 4;
    teu.service_category = "SC1".into();
    teu.flow = pb::indicator::Flow::None as i32;
    teu.region = "CN".into();
    app.indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(teu),
            indicator_id: "teu".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn an_indicator_in_use_is_deleted_only_with_force() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    app.create_indicator("ind").await;
    app.create_indicator("spare").await;
    app.create_target("p", "t", level_target("indicators/ind"))
        .await
        .unwrap();
    app.programs
        .create_initiative(pb::CreateInitiativeRequest {
            request_id: String::new(),
            parent: "programs/p".into(),
            initiative_id: "area".into(),
            initiative: Some(pb::Initiative {
                title: "Area".into(),
                state: pb::initiative::State::Active as i32,
                indicators: vec!["indicators/spare".into(), "indicators/ind".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    let err = app
        .indicators
        .delete_indicator(pb::DeleteIndicatorRequest {
            name: "indicators/ind".into(),
            etag: String::new(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "HAS_DEPENDANTS");
    assert!(
        err.message().contains("programs/p/targets/t"),
        "{}",
        err.message()
    );

    app.indicators
        .delete_indicator(pb::DeleteIndicatorRequest {
            name: "indicators/ind".into(),
            etag: String::new(),
            force: true,
        })
        .await
        .unwrap();
    let err = app
        .programs
        .get_target(pb::GetTargetRequest {
            name: "programs/p/targets/t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "targets of a force-deleted indicator go with it"
    );
    let area = app
        .programs
        .get_initiative(pb::GetInitiativeRequest {
            name: "programs/p/initiatives/area".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(area.indicators, vec!["indicators/spare"]);

    // The database refuses to drop a referenced indicator on its own as well.
    app.create_target("p", "t2", level_target("indicators/spare"))
        .await
        .unwrap();
    let direct = sqlx::query("DELETE FROM indicators WHERE indicator_id = 'spare'")
        .execute(&app.pool)
        .await
        .unwrap_err();
    assert!(direct.to_string().contains("foreign key"), "{direct}");
}

#[tokio::test]
async fn indicators_page_in_name_order() {
    let mut app = spawn_app().await;
    for id in ["c", "a", "e", "b", "d"] {
        app.create_indicator(id).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let r = app
            .indicators
            .list_indicators(pb::ListIndicatorsRequest {
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(r.indicators.into_iter().map(|i| i.name));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(
        seen,
        ["a", "b", "c", "d", "e"].map(|x| format!("indicators/{x}"))
    );
}

#[tokio::test]
async fn an_indicator_with_observations_is_deleted_only_with_force() {
    let mut app = spawn_app().await;
    app.create_indicator("ind").await;
    app.observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: vec![pb::Observation {
                name: "indicators/ind/observations/2020".into(),
                value: "22.8".into(),
                ..Default::default()
            }],
            validate_only: false,
        })
        .await
        .unwrap();
    let err = app
        .indicators
        .delete_indicator(pb::DeleteIndicatorRequest {
            name: "indicators/ind".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("indicators/ind/observations/2020"),
        "{}",
        err.message()
    );
    // The database guards the same rule on its own (second line of defence): an
    // indicator that still has versions cannot be deleted. (Versions of an indicator
    // that does not exist cannot be written through the service: a write holds its
    // indicators' heads, which reference them; migrations/0004_concurrent_writes.sql.)
    let direct = sqlx::query("DELETE FROM indicators WHERE indicator_id = 'ind'")
        .execute(&app.pool)
        .await
        .unwrap_err();
    assert!(
        direct.to_string().contains("still has observations"),
        "{direct}"
    );

    app.indicators
        .delete_indicator(pb::DeleteIndicatorRequest {
            name: "indicators/ind".into(),
            etag: String::new(),
            force: true,
        })
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM observation_versions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// A year-to-date figure is a January-to-date sum: it de-cumulates into months only for
/// sums below a year. An average or an end-of-period stock, or an annual indicator,
/// cannot be year-to-date, on create or on update.
#[tokio::test]
async fn year_to_date_is_refused_where_it_cannot_be_right() {
    let mut app = spawn_app().await;
    let monthly_ytd = |edit: fn(&mut pb::Indicator)| {
        let mut i = indicator("Services trade, January to date");
        i.frequency = pb::Frequency::Monthly as i32;
        i.year_to_date = true;
        edit(&mut i);
        i
    };
    type Case = (&'static str, fn(&mut pb::Indicator), &'static str);
    let cases: [Case; 3] = [
        (
            "average",
            |i| i.aggregation = pb::indicator::Aggregation::Average as i32,
            "YEAR_TO_DATE_NEEDS_SUM",
        ),
        (
            "stock",
            |i| i.aggregation = pb::indicator::Aggregation::EndOfPeriod as i32,
            "YEAR_TO_DATE_NEEDS_SUM",
        ),
        (
            "annual",
            |i| i.frequency = pb::Frequency::Annual as i32,
            "YEAR_TO_DATE_ANNUAL",
        ),
    ];
    for (id, edit, want) in cases {
        let err = app
            .indicators
            .create_indicator(pb::CreateIndicatorRequest {
                request_id: String::new(),
                indicator: Some(monthly_ytd(edit)),
                indicator_id: format!("ytd-{id}"),
            })
            .await
            .unwrap_err();
        assert_eq!(assert_invalid(&err, "indicator.year_to_date"), want, "{id}");
    }
    // A monthly year-to-date sum is fine; turning it into an average is not, and
    // nothing changes.
    let created = app
        .indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(monthly_ytd(|_| {})),
            indicator_id: "ytd-sum".into(),
        })
        .await
        .expect("a monthly year-to-date sum")
        .into_inner();
    let err = app
        .indicators
        .update_indicator(pb::UpdateIndicatorRequest {
            indicator: Some(pb::Indicator {
                name: created.name.clone(),
                aggregation: pb::indicator::Aggregation::Average as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["aggregation".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "indicator.year_to_date"),
        "YEAR_TO_DATE_NEEDS_SUM"
    );
    let got = app
        .indicators
        .get_indicator(pb::GetIndicatorRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.aggregation, pb::indicator::Aggregation::Sum as i32);
    assert!(got.year_to_date);
}
