//! Smoke test of the `bench` binary (not a benchmark): `bench client` runs 0.2 s against an
//! anygrpc server in this process and prints one JSON line of the contract's shape.

use std::process::Command;
use std::sync::mpsc;

use anygrpc_interop::args::run_on;
use anygrpc_interop::bench::{Report, anygrpc_side};

#[test]
fn bench_client_prints_one_json_line() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        run_on("smol", |runtime| async move {
            let (server, port) = anygrpc_side::serve(runtime, 0).await.expect("listen");
            tx.send(port).expect("send port");
            server.wait_for_termination().await;
        })
    });
    let port = rx.recv().expect("server port");
    for scenario in [
        "unary-qps-1c-0b",
        "pingpong-latency",
        "stream-throughput-1k",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args([
                "client",
                "--server_host=127.0.0.1",
                &format!("--server_port={port}"),
                &format!("--scenario={scenario}"),
                "--duration_s=0.2",
            ])
            .output()
            .expect("run bench");
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).expect("utf-8");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{stdout}");
        let line = lines[0];
        let keys = [
            "scenario",
            "client",
            "rate",
            "unit",
            "count",
            "duration_s",
            "mb_per_s",
            "p50_us",
            "p90_us",
            "p99_us",
            "cpu_s",
            "cpu_s_per_1k",
            "errors",
            "connections",
            "concurrency",
            "req_bytes",
            "resp_bytes",
        ];
        let mut at = 0;
        for key in keys {
            let found = line[at..].find(&format!("\"{key}\":")).expect(key);
            at += found;
        }
        let report = Report::from_json(line).expect("parses");
        assert_eq!(report.scenario, scenario);
        assert_eq!(report.client, "anygrpc-smol");
        assert!(report.count > 0 && report.rate > 0.0, "{line}");
        assert_eq!(report.errors, 0, "{line}");
        let streaming = scenario.starts_with("stream-");
        assert_eq!(report.p50_us.is_none(), streaming, "{line}");
        assert_eq!(report.mb_per_s.is_some(), streaming, "{line}");
    }
}
