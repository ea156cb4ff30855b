//! `bench compare`: runs anygrpc (on each executor), tonic and the raw-TCP floor side by side
//! in one invocation, pairs alternating round by round (A B A B), the server pinned to CPU 0
//! and the client to CPU 1 with `taskset`, and prints the figures and the ratios as Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Kind, Report, SCENARIOS, Scenario, WARM_UP, cpu_seconds_of};

/// One side of a pair: what serves or what calls.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// anygrpc on the named executor.
    Anygrpc(String),
    /// tonic on tokio.
    Tonic,
    /// The raw-TCP floor.
    Floor,
}

impl Side {
    fn label(&self) -> String {
        match self {
            Side::Anygrpc(rt) => format!("anygrpc-{rt}"),
            Side::Tonic => "tonic".into(),
            Side::Floor => "floor".into(),
        }
    }

    fn flags(&self) -> Vec<String> {
        match self {
            Side::Anygrpc(rt) => vec![format!("--runtime={rt}")],
            Side::Tonic => vec!["--impl=tonic".into()],
            Side::Floor => vec!["--impl=floor".into()],
        }
    }
}

/// `bench compare`'s settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds measured per run.
    pub duration_s: f64,
    /// Rounds (every pair runs once per round).
    pub rounds: usize,
    /// The scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// anygrpc's executors.
    pub runtimes: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration_s: 5.0,
            rounds: 3,
            scenarios: SCENARIOS.to_vec(),
            runtimes: crate::args::RUNTIMES
                .iter()
                .map(|r| r.to_string())
                .collect(),
        }
    }
}

/// One run's figures: the client's report and the server's CPU per 1,000 calls.
#[derive(Debug, Clone)]
struct Run {
    report: Report,
    server_cpu_per_1k: f64,
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn pinned(cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string());
            c.arg(exe());
            c
        }
        None => Command::new(exe()),
    }
}

