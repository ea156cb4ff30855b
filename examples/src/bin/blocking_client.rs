//! `blocking_client [--target=host:port] [--name=NAME] [--timeout_ms=N]`
//!
//! Calls `helloworld.Greeter/SayHello` once over a plain `std::net::TcpStream`, driving the
//! sans-IO core by hand (see `anygrpc_examples::blocking`), and prints the reply and the status.
//! Exits 1 when the call fails, 2 on a usage error.

use std::process::ExitCode;
use std::time::Duration;

use anygrpc_examples::greeter::{print_outcome, say_hello};

const USAGE: &str = "usage: blocking_client [--target=host:port] [--name=NAME] [--timeout_ms=N]";

fn main() -> ExitCode {
    let mut target = String::from("localhost:50051");
    let mut name = String::from("world");
    let mut timeout = Some(Duration::from_secs(10));
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("--target=") {
            target = v.to_owned();
        } else if let Some(v) = arg.strip_prefix("--name=") {
            name = v.to_owned();
        } else if let Some(v) = arg.strip_prefix("--timeout_ms=") {
            match v.parse::<u64>() {
                Ok(0) => timeout = None,
                Ok(ms) => timeout = Some(Duration::from_millis(ms)),
                Err(_) => return usage(&format!("--timeout_ms wants a number, got {v:?}")),
            }
        } else if arg == "--help" || arg == "-h" {
            println!("{USAGE}\n  --timeout_ms=0 means no deadline; default 10000");
            return ExitCode::SUCCESS;
        } else {
            return usage(&format!("unknown argument {arg:?}"));
        }
    }
    if print_outcome(&say_hello(&target, &name, timeout)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}\n{USAGE}");
    ExitCode::from(2)
}
