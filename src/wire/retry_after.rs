//! `Retry-After` as upstreams send it (RFC 9110 §10.2.3): a number of seconds, or an HTTP date
//! in any of the three forms a recipient must accept (IMF-fixdate `Sun, 06 Nov 1994 08:49:37
//! GMT`, the obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37
//! 1994`). A date is measured against the gateway's clock (the caller passes `now`), so the
//! cooldowns and the seconds relayed to clients do not depend on the upstream's clock format.

use std::time::UNIX_EPOCH;

/// The seconds `value` asks to wait at `now_ms` (ms since the epoch): the number as written, or
/// the time until the date, rounded up — 0 for a date already past. `None` when it is neither.
/// Whoever uses the answer caps it as it caps the seconds form (the pool's cooldown does).
pub fn seconds(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if v.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at_ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    let wait_ms = at_ms.saturating_sub(u128::from(now_ms));
    Some(u64::try_from(wait_ms.div_ceil(1000)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fri, 15 Jan 2027 08:00:00 GMT.
    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn seconds_are_taken_as_written() {
        assert_eq!(seconds("120", NOW), Some(120));
        assert_eq!(seconds(" 0 ", NOW), Some(0));
        assert_eq!(seconds("18446744073709551615", NOW), Some(u64::MAX));
        assert_eq!(seconds("99999999999999999999999", NOW), None);
        assert_eq!(seconds("1.5", NOW), None);
        assert_eq!(seconds("-5", NOW), None);
    }

    #[test]
    fn every_date_form_is_read_against_now() {
        for (value, want) in [
            ("Fri, 15 Jan 2027 08:02:00 GMT", 120),
            ("Friday, 15-Jan-27 08:01:30 GMT", 90),
            ("Fri Jan 15 08:00:45 2027", 45),
            ("Fri, 15 Jan 2027 08:00:00 GMT", 0),
        ] {
            assert_eq!(seconds(value, NOW), Some(want), "{value}");
        }
        // Part of a second left rounds up.
        assert_eq!(seconds("Fri, 15 Jan 2027 08:00:01 GMT", NOW + 1), Some(1));
    }

    #[test]
    fn a_past_date_means_no_wait_and_a_far_one_is_just_long() {
        assert_eq!(seconds("Fri, 15 Jan 2027 07:00:00 GMT", NOW), Some(0));
        assert_eq!(seconds("Thu, 01 Jan 1970 00:00:00 GMT", NOW), Some(0));
        assert_eq!(
            seconds("Fri, 31 Dec 9999 23:59:59 GMT", NOW),
            Some(253_402_300_799 - 1_800_000_000)
        );
    }

    #[test]
    fn anything_else_is_no_answer() {
        for value in [
            "",
            "soon",
            "Fri, 15 Jan 2027 08:02:00",
            "Fri, 32 Jan 2027 08:02:00 GMT",
            "2027-01-15T08:02:00Z",
            "Fri, 15 Jan 2027 25:00:00 GMT",
        ] {
            assert_eq!(seconds(value, NOW), None, "{value}");
        }
    }
}
