//! Write-throughput client: N writers, each with one BatchCreateObservations call of
//! `--rows` new observations in flight at a time, against one or more servers, for a fixed
//! time after a warm-up. `bench/writes.sh` builds it and runs it in every configuration of
//! the issue "Observation writes that scale"; see BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example writes -- --server http://127.0.0.1:50051 \
//!     --key "$TRADEWATCH_KEY" --setup --writers 16 --duration 10
//! # two replicas of one database: writers alternate between the servers
//! cargo run --release --example writes -- --server http://127.0.0.1:50051 \
//!     --server http://127.0.0.1:50052 --key "$TRADEWATCH_KEY" --setup --writers 16
//! ```
//!
//! Everything it writes is SYNTHETIC: monthly indicators `bench-w000`, `bench-w001`, …
//! (`--prefix`), titles starting with "SYNTHETIC", source "SYNTHETIC examples/writes.rs".
//!
//! - **Indicators.** Writer i writes to indicator lane i, `{prefix}{i:03}`. With
//!   `--share-half`, the writers i >= N/2 write to lane i - N/2 instead: the second half of
//!   the writers share the indicators of the first half, two writers per indicator (with
//!   an odd N the last writer has a lane of its own), so there are N - N/2 lanes.
//! - **Periods.** Every call writes `--rows` monthly periods that nobody wrote before in
//!   this run. A lane hands out its periods in order from one counter, `--rows` at a time,
//!   to whichever of its writers asks next: 1800-M01, 1800-M02, … (the periods a server
//!   accepts are years 1800 to 2200, `tradewatch::domain::period`). So the two writers of a
//!   shared lane always write the same indicator, never the same period, and no writer
//!   repeats one. A monthly indicator has only 4,812 periods (fewer than a fast writer
//!   needs in 10 s), so when they are used up the lane goes on with the next indicator
//!   of the lane: `{prefix}{i:03}-g1`, `-g2`, …. Each server answer must report
//!   `inserted` = `--rows`; anything else is a failure.
//! - **Setup.** At start the client lists the existing indicators (ListIndicators; not
//!   counted). `--setup` creates the missing first indicator of every lane (CreateIndicator,
//!   32 at a time), and lets a lane create its next indicator when it runs out of periods
//!   during the run (reported as "created during the run"; not counted as calls, but its
//!   time is the writer's). Without `--setup` nothing is created: a missing indicator gives
//!   NOT_FOUND failures, and a lane that runs out of periods stops its writers with an
//!   error. With `--duration 0` it only sets up.
//! - **Counting.** Calls are counted by the instant they complete. Those that complete in
//!   the warm-up (`--warmup`, default 2 s) are not counted; then `--duration` seconds are
//!   measured; writers start no call after that, and the calls still in flight complete
//!   ("after the end", not counted). Latency percentiles are over the OK calls of the
//!   measured window. A failure is any status other than OK (transport errors included,
//!   under the code tonic gives them), or an OK answer whose `inserted` is not `--rows`.
//! - **Connections.** `--connections` HTTP/2 connections per server; writer i uses server
//!   i mod S and, on it, connection (i / S) mod C. The runtime has 2 worker threads, to
//!   leave the CPUs to the server and PostgreSQL.
//!
//! Exit status: 0 when no call failed (warm-up included), 1 when one did, 2 on an error of
//! the client itself (bad arguments, no connection, setup failed, periods ran out).
//!
//! The last line of output is machine-readable:
//! `summary: writers=N servers=S calls=N failures=N seconds=S calls_per_s=R p50_ms=… p99_ms=… max_ms=…`
//! (calls and calls_per_s: OK calls of the measured window; failures: failed calls after the
//! warm-up).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tradewatch::domain::period::{MAX_YEAR, MIN_YEAR};
use tradewatch::proto::v1 as pb;
use tradewatch::proto::v1::indicator_service_client::IndicatorServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Write throughput: N writers of BatchCreateObservations for a fixed time")]
struct Args {
    /// Server address; repeat it for several replicas (writer i uses server i mod S).
    #[arg(long = "server", default_value = "http://127.0.0.1:50051")]
    servers: Vec<String>,
    /// API key with the editor or admin role, sent as `authorization: Bearer KEY`.
    #[arg(long, env = "TRADEWATCH_KEY", hide_env_values = true)]
    key: String,
    /// Concurrent writers, each with one call in flight at a time.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Measured time after the warm-up, e.g. `10s`, `1m` or `10`; 0: set up only.
    #[arg(long, default_value = "10s", value_parser = tradewatch::config::parse_duration)]
    duration: Duration,
    /// Warm-up before the measured time; calls that complete in it are not counted.
    #[arg(long, default_value = "2s", value_parser = tradewatch::config::parse_duration)]
    warmup: Duration,
    /// Observations (new periods of one indicator) per call.
    #[arg(long, default_value_t = 10)]
    rows: u32,
    /// Writers i >= N/2 share the indicator of writer i - N/2 (two writers per indicator).
    #[arg(long)]
    share_half: bool,
    /// Create the missing indicators (the first of every lane now, the next ones when a
    /// lane runs out of periods).
    #[arg(long)]
    setup: bool,
    /// Indicator id prefix: lane i writes `{prefix}{i:03}`, then `{prefix}{i:03}-g1`, ….
    #[arg(long, default_value = "bench-w")]
    prefix: String,
    /// HTTP/2 connections per server, shared by its writers.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Deadline of every call.
    #[arg(long, default_value = "30s", value_parser = tradewatch::config::parse_duration)]
    timeout: Duration,
}

