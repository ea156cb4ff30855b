//! Hedging (gRFC A6) as decisions: when a hedged call sends its next attempt, and which
//! attempt's end ends the call. Pure; `client::hedged` acts on them.
//!
//! The first attempt goes out at once, each next one `hedgingDelay` after the one before,
//! up to `maxAttempts`, while no attempt has committed the call. An attempt that fails with
//! one of `nonFatalStatusCodes` lets the others go on and brings the next one forward to now
//! (or to the server's pushback; a negative pushback sends no more). Any other end, OK
//! included, commits the call to that attempt, as does a response head.

use std::time::{Duration, Instant};

use anygrpc_core::{Code, Metadata, Status};

use super::retry::{CodeSet, Pushback, Throttle, pushback};
use super::service_config::HedgingPolicy;

/// What an attempt's end means for a hedged call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptVerdict {
    /// The call ends as this attempt did.
    Commit,
    /// A non-fatal failure: the other attempts (and the next ones) go on.
    GoOn,
}

/// One hedged call's schedule.
#[derive(Debug)]
pub(crate) struct Hedging {
    max_attempts: u32,
    delay: Duration,
    non_fatal: CodeSet,
    /// Attempts sent so far.
    sent: u32,
    /// When the next attempt is due; `None`: no more will be sent.
    next_at: Option<Instant>,
}

impl Hedging {
    /// The schedule of a call whose first attempt goes out at `now`.
    pub(crate) fn new(policy: &HedgingPolicy, now: Instant) -> Self {
        let mut hedging = Self {
            max_attempts: policy.max_attempts,
            delay: policy.hedging_delay,
            non_fatal: CodeSet::of(&policy.non_fatal_status_codes),
            sent: 0,
            next_at: Some(now),
        };
        hedging.sent_one(now);
        hedging
    }

    /// Attempts sent so far, the first included.
    pub(crate) fn sent(&self) -> u32 {
        self.sent
    }

    /// When the next attempt is due, if one will be sent.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// An attempt is due at `now`, and the throttle lets it go.
    pub(crate) fn due(&self, now: Instant, throttle: Option<&Throttle>) -> bool {
        self.next_at.is_some_and(|at| at <= now) && throttle.is_none_or(Throttle::allows)
    }

    /// No attempt will be sent any more (all sent, a pushback stopped them, or the throttle
    /// holds them back).
    pub(crate) fn exhausted(&self, throttle: Option<&Throttle>) -> bool {
        self.next_at.is_none() || throttle.is_some_and(|t| !t.allows())
    }

    /// The due attempt went out at `now`.
    pub(crate) fn sent_one(&mut self, now: Instant) {
        self.sent += 1;
        self.next_at = (self.sent < self.max_attempts)
            .then(|| now.checked_add(self.delay))
            .flatten();
    }

    /// An attempt ended at `now` with `status` and `trailers` (before any attempt committed);
    /// the throttle counts it.
    pub(crate) fn ended(
        &mut self,
        status: &Status,
        trailers: &Metadata,
        now: Instant,
        throttle: Option<&Throttle>,
    ) -> AttemptVerdict {
        let code = status.code();
        if code == Code::Ok {
            if let Some(throttle) = throttle {
                throttle.succeeded();
            }
            return AttemptVerdict::Commit;
        }
        if !self.non_fatal.contains(code) {
            return AttemptVerdict::Commit;
        }
        if let Some(throttle) = throttle {
            throttle.failed();
        }
        if self.next_at.is_some() {
            self.next_at = match pushback(trailers) {
                Some(Pushback::Stop) => None,
                Some(Pushback::After(delay)) => now.checked_add(delay),
                None => Some(now),
            };
        }
        AttemptVerdict::GoOn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::service_config::RetryThrottling;

    fn policy(max_attempts: u32, delay_ms: u64) -> HedgingPolicy {
        HedgingPolicy {
            max_attempts,
            hedging_delay: Duration::from_millis(delay_ms),
            non_fatal_status_codes: vec![Code::Unavailable],
        }
    }

    fn pushed(value: &str) -> Metadata {
        let mut trailers = Metadata::new();
        trailers
            .insert(super::super::retry::PUSHBACK, value)
            .unwrap();
        trailers
    }

    #[test]
    fn attempts_go_out_a_delay_apart_up_to_the_maximum() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut hedging = Hedging::new(&policy(3, 100), t0);
        assert_eq!(hedging.sent(), 1);
        assert_eq!(hedging.next_at(), Some(t0 + ms(100)));
        assert!(!hedging.due(t0 + ms(99), None));
        assert!(hedging.due(t0 + ms(100), None));
        hedging.sent_one(t0 + ms(100));
        assert_eq!(hedging.next_at(), Some(t0 + ms(200)));
        hedging.sent_one(t0 + ms(200));
        assert_eq!(hedging.next_at(), None, "three in all");
        assert!(hedging.exhausted(None));
        assert!(!hedging.due(t0 + ms(900), None));
    }

