#!/usr/bin/env python3
"""dqo vs DuckDB on the paper's grouping datasets, side by side in ONE process.

For every dataset and group count:
  * dqo generates the data (dqo_gen_grouping through ctypes on libdqo.so);
  * the k (u32) and v (i32) arrays are wrapped as numpy arrays without a copy;
  * DuckDB gets a native table from them (registered view, then
    CREATE TABLE t AS SELECT * FROM view; not timed);
  * both run  SELECT k, COUNT(*), SUM(v) FROM t GROUP BY k  with the same
    thread count: one warm-up, then the median of --reps timed runs.
    dqo: dqo_group_run only (the result is a materialised dqo table, destroyed
    outside the clock; the statistics pass is done and cached by the warm-up).
    DuckDB: execute + materialise the whole result as an Arrow table
    (to_arrow_table / fetch_arrow_table; numpy when pyarrow is missing).
  * the answers are checked against each other (group count, sum of counts,
    sum of sums) and against the row count.

CSV: rows,dataset,groups,threads,dqo_ms,duckdb_ms,ratio,dqo_kernel,check
(ratio = duckdb_ms / dqo_ms: above 1 means dqo is faster).
Exit status 1 on any check failure or error.
"""

import argparse
import ctypes as C
import os
import platform
import statistics
import sys
import time

import numpy as np
import duckdb

try:
    import pyarrow  # noqa: F401  (DuckDB materialises Arrow through it)
    import pyarrow.compute as pc
    HAVE_ARROW = True
except ImportError:
    HAVE_ARROW = False

DATASETS = ["sorted-dense", "sorted-sparse", "unsorted-dense", "unsorted-sparse"]
GROUPS = "10,100,1000,10000,100000,1000000,10000000"
QUERY = "SELECT k, COUNT(*), SUM(v) FROM t GROUP BY k"
DQO_OK = 0
DQO_AGG_COUNT_STAR = 0
DQO_AGG_SUM = 2

vp = C.c_void_p


def parse_count(s):
    """'100M', '1m', '1e6', '2.5K', '100000000' -> int."""
    s = s.strip()
    mult = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}.get(s[-1:].lower())
    x = float(s[:-1]) * mult if mult else float(s)
    if x < 1:
        raise argparse.ArgumentTypeError(f"bad count {s!r}")
    return int(round(x))


def eprint(*a):
    print(*a, file=sys.stderr, flush=True)


class Dqo:
    """The few libdqo calls the comparison needs, with declared signatures."""

    def __init__(self, path):
        L = C.CDLL(path)
        self.L = L

        def sig(name, res, *args):
            f = getattr(L, name)
            f.restype = res
            f.argtypes = list(args)
            return f

        P = C.POINTER
        sig("dqo_version_string", C.c_char_p)
        sig("dqo_status_name", C.c_char_p, C.c_int)
        sig("dqo_ctx_create", C.c_int, P(vp))
        sig("dqo_ctx_destroy", None, vp)
        sig("dqo_ctx_errmsg", C.c_char_p, vp)
        sig("dqo_ctx_set_threads", C.c_int, vp, C.c_int)
        sig("dqo_ctx_threads", C.c_int, vp)
        sig("dqo_gen_grouping", C.c_int, vp, C.c_uint64, C.c_uint64, C.c_int,
            C.c_int, C.c_uint64, P(vp))
        sig("dqo_table_destroy", None, vp)
        sig("dqo_table_rows", C.c_uint64, vp)
        sig("dqo_table_column_index", C.c_int, vp, vp, C.c_char_p, P(C.c_int))
        sig("dqo_table_column_u32", C.c_int, vp, vp, C.c_int,
            P(P(C.c_uint32)))
        sig("dqo_table_column_i32", C.c_int, vp, vp, C.c_int, P(P(C.c_int32)))
        sig("dqo_table_column_i64", C.c_int, vp, vp, C.c_int, P(P(C.c_int64)))
        sig("dqo_group_create", C.c_int, vp, vp, P(vp))
        sig("dqo_group_destroy", None, vp)
        sig("dqo_group_add_key", C.c_int, vp, C.c_char_p)
        sig("dqo_group_add_agg", C.c_int, vp, C.c_int, C.c_char_p, C.c_char_p)
        sig("dqo_group_set_kernel", C.c_int, vp, C.c_char_p)
        sig("dqo_group_run", C.c_int, vp, P(vp))
        sig("dqo_group_explain", C.c_char_p, vp)

        self.ctx = vp()
        if L.dqo_ctx_create(C.byref(self.ctx)) != DQO_OK:
            raise RuntimeError("dqo_ctx_create failed")

    def version(self):
        return self.L.dqo_version_string().decode()

    def check(self, status, what):
        if status != DQO_OK:
            name = self.L.dqo_status_name(status).decode()
            msg = self.L.dqo_ctx_errmsg(self.ctx).decode()
            raise RuntimeError(f"{what}: {name}: {msg}")

    def set_threads(self, n):
        self.check(self.L.dqo_ctx_set_threads(self.ctx, n), "set_threads")

    def threads(self):
        return self.L.dqo_ctx_threads(self.ctx)

    def gen(self, rows, groups, sorted_, sparse, seed):
        t = vp()
        self.check(self.L.dqo_gen_grouping(self.ctx, rows, groups, int(sorted_),
                                           int(sparse), seed, C.byref(t)),
                   "dqo_gen_grouping")
        return t

    def column(self, table, name, kind):
        """A zero-copy numpy view of a column; valid while `table` lives."""
        col = C.c_int()
        self.check(self.L.dqo_table_column_index(self.ctx, table, name.encode(),
                                                 C.byref(col)), f"column {name}")
        ctype, fn = {"u32": (C.c_uint32, self.L.dqo_table_column_u32),
                     "i32": (C.c_int32, self.L.dqo_table_column_i32),
                     "i64": (C.c_int64, self.L.dqo_table_column_i64)}[kind]
        ptr = C.POINTER(ctype)()
        self.check(fn(self.ctx, table, col, C.byref(ptr)), f"column {name}")
        n = self.L.dqo_table_rows(table)
        if n == 0:
            return np.zeros(0, dtype=np.dtype(ctype))
        return np.ctypeslib.as_array(ptr, shape=(n,))

    def group(self, table, kernel):
        g = vp()
        self.check(self.L.dqo_group_create(self.ctx, table, C.byref(g)),
                   "dqo_group_create")
        try:
            self.check(self.L.dqo_group_add_key(g, b"k"), "add_key")
            self.check(self.L.dqo_group_add_agg(g, DQO_AGG_COUNT_STAR, None,
                                                b"cnt"), "add_agg count")
            self.check(self.L.dqo_group_add_agg(g, DQO_AGG_SUM, b"v", b"sum_v"),
                       "add_agg sum")
            self.check(self.L.dqo_group_set_kernel(g, kernel.encode()),
                       "set_kernel")
        except Exception:
            self.L.dqo_group_destroy(g)
            raise
        return g

    def run(self, g):
        """Runs the query; returns (result table, seconds in dqo_group_run)."""
        res = vp()
        t0 = time.perf_counter()
        s = self.L.dqo_group_run(g, C.byref(res))
        dt = time.perf_counter() - t0
        self.check(s, "dqo_group_run")
        return res, dt

    def summary(self, res):
        """(groups, sum of counts, sum of sums) of a result table."""
        k = self.column(res, "k", "u32")
        cnt = self.column(res, "cnt", "i64")
        sm = self.column(res, "sum_v", "i64")
        return len(k), int(cnt.sum(dtype=np.int64)), int(sm.sum(dtype=np.int64))


