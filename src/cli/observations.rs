//! `tradewatch observations get|list|revisions|delete`: one indicator's published
//! figures and their revisions, through ObservationService.
//!
//! An observation is named as INDICATOR PERIOD (the indicator by id or by name,
//! `offshore 2020` or `indicators/offshore 2020`) or by its full name alone
//! (`indicators/offshore/observations/2020`). Periods (the argument, `--start`,
//! `--end`) and `--as-of` are checked before anything is sent, with the same flags and
//! the same words as the reports and `export`.

use std::sync::{Arc, Mutex};

use clap::{Args, Subcommand};

use super::resources::{deleted, page_all, show};
use super::table::{Table, fields, truncate};
use super::values::{self, PeriodRange, indicator_name, observation_name};
use super::{ClientArgs, Conn, Failure, Outcome, connect, parse_instant};
use crate::proto::v1 as pb;
use crate::proto::v1::observation_service_client::ObservationServiceClient;

/// Widest comment or source in a table.
const TEXT_WIDTH: usize = 60;

/// `tradewatch observations`.
#[derive(Debug, Args)]
pub struct ObservationsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ObservationsCommand,
    /// Server and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// One observation: INDICATOR PERIOD, or its full name.
#[derive(Debug, Clone, Args)]
pub struct ObservationArg {
    /// The indicator (id or `indicators/{id}`), or the observation's full name
    /// `indicators/{id}/observations/{period}` (then without PERIOD).
    #[arg(value_name = "INDICATOR")]
    pub indicator: String,
    /// The period, SDMX syntax (`2020`, `2020-S1`, `2020-Q3`, `2020-M07`).
    #[arg(value_name = "PERIOD")]
    pub period: Option<String>,
}

impl ObservationArg {
    fn name(&self) -> Result<String, Failure> {
        observation_name(&self.indicator, self.period.as_deref())
    }
}

/// `--as-of` of the reads.
#[derive(Debug, Clone, Default, Args)]
pub struct AsOfArg {
    /// Answer as known at this instant (RFC 3339, e.g. 2021-03-01T00:00:00Z); default
    /// now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
}

