//! `tradewatch programs|initiatives|targets|indicators list|get|create|update|delete`.
//!
//! Resources are named by bare id or full resource name (`cq` or `programs/cq`;
//! initiatives and targets by id with `--program`, or by full name). `update` sends an
//! update mask of exactly the fields given as flags, so every other field is left as
//! it is; a flag given an empty value clears that field. `list` pages through every
//! result unless `--limit` says otherwise.

use std::future::Future;

use clap::{Args, Subcommand};

use super::json::{ProtoName, to_json};
use super::table::{Table, fields, truncate};
use super::values::{
    self, AggregationArg, DirectionArg, FlowArg, FrequencyArg, KindArg, StateArg, child_name,
    indicator_name, program_name, split_child,
};
use super::{ClientArgs, Conn, Failure, Outcome, connect, emit};
use crate::proto::v1 as pb;
use crate::proto::v1::indicator_service_client::IndicatorServiceClient;
use crate::proto::v1::program_service_client::ProgramServiceClient;

/// Widest title in a list table.
const TITLE_WIDTH: usize = 60;
/// Largest page the server returns.
const MAX_PAGE: u32 = 1000;

/// `list` options.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// At most this many results (default: all, fetched page by page).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// AIP-160 filter, e.g. `title:"trade" AND start_year >= 2015` (see the README).
    #[arg(long, default_value = "")]
    pub filter: String,
    /// Order, e.g. `update_time desc, title` (default: by name).
    #[arg(long, default_value = "")]
    pub order_by: String,
}

/// `--etag` of update and delete.
#[derive(Debug, Clone, Args)]
pub struct EtagArg {
    /// Refuse (ABORTED) unless the resource still has this etag.
    #[arg(long)]
    pub etag: Option<String>,
}

/// `delete` options.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// Id or resource name.
    pub id: String,
    /// Also delete (or detach) what depends on it; see the RPC's documentation.
    #[arg(long)]
    pub force: bool,
    /// Etag.
    #[command(flatten)]
    pub etag: EtagArg,
}

/// The five verbs, with the fields of resource `F`.
#[derive(Debug, Subcommand)]
pub enum Verb<F: Args> {
    /// List them (all, page by page, unless --limit).
    List(ListArgs),
    /// Show one.
    Get {
        /// Id or resource name.
        id: String,
    },
    /// Create one with this id.
    Create {
        /// Id of the new resource (lower-case letters, digits and `-`).
        id: String,
        /// Fields.
        #[command(flatten, next_help_heading = "Fields")]
        fields: F,
    },
    /// Change the fields given as flags, and only those (an empty value clears one).
    Update {
        /// Id or resource name.
        id: String,
        /// Fields.
        #[command(flatten, next_help_heading = "Fields")]
        fields: F,
        /// Etag.
        #[command(flatten, next_help_heading = "Options")]
        etag: EtagArg,
    },
    /// Delete one.
    Delete(DeleteArgs),
}

/// Collects the update mask while flags are copied into a message.
#[derive(Debug, Default)]
struct Mask(Vec<String>);

impl Mask {
    fn set<T: Clone>(&mut self, value: &Option<T>, field: &mut T, path: &str) {
        if let Some(v) = value {
            *field = v.clone();
            self.0.push(path.to_owned());
        }
    }

    fn map<A: Clone, T>(
        &mut self,
        value: &Option<A>,
        field: &mut T,
        path: &str,
        f: impl FnOnce(A) -> T,
    ) {
        if let Some(v) = value {
            *field = f(v.clone());
            self.0.push(path.to_owned());
        }
    }

    /// The mask of an update; no field at all is a usage error.
    fn for_update(self) -> Result<prost_types::FieldMask, Failure> {
        if self.0.is_empty() {
            return Err(Self::nothing());
        }
        Ok(prost_types::FieldMask { paths: self.0 })
    }

    fn nothing() -> Failure {
        Failure::Usage("nothing to update: give the fields to change as flags".to_owned())
    }
}

