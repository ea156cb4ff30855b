//! The known HTTP/2 attacks against the real server: each is written in one burst, ends with
//! the answer the core's budgets give (GOAWAY(ENHANCE_YOUR_CALM) for floods, a failed call for
//! the HPACK bomb), costs at most a stated amount of memory, and leaves the server serving.

use anygrpc::Config;
use anygrpc_core::frame::{Frame, FrameType, Settings, flags};
use anygrpc_core::{ErrorCode, StreamId};
use bytes::BytesMut;

use super::alloc::Watermark;
use super::h2_cases::assert_call_served;
use super::peer::{Peer, hpack_literal, plain_block, raw_frame, request_fields};
use super::service::ECHO;
use super::{Env, off_thread};

/// What one flood may make the whole process (server, raw peer, runtime) hold at its peak.
/// Measured: under 0.8 MiB for rapid reset (200 calls dispatched before the budget ran out),
/// 1.1 MiB for the CONTINUATION flood (all but 40 KB of it the raw peer's own burst, past the
/// 1 MiB block cap), under 0.4 MiB for the others.
pub const FLOOD_BOUND: usize = 2 << 20;

/// Frames well past the server's idle-frame burst (1,000).
pub(crate) const FLOOD_FRAMES: usize = 2_000;

/// Writes `burst` (after a handshake and whatever `opening` writes) and asserts the server
/// answers with GOAWAY(ENHANCE_YOUR_CALM) within [`FLOOD_BOUND`]; returns the GOAWAY's debug
/// data (why).
pub(crate) async fn flood(
    env: &Env,
    config: Config,
    what: &'static str,
    opening: impl FnOnce(&mut Peer) + Send + 'static,
    burst: impl FnOnce() -> BytesMut + Send + 'static,
) -> Vec<u8> {
    let srv = env.server_with(config).await;
    let port = srv.port;
    let memory = Watermark::start();
    let why = off_thread(move || {
        let mut peer = Peer::handshaken(port);
        opening(&mut peer);
        let bytes = burst();
        peer.send(&bytes);
        drop(bytes);
        let goaway = peer.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
        assert!(
            !goaway.debug.is_empty(),
            "{what}: GOAWAY says why: {goaway:?}"
        );
        goaway.debug.to_vec()
    })
    .await;
    memory.assert_within(FLOOD_BOUND, what);
    env.assert_serves_then_stop(&srv).await;
    why
}

/// `n` copies of `frame`.
pub(crate) fn repeated(frame: &[u8], n: usize) -> BytesMut {
    let mut bytes = BytesMut::with_capacity(frame.len() * n);
    for _ in 0..n {
        bytes.extend_from_slice(frame);
    }
    bytes
}

/// CVE-2023-44487: streams opened and reset at once, far past the reset budget (200).
pub async fn rapid_reset_is_enhance_your_calm(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        // HPACK-indexed heads and their resets, encoded ahead, written at once.
        let mut burst = BytesMut::new();
        let mut block = BytesMut::new();
        for i in 0..1_000u32 {
            let id = 1 + 2 * i;
            block.clear();
            peer.encoder.encode(
                request_fields(ECHO).iter().map(|(n, v)| {
                    (
                        n.as_bytes(),
                        v.as_bytes(),
                        anygrpc_core::hpack::Sensitivity::Normal,
                    )
                }),
                &mut block,
            );
            anygrpc_core::frame::encode_header_block(
                StreamId(id),
                false,
                &block,
                16_384,
                &mut burst,
            );
            Frame::RstStream(anygrpc_core::frame::RstStream {
                stream: StreamId(id),
                code: ErrorCode::CANCEL,
            })
            .encode(&mut burst);
        }
        peer.send(&burst);
        peer.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
    })
    .await;
    memory.assert_within(FLOOD_BOUND, "rapid reset");
    env.assert_serves_then_stop(&srv).await;
}

/// CONTINUATION flood: a header block that never ends. It is decoded as it arrives (the
/// server holds one cut field at most, whatever the block's length) and refused once past the
/// block cap (1 MiB, or 2 × max_header_list_size + 1 KiB if larger), before it could grow
/// further.
pub async fn continuation_flood_is_enhance_your_calm(env: Env) {
    flood(
        &env,
        Config::server(),
        "CONTINUATION flood",
        |_| {},
        || {
            // 66 fragments of 16 KiB: past the 1 MiB cap; the server stops reading there.
            // Written into one buffer (the raw peer's own memory counts in the bound too).
            let fragment = raw_frame(FrameType::CONTINUATION, 0, 1, &[0x40; 16_384]);
            let mut bytes = BytesMut::with_capacity(64 + 66 * fragment.len());
            bytes.extend_from_slice(&raw_frame(FrameType::HEADERS, 0, 1, &[0x83]));
            for _ in 0..66 {
                bytes.extend_from_slice(&fragment);
            }
            bytes
        },
    )
    .await;
}

