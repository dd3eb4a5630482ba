#!/usr/bin/env bash
# plot_gpu.sh - PNG of the OpenCL grouping against PyTorch (gnuplot; run
# locally when the device machine has no gnuplot, as plot_grid.sh).
#
# usage: bench/plot_gpu.sh CL_GROUP.csv [TORCH_GROUP.csv] [OUTDIR]
#
#   CL_GROUP.csv     from bench_cl_group (bench/cl_group.c)
#   TORCH_GROUP.csv  from bench/torch_group.py (optional; "-" to skip)
#   OUTDIR           where gpu_compare.png goes (default: CL_GROUP.csv's dir)
#
# One panel per dataset: x = groups (log), y = median ms (log). Lines: dqo per
# kernel with the input resident on the device (device_ms: result ready in
# device memory; solid), dqo host-memory runs (wall ms of the whole call;
# dashed) with the pinned transfer of k+v (grey dashed), torch per method
# (torch.cuda.synchronize around it; dotted). Reference lines, scaled by
# rows / 100M: the H100's 0.27 ms read floor (800 MB at ~2950 GB/s) and the
# 0.4 ms direct-kernel target up to 65,536 groups (dense panels); on sparse
# panels the 3 ms target at 10M groups (a star).
set -euo pipefail

dqo=${1:?usage: plot_gpu.sh CL_GROUP.csv [TORCH_GROUP.csv] [OUTDIR]}
torch=${2:--}
outdir=${3:-$(dirname "$dqo")}
command -v gnuplot >/dev/null || { echo "plot_gpu.sh: gnuplot not found" >&2; exit 1; }
mkdir -p "$outdir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# dqo: r_<dataset>_<kernel>.dat (groups device_ms), h_<dataset>_<kernel>.dat
# (groups wall_ms), p_<dataset>.dat (groups pinned_ms).
awk -F, -v dir="$tmp" '
  /^#/ || $1 == "rows" { next }
  $12 != "ok" { next }
  $5 == "resident" && $7 != "" { print $3, $7 >> (dir "/r_" $2 "_" $4 ".dat") }
  $5 == "host" && $6 != "" { print $3, $6 >> (dir "/h_" $2 "_" $4 ".dat") }
  $5 == "host" && $9 != "" { print $3, $9 >> (dir "/p_" $2 ".dat") }
  { rows[$1] = 1; ds[$2] = 1 }
  END {
    for (r in rows) print r > (dir "/rows")
    for (d in ds) print d > (dir "/datasets")
  }' "$dqo"
if [ "$torch" != "-" ] && [ -s "$torch" ]; then
  awk -F, -v dir="$tmp" '
    /^#/ || $1 == "rows" { next }
    $7 != "ok" || $5 == "" { next }
    { print $3, $5 >> (dir "/t_" $2 "_" $4 ".dat"); rows[$1] = 1; ds[$2] = 1 }
    END {
      for (r in rows) print r >> (dir "/rows")
      for (d in ds) print d >> (dir "/datasets")
    }' "$torch"
