//! Organizations and users: the records a ticket's `organization_id` and
//! `requester_id` name, with `external_id` and custom fields
//! (`organization_fields`, `user_fields`), as
//! [Organizations](https://developer.zendesk.com/api-reference/ticketing/organizations/organizations/)
//! and [Users](https://developer.zendesk.com/api-reference/ticketing/users/users/)
//! show them.
//!
//! Seeded to match the Salesforce emulator's seed: one organization per
//! seeded Account (its Id in `external_id`), one end user per seeded
//! Contact (same email), each a member of its Account's organization.

use super::errors::{ok, Answer, ZdErr};
use super::{rfc3339, Db, Shared, AGENT_ID, REQUESTER_ID};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Ids of seeded organizations start here.
pub(super) const FIRST_ORG_ID: u64 = 360_200_001;
/// A human agent: the author of changes made "as a person would"
/// (admin calls), so they are never taken for l3map's own.
pub(super) const HUMAN_AGENT_ID: u64 = 1001;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Org {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) external_id: Option<String>,
    pub(super) fields: Map<String, Value>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Person {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) email: Option<String>,
    /// `end-user`, `agent` or `admin`.
    pub(super) role: String,
    pub(super) external_id: Option<String>,
    pub(super) organization_id: Option<u64>,
    pub(super) fields: Map<String, Value>,
}

/// The Salesforce emulator's seeded Account Ids, in seed order: its store
/// numbers records 1, 2, 3... across objects, and seeds Account, Contact,
/// Case three times (`emulator::salesforce::store::seed`). A test
/// (`seeded_parties_match_the_salesforce_seed`) keeps the two in step.
pub fn salesforce_account_ids() -> [String; 3] {
    [1u64, 4, 7].map(|serial| crate::emulator::salesforce::ids::make("001", serial))
}

/// The seeded Accounts' names and their Contacts (name, email), as the
/// Salesforce emulator seeds them.
const ACCOUNTS: [(&str, &str, &str); 3] = [
    ("Nimbus Analytics", "Ana Souza", "ana@example.com"),
    ("Acme Payments", "Ben Okafor", "ben@example.com"),
    ("Globex Retail", "Chloe Martin", "chloe@example.com"),
];

impl Db {
    /// The seeded organizations and users.
    pub(super) fn seed_parties(&mut self, now: i64) {
        let accounts = salesforce_account_ids();
        for (i, (name, person, email)) in ACCOUNTS.iter().enumerate() {
            let org = FIRST_ORG_ID + i as u64;
            self.orgs.insert(
                org,
                Org {
                    id: org,
                    name: name.to_string(),
                    external_id: Some(accounts[i].clone()),
                    fields: Map::new(),
                    created_at: now,
                    updated_at: now,
                },
            );
            // Ana is the end user of the seeded tickets (2000); the others follow.
            let id = REQUESTER_ID + i as u64;
            self.people.insert(
                id,
                Person {
                    id,
                    name: person.to_string(),
                    email: Some(email.to_string()),
                    role: "end-user".into(),
                    external_id: None,
                    organization_id: Some(org),
                    fields: Map::new(),
                },
            );
        }
        for (id, name, email, role) in [
            (
                AGENT_ID,
                "l3map AI agent",
                "ai-agent@l3map.invalid",
                "agent",
            ),
            (
                HUMAN_AGENT_ID,
                "Dana Reyes",
                "dana.reyes@l3map.invalid",
                "agent",
            ),
        ] {
            self.people.insert(
                id,
                Person {
                    id,
                    name: name.into(),
                    email: Some(email.into()),
                    role: role.into(),
                    external_id: None,
                    organization_id: None,
                    fields: Map::new(),
                },
            );
        }
        self.next_org = FIRST_ORG_ID + ACCOUNTS.len() as u64;
        self.next_user = REQUESTER_ID + 1000;
    }

    pub(super) fn person(&self, id: u64) -> Option<&Person> {
        self.people.get(&id)
    }
}

