//! Wrapping client interceptors of every call kind, async server interceptors, async call
//! credentials, and the order interceptors compose in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anygrpc::{
    AnyMsg, AuthMetadataContext, BoxFuture, CallCredentials, CallOptions, ClientCallDetails,
    ClientInterceptor, Code, Metadata, RequestMessages, ResponseStream, RuntimeRef,
    ServerCallDetails, ServerInterceptor, ServerNext, Status, StreamStreamClientInterceptor,
    StreamStreamContinuation, StreamUnaryClientInterceptor, StreamUnaryContinuation, UnaryOutcome,
    UnaryStreamClientInterceptor, UnaryStreamContinuation, UnaryUnaryClientInterceptor,
    UnaryUnaryContinuation,
};
use futures_util::StreamExt;

use crate::e2e::Env;
use crate::e2e::service::{CHAT, COUNT, Caller, ECHO, METADATA, PANIC, Ping, SUM, WHOAMI};

fn text_of(message: AnyMsg) -> String {
    message.downcast::<Ping>().expect("a Ping").text
}

/// Sends the call twice, the first time with its request replaced, and answers with both
/// responses joined.
struct Twice;

impl UnaryUnaryClientInterceptor for Twice {
    fn intercept_unary_unary(
        &self,
        next: UnaryUnaryContinuation,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome> {
        Box::pin(async move {
            let first = next
                .call(details.clone(), AnyMsg::new(Ping::text("first")))
                .await;
            let second = next.call(details, request).await;
            let (Ok(a), Ok(b)) = (first.result, second.result) else {
                return UnaryOutcome::error(Status::internal("a call failed"));
            };
            UnaryOutcome {
                result: Ok(AnyMsg::new(Ping::text(format!(
                    "{}+{}",
                    text_of(a),
                    text_of(b)
                )))),
                ..UnaryOutcome::ok(AnyMsg::new(Ping::default()))
            }
        })
    }
}

/// Upper-cases each streamed response and adds `x-seen: <n>` to the trailers.
struct Shout;

impl UnaryStreamClientInterceptor for Shout {
    fn intercept_unary_stream(
        &self,
        next: UnaryStreamContinuation,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, ResponseStream> {
        Box::pin(async move {
            let seen = Arc::new(Mutex::new(0));
            let counter = seen.clone();
            next.call(details, request)
                .await
                .map_messages(move |message| {
                    *counter.lock().unwrap() += 1;
                    let mut ping = message.downcast::<Ping>().expect("a Ping");
                    ping.text = ping.text.to_uppercase();
                    Ok(AnyMsg::new(ping))
                })
                .map_end(move |status, mut trailers| {
                    let n = *seen.lock().unwrap();
                    trailers.insert("x-seen", &n.to_string()).expect("ascii");
                    (status, trailers)
                })
        })
    }
}

/// Appends `!` to each request of a client stream.
struct Excited;

impl StreamUnaryClientInterceptor for Excited {
    fn intercept_stream_unary(
        &self,
        next: StreamUnaryContinuation,
        details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, UnaryOutcome> {
        next.call(
            details,
            requests.map(|message| {
                let mut ping = message.downcast::<Ping>().expect("a Ping");
                ping.text.push('!');
                AnyMsg::new(ping)
            }),
        )
    }
}

/// Answers bidi calls asking `x-cached` itself, without a call; passes the others on.
struct Cache;

impl StreamStreamClientInterceptor for Cache {
    fn intercept_stream_stream(
        &self,
        next: StreamStreamContinuation,
        details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, ResponseStream> {
        if details.metadata.get("x-cached").is_none() {
            return next.call(details, requests);
        }
        let mut trailers = Metadata::new();
        trailers.insert("x-cached", "yes").expect("ascii");
        Box::pin(std::future::ready(ResponseStream::from_parts(
            Metadata::new(),
            [AnyMsg::new(Ping::text("pong:cached"))],
            Status::ok(),
            trailers,
        )))
    }
}

pub async fn client_interceptors_wrap_every_call_kind(env: Env) {
    let srv = env.start_server().await;
    let channel = env
        .channel_builder(srv.port)
        .unary_unary_interceptor(Twice)
        .unary_stream_interceptor(Shout)
        .stream_unary_interceptor(Excited)
        .stream_stream_interceptor(Cache)
        .build()
        .expect("a valid target");

    // Unary: the continuation ran twice, the first time with another request; the response
    // is the interceptor's own.
    let call = channel.unary_unary::<Ping, Ping>(ECHO).call_with(
        Ping::text("hello"),
        CallOptions::new().timeout(Duration::from_secs(20)),
    );
    assert!(call.time_remaining().is_some());
    assert_eq!(call.code().await, Code::Ok);
    assert!(call.done());
    assert_eq!(call.await.expect("answered").text, "first+hello");

    // Server streaming: every message mapped, the trailers extended.
    let mut stream = channel.unary_stream::<Ping, Ping>(COUNT).call(Ping {
        count: 3,
        text: "abc".into(),
        ..Ping::default()
    });
    let mut texts = Vec::new();
    while let Some(reply) = stream.read().await {
        texts.push(reply.expect("a response").text);
    }
    assert_eq!(texts, ["ABC", "ABC", "ABC"]);
    assert_eq!(stream.trailing_metadata().await.get("x-seen"), Some("3"));
    assert_eq!(stream.code().await, Code::Ok);

    // Client streaming, written by the application and from a stream.
    let sum = channel.stream_unary::<Ping, Ping>(SUM);
    let mut call = sum.call();
    call.write(Ping::text("a")).await.expect("queued");
    call.write(&Ping::text("b")).await.expect("queued");
    call.done_writing().await.expect("half-closed");
    let reply = call.await.expect("answered");
    assert_eq!((reply.count, reply.text.as_str()), (2, "a!b!"));
    let from = sum.call_from(futures_util::stream::iter([Ping::text("x")]));
    assert_eq!(from.await.expect("answered").text, "x!");

    // Bidi: answered by the interceptor alone, or passed through.
    let chat = channel.stream_stream::<Ping, Ping>(CHAT);
    let mut metadata = Metadata::new();
    metadata.insert("x-cached", "1").expect("ascii");
    let mut cached = chat.call_with(CallOptions::new().metadata(metadata));
    let replies: Vec<_> = (&mut cached).collect().await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].as_ref().expect("a reply").text, "pong:cached");
    assert_eq!(
        cached.trailing_metadata().await.get("x-cached"),
        Some("yes")
    );
    let mut live = chat.call();
    live.write(Ping::text("hi")).await.expect("queued");
    assert_eq!(
        live.read().await.expect("one").expect("a reply").text,
        "pong:hi"
    );
    live.done_writing().await.expect("half-closed");
    assert!(live.read().await.is_none());
    assert_eq!(live.trailing_metadata().await.get("x-pongs"), Some("1"));
}

/// Appends its name to a shared log before and after what it wraps.
struct Named {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Named {
    fn push(&self, event: String) {
        self.log.lock().unwrap().push(event);
    }
}

impl UnaryUnaryClientInterceptor for Named {
    fn intercept_unary_unary(
        &self,
        next: UnaryUnaryContinuation,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome> {
        Box::pin(async move {
            self.push(format!("{}>", self.name));
            let outcome = next.call(details, request).await;
            self.push(format!("<{}", self.name));
            outcome
        })
    }
}

impl ServerInterceptor for Named {
    fn intercept(&self, call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
        Box::pin(async move {
            self.push(format!("{}>", self.name));
            let status = next.run(call).await;
            self.push(format!("<{}", self.name));
            status
        })
    }
}

impl ClientInterceptor for Named {
    fn intercept(&self, _: &mut ClientCallDetails) -> Result<(), Status> {
        self.push(format!("{}>", self.name));
        Ok(())
    }
    fn on_complete(&self, _: &ClientCallDetails, _: &Status, _: &Metadata) {
        self.push(format!("<{}", self.name));
    }
}

pub async fn interceptors_compose_in_the_order_added(env: Env) {
    let srv = env.start_server().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let named = |name| Named {
        name,
        log: log.clone(),
    };
    srv.server.add_interceptor(named("s1"));
    srv.server.add_interceptor(named("s2"));
    srv.server.add_interceptor(named("s3"));
    let channel = env
        .channel_builder(srv.port)
        .unary_unary_interceptor(named("c1"))
        .interceptor(named("c2"))
        .unary_unary_interceptor(named("c3"))
        .build()
        .expect("a valid target");
    let reply = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call(Ping::text("x"))
        .await;
    assert_eq!(reply.expect("answered").text, "x");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "c1>", "c2>", "c3>", "s1>", "s2>", "s3>", "<s3", "<s2", "<s1", "<c3", "<c2", "<c1"
        ],
        "the first added sees the call first and its end last"
    );
}

/// The server policy of the tests below: rejects calls without a token, awaits a (fake)
/// token check on the runtime's clock, rewrites metadata, tells the handler who called,
/// and turns a handler's panic into INTERNAL.
struct Policy {
    runtime: RuntimeRef,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerInterceptor for Policy {
    fn intercept(&self, mut call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
        Box::pin(async move {
            if call.metadata.get("authorization") != Some("Bearer ok") {
                return Status::new(Code::Unauthenticated, "no token");
            }
            assert!(call.auth_context.is_none(), "a cleartext port");
            // An async check: the call waits on it without blocking anything.
            let now = self.runtime.now();
            self.runtime
                .sleep_until(now + Duration::from_millis(20))
                .await;
            call.metadata.insert("x-rewritten", "yes").expect("ascii");
            call.extensions.insert(Caller("ada".into()));
            let method = call.method.clone();
            let status = next.run(call).await;
            self.log
                .lock()
                .unwrap()
                .push(format!("{method} {}", status.code().as_str()));
            if status.code() == Code::Unknown {
                return Status::internal("the handler failed");
            }
            status
        })
    }
}

fn with_token(token: &str) -> CallOptions {
    let mut metadata = Metadata::new();
    metadata
        .insert("authorization", &format!("Bearer {token}"))
        .expect("ascii");
    metadata.insert("x-original", "kept").expect("ascii");
    CallOptions::new().metadata(metadata)
}

pub async fn server_interceptors_reject_rewrite_attach_and_wrap(env: Env) {
    let srv = env.start_server().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    srv.server.add_interceptor(Policy {
        runtime: env.runtime.clone(),
        log: log.clone(),
    });
    let channel = env.channel(srv.port);

    // Rejected: the handler never runs.
    let err = channel
        .unary_unary::<Ping, Ping>(WHOAMI)
        .call_with(Ping::default(), with_token("bad"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.details()),
        (Code::Unauthenticated, "no token")
    );
    assert!(!srv.probe.has("whoami:done"));

    // Typed data for the handler, whose done callback runs once the end went out.
    let who = channel
        .unary_unary::<Ping, Ping>(WHOAMI)
        .call_with(Ping::default(), with_token("ok"));
    assert_eq!(who.await.expect("answered").text, "ada");
    srv.probe.wait_for("whoami:done").await;

    // Rewritten metadata reaches the handler (which echoes its `x-` metadata).
    let call = channel
        .unary_unary::<Ping, Ping>(METADATA)
        .call_with(Ping::default(), with_token("ok"));
    let initial = call.initial_metadata().await;
    assert_eq!(initial.get("x-rewritten"), Some("yes"));
    assert_eq!(initial.get("x-original"), Some("kept"));
    call.await.expect("answered");

    // The handler's status passes through the interceptor, which may replace it.
    let err = channel
        .unary_unary::<Ping, Ping>(PANIC)
        .call_with(Ping::default(), with_token("ok"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.details()),
        (Code::Internal, "the handler failed")
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            "/e2e.Test/Whoami OK",
            "/e2e.Test/Metadata OK",
            "/e2e.Test/Panic UNKNOWN"
        ]
    );
}

/// Credentials that await a (fake) token service on the runtime's clock, minting a new
/// token each time.
struct Minting {
    runtime: RuntimeRef,
    delay: Duration,
    minted: Arc<Mutex<u32>>,
}

impl CallCredentials for Minting {
    fn metadata(&self, context: &AuthMetadataContext) -> BoxFuture<'_, Result<Metadata, Status>> {
        let method = context.method_name.clone();
        Box::pin(async move {
            let now = self.runtime.now();
            self.runtime.sleep_until(now + self.delay).await;
            if method == "Panic" {
                return Err(Status::unavailable("the token service is down"));
            }
            let n = {
                let mut minted = self.minted.lock().unwrap();
                *minted += 1;
                *minted
            };
            let mut metadata = Metadata::new();
            metadata
                .insert("x-token", &format!("fresh-{n}"))
                .expect("ascii");
            Ok(metadata)
        })
    }
}

pub async fn call_credentials_are_awaited_for_each_call(env: Env) {
    let srv = env.start_server().await;
    let minted = Arc::new(Mutex::new(0));
    let channel = env
        .channel_builder(srv.port)
        .call_credentials(Minting {
            runtime: env.runtime.clone(),
            delay: Duration::from_millis(30),
            minted: minted.clone(),
        })
        .allow_insecure_call_credentials(true)
        .build()
        .expect("a valid target");
    let metadata = channel.unary_unary::<Ping, Ping>(METADATA);
    for n in 1..=2 {
        let call = metadata.call(Ping::default());
        let token = call
            .initial_metadata()
            .await
            .get("x-token")
            .map(str::to_owned);
        assert_eq!(token.as_deref(), Some(format!("fresh-{n}").as_str()));
        call.await.expect("answered");
    }
    // Written before the token came: the request waits for it, nothing is lost.
    let mut sum = channel.stream_unary::<Ping, Ping>(SUM).call();
    sum.write(Ping::text("a")).await.expect("written");
    sum.write(Ping::text("b")).await.expect("written");
    sum.done_writing().await.expect("half-closed");
    assert_eq!(sum.await.expect("answered").text, "ab");
    // A provider that fails fails the call with its status.
    let err = channel
        .unary_unary::<Ping, Ping>(PANIC)
        .call(Ping::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // The deadline runs while the token is awaited.
    let slow = env
        .channel_builder(srv.port)
        .call_credentials(Minting {
            runtime: env.runtime.clone(),
            delay: Duration::from_secs(5),
            minted: minted.clone(),
        })
        .allow_insecure_call_credentials(true)
        .build()
        .expect("a valid target");
    let started = env.now();
    let err = slow
        .unary_unary::<Ping, Ping>(ECHO)
        .call_with(
            Ping::default(),
            CallOptions::new().timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(env.now() - started < Duration::from_secs(4));
    assert_eq!(*minted.lock().unwrap(), 3);
}

/// Never runs its continuation; records when its future is dropped.
struct Stuck(Arc<Mutex<Vec<&'static str>>>);

struct DropLog(Arc<Mutex<Vec<&'static str>>>);

impl Drop for DropLog {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("dropped");
    }
}

impl UnaryUnaryClientInterceptor for Stuck {
    fn intercept_unary_unary(
        &self,
        _: UnaryUnaryContinuation,
        _: ClientCallDetails,
        _: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome> {
        let guard = DropLog(self.0.clone());
        Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            unreachable!()
        })
    }
}

pub async fn an_intercepted_call_is_cancelled_and_times_out_like_any(env: Env) {
    let srv = env.start_server().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let channel = env
        .channel_builder(srv.port)
        .unary_unary_interceptor(Stuck(log.clone()))
        .build()
        .expect("a valid target");
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let call = echo.call(Ping::default());
    env.sleep(Duration::from_millis(10)).await;
    assert!(!call.done());
    assert!(call.cancel());
    assert!(!call.cancel(), "once");
    assert_eq!(call.code().await, Code::Cancelled);
    assert!(call.cancelled());
    assert_eq!(*log.lock().unwrap(), ["dropped"]);
    let err = echo
        .call_with(
            Ping::default(),
            CallOptions::new().timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(*log.lock().unwrap(), ["dropped", "dropped"]);
}

/// Records the sizes of the raw requests and responses it passes on.
struct RawSizes(Arc<Mutex<Vec<usize>>>);

impl UnaryUnaryClientInterceptor for RawSizes {
    fn intercept_unary_unary(
        &self,
        next: UnaryUnaryContinuation,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome> {
        Box::pin(async move {
            let sent = request
                .downcast_ref::<bytes::Bytes>()
                .map_or(0, |b| b.len());
            self.0.lock().unwrap().push(sent);
            let outcome = next.call(details, request).await;
            if let Ok(response) = &outcome.result {
                let got = response
                    .downcast_ref::<bytes::Bytes>()
                    .map_or(0, |b| b.len());
                self.0.lock().unwrap().push(got);
            }
            outcome
        })
    }
}

pub async fn interceptors_wrap_calls_of_any_codec(env: Env) {
    let srv = env.start_server().await;
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let channel = env
        .channel_builder(srv.port)
        .unary_unary_interceptor(RawSizes(sizes.clone()))
        .build()
        .expect("a valid target");
    let request = bytes::Bytes::from(prost::Message::encode_to_vec(&Ping::text("raw")));
    let reply = channel
        .unary_unary::<bytes::Bytes, bytes::Bytes>(ECHO)
        .with_codec(anygrpc::RawCodec)
        .call(request.clone())
        .await
        .expect("answered");
    let ping: Ping = prost::Message::decode(reply.clone()).expect("a Ping");
    assert_eq!(ping.text, "raw");
    assert_eq!(*sizes.lock().unwrap(), [request.len(), reply.len()]);
}
