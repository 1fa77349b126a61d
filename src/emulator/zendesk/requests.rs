//! The request log: every authenticated API request as the emulator saw
//! it (method, path, query, the `Host` it was sent to, the token's
//! fingerprint, its status, when it arrived and when it was answered), for
//! a test to see from Zendesk's side who called what and when. A fleet
//! test gives each replica its own address in front of the emulator, so
//! `host` tells the replicas apart (which one polled the export, and
//! whether two ever did at once).
//!
//! `GET /__l3map/requests?after=SEQ&path=PREFIX` (no token, not counted)
//! answers `{"requests": [...], "last": SEQ}`: the entries after `after`
//! (0: all kept) whose path starts with `path`, oldest first, and the
//! newest entry's `seq` to ask after next time. The latest
//! [`MAX_LOGGED`] entries are kept.

use serde::Serialize;
use serde_json::json;
use std::collections::{HashMap, VecDeque};

/// Entries kept, the most recent: a session that runs for hours.
pub const MAX_LOGGED: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct Log {
    last: u64,
    kept: VecDeque<Logged>,
}

/// One request.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Logged {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The `Host` header: the address the client sent the request to.
    pub host: Option<String>,
    /// The token's fingerprint (never the token).
    pub token: String,
    pub status: u16,
    /// Arrival and answer, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub done_ms: i64,
}

/// Milliseconds since the Unix epoch, as the log writes them.
pub(super) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Log {
    /// Records `entry` under the next sequence number (its `seq` is set).
    pub(super) fn push(&mut self, mut entry: Logged) {
        self.last += 1;
        entry.seq = self.last;
        while self.kept.len() >= MAX_LOGGED {
            self.kept.pop_front();
        }
        self.kept.push_back(entry);
    }

    /// The answer to `GET /__l3map/requests` with query `q`.
    pub(super) fn answer(&self, q: &HashMap<String, String>) -> serde_json::Value {
        let after: u64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
        let prefix = q.get("path").map(String::as_str).unwrap_or("");
        let requests: Vec<&Logged> = self
            .kept
            .iter()
            .filter(|e| e.seq > after && e.path.starts_with(prefix))
            .collect();
        json!({"requests": requests, "last": self.last})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Logged {
        Logged {
            seq: 0,
            method: "GET".into(),
            path: path.into(),
            query: None,
            host: Some("127.0.0.1:1".into()),
            token: "fp".into(),
            status: 200,
            at_ms: 1,
            done_ms: 2,
        }
    }

    #[test]
    fn entries_are_numbered_filtered_and_bounded() {
        let mut log = Log::default();
        for i in 0..(MAX_LOGGED + 5) {
            log.push(entry(if i % 2 == 0 { "/a" } else { "/b" }));
        }
        assert_eq!(log.kept.len(), MAX_LOGGED, "the oldest went");
        let q = |s: &str| crate::emulator::zendesk::form::parse_query(Some(s));
        let v = log.answer(&q(&format!("after={}&path=/a", MAX_LOGGED)));
        let seqs: Vec<u64> = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [100_001, 100_003, 100_005]);
        assert_eq!(v["last"], 100_005);
    }
}
