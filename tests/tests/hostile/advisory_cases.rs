//! One case per 2026 HTTP/2 and gRPC advisory, against the real server (and the real
//! `Channel` where the advisory concerns a client): each names its advisory, asserts the code
//! the raw peer received or the call reported, that a fresh call is served afterwards, and
//! that memory stayed within a stated bound.
//!
//! The receive-memory cases (`one_byte_data_frames_stay_bounded`,
//! `many_streams_of_partial_messages_stay_bounded` and the client's
//! `one_byte_data_frames_in_a_response_stay_bounded`, `pinned_header_fields_stay_bounded`)
//! state the bound the receive budget (`Config::recv_budget`) keeps; each of them failed
//! before it, by two to fifty times.

use std::time::{Duration, Instant};

use anygrpc::{
    CallOptions, Code, Config, ServerCallDetails, ServerInterceptor, ServerNext, Status,
};
use anygrpc_core::frame::{Frame, FrameType, Settings, encode_data_header, flags};
use anygrpc_core::{ErrorCode, StreamId};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::join;
use prost::Message as _;

use super::alloc::{self, Watermark};
use super::client_cases::{accept_call, assert_code, call_raw_server};
use super::flood_cases::{FLOOD_BOUND, FLOOD_FRAMES, flood, repeated};
use super::h2_cases::assert_call_served;
use super::peer::{
    Next, Peer, RawListener, fields, grpc_message, hpack_literal, plain_block, raw_frame,
    raw_settings, request_fields, response_fields,
};
use super::resource_cases::stop_reading_after_160_mb;
use super::service::{ECHO, METADATA, Ping};
use super::{Env, off_thread};

// ---- Shared pieces ----

/// How long a peer waits for the PING ACK that shows everything before it was read.
const PING_LIMIT: Duration = Duration::from_secs(20);

/// The 5-byte gRPC prefix of an uncompressed message declaring `len` bytes.
fn declared(len: usize) -> [u8; 5] {
    let [a, b, c, d] = u32::try_from(len)
        .expect("a test-sized message")
        .to_be_bytes();
    [0, a, b, c, d]
}

/// The first bytes of an Echo request of exactly `total` bytes whose reply is 1 byte long:
/// `reply_bytes: 1`, then the tag and length of a `payload` that the zeros after it fill.
fn echo_head(total: usize) -> Vec<u8> {
    let mut head = vec![0x28, 0x01, 0x22];
    let fixed = head.len();
    let len = (1..=5)
        .map(|k| total - fixed - k)
        .find(|&len| fixed + prost::encoding::encoded_len_varint(len as u64) + len == total)
        .expect("a length whose varint fits");
    prost::encoding::encode_varint(len as u64, &mut head);
    head
}

/// Opens each of `streams` with an Echo request head and a DATA frame carrying the prefix
/// declaring `len` bytes and the message's [`echo_head`]. Returns the body bytes sent per
/// stream.
fn open_echo_streams(peer: &mut Peer, streams: &[u32], len: usize) -> usize {
    let head = echo_head(len);
    for &id in streams {
        peer.send_plain(id, &request_fields(ECHO), false);
        peer.send_data(id, &[&declared(len)[..], &head].concat(), false);
    }
    head.len()
}

/// Writes `frames` DATA frames of one zero byte each, round robin over `streams`, in batches
/// of 1,000 so that the writer holds little.
fn send_one_byte_frames(peer: &mut Peer, streams: &[u32], frames: usize) {
    let mut batch = BytesMut::with_capacity(10_000);
    for i in 0..frames {
        encode_data_header(StreamId(streams[i % streams.len()]), 1, false, &mut batch);
        batch.put_u8(0);
        if batch.len() >= 10_000 {
            peer.send(&batch);
            batch.clear();
        }
    }
    peer.send(&batch);
}

/// Sends `len` zero bytes on `stream` in 16 KiB DATA frames, the last with END_STREAM.
fn finish_with_zeros(peer: &mut Peer, stream: u32, mut len: usize) {
    let zeros = [0; 16 << 10];
    while len > 0 {
        let n = len.min(zeros.len());
        len -= n;
        peer.send_data(stream, &zeros[..n], len == 0);
    }
}

/// Writes a PING and reads until its ACK, so the other end has processed everything written
/// before it; returns how long that took. Panics on a GOAWAY, a reset, a close, or after
/// [`PING_LIMIT`].
fn ping_through(peer: &mut Peer) -> Duration {
    let started = Instant::now();
    peer.send_ping(*b"advisory");
    loop {
        match peer.next_within(Duration::from_millis(100)) {
            Some(Next::Frame(Frame::Ping(p))) if p.ack => return started.elapsed(),
            Some(Next::Frame(Frame::GoAway(g))) => panic!("GOAWAY instead of the PING ACK: {g:?}"),
            Some(Next::Frame(Frame::RstStream(r))) => panic!("a stream was reset: {r:?}"),
            Some(Next::Frame(_)) => {}
            Some(Next::Closed) => panic!("the connection closed before the PING ACK"),
            None => assert!(
                started.elapsed() < PING_LIMIT,
                "no PING ACK within {PING_LIMIT:?}"
            ),
        }
    }
}

