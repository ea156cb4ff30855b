//! The rich error model through anygrpc's own client and server: over the in-memory runtime
//! and over loopback on every executor, a handler's details come back whole to the client,
//! a `google.rpc.Status` that disagrees with the call's status is reported (the call's status
//! stays), and one that does not decode is a typed `DetailsError`.

mod common;

use anygrpc::testing::MemoryRuntime;
use anygrpc::{Channel, Code, RpcError, RuntimeRef};
use anygrpc_examples::runtimes;
use anygrpc_types::{DetailsError, RpcErrorExt, StatusExt};

/// Calls [`common::FAIL`] with `case` and returns the error it must end with.
async fn fail(channel: &Channel, case: &str) -> RpcError {
    channel
        .unary_unary::<String, String>(common::FAIL)
        .call(case.to_string())
        .await
        .expect_err("the handler always fails")
}

/// Every case against a server on `rt`, through a client on `rt`.
async fn every_case(rt: RuntimeRef, on: &str) {
    let (server, port) = common::serve(&rt).await;
    let channel = Channel::builder(format!("127.0.0.1:{port}"), rt.clone())
        .build()
        .expect("a valid target");

    let err = fail(&channel, "details").await;
    assert_eq!(err.code(), Code::AlreadyExists, "{on}: {err}");
    assert_eq!(err.details(), "name taken", "{on}");
    let details = err.error_details().expect("details that decode");
    assert_eq!(details, common::sample(), "{on}: every detail, in order");
    assert_eq!(
        details.other(),
        [common::unknown_any()],
        "{on}: unknown kept"
    );
    let rich = err
        .status()
        .rpc_status()
        .unwrap()
        .expect("a google.rpc.Status");
    assert_eq!(rich.code, Code::AlreadyExists.as_i32(), "{on}");
    assert_eq!(rich.details, common::sample().to_anys(), "{on}: as packed");
    assert_eq!(
        err.status().details(),
        common::failing().details(),
        "{on}: same bytes"
    );

    let err = fail(&channel, "disagree").await;
    assert_eq!(
        (err.code(), err.details()),
        (Code::Aborted, "outer says aborted"),
        "{on}: the call's status wins"
    );
    match err.error_details() {
        Err(DetailsError::Disagrees {
            call_code,
            inner_code,
            inner_message,
            details,
        }) => {
            assert_eq!(call_code, Code::Aborted, "{on}");
            assert_eq!(inner_code, Code::NotFound.as_i32(), "{on}");
            assert_eq!(inner_message, "inner says not found", "{on}");
            assert_eq!(*details, common::sample(), "{on}: details still there");
        }
        other => panic!("{on}: expected Disagrees, got {other:?}"),
    }

    let err = fail(&channel, "bad-proto").await;
    assert_eq!(
        (err.code(), err.details()),
        (Code::Unavailable, "down"),
        "{on}"
    );
    match err.error_details() {
        Err(e @ DetailsError::Decode { .. }) => {
            assert_eq!(e.code(), Code::Internal, "{on}");
            assert!(e.to_string().contains("google.rpc.Status"), "{on}: {e}");
        }
        other => panic!("{on}: expected Decode, got {other:?}"),
    }

    server.stop(None).await;
}

#[test]
fn details_cross_the_memory_runtime_whole() {
    let rt = MemoryRuntime::new();
    rt.block_on(every_case(rt.handle(), "memory"));
}

#[test]
fn details_cross_loopback_whole_on_every_executor() {
    for &name in runtimes::RUNTIMES {
        runtimes::run(name, |rt| every_case(rt, name)).expect("a known runtime");
    }
}
