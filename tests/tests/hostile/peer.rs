//! The raw peer: a blocking connection that writes hand-built bytes (valid or not) and
//! decodes everything the other end writes back into frames, and header blocks into fields.
//! It runs on its own thread (see [`off_thread`](super::off_thread)); every read has a time
//! limit, so a peer never hangs a case.
//!
//! The connection is a loopback TCP socket, or, while a case runs on the memory runtime (see
//! [`memory`](super::memory)), one end of a memory pipe: both are a [`Wire`].

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anygrpc_core::frame::{
    self, Continuation, Data, Frame, FrameHeader, FrameType, GoAway, Ping, RstStream, Settings,
    WindowUpdate,
};
use anygrpc_core::hpack::{self, Sensitivity};
use anygrpc_core::{CLIENT_PREFACE, ErrorCode, StreamId};
use bytes::{Bytes, BytesMut};

use super::memory;

#[path = "../../../core/tests/support/wire.rs"]
mod wire;
pub use wire::*;

/// How long one read may wait for the other end before the case fails.
pub const READ_LIMIT: Duration = Duration::from_secs(5);

/// A header block the other end wrote, decoded.
#[derive(Debug, Clone)]
pub struct Block {
    /// The stream it was written on.
    pub stream: StreamId,
    /// It ended the stream (trailers, Trailers-Only, or a request without body).
    pub end_stream: bool,
    /// The fields, in order.
    pub fields: Vec<(String, String)>,
}

impl Block {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the other end did next.
#[derive(Debug)]
pub enum Next {
    /// It wrote this frame.
    Frame(Frame),
    /// It closed the connection (or reset it).
    Closed,
}

/// A blocking byte stream to the other end: what a [`Peer`] reads and writes.
pub trait Wire: fmt::Debug + Send {
    /// Reads what arrived, waiting at most `limit` for something: `Ok(0)` once the other end
    /// closed, an error of kind `TimedOut` or `WouldBlock` when nothing came in time.
    fn read_within(&mut self, buf: &mut [u8], limit: Duration) -> io::Result<usize>;

    /// Writes all of `bytes`; fails once the other end is gone, or when it took nothing for
    /// [`READ_LIMIT`].
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
}

/// A loopback TCP socket as a [`Wire`].
#[derive(Debug)]
struct Tcp {
    io: TcpStream,
    /// The socket's read timeout now, so that it is set only when it changes.
    read_timeout: Duration,
}

impl Tcp {
    fn new(io: TcpStream) -> Self {
        io.set_nodelay(true).expect("TCP_NODELAY");
        io.set_read_timeout(Some(READ_LIMIT)).expect("read timeout");
        io.set_write_timeout(Some(READ_LIMIT))
            .expect("write timeout");
        Self {
            io,
            read_timeout: READ_LIMIT,
        }
    }
}

impl Wire for Tcp {
    fn read_within(&mut self, buf: &mut [u8], limit: Duration) -> io::Result<usize> {
        if limit != self.read_timeout {
            self.io.set_read_timeout(Some(limit))?;
            self.read_timeout = limit;
        }
        self.io.read(buf)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes)
    }
}

/// Where a raw server waits for the Channel under test: a loopback TCP listener, or one on
/// the memory runtime's network while a case runs there.
#[derive(Debug)]
pub enum RawListener {
    /// On loopback TCP.
    Tcp(TcpListener),
    /// On the memory runtime's network.
    Memory(memory::BlockingListener),
}

