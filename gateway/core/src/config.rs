//! What every config section shares: the shape of a validation failure and
//! the rule for names.
//!
//! Each component owns its section of the TOML file and validates it
//! itself, answering with an [`Invalid`] whose key is relative to the
//! section (`retry.initial`); the `switchyard` crate, which aggregates the
//! sections, puts the key under the section's path (`destinations[2]`) and
//! names the file.

use std::path::{Path, PathBuf};

/// One thing wrong with a config section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key, relative to the section that found the problem.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same problem seen from the enclosing section:
    /// `Invalid::new("url", m).under("destinations[0]")` names
    /// `destinations[0].url`.
    pub fn under(self, prefix: &str) -> Self {
        let key = match (prefix.is_empty(), self.key.is_empty()) {
            (true, _) => self.key,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{}", self.key),
        };
        Self { key, ..self }
    }
}

/// Topic, destination and plugin names appear in URLs, store keys and
/// metric labels: keep them tame.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: use 1-128 characters of A-Z, a-z, 0-9, '-', '_' or '.'"
        ))
    }
}

/// A path from the config made absolute against the config file's folder.
pub fn resolve_path(base_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base_dir.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_nest_under_their_section() {
        let i = Invalid::new("retry.initial", "must be above zero").under("destinations[1]");
        assert_eq!(i.key, "destinations[1].retry.initial");
        assert_eq!(Invalid::new("", "x").under("server").key, "server");
        assert_eq!(Invalid::new("k", "x").under("").key, "k");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("orders.v2_x-y").is_ok());
        for bad in ["", "a b", "é", "a/b", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
