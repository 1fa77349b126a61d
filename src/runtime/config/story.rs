//! One configuration story for every command that talks to an instance
//! (`run`, `schema pull|diff`, `e2e --target live`, `outbox`): which
//! `l3map.toml` is read, which `L3MAP_*` variables override it, which
//! webhook secret wins, and every missing credential reported at once.
//!
//! Precedence, highest first: a command-line flag, an `L3MAP_*` variable,
//! the file, the default.

use super::error::{all_at_once, ConfigError};
use super::model::{Config, LogFormat};
use super::secrets::{connection_secret_problems, SecretSource};
use crate::connectors::Secret;
use crate::ir::Program;
use crate::model::Kind;
use std::path::{Path, PathBuf};

/// The file found in the working directory when no other is named.
pub const CONFIG_FILE: &str = "l3map.toml";

/// Names the configuration file instead of `./l3map.toml`.
pub const CONFIG_VAR: &str = "L3MAP_CONFIG";

/// The webhook signing secret itself: wins over `[webhook]` in the file
/// and over the mapping's `webhook_secret` (and is the variable
/// `l3map emulate --webhook-url` signs with by default).
pub const WEBHOOK_SECRET_VAR: &str = "L3MAP_WEBHOOK_SECRET";

/// `L3MAP_*` overrides of single keys of the file, and the key each sets.
pub const OVERRIDES: [(&str, &str); 5] = [
    ("L3MAP_MAPPINGS", "mappings"),
    ("L3MAP_STATE", "state"),
    ("L3MAP_LISTEN", "server.listen"),
    ("L3MAP_LOG_FORMAT", "log.format"),
    ("L3MAP_LOG_LEVEL", "log.level"),
];

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The configuration file to read: `flag` (`--config`), else
/// `$L3MAP_CONFIG`, else `./l3map.toml` when there is one; `None` when
/// there is none of them.
pub fn locate(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(f) = flag {
        return Some(f.to_path_buf());
    }
    if let Some(v) = var(CONFIG_VAR) {
        return Some(PathBuf::from(v));
    }
    let here = Path::new(CONFIG_FILE);
    here.is_file().then(|| here.to_path_buf())
}

/// [`locate`] and [`Config::load`], with the `L3MAP_*` overrides applied.
pub fn discover(flag: Option<&Path>) -> Result<Option<Config>, ConfigError> {
    match locate(flag) {
        None => Ok(None),
        Some(path) => {
            let mut cfg = Config::load(&path)?;
            cfg.apply_env()?;
            Ok(Some(cfg))
        }
    }
}

/// The state store `outbox` opens: `flag` (`--state`), else
/// `$L3MAP_STATE`, else the configuration's `state` (found as [`discover`]
/// finds it), else `.l3map/state.db`: the store `run` uses from here.
pub fn state_path(flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(f) = flag {
        return Ok(f.to_path_buf());
    }
    if let Some(v) = var("L3MAP_STATE") {
        return Ok(PathBuf::from(v));
    }
    Ok(match discover(None)? {
        Some(cfg) => cfg.state,
        None => PathBuf::from(".l3map/state.db"),
    })
}

impl Config {
    /// Applies the `L3MAP_*` overrides ([`OVERRIDES`]) set in the
    /// environment. A value is checked as the file's would be; an error
    /// names the variable. Relative paths are taken from the working
    /// directory, as a path on the command line is.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        self.apply_vars(var)
    }

    pub(super) fn apply_vars(
        &mut self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let bad = |var: &str, message: String| ConfigError::Env {
            var: var.to_string(),
            message,
        };
        for (name, key) in OVERRIDES {
            let Some(value) = get(name) else { continue };
            let value = value.trim().to_string();
            match key {
                "mappings" => self.mappings = PathBuf::from(value),
                // Two stores would each decide and send on their own: a
                // replica on another store leaves the fleet silently.
                "state" if self.store.is_some() => {
                    return Err(bad(
                        name,
                        "names a SQLite store, but l3map.toml has [store] (PostgreSQL, shared by the fleet); unset it, or remove [store]".into(),
                    ))
                }
                "state" => self.state = PathBuf::from(value),
                "server.listen" => {
                    self.server.listen = value.parse().map_err(|_| {
                        bad(name, format!("\"{value}\" is not a socket address; write an IP address and a port, e.g. 127.0.0.1:8780"))
                    })?
                }
                "log.format" => {
                    self.log.format = match value.to_ascii_lowercase().as_str() {
                        "human" => LogFormat::Human,
                        "json" => LogFormat::Json,
                        _ => return Err(bad(name, format!("\"{value}\" is not a log format; use human or json"))),
                    }
                }
                _ => {
                    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
                    let ok = if value.contains(['=', ',', '[']) {
                        tracing_subscriber::EnvFilter::try_new(&value).is_ok()
                    } else {
                        LEVELS.iter().any(|l| l.eq_ignore_ascii_case(&value))
                    };
                    if !ok {
                        return Err(bad(name, format!("\"{value}\" is not a level; use trace, debug, info, warn, error or off, or a filter such as info,l3map=debug")));
                    }
                    self.log.level = value;
                }
            }
        }
        Ok(())
    }
}

