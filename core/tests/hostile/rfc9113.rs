//! Protocol violations RFC 9113 assigns an error code to: the connection answers with exactly
//! that GOAWAY (or RST_STREAM) and reports it.

use anygrpc_core::frame::{Frame, FrameType, Settings, flags};
use anygrpc_core::grpc::RequestHead;
use anygrpc_core::{CLIENT_PREFACE, Code, Config, ErrorCode, Event, Side, Status, StreamId};

use crate::support::raw::{
    Raw, fields, grpc_message, hpack_literal, plain_block, raw_frame, raw_settings, request_fields,
};

// ---- Preface and the first frame (RFC 9113 §3.4) ----

#[test]
fn bad_preface_is_protocol_error() {
    let mut raw = Raw::new(Side::Server, Config::server());
    raw.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn http1_request_line_is_rejected_at_its_first_byte() {
    let mut raw = Raw::new(Side::Server, Config::server());
    // One byte is enough to know: the connection does not wait for 24 bytes of HTTP/1.1.
    raw.send(b"G");
    raw.pump();
    assert!(raw.closed().is_some(), "closed at the first wrong byte");
    raw.send(b"ET / HTTP/1.1\r\nHost: example\r\n\r\n");
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn preface_split_byte_by_byte_is_accepted() {
    let mut raw = Raw::new(Side::Server, Config::server());
    for b in CLIENT_PREFACE {
        raw.send(&[*b]);
    }
    let mut settings = bytes::BytesMut::new();
    Frame::Settings(Settings::default()).encode(&mut settings);
    for b in &settings[..] {
        raw.send(&[*b]);
    }
    raw.assert_open();
}

#[test]
fn a_connection_failing_first_still_opens_with_its_settings() {
    // RFC 9113 §3.4: SETTINGS is the first frame each side sends, even when the next is GOAWAY.
    let mut raw = Raw::new(Side::Server, Config::server());
    raw.send(b"GET / HTTP/1.1\r\n");
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    assert!(
        matches!(raw.frames.first(), Some(Frame::Settings(s)) if !s.ack),
        "first frame {:?}",
        raw.frames.first()
    );
}

#[test]
fn first_frame_not_settings_is_protocol_error() {
    let mut raw = Raw::new(Side::Server, Config::server());
    raw.send(CLIENT_PREFACE);
    raw.send_ping([0; 8]);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn first_frame_settings_ack_is_protocol_error() {
    let mut raw = Raw::new(Side::Server, Config::server());
    raw.send(CLIENT_PREFACE);
    raw.send_frame(&Frame::Settings(Settings::ack()));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn client_rejects_server_whose_first_frame_is_not_settings() {
    let mut raw = Raw::new(Side::Client, Config::client());
    raw.flush();
    raw.send_window_update(0, 1000);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

// ---- SETTINGS values (RFC 9113 §6.5) ----

#[test]
fn settings_enable_push_2_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_settings(&[(0x2, 2)]));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn server_enabling_push_is_protocol_error_for_a_client() {
    let mut raw = Raw::new(Side::Client, Config::client());
    raw.send(&raw_settings(&[(0x2, 1)]));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn settings_initial_window_2_pow_31_is_flow_control_error() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_settings(&[(0x4, 1 << 31)]));
    raw.assert_connection_error(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn settings_initial_window_2_pow_31_minus_1_is_accepted() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_settings(&[(0x4, (1 << 31) - 1)]));
    raw.assert_open();
    assert!(
        raw.frames
            .iter()
            .any(|f| matches!(f, Frame::Settings(s) if s.ack))
    );
}

#[test]
fn settings_max_frame_size_out_of_range_is_protocol_error() {
    for bad in [0, 16_383, 1 << 24, u32::MAX] {
        let mut raw = Raw::server(Config::server());
        raw.send(&raw_settings(&[(0x5, bad)]));
        raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    }
    for good in [16_384, (1 << 24) - 1] {
        let mut raw = Raw::server(Config::server());
        raw.send(&raw_settings(&[(0x5, good)]));
        raw.assert_open();
    }
}

#[test]
fn settings_length_not_multiple_of_6_is_frame_size_error() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::SETTINGS, 0, 0, &[0, 3, 0, 0, 0]));
    raw.assert_connection_error(ErrorCode::FRAME_SIZE_ERROR);
}

#[test]
fn settings_on_a_stream_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::SETTINGS, 0, 1, &[]));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn settings_ack_with_payload_is_frame_size_error() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(
        FrameType::SETTINGS,
        flags::ACK,
        0,
        &[0, 3, 0, 0, 0, 1],
    ));
    raw.assert_connection_error(ErrorCode::FRAME_SIZE_ERROR);
}

#[test]
fn unknown_settings_are_ignored_and_acknowledged() {
    // RFC 9113 §6.5.2, §5.5: an unknown or unsupported setting MUST be ignored.
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_settings(&[
        (0x8, 1),
        (0x42, 7),
        (0xffff, u32::MAX),
        (0x0, 3),
    ]));
    raw.assert_open();
    let acks = raw
        .frames
        .iter()
        .filter(|f| matches!(f, Frame::Settings(s) if s.ack))
        .count();
    assert_eq!(acks, 1);
    raw.assert_serves_call(1);
}

#[test]
fn settings_are_applied_in_order_the_last_value_winning() {
    // RFC 9113 §6.5.3: values are processed in the order they appear. The stream window
    // ends at 100, so a response of 1,000 bytes leaves in 100 bytes of DATA.
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_settings(&[(0x4, 0), (0x4, 100)]));
    raw.send_unary(1, "/svc.S/M", b"x");
    raw.pump();
    raw.respond_ok(1, &[b'r'; 1000]);
    raw.pump();
    assert_eq!(data_sent(&raw, 1), 100);
}

#[test]
fn unsolicited_settings_ack_is_protocol_error() {
    // Not named by RFC 9113: an ACK of SETTINGS we never sent is a PROTOCOL_ERROR here.
    let mut raw = Raw::server(Config::server());
    raw.send_frame(&Frame::Settings(Settings::ack()));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn settings_not_acknowledged_in_time_is_settings_timeout() {
    // RFC 9113 §6.5.3: MAY close with SETTINGS_TIMEOUT.
    let config = Config::server();
    let timeout = config.settings_timeout;
    let mut raw = server_before_our_settings_are_acked(config);
    raw.sleep(timeout);
    raw.pump();
    assert_eq!(
        raw.goaways().iter().map(|g| g.1).collect::<Vec<_>>(),
        vec![ErrorCode::SETTINGS_TIMEOUT]
    );
    assert!(raw.conn.is_closed());
}

#[test]
fn our_first_settings_disable_push_and_stay_in_range() {
    // RFC 9113 §3.4, §6.5.2: SETTINGS first; a server never sends ENABLE_PUSH (it may only
    // be 0), a client sends 0; every value within its range.
    for side in [Side::Client, Side::Server] {
        let config = if side == Side::Client {
            Config::client()
        } else {
            Config::server()
        };
        let mut raw = Raw::new(side, config);
        raw.flush();
        let Some(Frame::Settings(first)) = raw.frames.first() else {
            panic!("{side:?}: first frame {:?}", raw.frames.first());
        };
        assert!(!first.ack);
        let push = if side == Side::Client {
            Some(false)
        } else {
            None
        };
        assert_eq!(first.enable_push, push, "{side:?}");
        let window = first.initial_window_size.unwrap_or(65_535);
        assert!(window < 1 << 31);
        let frame = first.max_frame_size.unwrap_or(16_384);
        assert!((16_384..1 << 24).contains(&frame));
    }
}

// ---- Frame size (RFC 9113 §4.2) ----

#[test]
fn frame_over_max_frame_size_is_frame_size_error_before_its_payload() {
    let config = Config::server();
    let max = config.max_frame_size as usize;
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    // Only the 9-byte header of a DATA frame one byte too large: refused before buffering it.
    let frame = raw_frame(FrameType::DATA, 0, 1, &vec![0; max + 1]);
    raw.send(&frame[..9]);
    raw.assert_connection_error(ErrorCode::FRAME_SIZE_ERROR);
}

/// Raw bytes of one header block the connection reads at most (its documented hard cap):
/// 1 MiB, or 2 × max_header_list_size + 1 KiB if larger.
fn block_cap(config: &Config) -> usize {
    (2 * config.max_header_list_size as usize + 1024).max(1 << 20)
}

#[test]
fn a_header_frame_larger_than_any_header_block_is_refused_before_its_payload() {
    // Within SETTINGS_MAX_FRAME_SIZE, but over the block cap.
    let config = Config::server().max_frame_size(4 << 20);
    let len = block_cap(&config) + 1;
    for kind in [FrameType::HEADERS, FrameType::CONTINUATION] {
        let mut raw = Raw::server(config.clone());
        let mut len = len;
        if kind == FrameType::CONTINUATION {
            // The cap is on the whole block: what the HEADERS frame carried counts.
            raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &[0x82; 1000]));
            len -= 1000;
        }
        let frame = raw_frame(kind, flags::END_HEADERS, 1, &vec![0x82; len]);
        raw.send(&frame[..9]);
        raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
    }
    // One byte less is read, decoded and served (a list of 1 MiB of `:method: GET` is over
    // the list limit: the call fails alone).
    let mut raw = Raw::server(config);
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &[0x82; 1000]));
    raw.send(&raw_frame(
        FrameType::CONTINUATION,
        flags::END_HEADERS,
        1,
        &vec![0x82; len - 1001],
    ));
    raw.assert_open();
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("8"));
    raw.assert_serves_call(3);
}

#[test]
fn frame_at_max_frame_size_is_accepted() {
    let config = Config::server();
    let max = config.max_frame_size as usize;
    let mut raw = Raw::server(config);
    // An unknown frame type of exactly SETTINGS_MAX_FRAME_SIZE bytes is read and ignored.
    raw.send(&raw_frame(FrameType(0xfa), 0, 0, &vec![7; max]));
    raw.assert_open();
    raw.assert_serves_call(1);
}

#[test]
fn frame_size_follows_our_advertised_max_frame_size() {
    let config = Config::server().max_frame_size(32_768);
    let mut raw = Raw::server(config.clone());
    raw.send(&raw_frame(FrameType(0xfa), 0, 0, &vec![7; 32_768]));
    raw.assert_open();
    let mut raw = Raw::server(config);
    raw.send(&raw_frame(FrameType(0xfa), 0, 0, &vec![7; 32_769])[..9]);
    raw.assert_connection_error(ErrorCode::FRAME_SIZE_ERROR);
}

#[test]
fn ping_with_wrong_length_is_frame_size_error() {
    for len in [0, 7, 9] {
        let mut raw = Raw::server(Config::server());
        raw.send(&raw_frame(FrameType::PING, 0, 0, &vec![0; len]));
        raw.assert_connection_error(ErrorCode::FRAME_SIZE_ERROR);
    }
}

