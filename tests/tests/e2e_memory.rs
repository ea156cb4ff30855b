//! First end-to-end check: a real client and server over the in-memory runtime.

use std::time::Duration;

use anygrpc::testing::MemoryRuntime;
use anygrpc::{CallOptions, Channel, Code, Server, ServerCall, Status};
use bytes::Bytes;
use futures_util::StreamExt;

/// Adds `/test.Echo/Unary`: answers the request with itself.
fn add_unary_echo(server: &Server) {
    server.add_generic_handler("/test.Echo/Unary", |mut call: ServerCall| {
        Box::pin(async move {
            let request = call.recv().await.unwrap().unwrap();
            call.send(request).await.unwrap();
            call.finish(Status::ok(), Default::default());
        })
    });
}

/// A unary echo server that lets each connection have one stream at a time (so calls sent
/// with a new connection's first bytes, before its SETTINGS arrive, are refused), started.
fn one_stream_echo_server(rt: &MemoryRuntime) -> (Server, u16) {
    let config = anygrpc::Config::server().max_concurrent_streams(1);
    let server = Server::with_config(rt.handle(), config);
    add_unary_echo(&server);
    let port = rt
        .block_on(server.add_insecure_port("127.0.0.1:0"))
        .unwrap();
    server.start();
    (server, port)
}

/// Five unary echoes `m0`..`m4` started at once on `channel`, and their replies in order.
fn five_echoes_at_once(
    rt: &MemoryRuntime,
    channel: &Channel,
) -> Vec<Result<String, anygrpc::RpcError>> {
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    let calls: Vec<_> = (0..5).map(|i| echo.call(format!("m{i}"))).collect();
    rt.block_on(futures_util::future::join_all(calls))
}

/// Starts `server` on a free port and returns a channel to it.
fn serve_and_connect(rt: &MemoryRuntime, server: &Server) -> Channel {
    let port = rt
        .block_on(server.add_insecure_port("127.0.0.1:0"))
        .unwrap();
    server.start();
    Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap()
}

fn echo_server(rt: &MemoryRuntime) -> (Server, u16) {
    let server = Server::new(rt.handle());
    add_unary_echo(&server);
    server.add_generic_handler("/test.Echo/Fail", |call: ServerCall| {
        Box::pin(async move {
            call.finish(
                Status::new(Code::NotFound, "nothing here"),
                Default::default(),
            )
        })
    });
    server.add_generic_handler("/test.Echo/Count", |mut call: ServerCall| {
        Box::pin(async move {
            let mut n = 0u32;
            while let Some(Ok(_)) = call.recv().await {
                n += 1;
            }
            for i in 0..n {
                call.send(Bytes::from(vec![0x08, i as u8])).await.unwrap();
            }
            call.finish(Status::ok(), Default::default());
        })
    });
    let port = rt
        .block_on(server.add_insecure_port("127.0.0.1:0"))
        .unwrap();
    server.start();
    (server, port)
}

#[test]
fn unary_and_errors_over_the_memory_runtime() {
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    let reply = rt.block_on(echo.call("hello".to_string())).unwrap();
    assert_eq!(reply, "hello");
    let call = echo.call_with(
        "again".to_string(),
        CallOptions::new().timeout(Duration::from_secs(3)),
    );
    assert!(call.time_remaining().unwrap() <= Duration::from_secs(3));
    let reply = rt.block_on(async {
        let code = call.code().await;
        assert_eq!(code, Code::Ok);
        call.await
    });
    assert_eq!(reply.unwrap(), "again");

    let fail = channel.unary_unary::<String, String>("/test.Echo/Fail");
    let err = rt.block_on(fail.call(String::new())).unwrap_err();
    assert_eq!(
        (err.code(), err.details()),
        (Code::NotFound, "nothing here")
    );
    let missing = channel.unary_unary::<String, String>("/test.Nope/X");
    assert_eq!(
        rt.block_on(missing.call(String::new())).unwrap_err().code(),
        Code::Unimplemented
    );
}

