//! What a hot reload reads of a mappings folder: each relevant file's
//! length and hash, to tell a save that settled from one in progress and
//! files already compiled from new ones (see [`super::reload`]).

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files a reload compiles, as they are on disk: each relevant file
/// under the project folder with its length and a hash of its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<PathBuf, (u64, [u8; 32])>);

impl Snapshot {
    /// Reads every `.l3map` file and the lockfile under `dir` (dot folders
    /// skipped, as the loader does). A file that cannot be read is left
    /// out, as a removed one is.
    pub fn read(dir: &Path) -> Snapshot {
        let mut files = BTreeMap::new();
        // Links are not followed into folders (walkdir's default), as the
        // loader does not; a linked file is read through its link.
        let hidden = |e: &walkdir::DirEntry| {
            e.depth() > 0
                && e.file_type().is_dir()
                && e.file_name().to_string_lossy().starts_with('.')
        };
        for entry in walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_entry(|e| !hidden(e))
            .flatten()
        {
            if entry.file_type().is_dir() {
                continue;
            }
            let path = entry.into_path();
            if relevant(&path) {
                if let Ok(bytes) = std::fs::read(&path) {
                    let hash: [u8; 32] = Sha256::digest(&bytes).into();
                    files.insert(path, (bytes.len() as u64, hash));
                }
            }
        }
        Snapshot(files)
    }

    /// The files that had bytes in `before` and are now gone, empty or
    /// less than half as long: what a save in progress looks like (an
    /// editor truncates, then writes, maybe in chunks).
    pub fn cut_since<'a>(&self, before: &'a Snapshot) -> Vec<&'a Path> {
        before
            .0
            .iter()
            .filter(|(_, (len, _))| *len > 0)
            .filter(|(p, (was, _))| self.0.get(*p).is_none_or(|(len, _)| len * 2 < *was))
            .map(|(p, _)| p.as_path())
            .collect()
    }
}

/// A file a reload compiles: a `.l3map` file or the schema lockfile.
pub(super) fn relevant(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "l3map")
        || path.file_name().is_some_and(|n| n == "l3map.lock.json")
}
