//! Ticket forms, the custom statuses each offers, and each category's
//! default custom status.
//!
//! * `GET /api/v2/ticket_forms`, `GET /api/v2/ticket_forms/{id}`: the
//!   forms (`id`, `name`, `display_name`, `active`, `default`, `position`,
//!   `end_user_visible`, `in_all_brands`, ...), one unpaginated list, as
//!   Zendesk answers it
//!   (<https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_forms/>);
//! * `GET /api/v2/ticket_form_statuses` and
//!   `GET /api/v2/ticket_forms/{id}/ticket_form_statuses`:
//!   `{custom_status_id, id (a string), ticket_form_id}` records
//!   (<https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_form_statuses/>);
//! * `GET /api/v2/custom_statuses?default=true|false` filters on `default`
//!   (`reads.rs`), and `PUT /api/v2/custom_status/default` makes the
//!   statuses it names their categories' defaults: "you can only change a
//!   category's default ticket status using a Bulk Update Default Custom
//!   Ticket Status request"
//!   (<https://developer.zendesk.com/api-reference/ticketing/tickets/custom_ticket_statuses/>).
//!   Its body is not in the stored docs: the emulator takes
//!   `{"ids": "1,2"}` or `{"ids": [1, 2]}` (unverified, docs/EMULATORS.md).
//!
//! A ticket's `ticket_form_id` is the account's default form unless set.
//! The emulator never refuses a status a form does not offer: Zendesk
//! documents the mapping as what the agent's status picker shows, not as
//! an API rule, so l3map must refuse it itself.

use super::errors::{ok, Answer, ZdErr};
use super::{lock, Shared};
use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The default form's id when the project's lockfile names none.
pub const DEFAULT_FORM_ID: u64 = 360_000_001;

/// A ticket form and the custom statuses it offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedForm {
    pub id: u64,
    pub name: String,
    pub active: bool,
    pub default: bool,
    pub custom_status_ids: Vec<u64>,
}

/// The account's forms and each category's default custom status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forms {
    pub forms: Vec<SeedForm>,
    /// Category -> its default custom status (set by the seed, changed by
    /// `PUT /api/v2/custom_status/default`); a category missing here
    /// defaults to its first status.
    #[serde(default)]
    pub defaults: BTreeMap<String, u64>,
}

impl Forms {
    /// One default form offering every status: an account without forms
    /// of its own.
    pub fn default_for(statuses: impl IntoIterator<Item = u64>) -> Forms {
        Forms {
            forms: vec![SeedForm {
                id: DEFAULT_FORM_ID,
                name: "Default Ticket Form".into(),
                active: true,
                default: true,
                custom_status_ids: statuses.into_iter().collect(),
            }],
            defaults: BTreeMap::new(),
        }
    }

    /// The form a ticket without one uses.
    pub fn default_form(&self) -> Option<u64> {
        self.forms
            .iter()
            .find(|f| f.default)
            .or_else(|| self.forms.first())
            .map(|f| f.id)
    }
}

fn form_json(f: &SeedForm, position: usize) -> Value {
    json!({
        "id": f.id,
        "url": format!("/api/v2/ticket_forms/{}.json", f.id),
        "name": f.name,
        "raw_name": f.name,
        "display_name": f.name,
        "raw_display_name": f.name,
        "active": f.active,
        "default": f.default,
        "position": position,
        "end_user_visible": true,
        "in_all_brands": true,
        "restricted_brand_ids": [],
        "ticket_field_ids": [],
        "agent_conditions": [],
        "end_user_conditions": [],
    })
}

fn status_json(form: u64, status: u64) -> Value {
    // A stable string id (Zendesk's are ULIDs).
    json!({
        "id": format!("{form:016X}{status:016X}"),
        "ticket_form_id": form,
        "custom_status_id": status,
    })
}

pub(super) fn list(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let items: Vec<Value> = (db.forms.forms.iter().enumerate())
        .map(|(i, f)| form_json(f, i + 1))
        .collect();
    ok(
        json!({"ticket_forms": items, "next_page": null, "previous_page": null, "count": items.len()}),
    )
}

pub(super) fn show(sh: &Shared, id: u64) -> Answer {
    let db = lock(&sh.db);
    let (i, f) = (db.forms.forms.iter().enumerate())
        .find(|(_, f)| f.id == id)
        .ok_or_else(ZdErr::not_found)?;
    ok(json!({"ticket_form": form_json(f, i + 1)}))
}

