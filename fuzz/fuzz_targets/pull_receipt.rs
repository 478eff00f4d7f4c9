//! The pull consumer's lease receipts (`<ulid>.<16 hex digits>`, echoed back
//! on ack / nack / extend): any id and nonce the gateway writes read back to
//! themselves; arbitrary text never panics, and what reads as a receipt is
//! exactly what the gateway would have written for it (one spelling per
//! lease, nothing else names one).
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::delivery::pull::{parse_receipt, receipt};
use ulid::Ulid;

fuzz_target!(|data: &[u8]| {
    // The first 24 bytes as an id and a nonce: written, then read back.
    if let Some(head) = data.get(..24) {
        let id = Ulid::from_bytes(head[..16].try_into().expect("16 bytes"));
        let nonce = u64::from_le_bytes(head[16..].try_into().expect("8 bytes"));
        let r = receipt(id, nonce);
        assert_eq!(parse_receipt(&r), Some((id, nonce)), "{r}");
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
