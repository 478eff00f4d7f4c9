//! Secrets in config: `env:NAME` reads the environment once at load; anything
//! else is taken literally (handy in tests, discouraged in production).
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show only where
//! it came from, so a config dump or an error message cannot leak it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Deserializer};

/// Set by `check-config --no-env`: an unset `env:NAME` resolves to
/// [`PLACEHOLDER`] instead of failing, so a config can be checked in CI
/// without its real secrets. Never set by `serve`.
static UNSET_ENV_ALLOWED: AtomicBool = AtomicBool::new(false);

/// What an unset `env:` secret stands for under [`allow_unset_env`]: shaped
/// as a Standard Webhooks secret (`whsec_` + base64), which every other
/// kind of secret accepts too, so format checks still run.
pub const PLACEHOLDER: &str = "whsec_c3dpdGNoeWFyZC1jaGVjay1jb25maWctcGxhY2Vob2xkZXI=";

/// Lets unset `env:NAME` secrets resolve to [`PLACEHOLDER`] from now on in
/// this process (config checking only).
pub fn allow_unset_env() {
    UNSET_ENV_ALLOWED.store(true, Ordering::Relaxed);
}

/// A secret value and the place it was read from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// `env:NAME` or `inline`: what `Debug` shows instead of the value.
    source: String,
}

impl Secret {
    /// Resolves `env:NAME` from the environment, or takes `raw` literally.
    pub fn resolve(raw: &str) -> Result<Self, String> {
        match raw.strip_prefix("env:") {
            Some("") => Err("`env:` needs a variable name".to_owned()),
            Some(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Self {
                    value,
                    source: format!("env:{name}"),
                }),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(_) if UNSET_ENV_ALLOWED.load(Ordering::Relaxed) => Ok(Self {
                    value: PLACEHOLDER.to_owned(),
                    source: format!("env:{name} (unset)"),
                }),
                Err(_) => Err(format!(
                    "environment variable {name} is not set (set it, or check the config \
                     without secrets with `switchyard check-config --no-env`)"
                )),
            },
            None if raw.is_empty() => Err("a secret may not be empty".to_owned()),
            None => Ok(Self {
                value: raw.to_owned(),
                source: "inline".to_owned(),
            }),
        }
    }

    /// The secret itself. Call sites are the only places it is exposed.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where the value came from (`env:NAME` or `inline`).
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.source)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret from {}>", self.source)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Secret::resolve(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::resolve("hunter2").expect("inline secret");
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?}{s}").contains("hunter2"));
    }

    #[test]
    fn missing_env_var_names_the_variable() {
        let err = Secret::resolve("env:SWITCHYARD_TEST_SURELY_UNSET").expect_err("unset");
        assert!(err.contains("SWITCHYARD_TEST_SURELY_UNSET"), "{err}");
    }
}
