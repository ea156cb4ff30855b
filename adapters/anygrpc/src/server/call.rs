//! One call on the server: the raw handle, the request stream, the response sink and the
//! `ServicerContext` a handler gets.

use std::borrow::Borrow;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anygrpc_core::grpc::RequestHead;
use anygrpc_core::{Code, Compression, Message, Metadata, Status};
use bytes::Bytes;
use futures_core::Stream;

use crate::auth::AuthContext;
use crate::client::WriteOptions;
use crate::codec::{self, Codec, ProstCodec};
use crate::conn::engine::IncomingCall;
use crate::conn::handle::{Command, ConnHandle, Kick};
use crate::conn::policy::Urgency;
use crate::conn::slot::CallSlot;
use crate::conn::slot::DoneCallback;
use crate::interceptor::{Extensions, ServerCallDetails};
use crate::runtime::RuntimeRef;
use crate::stats::{CallEvent, CallRecorder};

/// Messages a handler may send before the driver has taken the earlier ones: at least this
/// many...
const SENDS_AHEAD: u64 = 16;
/// ...and more while they are small, up to this many bytes (or [`MAX_SENDS_AHEAD`] messages):
/// a stream of small messages then hands the driver a batch as large as one big write.
const SEND_AHEAD_BYTES: usize = 64 << 10;
/// The most messages a handler may send ahead, however small.
const MAX_SENDS_AHEAD: u64 = 64;
/// The most bytes a handler may have waiting for the driver, however few messages: sixteen
/// 64 KiB messages, not sixteen of 4 MiB (a larger message waits until it was accepted).
const MAX_SEND_AHEAD_BYTES: usize = 1 << 20;

/// How many messages of `len` bytes a handler may send ahead of the driver.
fn sends_ahead(len: usize) -> u64 {
    let by_bytes = u64::try_from(SEND_AHEAD_BYTES / len.max(1)).unwrap_or(MAX_SENDS_AHEAD);
    by_bytes.clamp(SENDS_AHEAD, MAX_SENDS_AHEAD)
}

/// Whether a send of `len` bytes may return before the driver took it, with `messages` and
/// `bytes` (this one included) not accepted yet.
fn may_run_ahead(messages: u64, bytes: usize, len: usize) -> bool {
    messages <= sends_ahead(len) && bytes <= MAX_SEND_AHEAD_BYTES
}

/// Bytes of the messages submitted and not accepted yet; forgets the sizes of accepted ones.
fn unaccepted_bytes(state: &mut crate::conn::slot::CallState) -> usize {
    let unaccepted = state.sends_submitted.saturating_sub(state.sends_accepted);
    let keep = usize::try_from(unaccepted).unwrap_or(usize::MAX);
    state.submitted_sizes.keep_newest(keep)
}

/// What the response side has done so far, shared by the context and the sink.
#[derive(Default)]
struct ResponseState {
    headers_sent: bool,
    /// What response messages are compressed with: the server's default or the handler's
    /// choice, always one the client accepts; `None` sends them plain.
    compression: Option<Compression>,
    finished: bool,
    /// The end the handler gave, held for the server's interceptors, which decide the
    /// status sent (`hold_end`); boxed, as most servers have no interceptors.
    held: Option<Box<(Status, Metadata)>>,
    /// The handler's done callbacks, run once the end is sent.
    callbacks: Vec<DoneCallback>,
}

impl std::fmt::Debug for ResponseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseState")
            .field("headers_sent", &self.headers_sent)
            .field("compression", &self.compression)
            .field("finished", &self.finished)
            .field("held", &self.held)
            .field("callbacks", &self.callbacks.len())
            .finish()
    }
}

/// The response side of one call, shared by every clone of its handle. When the last clone
/// goes (the handler returned or was dropped) without ending the call, the call ends with
/// UNKNOWN rather than hanging the client.
#[derive(Debug)]
struct ResponseCell {
    state: Mutex<ResponseState>,
    slot: Arc<CallSlot>,
    conn: Arc<ConnHandle>,
    /// The server has interceptors: the handler's end waits for them (`CallHandle::end_with`).
    hold_end: bool,
    /// Where the call's events go, when the server has stats handlers.
    stats: Option<CallRecorder>,
}

