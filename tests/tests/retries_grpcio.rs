//! Configured retries and hedging against a real peer on every executor: a Python grpcio
//! server (`tests/peers/python/retry_server.py`) fails each call's first attempts (or, for
//! hedging, holds the first one back) and logs every attempt it sees, with its
//! `grpc-previous-rpc-attempts` and its arrival time, so the test checks the attempts
//! counted, the headers, the backoff bounds, the pushback, the hedging delay and the
//! cancellation of the losing attempt from the server's side of the wire; and connection
//! scaling (gRFC A105) against a grpcio server that allows one stream per connection.

use std::time::Duration;

use anygrpc::{CallOptions, Channel, Code, Metadata};
use anygrpc_examples::python_peer::PythonPeer;
use anygrpc_examples::runtimes;

/// Four attempts in all, backoff bounds of 100, 200 and 400 ms.
const CONFIG: &str = r#"{"methodConfig": [{
  "name": [{"service": "retry.Flaky", "method": "Call"}],
  "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
}]}"#;

/// Hedges `Slow`: three attempts 200 ms apart.
const HEDGING: &str = r#"{"methodConfig": [{
  "name": [{"service": "retry.Flaky", "method": "Slow"}],
  "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.2s",
                    "nonFatalStatusCodes": ["UNAVAILABLE"]}
}]}"#;

/// Slack for the scheduling of two processes on a loaded machine.
const SLACK_MS: f64 = 150.0;

/// The attempts the server logged for `label`: (previous-attempts header, ms after the first).
async fn logged(channel: &Channel, label: &str) -> Vec<(String, f64)> {
    let text = channel
        .unary_unary::<String, String>("/retry.Flaky/Log")
        .call(label.to_owned())
        .await
        .expect("the log");
    text.split(';')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (previous, ms) = entry.split_once('@').expect("previous@ms");
            (previous.to_owned(), ms.parse().expect("milliseconds"))
        })
        .collect()
}

fn options(fail: u32, pushback: Option<&str>) -> CallOptions {
    let mut metadata = Metadata::new();
    metadata.insert("x-fail", &fail.to_string()).expect("ascii");
    if let Some(pushback) = pushback {
        metadata.insert("x-pushback", pushback).expect("ascii");
    }
    CallOptions::new()
        .metadata(metadata)
        .timeout(Duration::from_secs(20))
}

