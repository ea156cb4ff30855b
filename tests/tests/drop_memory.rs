//! A connection lost mid-call on the in-memory runtime (deterministic): the calls the server
//! saw end with UNAVAILABLE, and the calls still queued in the channel behind the server's
//! stream limit, which never left the client, are retried on the next connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anygrpc::testing::MemoryRuntime;
use anygrpc::{Channel, Code, Config, Server, ServerCall, Status};

/// A server allowing two streams at once per connection, whose one method records the request
/// (a protobuf string), holds it for a minute of the manual clock, then echoes it.
fn holding_server(rt: &MemoryRuntime, seen: Arc<Mutex<Vec<String>>>) -> (Server, u16) {
    let config = Config::server().max_concurrent_streams(2);
    let server = Server::with_config(rt.handle(), config);
    let runtime = rt.handle();
    server.add_generic_handler("/test.Hold/Unary", move |mut call: ServerCall| {
        let (runtime, seen) = (runtime.clone(), seen.clone());
        Box::pin(async move {
            let Some(Ok(request)) = call.recv().await else {
                return;
            };
            let text: String = prost::Message::decode(request.clone()).unwrap();
            seen.lock().unwrap().push(text);
            runtime
                .sleep_until(runtime.now() + Duration::from_secs(60))
                .await;
            let _ = call.send(request).await;
            call.finish(Status::ok(), Default::default());
        })
    });
    let port = rt
        .block_on(server.add_insecure_port("127.0.0.1:0"))
        .unwrap();
    server.start();
    (server, port)
}

#[test]
fn calls_queued_behind_the_stream_limit_are_retried_after_the_connection_is_lost() {
    let rt = MemoryRuntime::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (_server, port) = holding_server(&rt, seen.clone());
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    let hold = channel.unary_unary::<String, String>("/test.Hold/Unary");
    // Connected, with the server's limit known.
    assert_eq!(rt.block_on(hold.call("warm".to_string())).unwrap(), "warm");
    let sent: Vec<_> = ["s0", "s1"].map(|t| hold.call(t.to_string())).into();
    let queued: Vec<_> = ["q0", "q1"].map(|t| hold.call(t.to_string())).into();
    rt.run_until_stalled();
    assert_eq!(*seen.lock().unwrap(), ["warm", "s0", "s1"]);

    let conns = rt.connections();
    assert_eq!(conns.len(), 1);
    conns[0].break_pipe();
    rt.run_until_stalled();

    for call in sent {
        assert_eq!(rt.block_on(call.code()), Code::Unavailable);
    }
    for (call, text) in queued.into_iter().zip(["q0", "q1"]) {
        match rt.block_on(call) {
            Ok(reply) => assert_eq!(reply, text),
            Err(error) => panic!("{text} was never sent, yet failed instead of retried: {error}"),
        }
    }
    // Each call reached the server once: the ones it saw were not sent again.
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["q0", "q1", "s0", "s1", "warm"]);
    rt.shutdown();
}
