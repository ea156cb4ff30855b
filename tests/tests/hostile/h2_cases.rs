//! RFC 9113 error cases against the real server: a raw client breaks one rule, and the code
//! RFC 9113 gives that violation reaches it (GOAWAY for connection errors, RST_STREAM for
//! stream errors, after which the same connection still serves a call); then a fresh
//! connection is served.

use anygrpc_core::frame::{FrameType, flags};
use anygrpc_core::{ErrorCode, StreamId};
use prost::Message as _;

use super::peer::{
    Peer, fields, grpc_message, plain_block, raw_frame, raw_settings, request_fields,
};
use super::service::{ECHO, Ping, SLEEP};
use super::{Env, off_thread};

/// Connects a raw client (after a complete handshake when `handshake`), runs `script`, and
/// asserts the server answers with GOAWAY(`code`) and closes; returns the GOAWAY's last
/// stream. The server is left running.
async fn connection_error(
    port: u16,
    handshake: bool,
    code: ErrorCode,
    script: impl FnOnce(&mut Peer) + Send + 'static,
) -> StreamId {
    off_thread(move || {
        let mut peer = Peer::connect(port);
        if handshake {
            peer.client_handshake();
        }
        script(&mut peer);
        peer.assert_goaway(code).last_stream
    })
    .await
}

/// A server, one connection error on it, then a fresh connection is served.
async fn one_connection_error(
    env: Env,
    handshake: bool,
    code: ErrorCode,
    script: impl FnOnce(&mut Peer) + Send + 'static,
) {
    let srv = env.server().await;
    connection_error(srv.port, handshake, code, script).await;
    env.assert_serves_then_stop(&srv).await;
}

/// Asserts the unary call the peer makes on `stream` (on its live connection) is answered
/// with `grpc-status: 0`.
pub(crate) fn assert_call_served(peer: &mut Peer, stream: u32) {
    let request = Ping::text("same connection").encode_to_vec();
    // Plain literals: this leaves both HPACK tables as they are, whatever came before.
    peer.send_plain(stream, &request_fields(ECHO), false);
    peer.send_data(stream, &grpc_message(0, &request), true);
    let end = peer.end_of(stream);
    assert_eq!(end.get("grpc-status"), Some("0"), "call {stream}: {end:?}");
}

/// Each of `requests` on its own stream of one connection: every one is reset with
/// PROTOCOL_ERROR, and the connection then serves a call.
async fn malformed_requests(env: Env, requests: Vec<Vec<(String, String)>>) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let mut stream = 1;
        for request in &requests {
            peer.send_plain(stream, request, false);
            // The request's DATA, already in flight, is ignored.
            peer.send_data(stream, &grpc_message(0, b""), true);
            assert_eq!(
                peer.reset_of(stream),
                ErrorCode::PROTOCOL_ERROR,
                "{request:?}"
            );
            stream += 2;
        }
        assert_call_served(&mut peer, stream);
    })
    .await;
    assert!(
        !srv.probe.events().iter().any(|e| e.starts_with("sleep")),
        "no handler ran"
    );
    env.assert_serves_then_stop(&srv).await;
}

fn request_with(change: impl FnOnce(&mut Vec<(String, String)>)) -> Vec<(String, String)> {
    let mut fields = request_fields(ECHO);
    change(&mut fields);
    fields
}

// ---- Preface (RFC 9113 §3.4) ----

pub async fn bad_preface_is_protocol_error(env: Env) {
    one_connection_error(env, false, ErrorCode::PROTOCOL_ERROR, |peer| {
        peer.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    })
    .await;
}

pub async fn http1_request_is_protocol_error(env: Env) {
    one_connection_error(env, false, ErrorCode::PROTOCOL_ERROR, |peer| {
        peer.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    })
    .await;
}

// ---- SETTINGS (RFC 9113 §6.5) ----

pub async fn invalid_settings_values(env: Env) {
    let srv = env.server().await;
    for (id, value, code) in [
        (0x2, 2, ErrorCode::PROTOCOL_ERROR), // ENABLE_PUSH not 0 or 1
        (0x4, 1 << 31, ErrorCode::FLOW_CONTROL_ERROR), // INITIAL_WINDOW_SIZE over 2^31-1
        (0x5, 16_383, ErrorCode::PROTOCOL_ERROR), // MAX_FRAME_SIZE under 2^14
        (0x5, 1 << 24, ErrorCode::PROTOCOL_ERROR), // MAX_FRAME_SIZE over 2^24-1
    ] {
        connection_error(srv.port, true, code, move |peer| {
            peer.send(&raw_settings(&[(id, value)]));
        })
        .await;
    }
    env.assert_serves_then_stop(&srv).await;
}

