//! Reading a service config's JSON into [`ServiceConfig`], checking every field A2 and A6
//! define and naming the first bad one by its path.

use std::time::Duration;

use anygrpc_core::Code;
use serde_json::{Map, Value};

use super::{
    HedgingPolicy, LoadBalancingConfig, MAX_ATTEMPTS_CAP, MethodConfig, MethodName, Reliability,
    RetryPolicy, RetryThrottling, ServiceConfig, ServiceConfigError,
};
use crate::client::balancer::PolicyRegistry;

type Result<T> = std::result::Result<T, ServiceConfigError>;

/// Where in the document a value is, for errors.
#[derive(Clone)]
struct At(String);

impl At {
    fn field(&self, name: &str) -> At {
        if self.0.is_empty() {
            At(name.to_owned())
        } else {
            At(format!("{}.{name}", self.0))
        }
    }

    fn index(&self, i: usize) -> At {
        At(format!("{}[{i}]", self.0))
    }

    fn error(&self, problem: impl Into<String>) -> ServiceConfigError {
        ServiceConfigError {
            field: self.0.clone(),
            problem: problem.into(),
        }
    }
}

/// The whole document.
pub(super) fn service_config(json: &str, registry: &PolicyRegistry) -> Result<ServiceConfig> {
    let root = At(String::new());
    let value: Value =
        serde_json::from_str(json).map_err(|e| root.error(format!("not JSON: {e}")))?;
    let object = as_object(&value, &root)?;
    let mut config = ServiceConfig::default();

    if let Some(list) = field(object, "methodConfig") {
        let at = root.field("methodConfig");
        for (i, entry) in as_array(list, &at)?.iter().enumerate() {
            let at = at.index(i);
            let method_config = method_config(entry, &at)?;
            let position = config.method_configs.len();
            for (j, name) in method_config.names.iter().enumerate() {
                if !config.index.insert(name, position) {
                    return Err(at.field("name").index(j).error(format!(
                        "{} is named by an earlier entry too",
                        describe(name)
                    )));
                }
            }
            config.method_configs.push(method_config);
        }
    }
    if let Some(throttling) = field(object, "retryThrottling") {
        config.retry_throttling = Some(retry_throttling(
            throttling,
            &root.field("retryThrottling"),
        )?);
    }
    if let Some(scaling) = field(object, "connectionScaling") {
        let at = root.field("connectionScaling");
        let scaling = as_object(scaling, &at)?;
        if let Some(max) = field(scaling, "maxConnectionsPerSubchannel") {
            let at = at.field("maxConnectionsPerSubchannel");
            let max = uint32(max, &at)?;
            if max == 0 {
                return Err(at.error("must be at least 1"));
            }
            config.max_connections_per_subchannel = Some(max);
        }
    }
    config.load_balancing = match field(object, "loadBalancingConfig") {
        Some(list) => Some(load_balancing_config(
            list,
            &root.field("loadBalancingConfig"),
            registry,
        )?),
        None => match field(object, "loadBalancingPolicy") {
            Some(name) => Some(load_balancing_policy(
                name,
                &root.field("loadBalancingPolicy"),
                registry,
            )?),
            None => None,
        },
    };
    Ok(config)
}

/// `name` for an error message.
fn describe(name: &MethodName) -> String {
    match (&name.service[..], &name.method) {
        ("", _) => "every method".to_owned(),
        (service, None) => format!("service {service}"),
        (service, Some(method)) => format!("method {service}/{method}"),
    }
}

/// A field of `object`, treating JSON `null` as absent (as protobuf's JSON mapping does).
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

