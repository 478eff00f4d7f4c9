/**
 * The event a plugin sees: a view into the batch that reads lazily.
 *
 * The gateway sends a batch as one byte array (`data`), one list of
 * name/value ranges (`fields`) and per event only ranges into those two
 * (see `schemas/wit/plugin.wit`). An `Event` decodes a text, the payload or
 * the headers only when the plugin asks, once: a plugin that routes on one
 * JSON field never pays for the headers it does not read.
 * @module
 */

import type * as wit from "./wit/interfaces/switchyard-plugin-types.js";

const decoder = new TextDecoder("utf-8");
const strict = new TextDecoder("utf-8", { fatal: true });
const NOT_JSON = Symbol("not JSON");

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One event, as the plugins before this one in the chain left it. */
export class Event {
  readonly #data: Uint8Array;
  readonly #fields: wit.Field[];
  readonly #raw: wit.Event;
  #id?: string;
  #topic?: string;
  #contentType?: string;
  #payload?: Uint8Array;
  #headers?: Array<[string, string]>;
  #attributes?: Array<[string, string]>;
  #json?: Json | typeof NOT_JSON;

  /** `data` and `fields` are the batch's; `raw` is this event's record of ranges. */
  constructor(data: Uint8Array, fields: wit.Field[], raw: wit.Event) {
    this.#data = data;
    this.#fields = fields;
    this.#raw = raw;
  }

  #text(span: wit.Span): string {
    return decoder.decode(this.#data.subarray(span.offset, span.offset + span.len));
  }

  #pairs(span: wit.Span): Array<[string, string]> {
    return this.#fields
      .slice(span.offset, span.offset + span.len)
      .map((f) => [this.#text(f.name), this.#text(f.value)]);
  }

  /** The event's id (a ULID), stable across retries and replays. */
  get id(): string {
    return (this.#id ??= this.#text(this.#raw.id));
  }

  /** The topic the event was published to. */
  get topic(): string {
    return (this.#topic ??= this.#text(this.#raw.topic));
  }

  /** When the gateway accepted the event, in ms since the Unix epoch. */
  get receivedAtMs(): number {
    return Number(this.#raw.receivedAtMs);
  }

  /** The payload's media type, e.g. `application/json`. */
  get contentType(): string {
    return (this.#contentType ??= this.#text(this.#raw.contentType));
  }

  /** The payload's bytes: a view into the batch, not a copy (do not modify it). */
  get payload(): Uint8Array {
    const s = this.#raw.payload;
    return (this.#payload ??= this.#data.subarray(s.offset, s.offset + s.len));
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
    return [...(this.#headers ??= this.#pairs(this.#raw.headers))];
  }

  /** The first header called `name` (any case), or `undefined`. */
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    return (this.#headers ??= this.#pairs(this.#raw.headers)).find(([k]) => k === lower)?.[1];
  }

  /** Every attribute set by earlier plugins, as `[key, value]` pairs. */
  attributes(): Array<[string, string]> {
    return [...(this.#attributes ??= this.#pairs(this.#raw.attributes))];
  }

  /** The attribute `key` set by an earlier plugin, or `undefined`. */
  attribute(key: string): string | undefined {
    return (this.#attributes ??= this.#pairs(this.#raw.attributes)).find(([k]) => k === key)?.[1];
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
