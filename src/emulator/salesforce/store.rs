//! The records in memory, the timestamps Salesforce writes, and the seed.

use super::ids;
use super::pubsub::{Kind, StoreChange};
use super::schema::{ObjectSchema, Schema};
use super::{lock, Handle, Record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// Records by object, then by 18-character Id (which sorts in creation
/// order, since the serial is the Id's tail).
#[derive(Default)]
pub(super) struct Store {
    pub(super) records: BTreeMap<String, BTreeMap<String, Record>>,
    serial: u64,
    case_number: u64,
    /// Changes made since the last publish: the caller commits them to the
    /// Pub/Sub bus with its origin (`Emu::commit`).
    pub(super) journal: Vec<StoreChange>,
}

/// The org's records and the counters new Ids and CaseNumbers come from,
/// as `l3map emulate --state` keeps them across restarts. The schema is
/// not kept: it comes from the mappings at every start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SalesforceState {
    records: BTreeMap<String, BTreeMap<String, Record>>,
    serial: u64,
    case_number: u64,
}

impl Handle {
    /// Every record of every object, as they are now.
    pub fn state(&self) -> SalesforceState {
        let store = lock(&self.state.store);
        SalesforceState {
            records: store.records.clone(),
            serial: store.serial,
            case_number: store.case_number,
        }
    }

    /// Replaces the records (the seed included) with `state`.
    pub fn restore(&self, state: SalesforceState) {
        let mut store = lock(&self.state.store);
        store.records = state.records;
        store.serial = state.serial;
        store.case_number = state.case_number;
        store.journal.clear();
    }
}

impl Store {
    /// Accepts the 15- or the 18-character form of an Id.
    pub(super) fn find(&self, object: &str, id: &str) -> Option<&Record> {
        // Every spelling Salesforce accepts: 15 characters, or 18 in any
        // case (records are kept under their canonical 18-character Id).
        let m = self.records.get(object)?;
        m.get(id)
            .or_else(|| m.get(&crate::connectors::salesforce_id::canonical(id)?))
    }

    pub(super) fn canonical_id(&self, object: &str, id: &str) -> Option<String> {
        self.find(object, id)
            .and_then(|r| r.get("Id"))
            .and_then(Json::as_str)
            .map(str::to_string)
    }

    pub(super) fn exists_anywhere(&self, targets: &[String], id: &str) -> bool {
        targets.iter().any(|t| self.find(t, id).is_some())
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.serial += 1;
        ids::make(prefix, self.serial)
    }

    /// Inserts `fields` as a new record with system fields set.
    pub(super) fn create(&mut self, obj: &ObjectSchema, mut fields: Record) -> String {
        let id = self.new_id(&obj.key_prefix);
        let now = Json::String(now_stamp());
        fields.insert("Id".into(), Json::String(id.clone()));
        for f in &obj.fields {
            if fields.contains_key(&f.name) {
                continue;
            }
            let v = match f.name.as_str() {
                "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => now.clone(),
                "IsDeleted" => Json::Bool(false),
                "CaseNumber" => {
                    self.case_number += 1;
                    Json::String(format!("{:08}", 1000 + self.case_number))
                }
                _ => f.default.clone(),
            };
            fields.insert(f.name.clone(), v);
        }
        self.journal.push(StoreChange {
            object: obj.name.clone(),
            id: id.clone(),
            kind: Kind::Create,
            fields: fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            changed: Default::default(),
            nulled: Default::default(),
        });
        self.records
            .entry(obj.name.clone())
            .or_default()
            .insert(id.clone(), fields);
        id
    }

    /// Removes a record (either Id form); whether it was there.
    pub(super) fn delete(&mut self, object: &str, id: &str) -> bool {
        let Some(id) = self.canonical_id(object, id) else {
            return false;
        };
        if self
            .records
            .get_mut(object)
            .and_then(|m| m.remove(&id))
            .is_none()
        {
            return false;
        }
        self.journal.push(StoreChange {
            object: object.into(),
            id,
            kind: Kind::Delete,
            fields: Record::new(),
            changed: Default::default(),
            nulled: Default::default(),
        });
        true
    }

