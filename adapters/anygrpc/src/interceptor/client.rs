//! Client interceptors: async code that wraps the calls of a channel, one trait per call
//! kind (after grpc.aio's `UnaryUnaryClientInterceptor` and the rest).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anygrpc_core::{Compression, Metadata, Status};
use futures_core::Stream;

use super::{AnyMsg, CallCredentials, ResponseStream};
use crate::runtime::BoxFuture;

/// What a client call is about to be, as interceptors see and may change it before they run
/// the continuation.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientCallDetails {
    /// `/package.Service/Method`.
    pub method: String,
    /// The call's timeout (from its options or its method's service config).
    pub timeout: Option<Duration>,
    /// The request metadata.
    pub metadata: Metadata,
    /// The call's credentials: its own, else the channel's.
    pub credentials: Option<Arc<dyn CallCredentials>>,
    /// Whether the call waits for the channel to be ready (`None`: as its method's service
    /// config says, failing fast by default).
    pub wait_for_ready: Option<bool>,
    /// Compression of request messages (encoding and level).
    pub compression: Option<Compression>,
    /// The `:authority` of the call, when it overrides the channel's.
    pub authority: Option<String>,
}

impl fmt::Debug for ClientCallDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCallDetails")
            .field("method", &self.method)
            .field("timeout", &self.timeout)
            .field("metadata", &self.metadata)
            .field("credentials", &self.credentials.is_some())
            .field("wait_for_ready", &self.wait_for_ready)
            .field("compression", &self.compression)
            .field("authority", &self.authority)
            .finish()
    }
}

/// What a call with one response ended with, as interceptors see it and may replace it.
#[derive(Debug)]
pub struct UnaryOutcome {
    /// The server's initial metadata (empty when none arrived).
    pub initial_metadata: Metadata,
    /// The response, or the status the call failed with.
    pub result: Result<AnyMsg, Status>,
    /// The trailing metadata.
    pub trailing_metadata: Metadata,
}

impl UnaryOutcome {
    /// A successful outcome with `response` and no metadata (an interceptor's own answer,
    /// from a cache say).
    pub fn ok(response: AnyMsg) -> Self {
        Self {
            initial_metadata: Metadata::new(),
            result: Ok(response),
            trailing_metadata: Metadata::new(),
        }
    }

    /// A failed outcome with `status` and no metadata.
    pub fn error(status: Status) -> Self {
        Self {
            initial_metadata: Metadata::new(),
            result: Err(status),
            trailing_metadata: Metadata::new(),
        }
    }

    /// The status: OK, or the failure's.
    pub fn status(&self) -> Status {
        match &self.result {
            Ok(_) => Status::ok(),
            Err(status) => status.clone(),
        }
    }
}

/// The request messages of a client-streaming or bidi call, as its interceptors see them: a
/// `Stream` of [`AnyMsg`], which an interceptor may read, wrap or replace before giving it to
/// the continuation.
pub struct RequestMessages(Pin<Box<dyn Stream<Item = AnyMsg> + Send>>);

impl RequestMessages {
    /// Requests taken from `messages`.
    pub fn new(messages: impl Stream<Item = AnyMsg> + Send + 'static) -> Self {
        Self(Box::pin(messages))
    }

    /// These requests, each passed through `f` first.
    pub fn map(self, mut f: impl FnMut(AnyMsg) -> AnyMsg + Send + 'static) -> Self {
        let mut inner = self.0;
        Self::new(futures_util::stream::poll_fn(move |cx| {
            inner.as_mut().poll_next(cx).map(|next| next.map(&mut f))
        }))
    }
}

impl Stream for RequestMessages {
    type Item = AnyMsg;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AnyMsg>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for RequestMessages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestMessages(..)")
    }
}

