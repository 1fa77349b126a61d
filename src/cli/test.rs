//! `l3map test`: runs the `test` blocks of every project, like `opa test`.

use super::check::{color, relevant};
use super::{fail, Format};
use crate::compile::{lower, lower_tests};
use crate::diagnostics::{github_data, github_prop, render_github, render_human};
use crate::eval::testing::{run as run_test, Failure, Outcome};
use crate::ir::Loc;
use crate::project::{load, Project};
use crate::syntax::FileId;
use serde::Serialize;
use std::path::PathBuf;
use unicode_width::UnicodeWidthStr;

#[derive(Serialize)]
struct Report<'a> {
    passed: usize,
    failed: usize,
    /// Projects whose mappings do not compile: their tests did not run.
    broken: Vec<Broken>,
    tests: Vec<TestJson<'a>>,
}

#[derive(Serialize)]
struct Broken {
    project: String,
    errors: Vec<String>,
}

#[derive(Serialize)]
struct TestJson<'a> {
    project: String,
    file: &'a str,
    line: u32,
    name: &'a str,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: &'a Option<String>,
    failures: Vec<FailureJson<'a>>,
}

#[derive(Serialize)]
struct FailureJson<'a> {
    file: &'a str,
    line: u32,
    col: u32,
    #[serde(flatten)]
    failure: &'a Failure,
}

pub fn run(paths: &[PathBuf], format: Format, filter: Option<&str>) -> u8 {
    let projects = match load(paths) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let mut results: Vec<(&Project, Vec<String>, Vec<Outcome>)> = Vec::new();
    let mut broken = Vec::new();
    for p in &projects {
        let checked = match super::check::checked(p) {
            Ok(c) => c,
            Err(code) => return code,
        };
        let Ok(program) = lower(&checked, &p.sources) else {
            // In a workflow the errors are annotations on their lines too.
            if format == Format::Github {
                out!("{}", render_github(&relevant(p, &checked), &p.sources));
            } else {
                err!(
                    "{}",
                    render_human(&relevant(p, &checked), &p.sources, color())
                );
            }
            errln!("failed: {} has errors; its tests did not run", p.name());
            broken.push(Broken {
                project: p.name(),
                errors: checked
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| d.message())
                    .collect(),
            });
            continue;
        };
        let outcomes = lower_tests(&checked, &p.sources)
            .unwrap_or_default()
            .iter()
            .filter(|t| p.wants(FileId(t.loc.file)))
            .filter(|t| filter.is_none_or(|f| t.name.contains(f)))
            .map(|t| run_test(&program, t))
            .collect();
        results.push((p, program.files.clone(), outcomes));
    }
    let broken_count = broken.len();
    let mut broken_json = broken;
    let passed = results
        .iter()
        .flat_map(|r| &r.2)
        .filter(|o| o.passed)
        .count();
    let failed = results.iter().flat_map(|r| &r.2).count() - passed;
    // A mistyped filter must not read as a green run in CI.
    if let Some(f) = filter {
        if passed + failed == 0 && broken_count == 0 {
            errln!("error: no test name contains `{f}`, so no test ran; check the --filter text");
            return 1;
        }
    }
    match format {
        Format::Json => {
            let report = Report {
                passed,
                failed,
                broken: std::mem::take(&mut broken_json),
                tests: results
                    .iter()
                    .flat_map(|(p, files, outs)| outs.iter().map(move |o| json(p, files, o)))
                    .collect(),
            };
            match serde_json::to_string_pretty(&report) {
                Ok(s) => outln!("{s}"),
                Err(e) => return fail(e),
            }
        }
        Format::Github | Format::Human => {
            for (p, files, outs) in &results {
                if format == Format::Github {
                    for o in outs {
                        out!("{}", github(files, o));
                    }
                    continue;
                }
                if outs.is_empty() {
                    outln!("{}: no tests", p.name());
                    continue;
                }
                outln!("{}", p.name());
                for o in outs {
                    out!("{}", human(p, files, o));
                }
            }
            let verdict = if failed > 0 || broken_count > 0 {
                "FAILED"
            } else {
                "ok"
            };
            let mut line = format!("test result: {verdict}. {passed} passed; {failed} failed");
            if broken_count > 0 {
                line.push_str(&format!("; {broken_count} project(s) did not compile"));
            }
            outln!("{line}");
        }
    }
    if broken_count > 0 {
        2
    } else if failed > 0 {
        1
    } else {
        0
    }
}

