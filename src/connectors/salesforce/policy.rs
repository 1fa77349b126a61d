//! Salesforce's side of the transport: requests signed with the session's
//! bearer token at the instance its sign-in named, which writes may be
//! sent twice, the org's `Sforce-Limit-Info` usage, the OAuth 2.0 token
//! grant (refresh token or JWT-bearer assertion), and errors typed by
//! Salesforce's `errorCode`.

use super::super::error::{ApiError, System};
use super::super::limit::parse_retry_after;
use super::super::retry::Replay;
use super::super::secret::Secret;
use super::super::transport::session::Kept;
use super::super::transport::{send, Answer, Grant, Policy, Rate, Request, Verdict};
use super::jwt_bearer::{self, Signer};
use super::types::ApiUsage;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::sync::Mutex;
use std::time::Duration;

pub(super) const SF: System = System::Salesforce;

/// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_calloptions.htm
pub(super) const CALL_OPTIONS_HEADER: &str = "Sforce-Call-Options";

/// `client=l3map`: what `Sforce-Call-Options` carries on every request.
pub(super) fn call_options() -> String {
    format!("client={}", super::CALL_OPTIONS_CLIENT)
}

pub(super) fn protocol(message: impl Into<String>) -> ApiError {
    ApiError::Protocol {
        system: SF,
        message: message.into(),
    }
}

/// The session's access token, the instance it is good for, the org it
/// signed in to (from the identity URL the grant answers with), and the
/// newest refresh token (with rotation on, every refresh answers a new
/// one and the old one is dead:
/// help.salesforce.com/apex/HTViewHelpDoc?id=xcloud.remoteaccess_oauth_refresh_token_flow_ca.htm).
#[derive(Clone)]
pub struct Token {
    pub(super) access: Secret,
    pub(super) instance_url: String,
    pub(super) org_id: Option<String>,
    pub(super) refresh: Option<Secret>,
}

/// `cfg.auth`, ready to use: the JWT-bearer key is parsed once. The
/// refresh-token sign-in's token is a seed when the grant is kept in a
/// store (`None`: only `l3map auth login` can give one); a public client
/// has no secret.
pub(super) enum SignIn {
    RefreshToken {
        client_secret: Option<Secret>,
        refresh_token: Option<Secret>,
    },
    Jwt(Signer),
}

/// How the instance URL and the org id ride in [`Kept::instance_url`]
/// (one field of the sealed grant): `URL ORG`. A space is in no URL.
fn pack(instance_url: &str, org_id: Option<&str>) -> String {
    match org_id {
        Some(org) => format!("{instance_url} {org}"),
        None => instance_url.to_string(),
    }
}

/// What a kept grant holds for the instance: the instance URL and the org
/// of the identity URL (`l3map auth login` stores its code exchange's
/// answer the way the session keeps a refresh's).
pub fn kept_instance_url(instance_url: &str, identity_url: Option<&str>) -> String {
    let org = identity_url.and_then(org_of_identity);
    pack(instance_url.trim_end_matches('/'), org.as_deref())
}

fn unpack(kept: &str) -> (String, Option<String>) {
    match kept.split_once(' ') {
        Some((url, org)) => (url.to_string(), Some(org.to_string())),
        None => (kept.to_string(), None),
    }
}

pub struct SalesforcePolicy {
    pub(super) login_url: String,
    pub(super) client_id: String,
    pub(super) sign_in: SignIn,
    pub(super) query_batch_size: Option<u32>,
    /// The org's usage as of the last answer.
    pub(super) usage: Mutex<Option<ApiUsage>>,
}

#[derive(Deserialize)]
struct RawGrant {
    access_token: String,
    instance_url: String,
    /// The identity URL, `https://login.salesforce.com/id/<org id>/<user id>`.
    #[serde(default)]
    id: Option<String>,
    /// After a code exchange, and after a refresh when the app rotates
    /// refresh tokens.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The org id in an identity URL (`…/id/00D…/005…`): the Pub/Sub API's
/// `tenantid` header.
pub(super) fn org_of_identity(url: &str) -> Option<String> {
    let (_, rest) = url.rsplit_once("/id/")?;
    let org = rest.split('/').next()?;
    (!org.is_empty()).then(|| org.to_string())
}

impl Grant for SalesforcePolicy {
    type Token = Token;

