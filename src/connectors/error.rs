//! What can go wrong talking to Zendesk or Salesforce, typed so callers
//! can decide (retry, park, tell a human), with the API's own message and
//! never a credential.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Zendesk,
    Salesforce,
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            System::Zendesk => "Zendesk",
            System::Salesforce => "Salesforce",
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 401, or a token the API refuses: the credential is wrong or expired.
    #[error("{system}: authentication failed (HTTP {status}): {message}")]
    Auth {
        system: System,
        status: u16,
        message: String,
    },
    /// The token endpoint refused the grant itself (`invalid_grant`: the
    /// refresh token was revoked, expired or already used). Not retried:
    /// a person must sign in again (`l3map auth login --connection NAME`).
    #[error("{system}: the OAuth grant was refused ({message}); sign in again")]
    GrantRevoked { system: System, message: String },
    /// 403: the token lacks a scope or the integration user a permission.
    #[error("{system}: permission denied (HTTP 403): {message}")]
    Permission { system: System, message: String },
    /// 404: the record or endpoint does not exist.
    #[error("{system}: not found: {message}")]
    NotFound { system: System, message: String },
    /// 400/422: the API refused the content; `fields` names the fields it
    /// blamed, when it said.
    #[error("{system}: rejected (HTTP {status}): {message}{}", fields_note(.fields))]
    Validation {
        system: System,
        status: u16,
        message: String,
        fields: Vec<String>,
    },
    /// 409: the record changed since the state the write was based on (a
    /// Zendesk ticket update with `safe_update: true` whose
    /// `updated_stamp` is stale). Not retried as is: the caller reads the
    /// record again and decides what still holds.
    #[error("{system}: conflict (HTTP 409): {message}")]
    Conflict { system: System, message: String },
    /// 429 (or Salesforce's REQUEST_LIMIT_EXCEEDED): wait and try again.
    #[error("{system}: rate limited{}: {message}", after_note(.retry_after))]
    RateLimited {
        system: System,
        retry_after: Option<Duration>,
        message: String,
    },
    /// 5xx, a timeout or a dropped connection: worth another try.
    /// `sent` is false only when the request certainly never reached the
    /// API (the connection was refused), which makes any request safe to
    /// send again.
    #[error("{system}: temporary failure{}: {message}", status_note(.status))]
    Transient {
        system: System,
        status: Option<u16>,
        message: String,
        sent: bool,
    },
    /// A quota that does not reopen within a retry budget (Salesforce's
    /// rolling 24-hour `TotalRequests`): retrying only spends more.
    #[error("{system}: quota exhausted: {message}")]
    QuotaExhausted { system: System, message: String },
    /// A write that is not safe to repeat failed in a way that leaves its
    /// outcome unknown (a timeout, a 5xx after the request was sent). It
    /// is not sent again: read the record back before deciding to.
    #[error(
        "{system}: the write may or may not have been applied, so it was not repeated: {last}"
    )]
    Unconfirmed { system: System, last: Box<ApiError> },
    /// The API answered something this client cannot read.
    #[error("{system}: unexpected response: {message}")]
    Protocol { system: System, message: String },
    /// Retries ran out of time or attempts; `last` is the final error.
    #[error("{system}: gave up after {attempts} attempt(s) over {waited:?}: {last}")]
    GaveUp {
        system: System,
        attempts: u32,
        waited: Duration,
        last: Box<ApiError>,
    },
}

fn fields_note(fields: &[String]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        format!(" (fields: {})", fields.join(", "))
    }
}

fn after_note(d: &Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}s", d.as_secs()))
        .unwrap_or_default()
}

