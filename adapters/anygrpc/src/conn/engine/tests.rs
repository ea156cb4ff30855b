//! Two engines wired together in memory, with no transport and no task: the commands calls
//! queue on the handles go in, the calls' slots show what came out.

use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

use anygrpc_core::{CallRequest, Code, Config, Connection, Metadata, Side, Status, Transmit};
use bytes::Bytes;

use super::{Dispatch, Engine, IncomingCall};
use crate::conn::handle::{Command, ConnHandle};
use crate::conn::policy::Urgency;
use crate::conn::slot::CallSlot;
use crate::runtime::BoxFuture;
use crate::testing::MemoryRuntime;

/// A dispatcher that keeps the calls it is given, for the test to answer.
#[derive(Default)]
struct Keep(Mutex<Vec<IncomingCall>>);

impl Dispatch for Arc<Keep> {
    fn dispatch(&self, call: IncomingCall) -> Option<BoxFuture<'static, ()>> {
        self.0.lock().expect("not poisoned").push(call);
        None
    }
}

/// A client engine and a server engine, and what stands between them.
struct Pair {
    rt: MemoryRuntime,
    client: Engine,
    client_handle: Arc<ConnHandle>,
    server: Engine,
    server_handle: Arc<ConnHandle>,
    received: Arc<Keep>,
}

impl Pair {
    fn new(server_config: Config) -> Self {
        let rt = MemoryRuntime::new();
        let now = rt.now();
        let engine = |side, config: Config, dispatch: Option<Arc<dyn Dispatch>>| {
            let conn = Connection::new(side, Arc::new(config), now);
            let handle = Arc::new(ConnHandle::new(conn.config().initial_stream_window));
            let peer: Arc<str> = Arc::from("memory");
            let engine = Engine::new(
                conn,
                handle.clone(),
                rt.handle(),
                dispatch,
                peer,
                Default::default(),
            );
            (engine, handle)
        };
        let received = Arc::new(Keep::default());
        let (client, client_handle) = engine(Side::Client, Config::client(), None);
        let (server, server_handle) = engine(
            Side::Server,
            server_config,
            Some(Arc::new(received.clone())),
        );
        let mut pair = Self {
            rt,
            client,
            client_handle,
            server,
            server_handle,
            received,
        };
        pair.run();
        pair
    }

    /// Applies both sides' commands, moves their bytes across and routes their events until
    /// nothing moves.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let now = self.rt.now();
            let mut progress = false;
            for engine in [&mut self.client, &mut self.server] {
                progress |= engine.apply_queued(Waker::noop(), || now);
                progress |= engine.route_events();
                if let Some(calls) = engine.take_new_calls() {
                    calls.serve();
                    progress = true;
                }
            }
            progress |= carry(&mut self.client, &mut self.server, now);
            progress |= carry(&mut self.server, &mut self.client, now);
            if !progress {
                return;
            }
        }
        panic!("the engines never settled");
    }

    /// The calls the server received since the last look.
    fn take_received(&self) -> Vec<IncomingCall> {
        std::mem::take(&mut *self.received.0.lock().expect("not poisoned"))
    }
}

/// Moves what `from` has to say into `to`; `true` if there was anything.
fn carry(from: &mut Engine, to: &mut Engine, now: Instant) -> bool {
    let mut out = Transmit::new();
    while from.connection().poll_transmit_chained(&mut out) > 0 {}
    if out.is_empty() {
        return false;
    }
    let bytes: Vec<u8> = out.chunks().flatten().copied().collect();
    to.connection().recv(&bytes, now);
    true
}

/// Queues `commands` on `handle` as `urgency`, and kicks (nothing to poll inline here).
fn enqueue(handle: &Arc<ConnHandle>, commands: Vec<Command>, urgency: Urgency) {
    handle
        .enqueue(commands, urgency)
        .expect("the engine runs")
        .run();
}

