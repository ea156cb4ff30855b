//! Codecs other than prost: raw bytes through a generic proxy (every call kind, metadata and
//! status forwarded), a JSON codec on both sides, and how generic handlers are routed.

use anygrpc::{
    BoxFuture, CallOptions, Channel, Code, Codec, Metadata, RawCodec, Server, ServerCall, Status,
};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{StreamExt, future, stream};
use prost::Message as _;

use crate::e2e::Env;
use crate::e2e::service::{CHAT, COUNT, ECHO, METADATA, Ping, STATUS, SUM};

/// The `x-` entries of `metadata` (what a proxy passes on; the rest is the transport's).
fn custom(metadata: &Metadata) -> Metadata {
    let mut kept = Metadata::new();
    for (key, value) in metadata.iter() {
        if key.as_str().starts_with("x-") {
            kept.append_value(key.clone(), value.clone())
                .expect("same kind");
        }
    }
    kept
}

/// Forwards a call of any kind to `backend` as raw bytes, over one bidi call: requests as
/// they come, the response head, the responses, then the status and trailers.
async fn forward(call: ServerCall, backend: Channel) {
    let path = call.path().to_string();
    let mut options = CallOptions::new().metadata(custom(call.invocation_metadata()));
    if let Some(left) = call.time_remaining() {
        options = options.timeout(left);
    }
    let (mut context, requests, mut responses) = call.into_parts_with::<Bytes, Bytes, _>(RawCodec);
    let requests = requests
        .take_while(|r| future::ready(r.is_ok()))
        .filter_map(|r| future::ready(r.ok()));
    let mut upstream = backend
        .stream_stream::<Bytes, Bytes>(path)
        .with_codec(RawCodec)
        .call_from_with(requests, options);
    context.send_initial_metadata(custom(&upstream.initial_metadata().await));
    while let Some(Ok(response)) = upstream.next().await {
        if responses.send(response).await.is_err() {
            upstream.cancel();
            break;
        }
    }
    let status = upstream.status().await;
    context.set_trailing_metadata(custom(&upstream.trailing_metadata().await));
    context.finish(if status.code() == Code::Ok {
        Ok(())
    } else {
        Err(status)
    });
}

/// A proxy server in front of `backend`: every `/e2e.Test/` call forwarded, but `/e2e.Test/Panic`
/// answered by an exact handler, and anything else by a catch-all naming the path.
async fn start_proxy(env: &Env, backend: Channel) -> (Server, u16) {
    let proxy = Server::new(env.runtime.clone());
    proxy.add_generic_handler("/e2e.Test/", move |call| -> BoxFuture<'static, ()> {
        Box::pin(forward(call, backend.clone()))
    });
    proxy.add_generic_handler(
        "/e2e.Test/Panic",
        |call: ServerCall| -> BoxFuture<'static, ()> {
            Box::pin(
                async move { call.finish(Status::new(Code::Aborted, "exact"), Metadata::new()) },
            )
        },
    );
    proxy.add_generic_handler("/", |call: ServerCall| -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let status = Status::new(Code::NotFound, format!("catch-all {}", call.path()));
            call.finish(status, Metadata::new());
        })
    });
    let port = proxy.add_insecure_port("127.0.0.1:0").await.expect("bound");
    proxy.start();
    (proxy, port)
}