fn status_note(s: &Option<u16>) -> String {
    s.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl ApiError {
    /// What an HTTP status means when the API said nothing more specific.
    /// Each connector handles its API's special cases (Salesforce's
    /// `INVALID_SESSION_ID` and `REQUEST_LIMIT_EXCEEDED`) before this.
    pub fn from_status(
        system: System,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
        fields: Vec<String>,
    ) -> ApiError {
        match status {
            401 => ApiError::Auth {
                system,
                status,
                message,
            },
            403 => ApiError::Permission { system, message },
            404 => ApiError::NotFound { system, message },
            409 => ApiError::Conflict { system, message },
            // A 503 with Retry-After is load shedding: wait as asked.
            429 | 503 if status == 429 || retry_after.is_some() => ApiError::RateLimited {
                system,
                retry_after,
                message,
            },
            500..=599 => ApiError::Transient {
                system,
                status: Some(status),
                message,
                sent: true,
            },
            400..=499 => ApiError::Validation {
                system,
                status,
                message,
                fields,
            },
            _ => ApiError::Protocol {
                system,
                message: format!("HTTP {status}: {message}"),
            },
        }
    }

    /// Whether the same request may succeed later: 429, 5xx, timeouts.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. } | ApiError::Transient { .. }
        )
    }

    /// Whether the API certainly did not act on the request: it refused it
    /// for rate (429, or a 503 shedding load with `Retry-After`) or the
    /// connection never opened. Only then may a write that is not
    /// idempotent be sent again.
    pub fn certainly_unapplied(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. } | ApiError::Transient { sent: false, .. }
        )
    }

    /// What the API asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What a refused OAuth token request means: a 5xx is worth another
    /// try; anything else is an authentication failure described by the
    /// endpoint's `{"error", "error_description"}` (RFC 6749, 5.2), which
    /// names the problem and never the credential that was sent.
    pub fn from_token_endpoint(system: System, status: u16, body: &[u8]) -> ApiError {
        if (500..=599).contains(&status) {
            return ApiError::Transient {
                system,
                status: Some(status),
                message: "the token endpoint failed".into(),
                sent: true,
            };
        }
        #[derive(serde::Deserialize, Default)]
        struct OAuthError {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        let mut e: OAuthError = serde_json::from_slice(body).unwrap_or_default();
        // What the endpoint says back may quote what it was sent (a
        // refresh token, a client secret): long token-like words are cut
        // before the text reaches a log, a metric or `outbox` output.
        e.error = scrub(&e.error);
        e.error_description = scrub(&e.error_description);
        // RFC 6749 5.2: "invalid_grant" names the grant (a refresh token
        // revoked, expired or reused), not the client. Zendesk's only, so
        // far: Salesforce also answers it for a bad JWT assertion (a
        // configuration error), and its grants are not kept in the store
        // yet (docs/RUNTIME.md, "Credentials").
        if e.error == "invalid_grant" && system == System::Zendesk {
            return ApiError::GrantRevoked {
                system,
                message: format!("{}: {}", e.error, e.error_description),
            };
        }
        ApiError::Auth {
            system,
            status,
            message: format!("{}: {}", e.error, e.error_description),
        }
    }

    /// A transport failure from reqwest, without the URL (query strings
    /// can carry tokens) and typed by what it means for a retry.
    pub fn transport(system: System, e: &reqwest::Error) -> ApiError {
        // A connect error (a connect timeout too) is the one transport
        // failure where nothing was sent; a later timeout may fire after
        // the API acted.
        let (what, sent) = if e.is_connect() {
            ("could not connect", false)
        } else if e.is_timeout() {
            ("timed out", true)
        } else if e.is_body() || e.is_decode() {
            ("the response body broke off", true)
        } else {
            ("the request failed", true)
        };
        ApiError::Transient {
            system,
            status: None,
            message: what.into(),
            sent,
        }
    }
}

/// `text` at most 200 characters, with every word of 16 or more
/// characters of a token's alphabet (letters, digits, `-._~+/=`), other
/// than lowercase letters and `_` only, replaced by `[redacted]`: an
/// OAuth error's text is for people, and never needs a token to be
/// understood.
fn scrub(text: &str) -> String {
    let tokenish = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        // A word of lowercase letters and `_` is an error code
        // (`unsupported_grant_type`), not a token.
        let coded = word.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if word.chars().count() >= 16 && !coded {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if tokenish(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.chars().take(200).collect()
}

#[cfg(test)]
mod scrub_tests {
    #[test]
    fn token_like_words_are_cut_from_token_endpoint_errors() {
        let e = super::ApiError::from_token_endpoint(
            super::System::Zendesk,
            400,
            br#"{"error":"invalid_grant","error_description":"refresh token zd_r_9f8e7d6c5b4a3210ffee is invalid"}"#,
        );
        let shown = e.to_string();
        assert!(!shown.contains("zd_r_9f8e7d6c5b4a3210ffee"), "{shown}");
        assert!(
            shown.contains("invalid_grant") && shown.contains("[redacted] is invalid"),
            "{shown}"
        );
    }
}