// ---------------------------------------------------------------------------------------
// Indicators and periods
// ---------------------------------------------------------------------------------------

/// Monthly periods of one indicator: every month of the years a server accepts.
const PERIODS: u64 = (MAX_YEAR - MIN_YEAR + 1) as u64 * 12;
/// Most indicators per lane (`-g1` … `-g9999`): a guard, not a practical limit.
const MAX_GENERATIONS: u64 = 10_000;
/// CreateIndicator calls in flight during the setup.
const SETUP_INFLIGHT: usize = 32;
const SOURCE: &str = "SYNTHETIC examples/writes.rs";

/// Id of the `generation`-th indicator of `lane`.
fn indicator_id(prefix: &str, lane: usize, generation: u64) -> String {
    if generation == 0 {
        format!("{prefix}{lane:03}")
    } else {
        format!("{prefix}{lane:03}-g{generation}")
    }
}

fn indicator_spec(id: &str) -> pb::Indicator {
    pb::Indicator {
        title: format!("SYNTHETIC write-benchmark indicator {id}"),
        description: "Synthetic data written by examples/writes.rs; not real statistics.".into(),
        unit: "USD".into(),
        unit_multiplier: 4,
        frequency: pb::Frequency::Monthly as i32,
        flow: pb::indicator::Flow::Export as i32,
        service_category: "SJ".into(),
        region: "CN-CQ".into(),
        aggregation: pb::indicator::Aggregation::Sum as i32,
        direction: pb::Direction::HigherIsBetter as i32,
        source_agency: "SYNTHETIC (examples/writes.rs)".into(),
        ..Default::default()
    }
}

