/** @module Interface switchyard:plugin/types@0.3.0 **/
/**
 * The events of one call, as three byte lists.
 * 
 * `data`: every text and payload of the batch back to back (each text
 * valid UTF-8). A topic or content type equal to the previous event's
 * may be shared, not copied again.
 * 
 * `events`: the index, one 56-byte record per event, in order (so the
 * batch holds `len(events) / 56` events):
 * 
 * | offset | type | field |
 * |---|---|---|
 * | 0 | u64 | received-at-ms: when the gateway accepted it, ms since the Unix epoch |
 * | 8, 12 | u32, u32 | id: offset and length in `data` (a ULID, stable across retries) |
 * | 16, 20 | u32, u32 | topic: offset and length in `data` |
 * | 24, 28 | u32, u32 | content-type: offset and length in `data` |
 * | 32, 36 | u32, u32 | payload: offset and length in `data` |
 * | 40, 44 | u32, u32 | headers: first entry and count in `fields` (names in lower case) |
 * | 48, 52 | u32, u32 | attributes: first entry and count in `fields` (set by earlier plugins) |
 * 
 * `fields`: every header and attribute, one 16-byte entry each: name
 * offset, name length, value offset, value length (u32 each, in `data`).
 * 
 * A guest must check ranges before it reads them: a range past the end
 * fails that event (never Switchyard's host, but a guest should not
 * trust its caller).
 */
export interface Batch {
  data: Uint8Array,
  events: Uint8Array,
  fields: Uint8Array,
}
