/**
 * Running a plugin natively, as the gateway would, without Wasm.
 *
 * `run` lays events out as the contract's batch (the gateway's layout),
 * calls the exported handler's `init` and `handle`, reads the verdict
 * buffer back as strictly as the gateway (`decodeVerdicts`), and gives one
 * `{tag: "ok", val: verdict}` or `{tag: "err", val: message}` per event:
 *
 *     const [r] = run(ByType, {}, [event({ type: "refund" })]);
 *     assert.deepEqual(r, { tag: "ok", val: { routes: ["refunds"] } });
 * @module
 */

import { exportPlugin, type Plugin, type Result } from "./plugin.js";
import type * as wit from "./wit/interfaces/switchyard-plugin-types.js";
import { EVENT_RECORD, view, type VerdictFields } from "./wire.js";

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
 * back in `data`, a 56-byte record per event in `events`, a 16-byte entry
 * per header and attribute in `fields`.
 */
export function encodeBatch(events: SampleEvent[]): wit.Batch {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const entries: number[] = [];
  const put = (b: Uint8Array): [number, number] => {
    const s: [number, number] = [size, b.length];
    chunks.push(b);
    size += b.length;
    return s;
  };
  const putText = (t: string) => put(encoder.encode(t));
  const putFields = (ps: Array<[string, string]>): [number, number] => {
    const first = entries.length / 4;
    for (const [k, v] of ps) entries.push(...putText(k), ...putText(v));
    return [first, ps.length];
  };
  const index = new Uint8Array(events.length * EVENT_RECORD);
  const iv = view(index);
  events.forEach((e, i) => {
    const words = [
      ...putText(e.id),
      ...putText(e.topic),
      ...putText(e.contentType),
      ...put(e.payload),
      ...putFields(e.headers),
      ...putFields(e.attributes),
    ];
    iv.setBigUint64(i * EVENT_RECORD, BigInt(e.receivedAtMs), true);
    words.forEach((x, w) => iv.setUint32(i * EVENT_RECORD + 8 + 4 * w, x, true));
  });
  const data = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  const fields = new Uint8Array(entries.length * 4);
  const fv = view(fields);
  entries.forEach((x, j) => fv.setUint32(4 * j, x, true));
  return { data, events: index, fields };
}

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder("utf-8");

/**
 * Reads a verdict buffer for `n` events as the gateway does: one result per
 * event. A buffer the gateway could not frame (wrong count, a tag other
 * than 0 or 1, a length past the end, bytes left over) throws a
 * `RangeError`; a priority above 9 is that event's error, as the gateway
 * makes it.
 */
export function decodeVerdicts(buf: Uint8Array, n: number): Array<Result<VerdictFields, string>> {
  const v = view(buf);
  let at = 0;
  const take = (k: number): number => {
    if (at + k > buf.length) throw new RangeError(`malformed verdict buffer: at byte ${at}: ${k} bytes wanted, ${buf.length - at} left`);
    const start = at;
    at += k;
    return start;
  };
  const u8 = () => buf[take(1)]!;
  const u32 = () => v.getUint32(take(4), true);
  const bytes = () => {
    const len = u32();
    const start = take(len);
    return buf.slice(start, start + len);
  };
  const text = () => strict.decode(bytes());
  const pairs = (): Array<[string, string]> => Array.from({ length: u32() }, () => [text(), text()]);
  const count = u32();
  if (count !== n) throw new RangeError(`returned ${count} verdicts for ${n} events`);
  const out: Array<Result<VerdictFields, string>> = [];
  for (let i = 0; i < n; i++) {
    const tag = u8();
    if (tag === 1) {
      out.push({ tag: "err", val: lenient.decode(bytes()) });
      continue;
    }
    if (tag !== 0) throw new RangeError(`malformed verdict buffer: result ${i} has tag ${tag}, not 0 (ok) or 1 (err)`);
    const flags = u8();
    const f: VerdictFields = {};
    if (flags & 1) f.routes = Array.from({ length: u32() }, text);
    if (flags & 2) f.priority = u8();
    if (flags & 4) f.payload = bytes();
    if (flags & 8) f.headers = pairs();
    if (flags & 16) f.contentType = text();
    if (flags & 32) f.delayMs = v.getBigUint64(take(8), true);
    if (flags & 64) f.orderingKey = text();
    if (flags & 128) f.attributes = pairs();
    if (f.priority !== undefined && f.priority > 9) {
      out.push({ tag: "err", val: `set priority ${f.priority}; priorities are 0-9` });
    } else {
      out.push({ tag: "ok", val: f });
    }
  }
  if (at !== buf.length) throw new RangeError(`malformed verdict buffer: ${buf.length - at} bytes left after the last result`);
  return out;
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
): Array<Result<VerdictFields, string>> {
  const handler = exportPlugin(PluginClass);
  handler.init(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)));
  return decodeVerdicts(handler.handle(encodeBatch(events)), events.length);
}

/** The verdicts of `results`, throwing on the first error. */
export function verdicts(results: Array<Result<VerdictFields, string>>): VerdictFields[] {
  return results.map((r) => {
    if (r.tag === "err") throw new Error(`event failed: ${r.val}`);
    return r.val;
  });
}
