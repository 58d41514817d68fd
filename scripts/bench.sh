#!/usr/bin/env bash
# `make bench`: run the benchmarks in bench/ and print their table.
source "$(dirname "$0")/services.sh"
cd "$ROOT"
shopt -s nullglob
benches=(bench/bench_*.py)
if [ ${#benches[@]} -eq 0 ]; then
  log "No benchmarks yet."
  exit 0
fi
for b in "${benches[@]}"; do "$ROOT/.venv/bin/python" "$b"; done
