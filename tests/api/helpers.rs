//! Test harness: every test gets its own database (a copy of a migrated template) on a
//! real PostgreSQL — `DATABASE_URL` when set, else a throwaway cluster started once per
//! test process from the local binaries — and the real server on `127.0.0.1:0`,
//! called through the generated gRPC clients.

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tonic::transport::Channel;
use tower_http::auth::AddAuthorization;
use tradewatch::domain::access::Role;
use tradewatch::embedded_pg::{DEFAULT_DATABASE, EmbeddedPostgres};
use tradewatch::proto::v1::indicator_service_client::IndicatorServiceClient;
use tradewatch::proto::v1::observation_service_client::ObservationServiceClient;
use tradewatch::proto::v1::program_service_client::ProgramServiceClient;
use tradewatch::{server, store};

struct Shared {
    /// Where to create test databases.
    admin: PgConnectOptions,
    /// Name of the migrated template database.
    template: String,
    /// `admin` over TCP, when the cluster can be reached that way: the throwaway
    /// cluster (which also listens on 127.0.0.1), or `DATABASE_URL` when it names a host.
    tcp: Option<PgConnectOptions>,
    /// Keeps the throwaway cluster's handle alive (its watchdog removes it when the
    /// test process exits).
    _cluster: Option<EmbeddedPostgres>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        // Runs on a thread of its own: the caller is inside a test's runtime.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let (admin, cluster) = match std::env::var("DATABASE_URL") {
                    Ok(url) if !url.is_empty() => {
                        (url.parse::<PgConnectOptions>().expect("DATABASE_URL"), None)
                    }
                    _ => {
                        let pg = EmbeddedPostgres::start_temporary(std::process::id())
                            .await
                            .expect("start a temporary PostgreSQL cluster from the local binaries");
                        let opts: PgConnectOptions = pg.url(DEFAULT_DATABASE).parse().expect("url");
                        (opts, Some(pg))
                    }
                };
                let template = create_template(&admin).await;
                let tcp = match &cluster {
                    Some(pg) => pg
                        .tcp_url(DEFAULT_DATABASE)
                        .map(|url| url.parse::<PgConnectOptions>().expect("tcp url")),
                    None => (admin.get_socket().is_none() && !admin.get_host().starts_with('/'))
                        .then(|| admin.clone()),
                };
                Shared {
                    admin,
                    template,
                    tcp,
                    _cluster: cluster,
                }
            })
        })
        .join()
        .expect("test database setup")
    })
}