#[test]
fn streaming_both_ways_over_the_memory_runtime() {
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    let count = channel.stream_stream::<String, u32>("/test.Echo/Count");
    let mut call = count.call();
    let got: Vec<u32> = rt.block_on(async {
        for i in 0..5 {
            call.write(format!("m{i}")).await.unwrap();
        }
        call.done_writing().await.unwrap();
        let mut got = Vec::new();
        while let Some(item) = call.next().await {
            got.push(item.unwrap());
        }
        assert_eq!(call.code().await, Code::Ok);
        got
    });
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

#[test]
fn dropping_the_last_channel_closes_its_connection() {
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    assert_eq!(rt.block_on(echo.call("x".to_string())).unwrap(), "x");
    let pipes = rt.connections();
    assert_eq!(pipes.len(), 1);
    assert!(!pipes[0].is_closed());
    drop(echo);
    drop(channel);
    rt.run_until_stalled();
    assert!(
        pipes[0].is_closed(),
        "the connection closed after the channel was dropped"
    );
}

#[test]
fn reconnect_backoff_follows_the_grpc_schedule_on_the_manual_clock() {
    use anygrpc::Connectivity;
    let rt = MemoryRuntime::new();
    // Nobody listens on this port yet: every attempt is refused at once.
    let channel = Channel::builder("127.0.0.1:7000", rt.handle())
        .build()
        .unwrap();
    assert_eq!(
        channel.state(false),
        Connectivity::Idle,
        "lazy: nothing happens before a call"
    );
    let mut expected = 1.0f64;
    for attempt in 0..6 {
        let began = rt.now();
        assert_eq!(
            channel.state(true),
            Connectivity::Connecting,
            "attempt {attempt}"
        );
        rt.run_until_stalled();
        assert_eq!(
            channel.state(false),
            Connectivity::TransientFailure,
            "attempt {attempt}"
        );
        let retry_at = rt.advance_to_next_timer().expect("a backoff timer");
        rt.run_until_stalled();
        assert_eq!(
            channel.state(false),
            Connectivity::Idle,
            "attempt {attempt}"
        );
        let waited = retry_at.duration_since(began).as_secs_f64();
        assert!(
            waited >= expected * 0.8 - 1e-6 && waited <= expected * 1.2 + 1e-6,
            "attempt {attempt}: waited {waited:.3} s, expected {expected:.3} s ± 20 %"
        );
        expected *= 1.6;
    }
}

#[test]
fn wait_for_ready_waits_through_failures_and_fail_fast_does_not() {
    let rt = MemoryRuntime::new();
    let channel = Channel::builder("127.0.0.1:7001", rt.handle())
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    // Fail fast: UNAVAILABLE as soon as the first attempt failed.
    let err = rt.block_on(echo.call("fast".to_string())).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // wait_for_ready: survives failed attempts until a server appears 5 s later.
    let call = echo.call_with(
        "patient".to_string(),
        CallOptions::new()
            .wait_for_ready(true)
            .timeout(Duration::from_secs(60)),
    );
    rt.set_auto_advance(false);
    rt.run_until_stalled();
    rt.advance(Duration::from_secs(5));
    rt.run_until_stalled();
    assert!(!call.done(), "still waiting");
    let server = Server::new(rt.handle());
    add_unary_echo(&server);
    rt.set_auto_advance(true);
    assert_eq!(
        rt.block_on(server.add_insecure_port("127.0.0.1:7001"))
            .unwrap(),
        7001
    );
    server.start();
    let started = rt.now();
    assert_eq!(rt.block_on(call).unwrap(), "patient");
    assert!(
        rt.now().duration_since(started) <= Duration::from_secs(60),
        "served before its deadline"
    );
    // A wait_for_ready call whose deadline passes first ends with DEADLINE_EXCEEDED.
    let channel = Channel::builder("127.0.0.1:7002", rt.handle())
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    let call = echo.call_with(
        "late".to_string(),
        CallOptions::new()
            .wait_for_ready(true)
            .timeout(Duration::from_secs(3)),
    );
    let began = rt.now();
    let err = rt.block_on(call).unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(rt.now().duration_since(began), Duration::from_secs(3));
}

#[test]
fn dropping_a_call_cancels_it_and_a_handler_that_forgets_the_status_ends_with_unknown() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let rt = MemoryRuntime::new();
    let server = Server::new(rt.handle());
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let seen = saw_cancel.clone();
    server.add_generic_handler("/test.Echo/Forever", move |mut call: ServerCall| {
        let seen = seen.clone();
        Box::pin(async move {
            // Reads until the client goes away; a cancelled call yields an error.
            while let Some(item) = call.recv().await {
                if item.is_err() {
                    seen.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
    });
    server.add_generic_handler("/test.Echo/Forgetful", |mut call: ServerCall| {
        Box::pin(async move {
            let _ = call.recv().await;
            // Returns without finish(): the call must still end.
        })
    });
    let channel = serve_and_connect(&rt, &server);

    let forever = channel.stream_stream::<String, String>("/test.Echo/Forever");
    let mut call = forever.call();
    rt.block_on(call.write("hello".to_string())).unwrap();
    drop(call);
    rt.run_until_stalled();
    assert!(
        saw_cancel.load(Ordering::SeqCst),
        "the server saw the dropped call cancelled"
    );

    let forgetful = channel.unary_unary::<String, String>("/test.Echo/Forgetful");
    let err = rt.block_on(forgetful.call("x".to_string())).unwrap_err();
    assert_eq!(err.code(), Code::Unknown, "{err}");
}

/// A server on `addr` whose `/test.Who/Am` answers its own name.
fn named_server(rt: &MemoryRuntime, addr: &str, name: &'static str) -> Server {
    let server = Server::new(rt.handle());
    server.add_generic_handler("/test.Who/Am", move |mut call: ServerCall| {
        Box::pin(async move {
            let _ = call.recv().await;
            call.send(Bytes::from(prost::Message::encode_to_vec(
                &name.to_string(),
            )))
            .await
            .unwrap();
            call.finish(Status::ok(), Default::default());
        })
    });
    rt.block_on(server.add_insecure_port(addr)).unwrap();
    server.start();
    server
}

fn who(
    rt: &MemoryRuntime,
    channel: &Channel,
    n: usize,
) -> std::collections::BTreeMap<String, usize> {
    let method = channel.unary_unary::<String, String>("/test.Who/Am");
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..n {
        let name = rt
            .block_on(method.call_with(String::new(), CallOptions::new().wait_for_ready(true)))
            .unwrap();
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

#[test]
fn round_robin_spreads_calls_and_routes_around_a_dead_address() {
    use anygrpc::LoadBalancing;
    let rt = MemoryRuntime::new();
    let a = named_server(&rt, "127.0.0.1:7101", "a");
    let _b = named_server(&rt, "127.0.0.1:7102", "b");
    let _c = named_server(&rt, "127.0.0.1:7103", "c");
    let channel = Channel::builder(
        "ipv4:///127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103",
        rt.handle(),
    )
    .load_balancing(LoadBalancing::RoundRobin)
    .build()
    .unwrap();
    assert_eq!(
        rt.block_on(channel.channel_ready()),
        anygrpc::Connectivity::Ready
    );
    rt.run_until_stalled(); // every subchannel connects
    let counts = who(&rt, &channel, 30);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "{counts:?}"
    );

    // a dies: it leaves the rotation, calls keep succeeding on b and c.
    rt.block_on(a.stop(None));
    rt.run_until_stalled();
    let counts = who(&rt, &channel, 20);
    assert_eq!(counts.get("a"), None, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 20);

    // a comes back: after its backoff it reconnects and rejoins.
    let _a = named_server(&rt, "127.0.0.1:7101", "a");
    rt.advance(Duration::from_secs(3));
    rt.run_until_stalled();
    let counts = who(&rt, &channel, 30);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "back in rotation: {counts:?}"
    );
}

#[test]
fn pick_first_fails_over_in_address_order() {
    let rt = MemoryRuntime::new();
    let a = named_server(&rt, "127.0.0.1:7201", "a");
    let _b = named_server(&rt, "127.0.0.1:7202", "b");
    let channel = Channel::builder("ipv4:///127.0.0.1:7201,127.0.0.1:7202", rt.handle())
        .build()
        .unwrap();
    assert_eq!(
        who(&rt, &channel, 5).get("a"),
        Some(&5),
        "the first address that accepts"
    );
    rt.block_on(a.stop(None));
    rt.run_until_stalled();
    assert_eq!(
        who(&rt, &channel, 5).get("b"),
        Some(&5),
        "failed over to the next address"
    );
}

#[test]
fn dns_targets_resolve_through_the_runtime() {
    let rt = MemoryRuntime::new();
    rt.add_host("svc.test", vec!["127.0.0.1".parse().unwrap()]);
    let _server = named_server(&rt, "127.0.0.1:7301", "dns");
    let channel = Channel::builder("dns:///svc.test:7301", rt.handle())
        .build()
        .unwrap();
    assert_eq!(who(&rt, &channel, 2).get("dns"), Some(&2));
    let unknown = Channel::builder("dns:///nowhere.test:7301", rt.handle())
        .build()
        .unwrap();
    let err = rt
        .block_on(
            unknown
                .unary_unary::<String, String>("/test.Who/Am")
                .call(String::new()),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

#[test]
fn calls_the_server_refused_unprocessed_are_retried_transparently() {
    let rt = MemoryRuntime::new();
    // One stream at a time: before its SETTINGS arrive, the client may send more, and the
    // server refuses them with REFUSED_STREAM (never processed).
    let (_server, port) = one_stream_echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    // All at once on a new channel: they go out with the connection's first bytes, while the
    // client still assumes the default limit.
    let replies = five_echoes_at_once(&rt, &channel);
    for (i, reply) in replies.into_iter().enumerate() {
        assert_eq!(
            reply.unwrap(),
            format!("m{i}"),
            "call {i} was retried, not failed"
        );
    }
}

#[test]
fn hedged_attempts_the_server_refused_are_retried_transparently() {
    let rt = MemoryRuntime::new();
    let (_server, port) = one_stream_echo_server(&rt);
    // Hedged, but no second attempt within the test and no code non-fatal: only the
    // transparent retry saves an attempt the server refused.
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .service_config(
            r#"{"methodConfig": [{"name": [{"service": "test.Echo"}],
                "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "30s"}}]}"#,
        )
        .unwrap()
        .build()
        .unwrap();
    let replies = five_echoes_at_once(&rt, &channel);
    for (i, reply) in replies.into_iter().enumerate() {
        assert_eq!(
            reply.unwrap(),
            format!("m{i}"),
            "call {i} was retried, not failed"
        );
    }
}

#[test]
fn streaming_calls_the_server_refused_are_retried_transparently_with_what_they_wrote() {
    let rt = MemoryRuntime::new();
    let config = anygrpc::Config::server().max_concurrent_streams(1);
    let server = Server::with_config(rt.handle(), config);
    server.add_generic_handler("/test.Echo/Bidi", |mut call: ServerCall| {
        Box::pin(async move {
            while let Some(Ok(request)) = call.recv().await {
                call.send(request).await.unwrap();
            }
            call.finish(Status::ok(), Default::default());
        })
    });
    let channel = serve_and_connect(&rt, &server);
    let bidi = channel.stream_stream::<String, String>("/test.Echo/Bidi");
    // Started and written at once on a new channel: all but one are refused (the server's
    // limit of one stream arrives after they went out), each with its messages and
    // half-close already sent; the retry sends them again.
    let calls = (0..5).map(|i| {
        let mut call = bidi.call();
        async move {
            call.write(format!("a{i}")).await.unwrap();
            call.write(format!("b{i}")).await.unwrap();
            call.done_writing().await.unwrap();
            let mut replies = Vec::new();
            while let Some(reply) = call.read().await {
                replies.push(reply.unwrap());
            }
            (replies, call.code().await)
        }
    });
    let results = rt.block_on(futures_util::future::join_all(calls));
    for (i, (replies, code)) in results.into_iter().enumerate() {
        assert_eq!(code, Code::Ok, "call {i} was retried, not failed");
        assert_eq!(replies, [format!("a{i}"), format!("b{i}")], "call {i}");
    }
}

#[test]
fn keepalive_detects_a_peer_that_stopped_answering() {
    let rt = MemoryRuntime::new();
    let config = anygrpc::Config::server().ping_policy(Some(
        anygrpc_core::PingPolicy::default().min_interval(Duration::from_secs(10)),
    ));
    let server = Server::with_config(rt.handle(), config);
    server.add_generic_handler("/test.Echo/Hang", |mut call: ServerCall| {
        Box::pin(async move {
            // Never answers; keeps the call (and so keepalive) going.
            while let Some(Ok(_)) = call.recv().await {}
            let _ = call;
        })
    });
    let port = rt
        .block_on(server.add_insecure_port("127.0.0.1:0"))
        .unwrap();
    server.start();
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .keepalive(Duration::from_secs(30), Duration::from_secs(10))
        .build()
        .unwrap();
    let hang = channel.stream_stream::<String, String>("/test.Echo/Hang");
    let mut call = hang.call();
    rt.block_on(call.write("x".to_string())).unwrap();
    // Healthy: five minutes of keepalives change nothing.
    rt.set_auto_advance(false);
    for _ in 0..10 {
        rt.advance(Duration::from_secs(30));
        rt.run_until_stalled();
    }
    assert!(!call.done(), "a healthy peer answers the keepalive PINGs");
    // The network freezes: the next PING goes unanswered for 10 s.
    for pipe in rt.connections() {
        pipe.freeze();
    }
    let frozen_at = rt.now();
    rt.set_auto_advance(true);
    let status = rt.block_on(call.status());
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    let took = rt.now().duration_since(frozen_at);
    assert!(
        took <= Duration::from_secs(41),
        "detected within keepalive time + timeout: {took:?}"
    );
}

#[test]
fn an_idle_channel_closes_its_connection_and_reconnects_on_the_next_call() {
    use anygrpc::Connectivity;
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .idle_timeout(Some(Duration::from_secs(300)))
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    assert_eq!(rt.block_on(echo.call("a".to_string())).unwrap(), "a");
    assert_eq!(channel.state(false), Connectivity::Ready);
    rt.set_auto_advance(false);
    // Busy enough: a call every 4 minutes keeps it open.
    for _ in 0..3 {
        rt.advance(Duration::from_secs(240));
        rt.run_until_stalled();
        assert_eq!(rt.block_on(echo.call("b".to_string())).unwrap(), "b");
    }
    assert_eq!(channel.state(false), Connectivity::Ready);
    let pipes = rt.connections();
    assert_eq!(pipes.len(), 1, "one connection all along");
    // Two quiet periods: the connection closes, the channel goes Idle.
    rt.advance(Duration::from_secs(300));
    rt.run_until_stalled();
    rt.advance(Duration::from_secs(300));
    rt.run_until_stalled();
    assert_eq!(channel.state(false), Connectivity::Idle);
    assert!(pipes[0].is_closed());
    rt.set_auto_advance(true);
    assert_eq!(
        rt.block_on(echo.call("c".to_string())).unwrap(),
        "c",
        "the next call reconnects"
    );
    let now_open = rt.connections();
    assert!(now_open.iter().any(|p| !p.is_closed()), "a new connection");
}

#[test]
fn round_robin_follows_dns_changes_on_its_resolve_interval() {
    use anygrpc::LoadBalancing;
    let rt = MemoryRuntime::new();
    rt.add_host("svc.test", vec!["127.0.0.1".parse().unwrap()]);
    let _one = named_server(&rt, "127.0.0.1:7401", "one");
    let _two = named_server(&rt, "127.0.0.2:7401", "two");
    let channel = Channel::builder("dns:///svc.test:7401", rt.handle())
        .load_balancing(LoadBalancing::RoundRobin)
        .resolve_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(who(&rt, &channel, 4).get("one"), Some(&4));
    // The name now also points at a second address: it joins at the next resolution.
    rt.add_host(
        "svc.test",
        vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()],
    );
    rt.set_auto_advance(false);
    rt.advance(Duration::from_secs(60));
    rt.run_until_stalled();
    rt.set_auto_advance(true);
    let counts = who(&rt, &channel, 10);
    assert_eq!(
        (counts.get("one"), counts.get("two")),
        (Some(&5), Some(&5)),
        "{counts:?}"
    );
    // And the first address leaves when the name stops listing it.
    rt.add_host("svc.test", vec!["127.0.0.2".parse().unwrap()]);
    rt.set_auto_advance(false);
    rt.advance(Duration::from_secs(60));
    rt.run_until_stalled();
    rt.set_auto_advance(true);
    assert_eq!(who(&rt, &channel, 6).get("two"), Some(&6));
}

#[test]
fn a_response_over_the_servers_send_limit_fails_the_call_instead_of_vanishing() {
    let rt = MemoryRuntime::new();
    let config = anygrpc::Config::server().max_send_message_size(10);
    let server = Server::with_config(rt.handle(), config);
    let sent = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = sent.clone();
    server.add_generic_handler("/test.Big/Reply", move |mut call: ServerCall| {
        let seen = seen.clone();
        Box::pin(async move {
            let _ = call.recv().await;
            // Sends run ahead of the driver: the refusal shows on the call, and on later sends.
            let _ = call.send(Bytes::from(vec![7u8; 100])).await;
            let mut result = Ok(());
            for _ in 0..100 {
                result = call.send(Bytes::from_static(b"x")).await;
                if result.is_err() {
                    break;
                }
            }
            *seen.lock().unwrap() = Some(result.map_err(|s| s.code()));
            call.finish(Status::ok(), Default::default());
        })
    });
    let channel = serve_and_connect(&rt, &server);
    let big = channel.unary_unary::<String, Vec<u8>>("/test.Big/Reply");
    let err = rt.block_on(big.call(String::new())).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    rt.run_until_stalled();
    assert_eq!(
        *sent.lock().unwrap(),
        Some(Err(Code::ResourceExhausted)),
        "the handler's send failed too"
    );
}

#[test]
fn a_handler_that_answers_at_once_runs_on_the_connection_task_and_others_get_their_own() {
    let rt = MemoryRuntime::new();
    let server = Server::new(rt.handle());
    add_unary_echo(&server);
    let sleeper = rt.clone();
    server.add_generic_handler("/test.Echo/Slow", move |mut call: ServerCall| {
        let rt = sleeper.clone();
        Box::pin(async move {
            let request = call.recv().await.unwrap().unwrap();
            anygrpc::Runtime::sleep_until(&rt, rt.now() + Duration::from_millis(5)).await;
            call.send(request).await.unwrap();
            call.finish(Status::ok(), Default::default());
        })
    });
    let channel = serve_and_connect(&rt, &server);
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    let slow = channel.unary_unary::<String, String>("/test.Echo/Slow");
    // The first call also connects (driver tasks on both sides, the accept loop).
    assert_eq!(rt.block_on(echo.call("warm".to_string())).unwrap(), "warm");
    let before = rt.spawned_tasks();
    for i in 0..10 {
        let reply = rt.block_on(echo.call(format!("n{i}"))).unwrap();
        assert_eq!(reply, format!("n{i}"));
    }
    assert_eq!(rt.spawned_tasks(), before, "no task per immediate handler");
    for i in 0..3 {
        let reply = rt.block_on(slow.call(format!("s{i}"))).unwrap();
        assert_eq!(reply, format!("s{i}"));
    }
    assert_eq!(
        rt.spawned_tasks(),
        before + 3,
        "one task per waiting handler"
    );
    rt.shutdown();
}

fn options_builder() -> anygrpc::ChannelBuilder {
    Channel::builder("127.0.0.1:1", MemoryRuntime::new().handle())
}

#[test]
fn channel_options_every_listed_one_is_taken() {
    for &key in anygrpc::CHANNEL_OPTIONS {
        let value: anygrpc::ChannelOptionValue = match key {
            "grpc.service_config" => "{}".into(),
            "grpc.lb_policy_name" => "round_robin".into(),
            "grpc.http_proxy" => "http://proxy.test:3128".into(),
            "grpc.default_authority"
            | "grpc.primary_user_agent"
            | "grpc.ssl_target_name_override" => "x.test".into(),
            _ => 1.into(),
        };
        assert!(options_builder().option(key, value).is_ok(), "{key}");
    }
}

#[test]
fn channel_options_bad_names_kinds_and_values_are_errors_naming_the_option() {
    let err = options_builder()
        .option("grpc.max_reconnect_backof_ms", 5)
        .unwrap_err();
    assert_eq!(err.key, "grpc.max_reconnect_backof_ms");
    assert!(err.problem.contains("grpc.service_config"), "{err}");
    let err = options_builder()
        .option("grpc.max_receive_message_length", "big")
        .unwrap_err();
    assert_eq!(err.problem, "takes an integer");
    let err = options_builder()
        .option("grpc.max_send_message_length", -2)
        .unwrap_err();
    assert!(err.problem.contains("-2"), "{err}");
    let err = options_builder()
        .option("grpc.enable_retries", 2)
        .unwrap_err();
    assert!(err.problem.contains("neither 0 nor 1"), "{err}");
    let err = options_builder()
        .option("grpc.service_config", r#"{"methodConfig": 3}"#)
        .unwrap_err();
    assert_eq!(err.key, "grpc.service_config");
    assert!(err.problem.contains("methodConfig"), "{err}");
    let err = options_builder()
        .option("grpc.lb_policy_name", "grpclb")
        .unwrap_err();
    assert!(err.problem.contains("grpclb"), "{err}");
    let err = options_builder()
        .options([("grpc.enable_retries", 1), ("grpc.keepalive_time_ms", -5)])
        .unwrap_err();
    assert_eq!(err.key, "grpc.keepalive_time_ms", "the first refused one");
}

#[test]
fn channel_options_take_effect() {
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    // grpc.service_config: the method's request limit holds.
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .options([
            (
                "grpc.service_config",
                anygrpc::ChannelOptionValue::from(
                    r#"{"methodConfig": [{"name": [{"service": "test.Echo"}],
                        "maxRequestMessageBytes": 4}]}"#,
                ),
            ),
            ("grpc.max_receive_message_length", 1024.into()),
        ])
        .unwrap()
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    assert_eq!(rt.block_on(echo.call("ok".to_string())).unwrap(), "ok");
    let err = rt
        .block_on(echo.call("longer than four".to_string()))
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");

    // grpc.enable_retries = 0: calls the server refused fail instead of going again.
    let (_server, port) = one_stream_echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .option("grpc.enable_retries", 0)
        .unwrap()
        .build()
        .unwrap();
    let replies = five_echoes_at_once(&rt, &channel);
    let refused = replies
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.code() == Code::Unavailable))
        .count();
    assert!(
        refused > 0,
        "without retries, refused calls fail: {replies:?}"
    );
}

#[test]
fn a_lost_connection_re_resolves_dns_at_most_every_30_seconds() {
    let rt = MemoryRuntime::new();
    rt.add_host("moving.test", vec!["127.0.0.1".parse().unwrap()]);
    let old = named_server(&rt, "127.0.0.1:7501", "old");
    let _new = named_server(&rt, "127.0.0.2:7501", "new");
    let channel = Channel::builder("dns:///moving.test:7501", rt.handle())
        .build()
        .unwrap();
    let resolved_at = rt.now();
    assert_eq!(who(&rt, &channel, 2).get("old"), Some(&2));
    // The service moves: the name now lists the new address, the old server goes away.
    rt.add_host("moving.test", vec!["127.0.0.2".parse().unwrap()]);
    rt.block_on(old.stop(None));
    rt.run_until_stalled();
    // The lost connection asks for a new resolution, which waits until 30 s after the last;
    // meanwhile the old address is refused, and the waiting call is served once it is done.
    assert_eq!(who(&rt, &channel, 1).get("new"), Some(&1));
    let waited = rt.now().duration_since(resolved_at);
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(33),
        "re-resolved after {waited:?}"
    );
    assert_eq!(who(&rt, &channel, 3).get("new"), Some(&3));
}

