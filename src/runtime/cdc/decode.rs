//! One change event's Avro payload, decoded with its writer's schema, into
//! the runtime's [`CrmChange`].
//!
//! The payload is the raw Avro binary of the event's schema (fetched by
//! `GetSchema`, cached by id): a `ChangeEventHeader` record
//! (https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm),
//! then every field of the record, `null` unless it changed (and on a
//! create, unless it is set). Compound fields (`Name`, addresses) are
//! nested records, flattened here into the names SOQL and REST use.

use super::bitmap::{self, field_name, BitmapError, Records};
use crate::runtime::links::{ChangeType, CrmChange};
use apache_avro::schema::RecordSchema;
use apache_avro::types::Value;
use apache_avro::Schema;
use serde_json::{Map, Value as Json};

/// A decoded event: a change to pass on, a gap to heal by reading the
/// records again, or an overflow to heal by a catch-up poll.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Change(CrmChange),
    /// `GAP_CREATE`, `GAP_UPDATE`, `GAP_DELETE`, `GAP_UNDELETE`: the ids are
    /// known, the values are not (`fields` is empty).
    Gap(CrmChange),
    /// `GAP_OVERFLOW`: more changes in one transaction than events are
    /// sent for; which records changed is unknown.
    Overflow(CrmChange),
}

impl Decoded {
    pub fn change(&self) -> &CrmChange {
        match self {
            Decoded::Change(c) | Decoded::Gap(c) | Decoded::Overflow(c) => c,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the payload does not match its schema: {0}")]
    Avro(String),
    #[error("the schema is not a record schema")]
    NotARecord,
    #[error("the event has no ChangeEventHeader.{0}")]
    Header(&'static str),
    #[error("unknown changeType {0:?}")]
    ChangeType(String),
    #[error("ChangeEventHeader.{field}: {error}")]
    Bitmap {
        field: &'static str,
        error: BitmapError,
    },
}

/// Decodes `payload`, written with `schema`, for `connection`.
pub fn decode(schema: &Schema, payload: &[u8], connection: &str) -> Result<Decoded, DecodeError> {
    let Schema::Record(record) = schema else {
        return Err(DecodeError::NotARecord);
    };
    let value = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .and_then(|r| r.read_value(&mut &payload[..]))
        .map_err(|e| DecodeError::Avro(e.to_string()))?;
    let Value::Record(values) = value else {
        return Err(DecodeError::NotARecord);
    };
    let records = Records::of(schema);
    let header = values
        .iter()
        .find(|(k, _)| k == "ChangeEventHeader")
        .map(|(_, v)| unwrap_union(v))
        .ok_or(DecodeError::Header("(the header itself)"))?;
    let Value::Record(header) = header else {
        return Err(DecodeError::Header("(the header itself)"));
    };
    let get = |name: &'static str| {
        header
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| unwrap_union(v))
    };
    let text = |name: &'static str| -> Option<String> {
        match get(name)? {
            Value::String(s) | Value::Enum(_, s) => Some(s.clone()),
            _ => None,
        }
    };
    let number = |name: &'static str| -> Option<i64> {
        match get(name)? {
            Value::Int(n) => Some(i64::from(*n)),
            Value::Long(n) | Value::TimestampMillis(n) => Some(*n),
            _ => None,
        }
    };
    let strings = |name: &'static str| -> Vec<String> {
        match get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match unwrap_union(v) {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let object = text("entityName").ok_or(DecodeError::Header("entityName"))?;
    let kind = text("changeType").ok_or(DecodeError::Header("changeType"))?;
    let transaction = text("transactionKey").ok_or(DecodeError::Header("transactionKey"))?;
    let sequence = number("sequenceNumber").ok_or(DecodeError::Header("sequenceNumber"))?;
    let at = number("commitTimestamp")
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string())
        .ok_or(DecodeError::Header("commitTimestamp"))?;
    let expand = |field: &'static str| -> Result<Vec<String>, DecodeError> {
        bitmap::expand(record, &records, &strings(field))
            .map_err(|error| DecodeError::Bitmap { field, error })
    };
    let changed_raw = expand("changedFields")?;
    let nulled_raw = expand("nulledFields")?;
    let diff: Vec<String> = expand("diffFields")?
        .iter()
        .map(|n| field_name(n))
        .collect();
    let mut fields = Map::new();
    for (pos, (name, v)) in values.iter().enumerate() {
        if name == "ChangeEventHeader" {
            continue;
        }
        let field = record.fields.get(pos);
        match unwrap_union(v) {
            Value::Null => {}
            Value::Record(parts) => {
                // A compound field: its parts under their own names.
                for (part, pv) in parts {
                    if let Some(j) = json(unwrap_union(pv), None) {
                        fields.insert(field_name(&format!("{name}.{part}")), j);
                    }
                }
            }
            other => {
                if let Some(j) = json(other, field.and_then(|f| f.doc.as_deref())) {
                    fields.insert(name.clone(), j);
                }
            }
        }
    }
    // A field set to null says so only in nulledFields (every unchanged
    // field is null too); a diffField's value is a diff, not the value.
    for n in &nulled_raw {
        fields.insert(field_name(n), Json::Null);
    }
    for d in &diff {
        fields.remove(d);
    }
    let mut changed: Vec<String> = Vec::new();
    for n in changed_raw.iter().chain(&nulled_raw) {
        // A compound field's own bit names the whole; its parts say which.
        if records_has_parts(record, &records, n) {
            continue;
        }
        let f = field_name(n);
        if !changed.contains(&f) {
            changed.push(f);
        }
    }
    let change = CrmChange {
        connection: connection.to_string(),
        object,
        ids: strings("recordIds"),
        change_type: ChangeType::Update,
        fields,
        changed,
        key: format!("{transaction}:{sequence}"),
        at,
        origin: text("changeOrigin").filter(|o| !o.is_empty()),
    };
    let with = |t: ChangeType| CrmChange {
        change_type: t,
        ..change.clone()
    };
    Ok(match kind.as_str() {
        "CREATE" => Decoded::Change(with(ChangeType::Create)),
        "UPDATE" => Decoded::Change(with(ChangeType::Update)),
        "DELETE" => Decoded::Change(with(ChangeType::Delete)),
        "UNDELETE" => Decoded::Change(with(ChangeType::Undelete)),
        "GAP_CREATE" | "GAP_UPDATE" | "GAP_DELETE" | "GAP_UNDELETE" => {
            Decoded::Gap(with(ChangeType::Gap))
        }
        "GAP_OVERFLOW" => Decoded::Overflow(with(ChangeType::Gap)),
        _ => return Err(DecodeError::ChangeType(kind)),
    })
}

