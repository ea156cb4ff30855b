//! The responses of a streaming-response call as its client interceptors see them.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll};

use anygrpc_core::{Metadata, Status};

use super::AnyMsg;

/// Where a [`ResponseStream`]'s parts come from: a real call, a wrapper, or fixed parts.
pub(crate) trait ResponseSource: Send + 'static {
    /// The server's initial metadata (empty once the call ended without any).
    fn poll_initial_metadata(&mut self, cx: &mut Context<'_>) -> Poll<Metadata>;
    /// The next message; `None` once no more will come. An `Err` ends the call with that
    /// status (a message that does not decode, a wrapper's refusal).
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<AnyMsg, Status>>>;
    /// The status and trailing metadata, once the call ended.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)>;
    /// `true` once the call ended.
    fn is_done(&self) -> bool;
    /// Ends the call with CANCELLED, if it is still running.
    fn cancel(&mut self);
    /// Runs `callback` when the call ends (at once if it did).
    fn on_done(&mut self, callback: Box<dyn FnOnce() + Send>);
}

/// The responses of a server-streaming or bidi call: its initial metadata, its messages and
/// its end (status and trailing metadata). An interceptor gets one from its continuation and
/// returns it, wraps it ([`map_messages`](Self::map_messages), [`map_end`](Self::map_end)),
/// or returns one of its own ([`from_parts`](Self::from_parts)); the Call object the
/// application holds reads what the outermost interceptor returned.
pub struct ResponseStream {
    source: Box<dyn ResponseSource>,
}

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("done", &self.source.is_done())
            .finish()
    }
}

impl ResponseStream {
    pub(crate) fn from_source(source: impl ResponseSource) -> Self {
        Self {
            source: Box::new(source),
        }
    }

    /// A stream an interceptor answers with itself: `messages`, then `status` with
    /// `trailing_metadata`.
    pub fn from_parts(
        initial_metadata: Metadata,
        messages: impl IntoIterator<Item = AnyMsg>,
        status: Status,
        trailing_metadata: Metadata,
    ) -> Self {
        Self::from_source(Fixed {
            initial_metadata,
            messages: messages.into_iter().collect(),
            end: (status, trailing_metadata),
        })
    }

    /// A stream that failed with `status` before any response.
    pub(crate) fn failed(status: Status) -> Self {
        Self::from_parts(Metadata::new(), [], status, Metadata::new())
    }

    /// The server's initial metadata (empty for a call that ended without any).
    pub async fn initial_metadata(&mut self) -> Metadata {
        poll_fn(|cx| self.source.poll_initial_metadata(cx)).await
    }

    /// The next response message; `None` after the last one or after a failure (see
    /// [`end`](Self::end)).
    pub async fn message(&mut self) -> Option<Result<AnyMsg, Status>> {
        poll_fn(|cx| self.source.poll_message(cx)).await
    }

    /// The status and trailing metadata, once the call ended.
    pub async fn end(&mut self) -> (Status, Metadata) {
        poll_fn(|cx| self.source.poll_end(cx)).await
    }

    /// Cancels the call.
    pub fn cancel(&mut self) {
        self.source.cancel();
    }

    /// This stream with each message passed through `f`: an `Err` ends the call with that
    /// status (the call underneath is cancelled).
    pub fn map_messages(
        self,
        f: impl FnMut(AnyMsg) -> Result<AnyMsg, Status> + Send + 'static,
    ) -> Self {
        Self::from_source(Mapped {
            inner: self.source,
            map: Box::new(f),
            failed: None,
        })
    }

    /// This stream with its end passed through `f`, which may read or replace the status and
    /// trailing metadata.
    pub fn map_end(
        self,
        f: impl FnOnce(Status, Metadata) -> (Status, Metadata) + Send + 'static,
    ) -> Self {
        Self::from_source(EndMapped {
            inner: self.source,
            map: Some(Box::new(f)),
            end: None,
        })
    }

