#!/usr/bin/env bash
# test_cli_query.sh - end-to-end tests of `dqo query`, `dqo explain` and
# `dqo mav`.
#
# usage: bash tests/test_cli_query.sh PATH-TO-DQO [BUILD-DIR]
#
# On small CSVs written here (strings with commas and quotes, a NULL) it
# checks the exact output of every format for a GROUP BY and a JOIN, ORDER
# BY and LIMIT, a generated dataset queried as CSV and as binary columns
# against an awk reference, the caret under the offending token of a syntax
# error, unknown tables and columns, misuse of --table, the plan printed by
# explain (granules and locations), measured times with --explain-analyze,
# the DP table, the paper cost model, SQO mode, and the MAV cache filling,
# listing and clearing. The calibration profile and the MAV cache live in
# the temporary directory, so the user's are never touched.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh" cli_query "$@"
export DQO_PROFILE="$TMP/profile.txt"
export DQO_MAV="$TMP/mav.txt"
# Small inputs: keep the thread pools small too.
export OMP_NUM_THREADS=2

# expect FILE: fails unless FILE holds exactly the text on stdin.
expect() {
    cat >"$TMP/want"
    same "$TMP/want" "$1" "${2:-output}"
}

cat >"$TMP/sales.csv" <<'EOF'
id,region,amount,cid
1,north,10,1
2,south,20,2
3,north,5,1
4,east,,3
5,south,7,2
EOF
cat >"$TMP/customers.csv" <<'EOF'
cid,name
1,"Smith, J"
2,"O'Brien ""Bob"""
3,Zoë
EOF
T=(--table "sales=$TMP/sales.csv" --table "customers=$TMP/customers.csv")

# ------------------------------------------------------------------ help
for cmd in query explain mav; do
    run 0 "$cmd" --help
    contains "$TMP/out" "usage: dqo $cmd" "dqo $cmd --help"
    contains "$TMP/out" "example" "dqo $cmd --help"
    run 0 help "$cmd"
    contains "$TMP/out" "usage: dqo $cmd" "dqo help $cmd"
done
run 0 query --help
for opt in --table --device --threads --format --explain --explain-analyze \
    --dp-table --sqo --cost-model --no-mav --quiet; do
    contains "$TMP/out" "$opt" "dqo query --help"
done
run 0 --help
for cmd in query explain mav; do
    contains "$TMP/out" "  $cmd " "dqo --help"
done

# ---------------------------------------------------- GROUP BY, each format
GROUP="SELECT region, COUNT(*) AS n, SUM(amount) AS total FROM sales
       GROUP BY region ORDER BY region"
run 0 query "$GROUP" "${T[@]}" --quiet
expect "$TMP/out" "group by, table" <<'EOF'
region  n  total
------  -  -----
east    1   NULL
north   2     15
south   2     27
(3 rows)
EOF
run 0 query "$GROUP" "${T[@]}" --format csv --quiet
expect "$TMP/out" "group by, csv" <<'EOF'
region,n,total
east,1,
north,2,15
south,2,27
EOF
run 0 query "$GROUP" "${T[@]}" --format json --quiet
expect "$TMP/out" "group by, json" <<'EOF'
[
  {"region": "east", "n": 1, "total": null},
  {"region": "north", "n": 2, "total": 15},
  {"region": "south", "n": 2, "total": 27}
]
EOF
[[ ! -s "$TMP/err" ]] || fail "--quiet printed on stderr"

# ------------------------------------------------------- JOIN, each format
JOIN="SELECT c.name AS customer, SUM(s.amount) AS total, COUNT(*) AS n
      FROM sales s JOIN customers c ON s.cid = c.cid
      GROUP BY c.name ORDER BY c.name"
run 0 query "$JOIN" "${T[@]}" -q
expect "$TMP/out" "join, table" <<'EOF'
customer       total  n
-------------  -----  -
O'Brien "Bob"     27  2
Smith, J          15  2
Zoë             NULL  1
(3 rows)
EOF
run 0 query "$JOIN" "${T[@]}" -q -f csv
expect "$TMP/out" "join, csv" <<'EOF'
customer,total,n
"O'Brien ""Bob""",27,2
"Smith, J",15,2
Zoë,,1
EOF
run 0 query "$JOIN" "${T[@]}" -q --format=json
expect "$TMP/out" "join, json" <<'EOF'
[
  {"customer": "O'Brien \"Bob\"", "total": 27, "n": 2},
  {"customer": "Smith, J", "total": 15, "n": 2},
  {"customer": "Zoë", "total": null, "n": 1}
]
EOF

# ------------------------------------------------------ ORDER BY and LIMIT
run 0 query "SELECT region, SUM(amount) AS total FROM sales
             WHERE amount IS NOT NULL GROUP BY region
             ORDER BY total DESC LIMIT 1" "${T[@]}" -q -f csv
