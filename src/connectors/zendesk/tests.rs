//! Zendesk client unit tests: error bodies, credentials, budgets.

use super::endpoints::encode_query;
use super::policy::{describe, error_for};
use super::*;
use crate::connectors::secret::Secret;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

#[test]
fn validation_errors_name_the_fields() {
    let body = serde_json::json!({
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {
            "base": [{"description": "SLA tier: bad", "error": "InvalidValue", "field_key": 360001234}],
            "status": [{"description": "Status: is invalid", "error": "InvalidValue"}]
        }
    });
    let e = error_for(
        StatusCode::UNPROCESSABLE_ENTITY,
        &HeaderMap::new(),
        body.to_string().as_bytes(),
    );
    match e {
        ApiError::Validation {
            status,
            fields,
            message,
            ..
        } => {
            assert_eq!(status, 422);
            assert_eq!(fields, vec!["360001234".to_string(), "status".into()]);
            assert_eq!(
                message,
                "Record validation errors: SLA tier: bad; Status: is invalid"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_come_from_whichever_key_zendesk_used() {
    let d = |s: &str| {
        describe(
            &serde_json::from_str(s).unwrap_or(Value::Null),
            StatusCode::BAD_REQUEST,
        )
    };
    assert_eq!(
        d(r#"{"error":"Couldn't authenticate you"}"#),
        "Couldn't authenticate you"
    );
    assert_eq!(
        d(r#"{"error":"X","message":"Server could not parse JSON"}"#),
        "Server could not parse JSON"
    );
    assert_eq!(d(r#"{"error":{"title":"T","message":"M"}}"#), "M");
    assert_eq!(d("<html>"), "Bad Request");
    assert_eq!(encode_query("a+b/c="), "a%2Bb%2Fc%3D");
}

#[test]
fn credentials_never_print() {
    let c = Credentials::ApiToken {
        email: "ops@example.com".into(),
        token: Secret::new("zd-api-SECRET-123"),
    };
    assert!(!format!("{c:?}").contains("SECRET"));
    let cfg = ZendeskConfig::new("http://127.0.0.1:1", c);
    assert!(!format!("{cfg:?}").contains("SECRET"));
}

/// Two clients of one token built with two registries never share a
/// budget; with one registry they do (a process-wide map would make
/// the first pair share).
#[test]
fn limiters_are_values_passed_in() {
    let cfg = || {
        ZendeskConfig::new(
            "http://127.0.0.1:1",
            Credentials::OAuth(Secret::new("zd-shared-token")),
        )
    };
    let a = ZendeskClient::with_limiters(cfg(), &Limiters::default()).unwrap();
    let b = ZendeskClient::with_limiters(cfg(), &Limiters::default()).unwrap();
    assert!(!a.budget().shares_with(b.budget()).0);
    let one = Limiters::default();
    let c = ZendeskClient::with_limiters(cfg(), &one).unwrap();
    let d = ZendeskClient::with_limiters(cfg(), &one).unwrap();
    assert!(c.budget().shares_with(d.budget()).0);
    assert!(c.interactive().budget().shares_with(c.budget()).0);
    let (e, f) = (
        ZendeskClient::new(cfg()).unwrap(),
        ZendeskClient::new(cfg()).unwrap(),
    );
    assert!(!e.budget().shares_with(f.budget()).0);
}

#[test]
fn a_later_value_for_a_field_replaces_the_earlier_one() {
    let c = TicketChanges::default()
        .field(7, "a")
        .field(8, "x")
        .field(7, "b");
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(
        v["custom_fields"],
        serde_json::json!([{"id": 7, "value": "b"}, {"id": 8, "value": "x"}])
    );
}
