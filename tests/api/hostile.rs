//! Hostile input over every method of every service: oversized strings and messages,
//! extreme numbers, malformed decimals, control characters and NUL bytes, invalid
//! UTF-8, SQL injection in every string field, resource name and page token, forged
//! tokens and cursors, unknown enum numbers, out-of-range timestamps, deep initiative
//! trees and parent cycles.
//!
//! Each case expects a precise answer (INVALID_ARGUMENT with a BadRequest naming the
//! field, or another exact code) and no change to the data: the rows of every table
//! are counted before and after. The cases of one test all run, and every departure is
//! listed at the end.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use prost_types::{FieldMask, Timestamp};
use sqlx::PgPool;
use tonic::Code;
use tonic_types::StatusExt as _;
use tradewatch::domain::access::Role;
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::admin_service_client::AdminServiceClient;
use tradewatch::proto::v1::indicator_service_client::IndicatorServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;
use tradewatch::proto::v1::program_service_client::ProgramServiceClient;
use tradewatch::proto::v1::reporting_service_client::ReportingServiceClient;

use crate::helpers::{
    Ch, TestApp, authed, indicator, initiative, level_target, obs, program, raw_channel, spawn_app,
};

// ---------------------------------------------------------------------------------------
// The harness

/// Every client, on one connection.
#[derive(Clone)]
struct Api {
    programs: ProgramServiceClient<Ch>,
    indicators: IndicatorServiceClient<Ch>,
    observations: ObservationServiceClient<Ch>,
    reports: ReportingServiceClient<Ch>,
    admin: AdminServiceClient<Ch>,
}

impl Api {
    fn new(channel: Ch) -> Self {
        Self {
            programs: ProgramServiceClient::new(channel.clone()),
            indicators: IndicatorServiceClient::new(channel.clone()),
            observations: ObservationServiceClient::new(channel.clone()),
            reports: ReportingServiceClient::new(channel.clone()),
            admin: AdminServiceClient::new(channel),
        }
    }
}

type Call = Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>>;

/// What a hostile call must answer.
#[derive(Debug, Clone)]
enum Want {
    /// INVALID_ARGUMENT, with an ErrorInfo and a BadRequest violation for this field (a
    /// trailing `*` matches any field starting with the rest).
    Invalid(String),
    /// This code, with an ErrorInfo of the service's domain.
    Code(Code),
    /// OK: the input is hostile but legitimate (free text, a filter matching nothing).
    Ok,
}

fn invalid(field: impl Into<String>) -> Want {
    Want::Invalid(field.into())
}

/// One hostile call.
struct Case {
    what: String,
    want: Want,
    call: Call,
}

/// Cases of one test.
#[derive(Default)]
struct Cases(Vec<Case>);

impl Cases {
    fn add(&mut self, what: impl Into<String>, want: Want, call: Call) {
        self.0.push(Case {
            what: what.into(),
            want,
            call,
        });
    }
}

/// A unary call on a clone of `api`, its response dropped.
macro_rules! unary {
    ($api:expr, $client:ident . $method:ident ( $req:expr )) => {{
        let mut a = $api.clone();
        let r = $req;
        Box::pin(async move { a.$client.$method(r).await.map(drop) }) as Call
    }};
}

/// A server-streaming call on a clone of `api`: its error, at the call or as the first
/// message. A stream that stays open is answered OK after 3 s.
macro_rules! streaming {
    ($api:expr, $client:ident . $method:ident ( $req:expr )) => {{
        let mut a = $api.clone();
        let r = $req;
        Box::pin(async move {
            let mut stream = a.$client.$method(r).await?.into_inner();
            match tokio::time::timeout(Duration::from_secs(3), stream.message()).await {
                Ok(first) => first.map(drop),
                Err(_) => Ok(()),
            }
        }) as Call
    }};
}

/// Rows of every table, in a fixed order.
const TABLES: [&str; 10] = [
    "programs",
    "initiatives",
    "initiative_indicators",
    "targets",
    "indicators",
    "observation_versions",
    "observation_commits",
    "audit_events",
    "api_keys",
    "idempotency_keys",
];

async fn counts(pool: &PgPool) -> Vec<i64> {
    let sql = TABLES
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {t})"))
        .collect::<Vec<_>>()
        .join(", ");
    let row: sqlx::postgres::PgRow =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT ARRAY[{sql}]")))
            .fetch_one(pool)
            .await
            .unwrap();
    sqlx::Row::get(&row, 0)
}

/// Why `status` is not `want`, if it is not.
fn departure(status: &tonic::Status, want: &Want) -> Option<String> {
    let details = status.get_error_details();
    let code_ok = match want {
        Want::Invalid(_) => status.code() == Code::InvalidArgument,
        Want::Code(c) => status.code() == *c,
        Want::Ok => false,
    };
    if !code_ok {
        return Some(format!(
            "answered {:?} {:?}, wanted {want:?}",
            status.code(),
            status.message()
        ));
    }
    // Errors of the service carry its ErrorInfo (those of the transport, such as the
    // message-size limit, do not).
    if status.code() != Code::ResourceExhausted
        && details
            .error_info()
            .is_none_or(|i| i.domain != "tradewatch.dev")
    {
        return Some(format!("no ErrorInfo: {status:?}"));
    }
    if let Want::Invalid(field) = want {
        let Some(bad) = details.bad_request() else {
            return Some(format!("no BadRequest: {status:?}"));
        };
        let named = bad.field_violations.iter().any(|v| {
            let hit = match field.strip_suffix('*') {
                Some(prefix) => v.field.starts_with(prefix),
                None => v.field == *field,
            };
            hit && !v.description.is_empty() && !v.reason.is_empty()
        });
        if !named {
            let fields: Vec<(&str, &str)> = bad
                .field_violations
                .iter()
                .map(|v| (v.field.as_str(), v.reason.as_str()))
                .collect();
            return Some(format!("no violation for {field:?}: {fields:?}"));
        }
    }
    None
}