expect "$TMP/out" "order by desc limit 1" <<'EOF'
region,total
south,27
EOF
run 0 query "SELECT id, amount FROM sales WHERE id >= 2 ORDER BY 1 DESC
             LIMIT 3" "${T[@]}" -q -f csv
expect "$TMP/out" "scan, order by position, limit" <<'EOF'
id,amount
5,7
4,
3,5
EOF
run 0 query "SELECT region, AVG(amount) AS mean FROM sales GROUP BY region
             ORDER BY region LIMIT 0" "${T[@]}" -q
expect "$TMP/out" "limit 0" <<'EOF'
region  mean
------  ----
(0 rows)
EOF
run 0 query "SELECT region, AVG(amount) AS mean FROM sales GROUP BY region
             ORDER BY region" "${T[@]}" -q -f json
expect "$TMP/out" "avg as json" <<'EOF'
[
  {"region": "east", "mean": null},
  {"region": "north", "mean": 7.5},
  {"region": "south", "mean": 13.5}
]
EOF

# ---------------------------- a generated dataset, CSV and binary, vs awk
run 0 gen --rows 3000 --groups 40 --seed 11 --threads 2 --out "$TMP/g.csv" -q
run 0 gen --rows 3000 --groups 40 --seed 11 --threads 2 --out "$TMP/g" -q
awk -F, 'NR > 1 { n[$1]++; s[$1] += $2 }
         END { for (k in n) print k "," n[k] "," s[k] }' "$TMP/g.csv" |
    sort -t, -k1,1n >"$TMP/ref"
(echo "k,n,s" && cat "$TMP/ref") >"$TMP/ref.csv"
G="SELECT k, COUNT(*) AS n, SUM(v) AS s FROM g GROUP BY k ORDER BY k"
run 0 query "$G" --table "g=$TMP/g.csv" -q -f csv --threads 2
same "$TMP/ref.csv" "$TMP/out" "generated CSV against awk"
run 0 query "$G" --table "g=$TMP/g" -q -f csv --device cpu
same "$TMP/ref.csv" "$TMP/out" "generated binary columns against awk"
run 0 query "$G" -T "g=$TMP/g" -q -f csv --cost-model paper
same "$TMP/ref.csv" "$TMP/out" "the paper cost model's plan gives the same result"
run 0 query "$G" -T "g=$TMP/g" -q -f csv --sqo
same "$TMP/ref.csv" "$TMP/out" "the SQO plan gives the same result"

# ------------------------------------------------------------------ errors
# A syntax error: the query line, then a caret under FORM, exit status 1.
run 1 query "SELECT region FORM sales" "${T[@]}"
contains "$TMP/err" "dqo: error:" "syntax error"
contains "$TMP/err" "SELECT region FORM sales" "syntax error"
awk 'index($0, "SELECT region FORM sales") { want = index($0, "FORM"); next }
     want && index($0, "^") { exit !(index($0, "^") == want) }
     END { if (!want) exit 1 }' "$TMP/err" ||
    fail "the caret is not under FORM: $(cat "$TMP/err")"
pass
run 1 query "SELECT region, COUNT(*) FROM nosuch GROUP BY region" "${T[@]}"
contains "$TMP/err" "nosuch" "unknown table"
run 1 query "SELECT bogus FROM sales" "${T[@]}"
contains "$TMP/err" "bogus" "unknown column"
[[ ! -s "$TMP/out" ]] || fail "a failed query printed on stdout"

# --table misuse is a usage error (2); a missing file is an error (1).
for spec in sales "=x" "sales=" "9lives=$TMP/sales.csv" "a-b=$TMP/sales.csv"; do
    run 2 query "SELECT 1 FROM sales" --table "$spec"
    contains "$TMP/err" "see dqo query --help" "--table '$spec'"
done
run 2 query "SELECT id FROM sales" --table
run 2 query "SELECT id FROM sales" -T "s=$TMP/sales.csv" -T "S=$TMP/sales.csv"
run 1 query "SELECT id FROM sales" --table "sales=$TMP/missing.csv"
contains "$TMP/err" "missing.csv" "missing table file"
run 2 query
run 2 query "SELECT id FROM sales" extra "${T[@]}"
run 2 query "SELECT id FROM sales" "${T[@]}" --format xml
run 2 query "SELECT id FROM sales" "${T[@]}" --cost-model magic
run 2 query "SELECT id FROM sales" "${T[@]}" --explain --explain-analyze
run 2 explain "SELECT id FROM sales" "${T[@]}" --format csv
run 2 mav
run 2 mav drop

# ------------------------------------------------------------------ explain
# Planning measures statistics and says how long that took: drop the time.
untimed() { grep -v '^statistics:' "$1" >"$1.untimed" || true; }
EX="SELECT region, SUM(amount) AS total FROM sales GROUP BY region"
run 0 explain "$EX" "${T[@]}" --device cpu --no-mav
untimed "$TMP/out"
mv "$TMP/out.untimed" "$TMP/explain"
grep -qE '^ *GROUP (hg|sphg|og|sog|bsg|radix) .*on cpu' "$TMP/explain" ||
    fail "explain names no grouping granule on cpu: $(cat "$TMP/explain")"
