//! The `bench` binary's parts: the scenarios, the closed-loop recorder and its one-line JSON
//! report, the anygrpc and tonic sides of `grpc.testing.BenchmarkService`, the raw-TCP floor,
//! and `bench compare`, the side-by-side runner.

pub mod anygrpc_side;
pub mod compare;
pub mod floor;
pub mod tonic_side;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The warm-up before every measured window.
pub const WARM_UP: Duration = Duration::from_secs(1);

/// What a scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UnaryCall, closed loop.
    Unary,
    /// StreamingCall, one message in flight.
    PingPong,
    /// StreamingFromServer, counting received messages.
    Stream,
}

/// A named benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// The scenario's name on the command line and in the report.
    pub name: &'static str,
    /// The RPC it drives.
    pub kind: Kind,
    /// Connections.
    pub connections: usize,
    /// Calls in flight in all (spread evenly over the connections).
    pub concurrency: usize,
    /// Request payload bytes.
    pub req_bytes: usize,
    /// Response payload bytes.
    pub resp_bytes: usize,
}

const fn scenario(
    name: &'static str,
    kind: Kind,
    connections: usize,
    concurrency: usize,
    req_bytes: usize,
    resp_bytes: usize,
) -> Scenario {
    Scenario {
        name,
        kind,
        connections,
        concurrency,
        req_bytes,
        resp_bytes,
    }
}

/// The network scenarios, in the order `bench compare` runs them.
pub const SCENARIOS: &[Scenario] = &[
    scenario("unary-latency", Kind::Unary, 1, 1, 0, 0),
    scenario("unary-qps-1c-0b", Kind::Unary, 1, 64, 0, 0),
    scenario("unary-qps-1c-1k", Kind::Unary, 1, 64, 1024, 1024),
    scenario("unary-qps-4c-0b", Kind::Unary, 4, 64, 0, 0),
    scenario("unary-qps-4c-1k", Kind::Unary, 4, 64, 1024, 1024),
    scenario("pingpong-latency", Kind::PingPong, 1, 1, 0, 0),
    scenario("stream-throughput-1k", Kind::Stream, 1, 1, 0, 1024),
    scenario("stream-throughput-64k", Kind::Stream, 1, 1, 0, 64 << 10),
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<Scenario> {
    SCENARIOS.iter().copied().find(|s| s.name == name)
}

impl Scenario {
    /// Calls in flight on each connection.
    pub fn per_connection(&self) -> usize {
        self.concurrency / self.connections
    }

    /// The unit of `rate`.
    pub fn unit(&self) -> &'static str {
        match self.kind {
            Kind::Unary => "calls/s",
            Kind::PingPong => "round trips/s",
            Kind::Stream => "messages/s",
        }
    }

    /// Whether the scenario is judged by its latency (one call or message in flight).
    pub fn is_latency(&self) -> bool {
        matches!(self.name, "unary-latency" | "pingpong-latency")
    }
}

/// User + system CPU seconds of process `pid` ("self" for this one), from /proc (Linux).
pub fn cpu_seconds_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // After the parenthesised command name, utime and stime are fields 12 and 13 (0-based 11, 12).
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
    // USER_HZ is 100 on every Linux we run on.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's user + system CPU seconds.
pub fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// The server process whose CPU every [`Window`] samples at its edges, beside this one's.
static SERVER_PID: OnceLock<String> = OnceLock::new();

/// Makes every [`Window`] also sample process `pid` (the server, on this machine) at the same
/// instants as this process, so both CPU figures cover exactly the measured window
/// (`bench client --server_pid=N`, which `bench compare` passes).
pub fn watch_server(pid: u32) {
    let _ = SERVER_PID.set(pid.to_string());
}

/// CPU seconds sampled at a window's two edges: this process's and the watched server's.
#[derive(Debug, Clone, Copy)]
struct Edges {
    own: (f64, f64),
    server: (f64, f64),
}

