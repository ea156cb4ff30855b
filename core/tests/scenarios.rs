//! In-memory scenarios: statuses, metadata, compression, concurrency limits, tiny windows,
//! deadlines on a fake clock, GOAWAY, cancellation, back-pressure and random input splits.

mod support;

use std::time::Duration;

use anygrpc_core::grpc::compress;
use anygrpc_core::{
    CallError, CallRequest, Code, Config, Encoding, ErrorCode, Event, Metadata, Status, StreamId,
};
use bytes::{Bytes, BytesMut};
use support::{CHUNKS, Pair, finished, messages, started};

fn status_of(events: &[Event], id: StreamId) -> Status {
    match finished(events, id) {
        Some(Event::Finished { status, .. }) => status.clone(),
        _ => panic!("no Finished for {id:?} in {events:?}"),
    }
}

/// Runs one unary call whose server answers `reply` with `status`.
fn unary(pair: &mut Pair, reply: Option<&[u8]>, status: Status, trailers: Metadata) -> Vec<Event> {
    let id = pair.start("/s.S/M");
    pair.client
        .send_message(id, Bytes::from_static(b"q"), false)
        .unwrap();
    pair.client.finish_sending(id).unwrap();
    assert!(pair.drive());
    let sid = started(&pair.take_server_events())[0];
    if let Some(reply) = reply {
        pair.server
            .send_message(sid, Bytes::copy_from_slice(reply), false)
            .unwrap();
    }
    pair.server.send_trailers(sid, status, trailers).unwrap();
    assert!(pair.drive());
    pair.take_client_events()
}

#[test]
fn every_status_code_and_message_reaches_the_client() {
    support::at_every_split(every_status_code_and_message_reaches_the_client_at);
}

fn every_status_code_and_message_reaches_the_client_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    for code in Code::ALL {
        let message = format!("détails {} 100% ✓\n", code.as_str());
        let status =
            Status::new(code, message.clone()).with_details(Bytes::from_static(b"\x08\x01"));
        // Without a message first: Trailers-Only.
        let events = unary(&mut pair, None, status.clone(), Metadata::new());
        let id = events.iter().find_map(|e| match e {
            Event::Finished { stream, .. } => Some(*stream),
            _ => None,
        });
        let got = status_of(&events, id.unwrap());
        assert_eq!(got.code(), code);
        assert_eq!(got.message(), message);
        assert_eq!(&got.details()[..], b"\x08\x01");
        assert!(
            !events.iter().any(|e| matches!(e, Event::Headers { .. })),
            "Trailers-Only has no head"
        );
        // After a message: head, message, trailers.
        let events = unary(&mut pair, Some(b"r"), status, Metadata::new());
        let id = events.iter().find_map(|e| match e {
            Event::Finished { stream, .. } => Some(*stream),
            _ => None,
        });
        assert_eq!(status_of(&events, id.unwrap()).code(), code);
    }
}

#[test]
fn metadata_round_trips_both_ways() {
    support::at_every_split(metadata_round_trips_both_ways_at);
}

fn metadata_round_trips_both_ways_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let mut request = CallRequest::new("/s.S/M", "host:1");
    request.metadata.append("x-a", "1").unwrap();
    request.metadata.append("x-a", "2").unwrap();
    request
        .metadata
        .insert_bin("x-b-bin", Bytes::from_static(&[0, 0xff, 10, 13]))
        .unwrap();
    request.timeout = Some(Duration::from_secs(5));
    let id = pair.client.start_call(request, pair.now).unwrap();
    pair.client.finish_sending(id).unwrap();
    assert!(pair.drive());
    let events = pair.take_server_events();
    let Some(Event::CallStarted {
        stream,
        head,
        deadline,
    }) = events.first()
    else {
        panic!()
    };
    let all: Vec<_> = head
        .metadata
        .get_all("x-a")
        .map(|v| v.as_bytes().to_vec())
        .collect();
    assert_eq!(all, vec![b"1".to_vec(), b"2".to_vec()]);
    assert_eq!(
        head.metadata.get_bin("x-b-bin").map(|b| &b[..]),
        Some(&[0, 0xff, 10, 13][..])
    );
    assert_eq!(head.authority.as_deref(), Some(&b"host:1"[..]));
    assert_eq!(*deadline, Some(pair.now + Duration::from_secs(5)));
    let mut initial = Metadata::new();
    initial.insert("x-initial", "i").unwrap();
    let mut trailing = Metadata::new();
    trailing
        .insert_bin("x-t-bin", Bytes::from_static(b"\x00\x01"))
        .unwrap();
    pair.server.send_headers(*stream, initial, None).unwrap();
    pair.server
        .send_trailers(*stream, Status::ok(), trailing)
        .unwrap();
    assert!(pair.drive());
    let events = pair.take_client_events();
    let Some(Event::Headers { metadata, .. }) = events.first() else {
        panic!("{events:?}")
    };
    assert_eq!(metadata.get("x-initial"), Some("i"));
    let Some(Event::Finished { metadata, .. }) = finished(&events, id) else {
        panic!()
    };
    assert_eq!(
        metadata.get_bin("x-t-bin").map(|b| &b[..]),
        Some(&b"\x00\x01"[..])
    );
}

