//! What every client call kind shares: options, errors, and the untyped call core behind the
//! Call objects (metadata and status futures, cancel, done, deadline).

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anygrpc_core::{Code, Compression, Message, Metadata, Status};
use bytes::Bytes;

use crate::conn::handle::Command;
use crate::conn::slot::{CallSlot, Outcome};
use crate::runtime::RuntimeRef;

/// Per-call options, as grpc.aio's call arguments.
///
/// ```
/// use std::time::Duration;
///
/// use anygrpc::{CallOptions, Encoding, Metadata};
///
/// let mut metadata = Metadata::new();
/// metadata.insert("x-request-id", "42").expect("valid metadata");
/// let options = CallOptions::new()
///     .timeout(Duration::from_millis(500))
///     .metadata(metadata)
///     .wait_for_ready(true)
///     .compression(Encoding::Gzip);
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct CallOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) metadata: Metadata,
    /// `None`: the method's service config decides (default: fail fast).
    pub(crate) wait_for_ready: Option<bool>,
    pub(crate) compression: Option<Compression>,
    pub(crate) authority: Option<String>,
    pub(crate) credentials: Option<Arc<dyn crate::interceptor::CallCredentials>>,
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("metadata", &self.metadata)
            .field("wait_for_ready", &self.wait_for_ready)
            .field("compression", &self.compression)
            .field("authority", &self.authority)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl CallOptions {
    /// Default options: no deadline, no metadata, fail fast, no compression.
    pub fn new() -> Self {
        Self::default()
    }
    /// The call fails with DEADLINE_EXCEEDED after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Custom metadata sent with the request.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
    /// Wait for the channel to become ready instead of failing fast with UNAVAILABLE (this
    /// call's choice overrides the service config's `waitForReady`).
    pub fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = Some(wait);
        self
    }
    /// Compress request messages with `compression`: an [`Encoding`](crate::Encoding) at its
    /// default level, or a [`Compression`] with a level of its own.
    pub fn compression(mut self, compression: impl Into<Compression>) -> Self {
        self.compression = Some(compression.into());
        self
    }
    /// Credentials for this call only (sent only over TLS unless the channel allows otherwise).
    pub fn credentials(mut self, credentials: impl crate::interceptor::CallCredentials) -> Self {
        self.credentials = Some(Arc::new(credentials));
        self
    }
    /// Overrides the `:authority` of this call.
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }
}

/// Per-message options of `write_with` / `send_with`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Send this message uncompressed even though the call compresses (gRPC's
    /// `NO_COMPRESS` write flag).
    pub no_compression: bool,
}

impl WriteOptions {
    /// This message goes uncompressed.
    pub fn uncompressed() -> Self {
        Self {
            no_compression: true,
        }
    }
}

/// A call that ended without success: the status plus everything known about the call.
#[derive(Debug, Clone)]
pub struct RpcError {
    status: Status,
    initial_metadata: Metadata,
    trailing_metadata: Metadata,
}

impl RpcError {
    /// An error with `status` and no metadata (for failures before the call started).
    pub fn from_status(status: Status) -> Self {
        Self::new(status, Metadata::new(), Metadata::new())
    }

    pub(crate) fn new(
        status: Status,
        initial_metadata: Metadata,
        trailing_metadata: Metadata,
    ) -> Self {
        Self {
            status,
            initial_metadata,
            trailing_metadata,
        }
    }
    /// The status code.
    pub fn code(&self) -> Code {
        self.status.code()
    }
    /// The status message.
    pub fn details(&self) -> &str {
        self.status.message()
    }
    /// The whole status (with `grpc-status-details-bin`).
    pub fn status(&self) -> &Status {
        &self.status
    }
    /// The response head's metadata (empty if none arrived).
    pub fn initial_metadata(&self) -> &Metadata {
        &self.initial_metadata
    }
    /// The trailers' metadata.
    pub fn trailing_metadata(&self) -> &Metadata {
        &self.trailing_metadata
    }
    /// A one-line description for logs.
    pub fn debug_error_string(&self) -> String {
        format!(
            "{{grpc_status:{}, grpc_message:{:?}}}",
            self.status.code() as i32,
            self.status.message()
        )
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rpc error: {}", self.status)
    }
}

