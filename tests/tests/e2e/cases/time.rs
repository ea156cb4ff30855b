//! Deadlines, time remaining, wait_for_ready and fail-fast.

use std::time::Duration;

use anygrpc::{CallOptions, Code, Connectivity};

use crate::e2e::Env;
use crate::e2e::service::{ECHO, Ping, SLEEP};

const DEADLINE: Duration = Duration::from_millis(200);

pub async fn deadline_exceeded_on_both_sides(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    // Connect first, so that the deadline measures the call alone.
    assert_eq!(channel.channel_ready().await, Connectivity::Ready);
    let start = env.now();
    let call = sleep.call_with(
        Ping {
            text: "late".into(),
            sleep_ms: 60_000,
            ..Ping::default()
        },
        CallOptions::new().timeout(DEADLINE),
    );
    let remaining = call.time_remaining().unwrap();
    assert!(remaining <= DEADLINE && remaining > DEADLINE / 2);
    assert_eq!(call.code().await, Code::DeadlineExceeded);
    let elapsed = env.now() - start;
    assert!(elapsed >= DEADLINE, "ended after {elapsed:?}");
    assert!(elapsed < DEADLINE * 10, "ended after {elapsed:?}");
    if env.memory.is_some() {
        assert_eq!(
            elapsed, DEADLINE,
            "on the manual clock, exactly at the deadline"
        );
    }
    assert_eq!(call.time_remaining(), Some(Duration::ZERO));
    assert!(
        !call.cancelled(),
        "a deadline is not a cancellation by the client"
    );
    srv.probe.wait_for("sleep:start:late").await;
    // The handler's context saw the call end (its own deadline timer or the client's reset).
    srv.probe.wait_for("sleep:cancelled:late").await;
    assert!(!srv.probe.has("sleep:done:late"));
    // The same through the awaited result.
    let err = sleep
        .call_with(
            Ping {
                text: "late2".into(),
                sleep_ms: 60_000,
                ..Ping::default()
            },
            CallOptions::new().timeout(DEADLINE),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    // A deadline long enough is no problem.
    let reply = sleep
        .call_with(
            Ping {
                text: "quick".into(),
                sleep_ms: 1,
                ..Ping::default()
            },
            CallOptions::new().timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(reply.text, "quick");
}

pub async fn time_remaining_decreases_on_both_sides(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    assert_eq!(channel.channel_ready().await, Connectivity::Ready);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let timeout = Duration::from_secs(10);
    let nap = Duration::from_millis(50);
    let call = sleep.call_with(
        Ping {
            text: "t".into(),
            sleep_ms: nap.as_millis() as u64,
            ..Ping::default()
        },
        CallOptions::new().timeout(timeout),
    );
    let t1 = call.time_remaining().unwrap();
    env.sleep(Duration::from_millis(20)).await;
    let t2 = call.time_remaining().unwrap();
    assert!(t1 <= timeout);
    assert!(
        t2 + Duration::from_millis(20) <= t1,
        "client: {t1:?} then {t2:?}"
    );
    let reply = call.await.unwrap();
    let [before, after] = reply.remaining_us[..] else {
        panic!("two samples: {:?}", reply.remaining_us)
    };
    let (before, after) = (Duration::from_micros(before), Duration::from_micros(after));
    assert!(before <= timeout, "server: {before:?}");
    assert!(after + nap <= before, "server: {before:?} then {after:?}");
    if env.memory.is_some() {
        // On the manual clock nothing passes but the handler's nap (grpc-timeout is exact here).
        assert_eq!(before, timeout);
        assert_eq!(after, timeout - nap);
    } else {
        assert!(
            before > timeout - Duration::from_secs(5),
            "server: {before:?}"
        );
    }
}

pub async fn wait_for_ready_waits_for_a_late_server(env: Env) {
    let port = env.free_port().await;
    let channel = env.channel(port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let call = echo.call_with(
        Ping::text("patient"),
        CallOptions::new()
            .wait_for_ready(true)
            .timeout(Duration::from_secs(30)),
    );
    // The call started, the channel tried and failed: the call is still waiting.
    let mut state = channel.state(false);
    while state != Connectivity::TransientFailure {
        state = channel.wait_for_state_change(state).await;
    }
    assert!(!call.done());
    let srv = env.start_server_with(anygrpc::Config::server(), port).await;
    assert_eq!(srv.port, port);
    let reply = call.await.unwrap();
    assert_eq!(reply.text, "patient");
    assert_eq!(channel.state(false), Connectivity::Ready);
}

pub async fn fail_fast_is_unavailable(env: Env) {
    let port = env.free_port().await;
    let channel = env.channel(port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let start = env.now();
    let err = echo
        .call_with(
            Ping::text("hasty"),
            CallOptions::new().timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let elapsed = env.now() - start;
    assert!(elapsed < Duration::from_secs(5), "failed after {elapsed:?}");
    if env.memory.is_some() {
        assert_eq!(
            elapsed,
            Duration::ZERO,
            "a refused connection costs no time"
        );
    }
    // While the channel is in TRANSIENT_FAILURE, a fail-fast call fails at once.
    let again = echo.call(Ping::text("again"));
    assert_eq!(again.code().await, Code::Unavailable);
}

pub async fn dead_port_is_unavailable(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    assert_eq!(echo.call(Ping::text("alive")).await.unwrap().text, "alive");
    srv.server.stop(None).await;
    // Nothing listens there any more.
    let err = echo.call(Ping::text("dead")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // A fresh channel to the dead port fails the same way.
    let fresh = env.channel(srv.port);
    let err = fresh
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("dead"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}
