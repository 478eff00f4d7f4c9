/**
 * The event a plugin sees: a view into the batch that reads lazily.
 *
 * The gateway sends a batch as three byte arrays (contract 0.3.0, see
 * `schemas/wit/plugin.wit`): `data` holds every text and payload, `events`
 * a 56-byte record of ranges per event, `fields` a 16-byte entry per header
 * and attribute. An `Event` reads its record in place (a `DataView`, no
 * object per range) and decodes a text, the payload or the headers only when
 * the plugin asks, once: a plugin that routes on one JSON field never pays
 * for the headers it does not read.
 * @module
 */

import { EVENT_RECORD, FIELD_RECORD } from "./wire.js";

const decoder = new TextDecoder("utf-8");
const strict = new TextDecoder("utf-8", { fatal: true });
const NOT_JSON = Symbol("not JSON");

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One event, as the plugins before this one in the chain left it. */
export class Event {
  readonly #data: Uint8Array;
  readonly #index: DataView;
  readonly #fields: DataView;
  /** Where this event's record starts in `#index`. */
  readonly #at: number;
  #id?: string;
  #topic?: string;
  #contentType?: string;
  #payload?: Uint8Array;
  #headers?: Array<[string, string]>;
  #attributes?: Array<[string, string]>;
  #json?: Json | typeof NOT_JSON;

  /**
   * `data` is the batch's bytes, `index` and `fields` views of its `events`
   * and `fields`, `i` the event's place in the batch. The caller checks that
   * the record is whole (`exportPlugin` does).
   */
  constructor(data: Uint8Array, index: DataView, fields: DataView, i: number) {
    this.#data = data;
    this.#index = index;
    this.#fields = fields;
    this.#at = i * EVENT_RECORD;
  }

  /** Word `w` (a u32) of the record after its u64. */
  #word(w: number): number {
    return this.#index.getUint32(this.#at + 8 + 4 * w, true);
  }

  #range(w: number, what: string): Uint8Array {
    const offset = this.#word(w);
    const end = offset + this.#word(w + 1);
    // `subarray` never fails: a range past the end would read short.
    if (end > this.#data.length) throw new RangeError(`the host sent a malformed ${what} range`);
    return this.#data.subarray(offset, end);
  }

  #text(w: number, what: string): string {
    return decoder.decode(this.#range(w, what));
  }

  #pairs(w: number, what: string): Array<[string, string]> {
    const first = this.#word(w);
    const count = this.#word(w + 1);
    const f = this.#fields;
    if ((first + count) * FIELD_RECORD > f.byteLength) throw new RangeError(`the host sent a malformed ${what} range`);
    const data = this.#data;
    const out: Array<[string, string]> = [];
    for (let at = first * FIELD_RECORD; at < (first + count) * FIELD_RECORD; at += FIELD_RECORD) {
      const no = f.getUint32(at, true), nl = f.getUint32(at + 4, true);
      const vo = f.getUint32(at + 8, true), vl = f.getUint32(at + 12, true);
      // A pair out of range is skipped, as in the Rust SDK.
      if (no + nl > data.length || vo + vl > data.length) continue;
      out.push([decoder.decode(data.subarray(no, no + nl)), decoder.decode(data.subarray(vo, vo + vl))]);
    }
    return out;
  }

  /** The event's id (a ULID), stable across retries and replays. */
  get id(): string {
    return (this.#id ??= this.#text(0, "id"));
  }

  /** The topic the event was published to. */
  get topic(): string {
    return (this.#topic ??= this.#text(2, "topic"));
  }

  /** When the gateway accepted the event, in ms since the Unix epoch. */
  get receivedAtMs(): number {
    return Number(this.#index.getBigUint64(this.#at, true));
  }

  /** The payload's media type, e.g. `application/json`. */
  get contentType(): string {
    return (this.#contentType ??= this.#text(4, "content-type"));
  }

  /** The payload's bytes: a view into the batch, not a copy (do not modify it). */
  get payload(): Uint8Array {
    return (this.#payload ??= this.#range(6, "payload"));
  }

  /** The payload as UTF-8 text, or `undefined` if it is not UTF-8. */
  text(): string | undefined {
    try {
      return strict.decode(this.payload);
    } catch {
      return undefined;
    }
  }

  /** Every sender header as `[name, value]` pairs, names in lower case. */
  headers(): Array<[string, string]> {
    return [...(this.#headers ??= this.#pairs(8, "headers"))];
  }

  /** The first header called `name` (any case), or `undefined`. */
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    return (this.#headers ??= this.#pairs(8, "headers")).find(([k]) => k === lower)?.[1];
  }

  /** Every attribute set by earlier plugins, as `[key, value]` pairs. */
  attributes(): Array<[string, string]> {
    return [...(this.#attributes ??= this.#pairs(10, "attributes"))];
  }

  /** The attribute `key` set by an earlier plugin, or `undefined`. */
  attribute(key: string): string | undefined {
    return (this.#attributes ??= this.#pairs(10, "attributes")).find(([k]) => k === key)?.[1];
  }

  /** The payload parsed as JSON (once), or `undefined` if it is not JSON. */
  json(): Json | undefined {
    if (this.#json === undefined) {
      try {
        this.#json = JSON.parse(decoder.decode(this.payload)) as Json;
      } catch {
        this.#json = NOT_JSON;
      }
    }
    return this.#json === NOT_JSON ? undefined : this.#json;
  }

  /**
   * The value at a JSON pointer (RFC 6901, e.g. `/order/items/0`), or
   * `undefined` when the payload is not JSON or has nothing there.
   */
  jsonAt(pointer: string): Json | undefined {
    return jsonPointer(this.json(), pointer);
  }

  toString(): string {
    return `Event(id=${this.id}, topic=${this.topic}, contentType=${this.contentType})`;
  }
}

/**
 * Looks `pointer` (RFC 6901) up in a parsed JSON `document`: `""` is the
 * whole document, `~1` in a token stands for `/` and `~0` for `~`, arrays
 * take decimal indices. Anything missing, or a pointer that does not start
 * with `/`, gives `undefined`.
 */
export function jsonPointer(document: Json | undefined, pointer: string): Json | undefined {
  if (pointer === "") return document;
  if (!pointer.startsWith("/")) return undefined;
  let node: Json | undefined = document;
  for (const raw of pointer.slice(1).split("/")) {
    const token = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
      node = node[Number(token)];
    } else if (node !== null && typeof node === "object") {
      node = Object.hasOwn(node, token) ? node[token] : undefined;
    } else {
      return undefined;
    }
    if (node === undefined) return undefined;
  }
  return node;
}
