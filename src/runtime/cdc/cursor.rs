//! Where a channel resumes: its replay id and the commit time of the last
//! change passed on, stored as the store cursor
//! `salesforce_cdc:<connection>:<channel>` = `<replay id hex>|<RFC 3339>`.
//!
//! The replay id alone resumes the stream (`CUSTOM`); the time is what a
//! `SystemModstamp` catch-up poll starts from when the replay id can no
//! longer be used (beyond the 72-hour retention). Either half may be
//! empty: a stored time without a replay id subscribes from `LATEST` and
//! catches up from the time.

use crate::runtime::engine::Engine;
use crate::runtime::store::StoreError;

pub const CDC_SOURCE: &str = "salesforce_cdc";

pub fn replay_key(connection: &str, channel: &str) -> String {
    format!("{CDC_SOURCE}:{connection}:{channel}")
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// The opaque replay id of the last event handled.
    pub replay: Option<Vec<u8>>,
    /// The commit time of the last change handled.
    pub at: Option<jiff::Timestamp>,
}

impl Position {
    pub fn encode(&self) -> String {
        let hex: String = self
            .replay
            .iter()
            .flatten()
            .map(|b| format!("{b:02x}"))
            .collect();
        let at = self.at.map(|t| t.to_string()).unwrap_or_default();
        format!("{hex}|{at}")
    }

    pub fn decode(s: &str) -> Option<Position> {
        let (hex, at) = s.split_once('|')?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let replay = if hex.is_empty() {
            None
        } else {
            Some(
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()?,
            )
        };
        let at = if at.is_empty() {
            None
        } else {
            Some(at.parse().ok()?)
        };
        Some(Position { replay, at })
    }
}

pub async fn load(engine: &Engine, key: &str) -> Result<Option<String>, StoreError> {
    let store = engine.store.clone();
    let key = key.to_string();
    tokio::task::spawn_blocking(move || store.cursor(&key))
        .await
        .map_err(|e| joined(engine, e))?
}

pub async fn save(engine: &Engine, key: &str, p: &Position) -> Result<(), StoreError> {
    let store = engine.store.clone();
    let (key, value) = (key.to_string(), p.encode());
    tokio::task::spawn_blocking(move || store.set_cursor(&key, &value))
        .await
        .map_err(|e| joined(engine, e))?
}

fn joined(engine: &Engine, e: tokio::task::JoinError) -> StoreError {
    StoreError::Open {
        path: engine.store.path().to_path_buf(),
        message: format!("the store task failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_junk_is_refused() {
        let at: jiff::Timestamp = "2026-12-06T10:00:00.5Z".parse().unwrap();
        for p in [
            Position::default(),
            Position {
                replay: Some(vec![0, 0, 0, 0, 0, 0x1f, 0xab]),
                at: Some(at),
            },
            Position {
                replay: None,
                at: Some(at),
            },
        ] {
            assert_eq!(Position::decode(&p.encode()), Some(p));
        }
        assert_eq!(
            Position {
                replay: Some(vec![1, 255]),
                at: Some(at)
            }
            .encode(),
            "01ff|2026-12-06T10:00:00.5Z"
        );
        for junk in ["", "abc|", "zz|", "01|yesterday"] {
            assert_eq!(Position::decode(junk), None, "{junk}");
        }
        assert_eq!(
            replay_key("crm", "/data/AccountChangeEvent"),
            "salesforce_cdc:crm:/data/AccountChangeEvent"
        );
    }
}
