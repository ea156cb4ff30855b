//! A loopback TCP proxy the drop cases control: it forwards every connection to the server
//! unchanged until the test cuts one, by closing it (FIN both ways) or resetting it (RST both
//! ways, through SO_LINGER 0). Plain threads and blocking sockets, so it behaves the same
//! whichever executor runs the client and the server.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How a connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Both ends see an orderly close (FIN): a peer that hangs up mid-call.
    Close,
    /// Both ends see a reset (RST): a peer that crashed or a middlebox that dropped the flow.
    Reset,
}

/// One proxied connection.
#[derive(Debug)]
struct Link {
    /// Which of the proxy's ports the client connected to.
    listener: usize,
    /// The server's name for this connection's peer (`ipv4:127.0.0.1:PORT`, the proxy's end).
    server_sees: String,
    /// The proxy's two sockets (client side, server side); `None` once cut.
    sockets: Option<(TcpStream, TcpStream)>,
    /// Set when the test cuts the connection: the forwarding threads then end without passing
    /// an orderly close on (a FIN before the RST would hide the reset).
    cut: Arc<AtomicBool>,
}

/// A running proxy; its threads live as long as the test process.
#[derive(Debug, Clone)]
pub struct Proxy {
    ports: Vec<u16>,
    links: Arc<Mutex<Vec<Link>>>,
}

impl Proxy {
    /// Listens on `listeners` loopback ports, each forwarding every connection to
    /// `127.0.0.1:target`.
    pub fn start(target: u16, listeners: usize) -> Self {
        let links = Arc::new(Mutex::new(Vec::new()));
        let mut ports = Vec::new();
        for index in 0..listeners {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
            ports.push(listener.local_addr().expect("bound").port());
            let links = links.clone();
            std::thread::spawn(move || accept(index, &listener, target, &links));
        }
        Self { ports, links }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Link>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The port of listener `index`.
    pub fn port(&self, index: usize) -> u16 {
        self.ports[index]
    }

    /// How many connections the proxy accepted so far.
    pub fn connections(&self) -> usize {
        self.lock().len()
    }

    /// The connection the server calls `peer` (what `ServicerContext::peer` says), if it came
    /// through this proxy: its index and the listener it arrived on.
    pub fn link_of(&self, peer: &str) -> Option<(usize, usize)> {
        self.lock()
            .iter()
            .enumerate()
            .find(|(_, link)| link.server_sees == peer)
            .map(|(index, link)| (index, link.listener))
    }

    /// Cuts connection `index` (in accept order) both ways, at once.
    pub fn cut(&self, index: usize, how: Cut) {
        let (sockets, cut) = {
            let mut links = self.lock();
            let link = &mut links[index];
            (link.sockets.take(), link.cut.clone())
        };
        let Some((client, server)) = sockets else {
            panic!("connection {index} was cut already");
        };
        cut.store(true, Ordering::SeqCst);
        for socket in [&client, &server] {
            match how {
                Cut::Close => {
                    let _ = socket.shutdown(Shutdown::Both);
                }
                Cut::Reset => {
                    // With a zero linger time the last close sends RST instead of FIN. Shutting
                    // the read side wakes the forwarding threads, which then drop their handles.
                    socket2::SockRef::from(socket)
                        .set_linger(Some(Duration::ZERO))
                        .expect("SO_LINGER");
                    let _ = socket.shutdown(Shutdown::Read);
                }
            }
        }
    }
}

/// Accepts connections on `listener` for as long as the process runs.
fn accept(index: usize, listener: &TcpListener, target: u16, links: &Mutex<Vec<Link>>) {
    for client in listener.incoming() {
        let Ok(client) = client else { return };
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let local: SocketAddr = server.local_addr().expect("connected");
        let clones = (
            client.try_clone().expect("clone a socket"),
            server.try_clone().expect("clone a socket"),
        );
        let cut = Arc::new(AtomicBool::new(false));
        links.lock().unwrap_or_else(|p| p.into_inner()).push(Link {
            listener: index,
            server_sees: format!("ipv4:{local}"),
            sockets: Some(clones),
            cut: cut.clone(),
        });
        let upstream = (
            client.try_clone().expect("clone a socket"),
            server.try_clone().expect("clone a socket"),
            cut.clone(),
        );
        std::thread::spawn(move || forward(upstream.0, upstream.1, &upstream.2));
        std::thread::spawn(move || forward(server, client, &cut));
    }
}

/// Copies bytes from `from` to `to` until either side ends, then passes an orderly end on
/// unless the test cut the connection.
fn forward(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = [0u8; 16 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    if !cut.load(Ordering::SeqCst) {
        let _ = to.shutdown(Shutdown::Write);
    }
}
