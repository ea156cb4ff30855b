//! The four call kinds: multi-callables (one per method) and the Call objects they return.

use std::borrow::{Borrow, Cow};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use anygrpc_core::Code;
use futures_core::Stream;

use super::call::{
    CallCore, CallOptions, RpcError, UsageError, WriteError, WriteOptions, call_accessors,
};
use super::channel::Channel;
use crate::codec::{self, Codec, ProstCodec};

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
    codec::decode_observed(codec, &message, core.max_recv, core.hooks.as_ref())
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
            match codec::decode_observed(codec, &message, core.max_recv, core.hooks.as_ref()) {
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
}

impl Requests {
    async fn write<Req, C: Codec<Req>>(
        &mut self,
        core: &CallCore,
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

    fn done_writing(&mut self, core: &CallCore) -> Result<(), WriteError> {
        if self.from_stream {
            return Err(WriteError::Usage(UsageError::RequestsFromStream));
        }
        if !self.done_writing {
            self.done_writing = true;
            core.half_close();
        }
        Ok(())
    }
}

/// Feeds `requests` into the call from a task of the channel's runtime, then half-closes.
fn feed<Req: Send + 'static, C: Codec<Req>>(
    core: &CallCore,
    codec: C,
    requests: impl Stream<Item = Req> + Send + 'static,
) {
    let runtime = core.runtime.clone();
    let core = core.clone();
    let task = async move {
        let mut requests = std::pin::pin!(requests);
        let mut buffer = codec::EncodeBuffer::default();
        while let Some(request) = std::future::poll_fn(|cx| requests.as_mut().poll_next(cx)).await {
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

impl<Req: Send + 'static, Resp: Send + 'static, C: Codec<Req> + Codec<Resp>>
    UnaryUnary<Req, Resp, C>
{
    /// Starts the call with default options.
    pub fn call(&self, request: impl Borrow<Req>) -> UnaryCall<Resp, C> {
        self.call_with(request, CallOptions::default())
    }
    /// Starts the call.
    pub fn call_with(&self, request: impl Borrow<Req>, options: CallOptions) -> UnaryCall<Resp, C> {
        let first = Some((&self.codec, request.borrow()));
        let core = self
            .channel
            .start_call(&self.path, options, first, true, true);
        UnaryCall {
            core,
            codec: self.codec.clone(),
            _resp: PhantomData,
        }
    }
}

/// A running unary call. Await it for the response; the accessors work before and after.
#[derive(Debug)]
#[must_use = "a call does nothing visible unless awaited or inspected"]
pub struct UnaryCall<Resp, C = ProstCodec> {
    core: CallCore,
    codec: C,
    _resp: PhantomData<fn() -> Resp>,
}

/// Nothing of a call object is pinned (its codec is only ever borrowed).
impl<Resp, C> Unpin for UnaryCall<Resp, C> {}

impl<Resp, C> UnaryCall<Resp, C> {
    call_accessors!();
}

impl<Resp, C: Codec<Resp>> Future for UnaryCall<Resp, C> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (core, codec) = (&self.core, &self.codec);
        core.poll_outcome(cx)
            .map(|outcome| unary_result(core, codec, outcome))
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

impl<Req: Send + 'static, Resp: Send + 'static, C: Codec<Req> + Codec<Resp>>
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
        let first = Some((&self.codec, request.borrow()));
        let core = self
            .channel
            .start_call(&self.path, options, first, true, false);
        UnaryStreamCall {
            core,
            codec: self.codec.clone(),
            ended: false,
            _resp: PhantomData,
        }
    }
}

/// A running server-streaming call: a `Stream` of responses, also readable with `read()`.
/// A failed call yields one `Err` and then ends.
#[derive(Debug)]
#[must_use = "a call does nothing visible unless read or inspected"]
pub struct UnaryStreamCall<Resp, C = ProstCodec> {
    core: CallCore,
    codec: C,
    ended: bool,
    _resp: PhantomData<fn() -> Resp>,
}

/// Nothing of a call object is pinned (its codec is only ever borrowed).
impl<Resp, C> Unpin for UnaryStreamCall<Resp, C> {}

impl<Resp, C> UnaryStreamCall<Resp, C> {
    call_accessors!();
}

impl<Resp, C: Codec<Resp>> UnaryStreamCall<Resp, C> {
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        std::future::poll_fn(|cx| poll_next_response(&self.core, &self.codec, &mut self.ended, cx))
            .await
    }
}

impl<Resp, C: Codec<Resp>> Stream for UnaryStreamCall<Resp, C> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_response(&this.core, &this.codec, &mut this.ended, cx)
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

