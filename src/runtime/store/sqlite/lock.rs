//! One sender per store: an flock that makes a second `l3map run` on the
//! same SQLite file refuse to start instead of sending the same actions
//! twice.

use super::SqliteStore;
use crate::runtime::store::error::StoreError;
use std::path::{Path, PathBuf};

impl SqliteStore {
    /// An OS lock (flock) on the database file itself, on its own open
    /// file description: it follows the file, not the path, so a second
    /// runtime reaching the same store through a symlink or a hard link is
    /// refused too. SQLite's locks are POSIX record locks, which flock
    /// neither takes nor disturbs on Unix; elsewhere, where a whole-file
    /// lock would block SQLite's own, the lock is on `<state>.lock` beside
    /// the store's real path. The OS drops it when the process dies, so a
    /// crash never leaves a store that cannot be started. The pid of the
    /// holder is written to `<state>.lock` for the next one's message.
    pub(super) fn claim_sender(&self) -> Result<(), StoreError> {
        use std::io::{Read, Seek, Write};
        let mut held = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut name = real.as_os_str().to_owned();
        name.push(".lock");
        let pid_path = PathBuf::from(name);
        let refuse = |what: String| {
            StoreError::Refused(format!("state store {}: {what}", self.path.display()))
        };
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| refuse(format!("cannot open {}: {e}", path.display())))
        };
        let lock_path = if cfg!(unix) {
            real.clone()
        } else {
            pid_path.clone()
        };
        let lock = open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                if let Ok(mut f) = std::fs::File::open(&pid_path) {
                    let _ = f.read_to_string(&mut pid);
                }
                let pid = pid.trim();
                let who = if pid.is_empty() || pid.len() > 20 {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                return Err(refuse(format!(
                    "another `l3map run` is sending from it{who}; two runtimes on one SQLite store would send the same actions twice. Stop that one, or give this one its own `state` in l3map.toml"
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(refuse(format!("cannot lock {}: {e}", lock_path.display())))
            }
        }
        // Who holds it, for the next one's message; the lock is what counts.
        if let Ok(mut f) = open(&pid_path) {
            let _ = f
                .set_len(0)
                .and_then(|()| f.rewind())
                .and_then(|()| writeln!(f, "{}", std::process::id()));
        }
        *held = Some(lock);
        Ok(())
    }
}

/// One process sends from a SQLite store (the lock above): it holds every
/// singleton, always under the same epoch.
/// One process decides from a SQLite store: no fleet revision.
impl crate::runtime::store::api::Revisions for SqliteStore {}

/// One process answers its own retries from memory.
impl crate::runtime::store::api::TurnAnswers for SqliteStore {}

impl crate::runtime::store::api::Leases for SqliteStore {
    fn lease(&self, _name: &str, _ttl: std::time::Duration) -> Result<Option<i64>, StoreError> {
        Ok(Some(0))
    }

    fn release(&self, _name: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn release_all(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn fleet_status(&self) -> Result<crate::runtime::store::types::FleetStatus, StoreError> {
        use crate::runtime::store::types::{FleetStatus, QueueStatus};
        let db = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut q = db.prepare(
            "SELECT connection,
                    SUM(state = 'pending'), SUM(state = 'sending'), SUM(state = 'dead')
             FROM outbox WHERE state IN ('pending', 'sending', 'dead')
             GROUP BY connection ORDER BY connection",
        )?;
        let queues = q
            .query_map([], |r| {
                Ok(QueueStatus {
                    connection: r.get(0)?,
                    pending: r.get::<_, i64>(1)?.max(0) as u64,
                    sending: r.get::<_, i64>(2)?.max(0) as u64,
                    dead: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(FleetStatus {
            queues,
            ..FleetStatus::default()
        })
    }
}
