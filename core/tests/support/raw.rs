//! A scripted raw peer: hand-built frames written into one real `Connection`, and everything
//! the connection writes back decoded into frames (and header blocks into fields), so a test
//! can assert on the exact GOAWAY / RST_STREAM / HEADERS the connection produced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anygrpc_core::frame::{
    self, Continuation, Data, Frame, FrameHeader, FrameType, Ping, RstStream, Settings,
    WindowUpdate,
};
use anygrpc_core::hpack::{self, Sensitivity};
use anygrpc_core::{
    CLIENT_PREFACE, Config, Connection, ConnectionError, ErrorCode, Event, Side, StreamId,
};
use bytes::{Bytes, BytesMut};

pub use super::wire::*;

/// A header block the connection wrote, decoded.
#[derive(Debug, Clone)]
pub struct Block {
    pub stream: StreamId,
    pub end_stream: bool,
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

/// One real `Connection` and the hand-driven peer on the other end of its wire.
pub struct Raw {
    pub conn: Connection,
    pub now: Instant,
    /// Our HPACK encoder: every header block we send goes through it, in wire order.
    pub encoder: hpack::Encoder,
    decoder: hpack::Decoder,
    /// Every frame the connection wrote, in order (HEADERS/CONTINUATION fragments included).
    pub frames: Vec<Frame>,
    /// Every complete header block the connection wrote, decoded.
    pub blocks: Vec<Block>,
    /// Every event the connection reported, in order.
    pub events: Vec<Event>,
    /// Total bytes the connection wrote.
    pub written: usize,
    assembling: Option<(StreamId, bool, BytesMut)>,
    /// A client connection's preface is still to be skipped in its output.
    skip_preface: bool,
    wire: BytesMut,
    /// Bytes handed to `recv` at a time (default: everything at once).
    pub chunk: usize,
}

/// The request head a well-behaved gRPC client sends, without custom metadata.
pub fn request_fields(path: &str) -> Vec<(String, String)> {
    [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "test.local"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

impl Raw {
    /// A server `Connection` with `config`, after a clean handshake: the raw client sent the
    /// preface, empty SETTINGS and the ACK of the server's SETTINGS. The handshake output is
    /// consumed and cleared.
    pub fn server(config: Config) -> Self {
        let mut raw = Self::new(Side::Server, config);
        raw.send(CLIENT_PREFACE);
        raw.send_frame(&Frame::Settings(Settings::default()));
        raw.send_frame(&Frame::Settings(Settings::ack()));
        raw.settle();
        raw
    }

    /// A client `Connection` with `config`, after the raw server sent empty SETTINGS and the
    /// ACK of the client's. The handshake output is consumed and cleared.
    pub fn client(config: Config) -> Self {
        let mut raw = Self::new(Side::Client, config);
        raw.send_frame(&Frame::Settings(Settings::default()));
        raw.send_frame(&Frame::Settings(Settings::ack()));
        raw.settle();
        raw
    }

    /// A connection in `side`'s role before anything was received.
    pub fn new(side: Side, config: Config) -> Self {
        let now = Instant::now();
        Self {
            conn: Connection::new(side, Arc::new(config), now),
            now,
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(4096),
            frames: Vec::new(),
            blocks: Vec::new(),
            events: Vec::new(),
            written: 0,
            assembling: None,
            skip_preface: side == Side::Client,
            wire: BytesMut::new(),
            chunk: usize::MAX,
        }
    }

    /// Drains output and events, then forgets them (and the handshake frames).
    pub fn settle(&mut self) {
        self.flush();
        self.poll_events();
        assert!(
            self.closed().is_none(),
            "handshake failed: {:?}",
            self.events
        );
        self.frames.clear();
        self.blocks.clear();
        self.events.clear();
        self.written = 0;
    }

    /// Moves the fake clock.
    pub fn sleep(&mut self, d: Duration) {
        self.now += d;
        self.conn.handle_timeout(self.now);
    }

    /// Feeds raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(self.chunk.max(1)) {
            self.conn.recv(piece, self.now);
        }
    }

    /// Feeds one encoded frame.
    pub fn send_frame(&mut self, frame: &Frame) {
        let mut dst = BytesMut::new();
        frame.encode(&mut dst);
        self.send(&dst);
    }

    /// HPACK-encodes `fields` with our encoder (never indexed when `sensitive`).
    pub fn block(&mut self, fields: &[(String, String)]) -> Bytes {
        let mut dst = BytesMut::new();
        self.encoder.encode(
            fields
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes(), Sensitivity::Normal)),
            &mut dst,
        );
        dst.freeze()
    }

    /// One HEADERS frame with END_HEADERS carrying `fields`.
    pub fn send_headers(&mut self, stream: u32, fields: &[(String, String)], end_stream: bool) {
        let block = self.block(fields);
        self.send_block(stream, &block, end_stream);
    }

    /// One HEADERS frame with END_HEADERS carrying an already encoded block.
    pub fn send_block(&mut self, stream: u32, block: &[u8], end_stream: bool) {
        let mut dst = BytesMut::new();
        frame::encode_header_block(StreamId(stream), end_stream, block, 16_384, &mut dst);
        self.send(&dst);
    }

    /// One HEADERS frame carrying `fields` as plain literals (see [`plain_block`]).
    pub fn send_plain(&mut self, stream: u32, fields: &[(String, String)], end_stream: bool) {
        self.send_block(stream, &plain_block(fields), end_stream);
    }

    /// Server application: answers `stream` with one message and status OK.
    pub fn respond_ok(&mut self, stream: u32, body: &'static [u8]) {
        let id = StreamId(stream);
        self.conn
            .send_message(id, Bytes::from_static(body), false)
            .expect("send_message");
        self.conn
            .send_trailers(
                id,
                anygrpc_core::Status::ok(),
                anygrpc_core::Metadata::new(),
            )
            .expect("send_trailers");
    }

    /// Asserts a full unary call on `stream` is served: the application sees it, answers, and
    /// the peer receives a head, the message and `grpc-status: 0`.
    #[track_caller]
    pub fn assert_serves_call(&mut self, stream: u32) {
        self.send_unary(stream, "/svc.S/M", b"hello");
        self.pump();
        assert!(
            self.started().contains(&StreamId(stream)),
            "call {stream} started; events {:?}",
            self.events
        );
        self.respond_ok(stream, b"world");
        self.pump();
        let end = self.final_block(stream).expect("trailers written");
        assert_eq!(end.get("grpc-status"), Some("0"), "{end:?}");
        assert!(self.goaways().is_empty());
    }

    /// A request head for `path` on `stream` (a valid gRPC request).
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

    /// A CONTINUATION frame.
    pub fn send_continuation(&mut self, stream: u32, fragment: &[u8], end_headers: bool) {
        self.send_frame(&Frame::Continuation(Continuation {
            stream: StreamId(stream),
            end_headers,
            fragment: Bytes::copy_from_slice(fragment),
        }));
    }

    /// A WINDOW_UPDATE with any increment (0 included: built by hand).
    pub fn send_window_update(&mut self, stream: u32, increment: u32) {
        if increment == 0 {
            let frame = raw_frame(FrameType::WINDOW_UPDATE, 0, stream, &[0; 4]);
            self.send(&frame);
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

    /// A valid unary request on `stream`: head, one message, END_STREAM.
    pub fn send_unary(&mut self, stream: u32, path: &str, body: &[u8]) {
        self.send_request(stream, path, false);
        self.send_data(stream, &grpc_message(0, body), true);
    }

    /// Pulls everything the connection wants to write and decodes it; returns the bytes written.
    pub fn flush(&mut self) -> usize {
        let mut buf = BytesMut::new();
        while self.conn.poll_transmit(&mut buf) > 0 {}
        let n = buf.len();
        self.written += n;
        self.wire.extend_from_slice(&buf);
        if self.skip_preface && self.wire.len() >= CLIENT_PREFACE.len() {
            assert_eq!(&self.wire[..CLIENT_PREFACE.len()], CLIENT_PREFACE);
            let _ = self.wire.split_to(CLIENT_PREFACE.len());
            self.skip_preface = false;
        }
        while let Some(header) = FrameHeader::peek(&self.wire) {
            let total = FrameHeader::LEN + header.length as usize;
            if self.wire.len() < total {
                break;
            }
            let mut bytes = self.wire.split_to(total).freeze();
            let payload = bytes.split_off(FrameHeader::LEN);
            let frame = Frame::decode(header, payload).expect("the connection writes valid frames");
            self.on_frame(&frame);
            self.frames.push(frame);
        }
        n
    }

    fn on_frame(&mut self, frame: &Frame) {
        match frame {
            Frame::Headers(h) => {
                let mut block = BytesMut::from(&h.fragment[..]);
                if h.end_headers {
                    self.decode_block(h.stream, h.end_stream, block.split().freeze());
                } else {
                    self.assembling = Some((h.stream, h.end_stream, block));
                }
            }
            Frame::Continuation(c) => {
                let (stream, end_stream, mut block) =
                    self.assembling.take().expect("CONTINUATION after HEADERS");
                assert_eq!(stream, c.stream);
                block.extend_from_slice(&c.fragment);
                if c.end_headers {
                    self.decode_block(stream, end_stream, block.freeze());
                } else {
                    self.assembling = Some((stream, end_stream, block));
                }
            }
            _ => assert!(self.assembling.is_none(), "frame inside a header block"),
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
            .expect("the connection writes valid HPACK");
        self.blocks.push(Block {
            stream,
            end_stream,
            fields,
        });
    }

    /// Drains the connection's events into `self.events`; returns how many arrived.
    pub fn poll_events(&mut self) -> usize {
        let mut n = 0;
        while let Some(event) = self.conn.poll_event() {
            self.events.push(event);
            n += 1;
        }
        n
    }

    /// Flushes output and events.
    pub fn pump(&mut self) {
        self.flush();
        self.poll_events();
    }

    /// The GOAWAY frames the connection wrote: (last stream, code).
    pub fn goaways(&self) -> Vec<(StreamId, ErrorCode)> {
        self.frames
            .iter()
            .filter_map(|f| match f {
                Frame::GoAway(g) => Some((g.last_stream, g.code)),
                _ => None,
            })
            .collect()
    }

    /// The RST_STREAM frames the connection wrote: (stream, code).
    pub fn resets(&self) -> Vec<(StreamId, ErrorCode)> {
        self.frames
            .iter()
            .filter_map(|f| match f {
                Frame::RstStream(r) => Some((r.stream, r.code)),
                _ => None,
            })
            .collect()
    }

    /// `Some(error)` once the connection reported `Event::Closed`.
    pub fn closed(&self) -> Option<Option<ConnectionError>> {
        self.events.iter().find_map(|e| match e {
            Event::Closed { error } => Some(error.clone()),
            _ => None,
        })
    }

    /// The header blocks written on `stream`.
    pub fn blocks_on(&self, stream: u32) -> Vec<&Block> {
        self.blocks
            .iter()
            .filter(|b| b.stream == StreamId(stream))
            .collect()
    }

    /// The final (END_STREAM) header block of `stream`, if written.
    pub fn final_block(&self, stream: u32) -> Option<&Block> {
        self.blocks
            .iter()
            .rev()
            .find(|b| b.stream == StreamId(stream) && b.end_stream)
    }

    /// Server: the streams reported by `Event::CallStarted`, in order.
    pub fn started(&self) -> Vec<StreamId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::CallStarted { stream, .. } => Some(*stream),
                _ => None,
            })
            .collect()
    }

    /// Client application: starts a unary call on `path` (head, one message, half-close) and
    /// flushes it; returns its stream.
    pub fn start_unary(&mut self, path: &str) -> u32 {
        let id = self
            .conn
            .start_call(
                anygrpc_core::CallRequest::new(path.to_string(), "test.local"),
                self.now,
            )
            .expect("start_call");
        self.conn
            .send_message(id, Bytes::from_static(b"ping"), false)
            .expect("send_message");
        self.conn.finish_sending(id).expect("finish_sending");
        self.pump();
        id.0
    }

    /// Client: the statuses `Event::Finished` reported for `stream`, in order.
    pub fn finished(&self, stream: u32) -> Vec<anygrpc_core::Status> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Finished {
                    stream: s, status, ..
                } if *s == StreamId(stream) => Some(status.clone()),
                _ => None,
            })
            .collect()
    }

    /// Flushes, then asserts the connection ended with exactly one GOAWAY(`code`) as the last
    /// frame it wrote, reported `Event::Closed` with a protocol error of that code, and is
    /// quiet afterwards (more input changes nothing).
    #[track_caller]
    pub fn assert_connection_error(&mut self, code: ErrorCode) {
        self.pump();
        let goaways = self.goaways();
        assert_eq!(
            goaways.iter().map(|g| g.1).collect::<Vec<_>>(),
            vec![code],
            "GOAWAYs written; frames: {:?}",
            self.frames
        );
        assert!(
            matches!(self.frames.last(), Some(Frame::GoAway(_))),
            "GOAWAY is the last frame"
        );
        match self.closed() {
            Some(Some(ConnectionError::Protocol { code: c, .. })) => assert_eq!(c, code),
            other => panic!(
                "expected Closed(Protocol {code:?}), got {other:?}; events {:?}",
                self.events
            ),
        }
        assert!(self.conn.is_closed());
        assert_eq!(self.conn.poll_timeout(), None, "no timer after close");
        // Anything more is ignored: no output, no event.
        self.send_ping([9; 8]);
        assert_eq!(self.flush(), 0);
        assert_eq!(self.poll_events(), 0);
    }

    /// Flushes, then asserts the connection is still open and wrote no GOAWAY.
    #[track_caller]
    pub fn assert_open(&mut self) {
        self.pump();
        assert!(self.goaways().is_empty(), "GOAWAY: {:?}", self.goaways());
        assert!(self.closed().is_none(), "closed: {:?}", self.closed());
    }
}

/// The header list size RFC 9113 §6.5.2 counts: name + value + 32 per field.
pub fn list_size(fields: &[(String, String)]) -> usize {
    fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum()
}
