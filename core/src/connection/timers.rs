//! Connection timers and `handle_timeout`: SETTINGS ACK, header blocks, keepalive, shutdown and
//! call deadlines.

use std::time::Instant;

use super::{Connection, Control, PING_KEEPALIVE, Shutdown, ping_payload};
use crate::error::{ConnectionError, ErrorCode, StreamId};
use crate::grpc::Status;

/// The connection-wide timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Our SETTINGS must be acknowledged by then (RFC 9113 §6.5.3).
    SettingsAck = 0,
    /// Send a keepalive PING (nothing received for `keepalive_time`).
    KeepalivePing = 1,
    /// The keepalive PING must be acknowledged by then.
    KeepaliveAck = 2,
    /// Server shutdown: stop waiting for the PING after the first GOAWAY.
    Shutdown = 3,
    /// Server: no call for `max_connection_idle`.
    Idle = 4,
    /// Server: the connection reached `max_connection_age`.
    Age = 5,
    /// Server: the grace after `max_connection_age` ran out; close.
    AgeGrace = 6,
    /// A header block (or a frame header) started arriving and must be complete by then.
    HeaderBlock = 7,
}

const TIMERS: usize = 8;

/// One optional deadline per [`Timer`]; the next wake-up is the earliest. No heap.
#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable([Option<Instant>; TIMERS]);

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    /// `true` while `timer` is set.
    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.0[timer as usize].is_some()
    }

    /// `true` when `timer` is set and due at `now`; clears it.
    fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        match self.0[timer as usize] {
            Some(at) if at <= now => {
                self.0[timer as usize] = None;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

impl Connection {
    /// Fires whatever is due at `now`: call deadlines (the call ends with DEADLINE_EXCEEDED and
    /// its stream is reset with CANCEL), keepalive, SETTINGS and shutdown timeouts. Spurious
    /// calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        self.now = now;
        if self.timers.take_expired(Timer::SettingsAck, now) {
            self.close_with(
                ConnectionError::SettingsTimeout,
                Some(ErrorCode::SETTINGS_TIMEOUT),
                "SETTINGS not acknowledged",
            );
            return;
        }
        if self.timers.take_expired(Timer::HeaderBlock, now) {
            if !self.wants_input() {
                // We stopped reading (the receive budget is full): the rest of the block may
                // be waiting in the transport. The peer's time starts again.
                self.timers
                    .set(Timer::HeaderBlock, now + self.config.header_block_timeout);
            } else {
                self.protocol_error(
                    ErrorCode::ENHANCE_YOUR_CALM,
                    "header block not completed in time",
                );
                return;
            }
        }
        if self.timers.take_expired(Timer::KeepaliveAck, now) {
            self.close_with(
                ConnectionError::KeepaliveTimeout,
                Some(ErrorCode::NO_ERROR),
                "keepalive timeout",
            );
            return;
        }
        if self.timers.take_expired(Timer::KeepalivePing, now) {
            if self.streams.is_empty() && !self.config.keepalive_permit_without_calls {
                // keepalive.md: no pings on an idle connection unless permitted; look again
                // after another interval.
                self.arm_keepalive();
            } else {
                self.keepalive_outstanding = true;
                self.control.push_back(Control::Ping {
                    payload: ping_payload(PING_KEEPALIVE, 0),
                    ack: false,
                });
                self.timers
                    .set(Timer::KeepaliveAck, now + self.config.keepalive_timeout);
            }
        }
        if self.timers.take_expired(Timer::Idle, now) && self.streams.is_empty() {
            self.shutdown(now);
        }
        if self.timers.take_expired(Timer::Age, now) {
            self.shutdown(now);
            if let Some(grace) = self.config.max_connection_age_grace {
                self.timers.set(Timer::AgeGrace, now + grace);
            }
        }
        if self.timers.take_expired(Timer::AgeGrace, now) {
            self.close(ErrorCode::NO_ERROR, now);
            return;
        }
        if self.timers.take_expired(Timer::Shutdown, now) && self.shutdown == Shutdown::Announced {
            self.send_final_goaway();
            self.maybe_finish_shutdown();
        }
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.expire_call(id);
        }
    }

    /// A call's deadline passed.
    fn expire_call(&mut self, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.deadline = None;
        let on_wire = stream.state.is_active();
        let answerable = !stream.local && stream.state.can_send();
        self.end_call(id, Status::deadline_exceeded("deadline exceeded"), false);
        if let Some(pos) = self.pending_open.iter().position(|&p| p == id) {
            self.pending_open.remove(pos);
        }
        if answerable {
            // A server tells the client why, rather than a bare RST_STREAM(CANCEL) that some
            // clients report as CANCELLED: trailers with DEADLINE_EXCEEDED, then the reset.
            self.queue_trailers(id, Status::deadline_exceeded("deadline exceeded"));
        } else if on_wire {
            self.reset_stream(id, ErrorCode::CANCEL);
        } else {
            self.set_state(id, super::StreamState::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn next_is_the_earliest_and_expiry_clears() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(
            t.0.len(),
            Timer::HeaderBlock as usize + 1,
            "one slot per timer"
        );
        assert_eq!(t.next(), None);
        t.set(Timer::KeepalivePing, t0 + Duration::from_secs(5));
        t.set(Timer::SettingsAck, t0 + Duration::from_secs(2));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(2)));
        assert!(!t.take_expired(Timer::SettingsAck, t0 + Duration::from_secs(1)));
        assert!(t.take_expired(Timer::SettingsAck, t0 + Duration::from_secs(2)));
        assert!(!t.take_expired(Timer::SettingsAck, t0 + Duration::from_secs(3)));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(5)));
        t.clear(Timer::KeepalivePing);
        assert_eq!(t.next(), None);
    }
}