pub(super) fn org_json(sh: &Shared, o: &Org) -> Value {
    json!({
        "id": o.id,
        "url": format!("https://{}.zendesk.com/api/v2/organizations/{}.json", sh.opts.subdomain, o.id),
        "name": o.name,
        "external_id": o.external_id,
        "organization_fields": o.fields,
        "domain_names": [],
        "details": null,
        "notes": null,
        "group_id": null,
        "shared_tickets": false,
        "shared_comments": false,
        "tags": [],
        "created_at": rfc3339(o.created_at),
        "updated_at": rfc3339(o.updated_at),
    })
}

pub(super) fn person_json(sh: &Shared, u: &Person) -> Value {
    json!({
        "id": u.id,
        "url": format!("https://{}.zendesk.com/api/v2/users/{}.json", sh.opts.subdomain, u.id),
        "name": u.name,
        "email": u.email,
        "role": u.role,
        "role_type": null,
        "active": true,
        "verified": true,
        "suspended": false,
        "shared": false,
        "locale": "en-US",
        "time_zone": "UTC",
        "organization_id": u.organization_id,
        "external_id": u.external_id,
        "tags": [],
        "user_fields": u.fields,
        "created_at": "2026-01-05T09:00:00Z",
        "updated_at": "2026-01-05T09:00:00Z",
    })
}

/// `GET /api/v2/organizations/{id}.json`.
pub(super) fn show_org(sh: &Shared, id: u64) -> Answer {
    let db = super::lock(&sh.db);
    let o = db.orgs.get(&id).ok_or_else(ZdErr::not_found)?;
    ok(json!({"organization": org_json(sh, o)}))
}

/// `GET /api/v2/organizations/search.json?external_id=` (or `name=`):
/// "Returns an array of organizations matching the criteria"; the
/// external id is matched whole and case-insensitively.
pub(super) fn search_orgs(sh: &Shared, q: &std::collections::HashMap<String, String>) -> Answer {
    let db = super::lock(&sh.db);
    let hits: Vec<Value> = match (q.get("external_id"), q.get("name")) {
        (Some(x), _) => db
            .orgs
            .values()
            .filter(|o| {
                o.external_id
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(x))
            })
            .map(|o| org_json(sh, o))
            .collect(),
        (None, Some(n)) => db
            .orgs
            .values()
            .filter(|o| o.name.eq_ignore_ascii_case(n))
            .map(|o| org_json(sh, o))
            .collect(),
        (None, None) => {
            return Err(ZdErr::bad_request(
                "InvalidParameter",
                "Search Organizations needs external_id= or name=",
            ))
        }
    };
    ok(
        json!({"organizations": hits.clone(), "next_page": null, "previous_page": null, "count": hits.len()}),
    )
}

/// A `{"organization": {...}}` or `{"user": {...}}` body's object.
fn object<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, ZdErr> {
    m.get(key).and_then(Value::as_object).ok_or_else(|| {
        ZdErr::bad_request(
            "InvalidParameter",
            format!("Parameter {key} is required and must be an object"),
        )
    })
}

fn text(o: &Map<String, Value>, key: &str) -> Option<Option<String>> {
    match o.get(key)? {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        other => Some(Some(other.to_string())),
    }
}

/// Creates (`id` None) or updates an organization from
/// `{"organization": {"name", "external_id", "organization_fields"}}`;
/// fields are merged, as Zendesk's update merges them.
pub(super) fn put_org(
    db: &mut Db,
    id: Option<u64>,
    m: &Map<String, Value>,
    now: i64,
) -> Result<u64, ZdErr> {
    let o = object(m, "organization")?;
    let id = match id {
        Some(id) if db.orgs.contains_key(&id) => id,
        Some(_) => return Err(ZdErr::not_found()),
        None => {
            let Some(Some(name)) = text(o, "name") else {
                return Err(ZdErr::bad_request("RecordInvalid", "Name: cannot be blank"));
            };
            let id = db.next_org;
            db.next_org += 1;
            db.orgs.insert(
                id,
                Org {
                    id,
                    name,
                    external_id: None,
                    fields: Map::new(),
                    created_at: now,
                    updated_at: now,
                },
            );
            id
        }
    };
    let Some(org) = db.orgs.get_mut(&id) else {
        return Err(ZdErr::not_found());
    };
    if let Some(Some(n)) = text(o, "name") {
        org.name = n;
    }
    if let Some(x) = text(o, "external_id") {
        org.external_id = x;
    }
    if let Some(f) = o.get("organization_fields").and_then(Value::as_object) {
        org.fields.extend(f.clone());
    }
    org.updated_at = now;
    Ok(id)
}

