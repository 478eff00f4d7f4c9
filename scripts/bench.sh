#!/usr/bin/env bash
# The gateway benchmark (issue: durable ingest and delivery throughput).
#
#   bash scripts/bench.sh            # all scenarios, ~2 minutes
#   bash scripts/bench.sh core       # only the four core scenarios (0-3)
#   bash scripts/bench.sh telemetry  # only the tracing overhead comparison
#   bash scripts/bench.sh plugins    # only the one-plugin vs no-plugin comparison
#   bash scripts/bench.sh schema     # schema validation: Avro, JSON Schema, Protobuf
#   bash scripts/bench.sh schema-typed  # only its JSON Schema and Protobuf part
#   bash scripts/bench.sh journal    # fdatasync into a hole vs over written blocks
#   bash scripts/bench.sh stalls     # 5,000/s for 60 s: the write path's tail
#   bash scripts/bench.sh nginx      # wrk on nginx's static 202 and on ingest
#   bash scripts/bench.sh backlog    # a 10-million backlog: RSS, restart, drain
#   bash scripts/bench.sh cluster    # fjall vs JetStream with 1, 2 and 3 gateways
#
# Builds release binaries, starts the real gateway on a fresh data dir with
# durability = "sync" (every 202 is after fdatasync via the group commit),
# and drives it with `loadgen` (bench/src/main.rs) from the same machine:
# 1 KB JSON events, HTTP/1.1 keep-alive, 64 connections. The gateway
# delivers every event to a sink inside loadgen. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# BENCH_NO_BUILD=1 reuses the release binaries already built;
# BENCH_GATEWAY=path/to/switchyard runs another build (an A/B against an
# older commit built elsewhere) with the same load generator.
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -p switchyard -p switchyard-bench
gw=${BENCH_GATEWAY:-target/release/switchyard}
lg=${BENCH_LOADGEN:-target/release/loadgen}
port=${BENCH_PORT:-18480}
sink_port=${BENCH_SINK_PORT:-18481}

# The topics and destinations every scenario uses.
topology() {
  cat <<TOML
[[destinations]]
name = "sink"
kind = "http"
url = "http://127.0.0.1:$sink_port/hook"
concurrency = 64
timeout = "10s"

[[topics]]
name = "bench"
routes = ["sink"]

[[topics]]
name = "ingest-only"

[[destinations]]
name = "jobs"
kind = "pull"
visibility_timeout = "60s"

[[topics]]
name = "pull"
routes = ["jobs"]
TOML
}

# Every gateway's temp dir (a data dir is hundreds of MB after a run): the
# previous single gateway's goes when the next starts (a scenario may still
# read its log after stopping it), all of them on exit. BENCH_KEEP=1 keeps
# them to look at.
bench_dirs=()
gw_dir=""
remove_dirs() { [ -n "${BENCH_KEEP:-}" ] || [ "$#" -eq 0 ] || rm -rf "$@"; }

run_gateway() {
  remove_dirs ${gw_dir:+"$gw_dir"}
  local dir; dir=$(mktemp -d)
  gw_dir=$dir; bench_dirs+=("$dir")
  cat > "$dir/bench.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$dir/data"
durability = "${gw_durability:-sync}"
min_free_disk = "64MiB"
max_body = "1MiB"
$1

$(topology)
TOML
  gw_log="$dir/log"
  RUST_LOG=${gw_rust_log:-warn} "$gw" serve --config "$dir/bench.toml" > "$gw_log" 2>&1 &
  gw_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "gateway did not start"; cat "$dir/log"; exit 1
}

