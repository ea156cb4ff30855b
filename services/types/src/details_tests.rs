//! Encode/decode of every standard detail type, and the slots' rules.

use super::*;

fn every_type() -> ErrorDetails {
    let mut d = ErrorDetails::new();
    d.set_error("REASON", "example.com", [("a".into(), "b".into())])
        .set_retry_delay(Duration::new(3, 500))
        .set_debug_info(DebugInfo {
            stack_entries: vec!["f1".into(), "f2".into()],
            detail: "boom".into(),
        })
        .add_quota_violation("project:p", "too many")
        .add_precondition_violation("TOS", "user:u", "not accepted")
        .add_bad_request_violation("name", "empty")
        .set_request_info(RequestInfo {
            request_id: "r1".into(),
            serving_data: "s".into(),
        })
        .set_resource_info(ResourceInfo {
            resource_type: "book".into(),
            resource_name: "b1".into(),
            owner: "o".into(),
            description: "missing".into(),
        })
        .add_help_link("docs", "https://example.com")
        .set_localized_message(LocalizedMessage {
            locale: "fr-CH".into(),
            message: "non".into(),
        });
    d
}

#[test]
fn every_standard_type_round_trips_under_its_type_url() {
    let d = every_type();
    let anys = d.to_anys();
    let urls: Vec<&str> = anys.iter().map(|a| a.type_url.as_str()).collect();
    let names = [
        "ErrorInfo",
        "RetryInfo",
        "DebugInfo",
        "QuotaFailure",
        "PreconditionFailure",
        "BadRequest",
        "RequestInfo",
        "ResourceInfo",
        "Help",
        "LocalizedMessage",
    ];
    let expected: Vec<String> = names
        .iter()
        .map(|n| format!("type.googleapis.com/google.rpc.{n}"))
        .collect();
    assert_eq!(urls, expected);
    let back = ErrorDetails::from_anys(anys).expect("decodes");
    assert_eq!(back, d);
    assert_eq!(
        back.retry_info().and_then(|r| r.retry_delay),
        Some(prost_types::Duration {
            seconds: 3,
            nanos: 500
        })
    );
    assert!(back.other().is_empty());
}

#[test]
fn unknown_types_and_repeats_are_kept_in_order() {
    let foreign = Any {
        type_url: "type.example.com/x.Y".into(),
        value: vec![1, 2, 3],
    };
    let second = ErrorInfo {
        reason: "SECOND".into(),
        ..Default::default()
    }
    .to_any();
    let first = ErrorInfo {
        reason: "FIRST".into(),
        ..Default::default()
    }
    .to_any();
    let d = ErrorDetails::from_anys([foreign.clone(), first, second.clone()]).unwrap();
    assert_eq!(d.error_info().map(|e| e.reason.as_str()), Some("FIRST"));
    assert_eq!(d.other(), &[foreign, second][..]);
}

#[test]
fn empty_details_are_empty() {
    assert!(ErrorDetails::new().is_empty());
    assert!(!every_type().is_empty());
    assert!(ErrorDetails::new().to_anys().is_empty());
}
