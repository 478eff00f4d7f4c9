#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 60) on its corpus,
# one at a time, then minimises the corpus. Needs nightly and cargo-fuzz.
#   FUZZ_SECONDS=300 scripts/fuzz.sh            # all targets
#   scripts/fuzz.sh batch_split                 # some targets
# A target that finds a crash (or an input slower than 20 s) leaves it in
# fuzz/artifacts/<target>/; the others still run, and the script fails at
# the end naming the targets that found something. Reproduce one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build || exit 1
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${seconds}s"
  if ! cargo +nightly fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1; then
    failed+=("$t")
  fi
  cargo +nightly fuzz cmin "$t" "corpus/$t" || failed+=("$t (cmin)")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "found something: ${failed[*]} (see fuzz/artifacts/)" >&2
  exit 1
fi
echo "no crashes in: ${targets[*]}"