#[test]
fn compressed_messages_in_both_directions() {
    support::at_every_split(compressed_messages_in_both_directions_at);
}

fn compressed_messages_in_both_directions_at(chunk: usize) {
    for encoding in [Encoding::Gzip, Encoding::Deflate] {
        let mut pair = Pair::new(chunk);
        let mut request = CallRequest::new("/s.S/M", "h");
        request.encoding = Some(encoding);
        let id = pair.client.start_call(request, pair.now).unwrap();
        let plain = Bytes::from(vec![b'a'; 10_000]);
        let mut packed = BytesMut::new();
        compress(encoding, &plain, &mut packed).unwrap();
        assert!(packed.len() < plain.len() / 10);
        pair.client.send_message(id, packed.freeze(), true).unwrap();
        // A plain message on a compressing call is fine too (flag 0).
        pair.client
            .send_message(id, Bytes::from_static(b"plain"), false)
            .unwrap();
        pair.client.finish_sending(id).unwrap();
        assert!(pair.drive());
        let events = pair.take_server_events();
        let sid = started(&events)[0];
        let got: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Message { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(got[0].encoding, Some(encoding));
        assert_eq!(got[0].decode(1 << 20).unwrap(), plain);
        assert_eq!(got[1].encoding, None);
        // The limit applies after decompression.
        assert_eq!(
            got[0].decode(9_999).unwrap_err().code(),
            Code::ResourceExhausted
        );

        pair.server
            .send_headers(sid, Metadata::new(), Some(encoding))
            .unwrap();
        let mut packed = BytesMut::new();
        compress(encoding, b"reply reply reply", &mut packed).unwrap();
        pair.server
            .send_message(sid, packed.freeze(), true)
            .unwrap();
        pair.server
            .send_trailers(sid, Status::ok(), Metadata::new())
            .unwrap();
        assert!(pair.drive());
        let events = pair.take_client_events();
        assert_eq!(
            messages(&events, id),
            vec![Bytes::from_static(b"reply reply reply")]
        );
        assert_eq!(status_of(&events, id).code(), Code::Ok);
    }
}

#[test]
fn compressed_flag_needs_an_encoding_on_our_side() {
    support::at_every_split(compressed_flag_needs_an_encoding_on_our_side_at);
}

fn compressed_flag_needs_an_encoding_on_our_side_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let id = pair.start("/s.S/M");
    assert_eq!(
        pair.client.send_message(id, Bytes::from_static(b"x"), true),
        Err(CallError::NoEncoding(id))
    );
}

#[test]
fn calls_beyond_the_peers_concurrency_limit_wait_instead_of_failing() {
    let server = Config::server().max_concurrent_streams(3);
    for chunk in CHUNKS {
        let mut pair = Pair::with_configs(Config::client(), server.clone(), chunk);
        let ids: Vec<_> = (0..10).map(|_| pair.start("/s.S/M")).collect();
        for &id in &ids {
            pair.client.finish_sending(id).unwrap();
        }
        assert!(pair.drive());
        let mut served = 0;
        while served < ids.len() {
            let events = pair.take_server_events();
            let open = started(&events);
            assert!(
                !open.is_empty() && open.len() <= 3,
                "at most 3 at a time, got {}",
                open.len()
            );
            assert_eq!(pair.server.active_calls(), open.len());
            for sid in open {
                pair.server
                    .send_trailers(sid, Status::ok(), Metadata::new())
                    .unwrap();
                served += 1;
            }
            assert!(pair.drive());
        }
        let events = pair.take_client_events();
        for id in ids {
            assert_eq!(status_of(&events, id).code(), Code::Ok);
        }
        assert!(!events.iter().any(|e| matches!(
            e,
            Event::Finished {
                unprocessed: true,
                ..
            }
        )));
    }
}

