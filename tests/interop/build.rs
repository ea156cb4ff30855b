//! Generates the `grpc.testing` messages and services twice: for anygrpc (`$OUT_DIR`) and for
//! the tonic peer (`$OUT_DIR/tonic`), both from the copies in `proto/`, compiled with protox.
//! The tonic copy holds payload bodies as `bytes::Bytes` (decoded without a copy), the way a
//! performance-minded tonic user configures prost; anygrpc's copy keeps prost's `Vec<u8>`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/grpc/testing/test.proto",
        "proto/grpc/testing/benchmark_service.proto",
    ];
    anygrpc_build::compile_protos(&protos, &["proto"])?;

    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("tonic");
    std::fs::create_dir_all(&out)?;
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".grpc.testing.Payload.body")
        .out_dir(&out)
        .compile_fds(descriptors)?;
    Ok(())
}