/// Runs the cases one after the other; each must answer as wanted, within 15 s, and
/// leave every table as it was. Panics listing every departure.
async fn run(pool: &PgPool, cases: Cases) {
    let total = cases.0.len();
    let mut departures = Vec::new();
    let mut before = counts(pool).await;
    for case in cases.0 {
        let answer = tokio::time::timeout(Duration::from_secs(15), case.call).await;
        let after = counts(pool).await;
        let problem = match &answer {
            Err(_) => Some("no answer within 15 s".to_owned()),
            Ok(Ok(())) if matches!(case.want, Want::Ok) => None,
            Ok(Ok(())) => Some(format!("answered OK, wanted {:?}", case.want)),
            Ok(Err(status)) => departure(status, &case.want),
        };
        if let Some(p) = problem {
            departures.push(format!("{}: {p}", case.what));
        }
        if after != before {
            let changed: Vec<String> = TABLES
                .iter()
                .zip(before.iter().zip(&after))
                .filter(|(_, (b, a))| b != a)
                .map(|(t, (b, a))| format!("{t} {b} -> {a}"))
                .collect();
            departures.push(format!("{}: changed the data: {changed:?}", case.what));
            before = after;
        }
    }
    println!("{total} hostile calls, {} departures", departures.len());
    assert!(
        departures.is_empty(),
        "{} of {total} hostile calls answered wrongly:\n{}",
        departures.len(),
        departures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Hostile values

/// SQL injection attempts: every one is refused where a name, id or code is expected,
/// and stored verbatim where free text is.
const INJECTIONS: [&str; 6] = [
    "'; DROP TABLE programs; --",
    "programs/x' OR '1'='1",
    "x'); DELETE FROM observation_versions; --",
    "1; SELECT pg_sleep(10)",
    "\\x27 OR 1=1",
    "%_%",
];

/// Strings that no name, id, code, period or token accepts: injections, a 10,000
/// character one, NUL and other control characters, and look-alikes.
fn hostile_names(valid: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = INJECTIONS
        .iter()
        .map(|s| (format!("injection {s:?}"), s.to_string()))
        .collect();
    out.push(("injection appended".into(), format!("{valid}' OR '1'='1")));
    out.push(("10,000 characters".into(), "a".repeat(10_000)));
    out.push((
        "10,000 characters appended".into(),
        format!("{valid}{}", "a".repeat(10_000)),
    ));
    out.push(("NUL".into(), format!("{valid}\0")));
    out.push(("NUL inside".into(), valid.replacen('/', "\0/", 1)));
    out.push(("escape character".into(), format!("{valid}\u{1b}[31m")));
    out.push(("line break".into(), format!("{valid}\n")));
    out.push(("upper case".into(), valid.to_uppercase()));
    out.push(("full-width".into(), valid.replace('a', "ａ")));
    out.push(("path traversal".into(), format!("{valid}/../{valid}")));
    out.push(("trailing slash".into(), format!("{valid}/")));
    out.push(("space".into(), format!(" {valid}")));
    // Variants that leave the value as it was are no variants.
    out.retain(|(_, s)| s != valid);
    out
}

/// Free-text values no text field accepts: 1 MB, NUL, escape and other control
/// characters.
fn hostile_texts() -> Vec<(&'static str, String)> {
    vec![
        ("1 MB", "x".repeat(1_000_000)),
        ("NUL", "before\0after".to_owned()),
        ("escape character", "red \u{1b}[31m text".to_owned()),
        ("DEL", "a\u{7f}b".to_owned()),
        ("C1 control", "a\u{85}b".to_owned()),
        ("vertical tab", "a\u{b}b".to_owned()),
    ]
}

/// Decimal texts that are not exact decimals.
const BAD_DECIMALS: [&str; 20] = [
    "1e999999",
    "1e-999999",
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    " 1",
    "1 ",
    "1,000",
    "0x10",
    "1e",
    "--1",
    "1.2.3",
    "١٢",
    "１",
    "1\0",
    "'; DROP TABLE programs; --",
    "1e48",
    "0.0000000000000000001",
    "1_000",
];

/// `"1"` followed by 5,000 zeros, and 5,000 digits after the point.
fn huge_decimals() -> Vec<(&'static str, String)> {
    vec![
        ("1 and 5,000 zeros", format!("1{}", "0".repeat(5000))),
        ("5,000 decimals", format!("0.{}1", "0".repeat(5000))),
    ]
}

/// Timestamps out of range, for every instant field.
fn bad_timestamps() -> Vec<(&'static str, Timestamp)> {
    vec![
        (
            "seconds = i64::MAX",
            Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            },
        ),
        (
            "seconds = i64::MIN",
            Timestamp {
                seconds: i64::MIN,
                nanos: 0,
            },
        ),
        (
            "nanos = -1",
            Timestamp {
                seconds: 0,
                nanos: -1,
            },
        ),
        (
            "nanos = 1e9",
            Timestamp {
                seconds: 0,
                nanos: 1_000_000_000,
            },
        ),
        (
            "nanos = i32::MIN",
            Timestamp {
                seconds: 1_600_000_000,
                nanos: i32::MIN,
            },
        ),
        // Within chrono's range (±262,000 years) but not PostgreSQL's (4713 BC to
        // 294276 AD).
        (
            "year 7500 BC",
            Timestamp {
                seconds: -300_000_000_000,
                nanos: 0,
            },
        ),
        (
            "year 260,000",
            Timestamp {
                seconds: 8_200_000_000_000,
                nanos: 0,
            },
        ),
    ]
}

/// Enum numbers no enum defines.
const BAD_ENUMS: [i32; 4] = [99, -1, i32::MAX, i32::MIN];

/// Page tokens forged in various ways (a token issued for another request is added by
/// the tests that have one).
fn forged_tokens() -> Vec<(String, String)> {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut out: Vec<(String, String)> = INJECTIONS
        .iter()
        .map(|s| (format!("injection {s:?}"), s.to_string()))
        .collect();
    out.push(("AAAA".into(), "AAAA".into()));
    out.push(("not base64".into(), "!!!!".into()));
    out.push(("version 1, no tag".into(), b64(&[1, b'a'])));
    out.push((
        "version 1, zero tag".into(),
        b64(&[[1u8].as_slice(), b"zz", &[0; 16]].concat()),
    ));
    out.push((
        "version 1, key with an injection, zero tag".into(),
        b64(&[[1u8].as_slice(), b"' OR 1=1 --", &[0; 16]].concat()),
    ));
    out.push(("version 9".into(), b64(&[9; 40])));
    out.push(("10,000 characters".into(), "A".repeat(10_000)));
    out.push(("NUL".into(), "AAAA\0".into()));
    out
}

// ---------------------------------------------------------------------------------------
// The fixture

/// A programme `cq` with an initiative `root` and a target `t1`, an annual indicator
/// `cq-offshore` with three figures and a monthly one, and a viewer key.
async fn fixture() -> (TestApp, Api) {
    let mut app = spawn_app().await;
    app.create_program("cq").await;
    app.create_indicator("cq-offshore").await;
    app.create_indicator_with("cq-monthly", pb::Frequency::Monthly, 4)
        .await;
    app.create_initiative("cq", "root", None).await.unwrap();
    app.create_target("cq", "t1", level_target("indicators/cq-offshore"))
        .await
        .unwrap();
    let y = |p: &str| format!("indicators/cq-offshore/observations/{p}");
    app.write(vec![
        obs(&y("2018"), "21.5", pb::observation::Status::Normal),
        obs(&y("2019"), "20.6", pb::observation::Status::Normal),
        obs(&y("2020"), "22.8", pb::observation::Status::Provisional),
    ])
    .await;
    let api = Api::new(app.channel().await);
    (app, api)
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

// ---------------------------------------------------------------------------------------
// ProgramService

#[tokio::test]
async fn hostile_programs_are_refused_and_change_nothing() {
    let (app, api) = fixture().await;
    let mut cases = Cases::default();
    let create = |p: pb::Program, id: &str| pb::CreateProgramRequest {
        request_id: String::new(),
        program: Some(p),
        program_id: id.into(),
    };

    // Free text: too long, control characters, NUL.
    type Field = fn(&mut pb::Program) -> &mut String;
    let texts: [(&str, Field); 3] = [
        ("program.title", |p| &mut p.title),
        ("program.issuing_body", |p| &mut p.issuing_body),
        ("program.summary", |p| &mut p.summary),
    ];
    for (field, get) in texts {
        for (what, text) in hostile_texts() {
            let mut p = program("Valid");
            *get(&mut p) = text;
            cases.add(
                format!("CreateProgram {field} {what}"),
                invalid(field),
                unary!(api, programs.create_program(create(p, "fresh"))),
            );
        }
    }
    // Names, ids, codes, dates and links.
    type Spoil = fn(&mut pb::CreateProgramRequest, String);
    let coded: [(&str, &str, Spoil); 5] = [
        ("program_id", "fresh", |r, s| r.program_id = s),
        ("program.jurisdiction", "CN-CQ", |r, s| {
            r.program.as_mut().unwrap().jurisdiction = s
        }),
        ("program.adoption_date", "2015-05-25", |r, s| {
            r.program.as_mut().unwrap().adoption_date = s
        }),
        ("program.source_uri", "https://example.org/a", |r, s| {
            r.program.as_mut().unwrap().source_uri = s
        }),
        (
            "request_id",
            "8c1f3c9e-5b7a-4e2f-9d3a-2f6b1c0e7a41",
            |r, s| r.request_id = s,
        ),
    ];
    for (field, valid, spoil) in coded {
        for (what, s) in hostile_names(valid) {
            // Links may hold `..`, a trailing `/` or any letter.
            if field == "program.source_uri"
                && matches!(
                    what.as_str(),
                    "path traversal" | "trailing slash" | "full-width"
                )
            {
                continue;
            }
            // Request ids are UUIDs, which parse in upper case too.
            if field == "request_id" && what == "upper case" {
                continue;
            }
            let mut r = create(program("Valid"), "fresh");
            spoil(&mut r, s);
            cases.add(
                format!("CreateProgram {field} {what}"),
                invalid(field),
                unary!(api, programs.create_program(r)),
            );
        }
    }
    // Years.
    for (what, start, end, field) in [
        ("negative start", -2015, 2020, "program.start_year"),
        ("i32::MIN start", i32::MIN, 2020, "program.start_year"),
        ("i32::MAX end", 2015, i32::MAX, "program.end_year"),
        ("end before start", 2020, 2015, "program.end_year"),
    ] {
        let mut p = program("Valid");
        p.start_year = start;
        p.end_year = end;
        cases.add(
            format!("CreateProgram {what}"),
            invalid(field),
            unary!(api, programs.create_program(create(p, "fresh"))),
        );
    }
    // Over 4 MiB: refused by the decoder.
    cases.add(
        "CreateProgram of 5 MiB",
        Want::Code(Code::ResourceExhausted),
        unary!(
            api,
            programs.create_program(create(program(&"x".repeat(5 << 20)), "fresh"))
        ),
    );
    // An existing id.
    cases.add(
        "CreateProgram existing id",
        Want::Code(Code::AlreadyExists),
        unary!(api, programs.create_program(create(program("Again"), "cq"))),
    );

    // Get, Delete, Update by name.
    for (what, name) in hostile_names("programs/cq") {
        cases.add(
            format!("GetProgram name {what}"),
            invalid("name"),
            unary!(
                api,
                programs.get_program(pb::GetProgramRequest { name: name.clone() })
            ),
        );
        cases.add(
            format!("DeleteProgram name {what}"),
            invalid("name"),
            unary!(
                api,
                programs.delete_program(pb::DeleteProgramRequest {
                    name: name.clone(),
                    etag: String::new(),
                    force: true,
                })
            ),
        );
        cases.add(
            format!("UpdateProgram name {what}"),
            invalid("program.name"),
            unary!(
                api,
                programs.update_program(pb::UpdateProgramRequest {
                    program: Some(pb::Program {
                        name,
                        title: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["title"]),
                })
            ),
        );
    }
    for (what, etag) in [
        ("injection", "'; DROP TABLE programs; --".to_owned()),
        ("10,000 characters", "e".repeat(10_000)),
        ("NUL", "\0".to_owned()),
    ] {
        cases.add(
            format!("DeleteProgram etag {what}"),
            Want::Code(Code::Aborted),
            unary!(
                api,
                programs.delete_program(pb::DeleteProgramRequest {
                    name: "programs/cq".into(),
                    etag: etag.clone(),
                    force: true,
                })
            ),
        );
        cases.add(
            format!("UpdateProgram etag {what}"),
            Want::Code(Code::Aborted),
            unary!(
                api,
                programs.update_program(pb::UpdateProgramRequest {
                    program: Some(pb::Program {
                        name: "programs/cq".into(),
                        title: "Renamed".into(),
                        etag,
                        ..Default::default()
                    }),
                    update_mask: mask(&["title"]),
                })
            ),
        );
    }
    // Update: hostile masks and values.
    for (what, paths, field) in [
        (
            "unknown path",
            vec!["title; DROP TABLE programs"],
            "update_mask.paths[0]",
        ),
        (
            "output-only path",
            vec!["create_time"],
            "update_mask.paths[0]",
        ),
        (
            "10,000-character path",
            vec![&*"t".repeat(10_000)],
            "update_mask.paths[0]",
        ),
        ("NUL path", vec!["title\0"], "update_mask.paths[0]"),
        ("* with another path", vec!["*", "title"], "update_mask"),
    ] {
        cases.add(
            format!("UpdateProgram mask {what}"),
            invalid(field),
            unary!(
                api,
                programs.update_program(pb::UpdateProgramRequest {
                    program: Some(pb::Program {
                        name: "programs/cq".into(),
                        title: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: paths.iter().map(|p| p.to_string()).collect(),
                    }),
                })
            ),
        );
    }
    for (what, text) in hostile_texts() {
        cases.add(
            format!("UpdateProgram title {what}"),
            invalid("program.title"),
            unary!(
                api,
                programs.update_program(pb::UpdateProgramRequest {
                    program: Some(pb::Program {
                        name: "programs/cq".into(),
                        title: text,
                        ..Default::default()
                    }),
                    update_mask: mask(&["title"]),
                })
            ),
        );
    }
    for (what, year) in [
        ("negative", -1),
        ("i32::MIN", i32::MIN),
        ("i32::MAX", i32::MAX),
    ] {
        cases.add(
            format!("UpdateProgram start_year {what}"),
            invalid("program.start_year"),
            unary!(
                api,
                programs.update_program(pb::UpdateProgramRequest {
                    program: Some(pb::Program {
                        name: "programs/cq".into(),
                        start_year: year,
                        ..Default::default()
                    }),
                    update_mask: mask(&["start_year"]),
                })
            ),
        );
    }
    for (what, j) in hostile_names("CN-CQ") {
        cases.add(
            format!("UpdateProgram jurisdiction {what}"),
            invalid("program.jurisdiction"),
            unary!(
                api,
                programs.update_program(pb::UpdateProgramRequest {
                    program: Some(pb::Program {
                        name: "programs/cq".into(),
                        jurisdiction: j,
                        ..Default::default()
                    }),
                    update_mask: None,
                })
            ),
        );
    }

    // Lists: page sizes and tokens.
    for size in [-1, i32::MIN] {
        cases.add(
            format!("ListPrograms page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                programs.list_programs(pb::ListProgramsRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    page_size: size,
                    page_token: String::new(),
                })
            ),
        );
    }
    let mut tokens = forged_tokens();
    tokens.push((
        "token of ListIndicators".into(),
        indicators_token(&api).await,
    ));
    for (what, token) in tokens {
        cases.add(
            format!("ListPrograms page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                programs.list_programs(pb::ListProgramsRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    page_size: 1,
                    page_token: token,
                })
            ),
        );
    }
    run(&app.pool, cases).await;
}