/// Waits (at most 5 s) until the process holds at most 1 MiB more than `before`: what an
/// attack left is released before the case ends, so that the next case measures its own.
async fn settle(env: &Env, before: usize) {
    let give_up = Instant::now() + Duration::from_secs(5);
    while alloc::current() > before + (1 << 20) && Instant::now() < give_up {
        env.sleep(Duration::from_millis(20)).await;
    }
}

/// Reads everything until the other end closes; returns the GOAWAYs it sent.
fn goaways_until_closed(peer: &mut Peer) -> Vec<anygrpc_core::frame::GoAway> {
    let mut goaways = Vec::new();
    while let Next::Frame(frame) = peer.next() {
        if let Frame::GoAway(g) = frame {
            goaways.push(g);
        }
    }
    goaways
}

// ---- grpc-go CVE-2026-84304 (GO-2026-6348): 1-byte DATA frames ----

/// Streams in the 1-byte DATA frame cases.
const TINY_STREAMS: u32 = 20;
/// The message each declares: just under 1 MiB, so that with its prefix it fits the default
/// stream window (1 MiB) and needs no WINDOW_UPDATE.
const TINY_MESSAGE: usize = (1 << 20) - 5;
/// 1-byte DATA frames of the bounded part: 500 a stream, 10 KB of payload, under the sliver
/// budget (one frame per KiB of the 16 MiB connection window: 16,384).
const TINY_FRAMES: usize = 10_000;
/// 1-byte DATA frames of the flood: far more than the sliver budget.
const TINY_FLOOD: usize = 200_000;
/// What the 1-byte frames may make the process hold: the payload itself, a 4 KiB reassembly
/// buffer per stream, the read buffer, the state of 20 calls and the rest of the process (a
/// few hundred KB in the other cases). A receiver that keeps each frame as its own chunk, or
/// each chunk's read buffer alive, holds tens of bytes per frame more: 15 MB for 200,000
/// frames, measured before the fix.
const TINY_FRAMES_BOUND: usize = 4 << 20;

/// grpc-go CVE-2026-84304: 20 streams each declare a message of 1 MiB and send 500 bytes of it
/// as 1-byte DATA frames. Every frame is legal and within the windows: the server takes them
/// all (it answers the PING written after them), holds about the payload, and stream 1,
/// finished with larger frames, is answered with `grpc-status: 0`. On a second connection the
/// same frames keep coming, 200,000 of them: past the sliver budget the server closes it with
/// GOAWAY(ENHANCE_YOUR_CALM), still holding little.
pub async fn one_byte_data_frames_stay_bounded(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let before = alloc::current();
    let (peer, took) = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let streams: Vec<u32> = (0..TINY_STREAMS).map(|i| 1 + 2 * i).collect();
        let head = open_echo_streams(&mut peer, &streams, TINY_MESSAGE);
        let started = Instant::now();
        send_one_byte_frames(&mut peer, &streams, TINY_FRAMES);
        ping_through(&mut peer);
        let took = started.elapsed();
        // The bytes arrived in order: the message decodes and is echoed.
        let per_stream = TINY_FRAMES / streams.len();
        finish_with_zeros(&mut peer, 1, TINY_MESSAGE - head - per_stream);
        let end = peer.end_of(1);
        assert_eq!(end.get("grpc-status"), Some("0"), "{end:?}");
        // The flood, on a connection of its own.
        let mut flooder = Peer::handshaken(port);
        open_echo_streams(&mut flooder, &streams, TINY_MESSAGE);
        send_one_byte_frames(&mut flooder, &streams, TINY_FLOOD);
        let goaway = flooder.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
        assert_eq!(
            &goaway.debug[..],
            b"too many DATA frames that carry almost nothing"
        );
        (peer, took)
    })
    .await;
    eprintln!(
        "{TINY_FRAMES} 1-byte DATA frames over {TINY_STREAMS} streams, read in {took:?}, then a \
         flood of {TINY_FLOOD}: peak growth {} bytes",
        memory.peak_growth()
    );
    drop(peer);
    env.assert_serves_then_stop(&srv).await;
    settle(&env, before).await;
    memory.assert_within(TINY_FRAMES_BOUND, "1-byte DATA frames");
}

// ---- The many-streams attack: partial messages on every stream ----

/// Streams opened: just under the server's concurrency limit (1,024).
const MANY_STREAMS: u32 = 1_000;
/// The message each declares: just under `max_recv_message_size` (4 MiB).
const MANY_MESSAGE: usize = (4 << 20) - 1024;
/// How long the peer sends.
const MANY_SECONDS: Duration = Duration::from_secs(2);
/// What 1,000 streams of unfinished messages may make the process hold: a server that bounds
/// what it buffers per connection (the target: 64 MiB) stops granting credit there;
/// the raw peer and the rest of the process add a few MiB.
const MANY_STREAMS_BOUND: usize = 64 << 20;
/// The peer stops once the process grew by this much, so that a server without a bound fails
/// the case instead of exhausting the machine.
const MANY_STREAMS_CAP: usize = 4 * MANY_STREAMS_BOUND;