/// A comma-separated list flag: empty entries dropped, so `''` is the empty list.
fn list_flag(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Pages through a list RPC: `fetch(page_size, page_token)` returns a page and the
/// next token.
pub(super) async fn page_all<T, F, Fut>(limit: Option<u32>, mut fetch: F) -> Result<Vec<T>, Failure>
where
    F: FnMut(i32, String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let want = match limit {
            Some(l) => (l - all.len() as u32).min(MAX_PAGE),
            None => MAX_PAGE,
        };
        let (items, next) = fetch(want as i32, token).await?;
        all.extend(items);
        if let Some(l) = limit {
            all.truncate(l as usize);
            if all.len() as u32 >= l {
                break;
            }
        }
        if next.is_empty() {
            break;
        }
        token = next;
    }
    Ok(all)
}

/// Prints `message` as JSON or as the text `text` makes of it.
pub(super) fn show<M: ProtoName>(
    json: bool,
    message: &M,
    text: impl FnOnce(&M) -> String,
) -> Outcome {
    if json {
        emit(&to_json(message)?)
    } else {
        emit(&text(message))
    }
}

pub(super) fn deleted(json: bool, name: &str) -> Outcome {
    emit(&if json {
        "{}\n".to_owned()
    } else {
        format!("deleted {name}\n")
    })
}

async fn program_client(args: &ClientArgs) -> Result<ProgramServiceClient<Conn>, Failure> {
    Ok(ProgramServiceClient::new(connect(&args.server).await?))
}

/// The last segment of a resource name.
fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

// ---------------------------------------------------------------------------------------
// Programmes

/// `tradewatch programs`.
#[derive(Debug, Args)]
pub struct ProgramsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: Verb<ProgramFields>,
    /// Server and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Fields of a programme. On create, --title, --jurisdiction, --start-year and
/// --end-year are required.
#[derive(Debug, Clone, Default, Args)]
pub struct ProgramFields {
    /// Title of the policy document.
    #[arg(long)]
    pub title: Option<String>,
    /// Body that issued it.
    #[arg(long)]
    pub issuing_body: Option<String>,
    /// Date adopted.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub adoption_date: Option<String>,
    /// ISO 3166-2 subdivision (`CN-CQ`) or ISO 3166-1 country (`CN`).
    #[arg(long, value_name = "CODE")]
    pub jurisdiction: Option<String>,
    /// First year covered.
    #[arg(long, value_name = "YEAR")]
    pub start_year: Option<i32>,
    /// Last year covered.
    #[arg(long, value_name = "YEAR")]
    pub end_year: Option<i32>,
    /// Summary.
    #[arg(long)]
    pub summary: Option<String>,
    /// Link to the source text (http or https).
    #[arg(long, value_name = "URL")]
    pub source_uri: Option<String>,
}

impl ProgramFields {
    fn apply(&self, p: &mut pb::Program) -> Mask {
        let mut m = Mask::default();
        m.set(&self.title, &mut p.title, "title");
        m.set(&self.issuing_body, &mut p.issuing_body, "issuing_body");
        m.set(&self.adoption_date, &mut p.adoption_date, "adoption_date");
        m.set(&self.jurisdiction, &mut p.jurisdiction, "jurisdiction");
        m.set(&self.start_year, &mut p.start_year, "start_year");
        m.set(&self.end_year, &mut p.end_year, "end_year");
        m.set(&self.summary, &mut p.summary, "summary");
        m.set(&self.source_uri, &mut p.source_uri, "source_uri");
        m
    }
}

fn program_fields(p: &pb::Program) -> String {
    fields(&[
        ("name", p.name.clone()),
        ("title", p.title.clone()),
        ("issuing_body", p.issuing_body.clone()),
        ("adoption_date", p.adoption_date.clone()),
        ("jurisdiction", p.jurisdiction.clone()),
        ("start_year", p.start_year.to_string()),
        ("end_year", p.end_year.to_string()),
        ("summary", p.summary.clone()),
        ("source_uri", p.source_uri.clone()),
        ("create_time", values::time(&p.create_time)),
        ("update_time", values::time(&p.update_time)),
        ("etag", p.etag.clone()),
    ])
}

