//! The OAuth scopes of Zendesk and Salesforce, and the least-privilege
//! lints that hold a connection's scopes against what the whole project
//! does with it.

use crate::check::{CheckErrorKind, ConnInfo, Ctx, Kind};
use crate::syntax::Span;

/// Zendesk's OAuth scopes, as its OAuth Tokens API reference defines them
/// (<https://developer.zendesk.com/api-reference/ticketing/oauth/oauth_tokens/>,
/// "Scopes"): a scope is `[resource:]access`. `read` opens the GET
/// endpoints, `write` the POST, PUT and DELETE ones; neither includes the
/// other ("to give read and write access to a resource, specify both
/// scopes"). Without a resource a scope covers every resource; a resource
/// without an access (`tickets`) means read and write. `impersonate` lets an
/// admin's token act as end users.
///
/// The resources a scope may name. Zendesk documents tickets, users,
/// auditlogs (read only), organizations, hc, apps, triggers, automations,
/// targets, webhooks and zis; macros, requests and satisfaction_ratings
/// are kept so that projects written for earlier versions of l3map still
/// check.
const ZENDESK_RESOURCES: &[&str] = &[
    "tickets",
    "users",
    "auditlogs",
    "organizations",
    "hc",
    "apps",
    "triggers",
    "automations",
    "targets",
    "webhooks",
    "zis",
    "macros",
    "requests",
    "satisfaction_ratings",
];

/// Every Zendesk scope name l3map accepts.
pub(super) fn zendesk_scopes() -> Vec<String> {
    let mut all: Vec<String> = ["read", "write", "impersonate"].map(String::from).to_vec();
    for r in ZENDESK_RESOURCES {
        all.push(format!("{r}:read"));
        // Audit logs are read only: there is no `auditlogs:write`.
        if *r != "auditlogs" {
            all.push(r.to_string());
            all.push(format!("{r}:write"));
        }
    }
    all
}

/// Whether the Zendesk scope `scope` grants `access` (`read` or `write`)
/// to `resource` (`None`: an endpoint no resource scope covers, such as
/// the account's groups, which only the global `read` and `write` open).
fn zendesk_grants(scope: &str, access: &str, resource: Option<&str>) -> bool {
    match scope.split_once(':') {
        Some((r, a)) => a == access && Some(r) == resource,
        None if scope == access => true,
        None => Some(scope) == resource,
    }
}

pub(super) const SALESFORCE_SCOPES: &[&str] = &[
    "api",
    "refresh_token",
    "offline_access",
    "full",
    "web",
    "chatter_api",
    "id",
    "profile",
    "email",
    "address",
    "phone",
    "openid",
    "custom_permissions",
    "wave_api",
    "visualforce",
    "content",
    "pardot_api",
    "cdp_query_api",
    "eclair_api",
];

/// Least privilege: scopes must match what the project actually does.
pub(in crate::check) fn lint_usage(cx: &mut Ctx) {
    let conns: Vec<ConnInfo> = cx.env.conns.values().cloned().collect();
    for c in &conns {
        if !cx.usage.conns.contains(&c.name) {
            cx.err(
                CheckErrorKind::Unused {
                    kind: "connection",
                    name: c.name.clone(),
                    help: "remove it, or use it in a statuses, map or escalation block".into(),
                }
                .at(c.span),
            );
            continue;
        }
        let Some(scopes_span) = c.scopes_span else {
            continue;
        };
        match c.kind {
            Kind::Zendesk => zendesk_scopes_used(cx, c, scopes_span),
            Kind::Salesforce => salesforce_scopes_used(cx, c, scopes_span),
        }
    }
}

