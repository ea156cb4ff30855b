//! Reconnect backoff (gRPC connection-backoff.md): 1 s × 1.6 per attempt, ±20 % jitter, at
//! most 120 s; each attempt gets at least 20 s to connect.

use std::time::Duration;

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// First delay. Default 1 s.
    pub initial: Duration,
    /// Growth per attempt. Default 1.6.
    pub multiplier: f64,
    /// Random spread, as a fraction of the delay. Default 0.2.
    pub jitter: f64,
    /// Longest delay. Default 120 s.
    pub max: Duration,
    /// Shortest time an attempt may take to connect. Default 20 s.
    pub min_connect_timeout: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// splitmix64: steps `state` and returns the next value of its sequence; nearby seeds give
/// unrelated values. Seeds the jitter of backoffs and retries and shuffles addresses.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The state of one subchannel's backoff.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    current: Duration,
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig, seed: u64) -> Self {
        // So that nearby seeds give unrelated sequences.
        let mut state = seed;
        Self {
            config,
            current: config.initial,
            seed: splitmix64(&mut state) | 1,
        }
    }

    /// Forgets failures (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.current = self.config.initial;
    }

    /// The delay before the next attempt: the current backoff with jitter; then grows.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current.as_secs_f64();
        // xorshift: uniform in [-1, 1).
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let unit = (self.seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let delay = (base * (1.0 + self.config.jitter * unit)).max(0.0);
        let grown = (base * self.config.multiplier).min(self.config.max.as_secs_f64());
        self.current = Duration::from_secs_f64(grown);
        Duration::from_secs_f64(delay)
    }

    /// How long the next attempt may take to connect.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.current.max(self.config.min_connect_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_the_multiplier_within_jitter_up_to_the_max() {
        let mut b = Backoff::new(BackoffConfig::default(), 42);
        let mut expected = 1.0f64;
        for _ in 0..30 {
            let d = b.next_delay().as_secs_f64();
            assert!(
                d >= expected * 0.8 - 1e-9 && d <= expected * 1.2 + 1e-9,
                "{d} vs {expected}"
            );
            expected = (expected * 1.6).min(120.0);
        }
        b.reset();
        let d = b.next_delay().as_secs_f64();
        assert!((0.8..=1.2).contains(&d));
        assert_eq!(b.connect_timeout(), Duration::from_secs(20));
    }

    #[test]
    fn jitter_spreads_delays() {
        let delays: Vec<_> = (1..50)
            .map(|seed| Backoff::new(BackoffConfig::default(), seed).next_delay())
            .collect();
        let min = delays.iter().min().unwrap().as_secs_f64();
        let max = delays.iter().max().unwrap().as_secs_f64();
        assert!(max - min > 0.1, "jitter varies the delay: {min}..{max}");
    }
}
