//! The YAML format for figment's file provider, on `serde_norway` (the maintained fork of
//! `serde_yaml`, which its author deprecated; figment's own `yaml` feature still uses it).
//!
//! Errors keep what the operator needs: a syntax error carries its line and column, and figment
//! adds the file and the dotted key. A key written twice in one mapping is refused (with its
//! line) rather than one of the two values being kept silently.
//!
//! Seed 003's layout (llm-interactive-proxy's config file) puts the bind address at the top:
//! `host:` and `port:` are read as `server.host` and `server.port` ([`SEED_TOP_LEVEL`]); a file
//! giving both forms with different values is refused with the portcullis key named.

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
        serde_norway::from_value(seed_layout(value)?)
    }
}

/// Top-level keys of seed 003's config file that portcullis keeps under `server:`.
const SEED_TOP_LEVEL: [&str; 2] = ["host", "port"];

/// Moves seed 003's top-level `host`/`port` into `server:`; refuses a file that gives one both
/// ways with different values.
fn seed_layout(mut value: serde_norway::Value) -> Result<serde_norway::Value, serde_norway::Error> {
    use serde::de::Error as _;
    use serde_norway::{Mapping, Value};
    let Some(top) = value.as_mapping_mut() else {
        return Ok(value);
    };
    for key in SEED_TOP_LEVEL {
        let Some(given) = top.remove(key) else {
            continue;
        };
        let server = top
            .entry(Value::from("server"))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        let Some(server) = server.as_mapping_mut() else {
            // `server:` is not a mapping: deserialising says so, naming the key.
            continue;
        };
        match server.get(key) {
            Some(own) if *own != given => {
                return Err(serde_norway::Error::custom(format!(
                    "top-level `{key}: {}` (llm-interactive-proxy's layout) and `server.{key}: {}` disagree; portcullis reads `server.{key}`: keep one of the two",
                    shown(&given),
                    shown(own)
                )));
            }
            Some(_) => {}
            None => {
                server.insert(Value::from(key), given);
            }
        }
    }
    Ok(value)
}

/// A scalar as written (strings without quotes); other values in YAML's flow form.
fn shown(value: &serde_norway::Value) -> String {
    match value {
        serde_norway::Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
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
