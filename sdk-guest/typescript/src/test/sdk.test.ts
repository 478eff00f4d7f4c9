// Native tests of the SDK: compiled by `tsc`, run by `node --test`, no Wasm.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Config, ConfigError, Event, Plugin, Verdict, exportPlugin, jsonPointer, log } from "../index.js";
import { decodeVerdicts, encodeBatch, event, run } from "../testing.js";
import { EVENT_RECORD, Writer, putError, putVerdict, view } from "../wire.js";
import type * as wit from "../wit/interfaces/switchyard-plugin-types.js";

/** Event `i` of a batch, as the loop makes it. */
const at = (batch: wit.Batch, i: number) => new Event(batch.data, view(batch.events), view(batch.fields), i);

/**
 * The verdict buffer of the contract's doc, byte for byte: the Rust and
 * Python SDKs' tests encode the same, and the gateway's decoder reads it.
 */
const GOLDEN =
  "040000000003020000000100000061020000006263070104000000626f6f6d000000fc020000007b7d0100000001" +
  "00000068010000007601000000740500000000000000010000006b0100000001000000780100000079";
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

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
  const out = decodeVerdicts(handler.handle(encodeBatch([event({}), event({})])), 2);
  assert.deepEqual(out, [
    { tag: "err", val: "handle was called before init succeeded" },
    { tag: "err", val: "handle was called before init succeeded" },
  ]);
});

test("the event view reads texts, headers, attributes and json lazily", () => {
  const batch = encodeBatch([
    event({ a: { b: [1, 2] } }, { id: "01ABC", topic: "orders", headers: { "X-Sig": "s" }, attributes: { tier: "gold" }, receivedAtMs: 42 }),
    event(undefined, { text: "not json" }),
    event(undefined, { raw: new Uint8Array([0xff, 0xfe]) }),
  ]);
  const [a, b, c] = [0, 1, 2].map((i) => at(batch, i));
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
  const e = at(batch, 0);
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

test("verdicts encode to the documented bytes and decode back", () => {
  const w = new Writer();
  w.u32(4);
  putVerdict(w, Verdict.route("a", "bc").priority(7).toWit());
  putError(w, "boom");
  putVerdict(w, Verdict.keep().toWit());
  putVerdict(
    w,
    Verdict.keep().payload("{}").headers([["h", "v"]]).contentType("t").delay(5).orderingKey("k").attribute("x", "y").toWit(),
  );
  const buf = w.finish();
  assert.equal(hex(buf), GOLDEN);
  const [a, boom, keep, full] = decodeVerdicts(buf, 4);
  assert.deepEqual(a, { tag: "ok", val: { routes: ["a", "bc"], priority: 7 } });
  assert.deepEqual(boom, { tag: "err", val: "boom" });
  assert.deepEqual(keep, { tag: "ok", val: {} });
  assert.deepEqual(full, {
    tag: "ok",
    val: {
      payload: new TextEncoder().encode("{}"),
      headers: [["h", "v"]],
      contentType: "t",
      delayMs: 5n,
      orderingKey: "k",
      attributes: [["x", "y"]],
    },
  });
  assert.throws(() => decodeVerdicts(buf, 3), /returned 4 verdicts for 3 events/);
  for (let cut = 0; cut < buf.length; cut++) assert.throws(() => decodeVerdicts(buf.subarray(0, cut), 4), RangeError);
  // The writer grows past its first buffer and keeps every byte.
  const big = new Writer();
  big.u32(1);
  putVerdict(big, { payload: new Uint8Array(5000).fill(7), orderingKey: "é".repeat(300) });
  const [r] = decodeVerdicts(big.finish(), 1);
  assert.equal(r!.tag === "ok" && r!.val.payload!.every((b) => b === 7) && r!.val.orderingKey, "é".repeat(300));
});

test("every field round-trips through the batch and the verdict buffer", () => {
  class Mirror extends Plugin {
    override handle(e: Event) {
      let v = Verdict.route(e.topic, e.id)
        .priority(e.receivedAtMs % 10)
        .payload(e.payload)
        .contentType(e.contentType)
        .header("x-seen", "1")
        .orderingKey(e.header("x-k") ?? "-");
      for (const [k, val] of e.attributes()) v = v.attribute(`${k}-seen`, val);
      return v;
    }
  }
  const events = [0, 1, 2, 3].map((i) =>
    event({ n: i, s: "é" }, { topic: `t${i}`, id: `id${i}`, headers: { "x-k": `k${i}` }, attributes: i % 2 ? { a: `${i}` } : {}, receivedAtMs: 1000 + i }),
  );
  run(Mirror, {}, events).forEach((r, i) => {
    const e = events[i]!;
    assert.deepEqual(r, {
      tag: "ok",
      val: {
        routes: [e.topic, e.id],
        priority: e.receivedAtMs % 10,
        payload: e.payload,
        headers: [["x-k", `k${i}`], ["x-seen", "1"]],
        contentType: "application/json",
        orderingKey: `k${i}`,
        ...(i % 2 ? { attributes: [["a-seen", `${i}`]] } : {}),
      },
    });
  });
});

test("a malformed index fails only its event", () => {
  class Reads extends Plugin {
    override handle(e: Event) {
      return Verdict.route(e.topic).orderingKey((e.header("x-a") ?? "-") + new TextDecoder().decode(e.payload));
    }
  }
  const good = encodeBatch([event(undefined, { text: "ok", topic: "t", headers: { "x-a": "1" } })]);
  const record = (edit: (v: DataView) => void) => {
    const r = good.events.slice();
    edit(view(r));
    return r;
  };
  const pastEnd = record((v) => v.setUint32(8 + 4 * 7, 10_000, true)); // the payload's length
  const noFields = record((v) => v.setUint32(8 + 4 * 9, 7, true)); // seven headers: there is one
  const oddPair = record((v) => v.setUint32(8 + 4 * 8, 1, true)); // the entry after the good one
  const fields = new Uint8Array([...good.fields, ...new Uint8Array(16)]);
  view(fields).setUint32(16 + 4, 99_999, true);
  const events = new Uint8Array([...good.events, ...pastEnd, ...noFields, ...oddPair, ...good.events.subarray(0, 20)]);
  assert.equal(events.length, 4 * EVENT_RECORD + 20);
  const handler = exportPlugin(Reads);
  handler.init([]);
  assert.deepEqual(decodeVerdicts(handler.handle({ data: good.data, events, fields }), 5), [
    { tag: "ok", val: { routes: ["t"], orderingKey: "1ok" } },
    { tag: "err", val: "RangeError: the host sent a malformed payload range" },
    { tag: "err", val: "RangeError: the host sent a malformed headers range" },
    { tag: "ok", val: { routes: ["t"], orderingKey: "-ok" } },
    { tag: "err", val: "the host sent a cut-off record for event 4" },
  ]);
});
