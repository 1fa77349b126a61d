//! The mappings against the lockfile: every declared Zendesk field id and
//! custom status id exists, every enum value is a drop-down option or a
//! picklist value, and every Salesforce field written is updateable.

use super::{Lockfile, SalesforceSchema, ZendeskSchema};
use crate::check::error::{CheckError, CheckErrorKind};
use crate::check::types::Ty;
use crate::check::{did_you_mean, Env, FieldInfo, Kind, Usage};

pub(crate) fn against(env: &Env, usage: &Usage, lock: &Lockfile) -> Vec<CheckError> {
    let mut out = Vec::new();
    for (name, conn) in &env.conns {
        let schema = match conn.kind {
            Kind::Zendesk => lock.zendesk.get(name).map(Schema::Zendesk),
            Kind::Salesforce => lock.salesforce.get(name).map(Schema::Salesforce),
        };
        let Some(schema) = schema else {
            out.push(CheckErrorKind::NotLocked { conn: name.clone() }.at(conn.span));
            continue;
        };
        let fields = env.fields.get(name);
        match schema {
            Schema::Zendesk(z) => {
                for (alias, f) in fields.iter().flat_map(|m| m.iter()) {
                    zendesk_field(z, alias, f, &mut out);
                }
                for (_, group, span) in usage.groups.iter().filter(|(c, ..)| c == name) {
                    if !z.groups.iter().any(|g| &g.name == group) {
                        out.push(CheckErrorKind::NotInInstance {
                            what: format!("group \"{group}\""),
                            system: "Zendesk",
                            help: did_you_mean(group, z.groups.iter().map(|g| g.name.as_str()))
                                .unwrap_or_else(|| "create the group in Admin Center (People > Groups), or assign an existing one".into()),
                        }.at(*span));
                    }
                }
                for s in env.tables.get(name).iter().flat_map(|t| &t.statuses) {
                    if let Some(id) = s.id {
                        if !z.custom_statuses.iter().any(|c| c.id == id) {
                            out.push(
                                CheckErrorKind::NotInInstance {
                                    what: format!("custom status #{id} (`{}`)", s.name),
                                    system: "Zendesk",
                                    help: statuses_help(z),
                                }
                                .at(s.span),
                            );
                        }
                    }
                }
            }
            Schema::Salesforce(sf) => {
                for (path, f) in fields.iter().flat_map(|m| m.iter()) {
                    salesforce_field(sf, path, f, &mut out);
                }
                for (_, path, span) in usage.sf_writes.iter().filter(|(c, ..)| c == name) {
                    if sf_lookup(sf, path).is_some_and(|f| !f.updateable) {
                        out.push(
                            CheckErrorKind::NotUpdateable {
                                field: path.clone(),
                            }
                            .at(*span),
                        );
                    }
                }
            }
        }
    }
    out
}

