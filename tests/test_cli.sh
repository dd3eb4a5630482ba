#!/usr/bin/env bash
# test_cli.sh - end-to-end tests of the dqo command.
#
# usage: bash tests/test_cli.sh PATH-TO-DQO [BUILD-DIR]
#
# It generates small datasets (CSV and binary column directories), checks
# `dqo stats`, runs `dqo group` with every kernel and requires identical
# sorted CSV output from all of them and agreement with a reference computed
# by awk, groups a hand-written CSV with strings, NULLs and quoting, and
# checks the exit status and message of the error cases. Each check prints
# what failed; the script stops at the first failure.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh" cli_test "$@"
# Small datasets: keep the kernels' thread pools small too.
THREADS=2
# DQO_CLI_KERNELS narrows the kernels under test while one is being written.
read -ra KERNELS <<<"${DQO_CLI_KERNELS:-auto hg sphg og sog bsg radix}"

# ------------------------------------------------------------------ help
run 0 --help
contains "$TMP/out" "usage: dqo COMMAND" "dqo --help"
for cmd in gen stats group; do
    run 0 "$cmd" --help
    contains "$TMP/out" "usage: dqo $cmd" "dqo $cmd --help"
    run 0 help "$cmd"
    contains "$TMP/out" "usage: dqo $cmd" "dqo help $cmd"
done
run 0 group -h
contains "$TMP/out" "--kernel" "dqo group -h"
run 0 --version
grep -qE '^dqo [0-9]+\.[0-9]+\.[0-9]+' "$TMP/out" || fail "dqo --version printed '$(cat "$TMP/out")'"

# ------------------------------------------------------------------ gen
run 0 gen --rows 10K --groups 100 --seed 7 --threads $THREADS --out "$TMP/dense"
[[ -f "$TMP/dense/k.u32" && -f "$TMP/dense/v.i32" ]] || fail "gen did not write k.u32 and v.i32 into $TMP/dense"
[[ $(stat -c %s "$TMP/dense/k.u32") -eq 40000 ]] || fail "k.u32 should hold 10000 u32 values"
run 0 gen --rows 1e4 --groups 0.1K --seed 7 -t $THREADS -o "$TMP/dense.csv" --quiet
[[ ! -s "$TMP/err" ]] || fail "gen --quiet wrote to stderr"
[[ $(wc -l <"$TMP/dense.csv") -eq 10001 ]] || fail "dense.csv should have a header and 10000 rows"
head -1 "$TMP/dense.csv" | grep -q '^k,v' || fail "dense.csv header is '$(head -1 "$TMP/dense.csv")'"
run 0 gen --rows 5000 --groups 300 --sparse --seed 3 --threads $THREADS --out "$TMP/sparse.csv"
run 0 gen --rows 5000 --groups 300 --sparse --seed 3 --threads $THREADS --out "$TMP/sparse"
run 0 gen --rows 5000 --groups 50 --sorted --seed 5 --threads $THREADS --out "$TMP/sorted"
# The same seed gives the same data.
run 0 gen --rows 1e4 --groups 100 --seed 7 --threads $THREADS --out "$TMP/dense2.csv"
same "$TMP/dense.csv" "$TMP/dense2.csv" "gen with one seed twice"

# ------------------------------------------------------------------ stats
run 0 stats "$TMP/dense" --threads $THREADS
for word in column type rows nulls min max distinct runs order density; do
    contains "$TMP/out" "$word" "stats header"
done
run 0 stats "$TMP/dense" --format csv --threads $THREADS
cp "$TMP/out" "$TMP/stats_dir.csv"
[[ $(head -1 "$TMP/stats_dir.csv") == "column,type,rows,nulls,min,max,distinct,runs,order,density" ]] ||
    fail "stats csv header is '$(head -1 "$TMP/stats_dir.csv")'"
# Dense keys 0..99: rows 10000, no NULLs, min 0, max 99, about 100 distinct.
awk -F, '$1 == "k" {
    ok = $2 == "u32" && $3 == 10000 && $4 == 0 && $5 == 0 && $6 == 99 && $7 >= 97 && $7 <= 103
    exit !ok
}' "$TMP/stats_dir.csv" || fail "stats of k: $(grep '^k,' "$TMP/stats_dir.csv")"
awk -F, '$1 == "v" { exit !($2 == "i32" && $5 >= -1000 && $6 <= 1000) }' "$TMP/stats_dir.csv" ||
    fail "stats of v: $(grep '^v,' "$TMP/stats_dir.csv")"
