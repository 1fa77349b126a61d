//! Who is looking at the ops console: a person signs in with their
//! `[ops.NAME]` token once, and gets a cookie that names them and when it
//! ends, signed with that token (HMAC-SHA256). The token itself is never in
//! a URL, a page or the cookie. Scripts may send it as a bearer token
//! instead.
//!
//! A write (Retry, Drop) also needs, with a cookie, the CSRF token
//! `/ui/api/whoami` answers (a second MAC of the same session) in the
//! `X-L3map-Csrf` header, a JSON body, and no cross-site `Origin` or
//! `Sec-Fetch-Site`: a page elsewhere can neither read that token nor send
//! that header without a preflight this server never grants. The cookie
//! is `HttpOnly` and `SameSite=Strict` besides.

use crate::runtime::app::{App, OpsUser};
use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "l3map_ops";
/// The CSRF header's name.
pub const CSRF_HEADER: &str = "x-l3map-csrf";
/// How long a sign-in lasts.
pub const LIFETIME_SECS: u64 = 12 * 3600;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub actions: bool,
    /// Signed in by cookie (needs the CSRF token to write), not bearer.
    pub cookie: bool,
    /// The session's CSRF token (cookie sessions).
    pub csrf: String,
}

fn mac(key: &str, parts: &[&str]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    for p in parts {
        m.update(p.as_bytes());
        m.update(b"\x1f");
    }
    hex::encode(m.finalize().into_bytes())
}

fn same(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.ct_eq(&b).into()
}

/// The user whose token this is (every user compared, in constant time).
pub fn by_token<'a>(app: &'a App, token: &str) -> Option<&'a OpsUser> {
    let mut found = None;
    for u in &app.console.users {
        if same(u.token.expose(), token) && found.is_none() {
            found = Some(u);
        }
    }
    found
}

/// The cookie's value for `user` until `expires` (seconds since 1970).
pub fn cookie_value(user: &OpsUser, expires: u64) -> String {
    let e = expires.to_string();
    format!(
        "{}.{e}.{}",
        hex::encode(user.name.as_bytes()),
        mac(user.token.expose(), &["session", &user.name, &e])
    )
}

fn csrf_of(user: &OpsUser, expires: &str) -> String {
    mac(user.token.expose(), &["csrf", &user.name, expires])
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signed-out sessions remembered at most (the oldest go first; a
/// session lasts 12 hours).
const SIGNED_OUT_KEPT: usize = 10_000;

/// Ends the session `value` names in this process: its cookie is refused
/// from now on, whoever holds a copy.
pub fn sign_out(app: &App, headers: &HeaderMap) {
    let now = now_secs();
    let mut out = app
        .console
        .signed_out
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    out.retain(|_, until| *until > now);
    for value in cookies(headers, COOKIE) {
        let mut parts = value.splitn(3, '.');
        let (Some(_), Some(expires), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(until) = expires.parse::<u64>() else {
            continue;
        };
        if out.len() >= SIGNED_OUT_KEPT {
            let oldest = out.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                out.remove(&k);
            }
        }
        out.insert(tag.to_string(), until);
    }
}

/// The session a cookie names, when its MAC holds, it has not ended and
/// it was not signed out here.
fn from_cookie(app: &App, value: &str) -> Option<Viewer> {
    let mut parts = value.splitn(3, '.');
    let (name, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
    if expires.parse::<u64>().ok()? <= now_secs() {
        return None;
    }
    if app
        .console
        .signed_out
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(tag)
    {
        return None;
    }
    let user = app.console.users.iter().find(|u| u.name == name)?;
    let want = mac(user.token.expose(), &["session", &user.name, expires]);
    same(&want, tag).then(|| Viewer {
        name: user.name.clone(),
        actions: user.actions,
        cookie: true,
        csrf: csrf_of(user, expires),
    })
}

/// Every value of the cookie `name` (a sibling host may have set one of
/// its own beside ours: each is tried).
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Who sent a request.
pub enum Seen {
    Viewer(Viewer),
    /// No bearer token, and no valid cookie.
    Nobody,
    /// A bearer token that is nobody's (counted as a failed sign-in).
    WrongToken,
}

/// Who sent this request: a bearer `[ops]` token, else a valid cookie.
pub fn viewer(app: &App, headers: &HeaderMap) -> Seen {
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    if let Some(token) = bearer {
        return match by_token(app, token.trim()) {
            Some(u) => Seen::Viewer(Viewer {
                name: u.name.clone(),
                actions: u.actions,
                cookie: false,
                csrf: String::new(),
            }),
            None => Seen::WrongToken,
        };
    }
    match cookies(headers, COOKIE).find_map(|c| from_cookie(app, c)) {
        Some(v) => Seen::Viewer(v),
        None => Seen::Nobody,
    }
}

/// Whether a request is JSON (`application/json`, with parameters or
/// not) and from this site: what sign-in, sign-out and writes require of
/// a browser.
pub fn same_site_json(headers: &HeaderMap) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("same-origin");
    let origin_ok = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(o), Some(h)) => {
            let (o, h) = (o.to_str().unwrap_or(""), h.to_str().unwrap_or("-"));
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                == Some(h)
        }
        (Some(_), None) => false,
    };
    json && origin_ok && matches!(site, "same-origin" | "none")
}

