//! A connection block: its properties, credentials by reference, and
//! which sign-in flow a Salesforce connection uses.

use super::props::{Prop, Val, SALESFORCE, ZENDESK, ZENDESK_PLANS};
use super::scopes::{zendesk_scopes, SALESFORCE_SCOPES};
use crate::check::{did_you_mean, CheckErrorKind, ConnInfo, Ctx, Kind, SecretRef};
use crate::syntax::ast::{Connection, PropKind, PropValue, Property};
use crate::syntax::Span;
use std::collections::BTreeMap;

pub(in crate::check) fn declare(cx: &mut Ctx, c: &Connection) {
    let first = cx.env.conns.get(&c.name.name).map(|prev| prev.span);
    if cx.declared_again("connection", &c.name, first, "rename one") {
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
    let auth = info.settings.get("auth").map(String::as_str);
    if kind == Kind::Salesforce {
        match info.settings.get("flow") {
            Some(flow) => super::auth::salesforce_flow(cx, c, flow, spec, &seen),
            None => salesforce_credentials(cx, c, spec, &seen),
        }
    }
    let required: &[&str] = match kind {
        // An OAuth client's tokens live in l3map's store, not in the block.
        Kind::Zendesk if matches!(auth, Some("oauth_code" | "client_credentials")) => &["scopes"],
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
        super::auth::zendesk_auth(cx, c, auth.unwrap_or("oauth"), spec, &seen);
        if auth == Some("api_token") && !seen.contains_key("email") {
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
        Val::Currencies => distinct_words(cx, key, prop, p, &mut info.currencies, &CURRENCIES),
        Val::Objects => distinct_words(cx, key, prop, p, &mut info.objects, &OBJECTS),
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

/// A property listing distinct words of one kind.
struct Words {
    kind: &'static str,
    fits: fn(&str) -> bool,
    /// What a value that does not fit should have been.
    wanted: &'static str,
}

const CURRENCIES: Words = Words {
    kind: "currency",
    fits: |w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_uppercase()),
    wanted: "three-letter ISO 4217 currency codes in capitals, such as USD or EUR",
};

const OBJECTS: Words = Words {
    kind: "object",
    fits: |w| w.starts_with(|c: char| c.is_ascii_uppercase()) && !w.contains('.'),
    wanted: "Salesforce object names such as Case or Order__c",
};

/// Each value of `p` that fits `words` goes on `list` once (twice is a
/// duplicate); any other is a bad value.
fn distinct_words(
    cx: &mut Ctx,
    key: &str,
    prop: &Prop,
    p: &Property,
    list: &mut Vec<(String, Span)>,
    words: &Words,
) {
    for v in &p.values {
        match &v.kind {
            PropKind::Word(w) if (words.fits)(w) => {
                if list.iter().any(|(x, _)| x == w) {
                    let help = format!("list each {} once", words.kind);
                    cx.duplicate(words.kind, w.clone(), v.span, None, help);
                } else {
                    list.push((w.clone(), v.span));
                }
            }
            _ => bad(cx, key, words.wanted, prop, v),
        }
    }
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
