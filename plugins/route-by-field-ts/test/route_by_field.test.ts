// Native tests of the TypeScript route-by-field plugin: no Wasm needed.
import assert from "node:assert/strict";
import { test } from "node:test";

import { event, run, verdicts } from "@switchyard/plugin-sdk/testing";
import { RouteByField } from "../src/route_by_field.js";

const CONFIG = {
  pointer: "/type",
  routes: "refund=refunds|audit, order=billing",
  default: "audit",
  priorities: "refund=8",
};

test("values route to their destinations and priorities", () => {
  const [refund, order, other, missing] = verdicts(
    run(RouteByField, CONFIG, [event({ type: "refund" }), event({ type: "order" }), event({ type: "x" }), event({ id: 1 })]),
  );
  assert.deepEqual(refund, { routes: ["refunds", "audit"], priority: 8 });
  assert.deepEqual(order, { routes: ["billing"] });
  assert.deepEqual(other, { routes: ["audit"] });
  assert.deepEqual(missing, { routes: ["audit"] });
});

test("without a default other values keep their routes", () => {
  assert.deepEqual(verdicts(run(RouteByField, { pointer: "/type", routes: "a=b" }, [event({ type: "z" })])), [{}]);
});

test("numbers, booleans and non-JSON payloads", () => {
  const out = verdicts(
    run(RouteByField, { pointer: "/n", routes: "3=three,true=yes" }, [
      event({ n: 3 }),
      event({ n: true }),
      event(undefined, { text: "hi" }),
    ]),
  );
  assert.deepEqual(out, [{ routes: ["three"] }, { routes: ["yes"] }, {}]);
});

for (const [config, message] of [
  [{ routes: "a=b" }, "config key 'pointer' is required"],
  [{ pointer: "type", routes: "a=b" }, "must start with '/'"],
  [{ pointer: "/t", routes: "a" }, "is not value=..."],
  [{ pointer: "/t", routes: "a=b", priorities: "a=12" }, "is not 0-9"],
  [{ pointer: "/t", routes: "a=b", rotues: "x" }, "unknown config key 'rotues'"],
] as Array<[Record<string, string>, string]>) {
  test(`bad config is refused with the key named: ${message}`, () => {
    assert.throws(
      () => run(RouteByField, config, []),
      (e: { payload: string }) => e.payload.includes(message),
    );
  });
}
