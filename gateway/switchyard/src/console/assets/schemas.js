// Schemas: the registry's subjects, their versions and compatibility
// level, and a line diff of two versions (read through /registry, which
// answers reads without a token).

import { api, ApiError } from "./api.js";
import { h, show, table, diff } from "./dom.js";

export async function schemas(main) {
  const subjects = await api("/registry/subjects");
  show(main, 
    h("h1", {}, "Schemas"),
    subjects.length
      ? h("ul", {}, subjects.map((s) => h("li", {}, h("a", { href: `#/schemas/${encodeURIComponent(s)}` }, s))))
      : h("p", {}, "The registry has no subjects yet."),
  );
}

/** A schema's text, pretty-printed when it is JSON (Avro and JSON Schema are). */
function pretty(schema) {
  try {
    return JSON.stringify(JSON.parse(schema), null, 2);
  } catch {
    return schema;
  }
}

async function level(subject) {
  try {
    const c = await api(`/registry/config/${encodeURIComponent(subject)}?defaultToGlobal=true`);
    return c.compatibilityLevel || c.compatibility;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return (await api("/registry/config")).compatibilityLevel;
    throw e;
  }
}

export async function subjectPage(main, subject, q) {
  const enc = encodeURIComponent(subject);
  const [versions, compat] = await Promise.all([api(`/registry/subjects/${enc}/versions`), level(subject)]);
  const details = await Promise.all(versions.map((v) => api(`/registry/subjects/${enc}/versions/${v}`)));
  const byVersion = new Map(details.map((d) => [String(d.version), d]));
  const last = versions[versions.length - 1];
  const from = q.get("from") || String(versions.length > 1 ? versions[versions.length - 2] : last);
  const to = q.get("to") || String(last);
  const pick = (id, label, value) => h("div", {}, h("label", { for: id }, label),
    h("select", { id }, versions.map((v) => h("option", { value: v, selected: String(v) === value }, `version ${v}`))));
  const form = h("form", { class: "filters", "aria-label": "Compare versions" },
    pick("diff-from", "From", from), pick("diff-to", "To", to),
    h("div", {}, h("button", { type: "submit" }, "Compare")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ from: form.querySelector("#diff-from").value, to: form.querySelector("#diff-to").value });
    location.hash = `#/schemas/${enc}?${p}`;
  });
  const a = byVersion.get(from), b = byVersion.get(to);
  show(main, 
    h("h1", {}, `Subject ${subject}`),
    h("p", {}, "Compatibility level: ", h("strong", {}, compat || "unknown")),
    table("Versions", [
      ["Version", (d) => d.version, "num"],
      ["Id", (d) => d.id, "num"],
      ["Type", (d) => d.schemaType || "AVRO"],
    ], details),
    h("h2", {}, "Diff"),
    form,
    a && b ? diff(pretty(a.schema), pretty(b.schema)) : h("p", {}, "Pick two versions."),
    h("h2", {}, `Version ${to}`),
    b ? h("pre", {}, pretty(b.schema)) : null,
  );
}
