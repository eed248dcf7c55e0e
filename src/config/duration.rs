//! Durations in the config file: `250ms`, `10s`, `5m`, `2h`, `1d`, or a bare number of seconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Duration` written the way people write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The longest duration accepted anywhere (36500d, about a century): beyond it a value is
    /// a mistake, and adding it to a clock reading could overflow.
    pub const MAX: Duration = Duration::from_secs(36_500 * 86_400);

    /// Parses `250ms`, `10s`, `5m`, `2h`, `1d`, `1.5s` or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a duration (examples: 250ms, 10s, 5m, 2h)"))?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}` (use ms, s, m, h or d)"
                ));
            }
        };
        Self::from_secs_f64(value * scale, text)
    }

    /// `secs` seconds, refused (naming `text`, the value as written) when negative, not a
    /// number, or longer than [`HumanDuration::MAX`].
    fn from_secs_f64(secs: f64, text: &str) -> Result<Self, String> {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("`{text}` is not a valid duration"));
        }
        if secs > Self::MAX.as_secs_f64() {
            return Err(too_long(text));
        }
        Ok(Self(Duration::from_secs_f64(secs)))
    }

    /// A bare whole number of seconds.
    fn from_secs(secs: u64) -> Result<Self, String> {
        let d = Duration::from_secs(secs);
        if d > Self::MAX {
            return Err(too_long(&secs.to_string()));
        }
        Ok(Self(d))
    }
}

fn too_long(text: &str) -> String {
    format!("`{text}` is too long: a duration may be at most 36500d (about a century)")
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            let s = ms / 1000;
            if s != 0 && s.is_multiple_of(3600) {
                write!(f, "{}h", s / 3600)
            } else if s != 0 && s.is_multiple_of(60) {
                write!(f, "{}m", s / 60)
            } else {
                write!(f, "{s}s")
            }
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => HumanDuration::from_secs(n).map_err(serde::de::Error::custom),
            Raw::Float(x) => {
                // `{:?}` keeps the exponent as written (`1e30`, not thirty-one digits).
                HumanDuration::from_secs_f64(x, &format!("{x:?}")).map_err(serde::de::Error::custom)
            }
            Raw::Text(s) => HumanDuration::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let cases = [
            ("250ms", 250),
            ("10s", 10_000),
            ("10", 10_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1.5s", 1_500),
        ];
        for (text, ms) in cases {
            assert_eq!(
                HumanDuration::parse(text).map(|d| d.0.as_millis()),
                Ok(ms),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_nonsense_with_a_clear_message() {
        assert!(HumanDuration::parse("ten seconds").is_err());
        let err = HumanDuration::parse("5 fortnights")
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown duration unit"), "{err}");
    }

    #[test]
    fn huge_negative_or_infinite_durations_are_refused_not_a_panic() {
        for text in ["99999999999999999999d", "36501d", "18446744073709551615"] {
            let err = HumanDuration::parse(text).err().unwrap_or_default();
            assert!(err.contains("too long"), "{text}: {err}");
        }
        let err = HumanDuration::parse("1e30").err().unwrap_or_default();
        assert!(err.contains("unknown duration unit `e30`"), "{err}");
        assert_eq!(
            HumanDuration::parse("36500d").map(|d| d.0),
            Ok(HumanDuration::MAX)
        );
        for yaml in [
            "1e30",
            "1.0e300",
            ".inf",
            "-.inf",
            ".nan",
            "-5",
            "-0.5",
            "18446744073709551615",
            "3153600001",
        ] {
            let got: Result<HumanDuration, _> = serde_norway::from_str(yaml);
            let err = got.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains("too long") || err.contains("not a valid duration"),
                "{yaml}: {err}"
            );
        }
        let d: HumanDuration = serde_norway::from_str("3153600000").unwrap();
        assert_eq!(d.0, HumanDuration::MAX);
        let d: HumanDuration = serde_norway::from_str("1.5").unwrap();
        assert_eq!(d.0, Duration::from_millis(1500));
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(HumanDuration(Duration::from_secs(300)).to_string(), "5m");
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(HumanDuration(Duration::from_secs(10)).to_string(), "10s");
    }
}