/// One of the four call kinds, as client interceptors see it: what its interceptors take and
/// give. Sealed: the kinds are [`UnaryUnaryKind`], [`UnaryStreamKind`], [`StreamUnaryKind`] and
/// [`StreamStreamKind`].
pub trait InterceptedKind: sealed::Sealed + Sized + 'static {
    /// The kind's interceptor trait, as an object.
    type Interceptor: ?Sized + Send + Sync + 'static;
    /// The requests: one message, or a stream of them.
    type Request: Send + 'static;
    /// The response: an outcome, or a stream of messages and its end.
    type Response: Send + 'static;
    /// Runs `interceptor`.
    #[doc(hidden)]
    fn intercept(
        interceptor: &Self::Interceptor,
        next: Continuation<Self>,
        details: ClientCallDetails,
        request: Self::Request,
    ) -> BoxFuture<'_, Self::Response>;
    /// The response of a call that failed with `status` before it had one.
    #[doc(hidden)]
    fn failed(status: Status) -> Self::Response;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::UnaryUnaryKind {}
    impl Sealed for super::UnaryStreamKind {}
    impl Sealed for super::StreamUnaryKind {}
    impl Sealed for super::StreamStreamKind {}
}

/// The unary call kind.
#[derive(Debug)]
pub enum UnaryUnaryKind {}
/// The server-streaming call kind.
#[derive(Debug)]
pub enum UnaryStreamKind {}
/// The client-streaming call kind.
#[derive(Debug)]
pub enum StreamUnaryKind {}
/// The bidi-streaming call kind.
#[derive(Debug)]
pub enum StreamStreamKind {}

/// Wraps the unary calls of a channel (grpc.aio's `UnaryUnaryClientInterceptor`). It gets the
/// call's details and request and the continuation (the interceptors after it, then the
/// call itself). It may change the details or replace the request, await anything, run the
/// continuation zero or more times (a retry of its own, a cached answer), and read or
/// replace the outcome.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// use anygrpc::{
///     AnyMsg, BoxFuture, ClientCallDetails, Code, UnaryOutcome, UnaryUnaryClientInterceptor,
///     UnaryUnaryContinuation,
/// };
///
/// /// Tries a call once more when it failed UNAVAILABLE, and counts the calls.
/// #[derive(Default)]
/// struct OnceMore(AtomicUsize);
///
/// impl UnaryUnaryClientInterceptor for OnceMore {
///     fn intercept_unary_unary(
///         &self,
///         next: UnaryUnaryContinuation,
///         mut details: ClientCallDetails,
///         request: AnyMsg,
///     ) -> BoxFuture<'_, UnaryOutcome> {
///         Box::pin(async move {
///             self.0.fetch_add(1, Ordering::Relaxed);
///             details.metadata.insert("x-client", "docs").expect("valid metadata");
///             // A clone shares the request's wire form: no need to know its type.
///             let again = request.clone();
///             let outcome = next.call(details.clone(), request).await;
///             match &outcome.result {
///                 Err(status) if status.code() == Code::Unavailable => next.call(details, again).await,
///                 _ => outcome,
///             }
///         })
///     }
/// }
/// ```
pub trait UnaryUnaryClientInterceptor: Send + Sync + 'static {
    /// Intercepts one unary call.
    fn intercept_unary_unary(
        &self,
        next: UnaryUnaryContinuation,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome>;
}

/// Wraps the server-streaming calls of a channel (grpc.aio's `UnaryStreamClientInterceptor`):
/// as [`UnaryUnaryClientInterceptor`], with a [`ResponseStream`] to pass on, wrap
/// ([`map_messages`](ResponseStream::map_messages), [`map_end`](ResponseStream::map_end)) or
/// replace ([`ResponseStream::from_parts`]).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// use anygrpc::{
///     AnyMsg, BoxFuture, ClientCallDetails, ResponseStream, UnaryStreamClientInterceptor,
///     UnaryStreamContinuation,
/// };
///
/// /// Counts the messages of every server stream, and logs each stream's end.
/// #[derive(Default)]
/// struct CountMessages(Arc<AtomicUsize>);
///
/// impl UnaryStreamClientInterceptor for CountMessages {
///     fn intercept_unary_stream(
///         &self,
///         next: UnaryStreamContinuation,
///         details: ClientCallDetails,
///         request: AnyMsg,
///     ) -> BoxFuture<'_, ResponseStream> {
///         let count = self.0.clone();
///         let method = details.method.clone();
///         Box::pin(async move {
///             next.call(details, request)
///                 .await
///                 .map_messages(move |message| {
///                     count.fetch_add(1, Ordering::Relaxed);
///                     Ok(message)
///                 })
///                 .map_end(move |status, trailers| {
///                     println!("{method} ended {}", status.code().as_str());
///                     (status, trailers)
///                 })
///         })
///     }
/// }
/// ```
pub trait UnaryStreamClientInterceptor: Send + Sync + 'static {
    /// Intercepts one server-streaming call.
    fn intercept_unary_stream(
        &self,
        next: UnaryStreamContinuation,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, ResponseStream>;
}

