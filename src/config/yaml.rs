//! The YAML format for figment's file provider, on `serde_norway` (the maintained fork of
//! `serde_yaml`, which its author deprecated; figment's own `yaml` feature still uses it).
//!
//! Errors keep what the operator needs: a syntax error carries its line and column, and figment
//! adds the file and the dotted key. A key written twice in one mapping is refused (with its
//! line) rather than one of the two values being kept silently.

use figment::providers::Format;
use serde::de::DeserializeOwned;

/// YAML, for `figment::providers::Data<Yaml>` (`Yaml::file_exact(path)`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Yaml;

impl Format for Yaml {
    type Error = serde_norway::Error;

    const NAME: &'static str = "YAML";

    fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Self::Error> {
        // Through a `Value` first: its mappings refuse duplicate keys, which figment's own
        // dictionaries would merge silently (the last value winning).
        let value: serde_norway::Value = serde_norway::from_str(text)?;
        serde_norway::from_value(value)
    }
}

/// Parses one YAML document into a value (for files read outside figment, `--sso-config`).
pub(crate) fn value(text: &str) -> Result<serde_norway::Value, serde_norway::Error> {
    serde_norway::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;

    fn load(text: &str) -> Result<figment::value::Dict, String> {
        Figment::from(Yaml::string(text))
            .extract::<figment::value::Dict>()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_nested_mappings_and_lists() {
        let d = load("server:\n  port: 9000\n  trusted_proxies: [10.0.0.0/8]\n").unwrap();
        let server = d["server"].as_dict().unwrap();
        assert_eq!(server["port"].to_u128(), Some(9000));
        assert_eq!(
            server["trusted_proxies"].as_array().map(<[_]>::len),
            Some(1)
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = load("server: {port: 1\n").unwrap_err();
        assert!(e.contains("line 2 column 1"), "{e}");
        let e = load("server:\n\tport: 1\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_key_given_twice_is_refused_with_its_line() {
        let e = load("server:\n  port: 1\n  port: 2\n").unwrap_err();
        assert!(e.contains("duplicate") && e.contains("port"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }
}
