//! A test's event may only carry what something reads. At run time unknown
//! keys are ignored (payloads carry more than l3map reads), but in a test a
//! key nothing reads is a test that cannot fail: a mistyped custom field id
//! leaves the field unset and the `expect` lines pass without it.

mod keys;

pub(super) use keys::key_spans;

use super::{did_you_mean, Env, Kind, Ty};
use serde_json::Value as Json;
use std::collections::BTreeSet;

const TOP: &[&str] = &[
    "id", "kind", "at", "ticket", "comment", "turn", "records", "changed",
];
const TICKET: &[&str] = &[
    "id",
    "subject",
    "description",
    "status",
    "custom_status_id",
    "ticket_form_id",
    "priority",
    "type",
    "tags",
    "group",
    "assignee",
    "requester_email",
    "requester_name",
    "channel",
    "created_at",
    "updated_at",
    "custom_fields",
];
const COMMENT: &[&str] = &["body", "author", "public"];
const TURN: &[&str] = &[
    "intent",
    "summary",
    "attempts",
    "sentiment",
    "refund_amount",
    "requested_status",
    "confidence",
    "language",
    "order_id",
    "product",
];
const MONEY: &[&str] = &["amount", "currency"];

/// A key of the event that nothing reads.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stray {
    /// The JSON path of the key, the key last.
    pub path: Vec<String>,
    pub message: String,
    pub help: String,
}

/// A status in the event that no real event could carry: a typo.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BadStatus {
    /// The JSON path of the key whose value it is.
    pub path: Vec<String>,
    pub message: String,
    pub help: String,
    pub label: String,
}

/// Zendesk's own ticket statuses (the `status` of the Tickets API). A
/// ticket in a category the table does not name is read as the category
/// itself (docs/EVENTS.md, "Which status a Zendesk ticket is in"), so these
/// are statuses an event can carry whatever the table declares.
const ZENDESK_STATUSES: &[&str] = &["new", "open", "pending", "hold", "solved", "closed"];

/// The statuses `ticket.status` and `turn.requested_status` may hold, where
/// the project makes that certain. `ticket.status` is a name of a Zendesk
/// status table or a Zendesk status; `turn.requested_status` a name of any
/// status table. A test that expects a refusal may ask for a status no
/// table declares (that is what it tests), so the request is not checked
/// then.
pub(super) fn bad_statuses(env: &Env, event: &Json, expects_refusal: bool) -> Vec<BadStatus> {
    let mut out = Vec::new();
    let zendesk: Vec<(&str, Vec<&str>)> = env
        .tables
        .iter()
        .filter(|(c, _)| env.conns.get(*c).is_some_and(|c| c.kind == Kind::Zendesk))
        .map(|(c, t)| {
            (
                c.as_str(),
                t.statuses.iter().map(|s| s.name.as_str()).collect(),
            )
        })
        .collect();
    if let (Some(Json::String(v)), false) = (event.pointer("/ticket/status"), zendesk.is_empty()) {
        let mut known: Vec<&str> = zendesk
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        for z in ZENDESK_STATUSES {
            if !known.contains(z) {
                known.push(z);
            }
        }
        if !known.contains(&v.as_str()) {
            let conns: Vec<String> = zendesk.iter().map(|(c, _)| format!("`{c}`")).collect();
            out.push(BadStatus {
                path: vec!["ticket".into(), "status".into()],
                message: format!(
                    "`{v}` is not a status a ticket of {} can be in",
                    conns.join(" or ")
                ),
                help: status_help(v, &known, "the statuses of the table, or Zendesk's own (new, open, pending, hold, solved, closed)"),
                label: "no such status".into(),
            });
        }
    }
    if let (Some(Json::String(v)), false, false) = (
        event.pointer("/turn/requested_status"),
        env.tables.is_empty(),
        expects_refusal,
    ) {
        let known: Vec<&str> = env
            .tables
            .values()
            .flat_map(|t| t.statuses.iter().map(|s| s.name.as_str()))
            .collect();
        if !known.contains(&v.as_str()) {
            let tables: Vec<String> = env.tables.keys().map(|c| format!("`{c}`")).collect();
            out.push(BadStatus {
                path: vec!["turn".into(), "requested_status".into()],
                message: format!(
                    "the agent requests `{v}`, which is not a status of {}",
                    tables.join(" or ")
                ),
                help: status_help(
                    v,
                    &known,
                    "the statuses of the table (a test of a refused request says `expect refused ...`)",
                ),
                label: "no such status".into(),
            });
        }
    }
    out
}