#[test]
fn ping_on_a_stream_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::PING, 0, 1, &[0; 8]));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn frames_too_short_or_long_for_their_fields_are_frame_size_errors() {
    // RFC 9113 §4.2 and each frame type's section: connection errors, because each of these
    // carries a field block, is flow controlled, or has a fixed length the RFC names as a
    // connection error.
    let cases: [(FrameType, u8, u32, &[u8]); 8] = [
        (FrameType::DATA, flags::PADDED, 1, b""),
        (FrameType::HEADERS, flags::PADDED, 3, b""),
        (FrameType::HEADERS, flags::PRIORITY, 3, &[0, 0, 0, 1]),
        (FrameType::RST_STREAM, 0, 1, &[0, 0, 8]),
        (FrameType::RST_STREAM, 0, 1, &[0, 0, 0, 0, 8]),
        (FrameType::WINDOW_UPDATE, 0, 1, &[0, 0, 1]),
        (FrameType::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0, 1]),
        (FrameType::PUSH_PROMISE, flags::END_HEADERS, 1, &[0, 0, 2]),
    ];
    for (kind, frame_flags, stream, payload) in cases {
        let mut raw = Raw::server(Config::server());
        raw.send_request(1, "/svc.S/M", false);
        raw.send(&raw_frame(kind, frame_flags, stream, payload));
        let what = format!("{kind:?} {payload:?}");
        raw.pump();
        assert_eq!(
            raw.goaways().iter().map(|g| g.1).collect::<Vec<_>>(),
            vec![ErrorCode::FRAME_SIZE_ERROR],
            "{what}"
        );
    }
}

#[test]
fn frames_we_send_fit_the_peers_max_frame_size() {
    // RFC 9113 §4.1, §4.2: nothing above 16,384 bytes unless the peer allows more; a long
    // header block continues in CONTINUATION frames.
    let mut raw = Raw::server(Config::server());
    raw.send_unary(1, "/svc.S/M", b"x");
    raw.pump();
    let mut metadata = anygrpc_core::Metadata::new();
    metadata.insert("x-long", &"v".repeat(40_000)).unwrap();
    raw.conn.send_headers(StreamId(1), metadata, None).unwrap();
    raw.send_window_update(0, 1 << 20);
    raw.send_window_update(1, 1 << 20);
    raw.respond_ok(1, &[b'r'; 100_000]);
    raw.pump();
    let mut wire = bytes::BytesMut::new();
    for frame in &raw.frames {
        wire.clear();
        frame.encode(&mut wire);
        assert!(
            wire.len() - 9 <= 16_384,
            "{:?} of {}",
            frame.kind(),
            wire.len() - 9
        );
    }
    assert!(
        raw.frames
            .iter()
            .any(|f| matches!(f, Frame::Continuation(_)))
    );
    assert_eq!(data_sent(&raw, 1), 100_005);
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("0"));
}

#[test]
fn ping_is_answered_with_its_payload_and_an_ack_is_not() {
    // RFC 9113 §6.7: a PING gets a PING with ACK and the identical payload; a PING with ACK
    // MUST NOT be answered.
    let mut raw = Raw::server(Config::server());
    raw.send_ping([1, 2, 3, 4, 5, 6, 7, 8]);
    raw.send_frame(&Frame::Ping(anygrpc_core::frame::Ping::new([9; 8]).pong()));
    raw.assert_open();
    let pings: Vec<_> = raw
        .frames
        .iter()
        .filter_map(|f| match f {
            Frame::Ping(p) => Some((p.ack, p.payload)),
            _ => None,
        })
        .collect();
    assert_eq!(pings, vec![(true, [1, 2, 3, 4, 5, 6, 7, 8])]);
}

// ---- Frame format and extensions (RFC 9113 §4.1, §5.5) ----

#[test]
fn unknown_frame_types_are_ignored_on_any_stream() {
    // RFC 9113 §4.1, §5.5: discarded, whatever stream they name; §5.1: frames of unknown
    // semantics on an idle stream are no error either.
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType(0xfa), 0xff, 0, b"x"));
    raw.send(&raw_frame(FrameType(0x20), 0, 5, b"idle stream"));
    raw.send(&raw_frame(FrameType(0xfb), 0, 2, b""));
    raw.send_request(1, "/svc.S/M", false);
    raw.send(&raw_frame(FrameType(0xfc), 0x1, 1, b"open stream"));
    raw.send_data(1, &grpc_message(0, b"hello"), true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);
    raw.respond_ok(1, b"world");
    raw.assert_open();
    assert!(raw.resets().is_empty());
    raw.assert_serves_call(3);
}

#[test]
fn unused_flags_and_the_reserved_bit_are_ignored() {
    // RFC 9113 §4.1: unused flags and the reserved bit MUST be ignored on receipt.
    let mut raw = Raw::server(Config::server());
    let block = plain_block(&request_fields("/svc.S/M"));
    // HEADERS: END_HEADERS plus every bit HEADERS does not define.
    raw.send(&raw_frame(
        FrameType::HEADERS,
        flags::END_HEADERS | 0xd2,
        0x8000_0001,
        &block,
    ));
    // DATA: END_STREAM plus every undefined bit, reserved bit set.
    let mut data = raw_frame(
        FrameType::DATA,
        0x01 | 0xf6,
        0x8000_0001,
        &grpc_message(0, b"hi"),
    )
    .to_vec();
    data[4] = 0x01 | 0xf6;
    raw.send(&data);
    raw.send(&raw_frame(FrameType::PING, 0xfe, 0x8000_0000, &[7; 8]));
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);
    assert!(
        raw.events
            .iter()
            .any(|e| matches!(e, Event::HalfClosed { stream } if *stream == StreamId(1))),
        "END_STREAM was read"
    );
    assert!(
        raw.frames
            .iter()
            .any(|f| matches!(f, Frame::Ping(p) if p.ack && p.payload == [7; 8])),
        "PING read as a PING, not an ACK"
    );
    raw.assert_open();
}

// ---- Stream 0 and idle streams (RFC 9113 §5.1, §6.1, §6.2) ----

#[test]
fn data_on_stream_0_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::DATA, 0, 0, b"abc"));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn headers_on_stream_0_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    let block = plain_block(&request_fields("/svc.S/M"));
    raw.send(&raw_frame(
        FrameType::HEADERS,
        flags::END_HEADERS,
        0,
        &block,
    ));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn data_on_idle_stream_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_data(1, &grpc_message(0, b"x"), false);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn window_update_on_idle_stream_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_window_update(3, 100);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn window_update_on_a_server_stream_never_opened_is_protocol_error() {
    // Stream 2 is ours to open (even) and we never did: it is idle too.
    let mut raw = Raw::server(Config::server());
    raw.send_window_update(2, 100);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn rst_stream_on_idle_stream_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_rst(5, ErrorCode::CANCEL);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn stream_frames_on_stream_0_are_protocol_errors() {
    // RFC 9113 §6.3, §6.4, §6.10 (and §6.1, §6.2 above): these frames always name a stream.
    let frames = [
        raw_frame(FrameType::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]),
        raw_frame(FrameType::RST_STREAM, 0, 0, &[0, 0, 0, 8]),
        raw_frame(FrameType::CONTINUATION, flags::END_HEADERS, 0, &[0x82]),
        raw_frame(
            FrameType::PUSH_PROMISE,
            flags::END_HEADERS,
            0,
            &[0, 0, 0, 2, 0x82],
        ),
    ];
    for frame in frames {
        let mut raw = Raw::server(Config::server());
        raw.send(&frame);
        raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    }
}

#[test]
fn frames_on_a_forgotten_stream_are_ignored() {
    // RFC 9113 §5.1: closed streams may still see the peer's in-flight frames.
    let mut raw = Raw::server(Config::server());
    raw.assert_serves_call(1);
    assert_eq!(raw.conn.active_calls(), 0);
    raw.send_window_update(1, 100);
    raw.send_rst(1, ErrorCode::CANCEL);
    raw.assert_open();
    raw.assert_serves_call(3);
}

/// A client whose raw server allows one concurrent stream, with a call on stream 1 sent and
/// a second one, stream 3, queued behind the limit (idle on the wire).
fn client_with_a_queued_call() -> Raw {
    let mut raw = Raw::new(Side::Client, Config::client());
    raw.send(&raw_settings(&[(0x3, 1)]));
    raw.send_frame(&Frame::Settings(Settings::ack()));
    raw.settle();
    assert_eq!(raw.start_unary("/svc.S/M"), 1);
    assert_eq!(raw.start_unary("/svc.S/M"), 3);
    assert!(raw.blocks_on(3).is_empty(), "stream 3 waits for a slot");
    raw
}

#[test]
fn frames_on_a_client_call_still_queued_are_idle_stream_errors() {
    // RFC 9113 §5.1: stream 3 was allocated but never opened: it is idle.
    let frames = [
        raw_frame(FrameType::DATA, 0, 3, b"x"),
        raw_frame(FrameType::WINDOW_UPDATE, 0, 3, &[0, 0, 1, 0]),
        raw_frame(FrameType::RST_STREAM, 0, 3, &[0, 0, 0, 8]),
        raw_frame(FrameType::WINDOW_UPDATE, 0, 3, &[0, 0, 0, 0]),
    ];
    for frame in frames {
        let mut raw = client_with_a_queued_call();
        raw.send(&frame);
        raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    }
    let mut raw = client_with_a_queued_call();
    raw.send_plain(3, &fields(&[(":status", "200")]), false);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn priority_on_idle_and_closed_streams_is_accepted() {
    // RFC 9113 §6.3: PRIORITY may be sent in any stream state; it opens nothing.
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::PRIORITY, 0, 7, &[0, 0, 0, 0, 16]));
    raw.assert_serves_call(1);
    raw.send(&raw_frame(FrameType::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]));
    raw.send(&raw_frame(FrameType::PRIORITY, 0, 2, &[0, 0, 0, 0, 16]));
    raw.assert_open();
    // Stream 5 is below the 7 that PRIORITY named: still idle, still openable.
    raw.assert_serves_call(5);
    assert!(raw.resets().is_empty());
}

#[test]
fn priority_of_wrong_length_on_an_open_stream_resets_it_with_frame_size_error() {
    // RFC 9113 §6.3: a stream error FRAME_SIZE_ERROR.
    for len in [0, 4, 6] {
        let mut raw = Raw::server(Config::server());
        raw.send_request(1, "/svc.S/M", false);
        raw.send(&raw_frame(FrameType::PRIORITY, 0, 1, &vec![0; len]));
        raw.assert_open();
        assert_eq!(
            raw.resets(),
            vec![(StreamId(1), ErrorCode::FRAME_SIZE_ERROR)]
        );
        assert!(
            raw.events
                .iter()
                .any(|e| matches!(e, Event::Cancelled { stream, .. } if *stream == StreamId(1))),
            "the call ends: {:?}",
            raw.events
        );
        raw.assert_serves_call(3);
    }
}

#[test]
fn priority_of_wrong_length_on_an_idle_stream_is_a_frame_size_connection_error() {
    // RFC 9113 §6.3 names a stream error, but RST_STREAM must not be sent for an idle stream
    // (§6.4): raised to a connection error, as §5.4.1 allows, with the code §6.3 names (it
    // was PROTOCOL_ERROR).
    for stream in [1, 2, 9] {
        let mut raw = Raw::server(Config::server());
        raw.send(&raw_frame(FrameType::PRIORITY, 0, stream, &[0; 4]));
        raw.assert_connection_error(ErrorCode::FRAME_SIZE_ERROR);
        assert!(raw.resets().is_empty());
    }
}

#[test]
fn priority_of_wrong_length_on_a_closed_stream_is_discarded() {
    // Nothing is sent on a closed stream (RFC 9113 §5.1), not even a second RST_STREAM
    // (§5.4.2); the frame is dropped.
    let mut raw = Raw::server(Config::server());
    raw.assert_serves_call(1);
    raw.send(&raw_frame(FrameType::PRIORITY, 0, 1, &[0; 4]));
    raw.send_window_update(1, 0);
    raw.assert_open();
    assert!(raw.resets().is_empty(), "{:?}", raw.resets());
    raw.assert_serves_call(3);
}

