//! Calls that go through client interceptors: the chain runs in a task of the channel's
//! runtime (never under a connection's driver) and the Call object the application holds
//! reads what the outermost interceptor returned. Calls of a kind without interceptors never
//! come here.

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use anygrpc_core::{Code, Metadata, Status};
use futures_core::Stream;

use super::call::{CallCore, CallOptions, RpcError};
use super::channel::Channel;
use crate::codec::Codec;
use crate::conn::slot::DoneCallback;
use crate::interceptor::{
    AnyCodec, AnyMsg, ClientCallDetails, ClientInterceptor, Continuation, ErasedCodec,
    InterceptedKind, Interceptors, Observing, RequestMessages, ResponseSource, ResponseStream,
    StreamStreamClientInterceptor, StreamStreamKind, StreamUnaryClientInterceptor, StreamUnaryKind,
    Terminal, UnaryOutcome, UnaryStreamClientInterceptor, UnaryStreamKind,
    UnaryUnaryClientInterceptor, UnaryUnaryKind,
};
use crate::runtime::RuntimeRef;
use crate::wakers::WakerSet;

/// A channel's client interceptors, per call kind, in the order added.
#[derive(Clone, Default)]
pub(crate) struct ClientInterceptors {
    pub(crate) unary_unary: Interceptors<UnaryUnaryKind>,
    pub(crate) unary_stream: Interceptors<UnaryStreamKind>,
    pub(crate) stream_unary: Interceptors<StreamUnaryKind>,
    pub(crate) stream_stream: Interceptors<StreamStreamKind>,
}

impl fmt::Debug for ClientInterceptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInterceptors")
            .field("unary_unary", &self.unary_unary.len())
            .field("unary_stream", &self.unary_stream.len())
            .field("stream_unary", &self.stream_unary.len())
            .field("stream_stream", &self.stream_stream.len())
            .finish()
    }
}

/// `list` with `item` after its others.
pub(crate) fn append<T: ?Sized>(list: &Arc<[Arc<T>]>, item: Arc<T>) -> Arc<[Arc<T>]> {
    list.iter().cloned().chain([item]).collect()
}

impl ClientInterceptors {
    /// Adds a simple interceptor to every kind's chain.
    pub(crate) fn add_observing(&mut self, interceptor: Arc<dyn ClientInterceptor>) {
        let observing = Arc::new(Observing(interceptor));
        self.unary_unary = append(
            &self.unary_unary,
            observing.clone() as Arc<dyn UnaryUnaryClientInterceptor>,
        );
        self.unary_stream = append(
            &self.unary_stream,
            observing.clone() as Arc<dyn UnaryStreamClientInterceptor>,
        );
        self.stream_unary = append(
            &self.stream_unary,
            observing.clone() as Arc<dyn StreamUnaryClientInterceptor>,
        );
        self.stream_stream = append(
            &self.stream_stream,
            observing as Arc<dyn StreamStreamClientInterceptor>,
        );
    }
}

impl ClientCallDetails {
    /// The details of a call to `path` with `options`, as the first interceptor sees them.
    pub(crate) fn of(path: &str, options: CallOptions) -> Self {
        Self {
            method: path.to_string(),
            timeout: options.timeout,
            metadata: options.metadata,
            credentials: options.credentials,
            wait_for_ready: options.wait_for_ready,
            compression: options.compression,
            authority: options.authority,
        }
    }

    /// The options of the call the last interceptor's continuation starts.
    fn into_options(self) -> (String, CallOptions) {
        let options = CallOptions {
            timeout: self.timeout,
            metadata: self.metadata,
            wait_for_ready: self.wait_for_ready,
            compression: self.compression,
            authority: self.authority,
            credentials: self.credentials,
        };
        (self.method, options)
    }
}

/// A call started by a continuation, cancelled if what waits for it goes away first.
struct Started(CallCore);

impl Drop for Started {
    fn drop(&mut self) {
        if !self.0.is_done() {
            self.0.cancel();
        }
    }
}

/// The response messages of a call started by a continuation, in their wire form.
struct DirectResponses {
    call: Started,
    ended: bool,
    /// The method's response type and codec.
    responses: Arc<dyn ErasedCodec>,
}

