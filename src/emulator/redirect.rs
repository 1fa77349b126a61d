//! Where an authorization page sends the browser back: the redirect URIs
//! the emulators accept (https, or http on the loopback: Zendesk "must be
//! https unless it's localhost or 127.0.0.1",
//! support.zendesk.com/hc/en-us/articles/4408845965210), and the 302 with
//! the code or the error in its query.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A loopback or https redirect URI (Zendesk: "must be https unless it's
/// localhost or 127.0.0.1", support.zendesk.com/hc/en-us/articles/4408845965210).
pub(crate) fn acceptable(uri: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(uri) else {
        return false;
    };
    match u.scheme() {
        "https" => true,
        "http" => matches!(
            u.host_str(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        ),
        _ => false,
    }
}

/// A 302 to `redirect_uri` with `pairs` added to its query.
pub(crate) fn to(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = reqwest::Url::parse(redirect_uri) else {
        let body =
            json!({"error": "invalid_request", "error_description": "redirect_uri is not a URL"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback() {
        for ok in [
            "http://127.0.0.1:8789/callback",
            "http://localhost/cb",
            "https://example.com/cb",
        ] {
            assert!(acceptable(ok), "{ok}");
        }
        for bad in ["http://example.com/cb", "ftp://127.0.0.1/", "/relative", ""] {
            assert!(!acceptable(bad), "{bad}");
        }
    }

    #[test]
    fn a_redirect_keeps_the_uris_own_query() {
        let r = to(
            "http://127.0.0.1:1/cb?x=1",
            &[("code", "a b"), ("state", "s")],
        );
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            r.headers()[header::LOCATION],
            "http://127.0.0.1:1/cb?x=1&code=a+b&state=s"
        );
    }
}