/// The measured window: warm-up ends at `start`, measurement at `end`. The first event past
/// each edge samples this process's CPU time (and the server's, see [`watch_server`]).
#[derive(Debug)]
pub struct Window {
    /// End of the warm-up.
    pub start: Instant,
    /// End of the measurement.
    pub end: Instant,
    started: AtomicBool,
    ended: AtomicBool,
    cpu: Mutex<Edges>,
}

const UNSAMPLED: Edges = Edges {
    own: (f64::NAN, f64::NAN),
    server: (f64::NAN, f64::NAN),
};

impl Window {
    /// A window of `duration` after the warm-up, starting now.
    pub fn new(duration: Duration) -> Self {
        let start = Instant::now() + WARM_UP;
        Self {
            start,
            end: start + duration,
            started: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            cpu: Mutex::new(UNSAMPLED),
        }
    }

    /// Notes an event at `at`; true when it falls inside the window.
    pub fn tick(&self, at: Instant) -> bool {
        if at >= self.start && !self.started.swap(true, Ordering::Relaxed) {
            self.sample(|c, own, server| {
                c.own.0 = own;
                c.server.0 = server;
            });
        }
        if at >= self.end && !self.ended.swap(true, Ordering::Relaxed) {
            self.sample(|c, own, server| {
                c.own.1 = own;
                c.server.1 = server;
            });
        }
        at >= self.start && at < self.end
    }

    /// True once the measurement is over.
    pub fn over(&self) -> bool {
        let now = Instant::now();
        self.tick(now);
        now >= self.end
    }

    fn sample(&self, set: impl FnOnce(&mut Edges, f64, f64)) {
        let own = cpu_seconds();
        let server = SERVER_PID.get().map_or(f64::NAN, |pid| cpu_seconds_of(pid));
        if let Ok(mut cpu) = self.cpu.lock() {
            set(&mut cpu, own, server);
        }
    }

    /// CPU seconds this process used inside the window.
    pub fn cpu(&self) -> f64 {
        self.cpu.lock().map_or(f64::NAN, |c| c.own.1 - c.own.0)
    }

    /// CPU seconds the watched server used inside the window (NaN when none is watched).
    pub fn server_cpu(&self) -> f64 {
        self.cpu
            .lock()
            .map_or(f64::NAN, |c| c.server.1 - c.server.0)
    }

    /// The window's length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

/// One worker's results (closed loop: one call or round trip at a time).
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls, round trips or messages completed in the window.
    pub count: u64,
    /// Failed calls.
    pub errors: u64,
    /// Payload bytes received in the window.
    pub bytes: u64,
    /// Latencies in the window, in nanoseconds.
    pub latencies: Vec<u64>,
}

impl Tally {
    /// Records one call that started at `started` and ended now.
    pub fn call(&mut self, window: &Window, started: Instant, ok: bool) {
        let now = Instant::now();
        if window.tick(now) {
            if ok {
                self.count += 1;
                let nanos = (now - started).as_nanos();
                self.latencies
                    .push(u64::try_from(nanos).unwrap_or(u64::MAX));
            } else {
                self.errors += 1;
            }
        } else if !ok && now >= window.start {
            self.errors += 1;
        }
    }

    /// Records one streamed message of `bytes` payload bytes received now; `true` once the
    /// window is over. One clock read per message: at millions of messages per second the
    /// loop's own clock reads are a measurable share of a client's CPU.
    pub fn message(&mut self, window: &Window, bytes: usize) -> bool {
        let now = Instant::now();
        if window.tick(now) {
            self.count += 1;
            self.bytes += bytes as u64;
        }
        now >= window.end
    }

    /// Adds `other` into this one.
    pub fn merge(&mut self, other: Tally) {
        self.count += other.count;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.latencies.extend(other.latencies);
    }
}

