//! The rich error model, on smol: the server fails calls with a status carrying
//! `google.rpc` details (`BadRequest`, `ErrorInfo`, `RetryInfo`, `Help`) through
//! `anygrpc-types`, and the client reads them back from the `RpcError`.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin error_details
//! ```
//!
//! The details travel in the `grpc-status-details-bin` trailer, as grpcio's `grpc_status` and
//! grpc-go's `status` packages send them, so clients in those languages read them too.

use std::process::ExitCode;
use std::time::Duration;

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_smol as grpc;
use anygrpc_types::{ErrorDetails, RpcErrorExt, StatusExt};
use grpc::{Code, RpcError, Status};

/// Greets names of 1 to 10 letters, except blocked ones.
struct Strict;

impl Greeter for Strict {
    async fn say_hello(
        &self,
        request: HelloRequest,
        _context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        let name = request.name;
        let mut details = ErrorDetails::new();
        if name.is_empty() || name.len() > 10 {
            // What was wrong with which field: a client can point at the bad input.
            details
                .add_bad_request_violation("name", "must be 1 to 10 characters")
                .add_help_link("naming rules", "https://example.com/docs/names");
            let message = format!("invalid name {name:?}");
            return Err(Status::with_error_details(
                Code::InvalidArgument,
                message,
                &details,
            ));
        }
        if name == "mallory" {
            // A machine-readable reason in a domain, with metadata, and when to try again.
            details
                .set_error(
                    "USER_BLOCKED",
                    "greeter.example.com",
                    [("user".to_string(), name)],
                )
                .set_retry_delay(Duration::from_secs(30));
            return Err(Status::with_error_details(
                Code::PermissionDenied,
                "blocked",
                &details,
            ));
        }
        Ok(HelloReply {
            message: format!("Hello, {name}!"),
        })
    }
}

/// Prints what a failed call carries.
fn report(err: &RpcError) {
    println!("  status: {} ({})", err.code().as_str(), err.details());
    let details = match err.error_details() {
        Ok(details) => details,
        // The trailer did not decode, or disagrees with the call's status: the call's own
        // code and message above still stand.
        Err(e) => return println!("  unreadable details: {e}"),
    };
    if details.is_empty() {
        println!("  no details");
    }
    if let Some(bad) = details.bad_request() {
        for violation in &bad.field_violations {
            println!(
                "  bad request: {}: {}",
                violation.field, violation.description
            );
        }
    }
    if let Some(help) = details.help() {
        for link in &help.links {
            println!("  help: {} <{}>", link.description, link.url);
        }
    }
    if let Some(info) = details.error_info() {
        let mut metadata: Vec<_> = info.metadata.iter().collect();
        metadata.sort();
        println!(
            "  error info: {} in {} {metadata:?}",
            info.reason, info.domain
        );
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        println!("  retry in {} s", delay.seconds);
    }
}

fn main() -> ExitCode {
    match smol::block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error_details: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> grpc::Result<()> {
    let server = grpc::server();
    server.add_service(GreeterServer::new(Strict));
    let port = server.add_insecure_port("127.0.0.1:0").await?;
    server.start();
    let client = GreeterClient::new(grpc::insecure_channel(&format!("127.0.0.1:{port}"))?);

    for name in ["ada", "", "mallory"] {
        println!("say_hello({name:?}):");
        match client.say_hello(HelloRequest { name: name.into() }).await {
            Ok(reply) => println!("  reply: {}", reply.message),
            Err(err) => report(&err),
        }
    }

    server.stop(None).await;
    Ok(())
}
