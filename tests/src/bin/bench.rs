//! `bench`: anygrpc's benchmark driver. For now it runs the `core-inmem-unary` scenario: unary
//! calls pushed through an `anygrpc-core` client/server pair in memory, no sockets, measuring
//! the protocol's own cost (calls per second, allocations and bytes allocated per call).
//!
//! `bench client --scenario=core-inmem-unary [--duration_s=S]` prints one JSON line.

#![allow(
    unsafe_code,
    reason = "the counting global allocator below; see its SAFETY comment"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anygrpc_core::{CallRequest, Config, Connection, Event, Metadata, Side, Status};
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

/// User + system CPU seconds of this process, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .map(str::to_string)
    };
    let scenario = flag("scenario").unwrap_or_else(|| "core-inmem-unary".into());
    let duration_s: f64 = flag("duration_s")
        .and_then(|d| d.parse().ok())
        .unwrap_or(5.0);
    if args.first().map(String::as_str) != Some("client") || scenario != "core-inmem-unary" {
        eprintln!(
            "usage: bench client --scenario=core-inmem-unary [--duration_s=S] (other scenarios: not yet)"
        );
        std::process::exit(2);
    }
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
    println!(
        "{{\"scenario\":\"core-inmem-unary\",\"client\":\"anygrpc-core\",\"rate\":{:.0},\"unit\":\"calls/s\",\"count\":{calls},\"duration_s\":{secs:.3},\"mb_per_s\":null,\"p50_us\":null,\"p90_us\":null,\"p99_us\":null,\"cpu_s\":{cpu:.3},\"cpu_s_per_1k\":{:.5},\"errors\":0,\"connections\":1,\"concurrency\":{concurrency},\"req_bytes\":0,\"resp_bytes\":0,\"allocs_per_call\":{:.2},\"alloc_bytes_per_call\":{:.0}}}",
        calls as f64 / secs,
        cpu / calls as f64 * 1000.0,
        allocs as f64 / calls as f64,
        bytes as f64 / calls as f64,
    );
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
