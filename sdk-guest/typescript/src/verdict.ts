/**
 * What a plugin decides for one event: a builder whose unset fields keep
 * their value, so plugins compose in a chain.
 * @module
 */

import type { Event } from "./event.js";
import type { VerdictFields } from "./wire.js";

const encoder = new TextEncoder();

type Pairs = Array<[string, string]>;

interface Fields {
  routes?: string[];
  priority?: number;
  payload?: Uint8Array;
  headers?: Pairs;
  /**
   * `header(name, value)` calls, applied to the event's own headers (or to
   * `headers(...)`) when the verdict is handed back: the builder has no
   * event to copy them from when it is made.
   */
  headerSets: Array<[string, string | null]>;
  contentType?: string;
  delayMs?: number;
  orderingKey?: string;
  attributes?: Pairs;
}

/**
 * A decision for one event. Start from `Verdict.keep()`, `Verdict.route()`
 * or `Verdict.drop()`, then chain: `Verdict.route("billing").priority(7)`.
 * Each builder method returns a new verdict; the one it was called on is
 * unchanged.
 */
export class Verdict {
  readonly #f: Fields;

  private constructor(f: Fields) {
    this.#f = f;
  }

  #with(changes: Partial<Fields>): Verdict {
    return new Verdict({ ...this.#f, ...changes });
  }

  /** Changes nothing: the event goes on as it came. */
  static keep(): Verdict {
    return new Verdict({ headerSets: [] });
  }

  /** Sends the event to these destinations (replacing earlier routes). */
  static route(...destinations: Array<string | string[]>): Verdict {
    return Verdict.keep().routes(...destinations);
  }

  /** Drops the event: no destination gets it. */
  static drop(): Verdict {
    return Verdict.keep().#with({ routes: [] });
  }

  /** Sets the routes: names, or arrays of names. */
  routes(...destinations: Array<string | string[]>): Verdict {
    const names = destinations.flat();
    for (const d of names) {
      if (typeof d !== "string") throw new TypeError(`a destination is a name (string), not ${String(d)}`);
    }
    return this.#with({ routes: names });
  }

  /** Sets the priority, 0-9, 9 most urgent. Anything else is a RangeError. */
  priority(priority: number): Verdict {
    if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
      throw new RangeError(`priority must be an integer 0-9, not ${String(priority)}`);
    }
    return this.#with({ priority });
  }

  /** Replaces the payload: bytes, or a string (sent as UTF-8). */
  payload(payload: Uint8Array | string): Verdict {
    if (typeof payload === "string") return this.#with({ payload: encoder.encode(payload) });
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError(`a payload is a Uint8Array or a string, not ${typeof payload}`);
    }
    return this.#with({ payload: payload.slice() });
  }

  /** Replaces the payload with `value` as JSON, content type `application/json`. */
  jsonPayload(value: unknown): Verdict {
    return this.payload(JSON.stringify(value)).contentType("application/json");
  }

  /** Replaces the payload's media type. */
  contentType(contentType: string): Verdict {
    return this.#with({ contentType: String(contentType) });
  }

  /** Replaces the whole header list: `[name, value]` pairs or an object. */
  headers(headers: Array<[string, string]> | Record<string, string>): Verdict {
    const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
    return this.#with({
      headers: pairs.map(([k, v]) => [String(k).toLowerCase(), String(v)]),
      headerSets: [],
    });
  }

  /**
   * Sets one header on a copy of the event's headers (or on the list given
   * to `headers`): replaces every header of that name, or adds it.
   * `value = null` removes it.
   */
  header(name: string, value: string | null): Verdict {
    const set: [string, string | null] = [String(name).toLowerCase(), value === null ? null : String(value)];
    return this.#with({ headerSets: [...this.#f.headerSets, set] });
  }

  /** Holds the first delivery back this many milliseconds. */
  delay(ms: number): Verdict {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a delay is milliseconds >= 0, not ${String(ms)}`);
    return this.#with({ delayMs: Math.round(ms) });
  }

  /** Deliveries with the same key stay in order where a destination asks for FIFO. */
  orderingKey(key: string): Verdict {
    return this.#with({ orderingKey: String(key) });
  }

  /** Sets a note for the plugins after this one. */
  attribute(key: string, value: string): Verdict {
    const attrs = (this.#f.attributes ?? []).filter(([k]) => k !== key);
    attrs.push([String(key), String(value)]);
    return this.#with({ attributes: attrs });
  }

  // What the verdict says, for tests and the SDK's loop.

  getRoutes(): string[] | undefined {
    return this.#f.routes && [...this.#f.routes];
  }

  getPriority(): number | undefined {
    return this.#f.priority;
  }

  getPayload(): Uint8Array | undefined {
    return this.#f.payload;
  }

  getContentType(): string | undefined {
    return this.#f.contentType;
  }

  /**
   * The header list the verdict sets. With `header(...)` calls and no
   * `headers(...)`, they apply to `event`'s headers.
   */
  getHeaders(event?: Event): Pairs | undefined {
    const { headers, headerSets } = this.#f;
    if (headerSets.length === 0) return headers && [...headers];
    let out: Pairs = [...(headers ?? event?.headers() ?? [])];
    for (const [name, value] of headerSets) {
      out = out.filter(([k]) => k !== name);
      if (value !== null) out.push([name, value]);
    }
    return out;
  }

  getDelayMs(): number | undefined {
    return this.#f.delayMs;
  }

  getOrderingKey(): string | undefined {
    return this.#f.orderingKey;
  }

  getAttributes(): Pairs | undefined {
    return this.#f.attributes && [...this.#f.attributes];
  }

  /** What the contract carries: only the fields this verdict sets. */
  toWit(event?: Event): VerdictFields {
    const f = this.#f;
    const out: VerdictFields = {};
    if (f.routes !== undefined) out.routes = f.routes;
    if (f.priority !== undefined) out.priority = f.priority;
    if (f.payload !== undefined) out.payload = f.payload;
    const headers = this.getHeaders(event);
    if (headers !== undefined) out.headers = headers;
    if (f.contentType !== undefined) out.contentType = f.contentType;
    if (f.delayMs !== undefined) out.delayMs = BigInt(f.delayMs);
    if (f.orderingKey !== undefined) out.orderingKey = f.orderingKey;
    if (f.attributes !== undefined) out.attributes = f.attributes;
    return out;
  }
}