/// Where the webhook signing secret comes from, and how to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    pub source: SecretSource,
    /// `L3MAP_WEBHOOK_SECRET`, `webhook.secret_env in l3map.toml`, or
    /// `connection desk webhook_secret`.
    pub from: String,
    /// The other places that name one and lose (logged at start, so
    /// nobody wonders why a rotated secret is not used).
    pub overridden: Vec<String>,
}

/// The webhook signing secret `run` verifies with. Webhooks are on when
/// l3map.toml has a `[webhook]` section or a Zendesk connection declares
/// `webhook_secret`; then the secret is, highest first:
/// `$L3MAP_WEBHOOK_SECRET`; `[webhook] secret_env`/`secret_file` in
/// l3map.toml (the deployment's file wins over the mapping); the first
/// Zendesk connection's `webhook_secret` in the mappings (by name). `None`:
/// webhooks are not accepted.
pub fn webhook_secret(cfg: &Config, program: &Program) -> Option<WebhookSecret> {
    webhook_secret_with(cfg, program, var(WEBHOOK_SECRET_VAR).is_some())
}

fn webhook_secret_with(cfg: &Config, program: &Program, env_set: bool) -> Option<WebhookSecret> {
    let mut places: Vec<(SecretSource, String)> = Vec::new();
    if env_set {
        places.push((
            SecretSource::Env(WEBHOOK_SECRET_VAR.into()),
            format!("${WEBHOOK_SECRET_VAR}"),
        ));
    }
    if let Some(w) = &cfg.webhook {
        let key = w.secret.key("secret");
        places.push((w.secret.clone(), format!("`webhook.{key}` in l3map.toml")));
    }
    let mut zendesk: Vec<&crate::ir::Connection> = program
        .connections
        .iter()
        .filter(|c| c.kind == Kind::Zendesk)
        .collect();
    zendesk.sort_by(|a, b| a.name.cmp(&b.name));
    for c in zendesk {
        if let Some(r) = c.secrets.iter().find(|r| r.key == "webhook_secret") {
            let source = match r.source {
                crate::model::SecretSource::File => SecretSource::File(PathBuf::from(&r.name)),
                crate::model::SecretSource::Env => SecretSource::Env(r.name.clone()),
            };
            places.push((source, format!("connection `{}` `webhook_secret`", c.name)));
            break;
        }
    }
    // The variable supplies the value, never the switch: webhooks are on
    // only where the file or the mappings turn them on, so a variable left
    // in a shell (it is also what `l3map emulate` signs with) does not open
    // an endpoint a polling-only deployment does not want.
    if places.len() == usize::from(env_set) {
        return None;
    }
    let mut places = places.into_iter();
    let (source, from) = places.next()?;
    // A place that names the same variable or file as the winner loses
    // nothing: `[webhook] secret_env = "L3MAP_WEBHOOK_SECRET"` is common.
    Some(WebhookSecret {
        overridden: places
            .filter(|(s, _)| *s != source)
            .map(|(_, f)| f)
            .collect(),
        source,
        from,
    })
}