/// The indicators one or two writers write to, and the counter of their periods.
struct Lane {
    id: usize,
    /// Next period number: generation = n / per_generation, period = n % per_generation.
    next: AtomicU64,
    /// Generations known to exist (0 .. known).
    known: AtomicU32,
    /// Held while a generation is created, so that it is created once.
    creating: tokio::sync::Mutex<()>,
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

async fn connect(server: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("--server {server:?} is not a URL like http://127.0.0.1:50051"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {server}"))
}

fn code_name(code: Code) -> &'static str {
    tradewatch::calls::code_name(code)
}

/// Creates indicator `id`; ALREADY_EXISTS is fine. True when it was created.
async fn create_indicator(
    c: &mut IndicatorServiceClient<Conn>,
    id: String,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let mut r = Request::new(pb::CreateIndicatorRequest {
        indicator: Some(indicator_spec(&id)),
        indicator_id: id.clone(),
        request_id: String::new(),
    });
    r.set_timeout(timeout);
    match c.create_indicator(r).await {
        Ok(_) => Ok(true),
        Err(s) if s.code() == Code::AlreadyExists => Ok(false),
        Err(s) => bail!(
            "CreateIndicator {id}: {}: {}",
            code_name(s.code()),
            s.message()
        ),
    }
}

/// Ids of every existing indicator.
async fn existing_indicators(
    c: &mut IndicatorServiceClient<Conn>,
    timeout: Duration,
) -> anyhow::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    let mut page_token = String::new();
    loop {
        let mut r = Request::new(pb::ListIndicatorsRequest {
            page_size: 1000,
            page_token,
            ..Default::default()
        });
        r.set_timeout(timeout);
        let page = c
            .list_indicators(r)
            .await
            .map_err(|s| {
                anyhow::anyhow!("ListIndicators: {}: {}", code_name(s.code()), s.message())
            })?
            .into_inner();
        for i in page.indicators {
            if let Some(id) = i.name.strip_prefix("indicators/") {
                ids.insert(id.to_owned());
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(ids);
        }
        page_token = page.next_page_token;
    }
}

// ---------------------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------------------

/// When a call completed, relative to the measured window.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Warmup,
    Measured,
    AfterEnd,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Warmup => "warm-up (not counted)",
            Phase::Measured => "measured",
            Phase::AfterEnd => "after the end (not counted)",
        }
    }
}

/// Outcome of a call that answered OK but wrote something else than fresh rows.
const BAD_INSERTED: &str = "OK but inserted != rows";
const SAMPLES: usize = 20;

#[derive(Default)]
struct Stats {
    /// Latencies (ms) of the OK calls of the measured window.
    latencies_ms: Vec<f64>,
    /// Calls by phase and outcome (status code, or BAD_INSERTED).
    codes: BTreeMap<(Phase, &'static str), u64>,
    /// Indicators this writer created during the run.
    created: u64,
    /// The first few failures.
    samples: Vec<String>,
}

impl Stats {
    fn count(&mut self, phase: Phase, outcome: &'static str) {
        *self.codes.entry((phase, outcome)).or_default() += 1;
    }

    fn sample(&mut self, what: impl FnOnce() -> String) {
        if self.samples.len() < SAMPLES {
            self.samples.push(what());
        }
    }

    fn failures(&self, phase: Phase) -> u64 {
        self.codes
            .iter()
            .filter(|((p, c), _)| *p == phase && *c != "OK")
            .map(|(_, n)| n)
            .sum()
    }

