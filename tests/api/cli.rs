//! The operator CLI (`tradewatch programs|initiatives|targets|indicators …`,
//! `tradewatch observations …`, `tradewatch report …`, `import`, `export`): the real
//! binary against the real server, its printed output checked against values worked out
//! by hand.

use std::collections::HashMap;
use std::time::Duration;

use tradewatch::proto::v1 as pb;

use crate::helpers::{TestApp, spawn_app};

/// What one run of the binary printed.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and returns standard output.
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with `code` and returns standard error.
    #[track_caller]
    fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}

/// The binary pointed at `app`: `tradewatch ARGS --server http://ADDR`. The only place
/// that says how the CLI reaches (and, once the server asks for it, authenticates to)
/// the test server. The client flags are global to each command, so they follow
/// `ARGS`.
fn tradewatch(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"));
    cmd.args(args)
        .args(["--server", &format!("http://{}", app.addr)])
        .args(["--key", &app.admin_key])
        .env_remove("TRADEWATCH_SERVER")
        .env_remove("TRADEWATCH_KEY")
        .kill_on_drop(true);
    cmd
}

async fn output(mut cmd: tokio::process::Command) -> Run {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the CLI finishes")
        .expect("run the CLI");
    Run {
        code: out.status.code().expect("an exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `tradewatch ARGS` against `app`.
async fn run(app: &TestApp, args: &[&str]) -> Run {
    output(tradewatch(app, args)).await
}

/// A field list (`field  value` lines) as a map; continuation lines are joined to
/// their field with `\n`.
fn fields(text: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut last = String::new();
    for line in text.lines() {
        if line.starts_with(' ') {
            let v: &mut String = map.get_mut(&last).expect("a continued field");
            v.push('\n');
            v.push_str(line.trim());
            continue;
        }
        let (k, v) = line.split_once("  ").unwrap_or((line, ""));
        last = k.to_owned();
        map.insert(k.to_owned(), v.trim().to_owned());
    }
    map
}

/// The non-empty cells of a table line (cells are separated by two spaces or more).
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const CQ: &[&str] = &[
    "programs",
    "create",
    "cq",
    "--title",
    "Chongqing service trade plan",
    "--issuing-body",
    "Chongqing Municipal People's Government",
    "--adoption-date",
    "2015-05-25",
    "--jurisdiction",
    "CN-CQ",
    "--start-year",
    "2016",
    "--end-year",
    "2020",
    "--summary",
    "Seven areas.\nOne target.",
    "--source-uri",
    "https://example.org/plan",
];

#[tokio::test]
async fn programs_create_get_update_list_and_delete() {
    let mut app = spawn_app().await;

    let created = fields(run(&app, CQ).await.ok());
    assert_eq!(created["name"], "programs/cq");
    assert_eq!(created["title"], "Chongqing service trade plan");

    let got = fields(run(&app, &["programs", "get", "cq"]).await.ok());
    assert_eq!(got, created);
    assert_eq!(
        got["issuing_body"],
        "Chongqing Municipal People's Government"
    );
    assert_eq!(got["adoption_date"], "2015-05-25");
    assert_eq!(got["jurisdiction"], "CN-CQ");
    assert_eq!(got["start_year"], "2016");
    assert_eq!(got["end_year"], "2020");
    assert_eq!(got["summary"], "Seven areas.\nOne target.");
    assert_eq!(got["source_uri"], "https://example.org/plan");
    assert!(got["create_time"].ends_with('Z'), "{got:?}");
    // A full name works as well as the id.
    assert_eq!(
        fields(run(&app, &["programs", "get", "programs/cq"]).await.ok()),
        got
    );

    // Update sends a mask of the given flags only: the title changes, nothing else.
    let updated = fields(
        run(
            &app,
            &["programs", "update", "cq", "--title", "Renamed plan"],
        )
        .await
        .ok(),
    );
    assert_eq!(updated["title"], "Renamed plan");
    for (k, v) in &got {
        if !["title", "update_time", "etag"].contains(&k.as_str()) {
            assert_eq!(&updated[k], v, "{k}");
        }
    }
    assert_ne!(updated["etag"], got["etag"]);
    let stored = app
        .programs
        .get_program(pb::GetProgramRequest {
            name: "programs/cq".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.title, "Renamed plan");
    assert_eq!(stored.summary, "Seven areas.\nOne target.");
    assert_eq!(stored.start_year, 2016);

    // A stale etag is refused.
    let r = run(
        &app,
        &[
            "programs",
            "update",
            "cq",
            "--end-year",
            "2021",
            "--etag",
            &got["etag"],
        ],
    )
    .await;
    assert!(r.fails(1).starts_with("error: ABORTED: "), "{}", r.stderr);

    // The list, in name order, titles from the API's helper.
    app.create_program("b").await;
    let list = run(&app, &["programs", "list"]).await;
    assert_eq!(
        list.ok(),
        "ID  JURISDICTION  YEARS      TITLE\n\
         b   CN-CQ         2015–2020  Programme b\n\
         cq  CN-CQ         2016–2020  Renamed plan\n"
    );
    let limited = run(&app, &["programs", "list", "--limit", "1"]).await;
    assert_eq!(
        limited.ok(),
        "ID  JURISDICTION  YEARS      TITLE\n\
         b   CN-CQ         2015–2020  Programme b\n"
    );

    // Delete, then the programme is gone.
    assert_eq!(
        run(&app, &["programs", "delete", "b"]).await.ok(),
        "deleted programs/b\n"
    );
    let r = run(&app, &["programs", "get", "b"]).await;
    assert_eq!(r.fails(1), "error: NOT_FOUND: programs/b not found\n");
    assert_eq!(r.stdout, "");
}

#[tokio::test]
async fn list_pages_through_every_result() {
    let mut app = spawn_app().await;
    // More than one page at the server's largest page size would be slow to build;
    // --limit below the total exercises the same loop, the full list its end.
    for id in ["p1", "p2", "p3", "p4", "p5"] {
        app.create_program(id).await;
    }
    let all = run(&app, &["programs", "list", "--json"]).await;
    let v = json(all.ok());
    let names: Vec<&str> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "programs/p1",
            "programs/p2",
            "programs/p3",
            "programs/p4",
            "programs/p5"
        ]
    );
    assert_eq!(v["nextPageToken"], "");
    let three = json(
        run(&app, &["programs", "list", "--limit", "3", "--json"])
            .await
            .ok(),
    );
    assert_eq!(three["programs"].as_array().unwrap().len(), 3);
    assert_eq!(three["programs"][2]["name"], "programs/p3");
}

#[tokio::test]
async fn json_output_is_the_proto3_json_mapping() {
    let app = spawn_app().await;
    run(&app, CQ).await.ok();
    // `--json` may come before or after the verb.
    for args in [
        &["programs", "get", "cq", "--json"][..],
        &["programs", "--json", "get", "cq"][..],
    ] {
        let v = json(run(&app, args).await.ok());
        assert_eq!(v["name"], "programs/cq");
        assert_eq!(v["title"], "Chongqing service trade plan");
        assert_eq!(v["issuingBody"], "Chongqing Municipal People's Government");
        assert_eq!(v["startYear"], 2016);
        assert_eq!(v["endYear"], 2020);
        assert_eq!(v["summary"], "Seven areas.\nOne target.");
        assert!(v["createTime"].as_str().unwrap().ends_with('Z'), "{v}");
        assert!(!v["etag"].as_str().unwrap().is_empty());
    }
    let r = run(&app, &["programs", "delete", "cq", "--force", "--json"]).await;
    assert_eq!(json(r.ok()), serde_json::json!({}));
}

/// Programme `cq`, indicator `offshore` and target `offshore-2022`, all made with the
/// CLI, and the Chongqing offshore-outsourcing figures (2018 21.5, 2019 20.6, 2020 22.8
/// hundred million USD) written through the API.
async fn chongqing_offshore(app: &mut TestApp) {
    run(app, CQ).await.ok();
    let ind = run(
        app,
        &[
            "indicators",
            "create",
            "offshore",
            "--title",
            "Offshore service outsourcing executed value",
            "--unit",
            "USD",
            "--unit-multiplier",
            "8",
            "--frequency",
            "A",
            "--flow",
            "export",
            "--service-category",
            "SJ",
            "--region",
            "CN-CQ",
            "--dimensions",
            "shore=OFFSHORE,basis=EXECUTED",
            "--aggregation",
            "sum",
            "--direction",
            "higher",
        ],
    )
    .await;
    let ind = fields(ind.ok());
    assert_eq!(ind["name"], "indicators/offshore");
    assert_eq!(ind["frequency"], "annual");
    assert_eq!(ind["dimensions"], "basis=EXECUTED, shore=OFFSHORE");
    assert_eq!(ind["year_to_date"], "false");
    let stored = app
        .indicators
        .get_indicator(pb::GetIndicatorRequest {
            name: "indicators/offshore".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.frequency, pb::Frequency::Annual as i32);
    assert_eq!(stored.flow, pb::indicator::Flow::Export as i32);
    assert_eq!(stored.aggregation, pb::indicator::Aggregation::Sum as i32);
    assert_eq!(stored.direction, pb::Direction::HigherIsBetter as i32);
    assert_eq!((stored.unit.as_str(), stored.unit_multiplier), ("USD", 8));
    assert_eq!(stored.dimensions.len(), 2);

    let observations = [("2018", "21.5"), ("2019", "20.6"), ("2020", "22.8")]
        .iter()
        .map(|(period, value)| pb::Observation {
            name: format!("indicators/offshore/observations/{period}"),
            value: value.to_string(),
            status: pb::observation::Status::Normal as i32,
            ..Default::default()
        })
        .collect();
    app.observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations,
            validate_only: false,
        })
        .await
        .unwrap();

    let target = run(
        app,
        &[
            "targets",
            "create",
            "offshore-2022",
            "--program",
            "cq",
            "--title",
            "Offshore outsourcing of 25 hundred million USD in 2022",
            "--indicator",
            "offshore",
            "--kind",
            "level",
            "--target-value",
            "25",
            "--unit-multiplier",
            "8",
            "--target-period",
            "2022",
            "--direction",
            "higher-is-better",
        ],
    )
    .await;
    let target = fields(target.ok());
    assert_eq!(target["name"], "programs/cq/targets/offshore-2022");
    assert_eq!(target["indicator"], "indicators/offshore");
    assert_eq!(target["kind"], "level");
    assert_eq!(target["direction"], "higher-is-better");
}

#[tokio::test]
async fn report_progress_of_a_target_on_hand_made_figures() {
    let mut app = spawn_app().await;
    chongqing_offshore(&mut app).await;

    // Worked out in reports.rs (target_progress_on_the_chongqing_outsourcing_figures):
    // observed = (22.8 / 21.5)^(1/2) − 1 = 0.02978887 → 2.98 %
    // required = (25 / 21.5)^(1/4) − 1 = 0.03842560 → 3.84 %
    // R = 0.02978887 / 0.03842560 = 0.775235 → 0.775: acceleration needed
    // attainment = 22.8 / 25 = 0.912 → 91.20 %
    // projected = 22.8 × 22.8 / 21.5 = 24.178605 (6 decimals)
    // still required = (25 / 22.8)^(1/2) − 1 = 0.04713477 → 4.71 %
    let by_id = run(
        &app,
        &[
            "report",
            "progress",
            "--program",
            "cq",
            "--target",
            "offshore-2022",
        ],
    )
    .await;
    let p = fields(by_id.ok());
    assert_eq!(p["target"], "programs/cq/targets/offshore-2022");
    assert_eq!(p["indicator"], "indicators/offshore");
    // 2022 is over without a 2022 figure: no verdict.
    assert_eq!(p["status"], "not assessable");
    assert!(!p["reason"].is_empty());
    assert_eq!(p["unit"], "10^8 USD");
    assert_eq!(p["baseline"], "21.5 (2018)");
    assert_eq!(p["latest"], "22.8 (2020)");
    assert_eq!(p["target value"], "25 (2022)");
    assert_eq!(p["attainment"], "91.20 %");
    assert_eq!(p["observed CAGR"], "2.98 %");
    assert_eq!(p["required CAGR"], "3.84 %");
    assert_eq!(p["ratio"], "0.775");
    assert_eq!(p["projected"], "24.178605 (2022)");
    assert_eq!(p["still required CAGR"], "4.71 %");
    // By full name, no --program needed.
    let by_name = run(
        &app,
        &[
            "report",
            "progress",
            "--target",
            "programs/cq/targets/offshore-2022",
        ],
    )
    .await;
    let q = fields(by_name.ok());
    assert_eq!(q["status"], "not assessable");
    assert_eq!(q["ratio"], "0.775");

    // Every target of the programme, a row each.
    let list = run(&app, &["report", "progress", "--program", "cq"]).await;
    let lines: Vec<&str> = list.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        cells(lines[1]),
        [
            "offshore-2022",
            "not assessable",
            "10^8 USD",
            "21.5 (2018)",
            "22.8 (2020)",
            "25 (2022)",
            "91.20 %",
            "2.98 %",
            "3.84 %",
            "0.775"
        ]
    );

    // JSON: canonical names, the status by enum name, decimals as strings.
    let j = json(
        run(
            &app,
            &[
                "report",
                "progress",
                "--target",
                "programs/cq/targets/offshore-2022",
                "--json",
            ],
        )
        .await
        .ok(),
    );
    assert_eq!(j["status"], "STATUS_NOT_ASSESSABLE");
    assert_eq!(j["latestValue"], "22.8");
    assert_eq!(j["latestPeriod"], "2020");
    assert_eq!(j["projectedValue"], "24.178605");
    assert_eq!(j["unitMultiplier"], 8);
    assert!(
        (j["ratio"].as_f64().unwrap() - 0.775_234_94).abs() < 1e-6,
        "{j}"
    );

    // As known before any figure was written: nothing to assess.
    let before = run(
        &app,
        &[
            "report",
            "progress",
            "--target",
            "programs/cq/targets/offshore-2022",
            "--as-of",
            "2000-01-01T00:00:00Z",
        ],
    )
    .await;
    let b = fields(before.ok());
    assert_eq!(b["status"], "not assessable");
    assert_eq!(b["as of"], "2000-01-01T00:00:00Z");
}

