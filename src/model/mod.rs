//! The vocabulary every stage shares: the floor of the house. The checker,
//! the IR, evaluation, the runtime and the emulators all speak of connection
//! kinds, status categories, value types and event fields; they live here,
//! below all of them, so no stage reaches back up into the one before it.
//! Nothing here imports a stage; only [`symbols`] names [`crate::syntax`]
//! (spans, and the secret source as declared), since the symbol tables point
//! back at the declarations.

pub mod event;
mod suggest;
pub mod symbols;
mod ty;

pub use suggest::did_you_mean;
pub use symbols::{
    ConnInfo, Env, FieldInfo, FormFacts, LockedForms, SecretRef, StatusInfo, TableInfo,
};
pub use ty::{looks_like_date, Ty};

use serde::{Deserialize, Serialize};

/// What a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Zendesk,
    Salesforce,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Zendesk => "zendesk",
            Kind::Salesforce => "salesforce",
        }
    }
}

/// The category a status belongs to (Zendesk's five; a Salesforce status
/// is given one too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    New,
    Open,
    Pending,
    Hold,
    Solved,
}

impl Category {
    /// Each category's fill and stroke, as `l3map graph` and the ops
    /// console draw a status of it.
    pub const PALETTE: [(Category, &'static str, &'static str); 5] = [
        (Category::New, "#fef3c7", "#d97706"),
        (Category::Open, "#fee2e2", "#dc2626"),
        (Category::Pending, "#dbeafe", "#2563eb"),
        (Category::Hold, "#e5e7eb", "#374151"),
        (Category::Solved, "#dcfce7", "#16a34a"),
    ];

    pub const ALL: [(&'static str, Category); 5] = [
        ("new", Category::New),
        ("open", Category::Open),
        ("pending", Category::Pending),
        ("hold", Category::Hold),
        ("solved", Category::Solved),
    ];
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("open")
    }
}

/// Where a credential is read from: `env("VAR")` or `file("/path")`.
/// Serialised as the word written (`"env"`, `"file"`), as the IR always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Env,
    File,
}

impl SecretSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretSource::Env => "env",
            SecretSource::File => "file",
        }
    }
}
