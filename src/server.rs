//! Assembly of the gRPC server: services, health, reflection (v1 and v1alpha, so that
//! both old and new grpcurl work), per-call tracing spans and graceful shutdown with a
//! bounded drain. [`serve`] takes an already bound listener, so tests run the very same
//! server on `127.0.0.1:0`.

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::ServerTlsConfig;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::api::admin_service::AdminApi;
use crate::api::observation_service::ObservationApi;
use crate::api::paging::PageTokens;
use crate::api::reporting_service::ReportingApi;
use crate::api::{Context, indicator_service::IndicatorApi, program_service::ProgramApi};
use crate::calls::{CallLayer, Settings};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::proto::v1::admin_service_server::AdminServiceServer;
use crate::proto::v1::indicator_service_server::IndicatorServiceServer;
use crate::proto::v1::observation_service_server::ObservationServiceServer;
use crate::proto::v1::program_service_server::ProgramServiceServer;
use crate::proto::v1::reporting_service_server::ReportingServiceServer;
use crate::store;

/// Fully qualified names of the services this server reports health for.
pub const SERVICE_NAMES: [&str; 5] = [
    "tradewatch.v1.AdminService",
    "tradewatch.v1.ProgramService",
    "tradewatch.v1.IndicatorService",
    "tradewatch.v1.ObservationService",
    "tradewatch.v1.ReportingService",
];

/// Most concurrent HTTP/2 streams (calls) per client connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// Connections are closed (gracefully) after this long.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);
/// Time calls on an aged connection get to finish.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(5 * 60);

/// Largest request message accepted (RESOURCE_EXHAUSTED beyond).
pub const MAX_DECODING_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Largest response message sent (lists and reports are paged well below it).
pub const MAX_ENCODING_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The call layer: deadlines, concurrency, anonymous reads.
    pub calls: Settings,
    /// Time in-flight calls get to finish after the shutdown signal.
    pub grace: Duration,
    /// TLS, when a certificate and key are configured.
    pub tls: Option<ServerTlsConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            calls: Settings {
                default_deadline: Duration::from_secs(60),
                max_concurrent_calls: 1024,
                anonymous_read: false,
            },
            grace: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// How often the health reporter checks the database, and how long a check may take:
/// health turns NOT_SERVING within about 1 s of the database going away (a check
/// fails once the pool's 500 ms wait for a connection ends).
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Builds the shared context: the pool and the page-token key stored in the database.
pub async fn context(pool: PgPool) -> Result<Context> {
    let key = store::secrets::get_or_create(&pool, "page_tokens").await?;
    // Half the pool writes: the batch writers, and imports (one connection each for
    // their length) with what is left, at least one.
    let slots = (pool.options().get_max_connections() as usize / 2).max(1);
    let batch = batch_writers(slots);
    Ok(Context {
        feed: crate::feed::ChangeFeed::start(pool.clone()),
        metrics: Metrics::new(Some(pool.clone())),
        batches: store::observations::BatchWriter::start(pool.clone(), batch),
        writers: std::sync::Arc::new(tokio::sync::Semaphore::new(
            slots.saturating_sub(batch).max(1),
        )),
        pool,
        page_tokens: PageTokens::new(key),
    })
}

/// How many connections write batches at once (at most `slots`): the batch writer's,
/// and the others for the batches written beside it (see
/// [`store::observations::BatchWriter`]); as many as this machine has cores, at least
/// two. The throughput comes from one writer grouping the batches into few database
/// calls; more connections than the cores that drive them add contention, not
/// throughput (measured in BENCHMARKS.md: on 2 cores, 2 writers wrote 1.7 times as many
/// batches as 5).
fn batch_writers(slots: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.max(2).min(slots)
}

/// Serves gRPC on `listener` until `shutdown` completes, then lets in-flight calls
/// finish for at most `options.grace` before cutting them.
pub async fn serve(
    listener: TcpListener,
    ctx: Context,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: Options,
) -> anyhow::Result<()> {
    let grace = options.grace;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let monitor = tokio::spawn(monitor_database(ctx.pool.clone(), health_reporter));
    let statistics = tokio::spawn(keep_statistics(ctx.pool.clone()));

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc.ErrorInfo, BadRequest, ...: lets grpcurl print error details.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let calls = CallLayer::new(options.calls, ctx.pool.clone(), ctx.metrics.clone());
    // Tonic's message limits, set explicitly on every service (documented in the README).
    macro_rules! limited {
        ($server:expr) => {
            $server
                .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_ENCODING_MESSAGE_SIZE)
        };
    }

    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(tls) = options.tls {
        builder = builder.tls_config(tls)?;
    }
    let router = builder
        // Limits, documented in the README: streams per connection, HTTP/2 pings that
        // find dead peers, and a maximum connection age so that a load balancer can
        // spread long-lived client connections over new replicas (clients reconnect;
        // WatchObservations clients resume from their cursor).
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_connection_age(MAX_CONNECTION_AGE)
        .max_connection_age_grace(MAX_CONNECTION_AGE_GRACE)
        .layer(calls)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(AdminServiceServer::new(AdminApi::new(
            ctx.clone()
        ))))
        .add_service(limited!(ProgramServiceServer::new(ProgramApi::new(
            ctx.clone()
        ))))
        .add_service(limited!(IndicatorServiceServer::new(IndicatorApi::new(
            ctx.clone()
        ))))
        .add_service(limited!(ObservationServiceServer::new(
            ObservationApi::new(ctx.clone(),)
        )))
        .add_service(limited!(ReportingServiceServer::new(ReportingApi::new(
            ctx.clone()
        ))));
    let serving =
        // TCP_NODELAY: small gRPC responses must not wait for Nagle's algorithm (tonic
        // applies its own TCP settings only to listeners it binds itself).
        router.serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            tracing::info!(grace = ?grace, "shutting down: no new calls, draining in-flight calls");
            let _ = signalled_tx.send(());
        });
    // After the signal, give in-flight calls `grace` to finish, then stop waiting.
    let drain_deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        r = serving => r.map_err(anyhow::Error::from),
        () = drain_deadline => {
            tracing::warn!("drain time exceeded; remaining calls are cut");
            Ok(())
        }
    };
    monitor.abort();
    statistics.abort();
    result
}

/// Keeps the statistics of the observation versions current while they grow fast (see
/// [`store::observations::refresh_statistics`]): checked every 10 s.
async fn keep_statistics(pool: PgPool) {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    loop {
        every.tick().await;
        match store::observations::refresh_statistics(&pool).await {
            Ok(true) => tracing::debug!("observation_versions analyzed"),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, "could not check the statistics of observation_versions")
            }
        }
    }
}

/// Reports SERVING while the database answers and NOT_SERVING while it does not, for
/// the whole server (`""`) and each service.
async fn monitor_database(pool: PgPool, reporter: tonic_health::server::HealthReporter) {
    let mut last: Option<ServingStatus> = None;
    loop {
        let ok = tokio::time::timeout(HEALTH_TIMEOUT, sqlx::query("SELECT 1").execute(&pool))
            .await
            .is_ok_and(|r| r.is_ok());
        let status = if ok {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if ok {
                tracing::info!("database reachable: health SERVING");
            } else {
                tracing::warn!("database unreachable: health NOT_SERVING");
            }
            reporter.set_service_status("", status).await;
            for name in SERVICE_NAMES {
                reporter.set_service_status(name, status).await;
            }
            last = Some(status);
        }
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