/// Creates or updates a user from `{"user": {"name", "email", "role",
/// "external_id", "organization_id", "user_fields"}}`.
pub(super) fn put_person(
    db: &mut Db,
    id: Option<u64>,
    m: &Map<String, Value>,
) -> Result<u64, ZdErr> {
    let u = object(m, "user")?;
    let org = match u.get("organization_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match super::changes::as_id(v).filter(|o| db.orgs.contains_key(o)) {
            Some(o) => Some(Some(o)),
            None => {
                return Err(ZdErr::bad_request(
                    "RecordInvalid",
                    format!("Organization: {v} does not exist"),
                ))
            }
        },
    };
    let id = match id {
        Some(id) if db.people.contains_key(&id) => id,
        Some(_) => return Err(ZdErr::not_found()),
        None => {
            let Some(Some(name)) = text(u, "name") else {
                return Err(ZdErr::bad_request("RecordInvalid", "Name: cannot be blank"));
            };
            let id = db.next_user;
            db.next_user += 1;
            db.people.insert(
                id,
                Person {
                    id,
                    name,
                    email: None,
                    role: "end-user".into(),
                    external_id: None,
                    organization_id: None,
                    fields: Map::new(),
                },
            );
            id
        }
    };
    let Some(p) = db.people.get_mut(&id) else {
        return Err(ZdErr::not_found());
    };
    if let Some(Some(n)) = text(u, "name") {
        p.name = n;
    }
    if let Some(e) = text(u, "email") {
        p.email = e;
    }
    if let Some(Some(r)) =
        text(u, "role").filter(|r| matches!(r.as_deref(), Some("end-user" | "agent" | "admin")))
    {
        p.role = r;
    }
    if let Some(x) = text(u, "external_id") {
        p.external_id = x;
    }
    if let Some(o) = org {
        p.organization_id = o;
    }
    if let Some(f) = u.get("user_fields").and_then(Value::as_object) {
        p.fields.extend(f.clone());
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::salesforce::{SalesforceEmulator, SalesforceOptions};

    /// The organizations name the Salesforce emulator's seeded Accounts,
    /// and the end users its Contacts: if its seed changes, this fails.
    #[test]
    fn seeded_parties_match_the_salesforce_seed() {
        let sf = SalesforceEmulator::new(SalesforceOptions::default()).handle();
        let mut accounts: Vec<(String, String)> = sf
            .records("Account")
            .iter()
            .map(|r| {
                (
                    r["Id"].as_str().unwrap_or("").to_string(),
                    r["Name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        accounts.sort();
        let mut db = Db::default();
        db.seed_parties(0);
        let mut orgs: Vec<(String, String)> = db
            .orgs
            .values()
            .map(|o| (o.external_id.clone().unwrap_or_default(), o.name.clone()))
            .collect();
        orgs.sort();
        assert_eq!(orgs, accounts);
        for c in sf.records("Contact") {
            let email = c["Email"].as_str().unwrap_or("");
            let user = db
                .people
                .values()
                .find(|u| u.email.as_deref() == Some(email))
                .unwrap_or_else(|| panic!("no user for Contact {email}"));
            let org = user.organization_id.and_then(|o| db.orgs.get(&o));
            assert_eq!(
                org.and_then(|o| o.external_id.as_deref()),
                c["AccountId"].as_str(),
                "{email}"
            );
        }
    }
}
