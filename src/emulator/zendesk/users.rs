//! The account's users: the agent every credential signs in as, and the
//! end user who requested the seeded tickets. `users/me`, `users/{id}` and
//! `users/search` read them; ticket search resolves `requester:` with them.

use super::errors::{ok, Answer, ZdErr};
use super::search::{offset_page, Query};
use super::{Shared, AGENT_ID, REQUESTER_ID};
use serde_json::{json, Value};
use std::collections::HashMap;

/// One user of the emulated account.
pub(super) struct User {
    pub(super) id: u64,
    pub(super) name: &'static str,
    pub(super) email: &'static str,
    pub(super) role: &'static str,
}

/// Every user the account has. Every credential authenticates as the
/// first (the agent), so `users/me` and a ticket created without a
/// requester name it.
pub(super) const USERS: [User; 2] = [
    User {
        id: AGENT_ID,
        name: "l3map AI agent",
        email: "ai-agent@l3map.invalid",
        role: "agent",
    },
    User {
        id: REQUESTER_ID,
        name: "Ana Souza",
        email: "ana.souza@example.com",
        role: "end-user",
    },
];

pub(super) fn find(id: u64) -> Option<&'static User> {
    USERS.iter().find(|u| u.id == id)
}

/// The user as `GET /api/v2/users/{id}` shows it (Zendesk's JSON format,
/// the properties this account can have).
pub(super) fn user_json(sh: &Shared, id: u64) -> Value {
    let Some(u) = find(id) else {
        return Value::Null;
    };
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
        "organization_id": null,
        "external_id": null,
        "tags": [],
        "user_fields": {},
        "created_at": "2026-01-05T09:00:00Z",
        "updated_at": "2026-01-05T09:00:00Z",
    })
}

/// `GET /api/v2/users/{id}`: the user, or 404 `RecordNotFound`.
pub(super) fn show_user(sh: &Shared, id: u64) -> Answer {
    find(id).ok_or_else(ZdErr::not_found)?;
    ok(json!({"user": user_json(sh, id)}))
}

/// Whether the user matches every term: `name:`, `email:`, `role:` or
/// free text, each a case-insensitive part of the value ("a partial or
/// full value of any user property", Zendesk's Search Users).
pub(super) fn matches(u: &User, q: &Query) -> bool {
    q.admits(|term| user_term(u, term))
}

fn user_term(u: &User, q: &Query) -> bool {
    let has = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
    q.text
        .iter()
        .all(|t| has(u.name, t) || has(u.email, t) || u.id.to_string() == *t)
        && q.props.iter().all(|(k, v)| match k.as_str() {
            "name" => has(u.name, v),
            "email" => has(u.email, v),
            "role" => u.role.eq_ignore_ascii_case(v),
            _ => false,
        })
}

/// `GET /api/v2/users/search?query=` (or `external_id=`): offset
/// pagination only, as Zendesk documents for this endpoint.
pub(super) fn search_users(sh: &Shared, q: &HashMap<String, String>, base: &str) -> Answer {
    let found: Vec<Value> = match (q.get("query"), q.get("external_id")) {
        // No user here has an external id.
        (_, Some(_)) => vec![],
        (Some(text), None) => {
            let parsed = Query::parse(text, &["name", "email", "role"])?;
            USERS
                .iter()
                .filter(|u| matches(u, &parsed))
                .map(|u| user_json(sh, u.id))
                .collect()
        }
        (None, None) => {
            return Err(ZdErr::bad_request(
                "InvalidParameter",
                "Search Users needs query= (or external_id=)",
            ))
        }
    };
    offset_page("users", "/api/v2/users/search", found, q, base, None)
}