fn program_table(list: &pb::ListProgramsResponse) -> String {
    let mut t = Table::new(["ID", "JURISDICTION", "YEARS", "TITLE"]);
    for p in &list.programs {
        t.row([
            id_of(&p.name).to_owned(),
            p.jurisdiction.clone(),
            format!("{}–{}", p.start_year, p.end_year),
            truncate(&p.title, TITLE_WIDTH),
        ]);
    }
    t.render()
}

/// Runs `tradewatch programs …`.
pub async fn programs(args: ProgramsArgs) -> Outcome {
    let json = args.client.json;
    // Flags are checked before connecting: a usage error needs no server.
    let mut program = pb::Program::default();
    let mask = match &args.command {
        Verb::Create { fields, .. } | Verb::Update { fields, .. } => {
            Some(fields.apply(&mut program))
        }
        _ => None,
    };
    if let Verb::Update { .. } = &args.command {
        mask.as_ref()
            .filter(|m| !m.0.is_empty())
            .ok_or_else(Mask::nothing)?;
    }
    let mut client = program_client(&args.client).await?;
    match args.command {
        Verb::List(list) => {
            let programs = page_all(list.limit, |page_size, page_token| {
                let filter = list.filter.clone();
                let order_by = list.order_by.clone();
                let mut c = client.clone();
                async move {
                    let r = c
                        .list_programs(pb::ListProgramsRequest {
                            filter,
                            order_by,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((r.programs, r.next_page_token))
                }
            })
            .await?;
            let response = pb::ListProgramsResponse {
                programs,
                next_page_token: String::new(),
            };
            show(json, &response, program_table)
        }
        Verb::Get { id } => {
            let p = client
                .get_program(pb::GetProgramRequest {
                    name: program_name(&id),
                })
                .await?
                .into_inner();
            show(json, &p, program_fields)
        }
        Verb::Create { id, .. } => {
            let p = client
                .create_program(pb::CreateProgramRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    program: Some(program),
                    program_id: id,
                })
                .await?
                .into_inner();
            show(json, &p, program_fields)
        }
        Verb::Update { id, etag, .. } => {
            let mask = mask.unwrap_or_default().for_update()?;
            program.name = program_name(&id);
            program.etag = etag.etag.unwrap_or_default();
            let p = client
                .update_program(pb::UpdateProgramRequest {
                    program: Some(program),
                    update_mask: Some(mask),
                })
                .await?
                .into_inner();
            show(json, &p, program_fields)
        }
        Verb::Delete(d) => {
            let name = program_name(&d.id);
            client
                .delete_program(pb::DeleteProgramRequest {
                    name: name.clone(),
                    etag: d.etag.etag.unwrap_or_default(),
                    force: d.force,
                })
                .await?;
            deleted(json, &name)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Initiatives

/// `tradewatch initiatives`.
#[derive(Debug, Args)]
pub struct InitiativesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: Verb<InitiativeFields>,
    /// The programme (id or `programs/{id}`); not needed for an initiative given by
    /// full name.
    #[arg(long, global = true, value_name = "PROGRAM")]
    pub program: Option<String>,
    /// Server and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Fields of an initiative. On create, --title and --state are required.
#[derive(Debug, Clone, Default, Args)]
pub struct InitiativeFields {
    /// Enclosing initiative in the same programme (id or name); empty for a
    /// top-level development area.
    #[arg(long, value_name = "INITIATIVE")]
    pub parent: Option<String>,
    /// Title.
    #[arg(long)]
    pub title: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Agency that leads it.
    #[arg(long)]
    pub lead_agency: Option<String>,
    /// Lifecycle state.
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// Start date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start_date: Option<String>,
    /// End date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub end_date: Option<String>,
    /// Tags, comma-separated; replaces the list (`''` clears it).
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "TAG,…")]
    pub tags: Option<Vec<String>>,
    /// Indicators that measure it (ids or names), comma-separated; replaces the list.
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "INDICATOR,…")]
    pub indicators: Option<Vec<String>>,
    /// Position among its siblings.
    #[arg(long)]
    pub position: Option<i32>,
}

