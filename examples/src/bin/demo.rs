//! `demo [--name=NAME]`: the whole story on one machine.
//!
//! Starts the Python `grpcio` Greeter server (creating `target/peers-venv` with grpcio on the
//! first run, or using `$ANYGRPC_PYTHON`), then makes two calls with the blocking client: one
//! that succeeds and one the server rejects with INVALID_ARGUMENT. The server is stopped on exit.

use std::process::ExitCode;
use std::time::Duration;

use anygrpc_core::Code;
use anygrpc_examples::greeter::{print_outcome, say_hello};
use anygrpc_examples::python_peer::GreeterServer;

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
    if greeted && refused_as_expected {
        println!("\ndemo passed: one greeting, one INVALID_ARGUMENT, both over anygrpc-core");
        ExitCode::SUCCESS
    } else {
        println!("\ndemo FAILED");
        ExitCode::FAILURE
    }
}
