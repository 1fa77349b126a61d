use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::literal::LITERAL_SECRET_KEYS;
use super::*;
use crate::ir::{Connection, Loc, SecretRef};
use crate::model::Kind;
use crate::runtime::listen::HttpLimits;

const FULL: &str = r#"
mappings = "mappings/fintech"
state = ".l3map/state.db"
[server]
listen = "127.0.0.1:8780"
[webhook]
secret_env = "ZENDESK_WEBHOOK_SECRET"   # or secret_file = "/run/secrets/zd_webhook"
tolerance_secs = 300
[agents.support-bot]
token_env = "L3MAP_AGENT_TOKEN"          # or token_file
[poll]
zendesk_interval_secs = 30
salesforce_interval_secs = 30
[connections.desk]
base_url = "https://acme-fintech.zendesk.com"
rpm = 700
[connections.crm]
login_url = "https://login.salesforce.com"
[outbox]
max_attempts = 8
workers_per_connection = 4
[log]
format = "json"
level = "info"
"#;

fn base() -> &'static Path {
    Path::new("/srv/l3map")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, base())
}

fn err(text: &str) -> (ConfigError, String) {
    let e = parse(text).expect_err("should be refused");
    let shown = e.to_string();
    assert!(!shown.contains('\n'), "one line: {shown}");
    (e, shown)
}

/// A path under the temp directory no other test (or test run) uses.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("l3map-config-{}-{name}", std::process::id()))
}

#[test]
fn default_for_has_every_default() {
    let c = Config::default_for(PathBuf::from("mappings/shop"));
    assert_eq!(c.mappings, PathBuf::from("mappings/shop"));
    assert_eq!(c.state, PathBuf::from(".l3map/state.db"));
    assert_eq!(c.server.listen, "127.0.0.1:8780".parse().unwrap());
    assert_eq!(c.webhook, None);
    assert!(c.agents.is_empty());
    assert_eq!(c.poll.zendesk_interval, Some(Duration::from_secs(30)));
    assert_eq!(c.poll.salesforce_interval, Some(Duration::from_secs(30)));
    assert!(c.connections.is_empty());
    assert_eq!(c.outbox.max_attempts, 8);
    assert_eq!(c.outbox.workers_per_connection, 4);
    assert_eq!(c.log.format, LogFormat::Human);
    assert_eq!(c.log.level, "info");
    assert!(c.check_secrets().is_ok());
}

#[test]
fn a_minimal_file_takes_the_same_defaults() {
    let c = parse("mappings = \"mappings/shop\"\n").unwrap();
    let mut expected = Config::default_for(base().join("mappings/shop"));
    expected.state = base().join(".l3map/state.db");
    assert_eq!(c, expected);
}

#[test]
fn the_full_example_parses() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.mappings, base().join("mappings/fintech"));
    assert_eq!(c.state, base().join(".l3map/state.db"));
    assert_eq!(c.server.listen, SocketAddr::from(([127, 0, 0, 1], 8780)));
    assert_eq!(
        c.webhook,
        Some(Webhook {
            secret: SecretSource::Env("ZENDESK_WEBHOOK_SECRET".into()),
            tolerance: Duration::from_secs(300),
        })
    );
    assert_eq!(
        c.agents["support-bot"].token,
        SecretSource::Env("L3MAP_AGENT_TOKEN".into())
    );
    assert_eq!(c.poll, Poll::default());
    assert_eq!(
        c.connections["desk"],
        ConnectionOverride {
            base_url: Some("https://acme-fintech.zendesk.com".into()),
            rpm: Some(700),
            ..ConnectionOverride::default()
        }
    );
    assert_eq!(
        c.connections["crm"],
        ConnectionOverride {
            login_url: Some("https://login.salesforce.com".into()),
            ..ConnectionOverride::default()
        }
    );
    assert_eq!(c.outbox, Outbox::default());
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "info");
}

