//! `tradewatch.v1.ProgramService`: programmes, initiatives and targets.

use prost::Message as _;
use tonic::{Request, Response, Status};

use super::convert::{
    initiative_spec, initiative_to_proto, program_spec, program_to_proto, target_spec,
    target_to_proto,
};
use super::idempotency;
use super::mask::{masked, merge};
use super::{Context, etag, finish, required_message};
use crate::domain::names::{InitiativeName, ProgramName, TargetName};
use crate::domain::{ResourceId, Violations};
use crate::error::Error;
use crate::filter::{ListQuery, request_identity};
use crate::proto::v1 as pb;
use crate::proto::v1::program_service_server::ProgramService;
use crate::store::{initiatives, programs, targets};

masked!(pb::Program,
    mutable: [title, issuing_body, adoption_date, jurisdiction, start_year, end_year, summary,
              source_uri],
    output_only: ["name", "create_time", "update_time", "etag"]);

masked!(pb::Initiative,
    mutable: [parent_initiative, title, description, lead_agency, state, start_date, end_date,
              tags, indicators, position],
    output_only: ["name", "create_time", "update_time", "etag"]);

masked!(pb::Target,
    mutable: [title, description, indicator, initiative, kind, target_value, unit_multiplier,
              target_period, baseline_value, baseline_period, direction],
    output_only: ["name", "create_time", "update_time", "etag"]);

/// Serves programmes, initiatives and targets.
#[derive(Debug, Clone)]
pub struct ProgramApi {
    ctx: Context,
}

impl ProgramApi {
    /// A service over `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

fn parse_parent(v: &mut Violations, parent: &str) -> Option<ProgramName> {
    v.check("parent", ProgramName::parse(parent))
}

#[tonic::async_trait]
impl ProgramService for ProgramApi {
    async fn create_program(
        &self,
        request: Request<pb::CreateProgramRequest>,
    ) -> Result<Response<pb::Program>, Status> {
        let encoded = request.get_ref().encode_to_vec();
        let pb::CreateProgramRequest {
            program,
            program_id,
            request_id,
        } = request.into_inner();
        let mut v = Violations::new();
        let id = v.check("program_id", ResourceId::parse(&program_id));
        let spec = required_message(&mut v, "program", &program)
            .and_then(|p| program_spec(p, "program", &mut v));
        let (id, spec) = finish(v, || Some((id?, spec?)))?;
        let pool = &self.ctx.pool;
        let created = idempotency::create(
            pool,
            "tradewatch.v1.ProgramService/CreateProgram",
            &request_id,
            &encoded,
            || async { Ok(program_to_proto(&programs::create(pool, &id, &spec).await?)) },
            || async { Ok(program_to_proto(&programs::get(pool, &id).await?)) },
        )
        .await?;
        Ok(Response::new(created))
    }

    async fn get_program(
        &self,
        request: Request<pb::GetProgramRequest>,
    ) -> Result<Response<pb::Program>, Status> {
        let pb::GetProgramRequest { name } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ProgramName::parse(&name));
        let name = finish(v, || name)?;
        let found = programs::get(&self.ctx.pool, &name.0).await?;
        Ok(Response::new(program_to_proto(&found)))
    }

    async fn list_programs(
        &self,
        request: Request<pb::ListProgramsRequest>,
    ) -> Result<Response<pb::ListProgramsResponse>, Status> {
        let pb::ListProgramsRequest {
            page_size,
            page_token,
            filter,
            order_by,
        } = request.into_inner();
        let mut v = Violations::new();
        let query = ListQuery::check(&mut v, &programs::FILTER_SCHEMA, &filter, &order_by);
        let query = finish(v, || query)?;
        let fingerprint = request_identity("ListPrograms", &filter, &order_by);
        let page = self
            .ctx
            .page_tokens
            .page(&fingerprint, page_size, &page_token)?;
        let mut rows = programs::list(
            &self.ctx.pool,
            &query,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
        let next_page_token =
            self.ctx
                .page_tokens
                .finish(&fingerprint, &page, &mut rows, |(_, key)| key.clone());
        Ok(Response::new(pb::ListProgramsResponse {
            programs: rows.iter().map(|(p, _)| program_to_proto(p)).collect(),
            next_page_token,
        }))
    }

    async fn update_program(
        &self,
        request: Request<pb::UpdateProgramRequest>,
    ) -> Result<Response<pb::Program>, Status> {
        let pb::UpdateProgramRequest {
            program,
            update_mask,
        } = request.into_inner();
        let mut v = Violations::new();
        let given = required_message(&mut v, "program", &program);
        let name = given.and_then(|p| v.check("program.name", ProgramName::parse(&p.name)));
        let (name, given) = finish(v, || Some((name?, given?)))?;
        let updated = programs::update(&self.ctx.pool, &name.0, etag(&given.etag), |current| {
            let merged = merge(&program_to_proto(current), given, update_mask.as_ref())?;
            let mut v = Violations::new();
            let spec = program_spec(&merged, "program", &mut v);
            v.finish(|| spec).map_err(Error::from)
        })
        .await?;
        Ok(Response::new(program_to_proto(&updated)))
    }

    async fn delete_program(
        &self,
        request: Request<pb::DeleteProgramRequest>,
    ) -> Result<Response<()>, Status> {
        let pb::DeleteProgramRequest {
            name,
            etag: e,
            force,
        } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ProgramName::parse(&name));
        let name = finish(v, || name)?;
        programs::delete(&self.ctx.pool, &name.0, etag(&e), force).await?;
        Ok(Response::new(()))
    }

