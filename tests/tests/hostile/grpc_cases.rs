//! gRPC-level abuse against the real server: valid HTTP/2, invalid gRPC. Each call fails with
//! the status PROTOCOL-HTTP2.md and compression.md give (in `grpc-status`, with a
//! `grpc-message` saying why), no handler sees it, and the same connection serves the next call.

use anygrpc::Config;
use anygrpc_core::frame::Frame;
use anygrpc_core::{ErrorCode, StreamId};
use prost::Message as _;

use super::alloc::Watermark;
use super::h2_cases::assert_call_served;
use super::peer::{Block, Peer, grpc_message, request_fields};
use super::service::{COUNT, ECHO, Ping, Probe, SLEEP};
use super::{Env, off_thread};

/// What a refused call may make the process hold.
const CALL_BOUND: usize = 512 << 10;

/// Asserts `end` carries `grpc-status: code` and a non-empty `grpc-message`.
#[track_caller]
fn assert_status(end: &Block, code: &str) {
    assert_eq!(end.get("grpc-status"), Some(code), "{end:?}");
    assert!(
        end.get("grpc-message").is_some_and(|m| !m.is_empty()),
        "grpc-message says why: {end:?}"
    );
}

/// Sends each request head (with one empty message) on its own stream of one connection and
/// asserts the answer's `grpc-status` is `code`; then a normal call is served there too.
async fn refused_heads(env: Env, code: &'static str, heads: Vec<Vec<(String, String)>>) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        let mut stream = 1;
        for head in &heads {
            peer.send_plain(stream, head, false);
            peer.send_data(stream, &grpc_message(0, b""), true);
            assert_status(&peer.end_of(stream), code);
            stream += 2;
        }
        assert_call_served(&mut peer, stream);
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

fn request_plus(name: &str, value: &str) -> Vec<(String, String)> {
    let mut fields = request_fields(ECHO);
    fields.push((name.into(), value.into()));
    fields
}

pub async fn four_gib_length_prefix_is_resource_exhausted(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    let memory = Watermark::start();
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        peer.send_request(1, ECHO, false);
        // 2^32-1 bytes declared, none sent: refused on the 5-byte prefix.
        peer.send_data(1, &[0, 0xff, 0xff, 0xff, 0xff], false);
        assert_status(&peer.end_of(1), "8");
        // The client had not finished: it is told to stop (RFC 9113 §8.1).
        assert_eq!(peer.reset_of(1), ErrorCode::NO_ERROR);
        // What it sends anyway is dropped, not buffered.
        for _ in 0..16 {
            peer.send_data(1, &[0; 16_000], false);
        }
        assert_call_served(&mut peer, 3);
    })
    .await;
    memory.assert_within(CALL_BOUND, "4 GiB length prefix");
    env.assert_serves_then_stop(&srv).await;
}

pub async fn message_over_the_limit_is_resource_exhausted(env: Env) {
    let config = Config::server().max_recv_message_size(1000);
    let srv = env.server_with(config).await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        // Exactly at the limit: served.
        let mut ping = Ping {
            payload: vec![1; 990],
            ..Ping::default()
        };
        let fill = 1000 - ping.encoded_len();
        ping.payload.resize(990 + fill, 1);
        let at = ping.encode_to_vec();
        assert_eq!(at.len(), 1000);
        peer.send_request(1, ECHO, false);
        peer.send_data(1, &grpc_message(0, &at), true);
        assert_eq!(peer.end_of(1).get("grpc-status"), Some("0"));
        // One byte over: refused on its prefix.
        peer.send_request(3, ECHO, false);
        peer.send_data(3, &grpc_message(0, &[0; 1001]), true);
        assert_status(&peer.end_of(3), "8");
        assert_call_served(&mut peer, 5);
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

pub async fn bad_compressed_flags_are_internal(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        // Flag 1 without grpc-encoding; flag 2 (undefined).
        for (stream, flag) in [(1, 1), (3, 2)] {
            peer.send_request(stream, ECHO, false);
            peer.send_data(stream, &grpc_message(flag, b"not really gzip"), true);
            assert_status(&peer.end_of(stream), "13");
        }
        assert_call_served(&mut peer, 5);
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

pub async fn unknown_grpc_encoding_is_unimplemented(env: Env) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        peer.send_plain(1, &request_plus("grpc-encoding", "snappy"), false);
        peer.send_data(1, &grpc_message(1, b"snappy bytes"), true);
        let end = peer.end_of(1);
        assert_status(&end, "12");
        // compression.md: the answer says what the server accepts.
        assert!(
            end.get("grpc-accept-encoding").is_some(),
            "grpc-accept-encoding: {end:?}"
        );
        assert_call_served(&mut peer, 3);
    })
    .await;
    env.assert_serves_then_stop(&srv).await;
}

pub async fn malformed_grpc_timeout_is_internal(env: Env) {
    let heads = ["1x", "123456789S", "-1S", "S", "1.5S", ""]
        .iter()
        .map(|v| request_plus("grpc-timeout", v))
        .collect();
    refused_heads(env, "13", heads).await;
}

