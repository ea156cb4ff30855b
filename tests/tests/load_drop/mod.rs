//! Two hardening suites of issue 8, written once and run on every executor through
//! [`load_drop_suite!`] (`load_drop_smol.rs`, `load_drop_async_std.rs`, `load_drop_tokio.rs`):
//!
//! - [`load`]: `h2load` (nghttp2) drives thousands of concurrent streams at an anygrpc server,
//!   which must answer every call;
//! - [`drops`]: a client whose connection is closed or reset mid-call (by [`proxy`], a loopback
//!   proxy the test controls) reports UNAVAILABLE for exactly the calls on that connection.
#![allow(
    dead_code,
    reason = "each runtime's test binary uses a different part of the support code"
)]
#![allow(
    unreachable_pub,
    reason = "support items are shared by the test binaries through `mod load_drop`"
)]

pub mod drops;
pub mod journal;
pub mod load;
pub mod off_executor;
pub mod proxy;
pub mod service;

use std::future::Future;
use std::time::Duration;

use anygrpc::RuntimeRef;
use futures_util::future::{Either, select};

/// How long a case may run before it fails as hung.
pub const CASE_LIMIT: Duration = Duration::from_secs(20);

/// Runs `case` on `runtime`; a case still running after [`CASE_LIMIT`] fails instead of hanging
/// the suite. Give it to the runtime's `block_on`.
pub async fn watched<F: Future<Output = ()>>(
    runtime: RuntimeRef,
    case: impl FnOnce(RuntimeRef) -> F,
) {
    let limit = runtime.sleep_until(runtime.now() + CASE_LIMIT);
    let case = std::pin::pin!(case(runtime.clone()));
    if let Either::Right(_) = select(case, limit).await {
        panic!("the case did not finish within {CASE_LIMIT:?}");
    }
}

/// Instantiates every case of [`load`] and [`drops`] as a `#[test]` run by `$run`, a function
/// taking the case (`impl FnOnce(RuntimeRef) -> impl Future<Output = ()>`).
macro_rules! load_drop_suite {
    ($run:path) => {
        $crate::load_drop::load_drop_suite!(@cases $run, load;
            h2load_thousands_of_concurrent_streams,
            h2load_over_the_stream_limit,
        );
        $crate::load_drop::load_drop_suite!(@cases $run, drops;
            close_mid_call_fails_every_call_in_flight,
            reset_mid_call_fails_every_call_in_flight,
            close_one_of_two_connections_fails_only_its_calls,
            reset_one_of_two_connections_fails_only_its_calls,
            close_retries_only_calls_the_server_never_saw,
            reset_retries_only_calls_the_server_never_saw,
        );
    };
    (@cases $run:path, $suite:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $run($crate::load_drop::$suite::$name)
            }
        )*
    };
}
pub(crate) use load_drop_suite;
