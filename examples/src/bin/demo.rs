//! `demo [--name=NAME]`: the whole story on one machine.
//!
//! 1. The blocking client (the sans-IO core driven by hand) against the Python `grpcio` Greeter
//!    server (creating `target/peers-venv` with grpcio on the first run, or using
//!    `$ANYGRPC_PYTHON`): one call that succeeds, one the server rejects with INVALID_ARGUMENT.
//! 2. The async stack on every runtime: an anygrpc RouteGuide server (generated code) and a
//!    client running the four call kinds against it.

use std::process::ExitCode;
use std::time::Duration;

use anygrpc_core::Code;
use anygrpc_examples::greeter::{print_outcome, say_hello};
use anygrpc_examples::python_peer::GreeterServer;
use anygrpc_examples::{route, runtimes};

fn main() -> ExitCode {
    let mut name = String::from("world");
    for arg in std::env::args().skip(1) {
        match arg.strip_prefix("--name=") {
            Some(v) => name = v.to_owned(),
            None => {
                eprintln!("usage: demo [--name=NAME]");
                return ExitCode::from(2);
            }
        }
    }

    println!("starting the Python grpcio Greeter server...");
    let server = match GreeterServer::start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot start the Python greeter server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = server.target();
    println!("server listening on {target}\n");
    let timeout = Some(Duration::from_secs(10));

    println!("$ blocking_client --target={target} --name={name}");
    let greeted = print_outcome(&say_hello(&target, &name, timeout));

    println!("\n$ blocking_client --target={target} --name=error");
    let refused = say_hello(&target, "error", timeout);
    print_outcome(&refused);
    let refused_as_expected =
        matches!(&refused, Err(e) if e.status.code() == Code::InvalidArgument);

    drop(server);

    let mut toured = true;
    for &runtime in runtimes::RUNTIMES {
        println!(
            "\n$ route_guide --runtime={runtime}   (anygrpc server and client, generated code)"
        );
        let tour = runtimes::run(runtime, |rt| async move {
            let (server, port) = route::serve(rt.clone(), 0)
                .await
                .map_err(|e| e.to_string())?;
            let tour = route::tour(rt, &format!("127.0.0.1:{port}"))
                .await
                .map_err(|e| e.to_string());
            server.stop(None).await;
            tour
        });
        match tour {
            Ok(Ok(tour)) => {
                println!("GetFeature   -> {:?}", tour.feature);
                println!("ListFeatures -> {:?}", tour.listed);
                println!(
                    "RecordRoute  -> {} points, {} features",
                    tour.summary.point_count, tour.summary.feature_count
                );
                println!("RouteChat    -> {:?}", tour.chat);
            }
            Ok(Err(e)) | Err(e) => {
                println!("failed: {e}");
                toured = false;
            }
        }
    }

    if greeted && refused_as_expected && toured {
        println!(
            "\ndemo passed: the core by hand against grpcio, the async stack on every runtime"
        );
        ExitCode::SUCCESS
    } else {
        println!("\ndemo FAILED");
        ExitCode::FAILURE
    }
}