    fn merge(&mut self, other: Stats) {
        self.latencies_ms.extend(other.latencies_ms);
        for (k, n) in other.codes {
            *self.codes.entry(k).or_default() += n;
        }
        self.created += other.created;
        for s in other.samples {
            if self.samples.len() < SAMPLES {
                self.samples.push(s);
            }
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------

struct Writer {
    id: usize,
    lane: Arc<Lane>,
    observations: ObservationServiceClient<Conn>,
    indicators: IndicatorServiceClient<Conn>,
    prefix: Arc<str>,
    rows: u32,
    /// Periods used of each indicator: a multiple of `rows`, so no call spans two.
    per_generation: u64,
    setup: bool,
    timeout: Duration,
    stats: Stats,
}

impl Writer {
    async fn run(mut self, warm_end: Instant, end: Instant) -> anyhow::Result<Stats> {
        let rows = u64::from(self.rows);
        // `indicators/{id}/observations/` of the current generation.
        let mut generation = u64::MAX;
        let mut name_prefix = String::new();
        while Instant::now() < end {
            let n = self.lane.next.fetch_add(rows, Ordering::Relaxed);
            let (g, first) = (n / self.per_generation, n % self.per_generation);
            if g != generation {
                self.ensure(g).await?;
                generation = g;
                name_prefix.clear();
                let id = indicator_id(&self.prefix, self.lane.id, g);
                write!(name_prefix, "indicators/{id}/observations/").unwrap();
            }
            let mut observations = Vec::with_capacity(self.rows as usize);
            for k in first..first + rows {
                let mut name = String::with_capacity(name_prefix.len() + 8);
                name.push_str(&name_prefix);
                let year = i64::from(MIN_YEAR) + (k / 12) as i64;
                write!(name, "{year:04}-M{:02}", k % 12 + 1).unwrap();
                let serial = n + k - first;
                observations.push(pb::Observation {
                    name,
                    value: format!("{}.{}", 1000 + serial % 9000, serial % 10),
                    status: pb::observation::Status::Normal as i32,
                    source: SOURCE.to_owned(),
                    ..Default::default()
                });
            }
            let mut r = Request::new(pb::BatchCreateObservationsRequest {
                observations,
                validate_only: false,
                request_id: String::new(),
            });
            r.set_timeout(self.timeout);
            let started = Instant::now();
            let result = self.observations.batch_create_observations(r).await;
            let done = Instant::now();
            let phase = if done < warm_end {
                Phase::Warmup
            } else if done < end {
                Phase::Measured
            } else {
                Phase::AfterEnd
            };
            match result {
                Ok(response) => {
                    let a = response.into_inner();
                    if a.inserted == i64::from(self.rows) {
                        self.stats.count(phase, "OK");
                        if phase == Phase::Measured {
                            self.stats
                                .latencies_ms
                                .push((done - started).as_secs_f64() * 1000.0);
                        }
                    } else {
                        self.stats.count(phase, BAD_INSERTED);
                        let (id, lane, rows) = (self.id, self.lane.id, self.rows);
                        self.stats.sample(|| {
                            format!(
                                "writer {id} (lane {lane}): {rows} new periods from {name_prefix}{}: \
                                 answer says inserted {}, revised {}, unchanged {}",
                                period_text(first),
                                a.inserted,
                                a.revised,
                                a.unchanged
                            )
                        });
                    }
                }
                Err(s) => {
                    let code = code_name(s.code());
                    self.stats.count(phase, code);
                    let id = self.id;
                    self.stats.sample(|| {
                        format!(
                            "writer {id}: {code}: {} ({:.1} ms)",
                            s.message(),
                            (done - started).as_secs_f64() * 1000.0
                        )
                    });
                }
            }
        }
        Ok(self.stats)
    }

    /// Makes sure generation `g` of the lane exists, creating it if allowed.
    async fn ensure(&mut self, g: u64) -> anyhow::Result<()> {
        if g < u64::from(self.lane.known.load(Ordering::Acquire)) {
            return Ok(());
        }
        if g >= MAX_GENERATIONS {
            bail!(
                "lane {} ran out of periods: {MAX_GENERATIONS} indicators of {} periods",
                self.lane.id,
                self.per_generation
            );
        }
        let id = indicator_id(&self.prefix, self.lane.id, g);
        if !self.setup && g == 0 {
            bail!(
                "writer {}: indicator {id} of lane {} does not exist: pass --setup to create it",
                self.id,
                self.lane.id
            );
        }
        if !self.setup {
            bail!(
                "writer {}: lane {} has used every period of its {g} indicator(s) (at most {} \
                 each, {}..{}); {id} does not exist: pass --setup to create it",
                self.id,
                self.lane.id,
                self.per_generation,
                period_text(0),
                period_text(self.per_generation - 1)
            );
        }
        let _turn = self.lane.creating.lock().await;
        if g < u64::from(self.lane.known.load(Ordering::Acquire)) {
            return Ok(());
        }
        create_indicator(&mut self.indicators, id, self.timeout).await?;
        self.stats.created += 1;
        self.lane.known.store(g as u32 + 1, Ordering::Release);
        Ok(())
    }
}

/// SDMX text of the `k`-th monthly period from MIN_YEAR-M01.
fn period_text(k: u64) -> String {
    format!(
        "{:04}-M{:02}",
        i64::from(MIN_YEAR) + (k / 12) as i64,
        k % 12 + 1
    )
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("writes: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("writes: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if args.writers == 0 || args.connections == 0 {
        bail!("--writers and --connections must be at least 1");
    }
    if args.servers.is_empty() {
        bail!("give at least one --server");
    }
    if !(1..=10_000).contains(&args.rows) || u64::from(args.rows) > PERIODS {
        bail!("--rows must be 1..10000 (and at most {PERIODS}, the periods of one indicator)");
    }
    // Longest id: prefix + lane + "-g9999".
    let widest = indicator_id(&args.prefix, args.writers.max(1000), MAX_GENERATIONS - 1);
    if widest.len() > 63
        || !args.prefix.starts_with(|c: char| c.is_ascii_lowercase())
        || !args
            .prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        bail!(
            "--prefix {:?} must start with a-z, hold only a-z, 0-9 and '-', and leave room for \
             ids like {widest:?} (at most 63 characters)",
            args.prefix
        );
    }
    let auth = Auth(
        format!("Bearer {}", args.key.trim())
            .parse()
            .context("--key must be printable ASCII")?,
    );
    let servers = args.servers.len();
    // channels[s][c]: connection c to server s, as many as that server has writers.
    let mut channels: Vec<Vec<Conn>> = Vec::with_capacity(servers);
    for (s, url) in args.servers.iter().enumerate() {
        let writers_here = (args.writers + servers - 1 - s) / servers;
        let mut conns = Vec::new();
        for _ in 0..args.connections.min(writers_here.max(1)) {
            conns.push(InterceptedService::new(connect(url).await?, auth.clone()));
        }
        channels.push(conns);
    }
    let mut admin = IndicatorServiceClient::new(channels[0][0].clone());

    // Lanes and the indicators that already exist.
    let lanes_n = if args.share_half {
        args.writers - args.writers / 2
    } else {
        args.writers
    };
    let existing = existing_indicators(&mut admin, args.timeout).await?;
    let lanes: Vec<Arc<Lane>> = (0..lanes_n)
        .map(|id| {
            let known = (0..MAX_GENERATIONS)
                .take_while(|&g| existing.contains(&indicator_id(&args.prefix, id, g)))
                .count() as u32;
            Arc::new(Lane {
                id,
                next: AtomicU64::new(0),
                known: AtomicU32::new(known),
                creating: tokio::sync::Mutex::new(()),
            })
        })
        .collect();
    if args.setup {
        let started = Instant::now();
        let missing: Vec<usize> = lanes
            .iter()
            .filter(|l| l.known.load(Ordering::Relaxed) == 0)
            .map(|l| l.id)
            .collect();
        let mut created = 0;
        let mut tasks = JoinSet::new();
        for (n, lane) in missing.iter().enumerate() {
            if n >= SETUP_INFLIGHT {
                created += u32::from(tasks.join_next().await.context("setup task")???);
            }
            let mut c = admin.clone();
            let id = indicator_id(&args.prefix, *lane, 0);
            let timeout = args.timeout;
            tasks.spawn(async move { create_indicator(&mut c, id, timeout).await });
        }
        while let Some(r) = tasks.join_next().await {
            created += u32::from(r.context("setup task")??);
        }
        for lane in &lanes {
            if lane.known.load(Ordering::Relaxed) == 0 {
                lane.known.store(1, Ordering::Relaxed);
            }
        }
        println!(
            "setup: {lanes_n} lanes, first indicators {}..{}: {created} created, {} existed, in {:.1} s",
            indicator_id(&args.prefix, 0, 0),
            indicator_id(&args.prefix, lanes_n - 1, 0),
            lanes_n - created as usize,
            started.elapsed().as_secs_f64()
        );
    }
    if args.duration.is_zero() {
        return Ok(true);
    }

    let per_generation = PERIODS / u64::from(args.rows) * u64::from(args.rows);
    let connections: usize = channels.iter().map(Vec::len).sum();
    println!(
        "writes: {} writers ({lanes_n} indicator lanes{}) over {connections} HTTP/2 connections to {servers} server(s) {}, {} rows per call, warm-up {} s, measured {} s, deadline {} s",
        args.writers,
        if args.share_half {
            ", --share-half: writers i >= N/2 share lane i - N/2"
        } else {
            ", one per writer"
        },
        args.servers.join(" "),
        args.rows,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64(),
        args.timeout.as_secs_f64()
    );
    let prefix: Arc<str> = Arc::from(args.prefix.as_str());
    let start = Instant::now();
    let warm_end = start + args.warmup;
    let end = warm_end + args.duration;
    let mut tasks = Vec::with_capacity(args.writers);
    for id in 0..args.writers {
        let lane = if args.share_half && id >= args.writers / 2 {
            id - args.writers / 2
        } else {
            id
        };
        let s = id % servers;
        let conn = channels[s][(id / servers) % channels[s].len()].clone();
        let writer = Writer {
            id,
            lane: lanes[lane].clone(),
            observations: ObservationServiceClient::new(conn.clone()),
            indicators: IndicatorServiceClient::new(conn),
            prefix: prefix.clone(),
            rows: args.rows,
            per_generation,
            setup: args.setup,
            timeout: args.timeout,
            stats: Stats::default(),
        };
        tasks.push(tokio::spawn(writer.run(warm_end, end)));
    }
    let mut stats = Stats::default();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await.context("a writer panicked")? {
            Ok(s) => stats.merge(s),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let finished = start.elapsed().as_secs_f64();
    let ok = report(&args, &mut stats, finished);
    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        bail!(
            "{} writer(s) stopped early, the figures above are not valid:\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    Ok(ok)
}

/// Prints the counts and the summary line; true when no call failed.
fn report(args: &Args, stats: &mut Stats, finished: f64) -> bool {
    let seconds = args.duration.as_secs_f64();
    println!();
    println!("calls by outcome (by the instant they completed):");
    for ((phase, code), n) in &stats.codes {
        println!("  {:<28} {code:<26} {n:>9}", phase.label());
    }
    if stats.created > 0 {
        println!(
            "created during the run: {} indicators (lanes that used up their periods)",
            stats.created
        );
    }
    if !stats.samples.is_empty() {
        println!("first failures:");
        for s in &stats.samples {
            println!("  {s}");
        }
    }
    stats.latencies_ms.sort_unstable_by(f64::total_cmp);
    let l = &stats.latencies_ms;
    let calls = l.len();
    let failures = stats.failures(Phase::Measured) + stats.failures(Phase::AfterEnd);
    let warm_failures = stats.failures(Phase::Warmup);
    let (p50, p90, p99) = (
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
    );
    let max = l.last().copied().unwrap_or(f64::NAN);
    let rate = calls as f64 / seconds;
    println!(
        "measured: {calls} OK calls in {seconds:.1} s = {rate:.1} calls/s, {:.0} rows/s; latency ms p50 {p50:.2}, p90 {p90:.2}, p99 {p99:.2}, max {max:.2}; {failures} failed after the warm-up, {warm_failures} in it; wall {finished:.1} s",
        rate * f64::from(args.rows)
    );
    println!(
        "summary: writers={} servers={} calls={calls} failures={failures} seconds={seconds:.1} calls_per_s={rate:.1} p50_ms={p50:.2} p99_ms={p99:.2} max_ms={max:.2}",
        args.writers,
        args.servers.len()
    );
    failures == 0 && warm_failures == 0
}
