//! The service every case talks to (`e2e.Test`), its message, and the probe through which
//! handlers tell the test what they observed (cancellation, time left, progress).

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use anygrpc::__private as handlers;
use anygrpc::{
    BoxFuture, Code, Metadata, RequestStream, ResponseSink, RuntimeRef, ServerCall, Service,
    ServicerContext, Status,
};
use futures_util::future::{Either, select};

/// The one message type of the test service, used both ways.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ping {
    /// Free text, echoed; the status details for `Status`; a label in probe events.
    #[prost(string, tag = "1")]
    pub text: String,
    /// A sequence number; responses wanted from `Count`; the status code for `Status`.
    #[prost(uint32, tag = "2")]
    pub count: u32,
    /// How long `Sleep` sleeps.
    #[prost(uint64, tag = "3")]
    pub sleep_ms: u64,
    /// Opaque bytes, echoed.
    #[prost(bytes = "vec", tag = "4")]
    pub payload: Vec<u8>,
    /// `Echo` answers with this many payload bytes instead of echoing the payload.
    #[prost(uint64, tag = "5")]
    pub reply_bytes: u64,
    /// `Status` ends the call through `set_code`/`set_details` instead of returning `Err`.
    #[prost(bool, tag = "6")]
    pub via_context: bool,
    /// `Sleep`'s answer: the server's `time_remaining()` in µs before and after sleeping.
    #[prost(uint64, repeated, tag = "7")]
    pub remaining_us: Vec<u64>,
}

impl Ping {
    /// A ping with `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// Full method paths of the test service.
pub const ECHO: &str = "/e2e.Test/Echo";
pub const STATUS: &str = "/e2e.Test/Status";
pub const METADATA: &str = "/e2e.Test/Metadata";
pub const GATE: &str = "/e2e.Test/Gate";
pub const SLEEP: &str = "/e2e.Test/Sleep";
pub const PANIC: &str = "/e2e.Test/Panic";
pub const COUNT: &str = "/e2e.Test/Count";
pub const SUM: &str = "/e2e.Test/Sum";
pub const CHAT: &str = "/e2e.Test/Chat";
/// Unary: compresses its response with the encoding named by `text` (none: the server's
/// default), at level `count` when not 0, through `ServicerContext::set_compression`; answers
/// with `reply_bytes` compressible payload bytes and `via_context` set when the request
/// arrived compressed.
pub const COMPRESS: &str = "/e2e.Test/Compress";
/// Client streaming: reads nothing until the probe records `hold:release`, then sums like
/// `Sum`. Records `hold:started` when it starts waiting.
pub const HOLD: &str = "/e2e.Test/Hold";
/// Unary: fails the first `count` attempts of the call labelled `text` with UNAVAILABLE
/// (echoing the request's `x-pushback` metadata as `grpc-retry-pushback-ms`), then echoes;
/// records `flaky:<text>:<grpc-previous-rpc-attempts or ->` at every attempt.
pub const FLAKY: &str = "/e2e.Test/Flaky";
/// Answers with the name a server interceptor put in the call's extensions as a [`Caller`]
/// (`nobody` without one); records `whoami:done` from the context's done callback.
pub const WHOAMI: &str = "/e2e.Test/Whoami";
/// Client streaming: reads every request, then fails the first `count` attempts (of the
/// first request) of the call labelled by the first request's `text` with UNAVAILABLE, and
/// answers the others with the texts joined by `,`. Records
/// `flakysum:<label>:<previous attempts or ->:<texts>` at every attempt.
pub const FLAKY_SUM: &str = "/e2e.Test/FlakySum";
/// Bidi streaming: reads the first request; fails the first `count` attempts of the call
/// labelled by its `text` with UNAVAILABLE before answering anything, or, with
/// `via_context`, after answering that first request (the response head commits the call).
/// Otherwise answers every request like `Chat`. Records `flakychat:<label>:<previous or ->`.
pub const FLAKY_CHAT: &str = "/e2e.Test/FlakyChat";
/// Unary, for hedging: attempt `n` (its previous-attempts header, 0 without one) of the call
/// labelled `text` acts as byte `n` of `payload` says (answer at once when there is none):
/// `a` answers at once (initial metadata `x-attempt: n`, reply `count` = n), `s` sleeps
/// `sleep_ms` then answers, `u` fails UNAVAILABLE (with `x-pushback` as
/// `grpc-retry-pushback-ms`), `i` fails INVALID_ARGUMENT. Records `hedge:<text>:<n>` as it
/// starts and `hedge:<text>:cancelled:<n>` when cancelled while it sleeps.
pub const HEDGE: &str = "/e2e.Test/Hedge";
/// Server streaming, for hedging: attempts act as `Hedge`'s do, then the answering one sends
/// `count` messages of `reply_bytes` payload bytes, each with its attempt number as `text`.
pub const HEDGE_STREAM: &str = "/e2e.Test/HedgeStream";
/// Client streaming, for hedging: reads every request, then acts as `Hedge` on the first
/// one's label and actions; answers `<n>:<texts joined by ,>`.
pub const HEDGE_SUM: &str = "/e2e.Test/HedgeSum";
/// Bidi, for hedging: reads the first request and acts as `Hedge` on it, then answers it and
/// every later one with `<n>:<text>`.
pub const HEDGE_CHAT: &str = "/e2e.Test/HedgeChat";

/// Events recorded by handlers, which tests wait for.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    inner: Arc<Mutex<ProbeState>>,
}