impl Drop for ResponseCell {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for callback in state.callbacks.drain(..) {
            crate::user_code::observe(callback);
        }
        if !state.finished {
            state.finished = true;
            let status = Status::unknown("the handler ended without a status");
            if let Some(stats) = &self.stats {
                stats.record(&CallEvent::Ended {
                    status: &status,
                    trailers: &Metadata::new(),
                });
            }
            let _ = self
                .conn
                .enqueue(
                    [Command::Trailers {
                        slot: self.slot.clone(),
                        status,
                        metadata: Metadata::new(),
                    }],
                    Urgency::Control,
                )
                .map(Kick::run);
        }
    }
}

/// The shared handle of one server call.
#[derive(Debug, Clone)]
pub(crate) struct CallHandle {
    slot: Arc<CallSlot>,
    conn: Arc<ConnHandle>,
    runtime: RuntimeRef,
    response: Arc<ResponseCell>,
    max_recv: usize,
}

impl CallHandle {
    /// Queues a command of this call; when the call is alone on its connection, this task
    /// writes it (see `conn::policy`).
    fn push(&self, command: Command) {
        let _ = self.conn.enqueue([command], Urgency::Output).map(Kick::run);
    }

    fn response(&self) -> std::sync::MutexGuard<'_, ResponseState> {
        self.response
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the response head if it has not gone yet.
    fn ensure_headers(&self, metadata: Metadata) -> bool {
        let mut response = self.response();
        if response.headers_sent || response.finished {
            return false;
        }
        response.headers_sent = true;
        let encoding = response.compression.map(|c| c.encoding);
        drop(response);
        if let Some(stats) = &self.response.stats {
            stats.record(&CallEvent::HeadersSent {
                metadata: &metadata,
            });
        }
        self.push(Command::Headers {
            slot: self.slot.clone(),
            metadata,
            encoding,
        });
        true
    }

    /// Sends one raw message, waiting until the connection accepted it.
    async fn send_bytes(&self, message: Bytes, options: WriteOptions) -> Result<(), Status> {
        self.ensure_headers(Metadata::new());
        let compression = {
            let response = self.response();
            if response.finished {
                return Err(Status::internal("a message sent after the call ended"));
            }
            response.compression.filter(|_| !options.no_compression)
        };
        let encoded = codec::compress(message, compression)?;
        let len = encoded.bytes.len();
        if let Some(stats) = &self.response.stats {
            stats.record(&CallEvent::MessageSent {
                size: encoded.size,
                wire_size: len,
                compressed: encoded.compressed,
            });
        }
        let (message, compressed) = encoded.wire();
        let seq = {
            let mut state = self.slot.lock();
            state.sends_submitted += 1;
            state.submitted_sizes.push(len);
            state.sends_submitted
        };
        self.push(Command::Send {
            slot: self.slot.clone(),
            message,
            compressed,
        });
        // Several messages may wait in the driver's queue (`may_run_ahead`), so a streaming
        // handler hands over a batch per driver turn instead of one message per wake-up and
        // write.
        poll_fn(|cx| {
            self.slot.poll_with(cx, |s| {
                if s.sends_accepted >= seq {
                    Some(Ok(()))
                } else if let Some(outcome) = &s.outcome {
                    Some(Err(outcome.status.clone()))
                } else if may_run_ahead(seq - s.sends_accepted, unaccepted_bytes(s), len) {
                    Some(Ok(()))
                } else {
                    None
                }
            })
        })
        .await
    }

