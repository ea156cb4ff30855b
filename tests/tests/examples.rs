//! The examples, run as tests: the generated Greeter and RouteGuide on every runtime, and the
//! hand-written `polling` event loop answering both the async client and the blocking one.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anygrpc_examples::pb::routeguide::RouteSummary;
use anygrpc_examples::{blocking, event_loop, hello, route, runtimes};

#[test]
fn greeter_on_every_runtime() {
    for &name in runtimes::RUNTIMES {
        let greeting = runtimes::run(name, |rt| async move {
            let (server, port) = hello::serve(rt.clone(), 0).await.unwrap();
            let ok = hello::greet(rt.clone(), &format!("127.0.0.1:{port}"), "tester").await;
            let refused = hello::greet(rt, &format!("127.0.0.1:{port}"), "").await;
            server.stop(None).await;
            assert_eq!(
                refused.unwrap_err().code(),
                anygrpc::Code::InvalidArgument,
                "{name}"
            );
            ok.unwrap()
        })
        .unwrap();
        assert_eq!(greeting, "Hello, tester!", "{name}");
    }
}

#[test]
fn route_guide_four_call_kinds_on_every_runtime() {
    for &name in runtimes::RUNTIMES {
        let tour = runtimes::run(name, |rt| async move {
            let (server, port) = route::serve(rt.clone(), 0).await.unwrap();
            let tour = route::tour(rt, &format!("127.0.0.1:{port}")).await;
            server.stop(None).await;
            tour.unwrap()
        })
        .unwrap();
        let features = route::features();
        let points: Vec<_> = features.iter().filter_map(|f| f.location).collect();
        let distance: i32 = points
            .windows(2)
            .map(|w| route::distance(&w[0], &w[1]))
            .sum();
        assert_eq!(tour.feature, "Ridge", "{name}");
        assert_eq!(tour.listed, vec!["Ridge", "Harbour", "Mill"], "{name}");
        assert_eq!(
            tour.summary,
            RouteSummary {
                point_count: 4,
                feature_count: 3,
                distance,
                elapsed_time: 0
            }
        );
        assert_eq!(tour.chat, vec!["first", "first", "second"], "{name}");
    }
}

#[test]
fn event_loop_server_answers_async_and_blocking_clients() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let server = std::thread::spawn({
        let stop = stop.clone();
        move || event_loop::serve(listener, stop)
    });
    let target = format!("127.0.0.1:{port}");
    let greeting = runtimes::run("smol", |rt| {
        let target = target.clone();
        async move { hello::greet(rt, &target, "loop").await }
    })
    .unwrap();
    assert_eq!(greeting.unwrap(), "Hello, loop!");

    let request = bytes::Bytes::from(prost::Message::encode_to_vec(
        &anygrpc_examples::pb::helloworld::HelloRequest {
            name: "blocking".into(),
        },
    ));
    let reply = blocking::unary_call(
        &target,
        "/helloworld.Greeter/SayHello",
        request.clone(),
        Some(Duration::from_secs(5)),
    )
    .unwrap();
    let reply: anygrpc_examples::pb::helloworld::HelloReply =
        prost::Message::decode(reply.message).unwrap();
    assert_eq!(reply.message, "Hello, blocking!");
    let missing = blocking::unary_call(
        &target,
        "/helloworld.Greeter/Nope",
        request,
        Some(Duration::from_secs(5)),
    );
    assert_eq!(
        missing.unwrap_err().status.code(),
        anygrpc_core::Code::Unimplemented
    );

    stop.store(true, Ordering::Relaxed);
    server.join().unwrap().unwrap();
}
