//! Statuses per ticket form, against the lockfile: which Zendesk ticket
//! forms a status table applies to (its `forms`, else every active form),
//! and whether each status the project moves tickets to is offered on
//! them. A status declared by category only (no `#id`) is the category's
//! default custom status, which Zendesk assigns when only `status` is sent
//! (<https://support.zendesk.com/hc/en-us/articles/4959212269210>).
//!
//! It also records the lockfile's forms in the symbol tables, so the IR
//! carries them to the runtime, which refuses a move to a status the
//! ticket's form does not offer (`eval::status`).

use super::{Lockfile, ZendeskSchema};
use crate::check::error::{CheckError, CheckErrorKind, FormErrorKind};
use crate::check::{did_you_mean, Category, Env, Kind};
use crate::model::{FormFacts, LockedForms, StatusInfo};
use crate::syntax::ast::{self, EscStmt, Item};
use crate::syntax::Span;

pub(crate) fn check(env: &mut Env, files: &[ast::File], lock: &Lockfile) -> Vec<CheckError> {
    let mut out = Vec::new();
    let zendesk: Vec<String> = env
        .conns
        .iter()
        .filter(|(_, c)| c.kind == Kind::Zendesk)
        .map(|(n, _)| n.clone())
        .collect();
    for name in zendesk {
        let (Some(z), Some(table)) = (lock.zendesk.get(&name), env.tables.get_mut(&name)) else {
            continue;
        };
        let Some(forms) = &z.ticket_forms else {
            out.push(FormErrorKind::FormsNotLocked { conn: name.clone() }.at(table.span));
            continue;
        };
        let locked = locked(z, forms);
        table.locked = Some(locked.clone());
        out.extend(default_clashes(table, &locked));
        let table = table.clone();
        let mut applies: Vec<&FormFacts> = Vec::new();
        if table.forms.is_empty() {
            applies.extend(locked.forms.iter().filter(|f| f.active));
        }
        let mut seen: Vec<&str> = Vec::new();
        for (wanted, span) in &table.forms {
            if seen.iter().any(|s| same_name(s, wanted)) {
                continue; // said by `declared`
            }
            seen.push(wanted);
            // Zendesk does not make form names unique: a name means every
            // form of that name, as at run time (which goes by the
            // ticket's form id), each named with its id in the messages.
            let named: Vec<&FormFacts> = locked
                .forms
                .iter()
                .filter(|f| same_name(&f.name, wanted))
                .collect();
            if !named.is_empty() && named.iter().all(|f| !f.active) {
                out.push(
                    FormErrorKind::InactiveForm {
                        form: quoted_in(&named, &locked.forms),
                    }
                    .at(*span),
                );
            }
            match named.is_empty() {
                false => applies.extend(named),
                true => out.push(
                    CheckErrorKind::NotInInstance {
                        what: format!("ticket form \"{wanted}\""),
                        system: "Zendesk",
                        help: did_you_mean(wanted, locked.forms.iter().map(|f| f.name.as_str()))
                            .unwrap_or_else(|| names_help(&locked.forms)),
                    }
                    .at(*span),
                ),
            }
        }
        if applies.is_empty() {
            continue;
        }
        for (status, span) in targets(files, &name) {
            let Some(info) = table.get(&status) else {
                continue; // an unknown status, reported elsewhere
            };
            let Some(id) = locked.resolved(info) else {
                continue;
            };
            let custom = custom_name(z, id, info);
            let missing: Vec<&&FormFacts> = applies
                .iter()
                .filter(|f| !f.custom_status_ids.contains(&id))
                .collect();
            if missing.len() == applies.len() {
                let offering: Vec<&FormFacts> = locked
                    .forms
                    .iter()
                    // An inactive form takes no tickets: not worth adding.
                    .filter(|f| f.active && f.custom_status_ids.contains(&id))
                    .collect();
                let help = if offering.is_empty() {
                    "offer it on a form in Admin Center (Objects and rules > Tickets > Forms), then run `l3map schema pull`".into()
                } else {
                    format!(
                        "it is offered on {}: add {} to the table's `forms`, or offer it on {} in Admin Center (Objects and rules > Tickets > Forms) and run `l3map schema pull`",
                        quoted_in(&offering, &locked.forms),
                        if offering.len() == 1 { "it" } else { "them" },
                        quoted_in(&applies, &locked.forms)
                    )
                };
                out.push(
                    FormErrorKind::OnNoForm {
                        status,
                        custom,
                        forms: quoted_in(&applies, &locked.forms),
                        help,
                    }
                    .at(span),
                );
                continue;
            }
            for f in missing {
                out.push(
                    FormErrorKind::NotOnForm {
                        status: status.clone(),
                        custom: custom.clone(),
                        form: format!("\"{}\" (#{})", f.name, f.id),
                        help: format!(
                            "l3map refuses this move for tickets on \"{}\"; offer the status on that form in Admin Center (Objects and rules > Tickets > Forms) and run `l3map schema pull`. The table's `forms` only narrows what `check` looks at: at run time each ticket's own form decides",
                            f.name
                        ),
                    }
                    .at(span),
                );
            }
        }
    }
    out
}

