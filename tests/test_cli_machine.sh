#!/usr/bin/env bash
# test_cli_machine.sh - end-to-end tests of `dqo devices` and `dqo calibrate`.
#
# usage: bash tests/test_cli_machine.sh PATH-TO-DQO [BUILD-DIR]
#
# It checks the machine model as a table and as JSON, a synthetic hwloc
# topology (2 packages, 4 NUMA nodes, 16 cores), one quick calibration of
# the "cpu" location into a file, that the file is read back (calibrated
# figures, no warning), the warnings for a missing and a corrupt profile,
# and the help pages and usage errors. The profile lives in a temporary
# directory (XDG_CACHE_HOME and DQO_PROFILE point there), so the user's own
# profile is never read or written. The script stops at the first failure.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh" cli_machine "$@"
# Never touch the user's profile; read the machine itself unless a check
# asks for another topology.
export XDG_CACHE_HOME="$TMP/cache"
unset DQO_PROFILE HWLOC_XMLFILE HWLOC_SYNTHETIC
SYNTHETIC="pack:2 numa:2 core:4 pu:1"

# json_check FILE PYTHON-EXPR: parses FILE as JSON into `d` and fails unless
# the expression is true. `locs` is d["locations"], `ids` their ids and
# `loc(id)` the location with that id.
json_check() {
    python3 - "$1" "$2" <<'EOF' || fail "JSON check '$2' failed on $1"
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
locs = d["locations"]
ids = [l["id"] for l in locs]
def loc(i):
    return next(l for l in locs if l["id"] == i)
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
    pass
}

# ------------------------------------------------------------------ help
run 0 --help
contains "$TMP/out" "devices" "dqo --help"
contains "$TMP/out" "calibrate" "dqo --help"
for cmd in devices calibrate; do
    run 0 "$cmd" --help
    contains "$TMP/out" "usage: dqo $cmd" "dqo $cmd --help"
    contains "$TMP/out" "DQO_PROFILE" "dqo $cmd --help"
    contains "$TMP/out" "HWLOC_SYNTHETIC" "dqo $cmd --help"
    run 0 help "$cmd"
    contains "$TMP/out" "usage: dqo $cmd" "dqo help $cmd"
done
run 0 devices -h
contains "$TMP/out" "--json" "dqo devices -h"
run 0 calibrate --help
for opt in --quick --output --locations --threads --no-progress; do
    contains "$TMP/out" "$opt" "dqo calibrate --help"
done

# ------------------------------------------------------------- devices
run 0 devices
contains "$TMP/out" "cpu" "dqo devices"
contains "$TMP/out" "cpu:numa0" "dqo devices"
# No profile yet: a warning, and the table names the default path, which
# is under XDG_CACHE_HOME.
contains "$TMP/err" "dqo: warning:" "stderr of dqo devices without a profile"
contains "$TMP/err" "no calibration profile" "stderr of dqo devices without a profile"
grep -qE "^profile +missing: $TMP/cache/dqo/profile-[0-9a-f]+\.txt$" "$TMP/out" ||
    fail "dqo devices does not name the missing profile under $TMP/cache/dqo/"
pass
run 0 devices --threads 3
grep -qE '^threads +3 worker threads' "$TMP/out" || fail "dqo devices --threads 3 does not show 3 threads"
pass
OMP_NUM_THREADS=5 run 0 devices
grep -qE '^threads +5 worker threads' "$TMP/out" || fail "dqo devices under OMP_NUM_THREADS=5 does not show 5 threads"
pass

run 0 devices --json
python3 -m json.tool "$TMP/out" >/dev/null || fail "dqo devices --json is not JSON"
pass
cp "$TMP/out" "$TMP/devices.json"
json_check "$TMP/devices.json" 'isinstance(locs, list) and len(locs) >= 2'
json_check "$TMP/devices.json" 'ids[0] == "cpu" and "cpu:numa0" in ids'
json_check "$TMP/devices.json" 'loc("cpu")["cores"] >= 1 and loc("cpu")["pus"] >= loc("cpu")["cores"]'
json_check "$TMP/devices.json" 'loc("cpu")["calibration"] is None and d["profile"]["status"] == "missing"'

# A synthetic topology: 2 packages of 2 NUMA nodes of 4 cores.
HWLOC_SYNTHETIC="$SYNTHETIC" run 0 devices
for n in 0 1 2 3; do
    contains "$TMP/out" "cpu:numa$n" "dqo devices on '$SYNTHETIC'"
done
lacks "$TMP/out" "cpu:numa4" "dqo devices on '$SYNTHETIC'"
grep -qE '(^|[^0-9])16 cores' "$TMP/out" || fail "dqo devices on '$SYNTHETIC' does not show 16 cores"
pass
HWLOC_SYNTHETIC="$SYNTHETIC" run 0 devices --json
cp "$TMP/out" "$TMP/synthetic.json"
json_check "$TMP/synthetic.json" 'loc("cpu")["cores"] == 16 and loc("cpu")["pus"] == 16'
json_check "$TMP/synthetic.json" 'd["machine"]["packages"] == 2 and d["machine"]["numa_nodes"] == 4'
json_check "$TMP/synthetic.json" '[i for i in ids if i.startswith("cpu:numa")] == ["cpu:numa0", "cpu:numa1", "cpu:numa2", "cpu:numa3"]'
json_check "$TMP/synthetic.json" 'all(loc("cpu:numa%d" % n)["cores"] == 4 and loc("cpu:numa%d" % n)["numa"] == n for n in range(4))'

