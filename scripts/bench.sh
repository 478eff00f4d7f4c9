#!/usr/bin/env bash
# The gateway benchmark (issue: durable ingest and delivery throughput).
#
#   bash scripts/bench.sh            # all scenarios, ~2 minutes
#   bash scripts/bench.sh core       # only the four core scenarios (0-3)
#   bash scripts/bench.sh telemetry  # only the tracing overhead comparison
#   bash scripts/bench.sh plugins    # only the one-plugin vs no-plugin comparison
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

run_gateway() {
  local dir; dir=$(mktemp -d)
  cat > "$dir/bench.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$dir/data"
durability = "sync"
min_free_disk = "64MiB"
max_body = "1MiB"
$1

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
  RUST_LOG=warn "$gw" serve --config "$dir/bench.toml" > "$dir/log" 2>&1 &
  gw_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "gateway did not start"; cat "$dir/log"; exit 1
}

stop_gateway() { kill -TERM "$gw_pid" 2>/dev/null; wait "$gw_pid" 2>/dev/null || true; }
trap stop_gateway EXIT

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
[ "$only" = schema ] && exit 0
fi

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