/// Wraps the client-streaming calls of a channel (grpc.aio's `StreamUnaryClientInterceptor`):
/// the requests come as [`RequestMessages`], to pass on, wrap or replace.
///
/// ```
/// use anygrpc::{
///     AnyMsg, BoxFuture, ClientCallDetails, RequestMessages, StreamUnaryClientInterceptor,
///     StreamUnaryContinuation, UnaryOutcome,
/// };
///
/// /// Trims every `String` request of a client stream before it is sent.
/// struct Trim;
///
/// impl StreamUnaryClientInterceptor for Trim {
///     fn intercept_stream_unary(
///         &self,
///         next: StreamUnaryContinuation,
///         details: ClientCallDetails,
///         requests: RequestMessages,
///     ) -> BoxFuture<'_, UnaryOutcome> {
///         let trimmed = requests.map(|message| match message.downcast::<String>() {
///             Ok(text) => AnyMsg::new(text.trim().to_string()),
///             Err(other) => other,
///         });
///         next.call(details, trimmed)
///     }
/// }
/// ```
pub trait StreamUnaryClientInterceptor: Send + Sync + 'static {
    /// Intercepts one client-streaming call.
    fn intercept_stream_unary(
        &self,
        next: StreamUnaryContinuation,
        details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, UnaryOutcome>;
}

/// Wraps the bidi-streaming calls of a channel (grpc.aio's `StreamStreamClientInterceptor`).
///
/// ```
/// use anygrpc::{
///     AnyMsg, BoxFuture, ClientCallDetails, Metadata, RequestMessages, ResponseStream, Status,
///     StreamStreamClientInterceptor, StreamStreamContinuation,
/// };
///
/// /// Answers chats while the service is in maintenance, without calling it.
/// struct Maintenance(bool);
///
/// impl StreamStreamClientInterceptor for Maintenance {
///     fn intercept_stream_stream(
///         &self,
///         next: StreamStreamContinuation,
///         details: ClientCallDetails,
///         requests: RequestMessages,
///     ) -> BoxFuture<'_, ResponseStream> {
///         if !self.0 {
///             return next.call(details, requests);
///         }
///         Box::pin(std::future::ready(ResponseStream::from_parts(
///             Metadata::new(),
///             [AnyMsg::new(String::from("back soon"))],
///             Status::unavailable("in maintenance"),
///             Metadata::new(),
///         )))
///     }
/// }
/// ```
pub trait StreamStreamClientInterceptor: Send + Sync + 'static {
    /// Intercepts one bidi call.
    fn intercept_stream_stream(
        &self,
        next: StreamStreamContinuation,
        details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, ResponseStream>;
}

