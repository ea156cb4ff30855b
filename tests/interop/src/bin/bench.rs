//! `bench`: anygrpc's benchmark driver on `grpc.testing.BenchmarkService`.
//!
//! - `bench server [--runtime=smol|async-std|tokio] [--impl=anygrpc|tonic|floor] --port=N`
//! - `bench client [--runtime=…] [--impl=anygrpc|tonic|floor] --server_host=H --server_port=N
//!   --scenario=NAME --duration_s=S [--server_pid=P]`: one JSON line on stdout (with
//!   `--server_pid`, the CPU process P used in the same window too).
//! - `bench client --scenario=core-inmem-unary [--duration_s=S]`: unary calls through an
//!   `anygrpc-core` client/server pair in memory, no sockets (the protocol's own cost, with
//!   allocations per call).
//! - `bench compare [--duration_s=5] [--rounds=5] [--scenarios=a,b] [--runtimes=a,b]
//!   [--baseline=PATH [--baseline_label=NAME]]`: every pair side by side, printed as Markdown
//!   tables; with a baseline (another `bench` binary, built from an earlier commit) its anygrpc
//!   pairs run beside this one's, and an after ÷ before table follows.

#![allow(
    unsafe_code,
    reason = "the counting global allocator below; see its SAFETY comment"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::future::Future;
use std::process::ExitCode;

use anygrpc_core::{CallRequest, Config, Connection, Event, Metadata, Side, Status};
use anygrpc_interop::args::{Flags, run_on};
use anygrpc_interop::bench::{self, anygrpc_side, compare, cpu_seconds, floor, tonic_side};
use bytes::{Bytes, BytesMut};

/// Counts allocations, then delegates to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is counting with atomics, which neither allocates
// nor touches the memory. `counting_allocator_counts` below exercises it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same layout as received; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (via `alloc`/`realloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds realloc's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn shuttle(from: &mut Connection, to: &mut Connection, wire: &mut BytesMut, now: Instant) -> usize {
    wire.clear();
    while from.poll_transmit(wire) > 0 {}
    if !wire.is_empty() {
        to.recv(wire, now);
    }
    wire.len()
}

/// Runs batches of `concurrency` unary calls for `duration`; returns (calls, elapsed).
fn inmem_unary(duration: Duration, concurrency: usize) -> (u64, Duration) {
    let now = Instant::now();
    let mut client = Connection::new(Side::Client, Arc::new(Config::client()), now);
    let mut server = Connection::new(Side::Server, Arc::new(Config::server()), now);
    let mut wire = BytesMut::with_capacity(256 << 10);
    let request = Bytes::new();
    let reply = Bytes::new();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < duration {
        for _ in 0..concurrency {
            let id = client
                .start_call(
                    CallRequest::new("/grpc.testing.BenchmarkService/UnaryCall", "bench"),
                    now,
                )
                .unwrap();
            client.send_message(id, request.clone(), false).unwrap();
            client.finish_sending(id).unwrap();
        }
        let mut finished = 0;
        while finished < concurrency {
            let moved = shuttle(&mut client, &mut server, &mut wire, now)
                + shuttle(&mut server, &mut client, &mut wire, now);
            while let Some(event) = server.poll_event() {
                match event {
                    Event::Message { stream, message } => {
                        server.release_capacity(stream, message.credit())
                    }
                    Event::HalfClosed { stream } => {
                        server.send_message(stream, reply.clone(), false).unwrap();
                        server
                            .send_trailers(stream, Status::ok(), Metadata::new())
                            .unwrap();
                    }
                    _ => {}
                }
            }
            while let Some(event) = client.poll_event() {
                match event {
                    Event::Message { stream, message } => {
                        client.release_capacity(stream, message.credit())
                    }
                    Event::Finished { status, .. } => {
                        assert!(status.code() == anygrpc_core::Code::Ok, "{status}");
                        finished += 1;
                    }
                    _ => {}
                }
            }
            assert!(moved > 0 || finished == concurrency, "the pair stalled");
        }
        calls += concurrency as u64;
    }
    (calls, start.elapsed())
}

