//! The interop matrix: every test case for every (client, server) pair that involves anygrpc —
//! anygrpc × anygrpc, anygrpc ⇄ tonic and anygrpc ⇄ Python grpcio (C-core), each on every
//! executor anygrpc runs on; then again over TLS (certificates made at start-up with rcgen,
//! the client verifying the server as `foo.test.google.fr` through `--server_host_override`)
//! for every pair.
//! Prints `PASS|FAIL|SKIP <client> -> <server> <case>` per run and `N passed, M failed`; exits
//! non-zero on any failure. SKIP is only for a case a peer's API cannot express (each listed
//! with its reason below, or reported by the peer with exit code 3).
//!
//! `INTEROP_FILTER=substring` runs only the lines containing it; `INTEROP_JOBS=n` sets the
//! parallelism (default 4).

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anygrpc_examples::python_peer::{python_with_grpcio, workspace_root};
use anygrpc_interop::TEST_CASES;
use anygrpc_interop::args::RUNTIMES;

#[path = "../../tests/tls/certs.rs"]
mod certs;

/// The name the TLS clients verify the server certificate against (the interop suite's).
const HOST_OVERRIDE: &str = "foo.test.google.fr";

/// The TLS files the peers read, in a temporary folder removed on drop.
struct TlsFiles {
    dir: PathBuf,
}

