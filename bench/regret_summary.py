#!/usr/bin/env python3
"""regret_summary.py - the plan-quality table from bench_regret CSVs.

usage: bench/regret_summary.py OUT.md CSV [CSV...]

Per cell (dataset, groups, rows, location): the best feasible plan and its
median, the plan the planner chose (the row with chosen = 1, else the
auto row's note), the regret = chosen plan's median / best median, and
regret_run = the auto run's median / best median (it includes planning).
Then the median and worst regret, overall and per data location. Cells
without a chosen feasible plan are listed apart. Standard library only.
"""
import csv
import statistics
import sys
from collections import OrderedDict


def load(paths):
    cells = OrderedDict()
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(line for line in f if not line.startswith("#")):
                key = (row["dataset"], int(row["groups"]), int(row["rows"]), row["location"])
                cells.setdefault(key, []).append(row)
    return cells


def cell_regret(rows):
    plans = [r for r in rows if r["plan"] != "auto" and r["feasible"] == "1"]
    auto = next((r for r in rows if r["plan"] == "auto"), None)
    if not plans:
        return None, "no feasible plan"
    best = min(plans, key=lambda r: float(r["median_ms"]))
    chosen = next((r for r in plans if r["chosen"] == "1"), None)
    if auto is None or auto["feasible"] != "1":
        return None, "auto failed: " + (auto["note"] if auto else "no auto row")
    b = float(best["median_ms"])
    run = float(auto["median_ms"]) / b if b > 0 else float("nan")
    reg = float(chosen["median_ms"]) / b if chosen and b > 0 else run
    name = chosen["plan"] if chosen else auto["note"].split(":")[0].replace("chose ", "")
    return dict(best=best["plan"], best_ms=b, chose=name, regret=reg, regret_run=run), None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cells = load(sys.argv[2:])
    out = ["# Plan regret (bench_regret)", "",
           "| dataset | groups | rows | data | best | best ms | chosen | regret | regret (auto run) |",
           "|---|---:|---:|---|---|---:|---|---:|---:|"]
    regrets, by_loc, missing = [], {}, []
    for key, rows in cells.items():
        r, why = cell_regret(rows)
        if r is None:
            missing.append("%s %d groups %d rows %s: %s" % (key + (why,)))
            continue
        regrets.append(r["regret"])
        by_loc.setdefault(key[3], []).append(r["regret"])
        out.append("| %s | %d | %d | %s | %s | %.2f | %s | %.2f | %.2f |" % (
            key + (r["best"], r["best_ms"], r["chose"], r["regret"], r["regret_run"])))
    out.append("")
    if regrets:
        out.append("Median regret %.3f, worst %.3f over %d cells." % (
            statistics.median(regrets), max(regrets), len(regrets)))
        for loc, v in by_loc.items():
            out.append("- data on %s: median %.3f, worst %.3f (%d cells)" % (
                loc, statistics.median(v), max(v), len(v)))
    for m in missing:
        out.append("- no regret: " + m)
    text = "\n".join(out) + "\n"
    with open(sys.argv[1], "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
