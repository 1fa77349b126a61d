//! Signed webhook deliveries of ticket events.

use super::{
    lock, now_secs, rfc3339, Delivery, Shared, Stats, Ticket, WebhookTarget, AGENT_ID,
    MAX_DELIVERIES,
};
use crate::connectors::Secret;
use axum::http::header;
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

impl Shared {
    /// Queues the events of one ticket change for delivery.
    pub(super) fn publish(&self, ticket_id: u64, events: Vec<(String, Value)>) {
        let (Some(hooks), Some(target)) = (&self.hooks, &self.opts.webhook) else {
            return;
        };
        if let Some(rx) = lock(&hooks.rx).take() {
            tokio::spawn(deliver_all(rx, target.clone(), self.stats.clone()));
        }
        let detail = {
            let db = lock(&self.db);
            let form = db.forms.default_form();
            db.tickets.get(&ticket_id).map(|t| webhook_detail(t, form))
        };
        let Some(detail) = detail else { return };
        let total = events.len();
        let sequence = format!("{:032x}", fastrand::u128(..));
        for (i, (name, event)) in events.into_iter().enumerate() {
            let mut event = event;
            if let Some(o) = event.as_object_mut() {
                o.insert(
                    "meta".into(),
                    json!({"sequence": {"id": sequence, "position": i + 1, "total": total}}),
                );
            }
            let payload = json!({
                "type": format!("zen:event-type:ticket.{name}"),
                "account_id": self.opts.account_id,
                "id": format!("{:032x}", fastrand::u128(..)),
                "time": rfc3339(now_secs()),
                "zendesk_event_version": "2022-11-06",
                "subject": format!("zen:ticket:{ticket_id}"),
                "detail": detail,
                "event": event,
            });
            // The receiver is gone only when the emulator is: nothing to do.
            let _ = hooks.tx.send(payload);
        }
    }
}

/// The ticket as event subscriptions show it: ids as strings, enums upper case.
/// `form_id` is the ticket's form, else the account's default
/// (developer.zendesk.com/api-reference/webhooks/event-types/ticket-events).
fn webhook_detail(t: &Ticket, default_form: Option<u64>) -> Value {
    json!({
        "actor_id": t.updater_id.unwrap_or(AGENT_ID).to_string(),
        "assignee_id": t.assignee_id.map(|a| a.to_string()),
        "brand_id": "360000123",
        "created_at": rfc3339(t.created_at),
        "custom_status": t.custom_status_id.to_string(),
        "description": t.description,
        "external_id": t.external_id,
        "form_id": t.ticket_form_id.or(default_form).map(|f| f.to_string()),
        "group_id": t.group_id.map(|g| g.to_string()),
        "id": t.id.to_string(),
        "is_public": true,
        "organization_id": t.organization_id.map(|o| o.to_string()),
        "priority": t.priority.as_ref().map(|p| p.to_uppercase()),
        "requester_id": t.requester_id.to_string(),
        "status": t.status.to_uppercase(),
        "subject": t.subject,
        "submitter_id": t.submitter_id.unwrap_or(t.requester_id).to_string(),
        "tags": t.tags,
        "type": t.kind.as_ref().map(|k| k.to_uppercase()),
        "updated_at": rfc3339(t.updated_at),
        "via": {"channel": t.updated_via.as_deref().unwrap_or("api")},
    })
}

/// Zendesk's scheme: base64(HMAC-SHA256(secret, timestamp + body)).
pub fn webhook_signature(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// How long a reordering sender gathers events before it shuffles them.
const REORDER_WINDOW: Duration = Duration::from_millis(100);

/// Delivers events one at a time, in order (unless the target asks for
/// them shuffled, or twice), each retried with doubling waits; the outcome
/// of each is recorded.
async fn deliver_all(
    mut rx: mpsc::UnboundedReceiver<Value>,
    target: WebhookTarget,
    stats: Arc<Mutex<Stats>>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client");
            return;
        }
    };
    let mut shuffle = target.reorder.map(fastrand::Rng::with_seed);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        if shuffle.is_some() {
            tokio::time::sleep(REORDER_WINDOW).await;
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
        }
        if target.redeliver {
            batch.extend(batch.clone());
        }
        if let Some(rng) = shuffle.as_mut() {
            rng.shuffle(&mut batch);
        }
        for payload in batch {
            let delivery = deliver_one(&client, &target, &payload).await;
            record(&mut lock(&stats), delivery, MAX_DELIVERIES);
        }
    }
}

