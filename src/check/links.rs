//! Record links: `link desk.organization <-> crm.Account { on ... }`.
//!
//! What a link may compare, and what Salesforce can look a record up by,
//! live here as pure functions ([`sides`], [`zd_key`], [`sf_standard`]) so
//! lowering reads the same facts the checks were made against.
//!
//! The lookup from Zendesk to Salesforce is one SOQL query filtering on the
//! link's field, which must be selective: Salesforce indexes `Id`, `Name`,
//! `CreatedDate`, `SystemModstamp`, `RecordTypeId`, `Email` of contacts
//! and leads, lookup (foreign key) fields, and fields marked External ID or
//! Unique; other fields need a custom index from Salesforce Support
//! (<https://developer.salesforce.com/docs/platform/salesforce-large-data-volumes-bp/guide/ldv-deployments-infrastructure-indexes.html>).

use super::link_values::{diagnostic, ZdValue};
use super::{did_you_mean, CheckErrorKind, Ctx, Kind, LinkErrorKind, Ty};
use crate::syntax::ast::{self, FieldDecl, Ident};
use crate::syntax::Span;
use std::collections::BTreeMap;

/// The Zendesk records a link can start from.
pub(crate) const ZD_OBJECTS: &[&str] = &["ticket", "organization", "user"];

/// The Zendesk ticket statuses `tickets` may name, in Zendesk's order
/// (<https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/>, `status`).
pub(crate) const ZD_STATUSES: &[&str] = &["new", "open", "pending", "hold", "solved", "closed"];

/// The statuses a ticket can still be updated in: Zendesk answers every
/// update of a closed ticket with `Status: closed prevents ticket update`
/// (https://developer.zendesk.com/documentation/ticketing/managing-tickets/creating-and-updating-tickets/).
const UPDATABLE: &[&str] = &["new", "open", "pending", "hold", "solved"];

/// `unsolved`, the default: every status before `solved`.
pub(crate) const UNSOLVED: &[&str] = &["new", "open", "pending", "hold"];

/// The Zendesk value of a link, resolved from the path after the object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ZdKeyRef {
    Id,
    ExternalId,
    Email,
    /// `organization.fields.KEY` / `user.fields.KEY`.
    Field(String),
    /// `ticket.ALIAS`, an alias of `fields DESK`.
    TicketField(String),
}

/// What l3map knows of a standard Salesforce field: whether SOQL may filter
/// on it selectively, and whether at most one record holds a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SfField {
    pub indexed: bool,
    pub unique: bool,
}

/// Standard fields a link may compare, by object (`None`: not one l3map
/// knows). Lookup fields (`AccountId`, `ContactId`, `OwnerId`, ...) are
/// foreign keys, indexed by the platform; `CaseNumber` is an auto number,
/// one per Case.
pub(crate) fn sf_standard(object: &str, field: &str) -> Option<SfField> {
    let idx = |unique| {
        Some(SfField {
            indexed: true,
            unique,
        })
    };
    match field {
        "Id" => idx(true),
        "Name" if object != "Case" => idx(false),
        "Email" if matches!(object, "Contact" | "Lead") => idx(false),
        "CaseNumber" if object == "Case" => idx(true),
        "OwnerId" | "RecordTypeId" | "CreatedById" | "LastModifiedById" => idx(false),
        "AccountId" if matches!(object, "Contact" | "Case" | "Opportunity" | "Asset") => idx(false),
        "ContactId" if matches!(object, "Case" | "Asset") => idx(false),
        "ParentId" if matches!(object, "Account" | "Case") => idx(false),
        _ => None,
    }
}

fn sf_standard_names(object: &str) -> Vec<&'static str> {
    [
        "Id",
        "Name",
        "Email",
        "CaseNumber",
        "OwnerId",
        "RecordTypeId",
        "AccountId",
        "ContactId",
        "ParentId",
    ]
    .into_iter()
    .filter(|f| sf_standard(object, f).is_some())
    .collect()
}

/// The two sides of `on`: (Zendesk path, its span, Salesforce path, its
/// span), whichever order they were written in; `None` when neither side
/// starts with the link's Zendesk object.
pub(crate) fn sides<'a>(
    l: &ast::Link,
    on: &'a ast::LinkOn,
) -> Option<(&'a [Ident], Span, &'a [Ident], Span)> {
    let starts = |p: &[Ident], name: &str| p.first().is_some_and(|s| s.name == name);
    if starts(&on.left, &l.zendesk.name) {
        Some((&on.left, on.left_span, &on.right, on.right_span))
    } else if starts(&on.right, &l.zendesk.name) {
        Some((&on.right, on.right_span, &on.left, on.left_span))
    } else {
        None
    }
}

