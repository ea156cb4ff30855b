//! The end-to-end suite, written once and run on every runtime.
//!
//! Each case is an `async fn(Env)` in [`cases`]; each runtime's test file (`e2e_smol.rs`,
//! `e2e_memory_suite.rs`, ...) gives the suite a runner that builds an [`Env`] and blocks on the
//! case with that runtime's `block_on`, through [`e2e_suite!`]. Real runtimes use loopback TCP
//! with ports picked by the OS; the memory runtime runs the same code on in-memory pipes and a
//! manual clock that moves only when everything waits on a timer.
#![allow(
    dead_code,
    reason = "each runtime's test binary uses a different part of the support code"
)]
#![allow(
    unreachable_pub,
    reason = "support items are shared by the test binaries through `mod e2e`"
)]

pub mod cases;
pub mod memory;
pub mod proxy;
pub mod service;

use std::future::Future;
use std::time::{Duration, Instant};

use anygrpc::testing::MemoryRuntime;
use anygrpc::{BackoffConfig, Channel, ChannelBuilder, Config, RuntimeRef, Server};
use futures_util::future::{Either, select};

use service::{Probe, TestService};

/// What a case runs on.
#[derive(Debug, Clone)]
pub struct Env {
    /// The runtime under test.
    pub runtime: RuntimeRef,
    /// The same runtime as a [`MemoryRuntime`], when it is one (pipes, manual clock).
    pub memory: Option<MemoryRuntime>,
}

/// A started test server.
#[derive(Debug, Clone)]
pub struct TestServer {
    pub server: Server,
    pub port: u16,
    /// What the handlers observed.
    pub probe: Probe,
}

impl Env {
    /// An environment over a real runtime.
    pub fn real(runtime: RuntimeRef) -> Self {
        Self {
            runtime,
            memory: None,
        }
    }

    /// An environment over the in-memory runtime.
    pub fn memory(rt: &MemoryRuntime) -> Self {
        Self {
            runtime: rt.handle(),
            memory: Some(rt.clone()),
        }
    }

    /// The runtime's clock (virtual on the memory runtime).
    pub fn now(&self) -> Instant {
        self.runtime.now()
    }

    /// Waits `by` on the runtime's clock.
    pub async fn sleep(&self, by: Duration) {
        self.runtime.sleep_until(self.runtime.now() + by).await;
    }

    /// A server with the test service on a port the system picks, started.
    pub async fn start_server(&self) -> TestServer {
        self.start_server_with(Config::server(), 0).await
    }

    /// A server with `config` on `port` (0: any), started.
    pub async fn start_server_with(&self, config: Config, port: u16) -> TestServer {
        let server = Server::with_config(self.runtime.clone(), config);
        let probe = Probe::default();
        server.add_service(TestService::new(self.runtime.clone(), probe.clone()));
        let port = server
            .add_insecure_port(&format!("127.0.0.1:{port}"))
            .await
            .expect("bind the test server");
        server.start();
        TestServer {
            server,
            port,
            probe,
        }
    }

