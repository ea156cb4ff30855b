//! Closing a set of connections with a grace period: `Channel::close` and `Server::stop`.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::handle::{Command, ConnHandle, Kick};
use super::policy::Urgency;
use crate::runtime::RuntimeRef;

/// Drains `conns`. With a `grace`, each first shuts down gracefully (no new calls, the running
/// ones finish) until all have closed or the grace ran out; then, or at once without a grace,
/// each closes now (its calls end). Completes once every connection has closed.
pub(crate) async fn drain(
    conns: &[Arc<ConnHandle>],
    runtime: &RuntimeRef,
    grace: Option<Duration>,
) {
    let all_closed = |cx: &mut Context<'_>| {
        let mut pending = false;
        for conn in conns {
            pending |= conn.poll_closed(cx).is_pending();
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    };
    if let Some(grace) = grace {
        for conn in conns {
            let _ = conn
                .enqueue([Command::Shutdown], Urgency::Control)
                .map(Kick::run);
        }
        let mut sleep = runtime.sleep_until(runtime.now() + grace);
        let closed = poll_fn(|cx| {
            if all_closed(cx).is_ready() {
                return Poll::Ready(true);
            }
            sleep.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if closed {
            return;
        }
    }
    for conn in conns {
        let _ = conn
            .enqueue([Command::Close], Urgency::Control)
            .map(Kick::run);
    }
    poll_fn(all_closed).await;
}
