use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// An answer in Zendesk's error shape.
#[derive(Debug)]
pub(super) struct ZdErr {
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

impl ZdErr {
    pub(super) fn not_found() -> ZdErr {
        ZdErr {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": "RecordNotFound", "description": "Not found"}),
        }
    }

    pub(super) fn bad_json() -> ZdErr {
        ZdErr {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": "Unprocessable Entity", "message": "Server could not parse JSON"}),
        }
    }

    pub(super) fn bad_request(error: &str, description: impl Into<String>) -> ZdErr {
        ZdErr {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": error, "description": description.into()}),
        }
    }

    pub(super) fn invalid(details: BTreeMap<String, Vec<Value>>) -> ZdErr {
        ZdErr {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": details,
            }),
        }
    }

    pub(super) fn forbidden() -> ZdErr {
        ZdErr {
            status: StatusCode::FORBIDDEN,
            body: json!({
                "error": "Forbidden",
                "description": "You do not have access to this page. Please contact the account owner of this help desk for further help."
            }),
        }
    }
}

/// Where [`ZdErr::too_many`] keeps its `Retry-After` until the answer is
/// made; never sent in the body.
const RETRY_AFTER_KEY: &str = "__l3map_retry_after";

impl ZdErr {
    /// 429 with `Retry-After: secs`, in the shape Zendesk's rate limits
    /// answer.
    pub(super) fn too_many(secs: u64) -> ZdErr {
        ZdErr {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({
                "error": "APIRateLimitExceeded",
                "description": format!("Number of allowed updates of this ticket per 10 minutes exceeded. Try again in {secs} seconds."),
                RETRY_AFTER_KEY: secs,
            }),
        }
    }
}

impl IntoResponse for ZdErr {
    fn into_response(mut self) -> Response {
        let retry_after = self
            .body
            .as_object_mut()
            .and_then(|m| m.remove(RETRY_AFTER_KEY))
            .and_then(|v| v.as_u64());
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

pub(super) type Answer = Result<(StatusCode, Value), ZdErr>;

pub(super) fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, body))
}

/// Collects validation errors the way Zendesk reports them: by attribute,
/// custom fields under `base` with their `field_key`.
#[derive(Default)]
pub(super) struct Problems(pub(super) BTreeMap<String, Vec<Value>>);

impl Problems {
    pub(super) fn attr(&mut self, attr: &str, description: String) {
        self.0
            .entry(attr.into())
            .or_default()
            .push(json!({"description": description, "error": "InvalidValue"}));
    }

    pub(super) fn field(&mut self, id: Value, description: String) {
        self.0
            .entry("base".into())
            .or_default()
            .push(json!({"description": description, "error": "InvalidValue", "field_key": id}));
    }

    pub(super) fn finish(self) -> Result<(), ZdErr> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ZdErr::invalid(self.0))
        }
    }
}