/// What the many-streams peer saw.
#[derive(Debug, Default)]
struct ManyStreams {
    sent: usize,
    elapsed: Duration,
    resets: Vec<(u32, ErrorCode)>,
    goaway: Option<ErrorCode>,
    closed: bool,
    stalled: bool,
    capped: bool,
}

/// The many-streams attack: 1,000 streams each declare a message of just under 4 MiB
/// and send its body as far as the windows allow (WINDOW_UPDATEs honoured) for 2 s, never
/// finishing it. The peer stays within every window, so the server must not see a
/// flow-control error; it may stop granting credit or end the connection with
/// ENHANCE_YOUR_CALM, and it holds at most [`MANY_STREAMS_BOUND`].
pub async fn many_streams_of_partial_messages_stay_bounded(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let before = alloc::current();
    let (peer, seen) = off_thread(move || {
        let base = alloc::current();
        let mut peer = Peer::handshaken(port);
        let streams: Vec<u32> = (0..MANY_STREAMS).map(|i| 1 + 2 * i).collect();
        let head = open_echo_streams(&mut peer, &streams, MANY_MESSAGE);
        let opening = (5 + head) as i64;
        let mut seen = ManyStreams {
            sent: streams.len() * (5 + head),
            ..ManyStreams::default()
        };
        // Each stream: its send window and the body bytes left (the last is never sent).
        let initial = i64::from(Config::server().initial_stream_window);
        let mut windows = vec![initial - opening; streams.len()];
        let mut left = vec![MANY_MESSAGE - head - 1; streams.len()];
        let mut open = vec![true; streams.len()];
        let mut connection = 65_535 - opening * streams.len() as i64;
        let (zeros, mut out) = ([0; 16 << 10], BytesMut::new());
        let (started, mut credited, mut cursor) = (Instant::now(), Instant::now(), 0);
        let mut blocked = false;
        'attack: while started.elapsed() < MANY_SECONDS {
            if alloc::current().saturating_sub(base) > MANY_STREAMS_CAP {
                seen.capped = true;
                break;
            }
            let mut wait = Duration::from_millis(if blocked { 50 } else { 1 });
            while let Some(frame) = peer.next_within(wait) {
                wait = Duration::from_millis(1);
                match frame {
                    Next::Frame(Frame::WindowUpdate(w)) => {
                        credited = Instant::now();
                        match w.stream.0 {
                            0 => connection += i64::from(w.increment),
                            id => windows[(id / 2) as usize] += i64::from(w.increment),
                        }
                    }
                    Next::Frame(Frame::RstStream(r)) => {
                        open[(r.stream.0 / 2) as usize] = false;
                        seen.resets.push((r.stream.0, r.code));
                    }
                    Next::Frame(Frame::GoAway(g)) => {
                        seen.goaway = Some(g.code);
                        break 'attack;
                    }
                    Next::Frame(_) => {}
                    Next::Closed => {
                        seen.closed = true;
                        break 'attack;
                    }
                }
            }
            // Up to 1 MiB of body in one write, round robin over the streams with credit.
            out.clear();
            let mut batch = 0;
            for _ in 0..streams.len() {
                let i = cursor;
                cursor = (cursor + 1) % streams.len();
                let n = (zeros.len() as i64)
                    .min(windows[i])
                    .min(connection)
                    .min(left[i] as i64);
                if !open[i] || n <= 0 {
                    continue;
                }
                encode_data_header(StreamId(streams[i]), n as u32, false, &mut out);
                out.put_slice(&zeros[..n as usize]);
                windows[i] -= n;
                connection -= n;
                left[i] -= n as usize;
                batch += n as usize;
                if batch >= 1 << 20 {
                    break;
                }
            }
            peer.send(&out);
            seen.sent += batch;
            blocked = batch == 0;
            if peer.write_failed {
                seen.closed = true;
                break;
            }
            if blocked && credited.elapsed() > Duration::from_millis(500) {
                seen.stalled = true;
                break;
            }
        }
        seen.elapsed = started.elapsed();
        (peer, seen)
    })
    .await;
    eprintln!(
        "{MANY_STREAMS} streams of partial messages: {seen:?}; peak growth {} bytes",
        memory.peak_growth()
    );
    assert!(
        seen.goaway
            .is_none_or(|code| code == ErrorCode::ENHANCE_YOUR_CALM),
        "the peer stayed within the windows: {seen:?}"
    );
    assert!(
        seen.resets.iter().all(|(_, code)| ![
            ErrorCode::FLOW_CONTROL_ERROR,
            ErrorCode::PROTOCOL_ERROR
        ]
        .contains(code)),
        "the peer stayed within the windows: {seen:?}"
    );
    drop(peer);
    env.assert_serves_then_stop(&srv).await;
    settle(&env, before).await;
    memory.assert_within(MANY_STREAMS_BOUND, "1,000 streams of partial messages");
}

