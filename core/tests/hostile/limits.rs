//! The protective limits of `Config`: floods end with GOAWAY(ENHANCE_YOUR_CALM) after a
//! stated budget, bombs fail one call and leave the connection serving, and legitimate traffic
//! at full speed never trips any of them.

use std::time::Duration;

use anygrpc_core::frame::{Frame, FrameType, Settings, flags};
use anygrpc_core::{Config, ErrorCode, Event, StreamId};
use bytes::BytesMut;

use crate::support::raw::{
    Raw, grpc_message, hpack_literal, list_size, plain_block, raw_frame, request_fields,
};

/// Bytes of one GOAWAY with our debug text: what a closed connection may still write.
const GOAWAY_MAX: usize = 9 + 8 + 64;

// ---- Header blocks ----

/// Raw header-block bytes the connection reads at most (its documented bound): 1 MiB, or
/// 2 × max_header_list_size + 1024 if larger. It decodes them as they arrive and buffers at
/// most one field cut by a frame boundary.
fn block_bound(config: &Config) -> usize {
    (2 * config.max_header_list_size as usize + 1024).max(1 << 20)
}

#[test]
fn continuation_flood_is_enhance_your_calm_within_the_block_bound() {
    let config = Config::server();
    let bound = block_bound(&config);
    let mut raw = Raw::server(config);
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &[0x83]));
    // Literals with a 64-byte name and a 64-byte value, over and over, cut anywhere.
    let fragment = vec![0x40; 16_384];
    let mut accepted = 0;
    for _ in 0..1000 {
        raw.send_continuation(1, &fragment, false);
        raw.poll_events();
        if raw.closed().is_some() {
            break;
        }
        accepted += 1;
    }
    // Never more than `bound` bytes read: the CONTINUATION that would pass it closes.
    let read = |continuations: usize| 1 + continuations * 16_384;
    assert!(read(accepted) <= bound);
    assert!(read(accepted + 1) > bound);
    assert_eq!(accepted, 63);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
    assert!(raw.written <= GOAWAY_MAX, "wrote {} bytes", raw.written);
}

#[test]
fn continuation_flood_of_one_byte_fragments_is_cut_off_by_the_sliver_budget() {
    // Fragments that carry almost nothing spend the sliver budget, as DATA frames do; the
    // block's bytes would allow a million of them.
    let config = Config::server().max_header_list_size(1024);
    let budget = config.idle_frame_burst.max(config.connection_window / 1024) as usize;
    assert!(budget < block_bound(&config));
    let mut raw = Raw::server(config);
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &[]));
    let mut accepted = 0;
    while raw.closed().is_none() && accepted <= budget {
        raw.send_continuation(1, &[0x40], false);
        raw.poll_events();
        accepted += 1;
    }
    assert_eq!(accepted - 1, budget, "exactly the budget was accepted");
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn empty_continuations_are_budgeted_as_idle_frames() {
    let config = Config::server();
    let burst = config.idle_frame_burst as usize;
    let mut raw = Raw::server(config);
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &[]));
    for _ in 0..burst {
        raw.send_continuation(1, &[], false);
    }
    raw.assert_open();
    raw.send_continuation(1, &[], false);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

/// A request head whose one field (a 4,000-byte value, inserted in the dynamic table) is then
/// referenced `refs` times by a one-byte index: a few KiB on the wire, `refs` × 4 KiB decoded.
fn hpack_bomb(refs: usize) -> bytes::Bytes {
    let mut block = BytesMut::new();
    for (name, value) in request_fields("/svc.S/M") {
        hpack_literal(name.as_bytes(), value.as_bytes(), false, &mut block);
    }
    hpack_literal(b"x-bomb", &[b'a'; 4000], true, &mut block);
    // Index 62: the newest dynamic-table entry (RFC 7541 §2.3.3).
    block.extend(std::iter::repeat_n(0x80 | 62, refs));
    block.freeze()
}

