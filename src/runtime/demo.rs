//! The embedded default's stream of demo events: tickets created on the
//! Zendesk emulator (which sends them back as signed webhooks, as Zendesk
//! would), and AI agent turns on them, sent to the agent API as an agent
//! sends them.
//!
//! Two scripts. The fintech desk built into the binary has its own story
//! ([`feed`]): refunds above and below the threshold, a fraud report, an
//! angry enterprise customer, allowed and forbidden status requests, on
//! tickets with its tiers and disputes. Any other project (an edited
//! fintech desk too) is shown with its own examples ([`feed_tests`]): each
//! `test` block whose event is an agent turn becomes a ticket created as
//! the event describes it and that turn, sent live, as `l3map e2e` sends
//! them (the same plan, `e2e::plan`). Turns written for one desk
//! name statuses and fields another desk does not have, so they could
//! only be refused there.

use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::{TicketChanges, ZendeskClient};
use crate::e2e::plan;
use crate::emulator::zendesk::{FieldKind, Seed, SeedField};
use crate::ir::{Expectation, Program, TestCase};
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

    /// The fields a demo ticket is created with.
    fn for_ticket(&self, tier: &str) -> Vec<(u64, String)> {
        self.accepting("sla_tier", tier)
            .map(|id| vec![(id, tier.to_string())])
            .unwrap_or_default()
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

impl Agent<'_> {
    /// Sends one of the demo's turns: how many actions the runtime
    /// accepted, and what it refused and why.
    async fn turn(
        &self,
        http: &reqwest::Client,
        turn: &Map<String, Json>,
        turn_id: &str,
        ticket: u64,
        case: Option<&str>,
    ) -> Result<(usize, Vec<(String, String)>), String> {
        let got = self
            .send(http, &Agent::body(turn, turn_id, ticket, case))
            .await?;
        let accepted = got["accepted"].as_array().map_or(0, Vec::len);
        let text = |v: &Json| v.as_str().unwrap_or("?").to_string();
        let refused = got["refused"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (text(&r["what"]), text(&r["reason"])))
            .collect();
        Ok((accepted, refused))
    }
}

/// Runs the fintech desk's demo stream. Zendesk and Salesforce are the emulators' clients
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
        for (id, value) in fields.for_ticket(spec.tier) {
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
        let turn_id = format!("demo-{run_id}-{n}");
        let (accepted, refused) = agent
            .turn(&http, &turn, &turn_id, *ticket, case.as_deref())
            .await?;
        fed.turns += 1;
        say(format!(
            "  > agent turn on ticket {ticket}: {} -> {accepted} action(s)",
            spec.turn["intent"].as_str().unwrap_or("?"),
        ));
        for (what, reason) in refused {
            say(format!("  x refused {what}: {reason}"));
            fed.refused.push((what, reason));
        }
    }
    Ok(fed)
}

/// Runs the demo from the project's own test blocks: every agent turn on
/// a ticket whose event needs no record the demo cannot create (a Case is
/// created; a Contact or an Account would have to be found linked to the
/// ticket, so those blocks are named and left out). Tickets are created
/// with the event's status, priority, tags and custom fields; a Case when
/// the event names one. A refusal the block expects, or that its event
/// gets offline too, is marked as such.
pub async fn feed_tests(
    program: &Program,
    tests: &[TestCase],
    agent: Agent<'_>,
    zd: ZendeskClient,
    sf: Option<SalesforceClient>,
    run_id: &str,
    say: &(dyn Fn(String) + Sync),
) -> Result<Fed, String> {
    let mut fed = Fed::default();
    let mut picked = Vec::new();
    for case in tests.iter().filter(|c| plan::agent_turn(c).is_ok()) {
        let at = plan::place(program, case);
        match plan::replayable(case) {
            Ok(()) => picked.push((case, at)),
            Err(why) => say(format!("  - test {} ({at}) left out: {why}", case.name)),
        }
    }
    if picked.is_empty() {
        say("  no agent turns to send: the project has no test block whose event is an agent turn on a ticket (\"kind\": \"agent_turn\", docs/EVENTS.md) that the demo can replay; add a `test` block with one (docs/LANGUAGE.md, section 11) to see its rules act here".into());
        return Ok(fed);
    }
    let mut sent = Vec::new();
    for (n, (case, at)) in picked.iter().enumerate() {
        let plan = plan::plan(program, case, &format!("l3map demo: {}", case.name), &[]);
        let key = format!("l3map-demo-{run_id}-{n}");
        let t = zd
            .create_ticket(&plan.ticket, Some(&key))
            .await
            .map_err(|e| format!("creating the ticket of test {} ({at}): {e}", case.name))?;
        fed.tickets_created += 1;
        let case_id =
            match (&sf, plan.wants_case) {
                (Some(sf), true) => {
                    let mut f = plan::case_fields(case);
                    f.entry("Subject")
                        .or_insert_with(|| json!(format!("l3map demo: {}", case.name)));
                    f.entry("Origin").or_insert_with(|| json!("Web"));
                    Some(sf.create("Case", &f).await.map_err(|e| {
                        format!("creating the Case of test {} ({at}): {e}", case.name)
                    })?)
                }
                _ => None,
            };
        say(format!(
            "  + ticket {} created from test {} ({at})",
            t.id, case.name
        ));
        sent.push((t.id, case_id, plan.turn));
    }
    let http = reqwest::Client::new();
    for (n, ((case, _), (ticket, case_id, turn))) in picked.iter().zip(&sent).enumerate() {
        let turn_id = format!("demo-{run_id}-{n}");
        let (accepted, refused) = agent
            .turn(&http, turn, &turn_id, *ticket, case_id.as_deref())
            .await?;
        fed.turns += 1;
        say(format!(
            "  > agent turn on ticket {ticket} (test {}): {} -> {accepted} action(s)",
            case.name,
            turn.get("intent").and_then(Json::as_str).unwrap_or("?"),
        ));
        for (what, reason) in refused {
            let expected = case
                .expects
                .iter()
                .any(|e| expects_refusal(&e.what, &what, &reason));
            let note = if expected {
                " (the test expects this)"
            } else if refused_offline(program, case).contains(&what) {
                " (its test's event is refused this too, offline)"
            } else {
                ""
            };
            say(format!("  x refused {what}: {reason}{note}"));
            fed.refused.push((what, reason));
        }
    }
    Ok(fed)
}

/// Whether a test block's `expect` line asks for this refusal, as `l3map
/// test` reads it: `expect refused "text"` by its text, and `expect sku
/// TABLE none` by the table's refused match (the agent is told to ask).
fn expects_refusal(e: &Expectation, what: &str, reason: &str) -> bool {
    match e {
        Expectation::Refused { text } => {
            what.contains(text.as_str()) || reason.contains(text.as_str())
        }
        Expectation::Sku {
            table,
            product: None,
        } => what.starts_with(&format!("sku {table}:")),
        _ => false,
    }
}

/// What the block's own event is refused when decided offline, as `l3map
/// test` decides it: a live refusal among these comes from the example
/// itself, one not among them from what the live run could not see.
fn refused_offline(program: &Program, case: &TestCase) -> Vec<String> {
    match crate::eval::testing::test_event(&case.name, &case.event) {
        Ok(ev) => crate::eval::decide::decide(program, &ev)
            .refused
            .into_iter()
            .map(|r| r.what)
            .collect(),
        Err(_) => Vec::new(),
    }
}
