//! `l3map auth login|status`: sign a connection in (the authorization-code
//! grant with PKCE, `runtime::login`), and show what the store holds for
//! each connection from its plaintext columns (no key needed, no token
//! ever printed).

use super::{fail, DataFormat};
use crate::runtime::config::Config;
use crate::runtime::store::{now_ms, CredentialState, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum AuthAction {
    /// Sign a connection in (Zendesk `auth oauth_code`, Salesforce `flow
    /// web_server`): prints a URL to open in a browser, waits for the
    /// redirect on 127.0.0.1, and stores the grant, sealed, in the state
    /// store (replacing a refused or undecryptable one). A running `l3map
    /// run` picks it up without a restart.
    ///
    /// Exit status: 0 stored, 1 the sign-in was refused, timed out or did
    /// not match, 2 configuration or usage problems.
    Login {
        /// The connection of the mappings to sign in (`connection NAME: ...`).
        #[arg(long)]
        connection: String,
        /// l3map.toml (default: $L3MAP_CONFIG, else ./l3map.toml): the
        /// mappings, the state store and the credentials key `run` uses.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen on this port instead of the `redirect_uri`'s (0: any
        /// free port; the authorization server must accept the result).
        #[arg(long)]
        port: Option<u16>,
        /// Give up when no sign-in came back within this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout_secs: u64,
        /// Replace a working grant sealed with another key (a key being
        /// replaced): without it, such a login is refused, since a running
        /// `l3map run` with the other key could not open the new grant.
        #[arg(long)]
        replace_key: bool,
    },
    /// Per connection: flow, state (ok, needs_login, undecryptable, none),
    /// access and refresh expiry, last change and generation. Reads no key
    /// and prints no token.
    ///
    /// Exit status: 0 every grant ok, 1 one is missing, needs a login or
    /// does not open, 2 usage or I/O problems.
    Status {
        /// l3map.toml: its state store, and its mappings to list the
        /// connections with no grant yet (`none`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The state store (default: as `outbox list` finds it).
        #[arg(long)]
        state: Option<PathBuf>,
        /// `human` (a table) or `json` (an array of rows).
        #[arg(long, value_enum, default_value_t = DataFormat::Human)]
        format: DataFormat,
    },
}

pub fn run(action: AuthAction) -> u8 {
    match action {
        AuthAction::Login {
            connection,
            config,
            port,
            timeout_secs,
            replace_key,
        } => login(
            &connection,
            config.as_deref(),
            port,
            timeout_secs,
            replace_key,
        ),
        AuthAction::Status {
            config,
            state,
            format,
        } => status(config.as_deref(), state, format),
    }
}

fn config(path: Option<&Path>) -> Result<Config, String> {
    crate::runtime::config::discover(path)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            "no l3map.toml: `auth login` stores the grant in the state store, with the credentials key, of the configuration `l3map run` uses; pass --config".to_string()
        })
}

fn login(
    connection: &str,
    config_path: Option<&Path>,
    port: Option<u16>,
    secs: u64,
    replace_key: bool,
) -> u8 {
    let cfg = match config(config_path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let program = match crate::runtime::compile::compile(&cfg.mappings) {
        Ok(p) => p,
        Err(e) => {
            return fail(format!(
                "{} does not compile; fix it first:\n{e}",
                cfg.mappings.display()
            ))
        }
    };
    let Some(conn) = program.connections.iter().find(|c| c.name == connection) else {
        let names: Vec<&str> = program
            .connections
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return fail(format!(
            "the mappings declare no connection `{connection}` (they have: {})",
            names.join(", ")
        ));
    };
    let secrets = match crate::runtime::config::connection_secrets(conn) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let over = cfg.connections.get(connection).cloned().unwrap_or_default();
    let target = match crate::runtime::login::target(conn, &over, &secrets, port) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    // Before the browser: a grant the key cannot seal is refused now.
    let key = match cfg.credentials.key() {
        Ok(k) => std::sync::Arc::new(k),
        Err(e) => return fail(e),
    };
    let store = match cfg.open_store() {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => return fail(e),
    };
    // A working grant sealed with another key is the running service's:
    // replacing it under this key would leave that service unable to open
    // it (red team F11). A refused or undecryptable one is what a login
    // is for.
    if let Ok(Some(row)) = store.load_credential(connection) {
        if row.sealed.key_id != key.id()
            && row.state == crate::runtime::store::CredentialState::Ok
            && !replace_key
        {
            return fail(format!(
                "connection `{connection}` has a working grant sealed with another key (key id {}; the configured key's id is {}): a running `l3map run` with that key could not open a new one; use the [credentials] key `run` uses, or pass --replace-key when the key is being replaced",
                row.sealed.key_id,
                key.id()
            ));
        }
    }
    let vault = crate::runtime::seal::Vault::new(store.clone(), key);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let flow = target.flow;
    let obtained = runtime.block_on(async {
        let pending = crate::runtime::login::begin(target).await?;
        errln!("open this URL in a browser and sign in to connection `{connection}`:");
        outln!("{}", pending.url);
        super::output::flush();
        pending.finish(Duration::from_secs(secs)).await
    });
    let obtained = match obtained {
        Ok(o) => o,
        Err(e @ crate::runtime::login::LoginError::Setup(..))
        | Err(e @ crate::runtime::login::LoginError::Listen(..)) => return fail(e),
        Err(e) => {
            errln!("error: {e}");
            return 1;
        }
    };
    let generation =
        match crate::runtime::login::save(&store, &vault, connection, flow, &obtained.grant) {
            Ok(g) => g,
            Err(e) => return fail(e),
        };
    let expiry = obtained
        .expires_in
        .map(|d| format!("access token expires in {}", span(d.as_millis() as i64)))
        .unwrap_or_else(|| "access token lifetime not given; renewed when refused".into());
    outln!("stored a grant for connection {connection} ({expiry}; generation {generation})");
    0
}

/// `1h 5m`, `45s`: the largest two units.
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    let parts = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")];
    let mut out: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() {
        out.push("0s".into());
    }
    out.join(" ")
}

