//! The ticket fields a project declares, as the IR keeps them.

use super::{FieldRef, Loc, Type};
use serde::{Deserialize, Serialize};

/// A custom Zendesk ticket field as `fields` declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketField {
    /// Always [`FieldRef::Zendesk`]: a decision borrows it as it borrows a
    /// mapping's target.
    pub field: FieldRef,
    #[serde(rename = "type")]
    pub ty: Type,
    pub label: Option<String>,
    pub loc: Loc,
}

impl TicketField {
    pub fn alias(&self) -> &str {
        match &self.field {
            FieldRef::Zendesk { field, .. } => field,
            FieldRef::Salesforce { path, .. } => path,
        }
    }

    pub fn connection(&self) -> &str {
        match &self.field {
            FieldRef::Zendesk { connection, .. } | FieldRef::Salesforce { connection, .. } => {
                connection
            }
        }
    }
}
