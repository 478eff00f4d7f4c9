//! Which language a component was written in, and the limits a plugin runs
//! under: its config's, else its language's defaults, else ours.
//!
//! Why per language: an interpreter embedded in the component (CPython in a
//! componentize-py build, SpiderMonkey in a componentize-js one) takes ~13
//! MiB before the plugin's first line runs and needs 30-70 ms for a batch of
//! 512 events, so the defaults that suit compiled Rust (16 MiB, 50 ms) would
//! make every batch time out and be re-run one event at a time.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::config::{PluginConfig, default_max_batch, default_max_memory, default_timeout};

/// What a component was built from, as far as its metadata says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    /// Compiled from something else, or nothing says: the compiled defaults.
    Unknown,
}

impl Language {
    /// True for languages whose runtime ships inside the component.
    fn interpreted(self) -> bool {
        matches!(self, Language::Python | Language::JavaScript)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::Unknown => "unknown",
        })
    }
}

/// Memory a Python or JavaScript plugin gets unless its config says: the
/// interpreter's ~13 MiB, a batch of 512 events as objects, and room.
pub const INTERPRETED_MAX_MEMORY: u64 = 64 * 1024 * 1024;

/// Time a Python or JavaScript batch gets unless its config says: 512
/// events take 30-70 ms in either, so ten times that before we cut.
pub const INTERPRETED_TIMEOUT: Duration = Duration::from_millis(500);

/// Reads the component's custom sections: the `producers` section (a
/// componentize-js build says `language: JavaScript`, rustc says `Rust`)
/// and the names of its core modules (a componentize-py build links
/// `libpython3.x.so`, and its producers name no language).
pub fn detect(bytes: &[u8]) -> Language {
    use wasmparser::{ComponentName, KnownCustom, Name, Parser, Payload};
    let (mut rust, mut python, mut javascript) = (false, false, false);
    let is_python_module =
        |name: &str| name.starts_with("libpython") || name.contains("componentize_py");
    for payload in Parser::new(0).parse_all(bytes) {
        // A section we cannot read says nothing; compiling reports real damage.
        let Ok(Payload::CustomSection(section)) = payload else {
            continue;
        };
        match section.as_known() {
            KnownCustom::Producers(reader) => {
                for field in reader.into_iter().flatten() {
                    for value in field.values.into_iter().flatten() {
                        let v = value.name.to_ascii_lowercase();
                        match field.name {
                            "language" if v == "javascript" => javascript = true,
                            "language" if v == "python" => python = true,
                            "language" if v == "rust" => rust = true,
                            "processed-by" if v == "componentizejs" => javascript = true,
                            "processed-by" if v == "componentize-py" => python = true,
                            _ => {}
                        }
                    }
                }
            }
            KnownCustom::Name(reader) => {
                for name in reader.into_iter().flatten() {
                    if let Name::Module { name, .. } = name {
                        python |= is_python_module(name);
                    }
                }
            }
            KnownCustom::ComponentName(reader) => {
                for name in reader.into_iter().flatten() {
                    if let ComponentName::CoreModules(map) = name {
                        for naming in map.into_iter().flatten() {
                            python |= is_python_module(naming.name);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // The runtimes are written in Rust and C++ themselves, so an
    // interpreter's mark wins over `language: Rust`.
    if javascript {
        Language::JavaScript
    } else if python {
        Language::Python
    } else if rust {
        Language::Rust
    } else {
        Language::Unknown
    }
}

/// Where a limit in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The plugin's `[[plugins]]` entry sets it.
    Config,
    /// The default for the plugin's language (Python, JavaScript).
    Language(Language),
    /// The gateway's default.
    Default,
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Source::Config => s.serialize_str("config"),
            Source::Language(l) => s.serialize_str(&format!("{l} default")),
            Source::Default => s.serialize_str("default"),
        }
    }
}

/// The limits one loaded version of a plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub language: Language,
    pub max_memory: u64,
    pub max_memory_source: Source,
    pub timeout: Duration,
    pub timeout_source: Source,
    pub max_batch: usize,
    pub max_batch_source: Source,
}

impl Limits {
    /// The config's limits where it sets them, else the language's.
    pub fn resolve(config: &PluginConfig, language: Language) -> Self {
        let lang = language.interpreted();
        let (max_memory, max_memory_source) = match config.max_memory {
            Some(m) => (m.as_u64(), Source::Config),
            None if lang => (INTERPRETED_MAX_MEMORY, Source::Language(language)),
            None => (default_max_memory().as_u64(), Source::Default),
        };
        let (timeout, timeout_source) = match config.timeout {
            Some(t) => (t, Source::Config),
            None if lang => (INTERPRETED_TIMEOUT, Source::Language(language)),
            None => (default_timeout(), Source::Default),
        };
        let (max_batch, max_batch_source) = match config.max_batch {
            Some(b) => (b, Source::Config),
            None => (default_max_batch(), Source::Default),
        };
        Self {
            language,
            max_memory,
            max_memory_source,
            timeout,
            timeout_source,
            max_batch,
            max_batch_source,
        }
    }

    /// What `GET /v1/plugins` shows under `limits`.
    pub fn status(&self) -> LimitsStatus {
        LimitsStatus {
            max_memory: Limit {
                value: self.max_memory,
                source: self.max_memory_source,
            },
            timeout_ms: Limit {
                value: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                source: self.timeout_source,
            },
            max_batch: Limit {
                value: self.max_batch as u64,
                source: self.max_batch_source,
            },
        }
    }
}

/// The limits in force, each with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct LimitsStatus {
    /// Bytes one instance may grow to.
    pub max_memory: Limit,
    /// Time one batch may take, milliseconds.
    pub timeout_ms: Limit,
    /// Events per call at most.
    pub max_batch: Limit,
}

/// One limit: its value and where it came from (`config`, `default`,
/// `python default`, `javascript default`).
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    pub value: u64,
    pub source: Source,
}

