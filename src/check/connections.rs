//! Connection blocks: properties, credentials by reference, scopes, and the
//! least-privilege lints that need the whole project's usage.

use super::{did_you_mean, CheckErrorKind, ConnInfo, Ctx, Kind, SecretRef};
use crate::syntax::ast::{Connection, PropKind, PropValue, Property};
use crate::syntax::Span;
use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq)]
enum Val {
    /// env("X") / file("p") only: a credential.
    Secret,
    /// A credential reference or plain text (Salesforce client ids are not secret).
    SecretOrText,
    Text,
    Words(&'static [&'static str]),
    Rate,
    Count,
    Scopes,
    Objects,
    /// ISO 4217 codes: `USD, EUR`.
    Currencies,
}

struct Prop {
    key: &'static str,
    val: Val,
    example: &'static str,
}

const ZENDESK: &[Prop] = &[
    Prop {
        key: "subdomain",
        val: Val::Text,
        example: "subdomain \"acme\"",
    },
    Prop {
        key: "url",
        val: Val::Text,
        example: "url \"https://acme.zendesk.com\"",
    },
    Prop {
        key: "token",
        val: Val::Secret,
        example: "token env(\"ZENDESK_OAUTH_TOKEN\")",
    },
    Prop {
        key: "auth",
        val: Val::Words(&["oauth", "api_token"]),
        example: "auth oauth",
    },
    Prop {
        key: "email",
        val: Val::Text,
        example: "email \"ai-agent@acme.com\"",
    },
    Prop {
        key: "scopes",
        val: Val::Scopes,
        example: "scopes read, write, tickets:write",
    },
    Prop {
        key: "plan",
        val: Val::Words(&[
            "team",
            "growth",
            "professional",
            "enterprise",
            "enterprise_plus",
        ]),
        example: "plan team",
    },
    Prop {
        key: "rate_limit",
        val: Val::Rate,
        example: "rate_limit 200 rpm",
    },
    Prop {
        key: "currencies",
        val: Val::Currencies,
        example: "currencies USD, EUR",
    },
    Prop {
        key: "webhook_secret",
        val: Val::Secret,
        example: "webhook_secret env(\"ZENDESK_WEBHOOK_SECRET\")",
    },
];

const SALESFORCE: &[Prop] = &[
    Prop {
        key: "instance",
        val: Val::Text,
        example: "instance \"https://acme.my.salesforce.com\"",
    },
    Prop {
        key: "client_id",
        val: Val::SecretOrText,
        example: "client_id env(\"SF_CLIENT_ID\")",
    },
    Prop {
        key: "client_secret",
        val: Val::Secret,
        example: "client_secret env(\"SF_CLIENT_SECRET\")",
    },
    Prop {
        key: "refresh_token",
        val: Val::Secret,
        example: "refresh_token env(\"SF_REFRESH_TOKEN\")",
    },
    // The JWT bearer flow, instead of client_secret + refresh_token.
    Prop {
        key: "username",
        val: Val::SecretOrText,
        example: "username \"integration@acme.com\"",
    },
    Prop {
        key: "private_key",
        val: Val::Secret,
        example: "private_key file(\"/run/secrets/sf_key.pem\")",
    },
    Prop {
        key: "scopes",
        val: Val::Scopes,
        example: "scopes api, refresh_token, offline_access",
    },
    Prop {
        key: "objects",
        val: Val::Objects,
        example: "objects Case, Contact, Account",
    },
    Prop {
        key: "max_concurrent",
        val: Val::Count,
        example: "max_concurrent 100",
    },
    Prop {
        key: "api_version",
        val: Val::Text,
        example: "api_version \"v60.0\"",
    },
    Prop {
        key: "rate_limit",
        val: Val::Rate,
        example: "rate_limit 1000 rpm",
    },
    Prop {
        key: "currencies",
        val: Val::Currencies,
        example: "currencies USD, EUR",
    },
];

/// Whether `key` is a connection setting the language defines as holding
/// no secret (the address, scopes, plan, ...). Source frames show only these
/// values in clear: every other value in a connection block, including the
/// value of a mistyped or unknown key, is masked ([`crate::diagnostics::redact`]).
pub(crate) fn holds_no_secret(key: &str) -> bool {
    ZENDESK
        .iter()
        .chain(SALESFORCE)
        .any(|p| p.key == key && p.val != Val::Secret)
}

