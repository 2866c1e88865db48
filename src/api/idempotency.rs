//! `request_id` on create, batch and import methods (AIP-155): a retry with the same id
//! gets the original response and applies nothing; the same id with a different
//! request is INVALID_ARGUMENT. See [`crate::store::idempotency`] for the storage.

use std::future::Future;

use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tonic::Status;

use crate::error::Error;
use crate::store::call::Claim;
use crate::store::idempotency;

/// What a call with a request id should do.
pub(crate) enum Plan {
    /// No request id: just apply.
    Plain,
    /// A new request id: apply under this claim.
    Apply(Claim),
    /// Seen before: replay this stored response (`None`: committed, response not stored).
    Replay(Option<Vec<u8>>),
}

/// Fingerprint of a request: SHA-256 of the method and the encoding of each message.
pub(crate) fn fingerprint(method: &str, messages: &[&[u8]]) -> Vec<u8> {
    let mut f = Fingerprint::new(method);
    for m in messages {
        f.add(m);
    }
    f.finish()
}

/// A fingerprint built message by message (for client streams).
pub(crate) struct Fingerprint(Sha256);

impl Fingerprint {
    /// Starts the fingerprint of a call of `method`.
    pub(crate) fn new(method: &str) -> Self {
        let mut h = Sha256::new();
        h.update(method.as_bytes());
        h.update([0u8]);
        Self(h)
    }

    /// Adds one message's encoding.
    pub(crate) fn add(&mut self, message: &[u8]) {
        self.0.update((message.len() as u64).to_be_bytes());
        self.0.update(message);
    }

    /// The fingerprint.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0.finalize().to_vec()
    }
}

/// Parses a request id: empty, or a UUID of version 4 in its canonical text form.
pub(crate) fn parse_request_id(field: &str, request_id: &str) -> Result<Option<uuid::Uuid>, Error> {
    if request_id.is_empty() {
        return Ok(None);
    }
    match uuid::Uuid::try_parse(request_id) {
        Ok(u) if u.get_version_num() == 4 && request_id.len() == 36 => Ok(Some(u)),
        _ => Err(Error::invalid(
            field,
            "INVALID_REQUEST_ID",
            format!(
                "{field} must be a UUID version 4 such as 8c1f3c9e-5b7a-4e2f-9d3a-2f6b1c0e7a41 (got {:?})",
                crate::domain::names::truncate(request_id)
            ),
        )),
    }
}

/// Decides what a call with `request_id` (already parsed) should do.
pub(crate) async fn plan(
    pool: &PgPool,
    field: &str,
    method: &str,
    request_id: Option<uuid::Uuid>,
    fingerprint: Vec<u8>,
) -> Result<Plan, Error> {
    let Some(request_id) = request_id else {
        return Ok(Plan::Plain);
    };
    match idempotency::find(pool, request_id).await? {
        None => Ok(Plan::Apply(Claim {
            request_id,
            method: method.to_owned(),
            fingerprint,
        })),
        Some(stored) if stored.method == method && stored.fingerprint == fingerprint => {
            tracing::info!(%request_id, "retry of an applied request: replaying its response");
            Ok(Plan::Replay(stored.response))
        }
        Some(_) => Err(reused(field, Some(request_id))),
    }
}

/// INVALID_ARGUMENT: `request_id` was used before for a different request.
pub(crate) fn reused(field: &str, request_id: Option<uuid::Uuid>) -> Error {
    let id = request_id.map(|r| r.to_string()).unwrap_or_default();
    Error::invalid(
        field,
        "REQUEST_ID_REUSED",
        format!(
            "{field} {id} was already used for a different request; \
             use a new request_id for a new request"
        ),
    )
}

/// Runs a create whose response is stored after its commit: applies it under its claim,
/// or replays the stored response (`reread` gives the response when the server stopped
/// between the commit and storing it).
pub(crate) async fn create<T, A, R>(
    pool: &PgPool,
    method: &str,
    request_id: &str,
    request: &[u8],
    apply: impl FnOnce() -> A,
    reread: impl FnOnce() -> R,
) -> Result<T, Status>
where
    T: prost::Message + Default,
    A: Future<Output = Result<T, Error>>,
    R: Future<Output = Result<T, Error>>,
{
    let id = parse_request_id("request_id", request_id)?;
    let fp = fingerprint(method, &[request]);
    let replay = |stored: Option<Vec<u8>>| async move {
        match stored {
            Some(bytes) => T::decode(bytes.as_slice())
                .map_err(|e| Error::internal(anyhow::anyhow!("stored response: {e}"))),
            None => reread().await,
        }
    };
    match plan(pool, "request_id", method, id, fp.clone()).await? {
        Plan::Plain => Ok(apply().await?),
        Plan::Replay(stored) => Ok(replay(stored).await?),
        Plan::Apply(claim) => {
            let request_id = claim.request_id;
            match crate::store::call::with_claim(claim, apply()).await {
                Ok(response) => {
                    if let Err(e) =
                        idempotency::save_response(pool, request_id, &response.encode_to_vec())
                            .await
                    {
                        // The claim is committed; a retry re-reads the resource.
                        tracing::warn!(error = %e, %request_id, "could not store the response of a request id");
                    }
                    Ok(response)
                }
                // A concurrent call with the same request id committed first.
                Err(Error::RequestReplayed) => {
                    match plan(pool, "request_id", method, id, fp).await? {
                        Plan::Replay(stored) => Ok(replay(stored).await?),
                        _ => Err(Error::RequestReplayed.into()),
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
