//! A Greeter server on a hand-written event loop: the `polling` crate for readiness, one
//! `anygrpc_core::Connection` per socket, no async and no executor. It shows the whole contract
//! of the sans-IO core in one screen: bytes in, bytes out, time in, events out.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anygrpc_core::{Config, Connection, Event, Metadata, Side, Status, StreamId};
use bytes::{Bytes, BytesMut};
use polling::{Event as Ready, Poller};
use prost::Message as _;

use crate::pb::helloworld::{HelloReply, HelloRequest};

const LISTENER: usize = 0;

/// One accepted connection.
struct Peer {
    socket: TcpStream,
    conn: Connection,
    /// Bytes produced by `poll_transmit` that the socket did not take yet.
    out: BytesMut,
    /// Path of each call in progress.
    paths: HashMap<StreamId, String>,
}

impl Peer {
    /// Answers what happened on the connection.
    fn handle_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::CallStarted { stream, head, .. } => {
                    self.paths
                        .insert(stream, String::from_utf8_lossy(&head.path).into_owned());
                }
                Event::Message { stream, message } => {
                    self.conn.release_capacity(stream, message.credit());
                    let path = self.paths.remove(&stream).unwrap_or_default();
                    let reply = match (path.as_str(), message.decode(4 << 20)) {
                        ("/helloworld.Greeter/SayHello", Ok(bytes)) => {
                            match HelloRequest::decode(bytes) {
                                Ok(request) => Ok(HelloReply {
                                    message: format!("Hello, {}!", request.name),
                                }),
                                Err(e) => {
                                    Err(Status::invalid_argument(format!("bad HelloRequest: {e}")))
                                }
                            }
                        }
                        (_, Err(status)) => Err(status),
                        (other, _) => {
                            Err(Status::unimplemented(format!("{other} is not served here")))
                        }
                    };
                    // A finished call cannot fail to queue; ignore a peer that already left.
                    match reply {
                        Ok(reply) => {
                            let _ = self.conn.send_message(
                                stream,
                                Bytes::from(reply.encode_to_vec()),
                                false,
                            );
                            let _ = self
                                .conn
                                .send_trailers(stream, Status::ok(), Metadata::new());
                        }
                        Err(status) => {
                            let _ = self.conn.send_trailers(stream, status, Metadata::new());
                        }
                    }
                }
                Event::HalfClosed { stream } if self.paths.contains_key(&stream) => {
                    // Half-closed without a message: a unary call needs exactly one.
                    self.paths.remove(&stream);
                    let _ = self.conn.send_trailers(
                        stream,
                        Status::internal("no request message"),
                        Metadata::new(),
                    );
                }
                Event::Cancelled { stream, .. } => {
                    self.paths.remove(&stream);
                }
                _ => {}
            }
        }
    }

    /// Writes what the connection has to say; `Ok(true)` when the socket took everything.
    fn flush(&mut self) -> io::Result<bool> {
        while self.conn.poll_transmit(&mut self.out) > 0 {}
        while !self.out.is_empty() {
            match self.socket.write(&self.out) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let _ = self.out.split_to(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads everything available into the connection; `Ok(false)` at end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        loop {
            match self.socket.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => self.conn.recv(&buf[..n], Instant::now()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Serves the Greeter on `listener` until `stop` is set (checked at least every 100 ms).
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let poller = Poller::new()?;
    // Every registered socket is `delete`d before it is dropped.
    poller.add(&listener, Ready::readable(LISTENER))?;
    let config = Arc::new(Config::server());
    let mut peers: HashMap<usize, Peer> = HashMap::new();
    let mut next_key = LISTENER + 1;
    let mut events: Vec<Ready> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Relaxed) {
        // Sleep until a socket is ready or the earliest connection timer is due.
        let now = Instant::now();
        let next_timer = peers.values().filter_map(|p| p.conn.poll_timeout()).min();
        let wait = next_timer.map_or(Duration::from_millis(100), |t| {
            t.saturating_duration_since(now)
        });
        events.clear();
        poller.wait(&mut events, Some(wait.min(Duration::from_millis(100))))?;

        let mut touched: Vec<usize> = Vec::new();
        for ready in &events {
            if ready.key == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((socket, _)) => {
                            socket.set_nonblocking(true)?;
                            socket.set_nodelay(true)?;
                            let key = next_key;
                            next_key += 1;
                            poller.add(&socket, Ready::readable(key))?;
                            let conn =
                                Connection::new(Side::Server, config.clone(), Instant::now());
                            peers.insert(
                                key,
                                Peer {
                                    socket,
                                    conn,
                                    out: BytesMut::new(),
                                    paths: HashMap::new(),
                                },
                            );
                            touched.push(key);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                poller.modify(&listener, Ready::readable(LISTENER))?;
            } else {
                touched.push(ready.key);
            }
        }

        let now = Instant::now();
        let mut gone = Vec::new();
        for (&key, peer) in peers.iter_mut() {
            let alive = if touched.contains(&key) {
                peer.read(&mut buf).unwrap_or(false)
            } else {
                true
            };
            if !alive {
                peer.conn.transport_closed(now);
            }
            if peer.conn.poll_timeout().is_some_and(|t| t <= now) {
                peer.conn.handle_timeout(now);
            }
            peer.handle_events();
            let drained = peer.flush();
            if peer.conn.is_closed() || drained.is_err() || !alive {
                gone.push(key);
                continue;
            }
            // Readable always; writable too while output is waiting.
            let interest = if drained.unwrap_or(false) {
                Ready::readable(key)
            } else {
                Ready::all(key)
            };
            poller.modify(&peer.socket, interest)?;
        }
        for key in gone {
            if let Some(peer) = peers.remove(&key) {
                poller.delete(&peer.socket)?;
            }
        }
    }
    for (_, peer) in peers.drain() {
        poller.delete(&peer.socket)?;
    }
    poller.delete(&listener)?;
    Ok(())
}
