#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 60) on its corpus,
# one at a time, then minimises the corpus. Needs nightly and cargo-fuzz.
#   FUZZ_SECONDS=300 scripts/fuzz.sh            # all targets
#   scripts/fuzz.sh batch_split                 # some targets
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${seconds}s"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -jobs=1 -max_total_time="$seconds" -rss_limit_mb=2048
  cargo +nightly fuzz cmin "$t" "corpus/$t"
done