fn status_help(v: &str, known: &[&str], what: &str) -> String {
    did_you_mean(v, known.iter().copied()).unwrap_or_else(|| {
        let list: Vec<&str> = known.iter().copied().take(16).collect();
        format!("{what}: {}", list.join(", "))
    })
}

/// A custom field value in the event that the field's declared type cannot
/// hold: the rules would read a value no real ticket carries (an enum
/// compares unequal to every value, a number is no number), and the test
/// fails or passes for that reason, not for the rule it means to test.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BadValue {
    /// The JSON path of the key whose value it is.
    pub path: Vec<String>,
    pub message: String,
    pub help: String,
    pub label: String,
}

/// Every `ticket.custom_fields` value of a declared Zendesk field that its
/// type cannot hold, read as the runtime reads it (`crate::eval::expr::typed`):
/// an enum takes one of its values (the drop-down's tags), a number a JSON
/// number or decimal text (Zendesk sends decimal fields as text), money
/// the same, a bool `true`/`false`. `null` is a field with no value.
pub(super) fn bad_values(
    env: &Env,
    translations: &[super::Translated],
    event: &Json,
) -> Vec<BadValue> {
    let mut out = Vec::new();
    let Some(values) = event
        .pointer("/ticket/custom_fields")
        .and_then(Json::as_object)
    else {
        return out;
    };
    let declared: Vec<(&str, u64, &str, &Ty)> = env
        .conns
        .values()
        .filter(|c| c.kind == Kind::Zendesk)
        .flat_map(|c| {
            env.fields
                .get(&c.name)
                .into_iter()
                .flatten()
                .filter_map(move |(a, f)| f.id.map(|id| (c.name.as_str(), id, a.as_str(), &f.ty)))
        })
        .collect();
    for (key, v) in values {
        let Ok(id) = key.parse::<u64>() else {
            continue;
        };
        let decls: Vec<_> = declared.iter().filter(|d| d.1 == id).collect();
        if decls.is_empty() || decls.iter().any(|d| fits(v, d.3)) {
            continue;
        }
        let (conn, _, alias, ty) = *decls[0];
        let shown = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let help = match (ty, v) {
            (Ty::Enum(values), _) => {
                let text = v.as_str().unwrap_or(&shown);
                let arm = translations
                    .iter()
                    .filter(|t| t.conn == conn && t.target == alias)
                    .find(|t| t.from == text)
                    .or_else(|| {
                        translations
                            .iter()
                            .filter(|t| t.conn == conn && t.target == alias)
                            .find(|t| t.from.eq_ignore_ascii_case(text))
                    });
                match arm {
                    Some(t) => format!(
                        "`{}` is a value of `{}`; `{}` writes it to `{alias}` as `{}`: write \"{}\", as Zendesk sends the tag",
                        t.from, t.source, t.map, t.to, t.to
                    ),
                    None => did_you_mean(text, values.iter().map(String::as_str)).unwrap_or_else(
                        || {
                            let list: Vec<&str> =
                                values.iter().take(16).map(String::as_str).collect();
                            format!("`{alias}` takes one of its tags: {}", list.join(", "))
                        },
                    ),
                }
            }
            (Ty::Money(_), _) => format!(
                "write the amount as Zendesk sends a decimal field, as text: `\"{id}\": \"64000.00\"` (a JSON number works too)"
            ),
            _ if matches!(ty, Ty::Bool) => "write `true` or `false`".to_string(),
            _ => format!("write a number: `\"{id}\": 72` (or decimal text, `\"72.5\"`, as Zendesk sends it)"),
        };
        out.push(BadValue {
            path: vec!["ticket".into(), "custom_fields".into(), key.clone()],
            message: format!("`{shown}` is not a value of field `{alias}` ({key}), which is {ty}"),
            help,
            label: format!("not a value of `{alias}`"),
        });
    }
    out
}