fn method_config(value: &Value, at: &At) -> Result<MethodConfig> {
    let object = as_object(value, at)?;
    let mut config = MethodConfig::default();
    if let Some(names) = field(object, "name") {
        let at = at.field("name");
        for (i, name) in as_array(names, &at)?.iter().enumerate() {
            config.names.push(method_name(name, &at.index(i))?);
        }
    }
    if let Some(wait) = field(object, "waitForReady") {
        config.wait_for_ready = Some(as_bool(wait, &at.field("waitForReady"))?);
    }
    if let Some(timeout) = field(object, "timeout") {
        config.timeout = Some(duration(timeout, &at.field("timeout"))?);
    }
    if let Some(bytes) = field(object, "maxRequestMessageBytes") {
        config.max_request_message_bytes =
            Some(uint32(bytes, &at.field("maxRequestMessageBytes"))? as usize);
    }
    if let Some(bytes) = field(object, "maxResponseMessageBytes") {
        config.max_response_message_bytes =
            Some(uint32(bytes, &at.field("maxResponseMessageBytes"))? as usize);
    }
    let retry = field(object, "retryPolicy");
    let hedging = field(object, "hedgingPolicy");
    config.reliability = match (retry, hedging) {
        (Some(_), Some(_)) => {
            return Err(at.error("has both retryPolicy and hedgingPolicy; at most one is allowed"));
        }
        (Some(retry), None) => Some(Reliability::Retry(retry_policy(
            retry,
            &at.field("retryPolicy"),
        )?)),
        (None, Some(hedging)) => Some(Reliability::Hedging(hedging_policy(
            hedging,
            &at.field("hedgingPolicy"),
        )?)),
        (None, None) => None,
    };
    Ok(config)
}

/// `{"service": S, "method": M}`: a method needs its service.
fn method_name(value: &Value, at: &At) -> Result<MethodName> {
    let object = as_object(value, at)?;
    let text = |name: &str| -> Result<String> {
        field(object, name)
            .map(|v| as_str(v, &at.field(name)).map(str::to_owned))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let (service, method) = (text("service")?, text("method")?);
    if service.is_empty() && !method.is_empty() {
        return Err(at.error(format!("method {method:?} is given without its service")));
    }
    Ok(MethodName {
        service,
        method: (!method.is_empty()).then_some(method),
    })
}

fn retry_policy(value: &Value, at: &At) -> Result<RetryPolicy> {
    let object = as_object(value, at)?;
    let max_attempts = max_attempts(object, at)?;
    let backoff = |name: &str| -> Result<Duration> {
        let at = at.field(name);
        let value = field(object, name).ok_or_else(|| at.error("is required"))?;
        let backoff = duration(value, &at)?;
        if backoff.is_zero() {
            return Err(at.error("must be above zero"));
        }
        Ok(backoff)
    };
    let (initial_backoff, max_backoff) = (backoff("initialBackoff")?, backoff("maxBackoff")?);
    let at_multiplier = at.field("backoffMultiplier");
    let backoff_multiplier = field(object, "backoffMultiplier")
        .ok_or_else(|| at_multiplier.error("is required"))
        .and_then(|v| as_f64(v, &at_multiplier))?;
    if backoff_multiplier.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(at_multiplier.error(format!("must be above zero, not {backoff_multiplier}")));
    }
    let at_codes = at.field("retryableStatusCodes");
    let retryable_status_codes = codes(
        field(object, "retryableStatusCodes").ok_or_else(|| at_codes.error("is required"))?,
        &at_codes,
    )?;
    if retryable_status_codes.is_empty() {
        return Err(at_codes.error("must name at least one code"));
    }
    Ok(RetryPolicy {
        max_attempts,
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable_status_codes,
    })
}

fn hedging_policy(value: &Value, at: &At) -> Result<HedgingPolicy> {
    let object = as_object(value, at)?;
    let max_attempts = max_attempts(object, at)?;
    let hedging_delay = field(object, "hedgingDelay")
        .map(|v| duration(v, &at.field("hedgingDelay")))
        .transpose()?
        .unwrap_or_default();
    let non_fatal_status_codes = field(object, "nonFatalStatusCodes")
        .map(|v| codes(v, &at.field("nonFatalStatusCodes")))
        .transpose()?
        .unwrap_or_default();
    Ok(HedgingPolicy {
        max_attempts,
        hedging_delay,
        non_fatal_status_codes,
    })
}