fi
[ -s "$tmp/datasets" ] || { echo "plot_gpu.sh: no ok rows in $dqo ${torch#-}" >&2; exit 1; }
for f in "$tmp"/*.dat; do
  [ -e "$f" ] || continue
  # The same point repeated (p_: once per host kernel): keep the first.
  sort -n -k1,1 -u -o "$f" "$f"
done
rows=$(sort -n -u "$tmp/rows" | tail -1)
if [ "$(sort -u "$tmp/rows" | wc -l)" -gt 1 ]; then
  echo "plot_gpu.sh: several row counts; reference lines use $rows" >&2
fi
scale=$(awk -v r="$rows" 'BEGIN { printf "%.6g", r / 1e8 }')
rowlabel=$(awk -v r="$rows" 'BEGIN { if (r >= 1e6) printf "%gM", r / 1e6; else printf "%g", r }')
floor=$(awk -v s="$scale" 'BEGIN { printf "%.6g", 0.27 * s }')
target=$(awk -v s="$scale" 'BEGIN { printf "%.6g", 0.4 * s }')
sparse_t=$(awk -v s="$scale" 'BEGIN { printf "%.6g", 3 * s }')
echo "10000000 $sparse_t" > "$tmp/sparse_target"

datasets=""
for d in unsorted-dense unsorted-sparse sorted-dense sorted-sparse; do
  grep -qx "$d" "$tmp/datasets" && datasets="$datasets $d"
done
n=$(echo "$datasets" | wc -w)
layout="1,$n"
size="$((700 * n)),650"
if [ "$n" -gt 2 ]; then layout="2,2"; size="1400,1100"; fi

color_of() {
  case $1 in
    hg) echo "#1f77b4" ;; sphg) echo "#d62728" ;; og) echo "#2ca02c" ;;
    sog) echo "#9467bd" ;; bsg) echo "#8c564b" ;; radix) echo "#ff7f0e" ;;
    bincount) echo "#17becf" ;; unique) echo "#000000" ;; *) echo "#bcbd22" ;;
  esac
}

png="$outdir/gpu_compare.png"
gp="$tmp/gpu.gp"
{
  echo "set terminal pngcairo size $size font ',10'"
  echo "set output '$png'"
  echo "set datafile separator ' '"
  echo "set logscale xy"
  echo "set format x '10^{%L}'"
  echo "set grid"
  echo "set key below horizontal maxcols 4 font ',9'"
  echo "set xlabel 'groups'"
  echo "set ylabel 'median ms'"
  echo "set multiplot layout $layout title 'SELECT k, COUNT(*), SUM(v) GROUP BY k on the GPU: $rowlabel rows; dqo device ms (input resident), dqo host-memory wall ms, torch ms (x $scale for limits)'"
  for ds in $datasets; do
    plots=()
    for f in "$tmp"/r_"$ds"_*.dat; do
      [ -s "$f" ] || continue
      k=${f##*/r_"$ds"_}; k=${k%.dat}
      plots+=("'$f' using 1:2 with linespoints lw 2 lc rgb '$(color_of "$k")' pt 7 title 'dqo $k (resident, device ms)'")
    done
    for f in "$tmp"/h_"$ds"_*.dat; do
      [ -s "$f" ] || continue
      k=${f##*/h_"$ds"_}; k=${k%.dat}
      plots+=("'$f' using 1:2 with linespoints dt 2 lc rgb '$(color_of "$k")' pt 6 title 'dqo $k (host memory, wall ms)'")
    done
    if [ -s "$tmp/p_$ds.dat" ]; then
      plots+=("'$tmp/p_$ds.dat' using 1:2 with lines dt 2 lw 2 lc rgb '#7f7f7f' title 'pinned copy of k+v'")
    fi
    for f in "$tmp"/t_"$ds"_*.dat; do
      [ -s "$f" ] || continue
      m=${f##*/t_"$ds"_}; m=${m%.dat}
      plots+=("'$f' using 1:2 with linespoints dt 3 lw 2 lc rgb '$(color_of "$m")' pt 5 title 'torch $m'")
    done
    if [ ${#plots[@]} -gt 0 ]; then
      plots+=("$floor with lines dt 3 lw 2 lc rgb '#444444' title 'read floor $floor ms'")
      case $ds in
        *dense) plots+=("(x <= 65536 ? $target : 1/0) with lines dt 4 lw 2 lc rgb '#d62728' title 'direct target $target ms (to 65,536 groups)'") ;;
        *sparse) plots+=("'$tmp/sparse_target' using 1:2 with points pt 3 ps 3 lw 2 lc rgb '#ff7f0e' title '10M sparse target $sparse_t ms'") ;;
      esac
    fi
    echo "set title '$ds'"
    if [ ${#plots[@]} -eq 0 ]; then
      echo "unset key; set label 1 'no data' at graph 0.45,0.5; plot [1:10][1:10] NaN notitle; unset label 1; set key"
    else
      (IFS=','; echo "plot ${plots[*]}")
    fi
  done
  echo "unset multiplot"
} > "$gp"
gnuplot "$gp"
echo "wrote $png"
