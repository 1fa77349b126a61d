//! From the file's shape ([`RawConfig`]) to a checked [`Config`]: one
//! function per section of l3map.toml, each filling in the defaults for
//! what the section leaves out. A new key goes into `raw.rs` (its shape)
//! and into its section's function here (its check and default).

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use super::doc::Doc;
use super::error::ConfigError;
use super::model::{
    Config, ConnectionOverride, Credentials, Log, Outbox, Poll, Server, StoreConfig, Webhook,
};
use super::raw::{
    RawConfig, RawConnection, RawCredentials, RawLog, RawOutbox, RawPoll, RawRetention, RawServer,
    RawStore, RawWebhook,
};
use super::values::MAX_SECS;
use crate::runtime::store::Retention;

impl Doc<'_> {
    /// Sections are checked in the order of the file's documentation, so
    /// the first error reported does not depend on anything else.
    pub(super) fn build(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        Ok(Config {
            mappings: self.mappings(raw.mappings.as_ref())?,
            state: match &raw.state {
                Some(s) => self.path_value("state", s)?,
                None => self.resolve_path(".l3map/state.db"),
            },
            store: raw
                .store
                .map(|s| self.store(s, raw.state.as_ref()))
                .transpose()?,
            server: self.server(raw.server)?,
            webhook: raw.webhook.map(|w| self.webhook(w)).transpose()?,
            agents: self.agents(raw.agents)?,
            ops: self.ops(raw.ops)?,
            poll: self.poll(raw.poll)?,
            cdc: self.cdc(raw.cdc)?,
            connections: self.connections(raw.connections)?,
            credentials: raw
                .credentials
                .map(|c| self.credentials(c))
                .transpose()?
                .unwrap_or_default(),
            outbox: self.outbox(raw.outbox)?,
            retention: self.retention(raw.retention)?,
            log: self.log(raw.log)?,
        })
    }

    fn mappings(&self, m: Option<&Spanned<String>>) -> Result<std::path::PathBuf, ConfigError> {
        match m {
            Some(m) => self.path_value("mappings", m),
            None => Err(self.invalid(
                0..0,
                "`mappings` is missing; name the directory of .l3map files, e.g. mappings = \"mappings/fintech\"",
            )),
        }
    }

    /// `[store]`: a PostgreSQL URL without a password (the password by
    /// reference, like every secret here), instead of `state`.
    fn store(
        &self,
        raw: Spanned<RawStore>,
        state: Option<&Spanned<String>>,
    ) -> Result<StoreConfig, ConfigError> {
        let span = raw.span();
        let r = raw.into_inner();
        if let Some(state) = state {
            return Err(self.invalid(
                state.span(),
                "`state` (the SQLite store) and `[store]` (PostgreSQL) are both set; keep the one this runtime uses",
            ));
        }
        let Some(url) = r.url else {
            return Err(self.invalid(
                span,
                "`[store]` needs its `url`, e.g. url = \"postgres://l3map@db.internal:5432/l3map\"",
            ));
        };
        let parsed: tokio_postgres::Config = url.get_ref().parse().map_err(|_| {
            self.invalid(
                url.span(),
                "`store.url` is not a PostgreSQL connection string; write postgres://USER@HOST:PORT/DATABASE",
            )
        })?;
        // Never repeated: the message names the key, not the value. A user
        // name with a `:` is a password percent-encoded into it, and a
        // `#` fragment is no part of a PostgreSQL URL: both would end up
        // in messages and the server's log.
        let smuggled =
            parsed.get_user().is_some_and(|u| u.contains(':')) || url.get_ref().contains('#');
        if parsed.get_password().is_some() || smuggled {
            return Err(self.invalid(
                url.span(),
                "`store.url` holds a password; take it out of the URL and name where it is read from with password_env = \"VAR\" or password_file = \"/path\"",
            ));
        }
        let password = match (&r.password_env, &r.password_file) {
            (None, None) => None,
            (env, file) => {
                Some(self.secret_source("store", "password", span, env.as_ref(), file.as_ref())?)
            }
        };
        Ok(StoreConfig {
            url: url.into_inner(),
            password,
            pool: match &r.pool_size {
                Some(v) => self.ranged("store.pool_size", v, 1, 200)? as usize,
                None => 8,
            },
            lease: Duration::from_secs(match &r.lease_secs {
                Some(v) => self.ranged("store.lease_secs", v, 2, 600)?,
                None => 15,
            }),
        })
    }

    fn server(&self, raw: Option<RawServer>) -> Result<Server, ConfigError> {
        let mut server = Server::default();
        let Some(raw) = raw else { return Ok(server) };
        let limits = &mut server.limits;
        if let Some(v) = &raw.max_connections {
            limits.max_connections = self.ranged("server.max_connections", v, 1, 65_536)? as usize;
        }
        if let Some(v) = &raw.header_timeout_secs {
            limits.header_timeout =
                Duration::from_secs(self.ranged("server.header_timeout_secs", v, 1, 300)?);
        }
        if let Some(v) = &raw.body_timeout_secs {
            limits.body_timeout =
                Duration::from_secs(self.ranged("server.body_timeout_secs", v, 1, 600)?);
        }
        if let Some(v) = &raw.body_buffer_mib {
            limits.body_buffer_bytes =
                self.ranged("server.body_buffer_mib", v, 1, 4096)? as usize * 1024 * 1024;
        }
        if let Some(listen) = raw.listen {
            server.listen = listen.get_ref().trim().parse().map_err(|_| {
                self.invalid(
                    listen.span(),
                    format!(
                        "`server.listen` = \"{}\" is not a socket address; write an IP address and a port, e.g. \"127.0.0.1:8780\"",
                        listen.get_ref()
                    ),
                )
            })?;
        }
        Ok(server)
    }

    fn webhook(&self, raw: Spanned<RawWebhook>) -> Result<Webhook, ConfigError> {
        let span = raw.span();
        let w = raw.into_inner();
        let secret = self.secret_source(
            "webhook",
            "secret",
            span,
            w.secret_env.as_ref(),
            w.secret_file.as_ref(),
        )?;
        let tolerance = match &w.tolerance_secs {
            None => Duration::from_secs(300),
            Some(t) => {
                Duration::from_secs(self.ranged("webhook.tolerance_secs", t, 1, MAX_SECS)?)
            }
        };
        Ok(Webhook { secret, tolerance })
    }

    fn poll(&self, raw: Option<RawPoll>) -> Result<Poll, ConfigError> {
        let mut poll = Poll::default();
        if let Some(p) = raw {
            if let Some(v) = &p.zendesk_interval_secs {
                poll.zendesk_interval = self.interval("poll.zendesk_interval_secs", v)?;
            }
            if let Some(v) = &p.salesforce_interval_secs {
                poll.salesforce_interval = self.interval("poll.salesforce_interval_secs", v)?;
            }
        }
        Ok(poll)
    }

    fn connections(
        &self,
        raw: BTreeMap<String, RawConnection>,
    ) -> Result<BTreeMap<String, ConnectionOverride>, ConfigError> {
        raw.into_iter()
            .map(|(name, c)| Ok((name.clone(), self.connection(&name, &c)?)))
            .collect()
    }

    fn connection(&self, name: &str, c: &RawConnection) -> Result<ConnectionOverride, ConfigError> {
        let key = |k: &str| format!("connections.{name}.{k}");
        let count = |k: &str, v: &Spanned<i64>| {
            self.ranged(&key(k), v, 1, u32::MAX.into())
                .map(|v| v as u32)
        };
        Ok(ConnectionOverride {
            base_url: c
                .base_url
                .as_ref()
                .map(|u| self.url(&key("base_url"), u))
                .transpose()?,
            login_url: c
                .login_url
                .as_ref()
                .map(|u| self.url(&key("login_url"), u))
                .transpose()?,
            rpm: c.rpm.as_ref().map(|v| count("rpm", v)).transpose()?,
            max_concurrent: c
                .max_concurrent
                .as_ref()
                .map(|v| count("max_concurrent", v))
                .transpose()?,
            timeout: c
                .timeout_secs
                .as_ref()
                .map(|v| self.ranged(&key("timeout_secs"), v, 1, 600))
                .transpose()?
                .map(Duration::from_secs),
        })
    }

    fn credentials(&self, raw: Spanned<RawCredentials>) -> Result<Credentials, ConfigError> {
        let span = raw.span();
        let c = raw.into_inner();
        let mut out = Credentials::default();
        if c.key_env.is_some() || c.key_file.is_some() {
            out.key = self.secret_source(
                "credentials",
                "key",
                span,
                c.key_env.as_ref(),
                c.key_file.as_ref(),
            )?;
        }
        if let Some(v) = &c.refresh_margin_secs {
            out.refresh_margin =
                Duration::from_secs(self.ranged("credentials.refresh_margin_secs", v, 1, 3600)?);
        }
        Ok(out)
    }

    fn outbox(&self, raw: Option<RawOutbox>) -> Result<Outbox, ConfigError> {
        let mut outbox = Outbox::default();
        let Some(o) = raw else { return Ok(outbox) };
        if let Some(v) = &o.max_attempts {
            outbox.max_attempts = self.ranged("outbox.max_attempts", v, 1, u32::MAX.into())? as u32;
        }
        if let Some(v) = &o.workers_per_connection {
            // More workers than a connection's concurrency limit only
            // queue on the limiter; 1024 is far past any real limit.
            outbox.workers_per_connection =
                self.ranged("outbox.workers_per_connection", v, 1, 1024)? as usize;
        }
        if let Some(v) = &o.outage_window_secs {
            // Up to a year: a window is how long nobody needs to look.
            outbox.outage_window = Duration::from_secs(self.ranged(
                "outbox.outage_window_secs",
                v,
                1,
                366 * 86_400,
            )?);
        }
        if let Some(v) = &o.retry_min_ms {
            outbox.retry_min =
                Duration::from_millis(self.ranged("outbox.retry_min_ms", v, 10, 3_600_000)?);
        }
        if let Some(v) = &o.retry_max_secs {
            outbox.retry_max =
                Duration::from_secs(self.ranged("outbox.retry_max_secs", v, 1, MAX_SECS)?);
        }
        if outbox.retry_max < outbox.retry_min {
            let span = o
                .retry_max_secs
                .as_ref()
                .or(o.retry_min_ms.as_ref())
                .map(|v| v.span())
                .unwrap_or(0..0);
            return Err(self.invalid(
                span,
                format!(
                    "`outbox.retry_max_secs` ({} s) is below `outbox.retry_min_ms` ({} ms); raise the cap or lower the minimum",
                    outbox.retry_max.as_secs(),
                    outbox.retry_min.as_millis()
                ),
            ));
        }
        Ok(outbox)
    }

    fn retention(&self, raw: Option<RawRetention>) -> Result<Retention, ConfigError> {
        let mut retention = Retention::default();
        let Some(r) = raw else { return Ok(retention) };
        // 0 keeps rows for good.
        let days = |key: &str, v: &Spanned<i64>| -> Result<Option<Duration>, ConfigError> {
            let n = self.ranged(key, v, 0, 36_500)?;
            Ok((n > 0).then(|| Duration::from_secs(n * 86_400)))
        };
        if let Some(v) = &r.events_days {
            retention.events = days("retention.events_days", v)?;
        }
        if let Some(v) = &r.done_actions_days {
            retention.done_actions = days("retention.done_actions_days", v)?;
        }
        Ok(retention)
    }

    fn log(&self, raw: Option<RawLog>) -> Result<Log, ConfigError> {
        let mut log = Log::default();
        if let Some(l) = raw {
            if let Some(format) = l.format {
                log.format = format;
            }
            if let Some(level) = &l.level {
                log.level = self.log_level(level)?;
            }
        }
        Ok(log)
    }
}
