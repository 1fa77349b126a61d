//! Salesforce's operations: records (read, create, update, delete), Case
//! comments and statuses, SOQL queries to their last page, sObject
//! Collections, and describes and Accounts behind their caches.

use super::super::error::ApiError;
use super::super::transport::Request;
use super::policy::{protocol, SF};
use super::types::{
    Describe, QueryPage, QueryResult, Record, RecordUpdate, SaveResult, BATCH_LIMIT,
};
use super::SalesforceClient;
use reqwest::Method;
use serde_json::{json, Value as Json};
use std::sync::Arc;

impl SalesforceClient {
    // ------------------------------------------------------------ operations

    /// One record; `fields` limits what is returned.
    pub async fn get(
        &self,
        object: &str,
        id: &str,
        fields: Option<&[&str]>,
    ) -> Result<Record, ApiError> {
        let mut call = self.call(
            Method::GET,
            format!("sobjects/{}/{}", seg(object)?, seg(id)?),
        );
        if let Some(f) = fields {
            call.query.push(("fields", f.join(",")));
        }
        self.json(call).await
    }

    /// Creates a record; returns its Id.
    pub async fn create(&self, object: &str, fields: &Record) -> Result<String, ApiError> {
        let body = Json::Object(fields.clone());
        let mut call = self.call(Method::POST, format!("sobjects/{}/", seg(object)?));
        call.body = Some(&body);
        let created: Json = self.json(call).await?;
        created
            .get("id")
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| protocol("the create answer has no id"))
    }

    /// Sets fields on one record (204 on success).
    /// Deletes one record (204 on success; Salesforce keeps it in the
    /// recycle bin).
    pub async fn delete(&self, object: &str, id: &str) -> Result<(), ApiError> {
        let call = self.call(
            Method::DELETE,
            format!("sobjects/{}/{}", seg(object)?, seg(id)?),
        );
        self.send(call).await.map(|_| ())
    }

    pub async fn update(&self, object: &str, id: &str, fields: &Record) -> Result<(), ApiError> {
        let body = Json::Object(fields.clone());
        let mut call = self.call(
            Method::PATCH,
            format!("sobjects/{}/{}", seg(object)?, seg(id)?),
        );
        call.body = Some(&body);
        self.send(call).await.map(|_| ())
    }

    /// Sets a Case's Status to a picklist value (the status's label).
    pub async fn set_case_status(&self, case_id: &str, status: &str) -> Result<(), ApiError> {
        let mut fields = Record::new();
        fields.insert("Status".into(), json!(status));
        self.update("Case", case_id, &fields).await
    }

    /// An internal comment on a Case (`IsPublished: false`): people see
    /// it, the customer does not.
    pub async fn create_case_comment(&self, case_id: &str, body: &str) -> Result<String, ApiError> {
        let mut fields = Record::new();
        fields.insert("ParentId".into(), json!(case_id));
        fields.insert("CommentBody".into(), json!(body));
        fields.insert("IsPublished".into(), json!(false));
        self.create("CaseComment", &fields).await
    }

    /// Runs a SOQL query and follows `nextRecordsUrl` to the last page,
    /// up to `max_query_pages`.
    pub async fn query(&self, soql: &str) -> Result<QueryResult, ApiError> {
        let mut call = self.call(Method::GET, "query".into());
        call.query.push(("q", soql.to_string()));
        let mut page: QueryPage = self.json(call).await?;
        let total_size = page.total_size;
        let mut records = std::mem::take(&mut page.records);
        let mut pages = 1;
        while let (false, Some(next)) = (page.done, page.next_records_url.take()) {
            if pages >= self.inner.cfg.max_query_pages {
                return Err(protocol(format!(
                    "the query has more than {pages} pages; narrow it (LIMIT, a selective WHERE)"
                )));
            }
            if !next.starts_with("/services/data/") {
                return Err(protocol("nextRecordsUrl is not a path on the instance"));
            }
            let call = Request::new(Method::GET, next);
            page = self.json(call).await?;
            records.append(&mut page.records);
            pages += 1;
        }
        Ok(QueryResult {
            total_size,
            records,
        })
    }

    /// Updates many records with sObject Collections, at most 200 per
    /// request. `all_or_none` applies per request (per chunk of 200).
    pub async fn update_many(
        &self,
        updates: &[RecordUpdate],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, ApiError> {
        let mut results = Vec::with_capacity(updates.len());
        for chunk in updates.chunks(BATCH_LIMIT) {
            let records: Vec<Json> = chunk.iter().map(collection_record).collect();
            let body = json!({"allOrNone": all_or_none, "records": records});
            let mut call = self.call(Method::PATCH, "composite/sobjects".into());
            call.body = Some(&body);
            let mut got: Vec<SaveResult> = self.json(call).await?;
            if got.len() != chunk.len() {
                return Err(protocol("sObject Collections answered a different count"));
            }
            results.append(&mut got);
        }
        Ok(results)
    }

    /// The object's fields and picklists, cached for `cache_ttl`.
    pub async fn describe(&self, object: &str) -> Result<Arc<Describe>, ApiError> {
        let path = format!("sobjects/{}/describe", seg(object)?);
        let this = self.clone();
        self.inner
            .describes
            .get_or_load(object.to_string(), async move {
                let call = this.call(Method::GET, path);
                this.json::<Describe>(call).await.map(Arc::new)
            })
            .await
    }

    /// The Account's tier and SLA fields (`account_fields`), cached for
    /// `cache_ttl`; concurrent lookups of one account make one request.
    pub async fn account(&self, id: &str) -> Result<Arc<Record>, ApiError> {
        self.account_cached(id).await.map(|(record, _)| record)
    }

    /// As [`SalesforceClient::account`], and whether it came from the
    /// cache without a request (the agent API's `cached.account`).
    pub async fn account_cached(&self, id: &str) -> Result<(Arc<Record>, bool), ApiError> {
        let path = format!("sobjects/Account/{}", seg(id)?);
        let fields = self.inner.cfg.account_fields.join(",");
        let this = self.clone();
        self.inner
            .accounts
            .get_or_load_cached(id.to_string(), async move {
                let mut call = this.call(Method::GET, path);
                call.query.push(("fields", fields));
                this.json::<Record>(call).await.map(Arc::new)
            })
            .await
    }

    /// Drops a cached account, after a write to it.
    pub async fn forget_account(&self, id: &str) {
        self.inner.accounts.invalidate(&id.to_string()).await;
    }
}

/// Ids and object names go into the path: refuse anything that could
/// change the path (a `/`, `?`, `..`) instead of sending it.
pub(super) fn seg(s: &str) -> Result<&str, ApiError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s)
    } else {
        Err(ApiError::Validation {
            system: SF,
            status: 400,
            message: format!("{s:?} is not a Salesforce name or Id"),
            fields: vec![],
        })
    }
}

fn collection_record(u: &RecordUpdate) -> Json {
    let mut m = u.fields.clone();
    m.insert("attributes".into(), json!({"type": u.object}));
    m.insert("Id".into(), json!(u.id));
    Json::Object(m)
}