// ---- grpc-go GO-2026-6061: control frames from a client that does not read ----

/// SETTINGS frames in the burst: under the idle-frame burst (1,000), so that budget alone
/// does not end it.
const BURST_SETTINGS: usize = 900;
/// Streams the burst makes the server reset (a zero WINDOW_UPDATE each): under the reset
/// burst (200).
const BURST_RESETS: u32 = 150;
/// DATA the peer reads, once it reads again, before the server's answer must have come: the
/// kernel's socket buffers and the server's send buffer, many times over.
const DATA_BEFORE_ANSWER: usize = 64 << 20;
/// What the stalled connection and its queued answers may cost: a stalled stream's bound
/// (2.5 MiB, see `resource_cases`), plus 1,050 queued control frames and 150 calls' state.
const CONTROL_BOUND: usize = 4 << 20;

/// GO-2026-6061: a client opens its windows, asks for 160 MB and stops reading; once the
/// server's writes are stuck, it writes 900 SETTINGS and 150 streams that each provoke a
/// RST_STREAM: 1,050 answers the server would queue, each within its budget, together over
/// `max_pending_control_frames` (1,024). The server ends the connection with
/// GOAWAY(ENHANCE_YOUR_CALM) (or just closes it) instead of queueing without end; memory
/// stays bounded and fresh calls are served meanwhile.
pub async fn control_frames_while_not_reading(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let peer = stop_reading_after_160_mb(&env, port).await;
    let mut peer = off_thread(move || {
        let mut peer = peer;
        let mut burst = BytesMut::new();
        for _ in 0..BURST_SETTINGS {
            Frame::Settings(Settings::default()).encode(&mut burst);
        }
        let block = plain_block(&request_fields(ECHO));
        for i in 0..BURST_RESETS {
            let id = 3 + 2 * i;
            burst.extend_from_slice(&raw_frame(
                FrameType::HEADERS,
                flags::END_HEADERS,
                id,
                &block,
            ));
            burst.extend_from_slice(&raw_frame(FrameType::WINDOW_UPDATE, 0, id, &[0; 4]));
        }
        peer.send(&burst);
        peer
    })
    .await;
    env.sleep(Duration::from_millis(300)).await;
    env.assert_serves(&srv).await;
    let (goaway, data) = off_thread(move || {
        // Reading again: what the server had queued, then its answer.
        let mut data = 0;
        loop {
            match peer.next() {
                Next::Frame(Frame::Data(d)) => {
                    data += d.data.len();
                    assert!(data < DATA_BEFORE_ANSWER, "{data} bytes and no answer");
                }
                Next::Frame(Frame::GoAway(g)) => {
                    peer.assert_closes();
                    return (Some(g), data);
                }
                Next::Frame(_) => {}
                Next::Closed => return (None, data),
            }
        }
    })
    .await;
    eprintln!("control frames while not reading: {goaway:?} after {data} bytes of DATA");
    if let Some(goaway) = goaway {
        assert_eq!(goaway.code, ErrorCode::ENHANCE_YOUR_CALM, "{goaway:?}");
        assert_eq!(
            &goaway.debug[..],
            b"too many queued control frames",
            "{goaway:?}"
        );
    }
    memory.assert_within(CONTROL_BOUND, "control frames while not reading");
    env.assert_serves_then_stop(&srv).await;
}

// ---- Go x/net CVE-2026-27141: unknown frame types ----

/// The frame types sent: 0x0a–0x0f (ALTSVC, ORIGIN, PRIORITY_UPDATE and unassigned, which
/// crashed x/net/http2) and a few more that no registry assigns to anything we know.
const UNKNOWN_TYPES: [u8; 10] = [0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x2a, 0xa5, 0xff];

/// Go x/net CVE-2026-27141: frames of unknown types, on stream 0, on the open stream of a call
/// and on an idle stream, empty or not, any flags, interleaved with the call's frames, are
/// ignored (RFC 9113 §5.5): the call succeeds and the connection serves another. A flood of
/// them spends the idle-frame budget: GOAWAY(ENHANCE_YOUR_CALM).
pub async fn unknown_frame_types_are_ignored(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let unknowns = |stream: u32| {
            let mut bytes = BytesMut::new();
            for (i, kind) in UNKNOWN_TYPES.into_iter().enumerate() {
                let payload = vec![kind; [0, 1, 64, 16_384][i % 4]];
                let flags = if i % 2 == 0 { 0 } else { 0xff };
                bytes.extend_from_slice(&raw_frame(FrameType(kind), flags, stream, &payload));
            }
            bytes
        };
        let request = Ping::text("past the unknown frames").encode_to_vec();
        peer.send(&unknowns(0));
        peer.send_plain(1, &request_fields(ECHO), false);
        peer.send(&unknowns(1));
        peer.send(&unknowns(99));
        peer.send_data(1, &grpc_message(0, &request), false);
        peer.send(&unknowns(1));
        peer.send(&unknowns(0));
        peer.send_data(1, &[], true);
        let end = peer.end_of(1);
        assert_eq!(end.get("grpc-status"), Some("0"), "{end:?}");
        assert_call_served(&mut peer, 3);
    })
    .await;
    memory.assert_within(FLOOD_BOUND, "unknown frame types");
    env.assert_serves_then_stop(&srv).await;

    let unknown = raw_frame(FrameType(0x0b), 0, 0, &[]);
    let why = flood(
        &env,
        Config::server(),
        "unknown frame type flood",
        |_| {},
        move || repeated(&unknown, FLOOD_FRAMES),
    )
    .await;
    assert_eq!(why, b"too many frames that do no work");
}

