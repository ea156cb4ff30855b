//! A raw server against the real anygrpc `Channel`: broken responses end the call with the
//! status PROTOCOL-HTTP2.md asks for (never OK), protocol violations make the client close
//! with the right GOAWAY, and a server that never reads bounds what the client buffers.

use std::future::Future;
use std::time::Duration;

use anygrpc::{CallOptions, Channel, Code, RpcError};
use anygrpc_core::ErrorCode;
use anygrpc_core::frame::{Frame, FrameType, Settings, flags};
use futures_util::future::join;
use prost::Message as _;

use super::alloc::Watermark;
use super::peer::{
    Peer, RawListener, fields, grpc_message, plain_block, raw_frame, raw_settings, response_fields,
};
use super::service::{ECHO, Ping, SUM};
use super::{Env, off_thread};

/// How long a client case's call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// What a client streaming into a closed window may hold: its send buffer (1 MiB) and the
/// requests encoded ahead (measured: about 1.3 MiB).
const STALLED_SEND_BOUND: usize = 2 << 20;

/// What a broken response may make the client hold.
const RESPONSE_BOUND: usize = 512 << 10;

/// A unary Echo call from a fresh channel to a raw server that accepts it, runs `serve` (given
/// the peer after the server's SETTINGS went out), and then closes. Returns the call's result.
pub(crate) async fn call_raw_server(
    env: &Env,
    serve: impl FnOnce(&mut Peer) + Send + 'static,
) -> Result<Ping, RpcError> {
    let listener = RawListener::bind();
    let port = listener.port();
    let server = off_thread(move || {
        let mut peer = Peer::accept(&listener);
        serve(&mut peer);
        // The listener goes with the thread: a reconnection is refused, not left waiting.
    });
    let channel = env.channel(port);
    let call = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call_with(Ping::text("hi"), CallOptions::new().timeout(CALL_TIMEOUT));
    let (result, ()) = join(call, server).await;
    channel.close(None).await;
    result
}

/// The raw server's side of a handshake, then the request's stream id.
pub(crate) fn accept_call(peer: &mut Peer) -> u32 {
    peer.server_handshake(Settings::default());
    let head = peer.request();
    assert_eq!(head.get(":path"), Some(ECHO));
    head.stream.0
}

/// Answers the call with a head, `message` as one DATA frame, and `trailers`.
fn respond(peer: &mut Peer, message: &[u8], trailers: &[(&str, &str)]) {
    let id = accept_call(peer);
    peer.send_plain(id, &response_fields(), false);
    peer.send_data(id, message, false);
    peer.send_plain(id, &fields(trailers), true);
}

#[track_caller]
pub(crate) fn assert_code(result: Result<Ping, RpcError>, code: Code) {
    match result {
        Ok(reply) => panic!("expected {code:?}, the call succeeded with {reply:?}"),
        Err(error) => assert_eq!(error.code(), code, "{error:?}"),
    }
}

fn pong() -> Vec<u8> {
    grpc_message(0, &Ping::text("pong").encode_to_vec()).to_vec()
}

pub async fn missing_grpc_status_is_unknown(env: Env) {
    let result = call_raw_server(&env, |peer| {
        respond(peer, &pong(), &[("grpc-message", "all good")]);
    })
    .await;
    // PROTOCOL-HTTP2.md: a response without grpc-status is never OK; UNKNOWN as grpc-go.
    assert_code(result, Code::Unknown);
}

/// A Trailers-Only response (one HEADERS with END_STREAM) without grpc-status: UNKNOWN after
/// HTTP 200, and the HTTP status's mapping otherwise (http-grpc-status-mapping.md).
pub async fn trailers_only_without_grpc_status(env: Env) {
    for (http, code) in [
        ("200", Code::Unknown),
        ("503", Code::Unavailable),
        ("404", Code::Unimplemented),
        ("401", Code::Unauthenticated),
    ] {
        let result = call_raw_server(&env, move |peer| {
            let id = accept_call(peer);
            let head = fields(&[(":status", http), ("content-type", "application/grpc")]);
            peer.send_plain(id, &head, true);
        })
        .await;
        match result {
            Ok(reply) => panic!("HTTP {http}: expected {code:?}, got {reply:?}"),
            Err(error) => assert_eq!(error.code(), code, "HTTP {http}: {error:?}"),
        }
    }
}

pub async fn invalid_grpc_status_is_internal(env: Env) {
    let result = call_raw_server(&env, |peer| {
        respond(peer, &pong(), &[("grpc-status", "abc")]);
    })
    .await;
    assert_code(result, Code::Internal);
}

pub async fn bad_base64_in_binary_trailers_is_internal(env: Env) {
    let result = call_raw_server(&env, |peer| {
        respond(
            peer,
            &pong(),
            &[("grpc-status", "0"), ("x-trace-bin", "!!!!")],
        );
    })
    .await;
    assert_code(result, Code::Internal);
}

