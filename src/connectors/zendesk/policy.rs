//! Zendesk's side of the transport: requests signed with the configured
//! token's header or the OAuth client's access token, which writes may be
//! sent twice, Zendesk's rate headers, the `/oauth/tokens` grant, and
//! errors typed with Zendesk's own description.

use super::super::error::ApiError;
use super::super::limit::parse_retry_after;
use super::super::retry::Replay;
use super::super::secret::Secret;
use super::super::transport::session::Kept;
use super::super::transport::{Answer, Grant, Policy, Rate, Request, Verdict};
use super::config::{sensitive_header, Credentials, ZendeskConfig, SYSTEM};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What a request is signed with: the `Authorization` value, and for an
/// OAuth client the newest refresh token (Zendesk rotates it on every
/// use; the client keeps the newest in memory).
#[derive(Clone)]
pub struct Token {
    pub(super) header: HeaderValue,
    /// The access token itself, for the store (an OAuth client's only).
    access: Option<Secret>,
    refresh: Option<Secret>,
    /// `expires_in` and `refresh_token_expires_in` of the grant's answer
    /// (support.zendesk.com/hc/en-us/articles/9182123625370).
    expires_in: Option<Duration>,
    refresh_expires_in: Option<Duration>,
}

impl Token {
    /// A configured token's fixed header.
    pub(super) fn fixed(header: HeaderValue) -> Token {
        Token {
            header,
            access: None,
            refresh: None,
            expires_in: None,
            refresh_expires_in: None,
        }
    }
}

pub struct ZendeskPolicy {
    pub(super) cfg: Arc<ZendeskConfig>,
}

impl Grant for ZendeskPolicy {
    type Token = Token;

    /// `POST /oauth/tokens`: the refresh-token grant with the newest
    /// refresh token, else client credentials. Zendesk's error code and
    /// description are kept; the client's secret and tokens never reach
    /// the error.
    async fn grant(
        &self,
        http: &reqwest::Client,
        previous: Option<&Token>,
    ) -> Result<Token, ApiError> {
        let Credentials::OAuthClient {
            client_id,
            client_secret,
            scopes,
            refresh_token,
        } = &self.cfg.credentials
        else {
            return Err(ApiError::Protocol {
                system: SYSTEM,
                message: "not an OAuth client".into(),
            });
        };
        let refresh = match previous {
            Some(t) => t.refresh.as_ref(),
            None => refresh_token.as_ref(),
        };
        let mut body = serde_json::json!({
            "grant_type": if refresh.is_some() { "refresh_token" } else { "client_credentials" },
            "client_id": client_id,
        });
        if let Some(secret) = client_secret {
            body["client_secret"] = Value::from(secret.expose());
        }
        if let Some(r) = refresh {
            body["refresh_token"] = Value::from(r.expose());
        }
        if !scopes.is_empty() {
            body["scope"] = Value::from(scopes.join(" "));
        }
        let req = http
            .post(format!("{}/oauth/tokens", self.cfg.base_url))
            .json(&body);
        let answer = super::super::transport::send::exchange(SYSTEM, req, |_| {}).await?;
        if !answer.status.is_success() {
            return Err(ApiError::from_token_endpoint(
                SYSTEM,
                answer.status.as_u16(),
                &answer.body,
            ));
        }
        #[derive(Deserialize)]
        struct Raw {
            access_token: String,
            #[serde(default)]
            refresh_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
            #[serde(default)]
            refresh_token_expires_in: Option<u64>,
        }
        let raw: Raw = serde_json::from_slice(&answer.body).map_err(|_| ApiError::Protocol {
            system: SYSTEM,
            message: "the token endpoint answered without an access token".into(),
        })?;
        let access = Secret::new(raw.access_token);
        Ok(Token {
            header: sensitive_header(&format!("Bearer {}", access.expose()))?,
            access: Some(access),
            refresh: raw.refresh_token.map(Secret::new).or(refresh.cloned()),
            expires_in: raw.expires_in.map(Duration::from_secs),
            refresh_expires_in: raw.refresh_token_expires_in.map(Duration::from_secs),
        })
    }

