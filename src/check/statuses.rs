//! Status tables: declarations, transitions, and the workflow lints
//! (reachability, dead ends, Zendesk's own rules).

use super::{did_you_mean, Category, CheckErrorKind, Ctx, Kind, Scope, StatusInfo, TableInfo};
use crate::syntax::ast::{self, StatusTable};
use crate::syntax::Span;
use std::collections::{BTreeMap, VecDeque};

pub(super) fn declare(cx: &mut Ctx, t: &StatusTable) {
    let first = cx.env.tables.get(&t.conn.name).map(|prev| prev.span);
    let help = "a connection has one status table; merge the two";
    if cx.declared_again("status table for", &t.conn, first, help) {
        return;
    }
    cx.use_conn(&t.conn, None, "a status table");
    let mut statuses: Vec<StatusInfo> = Vec::new();
    let mut ids: BTreeMap<u64, Span> = BTreeMap::new();
    for d in &t.statuses {
        let first = statuses
            .iter()
            .find(|s| s.name == d.name.name)
            .map(|prev| prev.span);
        let help = "each status is declared once; give the other a different name";
        if cx.declared_again("status", &d.name, first, help) {
            continue;
        }
        let category = match Category::ALL.iter().find(|(n, _)| *n == d.category.name) {
            Some((_, c)) => *c,
            None => {
                cx.err(
                    CheckErrorKind::UnknownCategory {
                        category: d.category.name.clone(),
                        help: did_you_mean(&d.category.name, Category::ALL.iter().map(|(n, _)| *n))
                            .or_else(|| {
                                Some("categories are new, open, pending, hold and solved".into())
                            }),
                    }
                    .at(d.category.span),
                );
                Category::Open
            }
        };
        if let Some((id, span)) = d.id {
            if let Some(first) = ids.insert(id, span) {
                cx.duplicate(
                    "custom status id",
                    format!("#{id}"),
                    span,
                    Some(first),
                    "each Zendesk custom status has its own id",
                );
            }
        }
        statuses.push(StatusInfo {
            name: d.name.name.clone(),
            category,
            label: d.label.as_ref().map(|l| l.value.clone()),
            terminal: d.terminal,
            initial: d.initial.is_some(),
            id: d.id.map(|(i, _)| i),
            span: d.name.span,
        });
    }
    cx.env.tables.insert(
        t.conn.name.clone(),
        TableInfo {
            statuses,
            span: t.conn.span,
            forms: t.forms.iter().map(|f| (f.value.clone(), f.span)).collect(),
            locked: None,
        },
    );
}

/// One resolved edge of the workflow.
struct Edge {
    from: usize,
    to: usize,
    conditional: bool,
    condition: String,
    wildcard: bool,
    span: Span,
}

