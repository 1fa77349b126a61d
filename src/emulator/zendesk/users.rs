//! The account's users: the agent every credential signs in as, and the
//! end user who requested the seeded tickets. `users/me`, `users/{id}` and
//! `users/search` (in search.rs) read them; ticket search resolves
//! `requester:` with them.

use super::errors::{ok, Answer, ZdErr};
use super::{Shared, AGENT_ID, REQUESTER_ID};
use serde_json::{json, Value};

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
