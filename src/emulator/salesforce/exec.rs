//! Runs a parsed query against the store: resolves names against the
//! schema (INVALID_TYPE, INVALID_FIELD), filters, sorts, projects.

use super::errors::SfError;
use super::schema::{FieldSchema, FieldType, ObjectSchema, Schema};
use super::sobjects::record_url;
use super::soql::{Cond, Literal, Op, Query};
use super::store::{parse_stamp, Store};
use super::Record;
use serde_json::{json, Value as Json};
use std::cmp::Ordering as CmpOrdering;

/// A selected or filtered field: on the object itself, or on the
/// parent reached through a reference (`Account.SLA_Tier__c`).
struct Resolved<'a> {
    path: String,
    parent: Option<Parent<'a>>,
    field: &'a FieldSchema,
}

struct Parent<'a> {
    /// The reference field on the queried object (`AccountId`).
    via: String,
    /// How the result names it (`Account`).
    rel: String,
    object: &'a ObjectSchema,
}

fn no_column(name: &str, obj: &str) -> SfError {
    SfError::bad(
        "INVALID_FIELD",
        format!(
            "No such column '{name}' on entity '{obj}'. If you are attempting to use a \
             custom field, be sure to append the '__c' after the custom field name."
        ),
    )
    .with_fields(vec![name.to_string()])
}

fn resolve<'a>(
    schema: &'a Schema,
    obj: &'a ObjectSchema,
    path: &str,
) -> Result<Resolved<'a>, SfError> {
    let Some((rel, rest)) = path.split_once('.') else {
        let field = obj.field(path).ok_or_else(|| no_column(path, &obj.name))?;
        return Ok(Resolved {
            path: field.name.clone(),
            parent: None,
            field,
        });
    };
    let reference = obj
        .relationship(rel)
        .ok_or_else(|| no_column(rel, &obj.name))?;
    let target = reference
        .reference_to
        .first()
        .and_then(|t| schema.object(t))
        .ok_or_else(|| no_column(rel, &obj.name))?;
    if rest.contains('.') {
        return Err(SfError::bad(
            "MALFORMED_QUERY",
            "the emulator follows one relationship level",
        ));
    }
    let field = target
        .field(rest)
        .ok_or_else(|| no_column(rest, &target.name))?;
    let rel_name = reference.relationship_name().unwrap_or_default();
    Ok(Resolved {
        path: format!("{rel_name}.{}", field.name),
        parent: Some(Parent {
            via: reference.name.clone(),
            rel: rel_name,
            object: target,
        }),
        field,
    })
}

fn value<'r>(store: &'r Store, rec: &'r Record, r: &Resolved) -> Option<&'r Json> {
    match &r.parent {
        None => rec.get(&r.field.name),
        Some(p) => {
            let id = rec.get(&p.via)?.as_str()?;
            store.find(&p.object.name, id)?.get(&r.field.name)
        }
    }
}

