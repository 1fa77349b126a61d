//! The outline of a file (document symbols): its blocks, and inside them
//! the statuses, transitions, fields, mapping rules and properties.

use super::position::LineIndex;
use crate::syntax::ast::{self, Item};
use crate::syntax::Span;
use lsp_types::{DocumentSymbol, SymbolKind};

pub fn outline(file: &ast::File, text: &str) -> Vec<DocumentSymbol> {
    let idx = LineIndex::new(text);
    let sym = |name: String, detail: Option<String>, kind, span: Span, sel: Span, children| {
        #[allow(deprecated)] // `deprecated` is a required field of the struct.
        DocumentSymbol {
            name,
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: idx.range(span.start as usize, span.end as usize),
            selection_range: idx.range(sel.start as usize, sel.end as usize),
            children,
        }
    };
    let mut out = Vec::new();
    for item in &file.items {
        let s = match item {
            Item::Connection(c) => {
                let props = c
                    .props
                    .iter()
                    .map(|p| {
                        sym(
                            p.key.name.clone(),
                            None,
                            SymbolKind::PROPERTY,
                            p.span,
                            p.key.span,
                            None,
                        )
                    })
                    .collect();
                sym(
                    c.name.name.clone(),
                    Some(format!("connection: {}", c.kind.name)),
                    SymbolKind::MODULE,
                    c.span,
                    c.name.span,
                    Some(props),
                )
            }
            Item::Statuses(t) => {
                let mut children: Vec<DocumentSymbol> = t
                    .statuses
                    .iter()
                    .map(|s| {
                        let detail = Some(s.category.name.clone());
                        sym(
                            s.name.name.clone(),
                            detail,
                            SymbolKind::ENUM_MEMBER,
                            s.span,
                            s.name.span,
                            None,
                        )
                    })
                    .collect();
                children.extend(t.transitions.iter().map(|tr| {
                    let from = match &tr.from {
                        ast::From::Any(_) => "*".to_string(),
                        ast::From::List(l) => names(l),
                    };
                    let name = format!("{from} -> {}", names(&tr.to));
                    sym(name, None, SymbolKind::EVENT, tr.span, tr.span, None)
                }));
                sym(
                    format!("statuses {}", t.conn.name),
                    None,
                    SymbolKind::ENUM,
                    t.span,
                    t.conn.span,
                    Some(children),
                )
            }
            Item::Fields(f) => {
                let children = f
                    .fields
                    .iter()
                    .map(|d| {
                        let detail = Some(d.ty.name.name.clone());
                        sym(
                            d.name.display(),
                            detail,
                            SymbolKind::FIELD,
                            d.span,
                            d.name.span(),
                            None,
                        )
                    })
                    .collect();
                sym(
                    format!("fields {}", f.conn.name),
                    None,
                    SymbolKind::STRUCT,
                    f.span,
                    f.conn.span,
                    Some(children),
                )
            }
            Item::Map(m) => {
                let children = m
                    .rules
                    .iter()
                    .map(|r| {
                        let name = format!("{} -> {}", r.source.display(), r.target.display());
                        sym(
                            name,
                            None,
                            SymbolKind::OPERATOR,
                            r.span,
                            r.source.span(),
                            None,
                        )
                    })
                    .collect();
                let name = format!("map {} -> {}", m.from.name, m.to.name);
                sym(
                    name,
                    None,
                    SymbolKind::OBJECT,
                    m.span,
                    m.from.span,
                    Some(children),
                )
            }
            Item::Sku(s) => sym(
                format!("sku {}", s.name.name),
                None,
                SymbolKind::ARRAY,
                s.span,
                s.name.span,
                None,
            ),
            Item::Template(t) => sym(
                format!("template {}", t.name.name),
                None,
                SymbolKind::STRING,
                t.span,
                t.name.span,
                None,
            ),
            Item::Escalation(e) => sym(
                format!("escalation {}", e.name.name),
                None,
                SymbolKind::FUNCTION,
                e.span,
                e.name.span,
                None,
            ),
            Item::Test(t) => sym(
                format!("test {}", t.name.name),
                None,
                SymbolKind::METHOD,
                t.span,
                t.name.span,
                None,
            ),
            Item::Link(l) => sym(
                format!(
                    "link {}.{} <-> {}.{}",
                    l.desk.name, l.zendesk.name, l.crm.name, l.object.name
                ),
                None,
                SymbolKind::INTERFACE,
                l.span,
                l.object.span,
                None,
            ),
        };
        out.push(s);
    }
    out
}

fn names(ids: &[ast::Ident]) -> String {
    ids.iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
