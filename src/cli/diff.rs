//! `l3map diff OLD NEW --events FILE`: replays recorded events through two
//! versions of a project and shows every event they decide differently.
//! This is how a mapping change is reviewed in a pull request.

use super::check::{color, load_one, relevant};
use super::{fail, DataFormat};
use crate::diagnostics::render_human;
use crate::eval::decide::{decide, ActionKind, Decision, Record, Refusal};
use crate::eval::testing::describe;
use crate::eval::Event;
use crate::ir::Program;
use serde::Serialize;
use std::path::Path;

/// What of a decision a reviewer compares: not the source location (lines
/// move when a file is edited) and not the idempotency key (it contains
/// the revision, which always differs).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Seen<'a> {
    #[serde(flatten)]
    kind: ActionKind<'a>,
    record: Record<'a>,
    rule: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Refused {
    what: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Side<'a> {
    actions: Vec<Seen<'a>>,
    refused: Vec<Refused>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Out<'a> {
    Changed {
        line: usize,
        event: String,
        before: Side<'a>,
        after: Side<'a>,
    },
    Unreadable {
        line: usize,
        /// Which version could not read it: `both`, `old` or `new`.
        side: &'static str,
        error: String,
    },
}

fn side<'a>(d: &Decision<'a>) -> Side<'a> {
    Side {
        actions: d
            .actions
            .iter()
            .map(|a| Seen {
                kind: a.kind.clone(),
                record: a.record.clone(),
                rule: a.rule.to_string(),
            })
            .collect(),
        refused: d
            .refused
            .iter()
            .map(|r: &Refusal| Refused {
                what: r.what.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
    }
}

fn compile(path: &Path, which: &str) -> Result<Program, u8> {
    let p = load_one(path)?;
    let checked = super::check::checked(&p)?;
    match crate::compile::lower(&checked, &p.sources) {
        Ok(program) => Ok(program),
        Err(_) => {
            err!(
                "{}",
                render_human(&relevant(&p, &checked), &p.sources, color())
            );
            errln!(
                "failed: the {which} mappings ({}) have errors; nothing compared",
                p.name()
            );
            Err(2)
        }
    }
}

pub fn run(
    old: &Path,
    new: &Path,
    events: &Path,
    format: DataFormat,
    exit_code: bool,
    ticket_field: Option<String>,
) -> u8 {
    let (before, after) = match (compile(old, "old"), compile(new, "new")) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    // Each version reads the events with its own status table: a renamed
    // custom status changes what a payload means.
    let (lines_b, lines_a) = match (
        super::events::read(
            events,
            &super::events::context(&before, ticket_field.clone()),
        ),
        super::events::read(events, &super::events::context(&after, ticket_field)),
    ) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let (mut total, mut changed, mut unreadable) = (0usize, 0usize, 0usize);
    let emit = |out: Out| -> Result<(), u8> {
        match format {
            DataFormat::Json => match serde_json::to_string(&out) {
                Ok(s) => outln!("{s}"),
                Err(e) => return Err(fail(e)),
            },
            DataFormat::Human => out!("{}", human(&out)),
        }
        Ok(())
    };
    for (b, a) in lines_b.into_iter().zip(lines_a) {
        let line = b.number;
        let b_ok = b.events.is_ok();
        let (evs_b, evs_a): (Vec<Event>, Vec<Event>) = match (b.events, a.events) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(error), Err(_)) => {
                unreadable += 1;
                if let Err(c) = emit(Out::Unreadable {
                    line,
                    side: "both",
                    error,
                }) {
                    return c;
                }
                continue;
            }
            (Err(error), Ok(_)) | (Ok(_), Err(error)) => {
                unreadable += 1;
                let side = if b_ok { "new" } else { "old" };
                if let Err(c) = emit(Out::Unreadable { line, side, error }) {
                    return c;
                }
                continue;
            }
        };
        for (eb, ea) in evs_b.iter().zip(&evs_a) {
            total += 1;
            let (sb, sa) = (side(&decide(&before, eb)), side(&decide(&after, ea)));
            if sb != sa {
                changed += 1;
                if let Err(c) = emit(Out::Changed {
                    line,
                    event: eb.id.clone(),
                    before: sb,
                    after: sa,
                }) {
                    return c;
                }
            }
        }
    }
    let summary = format!(
        "{total} event(s) replayed: {changed} decided differently, {} the same{}",
        total - changed,
        if unreadable > 0 {
            format!("; {unreadable} line(s) could not be read")
        } else {
            String::new()
        }
    );
    errln!("{summary}");
    // A gate that compared nothing must not pass. (Some unreadable lines
    // among readable ones are reported and skipped, as documented.)
    let vacuous = total == 0 && unreadable > 0;
    if exit_code && (changed > 0 || vacuous) {
        if vacuous {
            errln!("error: --exit-code: no line of the events file could be read, so nothing was compared");
        }
        1
    } else {
        0
    }
}

fn human(out: &Out) -> String {
    match out {
        Out::Unreadable { line, side, error } => {
            let who = match *side {
                "both" => String::new(),
                version => format!(" by the {version} version"),
            };
            format!("line {line}: unreadable event{who}: {error}\n")
        }
        Out::Changed {
            line,
            event,
            before,
            after,
        } => {
            let mut s = format!("event {event} (line {line})\n");
            for a in before.actions.iter().filter(|a| !after.actions.contains(a)) {
                s.push_str(&format!("  - {}\n", one(a)));
            }
            for a in after.actions.iter().filter(|a| !before.actions.contains(a)) {
                s.push_str(&format!("  + {}\n", one(a)));
            }
            for (b, a) in comment_pairs(before, after) {
                s.push_str(&format!(
                    "    comment text (- before, + after):\n{}",
                    indent(&crate::eval::testing::line_diff(b, a), "      ")
                ));
            }
            for r in before.refused.iter().filter(|r| !after.refused.contains(r)) {
                s.push_str(&format!("  - refused {}: {}\n", r.what, r.reason));
            }
            for r in after.refused.iter().filter(|r| !before.refused.contains(r)) {
                s.push_str(&format!("  + refused {}: {}\n", r.what, r.reason));
            }
            // The same actions in another order: the order is what runs
            // (a comment before the reassignment), so it is a change too.
            if !s.contains('\n') || s.lines().count() == 1 {
                s.push_str("  order changed:\n");
                for (sign, side) in [('-', before), ('+', after)] {
                    for a in &side.actions {
                        s.push_str(&format!("  {sign} {}\n", one(a)));
                    }
                }
            }
            s
        }
    }
}

/// Comments on the same record by the same rule whose text changed: shown
/// as a line diff, since the one-line summaries would look alike.
fn comment_pairs<'a>(before: &'a Side, after: &'a Side) -> Vec<(&'a str, &'a str)> {
    let body = |a: &'a Seen<'a>| match &a.kind {
        ActionKind::Comment {
            connection, body, ..
        } => Some((connection, &a.record, &a.rule, body.as_str())),
        _ => None,
    };
    let mut out = Vec::new();
    for b in before.actions.iter().filter_map(body) {
        for a in after.actions.iter().filter_map(body) {
            if (b.0, b.1, b.2) == (a.0, a.1, a.2) && b.3 != a.3 {
                out.push((b.3, a.3));
            }
        }
    }
    out
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

fn one(a: &Seen) -> String {
    format!(
        "{} on {} ({})",
        describe(&a.kind),
        super::plan::record(&a.record),
        a.rule
    )
}
