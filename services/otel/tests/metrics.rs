//! OtelStats on a channel and a server over the in-memory runtime: every A66 instrument is
//! there with its unit, and its points carry the right counts, attributes and sizes.

use anygrpc::testing::MemoryRuntime;
use anygrpc::{Channel, Code, Server};
use anygrpc_health::HealthClient;
use anygrpc_health::pb::HealthCheckRequest;
use anygrpc_otel::OtelStats;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use prost::Message as _;

/// One data point: instrument, unit, attributes (`k=v` sorted), count, sum.
#[derive(Debug)]
struct Point {
    name: String,
    unit: String,
    attrs: Vec<String>,
    count: u64,
    sum: f64,
}

fn points(exporter: &InMemoryMetricExporter) -> Vec<Point> {
    let all = exporter.get_finished_metrics().expect("metrics");
    let last = all.last().expect("a collection");
    let mut out = Vec::new();
    for scope in last.scope_metrics() {
        for m in scope.metrics() {
            let mut push = |attrs: Vec<String>, count: u64, sum: f64| {
                let mut attrs = attrs;
                attrs.sort();
                out.push(Point {
                    name: m.name().to_string(),
                    unit: m.unit().to_string(),
                    attrs,
                    count,
                    sum,
                })
            };
            let kv = |it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                it.map(|k| format!("{}={}", k.key, k.value))
                    .collect::<Vec<_>>()
            };
            match m.data() {
                AggregatedMetrics::U64(MetricData::Sum(s)) => {
                    for p in s.data_points() {
                        push(kv(&mut p.attributes()), p.value(), p.value() as f64);
                    }
                }
                AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        push(kv(&mut p.attributes()), p.count(), p.sum() as f64);
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        push(kv(&mut p.attributes()), p.count(), p.sum());
                    }
                }
                other => panic!("unexpected data {other:?}"),
            }
        }
    }
    out
}

fn find<'a>(points: &'a [Point], name: &str, attrs: &[&str]) -> &'a Point {
    let mut want: Vec<String> = attrs.iter().map(|s| s.to_string()).collect();
    want.sort();
    points
        .iter()
        .find(|p| p.name == name && p.attrs == want)
        .unwrap_or_else(|| panic!("no {name} {want:?} in {points:#?}"))
}

#[test]
fn unary_calls_record_every_instrument_with_counts_attributes_and_sizes() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let stats = OtelStats::new(&provider);

    let rt = MemoryRuntime::new();
    let server = Server::new(rt.handle());
    server.add_stats_handler(stats.clone());
    let _health = anygrpc_health::serve_on(&server);
    let port = rt
        .block_on(server.add_insecure_port("127.0.0.1:0"))
        .expect("a port");
    server.start();
    let target = format!("127.0.0.1:{port}");
    let channel = Channel::builder(target.clone(), rt.handle())
        .stats_handler(stats)
        .build()
        .expect("a valid target");
    let client = HealthClient::new(channel);
    let ok_req = HealthCheckRequest {
        service: String::new(),
    };
    let bad_req = HealthCheckRequest {
        service: "x.Y".into(),
    };
    let ok_resp_len = rt.block_on(async {
        let r1 = client.check(ok_req.clone()).await.expect("ok");
        client.check(ok_req.clone()).await.expect("ok");
        let err = client.check(bad_req.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        r1.encoded_len()
    });
    provider.force_flush().expect("flush");
    let p = points(&exporter);

    let m = "grpc.method=grpc.health.v1.Health/Check";
    let t = format!("grpc.target={target}");
    let (ok, nf) = ("grpc.status=OK", "grpc.status=NOT_FOUND");

    let started = find(&p, "grpc.client.attempt.started", &[m, &t]);
    assert_eq!((started.unit.as_str(), started.count), ("{attempt}", 3));
    for (name, unit) in [
        ("grpc.client.attempt.duration", "s"),
        ("grpc.client.call.duration", "s"),
    ] {
        let pt = find(&p, name, &[m, &t, ok]);
        assert_eq!((pt.unit.as_str(), pt.count), (unit, 2), "{name}");
        assert!(pt.sum > 0.0, "{name}");
        assert_eq!(find(&p, name, &[m, &t, nf]).count, 1, "{name}");
    }
    let sent = find(
        &p,
        "grpc.client.attempt.sent_total_compressed_message_size",
        &[m, &t, ok],
    );
    assert_eq!((sent.unit.as_str(), sent.count), ("By", 2));
    assert_eq!(sent.sum, (2 * ok_req.encoded_len()) as f64);
    let sent_nf = find(
        &p,
        "grpc.client.attempt.sent_total_compressed_message_size",
        &[m, &t, nf],
    );
    assert_eq!(sent_nf.sum, bad_req.encoded_len() as f64);
    let rcvd = find(
        &p,
        "grpc.client.attempt.rcvd_total_compressed_message_size",
        &[m, &t, ok],
    );
    assert_eq!(
        (rcvd.unit.as_str(), rcvd.sum),
        ("By", (2 * ok_resp_len) as f64)
    );

    let s_started = find(&p, "grpc.server.call.started", &[m]);
    assert_eq!((s_started.unit.as_str(), s_started.count), ("{call}", 3));
    let s_dur = find(&p, "grpc.server.call.duration", &[m, ok]);
    assert_eq!((s_dur.unit.as_str(), s_dur.count), ("s", 2));
    assert!(s_dur.sum > 0.0);
    assert_eq!(find(&p, "grpc.server.call.duration", &[m, nf]).count, 1);
    let s_rcvd = find(
        &p,
        "grpc.server.call.rcvd_total_compressed_message_size",
        &[m, ok],
    );
    assert_eq!(
        (s_rcvd.unit.as_str(), s_rcvd.sum),
        ("By", (2 * ok_req.encoded_len()) as f64)
    );
    let s_sent = find(
        &p,
        "grpc.server.call.sent_total_compressed_message_size",
        &[m, ok],
    );
    assert_eq!(
        (s_sent.unit.as_str(), s_sent.sum),
        ("By", (2 * ok_resp_len) as f64)
    );
}

#[test]
fn a_method_filter_records_rejected_names_as_other() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let stats = OtelStats::builder()
        .method_filter(|name| !name.starts_with("grpc.health."))
        .build(&provider);
    let rt = MemoryRuntime::new();
    let server = Server::new(rt.handle());
    server.add_stats_handler(stats);
    let _health = anygrpc_health::serve_on(&server);
    let channel = rt.serve(&server);
    let client = HealthClient::new(channel);
    rt.block_on(async {
        client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("ok")
    });
    provider.force_flush().expect("flush");
    let p = points(&exporter);
    assert_eq!(
        find(&p, "grpc.server.call.started", &["grpc.method=other"]).count,
        1
    );
    assert!(
        !p.iter()
            .any(|pt| pt.attrs.iter().any(|a| a.contains("Health/Check")))
    );
}
