/**
 * The contract's byte layouts (switchyard:plugin@0.3.0, documented in
 * `schemas/wit/plugin.wit`): the batch's per-event index, read in place
 * through a `DataView`, and the verdict buffer written into one
 * `Uint8Array`. Integers are little-endian.
 * @module
 */

/** One event's record in the batch's `events`. */
export const EVENT_RECORD = 56;
/** One header or attribute entry in the batch's `fields`. */
export const FIELD_RECORD = 16;

/** The flags of an `ok` verdict, in the order its fields follow. */
export const ROUTES = 1;
export const PRIORITY = 2;
export const PAYLOAD = 4;
export const HEADERS = 8;
export const CONTENT_TYPE = 16;
export const DELAY_MS = 32;
export const ORDERING_KEY = 64;
export const ATTRIBUTES = 128;

/** A `DataView` over exactly `b`'s bytes (it may be a view into a larger buffer). */
export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const encoder = new TextEncoder();

/**
 * A growable byte buffer: the verdicts of a batch are written into one, so
 * a batch costs a handful of allocations, not several per event.
 */
export class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #at = 0;

  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#at + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.#buf.subarray(0, this.#at));
    this.#buf = bigger;
    this.#view = new DataView(bigger.buffer);
  }

  get length(): number {
    return this.#at;
  }

  u8(x: number): void {
    this.#room(1);
    this.#buf[this.#at++] = x;
  }

  /** Overwrites the byte at `at` (a verdict's flags, once its fields are known). */
  setU8(at: number, x: number): void {
    this.#buf[at] = x;
  }

  u32(x: number): void {
    this.#room(4);
    this.#view.setUint32(this.#at, x, true);
    this.#at += 4;
  }

  /** Overwrites the u32 at `at` (the count, once the results are known). */
  setU32(at: number, x: number): void {
    this.#view.setUint32(at, x, true);
  }

  u64(x: bigint): void {
    this.#room(8);
    this.#view.setBigUint64(this.#at, x, true);
    this.#at += 8;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.#room(b.length);
    this.#buf.set(b, this.#at);
    this.#at += b.length;
  }

  /** A u32 byte length, then the UTF-8, encoded in place. */
  text(s: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.#room(4 + s.length * 3);
    const { written } = encoder.encodeInto(s, this.#buf.subarray(this.#at + 4));
    this.#view.setUint32(this.#at, written, true);
    this.#at += 4 + written;
  }

  pairs(p: Array<[string, string]>): void {
    this.u32(p.length);
    for (const [k, v] of p) {
      this.text(k);
      this.text(v);
    }
  }

  /** The bytes written (a view, not a copy). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#at);
  }
}

/** The fields a verdict sets, as the host reads them (unset fields absent). */
export interface VerdictFields {
  routes?: string[];
  priority?: number;
  payload?: Uint8Array;
  headers?: Array<[string, string]>;
  contentType?: string;
  delayMs?: bigint;
  orderingKey?: string;
  attributes?: Array<[string, string]>;
}

/** Appends one `ok` result: tag 0, the flags, then the fields they name. */
export function putVerdict(w: Writer, v: VerdictFields): void {
  w.u8(0);
  const at = w.length;
  w.u8(0);
  let flags = 0;
  if (v.routes !== undefined) {
    flags |= ROUTES;
    w.u32(v.routes.length);
    for (const r of v.routes) w.text(r);
  }
  if (v.priority !== undefined) {
    flags |= PRIORITY;
    w.u8(v.priority);
  }
  if (v.payload !== undefined) {
    flags |= PAYLOAD;
    w.bytes(v.payload);
  }
  if (v.headers !== undefined) {
    flags |= HEADERS;
    w.pairs(v.headers);
  }
  if (v.contentType !== undefined) {
    flags |= CONTENT_TYPE;
    w.text(v.contentType);
  }
  if (v.delayMs !== undefined) {
    flags |= DELAY_MS;
    w.u64(v.delayMs);
  }
  if (v.orderingKey !== undefined) {
    flags |= ORDERING_KEY;
    w.text(v.orderingKey);
  }
  if (v.attributes !== undefined) {
    flags |= ATTRIBUTES;
    w.pairs(v.attributes);
  }
  w.setU8(at, flags);
}

/** Appends one `err` result: tag 1 and why. */
export function putError(w: Writer, message: string): void {
  w.u8(1);
  w.text(message);
}