fn exe() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "bench".into())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_pair(
    client: &Side,
    server: &Side,
    scenario: &Scenario,
    options: &Options,
    pin: bool,
) -> Result<Run, String> {
    let port = free_port()?;
    let mut command = pinned(pin.then_some(0));
    command
        .arg("server")
        .args(server.flags())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null());
    let server_child = Killed(
        command
            .spawn()
            .map_err(|e| format!("cannot start server: {e}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "{} server did not listen on {port}",
                server.label()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = server_child.0.id().to_string();
    let mut command = pinned(pin.then_some(1));
    command
        .arg("client")
        .args(client.flags())
        .args([
            "--server_host=127.0.0.1".to_string(),
            format!("--server_port={port}"),
            format!("--scenario={}", scenario.name),
            format!("--duration_s={}", options.duration_s),
        ])
        .stdout(Stdio::piped());
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start client: {e}"))?;
    // The server's CPU over (about) the client's measured window.
    std::thread::sleep(WARM_UP + Duration::from_millis(50));
    let cpu0 = cpu_seconds_of(&pid);
    std::thread::sleep(Duration::from_secs_f64(options.duration_s));
    let cpu1 = cpu_seconds_of(&pid);
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    drop(server_child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    eprintln!("{} -> {}: {line}", client.label(), server.label());
    let report = Report::from_json(line)
        .ok_or_else(|| format!("{} client printed {stdout:?}", client.label()))?;
    let calls = report.rate * options.duration_s;
    Ok(Run {
        server_cpu_per_1k: (cpu1 - cpu0) / calls * 1000.0,
        report,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Medians over the rounds of one pair.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    client_cpu: f64,
    server_cpu: f64,
    errors: u64,
}

fn figures(runs: &[Run]) -> Figures {
    let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    Figures {
        rate: m(&|r| r.report.rate),
        p50: m(&|r| r.report.p50_us.unwrap_or(f64::NAN)),
        p99: m(&|r| r.report.p99_us.unwrap_or(f64::NAN)),
        client_cpu: m(&|r| r.report.cpu_s_per_1k),
        server_cpu: m(&|r| r.server_cpu_per_1k),
        errors: runs.iter().map(|r| r.report.errors).sum(),
    }
}

fn pairs(options: &Options) -> Vec<(Side, Side)> {
    let mut pairs = vec![(Side::Tonic, Side::Tonic)];
    for rt in &options.runtimes {
        let any = Side::Anygrpc(rt.clone());
        pairs.push((any.clone(), any.clone()));
        pairs.push((Side::Tonic, any.clone()));
        pairs.push((any, Side::Tonic));
    }
    pairs.push((Side::Floor, Side::Floor));
    pairs
}

fn cell(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

fn ratio(a: f64, b: f64) -> String {
    cell(a / b, 2)
}

/// Runs everything `options` asks for; returns the Markdown report.
pub fn run(options: &Options) -> Result<String, String> {
    let pin = Command::new("taskset")
        .arg("-c")
        .arg("1")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    if !pin {
        eprintln!("bench compare: taskset -c 1 failed; running unpinned");
    }
    let pairs = pairs(options);
    let mut results: BTreeMap<(usize, usize), Vec<Run>> = BTreeMap::new();
    let started = Instant::now();
    for (si, scenario) in options.scenarios.iter().enumerate() {
        for round in 0..options.rounds {
            eprintln!(
                "== {} round {}/{}",
                scenario.name,
                round + 1,
                options.rounds
            );
            for (pi, (client, server)) in pairs.iter().enumerate() {
                let run = run_pair(client, server, scenario, options, pin)?;
                results.entry((si, pi)).or_default().push(run);
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Figures are medians of {} rounds of {} s (after 1 s warm-up), pairs alternating; server on CPU 0, client on CPU 1{}; {:.0} s in all.\n",
        options.rounds,
        options.duration_s,
        if pin {
            ""
        } else {
            " (NOT pinned: taskset failed)"
        },
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| scenario | client → server | rate | p50 µs | p99 µs | client CPU ms/1k | server CPU ms/1k | errors |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|");
    let fig = |si: usize, pi: usize| results.get(&(si, pi)).map(|r| figures(r));
    for (si, scenario) in options.scenarios.iter().enumerate() {
        for (pi, (client, server)) in pairs.iter().enumerate() {
            let Some(f) = fig(si, pi) else { continue };
            let _ = writeln!(
                out,
                "| {} | {} → {} | {} {} | {} | {} | {} | {} | {} |",
                scenario.name,
                client.label(),
                server.label(),
                cell(f.rate, 0),
                scenario.unit(),
                cell(f.p50, 0),
                cell(f.p99, 0),
                cell(f.client_cpu * 1000.0, 3),
                cell(f.server_cpu * 1000.0, 3),
                f.errors,
            );
        }
    }
    let _ = writeln!(
        out,
        "\nRatios: anygrpc over tonic in the same run (tonic → tonic is the baseline). `both`: anygrpc on both sides; `server`: tonic client → anygrpc server; `client`: anygrpc client → tonic server. CPU ratio = tonic's CPU per 1,000 over anygrpc's, for the side under test (both sides summed for `both`); > 1 means anygrpc is cheaper.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | executor | side | rate ×tonic | p50 ×tonic | p99 ×tonic | CPU/1k tonic÷anygrpc | rate ×floor | p50 ×floor | target |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|---|");
    let floor = pairs.len() - 1;
    for (si, scenario) in options.scenarios.iter().enumerate() {
        let (Some(base), floor) = (fig(si, 0), fig(si, floor)) else {
            continue;
        };
        for (ri, rt) in options.runtimes.iter().enumerate() {
            for (side, pi) in [
                ("both", 1 + 3 * ri),
                ("server", 2 + 3 * ri),
                ("client", 3 + 3 * ri),
            ] {
                let Some(f) = fig(si, pi) else { continue };
                let cpu = match side {
                    "both" => (base.client_cpu + base.server_cpu) / (f.client_cpu + f.server_cpu),
                    "server" => base.server_cpu / f.server_cpu,
                    _ => base.client_cpu / f.client_cpu,
                };
                let rate = f.rate / base.rate;
                let p50 = f.p50 / base.p50;
                let target = match (scenario.kind, scenario.name) {
                    (_, "unary-latency" | "pingpong-latency") => {
                        format!("p50 ≤ 0.7: {}", if p50 <= 0.7 { "met" } else { "MISSED" })
                    }
                    (Kind::Stream | Kind::Unary, _) => {
                        let best = rate.max(cpu);
                        format!("≥ 1.5×: {}", if best >= 1.5 { "met" } else { "MISSED" })
                    }
                    _ => String::new(),
                };
                let (floor_rate, floor_p50) = match (side, floor) {
                    ("both", Some(fl)) => (ratio(f.rate, fl.rate), ratio(f.p50, fl.p50)),
                    _ => ("".into(), "".into()),
                };
                let target = if side == "both" && scenario.name == "stream-throughput-64k" {
                    let fr = floor.map_or(f64::NAN, |fl| f.rate / fl.rate);
                    format!(
                        "{target}; ≥ 0.8 floor: {}",
                        if fr >= 0.8 { "met" } else { "MISSED" }
                    )
                } else {
                    target
                };
                let _ = writeln!(
                    out,
                    "| {} | {rt} | {side} | {} | {} | {} | {} | {floor_rate} | {floor_p50} | {target} |",
                    scenario.name,
                    cell(rate, 2),
                    cell(p50, 2),
                    ratio(f.p99, base.p99),
                    cell(cpu, 2),
                );
            }
        }
    }
    Ok(out)
}

/// Parses `bench compare`'s flags: `--duration_s`, `--rounds`, `--scenarios=a,b`, `--runtimes=a,b`.
pub fn options(flags: &crate::args::Flags) -> Result<Options, String> {
    let mut options = Options::default();
    if let Some(d) = flags.get("duration_s") {
        options.duration_s = d.parse().map_err(|_| format!("--duration_s={d}"))?;
    }
    if let Some(r) = flags.get("rounds") {
        options.rounds = r.parse().map_err(|_| format!("--rounds={r}"))?;
    }
    if let Some(list) = flags.get("scenarios") {
        options.scenarios = list
            .split(',')
            .map(|n| super::find(n).ok_or_else(|| format!("unknown scenario {n}")))
            .collect::<Result<_, _>>()?;
    }
    if let Some(list) = flags.get("runtimes") {
        options.runtimes = list.split(',').map(str::to_string).collect();
    }
    Ok(options)
}
