//! gRPC-level abuse: a raw client against a server `Connection` (the call fails with the
//! right status, nothing is allocated for it, the connection goes on), and a raw server
//! against a client `Connection` (a broken response never ends a call with OK).

use anygrpc_core::frame::{Frame, FrameType, flags};
use anygrpc_core::{CallRequest, Code, Config, EncodingSet, ErrorCode, Event, Status, StreamId};
use bytes::Bytes;

use crate::support::raw::{Raw, fields, grpc_message, plain_block, raw_frame, request_fields};

// ---- Server: a raw client's abuse ----

/// The `Cancelled` status the server application was given for `stream`.
fn cancelled_code(raw: &Raw, stream: u32) -> Option<Code> {
    raw.events.iter().find_map(|e| match e {
        Event::Cancelled { stream: s, status } if *s == StreamId(stream) => Some(status.code()),
        _ => None,
    })
}

/// The `grpc-status` the raw client received on `stream`.
fn grpc_status(raw: &Raw, stream: u32) -> Option<String> {
    raw.final_block(stream)
        .and_then(|b| b.get("grpc-status"))
        .map(str::to_owned)
}

fn messages(raw: &Raw) -> Vec<Bytes> {
    raw.events
        .iter()
        .filter_map(|e| match e {
            Event::Message { message, .. } => Some(message.data.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn four_gib_length_prefix_is_resource_exhausted_before_any_body() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    // The prefix alone: 2^32-1 bytes declared, none sent; the call fails on the 5 bytes.
    raw.send_data(1, &[0, 0xff, 0xff, 0xff, 0xff], false);
    raw.pump();
    assert_eq!(
        grpc_status(&raw, 1).as_deref(),
        Some("8"),
        "RESOURCE_EXHAUSTED"
    );
    assert_eq!(cancelled_code(&raw, 1), Some(Code::ResourceExhausted));
    // The client had not finished: it is told to stop sending (RFC 9113 §8.1).
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::NO_ERROR)]);
    // What follows on that stream is dropped, not buffered.
    for _ in 0..8 {
        raw.send_data(1, &[0; 16_000], false);
    }
    raw.assert_open();
    assert!(messages(&raw).is_empty());
    assert_eq!(raw.conn.active_calls(), 0);
    raw.assert_serves_call(3);
}

#[test]
fn message_at_max_recv_message_size_is_accepted_one_byte_over_is_not() {
    let config = Config::server().max_recv_message_size(1000);
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    raw.send_data(1, &grpc_message(0, &[7; 1000]), true);
    raw.pump();
    assert_eq!(messages(&raw), vec![Bytes::from(vec![7; 1000])]);

    // One byte over, refused on its prefix: the body is never awaited.
    raw.send_request(3, "/svc.S/M", false);
    raw.send_data(3, &grpc_message(0, &[7; 1001])[..5], false);
    raw.pump();
    assert_eq!(grpc_status(&raw, 3).as_deref(), Some("8"));
    assert_eq!(cancelled_code(&raw, 3), Some(Code::ResourceExhausted));
    assert_eq!(messages(&raw).len(), 1);
    raw.assert_open();
}

#[test]
fn compressed_flag_without_grpc_encoding_is_internal() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send_data(1, &grpc_message(1, b"not really gzip"), true);
    raw.pump();
    assert_eq!(grpc_status(&raw, 1).as_deref(), Some("13"), "INTERNAL");
    assert_eq!(cancelled_code(&raw, 1), Some(Code::Internal));
    assert!(messages(&raw).is_empty());
    raw.assert_serves_call(3);
}

#[test]
fn compressed_flag_2_is_internal() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send_data(1, &grpc_message(2, b"x"), true);
    raw.pump();
    assert_eq!(grpc_status(&raw, 1).as_deref(), Some("13"), "INTERNAL");
    assert_eq!(cancelled_code(&raw, 1), Some(Code::Internal));
    assert!(messages(&raw).is_empty());
    raw.assert_serves_call(3);
}

/// Sends `fields` as a request with one message, END_STREAM; returns the answer's fields.
fn rejected(fields: &[(String, String)]) -> Raw {
    let mut raw = Raw::server(Config::server());
    raw.send_plain(1, fields, false);
    raw.send_data(1, &grpc_message(0, b"x"), true);
    raw.assert_open();
    assert!(raw.started().is_empty(), "the application never sees it");
    assert!(raw.events.is_empty(), "{:?}", raw.events);
    assert_eq!(raw.blocks_on(1).len(), 1, "one answer block");
    assert!(raw.final_block(1).is_some(), "which ends the stream");
    assert_eq!(raw.conn.active_calls(), 0);
    raw
}

fn request_plus(name: &str, value: &str) -> Vec<(String, String)> {
    let mut f = request_fields("/svc.S/M");
    f.push((name.into(), value.into()));
    f
}

