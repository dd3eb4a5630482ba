#!/usr/bin/env bash
# gpu_compare.sh - the OpenCL grouping (bench_cl_group) against PyTorch
# (bench/torch_group.py) on the same GPU and the same data, then the joined
# CSV, the markdown summary and (when gnuplot is there) the plot.
#
# usage: bench/gpu_compare.sh [options]
#   --rows N            rows per dataset (100M)
#   --groups LIST       group counts (10,100,1000,10000,65536,100000,1000000,10000000)
#   --datasets LIST     (unsorted-dense,unsorted-sparse)
#   --reps R            timed runs after one warm-up, both sides (5)
#   --device D          bench_cl_group --device: N, gpu or auto (gpu)
#   --kernels LIST      bench_cl_group --kernels (sphg,hg,radix,sog)
#   --budget-seconds S  each of bench_cl_group and torch_group.py records the
#                       points left after S seconds as skipped (0 = none)
#   --torch-device T    torch_group.py --device (cuda; cpu only to try the
#                       scripts without a GPU)
#   --build DIR         build directory with bench_cl_group and libdqo.so (build)
#   --out DIR           output directory (BUILD/gpu-compare)
#
# Writes into --out: cl_group.csv, torch_group.csv, gpu_compare.csv (one row
# per point: the fastest resident dqo kernel against the fastest torch
# method; see bench/summarise_gpu.py), gpu_summary.md, gpu_compare.png
# (bench/plot_gpu.sh, only when gnuplot exists), cl_group.log and
# torch_group.log (progress). Both generators use dqo_gen_grouping with seed
# 42, so the checksums of both sides must agree (gpu_compare.csv check).
# Exit status: 0 when both benches and the join found no wrong answer.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rows=100M
groups=10,100,1000,10000,65536,100000,1000000,10000000
datasets=unsorted-dense,unsorted-sparse
reps=5
device=gpu
kernels=sphg,hg,radix,sog
budget=0
torch_device=cuda
build=$here/build
out=

usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --rows) rows=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --datasets) datasets=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --kernels) kernels=$2; shift 2 ;;
    --budget-seconds) budget=$2; shift 2 ;;
    --torch-device) torch_device=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "gpu_compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for f in "$build/bench_cl_group" "$build/libdqo.so"; do
  [ -e "$f" ] || { echo "gpu_compare.sh: $f missing (build the dqo and bench_cl_group targets)" >&2; exit 2; }
done
[ -n "$out" ] || out=$build/gpu-compare
mkdir -p "$out"
rc=0

echo "== bench_cl_group --rows $rows --groups $groups --datasets $datasets --reps $reps --device $device" >&2
"$build/bench_cl_group" --rows "$rows" --groups "$groups" --datasets "$datasets" \
  --reps "$reps" --device "$device" --kernels "$kernels" --budget-seconds "$budget" \
  --csv "$out/cl_group.csv" 2>&1 > /dev/null | tee "$out/cl_group.log" >&2
st=${PIPESTATUS[0]}
[ "$st" = 0 ] || { echo "gpu_compare.sh: bench_cl_group exit status $st" >&2; rc=1; }

echo "== torch_group.py --rows $rows --groups $groups --datasets $datasets --reps $reps" >&2
python3 "$here/bench/torch_group.py" --lib "$build/libdqo.so" --rows "$rows" \
  --groups "$groups" --datasets "$datasets" --reps "$reps" --budget-seconds "$budget" \
  --device "$torch_device" --out "$out/torch_group.csv" 2>&1 > /dev/null | tee "$out/torch_group.log" >&2
st=${PIPESTATUS[0]}
[ "$st" = 0 ] || { echo "gpu_compare.sh: torch_group.py exit status $st" >&2; rc=1; }

echo "== join and summary" >&2
if [ -s "$out/cl_group.csv" ]; then
  targs=()
  [ -s "$out/torch_group.csv" ] && targs=(--torch "$out/torch_group.csv")
  python3 "$here/bench/summarise_gpu.py" --dqo "$out/cl_group.csv" "${targs[@]}" \
    --csv "$out/gpu_compare.csv" --md "$out/gpu_summary.md" || rc=1
  [ -s "$out/gpu_compare.csv" ] && column -s, -t < "$out/gpu_compare.csv" >&2 2>/dev/null
  if command -v gnuplot >/dev/null; then
    tcsv=-
    [ -s "$out/torch_group.csv" ] && tcsv=$out/torch_group.csv
    bash "$here/bench/plot_gpu.sh" "$out/cl_group.csv" "$tcsv" "$out" || true
  else
    echo "gpu_compare.sh: no gnuplot here; plot later with bench/plot_gpu.sh $out/cl_group.csv $out/torch_group.csv" >&2
  fi
else
  echo "gpu_compare.sh: no cl_group.csv to join" >&2
  rc=1
fi
echo "gpu_compare.sh: exit status $rc; outputs in $out" >&2
exit "$rc"