stop_gateway() { [ -n "${gw_pid:-}" ] || return 0; kill -TERM "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; gw_pid=""; }
trap 'stop_gateway; remove_dirs "${bench_dirs[@]}"' EXIT

# `bash scripts/bench.sh telemetry` runs only the telemetry section.
only=${1:-all}
if [ "$only" = all ] || [ "$only" = core ]; then
echo "== 0. Durable ingest alone (a topic with no routes), full speed, 64 connections"
run_gateway ""
"$lg" --url "http://127.0.0.1:$port/v1/topics/ingest-only/events" --connections 64 --duration 10s --gateway-pid "$gw_pid"
stop_gateway

echo
echo "== 1. Durable ingest at full speed, 64 connections, with delivery to a local sink"
run_gateway ""
"$lg" --url "http://127.0.0.1:$port/v1/topics/bench/events" --connections 64 --duration 10s --sink "127.0.0.1:$sink_port" --gateway-pid "$gw_pid"
stop_gateway

echo
echo "== 2. Latency at a fixed 5,000 events/s, 64 connections"
run_gateway ""
"$lg" --url "http://127.0.0.1:$port/v1/topics/bench/events" --connections 64 --duration 10s --rate 5000 --sink "127.0.0.1:$sink_port"
stop_gateway

echo
echo "== 3. Pull: fill a pull queue for 5 s, then 8 consumers receive batches of 10 and ack"
run_gateway ""
"$lg" --url "http://127.0.0.1:$port/v1/topics/pull/events" --connections 64 --duration 5s --warmup 0s \
  --pull "http://127.0.0.1:$port/v1/queues/jobs" --consumers 8 --batch 10
stop_gateway
[ "$only" = core ] && exit 0
fi

# ---------------------------------------------------------------------------
# Schema validation (issue 4): ingest throughput of 1 KB JSON on a topic that
# validates against a registered Avro schema vs the same topic without one,
# in one gateway run, alternating twice. `bash scripts/bench.sh schema`.
if [ "$only" = all ] || [ "$only" = schema ]; then
echo
echo "== S. Schema validation: ingest only, 64 connections, 1 KB JSON, no schema / schema"
run_gateway "
[[topics]]
name = \"ingest-schema\"
schema = { subject = \"bench-value\" }"
curl -sf -X POST -H 'content-type: application/json' \
  "http://127.0.0.1:$port/registry/subjects/bench-value/versions" \
  -d '{"schema":"{\"type\":\"record\",\"name\":\"Bench\",\"fields\":[{\"name\":\"type\",\"type\":\"string\"},{\"name\":\"account\",\"type\":\"string\"},{\"name\":\"pad\",\"type\":\"string\"}]}"}' >/dev/null
# The same record as Confluent wire-format Avro (schema id 1: the first registered).
avro_body=$(mktemp)
python3 - "$avro_body" <<'PY'
import sys
def varint(n):
    n = (n << 1) ^ (n >> 63); out = bytearray()
    while n > 0x7f: out.append((n & 0x7f) | 0x80); n >>= 7
    out.append(n); return bytes(out)
def s(x): b = x.encode(); return varint(len(b)) + b
open(sys.argv[1], "wb").write(b"\x00\x00\x00\x00\x01" + s("order.created") + s("acct_42") + s("x" * 980))
PY
for round in 1 2; do
  for topic in ingest-only ingest-schema; do
    echo "-- round $round: $topic, JSON"
    "$lg" --url "http://127.0.0.1:$port/v1/topics/$topic/events" --connections 64 --duration 8s --gateway-pid "$gw_pid"
    echo "-- round $round: $topic, Avro ($(stat -c %s "$avro_body") B)"
    "$lg" --url "http://127.0.0.1:$port/v1/topics/$topic/events" --connections 64 --duration 8s --gateway-pid "$gw_pid" \
      --body-file "$avro_body" --content-type application/vnd.apache.avro+binary
  done
done
stop_gateway
rm -f "$avro_body"
fi

# ---------------------------------------------------------------------------
# JSON Schema and Protobuf validation (issue 17): bench/schemas/order.json,
# 1 KB of JSON shaped like a real order (nested objects, enums, a date-time
# and an email format, patterns, an array of six line items), against
# order.schema.json (draft 2020-12, closed objects) and against order.proto's
# bench.Order, posted as JSON (protobuf's JSON mapping) and as the same
# message in Confluent-framed bytes (612 B). Each case runs right after the
# no-schema baseline with the same body, in one gateway run, alternating
# A/B for BENCH_SCHEMA_ROUNDS rounds (default 2) of BENCH_SCHEMA_DURATION
# (default 8s) each; a summary with the ratios and the gateway CPU per event
# follows.
if [ "$only" = all ] || [ "$only" = schema ] || [ "$only" = schema-typed ]; then
echo
echo "== T. JSON Schema and Protobuf validation: ingest only, 64 connections, no schema / schema"
run_gateway "
[[topics]]
name = \"ingest-json\"
schema = { subject = \"bench-json\" }

[[topics]]
name = \"ingest-proto\"
schema = { subject = \"bench-proto\", message = \"bench.Order\" }"
register() {
  python3 -c 'import json, sys; print(json.dumps({"schemaType": sys.argv[1], "schema": open(sys.argv[2]).read()}))' "$2" "$3" |
    curl -sf -X POST -H 'content-type: application/vnd.schemaregistry.v1+json' --data-binary @- \
      "http://127.0.0.1:$port/registry/subjects/$1/versions" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
register bench-json JSON bench/schemas/order.schema.json >/dev/null
proto_id=$(register bench-proto PROTOBUF bench/schemas/order.proto)
typed_dir=$(mktemp -d)
python3 bench/schemas/frame_order.py "$proto_id" bench/schemas/order.json "$typed_dir/order.bin"
secs=${BENCH_SCHEMA_DURATION:-8s}
# One case: label, topic, body file, content type; its output is kept for
# the summary.
case_run() {
  echo "-- $1"
  "$lg" --url "http://127.0.0.1:$port/v1/topics/$2/events" --connections 64 --duration "$secs" \
    --gateway-pid "$gw_pid" --body-file "$3" --content-type "$4" | tee "$typed_dir/$1.out"
}
for round in $(seq "${BENCH_SCHEMA_ROUNDS:-2}"); do
  case_run "r$round-json-base" ingest-only bench/schemas/order.json application/json
  case_run "r$round-json-schema" ingest-json bench/schemas/order.json application/json
  case_run "r$round-protojson-base" ingest-only bench/schemas/order.json application/json
  case_run "r$round-protojson-schema" ingest-proto bench/schemas/order.json application/json
  case_run "r$round-protobin-base" ingest-only "$typed_dir/order.bin" application/x-protobuf
  case_run "r$round-protobin-schema" ingest-proto "$typed_dir/order.bin" application/x-protobuf
done
stop_gateway
python3 - "$typed_dir" <<'PY'
import glob, os, re, sys
d = sys.argv[1]
def read(name):
    t = open(os.path.join(d, name + ".out")).read()
    ev = float(re.search(r"= ([0-9.]+) events/s", t).group(1))
    err = int(re.search(r"errors ([0-9]+)", t).group(1))
    cpu = re.search(r"([0-9.]+) ms per 1,000 events", t)
    return ev, err, float(cpu.group(1)) if cpu else float("nan")
rounds = sorted({f.split("-")[0] for f in os.listdir(d) if f.endswith(".out")})
print()
print("| case | round | no schema (ev/s) | schema (ev/s) | ratio | CPU us/event no schema / schema | added us/event | errors |")
print("|---|---|---|---|---|---|---|---|")
for case, label in [("json", "JSON Schema, JSON"), ("protojson", "Protobuf, JSON mapping"), ("protobin", "Protobuf, framed bytes")]:
    tb = ts = 0.0
    for r in rounds:
        b, eb, cb = read(f"{r}-{case}-base")
        s, es, cs = read(f"{r}-{case}-schema")
        tb += b; ts += s
        print(f"| {label} | {r[1:]} | {b:,.0f} | {s:,.0f} | {s / b:.0%} | {cb:.1f} / {cs:.1f} | {cs - cb:+.1f} | {eb} / {es} |")
    print(f"| {label} | total | {tb:,.0f} | {ts:,.0f} | **{ts / tb:.0%}** | | | |")
PY
rm -rf "$typed_dir"
fi
[ "$only" = schema ] || [ "$only" = schema-typed ] && exit 0

# ---------------------------------------------------------------------------
# Plugins (issue 3): ingest -> delivery with one Wasm plugin (route-by-field,
# routing on the payload's "type") in the topic's chain, against the same
# topic with no plugin. Same binary, same config otherwise; the two modes
# alternate, twice each, to even out drift. `bash scripts/bench.sh plugins`
# runs only this. The ratios go in BENCHMARKS.md under "Plugins".
if [ "$only" = all ] || [ "$only" = plugins ]; then
plugin_wasm="$PWD/plugins/target/wasm32-wasip2/release/route_by_field.wasm"
[ -f "$plugin_wasm" ] || bash scripts/build-plugins.sh >/dev/null
plugin_topic="
[[plugins]]
name = \"route\"
path = \"$plugin_wasm\"
config = { pointer = \"/type\", routes = \"order.created=sink,order.paid=sink\", default = \"sink\" }

[[topics]]
name = \"bench-plugin\"
routes = [\"sink\"]
plugins = [\"route\"]"
plugin_run() {
  local label=$1 topic=$2
  echo "-- $label"
  run_gateway "$plugin_topic"
  "$lg" --url "http://127.0.0.1:$port/v1/topics/$topic/events" --connections 64 --duration 10s \
    --sink "127.0.0.1:$sink_port" --gateway-pid "$gw_pid"
  stop_gateway
}
echo
echo "== P. Plugins: ingest + delivery at full speed, 64 connections, no plugin / one plugin (route-by-field)"
for round in 1 2; do
  plugin_run "round $round: no plugin" bench
  plugin_run "round $round: one plugin (route-by-field)" bench-plugin
done
[ "$only" = plugins ] && exit 0
fi

# ---------------------------------------------------------------------------
# Telemetry (issue 5): ingest throughput with tracing off, exported at 100%
# sampling to a local OTLP/HTTP sink (inside loadgen), and configured but
# sampled out. Each mode runs twice, interleaved, to even out drift; the
# ratios go in BENCHMARKS.md under "Telemetry".
if [ "$only" = all ] || [ "$only" = telemetry ]; then
otlp_port=${BENCH_OTLP_PORT:-18482}
telemetry_run() {
  local label=$1 extra=$2
  echo "-- $label"
  run_gateway "$extra"
  "$lg" --url "http://127.0.0.1:$port/v1/topics/ingest-only/events" --connections 64 --duration 10s \
    --otlp-sink "127.0.0.1:$otlp_port" --gateway-pid "$gw_pid" ${TELEMETRY_RATE:+--rate "$TELEMETRY_RATE"}
  stop_gateway
}
traced="
[telemetry]
otlp_endpoint = \"http://127.0.0.1:$otlp_port\"
protocol = \"http/protobuf\""
echo
echo "== T. Telemetry: durable ingest (topic without routes), 64 connections, tracing off / 100% / sampled out"
for round in 1 2; do
  telemetry_run "round $round: tracing off" ""
  telemetry_run "round $round: 100% sampled, exported over OTLP/HTTP" "$traced
sample_ratio = 1.0"
  telemetry_run "round $round: configured, sampled out (ratio 0)" "$traced
sample_ratio = 0.0"
done
[ "$only" = telemetry ] && exit 0
fi

# ---------------------------------------------------------------------------
# Why the store prefills fjall's journal (gateway/store-fjall/src/prefill.rs):
# a group commit's write and fdatasync into a journal that is a hole (how
# fjall makes one: set_len), over blocks already written (what the prefill
# leaves ahead of the commits), and at the end of a growing file (a journal
# reopened after a restart), alternating, on the disk the gateway's data dir
# is on. Each op writes 17 KB, about one group of 16 events of 1 KB.
# `bash scripts/bench.sh journal`.
if [ "$only" = all ] || [ "$only" = journal ]; then
echo
echo "== J. write + fdatasync of 17 KB: into a hole / over written zeros / appending"
python3 - "$(dirname "$(mktemp -u)")" <<'PY'
import os, resource, sys, time
where, ops, size = sys.argv[1], 3000, 64 * 1024 * 1024
def run(kind):
    path = os.path.join(where, f"switchyard-journal-bench-{kind}")
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_RDWR)
    if kind == "hole":
        os.ftruncate(fd, size)
    elif kind == "written":
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            os.write(fd, zeros)
    os.fsync(fd)
    os.lseek(fd, 0, os.SEEK_SET)
    group, lat = b"x" * (16 * 1100), []
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(ops):
        t = time.perf_counter()
        os.write(fd, group)
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
    after = resource.getrusage(resource.RUSAGE_SELF)
    os.close(fd)
    os.remove(path)
    lat.sort()
    us = lambda s: f"{s * 1e6:.0f} us"
    print(f"{kind:8} p50 {us(lat[ops // 2])}, p99 {us(lat[ops * 99 // 100])}, "
          f"mean {us(sum(lat) / ops)}, system CPU per op {us((after.ru_stime - before.ru_stime) / ops)}")
for _ in range(2):
    for kind in ("hole", "written", "append"):
        run(kind)
PY
[ "$only" = journal ] && exit 0
fi

# ---------------------------------------------------------------------------
# The write path's tail (issue 13): a fixed 5,000 events/s of 1 KB for 60 s,
# on a topic with no routes and through the full pipeline, with an fdatasync
# probe on the same disk running all along, so a slow group commit can be
# told from a slow disk. Reports loadgen's percentiles, the gateway's group
# commits over 25 ms (from /metrics), the gateway's own handler and commit
# percentiles, and the probe's fdatasync times. The probe syncs every
# BENCH_PROBE_MS (default 1) ms: any disk stall longer than that reaches it.
# `bash scripts/bench.sh stalls`.
if [ "$only" = all ] || [ "$only" = stalls ]; then
# The gateway's side of a run, from one read of /metrics:
# - its group commits over 25 ms: all commits minus those in the buckets up
#   to 25.6 ms (the histogram's bucket just above 25 ms);
# - the ingest handler's time, from its start to its answer
#   (switchyard_ingest_duration, so excluding reading the request head and
#   waiting for a worker), and the group commit's time, each as the bucket
#   its p50, p99 and p99.9 fall in. Set beside loadgen's percentiles, they
#   tell a tail inside the gateway's handler and store from one in the
#   scheduler, the connection or the client.
gateway_report() {
  curl -s "http://127.0.0.1:$port/metrics" | awk -v topic="$1" '
    function report(name, n, les, counts,   i, out, q, want, k) {
      out = name ":"
      split("0.5 0.99 0.999", q, " ")
      for (k = 1; k <= 3; k++) {
        want = q[k] * counts[n]
        for (i = 1; i <= n && counts[i] < want; i++) {}
        out = out sprintf(" p%s <= %s ms%s", q[k] * 100, les[i] == "+Inf" ? "inf" : les[i] * 1000, k < 3 ? "," : "")
      }
      print out
    }
    $0 ~ "^switchyard_ingest_duration_seconds_bucket.*topic=\"" topic "\"" {
      match($0, /le="[^"]*"/); ni++; ile[ni] = substr($0, RSTART + 4, RLENGTH - 5); ic[ni] = $2 }
    /^switchyard_store_commit_duration_seconds_bucket/ {
      match($0, /le="[^"]*"/); nc++; cle[nc] = substr($0, RSTART + 4, RLENGTH - 5); cc[nc] = $2
      if (cle[nc] == "0.0256") fast = $2 }
    END {
      printf "gateway: %d of %d group commits over 25 ms\n", cc[nc] - fast, cc[nc]
      report("  gateway ingest handler (histogram bucket)", ni, ile, ic)
      report("  gateway group commit (histogram bucket)", nc, cle, cc)
    }'
}
stall_run() {
  local label=$1 topic=$2 extra=$3
  echo "-- $label"
  # fjall's journal rotations are logged, to set beside slow commits and
  # the probe's slow syncs.
  gw_rust_log="warn,fjall::journal::writer=debug" run_gateway ""
  probe_out=$(mktemp)
  python3 - "$(dirname "$(mktemp -u)")" 62 "${BENCH_PROBE_MS:-1}" > "$probe_out" <<'PY' &
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe-%d" % os.getpid())
fd = os.open(path, os.O_CREAT | os.O_WRONLY)
ts, end, slow = [], time.time() + float(sys.argv[2]), []
while time.time() < end:
    os.write(fd, b"x" * 1024)
    t = time.perf_counter(); os.fdatasync(fd); d = time.perf_counter() - t; ts.append(d)
    if d > 0.010:
        now = time.time()
        slow.append("%s.%03dZ %.1f ms" % (time.strftime("%H:%M:%S", time.gmtime(now)), now % 1 * 1000, d * 1e3))
    time.sleep(float(sys.argv[3]) / 1000)
os.close(fd); os.unlink(path); ts.sort()
q = lambda p: ts[min(len(ts) - 1, int(p * len(ts)))] * 1e3
print("fdatasync probe: %d calls, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms, over 25 ms: %d"
      % (len(ts), q(0.5), q(0.99), q(0.999), ts[-1] * 1e3, sum(1 for t in ts if t > 0.025)))
print("  probe syncs over 10 ms (UTC):", ", ".join(slow) or "none")
PY
  probe_pid=$!
  # shellcheck disable=SC2086
  "$lg" --url "http://127.0.0.1:$port/v1/topics/$topic/events" --connections 64 --duration 60s \
    --rate 5000 --gateway-pid "$gw_pid" $extra
  gateway_report "$topic"
  wait "$probe_pid" || true
  cat "$probe_out"; rm -f "$probe_out"
  stop_gateway
  echo "  gateway, journal rotations and commits over 20 ms (UTC):"
  sed -E 's/\x1b\[[0-9;]*m//g' "$gw_log" |
    awk '/Rotating active journal/ { print "    " substr($1, 12, 12) " journal rotated" }
         /Slow group commit/ { for (i = 1; i <= NF; i++) if ($i ~ /^elapsed_ms=/) ms = substr($i, 12);
                               print "    " substr($1, 12, 12) " commit took " ms " ms" }'
}
echo
echo "== L. The write path's tail: 5,000 events/s of 1 KB for 60 s (durability sync)"
stall_run "ingest only (a topic with no routes)" ingest-only ""
stall_run "full pipeline (delivery to a local sink)" bench "--sink 127.0.0.1:$sink_port"
[ "$only" = stalls ] && exit 0
fi

# ---------------------------------------------------------------------------
# Against nginx (issue 13): the same wrk load (-t2 -c64 -d8s, a 1 KB JSON
# body) on nginx answering a static 202 and on durable ingest (a topic with
# no routes), alternating, twice; the ratio is the figure. nginx and wrk
# come from Debian's packages (installed here if missing).
# `bash scripts/bench.sh nginx`.
if [ "$only" = all ] || [ "$only" = nginx ]; then
for tool in wrk nginx; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "installing $tool (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
nginx_port=${BENCH_NGINX_PORT:-18483}
ndir=$(mktemp -d)
cat > "$ndir/nginx.conf" <<NGINX
worker_processes auto;
pid $ndir/nginx.pid;
error_log $ndir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_buffer_size 16k;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 202 '{"id":"01HZX3K9Q8W7E6R5T4Y3U2I1O0"}'; }
  }
}
NGINX
python3 -c "
import json
body = json.dumps({'type': 'order.created', 'account': 'acct_42', 'pad': 'x' * 970})
print('wrk.method = \"POST\"')
print('wrk.headers[\"Content-Type\"] = \"application/json\"')
print('wrk.body = ' + json.dumps(body))
" > "$ndir/post.lua"
echo
echo "== N. wrk -t2 -c64 -d8s, 1 KB JSON: nginx static 202 / durable ingest (no routes)"
for round in 1 2; do
  echo "-- round $round: nginx"
  "$nginx_bin" -p "$ndir" -c "$ndir/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  sleep 0.5
  wrk -t2 -c64 -d8s --latency -s "$ndir/post.lua" "http://127.0.0.1:$nginx_port/" | grep -E 'Requests/sec|Latency|99%|Non-2xx'
  echo "-- round $round: nginx, GET (to set beside GET /healthz below)"
  wrk -t2 -c64 -d8s --latency "http://127.0.0.1:$nginx_port/" | grep -E 'Requests/sec|Latency|99%|Non-2xx'
  kill -QUIT "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true
  echo "-- round $round: switchyard, durable ingest"
  run_gateway ""
  wrk -t2 -c64 -d8s --latency -s "$ndir/post.lua" "http://127.0.0.1:$port/v1/topics/ingest-only/events" | grep -E 'Requests/sec|Latency|99%|Non-2xx'
  stop_gateway
  # Where the gap is, not the figure: the same ingest without its fdatasync
  # (durability "buffered": written to the OS before the 202), and the
  # gateway's HTTP stack alone (GET /healthz: hyper, the listener, axum's
  # router and the edge layer, nothing stored).
  echo "-- round $round: switchyard, ingest with durability buffered (no fdatasync)"
  gw_durability=buffered run_gateway ""
  wrk -t2 -c64 -d8s --latency -s "$ndir/post.lua" "http://127.0.0.1:$port/v1/topics/ingest-only/events" | grep -E 'Requests/sec|Latency|99%|Non-2xx'
  stop_gateway
  echo "-- round $round: switchyard, GET /healthz (the HTTP stack alone)"
  run_gateway ""
  wrk -t2 -c64 -d8s --latency "http://127.0.0.1:$port/healthz" | grep -E 'Requests/sec|Latency|99%|Non-2xx'
  stop_gateway
done
rm -rf "$ndir"
[ "$only" = nginx ] && exit 0
fi

# ---------------------------------------------------------------------------
# Scale-out (issue 14): the same load on fjall, then on a 3-node JetStream
# cluster (R3, started here by scripts/nats-cluster.sh, all on this
# machine) with 1, 2 and 3 gateways sharing it, the connections spread over
# them round-robin: durable ingest alone (a topic with no routes), then
# ingest with delivery to a local sink. Each JetStream run has a prefix of
# its own (empty streams). `bash scripts/bench.sh cluster`.
if [ "$only" = cluster ]; then
  export JS_PROBE_DIR; JS_PROBE_DIR=$(mktemp -d)
  bash scripts/nats-cluster.sh start >/dev/null
  gw_pids=()
  stop_gateways() {
    local p
    for p in "${gw_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    gw_pids=()
  }
  bench_dirs+=("$JS_PROBE_DIR")
  trap 'stop_gateway; stop_gateways; bash scripts/nats-cluster.sh clean; remove_dirs "${bench_dirs[@]}"' EXIT
  # Starts $1 gateways on the cluster under prefix $2; their ingest URLs
  # for topic $3 end up in $urls.
  run_gateways() {
    local n=$1 prefix=$2 topic=$3 i dir p
    urls=""
    for i in $(seq "$n"); do
      dir=$(mktemp -d); p=$((port + 10 * i)); bench_dirs+=("$dir")
      cat > "$dir/bench.toml" <<TOML
[server]
listen = "127.0.0.1:$p"
data_dir = "$dir/data"
min_free_disk = "64MiB"
max_body = "1MiB"

[store]
backend = "jetstream"
servers = ["nats://127.0.0.1:14222", "nats://127.0.0.1:14223", "nats://127.0.0.1:14224"]
replicas = 3
prefix = "$prefix"

$(topology)
TOML
      RUST_LOG=warn "$gw" serve --config "$dir/bench.toml" > "$dir/log" 2>&1 &
      gw_pids+=($!)
      for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && break
        sleep 0.1
      done
      curl -sf "http://127.0.0.1:$p/healthz" >/dev/null || { echo "gateway $i did not start"; cat "$dir/log"; exit 1; }
      urls+="${urls:+,}http://127.0.0.1:$p/v1/topics/$topic/events"
    done
  }
  echo "== C. Scale-out: fjall vs JetStream (3 nodes, R3, this machine) with 1-3 gateways, 64 connections, 1 KB JSON"
  echo "-- fjall, 1 gateway: ingest only"
  run_gateway ""
  "$lg" --url "http://127.0.0.1:$port/v1/topics/ingest-only/events" --connections 64 --duration 8s --gateway-pid "$gw_pid"
  stop_gateway
  echo "-- fjall, 1 gateway: ingest + delivery"
  run_gateway ""
  "$lg" --url "http://127.0.0.1:$port/v1/topics/bench/events" --connections 64 --duration 8s --sink "127.0.0.1:$sink_port"
  stop_gateway
  for n in 1 2 3; do
    echo "-- jetstream, $n gateway(s): ingest only"
    run_gateways "$n" "bench${n}i$RANDOM" ingest-only
    "$lg" --url "$urls" --connections 64 --duration 8s
    stop_gateways
    echo "-- jetstream, $n gateway(s): ingest + delivery"
    run_gateways "$n" "bench${n}d$RANDOM" bench
    "$lg" --url "$urls" --connections 64 --duration 8s --sink "127.0.0.1:$sink_port"
    stop_gateways
  done
  exit 0
fi

# ---------------------------------------------------------------------------
# A big backlog (issue 13): a paused destination fills with events through
# the batch endpoint, then: RSS, restart-to-ready time, drain rate. Needs
# about 0.7 GB of disk per million events. `bash scripts/bench.sh backlog`
# (BACKLOG_EVENTS=10000000 by default).
if [ "$only" = backlog ]; then
  "$(dirname "$lg")/backlog" --gateway "$gw" --events "${BACKLOG_EVENTS:-10000000}" --size 256 --drain-for 30s
  exit 0
fi