impl RawListener {
    /// A listener on `127.0.0.1`, on a port the system (or the memory runtime) picks.
    pub fn bind() -> Self {
        match memory::network() {
            Some(net) => Self::Memory(net.listen()),
            None => Self::Tcp(TcpListener::bind("127.0.0.1:0").expect("bind the raw server")),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        match self {
            Self::Tcp(listener) => listener.local_addr().expect("bound").port(),
            Self::Memory(listener) => listener.port(),
        }
    }

    /// The next connection (within [`READ_LIMIT`]).
    fn accept(&self) -> Box<dyn Wire> {
        let listener = match self {
            Self::Tcp(listener) => listener,
            Self::Memory(listener) => return Box::new(listener.accept(READ_LIMIT)),
        };
        listener.set_nonblocking(true).expect("non-blocking accept");
        let give_up = Instant::now() + READ_LIMIT;
        let io = loop {
            match listener.accept() {
                Ok((io, _)) => break io,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("no client connected: {e}"),
            }
        };
        io.set_nonblocking(false).expect("blocking socket");
        Box::new(Tcp::new(io))
    }
}

/// One raw HTTP/2 endpoint on a blocking connection.
#[derive(Debug)]
pub struct Peer {
    io: Box<dyn Wire>,
    input: BytesMut,
    /// Our HPACK encoder: every [`send_headers`](Self::send_headers) block goes through it.
    pub encoder: hpack::Encoder,
    decoder: hpack::Decoder,
    assembling: Option<(StreamId, bool, BytesMut)>,
    /// Every header block the other end wrote, decoded, in order.
    pub blocks: Vec<Block>,
    /// Set once the other end closed; later reads return [`Next::Closed`] at once.
    closed: bool,
    /// A write failed: the other end is gone (the bytes it wrote may still be read).
    pub write_failed: bool,
}

impl Peer {
    fn new(io: Box<dyn Wire>) -> Self {
        Self {
            io,
            input: BytesMut::new(),
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(4096),
            assembling: None,
            blocks: Vec::new(),
            closed: false,
            write_failed: false,
        }
    }

    /// A raw client connected to `127.0.0.1:port` (on the memory runtime's network while a
    /// case runs there), nothing sent yet.
    pub fn connect(port: u16) -> Self {
        let io: Box<dyn Wire> = match memory::network() {
            Some(net) => Box::new(net.connect(port)),
            None => Box::new(Tcp::new(
                TcpStream::connect(("127.0.0.1", port)).expect("connect to the server"),
            )),
        };
        Self::new(io)
    }

    /// A raw client connected to `127.0.0.1:port` after its
    /// [`client_handshake`](Self::client_handshake): the prologue of most cases.
    pub fn handshaken(port: u16) -> Self {
        let mut peer = Self::connect(port);
        peer.client_handshake();
        peer
    }

    /// A raw server: the next connection on `listener` (within [`READ_LIMIT`]), its client
    /// preface read and checked.
    pub fn accept(listener: &RawListener) -> Self {
        let mut peer = Self::new(listener.accept());
        while peer.input.len() < CLIENT_PREFACE.len() {
            assert!(
                !peer.closed && peer.read_more(READ_LIMIT),
                "no client preface within {READ_LIMIT:?}"
            );
        }
        let preface = peer.input.split_to(CLIENT_PREFACE.len());
        assert_eq!(&preface[..], CLIENT_PREFACE, "client preface");
        peer
    }

    /// Writes raw bytes; a failure (the other end closed) is remembered, not fatal.
    pub fn send(&mut self, bytes: &[u8]) {
        if self.write_failed {
            return;
        }
        if self.io.write_all(bytes).is_err() {
            self.write_failed = true;
        }
    }

    /// Writes one encoded frame.
    pub fn send_frame(&mut self, frame: &Frame) {
        let mut dst = BytesMut::new();
        frame.encode(&mut dst);
        self.send(&dst);
    }

    /// Client handshake: the preface and empty SETTINGS, then the ACK of the server's SETTINGS
    /// once they arrive.
    pub fn client_handshake(&mut self) {
        self.send(CLIENT_PREFACE);
        self.send_frame(&Frame::Settings(Settings::default()));
        self.ack_settings();
    }

    /// Server handshake (after [`accept`](Self::accept)): our `settings`, then the ACK of the
    /// client's once they arrive.
    pub fn server_handshake(&mut self, settings: Settings) {
        self.send_frame(&Frame::Settings(settings));
        self.ack_settings();
    }

    fn ack_settings(&mut self) {
        self.until("the peer's SETTINGS", |f, _| {
            matches!(f, Frame::Settings(s) if !s.ack).then_some(())
        });
        self.send_frame(&Frame::Settings(Settings::ack()));
    }

    /// The next frame the other end wrote, or `Closed`; panics when nothing came within
    /// [`READ_LIMIT`].
    pub fn next(&mut self) -> Next {
        self.read_next(READ_LIMIT)
            .unwrap_or_else(|| panic!("nothing from the other end within {READ_LIMIT:?}"))
    }

