//! Client-side load balancing, on tokio: three servers, one channel to all of them
//! (`ipv4:///127.0.0.1:A,127.0.0.1:B,127.0.0.1:C`) with the round_robin policy, and the
//! calls taking turns over the three (each server answers with its own name).
//!
//! ```sh
//! cargo run -p anygrpc-examples --bin round_robin
//! ```
//!
//! With a `dns:///` target the addresses come from DNS instead; a service config
//! (`{"loadBalancingConfig": [{"round_robin": {}}]}`, from `ChannelBuilder::service_config`
//! or from the resolver) chooses the policy as `load_balancing` does here.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anygrpc_examples::pb::helloworld::greeter_client::GreeterClient;
use anygrpc_examples::pb::helloworld::greeter_server::{Greeter, GreeterServer};
use anygrpc_examples::pb::helloworld::{HelloReply, HelloRequest};
use anygrpc_tokio as grpc;
use grpc::{Channel, LoadBalancing};

/// A backend that says which one it is.
struct Backend(&'static str);

impl Greeter for Backend {
    async fn say_hello(
        &self,
        request: HelloRequest,
        _context: &mut grpc::ServicerContext,
    ) -> Result<HelloReply, grpc::Status> {
        Ok(HelloReply {
            message: format!("{} greets {}", self.0, request.name),
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("round_robin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Three servers, each on a port of its own.
    let mut servers = Vec::new();
    let mut addresses = Vec::new();
    for name in ["server-a", "server-b", "server-c"] {
        let server = grpc::server();
        server.add_service(GreeterServer::new(Backend(name)));
        let port = server.add_insecure_port("127.0.0.1:0").await?;
        server.start();
        addresses.push(format!("127.0.0.1:{port}"));
        servers.push(server);
    }

    // One channel over all three: `ipv4:///` takes a comma-separated list of addresses.
    let target = format!("ipv4:///{}", addresses.join(","));
    println!("target: {target}");
    let channel = Channel::builder(target, grpc::runtime())
        .load_balancing(LoadBalancing::RoundRobin)
        .build()?;
    let client = GreeterClient::new(channel.clone());

    // round_robin connects to every address at once, and becomes READY with the first; calls
    // go only to the backends already connected, so the very first ones may all land on one.
    // Here we call until all three answered (a second at most).
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    while answers.len() < 3 && started.elapsed() < Duration::from_secs(1) {
        let reply = client
            .say_hello(HelloRequest {
                name: "warm-up".into(),
            })
            .await?;
        let backend = reply
            .message
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        *answers.entry(backend).or_default() += 1;
    }
    println!(
        "all three connected after {} calls",
        answers.values().sum::<usize>()
    );

    // Now every call goes to the next backend in turn.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for i in 1..=6 {
        let reply = client
            .say_hello(HelloRequest {
                name: format!("call {i}"),
            })
            .await?;
        println!("{}", reply.message);
        let backend = reply
            .message
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        *counts.entry(backend).or_default() += 1;
    }
    println!("calls per server: {counts:?}");
    if counts.len() != 3 {
        return Err(format!("expected all three servers to answer, got {counts:?}").into());
    }

    channel.close(None).await;
    for server in &servers {
        server.stop(None).await;
    }
    Ok(())
}
