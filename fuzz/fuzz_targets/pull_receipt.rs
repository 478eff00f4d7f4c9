//! The pull consumer's lease receipts (`<ulid>.<16 hex digits>`, echoed back
//! on ack / nack / extend): any id and nonce the gateway writes read back to
//! themselves; arbitrary text never panics, and what reads as a receipt is
//! exactly what the gateway would have written for it (one spelling per
//! lease, nothing else names one).
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard_delivery::pull::{parse_receipt, receipt};
use ulid::Ulid;

fuzz_target!(|data: &[u8]| {
    // The first 24 bytes as an id and a nonce: written, then read back.
    if let Some(head) = data.get(..24) {
        let id = Ulid::from_bytes(head[..16].try_into().expect("16 bytes"));
        let nonce = u64::from_le_bytes(head[16..].try_into().expect("8 bytes"));
        let r = receipt(id, nonce);
        assert_eq!(parse_receipt(&r), Some((id, nonce)), "{r}");
        // The receipt edited by the rest of the input, as a client might
        // mangle it (case, digits, length): either refused, or exactly what
        // the gateway writes for what it reads as.
        let mut edited = r.into_bytes();
        for edit in data[24..].chunks(2) {
            match edit {
                [0, _] => edited.truncate(edited.len().saturating_sub(1)),
                [pos, b] => {
                    let pos = *pos as usize % (edited.len() + 1);
                    if pos == edited.len() {
                        edited.push(*b);
                    } else {
                        edited[pos] = *b;
                    }
                }
                _ => {}
            }
        }
        if let Ok(text) = std::str::from_utf8(&edited)
            && let Some((id, nonce)) = parse_receipt(text)
        {
            assert_eq!(
                receipt(id, nonce),
                text,
                "{text:?} reads as another spelling"
            );
        }
    }
    // The whole input as a receipt a client sent.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((id, nonce)) = parse_receipt(text) {
        assert_eq!(
            receipt(id, nonce),
            text,
            "{text:?} reads as a receipt the gateway never writes"
        );
    }
});
