//! `l3map graph`: a status table as a diagram.

use super::check::{color, relevant};
use super::{fail, GraphFormat};
use crate::diagnostics::render_human;
use crate::ir::{self, StatusTable};
use crate::model::Category;
use crate::project::load;
use crate::syntax::SourceMap;
use std::path::Path;

pub fn run(path: &Path, format: GraphFormat, table: Option<&str>) -> u8 {
    let projects = match load(std::slice::from_ref(&path.to_path_buf())) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let mut candidates: Vec<(StatusTable, SourceMap)> = Vec::new();
    for p in &projects {
        let checked = crate::compile::check(&p.sources, None);
        let diags = relevant(p, &checked);
        if checked.has_errors() {
            err!("{}", render_human(&diags, &p.sources, color()));
            errln!("failed: fix the errors above before drawing");
            return 1;
        }
        let Ok(program) = crate::compile::lower(&checked, &p.sources) else {
            return 1;
        };
        for t in program.status_tables {
            let file = crate::syntax::FileId(t.loc.file);
            if p.wants(file) {
                candidates.push((t, p.sources.clone()));
            }
        }
    }
    let names: Vec<String> = candidates
        .iter()
        .map(|(t, _)| t.connection.clone())
        .collect();
    let chosen = match table {
        Some(name) => candidates.into_iter().find(|(t, _)| t.connection == name),
        None if candidates.len() == 1 => candidates.into_iter().next(),
        None if candidates.is_empty() => {
            return fail(format!("{}: no statuses block found", path.display()))
        }
        None => {
            return fail(format!(
                "{} has several status tables; choose one with --table ({})",
                path.display(),
                names.join(", ")
            ))
        }
    };
    let Some((t, sources)) = chosen else {
        return fail(format!(
            "no status table for `{}`; tables: {}",
            table.unwrap_or(""),
            names.join(", ")
        ));
    };
    out!(
        "{}",
        match format {
            GraphFormat::Mermaid => mermaid(&t, &sources),
            GraphFormat::Dot => dot(&t, &sources),
        }
    );
    0
}

/// The condition of a transition as written in the source.
fn condition(t: &ir::Transition, sources: &SourceMap) -> Option<String> {
    let w = t.when.as_ref()?;
    let f = sources.get(crate::syntax::FileId(w.loc.file));
    let text = f.text.get(w.loc.start as usize..w.loc.end as usize)?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Each category with its fill and stroke (the ops console draws the
/// same).
const STYLE: [(Category, &str, &str); 5] = Category::PALETTE;

fn edges(t: &StatusTable) -> Vec<(String, String, Option<usize>)> {
    t.edges()
        .into_iter()
        .map(|(f, to, i)| (f, to, Some(i)))
        .collect()
}

pub fn mermaid(t: &StatusTable, sources: &SourceMap) -> String {
    let esc = |s: &str| s.replace('"', "#quot;");
    let mut s = format!("%% statuses {}\nflowchart LR\n", t.connection);
    for st in &t.statuses {
        let label = match &st.label {
            Some(l) => format!("{}<br/><small>{}</small>", st.name, esc(l)),
            None => st.name.clone(),
        };
        let (open, close) = if st.terminal {
            ("[[", "]]")
        } else {
            ("[", "]")
        };
        s.push_str(&format!(
            "  s_{}{open}\"{label}\"{close}:::{}\n",
            st.name,
            st.category.as_str()
        ));
    }
    if t.transitions.iter().any(|tr| tr.wildcard) {
        s.push_str("  any((\"any non-terminal\"))\n");
    }
    for (from, to, i) in edges(t) {
        // Ids are prefixed: a status may be named like a Mermaid keyword (`end`).
        let from = if from == "*" {
            "any".to_string()
        } else {
            format!("s_{from}")
        };
        match i.and_then(|i| condition(&t.transitions[i], sources)) {
            Some(c) => s.push_str(&format!("  {from} -->|\"{}\"| s_{to}\n", esc(&c))),
            None => s.push_str(&format!("  {from} --> s_{to}\n")),
        }
    }
    for (c, fill, stroke) in STYLE {
        s.push_str(&format!(
            "  classDef {} fill:{fill},stroke:{stroke},color:#111827\n",
            c.as_str()
        ));
    }
    s
}

pub fn dot(t: &StatusTable, sources: &SourceMap) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
        esc(&t.connection)
    );
    for st in &t.statuses {
        let (_, fill, stroke) = STYLE
            .iter()
            .find(|(c, _, _)| *c == st.category)
            .copied()
            .unwrap_or(STYLE[1]);
        let label = match &st.label {
            Some(l) => format!("{}\\n{}", esc(&st.name), esc(l)),
            None => esc(&st.name),
        };
        s.push_str(&format!(
            "  \"{}\" [label=\"{label}\", fillcolor=\"{fill}\", color=\"{stroke}\"{}];\n",
            esc(&st.name),
            if st.terminal { ", peripheries=2" } else { "" }
        ));
    }
    if t.transitions.iter().any(|tr| tr.wildcard) {
        s.push_str("  \"*\" [label=\"any non-terminal\", shape=ellipse, style=dashed];\n");
    }
    for (from, to, i) in edges(t) {
        match i.and_then(|i| condition(&t.transitions[i], sources)) {
            Some(c) => s.push_str(&format!(
                "  \"{}\" -> \"{}\" [label=\"{}\"];\n",
                esc(&from),
                esc(&to),
                esc(&c)
            )),
            None => s.push_str(&format!("  \"{}\" -> \"{}\";\n", esc(&from), esc(&to))),
        }
    }
    s.push_str("}\n");
    s
}
