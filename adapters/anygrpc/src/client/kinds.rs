//! The four call kinds: multi-callables (one per method) and the Call objects they return.

use std::borrow::{Borrow, Cow};
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use anygrpc_core::{Code, Status};
use futures_core::Stream;

use super::call::{
    CallCore, CallOptions, RpcError, UsageError, WriteError, WriteOptions, call_accessors,
};
use super::channel::Channel;
use super::intercepted::{
    Intercepted, IntoReturned, RequestQueue, Returned, UnaryDone, request_stream,
    stream_stream_terminal, stream_unary_terminal, unary_stream_terminal, unary_unary_terminal,
};
use crate::codec::{self, Codec, ProstCodec};
use crate::interceptor::{
    AnyMsg, ClientCallDetails, InterceptedKind, Interceptors, RequestMessages, ResponseStream,
    StreamStreamKind, StreamUnaryKind, Terminal, UnaryStreamKind, UnaryUnaryKind,
};

/// A protobuf message type usable in calls with the default codec ([`ProstCodec`]); other
/// types travel with a [`Codec`] of their own (`with_codec`).
pub trait Msg: prost::Message + Default + Send + 'static {}
impl<T: prost::Message + Default + Send + 'static> Msg for T {}

type Path = Cow<'static, str>;

/// Turns the first message of a finished unary-response call into the result.
fn unary_result<Resp, C: Codec<Resp>>(
    core: &CallCore,
    codec: &C,
    outcome: crate::conn::slot::Outcome,
) -> Result<Resp, RpcError> {
    if outcome.status.code() != Code::Ok {
        return Err(core.error(outcome));
    }
    // The call ended OK with exactly one message (`CallSlot::finish` saw to it), unless this
    // is a poll after the result was taken.
    let message = core.slot.lock().inbox.pop_front();
    let Some(message) = message else {
        let status = crate::conn::slot::no_response();
        return Err(core.error(crate::conn::slot::Outcome { status, ..outcome }));
    };
    core.received(&message);
    codec::decode(codec, message, core.max_recv)
        .map_err(|status| core.error(crate::conn::slot::Outcome { status, ..outcome }))
}

/// Reads the next response of a streaming-response call.
fn poll_next_response<Resp, C: Codec<Resp>>(
    core: &CallCore,
    codec: &C,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Resp, RpcError>>> {
    if *ended {
        return Poll::Ready(None);
    }
    match core.poll_message(cx) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Some(message)) => {
            core.received(&message);
            match codec::decode(codec, message, core.max_recv) {
                Ok(value) => Poll::Ready(Some(Ok(value))),
                Err(status) => {
                    // A message we cannot decode ends the call (grpc-go does the same).
                    core.fail_on_read(status.clone());
                    *ended = true;
                    let trailers = anygrpc_core::Metadata::new();
                    Poll::Ready(Some(Err(core.error(crate::conn::slot::Outcome {
                        status,
                        trailers,
                        unprocessed: false,
                        from_attempt: false,
                    }))))
                }
            }
        }
        Poll::Ready(None) => match core.poll_outcome(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(outcome) => {
                *ended = true;
                if outcome.status.code() == Code::Ok {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(core.error(outcome))))
                }
            }
        },
    }
}

/// The request side shared by client-streaming and bidi calls.
#[derive(Debug)]
struct Requests {
    done_writing: bool,
    from_stream: bool,
    buffer: codec::EncodeBuffer,
    /// Where writes go when the call has interceptors: to the first one's request stream.
    queue: Option<RequestQueue>,
}

impl Requests {
    fn new(from_stream: bool, queue: Option<RequestQueue>) -> Self {
        Self {
            done_writing: from_stream,
            from_stream,
            buffer: codec::EncodeBuffer::default(),
            queue,
        }
    }

