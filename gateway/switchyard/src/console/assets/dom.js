// Building DOM node by node, never by parsing markup: every value from the gateway (payloads,
// error texts, header values) goes in as text, never as markup.

/** h("a", { href: "#/x" }, "text", child...) */
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  e.append(...nodes(children));
  return e;
}

/** Children as nodes: arrays flattened, nothing for null, undefined or false. */
function nodes(children) {
  return children.flat(Infinity)
    .filter((c) => c !== undefined && c !== null && c !== false)
    .map((c) => (c instanceof Node ? c : String(c)));
}

/** Replaces what `el` shows with `children` (as `h` takes them). */
export function show(el, ...children) {
  el.replaceChildren(...nodes(children));
}

/** A table: `cols` is [[header, (row) => cell, "num"?]]. */
export function table(caption, cols, rows) {
  return h("table", {},
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, cols.map(([name, , cls]) => h("th", { scope: "col", class: cls }, name)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, cols.map(([, f, cls]) => h("td", { class: cls }, f(r)))))),
  );
}

/** A definition list of [term, value] pairs. */
export function meta(pairs) {
  return h("dl", { class: "meta" }, pairs.filter((p) => p[1] !== undefined && p[1] !== null)
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function bytes(n) {
  if (n === null || n === undefined) return "n/a";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function seconds(s) {
  if (!s) return "0 s";
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** A hex dump (offset, 16 bytes, ASCII) of base64 data, at most `cap` bytes. */
export function hexdump(b64, cap = 4096) {
  const raw = atob(b64);
  const lines = [];
  const n = Math.min(raw.length, cap);
  for (let off = 0; off < n; off += 16) {
    let hex = "", asc = "";
    for (let i = off; i < Math.min(off + 16, n); i++) {
      const c = raw.charCodeAt(i);
      hex += c.toString(16).padStart(2, "0") + " ";
      asc += c >= 32 && c < 127 ? raw[i] : ".";
    }
    lines.push(off.toString(16).padStart(8, "0") + "  " + hex.padEnd(48) + " " + asc);
  }
  if (raw.length > cap) lines.push(`... ${raw.length - cap} more bytes`);
  return lines.join("\n");
}

/** Line diff (longest common subsequence) of two texts, as a <pre>. */
export function diff(a, b) {
  const x = a.split("\n"), y = b.split("\n");
  const m = x.length, n = y.length;
  const L = Array.from({ length: m + 1 }, () => new Int32Array(n + 1));
  for (let i = m - 1; i >= 0; i--)
    for (let j = n - 1; j >= 0; j--)
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = h("pre", { class: "diff", "aria-label": "Differences: removed lines start with -, added lines with +" });
  let i = 0, j = 0;
  while (i < m || j < n) {
    if (i < m && j < n && x[i] === y[j]) {
      out.append(h("span", {}, "  " + x[i]));
      i++; j++;
    } else if (j < n && (i === m || L[i][j + 1] >= L[i + 1][j])) {
      out.append(h("ins", {}, "+ " + y[j]));
      j++;
    } else {
      out.append(h("del", {}, "- " + x[i]));
      i++;
    }
  }
  return out;
}
