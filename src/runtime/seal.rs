//! OAuth grants at rest: sealed with ChaCha20-Poly1305 before they reach
//! the store, opened only by a process holding the key.
//!
//! Why this shape:
//! - ring's AEAD (already in the tree through rustls): a well-kept,
//!   constant-time implementation; a random 96-bit nonce per write from
//!   the system CSPRNG is safe at one write per refresh.
//! - The associated data binds the blob to its row: `connection`,
//!   `generation` and `flow`. A blob copied to another connection, or a
//!   generation edited by hand, fails authentication like a flipped byte.
//! - Anything that does not open is `undecryptable`: loud, the connection
//!   stops, never a panic, never a fallback to a configured or plaintext
//!   token. Other connections are not affected.
//!
//! Threat model: docs/RUNTIME.md, "Credentials".

use std::sync::Arc;

use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connectors::Secret;
use crate::runtime::store::{CredentialState, RefreshLease, SealedCredential, Store, StoreError};

/// The version tag at the head of the associated data: a later format
/// changes it, and an old reader refuses the new blob instead of guessing.
const AAD_TAG: &str = "l3map-credential-v1";

/// What went wrong with a stored grant. Never carries a token or the key.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The configured key is not 32 bytes in base64 or hex.
    #[error("the credentials key {0}; generate one with `openssl rand -base64 32`")]
    BadKey(&'static str),
    #[error("connection `{connection}`: stored credentials are undecryptable: {reason}")]
    Undecryptable { connection: String, reason: String },
    #[error("connection `{0}`: sealing its credentials failed (no system randomness?)")]
    Seal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The 32-byte key grants are sealed with, from `[credentials] key_env` or
/// `key_file`. `Debug` shows its id only.
pub struct SealKey {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", self.id)
    }
}

impl SealKey {
    /// 32 bytes written as base64 (standard or URL-safe, padded or not) or
    /// as 64 hex digits; surrounding whitespace is ignored.
    pub fn parse(text: &Secret) -> Result<SealKey, SealError> {
        let t = text.expose().trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| SealError::BadKey("is not valid hex"))?
        } else {
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|e| e.decode(t).ok())
                .ok_or(SealError::BadKey("is neither base64 nor 64 hex digits"))?
        };
        if bytes.len() != 32 {
            return Err(SealError::BadKey("must be exactly 32 bytes"));
        }
        let id = {
            let mut h = Sha256::new();
            h.update(b"l3map-credentials-key-id\0");
            h.update(&bytes);
            hex::encode(&h.finalize()[..4])
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| SealError::BadKey("must be exactly 32 bytes"))?;
        Ok(SealKey {
            key: LessSafeKey::new(key),
            id,
        })
    }

    /// A digest prefix of the key (not reversible): which key sealed a row.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(connection: &str, generation: i64, flow: &str) -> Vec<u8> {
        format!("{AAD_TAG}\0{connection}\0{generation}\0{flow}").into_bytes()
    }

    /// Seals `plain` for the row (`connection`, `generation`, `flow`):
    /// (nonce, ciphertext with its tag).
    fn seal(
        &self,
        connection: &str,
        generation: i64,
        flow: &str,
        plain: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal(connection.into()))?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(connection, generation, flow)),
                &mut buf,
            )
            .map_err(|_| SealError::Seal(connection.into()))?;
        Ok((nonce.to_vec(), buf))
    }

    /// Opens a stored row, or says why not.
    fn open(&self, row: &SealedCredential) -> Result<Vec<u8>, String> {
        if row.key_id != self.id {
            return Err(format!(
                "sealed with another key (key id {}; the configured key's id is {})",
                row.key_id, self.id
            ));
        }
        let nonce: [u8; NONCE_LEN] = row
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| "its nonce is not 12 bytes: the row was changed".to_string())?;
        let mut buf = row.sealed.clone();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(&row.connection, row.generation, &row.flow)),
                &mut buf,
            )
            .map_err(|_| {
                "the row does not authenticate: it was changed, or moved from another connection or generation"
                    .to_string()
            })?;
        Ok(plain.to_vec())
    }
}

/// A grant in the clear, as the connectors use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub access: Secret,
    pub refresh: Option<Secret>,
    /// Wall clock, ms since 1970: for `auth status` and a restart's first
    /// decision only.
    pub access_expires_ms: Option<i64>,
    pub refresh_expires_ms: Option<i64>,
    /// Salesforce answers the instance to call with every grant.
    pub instance_url: Option<String>,
}