/// `maxAttempts`: required, at least 2; above 5 is taken as 5.
fn max_attempts(object: &Map<String, Value>, at: &At) -> Result<u32> {
    let at = at.field("maxAttempts");
    let attempts = uint32(
        field(object, "maxAttempts").ok_or_else(|| at.error("is required"))?,
        &at,
    )?;
    if attempts < 2 {
        return Err(at.error(format!("must be at least 2, not {attempts}")));
    }
    Ok(attempts.min(MAX_ATTEMPTS_CAP))
}

fn retry_throttling(value: &Value, at: &At) -> Result<RetryThrottling> {
    let object = as_object(value, at)?;
    let at_tokens = at.field("maxTokens");
    let max_tokens = uint32(
        field(object, "maxTokens").ok_or_else(|| at_tokens.error("is required"))?,
        &at_tokens,
    )?;
    if !(1..=1000).contains(&max_tokens) {
        return Err(at_tokens.error(format!("must be 1 to 1000, not {max_tokens}")));
    }
    let at_ratio = at.field("tokenRatio");
    let ratio = as_f64(
        field(object, "tokenRatio").ok_or_else(|| at_ratio.error("is required"))?,
        &at_ratio,
    )?;
    // A6: kept to three decimal places.
    let token_ratio = (ratio * 1000.0).trunc() / 1000.0;
    if token_ratio.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(at_ratio.error(format!("must be at least 0.001, not {ratio}")));
    }
    Ok(RetryThrottling {
        max_tokens,
        token_ratio,
    })
}

/// `[{"policy_name": {config}}, …]`: the first policy this channel knows (built in or
/// registered), with its config checked; policies it does not know are skipped, as A2 asks.
fn load_balancing_config(
    value: &Value,
    at: &At,
    registry: &PolicyRegistry,
) -> Result<LoadBalancingConfig> {
    let list = as_array(value, at)?;
    let mut names = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = at.index(i);
        let object = as_object(entry, &at)?;
        let mut policies = object.iter();
        let (Some((name, config)), None) = (policies.next(), policies.next()) else {
            return Err(at.error(format!(
                "must name exactly one policy, not {}",
                object.len()
            )));
        };
        if let Some(chosen) = policy(name, config, &at.field(name), registry)? {
            return Ok(chosen);
        }
        names.push(name.clone());
    }
    Err(at.error(format!(
        "names no policy this channel has (it has {}; the config names {})",
        registry.names().join(", "),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    )))
}

/// The policy `name` with its `config` checked; `None` if the channel does not have it. A
/// registered policy of a built-in's name replaces the built-in.
fn policy(
    name: &str,
    config: &Value,
    at: &At,
    registry: &PolicyRegistry,
) -> Result<Option<LoadBalancingConfig>> {
    if let Some(builder) = registry.registered(name) {
        as_object(config, at)?;
        let json = config.to_string();
        let parsed = crate::user_code::observed(|| builder.parse_config(&json))
            .unwrap_or_else(|| Err("the policy's config parser panicked".to_owned()))
            .map_err(|problem| at.error(problem))?;
        return Ok(Some(LoadBalancingConfig::Custom {
            name: name.to_owned(),
            config: parsed,
        }));
    }
    builtin_policy(name, config, at)
}

/// A built-in policy's config; `None` for another name.
fn builtin_policy(name: &str, config: &Value, at: &At) -> Result<Option<LoadBalancingConfig>> {
    Ok(Some(match name {
        "pick_first" => {
            let config = as_object(config, at)?;
            let shuffle_address_list = field(config, "shuffleAddressList")
                .map(|v| as_bool(v, &at.field("shuffleAddressList")))
                .transpose()?
                .unwrap_or(false);
            LoadBalancingConfig::PickFirst {
                shuffle_address_list,
            }
        }
        "round_robin" => {
            as_object(config, at)?;
            LoadBalancingConfig::RoundRobin
        }
        "least_request" | "least_request_experimental" => {
            let config = as_object(config, at)?;
            // A48: default 2; below 2 is taken as 2, above 10 as 10.
            let choice_count = field(config, "choiceCount")
                .map(|v| uint32(v, &at.field("choiceCount")))
                .transpose()?
                .unwrap_or(2)
                .clamp(2, 10);
            LoadBalancingConfig::LeastRequest { choice_count }
        }
        _ => return Ok(None),
    }))
}

