//! The embedded default's stream of demo events: tickets created and
//! changed on the Zendesk emulator (which sends them back as signed
//! webhooks, as Zendesk would), and AI agent turns on them, sent to the
//! agent API as an agent sends them: refunds above
//! and below the threshold, a fraud report, an angry enterprise customer,
//! allowed and forbidden status requests. The tickets are seeded from the
//! project being run: a custom field is set only when the project declares
//! it (by its name, with the value among its options), so the fintech desk
//! sees its tiers and disputes and any other project gets tickets its own
//! emulator accepts, with its first drop-down filled in turn.

use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::{TicketChanges, ZendeskClient};
use crate::emulator::zendesk::{FieldKind, Seed, SeedField};
use crate::ir::Program;
use serde_json::{json, Map, Value as Json};

/// The field a person changes on the second ticket (a dispute recorded by
/// hand), when the project declares it.
const HUMAN_CHANGE: (&str, &str) = ("dispute_type", "fraud_claim");

/// The custom fields of the project's Zendesk desk, as the emulator is
/// seeded with them (ids from the mappings).
pub struct DemoFields(Vec<SeedField>);

impl DemoFields {
    pub fn of(program: &Program) -> DemoFields {
        DemoFields(Seed::from_programs(std::slice::from_ref(program)).fields)
    }

    /// The id of the field named `name`, when `value` is a value it takes.
    fn accepting(&self, name: &str, value: &str) -> Option<u64> {
        self.0
            .iter()
            .find(|f| f.title == name)
            .filter(|f| match &f.kind {
                FieldKind::Tagger(options) => options.iter().any(|o| o == value),
                FieldKind::Text => true,
                _ => false,
            })
            .map(|f| f.id)
    }

    /// The first drop-down and its options: what a project without the
    /// demo's named fields gets filled in, one option per ticket.
    fn first_dropdown(&self) -> Option<(u64, &[String])> {
        self.0.iter().find_map(|f| match &f.kind {
            FieldKind::Tagger(options) if !options.is_empty() => Some((f.id, options.as_slice())),
            _ => None,
        })
    }

    /// The fields a demo ticket is created with.
    fn for_ticket(&self, n: usize, tier: &str) -> Vec<(u64, String)> {
        if let Some(id) = self.accepting("sla_tier", tier) {
            return vec![(id, tier.to_string())];
        }
        match self.first_dropdown() {
            Some((id, options)) => vec![(id, options[n % options.len()].clone())],
            None => vec![],
        }
    }
}

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
    program: &Program,
    agent: Agent<'_>,
    zd: ZendeskClient,
    sf: Option<SalesforceClient>,
    run_id: &str,
    say: &(dyn Fn(String) + Sync),
) -> Result<Fed, String> {
    let mut fed = Fed::default();
    let fields = DemoFields::of(program);
    let specs = turns();
    let mut tickets = Vec::new();
    for (n, spec) in specs.iter().enumerate() {
        let summary = spec.turn["summary"]
            .as_str()
            .unwrap_or("A customer question");
        let mut changes = TicketChanges::default()
            .subject(summary.to_string())
            .public_comment(format!("{summary} (demo ticket {n})"));
        for (id, value) in fields.for_ticket(n, spec.tier) {
            changes = changes.field(id, value);
        }
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
    let (name, value) = HUMAN_CHANGE;
    if let (Some((id, _)), Some(field)) = (tickets.get(1), fields.accepting(name, value)) {
        zd.update_ticket(*id, &TicketChanges::default().field(field, value))
            .await
            .map_err(|e| format!("updating a demo ticket: {e}"))?;
        fed.ticket_updates += 1;
        say(format!("  ~ ticket {id}: a human set {name} = {value}"));
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
