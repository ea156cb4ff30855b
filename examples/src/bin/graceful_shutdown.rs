//! Graceful shutdown, on smol: `Server::stop(Some(grace))` with calls in flight. The call that
//! finishes within the grace period completes normally, new calls are refused at once, the
//! call still running when the grace runs out is cancelled, and `wait_for_termination`
//! returns once the server has stopped.
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin graceful_shutdown
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_smol as grpc;
use grpc::Status;
use smol::channel::{Receiver, Sender};

/// A job that takes as many milliseconds as its request's `name` says, reporting to `main`.
struct Jobs {
    events: Sender<String>,
}

impl Greeter for Jobs {
    async fn say_hello(
        &self,
        request: HelloRequest,
        context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        let ms: u64 = request
            .name
            .parse()
            .map_err(|_| Status::invalid_argument("name: a number of milliseconds"))?;
        let _ = self
            .events
            .send(format!("server: {ms} ms job started"))
            .await;
        let work = async {
            smol::Timer::after(Duration::from_millis(ms)).await;
            true
        };
        let cancelled = async {
            context.wait_cancelled().await;
            false
        };
        // Whichever comes first: the work is done, or the call is cancelled.
        if smol::future::or(work, cancelled).await {
            let _ = self
                .events
                .send(format!("server: {ms} ms job finished"))
                .await;
            Ok(HelloReply {
                message: format!("{ms} ms job done"),
            })
        } else {
            let _ = self
                .events
                .send(format!("server: {ms} ms job cancelled"))
                .await;
            Err(Status::cancelled("cancelled"))
        }
    }
}

fn main() -> ExitCode {
    match smol::block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("graceful_shutdown: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server's next report.
async fn next(events: &Receiver<String>) -> Result<String, Box<dyn std::error::Error>> {
    let timeout = async {
        smol::Timer::after(Duration::from_secs(2)).await;
        Err("the server did not report".into())
    };
    smol::future::or(async { Ok(events.recv().await?) }, timeout).await
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (events, server_saw) = smol::channel::unbounded();
    let server = grpc::server();
    server.add_service(GreeterServer::new(Jobs { events }));
    let port = server.add_insecure_port("127.0.0.1:0").await?;
    server.start();
    let target = format!("127.0.0.1:{port}");

    // What a `main` serving forever does: wait until someone stops the server.
    let terminated = smol::spawn({
        let server = server.clone();
        async move {
            server.wait_for_termination().await;
            println!("wait_for_termination returned");
        }
    });

    // Two calls in flight: one ends within the grace period, one would take much longer.
    let client = GreeterClient::new(grpc::insecure_channel(&target)?);
    let short = client.say_hello(HelloRequest { name: "100".into() });
    let long = client.say_hello(HelloRequest {
        name: "10000".into(),
    });
    println!("{}", next(&server_saw).await?);
    println!("{}", next(&server_saw).await?);

    // Stop with a grace period of 300 ms. `zip` polls `stop` first, so the server is already
    // stopping when the second future makes a new call.
    let grace = Duration::from_millis(300);
    let started = Instant::now();
    println!("stopping with a grace of {} ms", grace.as_millis());
    let new_call = async {
        let late = GreeterClient::new(grpc::insecure_channel(&target)?);
        match late.say_hello(HelloRequest { name: "1".into() }).await {
            Ok(_) => Err::<(), Box<dyn std::error::Error>>("a new call got in during stop".into()),
            Err(err) => {
                println!(
                    "new call during stop: {} ({})",
                    err.code().as_str(),
                    err.details()
                );
                Ok(())
            }
        }
    };
    let ((), refused) = smol::future::zip(server.stop(Some(grace)), new_call).await;
    refused?;
    println!("stop returned after {} ms", started.elapsed().as_millis());

    // The reports of the two jobs, and what their clients got.
    println!("{}", next(&server_saw).await?);
    println!("{}", next(&server_saw).await?);
    match short.await {
        Ok(reply) => println!("short call: {}", reply.message),
        Err(err) => return Err(format!("the short call should have finished: {err}").into()),
    }
    match long.await {
        Ok(_) => return Err("the long call should have been cut off".into()),
        Err(err) => println!("long call: {} ({})", err.code().as_str(), err.details()),
    }
    terminated.await;
    Ok(())
}
