//! What the API answers, as types. The JSON on the wire is docs/AGENT_API.md's:
//! field order is the order of the fields here, so a struct that replaced a
//! `serde_json::Map` (which sorts its keys) lists its fields sorted.

use crate::connectors::salesforce::Record as SfRecord;
use crate::eval::decide::Refusal;
use crate::ir::Loc;
use crate::runtime::engine::Ingested;
use crate::runtime::links::resolve::Linked;
use crate::runtime::store::Accepted;
use serde::Serialize;
use serde_json::{Map, Value as JsonValue};

/// `POST /v1/turns`'s answer.
#[derive(Debug, Clone, Serialize)]
pub(super) struct TurnAnswer {
    pub turn: String,
    pub revision: String,
    pub duplicate: bool,
    /// The ticket as read for this turn: its id and l3map status.
    pub ticket: Option<SeenTicket>,
    /// The ticket's linked Salesforce records and through which link each
    /// was found; absent when the mappings declare no links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked: Option<Linked>,
    /// The decided actions as `l3map plan --format json` shows them, each
    /// with its `source`.
    pub accepted: Vec<JsonValue>,
    pub refused: Vec<Refused>,
    /// Actions this turn added to the outbox; a hand-off decided before is
    /// accepted again but queued once.
    pub queued: usize,
    pub handoff_comment: Option<String>,
    /// Fields the agent saw differently from Zendesk: decisions use
    /// Zendesk's values, the agent should refresh its view.
    pub stale_fields: Vec<Stale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The request's digest, which a retry with its turn id must match;
    /// never sent.
    #[serde(skip)]
    pub digest: [u8; 32],
    /// The answer another replica of the fleet gave this turn (JSON),
    /// sent as it is: this one only recorded that it was a duplicate.
    #[serde(skip)]
    pub replay: Option<JsonValue>,
    /// The event as decided, for what MCP's tools add to an answer (the
    /// statuses the ticket may move to); never sent.
    #[serde(skip)]
    pub event: Option<std::sync::Arc<crate::eval::event::Event>>,
}