    async fn create_initiative(
        &self,
        request: Request<pb::CreateInitiativeRequest>,
    ) -> Result<Response<pb::Initiative>, Status> {
        let encoded = request.get_ref().encode_to_vec();
        let pb::CreateInitiativeRequest {
            parent,
            initiative,
            initiative_id,
            request_id,
        } = request.into_inner();
        let mut v = Violations::new();
        let parent = parse_parent(&mut v, &parent);
        let id = v.check("initiative_id", ResourceId::parse(&initiative_id));
        let spec = match (&parent, required_message(&mut v, "initiative", &initiative)) {
            (Some(p), Some(i)) => initiative_spec(i, &p.0, "initiative", &mut v),
            _ => None,
        };
        let (name, spec) = finish(v, || {
            Some((
                InitiativeName {
                    program: parent?.0,
                    initiative: id?,
                },
                spec?,
            ))
        })?;
        let pool = &self.ctx.pool;
        let created = idempotency::create(
            pool,
            "tradewatch.v1.ProgramService/CreateInitiative",
            &request_id,
            &encoded,
            || async {
                Ok(initiative_to_proto(
                    &initiatives::create(pool, &name, &spec).await?,
                ))
            },
            || async { Ok(initiative_to_proto(&initiatives::get(pool, &name).await?)) },
        )
        .await?;
        Ok(Response::new(created))
    }

    async fn get_initiative(
        &self,
        request: Request<pb::GetInitiativeRequest>,
    ) -> Result<Response<pb::Initiative>, Status> {
        let pb::GetInitiativeRequest { name } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", InitiativeName::parse(&name));
        let name = finish(v, || name)?;
        let found = initiatives::get(&self.ctx.pool, &name).await?;
        Ok(Response::new(initiative_to_proto(&found)))
    }