# ----------------------------------------------------------- calibrate
# Usage errors and bad locations first: they must cost no measuring.
run 2 calibrate --bogus
contains "$TMP/err" "--bogus" "the bad-option message"
contains "$TMP/err" "see dqo calibrate --help" "the bad-option message"
run 2 calibrate extra
run 2 calibrate --threads -1
run 2 calibrate --threads many
run 2 calibrate --output
run 2 calibrate --output ''
run 2 calibrate --locations 'cpu,,cpu:numa0'
run 2 calibrate --quick=yes
run 1 calibrate --quick --locations nosuch --output "$TMP/never.txt"
contains "$TMP/err" "dqo: error:" "the unknown-location message"
contains "$TMP/err" "nosuch" "the unknown-location message"
[[ ! -e "$TMP/never.txt" ]] || fail "a failed calibrate wrote $TMP/never.txt"
pass
# A synthetic topology is not this machine: nothing to measure.
HWLOC_SYNTHETIC="$SYNTHETIC" run 1 calibrate --quick --output "$TMP/never.txt"
contains "$TMP/err" "dqo: error:" "calibrate on a synthetic topology"
[[ ! -e "$TMP/never.txt" ]] || fail "calibrate on a synthetic topology wrote $TMP/never.txt"
pass
mkdir -p "$TMP/adir"
run 1 calibrate --quick --locations cpu --output "$TMP/adir"
contains "$TMP/err" "dqo: error:" "the output-is-a-directory message"

# The one real calibration (the slow part of this test).
run 0 calibrate --quick --locations cpu --output "$TMP/p.txt"
[[ -s "$TMP/p.txt" ]] || fail "calibrate did not write $TMP/p.txt"
pass
[[ $(head -1 "$TMP/p.txt") == "dqo-profile 1" ]] || fail "the profile starts with '$(head -1 "$TMP/p.txt")'"
pass
grep -qE "^profile written to $TMP/p.txt \(took [0-9]+\.[0-9] s\)$" "$TMP/out" ||
    fail "calibrate did not print 'profile written to $TMP/p.txt (took X.X s)'"
pass
contains "$TMP/out" "cpu:numa0" "the table after calibrate"
contains "$TMP/out" "cpu calibration" "the table after calibrate"
# stderr is not a terminal here: one progress line per step, no \r.
grep -qE '^calibrate +[0-9]+%' "$TMP/err" || fail "calibrate printed no progress lines"
pass
if grep -q $'\r' "$TMP/err"; then fail "progress redraws with \\r although stderr is not a terminal"; fi
pass
lacks "$TMP/err" "no calibration profile" "stderr of calibrate"
cp "$TMP/p.txt" "$TMP/p.orig"

run 0 calibrate --quick --locations cpu --output "$TMP/p.txt" --no-progress --help
contains "$TMP/out" "usage: dqo calibrate" "calibrate --help after other options"

# The profile is read back: calibrated figures, no warning.
DQO_PROFILE="$TMP/p.txt" run 0 devices
lacks "$TMP/err" "no calibration profile" "stderr of dqo devices with the profile"
lacks "$TMP/err" "using topology defaults" "stderr of dqo devices with the profile"
contains "$TMP/out" "cpu calibration" "dqo devices with the profile"
contains "$TMP/out" "read GB/s by threads" "dqo devices with the profile"
DQO_PROFILE="$TMP/p.txt" run 0 devices --json
cp "$TMP/out" "$TMP/calibrated.json"
json_check "$TMP/calibrated.json" 'd["profile"]["status"] == "ok" and loc("cpu")["calibration"] is not None'
json_check "$TMP/calibrated.json" 'max(r["gbs"] for r in loc("cpu")["calibration"]["read_gbs"]) > 0'

# A corrupt profile (bytes changed in the middle) warns; it is no error.
cp "$TMP/p.orig" "$TMP/flipped.txt"
size=$(stat -c %s "$TMP/flipped.txt")
printf 'XYZZY' | dd of="$TMP/flipped.txt" bs=1 seek=$((size / 2)) conv=notrunc status=none
DQO_PROFILE="$TMP/flipped.txt" run 0 devices
contains "$TMP/err" "dqo: warning:" "stderr of dqo devices with a corrupt profile"
contains "$TMP/err" "corrupt" "stderr of dqo devices with a corrupt profile"
contains "$TMP/out" "cpu:numa0" "dqo devices with a corrupt profile"
DQO_PROFILE="$TMP/flipped.txt" run 0 devices --json
cp "$TMP/out" "$TMP/corrupt.json"
json_check "$TMP/corrupt.json" 'loc("cpu")["calibration"] is None and d["profile"]["status"] == "corrupt"'
# A truncated one too.
head -c $((size / 2)) "$TMP/p.orig" >"$TMP/truncated.txt"
DQO_PROFILE="$TMP/truncated.txt" run 0 devices
contains "$TMP/err" "corrupt" "stderr of dqo devices with a truncated profile"
# A missing one.
DQO_PROFILE="$TMP/none.txt" run 0 devices
contains "$TMP/err" "no calibration profile" "stderr of dqo devices with a missing profile"
contains "$TMP/out" "missing: $TMP/none.txt" "dqo devices with a missing profile"

# ------------------------------------------------------------ devices errors
run 2 devices --bogus
contains "$TMP/err" "--bogus" "the bad-option message"
contains "$TMP/err" "see dqo devices --help" "the bad-option message"
run 2 devices extra
run 2 devices --json=yes
run 2 devices --threads -1

echo "test_cli_machine: all $CHECKS checks passed"
