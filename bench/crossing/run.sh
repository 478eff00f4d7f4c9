#!/usr/bin/env bash
# Where a dynamic-language plugin's time per event goes (issue 18, item 6).
#
#   bash bench/crossing/run.sh            # after scripts/build-plugins.sh and a release build
#
# Three probes per language, built with the SDKs' own build commands:
#   route  route-by-field (SDK) with timers: the whole call (from
#          `plugin test`), the time inside the contract's `handle`, and the
#          time inside the plugin's per-event `handle`;
#   keep   the SDK loop with a handler that reads nothing and keeps;
#   raw    no SDK loop: a prebuilt keep verdict per event, touching nothing.
# So: crossing = whole call - inside (raw is nearly all crossing), SDK loop =
# inside - handler. 1,536 events of 1 KB JSON with two headers, in batches
# of 512 and 64, from the compiled-plugin cache; the first batch of each run
# (warm-up) is left out. Rust's route-by-field is the reference.
set -euo pipefail
cd "$(dirname "$0")/../.."
gw=${BENCH_GATEWAY:-target/release/switchyard}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/py" "$stage/ts" "$stage/wasm"
cp bench/crossing/py_*.py plugins/route-by-field-py/route_by_field.py "$stage/py/"
cp bench/crossing/ts_keep.ts bench/crossing/ts_raw.ts "$stage/ts/"
grep -v '^export const handler' plugins/route-by-field-ts/src/route_by_field.ts |
  cat - bench/crossing/ts_route.ts >"$stage/ts/ts_route.ts"
for p in route keep raw; do
  .venv/bin/python sdk-guest/python/switchyard_sdk/build.py "$stage/py/py_$p.py" -o "$stage/wasm/py_$p.wasm" >/dev/null
  node sdk-guest/typescript/build.mjs "$stage/ts/ts_$p.ts" -o "$stage/wasm/ts_$p.wasm" >/dev/null
done
cp plugins/target/wasm32-wasip2/release/route_by_field.wasm "$stage/wasm/rust_route.wasm"
python3 - "$stage/events.json" <<'PY'
import json, sys
events = []
for i in range(1536):
    body = {"type": "order" if i % 2 == 0 else "refund", "id": f"evt_{i:06d}",
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "tier": "GOLD"},
            "lines": [{"sku": f"SKU-{j:06d}", "qty": j + 1, "price_cents": 1999 + j} for j in range(8)],
            "note": "x" * 450}
    events.append({"id": f"01J{i:023d}", "topic": "orders",
                   "headers": {"x-source": "bench", "user-agent": "loadgen"}, "body": body})
json.dump(events, open(sys.argv[1], "w"))
PY
for batch in 512 64; do
  for p in rust_route py_route py_keep py_raw ts_route ts_keep ts_raw; do
    "$gw" plugin test "$stage/wasm/$p.wasm" --event "$stage/events.json" --config pointer=/type \
      --config routes=order=billing --max-batch "$batch" --cache-dir "$stage/cache" \
      >"$stage/$p-$batch.out" 2>&1 || true
  done
done
python3 - "$stage" <<'PY'
import os, re, statistics, sys
d = sys.argv[1]
def mb(p):
    return os.path.getsize(os.path.join(d, "wasm", p + ".wasm")) / 1e6
print("| probe | size | batch | µs/event, whole call | inside handle | inside the plugin's handler | crossing (whole - inside) |")
print("|---|---|---|---|---|---|---|")
for p in ["rust_route", "py_route", "py_keep", "py_raw", "ts_route", "ts_keep", "ts_raw"]:
    for batch in (512, 64):
        t = open(os.path.join(d, f"{p}-{batch}.out")).read()
        calls = [(int(n), float(ms)) for n, ms in re.findall(r"^batch \d+: (\d+) events in ([0-9.]+) ms", t, re.M)][1:]
        timing = re.findall(r'timing n="(\d+)" inside_us="(\d+)"(?: handler_us="(\d+)")?', t)
        timing = [x for x in timing if int(x[0]) == batch][1:]
        if not calls:
            print(f"| {p} | {mb(p):.1f} MB | {batch} | (failed: see {p}-{batch}.out) | | | |")
            continue
        whole = statistics.median(ms * 1000 / n for n, ms in calls)
        inside = statistics.median(int(x[1]) / batch for x in timing) if timing else None
        handler = statistics.median(int(x[2]) / batch for x in timing if x[2]) if timing and timing[0][2] else None
        f = lambda v: "" if v is None else f"{v:.1f}"
        cross = None if inside is None else whole - inside
        print(f"| {p} | {mb(p):.1f} MB | {batch} | {whole:.1f} | {f(inside)} | {f(handler)} | {f(cross)} |")
PY