/// Every (form, status) record, or one form's.
pub(super) fn statuses(sh: &Shared, form: Option<u64>) -> Answer {
    let db = lock(&sh.db);
    if form.is_some_and(|id| db.forms.forms.iter().all(|f| f.id != id)) {
        return Err(ZdErr::not_found());
    }
    let items: Vec<Value> = (db.forms.forms.iter())
        .filter(|f| form.is_none_or(|id| id == f.id))
        .flat_map(|f| f.custom_status_ids.iter().map(|s| status_json(f.id, *s)))
        .collect();
    ok(json!({"ticket_form_statuses": items}))
}

/// `PUT /api/v2/custom_status/default`: each named status becomes its
/// category's default. Every id must be a custom status of the account,
/// two of one category are refused, and nothing changes unless all are
/// good.
pub(super) fn put_defaults(sh: &Shared, body: &Bytes) -> Answer {
    let m: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| ZdErr::bad_json())?;
    let ids: Option<Vec<u64>> = match m.get("ids") {
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().parse().ok()).collect(),
        Some(Value::Array(a)) => a.iter().map(as_id).collect(),
        _ => None,
    };
    let Some(ids) = ids.filter(|i| !i.is_empty()) else {
        return Err(ZdErr::bad_request(
            "InvalidValue",
            "ids: give the custom status ids, e.g. {\"ids\": \"123,456\"}",
        ));
    };
    let mut db = lock(&sh.db);
    let mut chosen: BTreeMap<String, u64> = BTreeMap::new();
    for id in &ids {
        let Some(s) = db.statuses.iter().find(|s| s.id == *id) else {
            return Err(ZdErr::bad_request(
                "InvalidValue",
                format!("{id} is not a custom status of this account"),
            ));
        };
        if chosen.insert(s.category.clone(), s.id).is_some() {
            return Err(ZdErr::bad_request(
                "InvalidValue",
                format!("two defaults for the {} category", s.category),
            ));
        }
    }
    db.forms.defaults.extend(chosen);
    ok(json!({}))
}

/// `POST /__l3map/ticket_forms`: a new form (the next id after the
/// highest), its statuses checked against the account's.
pub(super) fn create(sh: &Shared, m: &serde_json::Map<String, Value>) -> Result<Value, ZdErr> {
    let f = m
        .get("ticket_form")
        .and_then(Value::as_object)
        .ok_or_else(|| ZdErr::bad_request("InvalidValue", "give {\"ticket_form\": {...}}"))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ZdErr::bad_request("InvalidValue", "ticket_form.name: required"))?;
    let ids: Vec<u64> = match f.get("custom_status_ids") {
        None => vec![],
        Some(Value::Array(a)) => a.iter().map(as_id).collect::<Option<_>>().ok_or_else(|| {
            ZdErr::bad_request("InvalidValue", "custom_status_ids: a list of ids")
        })?,
        Some(_) => {
            return Err(ZdErr::bad_request(
                "InvalidValue",
                "custom_status_ids: a list of ids",
            ))
        }
    };
    // A status listed twice is offered once (one ticket_form_statuses row).
    let mut ids = ids;
    let mut seen = std::collections::BTreeSet::new();
    ids.retain(|i| seen.insert(*i));
    let mut db = lock(&sh.db);
    if let Some(bad) = ids.iter().find(|i| db.statuses.iter().all(|s| s.id != **i)) {
        return Err(ZdErr::bad_request(
            "InvalidValue",
            format!("{bad} is not a custom status of this account"),
        ));
    }
    let flag = |k: &str, d: bool| f.get(k).and_then(Value::as_bool).unwrap_or(d);
    let form = SeedForm {
        id: db
            .forms
            .forms
            .iter()
            .map(|f| f.id)
            .max()
            .unwrap_or(DEFAULT_FORM_ID)
            + 1,
        name: name.to_string(),
        active: flag("active", true),
        default: flag("default", false),
        custom_status_ids: ids,
    };
    if form.default {
        db.forms.forms.iter_mut().for_each(|f| f.default = false);
    }
    let position = db.forms.forms.len() + 1;
    let v = form_json(&form, position);
    db.forms.forms.push(form);
    Ok(json!({"ticket_form": v}))
}

/// An id as JSON gives it: a number or a numeric string.
fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether `id` is a form of the account (a ticket write naming another
/// is refused).
pub(super) fn exists(forms: &Forms, id: u64) -> bool {
    forms.forms.iter().any(|f| f.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_form_offers_every_status() {
        let f = Forms::default_for([1, 2]);
        assert_eq!(f.default_form(), Some(DEFAULT_FORM_ID));
        assert_eq!(f.forms[0].custom_status_ids, vec![1, 2]);
        assert!(exists(&f, DEFAULT_FORM_ID) && !exists(&f, 9));
        let v = status_json(7, 9);
        assert_eq!(v["id"].as_str().map(str::len), Some(32));
    }
}