pub fn run(schema: &Schema, store: &Store, q: &Query, version: &str) -> Result<Vec<Json>, SfError> {
    let obj = schema.object(&q.object).ok_or_else(|| {
        SfError::bad(
            "INVALID_TYPE",
            format!("sObject type '{}' is not supported.", q.object),
        )
    })?;
    let select: Vec<Resolved> = q
        .fields
        .iter()
        .map(|f| resolve(schema, obj, f))
        .collect::<Result<_, _>>()?;
    let conds: Vec<(Resolved, &Cond)> = q
        .conds
        .iter()
        .map(|c| Ok((resolve(schema, obj, cond_field(c))?, c)))
        .collect::<Result<_, SfError>>()?;
    let order = match &q.order {
        Some((f, desc)) => Some((resolve(schema, obj, f)?, *desc)),
        None => None,
    };
    let mut rows: Vec<&Record> = vec![];
    for rec in store
        .records
        .get(&obj.name)
        .into_iter()
        .flat_map(|m| m.values())
    {
        if matches_all(store, rec, &conds)? {
            rows.push(rec);
        }
    }
    if let Some((r, desc)) = &order {
        let ids = matches!(r.field.ty, FieldType::Id | FieldType::Reference);
        rows.sort_by(|a, b| {
            let (x, y) = (value(store, a, r), value(store, b, r));
            let o = if ids {
                compare_ids(x, y)
            } else {
                compare_json(x, y)
            };
            if *desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let limit = q
        .limit
        .map_or(usize::MAX, |n| n.min(usize::MAX as u64) as usize);
    Ok(rows
        .into_iter()
        .take(limit)
        .map(|rec| project(store, rec, obj, &select, version))
        .collect())
}

fn cond_field(c: &Cond) -> &str {
    match c {
        Cond::Cmp { field, .. } | Cond::In { field, .. } => field,
    }
}

fn matches_all(store: &Store, rec: &Record, conds: &[(Resolved, &Cond)]) -> Result<bool, SfError> {
    for (r, c) in conds {
        let v = value(store, rec, r).unwrap_or(&Json::Null);
        let ok = match c {
            Cond::Cmp { op, value: lit, .. } => test(r, v, *op, lit)?,
            Cond::In {
                negated, values, ..
            } => {
                let mut any = false;
                for lit in values {
                    any |= test(r, v, Op::Eq, lit)?;
                }
                any != *negated
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn mismatch(r: &Resolved) -> SfError {
    SfError::bad(
        "INVALID_FIELD",
        format!(
            "value of filter criterion for field '{}' must be of type {} and should{} be \
             enclosed in quotes",
            r.path,
            r.field.ty.api_name(),
            if r.field.ty.is_text() { "" } else { " not" }
        ),
    )
    .with_fields(vec![r.path.clone()])
}

/// One comparison, typed by the field: text compares case-insensitively
/// (as SOQL does), Ids by their 15-character form.
fn test(r: &Resolved, v: &Json, op: Op, lit: &Literal) -> Result<bool, SfError> {
    if *lit == Literal::Null {
        return match op {
            Op::Eq => Ok(v.is_null()),
            Op::Ne => Ok(!v.is_null()),
            _ => Err(mismatch(r)),
        };
    }
    let ord = match (r.field.ty, lit) {
        (FieldType::Id | FieldType::Reference, Literal::Str(s)) => {
            let a = v.as_str().map(|x| x.get(..15).unwrap_or(x));
            a.map(|a| a.cmp(s.get(..15).unwrap_or(s)))
        }
        (t, Literal::Str(s)) if t.is_text() => {
            v.as_str().map(|x| x.to_lowercase().cmp(&s.to_lowercase()))
        }
        (FieldType::Currency | FieldType::Double, Literal::Num(n)) => {
            v.as_f64().and_then(|x| x.partial_cmp(n))
        }
        (FieldType::Boolean, Literal::Bool(b)) => v.as_bool().map(|x| x.cmp(b)),
        (FieldType::Date, Literal::Date(d)) => v.as_str().map(|x| x.cmp(d.as_str())),
        (FieldType::DateTime, Literal::DateTime(t)) => {
            v.as_str().and_then(parse_stamp).map(|x| x.cmp(t))
        }
        _ => return Err(mismatch(r)),
    };
    let Some(ord) = ord else {
        // A null field matches only `!=`.
        return Ok(op == Op::Ne);
    };
    Ok(match op {
        Op::Eq => ord == CmpOrdering::Equal,
        Op::Ne => ord != CmpOrdering::Equal,
        Op::Lt => ord == CmpOrdering::Less,
        Op::Le => ord != CmpOrdering::Greater,
        Op::Gt => ord == CmpOrdering::Greater,
        Op::Ge => ord != CmpOrdering::Less,
    })
}

/// Ids sort as `Id > '...'` compares them (their 15-character form, case
/// counting), so paging by `ORDER BY Id` with `Id > last` sees every
/// record once.
fn compare_ids(a: Option<&Json>, b: Option<&Json>) -> CmpOrdering {
    id15(a).cmp(&id15(b))
}

fn id15(v: Option<&Json>) -> Option<&str> {
    v.and_then(Json::as_str).map(|s| s.get(..15).unwrap_or(s))
}

/// Nulls first, as SOQL sorts ascending by default.
fn compare_json(a: Option<&Json>, b: Option<&Json>) -> CmpOrdering {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => CmpOrdering::Equal,
        (None, _) => CmpOrdering::Less,
        (_, None) => CmpOrdering::Greater,
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(CmpOrdering::Equal),
            _ => {
                let s = |v: &Json| v.as_str().map(str::to_lowercase).unwrap_or_default();
                s(x).cmp(&s(y))
            }
        },
    }
}

/// A result row: selected fields in order, parent fields grouped under
/// the relationship name with their own `attributes`, or null.
fn project(
    store: &Store,
    rec: &Record,
    obj: &ObjectSchema,
    select: &[Resolved],
    version: &str,
) -> Json {
    let id = rec.get("Id").and_then(Json::as_str).unwrap_or_default();
    let mut out = Record::new();
    out.insert(
        "attributes".into(),
        json!({"type": obj.name, "url": record_url(version, &obj.name, id)}),
    );
    for r in select {
        let Some(p) = &r.parent else {
            let v = rec.get(&r.field.name).cloned().unwrap_or(Json::Null);
            out.insert(r.field.name.clone(), v);
            continue;
        };
        let parent = rec
            .get(&p.via)
            .and_then(Json::as_str)
            .and_then(|pid| store.find(&p.object.name, pid));
        let slot = out.entry(p.rel.clone()).or_insert(Json::Null);
        let Some(parent) = parent else {
            continue;
        };
        if !slot.is_object() {
            let pid = parent.get("Id").and_then(Json::as_str).unwrap_or_default();
            *slot = json!({"attributes": {"type": p.object.name, "url": record_url(version, &p.object.name, pid)}});
        }
        if let Json::Object(m) = slot {
            let v = parent.get(&r.field.name).cloned().unwrap_or(Json::Null);
            m.insert(r.field.name.clone(), v);
        }
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::super::schema::Schema;
    use super::super::soql::parse;
    use super::super::store::Store;
    use super::*;

    /// Serials past 36 put lower-case letters in Ids (`...0a`), which a
    /// case-blind sort would put among the upper-case ones.
    #[test]
    fn ordering_by_id_agrees_with_comparing_ids() {
        let schema = Schema::standard();
        let account = schema.object("Account").unwrap();
        let mut store = Store::default();
        for i in 0..80 {
            let mut r = Record::new();
            r.insert("Name".into(), json!(format!("A{i}")));
            store.create(account, r);
        }
        let ids = |soql: &str| -> Vec<String> {
            run(&schema, &store, &parse(soql).unwrap(), "v60.0")
                .unwrap()
                .iter()
                .map(|r| r["Id"].as_str().unwrap().to_string())
                .collect()
        };
        let all = ids("SELECT Id FROM Account ORDER BY Id ASC");
        assert_eq!(all.len(), 80);
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| a[..15].cmp(&b[..15]));
        assert_eq!(all, sorted);
        // Paging by Id visits every record exactly once.
        let mut seen = vec![];
        let mut after: Option<String> = None;
        loop {
            let cond = after
                .as_ref()
                .map(|id| format!(" WHERE Id > '{id}'"))
                .unwrap_or_default();
            let page = ids(&format!(
                "SELECT Id FROM Account{cond} ORDER BY Id ASC LIMIT 7"
            ));
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            seen.extend(page);
        }
        assert_eq!(seen, all);
    }
}
