//! The async Greeter: a service implementation and a client, on any runtime.

use anygrpc::{Channel, RuntimeRef, Server, ServicerContext, Status};

use crate::pb::helloworld::greeter_client::GreeterClient;
use crate::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use crate::pb::helloworld::{HelloReply, HelloRequest};

/// Greets whoever asks; refuses an empty name with INVALID_ARGUMENT.
#[derive(Debug, Default)]
pub struct Greetings;

impl Greeter for Greetings {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut ServicerContext,
    ) -> Result<HelloReply, Status> {
        if request.name.is_empty() {
            return Err(context.abort(anygrpc::Code::InvalidArgument, "name must not be empty"));
        }
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }
}

/// Starts a Greeter server on `127.0.0.1:port` (0 picks a free port); returns it and its port.
pub async fn serve(runtime: RuntimeRef, port: u16) -> std::io::Result<(Server, u16)> {
    let server = Server::new(runtime);
    server.add_service(GreeterServer::new(Greetings));
    let port = server
        .add_insecure_port(&format!("127.0.0.1:{port}"))
        .await?;
    server.start();
    Ok((server, port))
}

/// Calls `SayHello` on `target` and returns the greeting.
pub async fn greet(
    runtime: RuntimeRef,
    target: &str,
    name: &str,
) -> Result<String, anygrpc::RpcError> {
    let channel = Channel::builder(target, runtime)
        .build()
        .map_err(|e| anygrpc::RpcError::from_status(Status::invalid_argument(e.to_string())))?;
    let client = GreeterClient::new(channel.clone());
    let reply = client.say_hello(HelloRequest { name: name.into() }).await;
    channel.close(None).await;
    Ok(reply?.message)
}
