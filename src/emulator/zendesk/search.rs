//! `GET /api/v2/search?query=`: tickets, users and groups found with the
//! basic query syntax Zendesk documents (developer.zendesk.com/documentation/
//! ticketing/using-the-zendesk-api/searching-with-the-zendesk-api): free
//! words and "quoted phrases", `type:`, and `property:value` terms, all of
//! which must match. Offset-paginated, at most 100 a page and 1,000 a
//! query (developer.zendesk.com/api-reference/ticketing/ticket-management/search/).
//!
//! A keyword or operator the emulator does not implement is refused with a
//! 400 naming it, rather than matched as text: a search that silently
//! finds nothing would hide the difference.

use super::errors::{ok, Answer, ZdErr};
use super::parties::{org_json, person_json, Org, Person};
use super::views::ticket_json;
use super::{lock, Db, Shared, Ticket, AGENT_ID};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Results per page at most, and per query at most (Zendesk's limits).
const PAGE_MAX: usize = 100;
const QUERY_MAX: usize = 1000;

/// The ticket properties `search` filters on (`status` also with `<`, `>`).
pub(super) const TICKET_KEYS: [&str; 9] = [
    "status",
    "requester",
    "tags",
    "tag",
    "priority",
    "ticket_type",
    "group",
    "organization",
    "external_id",
];
pub(super) const USER_KEYS: [&str; 3] = ["name", "email", "role"];
/// In `keys`: any other key is a custom field of the organizations or
/// users searched (`type:organization sla_tier:gold`).
pub(super) const ANY_FIELD: &str = "*";
/// Zendesk's status order, for `status<solved` and `status>new`.
const STATUS_ORDER: [&str; 6] = ["new", "open", "pending", "hold", "solved", "closed"];

/// A parsed query: words that must appear, and `key:value` terms.
#[derive(Debug, Default)]
pub(super) struct Query {
    pub(super) text: Vec<String>,
    pub(super) props: Vec<(String, String)>,
    /// `status<solved`: (key, '<' or '>', value).
    pub(super) ranges: Vec<(String, char, String)>,
    /// `type:ticket`, `type:user`, ...
    pub(super) kind: Option<String>,
    /// `-word`, `-key:value`: one term each, and an item matching any of
    /// them is left out ("Minus sign (-): Excludes items containing a word
    /// (or property value) from the search results", Zendesk Support
    /// search reference, support.zendesk.com/hc/en-us/articles/4408886879258).
    pub(super) not: Vec<Query>,
}

fn invalid(description: String) -> ZdErr {
    // The Search API's error shape: {"error": "invalid", "description"}.
    ZdErr {
        status: StatusCode::BAD_REQUEST,
        body: json!({"error": "invalid", "description": description}),
    }
}

/// Splits on spaces, keeping "quoted phrases" (also as a value:
/// `requester:"Ana Souza"`) together.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl Query {
    /// `keys`: the properties this endpoint filters on; `type` is always
    /// known where `keys` holds ticket keys.
    pub(super) fn parse(text: &str, keys: &[&str]) -> Result<Query, ZdErr> {
        let mut q = Query::default();
        for tok in tokens(text) {
            match tok.strip_prefix('-').filter(|rest| !rest.is_empty()) {
                Some(rest) => {
                    let mut term = Query::default();
                    term.add(rest, keys)?;
                    if term.kind.is_some() {
                        return Err(invalid(format!(
                            "the emulator does not negate `type:` (`{tok}`); name the type you want"
                        )));
                    }
                    q.not.push(term);
                }
                None => q.add(&tok, keys)?,
            }
        }
        Ok(q)
    }

    /// Every `key:value` term, kept or negated: what kind of result the
    /// query is about.
    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.props
            .iter()
            .chain(self.not.iter().flat_map(|n| n.props.iter()))
            .map(|(k, _)| k.as_str())
    }

    /// Whether the query compares a status (`status<solved`), kept or
    /// negated.
    fn has_ranges(&self) -> bool {
        !self.ranges.is_empty() || self.not.iter().any(|n| !n.ranges.is_empty())
    }

    /// `matches(term)` for the kept terms, and for none of the negated.
    pub(super) fn admits(&self, matches: impl Fn(&Query) -> bool) -> bool {
        matches(self) && !self.not.iter().any(&matches)
    }

    /// One token: a word (`photo*`: words starting with `photo`, the one
    /// wildcard the emulator has), or a `key:value` / `key<value` term.
    fn add(&mut self, tok: &str, keys: &[&str]) -> Result<(), ZdErr> {
        let q = self;
        let op = tok
            .char_indices()
            .find(|(_, c)| matches!(c, ':' | '<' | '>'))
            .filter(|(i, _)| {
                *i > 0
                    && tok.as_bytes()[0].is_ascii_alphabetic()
                    && tok[..*i]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        let Some((at, op)) = op else {
            q.text.push(word(tok)?);
            return Ok(());
        };
        let key = tok[..at].to_ascii_lowercase();
        let value = tok[at + 1..].trim_start_matches('=').to_string();
        if value.contains('*') {
            return Err(invalid(format!(
                "the emulator does not match wildcards in a property value (`{tok}`)"
            )));
        }
        let tickets = keys.contains(&"status");
        let searchable = keys.contains(&key.as_str())
            || (key == "type" && tickets)
            || (tickets && custom_field_id(&key).is_some())
            || (keys.contains(&ANY_FIELD) && key != "type");
        if !searchable {
            return Err(invalid(format!(
                "the emulator does not search by `{key}`; it knows {}",
                if keys.contains(&"status") {
                    "type, status, requester, organization, external_id, custom_field_<id>, tags, priority, ticket_type, group, name, email, role and free text"
                } else {
                    "name, email, role and free text"
                }
            )));
        }
        match (key.as_str(), op) {
            ("type", ':') => q.kind = Some(value.to_ascii_lowercase()),
            (_, ':') => q.props.push((key, value)),
            ("status", op) => q.ranges.push((key, op, value.to_ascii_lowercase())),
            (_, op) => {
                return Err(invalid(format!(
                    "the emulator compares only status with `{op}`, not `{key}`"
                )))
            }
        }
        Ok(())
    }
}

/// A free word, its trailing `*` taken off: "Wildcard search (*)"
/// matches words that start with what precedes it (the emulator's words
/// match anywhere in the text already). A `*` anywhere else, or alone, is
/// refused: `query=*` is not a search for everything.
fn word(tok: &str) -> Result<String, ZdErr> {
    let stem = tok.strip_suffix('*').unwrap_or(tok);
    if stem.is_empty() || stem.contains('*') {
        return Err(invalid(format!(
            "the emulator does not search for `{tok}`: a wildcard `*` goes at the end of a word (`photo*`), and a query of `*` alone is not supported"
        )));
    }
    Ok(stem.to_string())
}

fn has(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// `custom_field_360001234` -> 360001234.
pub(super) fn custom_field_id(key: &str) -> Option<u64> {
    key.strip_prefix("custom_field_")?.parse().ok()
}

/// A custom field value equal to a search value: text without regard to
/// case, numbers and checkboxes by their JSON text.
pub(super) fn value_is(v: Option<&Value>, want: &str) -> bool {
    match v {
        Some(Value::String(s)) => s.eq_ignore_ascii_case(want),
        Some(Value::Null) | None => false,
        Some(other) => other.to_string().eq_ignore_ascii_case(want),
    }
}

/// The users a `requester:` value names: `me`, an id, an email, or part
/// of a name.
fn requesters(db: &Db, v: &str) -> Vec<u64> {
    if v.eq_ignore_ascii_case("me") {
        return vec![AGENT_ID];
    }
    if let Ok(id) = v.parse::<u64>() {
        return vec![id];
    }
    db.people
        .values()
        .filter(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(v))
                || has(&u.name, v)
        })
        .map(|u| u.id)
        .collect()
}