#[test]
fn the_module_doc_example_parses() {
    let doc: String = include_str!("mod.rs")
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
        .collect();
    assert!(doc.contains("[connections.crm]"), "{doc}");
    let c = parse(&doc).unwrap();
    assert_eq!(c.connections["desk"].max_concurrent, Some(10));
    assert_eq!(c.connections["desk"].timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn relative_paths_follow_the_config_file() {
    let dir = temp_path("relative");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("l3map.toml");
    std::fs::write(
        &file,
        "mappings = \"mappings/fintech\"\nstate = \"/var/lib/l3map/state.db\"\n\
         [webhook]\nsecret_file = \"secrets/zd\"\n\
         [agents.bot]\ntoken_file = \"/run/secrets/agent\"\n",
    )
    .unwrap();
    let c = Config::load(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(c.mappings, dir.join("mappings/fintech"));
    assert_eq!(c.state, PathBuf::from("/var/lib/l3map/state.db"));
    assert_eq!(
        c.webhook.unwrap().secret,
        SecretSource::File(dir.join("secrets/zd"))
    );
    assert_eq!(
        c.agents["bot"].token,
        SecretSource::File(PathBuf::from("/run/secrets/agent"))
    );
    let c = parse("mappings = \"m\"\n").unwrap();
    assert_eq!(c.state, base().join(".l3map/state.db"));
}

#[test]
fn load_names_an_unreadable_file() {
    let missing = temp_path("missing.toml");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
}

#[test]
fn errors_name_the_loaded_file_with_line_and_column() {
    let dir = temp_path("named");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prod.toml");
    std::fs::write(&file, "mappings = \"m\"\n[server]\nlisten = \"nowhere\"\n").unwrap();
    let e = Config::load(&file).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:3:10: ", file.display())),
        "{shown}"
    );
}

#[test]
fn every_literal_secret_key_is_refused_without_its_value() {
    let value = "zd-oauth-0123456789abcdef";
    for key in LITERAL_SECRET_KEYS {
        let places = [
            (
                format!("mappings = \"m\"\n[webhook]\n{key} = \"{value}\"\n"),
                format!("webhook.{key}"),
                "use secret_env = \"VAR\" or secret_file = \"/path\"",
            ),
            (
                format!("mappings = \"m\"\n[agents.x]\n{key} = \"{value}\"\n"),
                format!("agents.x.{key}"),
                "use token_env = \"VAR\" or token_file = \"/path\"",
            ),
            (
                format!("mappings = \"m\"\n[connections.desk]\n{key} = \"{value}\"\n"),
                format!("connections.desk.{key}"),
                "declare it in the mapping's connection block",
            ),
            (
                format!("mappings = \"m\"\n{key} = \"{value}\"\n"),
                key.to_string(),
                "environment variable or a file",
            ),
        ];
        for (text, path, hint) in places {
            let (e, shown) = err(&text);
            match &e {
                ConfigError::LiteralSecret {
                    key: k,
                    hint: h,
                    line,
                    column,
                    ..
                } => {
                    assert_eq!(k, &path);
                    assert!(h.contains(hint), "{h}");
                    assert_eq!((*line, *column), (text.lines().count(), 1));
                }
                other => panic!("{path}: {other:?}"),
            }
            assert!(!shown.contains(value), "{shown}");
            assert!(!format!("{e:?}").contains(value), "{e:?}");
            assert!(shown.contains(&format!("`{path}`")), "{shown}");
        }
    }
}

#[test]
fn literal_secrets_are_refused_in_any_form() {
    let value = "hunter2-very-secret";
    for text in [
        format!("mappings = \"m\"\nwebhook.secret = \"{value}\"\n"),
        format!("mappings = \"m\"\nwebhook = {{ secret = \"{value}\" }}\n"),
        format!("mappings = \"m\"\n[webhook]\nSecret = \"{value}\"\n"),
        "mappings = \"m\"\n[webhook]\nsecret_env = \"X\"\nsecret = 12345\n".to_string(),
        format!("mappings = \"m\"\n[[agents.x.extra]]\ntoken = \"{value}\"\n"),
        // Refused before the unknown section is, so the value is never
        // echoed by a type error.
        format!("mappings = \"m\"\n[nonsense]\npassword = [\"{value}\"]\n"),
    ] {
        let (e, shown) = err(&text);
        assert!(
            matches!(e, ConfigError::LiteralSecret { .. }),
            "{text}: {e:?}"
        );
        assert!(!shown.contains(value), "{shown}");
        assert!(!shown.contains("12345"), "{shown}");
    }
}

#[test]
fn a_name_that_happens_to_be_secret_is_not_a_secret() {
    let c = parse("mappings = \"m\"\n[agents.token]\ntoken_env = \"AGENT_TOKEN\"\n").unwrap();
    assert_eq!(
        c.agents["token"].token,
        SecretSource::Env("AGENT_TOKEN".into())
    );
}

#[test]
fn exactly_one_of_env_and_file() {
    let (_, shown) = err("mappings = \"m\"\n[webhook]\nsecret_env = \"A\"\nsecret_file = \"/b\"\n");
    assert!(shown.contains(":4:15: "), "{shown}");
    assert!(
        shown.contains("both `secret_env` and `secret_file`"),
        "{shown}"
    );

    let (_, shown) = err("mappings = \"m\"\n[webhook]\ntolerance_secs = 60\n");
    assert!(shown.contains(":2:"), "{shown}");
    assert!(
        shown.contains("add secret_env = \"VAR\" or secret_file = \"/path\""),
        "{shown}"
    );

    let (_, shown) =
        err("mappings = \"m\"\n[agents.bot]\ntoken_env = \"A\"\ntoken_file = \"/b\"\n");
    assert!(shown.contains("`agents.bot` has both"), "{shown}");

    let (_, shown) = err("mappings = \"m\"\n[agents.bot]\n");
    assert!(shown.contains("`agents.bot` needs its token"), "{shown}");
}

#[test]
fn an_env_name_that_is_not_a_name_is_not_repeated() {
    let pasted = "sk-live-AbC/123+xyz=";
    let (_, shown) = err(&format!(
        "mappings = \"m\"\n[webhook]\nsecret_env = \"{pasted}\"\n"
    ));
    assert!(
        shown.contains("must name an environment variable"),
        "{shown}"
    );
    assert!(!shown.contains(pasted), "{shown}");
}

#[test]
fn unknown_keys_are_errors_with_their_position() {
    let (e, shown) = err("mappings = \"m\"\nlisten = \"127.0.0.1:1\"\n");
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(shown.contains("unknown field `listen`"), "{shown}");

    let (e, shown) = err("mappings = \"m\"\n[outbox]\nmax_attempts = 3\nmax_atempts = 4\n");
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                line: 4,
                column: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(shown.contains("`outbox`"), "{shown}");
    assert!(shown.contains("unknown field `max_atempts`"), "{shown}");

    let (_, shown) = err("mappings = \"m\"\n[connections.desk]\nrate = 5\n");
    assert!(shown.contains("unknown field `rate`"), "{shown}");
    assert!(shown.contains(":3:1: "), "{shown}");
}

#[test]
fn type_and_syntax_errors_have_positions() {
    let (e, shown) = err("mappings = \"m\"\n[outbox]\nmax_attempts = \"eight\"\n");
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                line: 3,
                column: 16,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(shown.contains("`outbox.max_attempts`"), "{shown}");
    assert!(shown.contains("expected a whole number"), "{shown}");

    let (_, shown) = err("mappings = \"m\"\nwebhook = 3\n");
    assert!(shown.contains("expected a [webhook] table"), "{shown}");
    assert!(!shown.contains("Raw"), "{shown}");

    let (e, _) = err("mappings = \"m\"\n[server\n");
    assert!(matches!(e, ConfigError::Invalid { line: 2, .. }), "{e:?}");

    let (_, shown) = err("mappings = \"m\"\n[log]\nformat = \"xml\"\n");
    assert!(
        shown.contains("`human`") && shown.contains("`json`"),
        "{shown}"
    );
}

#[test]
fn mappings_is_required() {
    let (_, shown) = err("state = \"s.db\"\n");
    assert!(shown.contains("`mappings` is missing"), "{shown}");
    let (_, shown) = err("mappings = \"\"\n");
    assert!(shown.contains("`mappings` is empty"), "{shown}");
}

#[test]
fn listen_must_be_a_socket_address() {
    for bad in ["localhost:8780", "127.0.0.1", "8780", "127.0.0.1:99999"] {
        let (_, shown) = err(&format!("mappings = \"m\"\n[server]\nlisten = \"{bad}\"\n"));
        assert!(shown.contains(":3:10: "), "{shown}");
        assert!(shown.contains("not a socket address"), "{shown}");
    }
    let c = parse("mappings = \"m\"\n[server]\nlisten = \"[::1]:9000\"\n").unwrap();
    assert_eq!(c.server.listen, "[::1]:9000".parse().unwrap());
}

#[test]
fn server_limits_are_read_and_checked() {
    let c = parse(
        "mappings = \"m\"\n[server]\nmax_connections = 64\nheader_timeout_secs = 3\n\
         body_timeout_secs = 20\nbody_buffer_mib = 8\n",
    )
    .unwrap();
    assert_eq!(
        c.server.limits,
        HttpLimits {
            max_connections: 64,
            header_timeout: Duration::from_secs(3),
            body_timeout: Duration::from_secs(20),
            body_buffer_bytes: 8 * 1024 * 1024,
        }
    );
    assert_eq!(c.server.listen, Server::default().listen);
    for (key, bad) in [
        ("max_connections", "0"),
        ("max_connections", "70000"),
        ("header_timeout_secs", "0"),
        ("header_timeout_secs", "301"),
        ("body_timeout_secs", "601"),
        ("body_buffer_mib", "0"),
        ("body_buffer_mib", "5000"),
    ] {
        let (_, shown) = err(&format!("mappings = \"m\"\n[server]\n{key} = {bad}\n"));
        assert!(
            shown.contains(&format!("`server.{key}` = {bad} is out of range")),
            "{shown}"
        );
        assert!(shown.contains(":3:"), "{shown}");
    }
    let (_, shown) = err("mappings = \"m\"\n[server]\nmax_conections = 5\n");
    assert!(shown.contains("max_conections"), "{shown}");
}

#[test]
fn intervals_zero_is_off_and_a_day_is_the_most() {
    let c = parse(
        "mappings = \"m\"\n[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 86400\n",
    )
    .unwrap();
    assert_eq!(c.poll.zendesk_interval, None);
    assert_eq!(
        c.poll.salesforce_interval,
        Some(Duration::from_secs(86_400))
    );
    for bad in ["86401", "-1"] {
        let (_, shown) = err(&format!(
            "mappings = \"m\"\n[poll]\nzendesk_interval_secs = {bad}\n"
        ));
        assert!(shown.contains("`poll.zendesk_interval_secs`"), "{shown}");
        assert!(shown.contains("0 to turn polling off"), "{shown}");
    }
}

#[test]
fn numeric_ranges() {
    let (_, shown) = err("mappings = \"m\"\n[connections.desk]\nrpm = 0\n");
    assert!(
        shown.contains("`connections.desk.rpm` = 0 is out of range"),
        "{shown}"
    );
    let (_, shown) = err("mappings = \"m\"\n[connections.desk]\nmax_concurrent = 0\n");
    assert!(shown.contains("max_concurrent"), "{shown}");
    for bad in ["0", "601"] {
        let (_, shown) = err(&format!(
            "mappings = \"m\"\n[connections.desk]\ntimeout_secs = {bad}\n"
        ));
        assert!(shown.contains("`connections.desk.timeout_secs`"), "{shown}");
    }
    let (_, shown) = err("mappings = \"m\"\n[outbox]\noutage_window_secs = 0\n");
    assert!(shown.contains("`outbox.outage_window_secs`"), "{shown}");
    let (_, shown) = err("mappings = \"m\"\n[outbox]\nretry_min_ms = 1\n");
    assert!(shown.contains("`outbox.retry_min_ms`"), "{shown}");
    let (e, shown) = err("mappings = \"m\"\n[outbox]\nretry_min_ms = 5000\nretry_max_secs = 2\n");
    assert!(
        shown.contains("`outbox.retry_max_secs` (2 s) is below"),
        "{shown}"
    );
    assert!(matches!(e, ConfigError::Invalid { line: 4, .. }), "{e:?}");
    let c = parse("mappings = \"m\"\n[outbox]\noutage_window_secs = 600\nretry_min_ms = 100\nretry_max_secs = 1\n").unwrap();
    assert_eq!(
        c.outbox.retries(),
        crate::runtime::apply::Retries {
            max_attempts: 8,
            outage_window: Duration::from_secs(600),
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }
    );
    let (_, shown) = err("mappings = \"m\"\n[outbox]\nmax_attempts = 0\n");
    assert!(shown.contains("`outbox.max_attempts`"), "{shown}");
    let (_, shown) = err("mappings = \"m\"\n[outbox]\nworkers_per_connection = 0\n");
    assert!(shown.contains("`outbox.workers_per_connection`"), "{shown}");
    let (_, shown) = err("mappings = \"m\"\n[webhook]\nsecret_env = \"S\"\ntolerance_secs = 0\n");
    assert!(shown.contains("`webhook.tolerance_secs`"), "{shown}");
    let c =
        parse("mappings = \"m\"\n[webhook]\nsecret_env = \"S\"\ntolerance_secs = 60\n").unwrap();
    assert_eq!(c.webhook.unwrap().tolerance, Duration::from_secs(60));
}

#[test]
fn urls_must_be_http_and_carry_no_credentials() {
    let (_, shown) = err("mappings = \"m\"\n[connections.desk]\nbase_url = \"acme.zendesk.com\"\n");
    assert!(shown.contains("not an http(s) URL"), "{shown}");
    let (_, shown) = err(
        "mappings = \"m\"\n[connections.desk]\nbase_url = \"https://me:s3cr3tpass@acme.zendesk.com\"\n",
    );
    assert!(shown.contains("carries credentials"), "{shown}");
    assert!(!shown.contains("s3cr3tpass"), "{shown}");
    let c = parse("mappings = \"m\"\n[connections.desk]\nbase_url = \"http://127.0.0.1:8801\"\n")
        .unwrap();
    assert_eq!(
        c.connections["desk"].base_url.as_deref(),
        Some("http://127.0.0.1:8801")
    );
}

#[test]
fn log_levels() {
    for ok in ["debug", "WARN", "info,l3map=debug"] {
        let c = parse(&format!("mappings = \"m\"\n[log]\nlevel = \"{ok}\"\n")).unwrap();
        assert_eq!(c.log.level, ok);
    }
    let (_, shown) = err("mappings = \"m\"\n[log]\nlevel = \"verbose\"\n");
    assert!(
        shown.contains("`log.level` = \"verbose\" is not a level"),
        "{shown}"
    );
}

#[test]
fn env_secrets_resolve_and_name_the_variable_when_missing() {
    let var = "L3MAP_CONFIG_TEST_WEBHOOK_SECRET_3f9a";
    let agent_var = "L3MAP_CONFIG_TEST_AGENT_TOKEN_3f9a";
    let c = parse(&format!(
        "mappings = \"m\"\n[webhook]\nsecret_env = \"{var}\"\n[agents.bot]\ntoken_env = \"{agent_var}\"\n"
    ))
    .unwrap();

    let e = c.check_secrets().unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("`webhook.secret_env`"), "{shown}");
    assert!(shown.contains(&format!("`{var}` is not set")), "{shown}");

    std::env::set_var(var, "whsec-value-123");
    let e = c.check_secrets().unwrap_err();
    assert!(e.to_string().contains("`agents.bot.token_env`"), "{e}");
    assert!(e.to_string().contains(agent_var), "{e}");

    std::env::set_var(agent_var, "");
    let e = c.check_secrets().unwrap_err();
    assert!(e.to_string().contains("is empty"), "{e}");

    std::env::set_var(agent_var, "agent-value-456");
    c.check_secrets().unwrap();
    let secret = c.webhook.as_ref().unwrap().secret.resolve().unwrap();
    assert_eq!(secret.expose(), "whsec-value-123");

    std::env::remove_var(var);
    std::env::remove_var(agent_var);
}

#[test]
fn file_secrets_are_read_and_trimmed_of_the_line_ending() {
    let path = temp_path("secret-file");
    std::fs::write(&path, "  file-value-789 \r\n\n").unwrap();
    let secret = SecretSource::File(path.clone()).resolve().unwrap();
    assert_eq!(secret.expose(), "  file-value-789 ");

    std::fs::write(&path, "\n").unwrap();
    let e = SecretSource::File(path.clone()).resolve().unwrap_err();
    assert!(e.to_string().contains("is empty"), "{e}");
    assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");

    std::fs::remove_file(&path).unwrap();
    let e = SecretSource::File(path.clone()).resolve().unwrap_err();
    let shown = e.to_string();
    assert!(matches!(e, ConfigError::SecretFile { .. }), "{e:?}");
    assert!(shown.starts_with("cannot read secret file "), "{shown}");
    assert!(shown.contains(&*path.to_string_lossy()), "{shown}");
}

#[test]
fn check_secrets_reads_agent_files() {
    let dir = temp_path("agent-files");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("agent"), "agent-file-value\n").unwrap();
    let c = Config::parse(
        "mappings = \"m\"\n[agents.bot]\ntoken_file = \"agent\"\n[agents.other]\ntoken_file = \"nope\"\n",
        &dir,
    )
    .unwrap();
    let e = c.check_secrets().unwrap_err();
    assert!(e.to_string().contains("`agents.other.token_file`"), "{e}");
    assert!(!e.to_string().contains("agent-file-value"), "{e}");
    assert_eq!(
        c.agents["bot"].token.resolve().unwrap().expose(),
        "agent-file-value"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn connection(secrets: Vec<SecretRef>) -> Connection {
    Connection {
        name: "desk".into(),
        kind: Kind::Zendesk,
        settings: BTreeMap::from([("subdomain".to_string(), "acme".to_string())]),
        secrets,
        scopes: vec!["read".into()],
        objects: vec![],
        rate_limit_rpm: Some(700),
        max_concurrent: None,
        loc: Loc {
            file: 0,
            line: 1,
            col: 1,
            start: 0,
            end: 0,
        },
    }
}

fn secret_ref(key: &str, source: &str, name: &str) -> SecretRef {
    serde_json::from_value(serde_json::json!({"key": key, "source": source, "name": name}))
        .expect("a secret source the IR knows")
}

#[test]
fn connection_secrets_resolve_env_and_file() {
    let var = "L3MAP_CONFIG_TEST_CONN_TOKEN_3f9a";
    let path = temp_path("conn-secret");
    std::fs::write(&path, "client-secret-value\n").unwrap();
    std::env::set_var(var, "conn-token-value");
    let conn = connection(vec![
        secret_ref("token", "env", var),
        secret_ref("client_secret", "file", &path.to_string_lossy()),
    ]);
    let got = connection_secrets(&conn).unwrap();
    std::env::remove_var(var);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got["token"].expose(), "conn-token-value");
    assert_eq!(got["client_secret"].expose(), "client-secret-value");
    assert!(connection_secrets(&connection(vec![])).unwrap().is_empty());
}

#[test]
fn connection_secrets_name_connection_key_and_source() {
    let var = "L3MAP_CONFIG_TEST_CONN_MISSING_3f9a";
    let e = connection_secrets(&connection(vec![secret_ref("token", "env", var)])).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "connection `desk` `token`: environment variable `{var}` is not set"
        )),
        "{shown}"
    );

    let path = temp_path("conn-missing");
    let e = connection_secrets(&connection(vec![secret_ref(
        "refresh_token",
        "file",
        &path.to_string_lossy(),
    )]))
    .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with("connection `desk` `refresh_token`: "),
        "{shown}"
    );
    assert!(shown.contains(&*path.to_string_lossy()), "{shown}");

    // A source other than env and file is refused when the IR is read.
    let e = serde_json::from_value::<SecretRef>(
        serde_json::json!({"key": "token", "source": "vault", "name": "x"}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown variant `vault`"), "{e}");
}

#[test]
fn retention_is_in_days_and_zero_keeps_rows_for_good() {
    use crate::runtime::store::Retention;
    let c = parse("mappings = \"m\"\n").unwrap();
    assert_eq!(c.retention, Retention::default());
    assert_eq!(c.retention.events, Some(30 * Retention::DAY));
    assert_eq!(c.retention.done_actions, Some(90 * Retention::DAY));
    let c =
        parse("mappings = \"m\"\n[retention]\nevents_days = 7\ndone_actions_days = 0\n").unwrap();
    assert_eq!(c.retention.events, Some(7 * Retention::DAY));
    assert_eq!(c.retention.done_actions, None);
    let (_, shown) = err("mappings = \"m\"\n[retention]\nevents_days = -1\n");
    assert!(
        shown.contains("`retention.events_days` = -1 is out of range; use 0 to 36500"),
        "{shown}"
    );
    let (_, shown) = err("mappings = \"m\"\n[retention]\nevents = 7\n");
    assert!(shown.contains("events"), "{shown}");
}

/// The whole text a diagnostic would show of the file.
fn shown_text(e: &ConfigError, len: usize) -> String {
    use miette::Diagnostic;
    let src = e.source_code().expect("the file's text");
    let all = src.read_span(&(0, len).into(), 0, 0).expect("readable");
    String::from_utf8_lossy(all.data()).into_owned()
}

#[test]
fn errors_are_diagnostics_that_point_into_the_file_and_mask_its_secrets() {
    use miette::Diagnostic;
    let pasted = "sk-live-AbC/123+xyz=";
    let text = format!(
        "mappings = \"m\"\n[connections.desk]\nbase_url = \"https://me:pw1234@x.example\"\n\
         [webhook]\nsecret_env = \"{pasted}\"\n[agents.bot]\ntoken_env = \"OK_NAME\"\n"
    );
    let (e, shown) = err(&text);
    assert!(shown.contains(":5:14: "), "{shown}");
    assert_eq!(
        e.code().map(|c| c.to_string()).as_deref(),
        Some("l3map::config::invalid")
    );
    assert!(e.help().is_some());
    let label = e.labels().and_then(|mut l| l.next()).expect("a label");
    assert_eq!(label.offset(), text.find(&format!("\"{pasted}")).unwrap());
    let masked = shown_text(&e, text.len());
    assert_eq!(masked.len(), text.len(), "{masked}");
    assert_eq!(masked.lines().count(), text.lines().count(), "{masked}");
    assert!(!masked.contains(pasted), "{masked}");
    assert!(!masked.contains("pw1234"), "{masked}");
    assert!(masked.contains("token_env = \"OK_NAME\""), "{masked}");
    assert!(!format!("{e:?}").contains(pasted), "{e:?}");

    let value = "zd-oauth-0123456789abcdef";
    let text = format!("mappings = \"m\"\n[webhook]\ntoken = \"{value}\"\n");
    let (e, _) = err(&text);
    assert_eq!(
        e.code().map(|c| c.to_string()).as_deref(),
        Some("l3map::config::literal_secret")
    );
    assert!(e
        .help()
        .is_some_and(|h| h.to_string().contains("secret_env")));
    let label = e.labels().and_then(|mut l| l.next()).expect("a label");
    assert_eq!(label.offset(), text.find("token").unwrap());
    assert!(!shown_text(&e, text.len()).contains(value));

    // Text that is not TOML cannot be searched for secrets: no snippet.
    let (e, _) = err("mappings = \"m\"\n[server\ntoken = \"abc\"\n");
    assert!(e.source_code().is_none());
}

#[test]
fn several_credential_problems_are_one_error_with_each_related() {
    use miette::Diagnostic;
    let problems = |vars: &[&str]| {
        vars.iter()
            .map(|v| SecretSource::Env(v.to_string()).resolve().unwrap_err())
            .collect::<Vec<_>>()
    };
    assert!(all_at_once(vec![]).is_ok());
    let one = all_at_once(problems(&["L3MAP_CONFIG_TEST_UNSET_A_3f9a"])).unwrap_err();
    assert_eq!(
        one.to_string(),
        "environment variable `L3MAP_CONFIG_TEST_UNSET_A_3f9a` is not set; export it before starting l3map"
    );
    let two = all_at_once(problems(&[
        "L3MAP_CONFIG_TEST_UNSET_A_3f9a",
        "L3MAP_CONFIG_TEST_UNSET_B_3f9a",
    ]))
    .unwrap_err();
    assert_eq!(
        two.to_string(),
        "2 credentials are missing or unreadable: environment variable `L3MAP_CONFIG_TEST_UNSET_A_3f9a` is not set; environment variable `L3MAP_CONFIG_TEST_UNSET_B_3f9a` is not set; export the variables (or write the files) and start again"
    );
    assert_eq!(two.related().map(Iterator::count), Some(2));
    assert_eq!(
        two.code().map(|c| c.to_string()).as_deref(),
        Some("l3map::config::credentials")
    );
}

#[test]
fn credentials_key_source_and_margin() {
    let c = parse("mappings = \"m\"\n").unwrap();
    assert_eq!(c.credentials, Credentials::default());
    assert_eq!(
        c.credentials.key,
        SecretSource::Env(CREDENTIALS_KEY_VAR.into())
    );
    let c = parse(
        "mappings = \"m\"\n[credentials]\nkey_file = \"keys/l3map\"\nrefresh_margin_secs = 30\n",
    )
    .unwrap();
    assert_eq!(
        c.credentials.key,
        SecretSource::File(base().join("keys/l3map"))
    );
    assert_eq!(c.credentials.refresh_margin, Duration::from_secs(30));
    let (_, shown) = err("mappings = \"m\"\n[credentials]\nkey_env = \"A\"\nkey_file = \"b\"\n");
    assert!(shown.contains("keep one"), "{shown}");
    let (_, shown) = err("mappings = \"m\"\n[credentials]\nrefresh_margin_secs = 0\n");
    assert!(shown.contains("credentials.refresh_margin_secs"), "{shown}");
    // A key that is no key: named, never shown.
    let path = temp_path("bad-key");
    std::fs::write(&path, "not-a-key-value\n").unwrap();
    let c = Credentials {
        key: SecretSource::File(path.clone()),
        ..Credentials::default()
    };
    let shown = c.key().unwrap_err().to_string();
    assert!(
        shown.contains("credentials.key_file") && shown.contains("32 bytes")
            || shown.contains("base64"),
        "{shown}"
    );
    assert!(!shown.contains("not-a-key-value"), "{shown}");
    std::fs::remove_file(path).unwrap();
}

/// `[store]`: a password anywhere in the URL (as a password, smuggled
/// into the user name, in a fragment) is refused without being repeated;
/// `state` beside it, or `$L3MAP_STATE`, too.
#[test]
fn a_store_url_with_a_password_or_beside_state_is_refused() {
    for url in [
        "postgres://app:S3cr3tXyz@db/l3map",
        "postgres://app%3AS3cr3tXyz@db/l3map",
        "postgres://app@db/l3map#S3cr3tXyz",
        "host=db user=app password=S3cr3tXyz dbname=l3map",
    ] {
        let (e, text) = err(&format!("mappings = \"m\"\n[store]\nurl = \"{url}\"\n"));
        assert!(text.contains("holds a password"), "{url}: {e}");
        assert!(!text.contains("S3cr3tXyz"), "{url}: {text}");
    }
    let (_, text) =
        err("mappings = \"m\"\nstate = \"s.db\"\n[store]\nurl = \"postgres://app@db/l3map\"\n");
    assert!(text.contains("both set"), "{text}");
    let mut cfg = parse("mappings = \"m\"\n[store]\nurl = \"postgres://app@db/l3map\"\n").unwrap();
    let e = cfg
        .apply_vars(|v| (v == "L3MAP_STATE").then(|| "/tmp/x.db".to_string()))
        .unwrap_err();
    assert!(e.to_string().contains("[store]"), "{e}");
}
