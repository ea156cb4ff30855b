//! Flow-control windows (RFC 9113 §5.2, §6.9).

use crate::error::ErrorCode;

/// The largest window RFC 9113 §6.9.1 allows: 2^31 - 1.
pub(crate) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// The window every stream and the connection start with before SETTINGS (RFC 9113 §6.9.2).
pub(crate) const DEFAULT_WINDOW: u32 = 65_535;

/// Bytes we may still send. Goes negative when the peer lowers SETTINGS_INITIAL_WINDOW_SIZE
/// (RFC 9113 §6.9.2); no DATA is sent until it is positive again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendWindow(i64);

impl SendWindow {
    pub(crate) fn new(initial: u32) -> Self {
        Self(i64::from(initial))
    }

    /// Bytes available now (0 when the window is negative).
    pub(crate) fn available(self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(usize::MAX)
    }

    /// We sent `n` bytes of DATA payload.
    pub(crate) fn consume(&mut self, n: usize) {
        self.0 -= i64::try_from(n).unwrap_or(MAX_WINDOW);
    }

    /// A WINDOW_UPDATE arrived. A window pushed past 2^31-1 is a FLOW_CONTROL_ERROR (§6.9.1).
    pub(crate) fn grow(&mut self, increment: u32) -> Result<(), ErrorCode> {
        let next = self.0 + i64::from(increment);
        if next > MAX_WINDOW {
            return Err(ErrorCode::FLOW_CONTROL_ERROR);
        }
        self.0 = next;
        Ok(())
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` (§6.9.2); may go negative, never past
    /// 2^31-1.
    pub(crate) fn adjust(&mut self, delta: i64) -> Result<(), ErrorCode> {
        let next = self.0 + delta;
        if next > MAX_WINDOW {
            return Err(ErrorCode::FLOW_CONTROL_ERROR);
        }
        self.0 = next;
        Ok(())
    }
}

/// Our receive side of one window: what the peer may still send, and the credit released by the
/// application that we have not announced yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecvWindow {
    /// Bytes the peer may still send before exceeding what we advertised.
    remaining: i64,
    /// Released bytes not yet announced in a WINDOW_UPDATE.
    unannounced: u32,
    /// The window we aim to keep open; updates are batched until half of it is unannounced.
    target: u32,
}

impl RecvWindow {
    /// A window whose peer currently believes it may send `advertised` bytes, aiming for `target`.
    pub(crate) fn new(advertised: u32, target: u32) -> Self {
        Self {
            remaining: i64::from(advertised),
            unannounced: 0,
            target,
        }
    }

    /// Our SETTINGS_INITIAL_WINDOW_SIZE took effect (the peer acknowledged it): the peer's
    /// allowance moves by `delta`, possibly below zero (RFC 9113 §6.9.2).
    pub(crate) fn adjust(&mut self, delta: i64) {
        self.remaining += delta;
    }

    /// Counts `n` received bytes; `Err` when the peer exceeded what we advertised (§6.9.1).
    pub(crate) fn receive(&mut self, n: u32) -> Result<(), ErrorCode> {
        let next = self.remaining - i64::from(n);
        if next < 0 {
            return Err(ErrorCode::FLOW_CONTROL_ERROR);
        }
        self.remaining = next;
        Ok(())
    }

    /// The application released `n` bytes. Returns the increment to announce now, if the batch
    /// reached half the target (WINDOW_UPDATEs are batched, not one per DATA frame).
    pub(crate) fn release(&mut self, n: u32) -> Option<u32> {
        self.unannounced = self.unannounced.saturating_add(n);
        if self.unannounced >= self.target / 2 {
            self.announce()
        } else {
            None
        }
    }

    /// Announces everything released so far, if anything; used also when the peer needs credit
    /// at once (a large message in progress).
    pub(crate) fn announce(&mut self) -> Option<u32> {
        let room = u32::try_from((MAX_WINDOW - self.remaining).max(0)).unwrap_or(0);
        let increment = self.unannounced.min(room);
        self.unannounced = 0;
        if increment == 0 {
            return None;
        }
        self.remaining += i64::from(increment);
        Some(increment)
    }

    /// Bytes the peer may still send (0 when it is over).
    pub(crate) fn remaining(&self) -> usize {
        usize::try_from(self.remaining.max(0)).unwrap_or(usize::MAX)
    }

    /// Raises what the peer may send back up to `limit`, once it used half of it: the
    /// increment to announce, if any. A window above `limit` is left to shrink as the peer
    /// uses it.
    pub(crate) fn refill(&mut self, limit: u32) -> Option<u32> {
        let limit = i64::from(limit).min(MAX_WINDOW);
        let increment = limit - self.remaining;
        if increment <= 0 || self.remaining * 2 > limit {
            return None;
        }
        self.remaining = limit;
        u32::try_from(increment).ok()
    }

    /// Grants extra credit beyond the target, without a release (so a message larger than the
    /// window can complete). Returns the increment to announce.
    pub(crate) fn grant(&mut self, n: u32) -> Option<u32> {
        self.unannounced = self.unannounced.saturating_add(n);
        self.announce()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_overflow_is_flow_control_error() {
        let mut w = SendWindow::new(DEFAULT_WINDOW);
        assert_eq!(w.grow((MAX_WINDOW - 65_535) as u32), Ok(()));
        assert_eq!(w.available() as i64, MAX_WINDOW);
        assert_eq!(w.grow(1), Err(ErrorCode::FLOW_CONTROL_ERROR));
    }

    #[test]
    fn send_window_may_go_negative_after_settings() {
        let mut w = SendWindow::new(100);
        w.consume(100);
        assert_eq!(w.adjust(-50), Ok(()));
        assert_eq!(w.available(), 0);
        w.grow(60).unwrap();
        assert_eq!(w.available(), 10);
    }

    #[test]
    fn recv_window_rejects_one_byte_over() {
        let mut w = RecvWindow::new(10, 10);
        assert_eq!(w.receive(10), Ok(()));
        assert_eq!(w.receive(1), Err(ErrorCode::FLOW_CONTROL_ERROR));
    }

    #[test]
    fn recv_window_shrinks_when_smaller_settings_take_effect() {
        let mut w = RecvWindow::new(65_535, 1);
        w.receive(65_000).unwrap();
        w.adjust(1 - 65_535);
        assert_eq!(
            w.receive(1),
            Err(ErrorCode::FLOW_CONTROL_ERROR),
            "allowance went negative"
        );
        assert_eq!(w.release(65_000), Some(65_000));
        assert_eq!(w.receive(1), Ok(()), "one byte of window after the release");
        assert_eq!(w.receive(1), Err(ErrorCode::FLOW_CONTROL_ERROR));
    }

    #[test]
    fn recv_window_batches_updates_at_half_target() {
        let mut w = RecvWindow::new(100, 100);
        w.receive(100).unwrap();
        assert_eq!(w.release(49), None);
        assert_eq!(w.release(1), Some(50));
        assert_eq!(
            w.receive(51),
            Err(ErrorCode::FLOW_CONTROL_ERROR),
            "50 announced back, 51 is one over"
        );
        assert_eq!(w.receive(50), Ok(()));
        assert_eq!(w.release(10), None);
        assert_eq!(w.announce(), Some(10));
        assert_eq!(w.receive(10), Ok(()));
        assert_eq!(w.announce(), None);
    }

    #[test]
    fn recv_window_refills_to_a_moving_limit_once_half_is_used() {
        let mut w = RecvWindow::new(100, 100);
        assert_eq!(w.refill(100), None, "nothing used");
        w.receive(40).unwrap();
        assert_eq!(w.refill(100), None, "less than half used");
        w.receive(20).unwrap();
        assert_eq!(w.refill(100), Some(60));
        assert_eq!(w.remaining(), 100);
        // The budget shrank: the window is left to drain down to the new limit.
        w.receive(70).unwrap();
        assert_eq!(w.refill(50), None, "30 left of a limit of 50");
        w.receive(10).unwrap();
        assert_eq!(w.refill(50), Some(30), "20 left of a limit of 50");
        assert_eq!(w.remaining(), 50);
        assert_eq!(
            w.refill(10),
            None,
            "a window above the limit is not taken back"
        );
        assert_eq!(w.receive(51), Err(ErrorCode::FLOW_CONTROL_ERROR));
    }

    #[test]
    fn recv_window_never_announces_past_max() {
        let mut w = RecvWindow::new(MAX_WINDOW as u32 - 5, 100);
        assert_eq!(w.grant(50), Some(5));
        assert_eq!(w.receive(MAX_WINDOW as u32), Ok(()));
    }
}
