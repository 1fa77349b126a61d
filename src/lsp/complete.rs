//! Completion: the word being typed decides what is offered. `#` offers the
//! Zendesk field ids of the schema lockfile, `ticket.` the Zendesk field
//! aliases, `Object.` the Salesforce fields (declared, and from the
//! lockfile); anything else the keywords and every declared name.

use super::hover::KEYWORDS;
use super::position::LineIndex;
use super::workspace::Analysis;
use crate::syntax::FileId;
use lsp_types::{CompletionItem, CompletionItemKind, CompletionTextEdit, TextEdit};
use std::collections::BTreeMap;

pub fn complete(a: &Analysis, file: FileId, offset: usize) -> Vec<CompletionItem> {
    let text = a.text(file);
    let offset = offset.min(text.len());
    if !text.is_char_boundary(offset) {
        return Vec::new();
    }
    let typed_start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '#'))
        .last()
        .map_or(offset, |(i, _)| i);
    let typed = &text[typed_start..offset];
    let env = &a.checked.env;
    // label -> (kind, detail); a BTreeMap keeps one of each, sorted.
    let mut items: BTreeMap<String, (CompletionItemKind, String)> = BTreeMap::new();
    let mut add = |label: String, kind, detail: String| {
        items.entry(label).or_insert((kind, detail));
    };
    let zendesk = |conn: &str| {
        env.conns
            .get(conn)
            .is_some_and(|c| c.kind == crate::check::Kind::Zendesk)
    };
    if typed.starts_with('#') {
        for (conn, z) in a.lock.iter().flat_map(|l| &l.zendesk) {
            for f in &z.ticket_fields {
                add(
                    format!("#{}", f.id),
                    CompletionItemKind::VALUE,
                    format!("{} ({}, {conn})", f.title, f.kind),
                );
            }
        }
    } else if typed.starts_with("ticket.") {
        for (conn, fields) in env.fields.iter().filter(|(c, _)| zendesk(c)) {
            for (name, f) in fields {
                add(
                    format!("ticket.{name}"),
                    CompletionItemKind::FIELD,
                    format!("{} ({conn})", f.ty),
                );
            }
        }
    } else if typed.contains('.') && typed.starts_with(|c: char| c.is_ascii_uppercase()) {
        for (conn, fields) in env.fields.iter().filter(|(c, _)| !zendesk(c)) {
            for (name, f) in fields {
                add(
                    name.clone(),
                    CompletionItemKind::FIELD,
                    format!("{} ({conn})", f.ty),
                );
            }
        }
        for (conn, s) in a.lock.iter().flat_map(|l| &l.salesforce) {
            for (object, o) in &s.objects {
                for (field, f) in &o.fields {
                    add(
                        format!("{object}.{field}"),
                        CompletionItemKind::FIELD,
                        format!("{} ({conn}, from the lockfile)", f.kind),
                    );
                }
            }
        }
    } else {
        for (k, doc) in KEYWORDS {
            add(k.to_string(), CompletionItemKind::KEYWORD, doc.to_string());
        }
        for k in [
            "when", "and", "or", "not", "in", "has", "true", "false", "none",
        ] {
            add(k.to_string(), CompletionItemKind::KEYWORD, String::new());
        }
        for (conn, t) in &env.tables {
            for s in &t.statuses {
                let label = s.label.as_deref().unwrap_or("");
                add(
                    s.name.clone(),
                    CompletionItemKind::ENUM_MEMBER,
                    format!("status of {conn}: {} \"{label}\"", s.category.as_str()),
                );
            }
        }
        for (name, c) in &env.conns {
            add(
                name.clone(),
                CompletionItemKind::MODULE,
                format!("connection: {}", c.kind.as_str()),
            );
        }
        for name in env.templates.keys() {
            add(name.clone(), CompletionItemKind::TEXT, "template".into());
        }
        for name in env.skus.keys() {
            add(name.clone(), CompletionItemKind::CLASS, "sku table".into());
        }
        for (conn, fields) in &env.fields {
            for (name, f) in fields {
                add(
                    name.clone(),
                    CompletionItemKind::FIELD,
                    format!("{} ({conn})", f.ty),
                );
            }
        }
    }
    let range = LineIndex::new(text).range(typed_start, offset);
    items
        .into_iter()
        .filter(|(label, _)| label.starts_with(typed))
        .map(|(label, (kind, detail))| CompletionItem {
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(
                range,
                label.clone(),
            ))),
            label,
            kind: Some(kind),
            detail: (!detail.is_empty()).then_some(detail),
            ..Default::default()
        })
        .collect()
}
