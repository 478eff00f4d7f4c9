// Native tests of the SDK: compiled by `tsc`, run by `node --test`, no Wasm.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Config, ConfigError, Event, Plugin, Verdict, exportPlugin, jsonPointer, log } from "../index.js";
import { encodeBatch, event, run } from "../testing.js";

class ByType extends Plugin {
  override handle(e: Event): Verdict | undefined {
    const t = e.jsonAt("/type");
    if (t === "boom") throw new RangeError("no boom here");
    if (t === "refund") return Verdict.route("refunds").priority(7);
    if (t === "none") return undefined;
    return Verdict.keep();
  }
}

test("each event gets its own result and an exception fails only its event", () => {
  const [refund, boom, none, other] = run(ByType, {}, [
    event({ type: "refund" }),
    event({ type: "boom" }),
    event({ type: "none" }),
    event({ type: "x" }),
  ]);
  assert.deepEqual(refund, { tag: "ok", val: { routes: ["refunds"], priority: 7 } });
  assert.deepEqual(boom, { tag: "err", val: "RangeError: no boom here" });
  assert.deepEqual(none, { tag: "ok", val: {} });
  assert.deepEqual(other, { tag: "ok", val: {} });
});

test("the default init refuses config keys and init errors name the key", () => {
  assert.throws(() => run(ByType, { typo: "1" }, []), (e: { payload: string }) => {
    assert.equal(e.payload, "unknown config key 'typo' (known keys: none)");
    return true;
  });
  class Needs extends Plugin {
    override init(c: Config) {
      c.require("dest");
    }
    override handle() {
      return Verdict.keep();
    }
  }
  assert.throws(() => run(Needs, {}, []), { payload: "config key 'dest' is required" });
  class Crashes extends Plugin {
    override init() {
      throw new TypeError("bad");
    }
    override handle() {
      return Verdict.keep();
    }
  }
  assert.throws(() => run(Crashes, {}, []), { payload: "TypeError: bad" });
});

test("handle before a successful init fails every event", () => {
  const handler = exportPlugin(ByType);
  const out = handler.handle(encodeBatch([event({}), event({})]));
  assert.deepEqual(out.map((r) => r.tag), ["err", "err"]);
});

test("the event view reads texts, headers, attributes and json lazily", () => {
  const batch = encodeBatch([
    event({ a: { b: [1, 2] } }, { id: "01ABC", topic: "orders", headers: { "X-Sig": "s" }, attributes: { tier: "gold" }, receivedAtMs: 42 }),
    event(undefined, { text: "not json" }),
    event(undefined, { raw: new Uint8Array([0xff, 0xfe]) }),
  ]);
  const [a, b, c] = batch.events.map((raw) => new Event(batch.data, batch.fields, raw));
  assert.equal(a!.id, "01ABC");
  assert.equal(a!.topic, "orders");
  assert.equal(a!.receivedAtMs, 42);
  assert.equal(a!.contentType, "application/json");
  assert.equal(a!.header("x-sig"), "s");
  assert.equal(a!.header("X-SIG"), "s");
  assert.equal(a!.header("missing"), undefined);
  assert.deepEqual(a!.headers(), [["x-sig", "s"]]);
  assert.equal(a!.attribute("tier"), "gold");
  assert.deepEqual(a!.attributes(), [["tier", "gold"]]);
  assert.deepEqual(a!.json(), { a: { b: [1, 2] } });
  assert.equal(a!.jsonAt("/a/b/1"), 2);
  assert.equal(b!.json(), undefined);
  assert.equal(b!.text(), "not json");
  assert.equal(b!.contentType, "text/plain");
  assert.equal(c!.text(), undefined);
  assert.deepEqual([...c!.payload], [0xff, 0xfe]);
});