/// What l3map does with a Zendesk connection, against the scope lattice
/// of [`zendesk_grants`]:
///
/// * it always reads tickets (and their comments, and the incremental
///   ticket export when polling): `read`, `tickets:read` or `tickets`;
/// * every write — a status, a custom or standard field, a private
///   comment, a group — is one update of the ticket (`PUT
///   /api/v2/tickets/{id}`): `write`, `tickets:write` or `tickets`;
/// * `assign` looks the group's id up in the account's groups
///   (`/api/v2/groups`), a list no resource scope covers: `read`.
///
/// A scope for any other resource, and `impersonate`, open what l3map
/// never uses. `write` is accepted although it covers every resource:
/// it is half of Zendesk's default `read write`, and the docs recommend
/// `tickets:write` instead.
fn zendesk_scopes_used(cx: &mut Ctx, c: &ConnInfo, scopes_span: Span) {
    let grants = |access: &str, resource: Option<&str>| {
        c.scopes
            .iter()
            .any(|(s, _)| zendesk_grants(s, access, resource))
    };
    let mut writes = cx.usage.writes.get(&c.name).cloned().unwrap_or_default();
    writes.extend(
        cx.usage
            .status_writes
            .get(&c.name)
            .cloned()
            .unwrap_or_default(),
    );
    writes.sort_by_key(|(_, at)| (at.file, at.start));
    if !grants("read", Some("tickets")) {
        missing(
            cx,
            c,
            "read",
            "l3map reads tickets to evaluate rules".into(),
            format!(
                "add `read` (or `tickets:read`, which reads only tickets) to the `scopes` of `{}`",
                c.name
            ),
            scopes_span,
            None,
        );
    }
    match writes.first() {
        Some((what, at)) if !grants("write", Some("tickets")) => missing(
            cx,
            c,
            "tickets:write",
            what.clone(),
            format!(
                "add `tickets:write` to the `scopes` of `{}`: it covers every ticket update l3map makes (statuses, fields, comments, groups)",
                c.name
            ),
            scopes_span,
            Some(*at),
        ),
        Some(_) => {}
        None => {
            for (s, sp) in &c.scopes {
                if zendesk_grants(s, "write", Some("tickets")) {
                    let scope = s.clone();
                    if s == "tickets" {
                        cx.err(CheckErrorKind::BroadScope {
                            help: format!(
                                "`tickets` grants reading and writing tickets, and nothing in the project writes to `{}`: use `tickets:read`",
                                c.name
                            ),
                            scope,
                        }.at(*sp));
                    } else {
                        cx.err(CheckErrorKind::UnusedScope {
                            scope,
                            needs_it: format!("writes to `{}` tickets", c.name),
                        }.at(*sp));
                    }
                }
            }
        }
    }
    let groups: Vec<Span> = cx
        .usage
        .groups
        .iter()
        .filter(|(conn, ..)| *conn == c.name)
        .map(|(_, _, at)| *at)
        .collect();
    if let Some(at) = groups.first() {
        if !grants("read", None) {
            missing(
                cx,
                c,
                "read",
                "l3map finds the id of an assigned group in the account's list of groups (`/api/v2/groups`), which no resource scope such as `tickets:read` covers".into(),
                format!("add `read` to the `scopes` of `{}`", c.name),
                scopes_span,
                Some(*at),
            );
        }
    }
    // Links read organizations and users (the ticket's own, and searches
    // by value for fan-out).
    let mut reads: Vec<(&'static str, Span)> = cx
        .usage
        .zd_reads
        .iter()
        .filter(|(conn, ..)| *conn == c.name)
        .map(|(_, r, at)| (*r, *at))
        .collect();
    reads.sort_by_key(|(r, _)| *r);
    reads.dedup_by_key(|(r, _)| *r);
    for (resource, at) in &reads {
        if !grants("read", Some(resource)) {
            let scope: &'static str = if *resource == "users" {
                "users:read"
            } else {
                "organizations:read"
            };
            missing(
                cx,
                c,
                scope,
                format!("a link reads Zendesk {resource}"),
                format!("add `{scope}` (or `read`) to the `scopes` of `{}`", c.name),
                scopes_span,
                Some(*at),
            );
        }
    }
    // Unknown scopes are errors already.
    let known = zendesk_scopes();
    for (s, sp) in c.scopes.iter().filter(|(s, _)| known.contains(s)) {
        let resource = s.split_once(':').map_or(s.as_str(), |(r, _)| r);
        let help = if s == "impersonate" {
            "the agent should act as its own dedicated user, not impersonate people".to_string()
        } else if resource == "hc" {
            "Help Center scopes are only for agents that write Help Center articles; nothing in this project does".to_string()
        } else if reads.iter().any(|(r, _)| *r == resource)
            && !s.ends_with(":write")
            && s != resource
        {
            continue;
        } else if ZENDESK_RESOURCES.contains(&resource) && resource != "tickets" {
            format!(
                "l3map reads and writes only tickets; `{s}` opens Zendesk's {resource} as well: remove it"
            )
        } else {
            continue;
        };
        cx.err(
            CheckErrorKind::BroadScope {
                scope: s.clone(),
                help,
            }
            .at(*sp),
        );
    }
}

