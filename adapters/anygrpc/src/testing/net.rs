//! The in-memory network of [`MemoryRuntime`](super::MemoryRuntime): listeners by address,
//! connections as pipes, and a host-name table.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use crate::pipe::{MemoryStream, PipeControl, named_pipe, pipe};
use crate::runtime::Endpoint;
use crate::runtime::{Listener, Transport};

/// First port handed out for port 0 and for the connecting side of connections (the IANA
/// dynamic range).
const FIRST_EPHEMERAL_PORT: u16 = 49152;

/// Connections a listener queues before it accepts them; one more is refused, like a full
/// kernel backlog.
pub const ACCEPT_BACKLOG: usize = 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Connections waiting for a listener's `poll_accept`.
#[derive(Debug, Default)]
struct AcceptQueue {
    pending: VecDeque<MemoryStream>,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct NetState {
    listeners: HashMap<SocketAddr, Arc<Mutex<AcceptQueue>>>,
    /// Unix-socket listeners by path (no files: the paths live in this table only).
    unix_listeners: HashMap<String, Arc<Mutex<AcceptQueue>>>,
    hosts: HashMap<String, Vec<IpAddr>>,
    next_port: u16,
    /// Every connection made, for the test to freeze or break (pruned when both ends are gone).
    controls: Vec<PipeControl>,
    capacity: usize,
}

/// The address table, shared by the runtime and its listeners.
#[derive(Clone)]
pub(crate) struct Network {
    state: Arc<Mutex<NetState>>,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Network")
            .field("listeners", &state.listeners.keys().collect::<Vec<_>>())
            .field("hosts", &state.hosts)
            .finish()
    }
}

impl NetState {
    /// A port no listener uses at `ip`, from the dynamic range, wrapping around.
    fn free_port(&mut self, ip: IpAddr) -> io::Result<u16> {
        let range = u16::MAX - FIRST_EPHEMERAL_PORT + 1;
        for _ in 0..range {
            let port = self.next_port;
            self.next_port = if port == u16::MAX {
                FIRST_EPHEMERAL_PORT
            } else {
                port + 1
            };
            if !self.listeners.contains_key(&SocketAddr::new(ip, port)) {
                return Ok(port);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no free in-memory port",
        ))
    }

    /// The listener a connection to `addr` reaches: bound to `addr`, or to the unspecified
    /// address of its family on the same port (`0.0.0.0:p` accepts `127.0.0.1:p`).
    fn listener_for(&self, addr: SocketAddr) -> Option<Arc<Mutex<AcceptQueue>>> {
        let any: IpAddr = if addr.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        self.listeners
            .get(&addr)
            .or_else(|| self.listeners.get(&SocketAddr::new(any, addr.port())))
            .cloned()
    }
}

