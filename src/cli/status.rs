//! `l3map status [--config l3map.toml] [--format human|json]`: the fleet
//! as its store sees it: each replica (heartbeat, revision, last load
//! error), who holds each singleton, the queues per connection and the
//! shared rate budgets. On a SQLite store: its queues (one process sends).
//! Exit 1 when a replica reports a load error or a heartbeat is stale.

use super::{fail, DataFormat};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The l3map.toml whose store to read (default: $L3MAP_CONFIG, else
    /// ./l3map.toml; without one, .l3map/state.db).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DataFormat::Human)]
    format: DataFormat,
}

/// A heartbeat older than the store's lease (`lease_secs`: three beats)
/// is reported as stale: the replica's claims have run out.
pub(super) fn stale_ms(cfg: Option<&crate::runtime::config::Config>) -> i64 {
    cfg.and_then(|c| c.store.as_ref()).map_or(15_000, |s| {
        i64::try_from(s.lease.as_millis()).unwrap_or(i64::MAX)
    })
}
/// ... and one older than this as gone (a replica killed or scaled away;
/// its row is deleted by retention after a day).
const GONE_MS: i64 = 600_000;

pub fn run(a: Args) -> u8 {
    let cfg = match crate::runtime::config::discover(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // A SQLite store that does not exist is said, never created here.
    let opened = match &cfg {
        Some(c) if c.store.is_some() => c.open_store(),
        _ => match crate::runtime::config::state_path(cfg.as_ref().map(|c| c.state.as_path())) {
            Ok(s) if s.exists() => {
                crate::runtime::store::Store::open(&s).map_err(|e| e.to_string())
            }
            Ok(s) => Err(format!(
                "no state store at {}; pass --config with the l3map.toml `l3map run` uses",
                s.display()
            )),
            Err(e) => Err(e.to_string()),
        },
    };
    let stale = stale_ms(cfg.as_ref());
    let store = match opened {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let st = match store.fleet_status() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let unwell = st
        .replicas
        .iter()
        .filter(|r| r.heartbeat_age_ms <= GONE_MS)
        .any(|r| r.load_error.is_some() || r.heartbeat_age_ms > stale || behind(&st, r));
    if a.format == DataFormat::Json {
        return match serde_json::to_string_pretty(&st) {
            Ok(s) => {
                outln!("{s}");
                u8::from(unwell)
            }
            Err(e) => fail(e),
        };
    }
    outln!("store {}", store.path().display());
    if let Some(a) = &st.active_revision {
        outln!(
            "revision {} (active since {}, published by {})",
            a.revision,
            crate::runtime::files::rfc3339(a.switched_ms),
            a.published_by
        );
    }
    if !st.replicas.is_empty() {
        outln!("replicas ({}):", st.replicas.len());
        for r in &st.replicas {
            let health = match (&r.load_error, r.heartbeat_age_ms > stale) {
                _ if r.heartbeat_age_ms > GONE_MS => {
                    format!("gone (last heartbeat {} s ago)", r.heartbeat_age_ms / 1000)
                }
                (_, true) => format!("STALE (last heartbeat {} s ago)", r.heartbeat_age_ms / 1000),
                (Some(e), _) => format!("load error: {e}"),
                (None, false) if behind(&st, r) => "NOT ON THE ACTIVE REVISION".into(),
                (None, false) => "ok".into(),
            };
            outln!(
                "  {}  revision {}  heartbeat {:.1} s ago  {}",
                r.id,
                r.revision.as_deref().unwrap_or("-"),
                r.heartbeat_age_ms as f64 / 1000.0,
                health
            );
        }
    }
    if !st.leases.is_empty() {
        outln!("leases:");
        for l in &st.leases {
            let left = if l.expires_in_ms >= 0 {
                format!("{} s left", l.expires_in_ms / 1000)
            } else {
                format!(
                    "ran out {} s ago, not taken over yet",
                    (-l.expires_in_ms) / 1000
                )
            };
            outln!(
                "  {}  held by {} (epoch {}, {left})",
                l.name,
                l.holder,
                l.epoch
            );
        }
    }
    outln!("queues:");
    if st.queues.is_empty() {
        outln!("  (empty)");
    }
    for q in &st.queues {
        outln!(
            "  {}  pending {}  sending {}  dead {}",
            q.connection,
            q.pending,
            q.sending,
            q.dead
        );
    }
    if !st.budgets.is_empty() {
        outln!("shared rate budgets:");
        for b in &st.budgets {
            outln!("  {}  booked {} ms ahead", b.key, b.booked_ahead_ms);
        }
    }
    u8::from(unwell)
}

/// A live replica deciding by another revision than the fleet's active
/// one (a load it has not finished, or one it cannot do).
fn behind(
    st: &crate::runtime::store::FleetStatus,
    r: &crate::runtime::store::types::ReplicaStatus,
) -> bool {
    match (&st.active_revision, &r.revision) {
        (Some(a), Some(mine)) => a.revision != *mine,
        _ => false,
    }
}
