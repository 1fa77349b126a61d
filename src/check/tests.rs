//! `test` blocks: the event must decode, and every expectation must name
//! something the project declares, so a typo fails `check`, not a test run.

use super::mappings::field;
use super::test_event::{bad_statuses, bad_values, key_spans, strays, Readable};
use super::types::{Scope, Ty};
use super::{did_you_mean, CheckErrorKind, Ctx};
use crate::check::Kind;
use crate::syntax::ast::{Expectation, ExprKind, TestBlock, Text};
use crate::syntax::Span;
use std::ops::Range;

pub(super) fn check(cx: &mut Ctx, t: &TestBlock) {
    match t.events.as_slice() {
        [] => cx.err(
            CheckErrorKind::TestShape {
                message: format!("test `{}` has no event", t.name.name),
                help:
                    "add `event \"\"\" {\"kind\": \"agent_turn\", ...} \"\"\"` (see docs/EVENTS.md)"
                        .into(),
                first: None,
            }
            .at(t.name.span),
        ),
        [ev, rest @ ..] => {
            for extra in rest {
                cx.err(
                    CheckErrorKind::TestShape {
                        message: format!("test `{}` has two events", t.name.name),
                        help: "one event per test: split it into two tests".into(),
                        first: Some(ev.span),
                    }
                    .at(extra.span),
                );
            }
            match crate::eval::testing::test_event(&t.name.name, &ev.value) {
                Ok(_) => {
                    if let Ok(json) = serde_json::from_str(&ev.value) {
                        unread_keys(cx, ev, &json);
                        let refusal = t
                            .expects
                            .iter()
                            .any(|e| matches!(e.what, Expectation::Refused(_)));
                        statuses(cx, ev, &json, refusal);
                        field_values(cx, ev, &json);
                    }
                }
                Err(e) => event_error(cx, ev, e),
            }
        }
    }
    if t.expects.is_empty() {
        cx.err(
            CheckErrorKind::TestShape {
                message: format!("test `{}` expects nothing", t.name.name),
                help: "add `expect ...` lines, or `expect nothing` if the event must do nothing"
                    .into(),
                first: None,
            }
            .at(t.name.span),
        );
    }
    for e in &t.expects {
        match &e.what {
            Expectation::Nothing | Expectation::No(_) | Expectation::Refused(_) => {}
            Expectation::Status { conn, status } => {
                if cx.use_conn(conn, None, "a status expectation").is_none() {
                    continue;
                }
                super::statuses::lookup(cx, conn, status);
            }
            Expectation::Field {
                conn,
                field: f,
                value,
            } => {
                let Some(kind) = cx.use_conn(conn, None, "a field expectation") else {
                    continue;
                };
                if let Some(ty) = field(cx, &conn.name, kind, f, false) {
                    let vt = match (&ty, &value.kind) {
                        (Ty::Str, ExprKind::Symbol(_)) => Ty::Str,
                        _ => cx.expr(value, Some(&ty), &Scope::default()),
                    };
                    if !vt.compatible(&ty) {
                        cx.mismatch_expecting(
                            format!("`{}` is {ty}", f.display()),
                            value.span,
                            &vt,
                            &ty,
                        );
                    }
                }
            }
            Expectation::Comment { conn, .. } => {
                cx.use_conn(conn, None, "a comment expectation");
            }
            Expectation::Group { conn, .. } => {
                cx.use_conn(conn, Some(Kind::Zendesk), "a group expectation");
            }
            Expectation::Sku { table, product } => {
                let Some(products) = cx.env.skus.get(&table.name) else {
                    let names: Vec<String> = cx.env.skus.keys().cloned().collect();
                    cx.err(
                        CheckErrorKind::Unknown {
                            kind: "sku table",
                            name: table.name.clone(),
                            help: did_you_mean(&table.name, names.iter().map(|s| s.as_str())),
                        }
                        .at(table.span),
                    );
                    continue;
                };
                if let Some((p, span)) = product {
                    if !products.is_empty() && !products.contains(p) {
                        let help = did_you_mean(p, products.iter().map(|s| s.as_str()));
                        cx.err(
                            CheckErrorKind::Unknown {
                                kind: "product",
                                name: p.clone(),
                                help,
                            }
                            .at(*span),
                        );
                    }
                }
            }
        }
    }
}