/// A genuine page token of ListIndicators (the fixture has two indicators).
async fn indicators_token(api: &Api) -> String {
    let token = api
        .indicators
        .clone()
        .list_indicators(pb::ListIndicatorsRequest {
            filter: String::new(),
            order_by: String::new(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty());
    token
}

/// A genuine page token of ListPrograms (with two programmes at least).
async fn programs_token(api: &Api) -> String {
    let token = api
        .programs
        .clone()
        .list_programs(pb::ListProgramsRequest {
            filter: String::new(),
            order_by: String::new(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty());
    token
}

#[tokio::test]
async fn hostile_initiatives_and_targets_are_refused_and_change_nothing() {
    let (mut app, api) = fixture().await;
    app.create_program("other").await;
    let mut cases = Cases::default();
    let create = |i: pb::Initiative| pb::CreateInitiativeRequest {
        parent: "programs/cq".into(),
        initiative: Some(i),
        initiative_id: "fresh".into(),
        request_id: String::new(),
    };
    for (what, text) in hostile_texts() {
        for (field, spoil) in [
            (
                "initiative.title",
                (|i, t| i.title = t) as fn(&mut pb::Initiative, String),
            ),
            ("initiative.description", |i, t| i.description = t),
            ("initiative.lead_agency", |i, t| i.lead_agency = t),
        ] {
            let mut i = initiative("Valid");
            spoil(&mut i, text.clone());
            cases.add(
                format!("CreateInitiative {field} {what}"),
                invalid(field),
                unary!(api, programs.create_initiative(create(i))),
            );
        }
    }
    for (what, s) in hostile_names("programs/cq") {
        let mut r = create(initiative("Valid"));
        r.parent = s.clone();
        cases.add(
            format!("CreateInitiative parent {what}"),
            invalid("parent"),
            unary!(api, programs.create_initiative(r)),
        );
        cases.add(
            format!("ListInitiatives parent {what}"),
            invalid("parent"),
            unary!(
                api,
                programs.list_initiatives(pb::ListInitiativesRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    parent: s.clone(),
                    page_size: 0,
                    page_token: String::new(),
                })
            ),
        );
        cases.add(
            format!("CreateTarget parent {what}"),
            invalid("parent"),
            unary!(
                api,
                programs.create_target(pb::CreateTargetRequest {
                    parent: s.clone(),
                    target: Some(level_target("indicators/cq-offshore")),
                    target_id: "fresh".into(),
                    request_id: String::new(),
                })
            ),
        );
        cases.add(
            format!("ListTargets parent {what}"),
            invalid("parent"),
            unary!(
                api,
                programs.list_targets(pb::ListTargetsRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    parent: s,
                    page_size: 0,
                    page_token: String::new(),
                })
            ),
        );
    }
    for (what, s) in hostile_names("fresh") {
        let mut r = create(initiative("Valid"));
        r.initiative_id = s.clone();
        cases.add(
            format!("CreateInitiative initiative_id {what}"),
            invalid("initiative_id"),
            unary!(api, programs.create_initiative(r)),
        );
        cases.add(
            format!("CreateTarget target_id {what}"),
            invalid("target_id"),
            unary!(
                api,
                programs.create_target(pb::CreateTargetRequest {
                    parent: "programs/cq".into(),
                    target: Some(level_target("indicators/cq-offshore")),
                    target_id: s,
                    request_id: String::new(),
                })
            ),
        );
    }
    for (what, s) in hostile_names("programs/cq/initiatives/root") {
        let mut i = initiative("Valid");
        i.parent_initiative = s.clone();
        cases.add(
            format!("CreateInitiative parent_initiative {what}"),
            invalid("initiative.parent_initiative"),
            unary!(api, programs.create_initiative(create(i))),
        );
        for (method, call) in [
            (
                "GetInitiative",
                unary!(
                    api,
                    programs.get_initiative(pb::GetInitiativeRequest { name: s.clone() })
                ),
            ),
            (
                "DeleteInitiative",
                unary!(
                    api,
                    programs.delete_initiative(pb::DeleteInitiativeRequest {
                        name: s.clone(),
                        etag: String::new(),
                        force: true,
                    })
                ),
            ),
        ] {
            cases.add(format!("{method} name {what}"), invalid("name"), call);
        }
        cases.add(
            format!("UpdateInitiative name {what}"),
            invalid("initiative.name"),
            unary!(
                api,
                programs.update_initiative(pb::UpdateInitiativeRequest {
                    initiative: Some(pb::Initiative {
                        name: s.clone(),
                        title: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["title"]),
                })
            ),
        );
        let mut t = level_target("indicators/cq-offshore");
        t.initiative = s;
        cases.add(
            format!("CreateTarget initiative {what}"),
            invalid("target.initiative"),
            unary!(
                api,
                programs.create_target(pb::CreateTargetRequest {
                    parent: "programs/cq".into(),
                    target: Some(t),
                    target_id: "fresh".into(),
                    request_id: String::new(),
                })
            ),
        );
    }
    // A parent in another programme.
    let mut i = initiative("Valid");
    i.parent_initiative = "programs/other/initiatives/root".into();
    cases.add(
        "CreateInitiative parent in another programme",
        invalid("initiative.parent_initiative"),
        unary!(api, programs.create_initiative(create(i))),
    );
    // Lists of tags and indicators.
    for (what, tags, field) in [
        (
            "33 tags",
            (0..33).map(|i| format!("t{i}")).collect::<Vec<_>>(),
            "initiative.tags",
        ),
        (
            "10,000-character tag",
            vec!["t".repeat(10_000)],
            "initiative.tags[0]",
        ),
        ("NUL tag", vec!["t\0".into()], "initiative.tags[0]"),
        (
            "injection tag",
            vec![INJECTIONS[0].into()],
            "initiative.tags[0]",
        ),
        (
            "duplicate tags",
            vec!["a".into(), "a".into()],
            "initiative.tags[1]",
        ),
        ("100,000 tags", vec!["a".into(); 100_000], "initiative.tags"),
    ] {
        let mut i = initiative("Valid");
        i.tags = tags;
        cases.add(
            format!("CreateInitiative {what}"),
            invalid(field),
            unary!(api, programs.create_initiative(create(i))),
        );
    }
    for (what, s) in hostile_names("indicators/cq-offshore") {
        let mut i = initiative("Valid");
        i.indicators = vec![s.clone()];
        cases.add(
            format!("CreateInitiative indicators[0] {what}"),
            invalid("initiative.indicators[0]"),
            unary!(api, programs.create_initiative(create(i))),
        );
        let mut t = level_target("indicators/cq-offshore");
        t.indicator = s;
        cases.add(
            format!("CreateTarget indicator {what}"),
            invalid("target.indicator"),
            unary!(
                api,
                programs.create_target(pb::CreateTargetRequest {
                    parent: "programs/cq".into(),
                    target: Some(t),
                    target_id: "fresh".into(),
                    request_id: String::new(),
                })
            ),
        );
    }
    let mut i = initiative("Valid");
    i.indicators = (0..101).map(|k| format!("indicators/i{k}")).collect();
    cases.add(
        "CreateInitiative 101 indicators",
        invalid("initiative.indicators"),
        unary!(api, programs.create_initiative(create(i))),
    );
    let mut i = initiative("Valid");
    i.indicators = vec!["indicators/no-such".into()];
    cases.add(
        "CreateInitiative unknown indicator",
        invalid("initiative.indicators[0]"),
        unary!(api, programs.create_initiative(create(i))),
    );
    for n in BAD_ENUMS {
        let mut i = initiative("Valid");
        i.state = n;
        cases.add(
            format!("CreateInitiative state {n}"),
            invalid("initiative.state"),
            unary!(api, programs.create_initiative(create(i))),
        );
    }
    for (what, position) in [("-1", -1), ("i32::MIN", i32::MIN), ("i32::MAX", i32::MAX)] {
        let mut i = initiative("Valid");
        i.position = position;
        cases.add(
            format!("CreateInitiative position {what}"),
            invalid("initiative.position"),
            unary!(api, programs.create_initiative(create(i))),
        );
    }
    for (what, date) in [
        ("month 13", "2015-13-01"),
        ("year 0", "0000-01-01"),
        ("injection", "2015-01-01'; --"),
        ("NUL", "2015-01-01\0"),
        ("timestamp", "2015-01-01T00:00:00Z"),
    ] {
        let mut i = initiative("Valid");
        i.start_date = date.into();
        cases.add(
            format!("CreateInitiative start_date {what}"),
            invalid("initiative.start_date"),
            unary!(api, programs.create_initiative(create(i))),
        );
    }
    cases.add(
        "UpdateInitiative itself as parent",
        invalid("initiative.parent_initiative"),
        unary!(
            api,
            programs.update_initiative(pb::UpdateInitiativeRequest {
                initiative: Some(pb::Initiative {
                    name: "programs/cq/initiatives/root".into(),
                    parent_initiative: "programs/cq/initiatives/root".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["parent_initiative"]),
            })
        ),
    );

    // Targets: decimals, multipliers, periods, enums.
    let target = |spoil: &dyn Fn(&mut pb::Target)| {
        let mut t = level_target("indicators/cq-offshore");
        spoil(&mut t);
        pb::CreateTargetRequest {
            parent: "programs/cq".into(),
            target: Some(t),
            target_id: "fresh".into(),
            request_id: String::new(),
        }
    };
    let mut decimals: Vec<(String, String)> = BAD_DECIMALS
        .iter()
        .map(|d| (format!("{d:?}"), d.to_string()))
        .collect();
    decimals.extend(huge_decimals().into_iter().map(|(w, d)| (w.to_owned(), d)));
    for (what, d) in decimals {
        cases.add(
            format!("CreateTarget target_value {what}"),
            invalid("target.target_value"),
            unary!(
                api,
                programs.create_target(target(&|t| t.target_value = d.clone()))
            ),
        );
        cases.add(
            format!("CreateTarget baseline_value {what}"),
            invalid("target.baseline_value"),
            unary!(
                api,
                programs.create_target(target(&|t| {
                    t.baseline_value = d.clone();
                    t.baseline_period = "2015".into();
                }))
            ),
        );
    }
    for (what, m) in [
        ("-1000", -1000),
        ("i32::MIN", i32::MIN),
        ("i32::MAX", i32::MAX),
        ("16", 16),
    ] {
        cases.add(
            format!("CreateTarget unit_multiplier {what}"),
            invalid("target.unit_multiplier"),
            unary!(
                api,
                programs.create_target(target(&|t| t.unit_multiplier = m))
            ),
        );
    }
    for (what, p) in hostile_names("2020") {
        cases.add(
            format!("CreateTarget target_period {what}"),
            invalid("target.target_period"),
            unary!(
                api,
                programs.create_target(target(&|t| t.target_period = p.clone()))
            ),
        );
    }
    for (what, p) in [
        ("year -1", "-0001"),
        ("year 99999", "99999"),
        ("month 13", "2020-M13"),
        ("quarter 5", "2020-Q5"),
    ] {
        cases.add(
            format!("CreateTarget target_period {what}"),
            invalid("target.target_period"),
            unary!(
                api,
                programs.create_target(target(&|t| t.target_period = p.into()))
            ),
        );
    }
    for n in BAD_ENUMS {
        cases.add(
            format!("CreateTarget kind {n}"),
            invalid("target.kind"),
            unary!(api, programs.create_target(target(&|t| t.kind = n))),
        );
        cases.add(
            format!("CreateTarget direction {n}"),
            invalid("target.direction"),
            unary!(api, programs.create_target(target(&|t| t.direction = n))),
        );
    }
    for (what, text) in hostile_texts() {
        cases.add(
            format!("CreateTarget title {what}"),
            invalid("target.title"),
            unary!(
                api,
                programs.create_target(target(&|t| t.title = text.clone()))
            ),
        );
        cases.add(
            format!("CreateTarget description {what}"),
            invalid("target.description"),
            unary!(
                api,
                programs.create_target(target(&|t| t.description = text.clone()))
            ),
        );
    }
    for (what, s) in hostile_names("programs/cq/targets/t1") {
        cases.add(
            format!("GetTarget name {what}"),
            invalid("name"),
            unary!(
                api,
                programs.get_target(pb::GetTargetRequest { name: s.clone() })
            ),
        );
        cases.add(
            format!("DeleteTarget name {what}"),
            invalid("name"),
            unary!(
                api,
                programs.delete_target(pb::DeleteTargetRequest {
                    name: s.clone(),
                    etag: String::new(),
                })
            ),
        );
        cases.add(
            format!("UpdateTarget name {what}"),
            invalid("target.name"),
            unary!(
                api,
                programs.update_target(pb::UpdateTargetRequest {
                    target: Some(pb::Target {
                        name: s,
                        title: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["title"]),
                })
            ),
        );
    }
    cases.add(
        "UpdateTarget target_value NaN",
        invalid("target.target_value"),
        unary!(
            api,
            programs.update_target(pb::UpdateTargetRequest {
                target: Some(pb::Target {
                    name: "programs/cq/targets/t1".into(),
                    target_value: "NaN".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["target_value"]),
            })
        ),
    );

    // Page sizes and tokens.
    let mut tokens = forged_tokens();
    tokens.push(("token of ListPrograms".into(), programs_token(&api).await));
    for (what, token) in tokens {
        cases.add(
            format!("ListInitiatives page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                programs.list_initiatives(pb::ListInitiativesRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    parent: "programs/cq".into(),
                    page_size: 1,
                    page_token: token.clone(),
                })
            ),
        );
        cases.add(
            format!("ListTargets page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                programs.list_targets(pb::ListTargetsRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    parent: "programs/cq".into(),
                    page_size: 1,
                    page_token: token,
                })
            ),
        );
    }
    for size in [-1, i32::MIN] {
        cases.add(
            format!("ListInitiatives page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                programs.list_initiatives(pb::ListInitiativesRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    parent: "programs/cq".into(),
                    page_size: size,
                    page_token: String::new(),
                })
            ),
        );
        cases.add(
            format!("ListTargets page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                programs.list_targets(pb::ListTargetsRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    parent: "programs/cq".into(),
                    page_size: size,
                    page_token: String::new(),
                })
            ),
        );
    }
    run(&app.pool, cases).await;
}

