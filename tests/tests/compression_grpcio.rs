//! Compression against a real peer: a Python grpcio client (`tests/peers/python/
//! compression_client.py`, which announces `identity, deflate, gzip`) calls anygrpc's test
//! server. The server's default compression and a handler's choice reach grpcio when it
//! accepts the encoding (at any level) and never when it does not (zstd); a gzip request from
//! grpcio arrives compressed. What went on the wire is read from the server's stats handler.

#[allow(
    unused_imports,
    unused_macros,
    reason = "only the test server of the e2e support is used here"
)]
mod e2e;

use std::process::Command;
use std::sync::{Arc, Mutex};

use anygrpc::{
    CallEvent, CallInfo, CallStats, Compression, CompressionLevel, Encoding, StatsHandler,
    StatsSide,
};
use anygrpc_examples::python_peer::{python_with_grpcio, workspace_root};

/// Whether each response message a server sent was compressed.
#[derive(Debug, Clone, Default)]
struct Sent(Arc<Mutex<Vec<bool>>>);

impl Sent {
    fn take(&self) -> Vec<bool> {
        std::mem::take(&mut *self.0.lock().expect("the log"))
    }
}

impl StatsHandler for Sent {
    fn call_started(&self, call: &CallInfo<'_>) -> Option<Box<dyn CallStats>> {
        (call.side == StatsSide::Server).then(|| Box::new(self.clone()) as Box<dyn CallStats>)
    }
}

impl CallStats for Sent {
    fn record(&mut self, event: &CallEvent<'_>) {
        if let CallEvent::MessageSent { compressed, .. } = event {
            self.0.lock().expect("the log").push(*compressed);
        }
    }
}

/// Runs the grpcio client once; its one line of output.
fn grpcio_call(port: u16, encoding: &str, reply_bytes: u32, send_gzip: bool) -> String {
    let python = python_with_grpcio().expect("the Python grpcio peer is required");
    let script = workspace_root().join("tests/peers/python/compression_client.py");
    let mut command = Command::new(python);
    command.arg(script).args([
        port.to_string(),
        encoding.to_string(),
        reply_bytes.to_string(),
    ]);
    if send_gzip {
        command.arg("--send-gzip");
    }
    let output = command.output().expect("the client runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn grpcio_gets_only_the_encodings_it_announced() {
    let runtime = anygrpc_smol::runtime();
    let env = e2e::Env::real(runtime);
    let sent = Sent::default();
    let srv = smol::block_on(async {
        let srv = env.start_server().await;
        srv.server.add_stats_handler(sent.clone());
        srv
    });
    let port = srv.port;

    // No default, no choice: plain.
    assert_eq!(grpcio_call(port, "-", 50_000, false), "ok 50000 0");
    assert_eq!(sent.take(), [false]);
    // The handler's gzip, and deflate at levels: compressed, and grpcio reads them.
    assert_eq!(grpcio_call(port, "gzip", 50_000, false), "ok 50000 0");
    assert_eq!(sent.take(), [true]);
    assert_eq!(grpcio_call(port, "deflate", 50_000, false), "ok 50000 0");
    assert_eq!(sent.take(), [true]);
    // zstd is not in grpcio's grpc-accept-encoding: the handler's choice is dropped.
    assert_eq!(grpcio_call(port, "zstd", 50_000, false), "ok 50000 0");
    assert_eq!(sent.take(), [false]);

    // The server's default: gzip at its best level reaches grpcio compressed...
    srv.server
        .default_compression(Compression::new(Encoding::Gzip).with_level(CompressionLevel::Best));
    assert_eq!(grpcio_call(port, "-", 50_000, false), "ok 50000 0");
    assert_eq!(sent.take(), [true]);
    // ...identity from the handler overrides it...
    assert_eq!(grpcio_call(port, "identity", 50_000, false), "ok 50000 0");
    assert_eq!(sent.take(), [false]);
    // ...and a zstd default is never sent to it.
    srv.server.default_compression(Encoding::Zstd);
    assert_eq!(grpcio_call(port, "-", 50_000, false), "ok 50000 0");
    assert_eq!(sent.take(), [false]);

    // grpcio's gzip-compressed request arrives compressed (the handler reports it).
    assert_eq!(grpcio_call(port, "-", 10, true), "ok 10 1");
    assert_eq!(sent.take(), [false]);
    smol::block_on(srv.server.stop(None));
}
