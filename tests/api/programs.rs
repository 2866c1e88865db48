//! ProgramService: programmes, initiatives and targets.

use prost_types::FieldMask;
use tonic::Code;
use tradewatch::proto::v1 as pb;

use crate::helpers::{Case, assert_invalid, level_target, program, reason, spawn_app};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[tokio::test]
async fn program_crud_round_trip() {
    let mut app = spawn_app().await;
    let created = app.create_program("cq-2015").await;
    assert_eq!(created.name, "programs/cq-2015");
    assert_eq!(created.title, "Programme cq-2015");
    assert_eq!(created.adoption_date, "2015-05-25");
    assert_eq!(created.summary, "A summary.\nSecond line.");
    assert!(!created.etag.is_empty());
    assert_eq!(created.create_time, created.update_time);

    let got = app
        .programs
        .get_program(pb::GetProgramRequest {
            name: "programs/cq-2015".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    // Explicit mask: only the title changes, even though the request carries others.
    let updated = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/cq-2015".into(),
                title: "Renamed".into(),
                summary: "ignored: not in the mask".into(),
                ..Default::default()
            }),
            update_mask: mask(&["title"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.title, "Renamed");
    assert_eq!(updated.summary, "A summary.\nSecond line.");
    assert_eq!(updated.jurisdiction, "CN-CQ");
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);
    assert!(
        updated.update_time.as_ref().unwrap().seconds
            >= created.update_time.as_ref().unwrap().seconds
    );

    // No mask: every field set in the request (end_year), nothing else.
    let updated = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/cq-2015".into(),
                end_year: 2025,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.title.as_str(), updated.start_year, updated.end_year),
        ("Renamed", 2015, 2025)
    );

    // `*` replaces every mutable field: fields left out are cleared, and required ones
    // left out are refused.
    let err = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/cq-2015".into(),
                title: "Only a title".into(),
                ..Default::default()
            }),
            update_mask: mask(&["*"]),
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "program.jurisdiction"), "REQUIRED");
    assert_invalid(&err, "program.start_year");
    let mut replacement = program("Replaced");
    replacement.name = "programs/cq-2015".into();
    replacement.summary = String::new();
    let replaced = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(replacement),
            update_mask: mask(&["*"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replaced.title, "Replaced");
    assert_eq!(replaced.summary, "");
    assert_eq!(replaced.end_year, 2020);

    app.programs
        .delete_program(pb::DeleteProgramRequest {
            name: "programs/cq-2015".into(),
            etag: replaced.etag.clone(),
            force: false,
        })
        .await
        .unwrap();
    let err = app
        .programs
        .get_program(pb::GetProgramRequest {
            name: "programs/cq-2015".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "NOT_FOUND");
    let err = app
        .programs
        .delete_program(pb::DeleteProgramRequest {
            name: "programs/cq-2015".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn duplicate_ids_and_missing_resources() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    let err = app
        .programs
        .create_program(pb::CreateProgramRequest {
            request_id: String::new(),
            program: Some(program("again")),
            program_id: "p".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("programs/p"), "{}", err.message());

    // Children of a programme that does not exist: NOT_FOUND naming the parent.
    let err = app.create_initiative("nope", "i", None).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("programs/nope"));
    let err = app
        .programs
        .list_targets(pb::ListTargetsRequest {
            parent: "programs/nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // An empty programme lists nothing, successfully.
    let empty = app
        .programs
        .list_targets(pb::ListTargetsRequest {
            parent: "programs/p".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.targets.is_empty() && empty.next_page_token.is_empty());

    app.create_initiative("p", "i", None).await.unwrap();
    let err = app.create_initiative("p", "i", None).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = app
        .programs
        .get_initiative(pb::GetInitiativeRequest {
            name: "programs/p/initiatives/zzz".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn etags_guard_updates_and_deletes() {
    let mut app = spawn_app().await;
    let created = app.create_program("p").await;
    let first = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/p".into(),
                title: "First writer".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    // A second writer still holding the original etag loses.
    let err = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/p".into(),
                title: "Second writer".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "ETAG_MISMATCH");
    let err = app
        .programs
        .delete_program(pb::DeleteProgramRequest {
            name: "programs/p".into(),
            etag: created.etag.clone(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let still = app
        .programs
        .get_program(pb::GetProgramRequest {
            name: "programs/p".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.title, "First writer");
    assert_eq!(still.etag, first.etag);

    // An update that changes nothing keeps the etag.
    let same = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/p".into(),
                title: "First writer".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.etag, first.etag);
}

#[tokio::test]
async fn listing_pages_through_every_programme_once() {
    let mut app = spawn_app().await;
    for i in 0..7 {
        app.create_program(&format!("p{i}")).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let resp = app
            .programs
            .list_programs(pb::ListProgramsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(resp.programs.len() <= 3);
        names.extend(resp.programs.into_iter().map(|p| p.name));
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    assert_eq!(pages, 3); // 3 + 3 + 1
    let expected: Vec<String> = (0..7).map(|i| format!("programs/p{i}")).collect();
    assert_eq!(names, expected);

    // Default page size returns all seven at once.
    let all = app
        .programs
        .list_programs(pb::ListProgramsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.programs.len(), 7);
    assert!(all.next_page_token.is_empty());

    let first = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_size: 2,
            page_token: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let token = first.next_page_token;
    // The token belongs to ListPrograms: replayed on another list, it is refused.
    app.create_initiative("p0", "a", None).await.unwrap();
    let err = app
        .programs
        .list_initiatives(pb::ListInitiativesRequest {
            parent: "programs/p0".into(),
            page_size: 2,
            page_token: token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "page_token"), "INVALID_PAGE_TOKEN");
    // An altered token is refused.
    let mut altered = token.into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let err = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_size: 2,
            page_token: String::from_utf8(altered).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "page_token");
    let err = app
        .programs
        .list_programs(pb::ListProgramsRequest {
            page_size: -1,
            page_token: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "page_size"), "NEGATIVE_PAGE_SIZE");
}

#[tokio::test]
async fn every_invalid_programme_field_is_named() {
    let mut app = spawn_app().await;
    let cases: Vec<Case<pb::CreateProgramRequest>> = vec![
        (
            "program_id",
            Box::new(|r| r.program_id = "Bad_Id".into()),
            "INVALID_ID",
        ),
        (
            "program_id",
            Box::new(|r| r.program_id = String::new()),
            "REQUIRED",
        ),
        ("program", Box::new(|r| r.program = None), "REQUIRED"),
        (
            "program.title",
            Box::new(|r| r.program.as_mut().unwrap().title = "  ".into()),
            "REQUIRED",
        ),
        (
            "program.title",
            Box::new(|r| r.program.as_mut().unwrap().title = "x".repeat(501)),
            "TOO_LONG",
        ),
        (
            "program.jurisdiction",
            Box::new(|r| r.program.as_mut().unwrap().jurisdiction = "CN-XX".into()),
            "UNKNOWN_SUBDIVISION",
        ),
        (
            "program.jurisdiction",
            Box::new(|r| r.program.as_mut().unwrap().jurisdiction = "cn-cq".into()),
            "NOT_UPPERCASE",
        ),
        (
            "program.jurisdiction",
            Box::new(|r| r.program.as_mut().unwrap().jurisdiction = "ZZ".into()),
            "UNKNOWN_COUNTRY",
        ),
        (
            "program.start_year",
            Box::new(|r| r.program.as_mut().unwrap().start_year = 1700),
            "OUT_OF_RANGE",
        ),
        (
            "program.end_year",
            Box::new(|r| r.program.as_mut().unwrap().end_year = 2014),
            "BEFORE_START",
        ),
        (
            "program.adoption_date",
            Box::new(|r| r.program.as_mut().unwrap().adoption_date = "2015-02-30".into()),
            "INVALID_DATE",
        ),
        (
            "program.source_uri",
            Box::new(|r| r.program.as_mut().unwrap().source_uri = "ftp://x".into()),
            "INVALID_URI",
        ),
        (
            "program.issuing_body",
            Box::new(|r| r.program.as_mut().unwrap().issuing_body = "a\u{0}b".into()),
            "CONTROL_CHARACTERS",
        ),
    ];
    for (field, change, want_reason) in cases {
        let mut req = pb::CreateProgramRequest {
            request_id: String::new(),
            program: Some(program("Valid")),
            program_id: "valid".into(),
        };
        change(&mut req);
        let err = app.programs.create_program(req).await.unwrap_err();
        assert_eq!(assert_invalid(&err, field), want_reason, "{field}");
    }
    // Several problems are reported together.
    let mut p = program("");
    p.jurisdiction = "XX-1".into();
    p.start_year = 0;
    let err = app
        .programs
        .create_program(pb::CreateProgramRequest {
            request_id: String::new(),
            program: Some(p),
            program_id: "-bad".into(),
        })
        .await
        .unwrap_err();
    for field in [
        "program_id",
        "program.title",
        "program.jurisdiction",
        "program.start_year",
    ] {
        assert_invalid(&err, field);
    }
    // Nothing was written by any of the refused calls.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM programs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    // Bad names on get/delete.
    let err = app
        .programs
        .get_program(pb::GetProgramRequest {
            name: "programs/a/b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&err, "name"), "INVALID_NAME");
}

#[tokio::test]
async fn update_masks_name_only_known_mutable_fields() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    let err = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/p".into(),
                ..Default::default()
            }),
            update_mask: mask(&["title", "colour", "create_time"]),
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "update_mask.paths[1]"),
        "UNKNOWN_FIELD"
    );
    assert_eq!(
        assert_invalid(&err, "update_mask.paths[2]"),
        "OUTPUT_ONLY_FIELD"
    );
    let err = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/missing".into(),
                title: "x".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .programs
        .update_program(pb::UpdateProgramRequest {
            program: None,
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "program");
}

#[tokio::test]
async fn deleting_a_programme_with_children_needs_force() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    app.create_indicator("ind").await;
    app.create_initiative("p", "area", None).await.unwrap();
    app.create_target("p", "t", level_target("indicators/ind"))
        .await
        .unwrap();
    let err = app
        .programs
        .delete_program(pb::DeleteProgramRequest {
            name: "programs/p".into(),
            etag: String::new(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "HAS_DEPENDANTS");
    assert!(
        err.message().contains("programs/p/initiatives/area"),
        "{}",
        err.message()
    );
    app.programs
        .delete_program(pb::DeleteProgramRequest {
            name: "programs/p".into(),
            etag: String::new(),
            force: true,
        })
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM initiatives) + (SELECT count(*) FROM targets)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
    // The indicator is not a child of the programme and stays.
    app.indicators
        .get_indicator(pb::GetIndicatorRequest {
            name: "indicators/ind".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn initiative_trees_have_no_cycles_and_a_depth_limit() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    app.create_program("q").await;
    app.create_initiative("p", "a", None).await.unwrap();
    app.create_initiative("p", "b", Some("a")).await.unwrap();
    app.create_initiative("p", "c", Some("b")).await.unwrap();
    app.create_initiative("q", "other", None).await.unwrap();

    // a -> c would close the loop a > b > c > a.
    let err = app
        .programs
        .update_initiative(pb::UpdateInitiativeRequest {
            initiative: Some(pb::Initiative {
                name: "programs/p/initiatives/a".into(),
                parent_initiative: "programs/p/initiatives/c".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "initiative.parent_initiative"),
        "CYCLE"
    );
    // Its own parent.
    let err = app
        .programs
        .update_initiative(pb::UpdateInitiativeRequest {
            initiative: Some(pb::Initiative {
                name: "programs/p/initiatives/b".into(),
                parent_initiative: "programs/p/initiatives/b".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "initiative.parent_initiative"),
        "CYCLE"
    );
    // A parent in another programme, or missing.
    let mut i = crate::helpers::initiative("x");
    i.parent_initiative = "programs/q/initiatives/other".into();
    let err = app
        .programs
        .create_initiative(pb::CreateInitiativeRequest {
            request_id: String::new(),
            parent: "programs/p".into(),
            initiative: Some(i),
            initiative_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "initiative.parent_initiative"),
        "OTHER_PROGRAM"
    );
    let err = app
        .create_initiative("p", "x", Some("ghost"))
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "initiative.parent_initiative"),
        "NOT_FOUND"
    );

    // Moving a subtree is fine when it stays acyclic: c becomes a root.
    let moved = app
        .programs
        .update_initiative(pb::UpdateInitiativeRequest {
            initiative: Some(pb::Initiative {
                name: "programs/p/initiatives/c".into(),
                ..Default::default()
            }),
            update_mask: mask(&["parent_initiative"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.parent_initiative, "");

    // Depth: a chain of 16 levels is accepted, a 17th is not.
    app.create_initiative("q", "d1", None).await.unwrap();
    for level in 2..=16 {
        app.create_initiative("q", &format!("d{level}"), Some(&format!("d{}", level - 1)))
            .await
            .unwrap();
    }
    let err = app
        .create_initiative("q", "d17", Some("d16"))
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "initiative.parent_initiative"),
        "TOO_DEEP"
    );
    // Hanging the 16-level chain under another node also makes it too deep.
    let err = app
        .programs
        .update_initiative(pb::UpdateInitiativeRequest {
            initiative: Some(pb::Initiative {
                name: "programs/q/initiatives/d1".into(),
                parent_initiative: "programs/q/initiatives/other".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        assert_invalid(&err, "initiative.parent_initiative"),
        "TOO_DEEP"
    );

    // The database refuses a cycle on its own too (second line of defence).
    let direct = sqlx::query(
        "UPDATE initiatives SET parent_initiative_id = 'b' WHERE program_id = 'p' AND initiative_id = 'a'",
    )
    .execute(&app.pool)
    .await
    .unwrap_err();
    assert!(direct.to_string().contains("own ancestor"), "{direct}");
}

#[tokio::test]
async fn initiative_fields_round_trip_and_are_validated() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    app.create_indicator("i1").await;
    app.create_indicator("i2").await;
    let created = app
        .programs
        .create_initiative(pb::CreateInitiativeRequest {
            request_id: String::new(),
            parent: "programs/p".into(),
            initiative_id: "offshore".into(),
            initiative: Some(pb::Initiative {
                title: "Develop offshore service outsourcing".into(),
                description: "Demonstration city".into(),
                lead_agency: "Commerce Commission".into(),
                state: pb::initiative::State::Planned as i32,
                start_date: "2015-06-01".into(),
                end_date: "2020-12-31".into(),
                tags: vec!["outsourcing".into(), "ito".into()],
                indicators: vec!["indicators/i2".into(), "indicators/i1".into()],
                position: 7,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "programs/p/initiatives/offshore");
    assert_eq!(
        created.indicators,
        vec!["indicators/i2", "indicators/i1"],
        "order kept"
    );
    assert_eq!(created.tags, vec!["outsourcing", "ito"]);
    assert_eq!(
        (created.start_date.as_str(), created.end_date.as_str()),
        ("2015-06-01", "2020-12-31")
    );
    assert_eq!(created.position, 7);

    // Replace the indicator list and the state.
    let updated = app
        .programs
        .update_initiative(pb::UpdateInitiativeRequest {
            initiative: Some(pb::Initiative {
                name: created.name.clone(),
                state: pb::initiative::State::Completed as i32,
                indicators: vec!["indicators/i1".into()],
                ..Default::default()
            }),
            update_mask: mask(&["state", "indicators"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.indicators, vec!["indicators/i1"]);
    assert_eq!(updated.state, pb::initiative::State::Completed as i32);
    assert_eq!(updated.tags, created.tags);

    let bad: Vec<(&str, pb::Initiative, &str)> = vec![
        (
            "initiative.state",
            pb::Initiative {
                title: "t".into(),
                ..Default::default()
            },
            "REQUIRED",
        ),
        (
            "initiative.state",
            pb::Initiative {
                title: "t".into(),
                state: 42,
                ..Default::default()
            },
            "INVALID_ENUM",
        ),
        (
            "initiative.end_date",
            pb::Initiative {
                title: "t".into(),
                state: 1,
                start_date: "2020-01-02".into(),
                end_date: "2020-01-01".into(),
                ..Default::default()
            },
            "BEFORE_START",
        ),
        (
            "initiative.tags[1]",
            pb::Initiative {
                title: "t".into(),
                state: 1,
                tags: vec!["a".into(), "Bad Tag".into()],
                ..Default::default()
            },
            "INVALID_TAG",
        ),
        (
            "initiative.tags[1]",
            pb::Initiative {
                title: "t".into(),
                state: 1,
                tags: vec!["a".into(), "a".into()],
                ..Default::default()
            },
            "DUPLICATE",
        ),
        (
            "initiative.indicators[1]",
            pb::Initiative {
                title: "t".into(),
                state: 1,
                indicators: vec!["indicators/i1".into(), "indicators/ghost".into()],
                ..Default::default()
            },
            "NOT_FOUND",
        ),
        (
            "initiative.indicators[0]",
            pb::Initiative {
                title: "t".into(),
                state: 1,
                indicators: vec!["ind/i1".into()],
                ..Default::default()
            },
            "INVALID_NAME",
        ),
        (
            "initiative.position",
            pb::Initiative {
                title: "t".into(),
                state: 1,
                position: -1,
                ..Default::default()
            },
            "OUT_OF_RANGE",
        ),
        (
            "initiative.parent_initiative",
            pb::Initiative {
                title: "t".into(),
                state: 1,
                parent_initiative: "programs/p".into(),
                ..Default::default()
            },
            "INVALID_NAME",
        ),
    ];
    for (field, initiative, want) in bad {
        let err = app
            .programs
            .create_initiative(pb::CreateInitiativeRequest {
                request_id: String::new(),
                parent: "programs/p".into(),
                initiative: Some(initiative),
                initiative_id: "bad".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(assert_invalid(&err, field), want, "{field}");
    }
    let err = app
        .programs
        .create_initiative(pb::CreateInitiativeRequest {
            request_id: String::new(),
            parent: "nope/p".into(),
            initiative: Some(crate::helpers::initiative("t")),
            initiative_id: "ok".into(),
        })
        .await
        .unwrap_err();
    assert_invalid(&err, "parent");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM initiatives")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn deleting_an_initiative_with_children_needs_force_and_detaches_targets() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    app.create_indicator("ind").await;
    app.create_initiative("p", "area", None).await.unwrap();
    app.create_initiative("p", "measure", Some("area"))
        .await
        .unwrap();
    app.create_initiative("p", "sub-measure", Some("measure"))
        .await
        .unwrap();
    app.create_initiative("p", "other", None).await.unwrap();
    let mut t = level_target("indicators/ind");
    t.initiative = "programs/p/initiatives/measure".into();
    app.create_target("p", "t", t).await.unwrap();

    let err = app
        .programs
        .delete_initiative(pb::DeleteInitiativeRequest {
            name: "programs/p/initiatives/area".into(),
            etag: String::new(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let details = tonic_types::StatusExt::get_error_details(&err);
    let subjects: Vec<String> = details
        .precondition_failure()
        .unwrap()
        .violations
        .iter()
        .map(|v| v.subject.clone())
        .collect();
    assert_eq!(
        subjects,
        vec![
            "programs/p/initiatives/measure",
            "programs/p/initiatives/sub-measure",
            "programs/p/targets/t"
        ]
    );

    app.programs
        .delete_initiative(pb::DeleteInitiativeRequest {
            name: "programs/p/initiatives/area".into(),
            etag: String::new(),
            force: true,
        })
        .await
        .unwrap();
    let left: Vec<String> =
        sqlx::query_scalar("SELECT initiative_id::text FROM initiatives ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(left, vec!["other"]);
    let t = app
        .programs
        .get_target(pb::GetTargetRequest {
            name: "programs/p/targets/t".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.initiative, "", "the target stays, detached");
    // A leaf goes without force.
    app.programs
        .delete_initiative(pb::DeleteInitiativeRequest {
            name: "programs/p/initiatives/other".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn target_crud_and_validation() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    app.create_indicator("annual").await;
    let mut monthly = crate::helpers::indicator("Monthly");
    monthly.frequency = pb::Frequency::Monthly as i32;
    app.indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(monthly),
            indicator_id: "monthly".into(),
        })
        .await
        .unwrap();
    app.create_initiative("p", "area", None).await.unwrap();

    let mut t = level_target("indicators/annual");
    t.initiative = "programs/p/initiatives/area".into();
    t.baseline_value = "10.50".into();
    t.baseline_period = "2015".into();
    let created = app.create_target("p", "t", t).await.unwrap();
    assert_eq!(created.name, "programs/p/targets/t");
    assert_eq!(
        created.baseline_value, "10.50",
        "published decimals are kept"
    );
    assert_eq!(created.initiative, "programs/p/initiatives/area");

    // A decimal with an exponent is stored exactly, in plain notation.
    let updated = app
        .programs
        .update_target(pb::UpdateTargetRequest {
            target: Some(pb::Target {
                name: created.name.clone(),
                target_value: "3.05e1".into(),
                ..Default::default()
            }),
            update_mask: mask(&["target_value"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.target_value, "30.5");
    assert_eq!(updated.title, created.title);
    let stored: String = sqlx::query_scalar("SELECT target_value::text FROM targets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, "30.5");

    // A growth-rate target on the monthly indicator with annual periods is fine.
    let growth = pb::Target {
        title: "Grow 10 % a year".into(),
        indicator: "indicators/monthly".into(),
        kind: pb::target::Kind::GrowthRate as i32,
        target_value: "10".into(),
        target_period: "2020".into(),
        baseline_period: "2015".into(),
        direction: pb::Direction::HigherIsBetter as i32,
        ..Default::default()
    };
    app.create_target("p", "growth", growth.clone())
        .await
        .unwrap();

    let cases: Vec<Case<pb::Target>> = vec![
        (
            "target.indicator",
            Box::new(|t| t.indicator = "indicators/ghost".into()),
            "NOT_FOUND",
        ),
        (
            "target.indicator",
            Box::new(|t| t.indicator = String::new()),
            "REQUIRED",
        ),
        (
            "target.initiative",
            Box::new(|t| t.initiative = "programs/p/initiatives/ghost".into()),
            "NOT_FOUND",
        ),
        (
            "target.initiative",
            Box::new(|t| t.initiative = "programs/other/initiatives/x".into()),
            "OTHER_PROGRAM",
        ),
        (
            "target.target_period",
            Box::new(|t| t.target_period = "2020-M07".into()),
            "PERIOD_FINER_THAN_INDICATOR",
        ),
        (
            "target.target_period",
            Box::new(|t| t.target_period = "2020-Q5".into()),
            "INVALID_PERIOD",
        ),
        (
            "target.target_value",
            Box::new(|t| t.target_value = "1,000".into()),
            "INVALID_DECIMAL",
        ),
        (
            "target.target_value",
            Box::new(|t| t.target_value = "NaN".into()),
            "INVALID_DECIMAL",
        ),
        (
            "target.target_value",
            Box::new(|t| t.target_value = "9".repeat(5000)),
            "INVALID_DECIMAL",
        ),
        (
            "target.target_value",
            Box::new(|t| t.target_value = String::new()),
            "REQUIRED",
        ),
        (
            "target.unit_multiplier",
            Box::new(|t| t.unit_multiplier = 16),
            "OUT_OF_RANGE",
        ),
        ("target.kind", Box::new(|t| t.kind = 0), "REQUIRED"),
        (
            "target.direction",
            Box::new(|t| t.direction = 7),
            "INVALID_ENUM",
        ),
        (
            "target.baseline_period",
            Box::new(|t| {
                t.baseline_value = "5".into();
            }),
            "REQUIRED",
        ),
        (
            "target.baseline_period",
            Box::new(|t| {
                t.baseline_period = "2021".into();
            }),
            "NOT_BEFORE_TARGET",
        ),
        (
            "target.baseline_period",
            Box::new(|t| {
                t.baseline_period = "2015-Q1".into();
            }),
            "FREQUENCY_MISMATCH",
        ),
        (
            "target.target_value",
            Box::new(|t| {
                t.baseline_value = "40".into();
                t.baseline_period = "2015".into();
            }),
            "CONTRADICTS_DIRECTION",
        ),
        (
            "target.baseline_period",
            Box::new(|t| {
                t.kind = pb::target::Kind::GrowthRate as i32;
                t.unit_multiplier = 0;
            }),
            "REQUIRED",
        ),
        (
            "target.unit_multiplier",
            Box::new(|t| {
                t.kind = pb::target::Kind::GrowthRate as i32;
                t.baseline_period = "2015".into();
            }),
            "NOT_APPLICABLE",
        ),
    ];
    for (field, change, want) in cases {
        let mut t = level_target("indicators/annual");
        change(&mut t);
        let err = app.create_target("p", "bad", t).await.unwrap_err();
        assert_eq!(assert_invalid(&err, field), want, "{field}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM targets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);

    // Paging through targets, then deleting one with a stale etag and then properly.
    let page = app
        .programs
        .list_targets(pb::ListTargetsRequest {
            parent: "programs/p".into(),
            page_size: 1,
            page_token: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.targets[0].name, "programs/p/targets/growth");
    let page2 = app
        .programs
        .list_targets(pb::ListTargetsRequest {
            parent: "programs/p".into(),
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.targets[0].name, "programs/p/targets/t");
    assert!(page2.next_page_token.is_empty());

    let err = app
        .programs
        .delete_target(pb::DeleteTargetRequest {
            name: "programs/p/targets/t".into(),
            etag: created.etag.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    app.programs
        .delete_target(pb::DeleteTargetRequest {
            name: "programs/p/targets/t".into(),
            etag: updated.etag.clone(),
        })
        .await
        .unwrap();
}