/// A ticket as a turn read it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct SeenTicket {
    pub id: u64,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Refused {
    pub what: String,
    pub reason: String,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Stale {
    pub field: String,
    pub agent: JsonValue,
    pub zendesk: JsonValue,
}

/// What a turn found before it was decided: the ticket and the fields the
/// agent saw differently.
pub(super) struct Read {
    pub ticket: Option<SeenTicket>,
    pub linked: Option<Linked>,
    pub stale_fields: Vec<Stale>,
    pub digest: [u8; 32],
}

impl TurnAnswer {
    /// The answer to a turn the engine decided and recorded. `files` are
    /// the files of the revision that decided, for `source`; empty when a
    /// reload has replaced it since.
    pub fn new(event_id: &str, ingested: Ingested, read: Read, files: &[String]) -> TurnAnswer {
        let Ingested {
            accepted,
            revision,
            actions,
            refused,
        } = ingested;
        let Read {
            ticket,
            linked,
            stale_fields,
            digest,
        } = read;
        let queued = match accepted {
            Accepted::New { queued, .. } => queued,
            Accepted::Duplicate => {
                // Recorded before this process's memo of it: what was
                // decided then is in the store and the outbox; deciding
                // again on today's ticket would answer a different question.
                return TurnAnswer {
                    turn: event_id.to_string(),
                    revision,
                    duplicate: true,
                    ticket,
                    linked,
                    accepted: vec![],
                    refused: vec![],
                    queued: 0,
                    handoff_comment: None,
                    stale_fields,
                    message: Some(
                        "this turn was recorded earlier (before a restart, or over an hour ago); \
                         its actions were queued then and are not repeated"
                            .into(),
                    ),
                    digest,
                    replay: None,
                    event: None,
                };
            }
        };
        let handoff_comment = actions.iter().find_map(|a| a.comment.clone());
        let accepted = actions
            .into_iter()
            .map(|a| {
                let mut plan = a.plan;
                if let Some(obj) = plan.as_object_mut() {
                    obj.insert(
                        "source".into(),
                        source_of(&a.loc, files).map_or(JsonValue::Null, JsonValue::String),
                    );
                }
                plan
            })
            .collect();
        let refused = refused.into_iter().map(|r| refused_of(r, files)).collect();
        TurnAnswer {
            turn: event_id.to_string(),
            revision,
            duplicate: false,
            ticket,
            linked,
            accepted,
            refused,
            queued,
            handoff_comment,
            stale_fields,
            message: None,
            digest,
            replay: None,
            event: None,
        }
    }

    /// The answer another replica kept for this turn (`answer`, JSON),
    /// marked as a duplicate.
    pub fn replayed(event_id: &str, mut answer: JsonValue, digest: [u8; 32]) -> TurnAnswer {
        if let Some(o) = answer.as_object_mut() {
            o.insert("duplicate".into(), JsonValue::Bool(true));
        }
        TurnAnswer {
            turn: event_id.to_string(),
            revision: String::new(),
            duplicate: true,
            ticket: None,
            linked: None,
            accepted: vec![],
            refused: vec![],
            queued: 0,
            handoff_comment: None,
            stale_fields: vec![],
            message: None,
            digest,
            replay: Some(answer),
            event: None,
        }
    }
}

fn refused_of(r: Refusal, files: &[String]) -> Refused {
    Refused {
        source: r.loc.as_ref().and_then(|l| source_of(l, files)),
        what: r.what,
        reason: r.reason,
    }
}

/// `file:line:col`, as `l3map plan` shows it.
fn source_of(loc: &Loc, files: &[String]) -> Option<String> {
    let file = files.get(usize::try_from(loc.file).ok()?)?;
    Some(format!("{file}:{}:{}", loc.line, loc.col))
}

/// `GET /v1/context/{ticket}`'s answer.
#[derive(Debug, Serialize)]
pub(super) struct ContextAnswer {
    /// The Account's fields, without Salesforce's `attributes`.
    pub account: Option<SfRecord>,
    /// The Account's fields as the mappings translate them onto the ticket.
    pub account_as_ticket_fields: Option<Map<String, JsonValue>>,
    pub cached: Cached,
    /// The ticket's linked records and through which link each was found
    /// (absent when the mappings declare no links, or `?account=` named
    /// the Account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked: Option<Linked>,
    pub revision: String,
    pub ticket: ContextTicket,
}

#[derive(Debug, Serialize)]
pub(super) struct Cached {
    /// Whether the Account came from the 15-minute cache.
    pub account: Option<bool>,
    /// Always `false`: the ticket is read fresh.
    pub ticket: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct ContextTicket {
    /// The custom fields the mappings name, by their l3map names.
    pub fields: Map<String, JsonValue>,
    pub id: u64,
    pub priority: Option<String>,
    pub status: Option<String>,
    pub tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The answers were `json!` objects (keys sorted) before they were
    /// types: the types must write the same bytes.
    #[test]
    fn typed_answers_write_what_the_json_they_replaced_wrote() {
        let mut account = SfRecord::new();
        account.insert("Tier__c".into(), json!("Ent"));
        account.insert("Id".into(), json!("001A"));
        let mut fields = Map::new();
        fields.insert("plan".into(), json!("premium"));
        let typed = ContextAnswer {
            account: Some(account.clone()),
            account_as_ticket_fields: Some(fields.clone()),
            cached: Cached {
                account: Some(true),
                ticket: false,
            },
            linked: None,
            revision: "r1".into(),
            ticket: ContextTicket {
                fields: fields.clone(),
                id: 4211,
                priority: None,
                status: Some("open".into()),
                tags: vec!["vip".into()],
            },
        };
        let was = json!({
            "ticket": {"id": 4211, "status": "open", "priority": null, "tags": ["vip"], "fields": fields},
            "account": account,
            "account_as_ticket_fields": fields,
            "cached": {"ticket": false, "account": true},
            "revision": "r1",
        });
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            serde_json::to_string(&was).unwrap()
        );
        let seen = SeenTicket {
            id: 7,
            status: None,
        };
        assert_eq!(
            serde_json::to_string(&seen).unwrap(),
            serde_json::to_string(&json!({"id": 7, "status": null})).unwrap()
        );
    }

    #[test]
    fn sources_name_the_file_line_and_column() {
        let loc = Loc {
            file: 1,
            line: 7,
            col: 3,
            start: 0,
            end: 0,
        };
        let files = ["a.l3map".to_string(), "b.l3map".to_string()];
        assert_eq!(source_of(&loc, &files).as_deref(), Some("b.l3map:7:3"));
        assert_eq!(source_of(&loc, &files[..1]), None);
    }
}
