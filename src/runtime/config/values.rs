//! Checks of single values of l3map.toml, each error pointing at the value
//! and saying what to write instead: ranges, intervals, URLs, log levels,
//! and where a credential is read from.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::doc::Doc;
use super::error::ConfigError;
use super::literal::{has_credentials, is_var_name};
use super::secrets::SecretSource;

/// The longest poll interval or webhook tolerance: beyond a day, polling is
/// effectively off and a signature check no longer stops replays.
pub(super) const MAX_SECS: i64 = 86_400;

impl Doc<'_> {
    /// Exactly one of `{stem}_env` / `{stem}_file`.
    pub(super) fn secret_source(
        &self,
        table: &str,
        stem: &str,
        table_span: Range<usize>,
        env: Option<&Spanned<String>>,
        file: Option<&Spanned<String>>,
    ) -> Result<SecretSource, ConfigError> {
        match (env, file) {
            (Some(_), Some(file)) => Err(self.invalid(
                file.span(),
                format!("`{table}` has both `{stem}_env` and `{stem}_file`; keep one"),
            )),
            (None, None) => Err(self.invalid(
                table_span,
                format!(
                    "`{table}` needs its {stem}: add {stem}_env = \"VAR\" or {stem}_file = \"/path\""
                ),
            )),
            (Some(env), None) => {
                let var = env.get_ref();
                // A value that is not a variable name may well be the secret
                // pasted in the wrong key: refuse it without repeating it.
                if !is_var_name(var) {
                    return Err(self.invalid(
                        env.span(),
                        format!(
                            "`{table}.{stem}_env` must name an environment variable (letters, digits and `_`), not hold the secret itself"
                        ),
                    ));
                }
                Ok(SecretSource::Env(var.clone()))
            }
            (None, Some(file)) => Ok(SecretSource::File(
                self.path_value(&format!("{table}.{stem}_file"), file)?,
            )),
        }
    }

    pub(super) fn ranged(
        &self,
        key: &str,
        v: &Spanned<i64>,
        min: i64,
        max: i64,
    ) -> Result<u64, ConfigError> {
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(self.invalid(
                v.span(),
                format!("`{key}` = {n} is out of range; use {min} to {max}"),
            ));
        }
        Ok(n as u64)
    }

    pub(super) fn interval(
        &self,
        key: &str,
        v: &Spanned<i64>,
    ) -> Result<Option<Duration>, ConfigError> {
        let n = *v.get_ref();
        if !(0..=MAX_SECS).contains(&n) {
            return Err(self.invalid(
                v.span(),
                format!("`{key}` = {n} is out of range; use 1 to {MAX_SECS} seconds, or 0 to turn polling off"),
            ));
        }
        Ok((n > 0).then(|| Duration::from_secs(n as u64)))
    }

    pub(super) fn url(&self, key: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
        let text = v.get_ref().trim();
        // Checked first so the message below never repeats a password.
        if has_credentials(text) {
            return Err(self.invalid(
                v.span(),
                format!("`{key}` carries credentials; remove them from the URL (the mapping's connection block names them)"),
            ));
        }
        match reqwest::Url::parse(text).ok() {
            Some(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(text.to_string())
            }
            _ => Err(self.invalid(
                v.span(),
                format!(
                    "`{key}` = \"{text}\" is not an http(s) URL; write it like \"https://acme.zendesk.com\""
                ),
            )),
        }
    }

    pub(super) fn log_level(&self, v: &Spanned<String>) -> Result<String, ConfigError> {
        const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
        let level = v.get_ref().trim();
        // A bare word must be a level: EnvFilter would take "verbose" as a
        // target name and quietly log nothing of ours.
        let is_filter = level.contains(['=', ',', '[']);
        let ok = if is_filter {
            tracing_subscriber::EnvFilter::try_new(level).is_ok()
        } else {
            LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level))
        };
        if !ok {
            return Err(self.invalid(
                v.span(),
                format!(
                    "`log.level` = \"{level}\" is not a level; use trace, debug, info, warn, error or off, or a filter such as \"info,l3map=debug\""
                ),
            ));
        }
        Ok(level.to_string())
    }
}