/// The one JSON line `bench client` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The client, e.g. `anygrpc-smol`, `tonic`, `floor`.
    pub client: String,
    /// Calls, round trips or messages per second.
    pub rate: f64,
    /// The unit of `rate`.
    pub unit: String,
    /// Calls, round trips or messages in the window.
    pub count: u64,
    /// The window's length.
    pub duration_s: f64,
    /// Payload MB (10^6 bytes) per second, streaming only.
    pub mb_per_s: Option<f64>,
    /// Latency percentiles in microseconds (calls or round trips only).
    pub p50_us: Option<f64>,
    /// 90th percentile.
    pub p90_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// The client's user + system CPU seconds in the window.
    pub cpu_s: f64,
    /// CPU seconds per 1,000 calls (or messages).
    pub cpu_s_per_1k: f64,
    /// Failed calls.
    pub errors: u64,
    /// Connections.
    pub connections: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Request payload bytes.
    pub req_bytes: usize,
    /// Response payload bytes.
    pub resp_bytes: usize,
    /// The watched server's user + system CPU seconds in the same window (`--server_pid`),
    /// NaN (`null`) when none was watched.
    pub server_cpu_s: f64,
}

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(rank).map(|&n| n as f64 / 1000.0)
}

impl Report {
    /// The report of `scenario` run by `client` from its tally and window.
    pub fn new(scenario: &Scenario, client: &str, mut tally: Tally, window: &Window) -> Self {
        let secs = window.seconds();
        let cpu = window.cpu();
        tally.latencies.sort_unstable();
        let latency = |p| match scenario.kind {
            Kind::Stream => None,
            _ => percentile(&tally.latencies, p),
        };
        Self {
            scenario: scenario.name.into(),
            client: client.into(),
            rate: tally.count as f64 / secs,
            unit: scenario.unit().into(),
            count: tally.count,
            duration_s: secs,
            mb_per_s: (scenario.kind == Kind::Stream).then(|| tally.bytes as f64 / secs / 1e6),
            p50_us: latency(0.5),
            p90_us: latency(0.9),
            p99_us: latency(0.99),
            cpu_s: cpu,
            cpu_s_per_1k: if tally.count > 0 {
                cpu / tally.count as f64 * 1000.0
            } else {
                f64::NAN
            },
            errors: tally.errors,
            connections: scenario.connections,
            concurrency: scenario.concurrency,
            req_bytes: scenario.req_bytes,
            resp_bytes: scenario.resp_bytes,
            server_cpu_s: window.server_cpu(),
        }
    }

    /// The report as one JSON line (keys in the contract's order).
    pub fn to_json(&self) -> String {
        let num = |v: f64, digits: usize| {
            if v.is_finite() {
                format!("{v:.digits$}")
            } else {
                "null".into()
            }
        };
        let opt = |v: Option<f64>, digits| v.map_or("null".into(), |v| num(v, digits));
        format!(
            "{{\"scenario\":\"{}\",\"client\":\"{}\",\"rate\":{},\"unit\":\"{}\",\"count\":{},\"duration_s\":{},\"mb_per_s\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"cpu_s\":{},\"cpu_s_per_1k\":{},\"errors\":{},\"connections\":{},\"concurrency\":{},\"req_bytes\":{},\"resp_bytes\":{},\"server_cpu_s\":{}}}",
            self.scenario,
            self.client,
            num(self.rate, 1),
            self.unit,
            self.count,
            num(self.duration_s, 3),
            opt(self.mb_per_s, 2),
            opt(self.p50_us, 1),
            opt(self.p90_us, 1),
            opt(self.p99_us, 1),
            num(self.cpu_s, 3),
            num(self.cpu_s_per_1k, 5),
            self.errors,
            self.connections,
            self.concurrency,
            self.req_bytes,
            self.resp_bytes,
            num(self.server_cpu_s, 3),
        )
    }

