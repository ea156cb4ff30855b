//! What the call layer tells `tracing` (feature `tracing`, on by default): one span per call
//! and per connection, named and fielded after OpenTelemetry's RPC conventions, and an event
//! for every failure that would otherwise go unseen. Each event has one function here, so the
//! rest of the crate says what happened, not how it is logged; without the feature they
//! compile to nothing. With the feature and no subscriber, a span or event costs one check
//! of the callsite's interest.
//!
//! The core stays free of `tracing`: it reports what happened as data (events, error
//! values), and the engine logs it here.
//!
//! Levels: WARN for what an operator should look at (a connection closed on a protocol error
//! or a keepalive timeout, a failed handshake, accept failures, connection attempts that
//! fail); DEBUG for the ordinary life of connections and calls (GOAWAY, reconnects, calls
//! that end with an error status).

use std::time::Duration;

use anygrpc_core::{ConnectionError, ErrorCode, Side, Status};

/// A call's span (`grpc.client.call` or `grpc.server.call`) with `rpc.system`,
/// `rpc.service`, `rpc.method`, `otel.name`, the peer's address, and
/// `rpc.grpc.status_code` once the call ended.
#[derive(Debug, Clone)]
pub(crate) struct CallSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
    /// The end was recorded (a call ends once; a late cancel does not end it again).
    ended: bool,
}

/// No span (a call that is not traced, until it gets one).
impl Default for CallSpan {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::Span::none(),
            ended: false,
        }
    }
}

/// A [`CallSpan`] named `$name` (a span's name is a literal) for `$path`, of OpenTelemetry kind
/// `$kind`, with the peer field given.
macro_rules! call_span {
    ($name:literal, $kind:literal, $path:expr, $($peer:ident).+ = $address:expr) => {{
        #[cfg(feature = "tracing")]
        {
            let (service, method) = service_and_method($path);
            CallSpan {
                ended: false,
                span: tracing::debug_span!(
                    $name,
                    otel.name = $path.trim_start_matches('/'),
                    otel.kind = $kind,
                    rpc.system = "grpc",
                    rpc.service = service,
                    rpc.method = method,
                    $($peer).+ = $address,
                    rpc.grpc.status_code = tracing::field::Empty,
                ),
            }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = ($path, $address, service_and_method);
            CallSpan::default()
        }
    }};
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`); an odd path is its own service.
fn service_and_method(path: &str) -> (&str, &str) {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    trimmed.rsplit_once('/').unwrap_or((trimmed, ""))
}

impl CallSpan {
    /// The span of a call the client makes to `path` on the channel to `target`.
    pub(crate) fn client(path: &str, target: &str) -> Self {
        call_span!("grpc.client.call", "client", path, server.address = target)
    }

    /// The span of a call the server received for `path` from `peer`.
    pub(crate) fn server(path: &str, peer: &str) -> Self {
        call_span!(
            "grpc.server.call",
            "server",
            path,
            network.peer.address = peer
        )
    }

    /// The call ended with `status`: records its code, and says why when it is not OK. Only
    /// the first end counts.
    pub(crate) fn ended(&mut self, status: &Status) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        #[cfg(feature = "tracing")]
        {
            let code = status.code() as i32;
            self.span.record("rpc.grpc.status_code", code);
            if code != 0 {
                tracing::debug!(
                    parent: &self.span,
                    rpc.grpc.status_code = code,
                    details = status.message(),
                    "the call ended with an error status"
                );
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = status;
    }

    /// The span itself, to run the handler's future in.
    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }
}

/// A connection's span (`grpc.connection`), with its side and the peer's address; the
/// engine's events about the connection are its children.
#[derive(Debug, Clone)]
pub(crate) struct ConnSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

/// No span.
impl Default for ConnSpan {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::Span::none(),
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Server => "server",
    }
}

impl ConnSpan {
    /// The span of a connection of `side` to or from `peer`.
    pub(crate) fn new(side: Side, peer: &str) -> Self {
        #[cfg(feature = "tracing")]
        {
            Self {
                span: tracing::debug_span!(
                    "grpc.connection",
                    side = side_name(side),
                    network.peer.address = peer,
                ),
            }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (side, peer, side_name);
            Self::default()
        }
    }

    /// The peer sent GOAWAY.
    pub(crate) fn goaway_received(&self, code: ErrorCode, debug: &[u8]) {
        #[cfg(feature = "tracing")]
        {
            let data = String::from_utf8_lossy(debug);
            if code == ErrorCode::NO_ERROR {
                tracing::debug!(parent: &self.span, %code, debug_data = %data, "GOAWAY received");
            } else {
                tracing::warn!(parent: &self.span, %code, debug_data = %data, "GOAWAY received");
            }
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (code, debug);
    }

    /// We began a graceful shutdown: GOAWAY(NO_ERROR) goes out.
    pub(crate) fn shutting_down(&self) {
        #[cfg(feature = "tracing")]
        tracing::debug!(parent: &self.span, "GOAWAY sent: the connection is shutting down");
    }

    /// The connection is over: how, and what the transport said if it failed.
    pub(crate) fn closed(&self, error: Option<&ConnectionError>, transport: Option<&str>) {
        #[cfg(feature = "tracing")]
        match (error, transport) {
            (_, Some(transport)) => tracing::warn!(
                parent: &self.span,
                error = transport,
                "the connection failed"
            ),
            (
                Some(
                    error @ (ConnectionError::Protocol { .. }
                    | ConnectionError::Remote { .. }
                    | ConnectionError::KeepaliveTimeout
                    | ConnectionError::SettingsTimeout),
                ),
                None,
            ) => tracing::warn!(parent: &self.span, %error, "the connection closed on an error"),
            (error, None) => tracing::debug!(
                parent: &self.span,
                error = error.map(tracing::field::display),
                "the connection closed"
            ),
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (error, transport);
    }
}

/// The server's listener failed to accept a connection; it tries again after `retry_in`.
pub(crate) fn accept_failed(error: &std::io::Error, retry_in: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(%error, retry_in_ms = retry_in.as_millis() as u64, "accepting a connection failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (error, retry_in);
}

/// A channel's attempt to connect to `address`, one of `target`'s, failed; the next one is in
/// `retry_in`.
pub(crate) fn connect_failed(target: &str, address: &str, error: &str, retry_in: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target_address = target,
        address,
        error,
        retry_in_ms = retry_in.as_millis() as u64,
        "connecting failed; backing off"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (target, address, error, retry_in);
}

/// Resolving the channel's target failed (or found no address).
pub(crate) fn resolve_failed(target: &str, error: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target_address = target, error, "name resolution failed");
    #[cfg(not(feature = "tracing"))]
    let _ = (target, error);
}

/// A channel connected to `address`, one of `target`'s.
pub(crate) fn connected(target: &str, address: &str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target_address = target, address, "connected");
    #[cfg(not(feature = "tracing"))]
    let _ = (target, address);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_splits_into_service_and_method() {
        assert_eq!(
            super::service_and_method("/helloworld.Greeter/SayHello"),
            ("helloworld.Greeter", "SayHello")
        );
        assert_eq!(super::service_and_method("/odd"), ("odd", ""));
    }
}
