//! The `grpc-timeout` header (PROTOCOL-HTTP2.md: `Timeout → TimeoutValue TimeoutUnit`,
//! at most 8 ASCII digits followed by one of `H M S m u n`).

use core::fmt;
use core::ops::Deref;
use core::time::Duration;

/// The largest `TimeoutValue`: 8 digits.
const MAX_VALUE: u64 = 99_999_999;

/// Units from finest to coarsest, with their length in nanoseconds.
const UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60_000_000_000),
    (b'H', 3_600_000_000_000),
];

/// An encoded `grpc-timeout` value held on the stack (at most 8 digits and a unit).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TimeoutValue {
    buf: [u8; 9],
    len: u8,
}

impl TimeoutValue {
    /// The header value bytes, e.g. `b"100m"`.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The header value as text (always ASCII).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl Deref for TimeoutValue {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for TimeoutValue {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for TimeoutValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeoutValue({})", self.as_str())
    }
}

/// Encodes `d` for `grpc-timeout` with the finest unit whose value fits in 8 digits,
/// rounding up so the peer's deadline is never earlier than ours. Zero is `0n`; a duration
/// beyond 99,999,999 hours is sent as that maximum.
pub fn encode_timeout(d: Duration) -> TimeoutValue {
    let nanos = d.as_nanos();
    let (unit, value) = UNITS
        .iter()
        .find_map(|&(unit, per)| {
            let v = nanos.div_ceil(per);
            u64::try_from(v)
                .ok()
                .filter(|&v| v <= MAX_VALUE)
                .map(|v| (unit, v))
        })
        .unwrap_or((b'H', MAX_VALUE));
    let mut digits = [0u8; 8];
    let mut n = value;
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is below 10, so the narrowing is exact.
        let digit = u8::try_from(n % 10).unwrap_or(0);
        if let Some(slot) = digits.get_mut(start) {
            *slot = b'0' + digit;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    let mut out = TimeoutValue {
        buf: [0; 9],
        len: 0,
    };
    for &b in digits
        .get(start..)
        .unwrap_or(&[])
        .iter()
        .chain([unit].iter())
    {
        if let Some(slot) = out.buf.get_mut(usize::from(out.len)) {
            *slot = b;
            out.len += 1;
        }
    }
    out
}

/// A malformed `grpc-timeout` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutError {
    /// No digits, more than 8 digits, or a non-digit before the unit.
    BadValue,
    /// The last byte is not one of `H M S m u n`, or it is missing.
    BadUnit,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadValue => f.write_str("grpc-timeout value must be 1 to 8 ASCII digits"),
            Self::BadUnit => f.write_str("grpc-timeout unit must be one of H M S m u n"),
        }
    }
}

impl std::error::Error for TimeoutError {}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits then one unit byte; nothing else.
pub fn parse_timeout(v: &[u8]) -> Result<Duration, TimeoutError> {
    let (&unit, digits) = v.split_last().ok_or(TimeoutError::BadUnit)?;
    if digits.is_empty() || digits.len() > 8 {
        return Err(TimeoutError::BadValue);
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(TimeoutError::BadValue);
        }
        // At most 8 digits: n < 10^8, far from overflow.
        n = n * 10 + u64::from(b - b'0');
    }
    // n ≤ 99,999,999, so n × 3600 s fits comfortably in u64.
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return Err(TimeoutError::BadUnit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(d: Duration) -> String {
        encode_timeout(d).as_str().to_owned()
    }

    #[test]
    fn encodes_with_finest_fitting_unit() {
        assert_eq!(enc(Duration::ZERO), "0n");
        assert_eq!(enc(Duration::from_nanos(1)), "1n");
        assert_eq!(enc(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(enc(Duration::from_millis(100)), "100000u");
        assert_eq!(enc(Duration::from_micros(99_999_999)), "99999999u");
        assert_eq!(enc(Duration::from_secs(1)), "1000000u");
        assert_eq!(enc(Duration::from_secs(100)), "100000m");
        assert_eq!(enc(Duration::from_secs(99_999)), "99999000m");
        assert_eq!(enc(Duration::from_secs(100_000)), "100000S");
        assert_eq!(enc(Duration::from_secs(99_999_999)), "99999999S");
        assert_eq!(enc(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(enc(Duration::from_secs(99_999_999 * 60)), "99999999M");
        assert_eq!(enc(Duration::from_secs(6_000_000_000)), "1666667H");
        assert_eq!(enc(Duration::MAX), "99999999H", "clamped");
        assert_eq!(&*encode_timeout(Duration::from_nanos(5)), b"5n");
    }

    #[test]
    fn encoding_rounds_up_never_down() {
        // 100,000,000 ns does not fit in 8 digits of n: 100000u exactly.
        assert_eq!(enc(Duration::from_nanos(100_000_000)), "100000u");
        // One nanosecond more must round up to the next microsecond.
        assert_eq!(enc(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(
            enc(Duration::from_secs(100_000) + Duration::from_nanos(1)),
            "100001S"
        );
        for d in [
            Duration::from_nanos(123_456_789_123),
            Duration::from_secs(7 * 24 * 3600) + Duration::from_nanos(1),
            Duration::from_secs(3_000_000_000) + Duration::from_millis(1),
        ] {
            let back = parse_timeout(&encode_timeout(d)).unwrap();
            assert!(back >= d, "{d:?} became {back:?}");
        }
    }

    #[test]
    fn every_unit_round_trips() {
        let cases = [
            ("7H", Duration::from_secs(7 * 3600)),
            ("7M", Duration::from_secs(7 * 60)),
            ("7S", Duration::from_secs(7)),
            ("7m", Duration::from_millis(7)),
            ("7u", Duration::from_micros(7)),
            ("7n", Duration::from_nanos(7)),
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
            ("00000001S", Duration::from_secs(1)),
        ];
        for (text, d) in cases {
            assert_eq!(parse_timeout(text.as_bytes()), Ok(d), "{text}");
            let again = encode_timeout(d);
            assert_eq!(parse_timeout(&again), Ok(d), "{text} -> {again:?}");
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            parse_timeout(b"123456789S"),
            Err(TimeoutError::BadValue),
            "9 digits"
        );
        assert_eq!(
            parse_timeout(b"12345678S"),
            Ok(Duration::from_secs(12_345_678))
        );
        assert_eq!(parse_timeout(b""), Err(TimeoutError::BadUnit));
        assert_eq!(parse_timeout(b"S"), Err(TimeoutError::BadValue));
        assert_eq!(parse_timeout(b"10"), Err(TimeoutError::BadUnit));
        assert_eq!(parse_timeout(b"10s"), Err(TimeoutError::BadUnit));
        assert_eq!(parse_timeout(b"10h"), Err(TimeoutError::BadUnit));
        assert_eq!(parse_timeout(b"-1S"), Err(TimeoutError::BadValue));
        assert_eq!(parse_timeout(b"+1S"), Err(TimeoutError::BadValue));
        assert_eq!(parse_timeout(b" 1S"), Err(TimeoutError::BadValue));
        assert_eq!(parse_timeout(b"1 S"), Err(TimeoutError::BadValue));
        assert_eq!(parse_timeout(b"1S "), Err(TimeoutError::BadValue));
        assert_eq!(parse_timeout(b"1.5S"), Err(TimeoutError::BadValue));
        assert_eq!(parse_timeout(b"\xff1S"), Err(TimeoutError::BadValue));
    }
}
