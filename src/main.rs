//! The `tradewatch` binary: parses the command line and runs a command. Everything else
//! lives in the library.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _};
use sqlx::postgres::PgConnectOptions;
use tonic::transport::{Identity, ServerTlsConfig};
use tradewatch::calls::Settings;
use tradewatch::config::{Cli, Command, Config, Database, KeysCommand, LogFormat, RawSettings};
use tradewatch::domain::access::Role;
use tradewatch::embedded_pg::{DEFAULT_DATABASE, EmbeddedPostgres};
use tradewatch::{seed, server, store};

// glibc's malloc was a sixth of the server's CPU under 16 writers (perf: _int_malloc,
// malloc_consolidate, unlink_chunk, free); mimalloc serves the same small, short-lived
// allocations (requests, rows, protobuf messages) for a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Client commands take client options only; a server setting given before their
    // name (`tradewatch --listen A programs list`) would be silently ignored.
    if cli.command.as_ref().is_some_and(|c| c.settings().is_none())
        && let Some(id) = RawSettings::ids()
            .into_iter()
            .find(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
    {
        eprintln!(
            "error: --{} is a server setting; client commands take client options only \
             (--server, --key, ...)\n\nFor more information, try '--help'.",
            id.replace('_', "-")
        );
        return ExitCode::from(2);
    }
    let settings = match cli.command.as_ref().and_then(Command::settings) {
        Some(given) => given.clone().or(&cli.settings),
        None => cli.settings.clone(),
    };
    // Resource and report commands are clients of a running server: no settings, no
    // database, and their own exit codes.
    let (outcome, command) = match cli.command {
        Some(Command::Operator(command)) => return tradewatch::cli::run(command).await,
        Some(Command::Import(args)) => (Some(tradewatch::cli::import(args).await), None),
        Some(Command::Export(args)) => (Some(tradewatch::cli::export(args).await), None),
        other => (None, other),
    };
    // Import and export too: `error: CODE: message` once, and the documented exit codes
    // (3 when the server cannot be reached).
    if let Some(outcome) = outcome {
        return tradewatch::cli::exit(outcome);
    }
    let config = match Config::from_raw(&settings) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("tradewatch: invalid configuration:");
            for e in errors {
                eprintln!("  - {e}");
            }
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let json_logs = matches!(config.log_format, LogFormat::Json);
    match run(command.unwrap_or(Command::Serve(settings)), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: a JSON log line for log collectors, else a line for people (the
            // text log would repeat it on the same stderr).
            if json_logs {
                tracing::error!("{e:#}");
            } else {
                eprintln!("tradewatch: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    // Client commands talk to a running server, not to the database.
    let command = match command {
        Command::Import(_) | Command::Export(_) => unreachable!("dispatched in main"),
        Command::Serve(_) => DbCommand::Serve,
        Command::Migrate(_) => DbCommand::Migrate,
        Command::Seed(_) => DbCommand::Seed,
        Command::Keys(KeysCommand::Create { role, name, .. }) => DbCommand::Keys { role, name },
        Command::Operator(_) => unreachable!("dispatched in main"),
    };
    // The private cluster, when DATABASE_URL is unset; stopped on the way out if this
    // process started it and no server uses it.
    let mut serving_lock = None;
    let (options, embedded) = match &config.database {
        Database::Url(options) => ((**options).clone(), None),
        Database::Embedded(dir) => {
            std::fs::create_dir_all(dir)?;
            if matches!(command, DbCommand::Serve) {
                // One server per data folder, refused before anything is touched.
                serving_lock = Some(ServeLock::take(dir, &config)?);
            }
            let pg = EmbeddedPostgres::start(dir).await?;
            let url = pg.url(DEFAULT_DATABASE);
            tracing::info!(data_dir = %dir.display(), pgdata = %pg.data_dir().display(), socket = %pg.socket_dir().display(), "using the private PostgreSQL cluster");
            (url.parse::<PgConnectOptions>()?, Some(pg))
        }
    };
    let result = run_with(command, &config, options).await;
    if let (Some(pg), Database::Embedded(dir)) = (embedded, &config.database) {
        // The server owns its data folder's cluster (it may have found it running after
        // a crash) and stops it. A command run beside a server (`keys create`, `migrate`,
        // `seed`) never stops the cluster that server uses: only one it started itself,
        // and only while no server holds the data folder.
        // The shared lock is held until the cluster is stopped: a server that starts
        // meanwhile refuses (it cannot take the folder) rather than lose its database.
        let guard = match &serving_lock {
            Some(_) => Ok(None),
            None => ServeLock::unless_served(dir),
        };
        let in_use = guard.is_err();
        if (serving_lock.is_none() && !pg.started_here()) || in_use {
            tracing::info!(data_dir = %dir.display(), "leaving the private PostgreSQL cluster running: {}",
                if in_use { "a tradewatch server uses it" } else { "this process did not start it" });
        } else if let Err(e) = pg.stop().await {
            tracing::warn!(error = %e, "could not stop the private PostgreSQL cluster");
        }
        drop(guard);
    }
    drop(serving_lock);
    result
}

/// The lock a server holds on its data folder (`serve.lock`, with its pid and address),
/// for as long as it runs: a second server on the same folder refuses to start, and the
/// other commands know not to stop the cluster.
struct ServeLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl ServeLock {
    const FILE: &'static str = "serve.lock";

    fn take(dir: &std::path::Path, config: &Config) -> anyhow::Result<Self> {
        use std::io::Write as _;
        let path = dir.join(Self::FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0)?;
                writeln!(lock, "pid {} gRPC {}", std::process::id(), config.listen)?;
                Ok(Self { _lock: lock })
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let who = std::fs::read_to_string(&path).unwrap_or_default();
                anyhow::bail!(
                    "another tradewatch server ({}) is using {}; stop it first, or give this one \
                     another --data-dir",
                    who.trim(),
                    dir.display()
                )
            }
            Err((_, e)) => Err(anyhow::anyhow!("cannot lock {}: {e}", path.display())),
        }
    }

    /// A shared lock on the data folder, unless a server (another process) holds it
    /// (`Err`); `Ok(None)` when the lock file cannot be opened.
    fn unless_served(
        dir: &std::path::Path,
    ) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, ()> {
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(Self::FILE))
        else {
            return Ok(None);
        };
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(()),
            // Cannot tell: leave the cluster running.
            Err(_) => Err(()),
        }
    }
}

