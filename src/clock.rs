//! Time as a parameter: every expiry, lockout, cooldown and quota decision reads the clock in
//! `AppState`, never the system time directly, so tests move time forward instead of sleeping.
//!
//! Latency measurement (how long a request took) uses `std::time::Instant` directly; that is
//! observation, not a decision.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock frozen at `start`.
    pub fn new(start: SystemTime) -> Self {
        let millis = start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            millis: Arc::new(AtomicU64::new(millis)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.millis
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// The first instant [`iso8601`] cannot write with a four-digit year, as RFC 3339 requires:
/// 10000-01-01T00:00:00Z. Times a caller may set (a key's expiry) must come before it.
pub const ISO8601_END_MS: u64 = 253_402_300_800_000;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (civil-from-days algorithm).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Milliseconds since the epoch of an ISO 8601 (RFC 3339) time — `2027-01-31` (midnight UTC),
/// `2027-01-31T12:00:00Z`, with an optional fraction and a `Z` or `±hh:mm` offset, as
/// [`iso8601`] writes and people type; `None` for anything else, or a time before 1970.
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let t = text.trim();
    let num = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = t.split_at_checked(10)?;
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (num(ymd.next()?)?, num(ymd.next()?)?, num(ymd.next()?)?);
    let day = calendar::days_from_civil(i64::from(y), m, d);
    // An impossible date (2027-02-30) does not survive the round trip.
    if (1..=12)
        .contains(&m)
        .then(|| calendar::civil_from_days(day))
        != Some((i64::from(y), m, d))
    {
        return None;
    }
    let mut secs = day * 86_400;
    let mut ms = 0;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let (clock, zone) = rest.split_at_checked(8)?;
        let mut hms = clock.splitn(3, ':');
        let (h, mi, s) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs += i64::from(h * 3600 + mi * 60 + s);
        let zone = match zone.strip_prefix('.') {
            Some(frac) => {
                let digits = frac
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(frac.len());
                let millis = format!("{:0<3}", &frac[..digits.min(3)]);
                ms = num(&millis)?;
                &frac[digits..]
            }
            None => zone,
        };
        secs -= match zone {
            "Z" | "z" => 0,
            _ => {
                let (sign, offset) = zone.split_at_checked(1)?;
                let (oh, om) = offset.split_once(':')?;
                let (oh, om) = (num(oh)?, num(om)?);
                let off = i64::from(oh * 3600 + om * 60);
                match sign {
                    "+" => off,
                    "-" => -off,
                    _ => return None,
                }
            }
        };
    }
    u64::try_from(secs).ok().map(|s| s * 1000 + u64::from(ms))
}

/// Shared handle to the clock used by the whole process.
pub type SharedClock = Arc<dyn Clock>;

/// Calendar arithmetic on UTC day numbers (days since 1970-01-01), for periods that reset
/// daily, weekly or monthly (quotas, budgets).
pub mod calendar {
    /// Milliseconds in a day.
    pub const DAY_MS: u64 = 86_400_000;

    /// (year, month, day) of a day number (Howard Hinnant's algorithm).
    pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    /// Day number of a civil date.
    pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn day_numbers_and_dates_round_trip() {
            for day in [0_i64, 59, 365, 10_957, 20_780, 21_000] {
                let (y, m, dd) = civil_from_days(day);
                assert_eq!(days_from_civil(y, m, dd), day);
            }
            assert_eq!(civil_from_days(20_791), (2026, 12, 4));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_times_parse_as_people_write_them() {
        let at = 1_700_000_000_123;
        assert_eq!(parse_iso8601(&iso8601(at)), Some(at));
        assert_eq!(
            parse_iso8601("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_iso8601("2023-11-14 22:13:20.5z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_iso8601("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_iso8601("2023-11-14T21:13:20-01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_iso8601(" 2000-02-29 "), Some(951_782_400_000));
        for bad in [
            "",
            "tomorrow",
            "2023-02-29",
            "2023-13-01",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+0200",
            "1969-12-31T00:00:00Z",
            "2023-1-14",
            "+023-11-14",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        // The last time with a four-digit year, and the first without.
        assert_eq!(iso8601(ISO8601_END_MS - 1), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso8601(ISO8601_END_MS), "10000-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
        assert_eq!(c.now_millis(), 100_000);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now_millis(), 101_500);
    }
}