#[derive(Debug, Default)]
struct ProbeState {
    events: Vec<String>,
    wakers: Vec<Waker>,
}

impl Probe {
    /// Records `event` and wakes whoever waits.
    pub fn record(&self, event: impl Into<String>) {
        let wakers = {
            let mut state = self.inner.lock().expect("probe lock");
            state.events.push(event.into());
            std::mem::take(&mut state.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.inner.lock().expect("probe lock").events.clone()
    }

    /// The events that start with `prefix`, without it, in order.
    pub fn after(&self, prefix: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| e.strip_prefix(prefix).map(str::to_owned))
            .collect()
    }

    /// `true` once `event` was recorded.
    pub fn has(&self, event: &str) -> bool {
        self.events().iter().any(|e| e == event)
    }

    /// Completes once `event` was recorded.
    pub async fn wait_for(&self, event: &str) {
        poll_fn(|cx| {
            let mut state = self.inner.lock().expect("probe lock");
            if state.events.iter().any(|e| e == event) {
                return Poll::Ready(());
            }
            state.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The `e2e.Test` service.
#[derive(Debug, Clone)]
pub struct TestService {
    inner: Arc<Handlers>,
}

/// What the handlers share.
#[derive(Debug)]
pub struct Handlers {
    runtime: RuntimeRef,
    probe: Probe,
}

impl TestService {
    pub fn new(runtime: RuntimeRef, probe: Probe) -> Self {
        Self {
            inner: Arc::new(Handlers { runtime, probe }),
        }
    }
}

impl Service for TestService {
    fn name(&self) -> &'static str {
        "e2e.Test"
    }

    fn call(&self, method: &str, call: ServerCall) -> Option<BoxFuture<'static, ()>> {
        let s = self.inner.clone();
        Some(match method {
            "Echo" => handlers::unary(call, s, echo),
            "Status" => handlers::unary(call, s, status),
            "Metadata" => handlers::unary(call, s, metadata),
            "Gate" => handlers::unary(call, s, gate),
            "Sleep" => handlers::unary(call, s, sleep),
            "Panic" => handlers::unary(call, s, panic),
            "Count" => handlers::server_streaming(call, s, count),
            "Sum" => handlers::client_streaming(call, s, sum),
            "Hold" => handlers::client_streaming(call, s, hold),
            "Flaky" => handlers::unary(call, s, flaky),
            "Whoami" => handlers::unary(call, s, whoami),
            "Chat" => handlers::bidi_streaming(call, s, chat),
            "Compress" => handlers::unary(call, s, compress),
            "FlakySum" => handlers::client_streaming(call, s, flaky_sum),
            "Hedge" => handlers::unary(call, s, hedge),
            "HedgeStream" => handlers::server_streaming(call, s, hedge_stream),
            "HedgeSum" => handlers::client_streaming(call, s, hedge_sum),
            "HedgeChat" => handlers::bidi_streaming(call, s, hedge_chat),
            "FlakyChat" => handlers::bidi_streaming(call, s, flaky_chat),
            _ => return None,
        })
    }
}

fn micros(d: Option<Duration>) -> u64 {
    d.map_or(u64::MAX, |d| {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    })
}

/// Echoes the request (or answers `reply_bytes` bytes of payload).
fn echo<'a>(
    _: &'a Handlers,
    request: Ping,
    _: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    // Runs in the handler's first step: never under the connection's driver.
    let under_a_driver = anygrpc::__private::under_a_driver();
    Box::pin(async move {
        if under_a_driver || anygrpc::__private::under_a_driver() {
            return Err(Status::internal(
                "the handler ran under the connection's driver",
            ));
        }
        let mut reply = request;
        if reply.reply_bytes > 0 {
            let len = usize::try_from(reply.reply_bytes).expect("a test-sized reply");
            reply.payload = vec![0xa5; len];
            reply.reply_bytes = 0;
        }
        Ok(reply)
    })
}

/// Who a server interceptor said called (typed per-call data, read by [`WHOAMI`]).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

fn whoami<'a>(
    h: &'a Handlers,
    _: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let who = ctx
            .extensions()
            .get::<Caller>()
            .map_or_else(|| "nobody".to_string(), |caller| caller.0.clone());
        let probe = h.probe.clone();
        ctx.add_done_callback(move || probe.record("whoami:done"));
        assert!(!ctx.done(), "running");
        assert_eq!((ctx.code(), ctx.details()), (None, None));
        ctx.set_details("seen");
        assert_eq!(ctx.details(), Some("seen"));
        Ok(Ping::text(who))
    })
}

