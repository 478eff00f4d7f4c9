// Events: the search (newest first, paged on the server) and one event's
// page: payload, headers, attributes, and the attempts per destination.

import { api } from "./api.js";
import { h, show, meta, table, hexdump } from "./dom.js";

const STATES = ["pending", "in_flight", "delivered", "dead_lettered"];

function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d - off).toISOString().slice(0, 16);
}

function select(id, label, options, value) {
  return h("div", {},
    h("label", { for: id }, label),
    h("select", { id, name: id }, h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o, selected: o === value }, o))));
}

function input(id, label, type, value, extra) {
  return h("div", {}, h("label", { for: id }, label), h("input", { id, name: id, type, value: value || "", ...extra }));
}

export async function events(main, q) {
  const [topics, dests] = await Promise.all([api("/v1/topics"), api("/v1/destinations")]);
  const form = h("form", { class: "filters", role: "search", "aria-label": "Search events" },
    input("f-id", "Event id", "text", "", { size: 28, placeholder: "01J...", spellcheck: "false" }),
    select("f-topic", "Topic", topics.topics.map((t) => t.name), q.get("topic")),
    select("f-destination", "Destination", dests.destinations.map((d) => d.name), q.get("destination")),
    select("f-state", "State", STATES, q.get("state")),
    input("f-since", "From", "datetime-local", localInput(q.get("since"))),
    input("f-until", "Until", "datetime-local", localInput(q.get("until"))),
    h("div", {}, h("button", { type: "submit", class: "primary" }, "Search")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (id) => form.querySelector("#" + id).value.trim();
    if (v("f-id")) {
      location.hash = `#/events/${encodeURIComponent(v("f-id"))}`;
      return;
    }
    const p = new URLSearchParams();
    for (const k of ["topic", "destination", "state"]) if (v("f-" + k)) p.set(k, v("f-" + k));
    for (const k of ["since", "until"]) if (v("f-" + k)) p.set(k, new Date(v("f-" + k)).toISOString());
    location.hash = `#/events?${p}`;
  });
  const params = new URLSearchParams({ order: "desc", limit: "50" });
  for (const k of ["topic", "destination", "state", "since", "until", "cursor"]) if (q.get(k)) params.set(k, q.get(k));
  const page = await api(`/v1/events?${params}`);
  const rows = page.events;
  const next = new URLSearchParams(q);
  if (page.next_cursor) next.set("cursor", page.next_cursor);
  show(main, 
    h("h1", {}, "Events"),
    form,
    rows.length
      ? table("Events, newest first", [
        ["Event", (e) => h("a", { href: `#/events/${e.id}`, class: "mono" }, e.id)],
        ["Topic", (e) => e.topic],
        ["Received", (e) => e.received_at],
        ["Size", (e) => e.size, "num"],
        ["Deliveries", (e) => e.deliveries.length
          ? e.deliveries.map((d) => h("div", {}, `${d.destination}: `, h("span", { class: `state-${d.state}` }, d.state)))
          : (e.topic_dead_letter ? h("span", { class: "state-dead_lettered" }, "topic DLQ") : "not routed yet")],
      ], rows)
      : h("p", {}, "No events match."),
    h("div", { class: "actions" },
      q.get("cursor") ? h("a", { href: "#/events?" + (() => { const p = new URLSearchParams(q); p.delete("cursor"); return p; })() }, "Newest") : null,
      page.next_cursor ? h("a", { href: `#/events?${next}`, rel: "next" }, "Older events") : null),
  );
}

/** A payload as the gateway gave it: pretty JSON, text, or a hex dump. */
export function payloadView(e) {
  const note = e.payload_truncated ? h("p", { class: "muted" }, `Showing the first bytes of ${e.size}; the rest is cut off.`) : null;
  if (e.payload_base64 !== undefined) {
    return [h("p", { class: "muted" }, "Binary payload (hex):"), h("pre", { class: "payload", "aria-label": "Payload, hex dump" }, hexdump(e.payload_base64)), note];
  }
  if (e.payload === undefined) return [h("p", { class: "muted" }, "The event's payload is gone (retention).")];
  let text = e.payload, kind = "Text";
  if (!e.payload_truncated) {
    try {
      text = JSON.stringify(JSON.parse(e.payload), null, 2);
      kind = "JSON";
    } catch { /* not JSON: shown as text */ }
  }
  return [h("p", { class: "muted" }, `${kind} payload:`), h("pre", { class: "payload", "aria-label": `Payload, ${kind}` }, text), note];
}

