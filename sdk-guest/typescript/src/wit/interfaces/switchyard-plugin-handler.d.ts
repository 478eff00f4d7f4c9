/** @module Interface switchyard:plugin/handler@0.3.0 **/
/**
 * Called once per instance before any `handle`, with the plugin's
 * `config` table (every value as a string). An error refuses the plugin.
 */
export function init(config: Array<[string, string]>): void;
/**
 * Decides a batch of events, returning one verdict buffer: a trap
 * fails the whole batch. The buffer (integers little-endian; a
 * `string` is a u32 byte length then that many bytes of UTF-8, `bytes`
 * the same without the UTF-8):
 * 
 * - u32: the number of results, which must equal the batch's events;
 * - then one result per event, in order: a u8 tag, then
 *   - tag 1 (`err`): a `string`, why this event failed (only this one);
 *   - tag 0 (`ok`): a u8 of flags saying which verdict fields follow,
 *     then those fields in this order (an unset field keeps its current
 *     value, so plugins compose in a chain; flags 0 changes nothing):
 * 
 * | flag | field | encoding | meaning |
 * |---|---|---|---|
 * | 1 | routes | u32 n, n × `string` | destination names; none drops the event; an unknown name is a plugin error |
 * | 2 | priority | u8 | 0-9, 9 most urgent; above 9 is a plugin error |
 * | 4 | payload | `bytes` | a replacement payload |
 * | 8 | headers | u32 n, n × (`string`, `string`) | a replacement header list |
 * | 16 | content-type | `string` | a replacement media type |
 * | 32 | delay-ms | u64 | hold the first delivery back this long |
 * | 64 | ordering-key | `string` | FIFO key where a destination asks for order |
 * | 128 | attributes | u32 n, n × (`string`, `string`) | set (inserted or replaced by key) on the event's attributes |
 * 
 * The host fails the whole batch on a buffer it cannot frame (a count
 * that is not the batch's, a tag other than 0 or 1, a length past the
 * end, bytes left over) and one event on a field that frames but is
 * wrong (text that is not UTF-8, priority above 9, an unknown route).
 */
export function handle(batch: Batch): Uint8Array;
export type Batch = import('./switchyard-plugin-types.js').Batch;
