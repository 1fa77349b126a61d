//! What the Pub/Sub API needs from the REST client's session, and the
//! reads the CDC stream makes besides it: the access token, instance URL
//! and org id a gRPC call carries as metadata
//! (https://developer.salesforce.com/docs/platform/pub-sub-api/guide/supported-auth.html),
//! refreshed when the stream answers UNAUTHENTICATED; records read again by
//! Id (a `GAP_*` event says records changed, not how).

use super::super::error::ApiError;
use super::super::secret::Secret;
use super::policy::protocol;
use super::{Record, SalesforceClient};

/// One sign-in's credentials for the Pub/Sub API's `accesstoken`,
/// `instanceurl` and `tenantid` headers. `generation` names the sign-in,
/// so a refresh after UNAUTHENTICATED replaces this one and no newer.
#[derive(Clone)]
pub struct PubSubSession {
    pub access_token: Secret,
    pub instance_url: String,
    pub tenant_id: String,
    pub generation: u64,
}

impl std::fmt::Debug for PubSubSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubSession")
            .field("instance_url", &self.instance_url)
            .field("tenant_id", &self.tenant_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// SOQL `IN` lists are bounded by the statement's length (100,000
/// characters); 200 ids of 20 characters stay far below it.
const IDS_PER_QUERY: usize = 200;

impl SalesforceClient {
    /// The session's credentials for the Pub/Sub API, signing in first if
    /// the client has not yet.
    pub async fn pubsub_session(&self) -> Result<PubSubSession, ApiError> {
        let (token, generation) = self.inner.transport.token().await?;
        Self::pubsub(token, generation)
    }

    /// New credentials after the Pub/Sub API refused `stale` (its
    /// UNAUTHENTICATED): one sign-in however many streams ask at once.
    pub async fn renew_pubsub_session(
        &self,
        stale: &PubSubSession,
    ) -> Result<PubSubSession, ApiError> {
        let (token, generation) = self.inner.transport.renew_token(stale.generation).await?;
        Self::pubsub(token, generation)
    }

    fn pubsub(token: super::policy::Token, generation: u64) -> Result<PubSubSession, ApiError> {
        let tenant_id = token.org_id.clone().ok_or_else(|| {
            protocol("the sign-in answered without an identity URL, so the org id is unknown")
        })?;
        Ok(PubSubSession {
            access_token: token.access.clone(),
            instance_url: token.instance_url.clone(),
            tenant_id,
            generation,
        })
    }

    /// `fields` (and `Id`) of the `object` records with these ids, as they
    /// are now. Names must be plain SOQL names; an id that is not a
    /// Salesforce id is refused rather than quoted into the statement.
    pub async fn records_by_ids(
        &self,
        object: &str,
        fields: &[String],
        ids: &[String],
    ) -> Result<Vec<Record>, ApiError> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|seg| {
                    seg.starts_with(|c: char| c.is_ascii_alphabetic())
                        && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
        };
        if !plain(object) || object.contains('.') {
            return Err(protocol(format!("{object:?} is not an object name")));
        }
        if let Some(bad) = ids.iter().find(|id| super::id::canonical(id).is_none()) {
            return Err(protocol(format!("{bad:?} is not a record id")));
        }
        let mut select: Vec<&str> = vec!["Id"];
        for f in fields.iter().filter(|f| plain(f)) {
            if !select.contains(&f.as_str()) {
                select.push(f);
            }
        }
        let select = select.join(", ");
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list = chunk
                .iter()
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let soql = format!("SELECT {select} FROM {object} WHERE Id IN ({list})");
            out.extend(self.query(&soql).await?.records);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::org_of_identity;

    #[test]
    fn the_org_id_comes_from_the_identity_url() {
        assert_eq!(
            org_of_identity(
                "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS"
            )
            .as_deref(),
            Some("00Dxx0000001gPLEAY")
        );
        assert_eq!(org_of_identity("https://login.salesforce.com/"), None);
    }
}