#[test]
fn priority_depending_on_itself_resets_the_stream() {
    // RFC 7540 §5.3.1 (RFC 9113 keeps the fields, not this rule; we keep the stream error
    // RFC 7540 peers expect): PROTOCOL_ERROR on the stream; on an idle one, the connection.
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send(&raw_frame(FrameType::PRIORITY, 0, 1, &[0, 0, 0, 1, 16]));
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)]);
    raw.assert_serves_call(3);
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::PRIORITY, 0, 5, &[0, 0, 0, 5, 16]));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

/// A request head on `stream` whose fields are inserted in the dynamic table, in a HEADERS
/// frame with the PRIORITY flag depending on `dependency`.
fn prioritized_request(stream: u32, dependency: u32) -> bytes::Bytes {
    let mut payload = bytes::BytesMut::new();
    payload.extend_from_slice(&dependency.to_be_bytes());
    payload.extend_from_slice(&[16]);
    for (name, value) in request_fields("/svc.S/M") {
        hpack_literal(name.as_bytes(), value.as_bytes(), true, &mut payload);
    }
    raw_frame(
        FrameType::HEADERS,
        flags::END_HEADERS | flags::PRIORITY,
        stream,
        &payload,
    )
}

#[test]
fn headers_depending_on_itself_resets_the_stream_and_keeps_hpack_in_step() {
    // RFC 7540 §5.3.1: a stream error, not a connection error (it was PROTOCOL_ERROR on the
    // connection); the block is still decoded (RFC 9113 §4.3).
    let mut raw = Raw::server(Config::server());
    raw.send(&prioritized_request(1, 1));
    raw.send_data(1, &grpc_message(0, b"x"), true);
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)]);
    assert!(raw.started().is_empty());
    // The next request is references to what the reset one inserted.
    raw.send_block(3, &newest_entries(6), false);
    raw.send_data(3, &grpc_message(0, b"y"), true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(3)]);
    // A dependency on another stream is fine.
    let mut raw = Raw::server(Config::server());
    raw.send(&prioritized_request(1, 0));
    raw.send_data(1, &grpc_message(0, b"x"), true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);
}

#[test]
fn response_headers_depending_on_itself_fail_the_call() {
    let mut raw = Raw::client(Config::client());
    let id = raw.start_unary("/svc.S/M");
    let mut payload = id.to_be_bytes().to_vec();
    payload.push(16);
    payload.extend_from_slice(&plain_block(&fields(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
    ])));
    raw.send(&raw_frame(
        FrameType::HEADERS,
        flags::END_HEADERS | flags::PRIORITY,
        id,
        &payload,
    ));
    raw.assert_open();
    let codes: Vec<Code> = raw.finished(id).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Internal]);
    assert_eq!(
        raw.resets(),
        vec![(StreamId(id), ErrorCode::PROTOCOL_ERROR)]
    );
}

#[test]
fn data_after_end_stream_is_stream_closed() {
    // RFC 9113 §5.1, §6.1: half-closed (remote): a stream error STREAM_CLOSED, whether or
    // not the application already answered (its trailers give way to the reset).
    for answered in [false, true] {
        let mut raw = Raw::server(Config::server());
        raw.send_unary(1, "/svc.S/M", b"x");
        raw.pump();
        if answered {
            raw.conn
                .send_trailers(StreamId(1), Status::ok(), anygrpc_core::Metadata::new())
                .unwrap();
        }
        raw.send_data(1, &grpc_message(0, b"late"), false);
        raw.assert_open();
        assert_eq!(
            raw.resets(),
            vec![(StreamId(1), ErrorCode::STREAM_CLOSED)],
            "answered: {answered}"
        );
        raw.assert_serves_call(3);
    }
}

#[test]
fn headers_after_end_stream_is_stream_closed() {
    let mut raw = Raw::server(Config::server());
    raw.send_unary(1, "/svc.S/M", b"x");
    raw.send_plain(1, &fields(&[("x-late", "1")]), true);
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::STREAM_CLOSED)]);
    raw.assert_serves_call(3);
}

#[test]
fn response_data_after_end_stream_is_stream_closed() {
    // The client side of §6.1: the server ended its response (without trailers: the call
    // failed), the call's client half is still open; more DATA is STREAM_CLOSED.
    let mut raw = Raw::client(Config::client());
    let id = raw
        .conn
        .start_call(
            anygrpc_core::CallRequest::new("/svc.S/M", "test.local"),
            raw.now,
        )
        .unwrap()
        .0;
    raw.pump();
    raw.send_plain(
        id,
        &fields(&[(":status", "200"), ("content-type", "application/grpc")]),
        false,
    );
    raw.send_data(id, &grpc_message(0, b"pong"), true);
    raw.send_data(id, &grpc_message(0, b"late"), false);
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(id), ErrorCode::STREAM_CLOSED)]);
    let codes: Vec<Code> = raw.finished(id).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Internal], "ended without trailers");
}

// ---- Stream identifiers (RFC 9113 §5.1.1) ----

#[test]
fn stream_id_going_backwards_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(5, "/svc.S/M", false);
    raw.assert_open();
    raw.send_request(3, "/svc.S/M", false);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    assert_eq!(
        raw.goaways(),
        vec![(StreamId(5), ErrorCode::PROTOCOL_ERROR)]
    );
}

#[test]
fn stream_id_reuse_after_the_call_ended_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.assert_serves_call(1);
    raw.send_request(1, "/svc.S/M", false);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn even_stream_id_from_a_client_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(2, "/svc.S/M", false);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

// ---- Frames in flight after our RST_STREAM (RFC 9113 §5.1 "closed", §5.4.2, §6.4) ----

/// Request trailers (END_STREAM) whose one field is inserted in the dynamic table.
fn indexed_trailers() -> Vec<u8> {
    let mut block = bytes::BytesMut::new();
    hpack_literal(b"x-trailer", b"in flight", true, &mut block);
    block.to_vec()
}

/// After we reset stream 1 before the client ended it: the DATA and trailers it had already
/// sent are decoded and discarded (no GOAWAY, no second RST_STREAM), and the next request,
/// whose one field refers to the entry those trailers inserted, is decoded right.
#[track_caller]
fn assert_frames_in_flight_are_discarded(raw: &mut Raw) {
    let resets = raw.resets().len();
    raw.send_data(1, &grpc_message(0, b"in flight"), false);
    raw.send_block(1, &indexed_trailers(), true);
    raw.assert_open();
    assert_eq!(raw.resets().len(), resets, "no RST_STREAM in answer");
    let mut block = plain_block(&request_fields("/svc.S/M")).to_vec();
    block.push(0x80 | 62);
    raw.send_block(3, &block, false);
    raw.send_data(3, &grpc_message(0, b"x"), true);
    raw.pump();
    let head = raw
        .events
        .iter()
        .find_map(|e| match e {
            Event::CallStarted { stream, head, .. } if *stream == StreamId(3) => Some(head),
            _ => None,
        })
        .expect("call 3 started");
    assert_eq!(head.metadata.get("x-trailer"), Some("in flight"));
    raw.assert_open();
}

#[test]
fn frames_in_flight_after_resetting_a_malformed_request_are_discarded() {
    let mut raw = Raw::server(Config::server());
    let mut bad = request_fields("/svc.S/M");
    bad.push(("connection".into(), "close".into()));
    raw.send_plain(1, &bad, false);
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)]);
    assert_frames_in_flight_are_discarded(&mut raw);
}

#[test]
fn frames_in_flight_after_refusing_a_stream_are_discarded() {
    let config = Config::server().max_concurrent_streams(0);
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::REFUSED_STREAM)]);
    raw.send_data(1, &grpc_message(0, b"in flight"), false);
    raw.send_block(1, &indexed_trailers(), true);
    raw.assert_open();
    assert_eq!(raw.resets().len(), 1);
}

#[test]
fn frames_in_flight_after_cancelling_a_call_are_discarded() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.pump();
    raw.conn.cancel(StreamId(1)).unwrap();
    raw.pump();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::CANCEL)]);
    assert_frames_in_flight_are_discarded(&mut raw);
}

#[test]
fn frames_in_flight_after_an_early_response_are_discarded() {
    // RFC 9113 §8.1: the response ended before the request did: RST_STREAM(NO_ERROR).
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.pump();
    raw.respond_ok(1, b"early");
    raw.pump();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::NO_ERROR)]);
    assert_frames_in_flight_are_discarded(&mut raw);
}

#[test]
fn headers_after_the_reset_stream_ended_are_a_reused_stream_id() {
    // Once the client's END_STREAM for the reset stream arrived, nothing more can be in
    // flight on it: a HEADERS is a reused stream id (RFC 9113 §5.1.1).
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.pump();
    raw.conn.cancel(StreamId(1)).unwrap();
    raw.send_data(1, &grpc_message(0, b"x"), true);
    raw.assert_open();
    raw.send_request(1, "/svc.S/M", true);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn no_rst_stream_answers_an_rst_stream() {
    // RFC 9113 §5.4.2: to avoid looping, never RST_STREAM in response to RST_STREAM; after
    // receiving it, nothing more is sent on the stream (§6.4).
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.pump();
    raw.send_rst(1, ErrorCode::CANCEL);
    raw.pump();
    let _ = raw
        .conn
        .send_message(StreamId(1), bytes::Bytes::from_static(b"late"), false);
    let _ = raw
        .conn
        .send_trailers(StreamId(1), Status::ok(), anygrpc_core::Metadata::new());
    raw.send_rst(1, ErrorCode::CANCEL);
    raw.send_rst(1, ErrorCode(0xabc));
    raw.assert_open();
    assert!(raw.resets().is_empty(), "{:?}", raw.resets());
    assert!(
        raw.blocks_on(1).is_empty(),
        "nothing sent on the reset stream"
    );
    assert!(
        !raw.frames
            .iter()
            .any(|f| matches!(f, Frame::Data(d) if d.stream == StreamId(1))),
        "no DATA either"
    );
    raw.assert_serves_call(3);
}

// ---- WINDOW_UPDATE (RFC 9113 §6.9) ----

#[test]
fn window_update_zero_on_a_stream_resets_it_with_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send_window_update(1, 0);
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)]);
    raw.assert_serves_call(3);
}

#[test]
fn window_update_zero_on_the_connection_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_window_update(0, 0);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn stream_window_overflow_resets_it_with_flow_control_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    // The stream's send window is 65,535: this brings it to exactly 2^31-1.
    raw.send_window_update(1, (1 << 31) - 1 - 65_535);
    raw.assert_open();
    assert!(raw.resets().is_empty());
    raw.send_window_update(1, 1);
    raw.assert_open();
    assert_eq!(
        raw.resets(),
        vec![(StreamId(1), ErrorCode::FLOW_CONTROL_ERROR)]
    );
    raw.assert_serves_call(3);
}

