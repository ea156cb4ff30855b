//! SETTINGS, PING (keepalive, and the policing of a client's pings) and WINDOW_UPDATE.

use crate::connection::flow_control::DEFAULT_WINDOW;
use crate::connection::{
    Connection, Control, PING_APP, PING_KEEPALIVE, PING_SHUTDOWN, Shutdown, Side,
};
use crate::error::ErrorCode;
use crate::event::Event;
use crate::frame::{Ping, Settings, WindowUpdate};

impl Connection {
    pub(super) fn on_settings(&mut self, settings: Settings) {
        if settings.ack {
            if self.settings_unacked == 0 {
                self.protocol_error(ErrorCode::PROTOCOL_ERROR, "SETTINGS ACK without SETTINGS");
                return;
            }
            self.settings_unacked -= 1;
            if self.settings_unacked == 0 {
                self.timers
                    .clear(crate::connection::timers::Timer::SettingsAck);
            }
            if !self.settings_acked {
                self.settings_acked = true;
                // RFC 7541 §6.3, RFC 9113 §4.3.1: from now on the peer's size updates may go
                // up to our SETTINGS_HEADER_TABLE_SIZE, and below 4,096 its next block must
                // open with one.
                self.decoder
                    .set_max_table_size(self.config.header_table_size as usize);
                let ours = i64::from(self.config.initial_stream_window);
                let delta = ours - i64::from(DEFAULT_WINDOW.max(self.config.initial_stream_window));
                if delta != 0 {
                    for stream in self.streams.values_mut() {
                        stream.recv_window.adjust(delta);
                    }
                }
            }
            return;
        }
        if self.got_peer_settings && !self.spend_idle() {
            return;
        }
        let first = !self.got_peer_settings;
        self.got_peer_settings = true;
        if self.side == Side::Client && settings.enable_push == Some(true) {
            // RFC 9113 §6.5.2: a server must not set ENABLE_PUSH to 1.
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "server enabled push");
            return;
        }
        if let Some(size) = settings.header_table_size {
            // We may use up to the peer's table size; 64 KiB bounds our encoder's memory.
            self.encoder
                .set_max_table_size((size as usize).min(64 << 10));
        }
        match settings.max_concurrent_streams {
            Some(max) => self.peer.max_concurrent_streams = max,
            // The peer's first SETTINGS leave the limit out: it has none (RFC 9113 §6.5.2),
            // and the 100 assumed until then no longer holds, as in grpc-go.
            None if first => self.peer.max_concurrent_streams = u32::MAX,
            None => {}
        }
        if let Some(size) = settings.max_frame_size {
            self.peer.max_frame_size = size;
        }
        if let Some(size) = settings.max_header_list_size {
            self.peer.max_header_list_size = size;
        }
        if let Some(window) = settings.initial_window_size {
            // RFC 9113 §6.9.2: every stream's send window moves by the difference.
            let delta = i64::from(window) - i64::from(self.peer.initial_window);
            self.peer.initial_window = window;
            let mut overflow = false;
            let mut grown = Vec::new();
            for (id, stream) in self.streams.iter_mut() {
                if stream.send_window.adjust(delta).is_err() {
                    overflow = true;
                    break;
                }
                if delta > 0 && stream.has_output() {
                    grown.push(*id);
                }
            }
            if overflow {
                self.protocol_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a window",
                );
                return;
            }
            grown.sort_unstable();
            for id in grown {
                self.schedule(id);
            }
        }
        self.control.push_back(Control::SettingsAck);
        self.check_control_backlog();
        self.open_pending_calls();
    }

    pub(super) fn on_ping(&mut self, ping: Ping) {
        if !ping.ack {
            if !self.police_ping() {
                return;
            }
            if self.spend_idle() {
                self.control.push_back(Control::Ping {
                    payload: ping.payload,
                    ack: true,
                });
                self.check_control_backlog();
            }
            return;
        }
        let [kind, ..] = ping.payload;
        let seq = u64::from_be_bytes([
            0,
            ping.payload[1],
            ping.payload[2],
            ping.payload[3],
            ping.payload[4],
            ping.payload[5],
            ping.payload[6],
            ping.payload[7],
        ]);
        match kind {
            PING_APP => {
                if let Some(pos) = self
                    .app_pings
                    .iter()
                    .position(|&(s, _)| s & 0x00ff_ffff_ffff_ffff == seq)
                {
                    if let Some((_, sent)) = self.app_pings.remove(pos) {
                        let rtt = self.now.saturating_duration_since(sent);
                        self.events.push_back(Event::PingAcknowledged { rtt });
                    }
                }
            }
            PING_KEEPALIVE => {
                self.keepalive_outstanding = false;
                self.timers
                    .clear(crate::connection::timers::Timer::KeepaliveAck);
                self.arm_keepalive();
            }
            PING_SHUTDOWN if self.shutdown == Shutdown::Announced => {
                self.send_final_goaway();
                self.maybe_finish_shutdown();
            }
            _ => {}
        }
    }

    /// Server keepalive enforcement (keepalive.md): a PING sooner than the policy allows after
    /// the previous one is a strike; past `max_strikes`, GOAWAY(ENHANCE_YOUR_CALM,
    /// "too_many_pings"). `false` when the connection was closed.
    pub(super) fn police_ping(&mut self) -> bool {
        let (Side::Server, Some(policy)) = (self.side, self.config.ping_policy) else {
            return true;
        };
        let min = if self.streams.is_empty() && !policy.permit_without_calls {
            std::time::Duration::from_secs(2 * 60 * 60)
        } else {
            policy.min_interval
        };
        if let Some(last) = self.last_ping_recv {
            if self.now.saturating_duration_since(last) < min {
                self.ping_strikes += 1;
                if self.ping_strikes > policy.max_strikes {
                    self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, "too_many_pings");
                    return false;
                }
            }
        }
        self.last_ping_recv = Some(self.now);
        true
    }

    pub(super) fn on_window_update(&mut self, update: WindowUpdate) {
        if update.stream.is_connection() {
            if self.conn_send.grow(update.increment).is_err() {
                self.protocol_error(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection send window overflow",
                );
            }
            return;
        }
        if self.is_idle_stream(update.stream) {
            // RFC 9113 §5.1.
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
            return;
        }
        let Some(stream) = self.streams.get_mut(&update.stream) else {
            // A closed stream: legal while the peer has not seen the end yet (RFC 9113 §6.9);
            // it costs one lookup and triggers no reply, so it is not budgeted.
            return;
        };
        if stream.send_window.grow(update.increment).is_err() {
            self.stream_error(
                update.stream,
                ErrorCode::FLOW_CONTROL_ERROR,
                "stream send window overflow",
            );
            return;
        }
        self.schedule(update.stream);
    }
}