// ---------------------------------------------------------------------------------------
// IndicatorService

#[tokio::test]
async fn hostile_indicators_are_refused_and_change_nothing() {
    let (mut app, api) = fixture().await;
    let mut cases = Cases::default();
    let create = |spoil: &dyn Fn(&mut pb::CreateIndicatorRequest)| {
        let mut r = pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(indicator("Valid")),
            indicator_id: "fresh".into(),
        };
        spoil(&mut r);
        r
    };
    type Text = fn(&mut pb::Indicator, String);
    let texts: [(&str, Text); 3] = [
        ("indicator.title", |i, t| i.title = t),
        ("indicator.description", |i, t| i.description = t),
        ("indicator.source_agency", |i, t| i.source_agency = t),
    ];
    for (field, spoil) in texts {
        for (what, text) in hostile_texts() {
            cases.add(
                format!("CreateIndicator {field} {what}"),
                invalid(field),
                unary!(
                    api,
                    indicators.create_indicator(create(&|r| spoil(
                        r.indicator.as_mut().unwrap(),
                        text.clone()
                    )))
                ),
            );
        }
    }
    type Coded = fn(&mut pb::CreateIndicatorRequest, String);
    let coded: [(&str, &str, Coded); 5] = [
        ("indicator_id", "fresh", |r, s| r.indicator_id = s),
        ("indicator.unit", "USD", |r, s| {
            r.indicator.as_mut().unwrap().unit = s
        }),
        ("indicator.service_category", "SJ", |r, s| {
            r.indicator.as_mut().unwrap().service_category = s
        }),
        ("indicator.region", "CN-CQ", |r, s| {
            r.indicator.as_mut().unwrap().region = s
        }),
        (
            "request_id",
            "8c1f3c9e-5b7a-4e2f-9d3a-2f6b1c0e7a41",
            |r, s| r.request_id = s,
        ),
    ];
    for (field, valid, spoil) in coded {
        for (what, s) in hostile_names(valid) {
            if field == "request_id" && what == "upper case" {
                continue;
            }
            cases.add(
                format!("CreateIndicator {field} {what}"),
                invalid(field),
                unary!(
                    api,
                    indicators.create_indicator(create(&|r| spoil(r, s.clone())))
                ),
            );
        }
    }
    for (what, s) in hostile_names("outsourcing") {
        cases.add(
            format!("CreateIndicator dimension key {what}"),
            invalid("indicator.dimensions[*"),
            unary!(
                api,
                indicators.create_indicator(create(&|r| {
                    r.indicator
                        .as_mut()
                        .unwrap()
                        .dimensions
                        .insert(s.clone(), "ITO".into());
                }))
            ),
        );
    }
    for (what, s) in hostile_names("ITO") {
        cases.add(
            format!("CreateIndicator dimension value {what}"),
            invalid("indicator.dimensions[*"),
            unary!(
                api,
                indicators.create_indicator(create(&|r| {
                    r.indicator
                        .as_mut()
                        .unwrap()
                        .dimensions
                        .insert("outsourcing".into(), s.clone());
                }))
            ),
        );
    }
    cases.add(
        "CreateIndicator 10,000 dimensions",
        invalid("indicator.dimensions"),
        unary!(
            api,
            indicators.create_indicator(create(&|r| {
                r.indicator.as_mut().unwrap().dimensions =
                    (0..10_000).map(|k| (format!("d{k}"), "X".into())).collect();
            }))
        ),
    );
    type Enum = fn(&mut pb::Indicator, i32);
    let enums: [(&str, Enum); 4] = [
        ("indicator.frequency", |i, n| i.frequency = n),
        ("indicator.flow", |i, n| i.flow = n),
        ("indicator.aggregation", |i, n| i.aggregation = n),
        ("indicator.direction", |i, n| i.direction = n),
    ];
    for (field, spoil) in enums {
        for n in BAD_ENUMS {
            cases.add(
                format!("CreateIndicator {field} {n}"),
                invalid(field),
                unary!(
                    api,
                    indicators
                        .create_indicator(create(&|r| spoil(r.indicator.as_mut().unwrap(), n)))
                ),
            );
        }
    }
    for (what, m) in [
        ("-1000", -1000),
        ("i32::MIN", i32::MIN),
        ("i32::MAX", i32::MAX),
        ("16", 16),
    ] {
        cases.add(
            format!("CreateIndicator unit_multiplier {what}"),
            invalid("indicator.unit_multiplier"),
            unary!(
                api,
                indicators.create_indicator(create(&|r| r
                    .indicator
                    .as_mut()
                    .unwrap()
                    .unit_multiplier = m))
            ),
        );
    }
    cases.add(
        "CreateIndicator of 5 MiB",
        Want::Code(Code::ResourceExhausted),
        unary!(
            api,
            indicators.create_indicator(create(
                &|r| r.indicator.as_mut().unwrap().description = "x".repeat(5 << 20)
            ))
        ),
    );
    cases.add(
        "CreateIndicator without indicator",
        invalid("indicator"),
        unary!(
            api,
            indicators.create_indicator(create(&|r| r.indicator = None))
        ),
    );
    for (what, s) in hostile_names("indicators/cq-offshore") {
        cases.add(
            format!("GetIndicator name {what}"),
            invalid("name"),
            unary!(
                api,
                indicators.get_indicator(pb::GetIndicatorRequest { name: s.clone() })
            ),
        );
        cases.add(
            format!("DeleteIndicator name {what}"),
            invalid("name"),
            unary!(
                api,
                indicators.delete_indicator(pb::DeleteIndicatorRequest {
                    name: s.clone(),
                    etag: String::new(),
                    force: true,
                })
            ),
        );
        cases.add(
            format!("UpdateIndicator name {what}"),
            invalid("indicator.name"),
            unary!(
                api,
                indicators.update_indicator(pb::UpdateIndicatorRequest {
                    indicator: Some(pb::Indicator {
                        name: s,
                        title: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["title"]),
                })
            ),
        );
    }
    for (what, text) in hostile_texts() {
        cases.add(
            format!("UpdateIndicator title {what}"),
            invalid("indicator.title"),
            unary!(
                api,
                indicators.update_indicator(pb::UpdateIndicatorRequest {
                    indicator: Some(pb::Indicator {
                        name: "indicators/cq-offshore".into(),
                        title: text,
                        ..Default::default()
                    }),
                    update_mask: mask(&["title"]),
                })
            ),
        );
    }
    cases.add(
        "UpdateIndicator unit_multiplier i32::MIN",
        invalid("indicator.unit_multiplier"),
        unary!(
            api,
            indicators.update_indicator(pb::UpdateIndicatorRequest {
                indicator: Some(pb::Indicator {
                    name: "indicators/cq-offshore".into(),
                    unit_multiplier: i32::MIN,
                    ..Default::default()
                }),
                update_mask: mask(&["unit_multiplier"]),
            })
        ),
    );
    for size in [-1, i32::MIN] {
        cases.add(
            format!("ListIndicators page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                indicators.list_indicators(pb::ListIndicatorsRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    page_size: size,
                    page_token: String::new(),
                })
            ),
        );
    }
    app.create_program("second").await;
    let mut tokens = forged_tokens();
    tokens.push(("token of ListPrograms".into(), programs_token(&api).await));
    for (what, token) in tokens {
        cases.add(
            format!("ListIndicators page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                indicators.list_indicators(pb::ListIndicatorsRequest {
                    filter: String::new(),
                    order_by: String::new(),
                    page_size: 1,
                    page_token: token,
                })
            ),
        );
    }
    run(&app.pool, cases).await;
}

