//! Smoke runs of every fuzz entry point over pseudo-random inputs, seeds taken from a real
//! exchange and the checked-in corpus, so plain `cargo test` exercises the targets.

use std::path::PathBuf;

use super::*;

/// xorshift64: deterministic pseudo-random numbers without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// `seed` with a few random edits: bit flips, insertions, deletions, duplicated ranges.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        let end = (at + rng.below(24)).min(v.len());
        match rng.below(4) {
            0 => {
                if let Some(b) = v.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => v.insert(at, rng.byte()),
            2 => drop(v.drain(at..end)),
            _ => {
                let copy = v[at..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, copy);
            }
        }
    }
    v
}

/// A frame with a random but plausible header: mostly known types, small lengths, low ids.
fn random_frame(rng: &mut Rng, dst: &mut Vec<u8>) {
    let kind = if rng.below(10) == 0 {
        rng.byte()
    } else {
        rng.below(10) as u8
    };
    let len = match rng.below(3) {
        0 => rng.below(9),
        1 => [4, 5, 6, 8, 13][rng.below(5)],
        _ => rng.below(48),
    };
    let stream = [0, 1, 3, 5, 7, 2, 9, 0x7fff_ffff][rng.below(8)];
    dst.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    dst.push(kind);
    dst.push(rng.byte() & [0xff, 0x01, 0x04, 0x05, 0x0d][rng.below(5)]);
    dst.extend_from_slice(&u32::to_be_bytes(stream));
    let mut payload = rng.bytes(len);
    if let Some(first) = payload.first_mut().filter(|_| rng.below(2) == 0) {
        *first %= 8;
    }
    dst.extend_from_slice(&payload);
}

/// `bytes` as `connection_recv` records: splits of at most `max` bytes (random when `rng` is
/// given, with a command now and then).
fn recv_records(mut rng: Option<&mut Rng>, bytes: &[u8], max: usize, out: &mut Vec<u8>) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut n = max;
        if let Some(rng) = rng.as_deref_mut() {
            n = rng.below(max) + 1;
            if rng.below(8) == 0 {
                out.extend_from_slice(&[0xe0 + rng.below(32) as u8, rng.byte()]);
            }
        }
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        out.push((piece.len() - 1) as u8);
        out.extend_from_slice(piece);
        rest = tail;
    }
}

/// What a real client and server write over an exchange of four calls on streams 1, 3, 5, 7
/// (one with a deadline, one cancelled, one answered with an error): (client, server) bytes.
fn exchange() -> (Vec<u8>, Vec<u8>) {
    let now = Instant::now();
    let mut client = Connection::new(Side::Client, Arc::new(Config::client()), now);
    let mut server = Connection::new(Side::Server, Arc::new(Config::server()), now);
    let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
    for i in 0..4 {
        let mut request = CallRequest::new("/fuzz.Fuzz/Call", "fuzz.local");
        request.timeout = (i == 1).then(|| Duration::from_secs(1));
        let id = client.start_call(request, now).unwrap();
        let body = message_body(id, 0, 20 * i);
        client.send_message(id, body, false).unwrap();
        if i != 3 {
            client.finish_sending(id).unwrap();
        }
    }
    client.ping(now).unwrap();
    for round in 0..4 {
        let start = to_server.len();
        while client.poll_transmit(&mut to_server) > 0 {}
        server.recv(&to_server[start..], now);
        while let Some(event) = server.poll_event() {
            if let Event::Message { stream, message } = &event {
                server.release_capacity(*stream, message.credit());
            }
            if let Event::CallStarted { stream, .. } = event {
                let mut metadata = Metadata::new();
                metadata.insert("x-fuzz", "seed").unwrap();
                server.send_headers(stream, metadata, None).unwrap();
                let body = message_body(stream, 0, 30);
                server.send_message(stream, body, false).unwrap();
                let code = if stream.0 == 5 {
                    Code::NotFound
                } else {
                    Code::Ok
                };
                if stream.0 != 7 {
                    server
                        .send_trailers(stream, Status::new(code, "done"), Metadata::new())
                        .unwrap();
                }
            }
        }
        let start = to_client.len();
        while server.poll_transmit(&mut to_client) > 0 {}
        client.recv(&to_client[start..], now);
        while let Some(event) = client.poll_event() {
            if let Event::Message { stream, message } = event {
                client.release_capacity(stream, message.credit());
            }
        }
        if round == 1 {
            client.cancel(StreamId(7)).unwrap();
        }
    }
    (to_server.to_vec(), to_client.to_vec())
}