/// Why a write from this viewer is refused, if it is: no right to act,
/// or (a cookie session) a missing or wrong CSRF token, a body that is not
/// JSON, or a request from another site.
pub fn refuse_write(v: &Viewer, headers: &HeaderMap) -> Option<&'static str> {
    if !v.actions {
        return Some(
            "this ops token may only read; give it `actions = true` in [ops.NAME] to retry or drop",
        );
    }
    if !v.cookie {
        return None;
    }
    let csrf = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| same(c, &v.csrf));
    if !csrf || !same_site_json(headers) {
        return Some("a write needs the session's CSRF token in X-L3map-Csrf, a JSON body, and this site as its origin");
    }
    None
}

/// `Set-Cookie` for a session of `user` (Secure behind an HTTPS proxy).
pub fn set_cookie(user: &OpsUser, https: bool) -> String {
    let expires = now_secs() + LIFETIME_SECS;
    format!(
        "{COOKIE}={}; Path=/ui; Max-Age={LIFETIME_SECS}; HttpOnly; SameSite=Strict{}",
        cookie_value(user, expires),
        if https { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that ends the session in this browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// Failed sign-ins (and unknown bearer tokens) allowed a minute, for the
/// whole process; past them, a failing attempt gets 429 instead of 401.
/// A right token always gets in: tokens are long (at least
/// [`MIN_TOKEN_CHARS`]), so the limit is against noise, and it locks no
/// one out.
pub const FAILURES_A_MINUTE: u32 = 20;

/// The shortest `[ops]` token `l3map run` accepts.
pub const MIN_TOKEN_CHARS: usize = 20;

fn minute() -> u64 {
    now_secs() / 60
}

/// Counts a failed attempt; `true` when the minute's allowance was spent
/// already (answer 429).
pub fn failed(app: &App) -> bool {
    let mut f = app
        .console
        .failures
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let m = minute();
    *f = if f.0 == m {
        (m, f.1.saturating_add(1))
    } else {
        (m, 1)
    };
    // Logged once a minute, and again when the allowance runs out: a
    // guesser must not write the log full.
    if f.1 == 1 {
        tracing::warn!("ops console: a wrong token was refused");
    } else if f.1 == FAILURES_A_MINUTE + 1 {
        tracing::warn!(
            "ops console: more than {FAILURES_A_MINUTE} wrong tokens this minute; wrong ones get 429 until the next minute"
        );
    }
    f.1 > FAILURES_A_MINUTE
}

/// Seconds until the failure allowance is new again.
pub fn retry_after() -> u64 {
    60 - now_secs() % 60
}
