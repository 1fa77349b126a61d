//! Groups: the list, and `POST /api/v2/groups.json` (Zendesk's "Create
//! Group", developer.zendesk.com/api-reference/ticketing/groups/groups/),
//! so a user can create the group an escalation assigns to.

use super::changes::parse_body;
use super::errors::{Answer, Problems, ZdErr};
use super::views::paged;
use super::{lock, now_secs, rfc3339, Shared};
use axum::body::Bytes;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Where group ids start (seeded and created alike).
pub(super) const FIRST_GROUP_ID: u64 = 360_100_001;
/// When the seeded groups were made (2026-01-05T09:00:00Z, as the users).
const SEEDED_AT: i64 = 1_767_603_600;

/// One group of the account. Kept as is in `--state` files; the fields
/// after `name` default, so a file written before groups could be created
/// still reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct GroupRec {
    pub(super) id: u64,
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default = "public")]
    pub(super) is_public: bool,
    #[serde(default = "seeded_at")]
    pub(super) created_at: i64,
}

fn public() -> bool {
    true
}

fn seeded_at() -> i64 {
    SEEDED_AT
}

impl GroupRec {
    pub(super) fn seeded(id: u64, name: &str) -> GroupRec {
        GroupRec {
            id,
            name: name.to_string(),
            description: String::new(),
            is_public: true,
            created_at: SEEDED_AT,
        }
    }
}

/// A group in Zendesk's JSON format (Groups, "JSON format").
pub(super) fn group_json(sh: &Shared, g: &GroupRec) -> Value {
    json!({
        "id": g.id,
        "url": format!("https://{}.zendesk.com/api/v2/groups/{}.json", sh.opts.subdomain, g.id),
        "name": g.name,
        "description": g.description,
        "default": false,
        "deleted": false,
        "is_public": g.is_public,
        "created_at": rfc3339(g.created_at),
        "updated_at": rfc3339(g.created_at),
    })
}

/// `GET /api/v2/groups.json`.
pub(super) fn list_groups(sh: &Shared, q: &HashMap<String, String>, base: &str) -> Answer {
    let db = lock(&sh.db);
    let items = db.groups.iter().map(|g| group_json(sh, g)).collect();
    paged("groups", "/api/v2/groups.json", items, q, &sh.opts, base)
}

/// `POST /api/v2/groups.json` with `{"group": {"name", "description"?,
/// "is_public"?}}`: 201 `{"group": {...}}` and its absolute `Location`.
/// `name` is mandatory. A name another group already has is refused
/// (422): l3map finds a group by its name, so two of one name could not be
/// told apart (the emulator's choice; see docs/emulators/zendesk.md).
pub(super) fn create_group(sh: &Shared, body: &Bytes) -> Result<(u64, Value), ZdErr> {
    let m = parse_body(body)?;
    let g = m.get("group").and_then(Value::as_object).ok_or_else(|| {
        ZdErr::bad_request(
            "InvalidParameter",
            "Parameter group is required and must be an object",
        )
    })?;
    let mut p = Problems::default();
    let name = match g.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            p.attr("name", "Name: cannot be blank".into());
            String::new()
        }
    };
    let description = match g.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            p.attr("description", "Description: must be text".into());
            String::new()
        }
    };
    let is_public = match g.get("is_public") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            p.attr("is_public", "Is public: must be true or false".into());
            true
        }
    };
    let mut db = lock(&sh.db);
    if !name.is_empty() && db.groups.iter().any(|x| x.name.eq_ignore_ascii_case(&name)) {
        p.attr("name", format!("Name: {name} has already been taken"));
    }
    p.finish()?;
    let id = db
        .groups
        .iter()
        .map(|x| x.id + 1)
        .max()
        .unwrap_or(FIRST_GROUP_ID)
        .max(FIRST_GROUP_ID);
    let rec = GroupRec {
        id,
        name,
        description,
        is_public,
        created_at: now_secs(),
    };
    let view = group_json(sh, &rec);
    db.groups.push(rec);
    Ok((id, json!({"group": view})))
}

/// The answer to a create: 201 with the group.
pub(super) fn created(answer: Result<(u64, Value), ZdErr>) -> Answer {
    answer.map(|(_, v)| (StatusCode::CREATED, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_from_before_groups_could_be_created_still_reads() {
        let old: GroupRec =
            serde_json::from_value(json!({"id": 360100001, "name": "Payments Tier 2"})).unwrap();
        assert_eq!(old, GroupRec::seeded(360100001, "Payments Tier 2"));
        assert!(old.is_public && old.description.is_empty());
    }
}
