//! Operator commands that are gRPC clients of a running server:
//! - `tradewatch import` and `tradewatch export` (this module);
//! - `tradewatch programs|initiatives|targets|indicators list|get|create|update|delete`
//!   ([`resources`]);
//! - `tradewatch observations get|list|revisions|delete` ([`observations`]);
//! - `tradewatch report progress|series|breakdown|scorecard` ([`report`]).
//!
//! Periods and instants are spelled alike everywhere: `--start` / `--end` for a range
//! of periods ([`values::PeriodRange`]; `--start-period` / `--end-period` are hidden
//! aliases) and `--as-of` for an instant, and they are checked before anything is
//! sent.
//!
//! Every call goes through one [`connect`], which adds `authorization: Bearer KEY`
//! when a key is given. Output is an aligned table ([`table`]) or, with `--json`, the
//! response in the proto3 JSON mapping ([`json`]). Exit codes: 0 success, 1 the server
//! refused or failed the call, 2 the command line is wrong, 3 the server cannot be
//! reached.

pub mod json;
pub mod observations;
pub mod report;
pub mod resources;
pub mod table;
pub mod values;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::proto::v1 as pb;
use crate::proto::v1::observation_service_client::ObservationServiceClient;

/// Where the server is and how to authenticate to it.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address of a running tradewatch server: a URI (http://host:port), or host:port.
    #[arg(
        long,
        env = "TRADEWATCH_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,
    /// API key, sent as `authorization: Bearer KEY` on every call.
    #[arg(long, env = "TRADEWATCH_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// PEM certificate(s) to trust for an `https://` server, besides the system's roots
    /// (e.g. the server's own self-signed certificate, or the CA that signed it). With
    /// it, `host:port` means `https://host:port`.
    #[arg(long, env = "TRADEWATCH_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// Options of every resource and report command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Client")]
pub struct ClientArgs {
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the response as JSON (the proto3 JSON mapping, as grpcurl prints it)
    /// instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The resource and report commands (import and export are separate commands).
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Programmes: list, get, create, update, delete.
    Programs(resources::ProgramsArgs),
    /// Initiatives of a programme: list, get, create, update, delete.
    Initiatives(resources::InitiativesArgs),
    /// Targets of a programme: list, get, create, update, delete.
    Targets(resources::TargetsArgs),
    /// Indicators: list, get, create, update, delete.
    Indicators(resources::IndicatorsArgs),
    /// Observations of an indicator: get, list, revisions, delete.
    Observations(observations::ObservationsArgs),
    /// Reports: target progress, series, vintages, breakdowns, programme scorecards.
    Report(report::ReportArgs),
}

/// Runs a resource or report command, prints its error if any, and returns the exit
/// code.
pub async fn run(command: OperatorCommand) -> ExitCode {
    let result = match command {
        OperatorCommand::Programs(a) => resources::programs(a).await,
        OperatorCommand::Initiatives(a) => resources::initiatives(a).await,
        OperatorCommand::Targets(a) => resources::targets(a).await,
        OperatorCommand::Indicators(a) => resources::indicators(a).await,
        OperatorCommand::Observations(a) => observations::run(a).await,
        OperatorCommand::Report(a) => report::run(a).await,
    };
    exit(result)
}

/// The exit of a client command: success, or its failure printed once and its code.
pub fn exit(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command line is wrong (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The server cannot be reached (exit code 3).
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// The address.
        server: String,
        /// Why, in the words of the innermost error (the transport's outer ones
        /// repeat each other).
        reason: String,
    },
    /// The server answered with an error (exit code 1).
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(#[from] tonic::Status),
    /// Anything else (exit code 1).
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Connect { .. } => 3,
            Failure::Status(_) | Failure::Other(_) => 1,
        }
    }

    /// Prints the failure to standard error.
    pub fn print(&self) {
        match self {
            Failure::Status(status) => print_status(status),
            Failure::Usage(message) => {
                eprintln!("error: {message}\n\nFor more information, try '--help'.")
            }
            other => eprintln!("error: {other}"),
        }
    }
}

/// A command's result.
pub type Outcome = Result<(), Failure>;