#[test]
fn one_byte_windows_still_deliver_everything() {
    let tiny = |c: Config| c.initial_stream_window(1);
    for chunk in CHUNKS {
        let mut pair = Pair::with_configs(tiny(Config::client()), tiny(Config::server()), chunk);
        let id = pair.start("/s.S/Tiny");
        let msgs = vec![Bytes::from_static(b"hello"), Bytes::from(vec![9u8; 300])];
        for m in &msgs {
            pair.client.send_message(id, m.clone(), false).unwrap();
        }
        pair.client.finish_sending(id).unwrap();
        assert!(pair.drive());
        let events = pair.take_server_events();
        let sid = started(&events)[0];
        assert_eq!(messages(&events, sid), msgs);
        for m in &msgs {
            pair.server.send_message(sid, m.clone(), false).unwrap();
        }
        pair.server
            .send_trailers(sid, Status::ok(), Metadata::new())
            .unwrap();
        assert!(pair.drive());
        let events = pair.take_client_events();
        assert_eq!(messages(&events, id), msgs);
        assert_eq!(status_of(&events, id).code(), Code::Ok);
    }
}

#[test]
fn a_slow_reader_stops_the_sender_until_it_releases() {
    support::at_every_split(a_slow_reader_stops_the_sender_until_it_releases_at);
}

fn a_slow_reader_stops_the_sender_until_it_releases_at(chunk: usize) {
    let server = Config::server().initial_stream_window(100_000);
    let mut pair = Pair::with_configs(Config::client(), server, chunk);
    pair.auto_release = false;
    let id = pair.start("/s.S/Upload");
    for _ in 0..50 {
        // 50 × 10 KB = 500 KB, five times the window.
        pair.client
            .send_message(id, Bytes::from(vec![1u8; 10_000]), false)
            .unwrap_or_else(|e| {
                assert_eq!(e, CallError::SendBufferFull(id));
            });
    }
    assert!(pair.drive());
    let events = pair.take_server_events();
    let sid = started(&events)[0];
    let received: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { message, .. } => Some(message.credit()),
            _ => None,
        })
        .collect();
    let bytes: usize = received.iter().sum::<usize>() + 5 * received.len();
    assert!(
        bytes <= 100_000,
        "no more than the window arrives unreleased: {bytes}"
    );
    assert!(
        received.len() >= 9,
        "the window was used: {} messages",
        received.len()
    );
    // Releasing lets the rest through.
    pair.server.release_capacity(sid, received.iter().sum());
    assert!(pair.drive());
    let more = pair
        .take_server_events()
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .count();
    assert!(more >= 9, "more arrived after the release: {more}");
}

#[test]
fn send_buffer_is_bounded_and_signals_writable() {
    support::at_every_split(send_buffer_is_bounded_and_signals_writable_at);
}

fn send_buffer_is_bounded_and_signals_writable_at(chunk: usize) {
    let client = Config::client()
        .max_send_buffer(1000)
        .initial_stream_window(65_535);
    let server = Config::server().initial_stream_window(1);
    let mut pair = Pair::with_configs(client, server, chunk);
    let id = pair.start("/s.S/M");
    pair.client
        .send_message(id, Bytes::from(vec![0; 5000]), false)
        .unwrap(); // one always fits
    assert_eq!(
        pair.client
            .send_message(id, Bytes::from(vec![0; 10]), false),
        Err(CallError::SendBufferFull(id))
    );
    // The server releases as it reads (auto_release), one byte of window at a time.
    let mut writable = false;
    for _ in 0..100 {
        pair.drive(); // 1,000 rounds of one byte each
        if pair
            .take_client_events()
            .iter()
            .any(|e| matches!(e, Event::Writable { stream } if *stream == id))
        {
            writable = true;
            break;
        }
    }
    assert!(writable, "Writable after the queue drained");
    pair.client
        .send_message(id, Bytes::from(vec![0; 10]), false)
        .unwrap();
}

#[test]
fn deadlines_expire_on_the_fake_clock_on_both_sides() {
    support::at_every_split(deadlines_expire_on_the_fake_clock_on_both_sides_at);
}

