//! Reading and validating what a write asks to change.

use super::errors::{Problems, ZdErr};
use super::seed::{FieldKind, SeedField};
use super::{Db, CATEGORIES};
use axum::body::Bytes;
use serde_json::{json, Map, Value};

/// What a request asked to change, validated against the seed.
#[derive(Debug, Default, Clone)]
pub(super) struct Changes {
    pub(super) subject: Option<String>,
    pub(super) status: Option<String>,
    pub(super) custom_status_id: Option<u64>,
    pub(super) priority: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) group_id: Option<Option<u64>>,
    pub(super) tags: Option<Vec<String>>,
    pub(super) additional_tags: Vec<String>,
    pub(super) remove_tags: Vec<String>,
    pub(super) fields: Vec<(u64, Value)>,
    pub(super) comment: Option<(String, bool)>,
    /// The comment's `author_id`, one of the account's users: the comment
    /// is theirs ("The id of the comment author", Ticket Comments).
    pub(super) comment_author: Option<u64>,
    /// A form of the account.
    pub(super) ticket_form_id: Option<u64>,
}

pub(super) fn parse_body(body: &Bytes) -> Result<Map<String, Value>, ZdErr> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(ZdErr::bad_json()),
    }
}

pub(super) fn ticket_object(m: &Map<String, Value>) -> Result<&Map<String, Value>, ZdErr> {
    m.get("ticket").and_then(Value::as_object).ok_or_else(|| {
        ZdErr::bad_request(
            "InvalidParameter",
            "Parameter ticket is required and must be an object",
        )
    })
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(String::from))
        .collect()
}

/// Reads and validates the ticket attributes Zendesk would; unknown
/// attributes are ignored, as Zendesk ignores them.
pub(super) fn read_changes(db: &Db, t: &Map<String, Value>) -> Result<Changes, ZdErr> {
    let mut p = Problems::default();
    let mut c = Changes {
        subject: t.get("subject").and_then(Value::as_str).map(String::from),
        ..Changes::default()
    };
    read_status(db, t, &mut c, &mut p);
    read_enum(
        t,
        "priority",
        &["low", "normal", "high", "urgent"],
        &mut c.priority,
        &mut p,
    );
    read_enum(
        t,
        "type",
        &["question", "incident", "problem", "task"],
        &mut c.kind,
        &mut p,
    );
    read_group(db, t, &mut c, &mut p);
    for (key, slot) in [
        ("tags", None),
        ("additional_tags", Some(0)),
        ("remove_tags", Some(1)),
    ] {
        let Some(v) = t.get(key) else { continue };
        match (str_list(v), slot) {
            (Some(list), None) => c.tags = Some(list),
            (Some(list), Some(0)) => c.additional_tags = list,
            (Some(list), Some(_)) => c.remove_tags = list,
            (None, _) => p.attr(key, format!("{key}: must be a list of strings")),
        }
    }
    let fields = t.get("custom_fields").or_else(|| t.get("fields"));
    if let Some(v) = fields {
        c.fields = read_fields(db, v, &mut p);
    }
    c.comment = read_comment(t, &mut p);
    match t.get("ticket_form_id").filter(|v| !v.is_null()) {
        None => {}
        Some(v) => match as_id(v).filter(|id| super::forms::exists(&db.forms, *id)) {
            Some(id) => c.ticket_form_id = Some(id),
            None => p.attr(
                "ticket_form_id",
                format!("Ticket form: {v} is not a ticket form of this account"),
            ),
        },
    }
    c.comment_author = read_author(db, t, &mut p);
    p.finish()?;
    Ok(c)
}

fn read_enum(
    t: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
    slot: &mut Option<String>,
    p: &mut Problems,
) {
    match t.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => *slot = Some(s.clone()),
        Some(v) => p.attr(key, format!("{key}: {v} is not valid")),
    }
}

/// `custom_status_id` wins and sets the category; `status` alone takes
/// the category's default custom status, as in Zendesk.
fn read_status(db: &Db, t: &Map<String, Value>, c: &mut Changes, p: &mut Problems) {
    let status = t.get("status").filter(|v| !v.is_null());
    let status = match status {
        None => None,
        Some(Value::String(s)) if CATEGORIES.contains(&s.as_str()) || s == "closed" => {
            Some(s.clone())
        }
        Some(v) => {
            p.attr("status", format!("Status: {v} is not valid"));
            return;
        }
    };
    match t.get("custom_status_id").filter(|v| !v.is_null()) {
        None => {
            if let Some(s) = status {
                c.custom_status_id = db.default_status(&s).map(|d| d.id);
                c.status = Some(s);
            }
        }
        Some(v) => {
            let found = as_id(v).and_then(|id| db.statuses.iter().find(|s| s.id == id));
            match found {
                None => p.attr(
                    "custom_status_id",
                    format!("Custom status: {v} is not a custom status of this account"),
                ),
                Some(s)
                    if status
                        .as_deref()
                        .is_some_and(|st| st != s.category && st != "closed") =>
                {
                    p.attr(
                        "custom_status_id",
                        format!(
                            "Custom status: {} belongs to {}, not {}",
                            s.id,
                            s.category,
                            status.unwrap_or_default()
                        ),
                    )
                }
                Some(s) => {
                    c.custom_status_id = Some(s.id);
                    c.status = Some(status.unwrap_or_else(|| s.category.clone()));
                }
            }
        }
    }
}