pub(super) fn check(cx: &mut Ctx, t: &StatusTable) {
    let Some(table) = cx.env.tables.get(&t.conn.name).cloned() else {
        return;
    };
    if table.span != t.conn.span {
        return; // a duplicate table, already reported
    }
    let kind = cx.env.conns.get(&t.conn.name).map(|c| c.kind);
    let scope = Scope {
        ticket_conn: (kind == Some(Kind::Zendesk)).then(|| t.conn.name.clone()),
        in_template: false,
    };
    let names: Vec<&str> = table.statuses.iter().map(|s| s.name.as_str()).collect();
    let index = |n: &str| table.statuses.iter().position(|s| s.name == n);
    let mut edges: Vec<Edge> = Vec::new();
    let errors_before = cx.diags.len();
    for tr in &t.transitions {
        if let Some(w) = &tr.when {
            cx.condition(w, &scope);
        }
        let condition = tr
            .when
            .as_ref()
            .map(|w| normalize_ws(cx.sources.get(w.span.file).slice(w.span)))
            .unwrap_or_default();
        let mut tos = Vec::new();
        for to in &tr.to {
            match index(&to.name) {
                Some(i) => {
                    if table.statuses[i].category == Category::New {
                        cx.err(
                            CheckErrorKind::TransitionToNew {
                                status: to.name.clone(),
                            }
                            .at(to.span),
                        );
                    }
                    tos.push((i, to.span));
                }
                None => unknown_status(cx, to, &names, &t.conn.name),
            }
        }
        let (froms, wildcard): (Vec<usize>, bool) = match &tr.from {
            ast::From::Any(_) => (
                (0..table.statuses.len())
                    .filter(|i| table.statuses[*i].terminal.is_none())
                    .collect(),
                true,
            ),
            ast::From::List(list) => {
                let mut v = Vec::new();
                for f in list {
                    match index(&f.name) {
                        Some(i) => {
                            if let Some(decl) = table.statuses[i].terminal {
                                cx.err(
                                    CheckErrorKind::TransitionFromTerminal {
                                        status: f.name.clone(),
                                        decl,
                                    }
                                    .at(f.span),
                                );
                            } else {
                                v.push(i);
                            }
                        }
                        None => unknown_status(cx, f, &names, &t.conn.name),
                    }
                }
                (v, false)
            }
        };
        if kind == Some(Kind::Zendesk) && !tos.is_empty() && !froms.is_empty() {
            cx.usage
                .status_writes
                .entry(t.conn.name.clone())
                .or_default()
                .push(("the status table allows transitions".into(), tr.span));
        }
        for &f in &froms {
            for &(to, to_span) in &tos {
                if f == to {
                    if !wildcard {
                        cx.err(
                            CheckErrorKind::SelfTransition {
                                status: table.statuses[f].name.clone(),
                            }
                            .at(to_span),
                        );
                    }
                    continue;
                }
                edges.push(Edge {
                    from: f,
                    to,
                    conditional: tr.when.is_some(),
                    condition: condition.clone(),
                    wildcard,
                    span: tr.span,
                });
            }
        }
    }
    duplicates(cx, &table, &edges);
    if kind == Some(Kind::Zendesk) {
        indistinct(cx, &table, t);
    }
    // With a misspelt status the graph is incomplete: reachability lints
    // would only repeat the same mistake as noise.
    let unresolved = cx.diags[errors_before..]
        .iter()
        .any(|d| d.code() == "l3map::unknown_name" && d.message().starts_with("unknown status"));
    if !unresolved {
        workflow_lints(cx, &table, &edges, kind == Some(Kind::Zendesk));
    }
}

/// Zendesk tells statuses of one category apart only by their custom
/// status id. One status of a category may go without (it is written as,
/// and read back from, the category's default status); a second one
/// without an id would be written and read as that same status, so
/// transitions between them could be neither decided nor applied. One
/// warning per category, on the second status without an id.
fn indistinct(cx: &mut Ctx, table: &TableInfo, t: &StatusTable) {
    // A misspelt category is reported already; its status is not counted.
    let declared = |s: &StatusInfo, cat: &str| {
        t.statuses
            .iter()
            .any(|d| d.name.name == s.name && d.category.name == cat)
    };
    for (cat_name, cat) in Category::ALL {
        let same: Vec<&StatusInfo> = table
            .statuses
            .iter()
            .filter(|s| s.category == cat && declared(s, cat_name))
            .collect();
        // One status without an id is the category's default status;
        // a second one could not be told from it.
        let without: Vec<&&StatusInfo> = same.iter().filter(|s| s.id.is_none()).collect();
        let Some(first) = without.get(1) else {
            continue;
        };
        let names: Vec<String> = without.iter().map(|s| format!("`{}`", s.name)).collect();
        let Some((last, rest)) = names.split_last() else {
            continue;
        };
        cx.err(
            CheckErrorKind::IndistinctStatuses {
                category: cat_name.to_string(),
                statuses: format!("{} and {last}", rest.join(", ")),
                status: first.name.clone(),
            }
            .at(first.span),
        );
    }
}