/// The sealed plaintext: JSON, never written anywhere but into the AEAD.
#[derive(Serialize, Deserialize)]
struct Plain {
    access: String,
    #[serde(default)]
    refresh: Option<String>,
    #[serde(default)]
    instance_url: Option<String>,
    /// The standby lineage's refresh token (docs/RUNTIME.md, "The
    /// standby"): absent in rows written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    standby: Option<String>,
}

/// A grant as loaded: its generation and what the store says of it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub generation: i64,
    pub flow: String,
    pub state: CredentialState,
    /// A refresh was sent and its answer never stored (see
    /// [`Vault::begin_refresh`]).
    pub refreshing_since_ms: Option<i64>,
    pub grant: Grant,
    /// The refresh token of an independent lineage, kept to recover from a
    /// refresh whose answer was lost (docs/RUNTIME.md, "The standby").
    pub standby: Option<Secret>,
}

/// The store and the key together: what the connectors' sessions persist
/// grants through. Calls are synchronous and short (one SQLite
/// transaction each); async callers run them on the blocking pool.
#[derive(Clone, Debug)]
pub struct Vault {
    store: Arc<Store>,
    key: Arc<SealKey>,
}

impl Vault {
    pub fn new(store: Arc<Store>, key: Arc<SealKey>) -> Vault {
        Vault { store, key }
    }

    /// The connection's grant, opened. A row that does not open is marked
    /// `undecryptable` (once) and is the error; a row this key opens
    /// although it was marked so (by a process with another key) is
    /// marked `ok` again.
    pub fn load(&self, connection: &str) -> Result<Option<Loaded>, SealError> {
        let Some(row) = self.store.load_credential(connection)? else {
            return Ok(None);
        };
        let generation = row.sealed.generation;
        let plain = match self.key.open(&row.sealed) {
            Ok(p) => p,
            Err(reason) => {
                if row.state != CredentialState::Undecryptable {
                    self.store.mark_credential(
                        connection,
                        generation,
                        CredentialState::Undecryptable,
                        Some("undecryptable"),
                    )?;
                }
                return Err(SealError::Undecryptable {
                    connection: connection.into(),
                    reason,
                });
            }
        };
        let plain: Plain =
            serde_json::from_slice(&plain).map_err(|_| SealError::Undecryptable {
                connection: connection.into(),
                reason: "the opened grant is not one l3map wrote".into(),
            })?;
        let mut state = row.state;
        if state == CredentialState::Undecryptable {
            self.store
                .mark_credential(connection, generation, CredentialState::Ok, None)?;
            state = CredentialState::Ok;
        }
        Ok(Some(Loaded {
            generation,
            flow: row.sealed.flow,
            state,
            refreshing_since_ms: row.refreshing_since_ms,
            grant: Grant {
                access: Secret::new(plain.access),
                refresh: plain.refresh.map(Secret::new),
                access_expires_ms: row.sealed.access_expires_ms,
                refresh_expires_ms: row.sealed.refresh_expires_ms,
                instance_url: plain.instance_url,
            },
            standby: plain.standby.map(Secret::new),
        }))
    }

    /// Durable intent before a refresh request goes out, held as a lease
    /// of `lease` (see [`RefreshLease`]); `mine`: the stamp this writer's
    /// own earlier intent was written with.
    pub fn begin_refresh(
        &self,
        connection: &str,
        generation: i64,
        mine: Option<i64>,
        lease: std::time::Duration,
    ) -> Result<RefreshLease, SealError> {
        let now = crate::runtime::store::now_ms();
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        Ok(self.store.begin_refresh(
            connection,
            generation,
            now,
            mine,
            now.saturating_sub(lease),
        )?)
    }

    /// Seals and stores `grant` as generation `expected + 1` (1 when the
    /// connection has none), if the stored one is still `expected`.
    /// `false`: another writer stored first; nothing was written.
    pub fn commit(
        &self,
        connection: &str,
        flow: &str,
        expected: Option<i64>,
        grant: &Grant,
    ) -> Result<bool, SealError> {
        self.commit_standby(connection, flow, expected, grant, None)
    }