impl Network {
    pub(crate) fn new(capacity: usize) -> Self {
        let mut hosts = HashMap::new();
        hosts.insert(
            String::from("localhost"),
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        );
        let state = NetState {
            listeners: HashMap::new(),
            unix_listeners: HashMap::new(),
            hosts,
            next_port: FIRST_EPHEMERAL_PORT,
            controls: Vec::new(),
            capacity,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub(crate) fn set_capacity(&self, capacity: usize) {
        lock(&self.state).capacity = capacity;
    }

    pub(crate) fn listen(&self, addr: SocketAddr) -> io::Result<MemoryListener> {
        let mut state = lock(&self.state);
        let port = if addr.port() == 0 {
            state.free_port(addr.ip())?
        } else {
            addr.port()
        };
        let addr = SocketAddr::new(addr.ip(), port);
        if state.listeners.contains_key(&addr) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{addr} is already in use"),
            ));
        }
        let queue = Arc::new(Mutex::new(AcceptQueue::default()));
        state.listeners.insert(addr, Arc::clone(&queue));
        Ok(MemoryListener {
            at: Endpoint::Tcp(addr),
            queue,
            network: Arc::downgrade(&self.state),
        })
    }

    /// A Unix-socket listener at `path`; a path another listener holds is `AddrInUse` (a
    /// live socket: there are no stale ones in memory, a dropped listener frees its path).
    pub(crate) fn listen_unix(&self, path: String) -> io::Result<MemoryListener> {
        let mut state = lock(&self.state);
        if path.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty unix socket path",
            ));
        }
        if state.unix_listeners.contains_key(&path) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("a server already listens on {path}"),
            ));
        }
        let queue = Arc::new(Mutex::new(AcceptQueue::default()));
        state
            .unix_listeners
            .insert(path.clone(), Arc::clone(&queue));
        Ok(MemoryListener {
            at: Endpoint::Unix(path),
            queue,
            network: Arc::downgrade(&self.state),
        })
    }

    /// A connection to the Unix-socket listener at `path`: the client names its peer
    /// `unix:<path>`, the server an unnamed client, `unix:`.
    pub(crate) fn connect_unix(&self, path: &str) -> io::Result<MemoryStream> {
        let mut state = lock(&self.state);
        let Some(queue) = state.unix_listeners.get(path).cloned() else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing listens on unix:{path}"),
            ));
        };
        let mut queue = lock(&queue);
        if queue.pending.len() >= ACCEPT_BACKLOG {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("backlog of unix:{path} is full"),
            ));
        }
        let (client, server, control) = named_pipe(
            &crate::runtime::grpc_unix_peer(Some(path.as_ref())),
            "unix:",
            state.capacity,
        );
        state.controls.retain(|c| !c.is_closed());
        state.controls.push(control);
        queue.pending.push_back(server);
        if let Some(w) = queue.waker.take() {
            w.wake();
        }
        Ok(client)
    }

    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<MemoryStream> {
        let mut state = lock(&self.state);
        let Some(queue) = state.listener_for(addr) else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("nothing listens on {addr}"),
            ));
        };
        let mut queue = lock(&queue);
        if queue.pending.len() >= ACCEPT_BACKLOG {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("backlog of {addr} is full"),
            ));
        }
        let local_ip = if addr.ip().is_unspecified() {
            if addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            }
        } else {
            addr.ip()
        };
        let local = SocketAddr::new(local_ip, state.free_port(local_ip)?);
        let (client, server, control) = pipe(local, addr, state.capacity);
        state.controls.retain(|c| !c.is_closed());
        state.controls.push(control);
        queue.pending.push_back(server);
        if let Some(w) = queue.waker.take() {
            w.wake();
        }
        Ok(client)
    }

    /// Connections whose ends are not both dropped, oldest first.
    pub(crate) fn connections(&self) -> Vec<PipeControl> {
        let mut state = lock(&self.state);
        state.controls.retain(|c| !c.is_closed());
        state.controls.clone()
    }

    pub(crate) fn add_host(&self, name: &str, addrs: Vec<IpAddr>) {
        lock(&self.state)
            .hosts
            .insert(name.to_ascii_lowercase(), addrs);
    }

    pub(crate) fn remove_host(&self, name: &str) {
        lock(&self.state).hosts.remove(&name.to_ascii_lowercase());
    }

    /// IP literals resolve to themselves; names come from the table (case-insensitively).
    pub(crate) fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match lock(&self.state).hosts.get(&host.to_ascii_lowercase()) {
            Some(ips) if !ips.is_empty() => {
                Ok(ips.iter().map(|&ip| SocketAddr::new(ip, port)).collect())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("unknown in-memory host {host:?}"),
            )),
        }
    }
}

/// A listener on the in-memory network; dropping it frees its address and drops the
/// connections it had not accepted (their clients read EOF).
pub struct MemoryListener {
    at: Endpoint,
    queue: Arc<Mutex<AcceptQueue>>,
    network: Weak<Mutex<NetState>>,
}

impl fmt::Debug for MemoryListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryListener")
            .field("at", &self.at)
            .finish()
    }
}