fn compress<'a>(
    _: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        if let Some(encoding) = anygrpc::Encoding::parse(request.text.as_bytes()) {
            let mut compression = anygrpc::Compression::new(encoding);
            if request.count != 0 {
                let level = i32::try_from(request.count).expect("a level");
                compression = compression.with_level(anygrpc::CompressionLevel::Precise(level));
            }
            ctx.set_compression(compression);
        }
        let len = usize::try_from(request.reply_bytes).expect("a test-sized reply");
        Ok(Ping {
            text: request.text,
            payload: b"compressible ".iter().copied().cycle().take(len).collect(),
            via_context: ctx.request_compressed(),
            ..Ping::default()
        })
    })
}

/// Ends the call with code `count` and details `text`, by `Err` or through the context; the
/// trailing metadata says `x-code: <count>` either way.
fn status<'a>(
    _: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let code = Code::from_i32(i32::try_from(request.count).expect("a status code"));
        let mut trailing = Metadata::new();
        trailing
            .insert("x-code", &request.count.to_string())
            .expect("ascii metadata");
        ctx.set_trailing_metadata(trailing);
        if request.via_context {
            ctx.set_code(code);
            ctx.set_details(request.text);
            Ok(Ping::text("body"))
        } else if code == Code::Ok {
            Ok(Ping::text("body"))
        } else {
            Err(Status::new(code, request.text))
        }
    })
}

fn flaky<'a>(
    h: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let previous = previous_attempts(ctx);
        let label = format!("flaky:{}:", request.text);
        if flaky_attempt(h, label.clone(), &previous, None, request.count) {
            echo_pushback(ctx);
            let attempt = h
                .probe
                .events()
                .iter()
                .filter(|e| e.starts_with(&label))
                .count();
            return Err(Status::unavailable(format!("attempt {attempt} fails")));
        }
        Ok(request)
    })
}

/// Call options asking `Flaky` or `Hedge` to fail with a pushback of `ms` (`x-pushback`).
pub fn asking_pushback(ms: &str) -> anygrpc::CallOptions {
    let mut metadata = Metadata::new();
    metadata.insert("x-pushback", ms).expect("ascii");
    anygrpc::CallOptions::new().metadata(metadata)
}

