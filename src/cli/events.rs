//! Reading a recorded events file for `plan` and `diff`: one payload per
//! line, normalised events or the raw Zendesk / Salesforce shapes.

use crate::eval::convert::{from_source_json, ConvertContext, SalesforceOptions};
use crate::eval::Event;
use crate::ir::Program;
use std::io::BufRead;
use std::path::Path;

/// How `plan` and `diff` read payloads for `program`.
pub fn context(program: &Program, ticket_field: Option<String>) -> ConvertContext {
    ConvertContext::new(program).with_salesforce(SalesforceOptions { ticket_field })
}

/// One non-blank line of the file: its number and what it held.
pub struct Line {
    pub number: usize,
    pub events: Result<Vec<Event>, String>,
}

/// The lines of `path`, converted with `ctx`. A line that cannot be read
/// is an `Err` of its own; only an unreadable file stops the whole run.
pub fn read(path: &Path, ctx: &ConvertContext) -> Result<Vec<Line>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{}: line {number}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        // A line that is not UTF-8 is one bad event, not a bad file.
        let events = match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => from_source_json(text, ctx).map_err(|e| e.message),
            Err(e) => Err(format!(
                "not UTF-8 text (invalid byte at column {})",
                e.valid_up_to() + 1
            )),
        };
        out.push(Line { number, events });
    }
    Ok(out)
}
