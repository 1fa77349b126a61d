//! What hovering shows: for a name, what it is where it is declared (a
//! status's category and label, a field's type and id, a connection's
//! kind and scopes); for a keyword, what the construct does; for a
//! statement, what the rule does in plain words.

use super::index::Sym;
use super::workspace::Analysis;
use crate::syntax::ast::Item;
use crate::syntax::{FileId, Span};

/// The markdown to show and the span it is about.
pub fn hover(a: &Analysis, file: FileId, offset: usize) -> Option<(String, Span)> {
    if let Some(o) = a.index.at(file, offset) {
        return Some((describe(a, &o.sym), o.span));
    }
    if let Some((word, span)) = word_at(a, file, offset) {
        if let Some((_, doc)) = KEYWORDS.iter().find(|(k, _)| *k == word) {
            return Some((format!("**{word}**: {doc}"), span));
        }
    }
    a.index
        .rule_at(file, offset)
        .map(|r| (r.what.clone(), r.span))
}

fn word_at(a: &Analysis, file: FileId, offset: usize) -> Option<(String, Span)> {
    let text = a.text(file);
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let offset = offset.min(text.len());
    if !text.is_char_boundary(offset) {
        return None;
    }
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .find(|c: char| !is_word(c))
        .map_or(text.len(), |i| offset + i);
    (end > start).then(|| (text[start..end].to_string(), Span::new(file, start, end)))
}

fn describe(a: &Analysis, sym: &Sym) -> String {
    let env = &a.checked.env;
    match sym {
        Sym::Conn(name) => match env.conns.get(name) {
            Some(c) => {
                let mut s = format!("**connection** `{name}`: {}", c.kind.as_str());
                for (k, v) in &c.settings {
                    s.push_str(&format!("\n\n{k}: `{v}`"));
                }
                if !c.scopes.is_empty() {
                    let scopes: Vec<&str> = c.scopes.iter().map(|(s, _)| s.as_str()).collect();
                    s.push_str(&format!("\n\nscopes: {}", scopes.join(", ")));
                }
                if !c.objects.is_empty() {
                    let objects: Vec<&str> = c.objects.iter().map(|(o, _)| o.as_str()).collect();
                    s.push_str(&format!("\n\nobjects: {}", objects.join(", ")));
                }
                if let Some(rpm) = c.rate_limit_rpm {
                    s.push_str(&format!("\n\nrate limit: {rpm} requests per minute"));
                }
                s
            }
            None => format!("connection `{name}`: not declared"),
        },
        Sym::Status(conn, name) => match env.tables.get(conn).and_then(|t| t.get(name)) {
            Some(st) => {
                let mut s = format!(
                    "**status** `{name}` of `{conn}`\n\ncategory: **{}**",
                    st.category.as_str()
                );
                if let Some(l) = &st.label {
                    s.push_str(&format!(" · label: \"{l}\""));
                }
                if let Some(id) = st.id {
                    s.push_str(&format!(" · custom status #{id}"));
                }
                if st.initial {
                    s.push_str(" · initial");
                }
                if st.terminal.is_some() {
                    s.push_str(" · terminal (no transition leaves it)");
                }
                s
            }
            None => format!("status `{name}`: not declared in the `{conn}` table"),
        },
        Sym::Field(conn, name) => match env.fields.get(conn).and_then(|f| f.get(name)) {
            Some(f) => {
                let mut s = format!("**field** `{name}` of `{conn}`\n\ntype: {}", f.ty);
                if let Some(id) = f.id {
                    s.push_str(&format!(" · id #{id}"));
                }
                if let Some(l) = &f.label {
                    s.push_str(&format!(" · label: \"{l}\""));
                }
                s.push_str(&locked(a, conn, name, f.id));
                s
            }
            None => format!("field `{name}`: not declared for `{conn}`"),
        },
        Sym::Template(name) => {
            let body = a
                .checked
                .files
                .iter()
                .flat_map(|f| &f.items)
                .find_map(|i| match i {
                    Item::Template(t) if t.name.name == *name => Some(
                        a.sources
                            .get(t.body.span.file)
                            .slice(t.body.span)
                            .to_string(),
                    ),
                    _ => None,
                });
            match body {
                Some(b) => {
                    let preview: Vec<&str> = b.trim().lines().take(8).collect();
                    format!("**template** `{name}`\n\n```\n{}\n```", preview.join("\n"))
                }
                None => format!("template `{name}`: not declared"),
            }
        }
        Sym::Sku(name) => match env.skus.get(name) {
            Some(p) => format!("**sku table** `{name}`: {} declared products", p.len()),
            None => format!("sku table `{name}`: not declared"),
        },
        Sym::Escalation(name) => a
            .index
            .rules
            .iter()
            .find(|r| r.what.starts_with(&format!("**escalation** `{name}`")))
            .map_or_else(|| format!("escalation `{name}`"), |r| r.what.clone()),
    }
}