impl std::error::Error for RpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.status)
    }
}

impl From<RpcError> for Status {
    fn from(error: RpcError) -> Self {
        error.status
    }
}

/// The application used a call object in a way its kind does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// `write` after `done_writing`.
    WriteAfterDoneWriting,
    /// `write` or `done_writing` on a call fed from a request stream.
    RequestsFromStream,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WriteAfterDoneWriting => "write after done_writing",
            Self::RequestsFromStream => "the call's requests come from a stream",
        })
    }
}

impl std::error::Error for UsageError {}

/// Why a `write` or `done_writing` failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WriteError {
    /// The call ended; its status says why.
    Rpc(RpcError),
    /// The call object was misused.
    Usage(UsageError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rpc(e) => e.fmt(f),
            Self::Usage(e) => write!(f, "usage error: {e}"),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Rpc(e) => Some(e),
            Self::Usage(e) => Some(e),
        }
    }
}

/// The untyped heart of a client call object.
#[derive(Debug, Clone)]
pub(crate) struct CallCore {
    pub(crate) slot: Arc<CallSlot>,
    pub(crate) runtime: RuntimeRef,
    pub(crate) deadline: Option<Instant>,
    pub(crate) max_recv: usize,
    pub(crate) max_send: usize,
    pub(crate) compression: Option<Compression>,
    /// Where the call's events go, when the channel has stats handlers.
    pub(crate) stats: Option<crate::stats::CallRecorder>,
}

impl CallCore {
    /// Records that `encoded` goes to the connection.
    pub(crate) fn sent(&self, encoded: &crate::codec::Encoded) {
        if let Some(stats) = &self.stats {
            stats.record(&crate::stats::CallEvent::MessageSent {
                size: encoded.size,
                wire_size: encoded.bytes.len(),
                compressed: encoded.compressed,
            });
        }
    }

    /// Notes that the application reads `message`.
    pub(crate) fn received(&self, message: &Message) {
        self.slot
            .last_compressed
            .store(message.encoding.is_some(), Ordering::Relaxed);
    }

