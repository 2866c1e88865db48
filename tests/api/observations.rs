//! ObservationService: revision history and as-of reads, delta sync, idempotent and
//! atomic imports, cancelled imports, the change feed, and CSV / SDMX-CSV round trips
//! through the real `tradewatch import` / `tradewatch export` CLI.
//!
//! Figures: Chongqing's offshore service-outsourcing executed value, 21.5, 20.6 and 22.8
//! (10^8 USD) for 2018, 2019 and 2020, on an annual USD indicator with unit multiplier 8.

use std::time::Duration;

use base64::Engine as _;

use pb::observation::Status as S;
use pb::observation_change::Kind;
use tonic::Code;
use tradewatch::proto::v1 as pb;

use crate::helpers::{TestApp, assert_invalid, at_micros, count, micros, obs, reason, spawn_app};

/// The annual indicator (USD, x 10^8) of every test here.
const OFFSHORE: &str = "cq-offshore";

/// `indicators/{indicator}/observations/{period}`.
fn name(indicator: &str, period: &str) -> String {
    format!("indicators/{indicator}/observations/{period}")
}

/// How long a stream may stay silent before a test gives up on it.
const PATIENCE: Duration = Duration::from_secs(10);

async fn get(
    app: &mut TestApp,
    name: &str,
    as_of: Option<i64>,
) -> Result<pb::Observation, tonic::Status> {
    app.observations
        .get_observation(pb::GetObservationRequest {
            name: name.into(),
            as_of: as_of.and_then(at_micros),
        })
        .await
        .map(|r| r.into_inner())
}