    async fn write<Req: Send + Sync + 'static, C: Codec<Req>, R: Returned>(
        &mut self,
        inner: &Inner<R>,
        codec: &C,
        request: &Req,
        options: WriteOptions,
    ) -> Result<(), WriteError> {
        if self.from_stream {
            return Err(WriteError::Usage(UsageError::RequestsFromStream));
        }
        if self.done_writing {
            return Err(WriteError::Usage(UsageError::WriteAfterDoneWriting));
        }
        let core = match inner {
            Inner::Direct(core) => core,
            Inner::Intercepted(call) => {
                return self.queue_for(call, codec, request).await;
            }
        };
        let compression = if options.no_compression {
            None
        } else {
            core.compression
        };
        let encoded = self
            .buffer
            .encode(codec, request, compression, core.max_send)
            .map_err(|status| {
                core.cancel();
                WriteError::Rpc(RpcError::new(
                    status,
                    Default::default(),
                    Default::default(),
                ))
            })?;
        core.sent(&encoded);
        let (bytes, compressed) = encoded.wire();
        core.write_bytes(bytes, compressed)
            .await
            .map_err(WriteError::Rpc)
    }

    /// Hands a request to the call's first interceptor, in its wire form (decoded only if
    /// an interceptor looks at it).
    async fn queue_for<Req: Send + Sync + 'static, C: Codec<Req>, R: Returned>(
        &mut self,
        call: &Intercepted<R>,
        codec: &C,
        request: &Req,
    ) -> Result<(), WriteError> {
        let encoded = codec::encode(codec, request, None, usize::MAX)
            .map_err(|status| WriteError::Rpc(call.error(status, Default::default())))?;
        let requests = crate::interceptor::Erased::<Req, C>::shared(codec.clone());
        let message = AnyMsg::from_wire(encoded.bytes, requests);
        let pushed = match self.queue.as_mut() {
            Some(queue) => queue.push(message).await,
            None => false,
        };
        if pushed {
            return Ok(());
        }
        let (status, trailers) = poll_fn(|cx| call.poll_end(cx)).await;
        let status = if status.code() == Code::Ok {
            Status::internal("the call's interceptors stopped reading its requests")
        } else {
            status
        };
        Err(WriteError::Rpc(call.error(status, trailers)))
    }

    fn done_writing<R>(&mut self, inner: &Inner<R>) -> Result<(), WriteError> {
        if self.from_stream {
            return Err(WriteError::Usage(UsageError::RequestsFromStream));
        }
        if !self.done_writing {
            self.done_writing = true;
            match inner {
                Inner::Direct(core) => core.half_close(),
                Inner::Intercepted(_) => {
                    if let Some(queue) = self.queue.as_mut() {
                        queue.close();
                    }
                }
            }
        }
        Ok(())
    }
}

/// Feeds `requests` into the call from a task of the channel's runtime, then half-closes.
pub(super) fn feed<Req: Send + 'static, C: Codec<Req>>(
    core: &CallCore,
    codec: C,
    requests: impl Stream<Item = Req> + Send + 'static,
) {
    let runtime = core.runtime.clone();
    let core = core.clone();
    let task = async move {
        let mut requests = std::pin::pin!(requests);
        let mut buffer = codec::EncodeBuffer::default();
        while let Some(request) = poll_fn(|cx| requests.as_mut().poll_next(cx)).await {
            let encoded = buffer.encode(&codec, &request, core.compression, core.max_send);
            let Ok(encoded) = encoded else {
                core.cancel();
                return;
            };
            core.sent(&encoded);
            let (bytes, compressed) = encoded.wire();
            if core.write_bytes(bytes, compressed).await.is_err() {
                return;
            }
        }
        core.half_close();
    };
    runtime.spawn(Box::pin(task));
}

/// A Call object's call: straight on the channel, or through the kind's interceptors.
#[derive(Debug)]
enum Inner<R> {
    Direct(CallCore),
    Intercepted(Intercepted<R>),
}

