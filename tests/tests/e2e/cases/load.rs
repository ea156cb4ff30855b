//! Many calls at once, large messages and message size limits.

use anygrpc::{CallOptions, Code, Config};
use futures_util::future::join_all;
use prost::Message;

use crate::e2e::Env;
use crate::e2e::service::{CHAT, COUNT, ECHO, HOLD, Ping, SUM};

const CALLS: u32 = 10_000;
const MIB: usize = 1 << 20;
/// The default receive limit of clients and servers.
const DEFAULT_LIMIT: usize = 4 * MIB;

pub async fn ten_thousand_concurrent_unary_calls(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    // Every call is started before any is awaited: all are in flight at once (the channel
    // queues those beyond the server's concurrent-stream limit).
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            echo.call(Ping {
                count: i,
                ..Ping::default()
            })
        })
        .collect();
    let replies = join_all(calls).await;
    assert_eq!(replies.len(), CALLS as usize);
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = reply.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(reply.count as usize, i);
    }
    // The channel is still fine afterwards.
    assert_eq!(echo.call(Ping::text("after")).await.unwrap().text, "after");
}

pub async fn large_messages_with_raised_limits(env: Env) {
    let limit = 16 * MIB;
    let config = Config::server().max_recv_message_size(limit);
    let srv = env.start_server_with(config, 0).await;
    let channel = env
        .channel_builder(srv.port)
        .max_receive_message_length(limit)
        .build()
        .unwrap();
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let payload: Vec<u8> = (0..8 * MIB).map(|i| (i % 251) as u8).collect();
    let request = Ping {
        payload,
        ..Ping::default()
    };
    let reply = echo.call(request.clone()).await.unwrap();
    assert_eq!(reply.payload.len(), 8 * MIB);
    assert!(reply == request, "the 8 MiB echo came back intact");
    // A large response to a small request.
    let reply = echo
        .call(Ping {
            reply_bytes: 8 * MIB as u64,
            ..Ping::default()
        })
        .await
        .unwrap();
    assert_eq!(reply.payload.len(), 8 * MIB);
    assert!(reply.payload.iter().all(|&b| b == 0xa5));
}

/// A payload length whose `Ping` encodes to exactly `size` bytes.
fn payload_len_for(size: usize) -> usize {
    let encoded = |len: usize| {
        Ping {
            payload: vec![0; len],
            ..Ping::default()
        }
        .encoded_len()
    };
    let mut len = size;
    while encoded(len) > size {
        len -= 1;
    }
    assert_eq!(encoded(len), size, "a payload fits exactly");
    len
}

pub async fn messages_over_the_default_limit(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    let at_limit = payload_len_for(DEFAULT_LIMIT);
    // Requests: the server's limit.
    let ok = Ping {
        payload: vec![1; at_limit],
        ..Ping::default()
    };
    assert_eq!(echo.call(ok).await.unwrap().payload.len(), at_limit);
    let over = Ping {
        payload: vec![1; at_limit + 1],
        ..Ping::default()
    };
    let err = echo.call(over).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // Responses: the client's limit.
    let ok = Ping {
        reply_bytes: at_limit as u64,
        ..Ping::default()
    };
    assert_eq!(echo.call(ok).await.unwrap().payload.len(), at_limit);
    let over = Ping {
        reply_bytes: at_limit as u64 + 1,
        ..Ping::default()
    };
    let err = echo.call(over).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // A send limit on the channel fails the call before anything is sent.
    let limited = env
        .channel_builder(srv.port)
        .max_send_message_length(MIB)
        .build()
        .unwrap();
    let call = limited.unary_unary::<Ping, Ping>(ECHO).call_with(
        Ping {
            payload: vec![0; MIB],
            ..Ping::default()
        },
        CallOptions::new(),
    );
    assert!(call.done(), "refused before anything was sent");
    assert_eq!(call.code().await, Code::ResourceExhausted);
    // The channel is still fine afterwards.
    assert_eq!(echo.call(Ping::text("after")).await.unwrap().text, "after");
}

