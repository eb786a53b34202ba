//! Absolute expiry times, with the seconds-versus-milliseconds rule.

use crate::Error;
use crate::error::json_type;
use serde_json::Value;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Numbers below this are read as **seconds** since the epoch, numbers at or above it as
/// **milliseconds**.
///
/// 10^11 seconds is the year 5138; 10^11 milliseconds is 1973-03-03. Every real expiry written
/// in milliseconds (Claude's `expiresAt`, OpenClaw's `expires`) is above 1.6 × 10^12, and every
/// real one written in seconds (a hand-made file, Python's `time.time()`) is below 10^10, so the
/// two ranges cannot be confused.
pub const SECONDS_BELOW: i64 = 100_000_000_000;

/// The earliest plausible expiry: 2001-09-09T01:46:40Z (10^12 ms). Anything earlier is a unit
/// mistake or garbage.
pub const MIN_EXPIRY_MS: i64 = 1_000_000_000_000;

/// The latest plausible expiry: 2200-01-01T00:00:00Z. Anything later is a unit mistake (e.g.
/// microseconds) or garbage.
pub const MAX_EXPIRY_MS: i64 = 7_258_118_400_000;

/// An absolute expiry instant, in milliseconds since the Unix epoch, always within
/// [`MIN_EXPIRY_MS`]..=[`MAX_EXPIRY_MS`].
///
/// ```
/// use credmap::ExpiresAt;
/// // milliseconds, as Claude's `expiresAt` writes it
/// let ms = ExpiresAt::from_number(1_767_225_600_000.0).unwrap();
/// // seconds, as a hand-made file might: the same instant
/// let s = ExpiresAt::from_number(1_767_225_600.0).unwrap();
/// assert_eq!(ms, s);
/// assert_eq!(ms.to_string(), "2026-01-01T00:00:00Z");
/// assert!(ExpiresAt::from_number(0.0).is_err());
/// assert!(ExpiresAt::from_number(-5.0).is_err());
/// assert!(ExpiresAt::from_number(1.7e15).is_err()); // microseconds: absurd
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiresAt(i64);

impl ExpiresAt {
    /// Reads a number by the seconds-versus-milliseconds rule ([`SECONDS_BELOW`]) and checks the
    /// range. Fractional milliseconds are dropped.
    pub fn from_number(n: f64) -> Result<Self, &'static str> {
        if !n.is_finite() {
            return Err("not a finite number");
        }
        if n == 0.0 {
            return Err("zero");
        }
        if n < 0.0 {
            return Err("negative");
        }
        let ms = if n < SECONDS_BELOW as f64 { n * 1000.0 } else { n };
        Self::from_millis(ms.trunc() as i64)
    }

    /// An expiry already in milliseconds, range-checked.
    pub fn from_millis(ms: i64) -> Result<Self, &'static str> {
        if ms <= 0 {
            return Err(if ms == 0 { "zero" } else { "negative" });
        }
        if ms < MIN_EXPIRY_MS {
            return Err("before 2001-09-09 (wrong unit?)");
        }
        if ms > MAX_EXPIRY_MS {
            return Err("after 2200-01-01 (wrong unit?)");
        }
        Ok(Self(ms))
    }

    /// Reads a JSON value at `path` (used in the error).
    pub fn from_json(value: &Value, path: &str) -> Result<Self, Error> {
        let Value::Number(num) = value else {
            return Err(Error::WrongType { path: path.to_owned(), expected: "a number", found: json_type(value) });
        };
        let n = num.as_f64().unwrap_or(f64::NAN);
        // i64 path first so that large integers keep full precision.
        let parsed = match num.as_i64() {
            Some(i) if i >= SECONDS_BELOW => Self::from_millis(i),
            _ => Self::from_number(n),
        };
        parsed.map_err(|problem| Error::InvalidExpiry { path: path.to_owned(), value: num.to_string(), problem })
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    #[must_use]
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// As a `SystemTime`.
    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0 as u64)
    }

    /// Milliseconds from `now_ms` until this expiry; negative once expired.
    #[must_use]
    pub fn remaining_ms(self, now_ms: i64) -> i64 {
        self.0 - now_ms
    }

    /// The JSON number to write (always milliseconds).
    #[must_use]
    pub fn to_json(self) -> Value {
        Value::from(self.0)
    }
}

impl fmt::Display for ExpiresAt {
    /// RFC 3339 in UTC, to the second (`2026-01-01T00:00:00Z`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, secs_of_day) = (self.as_secs().div_euclid(86_400), self.as_secs().rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (secs_of_day / 3600, secs_of_day % 3600 / 60, secs_of_day % 60);
        write!(f, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

impl fmt::Debug for ExpiresAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExpiresAt({} = {self})", self.0)
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian), valid over our whole range.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(ExpiresAt::from_millis(MIN_EXPIRY_MS).unwrap().to_string(), "2001-09-09T01:46:40Z");
        assert_eq!(ExpiresAt::from_millis(MAX_EXPIRY_MS).unwrap().to_string(), "2200-01-01T00:00:00Z");
        assert_eq!(ExpiresAt::from_millis(1_709_210_096_999).unwrap().to_string(), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn seconds_and_millis_agree() {
        let a = ExpiresAt::from_json(&json!(1_767_225_600), "e").unwrap();
        let b = ExpiresAt::from_json(&json!(1_767_225_600_000_i64), "e").unwrap();
        let c = ExpiresAt::from_json(&json!(1_767_225_600_000.5), "e").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
    }

    #[test]
    fn rejects_zero_negative_absurd_and_wrong_types() {
        for (v, problem) in [
            (json!(0), "zero"),
            (json!(-1), "negative"),
            (json!(-1_767_225_600_000_i64), "negative"),
            (json!(12_345), "before 2001-09-09 (wrong unit?)"),
            (json!(1_767_225_600_000_000_i64), "after 2200-01-01 (wrong unit?)"),
        ] {
            let err = ExpiresAt::from_json(&v, "x.expires").unwrap_err();
            assert_eq!(err, Error::InvalidExpiry { path: "x.expires".into(), value: v.to_string(), problem });
        }
        assert!(matches!(ExpiresAt::from_json(&json!("1767225600000"), "x"), Err(Error::WrongType { .. })));
        assert!(matches!(ExpiresAt::from_json(&json!(null), "x"), Err(Error::WrongType { .. })));
    }
}
