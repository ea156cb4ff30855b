//! The service config (gRFC A2) as a call sees it: the method's timeout, wait-for-ready and
//! message limits, the most specific name winning, and the balancing policy it chooses.

use std::time::Duration;

use anygrpc::{CallOptions, Code, Connectivity};

use crate::e2e::Env;
use crate::e2e::service::{ECHO, Ping, SLEEP, STATUS};

/// `Sleep` gets 200 ms from its own entry; every other method 30 s from the default entry;
/// `Echo` refuses requests over 64 bytes and responses over 128.
const CONFIG: &str = r#"{
  "methodConfig": [
    {"name": [{"service": "e2e.Test", "method": "Sleep"}], "timeout": "0.2s"},
    {"name": [{"service": "e2e.Test", "method": "Echo"}],
     "maxRequestMessageBytes": 64, "maxResponseMessageBytes": 128},
    {"name": [{}], "timeout": "30s", "waitForReady": true}
  ]
}"#;

/// A channel to `port` with [`CONFIG`].
fn configured(env: &Env, port: u16) -> anygrpc::Channel {
    env.channel_builder(port)
        .service_config(CONFIG)
        .expect("a valid config")
        .build()
        .unwrap()
}

pub async fn service_config_timeout_applies_and_the_earlier_deadline_wins(env: Env) {
    let srv = env.start_server().await;
    let channel = configured(&env, srv.port);
    assert_eq!(channel.channel_ready().await, Connectivity::Ready);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let long = Ping {
        sleep_ms: 60_000,
        ..Ping::text("config")
    };
    // No timeout of its own: the config's 200 ms.
    let start = env.now();
    let call = sleep.call(long.clone());
    let remaining = call.time_remaining().expect("a deadline from the config");
    assert!(remaining <= Duration::from_millis(200), "{remaining:?}");
    assert_eq!(call.code().await, Code::DeadlineExceeded);
    let elapsed = env.now() - start;
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    if env.memory.is_some() {
        assert_eq!(elapsed, Duration::from_millis(200));
    }
    // A shorter timeout of the call's own wins; a longer one does not.
    let call = sleep.call_with(
        long.clone(),
        CallOptions::new().timeout(Duration::from_millis(50)),
    );
    assert!(call.time_remaining().expect("a deadline") <= Duration::from_millis(50));
    assert_eq!(call.code().await, Code::DeadlineExceeded);
    let call = sleep.call_with(long, CallOptions::new().timeout(Duration::from_secs(20)));
    assert!(call.time_remaining().expect("a deadline") <= Duration::from_millis(200));
    assert_eq!(call.code().await, Code::DeadlineExceeded);
    // The server saw the config's deadline too (grpc-timeout): a short sleep reports it.
    let reply = sleep
        .call(Ping {
            sleep_ms: 1,
            ..Ping::text("quick")
        })
        .await
        .unwrap();
    let server_saw = Duration::from_micros(reply.remaining_us[0]);
    assert!(
        server_saw <= Duration::from_millis(201) && server_saw > Duration::from_millis(100),
        "the server's time remaining: {server_saw:?}"
    );
    // The most specific entry applies whole: Echo's sets no timeout (the default entry's is
    // not merged in); Status has no entry and takes the default one.
    let echo = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("e"));
    assert_eq!(echo.time_remaining(), None);
    assert_eq!(echo.await.unwrap().text, "e");
    let status = channel
        .unary_unary::<Ping, Ping>(STATUS)
        .call(Ping::text("ok"));
    let remaining = status
        .time_remaining()
        .expect("the default entry's deadline");
    assert!(remaining > Duration::from_secs(20), "{remaining:?}");
    assert_eq!(status.await.unwrap().text, "body");
}

pub async fn service_config_message_limits_are_the_smaller_of_config_and_channel(env: Env) {
    let srv = env.start_server().await;
    let channel = configured(&env, srv.port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let request = |n: usize| Ping {
        payload: vec![7; n],
        ..Ping::default()
    };
    // Ping's payload costs two bytes of framing on top of its length.
    assert_eq!(echo.call(request(62)).await.unwrap().payload.len(), 62);
    let over = echo.call(request(63));
    assert!(over.done(), "refused before anything was sent");
    assert_eq!(over.code().await, Code::ResourceExhausted);
    let reply = |n: u64| Ping {
        reply_bytes: n,
        ..Ping::default()
    };
    assert_eq!(echo.call(reply(125)).await.unwrap().payload.len(), 125);
    let err = echo.call(reply(127)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // Sleep has no limits in the config: the channel's defaults hold.
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let big = Ping {
        payload: vec![1; 4096],
        ..Ping::text("big")
    };
    assert_eq!(sleep.call(big).await.unwrap().text, "big");
    // A channel limit below the config's wins.
    let tight = env
        .channel_builder(srv.port)
        .max_send_message_length(16)
        .service_config(CONFIG)
        .expect("a valid config")
        .build()
        .unwrap();
    let call = tight.unary_unary::<Ping, Ping>(ECHO).call(request(20));
    assert_eq!(call.code().await, Code::ResourceExhausted);
}

pub async fn service_config_wait_for_ready_is_a_default_the_call_overrides(env: Env) {
    let port = env.free_port().await;
    let channel = configured(&env, port);
    // Status has no entry: the default one says waitForReady, and the call waits through
    // the failures.
    let status = channel.unary_unary::<Ping, Ping>(STATUS);
    let patient = status.call_with(
        Ping::text("patient"),
        CallOptions::new().timeout(Duration::from_secs(20)),
    );
    let mut state = channel.state(false);
    while state != Connectivity::TransientFailure {
        state = channel.wait_for_state_change(state).await;
    }
    assert!(!patient.done(), "waiting for ready, as the config says");
    // The call's own choice wins: fail fast.
    let hasty = status.call_with(
        Ping::text("hasty"),
        CallOptions::new().wait_for_ready(false),
    );
    assert_eq!(hasty.code().await, Code::Unavailable);
    let srv = env.start_server_with(anygrpc::Config::server(), port).await;
    assert_eq!(srv.port, port);
    assert_eq!(patient.await.unwrap().text, "body");
}

pub async fn service_config_chooses_round_robin(env: Env) {
    let servers = [
        env.start_server().await,
        env.start_server().await,
        env.start_server().await,
    ];
    let target = format!(
        "ipv4:///{}",
        servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    );
    let channel = anygrpc::Channel::builder(target, env.runtime.clone())
        .service_config(
            r#"{"loadBalancingConfig": [{"weighted_target": {}}, {"round_robin": {}}]}"#,
        )
        .expect("a valid config")
        .build()
        .unwrap();
    // Sleep (for no time) records which server ran it.
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let served = |prefix: &str| -> Vec<usize> {
        servers
            .iter()
            .map(|s| {
                let events = s.probe.events();
                events.iter().filter(|e| e.starts_with(prefix)).count()
            })
            .collect()
    };
    // Until every subchannel is up the spread may be uneven: wait for all three.
    for i in 0.. {
        assert!(
            i < 500,
            "not every server was reached: {:?}",
            served("sleep:done:warm")
        );
        let warm = Ping::text(format!("warm{i}"));
        let _ = sleep
            .call_with(warm, CallOptions::new().wait_for_ready(true))
            .await;
        if served("sleep:done:warm").iter().all(|&n| n > 0) {
            break;
        }
    }
    for i in 0..30 {
        sleep.call(Ping::text(format!("rr{i}"))).await.unwrap();
    }
    assert_eq!(served("sleep:done:rr"), [10, 10, 10], "calls per server");
}
