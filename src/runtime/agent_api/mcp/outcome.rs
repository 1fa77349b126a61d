//! What a tool call answers, as the MCP side turns it into a result.

use super::super::fail::Fail;
use serde_json::{json, Value};

/// What a call answers: its structured content, whether it is an error
/// for the agent (a refusal), and the result it is counted under.
pub(super) struct Outcome {
    pub value: Value,
    pub is_error: bool,
    pub result: &'static str,
    /// Whether `value` is the tool's structured content (of its output
    /// schema); a failure is told as text only.
    pub structured: bool,
}

impl Outcome {
    pub(super) fn read(value: Value) -> Outcome {
        Outcome {
            value,
            is_error: false,
            result: "accepted",
            structured: true,
        }
    }

    pub(super) fn failed(f: &Fail) -> Outcome {
        let result = if f.status.is_client_error() && f.status.as_u16() != 429 {
            "invalid"
        } else {
            "error"
        };
        let mut value = json!({"error": f.code, "message": f.message});
        if let Some(s) = f.retry_after {
            value["retry_after_secs"] = json!(s);
        }
        Outcome {
            value,
            is_error: true,
            result,
            structured: false,
        }
    }
}

/// `dir/escalations.l3map:20:3` as `escalations.l3map:20:3`: the file
/// names a rule well enough, and the server's folders are not the
/// agent's business.
pub(super) fn file_name(source: &str) -> String {
    match source.rsplit_once('/') {
        Some((_, name)) => name.to_string(),
        None => source.to_string(),
    }
}
