//! Generates the grpc.health.v1 messages, client stub and server trait.

fn main() -> std::io::Result<()> {
    anygrpc_build::compile_protos(&["proto/grpc/health/v1/health.proto"], &["proto"])
}
