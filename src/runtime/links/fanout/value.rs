//! The value a changed record has for a link: its Id, or the link's field,
//! read from Salesforce when the change did not carry it (a CDC update
//! carries only what changed).

use super::FanoutError;
use crate::connectors::salesforce::SalesforceClient;
use crate::ir::Link;
use serde_json::{Map, Value as Json};

/// `None`: the record has no value for the link (empty or null), so it
/// reaches no ticket through it.
pub(super) async fn link_value(
    link: &Link,
    id: &str,
    record: &Map<String, Json>,
    crm: Option<&SalesforceClient>,
) -> Result<Option<String>, FanoutError> {
    if link.field == "Id" {
        return Ok(Some(id.to_string()));
    }
    if let Some(v) = lookup(record, &link.field) {
        return Ok(text(v));
    }
    let Some(crm) = crm else {
        return Err(FanoutError::Unavailable(format!(
            "{}: the change does not carry {}.{} and no Salesforce connection `{}` can read it",
            link.describe(),
            link.object,
            link.field,
            link.crm
        )));
    };
    let read = crm
        .get(&link.object, id, Some(&[link.field.as_str()]))
        .await?;
    Ok(lookup(&read, &link.field).and_then(text))
}

/// A field by its path (`Email`, `Account.Site`).
fn lookup<'a>(record: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.split('.');
    let mut cur = record.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// A value as Zendesk compares it: text, a number written out; nothing
/// for null, blanks and structures.
fn text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_text_and_blanks_are_none() {
        let m = json!({"Email": " a@b.c ", "N": 42, "Blank": " ", "Null": null,
                       "Account": {"Site": "x"}});
        let m = m.as_object().unwrap();
        assert_eq!(lookup(m, "Email").and_then(text).as_deref(), Some("a@b.c"));
        assert_eq!(lookup(m, "N").and_then(text).as_deref(), Some("42"));
        assert_eq!(lookup(m, "Blank").and_then(text), None);
        assert_eq!(lookup(m, "Null").and_then(text), None);
        assert_eq!(
            lookup(m, "Account.Site").and_then(text).as_deref(),
            Some("x")
        );
        assert!(lookup(m, "Missing").is_none());
    }
}
