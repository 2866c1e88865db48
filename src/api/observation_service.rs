//! `tradewatch.v1.ObservationService`: batch writes, streamed imports, as-of reads,
//! revision history, exports and the change feed.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use prost::Message as _;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{optional_time, timestamp};
use super::idempotency::{self, Plan};
use super::{Context, finish};
use crate::domain::names::{IndicatorName, truncate};
use crate::domain::observation::{self, MAX_COMMENT, MAX_SOURCE, ObsStatus, ObservationName};
use crate::domain::text;
use crate::domain::{FieldViolation, Invalid, Period, Violations};
use crate::error::Error;
use crate::proto::v1 as pb;
use crate::proto::v1::observation_service_server::ObservationService;
use crate::store::observations::{
    self as store, ChangeKind, ExportRow, FeedPosition, IndicatorRef, ListFilter, Merged,
    StagedRow, StagingHandle, Version,
};

/// Most observations in one BatchCreateObservations call or one import message.
pub const MAX_BATCH: usize = 10_000;
/// Most row errors listed when an import is refused.
pub const MAX_REPORTED_ERRORS: usize = 100;
/// Default and maximum page sizes of the observation lists.
pub const DEFAULT_PAGE: i64 = 500;
/// Largest page of the observation lists.
pub const MAX_PAGE: i64 = 10_000;
/// Rows per export chunk.
pub const EXPORT_CHUNK: usize = 5_000;
/// Changes per WatchObservations message at most.
pub const WATCH_BATCH: i64 = 1_000;
/// Heartbeat interval of WatchObservations while nothing changes.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Serves observations.
#[derive(Debug, Clone)]
pub struct ObservationApi {
    ctx: Context,
}

impl ObservationApi {
    /// A service over `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

// ---------------------------------------------------------------------------------------
// Conversions

fn status_from_proto(value: i32) -> Result<ObsStatus, Invalid> {
    use pb::observation::Status as S;
    Ok(match S::try_from(value) {
        Ok(S::Unspecified | S::Normal) => ObsStatus::Normal,
        Ok(S::Break) => ObsStatus::Break,
        Ok(S::DefinitionDiffers) => ObsStatus::DefinitionDiffers,
        Ok(S::Estimated) => ObsStatus::Estimated,
        Ok(S::Forecast) => ObsStatus::Forecast,
        Ok(S::Experimental) => ObsStatus::Experimental,
        Ok(S::MissingHoliday) => ObsStatus::MissingHoliday,
        Ok(S::Imputed) => ObsStatus::Imputed,
        Ok(S::MissingNotCollected) => ObsStatus::MissingNotCollected,
        Ok(S::MissingCannotExist) => ObsStatus::MissingCannotExist,
        Ok(S::NotSignificant) => ObsStatus::NotSignificant,
        Ok(S::Missing) => ObsStatus::Missing,
        Ok(S::Provisional) => ObsStatus::Provisional,
        Ok(S::MissingSuppressed) => ObsStatus::MissingSuppressed,
        Ok(S::Strike) => ObsStatus::Strike,
        Ok(S::LowReliability) => ObsStatus::LowReliability,
        Ok(S::Unvalidated) => ObsStatus::Unvalidated,
        Err(_) => {
            return Err(Invalid::new(
                "INVALID_ENUM",
                format!("{value} is not a known observation status"),
            ));
        }
    })
}

/// The wire value of a status.
pub fn status_to_proto(s: ObsStatus) -> pb::observation::Status {
    use pb::observation::Status as S;
    match s {
        ObsStatus::Normal => S::Normal,
        ObsStatus::Break => S::Break,
        ObsStatus::DefinitionDiffers => S::DefinitionDiffers,
        ObsStatus::Estimated => S::Estimated,
        ObsStatus::Forecast => S::Forecast,
        ObsStatus::Experimental => S::Experimental,
        ObsStatus::MissingHoliday => S::MissingHoliday,
        ObsStatus::Imputed => S::Imputed,
        ObsStatus::MissingNotCollected => S::MissingNotCollected,
        ObsStatus::MissingCannotExist => S::MissingCannotExist,
        ObsStatus::NotSignificant => S::NotSignificant,
        ObsStatus::Missing => S::Missing,
        ObsStatus::Provisional => S::Provisional,
        ObsStatus::MissingSuppressed => S::MissingSuppressed,
        ObsStatus::Strike => S::Strike,
        ObsStatus::LowReliability => S::LowReliability,
        ObsStatus::Unvalidated => S::Unvalidated,
    }
}

/// The wire form of a stored version.
pub fn version_to_proto(v: &Version) -> pb::Observation {
    pb::Observation {
        name: v.name.to_string(),
        value: v.value.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        status: status_to_proto(v.status) as i32,
        comment: v.comment.clone(),
        source: v.source.clone(),
        known_from: Some(timestamp(v.known_from)),
        known_until: v.known_until.map(timestamp),
        deleted: v.deleted,
    }
}

/// Parses one observation to write; problems are named by the bare field (`value`).
fn parse_observation(
    o: &pb::Observation,
    v: &mut Violations,
) -> Option<observation::ObservationInput> {
    let pb::Observation {
        name,
        value,
        status,
        comment,
        source,
        known_from: _,
        known_until: _,
        deleted: _,
    } = o;
    let name = v.check("name", ObservationName::parse(name));
    let status = v.check("status", status_from_proto(*status));
    let value = status.and_then(|s| v.check("value", observation::check_value(value, s)));
    let comment = v.check("comment", text::optional_text(comment, MAX_COMMENT));
    let source = v.check("source", text::optional_line(source, MAX_SOURCE));
    Some(observation::ObservationInput {
        name: name?,
        value: value?,
        status: status?,
        comment: comment?,
        source: source?,
    })
}

/// Resolves indicators (cached across the chunks of one call) and checks that each
/// period is in its indicator's frequency; returns the rows to stage.
struct Resolver {
    cache: HashMap<String, Option<IndicatorRef>>,
}

impl Resolver {
    fn new() -> Self {
        Self {
            cache: HashMap::new(),
        }
    }