#[test]
fn connection_window_overflow_is_flow_control_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_window_update(0, (1 << 31) - 1 - 65_535);
    raw.assert_open();
    raw.send_window_update(0, 1);
    raw.assert_connection_error(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn settings_initial_window_overflowing_an_open_stream_is_flow_control_error() {
    // RFC 9113 §6.9.2: a SETTINGS change that pushes a stream window past 2^31-1.
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send_window_update(1, (1 << 31) - 1 - 65_535);
    raw.assert_open();
    raw.send(&raw_settings(&[(0x4, 65_536)]));
    raw.assert_connection_error(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn window_update_on_a_half_closed_remote_stream_is_not_an_error() {
    // RFC 9113 §6.9: the peer may send WINDOW_UPDATE after its END_STREAM; the receiver MUST
    // NOT treat it as an error.
    let mut raw = Raw::server(Config::server());
    raw.send_unary(1, "/svc.S/M", b"x");
    raw.pump();
    raw.send_window_update(1, 1000);
    raw.respond_ok(1, b"y");
    raw.pump();
    assert!(raw.resets().is_empty());
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("0"));
    raw.assert_open();
}

/// Bytes of DATA payload the connection wrote on `stream`.
fn data_sent(raw: &Raw, stream: u32) -> usize {
    raw.frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) if d.stream == StreamId(stream) => Some(d.data.len()),
            _ => None,
        })
        .sum()
}

#[test]
fn a_window_made_negative_by_settings_stops_sending_until_updated() {
    // RFC 9113 §6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change can make a window negative; the
    // sender MUST track it and send nothing until WINDOW_UPDATEs make it positive.
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_settings(&[(0x4, 20)]));
    raw.send_unary(1, "/svc.S/M", b"x");
    raw.pump();
    raw.conn
        .send_message(StreamId(1), bytes::Bytes::from_static(&[b'm'; 95]), false)
        .unwrap();
    raw.pump();
    assert_eq!(data_sent(&raw, 1), 20, "the window's 20 bytes");
    // The window goes from 0 to 10 - 20 = -10.
    raw.send(&raw_settings(&[(0x4, 10)]));
    raw.send_window_update(1, 5);
    raw.pump();
    assert_eq!(data_sent(&raw, 1), 20, "-5: still nothing");
    raw.send_window_update(1, 12);
    raw.pump();
    assert_eq!(data_sent(&raw, 1), 27, "+7: seven bytes more");
}

#[test]
fn settings_initial_window_does_not_change_the_connection_window() {
    // RFC 9113 §6.9.2: only WINDOW_UPDATE changes the connection window (65,535 at first).
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_settings(&[(0x4, 1 << 20)]));
    raw.send_unary(1, "/svc.S/M", b"x");
    raw.pump();
    raw.respond_ok(1, &[b'r'; 100_000]);
    raw.pump();
    assert_eq!(data_sent(&raw, 1), 65_535);
    raw.send_window_update(0, 100_000);
    raw.pump();
    assert_eq!(data_sent(&raw, 1), 100_005);
}

// ---- Receive windows (RFC 9113 §6.9.1) ----

/// Sends DATA on `stream` as complete messages the application does not release, `size` bytes
/// per frame (prefix included), `total` bytes in all.
fn send_unreleased(raw: &mut Raw, stream: u32, total: usize, size: usize) {
    let mut left = total;
    while left > 0 {
        let n = left.min(size);
        raw.send_data(stream, &grpc_message(0, &vec![b'a'; n - 5]), false);
        left -= n;
    }
}

#[test]
fn data_beyond_the_stream_window_is_flow_control_error() {
    let config = Config::server().initial_stream_window(65_535);
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    // Exactly the advertised window, in messages nobody releases.
    send_unreleased(&mut raw, 1, 65_535, 16_384);
    raw.assert_open();
    assert!(raw.resets().is_empty());
    assert!(
        !raw.frames
            .iter()
            .any(|f| matches!(f, Frame::WindowUpdate(w) if w.stream == StreamId(1))),
        "no stream credit was given back: the window is still 65,535"
    );
    // One byte over.
    raw.send_data(1, b"\0", false);
    raw.assert_open();
    assert_eq!(
        raw.resets(),
        vec![(StreamId(1), ErrorCode::FLOW_CONTROL_ERROR)]
    );
    raw.assert_serves_call(3);
}

#[test]
fn data_beyond_the_connection_window_is_flow_control_error() {
    // The connection credits every DATA frame back at once (in batches of half the window),
    // so only a frame larger than what is left can overrun it: frames up to 1 MiB here.
    let config = Config::server()
        .connection_window(65_535)
        .max_frame_size(1 << 20);
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    // Exactly the window, in one frame: accepted, and credited back in full.
    send_unreleased(&mut raw, 1, 65_535, 65_535);
    raw.assert_open();
    let granted: Vec<u32> = raw
        .frames
        .iter()
        .filter_map(|f| match f {
            Frame::WindowUpdate(w) if w.stream.is_connection() => Some(w.increment),
            _ => None,
        })
        .collect();
    assert_eq!(granted, vec![65_535]);
    // The window is 65,535 again: one byte more is too much.
    send_unreleased(&mut raw, 1, 65_536, 65_536);
    raw.assert_connection_error(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn a_smaller_stream_window_applies_once_acknowledged() {
    // RFC 9113 §6.9.3: the peer may send up to the old window (65,535) until it has seen our
    // smaller SETTINGS_INITIAL_WINDOW_SIZE, which we know from its ACK.
    let config = Config::server().initial_stream_window(1000);
    let mut raw = server_before_our_settings_are_acked(config);
    raw.send_request(1, "/svc.S/M", false);
    send_unreleased(&mut raw, 1, 65_535, 16_384);
    raw.assert_open();
    assert!(raw.resets().is_empty(), "{:?}", raw.resets());
    raw.send_frame(&Frame::Settings(Settings::ack()));
    raw.send_request(3, "/svc.S/M", false);
    send_unreleased(&mut raw, 3, 1000, 1000);
    raw.assert_open();
    assert!(raw.resets().is_empty());
    raw.send_data(3, b"\0", false);
    raw.assert_open();
    assert_eq!(
        raw.resets(),
        vec![(StreamId(3), ErrorCode::FLOW_CONTROL_ERROR)]
    );
}

#[test]
fn data_on_a_closed_stream_still_counts_toward_the_connection_window() {
    // RFC 9113 §6.9: a flow-controlled frame counts against the connection window even when
    // its stream is closed (§5.1), and its credit comes back.
    let config = Config::server()
        .connection_window(65_535)
        .max_frame_size(1 << 20);
    let mut raw = Raw::server(config);
    // A call without request message: its stream closes with the window untouched.
    raw.send_request(1, "/svc.S/M", true);
    raw.pump();
    raw.respond_ok(1, b"done");
    raw.pump();
    assert_eq!(raw.conn.active_calls(), 0);
    let before = raw.frames.len();
    raw.send_data(1, &vec![0; 65_535], false);
    raw.assert_open();
    let granted: Vec<u32> = raw.frames[before..]
        .iter()
        .filter_map(|f| match f {
            Frame::WindowUpdate(w) if w.stream.is_connection() => Some(w.increment),
            _ => None,
        })
        .collect();
    assert_eq!(granted, vec![65_535], "counted, then credited back");
    raw.send_data(1, &vec![0; 65_536], false);
    raw.assert_connection_error(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn padding_counts_toward_both_windows() {
    // RFC 9113 §6.1: the whole DATA payload, Pad Length and padding included, is flow
    // controlled.
    let config = Config::server().initial_stream_window(65_535);
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    // 16 frames of 4,096 flow-controlled bytes (255 of them padding) and one of 4,095.
    let mut payload = vec![255u8];
    payload.extend_from_slice(&grpc_message(0, &[b'p'; 4096 - 1 - 255 - 5]));
    payload.extend(std::iter::repeat_n(0, 255));
    assert_eq!(payload.len(), 4096);
    for _ in 0..15 {
        raw.send(&raw_frame(FrameType::DATA, flags::PADDED, 1, &payload));
    }
    raw.send(&raw_frame(
        FrameType::DATA,
        flags::PADDED,
        1,
        &payload[..4095],
    ));
    raw.assert_open();
    assert!(
        raw.resets().is_empty(),
        "exactly the window: {:?}",
        raw.resets()
    );
    raw.send(&raw_frame(FrameType::DATA, flags::PADDED, 1, &[0]));
    raw.assert_open();
    assert_eq!(
        raw.resets(),
        vec![(StreamId(1), ErrorCode::FLOW_CONTROL_ERROR)]
    );
}

#[test]
fn padding_as_long_as_the_payload_is_protocol_error() {
    // RFC 9113 §6.1, §6.2: padding the length of the payload or more is a connection
    // PROTOCOL_ERROR; padding filling all but the Pad Length field is fine.
    for kind in [FrameType::DATA, FrameType::HEADERS] {
        let end = if kind == FrameType::HEADERS {
            flags::END_STREAM | flags::END_HEADERS
        } else {
            0
        };
        let mut raw = Raw::server(Config::server());
        raw.send_request(1, "/svc.S/M", false);
        raw.send(&raw_frame(kind, flags::PADDED | end, 1, &[3, 0, 0, 0]));
        raw.assert_open();
        let mut raw = Raw::server(Config::server());
        raw.send_request(1, "/svc.S/M", false);
        raw.send(&raw_frame(kind, flags::PADDED | end, 1, &[4, 0, 0, 0]));
        raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    }
}

#[test]
fn rst_stream_with_an_unknown_code_ends_the_call_like_internal_error() {
    // RFC 9113 §7: unknown codes MUST NOT trigger special behaviour; they MAY be taken as
    // INTERNAL_ERROR.
    let mut raw = Raw::client(Config::client());
    let id = raw.start_unary("/svc.S/M");
    raw.send_rst(id, ErrorCode(0xabc));
    raw.assert_open();
    let codes: Vec<Code> = raw.finished(id).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Internal]);
    assert!(raw.resets().is_empty(), "no RST_STREAM in answer");
    let next = raw.start_unary("/svc.S/M");
    assert_eq!(next, id + 2);
}

// ---- GOAWAY (RFC 9113 §6.8) ----

#[test]
fn goaway_last_stream_id_never_increases() {
    // RFC 9113 §6.8: endpoints MUST NOT increase the last stream id they send. A stream the
    // client opens after the final GOAWAY is ignored, and a later error GOAWAY still names
    // the last stream processed.
    let mut raw = draining_server(Config::server());
    raw.send_request(3, "/svc.S/M", false);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)], "stream 3 is ignored");
    raw.send(&raw_frame(FrameType::PING, 0, 1, &[0; 8]));
    raw.pump();
    let ids: Vec<u32> = raw.goaways().iter().map(|g| g.0.0).collect();
    assert_eq!(ids, vec![(1 << 31) - 1, 1, 1], "{:?}", raw.goaways());
    assert_eq!(raw.goaways()[2].1, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn streams_ignored_after_our_goaway_are_still_decoded() {
    // RFC 9113 §6.8: after GOAWAY, HEADERS on streams above its last id may be discarded but
    // MUST be decoded for the HPACK context. Stream 3, ignored, inserts an entry that the
    // trailers of stream 1, still served, refer to.
    let mut raw = draining_server(Config::server());
    raw.send_data(1, &grpc_message(0, b"x"), false);
    let mut block = plain_block(&request_fields("/svc.S/M")).to_vec();
    let mut entry = bytes::BytesMut::new();
    hpack_literal(b"x-late", b"1", true, &mut entry);
    block.extend_from_slice(&entry);
    raw.send_block(3, &block, true);
    raw.send_block(1, &[0x80 | 62], true);
    raw.pump();
    assert!(raw.goaways().iter().all(|g| g.1 == ErrorCode::NO_ERROR));
    assert!(raw.closed().is_none(), "{:?}", raw.closed());
    assert!(
        raw.resets().is_empty(),
        "the GOAWAY said it: {:?}",
        raw.resets()
    );
    assert_eq!(raw.started(), vec![StreamId(1)], "stream 3 is not served");
    assert!(
        raw.events
            .iter()
            .any(|e| matches!(e, Event::HalfClosed { stream } if *stream == StreamId(1))),
        "{:?}",
        raw.events
    );
    raw.respond_ok(1, b"y");
    raw.pump();
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("0"));
}

