#!/usr/bin/env bash
# run_device.sh - the benchmark run on the GPU machine's 16-core host.
#
# usage: bench/run_device.sh OUTDIR PHASE
#
#   OUTDIR  where every CSV and log goes (on the device machine: $OUT)
#   PHASE   one of (each fits in one 10-minute device command):
#     grid-all   build, then the Figure 5 grid at 100M rows on every core,
#                7 kernels, reps 5 (fewer once a point's reps took 2 s); a
#                kernel whose median passed 5 s is skipped at larger group
#                counts of that dataset                       (about 6-7 min)
#     grid-1     build, then the same grid on 1 thread, reps 3, at most 2 s
#                of reps per point (a warm-up over 2 s is the only sample); a
#                kernel whose median passed 3 s is skipped at larger group
#                counts of that dataset (the CSV note says so); whatever is
#                left when the phase nears 9 minutes is recorded as skipped
#                                                             (about 5-6 min)
#     grid-1a    grid-1 on the two sorted datasets only       (about 3 min)
#     grid-1b    grid-1 on the two unsorted datasets only     (about 3 min)
#                (use grid-1a + grid-1b instead of grid-1 when grid-1 left
#                 points skipped for the time budget)
#     duckdb     build, then bench/duckdb_compare.py on every core, reps 5
#                                                             (about 3-4 min)
#     smoke      build, then bench/smoke.sh (1M rows)         (about 1 min)
#     cl-tests   build with tests, run the OpenCL grouping, runtime, binary
#                cache and device CLI tests on the first OpenCL device (the
#                GPU on the lent machine)                     (about 2 min)
#     topology   build with tests, run the topology, placement, OpenCL and
#                calibration tests (PoCL and the GPU), `dqo devices`, a
#                timed `dqo calibrate` and `dqo calibrate --quick`, then
#                bench_scaling (threads 1..all, 100M rows) against the
#                calibrated bandwidth                         (about 5 min)
#     gpu        build, then bench/gpu_compare.sh: bench_cl_group (the OpenCL
#                grouping on the first GPU, input resident and in host
#                memory, against the pinned transfer) and bench/torch_group.py
#                (PyTorch bincount / unique on the same data), unsorted dense
#                and sparse, 8 group counts, reps 5; joined into
#                gpu_compare.csv and gpu_summary.md, all packed into
#                gpu-results.tar.gz (estimate: 2-4 min; each side stops
#                starting new points before the phase nears 9 minutes)
#     regret     build, `dqo calibrate` (full, into OUTDIR/profile.txt: the
#                planner's choices need it), then bench_regret (every
#                grouping plan on cpu and the first GPU against the planner's
#                choice) at 1M rows, then at 100M rows with --max-seconds set
#                to what is left of the phase (the cells left are listed as
#                skipped); regret_summary.py -> regret.md. Plot locally with
#                bench/plot_regret.sh                         (about 9 min)
#     fig7       build, then bench_fig7 (the DQO paper's Figure 7: join +
#                group by, DQO against SQO on the CPU) at scale 100, then at
#                scale 1000 if it ends before the phase nears 9 minutes
#                (else the scale-100 results stand)           (about 3-6 min)
#
# Every phase writes OUTDIR/machine.txt (lscpu, memory, compiler, versions)
# and OUTDIR/<phase>.log (everything printed), and its CSV:
# grid_all.csv, grid_1.csv (grid_1a.csv, grid_1b.csv), duckdb.csv; gpu
# writes gpu-results.tar.gz (see bench/gpu_compare.sh for its files).
# Environment: ROWS (default 100M) to try the phases at a smaller size;
# RUN_DEVICE_NO_SETUP=1 to skip sourcing .device/setup.sh; GPU_DEVICE (gpu)
# the OpenCL device of the gpu phase (N, gpu or auto; 0 tries it on PoCL).
set -uo pipefail

out=${1:?usage: run_device.sh OUTDIR PHASE}
phase=${2:?usage: run_device.sh OUTDIR PHASE (grid-all|grid-1|grid-1a|grid-1b|duckdb|smoke|topology|gpu|cl-tests|regret|fig7)}
rows=${ROWS:-100M}
start=$SECONDS
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here" || exit 2
mkdir -p "$out"
log="$out/${phase}.log"
: > "$log"
say() { echo "[run_device $(date +%T) +$((SECONDS - start))s] $*" | tee -a "$log" >&2; }

case $phase in
  grid-all|grid-1|grid-1a|grid-1b|duckdb|smoke|topology|gpu|cl-tests|regret|fig7) ;;
  *) echo "unknown phase '$phase'" >&2; exit 2 ;;
esac

# Toolchain and libraries carried in .device (hwloc, OpenCL headers, ...).
# (RUN_DEVICE_NO_SETUP=1 skips it, to try the script on a development box.)
if [ -f .device/setup.sh ] && [ -z "${RUN_DEVICE_NO_SETUP:-}" ]; then
  # shellcheck disable=SC1091
  source .device/setup.sh
  # hwloc's PCI and OpenCL plugins (libhwloc-plugins, carried in
  # .device/debs) show the GPU as an OS device with its PCI bus id.
  if [ -d /tmp/pfx/usr/lib/x86_64-linux-gnu/hwloc ]; then
    export HWLOC_PLUGINS_PATH=/tmp/pfx/usr/lib/x86_64-linux-gnu/hwloc
  fi