/// Sets the request's `x-pushback` metadata, if any, as the `grpc-retry-pushback-ms` trailer.
fn echo_pushback(ctx: &mut ServicerContext) {
    if let Some(pushback) = ctx.invocation_metadata().get("x-pushback") {
        let mut trailing = Metadata::new();
        trailing
            .insert("grpc-retry-pushback-ms", pushback)
            .expect("ascii metadata");
        ctx.set_trailing_metadata(trailing);
    }
}

/// The previous-attempts header of a call, `-` without one.
fn previous_attempts(ctx: &ServicerContext) -> String {
    ctx.invocation_metadata()
        .get("grpc-previous-rpc-attempts")
        .unwrap_or("-")
        .to_owned()
}

/// Records `<label><previous>[:<extra>]` and says whether this attempt is one of the first
/// `failures` of the call (counted by the events with that label).
fn flaky_attempt(
    h: &Handlers,
    label: String,
    previous: &str,
    extra: Option<&str>,
    failures: u32,
) -> bool {
    let seen = h
        .probe
        .events()
        .iter()
        .filter(|e| e.starts_with(&label))
        .count();
    let event = match extra {
        Some(extra) => format!("{label}{previous}:{extra}"),
        None => format!("{label}{previous}"),
    };
    h.probe.record(event);
    seen < failures as usize
}

fn flaky_sum<'a>(
    h: &'a Handlers,
    mut requests: RequestStream<Ping>,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let previous = previous_attempts(ctx);
        let mut texts = Vec::new();
        let mut failures = 0;
        while let Some(request) = requests.read().await {
            let request = request?;
            if texts.is_empty() {
                failures = request.count;
            }
            texts.push(request.text);
        }
        let label = format!("flakysum:{}:", texts.first().map_or("", String::as_str));
        let joined = texts.join(",");
        if flaky_attempt(h, label, &previous, Some(&joined), failures) {
            return Err(Status::unavailable("this attempt fails"));
        }
        Ok(Ping {
            count: u32::try_from(texts.len()).expect("a test-sized stream"),
            ..Ping::text(joined)
        })
    })
}

fn flaky_chat<'a>(
    h: &'a Handlers,
    mut requests: RequestStream<Ping>,
    ctx: &'a mut ServicerContext,
    mut responses: ResponseSink<Ping>,
) -> BoxFuture<'a, Result<(), Status>> {
    Box::pin(async move {
        let previous = previous_attempts(ctx);
        let Some(first) = requests.read().await else {
            return Ok(());
        };
        let first = first?;
        let label = format!("flakychat:{}:", first.text);
        let fails = flaky_attempt(h, label, &previous, None, first.count);
        if fails && !first.via_context {
            return Err(Status::unavailable("this attempt fails"));
        }
        responses
            .send(Ping::text(format!("pong:{}", first.text)))
            .await?;
        if fails {
            return Err(Status::unavailable("this attempt fails after its head"));
        }
        while let Some(request) = requests.read().await {
            responses
                .send(Ping::text(format!("pong:{}", request?.text)))
                .await?;
        }
        Ok(())
    })
}

/// Sends the client's `x-*` metadata back as initial metadata (with `x-initial: yes`) and as
/// trailing metadata (with `x-trailing: yes`).
fn metadata<'a>(
    _: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let mut echoed = Metadata::new();
        for (key, value) in ctx.invocation_metadata().iter() {
            if key.as_str().starts_with("x-") {
                echoed
                    .append_value(key.clone(), value.clone())
                    .expect("same kind");
            }
        }
        let mut initial = echoed.clone();
        initial.append("x-initial", "yes").expect("ascii");
        assert!(ctx.send_initial_metadata(initial));
        assert!(
            !ctx.send_initial_metadata(Metadata::new()),
            "the head goes once"
        );
        let mut trailing = echoed;
        trailing.append("x-trailing", "yes").expect("ascii");
        ctx.set_trailing_metadata(trailing);
        Ok(request)
    })
}

/// Sends its initial metadata at once, then answers only after the test records `gate:open`.
fn gate<'a>(
    h: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let mut initial = Metadata::new();
        initial.insert("x-stage", "head").expect("ascii");
        ctx.send_initial_metadata(initial);
        h.probe.record("gate:entered");
        h.probe.wait_for("gate:open").await;
        let mut trailing = Metadata::new();
        trailing.insert("x-stage", "tail").expect("ascii");
        ctx.set_trailing_metadata(trailing);
        ctx.set_code(Code::Ok);
        ctx.set_details("gate passed");
        Ok(request)
    })
}

