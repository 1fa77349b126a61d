//! Which properties go with each way a connection signs in: Zendesk's
//! `auth` word and Salesforce's `flow`. A property of another way is an
//! error at its key (it would be silently ignored at run time); a
//! missing one is named with an example. Zendesk API tokens are warned
//! about with the dates Zendesk retires them.

use super::props::Prop;
use crate::check::{CheckErrorKind, Ctx};
use crate::syntax::ast::{Connection, PropKind, Property};
use std::collections::BTreeMap;

const OAUTH_CLIENT: &[&str] = &[
    "client_id",
    "client_secret",
    "refresh_token",
    "redirect_uri",
];

/// A Zendesk block's properties against its `auth` (`oauth` when absent).
pub(super) fn zendesk_auth(
    cx: &mut Ctx,
    c: &Connection,
    auth: &str,
    spec: &[Prop],
    seen: &BTreeMap<&str, &Property>,
) {
    let (required, foreign, help): (&[&str], &[&str], String) = match auth {
        "oauth_code" => (
            &["client_id"],
            &["token", "email"],
            format!(
                "an `auth oauth_code` connection keeps its tokens in l3map's store, sealed, and refreshes them; remove it, and run `l3map auth login --connection {}` (or seed the first grant with `refresh_token env(\"…\")`)",
                c.name.name
            ),
        ),
        "client_credentials" => (
            &["client_id", "client_secret"],
            &["token", "email", "refresh_token", "redirect_uri"],
            "an `auth client_credentials` connection signs in with its `client_id` and `client_secret` alone; remove it".into(),
        ),
        "api_token" => (
            &[],
            OAUTH_CLIENT,
            "an OAuth client's properties go with `auth oauth_code` or `auth client_credentials`; remove it, or change `auth`".into(),
        ),
        _ => (
            &[],
            OAUTH_CLIENT,
            "with `auth oauth` the connection signs in with its fixed `token`; for an OAuth client l3map refreshes, write `auth oauth_code` (or `auth client_credentials`)".into(),
        ),
    };
    foreign_props(
        cx,
        c,
        "zendesk",
        &format!("`auth {auth}`"),
        foreign,
        &help,
        seen,
    );
    missing_props(cx, c, "zendesk", required, spec, seen);
    if let Some(p) = seen.get("redirect_uri") {
        redirect_uri(cx, p);
    }
    // developer.zendesk.com/documentation/api-basics/authentication/oauth-migration/
    // (checked 2026-12-06): "October 27, 2026: All accounts can no longer
    // create new API tokens"; "April 30, 2027: All remaining API tokens are
    // permanently deactivated".
    if auth == "api_token" {
        if let Some(p) = seen.get("auth") {
            let span = p.values.first().map_or(p.key.span, |v| v.span);
            cx.err(
                CheckErrorKind::ApiTokenRetired {
                    conn: c.name.name.clone(),
                }
                .at(span),
            );
        }
    }
}

/// A Salesforce block with an explicit `flow`: the flow's properties, and
/// none of another's.
pub(super) fn salesforce_flow(
    cx: &mut Ctx,
    c: &Connection,
    flow: &str,
    spec: &[Prop],
    seen: &BTreeMap<&str, &Property>,
) {
    let (required, foreign, help): (&[&str], &[&str], &str) = match flow {
        "jwt_bearer" => (
            &["username", "private_key"],
            &["client_secret", "refresh_token", "redirect_uri"],
            "the JWT bearer flow signs in with `username` and `private_key` and keeps no refresh token; remove it, or write `flow web_server`",
        ),
        "refresh_token" => (
            &["client_secret", "refresh_token"],
            &["username", "private_key", "redirect_uri"],
            "the refresh-token flow signs in with `client_secret` and `refresh_token` (a seed: l3map keeps the rotated one in its store); remove it",
        ),
        _ => (
            &[],
            &["username", "private_key"],
            "the web server flow signs in as the person who ran `l3map auth login` (or from a `refresh_token` seed); `username` and `private_key` belong to `flow jwt_bearer`",
        ),
    };
    foreign_props(
        cx,
        c,
        "salesforce",
        &format!("`flow {flow}`"),
        foreign,
        help,
        seen,
    );
    missing_props(cx, c, "salesforce", required, spec, seen);
    if let Some(p) = seen.get("redirect_uri") {
        redirect_uri(cx, p);
    }
}

fn foreign_props(
    cx: &mut Ctx,
    c: &Connection,
    kind: &str,
    auth: &str,
    foreign: &[&str],
    help: &str,
    seen: &BTreeMap<&str, &Property>,
) {
    for key in foreign {
        if let Some(p) = seen.get(key) {
            cx.err(
                CheckErrorKind::AuthProperty {
                    kind: kind.into(),
                    conn: c.name.name.clone(),
                    key: (*key).into(),
                    auth: auth.into(),
                    help: help.into(),
                }
                .at(p.key.span),
            );
        }
    }
}

fn missing_props(
    cx: &mut Ctx,
    c: &Connection,
    kind: &str,
    required: &[&str],
    spec: &[Prop],
    seen: &BTreeMap<&str, &Property>,
) {
    for key in required.iter().filter(|k| !seen.contains_key(*k)) {
        if let Some(prop) = spec.iter().find(|s| s.key == *key) {
            cx.err(
                CheckErrorKind::MissingProperty {
                    kind: kind.into(),
                    conn: c.name.name.clone(),
                    key: prop.key,
                    example: prop.example,
                }
                .at(c.name.span),
            );
        }
    }
}

/// Where the browser is sent back after `l3map auth login`: https, or http
/// on the loopback (Zendesk: "must be https unless it's localhost or
/// 127.0.0.1", support.zendesk.com/hc/en-us/articles/4408845965210).
fn redirect_uri(cx: &mut Ctx, p: &Property) {
    let Some(v) = p.values.first() else { return };
    let PropKind::Text(t) = &v.kind else { return };
    let loopback = [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://localhost:",
        "http://localhost/",
        "http://[::1]:",
    ];
    if t.starts_with("https://") || loopback.iter().any(|l| t.starts_with(l)) {
        return;
    }
    cx.err(
        CheckErrorKind::BadPropertyValue {
            key: "redirect_uri".into(),
            expected: "an https URL, or http on 127.0.0.1 or localhost".into(),
            help: "write `redirect_uri \"http://127.0.0.1:8789/callback\"`: `l3map auth login` listens there for the browser's return".into(),
        }
        .at(v.span),
    );
}
