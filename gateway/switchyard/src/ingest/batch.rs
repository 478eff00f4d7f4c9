//! Splitting a batch body into events: a JSON array, or NDJSON.
//!
//! Each element's raw bytes are kept as they came (no re-serialisation), so
//! a sender's number formatting and key order survive. An error names the
//! element's index, so a sender can find the bad one in a batch of thousands.

use bytes::Bytes;
use serde_json::value::RawValue;

/// The accepted batch encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonArray,
    Ndjson,
}

impl Format {
    /// Picks the format from a content type; `None` means 415.
    pub fn from_content_type(ct: Option<&str>) -> Option<Self> {
        let essence = ct?.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Self::JsonArray),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/json-seq" => Some(Self::Ndjson),
            _ => None,
        }
    }
}

/// Why a batch was refused, and which element (0-based) was at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchError {
    pub index: usize,
    pub message: String,
}

/// Most events in one batch request.
pub const MAX_EVENTS: usize = 10_000;

/// Splits a batch body into one payload per event.
pub fn split(body: &[u8], format: Format) -> Result<Vec<Bytes>, BatchError> {
    let items = match format {
        Format::JsonArray => split_array(body)?,
        Format::Ndjson => split_lines(body)?,
    };
    if items.is_empty() {
        return Err(BatchError {
            index: 0,
            message: "the batch holds no events".to_owned(),
        });
    }
    if items.len() > MAX_EVENTS {
        return Err(BatchError {
            index: MAX_EVENTS,
            message: format!("a batch holds at most {MAX_EVENTS} events"),
        });
    }
    Ok(items)
}

fn split_array(body: &[u8]) -> Result<Vec<Bytes>, BatchError> {
    // Parse the envelope only; elements stay raw slices of the input.
    let elements: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| BatchError {
        index: element_at(body, e.line(), e.column()),
        message: format!("not a JSON array of events: {e}"),
    })?;
    Ok(elements
        .into_iter()
        .map(|raw| Bytes::copy_from_slice(raw.get().as_bytes()))
        .collect())
}

/// Best effort: which element a parse error at `line:column` falls in, by
/// counting top-level commas before it. Used only to point at the culprit.
fn element_at(body: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    let mut cur_line = 1;
    for (i, b) in body.iter().enumerate() {
        if cur_line == line {
            offset = i + column.saturating_sub(1);
            break;
        }
        if *b == b'\n' {
            cur_line += 1;
        }
    }
    let (mut depth, mut index, mut in_str, mut escaped) = (0i32, 0usize, false, false);
    for &b in body.iter().take(offset) {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b',' if depth == 1 => index += 1,
            _ => {}
        }
    }
    index
}

fn split_lines(body: &[u8]) -> Result<Vec<Bytes>, BatchError> {
    let mut out = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let index = out.len();
        // serde_json skips strings without checking their UTF-8 when it
        // ignores them, so the line's encoding is checked here.
        std::str::from_utf8(line).map_err(|e| BatchError {
            index,
            message: format!("line of event {index} is not UTF-8: {e}"),
        })?;
        serde_json::from_slice::<serde::de::IgnoredAny>(line).map_err(|e| BatchError {
            index,
            message: format!("line of event {index} is not JSON: {e}"),
        })?;
        // A JSON array posted as NDJSON is almost always a batch sent with
        // the wrong content type; storing it as one event would hide that.
        if line.trim_ascii_start().first() == Some(&b'[') {
            return Err(BatchError {
                index,
                message: format!(
                    "line of event {index} is a JSON array: NDJSON takes one event (an object) a \
                     line; send an array batch with content-type: application/json"
                ),
            });
        }
        out.push(Bytes::copy_from_slice(line));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_elements_keep_their_bytes() {
        let items = split(br#"[{"a": 1.50}, [1,2], "x", 7]"#, Format::JsonArray).expect("valid");
        let texts: Vec<&[u8]> = items.iter().map(|b| b.as_ref()).collect();
        assert_eq!(
            texts,
            vec![&br#"{"a": 1.50}"#[..], b"[1,2]", b"\"x\"", b"7"]
        );
    }

    #[test]
    fn an_array_sent_as_ndjson_is_refused_at_index_0() {
        let err = split(b"[{\"a\":1},{\"b\":2}]\n", Format::Ndjson).expect_err("an array");
        assert_eq!(err.index, 0);
        assert!(err.message.contains("JSON array"), "{}", err.message);
    }

    #[test]
    fn ndjson_skips_blank_lines_and_names_the_bad_one() {
        let items = split(b"{\"a\":1}\r\n\n{\"b\":2}\n", Format::Ndjson).expect("valid");
        assert_eq!(items.len(), 2);
        let err = split(b"{\"a\":1}\n{\"b\":\n{\"c\":3}\n", Format::Ndjson).expect_err("bad");
        assert_eq!(err.index, 1);
    }

    #[test]
    fn malformed_array_points_at_the_element() {
        let err = split(br#"[{"a":1}, {"b":2}, {"c": nope}]"#, Format::JsonArray).expect_err("bad");
        assert_eq!(err.index, 2, "{err:?}");
        let err = split(b"{\"not\": \"an array\"}", Format::JsonArray).expect_err("object");
        assert!(err.message.contains("array"), "{err:?}");
    }

    #[test]
    fn empty_batches_are_refused() {
        assert!(split(b"[]", Format::JsonArray).is_err());
        assert!(split(b"\n\n", Format::Ndjson).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type(Some("application/json; charset=utf-8")),
            Some(Format::JsonArray)
        );
        assert_eq!(
            Format::from_content_type(Some("application/x-ndjson")),
            Some(Format::Ndjson)
        );
        assert_eq!(Format::from_content_type(Some("text/plain")), None);
        assert_eq!(Format::from_content_type(None), None);
    }
}