impl<R: Returned> Inner<R> {
    fn poll_initial_metadata(&self, cx: &mut Context<'_>) -> Poll<anygrpc_core::Metadata> {
        match self {
            Inner::Direct(core) => core.poll_initial_metadata(cx),
            Inner::Intercepted(call) => call.poll_initial_metadata(cx),
        }
    }
    fn poll_end(&self, cx: &mut Context<'_>) -> Poll<(Status, anygrpc_core::Metadata)> {
        match self {
            Inner::Direct(core) => core
                .poll_outcome(cx)
                .map(|outcome| (outcome.status, outcome.trailers)),
            Inner::Intercepted(call) => call.poll_end(cx),
        }
    }
    fn cancel(&self) -> bool {
        match self {
            Inner::Direct(core) => core.cancel(),
            Inner::Intercepted(call) => call.cancel(),
        }
    }
    fn is_cancelled(&self) -> bool {
        match self {
            Inner::Direct(core) => core.is_cancelled(),
            Inner::Intercepted(call) => call.is_cancelled(),
        }
    }
    fn is_done(&self) -> bool {
        match self {
            Inner::Direct(core) => core.is_done(),
            Inner::Intercepted(call) => call.is_done(),
        }
    }
    fn time_remaining(&self) -> Option<std::time::Duration> {
        match self {
            Inner::Direct(core) => core.time_remaining(),
            Inner::Intercepted(call) => call.time_remaining(),
        }
    }
    fn on_done(&self, callback: crate::conn::slot::DoneCallback) {
        match self {
            Inner::Direct(core) => core.slot.on_done(callback),
            Inner::Intercepted(call) => call.on_done(callback),
        }
    }
    /// Whether the last response read arrived compressed; an intercepted call's responses
    /// are the interceptors' (`false`).
    fn last_response_compressed(&self) -> bool {
        match self {
            Inner::Direct(core) => core
                .slot
                .last_compressed
                .load(std::sync::atomic::Ordering::Relaxed),
            Inner::Intercepted(_) => false,
        }
    }
    /// Cancels a call dropped before it ended.
    fn cancel_unless_done(&self) {
        if !self.is_done() {
            self.cancel();
        }
    }
}

/// The details the first interceptor sees, and the wire form of a typed request.
fn intercepted_request<Req: Send + Sync + 'static, C: Codec<Req>>(
    path: &str,
    options: CallOptions,
    codec: &C,
    request: &Req,
) -> Result<(ClientCallDetails, AnyMsg), Status> {
    let encoded = codec::encode(codec, request, None, usize::MAX)?;
    let message = AnyMsg::from_wire(
        encoded.bytes,
        crate::interceptor::Erased::<Req, C>::shared(codec.clone()),
    );
    Ok((ClientCallDetails::of(path, options), message))
}

/// Starts a unary-request call: straight on the channel when the kind has no interceptors,
/// else through them.
#[allow(clippy::too_many_arguments, reason = "the parts of one call start")]
fn start_unary_request<Req, Resp, C, K, R>(
    channel: &Channel,
    path: &Path,
    options: CallOptions,
    codec: &C,
    request: &Req,
    interceptors: &Interceptors<K>,
    terminal: fn(&Channel, C) -> Terminal<K>,
    single_response: bool,
) -> Inner<R>
where
    Req: Send + Sync + 'static,
    Resp: Send + Sync + 'static,
    C: Codec<Req> + Codec<Resp>,
    K: InterceptedKind<Request = AnyMsg>,
    K::Response: IntoReturned<R>,
    R: Returned,
{
    if interceptors.is_empty() {
        return Inner::Direct(channel.start_call(
            path,
            options,
            Some((codec, request)),
            true,
            single_response,
        ));
    }
    match intercepted_request(path, options, codec, request) {
        Ok((details, request)) => Inner::Intercepted(Intercepted::start::<K>(
            channel,
            interceptors.clone(),
            terminal(channel, codec.clone()),
            details,
            request,
        )),
        Err(status) => Inner::Intercepted(Intercepted::ended(channel, K::failed(status))),
    }
}

