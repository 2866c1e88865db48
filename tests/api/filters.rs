//! AIP-160 `filter` and AIP-132 `order_by` on the resource lists: results checked
//! against hand-worked expectations, paging in every order, errors, and injection
//! attempts that must stay data.

use tonic::Code;
use tradewatch::filter::{FieldType, Schema};
use tradewatch::proto::v1 as pb;
use tradewatch::store::{indicators, initiatives, programs, targets};

use crate::helpers::{TestApp, assert_invalid, indicator, level_target, program, spawn_app};

/// One programme as the fixture wants it.
struct P {
    id: &'static str,
    title: &'static str,
    jurisdiction: &'static str,
    years: (i32, i32),
    adoption: &'static str,
}

const PROGRAMS: &[P] = &[
    P {
        id: "a",
        title: "Chongqing service trade 2015",
        jurisdiction: "CN-CQ",
        years: (2015, 2020),
        adoption: "2015-05-25",
    },
    P {
        id: "b",
        title: "Chongqing outsourcing plan",
        jurisdiction: "CN-CQ",
        years: (2016, 2020),
        adoption: "",
    },
    P {
        id: "c",
        title: "Shanghai 50% plan_x",
        jurisdiction: "CN-SH",
        years: (2018, 2025),
        adoption: "2018-01-01",
    },
    P {
        id: "d",
        title: "Beijing trade",
        jurisdiction: "CN-BJ",
        years: (2010, 2015),
        adoption: "",
    },
    P {
        id: "e",
        title: "chongqing lowercase",
        jurisdiction: "CN-CQ",
        years: (2021, 2025),
        adoption: "",
    },
    P {
        id: "f",
        title: "Another 2015 plan",
        jurisdiction: "CN",
        years: (2015, 2016),
        adoption: "",
    },
];

