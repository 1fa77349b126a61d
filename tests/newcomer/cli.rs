//! The newcomer's path through the real `l3map` binary (issue 14, items
//! 1, 6 and 7): a reader that stops early (`| head -1`) ends every command
//! quietly; each command offers exactly the `--format`s it implements; a
//! column is the same number (characters) in every output.

use l3map::runtime::store::{NewAction, NewEvent, Store, Submission};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The status `README.md` documents for a closed pipe: 128 + SIGPIPE.
const CLOSED_PIPE: i32 = 141;

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("newcomer_cli");
        let _ = std::fs::remove_dir_all(&root);
        fixtures(&root);
        root
    })
}

fn l3map(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const CONNECTION: &str = r#"connection desk: zendesk {
  subdomain "acme"
  token     env("ZENDESK_OAUTH_TOKEN")
  scopes    read, write, tickets:write
}
"#;

const STATUSES: &str = r#"
statuses desk {
  new        new     "New"
  open       open    "Open"
  escalated  open    "With tier 2"  #9001
  solved     solved  "Solved"

  new -> open
  open -> escalated, solved
  escalated -> solved
  solved -> open  when comment.author == end_user
}
"#;

fn escalation(threshold: u32) -> String {
    format!(
        r#"
escalation refund_over_threshold {{
  when    turn.intent == "refund" and turn.refund_amount > ${threshold}
  reason  "Refund above the pre-authorised threshold"
  comment desk "Customer asked: {{{{ turn.summary }}}}"
  assign  desk "Payments Tier 2"
  status  desk escalated
}}
"#
    )
}

const REFUND: &str = r#"{"kind": "agent_turn", "ticket": {"id": 7, "status": "open"}, "turn": {"intent": "refund", "summary": "Wants $250 back", "sentiment": "calm", "refund_amount": {"amount": "250.00", "currency": "USD"}}}"#;

/// Every project is big enough that its output fills a pipe (64 KiB) many
/// times over, so a reader that stops after one line really closes it
/// under a writer with more to say.
fn fixtures(root: &Path) {
    let write = |rel: &str, body: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    // `old` and `new` decide a refund of $250 differently.
    write(
        "old/desk.l3map",
        &format!("{CONNECTION}{STATUSES}{}", escalation(200)),
    );
    write(
        "new/desk.l3map",
        &format!("{CONNECTION}{STATUSES}{}", escalation(300)),
    );
    write("events.jsonl", &format!("{REFUND}\n").repeat(1500));

    // 600 tests that fail (the escalation moves the ticket to `escalated`).
    let mut tests = format!("{CONNECTION}{STATUSES}{}", escalation(200));
    for i in 0..600 {
        tests.push_str(&format!(
            "\ntest wrong_{i} {{\n  event \"\"\"\n  {REFUND}\n  \"\"\"\n  expect status desk solved\n}}\n"
        ));
    }
    write("failing/desk.l3map", &tests);

    // 800 transitions to statuses that do not exist: 800 errors.
    let errors: String = (0..800)
        .map(|i| format!("  open -> missing_{i}\n"))
        .collect();
    let statuses = STATUSES.replace(
        "  escalated -> solved\n",
        &format!("  escalated -> solved\n{errors}"),
    );
    write("errors/desk.l3map", &format!("{CONNECTION}{statuses}"));

    // A workflow of 1500 statuses in a chain: a big diagram and a big IR.
    let mut big = format!("{CONNECTION}\nstatuses desk {{\n  s0 new \"Step 0\"\n");
    for i in 1..1500 {
        big.push_str(&format!("  s{i} open #{} \"Step {i}\"\n", 1000 + i));
    }
    big.push_str("  done solved \"Done\" terminal\n\n");
    for i in 0..1499 {
        big.push_str(&format!("  s{i} -> s{}\n", i + 1));
    }
    big.push_str("  s1499 -> done\n}\n");
    write("workflow/desk.l3map", &big);

    // 1500 files `fmt --check` would reformat, with long paths.
    let folder = "a_folder_with_a_long_name_".repeat(6);
    for i in 0..1500 {
        write(
            &format!("unformatted/{folder}/file_{i:04}.l3map"),
            "connection   desk: zendesk {\nsubdomain \"acme\"\n}\n",
        );
    }

    // An outbox of 3000 actions.
    let store = Store::open(&root.join("state.db")).unwrap();
    let actions: Vec<Vec<NewAction>> = (0..3000)
        .map(|i| {
            vec![NewAction {
                key: format!("a{i}"),
                connection: "desk".into(),
                record: format!("ticket {i}"),
                kind: "set_status".into(),
                op: r#"{"op":"zendesk_status","status":"open"}"#.into(),
                rule: "escalation refund_over_threshold".into(),
                source_loc: "desk.l3map:12:1".into(),
                revision: "r1".into(),
            }]
        })
        .collect();
    let keys: Vec<String> = (0..3000).map(|i| format!("zd:{i}")).collect();
    let batch: Vec<Submission> = keys
        .iter()
        .zip(&actions)
        .map(|(key, actions)| Submission {
            event: NewEvent {
                key,
                source: "webhook",
                revision: "r1",
                event: "{}",
                refused: "[]",
                record: None,
                tallies: &[],
            },
            actions,
            cursor: None,
        })
        .collect();
    store.accept_all(&batch).unwrap();
}