/// Starts a streaming-request call: straight on the channel when the kind has no
/// interceptors, else through them, its writes queued for the first one (the queue; `None`
/// for requests from a stream, or without interceptors).
#[allow(clippy::too_many_arguments, reason = "the parts of one call start")]
fn start_streaming<Req, Resp, C, K, R>(
    channel: &Channel,
    path: &Path,
    options: CallOptions,
    codec: &C,
    from: Option<RequestsFrom<Req>>,
    interceptors: &Interceptors<K>,
    terminal: fn(&Channel, C) -> Terminal<K>,
    single_response: bool,
) -> (Inner<R>, Option<RequestQueue>)
where
    Req: Send + Sync + 'static,
    Resp: Send + Sync + 'static,
    C: Codec<Req> + Codec<Resp>,
    K: InterceptedKind<Request = RequestMessages>,
    K::Response: IntoReturned<R>,
    R: Returned,
{
    if interceptors.is_empty() {
        let core = channel.start_call::<Req, C>(path, options, None, false, single_response);
        if let Some(requests) = from {
            feed(&core, codec.clone(), requests);
        }
        return (Inner::Direct(core), None);
    }
    let (queue, requests) = match from {
        Some(requests) => (None, request_stream(requests, codec.clone())),
        None => {
            let (queue, requests) = RequestQueue::new();
            (Some(queue), requests)
        }
    };
    let call = Intercepted::start::<K>(
        channel,
        interceptors.clone(),
        terminal(channel, codec.clone()),
        ClientCallDetails::of(path, options),
        requests,
    );
    (Inner::Intercepted(call), queue)
}

/// An application's request stream, boxed.
type RequestsFrom<Req> = Pin<Box<dyn Stream<Item = Req> + Send>>;
/// A unary method of a channel: one request, one response.
#[derive(Debug, Clone)]
pub struct UnaryUnary<Req, Resp, C = ProstCodec> {
    channel: Channel,
    path: Path,
    codec: C,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> UnaryUnary<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            codec: ProstCodec,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp, C> UnaryUnary<Req, Resp, C> {
    /// The same method with its messages encoded and decoded by `codec` (e.g.
    /// [`RawCodec`](crate::RawCodec) for raw bytes, or a JSON codec of your own).
    pub fn with_codec<D>(self, codec: D) -> UnaryUnary<Req, Resp, D> {
        UnaryUnary {
            channel: self.channel,
            path: self.path,
            codec,
            _types: PhantomData,
        }
    }
}

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static, C: Codec<Req> + Codec<Resp>>
    UnaryUnary<Req, Resp, C>
{
    /// Starts the call with default options.
    pub fn call(&self, request: impl Borrow<Req>) -> UnaryCall<Resp, C> {
        self.call_with(request, CallOptions::default())
    }
    /// Starts the call.
    pub fn call_with(&self, request: impl Borrow<Req>, options: CallOptions) -> UnaryCall<Resp, C> {
        let inner = start_unary_request::<Req, Resp, C, UnaryUnaryKind, _>(
            &self.channel,
            &self.path,
            options,
            &self.codec,
            request.borrow(),
            &self.channel.interceptors().unary_unary,
            unary_unary_terminal::<Resp, C>,
            true,
        );
        UnaryCall {
            inner,
            codec: self.codec.clone(),
            _resp: PhantomData,
        }
    }
}

/// A running unary call. Await it for the response; the accessors work before and after.
///
/// ```
/// use anygrpc::{Channel, Code};
///
/// async fn call(channel: &Channel) {
///     let call = channel.unary_unary::<String, String>("/echo.Echo/Say").call("hi".to_string());
///     // The head, then the end, as soon as each is known.
///     let head = call.initial_metadata().await;
///     println!("server sent {} header(s)", head.len());
///     if call.code().await != Code::Ok {
///         println!("failed: {}", call.details().await);
///     }
///     match call.await {
///         Ok(reply) => println!("{reply}"),
///         Err(err) => println!("{} {}", err.code().as_str(), err.details()),
///     }
/// }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing visible unless awaited or inspected"]
pub struct UnaryCall<Resp, C = ProstCodec> {
    inner: Inner<UnaryDone>,
    codec: C,
    _resp: PhantomData<fn() -> Resp>,
}

/// Nothing of a call object is pinned (its codec is only ever borrowed).
impl<Resp, C> Unpin for UnaryCall<Resp, C> {}

impl<Resp, C> UnaryCall<Resp, C> {
    call_accessors!();
}

impl<Resp: 'static, C: Codec<Resp>> Future for UnaryCall<Resp, C> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_unary(&self.inner, &self.codec, cx)
    }
}

/// The response of a unary-response call, once it ended.
fn poll_unary<Resp: 'static, C: Codec<Resp>>(
    inner: &Inner<UnaryDone>,
    codec: &C,
    cx: &mut Context<'_>,
) -> Poll<Result<Resp, RpcError>> {
    match inner {
        Inner::Direct(core) => core
            .poll_outcome(cx)
            .map(|outcome| unary_result(core, codec, outcome)),
        Inner::Intercepted(call) => call.poll_response(cx),
    }
}

