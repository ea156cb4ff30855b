//! The per-connection receive budget (`Config::recv_budget`): whatever the number of streams,
//! the size of their frames or their order, what one connection holds for its peer stays
//! within the budget, and legitimate traffic (one large message, a thousand small calls, a
//! slow producer, padded frames) still flows.

use std::time::Duration;

use anygrpc_core::frame::{Data, Frame};
use anygrpc_core::grpc::encode_prefix;
use anygrpc_core::{
    CallRequest, Code, Config, ErrorCode, Event, Message, Metadata, Status, StreamId,
};
use bytes::Bytes;

use crate::support::Pair;
use crate::support::raw::{Raw, grpc_message};

/// What the budget may be exceeded by between two checks: one growth of a reassembly buffer
/// (at most a 4 MiB message's) and the bookkeeping of one input.
const SLACK: usize = 4 << 20;

/// A peer that sends DATA only as far as the windows it was given allow, tracking them from
/// the WINDOW_UPDATEs, RST_STREAMs and GOAWAY the connection writes.
struct Sender {
    raw: Raw,
    connection: i64,
    streams: std::collections::HashMap<u32, i64>,
    reset: std::collections::HashSet<u32>,
    goaway: Option<ErrorCode>,
    /// Highest `held_for_peer` seen after any input.
    peak_held: usize,
}

impl Sender {
    /// A raw client against a server with `config`, its windows those the server advertised.
    fn client_of(config: Config) -> Self {
        let connection = i64::from(config.connection_window);
        let raw = Raw::server(config);
        Self::new(raw, connection)
    }

    fn new(raw: Raw, connection: i64) -> Self {
        Self {
            raw,
            connection,
            streams: Default::default(),
            reset: Default::default(),
            goaway: None,
            peak_held: 0,
        }
    }

    fn open(&mut self, stream: u32, window: i64) {
        self.streams.insert(stream, window);
    }

    /// Sends up to `len` bytes of `byte` on `stream`, in frames of at most `frame`; returns
    /// how many the windows allowed.
    fn send(&mut self, stream: u32, mut len: usize, frame: usize) -> usize {
        let mut sent = 0;
        while len > 0 && self.goaway.is_none() && !self.reset.contains(&stream) {
            let window = self.streams.get(&stream).copied().unwrap_or(0);
            let n = (len.min(frame) as i64).min(window).min(self.connection);
            if n <= 0 {
                break;
            }
            self.raw.send_data(stream, &vec![7u8; n as usize], false);
            self.connection -= n;
            *self.streams.entry(stream).or_default() -= n;
            sent += n as usize;
            len -= n as usize;
            self.observe();
        }
        sent
    }

    /// Reads what the connection wrote.
    fn observe(&mut self) {
        self.peak_held = self.peak_held.max(self.raw.conn.held_for_peer());
        self.raw.flush();
        for frame in self.raw.frames.drain(..) {
            match frame {
                Frame::WindowUpdate(w) if w.stream.is_connection() => {
                    self.connection += i64::from(w.increment)
                }
                Frame::WindowUpdate(w) => {
                    *self.streams.entry(w.stream.0).or_default() += i64::from(w.increment)
                }
                Frame::RstStream(r) => {
                    self.reset.insert(r.stream.0);
                }
                Frame::Headers(h) if h.end_stream => {
                    self.reset.insert(h.stream.0);
                }
                Frame::GoAway(g) => self.goaway = Some(g.code),
                _ => {}
            }
        }
    }
}

/// Sends runs of empty messages on streams 1, 3, .. 11 (an application that releases none)
/// until the connection asks for no more input, as a driver would stop reading; `true` once
/// it did.
fn fill_with_empty_messages(raw: &mut Raw) -> bool {
    let run: Vec<u8> = std::iter::repeat_n(grpc_message(0, b""), 3000)
        .flatten()
        .collect();
    for s in [1u32, 3, 5, 7, 9, 11] {
        raw.send_request(s, "/svc.S/M", false);
        for _ in 0..(1 << 20) / run.len() {
            if !raw.conn.wants_input() {
                return true;
            }
            raw.send_data(s, &run, false);
        }
    }
    !raw.conn.wants_input()
}