#[tokio::test]
async fn report_series_breakdown_and_scorecard() {
    let mut app = spawn_app().await;
    chongqing_offshore(&mut app).await;

    // Percent change on the previous year:
    // 2019: (20.6 / 21.5 − 1) × 100 = −4.186047 → -4.19
    // 2020: (22.8 / 20.6 − 1) × 100 = 10.679612 → 10.68
    let series = run(
        &app,
        &[
            "report",
            "series",
            "--indicator",
            "offshore",
            "--transform",
            "percent-change",
        ],
    )
    .await;
    let text = series.ok();
    let mut lines = text.lines();
    let heading = lines.next().unwrap();
    assert!(
        heading.starts_with("indicators/offshore: percent, annual, percent-change, as of "),
        "{heading}"
    );
    assert_eq!(
        lines.collect::<Vec<_>>().join("\n"),
        "PERIOD   RATE  PARTS\n\
         2018             1/1\n\
         2019    -4.19    1/1\n\
         2020    10.68    1/1"
    );
    let levels = run(
        &app,
        &[
            "report",
            "series",
            "--indicator",
            "indicators/offshore",
            "--start",
            "2019",
        ],
    )
    .await;
    assert!(levels.ok().ends_with(
        "PERIOD  VALUE  PARTS\n\
         2019     20.6    1/1\n\
         2020     22.8    1/1\n"
    ));

    // One indicator in category SJ: all of the total.
    let breakdown = run(
        &app,
        &[
            "report",
            "breakdown",
            "--period",
            "2020",
            "--group-by",
            "service-category",
            "--region",
            "CN-CQ",
            "--flow",
            "export",
        ],
    )
    .await;
    let text = breakdown.ok();
    assert!(text.starts_with("2020: 10^8 USD, as of "), "{text}");
    assert!(
        text.ends_with(
            "GROUP  VALUE     SHARE  INDICATORS\n\
             SJ      22.8  100.00 %  offshore\n\
             total   22.8\n"
        ),
        "{text}"
    );
    let j = json(
        run(
            &app,
            &[
                "report",
                "breakdown",
                "--period",
                "2020",
                "--group-by",
                "flow",
                "--json",
            ],
        )
        .await
        .ok(),
    );
    assert_eq!(j["groups"][0]["key"], "export");
    assert_eq!(j["total"], "22.8");

    // The scorecard: an initiative measured by the indicator, the target in it.
    run(
        &app,
        &[
            "initiatives",
            "create",
            "outsourcing",
            "--program",
            "cq",
            "--title",
            "Offshore outsourcing",
            "--state",
            "active",
            "--indicators",
            "offshore",
        ],
    )
    .await
    .ok();
    run(
        &app,
        &[
            "targets",
            "update",
            "programs/cq/targets/offshore-2022",
            "--initiative",
            "outsourcing",
        ],
    )
    .await
    .ok();
    let card = run(&app, &["report", "scorecard", "--program", "cq"]).await;
    let text = card.ok();
    // Change on a year earlier: 22.8 − 20.6 = 2.2; (2.2 / 20.6) × 100 = 10.68 %.
    let rows: Vec<Vec<&str>> = text.lines().skip(2).map(cells).collect();
    assert_eq!(
        rows,
        [
            vec!["Offshore outsourcing", "active"],
            vec![
                "target Offshore outsourcing of 25 hundred million USD in 2022",
                "not assessable",
                "10^8 USD",
                "22.8 (2020)",
                "25 (2022)"
            ],
            vec![
                "indicator Offshore service outsourcing executed value",
                "10^8 USD",
                "22.8 (2020)",
                "2.2 (+10.68 %)"
            ],
        ],
        "{text}"
    );
}

