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
            Ok(text) => from_source_json(text, ctx).map_err(|e| char_columns(&e.message, text)),
            Err(e) => Err(format!(
                "not UTF-8 text (invalid byte at column {})",
                // Columns count characters everywhere; the text before the
                // bad byte is valid.
                String::from_utf8_lossy(&buf[..e.valid_up_to()])
                    .chars()
                    .count()
                    + 1
            )),
        };
        out.push(Line { number, events });
    }
    Ok(out)
}

/// serde_json ends its messages with `at line L column C`, C counted in
/// bytes; l3map counts columns in characters everywhere (as editors and
/// GitHub do), so C is recounted on that line of `text`.
fn char_columns(message: &str, text: &str) -> String {
    let recount = || -> Option<String> {
        let at = message.rfind(" at line ")?;
        let (line, column) = message[at + " at line ".len()..].split_once(" column ")?;
        let (line, column): (usize, usize) = (line.parse().ok()?, column.parse().ok()?);
        let row = text.split('\n').nth(line.checked_sub(1)?)?;
        // Byte C is the last one read: count the characters up to and
        // including the one it belongs to.
        let mut end = column.min(row.len());
        while !row.is_char_boundary(end) {
            end += 1;
        }
        let chars = row[..end].chars().count();
        Some(format!("{} at line {line} column {chars}", &message[..at]))
    };
    recount().unwrap_or_else(|| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::char_columns;

    #[test]
    fn serde_columns_are_recounted_in_characters() {
        let text = r#"{"summary": "返金をお願いします", x}"#;
        let err = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
        let message = format!("invalid JSON: {err}");
        let at = text.find('x').unwrap();
        assert_eq!(
            char_columns(&message, text),
            format!(
                "invalid JSON: key must be a string at line 1 column {}",
                text[..at].chars().count() + 1
            )
        );
        assert_eq!(char_columns("no position", text), "no position");
    }
}
