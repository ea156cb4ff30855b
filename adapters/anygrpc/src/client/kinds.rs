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
    Intercepted, RequestQueue, Returned, UnaryDone, request_stream, stream_stream_terminal,
    stream_unary_terminal, unary_stream_terminal, unary_unary_terminal,
};
use crate::codec::{self, Outgoing};
use crate::interceptor::{
    AnyMsg, ClientCallDetails, ResponseStream, StreamStreamKind, StreamUnaryKind, UnaryStreamKind,
    UnaryUnaryKind,
};

/// A gRPC message type usable in calls.
pub trait Msg: prost::Message + Default + Send + 'static {}
impl<T: prost::Message + Default + Send + 'static> Msg for T {}

type Path = Cow<'static, str>;

/// Turns the first message of a finished unary-response call into the result.
fn unary_result<Resp: Msg>(
    core: &CallCore,
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
    codec::decode(&message, core.max_recv)
        .map_err(|status| core.error(crate::conn::slot::Outcome { status, ..outcome }))
}

/// Reads the next response of a streaming-response call.
fn poll_next_response<Resp: Msg>(
    core: &CallCore,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Resp, RpcError>>> {
    if *ended {
        return Poll::Ready(None);
    }
    match core.poll_message(cx) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Some(message)) => {
            match codec::decode::<Resp>(&message, core.max_recv) {
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

    async fn write<Req: Msg, R: Returned>(
        &mut self,
        inner: &Inner<R>,
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
                // The interceptors get the request in its wire form, decoded only if they
                // look at it.
                let message = AnyMsg::encoded::<Req>(request.encode_to_vec().into());
                let queue = self.queue.as_mut();
                let pushed = match queue {
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
                return Err(WriteError::Rpc(call.error(status, trailers)));
            }
        };
        let compression = if options.no_compression {
            None
        } else {
            core.compression
        };
        let encoded = self
            .buffer
            .encode(request, compression, core.max_send)
            .map_err(|status| {
                core.cancel();
                WriteError::Rpc(RpcError::new(
                    status,
                    Default::default(),
                    Default::default(),
                ))
            })?;
        core.sent(request, &encoded);
        let (bytes, compressed) = encoded;
        core.write_bytes(bytes, compressed)
            .await
            .map_err(WriteError::Rpc)
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
pub(super) fn feed<Req: Outgoing + Send + 'static>(
    core: &CallCore,
    requests: impl Stream<Item = Req> + Send + 'static,
) {
    let runtime = core.runtime.clone();
    let core = core.clone();
    let task = async move {
        let mut requests = std::pin::pin!(requests);
        let mut buffer = codec::EncodeBuffer::default();
        while let Some(request) = poll_fn(|cx| requests.as_mut().poll_next(cx)).await {
            let encoded = request.encode_in(&mut buffer, core.compression, core.max_send);
            let Ok(encoded) = encoded else {
                core.cancel();
                return;
            };
            core.sent(&request, &encoded);
            let (bytes, compressed) = encoded;
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
}

impl<R> Inner<R> {
    /// Cancels a call dropped before it ended.
    fn cancel_unless_done(&self)
    where
        R: Returned,
    {
        if !self.is_done() {
            self.cancel();
        }
    }
}

/// The details the first interceptor sees, and the wire form of a typed request.
fn intercepted_request<Req: Msg>(
    path: &str,
    options: CallOptions,
    request: &Req,
) -> (ClientCallDetails, AnyMsg) {
    let details = ClientCallDetails::of(path, options);
    (
        details,
        AnyMsg::encoded::<Req>(request.encode_to_vec().into()),
    )
}

/// A unary method of a channel: one request, one response.
#[derive(Debug, Clone)]
pub struct UnaryUnary<Req, Resp> {
    channel: Channel,
    path: Path,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> UnaryUnary<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            _types: PhantomData,
        }
    }
    /// Starts the call with default options.
    pub fn call(&self, request: impl Borrow<Req>) -> UnaryCall<Resp> {
        self.call_with(request, CallOptions::default())
    }
    /// Starts the call.
    pub fn call_with(&self, request: impl Borrow<Req>, options: CallOptions) -> UnaryCall<Resp> {
        let interceptors = &self.channel.interceptors().unary_unary;
        let inner = if interceptors.is_empty() {
            Inner::Direct(self.channel.start_call(
                &self.path,
                options,
                Some(request.borrow()),
                true,
                true,
            ))
        } else {
            let (details, request) = intercepted_request(&self.path, options, request.borrow());
            Inner::Intercepted(Intercepted::start::<UnaryUnaryKind>(
                &self.channel,
                interceptors.clone(),
                unary_unary_terminal::<Resp>(&self.channel),
                details,
                request,
            ))
        };
        UnaryCall {
            inner,
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
pub struct UnaryCall<Resp> {
    inner: Inner<UnaryDone>,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp: Msg> UnaryCall<Resp> {
    call_accessors!();
}

impl<Resp: Msg> Future for UnaryCall<Resp> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_unary(&self.inner, cx)
    }
}

/// The response of a unary-response call, once it ended.
fn poll_unary<Resp: Msg>(
    inner: &Inner<UnaryDone>,
    cx: &mut Context<'_>,
) -> Poll<Result<Resp, RpcError>> {
    match inner {
        Inner::Direct(core) => core
            .poll_outcome(cx)
            .map(|outcome| unary_result(core, outcome)),
        Inner::Intercepted(call) => call.poll_response(cx),
    }
}

/// The next response of a streaming-response call.
fn poll_stream<Resp: Msg>(
    inner: &Inner<ResponseStream>,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Resp, RpcError>>> {
    match inner {
        Inner::Direct(core) => poll_next_response(core, ended, cx),
        Inner::Intercepted(call) => call.poll_next(ended, cx),
    }
}

/// A server-streaming method: one request, a stream of responses.
#[derive(Debug, Clone)]
pub struct UnaryStream<Req, Resp> {
    channel: Channel,
    path: Path,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> UnaryStream<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            _types: PhantomData,
        }
    }
    /// Starts the call with default options.
    pub fn call(&self, request: impl Borrow<Req>) -> UnaryStreamCall<Resp> {
        self.call_with(request, CallOptions::default())
    }
    /// Starts the call.
    pub fn call_with(
        &self,
        request: impl Borrow<Req>,
        options: CallOptions,
    ) -> UnaryStreamCall<Resp> {
        let interceptors = &self.channel.interceptors().unary_stream;
        let inner = if interceptors.is_empty() {
            Inner::Direct(self.channel.start_call(
                &self.path,
                options,
                Some(request.borrow()),
                true,
                false,
            ))
        } else {
            let (details, request) = intercepted_request(&self.path, options, request.borrow());
            Inner::Intercepted(Intercepted::start::<UnaryStreamKind>(
                &self.channel,
                interceptors.clone(),
                unary_stream_terminal::<Resp>(&self.channel),
                details,
                request,
            ))
        };
        UnaryStreamCall {
            inner,
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
pub struct UnaryStreamCall<Resp> {
    inner: Inner<ResponseStream>,
    ended: bool,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp: Msg> UnaryStreamCall<Resp> {
    call_accessors!();
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        poll_fn(|cx| poll_stream(&self.inner, &mut self.ended, cx)).await
    }
}

impl<Resp: Msg> Stream for UnaryStreamCall<Resp> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_stream(&this.inner, &mut this.ended, cx)
    }
}

/// A client-streaming method: a stream of requests, one response.
#[derive(Debug, Clone)]
pub struct StreamUnary<Req, Resp> {
    channel: Channel,
    path: Path,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> StreamUnary<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            _types: PhantomData,
        }
    }
    /// Starts the call; send requests with `write`, then `done_writing`.
    pub fn call(&self) -> StreamUnaryCall<Req, Resp> {
        self.call_with(CallOptions::default())
    }
    /// Starts the call with options.
    pub fn call_with(&self, options: CallOptions) -> StreamUnaryCall<Req, Resp> {
        self.start(options, None)
    }
    /// Starts the call with its requests taken from `requests`.
    pub fn call_from(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
    ) -> StreamUnaryCall<Req, Resp> {
        self.call_from_with(requests, CallOptions::default())
    }
    /// Starts the call with options and its requests taken from `requests`.
    pub fn call_from_with(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
        options: CallOptions,
    ) -> StreamUnaryCall<Req, Resp> {
        self.start(options, Some(Box::pin(requests)))
    }

    fn start(
        &self,
        options: CallOptions,
        from: Option<RequestsFrom<Req>>,
    ) -> StreamUnaryCall<Req, Resp> {
        let from_stream = from.is_some();
        let (inner, queue) = start_streaming::<Req, StreamUnaryKind, _>(
            &self.channel,
            &self.path,
            options,
            from,
            &self.channel.interceptors().stream_unary,
            stream_unary_terminal::<Resp>,
            true,
        );
        StreamUnaryCall {
            inner,
            requests: Requests::new(from_stream, queue),
            _types: PhantomData,
        }
    }
}

/// Starts a streaming-request call: straight on the channel when the kind has no
/// interceptors, else through them, its writes queued for the first one (the queue; `None`
/// for requests from a stream, or without interceptors).
#[allow(clippy::too_many_arguments, reason = "the parts of one call start")]
fn start_streaming<Req: Msg, K, R>(
    channel: &Channel,
    path: &str,
    options: CallOptions,
    from: Option<RequestsFrom<Req>>,
    interceptors: &crate::interceptor::Interceptors<K>,
    terminal: fn(&Channel) -> crate::interceptor::Terminal<K>,
    single_response: bool,
) -> (Inner<R>, Option<RequestQueue>)
where
    K: crate::interceptor::InterceptedKind<Request = crate::interceptor::RequestMessages>,
    K::Response: super::intercepted::IntoReturned<R>,
    R: Returned,
{
    if interceptors.is_empty() {
        let core = channel.start_call::<Req>(path, options, None, false, single_response);
        if let Some(requests) = from {
            feed(&core, requests);
        }
        return (Inner::Direct(core), None);
    }
    let (queue, requests) = match from {
        Some(requests) => (None, request_stream(requests)),
        None => {
            let (queue, requests) = RequestQueue::new();
            (Some(queue), requests)
        }
    };
    let call = Intercepted::start::<K>(
        channel,
        interceptors.clone(),
        terminal(channel),
        ClientCallDetails::of(path, options),
        requests,
    );
    (Inner::Intercepted(call), queue)
}

/// An application's request stream, boxed.
type RequestsFrom<Req> = Pin<Box<dyn Stream<Item = Req> + Send>>;

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
pub struct StreamUnaryCall<Req, Resp> {
    inner: Inner<UnaryDone>,
    requests: Requests,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> StreamUnaryCall<Req, Resp> {
    call_accessors!();
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(&self.inner, request.borrow(), WriteOptions::default())
            .await
    }
    /// Sends one request with per-message options (e.g. uncompressed).
    pub async fn write_with(
        &mut self,
        request: impl Borrow<Req>,
        options: WriteOptions,
    ) -> Result<(), WriteError> {
        self.requests
            .write(&self.inner, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.inner)
    }
}

impl<Req: Msg, Resp: Msg> Future for StreamUnaryCall<Req, Resp> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_unary(&self.inner, cx)
    }
}