fn inmem(duration_s: f64) -> String {
    let concurrency = 64;
    inmem_unary(Duration::from_millis(500), concurrency); // warm-up
    let (allocs0, bytes0, cpu0) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED.load(Ordering::Relaxed),
        cpu_seconds(),
    );
    let (calls, elapsed) = inmem_unary(Duration::from_secs_f64(duration_s), concurrency);
    let cpu = cpu_seconds() - cpu0;
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs0;
    let bytes = ALLOCATED.load(Ordering::Relaxed) - bytes0;
    let secs = elapsed.as_secs_f64();
    format!(
        "{{\"scenario\":\"core-inmem-unary\",\"client\":\"anygrpc-core\",\"rate\":{:.0},\"unit\":\"calls/s\",\"count\":{calls},\"duration_s\":{secs:.3},\"mb_per_s\":null,\"p50_us\":null,\"p90_us\":null,\"p99_us\":null,\"cpu_s\":{cpu:.3},\"cpu_s_per_1k\":{:.5},\"errors\":0,\"connections\":1,\"concurrency\":{concurrency},\"req_bytes\":0,\"resp_bytes\":0,\"allocs_per_call\":{:.2},\"alloc_bytes_per_call\":{:.0}}}",
        calls as f64 / secs,
        cpu / calls as f64 * 1000.0,
        allocs as f64 / calls as f64,
        bytes as f64 / calls as f64,
    )
}

/// Runs tonic's side: tokio with one worker, since each `bench` process owns one core, and the
/// work spawned onto that worker rather than run on the thread blocking on it, so one thread
/// carries the process's calls and connections.
fn on_tokio<T: Send + 'static>(
    work: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let work = tokio.spawn(work);
    tokio
        .block_on(work)
        .map_err(|e| format!("tonic side: {e}"))?
}

fn server(flags: &Flags) -> Result<(), String> {
    let port = flags.port("port")?;
    match flags.get("impl").unwrap_or("anygrpc") {
        "anygrpc" => run_on(flags.runtime(), |runtime| async move {
            let (server, _) = anygrpc_side::serve(runtime, port)
                .await
                .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
            server.wait_for_termination().await;
            Ok(())
        })?,
        "tonic" => on_tokio(tonic_side::serve(port)),
        "floor" => floor::serve(port).map_err(|e| format!("floor server: {e}")),
        other => Err(format!("--impl={other}: one of anygrpc, tonic, floor")),
    }
}

fn client(flags: &Flags) -> Result<String, String> {
    let name = flags.required("scenario")?;
    let duration_s: f64 = match flags.get("duration_s") {
        Some(d) => d
            .parse()
            .map_err(|_| format!("--duration_s={d} is not a number"))?,
        None => 5.0,
    };
    if name == "core-inmem-unary" {
        return Ok(inmem(duration_s));
    }
    let scenario = bench::find(name).ok_or_else(|| format!("unknown scenario {name:?}"))?;
    let host = flags.get("server_host").unwrap_or("127.0.0.1").to_string();
    let target = format!("{host}:{}", flags.port("server_port")?);
    let duration = Duration::from_secs_f64(duration_s);
    if let Some(pid) = flags.get("server_pid") {
        let pid = pid
            .parse()
            .map_err(|_| format!("--server_pid={pid} is not a process id"))?;
        bench::watch_server(pid);
    }
    let report = match flags.get("impl").unwrap_or("anygrpc") {
        "anygrpc" => {
            let label = format!("anygrpc-{}", flags.runtime());
            run_on(flags.runtime(), |runtime| async move {
                anygrpc_side::client(runtime, &label, &target, &scenario, duration).await
            })??
        }
        "tonic" => on_tokio(tonic_side::client(target, scenario, duration))?,
        "floor" => floor::client(&target, &scenario, duration)?,
        other => return Err(format!("--impl={other}: one of anygrpc, tonic, floor")),
    };
    Ok(report.to_json())
}

const USAGE: &str = "usage: bench server [--runtime=smol|async-std|tokio] [--impl=anygrpc|tonic|floor] --port=N
       bench client [--runtime=…] [--impl=…] --server_host=H --server_port=N --scenario=NAME --duration_s=S
       bench compare [--duration_s=5] [--rounds=5] [--scenarios=a,b] [--runtimes=a,b] [--baseline=PATH [--baseline_label=NAME]]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let result = Flags::parse(args).and_then(|flags| match command.as_str() {
        "server" => server(&flags).map(|()| None),
        "client" => client(&flags).map(Some),
        "compare" => compare::run(&compare::options(&flags)?).map(Some),
        _ => Err(USAGE.into()),
    });
    match result {
        Ok(out) => {
            if let Some(out) = out {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_allocator_counts() {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let v: Vec<u64> = Vec::with_capacity(100);
        assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);
        drop(v);
    }

    #[test]
    fn inmem_unary_completes_calls() {
        let (calls, _) = inmem_unary(Duration::from_millis(50), 8);
        assert!(calls >= 8 && calls % 8 == 0);
    }
}