def duck_run(con, use_arrow):
    """Runs the query, materialising the full result; returns (result, s)."""
    t0 = time.perf_counter()
    rel = con.execute(QUERY)
    if use_arrow:
        fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
        res = fetch()
    else:
        res = rel.fetchnumpy()
    return res, time.perf_counter() - t0


def duck_summary(res, use_arrow):
    if use_arrow:
        cols = res.columns
        n = res.num_rows
        cnt = pc.sum(cols[1]).as_py() if n else 0
        sm = pc.sum(cols[2]).as_py() if n else 0
        return n, int(cnt or 0), int(sm or 0)
    vals = list(res.values())
    n = len(vals[0])
    cnt = int(np.asarray(vals[1]).sum(dtype=np.int64))
    # SUM(INTEGER) is HUGEINT in DuckDB; numpy receives it as float64, exact
    # below 2^53 (|sum| <= 1000 * rows here).
    sm = int(round(float(np.asarray(vals[2], dtype=np.float64).sum())))
    return n, cnt, sm


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=parse_count, default=100_000_000)
    ap.add_argument("--groups", default=GROUPS,
                    help="comma-separated group counts (default %(default)s)")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--threads", default="N",
                    help="comma-separated thread counts; N = every core "
                         "(default N)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kernel", default="auto",
                    help="dqo kernel to force (default auto)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--lib", default=None,
                    help="path of libdqo.so (default build/libdqo.so next to "
                         "bench/)")
    ap.add_argument("--out", default=None, help="CSV output file")
    ap.add_argument("--no-arrow", action="store_true",
                    help="materialise DuckDB results with fetchnumpy even "
                         "when pyarrow is present")
    a = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    lib = a.lib or os.path.join(here, "..", "build", "libdqo.so")
    groups = [parse_count(g) for g in a.groups.split(",") if g.strip()]
    datasets = [d.strip() for d in a.datasets.split(",") if d.strip()]
    for d in datasets:
        if d not in DATASETS:
            ap.error(f"unknown dataset {d!r} (want {','.join(DATASETS)})")
    use_arrow = HAVE_ARROW and not a.no_arrow

    dqo = Dqo(lib)
    dqo.set_threads(0)
    all_cores = dqo.threads() or os.cpu_count()
    threads = [all_cores if t.strip().lower() in ("n", "all", "0") else int(t)
               for t in a.threads.split(",") if t.strip()]

    print(f"# duckdb {duckdb.__version__}; dqo {dqo.version()} ({lib}); "
          f"python {platform.python_version()}; numpy {np.__version__}; "
          f"pyarrow {pyarrow.__version__ if HAVE_ARROW else 'absent'}; "
          f"DuckDB results materialised as "
          f"{'Arrow' if use_arrow else 'numpy'}; cores {all_cores}",
          flush=True)
    header = "rows,dataset,groups,threads,dqo_ms,duckdb_ms,ratio,dqo_kernel,check"
    print(header, flush=True)
    out = open(a.out, "w") if a.out else None
    if out:
        out.write(header + "\n")
        out.flush()

    failures = 0
    start = time.perf_counter()
    con = duckdb.connect()
    for ds in datasets:
        sorted_ = ds.startswith("sorted")
        sparse = ds.endswith("sparse")
        for ng in groups:
            dqo.set_threads(0)
            t0 = time.perf_counter()
            try:
                table = dqo.gen(a.rows, ng, sorted_, sparse, a.seed)
            except RuntimeError as e:
                eprint(f"*** ERROR {ds} {ng}: {e}")
                failures += 1
                continue
            gen_s = time.perf_counter() - t0
            try:
                k = dqo.column(table, "k", "u32")
                v = dqo.column(table, "v", "i32")
                ref_rows = len(k)
                t0 = time.perf_counter()
                con.execute(f"SET threads={all_cores}")
                src = {"k": k, "v": v}
                if HAVE_ARROW:
                    src = pyarrow.table({"k": pyarrow.array(k, pyarrow.uint32()),
                                         "v": pyarrow.array(v, pyarrow.int32())})
                con.register("src_view", src)
                con.execute("CREATE OR REPLACE TABLE t AS SELECT * FROM src_view")
                con.unregister("src_view")
                del src
                load_s = time.perf_counter() - t0
                eprint(f"[{time.perf_counter() - start:7.1f} s] {ds} groups={ng}: "
                       f"generated in {gen_s * 1e3:.0f} ms, DuckDB table in "
                       f"{load_s * 1e3:.0f} ms")
                for th in threads:
                    failures += compare_point(a, dqo, con, table, use_arrow, ds,
                                              ng, th, ref_rows, out)
            finally:
                # The numpy views die with the table: drop them first.
                k = v = None
                dqo.L.dqo_table_destroy(table)
    con.execute("DROP TABLE IF EXISTS t")
    if out:
        out.close()
    eprint(f"done in {time.perf_counter() - start:.1f} s, {failures} failure(s)")
    if failures:
        eprint(f"*** {failures} check failure(s) or error(s)")
        return 1
    return 0


