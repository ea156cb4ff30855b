//! Attacks on the server's resources rather than its parser: a client that never reads what
//! it asked for, thousands of idle connections, and slowloris peers that never finish their
//! handshake. The server holds a bounded amount for each and keeps serving fresh calls.

use std::time::Duration;

use anygrpc::Config;
use anygrpc_core::frame::{Frame, FrameType, Settings, flags};
use anygrpc_core::{CLIENT_PREFACE, ErrorCode};
use bytes::BytesMut;
use futures_util::future::join;
use prost::Message as _;

use super::alloc::{self, Watermark};
use super::peer::{Peer, grpc_message, plain_block, raw_frame, request_fields};
use super::service::{COUNT, ECHO, Ping};
use super::{Env, off_thread};

/// What a stalled stream may make the server hold: the peer's window (64 KiB), the stream's
/// send buffer (`max_send_buffer`, 1 MiB) and the handler's messages sent ahead (16 × 16 KiB),
/// with room for the rest of the process (measured: about 1.6 MiB on each executor).
const STALLED_BOUND: usize = (5 << 20) / 2;

/// Idle connections opened at once.
const IDLE_CONNECTIONS: usize = 2_000;

/// What one idle connection may cost, both ends counted (the raw peer's socket and HPACK
/// tables, the server's driver with its 16 KiB read buffer, its `Connection`). Measured: about
/// 20 KB (67 KB while the driver's read buffer was a fixed 64 KiB).
const IDLE_CONNECTION_BOUND: usize = 48 << 10;

/// Asks on stream 1 for 10,000 replies of 16 KB each: 160 MB if nothing held the server back.
pub(crate) fn request_160_mb(peer: &mut Peer) {
    let request = Ping {
        text: "x".repeat(16_000),
        count: 10_000,
        ..Ping::default()
    };
    peer.send_request(1, COUNT, false);
    peer.send_data(1, &grpc_message(0, &request.encode_to_vec()), true);
}

/// A server-streaming call whose client never opens its window: the server sends what the
/// window allows, queues at most its send buffer, then waits; the call ends when the client
/// resets it. Meanwhile fresh calls are served.
pub async fn client_that_never_opens_its_window(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let mut peer = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        request_160_mb(&mut peer);
        // Read until the default window (65,535 bytes, never raised) is used up.
        let mut received = 0;
        peer.until("the window to fill", |frame, _| {
            if let Frame::Data(data) = frame {
                received += data.data.len();
            }
            (received >= 65_535).then_some(())
        });
        assert_eq!(received, 65_535, "the server respects the window");
        peer
    })
    .await;
    // Let the handler run into the send buffer.
    env.sleep(Duration::from_millis(300)).await;
    env.assert_serves(&srv).await;
    memory.assert_within(STALLED_BOUND, "a stream whose window never opens");
    off_thread(move || {
        peer.send_rst(1, ErrorCode::CANCEL);
        // Nothing more on that stream, and the connection lives.
        peer.send_ping([1; 8]);
        peer.until("the PING ACK", |frame, _| match frame {
            Frame::Ping(p) if p.ack => Some(()),
            Frame::Data(d) if d.stream.0 == 1 => panic!("DATA past the window: {d:?}"),
            _ => None,
        });
    })
    .await;
    srv.server.stop(None).await;
}

/// A raw client that opens every window wide, asks for 160 MB and stops reading; returned
/// once the server had half a second to run into full socket buffers and its own limits.
pub(crate) async fn stop_reading_after_160_mb(env: &Env, port: u16) -> Peer {
    let peer = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        peer.send_frame(&Frame::Settings(Settings {
            initial_window_size: Some(i32::MAX as u32),
            ..Settings::default()
        }));
        peer.send_window_update(0, i32::MAX as u32 - 65_535);
        request_160_mb(&mut peer);
        peer
    })
    .await;
    env.sleep(Duration::from_millis(500)).await;
    peer
}

/// A server-streaming call whose client opens every window wide and then stops reading the
/// socket: the server fills the kernel's buffers, then holds at most its send buffer and one
/// write batch, and waits. Memory stays bounded and fresh calls are served meanwhile.
pub async fn client_that_stops_reading_the_socket(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let peer = stop_reading_after_160_mb(&env, port).await;
    env.assert_serves(&srv).await;
    memory.assert_within(STALLED_BOUND, "a client that stops reading");
    drop(peer);
    srv.server.stop(None).await;
}

