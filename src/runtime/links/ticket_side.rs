//! The Zendesk side of a ticket's links: the values a link's `on` can
//! compare (`ticket.id`, `organization.external_id`, `user.email`, a
//! ticket, organization or user field), read from one Tickets API answer
//! with the ticket's organization and requester sideloaded
//! (`GET /api/v2/tickets/{id}.json?include=organizations,users`: the
//! related records come as top-level `organizations` and `users` arrays,
//! <https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/>).

use crate::ir::{Link, ZdKey, ZdObject};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// An organization or a user, as far as a link reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Party {
    pub id: u64,
    pub external_id: Option<String>,
    /// Users only.
    pub email: Option<String>,
    /// `organization_fields` / `user_fields`.
    pub fields: Map<String, Json>,
}

/// What a ticket's links can compare.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketSide {
    pub id: u64,
    pub external_id: Option<String>,
    /// Custom field values by Zendesk field id.
    pub custom_fields: BTreeMap<u64, Json>,
    pub organization_id: Option<u64>,
    pub requester_id: Option<u64>,
    /// Present when the answer sideloaded it.
    pub organization: Option<Party>,
    pub requester: Option<Party>,
}

/// A link's Zendesk value for one ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    Value(String),
    /// The ticket has no such record or value (no organization, an empty
    /// field): nothing to look up, and nothing wrong.
    Absent(String),
}

impl TicketSide {
    /// From a Tickets API answer (`{"ticket": {...}}`, sideloads
    /// optional); `None` when it holds no ticket with an id.
    pub fn from_answer(v: &Json) -> Option<TicketSide> {
        let t = v.get("ticket")?;
        let id = t.get("id")?.as_u64()?;
        let custom_fields = t
            .get("custom_fields")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f.get("id")?.as_u64()?, f.get("value")?.clone())))
            .filter(|(_, v)| !v.is_null())
            .collect();
        let organization_id = t.get("organization_id").and_then(Json::as_u64);
        let requester_id = t.get("requester_id").and_then(Json::as_u64);
        let find = |list: &str, id: Option<u64>, fields: &str| {
            let id = id?;
            v.get(list)?
                .as_array()?
                .iter()
                .find(|p| p.get("id").and_then(Json::as_u64) == Some(id))
                .map(|p| party(p, fields))
        };
        Some(TicketSide {
            id,
            external_id: text(t.get("external_id")),
            custom_fields,
            organization: find("organizations", organization_id, "organization_fields"),
            requester: find("users", requester_id, "user_fields"),
            organization_id,
            requester_id,
        })
    }

    /// Whether `link` needs the sideloaded organization or requester (its
    /// key is more than the record's id, which the ticket carries).
    pub fn needs_party(link: &Link) -> bool {
        link.zendesk != ZdObject::Ticket && link.zendesk_key != ZdKey::Id
    }

    /// The value `link` compares for this ticket.
    pub fn key_value(&self, link: &Link) -> KeyValue {
        let (what, id, party) = match link.zendesk {
            ZdObject::Ticket => {
                return match &link.zendesk_key {
                    ZdKey::Id => KeyValue::Value(self.id.to_string()),
                    ZdKey::ExternalId => present(self.external_id.clone(), "no external_id"),
                    ZdKey::TicketField { name, id } => present(
                        self.custom_fields.get(id).and_then(|v| text(Some(v))),
                        &format!("no value in {name}"),
                    ),
                    other => KeyValue::Absent(format!("a ticket has no {other:?}")),
                }
            }
            ZdObject::Organization => ("organization", self.organization_id, &self.organization),
            ZdObject::User => ("requester", self.requester_id, &self.requester),
        };
        let Some(id) = id else {
            return KeyValue::Absent(format!("the ticket has no {what}"));
        };
        if link.zendesk_key == ZdKey::Id {
            return KeyValue::Value(id.to_string());
        }
        let Some(p) = party else {
            return KeyValue::Absent(format!("Zendesk did not return the ticket's {what} {id}"));
        };
        match &link.zendesk_key {
            ZdKey::ExternalId => present(
                p.external_id.clone(),
                &format!("{what} {id} has no external_id"),
            ),
            ZdKey::Email => present(p.email.clone(), &format!("{what} {id} has no email")),
            ZdKey::Field { key } => present(
                text(p.fields.get(key)),
                &format!("{what} {id} has no value in {key}"),
            ),
            other => KeyValue::Absent(format!("an {what} has no {other:?}")),
        }
    }
}