fn file_of<'a>(files: &'a [String], loc: &Loc) -> &'a str {
    files.get(loc.file as usize).map_or("?", |f| f.as_str())
}

fn json<'a>(p: &Project, files: &'a [String], o: &'a Outcome) -> TestJson<'a> {
    TestJson {
        project: p.name(),
        file: file_of(files, &o.loc),
        line: o.loc.line,
        name: &o.name,
        passed: o.passed,
        error: &o.error,
        failures: o
            .failures
            .iter()
            .map(|f| FailureJson {
                file: file_of(files, &f.loc),
                line: f.loc.line,
                col: f.loc.col,
                failure: f,
            })
            .collect(),
    }
}

/// GitHub workflow commands: an `::error` on each failing `expect` line
/// (on the test's own line when its event cannot be read), so the pull
/// request shows the failure where it is. Passing tests print nothing.
fn github(files: &[String], o: &Outcome) -> String {
    let annotate = |loc: &Loc, what: &str| {
        format!(
            "::error file={},line={},col={},title={}::{}\n",
            github_prop(file_of(files, loc)),
            loc.line,
            loc.col,
            github_prop(&format!("l3map test {}", o.name)),
            github_data(what)
        )
    };
    let mut s = String::new();
    if let Some(e) = &o.error {
        s.push_str(&annotate(
            &o.loc,
            &format!("test `{}`: the event cannot be read: {e}", o.name),
        ));
    }
    for f in &o.failures {
        let mut detail = match &f.diff {
            Some(diff) => format!("the comment differs (- expected, + actual):\n{diff}"),
            None => format!("expected: {}\nactual:   {}", f.expected, f.actual),
        };
        if let Some(why) = &f.why {
            detail.push_str(&format!("\nwhy: {why}"));
        }
        s.push_str(&annotate(
            &f.loc,
            &format!(
                "test `{}` failed: {}\n{detail}",
                o.name,
                f.expect.lines().next().unwrap_or("")
            ),
        ));
    }
    s
}

/// `ok name (file:line)`, or the failure with the `expect` line it is about.
fn human(p: &Project, files: &[String], o: &Outcome) -> String {
    let place = format!("{}:{}", file_of(files, &o.loc), o.loc.line);
    if o.passed {
        return format!("  ok    {} ({place})\n", o.name);
    }
    let mut s = format!("  FAIL  {} ({place})\n", o.name);
    if let Some(e) = &o.error {
        s.push_str(&format!("        the event cannot be read: {e}\n"));
    }
    for f in &o.failures {
        s.push_str(&pointed(p, files, f));
    }
    s
}

fn pointed(p: &Project, files: &[String], f: &Failure) -> String {
    let text = &p.sources.get(FileId(f.loc.file)).text;
    let line_text = text.lines().nth(f.loc.line as usize - 1).unwrap_or("");
    let num = f.loc.line.to_string();
    let pad = " ".repeat(num.len());
    // `col` counts characters; the caret goes under them as a terminal
    // draws them (a Japanese character takes two cells, a Thai vowel mark none).
    let before: String = line_text
        .chars()
        .take((f.loc.col as usize).saturating_sub(1))
        .collect();
    let width = f.expect.lines().next().map_or(1, |l| l.width()).max(1);
    let indent = |label: &str, body: &str| {
        let mut out = String::new();
        for (i, l) in body.lines().enumerate() {
            let head = if i == 0 { label } else { "" };
            out.push_str(&format!("        {pad} = {head:<10}{l}\n"));
        }
        if body.is_empty() {
            out.push_str(&format!("        {pad} = {label}\n"));
        }
        out
    };
    let mut s = format!(
        "        {pad}--> {}:{}:{}\n        {pad} |\n        {num} | {line_text}\n        {pad} | {}{}\n",
        file_of(files, &f.loc),
        f.loc.line,
        f.loc.col,
        " ".repeat(before.width()),
        "^".repeat(width),
    );
    match &f.diff {
        Some(diff) => {
            s.push_str(&format!(
                "        {pad} = the comment differs (- expected, + actual):\n"
            ));
            for l in diff.lines() {
                s.push_str(&format!("        {pad}   {l}\n"));
            }
        }
        None => {
            s.push_str(&indent("expected:", &f.expected));
            s.push_str(&indent("actual:", &f.actual));
        }
    }
    if let Some(why) = &f.why {
        s.push_str(&indent("why:", why));
    }
    s
}
