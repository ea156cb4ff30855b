//! Generates the Greeter and RouteGuide messages, client stubs and server traits.

fn main() -> std::io::Result<()> {
    anygrpc_build::compile_protos(
        &["protos/helloworld.proto", "protos/route_guide.proto"],
        &["protos"],
    )
}
