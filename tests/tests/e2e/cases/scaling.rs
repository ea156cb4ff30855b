//! Connection scaling (gRFC A105): a subchannel whose connections are all at the server's
//! SETTINGS_MAX_CONCURRENT_STREAMS opens another (up to the channel's
//! `max_connections_per_subchannel`, or the service config's `connectionScaling`) instead of
//! queueing calls behind the limit, and closes extra ones again once idle.

use std::time::Duration;

use anygrpc::{Channel, Config, Connectivity};
use futures_util::future::join_all;

use crate::e2e::service::{Ping, SLEEP};
use crate::e2e::{Env, TestServer};

/// Runs `n` calls of `SLEEP` (`ms` each) at once on `channel`; how long all took.
async fn concurrent_sleeps(env: &Env, channel: &Channel, n: usize, ms: u64) -> Duration {
    assert_eq!(channel.channel_ready().await, Connectivity::Ready);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let start = env.now();
    let calls: Vec<_> = (0..n)
        .map(|i| {
            sleep.call(Ping {
                sleep_ms: ms,
                ..Ping::text(format!("c{i}"))
            })
        })
        .collect();
    for reply in join_all(calls).await {
        reply.unwrap();
    }
    env.now() - start
}

async fn limited_server(env: &Env, streams: u32) -> TestServer {
    env.start_server_with(Config::server().max_concurrent_streams(streams), 0)
        .await
}

/// Live connections on the memory runtime (both ends of each count once).
fn live_connections(env: &Env) -> Option<usize> {
    let rt = env.memory.as_ref()?;
    Some(rt.connections().iter().filter(|c| !c.is_closed()).count())
}

pub async fn connection_scaling_opens_connections_at_the_servers_stream_limit(env: Env) {
    // One stream per connection: ten calls of 100 ms take 100 ms over ten connections, and
    // a second each over one.
    let srv = limited_server(&env, 1).await;
    let before = live_connections(&env);
    let scaled = env
        .channel_builder(srv.port)
        .max_connections_per_subchannel(10)
        .build()
        .unwrap();
    let took = concurrent_sleeps(&env, &scaled, 10, 100).await;
    assert!(took < Duration::from_millis(600), "scaled: {took:?}");
    if let (Some(before), Some(after)) = (before, live_connections(&env)) {
        assert_eq!(after - before, 10, "ten connections to the one address");
        assert!(took < Duration::from_millis(150), "scaled: {took:?}");
    }
    let plain = env.channel(srv.port);
    let took = concurrent_sleeps(&env, &plain, 10, 100).await;
    assert!(
        took >= Duration::from_millis(1000),
        "one connection: {took:?}"
    );

    // Ten streams per connection, twenty calls, at most two connections.
    let srv = limited_server(&env, 10).await;
    let two = env
        .channel_builder(srv.port)
        .max_connections_per_subchannel(2)
        .build()
        .unwrap();
    let took = concurrent_sleeps(&env, &two, 20, 100).await;
    assert!(
        took < Duration::from_millis(190),
        "two connections: {took:?}"
    );
    let took = concurrent_sleeps(&env, &two, 30, 100).await;
    assert!(
        took >= Duration::from_millis(200),
        "thirty calls need two rounds on two connections: {took:?}"
    );
}

pub async fn connection_scaling_follows_the_service_config_and_idle_extras_close(env: Env) {
    let srv = limited_server(&env, 1).await;
    let before = live_connections(&env);
    let channel = env
        .channel_builder(srv.port)
        .service_config(r#"{"connectionScaling": {"maxConnectionsPerSubchannel": 4}}"#)
        .expect("a valid config")
        .build()
        .unwrap();
    let took = concurrent_sleeps(&env, &channel, 8, 100).await;
    assert!(
        took >= Duration::from_millis(200),
        "two rounds of four: {took:?}"
    );
    assert!(
        took < Duration::from_millis(390),
        "four connections: {took:?}"
    );
    if let (Some(before), Some(rt)) = (before, env.memory.as_ref()) {
        assert_eq!(live_connections(&env), Some(before + 4));
        // Idle for a minute: the three extra connections close, the first stays.
        env.sleep(Duration::from_secs(65)).await;
        rt.run_until_stalled();
        assert_eq!(live_connections(&env), Some(before + 1), "back to one");
        // And scale again when needed.
        let took = concurrent_sleeps(&env, &channel, 4, 100).await;
        assert!(took < Duration::from_millis(150), "{took:?}");
    }
}