def compare_point(a, dqo, con, table, use_arrow, ds, ng, th, ref_rows, out):
    """One grid point: dqo and DuckDB with `th` threads. Returns failures."""
    dqo_ms = duck_ms = float("nan")
    kernel = "-"
    notes = []
    dqo_ans = duck_ans = None
    g = None
    try:
        dqo.set_threads(th)
        g = dqo.group(table, a.kernel)
        times = []
        for i in range(a.reps + 1):  # the first run is the warm-up
            res, dt = dqo.run(g)
            try:
                ans = dqo.summary(res)
            finally:
                dqo.L.dqo_table_destroy(res)
            if dqo_ans is not None and ans != dqo_ans:
                notes.append(f"dqo run {i} answer {ans} != {dqo_ans}")
            dqo_ans = ans
            if i:
                times.append(dt)
        expl = (dqo.L.dqo_group_explain(g) or b"").decode()
        kernel = expl.split(":")[0].split()[0] if expl.strip() else "?"
        dqo_ms = statistics.median(times) * 1e3
    except RuntimeError as e:
        notes.append(f"dqo: {e}")
    finally:
        if g:
            dqo.L.dqo_group_destroy(g)
    try:
        con.execute(f"SET threads={th}")
        times = []
        for i in range(a.reps + 1):
            res, dt = duck_run(con, use_arrow)
            duck_ans = duck_summary(res, use_arrow)
            del res
            if i:
                times.append(dt)
        duck_ms = statistics.median(times) * 1e3
    except duckdb.Error as e:
        notes.append(f"duckdb: {e}")

    if dqo_ans is None or duck_ans is None:
        pass
    else:
        if dqo_ans != duck_ans:
            notes.append(f"dqo (groups, count, sum) {dqo_ans} != duckdb {duck_ans}")
        if dqo_ans[1] != ref_rows:
            notes.append(f"dqo sum(count) {dqo_ans[1]} != rows {ref_rows}")
        if duck_ans[1] != ref_rows:
            notes.append(f"duckdb sum(count) {duck_ans[1]} != rows {ref_rows}")
    check = "ok" if not notes else "FAIL"
    if notes:
        eprint(f"\n*** FAIL {ds} groups={ng} threads={th}: " + "; ".join(notes) + "\n")
    ratio = duck_ms / dqo_ms if dqo_ms > 0 else float("nan")
    line = (f"{a.rows},{ds},{ng},{th},{dqo_ms:.3f},{duck_ms:.3f},{ratio:.2f},"
            f"{kernel},{check}")
    print(line, flush=True)
    if out:
        out.write(line + "\n")
        out.flush()
    return 0 if check == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
