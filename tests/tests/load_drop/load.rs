//! `h2load` (nghttp2's HTTP/2 load generator) against an anygrpc server: thousands of streams
//! open at once, every one a valid gRPC unary call, and the server must answer each of them.
//!
//! The first calls are held in their handler until as many as h2load may open are there at
//! once, so the server really serves thousands of calls together (were it unable to, h2load
//! would give up after 10 s of inactivity and the case would fail with its report).
//!
//! h2load sees only HTTP statuses, not the `grpc-status` trailer, so each case checks the
//! trailers another way: the handler counts the calls it answered (with OK, by construction),
//! and `nghttp -v` (same package), which prints every frame it receives, must show
//! `grpc-status: 0` once per request of a concurrent batch.
//!
//! The server advertises SETTINGS_MAX_CONCURRENT_STREAMS 1024 (the default). A client that
//! honours it, as h2load and every gRPC client do, keeps the calls beyond the limit queued on
//! its side until a stream slot frees: with `-m` above 1024 every request still succeeds, none
//! is refused. Only a client that ignores the setting gets REFUSED_STREAM for the excess streams
//! (which gRPC clients retry transparently); the core's hostile-peer tests cover that one
//! (`client_ignoring_max_concurrent_streams_is_refused_then_cut_off`).

use std::future::poll_fn;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use anygrpc::{Config, Metadata, RuntimeRef, Server, ServerCall, Status};
use bytes::Bytes;

use super::off_executor;

/// The method h2load calls.
const PATH: &str = "/load.Load/Echo";
/// The request message: a protobuf `StringValue`-like message, field 1 = "load".
const REQUEST: &[u8] = b"\x0a\x04load";

/// The Debian package that provides `h2load` and `nghttp`.
const PACKAGE: &str = "nghttp2-client";

/// Holds the first calls in their handler until `size` of them are there at once, then lets
/// every call through: getting past it proves the server had `size` calls open together.
#[derive(Debug)]
struct Crowd {
    size: u64,
    state: Mutex<CrowdState>,
}

#[derive(Debug, Default)]
struct CrowdState {
    arrived: u64,
    waiting: Vec<Waker>,
}

impl Crowd {
    fn new(size: u64) -> Self {
        Self {
            size,
            state: Mutex::default(),
        }
    }