/// `organization.external_id`, `ticket.plan`: the Zendesk side of `on`.
pub fn zendesk_side(link: &Link) -> String {
    let obj = match link.zendesk {
        ZdObject::Ticket => "ticket",
        ZdObject::Organization => "organization",
        ZdObject::User => "user",
    };
    let key = match &link.zendesk_key {
        ZdKey::Id => "id".to_string(),
        ZdKey::ExternalId => "external_id".to_string(),
        ZdKey::Email => "email".to_string(),
        ZdKey::Field { key } => format!("fields.{key}"),
        ZdKey::TicketField { name, .. } => name.clone(),
    };
    format!("{obj}.{key}")
}

fn present(v: Option<String>, why: &str) -> KeyValue {
    match v {
        Some(v) => KeyValue::Value(v),
        None => KeyValue::Absent(why.to_string()),
    }
}

/// A value as text to compare: strings trimmed (empty is no value),
/// numbers as written.
fn text(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn party(p: &Json, fields: &str) -> Party {
    Party {
        id: p.get("id").and_then(Json::as_u64).unwrap_or_default(),
        external_id: text(p.get("external_id")),
        email: text(p.get("email")),
        fields: p
            .get(fields)
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Loc, Pick};
    use serde_json::json;

    pub(crate) fn link(zd: ZdObject, key: ZdKey, object: &str, field: &str) -> Link {
        Link {
            desk: "desk".into(),
            zendesk: zd,
            zendesk_key: key,
            crm: "crm".into(),
            object: object.into(),
            field: field.into(),
            pick: Pick::One,
            tickets: vec![],
            loc: Loc {
                file: 0,
                line: 3,
                col: 1,
                start: 0,
                end: 0,
            },
        }
    }

    #[test]
    fn values_come_from_the_ticket_and_its_sideloads() {
        let answer = json!({
            "ticket": {"id": 7, "organization_id": 40, "requester_id": 50, "external_id": null,
                       "custom_fields": [{"id": 9, "value": "X-1"}, {"id": 10, "value": null}]},
            "organizations": [{"id": 40, "external_id": "001A", "organization_fields": {"sf": "001B"}}],
            "users": [{"id": 50, "email": "ana@example.com"}, {"id": 51, "email": "x@y"}]
        });
        let side = TicketSide::from_answer(&answer).unwrap();
        let org = link(ZdObject::Organization, ZdKey::ExternalId, "Account", "Id");
        assert_eq!(side.key_value(&org), KeyValue::Value("001A".into()));
        let f = link(
            ZdObject::Organization,
            ZdKey::Field { key: "sf".into() },
            "Account",
            "Id",
        );
        assert_eq!(side.key_value(&f), KeyValue::Value("001B".into()));
        let user = link(ZdObject::User, ZdKey::Email, "Contact", "Email");
        assert_eq!(
            side.key_value(&user),
            KeyValue::Value("ana@example.com".into())
        );
        let t = link(ZdObject::Ticket, ZdKey::Id, "Case", "Zendesk_Ticket_Id__c");
        assert_eq!(side.key_value(&t), KeyValue::Value("7".into()));
        let tf = link(
            ZdObject::Ticket,
            ZdKey::TicketField {
                name: "order".into(),
                id: 10,
            },
            "Order__c",
            "Name",
        );
        assert!(matches!(side.key_value(&tf), KeyValue::Absent(_)));
        let ext = link(ZdObject::Ticket, ZdKey::ExternalId, "Case", "X__c");
        assert!(matches!(side.key_value(&ext), KeyValue::Absent(_)));
        assert_eq!(zendesk_side(&f), "organization.fields.sf");
    }

    #[test]
    fn a_ticket_without_an_organization_has_nothing_to_look_up() {
        let side = TicketSide::from_answer(&json!({"ticket": {"id": 7}})).unwrap();
        let org = link(ZdObject::Organization, ZdKey::ExternalId, "Account", "Id");
        assert_eq!(
            side.key_value(&org),
            KeyValue::Absent("the ticket has no organization".into())
        );
        assert!(TicketSide::needs_party(&org));
        assert!(TicketSide::from_answer(&json!({"tickets": []})).is_none());
    }
}