/// Whether the runtime reads `v` as a value of `ty` (see [`bad_values`]).
fn fits(v: &Json, ty: &Ty) -> bool {
    match (ty, v) {
        (_, Json::Null) => true,
        (Ty::Enum(values), Json::String(s)) => values.iter().any(|x| x == s),
        (Ty::Enum(_), _) => false,
        (Ty::Num | Ty::Money(_), Json::Number(_)) => true,
        (Ty::Num, Json::String(s)) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
        (Ty::Money(_), Json::String(s)) => crate::syntax::decimal_units(s.trim()).is_some(),
        (Ty::Num | Ty::Money(_), _) => false,
        (Ty::Bool, Json::Bool(_)) => true,
        (Ty::Bool, Json::String(s)) => s == "true" || s == "false",
        (Ty::Bool, _) => false,
        _ => true,
    }
}

/// What a project can read from an event beyond the fixed shape.
pub(super) struct Readable<'a> {
    pub env: &'a Env,
    /// Salesforce `Object.Field` paths that a condition, mapping or
    /// template of the project names.
    pub sf_paths: &'a BTreeSet<String>,
    /// Salesforce objects a `link` ties to Zendesk: a test event states
    /// the linked records under `records` as the runtime fills them.
    pub linked: &'a BTreeSet<String>,
}

/// Every key of `event` (already a valid event) that nothing reads.
pub(super) fn strays(r: &Readable, event: &Json) -> Vec<Stray> {
    let mut out = Vec::new();
    let Some(top) = event.as_object() else {
        return out;
    };
    for (k, v) in top {
        let path = vec![k.clone()];
        if !TOP.contains(&k.as_str()) {
            let help = if TICKET.contains(&k.as_str()) && k != "id" {
                format!("`{k}` is a field of the ticket: write it inside `\"ticket\": {{...}}`")
            } else if TURN.contains(&k.as_str()) {
                format!("`{k}` is a field of the agent's turn: write it inside `\"turn\": {{...}}`")
            } else {
                suggest(k, TOP, "an event has")
            };
            out.push(unread(path, "the event", help));
            continue;
        }
        match k.as_str() {
            "ticket" => ticket(r, v, &path, &mut out),
            "comment" => fixed(v, &path, COMMENT, "a comment", &mut out),
            "turn" => {
                fixed(v, &path, TURN, "an agent turn", &mut out);
                if let Some(m) = v.get("refund_amount") {
                    let p = [path.clone(), vec!["refund_amount".into()]].concat();
                    fixed(m, &p, MONEY, "an amount", &mut out);
                }
            }
            "records" => records(r, v, &path, &mut out),
            _ => {}
        }
    }
    out
}

fn unread(path: Vec<String>, of: &str, help: String) -> Stray {
    let key = path.last().cloned().unwrap_or_default();
    Stray {
        message: format!(
            "`{key}` is not part of {of}: nothing reads it, so a test with it cannot fail on it"
        ),
        path,
        help,
    }
}

fn suggest(key: &str, known: &[&str], what: &str) -> String {
    did_you_mean(key, known.iter().copied())
        .unwrap_or_else(|| format!("{what}: {}", known.join(", ")))
}

fn fixed(v: &Json, path: &[String], known: &[&str], of: &str, out: &mut Vec<Stray>) {
    for k in v.as_object().into_iter().flat_map(|o| o.keys()) {
        if !known.contains(&k.as_str()) {
            let p = [path.to_vec(), vec![k.clone()]].concat();
            out.push(unread(p, of, suggest(k, known, &format!("{of} has"))));
        }
    }
}

/// The declared Zendesk custom fields: (id, alias).
fn zendesk_fields(env: &Env) -> Vec<(u64, &str)> {
    env.conns
        .values()
        .filter(|c| c.kind == Kind::Zendesk)
        .flat_map(|c| env.fields.get(&c.name).into_iter().flatten())
        .filter_map(|(alias, f)| f.id.map(|id| (id, alias.as_str())))
        .collect()
}