    /// Joins the crowd; completes once it has gathered.
    async fn gather(&self) {
        let mut joined = false;
        poll_fn(|cx| {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if !joined {
                joined = true;
                state.arrived += 1;
                if state.arrived == self.size {
                    state.waiting.drain(..).for_each(Waker::wake);
                }
            }
            if state.arrived >= self.size {
                return Poll::Ready(());
            }
            state.waiting.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// An anygrpc server whose one handler echoes [`REQUEST`] and counts what it saw.
struct LoadServer {
    server: Server,
    port: u16,
    /// Calls answered with the echo and OK.
    answered: Arc<AtomicU64>,
    /// Calls whose request was not [`REQUEST`] (answered INVALID_ARGUMENT).
    malformed: Arc<AtomicU64>,
}

impl LoadServer {
    /// Starts the server; its handlers answer once `crowd` calls were open at once.
    async fn start(runtime: RuntimeRef, crowd: u64) -> Self {
        let server = Server::new(runtime);
        let answered = Arc::new(AtomicU64::new(0));
        let malformed = Arc::new(AtomicU64::new(0));
        let (ok, bad) = (answered.clone(), malformed.clone());
        let crowd = Arc::new(Crowd::new(crowd));
        server.add_generic_handler(PATH, move |mut call: ServerCall| {
            let (ok, bad, crowd) = (ok.clone(), bad.clone(), crowd.clone());
            Box::pin(async move {
                crowd.gather().await;
                let request = call.recv().await;
                if !matches!(&request, Some(Ok(message)) if message.as_ref() == REQUEST) {
                    bad.fetch_add(1, Ordering::Relaxed);
                    let status = Status::invalid_argument(format!("unexpected {request:?}"));
                    call.finish(status, Metadata::new());
                    return;
                }
                if call.send(Bytes::from_static(REQUEST)).await.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                call.finish(Status::ok(), Metadata::new());
            })
        });
        let port = server
            .add_insecure_port("127.0.0.1:0")
            .await
            .expect("bind the load server");
        server.start();
        Self {
            server,
            port,
            answered,
            malformed,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// Writes the length-prefixed request body for `-d` and returns its path (unique per
    /// server: cases run in parallel).
    fn request_file(&self) -> String {
        let path = format!(
            "{}/h2load-request-{}.bin",
            env!("CARGO_TARGET_TMPDIR"),
            self.port
        );
        let mut body = vec![0u8];
        body.extend_from_slice(&u32::try_from(REQUEST.len()).expect("small").to_be_bytes());
        body.extend_from_slice(REQUEST);
        std::fs::write(&path, body).expect("write the h2load request body");
        path
    }
}

/// Runs `tool` with `args` off the executor and returns its standard output, or panics saying
/// how to install it: a load test without its load generator fails, it never skips.
async fn run_tool(tool: &'static str, args: Vec<String>) -> String {
    off_executor::run(move || {
        if let Err(e) = anygrpc_tests::debian_tool::ensure(tool, PACKAGE) {
            panic!(
                "`{tool}` is required by this test and could not be installed: {e}\n\
                 install it with `apt-get install -y {PACKAGE}` (Debian)"
            );
        }
        let output = Command::new(tool).args(&args).output().unwrap_or_else(|e| {
            panic!("`{tool}` is required by this test and could not be run: {e}")
        });
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{tool} {args:?} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    })
    .await
}

/// The gRPC request headers, for h2load and nghttp (`-d` makes the method POST).
fn grpc_headers() -> Vec<String> {
    ["content-type: application/grpc", "te: trailers"]
        .iter()
        .flat_map(|h| ["-H".to_string(), (*h).to_string()])
        .collect()
}

/// What h2load reports.
#[derive(Debug, Default, PartialEq, Eq)]
struct H2loadSummary {
    total: u64,
    succeeded: u64,
    failed: u64,
    errored: u64,
    timeout: u64,
    status_2xx: u64,
    /// The `finished in ...` line.
    finished: String,
}

/// Parses h2load's `requests:` and `status codes:` lines.
fn parse_h2load(output: &str) -> H2loadSummary {
    let mut summary = H2loadSummary::default();
    // "requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, ..."
    let counts = |line: &str| -> Vec<(String, u64)> {
        line.split(',')
            .filter_map(|part| {
                let mut words = part.split_whitespace().rev();
                let name = words.next()?.to_string();
                let value = words.next()?.parse().ok()?;
                Some((name, value))
            })
            .collect()
    };
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("requests: ") {
            for (name, value) in counts(rest) {
                match name.as_str() {
                    "total" => summary.total = value,
                    "succeeded" => summary.succeeded = value,
                    "failed" => summary.failed = value,
                    "errored" => summary.errored = value,
                    "timeout" => summary.timeout = value,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            for (name, value) in counts(rest) {
                if name == "2xx" {
                    summary.status_2xx = value;
                }
            }
        } else if line.starts_with("finished in ") {
            summary.finished = line.to_string();
        }
    }
    summary
}

/// Runs h2load with `requests` requests over `clients` connections, `streams` concurrent
/// streams each, and asserts that every request succeeded and the handler answered it, after
/// holding the first calls until `crowd` of them were open at once.
async fn h2load(rt: RuntimeRef, requests: u64, clients: u64, streams: u64, crowd: u64) {
    let server = LoadServer::start(rt, crowd).await;
    let body = server.request_file();
    let mut args: Vec<String> = vec![
        format!("--requests={requests}"),
        format!("--clients={clients}"),
        format!("--max-concurrent-streams={streams}"),
        format!("--data={body}"),
        // A stuck server makes h2load give up and report, well within the case's time limit.
        "--connection-inactivity-timeout=10s".to_string(),
    ];
    args.extend(grpc_headers());
    args.push(server.url());
    let output = run_tool("h2load", args).await;
    let summary = parse_h2load(&output);
    println!(
        "h2load: {requests} requests, {clients} connections x {streams} streams: {}",
        summary.finished
    );
    assert_eq!(
        summary,
        H2loadSummary {
            total: requests,
            succeeded: requests,
            status_2xx: requests,
            finished: summary.finished.clone(),
            ..H2loadSummary::default()
        },
        "every request succeeds:\n{output}"
    );
    assert_eq!(server.malformed.load(Ordering::Relaxed), 0, "{output}");
    assert_eq!(
        server.answered.load(Ordering::Relaxed),
        requests,
        "the handler answered every call"
    );

    // The trailers h2load cannot see: a concurrent batch through nghttp, every frame printed.
    let batch = 200;
    let mut args = vec![
        "--verbose".to_string(),
        "--null-out".to_string(),
        format!("--multiply={batch}"),
        format!("--data={body}"),
    ];
    args.extend(grpc_headers());
    args.push(server.url());
    let frames = run_tool("nghttp", args).await;
    let statuses: Vec<&str> = frames
        .lines()
        .filter_map(|line| {
            line.split_once("grpc-status: ")
                .map(|(_, code)| code.trim())
        })
        .collect();
    assert_eq!(statuses.len(), batch, "one grpc-status per call:\n{frames}");
    assert!(statuses.iter().all(|code| *code == "0"), "{statuses:?}");
    assert_eq!(
        server.answered.load(Ordering::Relaxed),
        requests + u64::try_from(batch).expect("small")
    );
    server.server.stop(None).await;
}

/// 8 connections × 512 streams, 20,000 calls in all: the first 4,096 are all in their handler
/// at once before any is answered.
pub async fn h2load_thousands_of_concurrent_streams(rt: RuntimeRef) {
    h2load(rt, 20_000, 8, 512, 8 * 512).await;
}

/// 2 connections × 1,500 streams, above the server's limit of 1,024 per connection: the server
/// serves 1,024 calls at once on each, h2load honours SETTINGS_MAX_CONCURRENT_STREAMS and
/// queues the rest, and every call succeeds.
pub async fn h2load_over_the_stream_limit(rt: RuntimeRef) {
    let limit = u64::from(Config::server().max_concurrent_streams);
    h2load(rt, 6_000, 2, 1_500, 2 * limit).await;
}
