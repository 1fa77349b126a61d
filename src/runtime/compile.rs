//! Mapping files to a program the runtime can run: the same checks as
//! `l3map check` (the schema lockfile included), errors rendered as the
//! terminal shows them.

use crate::diagnostics::render_human;
use crate::ir::{Program, TestCase};
use crate::project::load;
use std::path::Path;

/// The one project at `dir`, compiled; or why not (diagnostics included).
pub fn compile(dir: &Path) -> Result<Program, String> {
    compile_with_tests(dir).map(|(p, _)| p)
}

/// [`compile`], with the project's `test` blocks (`l3map e2e` runs them
/// live).
pub fn compile_with_tests(dir: &Path) -> Result<(Program, Vec<TestCase>), String> {
    let projects = load(&[dir.to_path_buf()]).map_err(|e| e.to_string())?;
    let [project] = projects.as_slice() else {
        return Err(format!(
            "{} holds {} projects; the runtime runs one: name its folder",
            dir.display(),
            projects.len()
        ));
    };
    let lock = crate::schema::Lockfile::find(&project.dir).map_err(|e| e.to_string())?;
    let checked = crate::check::check_against(&project.sources, lock.as_ref());
    if checked.has_errors() {
        return Err(render_human(&checked.diagnostics, &project.sources, false));
    }
    let program = crate::ir::lower(&checked, &project.sources)
        .ok_or_else(|| render_human(&checked.diagnostics, &project.sources, false))?;
    Ok((program, crate::ir::lower_tests(&checked, &project.sources)))
}
