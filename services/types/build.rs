//! Generates the google.rpc messages (Status and the standard error details).

fn main() -> std::io::Result<()> {
    anygrpc_build::compile_protos(
        &[
            "proto/google/rpc/status.proto",
            "proto/google/rpc/error_details.proto",
        ],
        &["proto"],
    )
}
