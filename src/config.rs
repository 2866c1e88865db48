//! Configuration from flags and environment. Every setting is read as text first and
//! then parsed in one pass that collects *all* errors, so a misconfigured deployment is
//! fixed in one restart, not one per mistake.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sqlx::postgres::PgConnectOptions;

/// Command line of the `tradewatch` binary.
#[derive(Debug, Parser)]
#[command(
    name = "tradewatch",
    version,
    about = "gRPC service for trade-development programmes, indicators, figures and targets"
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The server's settings (also taken after `serve`, `migrate`, `seed` and
    /// `keys create`; client commands take client options only).
    #[command(flatten)]
    pub settings: RawSettings,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (the default).
    Serve(RawSettings),
    /// Apply pending database migrations and exit.
    Migrate(RawSettings),
    /// Load the built-in Chongqing 2015 programme (again) and exit; existing resources are kept.
    Seed(RawSettings),
    /// Stream a CSV file of observations into a running server (one atomic import).
    Import(crate::cli::ImportArgs),
    /// Export observations from a running server as CSV or SDMX-CSV.
    Export(crate::cli::ExportArgs),
    /// Resource and report commands, clients of a running server.
    #[command(flatten)]
    Operator(crate::cli::OperatorCommand),
    /// Manage API keys directly in the database (for bootstrap and recovery).
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `tradewatch keys ...`: works on the database, not through a server.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print its secret (shown once).
    Create {
        /// viewer, editor or admin.
        #[arg(long)]
        role: String,
        /// What the key is for.
        #[arg(long, default_value = "")]
        name: String,
        /// Where the database is, and the other settings.
        #[command(flatten)]
        settings: RawSettings,
    },
}

impl Command {
    /// The settings given after a command that works on the database; `None` for the
    /// client commands.
    pub fn settings(&self) -> Option<&RawSettings> {
        match self {
            Command::Serve(s) | Command::Migrate(s) | Command::Seed(s) => Some(s),
            Command::Keys(KeysCommand::Create { settings, .. }) => Some(settings),
            Command::Import(_) | Command::Export(_) | Command::Operator(_) => None,
        }
    }
}