// ---------------------------------------------------------------------------------------
// ObservationService

/// A valid observation to write, spoiled by `spoil`.
fn observation(spoil: &dyn Fn(&mut pb::Observation)) -> pb::Observation {
    let mut o = obs(
        "indicators/cq-offshore/observations/2021",
        "23.1",
        pb::observation::Status::Estimated,
    );
    spoil(&mut o);
    o
}

fn batch(o: pb::Observation) -> pb::BatchCreateObservationsRequest {
    pb::BatchCreateObservationsRequest {
        request_id: String::new(),
        observations: vec![o],
        validate_only: false,
    }
}

/// ImportObservations of `messages`, as a stream that ends.
fn import(
    messages: Vec<pb::ImportObservationsRequest>,
) -> impl tonic::IntoStreamingRequest<Message = pb::ImportObservationsRequest> {
    tokio_stream::iter(messages)
}

fn import_message(observations: Vec<pb::Observation>) -> pb::ImportObservationsRequest {
    pb::ImportObservationsRequest {
        request_id: String::new(),
        validate_only: false,
        observations,
    }
}

/// Hostile observations to write, with the field each must be refused for (relative
/// to the row).
fn hostile_observations() -> Vec<(String, String, pb::Observation)> {
    let mut out = Vec::new();
    for (what, s) in hostile_names("indicators/cq-offshore/observations/2021") {
        out.push((
            format!("name {what}"),
            "name".to_owned(),
            observation(&|o| o.name = s.clone()),
        ));
    }
    for (what, name) in [
        (
            "month of an annual indicator",
            "indicators/cq-offshore/observations/2021-M01",
        ),
        ("unknown indicator", "indicators/no-such/observations/2021"),
        ("year -1", "indicators/cq-offshore/observations/-0001"),
        ("year 99999", "indicators/cq-offshore/observations/99999"),
        ("month 13", "indicators/cq-monthly/observations/2021-M13"),
        ("month 0", "indicators/cq-monthly/observations/2021-00"),
    ] {
        out.push((
            what.to_owned(),
            "name".to_owned(),
            observation(&|o| o.name = name.into()),
        ));
    }
    let mut decimals: Vec<(String, String)> = BAD_DECIMALS
        .iter()
        .map(|d| (format!("{d:?}"), d.to_string()))
        .collect();
    decimals.extend(huge_decimals().into_iter().map(|(w, d)| (w.to_owned(), d)));
    for (what, d) in decimals {
        out.push((
            format!("value {what}"),
            "value".to_owned(),
            observation(&|o| o.value = d.clone()),
        ));
    }
    for n in BAD_ENUMS {
        out.push((
            format!("status {n}"),
            "status".to_owned(),
            observation(&|o| o.status = n),
        ));
    }
    out.push((
        "value with a missing status".into(),
        "value".into(),
        observation(&|o| o.status = pb::observation::Status::Missing as i32),
    ));
    for (what, text) in hostile_texts() {
        out.push((
            format!("comment {what}"),
            "comment".to_owned(),
            observation(&|o| o.comment = text.clone()),
        ));
        out.push((
            format!("source {what}"),
            "source".to_owned(),
            observation(&|o| o.source = text.clone()),
        ));
    }
    out
}

#[tokio::test]
async fn hostile_observation_writes_are_refused_and_change_nothing() {
    let (app, api) = fixture().await;
    let mut cases = Cases::default();
    for (what, field, o) in hostile_observations() {
        // A 1 MB text is refused as too long; the row is the first of the batch.
        let field = format!("observations[0].{field}");
        cases.add(
            format!("BatchCreateObservations {what}"),
            invalid(field.clone()),
            unary!(
                api,
                observations.batch_create_observations(batch(o.clone()))
            ),
        );
        // In an import, after a valid message of two rows: the third row of the stream.
        let valid = vec![
            observation(&|o| o.name = "indicators/cq-offshore/observations/2022".into()),
            observation(&|o| o.name = "indicators/cq-offshore/observations/2023".into()),
        ];
        cases.add(
            format!("ImportObservations {what}"),
            invalid(field.replace("[0]", "[2]")),
            unary!(
                api,
                observations.import_observations(import(vec![
                    import_message(valid),
                    import_message(vec![o]),
                ]))
            ),
        );
    }
    for (what, s) in hostile_names("8c1f3c9e-5b7a-4e2f-9d3a-2f6b1c0e7a41") {
        if what == "upper case" {
            continue;
        }
        let mut r = batch(observation(&|_| {}));
        r.request_id = s.clone();
        cases.add(
            format!("BatchCreateObservations request_id {what}"),
            invalid("request_id"),
            unary!(api, observations.batch_create_observations(r)),
        );
        let mut m = import_message(vec![observation(&|_| {})]);
        m.request_id = s;
        cases.add(
            format!("ImportObservations request_id {what}"),
            invalid("request_id"),
            unary!(api, observations.import_observations(import(vec![m]))),
        );
    }
    cases.add(
        "BatchCreateObservations of nothing",
        invalid("observations"),
        unary!(
            api,
            observations.batch_create_observations(pb::BatchCreateObservationsRequest::default())
        ),
    );
    // Over 4 MiB, in one message: 60,000 rows of 100 bytes.
    let many: Vec<pb::Observation> = (0..60_000)
        .map(|i| {
            observation(&|o| {
                o.name = format!(
                    "indicators/cq-monthly/observations/{}-M{:02}",
                    1800 + i / 12 % 400,
                    i % 12 + 1
                );
                o.comment = "c".repeat(40);
            })
        })
        .collect();
    cases.add(
        "BatchCreateObservations of 5 MiB",
        Want::Code(Code::ResourceExhausted),
        unary!(
            api,
            observations.batch_create_observations(batch(observation(
                &|o| o.comment = "x".repeat(5 << 20)
            )))
        ),
    );
    cases.add(
        "BatchCreateObservations of 60,000 rows (over 4 MiB)",
        Want::Code(Code::ResourceExhausted),
        unary!(
            api,
            observations.batch_create_observations(pb::BatchCreateObservationsRequest {
                request_id: String::new(),
                observations: many.clone(),
                validate_only: false,
            })
        ),
    );
    cases.add(
        "ImportObservations message of 5 MiB after a valid one",
        Want::Code(Code::ResourceExhausted),
        unary!(
            api,
            observations.import_observations(import(vec![
                import_message(vec![observation(&|_| {})]),
                import_message(vec![observation(&|o| o.source = "x".repeat(5 << 20))]),
            ]))
        ),
    );
    // "Any number of observations", none included: a no-op.
    cases.add(
        "ImportObservations of an empty stream",
        Want::Ok,
        unary!(api, observations.import_observations(import(vec![]))),
    );
    for (what, s) in hostile_names("indicators/cq-offshore/observations/2020") {
        cases.add(
            format!("DeleteObservation name {what}"),
            invalid("name"),
            unary!(
                api,
                observations.delete_observation(pb::DeleteObservationRequest { name: s })
            ),
        );
    }
    run(&app.pool, cases).await;
}