#[test]
fn hpack_bomb_fails_the_call_and_the_connection_survives() {
    let config = Config::server();
    let limit = config.max_header_list_size as usize;
    let mut raw = Raw::server(config);
    let refs = 20_000;
    let bomb = hpack_bomb(refs);
    assert!(
        bomb.len() < block_bound(raw.conn.config()),
        "fits the raw bound"
    );
    assert!(
        refs * 4038 > 4000 * limit,
        "decodes to ~80 MB, 4,000 × the limit"
    );
    raw.send_block(1, &bomb, true);
    raw.pump();
    assert!(
        raw.goaways().is_empty(),
        "a stream error, not a connection error"
    );
    assert!(raw.started().is_empty(), "the application never sees it");
    let end = raw.final_block(1).expect("answered");
    assert_eq!(end.get("grpc-status"), Some("8"), "RESOURCE_EXHAUSTED");
    // What it cost: a small answer, no event, nothing kept.
    assert!(raw.written < 256, "answer of {} bytes", raw.written);
    assert!(raw.events.is_empty(), "{:?}", raw.events);
    assert_eq!(raw.conn.active_calls(), 0);
    // The decoder stayed in sync: the next call is served (its encoder's table is unaffected).
    raw.assert_serves_call(3);
}

#[test]
fn header_list_at_max_header_list_size_is_accepted_one_byte_over_is_not() {
    let config = Config::server().max_header_list_size(1000);
    let mut raw = Raw::server(config);
    let mut at = request_fields("/svc.S/M");
    let pad = 1000 - list_size(&at) - 32 - "x-pad".len();
    at.push(("x-pad".into(), "a".repeat(pad)));
    assert_eq!(list_size(&at), 1000);
    raw.send_plain(1, &at, true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);

    let mut over = at.clone();
    over.last_mut().unwrap().1.push('a');
    assert_eq!(list_size(&over), 1001);
    raw.send_plain(3, &over, true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)], "no call for stream 3");
    let end = raw.final_block(3).expect("answered");
    assert_eq!(end.get("grpc-status"), Some("8"), "RESOURCE_EXHAUSTED");
    raw.assert_serves_call(5);
}

// ---- Reset budgets ----

#[test]
fn rapid_reset_is_enhance_your_calm_after_the_reset_budget() {
    let config = Config::server();
    let burst = config.reset_burst;
    let mut raw = Raw::server(config);
    let mut id = 1;
    for _ in 0..burst {
        raw.send_request(id, "/svc.S/M", false);
        raw.send_rst(id, ErrorCode::CANCEL);
        id += 2;
    }
    raw.flush();
    assert!(raw.goaways().is_empty());
    // Memory held meanwhile: one closed stream and two events per pair, until the
    // application reads its events.
    assert_eq!(raw.conn.active_calls(), burst as usize);
    raw.send_request(id, "/svc.S/M", false);
    raw.send_rst(id, ErrorCode::CANCEL);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(
        raw.goaways(),
        vec![(StreamId(id), ErrorCode::ENHANCE_YOUR_CALM)]
    );
}