/// The next response of a streaming-response call.
fn poll_stream<Resp: 'static, C: Codec<Resp>>(
    inner: &Inner<ResponseStream>,
    codec: &C,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Resp, RpcError>>> {
    match inner {
        Inner::Direct(core) => poll_next_response(core, codec, ended, cx),
        Inner::Intercepted(call) => call.poll_next(ended, cx),
    }
}

/// A server-streaming method: one request, a stream of responses.
#[derive(Debug, Clone)]
pub struct UnaryStream<Req, Resp, C = ProstCodec> {
    channel: Channel,
    path: Path,
    codec: C,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> UnaryStream<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            codec: ProstCodec,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp, C> UnaryStream<Req, Resp, C> {
    /// The same method with its messages encoded and decoded by `codec` (e.g.
    /// [`RawCodec`](crate::RawCodec) for raw bytes, or a JSON codec of your own).
    pub fn with_codec<D>(self, codec: D) -> UnaryStream<Req, Resp, D> {
        UnaryStream {
            channel: self.channel,
            path: self.path,
            codec,
            _types: PhantomData,
        }
    }
}

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static, C: Codec<Req> + Codec<Resp>>
    UnaryStream<Req, Resp, C>
{
    /// Starts the call with default options.
    pub fn call(&self, request: impl Borrow<Req>) -> UnaryStreamCall<Resp, C> {
        self.call_with(request, CallOptions::default())
    }
    /// Starts the call.
    pub fn call_with(
        &self,
        request: impl Borrow<Req>,
        options: CallOptions,
    ) -> UnaryStreamCall<Resp, C> {
        let inner = start_unary_request::<Req, Resp, C, UnaryStreamKind, _>(
            &self.channel,
            &self.path,
            options,
            &self.codec,
            request.borrow(),
            &self.channel.interceptors().unary_stream,
            unary_stream_terminal::<Resp, C>,
            false,
        );
        UnaryStreamCall {
            inner,
            codec: self.codec.clone(),
            ended: false,
            _resp: PhantomData,
        }
    }
}

/// A running server-streaming call: a `Stream` of responses, also readable with `read()`.
/// A failed call yields one `Err` and then ends.
///
/// ```
/// use anygrpc::Channel;
///
/// async fn list(channel: &Channel) -> anygrpc::Result<Vec<String>> {
///     let mut call = channel
///         .unary_stream::<String, String>("/echo.Echo/Repeat")
///         .call("hi".to_string());
///     let mut replies = Vec::new();
///     while let Some(reply) = call.read().await {
///         replies.push(reply?);
///     }
///     println!("trailers: {:?}", call.trailing_metadata().await);
///     Ok(replies)
/// }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing visible unless read or inspected"]
pub struct UnaryStreamCall<Resp, C = ProstCodec> {
    inner: Inner<ResponseStream>,
    codec: C,
    ended: bool,
    _resp: PhantomData<fn() -> Resp>,
}

/// Nothing of a call object is pinned (its codec is only ever borrowed).
impl<Resp, C> Unpin for UnaryStreamCall<Resp, C> {}

impl<Resp, C> UnaryStreamCall<Resp, C> {
    call_accessors!();
}

impl<Resp: 'static, C: Codec<Resp>> UnaryStreamCall<Resp, C> {
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        poll_fn(|cx| poll_stream(&self.inner, &self.codec, &mut self.ended, cx)).await
    }
}

impl<Resp: 'static, C: Codec<Resp>> Stream for UnaryStreamCall<Resp, C> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_stream(&this.inner, &this.codec, &mut this.ended, cx)
    }
}