    fn poll_message(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Status>>> {
        let polled = self.slot.poll_with(cx, |s| match s.inbox.pop_front() {
            Some(message) => Some(Some(Ok(message))),
            None => match &s.outcome {
                Some(outcome) => Some(Some(Err(outcome.status.clone()))),
                None if s.recv_closed => Some(None),
                None => None,
            },
        });
        if let Poll::Ready(Some(Ok(message))) = &polled {
            self.slot.release(message.credit());
            // A server call's messages are recorded as its handler reads them, in the
            // handler's task (so before the end it sends).
            if let Some(stats) = &self.response.stats {
                stats.received(message.data.len(), message.encoding.is_some());
            }
        }
        polled
    }

    /// Ends the call with `status` (once); with server interceptors, holds the end for them.
    pub(crate) fn finish(&self, status: Status, metadata: Metadata) {
        if self.response.hold_end {
            let mut response = self.response();
            if response.held.is_none() && !response.finished {
                response.held = Some(Box::new((status, metadata)));
            }
            return;
        }
        self.send_end(status, metadata);
    }

    /// The status the handler ended the call with, held for the interceptors.
    pub(crate) fn held_status(&self) -> Option<Status> {
        self.response().held.as_ref().map(|held| held.0.clone())
    }

    /// Ends the call with the status its interceptors decided, and the trailing metadata its
    /// handler set.
    pub(crate) fn end_with(&self, status: Status) {
        let held = self.response().held.take();
        self.send_end(status, held.map(|held| held.1).unwrap_or_default());
    }

    /// Sends the end (once), then runs the done callbacks.
    fn send_end(&self, status: Status, metadata: Metadata) {
        let callbacks = {
            let mut response = self.response();
            if response.finished {
                return;
            }
            response.finished = true;
            std::mem::take(&mut response.callbacks)
        };
        self.end(status, metadata);
        for callback in callbacks {
            crate::user_code::observe(callback);
        }
    }

    /// Sends the trailers.
    fn end(&self, status: Status, metadata: Metadata) {
        self.slot.lock().span.ended(&status);
        if let Some(stats) = &self.response.stats {
            stats.record(&CallEvent::Ended {
                status: &status,
                trailers: &metadata,
            });
        }
        self.push(Command::Trailers {
            slot: self.slot.clone(),
            status,
            metadata,
        });
    }

    fn is_cancelled(&self) -> bool {
        self.slot.lock().outcome.is_some()
    }

    /// `true` once the end was sent or the call was cancelled.
    fn is_done(&self) -> bool {
        self.response().finished || self.is_cancelled()
    }

    /// Runs `callback` once, when the call ends: its end sent, or its cancellation.
    fn on_done(&self, callback: DoneCallback) {
        let once = Arc::new(Mutex::new(Some(callback)));
        let run = |once: &Arc<Mutex<Option<DoneCallback>>>| {
            let once = once.clone();
            Box::new(move || {
                let callback = once.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(callback) = callback {
                    callback();
                }
            }) as DoneCallback
        };
        let sent = {
            let mut response = self.response();
            if !response.finished {
                response.callbacks.push(run(&once));
            }
            response.finished
        };
        if sent {
            crate::user_code::observe(run(&once));
            return;
        }
        self.slot.on_done(run(&once));
    }
}

/// A call as the server received it, before a typed handler takes it: the raw form for
/// generic (bytes in, bytes out) handlers.
#[derive(Debug)]
pub struct ServerCall {
    handle: CallHandle,
    head: Box<RequestHead>,
    deadline: Option<Instant>,
    peer: Arc<str>,
    auth: Option<Arc<AuthContext>>,
    path: String,
    extensions: Extensions,
}

impl ServerCall {
    /// `hold_end`: the server has interceptors, which decide the status sent.
    pub(crate) fn new(
        call: IncomingCall,
        max_recv: usize,
        hold_end: bool,
        stats: Option<CallRecorder>,
    ) -> Self {
        let path = String::from_utf8_lossy(&call.head.path).into_owned();
        Self {
            handle: CallHandle {
                response: Arc::new(ResponseCell {
                    state: Mutex::default(),
                    slot: call.slot.clone(),
                    conn: call.conn.clone(),
                    hold_end,
                    stats,
                }),
                slot: call.slot,
                conn: call.conn,
                runtime: call.runtime,
                max_recv,
            },
            head: call.head,
            deadline: call.deadline,
            peer: call.peer,
            auth: call.auth,
            path,
            extensions: Extensions::new(),
        }
    }

    pub(crate) fn handle(&self) -> CallHandle {
        self.handle.clone()
    }

    /// The call as its interceptors see it; its metadata moves there until
    /// [`apply`](Self::apply) brings back what they left.
    pub(crate) fn details(&mut self) -> ServerCallDetails {
        ServerCallDetails {
            method: self.path.clone(),
            metadata: std::mem::take(&mut self.head.metadata),
            peer: self.peer.to_string(),
            deadline: self.deadline,
            auth_context: self.auth.clone(),
            extensions: std::mem::take(&mut self.extensions),
        }
    }

