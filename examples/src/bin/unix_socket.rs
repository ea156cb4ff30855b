//! A Greeter served on a Unix-domain socket, and a client calling it through a `unix:` target,
//! on `anygrpc-tokio`. The socket file is made by `add_insecure_port` and removed by `stop`.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin unix_socket
//! ```
//!
//! Unix sockets suit a sidecar or a local daemon: no port to allocate, and the file's
//! permissions say who may connect.

use std::path::PathBuf;

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_tokio as grpc;

/// Greets the caller and says where the call came from.
struct Greetings;

impl Greeter for Greetings {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        // A Unix client has no address of its own: its peer reads `unix:`.
        Ok(HelloReply {
            message: format!("Hello, {} (peer {})!", request.name, context.peer()),
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> grpc::Result<()> {
    // A path of our own in the temporary directory (a stale file there would be replaced).
    let path: PathBuf =
        std::env::temp_dir().join(format!("anygrpc-example-{}.sock", std::process::id()));
    let address = format!("unix:{}", path.display());

    let server = grpc::server();
    server.add_service(GreeterServer::new(Greetings));
    server.add_insecure_port(&address).await?;
    server.start();
    println!("server listening on {address}");
    println!("socket file exists: {}", path.exists());

    // The same `unix:` form names the target on the client side.
    let channel = grpc::insecure_channel(&address)?;
    let reply = GreeterClient::new(channel.clone())
        .say_hello(HelloRequest {
            name: "unix".into(),
        })
        .await?;
    println!("reply: {}", reply.message);

    channel.close(None).await;
    server.stop(None).await;
    println!("socket file exists after stop: {}", path.exists());
    Ok(())
}
