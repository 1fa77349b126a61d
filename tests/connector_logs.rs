//! Credentials never reach the logs. Every connector operation, including
//! sign-in, an expired session's refresh, a refused refresh, retries and
//! errors, runs with every tracing level captured; the capture must hold
//! the connectors' own log lines (so it is not empty by accident) and none
//! of the secrets used.

use crate::common;

use common::logs::Capture;
use l3map::connectors::limit::Limiters;
use l3map::connectors::retry::RetryPolicy;
use l3map::connectors::salesforce::{SalesforceClient, SalesforceConfig};
use l3map::connectors::zendesk::{Credentials, TicketChanges, ZendeskClient, ZendeskConfig};
use l3map::connectors::Secret;
use l3map::emulator::salesforce::{SalesforceEmulator, SalesforceOptions};
use l3map::emulator::zendesk::{TokenGrant, ZendeskEmulator, ZendeskOptions};
use std::sync::atomic::Ordering;
use std::time::Duration;

const ZD_OAUTH: &str = "zd-oauth-9f2c41d7";
const ZD_API: &str = "zd-api-token-3e8a0b55";
const SF_SECRET: &str = "sf-client-secret-71c0";
const SF_REFRESH: &str = "sf-refresh-token-d4a9";

fn quick() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        max_total: Duration::from_secs(5),
        max_attempts: 5,
        ..RetryPolicy::default()
    }
}

// One thread, so the thread-local subscriber sees every task's events.
#[tokio::test(flavor = "current_thread")]
async fn no_credential_is_ever_logged() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Zendesk: OAuth and API token, an injected 5xx (a retry is logged),
    // a write, and a wrong token.
    let (zd_run, zd_h) = ZendeskEmulator::new(ZendeskOptions {
        tokens: vec![
            TokenGrant::new(ZD_OAUTH, &["read", "write"]),
            TokenGrant::new(ZD_API, &["read", "write"]),
        ],
        ..ZendeskOptions::default()
    })
    .start(0)
    .await
    .expect("zendesk emulator");
    let zd_cfg = |creds| {
        let mut c = ZendeskConfig::new(zd_run.base_url(), creds);
        c.retry = quick();
        c.rpm = 6000;
        c
    };
    let zd = ZendeskClient::with_limiters(
        zd_cfg(Credentials::OAuth(Secret::new(ZD_OAUTH))),
        &Limiters::default(),
    )
    .expect("client");
    zd_h.faults().burst_5xx.store(1, Ordering::SeqCst);
    zd.get_ticket(4211).await.expect("retried read");
    zd.update_ticket(4211, &TicketChanges::default().private_comment("hand-off"))
        .await
        .expect("write");
    let by_api = ZendeskClient::with_limiters(
        zd_cfg(Credentials::ApiToken {
            email: "ops@example.com".into(),
            token: Secret::new(ZD_API),
        }),
        &Limiters::default(),
    )
    .expect("client");
    by_api.groups().await.expect("groups");
    let wrong = format!("{ZD_OAUTH}-revoked");
    let e = ZendeskClient::with_limiters(
        zd_cfg(Credentials::OAuth(Secret::new(wrong.clone()))),
        &Limiters::default(),
    )
    .expect("client")
    .get_ticket(4211)
    .await
    .unwrap_err();
    tracing::error!(error = %e, debug = ?e, "zendesk failure as the runtime would log it");

    // Salesforce: sign-in, an expired session refreshed, an injected 5xx,
    // then a refresh token the org refuses.
    let (sf_run, sf_h) = SalesforceEmulator::new(SalesforceOptions {
        client_id: "app-logs".into(),
        client_secret: SF_SECRET.into(),
        refresh_token: SF_REFRESH.into(),
        ..SalesforceOptions::default()
    })
    .start(0)
    .await
    .expect("salesforce emulator");
    let sf_cfg = |refresh: &str| {
        let mut c = SalesforceConfig::new(
            sf_run.base_url(),
            "app-logs",
            Secret::new(SF_SECRET),
            Secret::new(refresh),
        );
        c.retry = quick();
        c
    };
    let sf = SalesforceClient::new(sf_cfg(SF_REFRESH)).expect("client");
    let case = sf_h.records("Case")[0]["Id"].as_str().unwrap().to_string();
    sf.get("Case", &case, None).await.expect("get");
    sf_h.expire_tokens();
    sf_h.faults().burst_5xx.store(1, Ordering::SeqCst);
    sf.create_case_comment(&case, "internal note").await.ok();
    sf.get("Case", &case, None).await.expect("after refresh");
    let bad_refresh = format!("{SF_REFRESH}-old");
    let e = SalesforceClient::new(sf_cfg(&bad_refresh))
        .expect("client")
        .get("Case", &case, None)
        .await
        .unwrap_err();
    tracing::error!(error = %e, debug = ?e, ?sf, "salesforce failure as the runtime would log it");

    let logs = capture.text();
    assert!(logs.contains("retrying"), "the retry was logged:\n{logs}");
    assert!(logs.contains("session refreshed"), "the refresh was logged");
    assert!(logs.contains("failure as the runtime would log it"));
    for secret in [ZD_OAUTH, ZD_API, SF_SECRET, SF_REFRESH] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
    // Nor the access tokens the emulator issued during the run.
    for token in sf_h.issued_tokens() {
        assert!(
            !logs.contains(&token),
            "an access token appears in the logs"
        );
    }
}