#[test]
fn rapid_reset_budget_refills_at_the_reset_rate() {
    let config = Config::server();
    let (burst, rate) = (config.reset_burst, config.reset_rate);
    let mut raw = Raw::server(config);
    let mut id = 1;
    let mut pair = |raw: &mut Raw| {
        raw.send_request(id, "/svc.S/M", false);
        raw.send_rst(id, ErrorCode::CANCEL);
        id += 2;
    };
    for _ in 0..burst {
        pair(&mut raw);
    }
    raw.sleep(Duration::from_secs(1));
    for _ in 0..rate {
        pair(&mut raw);
    }
    raw.assert_open();
    pair(&mut raw);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn cancelling_calls_the_application_saw_spends_no_reset_budget() {
    // Deadlines and cancellations are legitimate: only streams reset before the application
    // saw them count as rapid reset.
    let config = Config::server();
    let many = 5 * config.reset_burst;
    let mut raw = Raw::server(config);
    for i in 0..many {
        let id = 1 + 2 * i;
        raw.send_request(id, "/svc.S/M", false);
        raw.pump();
        raw.send_rst(id, ErrorCode::CANCEL);
    }
    raw.assert_open();
    assert_eq!(raw.started().len(), many as usize);
    assert_eq!(raw.conn.active_calls(), 0);
}

#[test]
fn client_ignoring_max_concurrent_streams_is_refused_then_cut_off() {
    let config = Config::server().max_concurrent_streams(2);
    let burst = config.reset_burst as usize;
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    raw.send_request(3, "/svc.S/M", false);
    raw.send_request(5, "/svc.S/M", false);
    raw.assert_open();
    assert_eq!(raw.started(), vec![StreamId(1), StreamId(3)]);
    assert_eq!(raw.resets(), vec![(StreamId(5), ErrorCode::REFUSED_STREAM)]);
    // It persists: every refusal spends the reset budget.
    let mut id = 7;
    for _ in 1..burst {
        raw.send_request(id, "/svc.S/M", false);
        id += 2;
    }
    raw.assert_open();
    assert_eq!(raw.resets().len(), burst);
    assert!(
        raw.resets()
            .iter()
            .all(|(_, code)| *code == ErrorCode::REFUSED_STREAM)
    );
    assert_eq!(raw.conn.active_calls(), 2, "refused streams hold nothing");
    raw.send_request(id, "/svc.S/M", false);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn streams_whose_end_the_application_has_not_seen_free_their_slots_for_new_ones_once() {
    // At the limit, streams the peer reset after the application saw them still hold their
    // slots until it polls their ends. New streams may use up to the limit's worth of those
    // slots (a cancel followed at once by a new call is legitimate); beyond, they are
    // refused, so the work in flight stays within twice the limit.
    let mut raw = Raw::server(Config::server().max_concurrent_streams(2));
    raw.send_request(1, "/svc.S/M", false);
    raw.send_request(3, "/svc.S/M", false);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1), StreamId(3)]);
    raw.send_rst(1, ErrorCode::CANCEL);
    raw.send_rst(3, ErrorCode::CANCEL);
    raw.send_request(5, "/svc.S/M", false);
    raw.send_request(7, "/svc.S/M", false);
    raw.send_request(9, "/svc.S/M", false);
    raw.flush();
    assert_eq!(raw.resets(), vec![(StreamId(9), ErrorCode::REFUSED_STREAM)]);
    assert_eq!(raw.conn.active_calls(), 4, "two running, two winding down");
    // The application sees the cancels and their slots free; the two new calls fill the
    // limit, so a further stream is refused like any over it.
    raw.pump();
    assert_eq!(raw.conn.active_calls(), 2);
    raw.send_request(11, "/svc.S/M", false);
    raw.flush();
    assert_eq!(
        raw.resets().last(),
        Some(&(StreamId(11), ErrorCode::REFUSED_STREAM))
    );
    raw.assert_open();
}