/// Settings as given, before parsing.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Server settings")]
pub struct RawSettings {
    /// Address to serve gRPC on [default: 127.0.0.1:50051].
    #[arg(long, env = "TRADEWATCH_LISTEN")]
    pub listen: Option<String>,
    /// PostgreSQL URL. When unset, a private PostgreSQL cluster is started in the data
    /// directory from the local PostgreSQL binaries.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the private PostgreSQL cluster used when DATABASE_URL is unset
    /// [default: ./.tradewatch].
    #[arg(long, env = "TRADEWATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Most database connections [default: 10].
    #[arg(long, env = "TRADEWATCH_POOL_SIZE")]
    pub pool_size: Option<String>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "TRADEWATCH_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log filter in tracing's EnvFilter syntax [default: info].
    #[arg(long, env = "TRADEWATCH_LOG")]
    pub log: Option<String>,
    /// How long in-flight calls may run after SIGINT/SIGTERM before they are cut, e.g.
    /// `10s` or `500ms` [default: 10s].
    #[arg(long, env = "TRADEWATCH_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
    /// Do not load the Chongqing 2015 programme on first start.
    #[arg(long, env = "TRADEWATCH_NO_SEED")]
    pub no_seed: bool,
    /// Answer read methods without an API key: `true` or `false` [default: true with
    /// the private cluster (a local trial), false with DATABASE_URL].
    #[arg(long, env = "TRADEWATCH_ANONYMOUS_READ")]
    pub anonymous_read: Option<String>,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`), or `off`
    /// [default: 127.0.0.1:9464].
    #[arg(long, env = "TRADEWATCH_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Deadline of unary calls whose client sets none or a longer one [default: 60s].
    #[arg(long, env = "TRADEWATCH_DEFAULT_DEADLINE")]
    pub default_deadline: Option<String>,
    /// Most calls served at once; more get RESOURCE_EXHAUSTED [default: 1024].
    #[arg(long, env = "TRADEWATCH_MAX_CONCURRENT_CALLS")]
    pub max_concurrent_calls: Option<String>,
    /// PEM certificate chain: serve gRPC over TLS (with --tls-key).
    #[arg(long, env = "TRADEWATCH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TRADEWATCH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl RawSettings {
    /// These settings, each one not given taken from `other` (the settings given before
    /// the command's name: `tradewatch --data-dir D migrate`).
    pub fn or(self, other: &RawSettings) -> RawSettings {
        let o = other.clone();
        RawSettings {
            listen: self.listen.or(o.listen),
            database_url: self.database_url.or(o.database_url),
            data_dir: self.data_dir.or(o.data_dir),
            pool_size: self.pool_size.or(o.pool_size),
            log_format: self.log_format.or(o.log_format),
            log: self.log.or(o.log),
            shutdown_grace: self.shutdown_grace.or(o.shutdown_grace),
            no_seed: self.no_seed || o.no_seed,
            anonymous_read: self.anonymous_read.or(o.anonymous_read),
            metrics_listen: self.metrics_listen.or(o.metrics_listen),
            default_deadline: self.default_deadline.or(o.default_deadline),
            max_concurrent_calls: self.max_concurrent_calls.or(o.max_concurrent_calls),
            tls_cert: self.tls_cert.or(o.tls_cert),
            tls_key: self.tls_key.or(o.tls_key),
        }
    }

    /// The ids of the settings' arguments (as clap names them).
    pub fn ids() -> Vec<String> {
        <RawSettings as Args>::augment_args(clap::Command::new("settings"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the database is.
#[derive(Debug, Clone)]
pub enum Database {
    /// A server given by URL.
    Url(Box<PgConnectOptions>),
    /// A private cluster in this directory.
    Embedded(PathBuf),
}

/// Parsed settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// The database.
    pub database: Database,
    /// Pool size.
    pub pool_size: u32,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_filter: String,
    /// Drain time on shutdown.
    pub shutdown_grace: Duration,
    /// Load the built-in programme on first start.
    pub seed: bool,
    /// Read methods without a key.
    pub anonymous_read: bool,
    /// Metrics endpoint, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Default deadline of unary calls.
    pub default_deadline: Duration,
    /// Most calls at once.
    pub max_concurrent_calls: usize,
    /// TLS certificate and key files.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Parses a duration such as `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s, 500ms or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?} is not a duration like 10s, 500ms or 2m")),
    }
}