async fn create_programs(app: &mut TestApp) {
    for p in PROGRAMS {
        app.programs
            .create_program(pb::CreateProgramRequest {
                request_id: String::new(),
                program: Some(pb::Program {
                    title: p.title.into(),
                    jurisdiction: p.jurisdiction.into(),
                    start_year: p.years.0,
                    end_year: p.years.1,
                    adoption_date: p.adoption.into(),
                    ..program("")
                }),
                program_id: p.id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("create {}: {e:?}", p.id));
    }
}

/// Indicators: `ind-a` annual USD exports (SJ, outsourcing ITO), `ind-b` monthly CNY
/// imports, year-to-date, no category, `ind-c` quarterly `%` total in CN-SH.
async fn create_indicators(app: &mut TestApp) {
    let b = pb::Indicator {
        title: "Monthly imports".into(),
        unit: "CNY".into(),
        unit_multiplier: 4,
        frequency: pb::Frequency::Monthly as i32,
        flow: pb::indicator::Flow::Import as i32,
        service_category: String::new(),
        dimensions: [("partner".to_string(), "US".to_string())]
            .into_iter()
            .collect(),
        year_to_date: true,
        ..indicator("")
    };
    let c = pb::Indicator {
        title: "Share of services".into(),
        unit: "%".into(),
        unit_multiplier: 0,
        frequency: pb::Frequency::Quarterly as i32,
        flow: pb::indicator::Flow::Total as i32,
        service_category: "S".into(),
        region: "CN-SH".into(),
        dimensions: Default::default(),
        aggregation: pb::indicator::Aggregation::Average as i32,
        direction: pb::Direction::LowerIsBetter as i32,
        ..indicator("")
    };
    for (id, i) in [
        ("ind-a", indicator("Offshore outsourcing executed value")),
        ("ind-b", b),
        ("ind-c", c),
    ] {
        app.indicators
            .create_indicator(pb::CreateIndicatorRequest {
                request_id: String::new(),
                indicator: Some(i),
                indicator_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("create {id}: {e:?}"));
    }
}

/// Initiatives of `programs/a`: `ecommerce` (active, tags cloud+trade, from
/// 2015-06-01, position 2), `cloud` under it (planned, tag cloud, no dates, position
/// 1, measured by ind-a), `finance` (completed, no tags, 2016-01-01 to 2018-12-31,
/// position 3). Targets of `programs/a`: `t1` level 30 (10^9) in 2020; `t2` level 7.5
/// in 2018 from 5 in 2015, of initiative `finance`; `t3` growth rate 10 % from 2015 to
/// 2020, lower is better.
async fn create_children(app: &mut TestApp) {
    use pb::initiative::State;
    let initiatives = [
        (
            "ecommerce",
            pb::Initiative {
                title: "Cross-border e-commerce".into(),
                state: State::Active as i32,
                tags: vec!["cloud".into(), "trade".into()],
                start_date: "2015-06-01".into(),
                position: 2,
                ..Default::default()
            },
        ),
        (
            "cloud",
            pb::Initiative {
                title: "Cloud computing".into(),
                parent_initiative: "programs/a/initiatives/ecommerce".into(),
                state: State::Planned as i32,
                tags: vec!["cloud".into()],
                indicators: vec!["indicators/ind-a".into()],
                position: 1,
                ..Default::default()
            },
        ),
        (
            "finance",
            pb::Initiative {
                title: "Cross-border finance".into(),
                state: State::Completed as i32,
                start_date: "2016-01-01".into(),
                end_date: "2018-12-31".into(),
                position: 3,
                ..Default::default()
            },
        ),
    ];
    for (id, i) in initiatives {
        app.programs
            .create_initiative(pb::CreateInitiativeRequest {
                request_id: String::new(),
                parent: "programs/a".into(),
                initiative: Some(i),
                initiative_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("create {id}: {e:?}"));
    }
    let t2 = pb::Target {
        title: "7.5 in 2018".into(),
        target_value: "7.5".into(),
        unit_multiplier: 0,
        target_period: "2018".into(),
        baseline_value: "5".into(),
        baseline_period: "2015".into(),
        initiative: "programs/a/initiatives/finance".into(),
        ..level_target("indicators/ind-a")
    };
    let t3 = pb::Target {
        title: "Grow 10 % a year".into(),
        kind: pb::target::Kind::GrowthRate as i32,
        target_value: "10".into(),
        unit_multiplier: 0,
        target_period: "2020".into(),
        baseline_period: "2015".into(),
        direction: pb::Direction::LowerIsBetter as i32,
        ..level_target("indicators/ind-a")
    };
    for (id, t) in [
        ("t1", level_target("indicators/ind-a")),
        ("t2", t2),
        ("t3", t3),
    ] {
        app.create_target("a", id, t)
            .await
            .unwrap_or_else(|e| panic!("create {id}: {e:?}"));
    }
}

async fn fixture() -> TestApp {
    let mut app = spawn_app().await;
    create_programs(&mut app).await;
    create_indicators(&mut app).await;
    create_children(&mut app).await;
    app
}

fn last_segment(name: &str) -> String {
    name.rsplit('/').next().unwrap_or_default().to_owned()
}

async fn program_ids(
    app: &mut TestApp,
    filter: &str,
    order_by: &str,
) -> Result<Vec<String>, tonic::Status> {
    let r = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            filter: filter.into(),
            order_by: order_by.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(r.programs.iter().map(|p| last_segment(&p.name)).collect())
}

async fn initiative_ids(app: &mut TestApp, filter: &str, order_by: &str) -> Vec<String> {
    let r = app
        .programs
        .list_initiatives(pb::ListInitiativesRequest {
            parent: "programs/a".into(),
            filter: filter.into(),
            order_by: order_by.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{filter:?} {order_by:?}: {e:?}"))
        .into_inner();
    r.initiatives
        .iter()
        .map(|i| last_segment(&i.name))
        .collect()
}

async fn target_ids(app: &mut TestApp, filter: &str, order_by: &str) -> Vec<String> {
    let r = app
        .programs
        .list_targets(pb::ListTargetsRequest {
            parent: "programs/a".into(),
            filter: filter.into(),
            order_by: order_by.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{filter:?} {order_by:?}: {e:?}"))
        .into_inner();
    r.targets.iter().map(|t| last_segment(&t.name)).collect()
}

async fn indicator_ids(app: &mut TestApp, filter: &str, order_by: &str) -> Vec<String> {
    let r = app
        .indicators
        .list_indicators(pb::ListIndicatorsRequest {
            filter: filter.into(),
            order_by: order_by.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{filter:?} {order_by:?}: {e:?}"))
        .into_inner();
    r.indicators.iter().map(|i| last_segment(&i.name)).collect()
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn program_filters_return_the_hand_worked_ids() {
    let mut app = spawn_app().await;
    create_programs(&mut app).await;
    let cases: &[(&str, &[&str])] = &[
        ("", &["a", "b", "c", "d", "e", "f"]),
        (r#"jurisdiction = "CN-CQ""#, &["a", "b", "e"]),
        ("jurisdiction=CN-CQ", &["a", "b", "e"]),
        // Wildcards: case-sensitive prefix.
        (r#"title = "Chongqing*""#, &["a", "b"]),
        ("title = *trade*", &["a", "d"]),
        // Has: case-insensitive substring.
        (r#"title:"chongqing""#, &["a", "b", "e"]),
        ("start_year >= 2016 AND end_year <= 2020", &["b"]),
        // OR binds tighter than AND: CN-CQ AND (before 2016 OR after 2020).
        (
            r#"jurisdiction = "CN-CQ" AND start_year < 2016 OR start_year > 2020"#,
            &["a", "e"],
        ),
        (
            r#"(jurisdiction = "CN-CQ" AND start_year < 2016) OR start_year > 2020"#,
            &["a", "e"],
        ),
        (
            r#"(jurisdiction = "CN-CQ" AND start_year < 2016) OR start_year > 2017"#,
            &["a", "c", "e"],
        ),
        // Juxtaposition is AND.
        ("start_year = 2015 end_year = 2016", &["f"]),
        ("NOT adoption_date:*", &["b", "d", "e", "f"]),
        ("adoption_date:*", &["a", "c"]),
        // A comparison with an unset date is false, and != true.
        ("adoption_date < 2016-01-01", &["a"]),
        ("NOT adoption_date < 2016-01-01", &["b", "c", "d", "e", "f"]),
        ("adoption_date != 2015-05-25", &["b", "c", "d", "e", "f"]),
        (r#"-jurisdiction = "CN-CQ""#, &["c", "d", "f"]),
        // %, _ and \ in values are literal characters, not LIKE wildcards.
        (r#"title = "*50%*""#, &["c"]),
        (r#"title = "*_x""#, &["c"]),
        (r#"title = "Beijing_trade*""#, &[]),
        (r#"title:"50%""#, &["c"]),
        (r#"title:"g_t""#, &[]),
        // Strings compare in code-point order: upper case before lower case.
        (r#"title < "a""#, &["a", "b", "c", "d", "f"]),
        (r#"name = "programs/a" OR name = "programs/d""#, &["a", "d"]),
        (
            r#"create_time > "2000-01-01T00:00:00Z""#,
            &["a", "b", "c", "d", "e", "f"],
        ),
        (r#"update_time < "2000-01-01T00:00:00+08:00""#, &[]),
        ("summary:*", &["a", "b", "c", "d", "e", "f"]),
    ];
    for (filter, want) in cases {
        let got = program_ids(&mut app, filter, "")
            .await
            .unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        assert_eq!(got, ids(want), "filter {filter}");
    }
}

#[tokio::test]
async fn initiative_target_and_indicator_filters_return_the_hand_worked_ids() {
    let mut app = fixture().await;
    let initiative_cases: &[(&str, &[&str])] = &[
        ("state = ACTIVE", &["ecommerce"]),
        (
            "state = state_planned OR state = completed",
            &["cloud", "finance"],
        ),
        ("state != ACTIVE", &["cloud", "finance"]),
        (r#"tags:"cloud""#, &["cloud", "ecommerce"]),
        (r#"tags:trade"#, &["ecommerce"]),
        ("tags:*", &["cloud", "ecommerce"]),
        ("NOT tags:*", &["finance"]),
        (r#"parent_initiative = """#, &["ecommerce", "finance"]),
        (
            r#"parent_initiative = "programs/a/initiatives/ecommerce""#,
            &["cloud"],
        ),
        (r#"indicators:"indicators/ind-a""#, &["cloud"]),
        ("start_date >= 2015-06-01", &["ecommerce", "finance"]),
        ("end_date:*", &["finance"]),
        ("position < 3", &["cloud", "ecommerce"]),
        (
            r#"title:"cross-border" AND -state = COMPLETED"#,
            &["ecommerce"],
        ),
    ];
    for (filter, want) in initiative_cases {
        assert_eq!(
            initiative_ids(&mut app, filter, "").await,
            ids(want),
            "{filter}"
        );
    }
    assert_eq!(
        initiative_ids(&mut app, "", "position").await,
        ids(&["cloud", "ecommerce", "finance"])
    );
    assert_eq!(
        initiative_ids(&mut app, "", "start_date desc").await,
        ids(&["cloud", "finance", "ecommerce"])
    );

    let target_cases: &[(&str, &[&str])] = &[
        ("kind = LEVEL", &["t1", "t2"]),
        ("kind = growth_rate", &["t3"]),
        ("target_value >= 10", &["t1", "t3"]),
        ("target_value > 7.49 AND target_value < 7.51", &["t2"]),
        ("target_value = 7.50", &["t2"]),
        ("baseline_value:*", &["t2"]),
        ("baseline_value < 6", &["t2"]),
        ("NOT baseline_value < 6", &["t1", "t3"]),
        (r#"baseline_period = "2015""#, &["t2", "t3"]),
        (r#"baseline_period = """#, &["t1"]),
        (r#"initiative = "programs/a/initiatives/finance""#, &["t2"]),
        ("initiative:*", &["t2"]),
        ("unit_multiplier = 9", &["t1"]),
        ("direction = LOWER_IS_BETTER", &["t3"]),
        (
            r#"indicator = "indicators/ind-a" target_period = "2020""#,
            &["t1", "t3"],
        ),
        (r#"target_period < "2019""#, &["t2"]),
    ];
    for (filter, want) in target_cases {
        assert_eq!(
            target_ids(&mut app, filter, "").await,
            ids(want),
            "{filter}"
        );
    }
    assert_eq!(
        target_ids(&mut app, "", "target_value desc").await,
        ids(&["t1", "t3", "t2"])
    );
    // Unset baselines sort last, and first in descending order.
    assert_eq!(
        target_ids(&mut app, "", "baseline_value").await,
        ids(&["t2", "t1", "t3"])
    );
    assert_eq!(
        target_ids(&mut app, "", "baseline_value desc").await,
        ids(&["t1", "t3", "t2"])
    );

    let indicator_cases: &[(&str, &[&str])] = &[
        ("flow = EXPORT", &["ind-a"]),
        ("flow = flow_import OR flow = TOTAL", &["ind-b", "ind-c"]),
        ("frequency != MONTHLY", &["ind-a", "ind-c"]),
        ("year_to_date = true", &["ind-b"]),
        ("year_to_date = false", &["ind-a", "ind-c"]),
        (r#"region = "CN-CQ""#, &["ind-a", "ind-b"]),
        (r#"service_category = "S*""#, &["ind-a", "ind-c"]),
        (r#"service_category = """#, &["ind-b"]),
        ("dimensions.outsourcing = ITO", &["ind-a"]),
        ("dimensions.outsourcing != ITO", &["ind-b", "ind-c"]),
        ("dimensions:partner", &["ind-b"]),
        ("dimensions:*", &["ind-a", "ind-b"]),
        ("NOT dimensions:*", &["ind-c"]),
        ("unit_multiplier > 0 AND unit = USD", &["ind-a"]),
        ("aggregation = AVERAGE", &["ind-c"]),
        ("direction = HIGHER_IS_BETTER", &["ind-a", "ind-b"]),
        (r#"title:outsourcing OR unit = "%""#, &["ind-a", "ind-c"]),
    ];
    for (filter, want) in indicator_cases {
        assert_eq!(
            indicator_ids(&mut app, filter, "").await,
            ids(want),
            "{filter}"
        );
    }
    assert_eq!(
        indicator_ids(&mut app, "", "unit_multiplier desc").await,
        ids(&["ind-a", "ind-b", "ind-c"])
    );
    assert_eq!(
        indicator_ids(&mut app, "", "region, unit").await,
        ids(&["ind-b", "ind-a", "ind-c"])
    );
}

/// Pages through ListPrograms with `filter` and `order_by`, `size` at a time.
async fn page_programs(app: &mut TestApp, filter: &str, order_by: &str, size: i32) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = app
            .programs
            .list_programs(pb::ListProgramsRequest {
                page_size: size,
                page_token: token,
                filter: filter.into(),
                order_by: order_by.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{filter:?} {order_by:?}: {e:?}"))
            .into_inner();
        assert!(r.programs.len() <= size as usize);
        out.extend(r.programs.iter().map(|p| last_segment(&p.name)));
        if r.next_page_token.is_empty() {
            return out;
        }
        token = r.next_page_token;
    }
}

#[tokio::test]
async fn order_by_desc_pages_through_every_result_once() {
    let mut app = spawn_app().await;
    create_programs(&mut app).await;
    // start_year desc, ties (a and f in 2015) by title in code-point order.
    let want = ids(&["e", "c", "b", "f", "a", "d"]);
    for size in [1, 2, 4, 100] {
        assert_eq!(
            page_programs(&mut app, "", "start_year desc, title", size).await,
            want,
            "page size {size}"
        );
    }
    // Ties broken by resource name: a and f share the start year.
    assert_eq!(
        page_programs(&mut app, "", "start_year", 1).await,
        ids(&["d", "a", "f", "b", "c", "e"])
    );
    // Unset dates sort last ascending and first descending, across page boundaries.
    assert_eq!(
        page_programs(&mut app, "", "adoption_date", 2).await,
        ids(&["a", "c", "b", "d", "e", "f"])
    );
    assert_eq!(
        page_programs(&mut app, "", "adoption_date desc", 2).await,
        ids(&["b", "d", "e", "f", "c", "a"])
    );
    assert_eq!(
        page_programs(&mut app, "", "name desc", 4).await,
        ids(&["f", "e", "d", "c", "b", "a"])
    );
    // With a filter as well.
    assert_eq!(
        page_programs(
            &mut app,
            r#"title:"chongqing""#,
            "end_year desc, name desc",
            1
        )
        .await,
        ids(&["e", "b", "a"])
    );

    // Keyset paging: a programme added before the cursor between two calls does not
    // shift the following page.
    let first = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_size: 2,
            order_by: "start_year desc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = first
        .programs
        .iter()
        .map(|p| last_segment(&p.name))
        .collect();
    assert_eq!(names, ids(&["e", "c"]));
    app.programs
        .create_program(pb::CreateProgramRequest {
            request_id: String::new(),
            program: Some(pb::Program {
                start_year: 2030,
                end_year: 2031,
                ..program("Late")
            }),
            program_id: "g".into(),
        })
        .await
        .unwrap();
    let second = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            order_by: "start_year desc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = second
        .programs
        .iter()
        .map(|p| last_segment(&p.name))
        .collect();
    assert_eq!(names, ids(&["b", "a"]));
}

/// Every orderable field of every list, in both directions: paging two at a time
/// returns what one page returns, each resource once.
#[tokio::test]
async fn every_order_pages_like_a_single_page() {
    let mut app = fixture().await;
    let lists: [(&str, &Schema); 4] = [
        ("programs", &programs::FILTER_SCHEMA),
        ("initiatives", &initiatives::FILTER_SCHEMA),
        ("targets", &targets::FILTER_SCHEMA),
        ("indicators", &indicators::FILTER_SCHEMA),
    ];
    for (list, schema) in lists {
        for field in schema.fields.iter().filter(|f| f.sort.is_some()) {
            for dir in ["", " desc"] {
                let order_by = format!("{}{dir}", field.name);
                let whole = list_page_by_page(&mut app, list, &order_by, 1000).await;
                let paged = list_page_by_page(&mut app, list, &order_by, 2).await;
                assert_eq!(paged, whole, "{list} ordered by {order_by}");
                let mut unique = whole.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), whole.len(), "{list} ordered by {order_by}");
                let expected = match list {
                    "programs" => 6,
                    "indicators" => 3,
                    _ => 3,
                };
                assert_eq!(whole.len(), expected, "{list} ordered by {order_by}");
            }
        }
    }
}

async fn list_page_by_page(
    app: &mut TestApp,
    list: &str,
    order_by: &str,
    size: i32,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (names, next) = match list {
            "programs" => {
                let r = app
                    .programs
                    .list_programs(pb::ListProgramsRequest {
                        page_size: size,
                        page_token: token,
                        order_by: order_by.into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{order_by}: {e:?}"))
                    .into_inner();
                let n: Vec<String> = r.programs.into_iter().map(|p| p.name).collect();
                (n, r.next_page_token)
            }
            "initiatives" => {
                let r = app
                    .programs
                    .list_initiatives(pb::ListInitiativesRequest {
                        parent: "programs/a".into(),
                        page_size: size,
                        page_token: token,
                        order_by: order_by.into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{order_by}: {e:?}"))
                    .into_inner();
                let n: Vec<String> = r.initiatives.into_iter().map(|p| p.name).collect();
                (n, r.next_page_token)
            }
            "targets" => {
                let r = app
                    .programs
                    .list_targets(pb::ListTargetsRequest {
                        parent: "programs/a".into(),
                        page_size: size,
                        page_token: token,
                        order_by: order_by.into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{order_by}: {e:?}"))
                    .into_inner();
                let n: Vec<String> = r.targets.into_iter().map(|p| p.name).collect();
                (n, r.next_page_token)
            }
            _ => {
                let r = app
                    .indicators
                    .list_indicators(pb::ListIndicatorsRequest {
                        page_size: size,
                        page_token: token,
                        order_by: order_by.into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{order_by}: {e:?}"))
                    .into_inner();
                let n: Vec<String> = r.indicators.into_iter().map(|p| p.name).collect();
                (n, r.next_page_token)
            }
        };
        out.extend(names);
        if next.is_empty() {
            return out;
        }
        token = next;
    }
}

#[tokio::test]
async fn unknown_fields_wrong_types_and_syntax_errors_are_invalid_argument() {
    let mut app = spawn_app().await;
    create_programs(&mut app).await;
    let err = program_ids(&mut app, r#"titel = "x""#, "")
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "filter"), "UNKNOWN_FIELD");
    assert!(
        err.message()
            .contains("unknown field \"titel\" at 1; filterable fields: name, title"),
        "{}",
        err.message()
    );
    let err = program_ids(&mut app, r#"start_year = "abc""#, "")
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "filter"), "INVALID_FILTER_VALUE");
    assert!(err.message().contains("\"abc\" at 14 is not an integer"));
    for (filter, reason) in [
        ("adoption_date > 2015-13-01", "INVALID_FILTER_VALUE"),
        ("start_year < x*", "INVALID_FILTER_VALUE"),
        ("title", "INVALID_FILTER"),
        ("(title = x", "INVALID_FILTER"),
        ("title = \"x", "INVALID_FILTER"),
    ] {
        let err = program_ids(&mut app, filter, "").await.unwrap_err();
        assert_eq!(assert_invalid(&err, "filter"), reason, "{filter}");
    }
    let deep = format!("{}title = x{}", "(".repeat(40), ")".repeat(40));
    let err = program_ids(&mut app, &deep, "").await.unwrap_err();
    assert_eq!(assert_invalid(&err, "filter"), "FILTER_TOO_DEEP");
    let long = format!("title = \"{}\"", "x".repeat(2_001));
    let err = program_ids(&mut app, &long, "").await.unwrap_err();
    assert_eq!(assert_invalid(&err, "filter"), "FILTER_TOO_LONG");

    let err = program_ids(&mut app, "", "titel desc").await.unwrap_err();
    assert_eq!(assert_invalid(&err, "order_by"), "UNKNOWN_FIELD");
    let err = program_ids(&mut app, "", "summary").await.unwrap_err();
    assert_eq!(assert_invalid(&err, "order_by"), "INVALID_ORDER_BY");
    // Both at once, and with a bad parent: every violation in one status.
    let err = app
        .programs
        .list_targets(pb::ListTargetsRequest {
            parent: "nope".into(),
            filter: "x = 1".into(),
            order_by: "kind".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "parent");
    assert_invalid(&err, "filter");
    assert_eq!(assert_invalid(&err, "order_by"), "INVALID_ORDER_BY");
    // A valid filter on a programme that does not exist: NOT_FOUND, as without one.
    let err = app
        .programs
        .list_initiatives(pb::ListInitiativesRequest {
            parent: "programs/nope".into(),
            filter: "state = ACTIVE".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .indicators
        .list_indicators(pb::ListIndicatorsRequest {
            filter: "flow < EXPORT".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "filter"), "INVALID_FILTER_VALUE");
}

#[tokio::test]
async fn sql_injection_attempts_are_only_data() {
    let mut app = spawn_app().await;
    create_programs(&mut app).await;
    let attempts = [
        r#"title = "x'; DROP TABLE programs; --""#,
        r#"title:"'); DELETE FROM programs; --""#,
        r#"title = "\"; DROP TABLE programs; --""#,
        r#"jurisdiction = "CN-CQ' OR '1'='1""#,
        r#"title = "*' OR 1=1 --*""#,
        r#"title < "' OR TRUE --""#,
    ];
    for filter in attempts {
        let got = program_ids(&mut app, filter, "")
            .await
            .unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        assert!(got.is_empty(), "{filter}: {got:?}");
    }
    // Injection through a bare word, a field name or order_by never parses.
    for filter in [
        "title = x; DROP TABLE programs",
        "title = x' OR '1'='1",
        "title; DROP TABLE programs = 1",
        // SQL-style doubled quotes end the string: the rest is a stray string.
        r#"title = 'x''; DROP TABLE programs; --'"#,
    ] {
        let err = program_ids(&mut app, filter, "").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{filter}");
    }
    for order_by in [
        "title; DROP TABLE programs",
        "title desc; DROP TABLE programs --",
        "(SELECT 1)",
        "title COLLATE \"C\"",
    ] {
        let err = program_ids(&mut app, "", order_by).await.unwrap_err();
        assert_invalid(&err, "order_by");
    }
    // The table and its rows are still there.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM programs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 6);
    assert_eq!(program_ids(&mut app, "", "").await.unwrap().len(), 6);
}

#[tokio::test]
async fn page_tokens_are_bound_to_the_filter_and_the_order() {
    let mut app = spawn_app().await;
    create_programs(&mut app).await;
    let first = |filter: &str, order_by: &str| pb::ListProgramsRequest {
        page_size: 1,
        filter: filter.into(),
        order_by: order_by.into(),
        ..Default::default()
    };
    let r = app
        .programs
        .list_programs(first(r#"jurisdiction = "CN-CQ""#, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.programs[0].name, "programs/a");
    let token = r.next_page_token;
    assert!(!token.is_empty());
    // The same request continues.
    let next = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_token: token.clone(),
            ..first(r#"jurisdiction = "CN-CQ""#, "")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.programs[0].name, "programs/b");
    // Another filter, no filter, or an order: refused.
    for (filter, order_by) in [
        (r#"jurisdiction = "CN-SH""#, ""),
        (r#"jurisdiction="CN-CQ""#, ""),
        ("", ""),
        (r#"jurisdiction = "CN-CQ""#, "title"),
    ] {
        let err = app
            .programs
            .list_programs(pb::ListProgramsRequest {
                page_token: token.clone(),
                ..first(filter, order_by)
            })
            .await
            .unwrap_err();
        assert_eq!(
            assert_invalid(&err, "page_token"),
            "INVALID_PAGE_TOKEN",
            "{filter} {order_by}"
        );
    }
    // A token of an ordered list is refused with another order, and without one.
    let r = app
        .programs
        .list_programs(first("", "start_year desc"))
        .await
        .unwrap()
        .into_inner();
    for order_by in ["start_year", "", "end_year desc"] {
        let err = app
            .programs
            .list_programs(pb::ListProgramsRequest {
                page_token: r.next_page_token.clone(),
                ..first("", order_by)
            })
            .await
            .unwrap_err();
        assert_eq!(assert_invalid(&err, "page_token"), "INVALID_PAGE_TOKEN");
    }
    // A token of an unfiltered list (issued as before filters existed) still works
    // unfiltered, and not with a filter.
    let r = app
        .programs
        .list_programs(first("", ""))
        .await
        .unwrap()
        .into_inner();
    let err = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_token: r.next_page_token.clone(),
            ..first("title:*", "")
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "page_token");
    let ok = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_token: r.next_page_token,
            ..first("", "")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.programs[0].name, "programs/b");
}

// ---------------------------------------------------------------------------------------
// Generated filters: every well-typed filter runs (no INTERNAL from the database).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn literal(rng: &mut Rng, ty: FieldType) -> String {
    match ty {
        FieldType::String | FieldType::Map => rng
            .pick(&[
                "\"Chongqing*\"",
                "CN-CQ",
                "\"x'; DROP TABLE programs; --\"",
                "\"100% _\\\\ \\*\"",
                "\"\"",
                "*trade*",
                "\"重庆\"",
            ])
            .to_string(),
        FieldType::StringList => rng
            .pick(&["cloud", "\"indicators/ind-a\"", "\"'\"", "*"])
            .to_string(),
        FieldType::Enum(e) => {
            let (name, _) = rng.pick(e.values);
            if rng.below(2) == 0 {
                name.to_string()
            } else {
                name.trim_start_matches(e.prefix).to_lowercase()
            }
        }
        FieldType::Integer => rng
            .pick(&[
                "0",
                "-1",
                "2015",
                "9223372036854775807",
                "-9223372036854775808",
            ])
            .to_string(),
        FieldType::Decimal => rng
            .pick(&[
                "0",
                "7.5",
                "-1e3",
                "30.000000000000000001",
                "123456789012345678901234567890",
            ])
            .to_string(),
        FieldType::Date => rng
            .pick(&["2015-05-25", "0001-01-01", "9999-12-31", "2016-02-29"])
            .to_string(),
        FieldType::Timestamp => rng
            .pick(&[
                "\"2021-01-01T00:00:00Z\"",
                "\"0001-01-01T00:00:00+14:00\"",
                "\"9999-12-31T23:59:59.999999999-12:00\"",
                "2020-06-30",
            ])
            .to_string(),
        FieldType::Bool => rng.pick(&["true", "FALSE"]).to_string(),
    }
}

fn restriction(rng: &mut Rng, schema: &Schema) -> String {
    let f = rng.pick(schema.fields);
    let all = ["=", "!=", "<", "<=", ">", ">=", ":"];
    let op = match f.ty {
        FieldType::Enum(_) | FieldType::Bool => *rng.pick(&["=", "!=", ":"]),
        FieldType::StringList => ":",
        _ => *rng.pick(&all),
    };
    let name = if matches!(f.ty, FieldType::Map) {
        if rng.below(3) == 0 {
            return format!("{}:{}", f.name, rng.pick(&["partner", "*", "\"a b\""]));
        }
        format!(
            "{}.{}",
            f.name,
            rng.pick(&["outsourcing", "partner", "x_y"])
        )
    } else {
        f.name.to_owned()
    };
    let mut value = literal(rng, f.ty);
    if value.contains('*') && !matches!(op, "=" | "!=" | ":") {
        value = "\"a\"".into();
    }
    if value == "*" && op != ":" {
        value = "x".into();
    }
    if op == ":" && matches!(f.ty, FieldType::StringList) && value != "*" {
        value = value.replace('*', "");
    }
    if value == "*" && f.nullable {
        return format!("{}:*", f.name);
    }
    format!("{name} {op} {value}")
}

fn generated(rng: &mut Rng, schema: &Schema, depth: usize) -> String {
    if depth == 0 || rng.below(3) == 0 {
        return restriction(rng, schema);
    }
    let a = generated(rng, schema, depth - 1);
    let b = generated(rng, schema, depth - 1);
    match rng.below(5) {
        0 => format!("{a} AND {b}"),
        1 => format!("{a} OR {b}"),
        2 => format!("({a}) {b}"),
        3 => format!("NOT ({a}) OR -({b})"),
        _ => format!("({a} OR {b}) AND {a}"),
    }
}

#[tokio::test]
async fn generated_filters_run_on_every_list() {
    let mut app = fixture().await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for round in 0..240 {
        let list = round % 4;
        let schema: &Schema = match list {
            0 => &programs::FILTER_SCHEMA,
            1 => &initiatives::FILTER_SCHEMA,
            2 => &targets::FILTER_SCHEMA,
            _ => &indicators::FILTER_SCHEMA,
        };
        let filter = generated(&mut rng, schema, 3);
        let result = match list {
            0 => program_ids(&mut app, &filter, "").await.map(|_| ()),
            1 => app
                .programs
                .list_initiatives(pb::ListInitiativesRequest {
                    parent: "programs/a".into(),
                    filter: filter.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            2 => app
                .programs
                .list_targets(pb::ListTargetsRequest {
                    parent: "programs/a".into(),
                    filter: filter.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            _ => app
                .indicators
                .list_indicators(pb::ListIndicatorsRequest {
                    filter: filter.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => accepted += 1,
            // Only a refusal of the filter itself (e.g. too long) is acceptable.
            Err(e) => {
                assert_invalid(&e, "filter");
            }
        }
    }
    assert!(
        accepted > 200,
        "only {accepted} of 240 generated filters ran"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM programs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 6);
}

/// The examples of the README, on the built-in Chongqing programme.
#[tokio::test]
async fn readme_examples_work_on_the_seed() {
    let mut app = spawn_app().await;
    assert!(tradewatch::seed::load(&app.pool).await.unwrap());
    let programs = program_ids(
        &mut app,
        r#"jurisdiction = "CN-CQ" AND start_year >= 2015"#,
        "start_year desc, title",
    )
    .await
    .unwrap();
    assert_eq!(programs, ids(&["cq-2015-service-trade"]));
    let areas = app
        .programs
        .list_initiatives(pb::ListInitiativesRequest {
            parent: "programs/cq-2015-service-trade".into(),
            filter: r#"parent_initiative = "" AND state = ACTIVE"#.into(),
            order_by: "position".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .initiatives;
    assert_eq!(areas.len(), 7);
    assert!(areas.iter().all(|i| i.parent_initiative.is_empty()));
    assert!(areas.windows(2).all(|w| w[0].position <= w[1].position));
}