    async fn list_initiatives(
        &self,
        request: Request<pb::ListInitiativesRequest>,
    ) -> Result<Response<pb::ListInitiativesResponse>, Status> {
        let pb::ListInitiativesRequest {
            parent,
            page_size,
            page_token,
            filter,
            order_by,
        } = request.into_inner();
        let mut v = Violations::new();
        let parent = parse_parent(&mut v, &parent);
        let query = ListQuery::check(&mut v, &initiatives::FILTER_SCHEMA, &filter, &order_by);
        let (parent, query) = finish(v, || Some((parent?, query?)))?;
        let fingerprint =
            request_identity(&format!("ListInitiatives {parent}"), &filter, &order_by);
        let page = self
            .ctx
            .page_tokens
            .page(&fingerprint, page_size, &page_token)?;
        let mut rows = initiatives::list(
            &self.ctx.pool,
            &parent.0,
            &query,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
        let next_page_token =
            self.ctx
                .page_tokens
                .finish(&fingerprint, &page, &mut rows, |(_, key)| key.clone());
        Ok(Response::new(pb::ListInitiativesResponse {
            initiatives: rows.iter().map(|(i, _)| initiative_to_proto(i)).collect(),
            next_page_token,
        }))
    }

    async fn update_initiative(
        &self,
        request: Request<pb::UpdateInitiativeRequest>,
    ) -> Result<Response<pb::Initiative>, Status> {
        let pb::UpdateInitiativeRequest {
            initiative,
            update_mask,
        } = request.into_inner();
        let mut v = Violations::new();
        let given = required_message(&mut v, "initiative", &initiative);
        let name = given.and_then(|i| v.check("initiative.name", InitiativeName::parse(&i.name)));
        let (name, given) = finish(v, || Some((name?, given?)))?;
        let updated = initiatives::update(&self.ctx.pool, &name, etag(&given.etag), |current| {
            let merged = merge(&initiative_to_proto(current), given, update_mask.as_ref())?;
            let mut v = Violations::new();
            let spec = initiative_spec(&merged, &name.program, "initiative", &mut v);
            v.finish(|| spec).map_err(Error::from)
        })
        .await?;
        Ok(Response::new(initiative_to_proto(&updated)))
    }

    async fn delete_initiative(
        &self,
        request: Request<pb::DeleteInitiativeRequest>,
    ) -> Result<Response<()>, Status> {
        let pb::DeleteInitiativeRequest {
            name,
            etag: e,
            force,
        } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", InitiativeName::parse(&name));
        let name = finish(v, || name)?;
        initiatives::delete(&self.ctx.pool, &name, etag(&e), force).await?;
        Ok(Response::new(()))
    }

    async fn create_target(
        &self,
        request: Request<pb::CreateTargetRequest>,
    ) -> Result<Response<pb::Target>, Status> {
        let encoded = request.get_ref().encode_to_vec();
        let pb::CreateTargetRequest {
            parent,
            target,
            target_id,
            request_id,
        } = request.into_inner();
        let mut v = Violations::new();
        let parent = parse_parent(&mut v, &parent);
        let id = v.check("target_id", ResourceId::parse(&target_id));
        let spec = match (&parent, required_message(&mut v, "target", &target)) {
            (Some(p), Some(t)) => target_spec(t, &p.0, "target", &mut v),
            _ => None,
        };
        let (name, spec) = finish(v, || {
            Some((
                TargetName {
                    program: parent?.0,
                    target: id?,
                },
                spec?,
            ))
        })?;
        let pool = &self.ctx.pool;
        let created = idempotency::create(
            pool,
            "tradewatch.v1.ProgramService/CreateTarget",
            &request_id,
            &encoded,
            || async { Ok(target_to_proto(&targets::create(pool, &name, &spec).await?)) },
            || async { Ok(target_to_proto(&targets::get(pool, &name).await?)) },
        )
        .await?;
        Ok(Response::new(created))
    }

    async fn get_target(
        &self,
        request: Request<pb::GetTargetRequest>,
    ) -> Result<Response<pb::Target>, Status> {
        let pb::GetTargetRequest { name } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", TargetName::parse(&name));
        let name = finish(v, || name)?;
        let found = targets::get(&self.ctx.pool, &name).await?;
        Ok(Response::new(target_to_proto(&found)))
    }

    async fn list_targets(
        &self,
        request: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<pb::ListTargetsResponse>, Status> {
        let pb::ListTargetsRequest {
            parent,
            page_size,
            page_token,
            filter,
            order_by,
        } = request.into_inner();
        let mut v = Violations::new();
        let parent = parse_parent(&mut v, &parent);
        let query = ListQuery::check(&mut v, &targets::FILTER_SCHEMA, &filter, &order_by);
        let (parent, query) = finish(v, || Some((parent?, query?)))?;
        let fingerprint = request_identity(&format!("ListTargets {parent}"), &filter, &order_by);
        let page = self
            .ctx
            .page_tokens
            .page(&fingerprint, page_size, &page_token)?;
        let mut rows = targets::list(
            &self.ctx.pool,
            &parent.0,
            &query,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
        let next_page_token =
            self.ctx
                .page_tokens
                .finish(&fingerprint, &page, &mut rows, |(_, key)| key.clone());
        Ok(Response::new(pb::ListTargetsResponse {
            targets: rows.iter().map(|(t, _)| target_to_proto(t)).collect(),
            next_page_token,
        }))
    }

    async fn update_target(
        &self,
        request: Request<pb::UpdateTargetRequest>,
    ) -> Result<Response<pb::Target>, Status> {
        let pb::UpdateTargetRequest {
            target,
            update_mask,
        } = request.into_inner();
        let mut v = Violations::new();
        let given = required_message(&mut v, "target", &target);
        let name = given.and_then(|t| v.check("target.name", TargetName::parse(&t.name)));
        let (name, given) = finish(v, || Some((name?, given?)))?;
        let updated = targets::update(&self.ctx.pool, &name, etag(&given.etag), |current| {
            let merged = merge(&target_to_proto(current), given, update_mask.as_ref())?;
            let mut v = Violations::new();
            let spec = target_spec(&merged, &name.program, "target", &mut v);
            v.finish(|| spec).map_err(Error::from)
        })
        .await?;
        Ok(Response::new(target_to_proto(&updated)))
    }

    async fn delete_target(
        &self,
        request: Request<pb::DeleteTargetRequest>,
    ) -> Result<Response<()>, Status> {
        let pb::DeleteTargetRequest { name, etag: e } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", TargetName::parse(&name));
        let name = finish(v, || name)?;
        targets::delete(&self.ctx.pool, &name, etag(&e)).await?;
        Ok(Response::new(()))
    }
}
