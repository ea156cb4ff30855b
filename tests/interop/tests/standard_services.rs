//! The standard services of `interop-server`, judged by grpcio's own clients
//! (`tests/peers/python/standard_services.py`): health (grpcio-health-checking) and
//! reflection (grpcio-reflection, and raw v1 calls) on every executor.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anygrpc_examples::python_peer::{python_with_grpcio, workspace_root};

/// A running `interop-server`; killed on drop.
struct InteropServer {
    child: Child,
    port: u16,
}

impl InteropServer {
    fn start(runtime: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_interop-server"))
            .args(["--port=0", &format!("--runtime={runtime}")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start interop-server");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read its first line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("interop-server printed {line:?}"));
        Self { child, port }
    }
}

impl Drop for InteropServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the Python checks `what` against `server`; panics with their output if one failed.
fn python_checks(what: &str, server: &InteropServer) -> String {
    let python = python_with_grpcio().unwrap_or_else(|e| panic!("grpcio is required: {e}"));
    let script = workspace_root().join("tests/peers/python/standard_services.py");
    let output = Command::new(python)
        .arg(script)
        .arg(what)
        .arg(format!("--port={}", server.port))
        .output()
        .expect("run the Python checks");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} checks failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("all ok"), "{stdout}");
    stdout
}

#[test]
fn grpcio_health_checking_passes_against_interop_server_on_every_executor() {
    for runtime in ["smol", "async-std", "tokio"] {
        let server = InteropServer::start(runtime);
        let out = python_checks("health", &server);
        for check in [
            "Check('') is SERVING",
            "Check('no.Such') is NOT_FOUND",
            "Watch('no.Such') sent SERVICE_UNKNOWN and stayed open",
        ] {
            assert!(out.contains(check), "{runtime}: {out}");
        }
    }
}

#[test]
fn grpcio_reflection_describes_interop_server_on_every_executor() {
    for runtime in ["smol", "async-std", "tokio"] {
        let server = InteropServer::start(runtime);
        let out = python_checks("reflection", &server);
        for check in [
            "get_services() lists TestService, Health and reflection",
            "SimpleRequest has its fields",
            "TestService's methods resolve",
            "an unknown symbol is a KeyError",
            "v1 sends a file with its dependencies, each once per stream",
            "v1 unknown symbol is NOT_FOUND",
        ] {
            assert!(out.contains(check), "{runtime}: {out}");
        }
    }
}
