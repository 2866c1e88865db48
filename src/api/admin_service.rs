//! `tradewatch.v1.AdminService`: API keys and the audit log. The call layer has already
//! checked that the caller holds an admin key.

use tonic::{Request, Response, Status};

use super::convert::{optional_time, timestamp};
use super::{Caller, Context, finish, required_message};
use crate::domain::Violations;
use crate::domain::access::{self, Role};
use crate::domain::text;
use crate::error::Error;
use crate::proto::v1 as pb;
use crate::proto::v1::admin_service_server::AdminService;
use crate::store::{audit, keys};

/// Serves API keys and the audit log.
#[derive(Debug, Clone)]
pub struct AdminApi {
    ctx: Context,
}

impl AdminApi {
    /// A service over `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

fn role_to_proto(r: Role) -> pb::Role {
    match r {
        Role::Viewer => pb::Role::Viewer,
        Role::Editor => pb::Role::Editor,
        Role::Admin => pb::Role::Admin,
    }
}

fn key_to_proto(k: &keys::ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        name: format!("apiKeys/{}", k.id),
        display_name: k.display_name.clone(),
        role: role_to_proto(k.role) as i32,
        create_time: Some(timestamp(k.create_time)),
        creator: k
            .creator
            .as_ref()
            .map(|c| format!("apiKeys/{c}"))
            .unwrap_or_default(),
    }
}

/// Parses `apiKeys/{key}`.
fn key_name(v: &mut Violations, field: &str, name: &str) -> Option<String> {
    let id = name
        .strip_prefix("apiKeys/")
        .filter(|id| access::valid_key_id(id));
    if id.is_none() {
        v.push(
            field,
            "INVALID_NAME",
            format!(
                "{field} must be apiKeys/{{key}} with a 12-character key id (got {:?})",
                crate::domain::names::truncate(name)
            ),
        );
    }
    id.map(str::to_owned)
}

/// A JSON object as a `google.protobuf.Struct`.
fn to_struct(value: Option<serde_json::Value>) -> Option<prost_types::Struct> {
    match to_value(value?).kind? {
        prost_types::value::Kind::StructValue(s) => Some(s),
        _ => None,
    }
}

fn to_value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        // Whole numbers (decimals come as text, see `audit_view`).
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() < (1 << 53) => Kind::NumberValue(i as f64),
            _ => Kind::StringValue(n.to_string()),
        },
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn event_to_proto(e: audit::AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        name: format!("auditEvents/{}", e.event_id),
        time: Some(timestamp(e.time)),
        actor: e.actor.map(|a| format!("apiKeys/{a}")).unwrap_or_default(),
        method: e.method,
        action: e.action,
        request_id: e.request_id,
        before: to_struct(e.before.map(|b| super::audit_view::to_api(&e.resource, b))),
        after: to_struct(e.after.map(|a| super::audit_view::to_api(&e.resource, a))),
        resource: e.resource,
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let creator = Caller::of(&request).key_id;
        let pb::CreateApiKeyRequest { api_key } = request.into_inner();
        let mut v = Violations::new();
        let key = required_message(&mut v, "api_key", &api_key);
        let display_name = key.and_then(|k| {
            v.check(
                "api_key.display_name",
                text::optional_line(&k.display_name, 200),
            )
        });
        let role = key.and_then(|k| {
            let role = match pb::Role::try_from(k.role) {
                Ok(pb::Role::Viewer) => Some(Role::Viewer),
                Ok(pb::Role::Editor) => Some(Role::Editor),
                Ok(pb::Role::Admin) => Some(Role::Admin),
                _ => None,
            };
            if role.is_none() {
                v.push(
                    "api_key.role",
                    "INVALID_ROLE",
                    format!(
                        "api_key.role must be ROLE_VIEWER, ROLE_EDITOR or ROLE_ADMIN (got {})",
                        k.role
                    ),
                );
            }
            role
        });
        let (display_name, role) = finish(v, || Some((display_name?, role?)))?;
        let (key, secret) =
            keys::create(&self.ctx.pool, &display_name, role, creator.as_deref()).await?;
        tracing::info!(key = %key.id, role = role.as_str(), "API key created");
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(key_to_proto(&key)),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let pb::ListApiKeysRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let fingerprint = "ListApiKeys";
        let page = self
            .ctx
            .page_tokens
            .page(fingerprint, page_size, &page_token)?;
        let mut rows =
            keys::list(&self.ctx.pool, page.after.as_deref(), page.fetch_limit()).await?;
        let next_page_token = self
            .ctx
            .page_tokens
            .finish(fingerprint, &page, &mut rows, |k| k.id.clone());
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: rows.iter().map(key_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn delete_api_key(
        &self,
        request: Request<pb::DeleteApiKeyRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request).key_id;
        let pb::DeleteApiKeyRequest { name } = request.into_inner();
        let mut v = Violations::new();
        let id = key_name(&mut v, "name", &name);
        let id = finish(v, || id)?;
        if caller.as_deref() == Some(id.as_str()) {
            return Err(Error::FailedPrecondition {
                reason: "OWN_KEY",
                message: format!(
                    "apiKeys/{id} is the key making this call; revoke it with another admin key"
                ),
                subjects: vec![],
            }
            .into());
        }
        keys::revoke(&self.ctx.pool, &id).await?;
        tracing::info!(key = %id, "API key revoked");
        Ok(Response::new(()))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let pb::ListAuditEventsRequest {
            resource,
            actor,
            start_time,
            end_time,
            page_size,
            page_token,
        } = request.into_inner();
        let mut v = Violations::new();
        let actor_id = if actor.is_empty() {
            Some(None)
        } else {
            key_name(&mut v, "actor", &actor).map(Some)
        };
        // Control characters: no name has them, and PostgreSQL refuses NUL in text
        // (which then failed as an internal error).
        if resource.len() > 1000
            || resource.ends_with('/')
            || resource.chars().any(char::is_control)
        {
            v.push(
                "resource",
                "INVALID_NAME",
                "resource must be a resource name (at most 1,000 characters, no trailing /, \
                 no control characters)",
            );
        }
        let start = optional_time(&mut v, "start_time", &start_time);
        let end = optional_time(&mut v, "end_time", &end_time);
        let query = finish(v, || {
            Some(audit::Query {
                resource: (!resource.is_empty()).then(|| resource.clone()),
                actor: actor_id?,
                start: start?,
                end: end?,
            })
        })?;
        let fingerprint = format!(
            "ListAuditEvents\u{0}{resource}\u{0}{actor}\u{0}{:?}\u{0}{:?}",
            query.start, query.end
        );
        let page = self
            .ctx
            .page_tokens
            .page(&fingerprint, page_size, &page_token)?;
        let before = match page.after.as_deref().map(str::parse::<i64>) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                return Err(
                    Error::invalid("page_token", "INVALID_PAGE_TOKEN", "bad page_token").into(),
                );
            }
        };
        let mut rows = audit::list(&self.ctx.pool, &query, before, page.fetch_limit()).await?;
        let next_page_token = self
            .ctx
            .page_tokens
            .finish(&fingerprint, &page, &mut rows, |e| e.event_id.to_string());
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events: rows.into_iter().map(event_to_proto).collect(),
            next_page_token,
        }))
    }
}