/// A server that sent its final GOAWAY (last stream 1) while serving stream 1.
fn draining_server(config: Config) -> Raw {
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    raw.pump();
    raw.conn.shutdown(raw.now);
    raw.pump();
    let ping = raw
        .frames
        .iter()
        .find_map(|f| match f {
            Frame::Ping(p) if !p.ack => Some(p.payload),
            _ => None,
        })
        .expect("the shutdown PING");
    raw.send_frame(&Frame::Ping(anygrpc_core::frame::Ping::new(ping).pong()));
    raw.pump();
    assert_eq!(
        raw.goaways().last(),
        Some(&(StreamId(1), ErrorCode::NO_ERROR))
    );
    raw
}

#[test]
fn calls_in_flight_when_we_drain_make_no_control_frames() {
    // A client had many calls in flight when our final GOAWAY left; they all arrive in one
    // read. Each used to be answered with RST_STREAM(REFUSED_STREAM): more than the control
    // backlog allows, so the server cut off a conforming client (found by stream_ops). The
    // GOAWAY already tells the client they were not processed: they are ignored, their DATA
    // and trailers too.
    let config = Config::server().max_pending_control_frames(16);
    let mut raw = draining_server(config);
    // Nothing is flushed in between: all of it is one read as far as the backlog goes.
    for id in (3..3 + 2 * 200).step_by(2) {
        raw.send_request(id, "/svc.S/M", false);
        raw.send_data(id, &grpc_message(0, b"late"), false);
        let trailers = raw.block(&[("x-end".to_string(), "1".to_string())]);
        raw.send_block(id, &trailers, true);
    }
    raw.pump();
    assert!(raw.goaways().iter().all(|g| g.1 == ErrorCode::NO_ERROR));
    assert!(raw.closed().is_none(), "{:?}", raw.closed());
    assert!(raw.resets().is_empty(), "{:?}", raw.resets());
    assert_eq!(raw.started(), vec![StreamId(1)]);
    // The call in flight is still served, then the connection ends cleanly.
    raw.send_data(1, &grpc_message(0, b"x"), true);
    raw.respond_ok(1, b"y");
    raw.pump();
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("0"));
    assert!(matches!(raw.closed(), Some(None)), "{:?}", raw.closed());
}

#[test]
fn a_client_that_keeps_opening_after_our_goaway_is_cut_off() {
    // A conforming client opens at most our concurrency limit before our GOAWAY reaches it;
    // one that goes on opening streams we ignore spends the idle-frame budget.
    let config = Config::server()
        .max_concurrent_streams(4)
        .idle_frame_burst(10);
    let mut raw = draining_server(config);
    for id in (3..3 + 2 * 4).step_by(2) {
        raw.send_request(id, "/svc.S/M", true);
    }
    raw.pump();
    assert!(raw.closed().is_none(), "{:?}", raw.closed());
    for id in (11..11 + 2 * 40).step_by(2) {
        raw.send_request(id, "/svc.S/M", true);
    }
    raw.pump();
    assert_eq!(
        raw.goaways().last().map(|g| g.1),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
    assert!(raw.resets().is_empty(), "{:?}", raw.resets());
}

#[test]
fn goaway_with_wrong_stream_or_length_is_a_connection_error() {
    // RFC 9113 §6.8: stream other than 0 is PROTOCOL_ERROR; §4.2: too short for its fixed
    // fields is FRAME_SIZE_ERROR.
    let mut raw = Raw::client(Config::client());
    raw.send(&raw_frame(FrameType::GOAWAY, 0, 1, &[0; 8]));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    let mut raw = Raw::client(Config::client());
    raw.send(&raw_frame(FrameType::GOAWAY, 0, 0, &[0; 7]));
    raw.assert_connection_error(ErrorCode::FRAME_SIZE_ERROR);
}

#[test]
fn after_goaway_a_client_opens_no_stream() {
    // RFC 9113 §6.8: receivers of GOAWAY MUST NOT open additional streams.
    let mut raw = Raw::client(Config::client());
    let id = raw.start_unary("/svc.S/M");
    let mut payload = id.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0; 4]);
    raw.send(&raw_frame(FrameType::GOAWAY, 0, 0, &payload));
    raw.pump();
    assert!(!raw.conn.accepts_calls());
    assert!(
        raw.conn
            .start_call(
                anygrpc_core::CallRequest::new("/svc.S/M", "test.local"),
                raw.now
            )
            .is_err()
    );
    raw.pump();
    assert!(raw.blocks_on(id + 2).is_empty(), "nothing opened");
}

#[test]
fn goaway_with_an_unknown_error_code_closes_like_any_error() {
    // RFC 9113 §7: unknown codes trigger nothing special.
    let mut raw = Raw::client(Config::client());
    let id = raw.start_unary("/svc.S/M");
    let mut payload = 0u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&0xabcu32.to_be_bytes());
    raw.send(&raw_frame(FrameType::GOAWAY, 0, 0, &payload));
    raw.pump();
    let codes: Vec<Code> = raw.finished(id).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Unavailable]);
    assert!(raw.conn.is_closed());
}

// ---- Header blocks (RFC 9113 §6.2, §6.10) ----

#[test]
fn continuation_without_headers_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    let block = plain_block(&request_fields("/svc.S/M"));
    raw.send_continuation(1, &block, true);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn continuation_after_a_complete_header_block_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send_continuation(1, &[], true);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn continuation_on_another_stream_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    let block = plain_block(&request_fields("/svc.S/M"));
    let (a, b) = block.split_at(10);
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, a));
    raw.send_continuation(3, b, true);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn frame_interleaved_in_a_header_block_is_protocol_error() {
    let interlopers = [
        raw_frame(FrameType::PING, 0, 0, &[0; 8]),
        raw_frame(FrameType::DATA, 0, 1, b"x"),
        raw_frame(FrameType::HEADERS, flags::END_HEADERS, 3, &[]),
        raw_frame(FrameType::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]),
        raw_frame(FrameType::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]),
        // Even an unknown frame type (RFC 9113 §6.10: "any other type").
        raw_frame(FrameType(0xfa), 0, 0, &[]),
    ];
    for frame in interlopers {
        let mut raw = Raw::server(Config::server());
        let block = plain_block(&request_fields("/svc.S/M"));
        let (a, b) = block.split_at(10);
        raw.send(&raw_frame(FrameType::HEADERS, 0, 1, a));
        raw.send(&frame);
        raw.send_continuation(1, b, true);
        raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
    }
}

#[test]
fn header_block_split_in_continuations_is_accepted() {
    let mut raw = Raw::server(Config::server());
    let block = plain_block(&request_fields("/svc.S/M"));
    let (a, rest) = block.split_at(7);
    let (b, c) = rest.split_at(20);
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, a));
    raw.send_continuation(1, b, false);
    raw.send_continuation(1, c, true);
    raw.send_data(1, &grpc_message(0, b"hi"), true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);
}

#[test]
fn broken_hpack_is_compression_error() {
    let mut raw = Raw::server(Config::server());
    // Index 0 is never valid (RFC 7541 §6.1); index 200 is not in any table.
    for block in [&[0x80][..], &[0xff, 0x49][..]] {
        let mut raw2 = Raw::server(Config::server());
        raw2.send_block(1, block, true);
        raw2.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
    }
    // A truncated literal.
    raw.send_block(1, &[0x00, 0x05, b'a'], true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
}

// ---- Header blocks over the list limit (RFC 9113 §4.3, §6.5.2, §10.5.1) ----

/// Sends `block` on `stream` as HEADERS and CONTINUATION frames of `frame` bytes at most.
fn send_block_in_frames(raw: &mut Raw, stream: u32, block: &[u8], frame: usize, end_stream: bool) {
    let mut pieces = block.chunks(frame).peekable();
    let first = pieces.next().unwrap_or_default();
    let mut header_flags = if end_stream { flags::END_STREAM } else { 0 };
    if pieces.peek().is_none() {
        header_flags |= flags::END_HEADERS;
    }
    raw.send(&raw_frame(FrameType::HEADERS, header_flags, stream, first));
    while let Some(piece) = pieces.next() {
        raw.send_continuation(stream, piece, pieces.peek().is_none());
    }
}

/// A header block of `fields` as literals without indexing, then `bulk` fields of 4,000
/// bytes and then `indexed`, both inserted in the dynamic table: far over any list limit,
/// and leaving `indexed` as the newest entries of the peer's table (HPACK index 62 is the
/// last of them).
fn oversized_block(
    fields: &[(String, String)],
    bulk: usize,
    indexed: &[(String, String)],
) -> Vec<u8> {
    let mut block = bytes::BytesMut::new();
    for (name, value) in fields {
        hpack_literal(name.as_bytes(), value.as_bytes(), false, &mut block);
    }
    for i in 0..bulk {
        hpack_literal(
            format!("x-bulk-{i}").as_bytes(),
            &[b'b'; 4000],
            true,
            &mut block,
        );
    }
    for (name, value) in indexed {
        hpack_literal(name.as_bytes(), value.as_bytes(), true, &mut block);
    }
    block.to_vec()
}

/// A block referencing the `n` newest dynamic-table entries, oldest first.
fn newest_entries(n: u8) -> Vec<u8> {
    (0..n).rev().map(|i| 0x80 | (62 + i)).collect()
}

#[test]
fn request_block_far_over_the_list_limit_fails_the_call_and_keeps_hpack_in_step() {
    // RFC 9113 §10.5.1: a block larger than we accept still has to be decoded to keep the
    // HPACK context; the request is refused (RESOURCE_EXHAUSTED, gRPC's 431) and the
    // connection lives. 200 KB, in 16 KiB frames: far beyond the old raw buffering bound
    // (2 × the list limit + 1 KiB), within the 1 MiB block cap.
    let config = Config::server();
    let limit = config.max_header_list_size as usize;
    let mut raw = Raw::server(config);
    let head = request_fields("/svc.S/M");
    let block = oversized_block(&head, 50, &head);
    assert!(block.len() > 2 * limit + 1024 && block.len() < 1 << 20);
    send_block_in_frames(&mut raw, 1, &block, 16_384, true);
    raw.assert_open();
    assert!(raw.started().is_empty(), "the application never sees it");
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("8"));
    assert!(raw.resets().is_empty(), "answered, not reset");
    // The next request is nothing but references to the entries the refused block inserted
    // last: it decodes only if that block was decoded to its end.
    raw.send_block(3, &newest_entries(head.len() as u8), false);
    raw.send_data(3, &grpc_message(0, b"hello"), true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(3)]);
    raw.respond_ok(3, b"world");
    raw.pump();
    assert_eq!(raw.final_block(3).unwrap().get("grpc-status"), Some("0"));
    raw.assert_open();
}