fn deadlines_expire_on_the_fake_clock_on_both_sides_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let mut request = CallRequest::new("/s.S/Slow", "h");
    request.timeout = Some(Duration::from_millis(1500));
    let id = pair.client.start_call(request, pair.now).unwrap();
    assert!(pair.drive());
    let sid = started(&pair.take_server_events())[0];
    assert!(pair.client.poll_timeout().is_some());
    pair.sleep(Duration::from_millis(1499));
    assert!(pair.drive());
    assert!(
        finished(&pair.client_events, id).is_none(),
        "not before the deadline"
    );
    assert!(pair.advance());
    let client = pair.take_client_events();
    assert_eq!(status_of(&client, id).code(), Code::DeadlineExceeded);
    let server = pair.take_server_events();
    assert!(
        server.iter().any(
            |e| matches!(e, Event::Cancelled { stream, status } if *stream == sid
            && matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled))
        ),
        "{server:?}"
    );
    assert_eq!(
        (pair.client.active_calls(), pair.server.active_calls()),
        (0, 0)
    );
    // The server's late reply is refused, nothing crashes.
    assert!(
        pair.server
            .send_message(sid, Bytes::from_static(b"late"), false)
            .is_err()
    );
}

#[test]
fn client_cancel_resets_the_stream_and_the_server_sees_it() {
    support::at_every_split(client_cancel_resets_the_stream_and_the_server_sees_it_at);
}

fn client_cancel_resets_the_stream_and_the_server_sees_it_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let id = pair.start("/s.S/M");
    pair.client
        .send_message(id, Bytes::from_static(b"x"), false)
        .unwrap();
    assert!(pair.drive());
    let sid = started(&pair.take_server_events())[0];
    pair.client.cancel(id).unwrap();
    assert!(pair.drive());
    assert_eq!(
        status_of(&pair.take_client_events(), id).code(),
        Code::Cancelled
    );
    let server = pair.take_server_events();
    assert!(server.iter().any(|e| matches!(e, Event::Cancelled { stream, status } if *stream == sid && status.code() == Code::Cancelled)));
    assert_eq!(
        pair.client.send_message(id, Bytes::new(), false),
        Err(CallError::UnknownStream(id))
    );
    pair.client.cancel(id).unwrap(); // idempotent
    assert_eq!(
        (pair.client.active_calls(), pair.server.active_calls()),
        (0, 0)
    );
}

#[test]
fn server_cancel_ends_the_client_call_with_cancelled() {
    support::at_every_split(server_cancel_ends_the_client_call_with_cancelled_at);
}

fn server_cancel_ends_the_client_call_with_cancelled_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let id = pair.start("/s.S/M");
    assert!(pair.drive());
    let sid = started(&pair.take_server_events())[0];
    pair.server.cancel(sid).unwrap();
    assert!(pair.drive());
    assert_eq!(
        status_of(&pair.take_client_events(), id).code(),
        Code::Cancelled
    );
    assert_eq!(
        (pair.client.active_calls(), pair.server.active_calls()),
        (0, 0)
    );
}

#[test]
fn a_call_queued_behind_the_limit_can_be_cancelled_before_it_is_sent() {
    support::at_every_split(a_call_queued_behind_the_limit_can_be_cancelled_before_it_is_sent_at);
}

fn a_call_queued_behind_the_limit_can_be_cancelled_before_it_is_sent_at(chunk: usize) {
    let server = Config::server().max_concurrent_streams(1);
    let mut pair = Pair::with_configs(Config::client(), server, chunk);
    let first = pair.start("/s.S/M");
    let second = pair.start("/s.S/M");
    assert!(pair.drive());
    pair.client.cancel(second).unwrap();
    assert!(pair.drive());
    assert_eq!(
        status_of(&pair.take_client_events(), second).code(),
        Code::Cancelled
    );
    let server = pair.take_server_events();
    assert_eq!(
        started(&server).len(),
        1,
        "the cancelled call never reached the server"
    );
    let _ = first;
}

#[test]
fn graceful_server_shutdown_finishes_calls_in_flight_and_refuses_new_ones() {
    support::at_every_split(
        graceful_server_shutdown_finishes_calls_in_flight_and_refuses_new_ones_at,
    );
}

