//! Generates the grpc.reflection.v1 and v1alpha messages, client stubs and server traits, and
//! the descriptor set of both (served by the reflection service itself); and, for the tests,
//! the descriptor set of `testdata/` (in `$OUT_DIR/testdata`).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    anygrpc_build::compile_protos(
        &[
            "proto/grpc/reflection/v1/reflection.proto",
            "proto/grpc/reflection/v1alpha/reflection.proto",
        ],
        &["proto"],
    )?;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or(std::io::ErrorKind::NotFound)?)
        .join("testdata");
    std::fs::create_dir_all(&out)?;
    anygrpc_build::configure()
        .out_dir(out)
        .build_client(false)
        .build_server(false)
        .compile_protos(&["testdata/reflection_test/ext.proto"], &["testdata"])
}
