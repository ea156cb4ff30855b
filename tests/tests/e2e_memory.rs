//! First end-to-end check: a real client and server over the in-memory runtime.

use std::time::Duration;

use anygrpc::testing::MemoryRuntime;
use anygrpc::{CallOptions, Channel, Code, Server, ServerCall, Status};
use bytes::Bytes;
use futures_util::StreamExt;

fn echo_server(rt: &MemoryRuntime) -> (Server, u16) {
    let server = Server::new(rt.handle());
    server.add_generic_handler("/test.Echo/Unary", |mut call: ServerCall| {
        Box::pin(async move {
            let request = call.recv().await.unwrap().unwrap();
            call.send(request).await.unwrap();
            call.finish(Status::ok(), Default::default());
        })
    });
    server.add_generic_handler("/test.Echo/Fail", |call: ServerCall| {
        Box::pin(async move {
            call.finish(
                Status::new(Code::NotFound, "nothing here"),
                Default::default(),
            )
        })
    });
    server.add_generic_handler("/test.Echo/Count", |mut call: ServerCall| {
        Box::pin(async move {
            let mut n = 0u32;
            while let Some(Ok(_)) = call.recv().await {
                n += 1;
            }
            for i in 0..n {
                call.send(Bytes::from(vec![0x08, i as u8])).await.unwrap();
            }
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
fn unary_and_errors_over_the_memory_runtime() {
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    let reply = rt.block_on(echo.call("hello".to_string())).unwrap();
    assert_eq!(reply, "hello");
    let call = echo.call_with(
        "again".into(),
        CallOptions::new().timeout(Duration::from_secs(3)),
    );
    assert!(call.time_remaining().unwrap() <= Duration::from_secs(3));
    let reply = rt.block_on(async {
        let code = call.code().await;
        assert_eq!(code, Code::Ok);
        call.await
    });
    assert_eq!(reply.unwrap(), "again");

    let fail = channel.unary_unary::<String, String>("/test.Echo/Fail");
    let err = rt.block_on(fail.call(String::new())).unwrap_err();
    assert_eq!(
        (err.code(), err.details()),
        (Code::NotFound, "nothing here")
    );
    let missing = channel.unary_unary::<String, String>("/test.Nope/X");
    assert_eq!(
        rt.block_on(missing.call(String::new())).unwrap_err().code(),
        Code::Unimplemented
    );
}

#[test]
fn streaming_both_ways_over_the_memory_runtime() {
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    let count = channel.stream_stream::<String, u32>("/test.Echo/Count");
    let mut call = count.call();
    let got: Vec<u32> = rt.block_on(async {
        for i in 0..5 {
            call.write(format!("m{i}")).await.unwrap();
        }
        call.done_writing().await.unwrap();
        let mut got = Vec::new();
        while let Some(item) = call.next().await {
            got.push(item.unwrap());
        }
        assert_eq!(call.code().await, Code::Ok);
        got
    });
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

#[test]
fn dropping_the_last_channel_closes_its_connection() {
    let rt = MemoryRuntime::new();
    let (_server, port) = echo_server(&rt);
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.handle())
        .build()
        .unwrap();
    let echo = channel.unary_unary::<String, String>("/test.Echo/Unary");
    assert_eq!(rt.block_on(echo.call("x".into())).unwrap(), "x");
    let pipes = rt.connections();
    assert_eq!(pipes.len(), 1);
    assert!(!pipes[0].is_closed());
    drop(echo);
    drop(channel);
    rt.run_until_stalled();
    assert!(
        pipes[0].is_closed(),
        "the connection closed after the channel was dropped"
    );
}
