//! `tradewatch.v1.IndicatorService`.

use prost::Message as _;
use tonic::{Request, Response, Status};

use super::convert::{indicator_spec, indicator_to_proto};
use super::mask::{masked, merge};
use super::{Context, etag, finish, required_message};
use crate::domain::names::IndicatorName;
use crate::domain::{ResourceId, Violations};
use crate::error::Error;
use crate::filter::{ListQuery, request_identity};
use crate::proto::v1 as pb;
use crate::proto::v1::indicator_service_server::IndicatorService;
use crate::store::indicators;

masked!(pb::Indicator,
    mutable: [title, description, unit, unit_multiplier, frequency, flow, service_category,
              region, dimensions, aggregation, year_to_date, direction, source_agency],
    output_only: ["name", "create_time", "update_time", "etag"]);

/// Serves indicators.
#[derive(Debug, Clone)]
pub struct IndicatorApi {
    ctx: Context,
}

impl IndicatorApi {
    /// A service over `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

#[tonic::async_trait]
impl IndicatorService for IndicatorApi {
    async fn create_indicator(
        &self,
        request: Request<pb::CreateIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        let encoded = request.get_ref().encode_to_vec();
        let pb::CreateIndicatorRequest {
            indicator,
            indicator_id,
            request_id,
        } = request.into_inner();
        let mut v = Violations::new();
        let id = v.check("indicator_id", ResourceId::parse(&indicator_id));
        let spec = required_message(&mut v, "indicator", &indicator)
            .and_then(|i| indicator_spec(i, "indicator", &mut v));
        let (id, spec) = finish(v, || Some((id?, spec?)))?;
        let pool = &self.ctx.pool;
        let created = super::idempotency::create(
            pool,
            "tradewatch.v1.IndicatorService/CreateIndicator",
            &request_id,
            &encoded,
            || async {
                Ok(indicator_to_proto(
                    &indicators::create(pool, &id, &spec).await?,
                ))
            },
            || async { Ok(indicator_to_proto(&indicators::get(pool, &id).await?)) },
        )
        .await?;
        Ok(Response::new(created))
    }

    async fn get_indicator(
        &self,
        request: Request<pb::GetIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        let pb::GetIndicatorRequest { name } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", IndicatorName::parse(&name));
        let name = finish(v, || name)?;
        let found = indicators::get(&self.ctx.pool, &name.0).await?;
        Ok(Response::new(indicator_to_proto(&found)))
    }

    async fn list_indicators(
        &self,
        request: Request<pb::ListIndicatorsRequest>,
    ) -> Result<Response<pb::ListIndicatorsResponse>, Status> {
        let pb::ListIndicatorsRequest {
            page_size,
            page_token,
            filter,
            order_by,
        } = request.into_inner();
        let mut v = Violations::new();
        let query = ListQuery::check(&mut v, &indicators::FILTER_SCHEMA, &filter, &order_by);
        let query = finish(v, || query)?;
        let fingerprint = request_identity("ListIndicators", &filter, &order_by);
        let page = self
            .ctx
            .page_tokens
            .page(&fingerprint, page_size, &page_token)?;
        let mut rows = indicators::list(
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
        Ok(Response::new(pb::ListIndicatorsResponse {
            indicators: rows.iter().map(|(i, _)| indicator_to_proto(i)).collect(),
            next_page_token,
        }))
    }

    async fn update_indicator(
        &self,
        request: Request<pb::UpdateIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        let pb::UpdateIndicatorRequest {
            indicator,
            update_mask,
        } = request.into_inner();
        let mut v = Violations::new();
        let given = required_message(&mut v, "indicator", &indicator);
        let name = given.and_then(|i| v.check("indicator.name", IndicatorName::parse(&i.name)));
        let (name, given) = finish(v, || Some((name?, given?)))?;
        let updated = indicators::update(&self.ctx.pool, &name.0, etag(&given.etag), |current| {
            let current_proto = indicator_to_proto(current);
            let merged = merge(&current_proto, given, update_mask.as_ref())?;
            if merged.frequency != 0 && merged.frequency != current_proto.frequency {
                return Err(Error::invalid(
                    "indicator.frequency",
                    "IMMUTABLE",
                    "the frequency of an indicator cannot change once it is created; create a \
                     new indicator instead",
                ));
            }
            let mut v = Violations::new();
            let spec = indicator_spec(&merged, "indicator", &mut v);
            v.finish(|| spec).map_err(Error::from)
        })
        .await?;
        Ok(Response::new(indicator_to_proto(&updated)))
    }

    async fn delete_indicator(
        &self,
        request: Request<pb::DeleteIndicatorRequest>,
    ) -> Result<Response<()>, Status> {
        let pb::DeleteIndicatorRequest {
            name,
            etag: e,
            force,
        } = request.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", IndicatorName::parse(&name));
        let name = finish(v, || name)?;
        indicators::delete(&self.ctx.pool, &name.0, etag(&e), force).await?;
        Ok(Response::new(()))
    }
}