fn graceful_server_shutdown_finishes_calls_in_flight_and_refuses_new_ones_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let id = pair.start("/s.S/M");
    assert!(pair.drive());
    let sid = started(&pair.take_server_events())[0];
    pair.server.shutdown(pair.now);
    assert!(pair.drive());
    let client = pair.take_client_events();
    assert!(client.iter().any(|e| matches!(
        e,
        Event::GoAway {
            code: ErrorCode::NO_ERROR,
            ..
        }
    )));
    assert!(!pair.client.accepts_calls());
    assert_eq!(
        pair.client
            .start_call(CallRequest::new("/s.S/M", "h"), pair.now)
            .unwrap_err(),
        CallError::GoingAway
    );
    // The call in flight still completes.
    pair.server
        .send_message(sid, Bytes::from_static(b"bye"), false)
        .unwrap();
    pair.server
        .send_trailers(sid, Status::ok(), Metadata::new())
        .unwrap();
    assert!(pair.drive());
    let client = pair.take_client_events();
    assert_eq!(messages(&client, id), vec![Bytes::from_static(b"bye")]);
    assert_eq!(status_of(&client, id).code(), Code::Ok);
    assert!(
        client
            .iter()
            .any(|e| matches!(e, Event::Closed { error: None })),
        "{client:?}"
    );
    assert!(
        pair.take_server_events()
            .iter()
            .any(|e| matches!(e, Event::Closed { error: None }))
    );
}

#[test]
fn goaway_reports_calls_above_last_stream_as_unprocessed() {
    support::at_every_split(goaway_reports_calls_above_last_stream_as_unprocessed_at);
}

fn goaway_reports_calls_above_last_stream_as_unprocessed_at(chunk: usize) {
    let server = Config::server().max_concurrent_streams(1);
    let mut pair = Pair::with_configs(Config::client(), server, chunk);
    let first = pair.start("/s.S/M");
    let queued = pair.start("/s.S/M");
    assert!(pair.drive());
    let sid = started(&pair.take_server_events())[0];
    pair.server.shutdown(pair.now);
    assert!(pair.drive());
    let client = pair.take_client_events();
    let Some(Event::Finished {
        status,
        unprocessed,
        ..
    }) = finished(&client, queued)
    else {
        panic!("{client:?}")
    };
    assert!(*unprocessed, "never sent: safe to retry");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        finished(&client, first).is_none(),
        "the processed call goes on"
    );
    pair.server
        .send_trailers(sid, Status::ok(), Metadata::new())
        .unwrap();
    assert!(pair.drive());
    assert_eq!(
        status_of(&pair.take_client_events(), first).code(),
        Code::Ok
    );
}

#[test]
fn closing_the_connection_ends_every_call_with_unavailable() {
    support::at_every_split(closing_the_connection_ends_every_call_with_unavailable_at);
}

fn closing_the_connection_ends_every_call_with_unavailable_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let ids: Vec<_> = (0..5).map(|_| pair.start("/s.S/M")).collect();
    assert!(pair.drive());
    assert_eq!(started(&pair.take_server_events()).len(), 5);
    pair.server.close(ErrorCode::INTERNAL_ERROR, pair.now);
    assert!(pair.drive());
    let client = pair.take_client_events();
    for id in ids {
        assert_eq!(status_of(&client, id).code(), Code::Unavailable);
    }
    assert!(
        client
            .iter()
            .any(|e| matches!(e, Event::Closed { error: Some(_) }))
    );
    let server = pair.take_server_events();
    assert_eq!(
        server
            .iter()
            .filter(|e| matches!(e, Event::Cancelled { .. }))
            .count(),
        5
    );
    assert!(pair.server.is_closed());
}

#[test]
fn ping_reports_the_round_trip_on_the_fake_clock() {
    support::at_every_split(ping_reports_the_round_trip_on_the_fake_clock_at);
}

fn ping_reports_the_round_trip_on_the_fake_clock_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    pair.client.ping(pair.now).unwrap();
    let mut wire = BytesMut::new();
    while pair.client.poll_transmit(&mut wire) > 0 {}
    pair.now += Duration::from_millis(7);
    pair.server.recv(&wire, pair.now);
    assert!(pair.drive());
    let rtts: Vec<_> = pair
        .take_client_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::PingAcknowledged { rtt } => Some(rtt),
            _ => None,
        })
        .collect();
    assert_eq!(rtts, vec![Duration::from_millis(7)]);
}

#[test]
fn keepalive_closes_a_connection_whose_peer_stopped_answering() {
    support::at_every_split(keepalive_closes_a_connection_whose_peer_stopped_answering_at);
}