# The CSV copy declares k:u32 and must describe the same data.
run 0 stats "$TMP/dense.csv" --types k:u32 --format csv --threads $THREADS
same "$TMP/stats_dir.csv" "$TMP/out" "stats of a directory and of its CSV copy"
run 0 stats "$TMP/dense.csv" --columns v --format csv --threads $THREADS
[[ $(wc -l <"$TMP/out") -eq 2 ]] || fail "stats --columns v should print one column"
# Sorted data: order asc and runs == distinct.
run 0 stats "$TMP/sorted" --columns k --format csv --threads $THREADS
awk -F, 'NR == 2 { exit !($9 == "asc" && $8 == 50) }' "$TMP/out" || fail "stats of sorted k: $(tail -1 "$TMP/out")"

# ------------------------------------------------------------------ group
AGGS='count(*),count(v),sum(v),min(v),max(v),avg(v)'

# An independent reference: count, sum, min and max per key by awk, sorted.
reference() {
    awk -F, 'NR > 1 {
        k = $1; v = $2 + 0
        if (!(k in n)) { mn[k] = v; mx[k] = v }
        n[k]++; s[k] += v
        if (v < mn[k]) mn[k] = v
        if (v > mx[k]) mx[k] = v
    }
    END { for (k in n) printf "%s,%d,%d,%d,%d\n", k, n[k], s[k], mn[k], mx[k] }' "$1" | sort -t, -k1,1n
}

# group_all_kernels NAME TABLE [KERNEL...]: runs every kernel, requires one
# output, and compares it with the awk reference built from NAME.csv. The
# kernels named after TABLE may refuse the data instead (exit 1 with a
# message): sphg needs an array as large as the key range, which sparse keys
# spread over the whole u32 range do not allow.
group_all_kernels() {
    local name=$1 table=$2
    shift 2
    local may_refuse=" $* "
    for kernel in "${KERNELS[@]}"; do
        if [[ $may_refuse == *" $kernel "* ]]; then
            local rc=0
            "$DQO" group "$table" --by k --agg "$AGGS" --kernel "$kernel" --sort --format csv \
                --threads $THREADS >"$TMP/out" 2>"$TMP/err" || rc=$?
            if [[ $rc -eq 1 ]]; then
                contains "$TMP/err" "dqo: error:" "the refusal of kernel $kernel"
                echo "note: $name: kernel $kernel refused: $(head -1 "$TMP/err")"
                continue
            fi
            [[ $rc -eq 0 ]] || fail "dqo group $table --kernel $kernel exited with $rc"
        else
            run 0 group "$table" --by k --agg "$AGGS" --kernel "$kernel" --sort --format csv --threads $THREADS
        fi
        cp "$TMP/out" "$TMP/${name}_$kernel.csv"
        contains "$TMP/err" "plan:" "stderr of group --kernel $kernel"
        same "$TMP/${name}_${KERNELS[0]}.csv" "$TMP/${name}_$kernel.csv" "$name: kernel $kernel against ${KERNELS[0]}"
    done
    cp "$TMP/${name}_${KERNELS[0]}.csv" "$TMP/${name}_result.csv"
    [[ $(head -1 "$TMP/${name}_result.csv") == "k,count_star,count_v,sum_v,min_v,max_v,avg_v" ]] ||
        fail "$name: result header is '$(head -1 "$TMP/${name}_result.csv")'"
    reference "$TMP/$name.csv" >"$TMP/${name}_ref.csv"
    tail -n +2 "$TMP/${name}_result.csv" | cut -d, -f1,2,4,5,6 >"$TMP/${name}_got.csv"
    same "$TMP/${name}_ref.csv" "$TMP/${name}_got.csv" "$name: dqo group against the awk reference"
    # count(v) equals count(*) (no NULLs) and avg = sum / count.
    awk -F, 'NR > 1 && ($2 != $3 || ($7 - $4 / $2 > 1e-9 || $4 / $2 - $7 > 1e-9)) { bad = 1 } END { exit bad }' \
        "$TMP/${name}_result.csv" || fail "$name: count(v) or avg(v) disagree with count(*) and sum(v)"
}

group_all_kernels dense "$TMP/dense"
group_all_kernels sparse "$TMP/sparse" sphg
run 0 gen --rows 5000 --groups 50 --sorted --seed 5 --threads $THREADS --out "$TMP/sorted.csv" --quiet
group_all_kernels sorted "$TMP/sorted"

# The CSV file groups like the directory (k is inferred as i32 there).
run 0 group "$TMP/dense.csv" --by k --agg "$AGGS" --sort --format csv --threads $THREADS
same "$TMP/dense_result.csv" "$TMP/out" "group of the CSV copy against the directory"

