//! In-memory unary calls through a client and a server `Connection`.

mod support;

use anygrpc_core::{Code, Event, Metadata, Status};
use bytes::Bytes;
use support::{CHUNKS, Pair, finished, messages};

#[test]
fn unary_call_round_trip_at_every_split() {
    for chunk in CHUNKS {
        let mut pair = Pair::new(chunk);
        let id = pair.start("/echo.Echo/Unary");
        pair.client
            .send_message(id, Bytes::from_static(b"ping"), false)
            .unwrap();
        pair.client.finish_sending(id).unwrap();
        assert!(pair.drive());

        let server = pair.take_server_events();
        let Some(Event::CallStarted {
            stream,
            head,
            deadline,
        }) = server.first()
        else {
            panic!("expected CallStarted, got {server:?}");
        };
        assert_eq!(&head.path[..], b"/echo.Echo/Unary");
        assert_eq!(*deadline, None);
        let sid = *stream;
        assert_eq!(messages(&server, sid), vec![Bytes::from_static(b"ping")]);
        assert!(
            server
                .iter()
                .any(|e| matches!(e, Event::HalfClosed { stream } if *stream == sid))
        );

        let mut meta = Metadata::new();
        meta.insert("x-reply", "yes").unwrap();
        pair.server.send_headers(sid, meta, None).unwrap();
        pair.server
            .send_message(sid, Bytes::from_static(b"pong"), false)
            .unwrap();
        let mut trailers = Metadata::new();
        trailers
            .insert_bin("x-trace-bin", Bytes::from_static(&[0, 1, 2, 255]))
            .unwrap();
        pair.server
            .send_trailers(sid, Status::ok(), trailers)
            .unwrap();
        assert!(pair.drive());

        let client = pair.take_client_events();
        let Some(Event::Headers { metadata, .. }) = client.first() else {
            panic!("{client:?}")
        };
        assert_eq!(metadata.get("x-reply"), Some("yes"));
        assert_eq!(messages(&client, id), vec![Bytes::from_static(b"pong")]);
        let Some(Event::Finished {
            status,
            metadata,
            unprocessed,
            ..
        }) = finished(&client, id)
        else {
            panic!("no Finished in {client:?}")
        };
        assert_eq!(status.code(), Code::Ok, "{status}");
        assert!(!unprocessed);
        assert_eq!(
            metadata.get_bin("x-trace-bin").map(|b| &b[..]),
            Some(&[0, 1, 2, 255][..])
        );
        assert_eq!(pair.client.active_calls(), 0, "client forgot the call");
        assert_eq!(pair.server.active_calls(), 0, "server forgot the call");
    }
}
