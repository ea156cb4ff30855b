//! `bench compare`: runs anygrpc (on each executor), tonic and the raw-TCP floor side by side
//! in one invocation, pairs alternating round by round (A B A B), the server pinned to CPU 0
//! and the client to CPU 1 with `taskset`, and prints the figures and the ratios as Markdown.
//! Both processes' CPU comes from `/proc/<pid>/stat`, sampled by the client at its measured
//! window's edges (its own and the server's, `--server_pid`).
//! Given `--baseline=PATH`, another `bench` binary (built from an earlier commit), it runs that
//! binary's anygrpc pairs beside this one's in every round and adds the after ÷ before table.

mod before_after;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Kind, Report, SCENARIOS, Scenario, WARM_UP, cpu_seconds_of};

/// One side of a pair: what serves or what calls.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// anygrpc on the named executor.
    Anygrpc(String),
    /// anygrpc on the named executor, from the `--baseline` binary.
    Baseline(String),
    /// tonic on tokio.
    Tonic,
    /// The raw-TCP floor.
    Floor,
}

impl Side {
    fn label(&self, options: &Options) -> String {
        match self {
            Side::Anygrpc(rt) => format!("anygrpc-{rt}"),
            Side::Baseline(rt) => {
                let label = options.baseline.as_ref().map_or("", |b| b.label.as_str());
                format!("anygrpc-{rt}@{label}")
            }
            Side::Tonic => "tonic".into(),
            Side::Floor => "floor".into(),
        }
    }

    fn flags(&self) -> Vec<String> {
        match self {
            Side::Anygrpc(rt) | Side::Baseline(rt) => vec![format!("--runtime={rt}")],
            Side::Tonic => vec!["--impl=tonic".into()],
            Side::Floor => vec!["--impl=floor".into()],
        }
    }

    /// The binary that runs this side.
    fn exe(&self, options: &Options) -> PathBuf {
        match (self, &options.baseline) {
            (Side::Baseline(_), Some(baseline)) => baseline.exe.clone(),
            _ => std::env::current_exe().unwrap_or_else(|_| "bench".into()),
        }
    }
}

/// The earlier `bench` binary that `--baseline` names, and what its rows are labelled.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Its path.
    pub exe: PathBuf,
    /// The label after `@` in its rows (`--baseline_label`, by default `before`).
    pub label: String,
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
    /// An earlier build to run beside this one, if any.
    pub baseline: Option<Baseline>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration_s: 5.0,
            rounds: 5,
            scenarios: SCENARIOS.to_vec(),
            runtimes: crate::args::RUNTIMES
                .iter()
                .map(|r| r.to_string())
                .collect(),
            baseline: None,
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

