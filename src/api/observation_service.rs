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
use crate::store::call::Claim;
use crate::store::observations::{
    self as store, BatchOutcome, BatchRow, ChangeKind, ExportRow, FeedPosition, ImportOutcome,
    IndicatorRef, ListFilter, Merged, Refusal, StagedRow, Version,
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
/// How old a known stable horizon may be to serve as a read of now's `read_time`.
const HORIZON_FRESHNESS: Duration = Duration::from_millis(200);

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

/// The domain status of a wire value (unspecified means normal).
pub fn status_from_proto(value: i32) -> Result<ObsStatus, Invalid> {
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
            let name_field = || format!("{field}[{index}].name");
            match self
                .cache
                .get(input.name.indicator.as_str())
                .copied()
                .flatten()
            {
                None => errors.push(FieldViolation::new(
                    name_field(),
                    "NOT_FOUND",
                    format!("indicators/{} does not exist", input.name.indicator),
                )),
                Some(ind) if ind.frequency != input.name.period.frequency() => {
                    errors.push(FieldViolation::new(
                        name_field(),
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
    let message = crate::error::bounded(message, crate::error::MESSAGE_BUDGET);
    // The details carry the message too (google.rpc.Status.message): both must say the
    // same, or grpc-status clients refuse the details (grpcio-status raises).
    use tonic_types::StatusExt as _;
    let details = status.get_error_details();
    status = Status::with_error_details(status.code(), message, details);
    status
}

/// Parses the rows of a batch (aligned with the request: `None` for a row with
/// problems); problems are named `{field}[{index}].…`, with their row.
fn parse_batch(
    observations: &[pb::Observation],
    field: &str,
    errors: &mut Vec<(usize, FieldViolation)>,
) -> Vec<Option<BatchRow>> {
    let mut rows = Vec::with_capacity(observations.len());
    for (index, o) in observations.iter().enumerate() {
        let mut v = Violations::new();
        let parsed = parse_observation(o, &mut v);
        errors.extend(v.into_vec().into_iter().map(|f| {
            (
                index,
                FieldViolation {
                    field: format!("{field}[{index}].{}", f.field),
                    ..f
                },
            )
        }));
        rows.push(parsed.map(|input| BatchRow {
            name: input.name,
            value: input.value,
            status: input.status,
            comment: input.comment,
            source: input.source,
            deleted: false,
        }));
    }
    rows
}

/// On the way to refusing a batch for its unparsable rows, the problems of the rows
/// that did parse (unknown indicators, periods of another frequency) too, so that one
/// answer names them all (the write itself finds those when every row parses).
async fn resolution_problems(
    ctx: &Context,
    rows: &[Option<BatchRow>],
    field: &str,
    errors: &mut Vec<(usize, FieldViolation)>,
) -> Result<(), Status> {
    let ids: Vec<&str> = rows
        .iter()
        .flatten()
        .map(|r| r.name.indicator.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let found = store::lookup_indicators(&ctx.pool, &ids).await?;
    for (index, row) in rows.iter().enumerate() {
        let Some(row) = row else { continue };
        let refusal = match found.get(row.name.indicator.as_str()) {
            None => Refusal::UnknownIndicator(index as i64),
            Some(ind) if ind.frequency != row.name.period.frequency() => Refusal::OtherFrequency {
                index: index as i64,
                frequency: ind.frequency,
            },
            Some(_) => continue,
        };
        if let Some(v) = refusal_violation(row, &refusal, field) {
            errors.push((index, v));
        }
    }
    errors.sort_by_key(|(i, _)| *i);
    Ok(())
}

/// Rows that name the same observation as an earlier row: (row, earlier row).
fn batch_duplicates(rows: &[BatchRow]) -> Vec<(i64, i64)> {
    let mut first: HashMap<(&str, Period), i64> = HashMap::with_capacity(rows.len());
    let mut dups = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let i = i as i64;
        if let Some(f) = first.get(&(r.name.indicator.as_str(), r.name.period)) {
            if dups.len() < MAX_REPORTED_ERRORS {
                dups.push((i, *f));
            }
        } else {
            first.insert((r.name.indicator.as_str(), r.name.period), i);
        }
    }
    dups
}

fn refuse_duplicates(dups: Vec<(i64, i64)>, field: &str) -> Status {
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
    Error::InvalidArgument(errors).into()
}

/// The violations of a batch's refused rows.
fn refusal_violations(rows: &[BatchRow], refused: &[Refusal], field: &str) -> Vec<FieldViolation> {
    refused
        .iter()
        .filter_map(|r| {
            let index = match r {
                Refusal::UnknownIndicator(i)
                | Refusal::OtherFrequency { index: i, .. }
                | Refusal::NothingToDelete(i) => *i,
            };
            refusal_violation(rows.get(usize::try_from(index).ok()?)?, r, field)
        })
        .collect()
}

/// The violation of one refused row.
fn refusal_violation(row: &BatchRow, refusal: &Refusal, field: &str) -> Option<FieldViolation> {
    let (index, reason, what) = match refusal {
        Refusal::UnknownIndicator(i) => (
            *i,
            "NOT_FOUND",
            format!("indicators/{} does not exist", row.name.indicator),
        ),
        Refusal::OtherFrequency { index, frequency } => (
            *index,
            "PERIOD_FREQUENCY_MISMATCH",
            format!(
                "{} is {} but indicators/{} is {}",
                row.name.period,
                row.name.period.frequency().describe(),
                row.name.indicator,
                frequency.describe()
            ),
        ),
        Refusal::NothingToDelete(i) => (*i, "NOT_FOUND", format!("{} does not exist", row.name)),
    };
    Some(FieldViolation::new(
        format!("{field}[{index}].name"),
        reason,
        what,
    ))
}

// ---------------------------------------------------------------------------------------
// Cursors of the change feed

/// The instant WatchObservations starts from with `from_beginning`: before every
/// version (0001-01-01T00:00:00Z, the start of google.protobuf.Timestamp's range).
fn beginning() -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A cursor as a client sends it back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    /// The current form: a position in (known_from, indicator, period) order.
    At(FeedPosition),
    /// The form handed out before commits were ordered by instant (migration 0004):
    /// after commit `seq`, and within it after (indicator key, period) when given. Every
    /// version of one commit had the commit's instant, so it maps onto the current form.
    Commit {
        seq: i64,
        within: Option<(i32, String)>,
    },
}

/// `2.{microseconds}` or `2.{microseconds}.{indicator key}.{period}`, base64url.
fn encode_cursor(p: &FeedPosition) -> String {
    let us = p.known_from.timestamp_micros();
    let text = match &p.within {
        Some((key, period)) => format!("2.{us}.{key}.{period}"),
        None => format!("2.{us}"),
    };
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(s: &str) -> Result<Cursor, Invalid> {
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
    let version = parts.next();
    let number: i64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let within = match (parts.next(), parts.next()) {
        (None, None) => None,
        (Some(k), Some(p)) => {
            let key: i32 = k.parse().map_err(|_| bad())?;
            let period = Period::parse(p).map_err(|_| bad())?;
            Some((key, period.to_string()))
        }
        _ => return Err(bad()),
    };
    match version {
        Some("2") => {
            let known_from = DateTime::from_timestamp_micros(number)
                .filter(|t| *t >= beginning())
                .ok_or_else(bad)?;
            Ok(Cursor::At(FeedPosition { known_from, within }))
        }
        Some("1") if number >= 0 => Ok(Cursor::Commit {
            seq: number,
            within,
        }),
        _ => Err(bad()),
    }
}

/// The position of a cursor (a commit-number cursor is looked up).
async fn resolve_cursor(ctx: &Context, cursor: Cursor) -> Result<FeedPosition, Status> {
    match cursor {
        Cursor::At(p) => Ok(p),
        Cursor::Commit { seq: 0, .. } => Ok(FeedPosition {
            known_from: beginning(),
            within: None,
        }),
        Cursor::Commit { seq, within } => match store::commit_time_of(&ctx.pool, seq).await? {
            Some(known_from) => Ok(FeedPosition { known_from, within }),
            None => Err(Error::invalid(
                "start_cursor",
                "INVALID_CURSOR",
                format!("the cursor names commit {seq}, which this database never had"),
            )
            .into()),
        },
    }
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
fn count_rows(ctx: &Context, c: &store::MergeCounts) {
    use crate::metrics::RowLabels;
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

/// What a replayed batch answers: its observations as the original write left them
/// (as of its commit; now when it changed nothing).
async fn replayed_versions(
    ctx: &Context,
    rows: &[BatchRow],
    merged: &Merged,
) -> Result<Vec<Version>, Status> {
    let names: Vec<ObservationName> = rows.iter().map(|r| r.name.clone()).collect();
    let current = store::current(&ctx.pool, &names, merged.commit_time).await?;
    Ok(names
        .iter()
        .filter_map(|n| current.get(n).cloned())
        .collect())
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ObservationService for ObservationApi {
    async fn batch_create_observations(
        &self,
        request: Request<pb::BatchCreateObservationsRequest>,
    ) -> Result<Response<pb::BatchCreateObservationsResponse>, Status> {
        const METHOD: &str = "tradewatch.v1.ObservationService/BatchCreateObservations";
        // The request's encoding, for the fingerprint of its request id (only then).
        let encoded =
            (!request.get_ref().request_id.is_empty()).then(|| request.get_ref().encode_to_vec());
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
        let parsed = parse_batch(&observations, "observations", &mut errors);
        if !errors.is_empty() {
            resolution_problems(&self.ctx, &parsed, "observations", &mut errors).await?;
            return Err(refuse_rows(
                errors.into_iter().map(|(_, v)| v).collect(),
                observations.len() as i64,
            ));
        }
        let rows: Vec<BatchRow> = parsed.into_iter().flatten().collect();
        let dups = batch_duplicates(&rows);
        if !dups.is_empty() {
            return Err(refuse_duplicates(dups, "observations"));
        }
        let fingerprint = encoded
            .map(|e| idempotency::fingerprint(METHOD, &[&e]))
            .unwrap_or_default();
        let claim = request_id
            .filter(|_| !validate_only)
            .map(|request_id| Claim {
                request_id,
                method: METHOD.to_owned(),
                fingerprint: fingerprint.clone(),
            });
        let outcome = self
            .ctx
            .batches
            .write(rows.clone(), validate_only, claim)
            .await;
        let (counts, versions) = match outcome {
            Ok(BatchOutcome::Written {
                counts,
                commit_time,
                versions,
            }) => {
                if !validate_only {
                    count_rows(&self.ctx, &counts);
                    if commit_time.is_some() {
                        self.ctx.feed.committed();
                    }
                }
                (counts, versions)
            }
            Ok(BatchOutcome::Refused(refused)) => {
                return Err(refuse_rows(
                    refusal_violations(&rows, &refused, "observations"),
                    observations.len() as i64,
                ));
            }
            Ok(BatchOutcome::RequestIdReused) => {
                return Err(idempotency::reused("request_id", request_id).into());
            }
            // BatchWriter::write tries again until it is not busy.
            Ok(BatchOutcome::Busy) => {
                return Err(Error::internal(anyhow::anyhow!(
                    "a busy batch came back to its caller"
                ))
                .into());
            }
            Ok(BatchOutcome::Replay(stored)) => {
                let merged = replayed(stored)?;
                (
                    merged.counts,
                    replayed_versions(&self.ctx, &rows, &merged).await?,
                )
            }
            Err(Error::RequestReplayed) => {
                let merged = replay_after_race(&self.ctx, METHOD, request_id, fingerprint).await?;
                (
                    merged.counts,
                    replayed_versions(&self.ctx, &rows, &merged).await?,
                )
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Response::new(pb::BatchCreateObservationsResponse {
            observations: versions.iter().map(version_to_proto).collect(),
            inserted: counts.inserted,
            revised: counts.revised,
            unchanged: counts.unchanged,
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
        let mut import = store::Import::begin(&self.ctx.pool, validate_first);
        let mut resolver = Resolver::new();
        let mut errors = Vec::new();
        let mut next: i64 = 0;
        let validate_only = validate_first;
        // An error from the stream (the client cancelled, the connection broke) returns
        // here: the import is dropped and its transaction rolls back, so nothing is
        // written.
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
                import.append(rows).await?;
            }
            if errors.len() >= MAX_REPORTED_ERRORS
                || import.duplicates().len() >= MAX_REPORTED_ERRORS
            {
                // Enough to report; stop reading (the client sees the error on its send).
                break;
            }
        }
        if !errors.is_empty() {
            return Err(refuse_rows(errors, next));
        }
        let rows = import.rows();
        let fingerprint = fingerprint.map(|f| f.finish());
        let claim = request_id
            .zip(fingerprint.clone())
            .map(|(request_id, fingerprint)| Claim {
                request_id,
                method: METHOD.to_owned(),
                fingerprint,
            });
        let merged = match import.finish(claim).await {
            Ok(ImportOutcome::Merged(merged)) => merged,
            Ok(ImportOutcome::Duplicates(dups)) => {
                return Err(refuse_duplicates(dups, "observations"));
            }
            Err(Error::RequestReplayed) => {
                replay_after_race(
                    &self.ctx,
                    METHOD,
                    request_id,
                    fingerprint.unwrap_or_default(),
                )
                .await?
            }
            Err(e) => return Err(e.into()),
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
            count_rows(&self.ctx, &merged.counts);
            if merged.commit_time.is_some() {
                self.ctx.feed.committed();
            }
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
        self.ctx.settle_as_of(as_of).await?;
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
        // The instant up to which this answer is complete for good (read_time): the
        // as_of, or for a read of now a stable horizon taken before the read, the same
        // on every page (the page token carries it).
        let (after, read_time) = match page.after.as_deref() {
            Some(key) => {
                let bad = || {
                    Status::from(Error::invalid(
                        "page_token",
                        "INVALID_PAGE_TOKEN",
                        "bad page token",
                    ))
                };
                let (period, micros) = key.rsplit_once('@').ok_or_else(bad)?;
                let t = micros
                    .parse::<i64>()
                    .ok()
                    .and_then(DateTime::from_timestamp_micros)
                    .ok_or_else(bad)?;
                (Some(period.to_owned()), t)
            }
            None => match as_of_t {
                Some(t) => {
                    self.ctx.settle_as_of(Some(t)).await?;
                    (None, t)
                }
                None => (None, self.ctx.feed.recent_horizon(HORIZON_FRESHNESS).await?),
            },
        };
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
            after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
        let read_us = read_time.timestamp_micros();
        let next_page_token = self
            .ctx
            .page_tokens
            .finish(&fingerprint, &page, &mut rows, |r| {
                format!("{}@{read_us}", r.name.period)
            });
        Ok(Response::new(pb::ListObservationsResponse {
            observations: rows.iter().map(version_to_proto).collect(),
            next_page_token,
            read_time: Some(timestamp(read_time)),
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
        let row = BatchRow {
            name: name.clone(),
            value: None,
            status: ObsStatus::Normal,
            comment: String::new(),
            source: String::new(),
            deleted: true,
        };
        let outcome = self.ctx.batches.write(vec![row], false, None).await?;
        match outcome {
            BatchOutcome::Written { commit_time, .. } => {
                if commit_time.is_some() {
                    self.ctx.feed.committed();
                }
            }
            // An unknown indicator, a period of another frequency, an observation that
            // does not exist (or is deleted already): there is nothing of that name.
            BatchOutcome::Refused(_) => return Err(Error::NotFound(name.to_string()).into()),
            BatchOutcome::Replay(_) | BatchOutcome::RequestIdReused | BatchOutcome::Busy => {
                return Err(
                    Error::internal(anyhow::anyhow!("a deletion carries no request id")).into(),
                );
            }
        }
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
        self.ctx.settle_as_of(as_of).await?;
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
            Some(c) => resolve_cursor(&self.ctx, c).await?,
            None if from_beginning => FeedPosition {
                known_from: beginning(),
                within: None,
            },
            // Changes after the call begins: everything at or before the horizon has
            // committed before it (what follows may include a few that committed just
            // before the call, which is harmless).
            None => FeedPosition {
                known_from: self.ctx.feed.horizon().await?,
                within: None,
            },
        };
        let mut wake = self.ctx.feed.subscribe();
        let pool = self.ctx.pool.clone();
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<pb::WatchObservationsResponse, Status>>(4);
        tokio::spawn(async move {
            let mut last_sent = tokio::time::Instant::now();
            loop {
                // The horizon as published: everything at or before it has committed,
                // and nothing can be added before it any more.
                let horizon = wake.borrow_and_update().horizon;
                let changes = match store::changes_after(
                    &pool,
                    &position,
                    horizon,
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
                    last_sent = tokio::time::Instant::now();
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
                    () = tokio::time::sleep_until(last_sent + HEARTBEAT) => {
                        // Everything up to the horizon of the last read has been sent:
                        // the cursor moves there, so a client resuming from it skips
                        // nothing.
                        if horizon > position.known_from {
                            position = FeedPosition { known_from: horizon, within: None };
                        }
                        let beat = pb::WatchObservationsResponse {
                            changes: Vec::new(),
                            cursor: encode_cursor(&position),
                        };
                        if tx.send(Ok(beat)).await.is_err() {
                            return;
                        }
                        last_sent = tokio::time::Instant::now();
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
        let t = DateTime::from_timestamp_micros(1_764_620_000_123_456).unwrap();
        for p in [
            FeedPosition {
                known_from: beginning(),
                within: None,
            },
            FeedPosition {
                known_from: t,
                within: Some((7, "2020-M07".into())),
            },
        ] {
            assert_eq!(decode_cursor(&encode_cursor(&p)).unwrap(), Cursor::At(p));
        }
        // Cursors handed out before migration 0004 name a commit number.
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("1.42.7.2020-M07")).unwrap(),
            Cursor::Commit {
                seq: 42,
                within: Some((7, "2020-M07".into()))
            }
        );
        assert!(decode_cursor("garbage!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("3.1")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.-1")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.5.x.2020")).is_err());
        // Before the start of google.protobuf.Timestamp's range.
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("2.-99999999999999999")).is_err());
    }

    #[test]
    fn csv_quoting() {
        let mut s = String::new();
        csv_field(&mut s, "a,b \"c\"");
        assert_eq!(s, "\"a,b \"\"c\"\"\"");
    }
}
