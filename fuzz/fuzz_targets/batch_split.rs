//! The batch body parser against serde_json's own reading of the body:
//! no panic; every element kept is valid UTF-8 JSON, in order and byte for
//! byte as sent; a JSON array serde_json reads (1 to MAX_EVENTS elements)
//! is never refused; an error names an element that can exist.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::Value;
use switchyard::ingest::batch::{Format, MAX_EVENTS, split};

/// Valid JSON text by the grammar (numbers of any size, as RFC 8259 allows).
fn grammar<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()
}

fuzz_target!(|data: &[u8]| {
    // JSON array.
    let reference = grammar::<Vec<IgnoredAny>>(data).map(|v| v.len());
    let values = serde_json::from_slice::<Vec<Value>>(data).ok();
    match split(data, Format::JsonArray) {
        Ok(items) => {
            assert_eq!(
                reference,
                Some(items.len()),
                "split kept what serde_json refuses"
            );
            for (i, item) in items.iter().enumerate() {
                assert!(
                    grammar::<IgnoredAny>(item).is_some(),
                    "element {i} is not JSON"
                );
                assert!(
                    contains(data, item),
                    "element {i} is not the sender's bytes"
                );
                if let Some(values) = &values {
                    let parsed: Value = serde_json::from_slice(item).expect("value");
                    assert_eq!(parsed, values[i], "element {i} changed");
                }
            }
        }
        Err(e) => {
            if let Some(n) = reference {
                assert!(
                    n == 0 || n > MAX_EVENTS,
                    "a valid array of {n} was refused: {}",
                    e.message
                );
            }
            assert!(e.index <= data.len().max(MAX_EVENTS));
        }
    }

    // NDJSON: one event per non-blank line.
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    match split(data, Format::Ndjson) {
        Ok(items) => {
            assert_eq!(items.len(), lines.len());
            for (item, line) in items.iter().zip(&lines) {
                assert_eq!(&item[..], *line);
                assert!(
                    grammar::<IgnoredAny>(item).is_some(),
                    "a kept line is not JSON"
                );
            }
        }
        Err(e) => {
            let all_valid = lines.iter().all(|l| grammar::<IgnoredAny>(l).is_some());
            assert!(
                !all_valid || lines.is_empty() || lines.len() > MAX_EVENTS,
                "valid NDJSON was refused: {}",
                e.message
            );
            assert!(e.index <= lines.len().max(MAX_EVENTS));
        }
    }
});

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
