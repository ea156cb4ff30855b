//! The standard gRPC interop suite for anygrpc (grpc/grpc `doc/interop-test-descriptions.md`):
//! our copies of the `grpc.testing` protos, the TestService server, the client test cases, the
//! command-line flags shared by `interop-server` / `interop-client`, and a tonic peer
//! (`tonic-peer`) so the matrix can run anygrpc against tonic and Python grpcio both ways.

pub mod args;
pub mod bench;
pub mod cases;
pub mod pb;
pub mod server;
pub mod tonic_peer;

/// The test cases, by their standard names, in the order the matrix runs them.
pub const TEST_CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
];

/// `payload.body` of `size` zero bytes (the suite's payloads are all zeros).
pub fn zeros(size: usize) -> Vec<u8> {
    vec![0; size]
}
