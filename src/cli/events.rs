//! Reading a recorded events file for `plan` and `diff`: one payload per
//! line, normalised events or the raw Zendesk / Salesforce shapes.

use crate::eval::convert::{from_source_json, ConvertContext};
use crate::eval::Event;
use std::io::BufRead;
use std::path::Path;

/// One non-blank line of the file: its number and what it held.
pub struct Line {
    pub number: usize,
    pub events: Result<Vec<Event>, String>,
}

/// The lines of `path`, converted with `ctx`. A line that cannot be read
/// is an `Err` of its own; only an unreadable file stops the whole run.
pub fn read(path: &Path, ctx: &ConvertContext) -> Result<Vec<Line>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let text = line.map_err(|e| format!("{}: line {}: {e}", path.display(), i + 1))?;
        if text.trim().is_empty() {
            continue;
        }
        out.push(Line {
            number: i + 1,
            events: from_source_json(&text, ctx).map_err(|e| e.message),
        });
    }
    Ok(out)
}