/// A fingerprint of the migrations, so a changed migration gets a fresh template.
fn migrations_hash() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for m in store::MIGRATOR.iter() {
        m.version.hash(&mut h);
        m.checksum.hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

async fn create_template(admin: &PgConnectOptions) -> String {
    let name = format!("tw_tpl_{}", migrations_hash());
    let mut conn = PgConnection::connect_with(admin)
        .await
        .expect("connect to the admin database");
    // One process at a time builds the template (test binaries may run in parallel).
    sqlx::query("SELECT pg_advisory_lock(7305)")
        .execute(&mut conn)
        .await
        .expect("lock");
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await
        .expect("query");
    if exists.is_none() {
        let building = format!("{name}_building");
        exec(
            &mut conn,
            &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
        )
        .await;
        exec(&mut conn, &format!("CREATE DATABASE {building}")).await;
        let pool = PgPool::connect_with(admin.clone().database(&building))
            .await
            .expect("connect");
        store::migrate(&pool).await.expect("migrate the template");
        pool.close().await;
        exec(
            &mut conn,
            &format!("ALTER DATABASE {building} RENAME TO {name}"),
        )
        .await;
    }
    sqlx::query("SELECT pg_advisory_unlock(7305)")
        .execute(&mut conn)
        .await
        .expect("unlock");
    name
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A channel that sends `authorization: Bearer <key>` on every call.
pub type Ch = AddAuthorization<Channel>;

/// `channel` sending `secret` as its bearer key.
pub fn authed(channel: Channel, secret: &str) -> Ch {
    AddAuthorization::bearer(channel, secret)
}

/// Creates a key with `role` directly in the database; returns its secret.
pub async fn create_key(pool: &PgPool, role: Role) -> String {
    store::keys::create(pool, "test", role, None)
        .await
        .expect("create an API key")
        .1
}

/// Options of the test servers: those of production, with a short drain.
pub fn test_options() -> server::Options {
    server::Options {
        grace: Duration::from_secs(5),
        ..server::Options::default()
    }
}

/// A running server on its own database.
pub struct TestApp {
    /// The server's address.
    pub addr: std::net::SocketAddr,
    /// A pool on the test's database, for checks behind the API's back.
    pub pool: PgPool,
    /// The server's Prometheus endpoint.
    pub metrics_addr: std::net::SocketAddr,
    /// Secret of an admin key, which the clients below send.
    pub admin_key: String,
    /// ProgramService client.
    pub programs: ProgramServiceClient<Ch>,
    /// IndicatorService client.
    pub indicators: IndicatorServiceClient<Ch>,
    /// ObservationService client.
    pub observations: ObservationServiceClient<Ch>,
    db_name: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Starts the real server on `127.0.0.1:0` against a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_options()).await
}

/// As [`spawn_app`], with `options`.
pub async fn spawn_app_with(server_options: server::Options) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
    }
    let shared = shared();
    let db_name = format!("tw_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect_with(&shared.admin)
        .await
        .expect("connect admin");
    exec(
        &mut conn,
        &format!("CREATE DATABASE {db_name} TEMPLATE {}", shared.template),
    )
    .await;
    conn.close().await.ok();

    let options = shared.admin.clone().database(&db_name);
    let pool = store::connect_lazy(options, &store::PoolConfig::default());
    let ctx = server::context(pool.clone()).await.expect("context");
    let (metrics_addr, _) =
        tradewatch::metrics::spawn("127.0.0.1:0".parse().expect("addr"), ctx.metrics.clone())
            .await
            .expect("metrics port");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(
        listener,
        ctx,
        async move {
            let _ = rx.await;
        },
        server_options,
    ));
    let admin_key = create_key(&pool, Role::Admin).await;
    // Lazy: a test may serve TLS, which this plaintext channel cannot speak.
    let channel = authed(
        Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy(),
        &admin_key,
    );
    TestApp {
        addr,
        pool,
        programs: ProgramServiceClient::new(channel.clone()),
        indicators: IndicatorServiceClient::new(channel.clone()),
        observations: ObservationServiceClient::new(channel),
        admin_key,
        metrics_addr,
        db_name,
        shutdown: Some(tx),
    }
}

/// A new connection to `addr`, sending no key.
pub async fn raw_channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the test server")
}

impl TestApp {
    /// A new connection to the server, sending the admin key.
    pub async fn channel(&self) -> Ch {
        authed(raw_channel(self.addr).await, &self.admin_key)
    }

    /// A new connection sending a new key with `role`.
    pub async fn channel_as(&self, role: Role) -> Ch {
        let key = create_key(&self.pool, role).await;
        authed(raw_channel(self.addr).await, &key)
    }
}

/// Drops a test database from a thread of its own (the test's runtime may be shutting
/// down); FORCE ends any remaining connections.
fn drop_database(db: String) {
    let admin = shared().admin.clone();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let mut conn = PgConnection::connect_with(&admin).await.ok()?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .ok()
        })
    })
    .join();
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        drop_database(self.db_name.clone());
    }
}

/// Asserts `status` is INVALID_ARGUMENT with a BadRequest violation for `field` and
/// returns that violation's reason.
pub fn assert_invalid(status: &tonic::Status, field: &str) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo detail");
    assert_eq!(info.domain, "tradewatch.dev");
    let bad = details.bad_request().expect("BadRequest detail");
    let v = bad
        .field_violations
        .iter()
        .find(|v| v.field == field)
        .unwrap_or_else(|| panic!("no violation for {field}: {:?}", bad.field_violations));
    assert!(!v.description.is_empty());
    v.reason.clone()
}

/// The ErrorInfo reason of `status`.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// A valid programme message (id chosen by the caller).
pub fn program(title: &str) -> tradewatch::proto::v1::Program {
    tradewatch::proto::v1::Program {
        title: title.into(),
        issuing_body: "Chongqing Municipal People's Government".into(),
        adoption_date: "2015-05-25".into(),
        jurisdiction: "CN-CQ".into(),
        start_year: 2015,
        end_year: 2020,
        summary: "A summary.\nSecond line.".into(),
        source_uri: "https://example.org/plan".into(),
        ..Default::default()
    }
}

