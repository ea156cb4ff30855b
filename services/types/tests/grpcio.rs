//! Interop with grpcio's `grpc_status` package: a Python server failing with
//! `rpc_status.to_status(...)` is read by an anygrpc client on tokio and smol, and a Python
//! client's `rpc_status.from_call(...)` reads an anygrpc server's details (tokio).

mod common;

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

/// The JSON lines `rich_status.py client` prints for a call of `case` to `port`.
fn python_client(port: u16, case: &str) -> Vec<String> {
    let out = Command::new(python_with_grpcio().expect("a Python with grpcio"))
        .arg(workspace_root().join("tests/peers/python/rich_status.py"))
        .args(["client", &format!("127.0.0.1:{port}"), case])
        .output()
        .expect("the peer runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn grpcio_from_call_reads_an_anygrpc_servers_details() {
    runtimes::run("tokio", |rt| async move {
        let (server, port) = common::serve(&rt).await;
        // The tokio runtime has other workers to serve while this one waits on Python.
        let lines = python_client(port, "details");
        assert_eq!(
            lines[0], r#"{"code": 6, "message": "name taken"}"#,
            "{lines:?}"
        );
        assert_eq!(
            lines.len(),
            6,
            "four standard details and the unknown one: {lines:?}"
        );
        assert!(lines[1].contains(r#""reason": "NAME_TAKEN""#), "{lines:?}");
        assert!(
            lines[2].contains(r#""seconds": 1, "nanos": 500000000"#),
            "{lines:?}"
        );
        assert!(
            lines[3].contains(r#"["name", "already in use"]"#),
            "{lines:?}"
        );
        assert!(lines[4].contains("https://example.com/names"), "{lines:?}");
        assert!(
            lines[5].contains(r#""value": "0896011202ff00""#),
            "unknown kept: {lines:?}"
        );
        let lines = python_client(port, "disagree");
        assert!(
            lines[0].starts_with(r#"{"error": "#),
            "grpcio refuses too: {lines:?}"
        );
        server.stop(None).await;
    })
    .expect("a known runtime");
}