#[test]
fn made_you_reset_is_enhance_your_calm_after_the_reset_budget() {
    // CVE-2025-8671: frames that make us reset streams (WINDOW_UPDATE 0, DATA after
    // END_STREAM) are budgeted like the peer's own resets.
    let config = Config::server();
    let burst = config.reset_burst;
    let mut raw = Raw::server(config);
    let mut id = 1;
    for i in 0..burst {
        if i % 2 == 0 {
            raw.send_request(id, "/svc.S/M", false);
            raw.send_window_update(id, 0);
        } else {
            raw.send_request(id, "/svc.S/M", true);
            raw.send_data(id, &grpc_message(0, b"x"), false);
        }
        id += 2;
    }
    raw.assert_open();
    assert_eq!(raw.resets().len(), burst as usize);
    raw.send_request(id, "/svc.S/M", false);
    raw.send_window_update(id, 0);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

// ---- Idle-frame budget ----

#[test]
fn ping_flood_is_enhance_your_calm_after_the_idle_budget() {
    // The idle budget alone: keepalive enforcement is tested on its own.
    let config = Config::server().ping_policy(None);
    let burst = config.idle_frame_burst as usize;
    let mut raw = Raw::server(config);
    for i in 0..burst {
        raw.send_ping((i as u64).to_be_bytes());
    }
    raw.assert_open();
    let acks = raw
        .frames
        .iter()
        .filter(|f| matches!(f, Frame::Ping(p) if p.ack))
        .count();
    assert_eq!(acks, burst, "every PING within the budget is answered");
    raw.send_ping([0; 8]);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn pings_at_the_refill_rate_are_never_cut_off() {
    // The idle budget alone: keepalive enforcement is tested on its own.
    let config = Config::server().ping_policy(None);
    let interval = Duration::from_secs(1) / config.idle_frame_rate;
    let mut raw = Raw::server(config);
    for i in 0..5000u64 {
        raw.send_ping(i.to_be_bytes());
        raw.now += interval;
        if i % 100 == 0 {
            raw.flush();
        }
    }
    raw.assert_open();
}

#[test]
fn settings_flood_is_enhance_your_calm_after_the_idle_budget() {
    let config = Config::server();
    let burst = config.idle_frame_burst as usize;
    let mut raw = Raw::server(config);
    for _ in 0..burst {
        raw.send_frame(&Frame::Settings(Settings::default()));
    }
    raw.assert_open();
    raw.send_frame(&Frame::Settings(Settings::default()));
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn empty_data_flood_is_enhance_your_calm_after_the_idle_budget() {
    let config = Config::server();
    let burst = config.idle_frame_burst as usize;
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    for _ in 0..burst {
        raw.send_data(1, &[], false);
    }
    raw.assert_open();
    raw.send_data(1, &[], false);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn unknown_and_priority_frame_flood_is_enhance_your_calm() {
    let config = Config::server();
    let burst = config.idle_frame_burst as usize;
    let mut raw = Raw::server(config);
    for i in 0..burst {
        if i % 2 == 0 {
            raw.send(&raw_frame(FrameType(0xfa), 0, 0, b"junk"));
        } else {
            raw.send(&raw_frame(FrameType::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]));
        }
    }
    raw.assert_open();
    raw.send(&raw_frame(FrameType(0xfa), 0, 0, b"junk"));
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn peer_that_never_reads_is_cut_off_at_max_pending_control_frames() {
    // The idle budget alone: keepalive enforcement is tested on its own.
    let config = Config::server().ping_policy(None);
    let max = config.max_pending_control_frames;
    let interval = Duration::from_secs(1) / config.idle_frame_rate;
    let mut raw = Raw::server(config);
    // Paced so the idle budget never runs out; we never call poll_transmit.
    for i in 0..max {
        raw.send_ping((i as u64).to_be_bytes());
        raw.now += interval;
    }
    raw.poll_events();
    assert!(raw.closed().is_none(), "{max} queued PING ACKs are allowed");
    raw.send_ping([0; 8]);
    raw.poll_events();
    assert!(raw.closed().is_some(), "one more is not");
    // What is left to write is the GOAWAY alone, not the backlog.
    let written = raw.flush();
    assert!(written <= GOAWAY_MAX, "{written} bytes left to write");
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

// ---- Legitimate traffic never trips a budget (h2#944) ----

#[test]
fn ten_thousand_small_data_frames_on_one_stream_trip_nothing() {
    let mut raw = Raw::server(Config::server());
    raw.send_request(1, "/svc.S/M", false);
    // 1,000 messages of 5 bytes, each written as ten 1-byte DATA frames, all at one instant.
    let message = grpc_message(0, b"hello");
    let mut frames = 0;
    for _ in 0..1000 {
        for byte in message.iter() {
            raw.send_data(1, &[*byte], false);
            frames += 1;
        }
        // The application reads and releases as it goes; the client reads our output.
        raw.flush();
        let seen = raw.events.len();
        raw.poll_events();
        let credits: Vec<(StreamId, usize)> = raw.events[seen..]
            .iter()
            .filter_map(|e| match e {
                Event::Message { stream, message } => Some((*stream, message.credit())),
                _ => None,
            })
            .collect();
        for (stream, credit) in credits {
            raw.conn.release_capacity(stream, credit);
        }
    }
    assert_eq!(frames, 10_000);
    raw.send_data(1, &[], true);
    raw.assert_open();
    let messages = raw
        .events
        .iter()
        .filter(|e| matches!(e, Event::Message { .. }))
        .count();
    assert_eq!(messages, 1000);
    assert!(raw.resets().is_empty());
    raw.respond_ok(1, b"done");
    raw.pump();
    assert_eq!(
        raw.final_block(1).and_then(|b| b.get("grpc-status")),
        Some("0")
    );
}

#[test]
fn five_thousand_sequential_unary_calls_trip_nothing() {
    let mut raw = Raw::server(Config::server());
    for i in 0..5000u32 {
        let id = 1 + 2 * i;
        raw.send_unary(id, "/svc.S/M", b"ping");
        raw.pump();
        raw.respond_ok(id, b"pong");
        raw.pump();
        // The client returns connection credit, as real clients do.
        raw.send_window_update(0, 16);
        if i % 500 == 0 {
            raw.events.clear();
            raw.frames.clear();
            raw.blocks.clear();
        }
    }
    raw.assert_open();
    assert!(raw.resets().is_empty());
    assert_eq!(raw.conn.active_calls(), 0);
    assert_eq!(
        raw.final_block(9999).and_then(|b| b.get("grpc-status")),
        Some("0")
    );
}

#[test]
fn window_updates_racing_with_call_ends_trip_nothing() {
    // RFC 9113 §6.9: WINDOW_UPDATE on a closed stream is legal (it crossed our END_STREAM).
    // A client that credits each response back on its stream does this once per call.
    let mut raw = Raw::server(Config::server());
    for i in 0..5000u32 {
        let id = 1 + 2 * i;
        raw.send_unary(id, "/svc.S/M", b"ping");
        raw.pump();
        raw.respond_ok(id, b"pong");
        raw.pump();
        raw.send_window_update(id, 9);
        raw.send_window_update(0, 9);
    }
    raw.assert_open();
}

#[test]
fn plain_block_requests_decode_like_encoded_ones() {
    // Sanity of the raw peer: the same request as literals is a valid call.
    let mut raw = Raw::server(Config::server());
    raw.send_block(1, &plain_block(&request_fields("/svc.S/M")), true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);
}

// ---- Flow control bounds what is queued for the application ----

#[test]
fn empty_messages_are_bounded_by_the_stream_window() {
    // An empty message is 5 bytes on the wire and nothing in `Message::credit`: if its prefix
    // were credited back at once, a peer could queue events without end while the application
    // is busy. Queued messages must stay within what we advertised: window / 5.
    let config = Config::server()
        .initial_stream_window(65_535)
        .connection_window(1 << 20);
    let window = config.initial_stream_window as usize;
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    let frame_of_empties: Vec<u8> = std::iter::repeat_n(grpc_message(0, b""), 16_380 / 5)
        .flatten()
        .collect();
    // A well-behaved sender: it spends only the credit it was given. The application never
    // polls its events.
    let mut credit = window;
    let mut sent = 0;
    while sent < 2 << 20 {
        let n = frame_of_empties.len().min(credit);
        if n < 5 {
            break;
        }
        raw.send_data(1, &frame_of_empties[..n - n % 5], false);
        sent += n - n % 5;
        credit -= n - n % 5;
        raw.flush();
        for frame in raw.frames.drain(..) {
            if let Frame::WindowUpdate(w) = frame {
                if w.stream == StreamId(1) {
                    credit += w.increment as usize;
                }
            }
        }
    }
    let queued = raw.poll_events();
    assert!(raw.closed().is_none());
    assert!(
        queued <= window / 5 + 1,
        "{queued} events queued after {sent} bytes; bound {}",
        window / 5 + 1
    );
}

// ---- Keepalive enforcement (keepalive.md) ----

fn ping_goaway_debug(raw: &Raw) -> Option<Vec<u8>> {
    raw.frames.iter().find_map(|f| match f {
        Frame::GoAway(g) => Some(g.debug.to_vec()),
        _ => None,
    })
}

#[test]
fn pings_faster_than_the_policy_are_struck_out_with_too_many_pings() {
    let config = Config::server();
    let policy = config
        .ping_policy
        .expect("servers enforce keepalive by default");
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false); // a call in progress: the 5 min rule applies
    raw.send_ping([1; 8]); // the first PING is free
    for strike in 1..=policy.max_strikes {
        raw.now += policy.min_interval / 2;
        raw.send_ping([2; 8]);
        raw.flush();
        assert!(
            raw.closed().is_none(),
            "strike {strike} of {} is tolerated",
            policy.max_strikes
        );
    }
    raw.now += policy.min_interval / 2;
    raw.send_ping([3; 8]);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(
        ping_goaway_debug(&raw).as_deref(),
        Some(&b"too_many_pings"[..])
    );
}

#[test]
fn pings_at_the_policy_interval_are_fine_forever() {
    let config = Config::server();
    let policy = config.ping_policy.unwrap();
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    for i in 0..50u64 {
        raw.send_ping(i.to_be_bytes());
        raw.now += policy.min_interval;
    }
    raw.assert_open();
}

#[test]
fn without_calls_pings_need_two_hours_unless_permitted() {
    let mut raw = Raw::server(Config::server());
    for _ in 0..3 {
        raw.send_ping([0; 8]);
        raw.now += Duration::from_secs(600); // 10 min: fine with calls, early without
    }
    raw.send_ping([0; 8]);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);

    let permissive = Config::server().ping_policy(Some(
        anygrpc_core::PingPolicy::default().permit_without_calls(true),
    ));
    let mut raw = Raw::server(permissive);
    for _ in 0..10 {
        raw.send_ping([0; 8]);
        raw.now += Duration::from_secs(600);
    }
    raw.assert_open();
}

#[test]
fn sending_data_forgives_early_pings() {
    let config = Config::server();
    let policy = config.ping_policy.unwrap();
    let mut raw = Raw::server(config);
    raw.send_request(1, "/svc.S/M", false);
    raw.poll_events();
    for round in 0..10u8 {
        // Two early pings per round: never more than the strikes allowed before data flows.
        for _ in 0..policy.max_strikes {
            raw.send_ping([round; 8]);
            raw.now += Duration::from_secs(1);
        }
        raw.conn
            .send_message(
                anygrpc_core::StreamId(1),
                bytes::Bytes::from_static(b"x"),
                false,
            )
            .unwrap();
        raw.flush();
    }
    raw.assert_open();
}

// ---- Slowloris: header blocks that never complete ----

#[test]
fn header_block_dribbled_in_continuations_is_cut_off_at_the_timeout() {
    let config = Config::server();
    let timeout = config.header_block_timeout;
    let mut raw = Raw::server(config);
    let block = plain_block(&request_fields("/svc.S/M"));
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &block[..1]));
    // One byte per tenth of the timeout: dribbling does not extend it.
    for byte in &block[1..10] {
        raw.sleep(timeout / 10);
        raw.send_continuation(1, &[*byte], false);
        raw.assert_open();
    }
    raw.sleep(timeout / 10);
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
    assert!(raw.started().is_empty());
}

#[test]
fn header_frame_dribbled_byte_by_byte_is_cut_off_at_the_timeout() {
    let config = Config::server();
    let timeout = config.header_block_timeout;
    let mut raw = Raw::server(config);
    let block = plain_block(&request_fields("/svc.S/M"));
    let frame = raw_frame(FrameType::HEADERS, flags::END_HEADERS, 1, &block);
    // The frame header itself arrives a byte at a time, then part of the payload.
    for byte in &frame[..20] {
        raw.send(&[*byte]);
        raw.sleep(timeout / 20);
    }
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn a_completed_header_block_stops_the_timer() {
    let config = Config::server();
    let timeout = config.header_block_timeout;
    let mut raw = Raw::server(config);
    let block = plain_block(&request_fields("/svc.S/M"));
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &block[..10]));
    raw.sleep(timeout - Duration::from_millis(1));
    raw.send_continuation(1, &block[10..], true);
    raw.pump();
    assert_eq!(raw.started(), vec![StreamId(1)]);
    // Idle afterwards, for much longer: an idle connection is not a slow one.
    raw.sleep(timeout * 10);
    raw.assert_open();
    raw.send_data(1, &grpc_message(0, b"hi"), true);
    raw.respond_ok(1, b"ok");
    raw.pump();
    assert_eq!(
        raw.final_block(1).and_then(|b| b.get("grpc-status")),
        Some("0")
    );
}

#[test]
fn header_block_timeout_is_configurable() {
    let config = Config::server().header_block_timeout(Duration::from_secs(60));
    let mut raw = Raw::server(config);
    raw.send(&raw_frame(FrameType::HEADERS, 0, 1, &[0x83]));
    raw.sleep(Duration::from_secs(59));
    raw.assert_open();
    raw.sleep(Duration::from_secs(1));
    raw.assert_connection_error(ErrorCode::ENHANCE_YOUR_CALM);
}
