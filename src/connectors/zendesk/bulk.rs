//! Batched ticket writes: `PUT /api/v2/tickets/update_many.json` with up
//! to 100 tickets, each with its own changes, answered by a job that
//! Zendesk runs in the background; `GET /api/v2/job_statuses/{id}.json`
//! reports it, with one result per ticket once it is done.
//!
//! "Accepts an array of up to 100 ticket objects, or a comma-separated
//! list of up to 100 ticket ids"
//! (<https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-many-tickets>);
//! job statuses: "One of the following: queued, working, failed, completed"
//! (<https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/>),
//! kept for a day.

use super::super::error::ApiError;
use super::config::SYSTEM;
use super::endpoints::field;
use super::types::TicketChanges;
use super::{ZendeskClient, MAX_BULK};
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One ticket's part of an `update_many`: what `PUT /tickets/{id}.json`
/// would take for it under `ticket` (`custom_fields`, `status`,
/// `priority`, `comment`, ...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TicketUpdate {
    pub id: u64,
    pub body: Map<String, Value>,
}

impl TicketUpdate {
    pub fn new(id: u64, body: Map<String, Value>) -> TicketUpdate {
        TicketUpdate { id, body }
    }

    /// The same changes the single-ticket update takes.
    pub fn from_changes(id: u64, changes: &TicketChanges) -> TicketUpdate {
        let body = match serde_json::to_value(changes) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        TicketUpdate { id, body }
    }

    /// `{"id": .., ...body}`: an element of `update_many`'s `tickets`. An
    /// `id` in `body` cannot redirect the write to another ticket.
    pub(super) fn to_json(&self) -> Value {
        let mut m = self.body.clone();
        m.insert("id".into(), Value::from(self.id));
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Working,
    Completed,
    Failed,
    Killed,
    /// A state this client does not know: not finished, so it is polled
    /// again until the poll limit says otherwise.
    #[serde(other)]
    Unknown,
}

impl JobState {
    /// No more progress will come: read the results.
    pub fn finished(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Killed
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Queued => "queued",
            JobState::Working => "working",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Killed => "killed",
            JobState::Unknown => "unknown",
        })
    }
}

/// One ticket's outcome in a bulk update:
/// `{"id": 244, "action": "update", "success": true, "status": "Updated"}`,
/// or `{"id": 245, "error": "...", "details": "..."}` when it failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobResult {
    /// 0 when Zendesk did not say (then `index` may).
    pub id: u64,
    pub success: bool,
    pub status: Option<String>,
    pub error: Option<String>,
    pub details: Option<String>,
    /// The ticket's position in the request, when given.
    pub index: Option<u64>,
}

impl<'de> Deserialize<'de> for JobResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            id: Option<u64>,
            #[serde(default)]
            success: Option<bool>,
            #[serde(default)]
            status: Option<String>,
            #[serde(default)]
            error: Option<Value>,
            #[serde(default)]
            details: Option<Value>,
            #[serde(default)]
            index: Option<u64>,
        }
        let r = Raw::deserialize(d)?;
        let error = r.error.and_then(text);
        // A result that names an error failed, whatever else it says;
        // without `success`, the status word is the outcome.
        let worded = matches!(
            r.status.as_deref(),
            Some("Updated" | "Created" | "Deleted" | "Completed")
        );
        let success = error.is_none() && r.success.unwrap_or(worded);
        Ok(JobResult {
            id: r.id.unwrap_or(0),
            success,
            status: r.status,
            error,
            details: r.details.and_then(text),
            index: r.index,
        })
    }
}

/// `details` is a sentence in Zendesk's examples; an object (a
/// validation error's field list) is kept as its JSON text.
fn text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    pub id: String,
    pub status: JobState,
    pub total: Option<u64>,
    pub progress: Option<u64>,
    pub message: Option<String>,
    /// One per ticket once the job is done; empty before (Zendesk sends
    /// `null`) and for jobs whose result is not a list.
    pub results: Vec<JobResult>,
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            id: String,
            status: JobState,
            #[serde(default)]
            total: Option<u64>,
            #[serde(default)]
            progress: Option<u64>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            results: Option<Value>,
        }
        let r = Raw::deserialize(d)?;
        let results = match r.results {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(serde::de::Error::custom)?,
            _ => Vec::new(),
        };
        Ok(JobStatus {
            id: r.id,
            status: r.status,
            total: r.total,
            progress: r.progress,
            message: r.message,
            results,
        })
    }
}

impl JobStatus {
    pub fn finished(&self) -> bool {
        self.status.finished()
    }

    /// The result for ticket `id`, by id or else by its position in the
    /// request (`updates`).
    pub fn result_for(&self, id: u64, updates: &[TicketUpdate]) -> Option<&JobResult> {
        self.results.iter().find(|r| r.id == id).or_else(|| {
            let at = updates.iter().position(|u| u.id == id)? as u64;
            self.results
                .iter()
                .find(|r| r.id == 0 && r.index == Some(at))
        })
    }
}