/// The commands that work on the database.
enum DbCommand {
    Serve,
    Migrate,
    Seed,
    Keys { role: String, name: String },
}

async fn run_with(
    command: DbCommand,
    config: &Config,
    options: PgConnectOptions,
) -> anyhow::Result<()> {
    let pool = store::connect_lazy(
        options,
        &store::PoolConfig {
            max_connections: config.pool_size,
            ..Default::default()
        },
    );
    store::migrate(&pool).await?;
    match command {
        DbCommand::Migrate => {
            tracing::info!("migrations applied");
            Ok(())
        }
        DbCommand::Seed => {
            let created = seed::load(&pool).await?;
            tracing::info!(created, "Chongqing 2015 programme loaded");
            Ok(())
        }
        DbCommand::Keys { role, name } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("--role must be viewer, editor or admin (got {role:?})")
            })?;
            let (key, secret) = store::keys::create(&pool, &name, role, None).await?;
            eprintln!(
                "created apiKeys/{} with the {} role; its secret (shown only now):",
                key.id,
                role.as_str()
            );
            println!("{secret}");
            Ok(())
        }
        DbCommand::Serve => {
            if config.seed && seed::seed_on_first_start(&pool).await? {
                tracing::info!("first start: loaded the Chongqing 2015 programme");
            }
            let embedded = matches!(config.database, Database::Embedded(_));
            if embedded && !store::keys::any_admin(&pool).await? {
                let (key, secret) =
                    store::keys::create(&pool, "bootstrap admin (first start)", Role::Admin, None)
                        .await?;
                tracing::info!(key = %key.id, "first start: created an admin API key");
                eprintln!(
                    "first start: created the admin API key apiKeys/{}. Its secret is shown only now:\n\n  \
                     TRADEWATCH_KEY={secret}\n\n  send it as `authorization: Bearer <secret>` metadata",
                    key.id
                );
            }
            let ctx = server::context(pool.clone()).await?;
            let tls = match &config.tls {
                None => None,
                Some((cert, key)) => {
                    let cert = std::fs::read(cert)
                        .with_context(|| format!("reading --tls-cert {}", cert.display()))?;
                    let key = std::fs::read(key)
                        .with_context(|| format!("reading --tls-key {}", key.display()))?;
                    Some(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
                }
            };
            let scheme = if tls.is_some() { "TLS" } else { "plaintext" };
            let metrics = match config.metrics_listen {
                Some(addr) => {
                    let (addr, task) = tradewatch::metrics::spawn(addr, ctx.metrics.clone())
                        .await
                        .with_context(|| format!("binding the metrics port {addr}"))?;
                    tracing::info!(%addr, "serving Prometheus metrics on http://{addr}/metrics");
                    Some(task)
                }
                None => None,
            };
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, tls = tls.is_some(), anonymous_read = config.anonymous_read, "serving gRPC");
            if config.anonymous_read {
                eprintln!(
                    "anonymous reads are ON (read methods need no key; writes do); \
                     turn them off with --anonymous-read=false"
                );
            }
            // The hint works as printed: over TLS grpcurl needs the certificate (a
            // self-signed one is its own CA), and without anonymous reads a key.
            let transport = match &config.tls {
                Some((cert, _)) => format!("-cacert {}", cert.display()),
                None => "-plaintext".to_owned(),
            };
            let key = if config.anonymous_read {
                ""
            } else {
                "-H \"authorization: Bearer $TRADEWATCH_KEY\" "
            };
            eprintln!(
                "tradewatch is serving gRPC ({scheme}) on {addr}\n  try: grpcurl {transport} {addr} list\n       \
                 grpcurl {transport} {key}-d '{{\"name\": \"programs/{}\"}}' {addr} tradewatch.v1.ProgramService/GetProgram",
                seed::PROGRAM_ID
            );
            let purge = tokio::spawn(purge_request_ids(pool.clone()));
            server::serve(
                listener,
                ctx,
                server::shutdown_signal(),
                server::Options {
                    calls: Settings {
                        default_deadline: config.default_deadline,
                        max_concurrent_calls: config.max_concurrent_calls,
                        anonymous_read: config.anonymous_read,
                    },
                    grace: config.shutdown_grace,
                    tls,
                },
            )
            .await?;
            purge.abort();
            if let Some(m) = metrics {
                m.abort();
            }
            // A call cut at the end of the drain may still hold a connection (waiting on
            // a lock, say), and `close` waits for every connection to come back: close
            // the idle ones, but do not wait for those past the grace.
            if tokio::time::timeout(std::time::Duration::from_secs(1), pool.close())
                .await
                .is_err()
            {
                tracing::warn!("connections of cut calls still busy; exiting without them");
            }
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Forgets request ids past their retention, hourly.
async fn purge_request_ids(pool: sqlx::PgPool) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match store::idempotency::purge(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired request ids removed"),
            Err(e) => tracing::warn!(error = %e, "could not remove expired request ids"),
        }
    }
}