/// `organization:` names an organization by id or by name.
fn organization_is(db: &Db, org: Option<u64>, v: &str) -> bool {
    let Some(o) = org else { return false };
    v.parse::<u64>().is_ok_and(|id| id == o)
        || db
            .orgs
            .get(&o)
            .is_some_and(|x| x.name.eq_ignore_ascii_case(v))
}

pub(super) fn ticket_matches(db: &Db, t: &Ticket, q: &Query) -> bool {
    q.admits(|term| ticket_term(db, t, term))
}

fn ticket_term(db: &Db, t: &Ticket, q: &Query) -> bool {
    let text_ok = q.text.iter().all(|w| {
        w.parse::<u64>().is_ok_and(|id| id == t.id)
            || has(&t.subject, w)
            || has(&t.description, w)
            || t.comments.iter().any(|c| has(&c.body, w))
            || t.tags.iter().any(|tag| tag.eq_ignore_ascii_case(w))
    });
    let prop_ok = q.props.iter().all(|(k, v)| match k.as_str() {
        "status" => t.status.eq_ignore_ascii_case(v),
        "requester" => requesters(db, v).contains(&t.requester_id),
        "organization" => organization_is(db, t.organization_id, v),
        "external_id" => t
            .external_id
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(v)),
        k if custom_field_id(k).is_some() => {
            custom_field_id(k).is_some_and(|id| value_is(t.fields.get(&id), v))
        }
        "tags" | "tag" => t.tags.iter().any(|tag| tag.eq_ignore_ascii_case(v)),
        "priority" => t
            .priority
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(v)),
        "ticket_type" => t.kind.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(v)),
        "group" => t.group_id.is_some_and(|g| {
            v.parse::<u64>().is_ok_and(|id| id == g)
                || db
                    .groups
                    .iter()
                    .any(|x| x.id == g && x.name.eq_ignore_ascii_case(v))
        }),
        _ => false,
    });
    let rank = |s: &str| STATUS_ORDER.iter().position(|x| *x == s);
    let range_ok = q
        .ranges
        .iter()
        .all(|(_, op, v)| match (rank(&t.status), rank(v)) {
            (Some(a), Some(b)) => (*op == '<' && a < b) || (*op == '>' && a > b),
            _ => false,
        });
    text_ok && prop_ok && range_ok
}