    pub(crate) fn poll_initial_metadata(&mut self, cx: &mut Context<'_>) -> Poll<Metadata> {
        self.source.poll_initial_metadata(cx)
    }
    pub(crate) fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<AnyMsg, Status>>> {
        self.source.poll_message(cx)
    }
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        self.source.poll_end(cx)
    }
    pub(crate) fn is_done(&self) -> bool {
        self.source.is_done()
    }
    pub(crate) fn on_done(&mut self, callback: Box<dyn FnOnce() + Send>) {
        self.source.on_done(callback);
    }
}

/// Parts an interceptor gave.
struct Fixed {
    initial_metadata: Metadata,
    messages: VecDeque<AnyMsg>,
    end: (Status, Metadata),
}

impl ResponseSource for Fixed {
    fn poll_initial_metadata(&mut self, _: &mut Context<'_>) -> Poll<Metadata> {
        Poll::Ready(self.initial_metadata.clone())
    }
    fn poll_message(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<AnyMsg, Status>>> {
        Poll::Ready(self.messages.pop_front().map(Ok))
    }
    fn poll_end(&mut self, _: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        Poll::Ready(self.end.clone())
    }
    fn is_done(&self) -> bool {
        true
    }
    fn cancel(&mut self) {
        self.messages.clear();
    }
    fn on_done(&mut self, callback: Box<dyn FnOnce() + Send>) {
        crate::user_code::observe(callback);
    }
}

/// Messages passed through a function.
struct Mapped {
    inner: Box<dyn ResponseSource>,
    map: Box<dyn FnMut(AnyMsg) -> Result<AnyMsg, Status> + Send>,
    /// The status the function refused a message with: the call's end.
    failed: Option<Status>,
}

impl ResponseSource for Mapped {
    fn poll_initial_metadata(&mut self, cx: &mut Context<'_>) -> Poll<Metadata> {
        self.inner.poll_initial_metadata(cx)
    }
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<AnyMsg, Status>>> {
        if self.failed.is_some() {
            return Poll::Ready(None);
        }
        match self.inner.poll_message(cx) {
            Poll::Ready(Some(Ok(message))) => {
                let mapped = (self.map)(message);
                if let Err(status) = &mapped {
                    self.failed = Some(status.clone());
                    self.inner.cancel();
                }
                Poll::Ready(Some(mapped))
            }
            other => other,
        }
    }
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        match &self.failed {
            Some(status) => Poll::Ready((status.clone(), Metadata::new())),
            None => self.inner.poll_end(cx),
        }
    }
    fn is_done(&self) -> bool {
        self.failed.is_some() || self.inner.is_done()
    }
    fn cancel(&mut self) {
        self.inner.cancel();
    }
    fn on_done(&mut self, callback: Box<dyn FnOnce() + Send>) {
        self.inner.on_done(callback);
    }
}

/// What [`ResponseStream::map_end`] passes the end through.
type EndMap = Box<dyn FnOnce(Status, Metadata) -> (Status, Metadata) + Send>;

/// The end passed through a function (once; later polls see what it gave).
struct EndMapped {
    inner: Box<dyn ResponseSource>,
    map: Option<EndMap>,
    end: Option<(Status, Metadata)>,
}

impl ResponseSource for EndMapped {
    fn poll_initial_metadata(&mut self, cx: &mut Context<'_>) -> Poll<Metadata> {
        self.inner.poll_initial_metadata(cx)
    }
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<AnyMsg, Status>>> {
        self.inner.poll_message(cx)
    }
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<(Status, Metadata)> {
        if let Some(end) = &self.end {
            return Poll::Ready(end.clone());
        }
        let (status, trailers) = std::task::ready!(self.inner.poll_end(cx));
        let end = match self.map.take() {
            Some(map) => map(status, trailers),
            None => (status, trailers),
        };
        self.end = Some(end.clone());
        Poll::Ready(end)
    }
    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
    fn cancel(&mut self) {
        self.inner.cancel();
    }
    fn on_done(&mut self, callback: Box<dyn FnOnce() + Send>) {
        self.inner.on_done(callback);
    }
}
