declare const performance: { now(): number };
/** Timing probe, issue 18 item 6: no SDK loop; a prebuilt keep verdict per event, touching nothing: what is left is the crossing. */
import { log } from "@switchyard/plugin-sdk";
const KEEP = {
  routes: undefined, priority: undefined, payload: undefined, headers: undefined,
  contentType: undefined, delayMs: undefined, orderingKey: undefined, attributes: undefined,
};
export const handler = {
  init(_config: Array<[string, string]>) {},
  handle(batch: { events: unknown[] }) {
    const t0 = performance.now();
    const out = batch.events.map(() => ({ tag: "ok", val: KEEP }));
    const t1 = performance.now();
    log.info("timing", { n: String(batch.events.length), inside_us: String(Math.round((t1 - t0) * 1000)) });
    return out;
  },
};