    /// Parses a line [`Report::to_json`] wrote (or any JSON object with these keys, flat).
    pub fn from_json(line: &str) -> Option<Self> {
        let field = |key: &str| -> Option<&str> {
            let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
            let rest = line.get(at..)?;
            let end = if rest.starts_with('"') {
                rest.get(1..)?.find('"')? + 2
            } else {
                rest.find([',', '}'])?
            };
            Some(rest.get(..end)?.trim_matches('"'))
        };
        let float = |key: &str| field(key).and_then(|v| v.parse::<f64>().ok());
        let int = |key: &str| field(key).and_then(|v| v.parse::<u64>().ok());
        let size = |key: &str| field(key).and_then(|v| v.parse::<usize>().ok());
        Some(Self {
            scenario: field("scenario")?.into(),
            client: field("client")?.into(),
            rate: float("rate")?,
            unit: field("unit")?.into(),
            count: int("count")?,
            duration_s: float("duration_s")?,
            mb_per_s: float("mb_per_s"),
            p50_us: float("p50_us"),
            p90_us: float("p90_us"),
            p99_us: float("p99_us"),
            cpu_s: float("cpu_s").unwrap_or(f64::NAN),
            cpu_s_per_1k: float("cpu_s_per_1k").unwrap_or(f64::NAN),
            errors: int("errors")?,
            connections: size("connections")?,
            concurrency: size("concurrency")?,
            req_bytes: size("req_bytes")?,
            resp_bytes: size("resp_bytes")?,
            server_cpu_s: float("server_cpu_s").unwrap_or(f64::NAN),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_through_json() {
        let s = find("unary-qps-1c-1k").unwrap();
        let window = Window::new(Duration::from_secs(1));
        let tally = Tally {
            count: 3,
            errors: 1,
            bytes: 0,
            latencies: vec![3000, 1000, 2000],
        };
        let report = Report::new(&s, "anygrpc-smol", tally, &window);
        assert_eq!(report.p50_us, Some(2.0));
        assert_eq!(report.p99_us, Some(3.0));
        let json = report.to_json();
        assert!(json.starts_with("{\"scenario\":\"unary-qps-1c-1k\",\"client\":\"anygrpc-smol\""));
        let back = Report::from_json(&json).unwrap();
        assert_eq!(back.count, 3);
        assert_eq!(back.errors, 1);
        assert_eq!(back.concurrency, 64);
        assert_eq!(back.req_bytes, 1024);
        assert_eq!(back.mb_per_s, None);
        assert!(back.server_cpu_s.is_nan(), "no server watched: null");
        let watched = Report {
            server_cpu_s: 0.25,
            ..back
        };
        let back = Report::from_json(&watched.to_json()).unwrap();
        assert_eq!(back.server_cpu_s, 0.25);
    }

    #[test]
    fn scenarios_spread_calls_over_connections() {
        assert_eq!(find("unary-qps-4c-0b").unwrap().per_connection(), 16);
        assert_eq!(find("unary-latency").unwrap().per_connection(), 1);
        assert!(find("nope").is_none());
    }

    /// A window that started `since` ago and ends `until` from now.
    fn window(since: Duration, until: Duration) -> Window {
        let now = Instant::now();
        Window {
            start: now - since,
            end: now + until,
            started: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            cpu: Mutex::new(UNSAMPLED),
        }
    }

    #[test]
    fn a_streamed_message_is_counted_inside_the_window_and_says_when_it_is_over() {
        let mut tally = Tally::default();
        let open = window(Duration::from_secs(1), Duration::from_secs(3600));
        assert!(!tally.message(&open, 1024), "not over");
        assert_eq!((tally.count, tally.bytes), (1, 1024));
        let closed = window(Duration::from_secs(2), Duration::ZERO);
        assert!(tally.message(&closed, 1024), "over");
        assert_eq!(
            (tally.count, tally.bytes),
            (1, 1024),
            "not counted after the end"
        );
    }
}