    fn keep(&self, token: &Token) -> Option<Kept> {
        Some(Kept {
            access: token.access.clone()?,
            refresh: token.refresh.clone(),
            expires_in: token.expires_in,
            refresh_expires_in: token.refresh_expires_in,
            instance_url: None,
        })
    }

    fn adopt(&self, kept: Kept) -> Result<Token, ApiError> {
        Ok(Token {
            header: sensitive_header(&format!("Bearer {}", kept.access.expose()))?,
            access: Some(kept.access),
            refresh: kept.refresh,
            expires_in: kept.expires_in,
            refresh_expires_in: kept.refresh_expires_in,
        })
    }

    /// A standby lineage (docs/RUNTIME.md, "The standby"): the OAuth
    /// Tokens API's Create Token, `POST /api/v2/oauth/tokens` with a
    /// `token` object of the client's resource `id` (an integer, not its
    /// unique identifier) and `scopes`, authenticated by the current
    /// access token
    /// (developer.zendesk.com/api-reference/ticketing/oauth/oauth_tokens/;
    /// "If you already have a valid OAuth access token, you can use the
    /// API to create additional access tokens",
    /// developer.zendesk.com/documentation/authentication/creating-and-using-oauth-tokens-with-the-api).
    /// The client's id and the scopes are read from Show Token
    /// (`GET /api/v2/oauth/tokens/current.json`). The token it answers has
    /// a `refresh_token` "if generated": `None` when it has none. Create
    /// Token is documented "Allowed for Admins": a grant of an agent is
    /// refused (403), and the connection runs without a standby.
    async fn standby(
        &self,
        http: &reqwest::Client,
        token: &Token,
    ) -> Result<Option<Secret>, ApiError> {
        // Client credentials need no standby: a new token is one request
        // away, and nothing rotates.
        if !matches!(self.cfg.credentials, Credentials::OAuthClient { .. })
            || token.refresh.is_none()
        {
            return Ok(None);
        }
        let base = &self.cfg.base_url;
        let call = |req: reqwest::RequestBuilder| async {
            let answer = super::super::transport::send::exchange(
                SYSTEM,
                req.header(AUTHORIZATION, token.header.clone())
                    .timeout(self.cfg.timeout),
                |_| {},
            )
            .await?;
            if !answer.status.is_success() {
                return Err(error_for(answer.status, &answer.headers, &answer.body));
            }
            serde_json::from_slice::<Value>(&answer.body).map_err(|_| ApiError::Protocol {
                system: SYSTEM,
                message: "the OAuth Tokens API answered something other than JSON".into(),
            })
        };
        let current = call(http.get(format!("{base}/api/v2/oauth/tokens/current.json"))).await?;
        let Some(client_id) = current["token"]["client_id"].as_u64() else {
            return Err(ApiError::Protocol {
                system: SYSTEM,
                message: "Show Token answered without the token's client_id".into(),
            });
        };
        let scopes = current["token"]["scopes"].clone();
        let created = call(
            http.post(format!("{base}/api/v2/oauth/tokens.json"))
                .json(&serde_json::json!({"token": {"client_id": client_id, "scopes": scopes}})),
        )
        .await?;
        Ok(created["token"]["refresh_token"]
            .as_str()
            .filter(|r| !r.is_empty())
            .map(Secret::new))
    }

    fn renewed(&self, generation: u64) {
        tracing::debug!(
            target: "l3map::connectors::zendesk",
            generation,
            "zendesk access token renewed"
        );
    }
}

impl Policy for ZendeskPolicy {
    const SYSTEM: super::super::error::System = SYSTEM;

    fn build(
        &self,
        http: &reqwest::Client,
        token: &Token,
        req: &Request<'_>,
    ) -> reqwest::RequestBuilder {
        let b = req
            .on(http, &self.cfg.base_url)
            .header(AUTHORIZATION, token.header.clone());
        match req.idempotency_key {
            Some(k) => b.header("Idempotency-Key", k),
            None => b,
        }
    }