pub async fn settings_of_wrong_length_is_frame_size_error(env: Env) {
    let srv = env.server().await;
    connection_error(srv.port, true, ErrorCode::FRAME_SIZE_ERROR, |peer| {
        peer.send(&raw_frame(FrameType::SETTINGS, 0, 0, &[0, 3, 0, 0, 0]));
    })
    .await;
    // An ACK must be empty.
    connection_error(srv.port, true, ErrorCode::FRAME_SIZE_ERROR, |peer| {
        peer.send(&raw_frame(
            FrameType::SETTINGS,
            flags::ACK,
            0,
            &[0, 3, 0, 0, 0, 1],
        ));
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

// ---- Frame size (RFC 9113 §4.2) ----

pub async fn oversized_frame_is_frame_size_error(env: Env) {
    one_connection_error(env, true, ErrorCode::FRAME_SIZE_ERROR, |peer| {
        peer.send_request(1, ECHO, false);
        // The header of a DATA frame one byte over the limit is enough: refused before its
        // payload.
        let too_large = anygrpc::Config::server().max_frame_size as usize + 1;
        let frame = raw_frame(FrameType::DATA, 0, 1, &vec![0; too_large]);
        peer.send(&frame[..9]);
    })
    .await;
}

// ---- Frames on the wrong stream (RFC 9113 §5.1, §6) ----

pub async fn frames_on_the_wrong_stream_are_protocol_errors(env: Env) {
    let srv = env.server().await;
    let block = plain_block(&request_fields(ECHO));
    let frames = [
        raw_frame(FrameType::DATA, 0, 0, b"abc"),
        raw_frame(FrameType::HEADERS, flags::END_HEADERS, 0, &block),
        raw_frame(FrameType::PING, 0, 1, &[0; 8]),
        raw_frame(FrameType::SETTINGS, 0, 1, &[]),
        // Idle streams: never opened.
        raw_frame(FrameType::DATA, 0, 1, &grpc_message(0, b"x")),
        raw_frame(FrameType::WINDOW_UPDATE, 0, 3, &[0, 0, 1, 0]),
        raw_frame(FrameType::RST_STREAM, 0, 5, &[0, 0, 0, 8]),
    ];
    for frame in frames {
        connection_error(srv.port, true, ErrorCode::PROTOCOL_ERROR, move |peer| {
            peer.send(&frame);
        })
        .await;
    }
    env.assert_serves_then_stop(&srv).await;
}

// ---- Stream identifiers (RFC 9113 §5.1.1) ----

pub async fn stream_ids_going_backwards_is_protocol_error(env: Env) {
    let srv = env.server().await;
    let last = connection_error(srv.port, true, ErrorCode::PROTOCOL_ERROR, |peer| {
        peer.send_request(5, ECHO, false);
        peer.send_request(3, ECHO, false);
    })
    .await;
    assert_eq!(last, StreamId(5), "GOAWAY names the last stream it took");
    env.assert_serves_then_stop(&srv).await;
}

pub async fn even_stream_id_from_a_client_is_protocol_error(env: Env) {
    one_connection_error(env, true, ErrorCode::PROTOCOL_ERROR, |peer| {
        peer.send_request(2, ECHO, false);
    })
    .await;
}

// ---- WINDOW_UPDATE (RFC 9113 §6.9) ----

pub async fn zero_window_update_on_a_stream_resets_it(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        peer.send_request(1, ECHO, false);
        peer.send_window_update(1, 0);
        assert_eq!(peer.reset_of(1), ErrorCode::PROTOCOL_ERROR);
        assert_call_served(&mut peer, 3);
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

pub async fn zero_window_update_on_the_connection_is_protocol_error(env: Env) {
    one_connection_error(env, true, ErrorCode::PROTOCOL_ERROR, |peer| {
        peer.send_window_update(0, 0);
    })
    .await;
}

pub async fn overflowing_stream_window_resets_it(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        peer.send_request(1, ECHO, false);
        // The stream's send window is 65,535: this brings it to 2^31-1, then one past.
        peer.send_window_update(1, (1 << 31) - 1 - 65_535);
        peer.send_window_update(1, 1);
        assert_eq!(peer.reset_of(1), ErrorCode::FLOW_CONTROL_ERROR);
        assert_call_served(&mut peer, 3);
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

pub async fn overflowing_connection_window_is_flow_control_error(env: Env) {
    one_connection_error(env, true, ErrorCode::FLOW_CONTROL_ERROR, |peer| {
        peer.send_window_update(0, (1 << 31) - 1 - 65_535);
        peer.send_window_update(0, 1);
    })
    .await;
}

// ---- Header blocks (RFC 9113 §6.2, §6.10; RFC 7541) ----

pub async fn continuation_without_headers_is_protocol_error(env: Env) {
    one_connection_error(env, true, ErrorCode::PROTOCOL_ERROR, |peer| {
        peer.send_continuation(1, &plain_block(&request_fields(ECHO)), true);
    })
    .await;
}

pub async fn continuation_on_another_stream_is_protocol_error(env: Env) {
    one_connection_error(env, true, ErrorCode::PROTOCOL_ERROR, |peer| {
        let block = plain_block(&request_fields(ECHO));
        peer.send(&raw_frame(FrameType::HEADERS, 0, 1, &block[..10]));
        peer.send_continuation(3, &block[10..], true);
    })
    .await;
}

pub async fn frame_inside_a_header_block_is_protocol_error(env: Env) {
    let srv = env.server().await;
    let interlopers = [
        raw_frame(FrameType::PING, 0, 0, &[0; 8]),
        raw_frame(FrameType::DATA, 0, 1, b"x"),
        raw_frame(FrameType(0xfa), 0, 0, &[]),
    ];
    for frame in interlopers {
        connection_error(srv.port, true, ErrorCode::PROTOCOL_ERROR, move |peer| {
            let block = plain_block(&request_fields(ECHO));
            peer.send(&raw_frame(FrameType::HEADERS, 0, 1, &block[..10]));
            peer.send(&frame);
            peer.send_continuation(1, &block[10..], true);
        })
        .await;
    }
    env.assert_serves_then_stop(&srv).await;
}

pub async fn broken_hpack_is_compression_error(env: Env) {
    let srv = env.server().await;
    // Index 0; an index in no table; a truncated literal.
    for block in [&[0x80][..], &[0xff, 0x49][..], &[0x00, 0x05, b'a'][..]] {
        connection_error(srv.port, true, ErrorCode::COMPRESSION_ERROR, move |peer| {
            peer.send_block(1, block, true);
        })
        .await;
    }
    env.assert_serves_then_stop(&srv).await;
}

// ---- Malformed requests (RFC 9113 §8.1.1, §8.2, §8.3): stream errors ----

pub async fn pseudo_header_misuse_resets_the_stream(env: Env) {
    let requests = vec![
        request_with(|f| f.retain(|(n, _)| n != ":path")),
        request_with(|f| f.insert(0, (":protocol".into(), "websocket".into()))),
        request_with(|f| f.insert(0, (":status".into(), "200".into()))),
        request_with(|f| f.insert(1, (":method".into(), "POST".into()))),
        request_with(|f| {
            let path = f.remove(2);
            f.push(path);
        }),
        request_with(|f| f.push(("X-Upper".into(), "v".into()))),
    ];
    malformed_requests(env, requests).await;
}

pub async fn connection_specific_headers_reset_the_stream(env: Env) {
    let mut requests: Vec<_> = [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
    ]
    .iter()
    .map(|(n, v)| request_with(|f| f.push((n.to_string(), v.to_string()))))
    .collect();
    requests.push(request_with(|f| {
        f.retain(|(n, _)| n != "te");
        f.extend(fields(&[("te", "gzip")]));
    }));
    malformed_requests(env, requests).await;
}

pub async fn path_without_leading_slash_is_protocol_error(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let request = Ping::text("unslashed").encode_to_vec();
        // A real method's path minus its "/" (the class of grpc-go CVE-2026-33186): routed,
        // it would get past an interceptor authorizing by path.
        let unslashed = SLEEP.strip_prefix('/').expect("an absolute path");
        peer.send_plain(1, &request_fields(unslashed), false);
        peer.send_data(1, &grpc_message(0, &request), true);
        assert_eq!(peer.reset_of(1), ErrorCode::PROTOCOL_ERROR);
        // A well-formed path naming no method is the router's to answer: UNIMPLEMENTED.
        peer.send_plain(3, &request_fields("/e2e.Test/NoSuchMethod"), false);
        peer.send_data(3, &grpc_message(0, &request), true);
        let end = peer.end_of(3);
        assert_eq!(end.get("grpc-status"), Some("12"), "{end:?}");
        assert_call_served(&mut peer, 5);
    })
    .await;
    let events = srv.probe.events();
    assert!(
        !events.iter().any(|e| e.starts_with("sleep:")),
        "the handler never ran: {events:?}"
    );
    env.assert_serves_then_stop(&srv).await;
}