    /// A port nothing listens on now (bound by the system, then released).
    pub async fn free_port(&self) -> u16 {
        let listener = self
            .runtime
            .listen("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("bind a probe port");
        let port = listener.local_addr().expect("bound address").port();
        drop(listener);
        port
    }

    /// A channel builder to `127.0.0.1:port` with a short reconnect backoff, so that
    /// reconnection cases do not wait the default second.
    pub fn channel_builder(&self, port: u16) -> ChannelBuilder {
        Channel::builder(format!("127.0.0.1:{port}"), self.runtime.clone()).backoff(BackoffConfig {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..BackoffConfig::default()
        })
    }

    /// A channel to `127.0.0.1:port`.
    pub fn channel(&self, port: u16) -> Channel {
        self.channel_builder(port).build().expect("a valid target")
    }
}

/// How long a case may run on a real runtime before it fails as hung.
pub const CASE_LIMIT: Duration = Duration::from_secs(30);

/// Runs `case` on the real runtime `runtime`; a case still running after [`CASE_LIMIT`]
/// fails instead of hanging the suite. Give it to the runtime's `block_on`.
pub async fn watched<F: Future<Output = ()>>(runtime: RuntimeRef, case: impl FnOnce(Env) -> F) {
    let limit = runtime.sleep_until(runtime.now() + CASE_LIMIT);
    let case = std::pin::pin!(case(Env::real(runtime)));
    if let Either::Right(_) = select(case, limit).await {
        panic!("the case did not finish within {CASE_LIMIT:?}");
    }
}

/// Runs one case on the in-memory runtime, then drops every task it left. (Its `block_on`
/// reports a hang itself: it panics when nothing can run and no timer is pending.)
pub fn run_memory<F: Future<Output = ()>>(case: impl FnOnce(Env) -> F) {
    let rt = MemoryRuntime::new();
    rt.block_on(case(Env::memory(&rt)));
    rt.shutdown();
}

/// Instantiates every case of [`cases`] as a `#[test]` run by `$run`, a function taking the
/// case (`impl FnOnce(Env) -> impl Future<Output = ()>`).
macro_rules! e2e_suite {
    ($run:path) => {
        $crate::e2e::e2e_suite!(@cases $run;
            unary,
            server_streaming,
            client_streaming_with_write,
            client_streaming_from_stream,
            bidi_ping_pong,
            bidi_from_stream,
            call_futures_before_and_after_completion,
            done_callbacks,
            metadata_both_ways,
            every_status_code_from_handler_error,
            every_status_code_from_context,
            client_cancels_server_stream,
            client_cancels_bidi,
            server_ends_calls_early,
            deadline_exceeded_on_both_sides,
            time_remaining_decreases_on_both_sides,
            wait_for_ready_waits_for_a_late_server,
            fail_fast_is_unavailable,
            dead_port_is_unavailable,
            ten_thousand_concurrent_unary_calls,
            large_messages_with_raised_limits,
            messages_over_the_default_limit,
            small_windows_keep_a_lone_stream_flowing,
            server_stop_with_grace_lets_calls_finish,
            server_stop_with_short_grace_cancels_the_rest,
            server_stop_now_cancels_calls,
            channel_close_with_grace,
            channel_close_now,
            server_killed_mid_call_then_back,
            usage_errors,
            panicking_handler_ends_only_its_call,
            panicking_user_code_fails_only_its_call,
            single_message_calls_end_internal_on_zero_or_two,
            a_full_receive_budget_pauses_reading_until_messages_are_consumed,
            an_undecodable_response_ends_the_call_internal,
            service_config_timeout_applies_and_the_earlier_deadline_wins,
            service_config_message_limits_are_the_smaller_of_config_and_channel,
            service_config_wait_for_ready_is_a_default_the_call_overrides,
            service_config_chooses_round_robin,
            retries_try_again_with_the_previous_attempts_header,
            retries_follow_the_servers_pushback,
            retries_end_at_the_calls_deadline,
            retries_skip_other_codes_and_stop_when_throttled,
            retries_send_a_client_stream_again,
            retries_send_a_bidi_stream_again_until_the_head_commits,
            retries_stop_past_the_retry_buffer,
            hedging_answers_from_the_first_attempt_to_answer,
            hedging_goes_on_after_non_fatal_codes_and_stops_at_fatal_ones,
            hedging_follows_the_servers_pushback,
            a_hedged_call_that_ends_cancels_every_attempt,
            a_hedged_stream_flows_from_the_attempt_that_answered,
            hedged_streaming_requests_reach_every_attempt,
            a_hedged_stream_past_its_retry_buffer_commits_to_its_oldest_attempt,
            hedged_attempts_spread_over_round_robins_subchannels,
            a_registered_resolver_pushes_updates_that_calls_follow,
            a_resolver_error_fails_fast_calls_and_wait_for_ready_ones_wait,
            a_registered_policy_is_chosen_by_the_service_config,
            least_request_sends_calls_where_fewest_are_in_flight,
            pick_first_and_round_robin_behave_as_before,
            pick_first_shuffles_its_addresses_when_the_config_says,
            pick_first_starts_the_next_address_while_the_first_still_connects,
            a_panicking_policy_or_resolver_fails_the_calls_only,
            a_resolvers_service_config_sets_the_method_configs,
            connection_scaling_opens_connections_at_the_servers_stream_limit,
            connection_scaling_follows_the_service_config_and_idle_extras_close,
            client_interceptors_wrap_every_call_kind,
            interceptors_compose_in_the_order_added,
            server_interceptors_reject_rewrite_attach_and_wrap,
            call_credentials_are_awaited_for_each_call,
            an_intercepted_call_is_cancelled_and_times_out_like_any,
            interceptors_wrap_calls_of_any_codec,
            a_raw_bytes_proxy_forwards_every_call_kind,
            a_json_codec_works_on_both_sides,
            a_unary_response_is_compressed_as_its_handler_sets,
            a_servers_default_compression_covers_every_call_kind,
            a_zstd_bomb_stops_at_the_receive_limit,
            unix_ports_serve_calls_and_their_files_go_at_stop,
            added_listeners_and_handed_over_connections_are_served_and_drained,
            calls_go_through_an_http_connect_proxy,
            no_proxy_bypasses_the_proxy,
            a_proxy_refusal_fails_unavailable_with_its_status_line,
            in_process_channels_behave_as_over_tcp,
        );
    };
    (@cases $run:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $run($crate::e2e::cases::$name)
            }
        )*
    };
}
pub(crate) use e2e_suite;
