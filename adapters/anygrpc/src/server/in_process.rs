//! In-process channels: a client and a server in one process, connected by in-memory byte
//! pipes instead of sockets (grpc-go's bufconn). The pipes carry the same HTTP/2 as a socket
//! would, so deadlines, cancellation, flow control and graceful stop behave as over TCP; they
//! need only wakers, so this works on every runtime and opens no port.
//!
//! Each in-process channel gets a listener of its own on the server, served like a port:
//! connections wait for [`Server::start`], and once [`Server::stop`] drops the listener new
//! connections are refused.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use super::Server;
use crate::client::{
    Address, Channel, ChannelBuilder, ConnectRequest, Endpoint, Resolver, ResolverBuilder,
    ResolverHandle, ResolverUpdate, TargetUri,
};
use crate::pipe::{DEFAULT_PIPE_CAPACITY, MemoryStream, named_pipe};
use crate::runtime::{BoxFuture, Listener, Transport};

/// The scheme of in-process targets, the name of their one endpoint, and how each side names
/// its peer.
const IN_PROCESS: &str = "in-process";

/// Connections made and not yet accepted.
#[derive(Default)]
struct Backlog {
    pending: VecDeque<MemoryStream>,
    waker: Option<Waker>,
}

fn lock(backlog: &Mutex<Backlog>) -> MutexGuard<'_, Backlog> {
    backlog.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server's end: accepts the pipes its channel's connector makes.
struct InProcessListener {
    backlog: Arc<Mutex<Backlog>>,
}

impl fmt::Debug for InProcessListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessListener")
            .field("pending", &lock(&self.backlog).pending.len())
            .finish()
    }
}

impl Listener for InProcessListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let mut backlog = lock(&self.backlog);
        match backlog.pending.pop_front() {
            Some(stream) => Poll::Ready(Ok(Box::new(stream))),
            None => {
                backlog.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "an in-process listener has no socket address",
        ))
    }

    fn local_endpoint(&self) -> io::Result<Endpoint> {
        Ok(Endpoint::Named(IN_PROCESS.to_string()))
    }
}

/// Makes a pipe, queues its server end for the listener, returns the client end; refused
/// once the listener is gone (the server stopped).
fn connect(backlog: &Weak<Mutex<Backlog>>) -> io::Result<Box<dyn Transport>> {
    let Some(backlog) = backlog.upgrade() else {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "the in-process server has stopped",
        ));
    };
    let (client, server, _) = named_pipe(IN_PROCESS, IN_PROCESS, DEFAULT_PIPE_CAPACITY);
    let mut backlog = lock(&backlog);
    backlog.pending.push_back(server);
    if let Some(waker) = backlog.waker.take() {
        waker.wake();
    }
    Ok(Box::new(client))
}

/// Resolves `in-process:` targets to the one in-process endpoint.
struct InProcessResolver;

impl ResolverBuilder for InProcessResolver {
    fn scheme(&self) -> &str {
        IN_PROCESS
    }

    fn default_authority(&self, _target: &TargetUri) -> String {
        IN_PROCESS.to_string()
    }

    fn build(&self, _target: &TargetUri, handle: ResolverHandle) -> Box<dyn Resolver> {
        handle.update(ResolverUpdate::new(vec![Address {
            endpoint: Endpoint::Named(IN_PROCESS.to_string()),
            attributes: Default::default(),
        }]));
        Box::new(Resolved)
    }
}

/// Nothing more to resolve.
struct Resolved;

impl Resolver for Resolved {}

impl Server {
    /// A channel to this server within the process: no socket and no port, the same HTTP/2
    /// over an in-memory pipe, on any runtime. Calls behave as over TCP (deadlines,
    /// cancellation, metadata, graceful [`stop`](Self::stop)); they are served once the
    /// server has [`start`](Self::start)ed, and fail UNAVAILABLE after it stopped. Services
    /// see the peer as `in-process`. Each channel made adds a listener of its own to the
    /// server until it stops: make one and clone it (clones share their connection).
    ///
    /// ```
    /// # use anygrpc::testing::MemoryRuntime;
    /// use anygrpc::{Connectivity, Server};
    ///
    /// # let rt = MemoryRuntime::new();
    /// let server = Server::new(rt.handle());
    /// server.start();
    /// let channel = server.in_process_channel();
    /// # rt.block_on(async {
    /// channel.channel_ready().await;
    /// assert_eq!(channel.state(false), Connectivity::Ready);
    /// server.stop(None).await;
    /// # });
    /// ```
    pub fn in_process_channel(&self) -> Channel {
        self.in_process_channel_builder()
            .build()
            .expect("the in-process target is valid")
    }

    /// A builder of an in-process channel (see [`in_process_channel`](Self::in_process_channel)),
    /// for interceptors, options, credentials of calls. Do not replace its
    /// [`connector`](ChannelBuilder::connector): it is what reaches the server.
    pub fn in_process_channel_builder(&self) -> ChannelBuilder {
        let backlog = Arc::new(Mutex::new(Backlog::default()));
        let reach = Arc::downgrade(&backlog);
        // Its endpoint is known: adding it cannot fail.
        let _ = self.add_listener(Box::new(InProcessListener { backlog }));
        Channel::builder(
            format!("{IN_PROCESS}:///server"),
            self.inner.runtime.clone(),
        )
        .resolver(InProcessResolver)
        .enable_http_proxy(false)
        .connector(move |_request: ConnectRequest| -> BoxFuture<'static, _> {
            Box::pin(std::future::ready(connect(&reach)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_wait_in_the_backlog_and_are_refused_once_the_listener_is_gone() {
        let backlog = Arc::new(Mutex::new(Backlog::default()));
        let reach = Arc::downgrade(&backlog);
        let mut listener = InProcessListener { backlog };
        let mut cx = Context::from_waker(Waker::noop());
        assert!(listener.poll_accept(&mut cx).is_pending());
        let client = connect(&reach).unwrap();
        assert_eq!(client.peer(), IN_PROCESS);
        let Poll::Ready(Ok(server)) = listener.poll_accept(&mut cx) else {
            panic!("not accepted");
        };
        assert_eq!(server.peer(), IN_PROCESS);
        assert_eq!(
            listener.local_endpoint().unwrap(),
            Endpoint::Named(IN_PROCESS.into())
        );
        drop(listener);
        let error = connect(&reach).map(|_| ()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }
}
