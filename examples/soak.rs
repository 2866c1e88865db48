//! Soak-test client: CONCURRENCY workers over a few HTTP/2 connections run a weighted mix
//! of reads and writes against a running server for a fixed time, count every call by
//! method and gRPC status code, print a summary table and exit non-zero if any call
//! failed. `bench/soak.sh` builds it, starts a server and runs it; see BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example soak -- --server http://127.0.0.1:50051 --key "$TRADEWATCH_KEY" \
//!     --setup --duration 300 --concurrency 32 --seed 1
//! ```
//!
//! Everything it writes is SYNTHETIC: indicators `soak-01` … `soak-12` and `soak-tmp-…`,
//! programme `soak-programme`, titles starting with "SYNTHETIC". None of it is a real
//! statistic.
//!
//! - `--setup` first creates the synthetic data the mix reads (idempotent: what exists
//!   is kept): 12 monthly indicators, 12 × 240 observations (2005-M01 … 2024-M12) through
//!   one ImportObservations stream, and a programme of 3 areas and 6 measures (each
//!   listing one indicator) with 4 targets. Its calls are not counted in the summary.
//!   With `--duration 0` it only sets up.
//! - The mix (per mille of worker iterations, see [`MIX`]): GetProgram, ListInitiatives,
//!   GetTarget, ListObservations, QuerySeries, GetTargetProgress, GetProgramScorecard,
//!   ListPrograms with a filter; BatchCreateObservations of 3–5 observations with new
//!   values (real revisions), half of them with a `request_id` and then sent again with
//!   the same id, whose counts must equal the first answer's (AIP-155 replay); UpdateTarget of a
//!   title; CreateIndicator + DeleteIndicator (with its etag) of a worker-unique id; and
//!   now and then an ImportObservations stream of one indicator's 240 months in 3
//!   messages, about a fifth of them changed.
//! - Every call carries a deadline (`--timeout`, default 30 s). A worker starts no new
//!   iteration after `--duration`, and finishes the one it is in, so no call is cut.
//! - A failure is any status other than OK (transport errors included, under the code
//!   tonic gives them), an answer that does not list the observations sent, or a replay
//!   whose counts differ from the original answer's. An answer or a replay that lists a
//!   later version of an observation (another worker's, committed since) is reported
//!   under "seen, not counted as failures".
//!
//! The last line of output is machine-readable:
//! `summary: calls=N failures=N seconds=S calls_per_s=R p50_ms=… p90_ms=… p99_ms=… max_ms=…`.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::indicator_service_client::IndicatorServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;
use tradewatch::proto::v1::program_service_client::ProgramServiceClient;
use tradewatch::proto::v1::reporting_service_client::ReportingServiceClient;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Soak test: a weighted mix of reads and writes for a fixed time")]
struct Args {
    /// Server address.
    #[arg(
        long,
        env = "TRADEWATCH_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// API key with the editor or admin role (writes need it).
    #[arg(long, env = "TRADEWATCH_KEY", hide_env_values = true)]
    key: String,
    /// How long the mix runs, e.g. `300s`, `5m` or `300`; 0: set up only.
    #[arg(long, default_value = "300s", value_parser = tradewatch::config::parse_duration)]
    duration: Duration,
    /// Concurrent workers, each with one call in flight at a time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the workers share (worker i uses connection i mod N).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seed of the workers' random choices (worker i uses seed + i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Create the synthetic data first (idempotent).
    #[arg(long)]
    setup: bool,
    /// Deadline of every call.
    #[arg(long, default_value = "30s", value_parser = tradewatch::config::parse_duration)]
    timeout: Duration,
}

// ---------------------------------------------------------------------------------------
// The synthetic data
// ---------------------------------------------------------------------------------------