fn pinned(cpu: Option<usize>, exe: PathBuf) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string());
            c.arg(exe);
            c
        }
        None => Command::new(exe),
    }
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
    let mut command = pinned(pin.then_some(0), server.exe(options));
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
                server.label(options)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = server_child.0.id().to_string();
    let mut command = pinned(pin.then_some(1), client.exe(options));
    command
        .arg("client")
        .args(client.flags())
        .args([
            "--server_host=127.0.0.1".to_string(),
            format!("--server_port={port}"),
            format!("--scenario={}", scenario.name),
            format!("--duration_s={}", options.duration_s),
            format!("--server_pid={pid}"),
        ])
        .stdout(Stdio::piped());
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start client: {e}"))?;
    // The server's CPU over about the client's measured window, for a baseline binary whose
    // client does not sample it itself at its window's edges (`--server_pid`).
    std::thread::sleep(WARM_UP + Duration::from_millis(50));
    let cpu0 = cpu_seconds_of(&pid);
    std::thread::sleep(Duration::from_secs_f64(options.duration_s));
    let cpu1 = cpu_seconds_of(&pid);
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    drop(server_child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    eprintln!(
        "{} -> {}: {line}",
        client.label(options),
        server.label(options)
    );
    let report = Report::from_json(line)
        .ok_or_else(|| format!("{} client printed {stdout:?}", client.label(options)))?;
    let server_cpu = if report.server_cpu_s.is_finite() {
        report.server_cpu_s
    } else {
        cpu1 - cpu0
    };
    Ok(Run {
        server_cpu_per_1k: server_cpu / report.count as f64 * 1000.0,
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

/// Which side a pair judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    /// anygrpc on both sides.
    Both,
    /// tonic client → anygrpc server.
    Server,
    /// anygrpc client → tonic server.
    Client,
}

impl Judged {
    fn label(self) -> &'static str {
        match self {
            Judged::Both => "both",
            Judged::Server => "server",
            Judged::Client => "client",
        }
    }

    /// The (client, server) pair that judges `ours` on this side.
    fn pair(self, ours: &Side) -> (Side, Side) {
        match self {
            Judged::Both => (ours.clone(), ours.clone()),
            Judged::Server => (Side::Tonic, ours.clone()),
            Judged::Client => (ours.clone(), Side::Tonic),
        }
    }
}

/// Every side an anygrpc pair judges, in the order the tables list them.
const JUDGED: [Judged; 3] = [Judged::Both, Judged::Server, Judged::Client];

/// One round's ratios of an anygrpc pair to the tonic pair (and the floor) of that round.
#[derive(Debug, Clone, Copy)]
struct RoundRatios {
    rate: f64,
    p50: f64,
    p99: f64,
    /// tonic's CPU per 1,000 over anygrpc's, for the side under test.
    cpu: f64,
    floor_rate: f64,
    floor_p50: f64,
}

impl RoundRatios {
    fn of(side: Judged, run: &Run, base: &Run, floor: Option<&Run>) -> Self {
        let (a, b) = (&run.report, &base.report);
        let nan = f64::NAN;
        let cpu = match side {
            Judged::Both => {
                (b.cpu_s_per_1k + base.server_cpu_per_1k) / (a.cpu_s_per_1k + run.server_cpu_per_1k)
            }
            Judged::Server => base.server_cpu_per_1k / run.server_cpu_per_1k,
            Judged::Client => b.cpu_s_per_1k / a.cpu_s_per_1k,
        };
        Self {
            rate: a.rate / b.rate,
            p50: a.p50_us.unwrap_or(nan) / b.p50_us.unwrap_or(nan),
            p99: a.p99_us.unwrap_or(nan) / b.p99_us.unwrap_or(nan),
            cpu,
            floor_rate: floor.map_or(nan, |f| a.rate / f.report.rate),
            floor_p50: floor.map_or(nan, |f| {
                a.p50_us.unwrap_or(nan) / f.report.p50_us.unwrap_or(nan)
            }),
        }
    }
}

impl RoundRatios {
    /// The figure a target judges: p50 for latency, the better of rate and CPU for throughput.
    fn judged(latency: bool) -> fn(&RoundRatios) -> f64 {
        if latency {
            |r| r.p50
        } else {
            |r| r.rate.max(r.cpu)
        }
    }
}

/// `name: met` or `name: MISSED`.
fn verdict(name: &str, met: bool) -> String {
    format!("{name}: {}", if met { "met" } else { "MISSED" })
}

/// One figure per round, in round order.
fn figures_of(rounds: &[RoundRatios], f: fn(&RoundRatios) -> f64) -> String {
    let figures: Vec<String> = rounds.iter().map(|r| cell(f(r), 2)).collect();
    figures.join(" ")
}

/// The medians of a pair's ratios as table cells: rate, p50, p99, CPU.
fn median_cells(rounds: &[RoundRatios]) -> String {
    let m = |f: fn(&RoundRatios) -> f64| cell(median(rounds.iter().map(f).collect()), 2);
    format!(
        "{} | {} | {} | {}",
        m(|r| r.rate),
        m(|r| r.p50),
        m(|r| r.p99),
        m(|r| r.cpu)
    )
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

/// The pairs of one round, in the order they run: tonic → tonic, then for each executor and
/// each judged side the baseline's pair (if any) right before this binary's, then the floor.
fn pairs(options: &Options) -> Vec<(Side, Side)> {
    let mut pairs = vec![(Side::Tonic, Side::Tonic)];
    for rt in &options.runtimes {
        for judged in JUDGED {
            if options.baseline.is_some() {
                pairs.push(judged.pair(&Side::Baseline(rt.clone())));
            }
            pairs.push(judged.pair(&Side::Anygrpc(rt.clone())));
        }
    }
    pairs.push((Side::Floor, Side::Floor));
    pairs
}

/// The runs of `pair` in scenario `si`, round by round.
fn runs_of<'a>(
    results: &'a BTreeMap<(usize, usize), Vec<Run>>,
    pairs: &[(Side, Side)],
    si: usize,
    pair: &(Side, Side),
) -> Option<&'a [Run]> {
    let pi = pairs.iter().position(|p| p == pair)?;
    results.get(&(si, pi)).map(Vec::as_slice)
}