#[test]
fn unknown_grpc_encoding_is_unimplemented_trailers_only() {
    let mut raw = rejected(&request_plus("grpc-encoding", "snappy"));
    let end = raw.final_block(1).unwrap().clone();
    assert_eq!(end.get(":status"), Some("200"), "Trailers-Only");
    assert_eq!(end.get("grpc-status"), Some("12"), "UNIMPLEMENTED");
    // compression.md: the answer says what we accept instead.
    let accept = end
        .get("grpc-accept-encoding")
        .expect("grpc-accept-encoding");
    assert_eq!(accept, EncodingSet::supported().to_header_value());
    #[cfg(feature = "compression")]
    assert!(accept.contains("gzip"), "{accept}");
    raw.assert_serves_call(3);
}

#[test]
fn malformed_grpc_timeout_is_internal() {
    for value in ["1x", "123456789S", "-1S", "S", "1.5S", ""] {
        let mut raw = rejected(&request_plus("grpc-timeout", value));
        assert_eq!(grpc_status(&raw, 1).as_deref(), Some("13"), "{value:?}");
        raw.assert_serves_call(3);
    }
}

#[test]
fn bad_base64_in_binary_metadata_is_internal() {
    for value in ["!!!!", "a", "ab=c"] {
        let mut raw = rejected(&request_plus("x-trace-bin", value));
        assert_eq!(grpc_status(&raw, 1).as_deref(), Some("13"), "{value:?}");
        raw.assert_serves_call(3);
    }
}

#[test]
fn non_post_method_is_http_405() {
    for method in ["GET", "PUT", "post"] {
        let mut f = request_fields("/svc.S/M");
        f[0].1 = method.into();
        let mut raw = rejected(&f);
        let end = raw.final_block(1).unwrap();
        assert_eq!(end.get(":status"), Some("405"), "{method}");
        assert_eq!(end.get("grpc-status"), None, "a plain HTTP answer");
        raw.assert_serves_call(3);
    }
}

#[test]
fn wrong_content_type_is_http_415() {
    for content_type in [Some("text/html"), Some("application/grpcx"), None] {
        let mut f = request_fields("/svc.S/M");
        f.retain(|(n, _)| n != "content-type");
        if let Some(ct) = content_type {
            f.push(("content-type".into(), ct.into()));
        }
        let mut raw = rejected(&f);
        let end = raw.final_block(1).unwrap();
        assert_eq!(end.get(":status"), Some("415"), "{content_type:?}");
        raw.assert_serves_call(3);
    }
}

#[test]
fn request_trailers_without_end_stream_reset_the_call() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send_plain(1, &fields(&[("x-late", "1")]), false);
    raw.assert_open();
    assert_eq!(raw.resets(), vec![(StreamId(1), ErrorCode::PROTOCOL_ERROR)]);
    raw.assert_serves_call(3);
}

#[test]
fn stream_ending_mid_message_is_internal() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    raw.send_data(1, &grpc_message(0, b"hello")[..7], true);
    raw.pump();
    assert_eq!(grpc_status(&raw, 1).as_deref(), Some("13"));
    assert_eq!(cancelled_code(&raw, 1), Some(Code::Internal));
    raw.assert_serves_call(3);
}

// ---- Client: a raw server's broken responses ----

/// A client `Connection` with one unary call sent (head, one message, half-close).
fn client_call() -> (Raw, u32) {
    let mut raw = Raw::client(Config::client());
    let id = raw
        .conn
        .start_call(CallRequest::new("/svc.S/M", "test.local"), raw.now)
        .unwrap();
    raw.conn
        .send_message(id, Bytes::from_static(b"ping"), false)
        .unwrap();
    raw.conn.finish_sending(id).unwrap();
    raw.pump();
    let head = raw.blocks_on(id.0)[0].clone();
    assert_eq!(head.get(":path"), Some("/svc.S/M"));
    (raw, id.0)
}

fn response_head(status: &str) -> Vec<(String, String)> {
    fields(&[(":status", status), ("content-type", "application/grpc")])
}

/// The client's final status for `stream`; panics unless exactly one `Finished` arrived.
fn finished(raw: &mut Raw, stream: u32) -> Status {
    raw.pump();
    let all: Vec<&Status> = raw
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Finished {
                stream: s, status, ..
            } if *s == StreamId(stream) => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(all.len(), 1, "one Finished; events {:?}", raw.events);
    all[0].clone()
}

#[test]
fn trailers_without_grpc_status_are_never_ok() {
    let (mut raw, id) = client_call();
    raw.send_plain(id, &response_head("200"), false);
    raw.send_data(id, &grpc_message(0, b"pong"), false);
    raw.send_plain(id, &fields(&[("grpc-message", "all good")]), true);
    let status = finished(&mut raw, id);
    assert_eq!(status.code(), Code::Unknown, "{status}");
    raw.assert_open();
}

