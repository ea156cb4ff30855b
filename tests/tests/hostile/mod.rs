//! The hostile-peer suite, written once and run on every executor over loopback TCP, and on
//! the memory runtime over its pipes ([`memory`]).
//!
//! A raw peer ([`peer::Peer`], a blocking connection on its own thread) speaks hand-built HTTP/2 to
//! the real anygrpc `Server` (server cases) or answers the real anygrpc `Channel` (client
//! cases). Each case asserts the error code that reached the peer (GOAWAY, RST_STREAM,
//! `grpc-status`) or the status the call reported, that the server still serves a fresh
//! connection afterwards, and, for the attacks, that memory grew by at most a stated bound
//! (measured by the counting allocator of [`alloc`]; the cases of a binary run one at a time).
//!
//! Each runtime's test file (`hostile_smol.rs`, ..., `hostile_memory.rs`) gives the suite a
//! runner through [`hostile_suite!`].
#![allow(
    dead_code,
    reason = "each runtime's test binary uses a different part of the support code"
)]
#![allow(
    unreachable_pub,
    reason = "support items are shared by the test binaries through `mod hostile`"
)]

pub mod advisory_cases;
pub mod alloc;
pub mod client_cases;
pub mod flood_cases;
pub mod grpc_cases;
pub mod h2_cases;
pub mod memory;
pub mod peer;
pub mod resource_cases;
#[path = "../e2e/service.rs"]
pub mod service;

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use anygrpc::{BackoffConfig, Channel, Config, RuntimeRef, Server};
use futures_util::future::{Either, select};

use service::{ECHO, Ping, Probe, TestService};

/// The counting allocator, installed in every binary that includes this suite.
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// How long a case may run before it fails as hung.
pub const CASE_LIMIT: Duration = Duration::from_secs(30);

/// What a case runs on.
#[derive(Debug, Clone)]
pub struct Env {
    /// The executor under test.
    pub runtime: RuntimeRef,
}

/// A started anygrpc server with the test service.
#[derive(Debug, Clone)]
pub struct TestServer {
    /// The server.
    pub server: Server,
    /// Its loopback port.
    pub port: u16,
    /// What its handlers observed.
    pub probe: Probe,
}

impl Env {
    /// Waits `by` on the runtime's clock.
    pub async fn sleep(&self, by: Duration) {
        self.runtime.sleep_until(self.runtime.now() + by).await;
    }

    /// A server with the default limits, started on a port the system picks.
    pub async fn server(&self) -> TestServer {
        self.server_with(Config::server()).await
    }

    /// A server with `config`, started on a port the system picks.
    pub async fn server_with(&self, config: Config) -> TestServer {
        let server = Server::with_config(self.runtime.clone(), config);
        let probe = Probe::default();
        server.add_service(TestService::new(self.runtime.clone(), probe.clone()));
        let port = server
            .add_insecure_port("127.0.0.1:0")
            .await
            .expect("bind the test server");
        server.start();
        TestServer {
            server,
            port,
            probe,
        }
    }

    /// A channel to `127.0.0.1:port` with a short reconnect backoff.
    pub fn channel(&self, port: u16) -> Channel {
        Channel::builder(format!("127.0.0.1:{port}"), self.runtime.clone())
            .backoff(BackoffConfig {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(200),
                ..BackoffConfig::default()
            })
            .build()
            .expect("a valid target")
    }

    /// Asserts the server answers a normal unary call on a fresh connection, then closes
    /// that channel.
    pub async fn assert_serves(&self, srv: &TestServer) {
        let channel = self.channel(srv.port);
        let echo = channel.unary_unary::<Ping, Ping>(ECHO);
        match echo.call(Ping::text("still there?")).await {
            Ok(reply) => assert_eq!(reply.text, "still there?"),
            Err(error) => panic!("a fresh call after the attack failed: {error:?}"),
        }
        channel.close(None).await;
    }

    /// Asserts a fresh call is served, then stops the server.
    pub async fn assert_serves_then_stop(&self, srv: &TestServer) {
        self.assert_serves(srv).await;
        srv.server.stop(None).await;
    }
}

