/**
 * Logging into the gateway's log, tagged with the plugin's name and
 * rate-limited by the gateway: `log.info("Routed.", { destination: "billing" })`.
 *
 * Inside the component the lines go through the contract's `log` import
 * (the build's entry module installs it with `setSink`); natively (tests)
 * they are kept in `records` and written to stderr.
 * @module
 */

import type { Level } from "./wit/interfaces/switchyard-plugin-log.js";

export type { Level };

/** Fields of a log line: values are turned into strings. */
export type Fields = Record<string, unknown>;

type Sink = (level: Level, message: string, fields: Array<[string, string]>) => void;

/** Natively, every line logged. */
export const records: Array<{ level: Level; message: string; fields: Record<string, string> }> = [];

const LEVELS: readonly Level[] = ["trace", "debug", "info", "warn", "error"];
let sink: Sink | undefined;

/** Installs the contract's `log` import; the build's entry module calls it. */
export function setSink(s: Sink): void {
  sink = s;
}

/** Writes one line at `level`. */
export function log(level: Level, message: string, fields: Fields = {}): void {
  if (!LEVELS.includes(level)) {
    throw new RangeError(`log level must be one of ${LEVELS.join(", ")}, not '${String(level)}'`);
  }
  const pairs = Object.entries(fields).map(([k, v]) => [k, String(v)] as [string, string]);
  if (sink !== undefined) {
    sink(level, String(message), pairs);
    return;
  }
  records.push({ level, message: String(message), fields: Object.fromEntries(pairs) });
  const text = pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
  // `console.error`, not `process.stderr`: a component has no `process`,
  // and a line logged before the sink is installed must not throw.
  console.error(`[${level}] ${message}${text ? " " + text : ""}`);
}

export const trace = (message: string, fields?: Fields) => log("trace", message, fields);
export const debug = (message: string, fields?: Fields) => log("debug", message, fields);
export const info = (message: string, fields?: Fields) => log("info", message, fields);
export const warn = (message: string, fields?: Fields) => log("warn", message, fields);
export const error = (message: string, fields?: Fields) => log("error", message, fields);