impl ResponseSource for DirectResponses {
    fn poll_initial_metadata(&mut self, cx: &mut Context<'_>) -> Poll<Metadata> {
        self.call.0.poll_initial_metadata(cx)
    }
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<AnyMsg, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let core = &self.call.0;
        match std::task::ready!(core.poll_message(cx)) {
            Some(message) => match message.into_payload(core.max_recv) {
                Ok(bytes) => {
                    Poll::Ready(Some(Ok(AnyMsg::from_wire(bytes, self.responses.clone()))))
                }
                Err(status) => {
                    core.fail_on_read(status.clone());
                    self.ended = true;
                    Poll::Ready(Some(Err(status)))
                }
            },
            None => {
                self.ended = true;
                Poll::Ready(None)
            }
        }
    }
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        self.call
            .0
            .poll_outcome(cx)
            .map(|outcome| (outcome.status, outcome.trailers))
    }
    fn is_done(&self) -> bool {
        self.call.0.is_done()
    }
    fn cancel(&mut self) {
        self.call.0.cancel();
    }
    fn on_done(&mut self, callback: Box<dyn FnOnce() + Send>) {
        self.call.0.slot.on_done(callback);
    }
}

/// The outcome of a call started by a continuation whose response is one message.
async fn unary_outcome(call: Started, responses: Arc<dyn ErasedCodec>) -> UnaryOutcome {
    let core = &call.0;
    let outcome = poll_fn(|cx| core.poll_outcome(cx)).await;
    let initial_metadata = core.slot.lock().headers.clone().unwrap_or_default();
    let result = if outcome.status.code() == Code::Ok {
        let message = core.slot.lock().inbox.pop_front();
        match message {
            Some(message) => message
                .into_payload(core.max_recv)
                .map(|bytes| AnyMsg::from_wire(bytes, responses)),
            None => Err(crate::conn::slot::no_response()),
        }
    } else {
        Err(outcome.status)
    };
    UnaryOutcome {
        initial_metadata,
        result,
        trailing_metadata: outcome.trailers,
    }
}

/// The codec of the calls a continuation starts for a method whose responses are `Resp`
/// with `codec`.
fn any_codec<Resp: Send + Sync + 'static, C: Codec<Resp>>(codec: C) -> AnyCodec {
    AnyCodec {
        responses: crate::interceptor::Erased::<Resp, C>::shared(codec),
    }
}

/// Where a unary call's chain ends: the call on the channel.
pub(crate) fn unary_unary_terminal<Resp: Send + Sync + 'static, C: Codec<Resp>>(
    channel: &Channel,
    codec: C,
) -> Terminal<UnaryUnaryKind> {
    let (channel, codec) = (channel.clone(), any_codec::<Resp, C>(codec));
    Arc::new(move |details: ClientCallDetails, request: AnyMsg| {
        let (path, options) = details.into_options();
        let path = std::borrow::Cow::Owned(path);
        let core = channel.start_call(&path, options, Some((&codec, &request)), true, true);
        Box::pin(unary_outcome(Started(core), codec.responses.clone()))
    })
}

/// Where a server-streaming call's chain ends.
pub(crate) fn unary_stream_terminal<Resp: Send + Sync + 'static, C: Codec<Resp>>(
    channel: &Channel,
    codec: C,
) -> Terminal<UnaryStreamKind> {
    let (channel, codec) = (channel.clone(), any_codec::<Resp, C>(codec));
    Arc::new(move |details: ClientCallDetails, request: AnyMsg| {
        let (path, options) = details.into_options();
        let path = std::borrow::Cow::Owned(path);
        let core = channel.start_call(&path, options, Some((&codec, &request)), true, false);
        let responses = ResponseStream::from_source(DirectResponses {
            call: Started(core),
            ended: false,
            responses: codec.responses.clone(),
        });
        Box::pin(std::future::ready(responses))
    })
}

/// Where a client-streaming call's chain ends.
pub(crate) fn stream_unary_terminal<Resp: Send + Sync + 'static, C: Codec<Resp>>(
    channel: &Channel,
    codec: C,
) -> Terminal<StreamUnaryKind> {
    let (channel, codec) = (channel.clone(), any_codec::<Resp, C>(codec));
    Arc::new(
        move |details: ClientCallDetails, requests: RequestMessages| {
            let (path, options) = details.into_options();
            let path = std::borrow::Cow::Owned(path);
            let core = channel.start_call::<AnyMsg, AnyCodec>(&path, options, None, false, true);
            super::kinds::feed(&core, codec.clone(), requests);
            Box::pin(unary_outcome(Started(core), codec.responses.clone()))
        },
    )
}

