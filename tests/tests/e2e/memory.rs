//! Cases only the in-memory runtime can run: the clock stepped by hand, pipes broken on purpose.

use std::time::Duration;

use anygrpc::testing::MemoryRuntime;
use anygrpc::{CallOptions, Code, Connectivity};

use crate::e2e::Env;
use crate::e2e::service::{ECHO, Ping, SLEEP};

/// A deadline observed step by step on the manual clock: nothing happens one tick before it,
/// both sides see it at the tick.
pub fn deadline_on_the_manual_clock() {
    let rt = MemoryRuntime::new();
    let env = Env::memory(&rt);
    let srv = rt.block_on(env.start_server());
    let channel = env.channel(srv.port);
    assert_eq!(rt.block_on(channel.channel_ready()), Connectivity::Ready);
    rt.set_auto_advance(false);
    let timeout = Duration::from_secs(1);
    let call = channel.unary_unary::<Ping, Ping>(SLEEP).call_with(
        Ping {
            text: "m".into(),
            sleep_ms: 60_000,
            ..Ping::default()
        },
        CallOptions::new().timeout(timeout),
    );
    rt.run_until_stalled();
    assert!(srv.probe.has("sleep:start:m"));
    assert_eq!(call.time_remaining(), Some(timeout));
    for step in 1..=9 {
        rt.advance(Duration::from_millis(100));
        rt.run_until_stalled();
        let left = timeout - Duration::from_millis(100 * step);
        assert_eq!(call.time_remaining(), Some(left));
        assert!(!call.done(), "still running {left:?} before the deadline");
    }
    rt.advance(Duration::from_millis(99));
    rt.run_until_stalled();
    assert!(!call.done(), "1 ms before the deadline");
    assert!(!srv.probe.has("sleep:cancelled:m"));
    rt.advance(Duration::from_millis(1));
    rt.run_until_stalled();
    assert!(call.done(), "ended at the deadline");
    assert!(srv.probe.has("sleep:cancelled:m"), "the server saw it too");
    rt.set_auto_advance(true);
    assert_eq!(rt.block_on(call.code()), Code::DeadlineExceeded);
    assert_eq!(rt.elapsed(), timeout);
    rt.shutdown();
}

/// A connection broken under in-flight calls: they end with UNAVAILABLE, the server's
/// handlers see the cancellation, and the next call reconnects to the same server.
pub fn broken_pipe_mid_call() {
    let rt = MemoryRuntime::new();
    let env = Env::memory(&rt);
    let srv = rt.block_on(env.start_server());
    let channel = env.channel(srv.port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let calls: Vec<_> = (0..2)
        .map(|i| {
            sleep.call(Ping {
                text: format!("b{i}"),
                sleep_ms: 60_000,
                ..Ping::default()
            })
        })
        .collect();
    rt.run_until_stalled();
    let conns = rt.connections();
    assert_eq!(conns.len(), 1, "one connection for both calls");
    conns[0].break_pipe();
    rt.run_until_stalled();
    for call in calls {
        assert_eq!(rt.block_on(call.code()), Code::Unavailable);
    }
    rt.block_on(srv.probe.wait_for("sleep:cancelled:b0"));
    rt.block_on(srv.probe.wait_for("sleep:cancelled:b1"));
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let reply = rt.block_on(echo.call(Ping::text("again"))).unwrap();
    assert_eq!(reply.text, "again");
    assert_eq!(
        rt.connections().len(),
        1,
        "a new connection replaced the broken one"
    );
    assert!(!rt.connections()[0].is_broken());
    rt.shutdown();
}

/// A frozen connection: calls wait (nothing moves), then complete once it thaws; a deadline
/// still fires while frozen.
pub fn frozen_pipe_holds_calls() {
    let rt = MemoryRuntime::new();
    let env = Env::memory(&rt);
    let srv = rt.block_on(env.start_server());
    let channel = env.channel(srv.port);
    assert_eq!(rt.block_on(channel.channel_ready()), Connectivity::Ready);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let conn = rt.connections().remove(0);
    conn.freeze();
    let held = echo.call(Ping::text("held"));
    let bounded = echo.call_with(
        Ping::text("bounded"),
        CallOptions::new().timeout(Duration::from_millis(200)),
    );
    rt.run_until_stalled();
    assert!(!held.done());
    assert_eq!(rt.block_on(bounded.code()), Code::DeadlineExceeded);
    assert!(!held.done());
    conn.unfreeze();
    assert_eq!(rt.block_on(held).unwrap().text, "held");
    rt.shutdown();
}