/// A valid annual USD indicator message.
pub fn indicator(title: &str) -> tradewatch::proto::v1::Indicator {
    use tradewatch::proto::v1 as pb;
    pb::Indicator {
        title: title.into(),
        unit: "USD".into(),
        unit_multiplier: 8,
        frequency: pb::Frequency::Annual as i32,
        flow: pb::indicator::Flow::Export as i32,
        service_category: "SJ".into(),
        region: "CN-CQ".into(),
        dimensions: [("outsourcing".to_string(), "ITO".to_string())]
            .into_iter()
            .collect(),
        aggregation: pb::indicator::Aggregation::Sum as i32,
        direction: pb::Direction::HigherIsBetter as i32,
        source_agency: "Chongqing Municipal Commission of Commerce".into(),
        ..Default::default()
    }
}

/// A valid active initiative message.
pub fn initiative(title: &str) -> tradewatch::proto::v1::Initiative {
    use tradewatch::proto::v1 as pb;
    pb::Initiative {
        title: title.into(),
        state: pb::initiative::State::Active as i32,
        ..Default::default()
    }
}

/// A valid level target message on `indicator` (a resource name).
pub fn level_target(indicator: &str) -> tradewatch::proto::v1::Target {
    use tradewatch::proto::v1 as pb;
    pb::Target {
        title: "30 billion USD in 2020".into(),
        indicator: indicator.into(),
        kind: pb::target::Kind::Level as i32,
        target_value: "30".into(),
        unit_multiplier: 9,
        target_period: "2020".into(),
        direction: pb::Direction::HigherIsBetter as i32,
        ..Default::default()
    }
}