/// What the schema lockfile says about a field, if there is one.
fn locked(a: &Analysis, conn: &str, name: &str, id: Option<u64>) -> String {
    let Some(lock) = &a.lock else {
        return String::new();
    };
    if let (Some(z), Some(id)) = (lock.zendesk.get(conn), id) {
        return match z.ticket_fields.iter().find(|f| f.id == id) {
            Some(f) => format!("\n\nin the instance: \"{}\" ({})", f.title, f.kind),
            None => "\n\nnot in the instance's lockfile".into(),
        };
    }
    if let Some((object, field)) = name.split_once('.') {
        let f = lock
            .salesforce
            .get(conn)
            .and_then(|s| s.objects.get(object))
            .and_then(|o| o.fields.get(field));
        if let Some(f) = f {
            return format!(
                "\n\nin the instance: {}{}",
                f.kind,
                if f.updateable { "" } else { ", read-only" }
            );
        }
    }
    String::new()
}

/// One line on each keyword, from docs/LANGUAGE.md.
pub const KEYWORDS: &[(&str, &str)] = &[
    ("connection", "a Zendesk or Salesforce instance: where it is, which credential (by reference only), which scopes, how fast it may be called."),
    ("statuses", "the ticket (or Case) statuses of a connection, each with its category, and the transitions the AI agent may make between them; any other status change is refused."),
    ("fields", "the custom fields of a connection: a Zendesk alias with its id, or a Salesforce `Object.Field__c`, with its type."),
    ("map", "copies fields from one connection to another when they change, through a translation table where the values differ."),
    ("sku", "turns whatever a customer called a product into one catalogue id: normalisation, alias strings and regexes, and tests."),
    ("template", "the text of a comment, with `{{ placeholders }}` filled from the event."),
    ("escalation", "when the AI agent hands a conversation to a person, and what it writes on the way: comments, fields, group, status."),
    ("test", "an event and what the mappings must do with it; `l3map test` runs it."),
    ("normalize", "the steps applied, in order, to the customer's text and to every alias before matching."),
    ("products", "the catalogue ids this table may produce; a typo in a rule's target is then an error."),
    ("apply", "where the table is used: the event value to normalise and the field that receives the product id."),
    ("reason", "why the hand-off happens, in words for the person who takes over."),
    ("comment", "writes a private comment (Zendesk) or an internal CaseComment (Salesforce), from a template or inline text."),
    ("set", "writes a field on hand-off."),
    ("assign", "assigns the ticket to a Zendesk group by name."),
    ("status", "moves the ticket or Case to a status of the connection's table."),
    ("event", "the event the test feeds in, as JSON."),
    ("expect", "what the test requires: a status, a field, a comment, a group, a product, a refusal, or nothing."),
    ("terminal", "no transition may leave this status."),
    ("initial", "the status new tickets start in."),
];
