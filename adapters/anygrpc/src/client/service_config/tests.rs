use std::time::Duration;

use anygrpc_core::Code;

use super::*;

fn rejected(json: &str) -> ServiceConfigError {
    match ServiceConfig::parse(json) {
        Err(e) => e,
        Ok(config) => panic!("{json} was accepted: {config:?}"),
    }
}

/// The error's field, and that its problem says `words`.
fn rejected_at(json: &str, field: &str, words: &str) {
    let error = rejected(json);
    assert_eq!(error.field, field, "{error}");
    assert!(error.problem.contains(words), "{error}");
    assert!(error.to_string().contains(field), "{error}");
}

const FULL: &str = r#"{
  "loadBalancingConfig": [{"grpclb": {}}, {"round_robin": {}}, {"pick_first": {}}],
  "methodConfig": [
    {
      "name": [{"service": "pkg.Svc", "method": "Get"}],
      "timeout": "0.25s",
      "waitForReady": true,
      "maxRequestMessageBytes": 1024,
      "maxResponseMessageBytes": "2048",
      "retryPolicy": {
        "maxAttempts": 9,
        "initialBackoff": "0.1s",
        "maxBackoff": "1.000000001s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE", 10, "UNAVAILABLE"]
      }
    },
    {
      "name": [{"service": "pkg.Svc"}, {"service": "pkg.Other", "method": ""}],
      "timeout": "3s",
      "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.5s", "nonFatalStatusCodes": ["INTERNAL"]}
    },
    {"name": [{}], "timeout": "10s", "someFutureField": {"x": 1}}
  ],
  "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1234}
}"#;

#[test]
fn a_full_config_parses_with_a6_caps_and_defaults() {
    let config = ServiceConfig::parse(FULL).expect("valid");
    assert_eq!(config.load_balancing, Some(LoadBalancingConfig::RoundRobin));
    assert_eq!(
        config.retry_throttling,
        Some(RetryThrottling {
            max_tokens: 10,
            token_ratio: 0.123
        })
    );
    let get = &config.method_configs[0];
    assert_eq!(get.timeout, Some(Duration::from_millis(250)));
    assert_eq!(get.wait_for_ready, Some(true));
    assert_eq!(get.max_request_message_bytes, Some(1024));
    assert_eq!(get.max_response_message_bytes, Some(2048));
    assert_eq!(
        get.reliability,
        Some(Reliability::Retry(RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::new(1, 1),
            backoff_multiplier: 2.0,
            retryable_status_codes: vec![Code::Unavailable, Code::Aborted],
        }))
    );
    assert_eq!(
        config.method_configs[1].reliability,
        Some(Reliability::Hedging(HedgingPolicy {
            max_attempts: 3,
            hedging_delay: Duration::from_millis(500),
            non_fatal_status_codes: vec![Code::Internal],
        }))
    );
}

#[test]
fn the_most_specific_name_wins() {
    let config = ServiceConfig::parse(FULL).expect("valid");
    let timeout = |path: &str| config.method_config(path).and_then(|m| m.timeout);
    assert_eq!(timeout("/pkg.Svc/Get"), Some(Duration::from_millis(250)));
    assert_eq!(timeout("/pkg.Svc/Put"), Some(Duration::from_secs(3)));
    assert_eq!(timeout("/pkg.Other/Any"), Some(Duration::from_secs(3)));
    assert_eq!(timeout("/pkg.Third/Any"), Some(Duration::from_secs(10)));
    assert_eq!(timeout("not a path"), Some(Duration::from_secs(10)));

    let no_default = ServiceConfig::parse(
        r#"{"methodConfig": [{"name": [{"service": "a.B"}], "waitForReady": false}]}"#,
    )
    .expect("valid");
    assert!(no_default.method_config("/a.C/M").is_none());
    assert_eq!(
        no_default
            .method_config("/a.B/M")
            .and_then(|m| m.wait_for_ready),
        Some(false)
    );
    assert_eq!(ServiceConfig::parse("{}"), Ok(ServiceConfig::default()));
}

