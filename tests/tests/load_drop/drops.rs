//! A connection closed or reset mid-call (by [`Proxy`], between a real anygrpc client and
//! server): exactly the calls in flight on that connection end with UNAVAILABLE, whatever
//! their kind and however far they got; calls on another connection and calls that had
//! already completed keep their outcome; the channel reconnects for the next call.
//!
//! The channel retries transparently only calls the server never saw. The calls in flight here
//! are seen by their handler before the cut (the server's journal says so), so none may be
//! retried: each `start:` event appears exactly once. Calls still queued in the channel behind
//! the server's stream limit never left the client: those must be retried, and succeed on the
//! next connection.

use std::collections::BTreeSet;
use std::time::Duration;

use anygrpc::{
    BackoffConfig, CallOptions, Channel, Code, Config, LoadBalancing, RuntimeRef, UnaryCall,
    WriteError,
};
use futures_util::future::join;

use super::journal::Journal;
use super::proxy::{Cut, Proxy};
use super::service::{CHAT, COLLECT, DropServer, ECHO, FEED, HOLD, Note, STALL};

/// A channel to `target` that reconnects quickly, with a small stream window (a server stream
/// it does not read stays only a few KiB ahead) and a small send buffer (a client stream the
/// server does not read soon waits for credit).
fn channel(rt: &RuntimeRef, target: String, balancing: LoadBalancing) -> Channel {
    let config = Config::client()
        .initial_stream_window(4 << 10)
        .max_send_buffer(16 << 10);
    Channel::builder(target, rt.clone())
        .config(config)
        .backoff(BackoffConfig {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..BackoffConfig::default()
        })
        .load_balancing(balancing)
        .build()
        .expect("a valid target")
}

/// Checks that a completed unary call kept its OK outcome and its response.
async fn still_ok(call: UnaryCall<Note>, label: &str) {
    assert_eq!(
        call.code().await,
        Code::Ok,
        "{label}: completed before the cut"
    );
    assert_eq!(call.await.expect("still answered"), Note::new(label, 0));
}

