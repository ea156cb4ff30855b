//! The README's "Limits and defaults" table against `Config`'s real defaults.
//!
//! `Config` is `#[non_exhaustive]`, so the destructuring below cannot name every field by
//! itself: `every_config_field_is_checked` reads the fields off `Config`'s `Debug` output,
//! and fails for one this file and the README do not cover.

use std::time::Duration;

use anygrpc_core::Config;

const README: &str = include_str!("../../README.md");

/// The README row of `field`, e.g. "| `max_frame_size` | 1 MiB | ... |".
fn row(field: &str) -> &'static str {
    let start = format!("| `{field}` |");
    README
        .lines()
        .find(|line| line.starts_with(&start))
        .unwrap_or_else(|| panic!("README has no row for Config::{field}"))
}

/// Asserts the row of `field` says `shown`, and that `shown` is the default in code.
fn check(field: &str, in_code: bool, shown: &str) {
    assert!(in_code, "Config::{field} no longer defaults to {shown}");
    let row = row(field);
    assert!(
        row.contains(shown),
        "README row of Config::{field} does not say {shown:?}: {row}"
    );
}

#[test]
fn readme_lists_every_config_default() {
    let Config {
        header_table_size,
        max_concurrent_streams,
        initial_stream_window,
        connection_window,
        recv_budget,
        max_frame_size,
        max_header_list_size,
        max_recv_message_size,
        max_send_message_size,
        max_send_buffer,
        settings_timeout,
        header_block_timeout,
        keepalive_time,
        keepalive_timeout,
        keepalive_permit_without_calls,
        ping_policy,
        max_connection_idle,
        max_connection_age,
        max_connection_age_grace,
        idle_frame_burst,
        idle_frame_rate,
        reset_burst,
        reset_rate,
        max_pending_control_frames,
        transmit_budget,
        user_agent,
        ..
    } = Config::server();
    check("header_table_size", header_table_size == 4096, "4096 bytes");
    check(
        "max_concurrent_streams",
        max_concurrent_streams == 1024,
        "1024 (server)",
    );
    check(
        "max_concurrent_streams",
        Config::client().max_concurrent_streams == 100,
        "100 (client)",
    );
    check(
        "initial_stream_window",
        initial_stream_window == 1 << 20,
        "1 MiB",
    );
    check("connection_window", connection_window == 16 << 20, "16 MiB");
    check("recv_budget", recv_budget == 32 << 20, "32 MiB");
    check("max_frame_size", max_frame_size == 1 << 20, "1 MiB");
    check(
        "max_header_list_size",
        max_header_list_size == 16 << 10,
        "16 KiB",
    );
    check(
        "max_recv_message_size",
        max_recv_message_size == 4 << 20,
        "4 MiB",
    );
    check(
        "max_send_message_size",
        max_send_message_size == usize::MAX,
        "unlimited",
    );
    check("max_send_buffer", max_send_buffer == 1 << 20, "1 MiB");
    check(
        "settings_timeout",
        settings_timeout == Duration::from_secs(10),
        "10 s",
    );
    check(
        "header_block_timeout",
        header_block_timeout == Duration::from_secs(10),
        "10 s",
    );
    check("keepalive_time", keepalive_time.is_none(), "off");
    check(
        "keepalive_timeout",
        keepalive_timeout == Duration::from_secs(20),
        "20 s",
    );
    check(
        "keepalive_permit_without_calls",
        !keepalive_permit_without_calls,
        "`false`",
    );
    let policy = ping_policy.expect("servers enforce keepalive");
    check(
        "ping_policy",
        policy.min_interval == Duration::from_secs(300)
            && policy.max_strikes == 2
            && !policy.permit_without_calls,
        "5 min, 2 strikes, no pings without calls (server); off (client)",
    );
    check(
        "ping_policy",
        Config::client().ping_policy.is_none(),
        "off (client)",
    );
    check(
        "max_connection_idle",
        max_connection_idle.is_none(),
        "off (`None`)",
    );
    check(
        "max_connection_age",
        max_connection_age.is_none(),
        "off (`None`)",
    );
    check(
        "max_connection_age_grace",
        max_connection_age_grace.is_none(),
        "unlimited (`None`)",
    );
    check("idle_frame_burst", idle_frame_burst == 1000, "1000 frames");
    check(
        "idle_frame_rate",
        idle_frame_rate == 1000,
        "1000 per second",
    );
    check("reset_burst", reset_burst == 200, "| 200 |");
    check("reset_rate", reset_rate == 100, "100 per second");
    check(
        "max_pending_control_frames",
        max_pending_control_frames == 1024,
        "| 1024 |",
    );
    check("transmit_budget", transmit_budget == 256 << 10, "256 KiB");
    check(
        "user_agent",
        user_agent == concat!("anygrpc/", env!("CARGO_PKG_VERSION")),
        "`anygrpc/<version>`",
    );
}

#[test]
fn readme_commands_exist() {
    // The two commands a newcomer runs, and what .ci/run runs.
    assert!(README.contains("cargo run -p anygrpc-examples --bin demo"));
    assert!(README.contains("cargo test --workspace"));
    let ci = include_str!("../../.ci/run");
    assert!(
        ci.lines()
            .any(|l| !l.starts_with('#') && l.trim_end().ends_with(" cargo test --workspace")),
        ".ci/run runs the README's test command"
    );
}

/// The fields destructured (and checked) by `readme_lists_every_config_default`.
const CHECKED: &[&str] = &[
    "header_table_size",
    "max_concurrent_streams",
    "initial_stream_window",
    "connection_window",
    "recv_budget",
    "max_frame_size",
    "max_header_list_size",
    "max_recv_message_size",
    "max_send_message_size",
    "max_send_buffer",
    "settings_timeout",
    "header_block_timeout",
    "keepalive_time",
    "keepalive_timeout",
    "keepalive_permit_without_calls",
    "ping_policy",
    "max_connection_idle",
    "max_connection_age",
    "max_connection_age_grace",
    "idle_frame_burst",
    "idle_frame_rate",
    "reset_burst",
    "reset_rate",
    "max_pending_control_frames",
    "transmit_budget",
    "user_agent",
];

/// The field names of `Config`, from its `Debug` output.
fn config_fields() -> Vec<String> {
    format!("{:#?}", Config::server())
        .lines()
        .filter_map(|line| line.strip_prefix("    "))
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn every_config_field_is_checked() {
    let fields = config_fields();
    assert!(fields.len() >= CHECKED.len(), "{fields:?}");
    for field in &fields {
        assert!(
            CHECKED.contains(&field.as_str()),
            "Config::{field} is new: give it a README row and check its default here"
        );
        row(field);
    }
}
