//! Who is calling, carried from the gRPC layer to the transactions that write.
//!
//! The server's call layer runs every handler inside [`scope`], with the caller's key,
//! the method and the request id. [`super::begin`] copies them into the transaction
//! (`set_config(..., true)`, transaction-local), where the audit triggers read them, so
//! every audited change carries its author without threading it through every store
//! function. A create, batch or import that carries a `request_id` also claims it in
//! that transaction (see [`super::idempotency`]).

use std::future::Future;

/// The caller of the current gRPC call.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Key id of the caller (`None` when anonymous or internal).
    pub actor: Option<String>,
    /// Full gRPC method, e.g. `tradewatch.v1.ProgramService/CreateProgram`.
    pub method: String,
    /// The call's request id (`x-request-id`).
    pub request_id: String,
    /// The idempotency claim of this call, if it carries a `request_id`.
    pub claim: Option<Claim>,
    /// When the call's deadline passes, if it has one: transactions get a
    /// `statement_timeout` of the time left, so that PostgreSQL stops their work (and
    /// releases their locks) when the call is dropped at its deadline.
    pub deadline: Option<std::time::Instant>,
}

/// A `request_id` claimed by the transaction that applies the request.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The client's request id.
    pub request_id: uuid::Uuid,
    /// The full method it was sent to, e.g. `tradewatch.v1.ProgramService/CreateProgram`.
    pub method: String,
    /// SHA-256 of the method and the request's encoding, minus the request id.
    pub fingerprint: Vec<u8>,
}

tokio::task_local! {
    static CALL: CallContext;
}

/// How much earlier than the call's deadline the database gives up on its work: the
/// refusal then reaches the client before its own timer ends the call, and a write that
/// commits just before its deadline still has time to answer.
pub const DATABASE_MARGIN: std::time::Duration = std::time::Duration::from_millis(20);

impl CallContext {
    /// Milliseconds the database may spend on this call's work (at least 1), or `None`
    /// when the call has no deadline.
    pub fn database_ms(&self) -> Option<i64> {
        self.deadline.map(|d| {
            d.saturating_duration_since(std::time::Instant::now())
                .saturating_sub(DATABASE_MARGIN)
                .as_millis()
                .clamp(1, i64::MAX as u128) as i64
        })
    }
}

/// Runs `f` as the call described by `ctx`.
pub async fn scope<F: Future>(ctx: CallContext, f: F) -> F::Output {
    CALL.scope(ctx, f).await
}

/// The current call, if any (none for the seed, migrations and other internal work).
pub fn current() -> Option<CallContext> {
    CALL.try_with(Clone::clone).ok()
}

/// Runs `f` as the current call with `claim` added.
pub async fn with_claim<F: Future>(claim: Claim, f: F) -> F::Output {
    let mut ctx = current().unwrap_or_default();
    ctx.claim = Some(claim);
    CALL.scope(ctx, f).await
}