/// A client-streaming method: a stream of requests, one response.
#[derive(Debug, Clone)]
pub struct StreamUnary<Req, Resp, C = ProstCodec> {
    channel: Channel,
    path: Path,
    codec: C,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> StreamUnary<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            codec: ProstCodec,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp, C> StreamUnary<Req, Resp, C> {
    /// The same method with its messages encoded and decoded by `codec` (e.g.
    /// [`RawCodec`](crate::RawCodec) for raw bytes, or a JSON codec of your own).
    pub fn with_codec<D>(self, codec: D) -> StreamUnary<Req, Resp, D> {
        StreamUnary {
            channel: self.channel,
            path: self.path,
            codec,
            _types: PhantomData,
        }
    }
}

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static, C: Codec<Req> + Codec<Resp>>
    StreamUnary<Req, Resp, C>
{
    /// Starts the call; send requests with `write`, then `done_writing`.
    pub fn call(&self) -> StreamUnaryCall<Req, Resp, C> {
        self.call_with(CallOptions::default())
    }
    /// Starts the call with options.
    pub fn call_with(&self, options: CallOptions) -> StreamUnaryCall<Req, Resp, C> {
        self.start(options, None)
    }
    /// Starts the call with its requests taken from `requests`.
    pub fn call_from(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
    ) -> StreamUnaryCall<Req, Resp, C> {
        self.call_from_with(requests, CallOptions::default())
    }
    /// Starts the call with options and its requests taken from `requests`.
    pub fn call_from_with(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
        options: CallOptions,
    ) -> StreamUnaryCall<Req, Resp, C> {
        self.start(options, Some(Box::pin(requests)))
    }

    fn start(
        &self,
        options: CallOptions,
        from: Option<RequestsFrom<Req>>,
    ) -> StreamUnaryCall<Req, Resp, C> {
        let from_stream = from.is_some();
        let (inner, queue) = start_streaming::<Req, Resp, C, StreamUnaryKind, _>(
            &self.channel,
            &self.path,
            options,
            &self.codec,
            from,
            &self.channel.interceptors().stream_unary,
            stream_unary_terminal::<Resp, C>,
            true,
        );
        StreamUnaryCall {
            inner,
            codec: self.codec.clone(),
            requests: Requests::new(from_stream, queue),
            _types: PhantomData,
        }
    }
}

/// A running client-streaming call. Await it for the response.
///
/// ```
/// use anygrpc::Channel;
///
/// async fn upload(channel: &Channel, parts: &[String]) -> anygrpc::Result<String> {
///     let mut call = channel.stream_unary::<String, String>("/echo.Echo/Join").call();
///     for part in parts {
///         // Waits while the connection has no room: back-pressure.
///         call.write(part).await?;
///     }
///     call.done_writing().await?;
///     Ok(call.await?)
/// }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing visible unless awaited or inspected"]
pub struct StreamUnaryCall<Req, Resp, C = ProstCodec> {
    inner: Inner<UnaryDone>,
    codec: C,
    requests: Requests,
    _types: PhantomData<fn(Req) -> Resp>,
}

/// Nothing of a call object is pinned (its codec is only ever borrowed).
impl<Req, Resp, C> Unpin for StreamUnaryCall<Req, Resp, C> {}

impl<Req, Resp, C> StreamUnaryCall<Req, Resp, C> {
    call_accessors!();
}

impl<Req: Send + Sync + 'static, Resp, C: Codec<Req>> StreamUnaryCall<Req, Resp, C> {
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(
                &self.inner,
                &self.codec,
                request.borrow(),
                WriteOptions::default(),
            )
            .await
    }
    /// Sends one request with per-message options (e.g. uncompressed).
    pub async fn write_with(
        &mut self,
        request: impl Borrow<Req>,
        options: WriteOptions,
    ) -> Result<(), WriteError> {
        self.requests
            .write(&self.inner, &self.codec, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.inner)
    }
}

impl<Req, Resp: 'static, C: Codec<Resp>> Future for StreamUnaryCall<Req, Resp, C> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_unary(&self.inner, &self.codec, cx)
    }
}

