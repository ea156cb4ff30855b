//! Configured retries (gRFC A6) as a call sees them: attempts counted, the previous-attempts
//! header, backoff bounds, the server's pushback, the deadline over all attempts, and the
//! channel's throttle.

use std::time::Duration;

use anygrpc::{CallOptions, Channel, Code, Connectivity, Metadata};

use crate::e2e::service::{FLAKY, Ping};
use crate::e2e::{Env, TestServer};

/// Retries UNAVAILABLE on `Flaky`: four attempts in all, backoff bounds 10, 20, 40 ms.
const RETRY: &str = r#"{"methodConfig": [{
  "name": [{"service": "e2e.Test", "method": "Flaky"}],
  "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
}]}"#;

async fn ready_channel(env: &Env, srv: &TestServer, config: &str) -> Channel {
    let channel = env
        .channel_builder(srv.port)
        .service_config(config)
        .expect("a valid config")
        .build()
        .unwrap();
    assert_eq!(channel.channel_ready().await, Connectivity::Ready);
    channel
}

fn flaky(label: &str, failures: u32) -> Ping {
    Ping {
        count: failures,
        ..Ping::text(label)
    }
}

/// The attempts the server saw for `label`, each as its previous-attempts header.
fn attempts(srv: &TestServer, label: &str) -> Vec<String> {
    let prefix = format!("flaky:{label}:");
    srv.probe
        .events()
        .iter()
        .filter_map(|e| e.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

pub async fn retries_try_again_with_the_previous_attempts_header(env: Env) {
    let srv = env.start_server().await;
    let channel = ready_channel(&env, &srv, RETRY).await;
    let method = channel.unary_unary::<Ping, Ping>(FLAKY);

    let start = env.now();
    let reply = method.call(flaky("two", 2)).await.unwrap();
    assert_eq!(reply.text, "two");
    assert_eq!(attempts(&srv, "two"), ["-", "1", "2"]);
    if env.memory.is_some() {
        // Two backoffs, below 10 and 20 ms.
        assert!(env.now() - start < Duration::from_millis(30));
    }

    let err = method.call(flaky("never", 9)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(
        err.details(),
        "attempt 4 fails",
        "the last attempt's status"
    );
    assert_eq!(attempts(&srv, "never"), ["-", "1", "2", "3"]);

    // Without a policy for the method, one attempt.
    let plain = env.channel(srv.port);
    let err = plain
        .unary_unary::<Ping, Ping>(FLAKY)
        .call(flaky("plain", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(attempts(&srv, "plain"), ["-"]);
}

pub async fn retries_follow_the_servers_pushback(env: Env) {
    let srv = env.start_server().await;
    let channel = ready_channel(&env, &srv, RETRY).await;
    let method = channel.unary_unary::<Ping, Ping>(FLAKY);
    let pushback = |ms: &str| {
        let mut metadata = Metadata::new();
        metadata.insert("x-pushback", ms).expect("ascii");
        CallOptions::new().metadata(metadata)
    };

    let start = env.now();
    let reply = method
        .call_with(flaky("later", 1), pushback("300"))
        .await
        .unwrap();
    assert_eq!(reply.text, "later");
    let waited = env.now() - start;
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    if env.memory.is_some() {
        assert_eq!(waited, Duration::from_millis(300), "exactly the pushback");
    }
    assert_eq!(attempts(&srv, "later"), ["-", "1"]);

    // A negative pushback: no more attempts.
    let err = method
        .call_with(flaky("stop", 1), pushback("-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(attempts(&srv, "stop"), ["-"]);

    // A call cancelled during a long backoff ends at once, and its backoff task with it.
    let call = method.call_with(flaky("cancelled", 1), pushback("3600000"));
    while attempts(&srv, "cancelled").is_empty() {
        env.sleep(Duration::from_millis(1)).await;
    }
    env.sleep(Duration::from_millis(20)).await;
    let in_backoff = env.memory.as_ref().map(|rt| rt.live_tasks());
    assert!(call.cancel(), "still waiting to retry");
    assert_eq!(call.code().await, Code::Cancelled);
    env.sleep(Duration::from_millis(1)).await;
    if let (Some(rt), Some(before)) = (&env.memory, in_backoff) {
        assert!(
            rt.live_tasks() < before,
            "the backoff task ended with the call: {} tasks, {before} before",
            rt.live_tasks()
        );
    }
    assert_eq!(attempts(&srv, "cancelled"), ["-"]);
}

pub async fn retries_end_at_the_calls_deadline(env: Env) {
    let srv = env.start_server().await;
    let channel = ready_channel(&env, &srv, RETRY).await;
    let mut metadata = Metadata::new();
    metadata.insert("x-pushback", "10000").expect("ascii");
    let start = env.now();
    let call = channel.unary_unary::<Ping, Ping>(FLAKY).call_with(
        flaky("late", 1),
        CallOptions::new()
            .metadata(metadata)
            .timeout(Duration::from_millis(250)),
    );
    assert_eq!(call.code().await, Code::DeadlineExceeded);
    let elapsed = env.now() - start;
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    if env.memory.is_some() {
        assert_eq!(elapsed, Duration::from_millis(250), "at the deadline");
    }
    assert_eq!(attempts(&srv, "late"), ["-"]);
}

pub async fn retries_skip_other_codes_and_stop_when_throttled(env: Env) {
    let srv = env.start_server().await;
    let aborted_only = RETRY.replace(r#"["UNAVAILABLE"]"#, r#"["ABORTED"]"#);
    let channel = ready_channel(&env, &srv, &aborted_only).await;
    let err = channel
        .unary_unary::<Ping, Ping>(FLAKY)
        .call(flaky("other", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(attempts(&srv, "other"), ["-"]);

    // Three tokens: the first failure leaves two (above half: retried), the second one (not
    // above half: the call ends), where the policy alone would allow four attempts.
    let throttled = RETRY.replace(
        r#""methodConfig""#,
        r#""retryThrottling": {"maxTokens": 3, "tokenRatio": 1}, "methodConfig""#,
    );
    let channel = ready_channel(&env, &srv, &throttled).await;
    let method = channel.unary_unary::<Ping, Ping>(FLAKY);
    assert!(method.call(flaky("throttled", 9)).await.is_err());
    assert_eq!(attempts(&srv, "throttled"), ["-", "1"]);
    // Two successes refill it (1 + 2): retries go out again.
    for i in 0..2 {
        method.call(flaky(&format!("ok{i}"), 0)).await.unwrap();
    }
    assert_eq!(method.call(flaky("again", 1)).await.unwrap().text, "again");
    assert_eq!(attempts(&srv, "again"), ["-", "1"]);
}
