#!/usr/bin/env bash
# plot_grid.sh - PNG plots of the grouping grid and of the DuckDB comparison
# (gnuplot; run locally, the GPU machine has no gnuplot).
#
# usage: bench/plot_grid.sh GRID.csv [DUCKDB.csv] [OUTDIR]
#
#   GRID.csv    from bench_group_grid (may be the concatenation of several
#               runs, e.g. all threads and 1 thread; repeated headers are fine)
#   DUCKDB.csv  from bench/duckdb_compare.py (optional; "-" to skip)
#   OUTDIR      where the PNGs go (default: the directory of GRID.csv)
#
# Writes, per thread count T found in GRID.csv, OUTDIR/grid_tT.png: 2x2 panels
# (one per dataset), x = groups (log), y = median ms (log), one line per
# kernel plus the statistics pass (dashed; once per column, not part of any
# query time). Reference lines, scaled by rows / 100M: the paper's ~250 ms
# (single-threaded, Figure 5) on the 1-thread plot, the host's 8.8 ms
# read floor (800 MB at 90.8 GB/s, ../shared/device/README.md) on the plot
# of the largest thread count. Per thread count in DUCKDB.csv, OUTDIR/
# duckdb_tT.png: per dataset, dqo and DuckDB ms (log, left axis) and the
# ratio DuckDB/dqo (right axis; the 4x target dashed).
set -euo pipefail

grid=${1:?usage: plot_grid.sh GRID.csv [DUCKDB.csv] [OUTDIR]}
duck=${2:--}
outdir=${3:-$(dirname "$grid")}
command -v gnuplot >/dev/null || { echo "plot_grid.sh: gnuplot not found" >&2; exit 1; }
mkdir -p "$outdir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

datasets="sorted-dense sorted-sparse unsorted-dense unsorted-sparse"
kernels_order="hg sphg og sog bsg radix auto stats"

# One data file per (threads, dataset, kernel): "groups median_ms", sorted.
awk -F, -v dir="$tmp" '
  $1 == "rows" { next }
  $11 != "ok" && !($4 == "stats" && $8 != "") { next }
  $8 == "" { next }
  { f = dir "/g_" $6 "_" $2 "_" $4 ".dat"; print $3, $8 >> f; rows[$1] = 1; thr[$6] = 1 }
  END {
    for (r in rows) print r > (dir "/rows")
    for (t in thr) print t > (dir "/threads")
  }' "$grid"
[ -s "$tmp/threads" ] || { echo "plot_grid.sh: no ok rows in $grid" >&2; exit 1; }
for f in "$tmp"/g_*.dat; do sort -n -o "$f" "$f"; done
rows=$(sort -n "$tmp/rows" | tail -1)
if [ "$(wc -l < "$tmp/rows")" -gt 1 ]; then
  echo "plot_grid.sh: several row counts in $grid; reference lines use $rows" >&2
fi
maxt=$(sort -n "$tmp/threads" | tail -1)
scale=$(awk -v r="$rows" 'BEGIN { printf "%.6g", r / 1e8 }')
rowlabel=$(awk -v r="$rows" 'BEGIN { if (r >= 1e6) printf "%gM", r / 1e6; else printf "%g", r }')

color_of() {
  case $1 in
    hg) echo "#1f77b4" ;; sphg) echo "#d62728" ;; og) echo "#2ca02c" ;;
    sog) echo "#9467bd" ;; bsg) echo "#8c564b" ;; radix) echo "#ff7f0e" ;;
    auto) echo "#000000" ;; stats) echo "#7f7f7f" ;; *) echo "#17becf" ;;
  esac
}