    #[test]
    fn a_zero_delay_sends_them_all_at_once() {
        let t0 = Instant::now();
        let mut hedging = Hedging::new(&policy(3, 0), t0);
        while hedging.due(t0, None) {
            hedging.sent_one(t0);
        }
        assert_eq!(hedging.sent(), 3);
    }

    #[test]
    fn a_non_fatal_failure_brings_the_next_attempt_forward_and_others_commit() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut hedging = Hedging::new(&policy(3, 100), t0);
        let verdict = hedging.ended(
            &Status::unavailable("x"),
            &Metadata::new(),
            t0 + ms(10),
            None,
        );
        assert_eq!(verdict, AttemptVerdict::GoOn);
        assert!(hedging.due(t0 + ms(10), None), "at once, not at 100 ms");
        for status in [Status::ok(), Status::internal("x"), Status::cancelled("x")] {
            let mut hedging = Hedging::new(&policy(3, 100), t0);
            assert_eq!(
                hedging.ended(&status, &Metadata::new(), t0, None),
                AttemptVerdict::Commit,
                "{status:?}"
            );
        }
    }

    #[test]
    fn pushback_delays_or_stops_the_next_attempt() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let failed = Status::unavailable("x");
        let mut hedging = Hedging::new(&policy(4, 100), t0);
        hedging.ended(&failed, &pushed("250"), t0 + ms(10), None);
        assert_eq!(hedging.next_at(), Some(t0 + ms(260)));
        hedging.sent_one(t0 + ms(260));
        assert_eq!(
            hedging.next_at(),
            Some(t0 + ms(360)),
            "then the delay again"
        );
        hedging.ended(&failed, &pushed("-1"), t0 + ms(300), None);
        assert_eq!(hedging.next_at(), None);
        assert!(hedging.exhausted(None));
    }

    #[test]
    fn the_throttle_counts_attempts_and_holds_new_ones_back() {
        let t0 = Instant::now();
        let throttle = Throttle::new(RetryThrottling {
            max_tokens: 2,
            token_ratio: 1.0,
        });
        let mut hedging = Hedging::new(&policy(5, 0), t0);
        assert!(hedging.due(t0, Some(&throttle)));
        hedging.ended(
            &Status::unavailable("x"),
            &Metadata::new(),
            t0,
            Some(&throttle),
        );
        assert!(!hedging.due(t0, Some(&throttle)), "one token of two left");
        assert!(hedging.exhausted(Some(&throttle)));
        hedging.ended(&Status::ok(), &Metadata::new(), t0, Some(&throttle));
        assert!(hedging.due(t0, Some(&throttle)), "a success gave it back");
    }
}

#[cfg(test)]
mod code_set_tests {
    use super::*;

    #[test]
    fn a_code_set_holds_exactly_its_codes() {
        let set = CodeSet::of(&[Code::Unavailable, Code::Ok, Code::Unauthenticated]);
        for code in (0..=16).map(Code::from_i32) {
            let expected = matches!(code, Code::Unavailable | Code::Ok | Code::Unauthenticated);
            assert_eq!(set.contains(code), expected, "{code:?}");
        }
        assert!(!CodeSet::default().contains(Code::Ok));
    }
}
