//! `l3map auth login`: the authorization-code grant with PKCE for a
//! connection that keeps its grant in the store (Zendesk `auth
//! oauth_code`, Salesforce `flow web_server` or `flow refresh_token`).
//!
//! The steps: a PKCE verifier and a random `state`; a listener on the
//! loopback at the connection's `redirect_uri` (or a free port); the
//! authorize URL, printed for a person to open (no browser is launched);
//! one redirect back, whose `state` must match; the code exchanged with
//! the verifier at the token endpoint; the grant sealed and stored as a
//! new generation that replaces whatever the store held (a `needs_login`
//! or `undecryptable` row included), so a running `l3map run` adopts it
//! on its next look at the store.
//!
//! Vendor facts: Zendesk's authorization page is
//! `/oauth/authorizations/new` with `response_type=code`, `client_id`,
//! `redirect_uri`, `scope`, `state`, `code_challenge` and
//! `code_challenge_method=S256`, and the code is exchanged at
//! `/oauth/tokens` with `code_verifier`
//! (developer.zendesk.com/documentation/api-basics/authentication/oauth-pkce,
//! developer.zendesk.com/api-reference/ticketing/oauth/grant_type_tokens/);
//! Salesforce's are `/services/oauth2/authorize` and
//! `/services/oauth2/token`
//! (help.salesforce.com … remoteaccess_oauth_web_server_flow.htm).

use crate::connectors::pkce::{random_token, Pkce};
use crate::connectors::Secret;
use crate::ir::Connection;
use crate::model::Kind;
use crate::runtime::config::ConnectionOverride;
use crate::runtime::seal::{Grant, Vault};
use crate::runtime::store::{now_ms, Store};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Why a login did not store a grant: one line each, never a token.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("connection `{0}`: {1}")]
    Setup(String, String),
    #[error("cannot listen on {0} for the browser's return: {1}")]
    Listen(String, String),
    #[error("no sign-in came back to {0} within {1} s; run `l3map auth login` again and open the URL it prints")]
    Timeout(String, u64),
    #[error("the redirect's `state` does not match this login's: the redirect did not come from this login (a stale tab, or a forged link); nothing was stored")]
    StateMismatch,
    #[error("the sign-in was refused at the authorization page: {0}")]
    Denied(String),
    #[error("the token endpoint refused the code: {0}")]
    Exchange(String),
    #[error("cannot store the grant: {0}")]
    Store(String),
}

/// Where and how a connection signs in.
pub struct Target {
    pub connection: String,
    pub kind: Kind,
    /// The flow the grant is stored under (`zendesk_code`, ...).
    pub flow: &'static str,
    authorize: String,
    token: String,
    client_id: String,
    client_secret: Option<Secret>,
    redirect: reqwest::Url,
    scopes: Vec<String>,
}

/// The connection's sign-in, from its block and the configuration's
/// overrides; `port` replaces the redirect URI's.
pub fn target(
    c: &Connection,
    o: &ConnectionOverride,
    secrets: &std::collections::BTreeMap<String, Secret>,
    port: Option<u16>,
) -> Result<Target, LoginError> {
    let setup = |m: String| LoginError::Setup(c.name.clone(), m);
    let flow = crate::runtime::clients::grant_flow(c).ok_or_else(|| {
        setup(match c.kind {
            Kind::Salesforce => "is not a `flow web_server` connection: only a connection that keeps an OAuth grant in the store signs in with `l3map auth login`".into(),
            _ => "is not an `auth oauth_code` connection: only a connection that keeps an OAuth grant in the store signs in with `l3map auth login`".into(),
        })
    })?;
    let base = crate::runtime::clients::endpoint(c, o)
        .ok_or_else(|| setup("has no instance to sign in to".into()))?;
    let base = base.trim_end_matches('/');
    let (authorize, token) = match c.kind {
        Kind::Salesforce => (
            format!("{base}/services/oauth2/authorize"),
            format!("{base}/services/oauth2/token"),
        ),
        _ => (
            format!("{base}/oauth/authorizations/new"),
            format!("{base}/oauth/tokens"),
        ),
    };
    let client_id = secrets
        .get("client_id")
        .map(|s| s.expose().to_string())
        .or_else(|| c.settings.get("client_id").cloned())
        .ok_or_else(|| setup("has no `client_id`; add it to the connection block".into()))?;
    let configured = c
        .settings
        .get("redirect_uri")
        .map(String::as_str)
        .unwrap_or("http://127.0.0.1:0/callback");
    let mut redirect = reqwest::Url::parse(configured)
        .map_err(|_| setup(format!("its redirect_uri {configured:?} is not a URL")))?;
    let loopback = matches!(redirect.host_str(), Some("127.0.0.1" | "localhost"));
    if redirect.scheme() != "http" || !loopback {
        return Err(setup(format!(
            "its redirect_uri {configured:?} is not http on 127.0.0.1 or localhost; `l3map auth login` receives the browser on this machine"
        )));
    }
    if let Some(p) = port {
        let _ = redirect.set_port(Some(p));
    }
    Ok(Target {
        connection: c.name.clone(),
        kind: c.kind,
        flow,
        authorize,
        token,
        client_id,
        client_secret: secrets.get("client_secret").cloned(),
        redirect,
        scopes: c.scopes.clone(),
    })
}