    /// [`Vault::commit`], sealing `standby` (a second lineage's refresh
    /// token) with the grant; `None` stores none.
    pub fn commit_standby(
        &self,
        connection: &str,
        flow: &str,
        expected: Option<i64>,
        grant: &Grant,
        standby: Option<&Secret>,
    ) -> Result<bool, SealError> {
        let generation = expected.unwrap_or(0) + 1;
        let plain = serde_json::to_vec(&Plain {
            access: grant.access.expose().into(),
            refresh: grant.refresh.as_ref().map(|s| s.expose().into()),
            instance_url: grant.instance_url.clone(),
            standby: standby.map(|s| s.expose().into()),
        })
        .map_err(|_| SealError::Seal(connection.into()))?;
        let (nonce, sealed) = self.key.seal(connection, generation, flow, &plain)?;
        let row = SealedCredential {
            connection: connection.into(),
            generation,
            flow: flow.into(),
            key_id: self.key.id().into(),
            nonce,
            sealed,
            access_expires_ms: grant.access_expires_ms,
            refresh_expires_ms: grant.refresh_expires_ms,
        };
        Ok(self.store.commit_credential(expected, &row)?)
    }

    /// The stored state of the connection's grant (no key needed).
    pub fn state(&self, connection: &str) -> Result<Option<CredentialState>, SealError> {
        Ok(self.store.load_credential(connection)?.map(|r| r.state))
    }

    /// Records the vendor's refusal of `generation` (`needs_login`) or
    /// its return to health.
    pub fn mark(
        &self,
        connection: &str,
        generation: i64,
        state: CredentialState,
        error: Option<&str>,
    ) -> Result<(), SealError> {
        Ok(self
            .store
            .mark_credential(connection, generation, state, error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Arc<SealKey> {
        let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        Arc::new(SealKey::parse(&Secret::new(text)).unwrap())
    }

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        (dir, store)
    }

    fn grant(access: &str, refresh: &str) -> Grant {
        Grant {
            access: Secret::new(access),
            refresh: Some(Secret::new(refresh)),
            access_expires_ms: Some(1),
            refresh_expires_ms: None,
            instance_url: None,
        }
    }

    #[test]
    fn keys_are_32_bytes_of_base64_or_hex() {
        assert!(SealKey::parse(&Secret::new("ab".repeat(32))).is_ok());
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfb; 32]);
        assert!(SealKey::parse(&Secret::new(url)).is_ok());
        for bad in ["", "short", &"ab".repeat(31), "!!!!"] {
            let e = SealKey::parse(&Secret::new(bad)).unwrap_err().to_string();
            assert!(e.contains("openssl rand -base64 32"), "{e}");
        }
    }

    #[test]
    fn a_grant_round_trips_and_generations_compare_and_swap() {
        let (_d, store) = store();
        let v = Vault::new(store.clone(), key(7));
        assert!(v.load("desk").unwrap().is_none());
        assert!(v
            .commit("desk", "zendesk_code", None, &grant("a1", "r1"))
            .unwrap());
        // A second writer seeding the same empty slot loses.
        assert!(!v
            .commit("desk", "zendesk_code", None, &grant("x", "y"))
            .unwrap());
        let l = v.load("desk").unwrap().unwrap();
        assert_eq!((l.generation, l.grant.access.expose()), (1, "a1"));
        let lease = std::time::Duration::from_secs(30);
        let RefreshLease::Taken(mine) = v.begin_refresh("desk", 1, None, lease).unwrap() else {
            panic!("the first intent is taken");
        };
        // Another writer waits for it; its writer may renew it; a
        // generation that is not stored has moved on.
        assert_eq!(
            v.begin_refresh("desk", 1, None, lease).unwrap(),
            RefreshLease::Held
        );
        assert!(matches!(
            v.begin_refresh("desk", 1, Some(mine), lease).unwrap(),
            RefreshLease::Taken(_)
        ));
        assert_eq!(
            v.begin_refresh("desk", 2, None, lease).unwrap(),
            RefreshLease::MovedOn
        );
        // A lease past its time (its writer died) is taken over.
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert!(matches!(
            v.begin_refresh("desk", 1, None, std::time::Duration::ZERO)
                .unwrap(),
            RefreshLease::Taken(_)
        ));
        assert!(v
            .load("desk")
            .unwrap()
            .unwrap()
            .refreshing_since_ms
            .is_some());
        assert!(v
            .commit("desk", "zendesk_code", Some(1), &grant("a2", "r2"))
            .unwrap());
        // The loser of a race (expected 1 again) writes nothing.
        assert!(!v
            .commit("desk", "zendesk_code", Some(1), &grant("a3", "r3"))
            .unwrap());
        let l = v.load("desk").unwrap().unwrap();
        assert_eq!((l.generation, l.grant.refresh.unwrap().expose()), (2, "r2"));
        assert_eq!(l.refreshing_since_ms, None);
    }