#[test]
fn response_block_far_over_the_list_limit_fails_the_call_and_keeps_hpack_in_step() {
    let mut raw = Raw::client(Config::client());
    let id = raw.start_unary("/svc.S/M");
    let head = fields(&[(":status", "200"), ("content-type", "application/grpc")]);
    let block = oversized_block(&head, 50, &head);
    send_block_in_frames(&mut raw, id, &block, 16_384, false);
    raw.assert_open();
    let codes: Vec<Code> = raw.finished(id).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Internal], "{:?}", raw.finished(id));
    assert_eq!(raw.resets(), vec![(StreamId(id), ErrorCode::CANCEL)]);
    // The next response head is two references to what that block inserted last.
    let next = raw.start_unary("/svc.S/M");
    raw.send_block(next, &newest_entries(2), false);
    raw.send_data(next, &grpc_message(0, b"pong"), false);
    raw.send_plain(next, &fields(&[("grpc-status", "0")]), true);
    raw.pump();
    let codes: Vec<Code> = raw.finished(next).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Ok]);
    raw.assert_open();
}

#[test]
fn a_field_cut_by_a_frame_boundary_is_buffered_up_to_twice_the_list_limit() {
    // One 40 KB value: in one frame it is decoded where it lies and the call fails alone;
    // cut in two frames it would have to be buffered whole, and beyond 2 × the list limit +
    // 1 KiB it is refused: ENHANCE_YOUR_CALM (the documented bound).
    let config = Config::server();
    let bound = 2 * config.max_header_list_size as usize + 1024;
    let mut block = bytes::BytesMut::new();
    hpack_literal(b"x-huge", &vec![b'h'; 40_000], false, &mut block);
    assert!(block.len() > bound);
    let mut raw = Raw::server(config.clone());
    send_block_in_frames(&mut raw, 1, &block, 64 << 10, true);
    raw.assert_open();
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("8"));
    raw.assert_serves_call(3);
    let mut raw = Raw::server(config);
    send_block_in_frames(&mut raw, 1, &block, 16_384, true);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn request_trailers_over_the_list_limit_fail_the_call_with_resource_exhausted() {
    // The call, already started, fails as an oversized head would: RESOURCE_EXHAUSTED to
    // the application and to the client; the connection lives.
    let config = Config::server().max_header_list_size(1000);
    let mut raw = Raw::server(config);
    raw.send_plain(1, &request_fields("/svc.S/M"), false);
    raw.send_data(1, &grpc_message(0, b"x"), false);
    raw.send_plain(1, &fields(&[("x-pad", &"p".repeat(2000))]), true);
    raw.assert_open();
    let ends: Vec<Code> = raw
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Cancelled { stream, status } if *stream == StreamId(1) => Some(status.code()),
            _ => None,
        })
        .collect();
    assert_eq!(ends, vec![Code::ResourceExhausted], "{:?}", raw.events);
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("8"));
    raw.assert_serves_call(3);
}

// ---- HPACK (RFC 7541; RFC 9113 §4.3, §4.3.1) ----

/// A server that sent `config`'s SETTINGS, whose raw client sent the preface and SETTINGS but
/// has not acknowledged the server's yet.
fn server_before_our_settings_are_acked(config: Config) -> Raw {
    let mut raw = Raw::new(Side::Server, config);
    raw.send(CLIENT_PREFACE);
    raw.send_frame(&Frame::Settings(Settings::default()));
    raw.settle();
    raw
}