# The table format: aligned, 20 rows by default, then a count line.
run 0 group "$TMP/dense" --by k --threads $THREADS --sort
[[ $(wc -l <"$TMP/out") -eq 23 ]] || fail "table output should be header, rule, 20 rows and a count line"
contains "$TMP/out" "100 groups (showing 20)" "table output"
contains "$TMP/err" "key statistics:" "stderr of group"
run 0 group "$TMP/dense" --by k --threads $THREADS --limit 0 --quiet
[[ $(wc -l <"$TMP/out") -eq 103 ]] || fail "--limit 0 should print all 100 groups"
[[ ! -s "$TMP/err" ]] || fail "group --quiet wrote to stderr"
run 0 group "$TMP/dense" --by k --threads $THREADS --format csv --limit 5 --sort
[[ $(wc -l <"$TMP/out") -eq 6 ]] || fail "--format csv --limit 5 should print a header and 5 rows"
same "$TMP/out" <(head -6 "$TMP/dense_result.csv" | cut -d, -f1,2) "csv --limit 5 --sort against the first rows"
contains "$TMP/err" "100 groups (showing 5)" "stderr of csv --limit"
run 0 group "$TMP/dense" --by k --threads $THREADS --time --format csv
grep -qE '^time: query [0-9.]+ ms' "$TMP/err" || fail "--time printed no query time"

# Aliases, both syntaxes, and repeated --agg.
run 0 group "$TMP/dense" --by k --agg 'sum(v)=total' --agg 'count(*) AS n, MAX(v)' --format csv --limit 1 --threads $THREADS
[[ $(head -1 "$TMP/out") == "k,total,n,max_v" ]] || fail "aliases: header is '$(head -1 "$TMP/out")'"

# Two key columns: the number of (k, v) pairs agrees with awk, and kernels
# agree with each other.
pairs=$(awk -F, 'NR > 1 { p[$1 "," $2] = 1 } END { print length(p) }' "$TMP/dense.csv")
for kernel in "${KERNELS[@]}"; do
    run 0 group "$TMP/dense" --by k,v --agg 'count(*)' --kernel "$kernel" --sort --format csv --threads $THREADS
    cp "$TMP/out" "$TMP/multi_$kernel.csv"
    [[ $(($(wc -l <"$TMP/out") - 1)) -eq $pairs ]] || fail "group --by k,v --kernel $kernel: $(($(wc -l <"$TMP/out") - 1)) groups, awk counts $pairs"
    same "$TMP/multi_${KERNELS[0]}.csv" "$TMP/multi_$kernel.csv" "two keys: kernel $kernel against ${KERNELS[0]}"
done

# ------------------------------------------------------ strings and NULLs
cat >"$TMP/sales.csv" <<'EOF'
city,amount,note
Berlin,10,a
Paris,5,
"New York, NY",7,"quoted ""note"""
Berlin,20,b
Paris,,c
Zürich,1,d
"New York, NY",3,e
Berlin,30,
EOF
cat >"$TMP/sales_expected.csv" <<'EOF'
city,n,count_amount,total,mean,min_amount,max_amount
Berlin,3,3,60,20,10,30
"New York, NY",2,2,10,5,3,7
Paris,2,1,5,5,5,5
Zürich,1,1,1,1,1,1
EOF
for kernel in "${KERNELS[@]}"; do
    run 0 group "$TMP/sales.csv" --by city \
        --agg 'count(*)=n,count(amount),sum(amount) AS total,avg(amount)=mean,min(amount),max(amount)' \
        --kernel "$kernel" --sort --format csv --threads $THREADS
    same "$TMP/sales_expected.csv" "$TMP/out" "string keys with kernel $kernel"
done
run 0 group "$TMP/sales.csv" --by city --agg 'sum(amount)' --sort --threads $THREADS
contains "$TMP/out" "Zürich" "table output of string keys"
contains "$TMP/err" "str" "key statistics of a string column"
# A group whose values are all NULL gets NULL (an empty CSV field).
run 0 group "$TMP/sales.csv" --by note --agg 'sum(amount)' --sort --format csv --threads $THREADS
grep -qx 'c,' "$TMP/out" || fail "the all-NULL group should print 'c,' (got: $(tr '\n' ' ' <"$TMP/out"))"
run 0 stats "$TMP/sales.csv" --format csv
awk -F, '$1 == "city" { exit !($2 == "str" && $4 == 0 && $7 == 4) } $1 == "amount" { exit !($4 == 1) }' "$TMP/out" ||
    fail "stats of sales.csv: $(tr '\n' ' ' <"$TMP/out")"