/// (period, value) of what ListObservations answers.
async fn list(app: &mut TestApp, indicator: &str, as_of: Option<i64>) -> Vec<(String, String)> {
    app.observations
        .list_observations(pb::ListObservationsRequest {
            parent: format!("indicators/{indicator}"),
            as_of: as_of.and_then(at_micros),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .observations
        .into_iter()
        .map(|o| (period_of(&o.name), o.value))
        .collect()
}

/// (period, value, deleted) of a delta sync after `updated_after`.
async fn delta(
    app: &mut TestApp,
    indicator: &str,
    updated_after: i64,
) -> Vec<(String, String, bool)> {
    app.observations
        .list_observations(pb::ListObservationsRequest {
            parent: format!("indicators/{indicator}"),
            updated_after: at_micros(updated_after),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .observations
        .into_iter()
        .map(|o| (period_of(&o.name), o.value, o.deleted))
        .collect()
}

fn period_of(name: &str) -> String {
    name.rsplit('/').next().unwrap().to_owned()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn delete(app: &mut TestApp, name: &str) -> Result<(), tonic::Status> {
    app.observations
        .delete_observation(pb::DeleteObservationRequest { name: name.into() })
        .await
        .map(|_| ())
}

async fn versions(app: &TestApp) -> i64 {
    count(&app.pool, "SELECT count(*) FROM observation_versions").await
}

/// Writes that changed something: each stamps its versions with one instant.
async fn commits(app: &TestApp) -> i64 {
    count(
        &app.pool,
        "SELECT count(DISTINCT known_from) FROM observation_versions",
    )
    .await
}

/// ImportObservations of `rows` in messages of `chunk` rows.
async fn import(
    app: &mut TestApp,
    rows: &[pb::Observation],
    chunk: usize,
    validate_only: bool,
) -> Result<pb::ImportObservationsResponse, tonic::Status> {
    let messages: Vec<pb::ImportObservationsRequest> = rows
        .chunks(chunk)
        .map(|c| pb::ImportObservationsRequest {
            request_id: String::new(),
            validate_only,
            observations: c.to_vec(),
        })
        .collect();
    app.observations
        .import_observations(tokio_stream::iter(messages))
        .await
        .map(|r| r.into_inner())
}

fn counts(r: &pb::ImportObservationsResponse) -> (i64, i64, i64) {
    (r.inserted, r.revised, r.unchanged)
}

fn batch_counts(r: &pb::BatchCreateObservationsResponse) -> (i64, i64, i64) {
    (r.inserted, r.revised, r.unchanged)
}

/// The BadRequest violations of `status` as (field, reason), in the order given.
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .expect("BadRequest detail")
        .field_violations
        .iter()
        .map(|v| (v.field.clone(), v.reason.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Revisions and as-of reads

#[tokio::test]
async fn revisions_are_kept_and_as_of_reads_answer_as_known_then() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    let y2018 = name(OFFSHORE, "2018");
    let y2019 = name(OFFSHORE, "2019");
    let y2020 = name(OFFSHORE, "2020");

    // t1: 2018 and 2019 published, provisional.
    let r1 = app
        .write(vec![
            obs(&y2018, "21.5", S::Provisional),
            obs(&y2019, "20.6", S::Provisional),
        ])
        .await;
    assert_eq!(batch_counts(&r1), (2, 0, 0));
    assert_eq!(r1.observations.len(), 2);
    assert_eq!(r1.observations[0].name, y2018);
    assert_eq!(r1.observations[0].value, "21.5");
    assert_eq!(r1.observations[0].status, S::Provisional as i32);
    assert_eq!(r1.observations[0].known_until, None);
    let t1 = micros(&r1.observations[0].known_from);
    assert_eq!(
        micros(&r1.observations[1].known_from),
        t1,
        "one commit, one instant"
    );

    // The same figure with a trailing zero is numerically equal: no new version.
    let same = app.write(vec![obs(&y2018, "21.50", S::Provisional)]).await;
    assert_eq!(batch_counts(&same), (0, 0, 1));
    assert_eq!(same.observations[0].value, "21.5");
    assert_eq!(micros(&same.observations[0].known_from), t1);

    // t2: 2018 revised and final, 2019 unchanged, 2020 new.
    let r2 = app
        .write(vec![
            obs(&y2018, "21.6", S::Normal),
            obs(&y2019, "20.6", S::Provisional),
            obs(&y2020, "22.8", S::Provisional),
        ])
        .await;
    assert_eq!(batch_counts(&r2), (1, 1, 1));
    let t2 = micros(&r2.observations[0].known_from);
    assert!(t2 > t1);
    assert_eq!(r2.observations[0].value, "21.6");
    assert_eq!(r2.observations[0].status, S::Normal as i32);
    // The unchanged one keeps its version of t1; the new one is of t2.
    assert_eq!(micros(&r2.observations[1].known_from), t1);
    assert_eq!(micros(&r2.observations[2].known_from), t2);

    // t3: 2018 deleted. A second delete finds nothing to delete and adds no version.
    delete(&mut app, &y2018).await.unwrap();
    assert_eq!(
        get(&mut app, &y2018, None).await.unwrap_err().code(),
        Code::NotFound
    );
    let err = delete(&mut app, &y2018).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // t4: 2018 published again.
    let r4 = app.write(vec![obs(&y2018, "22.0", S::Normal)]).await;
    assert_eq!(
        batch_counts(&r4),
        (1, 0, 0),
        "a re-created observation counts as inserted"
    );
    let t4 = micros(&r4.observations[0].known_from);

    // Four versions, oldest first, each closed by the next.
    let revs = app
        .observations
        .list_observation_revisions(pb::ListObservationRevisionsRequest {
            name: y2018.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(revs.next_page_token.is_empty());
    let r = &revs.revisions;
    assert_eq!(r.len(), 4, "{r:#?}");
    let t3 = micros(&r[2].known_from);
    assert!(t2 < t3 && t3 < t4);
    let seen: Vec<(&str, i32, bool, i64, Option<i64>)> = r
        .iter()
        .map(|v| {
            (
                v.value.as_str(),
                v.status,
                v.deleted,
                micros(&v.known_from),
                v.known_until.map(|u| micros(&Some(u))),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("21.5", S::Provisional as i32, false, t1, Some(t2)),
            ("21.6", S::Normal as i32, false, t2, Some(t3)),
            ("", S::Normal as i32, true, t3, Some(t4)),
            ("22.0", S::Normal as i32, false, t4, None),
        ]
    );
    assert!(r.iter().all(|v| v.name == y2018));

    // Paged three at a time: the same four, three then one.
    let page1 = app
        .observations
        .list_observation_revisions(pb::ListObservationRevisionsRequest {
            name: y2018.clone(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.revisions.len(), 3);
    assert!(!page1.next_page_token.is_empty());
    let page2 = app
        .observations
        .list_observation_revisions(pb::ListObservationRevisionsRequest {
            name: y2018.clone(),
            page_size: 3,
            page_token: page1.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.revisions.len(), 1);
    assert_eq!(page2.revisions[0].value, "22.0");
    assert!(page2.next_page_token.is_empty());

    // GetObservation as of each instant, at both edges of each interval.
    let cases: [(i64, Option<(&str, S)>); 9] = [
        (t1 - 1, None),
        (t1, Some(("21.5", S::Provisional))),
        (t2 - 1, Some(("21.5", S::Provisional))),
        (t2, Some(("21.6", S::Normal))),
        (t3 - 1, Some(("21.6", S::Normal))),
        (t3, None),
        (t4 - 1, None),
        (t4, Some(("22.0", S::Normal))),
        (t4 + 60_000_000, Some(("22.0", S::Normal))),
    ];
    for (as_of, want) in cases {
        let got = get(&mut app, &y2018, Some(as_of)).await;
        match want {
            None => {
                let err = got.unwrap_err();
                assert_eq!(err.code(), Code::NotFound, "as_of {as_of}: {err:?}");
                assert_eq!(reason(&err), "NOT_FOUND");
            }
            Some((value, status)) => {
                let got = got.unwrap_or_else(|e| panic!("as_of {as_of}: {e:?}"));
                assert_eq!(
                    (got.value.as_str(), got.status),
                    (value, status as i32),
                    "as_of {as_of}"
                );
                assert!(!got.deleted);
            }
        }
    }
    // Read as of t1, the 2018 version shows when it was superseded.
    let then = get(&mut app, &y2018, Some(t1)).await.unwrap();
    assert_eq!(
        (
            micros(&then.known_from),
            then.known_until.map(|u| micros(&Some(u)))
        ),
        (t1, Some(t2))
    );
    let now = get(&mut app, &y2018, None).await.unwrap();
    assert_eq!(
        (now.value.as_str(), micros(&now.known_from), now.known_until),
        ("22.0", t4, None)
    );

    // ListObservations as of each instant.
    assert_eq!(list(&mut app, OFFSHORE, Some(t1 - 1)).await, vec![]);
    assert_eq!(
        list(&mut app, OFFSHORE, Some(t1)).await,
        pairs(&[("2018", "21.5"), ("2019", "20.6")])
    );
    assert_eq!(
        list(&mut app, OFFSHORE, Some(t2)).await,
        pairs(&[("2018", "21.6"), ("2019", "20.6"), ("2020", "22.8")])
    );
    assert_eq!(
        list(&mut app, OFFSHORE, Some(t3)).await,
        pairs(&[("2019", "20.6"), ("2020", "22.8")])
    );
    assert_eq!(
        list(&mut app, OFFSHORE, Some(t4 - 1)).await,
        pairs(&[("2019", "20.6"), ("2020", "22.8")])
    );
    assert_eq!(
        list(&mut app, OFFSHORE, None).await,
        pairs(&[("2018", "22.0"), ("2019", "20.6"), ("2020", "22.8")])
    );

    // Versions: 2018 x4, 2019 x1, 2020 x1; commits: t1, t2, t3, t4.
    assert_eq!(versions(&app).await, 6);
    assert_eq!(commits(&app).await, 4);
}

#[tokio::test]
async fn delta_sync_returns_what_changed_after_an_instant_deletions_included() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    let a = name(OFFSHORE, "2018");
    let b = name(OFFSHORE, "2019");
    let t1 = micros(
        &app.write(vec![obs(&a, "21.5", S::Normal)])
            .await
            .observations[0]
            .known_from,
    );
    let t2 = micros(
        &app.write(vec![obs(&b, "20.6", S::Normal)])
            .await
            .observations[0]
            .known_from,
    );

    let s = |p: &str, v: &str, d: bool| (p.to_string(), v.to_string(), d);
    assert_eq!(
        delta(&mut app, OFFSHORE, t1).await,
        vec![s("2019", "20.6", false)]
    );
    assert_eq!(
        delta(&mut app, OFFSHORE, t1 - 1).await,
        vec![s("2018", "21.5", false), s("2019", "20.6", false)]
    );
    assert_eq!(delta(&mut app, OFFSHORE, t2).await, vec![]);

    delete(&mut app, &a).await.unwrap();
    // A client that synced up to t2 learns of the deletion, and of nothing else.
    assert_eq!(
        delta(&mut app, OFFSHORE, t2).await,
        vec![s("2018", "", true)]
    );
    assert_eq!(
        delta(&mut app, OFFSHORE, t1).await,
        vec![s("2018", "", true), s("2019", "20.6", false)]
    );
    // A plain list does not show deletions.
    assert_eq!(
        list(&mut app, OFFSHORE, None).await,
        pairs(&[("2019", "20.6")])
    );
}

// ---------------------------------------------------------------------------------------
// Imports: idempotence, validate_only, atomicity, validation

/// Twelve annual rows, 2009 to 2020 (the last three are the published figures; the
/// earlier ones are illustrative).
const SERIES: [(&str, &str); 12] = [
    ("2009", "3.2"),
    ("2010", "5.1"),
    ("2011", "7.9"),
    ("2012", "10.4"),
    ("2013", "12.3"),
    ("2014", "14.0"),
    ("2015", "15.7"),
    ("2016", "17.2"),
    ("2017", "19.0"),
    ("2018", "21.5"),
    ("2019", "20.6"),
    ("2020", "22.8"),
];

fn series() -> Vec<pb::Observation> {
    SERIES
        .iter()
        .map(|(p, v)| obs(&name(OFFSHORE, p), v, S::Normal))
        .collect()
}

#[tokio::test]
async fn reimporting_the_same_rows_writes_nothing_and_only_changes_are_revised() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;

    // 12 rows in messages of 5, 5 and 2.
    let first = import(&mut app, &series(), 5, false).await.unwrap();
    assert_eq!(counts(&first), (12, 0, 0));
    assert!(!first.validate_only);
    assert!(first.commit_time.is_some());
    assert_eq!((versions(&app).await, commits(&app).await), (12, 1));
    let t1 = micros(&first.commit_time);
    let got = get(&mut app, &name(OFFSHORE, "2018"), None).await.unwrap();
    assert_eq!((got.value.as_str(), micros(&got.known_from)), ("21.5", t1));

    // The same stream again: all unchanged, no version, no commit.
    let again = import(&mut app, &series(), 5, false).await.unwrap();
    assert_eq!(counts(&again), (0, 0, 12));
    assert_eq!(again.commit_time, None);
    assert_eq!((versions(&app).await, commits(&app).await), (12, 1));

    // Two changes: a revised 2018 value and 2020 now provisional.
    let mut changed = series();
    changed[9].value = "21.6".into();
    changed[11].status = S::Provisional as i32;
    let third = import(&mut app, &changed, 5, false).await.unwrap();
    assert_eq!(counts(&third), (0, 2, 10));
    assert_eq!((versions(&app).await, commits(&app).await), (14, 2));
    let got = get(&mut app, &name(OFFSHORE, "2018"), None).await.unwrap();
    assert_eq!(
        (got.value.as_str(), micros(&got.known_from)),
        ("21.6", micros(&third.commit_time))
    );

    // validate_only (read from the first message): two new years and one change are
    // counted, nothing is written.
    let mut proposal = changed.clone();
    proposal[10].value = "20.7".into();
    proposal.push(obs(&name(OFFSHORE, "2021"), "23.0", S::Estimated));
    proposal.push(obs(&name(OFFSHORE, "2022"), "24.1", S::Forecast));
    let checked = import(&mut app, &proposal, 5, true).await.unwrap();
    assert_eq!(counts(&checked), (2, 1, 11));
    assert!(checked.validate_only);
    assert_eq!(checked.commit_time, None);
    assert_eq!((versions(&app).await, commits(&app).await), (14, 2));
    assert_eq!(
        get(&mut app, &name(OFFSHORE, "2019"), None)
            .await
            .unwrap()
            .value,
        "20.6"
    );
    assert_eq!(
        get(&mut app, &name(OFFSHORE, "2021"), None)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // The same through BatchCreateObservations.validate_only: counts, no observations.
    let checked = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: proposal,
            validate_only: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch_counts(&checked), (2, 1, 11));
    assert!(checked.observations.is_empty());
    assert_eq!((versions(&app).await, commits(&app).await), (14, 2));
}

/// Fifteen annual rows 2006..=2020, all valid.
fn fifteen() -> Vec<pb::Observation> {
    (0..15)
        .map(|i| {
            obs(
                &name(OFFSHORE, &(2006 + i).to_string()),
                &format!("{}.5", 10 + i),
                S::Normal,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_bad_row_anywhere_in_the_stream_refuses_the_whole_import() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    let mut rows = fifteen();
    // Row 7 is in the second message of five, row 12 in the third.
    rows[7].value = "1,000".into();
    rows[12].name = name(OFFSHORE, "2018-Q1");
    let err = import(&mut app, &rows, 5, false).await.unwrap_err();
    assert_eq!(
        violations(&err),
        vec![
            (
                "observations[7].value".to_string(),
                "INVALID_DECIMAL".to_string()
            ),
            (
                "observations[12].name".to_string(),
                "PERIOD_FREQUENCY_MISMATCH".to_string()
            ),
        ]
    );
    assert!(
        err.message().contains("nothing was written"),
        "{}",
        err.message()
    );
    assert_eq!(reason(&err), "INVALID_DECIMAL");
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));

    // The same rows in one BatchCreateObservations: the same two, the same indices.
    let err = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: rows,
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "observations[7].value"),
        "INVALID_DECIMAL"
    );
    assert_eq!(
        assert_invalid(&err, "observations[12].name"),
        "PERIOD_FREQUENCY_MISMATCH"
    );
    assert_eq!(violations(&err).len(), 2);
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));

    // An unknown indicator in the last message.
    let mut rows = fifteen();
    rows[14].name = name("cq-nope", "2020");
    let err = import(&mut app, &rows, 5, false).await.unwrap_err();
    assert_eq!(
        violations(&err),
        vec![("observations[14].name".to_string(), "NOT_FOUND".to_string())]
    );

    // The same observation twice, in different messages (row 2 and row 6), and the
    // same month written two ways in one message: each later row is named.
    app.create_indicator_with("cq-monthly", pb::Frequency::Monthly, 4)
        .await;
    let mut rows = fifteen();
    rows[6].name = rows[2].name.clone();
    rows.push(obs(&name("cq-monthly", "2020-07"), "1", S::Normal));
    rows.push(obs(&name("cq-monthly", "2020-M07"), "2", S::Normal));
    let err = import(&mut app, &rows, 5, false).await.unwrap_err();
    assert_eq!(
        violations(&err),
        vec![
            ("observations[6].name".to_string(), "DUPLICATE".to_string()),
            ("observations[16].name".to_string(), "DUPLICATE".to_string()),
        ]
    );
    let err = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: rows,
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "observations[6].name"), "DUPLICATE");
    assert_eq!(assert_invalid(&err, "observations[16].name"), "DUPLICATE");
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));

    // The valid stream goes through, in full.
    let ok = import(&mut app, &fifteen(), 5, false).await.unwrap();
    assert_eq!(counts(&ok), (15, 0, 0));
    assert_eq!((versions(&app).await, commits(&app).await), (15, 1));
}

#[tokio::test]
async fn every_invalid_observation_is_named_and_nothing_is_written() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    app.create_indicator_with("cq-monthly", pb::Frequency::Monthly, 4)
        .await;
    let y = |p: &str| name(OFFSHORE, p);
    let with = |n: String, value: &str, status: i32| pb::Observation {
        name: n,
        value: value.into(),
        status,
        ..Default::default()
    };
    let a = S::Normal as i32;
    let m = S::MissingCannotExist as i32;
    let mut long_comment = pb::Observation {
        comment: "x".repeat(1001),
        ..with(y("2016"), "1", a)
    };
    long_comment.source = "Yearbook".into();
    let cases: Vec<(pb::Observation, &str, &str)> = vec![
        (with(y("2000"), "NaN", a), "value", "INVALID_DECIMAL"),
        (with(y("2001"), "", a), "value", "REQUIRED"),
        (with(y("2002"), "1e99", a), "value", "INVALID_DECIMAL"),
        (with(y("2003"), "1,000", a), "value", "INVALID_DECIMAL"),
        (
            with(y("2004"), "0.0000000000000000001", a),
            "value",
            "INVALID_DECIMAL",
        ),
        (
            with(y("2005"), &"9".repeat(31), a),
            "value",
            "INVALID_DECIMAL",
        ),
        (with(y("2006"), " 21.5", a), "value", "INVALID_DECIMAL"),
        (with(y("2007"), "21.5", 99), "status", "INVALID_ENUM"),
        (
            with(y("2008"), "21.5", m),
            "value",
            "VALUE_WITH_MISSING_STATUS",
        ),
        (with(y("2020-Q5"), "1", a), "name", "INVALID_PERIOD"),
        (with(y("1799"), "1", a), "name", "INVALID_PERIOD"),
        (
            with(y("2020-Q1"), "1", a),
            "name",
            "PERIOD_FREQUENCY_MISMATCH",
        ),
        (
            with(name("cq-monthly", "2020"), "1", a),
            "name",
            "PERIOD_FREQUENCY_MISMATCH",
        ),
        (with(name("cq-nope", "2020"), "1", a), "name", "NOT_FOUND"),
        (with(String::new(), "1", a), "name", "REQUIRED"),
        (
            with(format!("indicators/{OFFSHORE}/obs/2020"), "1", a),
            "name",
            "INVALID_NAME",
        ),
        (long_comment, "comment", "TOO_LONG"),
        (
            pb::Observation {
                source: "Yearbook\ntable 3".into(),
                ..with(y("2017"), "1", a)
            },
            "source",
            "CONTROL_CHARACTERS",
        ),
    ];
    let mut request: Vec<pb::Observation> = cases.iter().map(|c| c.0.clone()).collect();
    // One valid row among them does not make the call partly succeed.
    request.push(with(y("2018"), "21.5", a));
    let err = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: request.clone(),
            validate_only: false,
        })
        .await
        .unwrap_err();
    for (i, (_, field, want)) in cases.iter().enumerate() {
        let field = format!("observations[{i}].{field}");
        assert_eq!(assert_invalid(&err, &field), *want, "{field}");
    }
    assert_eq!(
        violations(&err).len(),
        cases.len(),
        "{:#?}",
        violations(&err)
    );
    // The same through a stream of messages of 4 rows.
    let err = import(&mut app, &request, 4, false).await.unwrap_err();
    for (i, (_, field, want)) in cases.iter().enumerate() {
        let field = format!("observations[{i}].{field}");
        assert_eq!(assert_invalid(&err, &field), *want, "{field}");
    }
    assert_eq!(violations(&err).len(), cases.len());
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));

    // Accepted: a missing-value status without a value; an exponent (written back in
    // plain notation); a month as 2020-07; status left unspecified (normal, `A`).
    let ok = app
        .write(vec![
            with(y("2021"), "", m),
            with(y("2019"), "2.06e1", S::Provisional as i32),
            with(name("cq-monthly", "2020-07"), "1.10", S::Unspecified as i32),
        ])
        .await;
    assert_eq!(batch_counts(&ok), (3, 0, 0));
    let got: Vec<(&str, &str, i32)> = ok
        .observations
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_str(), o.status))
        .collect();
    assert_eq!(
        got,
        vec![
            ("indicators/cq-offshore/observations/2021", "", m),
            (
                "indicators/cq-offshore/observations/2019",
                "20.6",
                S::Provisional as i32
            ),
            ("indicators/cq-monthly/observations/2020-M07", "1.10", a),
        ]
    );
}

