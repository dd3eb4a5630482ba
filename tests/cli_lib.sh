# cli_lib.sh - what the end-to-end CLI tests share; sourced, not run (CMake
# runs only tests/test_*.sh).
#
# usage, at the top of a test: source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh" NAME "$@"
#
# It takes PATH-TO-DQO [BUILD-DIR] from the test's arguments into $DQO and
# $BUILD, makes $TMP (removed on exit), and defines the checks below, each
# counted in $CHECKS. Every check stops the script at its first failure.
DQO=${2:?usage: $1 PATH-TO-DQO [BUILD-DIR]}
BUILD=${3:-.}
[[ -x "$DQO" ]] || { echo "FAIL: $DQO is not an executable" >&2; exit 1; }
[[ -d "$BUILD" ]] || { echo "FAIL: build directory $BUILD is missing" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dqo_$1.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
CHECKS=0

# Prints the message and what the last command printed, and exits 1.
fail() {
    echo "FAIL: $*" >&2
    for f in out err; do
        if [[ -s "$TMP/$f" ]]; then
            echo "--- std$f of the last command:" >&2
            head -40 "$TMP/$f" >&2
        fi
    done
    exit 1
}

pass() {
    CHECKS=$((CHECKS + 1))
}

# run EXPECTED-STATUS ARGS...: runs dqo with ARGS, stdout to $TMP/out and
# stderr to $TMP/err, and fails unless it exits with EXPECTED-STATUS.
# Environment for one run goes before: `DQO_PROFILE=x run 0 devices`.
run() {
    local want=$1
    shift
    local rc=0
    "$DQO" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    if [[ $rc -ne $want ]]; then
        fail "dqo $* exited with $rc, expected $want"
    fi
    pass
}

# Fails unless file $1 contains the fixed string $2.
contains() {
    grep -qF -- "$2" "$1" || fail "${3:-$1} does not contain '$2'"
    pass
}

# Fails if file $1 contains the fixed string $2.
lacks() {
    if grep -qF -- "$2" "$1"; then
        fail "${3:-$1} contains '$2'"
    fi
    pass
}

# Fails unless files $1 and $2 are identical, showing the difference.
same() {
    if ! cmp -s "$1" "$2"; then
        diff "$1" "$2" | head -20 >&2 || true
        fail "$3: $1 and $2 differ"
    fi
    pass
}