    async fn resolve(&mut self, ctx: &Context, names: &[&str]) -> Result<(), Error> {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !self.cache.contains_key(*n))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let found = store::lookup_indicators(&ctx.pool, &missing).await?;
        for m in missing {
            self.cache.insert(m.to_owned(), found.get(m).copied());
        }
        Ok(())
    }

    /// Parses and checks a chunk whose first row has index `first`.
    async fn chunk(
        &mut self,
        ctx: &Context,
        observations: &[pb::Observation],
        first: i64,
        field: &str,
        errors: &mut Vec<FieldViolation>,
    ) -> Result<Vec<StagedRow>, Error> {
        let mut inputs = Vec::with_capacity(observations.len());
        for (i, o) in observations.iter().enumerate() {
            let index = first + i as i64;
            let mut v = Violations::new();
            let parsed = parse_observation(o, &mut v);
            // Field paths are built only for the rows that have problems.
            errors.extend(v.into_vec().into_iter().map(|f| FieldViolation {
                field: format!("{field}[{index}].{}", f.field),
                ..f
            }));
            inputs.push((index, parsed));
        }
        let ids: Vec<&str> = inputs
            .iter()
            .filter_map(|(_, p)| p.as_ref().map(|p| p.name.indicator.as_str()))
            .collect();
        self.resolve(ctx, &ids).await?;
        let mut rows = Vec::with_capacity(inputs.len());
        for (index, parsed) in inputs {
            let Some(input) = parsed else { continue };
            let name_field = format!("{field}[{index}].name");
            match self
                .cache
                .get(input.name.indicator.as_str())
                .copied()
                .flatten()
            {
                None => errors.push(FieldViolation::new(
                    name_field,
                    "NOT_FOUND",
                    format!("indicators/{} does not exist", input.name.indicator),
                )),
                Some(ind) if ind.frequency != input.name.period.frequency() => {
                    errors.push(FieldViolation::new(
                        name_field,
                        "PERIOD_FREQUENCY_MISMATCH",
                        format!(
                            "{} is {} but indicators/{} is {}",
                            input.name.period,
                            input.name.period.frequency().describe(),
                            input.name.indicator,
                            ind.frequency.describe()
                        ),
                    ))
                }
                Some(ind) => rows.push(StagedRow {
                    index,
                    indicator_key: ind.key,
                    period: input.name.period,
                    value: input.value,
                    status: input.status,
                    comment: input.comment,
                    source: input.source,
                    deleted: false,
                }),
            }
        }
        Ok(rows)
    }
}