/// A bidi-streaming method.
#[derive(Debug, Clone)]
pub struct StreamStream<Req, Resp> {
    channel: Channel,
    path: Path,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> StreamStream<Req, Resp> {
    pub(crate) fn new(channel: Channel, path: Path) -> Self {
        Self {
            channel,
            path,
            _types: PhantomData,
        }
    }
    /// Starts the call; send with `write`/`done_writing`, read with `read` or as a `Stream`.
    pub fn call(&self) -> StreamStreamCall<Req, Resp> {
        self.call_with(CallOptions::default())
    }
    /// Starts the call with options.
    pub fn call_with(&self, options: CallOptions) -> StreamStreamCall<Req, Resp> {
        self.start(options, None)
    }
    /// Starts the call with its requests taken from `requests`.
    pub fn call_from(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
    ) -> StreamStreamCall<Req, Resp> {
        self.call_from_with(requests, CallOptions::default())
    }
    /// Starts the call with options and its requests taken from `requests`.
    pub fn call_from_with(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
        options: CallOptions,
    ) -> StreamStreamCall<Req, Resp> {
        self.start(options, Some(Box::pin(requests)))
    }

    fn start(
        &self,
        options: CallOptions,
        from: Option<RequestsFrom<Req>>,
    ) -> StreamStreamCall<Req, Resp> {
        let from_stream = from.is_some();
        let (inner, queue) = start_streaming::<Req, StreamStreamKind, _>(
            &self.channel,
            &self.path,
            options,
            from,
            &self.channel.interceptors().stream_stream,
            stream_stream_terminal::<Resp>,
            false,
        );
        StreamStreamCall {
            inner,
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
pub struct StreamStreamCall<Req, Resp> {
    inner: Inner<ResponseStream>,
    requests: Requests,
    ended: bool,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> StreamStreamCall<Req, Resp> {
    call_accessors!();
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(&self.inner, request.borrow(), WriteOptions::default())
            .await
    }
    /// Sends one request with per-message options (e.g. uncompressed).
    pub async fn write_with(
        &mut self,
        request: impl Borrow<Req>,
        options: WriteOptions,
    ) -> Result<(), WriteError> {
        self.requests
            .write(&self.inner, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.inner)
    }
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        poll_fn(|cx| poll_stream(&self.inner, &mut self.ended, cx)).await
    }
}

impl<Req: Msg, Resp: Msg> Stream for StreamStreamCall<Req, Resp> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_stream(&this.inner, &mut this.ended, cx)
    }
}

impl<Resp> Drop for UnaryCall<Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}

impl<Resp> Drop for UnaryStreamCall<Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}

impl<Req, Resp> Drop for StreamUnaryCall<Req, Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}

impl<Req, Resp> Drop for StreamStreamCall<Req, Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        self.inner.cancel_unless_done();
    }
}
