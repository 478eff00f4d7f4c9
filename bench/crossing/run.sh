#!/usr/bin/env bash
# Where a dynamic-language plugin's time per event goes (issue 18, item 6),
# and what contract 0.3.0 (the index as packed bytes, the verdicts in one
# buffer) saved against 0.2.0 (WIT records), A/B in one run.
#
#   bash bench/crossing/run.sh            # after scripts/build-plugins.sh and a release build
#   CROSSING_BASE=<rev> bash bench/crossing/run.sh   # compare against another 0.2.0 revision
#
# Three probes per language, built with the SDKs' own build commands:
#   route  route-by-field (SDK) with timers: the whole call (from
#          `plugin test`), the time inside the contract's `handle`, and the
#          time inside the plugin's per-event `handle`;
#   keep   the SDK loop with a handler that reads nothing and keeps;
#   raw    no SDK loop: a prebuilt keep verdict per event, touching nothing.
# So: crossing = whole call - inside (raw is nearly all crossing), SDK loop =
# inside - handler. Each probe is built twice: "new" from this checkout
# (contract 0.3.0) and "old" from $CROSSING_BASE (default: the last commit
# whose SDKs built 0.2.0), whose SDKs, WIT and probes are taken with `git
# archive`; Rust's route-by-field likewise. The gateway (this checkout's,
# speaking both) runs old and new alternately, two rounds, so a noisy
# machine moves both alike. 1,536 events of 1 KB JSON with two headers, in
# batches of 512 and 64, from the compiled-plugin cache; the first batch of
# each run (warm-up) is left out; medians over both rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
gw=${BENCH_GATEWAY:-target/release/switchyard}
base=${CROSSING_BASE:-aed8e78}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/wasm" "$stage/old"

# Builds the probes of one tree (this checkout, or the old one) into
# $stage/wasm/<probe>-<label>.wasm.
build_probes() {
  local root=$1 label=$2
  mkdir -p "$stage/$label-py" "$stage/$label-ts"
  cp "$root"/bench/crossing/py_*.py "$root"/plugins/route-by-field-py/route_by_field.py "$stage/$label-py/"
  cp "$root"/bench/crossing/ts_keep.ts "$root"/bench/crossing/ts_raw.ts "$stage/$label-ts/"
  grep -v '^export const handler' "$root"/plugins/route-by-field-ts/src/route_by_field.ts |
    cat - "$root"/bench/crossing/ts_route.ts >"$stage/$label-ts/ts_route.ts"
  for p in route keep raw; do
    .venv/bin/python "$root"/sdk-guest/python/switchyard_sdk/build.py "$stage/$label-py/py_$p.py" \
      -o "$stage/wasm/py_$p-$label.wasm" >/dev/null
    node "$root"/sdk-guest/typescript/build.mjs "$stage/$label-ts/ts_$p.ts" -o "$stage/wasm/ts_$p-$label.wasm" >/dev/null
  done
}

git archive "$base" | tar -x -C "$stage/old"
# The same pinned npm tools as this checkout's (the lockfiles match).
ln -s "$PWD/sdk-guest/typescript/node_modules" "$stage/old/sdk-guest/typescript/node_modules"
cargo build --quiet --release --target wasm32-wasip2 --manifest-path "$stage/old/plugins/Cargo.toml" \
  --target-dir plugins/target/crossing-base -p route-by-field
cp plugins/target/crossing-base/wasm32-wasip2/release/route_by_field.wasm "$stage/wasm/rust_route-old.wasm"
cp plugins/target/wasm32-wasip2/release/route_by_field.wasm "$stage/wasm/rust_route-new.wasm"
build_probes "$stage/old" old
build_probes "$PWD" new

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
probes="rust_route py_route py_keep py_raw ts_route ts_keep ts_raw"
for round in 1 2; do
  for batch in 512 64; do
    for p in $probes; do
      for v in old new; do
        "$gw" plugin test "$stage/wasm/$p-$v.wasm" --event "$stage/events.json" --config pointer=/type \
          --config routes=order=billing --max-batch "$batch" --cache-dir "$stage/cache" \
          >"$stage/$p-$v-$batch-$round.out" 2>&1 || true
      done
    done
  done
done
python3 - "$stage" $probes <<'PY'
import os, re, statistics, sys
d, probes = sys.argv[1], sys.argv[2:]
def mb(p):
    return os.path.getsize(os.path.join(d, "wasm", p + ".wasm")) / 1e6
def measure(p, batch):
    calls, timing = [], []
    for r in (1, 2):
        t = open(os.path.join(d, f"{p}-{batch}-{r}.out")).read()
        calls += [(int(n), float(ms)) for n, ms in re.findall(r"^batch \d+: (\d+) events in ([0-9.]+) ms", t, re.M)][1:]
        tm = re.findall(r'timing n="(\d+)" inside_us="(\d+)"(?: handler_us="(\d+)")?', t)
        timing += [x for x in tm if int(x[0]) == batch][1:]
    if not calls:
        return None
    whole = statistics.median(ms * 1000 / n for n, ms in calls)
    inside = statistics.median(int(x[1]) / batch for x in timing) if timing else None
    handler = statistics.median(int(x[2]) / batch for x in timing if x[2]) if timing and timing[0][2] else None
    return whole, inside, handler
f = lambda v: "" if v is None else f"{v:.1f}"
print("| probe | contract | size | batch | µs/event, whole call | inside handle | inside the plugin's handler | crossing (whole - inside) |")
print("|---|---|---|---|---|---|---|---|")
for p in probes:
    for v, contract in (("old", "0.2.0"), ("new", "0.3.0")):
        for batch in (512, 64):
            m = measure(f"{p}-{v}", batch)
            if m is None:
                print(f"| {p} | {contract} | {mb(p + '-' + v):.1f} MB | {batch} | (failed: see {p}-{v}-{batch}-1.out) | | | |")
                continue
            whole, inside, handler = m
            cross = None if inside is None else whole - inside
            print(f"| {p} | {contract} | {mb(p + '-' + v):.1f} MB | {batch} | {whole:.1f} | {f(inside)} | {f(handler)} | {f(cross)} |")
print()
print("Extra per event (whole call - the plugin's own handler), route-by-field, new / old:")
for p in ("py_route", "ts_route"):
    for batch in (512, 64):
        old, new = measure(f"{p}-old", batch), measure(f"{p}-new", batch)
        if old and new and old[2] is not None and new[2] is not None:
            eo, en = old[0] - old[2], new[0] - new[2]
            print(f"  {p} batch {batch}: {eo:.1f} -> {en:.1f} us ({en / eo:.0%}); crossing {old[0] - old[1]:.1f} -> {new[0] - new[1]:.1f} us")
PY