/// One call alone on its connection with 4 KiB stream windows on both ends: every message goes
/// out from the sending task, and credit for consumed messages is returned lazily (a quarter of
/// the window at most may wait for the driver's next turn). Thousands of messages each way
/// must still flow: a stall would hang the case until its time limit.
pub async fn small_windows_keep_a_lone_stream_flowing(env: Env) {
    let window = 4 << 10;
    let srv = env
        .start_server_with(Config::server().initial_stream_window(window), 0)
        .await;
    let channel = env
        .channel_builder(srv.port)
        .config(Config::client().initial_stream_window(window))
        .build()
        .unwrap();
    // Server streaming: 3,000 messages of about 300 bytes, about 220 windows' worth.
    let count = channel.unary_stream::<Ping, Ping>(COUNT);
    let mut call = count.call(Ping {
        count: 3_000,
        text: "x".repeat(300),
        ..Ping::default()
    });
    let mut seen = 0;
    while let Some(reply) = call.read().await {
        assert_eq!(reply.unwrap().count, seen);
        seen += 1;
    }
    assert_eq!(seen, 3_000);
    assert_eq!(call.code().await, Code::Ok);
    // Client streaming the other way, then a ping-pong on the same kind of lone stream.
    let sum = channel.stream_unary::<Ping, Ping>(SUM);
    let mut call = sum.call();
    for _ in 0..3_000 {
        call.write(Ping::text("y".repeat(300))).await.unwrap();
    }
    call.done_writing().await.unwrap();
    let total = call.await.unwrap();
    assert_eq!((total.count, total.text.len()), (3_000, 900_000));
    let chat = channel.stream_stream::<Ping, Ping>(CHAT);
    let mut call = chat.call();
    for i in 0..500 {
        call.write(Ping::text("z".repeat(300))).await.unwrap();
        let pong = call.read().await.unwrap().unwrap();
        assert_eq!(pong.count, i);
    }
    call.done_writing().await.unwrap();
    assert!(call.read().await.is_none());
    assert_eq!(call.code().await, Code::Ok);
}

/// Messages a client streams at a server that reads none of them for a while: far more than
/// its smallest receive budget holds (each costs its bytes and 64 of bookkeeping).
const HELD_MESSAGES: u32 = 20_000;

/// The server's receive budget fills while its handler reads nothing: the connection stops
/// reading (and stops granting window), the client's writes wait, and once the handler reads,
/// the budget frees, reading resumes and every message arrives. Nothing deadlocks on the
/// pause, on any executor.
pub async fn a_full_receive_budget_pauses_reading_until_messages_are_consumed(env: Env) {
    let config = Config::server()
        .max_recv_message_size(64 << 10)
        // The least allowed: twice the message limit plus 64 KiB (192 KiB).
        .recv_budget(0);
    let srv = env.start_server_with(config, 0).await;
    let channel = env.channel(srv.port);
    let mut call = channel.stream_unary::<Ping, Ping>(HOLD).call();
    srv.probe.wait_for("hold:started").await;
    let writer = async {
        let call = &mut call;
        for i in 0..HELD_MESSAGES {
            call.write(Ping::text(if i % 2 == 0 { "a" } else { "b" }))
                .await
                .expect("write");
        }
        call.done_writing().await.expect("done_writing");
    };
    let releaser = async {
        // Long enough for the budget to fill and the writes to wait.
        env.sleep(std::time::Duration::from_millis(200)).await;
        srv.probe.record("hold:release");
    };
    futures_util::future::join(writer, releaser).await;
    let reply = call.await.expect("the held call completes");
    assert_eq!(reply.count, HELD_MESSAGES);
    assert_eq!(reply.text, "ab".repeat(HELD_MESSAGES as usize / 2));
}
