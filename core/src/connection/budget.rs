//! Token buckets that police abusive peers, refilled from the `now` passed to the connection.

use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens, refilled at `rate` tokens per second. Tokens are kept in
/// thousandths so slow rates refill smoothly without floating point.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    milli_tokens: u64,
    capacity: u64,
    rate: u64,
    last: Option<Instant>,
}

impl Budget {
    /// A full bucket.
    pub(crate) fn new(burst: u32, rate_per_sec: u32) -> Self {
        let capacity = u64::from(burst.max(1)) * 1000;
        Self {
            milli_tokens: capacity,
            capacity,
            rate: u64::from(rate_per_sec),
            last: None,
        }
    }

    /// Takes one token; `false` when the bucket is empty (the peer is over its budget).
    pub(crate) fn spend(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last);
            let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            let refill = elapsed_ms.saturating_mul(self.rate);
            self.milli_tokens = self.milli_tokens.saturating_add(refill).min(self.capacity);
            // Keep the sub-millisecond remainder for the next refill.
            self.last = last
                .checked_add(Duration::from_millis(elapsed_ms))
                .or(Some(now));
        } else {
            self.last = Some(now);
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = Budget::new(3, 2);
        assert!(b.spend(t0) && b.spend(t0) && b.spend(t0));
        assert!(!b.spend(t0), "burst exhausted");
        assert!(
            !b.spend(t0 + Duration::from_millis(400)),
            "0.8 tokens is not a token"
        );
        assert!(
            b.spend(t0 + Duration::from_millis(600)),
            "1.2 tokens after 0.6 s at 2/s"
        );
        assert!(!b.spend(t0 + Duration::from_millis(600)));
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..3).all(|_| b.spend(later)));
        assert!(!b.spend(later));
    }
}
