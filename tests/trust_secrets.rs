//! A credential pasted into a `.l3map` file is refused, and no output of
//! any command repeats it: not `check`'s source frame (human), not its
//! JSON or GitHub output, not `run` refusing to start, not a reload
//! refusal. The frame still shows where the problem is, with the value
//! masked.

use crate::common;

use common::stack;

use stack::{Stack, StackEnv};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const PASTED: &str = "zd-LIVE-5f3a9c2e7b1d40869e";

/// The fintech project with the Zendesk token written in, as `literal`
/// (for example `"…"`, or a bare word).
fn project_with(name: &str, literal: &str) -> TempDir {
    let dir = common::temp_dir(&format!("secrets-{name}"));
    common::copy_mappings(&common::example("fintech"), dir.path(), |text| {
        text.replace("env(\"ZENDESK_OAUTH_TOKEN\")", literal)
    });
    dir
}

fn l3map(args: &[&str], dir: &TempDir) -> Output {
    Command::new(common::BIN)
        .args(args)
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("l3map runs")
}

fn all_of(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_never_prints_a_pasted_token() {
    for (name, literal) in [
        ("quoted", format!("\"{PASTED}\"")),
        // Not even a valid value: the syntax error's frame and its
        // "unexpected …" must not quote it either.
        ("bare", PASTED.to_string()),
        ("unclosed", format!("\"{PASTED}")),
    ] {
        let dir = project_with(name, &literal);
        for format in ["human", "json", "github"] {
            let o = l3map(&["check", "--format", format], &dir);
            assert_eq!(o.status.code(), Some(1), "{name}/{format}: {}", all_of(&o));
            let out = all_of(&o);
            assert!(
                !out.contains(PASTED) && !out.contains("5f3a9c2e7b1d"),
                "{name}/{format} printed the token:\n{out}"
            );
            assert!(out.contains("connections.l3map"), "{name}/{format}: {out}");
        }
        let human = all_of(&l3map(&["check", "--format", "human"], &dir));
        if name == "quoted" {
            assert!(human.contains("literal_secret"), "{human}");
            // The frame is still drawn, pointing at the masked value.
            assert!(human.contains("token       \"*******"), "{human}");
        }
    }
}

/// `run` with a pasted token refuses to start, and says why without
/// repeating it; and a running runtime whose file gets one pasted in
/// refuses the reload the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_reload_refusals_never_print_a_pasted_token() {
    let mut s = Stack::start("trust-secrets", "").await;
    let file = s.mappings().join("connections.l3map");
    let text = std::fs::read_to_string(&file).expect("read");
    // The literal token, one after a mistyped key, and one inside a URL.
    let pasted = text
        .replace(
            "env(\"ZENDESK_OAUTH_TOKEN\")",
            &format!("\"{PASTED}\"\n  tokne \"{TYPO}\""),
        )
        .replace(
            "\"https://acme-fintech.my.salesforce.com\"",
            &format!("\"https://admin:{IN_URL}@acme-fintech.my.salesforce.com\""),
        );
    assert!(pasted.contains(TYPO) && pasted.contains(IN_URL), "{pasted}");
    std::fs::write(&file, &pasted).expect("paste");
    let started = Instant::now();
    while !s.log().contains("do not compile") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no reload refusal:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Refusals keep coming if the watcher spins; give them time to.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = s.log();
    assert!(log.contains("literal_secret"), "{log}");
    for secret in [PASTED, TYPO, IN_URL] {
        assert!(
            !log.contains(secret),
            "a reload refusal printed {secret}:\n{log}"
        );
    }
    assert!(log.contains("tokne"), "{log}");

    // Restarted with the file as it is now: refuses to start.
    s.kill_runtime();
    let mut run = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["run", "--config"])
        .arg(s.dir.join("l3map.toml"))
        .stack_env()
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("l3map run");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = run.kill();
            panic!("l3map run started with a pasted token");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = all_of(&run.wait_with_output().expect("output"));
    assert!(!status.success(), "{out}");
    assert!(out.contains("literal_secret"), "{out}");
    for secret in [PASTED, TYPO, IN_URL] {
        assert!(!out.contains(secret), "run printed {secret}:\n{out}");
    }
    assert!(out.contains("did you mean `token`?"), "{out}");
}

const TYPO: &str = "LEAKB-2222-typo";
const IN_URL: &str = "LEAKF-6666";

/// The fintech project with `edit` applied to its connections file.
fn project_edited(name: &str, edit: impl Fn(&str) -> String) -> TempDir {
    let dir = project_with(name, "env(\"ZENDESK_OAUTH_TOKEN\")");
    let file = dir.path().join("connections.l3map");
    let text = std::fs::read_to_string(&file).expect("read");
    let edited = edit(&text);
    assert_ne!(edited, text, "{name}: the edit changed nothing");
    std::fs::write(&file, edited).expect("write");
    dir
}