impl ZendeskClient {
    /// One `update_many` job for up to [`MAX_BULK`] tickets, each with its
    /// own changes; answers the job as queued (poll it with
    /// [`job_status`](Self::job_status) or [`wait_for_job`](Self::wait_for_job)).
    /// One request against the token's budget, whatever the number of
    /// tickets. More than 100 tickets, none, or one ticket twice are
    /// refused here, before anything is sent.
    pub async fn update_many(&self, updates: &[TicketUpdate]) -> Result<JobStatus, ApiError> {
        check_batch(updates)?;
        let tickets: Vec<Value> = updates.iter().map(TicketUpdate::to_json).collect();
        let body = serde_json::json!({ "tickets": tickets });
        let v = self
            .call(
                Method::PUT,
                "/api/v2/tickets/update_many.json",
                Some(&body),
                None,
            )
            .await?;
        field(v, "job_status")
    }

    /// `GET /api/v2/tickets/show_many.json?ids=1,2,3&include=users,organizations`:
    /// up to [`MAX_BULK`] tickets in one request ("Show Multiple Tickets:
    /// accepts a comma-separated list of up to 100 ticket ids",
    /// <https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#show-multiple-tickets>;
    /// side-loads,
    /// <https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/>).
    /// Each ticket comes back as a single read answers it,
    /// `{"ticket", "organizations", "users"}` with its own organization and
    /// requester; ids the API does not show are left out.
    pub async fn show_many(&self, ids: &[u64]) -> Result<Vec<Value>, ApiError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        if ids.len() > MAX_BULK {
            return Err(ApiError::Validation {
                system: SYSTEM,
                status: 400,
                message: format!("show_many takes at most {MAX_BULK} ids, not {}", ids.len()),
                fields: vec!["ids".into()],
            });
        }
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        let path = format!(
            "/api/v2/tickets/show_many.json?ids={}&include=users%2Corganizations",
            list.join("%2C")
        );
        let v = self.call(Method::GET, &path, None, None).await?;
        let of = |key: &str| {
            v.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (users, orgs) = (of("users"), of("organizations"));
        let find = |list: &[Value], id: Option<&Value>| -> Vec<Value> {
            let Some(id) = id.and_then(Value::as_u64) else {
                return vec![];
            };
            list.iter()
                .filter(|x| x.get("id").and_then(Value::as_u64) == Some(id))
                .cloned()
                .collect()
        };
        Ok(of("tickets")
            .into_iter()
            .map(|t| {
                let o = find(&orgs, t.get("organization_id"));
                let u = find(&users, t.get("requester_id"));
                serde_json::json!({"ticket": t, "organizations": o, "users": u})
            })
            .collect())
    }

    pub async fn job_status(&self, id: &str) -> Result<JobStatus, ApiError> {
        let id = super::endpoints::encode_query(id);
        let v = self
            .call(
                Method::GET,
                &format!("/api/v2/job_statuses/{id}.json"),
                None,
                None,
            )
            .await?;
        field(v, "job_status")
    }

    /// Polls `job` every `job_poll_interval` until it is finished (at most
    /// `job_max_polls` times): a job still running after that is a
    /// transient error (the tickets may yet be updated).
    pub async fn wait_for_job(&self, mut job: JobStatus) -> Result<JobStatus, ApiError> {
        for _ in 0..self.cfg.job_max_polls {
            if job.finished() {
                return Ok(job);
            }
            tokio::time::sleep(self.cfg.job_poll_interval).await;
            job = self.job_status(&job.id).await?;
        }
        if job.finished() {
            return Ok(job);
        }
        Err(ApiError::Transient {
            system: SYSTEM,
            status: None,
            message: format!(
                "job {} still {} after {} polls",
                job.id, job.status, self.cfg.job_max_polls
            ),
            sent: true,
        })
    }

    /// The same changes on many tickets: one job per 100 tickets, each
    /// awaited. One result per ticket, in order: a ticket the job did not
    /// report on gets `success: false` and an error saying so (silence is
    /// not success).
    pub async fn update_many_same(
        &self,
        ids: &[u64],
        changes: &TicketChanges,
    ) -> Result<Vec<JobResult>, ApiError> {
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BULK) {
            let updates: Vec<TicketUpdate> = chunk
                .iter()
                .map(|id| TicketUpdate::from_changes(*id, changes))
                .collect();
            let done = self.wait_for_job(self.update_many(&updates).await?).await?;
            results.extend(
                updates
                    .iter()
                    .map(|u| match done.result_for(u.id, &updates) {
                        Some(r) => JobResult {
                            id: u.id,
                            ..r.clone()
                        },
                        None => JobResult {
                            id: u.id,
                            success: false,
                            status: Some("Unknown".into()),
                            error: Some(format!(
                                "job {} reported no result for this ticket",
                                done.id
                            )),
                            details: done.message.clone(),
                            index: None,
                        },
                    }),
            );
        }
        Ok(results)
    }
}

/// 1 to 100 distinct tickets: Zendesk refuses more than 100, and one
/// ticket twice in a job would leave which change won to the job's order.
fn check_batch(updates: &[TicketUpdate]) -> Result<(), ApiError> {
    let refuse = |message: String| ApiError::Validation {
        system: SYSTEM,
        status: 400,
        message,
        fields: vec!["tickets".into()],
    };
    if updates.is_empty() || updates.len() > MAX_BULK {
        return Err(refuse(format!(
            "update_many takes 1 to {MAX_BULK} tickets, not {}",
            updates.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = updates.iter().find(|u| !seen.insert(u.id)) {
        return Err(refuse(format!("ticket {} is in the batch twice", dup.id)));
    }
    Ok(())
}
