//! `GET /services/data/vXX.X/limits`: the org's limits as the REST API's
//! Limits resource lists them, each `{"Max", "Remaining"}`
//! (developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_limits.htm).
//!
//! `DailyApiRequests` is the emulator's own count: `Max` is the
//! configured `api_limit`, `Remaining` what is left of it in the current
//! window after this request (which counts, as every REST call here
//! does), the same figure as this answer's `Sforce-Limit-Info`. The other
//! limits are not enforced by the emulator; they are listed with the
//! values of the documented example, untouched (`Remaining` = `Max`).

use super::Emu;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value as Json};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Limits the emulator lists but does not count: (name, Max).
const UNCOUNTED: [(&str, u64); 12] = [
    ("ConcurrentAsyncGetReportInstances", 200),
    ("ConcurrentSyncReportRuns", 20),
    ("DailyAsyncApexExecutions", 250_000),
    ("DailyBulkApiBatches", 15_000),
    ("DailyBulkV2QueryFileStorageMB", 976_562),
    ("DailyBulkV2QueryJobs", 10_000),
    ("DailyGenericStreamingApiEvents", 10_000),
    ("DailyStreamingApiEvents", 10_000),
    ("DailyWorkflowEmails", 390),
    ("DataStorageMB", 5),
    ("FileStorageMB", 20),
    ("SingleEmail", 15),
];

pub(super) async fn limits(State(st): State<Arc<Emu>>) -> Response {
    let used = u64::from(st.usage.load(Ordering::SeqCst));
    let max = u64::from(st.api_limit);
    let mut out = Map::new();
    out.insert(
        "DailyApiRequests".into(),
        json!({"Max": max, "Remaining": max.saturating_sub(used)}),
    );
    for (name, max) in UNCOUNTED {
        out.insert(name.into(), json!({"Max": max, "Remaining": max}));
    }
    axum::Json(Json::Object(out)).into_response()
}
