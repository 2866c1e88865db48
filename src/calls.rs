//! The call layer: what happens to every gRPC call before and after its handler.
//!
//! In order:
//! 1. a request id is taken from `x-request-id` (or generated) and returned in the
//!    response metadata;
//! 2. the API key (`authorization: Bearer …`) is checked against the method's role:
//!    UNAUTHENTICATED / PERMISSION_DENIED before the handler sees the request;
//! 3. at most `max_concurrent_calls` calls run at once (streams that only watch are not
//!    counted); beyond that RESOURCE_EXHAUSTED, at once;
//! 4. the handler runs inside a tracing span carrying the request id, with the caller in
//!    the request's extensions and the store's call context, under a deadline: the
//!    client's `grpc-timeout`, and for unary methods also the server's default;
//!    when it passes, the handler is dropped and the call ends DEADLINE_EXCEEDED (a
//!    write's handler first gets a moment to give its own answer: a write checks its
//!    deadline in the database before it commits, so a committed write answers its
//!    result, and DEADLINE_EXCEEDED means it rolled back);
//! 5. when the response ends (the last message of a stream), one log line and the
//!    metrics record the method, status code, latency, peer and request id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use tonic::Code;
use tonic::body::Body;
use tonic::transport::server::TcpConnectInfo;
use tracing::Instrument as _;

use crate::api::Caller;
use crate::domain::access::{self, Role};
use crate::error::Error;
use crate::metrics::{CallLabels, MethodLabels, Metrics};
use crate::store::{self, call::CallContext};

/// How long a successful key check is reused: a revoked key stops working on every
/// replica within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// Methods whose responses or requests are streams: the server's default deadline does
/// not apply to them (the client's own deadline does).
const STREAMING: [&str; 3] = [
    "/tradewatch.v1.ObservationService/ImportObservations",
    "/tradewatch.v1.ObservationService/ExportObservations",
    "/tradewatch.v1.ObservationService/WatchObservations",
];

/// How long after its deadline a write's handler may still answer (see the call).
const WRITE_GRACE: Duration = Duration::from_millis(250);

/// Methods that may stay open indefinitely; not counted against the concurrency limit.
const LONG_LIVED: [&str; 1] = ["/tradewatch.v1.ObservationService/WatchObservations"];

/// Settings of the call layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deadline of unary calls whose client sets none (or a longer one).
    pub default_deadline: Duration,
    /// Calls run at once, beyond which RESOURCE_EXHAUSTED.
    pub max_concurrent_calls: usize,
    /// Read methods without a key.
    pub anonymous_read: bool,
}

/// Checks API keys against the database, caching successes for [`KEY_CACHE_TTL`].
#[derive(Debug)]
pub struct Authenticator {
    pool: sqlx::PgPool,
    cache: Mutex<HashMap<[u8; 32], (String, Role, Instant)>>,
}

impl Authenticator {
    /// Checks keys in `pool`'s database.
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The key id and role of the bearer token in `header`.
    async fn check(&self, header: &HeaderValue) -> Result<(String, Role), Error> {
        let bad = || {
            Error::Unauthenticated(
                "the authorization metadata must be `Bearer <key>` with a tradewatch API key"
                    .into(),
            )
        };
        let value = header.to_str().map_err(|_| bad())?;
        let (scheme, secret) = value.split_once(' ').ok_or_else(bad)?;
        let secret = secret.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || !access::well_formed(secret) {
            return Err(bad());
        }
        let hash = access::hash(secret);
        let now = Instant::now();
        if let Some((id, role, at)) = self.cache_get(&hash)
            && now.duration_since(at) < KEY_CACHE_TTL
        {
            return Ok((id, role));
        }
        match store::keys::authenticate(&self.pool, &hash).await? {
            Some((id, role)) => {
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= 10_000 {
                    cache.clear();
                }
                cache.insert(hash, (id.clone(), role, now));
                Ok((id, role))
            }
            None => {
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&hash);
                Err(Error::Unauthenticated(
                    "the API key is unknown or has been revoked".into(),
                ))
            }
        }
    }

    fn cache_get(&self, hash: &[u8; 32]) -> Option<(String, Role, Instant)> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }
}

/// Shared state of the layer.
#[derive(Debug)]
struct Shared {
    settings: Settings,
    auth: Authenticator,
    metrics: Arc<Metrics>,
    slots: Arc<tokio::sync::Semaphore>,
}