/** Headers and attributes come as [name, value] pairs. */
function pairs(v) {
  return Array.isArray(v) ? v : Object.entries(v || {});
}

function kv(caption, obj) {
  const rows = pairs(obj);
  if (!rows.length) return h("p", { class: "muted" }, "None.");
  return table(caption, [["Name", (r) => h("code", {}, r[0])], ["Value", (r) => h("code", {}, r[1])]], rows);
}

export async function eventPage(main, id) {
  const e = await api(`/v1/events/${encodeURIComponent(id)}?include=payload`);
  const schema = pairs(e.attributes).find(([k]) => k === "schema.id");
  const status = h("p", { role: "status" });
  const redeliver = h("button", {
    type: "button", class: "primary", onclick: async () => {
      redeliver.disabled = true;
      try {
        const r = await api(`/v1/events/${encodeURIComponent(e.id)}/redeliver`, { method: "POST", body: {} });
        status.textContent = r.requeued.length ? `Queued again for ${r.requeued.join(", ")}.` : "Nothing to redeliver.";
      } catch (err) {
        status.textContent = `Redelivery failed: ${err.message}`;
      } finally {
        redeliver.disabled = false;
      }
    },
  }, "Redeliver");
  show(main, 
    h("h1", {}, "Event ", h("span", { class: "mono" }, e.id)),
    meta([
      ["Topic", e.topic],
      ["Received", e.received_at],
      ["Content type", e.content_type],
      ["Size", `${e.size} bytes`],
      ["Schema id", schema ? schema[1] : "none"],
      ["Topic DLQ", e.topic_dead_letter ? `${e.topic_dead_letter.error} (${e.topic_dead_letter.dead_lettered_at})` : undefined],
    ]),
    h("div", { class: "actions" }, redeliver, status),
    h("h2", {}, "Payload"), payloadView(e),
    h("h2", {}, "Headers"), kv("Headers", e.headers),
    h("h2", {}, "Attributes"), kv("Attributes", e.attributes),
    h("h2", {}, "Plugin verdicts"),
    e.plugins && e.plugins.length ? table("Plugin verdicts", [
      ["Plugin", (v) => h("a", { href: "#/plugins" }, v.plugin)],
      ["Verdict", (v) => h("span", { class: `verdict-${v.verdict}` }, v.verdict)],
      ["Destinations", (v) => (v.routes || []).join(", ") || (v.verdict === "drop" ? "none" : "")],
      ["Priority", (v) => (v.priority === undefined ? "" : String(v.priority)), "num"],
      ["µs / event", (v) => v.duration_us, "num"],
      ["Error", (v) => v.error || ""],
    ], e.plugins) : h("p", { class: "muted" }, "No plugin ran on this event."),
    h("h2", {}, "Deliveries"),
    e.deliveries.length ? e.deliveries.map((d) => h("section", { "aria-label": `Delivery to ${d.destination}` },
      h("h3", {}, h("a", { href: `#/destinations/${encodeURIComponent(d.destination)}` }, d.destination), " ",
        h("span", { class: `state-${d.state}` }, d.state)),
      h("p", { class: "muted" }, `${d.attempt_count} attempt(s), updated ${d.updated_at}${d.last_error ? `, last error: ${d.last_error}` : ""}`),
      d.next_attempt_at ? h("p", { class: "next-attempt" }, `Next attempt due ${d.next_attempt_at}.`) : null,
      d.attempts && d.attempts.length
        ? h("ol", { class: "timeline", "aria-label": `Attempts at ${d.destination}` }, d.attempts.map((a) => h("li", {},
          h("strong", {}, `#${a.attempt} `), a.at, " · ",
          a.status ? `HTTP ${a.status}` : (a.error || "no answer"),
          a.latency_ms !== undefined && a.latency_ms !== null ? ` · ${a.latency_ms} ms` : "",
          a.delay_before_ms ? ` · waited ${a.delay_before_ms} ms before` : "",
          a.error && a.status ? ` · ${a.error}` : "",
          a.response_excerpt ? h("pre", {}, a.response_excerpt) : null)))
        : h("p", { class: "muted" }, "No attempts yet."))) : h("p", { class: "muted" }, "Not routed to any destination yet."),
  );
}
