//! A group on a Salesforce record: the CaseComment is created first, then
//! one PATCH carries the fields and the status; an unconfirmed group is
//! read back first.

use super::outcome::{drop_applied, park_config, Outcome, Results, Tries};
use super::Applier;
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::SalesforceClient;
use crate::runtime::ops::{split_record, Op};
use crate::runtime::store::Group;
use serde_json::{Map, Value as Json};

impl Applier {
    pub(super) async fn salesforce(
        &self,
        sf: &SalesforceClient,
        g: &Group,
        mut ops: Vec<(i64, Op)>,
        tries: Tries,
    ) -> Results {
        let ids = |ops: &[(i64, Op)]| ops.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let Some((object, record_id)) = split_record(&g.record) else {
            return vec![(
                ids(&ops),
                park_config(format!("{:?} is not an Object/Id record", g.record)),
            )];
        };
        let mut results = Vec::new();
        if g.unconfirmed {
            match self.salesforce_already(sf, object, record_id, &ops).await {
                Ok(there) => drop_applied(&mut ops, &there, &mut results),
                Err(e) => return vec![(ids(&ops), self.outcome(&e, tries.at_now()))],
            }
        }
        // Comments first: the hand-off note is there before the status
        // and reason fields change. If one fails, everything after it in
        // the group waits with it.
        let (comments, writes): (Vec<_>, Vec<_>) =
            ops.into_iter().partition(|(_, op)| op.repeats());
        for (n, (id, op)) in comments.iter().enumerate() {
            let Op::SalesforceComment { body } = op else {
                continue;
            };
            if object != "Case" {
                results.push((
                    vec![*id],
                    park_config(format!("a CaseComment needs a Case, not a {object}")),
                ));
                continue;
            }
            if let Err(e) = sf.create_case_comment(record_id, body).await {
                let waiting: Vec<i64> = comments[n..]
                    .iter()
                    .chain(&writes)
                    .map(|(i, _)| *i)
                    .collect();
                results.push((waiting, self.outcome(&e, tries.at_now())));
                return results;
            }
            results.push((vec![*id], Outcome::Applied));
        }
        let mut fields = Map::new();
        let mut field_ids = Vec::new();
        for (id, op) in &writes {
            match op {
                Op::SalesforceField { field, value, .. } => {
                    fields.insert(field.clone(), value.clone());
                    field_ids.push(*id);
                }
                Op::SalesforceStatus { value, .. } => {
                    fields.insert("Status".into(), Json::String(value.clone()));
                    field_ids.push(*id);
                }
                other => results.push((
                    vec![*id],
                    park_config(format!("{other:?} is not a Salesforce write")),
                )),
            }
        }
        if !field_ids.is_empty() {
            let outcome = match sf.update(object, record_id, &fields).await {
                Ok(()) => {
                    if let Some(r) = &self.resolver {
                        r.forget(&g.connection, object).await;
                    }
                    Outcome::Applied
                }
                Err(e) => self.outcome(&e, tries.at_now()),
            };
            results.push((field_ids, outcome));
        }
        results
    }

    pub(super) async fn salesforce_already(
        &self,
        sf: &SalesforceClient,
        object: &str,
        record_id: &str,
        ops: &[(i64, Op)],
    ) -> Result<Vec<i64>, ApiError> {
        let mut names: Vec<&str> = ops
            .iter()
            .filter_map(|(_, op)| match op {
                Op::SalesforceField { field, .. } => Some(field.as_str()),
                Op::SalesforceStatus { .. } => Some("Status"),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        let record = if names.is_empty() {
            Map::new()
        } else {
            sf.get(object, record_id, Some(&names)).await?
        };
        let comments: Vec<String> = if ops.iter().any(|(_, op)| op.repeats()) {
            // Ids are checked to be alphanumeric before they reach here
            // (split_record of a key we wrote), but quote-escape anyway.
            let soql = format!(
                "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = '{}'",
                record_id.replace('\\', "\\\\").replace('\'', "\\'")
            );
            sf.query(&soql)
                .await?
                .records
                .iter()
                .filter_map(|r| {
                    r.get("CommentBody")
                        .and_then(Json::as_str)
                        .map(str::to_string)
                })
                .collect()
        } else {
            vec![]
        };
        Ok(ops
            .iter()
            .filter(|(_, op)| match op {
                Op::SalesforceField { field, value, .. } => record.get(field) == Some(value),
                Op::SalesforceStatus { value, .. } => {
                    record.get("Status").and_then(Json::as_str) == Some(value)
                }
                Op::SalesforceComment { body } => comments.iter().any(|c| c == body),
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect())
    }
}