impl TestApp {
    /// Creates a programme, panicking on failure.
    pub async fn create_program(&mut self, id: &str) -> tradewatch::proto::v1::Program {
        self.programs
            .create_program(tradewatch::proto::v1::CreateProgramRequest {
                request_id: String::new(),
                program: Some(program(&format!("Programme {id}"))),
                program_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("create programs/{id}: {e:?}"))
            .into_inner()
    }

    /// Creates an indicator, panicking on failure.
    pub async fn create_indicator(&mut self, id: &str) -> tradewatch::proto::v1::Indicator {
        self.indicators
            .create_indicator(tradewatch::proto::v1::CreateIndicatorRequest {
                request_id: String::new(),
                indicator: Some(indicator(&format!("Indicator {id}"))),
                indicator_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("create indicators/{id}: {e:?}"))
            .into_inner()
    }

    /// Creates an initiative under `programs/{program}` with an optional parent id.
    pub async fn create_initiative(
        &mut self,
        program: &str,
        id: &str,
        parent: Option<&str>,
    ) -> Result<tradewatch::proto::v1::Initiative, tonic::Status> {
        let mut i = initiative(&format!("Initiative {id}"));
        if let Some(p) = parent {
            i.parent_initiative = format!("programs/{program}/initiatives/{p}");
        }
        self.programs
            .create_initiative(tradewatch::proto::v1::CreateInitiativeRequest {
                request_id: String::new(),
                parent: format!("programs/{program}"),
                initiative: Some(i),
                initiative_id: id.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// Creates a target from `target` under `programs/{program}`.
    pub async fn create_target(
        &mut self,
        program: &str,
        id: &str,
        target: tradewatch::proto::v1::Target,
    ) -> Result<tradewatch::proto::v1::Target, tonic::Status> {
        self.programs
            .create_target(tradewatch::proto::v1::CreateTargetRequest {
                request_id: String::new(),
                parent: format!("programs/{program}"),
                target: Some(target),
                target_id: id.into(),
            })
            .await
            .map(|r| r.into_inner())
    }
}

/// A table-driven invalid-input case: the field expected in the BadRequest, how to spoil
/// a valid message, and the expected reason.
pub type Case<T> = (&'static str, Box<dyn Fn(&mut T)>, &'static str);

// ---------------------------------------------------------------------------------------
// Observations

/// A database of its own, copied from the migrated template, for a test that runs the
/// real `tradewatch` binary against it; dropped (with FORCE) with the value.
pub struct TestDatabase {
    /// URL to pass as `DATABASE_URL`.
    pub url: String,
    /// Options to connect to it from the test.
    pub options: PgConnectOptions,
    name: String,
}

/// Creates a fresh database from the template.
pub async fn create_database() -> TestDatabase {
    use sqlx::ConnectOptions as _;
    let shared = shared();
    let name = format!("tw_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect_with(&shared.admin)
        .await
        .expect("connect admin");
    exec(
        &mut conn,
        &format!("CREATE DATABASE {name} TEMPLATE {}", shared.template),
    )
    .await;
    conn.close().await.ok();
    let options = shared.admin.clone().database(&name);
    TestDatabase {
        url: options.to_url_lossy().to_string(),
        options,
        name,
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        drop_database(self.name.clone());
    }
}

/// An observation to write.
pub fn obs(
    name: &str,
    value: &str,
    status: tradewatch::proto::v1::observation::Status,
) -> tradewatch::proto::v1::Observation {
    tradewatch::proto::v1::Observation {
        name: name.into(),
        value: value.into(),
        status: status as i32,
        ..Default::default()
    }
}

/// Microseconds since the epoch of a timestamp (the database's precision).
pub fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a timestamp");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
}

/// The timestamp `micros` microseconds after the epoch.
pub fn at_micros(micros: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

/// Runs a `SELECT count(*) ...` (or any single bigint) on `pool`.
pub async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

impl TestApp {
    /// Creates an indicator of `frequency` with `unit_multiplier`, panicking on failure.
    pub async fn create_indicator_with(
        &mut self,
        id: &str,
        frequency: tradewatch::proto::v1::Frequency,
        unit_multiplier: i32,
    ) -> tradewatch::proto::v1::Indicator {
        let mut ind = indicator(&format!("Indicator {id}"));
        ind.frequency = frequency as i32;
        ind.unit_multiplier = unit_multiplier;
        self.indicators
            .create_indicator(tradewatch::proto::v1::CreateIndicatorRequest {
                request_id: String::new(),
                indicator: Some(ind),
                indicator_id: id.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("create indicators/{id}: {e:?}"))
            .into_inner()
    }

    /// BatchCreateObservations, panicking on failure.
    pub async fn write(
        &mut self,
        observations: Vec<tradewatch::proto::v1::Observation>,
    ) -> tradewatch::proto::v1::BatchCreateObservationsResponse {
        self.observations
            .batch_create_observations(tradewatch::proto::v1::BatchCreateObservationsRequest {
                request_id: String::new(),
                observations,
                validate_only: false,
            })
            .await
            .unwrap_or_else(|e| panic!("BatchCreateObservations: {e:?}"))
            .into_inner()
    }
}

// ---------------------------------------------------------------------------------------
// Replicas, and the test cluster over TCP

/// Serves the real server on `127.0.0.1:0` over `pool`, in a task of the caller's
/// runtime, as [`spawn_app`] does; it stops when the returned sender is sent to or
/// dropped.
pub async fn serve_pool(
    pool: PgPool,
    options: server::Options,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let ctx = server::context(pool).await.expect("context");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(
        listener,
        ctx,
        async move {
            let _ = rx.await;
        },
        options,
    ));
    (addr, tx)
}

/// A second server on the database of a [`TestApp`], as another replica of a
/// deployment would be: its own pool, its own horizon and change-feed task. Stopped
/// when dropped (the database stays with its `TestApp`).
pub struct Replica {
    /// ObservationService client of the replica, sending the app's admin key.
    pub observations: ObservationServiceClient<Ch>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    /// Starts another server on this app's database (see [`Replica`]).
    pub async fn replica(&self) -> Replica {
        let options = (*self.pool.connect_options()).clone();
        let pool = store::connect_lazy(options, &store::PoolConfig::default());
        let (addr, stop) = serve_pool(pool, test_options()).await;
        let channel = authed(
            Channel::from_shared(format!("http://{addr}"))
                .expect("uri")
                .connect_lazy(),
            &self.admin_key,
        );
        Replica {
            observations: ObservationServiceClient::new(channel),
            _stop: stop,
        }
    }
}

/// The test cluster's admin database over TCP, or `None` when it cannot be reached
/// that way (`DATABASE_URL` names a unix socket).
pub fn tcp_admin() -> Option<PgConnectOptions> {
    shared().tcp.clone()
}