    #[test]
    fn a_standby_is_sealed_with_the_grant_and_dropped_by_a_plain_commit() {
        let (_d, store) = store();
        let v = Vault::new(store.clone(), key(9));
        let standby = Secret::new("standby-refresh");
        assert!(v
            .commit_standby(
                "desk",
                "zendesk_code",
                None,
                &grant("a1", "r1"),
                Some(&standby)
            )
            .unwrap());
        let l = v.load("desk").unwrap().unwrap();
        assert_eq!(
            l.standby.as_ref().map(Secret::expose),
            Some("standby-refresh")
        );
        // A login (a plain commit) starts a new lineage: no standby yet.
        assert!(v
            .commit("desk", "zendesk_code", Some(1), &grant("a2", "r2"))
            .unwrap());
        assert!(v.load("desk").unwrap().unwrap().standby.is_none());
    }

    #[test]
    fn wrong_key_tamper_and_moved_rows_are_undecryptable_not_plaintext() {
        let (dir, store) = store();
        let v = Vault::new(store.clone(), key(1));
        v.commit("desk", "zendesk_code", None, &grant("acc-desk", "ref-desk"))
            .unwrap();
        v.commit("crm", "zendesk_code", None, &grant("acc-crm", "ref-crm"))
            .unwrap();

        let other = Vault::new(store.clone(), key(2));
        let e = other.load("desk").unwrap_err().to_string();
        assert!(e.contains("another key"), "{e}");
        assert!(!e.contains("acc-desk") && !e.contains("ref-desk"));
        let s = store.load_credential("desk").unwrap().unwrap();
        assert_eq!(s.state, CredentialState::Undecryptable);
        // The right key opens it again and clears the state.
        assert!(v.load("desk").unwrap().is_some());
        assert_eq!(
            store.load_credential("desk").unwrap().unwrap().state,
            CredentialState::Ok
        );

        let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
        // A flipped byte of the sealed blob.
        db.execute_batch(
            "UPDATE credentials SET sealed = CAST(substr(sealed,1,3) || X'00' || substr(sealed,5) AS BLOB) WHERE connection = 'crm'",
        )
        .unwrap();
        let e = v.load("crm").unwrap_err().to_string();
        assert!(e.contains("does not authenticate"), "{e}");
        // An edited generation.
        db.execute_batch("UPDATE credentials SET generation = 5 WHERE connection = 'desk'")
            .unwrap();
        assert!(v.load("desk").is_err());
        db.execute_batch("UPDATE credentials SET generation = 1 WHERE connection = 'desk'")
            .unwrap();
        assert!(v.load("desk").is_ok());
        // desk's blob moved into another connection's row.
        db.execute_batch(
            "UPDATE credentials SET (nonce, sealed) = (SELECT nonce, sealed FROM credentials WHERE connection = 'desk') WHERE connection = 'crm'",
        )
        .unwrap();
        let e = v.load("crm").unwrap_err().to_string();
        assert!(e.contains("does not authenticate"), "{e}");
        // desk is unaffected by its neighbour.
        assert!(v.load("desk").unwrap().is_some());
    }

    #[test]
    fn no_token_bytes_reach_the_store_file() {
        let (dir, store) = store();
        let v = Vault::new(store.clone(), key(3));
        v.commit(
            "desk",
            "zendesk_code",
            None,
            &grant("ACCESS-canary-123", "REFRESH-canary-456"),
        )
        .unwrap();
        drop(v);
        drop(store);
        for f in ["state.db", "state.db-wal", "state.db-shm"] {
            let Ok(bytes) = std::fs::read(dir.path().join(f)) else {
                continue;
            };
            for canary in ["ACCESS-canary", "REFRESH-canary"] {
                assert!(
                    !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                    "{canary} in {f}"
                );
            }
        }
    }

    /// Two processes on one store file: the second is held off while the
    /// first lives, and takes its intent over the moment it dies (its OS
    /// lock goes with it), long before the lease runs out.
    #[test]
    fn a_dead_writers_intent_is_taken_over_at_once() {
        let (dir, store) = store();
        let v = Vault::new(store.clone(), key(4));
        assert!(v
            .commit("desk", "zendesk_code", None, &grant("a1", "r1"))
            .unwrap());
        let lease = std::time::Duration::from_secs(3600);
        assert!(matches!(
            v.begin_refresh("desk", 1, None, lease).unwrap(),
            RefreshLease::Taken(_)
        ));
        let other = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
        let w = Vault::new(other, key(4));
        assert_eq!(
            w.begin_refresh("desk", 1, None, lease).unwrap(),
            RefreshLease::Held
        );
        drop(v);
        drop(store);
        assert!(matches!(
            w.begin_refresh("desk", 1, None, lease).unwrap(),
            RefreshLease::Taken(_)
        ));
    }
}