/// Two names for one form as Zendesk shows it: equal once both are in
/// Unicode NFC, so an accent typed precomposed matches one the lockfile
/// holds decomposed (the two look the same in every editor).
fn same_name(a: &str, b: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    a == b || a.nfc().eq(b.nfc())
}

/// What a table's `forms` says wrong without a lockfile: a form named twice,
/// and `forms` on a Salesforce table (forms are Zendesk's, so nothing
/// checks or refuses by them there; said once, at its first form).
pub(crate) fn declared(env: &Env) -> Vec<CheckError> {
    let mut out = Vec::new();
    for (name, t) in &env.tables {
        if env.conns.get(name).is_some_and(|c| c.kind != Kind::Zendesk) {
            if let Some((_, span)) = t.forms.first() {
                out.push(FormErrorKind::FormsOffZendesk { conn: name.clone() }.at(*span));
            }
            continue;
        }
        for (i, (form, span)) in t.forms.iter().enumerate() {
            if t.forms[..i].iter().any(|(f, _)| same_name(f, form)) {
                out.push(FormErrorKind::FormNamedTwice { form: form.clone() }.at(*span));
            }
        }
    }
    out
}

/// A status by category only is its category's default custom status; an
/// `#id` status declaring that same custom status could not be told from it
/// (l3map writes both as that id and reads the id back as one of them).
fn default_clashes(table: &crate::model::TableInfo, locked: &LockedForms) -> Vec<CheckError> {
    table
        .statuses
        .iter()
        .filter(|s| s.id.is_none())
        .filter_map(|s| {
            let id = locked.resolved(s)?;
            let other = table.statuses.iter().find(|t| t.id == Some(id))?;
            Some(
                FormErrorKind::DefaultIndistinct {
                    status: s.name.clone(),
                    other: other.name.clone(),
                    category: s.category.as_str().to_string(),
                    id,
                }
                .at(s.span),
            )
        })
        .collect()
}

/// The lockfile's forms and category defaults, as the symbol tables keep them.
fn locked(z: &ZendeskSchema, forms: &[super::TicketForm]) -> LockedForms {
    LockedForms {
        forms: forms
            .iter()
            .map(|f| FormFacts {
                id: f.id,
                name: f.name.clone(),
                active: f.active,
                custom_status_ids: f.custom_status_ids.clone(),
            })
            .collect(),
        defaults: z
            .custom_statuses
            .iter()
            .filter(|s| s.default)
            .filter_map(|s| {
                let c = Category::ALL
                    .iter()
                    .find(|(n, _)| *n == s.status_category)?;
                Some((c.1, s.id))
            })
            .collect(),
    }
}

/// `custom status #4401 "With tier 2"`, or the category default's words.
fn custom_name(z: &ZendeskSchema, id: u64, info: &StatusInfo) -> String {
    let label = z
        .custom_statuses
        .iter()
        .find(|c| c.id == id)
        .map(|c| format!(" \"{}\"", c.agent_label))
        .unwrap_or_default();
    match info.id {
        Some(_) => format!("custom status #{id}{label}"),
        None => format!(
            "the {} category's default, custom status #{id}{label}",
            info.category.as_str()
        ),
    }
}

/// Every status the project moves a ticket of `conn` to, once each, at its
/// first place: transitions' targets and escalations' `status`.
fn targets(files: &[ast::File], conn: &str) -> Vec<(String, Span)> {
    let mut out: Vec<(String, Span)> = Vec::new();
    let mut add = |name: &str, span: Span| {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), span));
        }
    };
    for item in files.iter().flat_map(|f| &f.items) {
        match item {
            Item::Statuses(t) if t.conn.name == conn => {
                for to in t.transitions.iter().flat_map(|tr| &tr.to) {
                    add(&to.name, to.span);
                }
            }
            Item::Escalation(e) => {
                for s in &e.stmts {
                    if let EscStmt::Status {
                        conn: c, status, ..
                    } = s
                    {
                        if c.name == conn {
                            add(&status.name, status.span);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `"Billing", "Refunds"`; a name two forms of `all` share gets its id,
/// `"Billing" (#501)`, so the two can be told apart.
fn quoted_in(forms: &[&FormFacts], all: &[FormFacts]) -> String {
    let names: Vec<String> = forms
        .iter()
        .map(|f| match all.iter().filter(|o| o.name == f.name).count() {
            1 => format!("\"{}\"", f.name),
            _ => format!("\"{}\" (#{})", f.name, f.id),
        })
        .collect();
    names.join(", ")
}

fn names_help(forms: &[FormFacts]) -> String {
    if forms.is_empty() {
        return "the instance has no ticket forms: remove `forms`".into();
    }
    let shown: Vec<String> = forms
        .iter()
        .take(8)
        .map(|f| format!("\"{}\"", f.name))
        .collect();
    format!("the instance has: {}", shown.join(", "))
}
