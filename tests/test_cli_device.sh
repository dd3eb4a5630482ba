#!/usr/bin/env bash
# test_cli_device.sh - `dqo group` on OpenCL devices, end to end.
#
# usage: bash tests/test_cli_device.sh PATH-TO-DQO [BUILD-DIR]
#
# On the first OpenCL device (PoCL's CPU device in CI) every device kernel
# must print exactly what the CPU prints, streamed from host memory and with
# the table resident (--resident); under --device auto a device that cannot
# run the query hands it to the CPU and says so; unknown devices and bad
# --device values end in clear errors. Without any OpenCL device only the
# error cases run (and the script says so).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh" cli_device_test "$@"
THREADS=2
# Program binaries of this run stay in the temporary directory.
export DQO_CL_CACHE="$TMP/clcache"

run 0 group --help
contains "$TMP/out" "--device LOC" "dqo group --help"
contains "$TMP/out" "--resident" "dqo group --help"

run 2 group "$TMP/none" --by k --device gpu
contains "$TMP/err" "invalid value 'gpu' for --device" "--device gpu"
run 2 group "$TMP/none" --by k --device cpu --resident
contains "$TMP/err" "--resident needs an OpenCL device" "--device cpu --resident"

run 0 gen --rows 60K --groups 300 --seed 11 --threads $THREADS --out "$TMP/dense" --quiet
run 0 gen --rows 60K --groups 500 --seed 12 --sparse --threads $THREADS --out "$TMP/sparse" --quiet
run 1 group "$TMP/dense" --by k --device cl:99
contains "$TMP/err" "cl:99" "an unknown device"

if ! "$DQO" devices 2>/dev/null | grep -q '^cl:0'; then
    echo "test_cli_device: no OpenCL device (install pocl-opencl-icd); device runs skipped"
    echo "test_cli_device: all $CHECKS checks passed"
    exit 0
fi

AGGS='count(*),sum(v),min(v),max(v),avg(v)'
for table in dense sparse; do
    run 0 group "$TMP/$table" --by k --agg "$AGGS" --device cpu --sort --format csv --threads $THREADS
    cp "$TMP/out" "$TMP/${table}_cpu.csv"
    contains "$TMP/err" " on cpu:" "the plan of a CPU run"
    for kernel in auto sphg hg radix sog og; do
        for resident in "" --resident; do
            rc=0
            # shellcheck disable=SC2086
            "$DQO" group "$TMP/$table" --by k --agg "$AGGS" --device cl:0 $resident \
                --kernel "$kernel" --sort --format csv --threads $THREADS \
                >"$TMP/out" 2>"$TMP/err" || rc=$?
            if [[ $rc -eq 1 && $kernel == sphg && $table == sparse ]]; then
                # Sparse keys span the u32 range: no direct table for them.
                contains "$TMP/err" "too wide for a direct table" "sphg on sparse keys"
                continue
            fi
            [[ $rc -eq 0 ]] || fail "group $table --device cl:0 --kernel $kernel $resident: exit $rc: $(cat "$TMP/err")"
            contains "$TMP/err" " on cl:0:" "the plan of a device run ($kernel)"
            same "$TMP/${table}_cpu.csv" "$TMP/out" "$table: cl:0 $kernel $resident against the CPU"
        done
    done
done

# Chunked: a 256 KiB device budget streams 60K rows in many chunks.
DQO_CL_MEM_BUDGET=256K run 0 group "$TMP/dense" --by k --agg "$AGGS" --device cl:0 --kernel hg \
    --sort --format csv --threads $THREADS
same "$TMP/dense_cpu.csv" "$TMP/out" "dense: hash in chunks against the CPU"
contains "$TMP/err" "streamed in chunks of" "the plan of a chunked run"

# auto with the table on the device weighs that device against the CPU by
# cost (the host copy stays, so both are feasible) and says why ...
run 0 group "$TMP/dense" --by k --agg "$AGGS" --resident --sort --format csv --threads $THREADS
same "$TMP/dense_cpu.csv" "$TMP/out" "dense: auto, resident"
grep -Eq ' on (cpu|cl:0): ' "$TMP/err" || fail "auto with a resident table names its location"
contains "$TMP/err" "cl:0" "auto with a resident table weighs the device"
# ... and a device that cannot run the query hands it to the CPU, saying so
# (bsg has no device kernel), even with --quiet.
run 0 group "$TMP/dense" --by k --agg "$AGGS" --resident --kernel bsg --sort --format csv \
    --threads $THREADS --quiet
same "$TMP/dense_cpu.csv" "$TMP/out" "dense: auto falling back to the CPU"
contains "$TMP/err" "could not run it" "the fallback note"
contains "$TMP/err" "so it ran on the CPU" "the fallback note"
# A table too large for the device's budget stays on the host under auto.
DQO_CL_MEM_BUDGET=64K run 0 group "$TMP/dense" --by k --agg "$AGGS" --resident --sort --format csv \
    --threads $THREADS
same "$TMP/dense_cpu.csv" "$TMP/out" "dense: auto when the table does not fit"
contains "$TMP/err" "the query runs on the CPU" "the note of a table that does not fit"
# With --device cl:0 the same failures are errors.
run 1 group "$TMP/dense" --by k --device cl:0 --kernel bsg
contains "$TMP/err" "no OpenCL version" "bsg on cl:0"
DQO_CL_MEM_BUDGET=64K run 1 group "$TMP/dense" --by k --device cl:0 --resident
contains "$TMP/err" "budget" "a table over the budget with --device cl:0"

echo "test_cli_device: all $CHECKS checks passed"