// ---- Go x/net CVE-2026-33814: SETTINGS_MAX_FRAME_SIZE of 0 ----

/// What two connections refused for their SETTINGS, or one small call, may cost the process:
/// the server's or the client's connection state and the raw peer (measured: up to 0.65 MiB
/// for the client's two channels).
const SETTINGS_BOUND: usize = 1 << 20;

/// Reads until the GOAWAY, counting the CONTINUATION frames before it (a peer that accepted a
/// frame size of 0 would split its header blocks into empty CONTINUATIONs without end).
fn goaway_counting_continuations(peer: &mut Peer) -> (anygrpc_core::frame::GoAway, usize) {
    let mut continuations = 0;
    let goaway = peer.until("GOAWAY", |frame, _| match frame {
        Frame::Continuation(_) => {
            continuations += 1;
            None
        }
        Frame::GoAway(g) => Some(g.clone()),
        _ => None,
    });
    (goaway, continuations)
}

/// Go x/net CVE-2026-33814: SETTINGS_MAX_FRAME_SIZE of 0, or of 16,383, is a connection
/// PROTOCOL_ERROR (RFC 9113 §6.5.2: 2^14 ..= 2^24-1), even with a call's answer ready to be
/// framed; no CONTINUATION is written.
pub async fn max_frame_size_zero_is_protocol_error(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    for value in [0, 16_383] {
        off_thread(move || {
            let mut peer = Peer::handshaken(port);
            peer.send_unary(1, ECHO, &Ping::text("frame me").encode_to_vec());
            peer.send(&raw_settings(&[(0x5, value)]));
            let (goaway, continuations) = goaway_counting_continuations(&mut peer);
            assert_eq!(
                goaway.code,
                ErrorCode::PROTOCOL_ERROR,
                "MAX_FRAME_SIZE={value}"
            );
            assert_eq!(continuations, 0, "MAX_FRAME_SIZE={value}");
            peer.assert_closes();
        })
        .await;
    }
    memory.assert_within(SETTINGS_BOUND, "SETTINGS_MAX_FRAME_SIZE of 0");
    env.assert_serves_then_stop(&srv).await;
}

/// Go x/net CVE-2026-33814, the client's side (the advisory's): a server announcing
/// SETTINGS_MAX_FRAME_SIZE of 0 (or 16,383) gets GOAWAY(PROTOCOL_ERROR) and no CONTINUATION;
/// the call fails with UNAVAILABLE.
pub async fn max_frame_size_zero_from_a_server_is_protocol_error(env: Env) {
    let memory = Watermark::start();
    for value in [0, 16_383] {
        let result = call_raw_server(&env, move |peer| {
            peer.send(&raw_settings(&[(0x5, value)]));
            let (goaway, continuations) = goaway_counting_continuations(peer);
            assert_eq!(
                goaway.code,
                ErrorCode::PROTOCOL_ERROR,
                "MAX_FRAME_SIZE={value}"
            );
            assert_eq!(continuations, 0, "MAX_FRAME_SIZE={value}");
        })
        .await;
        assert_code(result, Code::Unavailable);
    }
    memory.assert_within(SETTINGS_BOUND, "SETTINGS_MAX_FRAME_SIZE of 0 from a server");
}

// ---- netty CVE-2026-33871: empty CONTINUATION frames ----

/// How long the server may take to refuse the empty CONTINUATION flood (debug build).
const EMPTY_CONTINUATION_LIMIT: Duration = Duration::from_secs(2);

/// netty CVE-2026-33871: a HEADERS without END_HEADERS, then 20,000 zero-length CONTINUATIONs.
/// They add nothing to the block, so the size bound of `continuation_flood_is_enhance_your_calm`
/// never trips; each spends the idle-frame budget instead, which ends the connection with
/// GOAWAY(ENHANCE_YOUR_CALM) at once, within [`FLOOD_BOUND`].
pub async fn empty_continuation_flood_is_enhance_your_calm(env: Env) {
    let started = Instant::now();
    let why = flood(
        &env,
        Config::server(),
        "empty CONTINUATION flood",
        |_| {},
        || {
            let block = plain_block(&request_fields(ECHO));
            let mut bytes = BytesMut::from(&raw_frame(FrameType::HEADERS, 0, 1, &block[..8])[..]);
            let empty = raw_frame(FrameType::CONTINUATION, 0, 1, &[]);
            bytes.extend_from_slice(&repeated(&empty, 10 * FLOOD_FRAMES));
            bytes
        },
    )
    .await;
    assert_eq!(why, b"too many frames that do no work");
    let took = started.elapsed();
    assert!(took < EMPTY_CONTINUATION_LIMIT, "{took:?}");
}

