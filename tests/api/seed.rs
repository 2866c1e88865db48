//! The built-in Chongqing 2015 programme, read back through the API.

use tradewatch::proto::v1 as pb;

use crate::helpers::spawn_app;

#[tokio::test]
async fn chongqing_programme_reads_back_with_its_areas_and_target() {
    let mut app = spawn_app().await;
    assert!(tradewatch::seed::load(&app.pool).await.unwrap());
    // Loading again creates nothing.
    assert!(!tradewatch::seed::load(&app.pool).await.unwrap());

    let program = app
        .programs
        .get_program(pb::GetProgramRequest {
            name: "programs/cq-2015-service-trade".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(program.jurisdiction, "CN-CQ");
    assert_eq!((program.start_year, program.end_year), (2015, 2020));

    let initiatives = app
        .programs
        .list_initiatives(pb::ListInitiativesRequest {
            parent: program.name.clone(),
            page_size: 100,
            page_token: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .initiatives;
    // Seven areas and the 15 measures the text names under them (3+2+2+2+1+3+2).
    let mut areas: Vec<_> = initiatives
        .iter()
        .filter(|i| i.parent_initiative.is_empty())
        .collect();
    assert_eq!(areas.len(), 7);
    assert_eq!(initiatives.len(), 22);
    areas.sort_by_key(|a| a.position);
    assert_eq!(areas[0].title, "Develop cross-border trade e-commerce");
    assert_eq!(areas[6].title, "Develop offshore service outsourcing");
    let offshore_children: Vec<_> = initiatives
        .iter()
        .filter(|i| {
            i.parent_initiative == "programs/cq-2015-service-trade/initiatives/offshore-outsourcing"
        })
        .collect();
    assert_eq!(offshore_children.len(), 2);

    let target = app
        .programs
        .get_target(pb::GetTargetRequest {
            name: "programs/cq-2015-service-trade/targets/services-trade-2020".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // 30 billion USD: 30 x 10^9, against an indicator in 10^8 USD.
    assert_eq!(target.target_value, "30");
    assert_eq!(target.unit_multiplier, 9);
    assert_eq!(target.target_period, "2020");
    assert_eq!(target.kind, pb::target::Kind::Level as i32);
    assert_eq!(target.indicator, "indicators/cq-services-trade-total");
    assert!(
        target.baseline_value.is_empty(),
        "the source gives no baseline"
    );

    let indicator = app
        .indicators
        .get_indicator(pb::GetIndicatorRequest {
            name: target.indicator.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(indicator.unit, "USD");
    assert_eq!(indicator.unit_multiplier, 8);
    assert_eq!(indicator.frequency, pb::Frequency::Annual as i32);
    assert_eq!(indicator.flow, pb::indicator::Flow::Total as i32);
    assert_eq!(indicator.service_category, "S");
    assert_eq!(indicator.region, "CN-CQ");
}

#[tokio::test]
async fn first_start_seed_is_not_repeated_after_a_deliberate_delete() {
    let mut app = spawn_app().await;
    assert!(
        tradewatch::seed::seed_on_first_start(&app.pool)
            .await
            .unwrap()
    );
    app.programs
        .delete_program(pb::DeleteProgramRequest {
            name: "programs/cq-2015-service-trade".into(),
            etag: String::new(),
            force: true,
        })
        .await
        .unwrap();
    assert!(
        !tradewatch::seed::seed_on_first_start(&app.pool)
            .await
            .unwrap()
    );
    let err = app
        .programs
        .get_program(pb::GetProgramRequest {
            name: "programs/cq-2015-service-trade".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}
