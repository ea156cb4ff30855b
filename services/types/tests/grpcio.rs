//! Interop with grpcio's `grpc_status` package: a Python server failing with
//! `rpc_status.to_status(...)` is read by an anygrpc client on tokio and smol.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anygrpc::{Channel, Code};
use anygrpc_examples::python_peer::{python_with_grpcio, workspace_root};
use anygrpc_examples::runtimes;
use anygrpc_types::RpcErrorExt;

#[test]
fn an_anygrpc_client_reads_grpcio_status_details() {
    let python = python_with_grpcio().expect("a Python with grpcio");
    let mut child = Command::new(python)
        .arg("-u")
        .arg(workspace_root().join("tests/peers/python/rich_status.py"))
        .arg("server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the peer starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a port line");
    let port: u16 = line.trim().parse().expect("a port");
    for name in ["tokio", "smol"] {
        runtimes::run(name, |rt| async move {
            let channel = Channel::builder(format!("127.0.0.1:{port}"), rt)
                .build()
                .expect("a valid target");
            let err = channel
                .unary_unary::<String, String>("/rich.Test/Fail")
                .call("details".to_string())
                .await
                .expect_err("the peer always fails");
            assert_eq!(err.code(), Code::InvalidArgument, "{name}: {err}");
            assert_eq!(err.details(), "bad request from python", "{name}");
            let details = err.error_details().expect("details that decode");
            let bad = details.bad_request().expect("a BadRequest");
            assert_eq!(bad.field_violations.len(), 1, "{name}");
            assert_eq!(bad.field_violations[0].field, "email", "{name}");
            let info = details.error_info().expect("an ErrorInfo");
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                ("BAD_EMAIL", "py.example.com"),
                "{name}"
            );
            assert_eq!(
                info.metadata.get("seen").map(String::as_str),
                Some("twice"),
                "{name}"
            );
        })
        .expect("a known runtime");
    }
    let _ = child.kill();
    let _ = child.wait();
}