/// The canonical name of a gRPC status code, as in `google.rpc.Code`.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Adds `authorization: Bearer KEY` to every call when a key is given.
#[derive(Debug, Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl Auth {
    /// The interceptor for `key`; a key that cannot be sent as a header is a usage
    /// error.
    pub fn new(key: Option<&str>) -> Result<Self, Failure> {
        match key.map(str::trim).filter(|k| !k.is_empty()) {
            None => Ok(Auth(None)),
            Some(k) => format!("Bearer {k}")
                .parse::<MetadataValue<Ascii>>()
                .map(|v| Auth(Some(v)))
                .map_err(|_| {
                    Failure::Usage(
                        "--key / TRADEWATCH_KEY: the key must be printable ASCII".to_owned(),
                    )
                }),
        }
    }
}

impl Interceptor for Auth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A connection to the server that every generated client can use: the channel with
/// the [`Auth`] interceptor.
pub type Conn = InterceptedService<Channel, Auth>;

/// The server's URI: `host:port` (grpcurl's form) means `http://host:port`, or
/// `https://host:port` when a CA certificate is given; a URI with a scheme is taken as
/// it is.
fn server_uri(server: &str, tls: bool) -> String {
    if server.contains("://") {
        server.to_owned()
    } else if tls {
        format!("https://{server}")
    } else {
        format!("http://{server}")
    }
}

/// Connects to the server named by `args`.
pub async fn connect(args: &ServerArgs) -> Result<Conn, Failure> {
    let auth = Auth::new(args.key.as_deref())?;
    let server = &server_uri(&args.server, args.ca_cert.is_some());
    let mut endpoint = Channel::from_shared(server.clone()).map_err(|_| {
        Failure::Usage(format!(
            "--server / TRADEWATCH_SERVER: {server:?} is not a server address like http://127.0.0.1:50051"
        ))
    })?;
    if server.starts_with("https://") {
        // TLS: the system's roots, and the certificates of --ca-cert.
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::Usage(format!(
                    "--ca-cert / TRADEWATCH_CA_CERT: {}: {e}",
                    path.display()
                ))
            })?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Failure::Usage(format!("--server {server:?}: {e}")))?;
    } else if args.ca_cert.is_some() {
        return Err(Failure::Usage(format!(
            "--ca-cert / TRADEWATCH_CA_CERT is for a TLS server, and {server:?} is plaintext: \
             give --server https://HOST:PORT"
        )));
    }
    let channel = endpoint
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| Failure::Connect {
            server: server.clone(),
            reason: anyhow::Error::new(e).root_cause().to_string(),
        })?;
    Ok(InterceptedService::new(channel, auth))
}

/// Parses an RFC 3339 instant given as `flag`.
pub fn parse_instant(flag: &str, text: &str) -> Result<prost_types::Timestamp, Failure> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
        Failure::Usage(format!(
            "{flag} {text:?} is not an RFC 3339 instant like 2021-03-01T00:00:00Z"
        ))
    })?;
    Ok(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    })
}

/// Writes command output to standard output; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) -> Outcome {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Other(
            anyhow::Error::new(e).context("standard output"),
        )),
    }
}

/// `tradewatch import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV file: either `indicator,period,value,status,comment,source` (tradewatch's own
    /// export) or SDMX-CSV with INDICATOR, TIME_PERIOD, OBS_VALUE and optional
    /// OBS_STATUS, COMMENT, SOURCE columns. `-` reads standard input.
    pub file: PathBuf,
    /// Check everything, write nothing.
    #[arg(long)]
    pub validate_only: bool,
    /// Rows per message of the stream.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Export formats of the CLI.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// `indicator,period,value,status,comment,source`.
    Csv,
    /// SDMX-CSV 1.0.
    SdmxCsv,
}

/// `tradewatch export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Only these indicators (ids or `indicators/{id}`); repeatable. Default: all.
    #[arg(long = "indicator")]
    pub indicators: Vec<String>,
    /// Periods, compared within each indicator's frequency by the periods' start.
    #[command(flatten)]
    pub range: values::PeriodRange,
    /// Export as known at this instant (RFC 3339, e.g. 2021-03-01T00:00:00Z); default
    /// now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
    /// Output file; default standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Progress on standard error. On a terminal, a bar (indicatif): percent of the file,