fn refuse_rows(errors: Vec<FieldViolation>, total: i64) -> Status {
    let shown: Vec<FieldViolation> = errors.into_iter().take(MAX_REPORTED_ERRORS).collect();
    let first = shown
        .first()
        .map(|f| format!("{}: {}", f.field, f.description))
        .unwrap_or_default();
    let found = shown.len();
    let mut status: Status = Error::InvalidArgument(shown).into();
    let message = format!(
        "nothing was written: {found}{} problems in the {total} rows read; the first: {first} \
         (the details list the first problems, as many as fit in {} KiB)",
        if found == MAX_REPORTED_ERRORS {
            " or more"
        } else {
            ""
        },
        crate::error::DETAILS_BUDGET / 1024
    );
    status = Status::with_details(status.code(), message, status.details().to_vec().into());
    status
}

async fn check_duplicates(staging: &mut StagingHandle, field: &str) -> Result<(), Status> {
    let dups = staging.duplicates(MAX_REPORTED_ERRORS as i64).await?;
    if dups.is_empty() {
        return Ok(());
    }
    let errors = dups
        .into_iter()
        .map(|(idx, first)| {
            FieldViolation::new(
                format!("{field}[{idx}].name"),
                "DUPLICATE",
                format!("the same observation as {field}[{first}]; each may appear once per call"),
            )
        })
        .collect();
    Err(Error::InvalidArgument(errors).into())
}

// ---------------------------------------------------------------------------------------
// Cursors of the change feed

