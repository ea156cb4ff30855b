//! The simple interceptor: one that edits a call's details and observes its responses and
//! end, for every call kind, written once. It runs over the four wrapping traits.

use std::sync::Arc;

use anygrpc_core::{Metadata, Status};

use super::{
    AnyMsg, ClientCallDetails, RequestMessages, ResponseStream, StreamStreamClientInterceptor,
    StreamStreamContinuation, StreamUnaryClientInterceptor, StreamUnaryContinuation, UnaryOutcome,
    UnaryStreamClientInterceptor, UnaryStreamContinuation, UnaryUnaryClientInterceptor,
    UnaryUnaryContinuation,
};
use crate::runtime::BoxFuture;

/// An interceptor for every call kind at once, for the common case of editing a call's
/// details (metadata, timeout) and observing its responses and end, with no `async` and no
/// continuation: [`ChannelBuilder::interceptor`](crate::ChannelBuilder::interceptor) runs it
/// over the four wrapping traits (`UnaryUnaryClientInterceptor` and the rest), which can do
/// everything this one can and more.
///
/// ```
/// use anygrpc::{ClientCallDetails, ClientInterceptor, Status};
///
/// /// Tags every call with the tenant it is made for.
/// struct Tenant(&'static str);
///
/// impl ClientInterceptor for Tenant {
///     fn intercept(&self, details: &mut ClientCallDetails) -> Result<(), Status> {
///         details
///             .metadata
///             .insert("x-tenant", self.0)
///             .map_err(|e| Status::internal(e.to_string()))?;
///         Ok(())
///     }
/// }
/// ```
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Before the call starts: read or change `details`; an `Err` ends the call at once with
    /// that status (nothing is sent).
    fn intercept(&self, details: &mut ClientCallDetails) -> Result<(), Status>;

    /// Each response message, in its wire form (decompressed), before it is decoded.
    fn on_response(&self, details: &ClientCallDetails, message: &[u8]) {
        let _ = (details, message);
    }

    /// When the call ended, with its final status and trailing metadata.
    fn on_complete(&self, details: &ClientCallDetails, status: &Status, trailers: &Metadata) {
        let _ = (details, status, trailers);
    }
}

/// A [`ClientInterceptor`] as the four wrapping interceptors.
pub(crate) struct Observing(pub(crate) Arc<dyn ClientInterceptor>);

impl Observing {
    /// Runs `intercept`; on a refusal, `on_complete` hears it.
    fn before(&self, details: &mut ClientCallDetails) -> Result<(), Status> {
        self.0.intercept(details).inspect_err(|status| {
            self.0.on_complete(details, status, &Metadata::new());
        })
    }

    fn after_unary(&self, details: &ClientCallDetails, outcome: &UnaryOutcome) {
        if let Ok(Ok(bytes)) = outcome.result.as_ref().map(AnyMsg::to_bytes) {
            self.0.on_response(details, &bytes);
        }
        self.0
            .on_complete(details, &outcome.status(), &outcome.trailing_metadata);
    }

    fn around_stream(&self, details: ClientCallDetails, stream: ResponseStream) -> ResponseStream {
        let (observer, seen) = (self.0.clone(), details.clone());
        let ender = self.0.clone();
        stream
            .map_messages(move |message| {
                if let Ok(bytes) = message.to_bytes() {
                    observer.on_response(&seen, &bytes);
                }
                Ok(message)
            })
            .map_end(move |status, trailers| {
                ender.on_complete(&details, &status, &trailers);
                (status, trailers)
            })
    }
}

impl UnaryUnaryClientInterceptor for Observing {
    fn intercept_unary_unary(
        &self,
        next: UnaryUnaryContinuation,
        mut details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, UnaryOutcome> {
        Box::pin(async move {
            if let Err(status) = self.before(&mut details) {
                return UnaryOutcome::error(status);
            }
            let outcome = next.call(details.clone(), request).await;
            self.after_unary(&details, &outcome);
            outcome
        })
    }
}

impl StreamUnaryClientInterceptor for Observing {
    fn intercept_stream_unary(
        &self,
        next: StreamUnaryContinuation,
        mut details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, UnaryOutcome> {
        Box::pin(async move {
            if let Err(status) = self.before(&mut details) {
                return UnaryOutcome::error(status);
            }
            let outcome = next.call(details.clone(), requests).await;
            self.after_unary(&details, &outcome);
            outcome
        })
    }
}

impl UnaryStreamClientInterceptor for Observing {
    fn intercept_unary_stream(
        &self,
        next: UnaryStreamContinuation,
        mut details: ClientCallDetails,
        request: AnyMsg,
    ) -> BoxFuture<'_, ResponseStream> {
        Box::pin(async move {
            if let Err(status) = self.before(&mut details) {
                return ResponseStream::failed(status);
            }
            let stream = next.call(details.clone(), request).await;
            self.around_stream(details, stream)
        })
    }
}

impl StreamStreamClientInterceptor for Observing {
    fn intercept_stream_stream(
        &self,
        next: StreamStreamContinuation,
        mut details: ClientCallDetails,
        requests: RequestMessages,
    ) -> BoxFuture<'_, ResponseStream> {
        Box::pin(async move {
            if let Err(status) = self.before(&mut details) {
                return ResponseStream::failed(status);
            }
            let stream = next.call(details.clone(), requests).await;
            self.around_stream(details, stream)
        })
    }
}