pub async fn bad_base64_in_binary_metadata_is_internal(env: Env) {
    let heads = ["!!!!", "a", "ab=c"]
        .iter()
        .map(|v| request_plus("x-trace-bin", v))
        .collect();
    refused_heads(env, "13", heads).await;
}

/// A Sleep request (which the handler records as `sleep:start:<text>`) as a gRPC message.
fn sleep_message(text: &str) -> Vec<u8> {
    grpc_message(0, &Ping::text(text).encode_to_vec()).to_vec()
}

/// The block that ends `stream`, asserting no response message came before it.
#[track_caller]
fn end_without_messages(peer: &mut Peer, stream: u32) -> Block {
    let id = StreamId(stream);
    peer.until("the end of the stream", |frame, blocks| {
        match frame {
            Frame::Data(d) if d.stream == id && !d.data.is_empty() => {
                panic!("a response message on stream {stream}: {d:?}")
            }
            Frame::GoAway(g) => panic!("GOAWAY instead of trailers: {g:?}"),
            _ => {}
        }
        blocks
            .iter()
            .rev()
            .find(|b| b.stream == id && b.end_stream)
            .cloned()
    })
}

/// Asserts no Sleep handler ran but the one for `ok` (if any), which completed.
#[track_caller]
fn assert_only_sleeper(probe: &Probe, ok: Option<&str>) {
    let expected: Vec<String> = ok
        .iter()
        .flat_map(|text| [format!("sleep:start:{text}"), format!("sleep:done:{text}")])
        .collect();
    assert_eq!(probe.events(), expected, "what the handlers saw");
}

/// Runs `script` (a raw client on one connection, which ends with [`assert_call_served`]),
/// then checks what the handlers saw and that a fresh connection is served.
async fn single_request_script(
    env: Env,
    ok: Option<&'static str>,
    script: impl FnOnce(&mut Peer) + Send + 'static,
) {
    let srv = env.server().await;
    let port = srv.port;
    off_thread(move || {
        let mut peer = Peer::handshaken(port);
        script(&mut peer);
    })
    .await;
    assert_only_sleeper(&srv.probe, ok);
    env.assert_serves_then_stop(&srv).await;
}

/// A unary or server-streaming request half-closed without a message ends INTERNAL, and its
/// handler never runs.
pub async fn unary_request_without_a_message_is_internal(env: Env) {
    single_request_script(env, None, |peer| {
        // END_STREAM on the head; on an empty DATA frame; on a server-streaming request.
        peer.send_request(1, SLEEP, true);
        assert_status(&end_without_messages(peer, 1), "13");
        peer.send_request(3, SLEEP, false);
        peer.send_data(3, b"", true);
        assert_status(&end_without_messages(peer, 3), "13");
        peer.send_request(5, COUNT, true);
        assert_status(&end_without_messages(peer, 5), "13");
        assert_call_served(peer, 7);
    })
    .await;
}

/// A unary or server-streaming request with a second message ends INTERNAL, and its handler
/// never runs: the server waits for the half-close before running it, and ends the call at the
/// second message without waiting further. One message with END_STREAM on a DATA frame of its
/// own is served.
pub async fn unary_request_with_two_messages_is_internal(env: Env) {
    single_request_script(env, Some("ok"), |peer| {
        // Two DATA frames, END_STREAM on the second.
        peer.send_request(1, SLEEP, false);
        peer.send_data(1, &sleep_message("one"), false);
        peer.send_data(1, &sleep_message("two"), true);
        assert_status(&end_without_messages(peer, 1), "13");
        // Both in one DATA frame.
        peer.send_request(3, SLEEP, false);
        peer.send_data(
            3,
            &[sleep_message("one"), sleep_message("two")].concat(),
            true,
        );
        assert_status(&end_without_messages(peer, 3), "13");
        // No half-close: answered at the second message, and told to stop sending.
        peer.send_request(5, SLEEP, false);
        peer.send_data(5, &sleep_message("one"), false);
        peer.send_data(5, &sleep_message("two"), false);
        assert_status(&end_without_messages(peer, 5), "13");
        assert_eq!(peer.reset_of(5), ErrorCode::NO_ERROR);
        // A server-streaming request.
        peer.send_request(7, COUNT, false);
        let count = Ping {
            count: 2,
            ..Ping::default()
        };
        let count = grpc_message(0, &count.encode_to_vec());
        peer.send_data(7, &[&count[..], &count[..]].concat(), true);
        assert_status(&end_without_messages(peer, 7), "13");
        // One message, END_STREAM on an empty DATA frame after it: served.
        peer.send_request(9, SLEEP, false);
        peer.send_data(9, &sleep_message("ok"), false);
        peer.send_data(9, b"", true);
        assert_eq!(peer.end_of(9).get("grpc-status"), Some("0"));
        assert_call_served(peer, 11);
    })
    .await;
}
