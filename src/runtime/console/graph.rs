//! A status table laid out for the console's drawing: the nodes and
//! edges of `l3map graph`, coloured by category, placed in columns by
//! category (new, open, pending, hold, solved; `*` before them), with each
//! edge's counts over the window. The page draws it as SVG.

use crate::ir::StatusTable;
use crate::model::Category;
use crate::runtime::store::views::TallyCount;
use serde::Serialize;

const COLUMN: f64 = 230.0;
const ROW: f64 = 64.0;
const MARGIN: f64 = 30.0;
pub const NODE_W: f64 = 190.0;
pub const NODE_H: f64 = 44.0;

#[derive(Debug, Serialize)]
pub struct Node {
    pub name: String,
    pub label: Option<String>,
    pub category: &'static str,
    pub fill: &'static str,
    pub stroke: &'static str,
    pub terminal: bool,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// The transition's condition as written, if it has one.
    pub when: Option<String>,
    /// Moves decided (queued to be written) over the window.
    pub decided: u64,
    /// Moves refused over the window.
    pub refused: u64,
}

#[derive(Debug, Serialize)]
pub struct Drawing {
    pub connection: String,
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Refused moves that are no edge of the table (not allowed at all),
    /// with their counts.
    pub off_table: Vec<Edge>,
}

fn column(c: Category) -> usize {
    Category::PALETTE
        .iter()
        .position(|(k, _, _)| *k == c)
        .unwrap_or(0)
        + 1
}

/// `t` laid out, with `counts` (of every table) summed onto its edges.
pub fn draw(t: &StatusTable, counts: &[TallyCount]) -> Drawing {
    let wildcard = t.transitions.iter().any(|tr| tr.wildcard);
    let mut rows = [0usize; 6];
    let mut nodes = Vec::new();
    let mut place = |col: usize| {
        let y = MARGIN + rows[col] as f64 * ROW;
        rows[col] += 1;
        let shift = if wildcard { 0 } else { 1 };
        (MARGIN + (col - shift) as f64 * COLUMN, y)
    };
    if wildcard {
        let (x, y) = place(0);
        nodes.push(Node {
            name: "*".into(),
            label: Some("any non-terminal".into()),
            category: "any",
            fill: "#ffffff",
            stroke: "#6b7280",
            terminal: false,
            x,
            y,
        });
    }
    for s in &t.statuses {
        let (x, y) = place(column(s.category));
        let (_, fill, stroke) = Category::PALETTE
            .iter()
            .find(|(k, _, _)| *k == s.category)
            .copied()
            .unwrap_or(Category::PALETTE[1]);
        nodes.push(Node {
            name: s.name.clone(),
            label: s.label.clone(),
            category: s.category.as_str(),
            fill,
            stroke,
            terminal: s.terminal,
            x,
            y,
        });
    }
    let count = |from: &str, to: &str, outcome: &str| -> u64 {
        let subject = format!("{from} -> {to}");
        counts
            .iter()
            .filter(|c| {
                c.connection == t.connection && c.subject == subject && c.outcome == outcome
            })
            .map(|c| c.n)
            .sum()
    };
    let mut edges: Vec<Edge> = Vec::new();
    for (from, to, i) in t.edges() {
        if edges.iter().any(|e| e.from == from && e.to == to) {
            continue;
        }
        edges.push(Edge {
            decided: if from == "*" {
                0
            } else {
                count(&from, &to, "applied")
            },
            refused: if from == "*" {
                0
            } else {
                count(&from, &to, "refused")
            },
            when: t.transitions[i].condition.clone(),
            from,
            to,
        });
    }
    // A move through `*` counts on the wildcard's edge.
    let mut off_table: Vec<Edge> = Vec::new();
    for c in counts.iter().filter(|c| c.connection == t.connection) {
        let Some((from, to)) = c.subject.split_once(" -> ") else {
            continue;
        };
        if edges.iter().any(|e| e.from == from && e.to == to) {
            continue;
        }
        if let Some(e) = edges.iter_mut().find(|e| e.from == "*" && e.to == to) {
            match c.outcome.as_str() {
                "applied" => e.decided += c.n,
                _ => e.refused += c.n,
            }
            continue;
        }
        match off_table.iter_mut().find(|e| e.from == from && e.to == to) {
            Some(e) => e.refused += c.n,
            None => off_table.push(Edge {
                from: from.to_string(),
                to: to.to_string(),
                when: None,
                decided: 0,
                refused: c.n,
            }),
        }
    }
    let width = nodes.iter().map(|n| n.x).fold(0.0, f64::max) + NODE_W + MARGIN;
    let height = nodes.iter().map(|n| n.y).fold(0.0, f64::max) + NODE_H + MARGIN;
    Drawing {
        connection: t.connection.clone(),
        width,
        height,
        nodes,
        edges,
        off_table,
    }
}