pub async fn four_gib_length_prefix_in_a_response_is_resource_exhausted(env: Env) {
    let memory = Watermark::start();
    let result = call_raw_server(&env, |peer| {
        let id = accept_call(peer);
        peer.send_plain(id, &response_fields(), false);
        peer.send_data(id, &[0, 0xff, 0xff, 0xff, 0xff], false);
        // The client stops the stream instead of waiting for 4 GiB.
        assert_eq!(peer.reset_of(id), ErrorCode::CANCEL);
    })
    .await;
    assert_code(result, Code::ResourceExhausted);
    memory.assert_within(RESPONSE_BOUND, "4 GiB length prefix in a response");
}

pub async fn compressed_response_without_encoding_is_internal(env: Env) {
    let result = call_raw_server(&env, |peer| {
        let id = accept_call(peer);
        peer.send_plain(id, &response_fields(), false);
        peer.send_data(id, &grpc_message(1, b"not really gzip"), false);
        assert_eq!(peer.reset_of(id), ErrorCode::CANCEL);
    })
    .await;
    assert_code(result, Code::Internal);
}

pub async fn unknown_response_encoding_is_internal(env: Env) {
    let result = call_raw_server(&env, |peer| {
        let id = accept_call(peer);
        let mut head = response_fields();
        head.extend(fields(&[("grpc-encoding", "snappy")]));
        peer.send_plain(id, &head, false);
        peer.send_data(id, &grpc_message(1, b"snappy bytes"), false);
        assert_eq!(peer.reset_of(id), ErrorCode::CANCEL);
    })
    .await;
    assert_code(result, Code::Internal);
}

/// A client-streaming call to a server that advertises a zero stream window and never raises
/// it: writes stop completing once the send buffer (1 MiB) is full, no DATA goes out beyond
/// the default window the client may use before the SETTINGS arrive, and the deadline ends
/// the call.
pub async fn server_that_never_opens_its_window(env: Env) {
    let listener = RawListener::bind();
    let port = listener.port();
    let memory = Watermark::start();
    let server = off_thread(move || {
        let mut peer = Peer::accept(&listener);
        peer.server_handshake(Settings {
            initial_window_size: Some(0),
            ..Settings::default()
        });
        let id = peer.request().stream.0;
        let mut data = 0;
        let code = peer.until("the client's reset", |frame, _| match frame {
            Frame::Data(d) => {
                data += d.data.len();
                None
            }
            Frame::RstStream(r) if r.stream.0 == id => Some(r.code),
            _ => None,
        });
        // What the client sent before our SETTINGS reached it, within the RFC default window
        // (RFC 9113 §6.9.2), and nothing after.
        assert!(data <= 65_535, "{data} bytes of DATA into a zero window");
        assert_eq!(code, ErrorCode::CANCEL, "the deadline cancels the stream");
    });
    let channel = env.channel(port);
    let client = async {
        let mut call = channel
            .stream_unary::<Ping, Ping>(SUM)
            .call_with(CallOptions::new().timeout(Duration::from_millis(800)));
        let request = Ping {
            payload: vec![7; 64 << 10],
            ..Ping::default()
        };
        let mut accepted = 0usize;
        while call.write(request.clone()).await.is_ok() {
            accepted += 1;
            assert!(accepted < 1_000, "writes never stopped completing");
        }
        // The send buffer takes 1 MiB: 16 writes of 64 KiB, plus one on an empty queue.
        assert!(accepted <= 20, "{accepted} writes of 64 KiB accepted");
        assert_code(call.await, Code::DeadlineExceeded);
    };
    join(client, server).await;
    memory.assert_within(STALLED_SEND_BOUND, "a server that never opens its window");
    channel.close(None).await;
}

pub async fn invalid_settings_from_the_server_fail_the_call(env: Env) {
    for (id, value, code) in [
        (0x2, 1, ErrorCode::PROTOCOL_ERROR), // a server enabling push
        (0x4, 1 << 31, ErrorCode::FLOW_CONTROL_ERROR), // INITIAL_WINDOW_SIZE over 2^31-1
        (0x5, 100, ErrorCode::PROTOCOL_ERROR), // MAX_FRAME_SIZE under 2^14
    ] {
        let result = call_raw_server(&env, move |peer| {
            peer.send(&raw_settings(&[(id, value)]));
            assert_eq!(peer.goaway().code, code, "SETTINGS {id}={value}");
        })
        .await;
        assert_code(result, Code::Unavailable);
    }
}

pub async fn response_on_a_stream_never_opened_is_protocol_error(env: Env) {
    let result = call_raw_server(&env, |peer| {
        let id = accept_call(peer);
        let block = plain_block(&response_fields());
        peer.send(&raw_frame(
            FrameType::HEADERS,
            flags::END_HEADERS,
            id + 2,
            &block,
        ));
        assert_eq!(peer.goaway().code, ErrorCode::PROTOCOL_ERROR);
    })
    .await;
    assert_code(result, Code::Unavailable);
}

