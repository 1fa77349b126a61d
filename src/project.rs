//! Finding and loading projects: every directory that directly holds
//! `.l3map` files is one project.

use crate::syntax::{FileId, SourceMap};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use thiserror::Error;
use walkdir::WalkDir;

/// Problems with the paths given, before any file is parsed.
#[derive(Debug, Error)]
pub enum LoadError {
    /// Returned when a path does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// Returned when a directory holds no `.l3map` file at any depth.
    #[error("{0}: no .l3map files found")]
    NoFiles(String),
    /// Returned when a file or directory cannot be read.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// Returned when a file is not UTF-8 text.
    #[error("{path}: not UTF-8 text (invalid byte at offset {offset}); save the file as UTF-8")]
    NotUtf8 { path: String, offset: usize },
}

/// One project: its files, and which of them the user asked about.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub sources: SourceMap,
    /// Files named on the command line; `None` means all of them.
    pub only: Option<BTreeSet<FileId>>,
}

impl Project {
    pub fn name(&self) -> String {
        display(&self.dir)
    }

    pub fn wants(&self, f: FileId) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&f))
    }
}

fn display(p: &Path) -> String {
    let s = p.to_string_lossy().to_string();
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

fn is_l3map(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "l3map")
}

fn io(path: &Path, e: std::io::Error) -> LoadError {
    LoadError::Io {
        path: display(path),
        message: e.to_string(),
    }
}

fn walk_error(e: walkdir::Error) -> LoadError {
    let path = e.path().map(display).unwrap_or_default();
    match e.into_io_error() {
        Some(e) => LoadError::Io {
            path,
            message: e.to_string(),
        },
        // A loop of links: never met, since links are not followed.
        None => LoadError::Io {
            path,
            message: "a symbolic link loop".into(),
        },
    }
}

/// The `.l3map` files directly inside `dir` (a project is one folder),
/// sorted. A symbolic link to a file counts: the ConfigMap layout links
/// every file (`kyc.l3map -> ..data/kyc.l3map`).
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    let walk = WalkDir::new(dir)
        .min_depth(1)
        .max_depth(1)
        .sort_by_file_name();
    for entry in walk {
        let p = entry.map_err(walk_error)?.into_path();
        if p.is_file() && is_l3map(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Every directory at or below `dir` that directly holds `.l3map` files,
/// sorted (a folder before its sub-folders).
/// Folders whose name starts with `.` are skipped (`.git`, `..data`), and
/// links to folders are not followed, so a link cannot make a loop or
/// check a project twice. `.gitignore` is not read: a folder named on the
/// command line is checked whole, in a checkout or a deployment alike.
fn project_dirs(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = BTreeSet::new();
    let hidden = |e: &walkdir::DirEntry| {
        e.depth() > 0 && e.file_type().is_dir() && e.file_name().to_string_lossy().starts_with('.')
    };
    let walk = WalkDir::new(dir).sort_by_file_name().into_iter();
    for entry in walk.filter_entry(|e| !hidden(e)) {
        let entry = entry.map_err(walk_error)?;
        if entry.depth() == 0 || entry.file_type().is_dir() || !is_l3map(entry.path()) {
            continue;
        }
        out.insert(entry.path().parent().unwrap_or(dir).to_path_buf());
    }
    Ok(out.into_iter().collect())
}

/// Reads a file a user names (a config, a secret file, a state file) with a
/// bound: a regular file of at most `max` bytes. `--config /dev/zero`, a
/// FIFO or a huge file used to be read until memory ran out or forever; now
/// each is one clear error.
pub fn read_limited(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a device, a pipe or a folder)",
        ));
    }
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} KiB, which no such file needs", max / 1024),
        ));
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_limited_text(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, max)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

pub fn read_source(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    String::from_utf8(bytes).map_err(|e| LoadError::NotUtf8 {
        path: display(path),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Loads the projects named by `paths` (files or directories). A file is
/// loaded with its sibling files, since names are shared across them.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Project>, LoadError> {
    let mut dirs: BTreeMap<PathBuf, Option<BTreeSet<PathBuf>>> = BTreeMap::new();
    for p in paths {
        if !p.exists() {
            return Err(LoadError::NotFound(display(p)));
        }
        if p.is_dir() {
            let found = project_dirs(p)?;
            if found.is_empty() {
                return Err(LoadError::NoFiles(display(p)));
            }
            for d in found {
                dirs.insert(d, None);
            }
        } else {
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            // A directory already loaded whole needs no file list.
            if let Some(set) = dirs.entry(dir).or_insert_with(|| Some(BTreeSet::new())) {
                set.insert(p.clone());
            }
        }
    }
    let mut projects = Vec::new();
    for (dir, only_paths) in dirs {
        let mut files = if dir.as_os_str().is_empty() {
            files_in(Path::new("."))?
                .into_iter()
                .map(|p| p.strip_prefix("./").map(Path::to_path_buf).unwrap_or(p))
                .collect()
        } else {
            files_in(&dir)?
        };
        // A named file without the .l3map extension is still checked.
        if let Some(only) = &only_paths {
            for p in only {
                if !files.contains(p) {
                    files.push(p.clone());
                }
            }
        }
        let mut sources = SourceMap::new();
        let mut only = BTreeSet::new();
        for f in &files {
            let text = read_source(f)?;
            let id = sources.add(display(f), text);
            if only_paths.as_ref().is_some_and(|o| o.contains(f)) {
                only.insert(id);
            }
        }
        projects.push(Project {
            dir,
            sources,
            only: only_paths.map(|_| only),
        });
    }
    Ok(projects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }

    /// What `l3map check DIR` promises (docs/LANGUAGE.md, "Projects and
    /// files"): every folder at any depth that directly holds `.l3map`
    /// files is a project, a folder before its sub-folders; folders named
    /// `.…` are skipped unless named on the command line; a linked file
    /// counts, a linked folder is not entered.
    #[test]
    fn a_folder_is_every_project_below_it_in_order() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        touch(&r.join("top.l3map"));
        touch(&r.join("b/b.l3map"));
        touch(&r.join("a/z.l3map"));
        touch(&r.join("a/deep/er/x.l3map"));
        touch(&r.join("a/notes.txt"));
        touch(&r.join("empty/readme.md"));
        touch(&r.join(".git/hooks/x.l3map"));
        touch(&r.join("c/.hidden/x.l3map"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(r.join("b"), r.join("linked")).unwrap();
            std::os::unix::fs::symlink(r.join("b/b.l3map"), r.join("a/link.l3map")).unwrap();
        }
        let projects = load(&[r.to_path_buf()]).unwrap();
        let dirs: Vec<&Path> = projects.iter().map(|p| p.dir.as_path()).collect();
        assert_eq!(
            dirs,
            [
                r.to_path_buf(),
                r.join("a"),
                r.join("a/deep/er"),
                r.join("b")
            ]
        );
        let a: Vec<&str> = projects[1]
            .sources
            .files()
            .map(|(_, f)| f.path.as_str())
            .collect();
        let mut want = vec![r.join("a/z.l3map").display().to_string()];
        if cfg!(unix) {
            want.insert(0, r.join("a/link.l3map").display().to_string());
        }
        assert_eq!(a, want);

        // Named on the command line, a hidden folder is checked.
        let hidden = load(&[r.join("c/.hidden")]).unwrap();
        assert_eq!(hidden[0].dir, r.join("c/.hidden"));
        assert!(matches!(
            load(&[r.join("empty")]),
            Err(LoadError::NoFiles(_))
        ));
    }
}