fn read_group(db: &Db, t: &Map<String, Value>, c: &mut Changes, p: &mut Problems) {
    match t.get("group_id") {
        None => {}
        Some(Value::Null) => c.group_id = Some(None),
        Some(v) => match as_id(v).filter(|id| db.groups.iter().any(|g| g.id == *id)) {
            Some(id) => c.group_id = Some(Some(id)),
            None => p.attr(
                "group_id",
                format!("Group: {v} is not a group of this account"),
            ),
        },
    }
}

pub(super) fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn read_fields(db: &Db, v: &Value, p: &mut Problems) -> Vec<(u64, Value)> {
    let Some(items) = v.as_array() else {
        p.attr(
            "custom_fields",
            "Custom fields: must be a list of {id, value}".into(),
        );
        return vec![];
    };
    let mut out = Vec::new();
    for item in items {
        let id_value = item.get("id").cloned().unwrap_or(Value::Null);
        let Some(id) = as_id(&id_value) else {
            p.field(
                id_value,
                "Custom field: id is missing or not a number".into(),
            );
            continue;
        };
        let value = item.get("value").cloned().unwrap_or(Value::Null);
        match db.fields.iter().find(|f| f.id == id) {
            None => p.field(json!(id), format!("Ticket field {id} does not exist")),
            Some(f) => match check_value(f, &value) {
                Ok(v) => out.push((id, v)),
                Err(why) => p.field(json!(id), format!("{}: {why}", f.title)),
            },
        }
    }
    out
}

/// The value as Zendesk stores it, or why it is refused.
fn check_value(f: &SeedField, v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match (&f.kind, v) {
        (FieldKind::Tagger(opts), Value::String(s)) if opts.contains(s) => Ok(v.clone()),
        (FieldKind::Tagger(_), _) => Err(format!("{v} is not one of the field's options")),
        (FieldKind::Checkbox, Value::Bool(_)) => Ok(v.clone()),
        (FieldKind::Decimal, Value::Number(_)) => Ok(v.clone()),
        (FieldKind::Decimal, Value::String(s)) if s.trim().parse::<f64>().is_ok() => Ok(v.clone()),
        (FieldKind::Date, Value::String(s)) if s.parse::<jiff::civil::Date>().is_ok() => {
            Ok(v.clone())
        }
        (FieldKind::Text, Value::String(_) | Value::Number(_) | Value::Bool(_)) => Ok(v.clone()),
        (kind, _) => Err(format!("{v} is not a valid {} value", kind.zendesk_type())),
    }
}

/// `comment.author_id`: Zendesk creates comments through the ticket, and
/// `{"ticket": {"comment": {"body", "author_id"}}}` posts one as that user
/// (developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/,
/// "Creating ticket comments"). Only the account's users can author one
/// here: any other id is refused (422), never silently given to the agent.
fn read_author(db: &Db, t: &Map<String, Value>, p: &mut Problems) -> Option<u64> {
    let v = t.get("comment")?.as_object()?.get("author_id")?;
    if v.is_null() {
        return None;
    }
    match as_id(v).filter(|id| db.person(*id).is_some()) {
        Some(id) => Some(id),
        None => {
            p.attr(
                "comment",
                format!("Comment: author_id {v} is not a user of this account"),
            );
            None
        }
    }
}

fn read_comment(t: &Map<String, Value>, p: &mut Problems) -> Option<(String, bool)> {
    let c = t.get("comment")?;
    let (body, public) = match c {
        Value::String(s) => (Some(s.clone()), true),
        Value::Object(o) => (
            o.get("body")
                .or_else(|| o.get("html_body"))
                .and_then(Value::as_str)
                .map(String::from),
            o.get("public").and_then(Value::as_bool).unwrap_or(true),
        ),
        _ => (None, true),
    };
    match body.filter(|b| !b.trim().is_empty()) {
        Some(b) => Some((b, public)),
        None => {
            p.attr("comment", "Comment: body cannot be blank".into());
            None
        }
    }
}
