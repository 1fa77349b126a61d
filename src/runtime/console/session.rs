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

/// The session a cookie names, when its MAC holds and it has not ended.
fn from_cookie(app: &App, value: &str) -> Option<Viewer> {
    let mut parts = value.splitn(3, '.');
    let (name, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
    if expires.parse::<u64>().ok()? <= now_secs() {
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

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Who sent this request: a bearer `[ops]` token, else a valid cookie.
pub fn viewer(app: &App, headers: &HeaderMap) -> Option<Viewer> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        return by_token(app, token.trim()).map(|u| Viewer {
            name: u.name.clone(),
            actions: u.actions,
            cookie: false,
            csrf: String::new(),
        });
    }
    from_cookie(app, cookie(headers, COOKIE)?)
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
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
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
    let csrf = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| same(c, &v.csrf));
    if !json || !csrf || !origin_ok || !matches!(site, "same-origin" | "none") {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Secret;

    fn user(actions: bool) -> OpsUser {
        OpsUser {
            name: "lead.one".into(),
            token: Secret::new("ops-token-0123456789"),
            actions,
        }
    }

    #[test]
    fn a_cookie_holds_no_token_and_a_changed_name_or_expiry_breaks_it() {
        let u = user(true);
        let v = cookie_value(&u, now_secs() + 60);
        assert!(!v.contains("ops-token"), "{v}");
        let mut parts: Vec<&str> = v.splitn(3, '.').collect();
        let other = hex::encode("admin");
        parts[0] = &other;
        let forged = parts.join(".");
        let tag = mac(u.token.expose(), &["session", &u.name, "1"]);
        assert_ne!(tag, forged);
        assert_ne!(
            mac(u.token.expose(), &["session", &u.name, "1"]),
            mac(u.token.expose(), &["session", &u.name, "2"])
        );
    }
}