fn unknown_status(cx: &mut Ctx, id: &ast::Ident, names: &[&str], conn: &str) {
    cx.err(
        CheckErrorKind::Unknown {
            kind: "status",
            name: id.name.clone(),
            help: did_you_mean(&id.name, names.iter().copied()).or_else(|| {
                Some(format!(
                    "declare it in the table: `{} open \"Label\"` (statuses of `{conn}`)",
                    id.name
                ))
            }),
        }
        .at(id.span),
    );
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn duplicates(cx: &mut Ctx, table: &TableInfo, edges: &[Edge]) {
    let mut by_pair: BTreeMap<(usize, usize), Vec<&Edge>> = BTreeMap::new();
    for e in edges {
        by_pair.entry((e.from, e.to)).or_default().push(e);
    }
    for ((f, t), list) in by_pair {
        if list.len() < 2 {
            continue;
        }
        let from = table.statuses[f].name.clone();
        let to = table.statuses[t].name.clone();
        let unconditional = list.iter().find(|e| !e.conditional);
        for (i, e) in list.iter().enumerate() {
            let explicit_first = list[..i]
                .iter()
                .find(|p| p.condition == e.condition && !(p.wildcard && e.wildcard));
            if let Some(p) = explicit_first {
                if !e.wildcard || !p.wildcard {
                    cx.err(
                        CheckErrorKind::DuplicateTransition {
                            from: from.clone(),
                            to: to.clone(),
                            first: p.span,
                        }
                        .at(e.span),
                    );
                }
                continue;
            }
            if let Some(u) = unconditional {
                if e.conditional {
                    cx.err(
                        CheckErrorKind::ShadowedTransition {
                            from: from.clone(),
                            to: to.clone(),
                            by: u.span,
                        }
                        .at(e.span),
                    );
                }
            }
        }
    }
}

fn workflow_lints(cx: &mut Ctx, table: &TableInfo, edges: &[Edge], zendesk: bool) {
    let n = table.statuses.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges {
        out[e.from].push(e.to);
    }
    let mut reached = vec![false; n];
    let mut queue: VecDeque<usize> = (0..n)
        .filter(|&i| table.statuses[i].category == Category::New || table.statuses[i].initial)
        .collect();
    for &i in &queue {
        reached[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for &j in &out[i] {
            if !reached[j] {
                reached[j] = true;
                queue.push_back(j);
            }
        }
    }
    let first_open = table
        .statuses
        .iter()
        .find(|s| s.category == Category::Open)
        .map(|s| s.name.clone());
    for (i, s) in table.statuses.iter().enumerate() {
        if !reached[i] {
            cx.err(
                CheckErrorKind::Unreachable {
                    status: s.name.clone(),
                }
                .at(s.span),
            );
        }
        if s.terminal.is_none() && out[i].is_empty() {
            cx.err(
                CheckErrorKind::DeadEnd {
                    status: s.name.clone(),
                }
                .at(s.span),
            );
            continue;
        }
        if zendesk
            && s.terminal.is_none()
            && matches!(
                s.category,
                Category::Pending | Category::Hold | Category::Solved
            )
            && !out[i]
                .iter()
                .any(|&j| table.statuses[j].category == Category::Open)
        {
            cx.err(
                CheckErrorKind::MissingReopen {
                    status: s.name.clone(),
                    open: first_open.clone().unwrap_or_else(|| "open".into()),
                    category: s.category.as_str().into(),
                }
                .at(s.span),
            );
        }
    }
}

/// The category of `status` in the table of `conn`; reports a connection
/// without a table, or a status the table does not declare.
pub(super) fn lookup(cx: &mut Ctx, conn: &ast::Ident, status: &ast::Ident) -> Option<Category> {
    let Some(table) = cx.env.tables.get(&conn.name) else {
        cx.err(
            CheckErrorKind::NoStatusTable {
                conn: conn.name.clone(),
            }
            .at(conn.span),
        );
        return None;
    };
    if let Some(s) = table.get(&status.name) {
        return Some(s.category);
    }
    let names: Vec<String> = table.statuses.iter().map(|s| s.name.clone()).collect();
    cx.err(
        CheckErrorKind::Unknown {
            kind: "status",
            name: status.name.clone(),
            help: did_you_mean(&status.name, names.iter().map(|s| s.as_str())),
        }
        .at(status.span),
    );
    None
}
