//! `l3map check` and `l3map compile`.

use super::{fail, Emit, Format};
use crate::compile::Checked;
use crate::diagnostics::{render_github, render_human, to_json, Diagnostic};
use crate::project::{load, Project};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub(crate) fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// The diagnostics of a project that concern the files the user named.
pub(crate) fn relevant(p: &Project, c: &Checked) -> Vec<Diagnostic> {
    c.diagnostics
        .iter()
        .filter(|d| p.wants(d.file))
        .cloned()
        .collect()
}

pub fn run(paths: &[PathBuf], format: Format, deny_warnings: bool) -> u8 {
    let projects = match load(paths) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (mut errors, mut warnings, mut files) = (0usize, 0usize, 0usize);
    // Advice (a note such as `schema::forms_not_locked`) is neither an
    // error nor a warning: `--deny warnings` does not fail on it.
    let mut advice = 0usize;
    let mut json = Vec::new();
    for p in &projects {
        // With a schema lockfile beside the mappings, check against the
        // instance too; a lockfile that cannot be read is an error of its own.
        let lock = match crate::schema::Lockfile::find(&p.dir) {
            Ok(lock) => lock,
            Err(e) => {
                errln!("error: {e}");
                errors += 1;
                None
            }
        };
        let checked = crate::compile::check(&p.sources, lock.as_ref());
        let diags = relevant(p, &checked);
        files += p.sources.len();
        errors += diags.iter().filter(|d| d.is_error()).count();
        warnings += diags
            .iter()
            .filter(|d| d.severity() == miette::Severity::Warning)
            .count();
        advice += diags
            .iter()
            .filter(|d| d.severity() == miette::Severity::Advice)
            .count();
        match format {
            Format::Human => err!("{}", render_human(&diags, &p.sources, color())),
            Format::Github => out!("{}", render_github(&diags, &p.sources)),
            Format::Json => json.extend(diags.iter().map(|d| to_json(d, &p.sources))),
        }
    }
    if format == Format::Json {
        match serde_json::to_string_pretty(&json) {
            Ok(s) => outln!("{s}"),
            Err(e) => return fail(e),
        }
    }
    if format == Format::Human {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        errln!(
            "{}: {}, {}{} in {} ({})",
            if errors > 0 || (deny_warnings && warnings > 0) {
                "failed"
            } else {
                "ok"
            },
            plural(errors, "error"),
            plural(warnings, "warning"),
            match advice {
                0 => String::new(),
                n => format!(", {n} advice"),
            },
            plural(files, "file"),
            plural(projects.len(), "project"),
        );
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        1
    } else {
        0
    }
}

/// Checks a project against its schema lockfile when it has one, as
/// `l3map check` does, so every command sees the same errors. A lockfile
/// that cannot be read is the usage/I/O exit status, after a one-line reason.
pub(crate) fn checked(p: &Project) -> Result<Checked, u8> {
    let lock = crate::schema::Lockfile::find(&p.dir).map_err(fail)?;
    Ok(crate::compile::check(&p.sources, lock.as_ref()))
}

/// Loads the one project `path` names; otherwise the usage exit status,
/// after a one-line reason.
pub(crate) fn load_one(path: &Path) -> Result<Project, u8> {
    let mut projects = load(std::slice::from_ref(&path.to_path_buf())).map_err(fail)?;
    if projects.len() != 1 {
        return Err(fail(format!(
            "{} holds {} projects; name one of them: {}",
            path.display(),
            projects.len(),
            projects
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(projects.remove(0))
}

pub fn compile(path: &Path, emit: Emit) -> u8 {
    let p = match load_one(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let p = &p;
    let checked = match checked(p) {
        Ok(c) => c,
        Err(code) => return code,
    };
    err!(
        "{}",
        render_human(&checked.diagnostics, &p.sources, color())
    );
    let Ok(program) = crate::compile::lower(&checked, &p.sources) else {
        errln!("failed: the project has errors; nothing compiled");
        return 1;
    };
    match emit {
        Emit::Ir => match serde_json::to_string_pretty(&program) {
            Ok(s) => outln!("{s}"),
            Err(e) => return fail(e),
        },
    }
    0
}