    /// Merges `changes` into the record and stamps the modification.
    pub(super) fn update(&mut self, object: &str, id: &str, changes: Record) -> bool {
        let Some(rec) = self.records.get_mut(object).and_then(|m| m.get_mut(id)) else {
            return false;
        };
        let now = now_stamp();
        // What the change event carries: the fields whose value changed,
        // and LastModifiedDate, which every update changes.
        let mut change = StoreChange {
            object: object.into(),
            id: id.into(),
            kind: Kind::Update,
            fields: Record::new(),
            changed: Default::default(),
            nulled: Default::default(),
        };
        for (k, v) in &changes {
            if rec.get(k).unwrap_or(&Json::Null) != v {
                change.changed.insert(k.clone());
                if v.is_null() {
                    change.nulled.insert(k.clone());
                } else {
                    change.fields.insert(k.clone(), v.clone());
                }
            }
        }
        rec.extend(changes);
        for f in ["LastModifiedDate", "SystemModstamp"] {
            rec.insert(f.into(), Json::String(now.clone()));
        }
        change.changed.insert("LastModifiedDate".into());
        change
            .fields
            .insert("LastModifiedDate".into(), Json::String(now));
        self.journal.push(change);
        true
    }
}

/// Salesforce's REST timestamp form: milliseconds and `+0000`.
fn now_stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// Parses `2026-11-11T10:00:00Z`, `...00.000+0000` and `...00-08:00`.
pub(super) fn parse_stamp(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    // `+0000` (no colon) is what Salesforce writes; jiff wants `+00:00`.
    let b = s.as_bytes();
    let n = b.len();
    if n > 5 && matches!(b[n - 5], b'+' | b'-') && b[n - 4..].iter().all(u8::is_ascii_digit) {
        let fixed = format!("{}:{}", &s[..n - 2], &s[n - 2..]);
        return fixed.parse().ok();
    }
    None
}

/// A few Accounts, Contacts and Cases, with picklist values taken from
/// the schema so seeded records always pass its own validation.
pub(super) fn seed(schema: &Schema, store: &mut Store) {
    let (Some(account), Some(contact), Some(case)) = (
        schema.object("Account"),
        schema.object("Contact"),
        schema.object("Case"),
    ) else {
        return;
    };
    let pick = |obj: &ObjectSchema, field: &str, i: usize| -> Json {
        obj.field(field)
            .filter(|f| !f.picklist.is_empty())
            .map(|f| json!(f.picklist[i % f.picklist.len()]))
            .unwrap_or(Json::Null)
    };
    let names = ["Nimbus Analytics", "Acme Payments", "Globex Retail"];
    let values = [120_000.0, 64_000.0, 9_500.0];
    let renewals = ["2027-06-30", "2027-03-31", "2026-12-31"];
    let people = [("Ana", "Souza"), ("Ben", "Okafor"), ("Chloe", "Martin")];
    for i in 0..3 {
        let mut a = Record::new();
        a.insert("Name".into(), json!(names[i]));
        a.insert("SLA_Tier__c".into(), pick(account, "SLA_Tier__c", i));
        a.insert("Contract_Value__c".into(), json!(values[i]));
        a.insert("Renewal_Date__c".into(), json!(renewals[i]));
        retain_known(account, &mut a);
        let account_id = store.create(account, a);

        let (first, last) = people[i];
        let mut c = Record::new();
        c.insert("FirstName".into(), json!(first));
        c.insert("LastName".into(), json!(last));
        c.insert("Name".into(), json!(format!("{first} {last}")));
        c.insert(
            "Email".into(),
            json!(format!("{}@example.com", first.to_lowercase())),
        );
        c.insert("AccountId".into(), json!(account_id));
        c.insert("KYC_Status__c".into(), pick(contact, "KYC_Status__c", i));
        retain_known(contact, &mut c);
        let contact_id = store.create(contact, c);

        let mut k = Record::new();
        k.insert("Subject".into(), json!(format!("Seeded case {}", i + 1)));
        k.insert("Status".into(), pick(case, "Status", i));
        k.insert("Priority".into(), pick(case, "Priority", i));
        k.insert("AccountId".into(), json!(account_id));
        k.insert("ContactId".into(), json!(contact_id));
        retain_known(case, &mut k);
        store.create(case, k);
    }
}

fn retain_known(obj: &ObjectSchema, r: &mut Record) {
    r.retain(|k, v| obj.field(k).is_some() && !v.is_null());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_parse_in_every_salesforce_form() {
        for s in [
            "2026-11-11T10:00:00Z",
            "2026-11-11T10:00:00.000+0000",
            "2026-11-11T02:00:00-08:00",
        ] {
            assert!(parse_stamp(s).is_some(), "{s}");
        }
        assert!(parse_stamp(&now_stamp()).is_some());
        assert!(parse_stamp("2026-11-11").is_none());
    }
}