/// Every credential `run` needs (the webhook secret that wins, each
/// agent's token, each connection's references), read now. All that are
/// missing or unreadable are reported in one error
/// ([`ConfigError::Credentials`] when there are several), so one run finds
/// them all.
pub fn check_credentials(
    cfg: &Config,
    program: &Program,
) -> Result<Option<(Secret, WebhookSecret)>, ConfigError> {
    let mut problems = Vec::new();
    let webhook = webhook_secret(cfg, program);
    let mut secret = None;
    if let Some(w) = &webhook {
        match w.source.resolve_for(&w.from) {
            Ok(s) => secret = Some(s),
            Err(e) => problems.push(e),
        }
    }
    for (name, agent) in &cfg.agents {
        let owner = format!("`agents.{name}.{}`", agent.token.key("token"));
        if let Err(e) = agent.token.resolve_for(&owner) {
            problems.push(e);
        }
    }
    for (name, ops) in &cfg.ops {
        let owner = format!("`ops.{name}.{}`", ops.token.key("token"));
        if let Err(e) = ops.token.resolve_for(&owner) {
            problems.push(e);
        }
    }
    for c in &program.connections {
        problems.extend(connection_secret_problems(c));
    }
    all_at_once(problems)?;
    Ok(secret.zip(webhook))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::program_of as program;

    const DESK: &str = "connection desk: zendesk {\n  subdomain \"acme\"\n  token env(\"ZD\")\n  scopes read\n  webhook_secret env(\"FROM_MAPPING\")\n}\n";

    #[test]
    fn the_environment_wins_then_the_file_then_the_mapping() {
        let p = program(DESK);
        let with_file = Config::parse(
            "mappings = \"m\"\n[webhook]\nsecret_env = \"FROM_FILE\"\n",
            Path::new("."),
        )
        .unwrap();
        let plain = Config::parse("mappings = \"m\"\n", Path::new(".")).unwrap();

        let w = webhook_secret_with(&with_file, &p, true).unwrap();
        assert_eq!(w.source, SecretSource::Env(WEBHOOK_SECRET_VAR.into()));
        assert_eq!(w.overridden.len(), 2, "{w:?}");

        let w = webhook_secret_with(&with_file, &p, false).unwrap();
        assert_eq!(w.source, SecretSource::Env("FROM_FILE".into()));
        assert_eq!(w.overridden, vec!["connection `desk` `webhook_secret`"]);

        let w = webhook_secret_with(&plain, &p, false).unwrap();
        assert_eq!(w.source, SecretSource::Env("FROM_MAPPING".into()));
        assert!(w.overridden.is_empty());

        let bare = program("connection desk: zendesk {\n  subdomain \"acme\"\n  token env(\"ZD\")\n  scopes read\n}\n");
        assert_eq!(webhook_secret_with(&plain, &bare, false), None);
        // The variable alone does not turn webhooks on.
        assert_eq!(webhook_secret_with(&plain, &bare, true), None);
        let w = webhook_secret_with(&plain, &p, true).unwrap();
        assert_eq!(w.source, SecretSource::Env(WEBHOOK_SECRET_VAR.into()));

        // The file naming the same variable as the winner overrides nothing.
        let same = Config::parse(
            "mappings = \"m\"\n[webhook]\nsecret_env = \"L3MAP_WEBHOOK_SECRET\"\n",
            Path::new("."),
        )
        .unwrap();
        let w = webhook_secret_with(&same, &p, true).unwrap();
        assert_eq!(w.overridden, vec!["connection `desk` `webhook_secret`"]);
    }

    /// The red team: a mapping's `webhook_secret` that `[webhook]` or
    /// `$L3MAP_WEBHOOK_SECRET` overrides was still required (and, when
    /// missing, listed twice).
    #[test]
    fn a_webhook_secret_is_no_connection_credential() {
        let p = program(DESK);
        let problems = connection_secret_problems(&p.connections[0]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].to_string().contains("`ZD`"), "{problems:?}");
    }

    #[test]
    fn overrides_set_keys_and_name_the_variable_when_wrong() {
        let mut c = Config::parse("mappings = \"m\"\n", Path::new("/srv")).unwrap();
        let vars = [
            ("L3MAP_MAPPINGS", "other"),
            ("L3MAP_STATE", "/var/lib/l3map.db"),
            ("L3MAP_LISTEN", "127.0.0.1:9999"),
            ("L3MAP_LOG_FORMAT", "JSON"),
            ("L3MAP_LOG_LEVEL", "debug"),
        ];
        c.apply_vars(|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        assert_eq!(c.mappings, PathBuf::from("other"));
        assert_eq!(c.state, PathBuf::from("/var/lib/l3map.db"));
        assert_eq!(c.server.listen, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "debug");

        let e = c
            .apply_vars(|n| (n == "L3MAP_LISTEN").then(|| "localhost:1".to_string()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable `L3MAP_LISTEN`: "),
            "{e}"
        );
        let e = c
            .apply_vars(|n| (n == "L3MAP_LOG_FORMAT").then(|| "xml".to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("human or json"), "{e}");
    }
}
