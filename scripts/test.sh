#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs missing
# packages, builds with warnings as errors and runs every test; builds again
# with AddressSanitizer + UndefinedBehaviorSanitizer and runs every test
# there; then the benchmark smoke run at 1M rows (checksums checked).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
echo "== release build (-Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDQO_WERROR=ON >/dev/null
cmake --build build -j"$jobs" >/dev/null
(cd build && ctest --output-on-failure -j"$jobs")
echo "== sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDQO_SANITIZE=ON -DDQO_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
# LeakSanitizer needs ptrace-free operation; OpenMP's thread pool is not a leak.
# tests/lsan.supp: allocations PoCL and LLVM keep after compiling a kernel.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 \
    LSAN_OPTIONS="suppressions=$PWD/../tests/lsan.supp" \
    ctest --output-on-failure -j"$jobs")
echo "== benchmark smoke run (1M rows)"
if python3 -c 'import duckdb, numpy' 2>/dev/null || python3 -m pip install -q -r bench/requirements.txt; then :; else
  echo "note: could not pip-install bench/requirements.txt; the DuckDB comparison is skipped" >&2
fi
bash bench/smoke.sh build
echo "== all tests passed"
