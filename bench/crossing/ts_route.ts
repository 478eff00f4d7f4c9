// Timing probe around route-by-field (SDK), issue 18 item 6: logs, per
// batch, the time inside the contract's `handle` and inside the plugin's own
// per-event `handle`; `plugin test` gives the whole call. `run.sh` appends
// this to plugins/route-by-field-ts/src/route_by_field.ts without its
// `export const handler` line (imports and RouteByField come from there).
declare const performance: { now(): number };

let spent = 0;
class Timed extends RouteByField {
  override handle(event: Event): Verdict {
    const t = performance.now();
    try {
      return super.handle(event);
    } finally {
      spent += performance.now() - t;
    }
  }
}
const inner = exportPlugin(Timed);
export const handler = {
  init: inner.init,
  handle(batch: Parameters<typeof inner.handle>[0]) {
    spent = 0;
    const t0 = performance.now();
    const out = inner.handle(batch);
    const t1 = performance.now();
    log.info("timing", {
      n: String(batch.events.length / 56),
      inside_us: String(Math.round((t1 - t0) * 1000)),
      handler_us: String(Math.round(spent * 1000)),
    });
    return out;
  },
};
