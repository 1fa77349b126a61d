//! `l3map fmt`: rewrite `.l3map` files in the canonical layout, naming each
//! one it rewrites, or with `--check` only list the ones that are not.

use super::fail;
use crate::fmt::format;
use crate::project::{load, read_source};
use std::path::{Path, PathBuf};

/// Exit status: 0 all formatted (or, with `--check`, already formatted),
/// 1 a file would change (`--check`) or does not parse, 2 usage or I/O.
pub fn run(paths: &[PathBuf], check: bool) -> u8 {
    let projects = match load(paths) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (mut changed, mut broken, mut total) = (0usize, 0usize, 0usize);
    for p in &projects {
        for (id, file) in p.sources.files() {
            if !p.wants(id) {
                continue;
            }
            total += 1;
            let formatted = match format(&file.text) {
                Ok(f) => f,
                Err(e) => {
                    errln!("{}: {e}", file.path);
                    broken += 1;
                    continue;
                }
            };
            if formatted == *file.text {
                continue;
            }
            changed += 1;
            // Each file is named on stdout, one per line, as it is rewritten
            // (or, with --check, as it is found), so a count is never all
            // a user learns and a script can read the list.
            if !check {
                if let Err(e) = write(Path::new(&file.path), &file.text, &formatted) {
                    return fail(e);
                }
            }
            outln!("{}", file.path);
        }
    }
    let verb = if check {
        "would reformat"
    } else {
        "reformatted"
    };
    errln!(
        "{verb} {changed} of {total} file{}{}",
        if total == 1 { "" } else { "s" },
        if broken > 0 {
            format!("; {broken} not formatted (syntax errors)")
        } else {
            String::new()
        }
    );
    if broken > 0 || (check && changed > 0) {
        1
    } else {
        0
    }
}

/// Replaces the file through a temporary sibling and a rename, so an
/// editor or a watcher never sees half a file; refuses if the file changed
/// since it was read.
fn write(path: &Path, read: &str, formatted: &str) -> Result<(), String> {
    let show = |e: std::io::Error| format!("{}: {e}", path.display());
    match read_source(path) {
        Ok(now) if now == read => {}
        Ok(_) => return Err(format!("{}: changed while formatting", path.display())),
        Err(e) => return Err(e.to_string()),
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".fmt-tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, formatted).map_err(show)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(show)
}
