//! The console's reads, as JSON: the status graph over a window, dead
//! letters, one record's audit trail, the reloads and a diff between two,
//! the budgets. Each is one or a few index ranges with a limit.

use super::graph::{draw, Drawing};
use super::session::Viewer;
use super::{blocking, fail};
use crate::runtime::app::App;
use crate::runtime::store::views::{DeadQuery, DEAD_GROUPED};
use crate::runtime::store::{now_ms, Tally};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The windows the graph offers, with their length in ms.
pub const WINDOWS: [(&str, i64); 5] = [
    ("15m", 900_000),
    ("1h", 3_600_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
];

#[derive(Deserialize)]
pub struct WindowQ {
    window: Option<String>,
}

pub async fn whoami(Extension(v): Extension<Viewer>, State(app): State<Arc<App>>) -> Response {
    let live = app.engine.live();
    Json(json!({
        "name": v.name,
        "actions": v.actions,
        "csrf": v.csrf,
        "revision": live.program.revision,
        "store": if app.engine.store.is_shared() { "postgres" } else { "sqlite" },
        "windows": WINDOWS.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
    }))
    .into_response()
}

pub async fn overview(State(app): State<Arc<App>>, Query(q): Query<WindowQ>) -> Response {
    let name = q.window.as_deref().unwrap_or("1h");
    let Some((_, len)) = WINDOWS.iter().find(|(w, _)| *w == name) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "bad_window",
            format!(
                "window {name:?} is not one of {}",
                WINDOWS.map(|(w, _)| w).join(", ")
            ),
        );
    };
    // Minutes up to six hours (at most 360 buckets a subject); hours
    // beyond, the window then starting at the hour.
    let span = if *len > 21_600_000 {
        Tally::SPANS[1]
    } else {
        Tally::SPANS[0]
    };
    let now = now_ms();
    let since = now - len;
    let since = since - since.rem_euclid(span);
    let store = app.engine.store.clone();
    let read = blocking(move || {
        let counts = store.console().tallies(span, since)?;
        Ok((
            counts,
            store.stats_cached(std::time::Duration::from_secs(1))?,
        ))
    })
    .await;
    let (mut counts, stats) = match read {
        Ok(r) => r,
        Err(e) => return e,
    };
    let dir = project_dir(&app);
    for c in counts.iter_mut() {
        if let Some(rest) = c
            .source_loc
            .strip_prefix(dir.as_str())
            .filter(|_| !dir.is_empty())
        {
            c.source_loc = rest.to_string();
        }
    }
    let live = app.engine.live();
    let tables: Vec<Drawing> = live
        .program
        .status_tables
        .iter()
        .map(|t| draw(t, &counts))
        .collect();
    let refusals: Vec<_> = counts.iter().filter(|c| c.outcome == "refused").collect();
    Json(json!({
        "window": name,
        "since_ms": since,
        "revision": live.program.revision,
        "tables": tables,
        "refusals": refusals,
        "stats": stats,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct DeadQ {
    reason: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

/// The folder the live mappings were read from (with its separator): a
/// rule's `file:line` is shown from there, as `l3map check` prints it.
fn project_dir(app: &App) -> String {
    let live = app.engine.live();
    common_dir(live.program.files.iter().map(String::as_str))
}

/// `rows`' rule locations from the project folder.
fn localise(app: &App, rows: &mut [crate::runtime::store::Row]) {
    let dir = project_dir(app);
    if dir.is_empty() {
        return;
    }
    for r in rows {
        if let Some(rest) = r.source_loc.strip_prefix(&dir) {
            r.source_loc = rest.to_string();
        }
    }
}

/// Dead letters per page.
const PAGE: usize = 50;

pub async fn dead(State(app): State<Arc<App>>, Query(q): Query<DeadQ>) -> Response {
    let limit = q.limit.unwrap_or(PAGE).clamp(1, 200);
    let query = DeadQuery {
        parked: q.reason.filter(|r| !r.is_empty()),
        before: q.before,
        limit: limit + 1,
    };
    let store = app.engine.store.clone();
    let read = blocking(move || {
        let c = store.console();
        Ok((c.dead_letters(&query)?, c.dead_groups()?))
    })
    .await;
    let (mut rows, groups) = match read {
        Ok(r) => r,
        Err(e) => return e,
    };
    let more = rows.len() > limit;
    rows.truncate(limit);
    localise(&app, &mut rows);
    let next = more.then(|| rows.last().map(|r| r.id)).flatten();
    let grouped: u64 = groups.iter().map(|g| g.n).sum();
    Json(json!({
        "rows": rows,
        "next": next,
        "groups": groups,
        "groups_capped": grouped >= DEAD_GROUPED as u64,
    }))
    .into_response()
}

pub async fn action(State(app): State<Arc<App>>, Path(id): Path<i64>) -> Response {
    let store = app.engine.store.clone();
    match blocking(move || store.console().action(id)).await {
        Ok(Some(mut row)) => {
            localise(&app, std::slice::from_mut(&mut row));
            Json(row).into_response()
        }
        Ok(None) => fail(
            StatusCode::NOT_FOUND,
            "no_action",
            format!("no action {id} in the outbox (dropped, or never queued)"),
        ),
        Err(e) => e,
    }
}

/// A record as the outbox names it: a ticket id, or `Object/Id`.
fn record_ok(r: &str) -> bool {
    let id =
        |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    match r.split_once('/') {
        None => !r.is_empty() && r.len() <= 20 && r.bytes().all(|b| b.is_ascii_digit()),
        Some((object, rest)) => {
            id(rest)
                && !object.is_empty()
                && object.len() <= 80
                && object
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
    }
}

/// Events and actions a trail lists at most.
const TRAIL: usize = 200;

pub async fn trail(State(app): State<Arc<App>>, Path(record): Path<String>) -> Response {
    if !record_ok(&record) {
        return fail(
            StatusCode::BAD_REQUEST,
            "bad_record",
            "a record is a ticket id (digits) or a Salesforce Object/Id, e.g. 4211 or Case/5003000000D8cuI",
        );
    }
    let store = app.engine.store.clone();
    let r = record.clone();
    match blocking(move || store.console().trail(&r, TRAIL)).await {
        Ok(mut t) => {
            localise(&app, &mut t.actions);
            Json(json!({"record": record, "trail": t})).into_response()
        }
        Err(e) => e,
    }
}

#[derive(Deserialize)]
pub struct ReloadsQ {
    before: Option<i64>,
}

pub async fn reloads(State(app): State<Arc<App>>, Query(q): Query<ReloadsQ>) -> Response {
    let store = app.engine.store.clone();
    match blocking(move || store.console().reloads(q.before, 50)).await {
        Ok(rows) => {
            let next = (rows.len() == 50)
                .then(|| rows.last().map(|r| r.id))
                .flatten();
            Json(json!({"reloads": rows, "next": next, "live": app.engine.live().program.revision}))
                .into_response()
        }
        Err(e) => e,
    }
}

#[derive(Deserialize)]
pub struct DiffQ {
    from: String,
    to: String,
}

/// A diff's text is cut at this size.
const DIFF_MAX: usize = 1 << 20;

pub async fn diff(State(app): State<Arc<App>>, Query(q): Query<DiffQ>) -> Response {
    let store = app.engine.store.clone();
    let (from, to) = (q.from.clone(), q.to.clone());
    let read = blocking(move || {
        let c = store.console();
        Ok((c.reload_sources(&from)?, c.reload_sources(&to)?))
    })
    .await;
    let (a, b) = match read {
        Ok((Some(a), Some(b))) => (a, b),
        Ok((a, _)) => {
            let missing = if a.is_none() { &q.from } else { &q.to };
            return fail(
                StatusCode::NOT_FOUND,
                "no_sources",
                format!("the files of revision {missing:?} are not kept (it never went live here, or is older than the last 1000 reloads)"),
            );
        }
        Err(e) => return e,
    };
    let files = |s: &str| -> Vec<(String, String)> { serde_json::from_str(s).unwrap_or_default() };
    let (a, b) = (files(&a), files(&b));
    // Paths from the project folder, as diagnostics name them.
    let dir = common_dir(a.iter().chain(b.iter()).map(|(p, _)| p.as_str()));
    let mut paths: Vec<&String> = a.iter().chain(b.iter()).map(|(p, _)| p).collect();
    paths.sort();
    paths.dedup();
    let text = |fs: &[(String, String)], p: &str| {
        fs.iter()
            .find(|(q, _)| q == p)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    let mut out: Vec<Value> = Vec::new();
    let mut size = 0;
    for p in paths {
        let (old, new) = (text(&a, p), text(&b, p));
        if old == new {
            continue;
        }
        let d = similar::TextDiff::from_lines(&old, &new);
        let unified = d.unified_diff().context_radius(3).to_string();
        size += unified.len();
        if size > DIFF_MAX {
            out.push(json!({"path": p, "diff": "(cut: the diff is larger than 1 MB)"}));
            break;
        }
        out.push(json!({"path": p.strip_prefix(dir.as_str()).unwrap_or(p), "diff": unified}));
    }
    Json(json!({"from": q.from, "to": q.to, "files": out})).into_response()
}

/// The folder every path is in (with its separator; empty when none).
fn common_dir<'a>(paths: impl Iterator<Item = &'a str> + Clone) -> String {
    let Some(first) = paths.clone().next() else {
        return String::new();
    };
    let mut dir = match first.rfind(['/', '\\']) {
        Some(i) => first[..=i].to_string(),
        None => return String::new(),
    };
    while !paths.clone().all(|p| p.starts_with(&dir)) {
        dir.pop();
        match dir.rfind(['/', '\\']) {
            Some(i) => dir.truncate(i + 1),
            None => return String::new(),
        }
    }
    dir
}

pub async fn budgets(State(app): State<Arc<App>>) -> Response {
    let store = app.engine.store.clone();
    let fleet = app.engine.store.is_shared();
    // The counts are O(1) (kept by triggers); the fleet's status reads its
    // small tables and, per connection, the rows not yet applied through
    // partial indexes (PostgreSQL only: one SQLite process has no fleet,
    // and its per-connection count would read every dead letter).
    let read = blocking(move || {
        let stats = store.stats_cached(std::time::Duration::from_secs(1))?;
        let status = if fleet {
            store.fleet_status()?
        } else {
            Default::default()
        };
        Ok((stats, status))
    })
    .await;
    let (stats, status) = match read {
        Ok(r) => r,
        Err(e) => return e,
    };
    let tokens = app
        .console
        .limiters
        .as_ref()
        .map(|l| l.views())
        .unwrap_or_default();
    let oldest_age_ms = stats.oldest_waiting_ms.map(|t| (now_ms() - t).max(0));
    Json(json!({
        "tokens": tokens,
        "queue": {
            "pending": stats.pending,
            "sending": stats.sending,
            "dead": stats.dead,
            "oldest_age_ms": oldest_age_ms,
            "by_connection": status.queues,
        },
        "fleet": if fleet { json!({
            "active_revision": status.active_revision,
            "replicas": status.replicas,
            "leases": status.leases,
            "budgets": status.budgets,
        }) } else { Value::Null },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_are_ticket_ids_or_object_ids() {
        for ok in ["4211", "Case/5003000000D8cuIAAR", "Account__c/a01"] {
            assert!(super::record_ok(ok), "{ok}");
        }
        for bad in ["", "12a", "Case/", "/x", "Case/x'--", "../etc", "Case/a/b"] {
            assert!(!super::record_ok(bad), "{bad}");
        }
        let paths = [
            "/srv/m/fintech/statuses.l3map",
            "/srv/m/fintech/sub/a.l3map",
        ];
        assert_eq!(super::common_dir(paths.iter().copied()), "/srv/m/fintech/");
    }
}
