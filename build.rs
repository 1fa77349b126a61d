//! Stamps the git commit the binary is built from into
//! `L3MAP_BUILD_REVISION`, for `l3map_build_info{version,revision}` on
//! `/metrics`. A release built outside a checkout (a source tarball) can
//! pass `L3MAP_REVISION`; otherwise the revision is `unknown`.
//!
//! Hand-written rather than vergen: one `git rev-parse`, and vergen's
//! dependency tree would cost more build time than it saves.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=L3MAP_REVISION");
    let given = std::env::var("L3MAP_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let revision = given
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuilt when HEAD moves: HEAD itself (a checkout or a detached
    // commit), the file of the branch it names (a commit) and packed-refs
    // (a gc). Not all of refs/heads: worktrees share it, and a commit on
    // another branch must not rebuild this one. Only paths that exist, or
    // cargo would rerun this on every build. (A branch only in
    // packed-refs has no file of its own; its next commit creates one this
    // does not watch, so the revision lags until something here changes or
    // `touch build.rs`.)
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    // Only characters a label value and a version string can hold as is.
    let revision: String = revision
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+'))
        .collect();
    let revision = if revision.is_empty() {
        "unknown".to_owned()
    } else {
        revision
    };
    println!("cargo:rustc-env=L3MAP_BUILD_REVISION={revision}");
}