/// Synthetic indicators `soak-01` … `soak-NN`.
const INDICATORS: usize = 12;
/// Months per indicator, from 2005-M01 (to 2024-M12).
const MONTHS: usize = 240;
const START_YEAR: usize = 2005;
const PROGRAM_ID: &str = "soak-programme";
const SEED_PROGRAM: &str = "programs/cq-2015-service-trade";
const SEED_TARGET: &str = "programs/cq-2015-service-trade/targets/services-trade-2020";
/// Areas of the synthetic programme, each with `MEASURES` measures.
const AREAS: usize = 3;
const MEASURES: usize = 2;
const TARGETS: usize = 4;
const CATEGORIES: [&str; 6] = ["SC", "SD", "SF", "SG", "SI", "SJ"];

fn indicator_id(i: usize) -> String {
    format!("soak-{i:02}")
}

fn indicator_name(i: usize) -> String {
    format!("indicators/{}", indicator_id(i))
}

fn target_name(t: usize) -> String {
    format!("programs/{PROGRAM_ID}/targets/target-{t}")
}

/// SDMX monthly period of month index `m` (0 = 2005-M01).
fn period(m: usize) -> String {
    format!("{}-M{:02}", START_YEAR + m / 12, m % 12 + 1)
}

/// The original synthetic value of indicator `i` in month `m`, in 10^4 USD: about 5 %
/// growth a year with a ±5 % wobble.
fn value(i: usize, m: usize) -> f64 {
    let level = 1000.0 + ((i * 7919) % 9991) as f64;
    let wobble = 1.0 + 0.005 * (((i * 31 + m * 17) % 21) as f64 - 10.0);
    (level * 1.004f64.powi(m as i32) * wobble * 100.0).round() / 100.0
}

fn annual(i: usize, year: usize) -> f64 {
    let first = (year - START_YEAR) * 12;
    (first..first + 12).map(|m| value(i, m)).sum()
}

fn observation(i: usize, m: usize, v: f64, comment: &str) -> pb::Observation {
    let status = if m + 3 >= MONTHS {
        pb::observation::Status::Provisional
    } else {
        pb::observation::Status::Normal
    };
    pb::Observation {
        name: format!("{}/observations/{}", indicator_name(i), period(m)),
        value: format!("{v:.2}"),
        status: status as i32,
        comment: comment.to_owned(),
        source: "SYNTHETIC examples/soak.rs".to_owned(),
        ..Default::default()
    }
}

