#!/usr/bin/env bash
# Runs fuzz targets one after another, each for SECONDS (default 1800), growing
# corpus/<target> from seeds/<target>; the last lines of each log give the executions and
# any crash (artifacts/<target>/). Usage: fuzz/run.sh [SECONDS] TARGET...
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-1800}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json xml bundle patch search_params)
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== $t: ${seconds}s" >&2
  cargo fuzz run -s none -O "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 || echo "== $t: stopped with $?" >&2
done
