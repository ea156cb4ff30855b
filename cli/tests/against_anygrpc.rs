//! The CLI against anygrpc's own `interop-server` (TestService, health, reflection v1 and
//! v1alpha), in this process on tokio: list, describe and every call kind, as a user types
//! them.

mod common;

use std::sync::Arc;

use common::{anygrpc, closed_port};

/// The interop server on a runtime of its own; stopped when dropped.
struct InteropServer {
    _runtime: tokio::runtime::Runtime,
    address: String,
}

impl InteropServer {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// Over TLS with `credentials` when given.
    fn start_with(credentials: Option<anygrpc_tokio::ServerCredentials>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let anygrpc_runtime: anygrpc_tokio::RuntimeRef = Arc::new(
            anygrpc_tokio::TokioRuntime::from_handle(runtime.handle().clone()),
        );
        let (server, port) = runtime
            .block_on(anygrpc_interop::server::serve(
                anygrpc_runtime,
                "127.0.0.1:0",
                credentials,
            ))
            .expect("serve");
        // The server lives as long as its runtime.
        std::mem::forget(server);
        Self {
            _runtime: runtime,
            address: format!("127.0.0.1:{port}"),
        }
    }

    /// `anygrpc -plaintext <flags…> ADDRESS <rest…>`.
    fn run(&self, flags: &[&str], rest: &[&str], stdin: &str) -> common::Run {
        let mut args = vec!["-plaintext"];
        args.extend_from_slice(flags);
        args.push(&self.address);
        args.extend_from_slice(rest);
        anygrpc(&args, stdin)
    }
}

#[test]
fn list_and_describe_over_reflection() {
    let server = InteropServer::start();
    let run = server.run(&[], &["list"], "").expect_code(0).stdout_has(&[
        "grpc.health.v1.Health\n",
        "grpc.reflection.v1.ServerReflection\n",
        "grpc.reflection.v1alpha.ServerReflection\n",
        "grpc.testing.TestService\n",
    ]);
    let mut sorted: Vec<&str> = run.stdout.lines().collect();
    sorted.sort_unstable();
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        sorted,
        "list is sorted"
    );

    server
        .run(&[], &["list", "grpc.testing.TestService"], "")
        .expect_code(0)
        .stdout_has(&[
            "grpc.testing.TestService.UnaryCall\n",
            "grpc.testing.TestService.FullDuplexCall\n",
        ]);
    // Every built-in policy can be tried from the shell; an unknown one is a usage error.
    for policy in ["pick_first", "round_robin", "least_request"] {
        server
            .run(&["-lb", policy], &["list"], "")
            .expect_code(0)
            .stdout_has(&["grpc.testing.TestService\n"]);
    }
    server
        .run(&["-lb", "grpclb"], &["list"], "")
        .expect_code(2)
        .stderr_has(&["grpclb"]);
    server
        .run(&[], &["describe", "grpc.testing.TestService"], "")
        .expect_code(0)
        .stdout_has(&[
            "grpc.testing.TestService is a service:",
            "rpc StreamingInputCall ( stream .grpc.testing.StreamingInputCallRequest ) returns ( .grpc.testing.StreamingInputCallResponse );",
        ]);
    server
        .run(&[], &["describe", "grpc.testing.SimpleRequest"], "")
        .expect_code(0)
        .stdout_has(&[
            "grpc.testing.SimpleRequest is a message:",
            "response_size = 2;",
        ]);
    server
        .run(&[], &["describe", "no.such.Symbol"], "")
        .expect_code(64 + 5)
        .stderr_has(&["Code: NotFound"]);
}