/// Keeps the latest `cap` deliveries: a session that runs for hours sends
/// events for hours.
fn record(stats: &mut Stats, delivery: Delivery, cap: usize) {
    while stats.deliveries.len() >= cap.max(1) {
        stats.deliveries.pop_front();
    }
    stats.deliveries.push_back(delivery);
}

async fn deliver_one(
    client: &reqwest::Client,
    target: &WebhookTarget,
    payload: &Value,
) -> Delivery {
    let body = payload.to_string();
    let mut delivery = Delivery {
        event_type: payload["type"].as_str().unwrap_or_default().to_string(),
        ticket_id: payload["detail"]["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        attempts: 0,
        status: None,
    };
    let mut wait = target.backoff;
    for attempt in 1..=target.attempts.max(1) {
        delivery.attempts = attempt;
        let timestamp = rfc3339(now_secs());
        let signature = webhook_signature(&target.secret, &timestamp, body.as_bytes());
        let sent = client
            .post(&target.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-zendesk-webhook-signature", signature)
            .header("x-zendesk-webhook-signature-timestamp", timestamp)
            .header("x-zendesk-webhook-id", "01L3MAPWEBHOOK")
            .body(body.clone())
            .send()
            .await;
        if let Ok(r) = &sent {
            delivery.status = Some(r.status().as_u16());
            if r.status().is_success() {
                return delivery;
            }
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
    warn_failed(&target.url, &delivery);
    delivery
}

/// A delivery the receiver never accepted, said on the emulator's side
/// too: a refused signature is otherwise visible only in the receiver's
/// log (`webhook refused reason="bad_signature"`).
fn warn_failed(url: &str, d: &Delivery) {
    // The path only: a query could carry a token.
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let event = d.event_type.as_str();
    match d.status {
        Some(status @ (401 | 403)) => tracing::warn!(
            %url, status, event, ticket = d.ticket_id, attempts = d.attempts,
            "webhook delivery refused: the receiver does not accept the signature; sign with the secret it checks (l3map emulate reads --webhook-secret-env, L3MAP_WEBHOOK_SECRET by default; l3map run checks [webhook] secret_env)"
        ),
        Some(status) => tracing::warn!(
            %url, status, event, ticket = d.ticket_id, attempts = d.attempts,
            "webhook delivery failed: the receiver answered {status} to every attempt"
        ),
        None => tracing::warn!(
            %url, event, ticket = d.ticket_id, attempts = d.attempts,
            "webhook delivery failed: the receiver did not answer (is it running at that address?)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_deliveries_are_kept() {
        let mut stats = Stats::default();
        for ticket_id in 0..50 {
            let d = Delivery {
                event_type: "created".into(),
                ticket_id,
                attempts: 1,
                status: Some(200),
            };
            record(&mut stats, d, 10);
        }
        assert_eq!(stats.deliveries.len(), 10);
        let ids: Vec<u64> = stats.deliveries.iter().map(|d| d.ticket_id).collect();
        assert_eq!(ids, (40..50).collect::<Vec<_>>(), "the newest, in order");
    }

    #[test]
    fn signatures_match_zendesks_scheme() {
        // Known answer, computed independently (Python's hmac module):
        // base64(HMAC-SHA256("secret", "ts" + "body")).
        let s = webhook_signature(&Secret::new("secret"), "ts", b"body");
        assert_eq!(s, "S/61XcPfC9APW0fvpHj/hz9SrafsS/wAU+DoQbDS6mE=");
        assert_ne!(s, webhook_signature(&Secret::new("other"), "ts", b"body"));
    }
}
