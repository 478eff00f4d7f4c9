/** @module Interface switchyard:plugin/handler@0.2.0 **/
/**
 * Called once per instance before any `handle`, with the plugin's
 * `config` table (every value as a string). An error refuses the plugin.
 */
export function init(config: Array<[string, string]>): void;
/**
 * Decides a batch of events: exactly one result per event of
 * `batch.events`, same order. An `err` fails that event only; a trap
 * fails the whole batch.
 */
export function handle(batch: Batch): Array<Result<Verdict, string>>;
export type Batch = import('./switchyard-plugin-types.js').Batch;
export type Verdict = import('./switchyard-plugin-types.js').Verdict;
export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
