//! Durations in the config file: `250ms`, `10s`, `5m`, `2h`, `1d`, or a bare number of seconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Duration` written the way people write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
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
        let secs = value * scale;
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("`{text}` is not a valid duration"));
        }
        Ok(Self(Duration::from_secs_f64(secs)))
    }
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
            Raw::Int(n) => Ok(Self(Duration::from_secs(n))),
            Raw::Float(x) => HumanDuration::parse(&x.to_string()).map_err(serde::de::Error::custom),
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
    fn displays_compactly() {
        assert_eq!(HumanDuration(Duration::from_secs(300)).to_string(), "5m");
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(HumanDuration(Duration::from_secs(10)).to_string(), "10s");
    }
}
