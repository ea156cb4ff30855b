//! Configured retries (gRFC A6): whether a failed attempt is tried again and after how long,
//! and the channel's retry throttle. Pure decisions; the channel acts on them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anygrpc_core::{Code, Metadata, Status};

use super::service_config::{RetryPolicy, RetryThrottling};

/// The trailer a server sets to ask for a delay (ms) before the next attempt, or for none
/// (a negative value).
pub(crate) const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// The header a retried attempt carries: how many attempts went before it.
pub(crate) const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

/// The most request bytes a call keeps to send again (A6's per-RPC buffer default); a call
/// that writes more commits to the attempt under way.
pub(crate) const PER_CALL_BUFFER: usize = 256 * 1024;

/// The most request bytes a channel's calls keep to send again, together (A6's default).
pub(crate) const PER_CHANNEL_BUFFER: usize = 16 * 1024 * 1024;

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The call ends with the attempt's status.
    Finish,
    /// Send the next attempt after this delay.
    RetryAfter(Duration),
}

/// A set of status codes, as a bit per code (no allocation per call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CodeSet(u32);

impl CodeSet {
    /// The set of `codes`.
    pub(crate) fn of(codes: &[Code]) -> Self {
        Self(codes.iter().fold(0, |bits, &code| bits | Self::bit(code)))
    }

    /// `code` is in the set.
    pub(crate) fn contains(self, code: Code) -> bool {
        self.0 & Self::bit(code) != 0
    }

    fn bit(code: Code) -> u32 {
        1u32.checked_shl(code as u32).unwrap_or(0)
    }
}

/// What a call's retries need of its `retryPolicy`, copied out (no allocation per call).
#[derive(Debug, Clone, Copy)]
struct Policy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    backoff_multiplier: f64,
    retryable: CodeSet,
}

/// One call's retry state.
#[derive(Debug)]
pub(crate) struct Retries {
    policy: Policy,
    /// Attempts made so far, the first included.
    attempts: u32,
    /// The upper bound of the next backoff, in seconds.
    bound: f64,
    rng: u64,
}

impl Retries {
    /// The state of a call whose first attempt is under way; `seed` spreads the jitter.
    pub(crate) fn new(policy: &RetryPolicy, seed: u64) -> Self {
        let policy = Policy {
            max_attempts: policy.max_attempts,
            initial_backoff: policy.initial_backoff,
            max_backoff: policy.max_backoff,
            backoff_multiplier: policy.backoff_multiplier,
            retryable: CodeSet::of(&policy.retryable_status_codes),
        };
        let bound = policy.initial_backoff.as_secs_f64();
        let mut state = seed;
        Self {
            policy,
            attempts: 1,
            bound,
            rng: super::backoff::splitmix64(&mut state) | 1,
        }
    }

    /// Attempts made so far, the first included.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After an uncommitted attempt ended with `status` and `trailers`: retry or finish.
    /// The throttle counts the attempt either way.
    pub(crate) fn decide(
        &mut self,
        status: &Status,
        trailers: &Metadata,
        throttle: Option<&Throttle>,
    ) -> Decision {
        if status.code() == Code::Ok {
            if let Some(throttle) = throttle {
                throttle.succeeded();
            }
            return Decision::Finish;
        }
        let pushback = pushback(trailers);
        let retryable = self.policy.retryable.contains(status.code());
        if retryable || pushback.is_some() {
            if let Some(throttle) = throttle {
                throttle.failed();
            }
        }
        let delay = match pushback {
            Some(Pushback::Stop) => return Decision::Finish,
            _ if !retryable => return Decision::Finish,
            _ if self.attempts >= self.policy.max_attempts => return Decision::Finish,
            _ if throttle.is_some_and(|t| !t.allows()) => return Decision::Finish,
            Some(Pushback::After(delay)) => {
                // The server chose the delay; the backoff starts over after it.
                self.bound = self.policy.initial_backoff.as_secs_f64();
                delay
            }
            None => {
                let delay = Duration::from_secs_f64(self.bound * self.unit());
                self.bound = (self.bound * self.policy.backoff_multiplier)
                    .min(self.policy.max_backoff.as_secs_f64());
                delay
            }
        };
        self.attempts += 1;
        Decision::RetryAfter(delay)
    }

    /// Uniform in [0, 1) (xorshift64).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a server's `grpc-retry-pushback-ms` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pushback {
    /// Do not retry (a negative value, or one that is not a number).
    Stop,
    /// Retry after this long.
    After(Duration),
}

/// The pushback `trailers` carry, if any.
pub(super) fn pushback(trailers: &Metadata) -> Option<Pushback> {
    let value = trailers.get(PUSHBACK)?;
    Some(match value.trim().parse::<i64>() {
        Ok(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms.unsigned_abs())),
        _ => Pushback::Stop,
    })
}

/// A channel's retry throttle (A6's token bucket), shared by its calls: each failed attempt
/// takes a token, each success gives back `token_ratio`; retries stop while at most half the
/// tokens are left. Kept in thousandths, as the ratio is.
#[derive(Debug)]
pub(crate) struct Throttle {
    max: u32,
    ratio: u32,
    tokens: AtomicU32,
}