/// Answers the request on `id` with a head, each of `messages` as its own DATA frame, and OK
/// trailers when `end` (none otherwise).
fn respond_with(peer: &mut Peer, id: u32, messages: &[Vec<u8>], end: bool) {
    peer.send_plain(id, &response_fields(), false);
    for message in messages {
        peer.send_data(id, message, false);
    }
    if end {
        peer.send_plain(id, &fields(&[("grpc-status", "0")]), true);
    }
}

/// Runs `first` (a call on a fresh channel) against a raw server that answers it with `serve`
/// (given the peer and the call's stream), then an Echo call on the same channel and
/// connection, answered properly, which must succeed. Returns the first call's result.
async fn broken_then_served<F>(
    env: &Env,
    first: impl FnOnce(Channel) -> F,
    serve: impl FnOnce(&mut Peer, u32) + Send + 'static,
) -> Result<Ping, RpcError>
where
    F: Future<Output = Result<Ping, RpcError>>,
{
    let listener = RawListener::bind();
    let port = listener.port();
    let server = off_thread(move || {
        let mut peer = Peer::accept(&listener);
        peer.server_handshake(Settings::default());
        let id = peer.request().stream.0;
        serve(&mut peer, id);
        let next = id + 2;
        if !peer.blocks.iter().any(|b| b.stream.0 == next) {
            peer.until("the next request", |_, blocks| {
                blocks.iter().any(|b| b.stream.0 == next).then_some(())
            });
        }
        respond_with(&mut peer, next, &[pong()], true);
        // The client closes once it has the answer.
        peer.assert_closes();
    });
    let channel = env.channel(port);
    let client = async {
        let result = first(channel.clone()).await;
        let again = channel
            .unary_unary::<Ping, Ping>(ECHO)
            .call_with(
                Ping::text("again"),
                CallOptions::new().timeout(CALL_TIMEOUT),
            )
            .await;
        match again {
            Ok(reply) => assert_eq!(reply.text, "pong"),
            Err(error) => panic!("a fresh call on the same channel failed: {error:?}"),
        }
        channel.close(None).await;
        result
    };
    let (result, ()) = join(client, server).await;
    result
}

/// A unary Echo call on `channel`; its Call object must report the same code as the result.
async fn echo_call(channel: Channel) -> Result<Ping, RpcError> {
    let mut call = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call_with(Ping::text("hi"), CallOptions::new().timeout(CALL_TIMEOUT));
    let result = (&mut call).await;
    let code = result.as_ref().map_or_else(RpcError::code, |_| Code::Ok);
    assert_eq!(
        call.code().await,
        code,
        "the Call object agrees: {result:?}"
    );
    result
}

/// A client-streaming Sum call on `channel` with one request. The raw server may answer
/// before the request went out: a failed write is the answer's doing.
async fn sum_call(channel: Channel) -> Result<Ping, RpcError> {
    let mut call = channel
        .stream_unary::<Ping, Ping>(SUM)
        .call_with(CallOptions::new().timeout(CALL_TIMEOUT));
    let _ = call.write(Ping::text("one")).await;
    let _ = call.done_writing().await;
    call.await
}

/// A unary (or client-streaming) call answered with two messages ends INTERNAL: when OK
/// trailers follow, and at the second message when the server goes on (the client then resets
/// the stream rather than wait).
pub async fn two_responses_to_a_unary_call_is_internal(env: Env) {
    let result = broken_then_served(&env, echo_call, |peer, id| {
        respond_with(peer, id, &[pong(), pong()], true);
    })
    .await;
    assert_code(result, Code::Internal);
    let result = broken_then_served(&env, echo_call, |peer, id| {
        respond_with(peer, id, &[pong(), pong()], false);
        assert_eq!(peer.reset_of(id), ErrorCode::CANCEL);
    })
    .await;
    assert_code(result, Code::Internal);
    let result = broken_then_served(&env, sum_call, |peer, id| {
        respond_with(peer, id, &[pong(), pong()], true);
    })
    .await;
    assert_code(result, Code::Internal);
}

/// A unary (or client-streaming) call that ends OK without a response message ends INTERNAL,
/// after a head or Trailers-Only; one that ends with another status without a message keeps it.
pub async fn ok_without_a_response_is_internal(env: Env) {
    let result = broken_then_served(&env, echo_call, |peer, id| {
        respond_with(peer, id, &[], true);
    })
    .await;
    assert_code(result, Code::Internal);
    let trailers_only = |code: &'static str| {
        move |peer: &mut Peer, id: u32| {
            let end = fields(&[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", code),
            ]);
            peer.send_plain(id, &end, true);
        }
    };
    let result = broken_then_served(&env, echo_call, trailers_only("0")).await;
    assert_code(result, Code::Internal);
    let result = broken_then_served(&env, echo_call, trailers_only("5")).await;
    assert_code(result, Code::NotFound);
    let result = broken_then_served(&env, sum_call, |peer, id| {
        respond_with(peer, id, &[], true);
    })
    .await;
    assert_code(result, Code::Internal);
}