#[test]
fn names_must_be_unique_and_a_method_needs_its_service() {
    rejected_at(
        r#"{"methodConfig": [{"name": [{"service": "a.B"}]}, {"name": [{"service": "x.Y"}, {"service": "a.B"}]}]}"#,
        "methodConfig[1].name[1]",
        "service a.B is named by an earlier entry",
    );
    rejected_at(
        r#"{"methodConfig": [{"name": [{}]}, {"name": [{"service": ""}]}]}"#,
        "methodConfig[1].name[0]",
        "every method",
    );
    rejected_at(
        r#"{"methodConfig": [{"name": [{"service": "a.B", "method": "M"}, {"service": "a.B", "method": "M"}]}]}"#,
        "methodConfig[0].name[1]",
        "method a.B/M",
    );
    rejected_at(
        r#"{"methodConfig": [{"name": [{"method": "M"}]}]}"#,
        "methodConfig[0].name[0]",
        "without its service",
    );
}

#[test]
fn every_bad_field_is_named() {
    let retry = |policy: &str| {
        format!(r#"{{"methodConfig": [{{"name": [{{}}], "retryPolicy": {policy}}}]}}"#)
    };
    let good = r#""initialBackoff": "1s", "maxBackoff": "2s", "backoffMultiplier": 1.5, "retryableStatusCodes": ["UNAVAILABLE"]"#;
    let cases: Vec<(String, &str, &str)> = vec![
        ("[]".into(), "", "must be an object"),
        ("{".into(), "", "not JSON"),
        (
            r#"{"methodConfig": {}}"#.into(),
            "methodConfig",
            "must be a list",
        ),
        (
            r#"{"methodConfig": [{"timeout": "1m"}]}"#.into(),
            "methodConfig[0].timeout",
            "not a duration",
        ),
        (
            r#"{"methodConfig": [{"timeout": "-1s"}]}"#.into(),
            "methodConfig[0].timeout",
            "not a duration",
        ),
        (
            r#"{"methodConfig": [{"timeout": "1.0000000001s"}]}"#.into(),
            "methodConfig[0].timeout",
            "not a duration",
        ),
        (
            r#"{"methodConfig": [{"timeout": 5}]}"#.into(),
            "methodConfig[0].timeout",
            "must be a string",
        ),
        (
            r#"{"methodConfig": [{"waitForReady": "yes"}]}"#.into(),
            "methodConfig[0].waitForReady",
            "true or false",
        ),
        (
            r#"{"methodConfig": [{"maxRequestMessageBytes": -1}]}"#.into(),
            "methodConfig[0].maxRequestMessageBytes",
            "whole number",
        ),
        (
            r#"{"methodConfig": [{"maxResponseMessageBytes": 4294967296}]}"#.into(),
            "methodConfig[0].maxResponseMessageBytes",
            "whole number",
        ),
        (
            retry(&format!(r#"{{"maxAttempts": 1, {good}}}"#)),
            "methodConfig[0].retryPolicy.maxAttempts",
            "at least 2",
        ),
        (
            retry(&format!("{{{good}}}")),
            "methodConfig[0].retryPolicy.maxAttempts",
            "required",
        ),
        (
            retry(
                r#"{"maxAttempts": 2, "initialBackoff": "0s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#,
            ),
            "methodConfig[0].retryPolicy.initialBackoff",
            "above zero",
        ),
        (
            retry(
                r#"{"maxAttempts": 2, "initialBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#,
            ),
            "methodConfig[0].retryPolicy.maxBackoff",
            "required",
        ),
        (
            retry(
                r#"{"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 0, "retryableStatusCodes": ["UNAVAILABLE"]}"#,
            ),
            "methodConfig[0].retryPolicy.backoffMultiplier",
            "above zero",
        ),
        (
            retry(
                r#"{"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": []}"#,
            ),
            "methodConfig[0].retryPolicy.retryableStatusCodes",
            "at least one",
        ),
        (
            retry(
                r#"{"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "unavailable"]}"#,
            ),
            "methodConfig[0].retryPolicy.retryableStatusCodes[1]",
            "not a status code name",
        ),
        (
            retry(
                r#"{"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": [17]}"#,
            ),
            "methodConfig[0].retryPolicy.retryableStatusCodes[0]",
            "0 to 16",
        ),
        (
            r#"{"methodConfig": [{"retryPolicy": {}, "hedgingPolicy": {}}]}"#.into(),
            "methodConfig[0]",
            "at most one",
        ),
        (
            r#"{"methodConfig": [{"hedgingPolicy": {"maxAttempts": 0}}]}"#.into(),
            "methodConfig[0].hedgingPolicy.maxAttempts",
            "at least 2",
        ),
        (
            r#"{"methodConfig": [{"hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "x"}}]}"#
                .into(),
            "methodConfig[0].hedgingPolicy.hedgingDelay",
            "not a duration",
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 1001, "tokenRatio": 1}}"#.into(),
            "retryThrottling.maxTokens",
            "1 to 1000",
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.0004}}"#.into(),
            "retryThrottling.tokenRatio",
            "at least 0.001",
        ),
        (
            r#"{"retryThrottling": {"maxTokens": 10}}"#.into(),
            "retryThrottling.tokenRatio",
            "required",
        ),
        (
            r#"{"loadBalancingConfig": [{"grpclb": {}}, {"xds": {}}]}"#.into(),
            "loadBalancingConfig",
            "grpclb, xds",
        ),
        (
            r#"{"loadBalancingConfig": [{"round_robin": {}, "pick_first": {}}]}"#.into(),
            "loadBalancingConfig[0]",
            "exactly one policy",
        ),
        (
            r#"{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": 1}}]}"#.into(),
            "loadBalancingConfig[0].pick_first.shuffleAddressList",
            "true or false",
        ),
        (
            r#"{"loadBalancingPolicy": "least_busy"}"#.into(),
            "loadBalancingPolicy",
            "not a policy",
        ),
    ];
    for (json, field, words) in cases {
        rejected_at(&json, field, words);
    }
}

