//! Reading a live instance's schema into the lockfile's shape, through the
//! connectors, with the connection's own credentials.

use super::{
    CustomStatus, Group, SalesforceField, SalesforceObject, SalesforceSchema, TicketField,
    ZendeskSchema,
};
use crate::check::Kind;
use crate::connectors::salesforce::{SalesforceAuth, SalesforceClient, SalesforceConfig};
use crate::connectors::zendesk::{Credentials, ZendeskClient, ZendeskConfig};
use crate::connectors::{ApiError, Secret};
use crate::ir::Connection;

/// What one connection's instance holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Pulled {
    Zendesk(ZendeskSchema),
    Salesforce(SalesforceSchema),
}

/// A credential or setting the connection declares: a secret reference is
/// resolved (environment variable or file), a plain setting is taken as is.
fn value(conn: &Connection, key: &str) -> Result<Option<String>, String> {
    if let Some(s) = conn.secrets.iter().find(|s| s.key == key) {
        let got = match s.source.as_str() {
            "env" => std::env::var(&s.name).ok().filter(|v| !v.is_empty()),
            _ => std::fs::read_to_string(&s.name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
        };
        return match got {
            Some(v) => Ok(Some(v)),
            None => Err(format!(
                "connection `{}`: `{key} {}(\"{}\")` is not set; provide it (never write the value into a .l3map file)",
                conn.name, s.source, s.name
            )),
        };
    }
    Ok(conn.settings.get(key).cloned())
}

fn required(conn: &Connection, key: &str) -> Result<String, String> {
    value(conn, key)?.ok_or_else(|| format!("connection `{}` has no `{key}`", conn.name))
}

/// Reads the instance behind `conn`.
pub async fn pull(conn: &Connection) -> Result<Pulled, String> {
    let api = |e: ApiError| format!("connection `{}`: {e}", conn.name);
    match conn.kind {
        Kind::Zendesk => {
            let token = Secret::new(required(conn, "token")?);
            let credentials = match value(conn, "email")? {
                Some(email)
                    if conn.settings.get("auth").map(String::as_str) == Some("api_token") =>
                {
                    Credentials::ApiToken { email, token }
                }
                _ => Credentials::OAuth(token),
            };
            let cfg = match value(conn, "url")? {
                Some(url) => ZendeskConfig::new(url, credentials),
                None => ZendeskConfig::for_subdomain(&required(conn, "subdomain")?, credentials),
            };
            let client = ZendeskClient::new(cfg).map_err(api)?;
            let fields = client.ticket_fields().await.map_err(api)?;
            let statuses = client.custom_statuses().await.map_err(api)?;
            let groups = client.groups().await.map_err(api)?;
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
                    })
                    .collect(),
                groups: groups
                    .iter()
                    .map(|g| Group {
                        id: g.id,
                        name: g.name.clone(),
                    })
                    .collect(),
            };
            // Sorted, so a pull that finds nothing new changes no byte.
            schema.ticket_fields.sort_by_key(|f| f.id);
            schema.custom_statuses.sort_by_key(|s| s.id);
            schema.groups.sort_by_key(|g| g.id);
            Ok(Pulled::Zendesk(schema))
        }
        Kind::Salesforce => {
            let login = required(conn, "instance")?;
            // Only what the block declares is read: one flow's credentials.
            let mut declared = std::collections::BTreeMap::new();
            for key in ["client_secret", "refresh_token", "username", "private_key"] {
                if let Some(v) = value(conn, key)? {
                    declared.insert(key, Secret::new(v));
                }
            }
            let auth = SalesforceAuth::from_properties(&login, |key| declared.get(key).cloned())
                .map_err(|key| format!("connection `{}` has no `{key}`", conn.name))?;
            let cfg = SalesforceConfig::with_auth(login, required(conn, "client_id")?, auth);
            let client = SalesforceClient::new(cfg).map_err(api)?;
            let mut schema = SalesforceSchema::default();
            for object in &conn.objects {
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
