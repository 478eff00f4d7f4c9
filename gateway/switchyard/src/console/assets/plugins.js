// Plugins: what GET /v1/plugins reports for each loaded plugin.

import { api } from "./api.js";
import { h, show, table } from "./dom.js";
import { every } from "./app.js";

export async function plugins(main) {
  const draw = async () => {
    const { plugins } = await api("/v1/plugins");
    const body = plugins.length
      ? table("Plugins", [
        ["Plugin", (p) => h("span", { title: p.path, "data-plugin": p.name }, p.name)],
        ["Version (hash)", (p) => h("code", { title: p.version }, String(p.version).slice(0, 12))],
        ["Language", (p) => p.language],
        ["Loaded", (p) => p.loaded_at],
        ["Invocations", (p) => p.invocations, "num"],
        ["µs / event", (p) => Number(p.avg_us_per_event).toFixed(1), "num"],
        ["Errors", (p) => p.errors, "num"],
        ["Traps", (p) => p.traps, "num"],
        ["Timeouts", (p) => p.timeouts, "num"],
        ["Quarantined", (p) => p.quarantined ? `yes (${Math.ceil((p.quarantine_remaining_ms || 0) / 1000)} s left)` : "no"],
        ["Reloads", (p) => p.reloads, "num"],
        ["Refused reloads", (p) => p.refused_reloads, "num"],
        ["Last error", (p) => p.last_error || ""],
        ["Refused reload", (p) => p.reload_error || ""],
      ], plugins)
      : h("p", {}, "No plugins are configured.");
    show(main, h("h1", {}, "Plugins"), body);
  };
  await draw();
  every(5000, draw);
}
