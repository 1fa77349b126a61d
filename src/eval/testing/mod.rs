//! `test` blocks: decide the test's event and hold the decision against
//! each expectation. Pure, like the rest of the interpreter.

mod scope;
mod text;

pub use scope::out_of_scope;

pub use text::{block_text, dedent, line_diff};
use text::{trim_blank_lines, visible, zero_width};

use super::decide::{decide, Action, ActionKind, Decision};
use super::display::display;
use super::event::Event;
use super::expr::equal_values;
use crate::ir::{Expect, Expectation, FieldRef, Loc, Program, TestCase, Value};
use serde::Serialize;
use serde_json::Value as Json;

/// Why a test's event could not be read; `offset` is a byte offset into
/// the JSON text when the JSON itself is malformed.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEventError {
    pub message: String,
    pub offset: Option<usize>,
}

/// The time a test event happens at when it does not say.
pub const TEST_TIME: &str = "2026-01-01T00:00:00Z";

/// Reads a test's event: `id` defaults to `test:NAME`, `at` to [`TEST_TIME`].
pub fn test_event(name: &str, json: &str) -> Result<Event, TestEventError> {
    let mut value: Json = serde_json::from_str(json).map_err(|e| TestEventError {
        // The diagnostic's label points at the place; serde's own
        // "at line 3 column 34" would count from the string, not the file.
        message: strip_position(&e.to_string()).to_string(),
        offset: offset_of(json, e.line(), e.column()),
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(TestEventError {
            message: "an event is a JSON object `{ \"kind\": ..., ... }`".into(),
            offset: None,
        });
    };
    obj.entry("id")
        .or_insert_with(|| Json::from(format!("test:{name}")));
    obj.entry("at").or_insert_with(|| Json::from(TEST_TIME));
    // The text is re-serialised here, so serde's position would point into
    // the copy; the path at the front of the message names the place.
    Event::from_json(&value.to_string()).map_err(|e| TestEventError {
        message: strip_position(&e.message).to_string(),
        offset: None,
    })
}

fn strip_position(m: &str) -> &str {
    match m.rfind(" at line ") {
        Some(i) if m[i..].contains(" column ") => &m[..i],
        _ => m,
    }
}

/// serde_json counts lines from 1 and columns in bytes from 1 (0: before
/// the first byte of the line).
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let at = (start + column.saturating_sub(1)).min(text.len().saturating_sub(1));
    // Never inside a character.
    (0..=at).rev().find(|i| text.is_char_boundary(*i))
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The `expect` line as written.
    pub expect: String,
    pub loc: Loc,
    pub expected: String,
    pub actual: String,
    /// For comments: a line diff of expected (-) against actual (+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why it did not hold, when a documented rule explains it (a
    /// transition permits a change but does not make it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub name: String,
    pub loc: Loc,
    pub passed: bool,
    pub failures: Vec<Failure>,
    /// The event could not be read (the checker reports this first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs one test against a compiled program.
pub fn run(p: &Program, case: &TestCase) -> Outcome {
    let mut out = Outcome {
        name: case.name.clone(),
        loc: case.loc,
        passed: false,
        failures: vec![],
        error: None,
    };
    let ev = match test_event(&case.name, &case.event) {
        Ok(ev) => ev,
        Err(e) => {
            out.error = Some(e.message);
            return out;
        }
    };
    // A ticket the link's `tickets` leave out never gets the change's
    // event in `l3map run`: nothing is decided for it.
    let scoped_out = out_of_scope(p, &ev);
    let d = match scoped_out {
        Some(_) => Decision {
            event: &ev.id,
            revision: &p.revision,
            actions: vec![],
            refused: vec![],
        },
        None => decide(p, &ev),
    };
    for e in &case.expects {
        if let Some((expected, actual, diff)) = holds(e, &d) {
            out.failures.push(Failure {
                expect: e.source.clone(),
                loc: e.loc,
                expected,
                actual,
                diff,
                why: scoped_out
                    .clone()
                    .or_else(|| super::explain::why(p, &ev, e, &d)),
            });
        }
    }
    out.passed = out.failures.is_empty();
    out
}

type Miss = (String, String, Option<String>);

/// `None` when the expectation holds; otherwise what was expected, what
/// happened instead, and for text a diff.
fn holds(e: &Expect, d: &Decision) -> Option<Miss> {
    let acts = &d.actions;
    let fail = |expected: String, actual: String| Some((expected, actual, None));
    match &e.what {
        Expectation::Nothing => (!acts.is_empty() || !d.refused.is_empty()).then(|| {
            (
                "no action and no refusal".into(),
                everything(d),
                None::<String>,
            )
        }),
        Expectation::No { kind } => {
            if kind == "refusal" {
                return (!d.refused.is_empty()).then(|| ("no refusal".into(), refusals(d), None));
            }
            let hits: Vec<&Action> = acts.iter().filter(|a| kind_name(&a.kind) == kind).collect();
            (!hits.is_empty()).then(|| {
                (
                    format!("no {kind} action"),
                    hits.iter()
                        .map(|a| describe(&a.kind))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    None,
                )
            })
        }
        Expectation::Status { connection, status } => {
            let ok = acts.iter().any(|a| {
                matches!(&a.kind, ActionKind::SetStatus { connection: c, to, .. }
                    if c == connection && to == status)
            });
            if ok {
                return None;
            }
            let mut actual = only(d, "status");
            let refused: Vec<String> = d
                .refused
                .iter()
                .filter(|r| r.what.contains("status"))
                .map(|r| format!("refused {}: {}", r.what, r.reason))
                .collect();
            if !refused.is_empty() {
                actual = format!("{actual}\n{}", refused.join("\n"));
            }
            fail(format!("status {connection} -> {status}"), actual)
        }
        Expectation::Field { field, value } => {
            let written: Vec<(&Action, &Value)> = acts
                .iter()
                .filter_map(|a| match &a.kind {
                    ActionKind::SetField { field: f, value } if f.same_field(field) => {
                        Some((a, value))
                    }
                    _ => None,
                })
                .collect();
            let sku: Vec<(&Action, Value)> = acts
                .iter()
                .filter_map(|a| match &a.kind {
                    ActionKind::NormalizeSku { field: f, sku, .. } if f.same_field(field) => {
                        Some((a, Value::Str(sku.clone())))
                    }
                    _ => None,
                })
                .collect();
            let ok = written.iter().any(|(_, v)| equal_values(v, value))
                || sku.iter().any(|(_, v)| equal_values(v, value));
            if ok {
                return None;
            }
            let actual: Vec<String> = written
                .iter()
                .map(|(a, _)| describe(&a.kind))
                .chain(sku.iter().map(|(a, _)| describe(&a.kind)))
                .collect();
            fail(
                format!("{} = {}", field_label(field), shown(value)),
                if actual.is_empty() {
                    format!("no write to {}", field_label(field))
                } else {
                    actual.join("\n")
                },
            )
        }
        Expectation::Comment {
            connection,
            contains,
            text,
        } => {
            let bodies: Vec<&str> = acts
                .iter()
                .filter_map(|a| match &a.kind {
                    ActionKind::Comment {
                        connection: c,
                        body,
                        ..
                    } if c == connection => Some(body.as_str()),
                    _ => None,
                })
                .collect();
            let want = trim_blank_lines(text);
            let ok = bodies.iter().any(|b| {
                if *contains {
                    b.contains(text.as_str())
                } else {
                    trim_blank_lines(b) == want
                }
            });
            if ok {
                return None;
            }
            let expected = if *contains {
                format!("a comment on {connection} containing {text:?}")
            } else {
                format!("a comment on {connection}:\n{want}")
            };
            match bodies.first() {
                None => fail(expected, only(d, "comment")),
                Some(b) => {
                    let got = trim_blank_lines(b);
                    let diff = (!*contains).then(|| line_diff(want, got));
                    // Zero-width characters count as whitespace here: a reader cannot
                    // see them either.
                    let squeeze = |s: &str| {
                        s.split_whitespace()
                            .flat_map(|w| w.chars().filter(|c| !zero_width(*c)))
                            .collect::<String>()
                    };
                    // The text is there but for whitespace: show the
                    // comment's spaces and tabs, or the miss looks like none.
                    let actual = if *contains && squeeze(b).contains(&squeeze(text)) {
                        let lines: Vec<String> = got.lines().map(|l| visible(l, true).0).collect();
                        format!(
                            "a comment on {connection} that has the text but for whitespace (␠ is a space, → a tab):\n{}",
                            lines.join("\n")
                        )
                    } else {
                        format!("a comment on {connection}:\n{got}")
                    };
                    Some((expected, actual, diff))
                }
            }
        }
        Expectation::Group { connection, group } => {
            let ok = acts.iter().any(|a| {
                matches!(&a.kind, ActionKind::AssignGroup { connection: c, group: g }
                    if c == connection && g == group)
            });
            (!ok).then(|| {
                (
                    format!("assign {connection} {group:?}"),
                    only(d, "group"),
                    None,
                )
            })
        }
        Expectation::Sku { table, product } => {
            let got: Vec<&Action> = acts
                .iter()
                .filter(
                    |a| matches!(&a.kind, ActionKind::NormalizeSku { table: t, .. } if t == table),
                )
                .collect();
            let prefix = format!("sku {table}:");
            let unmatched: Vec<String> = d
                .refused
                .iter()
                .filter(|r| r.what.starts_with(&prefix))
                .map(|r| format!("refused {}: {}", r.what, r.reason))
                .collect();
            let ok = match product {
                Some(p) => got
                    .iter()
                    .any(|a| matches!(&a.kind, ActionKind::NormalizeSku { sku, .. } if sku == p)),
                None => got.is_empty() && !unmatched.is_empty(),
            };
            if ok {
                return None;
            }
            let mut actual: Vec<String> = got.iter().map(|a| describe(&a.kind)).collect();
            actual.extend(unmatched);
            fail(
                match product {
                    Some(p) => format!("sku {table} -> {p}"),
                    None => format!("sku {table}: no product matches"),
                },
                if actual.is_empty() {
                    format!("the event gives table `{table}` nothing to normalise")
                } else {
                    actual.join("\n")
                },
            )
        }
        Expectation::Refused { text } => {
            let ok = d
                .refused
                .iter()
                .any(|r| r.what.contains(text.as_str()) || r.reason.contains(text.as_str()));
            (!ok).then(|| (format!("a refusal mentioning {text:?}"), refusals(d), None))
        }
    }
}

fn kind_name(k: &ActionKind) -> &'static str {
    match k {
        ActionKind::SetStatus { .. } => "status",
        ActionKind::SetField { .. } => "field",
        ActionKind::Comment { .. } => "comment",
        ActionKind::AssignGroup { .. } => "group",
        ActionKind::NormalizeSku { .. } => "sku",
    }
}

