// Destinations and queues: levels, pause/resume, and each DLQ with payload
// previews, a filter, and bulk replay and purge behind a confirmation.

import { api } from "./api.js";
import { h, show, meta, table, seconds } from "./dom.js";
import { every, confirmDialog } from "./app.js";

function pauseButton(d, after) {
  const verb = d.paused ? "Resume" : "Pause";
  return h("button", {
    type: "button",
    "aria-label": `${verb} ${d.name}`,
    "data-action": verb.toLowerCase(),
    onclick: async (ev) => {
      ev.target.disabled = true;
      await api(`/v1/destinations/${encodeURIComponent(d.name)}/${verb.toLowerCase()}`, { method: "POST", body: {} });
      await after();
    },
  }, verb);
}

// The non-empty priorities, most urgent first: "p9: 2, p0: 1".
function byPriority(d) {
  const bands = (d.depth_by_priority || [])
    .map((n, p) => [p, n]).filter(([, n]) => n > 0).reverse();
  return bands.length ? h("span", { class: "by-priority" }, bands.map(([p, n]) => `p${p}: ${n}`).join(", ")) : "none";
}

const COLS = [
  ["Kind", (d) => d.kind],
  ["State", (d) => (d.paused ? h("span", { class: "state-pending" }, "paused") : "running")],
  ["Depth", (d) => d.queue_depth, "num"],
  ["Depth by priority", byPriority],
  ["In flight", (d) => d.in_flight, "num"],
  ["Delayed", (d) => d.delayed, "num"],
  ["Oldest pending", (d) => seconds(d.oldest_pending_age_seconds), "num"],
  ["Blocked keys", (d) => (d.blocked_keys === undefined ? "n/a" : d.blocked_keys), "num"],
  ["DLQ", (d) => d.dlq_depth, "num"],
  ["Pull: receives / acks / nacks / expiries", (d) => (d.pull ? `${d.pull.receives} / ${d.pull.acks} / ${d.pull.nacks} / ${d.pull.lease_expiries}` : "n/a"), "num"],
];

export async function destinations(main) {
  const draw = async () => {
    const [{ destinations }, { topics }] = await Promise.all([api("/v1/destinations"), api("/v1/topics")]);
    show(main, 
      h("h1", {}, "Destinations and queues"),
      destinations.length ? table("Destinations", [
        ["Destination", (d) => h("a", { href: `#/destinations/${encodeURIComponent(d.name)}` }, d.name)],
        ...COLS,
        ["", (d) => pauseButton(d, draw)],
      ], destinations) : h("p", {}, "No destinations are configured."),
      h("h2", {}, "Topic dead-letter queues"),
      topics.length ? table("Topics", [
        ["Topic", (t) => t.name],
        ["Routes", (t) => (t.routes || []).join(", ")],
        ["DLQ", (t) => h("a", { href: `#/dlq/topic/${encodeURIComponent(t.name)}` }, String(t.dlq_depth)), "num"],
      ], topics) : h("p", {}, "No topics are configured."),
    );
  };
  await draw();
  every(3000, draw);
}

export async function destinationPage(main, name, q) {
  const d = await api(`/v1/destinations/${encodeURIComponent(name)}`);
  const dlq = h("section", { "aria-label": "Dead letters" });
  const redraw = () => destinationPage(main, name, q);
  show(main, 
    h("h1", {}, `Destination ${d.name}`),
    meta(COLS.map(([k, f]) => [k, f(d)])),
    h("div", { class: "actions" }, pauseButton(d, redraw)),
    dlq,
  );
  await dlqInto(dlq, "destination", name, q);
}

export async function dlqPage(main, kind, name, q) {
  const box = h("section", {});
  show(main, h("h1", {}, `Dead letters of ${kind} ${name}`), box);
  await dlqInto(box, kind, name, q);
}

function preview(e) {
  if (e.payload !== undefined) return h("code", {}, e.payload.length > 160 ? e.payload.slice(0, 160) + "…" : e.payload);
  if (e.payload_base64 !== undefined) return h("span", { class: "muted" }, `binary, ${e.size} bytes`);
  return h("span", { class: "muted" }, "payload gone");
}