#[test]
fn load_balancing_falls_back_to_the_deprecated_field_and_reads_pick_first_options() {
    let policy = |json: &str| ServiceConfig::parse(json).expect("valid").load_balancing;
    assert_eq!(
        policy(r#"{"loadBalancingPolicy": "ROUND_ROBIN"}"#),
        Some(LoadBalancingConfig::RoundRobin)
    );
    assert_eq!(
        policy(
            r#"{"loadBalancingPolicy": "round_robin", "loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}"#
        ),
        Some(LoadBalancingConfig::PickFirst {
            shuffle_address_list: true
        })
    );
    assert_eq!(policy(r#"{"methodConfig": null}"#), None);
}

#[test]
fn least_request_reads_its_choice_count_clamped_to_two_through_ten() {
    let policy = |json: &str| ServiceConfig::parse(json).expect("valid").load_balancing;
    let config = |n: &str| {
        format!(
            r#"{{"loadBalancingConfig": [{{"least_request_experimental": {{"choiceCount": {n}}}}}]}}"#
        )
    };
    let count = |choice_count| Some(LoadBalancingConfig::LeastRequest { choice_count });
    assert_eq!(
        policy(r#"{"loadBalancingConfig": [{"least_request": {}}]}"#),
        count(2)
    );
    assert_eq!(policy(&config("5")), count(5));
    assert_eq!(policy(&config("0")), count(2));
    assert_eq!(policy(&config("99")), count(10));
    rejected_at(
        &config("-1"),
        "loadBalancingConfig[0].least_request_experimental.choiceCount",
        "whole number",
    );
    rejected_at(
        r#"{"loadBalancingConfig": [{"least_request": []}]}"#,
        "loadBalancingConfig[0].least_request",
        "object",
    );
}

/// A registered policy that wants `{"weight": <number>}`.
struct Weighted;

impl crate::client::balancer::PolicyBuilder for Weighted {
    fn name(&self) -> &str {
        "weighted"
    }
    fn parse_config(&self, json: &str) -> Result<crate::client::balancer::PolicyConfig, String> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let weight = value
            .get("weight")
            .and_then(serde_json::Value::as_u64)
            .ok_or("weight must be a number")?;
        Ok(crate::client::balancer::PolicyConfig::new(weight))
    }
    fn build(
        &self,
        _: crate::client::balancer::PolicyArgs,
    ) -> Box<dyn crate::client::balancer::Policy> {
        unreachable!("only parsed here")
    }
}

#[test]
fn a_registered_policy_is_chosen_by_name_in_list_order_with_its_config() {
    let mut registry = PolicyRegistry::default();
    registry.register(std::sync::Arc::new(Weighted));
    let parse = |json: &str| ServiceConfig::parse_with(json, &registry);
    let chosen = parse(
        r#"{"loadBalancingConfig": [{"unknown": {}}, {"weighted": {"weight": 7}}, {"round_robin": {}}]}"#,
    )
    .expect("valid")
    .load_balancing
    .expect("a policy");
    let LoadBalancingConfig::Custom { name, config } = &chosen else {
        panic!("{chosen:?}");
    };
    assert_eq!((name.as_str(), config.get::<u64>()), ("weighted", Some(&7)));
    // Without the registration the next known entry wins.
    assert_eq!(
        ServiceConfig::parse(
            r#"{"loadBalancingConfig": [{"weighted": {"weight": 7}}, {"round_robin": {}}]}"#
        )
        .expect("valid")
        .load_balancing,
        Some(LoadBalancingConfig::RoundRobin)
    );
    // Its parser's error names the field.
    let error = parse(r#"{"loadBalancingConfig": [{"weighted": {"weight": "x"}}]}"#)
        .expect_err("a bad weight");
    assert_eq!(error.field, "loadBalancingConfig[0].weighted", "{error}");
    assert!(error.problem.contains("weight must be a number"), "{error}");
    // No known entry: the error lists what the channel has, the registered policy included.
    let error = parse(r#"{"loadBalancingConfig": [{"grpclb": {}}]}"#).expect_err("none known");
    assert_eq!(error.field, "loadBalancingConfig", "{error}");
    assert!(
        error.problem.contains("weighted") && error.problem.contains("grpclb"),
        "{error}"
    );
    // The deprecated field can name it too.
    assert!(matches!(
        parse(r#"{"loadBalancingPolicy": "weighted"}"#),
        Err(ServiceConfigError { ref field, .. }) if field == "loadBalancingPolicy"
    ));
}

#[test]
fn connection_scaling_sets_the_connections_per_subchannel() {
    let config =
        ServiceConfig::parse(r#"{"connectionScaling": {"maxConnectionsPerSubchannel": 4}}"#)
            .unwrap();
    assert_eq!(config.max_connections_per_subchannel, Some(4));
    assert_eq!(
        ServiceConfig::parse("{}")
            .unwrap()
            .max_connections_per_subchannel,
        None
    );
    let err = ServiceConfig::parse(r#"{"connectionScaling": {"maxConnectionsPerSubchannel": 0}}"#)
        .unwrap_err();
    assert_eq!(err.field, "connectionScaling.maxConnectionsPerSubchannel");
    let err =
        ServiceConfig::parse(r#"{"connectionScaling": {"maxConnectionsPerSubchannel": "x"}}"#)
            .unwrap_err();
    assert_eq!(err.field, "connectionScaling.maxConnectionsPerSubchannel");
    let err = ServiceConfig::parse(r#"{"connectionScaling": 3}"#).unwrap_err();
    assert_eq!(err.field, "connectionScaling");
}
