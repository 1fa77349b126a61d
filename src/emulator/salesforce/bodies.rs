use super::errors::{Answer, SfError};
use super::schema::ObjectSchema;
use super::{Emu, Record};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value as Json;

fn read_json(body: Result<Bytes, BytesRejection>) -> Result<Json, SfError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            SfError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_ENTITY_TOO_LARGE",
                "Request body is too large",
            )
        } else {
            SfError::bad("JSON_PARSER_ERROR", "Could not read the request body")
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        SfError::bad(
            "JSON_PARSER_ERROR",
            format!(
                "Unexpected input: {} at [line:{}, column:{}]",
                e.classify_name(),
                e.line(),
                e.column()
            ),
        )
    })
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "end of input",
        }
    }
}

pub(super) fn read_object(body: Result<Bytes, BytesRejection>) -> Result<Record, SfError> {
    match read_json(body)? {
        Json::Object(m) => Ok(m),
        _ => Err(SfError::bad(
            "JSON_PARSER_ERROR",
            "Expected a JSON object at [line:1, column:1]",
        )),
    }
}

pub(super) fn object_of<'a>(st: &'a Emu, name: &str) -> Result<&'a ObjectSchema, SfError> {
    st.schema.object(name).ok_or_else(SfError::not_found)
}

pub(super) fn ok_json(status: StatusCode, v: Json) -> Answer {
    Ok((status, axum::Json(v)).into_response())
}
