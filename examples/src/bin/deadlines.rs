//! Deadlines and cancellation, on tokio: a call whose timeout expires (DEADLINE_EXCEEDED)
//! while the server watches `time_remaining()` and `wait_cancelled()`, and a call the client
//! cancels, with `done()` and `add_done_callback` on both sides.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin deadlines
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_tokio as grpc;
use grpc::{CallOptions, Code, Status};
use tokio::sync::mpsc;

/// A handler that takes 10 s, unless its call is cancelled first. It reports what it sees
/// to `main` over `events`, so that the output comes in order.
struct Slow {
    events: mpsc::UnboundedSender<String>,
}

impl Greeter for Slow {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        let report = |line: String| {
            let _ = self.events.send(line); // `main` may have stopped listening: fine
        };
        // The client's deadline travels in `grpc-timeout`; the handler sees what is left.
        match context.time_remaining() {
            Some(left) => report(format!(
                "server: {} started, {} ms left",
                request.name,
                left.as_millis()
            )),
            None => report(format!("server: {} started, no deadline", request.name)),
        }
        let events = self.events.clone();
        let name = request.name.clone();
        context.add_done_callback(move || {
            let _ = events.send(format!("server: {name} done callback ran"));
        });

        let started = Instant::now();
        tokio::select! {
            // Resolves when the client cancels, or the deadline passes.
            () = context.wait_cancelled() => {
                report(format!(
                    "server: {} cancelled after {} ms (done() = {})",
                    request.name,
                    started.elapsed().as_millis(),
                    context.done(),
                ));
                // The client is gone: whatever we return now is never sent.
                Err(Status::cancelled("the client went away"))
            }
            () = tokio::time::sleep(Duration::from_secs(10)) => Ok(HelloReply {
                message: format!("Hello, {}, finally!", request.name),
            }),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deadlines: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (events, mut server_saw) = mpsc::unbounded_channel();
    let server = grpc::server();
    server.add_service(GreeterServer::new(Slow { events }));
    let port = server.add_insecure_port("127.0.0.1:0").await?;
    server.start();
    let client = GreeterClient::new(grpc::insecure_channel(&format!("127.0.0.1:{port}"))?);
    // The server's next report, or an error if it stopped reporting.
    let mut next_event = async || {
        tokio::time::timeout(Duration::from_secs(2), server_saw.recv())
            .await
            .ok()
            .flatten()
            .ok_or("the server did not report")
    };

    // 1. A timeout: the call's deadline is 100 ms from now.
    let started = Instant::now();
    let options = CallOptions::new().timeout(Duration::from_millis(100));
    let call = client.say_hello_with(
        HelloRequest {
            name: "call 1".into(),
        },
        options,
    );
    println!("{}", next_event().await?);
    match call.await {
        Err(err) if err.code() == Code::DeadlineExceeded => println!(
            "client: call 1 failed {} after {} ms",
            err.code().as_str(),
            started.elapsed().as_millis()
        ),
        Err(err) => return Err(err.into()),
        Ok(_) => return Err("call 1 should have run out of time".into()),
    }
    // The server's `wait_cancelled` woke up, and its done callback ran (in either order).
    println!("{}", next_event().await?);
    println!("{}", next_event().await?);

    // 2. Cancelled by the client: no deadline, the client gives up by itself.
    let call = client.say_hello(HelloRequest {
        name: "call 2".into(),
    });
    call.add_done_callback(|| println!("client: call 2 done callback ran"));
    println!("{}", next_event().await?); // the handler is running
    println!("client: call 2 done() = {}", call.done());
    // `cancel()` ends the call at once (its done callbacks run before it returns) and
    // resets the stream, which wakes the server's `wait_cancelled`.
    let cancelled = call.cancel();
    println!("client: cancel() = {cancelled}");
    println!(
        "client: call 2 done() = {}, cancelled() = {}",
        call.done(),
        call.cancelled()
    );
    match call.await {
        Err(err) if err.code() == Code::Cancelled => {
            println!("client: call 2 failed {}", err.code().as_str())
        }
        Err(err) => return Err(err.into()),
        Ok(_) => return Err("call 2 should have been cancelled".into()),
    }
    println!("{}", next_event().await?);
    println!("{}", next_event().await?);

    server.stop(None).await;
    Ok(())
}