/// Trailers the raw peer received on `stream`, as a gRPC code number.
fn grpc_status(raw: &Raw, stream: u32) -> Option<String> {
    raw.final_block(stream)
        .and_then(|b| b.get("grpc-status").map(str::to_owned))
}

#[test]
fn a_thousand_streams_of_partial_messages_stay_within_the_budget() {
    // The many-streams attack: every stream declares a message just under 4 MiB and sends
    // what the windows allow, never finishing one. Without a connection-wide bound the
    // server would hold about 4 GiB.
    let config = Config::server();
    let budget = config.recv_budget;
    let stream_window = i64::from(config.initial_stream_window);
    let mut peer = Sender::client_of(config);
    for i in 0..1000u32 {
        let stream = 2 * i + 1;
        peer.raw.send_request(stream, "/svc.S/M", false);
        peer.open(stream, stream_window);
        peer.raw
            .send_data(stream, &encode_prefix(false, (4 << 20) - 1), false);
        *peer.streams.entry(stream).or_default() -= 5;
        peer.connection -= 5;
    }
    peer.observe();
    let mut sent = 0;
    for _round in 0..40 {
        let before = sent;
        for i in 0..1000u32 {
            sent += peer.send(2 * i + 1, 64 << 10, 16 << 10);
        }
        peer.raw.poll_events();
        if sent == before || peer.goaway.is_some() {
            break;
        }
    }
    assert!(
        peer.peak_held <= budget + SLACK,
        "held {} for the peer, budget {budget}",
        peer.peak_held
    );
    // The peer was stopped: by the windows, then by resets of the newest partial messages
    // (RESOURCE_EXHAUSTED) until the reset budget closed the connection.
    assert!(sent < 2 * budget, "{sent} bytes went in");
    let exhausted = (1..2000u32)
        .step_by(2)
        .filter(|s| grpc_status(&peer.raw, *s).as_deref() == Some("8"))
        .count();
    assert!(exhausted > 0, "no call failed with RESOURCE_EXHAUSTED");
    assert_eq!(peer.goaway, Some(ErrorCode::ENHANCE_YOUR_CALM));
    assert!(
        peer.raw.started().len() == 1000,
        "every call reached the application"
    );
}

#[test]
fn partial_messages_on_a_client_stay_within_the_budget() {
    // The same attack by a server: a hundred responses, each an unfinished 4 MiB message.
    let config = Config::client();
    let budget = config.recv_budget;
    let window = i64::from(config.initial_stream_window);
    let connection = i64::from(config.connection_window);
    let mut peer = Sender::new(Raw::client(config), connection);
    let mut calls = Vec::new();
    for _ in 0..100 {
        let id = peer
            .raw
            .conn
            .start_call(CallRequest::new("/svc.S/M", "test.local"), peer.raw.now)
            .expect("start_call");
        calls.push(id.0);
    }
    peer.raw.pump();
    for &stream in &calls {
        let head = crate::support::wire::fields(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
        ]);
        peer.raw.send_headers(stream, &head, false);
        peer.raw
            .send_data(stream, &encode_prefix(false, (4 << 20) - 1), false);
        peer.open(stream, window - 5);
        peer.connection -= 5;
    }
    let mut sent = 0;
    for _round in 0..40 {
        let before = sent;
        for &stream in &calls {
            sent += peer.send(stream, 256 << 10, 16 << 10);
        }
        peer.raw.poll_events();
        if sent == before || peer.goaway.is_some() {
            break;
        }
    }
    assert!(
        peer.peak_held <= budget + SLACK,
        "held {} for the server, budget {budget}",
        peer.peak_held
    );
    let exhausted = peer
        .raw
        .events
        .iter()
        .filter(|e| {
            matches!(e, Event::Finished { status, .. } if status.code() == Code::ResourceExhausted)
        })
        .count();
    assert!(exhausted > 0, "no call failed with RESOURCE_EXHAUSTED");
}

