//! Message compression end to end: what a handler or the server's default chooses reaches the
//! client compressed (for every call kind), zstd both ways, levels, and decompression bounded by
//! the receive limit.

use std::sync::{Arc, Mutex};

use anygrpc::{
    CallEvent, CallInfo, CallOptions, CallStats, Code, Compression, CompressionLevel, Encoding,
    StatsHandler, StatsSide,
};
use futures_util::{StreamExt, stream};

use crate::e2e::Env;
use crate::e2e::service::{CHAT, COMPRESS, COUNT, ECHO, Ping, SUM};

/// The messages a channel's calls received, as they were on the wire: (bytes, compressed).
#[derive(Debug, Clone, Default)]
struct WireLog(Arc<Mutex<Vec<(usize, bool)>>>);

impl WireLog {
    fn take(&self) -> Vec<(usize, bool)> {
        std::mem::take(&mut *self.0.lock().expect("the log"))
    }
}

impl StatsHandler for WireLog {
    fn call_started(&self, call: &CallInfo<'_>) -> Option<Box<dyn CallStats>> {
        (call.side == StatsSide::Client).then(|| Box::new(self.clone()) as Box<dyn CallStats>)
    }
}

impl CallStats for WireLog {
    fn record(&mut self, event: &CallEvent<'_>) {
        if let CallEvent::MessageReceived {
            wire_size,
            compressed,
            ..
        } = event
        {
            self.0
                .lock()
                .expect("the log")
                .push((*wire_size, *compressed));
        }
    }
}

fn compress_request(encoding: &str, reply_bytes: u64) -> Ping {
    Ping {
        text: encoding.into(),
        reply_bytes,
        ..Ping::default()
    }
}

pub async fn a_unary_response_is_compressed_as_its_handler_sets(env: Env) {
    let srv = env.start_server().await;
    let log = WireLog::default();
    let channel = env
        .channel_builder(srv.port)
        .stats_handler(log.clone())
        .build()
        .expect("a channel");
    let method = channel.unary_unary::<Ping, Ping>(COMPRESS);
    for encoding in [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd] {
        let mut call = method.call(compress_request(encoding.as_str(), 20_000));
        let reply = (&mut call).await.expect("the reply");
        assert_eq!(reply.payload.len(), 20_000, "{encoding}");
        assert!(reply.payload.starts_with(b"compressible "));
        assert!(call.last_response_compressed(), "{encoding}");
        let wire = log.take();
        assert_eq!(wire.len(), 1, "{encoding}: {wire:?}");
        assert!(wire[0].1 && wire[0].0 < 2_000, "{encoding}: {wire:?}");
        assert!(!reply.via_context, "the request went plain");
    }
    // Identity (or no choice, with no server default): plain.
    for text in ["identity", ""] {
        let mut call = method.call(compress_request(text, 20_000));
        assert_eq!((&mut call).await.expect("the reply").payload.len(), 20_000);
        assert!(!call.last_response_compressed(), "{text:?}");
        let wire = log.take();
        assert!(!wire[0].1 && wire[0].0 > 20_000, "{text:?}: {wire:?}");
    }
    // A level changes the size, not the answer; requests compressed at a level arrive so.
    let mut sizes = Vec::new();
    for level in [1, 9] {
        let request = Ping {
            count: level,
            ..compress_request("gzip", 200_000)
        };
        let options = CallOptions::new()
            .compression(Compression::new(Encoding::Zstd).with_level(CompressionLevel::Best));
        let reply = method.call_with(request, options).await.expect("the reply");
        assert_eq!(reply.payload.len(), 200_000);
        assert!(reply.via_context, "the request arrived compressed");
        sizes.push(log.take()[0].0);
    }
    assert!(
        sizes[1] <= sizes[0],
        "gzip 9 {} <= gzip 1 {}",
        sizes[1],
        sizes[0]
    );
}

pub async fn a_servers_default_compression_covers_every_call_kind(env: Env) {
    let srv = env.start_server().await;
    srv.server.default_compression(
        Compression::new(Encoding::Zstd).with_level(CompressionLevel::Fastest),
    );
    let log = WireLog::default();
    let channel = env
        .channel_builder(srv.port)
        .stats_handler(log.clone())
        .build()
        .expect("a channel");
    let big = Ping {
        payload: vec![7; 10_000],
        ..Ping::default()
    };

    let mut unary = channel.unary_unary::<Ping, Ping>(ECHO).call(&big);
    assert_eq!((&mut unary).await.expect("echoed"), big);
    assert!(unary.last_response_compressed(), "unary");

    let mut count = channel.unary_stream::<Ping, Ping>(COUNT).call(Ping {
        count: 3,
        text: "x".repeat(1000),
        ..Ping::default()
    });
    let mut seen = 0;
    while let Some(reply) = count.read().await {
        assert_eq!(reply.expect("a response").count, seen);
        assert!(count.last_response_compressed(), "server streaming #{seen}");
        seen += 1;
    }
    assert_eq!(seen, 3);

    let mut sum = channel
        .stream_unary::<Ping, Ping>(SUM)
        .call_from(stream::iter(vec![Ping::text("a".repeat(500)); 2]));
    assert_eq!((&mut sum).await.expect("the sum").count, 2);
    assert!(sum.last_response_compressed(), "client streaming");

    let mut chat = channel.stream_stream::<Ping, Ping>(CHAT).call();
    chat.write(Ping::text("y".repeat(500))).await.expect("sent");
    let pong = chat.next().await.expect("a pong").expect("ok");
    assert_eq!(pong.text, format!("pong:{}", "y".repeat(500)));
    assert!(chat.last_response_compressed(), "bidi");
    chat.done_writing().await.expect("half-closed");
    assert!(chat.next().await.is_none());
    assert_eq!(chat.code().await, Code::Ok);

    let wire = log.take();
    assert!(wire.iter().all(|(_, compressed)| *compressed), "{wire:?}");
    assert_eq!(wire.len(), 6);

    // The handler's choice wins over the default: identity sends plain, gzip gzip.
    let method = channel.unary_unary::<Ping, Ping>(COMPRESS);
    let mut call = method.call(compress_request("identity", 5_000));
    (&mut call).await.expect("the reply");
    assert!(!call.last_response_compressed());
    let mut call = method.call(compress_request("gzip", 5_000));
    (&mut call).await.expect("the reply");
    assert!(call.last_response_compressed());
    let wire = log.take();
    assert!(!wire[0].1 && wire[0].0 > 5_000, "{wire:?}");
    assert!(wire[1].1 && wire[1].0 < 1_000, "{wire:?}");
}

pub async fn a_zstd_bomb_stops_at_the_receive_limit(env: Env) {
    let srv = env.start_server().await;
    let channel = env.channel(srv.port);
    // 6 MiB that zstd squeezes into a few hundred bytes: under every wire limit, over the
    // 4 MiB receive limit once inflated.
    let method = channel.unary_unary::<Ping, Ping>(COMPRESS);
    let err = method
        .call(compress_request("zstd", 6 << 20))
        .await
        .expect_err("over the client's limit");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // The other way: a request inflating past the server's limit.
    let bomb = Ping {
        payload: vec![0; 6 << 20],
        ..Ping::default()
    };
    let options = CallOptions::new().compression(Encoding::Zstd);
    let err = channel
        .unary_unary::<Ping, Ping>(ECHO)
        .call_with(&bomb, options)
        .await
        .expect_err("over the server's limit");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // Under the limit, the same calls go through.
    let reply = method
        .call(compress_request("zstd", 3 << 20))
        .await
        .expect("under the limit");
    assert_eq!(reply.payload.len(), 3 << 20);
}