    /// Reads, field writes and creates with an idempotency key are
    /// [`Replay::Safe`]; anything with a comment is not (a second send is
    /// a second comment).
    fn replay(&self, req: &Request<'_>) -> Replay {
        let adds_comment = req
            .body
            .and_then(|b| b.get("ticket"))
            .is_some_and(|t| t.get("comment").is_some());
        match req.method {
            Method::GET => Replay::Safe,
            Method::POST if req.idempotency_key.is_none() => Replay::IfUnapplied,
            _ if adds_comment && req.idempotency_key.is_none() => Replay::IfUnapplied,
            _ => Replay::Safe,
        }
    }

    /// Zendesk's rate headers
    /// (developer.zendesk.com/api-reference/introduction/rate-limits):
    /// `X-Rate-Limit` / `ratelimit-limit` is the account's limit a minute,
    /// `X-Rate-Limit-Remaining` / `ratelimit-remaining` what is left of
    /// this minute, `ratelimit-reset` the seconds until it reopens,
    /// `Retry-After` on a 429.
    fn rate(&self, headers: &HeaderMap) -> Rate {
        let num = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        Rate {
            limit: num("x-rate-limit").or_else(|| num("ratelimit-limit")),
            remaining: num("x-rate-limit-remaining").or_else(|| num("ratelimit-remaining")),
            window_left: num("ratelimit-reset").map(Duration::from_secs),
            retry_after: parse_retry_after(
                headers.get("retry-after").and_then(|v| v.to_str().ok()),
            ),
        }
    }

    /// A 401 refuses the request before anything is done: an OAuth
    /// client's token is renewed and the request sent again.
    fn classify(&self, answer: &Answer) -> Verdict {
        if answer.status == StatusCode::UNAUTHORIZED {
            return Verdict::Expired;
        }
        Verdict::Failed(error_for(answer.status, &answer.headers, &answer.body))
    }

    fn still_expired(&self, answer: &Answer) -> ApiError {
        error_for(answer.status, &answer.headers, &answer.body)
    }
}

/// The typed error for a non-2xx answer, with Zendesk's own message.
pub(super) fn error_for(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = match details(&json) {
        Some(d) => format!("{}: {d}", describe(&json, status)),
        None => describe(&json, status),
    };
    let retry_after = parse_retry_after(headers.get("retry-after").and_then(|v| v.to_str().ok()));
    ApiError::from_status(
        SYSTEM,
        status.as_u16(),
        message,
        retry_after,
        blamed_fields(&json),
    )
}

/// Zendesk says it in `description`, sometimes in `message`, or only in
/// `error` (a code, or an object with `title`/`message`).
pub(super) fn describe(json: &Value, status: StatusCode) -> String {
    let text = |v: &Value| v.as_str().map(String::from);
    let error = json.get("error");
    json.get("description")
        .and_then(text)
        .or_else(|| json.get("message").and_then(text))
        .or_else(|| error.and_then(|e| e.get("message")).and_then(text))
        .or_else(|| error.and_then(|e| e.get("title")).and_then(text))
        .or_else(|| error.and_then(text))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string())
}

/// What `details` says, where Zendesk puts the actual reason of a
/// `RecordInvalid` (`{"base": [{"description": "Status: closed prevents
/// ticket update"}]}`): each problem's description, joined; cut at 500
/// characters, as it ends up in a dead letter.
fn details(json: &Value) -> Option<String> {
    let said: Vec<&str> = json
        .get("details")?
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|p| p.get("description").and_then(Value::as_str))
        .collect();
    (!said.is_empty()).then(|| said.join("; ").chars().take(500).collect())
}

/// The fields `details` blames: attribute names, and custom fields by their
/// `field_key` (their id) when Zendesk files them under `base`.
fn blamed_fields(json: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(details) = json.get("details").and_then(Value::as_object) else {
        return out;
    };
    for (attr, problems) in details {
        let keys: Vec<String> = problems
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| match p.get("field_key") {
                        Some(Value::Number(n)) => Some(n.to_string()),
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() && attr != "base" {
            out.push(attr.clone());
        }
        out.extend(keys);
    }
    out.dedup();
    out
}