// ---- python-hyper h2 CVE-2026-71554: duplicate Host fields ----

/// What the duplicate-host requests may make the process hold: their raw blocks (under 200 KB)
/// and decoded lists (under 1 MiB, the raised limit), and the rest of the process.
const HOST_BOUND: usize = 4 << 20;
/// How long one such request may take to be refused (debug build): no quadratic work.
const HOST_LIMIT: Duration = Duration::from_millis(500);

/// A request head followed by `n` `host` fields of `127.0.0.1` (the `:authority`): the first a
/// literal added to the dynamic table, the others one byte each, indexing it.
fn hosts_same(n: usize) -> Vec<u8> {
    let mut block = BytesMut::from(&plain_block(&request_fields(ECHO))[..]);
    hpack_literal(b"host", b"127.0.0.1", true, &mut block);
    // Index 62: the newest dynamic-table entry (RFC 7541 §2.3.3).
    block.extend(std::iter::repeat_n(0x80 | 62, n - 1));
    block.to_vec()
}

/// A request head followed by `n` `host` fields, all different.
fn hosts_differing(n: usize) -> Vec<u8> {
    let mut request = request_fields(ECHO);
    request.extend((0..n).map(|i| ("host".to_string(), format!("h{i}.example"))));
    plain_block(&request).to_vec()
}

/// python-hyper h2 CVE-2026-71554: a request with more than one `host` field, or one that
/// differs from `:authority`, is malformed (RFC 9110 §7.2, RFC 9113 §8.3.1): RST_STREAM
/// (PROTOCOL_ERROR), never forwarded. With the header list limit raised to 1 MiB so that 10,000
/// duplicates reach the parser, each is refused within [`HOST_LIMIT`] (no quadratic work) and
/// memory stays within [`HOST_BOUND`]; the connection then serves a call.
pub async fn duplicate_host_headers(env: Env) {
    let config = Config::server().max_header_list_size(1 << 20);
    let srv = env.server_with(config).await;
    let port = srv.port;
    let memory = Watermark::start();
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let mut differing = request_fields(ECHO);
        differing.extend(fields(&[("host", "other.example")]));
        let requests = [
            (
                "one host differing from :authority",
                plain_block(&differing).to_vec(),
            ),
            ("2 host fields, same value", hosts_same(2)),
            ("1,000 host fields, same value", hosts_same(1_000)),
            ("10,000 host fields, same value", hosts_same(10_000)),
            ("1,000 host fields, differing", hosts_differing(1_000)),
            ("10,000 host fields, differing", hosts_differing(10_000)),
        ];
        let mut stream = 1;
        for (what, block) in requests {
            let started = Instant::now();
            peer.send_block(stream, &block, false);
            peer.send_data(stream, &grpc_message(0, b""), true);
            assert_eq!(peer.reset_of(stream), ErrorCode::PROTOCOL_ERROR, "{what}");
            let took = started.elapsed();
            eprintln!("{what}: refused in {took:?}");
            assert!(took < HOST_LIMIT, "{what}: refused after {took:?}");
            stream += 2;
        }
        assert_call_served(&mut peer, stream);
    })
    .await;
    memory.assert_within(HOST_BOUND, "duplicate host fields");
    env.assert_serves_then_stop(&srv).await;
}

// ---- nghttp2 CVE-2026-27135: frames after a connection error ----

/// nghttp2 CVE-2026-27135: once a connection error is found, what the peer wrote after it is
/// not processed. Each of three connection errors (DATA on stream 0, a flood of extension
/// frames spending the idle-frame budget, a broken HPACK block) is followed in the same write
/// by frames that would be FRAME_SIZE_ERRORs, and more: the server sends exactly one GOAWAY,
/// with the first error's code, closes, and keeps serving.
pub async fn malformed_frame_after_a_connection_error_is_ignored(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let unknown = raw_frame(FrameType(0x0a), 0, 0, &[]);
    let first_errors: [(ErrorCode, Bytes); 3] = [
        (
            ErrorCode::PROTOCOL_ERROR,
            raw_frame(FrameType::DATA, 0, 0, b"abc"),
        ),
        (
            ErrorCode::ENHANCE_YOUR_CALM,
            repeated(&unknown, FLOOD_FRAMES).freeze(),
        ),
        (
            ErrorCode::COMPRESSION_ERROR,
            raw_frame(FrameType::HEADERS, flags::END_HEADERS, 1, &[0x80]),
        ),
    ];
    let size_errors = [
        raw_frame(FrameType::PING, 0, 0, &[0; 7]),
        raw_frame(FrameType::SETTINGS, 0, 0, &[0; 5]),
        raw_frame(FrameType::WINDOW_UPDATE, 0, 0, &[0; 3]),
        raw_frame(FrameType::RST_STREAM, 0, 1, &[0; 3]),
        raw_frame(FrameType::PRIORITY, 0, 1, &[0; 4]),
    ];
    for (code, first) in first_errors {
        for after in &size_errors {
            let (first, after) = (first.clone(), after.clone());
            off_thread(move || {
                let mut peer = Peer::handshaken(port);
                let mut burst = BytesMut::from(&first[..]);
                burst.extend_from_slice(&repeated(&after, 100));
                // A frame header announcing more than any frame size, then garbage.
                burst.extend_from_slice(&[0xff, 0xff, 0xff, 0x00, 0x00, 0, 0, 0, 1]);
                burst.extend_from_slice(&[0xa5; 64]);
                peer.send(&burst);
                let goaways = goaways_until_closed(&mut peer);
                let codes: Vec<ErrorCode> = goaways.iter().map(|g| g.code).collect();
                assert_eq!(codes, [code], "{goaways:?} after {code:?} then {after:?}");
            })
            .await;
        }
    }
    memory.assert_within(FLOOD_BOUND, "frames after a connection error");
    env.assert_serves_then_stop(&srv).await;
}