#[tokio::test]
async fn call_and_message_sizes_are_bounded() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    let err = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "observations"), "REQUIRED");
    let too_many = vec![obs(&name(OFFSHORE, "2020"), "1", S::Normal); 10_001];
    let err = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: too_many.clone(),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "observations"), "TOO_MANY");
    // One import message of 10,001 is refused too (more messages are the way).
    let err = import(&mut app, &too_many, 10_001, false)
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "observations"), "TOO_MANY");

    // Twenty bad rows: all twenty named, in row order.
    let bad = bad_rows(20);
    let err = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: bad,
            validate_only: false,
        })
        .await
        .unwrap_err();
    let v = violations(&err);
    assert_eq!(v.len(), 20);
    assert_eq!(
        v[19],
        (
            "observations[19].value".to_string(),
            "INVALID_DECIMAL".to_string()
        )
    );
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));
}

/// `n` annual rows from 1850 on, each with the value "n/a".
fn bad_rows(n: i32) -> Vec<pb::Observation> {
    (0..n)
        .map(|i| obs(&name(OFFSHORE, &(1850 + i).to_string()), "n/a", S::Normal))
        .collect()
}

/// Each bad row's violation (about 150 bytes) travels in the `grpc-status-details-bin`
/// trailer (base64), beside `grpc-message`, and grpc-core clients (Python, C++, …)
/// refuse more than 8 KiB of trailers. The service keeps both well under that: a refusal
/// of many rows still reaches the client as INVALID_ARGUMENT, naming the first bad rows
/// in order and saying how many there were. (scripts/sdk_python_check.py checks it with
/// grpcio.)
#[tokio::test]
async fn many_bad_rows_are_reported_to_a_default_client() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    let err = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: bad_rows(60),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let v = violations(&err);
    // As many as fit in 4 KiB of details (about 120 bytes each): the first 25 to 40 of
    // the 60, in order.
    assert!((25..=40).contains(&v.len()), "{}", v.len());
    let trailers = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(err.details())
        .len()
        + err.message().len();
    assert!(trailers < 6 * 1024, "{trailers} bytes of trailers");
    for (i, (field, reason)) in v.iter().enumerate() {
        assert_eq!(field, &format!("observations[{i}].value"));
        assert_eq!(reason, "INVALID_DECIMAL");
    }
    assert!(err.message().contains("60 problems"), "{}", err.message());
    // The google.rpc.Status in the details says what grpc-message says (grpcio-status's
    // rpc_status.from_call refuses the details otherwise).
    let inner = <tonic_types::pb::Status as prost::Message>::decode(err.details()).unwrap();
    assert_eq!(inner.message, err.message());
    assert_eq!(inner.code, Code::InvalidArgument as i32);

    // An import of 150 bad rows stops reading after 100 problems and names the first.
    let err = tokio::time::timeout(PATIENCE, import(&mut app, &bad_rows(150), 50, false))
        .await
        .expect("a refused import answers")
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let v = violations(&err);
    assert!(v.len() >= 20, "{}", v.len());
    assert_eq!(
        v[0],
        (
            "observations[0].value".to_string(),
            "INVALID_DECIMAL".to_string()
        )
    );
    assert!(
        err.message().contains("100 or more problems"),
        "{}",
        err.message()
    );

    // What an operator sees: the CLI names the CSV lines.
    let mut csv = String::from("indicator,period,value,status,comment,source\n");
    for i in 0..300 {
        csv.push_str(&format!("{OFFSHORE},{},n/a,A,,\n", 1850 + i));
    }
    let file = ScratchFile::new("csv");
    std::fs::write(&file.0, &csv).unwrap();
    let server = format!("http://{}", app.addr);
    let (ok, _, stderr) = cli(&[
        "import",
        file.path(),
        "--server",
        &server,
        "--key",
        &app.admin_key,
    ])
    .await;
    assert!(!ok);
    assert!(stderr.contains("error: INVALID_ARGUMENT: "), "{stderr}");
    assert!(
        stderr.contains("observations[0].value (CSV line 2)"),
        "{stderr}"
    );
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));
}

