#!/usr/bin/env bash
# Builds the example plugins and test fixtures in plugins/ as WebAssembly
# components (wasm32-wasip2, release) into plugins/target/wasm32-wasip2/release/.
# The gateway's unit tests and the quickstart load them from there.
#
#   scripts/build-plugins.sh            # build
#   scripts/build-plugins.sh --test     # also run the plugins' native unit tests
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
    rustup target add wasm32-wasip2 >/dev/null
fi
cargo build --release --target wasm32-wasip2 \
    --manifest-path plugins/Cargo.toml --target-dir plugins/target
if [[ "${1:-}" == "--test" ]]; then
    cargo test --manifest-path plugins/Cargo.toml --target-dir plugins/target
fi
ls -1 plugins/target/wasm32-wasip2/release/*.wasm
