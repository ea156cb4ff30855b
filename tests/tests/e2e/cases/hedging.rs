//! Hedged calls (gRFC A6) as a call and the server see them: attempts spaced by the hedging
//! delay, the first answer committing the call and cancelling the others, non-fatal and
//! fatal codes, pushback, and the call's own end cancelling every attempt.

use std::time::Duration;

use anygrpc::{CallOptions, Channel, Code, Connectivity};

use crate::e2e::service::{HEDGE, HEDGE_CHAT, HEDGE_STREAM, HEDGE_SUM, Ping, asking_pushback};
use crate::e2e::{Env, TestServer};

/// Hedges `Hedge` and `HedgeStream`: three attempts 50 ms apart; UNAVAILABLE is not fatal.
const HEDGING: &str = r#"{"methodConfig": [{
  "name": [{"service": "e2e.Test", "method": "Hedge"},
           {"service": "e2e.Test", "method": "HedgeStream"},
           {"service": "e2e.Test", "method": "HedgeSum"},
           {"service": "e2e.Test", "method": "HedgeChat"}],
  "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.05s",
                    "nonFatalStatusCodes": ["UNAVAILABLE"]}
}]}"#;

async fn hedged_channel(env: &Env, srv: &TestServer) -> Channel {
    hedged_channel_with(env, srv, |b| b).await
}

async fn hedged_channel_with(
    env: &Env,
    srv: &TestServer,
    options: impl FnOnce(anygrpc::ChannelBuilder) -> anygrpc::ChannelBuilder,
) -> Channel {
    let channel = options(env.channel_builder(srv.port))
        .service_config(HEDGING)
        .expect("a valid config")
        .build()
        .unwrap();
    assert_eq!(channel.channel_ready().await, Connectivity::Ready);
    channel
}

/// A request whose attempt `n` acts as `actions[n]` says (see `service::HEDGE`).
fn hedge(label: &str, actions: &str, sleep_ms: u64) -> Ping {
    Ping {
        payload: actions.as_bytes().to_vec(),
        sleep_ms,
        ..Ping::text(label)
    }
}

/// What the server saw of the call labelled `label`: `n` for each attempt that started,
/// `cancelled:n` for each cancelled while it slept.
fn seen(srv: &TestServer, label: &str) -> Vec<String> {
    srv.probe.after(&format!("hedge:{label}:"))
}

pub async fn hedging_answers_from_the_first_attempt_to_answer(env: Env) {
    let srv = env.start_server().await;
    let channel = hedged_channel(&env, &srv).await;
    let method = channel.unary_unary::<Ping, Ping>(HEDGE);
    let start = env.now();
    // The first attempt sleeps; the second, 50 ms later, answers at once.
    let call = method.call(hedge("slow", "sa", 10_000));
    let head = call.initial_metadata().await;
    let reply = call.await.unwrap();
    let took = env.now() - start;
    assert_eq!(reply.count, 1, "the second attempt's answer");
    assert_eq!(
        head.get("x-attempt"),
        Some("1"),
        "the committed attempt's head"
    );
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    if env.memory.is_some() {
        assert_eq!(took, Duration::from_millis(50), "at the hedging delay");
    }
    // The first is cancelled on the server; no third attempt goes out.
    srv.probe.wait_for("hedge:slow:cancelled:0").await;
    env.sleep(Duration::from_millis(120)).await;
    assert_eq!(seen(&srv, "slow"), ["0", "1", "cancelled:0"]);

    // An attempt that answers before the delay: the only one.
    let reply = method.call(hedge("fast", "a", 0)).await.unwrap();
    assert_eq!(reply.count, 0);
    env.sleep(Duration::from_millis(120)).await;
    assert_eq!(seen(&srv, "fast"), ["0"]);
}

