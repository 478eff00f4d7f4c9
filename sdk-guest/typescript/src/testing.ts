/**
 * Running a plugin natively, as the gateway would, without Wasm.
 *
 * `run` lays events out as the contract's batch (the gateway's layout),
 * calls the exported handler's `init` and `handle`, and gives back one
 * `{tag: "ok", val: verdict}` or `{tag: "err", val: message}` per event:
 *
 *     const [r] = run(ByType, {}, [event({ type: "refund" })]);
 *     assert.deepEqual(r, { tag: "ok", val: { routes: ["refunds"] } });
 * @module
 */

import { exportPlugin, type Plugin, type Result } from "./plugin.js";
import type * as wit from "./wit/interfaces/switchyard-plugin-types.js";

const encoder = new TextEncoder();

/** An event to put in a batch: what `event()` makes. */
export interface SampleEvent {
  payload: Uint8Array;
  topic: string;
  id: string;
  contentType: string;
  headers: Array<[string, string]>;
  attributes: Array<[string, string]>;
  receivedAtMs: number;
}

export interface EventOptions {
  /** The payload as text (content type `text/plain`). */
  text?: string;
  /** The payload as bytes (content type `application/octet-stream`). */
  raw?: Uint8Array;
  topic?: string;
  id?: string;
  contentType?: string;
  headers?: Record<string, string> | Array<[string, string]>;
  attributes?: Record<string, string> | Array<[string, string]>;
  receivedAtMs?: number;
}

function pairs(p: EventOptions["headers"], lower: boolean): Array<[string, string]> {
  const items = p === undefined ? [] : Array.isArray(p) ? p : Object.entries(p);
  return items.map(([k, v]) => [lower ? k.toLowerCase() : k, String(v)]);
}

/** An event with a JSON `body` (any value, serialised), or `text`, or `raw` bytes. */
export function event(body?: unknown, options: EventOptions = {}): SampleEvent {
  let payload: Uint8Array;
  let ct: string;
  if (options.raw !== undefined) [payload, ct] = [options.raw, "application/octet-stream"];
  else if (options.text !== undefined) [payload, ct] = [encoder.encode(options.text), "text/plain"];
  else if (body !== undefined) [payload, ct] = [encoder.encode(JSON.stringify(body)), "application/json"];
  else [payload, ct] = [new Uint8Array(), "application/octet-stream"];
  return {
    payload,
    topic: options.topic ?? "test",
    id: options.id ?? "01J00000000000000000000000",
    contentType: options.contentType ?? ct,
    headers: pairs(options.headers, true),
    attributes: pairs(options.attributes, false),
    receivedAtMs: options.receivedAtMs ?? Date.now(),
  };
}

/**
 * Lays `events` out as the contract's batch: texts and payloads back to
 * back in `data`, headers and attributes in `fields`.
 */
export function encodeBatch(events: SampleEvent[]): wit.Batch {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const fields: wit.Field[] = [];
  const put = (b: Uint8Array): wit.Span => {
    const s = { offset: size, len: b.length };
    chunks.push(b);
    size += b.length;
    return s;
  };
  const putText = (t: string) => put(encoder.encode(t));
  const putFields = (ps: Array<[string, string]>): wit.Span => {
    const s = { offset: fields.length, len: ps.length };
    for (const [k, v] of ps) fields.push({ name: putText(k), value: putText(v) });
    return s;
  };
  const out: wit.Event[] = events.map((e) => ({
    id: putText(e.id),
    topic: putText(e.topic),
    receivedAtMs: BigInt(e.receivedAtMs),
    headers: putFields(e.headers),
    contentType: putText(e.contentType),
    payload: put(e.payload),
    attributes: putFields(e.attributes),
  }));
  const data = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { data, fields, events: out };
}

/**
 * Exports `PluginClass`, calls `init(config)`, then `handle` on one batch
 * of `events`: one result per event. A refused config throws (its
 * `payload` is the message the gateway would show).
 */
export function run(
  PluginClass: new () => Plugin,
  config: Record<string, string>,
  events: SampleEvent[],
): Array<Result<wit.Verdict, string>> {
  const handler = exportPlugin(PluginClass);
  handler.init(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)));
  return handler.handle(encodeBatch(events));
}

/** The verdicts of `results`, throwing on the first error. */
export function verdicts(results: Array<Result<wit.Verdict, string>>): wit.Verdict[] {
  return results.map((r) => {
    if (r.tag === "err") throw new Error(`event failed: ${r.val}`);
    return r.val;
  });
}
