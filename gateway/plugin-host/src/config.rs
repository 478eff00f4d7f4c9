//! `[[plugins]]` in the TOML config: which component, its config and its limits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use switchyard_core::config::{Invalid, check_name};

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The name topics use in their `plugins` chain, and logs and metrics use.
    pub name: String,
    /// The `.wasm` component. Relative paths resolve from the config file's
    /// folder. The file is watched: replacing it hot-reloads the plugin.
    pub path: PathBuf,
    /// Handed to the plugin's `init`. TOML strings, numbers and booleans are
    /// all accepted and passed as strings, because the contract is a plain
    /// key/value list that any guest language can read.
    #[serde(default, deserialize_with = "scalar_map")]
    pub config: BTreeMap<String, String>,
    /// Memory one instance may grow to: a plugin that allocates without
    /// bound traps here instead of taking the gateway's memory. Unset: the
    /// default for the component's language (see `limits.rs`).
    #[serde(default)]
    pub max_memory: Option<ByteSize>,
    /// Time allowed for one batch (epoch interruption): a plugin that loops
    /// is cut here instead of stalling its topic. Unset: the default for the
    /// component's language.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Events handed to one call at most: the router's batches are split to
    /// fit, so a slow plugin can keep a batch inside its `timeout`.
    #[serde(default)]
    pub max_batch: Option<usize>,
    /// What the router does with an event this plugin fails on.
    #[serde(default)]
    pub on_error: OnError,
}

impl PluginConfig {
    /// Checks what serde cannot: the name, and limits that make sense.
    /// (Names unique across plugins, and chains naming plugins, are the
    /// config aggregate's cross-checks.)
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name(&self.name).map_err(|m| Invalid::new("name", m))?;
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(Invalid::new("timeout", "must be above zero"));
        }
        if self.max_memory.is_some_and(|m| m.as_u64() < 1024 * 1024) {
            return Err(Invalid::new("max_memory", "must be at least 1MiB"));
        }
        if let Some(b) = self.max_batch
            && !(1..=MAX_BATCH_LIMIT).contains(&b)
        {
            return Err(Invalid::new(
                "max_batch",
                format!(
                    "must be 1-{MAX_BATCH_LIMIT} (the router hands plugins at most {MAX_BATCH_LIMIT} events at once), not {b}"
                ),
            ));
        }
        Ok(())
    }

    /// A config with the defaults, for tests and the `plugin test` CLI.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            config: BTreeMap::new(),
            max_memory: None,
            timeout: None,
            max_batch: None,
            on_error: OnError::default(),
        }
    }
}

/// What happens to an event a plugin fails on (trap, timeout, error result,
/// unknown route, quarantine). The router carries it out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Into the topic's DLQ with the plugin's error; replay runs the chain again.
    #[default]
    DeadLetter,
    /// Dropped (counted).
    Skip,
    /// Delivered to the topic's static `routes`, as if no plugin ran.
    DefaultRoutes,
}

/// The default memory limit: plenty for routing logic and JSON parsing of
/// events up to a few MiB.
pub fn default_max_memory() -> ByteSize {
    ByteSize::mib(16)
}

/// The default time per batch.
pub fn default_timeout() -> Duration {
    Duration::from_millis(50)
}

/// The router's batch: the most events a plugin call can get, and so the
/// default and the ceiling of `max_batch` (switchyard's `router.rs`).
pub const MAX_BATCH_LIMIT: usize = 512;

/// The default events per call: the router's whole batch.
pub fn default_max_batch() -> usize {
    MAX_BATCH_LIMIT
}

/// A TOML scalar, as a plugin config value.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

fn scalar_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::Bool(b) => b.to_string(),
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Str(s) => s,
            };
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_become_strings_and_defaults_apply() {
        let c: PluginConfig = toml::from_str(
            "name = \"p\"\npath = \"p.wasm\"\nconfig = { a = \"x\", n = 3, f = 1.5, b = true }\n",
        )
        .expect("valid");
        assert_eq!(c.config["a"], "x");
        assert_eq!(c.config["n"], "3");
        assert_eq!(c.config["f"], "1.5");
        assert_eq!(c.config["b"], "true");
        // Unset limits are resolved per language once the component is read.
        assert_eq!(c.max_memory, None);
        assert_eq!(c.timeout, None);
        assert_eq!(c.max_batch, None);
        assert_eq!(c.on_error, OnError::DeadLetter);
    }

    #[test]
    fn on_error_spellings_and_unknown_keys() {
        let c: PluginConfig = toml::from_str(
            "name = \"p\"\npath = \"p\"\non_error = \"default-routes\"\ntimeout = \"10ms\"\nmax_memory = \"4MiB\"\n",
        )
        .expect("valid");
        assert_eq!(c.on_error, OnError::DefaultRoutes);
        assert_eq!(c.timeout, Some(Duration::from_millis(10)));
        assert_eq!(c.max_memory, Some(ByteSize::mib(4)));
        assert!(
            toml::from_str::<PluginConfig>("name = \"p\"\npath = \"p\"\ntimout = \"1s\"\n")
                .is_err()
        );
        assert!(
            toml::from_str::<PluginConfig>("name = \"p\"\npath = \"p\"\nconfig = { a = [1] }\n")
                .is_err()
        );
    }

    #[test]
    fn max_batch_must_fit_the_routers_batch() {
        let mut c = PluginConfig::new("p", "p.wasm");
        for (b, ok) in [(1, true), (512, true), (0, false), (513, false)] {
            c.max_batch = Some(b);
            assert_eq!(c.validate().is_ok(), ok, "{b}");
        }
        c.max_batch = Some(0);
        let err = c.validate().expect_err("zero");
        assert!(format!("{err:?}").contains("1-512"), "{err:?}");
    }
}
