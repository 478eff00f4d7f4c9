// Overview: rates, depth and lag per destination over the last minutes,
// from the gateway's own time series (GET /v1/stats/series), and the
// state of the store, the plugins and readiness.

import { api, ready } from "./api.js";
import { h, show, bytes } from "./dom.js";
import { lineChart } from "./chart.js";
import { every } from "./app.js";

/** As often as the gateway samples. */
const REFRESH_MS = 2000;

function card(label, value) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

export async function overview(main) {
  const draw = async () => {
    const [series, dests, topics, plugs, isReady] = await Promise.all([
      api("/v1/stats/series"),
      api("/v1/destinations"),
      api("/v1/topics"),
      api("/v1/plugins"),
      ready(),
    ]);
    const samples = series.samples;
    const last = samples[samples.length - 1];
    const times = samples.map((s) => new Date(s.at));
    const names = dests.destinations.map((d) => d.name);
    const per = (field) => names.map((n) => ({
      name: n,
      values: samples.map((s) => (s.destinations[n] ? s.destinations[n][field] : 0)),
    }));
    const dlq = dests.destinations.reduce((a, d) => a + d.dlq_depth, 0)
      + topics.topics.reduce((a, t) => a + t.dlq_depth, 0);
    const quarantined = plugs.plugins.filter((p) => p.quarantined).length;
    show(main, 
      h("h1", {}, "Overview"),
      h("div", { class: "cards" },
        card("Ready", isReady ? "yes" : "no"),
        card("Ingest", `${last ? last.ingest_per_second.toFixed(1) : "0"} /s`),
        card("Queued", dests.destinations.reduce((a, d) => a + d.queue_depth, 0)),
        card("Dead letters", dlq),
        card("Store on disk", bytes(last ? last.store_disk_bytes : null)),
        card("Free disk", bytes(last ? last.free_disk_bytes : null)),
        card("Plugins", `${plugs.plugins.length} loaded, ${quarantined} quarantined`),
      ),
      h("p", { class: "muted" }, `Sampled every ${series.interval_seconds} s over the last ${Math.round(series.window_seconds / 60)} minutes; ${samples.length} samples so far.`),
      h("div", { class: "charts" },
        lineChart("Ingest (events/s)", times, [{ name: "accepted", values: samples.map((s) => s.ingest_per_second) }]),
        lineChart("Delivered (events/s)", times, per("delivered_per_second")),
        lineChart("Failed attempts (/s)", times, per("failed_per_second")),
        lineChart("Dead-lettered (/s)", times, per("dead_lettered_per_second")),
        lineChart("Queue depth", times, per("queue_depth")),
        lineChart("Lag: oldest pending (s)", times, per("lag_seconds")),
      ),
    );
  };
  await draw();
  every(REFRESH_MS, draw);
}
