//! Code generated from `proto/grpc/testing/*.proto` (see `build.rs`).

/// `grpc.testing` for anygrpc: messages, `test_service_client::TestServiceClient`,
/// `test_service_server::TestService`, and the other services of `test.proto`.
#[allow(missing_docs, clippy::all)]
pub mod testing {
    include!(concat!(env!("OUT_DIR"), "/grpc.testing.rs"));
}

/// `grpc.testing` for tonic (the tonic peer): messages, clients and servers.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub mod tonic_testing {
    include!(concat!(env!("OUT_DIR"), "/tonic/grpc.testing.rs"));
}
