//! Prometheus metrics, served as text on a port of their own (`--metrics-listen`).
//!
//! - `tradewatch_grpc_calls_total{service,method,code}`: finished calls;
//! - `tradewatch_grpc_call_duration_seconds{service,method}`: latency, from the request's
//!   arrival to the end of the response (the last message of a stream);
//! - `tradewatch_grpc_calls_in_flight{service,method}`;
//! - `tradewatch_db_pool_connections{state="idle"|"in_use"}`,
//!   `tradewatch_db_pool_max_connections` and `tradewatch_db_pool_saturated` (1 when
//!   every connection is in use, so further calls wait; sqlx does not count waiters);
//! - `tradewatch_observation_rows_total{outcome="inserted"|"revised"|"unchanged"|"deleted"}`:
//!   rows of committed observation writes.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Labels of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// e.g. `tradewatch.v1.ProgramService`.
    pub service: String,
    /// e.g. `GetProgram`.
    pub method: String,
    /// gRPC status code name, e.g. `OK`, `NOT_FOUND`.
    pub code: String,
}

/// Labels of a method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// Service.
    pub service: String,
    /// Method.
    pub method: String,
}

/// Labels of observation rows.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RowLabels {
    /// inserted, revised, unchanged or deleted.
    pub outcome: &'static str,
}

/// Every metric of a server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Finished calls.
    pub calls: Family<CallLabels, Counter>,
    /// Call latency.
    pub latency: Family<MethodLabels, Histogram>,
    /// Calls in progress.
    pub in_flight: Family<MethodLabels, Gauge>,
    /// Observation rows written.
    pub rows: Family<RowLabels, Counter>,
    pool: Option<PgPool>,
}

impl Metrics {
    /// Registers every metric; `pool` is sampled at each scrape.
    pub fn new(pool: Option<PgPool>) -> Arc<Self> {
        let mut registry = Registry::with_prefix("tradewatch");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register("grpc_calls", "Finished gRPC calls", calls.clone());
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ])
        });
        registry.register(
            "grpc_call_duration_seconds",
            "Time from a call's arrival to the end of its response",
            latency.clone(),
        );
        let in_flight = Family::<MethodLabels, Gauge>::default();
        registry.register(
            "grpc_calls_in_flight",
            "gRPC calls in progress",
            in_flight.clone(),
        );
        let rows = Family::<RowLabels, Counter>::default();
        registry.register(
            "observation_rows",
            "Rows of committed observation writes, by outcome",
            rows.clone(),
        );
        Arc::new(Self {
            registry,
            calls,
            latency,
            in_flight,
            rows,
            pool,
        })
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.registry).is_err() {
            out.clear();
        }
        if let Some(pool) = &self.pool {
            let size = pool.size() as usize;
            let idle = pool.num_idle().min(size);
            let max = pool.options().get_max_connections();
            let _ = write!(
                out,
                "# HELP tradewatch_db_pool_connections Open database connections.\n\
                 # TYPE tradewatch_db_pool_connections gauge\n\
                 tradewatch_db_pool_connections{{state=\"idle\"}} {idle}\n\
                 tradewatch_db_pool_connections{{state=\"in_use\"}} {}\n\
                 # HELP tradewatch_db_pool_max_connections Most connections the pool opens.\n\
                 # TYPE tradewatch_db_pool_max_connections gauge\n\
                 tradewatch_db_pool_max_connections {max}\n\
                 # HELP tradewatch_db_pool_saturated 1 when every connection is in use (calls wait).\n\
                 # TYPE tradewatch_db_pool_saturated gauge\n\
                 tradewatch_db_pool_saturated {}\n",
                size - idle,
                u8::from(size as u32 >= max && idle == 0),
            );
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Serves `GET /metrics` (HTTP/1.1, one request per connection) until the task is
/// dropped. Anything else is 404.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut socket, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let answer = async {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                // Read the request head (bounded in size and time).
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    if len == buf.len() {
                        return Ok(());
                    }
                    let n = socket.read(&mut buf[len..]).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    len += n;
                }
                let head = String::from_utf8_lossy(&buf[..len]);
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, body) =
                    if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
                        ("200 OK", metrics.render())
                    } else {
                        (
                            "404 Not Found",
                            "only GET /metrics is served here\n".to_owned(),
                        )
                    };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await?;
                socket.shutdown().await
            };
            match tokio::time::timeout(Duration::from_secs(10), answer).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics request failed"),
                Err(_) => tracing::debug!(%peer, "metrics request timed out"),
            }
        });
    }
}

/// Binds the metrics port and serves it in a task of its own.
pub async fn spawn(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, tokio::spawn(serve(listener, metrics))))
}