impl<Req: Send + 'static, Resp: Send + 'static, C: Codec<Req> + Codec<Resp>>
    StreamUnary<Req, Resp, C>
{
    /// Starts the call; send requests with `write`, then `done_writing`.
    pub fn call(&self) -> StreamUnaryCall<Req, Resp, C> {
        self.call_with(CallOptions::default())
    }
    /// Starts the call with options.
    pub fn call_with(&self, options: CallOptions) -> StreamUnaryCall<Req, Resp, C> {
        let core = self
            .channel
            .start_call::<Req, C>(&self.path, options, None, false, true);
        StreamUnaryCall {
            core,
            codec: self.codec.clone(),
            requests: Requests {
                done_writing: false,
                from_stream: false,
                buffer: codec::EncodeBuffer::default(),
            },
            _types: PhantomData,
        }
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
        let core = self
            .channel
            .start_call::<Req, C>(&self.path, options, None, false, true);
        feed(&core, self.codec.clone(), requests);
        StreamUnaryCall {
            core,
            codec: self.codec.clone(),
            requests: Requests {
                done_writing: true,
                from_stream: true,
                buffer: codec::EncodeBuffer::default(),
            },
            _types: PhantomData,
        }
    }
}

/// A running client-streaming call. Await it for the response.
#[derive(Debug)]
#[must_use = "a call does nothing visible unless awaited or inspected"]
pub struct StreamUnaryCall<Req, Resp, C = ProstCodec> {
    core: CallCore,
    codec: C,
    requests: Requests,
    _types: PhantomData<fn(Req) -> Resp>,
}

/// Nothing of a call object is pinned (its codec is only ever borrowed).
impl<Req, Resp, C> Unpin for StreamUnaryCall<Req, Resp, C> {}

impl<Req, Resp, C> StreamUnaryCall<Req, Resp, C> {
    call_accessors!();
}

impl<Req, Resp, C: Codec<Req>> StreamUnaryCall<Req, Resp, C> {
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(
                &self.core,
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
            .write(&self.core, &self.codec, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.core)
    }
}

impl<Req, Resp, C: Codec<Resp>> Future for StreamUnaryCall<Req, Resp, C> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (core, codec) = (&self.core, &self.codec);
        core.poll_outcome(cx)
            .map(|outcome| unary_result(core, codec, outcome))
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

impl<Req: Send + 'static, Resp: Send + 'static, C: Codec<Req> + Codec<Resp>>
    StreamStream<Req, Resp, C>
{
    /// Starts the call; send with `write`/`done_writing`, read with `read` or as a `Stream`.
    pub fn call(&self) -> StreamStreamCall<Req, Resp, C> {
        self.call_with(CallOptions::default())
    }
    /// Starts the call with options.
    pub fn call_with(&self, options: CallOptions) -> StreamStreamCall<Req, Resp, C> {
        let core = self
            .channel
            .start_call::<Req, C>(&self.path, options, None, false, false);
        StreamStreamCall {
            core,
            codec: self.codec.clone(),
            requests: Requests {
                done_writing: false,
                from_stream: false,
                buffer: codec::EncodeBuffer::default(),
            },
            ended: false,
            _types: PhantomData,
        }
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
        let core = self
            .channel
            .start_call::<Req, C>(&self.path, options, None, false, false);
        feed(&core, self.codec.clone(), requests);
        StreamStreamCall {
            core,
            codec: self.codec.clone(),
            requests: Requests {
                done_writing: true,
                from_stream: true,
                buffer: codec::EncodeBuffer::default(),
            },
            ended: false,
            _types: PhantomData,
        }
    }
}

/// A running bidi call: write requests, read responses (or use it as a `Stream`).
#[derive(Debug)]
#[must_use = "a call does nothing visible unless read or inspected"]
pub struct StreamStreamCall<Req, Resp, C = ProstCodec> {
    core: CallCore,
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

impl<Req, Resp, C: Codec<Req> + Codec<Resp>> StreamStreamCall<Req, Resp, C> {
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(
                &self.core,
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
            .write(&self.core, &self.codec, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.core)
    }
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        std::future::poll_fn(|cx| poll_next_response(&self.core, &self.codec, &mut self.ended, cx))
            .await
    }
}

impl<Req, Resp, C: Codec<Resp>> Stream for StreamStreamCall<Req, Resp, C> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_response(&this.core, &this.codec, &mut this.ended, cx)
    }
}

impl<Resp, C> Drop for UnaryCall<Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}

impl<Resp, C> Drop for UnaryStreamCall<Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}

impl<Req, Resp, C> Drop for StreamUnaryCall<Req, Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}

impl<Req, Resp, C> Drop for StreamStreamCall<Req, Resp, C> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}
