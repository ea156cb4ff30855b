//! gRFC A66's instruments, with its names, units and recommended bucket boundaries.

use opentelemetry::metrics::{Counter, Histogram, Meter};

/// A66's latency buckets, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005,
    0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16,
    0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

/// A66's size buckets, in bytes.
pub const SIZE_BUCKETS: &[f64] = &[
    0.0,
    1024.0,
    2048.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
];

/// Every instrument A66 defines per attempt, per call and per server call.
#[derive(Debug, Clone)]
pub(crate) struct Instruments {
    pub(crate) attempt_started: Counter<u64>,
    pub(crate) attempt_duration: Histogram<f64>,
    pub(crate) attempt_sent_size: Histogram<u64>,
    pub(crate) attempt_rcvd_size: Histogram<u64>,
    pub(crate) call_duration: Histogram<f64>,
    pub(crate) server_started: Counter<u64>,
    pub(crate) server_duration: Histogram<f64>,
    pub(crate) server_sent_size: Histogram<u64>,
    pub(crate) server_rcvd_size: Histogram<u64>,
}

fn latency(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(LATENCY_BUCKETS.to_vec())
        .build()
}

fn size(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<u64> {
    meter
        .u64_histogram(name)
        .with_unit("By")
        .with_description(description)
        .with_boundaries(SIZE_BUCKETS.to_vec())
        .build()
}

impl Instruments {
    /// Creates them all on `meter`.
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            attempt_started: meter
                .u64_counter("grpc.client.attempt.started")
                .with_unit("{attempt}")
                .with_description("Call attempts started by the client.")
                .build(),
            attempt_duration: latency(
                meter,
                "grpc.client.attempt.duration",
                "Time from an attempt's start to its end.",
            ),
            attempt_sent_size: size(
                meter,
                "grpc.client.attempt.sent_total_compressed_message_size",
                "Bytes of messages an attempt sent, as on the wire.",
            ),
            attempt_rcvd_size: size(
                meter,
                "grpc.client.attempt.rcvd_total_compressed_message_size",
                "Bytes of messages an attempt received, as on the wire.",
            ),
            call_duration: latency(
                meter,
                "grpc.client.call.duration",
                "Time from a call's start to its end, all attempts included.",
            ),
            server_started: meter
                .u64_counter("grpc.server.call.started")
                .with_unit("{call}")
                .with_description("Calls the server began.")
                .build(),
            server_duration: latency(
                meter,
                "grpc.server.call.duration",
                "Time from a server call's start to its end.",
            ),
            server_sent_size: size(
                meter,
                "grpc.server.call.sent_total_compressed_message_size",
                "Bytes of messages a server call sent, as on the wire.",
            ),
            server_rcvd_size: size(
                meter,
                "grpc.server.call.rcvd_total_compressed_message_size",
                "Bytes of messages a server call received, as on the wire.",
            ),
        }
    }
}
