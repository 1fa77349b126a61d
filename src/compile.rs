//! The front end, one stage at a time, as PRQL's `prqlc` and jaq's loader
//! and compiler expose theirs: sources → [`check`] → [`Checked`] →
//! [`lower`] → [`Program`]. [`compile`] runs the whole path on text in
//! memory; [`load_project`] and [`compile_project`] do it for a folder on
//! disk, against its schema lockfile, as `l3map check` does. Every caller
//! (the CLI, the runtime, the LSP, the emulators, tests) goes through here,
//! so a project compiles the same everywhere, and every way it can fail is
//! one [`CompileError`].

use crate::diagnostics::{render_human, Diagnostic};
use crate::ir::{Program, TestCase};
use crate::project::{LoadError, Project};
use crate::schema::{LockError, Lockfile};
use crate::syntax::SourceMap;
use std::path::Path;

pub use crate::check::Checked;

/// Why a project did not compile.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CompileError {
    /// Returned when the project has errors. It carries every diagnostic
    /// (warnings included) and the sources they point into; it displays
    /// them as a terminal without colour shows them.
    #[error("{}", render_human(.diagnostics, .sources, false))]
    #[diagnostic(code(l3map::compile::errors))]
    Invalid {
        diagnostics: Vec<Diagnostic>,
        sources: SourceMap,
    },
    /// Returned when the project's files cannot be found or read.
    #[error(transparent)]
    #[diagnostic(code(l3map::compile::load))]
    Load(#[from] LoadError),
    /// Returned when the project's schema lockfile cannot be read.
    #[error(transparent)]
    #[diagnostic(code(l3map::compile::lockfile))]
    Lock(#[from] LockError),
    /// Returned when the folder given holds several projects (sub-folders
    /// with `.l3map` files), where one is wanted.
    #[error("{dir} holds {count} projects; the runtime runs one: name its folder")]
    #[diagnostic(code(l3map::compile::projects))]
    NotOne { dir: String, count: usize },
}

impl CompileError {
    /// The diagnostics of a project that has errors; none for the other
    /// failures.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            CompileError::Invalid { diagnostics, .. } => diagnostics,
            _ => &[],
        }
    }
}

/// Stage 1: parses and checks every file, against the project's schema
/// lockfile when given (unknown field ids, options, statuses, read-only
/// fields). Never fails: every problem is one of its diagnostics.
pub fn check(sources: &SourceMap, lock: Option<&Lockfile>) -> Checked {
    crate::check::check_against(sources, lock)
}

/// Stage 2: the IR of a project that checked without errors.
pub fn lower(checked: &Checked, sources: &SourceMap) -> Result<Program, CompileError> {
    refuse_errors(checked, sources)?;
    Ok(crate::ir::lower(
        &checked.files,
        &checked.env,
        sources,
        checked.lock_json.as_deref(),
    ))
}

/// Stage 2 for the `test` blocks, which are not part of a [`Program`].
pub fn lower_tests(checked: &Checked, sources: &SourceMap) -> Result<Vec<TestCase>, CompileError> {
    refuse_errors(checked, sources)?;
    Ok(crate::ir::lower_tests(
        &checked.files,
        &checked.env,
        sources,
    ))
}

fn refuse_errors(checked: &Checked, sources: &SourceMap) -> Result<(), CompileError> {
    if checked.has_errors() {
        return Err(CompileError::Invalid {
            diagnostics: checked.diagnostics.clone(),
            sources: sources.clone(),
        });
    }
    Ok(())
}

/// The whole path for text in memory, without a lockfile.
pub fn compile(sources: &SourceMap) -> Result<Program, CompileError> {
    lower(&check(sources, None), sources)
}

/// The program of one file of text, for unit tests: text that does not
/// compile fails the test, showing its diagnostics.
#[cfg(test)]
pub(crate) fn program_of(text: &str) -> Program {
    let mut sources = SourceMap::new();
    sources.add("t.l3map", text);
    compile(&sources).unwrap_or_else(|e| panic!("{e}"))
}

/// The one project in `dir` (its `.l3map` files), loaded from disk.
pub fn load_project(dir: &Path) -> Result<Project, CompileError> {
    let mut projects = crate::project::load(&[dir.to_path_buf()])?;
    if projects.len() != 1 {
        return Err(CompileError::NotOne {
            dir: dir.display().to_string(),
            count: projects.len(),
        });
    }
    Ok(projects.remove(0))
}

/// A project loaded from disk, checked against its lockfile exactly as
/// `l3map check` checks it: its program and its `test` blocks.
pub fn compile_project(project: &Project) -> Result<(Program, Vec<TestCase>), CompileError> {
    let lock = Lockfile::find(&project.dir)?;
    let checked = check(&project.sources, lock.as_ref());
    let program = lower(&checked, &project.sources)?;
    let tests = lower_tests(&checked, &project.sources)?;
    Ok((program, tests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_with_errors_is_one_error_that_shows_every_diagnostic() {
        let mut sources = SourceMap::new();
        sources.add("desk.l3map", "statuses desk { open opn }");
        let e = compile(&sources).unwrap_err();
        assert!(!e.diagnostics().is_empty());
        assert_eq!(
            e.to_string(),
            render_human(e.diagnostics(), &sources, false)
        );
    }

    #[test]
    fn a_folder_of_several_projects_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["a", "b"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join("x.l3map"), "").unwrap();
        }
        let e = load_project(dir.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} holds 2 projects; the runtime runs one: name its folder",
                dir.path().display()
            )
        );
    }
}
