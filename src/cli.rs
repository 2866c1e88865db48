//! Operator commands that are gRPC clients of a running server: `tradewatch import`
//! and `tradewatch export`.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use tonic::transport::Channel;

use crate::proto::v1 as pb;
use crate::proto::v1::observation_service_client::ObservationServiceClient;

/// Where the server is.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address of a running tradewatch server.
    #[arg(
        long,
        env = "TRADEWATCH_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
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
    /// First period (SDMX syntax).
    #[arg(long)]
    pub start_period: Option<String>,
    /// Last period (SDMX syntax).
    #[arg(long)]
    pub end_period: Option<String>,
    /// Export as known at this instant (RFC 3339, e.g. 2021-03-01T00:00:00Z).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output file; default standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Server.
    #[command(flatten)]
    pub server: ServerArgs,
}

async fn connect(server: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(server.to_owned())
        .with_context(|| format!("{server:?} is not a server address like http://127.0.0.1:50051"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {server}"))
}

/// Prints progress to standard error at most once a second.
struct Progress {
    started: Instant,
    last: Instant,
    verb: &'static str,
    tty: bool,
}

impl Progress {
    fn new(verb: &'static str) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
            verb,
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    fn tick(&mut self, rows: u64) {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            self.print(rows, false);
        }
    }

    fn print(&self, rows: u64, done: bool) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { rows as f64 / secs } else { 0.0 };
        let line = format!(
            "{} {rows} rows in {secs:.1} s ({rate:.0} rows/s)",
            self.verb
        );
        if self.tty && !done {
            eprint!("\r{line}   ");
        } else if self.tty {
            eprintln!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
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
pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let channel = connect(&args.server.server).await?;
    let mut client = ObservationServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportObservationsRequest>(4);
    let path = args.file.clone();
    let batch = args.batch as usize;
    let validate_only = args.validate_only;
    // The file is read on a blocking thread and streamed as it is read: memory stays
    // flat however large the file is.
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let input: Box<dyn std::io::Read> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        };
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(std::io::BufReader::with_capacity(1 << 20, input));
        let columns = Columns::from_header(csv.headers()?)?;
        let mut progress = Progress::new("sent");
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
                    return Ok(rows);
                }
                progress.tick(rows);
            }
        }
        if !chunk.is_empty() || rows == 0 {
            let _ = tx.blocking_send(pb::ImportObservationsRequest {
                validate_only,
                observations: chunk,
                request_id: String::new(),
            });
        }
        progress.print(rows, true);
        Ok(rows)
    });
    let started = Instant::now();
    let response = client
        .import_observations(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let read = reader.await.context("reader task")?;
    let response = match response {
        Ok(r) => r.into_inner(),
        Err(status) => {
            print_status(&status);
            bail!("the import was refused; nothing was written");
        }
    };
    let rows = read?;
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

/// Prints a status with its field violations, row indices turned into CSV lines.
fn print_status(status: &tonic::Status) {
    use tonic_types::StatusExt as _;
    eprintln!("error: {:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_error_details().bad_request() {
        for v in &bad.field_violations {
            // observations[N].field → CSV line N + 2 (after the header).
            let line = v
                .field
                .strip_prefix("observations[")
                .and_then(|rest| rest.split(']').next())
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| format!(" (CSV line {})", n + 2))
                .unwrap_or_default();
            eprintln!("  {}{line}: {}", v.field, v.description);
        }
    }
}

/// Streams ExportObservations to a file or standard output.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let channel = connect(&args.server.server).await?;
    let mut client = ObservationServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let as_of = match &args.as_of {
        None => None,
        Some(t) => {
            let t = chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--as-of {t:?} is not an RFC 3339 instant"))?;
            Some(prost_types::Timestamp {
                seconds: t.timestamp(),
                nanos: t.timestamp_subsec_nanos() as i32,
            })
        }
    };
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
        start_period: args.start_period.clone().unwrap_or_default(),
        end_period: args.end_period.clone().unwrap_or_default(),
        as_of,
        format: match args.format {
            ExportFormat::Csv => pb::export_observations_request::Format::Csv,
            ExportFormat::SdmxCsv => pb::export_observations_request::Format::SdmxCsv,
        } as i32,
    };
    let mut stream = match client.export_observations(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            print_status(&status);
            bail!("the export was refused");
        }
    };
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut progress = Progress::new("exported");
    let mut rows: u64 = 0;
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                out.write_all(chunk.data.as_bytes())?;
                rows += chunk.row_count as u64;
                if args.output.is_some() {
                    progress.tick(rows);
                }
            }
            Ok(None) => break,
            Err(status) => {
                print_status(&status);
                bail!("the export broke off after {rows} rows");
            }
        }
    }
    out.flush()?;
    progress.print(rows, true);
    Ok(())
}