    /// Takes the metadata and extensions the interceptors left.
    pub(crate) fn apply(&mut self, details: ServerCallDetails) {
        self.head.metadata = details.metadata;
        self.extensions = details.extensions;
    }

    /// Typed per-call data the server's interceptors attached.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Compresses the response messages with `compression` (the server's default) when the
    /// client announced it in `grpc-accept-encoding`; plain otherwise.
    pub(crate) fn compress_responses(self, compression: Option<Compression>) -> Self {
        let accepted = compression
            .and_then(Compression::non_identity)
            .filter(|c| self.head.accept_encoding.contains(c.encoding));
        self.handle.response().compression = accepted;
        self
    }

    /// The client's metadata.
    pub fn invocation_metadata(&self) -> &Metadata {
        &self.head.metadata
    }

    /// Time left before the client's deadline; `None` without one.
    pub fn time_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(self.handle.runtime.now()))
    }

    /// `/package.Service/Method`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next request message, decompressed; `None` after the client half-closed.
    pub async fn recv(&mut self) -> Option<Result<Bytes, Status>> {
        let next = poll_fn(|cx| self.handle.poll_message(cx)).await?;
        Some(next.and_then(|m| m.into_payload(self.handle.max_recv)))
    }

    /// Sends one response message (the response head first, if not sent yet).
    pub async fn send(&mut self, message: Bytes) -> Result<(), Status> {
        self.handle
            .send_bytes(message, WriteOptions::default())
            .await
    }

    /// Splits the call into its context and typed request stream and response sink, its
    /// messages protobuf through prost. End it with [`ServicerContext::finish`].
    pub fn into_parts<Req, Resp>(self) -> (ServicerContext, RequestStream<Req>, ResponseSink<Resp>)
    where
        ProstCodec: Codec<Req> + Codec<Resp>,
    {
        self.into_parts_with(ProstCodec)
    }

    /// Splits the call as [`into_parts`](Self::into_parts) does, its messages encoded and
    /// decoded by `codec` ([`RawCodec`](crate::RawCodec): raw `Bytes` both ways, for a proxy).
    ///
    /// ```no_run
    /// # fn run(server: anygrpc::Server) {
    /// use anygrpc::{RawCodec, ServerCall};
    /// use bytes::Bytes;
    /// // Echoes the raw request messages of any method of `pkg.Echo`.
    /// server.add_generic_handler("/pkg.Echo/", |call: ServerCall| {
    ///     Box::pin(async move {
    ///         let (context, mut requests, mut responses) =
    ///             call.into_parts_with::<Bytes, Bytes, _>(RawCodec);
    ///         let mut result = Ok(());
    ///         while let Some(request) = requests.read().await {
    ///             result = match request {
    ///                 Ok(bytes) => responses.send(bytes).await,
    ///                 Err(status) => Err(status),
    ///             };
    ///             if result.is_err() {
    ///                 break;
    ///             }
    ///         }
    ///         context.finish(result);
    ///     })
    /// });
    /// # }
    /// ```
    pub fn into_parts_with<Req, Resp, C>(
        self,
        codec: C,
    ) -> (
        ServicerContext,
        RequestStream<Req, C>,
        ResponseSink<Resp, C>,
    )
    where
        C: Codec<Req> + Codec<Resp>,
    {
        let requests = RequestStream {
            handle: self.handle.clone(),
            ended: false,
            last_compressed: false,
            codec: codec.clone(),
            _req: PhantomData,
        };
        let responses = ResponseSink {
            handle: self.handle.clone(),
            buffer: codec::EncodeBuffer::default(),
            codec,
            _resp: PhantomData,
        };
        let context = ServicerContext {
            handle: self.handle,
            head: self.head,
            deadline: self.deadline,
            peer: self.peer,
            auth: self.auth,
            path: self.path,
            extensions: self.extensions,
            code: None,
            details: None,
            trailing: Metadata::new(),
            request_compressed: false,
        };
        (context, requests, responses)
    }

    /// Ends the call with `status` and trailing metadata.
    pub fn finish(self, status: Status, metadata: Metadata) {
        self.handle.finish(status, metadata);
    }
}

