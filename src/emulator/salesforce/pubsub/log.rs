//! The event bus's stored events: replay ids (opaque to clients, 8-byte
//! big-endian counters here) and the retention window (72 hours in
//! Salesforce; events older than that are purged and a replay id that
//! points at them is refused).
//! <https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-message-durability.html>

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Stored {
    pub replay: u64,
    pub at: jiff::Timestamp,
    /// The object whose change this is (its topic, and `/data/ChangeEvents`).
    pub object: String,
    pub schema_id: String,
    /// The event's UUID (`ProducerEvent.id`).
    pub id: String,
    pub payload: Arc<Vec<u8>>,
}

/// Why a CUSTOM replay id is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// Not 8 bytes: no replay id this bus gave out.
    Corrupted,
    /// Older than what the bus still keeps, or never given out.
    Invalid,
}

#[derive(Debug, Default)]
pub struct EventLog {
    events: VecDeque<Stored>,
    /// The last replay id given out (0: none yet).
    last: u64,
    /// The last replay id purged (0: none yet); ids up to it are gone.
    purged: u64,
}

pub fn replay_bytes(r: u64) -> Vec<u8> {
    r.to_be_bytes().to_vec()
}

pub fn replay_of(bytes: &[u8]) -> Result<u64, ReplayError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| ReplayError::Corrupted)?;
    Ok(u64::from_be_bytes(arr))
}

impl EventLog {
    pub fn append(&mut self, mut e: Stored) -> u64 {
        self.last += 1;
        e.replay = self.last;
        self.events.push_back(e);
        self.last
    }

    pub fn last(&self) -> u64 {
        self.last
    }

    /// The position EARLIEST starts after.
    pub fn earliest_cursor(&self) -> u64 {
        self.purged
    }

    /// Drops events older than `retention` at `now`.
    pub fn purge_older(&mut self, now: jiff::Timestamp, retention: Duration) {
        let Ok(span) = jiff::SignedDuration::try_from(retention) else {
            return;
        };
        let Ok(cutoff) = now.checked_sub(span) else {
            return;
        };
        while self.events.front().is_some_and(|e| e.at < cutoff) {
            self.drop_front();
        }
    }

    /// Drops every event up to `through` (all kept events when `None`), as
    /// if the retention window had passed them.
    pub fn expire(&mut self, through: Option<u64>) {
        let through = through.unwrap_or(self.last).min(self.last);
        while self.events.front().is_some_and(|e| e.replay <= through) {
            self.drop_front();
        }
        self.purged = self.purged.max(through);
    }

    fn drop_front(&mut self) {
        if let Some(e) = self.events.pop_front() {
            self.purged = self.purged.max(e.replay);
        }
    }

    /// Whether a subscription may resume after `r`: the event must still be
    /// kept (a position past the purge) and one this bus gave out.
    pub fn check_custom(&self, r: u64) -> Result<(), ReplayError> {
        if r == 0 || r <= self.purged || r > self.last {
            return Err(ReplayError::Invalid);
        }
        Ok(())
    }

    /// Up to `max` events after `cursor` that `want` accepts, oldest first.
    pub fn after(&self, cursor: u64, max: usize, want: impl Fn(&Stored) -> bool) -> Vec<Stored> {
        let start = self.events.partition_point(|e| e.replay <= cursor);
        self.events
            .iter()
            .skip(start)
            .filter(|e| want(e))
            .take(max)
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: jiff::Timestamp, object: &str) -> Stored {
        Stored {
            replay: 0,
            at,
            object: object.into(),
            schema_id: "s".into(),
            id: "e".into(),
            payload: Arc::new(vec![]),
        }
    }

    #[test]
    fn replay_ids_are_8_byte_big_endian_counters() {
        assert_eq!(replay_bytes(258), vec![0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(replay_of(&replay_bytes(258)), Ok(258));
        assert_eq!(replay_of(b"abc"), Err(ReplayError::Corrupted));
    }

    #[test]
    fn custom_replay_resumes_after_the_id_and_filters_by_topic() {
        let now = jiff::Timestamp::now();
        let mut log = EventLog::default();
        for o in ["Account", "Case", "Account", "Account"] {
            log.append(ev(now, o));
        }
        let after: Vec<u64> = log
            .after(1, 10, |e| e.object == "Account")
            .iter()
            .map(|e| e.replay)
            .collect();
        assert_eq!(after, vec![3, 4]);
        assert_eq!(log.after(1, 1, |_| true).len(), 1);
        assert_eq!(log.check_custom(4), Ok(()));
        assert_eq!(log.check_custom(5), Err(ReplayError::Invalid));
        assert_eq!(log.check_custom(0), Err(ReplayError::Invalid));
    }

    #[test]
    fn retention_purges_old_events_and_refuses_their_replay_ids() {
        let now = jiff::Timestamp::now();
        let old = now - jiff::SignedDuration::from_hours(73);
        let mut log = EventLog::default();
        log.append(ev(old, "Account"));
        log.append(ev(now, "Account"));
        log.purge_older(now, Duration::from_secs(72 * 3600));
        assert_eq!(log.len(), 1);
        assert_eq!(log.check_custom(1), Err(ReplayError::Invalid));
        assert_eq!(log.check_custom(2), Ok(()));
        assert_eq!(log.earliest_cursor(), 1);
        log.expire(None);
        assert_eq!(log.len(), 0);
        assert_eq!(log.check_custom(2), Err(ReplayError::Invalid));
        assert_eq!(log.earliest_cursor(), 2);
        // New events after an expiry resume normally.
        log.append(ev(now, "Account"));
        assert_eq!(log.check_custom(3), Ok(()));
    }
}