/// Payloads of the HEADERS frames (END_HEADERS, no padding or priority) in `wire`.
fn header_blocks(mut wire: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    while let Some(header) = crate::frame::FrameHeader::peek(wire) {
        let end = 9 + header.length as usize;
        if header.kind == crate::frame::FrameType::HEADERS && header.flags & 0x2c == 0x04 {
            blocks.push(wire[9..end].to_vec());
        }
        wire = &wire[end..];
    }
    blocks
}

/// Hand-made and recorded inputs of every target, as (target, input).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (client, server) = exchange();
    let client_frames = &client[CLIENT_PREFACE.len()..];
    let mut seeds = vec![
        ("frame_roundtrip", client_frames.to_vec()),
        ("frame_roundtrip", server.clone()),
    ];
    let (request_blocks, response_blocks) = (header_blocks(client_frames), header_blocks(&server));
    for blocks in [&request_blocks, &response_blocks] {
        let mut input = vec![0xff];
        for block in blocks.iter().filter(|b| b.len() < 0xff) {
            input.push(block.len() as u8);
            input.extend_from_slice(block);
        }
        seeds.push(("hpack_decode", input));
    }
    let mut table_change = vec![0x3f, 0xff, 4];
    table_change.push(request_blocks[0].len() as u8);
    table_change.extend_from_slice(&request_blocks[0]);
    seeds.push(("hpack_decode", table_change));
    for (mode, wire) in [
        (0x08, &client),
        (0x0a, &client),
        (0x39, &server),
        (0x3f, &server),
    ] {
        let mut input = vec![mode];
        recv_records(None, wire, 100, &mut input);
        seeds.push(("connection_recv", input));
    }
    // The valid prefix, then a request and a PING with the clock and commands in between.
    let mut input = vec![0x00];
    recv_records(None, client_frames, 37, &mut input);
    input.extend_from_slice(&[0xe7, 30, 0xe2, 0, 0xe0, 40, 0xf0, 0, 0xe4, 0]);
    seeds.push(("connection_recv", input));
    for input in [
        // Two messages split everywhere, a zero-length one, then a flag of 2.
        &[
            16, 3, 0, 0, 0, 0, 2, 4, b'h', b'i', 1, 0, 3, 0, 0, 0, 5, 0, 0, 0, 0, 1, 2,
        ][..],
        // A message one byte over the limit of 4.
        &[4, 10, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5][..],
        // A length of 2^32 - 1.
        &[63, 5, 1, 0xff, 0xff, 0xff, 0xff][..],
    ] {
        seeds.push(("message_decode", input.to_vec()));
    }
    for input in [
        // Unary: start, message, half-close, drive; reply headers, message, OK trailers, drive.
        &[0, 3, 0, 0, 10, 2, 0, 15, 200, 10, 0, 7, 12, 9, 0, 15, 200][..],
        // Two calls, one with a deadline; deliver by pieces, let the deadline pass.
        &[
            1, 3, 0, 3, 5, 0, 0, 0, 1, 13, 3, 13, 40, 14, 9, 15, 120, 15, 250,
        ][..],
        // A large message through small windows, credit held, then released; a ping.
        &[9, 3, 0, 0, 255, 15, 200, 6, 0, 15, 200, 4, 0, 15, 200][..],
        // Cancel and server reset crossing; then shutdowns on both sides.
        &[
            6, 3, 0, 3, 2, 15, 200, 1, 0, 8, 1, 13, 100, 14, 100, 5, 0, 12, 0, 15, 200,
        ][..],
    ] {
        seeds.push(("stream_ops", input.to_vec()));
    }
    seeds
}

fn target(name: &str) -> fn(&[u8]) {
    match name {
        "frame_roundtrip" => frame_roundtrip,
        "hpack_decode" => hpack_decode,
        "connection_recv" => connection_recv,
        "message_decode" => message_decode,
        "stream_ops" => stream_ops,
        _ => panic!("no fuzz target {name}"),
    }
}

fn seeds_of(name: &str) -> Vec<Vec<u8>> {
    seeds()
        .into_iter()
        .filter(|(t, _)| *t == name)
        .map(|(_, s)| s)
        .collect()
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn seeds_reach_live_calls() {
    let (client, server) = exchange();
    assert!(header_blocks(&client[CLIENT_PREFACE.len()..]).len() >= 4);
    assert!(header_blocks(&server).len() >= 4);
    let recv = seeds_of("connection_recv");
    // The server harness sees the four requests, the client harness the four answers (the
    // cancelled call's message went out before the cancel).
    let server_side = run_connection_recv(&recv[0]);
    assert_eq!(
        server_side.peer.calls.len(),
        4,
        "{:?}",
        server_side.peer.calls
    );
    let client_side = run_connection_recv(&recv[2]);
    let answered = client_side
        .peer
        .calls
        .values()
        .filter(|c| c.received > 0)
        .count();
    assert_eq!(answered, 4, "{:?}", client_side.peer.calls);
    let unary = run_stream_ops(&seeds_of("stream_ops")[0]);
    assert_eq!(unary.server.calls.len(), 1);
    assert_eq!(
        unary
            .client
            .calls
            .values()
            .map(|c| c.received)
            .sum::<usize>(),
        1
    );
}

#[test]
fn seeds_and_corpus_files_pass() {
    for (name, seed) in seeds() {
        target(name)(&seed);
    }
    let Ok(dirs) = std::fs::read_dir(corpus_dir()) else {
        return;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().into_string().unwrap();
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            target(&name)(&std::fs::read(file.path()).unwrap());
        }
    }
}

