//! Durations and instants for people.

use credmap::ExpiresAt;

pub(crate) use keeper_core::clock::human;

/// Milliseconds as [`human`] time, rounded down to the second; negative counts as zero.
#[must_use]
pub(crate) fn human_ms(ms: i64) -> String {
    human(u64::try_from(ms.max(0) / 1000).unwrap_or(0))
}

/// An instant in RFC 3339 (UTC, seconds), or the raw number when it is out of range.
#[must_use]
pub(crate) fn rfc3339(ms: i64) -> String {
    ExpiresAt::from_millis(ms).map_or_else(|_| format!("{ms} ms"), |e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(3 * 3600 + 2 * 60), "3h 2m");
        assert_eq!(human(86_400 + 1), "1d 1s");
        assert_eq!(human_ms(-5), "0s");
        assert_eq!(human_ms(59_999), "59s");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00Z");
    }
}
