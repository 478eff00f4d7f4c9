#!/usr/bin/env bash
# Builds the example plugins and test fixtures in plugins/ as WebAssembly
# components (wasm32-wasip2, release) into plugins/target/wasm32-wasip2/release/.
# The gateway's unit tests and the quickstart load them from there.
# The Python examples (plugins/*-py/) are built with the Python SDK
# (sdk-guest/python): componentize-py, pinned, is installed into .venv.
# The TypeScript examples (plugins/*-ts/) are built with the TypeScript SDK
# (sdk-guest/typescript): its pinned npm tools (typescript, componentize-js)
# are installed by `npm ci` into its node_modules, kept between runs.
#
#   scripts/build-plugins.sh            # build
#   scripts/build-plugins.sh --test     # also run the plugins' native unit tests
#   SWITCHYARD_SKIP_PYTHON_PLUGINS=1    # leave the Python ones out
#   SWITCHYARD_SKIP_TS_PLUGINS=1        # leave the TypeScript ones out
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

# `npm ci` wipes node_modules and installs again (15-40 s): only when the
# lockfile changed since the last one (npm keeps its own copy in
# node_modules/.package-lock.json), so a rerun costs nothing.
npm_ci() {
    if [[ ! -f "$1/node_modules/.package-lock.json" ]] || [[ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]]; then
        (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}
if [[ -z "${SWITCHYARD_SKIP_TS_PLUGINS:-}" ]]; then
    sdk=sdk-guest/typescript
    npm_ci "$sdk"
    node "$sdk/scripts/build-sdk.mjs"
    for dir in plugins/*-ts/; do
        dir=${dir%/}
        name=$(basename "$dir")
        npm_ci "$dir"
        module=$(find "$dir/src" -maxdepth 1 -name '*.ts' ! -name '*.test.ts' | head -1)
        wasm="$out/${name//-/_}.wasm"
        # componentize-js takes 20-60 s: skip it when nothing it reads changed.
        if [[ -f "$wasm" ]] && [[ -z "$(find "$dir/src" "$sdk/src" "$sdk/build.mjs" schemas/wit -type f -newer "$wasm" | head -1)" ]]; then
            continue
        fi
        node "$sdk/build.mjs" "$module" -o "$wasm"
    done
    if [[ "${1:-}" == "--test" ]]; then
        # The README's example, built as a new author would: its own folder,
        # outside the repository, no package.json.
        readme=$(mktemp -d)
        python3 - "$sdk/README.md" "$readme/by_type.ts" <<'PY'
import re, sys
code = re.search(r"```ts\n(.*?)```", open(sys.argv[1]).read(), re.S)
open(sys.argv[2], "w").write(code.group(1))
PY
        node "$sdk/build.mjs" "$readme/by_type.ts" -o "$readme/by_type.wasm" >/dev/null
        rm -rf "$readme"
        node --test "$sdk"/dist/test/
        for dir in plugins/*-ts/; do
            (cd "$dir" && npm test --silent)
        done
    fi
fi
ls -1 "$out"/*.wasm