fn cell(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
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
                client.label(options),
                server.label(options),
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
    write_ratios(&mut out, options, &pairs, &results);
    if options.baseline.is_some() {
        before_after::write(&mut out, options, &pairs, &results);
    }
    Ok(out)
}

/// Appends the table of ratios: each anygrpc pair against tonic → tonic (and the floor) of the
/// same round, the median over the rounds, and the judged figure of each round.
fn write_ratios(
    out: &mut String,
    options: &Options,
    pairs: &[(Side, Side)],
    results: &BTreeMap<(usize, usize), Vec<Run>>,
) {
    let _ = writeln!(
        out,
        "\nRatios: anygrpc over tonic in the same round (tonic → tonic is the baseline), the median over the rounds; each round runs its pairs back to back, so a machine that speeds up or slows down between rounds moves both sides of a ratio alike. `both`: anygrpc on both sides; `server`: tonic client → anygrpc server; `client`: anygrpc client → tonic server. CPU ratio = tonic's CPU per 1,000 over anygrpc's, for the side under test (both sides summed for `both`); > 1 means anygrpc is cheaper. `by round`: the figure the target judges, round by round (p50 for latency, the better of rate and CPU for throughput; then the rate over the floor's).\n"
    );
    let _ = writeln!(
        out,
        "| scenario | executor | side | rate ×tonic | p50 ×tonic | p99 ×tonic | CPU/1k tonic÷anygrpc | rate ×floor | p50 ×floor | target | by round |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|---|---|");
    for (si, scenario) in options.scenarios.iter().enumerate() {
        let Some(base) = runs_of(results, pairs, si, &(Side::Tonic, Side::Tonic)) else {
            continue;
        };
        let floor = runs_of(results, pairs, si, &(Side::Floor, Side::Floor));
        let latency = scenario.is_latency();
        for rt in &options.runtimes {
            for side in JUDGED {
                let ours = side.pair(&Side::Anygrpc(rt.clone()));
                let Some(pair) = runs_of(results, pairs, si, &ours) else {
                    continue;
                };
                let rounds: Vec<RoundRatios> = pair
                    .iter()
                    .zip(base)
                    .enumerate()
                    .map(|(r, (run, base))| {
                        RoundRatios::of(side, run, base, floor.and_then(|f| f.get(r)))
                    })
                    .collect();
                let m = |f: fn(&RoundRatios) -> f64| median(rounds.iter().map(f).collect());
                let judged = RoundRatios::judged(latency);
                let mut target = match scenario.kind {
                    _ if latency => verdict("p50 ≤ 0.7", m(judged) <= 0.7),
                    Kind::Stream | Kind::Unary => verdict("≥ 1.5×", m(judged) >= 1.5),
                    _ => String::new(),
                };
                let mut by_round = figures_of(&rounds, judged);
                let floor_target = side == Judged::Both && scenario.name == "stream-throughput-64k";
                if floor_target {
                    target += &format!("; {}", verdict("≥ 0.8 floor", m(|r| r.floor_rate) >= 0.8));
                    by_round += &format!("; floor {}", figures_of(&rounds, |r| r.floor_rate));
                }
                let (floor_rate, floor_p50) = match side {
                    Judged::Both => (cell(m(|r| r.floor_rate), 2), cell(m(|r| r.floor_p50), 2)),
                    _ => (String::new(), String::new()),
                };
                let _ = writeln!(
                    out,
                    "| {} | {rt} | {} | {} | {floor_rate} | {floor_p50} | {target} | {by_round} |",
                    scenario.name,
                    side.label(),
                    median_cells(&rounds),
                );
            }
        }
    }
}