impl InitiativeFields {
    /// Copies the flags into `i`; bare ids are resolved within `program`.
    fn apply(&self, i: &mut pb::Initiative, program: &str) -> Result<Mask, Failure> {
        let mut m = Mask::default();
        let parent = match self.parent.as_deref() {
            None => None,
            Some("") => Some(String::new()),
            Some(p) => Some(child_name(p, Some(program), "initiatives")?),
        };
        m.set(&parent, &mut i.parent_initiative, "parent_initiative");
        m.set(&self.title, &mut i.title, "title");
        m.set(&self.description, &mut i.description, "description");
        m.set(&self.lead_agency, &mut i.lead_agency, "lead_agency");
        m.map(&self.state, &mut i.state, "state", |s| {
            pb::initiative::State::from(s) as i32
        });
        m.set(&self.start_date, &mut i.start_date, "start_date");
        m.set(&self.end_date, &mut i.end_date, "end_date");
        m.map(&self.tags, &mut i.tags, "tags", |t| list_flag(&t));
        m.map(&self.indicators, &mut i.indicators, "indicators", |t| {
            list_flag(&t).iter().map(|i| indicator_name(i)).collect()
        });
        m.set(&self.position, &mut i.position, "position");
        Ok(m)
    }
}

fn initiative_fields(i: &pb::Initiative) -> String {
    fields(&[
        ("name", i.name.clone()),
        ("parent_initiative", i.parent_initiative.clone()),
        ("title", i.title.clone()),
        ("description", i.description.clone()),
        ("lead_agency", i.lead_agency.clone()),
        ("state", values::state(i.state)),
        ("start_date", i.start_date.clone()),
        ("end_date", i.end_date.clone()),
        ("tags", i.tags.join(", ")),
        ("indicators", i.indicators.join(", ")),
        ("position", i.position.to_string()),
        ("create_time", values::time(&i.create_time)),
        ("update_time", values::time(&i.update_time)),
        ("etag", i.etag.clone()),
    ])
}

fn initiative_table(list: &pb::ListInitiativesResponse) -> String {
    let mut t = Table::new(["ID", "PARENT", "STATE", "POSITION", "TITLE"]).right(&[3]);
    for i in &list.initiatives {
        t.row([
            id_of(&i.name).to_owned(),
            id_of(&i.parent_initiative).to_owned(),
            values::state(i.state),
            i.position.to_string(),
            truncate(&i.title, TITLE_WIDTH),
        ]);
    }
    t.render()
}

fn need_program(program: Option<&str>) -> Result<String, Failure> {
    program
        .map(program_name)
        .ok_or_else(|| Failure::Usage("--program PROGRAM is required".to_owned()))
}