fn ticket(r: &Readable, v: &Json, path: &[String], out: &mut Vec<Stray>) {
    let Some(obj) = v.as_object() else {
        return;
    };
    let declared = zendesk_fields(r.env);
    for (k, val) in obj {
        let p = [path.to_vec(), vec![k.clone()]].concat();
        if k == "custom_fields" {
            for key in val.as_object().into_iter().flat_map(|o| o.keys()) {
                if let Some(s) = custom_field(&declared, key, &p) {
                    out.push(s);
                }
            }
        } else if !TICKET.contains(&k.as_str()) {
            let help = match declared.iter().find(|(_, a)| a == k) {
                Some((id, _)) => format!(
                    "`{k}` is a custom field: write it as `\"custom_fields\": {{\"{id}\": ...}}` (Zendesk keys custom fields by id)"
                ),
                None => suggest(k, TICKET, "a ticket has"),
            };
            out.push(unread(p, "a ticket", help));
        }
    }
}

/// A `custom_fields` key is a declared field id, as Zendesk keys them.
fn custom_field(declared: &[(u64, &str)], key: &str, path: &[String]) -> Option<Stray> {
    let digits = key.strip_prefix('#').unwrap_or(key);
    let id = digits.parse::<u64>().ok();
    // Zendesk keys custom fields by the id as it writes it: "0360001234"
    // or "+360001234" parse to a declared id but are never read.
    let canonical = id.is_some_and(|id| id.to_string() == digits);
    if key == digits && canonical && id.is_some_and(|id| declared.iter().any(|(d, _)| *d == id)) {
        return None;
    }
    let p = [path.to_vec(), vec![key.to_string()]].concat();
    let near = closest_ids(declared, digits);
    let by_alias = |alias: &str| declared.iter().find(|(_, a)| *a == alias).copied();
    let help = if let Some((id, alias)) = by_alias(key) {
        format!("`{alias}` is the alias of field id {id}; write \"{id}\"")
    } else if let Some(id) = id.filter(|id| declared.iter().any(|(d, _)| d == id)) {
        if key.starts_with('#') {
            format!("write the id without `#`: \"{id}\"")
        } else {
            format!("write the id as Zendesk keys it, digits only: \"{id}\"")
        }
    } else if let Some((id, alias)) = closest_alias(declared, key) {
        format!("did you mean `{alias}`? it is the alias of field id {id}; write \"{id}\"")
    } else if !near.is_empty() {
        let named: Vec<String> = near
            .iter()
            .map(|(id, a)| format!("\"{id}\" (`{a}`)"))
            .collect();
        format!("did you mean {}?", named.join(" or "))
    } else if declared.is_empty() {
        "the project declares no Zendesk custom field: declare it in `fields CONN { ALIAS #ID TYPE }`".into()
    } else {
        let list: Vec<String> = declared
            .iter()
            .take(8)
            .map(|(id, a)| format!("\"{id}\" ({a})"))
            .collect();
        format!("the declared field ids are {}", list.join(", "))
    };
    Some(Stray {
        message: format!(
            "`custom_fields` key `{key}` is not a declared field id: nothing reads it, so a test with it cannot fail on it"
        ),
        path: p,
        help,
    })
}

fn closest_alias<'a>(declared: &[(u64, &'a str)], key: &str) -> Option<(u64, &'a str)> {
    let key = key.to_lowercase();
    declared
        .iter()
        .map(|(id, a)| (strsim::jaro_winkler(&key, &a.to_lowercase()), *id, *a))
        .filter(|(s, _, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id, a)| (id, a))
}

/// Ids are long digit strings: a slip is one or two digits off. Every id
/// as close as the closest is named; the help does not pick among equals.
fn closest_ids<'a>(declared: &[(u64, &'a str)], digits: &str) -> Vec<(u64, &'a str)> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return vec![];
    }
    let scored: Vec<(usize, u64, &str)> = declared
        .iter()
        .map(|(id, a)| {
            (
                strsim::damerau_levenshtein(digits, &id.to_string()),
                *id,
                *a,
            )
        })
        .filter(|(d, _, _)| *d <= 2)
        .collect();
    let best = scored.iter().map(|(d, _, _)| *d).min();
    scored
        .into_iter()
        .filter(|(d, _, _)| Some(*d) == best)
        .map(|(_, id, a)| (id, a))
        .collect()
}