fn field_label(f: &FieldRef) -> String {
    match f {
        FieldRef::Zendesk {
            connection, field, ..
        } => format!("{connection} {field}"),
        FieldRef::Salesforce {
            connection, path, ..
        } => format!("{connection} {path}"),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Null => "none".into(),
        other => display(other),
    }
}

/// One line per action: what it writes, without where.
pub fn describe(kind: &ActionKind) -> String {
    match kind {
        ActionKind::SetStatus {
            connection,
            from,
            to,
            ..
        } => format!("status {connection} {from} -> {to}"),
        ActionKind::SetField { field, value } => {
            format!("field {} = {}", field_label(field), shown(value))
        }
        ActionKind::Comment {
            connection, body, ..
        } => {
            let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let short: String = first.chars().take(40).collect();
            let more = if short.len() < body.trim_end().len() {
                "..."
            } else {
                ""
            };
            format!("comment {connection} {short:?}{more}")
        }
        ActionKind::AssignGroup { connection, group } => {
            format!("assign {connection} {group:?}")
        }
        ActionKind::NormalizeSku {
            table,
            input,
            sku,
            field,
        } => format!(
            "sku {table} {input:?} -> {sku} (into {})",
            field_label(field)
        ),
    }
}

/// The actions of one kind, or a note that there were none.
fn only(d: &Decision, kind: &str) -> String {
    let of: Vec<String> = d
        .actions
        .iter()
        .filter(|a| kind_name(&a.kind) == kind)
        .map(|a| describe(&a.kind))
        .collect();
    if of.is_empty() {
        format!("no {kind} action")
    } else {
        of.join("\n")
    }
}