// ---------------------------------------------------------------------------------------
// A stream that breaks off

/// Waits until the server's import session has written a message's rows (in its
/// transaction) later than `after` (µs since the epoch) and sits idle in the transaction,
/// waiting for the next message; returns when that happened.
async fn wait_staged(pool: &sqlx::PgPool, after: i64) -> i64 {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT (extract(epoch FROM state_change) * 1000000)::bigint FROM pg_stat_activity \
              WHERE datname = current_database() AND pid <> pg_backend_pid() \
                AND state = 'idle in transaction' AND (query LIKE 'COPY observation_versions%' OR query LIKE '%observations_import_chunk%')",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(at) = at.filter(|at| *at > after) {
            return at;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import did not stage its rows"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sessions of the test database inside a transaction: (state, last query, age).
async fn open_sessions(pool: &sqlx::PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT state, left(query, 60), (now() - xact_start)::text FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid() \
            AND state LIKE 'idle in transaction%'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Waits up to `patience` until no session of the test database is inside a
/// transaction; returns those left.
async fn open_sessions_after(
    pool: &sqlx::PgPool,
    patience: Duration,
) -> Vec<(String, String, String)> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let open = open_sessions(pool).await;
        if open.is_empty() || std::time::Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts ImportObservations over a stream the test feeds; the call runs in a task.
fn start_import(
    app: &TestApp,
) -> (
    tokio::sync::mpsc::Sender<pb::ImportObservationsRequest>,
    tokio::task::JoinHandle<Result<tonic::Response<pb::ImportObservationsResponse>, tonic::Status>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportObservationsRequest>(1);
    let mut client = app.observations.clone();
    let call = tokio::spawn(async move {
        client
            .import_observations(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    (tx, call)
}

#[tokio::test]
async fn a_cancelled_import_writes_nothing_and_leaves_no_open_transaction() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    let rows = fifteen();
    let (tx, call) = start_import(&app);
    // Two messages, each written by the server (in its transaction) before the next is
    // sent.
    let mut staged = 0;
    for chunk in rows[..10].chunks(5) {
        tx.send(pb::ImportObservationsRequest {
            request_id: String::new(),
            validate_only: false,
            observations: chunk.to_vec(),
        })
        .await
        .unwrap();
        staged = wait_staged(&app.pool, staged).await;
    }
    // Nothing is visible before the import ends.
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));
    // The server waits for the third message; the client gives up instead (its call is
    // dropped while the stream is still open).
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    drop(tx);

    assert_eq!(open_sessions_after(&app.pool, PATIENCE).await, vec![]);
    assert_eq!((versions(&app).await, commits(&app).await), (0, 0));
    assert_eq!(list(&mut app, OFFSHORE, None).await, vec![]);

    // The server is unharmed: the same rows import normally afterwards.
    let ok = import(&mut app, &rows, 5, false).await.unwrap();
    assert_eq!(counts(&ok), (15, 0, 0));
    assert_eq!((versions(&app).await, commits(&app).await), (15, 1));
}

/// A client that cancels while the server is writing a message's rows (a large
/// message) must not leave a pooled connection out of step with PostgreSQL
/// (which once made later, unrelated calls fail with "Postgres protocol error: expected
/// ParseComplete, got ReadyForQuery", answer NOT_FOUND wrongly, or run inside the
/// abandoned transaction): the write runs in a task the cancellation cannot cut.
#[tokio::test]
async fn an_import_cancelled_during_its_copy_leaves_the_pool_usable() {
    let mut app = spawn_app().await;
    app.create_indicator_with("cq-m1", pb::Frequency::Monthly, 4)
        .await;
    app.create_indicator_with("cq-m2", pb::Frequency::Monthly, 4)
        .await;
    // 9,600 rows: every month 1800-M01..2199-M12 of two indicators.
    let big: Vec<pb::Observation> = ["cq-m1", "cq-m2"]
        .iter()
        .flat_map(|ind| {
            (0..4800).map(move |i| {
                let period = format!("{}-M{:02}", 1800 + i / 12, i % 12 + 1);
                obs(&name(ind, &period), &i.to_string(), S::Normal)
            })
        })
        .collect();
    // Inside its write of the message, or (on a loaded machine, where a poll can miss a
    // statement of a few milliseconds) just after it, with the import's transaction open.
    let copying = "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND state IN ('active', 'idle in transaction') \
           AND (query LIKE 'COPY observation_versions%' OR query LIKE '%observations_import_chunk%')";
    // The test's checks use a pool of their own (app.pool is the server's).
    let observer = sqlx::PgPool::connect_with(app.pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let mut failures = Vec::new();
    for round in 0..5 {
        let (tx, call) = start_import(&app);
        tx.send(pb::ImportObservationsRequest {
            request_id: String::new(),
            validate_only: false,
            observations: big.clone(),
        })
        .await
        .unwrap();
        // Cancel the moment the server is inside its COPY.
        let deadline = std::time::Instant::now() + PATIENCE;
        while count(&observer, copying).await == 0 && !call.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "no COPY seen in round {round}"
            );
        }
        if call.is_finished() {
            if let Err(e) = call.await.unwrap() {
                failures.push(format!(
                    "round {round}, import: {:?} {}",
                    e.code(),
                    e.message()
                ));
            }
            continue;
        }
        call.abort();
        let _ = call.await;
        drop(tx);
        let open = open_sessions_after(&observer, Duration::from_secs(3)).await;
        if !open.is_empty() {
            failures.push(format!("round {round}, still in a transaction: {open:?}"));
        }
        // Every pooled connection is used a few times over.
        for read in 0..30 {
            if let Err(e) = app
                .observations
                .list_observations(pb::ListObservationsRequest {
                    parent: "indicators/cq-m1".into(),
                    page_size: 1,
                    ..Default::default()
                })
                .await
            {
                failures.push(format!(
                    "round {round}, read {read}: {:?} {}",
                    e.code(),
                    e.message()
                ));
            }
        }
    }
    assert_eq!(failures, Vec::<String>::new());
    let rows = count(&observer, "SELECT count(*) FROM observation_versions").await;
    assert_eq!(rows, 0);
}

// ---------------------------------------------------------------------------------------
// The change feed

pub(crate) type Feed = tonic::Streaming<pb::WatchObservationsResponse>;

/// (kind, name, value) of a change: what a watcher acts on.
type Seen = (Kind, String, String);

async fn watch(app: &mut TestApp, request: pb::WatchObservationsRequest) -> Feed {
    app.observations
        .watch_observations(request)
        .await
        .unwrap_or_else(|e| panic!("WatchObservations: {e:?}"))
        .into_inner()
}

/// The next message of `feed`, failing (not hanging) when none comes.
pub(crate) async fn next(feed: &mut Feed) -> pb::WatchObservationsResponse {
    let msg = tokio::time::timeout(PATIENCE, feed.message())
        .await
        .expect("a message within the patience")
        .expect("the feed does not fail")
        .expect("the feed stays open");
    assert!(!msg.cursor.is_empty(), "every message carries a cursor");
    msg
}

fn seen(msg: &pb::WatchObservationsResponse) -> Vec<Seen> {
    msg.changes
        .iter()
        .map(|c| {
            let o = c
                .observation
                .as_ref()
                .expect("a change carries its version");
            (
                Kind::try_from(c.kind).unwrap(),
                o.name.clone(),
                o.value.clone(),
            )
        })
        .collect()
}

/// Reads messages until `n` changes have arrived; returns them and the last cursor.
async fn read_changes(feed: &mut Feed, n: usize) -> (Vec<Seen>, String) {
    let mut all = Vec::new();
    let mut cursor = String::new();
    while all.len() < n {
        let msg = next(feed).await;
        all.extend(seen(&msg));
        cursor = msg.cursor;
    }
    assert_eq!(all.len(), n, "more changes than expected: {all:#?}");
    (all, cursor)
}

/// Asserts that nothing more arrives for a moment (heartbeats come only every 15 s).
async fn assert_quiet(feed: &mut Feed) {
    if let Ok(msg) = tokio::time::timeout(Duration::from_millis(500), feed.message()).await {
        panic!("unexpected message: {msg:?}");
    }
}

fn change(kind: Kind, name: &str, value: &str) -> Seen {
    (kind, name.to_owned(), value.to_owned())
}

#[tokio::test]
async fn watch_streams_every_change_in_commit_order() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    let (y2018, y2019, y2020) = (
        name(OFFSHORE, "2018"),
        name(OFFSHORE, "2019"),
        name(OFFSHORE, "2020"),
    );
    let mut feed = watch(
        &mut app,
        pb::WatchObservationsRequest {
            from_beginning: true,
            ..Default::default()
        },
    )
    .await;

    // One batch of three, given out of order: one message, in period order.
    let created = app
        .write(vec![
            obs(&y2020, "22.8", S::Provisional),
            obs(&y2018, "21.5", S::Provisional),
            obs(&y2019, "20.6", S::Provisional),
        ])
        .await;
    let first = next(&mut feed).await;
    assert_eq!(
        seen(&first),
        vec![
            change(Kind::Created, &y2018, "21.5"),
            change(Kind::Created, &y2019, "20.6"),
            change(Kind::Created, &y2020, "22.8"),
        ]
    );
    let v = first.changes[0].observation.as_ref().unwrap();
    assert_eq!(v.status, S::Provisional as i32);
    assert_eq!(v.known_from, created.observations[1].known_from);

    // A revision, a deletion and a re-creation, one commit each.
    app.write(vec![obs(&y2018, "21.6", S::Normal)]).await;
    delete(&mut app, &y2019).await.unwrap();
    app.write(vec![obs(&y2019, "20.6", S::Normal)]).await;
    let mut rest = Vec::new();
    let mut cursors = vec![first.cursor.clone()];
    let mut deletion = None;
    while rest.len() < 3 {
        let msg = next(&mut feed).await;
        for c in &msg.changes {
            if c.kind == Kind::Deleted as i32 {
                deletion = c.observation.clone();
            }
        }
        rest.extend(seen(&msg));
        cursors.push(msg.cursor);
    }
    assert_eq!(
        rest,
        vec![
            change(Kind::Revised, &y2018, "21.6"),
            change(Kind::Deleted, &y2019, ""),
            change(Kind::Created, &y2019, "20.6"),
        ]
    );
    let deletion = deletion.unwrap();
    assert!(deletion.deleted && deletion.value.is_empty() && deletion.known_from.is_some());
    let mut distinct = cursors.clone();
    distinct.dedup();
    assert_eq!(distinct, cursors, "each message moves the cursor on");
    assert_quiet(&mut feed).await;

    // A watcher that comes later replays the same history from the beginning.
    let mut replay = watch(
        &mut app,
        pb::WatchObservationsRequest {
            from_beginning: true,
            ..Default::default()
        },
    )
    .await;
    let (all, cursor) = read_changes(&mut replay, 6).await;
    assert_eq!(all[..3], seen(&first)[..]);
    assert_eq!(all[3..], rest[..]);
    assert_eq!(
        &cursor,
        cursors.last().unwrap(),
        "the same position, the same cursor"
    );
}

