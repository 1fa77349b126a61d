//! Salesforce's records and answers as the API sends them.

use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// A record as the API returns it.
pub type Record = Map<String, Json>;

/// sObject Collections take at most 200 records per request.
pub const BATCH_LIMIT: usize = 200;

/// The org's daily API usage, from `Sforce-Limit-Info: api-usage=N/L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub limit: u64,
}

impl ApiUsage {
    pub fn parse(header: &str) -> Option<ApiUsage> {
        let v = header
            .split(',')
            .find_map(|part| part.trim().strip_prefix("api-usage="))?;
        let (used, limit) = v.split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            limit: limit.trim().parse().ok()?,
        })
    }

    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// One record's outcome in an sObject Collections request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SaveResult {
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<RecordError>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordError {
    #[serde(rename = "statusCode", default)]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// A write in a batch: which record, and the fields to set.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpdate {
    pub object: String,
    pub id: String,
    pub fields: Record,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PicklistValue {
    pub value: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DescribeField {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub createable: bool,
    #[serde(rename = "picklistValues", default)]
    pub picklist_values: Vec<PicklistValue>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Describe {
    pub name: String,
    pub fields: Vec<DescribeField>,
}

impl Describe {
    pub fn field(&self, name: &str) -> Option<&DescribeField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// What a query returned: every page, concatenated.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub total_size: u64,
    pub records: Vec<Record>,
}

/// One page of a query's answer.
#[derive(Deserialize)]
pub(super) struct QueryPage {
    #[serde(rename = "totalSize", default)]
    pub(super) total_size: u64,
    #[serde(default = "yes")]
    pub(super) done: bool,
    #[serde(rename = "nextRecordsUrl", default)]
    pub(super) next_records_url: Option<String>,
    #[serde(default)]
    pub(super) records: Vec<Record>,
}

fn yes() -> bool {
    true
}
