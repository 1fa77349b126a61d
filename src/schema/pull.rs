//! Reading a live instance's schema into the lockfile's shape, through the
//! connectors, with the connection's own credentials.

use super::{
    CustomStatus, Group, SalesforceField, SalesforceObject, SalesforceSchema, TicketField,
    TicketForm, ZendeskSchema,
};
use crate::connectors::zendesk::ZendeskClient;
use crate::connectors::ApiError;
use crate::ir::Connection;
use crate::runtime::apply::Client;
use crate::runtime::config::ConnectionOverride;
use crate::runtime::reach::{reach, CONNECT_TIMEOUT};

/// What one connection's instance holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Pulled {
    Zendesk(ZendeskSchema),
    Salesforce(SalesforceSchema),
}

/// Reads the instance behind `conn`, as the mapping declares it.
pub async fn pull(conn: &Connection) -> Result<Pulled, String> {
    pull_with(conn, &ConnectionOverride::default(), None, &|_| {}).await
}

/// Reads the instance behind `conn` with the configuration's overrides
/// (`[connections.NAME]` of l3map.toml: another base URL, login URL or
/// timeout). Every missing credential is named in one message, an
/// unreachable host fails within seconds with its name and the reason
/// ([`reach`]), and `step` is told what is being read, for progress. A
/// connection keeping its grant in the store signs in with `grants`.
pub async fn pull_with(
    conn: &Connection,
    o: &ConnectionOverride,
    grants: Option<&crate::runtime::clients::Grants>,
    step: &(dyn Fn(&str) + Sync),
) -> Result<Pulled, String> {
    let client = crate::runtime::clients::interactive(conn, o, grants)?;
    let Some(url) = crate::runtime::clients::endpoint(conn, o) else {
        return Err(format!(
            "connection `{}` names no instance; add its `subdomain` (Zendesk) or `instance` (Salesforce)",
            conn.name
        ));
    };
    step(&format!("connecting to {url}"));
    reach(&url, CONNECT_TIMEOUT)
        .await
        .map_err(|e| format!("connection `{}`: {e}", conn.name))?;
    let api = |e: ApiError| format!("connection `{}`: {e}", conn.name);
    match client {
        Client::Zendesk(client) => {
            step("reading ticket fields");
            let fields = client.ticket_fields().await.map_err(api)?;
            step("reading custom statuses");
            let statuses = client.custom_statuses().await.map_err(api)?;
            step("reading groups");
            let groups = client.groups().await.map_err(api)?;
            step("reading ticket forms");
            let forms = forms(&client).await.map_err(api)?;
            step("reading default custom statuses");
            let defaults = client.default_custom_statuses().await.map_err(api)?;
            let mut schema = ZendeskSchema {
                ticket_fields: fields
                    .iter()
                    .map(|f| TicketField {
                        id: f.id,
                        title: f.title.clone(),
                        kind: f.kind.clone(),
                        options: f
                            .custom_field_options
                            .iter()
                            .map(|o| o.value.clone())
                            .collect(),
                    })
                    .collect(),
                custom_statuses: statuses
                    .iter()
                    .map(|s| CustomStatus {
                        id: s.id,
                        agent_label: s.agent_label.clone(),
                        status_category: s.status_category.clone(),
                        default: defaults.contains(&s.id),
                    })
                    .collect(),
                groups: groups
                    .iter()
                    .map(|g| Group {
                        id: g.id,
                        name: g.name.clone(),
                    })
                    .collect(),
                ticket_forms: forms,
            };
            // Sorted, so a pull that finds nothing new changes no byte.
            schema.ticket_fields.sort_by_key(|f| f.id);
            schema.custom_statuses.sort_by_key(|s| s.id);
            schema.groups.sort_by_key(|g| g.id);
            Ok(Pulled::Zendesk(schema))
        }
        Client::Salesforce(client) => {
            let mut schema = SalesforceSchema::default();
            for object in &conn.objects {
                step(&format!("describing {object}"));
                let d = client.describe(object).await.map_err(api)?;
                let fields = d
                    .fields
                    .iter()
                    .map(|f| {
                        (
                            f.name.clone(),
                            SalesforceField {
                                kind: f.ty.clone(),
                                updateable: f.updateable,
                                picklist: f
                                    .picklist_values
                                    .iter()
                                    .filter(|p| p.active)
                                    .map(|p| p.value.clone())
                                    .collect(),
                            },
                        )
                    })
                    .collect();
                schema
                    .objects
                    .insert(object.clone(), SalesforceObject { fields });
            }
            Ok(Pulled::Salesforce(schema))
        }
    }
}

/// The account's forms with the statuses each offers, sorted by id. A plan
/// without ticket forms (Zendesk offers them from Suite Growth and Support
/// Enterprise) answers 403 or 404: no forms, recorded as such, so the form
/// checks have nothing to check rather than nothing known.
async fn forms(client: &ZendeskClient) -> Result<Option<Vec<TicketForm>>, ApiError> {
    let forms = match client.ticket_forms().await {
        Ok(f) => f,
        Err(ApiError::Permission { .. } | ApiError::NotFound { .. }) => return Ok(Some(vec![])),
        Err(e) => return Err(e),
    };
    let offered = client.ticket_form_statuses().await?;
    let mut out: Vec<TicketForm> = forms
        .into_iter()
        .map(|f| {
            let mut ids: Vec<u64> = offered
                .iter()
                .filter(|o| o.ticket_form_id == f.id)
                .map(|o| o.custom_status_id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            TicketForm {
                id: f.id,
                name: f.name,
                active: f.active,
                default: f.default,
                custom_status_ids: ids,
            }
        })
        .collect();
    out.sort_by_key(|f| f.id);
    Ok(Some(out))
}