/// Requests per minute per token for each Zendesk plan.
pub const ZENDESK_PLANS: &[(&str, u32)] = &[
    ("team", 200),
    ("growth", 400),
    ("professional", 400),
    ("enterprise", 700),
    ("enterprise_plus", 2500),
];

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
fn zendesk_scopes() -> Vec<String> {
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

const SALESFORCE_SCOPES: &[&str] = &[
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

pub(super) fn declare(cx: &mut Ctx, c: &Connection) {
    if let Some(prev) = cx.env.conns.get(&c.name.name) {
        let first = prev.span;
        cx.duplicate(
            "connection",
            c.name.name.clone(),
            c.name.span,
            Some(first),
            "rename one",
        );
        return;
    }
    let kind = match c.kind.name.as_str() {
        "zendesk" => Kind::Zendesk,
        "salesforce" => Kind::Salesforce,
        _ => {
            cx.err(
                CheckErrorKind::UnknownConnectionKind {
                    kind: c.kind.name.clone(),
                }
                .at(c.kind.span),
            );
            return;
        }
    };
    let spec = if kind == Kind::Zendesk {
        ZENDESK
    } else {
        SALESFORCE
    };
    let mut info = ConnInfo {
        name: c.name.name.clone(),
        kind,
        span: c.name.span,
        decl: c.span,
        scopes: vec![],
        scopes_span: None,
        objects: vec![],
        currencies: vec![],
        secrets: vec![],
        settings: BTreeMap::new(),
        rate_limit_rpm: None,
        max_concurrent: None,
    };
    let mut seen: BTreeMap<&str, &Property> = BTreeMap::new();
    for p in &c.props {
        let Some(prop) = spec.iter().find(|s| s.key == p.key.name) else {
            let help = did_you_mean(&p.key.name, spec.iter().map(|s| s.key)).or_else(|| {
                Some(format!(
                    "{} connections take: {}",
                    kind.as_str(),
                    spec.iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
                ))
            });
            cx.err(
                CheckErrorKind::UnknownProperty {
                    key: p.key.name.clone(),
                    kind: kind.as_str().into(),
                    help,
                }
                .at(p.key.span),
            );
            continue;
        };
        if let Some(first) = seen.get(prop.key) {
            let first = first.key.span;
            let help = if matches!(prop.val, Val::Scopes | Val::Objects) {
                "keep one; list several values on one line, separated by commas"
            } else {
                "keep one"
            };
            cx.duplicate("property", prop.key, p.key.span, Some(first), help);
            continue;
        }
        seen.insert(prop.key, p);
        property(cx, &mut info, prop, p);
    }
    if kind == Kind::Salesforce {
        salesforce_credentials(cx, c, spec, &seen);
    }
    let required: &[&str] = match kind {
        Kind::Zendesk => &["token", "scopes"],
        Kind::Salesforce => &["instance", "client_id", "scopes", "objects"],
    };
    for key in required {
        if !seen.contains_key(key) {
            let prop = spec
                .iter()
                .find(|s| s.key == *key)
                .expect("spec has required keys");
            cx.err(
                CheckErrorKind::MissingProperty {
                    kind: kind.as_str().into(),
                    conn: c.name.name.clone(),
                    key: prop.key,
                    example: prop.example,
                }
                .at(c.name.span),
            );
        }
    }
    if kind == Kind::Zendesk {
        if !seen.contains_key("subdomain") && !seen.contains_key("url") {
            cx.err(
                CheckErrorKind::MissingProperty {
                    kind: "zendesk".into(),
                    conn: c.name.name.clone(),
                    key: "subdomain",
                    example: "subdomain \"acme\"` (or `url \"https://...\"",
                }
                .at(c.name.span),
            );
        }
        if info.settings.get("auth").map(String::as_str) == Some("api_token")
            && !seen.contains_key("email")
        {
            cx.err(
                CheckErrorKind::MissingProperty {
                    kind: "zendesk".into(),
                    conn: c.name.name.clone(),
                    key: "email",
                    example: "email \"ai-agent@acme.com\"",
                }
                .at(c.name.span),
            );
        }
        if info.rate_limit_rpm.is_none() {
            let plan = info
                .settings
                .get("plan")
                .cloned()
                .unwrap_or_else(|| "team".into());
            info.rate_limit_rpm = ZENDESK_PLANS
                .iter()
                .find(|(p, _)| *p == plan)
                .map(|(_, r)| *r);
        }
    }
    cx.env.conns.insert(c.name.name.clone(), info);
}

/// The refresh-token flow (`client_secret` + `refresh_token`) or the JWT
/// bearer flow (`username` + `private_key`): exactly one, complete.
fn salesforce_credentials(
    cx: &mut Ctx,
    c: &Connection,
    spec: &[Prop],
    seen: &BTreeMap<&str, &Property>,
) {
    const REFRESH: [&str; 2] = ["client_secret", "refresh_token"];
    const JWT: [&str; 2] = ["username", "private_key"];
    // The flow's property written first, which is where it starts.
    let first = |keys: [&str; 2]| {
        keys.iter()
            .filter_map(|k| seen.get(k).copied())
            .min_by_key(|p| p.span.start)
    };
    let flows = "sign in with a refresh token (`client_secret` and `refresh_token`) or with the JWT bearer flow (`username` and `private_key file(\"/run/secrets/sf_key.pem\")`)";
    let problem = |problem: &str, help: &str, label: &str, span, other| {
        CheckErrorKind::SalesforceCredentials {
            conn: c.name.name.clone(),
            problem: problem.into(),
            help: format!("{flows}{help}"),
            label: label.into(),
            other,
        }
        .at(span)
    };
    let flow = match (first(REFRESH), first(JWT)) {
        (Some(r), Some(j)) => {
            let (earlier, later) = if r.span.start <= j.span.start {
                (r, j)
            } else {
                (j, r)
            };
            cx.err(problem(
                "mixes the refresh-token and JWT bearer sign-in flows",
                ", not both",
                "mixed in here",
                later.key.span,
                Some(earlier.key.span),
            ));
            return;
        }
        (None, None) => {
            cx.err(problem(
                "has no credentials to sign in with",
                "",
                "declared here",
                c.name.span,
                None,
            ));
            return;
        }
        (Some(_), None) => REFRESH,
        (None, Some(_)) => JWT,
    };
    for key in flow.iter().filter(|k| !seen.contains_key(*k)) {
        if let Some(prop) = spec.iter().find(|s| s.key == *key) {
            cx.err(
                CheckErrorKind::MissingProperty {
                    kind: "salesforce".into(),
                    conn: c.name.name.clone(),
                    key: prop.key,
                    example: prop.example,
                }
                .at(c.name.span),
            );
        }
    }
}

fn property(cx: &mut Ctx, info: &mut ConnInfo, prop: &Prop, p: &Property) {
    let key = prop.key;
    let single = |cx: &mut Ctx, _expected: &str| -> Option<&PropValue> {
        if p.values.len() > 1 {
            cx.err(
                CheckErrorKind::TooManyValues {
                    key: key.into(),
                    example: prop.example.into(),
                }
                .at(p.values[1].span.to(p.values[p.values.len() - 1].span)),
            );
        }
        p.values.first()
    };
    match prop.val {
        Val::Secret | Val::SecretOrText => {
            let Some(v) = single(cx, "one credential reference") else {
                return;
            };
            match &v.kind {
                PropKind::Secret { source, name } => {
                    if name.is_empty() {
                        cx.err(
                            CheckErrorKind::BadPropertyValue {
                                key: key.into(),
                                expected: "a variable or file name".into(),
                                help: format!("write `{}`", prop.example),
                            }
                            .at(v.span),
                        );
                    }
                    info.secrets.push(SecretRef {
                        key: key.into(),
                        source: source.clone(),
                        name: name.clone(),
                    });
                }
                PropKind::Text(t) if prop.val == Val::SecretOrText => {
                    info.settings.insert(key.into(), t.clone());
                }
                PropKind::Text(_) | PropKind::Word(_) | PropKind::Number(_) => {
                    cx.err(
                        CheckErrorKind::LiteralSecret {
                            key: key.into(),
                            suggested_env: format!(
                                "{}_{}",
                                info.name.to_uppercase(),
                                key.to_uppercase()
                            ),
                        }
                        .at(v.span),
                    );
                }
                _ => bad(cx, key, "env(\"NAME\") or file(\"path\")", prop, v),
            }
        }
        Val::Text => {
            let Some(v) = single(cx, "a string") else {
                return;
            };
            match &v.kind {
                PropKind::Text(t) => {
                    if (key == "url" || key == "instance")
                        && !(t.starts_with("https://") || t.starts_with("http://"))
                    {
                        cx.err(
                            CheckErrorKind::BadPropertyValue {
                                key: key.into(),
                                expected: "an http(s) URL".into(),
                                help: format!("write `{}`", prop.example),
                            }
                            .at(v.span),
                        );
                    }
                    if (key == "url" || key == "instance") && has_user_info(t) {
                        // `https://user:password@host` is a credential
                        // written in the file, like `token "…"`.
                        cx.err(CheckErrorKind::BadPropertyValue {
                            key: key.into(),
                            expected: "a URL without a user name or password".into(),
                            help: format!(
                                "remove the `user:password@` part (write `{}`; credentials go in env(\"…\") or file(\"…\") references) and rotate the password that was committed",
                                prop.example
                            ),
                        }.at(v.span));
                    }
                    info.settings.insert(key.into(), t.clone());
                }
                _ => bad(cx, key, "a string in double quotes", prop, v),
            }
        }
        Val::Words(allowed) => {
            let Some(v) = single(cx, "one word") else {
                return;
            };
            match &v.kind {
                PropKind::Word(w) if allowed.contains(&w.as_str()) => {
                    info.settings.insert(key.into(), w.clone());
                }
                PropKind::Word(w) => cx.err(
                    CheckErrorKind::BadPropertyValue {
                        key: key.into(),
                        expected: format!("one of {}", allowed.join(", ")),
                        help: did_you_mean(w, allowed.iter().copied())
                            .unwrap_or_else(|| format!("write `{}`", prop.example)),
                    }
                    .at(v.span),
                ),
                _ => bad(cx, key, &format!("one of {}", allowed.join(", ")), prop, v),
            }
        }
        Val::Rate => {
            let Some(v) = single(cx, "a rate") else {
                return;
            };
            match &v.kind {
                PropKind::Rate(r) if *r > 0 => info.rate_limit_rpm = Some(*r),
                _ => bad(cx, key, "a rate such as `200 rpm`", prop, v),
            }
        }
        Val::Count => {
            let Some(v) = single(cx, "a whole number") else {
                return;
            };
            match &v.kind {
                PropKind::Number(n) if *n >= 1.0 && n.fract() == 0.0 && *n <= 10_000.0 => {
                    info.max_concurrent = Some(*n as u32)
                }
                _ => bad(cx, key, "a whole number from 1 to 10000", prop, v),
            }
        }
        Val::Scopes => {
            info.scopes_span = Some(p.span);
            let known: Vec<String> = if info.kind == Kind::Zendesk {
                zendesk_scopes()
            } else {
                SALESFORCE_SCOPES.iter().map(|s| s.to_string()).collect()
            };
            for v in &p.values {
                let s = match &v.kind {
                    PropKind::Scope(s) | PropKind::Word(s) => s.clone(),
                    _ => {
                        bad(cx, key, "scope names", prop, v);
                        continue;
                    }
                };
                if !known.contains(&s) {
                    cx.err(
                        CheckErrorKind::UnknownScope {
                            kind: info.kind.as_str().into(),
                            help: did_you_mean(&s, known.iter().map(String::as_str)),
                            scope: s.clone(),
                        }
                        .at(v.span),
                    );
                }
                info.scopes.push((s, v.span));
            }
        }
        Val::Currencies => {
            for v in &p.values {
                match &v.kind {
                    PropKind::Word(w)
                        if w.len() == 3 && w.bytes().all(|b| b.is_ascii_uppercase()) =>
                    {
                        if info.currencies.iter().any(|(c, _)| c == w) {
                            cx.duplicate(
                                "currency",
                                w.clone(),
                                v.span,
                                None,
                                "list each currency once",
                            );
                        } else {
                            info.currencies.push((w.clone(), v.span));
                        }
                    }
                    _ => bad(
                        cx,
                        key,
                        "three-letter ISO 4217 currency codes in capitals, such as USD or EUR",
                        prop,
                        v,
                    ),
                }
            }
        }
        Val::Objects => {
            for v in &p.values {
                match &v.kind {
                    PropKind::Word(w)
                        if w.starts_with(|c: char| c.is_ascii_uppercase()) && !w.contains('.') =>
                    {
                        if info.objects.iter().any(|(o, _)| o == w) {
                            cx.duplicate(
                                "object",
                                w.clone(),
                                v.span,
                                None,
                                "list each object once",
                            );
                        } else {
                            info.objects.push((w.clone(), v.span));
                        }
                    }
                    _ => bad(
                        cx,
                        key,
                        "Salesforce object names such as Case or Order__c",
                        prop,
                        v,
                    ),
                }
            }
        }
    }
}

/// `scheme://user[:password]@host…`: an `@` before the path.
fn has_user_info(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|authority| authority.contains('@'))
    })
}