fn group_matches(name: &str, q: &Query) -> bool {
    q.admits(|q| q.props.is_empty() && q.ranges.is_empty() && q.text.iter().all(|w| has(name, w)))
}

/// `GET /api/v2/search?query=`.
pub(super) fn search(sh: &Shared, q: &HashMap<String, String>, base: &str) -> Answer {
    let text = q
        .get("query")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            invalid("query is required: /api/v2/search?query=type:ticket status:open".into())
        })?;
    let (parsed, kinds) = parse_typed(text)?;
    let results = find(sh, &parsed, kinds, q)?;
    offset_page(
        "results",
        "/api/v2/search",
        results,
        q,
        base,
        Some(QUERY_MAX),
    )
}

/// The query, and the kinds of result it is about.
pub(super) fn parse_typed(text: &str) -> Result<(Query, &'static [&'static str]), ZdErr> {
    let mut keys: Vec<&str> = TICKET_KEYS
        .iter()
        .chain(USER_KEYS.iter())
        .copied()
        .collect();
    // Organization and user custom fields are searched by their keys.
    let typed = |k: &str| {
        tokens(text)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&format!("type:{k}")))
    };
    if typed("organization") || typed("user") {
        keys.push(ANY_FIELD);
    }
    let parsed = Query::parse(text, &keys)?;
    let kinds: &'static [&'static str] = match parsed.kind.as_deref() {
        None => &["ticket", "user", "group"],
        Some("ticket") => &["ticket"],
        Some("user") => &["user"],
        Some("group") => &["group"],
        Some("organization") => &["organization"],
        Some(other) => {
            return Err(invalid(format!(
                "type:{other} is not a type: ticket, user, group or organization"
            )))
        }
    };
    Ok((parsed, kinds))
}

/// Every result of a parsed query, tickets (sorted as asked), then
/// users, organizations and groups, each with its `result_type`.
pub(super) fn find(
    sh: &Shared,
    parsed: &Query,
    kinds: &[&str],
    q: &HashMap<String, String>,
) -> Result<Vec<Value>, ZdErr> {
    let untyped = parsed.kind.is_none();
    let ticket_only = untyped
        && (parsed
            .keys()
            .any(|k| TICKET_KEYS.contains(&k) || custom_field_id(k).is_some())
            || parsed.has_ranges());
    let user_only = untyped && parsed.keys().any(|k| USER_KEYS.contains(&k));
    let parsed = parsed;
    let db = lock(&sh.db);
    let mut tickets: Vec<&Ticket> = if kinds.contains(&"ticket") && !user_only {
        db.tickets
            .values()
            .filter(|t| ticket_matches(&db, t, parsed))
            .collect()
    } else {
        vec![]
    };
    sort_tickets(&mut tickets, q)?;
    let mut results: Vec<Value> = tickets
        .into_iter()
        .map(|t| with_type(ticket_json(&db, t, &sh.opts), "ticket"))
        .collect();
    if kinds.contains(&"user") && !ticket_only {
        results.extend(
            db.people
                .values()
                .filter(|u| matches(&db, u, parsed))
                .map(|u| with_type(person_json(sh, u), "user")),
        );
    }
    if kinds.contains(&"organization") {
        results.extend(
            db.orgs
                .values()
                .filter(|o| parsed.admits(|term| org_term(o, term)))
                .map(|o| with_type(org_json(sh, o), "organization")),
        );
    }
    if kinds.contains(&"group") && !ticket_only && !user_only {
        results.extend(
            db.groups
                .iter()
                .filter(|g| group_matches(&g.name, parsed))
                .map(|g| with_type(super::groups::group_json(sh, g), "group")),
        );
    }
    Ok(results)
}

