//! The Zendesk emulator's side of writes that respect people (issue 17):
//! a stale safe update is refused 409 and applies nothing, a current one
//! goes through, and one ticket takes at most its per-ticket budget of API
//! updates before 429 with `Retry-After`, through the real connector.

use l3map::connectors::limit::Limiters;
use l3map::connectors::retry::RetryPolicy;
use l3map::connectors::zendesk::{Credentials, TicketChanges, ZendeskClient, ZendeskConfig};
use l3map::connectors::{ApiError, Secret};
use l3map::emulator::zendesk::{TokenGrant, ZendeskEmulator, ZendeskOptions};
use std::time::Duration;

const TOKEN: &str = "tok-safe";

async fn emulator(opts: ZendeskOptions) -> (l3map::emulator::Running, ZendeskClient) {
    let (srv, zd, _) = emulator_at(opts).await;
    (srv, zd)
}

async fn emulator_at(opts: ZendeskOptions) -> (l3map::emulator::Running, ZendeskClient, String) {
    let (srv, _) = ZendeskEmulator::new(ZendeskOptions {
        tokens: vec![TokenGrant::new(TOKEN, &["read", "write"])],
        ..opts
    })
    .start(0)
    .await
    .expect("bind 127.0.0.1");
    let mut cfg = ZendeskConfig::new(srv.base_url(), Credentials::OAuth(Secret::new(TOKEN)));
    cfg.rpm = 6000;
    // One try: the 429 is the answer under test, not something to wait out.
    cfg.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    cfg.timeout = Duration::from_secs(10);
    let zd = ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client");
    let base = srv.base_url();
    (srv, zd, base)
}

#[tokio::test]
async fn a_stale_safe_update_is_refused_with_409_and_applies_nothing() {
    let (_srv, zd) = emulator(ZendeskOptions::default()).await;
    let read = zd.get_ticket(4211).await.expect("ticket");
    let basis = read.updated_at.clone().expect("updated_at");
    // Stamped with the current state: goes through.
    let t = zd
        .update_ticket(
            4211,
            &TicketChanges::default().subject("first").safe(&basis),
        )
        .await
        .expect("a current safe update");
    assert_eq!(t.subject.as_deref(), Some("first"));
    // Someone changed it since: the same stamp is stale now.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    zd.update_ticket(4211, &TicketChanges::default().subject("second"))
        .await
        .expect("an unsafe update");
    let e = zd
        .update_ticket(
            4211,
            &TicketChanges::default().subject("stale").safe(&basis),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("409"), "{e}");
    let now = zd.get_ticket(4211).await.expect("ticket");
    assert_eq!(now.subject.as_deref(), Some("second"), "nothing applied");
    // A webhook payload's stamp may carry fractions: the same second is
    // current, not stale.
    let fresh = now.updated_at.expect("updated_at");
    let fractional = fresh.replace('Z', ".250Z");
    zd.update_ticket(
        4211,
        &TicketChanges::default().subject("third").safe(fractional),
    )
    .await
    .expect("the same second, with fractions");
}

#[tokio::test]
async fn one_ticket_takes_its_budget_of_updates_then_429_with_retry_after() {
    let (_srv, zd, _) = emulator_at(ZendeskOptions {
        ticket_update_limit: 3,
        ..ZendeskOptions::default()
    })
    .await;
    for i in 0..3 {
        zd.update_ticket(4211, &TicketChanges::default().subject(format!("n{i}")))
            .await
            .expect("within the budget");
    }
    let e = zd
        .update_ticket(4211, &TicketChanges::default().subject("over"))
        .await
        .unwrap_err();
    let wait = match &e {
        ApiError::RateLimited { retry_after, .. } => *retry_after,
        ApiError::GaveUp { last, .. } => last.retry_after(),
        other => panic!("not a 429: {other:?}"),
    };
    let wait = wait.expect("Retry-After");
    assert!(
        wait > Duration::from_secs(590) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    // Another ticket has a budget of its own, and the 429 came while the
    // account had requests left: it held that ticket's update only, not
    // the token (the same client writes ticket 4213 at once).
    let other = tokio::time::timeout(
        Duration::from_secs(5),
        zd.update_ticket(4213, &TicketChanges::default().subject("other")),
    )
    .await
    .expect("the token is not paused by one ticket's limit")
    .expect("another ticket's update");
    assert_eq!(other.subject.as_deref(), Some("other"));
}

/// A create whose answer was lost, sent again with its idempotency key:
/// Zendesk answers `x-idempotency-lookup: hit` with the same ticket, and
/// the client counts it as a replay.
#[tokio::test]
async fn a_replayed_create_is_read_as_a_hit_and_counted() {
    let (_srv, zd) = emulator(ZendeskOptions::default()).await;
    let new = TicketChanges::default()
        .subject("Replayed create")
        .public_comment("created once");
    let first = zd
        .create_ticket(&new, Some("key-replay-1"))
        .await
        .expect("create");
    assert_eq!(zd.idempotent_creates(), (0, 1), "a miss: it was made");
    let again = zd
        .create_ticket(&new, Some("key-replay-1"))
        .await
        .expect("replay");
    assert_eq!(again.id, first.id, "the same ticket, not a second");
    assert_eq!(zd.idempotent_creates(), (1, 1), "a hit: a replay");
}

/// A create whose answer is lost after Zendesk made it (the emulator's
/// `drop_next_create`: made, remembered under its key, answered 502): the
/// connector sends it again with the same `Idempotency-Key`, Zendesk
/// answers `x-idempotency-lookup: hit` with the ticket it made, and there
/// is one ticket, not two.
#[tokio::test]
async fn a_create_whose_answer_is_lost_is_sent_again_and_makes_one_ticket() {
    let (_srv, _, base) = emulator_at(ZendeskOptions::default()).await;
    let mut cfg = ZendeskConfig::new(base.clone(), Credentials::OAuth(Secret::new(TOKEN)));
    cfg.rpm = 6000;
    cfg.timeout = Duration::from_secs(10);
    let zd = ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client");
    let admin = reqwest::Client::new()
        .post(format!("{base}/__l3map/tickets/drop_next_create"))
        .send()
        .await
        .expect("emulator");
    assert!(admin.status().is_success(), "{}", admin.status());
    let subject = "Lost answer, one ticket";
    let t = zd
        .create_ticket(
            &TicketChanges::default()
                .subject(subject)
                .public_comment("made once"),
            Some("key-lost-answer-1"),
        )
        .await
        .expect("the create, sent again with its key");
    assert_eq!(zd.idempotent_creates(), (1, 0), "the second send was a hit");
    let all: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v2/tickets.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("emulator")
        .json()
        .await
        .expect("json");
    let same: Vec<u64> = all["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter(|x| x["subject"] == subject)
        .filter_map(|x| x["id"].as_u64())
        .collect();
    assert_eq!(same, vec![t.id], "one ticket");
}
