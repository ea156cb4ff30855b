//! The CLI against a Python grpcio server (`tests/peers/python/reflection_server.py`) of a
//! service defined in `cli/tests/proto`: over grpcio-reflection, and with reflection off from
//! `-proto` and `-protoset` files.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anygrpc_examples::python_peer::PythonPeer;
use common::anygrpc;
use prost::Message;

const PROTOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proto");

/// The echo protos compiled, written to a file of their own; its path.
fn descriptor_set_file(name: &str) -> PathBuf {
    let set = protox::compile(["cli/test/echo.proto"], [PROTOS]).expect("compile the echo protos");
    let path = std::env::temp_dir().join(format!(
        "anygrpc-cli-{name}-{}.protoset",
        std::process::id()
    ));
    std::fs::write(&path, set.encode_to_vec()).expect("write the descriptor set");
    path
}

/// The Python server and its address.
struct GrpcioServer {
    _peer: PythonPeer,
    address: String,
}

impl GrpcioServer {
    fn start(descriptors: &Path, reflection: bool) -> Self {
        let mut args = vec![OsStr::new("--descriptors"), descriptors.as_os_str()];
        if !reflection {
            args.push(OsStr::new("--no-reflection"));
        }
        let peer = PythonPeer::start("reflection_server.py", &args).expect("the grpcio server");
        Self {
            address: peer.target(),
            _peer: peer,
        }
    }

    fn run(&self, flags: &[&str], rest: &[&str]) -> common::Run {
        let mut args = vec!["-plaintext"];
        args.extend_from_slice(flags);
        args.push(&self.address);
        args.extend_from_slice(rest);
        anygrpc(&args, "")
    }
}

#[test]
fn list_describe_and_call_over_grpcio_reflection() {
    let set = descriptor_set_file("reflection");
    let server = GrpcioServer::start(&set, true);
    server.run(&[], &["list"]).expect_code(0).stdout_has(&[
        "cli.test.Echo\n",
        "grpc.health.v1.Health\n",
        "grpc.reflection.v1alpha.ServerReflection\n",
    ]);
    server
        .run(&[], &["list", "cli.test.Echo"])
        .expect_code(0)
        .stdout_has(&["cli.test.Echo.Say\n", "cli.test.Echo.Count\n"]);
    // SayRequest's Note is in another file: reflection must have sent it too.
    server
        .run(&[], &["describe", "cli.test.SayRequest"])
        .expect_code(0)
        .stdout_has(&[
            "cli.test.SayRequest is a message:",
            ".cli.test.Note note = 2;",
        ]);
    server
        .run(&[], &["describe", "cli.test.Echo.Count"])
        .expect_code(0)
        .stdout_has(&[
            "rpc Count ( .cli.test.CountRequest ) returns ( stream .cli.test.SayReply );",
        ]);

    server
        .run(
            &["-d", r#"{"text": "hi", "note": {"tags": ["a"]}}"#],
            &["cli.test.Echo/Say"],
        )
        .expect_code(0)
        .stdout_has(&[r#""text": "you said: hi""#]);
    let run = server
        .run(&["-d", r#"{"count": 3}"#], &["cli.test.Echo/Count"])
        .expect_code(0);
    let numbers: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.contains("\"number\""))
        .map(str::trim)
        .collect();
    assert_eq!(
        numbers,
        [r#""number": 1"#, r#""number": 2"#, r#""number": 3"#],
        "{run:#?}"
    );
    server
        .run(&["-d", r#"{"text": "fail"}"#], &["cli.test.Echo/Say"])
        .expect_code(64 + 7)
        .stderr_has(&["Code: PermissionDenied", "Message: fail is refused"]);
    server
        .run(
            &["-d", r#"{"service": ""}"#],
            &["grpc.health.v1.Health/Check"],
        )
        .expect_code(0)
        .stdout_has(&[r#""status": "SERVING""#]);
    let _ = std::fs::remove_file(set);
}

#[test]
fn without_reflection_the_proto_and_protoset_files_describe_the_service() {
    let set = descriptor_set_file("files");
    let server = GrpcioServer::start(&set, false);
    server
        .run(&[], &["list"])
        .expect_code(64 + 12)
        .stderr_has(&["Code: Unimplemented"]);

    let proto = ["-import-path", PROTOS, "-proto", "cli/test/echo.proto"];
    server
        .run(&proto, &["list"])
        .expect_code(0)
        .stdout_has(&["cli.test.Echo\n"]);
    server
        .run(
            &[&proto[..], &["-d", r#"{"text": "from a .proto"}"#]].concat(),
            &["cli.test.Echo/Say"],
        )
        .expect_code(0)
        .stdout_has(&[r#""text": "you said: from a .proto""#]);

    let set_path = set.to_string_lossy().into_owned();
    server
        .run(
            &["-protoset", &set_path, "-d", r#"{"count": 2}"#],
            &["cli.test.Echo/Count"],
        )
        .expect_code(0)
        .stdout_has(&[r#""number": 2"#]);
    server
        .run(&["-protoset", &set_path], &["describe", "cli.test.Note"])
        .expect_code(0)
        .stdout_has(&["repeated string tags = 2;"]);
    let _ = std::fs::remove_file(set);
}
