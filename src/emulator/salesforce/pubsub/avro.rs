//! The Avro schema of each object's change event and the encoding of one
//! event, in the shape Salesforce sends over the Pub/Sub API: a record
//! named `<Object>ChangeEvent` (custom: `Foo__ChangeEvent`) in namespace
//! `com.sforce.eventbus`, whose first field is the `ChangeEventHeader`
//! record and whose other fields are the object's fields as unions with
//! null (unchanged fields are null). A compound field (Contact `Name`:
//! FirstName, LastName) is a nested record.
//! <https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_message_structure.htm>

use super::super::schema::{FieldType, ObjectSchema};
use super::super::store::parse_stamp;
use super::super::Record;
use super::bitmap;
use apache_avro::types::Value;
use apache_avro::Schema;
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;

/// `changeType` symbols, in the enum's order.
pub const CHANGE_TYPES: [&str; 10] = [
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
];

/// System fields a change event leaves out (the record Id travels in
/// `recordIds`).
const LEFT_OUT: [&str; 3] = ["Id", "IsDeleted", "SystemModstamp"];

/// One top-level position of an event schema after the header.
#[derive(Debug, Clone)]
pub enum Slot {
    Field(String, FieldType),
    /// A compound field and its parts, in nested-record order.
    Compound(String, Vec<(String, FieldType)>),
}

impl Slot {
    fn name(&self) -> &str {
        match self {
            Slot::Field(n, _) | Slot::Compound(n, _) => n,
        }
    }
}

/// An object's change event schema.
#[derive(Debug, Clone)]
pub struct EventSchema {
    pub object: String,
    /// `/data/AccountChangeEvent`.
    pub topic: String,
    pub json: String,
    pub avro: Schema,
    /// Stable for as long as the object's fields are: the schema's Avro
    /// (Rabin) fingerprint, which changes when a field does.
    pub id: String,
    /// The object's Id prefix (`001`), for overflow events' `001*`.
    pub key_prefix: String,
    /// Positions 1.. (position 0 is the header).
    slots: Vec<Slot>,
}

/// `Account` -> `AccountChangeEvent`, `Foo__c` -> `Foo__ChangeEvent`.
pub fn event_name(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(base) => format!("{base}__ChangeEvent"),
        None => format!("{object}ChangeEvent"),
    }
}

fn avro_type(t: FieldType) -> &'static str {
    match t {
        FieldType::Currency | FieldType::Double => "double",
        FieldType::Boolean => "boolean",
        // Epoch milliseconds, and days since the epoch.
        FieldType::DateTime => "long",
        FieldType::Date => "int",
        _ => "string",
    }
}

/// Salesforce names each field's type in its `doc` (`Data:DateTime`), which
/// is how a subscriber tells a date (`int` days) or a date-time (`long`
/// milliseconds) from a number.
fn nullable(name: &str, t: FieldType) -> Json {
    let doc = match t {
        FieldType::Date => "Data:Date",
        FieldType::DateTime => "Data:DateTime",
        _ => "Data",
    };
    json!({"name": name, "type": ["null", avro_type(t)], "doc": doc, "default": null})
}

fn header_json() -> Json {
    let strings = json!({"type": "array", "items": "string"});
    json!({"type": "record", "name": "ChangeEventHeader", "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": strings},
        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "symbols": CHANGE_TYPES}},
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": strings},
        {"name": "diffFields", "type": strings},
        {"name": "changedFields", "type": strings},
    ]})
}

impl EventSchema {
    pub fn for_object(obj: &ObjectSchema) -> Result<EventSchema, apache_avro::Error> {
        let has = |n: &str| obj.field(n).is_some();
        // Contact's Name is the person-name compound of its parts.
        let person = has("Name") && has("FirstName") && has("LastName");
        let mut slots = vec![];
        for f in &obj.fields {
            let n = f.name.as_str();
            if LEFT_OUT.contains(&n) || (person && (n == "FirstName" || n == "LastName")) {
                continue;
            }
            if person && n == "Name" {
                let parts = ["FirstName", "LastName"]
                    .iter()
                    .filter_map(|p| obj.field(p).map(|f| (f.name.clone(), f.ty)))
                    .collect();
                slots.push(Slot::Compound("Name".into(), parts));
            } else {
                slots.push(Slot::Field(f.name.clone(), f.ty));
            }
        }
        let mut fields = vec![
            json!({"name": "ChangeEventHeader", "type": header_json(), "doc": "Data:ChangeEventHeader"}),
        ];
        for s in &slots {
            fields.push(match s {
                Slot::Field(n, t) => nullable(n, *t),
                Slot::Compound(n, parts) => {
                    let inner: Vec<Json> = parts.iter().map(|(p, t)| nullable(p, *t)).collect();
                    json!({"name": n, "type": ["null", {"type": "record", "name": "Switchable_PersonName", "fields": inner}], "default": null})
                }
            });
        }
        let name = event_name(&obj.name);
        let schema = json!({"type": "record", "name": name, "namespace": "com.sforce.eventbus", "fields": fields});
        let text = schema.to_string();
        let avro = Schema::parse_str(&text)?;
        let id = avro.fingerprint::<apache_avro::rabin::Rabin>().to_string();
        Ok(EventSchema {
            object: obj.name.clone(),
            topic: format!("/data/{name}"),
            json: text,
            avro,
            id,
            key_prefix: obj.key_prefix.clone(),
            slots,
        })
    }