pub async fn hedging_goes_on_after_non_fatal_codes_and_stops_at_fatal_ones(env: Env) {
    let srv = env.start_server().await;
    let channel = hedged_channel(&env, &srv).await;
    let method = channel.unary_unary::<Ping, Ping>(HEDGE);

    // UNAVAILABLE: the next attempt goes out at once, not after the delay.
    let start = env.now();
    let reply = method.call(hedge("next", "ua", 0)).await.unwrap();
    assert_eq!(reply.count, 1);
    if env.memory.is_some() {
        assert_eq!(env.now() - start, Duration::ZERO, "no delay waited");
    }
    assert_eq!(seen(&srv, "next"), ["0", "1"]);

    // INVALID_ARGUMENT is fatal: the call ends with it.
    let err = method.call(hedge("fatal", "ia", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    env.sleep(Duration::from_millis(120)).await;
    assert_eq!(seen(&srv, "fatal"), ["0"]);

    // Every attempt unavailable: the call ends with the last one's status.
    let err = method.call(hedge("down", "uuu", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.details(), "attempt 2 unavailable");
    assert_eq!(seen(&srv, "down"), ["0", "1", "2"]);
}

pub async fn hedging_follows_the_servers_pushback(env: Env) {
    let srv = env.start_server().await;
    let channel = hedged_channel(&env, &srv).await;
    let method = channel.unary_unary::<Ping, Ping>(HEDGE);
    let pushback = asking_pushback;
    let start = env.now();
    let reply = method
        .call_with(hedge("later", "ua", 0), pushback("300"))
        .await
        .unwrap();
    assert_eq!(reply.count, 1);
    let took = env.now() - start;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    if env.memory.is_some() {
        assert_eq!(
            took,
            Duration::from_millis(300),
            "the pushback, not the delay"
        );
    }

    // A negative pushback: no more attempts.
    let err = method
        .call_with(hedge("stop", "ua", 0), pushback("-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    env.sleep(Duration::from_millis(120)).await;
    assert_eq!(seen(&srv, "stop"), ["0"]);
}

pub async fn a_hedged_call_that_ends_cancels_every_attempt(env: Env) {
    let srv = env.start_server().await;
    let channel = hedged_channel(&env, &srv).await;
    let method = channel.unary_unary::<Ping, Ping>(HEDGE);

    let call = method.call(hedge("cancel", "ss", 10_000));
    while seen(&srv, "cancel").len() < 2 {
        env.sleep(Duration::from_millis(5)).await;
    }
    assert!(call.cancel());
    assert_eq!(call.code().await, Code::Cancelled);
    srv.probe.wait_for("hedge:cancel:cancelled:0").await;
    srv.probe.wait_for("hedge:cancel:cancelled:1").await;

    // The deadline spans the attempts: all three sleep, the call ends at its deadline.
    let start = env.now();
    let call = method.call_with(
        hedge("deadline", "sss", 10_000),
        CallOptions::new().timeout(Duration::from_millis(200)),
    );
    assert_eq!(call.code().await, Code::DeadlineExceeded);
    let took = env.now() - start;
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    for n in 0..3 {
        srv.probe
            .wait_for(&format!("hedge:deadline:cancelled:{n}"))
            .await;
    }
}

pub async fn a_hedged_stream_flows_from_the_attempt_that_answered(env: Env) {
    let srv = env.start_server().await;
    let channel = hedged_channel(&env, &srv).await;
    let method = channel.unary_stream::<Ping, Ping>(HEDGE_STREAM);
    // 64 × 32 KiB: far more than the windows, so the stream flows only if the credit the
    // application gives back reaches the answering attempt's stream.
    let request = Ping {
        count: 64,
        reply_bytes: 32 * 1024,
        ..hedge("stream", "sa", 10_000)
    };
    let mut call = method.call(request);
    let head = call.initial_metadata().await;
    assert_eq!(head.get("x-attempt"), Some("1"));
    let mut received = 0;
    while let Some(message) = call.read().await {
        let message = message.unwrap();
        assert_eq!(message.count, received, "in order, none lost or doubled");
        assert_eq!(message.text, "1", "all from the second attempt");
        assert_eq!(message.payload.len(), 32 * 1024);
        received += 1;
    }
    assert_eq!(received, 64);
    assert_eq!(call.code().await, Code::Ok);
    srv.probe.wait_for("hedge:stream:cancelled:0").await;

    // Cancelled after the hand-over: the committed attempt's stream is reset.
    let request = Ping {
        count: 1000,
        reply_bytes: 32 * 1024,
        ..hedge("cut", "sa", 10_000)
    };
    let mut call = method.call(request);
    assert_eq!(call.read().await.unwrap().unwrap().text, "1");
    assert!(call.cancel());
    assert_eq!(call.code().await, Code::Cancelled);
}

pub async fn hedged_streaming_requests_reach_every_attempt(env: Env) {
    let srv = env.start_server().await;
    let channel = hedged_channel(&env, &srv).await;

    // Client streaming, written and half-closed at once: the second attempt, 50 ms later,
    // starts with all of it.
    let method = channel.stream_unary::<Ping, Ping>(HEDGE_SUM);
    let mut call = method.call();
    call.write(hedge("sum", "sa", 10_000)).await.unwrap();
    for text in ["b", "c"] {
        call.write(Ping::text(text)).await.unwrap();
    }
    call.done_writing().await.unwrap();
    assert_eq!(call.await.unwrap().text, "1:sum,b,c");
    srv.probe.wait_for("hedge:sum:cancelled:0").await;

    // Bidi: writes before the second attempt went out, and after it, reach it once each.
    let method = channel.stream_stream::<Ping, Ping>(HEDGE_CHAT);
    let mut call = method.call();
    call.write(hedge("chat", "sa", 10_000)).await.unwrap();
    call.write(Ping::text("two")).await.unwrap();
    env.sleep(Duration::from_millis(60)).await;
    call.write(Ping::text("three")).await.unwrap();
    assert_eq!(call.read().await.unwrap().unwrap().text, "1:chat");
    call.write(Ping::text("four")).await.unwrap();
    call.done_writing().await.unwrap();
    let mut rest = Vec::new();
    while let Some(reply) = call.read().await {
        rest.push(reply.unwrap().text);
    }
    assert_eq!(rest, ["1:two", "1:three", "1:four"], "none lost or doubled");
    assert_eq!(call.code().await, Code::Ok);
    srv.probe.wait_for("hedge:chat:cancelled:0").await;
    assert_eq!(seen(&srv, "chat"), ["0", "1", "cancelled:0"]);
}

pub async fn a_hedged_stream_past_its_retry_buffer_commits_to_its_oldest_attempt(env: Env) {
    let srv = env.start_server().await;
    let channel = hedged_channel_with(&env, &srv, |b| b.retry_buffer(64 * 1024, 1 << 24)).await;
    let method = channel.stream_stream::<Ping, Ping>(HEDGE_CHAT);
    let mut call = method.call();
    // The first attempt answers after 200 ms; 80 KiB written at once pass the buffer long
    // before the second attempt is due: the call commits to the first, none other is sent.
    call.write(Ping {
        payload: b"s".to_vec(),
        sleep_ms: 200,
        ..Ping::text("big")
    })
    .await
    .unwrap();
    for text in ["x", "y"] {
        call.write(Ping {
            payload: vec![0; 40 * 1024],
            ..Ping::text(text)
        })
        .await
        .unwrap();
    }
    call.done_writing().await.unwrap();
    let mut replies = Vec::new();
    while let Some(reply) = call.read().await {
        replies.push(reply.unwrap().text);
    }
    assert_eq!(replies, ["0:big", "0:x", "0:y"]);
    assert_eq!(call.code().await, Code::Ok);
    env.sleep(Duration::from_millis(100)).await;
    assert_eq!(seen(&srv, "big"), ["0"], "no second attempt");
}

pub async fn hedged_attempts_spread_over_round_robins_subchannels(env: Env) {
    let servers = [env.start_server().await, env.start_server().await];
    let target = format!(
        "ipv4:///127.0.0.1:{},127.0.0.1:{}",
        servers[0].port, servers[1].port
    );
    let config = HEDGING.replace(
        r#""methodConfig""#,
        r#""loadBalancingConfig": [{"round_robin": {}}], "methodConfig""#,
    );
    let channel = Channel::builder(target, env.runtime.clone())
        .service_config(&config)
        .expect("a valid config")
        .build()
        .unwrap();
    let method = channel.unary_unary::<Ping, Ping>(HEDGE);
    // Until both subchannels are up, picks may all go to one: warm them both.
    for i in 0.. {
        assert!(i < 500, "not both servers were reached");
        let label = format!("warm{i}");
        method.call(hedge(&label, "a", 0)).await.unwrap();
        if servers
            .iter()
            .all(|s| s.probe.events().iter().any(|e| e.starts_with("hedge:warm")))
        {
            break;
        }
    }
    // Each attempt goes to the next subchannel: the held-back one on one server, the one
    // that answers on the other.
    let reply = method.call(hedge("spread", "sa", 10_000)).await.unwrap();
    assert_eq!(reply.count, 1);
    let mut by_server: Vec<Vec<String>> = servers.iter().map(|s| seen(s, "spread")).collect();
    for _ in 0..200 {
        if by_server
            .iter()
            .any(|seen| seen.contains(&"cancelled:0".to_string()))
        {
            break;
        }
        env.sleep(Duration::from_millis(5)).await;
        by_server = servers.iter().map(|s| seen(s, "spread")).collect();
    }
    by_server.sort();
    assert_eq!(
        by_server,
        [
            vec!["0".to_string(), "cancelled:0".to_string()],
            vec!["1".to_string()]
        ],
        "one attempt on each server"
    );
}
