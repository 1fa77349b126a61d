//! Decisions as data: every file of `tests/fixtures/eval/ok/` and
//! `tests/fixtures/eval/refused/` is a case, run through the real binary.
//!
//! A case is an `.l3map` file of `test` blocks, what a user writes
//! (docs/LANGUAGE.md, section 11): the event, and the `expect` lines the
//! decision must meet. A header of `// key: value` comments says what the
//! case runs against and what `expect` cannot say:
//!
//! | key | meaning |
//! |---|---|
//! | `mappings: NAME` | the case runs beside a copy of `mappings/NAME`; without it the file is its own project |
//! | `actions: N` | each test's event decides exactly `N` actions |
//! | `refusals: N` | ... and exactly `N` refusals |
//! | `rule: TEXT` | every action comes from this rule (`escalation NAME`, `map A -> B`) |
//! | `record: SYSTEM ID` | every action goes to this record (`ticket 77`) |
//! | `refused at: FILE:LINE` | every refusal names this rule's place (`statuses.l3map:26`) |
//! | `replaces: ...` | the unit test the case took over (for the reader) |
//!
//! Its tests are named `case_...`, apart from the tests of the mappings
//! beside it. `l3map test --format json` checks the `expect` lines;
//! `l3map plan --format json` on each test's event checks the header. A
//! case in `ok/`
//! says `expect no refusal` (or `expect nothing`) in every test; a case in
//! `refused/` says `expect refused`. A failure names the file.

