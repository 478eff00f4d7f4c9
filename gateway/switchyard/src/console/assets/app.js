// The console's shell: hash routes to pages, the sign-in, the confirmation
// dialog, and the refresh timer of the page on screen.

import { api, ApiError, onUnauthorized, setToken, token } from "./api.js";
import { h, show } from "./dom.js";
import { overview } from "./overview.js";
import { events, eventPage } from "./events.js";
import { destinations, destinationPage, dlqPage } from "./destinations.js";
import { plugins } from "./plugins.js";
import { schemas, subjectPage } from "./schemas.js";

const main = document.getElementById("main");
let timer = null;
let rendering = 0;

/** Re-runs `f` every `ms` while the page that asked stays on screen. */
export function every(ms, f) {
  const mine = rendering;
  timer = setInterval(() => {
    if (mine !== rendering) return;
    // Redrawing would take the focus from a keyboard user mid-way.
    if (main.contains(document.activeElement) && document.activeElement !== main) return;
    f().catch(showError);
  }, ms);
}

/** Routes: "#/events/ID?x=y" -> ["events", "ID"], URLSearchParams. */
function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, q] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return [parts, new URLSearchParams(q || "")];
}

function pageFor(parts) {
  const [top, a, b] = parts;
  switch (top) {
    case undefined:
    case "overview": return ["overview", overview];
    case "events": return ["events", a ? (el, q) => eventPage(el, a, q) : events];
    case "destinations": return ["destinations", a ? (el, q) => destinationPage(el, a, q) : destinations];
    case "dlq": return ["destinations", (el, q) => dlqPage(el, a, b, q)];
    case "plugins": return ["plugins", plugins];
    case "schemas": return ["schemas", a ? (el, q) => subjectPage(el, a, q) : schemas];
    default: return [null, (el) => show(el, h("h1", {}, "No such page"), h("p", {}, h("a", { href: "#/overview" }, "Go to the overview")))];
  }
}

function showError(e) {
  const el = h("p", { class: "state-dead_lettered", role: "alert" });
  if (e instanceof ApiError && e.status === 401) {
    el.append("This gateway needs an admin token. ", h("button", { type: "button", onclick: signIn }, "Sign in"));
  } else if (e instanceof ApiError && e.status === 403) {
    el.append(`Not allowed: ${e.message}. Sign in with an admin token. `, h("button", { type: "button", onclick: signIn }, "Sign in"));
  } else if (e instanceof ApiError) {
    el.append(`The gateway answered ${e.status}: ${e.message}`);
  } else {
    throw e;
  }
  main.prepend(el);
}

async function render() {
  clearInterval(timer);
  rendering++;
  const [parts, q] = route();
  const [name, page] = pageFor(parts);
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  show(main, h("p", { class: "muted" }, "Loading..."));
  try {
    await page(main, q);
  } catch (e) {
    show(main);
    showError(e);
  }
  document.title = `${(main.querySelector("h1") || {}).textContent || "Switchyard"} - Switchyard console`;
  main.focus({ preventScroll: true });
  main.dataset.loaded = String(rendering);
}

function authState() {
  const box = document.getElementById("auth-state");
  show(box, token()
    ? h("span", {}, "Signed in ", h("button", { type: "button", onclick: () => { setToken(null); authState(); render(); } }, "Sign out"))
    : h("button", { type: "button", onclick: signIn }, "Sign in"));
}

function signIn() {
  const d = document.getElementById("signin");
  if (!d.open) d.showModal();
  document.getElementById("signin-token").focus();
}

document.getElementById("signin-form").addEventListener("submit", () => {
  const input = document.getElementById("signin-token");
  setToken(input.value.trim());
  input.value = "";
  authState();
  render();
});

/** A modal yes/no: resolves true on Confirm. */
export function confirmDialog(title, text) {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  d.returnValue = "";
  d.showModal();
  document.getElementById("confirm-cancel").focus();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
  });
}

export { api };

onUnauthorized(() => authState());
window.addEventListener("hashchange", render);
authState();
render();
