//! The credentials key `run` seals OAuth grants with: required when a
//! connection keeps its grant in the store, used when one only may (its
//! tokens then survive a restart), and what is said when it is missing.

use crate::ir::Program;
use crate::runtime::clients;
use crate::runtime::config::Config;
use crate::runtime::seal::SealKey;
use std::sync::Arc;

/// The key, if `program` needs or can use one.
pub(super) fn key_for(cfg: &Config, program: &Program) -> Result<Option<Arc<SealKey>>, String> {
    Ok(if program.connections.iter().any(clients::keeps_grant) {
        Some(Arc::new(cfg.credentials.key().map_err(|e| e.to_string())?))
    } else if program.connections.iter().any(clients::may_keep_grant) {
        // Client-credentials tokens are kept when a key is configured.
        match cfg.credentials.key() {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                let salesforce: Vec<&str> = program
                    .connections
                    .iter()
                    .filter(|c| c.kind == crate::ir::Kind::Salesforce && clients::may_keep_grant(c))
                    .map(|c| c.name.as_str())
                    .collect();
                if salesforce.is_empty() {
                    tracing::info!("client_credentials tokens are kept in memory only ({e})");
                } else {
                    tracing::warn!(connections = %salesforce.join(", "), "Salesforce refresh tokens are kept in memory only ({e}): if the connected app rotates them, a restart sends a rotated-out token and the connection needs a login; configure [credentials] key_env or key_file to keep them in the store");
                }
                None
            }
        }
    } else {
        None
    })
}
