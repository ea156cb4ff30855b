//! Transports other than a port of 127.0.0.1: `unix:` server ports, listeners and
//! connections the application hands over, HTTP CONNECT proxies, in-process channels.

use std::future::poll_fn;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anygrpc::resolver::Endpoint;
use anygrpc::{
    BackoffConfig, BoxFuture, CallOptions, Channel, Code, Server, ServerCallDetails,
    ServerInterceptor, ServerNext, Status,
};
use futures_util::StreamExt;
use futures_util::future::join;

use crate::e2e::Env;
use crate::e2e::proxy::{ProxyMode, TestProxy, env_of};
use crate::e2e::service::{COUNT, ECHO, Ping, Probe, SLEEP, TestService};

/// Records the peer of every call.
#[derive(Clone, Default)]
struct Peers(Arc<Mutex<Vec<String>>>);

impl Peers {
    fn seen(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl ServerInterceptor for Peers {
    fn intercept(&self, call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
        self.0.lock().expect("not poisoned").push(call.peer.clone());
        next.run(call)
    }
}

/// A server with the test service, recording peers, not yet bound or started.
fn server(env: &Env) -> (Server, Probe, Peers) {
    let server = Server::new(env.runtime.clone());
    let probe = Probe::default();
    let peers = Peers::default();
    server.add_service(TestService::new(env.runtime.clone(), probe.clone()));
    server.add_interceptor(peers.clone());
    (server, probe, peers)
}

/// A fresh absolute socket path (a key only, on the memory runtime).
fn socket_path(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "anygrpc-e2e-{}-{n}-{name}.sock",
        std::process::id()
    ))
}

fn quick_backoff(builder: anygrpc::ChannelBuilder) -> anygrpc::ChannelBuilder {
    builder.backoff(BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        ..BackoffConfig::default()
    })
}

fn nap(text: &str, ms: u64) -> Ping {
    Ping {
        text: text.into(),
        sleep_ms: ms,
        ..Ping::default()
    }
}

pub async fn unix_ports_serve_calls_and_their_files_go_at_stop(env: Env) {
    let (path_a, path_b) = (socket_path("a"), socket_path("b"));
    // A socket left by a server that died: replaced, as C-core does.
    drop(std::os::unix::net::UnixListener::bind(&path_a).expect("a stale socket"));
    let (srv, _probe, peers) = server(&env);
    let a = format!("unix:{}", path_a.display());
    assert_eq!(srv.add_insecure_port(&a).await.expect("bind unix:path"), 0);
    // The `unix:///abs/path` form names the same kind of port.
    let b = format!("unix://{}", path_b.display());
    assert_eq!(
        srv.add_insecure_port(&b).await.expect("bind unix:///path"),
        0
    );
    srv.start();
    if env.memory.is_none() {
        assert!(path_a.exists() && path_b.exists(), "the sockets are bound");
    }
    let other = Server::new(env.runtime.clone());
    let taken = other.add_insecure_port(&a).await.expect_err("a live path");
    assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse, "{taken}");
    for (path, name) in [(&path_a, "a"), (&path_b, "b")] {
        let channel = Channel::builder(format!("unix:{}", path.display()), env.runtime.clone())
            .build()
            .expect("a unix: target");
        let reply = channel
            .unary_unary::<Ping, Ping>(ECHO)
            .call(Ping::text(name))
            .await
            .unwrap_or_else(|e| panic!("over unix socket {name}: {e}"));
        assert_eq!(reply.text, name);
    }
    assert!(
        peers.seen().iter().all(|peer| peer == "unix:"),
        "an unnamed client, as gRPC names it: {:?}",
        peers.seen()
    );
    assert_eq!(peers.seen().len(), 2);
    srv.stop(None).await;
    if env.memory.is_none() {
        assert!(!path_a.exists(), "stop removed {}", path_a.display());
        assert!(!path_b.exists(), "stop removed {}", path_b.display());
    }
    let after = Channel::builder(a, env.runtime.clone())
        .build()
        .expect("a target");
    let err = after
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("late"))
        .await
        .expect_err("nothing listens after stop");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // The memory runtime keeps its sockets in a table: the stale file is still the test's.
    let _ = std::fs::remove_file(&path_a);
}

