//! The reloads the ops console lists: every revision put forward (at the
//! start, by a save, by SIGHUP, by the fleet), whether it went live and,
//! when refused, its diagnostics; the files of each live one, for a diff.
//! Recorded off the async workers; a store that cannot take it is logged,
//! never a reason to refuse the reload itself.

use super::store::views::NewReload;
use super::store::{Bundle, Store};
use std::sync::Arc;

/// What became of a revision put forward.
pub enum Outcome<'a> {
    /// Live; its files.
    Live(Option<&'a Bundle>),
    /// Refused, with the diagnostics (`l3map check`'s text).
    Refused(&'a str),
}

/// Records a reload in `store`, on the blocking pool.
pub fn record(store: &Arc<Store>, revision: &str, cause: &'static str, outcome: Outcome<'_>) {
    let (live, diagnostics, files) = match outcome {
        Outcome::Live(b) => (
            true,
            None,
            b.and_then(|b| serde_json::to_string(&b.files).ok()),
        ),
        Outcome::Refused(why) => (false, Some(plain(why)), None),
    };
    let (store, revision) = (store.clone(), revision.to_string());
    tokio::task::spawn_blocking(move || {
        let r = NewReload {
            revision: &revision,
            live,
            cause,
            diagnostics: diagnostics.as_deref(),
            bundle: files.as_deref(),
        };
        if let Err(e) = store.console().record_reload(&r) {
            tracing::warn!(error = %e, "could not record the reload for the ops console");
        }
    });
}

/// The text without terminal colours (miette's, when a terminal asked).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            // CSI: parameters and intermediates up to a final byte @..~.
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_are_taken_out_of_diagnostics() {
        assert_eq!(
            super::plain("\u{1b}[31merror\u{1b}[0m: at a.l3map:3:1"),
            "error: at a.l3map:3:1"
        );
    }
}
