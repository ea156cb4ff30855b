//! Runs every feature example binary and checks the key lines of what it printed, so that an
//! example that breaks (or stops showing what it is for) fails here.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `binary`, requires a clean exit, and returns its stdout.
fn run(name: &str, binary: &str) -> String {
    let started = Instant::now();
    let output = Command::new(binary)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.status
    );
    // The examples are meant to be quick (each well under 2 s alone; the bound leaves room for
    // a loaded machine): a slow one is a bug, a sleep too long or a hang until a timeout.
    assert!(
        elapsed < Duration::from_secs(5),
        "{name} took {elapsed:?}:\n{stdout}"
    );
    stdout
}

/// Requires each of `expected` to occur in some line of `stdout`.
fn expect(name: &str, stdout: &str, expected: &[&str]) {
    for want in expected {
        assert!(
            stdout.lines().any(|line| line.contains(want)),
            "{name}: no line contains {want:?} in:\n{stdout}"
        );
    }
}

#[test]
fn tokio_main() {
    let out = run("tokio_main", env!("CARGO_BIN_EXE_tokio_main"));
    expect(
        "tokio_main",
        &out,
        &[
            "server listening on 127.0.0.1:",
            "reply: Hello, tokio!",
            "empty name: INVALID_ARGUMENT (name must not be empty)",
            "server stopped",
        ],
    );
}

#[test]
fn smol_main() {
    let out = run("smol_main", env!("CARGO_BIN_EXE_smol_main"));
    expect(
        "smol_main",
        &out,
        &[
            "reply: Hello, smol!",
            "empty name: INVALID_ARGUMENT",
            "server stopped",
        ],
    );
}

#[test]
fn tls() {
    let out = run("tls", env!("CARGO_BIN_EXE_tls"));
    expect(
        "tls",
        &out,
        &[
            "TLS: Hello, tls! (ssl, no client certificate)",
            "mTLS: Hello, mtls! (ssl, your certificate says you are billing.client.example)",
            "mTLS without a client certificate: UNAVAILABLE",
        ],
    );
}

#[test]
fn bearer_token() {
    let out = run("bearer_token", env!("CARGO_BIN_EXE_bearer_token"));
    expect(
        "bearer_token",
        &out,
        &[
            "no token: refused, UNAUTHENTICATED (missing or invalid bearer token)",
            "fixed token: Hello, fixed token! (token of ada)",
            "wrong token: refused, UNAUTHENTICATED",
            "fetched a new token: carol-session-1",
            "refreshing #2: Hello, refreshing #2! (token of carol)",
            "fetched a new token: carol-session-2",
            "refreshing #3: Hello, refreshing #3! (token of carol)",
            "interceptor: \"bob-expired\" was refused",
            "interceptor #1: refused, UNAUTHENTICATED",
            "interceptor #2: Hello, interceptor #2! (token of bob)",
        ],
    );
    // Two tokens for three calls: the cached one is reused once.
    assert_eq!(out.matches("fetched a new token").count(), 2, "{out}");
}

#[test]
fn metadata() {
    let out = run("metadata", env!("CARGO_BIN_EXE_metadata"));
    expect(
        "metadata",
        &out,
        &[
            "server: x-request-id = req-42, x-trace-bin = [01, 02, ff]",
            "client: initial metadata: x-served-by: greeter-1, x-request-id: req-42",
            "client: reply: Hello, you!",
            "client: trailing metadata: x-cost: 3, x-checksum-bin: [de, ad, be, ef]",
            "client: x-checksum-bin = [de, ad, be, ef]",
            "client: status: OK",
            "client: failed NOT_FOUND with trailing metadata: x-cost: 3",
        ],
    );
}

#[test]
fn deadlines() {
    let out = run("deadlines", env!("CARGO_BIN_EXE_deadlines"));
    expect(
        "deadlines",
        &out,
        &[
            "server: call 1 started, ",
            " ms left",
            "client: call 1 failed DEADLINE_EXCEEDED after ",
            "server: call 1 cancelled after ",
            "server: call 1 done callback ran",
            "server: call 2 started, no deadline",
            "client: call 2 done() = false",
            "client: cancel() = true",
            "client: call 2 done callback ran",
            "client: call 2 done() = true, cancelled() = true",
            "client: call 2 failed CANCELLED",
            "server: call 2 cancelled after ",
            "server: call 2 done callback ran",
        ],
    );
}

#[test]
fn error_details() {
    let out = run("error_details", env!("CARGO_BIN_EXE_error_details"));
    expect(
        "error_details",
        &out,
        &[
            "reply: Hello, ada!",
            "status: INVALID_ARGUMENT (invalid name \"\")",
            "bad request: name: must be 1 to 10 characters",
            "help: naming rules <https://example.com/docs/names>",
            "status: PERMISSION_DENIED (blocked)",
            "error info: USER_BLOCKED in greeter.example.com [(\"user\", \"mallory\")]",
            "retry in 30 s",
        ],
    );
}

#[test]
fn round_robin() {
    let out = run("round_robin", env!("CARGO_BIN_EXE_round_robin"));
    expect(
        "round_robin",
        &out,
        &[
            "target: ipv4:///127.0.0.1:",
            "all three connected after ",
            "greets call 6",
            "calls per server: {\"server-a\": 2, \"server-b\": 2, \"server-c\": 2}",
        ],
    );
    // In turn: no server answers two calls in a row.
    let order: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" greets call "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(order.len(), 6, "{out}");
    assert!(order.windows(2).all(|w| w[0] != w[1]), "{out}");
}

#[test]
fn graceful_shutdown() {
    let out = run("graceful_shutdown", env!("CARGO_BIN_EXE_graceful_shutdown"));
    expect(
        "graceful_shutdown",
        &out,
        &[
            "server: 100 ms job started",
            "server: 10000 ms job started",
            "stopping with a grace of 300 ms",
            "new call during stop: UNAVAILABLE",
            "stop returned after ",
            "server: 100 ms job finished",
            "server: 10000 ms job cancelled",
            "short call: 100 ms job done",
            "long call: UNAVAILABLE",
            "wait_for_termination returned",
        ],
    );
}

#[test]
fn unix_socket() {
    let out = run("unix_socket", env!("CARGO_BIN_EXE_unix_socket"));
    expect(
        "unix_socket",
        &out,
        &[
            "server listening on unix:",
            "socket file exists: true",
            "reply: Hello, unix (peer unix:)!",
            "socket file exists after stop: false",
        ],
    );
}