fn indicator_spec(title: String, category: &str) -> pb::Indicator {
    pb::Indicator {
        title,
        description: "Synthetic data written by examples/soak.rs; not real statistics.".into(),
        unit: "USD".into(),
        unit_multiplier: 4,
        frequency: pb::Frequency::Monthly as i32,
        flow: pb::indicator::Flow::Export as i32,
        service_category: category.into(),
        region: "CN-CQ".into(),
        aggregation: pb::indicator::Aggregation::Sum as i32,
        direction: pb::Direction::HigherIsBetter as i32,
        source_agency: "SYNTHETIC (examples/soak.rs)".into(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// Adds `authorization: Bearer KEY` to every call.
#[derive(Clone)]
struct Auth(MetadataValue<Ascii>);

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Conn = InterceptedService<Channel, Auth>;

#[derive(Clone)]
struct Clients {
    programs: ProgramServiceClient<Conn>,
    indicators: IndicatorServiceClient<Conn>,
    observations: ObservationServiceClient<Conn>,
    reports: ReportingServiceClient<Conn>,
}

impl Clients {
    fn new(channel: Channel, auth: Auth) -> Self {
        let conn = InterceptedService::new(channel, auth);
        Self {
            programs: ProgramServiceClient::new(conn.clone()),
            indicators: IndicatorServiceClient::new(conn.clone()),
            observations: ObservationServiceClient::new(conn.clone()),
            reports: ReportingServiceClient::new(conn),
        }
    }
}

async fn connect(server: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("--server {server:?} is not a URL like http://127.0.0.1:50051"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {server}"))
}

// ---------------------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------------------

/// Calls of one method: latencies (µs) and status codes.
#[derive(Default)]
struct MethodStats {
    latencies_us: Vec<u32>,
    codes: BTreeMap<&'static str, u64>,
    /// Failures that are not a status code (a replay that differs).
    mismatches: u64,
}

impl MethodStats {
    fn failures(&self) -> u64 {
        self.codes
            .iter()
            .filter(|(c, _)| **c != "OK")
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.mismatches
    }
}

/// One worker's counts, merged at the end.
#[derive(Default)]
struct Stats {
    methods: BTreeMap<&'static str, MethodStats>,
    /// The first few failures, for the report.
    samples: Vec<String>,
    /// Things seen that are not failures, by kind, with a few examples.
    notes: BTreeMap<&'static str, (u64, Vec<String>)>,
}

const SAMPLES: usize = 20;

impl Stats {
    /// Runs one call, timing it and counting its code under `method`.
    async fn call<T>(
        &mut self,
        method: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Option<T> {
        let start = Instant::now();
        let result = call.await;
        let us = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let m = self.methods.entry(method).or_default();
        m.latencies_us.push(us);
        match result {
            Ok(response) => {
                *m.codes.entry("OK").or_default() += 1;
                Some(response.into_inner())
            }
            Err(status) => {
                *m.codes.entry(code_name(status.code())).or_default() += 1;
                if self.samples.len() < SAMPLES {
                    self.samples.push(format!(
                        "{method}: {}: {}",
                        code_name(status.code()),
                        status.message()
                    ));
                }
                None
            }
        }
    }

    fn mismatch(&mut self, method: &'static str, what: String) {
        self.methods.entry(method).or_default().mismatches += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(format!("{method}: {what}"));
        }
    }

    fn note(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        let (n, examples) = self.notes.entry(kind).or_default();
        *n += 1;
        if examples.len() < 3 {
            examples.push(example());
        }
    }

    fn merge(&mut self, other: Stats) {
        for (method, o) in other.methods {
            let m = self.methods.entry(method).or_default();
            m.latencies_us.extend(o.latencies_us);
            for (code, n) in o.codes {
                *m.codes.entry(code).or_default() += n;
            }
            m.mismatches += o.mismatches;
        }
        for s in other.samples {
            if self.samples.len() < SAMPLES {
                self.samples.push(s);
            }
        }
        for (kind, (n, examples)) in other.notes {
            let (m, mine) = self.notes.entry(kind).or_default();
            *m += n;
            for e in examples {
                if mine.len() < 3 {
                    mine.push(e);
                }
            }
        }
    }
}

fn code_name(code: Code) -> &'static str {
    tradewatch::calls::code_name(code)
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

// ---------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------

/// Accepts OK and ALREADY_EXISTS; anything else stops the setup.
fn created<T>(what: &str, r: Result<tonic::Response<T>, Status>) -> anyhow::Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(s) if s.code() == Code::AlreadyExists => Ok(false),
        Err(s) => bail!("setup: {what}: {:?}: {}", s.code(), s.message()),
    }
}

async fn setup(c: &mut Clients) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut new = 0;
    for i in 1..=INDICATORS {
        let r = c
            .indicators
            .create_indicator(pb::CreateIndicatorRequest {
                indicator_id: indicator_id(i),
                indicator: Some(indicator_spec(
                    format!("SYNTHETIC soak-test indicator {i:02}"),
                    CATEGORIES[i % CATEGORIES.len()],
                )),
                request_id: String::new(),
            })
            .await;
        new += usize::from(created(&indicator_id(i), r)?);
    }
    println!(
        "setup: {INDICATORS} SYNTHETIC monthly indicators soak-01..soak-{INDICATORS:02} ({new} new)"
    );

    // The original values of every month, in one stream of three messages.
    let rows: Vec<pb::Observation> = (1..=INDICATORS)
        .flat_map(|i| (0..MONTHS).map(move |m| observation(i, m, value(i, m), "")))
        .collect();
    let total = rows.len();
    let messages: Vec<pb::ImportObservationsRequest> = rows
        .chunks(1000)
        .map(|chunk| pb::ImportObservationsRequest {
            observations: chunk.to_vec(),
            ..Default::default()
        })
        .collect();
    let r = c
        .observations
        .import_observations(tokio_stream::iter(messages))
        .await
        .map_err(|s| anyhow::anyhow!("setup: import: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    println!(
        "setup: imported {total} SYNTHETIC observations ({INDICATORS} x {MONTHS} months, {}..{}): {} inserted, {} revised, {} unchanged",
        period(0),
        period(MONTHS - 1),
        r.inserted,
        r.revised,
        r.unchanged
    );

    let r = c
        .programs
        .create_program(pb::CreateProgramRequest {
            program_id: PROGRAM_ID.into(),
            program: Some(pb::Program {
                title: "SYNTHETIC soak-test programme (examples/soak.rs)".into(),
                issuing_body: "SYNTHETIC".into(),
                jurisdiction: "CN-CQ".into(),
                start_year: 2015,
                end_year: 2025,
                summary: "Synthetic programme of the soak test; not a real policy.".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await;
    created(PROGRAM_ID, r)?;
    let parent = format!("programs/{PROGRAM_ID}");
    let mut n = 0;
    for a in 1..=AREAS {
        let area = format!("area-{a}");
        let ids: Vec<(String, Option<String>)> = std::iter::once((area.clone(), None))
            .chain((1..=MEASURES).map(|m| (format!("measure-{a}-{m}"), Some(area.clone()))))
            .collect();
        for (id, par) in ids {
            n += 1;
            let r = c
                .programs
                .create_initiative(pb::CreateInitiativeRequest {
                    parent: parent.clone(),
                    initiative_id: id.clone(),
                    initiative: Some(pb::Initiative {
                        parent_initiative: par
                            .map(|p| format!("{parent}/initiatives/{p}"))
                            .unwrap_or_default(),
                        title: format!("SYNTHETIC initiative {id}"),
                        state: pb::initiative::State::Active as i32,
                        indicators: vec![indicator_name(n)],
                        position: n as i32,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await;
            created(&id, r)?;
        }
    }
    for t in 1..=TARGETS {
        let base = annual(t, 2015);
        let mut target = if t % 2 == 0 {
            pb::Target {
                kind: pb::target::Kind::GrowthRate as i32,
                target_value: "6".into(),
                baseline_period: "2015".into(),
                ..Default::default()
            }
        } else {
            pb::Target {
                kind: pb::target::Kind::Level as i32,
                unit_multiplier: 4,
                target_value: format!("{:.2}", base * 1.6),
                baseline_value: format!("{base:.2}"),
                baseline_period: "2015".into(),
                ..Default::default()
            }
        };
        target.title = format!("SYNTHETIC target {t}");
        target.indicator = indicator_name(t);
        target.initiative = format!("{parent}/initiatives/area-{}", (t - 1) % AREAS + 1);
        target.target_period = "2025".into();
        target.direction = pb::Direction::HigherIsBetter as i32;
        let r = c
            .programs
            .create_target(pb::CreateTargetRequest {
                parent: parent.clone(),
                target_id: format!("target-{t}"),
                target: Some(target),
                request_id: String::new(),
            })
            .await;
        created(&format!("target-{t}"), r)?;
    }
    println!(
        "setup: SYNTHETIC programme {parent}: {AREAS} areas, {} initiatives, {TARGETS} targets; setup took {:.1} s",
        AREAS * (1 + MEASURES),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The mix
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    GetProgram,
    ListInitiatives,
    GetTarget,
    ListObservations,
    QuerySeries,
    GetTargetProgress,
    GetProgramScorecard,
    ListPrograms,
    BatchCreateObservations,
    UpdateTarget,
    CreateDeleteIndicator,
    ImportObservations,
}

/// Per mille of worker iterations. Reads are 64 %; CreateDeleteIndicator is two calls.
const MIX: [(Op, u32); 12] = [
    (Op::GetProgram, 80),
    (Op::ListInitiatives, 60),
    (Op::GetTarget, 80),
    (Op::ListObservations, 100),
    (Op::QuerySeries, 135),
    (Op::GetTargetProgress, 90),
    (Op::GetProgramScorecard, 40),
    (Op::ListPrograms, 60),
    (Op::BatchCreateObservations, 200),
    (Op::UpdateTarget, 70),
    (Op::CreateDeleteIndicator, 80),
    (Op::ImportObservations, 5),
];

const RETRY: &str = "BatchCreateObservations (retry, same request_id)";
const NOTE_REPLAY_NEWER: &str = "a replay listed a newer version of an observation than the original answer (the response's observations are read at answer time, not stored with the request id)";
const NOTE_ANSWER_NEWER: &str =
    "an answer listed another writer's later version instead of the value sent";

/// Decimal strings that denote the same number (`10.5` and `10.50`).
fn same_value(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// A timestamp, comparable.
fn instant(t: &Option<prost_types::Timestamp>) -> Option<(i64, i32)> {
    t.as_ref().map(|t| (t.seconds, t.nanos))
}

/// A timestamp as `seconds.nanoseconds`.
fn ts(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .map_or_else(String::new, |t| format!("{}.{:09}", t.seconds, t.nanos))
}

struct Worker {
    id: usize,
    c: Clients,
    rng: StdRng,
    timeout: Duration,
    seq: u64,
    stats: Stats,
}

impl Worker {
    fn req<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.set_timeout(self.timeout);
        r
    }

    fn pick_op(&mut self) -> Op {
        let mut x = self.rng.random_range(0..1000u32);
        for (op, w) in MIX {
            if x < w {
                return op;
            }
            x -= w;
        }
        Op::GetProgram
    }

    fn program(&mut self) -> String {
        if self.rng.random_bool(0.5) {
            SEED_PROGRAM.to_owned()
        } else {
            format!("programs/{PROGRAM_ID}")
        }
    }

    fn indicator(&mut self) -> usize {
        self.rng.random_range(1..=INDICATORS)
    }

    async fn run(mut self, end: Instant) -> Stats {
        while Instant::now() < end {
            let op = self.pick_op();
            self.step(op).await;
        }
        self.stats
    }

    async fn step(&mut self, op: Op) {
        self.seq += 1;
        match op {
            Op::GetProgram => {
                let name = self.program();
                let r = self.req(pb::GetProgramRequest { name });
                self.stats
                    .call("GetProgram", self.c.programs.get_program(r))
                    .await;
            }
            Op::ListInitiatives => {
                let parent = self.program();
                let (filter, order_by) = if self.rng.random_bool(0.5) {
                    ("parent_initiative = \"\" AND state = ACTIVE", "position")
                } else {
                    ("", "")
                };
                let r = self.req(pb::ListInitiativesRequest {
                    parent,
                    page_size: 50,
                    filter: filter.into(),
                    order_by: order_by.into(),
                    ..Default::default()
                });
                self.stats
                    .call("ListInitiatives", self.c.programs.list_initiatives(r))
                    .await;
            }
            Op::GetTarget => {
                let name = if self.rng.random_bool(0.2) {
                    SEED_TARGET.to_owned()
                } else {
                    target_name(self.rng.random_range(1..=TARGETS))
                };
                let r = self.req(pb::GetTargetRequest { name });
                self.stats
                    .call("GetTarget", self.c.programs.get_target(r))
                    .await;
            }
            Op::ListObservations => {
                let i = self.indicator();
                let first = self.rng.random_range(START_YEAR..START_YEAR + 15);
                let years = self.rng.random_range(1..=5);
                let r = self.req(pb::ListObservationsRequest {
                    parent: indicator_name(i),
                    start_period: format!("{first}-M01"),
                    end_period: format!("{}-M12", first + years - 1),
                    page_size: 500,
                    ..Default::default()
                });
                self.stats
                    .call("ListObservations", self.c.observations.list_observations(r))
                    .await;
            }
            Op::QuerySeries => {
                let i = self.indicator();
                let (start, end, frequency) = match self.rng.random_range(0..3) {
                    0 => ("2011", "2020", pb::Frequency::Annual),
                    1 => ("2018-Q1", "2024-Q4", pb::Frequency::Quarterly),
                    _ => ("2020-M01", "2024-M12", pb::Frequency::Monthly),
                };
                let transform = match self.rng.random_range(0..4) {
                    0 => pb::Transform::Level,
                    1 => pb::Transform::ChangeYearAgo,
                    2 => pb::Transform::PercentChangeYearAgo,
                    _ => pb::Transform::PercentChange,
                };
                let r = self.req(pb::QuerySeriesRequest {
                    indicator: indicator_name(i),
                    start_period: start.into(),
                    end_period: end.into(),
                    frequency: frequency as i32,
                    transform: transform as i32,
                    ..Default::default()
                });
                self.stats
                    .call("QuerySeries", self.c.reports.query_series(r))
                    .await;
            }
            Op::GetTargetProgress => {
                let name = if self.rng.random_bool(0.1) {
                    SEED_TARGET.to_owned()
                } else {
                    target_name(self.rng.random_range(1..=TARGETS))
                };
                let r = self.req(pb::GetTargetProgressRequest {
                    name,
                    ..Default::default()
                });
                self.stats
                    .call("GetTargetProgress", self.c.reports.get_target_progress(r))
                    .await;
            }
            Op::GetProgramScorecard => {
                let name = if self.rng.random_bool(0.2) {
                    SEED_PROGRAM.to_owned()
                } else {
                    format!("programs/{PROGRAM_ID}")
                };
                let r = self.req(pb::GetProgramScorecardRequest { name, as_of: None });
                self.stats
                    .call(
                        "GetProgramScorecard",
                        self.c.reports.get_program_scorecard(r),
                    )
                    .await;
            }
            Op::ListPrograms => {
                let r = self.req(pb::ListProgramsRequest {
                    filter: "jurisdiction = \"CN-CQ\" AND start_year >= 2015".into(),
                    order_by: "start_year desc, title".into(),
                    page_size: 10,
                    ..Default::default()
                });
                self.stats
                    .call("ListPrograms", self.c.programs.list_programs(r))
                    .await;
            }
            Op::BatchCreateObservations => self.batch_create().await,
            Op::UpdateTarget => {
                let t = self.rng.random_range(1..=TARGETS);
                let title = format!(
                    "SYNTHETIC target {t} (soak worker {} update {})",
                    self.id, self.seq
                );
                let r = self.req(pb::UpdateTargetRequest {
                    target: Some(pb::Target {
                        name: target_name(t),
                        title,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["title".into()],
                    }),
                });
                self.stats
                    .call("UpdateTarget", self.c.programs.update_target(r))
                    .await;
            }
            Op::CreateDeleteIndicator => {
                let id = format!("soak-tmp-w{}-{}", self.id, self.seq);
                let r = self.req(pb::CreateIndicatorRequest {
                    indicator_id: id.clone(),
                    indicator: Some(indicator_spec(
                        format!("SYNTHETIC soak-test temporary indicator {id}"),
                        "SJ",
                    )),
                    request_id: String::new(),
                });
                let created = self
                    .stats
                    .call("CreateIndicator", self.c.indicators.create_indicator(r))
                    .await;
                if let Some(ind) = created {
                    let r = self.req(pb::DeleteIndicatorRequest {
                        name: ind.name,
                        etag: ind.etag,
                        force: false,
                    });
                    self.stats
                        .call("DeleteIndicator", self.c.indicators.delete_indicator(r))
                        .await;
                }
            }
            Op::ImportObservations => self.import().await,
        }
    }

    /// 3–5 observations of one indicator at distinct recent months, with new values.
    async fn batch_create(&mut self) {
        let i = self.indicator();
        let n = self.rng.random_range(3..=5);
        let mut months: Vec<usize> = Vec::with_capacity(n);
        while months.len() < n {
            let m = self.rng.random_range(MONTHS - 60..MONTHS);
            if !months.contains(&m) {
                months.push(m);
            }
        }
        let comment = format!("SYNTHETIC soak revision w{} #{}", self.id, self.seq);
        let observations = months
            .iter()
            .map(|&m| {
                let v = value(i, m) * self.rng.random_range(0.9..1.1);
                observation(i, m, v, &comment)
            })
            .collect();
        let request_id = if self.rng.random_bool(0.5) {
            uuid::Uuid::new_v4().to_string()
        } else {
            String::new()
        };
        let message = pb::BatchCreateObservationsRequest {
            observations,
            validate_only: false,
            request_id,
        };
        let retry = !message.request_id.is_empty();
        let r = self.req(message.clone());
        let Some(first) = self
            .stats
            .call(
                "BatchCreateObservations",
                self.c.observations.batch_create_observations(r),
            )
            .await
        else {
            return;
        };
        // The answer lists the observations as written; another writer's later version
        // of one of them means the answer was read after a later commit.
        for (sent, got) in message.observations.iter().zip(&first.observations) {
            if got.name != sent.name {
                self.stats.mismatch(
                    "BatchCreateObservations",
                    format!("answer lists {} where {} was sent", got.name, sent.name),
                );
            } else if !same_value(&got.value, &sent.value) {
                self.stats.note(NOTE_ANSWER_NEWER, || {
                    format!(
                        "{}: sent {}, answer has {} (known from {})",
                        sent.name,
                        sent.value,
                        got.value,
                        ts(&got.known_from)
                    )
                });
            }
        }
        if first.observations.len() != message.observations.len() {
            self.stats.mismatch(
                "BatchCreateObservations",
                format!(
                    "{} observations in the answer, {} sent",
                    first.observations.len(),
                    message.observations.len()
                ),
            );
        }
        if !retry {
            return;
        }
        // The same request with the same request_id: applied once, the original counts.
        let r = self.req(message);
        let Some(again) = self
            .stats
            .call(RETRY, self.c.observations.batch_create_observations(r))
            .await
        else {
            return;
        };
        let counts = |r: &pb::BatchCreateObservationsResponse| (r.inserted, r.revised, r.unchanged);
        if counts(&again) != counts(&first) || again.observations.len() != first.observations.len()
        {
            self.stats.mismatch(
                RETRY,
                format!(
                    "the replay's counts differ from the original answer's (inserted/revised/unchanged {:?} vs {:?}, {} vs {} observations)",
                    counts(&again),
                    counts(&first),
                    again.observations.len(),
                    first.observations.len()
                ),
            );
            return;
        }
        for (a, b) in first.observations.iter().zip(&again.observations) {
            if a == b {
                continue;
            }
            if a.name == b.name && instant(&b.known_from) > instant(&a.known_from) {
                // Not a failure of the call: the replay shows a version committed since.
                self.stats.note(NOTE_REPLAY_NEWER, || {
                    format!(
                        "{}: original answer {} (known from {}), replay {} (known from {})",
                        a.name,
                        a.value,
                        ts(&a.known_from),
                        b.value,
                        ts(&b.known_from)
                    )
                });
            } else {
                self.stats.mismatch(
                    RETRY,
                    format!("the replay differs from the original answer: {a:?} vs {b:?}"),
                );
            }
        }
    }

    /// One indicator's 240 months in 3 messages, about a fifth of them with new values.
    async fn import(&mut self) {
        let i = self.indicator();
        let comment = format!("SYNTHETIC soak import w{} #{}", self.id, self.seq);
        let rows: Vec<pb::Observation> = (0..MONTHS)
            .map(|m| {
                if self.rng.random_bool(0.2) {
                    let v = value(i, m) * self.rng.random_range(0.9..1.1);
                    observation(i, m, v, &comment)
                } else {
                    observation(i, m, value(i, m), "")
                }
            })
            .collect();
        let messages: Vec<pb::ImportObservationsRequest> = rows
            .chunks(MONTHS / 3)
            .map(|chunk| pb::ImportObservationsRequest {
                observations: chunk.to_vec(),
                ..Default::default()
            })
            .collect();
        let r = self.req(tokio_stream::iter(messages));
        self.stats
            .call(
                "ImportObservations",
                self.c.observations.import_observations(r),
            )
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if args.concurrency == 0 || args.connections == 0 {
        bail!("--concurrency and --connections must be at least 1");
    }
    let auth = Auth(
        format!("Bearer {}", args.key.trim())
            .parse()
            .context("--key must be printable ASCII")?,
    );
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections.min(args.concurrency) {
        channels.push(connect(&args.server).await?);
    }
    if args.setup {
        setup(&mut Clients::new(channels[0].clone(), auth.clone())).await?;
    }
    if args.duration.is_zero() {
        return Ok(true);
    }

    println!(
        "soak: {} workers over {} HTTP/2 connections to {} for {} s, seed {}",
        args.concurrency,
        channels.len(),
        args.server,
        args.duration.as_secs_f64(),
        args.seed
    );
    let started = Instant::now();
    let end = started + args.duration;
    let mut tasks = Vec::with_capacity(args.concurrency);
    for id in 0..args.concurrency {
        let worker = Worker {
            id,
            c: Clients::new(channels[id % channels.len()].clone(), auth.clone()),
            rng: StdRng::seed_from_u64(args.seed.wrapping_add(id as u64)),
            timeout: args.timeout,
            seq: 0,
            stats: Stats::default(),
        };
        tasks.push(tokio::spawn(worker.run(end)));
    }
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(t.await.context("a worker panicked")?);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(report(&mut stats, seconds))
}

/// Prints the table and the summary line; true when nothing failed.
fn report(stats: &mut Stats, seconds: f64) -> bool {
    println!();
    println!(
        "{:<50} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9}  codes",
        "method", "calls", "failed", "calls/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut all: Vec<u32> = Vec::new();
    let (mut calls, mut failures) = (0u64, 0u64);
    for (method, m) in stats.methods.iter_mut() {
        m.latencies_us.sort_unstable();
        let n = m.latencies_us.len() as u64;
        let f = m.failures();
        calls += n;
        failures += f;
        all.extend_from_slice(&m.latencies_us);
        let mut codes: Vec<String> = m.codes.iter().map(|(c, n)| format!("{c}:{n}")).collect();
        if m.mismatches > 0 {
            codes.push(format!("replay-mismatch:{}", m.mismatches));
        }
        println!(
            "{:<50} {:>9} {:>8} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2}  {}",
            method,
            n,
            f,
            n as f64 / seconds,
            percentile_ms(&m.latencies_us, 50.0),
            percentile_ms(&m.latencies_us, 90.0),
            percentile_ms(&m.latencies_us, 99.0),
            m.latencies_us
                .last()
                .map_or(f64::NAN, |v| f64::from(*v) / 1000.0),
            codes.join(",")
        );
    }
    all.sort_unstable();
    let (p50, p90, p99) = (
        percentile_ms(&all, 50.0),
        percentile_ms(&all, 90.0),
        percentile_ms(&all, 99.0),
    );
    let max = all.last().map_or(f64::NAN, |v| f64::from(*v) / 1000.0);
    println!(
        "{:<50} {:>9} {:>8} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
        "all",
        calls,
        failures,
        calls as f64 / seconds,
        p50,
        p90,
        p99,
        max
    );
    if !stats.samples.is_empty() {
        println!();
        println!("first failures:");
        for s in &stats.samples {
            println!("  {s}");
        }
    }
    if !stats.notes.is_empty() {
        println!();
        println!("seen, not counted as failures:");
        for (kind, (n, examples)) in &stats.notes {
            println!("  {n} x {kind}, e.g.");
            for e in examples {
                println!("    {e}");
            }
        }
    }
    println!();
    println!(
        "summary: calls={calls} failures={failures} seconds={seconds:.1} calls_per_s={:.1} p50_ms={p50:.2} p90_ms={p90:.2} p99_ms={p99:.2} max_ms={max:.2}",
        calls as f64 / seconds
    );
    failures == 0
}
