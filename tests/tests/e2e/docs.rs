//! The configuration reference cannot rot: every table and key of
//! `docs/configuration.md` is one the config accepts, and every key the
//! config accepts is documented, under the heading of its table.
//!
//! The code's keys come from the code itself: a config with an unknown key
//! `__probe__` placed in a table is refused with serde's "unknown field,
//! expected one of ..." listing every key that table has. A key whose value
//! answers the same way is a table of its own, and needs a section.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use switchyard_tests::workspace;

/// One `[table]` section of the reference: its keys, and whether the
/// heading says it is an array of tables (`[[table]]`).
#[derive(Debug, Default)]
struct Section {
    array: bool,
    keys: BTreeSet<String>,
}

/// The code spans of a line, in order.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Sections by dotted path, read from the reference's headings and tables.
fn documented(md: &str) -> BTreeMap<String, Section> {
    let mut out: BTreeMap<String, Section> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in md.lines() {
        if line.starts_with('#') {
            current = None;
            let spans = code_spans(line);
            if let [span] = spans[..]
                && span.starts_with('[')
            {
                let array = span.starts_with("[[");
                let path = span.trim_matches(|c| c == '[' || c == ']').to_owned();
                assert!(
                    !out.contains_key(&path),
                    "docs/configuration.md has two sections for {span}"
                );
                out.insert(
                    path.clone(),
                    Section {
                        array,
                        keys: BTreeSet::new(),
                    },
                );
                current = Some(path);
            }
            continue;
        }
        if let (Some(path), Some(row)) = (&current, line.strip_prefix("| `"))
            && let Some((key, _)) = row.split_once('`')
        {
            let section = out.get_mut(path).expect("current section exists");
            assert!(
                section.keys.insert(key.to_owned()),
                "docs/configuration.md lists `{key}` twice under {path}"
            );
        }
    }
    out
}

/// A config document with `__probe__` inside the table at `path` (dotted;
/// empty for the top level). `array(p)` says whether the table at `p` is an
/// array of tables.
fn probe_document(path: &[&str], array: &dyn Fn(&str) -> bool) -> String {
    if path.is_empty() {
        return "__probe__ = 1\n".to_owned();
    }
    let mut value = "{ __probe__ = 1 }".to_owned();
    for i in (0..path.len()).rev() {
        let here = path[..=i].join(".");
        let v = if array(&here) {
            format!("[{value}]")
        } else {
            value
        };
        value = if i == 0 {
            format!("{} = {v}\n", path[0])
        } else {
            format!("{{ {} = {v} }}", path[i])
        };
    }
    value
}

/// The keys the code accepts in the table at `path`, or `None` when what
/// sits there is not a table of named keys.
fn code_keys(path: &[&str], array: &dyn Fn(&str) -> bool) -> Option<BTreeSet<String>> {
    let text = probe_document(path, array);
    let err =
        match switchyard::config::Config::parse(&text, Path::new("probe.toml"), Path::new("/")) {
            Ok(_) => return None,
            Err(e) => e.to_string(),
        };
    let (_, rest) = err.split_once("unknown field `__probe__`")?;
    let expected = rest.split_once("expected").map_or("", |(_, e)| e);
    Some(
        code_spans(expected)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn every_config_key_is_in_the_reference_and_every_key_there_is_real() {
    let md = std::fs::read_to_string(workspace().join("docs/configuration.md")).unwrap();
    let docs = documented(&md);
    assert!(
        !docs.is_empty(),
        "no sections found in docs/configuration.md"
    );
    let array = |p: &str| docs.get(p).is_some_and(|s| s.array);

    // Top level: every table the config has is a documented section.
    let top = code_keys(&[], &array).expect("the config is a table");
    let documented_top: BTreeSet<String> =
        docs.keys().filter(|p| !p.contains('.')).cloned().collect();
    assert_eq!(
        top, documented_top,
        "top-level tables in the code (left) and in docs/configuration.md (right)"
    );

    let mut problems = Vec::new();
    for (path, section) in &docs {
        let parts: Vec<&str> = path.split('.').collect();
        let Some(keys) = code_keys(&parts, &array) else {
            problems.push(format!(
                "[{path}] is documented but is not a table in the code"
            ));
            continue;
        };
        for k in keys.difference(&section.keys) {
            problems.push(format!("[{path}] `{k}` is accepted but not documented"));
        }
        for k in section.keys.difference(&keys) {
            problems.push(format!(
                "[{path}] `{k}` is documented but the code refuses it"
            ));
        }
        // A key holding a table of its own needs its own section.
        for k in &keys {
            let child = format!("{path}.{k}");
            if docs.contains_key(&child) {
                continue;
            }
            let mut sub = parts.clone();
            sub.push(k);
            let as_table = code_keys(&sub, &array);
            let as_array = code_keys(&sub, &|p: &str| p == child || array(p));
            if as_table.is_some() || as_array.is_some() {
                problems.push(format!(
                    "`{child}` is a table in the code but has no section in docs/configuration.md"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md and the code disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_probe_sees_nested_tables() {
    // The test above is only as good as its probe: it must find the keys
    // of a table nested in an array of tables, and see a plain value as
    // no table at all.
    let array = |p: &str| p == "destinations";
    let retry = code_keys(&["destinations", "retry"], &array).unwrap();
    assert!(
        retry.contains("max_attempts") && retry.contains("initial"),
        "{retry:?}"
    );
    assert!(code_keys(&["destinations", "url"], &array).is_none());
}

/// The ```toml blocks of a Markdown file.
fn toml_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in md.lines() {
        match (&mut block, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => block = Some(String::new()),
            (Some(b), l) if l.starts_with("```") => {
                out.push(std::mem::take(b));
                block = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_toml_example_in_the_docs_uses_real_keys_and_values() {
    // Examples are often one section, not a whole valid config, so each is
    // read as the config's shape (every key known, every value of its
    // type) without the cross-checks. `env:` secrets point at a variable
    // every process has.
    let mut checked = 0;
    for doc in ["README.md", "docs/configuration.md", "docs/http-api.md"] {
        let md = std::fs::read_to_string(workspace().join(doc)).unwrap();
        for (i, block) in toml_blocks(&md).iter().enumerate() {
            let text: String = block
                .split("env:")
                .enumerate()
                .map(|(j, part)| {
                    if j == 0 {
                        return part.to_owned();
                    }
                    let name_end = part
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(part.len());
                    format!("env:PATH{}", &part[name_end..])
                })
                .collect();
            if let Err(e) = toml::from_str::<switchyard::config::Config>(&text) {
                panic!("{doc}, TOML block {}: {e}\n{block}", i + 1);
            }
            checked += 1;
        }
    }
    assert!(checked > 5, "only {checked} TOML blocks found");
}
