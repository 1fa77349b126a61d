use super::bodies::ok_json;
use super::errors::{Answer, SfError};
use super::{exec, lock, soql, Emu};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value as Json};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Results of queries still being paged, by locator; the oldest are
/// dropped past a bound so abandoned queries cannot grow memory.
#[derive(Default)]
pub(super) struct Cursors {
    serial: u64,
    results: HashMap<String, Arc<Vec<Json>>>,
    order: VecDeque<String>,
}

const MAX_CURSORS: usize = 1000;

impl Cursors {
    fn keep(&mut self, rows: Arc<Vec<Json>>) -> String {
        self.serial += 1;
        let locator = format!("01g5e{:013}", self.serial);
        self.results.insert(locator.clone(), rows);
        self.order.push_back(locator.clone());
        while self.order.len() > MAX_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
        locator
    }
}

/// `Sforce-Query-Options: batchSize=N`, bounded by the configured size.
fn batch_size(st: &Emu, headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(st.query_batch_size, |n| n.clamp(1, st.query_batch_size))
}

pub(super) async fn query(
    State(st): State<Arc<Emu>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer {
    let q = params
        .as_ref()
        .ok()
        .and_then(|p| p.get("q"))
        .ok_or_else(|| SfError::bad("MALFORMED_QUERY", "A query string is required (q)"))?;
    let parsed = soql::parse(q).map_err(|e| SfError::bad("MALFORMED_QUERY", e.to_string()))?;
    let rows = {
        let store = lock(&st.store);
        exec::run(&st.schema, &store, &parsed, &v)?
    };
    page(&st, &v, Arc::new(rows), 0, batch_size(&st, &headers))
}

pub(super) async fn query_more(
    State(st): State<Arc<Emu>>,
    Path((v, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let bad = || SfError::bad("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (loc, offset) = locator.rsplit_once('-').ok_or_else(bad)?;
    let offset: usize = offset.parse().map_err(|_| bad())?;
    let rows = lock(&st.cursors)
        .results
        .get(loc)
        .cloned()
        .ok_or_else(bad)?;
    if offset > rows.len() {
        return Err(bad());
    }
    page(&st, &v, rows, offset, batch_size(&st, &headers))
}

fn page(st: &Emu, version: &str, rows: Arc<Vec<Json>>, offset: usize, size: usize) -> Answer {
    let end = offset.saturating_add(size).min(rows.len());
    let records: Vec<Json> = rows.get(offset..end).unwrap_or_default().to_vec();
    let mut body = json!({"totalSize": rows.len(), "done": end >= rows.len(), "records": records});
    if end < rows.len() {
        let locator = lock(&st.cursors).keep(rows.clone());
        body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{locator}-{end}"));
    }
    ok_json(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_cursors_are_dropped_past_the_bound() {
        let mut c = Cursors::default();
        let rows = Arc::new(vec![json!({"Id": "1"})]);
        let first = c.keep(rows.clone());
        let mut last = first.clone();
        for _ in 0..MAX_CURSORS + 10 {
            last = c.keep(rows.clone());
        }
        assert_eq!(c.results.len(), MAX_CURSORS);
        assert_eq!(c.order.len(), MAX_CURSORS);
        assert!(!c.results.contains_key(&first), "the oldest went");
        assert!(c.results.contains_key(&last), "the newest pages on");
    }
}
