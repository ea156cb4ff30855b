//! The `dns` resolver (and that of a bare `host:port`): the runtime's `resolve`, again on
//! `resolve_now` (at most every 30 s after a success, as grpc-go's), on the channel's
//! `resolve_interval`, and after a failure on the reconnect backoff. An IP literal is pushed at
//! once, without a lookup.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anygrpc_core::Status;

use super::{Address, Resolver, ResolverBuilder, ResolverHandle, ResolverUpdate, TargetUri};
use crate::client::backoff::Backoff;
use crate::client::target::Target;

/// The least time between two lookups asked for by `resolve_now`.
const MIN_INTERVAL: Duration = Duration::from_secs(30);

/// The `dns` scheme's builder.
pub(super) struct DnsBuilder;

/// `host:port` of a dns target, or its literal addresses.
fn parse(target: &TargetUri) -> Result<Target, String> {
    Target::parse(&format!("dns:///{}", target.endpoint)).map_err(|e| {
        // Name the target as the user wrote it.
        let why = e.0.split_once(": ").map_or(e.0.as_str(), |(_, why)| why);
        format!("{:?}: {why}", target.as_str())
    })
}

impl ResolverBuilder for DnsBuilder {
    fn scheme(&self) -> &str {
        "dns"
    }

    fn check(&self, target: &TargetUri) -> Result<(), String> {
        parse(target).map(|_| ())
    }

    fn default_authority(&self, target: &TargetUri) -> String {
        parse(target).map_or_else(|_| target.endpoint.clone(), |t| t.default_authority())
    }

    fn build(&self, target: &TargetUri, handle: ResolverHandle) -> Box<dyn Resolver> {
        let (host, port) = match parse(target) {
            Ok(Target::Dns { host, port }) => (host, port),
            Ok(Target::Addresses(addrs)) => {
                handle.update(ResolverUpdate::new(
                    addrs.into_iter().map(Address::tcp).collect(),
                ));
                return Box::new(Literal);
            }
            Ok(_) | Err(_) => {
                handle.error(Status::unavailable(format!(
                    "{:?} is not a dns target",
                    target.as_str()
                )));
                return Box::new(Literal);
            }
        };
        let (interval, backoff) = handle.timing();
        let shared = Arc::new(Shared {
            host,
            port,
            handle,
            state: Mutex::new(State {
                resolving: false,
                resolved_at: None,
                scheduled: false,
                backoff: Backoff::new(backoff, u64::from(port) ^ 0x5bd1_e995),
            }),
        });
        Shared::lookup(&shared);
        if let Some(interval) = interval {
            Shared::every(Arc::downgrade(&shared), interval);
        }
        Box::new(Dns(shared))
    }
}

/// A literal address needs no lookup, ever.
struct Literal;

impl Resolver for Literal {}

/// A running dns resolver; its tasks hold it weakly and end once the channel drops it.
struct Dns(Arc<Shared>);

struct Shared {
    host: String,
    port: u16,
    handle: ResolverHandle,
    state: Mutex<State>,
}

struct State {
    /// A lookup is in progress.
    resolving: bool,
    /// When the last lookup succeeded.
    resolved_at: Option<Instant>,
    /// A lookup is scheduled (rate limit or backoff).
    scheduled: bool,
    /// The delay before retrying a failed lookup.
    backoff: Backoff,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a lookup unless one runs.
    fn lookup(this: &Arc<Self>) {
        {
            let mut state = this.lock();
            if state.resolving {
                return;
            }
            state.resolving = true;
        }
        let runtime = this.handle.runtime().clone();
        let weak = Arc::downgrade(this);
        let lookup = runtime.resolve(this.host.clone(), this.port);
        runtime.spawn(Box::pin(async move {
            let result = lookup.await;
            let Some(this) = weak.upgrade() else { return };
            let retry = {
                let mut state = this.lock();
                state.resolving = false;
                match &result {
                    Ok(addrs) if !addrs.is_empty() => {
                        state.resolved_at = Some(this.handle.runtime().now());
                        state.backoff.reset();
                        None
                    }
                    _ => Some(state.backoff.next_delay()),
                }
            };
            match result {
                Ok(addrs) if !addrs.is_empty() => this.handle.update(ResolverUpdate::new(
                    addrs.into_iter().map(Address::tcp).collect(),
                )),
                Ok(_) => this
                    .handle
                    .error(Status::unavailable("name resolution returned no addresses")),
                Err(e) => {
                    let target = format!("{}:{}", this.host, this.port);
                    crate::trace::resolve_failed(&target, &e.to_string());
                    this.handle
                        .error(Status::unavailable(format!("name resolution failed: {e}")));
                }
            }
            if let Some(delay) = retry {
                Self::later(&this, delay);
            }
        }));
    }

    /// Looks up again after `delay`, unless a later lookup is already scheduled.
    fn later(this: &Arc<Self>, delay: Duration) {
        {
            let mut state = this.lock();
            if state.scheduled {
                return;
            }
            state.scheduled = true;
        }
        let runtime = this.handle.runtime().clone();
        let weak = Arc::downgrade(this);
        let sleep = runtime.sleep_until(runtime.now() + delay);
        runtime.spawn(Box::pin(async move {
            sleep.await;
            let Some(this) = weak.upgrade() else { return };
            this.lock().scheduled = false;
            if this.handle.is_current() {
                Self::lookup(&this);
            }
        }));
    }

    /// Looks up every `interval` while the resolver lives.
    fn every(weak: Weak<Self>, interval: Duration) {
        let Some(this) = weak.upgrade() else { return };
        let runtime = this.handle.runtime().clone();
        drop(this);
        let clock = runtime.clone();
        runtime.spawn(Box::pin(async move {
            loop {
                clock.sleep_until(clock.now() + interval).await;
                let Some(this) = weak.upgrade() else { return };
                if !this.handle.is_current() {
                    return;
                }
                Self::lookup(&this);
            }
        }));
    }
}

impl Resolver for Dns {
    fn resolve_now(&self) {
        let now = self.0.handle.runtime().now();
        let wait = {
            let state = self.0.lock();
            state
                .resolved_at
                .map(|at| (at + MIN_INTERVAL).saturating_duration_since(now))
                .unwrap_or_default()
        };
        if wait.is_zero() {
            Shared::lookup(&self.0);
        } else {
            Shared::later(&self.0, wait);
        }
    }
}
