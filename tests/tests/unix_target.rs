//! A channel whose target is `unix:<path>`, on every executor, against a real Python `grpcio`
//! Greeter listening on a Unix-domain socket.

use std::path::PathBuf;

use anygrpc::{Channel, Code};
use anygrpc_examples::helloworld::{HelloReply, HelloRequest, SAY_HELLO};
use anygrpc_examples::python_peer::GreeterServer;
use anygrpc_examples::runtimes::{RUNTIMES, run};

/// A socket path of this test's own, removed when dropped.
struct SocketPath(PathBuf);

impl SocketPath {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("anygrpc-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_unix_target_reaches_grpcio_on_every_executor() {
    let socket = SocketPath::new("greeter");
    let _server = GreeterServer::start_on_unix(&socket.0).expect("the Python grpcio peer");
    assert!(
        socket.0.exists(),
        "grpcio listens on {}",
        socket.0.display()
    );
    for name in RUNTIMES {
        let target = format!("unix:{}", socket.0.display());
        let reply = run(name, |runtime| async move {
            let channel = Channel::builder(target, runtime)
                .build()
                .expect("a unix: target");
            let say = channel.unary_unary::<HelloRequest, HelloReply>(SAY_HELLO);
            say.call(HelloRequest {
                name: (*name).to_string(),
            })
            .await
        })
        .expect("the executor runs");
        let reply = reply.unwrap_or_else(|e| panic!("{name}: served over the socket: {e}"));
        assert_eq!(reply.message, format!("Hello, {name}!"));
    }
}

#[test]
fn a_unix_target_without_a_listener_fails_unavailable() {
    let socket = SocketPath::new("nobody");
    for name in RUNTIMES {
        let target = format!("unix:{}", socket.0.display());
        let result = run(name, |runtime| async move {
            let channel = Channel::builder(target, runtime)
                .build()
                .expect("a unix: target");
            let say = channel.unary_unary::<HelloRequest, HelloReply>(SAY_HELLO);
            say.call(HelloRequest::default()).await
        })
        .expect("the executor runs");
        let error = result.expect_err("nothing listens there");
        assert_eq!(error.code(), Code::Unavailable, "{name}: {error}");
        assert!(
            error.details().contains("nobody"),
            "{name}: names the path: {error}"
        );
    }
}