// ---- grpc-go CVE-2026-84445 (GO-2026-6443): no :authority and no Host ----

/// grpc-go CVE-2026-84445: a request with neither `:authority` nor `host`, which RFC 9113
/// §8.3.1 allows, crashed grpc-go's xDS servers. anygrpc routes on `:path` alone: such a call
/// is served, and the connection serves the next.
pub async fn request_without_authority_or_host_is_served(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let mut head = request_fields(ECHO);
        head.retain(|(name, _)| name != ":authority");
        peer.send_plain(1, &head, false);
        peer.send_data(
            1,
            &grpc_message(0, &Ping::text("nobody").encode_to_vec()),
            true,
        );
        let end = peer.end_of(1);
        assert_eq!(end.get("grpc-status"), Some("0"), "{end:?}");
        assert_call_served(&mut peer, 3);
    })
    .await;
    memory.assert_within(SETTINGS_BOUND, "a request without authority");
    env.assert_serves_then_stop(&srv).await;
}

// ---- grpc-go CVE-2026-33186: :path not in canonical form ----

/// A path-based authorization policy: calls to [`METADATA`] are refused.
#[derive(Debug)]
struct DenyMetadata;

impl ServerInterceptor for DenyMetadata {
    fn intercept(
        &self,
        call: ServerCallDetails,
        next: ServerNext,
    ) -> anygrpc::BoxFuture<'_, Status> {
        if call.method == METADATA {
            return Box::pin(std::future::ready(Status::new(
                Code::PermissionDenied,
                "not for you",
            )));
        }
        next.run(call)
    }
}

