//! `l3map plan`: what the mappings would do with recorded events. Nothing
//! is sent anywhere.

use super::check::{color, load_one, relevant};
use super::{fail, Format};
use crate::check::check;
use crate::diagnostics::render_human;
use crate::eval::decide::{decide, Decision};
use crate::eval::Event;
use serde::Serialize;
use std::io::BufRead;
use std::path::Path;

#[derive(Serialize)]
#[serde(untagged)]
enum Line {
    Decided(Decision),
    Unreadable { line: usize, error: String },
}

pub fn run(path: &Path, events: &Path, format: Format) -> u8 {
    let p = match load_one(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let p = &p;
    let checked = check(&p.sources);
    let Some(program) = crate::ir::lower(&checked, &p.sources) else {
        eprint!(
            "{}",
            render_human(&relevant(p, &checked), &p.sources, color())
        );
        eprintln!("failed: the mappings have errors; nothing planned");
        return 1;
    };
    let file = match std::fs::File::open(events) {
        Ok(f) => f,
        Err(e) => return fail(format!("{}: {e}", events.display())),
    };
    let mut unreadable = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => return fail(format!("{}: line {}: {e}", events.display(), i + 1)),
        };
        if line.trim().is_empty() {
            continue;
        }
        // A bad event is reported on its own line; the others still run.
        let out = match Event::from_json(&line) {
            Ok(ev) => Line::Decided(decide(&program, &ev)),
            Err(e) => {
                unreadable += 1;
                Line::Unreadable {
                    line: i + 1,
                    error: e.message,
                }
            }
        };
        match format {
            Format::Json => match serde_json::to_string(&out) {
                Ok(s) => println!("{s}"),
                Err(e) => return fail(e),
            },
            _ => print!("{}", human(&out, &program.files)),
        }
    }
    if unreadable > 0 {
        eprintln!("{unreadable} event(s) could not be read");
        1
    } else {
        0
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
                let what = serde_json::to_value(&a.kind)
                    .ok()
                    .and_then(|v| v.get("action").and_then(|x| x.as_str()).map(str::to_string))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "  {what:<12} {:<40} {} ({})\n",
                    a.rule,
                    record(&a.record),
                    at(&a.loc)
                ));
            }
            for r in &d.refused {
                let place = r
                    .loc
                    .as_ref()
                    .map(|l| format!(" ({})", at(l)))
                    .unwrap_or_default();
                s.push_str(&format!("  refused      {}: {}{place}\n", r.what, r.reason));
            }
            s
        }
    }
}

fn record(r: &crate::eval::decide::Record) -> String {
    match r {
        crate::eval::decide::Record::Ticket { id } => format!("ticket {id}"),
        crate::eval::decide::Record::Salesforce { object, id } => format!("{object} {id}"),
    }
}
