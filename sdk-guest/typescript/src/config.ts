/**
 * A plugin's `config` table from the gateway's TOML: every value a string.
 * @module
 */

/**
 * A config the plugin cannot run with. Thrown from `init`, its message
 * refuses the plugin: the gateway does not start, a reload is refused.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Read-only access to the plugin's config, with errors that name the key. */
export class Config {
  readonly #values: Map<string, string>;

  constructor(values?: Iterable<readonly [string, string]> | Record<string, string>) {
    const pairs: Iterable<readonly [string, string]> =
      values === undefined
        ? []
        : Symbol.iterator in Object(values)
          ? (values as Iterable<readonly [string, string]>)
          : Object.entries(values as Record<string, string>);
    this.#values = new Map([...pairs].map(([k, v]) => [String(k), String(v)] as const));
  }

  /** The value of `key`, or `fallback` when it is not set. */
  get(key: string): string | undefined;
  get(key: string, fallback: string): string;
  get(key: string, fallback?: string): string | undefined {
    return this.#values.get(key) ?? fallback;
  }

  /** The value of `key`; a ConfigError naming it when it is not set. */
  require(key: string): string {
    const v = this.#values.get(key);
    if (v === undefined) throw new ConfigError(`config key '${key}' is required`);
    return v;
  }

  /** The value of `key` as an integer, or `fallback` when unset. */
  getInt(key: string, fallback?: number): number | undefined {
    const raw = this.#values.get(key);
    if (raw === undefined) return fallback;
    if (!/^\s*[-+]?\d+\s*$/.test(raw)) {
      throw new ConfigError(`config key '${key}': '${raw}' is not an integer`);
    }
    return Number.parseInt(raw, 10);
  }

  /** `true`/`false` (also `1`/`0`, `yes`/`no`), or `fallback` when unset. */
  getBool(key: string, fallback?: boolean): boolean | undefined {
    const raw = this.#values.get(key);
    if (raw === undefined) return fallback;
    const v = raw.trim().toLowerCase();
    if (v === "true" || v === "1" || v === "yes") return true;
    if (v === "false" || v === "0" || v === "no") return false;
    throw new ConfigError(`config key '${key}': '${raw}' is not true or false`);
  }

  /** The value of `key` split on `sep`, items trimmed, empty ones dropped. */
  list(key: string, sep = ","): string[] {
    return (this.#values.get(key) ?? "")
      .split(sep)
      .map((s) => s.trim())
      .filter((s) => s !== "");
  }

  /**
   * A ConfigError naming any key that is not in `known`: a typo fails the
   * start instead of being silently ignored.
   */
  denyUnknown(...known: string[]): void {
    const unknown = [...this.#values.keys()].filter((k) => !known.includes(k)).sort();
    if (unknown.length > 0) {
      const names = [...known].sort().join(", ") || "none";
      throw new ConfigError(`unknown config key '${unknown[0]}' (known keys: ${names})`);
    }
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  get size(): number {
    return this.#values.size;
  }

  /** Every key and value, sorted by key. */
  entries(): [string, string][] {
    return [...this.#values.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