    /// The header bitmap list for `names` (field names of the object):
    /// the top-level bitmap, then one `P-0x…` per compound with parts named.
    pub fn bitmaps(&self, names: &BTreeSet<String>) -> Vec<String> {
        let mut top = vec![];
        let mut nested = vec![];
        for (i, s) in self.slots.iter().enumerate() {
            let pos = i + 1;
            match s {
                Slot::Field(n, _) if names.contains(n) => top.push(pos),
                Slot::Field(..) => {}
                Slot::Compound(n, parts) => {
                    let hit: Vec<usize> = parts
                        .iter()
                        .enumerate()
                        .filter(|(_, (p, _))| names.contains(p))
                        .map(|(j, _)| j)
                        .collect();
                    if names.contains(n) || !hit.is_empty() {
                        top.push(pos);
                    }
                    if let Some(b) = bitmap::encode(&hit) {
                        nested.push(format!("{pos}-{b}"));
                    }
                }
            }
        }
        bitmap::encode(&top).into_iter().chain(nested).collect()
    }

    /// The Avro binary of one event: `fields` holds the values the event
    /// carries (others are null).
    pub fn encode(&self, header: &Header, fields: &Record) -> Result<Vec<u8>, apache_avro::Error> {
        let mut rec = vec![("ChangeEventHeader".to_string(), header.value())];
        for s in &self.slots {
            let v = match s {
                Slot::Field(n, t) => union(fields.get(n).and_then(|j| to_avro(j, *t))),
                Slot::Compound(_, parts) => {
                    let inner: Vec<(String, Value)> = parts
                        .iter()
                        .map(|(p, t)| {
                            (p.clone(), union(fields.get(p).and_then(|j| to_avro(j, *t))))
                        })
                        .collect();
                    let any = inner.iter().any(|(_, v)| !matches!(v, Value::Union(0, _)));
                    union(any.then_some(Value::Record(inner)))
                }
            };
            rec.push((s.name().to_string(), v));
        }
        apache_avro::writer::datum::GenericDatumWriter::builder(&self.avro)
            .build()?
            .write_value_to_vec(Value::Record(rec))
    }
}

