//! In-memory streaming calls: server streaming, client streaming and bidi, at every split.

mod support;

use anygrpc_core::{Code, Event, Metadata, Status, StreamId};
use bytes::Bytes;
use support::{CHUNKS, Pair, finished, messages};

fn started(events: &[Event]) -> StreamId {
    *support::started(events).first().expect("CallStarted")
}

fn numbered(n: usize, size: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(vec![(i % 251) as u8; size + i % 3]))
        .collect()
}

#[test]
fn server_streaming_delivers_every_message_in_order() {
    for chunk in CHUNKS {
        let mut pair = Pair::new(chunk);
        let id = pair.start("/s.S/ServerStream");
        pair.client
            .send_message(id, Bytes::from_static(b"req"), false)
            .unwrap();
        pair.client.finish_sending(id).unwrap();
        assert!(pair.drive());
        let sid = started(&pair.take_server_events());
        let replies = numbered(50, 100);
        for r in &replies {
            pair.server.send_message(sid, r.clone(), false).unwrap();
        }
        pair.server
            .send_trailers(sid, Status::ok(), Metadata::new())
            .unwrap();
        assert!(pair.drive());
        let events = pair.take_client_events();
        assert_eq!(messages(&events, id), replies);
        let Some(Event::Finished { status, .. }) = finished(&events, id) else {
            panic!()
        };
        assert_eq!(status.code(), Code::Ok);
    }
}

#[test]
fn client_streaming_delivers_every_message_then_half_close() {
    for chunk in CHUNKS {
        let mut pair = Pair::new(chunk);
        let id = pair.start("/s.S/ClientStream");
        let requests = numbered(40, 1000);
        for r in &requests {
            pair.client.send_message(id, r.clone(), false).unwrap();
        }
        pair.client.finish_sending(id).unwrap();
        assert!(pair.drive());
        let events = pair.take_server_events();
        let sid = started(&events);
        assert_eq!(messages(&events, sid), requests);
        assert!(matches!(events.last(), Some(Event::HalfClosed { stream }) if *stream == sid));
        pair.server
            .send_message(sid, Bytes::from_static(b"sum"), false)
            .unwrap();
        pair.server
            .send_trailers(sid, Status::ok(), Metadata::new())
            .unwrap();
        assert!(pair.drive());
        let events = pair.take_client_events();
        assert_eq!(messages(&events, id), vec![Bytes::from_static(b"sum")]);
        assert!(finished(&events, id).is_some());
    }
}

#[test]
fn bidi_ping_pong_interleaves() {
    for chunk in CHUNKS {
        let mut pair = Pair::new(chunk);
        let id = pair.start("/s.S/Bidi");
        let mut sid = None;
        for round in 0..20u8 {
            pair.client
                .send_message(id, Bytes::from(vec![round; 10]), false)
                .unwrap();
            assert!(pair.drive());
            let events = pair.take_server_events();
            let s = *sid.get_or_insert_with(|| started(&events));
            assert_eq!(
                messages(&events, s),
                vec![Bytes::from(vec![round; 10])],
                "round {round}"
            );
            pair.server
                .send_message(s, Bytes::from(vec![round; 20]), false)
                .unwrap();
            assert!(pair.drive());
            let events = pair.take_client_events();
            assert_eq!(
                messages(&events, id),
                vec![Bytes::from(vec![round; 20])],
                "round {round}"
            );
        }
        pair.client.finish_sending(id).unwrap();
        assert!(pair.drive());
        let sid = sid.unwrap();
        assert!(
            matches!(pair.take_server_events().last(), Some(Event::HalfClosed { stream }) if *stream == sid)
        );
        pair.server
            .send_trailers(sid, Status::new(Code::Aborted, "done"), Metadata::new())
            .unwrap();
        assert!(pair.drive());
        let events = pair.take_client_events();
        let Some(Event::Finished { status, .. }) = finished(&events, id) else {
            panic!()
        };
        assert_eq!((status.code(), status.message()), (Code::Aborted, "done"));
        assert_eq!(
            (pair.client.active_calls(), pair.server.active_calls()),
            (0, 0)
        );
    }
}

#[test]
fn large_messages_cross_many_frames_and_windows() {
    support::at_every_split(large_messages_cross_many_frames_and_windows_at);
}

fn large_messages_cross_many_frames_and_windows_at(chunk: usize) {
    // 3 MiB each way: more than the 1 MiB stream window and many 16 KiB frames.
    let big = Bytes::from(
        (0..3 << 20)
            .map(|i: u32| (i * 7 % 256) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut pair = Pair::new(chunk);
    let id = pair.start("/s.S/Big");
    pair.client.send_message(id, big.clone(), false).unwrap();
    pair.client.finish_sending(id).unwrap();
    assert!(pair.drive());
    let events = pair.take_server_events();
    let sid = started(&events);
    assert_eq!(messages(&events, sid), vec![big.clone()]);
    pair.server.send_message(sid, big.clone(), false).unwrap();
    pair.server
        .send_trailers(sid, Status::ok(), Metadata::new())
        .unwrap();
    assert!(pair.drive());
    assert_eq!(messages(&pair.take_client_events(), id), vec![big]);
}