/// Calls of all four kinds in flight on one connection, which is cut: every one ends with
/// UNAVAILABLE (a writer waiting for flow-control credit too), no message is lost or duplicated
/// before the failure, no call is retried, a call completed before keeps its OK, and a new call
/// reconnects.
async fn every_call_in_flight(rt: RuntimeRef, how: Cut) {
    let srv = DropServer::start(rt.clone()).await;
    let proxy = Proxy::start(srv.port, 1);
    let target = format!("127.0.0.1:{}", proxy.port(0));
    let channel = channel(&rt, target, LoadBalancing::PickFirst);
    let echo = channel.unary_unary::<Note, Note>(ECHO);
    let before = echo.call(Note::new("before", 0));
    assert_eq!(before.code().await, Code::Ok);

    let unary = channel
        .unary_unary::<Note, Note>(HOLD)
        .call(Note::new("unary", 0));
    let mut feed = channel
        .unary_stream::<Note, Note>(FEED)
        .call(Note::new("server-streaming", 0));
    let mut collect = channel.stream_unary::<Note, Note>(COLLECT).call();
    let mut chat = channel.stream_stream::<Note, Note>(CHAT).call();
    let mut stalled = channel.stream_unary::<Note, Note>(STALL).call();
    // Each call gets going: the server saw it, and messages flowed both ways.
    let mut fed = Vec::new();
    for _ in 0..10 {
        fed.push(feed.read().await.expect("a response").expect("ok").seq);
    }
    for seq in 0..5 {
        collect
            .write(Note::new("client-streaming", seq))
            .await
            .expect("write");
        chat.write(Note::new("bidi", seq)).await.expect("write");
        let echoed = chat.read().await.expect("a response").expect("ok");
        assert_eq!(echoed, Note::new("bidi", seq));
    }
    srv.journal.wait_for("got:client-streaming:4").await;
    srv.journal.wait_for("start:unary").await;
    stalled.write(Note::new("stalled", 0)).await.expect("write");
    srv.journal.wait_for("start:stalled").await;
    assert!(!unary.done() && !feed.done() && !collect.done() && !chat.done());

    // The stalled call writes big messages the server never reads: the first fills the
    // server's stream window and the channel's send buffer, the next waits for credit. The cut
    // comes once the first was accepted, and must end the waiting write too.
    let wrote = Journal::default();
    let writer = async {
        for seq in 1..100 {
            let big = Note {
                padding: vec![0x5a; 16 << 10],
                ..Note::new("stalled", seq)
            };
            match stalled.write(big).await {
                Ok(()) => wrote.record(format!("wrote:{seq}")),
                Err(WriteError::Rpc(error)) => return (seq, error.code()),
                Err(other) => panic!("stalled: {other:?}"),
            }
        }
        panic!("flow control never held the stalled writer back");
    };
    let cutter = async {
        wrote.wait_for("wrote:1").await;
        proxy.cut(0, how);
    };
    let ((failed_at, code), ()) = join(writer, cutter).await;
    assert_eq!(code, Code::Unavailable, "the waiting write");
    assert!(
        failed_at <= 3,
        "stalled: write {failed_at} was the first to fail"
    );

    let status = unary.status().await;
    assert_eq!(status.code(), Code::Unavailable, "unary: {status}");
    if how == Cut::Reset {
        // The harness really reset the connection (no FIN came first).
        assert!(status.message().contains("reset"), "{status}");
    }
    // The server stream: what was in flight may still arrive, in order, then the failure.
    loop {
        match feed.read().await {
            Some(Ok(note)) => fed.push(note.seq),
            Some(Err(error)) => {
                assert_eq!(error.code(), Code::Unavailable, "server-streaming: {error}");
                break;
            }
            None => break,
        }
    }
    assert!(feed.read().await.is_none(), "the stream stays ended");
    assert_eq!(feed.code().await, Code::Unavailable);
    let expected: Vec<u32> = (0..).take(fed.len()).collect();
    assert_eq!(
        fed, expected,
        "no response lost or duplicated before the failure"
    );
    // The client stream: its status, then writes fail with it.
    assert_eq!(collect.code().await, Code::Unavailable);
    match collect.write(Note::new("client-streaming", 5)).await {
        Err(WriteError::Rpc(error)) => assert_eq!(error.code(), Code::Unavailable),
        other => panic!("a write after the cut: {other:?}"),
    }
    assert_eq!(
        collect.await.map_err(|e| e.code()).err(),
        Some(Code::Unavailable)
    );
    // The bidi call: no stray message after the five echoes.
    assert_eq!(chat.code().await, Code::Unavailable);
    match chat.read().await {
        None => {}
        Some(Err(error)) => assert_eq!(error.code(), Code::Unavailable),
        Some(Ok(note)) => panic!("bidi: a message after the cut: {note:?}"),
    }

    // The server saw each call end, each once; none was sent again.
    assert_eq!(stalled.code().await, Code::Unavailable);
    let labels = [
        "unary",
        "server-streaming",
        "client-streaming",
        "bidi",
        "stalled",
    ];
    srv.journal
        .wait_until(|events| {
            labels
                .iter()
                .all(|label| events.contains(&format!("cancelled:{label}")))
        })
        .await;
    for label in labels {
        assert_eq!(srv.journal.count(&format!("start:{label}")), 1, "{label}");
    }
    for seq in 0..5 {
        for label in ["client-streaming", "bidi"] {
            let event = format!("got:{label}:{seq}");
            assert_eq!(srv.journal.count(&event), 1, "{event}");
        }
    }
    assert_eq!(srv.journal.count("got:client-streaming:5"), 0);

    still_ok(before, "before").await;
    // The next call reconnects, through a second proxied connection.
    let after = echo.call(Note::new("after", 0)).await.expect("a new call");
    assert_eq!(after, Note::new("after", 0));
    assert_eq!(proxy.connections(), 2);
    channel.close(None).await;
    srv.server.stop(None).await;
}

