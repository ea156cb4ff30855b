//! [`ManualResolver`]: a resolver its owner feeds by hand, for tests and for applications
//! that learn their addresses some other way.

use std::sync::{Arc, Mutex, MutexGuard};

use anygrpc_core::Status;

use super::{Resolver, ResolverBuilder, ResolverHandle, ResolverUpdate, TargetUri};

/// A resolver for a scheme of your choice whose updates you push yourself: register it with
/// `ChannelBuilder::resolver`, target `scheme:///anything`, then call
/// [`update`](Self::update). The last update is remembered and given to the channel each
/// time it (re)starts resolution. Cheap to clone; clones share their state, and feed the
/// channel that built it last (register one per channel).
#[derive(Clone, Debug)]
pub struct ManualResolver {
    scheme: String,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// The handle of the channel's current resolver, once built.
    handle: Option<ResolverHandle>,
    last: Option<ResolverUpdate>,
    resolve_now: usize,
}

impl ManualResolver {
    /// A resolver for targets of `scheme` (lowercase), with no addresses yet.
    pub fn new(scheme: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into().to_ascii_lowercase(),
            shared: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes `update` to the channel (if it resolves now) and keeps it for later starts.
    pub fn update(&self, update: ResolverUpdate) {
        let handle = {
            let mut shared = self.lock();
            shared.last = Some(update.clone());
            shared.handle.clone()
        };
        if let Some(handle) = handle {
            handle.update(update);
        }
    }

    /// Reports a resolution failure to the channel.
    pub fn error(&self, status: Status) {
        let handle = self.lock().handle.clone();
        if let Some(handle) = handle {
            handle.error(status);
        }
    }

    /// How many times the channel asked to resolve again (`resolve_now`).
    pub fn resolve_now_count(&self) -> usize {
        self.lock().resolve_now
    }
}

impl ResolverBuilder for ManualResolver {
    fn scheme(&self) -> &str {
        &self.scheme
    }

    fn build(&self, _target: &TargetUri, handle: ResolverHandle) -> Box<dyn Resolver> {
        let last = {
            let mut shared = self.lock();
            shared.handle = Some(handle.clone());
            shared.last.clone()
        };
        if let Some(update) = last {
            handle.update(update);
        }
        Box::new(Running(self.shared.clone()))
    }
}

/// The resolver the channel holds: counts its `resolve_now` hints.
struct Running(Arc<Mutex<Shared>>);

impl Resolver for Running {
    fn resolve_now(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).resolve_now += 1;
    }
}
