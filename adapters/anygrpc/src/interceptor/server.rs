//! Server interceptors: async code that wraps every call a server receives, before and after
//! its handler.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use anygrpc_core::{Metadata, Status};

use super::Extensions;
use crate::auth::AuthContext;
use crate::runtime::BoxFuture;

/// A call as the server's interceptors see it, and may change it before the handler does.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerCallDetails {
    /// `/package.Service/Method`.
    pub method: String,
    /// The client's metadata; what an interceptor leaves here is the handler's
    /// [`invocation_metadata`](crate::ServicerContext::invocation_metadata).
    pub metadata: Metadata,
    /// The client's address (`ipv4:127.0.0.1:5000`, ...).
    pub peer: String,
    /// The client's deadline.
    pub deadline: Option<Instant>,
    /// What the transport authenticated about the client (TLS: its certificate's
    /// identities); `None` on a cleartext port.
    pub auth_context: Option<Arc<AuthContext>>,
    /// Typed per-call data the handler reads from
    /// [`ServicerContext::extensions`](crate::ServicerContext::extensions).
    pub extensions: Extensions,
}

/// Async code around every call a server receives (grpc.aio's `ServerInterceptor`). It gets
/// the call's details and `next`, the rest of the chain ending with the handler, and returns
/// the status the client gets. It may:
/// - reject the call: return a status without running `next` (the handler never runs);
/// - rewrite the invocation metadata, or attach typed data to
///   [`extensions`](ServerCallDetails::extensions), then run `next`;
/// - await anything (a token check against another service) before or after `next`;
/// - wrap the handler: time it, read or replace the status it ended with (a handler's
///   panic reaches the interceptor as UNKNOWN).
///
/// Interceptors run in the order added: the first added sees the call first and the status
/// last. They run in the call's task, never under a connection's driver.
///
/// ```
/// use anygrpc::{BoxFuture, Code, ServerCallDetails, ServerInterceptor, ServerNext, Status};
///
/// /// Lets through only calls with a valid token, and tells the handler who called.
/// struct RequireToken;
///
/// struct Caller(String);
///
/// impl ServerInterceptor for RequireToken {
///     fn intercept(&self, mut call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status> {
///         Box::pin(async move {
///             match call.metadata.get("authorization") {
///                 Some("Bearer let-me-in") => {
///                     call.extensions.insert(Caller("ada".into()));
///                     next.run(call).await
///                 }
///                 _ => Status::new(Code::Unauthenticated, "no valid token"),
///             }
///         })
///     }
/// }
/// ```
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Handles `call`: run `next.run(call)` to go on to the next interceptor and the handler,
    /// or answer without it. The status returned is the call's.
    fn intercept(&self, call: ServerCallDetails, next: ServerNext) -> BoxFuture<'_, Status>;
}

/// Where a server call goes when the chain's last interceptor lets it through: to the
/// handler, returning the status the handler ended the call with (not sent yet).
pub(crate) type Terminal = Box<dyn FnOnce(ServerCallDetails) -> BoxFuture<'static, Status> + Send>;

/// The rest of a server call's interceptor chain: the interceptors after this one, then the
/// handler. Run it at most once (it is consumed).
pub struct ServerNext {
    chain: Arc<[Arc<dyn ServerInterceptor>]>,
    index: usize,
    terminal: Terminal,
}

impl fmt::Debug for ServerNext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerNext")
            .field("interceptors_left", &(self.chain.len() - self.index))
            .finish()
    }
}

impl ServerNext {
    /// The whole chain of `interceptors`, ending with `terminal`.
    pub(crate) fn chain(chain: Arc<[Arc<dyn ServerInterceptor>]>, terminal: Terminal) -> Self {
        Self {
            chain,
            index: 0,
            terminal,
        }
    }

    /// Runs the rest of the chain and the handler; completes with the status the call ends
    /// with, once the handler returned.
    pub fn run(self, call: ServerCallDetails) -> BoxFuture<'static, Status> {
        let Some(interceptor) = self.chain.get(self.index).cloned() else {
            return (self.terminal)(call);
        };
        let next = ServerNext {
            chain: self.chain,
            index: self.index + 1,
            terminal: self.terminal,
        };
        Box::pin(async move {
            // The interceptor's code, and the future it makes: a panic in either fails only
            // this call (UNKNOWN, as a panicking handler does).
            crate::user_code::guarded_future(
                || interceptor.intercept(call, next),
                || Status::unknown("a server interceptor panicked"),
            )
            .await
        })
    }
}