/// What the redirect brought back.
type Callback = HashMap<String, String>;

struct Listening {
    path: String,
    tx: Mutex<Option<oneshot::Sender<Callback>>>,
    state: String,
}

/// A login waiting for its redirect: print [`Pending::url`], then
/// [`Pending::finish`].
pub struct Pending {
    pub url: String,
    target: Target,
    redirect_uri: String,
    pkce: Pkce,
    state: String,
    rx: oneshot::Receiver<Callback>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Binds the loopback listener and builds the authorize URL.
pub async fn begin(mut target: Target) -> Result<Pending, LoginError> {
    let port = target.redirect.port().unwrap_or(80);
    let addr = format!("127.0.0.1:{port}");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| LoginError::Listen(addr.clone(), e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| LoginError::Listen(addr, e.to_string()))?;
    let _ = target.redirect.set_port(Some(bound.port()));
    let redirect_uri = target.redirect.to_string();
    let pkce = Pkce::new().map_err(|e| LoginError::Setup(target.connection.clone(), e.into()))?;
    let state =
        random_token(24).map_err(|e| LoginError::Setup(target.connection.clone(), e.into()))?;
    let mut url = reqwest::Url::parse(&target.authorize)
        .map_err(|_| LoginError::Setup(target.connection.clone(), "bad instance URL".into()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &target.client_id)
            .append_pair("redirect_uri", &redirect_uri);
        if !target.scopes.is_empty() {
            q.append_pair("scope", &target.scopes.join(" "));
        }
        q.append_pair("state", &state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
    }
    let (tx, rx) = oneshot::channel();
    let listening = Arc::new(Listening {
        path: target.redirect.path().to_string(),
        tx: Mutex::new(Some(tx)),
        state: state.clone(),
    });
    let app = axum::Router::new().fallback(callback).with_state(listening);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Pending {
        url: url.to_string(),
        target,
        redirect_uri,
        pkce,
        state,
        rx,
        server,
    })
}

/// The browser's return: the first request on the redirect path is taken
/// (anything else, a favicon, is 404); the page says what happened.
async fn callback(State(l): State<Arc<Listening>>, uri: Uri, RawQuery(q): RawQuery) -> Response {
    if uri.path() != l.path {
        return (StatusCode::NOT_FOUND, "not the l3map sign-in path").into_response();
    }
    let params: Callback = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let page = if params.get("state") != Some(&l.state) {
        "The sign-in did not match this login (its state differs). Nothing was stored; return to the terminal."
    } else if params.contains_key("error") {
        "The sign-in was refused. Return to the terminal for the reason."
    } else {
        "l3map received the sign-in. You can close this tab and return to the terminal."
    };
    let Some(tx) = l.tx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return (StatusCode::GONE, "this login is already complete").into_response();
    };
    let _ = tx.send(params);
    Html(format!(
        "<!doctype html><meta charset=\"utf-8\"><title>l3map auth login</title><p>{page}</p>"
    ))
    .into_response()
}

/// What the token endpoint answered, as the store keeps it.
pub struct Obtained {
    pub grant: Grant,
    pub expires_in: Option<Duration>,
}

impl Pending {
    /// Waits (at most `within`) for the redirect, checks it, and exchanges
    /// the code.
    pub async fn finish(mut self, within: Duration) -> Result<Obtained, LoginError> {
        let params = tokio::time::timeout(within, &mut self.rx)
            .await
            .map_err(|_| LoginError::Timeout(self.redirect_uri.clone(), within.as_secs()))?
            .map_err(|_| LoginError::Timeout(self.redirect_uri.clone(), within.as_secs()))?;
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        if get("state") != self.state {
            return Err(LoginError::StateMismatch);
        }
        if !get("error").is_empty() {
            return Err(LoginError::Denied(describe(
                get("error"),
                get("error_description"),
            )));
        }
        let code = get("code");
        if code.is_empty() {
            return Err(LoginError::Denied("the redirect carried no code".into()));
        }
        self.exchange(code).await
    }