fn message(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

/// Starts a client call with one request message, half-closed.
fn unary(pair: &mut Pair, request: &'static str) -> Arc<CallSlot> {
    let slot = CallSlot::bound_to(&pair.client_handle);
    let commands = vec![
        Command::Start {
            slot: slot.clone(),
            request: CallRequest::new("/a.B/C", "memory").into(),
        },
        Command::Send {
            slot: slot.clone(),
            message: message(request),
            compressed: false,
        },
        Command::HalfClose { slot: slot.clone() },
    ];
    enqueue(&pair.client_handle, commands, Urgency::Open);
    pair.run();
    slot
}

/// The payloads in `slot`'s inbox, in order, handing their credit back.
fn drain_inbox(handle: &Arc<ConnHandle>, slot: &Arc<CallSlot>) -> Vec<Vec<u8>> {
    let messages: Vec<_> = slot.lock().inbox.drain().collect();
    let mut payloads = Vec::new();
    for message in messages {
        let n = message.credit();
        payloads.push(message.data.to_vec());
        let release = Command::Release {
            slot: slot.clone(),
            n,
        };
        enqueue(handle, vec![release], Urgency::Credit(n));
    }
    payloads
}

#[test]
fn a_unary_call_crosses_two_engines() {
    let mut pair = Pair::new(Config::server());
    let call = unary(&mut pair, "ping");
    let mut received = pair.take_received();
    assert_eq!(received.len(), 1, "one call dispatched");
    let incoming = received.remove(0);
    assert_eq!(&incoming.head.path[..], b"/a.B/C");
    assert!(incoming.slot.lock().recv_closed, "the client half-closed");
    assert_eq!(
        drain_inbox(&pair.server_handle, &incoming.slot),
        vec![b"ping".to_vec()]
    );
    assert_eq!(pair.server_handle.activity().0, 1, "one call on the server");
    let slot = incoming.slot;
    let answer = vec![
        Command::Headers {
            slot: slot.clone(),
            metadata: Metadata::new(),
            encoding: None,
        },
        Command::Send {
            slot: slot.clone(),
            message: message("pong"),
            compressed: false,
        },
        Command::Trailers {
            slot,
            status: Status::ok(),
            metadata: Metadata::new(),
        },
    ];
    enqueue(&pair.server_handle, answer, Urgency::Output);
    pair.run();
    let mut state = call.lock();
    let outcome = state.outcome.as_ref().expect("the call ended");
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert!(state.headers.is_some(), "the response head arrived");
    assert_eq!(state.inbox.len(), 1, "one response");
    let response = state.inbox.pop_front().expect("one response");
    assert_eq!(&response.data[..], b"pong");
    drop(state);
    assert_eq!(pair.client_handle.activity(), (0, 1), "ended, one started");
    assert_eq!(pair.server_handle.activity().0, 0, "ended on the server");
}

#[test]
fn output_refused_for_a_full_send_buffer_goes_out_in_order_before_the_trailers() {
    let mut config = Config::server();
    config.max_send_buffer = 64 << 10;
    let mut pair = Pair::new(config);
    let call = unary(&mut pair, "go");
    let incoming = pair.take_received().remove(0);
    let slot = incoming.slot;
    // 40 messages of 16 KiB: far more than the send buffer and the client's windows take.
    let mut answer = Vec::new();
    for i in 0..40u8 {
        answer.push(Command::Send {
            slot: slot.clone(),
            message: Bytes::from(vec![i; 16 << 10]),
            compressed: false,
        });
    }
    answer.push(Command::Trailers {
        slot: slot.clone(),
        status: Status::ok(),
        metadata: Metadata::new(),
    });
    enqueue(&pair.server_handle, answer, Urgency::Output);
    let now = pair.rt.now();
    assert!(pair.server.apply_queued(Waker::noop(), || now));
    assert!(
        pair.server
            .blocked
            .contains_key(&slot.lock().stream.expect("bound")),
        "output waits for room"
    );
    let mut got = Vec::new();
    for _ in 0..1000 {
        pair.run();
        got.extend(drain_inbox(&pair.client_handle, &call));
        if call.lock().outcome.is_some() {
            break;
        }
    }
    pair.run();
    got.extend(drain_inbox(&pair.client_handle, &call));
    let accepted = slot.lock().sends_accepted;
    assert_eq!(accepted, 40, "every message was accepted in the end");
    assert_eq!(got.len(), 40, "every message arrived");
    for (i, payload) in got.iter().enumerate() {
        assert_eq!(payload.len(), 16 << 10);
        assert!(
            payload.iter().all(|b| usize::from(*b) == i),
            "message {i} in order"
        );
    }
    let state = call.lock();
    let outcome = state.outcome.as_ref().expect("the call ended");
    // Trailers queued behind refused messages went after all of them: none was cut off.
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
}

#[test]
fn a_server_cancel_ends_both_sides_of_the_call() {
    let mut pair = Pair::new(Config::server());
    let call = unary(&mut pair, "ping");
    let incoming = pair.take_received().remove(0);
    enqueue(
        &pair.server_handle,
        vec![Command::Cancel {
            slot: incoming.slot.clone(),
        }],
        Urgency::Cancel,
    );
    pair.run();
    let server_outcome = incoming.slot.lock().outcome.clone().expect("ended");
    assert_eq!(server_outcome.status.code(), Code::Cancelled);
    let client_outcome = call.lock().outcome.clone().expect("ended");
    assert_eq!(client_outcome.status.code(), Code::Cancelled);
    assert_eq!(pair.server_handle.activity().0, 0);
}

#[test]
fn the_end_of_a_connection_ends_its_calls_and_refuses_more() {
    let mut pair = Pair::new(Config::server());
    let running = unary(&mut pair, "ping");
    // Queued, never applied: the engine ends before its next round.
    let queued = CallSlot::bound_to(&pair.client_handle);
    enqueue(
        &pair.client_handle,
        vec![Command::Start {
            slot: queued.clone(),
            request: CallRequest::new("/a.B/C", "memory").into(),
        }],
        Urgency::Open,
    );
    pair.client.transport_failed("reset by peer".into());
    pair.client.shut();
    let running = running.lock().outcome.clone().expect("ended");
    assert_eq!(running.status.code(), Code::Unavailable);
    assert!(
        running.status.message().contains("reset by peer"),
        "{:?}",
        running.status
    );
    assert!(!running.unprocessed, "the server saw it");
    let queued = queued.lock().outcome.clone().expect("ended");
    assert_eq!(queued.status.code(), Code::Unavailable);
    assert!(queued.unprocessed, "never sent: safe to retry");
    assert!(pair.client_handle.is_closed() && !pair.client_handle.is_usable());
    let refused = pair
        .client_handle
        .enqueue([Command::Shutdown], Urgency::Control);
    match refused {
        Err(commands) => assert!(matches!(commands[..], [Command::Shutdown]), "{commands:?}"),
        Ok(kick) => {
            kick.run();
            panic!("a closed handle took a command");
        }
    }
}

#[test]
fn an_abandoned_engine_ends_its_calls_internal() {
    let mut pair = Pair::new(Config::server());
    let call = unary(&mut pair, "ping");
    pair.client.abandon();
    let outcome = call.lock().outcome.clone().expect("ended");
    assert_eq!(
        outcome.status.code(),
        Code::Internal,
        "{:?}",
        outcome.status
    );
    assert!(pair.client_handle.is_closed(), "later commands are refused");
    pair.client.abandon();
    assert_eq!(
        call.lock().outcome.as_ref().map(|o| o.status.code()),
        Some(Code::Internal)
    );
}

#[test]
fn an_engine_dropped_before_its_connection_ended_ends_its_calls() {
    let mut pair = Pair::new(Config::server());
    let call = unary(&mut pair, "ping");
    let Pair {
        client,
        client_handle,
        ..
    } = pair;
    assert!(call.lock().outcome.is_none(), "running");
    // As when its task was dropped (the executor shut down).
    drop(client);
    let outcome = call.lock().outcome.clone().expect("ended");
    assert_eq!(
        outcome.status.code(),
        Code::Unavailable,
        "{:?}",
        outcome.status
    );
    assert!(client_handle.is_closed(), "later commands are refused");
}

#[test]
fn the_client_handle_learns_the_servers_stream_limit_and_claims_streams_under_it() {
    let mut pair = Pair::new(Config::server().max_concurrent_streams(2));
    assert_eq!(
        pair.client_handle.stream_limit(),
        2,
        "from the server's SETTINGS"
    );
    assert!(pair.client_handle.try_claim_stream(None));
    pair.client_handle.release_claim();
    // Two calls held open by the server: no room for a third.
    let calls: Vec<_> = (0..2).map(|_| unary(&mut pair, "held")).collect();
    pair.run();
    let waker = Arc::new(CountingWaker::default());
    let as_waker = Waker::from(waker.clone());
    assert!(!pair.client_handle.try_claim_stream(Some(&as_waker)));
    // One ends: the waiter is woken, and there is room again.
    let served = pair.received.0.lock().expect("not poisoned").remove(0);
    enqueue(
        &pair.server_handle,
        vec![Command::Trailers {
            slot: served.slot,
            status: Status::ok(),
            metadata: Metadata::new(),
        }],
        Urgency::Output,
    );
    pair.run();
    assert!(waker.woken() >= 1, "woken when a call ended");
    assert!(pair.client_handle.try_claim_stream(None), "room again");
    assert!(
        !pair.client_handle.try_claim_stream(None),
        "claimed: one stream free, one claim"
    );
    pair.client_handle.release_claim();
    assert!(pair.client_handle.try_claim_stream(None), "given back");
    drop(calls);
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl CountingWaker {
    fn woken(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_command_of_a_call_now_bound_elsewhere_is_dropped() {
    let mut pair = Pair::new(Config::server());
    let slot = CallSlot::bound_to(&pair.client_handle);
    let start = vec![
        Command::Start {
            slot: slot.clone(),
            request: CallRequest::new("/a.B/C", "memory").into(),
        },
        Command::Send {
            slot: slot.clone(),
            message: message("one"),
            compressed: false,
        },
    ];
    enqueue(&pair.client_handle, start, Urgency::Open);
    pair.run();
    // A retry took the call to another connection; a write its earlier attempt left queued
    // here must not reach this connection's stream.
    slot.lock().conn = Some(Arc::new(ConnHandle::new(65_535)));
    let stale = Command::Send {
        slot,
        message: message("stale"),
        compressed: false,
    };
    enqueue(&pair.client_handle, vec![stale], Urgency::Output);
    pair.run();
    let served = pair.take_received();
    assert_eq!(served.len(), 1);
    assert_eq!(
        drain_inbox(&pair.server_handle, &served[0].slot),
        [b"one".to_vec()],
        "only the write of the call bound here"
    );
}