/// Runs `work` (a raw peer's blocking script) on its own thread; completes with its result,
/// or re-raises its panic in the case.
pub async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    type Done<T> = Option<std::thread::Result<T>>;
    let shared: Arc<Mutex<(Done<T>, Option<Waker>)>> = Arc::new(Mutex::new((None, None)));
    let theirs = shared.clone();
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(work));
        let mut slot = theirs.lock().unwrap_or_else(|p| p.into_inner());
        slot.0 = Some(result);
        if let Some(waker) = slot.1.take() {
            waker.wake();
        }
    });
    let result = poll_fn(|cx| {
        let mut slot = shared.lock().unwrap_or_else(|p| p.into_inner());
        match slot.0.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await;
    result.unwrap_or_else(|panic| resume_unwind(panic))
}

/// Serialises the cases of one binary, so that each measures its own memory. A case that
/// panicked leaves the lock usable.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `case` on `runtime`; a case still running after [`CASE_LIMIT`] fails instead of
/// hanging the suite. Give it to the runtime's `block_on`, holding [`serial`].
pub async fn watched<F: Future<Output = ()>>(runtime: RuntimeRef, case: impl FnOnce(Env) -> F) {
    let limit = runtime.sleep_until(runtime.now() + CASE_LIMIT);
    let case = std::pin::pin!(case(Env { runtime }));
    if let Either::Right(_) = select(case, limit).await {
        panic!("the case did not finish within {CASE_LIMIT:?}");
    }
}

/// Instantiates every case as a `#[test]` run by `$run`, a function taking the case
/// (`impl FnOnce(Env) -> impl Future<Output = ()>`).
macro_rules! hostile_suite {
    ($run:path) => {
        $crate::hostile::hostile_suite!(@cases $run; h2_cases:
            bad_preface_is_protocol_error,
            http1_request_is_protocol_error,
            invalid_settings_values,
            settings_of_wrong_length_is_frame_size_error,
            oversized_frame_is_frame_size_error,
            frames_on_the_wrong_stream_are_protocol_errors,
            stream_ids_going_backwards_is_protocol_error,
            even_stream_id_from_a_client_is_protocol_error,
            zero_window_update_on_a_stream_resets_it,
            zero_window_update_on_the_connection_is_protocol_error,
            overflowing_stream_window_resets_it,
            overflowing_connection_window_is_flow_control_error,
            continuation_without_headers_is_protocol_error,
            continuation_on_another_stream_is_protocol_error,
            frame_inside_a_header_block_is_protocol_error,
            broken_hpack_is_compression_error,
            pseudo_header_misuse_resets_the_stream,
            connection_specific_headers_reset_the_stream,
            path_without_leading_slash_is_protocol_error,
        );
        $crate::hostile::hostile_suite!(@cases $run; flood_cases:
            rapid_reset_is_enhance_your_calm,
            continuation_flood_is_enhance_your_calm,
            hpack_bomb_is_resource_exhausted,
            ping_flood_is_enhance_your_calm,
            settings_flood_is_enhance_your_calm,
            empty_data_flood_is_enhance_your_calm,
            pings_faster_than_the_keepalive_policy_are_too_many_pings,
            made_you_reset_is_enhance_your_calm,
        );
        $crate::hostile::hostile_suite!(@cases $run; resource_cases:
            client_that_never_opens_its_window,
            client_that_stops_reading_the_socket,
            streams_over_the_concurrency_limit_are_refused,
            thousands_of_idle_connections,
            slowloris_preface_is_closed_by_the_settings_timeout,
            slowloris_header_block_is_closed_by_the_header_block_timeout,
        );
        $crate::hostile::hostile_suite!(@cases $run; grpc_cases:
            four_gib_length_prefix_is_resource_exhausted,
            message_over_the_limit_is_resource_exhausted,
            bad_compressed_flags_are_internal,
            unknown_grpc_encoding_is_unimplemented,
            malformed_grpc_timeout_is_internal,
            bad_base64_in_binary_metadata_is_internal,
            unary_request_without_a_message_is_internal,
            unary_request_with_two_messages_is_internal,
        );
        $crate::hostile::hostile_suite!(@cases $run; client_cases:
            missing_grpc_status_is_unknown,
            trailers_only_without_grpc_status,
            invalid_grpc_status_is_internal,
            bad_base64_in_binary_trailers_is_internal,
            four_gib_length_prefix_in_a_response_is_resource_exhausted,
            compressed_response_without_encoding_is_internal,
            unknown_response_encoding_is_internal,
            server_that_never_opens_its_window,
            invalid_settings_from_the_server_fail_the_call,
            response_on_a_stream_never_opened_is_protocol_error,
            two_responses_to_a_unary_call_is_internal,
            ok_without_a_response_is_internal,
        );
        $crate::hostile::hostile_suite!(@cases $run; advisory_cases:
            one_byte_data_frames_stay_bounded,
            many_streams_of_partial_messages_stay_bounded,
            control_frames_while_not_reading,
            unknown_frame_types_are_ignored,
            max_frame_size_zero_is_protocol_error,
            empty_continuation_flood_is_enhance_your_calm,
            duplicate_host_headers,
            malformed_frame_after_a_connection_error_is_ignored,
            request_without_authority_or_host_is_served,
            non_canonical_paths_are_unimplemented,
            pinned_header_fields_stay_bounded,
            one_byte_data_frames_in_a_response_stay_bounded,
            max_frame_size_zero_from_a_server_is_protocol_error,
        );
    };
    (@cases $run:path; $module:ident: $($name:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    $run($crate::hostile::$module::$name)
                }
            )*
        }
    };
}
pub(crate) use hostile_suite;