#[test]
fn under_pressure_the_oldest_messages_complete_and_the_newest_give_way() {
    // Twelve 4 MiB uploads at once (48 MiB) against a 32 MiB budget, from a peer that sends
    // round robin, with an application that consumes every complete message at once: the
    // oldest complete, the newest fail with RESOURCE_EXHAUSTED, and nothing hangs.
    let config = Config::server();
    let budget = config.recv_budget;
    let window = i64::from(config.initial_stream_window);
    let mut peer = Sender::client_of(config);
    let len = 4 << 20;
    let streams: Vec<u32> = (0..12).map(|i| 2 * i + 1).collect();
    let mut left: std::collections::HashMap<u32, usize> = Default::default();
    for &s in &streams {
        peer.raw.send_request(s, "/svc.S/M", false);
        peer.open(s, window);
        peer.raw
            .send_data(s, &encode_prefix(false, len as u32), false);
        *peer.streams.entry(s).or_default() -= 5;
        peer.connection -= 5;
        left.insert(s, len);
    }
    let mut completed = Vec::new();
    for _round in 0..2000 {
        let mut moved = 0;
        for &s in &streams {
            let want = left[&s].min(64 << 10);
            let n = peer.send(s, want, 16 << 10);
            *left.get_mut(&s).unwrap() -= n;
            moved += n;
        }
        // The application takes every complete message and releases it.
        while let Some(event) = peer.raw.conn.poll_event() {
            if let Event::Message { stream, message } = event {
                assert_eq!(message.data.len(), len);
                peer.raw.conn.release_capacity(stream, message.credit());
                completed.push(stream.0);
            }
        }
        peer.observe();
        let done = streams
            .iter()
            .all(|s| left[s] == 0 || peer.reset.contains(s));
        if done || peer.goaway.is_some() {
            break;
        }
        assert!(moved > 0, "stalled: {left:?}, reset {:?}", peer.reset);
    }
    assert!(peer.goaway.is_none(), "the connection survived");
    assert!(
        peer.peak_held <= budget + SLACK,
        "held {}, budget {budget}",
        peer.peak_held
    );
    assert!(
        completed.contains(&1),
        "the oldest upload completed: {completed:?}"
    );
    assert!(completed.len() >= 4, "completed {completed:?}");
    for s in &streams {
        let finished = completed.contains(s);
        let refused = grpc_status(&peer.raw, *s).as_deref() == Some("8");
        assert!(
            finished != refused,
            "stream {s}: completed {finished}, refused {refused}"
        );
    }
    assert!(peer.raw.conn.held_for_peer() < 1 << 20, "freed at the end");
}

#[test]
fn one_large_message_flows_without_waiting_for_the_application() {
    // A 4 MiB message arrives as fast as the peer sends it: the windows never stop it.
    let mut pair = Pair::new(usize::MAX);
    let call = pair.start("/svc.S/M");
    let body = Bytes::from(vec![3u8; 4 << 20]);
    pair.client.send_message(call, body.clone(), false).unwrap();
    pair.client.finish_sending(call).unwrap();
    assert!(pair.drive());
    let got = crate::support::messages(&pair.server_events, call);
    assert_eq!(got, vec![body]);
    assert!(pair.server.held_for_peer() < 64 << 10, "released at once");
}

#[test]
fn a_thousand_concurrent_small_calls_are_served() {
    let mut pair = Pair::new(64 << 10);
    let calls: Vec<StreamId> = (0..1000)
        .map(|i| {
            let id = pair.start("/svc.S/M");
            let body = Bytes::from(format!("request {i}").repeat(10));
            pair.client.send_message(id, body, false).unwrap();
            pair.client.finish_sending(id).unwrap();
            id
        })
        .collect();
    assert!(pair.drive());
    let started = crate::support::started(&pair.server_events);
    assert_eq!(started.len(), 1000);
    assert!(pair.server.held_for_peer() < pair.server.config().recv_budget / 4);
    for id in started {
        pair.server
            .send_message(id, Bytes::from_static(b"ok"), false)
            .unwrap();
        pair.server
            .send_trailers(id, Status::ok(), Metadata::new())
            .unwrap();
    }
    assert!(pair.drive());
    for id in calls {
        match crate::support::finished(&pair.client_events, id) {
            Some(Event::Finished { status, .. }) => assert_eq!(status.code(), Code::Ok),
            other => panic!("call {id} ended with {other:?}"),
        }
    }
    assert!(pair.server.held_for_peer() == 0 && pair.client.held_for_peer() == 0);
}