enum Schema<'l> {
    Zendesk(&'l ZendeskSchema),
    Salesforce(&'l SalesforceSchema),
}

fn zendesk_field(z: &ZendeskSchema, alias: &str, f: &FieldInfo, out: &mut Vec<CheckError>) {
    // Standard fields have no id; they exist in every instance.
    let Some(id) = f.id else { return };
    let Some(locked) = z.ticket_fields.iter().find(|t| t.id == id) else {
        out.push(CheckErrorKind::NotInInstance {
            what: format!("ticket field #{id}"),
            system: "Zendesk",
            help: likely_field(z, id, alias, f.label.as_deref()).unwrap_or_else(|| {
                "check the id in Admin Center (Objects and rules > Tickets > Fields), then run `l3map schema pull`".into()
            }),
        }.at(f.span));
        return;
    };
    if let (Ty::Enum(values), false) = (&f.ty, locked.options.is_empty()) {
        for v in values.iter().filter(|v| !locked.options.contains(v)) {
            out.push(
                CheckErrorKind::NotAnOption {
                    value: v.clone(),
                    field: format!("ticket field #{id} (\"{}\")", locked.title),
                    system: "Zendesk",
                    help: option_help(v, &locked.options),
                }
                .at(f.span),
            );
        }
    }
}

/// The locked field a declared id that is not in the instance most likely
/// meant: one titled like the declaration's label or its alias (`nights`
/// for "Nights"), else the ids one or two digits off (a slip in copying).
fn likely_field(z: &ZendeskSchema, id: u64, alias: &str, label: Option<&str>) -> Option<String> {
    // "Refund reason", "refund_reason" and "Refund-Reason" name one field.
    let words = |s: &str| {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    let titled = z.ticket_fields.iter().find(|t| {
        label.is_some_and(|l| t.title == l)
            || (!words(alias).is_empty() && words(&t.title) == words(alias))
    });
    if let Some(t) = titled {
        return Some(format!("the instance has \"{}\" as #{}", t.title, t.id));
    }
    let digits = id.to_string();
    let scored: Vec<(usize, &super::TicketField)> = z
        .ticket_fields
        .iter()
        .map(|t| (strsim::damerau_levenshtein(&digits, &t.id.to_string()), t))
        .filter(|(d, _)| *d <= 2)
        .collect();
    let best = scored.iter().map(|(d, _)| *d).min()?;
    let near: Vec<String> = scored
        .iter()
        .filter(|(d, _)| *d == best)
        .map(|(_, t)| format!("#{} (\"{}\")", t.id, t.title))
        .collect();
    Some(format!(
        "did you mean {}? the lockfile has no #{id}; if the field is new, run `l3map schema pull`",
        near.join(" or ")
    ))
}

fn salesforce_field(sf: &SalesforceSchema, path: &str, f: &FieldInfo, out: &mut Vec<CheckError>) {
    let Some(locked) = sf_lookup(sf, path) else {
        let object = path.split('.').next().unwrap_or(path);
        let help = match sf.objects.get(object) {
            None => format!("the lockfile has no object `{object}`: add it to the connection's `objects` and run `l3map schema pull`"),
            Some(o) => {
                let field = path.rsplit('.').next().unwrap_or(path);
                did_you_mean(field, o.fields.keys().map(|k| k.as_str()))
                    .unwrap_or_else(|| "check the field's API name in Setup > Object Manager".into())
            }
        };
        out.push(
            CheckErrorKind::NotInInstance {
                what: format!("field `{path}`"),
                system: "Salesforce",
                help,
            }
            .at(f.span),
        );
        return;
    };
    if let (Ty::Enum(values), false) = (&f.ty, locked.picklist.is_empty()) {
        for v in values.iter().filter(|v| !locked.picklist.contains(v)) {
            out.push(
                CheckErrorKind::NotAnOption {
                    value: v.clone(),
                    field: format!("picklist `{path}`"),
                    system: "Salesforce",
                    help: option_help(v, &locked.picklist),
                }
                .at(f.span),
            );
        }
    }
}

/// `Object.Field` in the lockfile (relation paths are not locked).
fn sf_lookup<'l>(sf: &'l SalesforceSchema, path: &str) -> Option<&'l super::SalesforceField> {
    let (object, field) = path.split_once('.')?;
    sf.objects.get(object)?.fields.get(field)
}

fn option_help(value: &str, options: &[String]) -> String {
    did_you_mean(value, options.iter().map(|s| s.as_str())).unwrap_or_else(|| {
        let mut shown: Vec<&str> = options.iter().take(8).map(|s| s.as_str()).collect();
        if options.len() > 8 {
            shown.push("...");
        }
        format!("the instance has: {}", shown.join(", "))
    })
}

fn statuses_help(z: &ZendeskSchema) -> String {
    if z.custom_statuses.is_empty() {
        return "the instance has no custom statuses: remove the `#id`, or create the status and run `l3map schema pull`".into();
    }
    let shown: Vec<String> = z
        .custom_statuses
        .iter()
        .take(8)
        .map(|c| format!("#{} {}", c.id, c.agent_label))
        .collect();
    format!("the instance has: {}", shown.join(", "))
}
