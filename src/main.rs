//! The `tradewatch` binary: parses the command line and runs a command. Everything else
//! lives in the library.

use std::process::ExitCode;

use clap::Parser;
use sqlx::postgres::PgConnectOptions;
use tradewatch::config::{Cli, Command, Config, Database, LogFormat};
use tradewatch::embedded_pg::{DEFAULT_DATABASE, EmbeddedPostgres};
use tradewatch::{seed, server, store};

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
    let cli = Cli::parse();
    // Resource and report commands are clients of a running server: no settings, no
    // database, and their own exit codes.
    if let Some(Command::Operator(command)) = cli.command {
        return tradewatch::cli::run(command).await;
    }
    let config = match Config::from_raw(&cli.settings) {
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
    match run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tradewatch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    // Client commands talk to a running server, not to the database.
    let command = match command {
        Command::Import(args) => return tradewatch::cli::import(args).await,
        Command::Export(args) => return tradewatch::cli::export(args).await,
        Command::Serve => DbCommand::Serve,
        Command::Migrate => DbCommand::Migrate,
        Command::Seed => DbCommand::Seed,
        Command::Operator(_) => unreachable!("dispatched in main"),
    };
    // The private cluster, when DATABASE_URL is unset; stopped on the way out.
    let (options, embedded) = match &config.database {
        Database::Url(options) => ((**options).clone(), None),
        Database::Embedded(dir) => {
            std::fs::create_dir_all(dir)?;
            let pg = EmbeddedPostgres::start(dir).await?;
            let url = pg.url(DEFAULT_DATABASE);
            tracing::info!(data_dir = %dir.display(), socket = %pg.socket_dir().display(), "using the private PostgreSQL cluster");
            (url.parse::<PgConnectOptions>()?, Some(pg))
        }
    };
    let result = run_with(command, &config, options).await;
    if let Some(pg) = embedded
        && let Err(e) = pg.stop().await
    {
        tracing::warn!(error = %e, "could not stop the private PostgreSQL cluster");
    }
    result
}

/// The commands that work on the database.
enum DbCommand {
    Serve,
    Migrate,
    Seed,
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
        DbCommand::Serve => {
            if config.seed && seed::seed_on_first_start(&pool).await? {
                tracing::info!("first start: loaded the Chongqing 2015 programme");
            }
            let ctx = server::context(pool.clone()).await?;
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "serving gRPC");
            eprintln!(
                "tradewatch is serving gRPC on {addr}\n  try: grpcurl -plaintext {addr} list\n       \
                 grpcurl -plaintext -d '{{\"name\": \"programs/{}\"}}' {addr} tradewatch.v1.ProgramService/GetProgram",
                seed::PROGRAM_ID
            );
            server::serve(
                listener,
                ctx,
                server::shutdown_signal(),
                config.shutdown_grace,
            )
            .await?;
            pool.close().await;
            tracing::info!("stopped");
            Ok(())
        }
    }
}