#[test]
fn a_resolver_registered_for_the_process_serves_every_channel() {
    use anygrpc::resolver::{Address, ManualResolver, ResolverUpdate};
    let rt = MemoryRuntime::new();
    let _server = named_server(&rt, "127.0.0.1:7601", "global");
    let registry = ManualResolver::new("process-wide");
    anygrpc::resolver::register(registry.clone());
    let channel = Channel::builder("process-wide:///svc", rt.handle())
        .build()
        .expect("the scheme is registered for the process");
    registry.update(ResolverUpdate::new(vec![Address::tcp(
        "127.0.0.1:7601".parse().unwrap(),
    )]));
    assert_eq!(who(&rt, &channel, 2).get("global"), Some(&2));
    let unknown = Channel::builder("nobody-registered:///svc", rt.handle()).build();
    assert!(unknown.is_err(), "an unknown scheme is an error at build");
}

#[test]
fn metadata_types_are_named_from_anygrpc() {
    use anygrpc::{Metadata, MetadataError, MetadataKey, MetadataValue};
    let mut metadata = Metadata::new();
    let key = MetadataKey::parse("X-Trace").expect("a valid key");
    assert_eq!(key.as_str(), "x-trace", "lowered");
    let value = MetadataValue::ascii("abc").expect("printable");
    metadata.append_value(key, value).expect("same kind");
    assert_eq!(metadata.get("x-trace"), Some("abc"));
    let refused: Result<MetadataKey, MetadataError> = MetadataKey::parse(":path");
    assert!(refused.is_err(), "pseudo-headers are not metadata");
}