#[test]
fn trailers_only_without_grpc_status_is_never_ok() {
    let (mut raw, id) = client_call();
    raw.send_plain(id, &response_head("200"), true);
    let status = finished(&mut raw, id);
    assert_eq!(status.code(), Code::Unknown, "{status}");
}

#[test]
fn invalid_grpc_status_is_never_ok() {
    for (value, code) in [
        ("abc", Code::Internal),
        ("", Code::Internal),
        ("-1", Code::Internal),
        ("0 ", Code::Internal),
        ("0x0", Code::Internal),
        ("99", Code::Unknown),
        ("4294967296", Code::Unknown),
    ] {
        let (mut raw, id) = client_call();
        raw.send_plain(id, &response_head("200"), false);
        raw.send_plain(id, &fields(&[("grpc-status", value)]), true);
        let status = finished(&mut raw, id);
        assert_eq!(status.code(), code, "grpc-status {value:?}: {status}");
    }
}

#[test]
fn non_200_status_is_mapped_and_never_ok() {
    for (http, code) in [
        ("400", Code::Internal),
        ("401", Code::Unauthenticated),
        ("403", Code::PermissionDenied),
        ("404", Code::Unimplemented),
        ("429", Code::Unavailable),
        ("500", Code::Unknown),
        ("502", Code::Unavailable),
        ("503", Code::Unavailable),
        ("504", Code::Unavailable),
    ] {
        // As a response head: the call fails and the stream is cancelled.
        let (mut raw, id) = client_call();
        raw.send_plain(id, &fields(&[(":status", http)]), false);
        let status = finished(&mut raw, id);
        assert_eq!(status.code(), code, "head :status {http}: {status}");
        assert_eq!(raw.resets(), vec![(StreamId(id), ErrorCode::CANCEL)]);

        // As Trailers-Only, even one claiming grpc-status 0.
        let (mut raw, id) = client_call();
        let mut f = fields(&[(":status", http), ("grpc-status", "0")]);
        f.push(("content-type".into(), "text/html".into()));
        raw.send_plain(id, &f, true);
        let status = finished(&mut raw, id);
        assert_eq!(
            status.code(),
            code,
            "trailers-only :status {http}: {status}"
        );
        raw.assert_open();
    }
}

#[test]
fn data_before_response_headers_is_internal_and_reset() {
    let (mut raw, id) = client_call();
    raw.send_data(id, &grpc_message(0, b"pong"), false);
    let status = finished(&mut raw, id);
    assert_eq!(status.code(), Code::Internal, "{status}");
    assert_eq!(
        raw.resets(),
        vec![(StreamId(id), ErrorCode::PROTOCOL_ERROR)]
    );
    assert!(
        !raw.events
            .iter()
            .any(|e| matches!(e, Event::Message { .. }))
    );
    raw.assert_open();
}

#[test]
fn stream_ended_without_trailers_is_internal() {
    let (mut raw, id) = client_call();
    raw.send_plain(id, &response_head("200"), false);
    raw.send_data(id, &grpc_message(0, b"pong"), true);
    let status = finished(&mut raw, id);
    assert_eq!(status.code(), Code::Internal, "{status}");
    raw.assert_open();
    assert_eq!(raw.conn.active_calls(), 0);
}

#[test]
fn stream_ended_by_empty_data_after_head_is_internal() {
    let (mut raw, id) = client_call();
    raw.send_plain(id, &response_head("200"), false);
    raw.send_data(id, &[], true);
    let status = finished(&mut raw, id);
    assert_eq!(status.code(), Code::Internal, "{status}");
}

#[test]
fn response_on_a_stream_the_client_never_opened_is_protocol_error() {
    let (mut raw, _) = client_call();
    raw.send_plain(3, &response_head("200"), false);
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn server_opening_a_stream_is_protocol_error() {
    // A server's even stream id on HEADERS: servers cannot open streams without push.
    let (mut raw, _) = client_call();
    let block = plain_block(&response_head("200"));
    raw.send(&raw_frame(
        FrameType::HEADERS,
        flags::END_HEADERS,
        2,
        &block,
    ));
    raw.assert_connection_error(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn well_formed_response_is_ok() {
    // Sanity of the raw server: the same script, done right, is OK.
    let (mut raw, id) = client_call();
    raw.send_plain(id, &response_head("200"), false);
    raw.send_data(id, &grpc_message(0, b"pong"), false);
    raw.send_plain(id, &fields(&[("grpc-status", "0")]), true);
    let status = finished(&mut raw, id);
    assert_eq!(status.code(), Code::Ok, "{status}");
    assert!(
        raw.events
            .iter()
            .any(|e| matches!(e, Event::Message { message, .. } if message.data == "pong"))
    );
    assert!(raw.frames.iter().all(|f| !matches!(f, Frame::GoAway(_))));
}
