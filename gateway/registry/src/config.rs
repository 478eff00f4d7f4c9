//! A topic's link to the registry: `schema = { subject = "orders-value" }`,
//! optionally pinned with `version = 3`.

use serde::{Deserialize, Serialize};

/// Which schema a topic's payloads must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRef {
    /// The registry subject whose schema payloads are validated against.
    pub subject: String,
    /// A pinned version. Without it the subject's latest live version
    /// applies, so registering a new version changes validation at once.
    #[serde(default)]
    pub version: Option<u32>,
    /// For a Protobuf subject, the message payloads must be (`pkg.Order`);
    /// without it, the file's first message. Other schema types ignore it.
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Topic {
        schema: SchemaRef,
    }

    #[test]
    fn parses_with_and_without_a_version() {
        let t: Topic = toml::from_str(r#"schema = { subject = "orders-value" }"#).unwrap();
        assert_eq!(t.schema.version, None);
        let t: Topic =
            toml::from_str(r#"schema = { subject = "orders-value", version = 3 }"#).unwrap();
        assert_eq!(t.schema.version, Some(3));
        let bad = toml::from_str::<Topic>(r#"schema = { subject = "s", versoin = 3 }"#);
        assert!(bad.is_err());
    }
}
