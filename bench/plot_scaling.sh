#!/usr/bin/env bash
# plot_scaling.sh - plots bench/results/scaling.csv (from bench_scaling):
# the rate each grouping consumed its input (GB/s) against threads, one line
# per dataset, with the calibrated sequential read bandwidth as the
# reference line, and the parallel efficiency. Needs gnuplot (gnuplot-nox).
# usage: bench/plot_scaling.sh [CSV] [OUT.png]
set -euo pipefail
csv=${1:-bench/results/scaling.csv}
png=${2:-bench/results/scaling.png}
command -v gnuplot >/dev/null || { echo "plot_scaling: gnuplot not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One data file per dataset (dense-1000, sparse-1000000, ...).
awk -F, -v dir="$tmp" 'NR > 1 { f = dir "/" $1 "-" $2 ".dat"; print $4, $9, $11, $12, $3 > f }' "$csv"
awk -F, 'NR > 1 { print $4, $12 }' "$csv" | sort -n -u > "$tmp/bw.dat"
plots=""
eff=""
for f in "$tmp"/*-*.dat; do
  name=$(basename "$f" .dat)
  kernel=$(awk 'NR == 1 { print $5 }' "$f")
  plots="$plots \"$f\" using 1:2 with linespoints title \"$name ($kernel)\","
  eff="$eff \"$f\" using 1:3 with linespoints title \"$name\","
done
gnuplot <<GP
set terminal pngcairo size 1400,560 font ",11"
set output "$png"
set multiplot layout 1,2 title "GROUP BY k, COUNT(*), SUM(v), 100M rows (u32 keys, i32 values), 16-core host"
set xlabel "threads"
set ylabel "input consumed, GB/s (8 B per row / median time)"
set key top left
set grid
plot $plots "$tmp/bw.dat" using 1:2 with lines lw 3 dt 2 lc rgb "black" title "calibrated read bandwidth"
set ylabel "parallel efficiency (speedup / threads)"
set yrange [0:1.2]
set key bottom left
plot $eff 0.8 with lines dt 3 lc rgb "red" title "80% target"
unset multiplot
GP
echo "wrote $png"
