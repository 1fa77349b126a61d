//! The agent API: `POST /v1/turns` and `GET /v1/context/{ticket}` (being
//! written; see docs/RUNTIME.md).

use super::server::App;
use axum::Router;
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
}
