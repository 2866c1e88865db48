//! The real `tradewatch` binary killed with SIGKILL in the middle of a large streamed
//! import: after a restart on the same database, everything acknowledged before is
//! intact and no row of the killed import exists.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::indicator_service_client::IndicatorServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;

use crate::helpers::{Ch, TestDatabase, authed, create_database, create_key, indicator, obs};
use tradewatch::domain::access::Role;

/// The binary as a child process, killed (and its log removed) on drop.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    /// A connection sending an editor key.
    pub(crate) channel: Ch,
    /// Where it listens.
    pub(crate) addr: std::net::SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `tradewatch --listen 127.0.0.1:<free port> --no-seed --metrics-listen off`
    /// on `db` and waits until its health check reports SERVING.
    pub(crate) async fn start(db: &TestDatabase) -> Self {
        Self::start_with(db, &[]).await
    }

    /// As [`start`](Self::start), with `args` added to the command line.
    pub(crate) async fn start_with(db: &TestDatabase, args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log =
            std::env::temp_dir().join(format!("tw-server-{}.log", uuid::Uuid::new_v4().simple()));
        let child = Command::new(env!("CARGO_BIN_EXE_tradewatch"))
            // No metrics endpoint unless `args` choose one: its fixed default port
            // would clash between the servers of tests running in parallel.
            .args(["--listen", &format!("127.0.0.1:{port}"), "--no-seed"])
            .args(
                (!args.contains(&"--metrics-listen"))
                    .then_some(["--metrics-listen", "off"])
                    .into_iter()
                    .flatten(),
            )
            .args(args)
            .env("DATABASE_URL", &db.url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .expect("start the tradewatch binary");
        let key = {
            let pool = sqlx::PgPool::connect_with(db.options.clone())
                .await
                .expect("connect to the test database");
            let key = create_key(&pool, Role::Editor).await;
            pool.close().await;
            key
        };
        let mut server = Self {
            child,
            channel: authed(
                Channel::from_static("http://127.0.0.1:1").connect_lazy(),
                &key,
            ),
            addr: ([127, 0, 0, 1], port).into(),
            log,
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().expect("child status") {
                panic!("the server exited with {status}:\n{}", server.log());
            }
            if let Ok(channel) = Channel::from_shared(url.clone()).unwrap().connect().await {
                let serving = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: "tradewatch.v1.ObservationService".into(),
                    })
                    .await
                    .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32);
                if serving {
                    server.channel = authed(channel, &key);
                    return server;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not report SERVING within 30 s:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the server wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits until `sql` (a count) satisfies `done`, for at most 10 s.
async fn wait_for(pool: &PgPool, sql: &'static str, done: impl Fn(i64) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.unwrap();
        if done(n) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} (last count {n})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Months per bulk indicator: 1800-M01 to 2199-M12.
const BULK_ROWS: usize = 4_800;
/// Messages the import would send in full.
const BULK_MESSAGES: usize = 50;
/// Messages sent before the kill.
const SENT_BEFORE_KILL: usize = 4;

fn bulk_id(k: usize) -> String {
    format!("bulk-{k:02}")
}

/// Message `k`: 4,800 months of indicator bulk-k.
fn bulk_message(k: usize) -> pb::ImportObservationsRequest {
    let observations = (0..BULK_ROWS)
        .map(|i| {
            let period = format!("{}-M{:02}", 1800 + i / 12, i % 12 + 1);
            obs(
                &format!("indicators/{}/observations/{period}", bulk_id(k)),
                &format!("{k}.{i}"),
                pb::observation::Status::Normal,
            )
        })
        .collect();
    pb::ImportObservationsRequest {
        request_id: String::new(),
        validate_only: false,
        observations,
    }
}

#[tokio::test]
async fn a_server_killed_during_an_import_keeps_what_was_acknowledged_and_nothing_else() {
    use pb::observation::Status as S;
    let db = create_database().await;
    let pool = PgPool::connect_with(db.options.clone().application_name("tw-crash-test"))
        .await
        .unwrap();
    let mut server = ServerProcess::start(&db).await;
    let mut indicators = IndicatorServiceClient::new(server.channel.clone());
    let mut observations = ObservationServiceClient::new(server.channel.clone());

    // The published figures, acknowledged before anything else happens.
    let mut annual = indicator("Offshore outsourcing, executed value");
    annual.unit_multiplier = 8;
    indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(annual),
            indicator_id: "cq-offshore".into(),
        })
        .await
        .unwrap();
    for k in 0..BULK_MESSAGES {
        let mut monthly = indicator(&format!("Bulk {k}"));
        monthly.frequency = pb::Frequency::Monthly as i32;
        indicators
            .create_indicator(pb::CreateIndicatorRequest {
                request_id: String::new(),
                indicator: Some(monthly),
                indicator_id: bulk_id(k),
            })
            .await
            .unwrap();
    }
    let y = |p: &str| format!("indicators/cq-offshore/observations/{p}");
    let acked = observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: vec![
                obs(&y("2018"), "21.5", S::Provisional),
                obs(&y("2019"), "20.6", S::Provisional),
                obs(&y("2020"), "22.8", S::Provisional),
            ],
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acked.inserted, 3);

    // The import: 50 messages of 4,800 rows are planned; the producer may send four,
    // then waits (the stream stays open, as a slow client's would).
    let permits = Arc::new(tokio::sync::Semaphore::new(SENT_BEFORE_KILL));
    let sent = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportObservationsRequest>(1);
    let producer = {
        let (permits, sent) = (permits.clone(), sent.clone());
        tokio::spawn(async move {
            for k in 0..BULK_MESSAGES {
                permits.acquire().await.unwrap().forget();
                if tx.send(bulk_message(k)).await.is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let mut importer = observations.clone();
    let call = tokio::spawn(async move {
        importer
            .import_observations(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while sent.load(Ordering::SeqCst) < SENT_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the producer is stuck");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The server has written rows in its open transaction and waits for more.
    wait_for(
        &pool,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
           AND application_name = 'tradewatch' AND state = 'idle in transaction' \
           AND (query LIKE 'COPY observation_versions%' OR query LIKE '%observations_import_chunk%')",
        |n| n == 1,
        "the import never staged its rows",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.kill();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the import call ends when the server dies")
        .unwrap();
    assert!(result.is_err(), "the killed import was not acknowledged");
    producer.abort();
    // PostgreSQL notices the dead client and rolls its transaction back.
    wait_for(
        &pool,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
           AND application_name = 'tradewatch'",
        |n| n == 0,
        "the killed server's sessions stayed",
    )
    .await;

    // Restart on the same database.
    let server = ServerProcess::start(&db).await;
    let mut observations = ObservationServiceClient::new(server.channel.clone());
    let now = observations
        .list_observations(pb::ListObservationsRequest {
            parent: "indicators/cq-offshore".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .observations;
    assert_eq!(
        now, acked.observations,
        "the acknowledged figures, unchanged"
    );
    for k in 0..SENT_BEFORE_KILL {
        let bulk = observations
            .list_observations(pb::ListObservationsRequest {
                parent: format!("indicators/{}", bulk_id(k)),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .observations;
        assert!(bulk.is_empty(), "{} has {} rows", bulk_id(k), bulk.len());
    }
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM observation_versions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(versions, 3);
    // One write, one instant, one audit event.
    let commits: Vec<(i64, String)> =
        sqlx::query_as("SELECT count(*), max(method) FROM audit_events WHERE action = 'IMPORT'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        commits,
        vec![(
            1,
            "tradewatch.v1.ObservationService/BatchCreateObservations".to_string()
        )]
    );
    let instants: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT known_from) FROM observation_versions")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(instants, 1);

    // The restarted server writes on from there: a second write, later than the first.
    let more = observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: vec![obs(&y("2021"), "23.0", S::Estimated)],
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(more.inserted, 1);
    let per_instant: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM observation_versions GROUP BY known_from ORDER BY known_from",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(per_instant, vec![3, 1]);
    pool.close().await;
}
