//! Faults with real processes, checked the way a client sees them: PostgreSQL stopped
//! and restarted under a running server, clients that cancel at random moments, the
//! binary killed with SIGKILL among acknowledged writes, and a graceful shutdown with
//! a call still in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tradewatch::domain::access::Role;
use tradewatch::embedded_pg::{DEFAULT_DATABASE, EmbeddedPostgres};
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::indicator_service_client::IndicatorServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;
use tradewatch::proto::v1::program_service_client::ProgramServiceClient;
use tradewatch::proto::v1::reporting_service_client::ReportingServiceClient;
use tradewatch::{server, store};

use crate::helpers::{Ch, authed, create_key, indicator, obs, program, raw_channel, test_options};

/// The four clients of one connection.
#[derive(Clone)]
struct Clients {
    programs: ProgramServiceClient<Ch>,
    indicators: IndicatorServiceClient<Ch>,
    observations: ObservationServiceClient<Ch>,
    reports: ReportingServiceClient<Ch>,
}

impl Clients {
    fn new(channel: Ch) -> Self {
        Self {
            programs: ProgramServiceClient::new(channel.clone()),
            indicators: IndicatorServiceClient::new(channel.clone()),
            observations: ObservationServiceClient::new(channel.clone()),
            reports: ReportingServiceClient::new(channel),
        }
    }
}