    /// Signs in: the refresh-token grant, or (with a JWT-bearer key) a new
    /// assertion, built per grant since it expires in minutes.
    async fn grant(
        &self,
        http: &reqwest::Client,
        previous: Option<&Token>,
    ) -> Result<Token, ApiError> {
        let url = format!(
            "{}/services/oauth2/token",
            self.login_url.trim_end_matches('/')
        );
        let assertion;
        // The newest refresh token: the session's (rotated), else the
        // configured seed.
        let mut used = None;
        let form: Vec<(&str, &str)> = match &self.sign_in {
            SignIn::Jwt(signer) => {
                assertion = signer.assertion(SF)?;
                vec![
                    ("grant_type", jwt_bearer::GRANT_TYPE),
                    ("assertion", assertion.expose()),
                ]
            }
            SignIn::RefreshToken {
                client_secret,
                refresh_token,
            } => {
                let Some(refresh) = previous
                    .and_then(|t| t.refresh.as_ref())
                    .or(refresh_token.as_ref())
                else {
                    return Err(ApiError::GrantRevoked {
                        system: SF,
                        message: "no grant stored yet; run `l3map auth login` for this connection"
                            .into(),
                    });
                };
                used = Some(refresh.clone());
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", self.client_id.as_str()),
                    ("refresh_token", refresh.expose()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.expose()));
                }
                form
            }
        };
        let answer = send::exchange(SF, http.post(url).form(&form), |_| {}).await?;
        if !answer.status.is_success() {
            let e = ApiError::from_token_endpoint(SF, answer.status.as_u16(), &answer.body);
            // A refresh token Salesforce refuses (`invalid_grant`: revoked,
            // expired, or rotated out) needs a login, as on Zendesk; for a
            // JWT assertion the same word is a configuration error.
            return Err(match (&self.sign_in, e) {
                (SignIn::RefreshToken { .. }, ApiError::Auth { message, .. })
                    if message.starts_with("invalid_grant") =>
                {
                    ApiError::GrantRevoked {
                        system: SF,
                        message,
                    }
                }
                (_, e) => e,
            });
        }
        let raw: RawGrant = serde_json::from_slice(&answer.body)
            .map_err(|_| protocol("the token endpoint answered without a token"))?;
        Ok(Token {
            access: Secret::new(raw.access_token),
            instance_url: raw.instance_url.trim_end_matches('/').to_string(),
            org_id: raw.id.as_deref().and_then(org_of_identity),
            // A rotated one replaces the one used; without rotation the
            // answer has none and the one used stays good.
            refresh: raw.refresh_token.map(Secret::new).or(used),
        })
    }

    /// Kept when the sign-in has a refresh token (the JWT bearer flow
    /// mints a fresh assertion each time and keeps nothing). Salesforce
    /// answers no `expires_in`: the session timeout of the app governs,
    /// and the token is renewed on its 401.
    fn keep(&self, token: &Token) -> Option<Kept> {
        Some(Kept {
            access: token.access.clone(),
            refresh: Some(token.refresh.clone()?),
            expires_in: None,
            refresh_expires_in: None,
            instance_url: Some(pack(&token.instance_url, token.org_id.as_deref())),
        })
    }

    fn adopt(&self, kept: Kept) -> Result<Token, ApiError> {
        let (instance_url, org_id) = unpack(
            kept.instance_url
                .as_deref()
                .ok_or_else(|| protocol("the stored grant has no instance URL"))?,
        );
        Ok(Token {
            access: kept.access,
            instance_url,
            org_id,
            refresh: kept.refresh,
        })
    }

    fn renewed(&self, generation: u64) {
        tracing::debug!(
            target: "l3map::connectors::salesforce",
            generation,
            "salesforce session refreshed"
        );
    }
}