/// The layer; see the module docs.
#[derive(Debug, Clone)]
pub struct CallLayer {
    shared: Arc<Shared>,
}

impl CallLayer {
    /// A layer with `settings`, checking keys in `pool` and recording into `metrics`.
    pub fn new(settings: Settings, pool: sqlx::PgPool, metrics: Arc<Metrics>) -> Self {
        Self {
            shared: Arc::new(Shared {
                slots: Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_calls)),
                settings,
                auth: Authenticator::new(pool),
                metrics,
            }),
        }
    }
}

impl<S> tower::Layer<S> for CallLayer {
    type Service = CallService<S>;
    fn layer(&self, inner: S) -> CallService<S> {
        CallService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`CallLayer`].
#[derive(Debug, Clone)]
pub struct CallService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// The label of calls to paths that name no method this server serves: every unknown
/// path shares it, so that requests to invented paths (sent without a key, say) cannot
/// grow the metrics without bound.
pub const UNKNOWN_METHOD: &str = "unknown";

/// The methods this server serves (`/package.Service/Method`), from the descriptors of
/// its services, health and reflection.
static KNOWN_METHODS: std::sync::LazyLock<std::collections::HashSet<String>> =
    std::sync::LazyLock::new(|| {
        let mut known = std::collections::HashSet::new();
        for set in [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            // The sets are compiled in; one that does not decode names no method.
            let Ok(pool) = prost_reflect::DescriptorPool::decode(set) else {
                continue;
            };
            for service in pool.services() {
                for method in service.methods() {
                    known.insert(format!("/{}/{}", service.full_name(), method.name()));
                }
            }
        }
        known
    });

/// The metric labels of a call to `path`: its service and method when this server
/// serves it, else [`UNKNOWN_METHOD`] for both.
pub fn method_labels(path: &str) -> MethodLabels {
    match path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .filter(|_| KNOWN_METHODS.contains(path))
    {
        Some((service, method)) => MethodLabels {
            service: service.to_owned(),
            method: method.to_owned(),
        },
        None => MethodLabels {
            service: UNKNOWN_METHOD.to_owned(),
            method: UNKNOWN_METHOD.to_owned(),
        },
    }
}

/// Parses `grpc-timeout` (`1H`, `30S`, `250m`, ...; at most 8 digits).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The request id of a call: the client's `x-request-id` when it is 1 to 128 visible
/// ASCII characters, else a fresh UUID.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn code_of(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

/// The name of a code as in the gRPC spec (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// One call's record: written once, when the response ends or the call is dropped.
struct Record {
    shared: Arc<Shared>,
    labels: MethodLabels,
    path: String,
    start: Instant,
    request_id: String,
    peer: Option<SocketAddr>,
    actor: Option<String>,
    code: Option<Code>,
    done: bool,
    span: tracing::Span,
}

impl Record {
    fn finish(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        let m = &self.shared.metrics;
        let elapsed = self.start.elapsed();
        m.calls
            .get_or_create(&CallLabels {
                service: self.labels.service.clone(),
                method: self.labels.method.clone(),
                code: code_name(code).to_owned(),
            })
            .inc();
        m.latency
            .get_or_create(&self.labels)
            .observe(elapsed.as_secs_f64());
        m.in_flight.get_or_create(&self.labels).dec();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let code = code_name(code);
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        let key = self.actor.as_deref().unwrap_or("");
        let _enter = self.span.enter();
        if matches!(code, "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "UNAVAILABLE") {
            tracing::warn!(target: "tradewatch::call", method = %self.path, code, latency_ms, peer, request_id = %self.request_id, key, "call finished");
        } else {
            tracing::info!(target: "tradewatch::call", method = %self.path, code, latency_ms, peer, request_id = %self.request_id, key, "call finished");
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // Dropped before its end: the client went away (or the server cut the call).
        let code = self.code.unwrap_or(Code::Cancelled);
        self.finish(code);
    }
}

pin_project_lite::pin_project! {
    /// A response body that finishes the call's [`Record`] when it ends.
    struct RecordedBody {
        #[pin]
        inner: Body,
        record: Record,
    }
}

impl http_body::Body for RecordedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(code) = code_of(trailers)
                {
                    this.record.code = Some(code);
                    this.record.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.record.finish(Code::Internal),
            Poll::Ready(None) => {
                let code = this.record.code.unwrap_or(Code::Unknown);
                this.record.finish(code);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Runs `fut`, giving up at `until` when there is one.
async fn within<F: std::future::Future>(
    until: Option<tokio::time::Instant>,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    match until {
        Some(t) => tokio::time::timeout_at(t, fut).await,
        None => Ok(fut.await),
    }
}

/// tonic refuses a request message over the decoding limit with OUT_OF_RANGE; gRPC
/// specifies RESOURCE_EXHAUSTED, and the limit is documented so. The refusal is a
/// trailers-only response (the handler has not started, or a client-streaming one
/// ended on it), so its status is in the headers.
fn too_large_is_resource_exhausted(mut response: http::Response<Body>) -> http::Response<Body> {
    let headers = response.headers_mut();
    let too_large = code_of(headers) == Some(Code::OutOfRange)
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains("decoded%20message%20length%20too%20large"));
    if too_large {
        // 8: RESOURCE_EXHAUSTED.
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
    response
}

/// A request tonic could not decode (invalid UTF-8 in a string, a truncated field, bytes
/// that are no protobuf) comes back from tonic as INTERNAL, "failed to decode Protobuf
/// message: Msg.field: Msg2.field2: why". It is the caller's input that is wrong, so the
/// layer answers INVALID_ARGUMENT with a BadRequest naming the field path prost reports
/// (`field.field2`), like every other refusal of bad input.
fn undecodable_is_invalid_argument(response: http::Response<Body>) -> http::Response<Body> {
    const PREFIX: &str = "failed to decode Protobuf message";
    if code_of(response.headers()) != Some(Code::Internal) {
        return response;
    }
    let Some(message) = response
        .headers()
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .filter(|m| m.starts_with(PREFIX))
    else {
        return response;
    };
    // `Type.field` segments, innermost first (prost's order), joined outermost first.
    let mut path: Vec<&str> = message
        .split(": ")
        .skip(1)
        .filter_map(|segment| {
            let (ty, field) = segment.split_once('.')?;
            let ident = |s: &str| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            (ident(ty) && ident(field)).then_some(field)
        })
        .collect();
    path.reverse();
    let field = path.join(".");
    let status = tonic::Status::from(Error::invalid(
        field,
        "UNDECODABLE_REQUEST",
        format!("the request is not a valid protobuf message ({message})"),
    ));
    let mut refused = status.into_http();
    if let Some(v) = response.headers().get("x-request-id") {
        refused.headers_mut().insert("x-request-id", v.clone());
    }
    refused
}

/// Decodes the percent-encoding of a `grpc-message` header.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn with_request_id(mut response: http::Response<Body>, request_id: &str) -> http::Response<Body> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

impl<S, B> tower::Service<http::Request<B>> for CallService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The clone that was driven ready serves this call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let path = req.uri().path().to_owned();
        let labels = method_labels(&path);
        let request_id = request_id(req.headers());
        let peer = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(|i| i.remote_addr());
        let span = tracing::info_span!("call", method = %path, request_id = %request_id);
        shared.metrics.in_flight.get_or_create(&labels).inc();
        let mut record = Record {
            shared: shared.clone(),
            labels,
            path: path.clone(),
            start: Instant::now(),
            request_id: request_id.clone(),
            peer,
            actor: None,
            code: None,
            done: false,
            span: span.clone(),
        };
        let fut = async move {
            let refuse = |mut record: Record, e: Error| {
                let status = tonic::Status::from(e);
                record.code = Some(status.code());
                record.finish(status.code());
                Ok(with_request_id(status.into_http(), &record.request_id))
            };
            let required = access::required_role(&path);
            // The deadline: tonic's own grpc-timeout handling (outside this layer)
            // would end the call CANCELLED; this one fires a little earlier and answers
            // DEADLINE_EXCEEDED, as gRPC specifies. It covers the key check too (a
            // database that hangs must not hold a call past its deadline).
            let client = grpc_timeout(req.headers()).map(|t| {
                t.saturating_sub(Duration::from_millis(5))
                    .max(t.mul_f64(0.9))
            });
            let server = (required.is_some() && !STREAMING.contains(&path.as_str()))
                .then_some(shared.settings.default_deadline);
            let deadline = match (client, server) {
                (Some(c), Some(s)) => Some(c.min(s)),
                (c, s) => c.or(s),
            };
            let until = deadline.map(|d| tokio::time::Instant::now() + d);
            // Who is calling, and may they?
            let mut caller = Caller::default();
            if let Some(required) = required {
                match req.headers().get(http::header::AUTHORIZATION) {
                    None if shared.settings.anonymous_read && required == Role::Viewer => {}
                    None => {
                        return refuse(
                            record,
                            Error::Unauthenticated(
                                "this method needs an API key: send `authorization: Bearer <key>` \
                                 metadata (create keys with `tradewatch keys create`)"
                                    .into(),
                            ),
                        );
                    }
                    Some(header) => match within(until, shared.auth.check(header))
                        .await
                        .unwrap_or(Err(Error::DeadlineExceeded))
                    {
                        Ok((id, role)) => {
                            record.actor = Some(id.clone());
                            if role < required {
                                return refuse(
                                    record,
                                    Error::PermissionDenied(format!(
                                        "{path} needs a key with the {} role; apiKeys/{id} has the {} role",
                                        required.as_str(),
                                        role.as_str()
                                    )),
                                );
                            }
                            caller.key_id = Some(id);
                        }
                        Err(e) => return refuse(record, e),
                    },
                }
            }
            // Room for one more call?
            let _slot = if LONG_LIVED.contains(&path.as_str()) {
                None
            } else {
                match shared.slots.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        let status = tonic::Status::resource_exhausted(format!(
                            "the server is running its maximum of {} concurrent calls; retry with backoff",
                            shared.settings.max_concurrent_calls
                        ));
                        record.code = Some(status.code());
                        record.finish(status.code());
                        return Ok(with_request_id(status.into_http(), &request_id));
                    }
                }
            };
            let ctx = CallContext {
                actor: caller.key_id.clone(),
                method: path.trim_start_matches('/').to_owned(),
                request_id: request_id.clone(),
                claim: None,
                deadline: deadline.map(|d| Instant::now() + d),
            };
            req.extensions_mut().insert(caller);
            let handler = store::call::scope(ctx, inner.call(req));
            // A write that reaches its deadline in the database rolls back and answers
            // DEADLINE_EXCEEDED itself; one that committed answers its result. Either
            // answer comes moments after the deadline, so a write gets WRITE_GRACE more
            // to give it (bounded by tonic, which ends the call at the client's own
            // deadline, a little after this one).
            let writes = required.is_some_and(|r| r > Role::Viewer);
            tokio::pin!(handler);
            let result = match within(until, &mut handler).await {
                Ok(r) => r,
                Err(_) if writes => match tokio::time::timeout(WRITE_GRACE, &mut handler).await {
                    Ok(r) => r,
                    Err(_) => return refuse(record, Error::DeadlineExceeded),
                },
                Err(_) => {
                    return refuse(record, Error::DeadlineExceeded);
                }
            };
            let response =
                undecodable_is_invalid_argument(too_large_is_resource_exhausted(result?));
            if let Some(code) = code_of(response.headers()) {
                // Trailers-only response: the status is in the headers.
                record.code = Some(code);
            }
            let response = with_request_id(response, &request_id);
            Ok(response.map(|inner| Body::new(RecordedBody { inner, record })))
        };
        Box::pin(fut.instrument(span))
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn served_methods_are_labelled_by_name_and_every_other_path_shares_one_label() {
        let known = |path: &str| {
            let l = method_labels(path);
            (l.service, l.method)
        };
        assert_eq!(
            known("/tradewatch.v1.ObservationService/ImportObservations"),
            (
                "tradewatch.v1.ObservationService".into(),
                "ImportObservations".into()
            )
        );
        assert_eq!(
            known("/tradewatch.v1.AdminService/CreateApiKey").0,
            "tradewatch.v1.AdminService"
        );
        assert_eq!(
            known("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health".into(), "Check".into())
        );
        assert_eq!(
            known("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").1,
            "ServerReflectionInfo"
        );
        for invented in [
            "/tradewatch.v1.ProgramService/GetX1",
            "/tradewatch.v1.NoSuchService/GetProgram",
            "/x",
            "",
            "/metrics",
        ] {
            assert_eq!(
                known(invented),
                ("unknown".into(), "unknown".into()),
                "{invented}"
            );
        }
    }
}