/// HPACK bomb: one 4,000-byte field inserted in the dynamic table, then referenced 20,000
/// times by a one-byte index (a 24 KB block decoding to 80 MB). The call fails with
/// RESOURCE_EXHAUSTED, nothing is decoded past the header list limit, the connection lives.
pub async fn hpack_bomb_is_resource_exhausted(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let mut block = BytesMut::new();
        for (name, value) in request_fields(ECHO) {
            hpack_literal(name.as_bytes(), value.as_bytes(), false, &mut block);
        }
        hpack_literal(b"x-bomb", &[b'a'; 4000], true, &mut block);
        // Index 62: the newest dynamic-table entry (RFC 7541 §2.3.3).
        block.extend(std::iter::repeat_n(0x80 | 62, 20_000));
        peer.send_block(1, &block, true);
        let end = peer.end_of(1);
        assert_eq!(
            end.get("grpc-status"),
            Some("8"),
            "RESOURCE_EXHAUSTED: {end:?}"
        );
        // The decoder stayed in sync: the connection serves the next call.
        assert_call_served(&mut peer, 3);
    })
    .await;
    memory.assert_within(FLOOD_BOUND, "HPACK bomb");
    env.assert_serves_then_stop(&srv).await;
}

/// PING flood with keepalive enforcement off: the idle-frame budget alone ends it, after at
/// most its burst of answers.
pub async fn ping_flood_is_enhance_your_calm(env: Env) {
    let config = Config::server().ping_policy(None);
    let ping = {
        let mut b = BytesMut::new();
        Frame::Ping(anygrpc_core::frame::Ping::new([7; 8])).encode(&mut b);
        b
    };
    flood(
        &env,
        config,
        "PING flood",
        |_| {},
        move || repeated(&ping, FLOOD_FRAMES),
    )
    .await;
}

/// SETTINGS flood: each one costs an ACK; the idle-frame budget ends it.
pub async fn settings_flood_is_enhance_your_calm(env: Env) {
    let settings = {
        let mut b = BytesMut::new();
        Frame::Settings(Settings::default()).encode(&mut b);
        b
    };
    flood(
        &env,
        Config::server(),
        "SETTINGS flood",
        |_| {},
        move || repeated(&settings, FLOOD_FRAMES),
    )
    .await;
}

/// Empty DATA frames on an open call.
pub async fn empty_data_flood_is_enhance_your_calm(env: Env) {
    let empty = raw_frame(FrameType::DATA, 0, 1, &[]);
    flood(
        &env,
        Config::server(),
        "empty DATA flood",
        |peer| peer.send_request(1, ECHO, false),
        move || repeated(&empty, FLOOD_FRAMES),
    )
    .await;
}

/// Keepalive enforcement (gRPC keepalive.md): PINGs faster than the server's policy (at most
/// one per 5 minutes while a call runs, 2 strikes, by default) end the connection with
/// GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), long before the idle-frame budget would.
pub async fn pings_faster_than_the_keepalive_policy_are_too_many_pings(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        // A call in progress (its request never ends), so the 5-minute rule applies.
        peer.send_request(1, ECHO, false);
        // The first PING is free, two more are strikes, the fourth is one too many.
        for i in 0..4u8 {
            peer.send_ping([i; 8]);
        }
        let goaway = peer.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
        assert_eq!(&goaway.debug[..], b"too_many_pings", "{goaway:?}");
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

/// MadeYouReset (CVE-2025-8671): streams the client makes the server reset (here with a zero
/// WINDOW_UPDATE each) are budgeted like the client's own resets.
pub async fn made_you_reset_is_enhance_your_calm(env: Env) {
    let why = flood(
        &env,
        Config::server(),
        "MadeYouReset",
        |_| {},
        || {
            let block = plain_block(&request_fields(ECHO));
            let mut bytes = BytesMut::new();
            for i in 0..1_000u32 {
                let id = 1 + 2 * i;
                bytes.extend_from_slice(&raw_frame(
                    FrameType::HEADERS,
                    flags::END_HEADERS,
                    id,
                    &block,
                ));
                bytes.extend_from_slice(&raw_frame(FrameType::WINDOW_UPDATE, 0, id, &[0; 4]));
            }
            bytes
        },
    )
    .await;
    assert_eq!(
        why,
        b"too many reset streams",
        "{}",
        String::from_utf8_lossy(&why)
    );
}
