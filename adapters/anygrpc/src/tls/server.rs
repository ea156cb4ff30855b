//! The server side: a listener whose transports run their TLS handshake lazily, in the
//! connection's own task on its first read or write, so a slow client never holds up accepts.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use futures_rustls::{Accept, TlsAcceptor};

use super::credentials::ServerCredentials;
use super::{ALPN_H2, AuthContext, identity};
use crate::runtime::{Listener, Transport};

/// A listener yielding TLS transports whose handshake has not run yet.
pub(crate) struct TlsListener {
    inner: Box<dyn Listener>,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Secures the connections `inner` accepts with `credentials`.
    pub(crate) fn new(inner: Box<dyn Listener>, credentials: &ServerCredentials) -> Self {
        Self {
            inner,
            acceptor: TlsAcceptor::from(credentials.config.clone()),
        }
    }
}

impl Listener for TlsListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let io = ready!(self.inner.poll_accept(cx))?;
        let peer = io.peer();
        Poll::Ready(Ok(Box::new(ServerTls {
            peer,
            state: State::Handshake(Box::new(self.acceptor.accept(io))),
            auth: None,
        })))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

enum State {
    Handshake(Box<Accept<Box<dyn Transport>>>),
    Ready(Box<TlsStream<Box<dyn Transport>>>),
    Failed,
}

/// A server-side TLS transport: handshakes on first use, then relays through rustls.
struct ServerTls {
    peer: String,
    state: State,
    auth: Option<Arc<AuthContext>>,
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
            let stream = result?;
            let (_, session) = stream.get_ref();
            if session.alpn_protocol() != Some(ALPN_H2) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS client did not negotiate ALPN \"h2\"",
                )));
            }
            let certificate = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.as_ref());
            self.auth = Some(Arc::new(identity::auth_context(certificate)));
            self.state = State::Ready(Box::new(stream));
        }
        match &mut self.state {
            State::Ready(stream) => Poll::Ready(Ok(&mut **stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake failed",
            ))),
        }
    }
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
            State::Handshake(_) | State::Failed => Poll::Ready(Ok(())),
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