/// A built-in policy's config given as JSON text.
pub(super) fn builtin_policy_json(name: &str, json: &str) -> Result<LoadBalancingConfig> {
    let at = At(name.to_owned());
    let value: Value =
        serde_json::from_str(json).map_err(|e| at.error(format!("not JSON: {e}")))?;
    builtin_policy(name, &value, &at)?.ok_or_else(|| at.error("is not a built-in policy"))
}

/// The deprecated `"loadBalancingPolicy": "round_robin"` (built-in names matched without
/// case), with an empty config.
fn load_balancing_policy(
    value: &Value,
    at: &At,
    registry: &PolicyRegistry,
) -> Result<LoadBalancingConfig> {
    let name = as_str(value, at)?;
    let empty = Value::Object(Map::new());
    if registry.registered(name).is_some() {
        if let Some(chosen) = policy(name, &empty, at, registry)? {
            return Ok(chosen);
        }
    }
    match builtin_policy(&name.to_ascii_lowercase(), &empty, at)? {
        Some(chosen) => Ok(chosen),
        None => Err(at.error(format!(
            "{name:?} is not a policy this channel has ({})",
            registry.names().join(", ")
        ))),
    }
}

/// Status codes given by name (`"UNAVAILABLE"`) or number (`14`).
fn codes(value: &Value, at: &At) -> Result<Vec<Code>> {
    let mut codes = Vec::new();
    for (i, code) in as_array(value, at)?.iter().enumerate() {
        let at = at.index(i);
        let code = match code {
            Value::String(name) => Code::ALL
                .into_iter()
                .find(|c| c.as_str() == name)
                .ok_or_else(|| at.error(format!("{name:?} is not a status code name")))?,
            Value::Number(n) => match n.as_u64() {
                Some(v @ 0..=16) => Code::from_i32(v as i32),
                _ => return Err(at.error(format!("{n} is not a status code (0 to 16)"))),
            },
            _ => return Err(at.error("must be a status code name or number")),
        };
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(codes)
}

/// A `google.protobuf.Duration` in JSON: decimal seconds with an `s`, e.g. `"1.5s"`, at most
/// nine fractional digits, not negative.
fn duration(value: &Value, at: &At) -> Result<Duration> {
    let text = as_str(value, at)?;
    let bad = || at.error(format!("{text:?} is not a duration such as \"1.5s\""));
    let number = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 9
        || (number.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let seconds: u64 = whole.parse().map_err(|_| bad())?;
    // Protobuf's Duration ends at 315,576,000,000 s (10,000 years).
    if seconds > 315_576_000_000 {
        return Err(at.error(format!(
            "{text:?} is longer than a protobuf Duration can be"
        )));
    }
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| bad())?
    };
    Ok(Duration::new(seconds, nanos))
}

/// A `UInt32Value`: a JSON number, or a string of one (protobuf's JSON mapping allows both).
fn uint32(value: &Value, at: &At) -> Result<u32> {
    let number = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    number.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        at.error(format!(
            "must be a whole number 0 to {}, not {value}",
            u32::MAX
        ))
    })
}

fn as_object<'a>(value: &'a Value, at: &At) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| at.error(format!("must be an object, not {}", kind(value))))
}

fn as_array<'a>(value: &'a Value, at: &At) -> Result<&'a Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| at.error(format!("must be a list, not {}", kind(value))))
}

fn as_str<'a>(value: &'a Value, at: &At) -> Result<&'a str> {
    value
        .as_str()
        .ok_or_else(|| at.error(format!("must be a string, not {}", kind(value))))
}

fn as_bool(value: &Value, at: &At) -> Result<bool> {
    value
        .as_bool()
        .ok_or_else(|| at.error(format!("must be true or false, not {}", kind(value))))
}

fn as_f64(value: &Value, at: &At) -> Result<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
    .ok_or_else(|| at.error(format!("must be a number, not {}", kind(value))))
}

/// The JSON kind of `value`, for errors.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