/// `records` holds Salesforce objects the connections list; their fields
/// must be ones the project reads (declared, mapped or named in a rule),
/// `Id` (what a write is addressed to), or `Case.Status` (what a Salesforce
/// status table reads).
fn records(r: &Readable, v: &Json, path: &[String], out: &mut Vec<Stray>) {
    let Some(obj) = v.as_object() else {
        return;
    };
    let sf: Vec<_> = r
        .env
        .conns
        .values()
        .filter(|c| c.kind == Kind::Salesforce)
        .collect();
    let mut objects: Vec<&str> = sf
        .iter()
        .flat_map(|c| c.objects.iter().map(|(o, _)| o.as_str()))
        .collect();
    objects.extend(r.linked.iter().map(|o| o.as_str()));
    let mut known: BTreeSet<String> = r.sf_paths.clone();
    for c in &sf {
        known.extend(
            r.env
                .fields
                .get(&c.name)
                .into_iter()
                .flatten()
                .map(|(p, _)| p.clone()),
        );
        if r.env.tables.contains_key(&c.name) {
            known.insert("Case.Status".into());
        }
    }
    for (object, fields) in obj {
        let p = [path.to_vec(), vec![object.clone()]].concat();
        if !objects.contains(&object.as_str()) {
            let help = if sf.is_empty() {
                "the project has no Salesforce connection, so nothing reads `records`".into()
            } else {
                did_you_mean(object, objects.iter().copied()).unwrap_or_else(|| {
                    format!(
                        "the Salesforce connections list these objects: {}",
                        objects.join(", ")
                    )
                })
            };
            out.push(Stray {
                message: format!(
                    "`{object}` is not an object a Salesforce connection lists: nothing reads it, so a test with it cannot fail on it"
                ),
                path: p,
                help,
            });
            continue;
        }
        record_fields(&known, object, fields, &p, out);
    }
}

fn record_fields(
    known: &BTreeSet<String>,
    prefix: &str,
    v: &Json,
    path: &[String],
    out: &mut Vec<Stray>,
) {
    let Some(obj) = v.as_object() else {
        return;
    };
    let below = format!("{prefix}.");
    for (k, val) in obj {
        let full = format!("{prefix}.{k}");
        let p = [path.to_vec(), vec![k.clone()]].concat();
        let relation = known.iter().any(|f| f.starts_with(&format!("{full}.")));
        if relation && val.is_object() {
            record_fields(known, &full, val, &p, out);
            continue;
        }
        if k == "Id" || known.contains(&full) {
            continue;
        }
        let siblings: BTreeSet<&str> = known
            .iter()
            .filter_map(|f| f.strip_prefix(&below))
            .map(|rest| rest.split('.').next().unwrap_or(rest))
            .chain(["Id"])
            .collect();
        let help = did_you_mean(k, siblings.iter().copied()).unwrap_or_else(|| {
            format!(
                "the project reads these fields of `{prefix}`: {}; a field counts once a `fields` block, a `map` or a condition names it",
                siblings.into_iter().collect::<Vec<_>>().join(", ")
            )
        });
        out.push(Stray {
            message: format!(
                "nothing in the project reads `{full}`, so a test with it cannot fail on it"
            ),
            path: p,
            help,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_field_help_names_the_id_of_an_alias() {
        let declared = [(360001241, "refund_reason"), (360001242, "tier")];
        let p = vec!["ticket".to_string(), "custom_fields".to_string()];
        assert_eq!(custom_field(&declared, "360001241", &p), None);
        let s = custom_field(&declared, "refund_reason", &p).unwrap();
        assert!(
            s.help
                .contains("alias of field id 360001241; write \"360001241\""),
            "{}",
            s.help
        );
        let s = custom_field(&declared, "refund_reasn", &p).unwrap();
        assert!(s.help.contains("write \"360001241\""), "{}", s.help);
        let s = custom_field(&declared, "#360001241", &p).unwrap();
        assert!(s.help.contains("without `#`"), "{}", s.help);
        let s = custom_field(&declared, "360001214", &p).unwrap();
        assert!(s.help.contains("did you mean \"360001241\""), "{}", s.help);
        assert_eq!(s.path.last().map(String::as_str), Some("360001214"));
        // The red team: these parse to a declared id, but Zendesk never
        // keys a field so, and the runtime never reads them.
        for odd in ["0360001241", "+360001241"] {
            let s = custom_field(&declared, odd, &p).expect(odd);
            assert!(s.help.contains("digits only: \"360001241\""), "{}", s.help);
        }
    }
}