impl InterceptedKind for UnaryUnaryKind {
    type Interceptor = dyn UnaryUnaryClientInterceptor;
    type Request = AnyMsg;
    type Response = UnaryOutcome;
    fn intercept(
        interceptor: &Self::Interceptor,
        next: Continuation<Self>,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome> {
        interceptor.intercept_unary_unary(next, details, request)
    }
    fn failed(status: Status) -> UnaryOutcome {
        UnaryOutcome::error(status)
    }
}

impl InterceptedKind for UnaryStreamKind {
    type Interceptor = dyn UnaryStreamClientInterceptor;
    type Request = AnyMsg;
    type Response = ResponseStream;
    fn intercept(
        interceptor: &Self::Interceptor,
        next: Continuation<Self>,
        details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, ResponseStream> {
        interceptor.intercept_unary_stream(next, details, request)
    }
    fn failed(status: Status) -> ResponseStream {
        ResponseStream::failed(status)
    }
}

impl InterceptedKind for StreamUnaryKind {
    type Interceptor = dyn StreamUnaryClientInterceptor;
    type Request = RequestMessages;
    type Response = UnaryOutcome;
    fn intercept(
        interceptor: &Self::Interceptor,
        next: Continuation<Self>,
        details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, UnaryOutcome> {
        interceptor.intercept_stream_unary(next, details, requests)
    }
    fn failed(status: Status) -> UnaryOutcome {
        UnaryOutcome::error(status)
    }
}

impl InterceptedKind for StreamStreamKind {
    type Interceptor = dyn StreamStreamClientInterceptor;
    type Request = RequestMessages;
    type Response = ResponseStream;
    fn intercept(
        interceptor: &Self::Interceptor,
        next: Continuation<Self>,
        details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, ResponseStream> {
        interceptor.intercept_stream_stream(next, details, requests)
    }
    fn failed(status: Status) -> ResponseStream {
        ResponseStream::failed(status)
    }
}

/// Starts the real call once the last interceptor ran the continuation.
pub(crate) type Terminal<K> = Arc<
    dyn Fn(
            ClientCallDetails,
            <K as InterceptedKind>::Request,
        ) -> BoxFuture<'static, <K as InterceptedKind>::Response>
        + Send
        + Sync,
>;

/// The interceptors of one call kind, in the order they were added.
pub(crate) type Interceptors<K> = Arc<[Arc<<K as InterceptedKind>::Interceptor>]>;

/// The rest of a call's interceptor chain: the interceptors after the one running, then the
/// call itself. It may be run any number of times ([`call`](Self::call)); each run is a new
/// call on the channel.
pub struct Continuation<K: InterceptedKind> {
    chain: Interceptors<K>,
    index: usize,
    terminal: Terminal<K>,
}

/// The continuation of a unary call.
pub type UnaryUnaryContinuation = Continuation<UnaryUnaryKind>;
/// The continuation of a server-streaming call.
pub type UnaryStreamContinuation = Continuation<UnaryStreamKind>;
/// The continuation of a client-streaming call.
pub type StreamUnaryContinuation = Continuation<StreamUnaryKind>;
/// The continuation of a bidi call.
pub type StreamStreamContinuation = Continuation<StreamStreamKind>;

impl<K: InterceptedKind> Clone for Continuation<K> {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            index: self.index,
            terminal: self.terminal.clone(),
        }
    }
}

impl<K: InterceptedKind> fmt::Debug for Continuation<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Continuation")
            .field("interceptors_left", &(self.chain.len() - self.index))
            .finish()
    }
}

impl<K: InterceptedKind> Continuation<K> {
    /// The whole chain of `interceptors`, ending with `terminal`.
    pub(crate) fn chain(chain: Interceptors<K>, terminal: Terminal<K>) -> Self {
        Self {
            chain,
            index: 0,
            terminal,
        }
    }

    /// Runs the rest of the chain with `details` and `request`: the next interceptor, or the
    /// call itself after the last.
    pub fn call(
        &self,
        details: ClientCallDetails,
        request: K::Request,
    ) -> BoxFuture<'static, K::Response> {
        let Some(interceptor) = self.chain.get(self.index).cloned() else {
            return (self.terminal)(details, request);
        };
        let next = Self {
            chain: self.chain.clone(),
            index: self.index + 1,
            terminal: self.terminal.clone(),
        };
        Box::pin(async move {
            // A panic fails only this call, INTERNAL as for a panicking credentials provider.
            crate::user_code::guarded_future(
                || K::intercept(&interceptor, next, details, request),
                || K::failed(Status::internal("a client interceptor panicked")),
            )
            .await
        })
    }
}