fn encode_cursor(p: &FeedPosition) -> String {
    let text = match &p.within {
        Some((key, period)) => format!("1.{}.{}.{}", p.seq, key, period),
        None => format!("1.{}", p.seq),
    };
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(s: &str) -> Result<FeedPosition, Invalid> {
    let bad = || {
        Invalid::new(
            "INVALID_CURSOR",
            format!(
                "{:?} is not a cursor returned by WatchObservations",
                truncate(s)
            ),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(4, '.');
    if parts.next() != Some("1") {
        return Err(bad());
    }
    let seq: i64 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .filter(|s| *s >= 0)
        .ok_or_else(bad)?;
    let within = match (parts.next(), parts.next()) {
        (None, None) => None,
        (Some(k), Some(p)) => {
            let key: i32 = k.parse().map_err(|_| bad())?;
            let period = Period::parse(p).map_err(|_| bad())?;
            Some((key, period.to_string()))
        }
        _ => return Err(bad()),
    };
    Ok(FeedPosition { seq, within })
}

// ---------------------------------------------------------------------------------------
// Export formats

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Header of the plain CSV format.
pub const CSV_HEADER: &str = "indicator,period,value,status,comment,source\n";
/// Header of the SDMX-CSV format.
pub const SDMX_CSV_HEADER: &str = "DATAFLOW,INDICATOR,FREQ,TIME_PERIOD,OBS_VALUE,OBS_STATUS,UNIT_MEASURE,UNIT_MULT,COMMENT,SOURCE\n";
/// The DATAFLOW column of SDMX-CSV.
pub const SDMX_DATAFLOW: &str = "TRADEWATCH:OBSERVATIONS(1.0)";

fn render(rows: &[ExportRow], sdmx: bool, out: &mut String) {
    for r in rows {
        let v = &r.version;
        let value = v.value.as_ref().map(|d| d.as_str()).unwrap_or("");
        if sdmx {
            out.push_str(SDMX_DATAFLOW);
            out.push(',');
            csv_field(out, v.name.indicator.as_str());
            out.push(',');
            out.push_str(r.frequency.code());
            out.push(',');
            out.push_str(&v.name.period.to_string());
            out.push(',');
            out.push_str(value);
            out.push(',');
            out.push_str(v.status.code());
            out.push(',');
            csv_field(out, &r.unit);
            out.push(',');
            out.push_str(&r.unit_multiplier.to_string());
            out.push(',');
        } else {
            csv_field(out, v.name.indicator.as_str());
            out.push(',');
            out.push_str(&v.name.period.to_string());
            out.push(',');
            out.push_str(value);
            out.push(',');
            out.push_str(v.status.code());
            out.push(',');
        }
        csv_field(out, &v.comment);
        out.push(',');
        csv_field(out, &v.source);
        out.push('\n');
    }
}

/// Counts the rows of a committed write in the metrics.
fn count_rows(ctx: &Context, merged: &Merged) {
    use crate::metrics::RowLabels;
    let c = &merged.counts;
    for (outcome, n) in [
        ("inserted", c.inserted),
        ("revised", c.revised),
        ("unchanged", c.unchanged),
        ("deleted", c.deleted),
    ] {
        if n > 0 {
            ctx.metrics
                .rows
                .get_or_create(&RowLabels { outcome })
                .inc_by(n as u64);
        }
    }
}

fn import_response(merged: &Merged, validate_only: bool) -> pb::ImportObservationsResponse {
    pb::ImportObservationsResponse {
        inserted: merged.counts.inserted,
        revised: merged.counts.revised,
        unchanged: merged.counts.unchanged,
        validate_only,
        commit_time: merged.commit_time.map(timestamp),
    }
}

/// The result stored with a request id (written in the same transaction as the data).
fn replayed(stored: Option<Vec<u8>>) -> Result<Merged, Status> {
    let bytes = stored.ok_or_else(|| {
        Error::internal(anyhow::anyhow!(
            "an observation write's claim has no result"
        ))
    })?;
    Ok(Merged::from_stored(&bytes)?)
}

/// After a concurrent call with the same request id won: its stored result, or
/// INVALID_ARGUMENT when it was a different request.
async fn replay_after_race(
    ctx: &Context,
    method: &str,
    request_id: Option<uuid::Uuid>,
    fingerprint: Vec<u8>,
) -> Result<Merged, Status> {
    match idempotency::plan(&ctx.pool, "request_id", method, request_id, fingerprint).await? {
        Plan::Replay(stored) => replayed(stored),
        _ => Err(Error::RequestReplayed.into()),
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ObservationService for ObservationApi {
    async fn batch_create_observations(
        &self,
        request: Request<pb::BatchCreateObservationsRequest>,
    ) -> Result<Response<pb::BatchCreateObservationsResponse>, Status> {
        const METHOD: &str = "tradewatch.v1.ObservationService/BatchCreateObservations";
        let encoded = request.get_ref().encode_to_vec();
        let pb::BatchCreateObservationsRequest {
            observations,
            validate_only,
            request_id,
        } = request.into_inner();
        let request_id = idempotency::parse_request_id("request_id", &request_id)?;
        if observations.is_empty() || observations.len() > MAX_BATCH {
            return Err(Error::invalid(
                "observations",
                if observations.is_empty() {
                    "REQUIRED"
                } else {
                    "TOO_MANY"
                },
                format!(
                    "1 to {MAX_BATCH} observations per call (got {})",
                    observations.len()
                ),
            )
            .into());
        }
        let mut errors = Vec::new();
        let rows = Resolver::new()
            .chunk(&self.ctx, &observations, 0, "observations", &mut errors)
            .await?;
        if !errors.is_empty() {
            return Err(refuse_rows(errors, observations.len() as i64));
        }
        let keys: Vec<(i32, String)> = rows
            .iter()
            .map(|r| (r.indicator_key, r.period.to_string()))
            .collect();
        let fingerprint = idempotency::fingerprint(METHOD, &[&encoded]);
        let plan = if validate_only {
            Plan::Plain
        } else {
            idempotency::plan(
                &self.ctx.pool,
                "request_id",
                METHOD,
                request_id,
                fingerprint.clone(),
            )
            .await?
        };
        let merged = match plan {
            Plan::Replay(stored) => replayed(stored)?,
            Plan::Plain | Plan::Apply(_) => {
                let claim = match plan {
                    Plan::Apply(c) => Some(c),
                    _ => None,
                };
                let _turn = self.ctx.writer_turn().await?;
                let mut staging = StagingHandle::begin(&self.ctx.pool).await?;
                staging.append(rows).await?;
                check_duplicates(&mut staging, "observations").await?;
                match staging
                    .merge("BatchCreateObservations", validate_only, claim)
                    .await
                {
                    Err(Error::RequestReplayed) => {
                        replay_after_race(&self.ctx, METHOD, request_id, fingerprint).await?
                    }
                    other => other?,
                }
            }
        };
        if !validate_only {
            count_rows(&self.ctx, &merged);
        }
        let observations = if validate_only {
            Vec::new()
        } else {
            // As the write left them (as of its commit), not as later writers may have
            // changed them since: the same answer for the call and for its retries.
            let current = store::current(&self.ctx.pool, &keys, merged.commit_time).await?;
            keys.iter()
                .filter_map(|k| current.get(k).map(version_to_proto))
                .collect()
        };
        Ok(Response::new(pb::BatchCreateObservationsResponse {
            observations,
            inserted: merged.counts.inserted,
            revised: merged.counts.revised,
            unchanged: merged.counts.unchanged,
        }))
    }

    async fn import_observations(
        &self,
        request: Request<Streaming<pb::ImportObservationsRequest>>,
    ) -> Result<Response<pb::ImportObservationsResponse>, Status> {
        const METHOD: &str = "tradewatch.v1.ObservationService/ImportObservations";
        let mut stream = request.into_inner();
        let mut first = stream.message().await?;
        let (validate_first, request_id) = match &first {
            Some(m) => (
                m.validate_only,
                idempotency::parse_request_id("request_id", &m.request_id)?,
            ),
            None => (false, None),
        };
        let request_id = request_id.filter(|_| !validate_first);
        // With a request id, every message goes into the request's fingerprint.
        let mut fingerprint = request_id.map(|_| idempotency::Fingerprint::new(METHOD));
        if let Some(id) = request_id
            && crate::store::idempotency::find(&self.ctx.pool, id)
                .await?
                .is_some()
        {
            // A retry: read the whole stream to check it is the same request.
            let fp = fingerprint.as_mut().unwrap_or_else(|| unreachable!());
            while let Some(m) = match first.take() {
                Some(m) => Some(m),
                None => stream.message().await?,
            } {
                fp.add(&m.encode_to_vec());
            }
            let fp = fingerprint.take().map(|f| f.finish()).unwrap_or_default();
            let merged = replay_after_race(&self.ctx, METHOD, Some(id), fp).await?;
            return Ok(Response::new(import_response(&merged, false)));
        }
        let _turn = self.ctx.writer_turn().await?;
        let mut staging = StagingHandle::begin(&self.ctx.pool).await?;
        let mut resolver = Resolver::new();
        let mut errors = Vec::new();
        let mut next: i64 = 0;
        let validate_only = validate_first;
        // An error from the stream (the client cancelled, the connection broke) returns
        // here: the transaction is dropped and rolls back, so nothing is written.
        while let Some(message) = match first.take() {
            Some(m) => Some(m),
            None => stream.message().await?,
        } {
            if let Some(fp) = fingerprint.as_mut() {
                fp.add(&message.encode_to_vec());
            }
            let pb::ImportObservationsRequest { observations, .. } = message;
            if observations.len() > MAX_BATCH {
                return Err(Error::invalid(
                    "observations",
                    "TOO_MANY",
                    format!(
                        "at most {MAX_BATCH} observations per message (got {}); send more messages",
                        observations.len()
                    ),
                )
                .into());
            }
            let rows = resolver
                .chunk(&self.ctx, &observations, next, "observations", &mut errors)
                .await?;
            next += observations.len() as i64;
            if errors.is_empty() {
                staging.append(rows).await?;
            } else if errors.len() >= MAX_REPORTED_ERRORS {
                // Enough to report; stop reading (the client sees the error on its send).
                break;
            }
        }
        if !errors.is_empty() {
            return Err(refuse_rows(errors, next));
        }
        check_duplicates(&mut staging, "observations").await?;
        let rows = staging.rows();
        let fingerprint = fingerprint.map(|f| f.finish());
        let claim = request_id
            .zip(fingerprint.clone())
            .map(|(request_id, fingerprint)| crate::store::call::Claim {
                request_id,
                method: METHOD.to_owned(),
                fingerprint,
            });
        let merged = match staging
            .merge("ImportObservations", validate_only, claim)
            .await
        {
            Err(Error::RequestReplayed) => {
                replay_after_race(
                    &self.ctx,
                    METHOD,
                    request_id,
                    fingerprint.unwrap_or_default(),
                )
                .await?
            }
            other => other?,
        };
        tracing::info!(
            rows,
            inserted = merged.counts.inserted,
            revised = merged.counts.revised,
            unchanged = merged.counts.unchanged,
            validate_only,
            "import"
        );
        if !validate_only {
            count_rows(&self.ctx, &merged);
        }
        Ok(Response::new(import_response(&merged, validate_only)))
    }

    async fn get_observation(
        &self,
        request: Request<pb::GetObservationRequest>,
    ) -> Result<Response<pb::Observation>, Status> {
        let pb::GetObservationRequest { name, as_of } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ObservationName::parse(&name));
        let as_of = optional_time(&mut v, "as_of", &as_of);
        let (name, as_of) = finish(v, || Some((name?, as_of?)))?;
        let found = store::get(&self.ctx.pool, &name, as_of).await?;
        Ok(Response::new(version_to_proto(&found)))
    }

    async fn list_observations(
        &self,
        request: Request<pb::ListObservationsRequest>,
    ) -> Result<Response<pb::ListObservationsResponse>, Status> {
        let pb::ListObservationsRequest {
            parent,
            start_period,
            end_period,
            as_of,
            updated_after,
            page_size: size,
            page_token,
        } = request.into_inner();
        let mut v = Violations::new();
        let parent = v.check("parent", IndicatorName::parse(&parent));
        let start = if start_period.is_empty() {
            Some(None)
        } else {
            v.check("start_period", Period::parse(&start_period))
                .map(Some)
        };
        let end = if end_period.is_empty() {
            Some(None)
        } else {
            v.check("end_period", Period::parse(&end_period)).map(Some)
        };
        let as_of_t = optional_time(&mut v, "as_of", &as_of);
        let updated_t = optional_time(&mut v, "updated_after", &updated_after);
        let (parent, start, end, as_of_t, updated_t) =
            finish(v, || Some((parent?, start?, end?, as_of_t?, updated_t?)))?;
        let indicator = store::lookup_indicators(&self.ctx.pool, &[parent.0.as_str()])
            .await?
            .remove(parent.0.as_str())
            .ok_or_else(|| Error::NotFound(parent.to_string()))?;
        let mut v = Violations::new();
        for (field, p) in [("start_period", start), ("end_period", end)] {
            if let Some(p) = p.filter(|p| p.frequency() != indicator.frequency) {
                v.push(
                    field,
                    "PERIOD_FREQUENCY_MISMATCH",
                    format!(
                        "{p} is not {} like {parent}",
                        indicator.frequency.describe()
                    ),
                );
            }
        }
        finish(v, || Some(()))?;
        let fingerprint = format!(
            "ListObservations {parent} {start_period} {end_period} {as_of:?} {updated_after:?}"
        );
        let page = self.ctx.page_tokens.page_sized(
            &fingerprint,
            size,
            &page_token,
            DEFAULT_PAGE,
            MAX_PAGE,
        )?;
        let filter = ListFilter {
            start,
            end,
            as_of: as_of_t,
            updated_after: updated_t,
        };
        let mut rows = store::list(
            &self.ctx.pool,
            &parent.0,
            &filter,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
        let next_page_token = self
            .ctx
            .page_tokens
            .finish(&fingerprint, &page, &mut rows, |r| {
                r.name.period.to_string()
            });
        Ok(Response::new(pb::ListObservationsResponse {
            observations: rows.iter().map(version_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_observation_revisions(
        &self,
        request: Request<pb::ListObservationRevisionsRequest>,
    ) -> Result<Response<pb::ListObservationRevisionsResponse>, Status> {
        let pb::ListObservationRevisionsRequest {
            name,
            page_size: size,
            page_token,
        } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ObservationName::parse(&name));
        let name = finish(v, || name)?;
        let fingerprint = format!("ListObservationRevisions {name}");
        let page = self.ctx.page_tokens.page_sized(
            &fingerprint,
            size,
            &page_token,
            DEFAULT_PAGE,
            MAX_PAGE,
        )?;
        let after = match page.after.as_deref() {
            None => None,
            Some(micros) => {
                let micros: i64 = micros.parse().map_err(|_| {
                    Status::from(Error::invalid(
                        "page_token",
                        "INVALID_PAGE_TOKEN",
                        "bad page token",
                    ))
                })?;
                DateTime::from_timestamp_micros(micros)
            }
        };
        let mut rows = store::revisions(&self.ctx.pool, &name, after, page.fetch_limit()).await?;
        if rows.is_empty() && page.after.is_none() {
            return Err(Error::NotFound(name.to_string()).into());
        }
        let next_page_token = self
            .ctx
            .page_tokens
            .finish(&fingerprint, &page, &mut rows, |r| {
                r.known_from.timestamp_micros().to_string()
            });
        Ok(Response::new(pb::ListObservationRevisionsResponse {
            revisions: rows.iter().map(version_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn delete_observation(
        &self,
        request: Request<pb::DeleteObservationRequest>,
    ) -> Result<Response<()>, Status> {
        let pb::DeleteObservationRequest { name } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ObservationName::parse(&name));
        let name = finish(v, || name)?;
        let indicator = store::lookup_indicators(&self.ctx.pool, &[name.indicator.as_str()])
            .await?
            .remove(name.indicator.as_str())
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let _turn = self.ctx.writer_turn().await?;
        let mut staging = StagingHandle::begin(&self.ctx.pool).await?;
        staging
            .append(vec![StagedRow {
                index: 0,
                indicator_key: indicator.key,
                period: name.period,
                value: None,
                status: ObsStatus::Normal,
                comment: String::new(),
                source: String::new(),
                deleted: true,
            }])
            .await?;
        staging
            .merge("DeleteObservation", false, None)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::NotFound(name.to_string()),
                other => other,
            })?;
        Ok(Response::new(()))
    }

    type ExportObservationsStream = BoxStream<pb::ExportObservationsResponse>;

    async fn export_observations(
        &self,
        request: Request<pb::ExportObservationsRequest>,
    ) -> Result<Response<Self::ExportObservationsStream>, Status> {
        let pb::ExportObservationsRequest {
            indicators,
            start_period,
            end_period,
            as_of,
            format,
        } = request.into_inner();
        let mut v = Violations::new();
        let mut ids = Vec::new();
        for (i, n) in indicators.iter().enumerate() {
            if let Some(n) = v.check(&format!("indicators[{i}]"), IndicatorName::parse(n)) {
                ids.push(n.0.as_str().to_owned());
            }
        }
        let start = if start_period.is_empty() {
            Some(None)
        } else {
            v.check("start_period", Period::parse(&start_period))
                .map(Some)
        };
        let end = if end_period.is_empty() {
            Some(None)
        } else {
            v.check("end_period", Period::parse(&end_period)).map(Some)
        };
        let as_of = optional_time(&mut v, "as_of", &as_of);
        let format = v.check(
            "format",
            pb::export_observations_request::Format::try_from(format).map_err(|_| {
                Invalid::new("INVALID_ENUM", format!("{format} is not a known format"))
            }),
        );
        let (start, end, as_of, format) = finish(v, || Some((start?, end?, as_of?, format?)))?;
        if !ids.is_empty() {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let found = store::lookup_indicators(&self.ctx.pool, &refs).await?;
            if let Some((i, missing)) = ids
                .iter()
                .enumerate()
                .find(|(_, id)| !found.contains_key(*id))
            {
                return Err(Error::invalid(
                    format!("indicators[{i}]"),
                    "NOT_FOUND",
                    format!("indicators/{missing} does not exist"),
                )
                .into());
            }
        }
        use pb::export_observations_request::Format;
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<pb::ExportObservationsResponse, Status>>(4);
        let pool = self.ctx.pool.clone();
        tokio::spawn(async move {
            let mut first = true;
            let sdmx = format == Format::SdmxCsv;
            let messages = format == Format::Messages;
            // Periods are filtered here, by start month, so that a range works across
            // indicators of different frequencies.
            let in_range = |p: &Period| {
                start.is_none_or(|s| p.start_key() >= s.start_key())
                    && end.is_none_or(|e| p.start_key() <= e.end_key())
            };
            let filter = (!ids.is_empty()).then_some(ids.as_slice());
            let tx2 = tx.clone();
            let result = store::export(&pool, filter, as_of, EXPORT_CHUNK, |mut rows| {
                rows.retain(|r| in_range(&r.version.name.period));
                let mut msg = pb::ExportObservationsResponse {
                    row_count: rows.len() as i64,
                    ..Default::default()
                };
                if messages {
                    msg.observations = rows.iter().map(|r| version_to_proto(&r.version)).collect();
                } else {
                    let mut data = String::with_capacity(rows.len() * 48 + 128);
                    if first {
                        data.push_str(if sdmx { SDMX_CSV_HEADER } else { CSV_HEADER });
                        first = false;
                    }
                    render(&rows, sdmx, &mut data);
                    msg.data = data;
                }
                let tx = tx2.clone();
                async move {
                    tx.send(Ok(msg))
                        .await
                        .map_err(|_| Error::internal(anyhow::anyhow!("export client went away")))
                }
            })
            .await;
            match result {
                Ok(()) if first && !messages => {
                    // No rows: still send the header.
                    let _ = tx
                        .send(Ok(pb::ExportObservationsResponse {
                            data: (if sdmx { SDMX_CSV_HEADER } else { CSV_HEADER }).to_owned(),
                            ..Default::default()
                        }))
                        .await;
                }
                Ok(()) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchObservationsStream = BoxStream<pb::WatchObservationsResponse>;

    async fn watch_observations(
        &self,
        request: Request<pb::WatchObservationsRequest>,
    ) -> Result<Response<Self::WatchObservationsStream>, Status> {
        let pb::WatchObservationsRequest {
            indicators,
            start_cursor,
            from_beginning,
        } = request.into_inner();
        let mut v = Violations::new();
        let mut ids = Vec::new();
        for (i, n) in indicators.iter().enumerate() {
            if let Some(n) = v.check(&format!("indicators[{i}]"), IndicatorName::parse(n)) {
                ids.push(n.0.as_str().to_owned());
            }
        }
        let cursor = if start_cursor.is_empty() {
            Some(None)
        } else {
            v.check("start_cursor", decode_cursor(&start_cursor))
                .map(Some)
        };
        let cursor = finish(v, || cursor)?;
        let keys = if ids.is_empty() {
            None
        } else {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let found = store::lookup_indicators(&self.ctx.pool, &refs).await?;
            let mut keys = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                match found.get(id) {
                    Some(r) => keys.push(r.key),
                    None => {
                        return Err(Error::invalid(
                            format!("indicators[{i}]"),
                            "NOT_FOUND",
                            format!("indicators/{id} does not exist"),
                        )
                        .into());
                    }
                }
            }
            Some(keys)
        };
        let mut position = match cursor {
            Some(p) => p,
            None if from_beginning => FeedPosition {
                seq: 0,
                within: None,
            },
            None => FeedPosition {
                seq: store::latest_commit(&self.ctx.pool).await?,
                within: None,
            },
        };
        let mut wake = self.ctx.feed.subscribe();
        let pool = self.ctx.pool.clone();
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<pb::WatchObservationsResponse, Status>>(4);
        tokio::spawn(async move {
            loop {
                let changes = match store::changes_after(
                    &pool,
                    &position,
                    keys.as_deref(),
                    WATCH_BATCH,
                )
                .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let full = changes.len() as i64 == WATCH_BATCH;
                if let Some(last) = changes.last() {
                    position = last.position.clone();
                    let msg = pb::WatchObservationsResponse {
                        changes: changes
                            .iter()
                            .map(|c| pb::ObservationChange {
                                kind: match c.kind {
                                    ChangeKind::Created => pb::observation_change::Kind::Created,
                                    ChangeKind::Revised => pb::observation_change::Kind::Revised,
                                    ChangeKind::Deleted => pb::observation_change::Kind::Deleted,
                                } as i32,
                                observation: Some(version_to_proto(&c.version)),
                            })
                            .collect(),
                        cursor: encode_cursor(&position),
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        return;
                    }
                }
                if full {
                    continue;
                }
                tokio::select! {
                    changed = wake.changed() => {
                        if changed.is_err() {
                            let _ = tx.send(Err(Status::unavailable("the server is shutting down"))).await;
                            return;
                        }
                    }
                    () = tokio::time::sleep(HEARTBEAT) => {
                        let beat = pb::WatchObservationsResponse {
                            changes: Vec::new(),
                            cursor: encode_cursor(&position),
                        };
                        if tx.send(Ok(beat)).await.is_err() {
                            return;
                        }
                    }
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for p in [
            FeedPosition {
                seq: 0,
                within: None,
            },
            FeedPosition {
                seq: 42,
                within: Some((7, "2020-M07".into())),
            },
        ] {
            assert_eq!(decode_cursor(&encode_cursor(&p)).unwrap(), p);
        }
        assert!(decode_cursor("garbage!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("2.1")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.-1")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.5.x.2020")).is_err());
    }

    #[test]
    fn csv_quoting() {
        let mut s = String::new();
        csv_field(&mut s, "a,b \"c\"");
        assert_eq!(s, "\"a,b \"\"c\"\"\"");
    }
}
