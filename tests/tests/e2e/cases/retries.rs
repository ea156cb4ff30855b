//! Configured retries (gRFC A6) as a call sees them: attempts counted, the previous-attempts
//! header, backoff bounds, the server's pushback, the deadline over all attempts, and the
//! channel's throttle.

use std::time::Duration;

use anygrpc::{CallOptions, Channel, Code, Connectivity, Metadata};

use crate::e2e::service::{FLAKY, FLAKY_CHAT, FLAKY_SUM, Ping, asking_pushback};
use crate::e2e::{Env, TestServer};

/// Retries UNAVAILABLE on `Flaky`: four attempts in all, backoff bounds 10, 20, 40 ms.
const RETRY: &str = r#"{"methodConfig": [{
  "name": [{"service": "e2e.Test", "method": "Flaky"}],
  "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
}]}"#;

/// Retries UNAVAILABLE on the streaming `FlakySum` and `FlakyChat`, as `RETRY` does.
const STREAM_RETRY: &str = r#"{"methodConfig": [{
  "name": [{"service": "e2e.Test", "method": "FlakySum"},
           {"service": "e2e.Test", "method": "FlakyChat"}],
  "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
}]}"#;

async fn ready_channel(env: &Env, srv: &TestServer, config: &str) -> Channel {
    ready_channel_with(env, srv, config, |b| b).await
}

async fn ready_channel_with(
    env: &Env,
    srv: &TestServer,
    config: &str,
    options: impl FnOnce(anygrpc::ChannelBuilder) -> anygrpc::ChannelBuilder,
) -> Channel {
    let channel = options(env.channel_builder(srv.port))
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
    attempts_of(srv, "flaky", label)
}

/// The attempts `method` (`flaky`, `flakysum`, `flakychat`) saw for `label`, each as its
/// previous-attempts header (and, for `flakysum`, `:` and the texts it read).
fn attempts_of(srv: &TestServer, method: &str, label: &str) -> Vec<String> {
    srv.probe.after(&format!("{method}:{label}:"))
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
    let pushback = asking_pushback;

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
        let ok = method.call(flaky(&format!("ok{i}"), 0)).await;
        assert!(ok.is_ok(), "a success refills the throttle: {ok:?}");
    }
    assert_eq!(method.call(flaky("again", 1)).await.unwrap().text, "again");
    assert_eq!(attempts(&srv, "again"), ["-", "1"]);
}

pub async fn retries_send_a_client_stream_again(env: Env) {
    let srv = env.start_server().await;
    let channel = ready_channel(&env, &srv, STREAM_RETRY).await;
    let method = channel.stream_unary::<Ping, Ping>(FLAKY_SUM);
    let mut call = method.call();
    call.write(flaky("cs", 2)).await.unwrap();
    for text in ["b", "c"] {
        call.write(Ping::text(text)).await.unwrap();
    }
    call.done_writing().await.unwrap();
    let reply = call.await.unwrap();
    assert_eq!((reply.count, reply.text.as_str()), (3, "cs,b,c"));
    assert_eq!(
        attempts_of(&srv, "flakysum", "cs"),
        ["-:cs,b,c", "1:cs,b,c", "2:cs,b,c"],
        "every attempt got the whole stream, half-close included"
    );

    // Writes that go on while an attempt fails and the next waits for its backoff: each
    // attempt gets all of them, in order, once.
    let mut call = method.call();
    call.write(flaky("slow", 1)).await.unwrap();
    for i in 0..20 {
        call.write(Ping::text(format!("{i}"))).await.unwrap();
        env.sleep(Duration::from_millis(1)).await;
    }
    call.done_writing().await.unwrap();
    let reply = call.await.unwrap();
    let texts: Vec<String> = std::iter::once("slow".to_string())
        .chain((0..20).map(|i| i.to_string()))
        .collect();
    assert_eq!(reply.text, texts.join(","));
    let expected: Vec<String> = ["-", "1"]
        .iter()
        .map(|previous| format!("{previous}:{}", texts.join(",")))
        .collect();
    assert_eq!(attempts_of(&srv, "flakysum", "slow"), expected);
}

