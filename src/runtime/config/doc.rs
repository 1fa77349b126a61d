//! The l3map.toml being read: its text, the file to name in errors, and
//! the directory relative paths in it are taken from. Every error about a
//! place in the file is made here, so each names `FILE:LINE:COLUMN` the
//! same way and carries the same (masked) text for its label.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;
use toml::Spanned;

use super::error::ConfigError;

pub(super) struct Doc<'a> {
    text: &'a str,
    path: &'a Path,
    base_dir: &'a Path,
    /// The text with every credential masked, once it parsed as TOML:
    /// what a diagnostic may show. `None` before, since text that is not
    /// TOML cannot be searched for secrets.
    masked: Option<Arc<NamedSource<String>>>,
}

impl<'a> Doc<'a> {
    pub(super) fn new(text: &'a str, path: &'a Path, base_dir: &'a Path) -> Doc<'a> {
        Doc {
            text,
            path,
            base_dir,
            masked: None,
        }
    }

    /// This document, whose errors show `masked` (byte for byte as long as
    /// the text, so spans still fit).
    pub(super) fn showing(self, masked: String) -> Doc<'a> {
        debug_assert_eq!(masked.len(), self.text.len());
        let name = self.path.display().to_string();
        Doc {
            masked: Some(Arc::new(
                NamedSource::new(name, masked).with_language("TOML"),
            )),
            ..self
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub(super) fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    /// The text a diagnostic shows, named as the file is.
    pub(super) fn shown(&self) -> Option<Arc<NamedSource<String>>> {
        self.masked.clone()
    }

    pub(super) fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position(span.start);
        ConfigError::Invalid {
            path: self.path(),
            line,
            column,
            message: message.into(),
            text: self.shown(),
            span: Some(span.into()),
        }
    }

    pub(super) fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        // Without the input attached, the error's Display is its message
        // followed by "in `a.b`", the only public way to the key path.
        let shown = e.to_string();
        let keys = shown
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("in `"))
            .and_then(|l| l.strip_suffix('`'))
            .filter(|k| !k.is_empty());
        // Numbers are read as i64 only to range-check them ourselves.
        let what = e
            .message()
            .replace("expected i64", "expected a whole number")
            .lines()
            .collect::<Vec<_>>()
            .join("; ");
        let message = match keys {
            Some(keys) => format!("`{keys}`: {what}"),
            None => what,
        };
        self.invalid(e.span().unwrap_or(0..0), message)
    }

    /// `p` as written when absolute, else from the file's directory, so
    /// the result does not depend on where `run` is started.
    pub(super) fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub(super) fn path_value(
        &self,
        key: &str,
        value: &Spanned<String>,
    ) -> Result<PathBuf, ConfigError> {
        if value.get_ref().trim().is_empty() {
            return Err(self.invalid(value.span(), format!("`{key}` is empty; give a path")));
        }
        Ok(self.resolve_path(value.get_ref()))
    }
}