impl Listener for MemoryListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Box<dyn Transport>>> {
        let mut queue = lock(&self.queue);
        match queue.pending.pop_front() {
            Some(stream) => Poll::Ready(Ok(Box::new(stream))),
            None => {
                queue.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.at {
            Endpoint::Tcp(addr) => Ok(*addr),
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{other} has no socket address"),
            )),
        }
    }

    fn local_endpoint(&self) -> io::Result<Endpoint> {
        Ok(self.at.clone())
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        if let Some(network) = self.network.upgrade() {
            let mut state = lock(&network);
            let ours = |q: &Arc<Mutex<AcceptQueue>>| Arc::ptr_eq(q, &self.queue);
            match &self.at {
                Endpoint::Tcp(addr) => {
                    if state.listeners.get(addr).is_some_and(ours) {
                        state.listeners.remove(addr);
                    }
                }
                Endpoint::Unix(path) => {
                    if state.unix_listeners.get(path).is_some_and(ours) {
                        state.unix_listeners.remove(path);
                    }
                }
                Endpoint::Named(_) => {}
            }
        }
        let pending = std::mem::take(&mut lock(&self.queue).pending);
        drop(pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn accept_now(listener: &mut MemoryListener) -> Poll<io::Result<Box<dyn Transport>>> {
        listener.poll_accept(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn port_zero_gets_fresh_ports_and_taken_addresses_are_refused() {
        let net = Network::new(64);
        let a = net.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = net.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        assert!(pa >= FIRST_EPHEMERAL_PORT && pb >= FIRST_EPHEMERAL_PORT && pa != pb);
        let err = net.listen(a.local_addr().unwrap()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let addr = a.local_addr().unwrap();
        drop(a);
        assert!(
            net.listen(addr).is_ok(),
            "a dropped listener frees its address"
        );
    }

    #[test]
    fn connect_reaches_the_listener_and_unknown_addresses_are_refused() {
        let net = Network::new(64);
        let mut listener = net.listen("0.0.0.0:50051".parse().unwrap()).unwrap();
        assert!(accept_now(&mut listener).is_pending());
        let client = net.connect("127.0.0.1:50051".parse().unwrap()).unwrap();
        assert_eq!(client.peer(), "ipv4:127.0.0.1:50051");
        let Poll::Ready(Ok(server)) = accept_now(&mut listener) else {
            panic!("no connection")
        };
        assert_eq!(
            server.peer(),
            crate::testing::grpc_peer(client.local_addr())
        );
        assert_eq!(net.connections().len(), 1);
        let err = net.connect("127.0.0.1:50052".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        drop((client, server));
        assert!(net.connections().is_empty());
    }

    #[test]
    fn unix_paths_listen_connect_and_are_freed_on_drop() {
        let net = Network::new(64);
        let mut listener = net.listen_unix("/run/a.sock".into()).unwrap();
        assert_eq!(
            listener.local_endpoint().unwrap(),
            Endpoint::Unix("/run/a.sock".into())
        );
        assert_eq!(
            listener.local_addr().unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
        assert_eq!(
            net.listen_unix("/run/a.sock".into()).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        let client = net.connect_unix("/run/a.sock").unwrap();
        assert_eq!(client.peer(), "unix:/run/a.sock");
        let Poll::Ready(Ok(server)) = accept_now(&mut listener) else {
            panic!("no connection")
        };
        assert_eq!(server.peer(), "unix:", "an unnamed client socket");
        assert_eq!(
            net.connect_unix("/run/b.sock").unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
        drop(listener);
        assert_eq!(
            net.connect_unix("/run/a.sock").unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
        assert!(net.listen_unix("/run/a.sock".into()).is_ok());
    }

    #[test]
    fn the_backlog_refuses_one_connection_over_its_limit() {
        let net = Network::new(64);
        let _listener = net.listen("127.0.0.5:80".parse().unwrap()).unwrap();
        let addr = "127.0.0.5:80".parse().unwrap();
        let clients: Vec<_> = (0..ACCEPT_BACKLOG)
            .map(|_| net.connect(addr).unwrap())
            .collect();
        assert_eq!(
            net.connect(addr).unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
        assert_eq!(clients.len(), ACCEPT_BACKLOG);
    }

    #[test]
    fn names_resolve_from_the_table_and_literals_to_themselves() {
        let net = Network::new(64);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        net.add_host("Svc.Local", vec![ip]);
        assert_eq!(
            net.resolve("svc.local", 443).unwrap(),
            vec![SocketAddr::new(ip, 443)]
        );
        assert_eq!(
            net.resolve("[::1]", 80).unwrap(),
            vec!["[::1]:80".parse().unwrap()]
        );
        assert!(
            net.resolve("localhost", 1)
                .unwrap()
                .contains(&"127.0.0.1:1".parse().unwrap())
        );
        net.remove_host("svc.local");
        assert_eq!(
            net.resolve("svc.local", 443).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
