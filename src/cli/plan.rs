//! `l3map plan`: what the mappings would do with recorded events. Nothing
//! is sent anywhere.

use super::check::{color, load_one, relevant};
use super::{fail, DataFormat};
use crate::diagnostics::render_human;
use crate::eval::decide::{decide, Decision};
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Decided(Decision<'a>),
    Unreadable { line: usize, error: String },
}

pub fn run(path: &Path, events: &Path, format: DataFormat, ticket_field: Option<String>) -> u8 {
    let p = match load_one(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let p = &p;
    let checked = match super::check::checked(p) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Ok(program) = crate::compile::lower(&checked, &p.sources) else {
        err!(
            "{}",
            render_human(&relevant(p, &checked), &p.sources, color())
        );
        errln!("failed: the mappings have errors; nothing planned");
        return 1;
    };
    let lines = match super::events::read(events, &super::events::context(&program, ticket_field)) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut unreadable = 0;
    for line in lines {
        // A bad event is reported on its own line; the others still run.
        let outs = match &line.events {
            Ok(evs) => evs
                .iter()
                .map(|ev| Line::Decided(decide(&program, ev)))
                .collect(),
            Err(error) => {
                unreadable += 1;
                vec![Line::Unreadable {
                    line: line.number,
                    error: error.clone(),
                }]
            }
        };
        for out in outs {
            match format {
                DataFormat::Json => match serde_json::to_value(&out) {
                    Ok(mut v) => {
                        with_sources(&mut v, &program.files);
                        outln!("{v}");
                    }
                    Err(e) => return fail(e),
                },
                DataFormat::Human => out!("{}", human(&out, &program.files)),
            }
        }
    }
    if unreadable > 0 {
        errln!("{unreadable} event(s) could not be read");
        1
    } else {
        0
    }
}

/// `loc.file` is an index into the project's files; JSON readers get the
/// place spelled out next to it, as `source: "file:line:col"`.
fn with_sources(v: &mut serde_json::Value, files: &[String]) {
    for list in ["actions", "refused"] {
        let Some(items) = v.get_mut(list).and_then(|x| x.as_array_mut()) else {
            continue;
        };
        for item in items {
            let loc = &item["loc"];
            let (Some(f), Some(line), Some(col)) = (
                loc["file"].as_u64(),
                loc["line"].as_u64(),
                loc["col"].as_u64(),
            ) else {
                continue;
            };
            let file = files.get(f as usize).map_or("?", |s| s.as_str());
            item["source"] = serde_json::Value::from(format!("{file}:{line}:{col}"));
        }
    }
}

fn human(out: &Line, files: &[String]) -> String {
    let at = |loc: &crate::ir::Loc| {
        format!(
            "{}:{}",
            files.get(loc.file as usize).map_or("?", |f| f.as_str()),
            loc.line
        )
    };
    match out {
        Line::Unreadable { line, error } => format!("line {line}: unreadable event: {error}\n"),
        Line::Decided(d) => {
            let mut s = format!("event {}\n", d.event);
            if d.actions.is_empty() && d.refused.is_empty() {
                s.push_str("  nothing to do\n");
            }
            for a in &d.actions {
                s.push_str(&format!(
                    "  {:<64} {:<24} {} ({})\n",
                    crate::eval::testing::describe(&a.kind),
                    record(&a.record),
                    a.rule,
                    at(&a.loc)
                ));
            }
            for r in &d.refused {
                // Reasons about a transition already quote where it is.
                let place = r
                    .loc
                    .as_ref()
                    .map(at)
                    .filter(|place| !r.reason.contains(place.as_str()))
                    .map(|place| format!(" ({place})"))
                    .unwrap_or_default();
                s.push_str(&format!("  refused {}: {}{place}\n", r.what, r.reason));
            }
            s
        }
    }
}

pub(super) fn record(r: &crate::eval::decide::Record) -> String {
    match r {
        crate::eval::decide::Record::Ticket { id } => format!("ticket {id}"),
        crate::eval::decide::Record::Salesforce { object, id } => format!("{object} {id}"),
    }
}
