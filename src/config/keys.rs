//! Client API keys from every source PRODUCT §2 names, merged into one named list:
//! `--api-keys`, `PORTCULLIS_API_KEYS`, the seed's `LLM_INTERACTIVE_PROXY_API_KEY` and
//! `API_KEYS` (each also as `*_FILE`), and YAML `auth.api_keys` (strings, `{name, key}` or
//! `{name, key_env}`). Unnamed keys get a name from their source (`cli-1`,
//! `PORTCULLIS_API_KEYS-2`, `config-1`) so logs can say which key was used without showing it.
//! A key given twice is kept once, under its first name.

use super::env::{EnvSource, env_secret};
use super::{ApiKeyConfig, Config, ConfigError};
use crate::secret::Secret;

/// Replaces `config.auth.api_keys` with the merged, named list (`cli_keys`: `--api-keys`).
pub(crate) fn merge_api_keys(
    config: &mut Config,
    cli_keys: &[Secret],
    env: &dyn EnvSource,
) -> Result<(), ConfigError> {
    let mut merged: Vec<(String, Secret)> = Vec::new();
    let add = |name: String, key: Secret, merged: &mut Vec<(String, Secret)>| {
        if !key.is_empty() && !merged.iter().any(|(_, k)| k == &key) {
            merged.push((name, key));
        }
    };
    for (i, key) in cli_keys.iter().enumerate() {
        add(format!("cli-{}", i + 1), key.clone(), &mut merged);
    }
    for var in ["PORTCULLIS_API_KEYS", "API_KEYS"] {
        if let Some(list) = env_secret(env, var)? {
            for (i, key) in split_list(list.expose()).enumerate() {
                add(format!("{var}-{}", i + 1), Secret::new(key), &mut merged);
            }
        }
    }
    if let Some(key) = env_secret(env, "LLM_INTERACTIVE_PROXY_API_KEY")? {
        add("LLM_INTERACTIVE_PROXY_API_KEY".to_owned(), key, &mut merged);
    }
    for (i, entry) in config.auth.api_keys.iter().enumerate() {
        let field = format!("auth.api_keys[{i}]");
        let (name, key) = match entry {
            ApiKeyConfig::Plain(k) => (None, k.clone()),
            ApiKeyConfig::Named {
                name,
                key: Some(k),
                key_env: None,
            } => (name.clone(), k.clone()),
            ApiKeyConfig::Named {
                name,
                key: None,
                key_env: Some(var),
            } => match env_secret(env, var)? {
                Some(k) => (name.clone(), k),
                None => {
                    return Err(invalid(
                        &field,
                        format!("environment variable `{var}` (or `{var}_FILE`) is not set"),
                    ));
                }
            },
            ApiKeyConfig::Named { .. } => {
                return Err(invalid(
                    &field,
                    "give exactly one of `key` and `key_env`".to_owned(),
                ));
            }
        };
        if key.is_empty() {
            return Err(invalid(&field, "the key is empty".to_owned()));
        }
        add(
            name.unwrap_or_else(|| format!("config-{}", i + 1)),
            key,
            &mut merged,
        );
    }
    config.auth.api_keys = merged
        .into_iter()
        .map(|(name, key)| ApiKeyConfig::Named {
            name: Some(name),
            key: Some(key),
            key_env: None,
        })
        .collect();
    Ok(())
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        origin: "configuration".to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::env;

    fn names_and_keys(config: &Config) -> Vec<(String, String)> {
        config
            .auth
            .api_keys
            .iter()
            .map(|k| match k {
                ApiKeyConfig::Named {
                    name: Some(n),
                    key: Some(k),
                    ..
                } => (n.clone(), k.expose().to_owned()),
                other => panic!("not normalised: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_source_is_merged_with_names() {
        let mut config = Config::default();
        config.auth.api_keys = vec![
            ApiKeyConfig::Plain(Secret::new("yaml-plain")),
            ApiKeyConfig::Named {
                name: Some("ci-bot".into()),
                key: None,
                key_env: Some("CI_KEY".into()),
            },
        ];
        let cli = [Secret::new("from-cli")];
        let e = env(&[
            ("PORTCULLIS_API_KEYS", "p1, p2"),
            ("API_KEYS", "a1,from-cli"),
            ("LLM_INTERACTIVE_PROXY_API_KEY", "seed"),
            ("CI_KEY", "ci-secret"),
        ]);
        merge_api_keys(&mut config, &cli, &e).unwrap();
        let got = names_and_keys(&config);
        let want: Vec<(String, String)> = [
            ("cli-1", "from-cli"),
            ("PORTCULLIS_API_KEYS-1", "p1"),
            ("PORTCULLIS_API_KEYS-2", "p2"),
            ("API_KEYS-1", "a1"),
            ("LLM_INTERACTIVE_PROXY_API_KEY", "seed"),
            ("config-1", "yaml-plain"),
            ("ci-bot", "ci-secret"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn file_variants_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "f1\nf2\n").unwrap();
        let mut config = Config::default();
        merge_api_keys(
            &mut config,
            &[],
            &env(&[("PORTCULLIS_API_KEYS_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(names_and_keys(&config).len(), 2);

        let mut config = Config::default();
        config.auth.api_keys = vec![ApiKeyConfig::Named {
            name: None,
            key: None,
            key_env: Some("UNSET_VAR".into()),
        }];
        let err = merge_api_keys(&mut config, &[], &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.api_keys[0]") && err.contains("UNSET_VAR"),
            "{err}"
        );
    }
}