    /// The next frame the other end wrote, or `Closed`; `None` when no whole frame came
    /// within `limit` (what did come is kept for the next read).
    pub fn next_within(&mut self, limit: Duration) -> Option<Next> {
        self.read_next(limit.max(Duration::from_millis(1)))
    }

    /// [`next`](Self::next), each read waiting at most `limit`: `None` when one timed out.
    fn read_next(&mut self, limit: Duration) -> Option<Next> {
        loop {
            if let Some(header) = FrameHeader::peek(&self.input) {
                let total = FrameHeader::LEN + header.length as usize;
                if self.input.len() >= total {
                    let mut bytes = self.input.split_to(total).freeze();
                    let payload = bytes.split_off(FrameHeader::LEN);
                    let frame = Frame::decode(header, payload).expect("a valid frame");
                    self.on_frame(&frame);
                    return Some(Next::Frame(frame));
                }
            }
            if self.closed {
                return Some(Next::Closed);
            }
            if !self.read_more(limit) {
                return None;
            }
        }
    }

    /// One read into `input`, waiting at most `limit`; `false` when nothing came in time.
    /// The other end closing (or resetting) sets `closed`.
    fn read_more(&mut self, limit: Duration) -> bool {
        let mut buf = [0; 16 << 10];
        match self.io.read_within(&mut buf, limit) {
            Ok(0) => self.closed = true,
            Ok(n) => self.input.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset after the other end closed with our bytes unread.
            Err(_) => self.closed = true,
        }
        true
    }

    /// Reads until `found` returns a value (given each frame and the blocks decoded so far);
    /// panics if the connection closes first.
    pub fn until<T>(
        &mut self,
        what: &str,
        mut found: impl FnMut(&Frame, &[Block]) -> Option<T>,
    ) -> T {
        loop {
            match self.next() {
                Next::Frame(frame) => {
                    if let Some(value) = found(&frame, &self.blocks) {
                        return value;
                    }
                }
                Next::Closed => panic!("the connection closed before {what}"),
            }
        }
    }

    /// The GOAWAY the other end sends next (frames before it are skipped).
    pub fn goaway(&mut self) -> GoAway {
        self.until("GOAWAY", |f, _| match f {
            Frame::GoAway(g) => Some(g.clone()),
            _ => None,
        })
    }

    /// Reads until the GOAWAY, asserts its code, then asserts the connection closes.
    #[track_caller]
    pub fn assert_goaway(&mut self, code: ErrorCode) -> GoAway {
        let goaway = self.goaway();
        assert_eq!(goaway.code, code, "GOAWAY {goaway:?}");
        self.assert_closes();
        goaway
    }

    /// Asserts the other end closes the connection (within [`READ_LIMIT`]), whatever it
    /// writes before.
    #[track_caller]
    pub fn assert_closes(&mut self) {
        while let Next::Frame(_) = self.next() {}
    }

    /// The code of the RST_STREAM the other end sends next on `stream`.
    pub fn reset_of(&mut self, stream: u32) -> ErrorCode {
        self.until("RST_STREAM", |f, _| match f {
            Frame::RstStream(r) if r.stream == StreamId(stream) => Some(r.code),
            Frame::GoAway(g) => panic!("GOAWAY instead of RST_STREAM: {g:?}"),
            _ => None,
        })
    }

    /// The header block that ends `stream` (trailers or Trailers-Only).
    pub fn end_of(&mut self, stream: u32) -> Block {
        let id = StreamId(stream);
        self.until("the end of the stream", |f, blocks| match f {
            Frame::GoAway(g) => panic!("GOAWAY instead of trailers: {g:?}"),
            _ => blocks
                .iter()
                .rev()
                .find(|b| b.stream == id && b.end_stream)
                .cloned(),
        })
    }

    /// A request head the other end (a client) sent: its stream and fields.
    pub fn request(&mut self) -> Block {
        self.until("a request head", |_, blocks| blocks.first().cloned())
    }