#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// `l3map ARGS | head -1`: reads one line of `stream`, closes it, and
/// returns the exit status and everything written to the other stream.
fn closed_after_one_line(args: &[&str], stream: Stream) -> (Option<i32>, String) {
    let other = root().join(format!("other-{}.txt", args.join("_").replace('/', "_")));
    let other_file = std::fs::File::create(&other).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l3map"));
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    match stream {
        Stream::Stdout => cmd.stdout(Stdio::piped()).stderr(other_file),
        Stream::Stderr => cmd.stderr(Stdio::piped()).stdout(other_file),
    };
    let mut child = cmd.spawn().expect("the binary runs");
    let pipe: Box<dyn std::io::Read> = match stream {
        Stream::Stdout => Box::new(child.stdout.take().unwrap()),
        Stream::Stderr => Box::new(child.stderr.take().unwrap()),
    };
    let mut reader = BufReader::new(pipe);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(
        !first.is_empty(),
        "`l3map {}` printed nothing",
        args.join(" ")
    );
    drop(reader);
    let status = child.wait().unwrap();
    (status.code(), std::fs::read_to_string(other).unwrap())
}

/// The end of a long text, enough to see what went wrong.
fn tail(s: &str) -> &str {
    let mut at = s.len().saturating_sub(2000);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

fn assert_quiet_on_closed_pipe(cases: &[(&[&str], Stream)]) {
    for (args, stream) in cases {
        let (code, other) = closed_after_one_line(args, *stream);
        let what = format!(
            "`l3map {}` with its {stream:?} closed after one line; the other stream: {}",
            args.join(" "),
            tail(&other)
        );
        assert!(
            !other.contains("panicked") && !other.contains("Broken pipe"),
            "{what}"
        );
        // Whatever the other stream held before (warnings), nothing about
        // the write that failed.
        assert!(!other.contains("error: "), "{what}");
        assert_eq!(code, Some(CLOSED_PIPE), "{what}");
    }
}

#[test]
fn a_closed_pipe_ends_check_test_and_fmt_quietly() {
    assert_quiet_on_closed_pipe(&[
        (&["check", "errors"], Stream::Stderr),
        (&["check", "--format", "json", "errors"], Stream::Stdout),
        (&["check", "--format", "github", "errors"], Stream::Stdout),
        (&["test", "failing"], Stream::Stdout),
        (&["test", "--format", "json", "failing"], Stream::Stdout),
        (&["test", "--format", "github", "failing"], Stream::Stdout),
        (&["fmt", "--check", "unformatted/"], Stream::Stdout),
    ]);
}

#[test]
fn a_closed_pipe_ends_plan_diff_outbox_graph_and_compile_quietly() {
    let events = ["--events", "events.jsonl"];
    let plan = ["plan", "old", events[0], events[1]];
    let diff = ["diff", "old", "new", events[0], events[1]];
    let outbox = ["outbox", "list", "--state", "state.db", "--limit", "5000"];
    assert_quiet_on_closed_pipe(&[
        (&plan, Stream::Stdout),
        (&[&plan[..], &["--format", "json"]].concat(), Stream::Stdout),
        (&diff, Stream::Stdout),
        (&[&diff[..], &["--format", "json"]].concat(), Stream::Stdout),
        (&outbox, Stream::Stdout),
        (
            &[&outbox[..], &["--format", "json"]].concat(),
            Stream::Stdout,
        ),
        (&["graph", "workflow"], Stream::Stdout),
        (&["graph", "--format", "dot", "workflow"], Stream::Stdout),
        (&["compile", "workflow"], Stream::Stdout),
    ]);
}

/// The values `l3map ARGS -h` lists for `--format`.
fn listed_formats(args: &[&str]) -> Vec<String> {
    let o = l3map(&[args, &["-h"]].concat());
    let help = text(&o.stdout);
    let line = help
        .lines()
        .find(|l| l.trim_start().starts_with("--format"))
        .unwrap_or_else(|| panic!("`l3map {}` has no --format: {help}", args.join(" ")));
    let list = line
        .split("[possible values: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("{line}"));
    list.split(", ").map(str::to_string).collect()
}

/// Every `::…` line of a GitHub workflow command stream: an annotation
/// with a place (`file=…,line=…,col=…`) and a message.
fn annotations(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("::")).collect();
    for l in &lines {
        assert!(
            (l.starts_with("::error file=") || l.starts_with("::warning file="))
                && l.contains(",line=")
                && l.contains(",col=")
                && l[2..].contains("::"),
            "not a workflow annotation: {l}"
        );
    }
    lines
}

#[test]
fn each_command_offers_exactly_the_formats_it_implements() {
    let events = ["--events", "events.jsonl"];
    let commands: [(&[&str], &[&str], &[&str]); 6] = [
        (&["check"], &["errors"], &["human", "json", "github"]),
        (&["test"], &["failing"], &["human", "json", "github"]),
        (
            &["plan"],
            &["old", events[0], events[1]],
            &["human", "json"],
        ),
        (
            &["diff"],
            &["old", "new", events[0], events[1]],
            &["human", "json"],
        ),
        (
            &["outbox", "list"],
            &["--state", "state.db", "--limit", "3"],
            &["human", "json"],
        ),
        (&["graph"], &["old"], &["mermaid", "dot"]),
    ];
    for (command, operands, expected) in commands {
        let listed = listed_formats(command);
        assert_eq!(listed, expected, "`l3map {} -h`", command.join(" "));
        for format in &listed {
            let args = [command, operands, &["--format", format]].concat();
            let o = l3map(&args);
            let (out, err) = (text(&o.stdout), text(&o.stderr));
            let what = format!("`l3map {}`: {err}", args.join(" "));
            assert!(!err.contains("panicked"), "{what}");
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "{what} {:?}",
                o.status
            );
            match format.as_str() {
                "json" => {
                    // One document, or one per line (plan, diff).
                    let docs: Vec<Value> = match serde_json::from_str::<Value>(&out) {
                        Ok(v) => vec![v],
                        Err(_) => out
                            .lines()
                            .map(|l| {
                                serde_json::from_str(l)
                                    .unwrap_or_else(|e| panic!("{what} {e}: {l}"))
                            })
                            .collect(),
                    };
                    assert!(!docs.is_empty(), "{what}");
                }
                "github" => {
                    let notes = annotations(&out);
                    assert!(!notes.is_empty(), "{what} {out}");
                    // Apart from annotations, at most the one summary line.
                    assert!(
                        out.lines().filter(|l| !l.starts_with("::")).count() <= 1,
                        "{what} {out}"
                    );
                }
                "human" => {
                    let shown = if out.is_empty() { &err } else { &out };
                    assert!(!shown.is_empty(), "{what}");
                    assert!(serde_json::from_str::<Value>(shown).is_err(), "{what}");
                    assert!(!shown.contains("::error"), "{what}");
                }
                "mermaid" => assert!(out.contains("flowchart LR"), "{what}"),
                "dot" => assert!(out.starts_with("digraph"), "{what}"),
                other => panic!("untested format {other}"),
            }
        }
        // A format the command does not list is refused by the parser,
        // which names the ones it has.
        for unlisted in ["github", "xml"] {
            if listed.iter().any(|f| f == unlisted) {
                continue;
            }
            let args = [command, operands, &["--format", unlisted]].concat();
            let o = l3map(&args);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "`l3map {}`", args.join(" "));
            assert!(
                err.contains(&format!(
                    "invalid value '{unlisted}' for '--format <FORMAT>'"
                )) && err.contains(&format!("[possible values: {}]", expected.join(", "))),
                "`l3map {}`: {err}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn test_format_github_annotates_each_failing_expect_line() {
    let o = l3map(&["test", "--format", "github", "failing"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let notes = annotations(&out);
    assert_eq!(notes.len(), 600, "{out}");
    // The first failing test's `expect` line, where an editor puts it.
    let source = std::fs::read_to_string(root().join("failing/desk.l3map")).unwrap();
    let line = source
        .lines()
        .position(|l| l == "  expect status desk solved")
        .unwrap()
        + 1;
    assert_eq!(
        notes[0],
        format!(
            "::error file=failing/desk.l3map,line={line},col=3,title=l3map test wrong_0::\
             test `wrong_0` failed: expect status desk solved%0A\
             expected: status desk -> solved%0Aactual:   status desk open -> escalated"
        )
    );
    assert_eq!(
        out.lines().last(),
        Some("test result: FAILED. 0 passed; 600 failed")
    );
    // A project that does not compile: its errors are annotations too.
    let o = l3map(&["test", "--format", "github", "errors"]);
    assert_eq!(o.status.code(), Some(2));
    let out = text(&o.stdout);
    assert!(
        annotations(&out)
            .iter()
            .any(|a| a.starts_with("::error file=errors/desk.l3map,line=")),
        "{out}"
    );
}

/// The line and column a diagnostic's three renderings give.
fn places(dir: &str) -> [(usize, usize); 3] {
    let human = text(&l3map(&["check", dir]).stderr);
    let at = human
        .split("unknown field `ticket.risk_scor`")
        .nth(1)
        .and_then(|s| s.split("╭─[").nth(1))
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("{human}"));
    let mut parts = at.rsplit(':');
    let col = parts.next().unwrap().parse().unwrap();
    let line = parts.next().unwrap().parse().unwrap();

    let json: Value =
        serde_json::from_slice(&l3map(&["check", "--format", "json", dir]).stdout).unwrap();
    let j = json
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["message"] == "unknown field `ticket.risk_scor`")
        .unwrap_or_else(|| panic!("{json}"));
    let json_place = (
        j["line"].as_u64().unwrap() as usize,
        j["column"].as_u64().unwrap() as usize,
    );

    let out = text(&l3map(&["check", "--format", "github", dir]).stdout);
    let github = out
        .lines()
        .find(|l| l.contains("unknown field `ticket.risk_scor`"))
        .unwrap_or_else(|| panic!("{out}"));
    let field = |name: &str| -> usize {
        github
            .split(&format!(",{name}="))
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{github}"))
    };
    [(line, col), json_place, (field("line"), field("col"))]
}

#[test]
fn columns_count_characters_in_human_json_and_github_alike() {
    let line = r#"  when    turn.intent == "คืนเงินด่วน" and turn.summary == "返金をお願いします" and ticket.risk_scor > 3"#;
    let file = format!(
        "{CONNECTION}{STATUSES}\nescalation thai {{\n{line}\n  reason  \"x\"\n  status  desk escalated\n}}\n"
    );
    let dir = root().join("thai");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("desk.l3map"), &file).unwrap();
    let expected_line = file.lines().position(|l| l == line).unwrap() + 1;
    let [human, json, github] = places("thai");
    assert_eq!(human, json, "human and JSON");
    assert_eq!(github, json, "GitHub and JSON");
    // The column counts characters: that many characters into the line is
    // the unknown field (a byte count would land 40 characters further on).
    let (at_line, col) = json;
    assert_eq!(at_line, expected_line);
    let from: String = line.chars().skip(col - 1).collect();
    assert!(
        from.starts_with("ticket.risk_scor") || from.starts_with("risk_scor"),
        "column {col} is at `{from}`"
    );
}

#[test]
fn an_events_line_names_its_column_in_characters() {
    let line = r#"{"kind": "agent_turn", "turn": {"summary": "返金をお願いします"}, oops}"#;
    std::fs::write(root().join("bad.jsonl"), format!("{line}\n")).unwrap();
    let col = line[..line.find("oops").unwrap()].chars().count() + 1;
    let o = l3map(&["plan", "old", "--events", "bad.jsonl", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let error = v["error"].as_str().unwrap();
    assert!(
        error.ends_with(&format!("at line 1 column {col}")),
        "{error}"
    );
    let o = l3map(&["plan", "old", "--events", "bad.jsonl"]);
    assert!(
        text(&o.stdout).contains(&format!("at line 1 column {col}")),
        "{}",
        text(&o.stdout)
    );
}

/// The final newcomer review: a mistyped `--filter` printed "no tests"
/// and exited 0, so CI passed without running anything.
#[test]
fn a_filter_that_matches_no_test_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
    let o = l3map(&[
        "test",
        dir.to_str().expect("utf-8"),
        "--filter",
        "no-such-test-zz",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no test name contains `no-such-test-zz`"),
        "{}",
        text(&o.stderr)
    );
    // A filter that matches still runs just those.
    let o = l3map(&["test", dir.to_str().expect("utf-8"), "--filter", "kyc"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("kyc_hold_only_for_kyc_tickets"));
}

/// The final newcomer review: `outbox retry 999` (no such dead letter)
/// said "0 dead letter(s) queued again" and exited 0.
#[test]
fn retrying_or_dropping_an_id_that_is_no_dead_letter_says_so() {
    let state = root().join("retry-ids.db");
    let _ = std::fs::remove_file(&state);
    drop(Store::open(&state).expect("a new store"));
    let s = state.to_str().expect("utf-8");
    for action in ["retry", "drop"] {
        let o = l3map(&["outbox", action, "999", "--state", s]);
        assert_eq!(o.status.code(), Some(1), "{action}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("not a dead letter: 999"),
            "{action}: {}",
            text(&o.stderr)
        );
    }
}

/// The red team: a mistyped `[connections.NAME]` (or a key of the other
/// vendor) was ignored, so `schema diff` and `run` went to the host the
/// mapping names (production) instead of the sandbox.
#[test]
fn a_connection_override_that_matches_nothing_is_refused() {
    let fintech = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
    for (name, section, says) in [
        (
            "typo",
            "[connections.dsk]\nbase_url = \"http://127.0.0.1:9\"\n",
            "`[connections.dsk]` in l3map.toml names no connection",
        ),
        (
            "wrong-key",
            "[connections.desk]\nlogin_url = \"http://127.0.0.1:9\"\n",
            "`login_url` in `[connections.desk]` does not apply to a Zendesk connection",
        ),
    ] {
        let config = root().join(format!("override-{name}.toml"));
        std::fs::write(
            &config,
            format!("mappings = {:?}\n{section}", fintech.display().to_string()),
        )
        .expect("config");
        let o = l3map(&[
            "schema",
            "diff",
            "--connection",
            "desk",
            "--config",
            config.to_str().expect("utf-8"),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(says),
            "{name}: {}",
            text(&o.stderr)
        );
    }
}

/// The red team: `L3MAP_CONFIG=/dev/zero` (or a FIFO, or a secret file
/// that is a device) was read until memory ran out. Each is refused in
/// one line.
#[test]
fn a_config_that_is_a_device_is_refused_not_read_forever() {
    let o = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["outbox", "list"])
        .current_dir(root())
        .env("L3MAP_CONFIG", "/dev/zero")
        .output()
        .expect("the binary runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not a regular file"),
        "{}",
        text(&o.stderr)
    );
    let o = l3map(&[
        "emulate",
        "--state",
        "/dev/zero",
        "--zendesk-port",
        "0",
        "--salesforce-port",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not a regular file"),
        "{}",
        text(&o.stderr)
    );
}

/// The red team: `diff --exit-code` over a file whose every line was
/// unreadable compared nothing and exited 0, so the CI gate passed.
#[test]
fn diff_exit_code_fails_when_lines_were_not_compared() {
    let fintech = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
    let events = root().join("unreadable.jsonl");
    std::fs::write(&events, "not json\n{\"kind\": \"nonsense\"}\n").expect("events");
    let f = fintech.to_str().expect("utf-8");
    let o = l3map(&[
        "diff",
        f,
        f,
        "--events",
        events.to_str().expect("utf-8"),
        "--exit-code",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no line of the events file could be read"),
        "{}",
        text(&o.stderr)
    );
}
