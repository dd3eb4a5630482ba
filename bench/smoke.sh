#!/usr/bin/env bash
# smoke.sh - the CI smoke run of the benchmarks (about a minute on 2 cores).
#
# usage: bench/smoke.sh BUILD_DIR
#
# Runs bench_group_grid at 1M rows (groups 10, 1000, 100000; the four
# datasets; every kernel; threads 1 and 2; reps 1) and fails on any check
# failure or error; then, when python3 can import duckdb and numpy, the
# DuckDB comparison at 1M rows (same groups, 2 threads, reps 1), which also
# fails on a disagreement. CSVs and logs go to BUILD_DIR/smoke/.
# The timings mean nothing at this size; the checks are the point.
set -uo pipefail

build=${1:?usage: smoke.sh BUILD_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
grid="$build/bench_group_grid"
lib="$build/libdqo.so"
outdir="$build/smoke"
mkdir -p "$outdir"
[ -x "$grid" ] || { echo "smoke.sh: $grid not built" >&2; exit 1; }

start=$SECONDS
status=0
echo "smoke: bench_group_grid at 1M rows" >&2
"$grid" --rows 1M --groups 10,1000,100000 \
  --datasets sorted-dense,sorted-sparse,unsorted-dense,unsorted-sparse \
  --kernels hg,sphg,og,sog,bsg,radix,auto --threads 1,2 --reps 1 \
  --max-seconds 2 --out "$outdir/grid.csv" > "$outdir/grid.stdout" 2> "$outdir/grid.log"
rc=$?
ok=$(awk -F, '$11 == "ok"' "$outdir/grid.csv" | wc -l)
uns=$(awk -F, '$11 == "unsupported"' "$outdir/grid.csv" | wc -l)
bad=$(awk -F, '$11 == "FAIL" || $11 == "ERROR"' "$outdir/grid.csv" | wc -l)
echo "smoke: grid exit status $rc: $ok ok, $uns unsupported, $bad failed" \
     "($((SECONDS - start)) s)" >&2
if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ] || [ "$ok" -eq 0 ]; then
  echo "smoke: FAILED grid points:" >&2
  awk -F, '$11 != "ok" && $11 != "unsupported" && $11 != "n/a" && $1 != "rows"' \
    "$outdir/grid.csv" >&2
  tail -20 "$outdir/grid.log" >&2
  status=1
fi

if python3 -c 'import duckdb, numpy' 2>/dev/null; then
  echo "smoke: DuckDB comparison at 1M rows" >&2
  if [ ! -f "$lib" ]; then
    echo "smoke: $lib not built" >&2
    status=1
  elif ! python3 "$here/duckdb_compare.py" --lib "$lib" --rows 1M \
          --groups 10,1000,100000 --threads 2 --reps 1 \
          --out "$outdir/duckdb.csv" > "$outdir/duckdb.stdout" 2> "$outdir/duckdb.log"; then
    echo "smoke: DuckDB comparison FAILED:" >&2
    cat "$outdir/duckdb.stdout" >&2
    tail -20 "$outdir/duckdb.log" >&2
    status=1
  else
    echo "smoke: DuckDB comparison ok ($(grep -c ',ok$' "$outdir/duckdb.csv") points)" >&2
  fi
else
  echo "smoke: SKIPPED the DuckDB comparison: python3 cannot import duckdb and numpy" >&2
fi
echo "smoke: $([ $status -eq 0 ] && echo PASSED || echo FAILED) in $((SECONDS - start)) s;" \
     "CSVs in $outdir" >&2
exit $status
