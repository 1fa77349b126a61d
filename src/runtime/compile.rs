//! Mapping files to a program the runtime can run, through
//! [`crate::compile`]: the same checks as `l3map check` (the schema lockfile
//! included), errors rendered as the terminal shows them.

use super::store::Bundle;
use crate::ir::{Connection, Program, TestCase};
use std::path::Path;

/// The one project at `dir`, compiled; or why not (diagnostics included).
pub fn compile(dir: &Path) -> Result<Program, String> {
    compile_with_tests(dir).map(|(p, _)| p)
}

/// [`compile`], with the project's `test` blocks (`l3map e2e` runs them
/// live).
pub fn compile_with_tests(dir: &Path) -> Result<(Program, Vec<TestCase>), String> {
    let project = crate::compile::load_project(dir).map_err(|e| e.to_string())?;
    crate::compile::compile_project(&project).map_err(|e| e.to_string())
}

/// The project at `dir` as a fleet stores it: its files' text and its
/// lockfile, read once, and the revision they compile to (checked: a
/// project that does not compile is refused here with its diagnostics).
pub fn load_bundle(dir: &Path) -> Result<(Bundle, Program), String> {
    let project = crate::compile::load_project(dir).map_err(|e| e.to_string())?;
    let lock = crate::schema::Lockfile::find(&project.dir).map_err(|e| e.to_string())?;
    let bundle = Bundle {
        revision: String::new(),
        files: project
            .sources
            .files()
            .map(|(_, f)| (f.path.clone(), f.text.to_string()))
            .collect(),
        lock: lock.as_ref().map(crate::schema::Lockfile::to_json),
    };
    let program = compile_bundle(&bundle)?;
    Ok((
        Bundle {
            revision: program.revision.clone(),
            ..bundle
        },
        program,
    ))
}

/// A stored revision compiled from memory, as [`compile`] compiles a
/// folder: a replica deciding by a revision another one published.
/// Refused when it does not compile to the revision it claims to be.
pub fn compile_bundle(bundle: &Bundle) -> Result<Program, String> {
    let mut sources = crate::syntax::SourceMap::new();
    for (path, text) in &bundle.files {
        sources.add(path.clone(), text.as_str());
    }
    let lock = match &bundle.lock {
        Some(text) => Some(
            crate::schema::Lockfile::parse(crate::schema::LOCKFILE, text)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let checked = crate::compile::check(&sources, lock.as_ref());
    let program = crate::compile::lower(&checked, &sources).map_err(|e| e.to_string())?;
    if !bundle.revision.is_empty() && program.revision != bundle.revision {
        return Err(format!(
            "the stored sources of revision {} compile to revision {}; publish them again",
            bundle.revision, program.revision
        ));
    }
    Ok(program)
}

/// The part of a connection the running clients were built from.
fn wiring(c: &Connection) -> (String, String, Vec<(String, String)>, String) {
    (
        c.name.clone(),
        format!("{:?}", c.kind),
        c.settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        format!("{:?}", c.secrets),
    )
}

pub fn same_connections(a: &Program, b: &Program) -> bool {
    let mut x: Vec<_> = a.connections.iter().map(wiring).collect();
    let mut y: Vec<_> = b.connections.iter().map(wiring).collect();
    x.sort();
    y.sort();
    x == y
}

/// Where the built-in project's files appear to come from in source
/// locations (`mappings/fintech/escalations.l3map:20:3`), as in a checkout.
pub const EMBEDDED_DIR: &str = "mappings/fintech";

/// The fintech desk, compiled into the binary so the embedded default
/// (`l3map run` with no project and no configuration) runs from any
/// directory, not only from a checkout.
const EMBEDDED: [(&str, &str); 6] = [
    (
        "connections.l3map",
        include_str!("../../mappings/fintech/connections.l3map"),
    ),
    (
        "escalations.l3map",
        include_str!("../../mappings/fintech/escalations.l3map"),
    ),
    (
        "fields.l3map",
        include_str!("../../mappings/fintech/fields.l3map"),
    ),
    (
        "kyc.l3map",
        include_str!("../../mappings/fintech/kyc.l3map"),
    ),
    (
        "links.l3map",
        include_str!("../../mappings/fintech/links.l3map"),
    ),
    (
        "statuses.l3map",
        include_str!("../../mappings/fintech/statuses.l3map"),
    ),
];

/// The built-in fintech desk, checked exactly as [`compile`] checks a
/// folder.
pub fn compile_embedded() -> Result<Program, String> {
    let mut sources = crate::syntax::SourceMap::new();
    for (name, text) in EMBEDDED {
        sources.add(format!("{EMBEDDED_DIR}/{name}"), text);
    }
    crate::compile::compile(&sources).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to mappings/fintech must be added to the binary too.
    #[test]
    fn the_embedded_project_is_the_whole_fintech_folder_and_compiles() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(EMBEDDED_DIR);
        let on_disk: Vec<String> = crate::project::files_in(&dir)
            .unwrap()
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .collect();
        let embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded);
        let from_disk = compile(&dir).unwrap();
        let built_in = compile_embedded().unwrap();
        assert_eq!(from_disk.revision, built_in.revision);
    }
}
