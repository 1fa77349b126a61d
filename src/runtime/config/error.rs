//! The configuration layer's one error type.
//!
//! Every message is one line, names the file (or variable, or connection)
//! and says what to fix, and never contains a credential: the commands
//! print [`Display`](std::fmt::Display), and tests and docs/RUNTIME.md pin
//! those lines. As a [`miette::Diagnostic`] each error also has a code, a
//! help, and, where it comes from a place in `l3map.toml`, that place: the
//! file's text (credentials masked, see `literal::redact`) with a label.

use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    /// Returned when the configuration file cannot be read: missing,
    /// unreadable, too large or not UTF-8.
    #[error("{}: cannot read the configuration: {source}", path.display())]
    #[diagnostic(
        code(l3map::config::read),
        help("name the file with --config or $L3MAP_CONFIG, or start where l3map.toml is")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Returned when the file is not TOML, or a key or value in it is not
    /// one l3map takes: an unknown key, a wrong type, a number out of
    /// range, a malformed address, URL or level.
    #[error("{}:{line}:{column}: {message}", path.display())]
    #[diagnostic(
        code(l3map::config::invalid),
        help("docs/RUNTIME.md lists every key of l3map.toml with its default and range")
    )]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        /// The file's text, credentials masked; `None` when the text is
        /// not TOML, so nothing in it could be told apart as a secret.
        /// Shared: every error of one file holds the same text, and an
        /// `Arc` keeps the error small.
        #[source_code]
        text: Option<Arc<NamedSource<String>>>,
        #[label("here")]
        span: Option<SourceSpan>,
    },
    /// Returned when a key named like a credential (`token`, `secret`,
    /// ...) holds a value anywhere in the file.
    #[error(
        "{}:{line}:{column}: `{key}` holds a literal secret, and credentials never go in the configuration; {hint}",
        path.display()
    )]
    #[diagnostic(code(l3map::config::literal_secret), help("{hint}"))]
    LiteralSecret {
        path: PathBuf,
        /// Dotted, e.g. `webhook.secret`.
        key: String,
        line: usize,
        column: usize,
        hint: String,
        /// The file's text with every literal secret masked.
        #[source_code]
        text: Option<Arc<NamedSource<String>>>,
        #[label("a credential written into the file")]
        span: Option<SourceSpan>,
    },
    /// Returned when a credential's environment variable is unset, empty
    /// or not UTF-8.
    #[error("{}environment variable `{var}` {problem}; export it before starting l3map", owner_prefix(.owner))]
    #[diagnostic(
        code(l3map::config::secret_env),
        help("export the variable in the environment l3map starts in")
    )]
    SecretEnv {
        /// Whose secret it is, e.g. "`webhook.secret_env`" or
        /// "connection `desk` `token`"; empty when resolved on its own.
        owner: String,
        var: String,
        problem: &'static str,
    },
    /// Returned when the credentials key was read but is not 32 bytes.
    #[error("{owner}: {reason}")]
    #[diagnostic(code(l3map::config::credentials_key))]
    CredentialsKey { owner: String, reason: String },
    /// Returned when a credential's file cannot be read or is empty.
    #[error("{}cannot read secret file {}: {reason}", owner_prefix(.owner), path.display())]
    #[diagnostic(
        code(l3map::config::secret_file),
        help("write the credential into the file and let l3map read it")
    )]
    SecretFile {
        owner: String,
        path: PathBuf,
        reason: String,
    },
    /// Returned when an `L3MAP_*` override holds a value its key does not
    /// take.
    #[error("environment variable `{var}`: {message}")]
    #[diagnostic(
        code(l3map::config::env),
        help("unset the variable or give it a value the key takes (docs/RUNTIME.md lists the L3MAP_* overrides)")
    )]
    Env { var: String, message: String },
    /// Returned when more than one credential is missing or unreadable:
    /// all of them at once, so one start names every variable to export.
    #[error(
        "{} credentials are missing or unreadable: {}; export the variables (or write the files) and start again",
        problems.len(),
        listed(problems)
    )]
    #[diagnostic(
        code(l3map::config::credentials),
        help("export the variables (or write the files) and start again")
    )]
    Credentials {
        #[related]
        problems: Vec<ConfigError>,
    },
}

fn owner_prefix(owner: &str) -> String {
    if owner.is_empty() {
        String::new()
    } else {
        format!("{owner}: ")
    }
}

/// The problems joined into one line, each without the advice the whole
/// line ends with once.
fn listed(problems: &[ConfigError]) -> String {
    const EXPORT: &str = "; export it before starting l3map";
    problems
        .iter()
        .map(|p| {
            let shown = p.to_string();
            match shown.strip_suffix(EXPORT) {
                Some(short) => short.to_string(),
                None => shown,
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Credential problems as one error: none is fine, one is itself, several
/// are [`ConfigError::Credentials`].
pub fn all_at_once(mut problems: Vec<ConfigError>) -> Result<(), ConfigError> {
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        _ => Err(ConfigError::Credentials { problems }),
    }
}