#[test]
fn hpack_table_is_4096_until_a_smaller_setting_is_acknowledged() {
    // RFC 9113 §4.3.1: the table starts at 4,096 bytes; a smaller SETTINGS_HEADER_TABLE_SIZE
    // takes effect when the peer acknowledges it. Before that the peer's encoder may fill
    // 4,096 bytes (two request heads: the second is references to the first's entries).
    let config = Config::server().header_table_size(256);
    let mut raw = server_before_our_settings_are_acked(config.clone());
    raw.send_unary(1, "/svc.S/M", b"a");
    raw.send_unary(3, "/svc.S/M", b"b");
    raw.assert_open();
    assert_eq!(raw.started(), vec![StreamId(1), StreamId(3)]);
    // After the ACK, the next block must open with a size update to at most 256.
    raw.send_frame(&Frame::Settings(Settings::ack()));
    raw.encoder.set_max_table_size(256);
    raw.assert_serves_call(5);
    // Without it: COMPRESSION_ERROR (RFC 9113 §4.3.1).
    let mut raw = server_before_our_settings_are_acked(config);
    raw.send_unary(1, "/svc.S/M", b"a");
    raw.send_frame(&Frame::Settings(Settings::ack()));
    raw.send_plain(3, &request_fields("/svc.S/M"), true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
}

#[test]
fn size_update_above_the_acknowledged_setting_is_compression_error() {
    // RFC 7541 §6.3: the limit is our SETTINGS_HEADER_TABLE_SIZE once acknowledged; before
    // that, the initial 4,096.
    let config = Config::server().header_table_size(8192);
    let update = |size: usize| {
        let mut block = bytes::BytesMut::new();
        crate::support::raw::hpack_int(size, 5, 0x20, &mut block);
        block.extend_from_slice(&plain_block(&request_fields("/svc.S/M")));
        block
    };
    let mut raw = server_before_our_settings_are_acked(config.clone());
    raw.send_block(1, &update(4096), true);
    raw.assert_open();
    raw.send_block(3, &update(4097), true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
    let mut raw = Raw::server(config);
    raw.send_block(1, &update(8192), true);
    raw.assert_open();
    assert_eq!(raw.started(), vec![StreamId(1)]);
    raw.send_block(3, &update(8193), true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
}

#[test]
fn size_update_not_at_the_start_of_a_block_is_compression_error() {
    // RFC 7541 §4.2: only at the beginning of a block, which may span frames.
    let mut raw = Raw::server(Config::server());
    let mut block = plain_block(&request_fields("/svc.S/M")).to_vec();
    block.push(0x20);
    raw.send_block(1, &block, true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
    // After a field in the HEADERS frame, at the start of a CONTINUATION.
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &[0x83]));
    raw.send_continuation(1, &[0x20], true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
    // An empty HEADERS frame: a CONTINUATION is still the start of the block.
    let mut raw = Raw::server(Config::server());
    raw.send(&raw_frame(FrameType::HEADERS, flags::END_STREAM, 1, &[]));
    let mut block = vec![0x3f, 0xe1, 0x1f];
    block.extend_from_slice(&plain_block(&request_fields("/svc.S/M")));
    raw.send_continuation(1, &block, true);
    raw.assert_open();
    assert_eq!(raw.started(), vec![StreamId(1)]);
}

#[test]
fn three_size_updates_in_one_block_are_compression_error() {
    // RFC 7541 §4.2 lets an encoder signal at most two (the smallest, then the final size);
    // a third is refused (stricter than the decoder's duty).
    let mut raw = Raw::server(Config::server());
    let mut block = vec![0x20, 0x20];
    block.extend_from_slice(&plain_block(&request_fields("/svc.S/M")));
    raw.send_block(1, &block, true);
    raw.assert_open();
    let mut raw = Raw::server(Config::server());
    let mut block = vec![0x20, 0x20, 0x20];
    block.extend_from_slice(&plain_block(&request_fields("/svc.S/M")));
    raw.send_block(1, &block, true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
}

#[test]
fn hpack_integer_beyond_our_limit_is_compression_error() {
    // RFC 7541 §5.1: integers exceeding implementation limits, in value or in length.
    for block in [
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..], // index above 2^32-1
        &[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00][..], // six continuation bytes
        &[0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f][..], // a string length above 2^32-1
    ] {
        let mut raw = Raw::server(Config::server());
        raw.send_block(1, block, true);
        raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
    }
}

#[test]
fn huffman_with_eos_or_bad_padding_is_compression_error() {
    // RFC 7541 §5.2: the EOS symbol, padding longer than 7 bits, padding that is not the
    // high bits of EOS: each a decoding error.
    for value in [
        &[0x84, 0xff, 0xff, 0xff, 0xff][..], // EOS (30 ones) and 2 bits of padding
        &[0x82, 0x07, 0xff][..],             // '0' (00000), then 11 bits of ones
        &[0x81, 0x00][..],                   // '0', then 3 bits of zeros
    ] {
        let mut block = plain_block(&request_fields("/svc.S/M")).to_vec();
        block.push(0x00);
        block.extend_from_slice(&[0x05]);
        block.extend_from_slice(b"x-huf");
        block.extend_from_slice(value);
        let mut raw = Raw::server(Config::server());
        raw.send_block(1, &block, true);
        raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
    }
    // '0' then 3 bits of ones: valid.
    let mut block = plain_block(&request_fields("/svc.S/M")).to_vec();
    block.extend_from_slice(&[0x00, 0x05]);
    block.extend_from_slice(b"x-huf");
    block.extend_from_slice(&[0x81, 0x07]);
    let mut raw = Raw::server(Config::server());
    raw.send_block(1, &block, true);
    raw.assert_open();
    assert_eq!(raw.started(), vec![StreamId(1)]);
}

#[test]
fn duplicate_dynamic_table_entries_are_not_an_error() {
    // RFC 7541 §2.3.2: the table may hold the same entry twice.
    let mut raw = Raw::server(Config::server());
    let mut block = bytes::BytesMut::new();
    block.extend_from_slice(&plain_block(&request_fields("/svc.S/M")));
    hpack_literal(b"x-dup", b"1", true, &mut block);
    hpack_literal(b"x-dup", b"1", true, &mut block);
    block.extend_from_slice(&[0x80 | 62, 0x80 | 63]);
    raw.send_block(1, &block, true);
    raw.assert_open();
    assert_eq!(raw.started(), vec![StreamId(1)]);
}

#[test]
fn an_entry_larger_than_the_table_empties_it_without_error() {
    // RFC 7541 §4.4: not an error; the table is left empty, so index 62 then is one.
    let mut raw = Raw::server(Config::server());
    let mut block = bytes::BytesMut::new();
    block.extend_from_slice(&plain_block(&request_fields("/svc.S/M")));
    hpack_literal(b"x-small", b"1", true, &mut block);
    hpack_literal(b"x-large", &[b'l'; 4096], true, &mut block);
    raw.send_block(1, &block, true);
    raw.assert_open();
    assert_eq!(raw.started(), vec![StreamId(1)]);
    raw.send_block(3, &[0x80 | 62], true);
    raw.assert_connection_error(ErrorCode::COMPRESSION_ERROR);
}

// ---- Malformed requests (RFC 9113 §8.1.1, §8.2, §8.3): stream error, connection lives ----

/// Sends `fields` as a request on stream 1, expects RST_STREAM(1, PROTOCOL_ERROR) and no call,
/// then serves a valid call on stream 3.
#[track_caller]
fn assert_malformed_request(fields: &[(String, String)]) {
    let mut raw = Raw::server(Config::server());
    raw.send_plain(1, fields, false);
    // The peer's DATA, already in flight, is ignored.
    raw.send_data(1, &grpc_message(0, b"x"), true);
    raw.assert_open();
    assert_eq!(
        raw.resets(),
        vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)],
        "fields {fields:?}"
    );
    assert!(raw.started().is_empty(), "no call for a malformed request");
    assert_eq!(raw.conn.active_calls(), 0);
    raw.assert_serves_call(3);
}

/// Sends `fields` as a unary request on stream 1 and asserts the application gets the call
/// (no reset); returns the head it was given.
#[track_caller]
fn assert_request_reaches_the_application(fields: &[(String, String)]) -> RequestHead {
    let mut raw = Raw::server(Config::server());
    raw.send_plain(1, fields, false);
    raw.send_data(1, &grpc_message(0, b"x"), true);
    raw.assert_open();
    assert!(
        raw.resets().is_empty(),
        "fields {fields:?}: {:?}",
        raw.resets()
    );
    raw.events
        .iter()
        .find_map(|e| match e {
            Event::CallStarted { head, .. } => Some((**head).clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("fields {fields:?}: no call; events {:?}", raw.events))
}

fn request_with(f: impl FnOnce(&mut Vec<(String, String)>)) -> Vec<(String, String)> {
    let mut fields = request_fields("/svc.S/M");
    f(&mut fields);
    fields
}

/// The request with the value of its (first) `name` field replaced by `value`.
fn request_setting(name: &str, value: &str) -> Vec<(String, String)> {
    request_with(|f| match f.iter_mut().find(|(n, _)| n == name) {
        Some(field) => field.1 = value.into(),
        None => panic!("no {name} in the request"),
    })
}

#[test]
fn path_without_leading_slash_is_reset_with_protocol_error() {
    // The class of grpc-go CVE-2026-33186: routed, it would bypass authorization by path.
    for path in ["svc.S/M", "grpc.testing.TestService/EmptyCall", "svc", "?q"] {
        assert_malformed_request(&request_setting(":path", path));
    }
}

#[test]
fn asterisk_path_is_reset_with_protocol_error() {
    // RFC 9113 §8.3.1: "*" is for OPTIONS only; on a POST the request is malformed.
    assert_malformed_request(&request_setting(":path", "*"));
}

#[test]
fn options_asterisk_is_well_formed_and_answered_405() {
    let mut fields = request_setting(":path", "*");
    fields[0].1 = "OPTIONS".into();
    let mut raw = Raw::server(Config::server());
    raw.send_plain(1, &fields, true);
    raw.assert_open();
    assert!(raw.resets().is_empty(), "not malformed: {:?}", raw.resets());
    assert!(raw.started().is_empty());
    let end = raw.final_block(1).expect("an answer");
    assert_eq!(end.get(":status"), Some("405"));
    raw.assert_serves_call(3);
}

#[test]
fn well_formed_path_naming_no_method_reaches_the_application() {
    // Only a missing "/" is malformed: any other path goes to the router, which answers
    // UNIMPLEMENTED (grpc-go draws the same line).
    for path in ["/", "/x", "/a/b/c", "/svc.S/", "/svc.S/M?x=1"] {
        let head = assert_request_reaches_the_application(&request_setting(":path", path));
        assert_eq!(head.path, path.as_bytes());
    }
}

#[test]
fn request_missing_a_required_pseudo_header_is_reset_with_protocol_error() {
    for name in [":method", ":scheme", ":path"] {
        assert_malformed_request(&request_with(|f| f.retain(|(n, _)| n != name)));
    }
}

#[test]
fn request_without_authority_is_served() {
    // RFC 9113 §8.3.1: :authority may be left out; Host then stands in for it.
    let head = assert_request_reaches_the_application(&request_with(|f| {
        f.retain(|(n, _)| n != ":authority")
    }));
    assert_eq!(head.authority, None);
    let head = assert_request_reaches_the_application(&request_with(|f| {
        f.retain(|(n, _)| n != ":authority");
        f.push(("host".into(), "h.local".into()));
    }));
    assert_eq!(head.authority.as_deref(), Some(&b"h.local"[..]));
}

#[test]
fn request_with_empty_pseudo_header_is_reset_with_protocol_error() {
    for name in [":method", ":scheme", ":path", ":authority"] {
        assert_malformed_request(&request_setting(name, ""));
    }
}

#[test]
fn request_with_duplicate_pseudo_header_is_reset_with_protocol_error() {
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/svc.S/Other"),
        (":authority", "test.local"),
    ] {
        assert_malformed_request(&request_with(|f| f.insert(0, (name.into(), value.into()))));
    }
}

#[test]
fn pseudo_header_after_regular_field_is_reset_with_protocol_error() {
    assert_malformed_request(&request_with(|f| {
        let path = f.remove(2);
        f.push(path);
    }));
}

#[test]
fn unknown_pseudo_header_is_reset_with_protocol_error() {
    assert_malformed_request(&request_with(|f| {
        f.insert(0, (":protocol".into(), "websocket".into()))
    }));
}

#[test]
fn response_pseudo_header_in_a_request_is_reset_with_protocol_error() {
    assert_malformed_request(&request_with(|f| {
        f.insert(0, (":status".into(), "200".into()))
    }));
}

#[test]
fn uppercase_field_name_is_reset_with_protocol_error() {
    assert_malformed_request(&request_with(|f| f.push(("X-Custom".into(), "v".into()))));
}

#[test]
fn field_name_with_forbidden_byte_is_reset_with_protocol_error() {
    // RFC 9113 §8.2.1: no 0x00-0x20, 0x7f-0xff, nor a colon outside pseudo-header names.
    for name in ["", "x\0y", "x y", "x:y", "x\u{7f}", "caf\u{e9}"] {
        assert_malformed_request(&request_with(|f| f.push((name.into(), "v".into()))));
    }
}

#[test]
fn connection_specific_header_is_reset_with_protocol_error() {
    for (name, value) in [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
    ] {
        assert_malformed_request(&request_with(|f| f.push((name.into(), value.into()))));
    }
}

#[test]
fn te_other_than_trailers_is_reset_with_protocol_error() {
    for value in ["gzip", "trailers, gzip", ""] {
        assert_malformed_request(&request_setting("te", value));
    }
}

#[test]
fn host_differing_from_authority_is_reset_with_protocol_error() {
    assert_malformed_request(&request_with(|f| {
        f.push(("host".into(), "other.local".into()))
    }));
    // The same host name in another case is the same entity (RFC 9110 §4.2.3).
    let head = assert_request_reaches_the_application(&request_with(|f| {
        f.push(("host".into(), "TEST.local".into()))
    }));
    assert_eq!(head.authority.as_deref(), Some(&b"test.local"[..]));
}

#[test]
fn duplicate_host_is_reset_with_protocol_error() {
    // Host is a singleton (RFC 9110 §7.2, gRPC A41): two of them are refused whether or not
    // they agree, with or without :authority.
    for (a, b) in [("test.local", "other.local"), ("test.local", "test.local")] {
        assert_malformed_request(&request_with(|f| {
            f.push(("host".into(), a.into()));
            f.push(("host".into(), b.into()));
        }));
        assert_malformed_request(&request_with(|f| {
            f.retain(|(n, _)| n != ":authority");
            f.push(("host".into(), a.into()));
            f.push(("host".into(), b.into()));
        }));
    }
}

#[test]
fn authority_with_userinfo_is_reset_with_protocol_error() {
    // RFC 9113 §8.3.1: no deprecated userinfo in an http or https authority.
    assert_malformed_request(&request_setting(":authority", "admin@test.local"));
    assert_malformed_request(&request_with(|f| {
        f.retain(|(n, _)| n != ":authority");
        f.push(("host".into(), "admin@test.local".into()));
    }));
}

#[test]
fn field_value_with_nul_cr_or_lf_is_reset_with_protocol_error() {
    for value in ["a\0b", "a\rb", "a\nb", "a\r\nb"] {
        assert_malformed_request(&request_with(|f| f.push(("x-custom".into(), value.into()))));
    }
    assert_malformed_request(&request_setting(":path", "/svc.S/M\r\nx-injected: 1"));
}

#[test]
fn pseudo_header_value_with_leading_or_trailing_whitespace_is_reset_with_protocol_error() {
    for value in ["/svc.S/M ", " /svc.S/M", "/svc.S/M\t"] {
        assert_malformed_request(&request_setting(":path", value));
    }
    assert_malformed_request(&request_setting(":method", "POST "));
    assert_malformed_request(&request_setting(":authority", " test.local"));
}

#[test]
fn regular_field_value_with_edge_whitespace_is_accepted_as_sent() {
    // A deliberate leniency (see `check_value` in core/src/grpc/head.rs): RFC 9113 §8.2.1
    // calls it malformed, but real peers send it (grpc-go's unescaped grpc-message) and it
    // decides nothing about routing. Inside a value, spaces and tabs are fine anyway.
    // Metadata keeps ASCII values without their edge spaces.
    for (value, kept) in [(" v", "v"), ("v ", "v"), ("a b", "a b")] {
        let head = assert_request_reaches_the_application(&request_with(|f| {
            f.push(("x-custom".into(), value.into()))
        }));
        assert_eq!(head.metadata.get("x-custom"), Some(kept));
    }
}

#[test]
fn non_numeric_content_length_is_reset_with_protocol_error() {
    for value in ["abc", "", "-1", "+5", "0x10", "5, 5", "1.0"] {
        assert_malformed_request(&request_with(|f| {
            f.push(("content-length".into(), value.into()))
        }));
    }
}

#[test]
fn duplicate_content_length_is_reset_with_protocol_error() {
    for (a, b) in [("5", "5"), ("5", "6")] {
        assert_malformed_request(&request_with(|f| {
            f.push(("content-length".into(), a.into()));
            f.push(("content-length".into(), b.into()));
        }));
    }
}

#[test]
fn content_length_is_not_compared_with_the_data() {
    // A deliberate leniency (see core/src/grpc/head.rs): gRPC frames its messages itself and
    // never uses the length; grpc-go ignores it too. The request is served as sent.
    let mut raw = Raw::server(Config::server());
    let fields = request_with(|f| f.push(("content-length".into(), "1000".into())));
    raw.send_plain(1, &fields, false);
    raw.send_data(1, &grpc_message(0, b"hello"), true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);
    assert!(raw.resets().is_empty());
    raw.respond_ok(1, b"world");
    raw.pump();
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("0"));
}

#[test]
fn malformed_request_resets_are_not_counted_as_calls() {
    // Many malformed requests in a row: each is reset, none is reported, nothing piles up.
    let mut raw = Raw::server(Config::server());
    let bad = fields(&[(":method", "POST"), ("connection", "close")]);
    for i in 0..100 {
        raw.send_plain(1 + 2 * i, &bad, true);
    }
    raw.assert_open();
    assert_eq!(raw.resets().len(), 100);
    assert_eq!(raw.conn.active_calls(), 0);
    assert!(raw.events.is_empty());
}

// ---- Malformed request trailers (RFC 9113 §8.1, §8.2): the started call ends ----

/// Sends a valid request head and one message on stream 1, then `trailers` with END_STREAM.
/// The call was already started, so the application sees it end (INTERNAL) instead of
/// half-closing; the stream is reset with PROTOCOL_ERROR and a call on stream 3 is served.
#[track_caller]
fn assert_malformed_request_trailers(trailers: &[(String, String)]) {
    let mut raw = Raw::server(Config::server());
    raw.send_plain(1, &request_fields("/svc.S/M"), false);
    raw.send_data(1, &grpc_message(0, b"x"), false);
    raw.send_plain(1, trailers, true);
    raw.assert_open();
    assert_eq!(
        raw.resets(),
        vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)],
        "trailers {trailers:?}"
    );
    let ends: Vec<Code> = raw
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Cancelled { stream, status } if *stream == StreamId(1) => Some(status.code()),
            _ => None,
        })
        .collect();
    assert_eq!(ends, vec![Code::Internal], "events {:?}", raw.events);
    assert!(
        !raw.events
            .iter()
            .any(|e| matches!(e, Event::HalfClosed { .. })),
        "never reported as a clean half-close"
    );
    raw.assert_serves_call(3);
}