/// A bidi-streaming method.
#[derive(Debug, Clone)]
pub struct StreamStream<Req, Resp, C = ProstCodec> {
    channel: Channel,
    path: Path,
    codec: C,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> StreamStream<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            codec: ProstCodec,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp, C> StreamStream<Req, Resp, C> {
    /// The same method with its messages encoded and decoded by `codec` (e.g.
    /// [`RawCodec`](crate::RawCodec) for raw bytes, or a JSON codec of your own).
    pub fn with_codec<D>(self, codec: D) -> StreamStream<Req, Resp, D> {
        StreamStream {
            channel: self.channel,
            path: self.path,
            codec,
            _types: PhantomData,
        }
    }
}

impl<Req: Send + Sync + 'static, Resp: Send + Sync + 'static, C: Codec<Req> + Codec<Resp>>
    StreamStream<Req, Resp, C>
{
    /// Starts the call; send requests with `write`, then `done_writing`.
    pub fn call(&self) -> StreamStreamCall<Req, Resp, C> {
        self.call_with(CallOptions::default())
    }
    /// Starts the call with options.
    pub fn call_with(&self, options: CallOptions) -> StreamStreamCall<Req, Resp, C> {
        self.start(options, None)
    }
    /// Starts the call with its requests taken from `requests`.
    pub fn call_from(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
    ) -> StreamStreamCall<Req, Resp, C> {
        self.call_from_with(requests, CallOptions::default())
    }
    /// Starts the call with options and its requests taken from `requests`.
    pub fn call_from_with(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
        options: CallOptions,
    ) -> StreamStreamCall<Req, Resp, C> {
        self.start(options, Some(Box::pin(requests)))
    }

    fn start(
        &self,
        options: CallOptions,
        from: Option<RequestsFrom<Req>>,
    ) -> StreamStreamCall<Req, Resp, C> {
        let from_stream = from.is_some();
        let (inner, queue) = start_streaming::<Req, Resp, C, StreamStreamKind, _>(
            &self.channel,
            &self.path,
            options,
            &self.codec,
            from,
            &self.channel.interceptors().stream_stream,
            stream_stream_terminal::<Resp, C>,
            false,
        );
        StreamStreamCall {
            inner,
            codec: self.codec.clone(),
            requests: Requests::new(from_stream, queue),
            ended: false,
            _types: PhantomData,
        }
    }
}

/// A running bidi call: write requests, read responses (or use it as a `Stream`).
///
/// ```
/// use anygrpc::Channel;
///
/// async fn chat(channel: &Channel) -> anygrpc::Result<()> {
///     let mut call = channel.stream_stream::<String, String>("/echo.Echo/Chat").call();
///     call.write("hello".to_string()).await?;
///     if let Some(reply) = call.read().await {
///         println!("{}", reply?);
///     }
///     call.done_writing().await?;
///     while let Some(reply) = call.read().await {
///         println!("{}", reply?);
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing visible unless read or inspected"]
pub struct StreamStreamCall<Req, Resp, C = ProstCodec> {
    inner: Inner<ResponseStream>,
    codec: C,
    requests: Requests,
    ended: bool,
    _types: PhantomData<fn(Req) -> Resp>,
}

/// Nothing of a call object is pinned (its codec is only ever borrowed).
impl<Req, Resp, C> Unpin for StreamStreamCall<Req, Resp, C> {}

impl<Req, Resp, C> StreamStreamCall<Req, Resp, C> {
    call_accessors!();
}

impl<Req: Send + Sync + 'static, Resp, C: Codec<Req>> StreamStreamCall<Req, Resp, C> {
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(
                &self.inner,
                &self.codec,
                request.borrow(),
                WriteOptions::default(),
            )
            .await
    }
    /// Sends one request with per-message options (e.g. uncompressed).
    pub async fn write_with(
        &mut self,
        request: impl Borrow<Req>,
        options: WriteOptions,
    ) -> Result<(), WriteError> {
        self.requests
            .write(&self.inner, &self.codec, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.inner)
    }
}

impl<Req, Resp: 'static, C: Codec<Resp>> StreamStreamCall<Req, Resp, C> {
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        poll_fn(|cx| poll_stream(&self.inner, &self.codec, &mut self.ended, cx)).await
    }
}

impl<Req, Resp: 'static, C: Codec<Resp>> Stream for StreamStreamCall<Req, Resp, C> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_stream(&this.inner, &this.codec, &mut this.ended, cx)
    }
}

impl<Resp, C> Drop for UnaryCall<Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}

impl<Resp, C> Drop for UnaryStreamCall<Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}

impl<Req, Resp, C> Drop for StreamUnaryCall<Req, Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}

impl<Req, Resp, C> Drop for StreamStreamCall<Req, Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}
