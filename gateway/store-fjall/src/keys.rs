//! Key encodings. Every key layout of the store is written here, so a reader
//! can see at a glance what sorts how.
//!
//! Names (topics, destinations) are restricted by config validation to
//! `[A-Za-z0-9._-]`, so a `0x00` separator can never occur inside one.

use switchyard_store::QueueEntry;
use ulid::Ulid;

/// Separates a name from what follows it in a key.
pub const SEP: u8 = 0;

/// `events`, `pending_route`, `transformed`: the 16-byte id, big-endian, so
/// keys sort by time of acceptance.
pub fn event(id: Ulid) -> [u8; 16] {
    id.to_bytes()
}

/// `transformed`: id, `v` -> the plugins' verdicts of the event's last
/// routing (JSON). Beside the rewrite (which is under the bare id), so
/// retention removes both with the event.
pub fn verdicts(id: Ulid) -> Vec<u8> {
    let mut k = id.to_bytes().to_vec();
    k.push(b'v');
    k
}

pub fn decode_event(key: &[u8]) -> Option<Ulid> {
    let bytes: [u8; 16] = key.try_into().ok()?;
    Some(Ulid::from_bytes(bytes))
}

/// `queue`: destination, band (9 - priority, most urgent first), due time,
/// id. A destination's entries sort in delivery order.
pub fn queue(dest: &str, priority: u8, due_ms: u64, id: Ulid) -> Vec<u8> {
    let mut k = Vec::with_capacity(dest.len() + 26);
    k.extend_from_slice(dest.as_bytes());
    k.push(SEP);
    k.push(9u8.saturating_sub(priority.min(9)));
    k.extend_from_slice(&due_ms.to_be_bytes());
    k.extend_from_slice(&id.to_bytes());
    k
}

/// `dstate`: id then destination: one event's deliveries sit together.
/// The key of a queue entry: where it sorts in its destination's queue.
pub fn queue_entry(e: &QueueEntry) -> Vec<u8> {
    queue(&e.destination, e.priority, e.due_ms, e.event_id)
}

/// The destination a queue key belongs to.
pub fn queue_destination(key: &[u8]) -> Option<&str> {
    let end = key.iter().position(|b| *b == SEP)?;
    std::str::from_utf8(&key[..end]).ok()
}

/// The first queue key after every key of `dest`.
pub fn after_queue(dest: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(dest.len() + 1);
    k.extend_from_slice(dest.as_bytes());
    k.push(SEP + 1);
    k
}

/// `meta`: the store format version (u32 big-endian).
pub const FORMAT: &[u8] = b"format";

pub fn dstate(id: Ulid, dest: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + dest.len());
    k.extend_from_slice(&id.to_bytes());
    k.extend_from_slice(dest.as_bytes());
    k
}

/// `attempts`: id, destination, attempt number: history reads are one prefix scan.
pub fn attempt(id: Ulid, dest: &str, n: u32) -> Vec<u8> {
    let mut k = attempts_prefix(id, dest);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

pub fn attempts_prefix(id: Ulid, dest: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(21 + dest.len());
    k.extend_from_slice(&id.to_bytes());
    k.extend_from_slice(dest.as_bytes());
    k.push(SEP);
    k
}

/// `dlq` and `topic_dlq`: owner (destination or topic) then id.
pub fn dlq(owner: &str, id: Ulid) -> Vec<u8> {
    let mut k = name_prefix(owner);
    k.extend_from_slice(&id.to_bytes());
    k
}

/// `name\0`: the prefix of everything a destination or topic owns.
pub fn name_prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(SEP);
    k
}

/// `idem`: topic then the sender's key.
pub fn idem(topic: &str, key: &str) -> Vec<u8> {
    let mut k = name_prefix(topic);
    k.extend_from_slice(key.as_bytes());
    k
}

/// `idem_expiry`: creation time first, so expired keys are a range from the front.
pub fn idem_expiry(created_ms: u64, topic: &str, key: &str) -> Vec<u8> {
    let mut k = created_ms.to_be_bytes().to_vec();
    k.extend_from_slice(&idem(topic, key));
    k
}

/// `meta`: a destination's paused flag.
pub fn paused(dest: &str) -> Vec<u8> {
    let mut k = b"paused".to_vec();
    k.push(SEP);
    k.extend_from_slice(dest.as_bytes());
    k
}

/// The queue key of `dest`'s band `band` (0 = priority 9) at `pos`.
pub fn queue_at(dest: &str, band: u8, due_ms: u64, id: Ulid) -> Vec<u8> {
    queue(dest, 9u8.saturating_sub(band), due_ms, id)
}

/// The first key after every queue key of `dest`'s band `band`.
pub fn after_band(dest: &str, band: u8) -> Vec<u8> {
    let mut k = name_prefix(dest);
    k.push(band + 1);
    k
}