/// An organization: free text in its name; `name:`, `external_id:`, or
/// a custom field by key.
fn org_term(o: &Org, q: &Query) -> bool {
    q.ranges.is_empty()
        && q.text
            .iter()
            .all(|w| has(&o.name, w) || o.id.to_string() == *w)
        && q.props.iter().all(|(k, v)| match k.as_str() {
            "name" => has(&o.name, v),
            "external_id" => o
                .external_id
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(v)),
            k => value_is(o.fields.get(k), v),
        })
}

pub(super) fn with_type(mut v: Value, kind: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("result_type".into(), kind.into());
    }
    v
}

/// `sort_by` (`created_at`, `updated_at`, `priority`, `status`,
/// `ticket_type`) and `sort_order` (`desc` by default). Without `sort_by`
/// Zendesk ranks by relevance, which is not modelled: tickets come by id.
pub(super) fn sort_tickets(
    tickets: &mut [&Ticket],
    q: &HashMap<String, String>,
) -> Result<(), ZdErr> {
    let desc = match q.get("sort_order").map(String::as_str) {
        None | Some("") | Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(invalid(format!("sort_order {o} is not asc or desc"))),
    };
    let Some(by) = q.get("sort_by").filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let key = |t: &Ticket| -> (String, u64) {
        let k = match by.as_str() {
            "created_at" => format!("{:020}", t.created_at),
            "updated_at" => format!("{:020}", t.updated_at),
            "priority" => t.priority.clone().unwrap_or_default(),
            "status" => t.status.clone(),
            _ => t.kind.clone().unwrap_or_default(),
        };
        (k, t.id)
    };
    if ![
        "created_at",
        "updated_at",
        "priority",
        "status",
        "ticket_type",
    ]
    .contains(&by.as_str())
    {
        return Err(invalid(format!(
            "sort_by {by} is not one of updated_at, created_at, priority, status, ticket_type"
        )));
    }
    tickets.sort_by_key(|t| key(t));
    if desc {
        tickets.reverse();
    }
    Ok(())
}

/// A query string value, percent-encoded as the connector encodes it.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::connectors::QUERY_VALUE).to_string()
}

/// Whether the user matches every term: `name:`, `email:`, `role:` or
/// free text, each a case-insensitive part of the value ("a partial or
/// full value of any user property", Zendesk's Search Users);
/// `external_id:`, `organization:` and custom fields by key, whole.
pub(super) fn matches(db: &Db, u: &Person, q: &Query) -> bool {
    q.admits(|term| user_term(db, u, term))
}

fn user_term(db: &Db, u: &Person, q: &Query) -> bool {
    let email = u.email.as_deref().unwrap_or("");
    q.ranges.is_empty()
        && q.text
            .iter()
            .all(|t| has(&u.name, t) || has(email, t) || u.id.to_string() == *t)
        && q.props.iter().all(|(k, v)| match k.as_str() {
            "name" => has(&u.name, v),
            "email" => has(email, v),
            "role" => u.role.eq_ignore_ascii_case(v),
            "external_id" => u
                .external_id
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(v)),
            "organization" => organization_is(db, u.organization_id, v),
            k => value_is(u.fields.get(k), v),
        })
}

/// `GET /api/v2/users/search?query=` (or `external_id=`): offset
/// pagination only, as Zendesk documents for this endpoint.
pub(super) fn search_users(sh: &Shared, q: &HashMap<String, String>, base: &str) -> Answer {
    let db = lock(&sh.db);
    let found: Vec<Value> = match (q.get("query"), q.get("external_id")) {
        // "The external_id parameter does not support the search syntax.
        // It only accepts ids": matched whole.
        (_, Some(x)) => db
            .people
            .values()
            .filter(|u| u.external_id.as_deref() == Some(x.as_str()))
            .map(|u| person_json(sh, u))
            .collect(),
        (Some(text), None) => {
            let parsed = Query::parse(
                text,
                &["name", "email", "role", "external_id", "organization"],
            )?;
            db.people
                .values()
                .filter(|u| matches(&db, u, &parsed))
                .map(|u| person_json(sh, u))
                .collect()
        }
        (None, None) => {
            return Err(ZdErr::bad_request(
                "InvalidParameter",
                "Search Users needs query= (or external_id=)",
            ))
        }
    };
    drop(db);
    offset_page("users", "/api/v2/users/search", found, q, base, None)
}

