//! Who is asking: the bearer token is checked before anything else, and
//! before a byte of a body is read.

use super::oauth::origin;
use super::turn::SOURCE;
use crate::connectors::Secret;
use crate::runtime::app::{error, App};
use crate::runtime::intake::{with_body, Gate};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The agent a request was authenticated as, by [`agent_gate`].
#[derive(Debug, Clone)]
pub(crate) struct AgentName(pub String);

/// The bearer token before anything else: no body is read, and no byte of
/// the budget spent, for a request without a valid one. A `POST`'s body is
/// then read whole within the server's bounds ([`crate::runtime::intake`]);
/// any other method's body is not read at all.
pub(super) async fn agent_gate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let agent = match authenticate(&gate.app, req.headers()) {
        Ok(a) => a,
        Err(r) => {
            let mut resp = r.into_response();
            if req.uri().path() == "/mcp" {
                // The MCP authorization spec: the challenge names the
                // protected resource's metadata (RFC 9728, section 5.1).
                let challenge = format!(
                    "{}, resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
                    resp.headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("Bearer realm=\"l3map\""),
                    origin(req.headers())
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            return resp;
        }
    };
    req.extensions_mut().insert(AgentName(agent));
    if req.method() != Method::POST {
        return next.run(req.map(|_| Body::empty())).await;
    }
    match with_body(&gate, req, next).await {
        Ok(resp) => resp,
        Err(r) => {
            gate.app
                .engine
                .metrics
                .event_rejected(SOURCE, r.metric_reason());
            r.response
        }
    }
}

/// `GET /.well-known/oauth-protected-resource[/mcp]` (RFC 9728): the MCP
/// endpoint as a protected resource that takes bearer tokens in the
/// `Authorization` header: an agent's configured token, or one l3map
/// issued to its OAuth client (`super::oauth`), when this l3map is named
/// as the authorization server.
pub(super) async fn protected_resource(
    State(app): State<std::sync::Arc<App>>,
    headers: HeaderMap,
) -> Response {
    let base = origin(&headers);
    let mut meta = serde_json::json!({
        "resource": format!("{base}/mcp"),
        "bearer_methods_supported": ["header"],
        "resource_name": "l3map",
    });
    // With OAuth clients configured, this l3map issues their tokens.
    if !app.agent_policy.oauth.is_empty() {
        meta["authorization_servers"] = serde_json::json!([base]);
    }
    axum::Json(meta).into_response()
}

/// Why a request's credentials were refused: the `error` of the
/// `WWW-Authenticate` challenge, if any, and the message.
#[derive(Debug)]
struct Unauthorized(Option<&'static str>, &'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let challenge = match self.0 {
            Some(e) => format!("Bearer realm=\"l3map\", error=\"{e}\""),
            None => "Bearer realm=\"l3map\"".to_string(),
        };
        let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", self.1);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

/// The agent a request comes from, by its bearer token. Tokens are
/// compared as SHA-256 digests, in constant time ([`digests_equal`]), and
/// against every configured agent, so the time an answer takes says
/// nothing about how much of a token was right.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<String, Unauthorized> {
    let found = agent_for(&app.agents, headers).or_else(|e| {
        // Not a configured token: an access token l3map issued?
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match token.and_then(|t| super::oauth::agent_of(app, t, headers)) {
            Some(agent) => Ok(agent),
            None => Err(e),
        }
    });
    if found.is_err() {
        app.engine.metrics.event_rejected(SOURCE, "unauthorized");
    }
    found
}

fn agent_for(agents: &[(String, Secret)], headers: &HeaderMap) -> Result<String, Unauthorized> {
    if agents.is_empty() {
        return Err(Unauthorized(
            None,
            "no agents are configured: add an [agents.NAME] table with token_env = \"VAR\" \
             (or token_file) to l3map.toml",
        ));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Unauthorized(
            None,
            "missing credentials: send Authorization: Bearer <token>",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(Unauthorized(
            Some("invalid_request"),
            "the Authorization header is not `Bearer <token>`",
        ));
    };
    let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found: Option<&str> = None;
    for (name, secret) in agents {
        let known: [u8; 32] = Sha256::digest(secret.expose().as_bytes()).into();
        let same = digests_equal(&given, &known);
        // The first match wins, but every agent is still compared.
        if same && found.is_none() {
            found = Some(name);
        }
    }
    found.map(str::to_string).ok_or(Unauthorized(
        Some("invalid_token"),
        "the bearer token is not valid",
    ))
}

/// Equality that reads all 32 bytes whatever they hold: `subtle`'s
/// constant-time compare, which the optimiser cannot turn into an early
/// exit. Digests of equal length, so the length says nothing either.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a: [u8; 32] = Sha256::digest(b"l3map-demo-agent-token").into();
        let b: [u8; 32] = Sha256::digest(b"l3map-demo-agent-tokem").into();
        assert!(digests_equal(&a, &a));
        assert!(!digests_equal(&a, &b));
        let mut c = a;
        c[31] ^= 1;
        assert!(!digests_equal(&a, &c));
    }
}
