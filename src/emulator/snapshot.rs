//! `l3map emulate --state FILE`: both emulators' records in one versioned
//! JSON file, so a demo or a manual test sequence survives a restart.
//!
//! The file is only ever replaced whole: written to a temporary file in
//! the same directory, flushed to disk, then renamed over the old one, so
//! a crash mid-write leaves the previous snapshot, never half of one. A
//! file that cannot be read back (corrupt, another version, not a
//! snapshot) is refused rather than overwritten: it may hold the only
//! copy of someone's records.

use super::salesforce::{self, SalesforceState};
use super::zendesk::{self, ZendeskState};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub zendesk: ZendeskState,
    pub salesforce: SalesforceState,
}

impl Snapshot {
    /// Both emulators' records as they are now.
    pub fn capture(zd: &zendesk::Handle, sf: &salesforce::Handle) -> Snapshot {
        Snapshot {
            version: VERSION,
            zendesk: zd.state(),
            salesforce: sf.state(),
        }
    }

    /// Puts the records back into both emulators.
    pub fn restore(self, zd: &zendesk::Handle, sf: &salesforce::Handle) {
        zd.restore(self.zendesk);
        sf.restore(self.salesforce);
    }

    /// The file's bytes: pretty JSON, so a person can read and diff it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// The snapshot in `path`; `None` when there is no file yet. The error is
/// one line naming the file and what is wrong with it.
pub fn load(path: &Path) -> Result<Option<Snapshot>, String> {
    let shown = path.display();
    // Records of a local emulator: 256 MiB is far more than any test
    // writes, and `--state /dev/zero` is refused instead of read forever.
    let bytes = match crate::project::read_limited(path, 256 * 1024 * 1024) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the state file {shown}: {e}")),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{shown} is not an emulator state file (not JSON: {e})"))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(format!(
            "{shown} is an emulator state file of version {v}; this l3map reads version {VERSION}"
        ))
        }
        None => {
            return Err(format!(
                "{shown} is not an emulator state file (no \"version\")"
            ))
        }
    }
    serde_path_to_error::deserialize(value)
        .map(Some)
        .map_err(|e| format!("{shown} is not a valid emulator state file: {e}"))
}

/// Replaces `path` with `bytes` atomically (temporary file, fsync, rename).
pub fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".l3map-state-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::salesforce::{SalesforceEmulator, SalesforceOptions};
    use crate::emulator::zendesk::{ZendeskEmulator, ZendeskOptions};

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("l3map-snapshot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn saves_atomically_and_reads_back() {
        let d = dir("roundtrip");
        let path = d.join("state.json");
        assert!(matches!(load(&path), Ok(None)));
        let zd = ZendeskEmulator::new(ZendeskOptions::default()).handle();
        let sf = SalesforceEmulator::new(SalesforceOptions::default()).handle();
        let snap = Snapshot::capture(&zd, &sf);
        save(&path, &snap.encode()).expect("saved");
        save(&path, &snap.encode()).expect("replaced");
        let back = load(&path).expect("readable").expect("present");
        assert_eq!(back.encode(), snap.encode());
        // Only the file itself: no temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_file_it_cannot_read_is_refused_in_one_line() {
        let d = dir("refused");
        let path = d.join("state.json");
        for (body, says) in [
            ("{\"version\": 1, \"zendesk\": ", "not JSON"),
            ("[]", "no \"version\""),
            ("{\"version\": 7}", "version 7; this l3map reads version 1"),
            (
                "{\"version\": 1, \"zendesk\": {}, \"salesforce\": {}}",
                "not a valid emulator state file: salesforce",
            ),
        ] {
            std::fs::write(&path, body).expect("write");
            let e = load(&path).expect_err(body);
            assert!(e.contains(says), "{body}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