/// The Zendesk value `rest` (the path after `ticket.` / `organization.` /
/// `user.`) names; `None` when the object has no such value a link compares.
pub(crate) fn zd_key(object: &str, rest: &[&str]) -> Option<ZdKeyRef> {
    match (object, rest) {
        (_, ["id"]) => Some(ZdKeyRef::Id),
        (_, ["external_id"]) => Some(ZdKeyRef::ExternalId),
        ("user", ["email"]) => Some(ZdKeyRef::Email),
        ("organization" | "user", ["fields", key]) => Some(ZdKeyRef::Field(key.to_string())),
        ("ticket", [alias]) => Some(ZdKeyRef::TicketField(alias.to_string())),
        _ => None,
    }
}

/// The statuses `tickets` names, expanded (`unsolved`, `all`).
pub(crate) fn ticket_statuses(l: &ast::Link) -> Vec<String> {
    let Some(t) = l.tickets.first() else {
        return UNSOLVED.iter().map(|s| s.to_string()).collect();
    };
    let mut out: Vec<String> = Vec::new();
    for n in &t.names {
        let add: Vec<&str> = match n.name.as_str() {
            "unsolved" => UNSOLVED.to_vec(),
            // Every status a ticket can still be written in: Zendesk
            // refuses updates to closed tickets.
            "all" => UPDATABLE.to_vec(),
            s => vec![s],
        };
        for s in add {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
    }
    // Zendesk's order, whatever order they were written in.
    out.sort_by_key(|s| ZD_STATUSES.iter().position(|z| z == s));
    out
}

/// `external_id`, `unique`, `indexed` are Salesforce's: on a Zendesk field
/// they mean nothing.
pub(super) fn field_attrs(cx: &mut Ctx, kind: Kind, f: &FieldDecl) {
    let mut seen: Vec<&str> = Vec::new();
    for a in &f.attrs {
        if kind == Kind::Zendesk {
            cx.err(
                CheckErrorKind::BadFieldDecl {
                    message: format!("`{}` is a Salesforce field attribute", a.name),
                    help: "remove it: a Zendesk field is looked up by id, and links compare organization and user values, not ticket field attributes".into(),
                }
                .at(a.span),
            );
        } else if seen.contains(&a.name.as_str()) {
            cx.err(
                CheckErrorKind::BadFieldDecl {
                    message: format!("`{}` is written twice", a.name),
                    help: "write each attribute once".into(),
                }
                .at(a.span),
            );
        }
        seen.push(&a.name);
    }
}

fn shape(cx: &mut Ctx, span: Span, message: String, help: String) {
    cx.err(CheckErrorKind::from(LinkErrorKind::LinkShape { message, help }).at(span));
}

/// Checks one link; `seen` holds the links checked so far by Salesforce
/// connection and object, for "linked twice".
pub(super) fn check(cx: &mut Ctx, l: &ast::Link, seen: &mut BTreeMap<(String, String), Span>) {
    let desk = cx.use_conn(&l.desk, Some(Kind::Zendesk), "the Zendesk side of a link");
    let crm = cx.use_conn(
        &l.crm,
        Some(Kind::Salesforce),
        "the Salesforce side of a link",
    );
    let zd_ok = ZD_OBJECTS.contains(&l.zendesk.name.as_str());
    if !zd_ok {
        let help = match l.zendesk.name.as_str() {
            "requester" | "submitter" | "assignee" | "users" | "contact" => {
                "a ticket's requester is a `user`: write `link DESK.user <-> ...`".to_string()
            }
            "org" | "organizations" | "company" | "account" => {
                "write `link DESK.organization <-> ...`".to_string()
            }
            n => did_you_mean(n, ZD_OBJECTS.iter().copied()).unwrap_or_else(|| {
                "a link starts from a Zendesk `ticket`, `organization` or `user`".into()
            }),
        };
        cx.err(
            CheckErrorKind::from(LinkErrorKind::LinkZendeskObject {
                name: l.zendesk.name.clone(),
                help,
            })
            .at(l.zendesk.span),
        );
    }
    if desk.is_some() {
        // The runtime reads the linked organization or user (and searches
        // them by value for fan-out): Zendesk's `organizations:read` /
        // `users:read`, or the global `read`.
        let resource = match l.zendesk.name.as_str() {
            "organization" => Some("organizations"),
            "user" => Some("users"),
            _ => None,
        };
        if let Some(r) = resource {
            cx.usage
                .zd_reads
                .push((l.desk.name.clone(), r, l.zendesk.span));
        }
    }
    let object = l.object.name.clone();
    if crm.is_some() {
        let key = (l.crm.name.clone(), object.clone());
        if let Some(first) = seen.get(&key).copied() {
            cx.duplicate(
                "link to",
                format!("{}.{}", l.crm.name, object),
                l.object.span,
                Some(first),
                "a Salesforce record reaches its tickets through one link: keep one, or link another object",
            );
        } else {
            seen.insert(key, l.object.span);
        }
        let listed = &cx.env.conns[&l.crm.name].objects;
        if !listed.is_empty() && !listed.iter().any(|(o, _)| *o == object) {
            cx.err(
                CheckErrorKind::UndeclaredObject {
                    object: object.clone(),
                    conn: l.crm.name.clone(),
                }
                .at(l.object.span),
            );
        }
        cx.usage
            .objects
            .insert((l.crm.name.clone(), object.clone()));
        cx.usage.linked.insert(object.clone());
    }
    // Statements said twice.
    if let Some(t) = l.tickets.get(1) {
        shape(
            cx,
            t.span,
            "a link says `tickets` once".into(),
            "list every status in one `tickets` line: `tickets new, open, pending`".into(),
        );
    }
    if let Some(p) = l.pick.get(1) {
        shape(
            cx,
            p.span,
            "a link says `pick` once".into(),
            "remove one `pick`".into(),
        );
    }
    if let Some(p) = l.pick.first() {
        if p.name != "newest" {
            shape(
                cx,
                p.span,
                format!("`pick {}` is not a way to pick a record", p.name),
                "write `pick newest`: of several matching records, the most recently modified (SystemModstamp) wins".into(),
            );
        }
    }
    if let Some(t) = l.tickets.first() {
        check_tickets(cx, t);
    }
    let on = match l.on.as_slice() {
        [] => {
            shape(
                cx,
                l.object.span,
                format!("the link to `{object}` does not say what to compare"),
                format!(
                    "add `on {}.external_id == {object}.Id` (or another pair of values)",
                    l.zendesk.name
                ),
            );
            return;
        }
        [on, rest @ ..] => {
            if let Some(o) = rest.first() {
                shape(
                    cx,
                    o.span,
                    "a link compares one pair of values".into(),
                    "keep one `on`: l3map looks records up by one field".into(),
                );
            }
            on
        }
    };
    if !zd_ok {
        return;
    }
    let Some((zd, zd_span, sf, sf_span)) = sides(l, on) else {
        shape(
            cx,
            on.span,
            format!(
                "`on` must compare a value of the {} with a field of `{object}`",
                l.zendesk.name
            ),
            format!(
                "start one side with `{}.` and the other with `{object}.`, e.g. `on {}.external_id == {object}.Id`",
                l.zendesk.name, l.zendesk.name
            ),
        );
        return;
    };
    let sf_ok = sf.first().is_some_and(|s| s.name == object) && sf.len() == 2;
    if !sf_ok {
        let help = if sf.first().is_some_and(|s| s.name == object) {
            format!("compare a field of `{object}` itself, e.g. `{object}.Id`")
        } else {
            format!("the other side must be a field of `{object}`, e.g. `{object}.Id`")
        };
        shape(
            cx,
            sf_span,
            format!("`{}` is not a field of `{object}`", join(sf)),
            help,
        );
        return;
    }
    // The Zendesk side.
    let rest: Vec<&str> = zd[1..].iter().map(|s| s.name.as_str()).collect();
    let zd_ty = match zd_key(&l.zendesk.name, &rest) {
        Some(ZdKeyRef::TicketField(alias)) => {
            match desk.and_then(|_| cx.env.fields.get(&l.desk.name).and_then(|m| m.get(&alias))) {
                Some(f) => Some(f.ty.clone()),
                None if desk.is_none() => None,
                None => {
                    let declared: Vec<String> = cx
                        .env
                        .fields
                        .get(&l.desk.name)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    let help = did_you_mean(&alias, declared.iter().map(|s| s.as_str()))
                        .unwrap_or_else(|| {
                            format!(
                                "declare it in `fields {} {{ {alias} #360001234 string }}`, or compare `ticket.id` / `ticket.external_id`",
                                l.desk.name
                            )
                        });
                    cx.err(
                        CheckErrorKind::from(LinkErrorKind::LinkZendeskKey {
                            path: join(zd),
                            object: "ticket".into(),
                            help,
                        })
                        .at(zd_span),
                    );
                    return;
                }
            }
        }
        Some(ZdKeyRef::Id) => Some(Ty::Num),
        Some(_) => Some(Ty::Str),
        None => {
            let valid: &[&str] = match l.zendesk.name.as_str() {
                "ticket" => &["id", "external_id", "ALIAS"],
                "organization" => &["id", "external_id", "fields.KEY"],
                _ => &["id", "external_id", "email", "fields.KEY"],
            };
            let written = rest.join(".");
            let help = did_you_mean(&written, valid.iter().copied()).unwrap_or_else(|| {
                format!(
                    "a link compares {}",
                    valid
                        .iter()
                        .map(|v| format!("`{}.{v}`", l.zendesk.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            cx.err(
                CheckErrorKind::from(LinkErrorKind::LinkZendeskKey {
                    path: join(zd),
                    object: l.zendesk.name.clone(),
                    help,
                })
                .at(zd_span),
            );
            return;
        }
    };
    if crm.is_none() {
        return;
    }
    // The Salesforce side.
    let field = sf[1].name.clone();
    let full = format!("{object}.{field}");
    cx.usage.sf_paths.insert(full.clone());
    let declared = cx
        .env
        .fields
        .get(&l.crm.name)
        .and_then(|m| m.get(&full))
        .cloned();
    let (sf_ty, indexed, unique) = match (&declared, sf_standard(&object, &field)) {
        (Some(f), std) => {
            let has = |a: &str| f.attrs.iter().any(|x| x == a);
            (
                f.ty.clone(),
                std.is_some_and(|s| s.indexed)
                    || has("external_id")
                    || has("unique")
                    || has("indexed"),
                std.is_some_and(|s| s.unique) || has("unique"),
            )
        }
        (None, Some(std)) => (Ty::Str, std.indexed, std.unique),
        (None, None) => {
            let mut cands: Vec<String> = sf_standard_names(&object)
                .into_iter()
                .map(String::from)
                .collect();
            cands.extend(
                cx.env
                    .fields
                    .get(&l.crm.name)
                    .into_iter()
                    .flatten()
                    .filter_map(|(p, _)| p.strip_prefix(&format!("{object}.")).map(String::from)),
            );
            let help = did_you_mean(&field, cands.iter().map(|s| s.as_str())).unwrap_or_else(|| {
                format!(
                    "declare it with its type and how Salesforce indexes it: `fields {} {{ {full} string external_id }}`",
                    l.crm.name
                )
            });
            cx.err(
                CheckErrorKind::from(LinkErrorKind::LinkSalesforceField {
                    object: object.clone(),
                    field,
                    help,
                })
                .at(sf[1].span),
            );
            return;
        }
    };
    if let Some(zd_ty) = zd_ty {
        if let Some(help) = incomparable(&zd_ty, &sf_ty, zd_key(&l.zendesk.name, &rest)) {
            cx.err(
                CheckErrorKind::from(LinkErrorKind::LinkTypes {
                    zendesk: join(zd),
                    zd_ty: zd_ty.to_string(),
                    salesforce: full.clone(),
                    sf_ty: sf_ty.to_string(),
                    help,
                })
                .at(on.span),
            );
            return;
        }
        if let Some(key) = zd_key(&l.zendesk.name, &rest) {
            let key = match key {
                ZdKeyRef::Id => ZdValue::Id,
                ZdKeyRef::Email => ZdValue::Email,
                _ => ZdValue::Other,
            };
            let said = (join(zd), full.clone());
            if let Some((kind, never)) =
                diagnostic(&l.zendesk.name, said, key, &zd_ty, &object, &field)
            {
                cx.err(CheckErrorKind::from(kind).at(on.span));
                if never {
                    return;
                }
            }
        }
    }
    if !indexed {
        cx.err(
            CheckErrorKind::from(LinkErrorKind::LinkNotIndexed {
                object: object.clone(),
                field: field.clone(),
                zendesk: l.zendesk.name.clone(),
                help: format!(
                    "SOQL must filter on an indexed field: mark `{full}` External ID (or Unique) in Salesforce Setup and declare it so (`{full} {} external_id` in `fields {}`), or, once Salesforce Support has given it a custom index, declare it `indexed`",
                    type_word(&sf_ty),
                    l.crm.name
                ),
            })
            .at(sf[1].span),
        );
    }
    if !unique && l.pick.is_empty() {
        cx.err(
            CheckErrorKind::from(LinkErrorKind::LinkMany {
                object: object.clone(),
                field,
                help: format!(
                    "add `pick newest` to the link (the most recently modified {object} wins), or declare `{full}` `unique` if Salesforce enforces it"
                ),
            })
            .at(sf[1].span),
        );
    }
}

fn check_tickets(cx: &mut Ctx, t: &ast::LinkTickets) {
    let all: Vec<&str> = ZD_STATUSES
        .iter()
        .copied()
        .chain(["unsolved", "all"])
        .collect();
    for (i, n) in t.names.iter().enumerate() {
        let name = n.name.as_str();
        if t.names[..i].iter().any(|m| m.name == n.name) {
            shape(
                cx,
                n.span,
                format!("`{name}` is listed twice in `tickets`"),
                "list each status once".into(),
            );
        } else if !all.contains(&name) {
            let help = did_you_mean(name, all.iter().copied()).unwrap_or_else(|| {
                "write `unsolved` (the default), `all`, or Zendesk statuses: new, open, pending, hold, solved, closed".into()
            });
            cx.err(
                CheckErrorKind::from(LinkErrorKind::LinkTickets {
                    name: name.into(),
                    help,
                })
                .at(n.span),
            );
        } else if name == "closed" {
            shape(
                cx,
                n.span,
                "closed tickets cannot be written: Zendesk refuses every update to a closed ticket, so each change would only leave a parked action per ticket".into(),
                "leave `closed` out (`all` means every status a ticket can still be updated in: new, open, pending, hold, solved)".into(),
            );
        } else if matches!(name, "unsolved" | "all") && t.names.len() > 1 {
            shape(
                cx,
                n.span,
                format!("`{name}` stands alone in `tickets`"),
                format!("write `tickets {name}`, or list the statuses one by one"),
            );
        }
    }
}

/// Why a Zendesk value of type `zd` can never equal a Salesforce field of
/// type `sf` (`None`: they can). Ids and text compare as text (a Salesforce
/// text field often holds a Zendesk id); dates, money, enums and booleans
/// are never keys.
fn incomparable(zd: &Ty, sf: &Ty, key: Option<ZdKeyRef>) -> Option<String> {
    let keyish = |t: &Ty| matches!(t, Ty::Str | Ty::Num | Ty::Any);
    if !keyish(zd) || !keyish(sf) {
        return Some(
            "a link compares identifiers: an id, an external id, an email, or a text or number field that holds one"
                .into(),
        );
    }
    if key == Some(ZdKeyRef::Email) && matches!(sf, Ty::Num) {
        return Some("an email address is never a number: compare `user.email` with a text field such as `Contact.Email`".into());
    }
    None
}

fn type_word(t: &Ty) -> &'static str {
    match t {
        Ty::Num => "number",
        _ => "string",
    }
}

fn join(p: &[Ident]) -> String {
    p.iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zendesk_keys_by_object() {
        assert_eq!(zd_key("user", &["email"]), Some(ZdKeyRef::Email));
        assert_eq!(zd_key("organization", &["email"]), None);
        assert_eq!(
            zd_key("organization", &["fields", "sf_account"]),
            Some(ZdKeyRef::Field("sf_account".into()))
        );
        assert_eq!(
            zd_key("ticket", &["case_ref"]),
            Some(ZdKeyRef::TicketField("case_ref".into()))
        );
        assert_eq!(zd_key("ticket", &["fields", "x"]), None);
    }

    #[test]
    fn salesforce_indexes_and_uniqueness() {
        assert!(sf_standard("Account", "Id").is_some_and(|f| f.indexed && f.unique));
        assert!(sf_standard("Contact", "Email").is_some_and(|f| f.indexed && !f.unique));
        assert_eq!(sf_standard("Account", "Email"), None);
        assert_eq!(sf_standard("Case", "Name"), None);
        assert!(sf_standard("Case", "CaseNumber").is_some_and(|f| f.unique));
    }

    #[test]
    fn tickets_expand_in_zendesk_order() {
        let (file, errs) = crate::syntax::parse_file(
            crate::syntax::FileId(0),
            "link desk.organization <-> crm.Account {\n  on organization.id == Account.Id\n  tickets solved, new, unsolved\n}\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let Some(ast::Item::Link(l)) = file.items.first() else {
            panic!("a link")
        };
        assert_eq!(
            ticket_statuses(l),
            ["new", "open", "pending", "hold", "solved"]
        );
    }
}