/// The largest memory any plugin may get once its language is known: the
/// instance pool is sized before the components are read.
pub fn pool_max_memory(configs: &[PluginConfig]) -> u64 {
    configs
        .iter()
        .filter_map(|c| c.max_memory.map(|m| m.as_u64()))
        .max()
        .unwrap_or(0)
        .max(INTERPRETED_MAX_MEMORY)
        .max(default_max_memory().as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_value_wins_over_the_language_default() {
        let mut c = PluginConfig::new("p", "p.wasm");
        let py = Limits::resolve(&c, Language::Python);
        assert_eq!(py.max_memory, INTERPRETED_MAX_MEMORY);
        assert_eq!(py.timeout, INTERPRETED_TIMEOUT);
        assert_eq!(py.max_memory_source, Source::Language(Language::Python));
        assert_eq!(py.max_batch_source, Source::Default);
        let rust = Limits::resolve(&c, Language::Rust);
        assert_eq!(rust.max_memory, default_max_memory().as_u64());
        assert_eq!(rust.timeout_source, Source::Default);
        c.timeout = Some(Duration::from_millis(80));
        c.max_batch = Some(64);
        let js = Limits::resolve(&c, Language::JavaScript);
        assert_eq!(js.timeout, Duration::from_millis(80));
        assert_eq!(js.timeout_source, Source::Config);
        assert_eq!(js.max_batch, 64);
        assert_eq!(js.max_memory_source, Source::Language(Language::JavaScript));
        let shown = serde_json::to_value(js.status()).expect("serialises");
        assert_eq!(shown["timeout_ms"]["source"], "config");
        assert_eq!(shown["max_memory"]["source"], "javascript default");
        assert_eq!(shown["max_memory"]["value"], INTERPRETED_MAX_MEMORY);
    }

    #[test]
    fn bytes_that_are_not_a_component_are_of_unknown_language() {
        assert_eq!(detect(b"not wasm at all"), Language::Unknown);
        assert_eq!(detect(b""), Language::Unknown);
    }
}
