//! A Greeter server and client in one plain `#[tokio::main]` program, on `anygrpc-tokio`.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin tokio_main
//! ```
//!
//! In your own crate you depend on `anygrpc-tokio` (it re-exports all of `anygrpc`) and `tokio`
//! with the `macros` and `rt-multi-thread` features; see the README, "Using it in your crate".

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
// The one `use` line that picks the executor: `anygrpc_smol` works the same (see `smol_main`).
use anygrpc_tokio as grpc;

/// The service: a generated trait, one `async fn` per RPC.
struct Greetings;

impl Greeter for Greetings {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        if request.name.is_empty() {
            // Returning `Err` ends the call with that status.
            return Err(context.abort(grpc::Code::InvalidArgument, "name must not be empty"));
        }
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }
}

// `anygrpc::Result` (re-exported by the adapter) takes every anygrpc error: bind errors,
// bad targets, failed calls.
#[tokio::main]
async fn main() -> grpc::Result<()> {
    // The server: `grpc::server()` runs on the tokio runtime `main` runs in.
    let server = grpc::server();
    server.add_service(GreeterServer::new(Greetings));
    // Port 0: the system picks a free one, and we get it back.
    let port = server.add_insecure_port("127.0.0.1:0").await?;
    server.start();
    println!("server listening on 127.0.0.1:{port}");

    // The client: a channel connects lazily, at the first call.
    let channel = grpc::insecure_channel(&format!("127.0.0.1:{port}"))?;
    let client = GreeterClient::new(channel.clone());

    let reply = client
        .say_hello(HelloRequest {
            name: "tokio".into(),
        })
        .await?;
    println!("reply: {}", reply.message);

    // A failed call is an `RpcError` with the server's status.
    match client.say_hello(HelloRequest::default()).await {
        Ok(reply) => println!("unexpected reply: {}", reply.message),
        Err(err) => println!("empty name: {} ({})", err.code().as_str(), err.details()),
    }

    // Close the channel, then stop the server (no grace: nothing is in flight).
    channel.close(None).await;
    server.stop(None).await;
    println!("server stopped");
    Ok(())
}
