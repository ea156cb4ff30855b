//! `helloworld.Greeter/SayHello` through the blocking client, and how the programs print it.

use std::time::Duration;

use anygrpc_core::Metadata;
use bytes::Bytes;
use prost::Message;

use crate::blocking::{RpcError, UnaryReply, unary_call};
use crate::helloworld::{HelloReply, HelloRequest, SAY_HELLO};

/// Calls `SayHello` on `target` with `name`; returns the decoded reply and the raw call result.
pub fn say_hello(
    target: &str,
    name: &str,
    timeout: Option<Duration>,
) -> Result<(HelloReply, UnaryReply), RpcError> {
    let request = HelloRequest { name: name.into() };
    let reply = unary_call(
        target,
        SAY_HELLO,
        Bytes::from(request.encode_to_vec()),
        timeout,
    )?;
    let hello = HelloReply::decode(reply.message.clone()).map_err(|e| RpcError {
        status: anygrpc_core::Status::internal(format!("undecodable HelloReply: {e}")),
        initial_metadata: reply.initial_metadata.clone(),
        trailing_metadata: reply.trailing_metadata.clone(),
    })?;
    Ok((hello, reply))
}

/// Prints a `say_hello` result as the command-line programs do; `true` when it succeeded.
pub fn print_outcome(outcome: &Result<(HelloReply, UnaryReply), RpcError>) -> bool {
    match outcome {
        Ok((hello, reply)) => {
            println!("reply: {}", hello.message);
            print_metadata("initial metadata", &reply.initial_metadata);
            print_metadata("trailing metadata", &reply.trailing_metadata);
            println!("status: OK");
            true
        }
        Err(err) => {
            print_metadata("initial metadata", &err.initial_metadata);
            print_metadata("trailing metadata", &err.trailing_metadata);
            println!("{}", err.status);
            false
        }
    }
}

fn print_metadata(label: &str, metadata: &Metadata) {
    for (key, value) in metadata.iter() {
        match value.as_str() {
            Some(text) => println!("{label}: {} = {text}", key.as_str()),
            None => println!("{label}: {} = {:02x?}", key.as_str(), &value.as_bytes()[..]),
        }
    }
}