pub async fn a_raw_bytes_proxy_forwards_every_call_kind(env: Env) {
    let backend = env.start_server().await;
    let (proxy, port) = start_proxy(&env, env.channel(backend.port)).await;
    let channel = env.channel(port);

    // Unary, through typed prost stubs on the client.
    let request = Ping {
        text: "through".into(),
        payload: vec![1, 2, 3],
        ..Ping::default()
    };
    let echo = channel.unary_unary::<Ping, Ping>(ECHO);
    assert_eq!(echo.call(&request).await.expect("echoed"), request);
    // Raw bytes on the client too: the proxy passes them on untouched.
    let raw = channel
        .unary_unary::<Bytes, Bytes>(ECHO)
        .with_codec(RawCodec);
    let encoded = Bytes::from(request.encode_to_vec());
    assert_eq!(raw.call(encoded.clone()).await.expect("echoed"), encoded);

    // Server streaming.
    let counted: Vec<u32> = channel
        .unary_stream::<Ping, Ping>(COUNT)
        .call(Ping {
            count: 4,
            ..Ping::default()
        })
        .map(|r| r.expect("a response").count)
        .collect()
        .await;
    assert_eq!(counted, [0, 1, 2, 3]);

    // Client streaming.
    let requests = stream::iter(["a", "b", "c"].map(Ping::text));
    let sum = channel
        .stream_unary::<Ping, Ping>(SUM)
        .call_from(requests)
        .await;
    let sum = sum.expect("the sum");
    assert_eq!((sum.count, sum.text.as_str()), (3, "abc"));

    // Bidi, one message at a time (so each answer crossed the proxy before the next request).
    let mut chat = channel.stream_stream::<Ping, Ping>(CHAT).call();
    for word in ["one", "two"] {
        chat.write(Ping::text(word)).await.expect("sent");
        let pong = chat.read().await.expect("a pong").expect("ok");
        assert_eq!(pong.text, format!("pong:{word}"));
    }
    chat.done_writing().await.expect("half-closed");
    assert!(chat.read().await.is_none());
    let trailers = chat.trailing_metadata().await;
    assert_eq!(trailers.get("x-pongs").map(Some), Some(Some("2")));

    // Metadata both ways, and a failure's status, as the backend sent them.
    let mut sent = Metadata::new();
    sent.insert("x-trace", "abc").expect("ascii");
    let call = channel
        .unary_unary::<Ping, Ping>(METADATA)
        .call_with(Ping::default(), CallOptions::new().metadata(sent));
    let initial = call.initial_metadata().await;
    assert_eq!(initial.get("x-trace"), Some("abc"));
    assert_eq!(initial.get("x-initial"), Some("yes"));
    let trailing = call.trailing_metadata().await;
    assert_eq!(trailing.get("x-trailing"), Some("yes"));
    call.await.expect("answered");
    let failed = echo_status(&channel, Code::FailedPrecondition, "from the backend").await;
    assert_eq!(failed.code(), Code::FailedPrecondition);
    assert_eq!(failed.details(), "from the backend");

    // Routing: the exact path beats the service prefix; other services reach the catch-all.
    let exact = channel
        .unary_unary::<Ping, Ping>("/e2e.Test/Panic")
        .call(Ping::default())
        .await;
    assert_eq!(
        exact.expect_err("answered by the exact handler").details(),
        "exact"
    );
    let other = channel
        .unary_unary::<Ping, Ping>("/other.Svc/M")
        .call(Ping::default())
        .await;
    let other = other.expect_err("the catch-all");
    assert_eq!(
        (other.code(), other.details()),
        (Code::NotFound, "catch-all /other.Svc/M")
    );
    proxy.stop(None).await;
    backend.server.stop(None).await;
}

async fn echo_status(channel: &Channel, code: Code, details: &str) -> anygrpc::RpcError {
    let request = Ping {
        count: code as u32,
        text: details.into(),
        ..Ping::default()
    };
    channel
        .unary_unary::<Ping, Ping>(STATUS)
        .call(request)
        .await
        .expect_err("the status asked for")
}

/// JSON messages as `serde_json::Value`s.
#[derive(Debug, Clone, Copy, Default)]
struct Json;

impl Codec<serde_json::Value> for Json {
    fn encode(&self, item: &serde_json::Value, dst: &mut BytesMut) -> Result<(), Status> {
        serde_json::to_writer(dst.writer(), item).map_err(|e| Status::internal(e.to_string()))
    }
    fn decode(&self, src: Bytes) -> Result<serde_json::Value, Status> {
        serde_json::from_slice(&src).map_err(|e| Status::internal(format!("not JSON: {e}")))
    }
}

pub async fn a_json_codec_works_on_both_sides(env: Env) {
    use serde_json::{Value, json};
    let server = Server::new(env.runtime.clone());
    // A bidi JSON handler: each request answered with its "n" doubled.
    server.add_generic_handler(
        "/json.Doubler/",
        |call: ServerCall| -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let (context, mut requests, mut responses) =
                    call.into_parts_with::<Value, Value, _>(Json);
                let mut result = Ok(());
                while let Some(request) = requests.read().await {
                    result = match request {
                        Ok(value) => {
                            let n = value["n"].as_i64().unwrap_or(0);
                            responses.send(json!({ "doubled": n * 2 })).await
                        }
                        Err(status) => Err(status),
                    };
                    if result.is_err() {
                        break;
                    }
                }
                context.finish(result);
            })
        },
    );
    let port = server
        .add_insecure_port("127.0.0.1:0")
        .await
        .expect("bound");
    server.start();
    let channel = env.channel(port);
    let unary = channel
        .unary_unary::<Value, Value>("/json.Doubler/Once")
        .with_codec(Json);
    assert_eq!(
        unary.call(json!({"n": 21})).await.expect("doubled"),
        json!({"doubled": 42})
    );
    let doubled: Vec<Value> = channel
        .stream_stream::<Value, Value>("/json.Doubler/Many")
        .with_codec(Json)
        .call_from(stream::iter((1..=3).map(|n| json!({ "n": n }))))
        .map(|r| r.expect("doubled"))
        .collect()
        .await;
    assert_eq!(
        doubled,
        [
            json!({"doubled": 2}),
            json!({"doubled": 4}),
            json!({"doubled": 6})
        ]
    );
    // Bytes that are not JSON fail the call INTERNAL on the side that decodes them.
    let raw = channel
        .unary_unary::<Bytes, Bytes>("/json.Doubler/Once")
        .with_codec(RawCodec);
    let err = raw
        .call(Bytes::from_static(b"{oops"))
        .await
        .expect_err("not JSON");
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert!(err.details().starts_with("not JSON"), "{err:?}");
    server.stop(None).await;
}