impl AsOfArg {
    fn instant(&self) -> Result<Option<prost_types::Timestamp>, Failure> {
        self.as_of
            .as_deref()
            .map(|t| parse_instant("--as-of", t))
            .transpose()
    }
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum ObservationsCommand {
    /// Show one observation: the version published now, or at --as-of.
    Get {
        /// The observation.
        #[command(flatten)]
        observation: ObservationArg,
        /// As of.
        #[command(flatten)]
        as_of: AsOfArg,
    },
    /// List an indicator's observations in period order (all, page by page, unless
    /// --limit).
    List {
        /// The indicator (id or `indicators/{id}`).
        #[arg(value_name = "INDICATOR")]
        indicator: String,
        /// Periods.
        #[command(flatten)]
        range: PeriodRange,
        /// As of.
        #[command(flatten)]
        as_of: AsOfArg,
        /// At most this many observations (default: all, fetched page by page).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// Every version of one observation, oldest first, deletions included.
    Revisions {
        /// The observation.
        #[command(flatten)]
        observation: ObservationArg,
        /// At most this many versions, the oldest (default: all).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
    },
    /// Delete one observation: it no longer exists from now on, and its history stays
    /// readable (`revisions`, and reads with --as-of).
    Delete {
        /// The observation.
        #[command(flatten)]
        observation: ObservationArg,
    },
}

async fn client(args: &ClientArgs) -> Result<ObservationServiceClient<Conn>, Failure> {
    Ok(ObservationServiceClient::new(connect(&args.server).await?)
        .max_decoding_message_size(64 << 20))
}

/// Runs `tradewatch observations …`.
pub async fn run(args: ObservationsArgs) -> Outcome {
    let json = args.client.json;
    // Every flag is checked before connecting: a usage error needs no server.
    match args.command {
        ObservationsCommand::Get { observation, as_of } => {
            let name = observation.name()?;
            let as_of = as_of.instant()?;
            let o = client(&args.client)
                .await?
                .get_observation(pb::GetObservationRequest { name, as_of })
                .await?
                .into_inner();
            show(json, &o, observation_fields)
        }
        ObservationsCommand::List {
            indicator,
            range,
            as_of,
            limit,
        } => {
            let parent = indicator_name(&indicator);
            if parent.is_empty() {
                return Err(Failure::Usage("INDICATOR must not be empty".to_owned()));
            }
            let (start_period, end_period) = range.periods()?;
            let as_of = as_of.instant()?;
            let client = client(&args.client).await?;
            // Every page carries the first page's read_time.
            let read_time = Arc::new(Mutex::new(None));
            let observations = page_all(limit, |page_size, page_token| {
                let request = pb::ListObservationsRequest {
                    parent: parent.clone(),
                    start_period: start_period.clone(),
                    end_period: end_period.clone(),
                    as_of,
                    updated_after: None,
                    page_size,
                    page_token,
                };
                let mut c = client.clone();
                let read_time = Arc::clone(&read_time);
                async move {
                    let r = c.list_observations(request).await?.into_inner();
                    read_time
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(r.read_time);
                    Ok((r.observations, r.next_page_token))
                }
            })
            .await?;
            let read_time = read_time
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .flatten();
            let response = pb::ListObservationsResponse {
                observations,
                next_page_token: String::new(),
                read_time,
            };
            show(json, &response, observation_table)
        }
        ObservationsCommand::Revisions { observation, limit } => {
            let name = observation.name()?;
            let client = client(&args.client).await?;
            let revisions = page_all(limit, |page_size, page_token| {
                let request = pb::ListObservationRevisionsRequest {
                    name: name.clone(),
                    page_size,
                    page_token,
                };
                let mut c = client.clone();
                async move {
                    let r = c.list_observation_revisions(request).await?.into_inner();
                    Ok((r.revisions, r.next_page_token))
                }
            })
            .await?;
            let response = pb::ListObservationRevisionsResponse {
                revisions,
                next_page_token: String::new(),
            };
            show(json, &response, revision_table)
        }
        ObservationsCommand::Delete { observation } => {
            let name = observation.name()?;
            client(&args.client)
                .await?
                .delete_observation(pb::DeleteObservationRequest { name: name.clone() })
                .await?;
            deleted(json, &name)
        }
    }
}

/// The period of an observation's name.
fn period_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// One observation, a field a line.
pub fn observation_fields(o: &pb::Observation) -> String {
    fields(&[
        ("name", o.name.clone()),
        ("value", o.value.clone()),
        (
            "status",
            if o.deleted {
                String::new()
            } else {
                values::obs_status(o.status)
            },
        ),
        ("comment", o.comment.clone()),
        ("source", o.source.clone()),
        ("known_from", values::time(&o.known_from)),
        ("known_until", values::time(&o.known_until)),
        ("deleted", if o.deleted { "true" } else { "" }.to_owned()),
    ])
}

/// An indicator's observations, a row a period.
pub fn observation_table(r: &pb::ListObservationsResponse) -> String {
    let mut t = Table::new([
        "PERIOD",
        "VALUE",
        "STATUS",
        "KNOWN FROM",
        "SOURCE",
        "COMMENT",
    ])
    .right(&[1]);
    for o in &r.observations {
        t.row([
            period_of(&o.name).to_owned(),
            o.value.clone(),
            if o.deleted {
                "deleted".to_owned()
            } else {
                values::obs_status(o.status)
            },
            values::time(&o.known_from),
            truncate(&o.source, TEXT_WIDTH),
            truncate(&o.comment, TEXT_WIDTH),
        ]);
    }
    t.render()
}

/// The versions of one observation, oldest first, each with what it did: `created`
/// (the first, or the first after a deletion), `revised` or `deleted`.
pub fn revision_table(r: &pb::ListObservationRevisionsResponse) -> String {
    let mut t = Table::new([
        "KNOWN FROM",
        "KNOWN UNTIL",
        "CHANGE",
        "VALUE",
        "STATUS",
        "SOURCE",
        "COMMENT",
    ])
    .right(&[3]);
    let mut exists = false;
    for o in &r.revisions {
        let change = match (o.deleted, exists) {
            (true, _) => "deleted",
            (false, false) => "created",
            (false, true) => "revised",
        };
        exists = !o.deleted;
        t.row([
            values::time(&o.known_from),
            values::time(&o.known_until),
            change.to_owned(),
            o.value.clone(),
            // A deletion has no value, and so no status.
            if o.deleted {
                String::new()
            } else {
                values::obs_status(o.status)
            },
            truncate(&o.source, TEXT_WIDTH),
            truncate(&o.comment, TEXT_WIDTH),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn version(value: &str, from: i64, until: Option<i64>, deleted: bool) -> pb::Observation {
        pb::Observation {
            name: "indicators/x/observations/2020".into(),
            value: value.into(),
            // The server answers deletions with status normal.
            status: pb::observation::Status::Normal as i32,
            known_from: at(from),
            known_until: until.and_then(at),
            deleted,
            ..Default::default()
        }
    }

    #[test]
    fn revisions_say_what_each_version_did() {
        let r = pb::ListObservationRevisionsResponse {
            revisions: vec![
                version("22.8", 0, Some(60), false),
                version("23.1", 60, Some(120), false),
                version("", 120, Some(180), true),
                version("5", 180, None, false),
            ],
            next_page_token: String::new(),
        };
        assert_eq!(
            revision_table(&r),
            "KNOWN FROM            KNOWN UNTIL           CHANGE   VALUE  STATUS      SOURCE  COMMENT\n\
             1970-01-01T00:00:00Z  1970-01-01T00:01:00Z  created   22.8  normal (A)\n\
             1970-01-01T00:01:00Z  1970-01-01T00:02:00Z  revised   23.1  normal (A)\n\
             1970-01-01T00:02:00Z  1970-01-01T00:03:00Z  deleted\n\
             1970-01-01T00:03:00Z                        created      5  normal (A)\n"
        );
    }

    #[test]
    fn one_observation_as_fields() {
        let text = observation_fields(&version("22.8", 0, None, false));
        assert_eq!(
            text,
            "name        indicators/x/observations/2020\n\
             value       22.8\n\
             status      normal (A)\n\
             known_from  1970-01-01T00:00:00Z\n"
        );
    }
}