for t in $(sort -n "$tmp/threads"); do
  png="$outdir/grid_t$t.png"
  gp="$tmp/grid_t$t.gp"
  {
    echo "set terminal pngcairo size 1400,1100 font ',10'"
    echo "set output '$png'"
    echo "set datafile separator ' '"
    echo "set logscale xy"
    echo "set format x '10^{%L}'"
    echo "set grid"
    echo "set key below horizontal maxcols 5 font ',9'"
    echo "set xlabel 'groups'"
    echo "set ylabel 'median ms'"
    ref=""
    [ "$t" = 1 ] && ref=" (dotted: 250 ms of the paper, 1 thread, x $scale for $rowlabel rows)"
    [ "$t" = "$maxt" ] && [ "$t" != 1 ] && ref=" (dotted: 8.8 ms read floor of 16 threads, x $scale for $rowlabel rows)"
    echo "set multiplot layout 2,2 title 'SELECT k, COUNT(*), SUM(v) GROUP BY k: $rowlabel rows, $t thread(s)$ref; stats pass = once per column, not in query times'"
    for ds in $datasets; do
      plots=()
      for k in $kernels_order; do
        f="$tmp/g_${t}_${ds}_${k}.dat"
        [ -s "$f" ] || continue
        c=$(color_of "$k")
        if [ "$k" = stats ]; then
          plots+=("'$f' using 1:2 with linespoints dt 2 lc rgb '$c' pt 1 title 'stats pass'")
        elif [ "$k" = auto ]; then
          plots+=("'$f' using 1:2 with linespoints lw 2 lc rgb '$c' pt 6 ps 1.5 title 'auto'")
        else
          plots+=("'$f' using 1:2 with linespoints lc rgb '$c' pt 7 title '$k'")
        fi
      done
      # Kernels not in the usual list (new ones) still get a line.
      for f in "$tmp"/g_"${t}"_"${ds}"_*.dat; do
        [ -s "$f" ] || continue
        k=${f##*_"${ds}"_}; k=${k%.dat}
        case " $kernels_order " in *" $k "*) continue ;; esac
        plots+=("'$f' using 1:2 with linespoints title '$k'")
      done
      if [ "$t" = 1 ] && [ ${#plots[@]} -gt 0 ]; then
        plots+=("$(awk -v s="$scale" 'BEGIN { printf "%g", 250 * s }') with lines dt 3 lw 2 lc rgb '#444444' title 'paper 250 ms'")
      fi
      if [ "$t" = "$maxt" ] && [ "$t" != 1 ] && [ ${#plots[@]} -gt 0 ]; then
        plots+=("$(awk -v s="$scale" 'BEGIN { printf "%g", 8.8 * s }') with lines dt 3 lw 2 lc rgb '#444444' title 'read floor 8.8 ms'")
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
done

if [ "$duck" != "-" ] && [ -s "$duck" ]; then
  awk -F, -v dir="$tmp" '
    $1 == "rows" || /^#/ { next }
    $9 != "ok" { next }
    { print $3, $5, $6, $7 >> (dir "/d_" $4 "_" $2 ".dat"); thr[$4] = 1; rows[$1] = 1 }
    END { for (t in thr) print t > (dir "/dthreads"); for (r in rows) print r > (dir "/drows") }' "$duck"
  if [ ! -s "$tmp/dthreads" ]; then
    echo "plot_grid.sh: no ok rows in $duck" >&2
    exit 1
  fi
  for f in "$tmp"/d_*.dat; do sort -n -o "$f" "$f"; done
  drows=$(sort -n "$tmp/drows" | tail -1)
  drowlabel=$(awk -v r="$drows" 'BEGIN { if (r >= 1e6) printf "%gM", r / 1e6; else printf "%g", r }')
  for t in $(sort -n "$tmp/dthreads"); do
    png="$outdir/duckdb_t$t.png"
    gp="$tmp/duck_t$t.gp"
    {
      echo "set terminal pngcairo size 1400,1100 font ',10'"
      echo "set output '$png'"
      echo "set logscale x"
      echo "set logscale y"
      echo "set logscale y2"
      echo "set format x '10^{%L}'"
      echo "set ytics nomirror"
      echo "set y2tics"
      echo "set grid"
      echo "set key below horizontal maxcols 5 font ',9'"
      echo "set xlabel 'groups'"
      echo "set ylabel 'median ms'"
      echo "set y2label 'DuckDB ms / dqo ms'"
      echo "set multiplot layout 2,2 title 'dqo vs DuckDB, SELECT k, COUNT(*), SUM(v) GROUP BY k: $drowlabel rows, $t thread(s)'"
      for ds in $datasets; do
        f="$tmp/d_${t}_${ds}.dat"
        echo "set title '$ds'"
        if [ -s "$f" ]; then
          echo "plot '$f' using 1:2 with linespoints lc rgb '#d62728' pt 7 title 'dqo (auto)' axes x1y1, \
'' using 1:3 with linespoints lc rgb '#1f77b4' pt 5 title 'DuckDB' axes x1y1, \
'' using 1:4 with linespoints dt 2 lc rgb '#2ca02c' pt 4 title 'ratio (right axis)' axes x1y2, \
4 with lines dt 3 lc rgb '#2ca02c' title 'ratio target 4x' axes x1y2"
        else
          echo "unset key; unset y2tics; unset logscale y2; set label 1 'no data' at graph 0.45,0.5"
          echo "plot [1:10][1:10] NaN notitle"
          echo "unset label 1; set key; set y2tics; set logscale y2"
        fi
      done
      echo "unset multiplot"
    } > "$gp"
    gnuplot "$gp"
    echo "wrote $png"
  done
fi