/// Writes the seeds into `core/fuzz/corpus/<target>/seed-<n>`; run by hand after changing them.
#[test]
#[ignore = "writes the fuzz corpus seeds"]
fn write_corpus_seeds() {
    let mut counts = BTreeMap::<&str, usize>::new();
    for (name, seed) in seeds() {
        let n = counts.entry(name).or_default();
        let dir = corpus_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{n}")), seed).unwrap();
        *n += 1;
    }
}

#[test]
fn smoke_frame_roundtrip() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let seeds = seeds_of("frame_roundtrip");
    for i in 0..3000 {
        let input = if i % 2 == 0 {
            mutate(&mut rng, &seeds[i % seeds.len()])
        } else {
            let mut input = Vec::new();
            (0..=rng.below(6)).for_each(|_| random_frame(&mut rng, &mut input));
            input
        };
        frame_roundtrip(&input);
    }
}

#[test]
fn smoke_hpack_decode() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds = seeds_of("hpack_decode");
    for i in 0..3000 {
        let input = if i % 4 == 0 {
            let len = rng.below(200);
            rng.bytes(len)
        } else {
            mutate(&mut rng, &seeds[i % seeds.len()])
        };
        hpack_decode(&input);
    }
}

#[test]
fn smoke_message_decode() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..4000 {
        let mut wire = Vec::new();
        for _ in 0..rng.below(6) {
            let len = rng.below(70);
            let flag = [0, 0, 1, 2][rng.below(4)];
            wire.push(flag);
            wire.extend_from_slice(&(len as u32).to_be_bytes());
            wire.extend(rng.bytes(len));
        }
        wire.truncate(wire.len() - rng.below(wire.len().min(4) + 1));
        let mut input = vec![rng.byte()];
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(rng.below(rest.len().min(12)) + 1);
            input.push(piece.len() as u8);
            input.extend_from_slice(piece);
            rest = tail;
        }
        message_decode(&input);
    }
}

#[test]
fn smoke_connection_recv() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let seeds = seeds_of("connection_recv");
    for i in 0..2000 {
        let input = if i % 2 == 0 {
            mutate(&mut rng, &seeds[i % seeds.len()])
        } else {
            let mut frames = Vec::new();
            (0..=rng.below(12)).for_each(|_| random_frame(&mut rng, &mut frames));
            let mut input = vec![rng.byte() & 0xf7];
            recv_records(Some(&mut rng), &frames, 40, &mut input);
            input
        };
        connection_recv(&input);
    }
}

#[test]
fn smoke_stream_ops() {
    let mut rng = Rng(0x5555_aaaa_1234_8765);
    let seeds = seeds_of("stream_ops");
    for i in 0..2000 {
        let input = if i % 4 == 0 {
            mutate(&mut rng, &seeds[i % seeds.len()])
        } else {
            let mut input = vec![rng.byte()];
            for _ in 0..rng.below(60) {
                // Fewer large messages than uniform bytes would give.
                let op = rng.byte();
                let arg = if op % 16 == 0 {
                    rng.byte() % 250
                } else {
                    rng.byte()
                };
                input.extend_from_slice(&[op, arg]);
            }
            input
        };
        stream_ops(&input);
    }
}

/// `stream_ops` input: `calls` calls started (no deadline), driven so the server's application
/// sees every `CallStarted`; `finish` then cancels them all.
fn start_and_cancel(calls: usize) -> Vec<u8> {
    let mut input = vec![0x00];
    (0..calls).for_each(|_| input.extend_from_slice(&[3, 0]));
    input.extend_from_slice(&[15, 0x80]);
    input
}

#[test]
fn cancelling_200_seen_calls_stays_within_the_reset_burst() {
    stream_ops(&start_and_cancel(200));
}

#[test]
fn cancelling_seen_calls_is_not_rapid_reset() {
    let input = start_and_cancel(201);
    let kept = corpus_dir().join("../artifacts-kept/stream_ops/cancel-201-seen-calls");
    assert_eq!(
        std::fs::read(kept).ok(),
        Some(input.clone()),
        "reproducer file"
    );
    stream_ops(&input);
}

