//! The documents the editor has open, and the analysis of the project one
//! of them belongs to: every `.l3map` file of its directory (the editor's
//! unsaved text where it has one), checked exactly as `l3map check` checks
//! it, against the project's `l3map.lock.json` when there is one.

use super::index::Index;
use crate::compile::{check, Checked};
use crate::schema::Lockfile;
use crate::syntax::{FileId, SourceMap};
use lsp_types::Url;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct Workspace {
    /// Open documents: their text as the editor has it.
    pub open: BTreeMap<Url, String>,
}

/// One project, checked.
pub struct Analysis {
    pub sources: SourceMap,
    /// The document of each file, by [`FileId`].
    pub uris: Vec<Url>,
    pub checked: Checked,
    pub index: Index,
    pub lock: Option<Lockfile>,
    /// Why the lockfile could not be read, if it could not.
    pub lock_error: Option<String>,
}

impl Analysis {
    pub fn file_of(&self, uri: &Url) -> Option<FileId> {
        self.uris
            .iter()
            .position(|u| u == uri)
            .map(|i| FileId(i as u32))
    }

    pub fn text(&self, file: FileId) -> &str {
        &self.sources.get(file).text
    }
}

impl Workspace {
    /// The project `uri` belongs to, checked.
    pub fn analyse(&self, uri: &Url) -> Analysis {
        let dir = uri
            .to_file_path()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let mut files: BTreeMap<Url, (String, String)> = BTreeMap::new();
        if let Some(dir) = &dir {
            for p in disk_files(dir) {
                let Ok(u) = Url::from_file_path(&p) else {
                    continue;
                };
                if let Ok(text) = crate::project::read_source(&p) {
                    files.insert(u, (p.display().to_string(), text));
                }
            }
        }
        for (u, text) in &self.open {
            let same_dir = u
                .to_file_path()
                .ok()
                .is_some_and(|p| p.parent().map(Path::to_path_buf) == dir && dir.is_some());
            if same_dir || u == uri {
                let path = u
                    .to_file_path()
                    .map_or_else(|_| u.to_string(), |p| p.display().to_string());
                files.insert(u.clone(), (path, text.clone()));
            }
        }
        let mut sources = SourceMap::new();
        let mut uris = Vec::new();
        for (u, (path, text)) in files {
            sources.add(path, text);
            uris.push(u);
        }
        let (lock, lock_error) = match dir.as_deref().map(Lockfile::find) {
            Some(Ok(lock)) => (lock, None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        let checked = check(&sources, lock.as_ref());
        let index = Index::build(&checked.files, &checked.env, |s| {
            sources.get(s.file).slice(s).to_string()
        });
        Analysis {
            sources,
            uris,
            checked,
            index,
            lock,
            lock_error,
        }
    }
}

/// The `.l3map` files directly in `dir` (a project is one directory), as
/// `l3map check` finds them; none when the folder cannot be read.
fn disk_files(dir: &Path) -> Vec<PathBuf> {
    crate::project::files_in(dir).unwrap_or_default()
}