fn union(v: Option<Value>) -> Value {
    match v {
        Some(v) => Value::Union(1, Box::new(v)),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// A record value in its Avro form; `None` for null or a value that does
/// not fit the field's type.
fn to_avro(v: &Json, t: FieldType) -> Option<Value> {
    match (avro_type(t), v) {
        (_, Json::Null) => None,
        ("double", Json::Number(n)) => n.as_f64().map(Value::Double),
        ("boolean", Json::Bool(b)) => Some(Value::Boolean(*b)),
        ("long", Json::String(s)) => parse_stamp(s).map(|t| Value::Long(t.as_millisecond())),
        ("int", Json::String(s)) => {
            let d: jiff::civil::Date = s.parse().ok()?;
            let days = (d - jiff::civil::date(1970, 1, 1)).get_days();
            Some(Value::Int(days))
        }
        ("string", Json::String(s)) => Some(Value::String(s.clone())),
        ("string", other) => Some(Value::String(other.to_string())),
        _ => None,
    }
}

/// Decodes one event's payload with the schema it was written with (as a
/// subscriber does with the schema `GetSchema` returns).
pub fn decode(schema: &Schema, payload: &[u8]) -> Result<Value, apache_avro::Error> {
    apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()?
        .read_value(&mut &payload[..])
}

/// The `ChangeEventHeader` of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub entity_name: String,
    pub record_ids: Vec<String>,
    /// One of [`CHANGE_TYPES`].
    pub change_type: &'static str,
    pub change_origin: String,
    pub transaction_key: String,
    pub sequence_number: i32,
    pub commit_timestamp: i64,
    pub commit_number: i64,
    pub commit_user: String,
    pub nulled_fields: Vec<String>,
    pub diff_fields: Vec<String>,
    pub changed_fields: Vec<String>,
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

impl Header {
    fn value(&self) -> Value {
        let idx = CHANGE_TYPES
            .iter()
            .position(|c| *c == self.change_type)
            .unwrap_or(0);
        Value::Record(vec![
            ("entityName".into(), Value::String(self.entity_name.clone())),
            ("recordIds".into(), strings(&self.record_ids)),
            (
                "changeType".into(),
                Value::Enum(idx as u32, CHANGE_TYPES[idx].to_string()),
            ),
            (
                "changeOrigin".into(),
                Value::String(self.change_origin.clone()),
            ),
            (
                "transactionKey".into(),
                Value::String(self.transaction_key.clone()),
            ),
            ("sequenceNumber".into(), Value::Int(self.sequence_number)),
            ("commitTimestamp".into(), Value::Long(self.commit_timestamp)),
            ("commitNumber".into(), Value::Long(self.commit_number)),
            ("commitUser".into(), Value::String(self.commit_user.clone())),
            ("nulledFields".into(), strings(&self.nulled_fields)),
            ("diffFields".into(), strings(&self.diff_fields)),
            ("changedFields".into(), strings(&self.changed_fields)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::schema::Schema as OrgSchema;
    use super::*;

    fn header(kind: &'static str, changed: Vec<String>) -> Header {
        Header {
            entity_name: "Contact".into(),
            record_ids: vec!["0035e000000001AAA".into()],
            change_type: kind,
            change_origin: "com/salesforce/api/rest/64.0;client=l3map".into(),
            transaction_key: "t-1".into(),
            sequence_number: 1,
            commit_timestamp: 1_700_000_000_000,
            commit_number: 7,
            commit_user: "0055e0000000001AAA".into(),
            nulled_fields: vec![],
            diff_fields: vec![],
            changed_fields: changed,
        }
    }

    #[test]
    fn an_event_round_trips_through_the_schema_get_schema_returns() {
        let org = OrgSchema::standard();
        let contact = EventSchema::for_object(org.object("Contact").unwrap()).unwrap();
        assert_eq!(contact.topic, "/data/ContactChangeEvent");
        let names: BTreeSet<String> = ["FirstName", "Email", "LastModifiedDate"]
            .map(String::from)
            .into();
        let changed = contact.bitmaps(&names);
        let mut fields = Record::new();
        fields.insert("FirstName".into(), json!("Ana"));
        fields.insert("Email".into(), json!("ana@example.com"));
        fields.insert(
            "LastModifiedDate".into(),
            json!("2026-12-06T10:00:00.000+0000"),
        );
        let bytes = contact
            .encode(&header("UPDATE", changed.clone()), &fields)
            .unwrap();

        // Decoded the way a client does: from the JSON GetSchema returns.
        let schema = Schema::parse_str(&contact.json).unwrap();
        let v = decode(&schema, &bytes).unwrap();
        let Value::Record(rec) = v else {
            panic!("a record")
        };
        let get = |k: &str| rec.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("Email"),
            Some(Value::Union(
                1,
                Box::new(Value::String("ana@example.com".into()))
            ))
        );
        assert_eq!(
            get("AccountId"),
            Some(Value::Union(0, Box::new(Value::Null)))
        );
        let mut expanded = bitmap::expand(&schema, &changed);
        expanded.sort();
        assert_eq!(
            expanded,
            vec!["Email", "LastModifiedDate", "Name", "Name.FirstName"]
        );
        let Some(Value::Record(h)) = get("ChangeEventHeader") else {
            panic!("header")
        };
        assert!(h.contains(&("changeType".into(), Value::Enum(1, "UPDATE".into()))));
    }

    #[test]
    fn schema_ids_are_stable_and_differ_by_object() {
        let org = OrgSchema::standard();
        let a1 = EventSchema::for_object(org.object("Account").unwrap()).unwrap();
        let a2 = EventSchema::for_object(org.object("Account").unwrap()).unwrap();
        let c = EventSchema::for_object(org.object("Case").unwrap()).unwrap();
        assert_eq!(a1.id, a2.id);
        assert_ne!(a1.id, c.id);
        assert_eq!(event_name("Foo__c"), "Foo__ChangeEvent");
    }
}
