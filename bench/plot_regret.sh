#!/usr/bin/env bash
# plot_regret.sh - a PNG of the planner's regret per cell (gnuplot; run
# locally, the GPU machine has no gnuplot).
#
# usage: bench/plot_regret.sh OUT.png REGRET.csv [REGRET.csv...]
#
#   REGRET.csv  from bench_regret (1M and 100M runs may be given together)
#
# One bar per cell (dataset, groups, rows, data location), its height the
# regret = median of the plan the planner chose / the best feasible median
# (log scale; 1 = the best plan was chosen), host-data cells and
# device-data cells in two colours; the dashed line marks 1.25 (a plan a
# quarter slower than the best).
set -euo pipefail

png=${1:?usage: plot_regret.sh OUT.png REGRET.csv [REGRET.csv...]}
shift
[ $# -ge 1 ] || { echo "plot_regret.sh: no CSV given" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "plot_regret.sh: gnuplot not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Per cell: label, host regret, device regret ("-" where not that location).
awk -F, '
  $1 == "dataset" || /^#/ { next }
  {
    key = $1 " " $2 " " $3 " " $4
    if (!(key in seen)) { seen[key] = 1; order[n++] = key; loc[key] = $4
                          lab[key] = $1 "/" $2 "g/" $3 "r" }
    if ($5 != "auto" && $6 == 1 && (!(key in best) || $7 < best[key])) best[key] = $7
    if ($8 == 1 && $6 == 1) chosen[key] = $7
  }
  END {
    for (i = 0; i < n; i++) {
      k = order[i]
      if (!(k in chosen) || !(k in best) || best[k] <= 0) continue
      r = chosen[k] / best[k]
      printf "\"%s\" %s %s\n", lab[k], loc[k] == "host" ? r : "-", loc[k] == "device" ? r : "-"
    }
  }' "$@" > "$tmp/regret.dat"
[ -s "$tmp/regret.dat" ] || { echo "plot_regret.sh: no cell with a chosen plan" >&2; exit 1; }

gnuplot <<GP
set terminal pngcairo size 1600,600 font ",9"
set output "$png"
set title "Planner regret per cell (chosen plan's median / best plan's median)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set logscale y
set yrange [0.8:*]
set ylabel "regret (log)"
set xtics rotate by -60 font ",7"
set datafile missing "-"
set key top left
plot "$tmp/regret.dat" using 2:xtic(1) title "data in host memory", \
     "" using 3 title "data on the device", \
     1.25 with lines dashtype 2 lc rgb "black" title "1.25"
GP
echo "wrote $png"
