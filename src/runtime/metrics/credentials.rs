//! OAuth grants' series (docs/RUNTIME.md, "Credentials"): refreshes by
//! result, counted by the sessions' keeper (`runtime::keeper`); whether a
//! connection waits for `l3map auth login`, and how long its access token
//! has left, set from the store's plaintext columns at each scrape. One
//! set per OAuth connection of the mappings. Registered with the rest in
//! `families.rs`; recorded here.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::{label, ConnectionLabels};
use super::Metrics;

/// How a refresh ended (`l3map_credential_refresh_total{result}`): `ok`
/// (stored before use), `transient` (no answer, a 5xx: the stored token is
/// tried again), `invalid_grant` (refused: the connection needs a login),
/// `recovered` (the stored refresh token was refused after an unanswered
/// refresh, and the standby grant took its place).
pub const CREDENTIAL_REFRESH_RESULTS: [&str; 4] = ["ok", "transient", "invalid_grant", "recovered"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub(super) struct RefreshLabels {
    pub(super) connection: String,
    pub(super) result: String,
}

#[derive(Debug, Default)]
pub(super) struct CredentialFamilies {
    refreshes: Family<RefreshLabels, Counter>,
    needs_login: Family<ConnectionLabels, Gauge>,
    expires: Family<ConnectionLabels, Gauge>,
}

impl CredentialFamilies {
    pub(super) fn register(registry: &mut Registry) -> CredentialFamilies {
        let f = CredentialFamilies::default();
        registry.register(
            "l3map_credential_refresh",
            "OAuth refreshes by connection and result: ok, transient (tried again with the same stored token), invalid_grant (refused: run `l3map auth login`), recovered (a lost answer replaced by the standby grant)",
            f.refreshes.clone(),
        );
        registry.register(
            "l3map_credential_needs_login",
            "1 while a connection's stored OAuth grant was refused or cannot be opened and waits for `l3map auth login --connection NAME`, else 0",
            f.needs_login.clone(),
        );
        registry.register(
            "l3map_credential_access_expires_seconds",
            "Seconds until a connection's stored access token expires by the wall clock (negative: expired; it is refreshed before use)",
            f.expires.clone(),
        );
        f
    }
}

impl Metrics {
    /// Creates an OAuth connection's series at 0 (`name` from the mappings).
    pub fn credential(&self, name: &str) {
        let f = &self.0.credentials;
        for r in CREDENTIAL_REFRESH_RESULTS {
            drop(f.refreshes.get_or_create(&RefreshLabels {
                connection: label(name),
                result: r.into(),
            }));
        }
        drop(f.needs_login.get_or_create(&ConnectionLabels {
            connection: label(name),
        }));
    }

    /// `l3map_credential_refresh_total{connection, result}`; `result` one
    /// of [`CREDENTIAL_REFRESH_RESULTS`].
    pub fn credential_refresh(&self, name: &str, result: &str) {
        self.credential(name);
        self.0
            .credentials
            .refreshes
            .get_or_create(&RefreshLabels {
                connection: label(name),
                result: label(result),
            })
            .inc();
    }

    /// The gauges of a stored grant, as the store says at a scrape.
    pub fn credential_state(&self, name: &str, needs_login: bool, expires_in_secs: Option<i64>) {
        let f = &self.0.credentials;
        let conn = ConnectionLabels {
            connection: label(name),
        };
        f.needs_login
            .get_or_create(&conn)
            .set(i64::from(needs_login));
        if let Some(s) = expires_in_secs {
            f.expires.get_or_create(&conn).set(s);
        }
    }
}
