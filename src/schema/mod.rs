//! The schema lockfile, `l3map.lock.json`: what the live Zendesk and
//! Salesforce instances hold (ticket fields and their options, custom
//! statuses, groups; the fields, picklists and updateability of the
//! Salesforce objects the mappings use), checked in next to the mappings so
//! `l3map check` can validate against the instance offline.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

mod consistent;
pub mod forms;
pub mod pull;
pub mod validate;

/// The file name, in a project's directory.
pub const LOCKFILE: &str = "l3map.lock.json";

/// Bumped on every incompatible change of the file's shape. Version 2
/// added ticket forms and each category's default custom status; a
/// version 1 file is still read (forms unknown: the form checks are
/// skipped, with a note).
pub const LOCK_VERSION: u32 = 2;

/// The versions this l3map reads.
pub const LOCK_VERSIONS_READ: [u32; 2] = [1, LOCK_VERSION];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub lock_version: u32,
    /// By connection name.
    #[serde(default)]
    pub zendesk: BTreeMap<String, ZendeskSchema>,
    #[serde(default)]
    pub salesforce: BTreeMap<String, SalesforceSchema>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskSchema {
    pub ticket_fields: Vec<TicketField>,
    #[serde(default)]
    pub custom_statuses: Vec<CustomStatus>,
    #[serde(default)]
    pub groups: Vec<Group>,
    /// The account's ticket forms and the custom statuses each offers
    /// (lock_version 2). `None`: not recorded (a version 1 file), so the
    /// form checks are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_forms: Option<Vec<TicketForm>>,
}

/// A ticket form (`GET /api/v2/ticket_forms`) and the custom statuses it
/// offers (`GET /api/v2/ticket_form_statuses`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketForm {
    pub id: u64,
    pub name: String,
    /// Inactive forms are kept (tickets may still use them) but a status
    /// table without `forms` applies only to the active ones.
    pub active: bool,
    /// The account's default form.
    #[serde(default)]
    pub default: bool,
    /// Sorted.
    pub custom_status_ids: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketField {
    pub id: u64,
    pub title: String,
    /// Zendesk's type: `text`, `tagger`, `decimal`, `checkbox`, `date`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// A drop-down's option values (tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomStatus {
    pub id: u64,
    pub agent_label: String,
    pub status_category: String,
    /// The default status of its category: a status given by category
    /// only resolves to it (lock_version 2; only Zendesk's
    /// `PUT /api/v2/custom_status/default` changes it, never l3map).
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceSchema {
    /// By object name (`Case`, `Account`, ...).
    pub objects: BTreeMap<String, SalesforceObject>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceObject {
    /// By field API name.
    pub fields: BTreeMap<String, SalesforceField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceField {
    /// Salesforce's type: `string`, `picklist`, `currency`, `date`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the integration user may write it.
    pub updateable: bool,
    /// Active picklist values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub picklist: Vec<String>,
}

/// Why a lockfile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: not a valid lockfile: {message} (regenerate it with `l3map schema pull`)")]
    Invalid { path: String, message: String },
    #[error("{path}: lock_version {found} is not supported (this l3map reads 1 and {LOCK_VERSION}); regenerate it with `l3map schema pull`")]
    Version { path: String, found: u32 },
}

impl Lockfile {
    /// Reads `text`, naming the JSON path of anything wrong.
    pub fn parse(path: &str, text: &str) -> Result<Lockfile, LockError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let lock: Lockfile =
            serde_path_to_error::deserialize(de).map_err(|e| LockError::Invalid {
                path: path.into(),
                message: match e.path().to_string().as_str() {
                    "." | "" | "?" => e.inner().to_string(),
                    at => format!("{at}: {}", e.inner()),
                },
            })?;
        if !LOCK_VERSIONS_READ.contains(&lock.lock_version) {
            return Err(LockError::Version {
                path: path.into(),
                found: lock.lock_version,
            });
        }
        if let Some(message) = consistent::problem(&lock) {
            return Err(LockError::Invalid {
                path: path.into(),
                message,
            });
        }
        Ok(lock)
    }

    /// The lockfile of the project in `dir`, if it has one.
    pub fn find(dir: &Path) -> Result<Option<Lockfile>, LockError> {
        let path = dir.join(LOCKFILE);
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => Lockfile::parse(&shown, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LockError::Io {
                path: shown,
                message: e.to_string(),
            }),
        }
    }

    /// Pretty JSON with sorted keys, so a pull that found nothing new
    /// leaves the checked-in file byte-identical.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_place_and_the_fix() {
        let e = Lockfile::parse(
            "l.json",
            r#"{"lock_version": 1, "zendesk": {"desk": {"ticket_fields": [{"id": "x"}]}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("zendesk.desk.ticket_fields[0].id"), "{e}");
        assert!(e.contains("l3map schema pull"), "{e}");
        let e = Lockfile::parse("l.json", r#"{"lock_version": 9}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lock_version 9"), "{e}");
        let e = Lockfile::parse("l.json", r#"{"lock_version": 1, "extra": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn a_version_1_file_is_still_read_with_forms_unknown() {
        let lock = Lockfile::parse(
            "l.json",
            r#"{"lock_version": 1, "zendesk": {"desk": {"ticket_fields": [],
                "custom_statuses": [{"id": 1, "agent_label": "Open", "status_category": "open"}]}}}"#,
        )
        .unwrap();
        let desk = &lock.zendesk["desk"];
        assert_eq!(desk.ticket_forms, None);
        assert!(!desk.custom_statuses[0].default);
    }

    #[test]
    fn round_trips() {
        let mut lock = Lockfile {
            lock_version: LOCK_VERSION,
            ..Lockfile::default()
        };
        lock.zendesk.insert(
            "desk".into(),
            ZendeskSchema {
                ticket_fields: vec![TicketField {
                    id: 360001234,
                    title: "SLA tier".into(),
                    kind: "tagger".into(),
                    options: vec!["enterprise".into()],
                }],
                custom_statuses: vec![CustomStatus {
                    id: 7,
                    agent_label: "Open".into(),
                    status_category: "open".into(),
                    default: true,
                }],
                ticket_forms: Some(vec![TicketForm {
                    id: 55,
                    name: "Billing".into(),
                    active: true,
                    default: false,
                    custom_status_ids: vec![7],
                }]),
                ..ZendeskSchema::default()
            },
        );
        assert_eq!(Lockfile::parse("l", &lock.to_json()).unwrap(), lock);
    }
}