/// Where a bidi call's chain ends.
pub(crate) fn stream_stream_terminal<Resp: Send + Sync + 'static, C: Codec<Resp>>(
    channel: &Channel,
    codec: C,
) -> Terminal<StreamStreamKind> {
    let (channel, codec) = (channel.clone(), any_codec::<Resp, C>(codec));
    Arc::new(
        move |details: ClientCallDetails, requests: RequestMessages| {
            let (path, options) = details.into_options();
            let path = std::borrow::Cow::Owned(path);
            let core = channel.start_call::<AnyMsg, AnyCodec>(&path, options, None, false, false);
            super::kinds::feed(&core, codec.clone(), requests);
            let responses = ResponseStream::from_source(DirectResponses {
                call: Started(core),
                ended: false,
                responses: codec.responses.clone(),
            });
            Box::pin(std::future::ready(responses))
        },
    )
}

/// What the outermost interceptor returned, as the Call object reads it.
pub(crate) trait Returned: Send + 'static {
    fn poll_initial_metadata(&mut self, cx: &mut Context<'_>) -> Poll<Metadata>;
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)>;
    fn is_done(&self) -> bool;
    fn cancel(&mut self);
    fn on_done(&mut self, callback: DoneCallback);
}

/// A unary-response call's outcome, its response taken out once.
#[derive(Debug)]
pub(crate) struct UnaryDone {
    initial_metadata: Metadata,
    status: Status,
    trailing_metadata: Metadata,
    response: Option<AnyMsg>,
}

impl From<UnaryOutcome> for UnaryDone {
    fn from(outcome: UnaryOutcome) -> Self {
        let (status, response) = match outcome.result {
            Ok(response) => (Status::ok(), Some(response)),
            Err(status) => (status, None),
        };
        Self {
            initial_metadata: outcome.initial_metadata,
            status,
            trailing_metadata: outcome.trailing_metadata,
            response,
        }
    }
}

impl Returned for UnaryDone {
    fn poll_initial_metadata(&mut self, _: &mut Context<'_>) -> Poll<Metadata> {
        Poll::Ready(self.initial_metadata.clone())
    }
    fn poll_end(&mut self, _: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        Poll::Ready((self.status.clone(), self.trailing_metadata.clone()))
    }
    fn is_done(&self) -> bool {
        true
    }
    fn cancel(&mut self) {}
    fn on_done(&mut self, callback: DoneCallback) {
        crate::user_code::observe(callback);
    }
}

impl Returned for ResponseStream {
    fn poll_initial_metadata(&mut self, cx: &mut Context<'_>) -> Poll<Metadata> {
        ResponseStream::poll_initial_metadata(self, cx)
    }
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        ResponseStream::poll_end(self, cx)
    }
    fn is_done(&self) -> bool {
        ResponseStream::is_done(self)
    }
    fn cancel(&mut self) {
        ResponseStream::cancel(self);
    }
    fn on_done(&mut self, callback: DoneCallback) {
        ResponseStream::on_done(self, callback);
    }
}

/// What a kind's chain returns, in the form its Call object reads.
pub(crate) trait IntoReturned<R> {
    fn into_returned(self) -> R;
}
impl IntoReturned<UnaryDone> for UnaryOutcome {
    fn into_returned(self) -> UnaryDone {
        self.into()
    }
}
impl IntoReturned<ResponseStream> for ResponseStream {
    fn into_returned(self) -> ResponseStream {
        self
    }
}

struct Shared<R> {
    /// What the chain returned, once it did.
    returned: Option<R>,
    /// The application cancelled the call while the chain ran.
    cancelled: bool,
    /// The Call object's tasks, waiting for the chain.
    waiting: WakerSet,
    /// The chain's task, told of a cancel.
    chain: Option<Waker>,
    /// Done callbacks added before the chain returned.
    callbacks: Vec<DoneCallback>,
}

/// The Call object's side of an intercepted call.
pub(crate) struct Intercepted<R> {
    shared: Arc<Mutex<Shared<R>>>,
    runtime: RuntimeRef,
    deadline: Option<Instant>,
}

