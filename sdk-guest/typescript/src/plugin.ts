/**
 * The SDK's loop: the contract's `init`/`handle` over a plugin class.
 *
 * `exportPlugin(MyPlugin)` makes the object componentize-js exports as the
 * contract's `handler` (the plugin module exports it as `handler`); natively,
 * `testing.ts` calls the same object, so native tests run this loop too.
 * @module
 */

import { Config, ConfigError } from "./config.js";
import { Event } from "./event.js";
import { Verdict } from "./verdict.js";
import type * as wit from "./wit/interfaces/switchyard-plugin-types.js";
import { EVENT_RECORD, Writer, putError, putVerdict, view } from "./wire.js";

/** One event's result, as `testing.run` reads it back from the verdict buffer. */
export type Result<T, E> = { tag: "ok"; val: T } | { tag: "err"; val: E };

/**
 * Base class of a plugin. Override `handle`, and `init` if the plugin has
 * config. One instance serves many batches.
 */
export abstract class Plugin {
  /**
   * Reads `config`. Throwing refuses the plugin with the error's message
   * (throw `ConfigError` for a bad key). The default accepts no config keys.
   */
  init(config: Config): void {
    config.denyUnknown();
  }

  /**
   * Decides one event (`undefined` means `Verdict.keep()`). Throwing fails
   * this event only, with the error's type and message.
   */
  abstract handle(event: Event): Verdict | undefined;
}

/** The contract's `handler` export. */
export interface Handler {
  init(config: Array<[string, string]>): void;
  /** One verdict buffer for the batch (see `wire.ts`). */
  handle(batch: wit.Batch): Uint8Array;
}

/**
 * Thrown from the contract's `init` to refuse the plugin. componentize-js
 * turns a thrown value into the `err` string from its `payload` (a plain
 * Error gives only its message, which would drop the type).
 */
export class Refused extends Error {
  override name = "Refused";
  readonly payload: string;

  constructor(message: string) {
    super(message);
    this.payload = message;
  }
}

/** An exception as an event's error: its type and message. */
export function describe(e: unknown): string {
  if (e instanceof ConfigError) return e.message;
  if (e instanceof Error) {
    const name = e.name || e.constructor?.name || "Error";
    return e.message ? `${name}: ${e.message}` : name;
  }
  return `thrown: ${String(e)}`;
}

/**
 * The object componentize-js exports as the contract's `handler`:
 * `export const handler = exportPlugin(MyPlugin);` in the plugin's module.
 */
export function exportPlugin(PluginClass: new () => Plugin): Handler {
  if (typeof PluginClass !== "function" || !(PluginClass.prototype instanceof Plugin)) {
    throw new TypeError(`exportPlugin() takes a Plugin subclass, not ${String(PluginClass)}`);
  }
  // One plugin per component instance, from `init` on: the gateway calls
  // `init` once per instance before any `handle`.
  let plugin: Plugin | undefined;
  return {
    init(config) {
      const p = new PluginClass();
      try {
        p.init(new Config(config));
      } catch (e) {
        throw new Refused(describe(e));
      }
      plugin = p;
    },
    handle(batch) {
      const p = plugin;
      const { data, events } = batch;
      const whole = Math.floor(events.length / EVENT_RECORD);
      const count = Math.ceil(events.length / EVENT_RECORD);
      const w = new Writer();
      w.u32(count);
      if (p === undefined) {
        for (let i = 0; i < count; i++) putError(w, "handle was called before init succeeded");
        return w.finish();
      }
      const index = view(events);
      const fields = view(batch.fields);
      for (let i = 0; i < whole; i++) {
        const event = new Event(data, index, fields, i);
        try {
          const verdict = p.handle(event) ?? Verdict.keep();
          if (!(verdict instanceof Verdict)) {
            throw new TypeError(`handle returned ${typeof verdict}, not a Verdict`);
          }
          putVerdict(w, verdict.toWit(event));
        } catch (e) {
          // One event's exception fails that event only.
          putError(w, describe(e));
        }
      }
      if (count > whole) putError(w, `the host sent a cut-off record for event ${whole}`);
      return w.finish();
    },
  };
}