/// Salesforce scopes, as Salesforce Help's "OAuth Tokens and Scopes"
/// (<https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_scopes.htm>)
/// describes them: `api` opens the REST API; `refresh_token` and
/// `offline_access` are two names of one scope ("Perform requests at any
/// time"), which lets the refresh-token flow return a refresh token; `full`
/// encompasses every other scope but does not by itself return a refresh
/// token. The JWT bearer flow signs in anew with an assertion and needs no
/// refresh token. The other scopes open APIs l3map never calls (`web`,
/// `visualforce`, `chatter_api`, `content`, ...) or the user's identity
/// (`id`, `profile`, `email`, ...).
fn salesforce_scopes_used(cx: &mut Ctx, c: &ConnInfo, scopes_span: Span) {
    let has = |s: &str| c.scopes.iter().any(|(x, _)| x == s);
    if !has("full") && !has("api") {
        missing(
            cx,
            c,
            "api",
            "l3map calls the REST API".into(),
            format!("add `api` to the `scopes` of `{}`", c.name),
            scopes_span,
            None,
        );
    }
    // The JWT bearer flow signs in again with a new assertion, not a
    // refresh token.
    let jwt = c.settings.contains_key("username")
        || c.secrets
            .iter()
            .any(|s| s.key == "private_key" || s.key == "username");
    if !jwt && !has("refresh_token") && !has("offline_access") {
        cx.err(
            CheckErrorKind::NoOfflineScope {
                conn: c.name.clone(),
                scope: "scope `refresh_token` (also called `offline_access`) is".into(),
            }
            .at(scopes_span),
        );
    }
    for (s, sp) in c
        .scopes
        .iter()
        .filter(|(s, _)| SALESFORCE_SCOPES.contains(&s.as_str()))
    {
        let help = match s.as_str() {
            "api" | "refresh_token" | "offline_access" => continue,
            "full" => "`full` grants every permission of the user; `api, refresh_token` is all l3map needs".to_string(),
            "id" | "profile" | "email" | "address" | "phone" | "openid" => format!(
                "`{s}` reads the integration user's identity, which l3map never asks for: remove it"
            ),
            _ => format!("`{s}` opens an API l3map never calls; `api, refresh_token` is all it needs: remove it"),
        };
        cx.err(
            CheckErrorKind::BroadScope {
                scope: s.clone(),
                help,
            }
            .at(*sp),
        );
    }
    for (o, sp) in &c.objects {
        if !cx.usage.objects.contains(&(c.name.clone(), o.clone())) {
            cx.err(CheckErrorKind::UnusedObject { object: o.clone() }.at(*sp));
        }
    }
}

fn missing(
    cx: &mut Ctx,
    c: &ConnInfo,
    scope: &'static str,
    because: String,
    help: String,
    span: Span,
    at: Option<Span>,
) {
    let use_site = at.and_then(|a| cx.same_file(span, a));
    let because = match (at, use_site) {
        (Some(a), None) => format!("{because} ({})", cx.sources.locate(a)),
        _ => because,
    };
    cx.err(
        CheckErrorKind::MissingScope {
            conn: c.name.clone(),
            scope,
            because,
            help,
            use_site,
        }
        .at(span),
    );
}