#[tokio::test]
async fn watch_resumes_after_a_cursor_without_gap_or_duplicate() {
    use tradewatch::api::observation_service::WATCH_BATCH;
    let mut app = spawn_app().await;
    app.create_indicator_with("cq-monthly", pb::Frequency::Monthly, 4)
        .await;
    // 1,500 months, 1900-M01 to 2024-M12, in one commit: more than one message holds
    // (WATCH_BATCH = 1,000), so the first message ends in the middle of the commit.
    let months: Vec<String> = (0..1500)
        .map(|i| {
            name(
                "cq-monthly",
                &format!("{}-M{:02}", 1900 + i / 12, i % 12 + 1),
            )
        })
        .collect();
    assert_eq!(months[1499], "indicators/cq-monthly/observations/2024-M12");
    let write: Vec<pb::Observation> = months
        .iter()
        .enumerate()
        .map(|(i, n)| obs(n, &i.to_string(), S::Normal))
        .collect();
    assert_eq!(batch_counts(&app.write(write).await), (1500, 0, 0));

    let mut feed = watch(
        &mut app,
        pb::WatchObservationsRequest {
            from_beginning: true,
            ..Default::default()
        },
    )
    .await;
    let first = next(&mut feed).await;
    let k = WATCH_BATCH as usize;
    assert!(k < 1500);
    let expected_first: Vec<Seen> = (0..k)
        .map(|i| change(Kind::Created, &months[i], &i.to_string()))
        .collect();
    assert_eq!(seen(&first), expected_first);
    // The client goes away after its first message.
    drop(feed);

    // Meanwhile: one month already seen and one not yet seen are revised (one commit),
    // then the first month is deleted.
    app.write(vec![
        obs(&months[50], "50.5", S::Normal),
        obs(&months[1499], "1499.5", S::Normal),
    ])
    .await;
    delete(&mut app, &months[0]).await.unwrap();

    // Resuming from the cursor: the rest of the big commit, then the two later ones.
    let mut feed = watch(
        &mut app,
        pb::WatchObservationsRequest {
            start_cursor: first.cursor.clone(),
            ..Default::default()
        },
    )
    .await;
    let mut expected: Vec<Seen> = (k..1500)
        .map(|i| change(Kind::Created, &months[i], &i.to_string()))
        .collect();
    expected.push(change(Kind::Revised, &months[50], "50.5"));
    expected.push(change(Kind::Revised, &months[1499], "1499.5"));
    expected.push(change(Kind::Deleted, &months[0], ""));
    let (resumed, cursor) = read_changes(&mut feed, 1500 - k + 3).await;
    assert_eq!(resumed, expected);
    assert_quiet(&mut feed).await;
    drop(feed);

    // Resuming from the last cursor: nothing old, only what comes next.
    let mut feed = watch(
        &mut app,
        pb::WatchObservationsRequest {
            start_cursor: cursor,
            ..Default::default()
        },
    )
    .await;
    assert_quiet(&mut feed).await;
    app.write(vec![obs(&months[0], "0", S::Normal)]).await;
    let (last, _) = read_changes(&mut feed, 1).await;
    assert_eq!(last, vec![change(Kind::Created, &months[0], "0")]);
}