fn keepalive_closes_a_connection_whose_peer_stopped_answering_at(chunk: usize) {
    let client = Config::client()
        .keepalive_time(Some(Duration::from_secs(60)))
        .keepalive_timeout(Duration::from_secs(20));
    // The server allows a PING a minute (its default policy would strike these out).
    let server = Config::server().ping_policy(Some(
        anygrpc_core::PingPolicy::default().min_interval(Duration::from_secs(60)),
    ));
    let mut pair = Pair::with_configs(client, server, chunk);
    // Keepalive pings only while a call is in progress (permit_without_calls is off).
    let _call = pair.start("/s.S/Long");
    assert!(pair.drive());
    // A healthy peer answers: twenty minutes of keepalives keep the connection up.
    for _ in 0..20 {
        assert!(pair.advance());
    }
    assert!(
        !pair
            .take_client_events()
            .iter()
            .any(|e| matches!(e, Event::Closed { .. }))
    );
    // Now the peer goes silent: the PING goes out, no ACK comes back.
    let deadline = pair.client.poll_timeout().unwrap();
    pair.client.handle_timeout(deadline);
    let mut wire = BytesMut::new();
    while pair.client.poll_transmit(&mut wire) > 0 {}
    assert!(!wire.is_empty(), "the keepalive PING");
    let at = pair.client.poll_timeout().unwrap();
    assert_eq!(at, deadline + Duration::from_secs(20));
    pair.client.handle_timeout(at);
    let mut closed = None;
    while let Some(e) = pair.client.poll_event() {
        if let Event::Closed { error } = e {
            closed = error;
        }
    }
    assert_eq!(
        closed,
        Some(anygrpc_core::ConnectionError::KeepaliveTimeout)
    );
}

#[test]
fn random_splits_and_interleaved_calls() {
    // Many concurrent calls, fed through random chunk sizes from a fixed seed.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..8 {
        let mut pair = Pair::new(usize::MAX);
        let ids: Vec<_> = (0..20).map(|_| pair.start("/s.S/M")).collect();
        for (i, &id) in ids.iter().enumerate() {
            let n = (rand() % 4) as usize;
            for k in 0..n {
                let len = (rand() % 40_000) as usize;
                pair.client
                    .send_message(id, Bytes::from(vec![(i + k) as u8; len]), false)
                    .unwrap();
            }
            pair.client.finish_sending(id).unwrap();
        }
        // Move bytes in random chunk sizes until quiet.
        for _ in 0..10_000 {
            let mut wire = BytesMut::new();
            while pair.client.poll_transmit(&mut wire) > 0 {}
            let mut back = BytesMut::new();
            while pair.server.poll_transmit(&mut back) > 0 {}
            if wire.is_empty() && back.is_empty() {
                break;
            }
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let n = ((rand() % 3000) as usize + 1).min(rest.len());
                pair.server.recv(&rest[..n], pair.now);
                rest = &rest[n..];
            }
            let mut rest = &back[..];
            while !rest.is_empty() {
                let n = ((rand() % 3000) as usize + 1).min(rest.len());
                pair.client.recv(&rest[..n], pair.now);
                rest = &rest[n..];
            }
            while let Some(e) = pair.server.poll_event() {
                match e {
                    Event::Message { stream, message } => {
                        pair.server.release_capacity(stream, message.credit())
                    }
                    Event::HalfClosed { stream } => {
                        pair.server
                            .send_message(
                                stream,
                                Bytes::from(stream.0.to_be_bytes().to_vec()),
                                false,
                            )
                            .unwrap();
                        pair.server
                            .send_trailers(stream, Status::ok(), Metadata::new())
                            .unwrap();
                    }
                    _ => {}
                }
            }
            while let Some(e) = pair.client.poll_event() {
                pair.client_events.push(e);
            }
        }
        let events = pair.take_client_events();
        for id in ids {
            assert_eq!(status_of(&events, id).code(), Code::Ok, "round {round}");
            assert_eq!(messages(&events, id).len(), 1);
        }
        assert_eq!(
            (pair.client.active_calls(), pair.server.active_calls()),
            (0, 0),
            "round {round}"
        );
    }
}

/// Counts the PING frames in what `conn` writes now.
fn pings_written(conn: &mut anygrpc_core::Connection) -> usize {
    let mut wire = BytesMut::new();
    while conn.poll_transmit(&mut wire) > 0 {}
    let mut rest = &wire[..];
    let mut pings = 0;
    while let Some(header) = anygrpc_core::frame::FrameHeader::peek(rest) {
        let total = 9 + header.length as usize;
        if header.kind == anygrpc_core::frame::FrameType::PING {
            pings += 1;
        }
        rest = &rest[total.min(rest.len())..];
    }
    pings
}