/// A wire that stalls for seconds while the client opens 200+ calls with deadlines delivers
/// each call's HEADERS and its deadline's RST_STREAM in one read: rapid reset as the server
/// sees it, so the server's budget ends the connection, and the harness accepts that close
/// only because it counted more such resets than the burst allows.
#[test]
fn a_stalled_wire_with_expiring_calls_trips_the_reset_budget_justly() {
    let kept = corpus_dir().join("../artifacts-kept/stream_ops/stalled-wire-expiring-calls");
    let input = std::fs::read(kept).expect("reproducer file");
    let pair = super::run_stream_ops(&input);
    let burst = usize::try_from(pair.server.conn.config().reset_burst).expect("small burst");
    assert!(
        pair.server.reset_unseen > burst,
        "{}",
        pair.server.reset_unseen
    );
    assert!(
        matches!(&pair.server.closed, Some(Some(e)) if super::is_reset_budget_close(e)),
        "{:?}",
        pair.server.closed
    );
}

/// The server drains while the client has over a thousand calls in flight: they arrive
/// above the final GOAWAY's last stream id and are ignored, not each answered with a
/// RST_STREAM that would overflow the control backlog and cut off a conforming client.
#[test]
fn calls_in_flight_when_the_server_drains_end_cleanly() {
    let kept = corpus_dir().join("../artifacts-kept/stream_ops/draining-with-calls-in-flight");
    let input = std::fs::read(kept).expect("reproducer file");
    let pair = super::run_stream_ops(&input);
    let unprocessed = pair
        .client
        .calls
        .values()
        .filter(|c| c.received == 0)
        .count();
    assert!(unprocessed > 1000, "{unprocessed}");
    assert_eq!(pair.server.closed, Some(None));
    assert_eq!(pair.client.closed, Some(None));
}

/// Calls reset before their request was complete (a unary call is announced only then) are
/// resets of unseen calls, within the reset budget here. The calls the client started
/// meanwhile were refused, their slots still held by the reset ones, until the server took
/// the slots of streams whose end awaits the application for new streams (up to the limit's
/// worth): those refusals spent the reset budget too and cut the pair off. Now none is
/// refused, and the pair stays open.
#[test]
fn resets_of_unary_calls_not_yet_announced_count_as_rapid_reset() {
    let kept =
        corpus_dir().join("../artifacts-kept/stream_ops/unary-calls-reset-before-their-request");
    let input = std::fs::read(kept).expect("reproducer file");
    let pair = super::run_stream_ops(&input);
    let burst = u64::from(pair.server.conn.config().reset_burst);
    let (unseen, refused) = pair.server.conn.reset_spending();
    assert!(
        u64::try_from(pair.server.reset_unseen).unwrap() <= burst,
        "{}",
        pair.server.reset_unseen
    );
    assert!(unseen > burst / 2 && unseen <= burst, "{unseen}");
    assert_eq!(refused, 0, "no stream refused for a slot that was freeing");
    assert!(
        matches!(&pair.server.closed, None | Some(None)),
        "{:?}",
        pair.server.closed
    );
}

/// A client that pinged without waiting made the server queue an ACK per PING until its
/// control backlog cut the pair off: the harness's peers leave at most
/// [`super::PINGS_IN_FLIGHT`] unanswered, as a conforming peer waits for its ACKs.
#[test]
fn pings_without_waiting_are_not_what_the_harness_sends() {
    let kept = corpus_dir().join("../artifacts-kept/stream_ops/a-thousand-pings-at-once");
    let input = std::fs::read(kept).expect("reproducer file");
    let pair = super::run_stream_ops(&input);
    assert!(
        matches!(pair.client.closed, None | Some(None)),
        "{:?}",
        pair.client.closed
    );
    assert_eq!(pair.client.pings_acked, pair.client.pings_sent);
}

/// Over a thousand PINGs, each answered before the next, in no time: PINGs at any rate are
/// one of the operations, so the server's idle-frame budget (tested on its own) must not end
/// the pair.
#[test]
fn a_thousand_answered_pings_in_no_time_do_not_end_the_pair() {
    let mut input = vec![0];
    for _ in 0..1100 {
        input.extend_from_slice(&[4, 0, 15, 200]);
    }
    let pair = super::run_stream_ops(&input);
    let burst = usize::try_from(Config::server().idle_frame_burst).expect("small");
    assert!(pair.client.pings_sent > burst, "{}", pair.client.pings_sent);
    assert_eq!(pair.client.pings_acked, pair.client.pings_sent);
}