#[test]
fn well_formed_request_trailers_end_the_request() {
    let mut raw = Raw::server(Config::server());
    raw.send_plain(1, &request_fields("/svc.S/M"), false);
    raw.send_data(1, &grpc_message(0, b"x"), false);
    raw.send_plain(1, &fields(&[("x-late", "1"), ("te", "trailers")]), true);
    raw.pump();
    assert!(
        raw.events
            .iter()
            .any(|e| matches!(e, Event::HalfClosed { stream } if *stream == StreamId(1)))
    );
    assert!(raw.resets().is_empty());
    raw.respond_ok(1, b"y");
    raw.pump();
    assert_eq!(raw.final_block(1).unwrap().get("grpc-status"), Some("0"));
}

#[test]
fn request_trailers_with_pseudo_header_reset_the_call() {
    for name in [":path", ":method", ":status", ":protocol"] {
        assert_malformed_request_trailers(&fields(&[(name, "x")]));
    }
}

#[test]
fn request_trailers_with_bad_field_name_reset_the_call() {
    for name in ["X-Late", "x late", "x:late", ""] {
        assert_malformed_request_trailers(&fields(&[(name, "1")]));
    }
}

#[test]
fn request_trailers_with_bad_field_value_reset_the_call() {
    for value in ["a\0b", "a\rb", "a\nb"] {
        assert_malformed_request_trailers(&fields(&[("x-late", value)]));
    }
    assert_malformed_request_trailers(&fields(&[("content-length", "x")]));
}

#[test]
fn request_trailers_with_connection_specific_header_reset_the_call() {
    for (name, value) in [
        ("connection", "close"),
        ("keep-alive", "1"),
        ("proxy-connection", "close"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("te", "gzip"),
    ] {
        assert_malformed_request_trailers(&fields(&[(name, value)]));
    }
}

#[test]
fn client_leaves_out_an_empty_authority() {
    // An empty :authority is malformed (RFC 9113 §8.3.1): a call given none sends none.
    let mut raw = Raw::client(Config::client());
    let id = raw
        .conn
        .start_call(anygrpc_core::CallRequest::new("/svc.S/M", ""), raw.now)
        .unwrap();
    raw.pump();
    let head = raw.blocks_on(id.0)[0].clone();
    assert_eq!(head.get(":path"), Some("/svc.S/M"));
    assert_eq!(head.get(":authority"), None, "{head:?}");
}

// ---- Malformed responses (RFC 9113 §8.1, §8.2, §8.3.2): the call fails, connection lives ----

fn response_head() -> Vec<(String, String)> {
    fields(&[(":status", "200"), ("content-type", "application/grpc")])
}

/// A client call on a fresh connection, answered by `respond` (the raw server, on the call's
/// stream) with a response that breaks an HTTP/2 rule: the call fails with INTERNAL, its
/// stream is reset with PROTOCOL_ERROR, the connection stays open, and the next call on it
/// succeeds.
#[track_caller]
fn assert_malformed_response(what: &str, respond: impl FnOnce(&mut Raw, u32)) {
    let mut raw = Raw::client(Config::client());
    let id = raw.start_unary("/svc.S/M");
    respond(&mut raw, id);
    raw.assert_open();
    let statuses = raw.finished(id);
    assert_eq!(statuses.len(), 1, "{what}: events {:?}", raw.events);
    assert_eq!(
        statuses[0].code(),
        Code::Internal,
        "{what}: {}",
        statuses[0]
    );
    assert!(
        statuses[0].message().contains("malformed"),
        "{what}: {}",
        statuses[0]
    );
    assert_eq!(
        raw.resets(),
        vec![(StreamId(id), ErrorCode::PROTOCOL_ERROR)],
        "{what}"
    );
    // The same connection carries the next call.
    let next = raw.start_unary("/svc.S/M");
    raw.send_plain(next, &response_head(), false);
    raw.send_data(next, &grpc_message(0, b"pong"), false);
    raw.send_plain(next, &fields(&[("grpc-status", "0")]), true);
    raw.pump();
    let codes: Vec<Code> = raw.finished(next).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Ok], "{what}: the next call");
    raw.assert_open();
}

/// `head` breaks a rule: refused both as a response head and, with `grpc-status: 0` added
/// (which would otherwise end the call OK), as a Trailers-Only response.
#[track_caller]
fn assert_malformed_head(head: Vec<(String, String)>) {
    let what = format!("head {head:?}");
    let as_head = head.clone();
    assert_malformed_response(&what, move |raw, id| raw.send_plain(id, &as_head, false));
    let mut trailers_only = head;
    trailers_only.push(("grpc-status".into(), "0".into()));
    let what = format!("trailers-only {trailers_only:?}");
    assert_malformed_response(&what, move |raw, id| {
        raw.send_plain(id, &trailers_only, true)
    });
}

/// `trailers` (with `grpc-status: 0` first) break a rule after a good head and one message.
#[track_caller]
fn assert_malformed_trailers(trailers: &[(&str, &str)]) {
    let mut all = fields(&[("grpc-status", "0")]);
    all.extend(fields(trailers));
    let what = format!("trailers {all:?}");
    assert_malformed_response(&what, move |raw, id| {
        raw.send_plain(id, &response_head(), false);
        raw.send_data(id, &grpc_message(0, b"pong"), false);
        raw.send_plain(id, &all, true);
    });
}

/// The good response head plus `extra`.
fn head_plus(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut head = response_head();
    head.extend(fields(extra));
    head
}

#[test]
fn response_without_status_fails_the_call_with_internal() {
    assert_malformed_head(fields(&[("content-type", "application/grpc")]));
}

#[test]
fn response_with_duplicate_status_fails_the_call_with_internal() {
    let mut head = response_head();
    head.insert(0, (":status".into(), "200".into()));
    assert_malformed_head(head);
}

#[test]
fn response_status_not_three_digits_fails_the_call_with_internal() {
    for status in ["20", "2000", "2x0", ""] {
        let mut head = response_head();
        head[0].1 = status.into();
        assert_malformed_head(head);
    }
}

#[test]
fn response_with_request_pseudo_header_fails_the_call_with_internal() {
    for name in [":method", ":scheme", ":path", ":authority"] {
        let mut head = response_head();
        head.insert(1, (name.into(), "x".into()));
        assert_malformed_head(head);
    }
}

#[test]
fn response_with_unknown_pseudo_header_fails_the_call_with_internal() {
    let mut head = response_head();
    head.insert(1, (":protocol".into(), "x".into()));
    assert_malformed_head(head);
}

#[test]
fn response_pseudo_header_after_regular_field_fails_the_call_with_internal() {
    let mut head = response_head();
    head.swap(0, 1);
    assert_malformed_head(head);
}

#[test]
fn response_with_uppercase_field_name_fails_the_call_with_internal() {
    assert_malformed_head(head_plus(&[("X-Custom", "v")]));
}

#[test]
fn response_field_name_with_forbidden_byte_fails_the_call_with_internal() {
    for name in ["", "x\0y", "x y", "x:y", "x\u{7f}"] {
        assert_malformed_head(head_plus(&[(name, "v")]));
    }
}

#[test]
fn response_with_connection_specific_header_fails_the_call_with_internal() {
    for (name, value) in [
        ("connection", "close"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "close"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        // RFC 9113 §8.2.2: TE only in requests.
        ("te", "trailers"),
    ] {
        assert_malformed_head(head_plus(&[(name, value)]));
    }
}

#[test]
fn response_field_value_with_nul_cr_or_lf_fails_the_call_with_internal() {
    for value in ["a\0b", "a\rb", "a\nb"] {
        assert_malformed_head(head_plus(&[("x-custom", value)]));
    }
}

#[test]
fn response_with_non_numeric_content_length_fails_the_call_with_internal() {
    assert_malformed_head(head_plus(&[("content-length", "x")]));
    assert_malformed_head(head_plus(&[
        ("content-length", "5"),
        ("content-length", "5"),
    ]));
}

#[test]
fn response_trailers_with_pseudo_header_fail_the_call_with_internal() {
    for name in [":status", ":path"] {
        assert_malformed_trailers(&[(name, "200")]);
    }
}

#[test]
fn response_trailers_breaking_field_rules_fail_the_call_with_internal() {
    for field in [
        ("X-Custom", "v"),
        ("x:y", "v"),
        ("connection", "close"),
        ("te", "trailers"),
        ("x-custom", "a\nb"),
        ("content-length", "x"),
    ] {
        assert_malformed_trailers(&[field]);
    }
}

#[test]
fn response_trailers_without_end_stream_fail_the_call_with_internal() {
    // RFC 9113 §8.1: a second HEADERS without END_STREAM makes the response malformed.
    let (mut raw, id) = {
        let mut raw = Raw::client(Config::client());
        let id = raw.start_unary("/svc.S/M");
        (raw, id)
    };
    raw.send_plain(id, &response_head(), false);
    raw.send_plain(id, &fields(&[("grpc-status", "0")]), false);
    raw.assert_open();
    let codes: Vec<Code> = raw.finished(id).iter().map(Status::code).collect();
    assert_eq!(codes, vec![Code::Internal]);
    assert_eq!(
        raw.resets(),
        vec![(StreamId(id), ErrorCode::PROTOCOL_ERROR)]
    );
}

// ---- Push (RFC 9113 §8.4) ----

#[test]
fn push_promise_from_a_client_is_protocol_error() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    let mut payload = vec![0, 0, 0, 2];
    payload.extend_from_slice(&plain_block(&request_fields("/svc.S/M")));
    raw.send(&raw_frame(
        FrameType::PUSH_PROMISE,
        flags::END_HEADERS,
        1,
        &payload,
    ));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn push_promise_to_a_client_that_disabled_push_is_protocol_error() {
    let mut raw = Raw::client(Config::client());
    let id = raw
        .conn
        .start_call(
            anygrpc_core::CallRequest::new("/svc.S/M", "test.local"),
            raw.now,
        )
        .unwrap();
    raw.flush();
    let mut payload = vec![0, 0, 0, 2];
    payload.extend_from_slice(&plain_block(&fields(&[(":status", "200")])));
    raw.send(&raw_frame(
        FrameType::PUSH_PROMISE,
        flags::END_HEADERS,
        id.0,
        &payload,
    ));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn errors_are_the_same_when_bytes_arrive_one_at_a_time() {
    type Script = fn(&mut Raw);
    let cases: [(Script, ErrorCode); 5] = [
        (
            |raw| raw.send(&raw_frame(FrameType::DATA, 0, 0, b"abc")),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            |raw| raw.send(&raw_frame(FrameType::PING, 0, 0, &[0; 7])),
            ErrorCode::FRAME_SIZE_ERROR,
        ),
        (
            |raw| raw.send(&raw_settings(&[(0x4, 1 << 31)])),
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
        (
            |raw| {
                raw.send_request(5, "/svc.S/M", false);
                raw.send_request(3, "/svc.S/M", false);
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            |raw| {
                let block = plain_block(&request_fields("/svc.S/M"));
                raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &block[..10]));
                raw.send_ping([0; 8]);
            },
            ErrorCode::PROTOCOL_ERROR,
        ),
    ];
    for (script, code) in cases {
        let mut raw = Raw::server(Config::server());
        raw.chunk = 1;
        script(&mut raw);
        raw.assert_connection_error(code);
    }
    // And a stream error keeps the connection, byte by byte too.
    let mut raw = Raw::server(Config::server());
    raw.chunk = 1;
    raw.send_plain(
        1,
        &request_with(|f| f.push(("te".into(), "gzip".into()))),
        true,
    );
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)]);
    raw.assert_serves_call(3);
}
