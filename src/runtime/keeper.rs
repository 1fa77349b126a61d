//! A connection's grant in the sealed store, as the connectors' sessions
//! keep it ([`Keeper`]): the bridge between `runtime::seal` (rows, keys,
//! wall-clock expiries) and `connectors::transport::session` (tokens,
//! lifetimes on the monotonic clock).

use crate::connectors::error::{ApiError, System};
use crate::connectors::transport::session::{Begin, Keeper, Kept, Standby};
use crate::connectors::Secret;
use crate::runtime::metrics::Metrics;
use crate::runtime::seal::{Grant, SealError, Vault};
use crate::runtime::store::{now_ms, CredentialState, RefreshLease};
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
    /// `l3map_credential_refresh_total` is counted here (`l3map run`).
    pub metrics: Option<Metrics>,
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
        // Refused before (by this process or one before a restart): not
        // sent again; the connection waits for a new generation (`l3map
        // auth login`), as an outage.
        if l.state == CredentialState::NeedsLogin {
            return Err(ApiError::GrantRevoked {
                system: self.system,
                message: format!(
                    "invalid_grant: waiting for `l3map auth login --connection {}`",
                    self.connection
                ),
            });
        }
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

    fn begin(
        &self,
        generation: i64,
        mine: Option<i64>,
        lease: Duration,
    ) -> Result<Begin, ApiError> {
        Ok(
            match self
                .vault
                .begin_refresh(&self.connection, generation, mine, lease)
                .map_err(|e| self.fail(e))?
            {
                RefreshLease::Taken(stamp) => Begin::Go(stamp),
                RefreshLease::MovedOn => Begin::MovedOn,
                RefreshLease::Held => Begin::Held,
            },
        )
    }

    fn commit(&self, expected: Option<i64>, grant: &Kept) -> Result<bool, ApiError> {
        self.commit_standby(expected, grant, None)
    }

    fn standby(&self) -> Result<Standby, ApiError> {
        let Some(l) = self
            .vault
            .load(&self.connection)
            .map_err(|e| self.fail(e))?
        else {
            return Ok(Standby::default());
        };
        Ok(Standby {
            refresh: l.standby,
            unanswered: l.refreshing_since_ms.is_some(),
        })
    }

    fn connection(&self) -> &str {
        &self.connection
    }

    fn counted(&self, result: &'static str) {
        if let Some(m) = &self.metrics {
            m.credential_refresh(&self.connection, result);
        }
    }

    fn commit_standby(
        &self,
        expected: Option<i64>,
        grant: &Kept,
        standby: Option<&Secret>,
    ) -> Result<bool, ApiError> {
        let now = now_ms();
        let won = self
            .vault
            .commit_standby(
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
                standby,
            )
            .map_err(|e| self.fail(e))?;
        if won && expected.is_none() && grant.refresh.is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::transport::session::{Grant, Session};
    use crate::connectors::Secret;
    use crate::runtime::seal::SealKey;
    use crate::runtime::store::Store;
    use std::sync::{Arc, Mutex};

    /// A vendor with single-use refresh tokens: `r{n}` is good once; a
    /// standby `sb{n}` likewise. With `lose` set, the next refresh is
    /// applied and its answer lost (an error comes back instead).
    #[derive(Default)]
    struct Rotating {
        issued: Mutex<u64>,
        used: Mutex<Vec<String>>,
        minted: Mutex<u64>,
        lose: Mutex<bool>,
        refusals: Mutex<u64>,
        /// Each token request takes this long (ms): refreshes overlap.
        slow: std::sync::atomic::AtomicU64,
    }

    impl Grant for Rotating {
        type Token = (String, String);
        async fn grant(
            &self,
            _: &reqwest::Client,
            previous: Option<&(String, String)>,
        ) -> Result<(String, String), ApiError> {
            let slow = self.slow.load(std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(slow)).await;
            let refresh = previous.map_or("r0".to_string(), |p| p.1.clone());
            let mut used = self.used.lock().unwrap();
            if used.contains(&refresh) {
                *self.refusals.lock().unwrap() += 1;
                return Err(ApiError::GrantRevoked {
                    system: System::Zendesk,
                    message: "invalid_grant: reused".into(),
                });
            }
            used.push(refresh);
            let mut n = self.issued.lock().unwrap();
            *n += 1;
            if std::mem::take(&mut *self.lose.lock().unwrap()) {
                return Err(ApiError::Transient {
                    system: System::Zendesk,
                    status: None,
                    message: "connection reset".into(),
                    sent: true,
                });
            }
            Ok((format!("a{n}"), format!("r{n}")))
        }
        async fn standby(
            &self,
            _: &reqwest::Client,
            _: &(String, String),
        ) -> Result<Option<Secret>, ApiError> {
            let mut n = self.minted.lock().unwrap();
            *n += 1;
            Ok(Some(Secret::new(format!("sb{n}"))))
        }
        fn renewed(&self, _: u64) {}
        fn keep(&self, t: &(String, String)) -> Option<Kept> {
            Some(Kept {
                access: Secret::new(&t.0),
                refresh: Some(Secret::new(&t.1)),
                expires_in: Some(Duration::from_secs(3600)),
                refresh_expires_in: None,
                instance_url: None,
            })
        }
        fn adopt(&self, k: Kept) -> Result<(String, String), ApiError> {
            Ok((
                k.access.expose().into(),
                k.refresh
                    .map(|r| r.expose().to_string())
                    .unwrap_or_default(),
            ))
        }
    }

    fn keeper(store: &Arc<Store>) -> Arc<dyn Keeper> {
        let key = SealKey::parse(&Secret::new("ab".repeat(32))).unwrap();
        Arc::new(StoreKeeper {
            vault: Vault::new(store.clone(), Arc::new(key)),
            connection: "desk".into(),
            flow: "zendesk_code".into(),
            system: System::Zendesk,
            metrics: None,
        })
    }

    #[tokio::test]
    async fn a_renewal_is_stored_before_use_and_another_process_adopts_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let vendor = Rotating::default();
        let http = reqwest::Client::new();
        // Two processes (two sessions) on one store.
        let a = Session::renewable_kept(
            Some(keeper(&store)),
            Duration::from_secs(120),
            Duration::from_secs(35),
        );
        let b = Session::renewable_kept(
            Some(keeper(&store)),
            Duration::from_secs(120),
            Duration::from_secs(35),
        );
        let vault = Vault::new(
            store.clone(),
            Arc::new(SealKey::parse(&Secret::new("ab".repeat(32))).unwrap()),
        );

        // A's first use redeems the seed (r0) and stores generation 1.
        let (t, g) = a.current(&vendor, &http).await.unwrap();
        assert_eq!(t.0, "a1");
        let stored = vault.load("desk").unwrap().unwrap();
        // (Generation 2: the first grant, then its standby.)
        assert_eq!((stored.generation, stored.grant.access.expose()), (2, "a1"));
        // B starts later and takes the stored grant: no request.
        assert_eq!(b.current(&vendor, &http).await.unwrap().0 .0, "a1");
        assert_eq!(*vendor.issued.lock().unwrap(), 1);

        // A's token is refused (a 401): A refreshes with r1; the new grant
        // is in the store when A gets it.
        let (t, _) = a.renew(g, &vendor, &http).await.unwrap();
        assert_eq!(t.0, "a2");
        let stored = vault.load("desk").unwrap().unwrap();
        assert_eq!((stored.generation, stored.grant.access.expose()), (3, "a2"));
        assert_eq!(stored.standby.as_ref().map(Secret::expose), Some("sb1"));

        // B's (older) token is refused too: B sees the store moved on and
        // adopts A's grant instead of reusing r1.
        let (_, gb) = b.current(&vendor, &http).await.unwrap();
        let (t, _) = b.renew(gb, &vendor, &http).await.unwrap();
        assert_eq!(t.0, "a2");
        assert_eq!(*vendor.issued.lock().unwrap(), 2);
        // No refresh token was ever sent twice.
        let used = vendor.used.lock().unwrap().clone();
        assert_eq!(used, ["r0", "r1"]);
    }

    #[tokio::test]
    async fn a_lost_answer_is_recovered_with_the_standby_and_a_revocation_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let vendor = Rotating::default();
        let http = reqwest::Client::new();
        let a = Session::renewable_kept(
            Some(keeper(&store)),
            Duration::from_secs(120),
            Duration::from_secs(35),
        );
        let vault = Vault::new(
            store.clone(),
            Arc::new(SealKey::parse(&Secret::new("ab".repeat(32))).unwrap()),
        );
        let (_, g) = a.current(&vendor, &http).await.unwrap();
        // The first grant, then its standby, are stored.
        let l = vault.load("desk").unwrap().unwrap();
        assert_eq!(l.standby.as_ref().map(Secret::expose), Some("sb1"));
        // The vendor applies the refresh of r1; its answer is lost.
        *vendor.lose.lock().unwrap() = true;
        assert!(a.renew(g, &vendor, &http).await.is_err());
        // Sent again, r1 is refused: the standby takes its place, stored
        // before use, and a new standby is minted.
        let (t, _) = a.renew(g, &vendor, &http).await.unwrap();
        assert_eq!(t, ("a3".to_string(), "r3".to_string()));
        let l = vault.load("desk").unwrap().unwrap();
        assert_eq!(l.grant.access.expose(), "a3");
        assert_eq!(l.standby.as_ref().map(Secret::expose), Some("sb2"));
        assert_eq!(
            *vendor.used.lock().unwrap(),
            ["r0", "r1", "sb1"],
            "r1 was refused once, never stored"
        );
        // A refusal with no unanswered refresh (a revocation) leaves the
        // standby alone: needs_login.
        vendor.used.lock().unwrap().push("r3".into());
        let (_, g) = a.current(&vendor, &http).await.unwrap();
        let e = a.renew(g, &vendor, &http).await.unwrap_err();
        assert!(matches!(e, ApiError::GrantRevoked { .. }), "{e}");
        assert_eq!(
            vendor.used.lock().unwrap().last().map(String::as_str),
            Some("r3")
        );
        assert_eq!(
            vault.state("desk").unwrap(),
            Some(CredentialState::NeedsLogin)
        );
    }

    /// Two processes whose tokens expire together: the second waits for
    /// the first one's refresh (the intent is a lease) and adopts it; the
    /// refresh token is sent once, and nothing is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_refreshing_at_once_send_the_refresh_token_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let vendor = Arc::new(Rotating::default());
        let http = reqwest::Client::new();
        let session = || {
            Arc::new(Session::renewable_kept(
                Some(keeper(&store)),
                Duration::from_secs(120),
                Duration::from_secs(35),
            ))
        };
        let (a, b) = (session(), session());
        let (_, ga) = a.current(&*vendor, &http).await.unwrap();
        let (_, gb) = b.current(&*vendor, &http).await.unwrap();
        vendor.slow.store(300, std::sync::atomic::Ordering::SeqCst);
        let renew = |s: Arc<Session<(String, String)>>, g| {
            let (vendor, http) = (vendor.clone(), http.clone());
            tokio::spawn(async move { s.renew(g, &*vendor, &http).await })
        };
        let (ra, rb) = (renew(a, ga), renew(b, gb));
        let (ta, tb) = (ra.await.unwrap().unwrap(), rb.await.unwrap().unwrap());
        assert_eq!(ta.0, tb.0, "both use the one new grant");
        assert_eq!(ta.0 .0, "a2");
        assert_eq!(*vendor.used.lock().unwrap(), ["r0", "r1"]);
        assert_eq!(
            *vendor.refusals.lock().unwrap(),
            0,
            "r1 was never sent twice"
        );
    }
}