impl Policy for SalesforcePolicy {
    const SYSTEM: System = SF;

    fn build(
        &self,
        http: &reqwest::Client,
        token: &Token,
        req: &Request<'_>,
    ) -> reqwest::RequestBuilder {
        // Every call names l3map as its client, so Salesforce stamps it in
        // the `changeOrigin` of the change events it causes and the CDC
        // stream can recognise them (runtime::cdc).
        let b = req
            .on(http, &token.instance_url)
            .bearer_auth(token.access.expose())
            .header(CALL_OPTIONS_HEADER, call_options());
        match self.query_batch_size {
            Some(n) => b.header("Sforce-Query-Options", format!("batchSize={n}")),
            None => b,
        }
    }

    /// A POST creates a record (or a CaseComment): a second send is a
    /// second record. PATCH sets fields and lands the same every time.
    fn replay(&self, req: &Request<'_>) -> Replay {
        if req.method == Method::POST {
            Replay::IfUnapplied
        } else {
            Replay::Safe
        }
    }

    /// Records the org's usage for `SalesforceClient::api_usage`; nothing
    /// here paces the token. At zero the org answers
    /// `REQUEST_LIMIT_EXCEEDED` (TotalRequests), which fails fast as
    /// [`ApiError::QuotaExhausted`]: the rolling 24-hour quota is not
    /// something a pause of minutes would fix.
    fn rate(&self, headers: &HeaderMap) -> Rate {
        if let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiUsage::parse)
        {
            *self.usage.lock().unwrap_or_else(|e| e.into_inner()) = Some(usage);
        }
        Rate::default()
    }

    fn classify(&self, answer: &Answer) -> Verdict {
        let retry_after = parse_retry_after(
            answer
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        );
        classify(answer.status, &answer.body, retry_after)
    }

    fn still_expired(&self, _: &Answer) -> ApiError {
        ApiError::Auth {
            system: SF,
            status: 401,
            message: "INVALID_SESSION_ID: Session expired or invalid (after a refresh)".into(),
        }
    }
}

/// Salesforce's error body: `[{"message", "errorCode", "fields"}]`.
#[derive(Deserialize)]
struct SfErrorBody {
    #[serde(default)]
    message: String,
    #[serde(rename = "errorCode", default)]
    error_code: String,
    #[serde(default)]
    fields: Vec<String>,
}

/// Types an error answer by status and Salesforce's `errorCode`.
pub(super) fn classify(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> Verdict {
    let errors: Vec<SfErrorBody> = serde_json::from_slice(body).unwrap_or_default();
    let code = errors
        .first()
        .map(|e| e.error_code.as_str())
        .unwrap_or_default();
    let message = if errors.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_string()
    } else {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.error_code, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let fields: Vec<String> = errors.iter().flat_map(|e| e.fields.clone()).collect();
    let s = status.as_u16();
    Verdict::Failed(match s {
        401 if code == "INVALID_SESSION_ID" || errors.is_empty() => return Verdict::Expired,
        // The rolling 24-hour request quota does not reopen within any
        // retry budget; the other REQUEST_LIMIT_EXCEEDED (concurrent
        // long-running requests) does.
        403 if code == "REQUEST_LIMIT_EXCEEDED" && message.contains("TotalRequests") => {
            ApiError::QuotaExhausted {
                system: SF,
                message,
            }
        }
        403 if code == "REQUEST_LIMIT_EXCEEDED" => ApiError::RateLimited {
            system: SF,
            retry_after,
            message,
        },
        _ => ApiError::from_status(SF, s, message, retry_after, fields),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_id_rides_with_the_instance_url_in_a_kept_grant() {
        let packed = pack("https://acme.my.salesforce.com", Some("00Dxx0000001gPL"));
        assert_eq!(
            unpack(&packed),
            (
                "https://acme.my.salesforce.com".to_string(),
                Some("00Dxx0000001gPL".to_string())
            )
        );
        assert_eq!(unpack("http://127.0.0.1:9").1, None);
    }
}