/// The requests of a call, as a `Stream` (also `read()`). Ends after the client half-closes;
/// a cancelled call yields one `Err` (CANCELLED, DEADLINE_EXCEEDED, ...) then ends.
#[derive(Debug)]
pub struct RequestStream<Req, C = ProstCodec> {
    handle: CallHandle,
    ended: bool,
    last_compressed: bool,
    codec: C,
    _req: PhantomData<fn() -> Req>,
}

/// Nothing of a request stream is pinned (its codec is only ever borrowed).
impl<Req, C> Unpin for RequestStream<Req, C> {}

impl<Req, C: Codec<Req>> RequestStream<Req, C> {
    /// `true` when the last request read arrived compressed.
    pub fn last_compressed(&self) -> bool {
        self.last_compressed
    }

    /// The next request; `None` when the client has no more.
    pub async fn read(&mut self) -> Option<Result<Req, Status>> {
        poll_fn(|cx| self.poll_read(cx)).await
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Req, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = self.handle.poll_message(cx);
        polled.map(|next| {
            if let Some(Ok(message)) = &next {
                self.last_compressed = message.encoding.is_some();
            }
            let max = self.handle.max_recv;
            let codec = &self.codec;
            let item = next.map(|m| m.and_then(|m| codec::decode(codec, m, max)));
            if !matches!(item, Some(Ok(_))) {
                self.ended = true;
            }
            item
        })
    }
}

impl<Req, C> RequestStream<Req, C> {
    /// Waits for the end of the requests after the one request of a unary-request call:
    /// another message instead (dropped undecoded) is INTERNAL; a cancelled call, its status.
    pub(crate) async fn expect_end(&mut self) -> Result<(), Status> {
        if self.ended {
            return Ok(());
        }
        let next = poll_fn(|cx| self.handle.poll_message(cx)).await;
        self.ended = true;
        match next {
            None => Ok(()),
            Some(Ok(_)) => Err(Status::internal(
                "the client sent more than one request message to a single-request method",
            )),
            Some(Err(status)) => Err(status),
        }
    }
}

impl<Req, C: Codec<Req>> Stream for RequestStream<Req, C> {
    type Item = Result<Req, Status>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_read(cx)
    }
}

/// Where a handler sends response messages. `send` completes when the connection accepted the
/// message (back-pressure) and fails once the call was cancelled.
#[derive(Debug)]
pub struct ResponseSink<Resp, C = ProstCodec> {
    handle: CallHandle,
    buffer: codec::EncodeBuffer,
    codec: C,
    _resp: PhantomData<fn(Resp)>,
}

impl<Resp, C: Codec<Resp>> ResponseSink<Resp, C> {
    /// Sends one response: owned, or borrowed to send the same one again without a clone.
    pub async fn send(&mut self, response: impl Borrow<Resp>) -> Result<(), Status> {
        self.send_with(response, WriteOptions::default()).await
    }
    /// Sends one response with per-message options (e.g. uncompressed).
    pub async fn send_with(
        &mut self,
        response: impl Borrow<Resp>,
        options: WriteOptions,
    ) -> Result<(), Status> {
        let encoded = self
            .buffer
            .encode(&self.codec, response.borrow(), None, usize::MAX)?;
        self.handle.send_bytes(encoded.bytes, options).await
    }
}

/// What a handler knows and controls about its call (grpc.aio's `ServicerContext`): the
/// client's metadata, peer and deadline, the response head and trailers, the status, and
/// what the server's interceptors attached.
///
/// ```
/// use anygrpc::{Code, Metadata, ServicerContext, Status};
///
/// /// A handler body (generated service traits hand it the context).
/// async fn say_hello(name: String, ctx: &mut ServicerContext) -> Result<String, Status> {
///     if name.is_empty() {
///         return Err(ctx.abort(Code::InvalidArgument, "name must not be empty"));
///     }
///     let tenant = ctx.invocation_metadata().get("x-tenant").unwrap_or("none").to_owned();
///     if ctx.time_remaining().is_some_and(|left| left.as_millis() < 10) {
///         return Err(Status::deadline_exceeded("no time left to answer"));
///     }
///     let mut trailers = Metadata::new();
///     trailers.insert("x-tenant", &tenant).map_err(|e| Status::internal(e.to_string()))?;
///     ctx.set_trailing_metadata(trailers);
///     ctx.add_done_callback(|| println!("call over"));
///     Ok(format!("Hello, {name}!"))
/// }
/// ```
#[derive(Debug)]
pub struct ServicerContext {
    handle: CallHandle,
    head: Box<RequestHead>,
    deadline: Option<Instant>,
    peer: Arc<str>,
    auth: Option<Arc<AuthContext>>,
    path: String,
    extensions: Extensions,
    code: Option<Code>,
    details: Option<String>,
    trailing: Metadata,
    request_compressed: bool,
}