pub async fn added_listeners_and_handed_over_connections_are_served_and_drained(env: Env) {
    let (srv, probe, peers) = server(&env);
    let listener = env
        .runtime
        .listen("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the application binds its own socket");
    let Endpoint::Tcp(addr) = srv.add_listener(listener).expect("added") else {
        panic!("a TCP listener's endpoint");
    };
    srv.start();
    let first = env.channel(addr.port());
    let reply = first
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("listener"))
        .await
        .expect("served through the added listener");
    assert_eq!(reply.text, "listener");

    // A connection the application accepts itself, then hands to the server.
    let mut own = env
        .runtime
        .listen("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("bind");
    let channel = env.channel(own.local_addr().expect("bound").port());
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let inflight = sleep.call(nap("handed", 300));
    let transport = poll_fn(|cx| own.poll_accept(cx)).await.expect("accepted");
    let client_peer = transport.peer();
    srv.serve_connection(transport);
    probe.wait_for("sleep:start:handed").await;
    assert_eq!(peers.seen().last(), Some(&client_peer));
    // Stop drains the handed-over connection like the server's own.
    let (_, reply) = join(srv.stop(Some(Duration::from_secs(20))), inflight).await;
    assert_eq!(reply.expect("finished within the grace").text, "handed");
    assert!(probe.has("sleep:done:handed"));
    // (Nothing accepts there any more, so the channel's reconnection is refused.)
    drop(own);
    let err = sleep
        .call(nap("after", 0))
        .await
        .expect_err("the connection closed with the server");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // A connection handed to a stopped server is closed at once.
    let mut own = env
        .runtime
        .listen("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("bind");
    let late = env.channel(own.local_addr().expect("bound").port());
    let call = late
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("late"));
    let transport = poll_fn(|cx| own.poll_accept(cx)).await.expect("accepted");
    srv.serve_connection(transport);
    drop(own);
    let err = call.await.expect_err("refused by a stopped server");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

pub async fn calls_go_through_an_http_connect_proxy(env: Env) {
    let srv = env.start_server().await;
    let proxy = TestProxy::start(&env.runtime, ProxyMode::Tunnel).await;
    // A name only the proxy can resolve: the client must not look it up (gRFC A1).
    let target = format!("dns:///backend.test:{}", srv.port);
    let channel = quick_backoff(Channel::builder(target, env.runtime.clone()))
        .proxy_env(env_of(&[("https_proxy", &proxy.url(Some("user:pa%3Ass")))]))
        .build()
        .expect("a target");
    let reply = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("proxied"))
        .await
        .expect("through the proxy");
    assert_eq!(reply.text, "proxied");
    let mut stream = channel.unary_stream::<Ping, Ping>(COUNT).call(Ping {
        count: 3,
        ..Ping::default()
    });
    let mut got = 0;
    while let Some(message) = stream.next().await {
        message.expect("a streamed message through the tunnel");
        got += 1;
    }
    assert_eq!(got, 3);
    let asked = proxy.asked();
    assert_eq!(asked.len(), 1, "one connection, one CONNECT: {asked:?}");
    let expected = format!("backend.test:{}", srv.port);
    assert_eq!(asked[0].line, format!("CONNECT {expected} HTTP/1.1"));
    assert_eq!(asked[0].header("host"), Some(expected.as_str()));
    assert_eq!(
        asked[0].header("proxy-authorization"),
        Some("Basic dXNlcjpwYTpzcw=="),
        "user:pa:ss from the URL's userinfo"
    );

    // A literal target: CONNECT names the address; grpc_proxy goes before https_proxy.
    let unused = TestProxy::start(&env.runtime, ProxyMode::Refuse("403 Forbidden")).await;
    let channel = Channel::builder(format!("127.0.0.1:{}", srv.port), env.runtime.clone())
        .proxy_env(env_of(&[
            ("grpc_proxy", &proxy.url(None)),
            ("https_proxy", &unused.url(None)),
        ]))
        .build()
        .expect("a target");
    channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("literal"))
        .await
        .expect("through grpc_proxy");
    let asked = proxy.asked();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(
        asked[1].line,
        format!("CONNECT 127.0.0.1:{} HTTP/1.1", srv.port)
    );
    assert_eq!(asked[1].header("proxy-authorization"), None);
    assert!(unused.asked().is_empty());

    // grpc.enable_http_proxy = 0: straight to the server.
    let channel = Channel::builder(format!("127.0.0.1:{}", srv.port), env.runtime.clone())
        .proxy_env(env_of(&[("http_proxy", &unused.url(None))]))
        .option("grpc.enable_http_proxy", 0)
        .expect("a known option")
        .build()
        .expect("a target");
    channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("direct"))
        .await
        .expect("direct");
    assert!(unused.asked().is_empty(), "the proxy was not asked");
}