impl TlsFiles {
    fn write() -> std::io::Result<Self> {
        let pki = certs::TestPki::new();
        let dir = std::env::temp_dir().join(format!("anygrpc-interop-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("ca.pem"), &pki.ca)?;
        std::fs::write(dir.join("server.pem"), &pki.server.cert)?;
        std::fs::write(dir.join("server.key"), &pki.server.key)?;
        Ok(Self { dir })
    }
    fn flag(&self, name: &str, file: &str) -> String {
        format!("--{name}={}", self.dir.join(file).display())
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long one client run may take.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Cases a peer's API cannot express, as (client, server, case, reason); `*` matches any.
const LIMITS: &[(&str, &str, &str, &str)] = &[
    (
        "*",
        "tonic",
        "custom_metadata",
        "tonic cannot send trailing metadata with an OK unary response",
    ),
    (
        "*",
        "grpcio",
        "client_compressed_unary",
        "a grpcio server cannot tell whether a request arrived compressed",
    ),
    (
        "*",
        "grpcio",
        "client_compressed_streaming",
        "a grpcio server cannot tell whether a request arrived compressed",
    ),
];

fn python_script() -> PathBuf {
    workspace_root().join("tests/interop/peers/python/interop.py")
}

/// A program that plays one side.
#[derive(Clone, Debug)]
struct Peer {
    name: String,
    program: PathBuf,
    /// Arguments before the standard flags.
    args: Vec<String>,
    /// Speaks TLS.
    tls: bool,
}

impl Peer {
    fn anygrpc_server(runtime: &str) -> Self {
        Self {
            name: format!("anygrpc-{runtime}"),
            program: env!("CARGO_BIN_EXE_interop-server").into(),
            args: vec![format!("--runtime={runtime}")],
            tls: false,
        }
    }
    fn anygrpc_client(runtime: &str) -> Self {
        Self {
            program: env!("CARGO_BIN_EXE_interop-client").into(),
            ..Self::anygrpc_server(runtime)
        }
    }
    fn tonic(mode: &str) -> Self {
        Self {
            name: "tonic".into(),
            program: env!("CARGO_BIN_EXE_tonic-peer").into(),
            args: vec![format!("--mode={mode}")],
            tls: false,
        }
    }
    fn grpcio(python: &std::path::Path, mode: &str) -> Self {
        Self {
            name: "grpcio".into(),
            program: python.to_path_buf(),
            args: vec![
                "-u".into(),
                python_script().display().to_string(),
                mode.into(),
            ],
            tls: false,
        }
    }
    /// This server on a TLS port.
    fn tls_server(mut self, files: &TlsFiles) -> Self {
        self.args.push("--use_tls=true".into());
        self.args.push(files.flag("tls_cert_file", "server.pem"));
        self.args.push(files.flag("tls_key_file", "server.key"));
        self.tls = true;
        self
    }
    /// This client over TLS, trusting the test CA.
    fn tls_client(mut self, files: &TlsFiles) -> Self {
        self.args.push("--use_tls=true".into());
        self.args.push(files.flag("ca_file", "ca.pem"));
        self.args
            .push(format!("--server_host_override={HOST_OVERRIDE}"));
        self.tls = true;
        self
    }
}

/// A running server, killed on drop.
struct Running {
    child: Child,
    _stdin: Option<ChildStdin>,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the Python peers cache their generated stubs, keyed by the protos' contents so an
/// edited proto regenerates them.
fn python_stub_cache() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for proto in ["empty.proto", "messages.proto", "test.proto"] {
        let path = workspace_root()
            .join("tests/interop/proto/grpc/testing")
            .join(proto);
        std::fs::read(path).unwrap_or_default().hash(&mut hasher);
    }
    workspace_root().join(format!("target/interop-py-stubs-{:016x}", hasher.finish()))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start(server: &Peer) -> Result<Running, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let mut command = Command::new(&server.program);
    command
        .args(&server.args)
        .arg(format!("--port={port}"))
        .env("ANYGRPC_INTEROP_STUBS", python_stub_cache());
    if server.name == "grpcio" {
        command.arg("--exit-on-stdin-eof");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", server.program.display()))?;
    // Drain stdout so the server never blocks on it.
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .for_each(drop)
        });
    }
    let mut running = Running {
        _stdin: child.stdin.take(),
        child,
        port,
    };
    let started = Instant::now();
    while started.elapsed() < STARTUP_TIMEOUT {
        if let Ok(Some(status)) = running.child.try_wait() {
            return Err(format!("server {} exited: {status}", server.name));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(running);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "server {} did not listen within {STARTUP_TIMEOUT:?}",
        server.name
    ))
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

fn run_client(client: &Peer, port: u16, case: &str) -> Outcome {
    let mut child = match Command::new(&client.program)
        .env("ANYGRPC_INTEROP_STUBS", python_stub_cache())
        .args(&client.args)
        .args([
            "--server_host=127.0.0.1".to_string(),
            format!("--server_port={port}"),
            format!("--test_case={case}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Outcome::Fail(format!("{}: {e}", client.program.display())),
    };
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > CASE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Outcome::Fail(e.to_string()),
        }
    };
    let text = reader.join().unwrap_or_default();
    let last = text.lines().last().unwrap_or("").trim().to_string();
    match status {
        None => Outcome::Fail(format!("timed out after {CASE_TIMEOUT:?}")),
        Some(s) if s.success() => Outcome::Pass,
        Some(s) if s.code() == Some(3) => Outcome::Skip(last),
        Some(s) => Outcome::Fail(format!("{s}: {last}")),
    }
}

fn limit(client: &str, server: &str, case: &str) -> Option<&'static str> {
    let matches = |pattern: &str, name: &str| pattern == "*" || pattern == name;
    LIMITS
        .iter()
        .find(|(c, s, k, _)| matches(c, client) && matches(s, server) && *k == case)
        .map(|(.., why)| *why)
}

fn main() -> ExitCode {
    let filter = std::env::var("INTEROP_FILTER").unwrap_or_default();
    let jobs: usize = std::env::var("INTEROP_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(4);
    let began = Instant::now();

    // (client, server) pairs; each server is started once.
    let mut pairs: Vec<(Peer, Peer)> = RUNTIMES
        .iter()
        .map(|rt| (Peer::anygrpc_client(rt), Peer::anygrpc_server(rt)))
        .collect();
    let python = python_with_grpcio();
    let mut failures: Vec<String> = Vec::new();
    if let Err(e) = &python {
        failures.push(format!("FAIL grpcio: no Python with grpcio: {e}"));
    }
    for rt in RUNTIMES {
        pairs.push((Peer::anygrpc_client(rt), Peer::tonic("server")));
        pairs.push((Peer::tonic("client"), Peer::anygrpc_server(rt)));
        if let Ok(python) = &python {
            pairs.push((Peer::anygrpc_client(rt), Peer::grpcio(python, "server")));
            pairs.push((Peer::grpcio(python, "client"), Peer::anygrpc_server(rt)));
        }
    }
    let tls = TlsFiles::write();
    match &tls {
        Ok(files) => {
            let secure: Vec<(Peer, Peer)> = pairs
                .iter()
                .map(|(c, s)| (c.clone().tls_client(files), s.clone().tls_server(files)))
                .collect();
            pairs.extend(secure);
        }
        Err(e) => failures.push(format!("FAIL tls: cannot write the certificates: {e}")),
    }

    let mut servers: Vec<(String, Running)> = Vec::new();
    let mut work = Vec::new();
    for (client, server) in &pairs {
        let server_key = format!("{}{:?}", server.name, server.args);
        let port = match servers.iter().find(|(k, _)| *k == server_key) {
            Some((_, running)) => Some(running.port),
            None => match start(server) {
                Ok(running) => {
                    let port = running.port;
                    servers.push((server_key, running));
                    Some(port)
                }
                Err(e) => {
                    failures.push(format!("FAIL {} -> {}: {e}", client.name, server.name));
                    None
                }
            },
        };
        let Some(port) = port else { continue };
        for case in TEST_CASES {
            let security = if server.tls { " [tls]" } else { "" };
            let line = format!("{} -> {}{security} {case}", client.name, server.name);
            if line.contains(&filter) {
                work.push((client.clone(), server.name.clone(), port, *case, line));
            }
        }
    }

    let work = Arc::new(Mutex::new(work.into_iter()));
    let results = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
    let failed_lines = Arc::new(Mutex::new(failures));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let (work, results, failed_lines) = (&work, &results, &failed_lines);
            scope.spawn(move || {
                loop {
                    let next = work.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((client, server, port, case, line)) = next else {
                        break;
                    };
                    let started = Instant::now();
                    let outcome = match limit(&client.name, &server, case) {
                        Some(why) => Outcome::Skip(why.into()),
                        None => run_client(&client, port, case),
                    };
                    let took = started.elapsed().as_secs_f64();
                    let mut r = results.lock().unwrap_or_else(|p| p.into_inner());
                    match outcome {
                        Outcome::Pass => {
                            r.0 += 1;
                            println!("PASS {line} ({took:.2}s)");
                        }
                        Outcome::Skip(why) => {
                            r.2 += 1;
                            println!("SKIP {line}: {why}");
                        }
                        Outcome::Fail(why) => {
                            r.1 += 1;
                            println!("FAIL {line}: {why}");
                            failed_lines
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(format!("FAIL {line}: {why}"));
                        }
                    }
                }
            });
        }
    });
    drop(servers);
    drop(tls);

    let (passed, failed, skipped) = *results.lock().unwrap_or_else(|p| p.into_inner());
    let failures = failed_lines
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let setup_failures = failures.len() - failed;
    for line in &failures[..setup_failures] {
        println!("{line}");
    }
    println!(
        "{passed} passed, {} failed, {skipped} skipped ({:.1}s)",
        failed + setup_failures,
        began.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