/// Sleeps `sleep_ms` unless cancelled first; records `sleep:start:<text>` and, if cancelled,
/// `sleep:cancelled:<text>`. Answers the time left before and after.
fn sleep<'a>(
    h: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let before = micros(ctx.time_remaining());
        h.probe.record(format!("sleep:start:{}", request.text));
        let rt = &h.runtime;
        let nap = rt.sleep_until(rt.now() + Duration::from_millis(request.sleep_ms));
        let cancelled = std::pin::pin!(ctx.wait_cancelled());
        if let Either::Right(_) = select(nap, cancelled).await {
            assert!(
                ctx.cancelled(),
                "wait_cancelled completed: cancelled() agrees"
            );
            h.probe.record(format!("sleep:cancelled:{}", request.text));
            return Err(Status::cancelled("observed the cancellation"));
        }
        let after = micros(ctx.time_remaining());
        h.probe.record(format!("sleep:done:{}", request.text));
        Ok(Ping {
            text: request.text,
            remaining_us: vec![before, after],
            ..Ping::default()
        })
    })
}

fn hedge<'a>(
    h: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let n = hedge_attempt(h, &request, ctx).await?;
        Ok(Ping {
            count: n,
            ..Ping::text(request.text.clone())
        })
    })
}

fn hedge_stream<'a>(
    h: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
    mut responses: ResponseSink<Ping>,
) -> BoxFuture<'a, Result<(), Status>> {
    Box::pin(async move {
        let n = hedge_attempt(h, &request, ctx).await?;
        let len = usize::try_from(request.reply_bytes).expect("a test-sized reply");
        for i in 0..request.count {
            let reply = Ping {
                count: i,
                text: n.to_string(),
                payload: vec![0x5a; len],
                ..Ping::default()
            };
            responses.send(reply).await?;
        }
        Ok(())
    })
}

fn hedge_sum<'a>(
    h: &'a Handlers,
    mut requests: RequestStream<Ping>,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let mut all = Vec::new();
        while let Some(request) = requests.read().await {
            all.push(request?);
        }
        let first = all.first().cloned().unwrap_or_default();
        let n = hedge_attempt(h, &first, ctx).await?;
        let texts: Vec<&str> = all.iter().map(|r| r.text.as_str()).collect();
        Ok(Ping::text(format!("{n}:{}", texts.join(","))))
    })
}

fn hedge_chat<'a>(
    h: &'a Handlers,
    mut requests: RequestStream<Ping>,
    ctx: &'a mut ServicerContext,
    mut responses: ResponseSink<Ping>,
) -> BoxFuture<'a, Result<(), Status>> {
    Box::pin(async move {
        let Some(first) = requests.read().await else {
            return Ok(());
        };
        let first = first?;
        let n = hedge_attempt(h, &first, ctx).await?;
        responses
            .send(Ping::text(format!("{n}:{}", first.text)))
            .await?;
        while let Some(request) = requests.read().await {
            responses
                .send(Ping::text(format!("{n}:{}", request?.text)))
                .await?;
        }
        Ok(())
    })
}

/// What attempt `n` of a `Hedge` or `HedgeStream` call does before it answers (see
/// [`HEDGE`]); `Ok(n)` once it sent its head.
async fn hedge_attempt(
    h: &Handlers,
    request: &Ping,
    ctx: &mut ServicerContext,
) -> Result<u32, Status> {
    let n: u32 = previous_attempts(ctx).parse().unwrap_or(0);
    let label = &request.text;
    h.probe.record(format!("hedge:{label}:{n}"));
    let action = request.payload.get(n as usize).copied().unwrap_or(b'a');
    match action {
        b'u' => {
            echo_pushback(ctx);
            return Err(Status::unavailable(format!("attempt {n} unavailable")));
        }
        b'i' => return Err(Status::invalid_argument(format!("attempt {n} refused"))),
        b's' => {
            let rt = &h.runtime;
            let nap = rt.sleep_until(rt.now() + Duration::from_millis(request.sleep_ms));
            let cancelled = std::pin::pin!(ctx.wait_cancelled());
            if let Either::Right(_) = select(nap, cancelled).await {
                h.probe.record(format!("hedge:{label}:cancelled:{n}"));
                return Err(Status::cancelled("observed the cancellation"));
            }
        }
        _ => {}
    }
    let mut initial = Metadata::new();
    initial.insert("x-attempt", &n.to_string()).expect("ascii");
    ctx.send_initial_metadata(initial);
    Ok(n)
}

