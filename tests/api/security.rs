//! API keys and roles, the audit log, request ids (idempotency and x-request-id),
//! deadlines, the concurrency limit, metrics and TLS.

use std::time::{Duration, Instant};

use sha2::Digest as _;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tradewatch::domain::access::Role;
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::admin_service_client::AdminServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;
use tradewatch::proto::v1::program_service_client::ProgramServiceClient;
use tradewatch::proto::v1::reporting_service_client::ReportingServiceClient;

use crate::helpers::{
    assert_invalid, authed, count, obs, program, raw_channel, reason, spawn_app, spawn_app_with,
    test_options,
};

fn get_program(name: &str) -> pb::GetProgramRequest {
    pb::GetProgramRequest { name: name.into() }
}

fn create_program_request(id: &str, title: &str, request_id: &str) -> pb::CreateProgramRequest {
    pb::CreateProgramRequest {
        program: Some(program(title)),
        program_id: id.into(),
        request_id: request_id.into(),
    }
}

/// A request carrying `x-request-id: id`.
fn with_request_id<T>(message: T, id: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("x-request-id", MetadataValue::try_from(id).unwrap());
    r
}

#[tokio::test]
async fn calls_without_a_valid_key_are_unauthenticated_and_roles_are_checked_before_existence() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    let before = count(&app.pool, "SELECT count(*) FROM programs").await;

    // No key: reads and writes are refused (anonymous reads are off by default).
    let mut anonymous = ProgramServiceClient::new(raw_channel(app.addr).await);
    let e = anonymous
        .get_program(get_program("programs/p"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("authorization: Bearer"), "{e:?}");
    let e = anonymous
        .create_program(create_program_request("q", "Q", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // A malformed key, a well-formed unknown key, another scheme: all UNAUTHENTICATED.
    for secret in [
        "not-a-key",
        "tw_abcdefghijkl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let mut c = ProgramServiceClient::new(authed(raw_channel(app.addr).await, secret));
        let e = c.get_program(get_program("programs/p")).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{secret}: {e:?}");
    }
    let mut basic = tonic::Request::new(get_program("programs/p"));
    basic.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Basic {}", app.admin_key)).unwrap(),
    );
    let e = anonymous.get_program(basic).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // A viewer reads, but may not write — not even to a resource that does not exist
    // (PERMISSION_DENIED, not NOT_FOUND: the role is checked first).
    let mut viewer = ProgramServiceClient::new(app.channel_as(Role::Viewer).await);
    let p = viewer
        .get_program(get_program("programs/p"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.name, "programs/p");
    let e = viewer
        .delete_program(pb::DeleteProgramRequest {
            name: "programs/does-not-exist".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("editor role"), "{e:?}");
    assert!(e.message().contains("viewer role"), "{e:?}");
    assert_eq!(reason(&e), "PERMISSION_DENIED");

    // An editor writes, but may not administer.
    let editor = app.channel_as(Role::Editor).await;
    let mut editor_programs = ProgramServiceClient::new(editor.clone());
    editor_programs
        .create_program(create_program_request("q", "Q", ""))
        .await
        .unwrap();
    let e = AdminServiceClient::new(editor)
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    assert_eq!(
        count(&app.pool, "SELECT count(*) FROM programs").await,
        before + 1,
        "only the editor's create was applied"
    );
}

#[tokio::test]
async fn anonymous_reads_when_the_server_allows_them_but_never_anonymous_writes() {
    let mut options = test_options();
    options.calls.anonymous_read = true;
    let mut app = spawn_app_with(options).await;
    app.create_program("p").await;
    let mut anonymous = ProgramServiceClient::new(raw_channel(app.addr).await);
    let p = anonymous
        .get_program(get_program("programs/p"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.title, "Programme p");
    let e = anonymous
        .create_program(create_program_request("q", "Q", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = AdminServiceClient::new(raw_channel(app.addr).await)
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn api_keys_are_created_shown_once_stored_hashed_and_revoked_everywhere() {
    let app = spawn_app().await;
    let mut admin = AdminServiceClient::new(app.channel().await);
    let created = admin
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                display_name: "loader".into(),
                role: pb::Role::Editor as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let key = created.api_key.unwrap();
    let id = key.name.strip_prefix("apiKeys/").unwrap().to_owned();
    assert_eq!(id.len(), 12);
    assert_eq!(key.role, pb::Role::Editor as i32);
    assert_eq!(key.display_name, "loader");
    assert!(key.creator.starts_with("apiKeys/"), "{key:?}");
    // tw_ + 12-character id + _ + 43 characters of base64url (256 bits).
    let secret = created.secret;
    assert_eq!(secret.len(), 3 + 12 + 1 + 43);
    assert!(secret.starts_with(&format!("tw_{id}_")));

    // Only the SHA-256 of the secret is stored.
    let (stored,): (Vec<u8>,) =
        sqlx::query_as("SELECT secret_hash FROM api_keys WHERE key_id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, sha2::Sha256::digest(secret.as_bytes()).to_vec());
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE position(convert_to($1, 'UTF8') IN secret_hash) > 0 \
            OR display_name LIKE '%' || $1 || '%'",
    )
    .bind(&secret[16..])
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);

    // The key works; the list shows it, without any secret.
    let mut as_new = ProgramServiceClient::new(authed(raw_channel(app.addr).await, &secret));
    as_new
        .create_program(create_program_request("by-loader", "By the loader", ""))
        .await
        .unwrap();
    let listed = admin
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.api_keys.len(),
        2,
        "the test's admin key and the new one"
    );
    assert_eq!(listed.api_keys[0].name, key.name, "newest first");

    // An admin cannot revoke the key it is calling with.
    let own = admin
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .api_keys[1]
        .name
        .clone();
    let e = admin
        .delete_api_key(pb::DeleteApiKeyRequest { name: own })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Revoke: refused from the next check on (a successful check is cached ≤ 2 s).
    admin
        .delete_api_key(pb::DeleteApiKeyRequest {
            name: key.name.clone(),
        })
        .await
        .unwrap();
    tokio::time::sleep(tradewatch::calls::KEY_CACHE_TTL + Duration::from_millis(100)).await;
    let e = as_new
        .get_program(get_program("programs/by-loader"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // A second revoke: NOT_FOUND; the list no longer shows it.
    let e = admin
        .delete_api_key(pb::DeleteApiKeyRequest { name: key.name })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let listed = admin
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.api_keys.len(), 1);

    // Bad input names the field.
    let e = admin
        .create_api_key(pb::CreateApiKeyRequest {
            api_key: Some(pb::ApiKey {
                role: 0,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "api_key.role");
    let e = admin
        .delete_api_key(pb::DeleteApiKeyRequest {
            name: "apiKeys/'; DROP TABLE api_keys; --".into(),
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "name");
}

/// The `before`/`after` of `resource`'s newest event with `action`, as JSON.
async fn audited(
    admin: &mut AdminServiceClient<crate::helpers::Ch>,
    resource: &str,
    action: &str,
) -> (serde_json::Value, serde_json::Value) {
    fn json(v: &prost_types::Value) -> serde_json::Value {
        use prost_types::value::Kind;
        match v.kind.as_ref().unwrap() {
            Kind::NullValue(_) => serde_json::Value::Null,
            Kind::NumberValue(n) => serde_json::json!(n),
            Kind::StringValue(s) => serde_json::json!(s),
            Kind::BoolValue(b) => serde_json::json!(b),
            Kind::StructValue(s) => struct_json(s),
            Kind::ListValue(l) => l.values.iter().map(json).collect(),
        }
    }
    fn struct_json(s: &prost_types::Struct) -> serde_json::Value {
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
    let events = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            resource: resource.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let e = events
        .iter()
        .find(|e| e.resource == resource && e.action == action)
        .unwrap_or_else(|| panic!("no {action} of {resource} in {events:?}"));
    let side =
        |s: &Option<prost_types::Struct>| s.as_ref().map_or(serde_json::Value::Null, struct_json);
    (side(&e.before), side(&e.after))
}

#[tokio::test]
async fn the_audit_log_shows_api_field_names_and_values() {
    let mut app = spawn_app().await;
    let mut admin = AdminServiceClient::new(app.channel().await);
    app.create_program("cq").await;
    app.create_indicator("cq-total").await;
    app.create_target(
        "cq",
        "t2020",
        pb::Target {
            title: "30 billion USD in 2020".into(),
            indicator: "indicators/cq-total".into(),
            kind: pb::target::Kind::Level as i32,
            target_value: "30.10".into(),
            unit_multiplier: 9,
            target_period: "2020".into(),
            direction: pb::Direction::HigherIsBetter as i32,
            ..Default::default()
        },
    )
    .await
    .expect("CreateTarget");
    let mut programs = ProgramServiceClient::new(app.channel().await);
    programs
        .update_target(pb::UpdateTargetRequest {
            target: Some(pb::Target {
                name: "programs/cq/targets/t2020".into(),
                // More digits than a double holds: the log keeps them all.
                target_value: "30.123456789012345678".into(),
                direction: pb::Direction::LowerIsBetter as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target_value".into(), "direction".into()],
            }),
        })
        .await
        .expect("UpdateTarget");

    let (before, after) = audited(&mut admin, "programs/cq/targets/t2020", "UPDATE").await;
    assert_eq!(
        before,
        serde_json::json!({"targetValue": "30.10", "direction": "DIRECTION_HIGHER_IS_BETTER"})
    );
    assert_eq!(
        after,
        serde_json::json!({"targetValue": "30.123456789012345678",
                           "direction": "DIRECTION_LOWER_IS_BETTER"})
    );
    let (before, created) = audited(&mut admin, "programs/cq/targets/t2020", "CREATE").await;
    assert_eq!(before, serde_json::Value::Null);
    let created = created.as_object().unwrap();
    for (field, value) in [
        ("indicator", serde_json::json!("indicators/cq-total")),
        ("initiative", serde_json::json!("")),
        ("kind", serde_json::json!("KIND_LEVEL")),
        ("targetValue", serde_json::json!("30.10")),
        ("unitMultiplier", serde_json::json!(9.0)),
        ("targetPeriod", serde_json::json!("2020")),
        ("baselineValue", serde_json::json!("")),
    ] {
        assert_eq!(created.get(field), Some(&value), "{field} in {created:?}");
    }
    for column in [
        "indicator_id",
        "target_value",
        "program_id",
        "target_id",
        "version",
    ] {
        assert!(!created.contains_key(column), "{column} in {created:?}");
    }
    let stamp = created["createTime"].as_str().unwrap();
    assert!(stamp.ends_with('Z'), "{stamp}");

    let (_, indicator) = audited(&mut admin, "indicators/cq-total", "CREATE").await;
    let indicator = indicator.as_object().unwrap();
    for (field, value) in [
        ("name", serde_json::json!("indicators/cq-total")),
        ("frequency", serde_json::json!("FREQUENCY_ANNUAL")),
        ("flow", serde_json::json!("FLOW_EXPORT")),
        ("aggregation", serde_json::json!("AGGREGATION_SUM")),
        ("direction", serde_json::json!("DIRECTION_HIGHER_IS_BETTER")),
        ("unitMultiplier", serde_json::json!(8.0)),
        ("serviceCategory", serde_json::json!("SJ")),
        ("yearToDate", serde_json::json!(false)),
        ("dimensions", serde_json::json!({"outsourcing": "ITO"})),
    ] {
        assert_eq!(
            indicator.get(field),
            Some(&value),
            "{field} in {indicator:?}"
        );
    }
    assert!(!indicator.contains_key("indicator_key"), "{indicator:?}");
}

#[tokio::test]
async fn every_change_is_audited_with_its_key_request_id_and_changed_fields() {
    let mut app = spawn_app().await;
    let mut programs = ProgramServiceClient::new(app.channel().await);
    let created = programs
        .create_program(with_request_id(
            create_program_request("audited", "First title", ""),
            "req-create-1",
        ))
        .await
        .unwrap();
    assert_eq!(
        created.metadata().get("x-request-id").unwrap(),
        "req-create-1",
        "the request id comes back in the response metadata"
    );
    let created = created.into_inner();
    programs
        .update_program(with_request_id(
            pb::UpdateProgramRequest {
                program: Some(pb::Program {
                    name: "programs/audited".into(),
                    title: "Second title".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
            "req-update-1",
        ))
        .await
        .unwrap();
    // A refused write leaves no event.
    let e = programs
        .create_program(create_program_request("audited", "Duplicate", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    programs
        .delete_program(with_request_id(
            pb::DeleteProgramRequest {
                name: "programs/audited".into(),
                ..Default::default()
            },
            "req-delete-1",
        ))
        .await
        .unwrap();

    let mut admin = AdminServiceClient::new(app.channel().await);
    let events = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            resource: "programs/audited".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.method.as_str(), e.request_id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "DELETE",
                "tradewatch.v1.ProgramService/DeleteProgram",
                "req-delete-1"
            ),
            (
                "UPDATE",
                "tradewatch.v1.ProgramService/UpdateProgram",
                "req-update-1"
            ),
            (
                "CREATE",
                "tradewatch.v1.ProgramService/CreateProgram",
                "req-create-1"
            ),
        ]
    );
    let admin_key_id = app.admin_key[3..15].to_owned();
    for e in &events {
        assert_eq!(e.actor, format!("apiKeys/{admin_key_id}"));
        assert_eq!(e.resource, "programs/audited");
    }
    // UPDATE shows only the changed field, before and after.
    let field = |s: &Option<prost_types::Struct>, k: &str| -> Option<String> {
        match s.as_ref()?.fields.get(k)?.kind.as_ref()? {
            prost_types::value::Kind::StringValue(v) => Some(v.clone()),
            _ => None,
        }
    };
    let update = &events[1];
    assert_eq!(
        update.before.as_ref().unwrap().fields.len(),
        1,
        "{update:?}"
    );
    assert_eq!(
        field(&update.before, "title").as_deref(),
        Some("First title")
    );
    assert_eq!(
        field(&update.after, "title").as_deref(),
        Some("Second title")
    );
    // CREATE has the whole new row; DELETE the whole old row.
    assert_eq!(
        field(&events[2].after, "jurisdiction").as_deref(),
        Some("CN-CQ")
    );
    assert!(events[2].before.is_none());
    assert_eq!(
        field(&events[0].before, "title").as_deref(),
        Some("Second title")
    );
    assert!(events[0].after.is_none());
    assert_eq!(created.title, "First title");

    // A bulk write is one event per indicator, with counts — not one per row.
    app.create_indicator("ind").await;
    let rows: Vec<pb::Observation> = (2001..=2003)
        .map(|y| {
            obs(
                &format!("indicators/ind/observations/{y}"),
                "1.5",
                pb::observation::Status::Unspecified,
            )
        })
        .collect();
    app.write(rows).await;
    let events = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            resource: "indicators/ind".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.resource.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("IMPORT", "indicators/ind/observations"),
            ("CREATE", "indicators/ind")
        ]
    );
    let counts = events[0].after.as_ref().unwrap();
    let n = |k: &str| match counts.fields[k].kind.as_ref().unwrap() {
        prost_types::value::Kind::NumberValue(v) => *v,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (n("inserted"), n("revised"), n("unchanged")),
        (3.0, 0.0, 0.0)
    );

    // Paging and the actor and time filters.
    let page1 = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            actor: format!("apiKeys/{admin_key_id}"),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.audit_events.len(), 2);
    let page2 = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            actor: format!("apiKeys/{admin_key_id}"),
            page_size: 100,
            page_token: page1.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // create, update, delete of the programme; create of the indicator; the import.
    assert_eq!(page1.audit_events.len() + page2.audit_events.len(), 5);
    assert!(page2.next_page_token.is_empty());
    let future = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: 4_102_444_800, // 2100-01-01
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(future.audit_events.is_empty());
    // The token is bound to its filters.
    let e = admin
        .list_audit_events(pb::ListAuditEventsRequest {
            page_token: page1.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "page_token");
}

#[tokio::test]
async fn a_retried_create_with_the_same_request_id_applies_once_and_returns_the_original() {
    let app = spawn_app().await;
    let mut programs = ProgramServiceClient::new(app.channel().await);
    let id = "0b7f9a52-3c1e-4d8a-9f6b-2a5c7e1d4b30";
    let first = programs
        .create_program(create_program_request("once", "Once", id))
        .await
        .unwrap()
        .into_inner();
    // Someone changes it meanwhile; the retry still gets the original response.
    programs
        .update_program(pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/once".into(),
                title: "Changed".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .unwrap();
    let retry = programs
        .create_program(create_program_request("once", "Once", id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    assert_eq!(retry.title, "Once");
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM audit_events WHERE resource = 'programs/once' AND action = 'CREATE'"
        )
        .await,
        1
    );

    // The same id for a different request: INVALID_ARGUMENT, nothing applied.
    let e = programs
        .create_program(create_program_request("other", "Other", id))
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&e, "request_id"), "REQUEST_ID_REUSED");
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM programs WHERE program_id = 'other'"
        )
        .await,
        0
    );
    // Not a UUID version 4.
    for bad in ["123", "0b7f9a52-3c1e-1d8a-9f6b-2a5c7e1d4b30"] {
        let e = programs
            .create_program(create_program_request("other", "Other", bad))
            .await
            .unwrap_err();
        assert_eq!(assert_invalid(&e, "request_id"), "INVALID_REQUEST_ID");
    }

    // Concurrent duplicates: exactly one applies, all get the same programme.
    let id2 = "6f1d2c3b-4a5e-4f70-8b9c-0d1e2f3a4b5c";
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut c = programs.clone();
        calls.push(tokio::spawn(async move {
            c.create_program(create_program_request("raced", "Raced", id2))
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut results = Vec::new();
    for c in calls {
        results.push(c.await.unwrap().expect("every duplicate succeeds"));
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM audit_events WHERE resource = 'programs/raced'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_retried_batch_or_import_returns_its_original_counts_and_writes_nothing_more() {
    let mut app = spawn_app().await;
    app.create_indicator("ind").await;
    let mut observations = ObservationServiceClient::new(app.channel().await);
    let rows = vec![
        obs(
            "indicators/ind/observations/2019",
            "20.6",
            pb::observation::Status::Unspecified,
        ),
        obs(
            "indicators/ind/observations/2020",
            "22.8",
            pb::observation::Status::Unspecified,
        ),
    ];
    let id = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    let batch = |rows: Vec<pb::Observation>, id: &str| pb::BatchCreateObservationsRequest {
        observations: rows,
        validate_only: false,
        request_id: id.into(),
    };
    let first = observations
        .batch_create_observations(batch(rows.clone(), id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.inserted, first.unchanged), (2, 0));
    let versions = "SELECT count(*) FROM observation_versions";
    let commits = "SELECT count(DISTINCT known_from) FROM observation_versions";
    // Another writer revises 2019 before the retry arrives.
    app.write(vec![obs(
        "indicators/ind/observations/2019",
        "20.7",
        pb::observation::Status::Unspecified,
    )])
    .await;
    let (v, c) = (
        count(&app.pool, versions).await,
        count(&app.pool, commits).await,
    );
    let retry = observations
        .batch_create_observations(batch(rows.clone(), id))
        .await
        .unwrap()
        .into_inner();
    // The original counts (2 inserted), not those of a second write (2 unchanged).
    assert_eq!((retry.inserted, retry.unchanged), (2, 0));
    // The observations as the first call wrote them (20.6), not as they are now (20.7).
    assert_eq!(retry.observations, first.observations);
    assert_eq!(retry.observations[0].value, "20.6");
    assert_eq!(count(&app.pool, versions).await, v);
    assert_eq!(count(&app.pool, commits).await, c);
    let mut changed = rows.clone();
    changed[0].value = "21.0".into();
    let e = observations
        .batch_create_observations(batch(changed, id))
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&e, "request_id"), "REQUEST_ID_REUSED");

    // An import stream: the id rides on the first message; the fingerprint covers all.
    let import_id = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    let stream = |value: &str| {
        let first = pb::ImportObservationsRequest {
            validate_only: false,
            observations: vec![obs(
                "indicators/ind/observations/2018",
                "21.5",
                pb::observation::Status::Unspecified,
            )],
            request_id: import_id.into(),
        };
        let second = pb::ImportObservationsRequest {
            validate_only: false,
            observations: vec![obs(
                "indicators/ind/observations/2017",
                value,
                pb::observation::Status::Unspecified,
            )],
            request_id: String::new(),
        };
        tokio_stream::iter(vec![first, second])
    };
    let first = observations
        .import_observations(stream("19.0"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.inserted, 2);
    let v = count(&app.pool, versions).await;
    let retry = observations
        .import_observations(stream("19.0"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first, "same counts and commit time");
    assert_eq!(count(&app.pool, versions).await, v);
    let e = observations
        .import_observations(stream("19.5"))
        .await
        .unwrap_err();
    assert_eq!(assert_invalid(&e, "request_id"), "REQUEST_ID_REUSED");
    assert_eq!(count(&app.pool, versions).await, v);
}

#[tokio::test]
async fn every_response_carries_a_request_id_generated_when_the_client_sends_none() {
    let mut app = spawn_app().await;
    app.create_program("p").await;
    let r = app
        .programs
        .get_program(get_program("programs/p"))
        .await
        .unwrap();
    let generated = r.metadata().get("x-request-id").unwrap().to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(generated).is_ok(),
        "a generated UUID: {generated}"
    );
    // Errors carry it too (NOT_FOUND and a refused key).
    let e = app
        .programs
        .get_program(with_request_id(get_program("programs/nope"), "trace-42"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.metadata().get("x-request-id").unwrap(), "trace-42");
    let e = ProgramServiceClient::new(raw_channel(app.addr).await)
        .get_program(with_request_id(get_program("programs/p"), "trace-43"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(e.metadata().get("x-request-id").unwrap(), "trace-43");
}

/// Holds a row lock on `programs/{id}` until the returned transaction is dropped.
async fn lock_program(pool: &sqlx::PgPool, id: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM programs WHERE program_id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

fn retitle(id: &str, title: &str) -> pb::UpdateProgramRequest {
    pb::UpdateProgramRequest {
        program: Some(pb::Program {
            name: format!("programs/{id}"),
            title: title.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".into()],
        }),
    }
}

#[tokio::test]
async fn deadlines_end_calls_with_deadline_exceeded_and_leave_nothing_behind() {
    let mut options = test_options();
    options.calls.default_deadline = Duration::from_millis(800);
    let mut app = spawn_app_with(options).await;
    app.create_program("p").await;
    let lock = lock_program(&app.pool, "p").await;

    // The client's deadline (grpc-timeout 300 ms).
    let mut request = tonic::Request::new(retitle("p", "Client deadline"));
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = app.programs.update_program(request).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(790),
        "{:?}",
        started.elapsed()
    );

    // No client deadline: the server's default (800 ms) applies to unary calls.
    let started = Instant::now();
    let e = app
        .programs
        .update_program(retitle("p", "Server deadline"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // PostgreSQL itself stopped both updates at their deadlines (the transactions carry
    // a statement_timeout of the time left): nothing waits on the test's lock any more.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
           AND wait_event_type = 'Lock'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(waiting, 0, "a dropped call still waits for the lock");
    drop(lock);
    // Neither update was applied, no connection is left in a transaction, and the
    // next call works.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = app
        .programs
        .get_program(get_program("programs/p"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.title, "Programme p");
    let idle_in_tx: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
           AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(idle_in_tx, 0);
    app.programs
        .update_program(retitle("p", "After"))
        .await
        .unwrap();
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_refused_at_once() {
    let mut options = test_options();
    options.calls.max_concurrent_calls = 1;
    let mut app = spawn_app_with(options).await;
    app.create_program("p").await;
    let lock = lock_program(&app.pool, "p").await;
    let mut blocked = app.programs.clone();
    let held = tokio::spawn(async move { blocked.update_program(retitle("p", "Held")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let e = app
        .programs
        .get_program(get_program("programs/p"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(500));
    drop(lock);
    held.await.unwrap().unwrap();
    app.programs
        .get_program(get_program("programs/p"))
        .await
        .unwrap();
}

/// The value of the sample `name{labels}` in a Prometheus text page, 0 when absent.
fn sample(page: &str, name_and_labels: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    out
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code_latency_rows_and_the_pool() {
    let mut app = spawn_app().await;
    let before = scrape(app.metrics_addr).await;
    let ok = "tradewatch_grpc_calls_total{service=\"tradewatch.v1.ProgramService\",method=\"GetProgram\",code=\"OK\"}";
    let nf = "tradewatch_grpc_calls_total{service=\"tradewatch.v1.ProgramService\",method=\"GetProgram\",code=\"NOT_FOUND\"}";
    assert_eq!(sample(&before, ok), 0.0);
    app.create_program("p").await;
    for _ in 0..3 {
        app.programs
            .get_program(get_program("programs/p"))
            .await
            .unwrap();
    }
    app.programs
        .get_program(get_program("programs/missing"))
        .await
        .unwrap_err();
    app.create_indicator("ind").await;
    app.write(vec![
        obs(
            "indicators/ind/observations/2019",
            "1",
            pb::observation::Status::Unspecified,
        ),
        obs(
            "indicators/ind/observations/2020",
            "2",
            pb::observation::Status::Unspecified,
        ),
    ])
    .await;
    let e = ReportingServiceClient::new(raw_channel(app.addr).await)
        .get_program_scorecard(pb::GetProgramScorecardRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    let after = scrape(app.metrics_addr).await;
    assert_eq!(sample(&after, ok), 3.0, "{after}");
    assert_eq!(sample(&after, nf), 1.0);
    assert_eq!(
        sample(
            &after,
            "tradewatch_grpc_calls_total{service=\"tradewatch.v1.ReportingService\",method=\"GetProgramScorecard\",code=\"UNAUTHENTICATED\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            "tradewatch_grpc_call_duration_seconds_count{service=\"tradewatch.v1.ProgramService\",method=\"GetProgram\"}"
        ),
        4.0
    );
    assert_eq!(
        sample(
            &after,
            "tradewatch_observation_rows_total{outcome=\"inserted\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &after,
            "tradewatch_grpc_calls_in_flight{service=\"tradewatch.v1.ProgramService\",method=\"GetProgram\"}"
        ),
        0.0
    );
    assert!(
        after.contains("tradewatch_db_pool_max_connections 10"),
        "{after}"
    );
    assert!(after.contains("tradewatch_db_pool_connections{state=\"idle\"}"));
    assert!(after.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn tls_serves_with_a_certificate_and_refuses_plaintext() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, ServerTlsConfig};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key_pem = cert.signing_key.serialize_pem();
    let mut options = test_options();
    options.tls = Some(ServerTlsConfig::new().identity(Identity::from_pem(&cert_pem, &key_pem)));
    let app = spawn_app_with(options).await;
    let channel = Channel::from_shared(format!("https://localhost:{}", app.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&cert_pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .expect("a TLS connection with the self-signed certificate");
    let mut programs = ProgramServiceClient::new(authed(channel, &app.admin_key));
    programs
        .create_program(create_program_request("secure", "Over TLS", ""))
        .await
        .unwrap();
    // Plaintext HTTP/2 to the TLS port does not get an answer.
    let plain = Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await;
    if let Ok(plain) = plain {
        let e = ProgramServiceClient::new(authed(plain, &app.admin_key))
            .get_program(get_program("programs/secure"))
            .await
            .unwrap_err();
        assert_ne!(e.code(), Code::Ok);
    }
}

#[tokio::test]
async fn keys_create_on_the_command_line_bootstraps_an_admin() {
    let db = crate::helpers::create_database().await;
    let run = |args: &'static [&'static str]| {
        let url = db.url.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_tradewatch"))
                .args(args)
                .env("DATABASE_URL", url)
                .env("TRADEWATCH_METRICS_LISTEN", "off")
                .kill_on_drop(true)
                .output()
                .await
                .expect("run tradewatch")
        }
    };
    let out = run(&["keys", "create", "--role", "admin", "--name", "ops"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(secret.len(), 59, "{secret}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "created apiKeys/{} with the admin role",
            &secret[3..15]
        )),
        "{stderr}"
    );
    let pool = sqlx::PgPool::connect_with(db.options.clone())
        .await
        .unwrap();
    let (role, name, hash): (String, String, Vec<u8>) =
        sqlx::query_as("SELECT role, display_name, secret_hash FROM api_keys WHERE key_id = $1")
            .bind(&secret[3..15])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((role.as_str(), name.as_str()), ("admin", "ops"));
    assert_eq!(hash, sha2::Sha256::digest(secret.as_bytes()).to_vec());

    let out = run(&["keys", "create", "--role", "root"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--role must be viewer, editor or admin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pool.close().await;
}

/// Keyless calls to methods that do not exist, sent to the real binary, all count under
/// one `unknown` label: they cannot grow `/metrics` (or the server's memory) without
/// bound. (They used to add a label set each: 20,000 such calls grew the page from
/// 172 KB to 127 MB.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_invented_methods_share_one_metrics_label() {
    let db = crate::helpers::create_database().await;
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let server =
        crate::crash::ServerProcess::start_with(&db, &["--metrics-listen", &metrics.to_string()])
            .await;
    let before = scrape(metrics).await;
    let channel = raw_channel(server.addr).await;
    const CALLS: usize = 500;
    for i in 0..CALLS {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("the connection is ready");
        let path =
            http::uri::PathAndQuery::try_from(format!("/tradewatch.v1.ProgramService/GetX{i}"))
                .unwrap();
        let e = grpc
            .unary::<(), (), _>(
                tonic::Request::new(()),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .expect_err("no such method");
        // Refused for want of a key (before anything else is looked at).
        assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    }
    let after = scrape(metrics).await;
    assert!(!after.contains("GetX"), "an invented method became a label");
    assert_eq!(
        sample(
            &after,
            "tradewatch_grpc_calls_total{service=\"unknown\",method=\"unknown\",code=\"UNAUTHENTICATED\"}"
        ),
        CALLS as f64,
        "{after}"
    );
    // One label set more (calls, latency buckets, in flight), not 500.
    assert!(
        after.len() < before.len() + 8_000,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}