impl<R> fmt::Debug for Intercepted<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercepted")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<R: Returned> Intercepted<R> {
    /// Runs the chain of `interceptors` ending in `terminal` for a call with `details` and
    /// `request`, in a task of the channel's runtime.
    pub(crate) fn start<K: InterceptedKind>(
        channel: &Channel,
        interceptors: Interceptors<K>,
        terminal: Terminal<K>,
        details: ClientCallDetails,
        request: K::Request,
    ) -> Self
    where
        K::Response: IntoReturned<R>,
    {
        let runtime = channel.runtime();
        let deadline = details
            .timeout
            .and_then(|timeout| runtime.now().checked_add(timeout));
        let shared = Arc::new(Mutex::new(Shared {
            returned: None,
            cancelled: false,
            waiting: WakerSet::default(),
            chain: None,
            callbacks: Vec::new(),
        }));
        let call = Self {
            shared: shared.clone(),
            runtime: runtime.clone(),
            deadline,
        };
        let mut sleep = deadline.map(|d| runtime.sleep_until(d));
        let mut chain =
            Some(Continuation::<K>::chain(interceptors, terminal).call(details, request));
        let task = async move {
            let returned = poll_fn(|cx| {
                if lock(&shared).cancelled {
                    return Poll::Ready(K::failed(Status::cancelled("cancelled by the client")));
                }
                if let Some(sleep) = sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(K::failed(Status::deadline_exceeded(
                            "deadline exceeded",
                        )));
                    }
                }
                let polled = chain.as_mut().map(|chain| chain.as_mut().poll(cx));
                match polled {
                    Some(Poll::Ready(returned)) => Poll::Ready(returned),
                    _ => {
                        let mut shared = lock(&shared);
                        if shared.cancelled {
                            return Poll::Ready(K::failed(Status::cancelled(
                                "cancelled by the client",
                            )));
                        }
                        shared.chain = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            })
            .await;
            // A chain cut short by a cancel or the deadline goes (and with it the calls it
            // started, cancelled) before the Call object hears the end.
            drop(chain);
            let mut returned: R = returned.into_returned();
            let (callbacks, waiting) = {
                let mut shared = lock(&shared);
                (std::mem::take(&mut shared.callbacks), shared.waiting.take())
            };
            for callback in callbacks {
                returned.on_done(callback);
            }
            lock(&shared).returned = Some(returned);
            let mut waiting = waiting;
            waiting.wake_all();
        };
        runtime.spawn(Box::pin(task));
        call
    }
}

impl<R: Returned> Intercepted<R> {
    /// A call that ended before its chain could run (its request did not encode), with
    /// `returned`.
    pub(crate) fn ended(channel: &Channel, returned: impl IntoReturned<R>) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                returned: Some(returned.into_returned()),
                cancelled: false,
                waiting: WakerSet::default(),
                chain: None,
                callbacks: Vec::new(),
            })),
            runtime: channel.runtime(),
            deadline: None,
        }
    }
}

fn lock<R>(shared: &Mutex<Shared<R>>) -> MutexGuard<'_, Shared<R>> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl<R: Returned> Intercepted<R> {
    /// Polls `f` on what the chain returned, once it did.
    pub(crate) fn poll_returned<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut R, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut shared = lock(&self.shared);
        match shared.returned.as_mut() {
            Some(returned) => f(returned, cx),
            None => {
                shared.waiting.register(cx.waker());
                Poll::Pending
            }
        }
    }

    pub(crate) fn poll_initial_metadata(&self, cx: &mut Context<'_>) -> Poll<Metadata> {
        self.poll_returned(cx, |r, cx| r.poll_initial_metadata(cx))
    }

    pub(crate) fn poll_end(&self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        self.poll_returned(cx, |r, cx| r.poll_end(cx))
    }

    /// The error for a call that ended with `status` and `trailers`.
    pub(crate) fn error(&self, status: Status, trailers: Metadata) -> RpcError {
        let mut cx = Context::from_waker(Waker::noop());
        let initial = match self.poll_initial_metadata(&mut cx) {
            Poll::Ready(initial) => initial,
            Poll::Pending => Metadata::new(),
        };
        RpcError::new(status, initial, trailers)
    }

    /// Cancels the call; `false` if it had already ended.
    pub(crate) fn cancel(&self) -> bool {
        let mut shared = lock(&self.shared);
        let cancelled = shared.cancelled;
        match shared.returned.as_mut() {
            Some(returned) if returned.is_done() => false,
            Some(returned) => {
                returned.cancel();
                true
            }
            None if cancelled => false,
            None => {
                shared.cancelled = true;
                if let Some(chain) = shared.chain.take() {
                    drop(shared);
                    chain.wake();
                }
                true
            }
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        lock(&self.shared)
            .returned
            .as_ref()
            .is_some_and(Returned::is_done)
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if !self.is_done() {
            return false;
        }
        matches!(self.poll_end(&mut cx), Poll::Ready((status, _)) if status.code() == Code::Cancelled)
    }

    pub(crate) fn time_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(self.runtime.now()))
    }

    pub(crate) fn on_done(&self, callback: DoneCallback) {
        let mut shared = lock(&self.shared);
        match shared.returned.as_mut() {
            Some(returned) => {
                returned.on_done(callback);
            }
            None => shared.callbacks.push(callback),
        }
    }
}