fn refusals(d: &Decision) -> String {
    if d.refused.is_empty() {
        return "no refusal".into();
    }
    d.refused
        .iter()
        .map(|r| format!("refused {}: {}", r.what, r.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

fn everything(d: &Decision) -> String {
    let mut lines: Vec<String> = d.actions.iter().map(|a| describe(&a.kind)).collect();
    if !d.refused.is_empty() {
        lines.push(refusals(d));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_id_and_time() {
        let ev = test_event("t1", r#"{"kind":"agent_turn"}"#).unwrap();
        assert_eq!(ev.id, "test:t1");
        assert_eq!(ev.at, TEST_TIME);
        let ev = test_event(
            "t1",
            r#"{"kind":"agent_turn","id":"mine","at":"2026-11-11T09:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            (ev.id.as_str(), ev.at.as_str()),
            ("mine", "2026-11-11T09:00:00Z")
        );
    }

    #[test]
    fn malformed_json_points_at_the_byte() {
        let text = "{\n  \"kind\": \"agent_turn\",\n  \"ticket\": {\"id\": 1,}\n}";
        let e = test_event("t", text).unwrap_err();
        let at = e.offset.expect("an offset");
        assert_eq!(&text[at..at + 1], "}", "{}", e.message);
        let e = test_event("t", "[1, 2]").unwrap_err();
        assert!(e.message.contains("JSON object"));
        let e = test_event("t", r#"{"kind":"boom"}"#).unwrap_err();
        assert!(e.message.starts_with("kind:"), "{}", e.message);
    }
}
