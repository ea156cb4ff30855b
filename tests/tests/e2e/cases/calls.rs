//! The four call kinds, the Call object futures, metadata both ways.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anygrpc::{Code, Metadata};
use futures_util::stream;
use futures_util::{FutureExt, StreamExt};

use crate::e2e::Env;
use crate::e2e::service::{CHAT, COUNT, ECHO, GATE, METADATA, Ping, SUM};

pub async fn unary(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let request = Ping {
        text: "hello".into(),
        count: 7,
        payload: vec![0, 1, 2, 255],
        ..Ping::default()
    };
    // Borrowed or owned, the same request.
    assert_eq!(echo.call(&request).await.unwrap(), request);
    assert_eq!(echo.call(request.clone()).await.unwrap(), request);
    // An empty message is a valid request and response.
    assert_eq!(echo.call(Ping::default()).await.unwrap(), Ping::default());
    // A method the server does not know.
    let missing = channel.unary_unary::<Ping, Ping>("/e2e.Test/Nope");
    let err = missing.call(Ping::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let missing = channel.unary_unary::<Ping, Ping>("/e2e.Nope/Echo");
    assert_eq!(
        missing.call(Ping::default()).await.unwrap_err().code(),
        Code::Unimplemented
    );
}

pub async fn server_streaming(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let count = channel.unary_stream::<Ping, Ping>(COUNT);
    // As a Stream.
    let call = count.call(Ping {
        count: 5,
        text: "s".into(),
        ..Ping::default()
    });
    let got: Vec<u32> = call.map(|r| r.unwrap().count).collect().await;
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    // With read(), then the status.
    let mut call = count.call(Ping {
        count: 2,
        ..Ping::default()
    });
    assert_eq!(call.read().await.unwrap().unwrap().count, 0);
    assert_eq!(call.read().await.unwrap().unwrap().count, 1);
    assert!(call.read().await.is_none());
    assert!(call.read().await.is_none(), "stays ended");
    assert_eq!(call.code().await, Code::Ok);
    assert!(call.done());
}

pub async fn client_streaming_with_write(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sum = channel.stream_unary::<Ping, Ping>(SUM);
    let mut call = sum.call();
    for word in ["a", "b", "c"] {
        // Borrowed: the writer keeps its request (bidi cases write owned ones).
        call.write(&Ping::text(word)).await.unwrap();
    }
    call.done_writing().await.unwrap();
    call.done_writing()
        .await
        .expect("done_writing twice is harmless");
    let reply = call.await.unwrap();
    assert_eq!((reply.count, reply.text.as_str()), (3, "abc"));
    // No request at all.
    let mut call = sum.call();
    call.done_writing().await.unwrap();
    assert_eq!(call.await.unwrap().count, 0);
}

pub async fn client_streaming_from_stream(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let sum = channel.stream_unary::<Ping, Ping>(SUM);
    let words = stream::iter((0..100).map(|i| Ping::text(format!("{}", i % 10))));
    let reply = sum.call_from(words).await.unwrap();
    assert_eq!(reply.count, 100);
    assert_eq!(reply.text, "0123456789".repeat(10));
    let reply = sum.call_from(stream::empty()).await.unwrap();
    assert_eq!(reply.count, 0);
}

pub async fn bidi_ping_pong(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let chat = channel.stream_stream::<Ping, Ping>(CHAT);
    let mut call = chat.call();
    for i in 0..20 {
        call.write(Ping::text(format!("{i}"))).await.unwrap();
        let pong = call.read().await.unwrap().unwrap();
        assert_eq!((pong.text, pong.count), (format!("pong:{i}"), i));
    }
    call.done_writing().await.unwrap();
    assert!(call.read().await.is_none());
    assert_eq!(call.code().await, Code::Ok);
    assert_eq!(call.trailing_metadata().await.get("x-pongs"), Some("20"));
}

pub async fn bidi_from_stream(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let chat = channel.stream_stream::<Ping, Ping>(CHAT);
    let call = chat.call_from(stream::iter((0..10).map(|i| Ping::text(format!("{i}")))));
    let pongs: Vec<String> = call.map(|r| r.unwrap().text).collect().await;
    let expected: Vec<String> = (0..10).map(|i| format!("pong:{i}")).collect();
    assert_eq!(pongs, expected);
}

pub async fn call_futures_before_and_after_completion(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let gate = channel.unary_unary::<Ping, Ping>(GATE);
    let mut call = gate.call(Ping::text("through"));
    // The head arrives while the handler still holds the response back.
    let initial = call.initial_metadata().await;
    assert_eq!(initial.get("x-stage"), Some("head"));
    srv.probe.wait_for("gate:entered").await;
    assert!(!call.done(), "no response before the gate opens");
    assert!(!call.cancelled());
    // The end-of-call accessors wait for the end.
    assert!(call.code().now_or_never().is_none());
    assert!(call.details().now_or_never().is_none());
    assert!(call.trailing_metadata().now_or_never().is_none());
    assert!(call.status().now_or_never().is_none());
    let code_before_end = call.code();
    srv.probe.record("gate:open");
    assert_eq!(
        code_before_end.await,
        Code::Ok,
        "a pending accessor resolves at the end"
    );
    let reply = (&mut call).await.unwrap();
    assert_eq!(reply.text, "through");
    assert!(call.done());
    // After completion every accessor resolves at once, as often as asked, to the same value.
    for _ in 0..2 {
        assert_eq!(call.code().await, Code::Ok);
        assert_eq!(call.details().await, "gate passed");
        assert_eq!(call.status().await.message(), "gate passed");
        assert_eq!(call.trailing_metadata().await.get("x-stage"), Some("tail"));
        assert_eq!(call.initial_metadata().await, initial);
    }
    assert!(!call.cancel(), "a finished call cannot be cancelled");
    assert!(!call.cancelled());
    assert_eq!(call.time_remaining(), None, "no deadline was set");
}

pub async fn done_callbacks(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let gate = channel.unary_unary::<Ping, Ping>(GATE);
    let fired = Arc::new(AtomicUsize::new(0));
    let call = gate.call(Ping::text("cb"));
    let counter = fired.clone();
    call.add_done_callback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    srv.probe.wait_for("gate:entered").await;
    assert_eq!(fired.load(Ordering::SeqCst), 0, "not before the end");
    srv.probe.record("gate:open");
    assert_eq!(call.code().await, Code::Ok);
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    // Added after the end: runs at once.
    let counter = fired.clone();
    call.add_done_callback(move || {
        counter.fetch_add(10, Ordering::SeqCst);
    });
    assert_eq!(fired.load(Ordering::SeqCst), 11);
}

pub async fn metadata_both_ways(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let method = channel.unary_unary::<Ping, Ping>(METADATA);
    let binary: Vec<u8> = (0..=255).collect();
    let mut sent = Metadata::new();
    sent.append("x-ascii", "one").unwrap();
    sent.append("x-ascii", "two with spaces").unwrap();
    sent.append_bin("x-data-bin", binary.clone()).unwrap();
    sent.append_bin("x-data-bin", vec![0u8; 3]).unwrap();
    sent.append_bin("x-empty-bin", Vec::new()).unwrap();
    sent.append("x-Upper", "case").unwrap();
    let call = method.call_with(Ping::text("md"), anygrpc::CallOptions::new().metadata(sent));
    let initial = call.initial_metadata().await;
    let trailing = call.trailing_metadata().await;
    assert_eq!(call.code().await, Code::Ok);
    for (which, md) in [("initial", &initial), ("trailing", &trailing)] {
        let ascii: Vec<&str> = md.get_all("x-ascii").map(|v| v.as_str().unwrap()).collect();
        assert_eq!(ascii, ["one", "two with spaces"], "{which}");
        let bins: Vec<&[u8]> = md
            .get_all("x-data-bin")
            .map(|v| &v.as_bytes()[..])
            .collect();
        assert_eq!(bins, [&binary[..], &[0, 0, 0][..]], "{which}");
        assert_eq!(
            md.get_bin("x-empty-bin").map(|b| b.len()),
            Some(0),
            "{which}"
        );
        assert_eq!(
            md.get("x-upper"),
            Some("case"),
            "{which}: keys are lower-cased"
        );
    }
    assert_eq!(initial.get("x-initial"), Some("yes"));
    assert_eq!(initial.get("x-trailing"), None);
    assert_eq!(trailing.get("x-trailing"), Some("yes"));
    assert_eq!(trailing.get("x-initial"), None);
}