/// grpc-go CVE-2026-33186: a `:path` without its leading `/` was routed to its method while
/// path-based authorization (written for `/service/method`) did not match it. With an
/// interceptor refusing `/e2e.Test/Metadata`, that path is PERMISSION_DENIED; without its
/// leading `/` the request is malformed and reset with PROTOCOL_ERROR before any interceptor
/// runs; every other spelling that is not exactly `/service/method` names no method:
/// UNIMPLEMENTED, so no handler runs that the policy did not see.
pub async fn non_canonical_paths_are_unimplemented(env: Env) {
    let srv = env.server().await;
    srv.server.add_interceptor(DenyMetadata);
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let canonical = METADATA.trim_start_matches('/');
        let (service, method) = canonical.split_once('/').expect("/service/method");
        // Without its leading `/` the request is malformed (RFC 9113 §8.3.1): reset before
        // any interceptor sees it.
        let mut stream = 1;
        peer.send_plain(stream, &request_fields(canonical), false);
        peer.send_data(stream, &grpc_message(0, b""), true);
        assert_eq!(
            peer.reset_of(stream),
            ErrorCode::PROTOCOL_ERROR,
            "{canonical}"
        );
        stream += 2;
        let paths = [
            (METADATA.to_string(), "7"),
            (format!("//{canonical}"), "12"),
            (format!("{METADATA}/"), "12"),
            (format!("/{service}//{method}"), "12"),
            (format!("{METADATA}?x=1"), "12"),
        ];
        let mut answers = Vec::new();
        for (path, _) in &paths {
            peer.send_plain(stream, &request_fields(path), false);
            peer.send_data(stream, &grpc_message(0, b""), true);
            let end = peer.end_of(stream);
            answers.push(end.get("grpc-status").unwrap_or("none").to_string());
            stream += 2;
        }
        let expected: Vec<_> = paths.iter().map(|(_, code)| code.to_string()).collect();
        assert_eq!(answers, expected, "grpc-status for each of {paths:?}");
        assert_call_served(&mut peer, stream);
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

// ---- HTTP/2 Bomb (CVE-2026-49975, Envoy CVE-2026-47774): tiny fields, pinned ----

/// Streams the bomb opens and leaves waiting for their message.
const BOMB_STREAMS: u32 = 1_000;
/// Fields of `x-b` with an empty value in each request: as many as the header list limit
/// (16 KiB at 32 + 3 bytes each, after the request's own 290) admits, one byte each on the wire.
const BOMB_FIELDS: usize = 450;
/// What 1,000 open calls with 450 one-byte fields each may make the server hold. RFC 9113
/// counts the fields as 16 MB; the server keeps about 90 bytes a field, 41 MB for all of them
/// (measured before the receive budget). The budget charges what a field really costs and
/// stops reading at 32 MiB: that, the calls' own state (a few KiB each, not charged), the raw
/// peer and the rest of the process. The peak depends on how far the server read when the
/// budget stopped it: on tokio current-thread it measured 34.8, 39.1 or 41.8 MB at 7c2194e
/// (the old bound, 40 MiB, was 0.1 MB above the top one) and 0.1 MB more with interceptor
/// and codec state per call; the bound leaves 4 MB above that.
const BOMB_BOUND: usize = 44 << 20;

/// The HTTP/2 Bomb (CVE-2026-49975 in Apache httpd, CVE-2026-47774 in Envoy): each request's
/// header block indexes one tiny dynamic-table entry hundreds of times (600 bytes on the wire
/// decode to 16 KiB of fields, under the header list limit), and the calls stay open so that
/// what the fields cost stays pinned. The server takes heads until their cost fills its
/// receive budget and then reads no more of that connection: it holds at most
/// [`BOMB_BOUND`], and serves a fresh call meanwhile.
pub async fn pinned_header_fields_stay_bounded(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let before = alloc::current();
    let peer = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let mut burst = BytesMut::new();
        for i in 0..BOMB_STREAMS {
            let mut block = BytesMut::from(&plain_block(&request_fields(ECHO))[..]);
            if i == 0 {
                hpack_literal(b"x-b", b"", true, &mut block);
            } else {
                block.put_u8(0x80 | 62);
            }
            // Index 62: the newest dynamic-table entry, `x-b` (RFC 7541 §2.3.3).
            block.extend(std::iter::repeat_n(0x80 | 62, BOMB_FIELDS - 1));
            burst.extend_from_slice(&raw_frame(
                FrameType::HEADERS,
                flags::END_HEADERS,
                1 + 2 * i,
                &block,
            ));
        }
        peer.send(&burst);
        drop(burst);
        peer
    })
    .await;
    // The server takes heads until they hold its receive budget, then stops reading this
    // connection: a PING written after them may never be answered. Others are served.
    env.sleep(Duration::from_millis(500)).await;
    env.assert_serves(&srv).await;
    eprintln!(
        "{BOMB_STREAMS} open calls of {BOMB_FIELDS} fields each: peak growth {} bytes",
        memory.peak_growth()
    );
    drop(peer);
    env.assert_serves_then_stop(&srv).await;
    settle(&env, before).await;
    memory.assert_within(BOMB_BOUND, "pinned header fields");
}

// ---- Client role: grpc-go CVE-2026-84304 in a response ----

/// grpc-go CVE-2026-84304, the client's side: a raw server answers the call with a head and a
/// message declaring just under 1 MiB, sent as 1-byte DATA frames (legal, within the client's
/// windows). 10,000 of them are read and held as what they carry (the client answers the
/// PING written after them); the flood that follows trips the client's sliver budget, which
/// closes the connection with GOAWAY(ENHANCE_YOUR_CALM): the call ends UNAVAILABLE.
pub async fn one_byte_data_frames_in_a_response_stay_bounded(env: Env) {
    let listener = RawListener::bind();
    let port = listener.port();
    let memory = Watermark::start();
    let before = alloc::current();
    let server = off_thread(move || {
        let mut peer = Peer::accept(&listener);
        let id = accept_call(&mut peer);
        peer.send_plain(id, &response_fields(), false);
        peer.send_data(id, &declared(TINY_MESSAGE), false);
        let started = Instant::now();
        send_one_byte_frames(&mut peer, &[id], TINY_FRAMES);
        ping_through(&mut peer);
        let took = started.elapsed();
        let held = alloc::current().saturating_sub(before);
        send_one_byte_frames(&mut peer, &[id], TINY_FLOOD);
        let goaway = peer.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
        assert_eq!(
            &goaway.debug[..],
            b"too many DATA frames that carry almost nothing"
        );
        (took, held)
    });
    let channel = env.channel(port);
    let call = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call_with(Ping::text("hi"), CallOptions::new().timeout(PING_LIMIT));
    let (result, (took, held)) = join(call, server).await;
    channel.close(None).await;
    eprintln!(
        "{TINY_FRAMES} 1-byte DATA frames in a response, read in {took:?} ({held} bytes more \
         held), then a flood of {TINY_FLOOD}: peak growth {} bytes",
        memory.peak_growth()
    );
    assert_code(result, Code::Unavailable);
    settle(&env, before).await;
    memory.assert_within(TINY_FRAMES_BOUND, "1-byte DATA frames in a response");
}