#[tokio::test]
async fn hostile_observation_reads_are_refused_and_change_nothing() {
    let (app, api) = fixture().await;
    let mut cases = Cases::default();
    let list = |spoil: &dyn Fn(&mut pb::ListObservationsRequest)| {
        let mut r = pb::ListObservationsRequest {
            parent: "indicators/cq-offshore".into(),
            ..Default::default()
        };
        spoil(&mut r);
        r
    };
    let export = |spoil: &dyn Fn(&mut pb::ExportObservationsRequest)| {
        let mut r = pb::ExportObservationsRequest {
            indicators: vec!["indicators/cq-offshore".into()],
            format: pb::export_observations_request::Format::Csv as i32,
            ..Default::default()
        };
        spoil(&mut r);
        r
    };
    for (what, s) in hostile_names("indicators/cq-offshore/observations/2020") {
        cases.add(
            format!("GetObservation name {what}"),
            invalid("name"),
            unary!(
                api,
                observations.get_observation(pb::GetObservationRequest {
                    name: s.clone(),
                    as_of: None,
                })
            ),
        );
        cases.add(
            format!("ListObservationRevisions name {what}"),
            invalid("name"),
            unary!(
                api,
                observations.list_observation_revisions(pb::ListObservationRevisionsRequest {
                    name: s,
                    page_size: 0,
                    page_token: String::new(),
                })
            ),
        );
    }
    for (what, s) in hostile_names("indicators/cq-offshore") {
        cases.add(
            format!("ListObservations parent {what}"),
            invalid("parent"),
            unary!(
                api,
                observations.list_observations(list(&|r| r.parent = s.clone()))
            ),
        );
        cases.add(
            format!("ExportObservations indicators[0] {what}"),
            invalid("indicators[0]"),
            streaming!(
                api,
                observations.export_observations(export(&|r| r.indicators = vec![s.clone()]))
            ),
        );
        cases.add(
            format!("WatchObservations indicators[0] {what}"),
            invalid("indicators[0]"),
            streaming!(
                api,
                observations.watch_observations(pb::WatchObservationsRequest {
                    indicators: vec![s],
                    start_cursor: String::new(),
                    from_beginning: true,
                })
            ),
        );
    }
    for (what, p) in hostile_names("2020") {
        for field in ["start_period", "end_period"] {
            let set = |r: &mut String| *r = p.clone();
            cases.add(
                format!("ListObservations {field} {what}"),
                invalid(field),
                unary!(
                    api,
                    observations.list_observations(list(&|r| set(if field == "start_period" {
                        &mut r.start_period
                    } else {
                        &mut r.end_period
                    })))
                ),
            );
            cases.add(
                format!("ExportObservations {field} {what}"),
                invalid(field),
                streaming!(
                    api,
                    observations.export_observations(export(&|r| set(
                        if field == "start_period" {
                            &mut r.start_period
                        } else {
                            &mut r.end_period
                        }
                    )))
                ),
            );
        }
    }
    for (what, t) in bad_timestamps() {
        cases.add(
            format!("GetObservation as_of {what}"),
            invalid("as_of"),
            unary!(
                api,
                observations.get_observation(pb::GetObservationRequest {
                    name: "indicators/cq-offshore/observations/2020".into(),
                    as_of: Some(t),
                })
            ),
        );
        cases.add(
            format!("ListObservations as_of {what}"),
            invalid("as_of"),
            unary!(
                api,
                observations.list_observations(list(&|r| r.as_of = Some(t)))
            ),
        );
        cases.add(
            format!("ListObservations updated_after {what}"),
            invalid("updated_after"),
            unary!(
                api,
                observations.list_observations(list(&|r| r.updated_after = Some(t)))
            ),
        );
        cases.add(
            format!("ExportObservations as_of {what}"),
            invalid("as_of"),
            streaming!(
                api,
                observations.export_observations(export(&|r| r.as_of = Some(t)))
            ),
        );
    }
    for n in BAD_ENUMS {
        cases.add(
            format!("ExportObservations format {n}"),
            invalid("format"),
            streaming!(
                api,
                observations.export_observations(export(&|r| r.format = n))
            ),
        );
    }
    // A long list is no problem in itself: the first unknown indicator is named.
    cases.add(
        "ExportObservations of 100,000 unknown indicators",
        invalid("indicators[0]"),
        streaming!(
            api,
            observations.export_observations(export(&|r| {
                r.indicators = (0..100_000).map(|k| format!("indicators/i{k}")).collect()
            }))
        ),
    );
    let mut tokens = forged_tokens();
    let genuine = api
        .observations
        .clone()
        .list_observations(list(&|r| r.page_size = 1))
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(!genuine.is_empty());
    tokens.push(("token of another parent".into(), genuine.clone()));
    for (what, token) in tokens {
        cases.add(
            format!("ListObservations page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                observations.list_observations(list(&|r| {
                    r.parent = "indicators/cq-monthly".into();
                    r.page_token = token.clone()
                }))
            ),
        );
        cases.add(
            format!("ListObservationRevisions page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                observations.list_observation_revisions(pb::ListObservationRevisionsRequest {
                    name: "indicators/cq-offshore/observations/2020".into(),
                    page_size: 1,
                    page_token: token.clone(),
                })
            ),
        );
        cases.add(
            format!("WatchObservations start_cursor {what}"),
            invalid("start_cursor"),
            streaming!(
                api,
                observations.watch_observations(pb::WatchObservationsRequest {
                    indicators: vec![],
                    start_cursor: token,
                    from_beginning: false,
                })
            ),
        );
    }
    for size in [-1, i32::MIN] {
        cases.add(
            format!("ListObservations page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                observations.list_observations(list(&|r| r.page_size = size))
            ),
        );
        cases.add(
            format!("ListObservationRevisions page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                observations.list_observation_revisions(pb::ListObservationRevisionsRequest {
                    name: "indicators/cq-offshore/observations/2020".into(),
                    page_size: size,
                    page_token: String::new(),
                })
            ),
        );
    }
    cases.add(
        "ListObservations page_size i32::MAX",
        Want::Ok,
        unary!(
            api,
            observations.list_observations(list(&|r| r.page_size = i32::MAX))
        ),
    );
    run(&app.pool, cases).await;
}

// ---------------------------------------------------------------------------------------
// ReportingService

