//! The account's users (parties.rs keeps them): the agent every credential
//! signs in as, a human agent, and the end users of the seeded
//! organizations. `users/me`, `users/{id}` and `users/search` (in
//! search.rs) read them; ticket search resolves `requester:` with them.

use super::errors::{ok, Answer, ZdErr};
use super::parties::person_json;
use super::{lock, Db, Shared};
use serde_json::{json, Value};

/// The user as `GET /api/v2/users/{id}` shows it, `null` if unknown.
pub(super) fn user_json(sh: &Shared, db: &Db, id: u64) -> Value {
    db.person(id)
        .map(|u| person_json(sh, u))
        .unwrap_or(Value::Null)
}

/// `GET /api/v2/users/{id}`: the user, or 404 `RecordNotFound`.
pub(super) fn show_user(sh: &Shared, id: u64) -> Answer {
    let db = lock(&sh.db);
    let u = db.person(id).ok_or_else(ZdErr::not_found)?;
    ok(json!({"user": person_json(sh, u)}))
}