impl ServicerContext {
    /// The client's metadata.
    pub fn invocation_metadata(&self) -> &Metadata {
        &self.head.metadata
    }
    /// `/package.Service/Method`.
    pub fn method(&self) -> &str {
        &self.path
    }
    /// The request's `:authority`.
    pub fn authority(&self) -> Option<&str> {
        self.head
            .authority
            .as_deref()
            .and_then(|a| std::str::from_utf8(a).ok())
    }
    /// The client's address (`ipv4:127.0.0.1:5000`, ...).
    pub fn peer(&self) -> &str {
        &self.peer
    }
    /// What the transport authenticated about the client (grpc's `auth_context`): `None` on
    /// a cleartext port; on a TLS port, the verified client certificate's identities.
    pub fn auth_context(&self) -> Option<&AuthContext> {
        self.auth.as_deref()
    }
    /// The client's authenticated identities (certificate SANs, else its common name), or
    /// `None` when it presented no certificate (grpc's `peer_identities`).
    pub fn peer_identities(&self) -> Option<&[String]> {
        self.auth
            .as_deref()
            .filter(|auth| auth.is_peer_authenticated())
            .map(|auth| auth.peer_identities.as_slice())
    }
    /// Sends the response head now with `metadata`; `false` if it was already sent. It only
    /// queues the head for the connection, so it does not wait (grpc.aio's is awaitable).
    pub fn send_initial_metadata(&mut self, metadata: Metadata) -> bool {
        self.handle.ensure_headers(metadata)
    }
    /// Trailing metadata sent with the status.
    pub fn set_trailing_metadata(&mut self, metadata: Metadata) {
        self.trailing = metadata;
    }
    /// The status code to end the call with when the handler returns `Ok`.
    pub fn set_code(&mut self, code: Code) {
        self.code = Some(code);
    }
    /// The status message to end the call with.
    pub fn set_details(&mut self, details: impl Into<String>) {
        self.details = Some(details.into());
    }
    /// The code set so far with [`set_code`](Self::set_code).
    pub fn code(&self) -> Option<Code> {
        self.code
    }
    /// The details set so far with [`set_details`](Self::set_details).
    pub fn details(&self) -> Option<&str> {
        self.details.as_deref()
    }
    /// The trailing metadata set so far.
    pub fn trailing_metadata(&self) -> &Metadata {
        &self.trailing
    }
    /// Typed per-call data the server's interceptors attached
    /// ([`ServerCallDetails::extensions`]).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }
    /// The per-call data, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
    /// `true` once the call ended: its status sent, or the client cancelled.
    pub fn done(&self) -> bool {
        self.handle.is_done()
    }
    /// Runs `callback` once when the call ends, its status sent or cancelled (at once if
    /// it did), in the task that ended it. A panic in it is swallowed.
    pub fn add_done_callback(&self, callback: impl FnOnce() + Send + 'static) {
        self.handle.on_done(Box::new(callback));
    }
    /// The status to return (`return Err(ctx.abort(code, details))`) to end the call now.
    #[must_use = "the call ends only when the handler returns it: `return Err(ctx.abort(..))`"]
    pub fn abort(&mut self, code: Code, details: impl Into<String>) -> Status {
        Status::new(code, details.into())
    }
    /// `true` when the single request of a unary or server-streaming call arrived compressed
    /// (streaming requests: [`RequestStream::last_compressed`]).
    pub fn request_compressed(&self) -> bool {
        self.request_compressed
    }
    pub(crate) fn set_request_compressed(&mut self, compressed: bool) {
        self.request_compressed = compressed;
    }
    /// Time left before the client's deadline; `None` without one.
    pub fn time_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(self.handle.runtime.now()))
    }
    /// `true` once the client cancelled the call (or its deadline passed).
    pub fn cancelled(&self) -> bool {
        self.handle.is_cancelled()
    }
    /// Completes when the call is cancelled.
    pub async fn wait_cancelled(&self) {
        poll_fn(|cx| {
            self.handle
                .slot
                .poll_with(cx, |s| s.outcome.as_ref().map(|_| ()))
        })
        .await
    }
    /// Compresses this call's response messages with `compression` (an
    /// [`Encoding`](crate::Encoding), or a [`Compression`] with a level), in place of the
    /// server's default; `Encoding::Identity` sends them plain. Ignored when the client did
    /// not announce the encoding in `grpc-accept-encoding` (a peer never gets an encoding it
    /// cannot read), or once the response head was sent. Works for all four call kinds: a
    /// unary handler calls it before it returns its response.
    pub fn set_compression(&mut self, compression: impl Into<Compression>) {
        let compression = compression.into();
        if self.head.accept_encoding.contains(compression.encoding)
            || compression.encoding == anygrpc_core::Encoding::Identity
        {
            let mut response = self.handle.response();
            if !response.headers_sent {
                response.compression = compression.non_identity();
            }
        }
    }

    /// Ends the call: with `result`'s error, or else the code and details set on the
    /// context (OK without them), and the trailing metadata set on it. For a call split with
    /// [`ServerCall::into_parts`]; the typed handlers end theirs themselves. Later sends
    /// fail.
    pub fn finish(self, result: Result<(), Status>) {
        let status = match result {
            Err(status) => status,
            Ok(()) => match self.code {
                Some(code) => Status::new(code, self.details.clone().unwrap_or_default()),
                None => Status::ok(),
            },
        };
        self.handle.finish(status, self.trailing.clone());
    }

    /// `true` when the handler set a non-OK code: its response message is not sent.
    pub(crate) fn failed(&self) -> bool {
        self.code.is_some_and(|c| c != Code::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_may_run_further_ahead_than_large_ones() {
        assert_eq!(sends_ahead(0), MAX_SENDS_AHEAD);
        assert_eq!(sends_ahead(1024), MAX_SENDS_AHEAD);
        assert_eq!(sends_ahead(2048), 32);
        assert_eq!(sends_ahead(64 << 10), SENDS_AHEAD);
        assert_eq!(sends_ahead(usize::MAX), SENDS_AHEAD);
        // Never more bytes ahead than the larger of the two bounds.
        for len in [1, 100, 1000, 5000, 70_000] {
            let bytes = sends_ahead(len) * len as u64;
            assert!(bytes <= (SEND_AHEAD_BYTES as u64).max(SENDS_AHEAD * len as u64));
        }
    }

    #[test]
    fn what_runs_ahead_is_bounded_in_bytes_too() {
        // Sixteen 64 KiB messages may wait for the driver, as many as before...
        assert!(may_run_ahead(16, 16 << 16, 64 << 10));
        assert!(!may_run_ahead(17, 17 << 16, 64 << 10));
        // ...but not sixteen of 4 MiB: a message that large waits until it was accepted.
        assert!(!may_run_ahead(1, 4 << 20, 4 << 20));
        assert!(may_run_ahead(4, 1 << 20, 256 << 10));
        assert!(!may_run_ahead(5, 5 << 18, 256 << 10));
        // Small ones: the message count binds first.
        assert!(may_run_ahead(64, 64 * 100, 100));
        assert!(!may_run_ahead(65, 65 * 100, 100));
    }

    #[test]
    fn the_sizes_of_accepted_messages_are_forgotten() {
        let mut state = crate::conn::slot::CallState::default();
        for len in [10, 20, 30] {
            state.sends_submitted += 1;
            state.submitted_sizes.push(len);
        }
        assert_eq!(unaccepted_bytes(&mut state), 60);
        state.sends_accepted = 2;
        assert_eq!(unaccepted_bytes(&mut state), 30);
        assert_eq!(state.submitted_sizes.len(), 1);
        state.sends_accepted = 3;
        assert_eq!(unaccepted_bytes(&mut state), 0);
    }
}