pub async fn no_proxy_bypasses_the_proxy(env: Env) {
    let srv = env.start_server().await;
    let proxy = TestProxy::start(&env.runtime, ProxyMode::Refuse("403 Forbidden")).await;
    for (target, no_proxy) in [
        (
            format!("127.0.0.1:{}", srv.port),
            "example.com, 127.0.0.0/8",
        ),
        (format!("localhost:{}", srv.port), ".example.com,localhost"),
        (format!("127.0.0.1:{}", srv.port), "*"),
    ] {
        let channel = Channel::builder(target.clone(), env.runtime.clone())
            .proxy_env(env_of(&[
                ("HTTPS_PROXY", &proxy.url(None)),
                ("NO_PROXY", no_proxy),
            ]))
            .build()
            .expect("a target");
        channel
            .unary_unary::<Ping, Ping>(ECHO)
            .call(Ping::text("bypass"))
            .await
            .unwrap_or_else(|e| panic!("{target} with no_proxy={no_proxy:?}: {e}"));
    }
    assert!(proxy.asked().is_empty(), "{:?}", proxy.asked());
    // Not listed: the proxy is asked (and refuses).
    let channel = Channel::builder(format!("127.0.0.1:{}", srv.port), env.runtime.clone())
        .proxy_env(env_of(&[
            ("https_proxy", &proxy.url(None)),
            ("no_proxy", "10.0.0.0/8,other.host"),
        ]))
        .build()
        .expect("a target");
    let err = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("listed elsewhere"))
        .await
        .expect_err("the proxy refuses");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert_eq!(proxy.asked().len(), 1);
}

pub async fn a_proxy_refusal_fails_unavailable_with_its_status_line(env: Env) {
    let srv = env.start_server().await;
    let proxy = TestProxy::start(
        &env.runtime,
        ProxyMode::Refuse("407 Proxy Authentication Required"),
    )
    .await;
    let channel = Channel::builder(
        format!("dns:///backend.test:{}", srv.port),
        env.runtime.clone(),
    )
    .proxy_env(env_of(&[("http_proxy", &proxy.url(None))]))
    .build()
    .expect("a target");
    let err = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("refused"))
        .await
        .expect_err("the proxy refuses");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(
        err.details().contains("407 Proxy Authentication Required"),
        "the proxy's status line: {err}"
    );
    assert_eq!(proxy.asked().len(), 1);
    // A proxy URL that cannot be used fails the calls (never a silent bypass), naming it.
    let channel = Channel::builder(format!("127.0.0.1:{}", srv.port), env.runtime.clone())
        .proxy_env(env_of(&[("https_proxy", "socks5://127.0.0.1:1080")]))
        .build()
        .expect("a target");
    let err = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("bad proxy"))
        .await
        .expect_err("an unusable proxy");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.details().contains("https_proxy"), "{err}");
}

pub async fn in_process_channels_behave_as_over_tcp(env: Env) {
    let (srv, probe, peers) = server(&env);
    let channel = srv.in_process_channel();
    // Before `start`, a wait-for-ready call waits for the server, as on a bound port.
    let early = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call_with(Ping::text("early"), CallOptions::new().wait_for_ready(true));
    env.sleep(Duration::from_millis(50)).await;
    srv.start();
    assert_eq!(early.await.expect("served after start").text, "early");
    assert_eq!(peers.seen(), ["in-process"]);
    // Streaming.
    let mut stream = channel.unary_stream::<Ping, Ping>(COUNT).call(Ping {
        count: 5,
        ..Ping::default()
    });
    let mut got = 0;
    while let Some(message) = stream.next().await {
        message.expect("a streamed message");
        got += 1;
    }
    assert_eq!(got, 5);
    // Deadlines.
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let err = sleep
        .call_with(
            nap("late", 60_000),
            CallOptions::new().timeout(Duration::from_millis(100)),
        )
        .await
        .expect_err("past its deadline");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    // Cancellation.
    let call = sleep.call(nap("cancelled", 60_000));
    probe.wait_for("sleep:start:cancelled").await;
    assert!(call.cancel());
    assert_eq!(call.code().await, Code::Cancelled);
    // Graceful stop: the call in flight finishes, then the channel's calls fail.
    let inflight = sleep.call(nap("inflight", 200));
    probe.wait_for("sleep:start:inflight").await;
    let (_, reply) = join(srv.stop(Some(Duration::from_secs(20))), inflight).await;
    assert_eq!(reply.expect("finished within the grace").text, "inflight");
    let err = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("after"))
        .await
        .expect_err("the server stopped");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let err = srv
        .in_process_channel()
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("new"))
        .await
        .expect_err("a new channel to a stopped server");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}
