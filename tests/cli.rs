//! The real `l3map` binary: exit codes, output formats, subcommands.

use crate::common;

use l3map::emulator::salesforce::SalesforceOptions;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};
use tempfile::TempDir;

fn l3map(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn examples_check_clean_with_warnings_denied() {
    let o = l3map(&["check", "--deny", "warnings", "mappings/"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ok: 0 errors, 0 warnings"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn errors_exit_1_with_located_diagnostic() {
    let o = l3map(&["check", "tests/fixtures/cli/broken"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("unknown status `solvd`"), "{err}");
    assert!(
        err.contains("tests/fixtures/cli/broken/a.l3map:12:11"),
        "{err}"
    );
    assert!(err.contains("did you mean `solved`?"), "{err}");
}

#[test]
fn warnings_pass_unless_denied() {
    let o = l3map(&["check", "tests/fixtures/cli/warn_only"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 warning"), "{}", stderr(&o));
    let o = l3map(&[
        "check",
        "--deny",
        "warnings",
        "tests/fixtures/cli/warn_only",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

/// `schema::forms_not_locked` is advice (LANGUAGE.md 13.10): shown and
/// counted as advice, never failing `--deny warnings`.
#[test]
fn advice_does_not_fail_denied_warnings() {
    let dir = common::project(
        "advice",
        &[
            (
                "desk.l3map",
                &std::fs::read_to_string("tests/fixtures/check/err/forms_not_locked.l3map")
                    .expect("fixture"),
            ),
            (
                "l3map.lock.json",
                &std::fs::read_to_string("tests/fixtures/check/err/forms_not_locked.lock.json")
                    .expect("fixture"),
            ),
        ],
    );
    let path = dir.path().to_str().expect("UTF-8 path");
    let o = l3map(&["check", "--deny", "warnings", path]);
    let err = stderr(&o);
    assert!(err.contains("l3map::schema::forms_not_locked"), "{err}");
    assert!(err.contains("ok: 0 errors, 0 warnings, 1 advice"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}

#[test]
fn missing_path_is_a_usage_error_on_one_line() {
    let o = l3map(&["check", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no/such/dir: no such file or directory"),
        "{err}"
    );
}

#[test]
fn directory_without_files_is_a_usage_error() {
    let o = l3map(&["check", "src/cli"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no .l3map files found"));
}

#[test]
fn non_utf8_file_is_reported_not_panicked() {
    let dir = common::temp_dir("cli-utf8");
    let f = dir.path().join("bad.l3map");
    std::fs::write(&f, b"template t \"\xff\xfe\"").unwrap();
    let o = l3map(&["check", f.to_str().unwrap()]);
    drop(dir);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
}

#[test]
fn json_format_is_machine_readable() {
    let o = l3map(&["check", "--format", "json", "tests/fixtures/cli/broken"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("valid JSON");
    let first = &v.as_array().unwrap()[0];
    assert_eq!(first["code"], "l3map::unknown_name");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["line"], 12);
    assert_eq!(first["column"], 11);
    assert_eq!(first["file"], "tests/fixtures/cli/broken/a.l3map");
}

#[test]
fn github_format_emits_annotations() {
    let o = l3map(&["check", "--format", "github", "tests/fixtures/cli/broken"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.starts_with("::error file=tests/fixtures/cli/broken/a.l3map,line=12,col=11,"),
        "{out}"
    );
    assert!(
        out.contains("title=l3map%3A%3Aunknown_name::unknown status `solvd`"),
        "{out}"
    );
}

#[test]
fn a_named_file_is_checked_with_its_siblings() {
    let o = l3map(&["check", "mappings/fintech/statuses.l3map"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn compile_emits_versioned_ir() {
    let o = l3map(&["compile", "mappings/fintech", "--emit", "ir"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ir_version"], 1);
    assert!(
        v["status_tables"][0]["transitions"][0]["loc"]["line"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn compile_refuses_a_broken_project() {
    let o = l3map(&["compile", "tests/fixtures/cli/broken"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty());
}

#[test]
fn compile_of_several_projects_asks_for_one() {
    let o = l3map(&["compile", "mappings"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("name one of them"));
}

#[test]
fn graph_mermaid_styles_categories_and_labels_conditions() {
    let o = l3map(&["graph", "mappings/fintech/statuses.l3map"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("flowchart LR"));
    assert!(out.contains("s_pending_risk_review[\"pending_risk_review"));
    assert!(out.contains(":::pending"));
    assert!(out.contains("classDef hold"));
    assert!(
        out.contains("-->|\""),
        "conditions become edge labels: {out}"
    );
}

#[test]
fn graph_dot_is_a_digraph() {
    let o = l3map(&[
        "graph",
        "--format",
        "dot",
        "mappings/fintech/statuses.l3map",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.starts_with("digraph \"desk\""));
    assert!(
        out.contains("peripheries=2"),
        "terminal statuses are double-bordered"
    );
    assert!(out.trim_end().ends_with('}'));
}

#[test]
fn graph_with_several_tables_needs_a_choice() {
    let o = l3map(&["graph", "tests/fixtures/cli/multi/a.l3map"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--table"));
    let o = l3map(&[
        "graph",
        "--table",
        "crm",
        "tests/fixtures/cli/multi/a.l3map",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("s_Working -->|\"Case.Origin == #quot;Web#quot;\"| s_Closed"));
}

#[test]
fn graph_refuses_a_broken_project() {
    let o = l3map(&["graph", "tests/fixtures/cli/broken/a.l3map"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown status"));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let o = l3map(&["check", "--format", "xml", "mappings"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(Path::new(env!("CARGO_BIN_EXE_l3map")).exists());
}

#[test]
fn names_are_shared_across_files_and_duplicates_point_at_the_other_file() {
    let o = l3map(&["check", "--format", "json", "tests/fixtures/cli/multifile"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let all = v.as_array().unwrap();
    assert_eq!(
        all.len(),
        1,
        "only the duplicate: the table in b.l3map resolves `desk`: {all:#?}"
    );
    assert_eq!(all[0]["file"], "tests/fixtures/cli/multifile/b.l3map");
    assert_eq!(all[0]["code"], "l3map::duplicate");
    let help = all[0]["help"].as_str().unwrap();
    assert!(
        help.contains("tests/fixtures/cli/multifile/a.l3map:1:12"),
        "{help}"
    );
}

#[test]
fn naming_one_file_reports_only_that_file() {
    let o = l3map(&[
        "check",
        "--format",
        "json",
        "tests/fixtures/cli/multifile/a.l3map",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o).trim(), "[]");
}

#[test]
fn plan_decides_each_event_and_reports_bad_ones_without_stopping() {
    let o = l3map(&[
        "plan",
        "mappings/fintech",
        "--events",
        "tests/fixtures/events/fintech.jsonl",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "unreadable events make the exit status 1"
    );
    let out = stdout(&o);
    assert!(out.contains("event evt-1"), "{out}");
    assert!(out.contains("escalation refund_over_threshold"), "{out}");
    assert!(
        out.contains("(mappings/fintech/escalations.l3map:"),
        "{out}"
    );
    assert!(
        out.contains("refused status open -> closed: the table has no transition"),
        "{out}"
    );
    assert!(
        out.contains("line 3: unreadable event: ticket.id: invalid type"),
        "{out}"
    );
    assert!(
        out.contains("event evt-4\n  nothing to do"),
        "events after a bad one still run: {out}"
    );
    assert!(
        out.contains("line 6: unreadable event: invalid JSON: key must be a string"),
        "{out}"
    );
    assert!(stderr(&o).contains("2 event(s) could not be read"));
}

#[test]
fn plan_json_is_one_decision_per_line() {
    let o = l3map(&[
        "plan",
        "mappings/fintech",
        "--events",
        "tests/fixtures/events/fintech.jsonl",
        "--format",
        "json",
    ]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["event"], "evt-1");
    assert_eq!(lines[0]["actions"][0]["action"], "comment");
    // A hand-off: `h`, a hash of its escalation, the action's index, the record.
    let key = lines[0]["actions"][0]["idempotency_key"].as_str().unwrap();
    assert!(key.starts_with('h') && key.ends_with("-t4211"), "{key}");
    assert!(key[1..21].bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert_eq!(lines[2]["line"], 3);
}

#[test]
fn plan_without_the_events_file_is_a_usage_error() {
    let o = l3map(&["plan", "mappings/fintech", "--events", "no/such.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such.jsonl"));
}

#[test]
fn every_example_project_passes_its_tests() {
    let o = l3map(&["test", "mappings/"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    for project in ["mappings/fintech", "mappings/saas", "mappings/shop"] {
        assert!(out.contains(project), "{out}");
    }
    assert!(!out.contains("no tests"), "every project has tests: {out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("test result: ok."), "{out}");
}

/// A test block carries the ticket's form (`ticket.ticket_form_id`), so
/// the runtime's refusal of a status the form does not offer is testable
/// offline, from the lockfile's forms.
#[test]
fn a_test_block_can_ask_for_a_status_the_tickets_form_lacks() {
    let o = l3map(&["test", "tests/fixtures/cli/forms_refused"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("ok    vendor_on_refunds_is_refused"), "{out}");
    assert!(out.contains("ok    vendor_on_billing_is_applied"), "{out}");
    assert!(out.contains("2 passed; 0 failed"), "{out}");
}

#[test]
fn a_wrong_expectation_fails_with_a_pointed_diff() {
    let o = l3map(&["test", "tests/fixtures/cli/wrong_expectation"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn test_results_as_json() {
    let o = l3map(&[
        "test",
        "--format",
        "json",
        "tests/fixtures/cli/wrong_expectation",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let wrong = &v["tests"][1];
    assert_eq!(wrong["name"], "wrong");
    assert_eq!(wrong["passed"], false);
    let f = &wrong["failures"];
    assert_eq!(f.as_array().map(Vec::len), Some(2), "{f:#}");
    assert_eq!(f[0]["line"], 51);
    assert_eq!(f[0]["expected"], "status desk -> solved");
    assert_eq!(f[0]["actual"], "status desk open -> escalated");
    assert!(f[1]["diff"]
        .as_str()
        .unwrap()
        .contains("- Sentiment: ANGRY"));
}

#[test]
fn test_filter_and_no_tests() {
    let o = l3map(&[
        "test",
        "--filter",
        "right",
        "tests/fixtures/cli/wrong_expectation",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 passed; 0 failed"), "{}", stdout(&o));
    let o = l3map(&["test", "tests/fixtures/cli/multi"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("no tests"), "{}", stdout(&o));
    // A project that does not compile runs no tests and says so.
    let o = l3map(&["test", "tests/fixtures/cli/broken"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("its tests did not run"),
        "{}",
        stderr(&o)
    );
}

/// A copy of the fintech project with a higher refund threshold, `Legacy`
/// mapped to premium, and the SLA tier in capitals in the hand-off comment.
fn changed_fintech() -> TempDir {
    let tmp = common::temp_dir("diff-new-fintech");
    let dir = tmp.path();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech")).unwrap()
    {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("turn.refund_amount > $200", "turn.refund_amount > $300")
            .replace(
                "\"Std\", \"Legacy\" => standard",
                "\"Std\"           => standard\n    \"Legacy\"        => premium",
            )
            .replace(
                "{{ ticket.sla_tier | default(\"unknown\") }}",
                "{{ ticket.sla_tier | default(\"unknown\") | upper }}",
            );
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    tmp
}

#[test]
fn diff_shows_each_event_decided_differently() {
    let new_dir = changed_fintech();
    let new = new_dir.path().to_str().unwrap();
    let events = "tests/fixtures/events/diff.jsonl";
    let o = l3map(&["diff", "mappings/fintech", new, "--events", events]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
    assert!(
        stderr(&o).contains(
            "4 event(s) replayed: 3 decided differently, 1 the same; 1 line(s) could not be read"
        ),
        "{}",
        stderr(&o)
    );
    let o = l3map(&[
        "diff",
        "--exit-code",
        "mappings/fintech",
        new,
        "--events",
        events,
    ]);
    assert_eq!(o.status.code(), Some(1));
    // The same version on both sides: nothing differs, even with --exit-code.
    let o = l3map(&[
        "diff",
        "--exit-code",
        "mappings/fintech",
        "mappings/fintech",
        "--events",
        events,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains("event d-"), "{}", stdout(&o));
}

#[test]
fn diff_json_has_before_and_after() {
    let new = changed_fintech();
    let o = l3map(&[
        "diff",
        "--format",
        "json",
        "mappings/fintech",
        new.path().to_str().unwrap(),
        "--events",
        "tests/fixtures/events/diff.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON value per line"))
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "three changed events and one unreadable line"
    );
    let d1 = &lines[0];
    assert_eq!(
        (d1["event"].as_str(), d1["line"].as_u64()),
        (Some("d-1"), Some(1))
    );
    assert_eq!(d1["before"]["actions"].as_array().map(Vec::len), Some(4));
    assert_eq!(d1["before"]["refused"].as_array().map(Vec::len), Some(2));
    assert_eq!(d1["after"]["actions"].as_array().map(Vec::len), Some(0));
    let d3 = &lines[2];
    assert_eq!(d3["before"]["actions"][0]["value"]["v"], "standard");
    assert_eq!(d3["after"]["actions"][0]["value"]["v"], "premium");
    assert_eq!(lines[3]["line"], 5);
    assert!(lines[3]["error"]
        .as_str()
        .unwrap()
        .starts_with("ticket.id:"));
}

#[test]
fn diff_refuses_a_broken_version() {
    let o = l3map(&[
        "diff",
        "mappings/fintech",
        "tests/fixtures/cli/broken",
        "--events",
        "tests/fixtures/events/diff.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("the new mappings"), "{}", stderr(&o));
}

#[test]
fn diff_of_identical_copies_in_two_directories_is_empty() {
    // The README's review workflow compares a worktree with the checkout:
    // same files, other paths. Nothing may differ, not even a refusal.
    let tmp = common::temp_dir("diff-same-fintech");
    let copy = tmp.path().to_path_buf();
    for entry in std::fs::read_dir("mappings/fintech").unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let o = l3map(&[
        "diff",
        "--exit-code",
        "mappings/fintech",
        copy.to_str().unwrap(),
        "--events",
        "tests/data/events/fintech.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains("event "), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(" 0 decided differently"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_line_that_is_not_utf8_is_one_bad_event() {
    let tmp = common::temp_dir("not-utf8");
    let path = tmp.path().join("not_utf8.jsonl");
    let good = r#"{"id":"u-1","kind":"ticket_updated","at":"2026-11-11T10:00:00Z","ticket":{"id":1,"status":"open"}}"#;
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"{\"id\":\"u-2\",\"kind\":\"\xff\"}\n");
    bytes.extend_from_slice(format!("{}\n", good.replace("u-1", "u-3")).as_bytes());
    std::fs::write(&path, bytes).unwrap();
    let o = l3map(&[
        "plan",
        "mappings/fintech",
        "--events",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("line 2: unreadable event: not UTF-8"), "{out}");
    assert!(
        out.contains("event u-1") && out.contains("event u-3"),
        "{out}"
    );
}

#[test]
fn test_json_lists_projects_that_do_not_compile() {
    let o = l3map(&["test", "--format", "json", "tests/fixtures/cli/broken"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["broken"][0]["project"], "tests/fixtures/cli/broken");
    let errors = v["broken"][0]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e.as_str().unwrap().contains("solvd")),
        "{errors:?}"
    );
}

#[test]
fn diff_shows_a_change_of_order() {
    // The comment is written before the reassignment; swapping them is a
    // change a reviewer must see, even though the same actions remain.
    let tmp = common::temp_dir("diff-order-fintech");
    let dir = tmp.path().to_path_buf();
    for entry in std::fs::read_dir("mappings/fintech").unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "  comment desk handoff\n  assign  desk \"Fraud Operations\"",
            "  assign  desk \"Fraud Operations\"\n  comment desk handoff",
        );
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let events = dir.join("fraud.jsonl");
    std::fs::write(
        &events,
        r#"{"id":"f-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z","ticket":{"id":8,"status":"open"},"turn":{"intent":"fraud_report"}}"#,
    )
    .unwrap();
    let o = l3map(&[
        "diff",
        "mappings/fintech",
        dir.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("event f-1 (line 1)\n  order changed:"),
        "{out}"
    );
    let before = out.find("- comment desk").expect("comment before");
    let after = out.find("+ assign desk").expect("assign after");
    assert!(before < after, "{out}");
}

#[test]
fn emulate_serves_both_apis_until_stopped() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let out = child.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(out)
        .lines()
        .take(2)
        .map(|l| l.expect("a line"))
        .collect();
    let url = |line: &str| {
        line.split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .expect("a local URL")
            .to_string()
    };
    let (zd, sf) = (url(&lines[0]), url(&lines[1]));
    // Plain HTTP/1.1 over a socket: the CLI test needs no HTTP client.
    let get = |base: &str, path: &str, auth: &str| -> String {
        use std::io::{Read, Write};
        let addr = base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connects");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let fields = get(
        &zd,
        "/api/v2/ticket_fields.json",
        "Authorization: Bearer l3map-dev-token\r\n",
    );
    assert!(fields.starts_with("HTTP/1.1 200"), "{fields}");
    // Seeded from mappings/: the fintech desk's SLA tier field is there.
    assert!(fields.contains("360001234"), "{fields}");
    assert!(
        fields.to_lowercase().contains("x-rate-limit-remaining"),
        "{fields}"
    );
    let refused = get(&zd, "/api/v2/tickets/1.json", "");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let sf_answer = get(&sf, "/services/data/v60.0/sobjects/Case/", "");
    assert!(sf_answer.starts_with("HTTP/1.1 401"), "{sf_answer}");
    child.kill().expect("stops");
    let _ = child.wait();
}

#[test]
fn emulate_refuses_bad_options_in_one_line() {
    let o = l3map(&["emulate", "--error-rate", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--error-rate 2 is not a share"),
        "{}",
        stderr(&o)
    );
    let o = l3map(&[
        "emulate",
        "--webhook-url",
        "http://127.0.0.1:9/hook",
        "--webhook-secret-env",
        "L3MAP_TEST_UNSET_VAR",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("L3MAP_TEST_UNSET_VAR"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_reads_the_lockfile_beside_the_mappings() {
    let tmp = common::temp_dir("locked-project");
    let dir = tmp.path().to_path_buf();
    let fixture = Path::new("tests/fixtures/check/err");
    std::fs::copy(fixture.join("schema_drift.l3map"), dir.join("desk.l3map")).unwrap();
    std::fs::copy(
        fixture.join("schema_drift.lock.json"),
        dir.join("l3map.lock.json"),
    )
    .unwrap();
    let o = l3map(&["check", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("ticket field #360001243 is not in the Zendesk instance"),
        "{}",
        stderr(&o)
    );
    // A lockfile that cannot be read says which file and where.
    std::fs::write(
        dir.join("l3map.lock.json"),
        r#"{"lock_version": 1, "zendesk": []}"#,
    )
    .unwrap();
    let o = l3map(&["check", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("l3map.lock.json: not a valid lockfile: zendesk:"),
        "{}",
        stderr(&o)
    );
}

/// `l3map emulate` on free ports; the child and the two base URLs.
fn emulators(extra: &[&str]) -> (std::process::Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let (zd, sf, _) = common::emulator_urls(&mut child);
    (child, zd, sf)
}

#[test]
fn schema_pull_against_the_emulators_then_check_catches_drift() {
    let (mut child, zd, sf) = emulators(&[]);
    let tmp = common::temp_dir("schema-pull");
    let dir = tmp.path().to_path_buf();
    let project = |field_id: &str| {
        format!(
            r#"connection desk: zendesk {{
  url     "{zd}"
  token   env("L3MAP_TEST_ZD_TOKEN")
  scopes  read, write
}}
connection crm: salesforce {{
  instance      "{sf}"
  client_id     env("L3MAP_TEST_SF_CLIENT_ID")
  client_secret env("L3MAP_TEST_SF_CLIENT_SECRET")
  refresh_token env("L3MAP_TEST_SF_REFRESH_TOKEN")
  scopes        api, refresh_token, offline_access
  objects       Account
}}
fields desk {{
  sla_tier  #{field_id}  enum(enterprise, premium, standard)  "SLA tier"
}}
fields crm {{
  Account.SLA_Tier__c  enum("Ent", "Prem", "Std", "Gold")
}}
map crm -> desk {{
  Account.SLA_Tier__c -> sla_tier {{
    "Ent", "Gold" => enterprise
    "Prem" => premium
    "Std" => standard
  }}
}}
"#
        )
    };
    std::fs::write(dir.join("desk.l3map"), project("360001234")).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("L3MAP_TEST_ZD_TOKEN", "l3map-dev-token")
            .env("L3MAP_TEST_SF_CLIENT_ID", "l3map-emulator-client")
            .env("L3MAP_TEST_SF_CLIENT_SECRET", "l3map-emulator-secret")
            .env("L3MAP_TEST_SF_REFRESH_TOKEN", "l3map-emulator-refresh")
            .output()
            .expect("runs")
    };
    let d = dir.to_str().unwrap();
    for conn in ["desk", "crm"] {
        let o = run(&["schema", "pull", "--connection", conn, d]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let lock = std::fs::read_to_string(dir.join("l3map.lock.json")).unwrap();
    assert!(
        lock.contains("\"360001234\"") || lock.contains("360001234"),
        "{lock}"
    );
    // Pulling again changes nothing, and diff says so.
    let o = run(&["schema", "diff", "--connection", "desk", d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A wrong field id and a picklist value the org lacks are caught.
    std::fs::write(dir.join("desk.l3map"), project("360001299")).unwrap();
    let o = run(&["check", d]);
    assert_eq!(o.status.code(), Some(1));
    let shown = stderr(&o)
        .replace(d, "<project>")
        .replace(&zd, "<zendesk>")
        .replace(&sf, "<salesforce>");
    child.kill().expect("stops");
    let _ = child.wait();
    insta::assert_snapshot!(shown);
    // Missing credentials: one line naming the variable, exit 2.
    let o = l3map(&["schema", "pull", "--connection", "desk", d]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("L3MAP_TEST_ZD_TOKEN"), "{}", stderr(&o));
}

#[test]
fn emulate_burst_answers_the_first_requests_503() {
    use std::io::{Read, Write};
    let (mut child, zd, _) = emulators(&["--burst-5xx", "2"]);
    let get = || {
        let addr = zd.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connects");
        write!(
            s,
            "GET /api/v2/groups.json HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer l3map-dev-token\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let statuses: Vec<String> = (0..3).map(|_| get()[9..12].to_string()).collect();
    child.kill().expect("stops");
    let _ = child.wait();
    assert_eq!(statuses, ["503", "503", "200"]);
}

// ---------------------------------------------------------------- emulate --state

/// `l3map emulate --state FILE`: records written over HTTP survive a
/// graceful restart (SIGTERM) and a crash (kill -9, up to the last
/// periodic write); a file that cannot be read is refused with one line
/// and left as it was.
const ZD_TOKEN: &str = "l3map-dev-token";
const SLA_TIER: u64 = 360001234;

fn state_dir(name: &str) -> TempDir {
    common::temp_dir(&format!("emulate-state-{name}"))
}

fn wait(child: &mut Child, within: Duration) -> ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
}

async fn send(req: reqwest::RequestBuilder) -> Value {
    let r = req.send().await.expect("answer");
    let status = r.status();
    let v: Value = r.json().await.expect("JSON");
    assert!(status.is_success(), "{status}: {v}");
    v
}

async fn sf_token(http: &reqwest::Client, sf: &str) -> String {
    let o = SalesforceOptions::default();
    let v = send(http.post(format!("{sf}/services/oauth2/token")).form(&[
        ("grant_type", "refresh_token"),
        ("client_id", o.client_id.as_str()),
        ("client_secret", o.client_secret.as_str()),
        ("refresh_token", o.refresh_token.as_str()),
    ]))
    .await;
    v["access_token"].as_str().expect("a token").to_string()
}

/// A ticket with a custom field, a status and two comments, and a Case.
async fn write_records(zd: &str, sf: &str) -> (u64, String) {
    let http = reqwest::Client::new();
    let created = send(
        http.post(format!("{zd}/api/v2/tickets.json"))
            .bearer_auth(ZD_TOKEN)
            .json(&json!({"ticket": {
                "subject": "Card declined in Lisbon",
                "comment": {"body": "It keeps getting declined."},
                "custom_fields": [{"id": SLA_TIER, "value": "premium"}]
            }})),
    )
    .await;
    let id = created["ticket"]["id"].as_u64().expect("an id");
    send(
        http.put(format!("{zd}/api/v2/tickets/{id}.json"))
            .bearer_auth(ZD_TOKEN)
            .json(&json!({"ticket": {
                "status": "pending",
                "comment": {"body": "Checking with the card scheme.", "public": false}
            }})),
    )
    .await;
    let token = sf_token(&http, sf).await;
    let case = send(
        http.post(format!("{sf}/services/data/v60.0/sobjects/Case/"))
            .bearer_auth(token)
            .json(&json!({"Subject": "Persisted case", "Priority": "High"})),
    )
    .await;
    (id, case["id"].as_str().expect("an Id").to_string())
}

/// What the restarted emulators answer for the records.
async fn read_records(zd: &str, sf: &str, id: u64, case_id: &str) -> (Value, Vec<String>, Value) {
    let http = reqwest::Client::new();
    let t = send(
        http.get(format!("{zd}/api/v2/tickets/{id}.json"))
            .bearer_auth(ZD_TOKEN),
    )
    .await;
    let c = send(
        http.get(format!("{zd}/api/v2/tickets/{id}/comments.json"))
            .bearer_auth(ZD_TOKEN),
    )
    .await;
    let bodies = c["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["body"].as_str().unwrap_or_default().to_string())
        .collect();
    let token = sf_token(&http, sf).await;
    let case = send(
        http.get(format!("{sf}/services/data/v60.0/sobjects/Case/{case_id}"))
            .bearer_auth(token),
    )
    .await;
    (t["ticket"].clone(), bodies, case)
}

fn field(ticket: &Value, id: u64) -> Value {
    ticket["custom_fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == id))
        .map(|f| f["value"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_restart_and_a_crash() {
    let tmp = state_dir("restart");
    let file = tmp.path().join("emulators.json");
    let path = file.to_str().expect("a UTF-8 path");

    let (mut child, zd, sf) = emulators(&["--state", path]);
    let (id, case_id) = write_records(&zd, &sf).await;
    signal(&child, "-TERM");
    assert!(wait(&mut child, Duration::from_secs(10)).success());
    let saved: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("written on SIGTERM")).expect("JSON");
    assert_eq!(saved["version"], 1);

    // Restarted from the file: the same records over HTTP, and new ids
    // continue after the restored ones.
    let (mut child, zd, sf) = emulators(&["--state", path]);
    let (ticket, comments, case) = read_records(&zd, &sf, id, &case_id).await;
    assert_eq!(ticket["subject"], "Card declined in Lisbon");
    assert_eq!(ticket["status"], "pending");
    assert_eq!(field(&ticket, SLA_TIER), json!("premium"));
    assert_eq!(
        comments,
        [
            "It keeps getting declined.",
            "Checking with the card scheme."
        ]
    );
    assert_eq!(
        (case["Subject"].clone(), case["Priority"].clone()),
        (json!("Persisted case"), json!("High"))
    );
    let (second, second_case) = write_records(&zd, &sf).await;
    assert!(second > id, "{second} after {id}");
    assert_ne!(second_case, case_id);

    // A crash: what was written more than one save interval ago is there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&child, "-KILL");
    let _ = wait(&mut child, Duration::from_secs(10));
    let (mut child, zd, sf) = emulators(&["--state", path]);
    let (ticket, _, case) = read_records(&zd, &sf, second, &second_case).await;
    assert_eq!(ticket["subject"], "Card declined in Lisbon");
    assert_eq!(case["Subject"], "Persisted case");
    signal(&child, "-TERM");
    assert!(wait(&mut child, Duration::from_secs(10)).success());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "emulators.json")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_state_file_it_cannot_read_is_refused_and_left_alone() {
    let tmp = state_dir("refused");
    let dir = tmp.path();
    for (name, body, says) in [
        (
            "corrupt.json",
            "{\"version\": 1, \"zendesk\": {\"tick",
            "is not an emulator state file",
        ),
        (
            "future.json",
            "{\"version\": 2, \"zendesk\": {}, \"salesforce\": {}}",
            "version 2; this l3map reads version 1",
        ),
        (
            "wrong.json",
            r#"{"version": 1, "zendesk": {"tickets": 3}, "salesforce": {"records": {}, "serial": 0, "case_number": 0}}"#,
            "not a valid emulator state file: zendesk.tickets",
        ),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, body).expect("write");
        let path = file.to_str().expect("a UTF-8 path");
        let o = l3map(&[
            "emulate",
            "--zendesk-port",
            "0",
            "--salesforce-port",
            "0",
            "--state",
            path,
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
        assert_eq!(std::fs::read_to_string(&file).expect("still there"), body);
    }
}