#[tokio::test]
async fn hostile_reports_are_refused_and_change_nothing() {
    let (app, api) = fixture().await;
    let mut cases = Cases::default();
    let series = |spoil: &dyn Fn(&mut pb::QuerySeriesRequest)| {
        let mut r = pb::QuerySeriesRequest {
            indicator: "indicators/cq-offshore".into(),
            ..Default::default()
        };
        spoil(&mut r);
        r
    };
    let breakdown = |spoil: &dyn Fn(&mut pb::QueryBreakdownRequest)| {
        let mut r = pb::QueryBreakdownRequest {
            period: "2020".into(),
            group_by: pb::BreakdownDimension::ServiceCategory as i32,
            ..Default::default()
        };
        spoil(&mut r);
        r
    };
    for (what, s) in hostile_names("indicators/cq-offshore") {
        cases.add(
            format!("QuerySeries indicator {what}"),
            invalid("indicator"),
            unary!(
                api,
                reports.query_series(series(&|r| r.indicator = s.clone()))
            ),
        );
    }
    for (what, p) in hostile_names("2020") {
        cases.add(
            format!("QuerySeries start_period {what}"),
            invalid("start_period"),
            unary!(
                api,
                reports.query_series(series(&|r| r.start_period = p.clone()))
            ),
        );
        cases.add(
            format!("QuerySeries end_period {what}"),
            invalid("end_period"),
            unary!(
                api,
                reports.query_series(series(&|r| r.end_period = p.clone()))
            ),
        );
        cases.add(
            format!("QueryBreakdown period {what}"),
            invalid("period"),
            unary!(
                api,
                reports.query_breakdown(breakdown(&|r| r.period = p.clone()))
            ),
        );
    }
    for (what, s) in hostile_names("CN-CQ") {
        cases.add(
            format!("QueryBreakdown region {what}"),
            invalid("region"),
            unary!(
                api,
                reports.query_breakdown(breakdown(&|r| r.region = s.clone()))
            ),
        );
    }
    for (what, s) in hostile_names("SJ") {
        cases.add(
            format!("QueryBreakdown service_categories[0] {what}"),
            invalid("service_categories[0]"),
            unary!(
                api,
                reports.query_breakdown(breakdown(&|r| r.service_categories = vec![s.clone()]))
            ),
        );
    }
    for (what, s) in hostile_names("outsourcing") {
        cases.add(
            format!("QueryBreakdown dimensions key {what}"),
            invalid("dimensions[*"),
            unary!(
                api,
                reports.query_breakdown(breakdown(&|r| {
                    r.dimensions.insert(s.clone(), "ITO".into());
                }))
            ),
        );
        cases.add(
            format!("QueryBreakdown dimension_key {what}"),
            invalid("dimension_key"),
            unary!(
                api,
                reports.query_breakdown(breakdown(&|r| {
                    r.group_by = pb::BreakdownDimension::Free as i32;
                    r.dimension_key = s.clone();
                }))
            ),
        );
    }
    for (what, s) in hostile_names("ITO") {
        cases.add(
            format!("QueryBreakdown dimensions value {what}"),
            invalid("dimensions[*"),
            unary!(
                api,
                reports.query_breakdown(breakdown(&|r| {
                    r.dimensions.insert("outsourcing".into(), s.clone());
                }))
            ),
        );
    }
    for n in BAD_ENUMS {
        cases.add(
            format!("QuerySeries frequency {n}"),
            invalid("frequency"),
            unary!(api, reports.query_series(series(&|r| r.frequency = n))),
        );
        cases.add(
            format!("QuerySeries transform {n}"),
            invalid("transform"),
            unary!(api, reports.query_series(series(&|r| r.transform = n))),
        );
        cases.add(
            format!("QueryBreakdown flow {n}"),
            invalid("flow"),
            unary!(api, reports.query_breakdown(breakdown(&|r| r.flow = n))),
        );
        cases.add(
            format!("QueryBreakdown group_by {n}"),
            invalid("group_by"),
            unary!(api, reports.query_breakdown(breakdown(&|r| r.group_by = n))),
        );
    }
    for (what, t) in bad_timestamps() {
        cases.add(
            format!("QuerySeries as_of {what}"),
            invalid("as_of"),
            unary!(api, reports.query_series(series(&|r| r.as_of = Some(t)))),
        );
        cases.add(
            format!("QueryBreakdown as_of {what}"),
            invalid("as_of"),
            unary!(
                api,
                reports.query_breakdown(breakdown(&|r| r.as_of = Some(t)))
            ),
        );
        cases.add(
            format!("GetTargetProgress as_of {what}"),
            invalid("as_of"),
            unary!(
                api,
                reports.get_target_progress(pb::GetTargetProgressRequest {
                    name: "programs/cq/targets/t1".into(),
                    as_of: Some(t),
                    ..Default::default()
                })
            ),
        );
        cases.add(
            format!("ListTargetProgress as_of {what}"),
            invalid("as_of"),
            unary!(
                api,
                reports.list_target_progress(pb::ListTargetProgressRequest {
                    parent: "programs/cq".into(),
                    as_of: Some(t),
                    ..Default::default()
                })
            ),
        );
        cases.add(
            format!("GetProgramScorecard as_of {what}"),
            invalid("as_of"),
            unary!(
                api,
                reports.get_program_scorecard(pb::GetProgramScorecardRequest {
                    name: "programs/cq".into(),
                    as_of: Some(t),
                })
            ),
        );
    }
    for (what, s) in hostile_names("programs/cq/targets/t1") {
        cases.add(
            format!("GetTargetProgress name {what}"),
            invalid("name"),
            unary!(
                api,
                reports.get_target_progress(pb::GetTargetProgressRequest {
                    name: s,
                    as_of: None,
                    ..Default::default()
                })
            ),
        );
    }
    for (what, s) in hostile_names("programs/cq") {
        cases.add(
            format!("ListTargetProgress parent {what}"),
            invalid("parent"),
            unary!(
                api,
                reports.list_target_progress(pb::ListTargetProgressRequest {
                    parent: s.clone(),
                    as_of: None,
                    ..Default::default()
                })
            ),
        );
        cases.add(
            format!("GetProgramScorecard name {what}"),
            invalid("name"),
            unary!(
                api,
                reports.get_program_scorecard(pb::GetProgramScorecardRequest {
                    name: s,
                    as_of: None,
                })
            ),
        );
    }
    run(&app.pool, cases).await;
}

// ---------------------------------------------------------------------------------------
// AdminService and the API key itself

#[tokio::test]
async fn hostile_admin_calls_and_keys_are_refused_and_change_nothing() {
    let (app, api) = fixture().await;
    let mut cases = Cases::default();
    let create = |name: String, role: i32| pb::CreateApiKeyRequest {
        api_key: Some(pb::ApiKey {
            display_name: name,
            role,
            ..Default::default()
        }),
    };
    for (what, text) in hostile_texts() {
        cases.add(
            format!("CreateApiKey display_name {what}"),
            invalid("api_key.display_name"),
            unary!(
                api,
                admin.create_api_key(create(text, pb::Role::Viewer as i32))
            ),
        );
    }
    for n in BAD_ENUMS.into_iter().chain([0]) {
        cases.add(
            format!("CreateApiKey role {n}"),
            invalid("api_key.role"),
            unary!(api, admin.create_api_key(create("Valid".into(), n))),
        );
    }
    cases.add(
        "CreateApiKey without a key",
        invalid("api_key"),
        unary!(
            api,
            admin.create_api_key(pb::CreateApiKeyRequest { api_key: None })
        ),
    );
    for (what, s) in hostile_names("apiKeys/abcdefghijkl") {
        cases.add(
            format!("DeleteApiKey name {what}"),
            invalid("name"),
            unary!(
                api,
                admin.delete_api_key(pb::DeleteApiKeyRequest { name: s.clone() })
            ),
        );
        cases.add(
            format!("ListAuditEvents actor {what}"),
            invalid("actor"),
            unary!(
                api,
                admin.list_audit_events(pb::ListAuditEventsRequest {
                    actor: s,
                    ..Default::default()
                })
            ),
        );
    }
    // The resource filter is a name or a prefix of one: injections find nothing.
    for s in INJECTIONS {
        cases.add(
            format!("ListAuditEvents resource {s:?}"),
            Want::Ok,
            unary!(
                api,
                admin.list_audit_events(pb::ListAuditEventsRequest {
                    resource: s.into(),
                    ..Default::default()
                })
            ),
        );
    }
    for (what, s) in [
        ("10,000 characters", "programs/".repeat(1_000)),
        ("NUL", "programs/cq\0".into()),
        ("escape character", "programs/\u{1b}[31m".into()),
    ] {
        cases.add(
            format!("ListAuditEvents resource {what}"),
            invalid("resource"),
            unary!(
                api,
                admin.list_audit_events(pb::ListAuditEventsRequest {
                    resource: s,
                    ..Default::default()
                })
            ),
        );
    }
    for (what, t) in bad_timestamps() {
        cases.add(
            format!("ListAuditEvents start_time {what}"),
            invalid("start_time"),
            unary!(
                api,
                admin.list_audit_events(pb::ListAuditEventsRequest {
                    start_time: Some(t),
                    ..Default::default()
                })
            ),
        );
        cases.add(
            format!("ListAuditEvents end_time {what}"),
            invalid("end_time"),
            unary!(
                api,
                admin.list_audit_events(pb::ListAuditEventsRequest {
                    end_time: Some(t),
                    ..Default::default()
                })
            ),
        );
    }
    let mut tokens = forged_tokens();
    tokens.push((
        "token of ListIndicators".into(),
        indicators_token(&api).await,
    ));
    for (what, token) in tokens {
        cases.add(
            format!("ListApiKeys page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                admin.list_api_keys(pb::ListApiKeysRequest {
                    page_size: 1,
                    page_token: token.clone(),
                })
            ),
        );
        cases.add(
            format!("ListAuditEvents page_token {what}"),
            invalid("page_token"),
            unary!(
                api,
                admin.list_audit_events(pb::ListAuditEventsRequest {
                    page_size: 1,
                    page_token: token,
                    ..Default::default()
                })
            ),
        );
    }
    for size in [-1, i32::MIN] {
        cases.add(
            format!("ListApiKeys page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                admin.list_api_keys(pb::ListApiKeysRequest {
                    page_size: size,
                    page_token: String::new(),
                })
            ),
        );
        cases.add(
            format!("ListAuditEvents page_size {size}"),
            invalid("page_size"),
            unary!(
                api,
                admin.list_audit_events(pb::ListAuditEventsRequest {
                    page_size: size,
                    ..Default::default()
                })
            ),
        );
    }

    // Hostile keys: UNAUTHENTICATED before any handler runs.
    for (what, key) in [
        ("injection", "' OR '1'='1".to_owned()),
        ("10,000 characters", "k".repeat(10_000)),
        ("empty", String::new()),
        ("unknown", "twk_0123456789abcdef0123456789abcdef".to_owned()),
    ] {
        let hostile = Api::new(authed(raw_channel(app.addr).await, &key));
        cases.add(
            format!("CreateProgram with key {what}"),
            Want::Code(Code::Unauthenticated),
            unary!(
                hostile,
                programs.create_program(pb::CreateProgramRequest {
                    request_id: String::new(),
                    program: Some(program("Valid")),
                    program_id: "fresh".into(),
                })
            ),
        );
    }
    // A viewer's writes: PERMISSION_DENIED.
    let viewer = Api::new(app.channel_as(Role::Viewer).await);
    cases.add(
        "CreateProgram as a viewer",
        Want::Code(Code::PermissionDenied),
        unary!(
            viewer,
            programs.create_program(pb::CreateProgramRequest {
                request_id: String::new(),
                program: Some(program("Valid")),
                program_id: "fresh".into(),
            })
        ),
    );
    cases.add(
        "BatchCreateObservations as a viewer",
        Want::Code(Code::PermissionDenied),
        unary!(
            viewer,
            observations.batch_create_observations(batch(observation(&|_| {})))
        ),
    );
    cases.add(
        "CreateApiKey as a viewer",
        Want::Code(Code::PermissionDenied),
        unary!(
            viewer,
            admin.create_api_key(create("Mine".into(), pb::Role::Admin as i32))
        ),
    );
    run(&app.pool, cases).await;
}

// ---------------------------------------------------------------------------------------
// Bytes that are not a valid message