#[tokio::test]
async fn watch_filters_by_indicator_and_refuses_bad_requests() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    app.create_indicator_with("cq-monthly", pb::Frequency::Monthly, 4)
        .await;
    // Written before the watch starts: not part of a watch without cursor.
    app.write(vec![obs(&name(OFFSHORE, "2018"), "21.5", S::Normal)])
        .await;

    let mut feed = watch(
        &mut app,
        pb::WatchObservationsRequest {
            indicators: vec![format!("indicators/{OFFSHORE}")],
            ..Default::default()
        },
    )
    .await;
    app.write(vec![obs(&name("cq-monthly", "2020-M01"), "1.1", S::Normal)])
        .await;
    app.write(vec![
        obs(&name(OFFSHORE, "2019"), "20.6", S::Normal),
        obs(&name("cq-monthly", "2020-M02"), "1.2", S::Normal),
    ])
    .await;
    let (got, _) = read_changes(&mut feed, 1).await;
    assert_eq!(
        got,
        vec![change(Kind::Created, &name(OFFSHORE, "2019"), "20.6")]
    );
    assert_quiet(&mut feed).await;

    let refused = |r: Result<tonic::Response<Feed>, tonic::Status>| match r {
        Ok(_) => panic!("the watch was accepted"),
        Err(e) => e,
    };
    let err = refused(
        app.observations
            .watch_observations(pb::WatchObservationsRequest {
                start_cursor: "not-a-cursor".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(assert_invalid(&err, "start_cursor"), "INVALID_CURSOR");
    let err = refused(
        app.observations
            .watch_observations(pb::WatchObservationsRequest {
                indicators: vec!["indicators/cq-nope".into()],
                ..Default::default()
            })
            .await,
    );
    assert_eq!(assert_invalid(&err, "indicators[0]"), "NOT_FOUND");
}

// ---------------------------------------------------------------------------------------
// Export, and import through the real CLI

const MONTHLY: &str = "cq-services-monthly";

async fn create_export_indicators(app: &mut TestApp) {
    app.create_indicator(OFFSHORE).await;
    app.create_indicator_with(MONTHLY, pb::Frequency::Monthly, 4)
        .await;
}

/// Two indicators with quoted comments, a line break, missing values, a revision and a
/// deletion (neither of which shows in an export of now).
async fn load_export_fixture(app: &mut TestApp) {
    create_export_indicators(app).await;
    let y = |p: &str| name(OFFSHORE, p);
    let with = |n: String, value: &str, status: S, comment: &str, source: &str| pb::Observation {
        name: n,
        value: value.into(),
        status: status as i32,
        comment: comment.into(),
        source: source.into(),
        ..Default::default()
    };
    app.write(vec![
        with(y("2017"), "19.0", S::Normal, "", ""),
        with(y("2018"), "21.4", S::Provisional, "", ""),
        with(y("2019"), "20.6", S::Normal, "", "MOFCOM, 2020"),
        with(y("2020"), "22.8", S::Normal, "", ""),
        with(y("2021"), "", S::Missing, "not yet published", ""),
    ])
    .await;
    app.write(vec![with(
        y("2018"),
        "21.5",
        S::Provisional,
        "Executed value, \"offshore\" outsourcing\nRevised in the 2020 yearbook",
        "Chongqing Statistical Yearbook 2019, table 11-3",
    )])
    .await;
    delete(app, &y("2017")).await.unwrap();
    let m = |p: &str| name(MONTHLY, p);
    app.write(vec![
        with(m("2020-M01"), "1.10", S::Normal, "", ""),
        with(
            m("2020-02"),
            "0.95",
            S::Estimated,
            "estimate, pending \"final\" figures",
            "",
        ),
        with(m("2020-M03"), "", S::MissingSuppressed, "", ""),
    ])
    .await;
}

const EXPECTED_CSV: &str = concat!(
    "indicator,period,value,status,comment,source\n",
    "cq-offshore,2018,21.5,P,\"Executed value, \"\"offshore\"\" outsourcing\n",
    "Revised in the 2020 yearbook\",\"Chongqing Statistical Yearbook 2019, table 11-3\"\n",
    "cq-offshore,2019,20.6,A,,\"MOFCOM, 2020\"\n",
    "cq-offshore,2020,22.8,A,,\n",
    "cq-offshore,2021,,O,not yet published,\n",
    "cq-services-monthly,2020-M01,1.10,A,,\n",
    "cq-services-monthly,2020-M02,0.95,E,\"estimate, pending \"\"final\"\" figures\",\n",
    "cq-services-monthly,2020-M03,,Q,,\n",
);

const EXPECTED_SDMX_CSV: &str = concat!(
    "DATAFLOW,INDICATOR,FREQ,TIME_PERIOD,OBS_VALUE,OBS_STATUS,UNIT_MEASURE,UNIT_MULT,COMMENT,SOURCE\n",
    "TRADEWATCH:OBSERVATIONS(1.0),cq-offshore,A,2018,21.5,P,USD,8,",
    "\"Executed value, \"\"offshore\"\" outsourcing\n",
    "Revised in the 2020 yearbook\",\"Chongqing Statistical Yearbook 2019, table 11-3\"\n",
    "TRADEWATCH:OBSERVATIONS(1.0),cq-offshore,A,2019,20.6,A,USD,8,,\"MOFCOM, 2020\"\n",
    "TRADEWATCH:OBSERVATIONS(1.0),cq-offshore,A,2020,22.8,A,USD,8,,\n",
    "TRADEWATCH:OBSERVATIONS(1.0),cq-offshore,A,2021,,O,USD,8,not yet published,\n",
    "TRADEWATCH:OBSERVATIONS(1.0),cq-services-monthly,M,2020-M01,1.10,A,USD,4,,\n",
    "TRADEWATCH:OBSERVATIONS(1.0),cq-services-monthly,M,2020-M02,0.95,E,USD,4,",
    "\"estimate, pending \"\"final\"\" figures\",\n",
    "TRADEWATCH:OBSERVATIONS(1.0),cq-services-monthly,M,2020-M03,,Q,USD,4,,\n",
);

/// ExportObservations: the concatenated text and the total row count.
async fn export(
    app: &mut TestApp,
    format: pb::export_observations_request::Format,
) -> (String, i64) {
    let mut stream = app
        .observations
        .export_observations(pb::ExportObservationsRequest {
            format: format as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (mut text, mut rows) = (String::new(), 0);
    while let Some(chunk) = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("export chunk in time")
        .unwrap()
    {
        assert!(chunk.observations.is_empty());
        text.push_str(&chunk.data);
        rows += chunk.row_count;
    }
    (text, rows)
}

/// Runs the real `tradewatch` binary; returns (success, stdout, stderr).
async fn cli(args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"))
            .args(args)
            .env_remove("DATABASE_URL")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the CLI finishes")
    .expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A path for a scratch file, removed on drop.
struct ScratchFile(std::path::PathBuf);

impl ScratchFile {
    fn new(ext: &str) -> Self {
        Self(std::env::temp_dir().join(format!("tw-{}.{ext}", uuid::Uuid::new_v4().simple())))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn csv_export_imported_by_the_cli_into_a_fresh_database_exports_identically() {
    use pb::export_observations_request::Format;
    let mut app1 = spawn_app().await;
    load_export_fixture(&mut app1).await;
    let (csv, rows) = export(&mut app1, Format::Csv).await;
    assert_eq!(csv, EXPECTED_CSV);
    assert_eq!(rows, 7);
    // FORMAT_UNSPECIFIED is CSV; the CLI's default export is the same text.
    assert_eq!(export(&mut app1, Format::Unspecified).await.0, csv);
    let server1 = format!("http://{}", app1.addr);
    let (ok, stdout, stderr) =
        cli(&["export", "--server", &server1, "--key", &app1.admin_key]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, csv);

    let mut app2 = spawn_app().await;
    create_export_indicators(&mut app2).await;
    let file = ScratchFile::new("csv");
    std::fs::write(&file.0, &csv).unwrap();
    let server2 = format!("http://{}", app2.addr);
    let (ok, _, stderr) = cli(&[
        "import",
        file.path(),
        "--server",
        &server2,
        "--key",
        &app2.admin_key,
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("imported 7 rows: 7 inserted, 0 revised, 0 unchanged"),
        "{stderr}"
    );
    assert_eq!(export(&mut app2, Format::Csv).await, (csv.clone(), 7));
    // Only current versions travel: one version per row in the new database.
    assert_eq!(versions(&app2).await, 7);

    // Importing the file again changes nothing.
    let (ok, _, stderr) = cli(&[
        "import",
        file.path(),
        "--server",
        &server2,
        "--key",
        &app2.admin_key,
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("imported 7 rows: 0 inserted, 0 revised, 7 unchanged"),
        "{stderr}"
    );
    assert_eq!((versions(&app2).await, commits(&app2).await), (7, 1));
}

#[tokio::test]
async fn sdmx_csv_exported_and_imported_by_the_cli_round_trips_identically() {
    use pb::export_observations_request::Format;
    let mut app1 = spawn_app().await;
    load_export_fixture(&mut app1).await;
    let (sdmx, rows) = export(&mut app1, Format::SdmxCsv).await;
    assert_eq!(sdmx, EXPECTED_SDMX_CSV);
    assert_eq!(rows, 7);

    let file = ScratchFile::new("csv");
    let server1 = format!("http://{}", app1.addr);
    let (ok, _, stderr) = cli(&[
        "export",
        "--format",
        "sdmx-csv",
        "--server",
        &server1,
        "--key",
        &app1.admin_key,
        "--output",
        file.path(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read_to_string(&file.0).unwrap(), sdmx);

    let mut app3 = spawn_app().await;
    create_export_indicators(&mut app3).await;
    let server3 = format!("http://{}", app3.addr);
    let (ok, _, stderr) = cli(&[
        "import",
        file.path(),
        "--server",
        &server3,
        "--key",
        &app3.admin_key,
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("imported 7 rows: 7 inserted, 0 revised, 0 unchanged"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = cli(&[
        "export",
        "--format",
        "sdmx-csv",
        "--server",
        &server3,
        "--key",
        &app3.admin_key,
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, sdmx);
    // And the plain CSV of both databases agrees too.
    assert_eq!(export(&mut app3, Format::Csv).await.0, EXPECTED_CSV);
}

/// An import takes its instant when it begins; it cannot supersede, with that earlier
/// instant, what another call wrote later to an indicator the import reaches after. It
/// then rolls back and answers ABORTED (retryable), and sent again it goes in whole.
#[tokio::test]
async fn an_import_reaching_an_indicator_written_after_it_began_is_aborted_and_can_be_sent_again() {
    let mut app = spawn_app().await;
    app.create_indicator(OFFSHORE).await;
    app.create_indicator("cq-other").await;
    let other = |value: &str| obs(&name("cq-other", "2010"), value, S::Normal);
    let rows = fifteen();
    let (tx, call) = start_import(&app);
    // The import begins with OFFSHORE...
    tx.send(pb::ImportObservationsRequest {
        observations: rows[..5].to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    wait_staged(&app.pool, 0).await;
    // ... another call writes cq-other 2010 meanwhile ...
    let written = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            observations: vec![other("1.5")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.inserted, 1);
    // ... and the import then revises it.
    tx.send(pb::ImportObservationsRequest {
        observations: vec![rows[5].clone(), other("2.5")],
        ..Default::default()
    })
    .await
    .unwrap();
    drop(tx);
    let err = call
        .await
        .unwrap()
        .expect_err("an import behind a later write");
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    // Nothing of it was written: the batch's one version only.
    assert_eq!(versions(&app).await, 1);

    // Sent again, it supersedes the batch's value.
    let mut again = rows[..6].to_vec();
    again.push(other("2.5"));
    let ok = import(&mut app, &again, 5, false).await.unwrap();
    assert_eq!(counts(&ok), (6, 1, 0));
    assert_eq!(versions(&app).await, 1 + 7);
}

/// An import writes the rows of an indicator without observations in PostgreSQL's binary
/// COPY format, encoding each value as a `numeric` itself: every shape of decimal reads
/// back exactly as sent (canonical), with its scale, sign and zeros, and a missing value
/// stays missing.
#[tokio::test]
async fn imported_values_of_every_shape_read_back_exactly() {
    let mut app = spawn_app().await;
    app.create_indicator("cc-shapes").await;
    // (sent, read back): hand-worked canonical forms; the comments name the base-10000
    // digits PostgreSQL stores (weight of the first, then the digits).
    let values = [
        ("0", "0"),                                       // no digits
        ("0.00", "0.00"),                                 // no digits, scale 2
        ("-0.00", "0.00"),                                // no negative zero
        ("7", "7"),                                       // 0: 7
        ("10000", "10000"),                               // 1: 1 (the trailing 0000 dropped)
        ("1234.5", "1234.5"),                             // 0: 1234 5000, scale 1
        ("21.50", "21.50"),                               // 0: 21 5000, scale 2
        ("-0.05", "-0.05"),                               // -1: 500, negative
        ("0.0001", "0.0001"),                             // -1: 1
        ("0.00001", "0.00001"),                           // -2: 1000
        ("99999999.0001", "99999999.0001"),               // 1: 9999 9999 1
        ("-123456789012.345678", "-123456789012.345678"), // 2: 1234 5678 9012 3456 7800
        ("0.000000000000000001", "0.000000000000000001"), // -5: 100
        ("1e20", "100000000000000000000"),                // 5: 1 (five zero digits dropped)
        ("100000001", "100000001"),                       // 2: 1 0 1 (a zero digit inside)
        ("3.14159", "3.14159"),                           // 0: 3 1415 9000
    ];
    let mut rows: Vec<pb::Observation> = values
        .iter()
        .enumerate()
        .map(|(i, (v, _))| obs(&name("cc-shapes", &(1990 + i).to_string()), v, S::Normal))
        .collect();
    rows.push(obs(&name("cc-shapes", "2020"), "", S::Missing));
    let imported = import(&mut app, &rows, 5, false).await.expect("the import");
    assert_eq!(counts(&imported), (17, 0, 0));
    let mut expected: Vec<(String, String)> = values
        .iter()
        .enumerate()
        .map(|(i, (_, back))| ((1990 + i).to_string(), (*back).to_owned()))
        .collect();
    expected.push(("2020".into(), String::new()));
    assert_eq!(list(&mut app, "cc-shapes", None).await, expected);
    // The database holds them as numerics of those values (sums exactly).
    let sum: String =
        sqlx::query_scalar("SELECT sum(value)::text FROM observation_versions WHERE bulk")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(sum, "99999999876743222253.746122000000000001");
}

// ---------------------------------------------------------------------------------------
// The batch writer's connection

/// The batch writer keeps its database connection from one write to the next. When the
/// connections are cut (a database restart, terminated backends), the writes fail with
/// UNAVAILABLE (retryable) until each stale connection has failed once (the pool does not
/// test connections before handing them out; it holds at most 10), then succeed again by
/// themselves; every write answered OK is stored, no other is.
#[tokio::test]
async fn the_batch_writer_recovers_when_its_connection_is_cut() {
    let mut app = spawn_app().await;
    app.create_indicator("cut-conn").await;
    let first = app
        .write(vec![obs(&name("cut-conn", "1900"), "1.5", S::Normal)])
        .await;
    assert_eq!(first.inserted, 1);
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND backend_type = 'client backend'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(cut >= 1, "the writer's connection was among those cut");
    let (mut ok, mut unavailable) = (0, 0);
    for year in 1901..1930 {
        let answer = app
            .observations
            .batch_create_observations(pb::BatchCreateObservationsRequest {
                request_id: String::new(),
                observations: vec![obs(&name("cut-conn", &year.to_string()), "2.5", S::Normal)],
                validate_only: false,
            })
            .await;
        match answer {
            Ok(r) => {
                assert_eq!(r.into_inner().inserted, 1);
                ok += 1;
                if ok == 3 {
                    break;
                }
            }
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                assert_eq!(ok, 0, "a failure after the writes had recovered: {e:?}");
                unavailable += 1;
            }
        }
    }
    assert_eq!(
        ok, 3,
        "the writes recovered ({unavailable} UNAVAILABLE first)"
    );
    assert!(
        unavailable <= 11,
        "{unavailable} UNAVAILABLE before the writes recovered"
    );
    let stored = count(
        &app.pool,
        "SELECT count(*) FROM observation_versions WHERE known_until IS NULL",
    )
    .await;
    assert_eq!(stored, 1 + 3);
}

/// Closing the pool (as the server does when it stops) gives the batch writer's kept
/// connection back at once: the close does not wait for the writer's idle second.
#[tokio::test]
async fn closing_the_pool_does_not_wait_for_the_batch_writers_connection() {
    let mut app = spawn_app().await;
    app.create_indicator("close-conn").await;
    for year in ["2018", "2019"] {
        let r = app
            .write(vec![obs(&name("close-conn", year), "1.5", S::Normal)])
            .await;
        assert_eq!(r.inserted, 1);
    }
    tokio::time::timeout(Duration::from_millis(700), app.pool.close())
        .await
        .expect("the pool closes within 0.7 s, the writer's connection given back");
}