#[test]
fn retries_against_grpcio_on_every_executor() {
    let server = PythonPeer::start("retry_server.py", &[]).expect("the grpcio retry server");
    for &name in runtimes::RUNTIMES {
        let port = server.port();
        runtimes::run(name, |rt| async move {
            let channel = Channel::builder(format!("127.0.0.1:{port}"), rt)
                .service_config(CONFIG)
                .expect("a valid config")
                .build()
                .unwrap();
            let flaky = channel.unary_unary::<String, String>("/retry.Flaky/Call");

            // Two failures, then the answer: three attempts, numbered, within the bounds.
            let label = format!("two-{name}");
            let reply = flaky.call_with(label.clone(), options(2, None)).await;
            assert_eq!(reply.unwrap(), label);
            let log = logged(&channel, &label).await;
            let headers: Vec<&str> = log.iter().map(|(h, _)| h.as_str()).collect();
            assert_eq!(headers, ["-", "1", "2"], "{name}: {log:?}");
            let gaps = [log[1].1 - log[0].1, log[2].1 - log[1].1];
            assert!(gaps[0] < 100.0 + SLACK_MS, "{name}: first backoff {gaps:?}");
            assert!(
                gaps[1] < 200.0 + SLACK_MS,
                "{name}: second backoff {gaps:?}"
            );

            // Always failing: four attempts, the last one's status.
            let label = format!("never-{name}");
            let err = flaky
                .call_with(label.clone(), options(9, None))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{name}: {err}");
            assert_eq!(err.details(), "attempt 4 fails", "{name}");
            assert_eq!(logged(&channel, &label).await.len(), 4, "{name}");

            // The server's pushback sets the delay; a negative one stops the retries.
            let label = format!("pushback-{name}");
            let reply = flaky
                .call_with(label.clone(), options(1, Some("400")))
                .await;
            assert_eq!(reply.unwrap(), label);
            let log = logged(&channel, &label).await;
            assert_eq!(log.len(), 2, "{name}: {log:?}");
            let gap = log[1].1 - log[0].1;
            assert!(
                (400.0..400.0 + SLACK_MS * 2.0).contains(&gap),
                "{name}: pushback of 400 ms, retried after {gap} ms"
            );
            let label = format!("stop-{name}");
            let err = flaky
                .call_with(label.clone(), options(1, Some("-1")))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{name}");
            assert_eq!(logged(&channel, &label).await.len(), 1, "{name}");
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn hedging_against_grpcio_on_every_executor() {
    let server = PythonPeer::start("retry_server.py", &[]).expect("the grpcio retry server");
    for &name in runtimes::RUNTIMES {
        let port = server.port();
        runtimes::run(name, |rt| async move {
            let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.clone())
                .service_config(HEDGING)
                .expect("a valid config")
                .build()
                .unwrap();
            let slow = channel.unary_unary::<String, String>("/retry.Flaky/Slow");
            let label = format!("hedge-{name}");
            let mut metadata = Metadata::new();
            metadata.insert("x-sleep-ms", "5000").expect("ascii");
            let options = CallOptions::new()
                .metadata(metadata)
                .timeout(Duration::from_secs(20));
            let started = std::time::Instant::now();
            let reply = slow.call_with(label.clone(), options).await;
            let took = started.elapsed();
            assert_eq!(reply.unwrap(), "1", "{name}: the second attempt answered");
            assert!(
                took < Duration::from_secs(2),
                "{name}: {took:?}, not the 5 s sleep"
            );
            // The server saw the second attempt a hedging delay after the first, and the
            // first cancelled once the second answered; no third attempt.
            let mut log = logged(&channel, &label).await;
            for _ in 0..100 {
                if log.iter().any(|(h, _)| h == "cancelled") {
                    break;
                }
                rt.sleep_until(rt.now() + Duration::from_millis(20)).await;
                log = logged(&channel, &label).await;
            }
            let headers: Vec<&str> = log.iter().map(|(h, _)| h.as_str()).collect();
            assert_eq!(headers, ["-", "1", "cancelled"], "{name}: {log:?}");
            let spacing = log[1].1 - log[0].1;
            assert!(
                (200.0 - 20.0..200.0 + SLACK_MS).contains(&spacing),
                "{name}: hedging delay of 200 ms, the second attempt after {spacing} ms"
            );
            assert!(
                log[2].1 >= log[1].1,
                "{name}: cancelled after the answer: {log:?}"
            );
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn connection_scaling_against_grpcio_with_one_stream_per_connection() {
    let one_stream = std::ffi::OsStr::new("--max-concurrent-streams=1");
    let server =
        PythonPeer::start("retry_server.py", &[one_stream]).expect("the grpcio retry server");
    for &name in runtimes::RUNTIMES {
        let port = server.port();
        runtimes::run(name, |rt| async move {
            // 50 calls of 300 ms at once: about the time of one over 50 connections, where
            // one connection takes 15 s.
            let channel = Channel::builder(format!("127.0.0.1:{port}"), rt)
                .max_connections_per_subchannel(50)
                .build()
                .unwrap();
            channel.channel_ready().await;
            let nap = channel.unary_unary::<String, String>("/retry.Flaky/Nap");
            let started = std::time::Instant::now();
            let calls: Vec<_> = (0..50).map(|_| nap.call("300".to_string())).collect();
            for reply in futures_util::future::join_all(calls).await {
                assert_eq!(reply.unwrap(), "300", "{name}");
            }
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(1500),
                "{name}: 50 calls took {took:?}"
            );
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