fi

{
  echo "# phase $phase, $(date -u +%FT%TZ), host $(hostname)"
  lscpu
  echo
  free -g
  echo
  gcc --version | head -1
  cmake --version | head -1
  python3 --version
  echo "nproc $(nproc)"
  env | grep -E '^(OMP_|GOMP_|DQO_)' || true
  git -C "$here" rev-parse HEAD 2>/dev/null || true
  git -C "$here" status --short 2>/dev/null | head -20 || true
} > "$out/machine.txt" 2>&1

say "building Release into build-dev"
tests=OFF
targets="dqo bench_group_grid dqo_cli"
if [ "$phase" = topology ] || [ "$phase" = cl-tests ]; then
  tests=ON
  targets="all"
fi
[ "$phase" = gpu ] && targets="dqo bench_cl_group dqo_cli"
[ "$phase" = regret ] && targets="dqo bench_regret dqo_cli"
[ "$phase" = fig7 ] && targets="dqo bench_fig7 dqo_cli"
# shellcheck disable=SC2086
if ! { cmake -B build-dev -DCMAKE_BUILD_TYPE=Release -DDQO_BUILD_TESTS=$tests &&
       cmake --build build-dev -j"$(nproc)" --target $targets; } \
       >> "$log" 2>&1; then
  say "BUILD FAILED (see $log)"
  tail -40 "$log" >&2
  exit 1
fi
./build-dev/dqo devices >> "$out/machine.txt" 2>&1 || true
say "built"

grid() { # grid NAME BUDGET_SECONDS ARGS...
  local name=$1 budget=$2
  shift 2
  say "grid $name: ./build-dev/bench_group_grid --rows $rows $* --budget-seconds $budget"
  ./build-dev/bench_group_grid --rows "$rows" "$@" --budget-seconds "$budget" \
    --out "$out/$name.csv" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  say "grid $name exit status $rc"
  return "$rc"
}

# A device command is killed at 10 minutes: keep each phase under ~9 minutes
# in all, whatever the build took.
left() { echo $((540 - (SECONDS - start))); }

