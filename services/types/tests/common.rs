//! What the rich-error tests share: the details a failing handler sends, and an anygrpc
//! server whose one raw method fails in the way its request (a string) names.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use anygrpc::{Code, RuntimeRef, Server, ServerCall, Status};
use anygrpc_types::{Any, ErrorDetails, StatusExt, pb};
use prost::Message;

/// The raw method every test calls.
pub const FAIL: &str = "/rich.Test/Fail";

/// An `Any` of a type nobody here knows: it must come back byte for byte.
pub fn unknown_any() -> Any {
    Any {
        type_url: "type.example.com/acme.Custom".to_string(),
        value: vec![0x08, 0x96, 0x01, 0x12, 0x02, 0xff, 0x00],
    }
}

/// The details a handler fails with: several standard types, then the unknown `Any`.
pub fn sample() -> ErrorDetails {
    let mut d = ErrorDetails::new();
    d.set_error(
        "NAME_TAKEN",
        "rich.example.com",
        [("name".to_string(), "ada".to_string())],
    )
    .add_bad_request_violation("name", "already in use")
    .set_retry_delay(Duration::from_millis(1500))
    .add_help_link("naming rules", "https://example.com/names")
    .add_other(unknown_any());
    d
}

/// The status the handler fails with when asked for `details`.
pub fn failing() -> Status {
    Status::with_error_details(Code::AlreadyExists, "name taken", &sample())
}

/// The status for `request`: `details` (see [`failing`]), `disagree` (a google.rpc.Status
/// whose code and message are not the call's), `bad-proto` (bytes that are no protobuf).
pub fn status_for(request: &str) -> Status {
    match request {
        "details" => failing(),
        "disagree" => {
            let inner = pb::Status {
                code: Code::NotFound.as_i32(),
                message: "inner says not found".to_string(),
                details: sample().to_anys(),
            };
            Status::aborted("outer says aborted").with_details(inner.encode_to_vec())
        }
        "bad-proto" => Status::unavailable("down").with_details(vec![0x12, 0x05, b'x']),
        other => Status::invalid_argument(format!("unknown case {other:?}")),
    }
}

/// Starts an anygrpc server on `rt` answering [`FAIL`] with [`status_for`] its request;
/// returns it and its port.
pub async fn serve(rt: &RuntimeRef) -> (Server, u16) {
    let server = Server::new(rt.clone());
    server.add_generic_handler(FAIL, |mut call: ServerCall| {
        Box::pin(async move {
            let request = match call.recv().await {
                Some(Ok(bytes)) => String::decode(bytes).unwrap_or_default(),
                _ => String::new(),
            };
            call.finish(status_for(&request), Default::default());
        })
    });
    let port = server
        .add_insecure_port("127.0.0.1:0")
        .await
        .expect("a port");
    server.start();
    (server, port)
}