fn records_has_parts(record: &RecordSchema, records: &Records<'_>, name: &str) -> bool {
    !name.contains('.')
        && record
            .fields
            .iter()
            .find(|f| f.name == name)
            .is_some_and(|f| records.record_of(&f.schema).is_some())
}

fn unwrap_union(v: &Value) -> &Value {
    match v {
        Value::Union(_, inner) => unwrap_union(inner),
        other => other,
    }
}

/// A field's value as JSON. Salesforce sends dates and date-times in
/// epoch time (https://developer.salesforce.com/docs/atlas.en-us.api_streaming.meta/api_streaming/cdc_event_diff_pubsub_cometd.htm)
/// and names the type in the field's `doc` (`Data:Date`, `Data:DateTime`);
/// those become `2027-06-30` and RFC 3339, as REST answers them.
fn json(v: &Value, doc: Option<&str>) -> Option<Json> {
    let is = |t: &str| doc.is_some_and(|d| d.ends_with(&format!(":{t}")) || d == t);
    Some(match v {
        Value::Null => return None,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(n) if is("Date") => day(i64::from(*n))?,
        Value::Int(n) => Json::from(*n),
        Value::Long(n) if is("DateTime") => stamp(*n)?,
        Value::Long(n) if is("Date") => day(n.div_euclid(86_400_000))?,
        Value::Long(n) | Value::TimeMicros(n) => Json::from(*n),
        Value::TimestampMillis(n) => stamp(*n)?,
        Value::Float(f) => Json::from(f64::from(*f)),
        Value::Double(f) => Json::from(*f),
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Date(days) => day(i64::from(*days))?,
        Value::Array(items) => Json::Array(
            items
                .iter()
                .filter_map(|i| json(unwrap_union(i), None))
                .collect(),
        ),
        Value::Union(_, inner) => return json(inner, doc),
        _ => return None,
    })
}

/// Days since 1970-01-01 as REST writes a date: `2027-06-30`.
fn day(days: i64) -> Option<Json> {
    Some(Json::String(
        jiff::civil::date(1970, 1, 1)
            .checked_add(jiff::Span::new().days(days))
            .ok()?
            .to_string(),
    ))
}

