#!/usr/bin/env bash
# The test command: builds what the tests need, then runs every test.
#
#   bash scripts/test.sh
#
# It installs what the tests use into the project (the wasm32-wasip2 target,
# a Python virtualenv in .venv with the real peer clients), builds the
# gateway binary and the example plugins, and runs `cargo test --workspace`.
# Tests find the binary through SWITCHYARD_BIN and Python through
# SWITCHYARD_PYTHON: a separate tests package gets no CARGO_BIN_EXE_*, and
# building from inside `cargo test` would block on cargo's lock.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }

if [ -f scripts/build-plugins.sh ]; then
  step "Building the example plugins (wasm32-wasip2)"
  bash scripts/build-plugins.sh
fi

if [ -s tests/python/requirements.txt ]; then
  step "Python peers for the tests (.venv)"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  export SWITCHYARD_PYTHON="$root/.venv/bin/python"
fi

step "Building the workspace"
cargo build --workspace
export SWITCHYARD_BIN="$root/target/debug/switchyard"

step "Running the tests"
cargo test --workspace "$@"
