//! The server side: a listener whose transports run their TLS handshake lazily, in the
//! connection's own task on its first read or write, so a slow client never holds up accepts.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use futures_rustls::{FallibleAccept, TlsAcceptor};

use super::credentials::ServerCredentials;
use super::{ALPN_H2, identity};
use crate::auth::AuthContext;
use crate::runtime::{BoxFuture, Listener, RuntimeRef, Transport};

/// A listener yielding TLS transports whose handshake has not run yet.
pub(crate) struct TlsListener {
    inner: Box<dyn Listener>,
    acceptor: TlsAcceptor,
    runtime: RuntimeRef,
}

impl TlsListener {
    /// Secures the connections `inner` accepts with `credentials`.
    pub(crate) fn new(
        inner: Box<dyn Listener>,
        credentials: &ServerCredentials,
        runtime: RuntimeRef,
    ) -> Self {
        Self {
            inner,
            acceptor: TlsAcceptor::from(credentials.config.clone()),
            runtime,
        }
    }
}

impl Listener for TlsListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let io = ready!(self.inner.poll_accept(cx))?;
        Poll::Ready(Ok(secure(io, &self.acceptor, &self.runtime)))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn local_endpoint(&self) -> io::Result<crate::runtime::Endpoint> {
        self.inner.local_endpoint()
    }
}

/// `io` as a server-side TLS transport whose handshake runs on its first read or write.
fn secure(
    io: Box<dyn Transport>,
    acceptor: &TlsAcceptor,
    runtime: &RuntimeRef,
) -> Box<dyn Transport> {
    let peer = io.peer();
    Box::new(ServerTls {
        peer,
        state: State::Handshake(Box::new(acceptor.accept(io).into_fallible())),
        auth: None,
        runtime: runtime.clone(),
    })
}

/// An accepted transport secured with `credentials` (see [`TlsListener`]).
pub(crate) fn secure_accepted(
    io: Box<dyn Transport>,
    credentials: &ServerCredentials,
    runtime: &RuntimeRef,
) -> Box<dyn Transport> {
    secure(io, &TlsAcceptor::from(credentials.config.clone()), runtime)
}

enum State {
    Handshake(Box<FallibleAccept<Box<dyn Transport>>>),
    Ready(Box<TlsStream<Box<dyn Transport>>>),
    /// The handshake failed and its alert went out: we close our side and read what the
    /// client still sends (at most [`LINGER_BYTES`], for at most [`LINGER_TIME`]) until it
    /// closes, before reporting the failure. Closing with unread bytes would make the kernel answer with a reset, which
    /// can destroy the alert before the client reads it: the client would see "connection
    /// reset" instead of why (a TLS 1.3 client sends its first requests before it learns
    /// that the server refused its certificate).
    Lingering {
        io: Box<dyn Transport>,
        error: Option<io::Error>,
        closed: bool,
        drained: usize,
        until: BoxFuture<'static, ()>,
    },
    Failed,
}

/// Bytes read and dropped after a failed handshake before the connection is dropped anyway.
const LINGER_BYTES: usize = 256 << 10;
/// How long a failed handshake's connection lingers at most.
const LINGER_TIME: Duration = Duration::from_secs(1);

/// A server-side TLS transport: handshakes on first use, then relays through rustls.
struct ServerTls {
    peer: String,
    state: State,
    auth: Option<Arc<AuthContext>>,
    runtime: RuntimeRef,
}

impl ServerTls {
    /// Completes the handshake if it is still running. A client that does not negotiate ALPN
    /// `h2` is refused: gRPC over TLS is HTTP/2 only (RFC 9113 §3.2).
    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&mut TlsStream<Box<dyn Transport>>>> {
        if let State::Handshake(accept) = &mut self.state {
            let result = ready!(Pin::new(&mut **accept).poll(cx));
            self.state = State::Failed;
            match result {
                Ok(stream) => self.on_handshake(stream)?,
                Err((error, io)) => {
                    let until = self.runtime.sleep_until(self.runtime.now() + LINGER_TIME);
                    let error =
                        io::Error::new(error.kind(), format!("the TLS handshake failed: {error}"));
                    self.state = State::Lingering {
                        io,
                        error: Some(error),
                        closed: false,
                        drained: 0,
                        until,
                    };
                }
            }
        }
        if let State::Lingering { .. } = self.state {
            return self.poll_linger(cx).map(Err);
        }
        match &mut self.state {
            State::Ready(stream) => Poll::Ready(Ok(&mut **stream)),
            _ => Poll::Ready(Err(handshake_failed())),
        }
    }

    /// Checks a completed handshake and keeps its stream and the client's identity.
    fn on_handshake(&mut self, stream: TlsStream<Box<dyn Transport>>) -> io::Result<()> {
        let (_, session) = stream.get_ref();
        if session.alpn_protocol() != Some(ALPN_H2) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS client did not negotiate ALPN \"h2\"",
            ));
        }
        let chain: Vec<&[u8]> = session
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|cert| cert.as_ref())
            .collect();
        self.auth = Some(Arc::new(identity::auth_context(&chain)));
        self.state = State::Ready(Box::new(stream));
        Ok(())
    }

    /// Lingers after a failed handshake (see [`State::Lingering`]); when done, the state is
    /// `Failed` and the handshake's error is returned.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let State::Lingering {
            io,
            error,
            closed,
            drained,
            until,
        } = &mut self.state
        else {
            return Poll::Ready(handshake_failed());
        };
        let expired = until.as_mut().poll(cx).is_ready();
        if !*closed && !expired {
            // Flushes the alert and sends our FIN.
            if Pin::new(&mut *io).poll_close(cx).is_pending() {
                return Poll::Pending;
            }
            *closed = true;
        }
        let mut scratch = [0u8; 4096];
        while *drained < LINGER_BYTES && !expired {
            match Pin::new(&mut *io).poll_read(cx, &mut scratch) {
                Poll::Ready(Ok(0) | Err(_)) => break,
                Poll::Ready(Ok(n)) => *drained += n,
                Poll::Pending => return Poll::Pending,
            }
        }
        let error = error.take().unwrap_or_else(handshake_failed);
        self.state = State::Failed;
        Poll::Ready(error)
    }
}

/// The error of every use of a transport whose handshake failed.
fn handshake_failed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake failed")
}

impl AsyncRead for ServerTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Ready(stream) => Pin::new(&mut **stream).poll_close(cx),
            // Nothing was said yet: dropping the socket closes it.
            State::Handshake(_) | State::Lingering { .. } | State::Failed => Poll::Ready(Ok(())),
        }
    }
}

impl Transport for ServerTls {
    fn peer(&self) -> String {
        self.peer.clone()
    }

    fn auth_context(&self) -> Option<Arc<AuthContext>> {
        self.auth.clone()
    }
}