impl Throttle {
    /// A full bucket of `config.max_tokens`.
    pub(crate) fn new(config: RetryThrottling) -> Self {
        let max = config.max_tokens * 1000;
        Self {
            max,
            ratio: (config.token_ratio * 1000.0).round() as u32,
            tokens: AtomicU32::new(max),
        }
    }

    /// An attempt failed: one token less.
    pub(super) fn failed(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(1000))
            });
    }

    /// A call succeeded: `token_ratio` back.
    pub(super) fn succeeded(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + self.ratio).min(self.max))
            });
    }

    /// Whether retries may go out: more than half the tokens are left.
    pub(super) fn allows(&self) -> bool {
        self.tokens.load(Ordering::Relaxed) > self.max / 2
    }

    /// The tokens left, in thousandths (for tests).
    #[cfg(test)]
    fn tokens(&self) -> u32 {
        self.tokens.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            backoff_multiplier: 2.0,
            retryable_status_codes: vec![Code::Unavailable],
        }
    }

    fn unavailable() -> Status {
        Status::unavailable("down")
    }

    fn pushed(value: &str) -> Metadata {
        let mut trailers = Metadata::new();
        trailers.insert(PUSHBACK, value).expect("a valid value");
        trailers
    }

    #[test]
    fn backoff_is_random_below_a_bound_that_grows_to_the_max() {
        let mut bounds_seen = [0.0f64; 4];
        for seed in 0..200 {
            let mut retries = Retries::new(&policy(5), seed);
            for (i, seen) in bounds_seen.iter_mut().enumerate() {
                let Decision::RetryAfter(delay) =
                    retries.decide(&unavailable(), &Metadata::new(), None)
                else {
                    panic!("attempt {} was not retried", i + 1);
                };
                let bound = [0.1, 0.2, 0.3, 0.3][i];
                assert!(delay.as_secs_f64() < bound, "{delay:?} ≥ {bound}");
                *seen = seen.max(delay.as_secs_f64());
            }
            assert_eq!(retries.attempts(), 5);
            assert_eq!(
                retries.decide(&unavailable(), &Metadata::new(), None),
                Decision::Finish,
                "five attempts in all"
            );
        }
        // Over 200 calls the largest delays come near each bound.
        for (seen, bound) in bounds_seen.iter().zip([0.1, 0.2, 0.3, 0.3]) {
            assert!(*seen > bound * 0.9, "{seen} vs {bound}");
        }
    }

    #[test]
    fn only_listed_codes_are_retried_and_ok_ends_the_call() {
        let mut retries = Retries::new(&policy(3), 1);
        let internal = Status::internal("bug");
        assert_eq!(
            retries.decide(&internal, &Metadata::new(), None),
            Decision::Finish
        );
        assert_eq!(
            retries.decide(&Status::ok(), &Metadata::new(), None),
            Decision::Finish
        );
        assert_eq!(retries.attempts(), 1);
    }

    #[test]
    fn pushback_sets_the_delay_or_stops_retrying() {
        let mut retries = Retries::new(&policy(5), 1);
        assert_eq!(
            retries.decide(&unavailable(), &pushed("1500"), None),
            Decision::RetryAfter(Duration::from_millis(1500))
        );
        assert_eq!(
            retries.decide(&unavailable(), &pushed("0"), None),
            Decision::RetryAfter(Duration::ZERO)
        );
        for stop in ["-1", "soon", ""] {
            let mut retries = Retries::new(&policy(5), 1);
            assert_eq!(
                retries.decide(&unavailable(), &pushed(stop), None),
                Decision::Finish,
                "pushback {stop:?}"
            );
        }
        // Pushback on a code that is not retryable does not make it so.
        let mut retries = Retries::new(&policy(5), 1);
        assert_eq!(
            retries.decide(&Status::internal("x"), &pushed("10"), None),
            Decision::Finish
        );
    }

    #[test]
    fn the_throttle_stops_retries_at_half_its_tokens_and_successes_refill_it() {
        let throttle = Throttle::new(RetryThrottling {
            max_tokens: 4,
            token_ratio: 0.5,
        });
        let mut retries = Retries::new(&policy(5), 1);
        // 4 → 3: above half, retried.
        assert!(matches!(
            retries.decide(&unavailable(), &Metadata::new(), Some(&throttle)),
            Decision::RetryAfter(_)
        ));
        // 3 → 2: at half, not retried.
        assert_eq!(
            retries.decide(&unavailable(), &Metadata::new(), Some(&throttle)),
            Decision::Finish
        );
        assert_eq!(throttle.tokens(), 2000);
        // Failures never take it below zero.
        for _ in 0..5 {
            throttle.failed();
        }
        assert_eq!(throttle.tokens(), 0);
        // Five successes: 2.5 tokens, above half again.
        let mut fresh = Retries::new(&policy(5), 2);
        for _ in 0..5 {
            assert_eq!(
                fresh.decide(&Status::ok(), &Metadata::new(), Some(&throttle)),
                Decision::Finish
            );
        }
        assert_eq!(throttle.tokens(), 2500);
        assert!(
            matches!(
                fresh.decide(&unavailable(), &Metadata::new(), Some(&throttle)),
                Decision::Finish
            ),
            "2.5 → 1.5: not above half"
        );
        // It never fills beyond its size.
        for _ in 0..100 {
            throttle.succeeded();
        }
        assert_eq!(throttle.tokens(), 4000);
    }
}
