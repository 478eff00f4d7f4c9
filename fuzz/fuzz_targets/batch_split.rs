//! The batch body parser: no panic, and every element it keeps is valid
//! UTF-8 JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::ingest::batch::{Format, split};

fuzz_target!(|data: &[u8]| {
    for format in [Format::JsonArray, Format::Ndjson] {
        if let Ok(items) = split(data, format) {
            for item in items {
                let text = std::str::from_utf8(&item).expect("a kept element is not UTF-8");
                assert!(
                    serde_json_valid(text),
                    "a kept element is not JSON: {text:?}"
                );
            }
        }
    }
});

fn serde_json_valid(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}
