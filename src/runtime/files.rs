//! Whether the mapping files on disk are the revision served: what hot
//! reload ([`super::reload`]) found, kept for `/healthz`. A save that does
//! not compile is refused and the previous revision keeps serving (the
//! runtime stays ready), so this is the only place an operator polling
//! `/healthz` can see that the files and the service differ.

use serde_json::{json, Value};
use std::sync::Mutex;

/// The refusal in force, if the files on disk are refused; and the
/// revision the files on disk last compiled to, when a fleet decides by
/// another (a publish, another replica's save, an older image).
#[derive(Debug, Default)]
pub struct FilesState(Mutex<Option<Refusal>>, Mutex<Option<String>>);

/// The files on disk were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When the first refused compile of this run of refusals ended (ms
    /// since 1970): a later refused save keeps it.
    pub since_ms: i64,
    /// The latest refusal's first diagnostic, on one line.
    pub error: String,
}

impl FilesState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Refusal>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The refusal in force, if the files on disk are refused.
    pub fn refusal(&self) -> Option<Refusal> {
        self.lock().clone()
    }

    /// The revision the files on disk last compiled to (`None` before a
    /// fleet's replica knows it: a single process serves its files).
    pub fn on_disk(&self) -> Option<String> {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The files on disk compiled to `revision`.
    pub(super) fn compiled(&self, revision: &str) {
        *self.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(revision.to_string());
    }

    pub(super) fn refused(&self, error: String) {
        let mut r = self.lock();
        let since_ms = r
            .as_ref()
            .map_or_else(super::store::now_ms, |was| was.since_ms);
        *r = Some(Refusal { since_ms, error });
    }

    /// The files compile to what is served again: the refusal that ends.
    pub(super) fn cleared(&self) -> Option<Refusal> {
        self.lock().take()
    }
}

/// The first error of a compile's rendered diagnostics, on one line
/// (`file:line:col: message (help: ...)`), or the first line of any other
/// failure.
pub(super) fn first_error(rendered: &str) -> String {
    const MAX: usize = 400;
    let lines: Vec<&str> = rendered.lines().map(str::trim).collect();
    let found = lines.iter().enumerate().find_map(|(i, l)| {
        let mut message = l.strip_prefix('×')?.trim().to_string();
        let rest = &lines[i + 1..];
        // The diagnostic ends where the next one starts.
        let rest = &rest[..rest
            .iter()
            .position(|l| l.starts_with(['×', '⚠']))
            .unwrap_or(rest.len())];
        let mut at = None;
        for next in rest {
            // miette draws the place as `╭─[file:line:col]`; a snippet
            // too long to draw is written `at file:line:col`.
            if let Some((_, loc)) = next.split_once("─[") {
                at = Some(loc.trim_end_matches(']').to_string());
                break;
            }
            if let Some(loc) = next.strip_prefix("at ") {
                at = Some(loc.to_string());
                break;
            }
            if next.is_empty() || next.starts_with("help:") {
                break;
            }
            // A long message wraps onto the next lines.
            message.push(' ');
            message.push_str(next);
        }
        if let Some(help) = rest.iter().find_map(|l| l.strip_prefix("help:")) {
            message = format!("{message} (help: {})", help.trim());
        }
        Some(match at {
            Some(at) => format!("{at}: {message}"),
            None => message,
        })
    });
    let line = found.unwrap_or_else(|| {
        lines.iter().find(|l| !l.is_empty()).map_or_else(
            || "the mappings do not compile".to_string(),
            |l| l.to_string(),
        )
    });
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The `mappings` object of `/healthz`: the revision served, and whether
/// the files on disk are `current`, `refused` (with since when and the
/// first error), or compile to another revision than the fleet's, which
/// this replica decides by (`fleet`, with the files' revision).
pub fn health_json(files: &FilesState, revision: &str) -> Value {
    let disk = files.on_disk().filter(|d| d != revision);
    match files.refusal() {
        None if disk.is_some() => json!({
            "revision": revision,
            "files": "fleet",
            "files_revision": disk,
            "refused_since": null,
            "error": null,
        }),
        None => json!({
            "revision": revision,
            "files": "current",
            "refused_since": null,
            "error": null,
        }),
        Some(r) => json!({
            "revision": revision,
            "files": "refused",
            "refused_since": rfc3339(r.since_ms),
            "error": r.error,
        }),
    }
}

/// `ms` since 1970 as RFC 3339 (the number itself if out of range).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}