/// rows and rows/s, time left; or a spinner when the size is not known (standard input,
/// an export), and a spinner while the server finishes. Otherwise plain lines, at most
/// one a second (logs of scripts and CI stay readable).
struct Progress {
    started: Instant,
    last: Instant,
    verb: &'static str,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// `total`: the bytes the position counts up to, when known.
    fn new(verb: &'static str, total: Option<u64>) -> Self {
        Self::with_terminal(
            verb,
            total,
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
    }

    fn with_terminal(verb: &'static str, total: Option<u64>, terminal: bool) -> Self {
        let now = Instant::now();
        let bar = terminal.then(|| {
            let target = indicatif::ProgressDrawTarget::stderr_with_hz(10);
            let (bar, template) = match total {
                Some(len) => (
                    indicatif::ProgressBar::with_draw_target(Some(len), target),
                    "{wide_bar} {percent:>3}% {msg}, {eta} left",
                ),
                None => (
                    indicatif::ProgressBar::with_draw_target(None, target),
                    "{spinner} {msg}",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_message(format!("{verb} 0 rows"));
            if total.is_none() {
                bar.enable_steady_tick(Duration::from_millis(100));
            }
            bar
        });
        Self {
            started: now,
            last: now,
            verb,
            bar,
        }
    }

    fn line(&self, rows: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { rows as f64 / secs } else { 0.0 };
        format!(
            "{} {rows} rows in {secs:.1} s ({rate:.0} rows/s)",
            self.verb
        )
    }

    /// `rows` done, `position` bytes of the total.
    fn tick(&mut self, rows: u64, position: u64) {
        let every = if self.bar.is_some() {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        match &self.bar {
            Some(bar) => {
                let secs = self.started.elapsed().as_secs_f64().max(1e-9);
                bar.set_position(position);
                bar.set_message(format!(
                    "{} {rows} rows, {:.0} rows/s",
                    self.verb,
                    rows as f64 / secs
                ));
            }
            None => eprintln!("{}", self.line(rows)),
        }
    }

    /// All rows done: the last line, printed whatever the output.
    fn done(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}", self.line(rows));
    }

    /// While the server finishes (`what`): a spinner on a terminal, one line otherwise.
    fn waiting(&self, what: &str) -> Option<indicatif::ProgressBar> {
        if self.bar.is_none() {
            eprintln!("{what}");
            return None;
        }
        let spinner = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            spinner.set_style(style);
        }
        spinner.set_message(what.to_owned());
        spinner.enable_steady_tick(Duration::from_millis(100));
        Some(spinner)
    }
}

/// Column positions of a CSV file.
struct Columns {
    indicator: usize,
    period: usize,
    value: usize,
    status: Option<usize>,
    comment: Option<usize>,
    source: Option<usize>,
}

impl Columns {
    fn from_header(h: &csv::StringRecord) -> anyhow::Result<Self> {
        let find = |names: &[&str]| {
            h.iter()
                .position(|c| names.iter().any(|n| c.trim().eq_ignore_ascii_case(n)))
        };
        let sdmx = find(&["DATAFLOW"]).is_some() || find(&["TIME_PERIOD"]).is_some();
        let (ind, per, val, st) = if sdmx {
            (
                &["INDICATOR"][..],
                &["TIME_PERIOD"][..],
                &["OBS_VALUE"][..],
                &["OBS_STATUS"][..],
            )
        } else {
            (
                &["indicator"][..],
                &["period"][..],
                &["value"][..],
                &["status"][..],
            )
        };
        Ok(Self {
            indicator: find(ind).with_context(|| format!("the header has no {} column", ind[0]))?,
            period: find(per).with_context(|| format!("the header has no {} column", per[0]))?,
            value: find(val).with_context(|| format!("the header has no {} column", val[0]))?,
            status: find(st),
            comment: find(&["comment"]),
            source: find(&["source"]),
        })
    }

    fn observation(&self, r: &csv::StringRecord) -> anyhow::Result<pb::Observation> {
        let get = |i: usize| r.get(i).unwrap_or("");
        let indicator = get(self.indicator);
        let indicator = indicator.strip_prefix("indicators/").unwrap_or(indicator);
        let status = match self.status.map(get).unwrap_or("") {
            "" => pb::observation::Status::Unspecified,
            code => crate::domain::observation::ObsStatus::from_code(code)
                .map(crate::api::observation_service::status_to_proto)
                .with_context(|| format!("{code:?} is not an SDMX observation status code"))?,
        };
        Ok(pb::Observation {
            name: format!("indicators/{indicator}/observations/{}", get(self.period)),
            value: get(self.value).to_owned(),
            status: status as i32,
            comment: self.comment.map(get).unwrap_or("").to_owned(),
            source: self.source.map(get).unwrap_or("").to_owned(),
            ..Default::default()
        })
    }
}

/// Streams a CSV file into ImportObservations.
pub async fn import(args: ImportArgs) -> Outcome {
    let channel = connect(&args.server).await?;
    let mut client = ObservationServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportObservationsRequest>(4);
    let path = args.file.clone();
    let batch = args.batch as usize;
    let validate_only = args.validate_only;
    // The file is read on a blocking thread and streamed as it is read: memory stays
    // flat however large the file is.
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Progress)> {
        let (input, size): (Box<dyn std::io::Read>, Option<u64>) = if path.as_os_str() == "-" {
            (Box::new(std::io::stdin()), None)
        } else {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let size = file
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            (Box::new(file), size)
        };
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(std::io::BufReader::with_capacity(1 << 20, input));
        let columns = Columns::from_header(csv.headers()?)?;
        let mut progress = Progress::new("sent", size);
        let mut chunk = Vec::with_capacity(batch);
        let mut rows: u64 = 0;
        let mut record = csv::StringRecord::new();
        while csv.read_record(&mut record)? {
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            chunk.push(
                columns
                    .observation(&record)
                    .with_context(|| format!("line {line}"))?,
            );
            rows += 1;
            if chunk.len() == batch {
                let msg = pb::ImportObservationsRequest {
                    validate_only,
                    observations: std::mem::replace(&mut chunk, Vec::with_capacity(batch)),
                    request_id: String::new(),
                };
                if tx.blocking_send(msg).is_err() {
                    // The call ended early (the server refused the import).
                    if let Some(bar) = &progress.bar {
                        bar.finish_and_clear();
                    }
                    return Ok((rows, progress));
                }
                progress.tick(rows, record.position().map_or(0, |p| p.byte()));
            }
        }
        if !chunk.is_empty() || rows == 0 {
            let _ = tx.blocking_send(pb::ImportObservationsRequest {
                validate_only,
                observations: chunk,
                request_id: String::new(),
            });
        }
        progress.done(rows);
        Ok((rows, progress))
    });
    let started = Instant::now();
    let call = client.import_observations(tokio_stream::wrappers::ReceiverStream::new(rx));
    tokio::pin!(call);
    let mut reader = reader;
    // The answer comes once the server has every row and committed: after the file is
    // read, a spinner says that the server is finishing.
    let (response, read) = tokio::select! {
        biased;
        response = &mut call => (response, reader.await.context("reader task")?),
        read = &mut reader => {
            let read = read.context("reader task")?;
            let spinner = match &read {
                Ok((rows, progress)) => progress.waiting(&format!(
                    "all {rows} rows sent; the server is checking and committing them"
                )),
                Err(_) => None,
            };
            let response = call.await;
            if let Some(spinner) = spinner {
                spinner.finish_and_clear();
            }
            (response, read)
        }
    };
    let response = match response {
        Ok(r) => r.into_inner(),
        // The server's message says what was written (nothing, for a refusal).
        Err(status) => return Err(Failure::Status(status)),
    };
    let (rows, _) = read?;
    eprintln!(
        "{}{} rows: {} inserted, {} revised, {} unchanged in {:.1} s",
        if response.validate_only {
            "validated (nothing written) "
        } else {
            "imported "
        },
        rows,
        response.inserted,
        response.revised,
        response.unchanged,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints a status to standard error as `error: CODE: message`, then its field and
/// precondition violations one a line, an import's row indices turned into CSV lines.
pub fn print_status(status: &tonic::Status) {
    eprint!("{}", describe_status(status));
}

/// The text [`print_status`] prints.
pub fn describe_status(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    let details = status.get_error_details();
    let mut text = String::new();
    let violations = details
        .bad_request()
        .map(|b| b.field_violations.as_slice())
        .unwrap_or_default();
    // The server's message repeats the first violations; they are listed below.
    let message = if !violations.is_empty() && status.message().starts_with("invalid request:") {
        "invalid request"
    } else {
        status.message()
    };
    text.push_str(&format!("error: {}: {message}\n", code_name(status.code())));
    for v in violations {
        // observations[N].field → CSV line N + 2 (after the header).
        let line = v
            .field
            .strip_prefix("observations[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| format!(" (CSV line {})", n + 2))
            .unwrap_or_default();
        text.push_str(&format!("  {}{line}: {}\n", v.field, v.description));
    }
    if let Some(pre) = details.precondition_failure() {
        for v in &pre.violations {
            text.push_str(&format!("  {}: {}\n", v.subject, v.description));
        }
    }
    text
}

/// Streams ExportObservations to a file or standard output.
pub async fn export(args: ExportArgs) -> Outcome {
    // Flags are checked before connecting: a usage error needs no server.
    let as_of = match &args.as_of {
        None => None,
        Some(t) => Some(parse_instant("--as-of", t)?),
    };
    let (start_period, end_period) = args.range.periods()?;
    let channel = connect(&args.server).await?;
    let mut client = ObservationServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let request = pb::ExportObservationsRequest {
        indicators: args
            .indicators
            .iter()
            .map(|i| {
                if i.starts_with("indicators/") {
                    i.clone()
                } else {
                    format!("indicators/{i}")
                }
            })
            .collect(),
        start_period,
        end_period,
        as_of,
        format: match args.format {
            ExportFormat::Csv => pb::export_observations_request::Format::Csv,
            ExportFormat::SdmxCsv => pb::export_observations_request::Format::SdmxCsv,
        } as i32,
    };
    let mut stream = match client.export_observations(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => return Err(Failure::Status(status)),
    };
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // The size of an export is not known ahead: a spinner with rows and rows/s.
    // (No progress on a terminal that is also receiving the export.)
    let mut progress = Progress::with_terminal(
        "exported",
        None,
        args.output.is_some() && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    let mut bytes: u64 = 0;
    let mut rows: u64 = 0;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                out.write_all(chunk.data.as_bytes())
                    .context("cannot write the export")?;
                rows += chunk.row_count as u64;
                bytes += chunk.data.len() as u64;
                if args.output.is_some() {
                    progress.tick(rows, bytes);
                }
            }
            Ok(None) => break,
            Err(status) => {
                let _ = out.flush();
                if let Some(bar) = &progress.bar {
                    bar.finish_and_clear();
                }
                eprintln!("the export broke off after {rows} rows");
                return Err(Failure::Status(status));
            }
        }
    }
    out.flush().context("cannot write the export")?;
    progress.done(rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;
    use crate::config::{Cli, Command};

    #[test]
    fn the_command_line_is_consistent() {
        // Catches clashing flag names between the server settings and client commands.
        Cli::command().debug_assert();
    }

    fn operator(args: &[&str]) -> OperatorCommand {
        match Cli::try_parse_from(std::iter::once("tradewatch").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Some(Command::Operator(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_flags_go_before_or_after_the_verb() {
        for args in [
            &["programs", "--server", "http://h:1", "--json", "list"][..],
            &["programs", "list", "--server", "http://h:1", "--json"][..],
        ] {
            let OperatorCommand::Programs(p) = operator(args) else {
                panic!("{args:?}")
            };
            assert_eq!(p.client.server.server, "http://h:1", "{args:?}");
            assert!(p.client.json, "{args:?}");
        }
    }

    #[test]
    fn auth_header() {
        let mut auth = Auth::new(Some("s3cret")).unwrap();
        let request = auth.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        let mut none = Auth::new(None).unwrap();
        let request = none.call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
        assert!(Auth::new(Some("")).unwrap().0.is_none());
        assert!(matches!(Auth::new(Some("a\nb")), Err(Failure::Usage(_))));
    }

    #[test]
    fn statuses_print_with_their_violations() {
        use tonic_types::{ErrorDetails, StatusExt as _};
        let status = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "invalid request: observations[3].value: not a decimal",
            ErrorDetails::with_bad_request(vec![tonic_types::FieldViolation::new(
                "observations[3].value",
                "not a decimal",
            )]),
        );
        assert_eq!(
            describe_status(&status),
            "error: INVALID_ARGUMENT: invalid request\n  \
             observations[3].value (CSV line 5): not a decimal\n"
        );
        assert_eq!(
            describe_status(&tonic::Status::not_found("programs/x not found")),
            "error: NOT_FOUND: programs/x not found\n"
        );
    }
}