#[test]
fn keepalive_leaves_idle_connections_alone_unless_permitted() {
    support::at_every_split(keepalive_leaves_idle_connections_alone_unless_permitted_at);
}

fn keepalive_leaves_idle_connections_alone_unless_permitted_at(chunk: usize) {
    for permit in [false, true] {
        let client = Config::client()
            .keepalive_time(Some(Duration::from_secs(60)))
            .keepalive_permit_without_calls(permit);
        let mut pair = Pair::with_configs(client, Config::server(), chunk);
        let at = pair.client.poll_timeout().expect("the keepalive timer");
        pair.now = at;
        pair.client.handle_timeout(at);
        assert_eq!(
            pings_written(&mut pair.client),
            usize::from(permit),
            "permit_without_calls = {permit}"
        );
    }
}

#[test]
fn server_closes_idle_and_old_connections_gracefully() {
    support::at_every_split(server_closes_idle_and_old_connections_gracefully_at);
}

fn server_closes_idle_and_old_connections_gracefully_at(chunk: usize) {
    // Idle: no call for max_connection_idle → GOAWAY, then closed.
    let server = Config::server().max_connection_idle(Some(Duration::from_secs(30)));
    let mut pair = Pair::with_configs(Config::client(), server, chunk);
    let id = pair.start("/s.S/M");
    assert!(pair.drive());
    let sid = started(&pair.take_server_events())[0];
    pair.sleep(Duration::from_secs(60));
    assert!(pair.drive());
    assert!(
        pair.client.accepts_calls(),
        "a call in progress keeps the connection busy"
    );
    pair.server
        .send_trailers(sid, Status::ok(), Metadata::new())
        .unwrap();
    assert!(pair.drive());
    assert_eq!(status_of(&pair.take_client_events(), id).code(), Code::Ok);
    pair.sleep(Duration::from_secs(29));
    assert!(pair.drive());
    assert!(pair.client.accepts_calls(), "29 s idle is not yet 30");
    pair.sleep(Duration::from_secs(1));
    while pair.advance() && !pair.server.is_closed() {}
    assert!(!pair.client.accepts_calls());
    assert!(pair.take_client_events().iter().any(|e| matches!(
        e,
        Event::GoAway {
            code: ErrorCode::NO_ERROR,
            ..
        }
    )));
    assert!(pair.server.is_closed(), "closed once idle");

    // Age: GOAWAY at max_connection_age, calls in flight get the grace, then the close.
    let server = Config::server()
        .max_connection_age(Some(Duration::from_secs(100)))
        .max_connection_age_grace(Some(Duration::from_secs(10)));
    let mut pair = Pair::with_configs(Config::client(), server, chunk);
    let id = pair.start("/s.S/Slow");
    assert!(pair.drive());
    pair.sleep(Duration::from_secs(100));
    assert!(pair.drive());
    assert!(
        !pair.client.accepts_calls(),
        "no new calls after max_connection_age"
    );
    assert!(
        finished(&pair.client_events, id).is_none(),
        "the call in flight goes on during the grace"
    );
    pair.sleep(Duration::from_secs(10));
    assert!(pair.drive());
    assert!(pair.server.is_closed(), "closed after the grace");
    // The server's socket closes with it.
    pair.client.transport_closed(pair.now);
    assert!(pair.drive());
    let status = status_of(&pair.take_client_events(), id);
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "cut off after the grace: {status}"
    );
}

#[test]
fn a_server_reset_after_our_deadline_is_deadline_exceeded() {
    support::at_every_split(a_server_reset_after_our_deadline_is_deadline_exceeded_at);
}

fn a_server_reset_after_our_deadline_is_deadline_exceeded_at(chunk: usize) {
    let mut pair = Pair::new(chunk);
    let mut request = anygrpc_core::CallRequest::new("/s.S/Slow", "h");
    request.timeout = Some(Duration::from_millis(1));
    let id = pair.client.start_call(request, pair.now).unwrap();
    assert!(pair.drive());
    // The server's deadline fires, and its RST_STREAM(CANCEL) reaches the client before the
    // client's own timer was handled.
    pair.now += Duration::from_millis(2);
    pair.server.handle_timeout(pair.now);
    assert!(pair.drive());
    assert_eq!(
        status_of(&pair.take_client_events(), id).code(),
        Code::DeadlineExceeded
    );
}

