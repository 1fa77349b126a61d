use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

/// An error as Salesforce writes it: `[{"message", "errorCode", "fields"}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SfError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl SfError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> SfError {
        SfError {
            status,
            code,
            message: message.into(),
            fields: vec![],
        }
    }

    pub(super) fn bad(code: &'static str, message: impl Into<String>) -> SfError {
        SfError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(super) fn with_fields(mut self, fields: Vec<String>) -> SfError {
        self.fields = fields;
        self
    }

    pub(super) fn not_found() -> SfError {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub(super) fn session() -> SfError {
        SfError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    /// The per-record form inside sObject Collections results.
    pub(super) fn as_record_error(&self) -> Json {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        let body =
            json!([{"message": self.message, "errorCode": self.code, "fields": self.fields}]);
        (self.status, axum::Json(body)).into_response()
    }
}

pub(super) type Answer = Result<Response, SfError>;