/// A token pasted after a mistyped key (`tokne`) is not a known credential
/// key, yet no output repeats it; the error still points at the key and
/// suggests `token`.
#[test]
fn check_never_prints_a_token_after_a_mistyped_key() {
    let dir = project_edited("typo", |t| {
        t.replace(
            "token       env(\"ZENDESK_OAUTH_TOKEN\")",
            &format!("token       env(\"ZENDESK_OAUTH_TOKEN\")\n  tokne \"{TYPO}\""),
        )
    });
    for format in ["human", "json", "github"] {
        let o = l3map(&["check", "--format", format], &dir);
        let out = all_of(&o);
        assert_eq!(o.status.code(), Some(1), "{format}: {out}");
        assert!(
            !out.contains(TYPO) && !out.contains("2222"),
            "{format}:\n{out}"
        );
        assert!(out.contains("tokne"), "{format}: {out}");
        assert!(out.contains("did you mean `token`?"), "{format}: {out}");
    }
    let human = all_of(&l3map(&["check", "--format", "human"], &dir));
    // The frame is drawn at the key, with the value masked to its length.
    assert!(human.contains("tokne \"***************\""), "{human}");
    let json = all_of(&l3map(&["check", "--format", "json"], &dir));
    assert!(
        json.contains("\"code\": \"l3map::connection::property\""),
        "{json}"
    );
}

/// A password inside a URL is masked wherever the file is drawn; a frame
/// drawn next to it (an error on the line below) shows the host.
#[test]
fn check_never_prints_a_password_inside_a_url() {
    let dir = project_edited("url", |t| {
        t.replace(
            "subdomain   \"acme-fintech\"",
            &format!("url \"https://admin:{IN_URL}@acme.zendesk.com\"\n  tokne \"{TYPO}\""),
        )
    });
    for format in ["human", "json", "github"] {
        let o = l3map(&["check", "--format", format], &dir);
        let out = all_of(&o);
        assert_eq!(o.status.code(), Some(1), "{format}: {out}");
        assert!(
            !out.contains(IN_URL) && !out.contains("6666") && !out.contains(TYPO),
            "{format}:\n{out}"
        );
        assert!(out.contains("did you mean `token`?"), "{format}: {out}");
    }
    let human = all_of(&l3map(&["check", "--format", "human"], &dir));
    assert!(
        human.contains("url \"https://*****:**********@acme.zendesk.com\""),
        "{human}"
    );
}

/// A Salesforce or Zendesk address carrying `user:password@` is a
/// credential written in the file: `check` refuses it, naming the key,
/// without printing the password.
#[test]
fn check_refuses_a_url_with_a_password_without_printing_it() {
    let dir = project_edited("url-alone", |t| {
        t.replace(
            "\"https://acme-fintech.my.salesforce.com\"",
            &format!("\"https://admin:{IN_URL}@acme-fintech.my.salesforce.com\""),
        )
    });
    for format in ["human", "json", "github"] {
        let o = l3map(&["check", "--format", format], &dir);
        let out = all_of(&o);
        assert_eq!(o.status.code(), Some(1), "{format}: {out}");
        assert!(!out.contains(IN_URL), "{format}:\n{out}");
        assert!(
            out.contains("`instance` expects a URL without a user name or password"),
            "{format}: {out}"
        );
    }
}

/// After a mistyped key, a value that does not even parse (bare with
/// dashes, unclosed, with a space) is not quoted by the syntax error.
#[test]
fn syntax_errors_after_a_mistyped_key_never_quote_the_value() {
    for (name, literal) in [
        ("typo-bare", TYPO.to_string()),
        ("typo-unclosed", format!("\"{TYPO}")),
        ("typo-spaced", "LEAKB@2222 typo".to_string()),
    ] {
        let dir = project_edited(name, |t| {
            t.replace(
                "token       env(\"ZENDESK_OAUTH_TOKEN\")",
                &format!("token       env(\"ZENDESK_OAUTH_TOKEN\")\n  tokne {literal}"),
            )
        });
        for format in ["human", "json", "github"] {
            let o = l3map(&["check", "--format", format], &dir);
            let out = all_of(&o);
            assert_eq!(o.status.code(), Some(1), "{name}/{format}: {out}");
            assert!(
                !out.contains("LEAKB") && !out.contains("2222-typo") && !out.contains("2222 typo"),
                "{name}/{format}:\n{out}"
            );
            assert!(out.contains("syntax"), "{name}/{format}: {out}");
        }
    }
}
