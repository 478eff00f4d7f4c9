//! Avro binary in Confluent's wire format: magic byte 0, the writer schema's
//! id as 4 big-endian bytes, then one Avro datum.
//!
//! The datum is checked by walking it against the writer schema without
//! building values: that is all validation needs, it costs no allocation,
//! and it bounds every length against the bytes actually present (a datum
//! claiming a 2 GiB string must not make us allocate one). Whether the
//! writer schema resolves to the topic's schema is decided once per pair of
//! ids by `compat::can_read` and cached by the registry.

use super::schema::{Kind, NamedDef, Schema};

/// Why a body is not a decodable wire-format datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Too short for the 5-byte header.
    Truncated,
    BadMagic(u8),
}

/// Splits a Confluent-framed body into the writer schema id and the datum.
pub fn split_frame(body: &[u8]) -> Result<(u32, &[u8]), WireError> {
    match body {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [m, ..] if *m != 0 => Err(WireError::BadMagic(*m)),
        _ => Err(WireError::Truncated),
    }
}

/// Recursive schemas let a datum nest as deep as its bytes allow; the stack
/// doesn't.
const MAX_DEPTH: usize = 256;

/// Checks that `datum` is exactly one value of `schema`, with no bytes left.
pub fn validate_datum(schema: &Schema, datum: &[u8]) -> Result<(), String> {
    let mut d = Decoder {
        schema,
        buf: datum,
        pos: 0,
        // Zero-byte values (null, empty records) let a block count claim
        // billions of items for free: charge every value against a budget
        // proportional to the datum's size.
        budget: datum.len().saturating_mul(8).saturating_add(1024),
    };
    d.value(&schema.root, 0)?;
    if d.pos != datum.len() {
        return Err(format!(
            "{} bytes left over after the datum ended at byte {}",
            datum.len() - d.pos,
            d.pos
        ));
    }
    Ok(())
}