/// Runs `tradewatch initiatives …`.
pub async fn initiatives(args: InitiativesArgs) -> Outcome {
    let json = args.client.json;
    let program = args.program.as_deref();
    const C: &str = "initiatives";
    match &args.command {
        Verb::List(list) => {
            let parent = need_program(program)?;
            let client = program_client(&args.client).await?;
            let initiatives = page_all(list.limit, |page_size, page_token| {
                let filter = list.filter.clone();
                let order_by = list.order_by.clone();
                let mut c = client.clone();
                let parent = parent.clone();
                async move {
                    let r = c
                        .list_initiatives(pb::ListInitiativesRequest {
                            filter,
                            order_by,
                            parent,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((r.initiatives, r.next_page_token))
                }
            })
            .await?;
            let response = pb::ListInitiativesResponse {
                initiatives,
                next_page_token: String::new(),
            };
            show(json, &response, initiative_table)
        }
        Verb::Get { id } => {
            let name = child_name(id, program, C)?;
            let i = program_client(&args.client)
                .await?
                .get_initiative(pb::GetInitiativeRequest { name })
                .await?
                .into_inner();
            show(json, &i, initiative_fields)
        }
        Verb::Create { id, fields } => {
            let (parent, id) = split_child(id, program, C)?;
            let mut initiative = pb::Initiative::default();
            fields.apply(&mut initiative, &parent)?;
            let i = program_client(&args.client)
                .await?
                .create_initiative(pb::CreateInitiativeRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    parent,
                    initiative: Some(initiative),
                    initiative_id: id,
                })
                .await?
                .into_inner();
            show(json, &i, initiative_fields)
        }
        Verb::Update { id, fields, etag } => {
            let (parent, id) = split_child(id, program, C)?;
            let mut initiative = pb::Initiative {
                name: format!("{parent}/{C}/{id}"),
                etag: etag.etag.clone().unwrap_or_default(),
                ..Default::default()
            };
            let mask = fields.apply(&mut initiative, &parent)?.for_update()?;
            let i = program_client(&args.client)
                .await?
                .update_initiative(pb::UpdateInitiativeRequest {
                    initiative: Some(initiative),
                    update_mask: Some(mask),
                })
                .await?
                .into_inner();
            show(json, &i, initiative_fields)
        }
        Verb::Delete(d) => {
            let name = child_name(&d.id, program, C)?;
            program_client(&args.client)
                .await?
                .delete_initiative(pb::DeleteInitiativeRequest {
                    name: name.clone(),
                    etag: d.etag.etag.clone().unwrap_or_default(),
                    force: d.force,
                })
                .await?;
            deleted(json, &name)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Targets

/// `tradewatch targets`.
#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: Verb<TargetFields>,
    /// The programme (id or `programs/{id}`); not needed for a target given by full
    /// name.
    #[arg(long, global = true, value_name = "PROGRAM")]
    pub program: Option<String>,
    /// Server and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Fields of a target. On create, --title, --indicator, --kind, --target-value,
/// --target-period and --direction are required.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetFields {
    /// Title.
    #[arg(long)]
    pub title: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Indicator that measures it (id or name).
    #[arg(long, value_name = "INDICATOR")]
    pub indicator: Option<String>,
    /// Initiative it belongs to, in the same programme (id or name); empty for a
    /// programme-wide target.
    #[arg(long, value_name = "INITIATIVE")]
    pub initiative: Option<String>,
    /// Kind of target.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Target value, an exact decimal (a level, or percent a year).
    #[arg(long, value_name = "DECIMAL", allow_negative_numbers = true)]
    pub target_value: Option<String>,
    /// Power of ten of the target and baseline values of a level target (9 for
    /// billions).
    #[arg(long, value_name = "POWER", allow_negative_numbers = true)]
    pub unit_multiplier: Option<i32>,
    /// Target period, SDMX syntax (`2020`, `2020-Q4`).
    #[arg(long, value_name = "PERIOD")]
    pub target_period: Option<String>,
    /// Baseline value; empty to read it from the data.
    #[arg(long, value_name = "DECIMAL", allow_negative_numbers = true)]
    pub baseline_value: Option<String>,
    /// Baseline period, SDMX syntax.
    #[arg(long, value_name = "PERIOD")]
    pub baseline_period: Option<String>,
    /// Desired direction.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
}

impl TargetFields {
    fn apply(&self, t: &mut pb::Target, program: &str) -> Result<Mask, Failure> {
        let mut m = Mask::default();
        let initiative = match self.initiative.as_deref() {
            None => None,
            Some("") => Some(String::new()),
            Some(i) => Some(child_name(i, Some(program), "initiatives")?),
        };
        m.set(&self.title, &mut t.title, "title");
        m.set(&self.description, &mut t.description, "description");
        m.map(&self.indicator, &mut t.indicator, "indicator", |i| {
            indicator_name(&i)
        });
        m.set(&initiative, &mut t.initiative, "initiative");
        m.map(&self.kind, &mut t.kind, "kind", |k| {
            pb::target::Kind::from(k) as i32
        });
        m.set(&self.target_value, &mut t.target_value, "target_value");
        m.set(
            &self.unit_multiplier,
            &mut t.unit_multiplier,
            "unit_multiplier",
        );
        m.set(&self.target_period, &mut t.target_period, "target_period");
        m.set(
            &self.baseline_value,
            &mut t.baseline_value,
            "baseline_value",
        );
        m.set(
            &self.baseline_period,
            &mut t.baseline_period,
            "baseline_period",
        );
        m.map(&self.direction, &mut t.direction, "direction", |d| {
            pb::Direction::from(d) as i32
        });
        Ok(m)
    }
}

fn target_fields(t: &pb::Target) -> String {
    fields(&[
        ("name", t.name.clone()),
        ("title", t.title.clone()),
        ("description", t.description.clone()),
        ("indicator", t.indicator.clone()),
        ("initiative", t.initiative.clone()),
        ("kind", values::kind(t.kind)),
        ("target_value", t.target_value.clone()),
        ("unit_multiplier", t.unit_multiplier.to_string()),
        ("target_period", t.target_period.clone()),
        ("baseline_value", t.baseline_value.clone()),
        ("baseline_period", t.baseline_period.clone()),
        ("direction", values::direction(t.direction)),
        ("create_time", values::time(&t.create_time)),
        ("update_time", values::time(&t.update_time)),
        ("etag", t.etag.clone()),
    ])
}

/// What a target asks for: `30 × 10^9`, `7.5 % a year`.
fn goal(t: &pb::Target) -> String {
    if t.kind == pb::target::Kind::GrowthRate as i32 {
        format!("{} % a year", t.target_value)
    } else if t.unit_multiplier == 0 {
        t.target_value.clone()
    } else {
        format!("{} × 10^{}", t.target_value, t.unit_multiplier)
    }
}

fn target_table(list: &pb::ListTargetsResponse) -> String {
    let mut t = Table::new(["ID", "KIND", "INDICATOR", "GOAL", "PERIOD", "TITLE"]);
    for x in &list.targets {
        let period = if x.baseline_period.is_empty() {
            x.target_period.clone()
        } else {
            format!("{}–{}", x.baseline_period, x.target_period)
        };
        t.row([
            id_of(&x.name).to_owned(),
            values::kind(x.kind),
            id_of(&x.indicator).to_owned(),
            goal(x),
            period,
            truncate(&x.title, TITLE_WIDTH),
        ]);
    }
    t.render()
}

/// Runs `tradewatch targets …`.
pub async fn targets(args: TargetsArgs) -> Outcome {
    let json = args.client.json;
    let program = args.program.as_deref();
    const C: &str = "targets";
    match &args.command {
        Verb::List(list) => {
            let parent = need_program(program)?;
            let client = program_client(&args.client).await?;
            let targets = page_all(list.limit, |page_size, page_token| {
                let filter = list.filter.clone();
                let order_by = list.order_by.clone();
                let mut c = client.clone();
                let parent = parent.clone();
                async move {
                    let r = c
                        .list_targets(pb::ListTargetsRequest {
                            filter,
                            order_by,
                            parent,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((r.targets, r.next_page_token))
                }
            })
            .await?;
            let response = pb::ListTargetsResponse {
                targets,
                next_page_token: String::new(),
            };
            show(json, &response, target_table)
        }
        Verb::Get { id } => {
            let name = child_name(id, program, C)?;
            let t = program_client(&args.client)
                .await?
                .get_target(pb::GetTargetRequest { name })
                .await?
                .into_inner();
            show(json, &t, target_fields)
        }
        Verb::Create { id, fields } => {
            let (parent, id) = split_child(id, program, C)?;
            let mut target = pb::Target::default();
            fields.apply(&mut target, &parent)?;
            let t = program_client(&args.client)
                .await?
                .create_target(pb::CreateTargetRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    parent,
                    target: Some(target),
                    target_id: id,
                })
                .await?
                .into_inner();
            show(json, &t, target_fields)
        }
        Verb::Update { id, fields, etag } => {
            let (parent, id) = split_child(id, program, C)?;
            let mut target = pb::Target {
                name: format!("{parent}/{C}/{id}"),
                etag: etag.etag.clone().unwrap_or_default(),
                ..Default::default()
            };
            let mask = fields.apply(&mut target, &parent)?.for_update()?;
            let t = program_client(&args.client)
                .await?
                .update_target(pb::UpdateTargetRequest {
                    target: Some(target),
                    update_mask: Some(mask),
                })
                .await?
                .into_inner();
            show(json, &t, target_fields)
        }
        Verb::Delete(d) => {
            if d.force {
                return Err(Failure::Usage(
                    "targets have nothing that depends on them: delete takes no --force".to_owned(),
                ));
            }
            let name = child_name(&d.id, program, C)?;
            program_client(&args.client)
                .await?
                .delete_target(pb::DeleteTargetRequest {
                    name: name.clone(),
                    etag: d.etag.etag.clone().unwrap_or_default(),
                })
                .await?;
            deleted(json, &name)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Indicators

/// `tradewatch indicators`.
#[derive(Debug, Args)]
pub struct IndicatorsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: Verb<IndicatorFields>,
    /// Server and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Fields of an indicator. On create, --title, --unit, --frequency, --flow, --region,
/// --aggregation and --direction are required.
#[derive(Debug, Clone, Default, Args)]
pub struct IndicatorFields {
    /// Title.
    #[arg(long)]
    pub title: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// ISO 4217 currency (`USD`), exchange rate (`CNY/USD`: yuan per dollar) or plain unit (`1`, `%`, `TEU`).
    #[arg(long)]
    pub unit: Option<String>,
    /// Values are in units of 10^POWER (4 for 万, 8 for 亿, 9 for billions).
    #[arg(long, value_name = "POWER", allow_negative_numbers = true)]
    pub unit_multiplier: Option<i32>,
    /// Observation frequency (immutable after create).
    #[arg(long, value_enum)]
    pub frequency: Option<FrequencyArg>,
    /// Trade flow.
    #[arg(long, value_enum)]
    pub flow: Option<FlowArg>,
    /// EBOPS 2010 service category (`S`, `SC`, `SI2`, ...).
    #[arg(long, value_name = "CODE")]
    pub service_category: Option<String>,
    /// ISO 3166-2 subdivision or ISO 3166-1 country.
    #[arg(long, value_name = "CODE")]
    pub region: Option<String>,
    /// Free dimensions, comma-separated `key=code` pairs; replaces them all (`''`
    /// clears them).
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "KEY=CODE,…")]
    pub dimensions: Option<Vec<String>>,
    /// How values combine over time.
    #[arg(long, value_enum)]
    pub aggregation: Option<AggregationArg>,
    /// The source publishes year-to-date cumulative values (`--year-to-date false`
    /// to unset).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub year_to_date: Option<bool>,
    /// Desired direction.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
    /// Agency that publishes the figures.
    #[arg(long)]
    pub source_agency: Option<String>,
}

impl IndicatorFields {
    fn apply(&self, i: &mut pb::Indicator) -> Result<Mask, Failure> {
        let mut m = Mask::default();
        let dimensions = match &self.dimensions {
            None => None,
            Some(list) => Some(values::parse_key_values("--dimensions", list)?),
        };
        m.set(&self.title, &mut i.title, "title");
        m.set(&self.description, &mut i.description, "description");
        m.set(&self.unit, &mut i.unit, "unit");
        m.set(
            &self.unit_multiplier,
            &mut i.unit_multiplier,
            "unit_multiplier",
        );
        m.map(&self.frequency, &mut i.frequency, "frequency", |f| {
            pb::Frequency::from(f) as i32
        });
        m.map(&self.flow, &mut i.flow, "flow", |f| {
            pb::indicator::Flow::from(f) as i32
        });
        m.set(
            &self.service_category,
            &mut i.service_category,
            "service_category",
        );
        m.set(&self.region, &mut i.region, "region");
        m.set(&dimensions, &mut i.dimensions, "dimensions");
        m.map(&self.aggregation, &mut i.aggregation, "aggregation", |a| {
            pb::indicator::Aggregation::from(a) as i32
        });
        m.set(&self.year_to_date, &mut i.year_to_date, "year_to_date");
        m.map(&self.direction, &mut i.direction, "direction", |d| {
            pb::Direction::from(d) as i32
        });
        m.set(&self.source_agency, &mut i.source_agency, "source_agency");
        Ok(m)
    }
}

fn dimensions(i: &pb::Indicator) -> String {
    let mut d: Vec<String> = i
        .dimensions
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    d.sort();
    d.join(", ")
}

fn indicator_fields(i: &pb::Indicator) -> String {
    fields(&[
        ("name", i.name.clone()),
        ("title", i.title.clone()),
        ("description", i.description.clone()),
        ("unit", i.unit.clone()),
        ("unit_multiplier", i.unit_multiplier.to_string()),
        ("frequency", values::frequency(i.frequency)),
        ("flow", values::flow(i.flow)),
        ("service_category", i.service_category.clone()),
        ("region", i.region.clone()),
        ("dimensions", dimensions(i)),
        ("aggregation", values::aggregation(i.aggregation)),
        ("year_to_date", i.year_to_date.to_string()),
        ("direction", values::direction(i.direction)),
        ("source_agency", i.source_agency.clone()),
        ("create_time", values::time(&i.create_time)),
        ("update_time", values::time(&i.update_time)),
        ("etag", i.etag.clone()),
    ])
}

fn indicator_table(list: &pb::ListIndicatorsResponse) -> String {
    let mut t = Table::new([
        "ID",
        "FREQUENCY",
        "UNIT",
        "FLOW",
        "CATEGORY",
        "REGION",
        "TITLE",
    ]);
    for i in &list.indicators {
        t.row([
            id_of(&i.name).to_owned(),
            values::frequency(i.frequency),
            values::unit(&i.unit, i.unit_multiplier),
            values::flow(i.flow),
            i.service_category.clone(),
            i.region.clone(),
            truncate(&i.title, TITLE_WIDTH),
        ]);
    }
    t.render()
}

/// Runs `tradewatch indicators …`.
pub async fn indicators(args: IndicatorsArgs) -> Outcome {
    let json = args.client.json;
    // Flags are checked before connecting: a usage error needs no server.
    let mut indicator = pb::Indicator::default();
    let mask = match &args.command {
        Verb::Create { fields, .. } | Verb::Update { fields, .. } => {
            Some(fields.apply(&mut indicator)?)
        }
        _ => None,
    };
    if let Verb::Update { .. } = &args.command {
        mask.as_ref()
            .filter(|m| !m.0.is_empty())
            .ok_or_else(Mask::nothing)?;
    }
    let mut client = IndicatorServiceClient::new(connect(&args.client.server).await?);
    match args.command {
        Verb::List(list) => {
            let indicators = page_all(list.limit, |page_size, page_token| {
                let filter = list.filter.clone();
                let order_by = list.order_by.clone();
                let mut c = client.clone();
                async move {
                    let r = c
                        .list_indicators(pb::ListIndicatorsRequest {
                            filter,
                            order_by,
                            page_size,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((r.indicators, r.next_page_token))
                }
            })
            .await?;
            let response = pb::ListIndicatorsResponse {
                indicators,
                next_page_token: String::new(),
            };
            show(json, &response, indicator_table)
        }
        Verb::Get { id } => {
            let i = client
                .get_indicator(pb::GetIndicatorRequest {
                    name: indicator_name(&id),
                })
                .await?
                .into_inner();
            show(json, &i, indicator_fields)
        }
        Verb::Create { id, .. } => {
            let i = client
                .create_indicator(pb::CreateIndicatorRequest {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    indicator: Some(indicator),
                    indicator_id: id,
                })
                .await?
                .into_inner();
            show(json, &i, indicator_fields)
        }
        Verb::Update { id, etag, .. } => {
            let mask = mask.unwrap_or_default().for_update()?;
            indicator.name = indicator_name(&id);
            indicator.etag = etag.etag.unwrap_or_default();
            let i = client
                .update_indicator(pb::UpdateIndicatorRequest {
                    indicator: Some(indicator),
                    update_mask: Some(mask),
                })
                .await?
                .into_inner();
            show(json, &i, indicator_fields)
        }
        Verb::Delete(d) => {
            let name = indicator_name(&d.id);
            client
                .delete_indicator(pb::DeleteIndicatorRequest {
                    name: name.clone(),
                    etag: d.etag.etag.unwrap_or_default(),
                    force: d.force,
                })
                .await?;
            deleted(json, &name)
        }
    }
}