test("json pointers follow RFC 6901", () => {
  const doc = { "a/b": 1, "m~n": 2, list: [10, 20], "": 3, nested: { x: null } };
  assert.deepEqual(jsonPointer(doc, ""), doc);
  assert.equal(jsonPointer(doc, "/a~1b"), 1);
  assert.equal(jsonPointer(doc, "/m~0n"), 2);
  assert.equal(jsonPointer(doc, "/list/1"), 20);
  assert.equal(jsonPointer(doc, "/list/01"), undefined);
  assert.equal(jsonPointer(doc, "/list/2"), undefined);
  assert.equal(jsonPointer(doc, "/"), 3);
  assert.equal(jsonPointer(doc, "/nested/x"), null);
  assert.equal(jsonPointer(doc, "/nested/x/y"), undefined);
  assert.equal(jsonPointer(doc, "list"), undefined);
  assert.equal(jsonPointer(doc, "/toString"), undefined);
});

test("the verdict builder has defaults and checks priority", () => {
  assert.deepEqual(Verdict.keep().toWit(), {});
  assert.deepEqual(Verdict.drop().toWit(), { routes: [] });
  assert.deepEqual(Verdict.route("a", ["b", "c"]).toWit(), { routes: ["a", "b", "c"] });
  for (const bad of [-1, 10, 1.5, NaN]) {
    assert.throws(() => Verdict.keep().priority(bad), RangeError);
  }
  const base = Verdict.route("a");
  const full = base
    .priority(9)
    .jsonPayload({ ok: true })
    .delay(1500)
    .orderingKey("k")
    .attribute("x", "1")
    .attribute("x", "2");
  assert.deepEqual(base.toWit(), { routes: ["a"] }, "builders do not change the verdict they are called on");
  assert.deepEqual(full.toWit(), {
    routes: ["a"],
    priority: 9,
    payload: new TextEncoder().encode('{"ok":true}'),
    contentType: "application/json",
    delayMs: 1500n,
    orderingKey: "k",
    attributes: [["x", "2"]],
  });
  assert.throws(() => Verdict.keep().delay(-1), RangeError);
});

test("header sets one header on a copy of the event's headers", () => {
  const batch = encodeBatch([event({}, { headers: [["a", "1"], ["b", "2"], ["a", "3"]] })]);
  const e = new Event(batch.data, batch.fields, batch.events[0]!);
  const v = Verdict.keep().header("A", "9").header("b", null).header("c", "new");
  assert.deepEqual(v.getHeaders(e), [["a", "9"], ["c", "new"]]);
  assert.deepEqual(e.headers(), [["a", "1"], ["b", "2"], ["a", "3"]], "the event's own headers are unchanged");
  assert.deepEqual(Verdict.keep().headers({ X: "1" }).header("y", "2").getHeaders(e), [["x", "1"], ["y", "2"]]);
  assert.equal(Verdict.keep().getHeaders(e), undefined);
});

test("config helpers", () => {
  const c = new Config({ n: " 12 ", flag: "yes", items: "a, b,,c", bad: "x" });
  assert.equal(c.get("n"), " 12 ");
  assert.equal(c.get("missing", "d"), "d");
  assert.equal(c.getInt("n"), 12);
  assert.equal(c.getBool("flag"), true);
  assert.deepEqual(c.list("items"), ["a", "b", "c"]);
  assert.throws(() => c.getInt("bad"), ConfigError);
  assert.throws(() => c.getBool("bad"), /'bad': 'x' is not true or false/);
  assert.throws(() => c.require("nope"), /config key 'nope' is required/);
  assert.throws(() => c.denyUnknown("n", "flag", "items"), /unknown config key 'bad'/);
  c.denyUnknown("n", "flag", "items", "bad");
});

test("logging natively keeps the lines", () => {
  log.info("Routed.", { destination: "billing", n: 3 });
  assert.deepEqual(log.records.at(-1), { level: "info", message: "Routed.", fields: { destination: "billing", n: "3" } });
  assert.throws(() => log.log("loud" as never, "x"), RangeError);
});

test("exportPlugin takes only a Plugin subclass", () => {
  assert.throws(() => exportPlugin(class {} as never), TypeError);
});