struct Decoder<'a> {
    schema: &'a Schema,
    buf: &'a [u8],
    pos: usize,
    budget: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {what} needs {n} bytes at byte {}, {} left",
                    self.pos,
                    self.buf.len() - self.pos
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A zig-zag varint of at most 10 bytes.
    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(format!(
                    "truncated: a varint runs past the end at byte {}",
                    self.pos
                ));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(format!("varint overflows 64 bits at byte {}", self.pos - 1));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn length(&mut self, what: &str) -> Result<usize, String> {
        let at = self.pos;
        let n = self.long()?;
        usize::try_from(n).map_err(|_| format!("negative {what} length {n} at byte {at}"))
    }

    fn value(&mut self, kind: &Kind, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or("the datum claims more values than its size allows")?;
        match kind {
            Kind::Null => Ok(()),
            Kind::Boolean => {
                let at = self.pos;
                match self.take(1, "a boolean")?.first() {
                    Some(0 | 1) => Ok(()),
                    Some(b) => Err(format!("invalid boolean byte {b} at byte {at}")),
                    None => Err("a boolean is one byte".into()),
                }
            }
            Kind::Int => {
                let at = self.pos;
                let v = self.long()?;
                i32::try_from(v)
                    .map(|_| ())
                    .map_err(|_| format!("int out of range ({v}) at byte {at}"))
            }
            Kind::Long => self.long().map(|_| ()),
            Kind::Float => self.take(4, "a float").map(|_| ()),
            Kind::Double => self.take(8, "a double").map(|_| ()),
            Kind::Bytes => {
                let n = self.length("bytes")?;
                self.take(n, "bytes").map(|_| ())
            }
            Kind::String => {
                let n = self.length("string")?;
                let at = self.pos;
                let s = self.take(n, "a string")?;
                std::str::from_utf8(s)
                    .map(|_| ())
                    .map_err(|e| format!("string at byte {at} is not UTF-8: {e}"))
            }
            Kind::Array(items) => self.blocks(|d| d.value(items, depth + 1)),
            Kind::Map(values) => self.blocks(|d| {
                let n = d.length("map key")?;
                let at = d.pos;
                let k = d.take(n, "a map key")?;
                std::str::from_utf8(k)
                    .map_err(|e| format!("map key at byte {at} is not UTF-8: {e}"))?;
                d.value(values, depth + 1)
            }),
            Kind::Union(branches) => {
                let at = self.pos;
                let i = self.long()?;
                let b = usize::try_from(i)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| {
                        format!(
                            "union branch {i} at byte {at} does not exist (the union has {})",
                            branches.len()
                        )
                    })?;
                self.value(b, depth + 1)
            }
            Kind::Named(i) => {
                let named = &self.schema.named[*i];
                match &named.def {
                    NamedDef::Record { fields } => {
                        for f in fields {
                            self.value(&f.kind, depth + 1)
                                .map_err(|e| format!("field {}: {e}", f.name))?;
                        }
                        Ok(())
                    }
                    NamedDef::Enum { symbols, .. } => {
                        let at = self.pos;
                        let i = self.long()?;
                        if usize::try_from(i).is_ok_and(|i| i < symbols.len()) {
                            Ok(())
                        } else {
                            Err(format!(
                                "enum {} index {i} at byte {at} is out of range",
                                named.fullname
                            ))
                        }
                    }
                    NamedDef::Fixed { size } => self.take(*size, "a fixed").map(|_| ()),
                }
            }
        }
    }

    /// Arrays and maps: blocks of `count` items until a zero count; a
    /// negative count is followed by the block's size in bytes.
    fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            let at = self.pos;
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.length("block size")?;
            }
            let n = count.unsigned_abs();
            if n > self.budget as u64 {
                return Err(format!(
                    "block at byte {at} claims {n} items, more than the datum can hold"
                ));
            }
            for _ in 0..n {
                item(self)?;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use apache_avro::types::Value as AvroValue;
    use serde_json::json;

    fn schemas(v: serde_json::Value) -> (Schema, apache_avro::Schema) {
        (
            Schema::parse(&v).unwrap(),
            apache_avro::Schema::parse(&v).unwrap(),
        )
    }

    #[test]
    fn frame_header_is_checked() {
        assert_eq!(split_frame(&[0, 0, 0, 1, 7, 42]), Ok((263, &[42][..])));
        assert_eq!(split_frame(&[0, 0, 0, 0, 1]), Ok((1, &[][..])));
        assert_eq!(split_frame(&[1, 0, 0, 0, 1]), Err(WireError::BadMagic(1)));
        assert_eq!(split_frame(&[0, 0, 0]), Err(WireError::Truncated));
        assert_eq!(split_frame(&[]), Err(WireError::Truncated));
    }

    #[test]
    fn agrees_with_apache_avro_encoding() {
        let (ours, theirs) = schemas(json!({
            "type": "record", "name": "R", "fields": [
                {"name": "a", "type": "long"},
                {"name": "b", "type": ["null", "string"]},
                {"name": "c", "type": {"type": "array", "items": "int"}},
                {"name": "d", "type": {"type": "map", "values": "double"}},
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
                {"name": "f", "type": {"type": "fixed", "name": "F", "size": 3}},
                {"name": "g", "type": "boolean"},
                {"name": "h", "type": "float"},
                {"name": "i", "type": "bytes"}
            ]
        }));
        let value = AvroValue::Record(vec![
            ("a".into(), AvroValue::Long(-1234567890123)),
            (
                "b".into(),
                AvroValue::Union(1, Box::new(AvroValue::String("héllo".into()))),
            ),
            (
                "c".into(),
                AvroValue::Array(vec![AvroValue::Int(1), AvroValue::Int(-2)]),
            ),
            (
                "d".into(),
                AvroValue::Map([("k".to_string(), AvroValue::Double(1.5))].into()),
            ),
            ("e".into(), AvroValue::Enum(1, "Y".into())),
            ("f".into(), AvroValue::Fixed(3, vec![1, 2, 3])),
            ("g".into(), AvroValue::Boolean(true)),
            ("h".into(), AvroValue::Float(0.5)),
            ("i".into(), AvroValue::Bytes(vec![0, 255])),
        ]);
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&theirs)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap();
        validate_datum(&ours, &bytes).unwrap();

        // Every strict prefix is truncated; one extra byte is left over.
        for cut in 0..bytes.len() {
            assert!(
                validate_datum(&ours, &bytes[..cut]).is_err(),
                "prefix {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            validate_datum(&ours, &longer)
                .unwrap_err()
                .contains("left over")
        );
    }

    #[test]
    fn hostile_lengths_and_indexes_are_refused() {
        let (s, _) = schemas(json!("string"));
        // Length 2^62 as a zig-zag varint: must fail without allocating.
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(validate_datum(&s, &huge).unwrap_err().contains("truncated"));
        assert!(
            validate_datum(&s, &[0x01])
                .unwrap_err()
                .contains("negative")
        );
        assert!(
            validate_datum(&s, &[0x02, 0xff])
                .unwrap_err()
                .contains("UTF-8")
        );

        let (u, _) = schemas(json!(["null", "int"]));
        assert!(
            validate_datum(&u, &[0x04])
                .unwrap_err()
                .contains("branch 2")
        );

        // A billion nulls in one block of an array of nulls: refused at once.
        let (a, _) = schemas(json!({"type": "array", "items": "null"}));
        let mut many = vec![0x80, 0xa8, 0xd6, 0xb9, 0x07];
        many.push(0);
        assert!(validate_datum(&a, &many).unwrap_err().contains("claims"));

        let (b, _) = schemas(json!("boolean"));
        assert!(validate_datum(&b, &[2]).is_err());
        let (i, _) = schemas(json!("int"));
        // 2^31 zig-zag encoded is 2^32: out of int range.
        assert!(
            validate_datum(&i, &[0x80, 0x80, 0x80, 0x80, 0x10])
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn deep_recursion_is_bounded() {
        let (s, _) = schemas(json!({"type": "record", "name": "L", "fields": [
            {"name": "next", "type": ["null", "L"]}]}));
        let deep = vec![2u8; 10_000];
        assert!(validate_datum(&s, &deep).is_err());
    }
}
