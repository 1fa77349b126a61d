//! Salesforce client unit tests: usage header, error codes, path
//! segments, budgets.

use super::endpoints::seg;
use super::policy::classify;
use super::*;
use crate::connectors::transport::Verdict;
use reqwest::StatusCode;

#[test]
fn usage_header_parses() {
    assert_eq!(
        ApiUsage::parse("api-usage=25/5000"),
        Some(ApiUsage {
            used: 25,
            limit: 5000
        })
    );
    assert_eq!(
        ApiUsage::parse("per-app-api-usage=1/2(appName=x), api-usage=7/9").map(|u| u.remaining()),
        Some(2)
    );
    assert_eq!(ApiUsage::parse("api-usage=x/9"), None);
}

#[test]
fn errors_are_typed_by_code() {
    let body = br#"[{"message":"Status: bad value","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Status"]}]"#;
    match classify(StatusCode::BAD_REQUEST, body, None) {
        Verdict::Failed(ApiError::Validation {
            fields, message, ..
        }) => {
            assert_eq!(fields, vec!["Status"]);
            assert!(message.starts_with("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"));
        }
        _ => panic!("not a validation error"),
    }
    let limit =
        br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
    assert!(matches!(
        classify(StatusCode::FORBIDDEN, limit, None),
        Verdict::Failed(ApiError::QuotaExhausted { .. })
    ));
    let concurrent = br#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
    assert!(matches!(
        classify(StatusCode::FORBIDDEN, concurrent, None),
        Verdict::Failed(ApiError::RateLimited { .. })
    ));
    assert!(matches!(
        classify(
            StatusCode::UNAUTHORIZED,
            b"[{\"errorCode\":\"INVALID_SESSION_ID\"}]",
            None
        ),
        Verdict::Expired
    ));
    assert!(matches!(
        classify(StatusCode::BAD_GATEWAY, b"<html>", None),
        Verdict::Failed(ApiError::Transient { .. })
    ));
}

#[test]
fn path_segments_are_checked() {
    assert!(seg("500A000001").is_ok());
    assert!(seg("../x").is_err());
    assert!(seg("").is_err());
}

/// Two clients of one connected app built with two registries share
/// neither a limiter nor a concurrency cap (a process-wide map, as
/// the concurrency caps once were, would make them share); with one
/// registry they share both.
#[test]
fn limiters_and_caps_are_values_passed_in() {
    let cfg = || {
        SalesforceConfig::new(
            "http://127.0.0.1:1",
            "app-shared",
            Secret::new("secret"),
            Secret::new("refresh"),
        )
    };
    let a = SalesforceClient::with_limiters(cfg(), &Limiters::default()).unwrap();
    let b = SalesforceClient::with_limiters(cfg(), &Limiters::default()).unwrap();
    assert_eq!(a.budget().shares_with(b.budget()), (false, false));
    let one = Limiters::default();
    let c = SalesforceClient::with_limiters(cfg(), &one).unwrap();
    let d = SalesforceClient::with_limiters(cfg(), &one).unwrap();
    assert_eq!(c.budget().shares_with(d.budget()), (true, true));
    let (e, f) = (
        SalesforceClient::new(cfg()).unwrap(),
        SalesforceClient::new(cfg()).unwrap(),
    );
    assert_eq!(e.budget().shares_with(f.budget()), (false, false));
}
