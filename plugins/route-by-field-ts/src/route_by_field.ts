/**
 * `route-by-field`, in TypeScript: routes each event by the value at a JSON
 * pointer. The same rule and config as the Rust `route-by-field` plugin:
 * - `pointer` (required): where to look, e.g. `/type`.
 * - `routes` (required): `value=dest[|dest...]` pairs separated by commas.
 * - `default` (optional): destinations (`|`-separated) for any other value
 *   or a missing field; without it such events keep their current routes.
 * - `priorities` (optional): `value=0..9` pairs, e.g. `refund=8`.
 *
 * Build: node sdk-guest/typescript/build.mjs plugins/route-by-field-ts/src/route_by_field.ts -o route_by_field_ts.wasm
 * @module
 */

import { Config, ConfigError, Event, Plugin, Verdict, exportPlugin, log } from "@switchyard/plugin-sdk";

function destinations(raw: string): string[] {
  return raw
    .split("|")
    .map((d) => d.trim())
    .filter((d) => d !== "");
}

function pairs(raw: string, key: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const pair of raw.split(",").map((p) => p.trim())) {
    if (pair === "") continue;
    const at = pair.indexOf("=");
    if (at < 0) throw new ConfigError(`config key '${key}': '${pair}' is not value=...`);
    out.push([pair.slice(0, at).trim(), pair.slice(at + 1).trim()]);
  }
  return out;
}

export class RouteByField extends Plugin {
  pointer = "";
  // Maps, built once in `init`, so `handle` is one pointer lookup and one
  // map lookup per event.
  routes = new Map<string, string[]>();
  priorities = new Map<string, number>();
  fallback: string[] | undefined;

  override init(config: Config): void {
    config.denyUnknown("pointer", "routes", "default", "priorities");
    this.pointer = config.require("pointer");
    if (this.pointer !== "" && !this.pointer.startsWith("/")) {
      throw new ConfigError(`config key 'pointer': '${this.pointer}' must start with '/'`);
    }
    for (const [k, v] of pairs(config.require("routes"), "routes")) this.routes.set(k, destinations(v));
    for (const [k, v] of pairs(config.get("priorities", ""), "priorities")) {
      if (!/^\d$/.test(v)) throw new ConfigError(`config key 'priorities': '${v}' is not 0-9`);
      this.priorities.set(k, Number(v));
    }
    const fallback = config.get("default");
    this.fallback = fallback === undefined ? undefined : destinations(fallback);
    log.info("Routing by field.", { pointer: this.pointer, values: this.routes.size });
  }

  override handle(event: Event): Verdict {
    const found = event.jsonAt(this.pointer);
    const value =
      typeof found === "string" ? found : typeof found === "number" || typeof found === "boolean" ? String(found) : undefined;
    const dest = (value !== undefined ? this.routes.get(value) : undefined) ?? this.fallback;
    let verdict = dest !== undefined ? Verdict.route(dest) : Verdict.keep();
    const priority = value !== undefined ? this.priorities.get(value) : undefined;
    if (priority !== undefined) verdict = verdict.priority(priority);
    return verdict;
  }
}

export const handler = exportPlugin(RouteByField);