    fn on_frame(&mut self, frame: &Frame) {
        match frame {
            Frame::Headers(h) => {
                let block = BytesMut::from(&h.fragment[..]);
                if h.end_headers {
                    self.decode_block(h.stream, h.end_stream, block.freeze());
                } else {
                    self.assembling = Some((h.stream, h.end_stream, block));
                }
            }
            Frame::Continuation(c) => {
                let (stream, end_stream, mut block) =
                    self.assembling.take().expect("CONTINUATION after HEADERS");
                block.extend_from_slice(&c.fragment);
                if c.end_headers {
                    self.decode_block(stream, end_stream, block.freeze());
                } else {
                    self.assembling = Some((stream, end_stream, block));
                }
            }
            _ => {}
        }
    }

    fn decode_block(&mut self, stream: StreamId, end_stream: bool, block: Bytes) {
        let mut fields = Vec::new();
        self.decoder
            .decode(&block, usize::MAX, |f| {
                fields.push((
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                ))
            })
            .expect("valid HPACK from the other end");
        self.blocks.push(Block {
            stream,
            end_stream,
            fields,
        });
    }

    // ---- What the peer writes ----

    /// One HEADERS frame (END_HEADERS) with `fields` HPACK-encoded by our encoder.
    pub fn send_headers(&mut self, stream: u32, fields: &[(String, String)], end_stream: bool) {
        let mut block = BytesMut::new();
        self.encoder.encode(
            fields
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes(), Sensitivity::Normal)),
            &mut block,
        );
        self.send_block(stream, &block, end_stream);
    }

    /// One HEADERS frame (END_HEADERS) carrying an already encoded block.
    pub fn send_block(&mut self, stream: u32, block: &[u8], end_stream: bool) {
        let mut dst = BytesMut::new();
        frame::encode_header_block(StreamId(stream), end_stream, block, 16_384, &mut dst);
        self.send(&dst);
    }

    /// One HEADERS frame with `fields` as plain literals: any name, as given.
    pub fn send_plain(&mut self, stream: u32, fields: &[(String, String)], end_stream: bool) {
        self.send_block(stream, &plain_block(fields), end_stream);
    }

    /// A valid gRPC request head for `path`.
    pub fn send_request(&mut self, stream: u32, path: &str, end_stream: bool) {
        self.send_headers(stream, &request_fields(path), end_stream);
    }

    /// A DATA frame.
    pub fn send_data(&mut self, stream: u32, data: &[u8], end_stream: bool) {
        self.send_frame(&Frame::Data(Data::new(
            StreamId(stream),
            Bytes::copy_from_slice(data),
            end_stream,
        )));
    }

    /// A valid unary request: head, one message, END_STREAM.
    pub fn send_unary(&mut self, stream: u32, path: &str, body: &[u8]) {
        self.send_request(stream, path, false);
        self.send_data(stream, &grpc_message(0, body), true);
    }

    /// A CONTINUATION frame.
    pub fn send_continuation(&mut self, stream: u32, fragment: &[u8], end_headers: bool) {
        self.send_frame(&Frame::Continuation(Continuation {
            stream: StreamId(stream),
            end_headers,
            fragment: Bytes::copy_from_slice(fragment),
        }));
    }

    /// A WINDOW_UPDATE with any increment, 0 included.
    pub fn send_window_update(&mut self, stream: u32, increment: u32) {
        if increment == 0 {
            self.send(&raw_frame(FrameType::WINDOW_UPDATE, 0, stream, &[0; 4]));
        } else {
            self.send_frame(&Frame::WindowUpdate(WindowUpdate {
                stream: StreamId(stream),
                increment,
            }));
        }
    }

    /// An RST_STREAM.
    pub fn send_rst(&mut self, stream: u32, code: ErrorCode) {
        self.send_frame(&Frame::RstStream(RstStream {
            stream: StreamId(stream),
            code,
        }));
    }

    /// A PING (not an ACK).
    pub fn send_ping(&mut self, payload: [u8; 8]) {
        self.send_frame(&Frame::Ping(Ping::new(payload)));
    }
}

// ---- Bytes no encoder would write ----

/// The request head a well-behaved gRPC client sends for `path`.
pub fn request_fields(path: &str) -> Vec<(String, String)> {
    fields(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ])
}

/// A gRPC response head.
pub fn response_fields() -> Vec<(String, String)> {
    fields(&[(":status", "200"), ("content-type", "application/grpc")])
}