fn panic<'a>(
    _: &'a Handlers,
    request: Ping,
    _: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move { panic!("the handler panics on purpose: {}", request.text) })
}

/// Sends `count` responses numbered from 0 (even ones borrowed, odd ones owned), then fails with DATA_LOSS if `text` is `cut`;
/// with `count == 0`, sends 3, records
/// `count:waiting`, waits for the cancellation and records `count:cancelled:<cancelled()>`.
fn count<'a>(
    h: &'a Handlers,
    request: Ping,
    ctx: &'a mut ServicerContext,
    mut responses: ResponseSink<Ping>,
) -> BoxFuture<'a, Result<(), Status>> {
    Box::pin(async move {
        let n = if request.count == 0 { 3 } else { request.count };
        for i in 0..n {
            let reply = Ping {
                count: i,
                text: request.text.clone(),
                ..Ping::default()
            };
            if i % 2 == 0 {
                responses.send(&reply).await?;
            } else {
                responses.send(reply).await?;
            }
        }
        if request.text == "cut" {
            return Err(Status::new(Code::DataLoss, "cut short"));
        }
        if request.count == 0 {
            h.probe.record("count:waiting");
            ctx.wait_cancelled().await;
            h.probe
                .record(format!("count:cancelled:{}", ctx.cancelled()));
            let late = responses.send(Ping::text("too late")).await;
            h.probe
                .record(format!("count:late_send_failed:{}", late.is_err()));
        }
        Ok(())
    })
}

/// Counts the requests and joins their texts.
fn sum<'a>(
    _: &'a Handlers,
    mut requests: RequestStream<Ping>,
    _: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        let mut reply = Ping::default();
        while let Some(request) = requests.read().await {
            let request = request?;
            reply.count += 1;
            reply.text.push_str(&request.text);
        }
        Ok(reply)
    })
}

/// Waits for `hold:release` before reading, then counts the requests and joins their texts.
fn hold<'a>(
    h: &'a Handlers,
    requests: RequestStream<Ping>,
    ctx: &'a mut ServicerContext,
) -> BoxFuture<'a, Result<Ping, Status>> {
    Box::pin(async move {
        h.probe.record("hold:started");
        h.probe.wait_for("hold:release").await;
        sum(h, requests, ctx).await
    })
}

/// Answers each request with `pong:<text>` numbered from 0; `abort` ends the call with
/// ABORTED; records `chat:cancelled:<code>` when reading fails.
fn chat<'a>(
    h: &'a Handlers,
    mut requests: RequestStream<Ping>,
    ctx: &'a mut ServicerContext,
    mut responses: ResponseSink<Ping>,
) -> BoxFuture<'a, Result<(), Status>> {
    Box::pin(async move {
        let mut n = 0;
        while let Some(request) = requests.read().await {
            let request = match request {
                Ok(request) => request,
                Err(status) => {
                    h.probe.record(format!(
                        "chat:cancelled:{:?}:{}",
                        status.code(),
                        ctx.cancelled()
                    ));
                    return Err(status);
                }
            };
            if request.text == "abort" {
                return Err(ctx.abort(Code::Aborted, "enough"));
            }
            let reply = Ping {
                text: format!("pong:{}", request.text),
                count: n,
                ..Ping::default()
            };
            responses.send(reply).await?;
            n += 1;
        }
        let mut trailing = Metadata::new();
        trailing.insert("x-pongs", &n.to_string()).expect("ascii");
        ctx.set_trailing_metadata(trailing);
        Ok(())
    })
}