pub async fn retries_send_a_bidi_stream_again_until_the_head_commits(env: Env) {
    let srv = env.start_server().await;
    let channel = ready_channel(&env, &srv, STREAM_RETRY).await;
    let method = channel.stream_stream::<Ping, Ping>(FLAKY_CHAT);
    let mut call = method.call();
    call.write(flaky("bidi", 2)).await.unwrap();
    call.write(Ping::text("two")).await.unwrap();
    let pong = call.read().await.unwrap().unwrap();
    assert_eq!(pong.text, "pong:bidi");
    call.write(Ping::text("three")).await.unwrap();
    call.done_writing().await.unwrap();
    let mut pongs = Vec::new();
    while let Some(pong) = call.read().await {
        pongs.push(pong.unwrap().text);
    }
    assert_eq!(
        pongs,
        ["pong:two", "pong:three"],
        "no message lost or doubled"
    );
    assert_eq!(call.code().await, Code::Ok);
    assert_eq!(attempts_of(&srv, "flakychat", "bidi"), ["-", "1", "2"]);

    // The server answered before it failed: the head committed the call to that attempt.
    let mut call = method.call();
    call.write(Ping {
        via_context: true,
        ..flaky("committed", 1)
    })
    .await
    .unwrap();
    assert_eq!(call.read().await.unwrap().unwrap().text, "pong:committed");
    let end = call.read().await;
    assert!(
        matches!(&end, Some(Err(e)) if e.code() == Code::Unavailable),
        "{end:?}"
    );
    assert_eq!(call.code().await, Code::Unavailable);
    assert_eq!(attempts_of(&srv, "flakychat", "committed"), ["-"]);
}

pub async fn retries_stop_past_the_retry_buffer(env: Env) {
    let srv = env.start_server().await;
    let big = |label: &str| Ping {
        payload: vec![1; 40 * 1024],
        ..flaky(label, 1)
    };
    // Per call: 64 KiB, and the stream writes 80.
    let channel = ready_channel_with(&env, &srv, STREAM_RETRY, |b| {
        b.retry_buffer(64 * 1024, 1 << 24)
    })
    .await;
    let method = channel.stream_unary::<Ping, Ping>(FLAKY_SUM);
    let mut call = method.call();
    call.write(big("per-call")).await.unwrap();
    call.write(big("b")).await.unwrap();
    call.done_writing().await.unwrap();
    assert_eq!(call.await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(attempts_of(&srv, "flakysum", "per-call"), ["-:per-call,b"]);
    // Below it: retried.
    let mut call = method.call();
    call.write(big("fits")).await.unwrap();
    call.done_writing().await.unwrap();
    assert_eq!(call.await.unwrap().text, "fits");
    assert_eq!(attempts_of(&srv, "flakysum", "fits"), ["-:fits", "1:fits"]);

    // Per channel: 50 KiB for all calls, while another call keeps 40 of it.
    let channel = ready_channel_with(&env, &srv, STREAM_RETRY, |b| {
        b.retry_buffer(1 << 20, 50 * 1024)
    })
    .await;
    let method = channel.stream_unary::<Ping, Ping>(FLAKY_SUM);
    let mut holder = method.call();
    holder.write(big("holder")).await.unwrap();
    let mut call = method.call();
    call.write(big("per-channel")).await.unwrap();
    call.done_writing().await.unwrap();
    assert_eq!(call.await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(
        attempts_of(&srv, "flakysum", "per-channel"),
        ["-:per-channel"]
    );
    // Once the holder is done, its share comes back.
    holder.done_writing().await.unwrap();
    assert_eq!(holder.await.unwrap().text, "holder");
    let mut call = method.call();
    call.write(big("room")).await.unwrap();
    call.done_writing().await.unwrap();
    assert_eq!(call.await.unwrap().text, "room");
    assert_eq!(attempts_of(&srv, "flakysum", "room"), ["-:room", "1:room"]);
}