fn stamp(ms: i64) -> Option<Json> {
    Some(Json::String(
        jiff::Timestamp::from_millisecond(ms).ok()?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Record as AvroRecord;

    const SCHEMA: &str = r#"{"type":"record","name":"AccountChangeEvent","namespace":"com.sforce.eventbus","fields":[
      {"name":"ChangeEventHeader","type":{"type":"record","name":"ChangeEventHeader","fields":[
        {"name":"entityName","type":"string"},
        {"name":"recordIds","type":{"type":"array","items":"string"}},
        {"name":"changeType","type":{"type":"enum","name":"ChangeType","symbols":["CREATE","UPDATE","DELETE","UNDELETE","GAP_CREATE","GAP_UPDATE","GAP_DELETE","GAP_UNDELETE","GAP_OVERFLOW","SNAPSHOT"]}},
        {"name":"changeOrigin","type":"string"},
        {"name":"transactionKey","type":"string"},
        {"name":"sequenceNumber","type":"int"},
        {"name":"commitTimestamp","type":"long"},
        {"name":"commitNumber","type":"long"},
        {"name":"commitUser","type":"string"},
        {"name":"nulledFields","type":{"type":"array","items":"string"}},
        {"name":"diffFields","type":{"type":"array","items":"string"}},
        {"name":"changedFields","type":{"type":"array","items":"string"}}]}},
      {"name":"Name","type":["null","string"],"default":null},
      {"name":"BillingAddress","type":["null",{"type":"record","name":"Address","fields":[
        {"name":"Street","type":["null","string"],"default":null},
        {"name":"City","type":["null","string"],"default":null}]}],"default":null},
      {"name":"SLA_Tier__c","type":["null","string"],"default":null},
      {"name":"Description","type":["null","string"],"default":null},
      {"name":"LastModifiedDate","type":["null","long"],"doc":"Data:DateTime","default":null},
      {"name":"NumberOfEmployees","type":["null","int"],"default":null}]}"#;

    pub(crate) struct Header<'a> {
        pub kind: &'a str,
        pub origin: &'a str,
        pub changed: Vec<&'a str>,
        pub nulled: Vec<&'a str>,
        pub diff: Vec<&'a str>,
    }

    fn strings(v: &[&str]) -> Value {
        Value::Array(v.iter().map(|s| Value::String(s.to_string())).collect())
    }

    /// An event as Salesforce encodes one: Avro binary of the schema.
    fn encode(h: Header<'_>, tier: Option<&str>, city: Option<&str>) -> (Schema, Vec<u8>) {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let Schema::Record(r) = &schema else { panic!() };
        let Schema::Record(hs) = &r.fields[0].schema else {
            panic!()
        };
        let symbols = [
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
        let idx = symbols.iter().position(|s| *s == h.kind).unwrap() as u32;
        let header = Value::Record(
            vec![
                ("entityName", Value::String("Account".into())),
                ("recordIds", strings(&["001000000000001AAA"])),
                ("changeType", Value::Enum(idx, h.kind.into())),
                ("changeOrigin", Value::String(h.origin.into())),
                ("transactionKey", Value::String("0002-abc".into())),
                ("sequenceNumber", Value::Int(3)),
                ("commitTimestamp", Value::Long(1_700_000_000_123)),
                ("commitNumber", Value::Long(42)),
                ("commitUser", Value::String("005000000000001AAA".into())),
                ("nulledFields", strings(&h.nulled)),
                ("diffFields", strings(&h.diff)),
                ("changedFields", strings(&h.changed)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        );
        let _ = hs;
        let opt = |v: Option<Value>| match v {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(v) => Value::Union(1, Box::new(v)),
        };
        let mut rec = AvroRecord::new(&schema).unwrap();
        rec.put("ChangeEventHeader", header);
        rec.put("Name", opt(None));
        rec.put(
            "BillingAddress",
            opt(city.map(|c| {
                Value::Record(vec![
                    ("Street".into(), Value::Union(0, Box::new(Value::Null))),
                    (
                        "City".into(),
                        Value::Union(1, Box::new(Value::String(c.into()))),
                    ),
                ])
            })),
        );
        rec.put("SLA_Tier__c", opt(tier.map(|t| Value::String(t.into()))));
        rec.put(
            "Description",
            opt(Some(Value::String("@@ -1 +1 @@".into()))),
        );
        rec.put(
            "LastModifiedDate",
            opt(Some(Value::Long(1_700_000_000_000))),
        );
        rec.put("NumberOfEmployees", opt(None));
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(rec)
            .unwrap();
        (schema, bytes)
    }

    #[test]
    fn an_update_becomes_a_change_with_its_fields_named_as_salesforce_does() {
        // Fields: 0 header, 1 Name, 2 BillingAddress, 3 SLA_Tier__c,
        // 4 Description, 5 LastModifiedDate, 6 NumberOfEmployees.
        // Changed: BillingAddress (2) + its City, SLA_Tier__c (3),
        // Description (4, a diff), LastModifiedDate (5) = 0x3C; nulled:
        // NumberOfEmployees (6) = 0x40.
        let (schema, bytes) = encode(
            Header {
                kind: "UPDATE",
                origin: "com/salesforce/api/soap/60.0;client=SfdcInternalAPI/",
                changed: vec!["0x3C", "2-0x2"],
                nulled: vec!["0x40"],
                diff: vec!["0x10"],
            },
            Some("Enterprise"),
            Some("Paris"),
        );
        let Decoded::Change(c) = decode(&schema, &bytes, "crm").unwrap() else {
            panic!()
        };
        assert_eq!(c.connection, "crm");
        assert_eq!(c.object, "Account");
        assert_eq!(c.ids, ["001000000000001AAA"]);
        assert_eq!(c.change_type, ChangeType::Update);
        assert_eq!(c.key, "0002-abc:3");
        assert_eq!(c.at, "2023-11-14T22:13:20.123Z");
        assert_eq!(
            c.origin.as_deref(),
            Some("com/salesforce/api/soap/60.0;client=SfdcInternalAPI/")
        );
        assert_eq!(
            c.changed,
            [
                "SLA_Tier__c",
                "Description",
                "LastModifiedDate",
                "BillingCity",
                "NumberOfEmployees"
            ]
        );
        assert_eq!(
            Json::Object(c.fields),
            serde_json::json!({
                "SLA_Tier__c": "Enterprise",
                "BillingCity": "Paris",
                "LastModifiedDate": "2023-11-14T22:13:20Z",
                "NumberOfEmployees": null,
            })
        );
    }

    #[test]
    fn gaps_and_overflows_are_told_apart() {
        for (kind, gap) in [("GAP_UPDATE", true), ("GAP_OVERFLOW", false)] {
            let (schema, bytes) = encode(
                Header {
                    kind,
                    origin: "",
                    changed: vec![],
                    nulled: vec![],
                    diff: vec![],
                },
                None,
                None,
            );
            let d = decode(&schema, &bytes, "crm").unwrap();
            assert_eq!(d.change().change_type, ChangeType::Gap);
            assert_eq!(d.change().origin, None);
            assert_eq!(matches!(d, Decoded::Gap(_)), gap, "{kind}");
            assert_eq!(matches!(d, Decoded::Overflow(_)), !gap, "{kind}");
        }
    }

    #[test]
    fn dates_and_date_times_read_as_rest_writes_them() {
        // A date is days since 1970-01-01 (an `int`), a date-time epoch
        // milliseconds (a `long`), told from numbers by the field's `doc`.
        assert_eq!(
            json(&Value::Int(21214), Some("Data:Date")),
            Some(Json::from("2028-01-31"))
        );
        assert_eq!(
            json(&Value::Long(1_832_889_600_000), Some("Data:Date")),
            Some(Json::from("2028-01-31"))
        );
        assert_eq!(
            json(&Value::Int(21214), Some("Data")),
            Some(Json::from(21214))
        );
        assert_eq!(
            json(&Value::Long(1_700_000_000_000), Some("Data:DateTime")),
            Some(Json::from("2023-11-14T22:13:20Z"))
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        for junk in [
            &b""[..],
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x02a",
        ] {
            assert!(decode(&schema, junk, "crm").is_err());
        }
        let (schema, bytes) = encode(
            Header {
                kind: "UPDATE",
                origin: "",
                changed: vec!["0x1000"],
                nulled: vec![],
                diff: vec![],
            },
            None,
            None,
        );
        assert!(matches!(
            decode(&schema, &bytes, "crm"),
            Err(DecodeError::Bitmap {
                field: "changedFields",
                ..
            })
        ));
    }
}