pass
grep -qE '^ *SCAN sales' "$TMP/explain" || fail "explain has no scan: $(cat "$TMP/explain")"
pass
contains "$TMP/explain" "why:" "explain (the reasons)"
contains "$TMP/explain" "calibrated cost model" "explain (the default model)"
lacks "$TMP/explain" "@cl:" "explain --device cpu"
run 0 query "$EX" "${T[@]}" --device cpu --explain --no-mav
untimed "$TMP/out"
same "$TMP/explain" "$TMP/out.untimed" "dqo explain and dqo query --explain"
run 0 explain "$EX" "${T[@]}" --dp-table --no-mav
cp "$TMP/out" "$TMP/dp"
contains "$TMP/dp" "Sub-problem" "--dp-table"
contains "$TMP/dp" "Possible plans" "--dp-table"
grep -qE '^\* .*scan\(sales\)' "$TMP/dp" || fail "the DP table marks no chosen scan: $(cat "$TMP/dp")"
pass
run 0 query "$EX" "${T[@]}" --dp-table --no-mav
contains "$TMP/out" "Sub-problem" "query --dp-table alone"
run 0 explain "$EX" "${T[@]}" --cost-model paper --no-mav
contains "$TMP/out" "paper cost model" "explain --cost-model paper"
contains "$TMP/out" "tuples" "explain --cost-model paper"
run 0 explain "$EX" "${T[@]}" --sqo --no-mav
contains "$TMP/out" "SQO" "explain --sqo"

# --explain-analyze: the result, then the plan with measured times.
run 0 query "$GROUP" "${T[@]}" --explain-analyze -q
head -6 "$TMP/out" >"$TMP/head"
expect "$TMP/head" "explain-analyze result" <<'EOF'
region  n  total
------  -  -----
east    1   NULL
north   2     15
south   2     27
(3 rows)
EOF
grep -qE 'actual [0-9.e+-]+ ms' "$TMP/out" || fail "no measured times: $(cat "$TMP/out")"
pass
run 0 query "$GROUP" "${T[@]}" --explain-analyze -q --format csv
grep -qE 'actual [0-9.e+-]+ ms' "$TMP/err" || fail "csv: the plan is not on stderr"
pass
lacks "$TMP/out" "ms" "csv --explain-analyze stdout"

# ------------------------------------------------------------------ MAVs
run 0 mav clear
[[ ! -e "$DQO_MAV" ]] || fail "mav clear left $DQO_MAV"
pass
run 0 query "$GROUP" "${T[@]}" -q --no-mav
run 0 mav list
[[ ! -s "$TMP/out" ]] || fail "--no-mav stored a MAV: $(cat "$TMP/out")"
pass
run 0 query "$GROUP" "${T[@]}" -q
run 0 mav list
[[ -s "$TMP/out" ]] || fail "mav list is empty after a query"
pass
[[ -s "$DQO_MAV" ]] || fail "the query wrote no MAV file at \$DQO_MAV"
pass
cp "$TMP/out" "$TMP/mavs"
# The second run of the same query reuses the plan, and explain says so.
run 0 explain "$GROUP" "${T[@]}"
contains "$TMP/out" "MAV hit" "explain after the query that stored the MAV"
run 0 mav clear
contains "$TMP/out" "cleared" "mav clear"
contains "$TMP/out" "$(head -1 "$TMP/mavs" | cut -f1)" "mav clear lists what it cleared"
contains "$TMP/out" "hits 1" "the hit of explain, counted"
[[ ! -e "$DQO_MAV" ]] || fail "mav clear left $DQO_MAV"
pass
run 0 mav list
[[ ! -s "$TMP/out" ]] || fail "mav list after clear: $(cat "$TMP/out")"
pass

# A corrupt cache is a warning, not an error; the next query rewrites it.
printf 'dqo-mav 1\nentry 0 0 k\tv\nend 1 0000000000000000\n' >"$DQO_MAV"
run 0 mav list
contains "$TMP/err" "corrupt" "mav list of a corrupt cache"
run 0 query "$GROUP" "${T[@]}" -f csv
contains "$TMP/err" "corrupt" "a query over a corrupt cache"
contains "$TMP/out" "south,2,27" "a query over a corrupt cache"
run 0 mav list
[[ -s "$TMP/out" ]] || fail "the query did not rewrite the corrupt cache"
pass
lacks "$TMP/err" "corrupt" "mav list after the rewrite"
[[ $(head -1 "$DQO_MAV") == "dqo-mav 1" ]] || fail "the rewritten cache has no header"
pass

echo "test_cli_query: $CHECKS checks passed"