rc=0
case $phase in
  regret)
    # The planner costs plans from the profile: calibrate first (full:
    # CPU and device kernel points), into OUTDIR so that it comes back.
    export DQO_PROFILE="$out/profile.txt"
    say "dqo calibrate (full) -> $DQO_PROFILE"
    ./build-dev/dqo calibrate --no-progress > "$out/calibrate.txt" 2>&1 || rc=1
    say "bench_regret --rows 1M"
    ./build-dev/bench_regret --rows 1M --reps 3 --csv "$out/regret_1m.csv" \
      > /dev/null 2> >(tee -a "$log" "$out/regret_1m.txt" >&2) || rc=1
    # The 100M cells get what is left, less 30 s for the summary and the
    # packing; bench_regret starts no new cell after that.
    budget=$(( $(left) - 30 ))
    [ "$budget" -lt 30 ] && budget=30
    say "bench_regret --rows 100M --max-seconds $budget"
    ./build-dev/bench_regret --rows 100M --reps 3 --max-seconds "$budget" \
      --csv "$out/regret_100m.csv" \
      > /dev/null 2> >(tee -a "$log" "$out/regret_100m.txt" >&2) || rc=1
    python3 bench/regret_summary.py "$out/regret.md" "$out"/regret_1m.csv \
      "$out"/regret_100m.csv 2>&1 | tee -a "$log"
    (cd "$out" && tar czf regret-results.tar.gz --exclude regret-results.tar.gz . )
    ;;
  fig7)
    say "bench_fig7 --scale 100"
    ./build-dev/bench_fig7 --scale 100 --reps 3 --csv "$out/fig7_s100.csv" \
      --plans "$out/fig7_plans_s100.txt" > /dev/null \
      2> >(tee -a "$log" "$out/fig7_s100.txt" >&2) || rc=1
    # Scale 1000 (40M x 90M rows) only within what is left of the phase.
    lim=$(( $(left) - 20 ))
    if [ "$lim" -gt 60 ]; then
      say "bench_fig7 --scale 1000 (at most $lim s)"
      if timeout "$lim" ./build-dev/bench_fig7 --scale 1000 --reps 3 \
           --csv "$out/fig7_s1000.csv" --plans "$out/fig7_plans_s1000.txt" \
           > /dev/null 2> >(tee -a "$log" "$out/fig7_s1000.txt" >&2); then
        say "scale 1000 done"
      else
        say "scale 1000 did not finish in $lim s (or failed): scale 100 stands"
      fi
    fi
    (cd "$out" && tar czf fig7-results.tar.gz --exclude fig7-results.tar.gz . )
    ;;
  grid-all)
    # --skip-slower-than 5: nothing sane takes 5 s on 16 cores; it stops a
    # kernel that does (e.g. a forced sphg over the whole u32 range) from
    # eating the phase, one point per dataset.
    grid grid_all "$(left)" --threads N --reps 5 --max-seconds 2 \
      --skip-slower-than 5 || rc=$?
    ;;
  grid-1|grid-1a|grid-1b)
    ds="sorted-dense,sorted-sparse,unsorted-dense,unsorted-sparse"
    [ "$phase" = grid-1a ] && ds="sorted-dense,sorted-sparse"
    [ "$phase" = grid-1b ] && ds="unsorted-dense,unsorted-sparse"
    grid "grid_${phase#grid-}" "$(left)" --threads 1 --datasets "$ds" \
      --reps 3 --max-seconds 2 --skip-slower-than 3 || rc=$?
    ;;
  duckdb)
    if [ -d .device/whl ]; then
      python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl \
        >> "$log" 2>&1 && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    if ! python3 -c 'import duckdb, numpy' >> "$log" 2>&1; then
      say "python3 cannot import duckdb and numpy (carry .device/whl with the duckdb wheel)"
      exit 1
    fi
    say "duckdb_compare.py --rows $rows --threads N --reps 5"
    python3 bench/duckdb_compare.py --lib build-dev/libdqo.so --rows "$rows" \
      --threads N --reps 5 --out "$out/duckdb.csv" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    say "duckdb_compare exit status $rc"
    ;;
  smoke)
    if [ -d .device/whl ]; then
      python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl \
        >> "$log" 2>&1 && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    bash bench/smoke.sh build-dev 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    cp build-dev/smoke/*.csv "$out/" 2>/dev/null || true
    ;;
  topology)
    say "tests: topology, placement, OpenCL, CPU calibration"
    (cd build-dev && ctest --output-on-failure -R 'topology|place|opencl|calibrate|cli_machine' \
       --timeout 300) 2>&1 | tee -a "$log" "$out/tests.log"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    lstopo-no-graphics > "$out/lstopo.txt" 2>&1 || true
    export DQO_PROFILE="$out/profile.txt"
    say "dqo calibrate (full)"
    t0=$(date +%s.%N)
    ./build-dev/dqo calibrate --no-progress > "$out/calibrate.txt" 2> "$out/calibrate.err" || rc=1
    t1=$(date +%s.%N)
    echo "calibrate_seconds $(awk "BEGIN{print $t1 - $t0}")" | tee -a "$log" "$out/calibrate_times.txt"
    say "dqo calibrate --quick"
    t0=$(date +%s.%N)
    ./build-dev/dqo calibrate --quick --no-progress --output "$out/profile-quick.txt" \
      > "$out/calibrate-quick.txt" 2> "$out/calibrate-quick.err" || rc=1
    t1=$(date +%s.%N)
    echo "calibrate_quick_seconds $(awk "BEGIN{print $t1 - $t0}")" | tee -a "$log" "$out/calibrate_times.txt"
    ./build-dev/dqo devices > "$out/devices.txt" 2>&1 || rc=1
    ./build-dev/dqo devices --json > "$out/devices.json" 2>&1 || rc=1
    say "bench_scaling --rows $rows"
    ./build-dev/bench_scaling --rows "$rows" --out "$out/scaling.csv" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    # The device tool returns few files: pack them.
    (cd "$out" && tar czf topology-results.tar.gz --exclude topology-results.tar.gz . )
    ;;
  cl-tests)
    # The OpenCL tests on the machine's first OpenCL device (the GPU there:
    # the NVIDIA platform comes first in the ICD order), then again with
    # the device index that PoCL has, when it is another one.
    say "OpenCL tests (cl_group, opencl, cl_cache, cli_device) on cl:0"
    (cd build-dev && ctest --output-on-failure -R 'cl_group|opencl|cl_cache|cli_device' \
       --timeout 500) 2>&1 | tee -a "$log" "$out/cl-tests.log"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    (cd "$out" && tar czf cl-tests-results.tar.gz --exclude cl-tests-results.tar.gz . )
    ;;
  gpu)
    # Each side (bench_cl_group, then torch_group.py) gets half of what is
    # left, less a minute for the join and the packing.
    half=$(( ($(left) - 60) / 2 ))
    [ "$half" -lt 30 ] && half=30
    say "gpu_compare.sh --rows $rows --reps 5 --device ${GPU_DEVICE:-gpu} --budget-seconds $half"
    bash bench/gpu_compare.sh --build build-dev --rows "$rows" --reps 5 \
      --device "${GPU_DEVICE:-gpu}" --budget-seconds "$half" --out "$out" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    say "gpu_compare exit status $rc"
    # The device tool returns few files: pack them (the archive is written
    # outside OUTDIR first, so tar does not read its own output).
    tgz=$(mktemp /tmp/gpu-results.XXXXXX)
    tar czf "$tgz" -C "$out" --exclude gpu-results.tar.gz . &&
      mv "$tgz" "$out/gpu-results.tar.gz" && chmod 644 "$out/gpu-results.tar.gz"
    say "packed $out/gpu-results.tar.gz"
    ;;
esac
say "phase $phase done, exit status $rc, $((SECONDS - start)) s"
exit "$rc"