/// The proxied connection (index) and listener that carried the call `label`.
fn link_of(srv: &DropServer, proxy: &Proxy, label: &str) -> (usize, usize) {
    let prefix = format!("start:{label}@");
    let events = srv.journal.events();
    let peer = events
        .iter()
        .find_map(|e| e.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{label} never started: {events:?}"));
    proxy
        .link_of(peer)
        .unwrap_or_else(|| panic!("{label} came from {peer}, not through the proxy"))
}

/// round_robin over two proxied connections, calls in flight on both; one is cut: exactly its
/// calls end with UNAVAILABLE, the others complete OK afterwards.
async fn one_of_two_connections(rt: RuntimeRef, how: Cut) {
    let srv = DropServer::start(rt.clone()).await;
    let proxy = Proxy::start(srv.port, 2);
    let target = format!(
        "ipv4:///127.0.0.1:{},127.0.0.1:{}",
        proxy.port(0),
        proxy.port(1)
    );
    let channel = channel(&rt, target, LoadBalancing::RoundRobin);
    let echo = channel.unary_unary::<Note, Note>(ECHO);
    // Until both subchannels are up, round_robin uses the one it has: call until both carried
    // a call. Those calls completed before the cut and must stay OK.
    let mut completed = Vec::new();
    let mut listeners = BTreeSet::new();
    for i in 0..200 {
        let label = format!("warm-{i}");
        let call = echo.call_with(
            Note::new(&label, 0),
            CallOptions::new().wait_for_ready(true),
        );
        assert_eq!(call.code().await, Code::Ok);
        listeners.insert(link_of(&srv, &proxy, &label).1);
        completed.push((label, call));
        if listeners.len() == 2 {
            break;
        }
    }
    assert_eq!(listeners.len(), 2, "both subchannels connected");

    let hold = channel.unary_unary::<Note, Note>(HOLD);
    let holds: Vec<_> = (0..8)
        .map(|i| {
            let label = format!("hold-{i}");
            (label.clone(), hold.call(Note::new(&label, 0)))
        })
        .collect();
    let chat = channel.stream_stream::<Note, Note>(CHAT);
    let mut chats = Vec::new();
    for i in 0..4 {
        let label = format!("chat-{i}");
        let mut call = chat.call();
        call.write(Note::new(&label, 0)).await.expect("write");
        let echoed = call.read().await.expect("a response").expect("ok");
        assert_eq!(echoed, Note::new(&label, 0));
        chats.push((label, call));
    }
    for (label, _) in &holds {
        srv.journal.wait_for(&format!("start:{label}")).await;
    }
    let (cut, _) = link_of(&srv, &proxy, "hold-0");
    let on_cut = |label: &str| link_of(&srv, &proxy, label).0 == cut;
    let (doomed, spared): (Vec<_>, Vec<_>) = holds.into_iter().partition(|(l, _)| on_cut(l));
    let (doomed_chats, spared_chats): (Vec<_>, Vec<_>) =
        chats.into_iter().partition(|(l, _)| on_cut(l));
    assert!(!spared.is_empty(), "round_robin spread the calls over both");

    proxy.cut(cut, how);

    for (label, call) in &doomed {
        let status = call.status().await;
        assert_eq!(status.code(), Code::Unavailable, "{label}: {status}");
    }
    for (label, call) in &doomed_chats {
        assert_eq!(call.code().await, Code::Unavailable, "{label}");
    }
    let doomed_labels: Vec<&str> = doomed
        .iter()
        .map(|(l, _)| l.as_str())
        .chain(doomed_chats.iter().map(|(l, _)| l.as_str()))
        .collect();
    srv.journal
        .wait_until(|events| {
            doomed_labels
                .iter()
                .all(|label| events.contains(&format!("cancelled:{label}")))
        })
        .await;
    // The calls on the other connection did not notice.
    for (label, call) in &spared {
        assert!(!call.done(), "{label} is still running");
    }
    for (label, call) in &spared_chats {
        assert!(!call.done(), "{label} is still running");
    }
    srv.journal.record("release");
    for (label, call) in spared {
        assert_eq!(call.await.expect("answered"), Note::new(&label, 0));
    }
    for (label, mut call) in spared_chats {
        call.write(Note::new(&label, 1)).await.expect("write");
        let echoed = call.read().await.expect("a response").expect("ok");
        assert_eq!(echoed, Note::new(&label, 1));
        call.done_writing().await.expect("half-close");
        assert!(call.read().await.is_none());
        assert_eq!(call.code().await, Code::Ok, "{label}");
    }
    for label in doomed_labels {
        assert_eq!(srv.journal.count(&format!("start:{label}")), 1, "{label}");
        assert_eq!(srv.journal.count(&format!("done:{label}")), 0, "{label}");
    }
    for (label, call) in completed {
        still_ok(call, &label).await;
    }
    // New calls go through, and the cut subchannel comes back: sooner or later (the case's
    // time limit says how late is too late) one arrives on a third proxied connection.
    for i in 0.. {
        let label = format!("after-{i}");
        let call = echo.call(Note::new(&label, 0));
        assert_eq!(call.await.expect("a new call"), Note::new(&label, 0));
        if link_of(&srv, &proxy, &label).0 == 2 {
            break;
        }
    }
    channel.close(None).await;
    srv.server.stop(None).await;
}

/// Four unary calls in flight on a connection whose server allows four streams at once, and
/// four more queued in the channel behind that limit: the cut fails the four the server saw;
/// the four it never saw are sent again on the next connection and succeed.
async fn calls_queued_over_the_stream_limit(rt: RuntimeRef, how: Cut) {
    let srv = DropServer::start_with(rt.clone(), 4).await;
    let proxy = Proxy::start(srv.port, 1);
    let target = format!("127.0.0.1:{}", proxy.port(0));
    let channel = channel(&rt, target, LoadBalancing::PickFirst);
    let echo = channel.unary_unary::<Note, Note>(ECHO);
    // Connected, the server's SETTINGS (and its limit) known.
    let before = echo.call(Note::new("before", 0));
    assert_eq!(before.code().await, Code::Ok);
    let hold = channel.unary_unary::<Note, Note>(HOLD);
    let call = |label: &str| (label.to_string(), hold.call(Note::new(label, 0)));
    let sent: Vec<_> = (0..4).map(|i| call(&format!("sent-{i}"))).collect();
    for (label, _) in &sent {
        srv.journal.wait_for(&format!("start:{label}")).await;
    }
    let queued: Vec<_> = (0..4).map(|i| call(&format!("queued-{i}"))).collect();

    proxy.cut(0, how);

    for (label, call) in &sent {
        let status = call.status().await;
        assert_eq!(status.code(), Code::Unavailable, "{label}: {status}");
    }
    for (label, _) in &queued {
        srv.journal.wait_for(&format!("start:{label}")).await;
        let (link, _) = link_of(&srv, &proxy, label);
        assert_eq!(link, 1, "{label} went out on the second connection");
    }
    // The server learns of the cut in its own time (the proxy's threads pass the reset on):
    // its handlers of the calls it saw are cancelled before anything releases them.
    for (label, _) in &sent {
        srv.journal.wait_for(&format!("cancelled:{label}")).await;
    }
    srv.journal.record("release");
    for (label, call) in queued {
        assert_eq!(call.await.expect("answered"), Note::new(&label, 0));
        assert_eq!(srv.journal.count(&format!("start:{label}")), 1, "{label}");
    }
    for (label, _) in &sent {
        assert_eq!(srv.journal.count(&format!("start:{label}")), 1, "{label}");
        assert_eq!(srv.journal.count(&format!("done:{label}")), 0, "{label}");
    }
    still_ok(before, "before").await;
    channel.close(None).await;
    srv.server.stop(None).await;
}

/// [`every_call_in_flight`], the connection closed (FIN).
pub async fn close_mid_call_fails_every_call_in_flight(rt: RuntimeRef) {
    every_call_in_flight(rt, Cut::Close).await;
}

/// [`every_call_in_flight`], the connection reset (RST).
pub async fn reset_mid_call_fails_every_call_in_flight(rt: RuntimeRef) {
    every_call_in_flight(rt, Cut::Reset).await;
}

/// [`one_of_two_connections`], one closed (FIN).
pub async fn close_one_of_two_connections_fails_only_its_calls(rt: RuntimeRef) {
    one_of_two_connections(rt, Cut::Close).await;
}

/// [`one_of_two_connections`], one reset (RST).
pub async fn reset_one_of_two_connections_fails_only_its_calls(rt: RuntimeRef) {
    one_of_two_connections(rt, Cut::Reset).await;
}

/// [`calls_queued_over_the_stream_limit`], the connection closed (FIN).
pub async fn close_retries_only_calls_the_server_never_saw(rt: RuntimeRef) {
    calls_queued_over_the_stream_limit(rt, Cut::Close).await;
}

/// [`calls_queued_over_the_stream_limit`], the connection reset (RST).
pub async fn reset_retries_only_calls_the_server_never_saw(rt: RuntimeRef) {
    calls_queued_over_the_stream_limit(rt, Cut::Reset).await;
}
