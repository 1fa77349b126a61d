//! Where credentials come from, and reading them: the sources l3map.toml
//! names (`*_env`, `*_file`) and the references a mapping's connection
//! block makes (`token env("VAR")`). Only this file reads a secret's
//! value, and then only into a [`Secret`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::ConfigError;
use crate::connectors::Secret;

/// Where a credential is read from; the value itself is only ever held as
/// a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable's name.
    Env(String),
    /// A file's path (already resolved against the config's directory).
    File(PathBuf),
}

impl SecretSource {
    /// Reads the credential now. Errors name the variable or the path,
    /// never what was read.
    pub fn resolve(&self) -> Result<Secret, ConfigError> {
        self.resolve_for("")
    }

    /// [`resolve`](Self::resolve), with errors naming `owner` (whose
    /// secret it is, e.g. "`webhook.secret_env`") first.
    pub(super) fn resolve_for(&self, owner: &str) -> Result<Secret, ConfigError> {
        match self {
            SecretSource::Env(var) => {
                let problem = match std::env::var(var) {
                    Ok(v) if !v.is_empty() => return Ok(Secret::new(v)),
                    Ok(_) => "is empty",
                    Err(std::env::VarError::NotPresent) => "is not set",
                    Err(std::env::VarError::NotUnicode(_)) => "is not valid UTF-8",
                };
                Err(ConfigError::SecretEnv {
                    owner: owner.into(),
                    var: var.clone(),
                    problem,
                })
            }
            SecretSource::File(path) => {
                let unreadable = |reason: String| ConfigError::SecretFile {
                    owner: owner.into(),
                    path: path.clone(),
                    reason,
                };
                // A credential is short; 64 KiB leaves room for a PEM key.
                let text = crate::project::read_limited_text(path, 64 * 1024)
                    .map_err(|e| unreadable(e.to_string()))?;
                // Only the line ending goes: `echo secret > file` adds one,
                // but any other whitespace may be part of the credential.
                let value = text.trim_end_matches(['\n', '\r']);
                if value.trim().is_empty() {
                    return Err(unreadable(
                        "the file is empty; write the credential into it".into(),
                    ));
                }
                Ok(Secret::new(value))
            }
        }
    }

    /// The key of l3map.toml this source was written as: `{stem}_env` or
    /// `{stem}_file`.
    pub(super) fn key(&self, stem: &str) -> String {
        match self {
            SecretSource::Env(_) => format!("{stem}_env"),
            SecretSource::File(_) => format!("{stem}_file"),
        }
    }
}

/// A connection's `webhook_secret` is no credential of its client: it is
/// read where the webhook story picks the one secret that wins (see
/// `config::story::webhook_secret`), and only when it wins, so a secret
/// another place overrides need not be set.
fn is_webhook_secret(r: &crate::ir::SecretRef) -> bool {
    r.key == "webhook_secret"
}

/// The source a mapping's secret reference names, and whose it is
/// ("connection `desk` `token`"). File paths are taken as written
/// (relative to the working directory), as `l3map schema pull` does.
fn reference(conn: &crate::ir::Connection, r: &crate::ir::SecretRef) -> (String, SecretSource) {
    let owner = format!("connection `{}` `{}`", conn.name, r.key);
    let source = match r.source {
        crate::model::SecretSource::Env => SecretSource::Env(r.name.clone()),
        crate::model::SecretSource::File => SecretSource::File(PathBuf::from(&r.name)),
    };
    (owner, source)
}

/// Resolves a mapping connection's secret references (`token env("VAR")`,
/// `client_secret file("/path")`) into secrets keyed by the property they
/// are for; the first that cannot be read is the error.
pub fn connection_secrets(
    conn: &crate::ir::Connection,
) -> Result<BTreeMap<String, Secret>, ConfigError> {
    conn.secrets
        .iter()
        .filter(|r| !is_webhook_secret(r))
        .map(|r| {
            let (owner, source) = reference(conn, r);
            Ok((r.key.clone(), source.resolve_for(&owner)?))
        })
        .collect()
}

/// Every secret reference of `conn` that cannot be read now, each naming
/// the connection, the key and the variable or file.
pub fn connection_secret_problems(conn: &crate::ir::Connection) -> Vec<ConfigError> {
    conn.secrets
        .iter()
        .filter(|r| !is_webhook_secret(r))
        .filter_map(|r| {
            let (owner, source) = reference(conn, r);
            source.resolve_for(&owner).err()
        })
        .collect()
}