/** A DLQ's newest page, with selection, filter and bulk actions. */
async function dlqInto(box, kind, name, q) {
  const base = `/v1/${kind === "topic" ? "topics" : "destinations"}/${encodeURIComponent(name)}/dlq`;
  const params = new URLSearchParams({ include: "payload", order: "desc", limit: "100", payload_limit: "512" });
  if (q.get("cursor")) params.set("cursor", q.get("cursor"));
  const page = await api(`${base}?${params}`);
  const entries = page.entries;
  const status = h("p", { role: "status", id: "dlq-status" });
  const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Progress" });
  const filter = h("input", { id: "dlq-filter", type: "search", placeholder: "id, error or payload text" });
  const boxes = new Map();
  const rows = entries.map((e) => {
    const cb = h("input", { type: "checkbox", id: `sel-${e.id}`, "aria-label": `Select ${e.id}` });
    boxes.set(e.id, cb);
    return h("tr", { "data-id": e.id, "data-text": `${e.id} ${e.error} ${e.payload || ""}`.toLowerCase() },
      h("td", {}, cb),
      h("td", {}, h("a", { href: `#/events/${e.id}`, class: "mono" }, e.id)),
      h("td", {}, e.dead_lettered_at),
      h("td", { class: "num" }, e.attempts),
      h("td", {}, e.error),
      h("td", {}, preview(e)));
  });
  filter.addEventListener("input", () => {
    const f = filter.value.toLowerCase();
    for (const r of rows) r.hidden = f !== "" && !r.dataset.text.includes(f);
  });
  const visibleSelected = () => rows.filter((r) => !r.hidden && boxes.get(r.dataset.id).checked).map((r) => r.dataset.id);
  const all = h("input", { type: "checkbox", id: "sel-all", "aria-label": "Select all shown" });
  all.addEventListener("change", () => {
    for (const r of rows) if (!r.hidden) boxes.get(r.dataset.id).checked = all.checked;
  });
  const run = async (verb, ids) => {
    const what = ids ? `${ids.length} selected dead letter(s)` : `all ${page.depth} dead letter(s)`;
    if (!(await confirmDialog(`${verb} dead letters`, `${verb} ${what} of ${kind} ${name}?`))) return;
    progress.hidden = false;
    progress.value = 0;
    let done = 0;
    try {
      if (!ids) {
        progress.removeAttribute("value");
        const r = verb === "Replay"
          ? await api(`${base}/replay`, { method: "POST", body: {} })
          : await api(base, { method: "DELETE" });
        done = verb === "Replay" ? r.replayed : r.purged;
      } else {
        progress.max = ids.length;
        for (let i = 0; i < ids.length; i += 50) {
          const chunk = ids.slice(i, i + 50);
          if (verb === "Replay") {
            done += (await api(`${base}/replay`, { method: "POST", body: { ids: chunk } })).replayed;
          } else {
            for (const id of chunk) {
              await api(`${base}/${id}`, { method: "DELETE" });
              done++;
            }
          }
          progress.value = Math.min(i + chunk.length, ids.length);
        }
      }
      status.textContent = `${verb === "Replay" ? "Replayed" : "Purged"} ${done}.`;
    } catch (e) {
      status.textContent = `${verb} stopped after ${done}: ${e.message}`;
      return;
    } finally {
      progress.hidden = true;
    }
    const reload = h("section", {});
    box.replaceWith(reload);
    await dlqInto(reload, kind, name, q);
    reload.querySelector("#dlq-status").textContent = status.textContent;
  };
  const selected = (verb) => () => {
    const ids = visibleSelected();
    if (!ids.length) {
      status.textContent = "Select dead letters first.";
      return;
    }
    run(verb, ids);
  };
  show(box, 
    h("h2", {}, `Dead letters (${page.depth})`),
    h("div", { class: "actions" },
      h("label", { for: "dlq-filter" }, "Filter this page"), filter,
      h("button", { type: "button", id: "replay-selected", onclick: selected("Replay") }, "Replay selected"),
      h("button", { type: "button", id: "purge-selected", class: "danger", onclick: selected("Purge") }, "Purge selected"),
      h("button", { type: "button", id: "replay-all", onclick: () => run("Replay", null), disabled: page.depth === 0 }, "Replay all"),
      h("button", { type: "button", id: "purge-all", class: "danger", onclick: () => run("Purge", null), disabled: page.depth === 0 }, "Purge all"),
      progress),
    status,
    entries.length ? h("table", {},
      h("caption", { class: "visually-hidden" }, "Dead letters, newest first"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, all), ["Event", "Dead-lettered", "Attempts", "Error", "Payload"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)) : h("p", {}, "The dead-letter queue is empty."),
    page.next_cursor ? h("a", { href: `#/${kind === "topic" ? `dlq/topic/${encodeURIComponent(name)}` : `destinations/${encodeURIComponent(name)}`}?cursor=${page.next_cursor}`, rel: "next" }, "Older dead letters") : null,
  );
}