#[tokio::test]
async fn initiatives_as_a_tree_by_id_or_name() {
    let app = spawn_app().await;
    run(&app, CQ).await.ok();
    let area = [
        "initiatives",
        "create",
        "area",
        "--program",
        "cq",
        "--title",
        "Develop offshore outsourcing",
        "--state",
        "active",
        "--position",
        "7",
    ];
    run(&app, &area).await.ok();
    let measure = run(
        &app,
        &[
            "initiatives",
            "create",
            "programs/cq/initiatives/measure",
            "--parent",
            "area",
            "--title",
            "Optimise the structure",
            "--state",
            "planned",
            "--tags",
            "ito,bpo",
            "--lead-agency",
            "Commerce Commission",
        ],
    )
    .await;
    let m = fields(measure.ok());
    assert_eq!(m["parent_initiative"], "programs/cq/initiatives/area");
    assert_eq!(m["tags"], "ito, bpo");
    assert_eq!(m["state"], "planned");

    let list = run(&app, &["initiatives", "list", "--program", "programs/cq"]).await;
    assert_eq!(
        list.ok(),
        "ID       PARENT  STATE    POSITION  TITLE\n\
         area             active          7  Develop offshore outsourcing\n\
         measure  area    planned         0  Optimise the structure\n"
    );

    // Clearing the tags changes nothing else.
    let cleared = run(
        &app,
        &[
            "initiatives",
            "update",
            "measure",
            "--program",
            "cq",
            "--tags",
            "",
        ],
    )
    .await;
    let c = fields(cleared.ok());
    assert!(!c.contains_key("tags"), "{c:?}");
    assert_eq!(c["lead_agency"], "Commerce Commission");
    assert_eq!(c["state"], "planned");

    // A parent with children is not deleted without --force.
    let r = run(
        &app,
        &["initiatives", "delete", "programs/cq/initiatives/area"],
    )
    .await;
    assert!(
        r.fails(1).starts_with("error: FAILED_PRECONDITION: "),
        "{}",
        r.stderr
    );
    let r = run(
        &app,
        &[
            "initiatives",
            "delete",
            "area",
            "--program",
            "cq",
            "--force",
        ],
    )
    .await;
    assert_eq!(r.ok(), "deleted programs/cq/initiatives/area\n");
    let r = run(&app, &["initiatives", "get", "measure", "--program", "cq"]).await;
    assert_eq!(
        r.fails(1),
        "error: NOT_FOUND: programs/cq/initiatives/measure not found\n"
    );
}