/// DATA frame payload sizes the raw peer received.
fn data_frame_sizes(raw: &support::raw::Raw) -> Vec<usize> {
    use anygrpc_core::frame::Frame;
    raw.frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some(d.data.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_64k_message_goes_out_in_one_frame_and_no_frame_exceeds_128k() {
    use anygrpc_core::frame::{Frame, Settings};
    use support::raw::Raw;
    let mut raw = Raw::new(anygrpc_core::Side::Server, Config::server());
    raw.send(anygrpc_core::CLIENT_PREFACE);
    // The client accepts any frame size and opens its windows wide.
    raw.send_frame(&Frame::Settings(Settings {
        max_frame_size: Some((1 << 24) - 1),
        initial_window_size: Some(16 << 20),
        ..Settings::default()
    }));
    raw.send_frame(&Frame::Settings(Settings::ack()));
    raw.send_window_update(0, 16 << 20);
    raw.settle();
    raw.send_request(1, "/svc.S/M", false);
    raw.poll_events();
    let id = StreamId(1);
    raw.conn
        .send_headers(id, Metadata::new(), None)
        .expect("head");
    let small = Bytes::from(vec![1; 64 << 10]);
    let large = Bytes::from(vec![2; 300 << 10]);
    raw.conn.send_message(id, small, false).expect("64 KiB");
    raw.conn.send_message(id, large, false).expect("300 KiB");
    raw.flush();
    let sizes = data_frame_sizes(&raw);
    assert_eq!(sizes.first(), Some(&((64 << 10) + 5)), "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 128 << 10), "{sizes:?}");
    let total: usize = sizes.iter().sum();
    assert_eq!(total, (64 << 10) + (300 << 10) + 10, "{sizes:?}");
}

#[test]
fn a_call_started_right_after_a_cancel_at_the_limit_is_served() {
    support::at_every_split(a_call_started_right_after_a_cancel_at_the_limit_is_served_at);
}

/// At the server's concurrency limit, a client cancels a call and at once starts another:
/// the RST_STREAM and the new HEADERS reach the server in one read, before its application
/// saw the cancel. The new call is served, not refused.
fn a_call_started_right_after_a_cancel_at_the_limit_is_served_at(chunk: usize) {
    let server = Config::server().max_concurrent_streams(2);
    let mut pair = Pair::with_configs(Config::client(), server, chunk);
    let first = pair.start("/a.B/C");
    let _second = pair.start("/a.B/C");
    assert!(pair.drive());
    pair.client.cancel(first).expect("cancel");
    let third = pair.start("/a.B/C");
    assert!(pair.drive());
    let refused = pair
        .take_client_events()
        .into_iter()
        .any(|e| matches!(e, Event::Finished { stream, unprocessed: true, .. } if stream == third));
    assert!(!refused, "the new call was refused");
    assert!(
        started(&pair.take_server_events()).contains(&third),
        "the server took the new call"
    );
}

#[test]
fn the_peers_concurrency_limit_is_what_its_settings_say() {
    let server = Config::server().max_concurrent_streams(7);
    let mut pair = Pair::with_configs(Config::client(), server, 1 << 16);
    pair.start("/s.S/M");
    assert!(pair.drive());
    assert_eq!(pair.client.peer_max_concurrent_streams(), 7);

    // A server whose first SETTINGS leave the limit out has none; a later SETTINGS without
    // it keeps the one set before.
    let now = std::time::Instant::now();
    let mut client = anygrpc_core::Connection::new(
        anygrpc_core::Side::Client,
        std::sync::Arc::new(Config::client()),
        now,
    );
    assert_eq!(
        client.peer_max_concurrent_streams(),
        100,
        "assumed until the server's SETTINGS arrive"
    );
    assert!(!client.peer_settings_received());
    let empty_settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    client.recv(&empty_settings, now);
    assert!(client.peer_settings_received());
    assert_eq!(client.peer_max_concurrent_streams(), u32::MAX);
    let nine = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9];
    client.recv(&nine, now);
    assert_eq!(client.peer_max_concurrent_streams(), 9);
    client.recv(&empty_settings, now);
    assert_eq!(client.peer_max_concurrent_streams(), 9);
    assert!(!client.is_closed(), "all three are valid");
}