/// A client that ignores SETTINGS_MAX_CONCURRENT_STREAMS: the server refuses exactly the
/// streams over its limit (1,024) with REFUSED_STREAM (never processed, safe to retry), keeps
/// the others open, and serves a fresh call meanwhile.
pub async fn streams_over_the_concurrency_limit_are_refused(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let limit = Config::server().max_concurrent_streams;
    let extra = 50;
    let peer = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        // Requests that never end: each holds its stream open.
        for i in 0..limit + extra {
            peer.send_request(1 + 2 * i, ECHO, false);
        }
        let mut refused = Vec::new();
        peer.until("the refusals", |frame, _| {
            if let Frame::RstStream(rst) = frame {
                assert_eq!(rst.code, ErrorCode::REFUSED_STREAM, "{rst:?}");
                refused.push(rst.stream.0);
            }
            (refused.len() == extra as usize).then_some(())
        });
        let over: Vec<u32> = (limit..limit + extra).map(|i| 1 + 2 * i).collect();
        assert_eq!(refused, over, "exactly the streams over the limit");
        peer
    })
    .await;
    env.assert_serves(&srv).await;
    drop(peer);
    srv.server.stop(None).await;
}

/// Thousands of connections that complete their handshake and then do nothing: the server
/// keeps them (as gRPC servers do, without `max_connection_idle`) at a bounded cost each, and
/// serves a fresh call while they are open.
pub async fn thousands_of_idle_connections(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    let peers = off_thread(move || {
        (0..IDLE_CONNECTIONS)
            .map(|_| Peer::handshaken(port))
            .collect::<Vec<_>>()
    })
    .await;
    env.sleep(Duration::from_millis(100)).await;
    env.assert_serves(&srv).await;
    let per_connection = memory.peak_growth() / IDLE_CONNECTIONS;
    eprintln!(
        "{IDLE_CONNECTIONS} idle connections: {per_connection} bytes each at the peak, {} live",
        alloc::current()
    );
    memory.assert_within(
        IDLE_CONNECTIONS * IDLE_CONNECTION_BOUND,
        "thousands of idle connections",
    );
    drop(peers);
    srv.server.stop(None).await;
}

/// Slowloris in the handshake: a client that sends nothing, one that dribbles its preface
/// and never finishes it, and one that never acknowledges the server's SETTINGS. Each is
/// closed with GOAWAY(SETTINGS_TIMEOUT) once `settings_timeout` passed; fresh calls are served
/// meanwhile.
pub async fn slowloris_preface_is_closed_by_the_settings_timeout(env: Env) {
    let timeout = Duration::from_millis(500);
    let config = Config::server().settings_timeout(timeout);
    let srv = env.server_with(config).await;
    let port = srv.port;
    let started = std::time::Instant::now();
    let silent = off_thread(move || Peer::connect(port));
    let dribbling = off_thread(move || {
        let mut peer = Peer::connect(port);
        for byte in &CLIENT_PREFACE[..10] {
            peer.send(&[*byte]);
            std::thread::sleep(Duration::from_millis(40));
        }
        peer
    });
    let unacknowledging = off_thread(move || {
        let mut peer = Peer::connect(port);
        peer.send(CLIENT_PREFACE);
        let mut settings = BytesMut::new();
        Frame::Settings(Settings::default()).encode(&mut settings);
        peer.send(&settings);
        peer
    });
    let (silent, dribbling, unacknowledging) =
        futures_util::future::join3(silent, dribbling, unacknowledging).await;
    env.assert_serves(&srv).await;
    off_thread(move || {
        for mut peer in [silent, dribbling, unacknowledging] {
            peer.assert_goaway(ErrorCode::SETTINGS_TIMEOUT);
        }
        let took = started.elapsed();
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(2),
            "closed after {took:?}"
        );
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

/// Slowloris in a header block: after a clean handshake, one client dribbles CONTINUATIONs of
/// a block that never ends, another the bytes of a single HEADERS frame. Both are closed with
/// GOAWAY(ENHANCE_YOUR_CALM) once `header_block_timeout` passed, however they keep dribbling;
/// fresh calls are served meanwhile.
pub async fn slowloris_header_block_is_closed_by_the_header_block_timeout(env: Env) {
    let timeout = Duration::from_millis(500);
    let config = Config::server().header_block_timeout(timeout);
    let srv = env.server_with(config).await;
    let port = srv.port;
    let block = plain_block(&request_fields(ECHO));
    let fragments = block.clone();
    let in_continuations = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        peer.send(&raw_frame(FrameType::HEADERS, 0, 1, &fragments[..1]));
        peer
    });
    let frame = raw_frame(FrameType::HEADERS, flags::END_HEADERS, 1, &block);
    let in_one_frame = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        peer.send(&frame[..1]);
        (peer, frame)
    });
    let (mut continuations, (mut one_frame, frame)) = join(in_continuations, in_one_frame).await;
    let started = std::time::Instant::now();
    env.assert_serves(&srv).await;
    off_thread(move || {
        // A byte every 50 ms from both, for three times the timeout: never finished.
        for i in 1..30 {
            continuations.send_continuation(1, &block[i..=i], false);
            one_frame.send(&frame[i..=i]);
            std::thread::sleep(Duration::from_millis(50));
        }
        for mut peer in [continuations, one_frame] {
            assert!(peer.write_failed, "the server closed while it dribbled");
            peer.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
        }
        let took = started.elapsed();
        assert!(took < timeout * 3 + Duration::from_secs(1), "{took:?}");
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}