/// One page of an offset-paginated search: `page` (from 1) and `per_page`
/// (at most 100), `count` the number of matches, `next_page` and
/// `previous_page` absolute URLs (on `base`) or null. With `cap`, pages
/// past that many results are a 422, as Zendesk's 1,000-result limit.
pub(super) fn offset_page(
    name: &str,
    path: &str,
    items: Vec<Value>,
    q: &HashMap<String, String>,
    base: &str,
    cap: Option<usize>,
) -> Answer {
    let number = |key: &str, default: usize| -> Result<usize, ZdErr> {
        match q.get(key).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| ZdErr {
                status: StatusCode::BAD_REQUEST,
                body: json!({"error": {"title": "Invalid attribute",
                    "message": format!("You passed an invalid value for the {key} attribute. Invalid parameter: {key} must be a positive integer")}}),
            }),
        }
    };
    let per_page = number("per_page", PAGE_MAX)?.min(PAGE_MAX);
    let page = number("page", 1)?;
    let start = (page - 1).saturating_mul(per_page);
    let reachable = cap.map_or(items.len(), |c| items.len().min(c));
    if let Some(c) = cap {
        if start >= c {
            return Err(ZdErr {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: json!({"error": "InsufficientResourceError",
                    "description": format!("Search returns at most {c} results; page {page} of {per_page} starts past them")}),
            });
        }
    }
    let count = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .take(reachable)
        .skip(start)
        .take(per_page)
        .collect();
    let mut fixed = String::new();
    for key in ["query", "external_id", "sort_by", "sort_order"] {
        if let Some(v) = q.get(key) {
            fixed.push_str(&format!("{key}={}&", encode(v)));
        }
    }
    let url = |n: usize| Value::from(format!("{base}{path}?{fixed}page={n}&per_page={per_page}"));
    let next = if start + shown.len() < reachable {
        url(page + 1)
    } else {
        Value::Null
    };
    let prev = if page > 1 { url(page - 1) } else { Value::Null };
    let mut body = json!({name: shown, "next_page": next, "previous_page": prev, "count": count});
    if name == "results" {
        body["facets"] = Value::Null;
    }
    ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_phrases_stay_together() {
        assert_eq!(
            tokens(r#"type:ticket "printer on fire" requester:"Ana Souza"  x"#),
            ["type:ticket", "printer on fire", "requester:Ana Souza", "x"]
        );
    }

    #[test]
    fn terms_are_sorted_into_kinds_and_unknown_keys_refused() {
        let keys: Vec<&str> = TICKET_KEYS
            .iter()
            .chain(USER_KEYS.iter())
            .copied()
            .collect();
        let q = Query::parse("type:ticket status<solved tags:vip urgent", &keys).unwrap();
        assert_eq!(q.kind.as_deref(), Some("ticket"));
        assert_eq!(
            q.ranges,
            [("status".to_string(), '<', "solved".to_string())]
        );
        assert_eq!(q.props, [("tags".to_string(), "vip".to_string())]);
        assert_eq!(q.text, ["urgent"]);
        let e = Query::parse("assignee:me", &keys).unwrap_err();
        assert!(e.body["description"]
            .as_str()
            .unwrap()
            .contains("`assignee`"));
        let e = Query::parse("priority>low", &keys).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        // Users search knows no `type:`; a URL-ish word is text.
        assert!(Query::parse("type:user", &USER_KEYS).is_err());
        assert!(Query::parse("a:b", &[]).is_err());
        assert_eq!(
            Query::parse("ana@example.com", &USER_KEYS).unwrap().text,
            ["ana@example.com"]
        );
    }

    #[test]
    fn negated_terms_and_wildcards() {
        let keys: Vec<&str> = TICKET_KEYS
            .iter()
            .chain(USER_KEYS.iter())
            .copied()
            .collect();
        let q = Query::parse("photo* -status:open -tags:invoice -x", &keys).unwrap();
        assert_eq!(q.text, ["photo"]);
        assert_eq!(q.not.len(), 3);
        assert_eq!(q.not[0].props, [("status".to_string(), "open".to_string())]);
        assert_eq!(q.not[2].text, ["x"]);
        assert_eq!(q.keys().collect::<Vec<_>>(), ["status", "tags"]);
        for bad in [
            "*",
            "-*",
            "a*b",
            "tags:vip*",
            "-type:ticket",
            "-assignee:me",
        ] {
            assert!(Query::parse(bad, &keys).is_err(), "{bad}");
        }
    }
}
