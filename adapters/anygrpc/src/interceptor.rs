//! Interceptors and call credentials: code that runs around every call of a channel or server.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anygrpc_core::{Encoding, Metadata, Status};

/// What a client call is about to be, as interceptors see and may change it.
#[derive(Debug, Clone)]
pub struct ClientCallDetails {
    /// `/package.Service/Method`.
    pub method: String,
    /// The call's timeout.
    pub timeout: Option<Duration>,
    /// The request metadata.
    pub metadata: Metadata,
    /// Whether the call waits for the channel to be ready.
    pub wait_for_ready: bool,
    /// Compression of request messages.
    pub compression: Option<Encoding>,
}

/// Runs around every call of a channel, for the four call kinds alike.
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Before the call starts: read or change `details`; an `Err` ends the call at once with
    /// that status (nothing is sent).
    fn intercept(&self, details: &mut ClientCallDetails) -> Result<(), Status>;

    /// Each response message, decompressed, before it is decoded.
    fn on_response(&self, details: &ClientCallDetails, message: &[u8]) {
        let _ = (details, message);
    }

    /// When the call ended, with its final status and trailing metadata.
    fn on_complete(&self, details: &ClientCallDetails, status: &Status, trailers: &Metadata) {
        let _ = (details, status, trailers);
    }
}

/// Per-call credentials: metadata added to every call, such as a bearer token. Sent only over
/// TLS unless the channel explicitly allows insecure credentials.
pub trait CallCredentials: Send + Sync + 'static {
    /// The metadata for a call to `method`; an `Err` fails the call with that status.
    fn metadata(&self, method: &str) -> Result<Metadata, Status>;
}

/// A fixed bearer token, sent as `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct BearerToken(String);

impl BearerToken {
    /// Credentials sending `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl CallCredentials for BearerToken {
    fn metadata(&self, _method: &str) -> Result<Metadata, Status> {
        let mut metadata = Metadata::new();
        metadata
            .insert("authorization", &format!("Bearer {}", self.0))
            .map_err(|e| {
                Status::new(
                    anygrpc_core::Code::Unauthenticated,
                    format!("invalid token: {e}"),
                )
            })?;
        Ok(metadata)
    }
}

/// The client-side hooks of one call, shared by its call object.
#[derive(Clone)]
pub(crate) struct CallHooks {
    pub(crate) details: Arc<ClientCallDetails>,
    pub(crate) interceptors: Arc<[Arc<dyn ClientInterceptor>]>,
}

impl fmt::Debug for CallHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallHooks")
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

impl CallHooks {
    pub(crate) fn on_response(&self, message: &[u8]) {
        for interceptor in self.interceptors.iter() {
            crate::user_code::observe(|| interceptor.on_response(&self.details, message));
        }
    }

    pub(crate) fn on_complete(&self, status: &Status, trailers: &Metadata) {
        for interceptor in self.interceptors.iter() {
            crate::user_code::observe(|| interceptor.on_complete(&self.details, status, trailers));
        }
    }
}

/// What a server call is, as server interceptors see it.
#[derive(Debug, Clone)]
pub struct ServerCallDetails {
    /// `/package.Service/Method`.
    pub method: String,
    /// The client's metadata.
    pub metadata: Metadata,
    /// The client's address.
    pub peer: String,
    /// The client's deadline.
    pub deadline: Option<Instant>,
}

/// Runs around every call a server receives, before its handler.
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Before the handler: an `Err` rejects the call with that status (the handler never runs).
    fn intercept(&self, details: &ServerCallDetails) -> Result<(), Status>;

    /// When the call ended, with the status sent to the client.
    fn on_complete(&self, details: &ServerCallDetails, status: &Status) {
        let _ = (details, status);
    }
}

/// The server-side hooks of one call.
#[derive(Clone)]
pub(crate) struct ServerHooks {
    pub(crate) details: Arc<ServerCallDetails>,
    pub(crate) interceptors: Arc<[Arc<dyn ServerInterceptor>]>,
}

impl fmt::Debug for ServerHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHooks")
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

impl ServerHooks {
    pub(crate) fn on_complete(&self, status: &Status) {
        for interceptor in self.interceptors.iter() {
            crate::user_code::observe(|| interceptor.on_complete(&self.details, status));
        }
    }
}