/// Sends request bytes as they are, and returns the response bytes.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// A length-delimited protobuf field `number` holding `bytes`.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// Invalid UTF-8 in string fields, and bytes that are no protobuf message at all, sent
/// by hand to every kind of method. tonic-prost answers INTERNAL for a request it
/// cannot decode, as gRPC's status code table prescribes for "error parsing request
/// proto" (not INVALID_ARGUMENT); nothing reaches a handler and nothing is written.
#[tokio::test]
async fn undecodable_requests_are_refused_before_any_handler_and_change_nothing() {
    use tonic_types::StatusExt as _;
    const ANY_FIELD: &str = "(any)";
    let (app, _api) = fixture().await;
    let program_msg = [field(2, b"\xff\xfe title"), field(5, b"CN-CQ")].concat();
    // (what, method, bytes, the field named in the BadRequest: prost's path to the bad
    // field, without the message types; empty when no field can be named).
    let cases: Vec<(&str, &'static str, Vec<u8>, &str)> = vec![
        (
            "GetProgram name of invalid UTF-8",
            "/tradewatch.v1.ProgramService/GetProgram",
            field(1, b"programs/\xc3\x28"),
            "name",
        ),
        (
            "CreateProgram title of invalid UTF-8",
            "/tradewatch.v1.ProgramService/CreateProgram",
            [field(1, &program_msg), field(2, b"fresh")].concat(),
            "program.title",
        ),
        (
            "CreateProgram id of a lone surrogate (CESU-8)",
            "/tradewatch.v1.ProgramService/CreateProgram",
            [field(1, &field(2, b"Title")), field(2, b"\xed\xa0\x80")].concat(),
            "program_id",
        ),
        (
            "BatchCreateObservations value of invalid UTF-8",
            "/tradewatch.v1.ObservationService/BatchCreateObservations",
            field(
                1,
                &[
                    field(1, b"indicators/cq-offshore/observations/2021"),
                    field(2, b"1\x80"),
                ]
                .concat(),
            ),
            "observations.value",
        ),
        (
            "QuerySeries of garbage",
            "/tradewatch.v1.ReportingService/QuerySeries",
            vec![0xff; 32],
            ANY_FIELD,
        ),
        (
            "ListAuditEvents of a truncated field",
            "/tradewatch.v1.AdminService/ListAuditEvents",
            vec![0x0a, 100, b'a', b'b'],
            ANY_FIELD,
        ),
        (
            "CreateIndicator of an unterminated varint",
            "/tradewatch.v1.IndicatorService/CreateIndicator",
            vec![0x08, 0xff, 0xff, 0xff],
            ANY_FIELD,
        ),
    ];
    let channel = app.channel().await;
    let before = counts(&app.pool).await;
    let mut departures = Vec::new();
    for (what, path, bytes, field) in cases {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let answer = grpc
            .unary(
                tonic::Request::new(bytes),
                http::uri::PathAndQuery::from_static(path),
                RawCodec,
            )
            .await;
        match answer {
            Err(s) if s.code() == Code::InvalidArgument => {
                let details = s.get_error_details();
                let named: Vec<&str> = details
                    .bad_request()
                    .map(|b| {
                        b.field_violations
                            .iter()
                            .map(|v| v.field.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let reason = details.error_info().map(|i| i.reason.as_str());
                if reason != Some("UNDECODABLE_REQUEST") || (field != ANY_FIELD && named != [field])
                {
                    departures.push(format!("{what}: {reason:?} {named:?} {:?}", s.message()));
                }
            }
            other => departures.push(format!("{what}: {other:?}")),
        }
    }
    assert_eq!(departures, Vec::<String>::new());
    assert_eq!(counts(&app.pool).await, before);
    // The server is unharmed.
    let mut programs = ProgramServiceClient::new(channel);
    programs
        .get_program(pb::GetProgramRequest {
            name: "programs/cq".into(),
        })
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Trees, page sizes, free text

#[tokio::test]
async fn initiative_trees_deeper_than_sixteen_and_cycles_are_refused() {
    let (mut app, api) = fixture().await;
    // A chain of 16: root > l2 > ... > l16.
    let mut parent = "root".to_owned();
    for depth in 2..=16 {
        let id = format!("l{depth}");
        app.create_initiative("cq", &id, Some(&parent))
            .await
            .unwrap();
        parent = id;
    }
    // A second tree of 2: other > other-child.
    app.create_initiative("cq", "other", None).await.unwrap();
    app.create_initiative("cq", "other-child", Some("other"))
        .await
        .unwrap();
    let initiative_name = |id: &str| format!("programs/cq/initiatives/{id}");
    let reparent = |id: &str, parent: &str| pb::UpdateInitiativeRequest {
        initiative: Some(pb::Initiative {
            name: initiative_name(id),
            parent_initiative: if parent.is_empty() {
                String::new()
            } else {
                initiative_name(parent)
            },
            ..Default::default()
        }),
        update_mask: mask(&["parent_initiative"]),
    };
    let mut cases = Cases::default();
    let mut i = initiative("Seventeenth");
    i.parent_initiative = initiative_name("l16");
    cases.add(
        "CreateInitiative at depth 17",
        invalid("initiative.parent_initiative"),
        unary!(
            api,
            programs.create_initiative(pb::CreateInitiativeRequest {
                parent: "programs/cq".into(),
                initiative: Some(i),
                initiative_id: "l17".into(),
                request_id: String::new(),
            })
        ),
    );
    for (what, id, parent) in [
        ("a subtree of 2 under depth 15", "other", "l15"),
        ("a subtree of 2 under depth 16", "other", "l16"),
        ("root under its own leaf", "root", "l16"),
        ("root under its child", "root", "l2"),
        ("a middle node under its descendant", "l5", "l9"),
        ("a node under itself", "l8", "l8"),
        ("a parent in no programme tree", "other", "no-such"),
    ] {
        cases.add(
            format!("UpdateInitiative {what}"),
            invalid("initiative.parent_initiative"),
            unary!(api, programs.update_initiative(reparent(id, parent))),
        );
    }
    run(&app.pool, cases).await;
    // Within the limit, moves still work: other-child under l15 is depth 16.
    api.programs
        .clone()
        .update_initiative(reparent("other-child", "l15"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_largest_page_size_is_capped_and_injections_in_free_text_are_stored_verbatim() {
    let (app, api) = fixture().await;
    // 1,005 more programmes, behind the API's back.
    sqlx::query(
        "INSERT INTO programs (program_id, title, jurisdiction, start_year, end_year) \
         SELECT 'bulk-' || g, 'Bulk ' || g, 'CN-CQ', 2015, 2020 FROM generate_series(1, 1005) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let page = api
        .programs
        .clone()
        .list_programs(pb::ListProgramsRequest {
            filter: String::new(),
            order_by: String::new(),
            page_size: i32::MAX,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.programs.len(), 1000, "i32::MAX is lowered to 1000");
    assert!(!page.next_page_token.is_empty());
    let rest = api
        .programs
        .clone()
        .list_programs(pb::ListProgramsRequest {
            filter: String::new(),
            order_by: String::new(),
            page_size: i32::MAX,
            page_token: page.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.programs.len(), 6);
    assert!(rest.next_page_token.is_empty());

    // Every injection, in every free-text field: stored and read back verbatim, and
    // every table still answers.
    let mut programs = api.programs.clone();
    for (k, s) in INJECTIONS.iter().enumerate() {
        let mut p = program(s);
        p.issuing_body = s.to_string();
        p.summary = format!("{s}\n{s}");
        let created = programs
            .create_program(pb::CreateProgramRequest {
                request_id: String::new(),
                program: Some(p),
                program_id: format!("injected-{k}"),
            })
            .await
            .unwrap()
            .into_inner();
        let got = programs
            .get_program(pb::GetProgramRequest {
                name: created.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (got.title.as_str(), got.issuing_body.as_str(), got.summary),
            (*s, *s, format!("{s}\n{s}"))
        );
    }
    let mut observations = api.observations.clone();
    let written = observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: INJECTIONS
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let mut o = obs(
                        &format!("indicators/cq-offshore/observations/{}", 1990 + k),
                        "1",
                        pb::observation::Status::Normal,
                    );
                    o.comment = s.to_string();
                    o.source = s.to_string();
                    o
                })
                .collect(),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    for (o, s) in written.observations.iter().zip(INJECTIONS) {
        assert_eq!((o.comment.as_str(), o.source.as_str()), (s, s));
    }
    // Every table is still there (the count of each answers), programmes included.
    let tables = counts(&app.pool).await;
    assert_eq!(tables[0], 1 + 1005 + INJECTIONS.len() as i64);

    // The audit filter is a name, not a pattern: `%` and `_` match themselves only.
    let mut admin = api.admin.clone();
    let events = |resource: &str| pb::ListAuditEventsRequest {
        resource: resource.into(),
        page_size: 1000,
        ..Default::default()
    };
    let exact = admin
        .list_audit_events(events("programs/cq"))
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert!(!exact.is_empty());
    for pattern in ["programs/c%", "programs/c_", "programs/%", "%", "_%"] {
        let found = admin
            .list_audit_events(events(pattern))
            .await
            .unwrap()
            .into_inner()
            .audit_events;
        assert_eq!(found, vec![], "{pattern}");
    }
}

/// Decimal spellings that are valid, odd as they look: each is stored and read back in
/// plain notation, never refused as an internal error.
#[tokio::test]
async fn odd_but_valid_decimals_are_stored_exactly() {
    let (mut app, _api) = fixture().await;
    let cases = [
        ("-0", "0"),
        (".5", "0.5"),
        ("+1", "1"),
        ("1e-18", "0.000000000000000001"),
        ("1E+29", "100000000000000000000000000000"),
        (
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000012",
            "12",
        ),
        ("-.000000000000000001", "-0.000000000000000001"),
        ("21.50", "21.50"),
    ];
    let rows = cases
        .iter()
        .enumerate()
        .map(|(k, (v, _))| {
            obs(
                &format!("indicators/cq-offshore/observations/{}", 1950 + k),
                v,
                pb::observation::Status::Normal,
            )
        })
        .collect();
    let written = app.write(rows).await;
    let got: Vec<(&str, &str)> = written
        .observations
        .iter()
        .zip(cases)
        .map(|(o, (given, _))| (given, o.value.as_str()))
        .collect();
    assert_eq!(got, cases.to_vec());
}
