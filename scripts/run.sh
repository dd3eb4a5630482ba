#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs missing packages, builds
# dqo (Release), generates the paper's dataset (10M rows, 1000 dense unsorted
# groups) and runs SELECT k, COUNT(*), SUM(v), AVG(v) GROUP BY k through the
# dqo CLI, printing the key statistics, the kernel that ran and why, and the
# first result rows.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
./build/dqo gen --rows 10M --groups 1000 --seed 42 --out "$data/paper"
./build/dqo group "$data/paper" --by k --agg 'count(*),sum(v),avg(v)' --sort --limit 10 --time