#[test]
fn one_byte_data_frames_hold_what_they_carry_then_trip_the_sliver_budget() {
    // CVE-2026-84304's shape: messages declared 1 MiB, sent as 1-byte DATA frames.
    let config = Config::server();
    let burst = config.idle_frame_burst.max(config.connection_window / 1024) as usize;
    let mut raw = Raw::server(config);
    for i in 0..20u32 {
        raw.send_request(2 * i + 1, "/svc.S/M", false);
        raw.send_data(2 * i + 1, &encode_prefix(false, 1 << 20), false);
    }
    let base = raw.conn.held_for_peer();
    let mut frames = 0;
    'flood: for _ in 0..10_000 {
        for i in 0..20u32 {
            raw.send_data(2 * i + 1, &[9], false);
            frames += 1;
            // Each stream holds at most its first reassembly buffer (4 KiB) or twice what
            // arrived: nothing per frame.
            assert!(raw.conn.held_for_peer() <= base + 20 * (4 << 10) + 2 * frames);
            if raw.conn.held_for_peer() == 0 || frames > 2 * burst {
                break 'flood;
            }
            if frames % 1000 == 0 {
                raw.pump();
                if raw.closed().is_some() {
                    break 'flood;
                }
            }
        }
    }
    raw.pump();
    assert_eq!(
        raw.goaways().last().map(|g| g.1),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
    assert!(frames > burst / 2, "closed after only {frames} slivers");
    assert!(frames <= burst + 2000, "{frames} slivers before the close");
}

#[test]
fn a_slow_producer_and_padded_frames_pass() {
    let mut raw = Raw::server(Config::server());
    // A slow producer: a 40 KiB message in 1-byte frames, 2 ms apart (500 frames/s).
    raw.send_request(1, "/svc.S/M", false);
    let message = grpc_message(0, &[5u8; 40 << 10]);
    for b in message.iter() {
        raw.send_data(1, &[*b], false);
        raw.now += Duration::from_millis(2);
    }
    // The padded shape of the data_frame_padding test: 5 payload bytes and 255 of padding.
    raw.send_request(3, "/svc.S/M", false);
    let message = grpc_message(0, &[6u8; 20 << 10]);
    for piece in message.chunks(5) {
        let data = Data {
            pad_len: Some(255),
            ..Data::new(StreamId(3), Bytes::copy_from_slice(piece), false)
        };
        raw.send_frame(&Frame::Data(data));
    }
    raw.pump();
    assert!(raw.closed().is_none(), "{:?}", raw.goaways());
    let sizes: Vec<(u32, usize)> = raw
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message { stream, message } => Some((stream.0, message.data.len())),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![(1, 40 << 10), (3, 20 << 10)]);
}

#[test]
fn empty_messages_fill_the_budget_then_input_pauses() {
    // Each empty message costs 5 bytes of window and a queue entry: with an application that
    // releases nothing, four streams' windows of them are more than the budget. Input pauses
    // there, and resumes once the application releases.
    let config = Config::server();
    let budget = config.recv_budget;
    let mut raw = Raw::server(config);
    let paused = fill_with_empty_messages(&mut raw);
    assert!(paused, "held {} of {budget}", raw.conn.held_for_peer());
    assert!(raw.conn.held_for_peer() <= budget + 3000 * Message::OVERHEAD);
    raw.flush();
    raw.poll_events();
    for event in std::mem::take(&mut raw.events) {
        if let Event::Message { stream, message } = event {
            raw.conn.release_capacity(stream, message.credit());
        }
    }
    assert!(raw.conn.wants_input(), "input resumes once released");
    assert!(raw.conn.held_for_peer() < 1 << 20);
    assert!(raw.closed().is_none());
}

