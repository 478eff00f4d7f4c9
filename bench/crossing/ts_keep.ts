declare const performance: { now(): number };
/** Timing probe, issue 18 item 6: the SDK loop with a handler that reads nothing and keeps. */
import { Plugin, Verdict, exportPlugin, log, Config } from "@switchyard/plugin-sdk";
class Keep extends Plugin {
  override init(_config: Config): void {}
  override handle(): Verdict {
    return Verdict.keep();
  }
}
const inner = exportPlugin(Keep);
export const handler = {
  init: inner.init,
  handle(batch: Parameters<typeof inner.handle>[0]) {
    const t0 = performance.now();
    const out = inner.handle(batch);
    const t1 = performance.now();
    log.info("timing", { n: String(batch.events.length / 56), inside_us: String(Math.round((t1 - t0) * 1000)) });
    return out;
  },
};