# ------------------------------------------------------------------ errors
run 1 stats "$TMP/no_such_file.csv"
contains "$TMP/err" "no_such_file.csv" "the missing-file message"
contains "$TMP/err" "dqo: error:" "the missing-file message"
run 1 group "$TMP/no_such_dir" --by k
contains "$TMP/err" "no_such_dir" "the missing-table message"
run 1 group "$TMP/dense" --by nosuchcol --threads $THREADS
contains "$TMP/err" "nosuchcol" "the unknown-column message"
run 1 group "$TMP/dense" --by k --agg 'sum(nosuchval)' --threads $THREADS
contains "$TMP/err" "nosuchval" "the unknown-aggregate-column message"
run 1 stats "$TMP/dense" --columns nope
printf 'a,b\n1,2\n"unterminated,3\n' >"$TMP/bad.csv"
run 1 stats "$TMP/bad.csv"
contains "$TMP/err" "dqo: error:" "the malformed-CSV message"
run 1 gen --rows 10 --groups 5 --out "$TMP/dense.csv/cannot"

run 2 group "$TMP/dense" --by k --bogus
contains "$TMP/err" "--bogus" "the bad-option message"
contains "$TMP/err" "see dqo group --help" "the bad-option message"
run 2 frobnicate
contains "$TMP/err" "frobnicate" "the unknown-command message"
run 2
run 2 help frobnicate
run 2 --bogus
run 2 gen --rows abc --groups 10 --out "$TMP/x"
contains "$TMP/err" "abc" "the bad-number message"
run 2 gen --rows 10 --groups 10
contains "$TMP/err" "--out" "the missing-option message"
run 2 gen --rows 10 --groups 1.5 --out "$TMP/x"
run 2 gen --rows 10x --groups 10 --out "$TMP/x"
run 2 gen --rows -5 --groups 10 --out "$TMP/x"
run 2 gen --rows 99999999999999999999999 --groups 10 --out "$TMP/x"
run 2 gen --rows 10 --groups 10 --sorted=yes --out "$TMP/x"
run 2 gen --rows
run 2 gen --rows --groups 10 --out "$TMP/x"
run 2 stats
run 2 stats a b
run 2 group "$TMP/dense"
contains "$TMP/err" "--by" "the missing --by message"
run 2 group "$TMP/dense" --by
run 2 group "$TMP/dense" --by k --kernel warp
run 2 group "$TMP/dense" --by k --threads -1
run 2 group "$TMP/dense" --by k --limit many
run 2 group "$TMP/dense" --by k --format xml
run 2 group "$TMP/dense" --by k --agg 'median(v)'
run 2 group "$TMP/dense" --by k --agg 'sum(*)'
run 2 group "$TMP/dense" --by k --agg 'sum(v'
run 2 group "$TMP/dense" --by k --agg 'sum(v) junk'
run 2 group "$TMP/dense" --by k --agg 'sum(v)='
run 2 group "$TMP/dense" --by 'k,,v'

# An empty table: statistics with '-' for min and max, and no groups.
run 0 gen --rows 0 --groups 1 --out "$TMP/empty" --quiet
run 0 stats "$TMP/empty" --format csv
awk -F, '$1 == "k" { exit !($3 == 0 && $5 == "-" && $6 == "-") }' "$TMP/out" || fail "stats of an empty table: $(tr '\n' ' ' <"$TMP/out")"
run 0 group "$TMP/empty" --by k --agg 'count(*),sum(v)' --format csv --threads $THREADS
[[ $(cat "$TMP/out") == "k,count_star,sum_v" ]] || fail "group of an empty table printed '$(cat "$TMP/out")'"

# Odd inputs must end in an orderly error, never a signal.
for args in "group" "group --" "group -" "stats -" "stats ," "group $TMP/dense --by ," \
    "group $TMP/dense --by k --agg ," "group $TMP/dense --by k --agg ()" \
    "group $TMP/dense --by k --agg count(*)=" "gen --rows 0 --groups 0 --out $TMP/empty" \
    "group $TMP/empty --by k" "stats $TMP/empty" "stats $TMP/bad.csv --types a:blob" \
    "group $TMP/sales.csv --by city --agg sum(note)" "stats /" "group $TMP --by k" \
    "-h extra" "--version extra" "help group extra"; do
    rc=0
    # Word splitting of $args is intended here.
    # shellcheck disable=SC2086
    "$DQO" $args >"$TMP/out" 2>"$TMP/err" || rc=$?
    [[ $rc -le 2 ]] || fail "dqo $args ended with status $rc (a crash?)"
    pass
done

echo "test_cli: all $CHECKS checks passed"
