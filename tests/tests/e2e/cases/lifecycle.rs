//! Server stop, channel close, a server going away mid-call, usage errors, panics.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anygrpc::{
    AuthMetadataContext, BoxFuture, CallCredentials, CallOptions, ClientCallDetails,
    ClientInterceptor, Code, Connectivity, Metadata, ServerCallDetails, ServerInterceptor,
    ServerNext, Status, UsageError, WriteError,
};
use futures_util::FutureExt;
use futures_util::future::join;
use futures_util::stream;

use crate::e2e::Env;
use crate::e2e::service::{CHAT, ECHO, PANIC, Ping, SLEEP, SUM};

fn nap(text: &str, ms: u64) -> Ping {
    Ping {
        text: text.into(),
        sleep_ms: ms,
        ..Ping::default()
    }
}

pub async fn server_stop_with_grace_lets_calls_finish(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let inflight = sleep.call(nap("inflight", 300));
    srv.probe.wait_for("sleep:start:inflight").await;
    assert!(
        srv.server.wait_for_termination().now_or_never().is_none(),
        "still serving"
    );
    let grace = Duration::from_secs(20);
    let start = env.now();
    let stopping = async {
        srv.server.stop(Some(grace)).await;
        env.now()
    };
    let checks = async {
        // A new connection is refused while the server drains.
        let other = env.channel(srv.port);
        let err = other
            .unary_unary::<Ping, Ping>(ECHO)
            .call(Ping::text("new"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        let reply = inflight.await.unwrap();
        assert_eq!(reply.text, "inflight");
    };
    let (stopped_at, ()) = join(stopping, checks).await;
    let took = stopped_at - start;
    assert!(took < grace / 2, "stop waited {took:?} for a 300 ms call");
    assert!(srv.probe.has("sleep:done:inflight"));
    srv.server.wait_for_termination().await;
    // After the stop, the old channel's calls fail too.
    let err = sleep.call(nap("after", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

pub async fn server_stop_with_short_grace_cancels_the_rest(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let quick = sleep.call(nap("quick", 10));
    let slow = sleep.call(nap("slow", 60_000));
    srv.probe.wait_for("sleep:start:slow").await;
    srv.probe.wait_for("sleep:start:quick").await;
    let grace = Duration::from_millis(200);
    let start = env.now();
    let (_, (quick, slow)) = join(srv.server.stop(Some(grace)), join(quick, slow)).await;
    let took = env.now() - start;
    assert_eq!(quick.unwrap().text, "quick");
    // Calls still running when the grace ends are cancelled; gRPC reports UNAVAILABLE.
    assert_eq!(slow.unwrap_err().code(), Code::Unavailable);
    assert!(took >= grace, "stop returned after {took:?}");
    assert!(took < grace * 20, "stop returned after {took:?}");
    srv.probe.wait_for("sleep:cancelled:slow").await;
    srv.server.wait_for_termination().await;
}

pub async fn server_stop_now_cancels_calls(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let calls: Vec<_> = (0..3)
        .map(|i| sleep.call(nap(&format!("s{i}"), 60_000)))
        .collect();
    for i in 0..3 {
        srv.probe.wait_for(&format!("sleep:start:s{i}")).await;
    }
    let terminated = async {
        srv.server.wait_for_termination().await;
        true
    };
    let (terminated, ()) = join(terminated, srv.server.stop(None)).await;
    assert!(terminated);
    for (i, call) in calls.into_iter().enumerate() {
        let err = call.await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "call {i}: {err}");
        srv.probe.wait_for(&format!("sleep:cancelled:s{i}")).await;
    }
    // Stopping twice is harmless.
    srv.server.stop(None).await;
}

pub async fn channel_close_with_grace(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let inflight = sleep.call(nap("inflight", 200));
    srv.probe.wait_for("sleep:start:inflight").await;
    let grace = Duration::from_secs(20);
    let start = env.now();
    let closing = async {
        channel.close(Some(grace)).await;
        env.now()
    };
    let checks = async {
        // After close began, new calls fail at once, without touching the network.
        let new = echo.call(Ping::text("new"));
        assert!(new.done(), "failed at once");
        assert_eq!(new.code().await, Code::Cancelled);
        assert_eq!(channel.state(true), Connectivity::Shutdown);
        assert_eq!(inflight.await.unwrap().text, "inflight");
    };
    let (closed_at, ()) = join(closing, checks).await;
    assert!(
        closed_at - start < grace / 2,
        "close waited {:?}",
        closed_at - start
    );
    // Still closed for good.
    assert_eq!(
        echo.call(Ping::text("later")).await.unwrap_err().code(),
        Code::Cancelled
    );
    // The server is unaffected.
    let other = env.channel(srv.port);
    let reply = other.unary_unary::<Ping, Ping>(ECHO).call(Ping::text("ok"));
    assert_eq!(reply.await.unwrap().text, "ok");
}

pub async fn channel_close_now(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let inflight = sleep.call(nap("inflight", 60_000));
    srv.probe.wait_for("sleep:start:inflight").await;
    channel.close(None).await;
    // grpc-go and grpc.aio both report CANCELLED for calls the channel's close ends.
    assert_eq!(inflight.await.unwrap_err().code(), Code::Cancelled);
    srv.probe.wait_for("sleep:cancelled:inflight").await;
    let err = sleep.call(nap("new", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::Cancelled);
}

pub async fn server_killed_mid_call_then_back(env: Env) {
    let srv = env.start_server().await;
    let port = srv.port;
    let channel = env.channel(port);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let calls: Vec<_> = (0..2)
        .map(|i| sleep.call(nap(&format!("k{i}"), 60_000)))
        .collect();
    for i in 0..2 {
        srv.probe.wait_for(&format!("sleep:start:k{i}")).await;
    }
    srv.server.stop(None).await;
    drop(srv);
    for call in calls {
        assert_eq!(call.await.unwrap_err().code(), Code::Unavailable);
    }
    // The lost connection left the channel IDLE (gRPC's pick_first): once a server is back
    // on the same port, a new call, even fail-fast, reconnects.
    let mut state = channel.state(false);
    while state == Connectivity::Ready {
        state = channel.wait_for_state_change(state).await;
    }
    assert_eq!(state, Connectivity::Idle);
    let back = env.start_server_with(anygrpc::Config::server(), port).await;
    let reply = echo.call(Ping::text("reconnected")).await.unwrap();
    assert_eq!(reply.text, "reconnected");
    assert_eq!(channel.state(false), Connectivity::Ready);
    back.server.stop(None).await;
}

pub async fn usage_errors(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sum = channel.stream_unary::<Ping, Ping>(SUM);
    let mut call = sum.call();
    call.write(Ping::text("a")).await.unwrap();
    call.done_writing().await.unwrap();
    match call.write(Ping::text("b")).await {
        Err(WriteError::Usage(UsageError::WriteAfterDoneWriting)) => {}
        other => panic!("write after done_writing: {other:?}"),
    }
    // The misuse does not hurt the call.
    assert_eq!(call.await.unwrap().text, "a");

    let mut call = sum.call_from(stream::iter([Ping::text("x"), Ping::text("y")]));
    match call.write(Ping::text("z")).await {
        Err(WriteError::Usage(UsageError::RequestsFromStream)) => {}
        other => panic!("write on a call_from call: {other:?}"),
    }
    match call.done_writing().await {
        Err(WriteError::Usage(UsageError::RequestsFromStream)) => {}
        other => panic!("done_writing on a call_from call: {other:?}"),
    }
    assert_eq!(call.await.unwrap().text, "xy");

    let chat = channel.stream_stream::<Ping, Ping>(CHAT);
    let mut call = chat.call();
    call.done_writing().await.unwrap();
    match call.write(Ping::text("late")).await {
        Err(WriteError::Usage(UsageError::WriteAfterDoneWriting)) => {}
        other => panic!("bidi write after done_writing: {other:?}"),
    }
    assert!(call.read().await.is_none());
    let mut call = chat.call_from(stream::empty());
    assert!(matches!(
        call.write(Ping::text("no")).await,
        Err(WriteError::Usage(UsageError::RequestsFromStream))
    ));
    assert_eq!(call.code().await, Code::Ok);
}

pub async fn panicking_handler_ends_only_its_call(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let panic = channel.unary_unary::<Ping, Ping>(PANIC);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    // A call running beside the panicking one is not disturbed.
    let beside = sleep.call(nap("beside", 50));
    srv.probe.wait_for("sleep:start:beside").await;
    for _ in 0..3 {
        let err = panic.call(Ping::text("boom")).await.unwrap_err();
        assert_eq!(err.code(), Code::Unknown, "{err}");
    }
    assert_eq!(beside.await.unwrap().text, "beside");
    assert_eq!(echo.call(Ping::text("still")).await.unwrap().text, "still");
    assert_eq!(channel.state(false), Connectivity::Ready, "same connection");
}

/// Panics for calls whose `x-panic` metadata names it; lets the others through.
struct PanicsWhenAsked(&'static str);

impl ServerInterceptor for PanicsWhenAsked {
    fn intercept(&self, call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
        if anygrpc::__private::under_a_driver() {
            return Box::pin(std::future::ready(Status::internal(
                "a server interceptor ran under the driver",
            )));
        }
        assert_ne!(call.metadata.get("x-panic"), Some(self.0), "asked to panic");
        next.run(call)
    }
}

impl ClientInterceptor for PanicsWhenAsked {
    fn intercept(&self, details: &mut ClientCallDetails) -> Result<(), Status> {
        if anygrpc::__private::under_a_driver() {
            return Err(Status::internal(
                "a client interceptor ran under the driver",
            ));
        }
        assert_ne!(
            details.metadata.get("x-panic"),
            Some(self.0),
            "asked to panic"
        );
        Ok(())
    }
}

/// Call credentials whose provider panics.
struct PanickingCredentials;

impl CallCredentials for PanickingCredentials {
    fn metadata(&self, _: &AuthMetadataContext) -> BoxFuture<'_, Result<Metadata, Status>> {
        panic!("no token today")
    }
}

fn asking(who: &str) -> CallOptions {
    let mut metadata = Metadata::new();
    metadata.insert("x-panic", who).expect("valid metadata");
    CallOptions::new().metadata(metadata)
}

pub async fn panicking_user_code_fails_only_its_call(env: Env) {
    let srv = env.start_server().await;
    srv.server.add_interceptor(PanicsWhenAsked("server"));
    let channel = env
        .channel_builder(srv.port)
        .interceptor(PanicsWhenAsked("client"))
        .allow_insecure_call_credentials(true)
        .build()
        .expect("a valid target");
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let sleep = channel.unary_unary::<Ping, Ping>(SLEEP);
    // A call running beside the failing ones is not disturbed.
    let beside = sleep.call(nap("beside", 50));
    srv.probe.wait_for("sleep:start:beside").await;
    // A server interceptor runs after the connection's turn (never under the driver): its
    // panic fails its call (UNKNOWN, as a panicking handler does), not the connection.
    for _ in 0..3 {
        let err = echo
            .call_with(Ping::text("s"), asking("server"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unknown, "{err}");
        assert!(
            err.details().contains("server interceptor panicked"),
            "{err}"
        );
    }
    // A client interceptor's or credentials provider's panic fails its call with INTERNAL.
    let err = echo
        .call_with(Ping::text("c"), asking("client"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(
        err.details().contains("client interceptor panicked"),
        "{err}"
    );
    let err = echo
        .call_with(
            Ping::text("t"),
            CallOptions::new().credentials(PanickingCredentials),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(err.details().contains("credentials panicked"), "{err}");
    // A done callback that panics: the call's outcome stands and the next callback runs.
    let ran = Arc::new(AtomicUsize::new(0));
    let call = echo.call(Ping::text("cb"));
    call.add_done_callback(|| panic!("a done callback"));
    let counter = ran.clone();
    call.add_done_callback(move || {
        // Never under the driver: counted apart, so the assertion below tells.
        let under = usize::from(anygrpc::__private::under_a_driver());
        counter.fetch_add(1 + 100 * under, Ordering::SeqCst);
    });
    assert_eq!(call.await.expect("served").text, "cb");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the next callback ran, not under the driver"
    );
    assert_eq!(beside.await.expect("undisturbed").text, "beside");
    assert_eq!(
        echo.call(Ping::text("still")).await.expect("served").text,
        "still"
    );
    assert_eq!(channel.state(false), Connectivity::Ready, "same connection");
}