    async fn exchange(&self, code: &str) -> Result<Obtained, LoginError> {
        let t = &self.target;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &t.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", self.pkce.verifier.expose()),
        ];
        if let Some(s) = &t.client_secret {
            form.push(("client_secret", s.expose()));
        }
        let scope = t.scopes.join(" ");
        if t.kind != Kind::Salesforce && !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| LoginError::Exchange(e.to_string()))?;
        let req = match t.kind {
            // Salesforce takes a form; Zendesk documents JSON.
            Kind::Salesforce => http.post(&t.token).form(&form),
            _ => {
                let body: serde_json::Map<String, serde_json::Value> = form
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                    .collect();
                http.post(&t.token).json(&body)
            }
        };
        // The error names the host at most: reqwest's Display of a
        // connection error carries the URL, which holds no secret here.
        let resp = req
            .send()
            .await
            .map_err(|e| LoginError::Exchange(format!("{} did not answer: {e}", t.token)))?;
        let status = resp.status();
        let system = match t.kind {
            Kind::Salesforce => crate::connectors::System::Salesforce,
            _ => crate::connectors::System::Zendesk,
        };
        // A token answer is a few hundred bytes.
        let bytes = crate::connectors::body::read_capped(system, resp, 64 * 1024)
            .await
            .map_err(|e| LoginError::Exchange(e.to_string()))?;
        let body: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(String::from);
        if !status.is_success() {
            let error = text("error").unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            let mut line = describe(&error, &text("error_description").unwrap_or_default());
            if error == "invalid_scope" {
                line.push_str(
                    "; the connection's `scopes` ask for more than the OAuth client may have",
                );
            }
            return Err(LoginError::Exchange(line));
        }
        let access = text("access_token")
            .ok_or_else(|| LoginError::Exchange("the answer has no access_token".into()))?;
        let refresh = text("refresh_token").ok_or_else(|| {
            LoginError::Exchange(
                "the answer has no refresh_token (Zendesk: the client must have refresh tokens on; Salesforce: the app's scopes must include refresh_token)".into(),
            )
        })?;
        let secs = |k: &str| {
            body.get(k)
                .and_then(|v| v.as_u64())
                .map(Duration::from_secs)
        };
        let now = now_ms();
        let at = |d: Option<Duration>| d.map(|d| now.saturating_add(d.as_millis() as i64));
        let expires_in = secs("expires_in");
        let instance_url = match t.kind {
            Kind::Salesforce => Some(crate::connectors::salesforce::kept_instance_url(
                &text("instance_url")
                    .ok_or_else(|| LoginError::Exchange("the answer has no instance_url".into()))?,
                text("id").as_deref(),
            )),
            _ => None,
        };
        Ok(Obtained {
            grant: Grant {
                access: Secret::new(access),
                refresh: Some(Secret::new(refresh)),
                access_expires_ms: at(expires_in),
                refresh_expires_ms: at(secs("refresh_token_expires_in")),
                instance_url,
            },
            expires_in,
        })
    }
}

fn describe(error: &str, description: &str) -> String {
    if description.is_empty() {
        error.to_string()
    } else {
        format!("{error} ({description})")
    }
}

/// Stores `grant` as the connection's next generation, whatever the row
/// held before; the generation stored.
pub fn save(
    store: &Store,
    vault: &Vault,
    connection: &str,
    flow: &str,
    grant: &Grant,
) -> Result<i64, LoginError> {
    let fail = |e: String| LoginError::Store(e);
    // A running `l3map run` may refresh in between: read again and retry.
    for _ in 0..5 {
        let expected = store
            .load_credential(connection)
            .map_err(|e| fail(e.to_string()))?
            .map(|r| r.sealed.generation);
        if vault
            .commit(connection, flow, expected, grant)
            .map_err(|e| fail(e.to_string()))?
        {
            return Ok(expected.unwrap_or(0) + 1);
        }
    }
    Err(fail(
        "another process kept storing a newer grant; try again".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::program_of;
    use std::collections::BTreeMap;

    fn desk(redirect: &str) -> Connection {
        let text = format!(
            "connection desk: zendesk {{\n  subdomain \"acme\"\n  auth oauth_code\n  client_id \"app\"\n  redirect_uri \"{redirect}\"\n  scopes read, write\n}}\n"
        );
        program_of(&text).connections.remove(0)
    }

    #[test]
    fn the_redirect_uri_is_the_loopback_listener() {
        let none = BTreeMap::new();
        let o = ConnectionOverride::default();
        let t = target(&desk("http://127.0.0.1:8789/callback"), &o, &none, None).unwrap();
        assert_eq!(t.redirect.as_str(), "http://127.0.0.1:8789/callback");
        assert_eq!(
            t.authorize,
            "https://acme.zendesk.com/oauth/authorizations/new"
        );
        assert_eq!(t.scopes, ["read", "write"]);
        let t = target(&desk("http://localhost:8789/cb"), &o, &none, Some(0)).unwrap();
        assert_eq!(t.redirect.port(), Some(0));
        // https is fine for `check`, but login cannot receive it here.
        let Err(e) = target(&desk("https://example.com/cb"), &o, &none, None) else {
            panic!("an https redirect_uri is not this machine's");
        };
        assert!(e.to_string().contains("127.0.0.1 or localhost"), "{e}");
    }

    #[test]
    fn only_connections_that_keep_a_grant_log_in() {
        let p = program_of(
            "connection desk: zendesk {\n  subdomain \"acme\"\n  token env(\"ZD\")\n  scopes read\n}\n",
        );
        let Err(e) = target(
            &p.connections[0],
            &ConnectionOverride::default(),
            &BTreeMap::new(),
            None,
        ) else {
            panic!("a fixed token does not log in");
        };
        assert!(e.to_string().contains("auth oauth_code"), "{e}");
    }
}