impl Config {
    /// Parses every setting, returning all problems at once.
    pub fn from_raw(raw: &RawSettings) -> Result<Config, Vec<String>> {
        let mut errors = Vec::new();
        let listen = raw
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:50051")
            .parse::<SocketAddr>()
            .map_err(|e| {
                errors.push(format!(
                    "--listen / TRADEWATCH_LISTEN: {e} (expected host:port such as 127.0.0.1:50051)"
                ))
            })
            .ok();
        let database = match raw.database_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                errors.push(
                    "--database-url / DATABASE_URL: expected a postgres:// or postgresql:// URL"
                        .to_owned(),
                );
                None
            }
            Some(url) => PgConnectOptions::from_str(url)
                .map(|o| Database::Url(Box::new(o)))
                .map_err(|e| errors.push(format!("--database-url / DATABASE_URL: {e}")))
                .ok(),
            None => Some(Database::Embedded(
                raw.data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(".tradewatch")),
            )),
        };
        let pool_size = match raw.pool_size.as_deref() {
            None => Some(10),
            Some(s) => match s.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => Some(n),
                _ => {
                    errors.push(format!(
                        "--pool-size / TRADEWATCH_POOL_SIZE: {s:?} is not a number from 1 to 1000"
                    ));
                    None
                }
            },
        };
        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            other => {
                errors.push(format!(
                    "--log-format / TRADEWATCH_LOG_FORMAT: {other:?} is not `text` or `json`"
                ));
                None
            }
        };
        let log_filter = raw.log.clone().unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            errors.push(format!("--log / TRADEWATCH_LOG: {e}"));
        }
        let shutdown_grace = match raw.shutdown_grace.as_deref() {
            None => Some(Duration::from_secs(10)),
            Some(s) => parse_duration(s)
                .map_err(|e| {
                    errors.push(format!("--shutdown-grace / TRADEWATCH_SHUTDOWN_GRACE: {e}"))
                })
                .ok(),
        };
        let anonymous_read = match raw.anonymous_read.as_deref() {
            None => matches!(database, Some(Database::Embedded(_))),
            Some("true" | "1" | "yes" | "") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                errors.push(format!(
                    "--anonymous-read / TRADEWATCH_ANONYMOUS_READ: {other:?} is not true or false"
                ));
                false
            }
        };
        let metrics_listen = match raw.metrics_listen.as_deref().unwrap_or("127.0.0.1:9464") {
            "off" | "" => None,
            addr => addr
                .parse::<SocketAddr>()
                .map_err(|e| {
                    errors.push(format!(
                        "--metrics-listen / TRADEWATCH_METRICS_LISTEN: {e} (expected host:port or off)"
                    ))
                })
                .ok(),
        };
        let default_deadline = match raw.default_deadline.as_deref() {
            None => Duration::from_secs(60),
            Some(s) => match parse_duration(s) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    errors.push(
                        "--default-deadline / TRADEWATCH_DEFAULT_DEADLINE: must be more than 0"
                            .into(),
                    );
                    Duration::ZERO
                }
                Err(e) => {
                    errors.push(format!(
                        "--default-deadline / TRADEWATCH_DEFAULT_DEADLINE: {e}"
                    ));
                    Duration::ZERO
                }
            },
        };
        let max_concurrent_calls = match raw.max_concurrent_calls.as_deref() {
            None => 1024,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => n,
                _ => {
                    errors.push(format!(
                        "--max-concurrent-calls / TRADEWATCH_MAX_CONCURRENT_CALLS: {s:?} is not a number from 1 to 100000"
                    ));
                    0
                }
            },
        };
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => {
                errors.push("--tls-cert and --tls-key go together: give both or neither".into());
                None
            }
        };
        match (listen, database, pool_size, log_format, shutdown_grace) {
            (
                Some(listen),
                Some(database),
                Some(pool_size),
                Some(log_format),
                Some(shutdown_grace),
            ) if errors.is_empty() => Ok(Config {
                listen,
                database,
                pool_size,
                log_format,
                log_filter,
                shutdown_grace,
                seed: !raw.no_seed,
                anonymous_read,
                metrics_listen,
                default_deadline,
                max_concurrent_calls,
                tls,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            listen: None,
            database_url: None,
            data_dir: None,
            pool_size: None,
            log_format: None,
            log: None,
            shutdown_grace: None,
            no_seed: false,
            anonymous_read: None,
            metrics_listen: None,
            default_deadline: None,
            max_concurrent_calls: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_raw(&raw()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert!(
            matches!(c.database, Database::Embedded(ref p) if p == &PathBuf::from(".tradewatch"))
        );
        assert_eq!(c.pool_size, 10);
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        // A local trial on the private cluster reads without a key; a deployment
        // (DATABASE_URL) does not, unless told to.
        assert!(c.anonymous_read);
        let mut r = raw();
        r.database_url = Some("postgres://localhost/x".into());
        assert!(!Config::from_raw(&r).unwrap().anonymous_read);
        assert_eq!(c.metrics_listen.unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(c.default_deadline, Duration::from_secs(60));
        assert_eq!(c.max_concurrent_calls, 1024);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let mut r = raw();
        r.listen = Some("nowhere".into());
        r.pool_size = Some("0".into());
        r.log_format = Some("xml".into());
        r.shutdown_grace = Some("soon".into());
        r.database_url = Some("mysql://x".into());
        r.anonymous_read = Some("perhaps".into());
        r.metrics_listen = Some("port 9".into());
        r.default_deadline = Some("0s".into());
        r.max_concurrent_calls = Some("0".into());
        r.tls_cert = Some("cert.pem".into());
        let errors = Config::from_raw(&r).unwrap_err();
        assert_eq!(errors.len(), 10, "{errors:#?}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("1h").is_err());
    }
}
