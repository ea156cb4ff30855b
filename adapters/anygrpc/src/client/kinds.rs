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
use crate::codec;

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
    codec::decode_observed(&message, core.max_recv, core.hooks.as_ref())
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
            match codec::decode_observed::<Resp>(&message, core.max_recv, core.hooks.as_ref()) {
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
    async fn write<Req: Msg>(
        &mut self,
        core: &CallCore,
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
fn feed<Req: Msg>(core: &CallCore, requests: impl Stream<Item = Req> + Send + 'static) {
    let runtime = core.runtime.clone();
    let core = core.clone();
    let task = async move {
        let mut requests = std::pin::pin!(requests);
        let mut buffer = codec::EncodeBuffer::default();
        while let Some(request) = std::future::poll_fn(|cx| requests.as_mut().poll_next(cx)).await {
            let encoded = buffer.encode(&request, core.compression, core.max_send);
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
        let core = self
            .channel
            .start_call(&self.path, options, Some(request.borrow()), true, true);
        UnaryCall {
            core,
            _resp: PhantomData,
        }
    }
}

/// A running unary call. Await it for the response; the accessors work before and after.
#[derive(Debug)]
#[must_use = "a call does nothing visible unless awaited or inspected"]
pub struct UnaryCall<Resp> {
    core: CallCore,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp: Msg> UnaryCall<Resp> {
    call_accessors!();
}

impl<Resp: Msg> Future for UnaryCall<Resp> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let core = &self.core;
        core.poll_outcome(cx)
            .map(|outcome| unary_result(core, outcome))
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
        let core =
            self.channel
                .start_call(&self.path, options, Some(request.borrow()), true, false);
        UnaryStreamCall {
            core,
            ended: false,
            _resp: PhantomData,
        }
    }
}

/// A running server-streaming call: a `Stream` of responses, also readable with `read()`.
/// A failed call yields one `Err` and then ends.
#[derive(Debug)]
#[must_use = "a call does nothing visible unless read or inspected"]
pub struct UnaryStreamCall<Resp> {
    core: CallCore,
    ended: bool,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp: Msg> UnaryStreamCall<Resp> {
    call_accessors!();
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        std::future::poll_fn(|cx| poll_next_response(&self.core, &mut self.ended, cx)).await
    }
}

impl<Resp: Msg> Stream for UnaryStreamCall<Resp> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_response(&this.core, &mut this.ended, cx)
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
        let core = self
            .channel
            .start_call::<Req>(&self.path, options, None, false, true);
        StreamUnaryCall {
            core,
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
    ) -> StreamUnaryCall<Req, Resp> {
        self.call_from_with(requests, CallOptions::default())
    }
    /// Starts the call with options and its requests taken from `requests`.
    pub fn call_from_with(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
        options: CallOptions,
    ) -> StreamUnaryCall<Req, Resp> {
        let core = self
            .channel
            .start_call::<Req>(&self.path, options, None, false, true);
        feed(&core, requests);
        StreamUnaryCall {
            core,
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
pub struct StreamUnaryCall<Req, Resp> {
    core: CallCore,
    requests: Requests,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> StreamUnaryCall<Req, Resp> {
    call_accessors!();
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(&self.core, request.borrow(), WriteOptions::default())
            .await
    }
    /// Sends one request with per-message options (e.g. uncompressed).
    pub async fn write_with(
        &mut self,
        request: impl Borrow<Req>,
        options: WriteOptions,
    ) -> Result<(), WriteError> {
        self.requests
            .write(&self.core, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.core)
    }
}

impl<Req: Msg, Resp: Msg> Future for StreamUnaryCall<Req, Resp> {
    type Output = Result<Resp, RpcError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let core = &self.core;
        core.poll_outcome(cx)
            .map(|outcome| unary_result(core, outcome))
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
        let core = self
            .channel
            .start_call::<Req>(&self.path, options, None, false, false);
        StreamStreamCall {
            core,
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
    ) -> StreamStreamCall<Req, Resp> {
        self.call_from_with(requests, CallOptions::default())
    }
    /// Starts the call with options and its requests taken from `requests`.
    pub fn call_from_with(
        &self,
        requests: impl Stream<Item = Req> + Send + 'static,
        options: CallOptions,
    ) -> StreamStreamCall<Req, Resp> {
        let core = self
            .channel
            .start_call::<Req>(&self.path, options, None, false, false);
        feed(&core, requests);
        StreamStreamCall {
            core,
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
pub struct StreamStreamCall<Req, Resp> {
    core: CallCore,
    requests: Requests,
    ended: bool,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req: Msg, Resp: Msg> StreamStreamCall<Req, Resp> {
    call_accessors!();
    /// Sends one request; completes when the connection accepted it (back-pressure).
    pub async fn write(&mut self, request: impl Borrow<Req>) -> Result<(), WriteError> {
        self.requests
            .write(&self.core, request.borrow(), WriteOptions::default())
            .await
    }
    /// Sends one request with per-message options (e.g. uncompressed).
    pub async fn write_with(
        &mut self,
        request: impl Borrow<Req>,
        options: WriteOptions,
    ) -> Result<(), WriteError> {
        self.requests
            .write(&self.core, request.borrow(), options)
            .await
    }
    /// No more requests (half-close).
    pub async fn done_writing(&mut self) -> Result<(), WriteError> {
        self.requests.done_writing(&self.core)
    }
    /// The next response; `None` after the last one (the call succeeded) or after the error.
    pub async fn read(&mut self) -> Option<Result<Resp, RpcError>> {
        std::future::poll_fn(|cx| poll_next_response(&self.core, &mut self.ended, cx)).await
    }
}

impl<Req: Msg, Resp: Msg> Stream for StreamStreamCall<Req, Resp> {
    type Item = Result<Resp, RpcError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_next_response(&this.core, &mut this.ended, cx)
    }
}

impl<Resp> Drop for UnaryCall<Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}

impl<Resp> Drop for UnaryStreamCall<Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}

impl<Req, Resp> Drop for StreamUnaryCall<Req, Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}

impl<Req, Resp> Drop for StreamStreamCall<Req, Resp> {
    /// Dropping a call before it ended cancels it, so the server stops working on it.
    fn drop(&mut self) {
        if !self.core.is_done() {
            self.core.cancel();
        }
    }
}