impl Intercepted<UnaryDone> {
    /// The typed response or the error, once the chain returned.
    pub(crate) fn poll_response<Resp: 'static>(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Resp, RpcError>> {
        let polled = self.poll_returned(cx, |done, _| {
            Poll::Ready(match done.response.take() {
                Some(response) => response.into_typed::<Resp>().map_err(|status| {
                    done.status = status.clone();
                    (status, Metadata::new())
                }),
                None if done.status.code() == Code::Ok => Err((
                    crate::conn::slot::no_response(),
                    done.trailing_metadata.clone(),
                )),
                None => Err((done.status.clone(), done.trailing_metadata.clone())),
            })
        });
        polled.map(|result| result.map_err(|(status, trailers)| self.error(status, trailers)))
    }
}

impl Intercepted<ResponseStream> {
    /// The next typed response; after the last, the end's error if it failed.
    pub(crate) fn poll_next<Resp: 'static>(
        &self,
        ended: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Resp, RpcError>>> {
        if *ended {
            return Poll::Ready(None);
        }
        let polled = self.poll_returned(cx, |stream, cx| match stream.poll_message(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(message))) => Poll::Ready(match message.into_typed::<Resp>() {
                Ok(response) => Some(Ok(response)),
                Err(status) => {
                    stream.cancel();
                    Some(Err((status, Metadata::new())))
                }
            }),
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                stream.poll_end(cx).map(|(status, trailers)| {
                    (status.code() != Code::Ok).then_some(Err((status, trailers)))
                })
            }
        });
        polled.map(|next| {
            if !matches!(next, Some(Ok(_))) {
                *ended = true;
            }
            next.map(|item| item.map_err(|(status, trailers)| self.error(status, trailers)))
        })
    }
}

/// The requests a streaming-request Call object writes, as its interceptors' first one reads
/// them: a queue of one message, so a write completes once the chain took the one before.
pub(crate) struct RequestQueue {
    sender: Option<futures_channel::mpsc::Sender<AnyMsg>>,
}

impl fmt::Debug for RequestQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestQueue")
            .field("open", &self.sender.is_some())
            .finish()
    }
}

impl RequestQueue {
    /// A queue and the requests it yields.
    pub(crate) fn new() -> (Self, RequestMessages) {
        let (sender, receiver) = futures_channel::mpsc::channel(0);
        (
            Self {
                sender: Some(sender),
            },
            RequestMessages::new(receiver),
        )
    }

    /// Queues `message`; `false` once nothing reads the requests any more (the call ended).
    pub(crate) async fn push(&mut self, message: AnyMsg) -> bool {
        let Some(sender) = self.sender.as_mut() else {
            return false;
        };
        if poll_fn(|cx| sender.poll_ready(cx)).await.is_err() {
            return false;
        }
        sender.start_send(message).is_ok()
    }

    /// No more requests.
    pub(crate) fn close(&mut self) {
        self.sender = None;
    }
}

/// Requests from the application's stream, as interceptors read them.
pub(crate) fn request_stream<Req: Send + Sync + 'static, C: Codec<Req>>(
    requests: impl Stream<Item = Req> + Send + 'static,
    codec: C,
) -> RequestMessages {
    let mut requests = Box::pin(requests);
    RequestMessages::new(futures_util::stream::poll_fn(move |cx| {
        requests
            .as_mut()
            .poll_next(cx)
            .map(|next| next.map(|request| AnyMsg::with_codec(request, codec.clone())))
    }))
}
