//! The emulators' authorization pages as a client sees them: PKCE S256
//! only, codes good once and bound to their client, redirect URI and
//! challenge; errors before the redirect URI is trusted are a 400, never
//! a redirect. Both vendors; and Salesforce refresh token rotation.

use l3map::connectors::pkce::challenge_of;
use l3map::emulator::salesforce::{SalesforceEmulator, SalesforceOptions};
use l3map::emulator::zendesk::{ZendeskEmulator, ZendeskOptions};
use serde_json::{json, Value};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn param(location: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The page's answer: (status, Location).
async fn authorize(url: String) -> (u16, Option<String>) {
    let r = browser().get(url).send().await.unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), loc)
}

fn zendesk_page(base: &str, method: &str, client: &str, redirect: &str) -> String {
    let mut u = reqwest::Url::parse(&format!("{base}/oauth/authorizations/new")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "read write")
        .append_pair("state", "s1")
        .append_pair("code_challenge", &challenge_of(VERIFIER))
        .append_pair("code_challenge_method", method);
    u.to_string()
}

async fn zendesk_exchange(base: &str, code: &str, verifier: &str, redirect: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/oauth/tokens"))
        .json(&json!({"grant_type": "authorization_code", "code": code,
            "client_id": "l3map-dev-client", "client_secret": "l3map-dev-client-secret",
            "redirect_uri": redirect, "code_verifier": verifier}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn zendesk_codes_are_bound_to_their_challenge_and_good_once() {
    let (srv, _h) = ZendeskEmulator::new(ZendeskOptions::default())
        .start(0)
        .await
        .unwrap();
    let base = srv.base_url();
    // Not trusted yet: no redirect.
    assert_eq!(
        authorize(zendesk_page(&base, "S256", "nobody", REDIRECT))
            .await
            .0,
        400
    );
    let off_loopback = zendesk_page(&base, "S256", "l3map-dev-client", "http://evil.example/cb");
    assert_eq!(authorize(off_loopback).await.0, 400);
    // `plain` is refused, at the redirect URI.
    let (status, loc) = authorize(zendesk_page(&base, "plain", "l3map-dev-client", REDIRECT)).await;
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(&loc, "state").as_deref(), Some("s1"));

    // A wrong verifier spends the code.
    let (_, loc) = authorize(zendesk_page(&base, "S256", "l3map-dev-client", REDIRECT)).await;
    let code = param(&loc.unwrap(), "code").unwrap();
    let other = "x".repeat(43);
    let (status, body) = zendesk_exchange(&base, &code, &other, REDIRECT).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = zendesk_exchange(&base, &code, VERIFIER, REDIRECT).await;
    assert_eq!(status, 400, "a code is tried once");
    // Another redirect URI than the authorization's.
    let (_, loc) = authorize(zendesk_page(&base, "S256", "l3map-dev-client", REDIRECT)).await;
    let code = param(&loc.unwrap(), "code").unwrap();
    let (status, _) = zendesk_exchange(&base, &code, VERIFIER, "http://127.0.0.1:9/other").await;
    assert_eq!(status, 400);
    // The right verifier: access and refresh tokens, once.
    let (_, loc) = authorize(zendesk_page(&base, "S256", "l3map-dev-client", REDIRECT)).await;
    let code = param(&loc.unwrap(), "code").unwrap();
    let (status, body) = zendesk_exchange(&base, &code, VERIFIER, REDIRECT).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["refresh_token"].is_string() && body["expires_in"].is_u64(),
        "{body}"
    );
    assert!(body["refresh_token_expires_in"].is_u64(), "{body}");
    let (status, _) = zendesk_exchange(&base, &code, VERIFIER, REDIRECT).await;
    assert_eq!(status, 400);
}

async fn sf_exchange(base: &str, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", "l3map-emulator-client"),
        ("client_secret", "l3map-emulator-secret"),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let r = reqwest::Client::new()
        .post(format!("{base}/services/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn sf_refresh(base: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "l3map-emulator-client"),
            ("client_secret", "l3map-emulator-secret"),
            ("refresh_token", token),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn salesforce_web_server_flow_with_pkce_and_rotation() {
    let opts = SalesforceOptions {
        rotate_refresh_tokens: true,
        ..SalesforceOptions::default()
    };
    let (srv, _h) = SalesforceEmulator::new(opts).start(0).await.unwrap();
    let base = srv.base_url();
    let page = || {
        let mut u = reqwest::Url::parse(&format!("{base}/services/oauth2/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "l3map-emulator-client")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("state", "s2")
            .append_pair("code_challenge", &challenge_of(VERIFIER))
            .append_pair("code_challenge_method", "S256");
        u.to_string()
    };
    let code = |loc: Option<String>| param(&loc.unwrap(), "code").unwrap();
    // Salesforce's PKCE errors: a mismatch is invalid_request, a missing
    // verifier invalid_grant.
    let (_, loc) = authorize(page()).await;
    let (status, body) = sf_exchange(&base, &code(loc), Some(&"y".repeat(43))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (_, loc) = authorize(page()).await;
    let (status, body) = sf_exchange(&base, &code(loc), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Denied.
    let (_, loc) = authorize(format!("{}&l3map_decision=deny", page())).await;
    assert_eq!(
        param(&loc.unwrap(), "error").as_deref(),
        Some("access_denied")
    );
    // The right verifier: instance, identity and a refresh token.
    let (_, loc) = authorize(page()).await;
    let (status, body) = sf_exchange(&base, &code(loc), Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["instance_url"].is_string() && body["id"].is_string(),
        "{body}"
    );
    let r0 = body["refresh_token"].as_str().unwrap().to_string();
    // Rotation: each refresh answers a new one; the old one is dead, and
    // using it again ends the newer one too.
    let (status, body) = sf_refresh(&base, &r0).await;
    assert_eq!(status, 200, "{body}");
    let r1 = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r0, r1);
    assert_eq!(sf_refresh(&base, &r0).await.0, 400);
    assert_eq!(sf_refresh(&base, &r1).await.0, 400, "the lineage ended");
}

#[tokio::test]
async fn salesforce_without_rotation_answers_no_refresh_token_on_refresh() {
    let (srv, _h) = SalesforceEmulator::new(SalesforceOptions::default())
        .start(0)
        .await
        .unwrap();
    let base = srv.base_url();
    for _ in 0..2 {
        let (status, body) = sf_refresh(&base, "l3map-emulator-refresh").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
}
