//! One call's recorders: a client call's attempts and end, a server call's.

use std::sync::Arc;
use std::time::Instant;

use anygrpc::{CallEvent, CallStats};
use opentelemetry::KeyValue;

use crate::instruments::Instruments;

/// The attempt under way: when it began and the bytes it moved.
#[derive(Debug)]
struct Attempt {
    started: Instant,
    sent: u64,
    rcvd: u64,
}

/// A client call: records each attempt when the next begins or the call ends.
#[derive(Debug)]
pub(crate) struct ClientCall {
    instruments: Arc<Instruments>,
    method: String,
    target: String,
    started: Instant,
    attempt: Option<Attempt>,
}

impl ClientCall {
    pub(crate) fn new(
        instruments: Arc<Instruments>,
        method: String,
        target: String,
        started: Instant,
    ) -> Self {
        Self {
            instruments,
            method,
            target,
            started,
            attempt: None,
        }
    }

    fn finish_attempt(&mut self, status: &str) {
        let Some(a) = self.attempt.take() else { return };
        let attrs = [
            KeyValue::new("grpc.method", self.method.clone()),
            KeyValue::new("grpc.target", self.target.clone()),
            KeyValue::new("grpc.status", status.to_string()),
        ];
        let i = &self.instruments;
        i.attempt_duration
            .record(a.started.elapsed().as_secs_f64(), &attrs);
        i.attempt_sent_size.record(a.sent, &attrs);
        i.attempt_rcvd_size.record(a.rcvd, &attrs);
    }
}

impl CallStats for ClientCall {
    fn record(&mut self, event: &CallEvent<'_>) {
        match event {
            CallEvent::AttemptStarted { .. } => {
                // An attempt the connection refused unprocessed is followed by this one.
                self.finish_attempt("UNAVAILABLE");
                self.instruments.attempt_started.add(
                    1,
                    &[
                        KeyValue::new("grpc.method", self.method.clone()),
                        KeyValue::new("grpc.target", self.target.clone()),
                    ],
                );
                self.attempt = Some(Attempt {
                    started: Instant::now(),
                    sent: 0,
                    rcvd: 0,
                });
            }
            CallEvent::MessageSent { wire_size, .. } => {
                if let Some(a) = self.attempt.as_mut() {
                    a.sent += *wire_size as u64;
                }
            }
            CallEvent::MessageReceived { wire_size, .. } => {
                if let Some(a) = self.attempt.as_mut() {
                    a.rcvd += *wire_size as u64;
                }
            }
            CallEvent::Ended { status, .. } => {
                let code = status.code().as_str();
                self.finish_attempt(code);
                self.instruments.call_duration.record(
                    self.started.elapsed().as_secs_f64(),
                    &[
                        KeyValue::new("grpc.method", self.method.clone()),
                        KeyValue::new("grpc.target", self.target.clone()),
                        KeyValue::new("grpc.status", code.to_string()),
                    ],
                );
            }
            _ => {}
        }
    }
}

/// A server call: counted when it begins, measured when it ends.
#[derive(Debug)]
pub(crate) struct ServerCall {
    instruments: Arc<Instruments>,
    method: String,
    started: Instant,
    sent: u64,
    rcvd: u64,
}

impl ServerCall {
    pub(crate) fn new(instruments: Arc<Instruments>, method: String, started: Instant) -> Self {
        instruments
            .server_started
            .add(1, &[KeyValue::new("grpc.method", method.clone())]);
        Self {
            instruments,
            method,
            started,
            sent: 0,
            rcvd: 0,
        }
    }
}

impl CallStats for ServerCall {
    fn record(&mut self, event: &CallEvent<'_>) {
        match event {
            CallEvent::MessageSent { wire_size, .. } => self.sent += *wire_size as u64,
            CallEvent::MessageReceived { wire_size, .. } => self.rcvd += *wire_size as u64,
            CallEvent::Ended { status, .. } => {
                let attrs = [
                    KeyValue::new("grpc.method", self.method.clone()),
                    KeyValue::new("grpc.status", status.code().as_str().to_string()),
                ];
                let i = &self.instruments;
                i.server_duration
                    .record(self.started.elapsed().as_secs_f64(), &attrs);
                i.server_sent_size.record(self.sent, &attrs);
                i.server_rcvd_size.record(self.rcvd, &attrs);
            }
            _ => {}
        }
    }
}