/// The health status of the whole server (`""`), or the error of the check.
async fn health(channel: &Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// Polls the health check until it reports `want`; returns how long that took, or
/// panics after `patience`.
async fn wait_health(channel: &Channel, want: ServingStatus, patience: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = health(channel).await;
        if got.as_ref().is_ok_and(|s| *s == want as i32) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < patience,
            "health did not turn {want:?} within {patience:?} (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL stopped and started again under a running server

/// Runs `pg_ctl -D <data dir> <args>` as the owner of the data directory (PostgreSQL
/// refuses to run as root; the embedded cluster's files belong to `postgres` then), with
/// no inherited `PG*` variables, as `embedded_pg` does.
pub(crate) async fn pg_ctl(pg: &EmbeddedPostgres, args: &[&str]) {
    use std::os::unix::fs::MetadataExt as _;
    let mut cmd = tokio::process::Command::new(pg.bindir().join("pg_ctl"));
    cmd.arg("-D")
        .arg(pg.data_dir())
        .args(args)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    if nix::unistd::Uid::effective().is_root() {
        let meta = std::fs::metadata(pg.data_dir()).expect("stat the data directory");
        cmd.uid(meta.uid()).gid(meta.gid());
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("pg_ctl finishes")
        .expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops the cluster's server in `mode` (`fast`: sessions are terminated; `immediate`:
/// every process quits at once, and the next start recovers from the WAL).
async fn stop_postgres(pg: &EmbeddedPostgres, mode: &str) {
    pg_ctl(pg, &["-m", mode, "-w", "-t", "60", "stop"]).await;
}

/// Sends `signal` to the cluster's postmaster and every process it started (the
/// backends of open sessions included): SIGSTOP freezes the database without closing
/// a socket, as a hung host or a network partition would; SIGCONT thaws it.
fn signal_cluster(data_dir: &Path, signal: nix::sys::signal::Signal) {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let pid_file =
        std::fs::read_to_string(data_dir.join("postmaster.pid")).expect("postmaster.pid");
    let postmaster: i32 = pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("the postmaster's pid");
    // The postmaster first, so that it starts no new process meanwhile.
    kill(Pid::from_raw(postmaster), signal).expect("signal the postmaster");
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        else {
            continue;
        };
        // /proc/<pid>/stat: "pid (comm) state ppid ...", comm may hold spaces.
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat.rsplit_once(')')?.1;
                rest.split_whitespace().nth(1)?.parse::<i32>().ok()
            });
        if ppid == Some(postmaster) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// Starts the cluster's server again, logging where `embedded_pg` does.
async fn start_postgres(pg: &EmbeddedPostgres) {
    let root = pg.data_dir().parent().unwrap_or(Path::new("/tmp"));
    let log = root.join("postgres.log");
    let log = log.to_str().expect("a UTF-8 path");
    pg_ctl(pg, &["-l", log, "-w", "-t", "60", "start"]).await;
}

/// Thaws a frozen cluster when dropped, so that a failing test leaves no stopped
/// process behind (its watchdog can then stop the cluster).
struct Thaw(std::path::PathBuf);

impl Drop for Thaw {
    fn drop(&mut self) {
        signal_cluster(&self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// The real server, in this process, on `pool`; stopped when the value is dropped.
struct InProcess {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve_on(pool: PgPool, options: server::Options) -> InProcess {
    let (addr, tx) = crate::helpers::serve_pool(pool, options).await;
    InProcess { addr, _stop: tx }
}

type Outcome = (&'static str, Result<(), tonic::Status>, Duration);
type Attempt = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A request with a client deadline when `timeout` is set.
fn req<T>(message: T, timeout: Option<Duration>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(t) = timeout {
        r.set_timeout(t);
    }
    r
}

/// `call`, timed.
fn timed<F, T>(what: &'static str, call: F) -> Attempt
where
    F: Future<Output = Result<T, tonic::Status>> + Send + 'static,
{
    Box::pin(async move {
        let start = Instant::now();
        let r = call.await.map(|_| ());
        (what, r, start.elapsed())
    })
}

/// One call of each kind a client makes (reads, writes, a batch, reports), each timed.
/// `n` makes the written names unique.
fn every_kind_of_call(c: &Clients, n: usize, timeout: Option<Duration>) -> Vec<Attempt> {
    let (mut p1, mut p2, mut p3, mut p4) = (
        c.programs.clone(),
        c.programs.clone(),
        c.programs.clone(),
        c.programs.clone(),
    );
    let (mut ind, mut o, mut r1, mut r2) = (
        c.indicators.clone(),
        c.observations.clone(),
        c.reports.clone(),
        c.reports.clone(),
    );
    let t = timeout;
    vec![
        timed("GetProgram", async move {
            p1.get_program(req(
                pb::GetProgramRequest {
                    name: "programs/cq".into(),
                },
                t,
            ))
            .await
        }),
        timed("ListPrograms", async move {
            p2.list_programs(req(pb::ListProgramsRequest::default(), t))
                .await
        }),
        timed("CreateProgram", async move {
            p3.create_program(req(
                pb::CreateProgramRequest {
                    request_id: String::new(),
                    program: Some(program("During the outage")),
                    program_id: format!("outage-{n}"),
                },
                t,
            ))
            .await
        }),
        timed("UpdateProgram", async move {
            p4.update_program(req(
                pb::UpdateProgramRequest {
                    program: Some(pb::Program {
                        name: "programs/cq".into(),
                        title: format!("Renamed {n}"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["title".into()],
                    }),
                },
                t,
            ))
            .await
        }),
        timed("GetIndicator", async move {
            ind.get_indicator(req(
                pb::GetIndicatorRequest {
                    name: "indicators/cq-offshore".into(),
                },
                t,
            ))
            .await
        }),
        timed("BatchCreateObservations", async move {
            o.batch_create_observations(req(
                pb::BatchCreateObservationsRequest {
                    request_id: String::new(),
                    observations: vec![obs(
                        "indicators/cq-offshore/observations/2021",
                        &format!("{n}.5"),
                        pb::observation::Status::Estimated,
                    )],
                    validate_only: false,
                },
                t,
            ))
            .await
        }),
        timed("QuerySeries", async move {
            r1.query_series(req(
                pb::QuerySeriesRequest {
                    indicator: "indicators/cq-offshore".into(),
                    ..Default::default()
                },
                t,
            ))
            .await
        }),
        timed("GetProgramScorecard", async move {
            r2.get_program_scorecard(req(
                pb::GetProgramScorecardRequest {
                    name: "programs/cq".into(),
                    as_of: None,
                },
                t,
            ))
            .await
        }),
    ]
}

async fn run_all(attempts: Vec<Attempt>) -> Vec<Outcome> {
    futures_util::future::join_all(attempts).await
}

fn show(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(|(what, r, took)| match r {
            Ok(()) => format!("{what}: OK in {took:?}"),
            Err(s) => format!("{what}: {:?} {:?} in {took:?}", s.code(), s.message()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How the database goes away.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outage {
    /// `pg_ctl stop -m fast`.
    Fast,
    /// `pg_ctl stop -m immediate`.
    Immediate,
    /// Every process of the cluster stopped with SIGSTOP: connections stay open and
    /// nothing answers.
    Frozen,
}

/// The server's default deadline in the outage tests: a frozen database is noticed
/// by it.
const OUTAGE_DEADLINE: Duration = Duration::from_secs(3);

/// A private cluster (never the shared test cluster) with a server in this process
/// on it, a programme `cq` and an indicator `cq-offshore` with one figure.
async fn outage_fixture() -> (EmbeddedPostgres, PgPool, InProcess, Channel, Clients) {
    let pg = EmbeddedPostgres::start_temporary(std::process::id())
        .await
        .expect("start a private PostgreSQL cluster");
    let options: PgConnectOptions = pg.url(DEFAULT_DATABASE).parse().expect("url");
    let pool = store::connect_lazy(options, &store::PoolConfig::default());
    store::migrate(&pool).await.expect("migrate");
    let key = create_key(&pool, Role::Admin).await;
    let mut options = test_options();
    options.calls.default_deadline = OUTAGE_DEADLINE;
    let server = serve_on(pool.clone(), options).await;
    let plain = raw_channel(server.addr).await;
    let c = Clients::new(authed(plain.clone(), &key));
    let mut setup = c.clone();
    setup
        .programs
        .create_program(pb::CreateProgramRequest {
            request_id: String::new(),
            program: Some(program("Chongqing 2015")),
            program_id: "cq".into(),
        })
        .await
        .unwrap();
    setup
        .indicators
        .create_indicator(pb::CreateIndicatorRequest {
            request_id: String::new(),
            indicator: Some(indicator("Offshore outsourcing")),
            indicator_id: "cq-offshore".into(),
        })
        .await
        .unwrap();
    setup
        .observations
        .batch_create_observations(pb::BatchCreateObservationsRequest {
            request_id: String::new(),
            observations: vec![obs(
                "indicators/cq-offshore/observations/2020",
                "22.8",
                pb::observation::Status::Normal,
            )],
            validate_only: false,
        })
        .await
        .unwrap();
    (pg, pool, server, plain, c)
}

/// One outage of kind `how` and the recovery from it, as clients see them. `n` keeps
/// the names written apart between outages.
async fn outage_and_recovery(
    pg: &EmbeddedPostgres,
    plain: &Channel,
    c: &Clients,
    how: Outage,
    n: usize,
) {
    // Before: everything works (and the pool holds several connections).
    let before = run_all(every_kind_of_call(c, n, None)).await;
    assert!(before.iter().all(|o| o.1.is_ok()), "{}", show(&before));
    wait_health(plain, ServingStatus::Serving, Duration::from_secs(5)).await;

    // The database goes away.
    match how {
        Outage::Fast => stop_postgres(pg, "fast").await,
        Outage::Immediate => stop_postgres(pg, "immediate").await,
        Outage::Frozen => signal_cluster(pg.data_dir(), nix::sys::signal::Signal::SIGSTOP),
    }
    let thaw = (how == Outage::Frozen).then(|| Thaw(pg.data_dir().to_owned()));
    // Calls without a client deadline fail UNAVAILABLE (retryable), never INTERNAL or
    // UNKNOWN, within the pool's acquire timeout (5 s) and a margin; when the database
    // hangs, DEADLINE_EXCEEDED or UNAVAILABLE by the server's deadline. Health turns
    // NOT_SERVING meanwhile. Twice: the second round finds no pooled connection left
    // to fail fast on (and no cached API key).
    let unbounded_bound = match how {
        Outage::Frozen => OUTAGE_DEADLINE + Duration::from_millis(500),
        _ => Duration::from_secs(7),
    };
    for round in 1..=2 {
        if round == 2 {
            // Past the API key cache's lifetime: the key is checked again.
            tokio::time::sleep(tradewatch::calls::KEY_CACHE_TTL).await;
        }
        let (outage, not_serving) = tokio::join!(
            run_all(every_kind_of_call(c, n + round, None)),
            wait_health(plain, ServingStatus::NotServing, Duration::from_secs(5)),
        );
        println!(
            "{how:?}, round {round}, no deadline (NOT_SERVING after {not_serving:?}):\n{}",
            show(&outage)
        );
        for (what, r, took) in &outage {
            let status = r.as_ref().expect_err(what);
            if how == Outage::Frozen {
                assert!(
                    matches!(status.code(), Code::DeadlineExceeded | Code::Unavailable),
                    "{how:?}: {what}: {status:?}"
                );
            } else {
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "{how:?}: {what}: {status:?}"
                );
            }
            assert!(*took < unbounded_bound, "{how:?}: {what} took {took:?}");
        }
    }
    // With a client deadline of 2 s: the answer arrives by then, DEADLINE_EXCEEDED or
    // UNAVAILABLE. (The server answers DEADLINE_EXCEEDED 5 ms before the deadline; on
    // a loaded machine the tonic client's own timer may win the race, which it
    // reports as CANCELLED "Timeout expired".)
    let outage = run_all(every_kind_of_call(c, n + 3, Some(Duration::from_secs(2)))).await;
    println!("{how:?}, with a 2 s deadline:\n{}", show(&outage));
    for (what, r, took) in &outage {
        let status = r.as_ref().expect_err(what);
        let client_timer = status.code() == Code::Cancelled
            && status.message() == "Timeout expired"
            && *took >= Duration::from_millis(1990);
        assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Unavailable) || client_timer,
            "{how:?}: {what}: {status:?}"
        );
        assert!(
            *took < Duration::from_millis(2300),
            "{how:?}: {what} took {took:?}"
        );
    }
    assert_eq!(
        health(plain).await.unwrap(),
        ServingStatus::NotServing as i32
    );

    // The database comes back: health turns SERVING and calls succeed, with the same
    // server process. A pooled connection from before may fail its first call
    // (UNAVAILABLE, retryable) and is then replaced.
    match how {
        Outage::Fast | Outage::Immediate => start_postgres(pg).await,
        Outage::Frozen => drop(thaw),
    }
    let back = Instant::now();
    wait_health(plain, ServingStatus::Serving, Duration::from_secs(15)).await;
    let mut failures = Vec::new();
    let mut consecutive = 0;
    let mut k = n + 4;
    while consecutive < 3 {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "{how:?}: calls did not recover within 15 s: {failures:?}"
        );
        k += 1;
        let round = run_all(every_kind_of_call(c, k, None)).await;
        if round.iter().all(|o| o.1.is_ok()) {
            consecutive += 1;
        } else {
            consecutive = 0;
            failures.push(show(&round));
        }
        for (what, r, _) in &round {
            if let Err(s) = r {
                assert_eq!(
                    s.code(),
                    Code::Unavailable,
                    "{how:?}: {what} after the restart: {s:?}"
                );
            }
        }
    }
    println!(
        "{how:?}: recovered after {:?}; failures: {failures:?}",
        back.elapsed()
    );
    // Nothing refused during the outage was written.
    for m in n + 1..=n + 3 {
        let err = c
            .programs
            .clone()
            .get_program(pb::GetProgramRequest {
                name: format!("programs/outage-{m}"),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{how:?}");
    }
}

#[tokio::test]
async fn calls_fail_unavailable_while_postgres_is_down_and_recover_when_it_is_back() {
    let (pg, pool, server, plain, c) = outage_fixture().await;
    outage_and_recovery(&pg, &plain, &c, Outage::Fast, 0).await;
    outage_and_recovery(&pg, &plain, &c, Outage::Immediate, 100).await;
    drop(server);
    pool.close().await;
    pg.stop().await.expect("stop the private cluster");
}

#[tokio::test]
async fn calls_end_by_their_deadline_while_postgres_hangs_and_recover_when_it_thaws() {
    let (pg, pool, server, plain, c) = outage_fixture().await;
    outage_and_recovery(&pg, &plain, &c, Outage::Frozen, 0).await;
    drop(server);
    pool.close().await;
    pg.stop().await.expect("stop the private cluster");
}

// ---------------------------------------------------------------------------------------
// Clients that cancel at random moments

/// What became of one call of the storm.
#[derive(Debug)]
enum Fate {
    /// Answered OK.
    Ok,
    /// Answered with an error status.
    Failed(Code, String),
    /// The client dropped the call before an answer came.
    Dropped,
}

/// One call of the storm, planned from the seeded generator.
#[derive(Debug, Clone)]
enum Op {
    CreateProgram(String),
    UpdateProgram(usize, u64),
    CreateInitiative(String),
    /// Marker value, indicator, years.
    Batch(u64, usize, Vec<i32>),
    /// Marker value, indicator, whether the client ends its stream.
    Import(u64, usize, bool),
    Series(usize),
    Scorecard,
    List(usize),
}

/// How a call is cut short: a `grpc-timeout` sent to the server, the client dropping
/// the call's future, or both.
#[derive(Debug, Clone, Copy)]
struct Cut {
    deadline: Option<Duration>,
    drop_after: Option<Duration>,
}

/// Rows of each import message, and messages per import.
const IMPORT_ROWS: usize = 3;
const IMPORT_MESSAGES: usize = 2;
/// Rows of each batch.
const BATCH_ROWS: usize = 5;
/// First marker value of imports (batches count from 1).
const IMPORT_MARKER: u64 = 1_000_000;

fn plan(rng: &mut rand::rngs::StdRng, round: usize, slot: usize, marker: &mut u64) -> (Op, Cut) {
    use rand::Rng as _;
    use rand::seq::index::sample;
    let mut next = || {
        *marker += 1;
        *marker
    };
    let op = match rng.random_range(0..8) {
        0 => Op::CreateProgram(format!("c-{round}-{slot}")),
        1 => Op::UpdateProgram(rng.random_range(0..4), next()),
        2 => Op::CreateInitiative(format!("i-{round}-{slot}")),
        3 | 4 => {
            let years = sample(rng, 200, BATCH_ROWS)
                .into_iter()
                .map(|y| 1900 + y as i32)
                .collect();
            Op::Batch(next(), rng.random_range(0..2), years)
        }
        5 => Op::Import(
            IMPORT_MARKER + next(),
            rng.random_range(0..2),
            rng.random_bool(0.5),
        ),
        6 => {
            if rng.random_bool(0.5) {
                Op::Series(rng.random_range(0..2))
            } else {
                Op::Scorecard
            }
        }
        _ => Op::List(rng.random_range(0..2)),
    };
    let t = Duration::from_millis(rng.random_range(0..=30));
    let cut = match (matches!(op, Op::Import(..)), rng.random_range(0..3)) {
        // An import's stream may stay open: the client always gives up at some point.
        (true, 0) => Cut {
            deadline: Some(t),
            drop_after: Some(t * 2),
        },
        (true, _) => Cut {
            deadline: None,
            drop_after: Some(t),
        },
        (false, 0) => Cut {
            deadline: Some(t),
            drop_after: None,
        },
        (false, 1) => Cut {
            deadline: None,
            drop_after: Some(t),
        },
        (false, _) => Cut {
            deadline: Some(t),
            drop_after: Some(t),
        },
    };
    (op, cut)
}

fn year_rows(marker: u64, indicator: usize, years: &[i32]) -> Vec<pb::Observation> {
    years
        .iter()
        .map(|y| {
            obs(
                &format!("indicators/storm-{indicator}/observations/{y}"),
                &marker.to_string(),
                pb::observation::Status::Normal,
            )
        })
        .collect()
}

/// Runs `op` on `c` and cuts it short as `cut` says.
async fn run_op(mut c: Clients, op: Op, cut: Cut) -> Fate {
    let d = cut.deadline;
    let call = async move {
        match op {
            Op::CreateProgram(id) => c
                .programs
                .create_program(req(
                    pb::CreateProgramRequest {
                        request_id: String::new(),
                        program: Some(program("Storm")),
                        program_id: id,
                    },
                    d,
                ))
                .await
                .map(drop),
            Op::UpdateProgram(k, n) => c
                .programs
                .update_program(req(
                    pb::UpdateProgramRequest {
                        program: Some(pb::Program {
                            name: format!("programs/storm-{k}"),
                            title: format!("Storm {n}"),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["title".into()],
                        }),
                    },
                    d,
                ))
                .await
                .map(drop),
            Op::CreateInitiative(id) => c
                .programs
                .create_initiative(req(
                    pb::CreateInitiativeRequest {
                        parent: "programs/storm-0".into(),
                        initiative: Some(crate::helpers::initiative("Storm")),
                        initiative_id: id,
                        request_id: String::new(),
                    },
                    d,
                ))
                .await
                .map(drop),
            Op::Batch(marker, ind, years) => c
                .observations
                .batch_create_observations(req(
                    pb::BatchCreateObservationsRequest {
                        request_id: String::new(),
                        observations: year_rows(marker, ind, &years),
                        validate_only: false,
                    },
                    d,
                ))
                .await
                .map(drop),
            Op::Import(marker, ind, complete) => {
                import_call(&mut c.observations, marker, ind, complete, d).await
            }
            Op::Series(ind) => c
                .reports
                .query_series(req(
                    pb::QuerySeriesRequest {
                        indicator: format!("indicators/storm-{ind}"),
                        transform: pb::Transform::PercentChangeYearAgo as i32,
                        ..Default::default()
                    },
                    d,
                ))
                .await
                .map(drop),
            Op::Scorecard => c
                .reports
                .get_program_scorecard(req(
                    pb::GetProgramScorecardRequest {
                        name: "programs/storm-0".into(),
                        as_of: None,
                    },
                    d,
                ))
                .await
                .map(drop),
            Op::List(ind) => c
                .observations
                .list_observations(req(
                    pb::ListObservationsRequest {
                        parent: format!("indicators/storm-{ind}"),
                        page_size: 100,
                        ..Default::default()
                    },
                    d,
                ))
                .await
                .map(drop),
        }
    };
    let result = match cut.drop_after {
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(r) => r,
            Err(_) => return Fate::Dropped,
        },
        None => call.await,
    };
    match result {
        Ok(()) => Fate::Ok,
        Err(s) => Fate::Failed(s.code(), s.message().to_owned()),
    }
}

/// ImportObservations of [`IMPORT_MESSAGES`] messages; with `complete` false the
/// client's stream stays open after them (the client then gives up at some point).
async fn import_call(
    client: &mut ObservationServiceClient<Ch>,
    marker: u64,
    ind: usize,
    complete: bool,
    deadline: Option<Duration>,
) -> Result<(), tonic::Status> {
    // Message m holds rows for the years 2150 + 10 m + i: the same periods in every
    // import, told apart by the marker value.
    let messages: Vec<pb::ImportObservationsRequest> = (0..IMPORT_MESSAGES)
        .map(|m| {
            let years: Vec<i32> = (0..IMPORT_ROWS)
                .map(|i| (2150 + 10 * m + i) as i32)
                .collect();
            pb::ImportObservationsRequest {
                request_id: String::new(),
                validate_only: false,
                observations: year_rows(marker, ind, &years),
            }
        })
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel(IMPORT_MESSAGES);
    for m in messages {
        tx.send(m).await.expect("room for every message");
    }
    if complete {
        drop(tx);
    } else {
        // The sender lives as long as the call: the stream stays open.
        tokio::spawn(async move {
            tx.closed().await;
        });
    }
    client
        .import_observations(req(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            deadline,
        ))
        .await
        .map(drop)
}

/// Sessions of the server (application `tradewatch`) inside a transaction, and the
/// advisory locks held in the test's database.
async fn leftovers(observer: &PgPool) -> (Vec<(i32, String, String)>, Vec<(i32, String)>) {
    let open: Vec<(i32, String, String)> = sqlx::query_as(
        "SELECT pid, state, left(query, 80) FROM pg_stat_activity \
          WHERE datname = current_database() AND application_name = 'tradewatch' \
            AND (state LIKE 'idle in transaction%' OR backend_xid IS NOT NULL \
                 OR xact_start < now() - interval '2 seconds')",
    )
    .fetch_all(observer)
    .await
    .unwrap();
    let locks: Vec<(i32, String)> = sqlx::query_as(
        "SELECT pid, mode FROM pg_locks WHERE locktype = 'advisory' \
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(observer)
    .await
    .unwrap();
    (open, locks)
}

/// Waits (up to 5 s: a dropped call's handler is dropped once the server reads the
/// client's RST_STREAM) until no server session is inside a transaction and no advisory
/// lock is held; returns what is left.
async fn settle(observer: &PgPool) -> (Vec<(i32, String, String)>, Vec<(i32, String)>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = leftovers(observer).await;
        if (left.0.is_empty() && left.1.is_empty()) || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Rounds of the storm, concurrent calls per round.
const STORM_ROUNDS: usize = 300;
const STORM_WIDTH: usize = 8;

#[tokio::test]
async fn clients_cancelling_at_random_moments_leave_no_open_transaction_or_lock() {
    use rand::{Rng as _, SeedableRng as _};
    let seed: u64 = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("storm seed {seed} (rerun with FAULTS_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut app = crate::helpers::spawn_app().await;
    for k in 0..4 {
        app.create_program(&format!("storm-{k}")).await;
    }
    for k in 0..2 {
        app.create_indicator(&format!("storm-{k}")).await;
    }
    let c = Clients::new(app.channel().await);
    // The test's checks use a pool of their own (app.pool is the server's).
    let observer = PgPool::connect_with(
        app.pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name("tw-storm-observer"),
    )
    .await
    .unwrap();

    let mut marker = 0u64;
    let mut unexpected = Vec::new();
    let mut acknowledged: Vec<Op> = Vec::new();
    let mut fates = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..STORM_ROUNDS {
        let planned: Vec<(Op, Cut)> = (0..STORM_WIDTH)
            .map(|slot| plan(&mut rng, round, slot, &mut marker))
            .collect();
        let calls = planned
            .iter()
            .map(|(op, cut)| tokio::spawn(run_op(c.clone(), op.clone(), *cut)));
        let results = futures_util::future::join_all(calls).await;
        for ((op, cut), fate) in planned.into_iter().zip(results) {
            let fate = fate.expect("the call's task");
            let key = match &fate {
                Fate::Ok => "OK".to_owned(),
                Fate::Failed(code, _) => format!("{code:?}"),
                Fate::Dropped => "dropped".to_owned(),
            };
            *fates.entry(key).or_default() += 1;
            match fate {
                Fate::Ok => acknowledged.push(op),
                Fate::Dropped | Fate::Failed(Code::DeadlineExceeded | Code::Cancelled, _) => {}
                // An import that reaches an indicator written to after it began rolls
                // back and says so: the client sends it again.
                Fate::Failed(Code::Aborted, _) if matches!(op, Op::Import(..)) => {}
                Fate::Failed(code, message) => unexpected.push(format!(
                    "round {round}: {op:?} cut {cut:?}: {code:?} {message}"
                )),
            }
        }
        if round % 50 == 49 || round + 1 == STORM_ROUNDS {
            let (open, locks) = settle(&observer).await;
            assert!(
                open.is_empty() && locks.is_empty(),
                "seed {seed}, after round {round}: sessions in a transaction {open:?}, \
                 advisory locks {locks:?}"
            );
            // A burst of normal calls: all succeed.
            let mut burst = Vec::new();
            for n in 0..3 {
                burst.extend(every_kind_of_call_on(&c, round * 10 + n));
            }
            let outcomes = run_all(burst).await;
            if !outcomes.iter().all(|o| o.1.is_ok()) {
                let sessions: Vec<(i32, String)> =
                    sqlx::query_as(
                        "SELECT pid, concat_ws(' ', state, wait_event, left(query, 120)) FROM pg_stat_activity \
                          WHERE datname = current_database() AND xact_start IS NOT NULL",
                    )
                    .fetch_all(&observer)
                    .await
                    .unwrap();
                panic!(
                    "seed {seed}, after round {round}:\n{}\nsessions in a transaction: {sessions:?}",
                    show(&outcomes)
                );
            }
        }
    }
    println!("fates: {fates:?}");
    // The storm is a mix: calls answered, calls cut by their deadline, calls dropped.
    for fate in ["OK", "Cancelled", "dropped"] {
        assert!(
            fates.get(fate).is_some_and(|n| *n > 0),
            "seed {seed}: no call was {fate}: {fates:?}"
        );
    }
    assert!(
        unexpected.is_empty(),
        "seed {seed}: unexpected answers:\n{}",
        unexpected.join("\n")
    );

    // Every write is all or nothing, and every acknowledged one is there.
    let per_marker: std::collections::HashMap<String, i64> =
        sqlx::query_as("SELECT value::text, count(*) FROM observation_versions GROUP BY value")
            .fetch_all(&observer)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for (value, n) in &per_marker {
        if value == "0" {
            // The bursts' single rows.
            continue;
        }
        let expected = if value.parse::<u64>().unwrap() > IMPORT_MARKER {
            IMPORT_ROWS * IMPORT_MESSAGES
        } else {
            BATCH_ROWS
        };
        assert_eq!(*n as usize, expected, "seed {seed}: rows of write {value}");
    }
    for op in &acknowledged {
        match op {
            Op::Batch(m, ..) | Op::Import(m, ..) => assert!(
                per_marker.contains_key(&m.to_string()),
                "seed {seed}: acknowledged {op:?} is missing"
            ),
            Op::CreateProgram(id) => {
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM programs WHERE program_id = $1")
                        .bind(id)
                        .fetch_one(&observer)
                        .await
                        .unwrap();
                assert_eq!(n, 1, "seed {seed}: acknowledged {op:?} is missing");
            }
            _ => {}
        }
    }
    observer.close().await;
}

/// The burst of [`every_kind_of_call`], on the storm's programme and indicator names.
fn every_kind_of_call_on(c: &Clients, n: usize) -> Vec<Attempt> {
    let mut out = Vec::new();
    for (i, op) in [
        Op::CreateProgram(format!("burst-{n}")),
        Op::UpdateProgram(n % 4, n as u64),
        Op::CreateInitiative(format!("burst-{n}")),
        Op::Batch(0, 0, vec![1850 + (n % 50) as i32]),
        Op::Series(0),
        Op::Scorecard,
        Op::List(1),
    ]
    .into_iter()
    .enumerate()
    {
        let c = c.clone();
        let names = [
            "CreateProgram",
            "UpdateProgram",
            "CreateInitiative",
            "BatchCreateObservations",
            "QuerySeries",
            "GetProgramScorecard",
            "ListObservations",
        ];
        out.push(timed(names[i], async move {
            match run_op(
                c,
                op,
                Cut {
                    deadline: None,
                    drop_after: None,
                },
            )
            .await
            {
                Fate::Ok => Ok(()),
                Fate::Failed(code, message) => Err(tonic::Status::new(code, message)),
                Fate::Dropped => unreachable!(),
            }
        }));
    }
    out
}

// ---------------------------------------------------------------------------------------
// SIGKILL among acknowledged writes

/// Indicators of the kill test; batch `b` writes the twelve months of year `1800 + b / 4`
/// of two of them.
const KILL_INDICATORS: usize = 8;
/// Rows of one batch of the kill test.
const KILL_BATCH_ROWS: usize = 24;

/// Write `n` of the kill test: every third a CreateProgram, else a batch.
#[derive(Debug, Clone, PartialEq)]
enum Write {
    Program(String),
    Batch(usize),
}

fn write_of(n: usize) -> Write {
    if n % 3 == 2 {
        Write::Program(format!("k-{n}"))
    } else {
        Write::Batch(n - n / 3)
    }
}

/// The rows of batch `b`, each valued `b.<month>`.
fn kill_batch(b: usize) -> Vec<pb::Observation> {
    let pair = 2 * (b % 4);
    let year = 1800 + b / 4;
    (pair..pair + 2)
        .flat_map(|ind| {
            (1..=12).map(move |m| {
                obs(
                    &format!("indicators/k-{ind}/observations/{year}-M{m:02}"),
                    &format!("{b}.{m}"),
                    pb::observation::Status::Normal,
                )
            })
        })
        .collect()
}

/// Sends writes `from..` one after the other until one fails; returns those
/// acknowledged and the one that failed, with its error.
async fn write_until_failure(
    channel: Ch,
    from: usize,
) -> (Vec<Write>, Option<(Write, tonic::Status)>) {
    let mut programs = ProgramServiceClient::new(channel.clone());
    let mut observations = ObservationServiceClient::new(channel);
    let mut acked = Vec::new();
    for n in from.. {
        let w = write_of(n);
        let result = match &w {
            Write::Program(id) => programs
                .create_program(pb::CreateProgramRequest {
                    request_id: String::new(),
                    program: Some(program("Killed")),
                    program_id: id.clone(),
                })
                .await
                .map(drop),
            Write::Batch(b) => observations
                .batch_create_observations(pb::BatchCreateObservationsRequest {
                    request_id: String::new(),
                    observations: kill_batch(*b),
                    validate_only: false,
                })
                .await
                .map(|r| assert_eq!(r.into_inner().inserted, KILL_BATCH_ROWS as i64)),
        };
        match result {
            Ok(()) => acked.push(w),
            Err(e) => return (acked, Some((w, e))),
        }
    }
    (acked, None)
}

/// What a client reads back: every observation (name → value) and programme name.
async fn read_back(channel: Ch) -> (std::collections::HashMap<String, String>, Vec<String>) {
    let mut observations = ObservationServiceClient::new(channel.clone());
    let mut values = std::collections::HashMap::new();
    for ind in 0..KILL_INDICATORS {
        let mut token = String::new();
        loop {
            let page = observations
                .list_observations(pb::ListObservationsRequest {
                    parent: format!("indicators/k-{ind}"),
                    page_size: 1000,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            values.extend(page.observations.into_iter().map(|o| (o.name, o.value)));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
    }
    let mut programs = ProgramServiceClient::new(channel);
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = programs
            .list_programs(pb::ListProgramsRequest {
                filter: String::new(),
                order_by: String::new(),
                page_size: 1000,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        names.extend(page.programs.into_iter().map(|p| p.name));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    (values, names)
}

/// How many rows of batch `b` a client sees, with the right values.
fn rows_of(values: &std::collections::HashMap<String, String>, b: usize) -> usize {
    kill_batch(b)
        .iter()
        .filter(|o| values.get(&o.name) == Some(&o.value))
        .count()
}

#[tokio::test]
async fn a_server_killed_among_acknowledged_writes_keeps_every_one_and_no_partial_batch() {
    use crate::crash::ServerProcess;
    use rand::{Rng as _, SeedableRng as _};
    let seed: u64 = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("kill seed {seed} (rerun with FAULTS_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let db = crate::helpers::create_database().await;
    let observer = PgPool::connect_with(db.options.clone().application_name("tw-kill-observer"))
        .await
        .unwrap();
    let server = ServerProcess::start(&db).await;
    let mut indicators = IndicatorServiceClient::new(server.channel.clone());
    for k in 0..KILL_INDICATORS {
        let mut monthly = indicator(&format!("Killed {k}"));
        monthly.frequency = pb::Frequency::Monthly as i32;
        indicators
            .create_indicator(pb::CreateIndicatorRequest {
                request_id: String::new(),
                indicator: Some(monthly),
                indicator_id: format!("k-{k}"),
            })
            .await
            .unwrap();
    }

    let mut server = Some(server);
    let mut next = 0;
    let mut acked: Vec<Write> = Vec::new();
    let mut unsure: Vec<Write> = Vec::new();
    for round in 0..3 {
        let mut running = server.take().expect("a running server");
        let writer = tokio::spawn(write_until_failure(running.channel.clone(), next));
        let at = Duration::from_millis(rng.random_range(100..1500));
        tokio::time::sleep(at).await;
        assert!(
            !writer.is_finished(),
            "seed {seed}: the writer stopped early"
        );
        running.kill();
        let (done, failed) = tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("the writer's call ends when the server dies")
            .unwrap();
        let (w, status) = failed.expect("a write fails when the server dies");
        println!(
            "round {round}: killed after {at:?}, {} writes acknowledged, then {w:?}: {:?} {}",
            done.len(),
            status.code(),
            status.message()
        );
        next = match &w {
            Write::Program(id) => id[2..].parse::<usize>().unwrap() + 1,
            Write::Batch(b) => (b / 2) * 3 + b % 2 + 1,
        };
        assert_eq!(write_of(next - 1), w);
        acked.extend(done);
        unsure.push(w);
        // PostgreSQL notices the dead client and rolls its open transaction back.
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::helpers::count(
            &observer,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND application_name = 'tradewatch'",
        )
        .await
            > 0
        {
            assert!(
                Instant::now() < deadline,
                "the killed server's sessions stay"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Restart on the same database and read back as a client.
        let restarted = ServerProcess::start(&db).await;
        let (values, programs) = read_back(restarted.channel.clone()).await;
        for n in 0..next + 5 {
            let w = write_of(n);
            let known = acked.contains(&w);
            let maybe = unsure.contains(&w);
            match &w {
                Write::Batch(b) => {
                    let rows = rows_of(&values, *b);
                    if known {
                        assert_eq!(rows, KILL_BATCH_ROWS, "seed {seed}: acknowledged {w:?}");
                    } else if maybe {
                        println!("  unacknowledged {w:?}: {rows} rows");
                        assert!(
                            rows == 0 || rows == KILL_BATCH_ROWS,
                            "seed {seed}: {w:?} is partial: {rows} rows"
                        );
                    } else {
                        assert_eq!(rows, 0, "seed {seed}: {w:?} was never sent");
                    }
                }
                Write::Program(id) => {
                    let there = programs.contains(&format!("programs/{id}"));
                    if known {
                        assert!(there, "seed {seed}: acknowledged {w:?} is missing");
                    } else if !maybe {
                        assert!(!there, "seed {seed}: {w:?} was never sent");
                    }
                }
            }
        }
        // No other rows than those of the batches, and one commit per batch present.
        let batches_present = (0..next)
            .filter_map(|n| match write_of(n) {
                Write::Batch(b) if rows_of(&values, b) > 0 => Some(b),
                _ => None,
            })
            .count();
        assert_eq!(values.len(), batches_present * KILL_BATCH_ROWS);
        // A write stamps all its versions with one instant.
        let commits: Vec<i64> = sqlx::query_scalar(
            "SELECT count(*) FROM observation_versions GROUP BY known_from ORDER BY known_from",
        )
        .fetch_all(&observer)
        .await
        .unwrap();
        assert_eq!(
            commits,
            vec![KILL_BATCH_ROWS as i64; batches_present],
            "seed {seed}"
        );
        server = Some(restarted);
    }
    drop(server);
    observer.close().await;
}

// ---------------------------------------------------------------------------------------
// Graceful shutdown with a call in flight

/// The grace the server is started with.
const GRACE: Duration = Duration::from_secs(3);

/// Waits until the process exits; returns its status and when, or `None` after
/// `patience`.
async fn wait_exit(
    server: &mut crate::crash::ServerProcess,
    patience: Duration,
) -> Option<(std::process::ExitStatus, Instant)> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = server.child.try_wait().expect("child status") {
            return Some((status, Instant::now()));
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts the binary with `--shutdown-grace 3s`, creates `programs/held`, locks its
/// row in a transaction of the test's own, and starts an UpdateProgram on it, which
/// waits for the lock. Returns the server, the lock's transaction and the call.
async fn call_waiting_on_a_lock(
    db: &crate::helpers::TestDatabase,
    observer: &PgPool,
) -> (
    crate::crash::ServerProcess,
    sqlx::Transaction<'static, sqlx::Postgres>,
    tokio::task::JoinHandle<Result<pb::Program, tonic::Status>>,
) {
    let server = crate::crash::ServerProcess::start_with(db, &["--shutdown-grace", "3s"]).await;
    let mut programs = ProgramServiceClient::new(server.channel.clone());
    programs
        .create_program(pb::CreateProgramRequest {
            request_id: String::new(),
            program: Some(program("Held")),
            program_id: "held".into(),
        })
        .await
        .unwrap();
    let mut lock = observer.begin().await.unwrap();
    sqlx::query("SELECT program_id FROM programs WHERE program_id = 'held' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let call = tokio::spawn(async move {
        programs
            .update_program(pb::UpdateProgramRequest {
                program: Some(pb::Program {
                    name: "programs/held".into(),
                    title: "Updated while shutting down".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            })
            .await
            .map(|r| r.into_inner())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::helpers::count(
        observer,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
           AND application_name = 'tradewatch' AND wait_event_type = 'Lock'",
    )
    .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the update never waited on the lock"
        );
        assert!(
            !call.is_finished(),
            "the update did not wait: {:?}",
            call.await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (server, lock, call)
}

fn sigterm(server: &crate::crash::ServerProcess) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the server");
}

/// After SIGTERM, new calls are refused and not executed: a new connection is refused
/// (a new client's call fails UNAVAILABLE), and once the client has seen the server's
/// GOAWAY, a call on a connection opened before fails too (UNAVAILABLE, or CANCELLED
/// "connection closed" from the client's transport). Waits up to 1 s for the listener
/// to close.
async fn assert_new_calls_refused(server: &crate::crash::ServerProcess, old: Ch, n: usize) {
    let url = format!("http://{}", server.addr);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match Channel::from_shared(url.clone()).unwrap().connect().await {
            Err(_) => break,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "new connections are still accepted 1 s after SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let fresh = authed(Channel::from_shared(url).unwrap().connect_lazy(), "any-key");
    let create = |channel: Ch, id: String| async move {
        ProgramServiceClient::new(channel)
            .create_program(pb::CreateProgramRequest {
                request_id: String::new(),
                program: Some(program("After SIGTERM")),
                program_id: id,
            })
            .await
    };
    let err = create(fresh, format!("new-client-{n}"))
        .await
        .expect_err("a new client's call after SIGTERM is refused");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = create(old, format!("old-connection-{n}"))
        .await
        .expect_err("a new call on an old connection after SIGTERM is refused");
    println!("a new call on an old connection: {err:?}");
    assert!(
        matches!(err.code(), Code::Unavailable | Code::Cancelled),
        "{err:?}"
    );
}

/// Programmes created by the calls [`assert_new_calls_refused`] made: none may exist.
async fn refused_calls_left_nothing(observer: &PgPool) {
    let n = crate::helpers::count(
        observer,
        "SELECT count(*) FROM programs WHERE program_id LIKE 'new-client-%' \
            OR program_id LIKE 'old-connection-%'",
    )
    .await;
    assert_eq!(n, 0, "a call refused after SIGTERM was executed");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_call_finish_and_exits_zero() {
    let db = crate::helpers::create_database().await;
    let observer = PgPool::connect_with(db.options.clone().application_name("tw-grace-observer"))
        .await
        .unwrap();
    let (mut server, lock, call) = call_waiting_on_a_lock(&db, &observer).await;
    let other = server.channel.clone();

    sigterm(&server);
    let signalled = Instant::now();
    assert_new_calls_refused(&server, other, 1).await;
    assert!(!call.is_finished(), "the in-flight call was cut");

    // The lock goes after about a second: the call completes, and the server exits 0.
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(signalled.elapsed())).await;
    lock.rollback().await.unwrap();
    let updated = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the in-flight call answers")
        .unwrap()
        .unwrap_or_else(|e| panic!("the in-flight call failed: {e:?}\n{}", server.log()));
    assert_eq!(updated.title, "Updated while shutting down");
    let (status, at) = wait_exit(&mut server, GRACE + Duration::from_secs(2))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the server did not exit within grace + 2 s\n{}",
                server.log()
            )
        });
    println!("exited {status} after {:?}", at - signalled);
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(at - signalled < GRACE + Duration::from_secs(2));
    refused_calls_left_nothing(&observer).await;
    observer.close().await;
}

#[tokio::test]
async fn sigterm_with_a_call_stuck_past_the_grace_still_exits_in_bounded_time() {
    let db = crate::helpers::create_database().await;
    let observer = PgPool::connect_with(db.options.clone().application_name("tw-grace-observer"))
        .await
        .unwrap();
    let (mut server, lock, call) = call_waiting_on_a_lock(&db, &observer).await;
    let other = server.channel.clone();

    sigterm(&server);
    let signalled = Instant::now();
    assert_new_calls_refused(&server, other, 2).await;

    // The lock is never released while the server runs: the drain gives up after the
    // grace and the process exits.
    let exited = wait_exit(&mut server, GRACE + Duration::from_secs(2)).await;
    let cut = tokio::time::timeout(Duration::from_secs(1), call).await;
    lock.rollback().await.unwrap();
    let (status, at) = exited.unwrap_or_else(|| {
        panic!(
            "the server did not exit within grace + 2 s\n{}",
            server.log()
        )
    });
    println!(
        "exited {status} after {:?}; the call: {cut:?}",
        at - signalled
    );
    assert!(at - signalled >= GRACE, "exited before the grace was over");
    assert!(status.success(), "{status}\n{}", server.log());
    let cut = cut
        .expect("the cut call answers once the server is gone")
        .unwrap();
    assert!(cut.is_err(), "the cut call was not acknowledged: {cut:?}");
    // Its transaction dies with the server's connection: once the lock is gone, the
    // update is rolled back, not applied behind the client's back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::helpers::count(
        &observer,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
           AND application_name = 'tradewatch'",
    )
    .await
        > 0
    {
        assert!(Instant::now() < deadline, "the server's sessions stay");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let title: String = sqlx::query_scalar("SELECT title FROM programs WHERE program_id = 'held'")
        .fetch_one(&observer)
        .await
        .unwrap();
    assert_eq!(title, "Held");
    refused_calls_left_nothing(&observer).await;
    observer.close().await;
}