#[tokio::test]
async fn invalid_values_name_the_field_and_exit_non_zero() {
    let app = spawn_app().await;

    // Refused by the server: exit 1, every bad field listed from the BadRequest.
    let r = run(
        &app,
        &[
            "programs",
            "create",
            "bad",
            "--title",
            "T",
            "--jurisdiction",
            "XX-ZZZ",
            "--start-year",
            "2015",
            "--end-year",
            "2010",
        ],
    )
    .await;
    let err = r.fails(1);
    assert!(
        err.starts_with("error: INVALID_ARGUMENT: invalid request\n"),
        "{err}"
    );
    assert!(err.contains("\n  program.jurisdiction: "), "{err}");
    assert!(err.contains("\n  program.end_year: "), "{err}");
    assert_eq!(r.stdout, "");

    // Refused by the command line: exit 2, the flag named, no call made.
    let cases: &[(&[&str], &str)] = &[
        (
            &["programs", "create", "x", "--start-year", "soon"],
            "--start-year",
        ),
        (
            &[
                "initiatives",
                "create",
                "x",
                "--program",
                "p",
                "--state",
                "busy",
            ],
            "--state",
        ),
        (
            &[
                "report",
                "progress",
                "--program",
                "p",
                "--as-of",
                "yesterday",
            ],
            "--as-of",
        ),
        (&["programs", "list", "--limit", "0"], "--limit"),
        (
            &["indicators", "create", "x", "--dimensions", "shore"],
            "--dimensions",
        ),
        (&["initiatives", "get", "x"], "--program"),
        (&["report", "progress"], "--program"),
        (&["programs", "update", "x"], "nothing to update"),
    ];
    for (args, named) in cases {
        let r = run(&app, args).await;
        let err = r.fails(2);
        assert!(err.contains(named), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn not_found_and_unreachable_servers_exit_non_zero() {
    let app = spawn_app().await;
    let r = run(&app, &["programs", "get", "nope"]).await;
    assert_eq!(r.fails(1), "error: NOT_FOUND: programs/nope not found\n");
    let r = run(&app, &["indicators", "delete", "nope"]).await;
    assert_eq!(r.fails(1), "error: NOT_FOUND: indicators/nope not found\n");
    let r = run(&app, &["report", "scorecard", "--program", "nope"]).await;
    assert_eq!(r.fails(1), "error: NOT_FOUND: programs/nope not found\n");

    // A port nobody listens on: exit 3.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"));
    cmd.args(["programs", "list"])
        .env("TRADEWATCH_SERVER", format!("http://127.0.0.1:{port}"))
        .env_remove("TRADEWATCH_KEY")
        .kill_on_drop(true);
    let r = output(cmd).await;
    assert!(
        r.fails(3).starts_with(&format!(
            "error: cannot connect to http://127.0.0.1:{port}: "
        )),
        "{}",
        r.stderr
    );
}

/// A server that wants `authorization: Bearer s3cret` on every call, in front of the
/// test database: programme and observation services only.
async fn server_with_key(app: &TestApp) -> std::net::SocketAddr {
    use tradewatch::api::observation_service::ObservationApi;
    use tradewatch::api::program_service::ProgramApi;
    use tradewatch::proto::v1::observation_service_server::ObservationServiceServer;
    use tradewatch::proto::v1::program_service_server::ProgramServiceServer;

    fn check(request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match request.metadata().get("authorization") {
            Some(v) if v == "Bearer s3cret" => Ok(request),
            Some(v) => Err(tonic::Status::unauthenticated(format!("wrong key: {v:?}"))),
            None => Err(tonic::Status::unauthenticated("no key")),
        }
    }
    let ctx = tradewatch::server::context(app.pool.clone())
        .await
        .expect("context");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tonic::transport::Server::builder()
        .add_service(ProgramServiceServer::with_interceptor(
            ProgramApi::new(ctx.clone()),
            check,
        ))
        .add_service(ObservationServiceServer::with_interceptor(
            ObservationApi::new(ctx),
            check,
        ));
    tokio::spawn(
        router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

#[tokio::test]
async fn the_key_is_sent_as_a_bearer_token_on_every_call() {
    let mut app = spawn_app().await;
    app.create_program("cq").await;
    let addr = server_with_key(&app).await;
    let cli = |args: &[&str], key: Option<(&str, &str)>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"));
        cmd.args(args)
            .env("TRADEWATCH_SERVER", format!("http://{addr}"))
            .env_remove("TRADEWATCH_KEY")
            .kill_on_drop(true);
        match key {
            Some(("env", k)) => {
                cmd.env("TRADEWATCH_KEY", k);
            }
            Some((_, k)) => {
                cmd.args(["--key", k]);
            }
            None => {}
        }
        output(cmd)
    };

    let r = cli(&["programs", "list"], None).await;
    assert_eq!(r.fails(1), "error: UNAUTHENTICATED: no key\n");
    let r = cli(&["programs", "get", "cq"], Some(("flag", "guess"))).await;
    assert!(
        r.fails(1).starts_with("error: UNAUTHENTICATED: wrong key"),
        "{}",
        r.stderr
    );

    let r = cli(&["programs", "list"], Some(("flag", "s3cret"))).await;
    assert!(r.ok().contains("\ncq "), "{}", r.stdout);
    let r = cli(
        &["programs", "get", "cq", "--json"],
        Some(("env", "s3cret")),
    )
    .await;
    assert_eq!(json(r.ok())["name"], "programs/cq");
    // Import and export use the same connection.
    let r = cli(&["export"], Some(("env", "s3cret"))).await;
    assert_eq!(r.ok(), "indicator,period,value,status,comment,source\n");
    let r = cli(&["export"], None).await;
    assert!(r.fails(1).contains("UNAUTHENTICATED"), "{}", r.stderr);
    // A key that cannot be a header is a usage error.
    let r = cli(&["programs", "list"], Some(("flag", "bad\u{7f}key"))).await;
    assert!(r.fails(2).contains("--key"), "{}", r.stderr);
}

/// `--server` also takes grpcurl's form, `host:port` without a scheme.
#[tokio::test]
async fn server_given_as_host_and_port_like_grpcurl_is_reached() {
    let mut app = spawn_app().await;
    app.create_program("hp").await;
    let out = output({
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"));
        cmd.args(["programs", "get", "hp"])
            .args(["--server", &app.addr.to_string()])
            .args(["--key", &app.admin_key])
            .env_remove("TRADEWATCH_SERVER")
            .env_remove("TRADEWATCH_KEY")
            .kill_on_drop(true);
        cmd
    })
    .await;
    assert_eq!(fields(out.ok())["name"], "programs/hp");
}

/// `import` and `export` fail as every client command does: one `error: CODE: message`
/// (no second `tradewatch: …` line, no log line), exit code 1 for a refusal and 3 when
/// the server cannot be reached.
#[tokio::test]
async fn import_and_export_report_errors_once_with_the_documented_exit_codes() {
    let mut app = spawn_app().await;
    app.create_indicator("cc-cli-err").await;
    let dir = std::env::temp_dir().join(format!("tw-cli-err-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("bad.csv");
    std::fs::write(
        &csv,
        "indicator,period,value,status,comment,source\ncc-cli-err,2020,n/a,A,,\n",
    )
    .unwrap();
    let refused = run(&app, &["import", csv.to_str().unwrap()]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    let errors: Vec<&str> = refused
        .stderr
        .lines()
        .filter(|l| l.contains("error") || l.starts_with("tradewatch:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", refused.stderr);
    assert!(
        errors[0].starts_with("error: INVALID_ARGUMENT: nothing was written"),
        "{}",
        refused.stderr
    );

    let export = run(&app, &["export", "--indicator", "nope"]).await;
    assert_eq!(export.code, 1, "{export:?}");
    assert!(export.stderr.starts_with("error: "), "{}", export.stderr);
    assert!(!export.stderr.contains("tradewatch:"), "{}", export.stderr);

    // Nothing listens on port 9 of 127.0.0.1.
    for command in [vec!["import", csv.to_str().unwrap()], vec!["export"]] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"));
        cmd.args(&command)
            .args(["--server", "127.0.0.1:9"])
            .env_remove("TRADEWATCH_SERVER")
            .env_remove("TRADEWATCH_KEY")
            .kill_on_drop(true);
        let unreachable = output(cmd).await;
        assert_eq!(unreachable.code, 3, "{command:?}: {unreachable:?}");
        assert!(
            unreachable.stderr.starts_with("error: cannot connect to"),
            "{}",
            unreachable.stderr
        );
        assert_eq!(
            unreachable.stderr.lines().count(),
            1,
            "{}",
            unreachable.stderr
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The binary with `args` and none of the client settings from the environment.
fn bare(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"));
    cmd.args(args)
        .env_remove("TRADEWATCH_SERVER")
        .env_remove("TRADEWATCH_KEY")
        .env_remove("TRADEWATCH_CA_CERT")
        .env_remove("TRADEWATCH_LISTEN")
        .kill_on_drop(true);
    cmd
}

/// Client commands show and take client options only (issue 11, item 7): the server's
/// settings are refused after the command and before it, and their help lists none of
/// them; the server's own commands still take them, before or after their name.
#[tokio::test]
async fn client_commands_take_client_options_only() {
    let r = output(bare(&["programs", "list", "--listen", "1.2.3.4:5"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unexpected argument '--listen'"),
        "{}",
        r.stderr
    );
    let r = output(bare(&["--listen", "1.2.3.4:5", "programs", "list"])).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(
            "error: --listen is a server setting; client commands take client options only"
        ),
        "{}",
        r.stderr
    );
    let r = output(bare(&[
        "import",
        "x.csv",
        "--database-url",
        "postgres://h/db",
    ]))
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    for args in [
        &["programs", "list", "--help"][..],
        &["report", "series", "--help"][..],
        &["import", "--help"][..],
        &["export", "--help"][..],
    ] {
        let r = output(bare(args)).await;
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stdout.contains("--server"), "{args:?}: {}", r.stdout);
        for setting in [
            "--listen",
            "--database-url",
            "--pool-size",
            "--tls-cert",
            "Server settings",
        ] {
            assert!(
                !r.stdout.contains(setting),
                "{args:?} lists {setting}: {}",
                r.stdout
            );
        }
    }
    for args in [
        &["--help"][..],
        &["serve", "--help"][..],
        &["migrate", "--help"][..],
        &["keys", "create", "--help"][..],
    ] {
        let r = output(bare(args)).await;
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            r.stdout.contains("--database-url"),
            "{args:?}: {}",
            r.stdout
        );
    }
    // A server setting is parsed after the server's commands too: a bad one is refused.
    for args in [
        &["serve", "--pool-size", "0"][..],
        &["--pool-size", "0", "migrate"][..],
    ] {
        let r = output(bare(args)).await;
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("--pool-size / TRADEWATCH_POOL_SIZE"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

/// The CLI talks to a TLS server (issue 11, item 6): the real server with its own
/// `--tls-cert`, and `--ca-cert` naming that certificate. Without it the certificate is
/// not trusted (exit 3); `--ca-cert` with a plaintext address is a usage error (exit 2).
#[tokio::test]
async fn the_cli_reaches_a_tls_server_with_ca_cert() {
    let db = crate::helpers::create_database().await;
    let dir = std::env::temp_dir().join(format!("tw-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let log = dir.join("server.log");
    let _server = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "off",
        ])
        .args(["--anonymous-read", "true", "--tls-cert"])
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&key_file)
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("tradewatch is serving gRPC")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ca = cert_file.to_str().unwrap();
    let https = format!("https://localhost:{port}");
    for server in [https.as_str(), &format!("localhost:{port}")] {
        let r = output(bare(&[
            "programs",
            "list",
            "--server",
            server,
            "--ca-cert",
            ca,
        ]))
        .await;
        assert_eq!(r.code, 0, "{server}: {}", r.stderr);
        assert!(
            r.stdout.contains("cq-2015-service-trade"),
            "{server}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("Chongqing"), "{server}: {}", r.stdout);
    }
    // Export over TLS too (the same connection code).
    let r = output(bare(&["export", "--server", &https, "--ca-cert", ca])).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("indicator,period,value"),
        "{}",
        r.stdout
    );
    // The self-signed certificate is not among the system's roots.
    let r = output(bare(&["programs", "list", "--server", &https])).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with(&format!("error: cannot connect to {https}: ")),
        "{}",
        r.stderr
    );
    let r = output(bare(&[
        "programs",
        "list",
        "--server",
        &format!("http://localhost:{port}"),
        "--ca-cert",
        ca,
    ]))
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--ca-cert / TRADEWATCH_CA_CERT is for a TLS server"),
        "{}",
        r.stderr
    );
    let r = output(bare(&[
        "programs",
        "list",
        "--server",
        &https,
        "--ca-cert",
        "/nonexistent.pem",
    ]))
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Long imports show a real progress bar on a terminal (issue 11, item 9): percent of
/// the file, rows/s and time left, then a spinner while the server finishes; plain
/// lines when standard error is not a terminal. The terminal is a real pseudo-terminal
/// (`script` from util-linux).
#[tokio::test]
async fn imports_show_a_progress_bar_on_a_terminal_and_plain_lines_otherwise() {
    let mut app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("tw-cli-bar-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // 200 annual indicators x 400 years = 80,000 rows.
    let mut text = String::from("indicator,period,value,status,comment,source\n");
    for i in 0..200 {
        app.create_indicator(&format!("bar-{i:03}")).await;
        for y in 1800..2200 {
            text.push_str(&format!("bar-{i:03},{y},{y}.5,A,,\n"));
        }
    }
    let csv = dir.join("rows.csv");
    std::fs::write(&csv, &text).unwrap();
    let command = format!(
        "{} import {} --server http://{} --key {}",
        env!("CARGO_BIN_EXE_tradewatch"),
        csv.display(),
        app.addr,
        app.admin_key
    );
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qefc", &command, "/dev/null"])
        .env("COLUMNS", "120")
        .env_remove("TRADEWATCH_SERVER")
        .env_remove("TRADEWATCH_KEY")
        .kill_on_drop(true);
    let r = output(cmd).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // What the terminal received (bar frames are redrawn in place).
    let screen = &r.stdout;
    assert!(screen.contains("% sent "), "no percent: {screen:?}");
    assert!(screen.contains(" rows/s, "), "no rate: {screen:?}");
    assert!(screen.contains(" left"), "no time left: {screen:?}");
    assert!(
        screen.contains("imported 80000 rows: 80000 inserted, 0 revised, 0 unchanged"),
        "{screen:?}"
    );

    // Not a terminal: no bar, no control sequences; plain lines.
    let again = dir.join("again.csv");
    std::fs::write(&again, text.replace(".5,A", ".25,A")).unwrap();
    let r = run(&app, &["import", again.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stderr.contains('\r'),
        "{:?}",
        r.stderr
    );
    assert!(r.stderr.contains("sent 80000 rows in "), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("all 80000 rows sent; the server is checking and committing them"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("imported 80000 rows: 0 inserted, 80000 revised, 0 unchanged"),
        "{}",
        r.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// Observations (issue 12): `tradewatch observations get|list|revisions|delete`, and one
// spelling of period and instant flags across the CLI.

/// Imports `rows` (lines after the header `indicator,period,value,status,comment,source`)
/// with `tradewatch import`, as a statistician loads figures, and checks the counts.
async fn import_rows(app: &TestApp, rows: &str, counts: &str) {
    let dir = std::env::temp_dir().join(format!("tw-cli-obs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("figures.csv");
    std::fs::write(
        &csv,
        format!("indicator,period,value,status,comment,source\n{rows}"),
    )
    .unwrap();
    let r = run(app, &["import", csv.to_str().unwrap()]).await;
    r.ok();
    assert!(r.stderr.contains(counts), "{}", r.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

/// Indicator `offshore` (annual) with 2018 21.5, 2019 20.6 and 2020 22.8 (provisional,
/// with a comment and a source), imported through the CLI.
async fn offshore_figures(app: &mut TestApp) {
    app.create_indicator("offshore").await;
    import_rows(
        app,
        "offshore,2018,21.5,A,,\n\
         offshore,2019,20.6,A,,\n\
         offshore,2020,22.8,P,first estimate,Chongqing statistical bulletin 2020\n",
        "imported 3 rows: 3 inserted, 0 revised, 0 unchanged",
    )
    .await;
}

/// An RFC 3339 instant as printed.
fn instant(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Revises 2020 from 22.8 (provisional) to 23.1 (normal, from the yearbook).
async fn revise_2020(app: &TestApp) {
    import_rows(
        app,
        "offshore,2020,23.1,A,,Chongqing statistical yearbook 2021\n",
        "imported 1 rows: 0 inserted, 1 revised, 0 unchanged",
    )
    .await;
}

#[tokio::test]
async fn observations_get_shows_one_figure_named_by_indicator_and_period_or_full_name() {
    let mut app = spawn_app().await;
    offshore_figures(&mut app).await;

    let got = fields(
        run(&app, &["observations", "get", "offshore", "2020"])
            .await
            .ok(),
    );
    assert_eq!(got["name"], "indicators/offshore/observations/2020");
    assert_eq!(got["value"], "22.8");
    assert_eq!(got["status"], "provisional (P)");
    assert_eq!(got["comment"], "first estimate");
    assert_eq!(got["source"], "Chongqing statistical bulletin 2020");
    assert!(got["known_from"].ends_with('Z'), "{got:?}");
    assert!(
        !got.contains_key("known_until"),
        "the published one: {got:?}"
    );
    // The indicator by name, or the observation by its full name: the same answer.
    for args in [
        &["observations", "get", "indicators/offshore", "2020"][..],
        &[
            "observations",
            "get",
            "indicators/offshore/observations/2020",
        ][..],
    ] {
        assert_eq!(fields(run(&app, args).await.ok()), got, "{args:?}");
    }
    let j = json(
        run(&app, &["observations", "get", "offshore", "2019", "--json"])
            .await
            .ok(),
    );
    assert_eq!(j["name"], "indicators/offshore/observations/2019");
    assert_eq!(j["value"], "20.6");
    assert_eq!(j["status"], "STATUS_NORMAL");
    assert_eq!(j["comment"], "", "defaults are printed");
    assert_eq!(j["deleted"], false);

    // A period without a figure: NOT_FOUND, exit 1.
    let r = run(&app, &["observations", "get", "offshore", "2017"]).await;
    assert_eq!(
        r.fails(1),
        "error: NOT_FOUND: indicators/offshore/observations/2017 not found\n"
    );
    assert_eq!(r.stdout, "");
}

#[tokio::test]
async fn observations_list_takes_start_end_and_as_of_and_shows_the_older_value() {
    let mut app = spawn_app().await;
    offshore_figures(&mut app).await;
    let first = fields(
        run(&app, &["observations", "get", "offshore", "2020"])
            .await
            .ok(),
    );
    let t1 = first["known_from"].clone();
    revise_2020(&app).await;

    let rows = |text: &str| -> Vec<Vec<String>> {
        let mut lines = text.lines();
        assert_eq!(
            cells(lines.next().unwrap()),
            [
                "PERIOD",
                "VALUE",
                "STATUS",
                "KNOWN FROM",
                "SOURCE",
                "COMMENT"
            ]
        );
        lines
            .map(|l| cells(l).into_iter().map(str::to_owned).collect())
            .collect()
    };
    // Now: every period in order, 2020 as revised.
    let now = rows(run(&app, &["observations", "list", "offshore"]).await.ok());
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now[0][..3], ["2018", "21.5", "normal (A)"]);
    assert_eq!(now[1][..3], ["2019", "20.6", "normal (A)"]);
    assert_eq!(
        [&now[2][..3], &now[2][4..]].concat(),
        [
            "2020",
            "23.1",
            "normal (A)",
            "Chongqing statistical yearbook 2021"
        ]
    );
    assert_ne!(now[2][3], t1, "the revision is a newer version");

    // --start and --end, both inclusive.
    let range = rows(
        run(
            &app,
            &[
                "observations",
                "list",
                "indicators/offshore",
                "--start",
                "2019",
                "--end",
                "2020",
            ],
        )
        .await
        .ok(),
    );
    assert_eq!(
        range.iter().map(|r| (&*r[0], &*r[1])).collect::<Vec<_>>(),
        [("2019", "20.6"), ("2020", "23.1")]
    );
    let one = rows(
        run(&app, &["observations", "list", "offshore", "--end", "2018"])
            .await
            .ok(),
    );
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0][..2], ["2018", "21.5"]);

    // --as-of the instant 22.8 was published: the older value, with its status,
    // comment and source.
    let then = rows(
        run(&app, &["observations", "list", "offshore", "--as-of", &t1])
            .await
            .ok(),
    );
    assert_eq!(then.len(), 3, "{then:?}");
    assert_eq!(
        then[2],
        [
            "2020",
            "22.8",
            "provisional (P)",
            t1.as_str(),
            "Chongqing statistical bulletin 2020",
            "first estimate"
        ]
    );
    // get --as-of agrees, and says until when it was the published figure.
    let got = fields(
        run(
            &app,
            &["observations", "get", "offshore", "2020", "--as-of", &t1],
        )
        .await
        .ok(),
    );
    assert_eq!(got["value"], "22.8");
    assert_eq!(got["known_from"], t1);
    assert!(instant(&got["known_until"]) > instant(&t1), "{got:?}");
    // Before anything was published: an empty list.
    let none = run(
        &app,
        &[
            "observations",
            "list",
            "offshore",
            "--as-of",
            "2000-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(
        none.ok(),
        "PERIOD  VALUE  STATUS  KNOWN FROM  SOURCE  COMMENT\n"
    );

    // JSON: the whole listing, with the read_time of the answer (the as_of when given).
    let j = json(
        run(
            &app,
            &[
                "observations",
                "list",
                "offshore",
                "--start",
                "2020",
                "--as-of",
                &t1,
                "--json",
            ],
        )
        .await
        .ok(),
    );
    assert_eq!(j["observations"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["observations"][0]["value"], "22.8");
    assert_eq!(j["observations"][0]["status"], "STATUS_PROVISIONAL");
    assert_eq!(j["readTime"], t1.as_str());
    assert_eq!(j["nextPageToken"], "");

    // --limit: the first periods only.
    let two = rows(
        run(&app, &["observations", "list", "offshore", "--limit", "2"])
            .await
            .ok(),
    );
    assert_eq!(
        two.iter().map(|r| (&*r[0], &*r[1])).collect::<Vec<_>>(),
        [("2018", "21.5"), ("2019", "20.6")]
    );
}

#[tokio::test]
async fn observations_revisions_show_every_version_oldest_first() {
    let mut app = spawn_app().await;
    offshore_figures(&mut app).await;
    revise_2020(&app).await;

    let text = run(&app, &["observations", "revisions", "offshore", "2020"]).await;
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        cells(lines[0]),
        [
            "KNOWN FROM",
            "KNOWN UNTIL",
            "CHANGE",
            "VALUE",
            "STATUS",
            "SOURCE",
            "COMMENT"
        ]
    );
    let first = cells(lines[1]);
    let second = cells(lines[2]);
    assert_eq!(
        first[2..],
        [
            "created",
            "22.8",
            "provisional (P)",
            "Chongqing statistical bulletin 2020",
            "first estimate"
        ]
    );
    assert_eq!(
        second[1..],
        [
            "revised",
            "23.1",
            "normal (A)",
            "Chongqing statistical yearbook 2021"
        ]
    );
    // The first was published until the second replaced it; the second still is.
    assert_eq!(first[1], second[0], "{lines:?}");
    assert!(instant(first[0]) < instant(first[1]), "{lines:?}");

    // By full name, as JSON: both versions, in order.
    let j = json(
        run(
            &app,
            &[
                "observations",
                "revisions",
                "indicators/offshore/observations/2020",
                "--json",
            ],
        )
        .await
        .ok(),
    );
    let versions = j["revisions"].as_array().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v["value"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["22.8", "23.1"]
    );
    assert_eq!(versions[0]["knownUntil"], versions[1]["knownFrom"]);
    assert!(versions[1].get("knownUntil").is_none(), "{j}");

    // An observation that never existed has no history.
    let r = run(&app, &["observations", "revisions", "offshore", "2010"]).await;
    assert_eq!(
        r.fails(1),
        "error: NOT_FOUND: indicators/offshore/observations/2010 not found\n"
    );
}

#[tokio::test]
async fn observations_delete_then_get_is_not_found_and_the_history_stays() {
    let mut app = spawn_app().await;
    offshore_figures(&mut app).await;
    let before = fields(
        run(&app, &["observations", "get", "offshore", "2020"])
            .await
            .ok(),
    );

    let r = run(&app, &["observations", "delete", "offshore", "2020"]).await;
    assert_eq!(r.ok(), "deleted indicators/offshore/observations/2020\n");

    let r = run(&app, &["observations", "get", "offshore", "2020"]).await;
    assert_eq!(
        r.fails(1),
        "error: NOT_FOUND: indicators/offshore/observations/2020 not found\n"
    );
    assert_eq!(r.stdout, "");
    // Gone from the list, and the server agrees.
    let list = run(&app, &["observations", "list", "offshore"]).await;
    let periods: Vec<&str> = list.ok().lines().skip(1).map(|l| cells(l)[0]).collect();
    assert_eq!(periods, ["2018", "2019"]);
    let err = app
        .observations
        .get_observation(pb::GetObservationRequest {
            name: "indicators/offshore/observations/2020".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // The history stays: the deletion is the last version, and 22.8 is readable as of
    // before it.
    let text = run(&app, &["observations", "revisions", "offshore", "2020"]).await;
    let lines: Vec<Vec<&str>> = text.ok().lines().skip(1).map(cells).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0][2..4], ["created", "22.8"]);
    assert_eq!(lines[1][1..], ["deleted"], "{lines:?}");
    let then = fields(
        run(
            &app,
            &[
                "observations",
                "get",
                "offshore",
                "2020",
                "--as-of",
                &before["known_from"],
            ],
        )
        .await
        .ok(),
    );
    assert_eq!(then["value"], "22.8");

    // Deleting it again: nothing of that name.
    let r = run(&app, &["observations", "delete", "offshore", "2020"]).await;
    assert_eq!(
        r.fails(1),
        "error: NOT_FOUND: indicators/offshore/observations/2020 not found\n"
    );
    // By full name, with --json: `{}` as the other deletes.
    let r = run(
        &app,
        &[
            "observations",
            "delete",
            "indicators/offshore/observations/2019",
            "--json",
        ],
    )
    .await;
    assert_eq!(json(r.ok()), serde_json::json!({}));
}

#[tokio::test]
async fn malformed_periods_and_instants_name_the_flag_and_exit_2() {
    let mut app = spawn_app().await;
    offshore_figures(&mut app).await;

    let sdmx = "is not a period in SDMX syntax: use 2020, 2020-S1, 2020-Q3 or 2020-M07";
    let cases: &[(&[&str], &str)] = &[
        (
            &["observations", "get", "offshore", "2020-13"],
            "PERIOD: \"2020-13\" is not a period in SDMX syntax",
        ),
        (
            &["observations", "delete", "offshore", "20"],
            "PERIOD: \"20\" ",
        ),
        (
            &[
                "observations",
                "revisions",
                "indicators/offshore/observations/2020-Q5",
            ],
            "PERIOD: \"2020-Q5\" ",
        ),
        (
            &["observations", "list", "offshore", "--start", "2020 Q1"],
            "--start: \"2020 Q1\" ",
        ),
        (
            &["observations", "list", "offshore", "--end", "last year"],
            "--end: \"last year\" ",
        ),
        (
            &["observations", "list", "offshore", "--as-of", "yesterday"],
            "--as-of \"yesterday\" is not an RFC 3339 instant",
        ),
        (
            &["observations", "get", "offshore", "2020", "--as-of", "2020"],
            "--as-of \"2020\" is not an RFC 3339 instant",
        ),
        (
            &["observations", "get", "offshore"],
            "give the PERIOD after \"offshore\", or a full name like \
             indicators/offshore/observations/PERIOD",
        ),
        (
            &["observations", "list", "offshore", "--limit", "0"],
            "--limit",
        ),
        (&["export", "--start", "2020-M00"], "--start: \"2020-M00\" "),
        (&["export", "--end-period", "soon"], "--end: \"soon\" "),
        (
            &[
                "report",
                "series",
                "--indicator",
                "offshore",
                "--end",
                "2O20",
            ],
            "--end: \"2O20\" ",
        ),
        (
            &[
                "report",
                "breakdown",
                "--period",
                "2020-S3",
                "--group-by",
                "flow",
            ],
            "--period: \"2020-S3\" ",
        ),
    ];
    for (args, named) in cases {
        let r = run(&app, args).await;
        let err = r.fails(2);
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if named.contains("PERIOD:") || named.contains("--start:") || named.contains("--end:") {
            assert!(err.contains(sdmx), "{args:?}: {err}");
        }
        assert_eq!(r.stdout, "", "{args:?}");
    }

    // A well-formed period of another frequency is the server's to refuse: exit 1,
    // the request field named.
    let r = run(
        &app,
        &["observations", "list", "offshore", "--start", "2020-Q1"],
    )
    .await;
    let err = r.fails(1);
    assert!(
        err.starts_with("error: INVALID_ARGUMENT: invalid request\n  start_period: "),
        "{err}"
    );
    assert!(err.contains("not annual"), "{err}");
}

#[tokio::test]
async fn export_takes_start_and_end_and_still_the_old_spelling() {
    let mut app = spawn_app().await;
    offshore_figures(&mut app).await;

    let expected = "indicator,period,value,status,comment,source\noffshore,2019,20.6,A,,\n";
    for args in [
        &[
            "export",
            "--indicator",
            "offshore",
            "--start",
            "2019",
            "--end",
            "2019",
        ][..],
        &[
            "export",
            "--indicator",
            "offshore",
            "--start-period",
            "2019",
            "--end-period",
            "2019",
        ][..],
    ] {
        let r = run(&app, args).await;
        let out = r.ok();
        assert_eq!(out, expected, "{args:?}");
    }

    // The help of every command with periods shows one spelling; the old one is hidden.
    for args in [
        &["export", "--help"][..],
        &["report", "series", "--help"][..],
        &["observations", "list", "--help"][..],
    ] {
        let r = output(bare(args)).await;
        let help = r.ok();
        assert!(help.contains("--start <PERIOD>"), "{args:?}: {help}");
        assert!(help.contains("--end <PERIOD>"), "{args:?}: {help}");
        assert!(!help.contains("--start-period"), "{args:?}: {help}");
        assert!(!help.contains("--end-period"), "{args:?}: {help}");
    }
    for args in [
        &["export", "--help"][..],
        &["report", "--help"][..],
        &["observations", "get", "--help"][..],
        &["observations", "list", "--help"][..],
    ] {
        let r = output(bare(args)).await;
        assert!(
            r.ok().contains("--as-of <INSTANT>"),
            "{args:?}: {}",
            r.stdout
        );
    }
    let r = output(bare(&["observations", "--help"])).await;
    for verb in ["get", "list", "revisions", "delete"] {
        assert!(r.ok().contains(verb), "{}", r.stdout);
    }
}

#[tokio::test]
async fn report_vintages_and_vintage_list() {
    let mut app = spawn_app().await;
    chongqing_offshore(&mut app).await;
    // The 2020 figure revised from 22.8 down to 22.6.
    let revised = app
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: vec![pb::Observation {
                name: "indicators/offshore/observations/2020".into(),
                value: "22.6".into(),
                status: pb::observation::Status::Normal as i32,
                ..Default::default()
            }],
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    let t2 = revised.observations[0].known_from.unwrap();

    let list = run(&app, &["report", "vintage-list", "--indicator", "offshore"]).await;
    let text = list.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("indicators/offshore: 2 vintages, as of "),
        "{text}"
    );
    assert_eq!(
        cells(lines[1]),
        vec!["TIME", "VERSIONS", "CHANGED", "DELETED", "PERIODS"]
    );
    assert_eq!(&cells(lines[2])[1..], &["3", "3", "0", "2018, 2019, 2020"]);
    assert_eq!(&cells(lines[3])[1..], &["1", "1", "0", "2020"]);
    // The listed instant, to the microsecond, is the revision's.
    let second = chrono::DateTime::parse_from_rfc3339(cells(lines[3])[0]).unwrap();
    assert_eq!(
        (second.timestamp(), second.timestamp_subsec_nanos() as i32),
        (t2.seconds, t2.nanos)
    );
    let first = cells(lines[2])[0].to_owned();

    // 2020: 22.8 first, 22.6 latest, revision −0.2.
    let v = run(&app, &["report", "vintages", "--indicator", "offshore"]).await;
    let text = v.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("indicators/offshore: 10^8 USD, annual, level, 2 vintages, as of "),
        "{text}"
    );
    let row = cells(lines[4]);
    assert_eq!(
        (row[0], row[1], row[2], row[3], row[5], row[6], row[7]),
        (
            "2020",
            "22.8",
            first.as_str(),
            "22.6",
            "-0.2",
            "1/1",
            "revised"
        )
    );
    assert_eq!(cells(lines[2])[5], "0");

    // Percent change: 22.8 / 20.6 − 1 = 10.68 % first, 22.6 / 20.6 − 1 = 9.71 % latest:
    // −0.97 percentage points.
    let g = run(
        &app,
        &[
            "report",
            "vintages",
            "--indicator",
            "offshore",
            "--transform",
            "percent-change",
            "--start",
            "2020",
            "--json",
        ],
    )
    .await;
    let j = json(g.ok());
    let p = &j["points"][0];
    assert_eq!(p["period"], "2020");
    assert!((p["firstReleaseRate"].as_f64().unwrap() - 10.679_611_650_485).abs() < 1e-6);
    assert!((p["latestRate"].as_f64().unwrap() - 9.708_737_864_078).abs() < 1e-6);
    assert!((p["revisionRate"].as_f64().unwrap() + 0.970_873_786_408).abs() < 1e-6);
    assert_eq!(j["vintageCount"], 2);

    // The first vintage's instant as --as-of: the series as first released.
    let then = run(
        &app,
        &[
            "report",
            "series",
            "--indicator",
            "offshore",
            "--as-of",
            &first,
        ],
    )
    .await;
    assert!(then.ok().ends_with(
        "PERIOD  VALUE  PARTS\n\
         2018     21.5    1/1\n\
         2019     20.6    1/1\n\
         2020     22.8    1/1\n"
    ));
    // --limit and --json.
    let one = json(
        run(
            &app,
            &[
                "report",
                "vintage-list",
                "--indicator",
                "offshore",
                "--limit",
                "1",
                "--json",
            ],
        )
        .await
        .ok(),
    );
    assert_eq!(one["vintages"].as_array().unwrap().len(), 1);
    assert_eq!(one["vintages"][0]["periodsChanged"], 3);
}

#[tokio::test]
async fn report_series_in_another_currency_shows_the_rate_of_each_period() {
    let mut app = spawn_app().await;
    chongqing_offshore(&mut app).await;
    run(
        &app,
        &[
            "indicators",
            "create",
            "cny-usd",
            "--title",
            "CNY per USD, annual average",
            "--unit",
            "CNY/USD",
            "--frequency",
            "annual",
            "--flow",
            "none",
            "--region",
            "CN",
            "--aggregation",
            "average",
            "--direction",
            "higher",
        ],
    )
    .await
    .ok();
    app.observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            observations: [("2019", "7"), ("2020", "6.4")]
                .iter()
                .map(|(period, value)| pb::Observation {
                    name: format!("indicators/cny-usd/observations/{period}"),
                    value: value.to_string(),
                    status: pb::observation::Status::Normal as i32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Dollars into yuan: 20.6 × 7 = 144.2, 22.8 × 6.4 = 145.92; 2018 has no rate.
    let text = run(
        &app,
        &[
            "report",
            "series",
            "--indicator",
            "offshore",
            "--currency",
            "CNY",
            "--exchange-rate",
            "cny-usd",
        ],
    )
    .await
    .ok()
    .to_owned();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("indicators/offshore: 10^8 CNY, annual, level, as of "),
        "{text}"
    );
    assert_eq!(
        lines.collect::<Vec<_>>().join("\n"),
        "converted from USD\n\
         PERIOD   VALUE  PARTS  EXCHANGE RATE\n\
         2018              1/1                 no rate\n\
         2019     144.2    1/1  7 (2019)\n\
         2020    145.92    1/1  6.4 (2020)"
    );
    // Not for the scorecard: refused before any call.
    let err = run(
        &app,
        &[
            "report",
            "scorecard",
            "--program",
            "cq",
            "--currency",
            "CNY",
            "--exchange-rate",
            "cny-usd",
        ],
    )
    .await;
    assert!(err.fails(2).contains("--currency"), "{}", err.stderr);
}