/// Parses `bench compare`'s flags: `--duration_s`, `--rounds`, `--scenarios=a,b`, `--runtimes=a,b`,
/// `--baseline=PATH` and `--baseline_label=NAME`.
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
    if let Some(exe) = flags.get("baseline") {
        options.baseline = Some(Baseline {
            exe: exe.into(),
            label: flags.get("baseline_label").unwrap_or("before").to_string(),
        });
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with these figures (its p99 twice its p50).
    pub(super) fn run(rate: f64, p50: f64, client_cpu: f64, server_cpu: f64) -> Run {
        Run {
            report: Report {
                scenario: "unary-latency".into(),
                client: "x".into(),
                rate,
                unit: "calls/s".into(),
                count: 1,
                duration_s: 1.0,
                mb_per_s: None,
                p50_us: Some(p50),
                p90_us: Some(p50),
                p99_us: Some(p50 * 2.0),
                cpu_s: 1.0,
                cpu_s_per_1k: client_cpu,
                errors: 0,
                connections: 1,
                concurrency: 1,
                req_bytes: 0,
                resp_bytes: 0,
                server_cpu_s: f64::NAN,
            },
            server_cpu_per_1k: server_cpu,
        }
    }

    #[test]
    fn a_ratio_compares_runs_of_the_same_round() {
        // The machine is twice as fast in the second round, for both stacks alike.
        let tonic = [run(100.0, 200.0, 4.0, 2.0), run(200.0, 100.0, 2.0, 1.0)];
        let ours = [run(150.0, 120.0, 2.0, 1.0), run(300.0, 60.0, 1.0, 0.5)];
        let rounds: Vec<RoundRatios> = ours
            .iter()
            .zip(&tonic)
            .map(|(a, b)| RoundRatios::of(Judged::Both, a, b, None))
            .collect();
        for r in &rounds {
            assert!((r.rate - 1.5).abs() < 1e-9, "{r:?}");
            assert!((r.p50 - 0.6).abs() < 1e-9, "{r:?}");
            assert!((r.cpu - 2.0).abs() < 1e-9, "both sides summed: {r:?}");
            assert!(r.floor_rate.is_nan(), "no floor run");
        }
        assert_eq!(figures_of(&rounds, |r| r.p50), "0.60 0.60");
        // The side under test alone: the server's CPU, then the client's.
        let server = RoundRatios::of(Judged::Server, &ours[0], &tonic[0], Some(&tonic[1]));
        assert!((server.cpu - 2.0).abs() < 1e-9);
        assert!((server.floor_rate - 0.75).abs() < 1e-9);
        let client = RoundRatios::of(Judged::Client, &run(1.0, 1.0, 1.0, 9.0), &tonic[0], None);
        assert!((client.cpu - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_median_skips_missing_figures() {
        assert_eq!(median(vec![3.0, f64::NAN, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        assert!(median(vec![f64::NAN]).is_nan());
    }
}