#[test]
fn messages_the_application_holds_close_the_connection_window() {
    // Forty streams each deliver a complete 1 MiB message that the application keeps: the
    // stream windows alone would let 40 MiB in. The connection window stops the peer at the
    // budget, and opens again as the application releases.
    let config = Config::server();
    let budget = config.recv_budget;
    let window = i64::from(config.initial_stream_window);
    let mut peer = Sender::client_of(config);
    let body = (1 << 20) - 5;
    let mut sent = 0;
    for i in 0..40u32 {
        let s = 2 * i + 1;
        peer.raw.send_request(s, "/svc.S/M", false);
        peer.open(s, window);
        let message = grpc_message(0, &vec![1u8; body]);
        let n = peer.connection.min(message.len() as i64).max(0) as usize;
        if n < message.len() {
            break;
        }
        peer.raw.send_data(s, &message, false);
        peer.connection -= n as i64;
        sent += n;
        peer.observe();
    }
    peer.raw.poll_events();
    assert!(sent <= budget, "{sent} bytes accepted, budget {budget}");
    assert!(sent >= budget / 2, "only {sent} bytes accepted");
    assert!(peer.raw.conn.held_for_peer() <= budget);
    let room = peer.connection;
    for event in std::mem::take(&mut peer.raw.events) {
        if let Event::Message { stream, message } = event {
            peer.raw.conn.release_capacity(stream, message.credit());
        }
    }
    peer.observe();
    assert!(
        peer.connection > room + (8 << 20),
        "the window reopened: {room} → {}",
        peer.connection
    );
}

#[test]
fn under_pressure_only_streams_with_unfinished_messages_give_way() {
    // The newest stream is a streaming call whose small messages were all complete (they sit
    // in its slab); the older streams never finish theirs. Pressure resets the newest of the
    // unfinished ones, never the call that holds no partial message.
    let config = Config::server();
    let window = i64::from(config.initial_stream_window);
    let mut peer = Sender::client_of(config);
    let unfinished: Vec<u32> = (0..12).map(|i| 2 * i + 1).collect();
    for &s in &unfinished {
        peer.raw.send_request(s, "/svc.S/M", false);
        peer.open(s, window);
        peer.raw
            .send_data(s, &encode_prefix(false, (4 << 20) - 1), false);
        *peer.streams.entry(s).or_default() -= 5;
        peer.connection -= 5;
    }
    let streaming = 25;
    peer.raw.send_request(streaming, "/svc.S/M", false);
    for _ in 0..3 {
        peer.raw
            .send_data(streaming, &grpc_message(0, b"tick"), false);
    }
    peer.observe();
    for _round in 0..40 {
        let mut moved = 0;
        for &s in &unfinished {
            moved += peer.send(s, 64 << 10, 16 << 10);
        }
        peer.raw.poll_events();
        if moved == 0 || peer.goaway.is_some() {
            break;
        }
    }
    let refused: Vec<u32> = unfinished
        .iter()
        .copied()
        .filter(|s| grpc_status(&peer.raw, *s).as_deref() == Some("8"))
        .collect();
    assert!(!refused.is_empty(), "pressure reset no unfinished message");
    assert!(
        !peer.reset.contains(&streaming) && grpc_status(&peer.raw, streaming).is_none(),
        "the streaming call without a partial message was ended"
    );
}

#[test]
fn a_header_block_waiting_behind_paused_input_is_not_slowloris() {
    // While the budget is full we stop reading: the rest of a header block the peer already
    // sent waits in the transport, so the header-block timer is not the peer's fault then.
    let config = Config::server();
    let timeout = config.header_block_timeout;
    let mut raw = Raw::server(config);
    assert!(fill_with_empty_messages(&mut raw), "the budget filled");
    // The first half of a request head arrives with what was already read.
    let block = raw.block(&crate::support::raw::request_fields("/svc.S/M"));
    let mut head = bytes::BytesMut::new();
    anygrpc_core::frame::encode_header_block(StreamId(13), false, &block, 16_384, &mut head);
    let (first, rest) = head.split_at(head.len() / 2);
    raw.send(first);
    raw.sleep(timeout * 2);
    raw.pump();
    assert!(raw.closed().is_none(), "closed while we were not reading");
    // The application catches up; reading resumes and the head completes.
    for event in std::mem::take(&mut raw.events) {
        if let Event::Message { stream, message } = event {
            raw.conn.release_capacity(stream, message.credit());
        }
    }
    assert!(raw.conn.wants_input());
    raw.send(rest);
    raw.pump();
    assert!(raw.started().contains(&StreamId(13)), "{:?}", raw.goaways());
}
