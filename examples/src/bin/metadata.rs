//! Metadata both ways, on smol: the client's request metadata (one `-bin` key among them),
//! the server's initial metadata (`send_initial_metadata`) and trailers
//! (`set_trailing_metadata`), read on the client through the Call object, and the trailers of
//! a failed call, read from its `RpcError`.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin metadata
//! ```
//!
//! Keys are lowercase ASCII; values are printable ASCII, except under keys ending in `-bin`,
//! whose values are any bytes (base64 on the wire, which anygrpc does for you).

use std::process::ExitCode;

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_smol as grpc;
use grpc::{CallOptions, Code, Metadata, MetadataError, Status};

/// Answers with metadata of its own, echoing what the client sent.
struct Echo;

/// A handler's metadata error as the status it fails the call with.
fn internal(e: MetadataError) -> Status {
    Status::internal(format!("bad metadata: {e}"))
}

impl Greeter for Echo {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        let sent = context.invocation_metadata();
        let request_id = sent.get("x-request-id").unwrap_or("none").to_string();
        // A `-bin` value is bytes, decoded from base64 already.
        let trace = sent.get_bin("x-trace-bin").cloned().unwrap_or_default();
        println!(
            "server: x-request-id = {request_id}, x-trace-bin = {:02x?}",
            trace.as_ref()
        );

        // The response head: sent now, before the response (handy for streams).
        let mut head = Metadata::new();
        head.insert("x-served-by", "greeter-1").map_err(internal)?;
        head.insert("x-request-id", &request_id).map_err(internal)?;
        context.send_initial_metadata(head);

        // The trailers, sent with the status once the handler returns.
        let mut trailers = Metadata::new();
        trailers.insert("x-cost", "3").map_err(internal)?;
        trailers
            .insert_bin("x-checksum-bin", vec![0xde, 0xad, 0xbe, 0xef])
            .map_err(internal)?;
        context.set_trailing_metadata(trailers);

        if request.name == "nobody" {
            // Trailers set on the context go out with an error status too.
            return Err(context.abort(Code::NotFound, "nobody is not here"));
        }
        Ok(HelloReply {
            message: format!("Hello, {}!", request.name),
        })
    }
}

/// `key: value` per entry, binary values in hex.
fn show(metadata: &Metadata) -> String {
    let entries: Vec<String> = metadata
        .iter()
        .map(|(key, value)| match value.as_str() {
            Some(text) => format!("{}: {text}", key.as_str()),
            None => format!("{}: {:02x?}", key.as_str(), value.as_bytes().as_ref()),
        })
        .collect();
    entries.join(", ")
}

fn main() -> ExitCode {
    match smol::block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metadata: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> grpc::Result<()> {
    let server = grpc::server();
    server.add_service(GreeterServer::new(Echo));
    let port = server.add_insecure_port("127.0.0.1:0").await?;
    server.start();
    let client = GreeterClient::new(grpc::insecure_channel(&format!("127.0.0.1:{port}"))?);

    // Request metadata goes in the call's options.
    let mut request_metadata = Metadata::new();
    request_metadata.insert("x-request-id", "req-42")?;
    request_metadata.insert_bin("x-trace-bin", &[0x01, 0x02, 0xff][..])?;
    let options = CallOptions::new().metadata(request_metadata);

    // Keep the Call object: its accessors work before and after the response.
    let mut call = client.say_hello_with(HelloRequest { name: "you".into() }, options.clone());
    // Resolves as soon as the response head arrives, before the response itself.
    let initial = call.initial_metadata().await;
    println!("client: initial metadata: {}", show(&initial));
    // Awaiting `&mut call` gives the response and keeps `call` for its trailers.
    let reply = (&mut call).await?;
    println!("client: reply: {}", reply.message);
    let trailing = call.trailing_metadata().await;
    println!("client: trailing metadata: {}", show(&trailing));
    match trailing.get_bin("x-checksum-bin") {
        Some(checksum) => println!("client: x-checksum-bin = {:02x?}", checksum.as_ref()),
        None => println!("client: no x-checksum-bin trailer"),
    }
    println!("client: status: {}", call.code().await.as_str());

    // A failed call: its `RpcError` carries both sets of metadata.
    match client
        .say_hello_with(
            HelloRequest {
                name: "nobody".into(),
            },
            options,
        )
        .await
    {
        Ok(reply) => println!("client: unexpected reply: {}", reply.message),
        Err(err) => println!(
            "client: failed {} with trailing metadata: {}",
            err.code().as_str(),
            show(err.trailing_metadata())
        ),
    }

    server.stop(None).await;
    Ok(())
}
