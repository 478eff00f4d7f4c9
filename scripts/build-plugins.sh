#!/usr/bin/env bash
# Builds the example plugins and test fixtures in plugins/ as WebAssembly
# components (wasm32-wasip2, release) into plugins/target/wasm32-wasip2/release/.
# The gateway's unit tests and the quickstart load them from there.
# The Python examples (plugins/*-py/) are built with the Python SDK
# (sdk-guest/python): componentize-py, pinned, is installed into .venv.
#
#   scripts/build-plugins.sh            # build
#   scripts/build-plugins.sh --test     # also run the plugins' native unit tests
#   SWITCHYARD_SKIP_PYTHON_PLUGINS=1    # leave the Python ones out
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

out=plugins/target/wasm32-wasip2/release
if [[ -z "${SWITCHYARD_SKIP_PYTHON_PLUGINS:-}" ]]; then
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r sdk-guest/python/requirements.txt
    for dir in plugins/*-py/; do
        name=$(basename "$dir")
        module=$(find "$dir" -maxdepth 1 -name '*.py' ! -name 'test_*' ! -name conftest.py | head -1)
        wasm="$out/${name//-/_}.wasm"
        # componentize-py takes 10-20 s: skip it when nothing it reads changed.
        if [[ -f "$wasm" ]] && [[ -z "$(find "$dir" sdk-guest/python/switchyard_sdk schemas/wit -newer "$wasm" -name '*.py' -o -newer "$wasm" -name '*.wit' | head -1)" ]]; then
            continue
        fi
        .venv/bin/python sdk-guest/python/switchyard_sdk/build.py "$module" -o "$wasm"
    done
    if [[ "${1:-}" == "--test" ]]; then
        .venv/bin/python -m pytest -q -p no:cacheprovider sdk-guest/python/tests plugins/*-py/
    fi
fi
ls -1 "$out"/*.wasm