/// `qkeys`: destination `\0`, the FIFO key's length (u16 BE) and bytes, id.
/// The length keeps one key's entries together and in id order whatever
/// bytes the key holds. The value is the entry's band and due time, so the
/// next head is found without reading the entry.
pub fn fifo_prefix(dest: &str, key: &str) -> Vec<u8> {
    let key = key.as_bytes();
    let len = key.len().min(u16::MAX as usize);
    let mut k = name_prefix(dest);
    k.extend_from_slice(&(len as u16).to_be_bytes());
    k.extend_from_slice(&key[..len]);
    k
}

pub fn fifo(dest: &str, key: &str, id: Ulid) -> Vec<u8> {
    let mut k = fifo_prefix(dest, key);
    k.extend_from_slice(&id.to_bytes());
    k
}

/// Reads a `qkeys` key of `dest` back: the FIFO key and the id.
pub fn decode_fifo(dest: &str, k: &[u8]) -> Option<(String, Ulid)> {
    let rest = k.get(dest.len() + 1..)?;
    let len = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(rest.get(2..2 + len)?).ok()?.to_owned();
    let id = decode_event(rest.get(2 + len..)?)?;
    Some((key, id))
}

/// The value of a `qkeys` entry: band (1 byte) and due time (u64 BE).
pub fn fifo_value(band: u8, due_ms: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    v.push(band);
    v.extend_from_slice(&due_ms.to_be_bytes());
    v
}

pub fn decode_fifo_value(v: &[u8]) -> Option<(u8, u64)> {
    let band = *v.first()?;
    let due = u64::from_be_bytes(v.get(1..9)?.try_into().ok()?);
    Some((band, due))
}

/// `qage`: destination `\0`, enqueued ms (u64 BE), id: a destination's
/// pending entries in the order they were queued, for the oldest's age.
pub fn age(dest: &str, enqueued_ms: u64, id: Ulid) -> Vec<u8> {
    let mut k = name_prefix(dest);
    k.extend_from_slice(&enqueued_ms.to_be_bytes());
    k.extend_from_slice(&id.to_bytes());
    k
}

/// Reads a `qage` key of `dest` back: (enqueued ms, id).
pub fn decode_age(dest: &str, k: &[u8]) -> Option<(u64, Ulid)> {
    let rest = k.get(dest.len() + 1..)?;
    let ms = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some((ms, decode_event(rest.get(8..)?)?))
}

/// `leases`: destination `\0` id -> the leased entry, so live leases are
/// known at open without reading the whole queue.
pub fn lease(dest: &str, id: Ulid) -> Vec<u8> {
    let mut k = name_prefix(dest);
    k.extend_from_slice(&id.to_bytes());
    k
}

/// `qstat`: destination `\0` `c` -> stored entries (u64 BE).
pub fn stat_count(dest: &str) -> Vec<u8> {
    let mut k = name_prefix(dest);
    k.push(b'c');
    k
}

/// The name a priority band's counter is kept under in `qstat` (as
/// `stat_count(band_counter(..))`): the destination, `\x01`, the band. A
/// destination name never holds `\x01`, so it cannot collide with one, and
/// the writer keeps it in order like any other count, in the same batch as
/// the entries that change it.
pub fn band_counter(dest: &str, band: u8) -> String {
    format!("{dest}\u{1}{band}")
}

/// `qstat`: destination `\0` `h` second (u64 BE) -> stored entries due in
/// that second (u64 BE).
pub fn stat_due(dest: &str, second: u64) -> Vec<u8> {
    let mut k = name_prefix(dest);
    k.push(b'h');
    k.extend_from_slice(&second.to_be_bytes());
    k
}

/// The first key after `prefix` and everything it starts.
pub fn successor(prefix: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    while let Some(last) = k.last_mut() {
        if *last < u8::MAX {
            *last += 1;
            return k;
        }
        k.pop();
    }
    // All 0xFF: nothing sorts after it but longer keys of 0xFF.
    vec![u8::MAX; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_sort_urgent_then_due_then_id() {
        let a = Ulid::from_parts(1, 1);
        let b = Ulid::from_parts(1, 2);
        let urgent_late = queue("d", 9, 500, b);
        let normal_early = queue("d", 5, 100, a);
        let normal_early_b = queue("d", 5, 100, b);
        let normal_later = queue("d", 5, 200, a);
        let mut keys = vec![
            normal_later.clone(),
            normal_early_b.clone(),
            urgent_late.clone(),
            normal_early.clone(),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![urgent_late, normal_early, normal_early_b, normal_later]
        );
    }

    #[test]
    fn destination_prefixes_do_not_collide() {
        // "a" must not own the keys of "a-b".
        let k = queue("a-b", 5, 1, Ulid::nil());
        assert!(!k.starts_with(&name_prefix("a")));
    }
}
