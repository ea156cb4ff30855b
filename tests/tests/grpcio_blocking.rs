//! The blocking std::net client (anygrpc-core driven by hand) against a real Python `grpcio`
//! Greeter server (tests/peers/python/greeter_server.py).
//!
//! One server process per test, on an ephemeral port, killed when its guard drops.

use std::time::{Duration, Instant};

use anygrpc_core::{CallRequest, Code};
use anygrpc_examples::blocking::unary_call_with;
use anygrpc_examples::greeter::say_hello;
use anygrpc_examples::helloworld::{HelloReply, HelloRequest, SAY_HELLO};
use anygrpc_tests::start_python_greeter;
use bytes::Bytes;
use prost::Message;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

#[test]
fn say_hello_succeeds() {
    let server = start_python_greeter();
    let (hello, reply) = say_hello(&server.target(), "anygrpc", TIMEOUT).expect("call succeeds");
    assert_eq!(hello.message, "Hello, anygrpc!");
    // The Python server adds no custom metadata unless asked to.
    assert!(reply.initial_metadata.is_empty(), "{reply:?}");
    assert!(reply.trailing_metadata.is_empty(), "{reply:?}");

    // Several calls in a row, each on its own connection, with non-ASCII and empty names.
    for name in ["Zoë ✓", "", "x"] {
        let (hello, _) = say_hello(&server.target(), name, TIMEOUT).expect("call succeeds");
        assert_eq!(hello.message, format!("Hello, {name}!"));
    }
}

#[test]
fn abort_gives_status_details_and_trailers() {
    let server = start_python_greeter();
    let err = say_hello(&server.target(), "error", TIMEOUT).expect_err("server aborts");
    assert_eq!(err.status.code(), Code::InvalidArgument, "{err}");
    // grpcio percent-encodes grpc-message; the core decodes it back to the same UTF-8.
    assert_eq!(
        err.status.message(),
        "name 'error' is not allowed: 100% refusé ✗"
    );
    assert_eq!(
        err.trailing_metadata.get("x-error-reason"),
        Some("forbidden-name")
    );
}

#[test]
fn custom_metadata_both_ways() {
    let server = start_python_greeter();
    let target = server.target();
    let mut call = CallRequest::new(SAY_HELLO, target.as_str());
    call.timeout = TIMEOUT;
    call.metadata.insert("x-request-id", "req-42").unwrap();
    let request = HelloRequest {
        name: "metadata".into(),
    };
    let reply = unary_call_with(&target, call, Bytes::from(request.encode_to_vec()))
        .expect("call succeeds");
    let hello = HelloReply::decode(reply.message).unwrap();
    assert_eq!(hello.message, "Hello, metadata!");
    assert_eq!(
        reply.initial_metadata.get("x-greeter"),
        Some("python-grpcio")
    );
    assert_eq!(
        reply.trailing_metadata.get("x-echo-request-id"),
        Some("req-42"),
        "the server saw our request metadata"
    );
    assert_eq!(
        reply
            .trailing_metadata
            .get_bin("x-trace-bin")
            .map(|b| &b[..]),
        Some(&[0, 1, 2, 255][..]),
        "binary trailer decoded from base64"
    );
}

#[test]
fn deadline_ends_a_call_the_server_holds() {
    let server = start_python_greeter();
    let begun = Instant::now();
    let err = say_hello(&server.target(), "slow", Some(Duration::from_millis(300)))
        .expect_err("the deadline passes");
    let took = begun.elapsed();
    assert_eq!(err.status.code(), Code::DeadlineExceeded, "{err}");
    assert!(took >= Duration::from_millis(300), "ended early: {took:?}");
    assert!(took < Duration::from_secs(5), "ended late: {took:?}");
}

#[test]
fn unknown_method_is_unimplemented() {
    let server = start_python_greeter();
    let call = anygrpc_examples::blocking::unary_call(
        &server.target(),
        "/helloworld.Greeter/SayGoodbye",
        Bytes::new(),
        TIMEOUT,
    );
    let err = call.expect_err("no such method");
    assert_eq!(err.status.code(), Code::Unimplemented, "{err}");
}

#[test]
fn server_guard_stops_the_server() {
    let server = start_python_greeter();
    let target = server.target();
    assert!(std::net::TcpStream::connect(&target).is_ok(), "listening");
    drop(server);
    // Killed and reaped by the guard: nothing accepts on its port any more.
    assert!(std::net::TcpStream::connect(&target).is_err(), "still up");
}