use crate::common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The `// key: value` lines before the first line of the case.
fn header(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map_while(|l| l.strip_prefix("//"))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Each `test NAME { ... }` block: its name and its body.
fn tests(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("test ") {
            let name = rest.trim_end_matches('{').trim().to_string();
            out.push((name, String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// A test's event as `l3map plan` reads it: `id` and `at` default as in a
/// `test` block (docs/LANGUAGE.md, section 11).
fn event(name: &str, body: &str) -> String {
    let start = body.find("event \"\"\"").expect("an event") + "event \"\"\"".len();
    let len = body[start..]
        .find("\"\"\"")
        .expect("the event's closing \"\"\"");
    let mut ev: Value = serde_json::from_str(&body[start..start + len]).expect("the event is JSON");
    let obj = ev.as_object_mut().expect("an object");
    obj.entry("id").or_insert(format!("test:{name}").into());
    obj.entry("at").or_insert("2026-01-01T00:00:00Z".into());
    ev.to_string()
}

fn run(args: &[&str], path: &Path) -> Output {
    common::l3map()
        .args(args)
        .arg(path)
        .env("NO_COLOR", "1")
        .output()
        .expect("l3map runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs one case; `Err` says what failed.
fn case(path: &Path, outcome: &str) -> Result<(), String> {
    let source = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let file = path.file_name().expect("a name").to_str().expect("UTF-8");
    let head = header(&source);
    let get = |k: &str| {
        head.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let blocks = tests(&source);
    if blocks.is_empty() {
        return Err("no `test` block".into());
    }
    for (name, body) in &blocks {
        if !name.starts_with("case_") {
            return Err(format!("test {name}: a case's tests are named `case_...`"));
        }
        let (needed, says) = match outcome {
            "ok" => (
                body.contains("expect no refusal") || body.contains("expect nothing"),
                "`expect no refusal` or `expect nothing`",
            ),
            _ => (body.contains("expect refused"), "`expect refused`"),
        };
        if !needed {
            return Err(format!("test {name} in {outcome}/ does not say {says}"));
        }
    }

    // The project: a copy of the shared mappings with the case beside
    // them, or the case alone.
    let project = common::temp_dir("eval-fixture");
    if let Some(m) = get("mappings") {
        common::copy_mappings(&common::example(m), project.path(), str::to_string);
    }
    std::fs::write(project.path().join(file), &source).map_err(|e| e.to_string())?;

    // The `expect` lines.
    let o = run(&["test", "--format", "json"], project.path());
    let report: Value = serde_json::from_slice(&o.stdout)
        .map_err(|_| format!("l3map test: {}{}", text(&o.stdout), text(&o.stderr)))?;
    if report["broken"].as_array().is_some_and(|b| !b.is_empty()) {
        return Err(format!("does not compile: {}", report["broken"]));
    }
    let ours: Vec<&Value> = report["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["file"].as_str().is_some_and(|f| f.ends_with(file)))
        .collect();
    if ours.len() != blocks.len() {
        return Err(format!(
            "{} test blocks, {} run: {report:#}",
            blocks.len(),
            ours.len()
        ));
    }
    let failed: Vec<&&Value> = ours.iter().filter(|t| t["passed"] != true).collect();
    if !failed.is_empty() {
        let human = run(&["test", "--filter", "case_"], project.path());
        return Err(format!("{}{}", text(&human.stdout), text(&human.stderr)));
    }

    // The header: what the whole decision holds.
    let checks = ["actions", "refusals", "rule", "record", "refused at"];
    if !checks.iter().any(|k| get(k).is_some()) {
        return Ok(());
    }
    for (name, body) in &blocks {
        let events = project.path().join("events.jsonl");
        std::fs::write(&events, event(name, body)).map_err(|e| e.to_string())?;
        let o = common::l3map()
            .args(["plan", "--format", "json", "--events"])
            .arg(&events)
            .arg(project.path())
            .output()
            .expect("l3map plan runs");
        std::fs::remove_file(&events).map_err(|e| e.to_string())?;
        let d: Value = serde_json::from_slice(&o.stdout)
            .map_err(|_| format!("l3map plan: {}{}", text(&o.stdout), text(&o.stderr)))?;
        let actions = d["actions"].as_array().cloned().unwrap_or_default();
        let refused = d["refused"].as_array().cloned().unwrap_or_default();
        let wrong = |what: &str| Err(format!("test {name}: {what}; the decision: {d:#}"));
        if let Some(n) = get("actions") {
            if n.parse() != Ok(actions.len()) {
                return wrong(&format!("{} actions, not {n}", actions.len()));
            }
        }
        if let Some(n) = get("refusals") {
            if n.parse() != Ok(refused.len()) {
                return wrong(&format!("{} refusals, not {n}", refused.len()));
            }
        }
        if let Some(rule) = get("rule") {
            if let Some(a) = actions.iter().find(|a| a["rule"] != rule) {
                return wrong(&format!("an action of {}, not {rule}", a["rule"]));
            }
        }
        if let Some(record) = get("record") {
            let of = |a: &Value| {
                let r = &a["record"];
                format!("{} {}", r["system"].as_str().unwrap_or("?"), r["id"]).replace('"', "")
            };
            if let Some(a) = actions.iter().find(|a| of(a) != record) {
                return wrong(&format!("an action on {}, not {record}", of(a)));
            }
        }
        if let Some(at) = get("refused at") {
            let place = |r: &Value| {
                let source = r["source"].as_str().unwrap_or("");
                let (file, _col) = source.rsplit_once(':').unwrap_or((source, ""));
                file.rsplit('/').next().unwrap_or(file).to_string()
            };
            if let Some(r) = refused.iter().find(|r| place(r) != at) {
                return wrong(&format!("a refusal at {:?}, not {at}", place(r)));
            }
        }
    }
    Ok(())
}

/// The cases of `tests/fixtures/eval/OUTCOME/`, sorted; none is a failure
/// (a runner over an empty directory proves nothing).
fn cases(outcome: &str) -> Vec<PathBuf> {
    let dir = common::root().join("tests/fixtures/eval").join(outcome);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "l3map"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
}

fn run_all(outcome: &str) {
    let failures: Vec<String> = cases(outcome)
        .iter()
        .filter_map(|p| {
            case(p, outcome)
                .err()
                .map(|why| format!("--- {}\n{why}", p.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ok_cases_decide_their_actions() {
    run_all("ok");
}

#[test]
fn refused_cases_are_refused_saying_why() {
    run_all("refused");
}
