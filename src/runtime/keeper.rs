//! A connection's grant in the sealed store, as the connectors' sessions
//! keep it ([`Keeper`]): the bridge between `runtime::seal` (rows, keys,
//! wall-clock expiries) and `connectors::transport::session` (tokens,
//! lifetimes on the monotonic clock).

use crate::connectors::error::{ApiError, System};
use crate::connectors::transport::session::{Keeper, Kept};
use crate::runtime::seal::{Grant, SealError, Vault};
use crate::runtime::store::{now_ms, CredentialState};
use std::time::Duration;

const LOG_TARGET: &str = "l3map::runtime::credentials";

/// One connection's slot in the store.
pub struct StoreKeeper {
    pub vault: Vault,
    pub connection: String,
    /// `zendesk_code`, `salesforce_refresh`, ...: bound into the sealed
    /// row's associated data.
    pub flow: String,
    pub system: System,
}

impl StoreKeeper {
    fn fail(&self, e: SealError) -> ApiError {
        match e {
            // Loud, and the connection waits (like a refused grant) for a
            // person: never a fallback to a configured token.
            SealError::Undecryptable { .. } => {
                tracing::error!(target: LOG_TARGET, connection = %self.connection, "{e}; check [credentials] key_env/key_file, or run `l3map auth login --connection {}`", self.connection);
                ApiError::GrantRevoked {
                    system: self.system,
                    message: "stored credentials are undecryptable".into(),
                }
            }
            other => ApiError::Transient {
                system: self.system,
                status: None,
                message: format!("credential store: {other}"),
                sent: false,
            },
        }
    }
}

fn left(expires_ms: Option<i64>, now: i64) -> Option<Duration> {
    expires_ms.map(|at| Duration::from_millis(at.saturating_sub(now).max(0) as u64))
}

fn at(ttl: Option<Duration>, now: i64) -> Option<i64> {
    ttl.map(|d| now.saturating_add(d.as_millis().min(i64::MAX as u128) as i64))
}

impl Keeper for StoreKeeper {
    fn load(&self) -> Result<Option<(i64, Kept)>, ApiError> {
        let Some(l) = self
            .vault
            .load(&self.connection)
            .map_err(|e| self.fail(e))?
        else {
            return Ok(None);
        };
        if l.flow != self.flow {
            tracing::warn!(target: LOG_TARGET, connection = %self.connection, stored = %l.flow, configured = %self.flow, "the stored grant is of another flow; it is used until its next refresh");
        }
        let now = now_ms();
        Ok(Some((
            l.generation,
            Kept {
                access: l.grant.access,
                refresh: l.grant.refresh,
                expires_in: left(l.grant.access_expires_ms, now),
                refresh_expires_in: left(l.grant.refresh_expires_ms, now),
                instance_url: l.grant.instance_url,
            },
        )))
    }

    fn begin(&self, generation: i64) -> Result<bool, ApiError> {
        self.vault
            .begin_refresh(&self.connection, generation)
            .map_err(|e| self.fail(e))
    }

    fn commit(&self, expected: Option<i64>, grant: &Kept) -> Result<bool, ApiError> {
        let now = now_ms();
        let won = self
            .vault
            .commit(
                &self.connection,
                &self.flow,
                expected,
                &Grant {
                    access: grant.access.clone(),
                    refresh: grant.refresh.clone(),
                    access_expires_ms: at(grant.expires_in, now),
                    refresh_expires_ms: at(grant.refresh_expires_in, now),
                    instance_url: grant.instance_url.clone(),
                },
            )
            .map_err(|e| self.fail(e))?;
        if won && expected.is_none() {
            tracing::info!(target: LOG_TARGET, connection = %self.connection, "stored the first grant (from the configured refresh_token); from now on the store's grant wins over the configured one");
        }
        Ok(won)
    }

    fn refused(&self, generation: i64, error: &ApiError) {
        // One ERROR per change of state, not per request.
        if let Ok(Some(CredentialState::NeedsLogin)) = self.vault.state(&self.connection) {
            return;
        }
        tracing::error!(target: LOG_TARGET, connection = %self.connection, error = %error, "the OAuth grant was refused; run `l3map auth login --connection {}`", self.connection);
        if let Err(e) = self.vault.mark(
            &self.connection,
            generation,
            CredentialState::NeedsLogin,
            Some("invalid_grant"),
        ) {
            tracing::warn!(target: LOG_TARGET, connection = %self.connection, "cannot record needs_login: {e}");
        }
    }
}
