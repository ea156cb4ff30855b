//! The gRPC health checking service (`grpc.health.v1`, gRFC A17's server side) for anygrpc
//! servers: `Check`, `Watch` and `List`, and a [`HealthReporter`] that sets each service's
//! status.
//!
//! ```no_run
//! # fn demo(server: &anygrpc::Server) {
//! let health = anygrpc_health::serve_on(server);
//! health.set_serving("helloworld.Greeter");
//! // ... later, while the greeter cannot answer:
//! health.set_not_serving("helloworld.Greeter");
//! # }
//! ```
//!
//! - The server as a whole is the empty name; it starts SERVING.
//! - `Check` on a name the reporter never set (or cleared) fails NOT_FOUND.
//! - `Watch` sends the status now (SERVICE_UNKNOWN for an unknown name, and the stream stays
//!   open), then every change, until the caller cancels.
//! - `List` gives every known service, up to [`LIST_LIMIT`] (more is RESOURCE_EXHAUSTED).
//! - [`serve_on`] also hooks the server's `stop`: every service turns NOT_SERVING as it
//!   begins, so watchers hear it before their streams drain, and later changes are ignored
//!   (as grpc-go's `Shutdown`; [`HealthReporter::resume`] undoes it).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

use std::collections::HashMap;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};

use anygrpc::{ResponseSink, Server, ServicerContext, Status};
use event_listener::Event;
use futures_util::future::{Either, select};

/// The generated messages, client stub and server trait of `grpc.health.v1`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
}

/// The encoded `FileDescriptorSet` of the health proto, for reflection
/// (`anygrpc_reflection::serve_on(&server, &[anygrpc_health::FILE_DESCRIPTOR_SET])`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

pub use pb::health_check_response::ServingStatus;
pub use pb::health_client::HealthClient;
use pb::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse};

/// The most services `List` answers with, as grpc-go: more fail RESOURCE_EXHAUSTED.
pub const LIST_LIMIT: usize = 100;

/// Registers the health service on `server`, hooked to its `stop`, and gives the reporter
/// that sets what it reports.
pub fn serve_on(server: &Server) -> HealthReporter {
    let reporter = HealthReporter::new();
    server.add_service(reporter.service());
    let on_stop = reporter.clone();
    server.on_stop(move || on_stop.shutdown());
    reporter
}

/// Sets the statuses the health service reports, by service name (the empty name is the
/// server as a whole). Clones share them.
#[derive(Clone)]
pub struct HealthReporter {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Notified on every change, for the watchers.
    changed: Event,
}

#[derive(Default)]
struct State {
    statuses: HashMap<String, ServingStatus>,
    /// After `shutdown`: everything is NOT_SERVING and changes are ignored.
    shut_down: bool,
}

impl fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("HealthReporter")
            .field("statuses", &state.statuses)
            .field("shut_down", &state.shut_down)
            .finish()
    }
}

impl Default for HealthReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthReporter {
    /// A reporter whose server as a whole (the empty name) is SERVING and that knows no
    /// other service yet.
    pub fn new() -> Self {
        let mut state = State::default();
        state.statuses.insert(String::new(), ServingStatus::Serving);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changed: Event::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports `service` SERVING.
    pub fn set_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// Reports `service` NOT_SERVING.
    pub fn set_not_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Reports `service` as `status`; ignored after [`shutdown`](Self::shutdown).
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        let mut state = self.lock();
        if state.shut_down {
            return;
        }
        if state.statuses.insert(service.to_string(), status) != Some(status) {
            drop(state);
            self.shared.changed.notify(usize::MAX);
        }
    }

    /// Forgets `service`: `Check` fails NOT_FOUND for it and watchers hear SERVICE_UNKNOWN.
    /// Ignored after [`shutdown`](Self::shutdown).
    pub fn clear_status(&self, service: &str) {
        let mut state = self.lock();
        if !state.shut_down && state.statuses.remove(service).is_some() {
            drop(state);
            self.shared.changed.notify(usize::MAX);
        }
    }

    /// What is reported for `service`; `None` if it is unknown.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        self.lock().statuses.get(service).copied()
    }

    /// Reports every known service NOT_SERVING and ignores later changes: the server is
    /// going away ([`serve_on`] calls it as the server's `stop` begins).
    pub fn shutdown(&self) {
        self.set_every(ServingStatus::NotServing, true);
    }

    /// Undoes [`shutdown`](Self::shutdown): every known service is SERVING again and changes
    /// are taken.
    pub fn resume(&self) {
        self.set_every(ServingStatus::Serving, false);
    }

    /// Reports every known service as `status`, then takes changes again unless `shut_down`.
    fn set_every(&self, status: ServingStatus, shut_down: bool) {
        let mut state = self.lock();
        state.shut_down = shut_down;
        for each in state.statuses.values_mut() {
            *each = status;
        }
        drop(state);
        self.shared.changed.notify(usize::MAX);
    }

    /// The health service answering from this reporter, to add to a server (what
    /// [`serve_on`] does, without the stop hook).
    pub fn service(&self) -> pb::health_server::HealthServer<HealthService> {
        pb::health_server::HealthServer::new(HealthService {
            reporter: self.clone(),
        })
    }
}

/// The `grpc.health.v1.Health` service, answering from a [`HealthReporter`].
#[derive(Debug, Clone)]
pub struct HealthService {
    reporter: HealthReporter,
}

impl pb::health_server::Health for HealthService {
    async fn check(
        &self,
        request: HealthCheckRequest,
        _: &mut ServicerContext,
    ) -> Result<HealthCheckResponse, Status> {
        match self.reporter.status(&request.service) {
            Some(status) => Ok(response(status)),
            None => Err(Status::not_found(format!(
                "unknown service {:?}",
                request.service
            ))),
        }
    }

    async fn watch(
        &self,
        request: HealthCheckRequest,
        context: &mut ServicerContext,
        mut responses: ResponseSink<HealthCheckResponse>,
    ) -> Result<(), Status> {
        let mut sent = None;
        loop {
            // Listening before reading: a change between the two still wakes the loop.
            let changed = self.reporter.shared.changed.listen();
            let now = self
                .reporter
                .status(&request.service)
                .unwrap_or(ServingStatus::ServiceUnknown);
            if sent != Some(now) {
                responses.send(response(now)).await?;
                sent = Some(now);
            }
            let cancelled = pin!(context.wait_cancelled());
            if let Either::Right(_) = select(changed, cancelled).await {
                return Err(Status::cancelled("the watcher cancelled"));
            }
        }
    }

    async fn list(
        &self,
        _: HealthListRequest,
        _: &mut ServicerContext,
    ) -> Result<HealthListResponse, Status> {
        let state = self.reporter.lock();
        if state.statuses.len() > LIST_LIMIT {
            return Err(Status::resource_exhausted(format!(
                "{} services are more than the {LIST_LIMIT} List answers with",
                state.statuses.len()
            )));
        }
        let statuses = state
            .statuses
            .iter()
            .map(|(name, status)| (name.clone(), response(*status)))
            .collect();
        Ok(HealthListResponse { statuses })
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status.into(),
    }
}

#[cfg(test)]
mod tests;
