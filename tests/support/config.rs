//! Gateway configs for tests, built instead of written out as TOML strings:
//! a test says what it needs (a topic routed to an HTTP sink with fast
//! retries) and the builder writes the TOML, with `data_dir` in the
//! gateway's temp dir. Values are TOML literals where the builder has no
//! typed setter (`.set("timeout", "\"2s\"")`), so every key of the format
//! stays reachable.
//!
//! ```ignore
//! let cfg = Config::new()
//!     .destination(Destination::http("billing", &sink.url).retry(FAST_RETRY))
//!     .topic(Topic::new("orders").routes(["billing"]));
//! let gw = Gateway::start(&cfg.build()).await;
//! ```

use std::fmt::Write as _;
use std::path::Path;

/// A TOML string literal.
pub fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML array of string literals.
pub fn list<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let items: Vec<String> = items.into_iter().map(|s| quoted(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// A path as a TOML string literal.
pub fn path(p: &Path) -> String {
    quoted(&p.display().to_string())
}

/// Keys of one table, in the order they were set.
#[derive(Debug, Clone, Default)]
struct Table(Vec<(String, String)>);

impl Table {
    fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn write(&self, out: &mut String) {
        for (k, v) in &self.0 {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
}

/// A whole config. `build()` gives the TOML; `{data_dir}` in it is the
/// gateway's own temp dir (see `Gateway::start`).
#[derive(Debug, Clone)]
pub struct Config {
    server: Table,
    store: Option<Table>,
    auth: Table,
    telemetry: Option<Table>,
    tokens: Vec<String>,
    sections: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// A config with its data in the gateway's temp dir, and compiled
    /// plugins in the one cache every test gateway shares
    /// ([`crate::plugin_cache_dir`]).
    pub fn new() -> Self {
        let mut server = Table::default();
        server.set("data_dir", "\"{data_dir}\"");
        server.set("plugin_cache_dir", path(&crate::plugin_cache_dir()));
        let c = Self {
            server,
            store: None,
            auth: Table::default(),
            telemetry: None,
            tokens: Vec::new(),
            sections: Vec::new(),
        };
        if crate::nats::jetstream_run() {
            // The prefix follows the data dir (see `crate::fill`): a
            // restart on the same dir finds the same state.
            c.jetstream(&crate::nats::servers())
                .store("prefix", quoted("{store_prefix}"))
        } else {
            c
        }
    }

    /// On the JetStream backend: `[store]` naming `servers`, with a prefix
    /// of its own (clones of this config share it: gateways of one
    /// cluster) and a 5 s ack wait, so a killed gateway's work moves on
    /// within a test's patience.
    pub fn jetstream(mut self, servers: &[String]) -> Self {
        let mut t = Table::default();
        t.set("backend", quoted("jetstream"));
        t.set("servers", list(servers));
        t.set("prefix", quoted(&crate::nats::fresh_prefix()));
        t.set("ack_wait", quoted("5s"));
        self.store = Some(t);
        self
    }

    /// A `[store]` key, its value a TOML literal (the table exists as soon
    /// as one key is set).
    pub fn store(mut self, key: &str, value: impl Into<String>) -> Self {
        self.store
            .get_or_insert_with(Table::default)
            .set(key, value);
        self
    }

    /// For the real binary (`Process`): it reads the file as written, so
    /// nothing replaces `{data_dir}` and the data dir is a real path; and it
    /// listens on 127.0.0.1:0, since `Process` reads the address it got from
    /// the log.
    pub fn for_process(self, data_dir: &Path) -> Self {
        let mut c = self
            .server("listen", quoted("127.0.0.1:0"))
            .server("data_dir", path(data_dir));
        if c.store
            .as_ref()
            .is_some_and(|t| t.get("prefix") == Some("\"{store_prefix}\""))
        {
            c = c.store("prefix", quoted(&crate::nats::prefix_for(data_dir)));
        }
        c
    }

    /// A `[server]` key, its value a TOML literal: `.server("max_body", "\"1KiB\"")`.
    pub fn server(mut self, key: &str, value: impl Into<String>) -> Self {
        self.server.set(key, value);
        self
    }

    pub fn topic(mut self, t: Topic) -> Self {
        self.sections.push(t.section("[[topics]]"));
        self
    }

    pub fn destination(mut self, d: Destination) -> Self {
        self.sections.push(d.0.section("[[destinations]]"));
        self
    }

    pub fn plugin(mut self, p: Plugin) -> Self {
        self.sections.push(p.0.section("[[plugins]]"));
        self
    }

    /// An `[auth]` token: `.token("ops", SECRET, ["admin"])`.
    pub fn token<I, S>(mut self, name: &str, secret: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.tokens.push(format!(
            "{{ name = {}, secret = {}, scopes = {} }}",
            quoted(name),
            quoted(secret),
            list(scopes)
        ));
        self
    }

    /// A token written out in full, as a TOML inline table.
    pub fn token_raw(mut self, table: &str) -> Self {
        self.tokens.push(table.to_owned());
        self
    }

    /// A `[telemetry]` key, its value a TOML literal (the table exists as
    /// soon as one key is set).
    pub fn telemetry(mut self, key: &str, value: impl Into<String>) -> Self {
        self.telemetry
            .get_or_insert_with(Table::default)
            .set(key, value);
        self
    }

    /// Any TOML, appended as written (for what no setter covers).
    pub fn raw(mut self, toml: &str) -> Self {
        self.sections.push(toml.to_owned());
        self
    }

    /// The config file's text.
    pub fn build(&self) -> String {
        let mut out = String::from("[server]\n");
        self.server.write(&mut out);
        if let Some(t) = &self.store {
            out.push_str("\n[store]\n");
            t.write(&mut out);
        }
        if !self.tokens.is_empty() || !self.auth.0.is_empty() {
            out.push_str("\n[auth]\n");
            self.auth.write(&mut out);
            if !self.tokens.is_empty() {
                let _ = writeln!(out, "tokens = [\n  {},\n]", self.tokens.join(",\n  "));
            }
        }
        if let Some(t) = &self.telemetry {
            out.push_str("\n[telemetry]\n");
            t.write(&mut out);
        }
        for s in &self.sections {
            out.push('\n');
            out.push_str(s);
            if !s.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// A `[[topics]]` entry.
#[derive(Debug, Clone)]
pub struct Topic(Table);

impl Topic {
    pub fn new(name: &str) -> Self {
        let mut t = Table::default();
        t.set("name", quoted(name));
        Self(t)
    }

    pub fn routes<I, S>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.0.set("routes", list(routes));
        self
    }

    pub fn plugins<I, S>(mut self, plugins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.0.set("plugins", list(plugins));
        self
    }

    /// `schema = { subject = "..." }`.
    pub fn schema(mut self, subject: &str) -> Self {
        self.0
            .set("schema", format!("{{ subject = {} }}", quoted(subject)));
        self
    }

    /// `verify = { scheme = "...", secrets = [...] }`: senders must sign
    /// what they post. Several secrets are a rotation (any match passes).
    pub fn verify<I, S>(mut self, scheme: &str, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.0.set("verify", scheme_and_secrets(scheme, secrets));
        self
    }

    /// Any key, its value a TOML literal.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.set(key, value);
        self
    }

    fn section(&self, header: &str) -> String {
        let mut out = format!("{header}\n");
        self.0.write(&mut out);
        out
    }
}

/// `{ scheme = "...", secrets = [...] }`, the shape of both `verify` (on
/// topics) and `signing` (on destinations).
fn scheme_and_secrets<I, S>(scheme: &str, secrets: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    format!(
        "{{ scheme = {}, secrets = {} }}",
        quoted(scheme),
        list(secrets)
    )
}

/// A `[[destinations]]` entry.
#[derive(Debug, Clone)]
pub struct Destination(Topic);

impl Destination {
    fn kind(name: &str, kind: &str) -> Self {
        Self(Topic::new(name).set("kind", quoted(kind)))
    }

    /// `kind = "http"`, delivering to `url`.
    pub fn http(name: &str, url: &str) -> Self {
        Self::kind(name, "http").set("url", quoted(url))
    }

    /// `kind = "log"`.
    pub fn log(name: &str) -> Self {
        Self::kind(name, "log")
    }

    /// `kind = "pull"`.
    pub fn pull(name: &str) -> Self {
        Self::kind(name, "pull")
    }

    /// `format = "json"` (or `"avro"`): deliveries converted from the
    /// topic's schema, which the topic must then have.
    pub fn format(self, format: &str) -> Self {
        self.set("format", quoted(format))
    }

    /// `signing = { scheme = "...", secrets = [...] }`: deliveries signed
    /// for the receiver; two secrets while it rotates.
    pub fn signing<I, S>(self, scheme: &str, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.set("signing", scheme_and_secrets(scheme, secrets))
    }

    /// FIFO per key taken from sender header `header`, which is also
    /// forwarded, so a receiver sees each delivery's key.
    pub fn ordered_by_header(self, header: &str) -> Self {
        self.set("ordering", format!("{{ key = \"header:{header}\" }}"))
            .set("forward_headers", list([header]))
    }

    /// `retry = { ... }`, the inline table as written.
    pub fn retry(self, table: &str) -> Self {
        self.set("retry", table)
    }

    /// Any key, its value a TOML literal.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0 = self.0.set(key, value);
        self
    }
}

/// A `[[plugins]]` entry.
#[derive(Debug, Clone)]
pub struct Plugin(Topic);

impl Plugin {
    pub fn new(name: &str, wasm: &Path) -> Self {
        Self(Topic::new(name).set("path", path(wasm)))
    }

    /// `config = { k = "v", ... }` for the plugin's `init`.
    pub fn config<'a>(mut self, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let pairs: Vec<String> = entries
            .into_iter()
            .map(|(k, v)| format!("{k} = {}", quoted(v)))
            .collect();
        self.0 = self.0.set("config", format!("{{ {} }}", pairs.join(", ")));
        self
    }

    /// Any key, its value a TOML literal.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0 = self.0.set(key, value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_config_the_gateway_accepts() {
        let text = Config::new()
            .server("max_body", quoted("1KiB"))
            .destination(
                Destination::http("billing", "http://127.0.0.1:9/hook")
                    .retry("{ initial = \"100ms\", max_attempts = 3 }"),
            )
            .destination(Destination::pull("jobs").set("visibility_timeout", quoted("5s")))
            .topic(Topic::new("orders").routes(["billing", "jobs"]))
            .token("ops", "an-admin-secret-0123456789", ["admin"])
            .build()
            .replace("{data_dir}", "/tmp/x");
        let c =
            switchyard::config::Config::parse(&text, Path::new("built.toml"), Path::new("/tmp"))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.destinations.len(), 2);
        assert_eq!(c.destinations[0].retry.max_attempts, 3);
        assert_eq!(c.topics[0].routes, vec!["billing", "jobs"]);
        assert_eq!(c.auth.tokens.len(), 1);
        assert_eq!(c.server.max_body.as_u64(), 1024);
    }

    #[test]
    fn signature_setters_and_a_process_config_parse() {
        let text = Config::new()
            .for_process(Path::new("/tmp/it's data"))
            .destination(
                Destination::http("out", "http://127.0.0.1:9/hook")
                    .format("json")
                    .signing(
                        "standard-webhooks",
                        ["whsec_c2VjcmV0LWZvci10aGUtZGVzdGluYXRpb24tMTIz"],
                    ),
            )
            .topic(
                Topic::new("gh")
                    .routes(["out"])
                    .schema("gh-value")
                    .verify("github", ["It's a Secret", "old \"one\""]),
            )
            .build();
        assert!(!text.contains("{data_dir}"), "{text}");
        let c =
            switchyard::config::Config::parse(&text, Path::new("built.toml"), Path::new("/tmp"))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.server.data_dir, Path::new("/tmp/it's data"));
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:0");
        let verify = c.topics[0].verify.as_ref().expect("verify");
        assert!(matches!(
            verify.scheme,
            switchyard_signatures::Scheme::Github
        ));
        assert_eq!(verify.secrets.len(), 2);
        let signing = c.destinations[0].signing.as_ref().expect("signing");
        assert_eq!(signing.secrets.len(), 1);
        assert_eq!(format!("{:?}", c.destinations[0].format), "Json");
    }

    #[test]
    fn strings_survive_quoting() {
        for s in ["a\"b\\c", "it's", "{data_dir}", "line\nbreak"] {
            let t: toml::Table = toml::from_str(&format!("x = {}", quoted(s))).unwrap();
            assert_eq!(t["x"].as_str(), Some(s));
        }
        let t: toml::Table = toml::from_str(&format!("x = {}", list(["a", "b"]))).unwrap();
        assert_eq!(t["x"].as_array().map(Vec::len), Some(2));
    }
}