fn bad(cx: &mut Ctx, key: &str, expected: &str, prop: &Prop, v: &PropValue) {
    cx.err(
        CheckErrorKind::BadPropertyValue {
            key: key.into(),
            expected: expected.into(),
            help: format!("write `{}`", prop.example),
        }
        .at(v.span),
    );
}

/// Least privilege: scopes must match what the project actually does.
pub(super) fn lint_usage(cx: &mut Ctx) {
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
fn zendesk_scopes_used(cx: &mut Ctx, c: &ConnInfo, scopes_span: crate::syntax::Span) {
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
    // Unknown scopes are errors already.
    let known = zendesk_scopes();
    for (s, sp) in c.scopes.iter().filter(|(s, _)| known.contains(s)) {
        let resource = s.split_once(':').map_or(s.as_str(), |(r, _)| r);
        let help = if s == "impersonate" {
            "the agent should act as its own dedicated user, not impersonate people".to_string()
        } else if resource == "hc" {
            "Help Center scopes are only for agents that write Help Center articles; nothing in this project does".to_string()
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
fn salesforce_scopes_used(cx: &mut Ctx, c: &ConnInfo, scopes_span: crate::syntax::Span) {
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
    span: crate::syntax::Span,
    at: Option<crate::syntax::Span>,
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