    /// The outcome, once the call ended. A single-response call that received a second
    /// message ends INTERNAL here and now, its stream reset, rather than when the server ends
    /// it (if ever).
    pub(crate) fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Outcome> {
        loop {
            let polled = self.slot.poll_with(cx, |s| match &s.outcome {
                // The end is seen once the done callbacks ran.
                Some(_) if s.callbacks_running => None,
                Some(outcome) => Some(Some(outcome.clone())),
                None if s.single_response && s.inbox.len() > 1 => Some(None),
                None => None,
            });
            match polled {
                Poll::Ready(Some(outcome)) => return Poll::Ready(outcome),
                // Sets the outcome (or another end did first): the next turn returns it.
                Poll::Ready(None) => {
                    self.abort(crate::conn::slot::too_many_responses());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    pub(crate) fn poll_initial_metadata(&self, cx: &mut Context<'_>) -> Poll<Metadata> {
        self.slot.poll_with(cx, |s| {
            s.headers
                .clone()
                .or_else(|| s.outcome.as_ref().map(|_| Metadata::new()))
        })
    }

    /// The next message, or `None` once no more will come.
    pub(crate) fn poll_message(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let polled = self.slot.poll_with(cx, |s| match s.inbox.pop_front() {
            Some(message) => Some(Some(message)),
            None if s.recv_closed => Some(None),
            None => None,
        });
        if let Poll::Ready(Some(message)) = &polled {
            // Credit goes back as the application consumes.
            self.slot.release(message.credit());
        }
        polled
    }

    /// The error for a call that ended with `outcome`.
    pub(crate) fn error(&self, outcome: Outcome) -> RpcError {
        let initial = self.slot.lock().headers.clone().unwrap_or_default();
        RpcError::new(outcome.status, initial, outcome.trailers)
    }

    /// Sends one encoded message and waits until the connection accepted it.
    pub(crate) async fn write_bytes(
        &self,
        message: Bytes,
        compressed: bool,
    ) -> Result<(), RpcError> {
        let seq = {
            let mut state = self.slot.lock();
            state.sends_submitted += 1;
            state.sends_submitted
        };
        self.slot.submit(Command::Send {
            slot: self.slot.clone(),
            message,
            compressed,
        });
        let accepted = poll_fn(|cx| {
            self.slot.poll_with(cx, |s| {
                if s.sends_accepted >= seq {
                    Some(Ok(()))
                } else {
                    s.outcome.clone().map(Err)
                }
            })
        })
        .await;
        accepted.map_err(|outcome| self.error(outcome))
    }

    pub(crate) fn half_close(&self) {
        self.slot.submit(Command::HalfClose {
            slot: self.slot.clone(),
        });
    }

    /// Cancels the call; `false` if it had already ended.
    pub(crate) fn cancel(&self) -> bool {
        self.abort(Status::cancelled("cancelled by the client"))
    }

    /// Ends the call with `status`, resetting its stream (CANCEL); `false` if it had already
    /// ended.
    pub(crate) fn abort(&self, status: Status) -> bool {
        self.slot.cancel(status)
    }

    /// A response the application cannot use (it does not decode) fails the call with
    /// `status`: now, its stream reset, while the call runs; in place of an OK end that came
    /// before the application read that far otherwise. The call's code then agrees with what
    /// the read returned, as in grpc-go, where the read decides the call's status.
    pub(crate) fn fail_on_read(&self, status: Status) {
        if self.abort(status.clone()) {
            return;
        }
        let mut state = self.slot.lock();
        if let Some(outcome) = state.outcome.as_mut() {
            if outcome.status.code() == Code::Ok {
                outcome.status = status;
            }
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.slot.lock().outcome.is_some()
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.slot
            .lock()
            .outcome
            .as_ref()
            .is_some_and(|o| o.status.code() == Code::Cancelled)
    }

    pub(crate) fn time_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(self.runtime.now()))
    }
}

/// The metadata and status accessors every Call object offers, as futures that resolve as soon
/// as the value is known.
macro_rules! call_accessors {
    () => {
        /// The server's initial metadata (empty for a Trailers-Only response or a failed call).
        pub async fn initial_metadata(&self) -> anygrpc_core::Metadata {
            std::future::poll_fn(|cx| self.inner.poll_initial_metadata(cx)).await
        }
        /// The trailing metadata, once the call ended.
        pub async fn trailing_metadata(&self) -> anygrpc_core::Metadata {
            std::future::poll_fn(|cx| self.inner.poll_end(cx)).await.1
        }
        /// The status code, once the call ended.
        pub async fn code(&self) -> anygrpc_core::Code {
            std::future::poll_fn(|cx| self.inner.poll_end(cx))
                .await
                .0
                .code()
        }
        /// The status message, once the call ended.
        pub async fn details(&self) -> String {
            std::future::poll_fn(|cx| self.inner.poll_end(cx))
                .await
                .0
                .message()
                .to_string()
        }
        /// The whole final status, once the call ended.
        pub async fn status(&self) -> anygrpc_core::Status {
            std::future::poll_fn(|cx| self.inner.poll_end(cx)).await.0
        }
        /// Cancels the call; `false` if it had already ended. The call's done callbacks
        /// run before this returns.
        pub fn cancel(&self) -> bool {
            self.inner.cancel()
        }
        /// `true` if the call ended with CANCELLED.
        pub fn cancelled(&self) -> bool {
            self.inner.is_cancelled()
        }
        /// `true` once the call ended.
        pub fn done(&self) -> bool {
            self.inner.is_done()
        }
        /// Time left before the deadline; `None` without one.
        pub fn time_remaining(&self) -> Option<std::time::Duration> {
            self.inner.time_remaining()
        }
        /// `true` when the last response the application read arrived compressed (its
        /// message's compressed flag was set); `false` before any.
        pub fn last_response_compressed(&self) -> bool {
            self.inner.last_response_compressed()
        }
        /// Runs `callback` when the call ends (at once if it already did).
        pub fn add_done_callback(&self, callback: impl FnOnce() + Send + 'static) {
            self.inner.on_done(Box::new(callback));
        }
    };
}
pub(crate) use call_accessors;