/// A JSON mistake; in a raw string the JSON is the source text, so the
/// error can point at the exact byte.
fn event_error(cx: &mut Ctx, ev: &Text, e: crate::eval::testing::TestEventError) {
    let span = match e.offset {
        Some(at) if ev.raw => {
            let start = ev.body.start as usize + at;
            let len = ev.value[at..].chars().next().map_or(0, char::len_utf8);
            Span::new(ev.span.file, start, start + len)
        }
        _ => ev.span,
    };
    cx.err(CheckErrorKind::TestEvent { message: e.message }.at(span));
}

/// Where a finding about the key at `path` of the event points: in a raw
/// string, at the part of the text `part` finds from the key's range (the
/// key itself, or its value); else, or when there is none, at the whole
/// event (an escaped string's text is not the source's).
fn point(
    ev: &Text,
    path: &[String],
    part: impl Fn(&str, Range<usize>) -> Option<Range<usize>>,
) -> Span {
    let spans = if ev.raw { key_spans(&ev.value) } else { vec![] };
    spans
        .into_iter()
        .find(|(p, _)| p == path)
        .and_then(|(_, r)| part(&ev.value, r))
        .map_or(ev.span, |r| {
            let start = ev.body.start as usize;
            Span::new(ev.span.file, start + r.start, start + r.end)
        })
}

/// Keys of a valid event that nothing reads, each pointed at.
fn unread_keys(cx: &mut Ctx, ev: &Text, json: &serde_json::Value) {
    let strays = {
        let readable = Readable {
            env: &cx.env,
            sf_paths: &cx.usage.sf_paths,
            linked: &cx.usage.linked,
        };
        strays(&readable, json)
    };
    for s in strays {
        let span = point(ev, &s.path, |_, r| Some(r));
        cx.err(
            CheckErrorKind::TestEventKey {
                message: s.message,
                help: s.help,
            }
            .at(span),
        );
    }
}

/// Statuses in the event that no real event could carry, pointed at the
/// value.
fn statuses(cx: &mut Ctx, ev: &Text, json: &serde_json::Value, expects_refusal: bool) {
    for b in bad_statuses(&cx.env, json, expects_refusal) {
        let span = point(ev, &b.path, |t, r| string_after(t, r.end));
        cx.err(
            CheckErrorKind::TestEventStatus {
                message: b.message,
                help: b.help,
                label: b.label,
            }
            .at(span),
        );
    }
}

/// Custom field values their declared type cannot hold, pointed at the
/// value.
fn field_values(cx: &mut Ctx, ev: &Text, json: &serde_json::Value) {
    for b in bad_values(&cx.env, &cx.usage.translations, json) {
        let span = point(ev, &b.path, |t, r| value_after(t, r.end));
        cx.err(
            CheckErrorKind::TestEventValue {
                message: b.message,
                help: b.help,
                label: b.label,
            }
            .at(span),
        );
    }
}

/// The byte range of a scalar JSON value after a key ending at `from`: a
/// string (quotes included) or a number, `true`, `false`, `null`.
fn value_after(text: &str, from: usize) -> Option<Range<usize>> {
    if let Some(r) = string_after(text, from) {
        return Some(r);
    }
    let start = value_start(text, from)?;
    let len = text[start..]
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | ']'))
        .unwrap_or(text.len() - start);
    (len > 0 && !text[start..].starts_with(['{', '['])).then_some(start..start + len)
}

/// The byte range of the JSON string value after a key ending at `from`
/// (`"key": "value"`), quotes included.
fn string_after(text: &str, from: usize) -> Option<Range<usize>> {
    let start = value_start(text, from)?;
    let b = text.as_bytes();
    if b.get(start) != Some(&b'"') {
        return None;
    }
    let mut i = start + 1;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    Some(start..(i + 1).min(b.len()))
}

/// Where the value after a key ending at `from` starts: past the colon and
/// the white space around it.
fn value_start(text: &str, from: usize) -> Option<usize> {
    let rest = &text[from..];
    let colon = rest.find(|c: char| !c.is_whitespace())?;
    let after = rest[colon..].strip_prefix(':')?;
    let lead = after.len() - after.trim_start().len();
    Some(from + colon + 1 + lead)
}
