//! The embedded default's stream of demo events: tickets created and
//! changed on the Zendesk emulator (which sends them back as signed
//! webhooks, as Zendesk would), and AI agent turns on them, sent to the
//! agent API as an agent sends them: refunds above
//! and below the threshold, a fraud report, an angry enterprise customer,
//! allowed and forbidden status requests. Written for the fintech desk in
//! `mappings/fintech`; with other mappings the same events simply decide
//! what those mappings say.

use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::{TicketChanges, ZendeskClient};
use serde_json::{json, Map, Value as Json};

/// Custom field ids of the fintech desk (mappings/fintech/fields.l3map).
const SLA_TIER: u64 = 360001234;
const DISPUTE_TYPE: u64 = 360001238;

/// What the demo did, for its summary.
#[derive(Debug, Default, Clone)]
pub struct Fed {
    pub tickets_created: usize,
    pub ticket_updates: usize,
    pub turns: usize,
    /// Requests the mappings refused: (what, why), shown as they happen.
    pub refused: Vec<(String, String)>,
}

struct TurnSpec {
    tier: &'static str,
    status: &'static str,
    turn: Json,
}

fn turns() -> Vec<TurnSpec> {
    vec![
        TurnSpec {
            tier: "premium",
            status: "in_progress",
            turn: json!({"intent": "refund", "summary": "Wants a refund for a duplicate card charge of $250",
                         "attempts": ["looked up the two charges", "offered a $20 credit"], "sentiment": "negative",
                         "refund_amount": {"amount": "250.00", "currency": "USD"}}),
        },
        TurnSpec {
            tier: "standard",
            status: "open",
            turn: json!({"intent": "refund", "summary": "Refund of a $12 FX fee",
                         "attempts": ["explained the fee"], "sentiment": "neutral",
                         "refund_amount": {"amount": "12.00", "currency": "USD"}}),
        },
        TurnSpec {
            tier: "standard",
            status: "open",
            turn: json!({"intent": "fraud_report", "summary": "Card used in a country the customer never visited",
                         "attempts": ["froze the card"], "sentiment": "worried"}),
        },
        TurnSpec {
            tier: "enterprise",
            status: "in_progress",
            turn: json!({"intent": "complaint", "summary": "Third failed payout this week",
                         "attempts": ["checked the payout queue", "apologised"], "sentiment": "angry"}),
        },
        TurnSpec {
            tier: "standard",
            status: "open",
            turn: json!({"intent": "question", "summary": "Asked how to upload proof of address",
                         "attempts": ["sent the upload link"], "sentiment": "positive",
                         "requested_status": "pending_customer"}),
        },
        TurnSpec {
            tier: "standard",
            status: "new",
            turn: json!({"intent": "question", "summary": "Asked to close the ticket right away",
                         "attempts": [], "sentiment": "neutral", "requested_status": "closed"}),
        },
    ]
}

/// Where the demo's agent sends its turns.
pub struct Agent<'a> {
    /// The runtime, `http://127.0.0.1:PORT`.
    pub url: &'a str,
    pub token: &'a str,
}

impl Agent<'_> {
    /// A turn's fields with the conversation's ids added, as the agent
    /// API takes them.
    pub fn body(turn: &Map<String, Json>, turn_id: &str, ticket: u64, case: Option<&str>) -> Json {
        let mut body = turn.clone();
        body.insert("turn_id".into(), json!(turn_id));
        body.insert("ticket".into(), json!(ticket));
        if let Some(c) = case {
            body.insert("case".into(), json!(c));
        }
        Json::Object(body)
    }

    /// POSTs a turn to `/v1/turns`; the answer, or why there is none.
    pub async fn send(&self, http: &reqwest::Client, body: &Json) -> Result<Json, String> {
        let resp = http
            .post(format!("{}/v1/turns", self.url))
            .bearer_auth(self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("the agent API: {e}"))?;
        let status = resp.status();
        let got: Json = resp
            .json()
            .await
            .map_err(|e| format!("the agent API's answer: {e}"))?;
        if !status.is_success() {
            return Err(format!("the agent API answered {status}: {got}"));
        }
        Ok(got)
    }
}

/// Runs the demo stream. Zendesk and Salesforce are the emulators' clients
/// (development credentials); `run_id` keeps ids unique across runs.
pub async fn feed(
    agent: Agent<'_>,
    zd: ZendeskClient,
    sf: Option<SalesforceClient>,
    run_id: &str,
    say: &(dyn Fn(String) + Sync),
) -> Result<Fed, String> {
    let mut fed = Fed::default();
    let specs = turns();
    let mut tickets = Vec::new();
    for (n, spec) in specs.iter().enumerate() {
        let summary = spec.turn["summary"]
            .as_str()
            .unwrap_or("A customer question");
        let changes = TicketChanges::default()
            .subject(summary.to_string())
            .public_comment(format!("{summary} (demo ticket {n})"))
            .field(SLA_TIER, spec.tier);
        let key = format!("l3map-demo-{run_id}-{n}");
        let t = zd
            .create_ticket(&changes, Some(&key))
            .await
            .map_err(|e| format!("creating a demo ticket: {e}"))?;
        fed.tickets_created += 1;
        let case = match &sf {
            Some(sf) => {
                let mut f = Map::new();
                f.insert("Subject".into(), json!(summary));
                f.insert("Origin".into(), json!("Web"));
                Some(
                    sf.create("Case", &f)
                        .await
                        .map_err(|e| format!("creating a demo Case: {e}"))?,
                )
            }
            None => None,
        };
        say(format!("  + ticket {} created: {summary:?}", t.id));
        tickets.push((t.id, case));
    }
    // A dispute recorded on the ticket by a human: reaches l3map as a
    // webhook, like any change made in Zendesk.
    if let Some((id, _)) = tickets.get(1) {
        zd.update_ticket(
            *id,
            &TicketChanges::default().field(DISPUTE_TYPE, "fraud_claim"),
        )
        .await
        .map_err(|e| format!("updating a demo ticket: {e}"))?;
        fed.ticket_updates += 1;
        say(format!(
            "  ~ ticket {id}: a human set dispute type = fraud_claim"
        ));
    }
    // A person picks the tickets up (all but the one left new), so the
    // agent's turns find them open, as in a real queue.
    for (spec, (id, _)) in specs.iter().zip(&tickets) {
        if spec.status != "new" {
            zd.update_ticket(*id, &TicketChanges::default().status("open", None))
                .await
                .map_err(|e| format!("updating a demo ticket: {e}"))?;
            fed.ticket_updates += 1;
        }
    }
    // The AI agent's turns, through the agent API as any agent sends them.
    let http = reqwest::Client::new();
    for (n, (spec, (ticket, case))) in specs.iter().zip(&tickets).enumerate() {
        let turn = spec.turn.as_object().cloned().unwrap_or_default();
        let body = Agent::body(
            &turn,
            &format!("demo-{run_id}-{n}"),
            *ticket,
            case.as_deref(),
        );
        let got = agent.send(&http, &body).await?;
        fed.turns += 1;
        let accepted = got["accepted"].as_array().map_or(0, Vec::len);
        say(format!(
            "  > agent turn on ticket {ticket}: {} -> {accepted} action(s)",
            spec.turn["intent"].as_str().unwrap_or("?"),
        ));
        for r in got["refused"].as_array().into_iter().flatten() {
            let what = r["what"].as_str().unwrap_or("?").to_string();
            let reason = r["reason"].as_str().unwrap_or("?").to_string();
            say(format!("  x refused {what}: {reason}"));
            fed.refused.push((what, reason));
        }
    }
    Ok(fed)
}