fn relative(at: Option<i64>, now: i64) -> String {
    match at {
        None => "-".into(),
        Some(at) if at >= now => format!("in {}", span(at - now)),
        Some(at) => format!("{} ago", span(now - at)),
    }
}

#[derive(serde::Serialize)]
struct Row {
    connection: String,
    flow: Option<String>,
    state: &'static str,
    generation: Option<i64>,
    access_expires_ms: Option<i64>,
    refresh_expires_ms: Option<i64>,
    updated_ms: Option<i64>,
    refreshing_since_ms: Option<i64>,
    last_error: Option<String>,
}

fn status(config_path: Option<&Path>, state: Option<PathBuf>, format: DataFormat) -> u8 {
    // No configuration is fine (then only the store's rows are shown); a
    // configuration that cannot be read is said, not ignored.
    let cfg = match crate::runtime::config::discover(config_path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // `--state` (a SQLite file) wins; then the configuration's store
    // (PostgreSQL, or its SQLite file); a store not created yet has no rows.
    let pg = cfg
        .as_ref()
        .filter(|c| state.is_none() && c.store.is_some());
    let state = match state.or_else(|| cfg.as_ref().map(|c| c.state.clone())) {
        Some(s) => s,
        None => match crate::runtime::config::state_path(None) {
            Ok(s) => s,
            Err(e) => return fail(e),
        },
    };
    let mut rows: Vec<Row> = Vec::new();
    if pg.is_some() || state.exists() {
        let opened = match pg {
            Some(c) => c.open_store(),
            None => Store::open(&state).map_err(|e| e.to_string()),
        };
        let store = match opened {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let stored = match store.credentials() {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        rows.extend(stored.into_iter().map(|c| Row {
            connection: c.sealed.connection,
            flow: Some(c.sealed.flow),
            state: c.state.as_str(),
            generation: Some(c.sealed.generation),
            access_expires_ms: c.sealed.access_expires_ms,
            refresh_expires_ms: c.sealed.refresh_expires_ms,
            updated_ms: Some(c.updated_ms),
            refreshing_since_ms: c.refreshing_since_ms,
            last_error: c.last_error,
        }));
    }
    // Connections that keep a grant but have none yet.
    if let Some(program) = cfg
        .as_ref()
        .and_then(|c| crate::runtime::compile::compile(&c.mappings).ok())
    {
        for c in &program.connections {
            let Some(flow) = crate::runtime::clients::grant_flow(c) else {
                continue;
            };
            if !rows.iter().any(|r| r.connection == c.name) {
                rows.push(Row {
                    connection: c.name.clone(),
                    flow: Some(flow.into()),
                    state: "none",
                    generation: None,
                    access_expires_ms: None,
                    refresh_expires_ms: None,
                    updated_ms: None,
                    refreshing_since_ms: None,
                    last_error: None,
                });
            }
        }
        rows.sort_by(|a, b| a.connection.cmp(&b.connection));
    }
    // A connection with no grant, a refused one or one the key cannot
    // open signs nothing in until someone logs in.
    let bad = rows.iter().any(|r| r.state != CredentialState::Ok.as_str());
    if format == DataFormat::Json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => outln!("{s}"),
            Err(e) => return fail(e),
        }
    } else if rows.is_empty() {
        outln!("no connection keeps an OAuth grant in {}", state.display());
    } else {
        let now = now_ms();
        outln!(
            "{:<16} {:<26} {:<14} {:>4}  {:<16} {:<16} {}",
            "CONNECTION",
            "FLOW",
            "STATE",
            "GEN",
            "ACCESS EXPIRES",
            "REFRESH EXPIRES",
            "LAST CHANGE"
        );
        for r in &rows {
            outln!(
                "{:<16} {:<26} {:<14} {:>4}  {:<16} {:<16} {}",
                r.connection,
                r.flow.as_deref().unwrap_or("-"),
                r.state,
                r.generation.map_or("-".into(), |g| g.to_string()),
                relative(r.access_expires_ms, now),
                relative(r.refresh_expires_ms, now),
                relative(r.updated_ms, now),
            );
        }
        for r in rows.iter().filter(|r| r.state != "ok") {
            let hint = match r.state {
                "none" => "no grant stored yet",
                "undecryptable" => "the configured key does not open it",
                _ => "the vendor refused the grant",
            };
            outln!(
                "{}: {hint}; run `l3map auth login --connection {}`",
                r.connection,
                r.connection
            );
        }
    }
    u8::from(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_show_the_two_largest_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(45_000), "45s");
        assert_eq!(span(1_800_000), "30m");
        assert_eq!(span(3_661_000), "1h 1m");
        assert_eq!(span(30 * 86_400_000 + 5_000), "30d");
        assert_eq!(relative(Some(1_000), 61_000), "1m ago");
        assert_eq!(relative(None, 0), "-");
    }
}