#[test]
fn unary_calls_with_json_headers_and_statuses() {
    let server = InteropServer::start();
    server
        .run(
            &["-d", r#"{"service": "grpc.testing.TestService"}"#],
            &["grpc.health.v1.Health/Check"],
            "",
        )
        .expect_code(0)
        .stdout_has(&[r#""status": "SERVING""#]);
    server
        .run(
            &["-d", r#"{"service": "no.Such"}"#],
            &["grpc.health.v1.Health/Check"],
            "",
        )
        .expect_code(64 + 5)
        .stderr_has(&["ERROR:\n  Code: NotFound\n  Message: "]);

    // Three zero bytes come back as base64, as protobuf JSON spells bytes.
    let run = server
        .run(
            &[
                "-v",
                "-H",
                "x-grpc-test-echo-initial: hello",
                "-H",
                "x-grpc-test-echo-trailing-bin: AQID",
                "-d",
                r#"{"responseSize": 3}"#,
            ],
            &["grpc.testing.TestService/UnaryCall"],
            "",
        )
        .expect_code(0)
        .stdout_has(&[
            "rpc UnaryCall ( .grpc.testing.SimpleRequest ) returns ( .grpc.testing.SimpleResponse );",
            "x-grpc-test-echo-initial: hello",
            r#""body": "AAAA""#,
            "Response trailers received:",
            "x-grpc-test-echo-trailing-bin: AQID",
            "Sent 1 request and received 1 response",
        ]);
    let headers_at = run.stdout.find("x-grpc-test-echo-initial").unwrap_or(0);
    let trailers_at = run.stdout.find("Response trailers received").unwrap_or(0);
    assert!(headers_at < trailers_at, "{run:#?}");

    server
        .run(
            &[
                "-d",
                r#"{"responseStatus": {"code": 9, "message": "not now"}}"#,
            ],
            &["grpc.testing.TestService/UnaryCall"],
            "",
        )
        .expect_code(64 + 9)
        .stderr_has(&["Code: FailedPrecondition", "Message: not now"]);
    server
        .run(&[], &["grpc.testing.TestService/UnimplementedCall"], "")
        .expect_code(64 + 12)
        .stderr_has(&["Code: Unimplemented"]);
}

#[test]
fn streaming_calls_from_arguments_and_stdin() {
    let server = InteropServer::start();
    // Client streaming from stdin: two concatenated objects, 3 + 4 bytes of payload.
    server
        .run(
            &["-d", "@"],
            &["grpc.testing.TestService/StreamingInputCall"],
            r#"{"payload": {"body": "AAAA"}} {"payload": {"body": "AAAAAA=="}}"#,
        )
        .expect_code(0)
        .stdout_has(&[r#""aggregatedPayloadSize": 7"#]);
    // Server streaming: one response per parameter.
    let run = server
        .run(
            &[
                "-v",
                "-d",
                r#"{"responseParameters": [{"size": 1}, {"size": 2}]}"#,
            ],
            &["grpc.testing.TestService/StreamingOutputCall"],
            "",
        )
        .expect_code(0)
        .stdout_has(&[
            r#""body": "AA==""#,
            r#""body": "AAA=""#,
            "Sent 1 request and received 2 responses",
        ]);
    assert!(
        run.stdout.find("AA==") < run.stdout.find("AAA="),
        "{run:#?}"
    );
    // Bidi: each request answered in turn.
    server
        .run(
            &[
                "-d",
                r#"{"responseParameters": [{"size": 1}]} {"responseParameters": [{"size": 2}]}"#,
            ],
            &["grpc.testing.TestService/FullDuplexCall"],
            "",
        )
        .expect_code(0)
        .stdout_has(&[r#""body": "AA==""#, r#""body": "AAA=""#]);
    // A service config's timeout bounds the call as -max-time does.
    server
        .run(
            &[
                "-service-config",
                r#"{"methodConfig": [{"name": [{"service": "grpc.health.v1.Health"}], "timeout": "0.3s"}]}"#,
                "-d",
                r#"{"service": ""}"#,
            ],
            &["grpc.health.v1.Health/Watch"],
            "",
        )
        .expect_code(64 + 4)
        .stdout_has(&[r#""status": "SERVING""#]);
    // Watch streams until -max-time ends it.
    server
        .run(
            &["-max-time", "0.5", "-d", r#"{"service": ""}"#],
            &["grpc.health.v1.Health/Watch"],
            "",
        )
        .expect_code(64 + 4)
        .stdout_has(&[r#""status": "SERVING""#])
        .stderr_has(&["Code: DeadlineExceeded"]);
}

#[test]
fn bad_input_is_a_usage_error_and_a_dead_target_fails_to_dial() {
    let server = InteropServer::start();
    server
        .run(
            &["-d", "{not json"],
            &["grpc.testing.TestService/UnaryCall"],
            "",
        )
        .expect_code(2)
        .stderr_has(&["-d is not JSON"]);
    server
        .run(
            &["-d", r#"{"noSuchField": 1}"#],
            &["grpc.testing.TestService/UnaryCall"],
            "",
        )
        .expect_code(2)
        .stderr_has(&["grpc.testing.SimpleRequest"]);
    server
        .run(
            &["-d", "{} {}"],
            &["grpc.testing.TestService/UnaryCall"],
            "",
        )
        .expect_code(2)
        .stderr_has(&["takes one request message"]);
    server
        .run(&[], &["grpc.testing.TestService/NoSuchMethod"], "")
        .expect_code(1)
        .stderr_has(&["NoSuchMethod"]);

    server
        .run(
            &[
                "-service-config",
                r#"{"methodConfig": [{"timeout": "soon"}]}"#,
            ],
            &["list"],
            "",
        )
        .expect_code(2)
        .stderr_has(&["-service-config", "methodConfig[0].timeout"]);

    let dead = format!("127.0.0.1:{}", closed_port());
    let started = std::time::Instant::now();
    common::anygrpc(
        &["-plaintext", "-connect-timeout", "0.3", &dead, "list"],
        "",
    )
    .expect_code(1)
    .stderr_has(&["Failed to dial target host", &dead]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn proto_files_describe_without_a_server_and_call_with_one() {
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/interop/proto");
    let files = ["-import-path", protos, "-proto", "grpc/testing/test.proto"];
    // No server at all: list and describe need none.
    let dead = format!("127.0.0.1:{}", closed_port());
    let mut args = vec!["-plaintext"];
    args.extend_from_slice(&files);
    args.extend_from_slice(&[&dead, "list"]);
    anygrpc(&args, "")
        .expect_code(0)
        .stdout_has(&["grpc.testing.TestService\n"]);

    let server = InteropServer::start();
    server
        .run(
            &files,
            &["describe", "grpc.testing.StreamingOutputCallRequest"],
            "",
        )
        .expect_code(0)
        .stdout_has(&["repeated .grpc.testing.ResponseParameters response_parameters = 2;"]);
    server
        .run(
            &[&files[..], &["-d", r#"{"responseSize": 2}"#]].concat(),
            &["grpc.testing.TestService/UnaryCall"],
            "",
        )
        .expect_code(0)
        .stdout_has(&[r#""body": "AAA=""#]);
}

/// A CA and a server certificate it issued for `localhost`, in PEM: (CA, certificate, key).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a key")).expect("a CA");
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("server parameters")
        .signed_by(&key, &ca)
        .expect("a server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn tls_is_verified_with_cacert_and_skipped_with_insecure() {
    let (ca, cert, key) = test_pki();
    let credentials =
        anygrpc_tokio::ServerCredentials::ssl(key.as_bytes(), cert.as_bytes(), None, false)
            .expect("server credentials");
    let server = InteropServer::start_with(Some(credentials));
    let ca_file = std::env::temp_dir().join(format!("anygrpc-cli-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &ca).expect("write the CA");
    let ca_path = ca_file.to_string_lossy().into_owned();
    let address = server.address.as_str();

    // The system roots do not know this CA: the handshake fails, so does the dial.
    anygrpc(&["-connect-timeout", "1", address, "list"], "")
        .expect_code(1)
        .stderr_has(&["Failed to dial target host"]);
    // Verified against the CA, for the name in the certificate.
    anygrpc(
        &[
            "-cacert",
            &ca_path,
            "-servername",
            "localhost",
            address,
            "list",
        ],
        "",
    )
    .expect_code(0)
    .stdout_has(&["grpc.testing.TestService\n"]);
    // The wrong name fails verification.
    anygrpc(
        &[
            "-connect-timeout",
            "1",
            "-cacert",
            &ca_path,
            "-servername",
            "other.test",
            address,
            "list",
        ],
        "",
    )
    .expect_code(1);
    // Not verified at all.
    anygrpc(&["-insecure", address, "list"], "")
        .expect_code(0)
        .stdout_has(&["grpc.testing.TestService\n"]);
    anygrpc(&["-insecure", "-cacert", &ca_path, address, "list"], "")
        .expect_code(2)
        .stderr_has(&["-insecure"]);
    // Cleartext to a TLS port: the TCP connection opens, the first call is UNAVAILABLE
    // (the channel counts as connected before the server's preface, unlike grpc-go's).
    anygrpc(
        &["-plaintext", "-connect-timeout", "1", address, "list"],
        "",
    )
    .expect_code(64 + 14)
    .stderr_has(&["Code: Unavailable"]);
    let _ = std::fs::remove_file(ca_file);
}
