//! The repository as a CI building block: the composite GitHub Action
//! (action.yml) and the pre-commit hooks (.pre-commit-hooks.yaml), parsed
//! as GitHub and pre-commit read them, and their commands run as those
//! tools would run them, with the binary under test on PATH.

use crate::common::{copy_mappings, root, temp_dir, BIN};
use serde_norway::Value;
use std::path::Path;
use std::process::{Command, Output};

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).expect(path);
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// PATH with the directory of the binary under test first: what the
/// Action's install step and pre-commit's `language: rust` provide.
fn path_with_l3map() -> String {
    let bin = Path::new(BIN).parent().expect("the binary's folder");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The fintech mappings with a status name misspelt on line 20.
fn broken_copy(dir: &Path) {
    copy_mappings(&root().join("mappings/fintech"), dir, |t| {
        t.replace(
            "  new                 -> open, in_progress",
            "  new                 -> opne, in_progress",
        )
    });
}

/// A step's `run` line as the runner runs it (`shell: bash`), with its env.
fn run_step(step: &Value, mappings: &Path) -> Output {
    let line = step["run"].as_str().expect("a run step");
    Command::new("bash")
        .args(["-e", "-c", line])
        .current_dir(root())
        .env("PATH", path_with_l3map())
        .env("L3MAP_PATH", mappings)
        .output()
        .expect("bash runs")
}

#[test]
fn the_action_is_composite_and_its_commands_check_and_test_the_mappings() {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    for input in ["path", "version", "install"] {
        assert!(
            action["inputs"][input]["description"].as_str().is_some(),
            "input {input}"
        );
    }
    let steps = action["runs"]["steps"].as_sequence().expect("steps");
    let find = |prefix: &str| {
        steps
            .iter()
            .find(|s| s["run"].as_str().is_some_and(|r| r.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no step runs `{prefix}`"))
    };
    let check = find("l3map check --format github ");
    let test = find("l3map test ");
    for step in [check, test] {
        assert_eq!(step["shell"], "bash");
        assert_eq!(step["env"]["L3MAP_PATH"], "${{ inputs.path }}");
    }
    // Built from the action's own ref by default, cached in ~/.cargo.
    let install = find("if command -v l3map");
    assert!(install["run"]
        .as_str()
        .is_some_and(|r| r.contains("cargo install --locked --path \"$L3MAP_SOURCE\"")));
    assert!(steps.iter().any(|s| s["uses"]
        .as_str()
        .is_some_and(|u| u.starts_with("actions/cache@"))));

    let good = root().join("mappings/fintech");
    for step in [check, test] {
        let out = run_step(step, &good);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?} on mappings/fintech:\n{}{}",
            step["run"],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let dir = temp_dir("action-broken");
    broken_copy(dir.path());
    let out = run_step(check, dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let file = dir.path().join("statuses.l3map");
    assert!(
        said.lines()
            .any(|l| l.starts_with(&format!("::error file={},line=20,", file.display()))),
        "a workflow annotation on the misspelt status:\n{said}"
    );
}

/// stdout and stderr, as pre-commit shows a failing hook's output.
fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A hook's command as pre-commit runs it: entry, args, then the files.
fn run_hook(hook: &Value, files: &[&Path]) -> Output {
    let entry: Vec<&str> = hook["entry"]
        .as_str()
        .expect("entry")
        .split_whitespace()
        .collect();
    let args: Vec<&str> = hook["args"]
        .as_sequence()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Command::new(entry[0])
        .args(&entry[1..])
        .args(args)
        .args(files)
        .current_dir(root())
        .env("PATH", path_with_l3map())
        .output()
        .expect("the hook runs")
}

#[test]
fn the_pre_commit_hooks_pass_good_files_and_fail_bad_ones() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hooks = hooks.as_sequence().expect("a list of hooks");
    let hook = |id: &str| {
        hooks
            .iter()
            .find(|h| h["id"] == id)
            .unwrap_or_else(|| panic!("no hook {id}"))
    };
    let files =
        regex::Regex::new(hook("l3map-check")["files"].as_str().expect("files")).expect("a regex");
    assert!(files.is_match("mappings/fintech/statuses.l3map"));
    assert!(!files.is_match("l3map.toml"));
    for id in ["l3map-check", "l3map-fmt"] {
        let h = hook(id);
        assert_eq!(h["language"], "rust", "{id}: pre-commit builds it");
        assert_eq!(h["pass_filenames"], true, "{id}");
        assert_eq!(h["files"], hook("l3map-check")["files"]);
    }
    assert_eq!(hook("l3map-check")["entry"], "l3map check");
    assert_eq!(hook("l3map-fmt")["entry"], "l3map fmt --check");

    let good = root().join("mappings/fintech/statuses.l3map");
    let kyc = root().join("mappings/fintech/kyc.l3map");
    for id in ["l3map-check", "l3map-fmt"] {
        let out = run_hook(hook(id), &[&good, &kyc]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{id} on formatted, valid files:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let dir = temp_dir("hooks-bad");
    broken_copy(dir.path());
    let broken = dir.path().join("statuses.l3map");
    let out = run_hook(hook("l3map-check"), &[&broken]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "l3map-check on a misspelt status"
    );
    assert!(said(&out).contains("opne"), "{}", said(&out));

    // Valid, but not in the canonical layout.
    let text = std::fs::read_to_string(&good).expect("read");
    let unformatted = dir.path().join("unformatted.l3map");
    std::fs::write(
        &unformatted,
        text.replacen("statuses desk {", "statuses   desk   {", 1),
    )
    .expect("write");
    let out = run_hook(hook("l3map-fmt"), &[&unformatted]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "l3map-fmt on an unformatted file"
    );
    assert!(said(&out).contains("unformatted.l3map"), "{}", said(&out));
    assert_eq!(
        std::fs::read_to_string(&unformatted).expect("read"),
        text.replacen("statuses desk {", "statuses   desk   {", 1),
        "--check changes nothing"
    );
}
