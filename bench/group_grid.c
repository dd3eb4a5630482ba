/*
 * group_grid.c - the paper's Figure 5 grid (Section 5.2 of
 * ../shared/papers/deep-query-optimisation.md) through the public C API.
 *
 * For every dataset (sorted/unsorted x dense/sparse uint32 keys, i32 values)
 * and group count, the data is generated once with dqo_gen_grouping and a
 * naive reference is computed once (rows, SUM(v) as int64, the exact number of
 * distinct keys and the sum of the distinct keys, from a bitmap over the key
 * range). Then, for every kernel and thread count, one dqo_group for
 *
 *     SELECT k, COUNT(*), SUM(v) FROM t GROUP BY k
 *
 * is created, run once to warm up, then run `reps` times; only
 * dqo_group_run is inside the clock (the result table is materialised by it
 * and destroyed outside the clock). Every result is checked against the
 * reference. The statistics pass over the key column, which the library does
 * once per column and caches, is timed apart on a fresh zero-copy view of the
 * same arrays (kernel=stats rows), so it is never inside a per-query time.
 *
 * Output: CSV (rows,dataset,groups,kernel,ran,threads,reps,median_ms,min_ms,
 * groups_out,check,note) to --out and echoed to stdout row by row; progress
 * and failures on stderr. Exit status 1 when any check failed or a kernel
 * returned an error other than DQO_EUNSUPPORTED; 2 on bad usage.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "dqo.h"

#define MAX_LIST 64
#define NOTE_LEN 512

static const char *const default_datasets =
    "sorted-dense,sorted-sparse,unsorted-dense,unsorted-sparse";
static const char *const default_groups =
    "10,100,1000,10000,100000,1000000,10000000";
static const char *const default_kernels = "hg,sphg,og,sog,bsg,radix,auto";

typedef struct options {
    uint64_t rows;
    uint64_t groups[MAX_LIST];
    int ngroups;
    char *datasets[MAX_LIST];
    int ndatasets;
    char *kernels[MAX_LIST];
    int nkernels;
    int threads[MAX_LIST]; /* 0 stands for every core until resolved */
    int nthreads;
    int reps;
    double max_seconds;     /* per point: stop taking reps beyond this */
    double skip_slower;     /* 0: off; else skip larger group counts of a
                               kernel whose median exceeded this (seconds) */
    double budget_seconds;  /* 0: off; else skip every point after this */
    uint64_t seed;
    const char *out;
} options;

/* ------------------------------------------------------------- utilities */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench_group_grid [options]\n"
        "  --rows N            rows per dataset (100M; forms 1M, 1e6, 1000000)\n"
        "  --groups LIST       group counts (%s)\n"
        "  --datasets LIST     (%s)\n"
        "  --kernels LIST      (%s)\n"
        "  --threads LIST      thread counts; N, all or 0 = every core (1,N)\n"
        "  --reps R            timed runs per point after one warm-up (5)\n"
        "  --max-seconds S     stop taking reps at a point once they took S s\n"
        "                      (a warm-up over S s is the only sample) (3)\n"
        "  --skip-slower-than S  skip a kernel at larger group counts (same\n"
        "                      dataset and threads) once its median exceeded\n"
        "                      S s (0 = never) (0)\n"
        "  --budget-seconds S  after S s of wall time, record the remaining\n"
        "                      points as skipped (0 = no budget) (0)\n"
        "  --seed N            dataset seed (42)\n"
        "  --out FILE.csv      CSV output (rows are also echoed to stdout)\n",
        default_groups, default_datasets, default_kernels);
}

/* ------------------------------------------------------------ reference */

typedef struct reference {
    uint64_t rows;
    int64_t sum;        /* SUM(v) over all rows */
    uint64_t distinct;  /* exact number of distinct keys */
    uint64_t key_sum;   /* sum of the distinct keys (mod 2^64) */
} reference;

/* A naive, obviously correct reference: min/max of the keys, then one bit
 * per value of the key range (at most 2^32 bits = 512 MiB for u32). The
 * bit is tested before the atomic OR so that clustered keys do not all
 * contend for one cache line. */
static int compute_reference(const uint32_t *k, const int32_t *v, uint64_t n,
                             reference *ref)
{
    memset(ref, 0, sizeof *ref);
    ref->rows = n;
    if (n == 0)
        return 0;
    uint32_t lo = UINT32_MAX, hi = 0;
    int64_t sum = 0;
    int64_t sn = (int64_t)n;
#pragma omp parallel for reduction(min : lo) reduction(max : hi)              \
    reduction(+ : sum) schedule(static)
    for (int64_t i = 0; i < sn; i++) {
        uint32_t x = k[i];
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        sum += v[i];
    }
    ref->sum = sum;
    uint64_t range = (uint64_t)hi - lo + 1;
    uint64_t words = (range + 63) / 64;
    uint64_t *bits = calloc(words, sizeof *bits);
    if (!bits) {
        fprintf(stderr, "reference: cannot allocate %" PRIu64 " bytes\n",
                words * 8);
        return -1;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < sn; i++) {
        uint64_t off = (uint64_t)(k[i] - lo);
        uint64_t *w = &bits[off >> 6];
        uint64_t mask = (uint64_t)1 << (off & 63), cur;
#pragma omp atomic read
        cur = *w;
        if (!(cur & mask)) {
#pragma omp atomic update
            *w |= mask;
        }
    }
    uint64_t distinct = 0, key_sum = 0;
    int64_t swords = (int64_t)words;
#pragma omp parallel for reduction(+ : distinct, key_sum) schedule(static)
    for (int64_t w = 0; w < swords; w++) {
        uint64_t x = bits[w];
        while (x) {
            int b = __builtin_ctzll(x);
            distinct++;
            key_sum += (uint64_t)lo + (uint64_t)w * 64 + (uint64_t)b;
            x &= x - 1;
        }
    }
    free(bits);
    ref->distinct = distinct;
    ref->key_sum = key_sum;
    return 0;
}

/* Checks one result table against the reference; writes what differs into
 * note. Returns 0 when it matches. */
static int check_result(dqo_ctx *ctx, const dqo_table *res,
                        const reference *ref, uint64_t *groups_out,
                        char *note, size_t len)
{
    int ck, cc, cs;
    *groups_out = dqo_table_rows(res);
    if (dqo_table_column_index(ctx, res, "k", &ck) != DQO_OK ||
        dqo_table_column_index(ctx, res, "cnt", &cc) != DQO_OK ||
        dqo_table_column_index(ctx, res, "sum_v", &cs) != DQO_OK) {
        snprintf(note, len, "result columns: %s", dqo_ctx_errmsg(ctx));
        return -1;
    }
    const uint32_t *keys;
    const int64_t *cnt, *sum;
    if (dqo_table_column_u32(ctx, res, ck, &keys) != DQO_OK ||
        dqo_table_column_i64(ctx, res, cc, &cnt) != DQO_OK ||
        dqo_table_column_i64(ctx, res, cs, &sum) != DQO_OK) {
        snprintf(note, len, "result types: %s", dqo_ctx_errmsg(ctx));
        return -1;
    }
    uint64_t g = *groups_out, rows = 0, key_sum = 0;
    int64_t total = 0;
    for (uint64_t i = 0; i < g; i++) {
        rows += (uint64_t)cnt[i];
        total += sum[i];
        key_sum += keys[i];
    }
    int bad = 0;
    size_t used = 0;
    note[0] = '\0';
#define ADD_NOTE(...)                                                          \
    do {                                                                       \
        if (used < len)                                                        \
            used += (size_t)snprintf(note + used, len - used, __VA_ARGS__);   \
    } while (0)
    if (g != ref->distinct) {
        bad = 1;
        ADD_NOTE("groups %" PRIu64 " != distinct %" PRIu64 " ", g,
                 ref->distinct);
    }
    if (rows != ref->rows) {
        bad = 1;
        ADD_NOTE("sum(count) %" PRIu64 " != rows %" PRIu64 " ", rows,
                 ref->rows);
    }
    if (total != ref->sum) {
        bad = 1;
        ADD_NOTE("sum(sum) %" PRId64 " != %" PRId64 " ", total, ref->sum);
    }
    if (key_sum != ref->key_sum) {
        bad = 1;
        ADD_NOTE("sum(keys) %" PRIu64 " != %" PRIu64 " ", key_sum,
                 ref->key_sum);
    }
#undef ADD_NOTE
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------- CSV rows */

static FILE *csv;
static int failures;

static void emit(uint64_t rows, const char *dataset, uint64_t groups,
                 const char *kernel, const char *ran, int threads, int reps,
                 double median, double min, uint64_t groups_out,
                 const char *check, const char *note_in)
{
    char note[NOTE_LEN];
    snprintf(note, sizeof note, "%s", note_in ? note_in : "");
    csv_clean(note);
    char med[32] = "", mn[32] = "", gout[32] = "";
    if (median >= 0)
        snprintf(med, sizeof med, "%.3f", median);
    if (min >= 0)
        snprintf(mn, sizeof mn, "%.3f", min);
    if (groups_out != UINT64_MAX)
        snprintf(gout, sizeof gout, "%" PRIu64, groups_out);
    char line[1024];
    snprintf(line, sizeof line,
             "%" PRIu64 ",%s,%" PRIu64 ",%s,%s,%d,%d,%s,%s,%s,%s,%s\n", rows,
             dataset, groups, kernel, ran, threads, reps, med, mn, gout, check,
             note);
    fputs(line, stdout);
    fflush(stdout);
    if (csv) {
        fputs(line, csv);
        fflush(csv);
    }
}

static const char *const csv_header =
    "rows,dataset,groups,kernel,ran,threads,reps,median_ms,min_ms,groups_out,"
    "check,note\n";

/* The kernel that ran: the first word of EXPLAIN ("sphg: dense keys ..."). */
static void first_word(const char *s, char *out, size_t len)
{
    size_t i = 0;
    while (s && s[i] && i + 1 < len && (isalnum((unsigned char)s[i]) ||
                                        s[i] == '_' || s[i] == '-')) {
        out[i] = s[i];
        i++;
    }
    out[i] = '\0';
    if (i == 0)
        snprintf(out, len, "?");
}

/* --------------------------------------------------------------- points */

typedef struct point_result {
    int reps;
    double median, min;
    uint64_t groups_out;
    char ran[32];
    char check[16];
    char note[NOTE_LEN];
} point_result;

/* Builds the query, warms up, times, checks. */
static void run_point(dqo_ctx *ctx, const dqo_table *t, const char *kernel,
                      const reference *ref, const options *o,
                      point_result *pr)
{
    memset(pr, 0, sizeof *pr);
    pr->median = pr->min = -1;
    pr->groups_out = UINT64_MAX;
    snprintf(pr->ran, sizeof pr->ran, "-");
    dqo_group *g = NULL;
    dqo_table *res = NULL;
    double *times = NULL;
    dqo_status s = dqo_group_create(ctx, t, &g);
    if (s == DQO_OK)
        s = dqo_group_add_key(g, "k");
    if (s == DQO_OK)
        s = dqo_group_add_agg(g, DQO_AGG_COUNT_STAR, NULL, "cnt");
    if (s == DQO_OK)
        s = dqo_group_add_agg(g, DQO_AGG_SUM, "v", "sum_v");
    if (s == DQO_OK)
        s = dqo_group_set_kernel(g, kernel);
    if (s != DQO_OK)
        goto error;

    /* Warm-up: first touch of the result pages, the cached statistics of
     * the columns, the OpenMP thread pool. */
    double t0 = now_ms();
    s = dqo_group_run(g, &res);
    double warm = now_ms() - t0;
    if (s != DQO_OK)
        goto error;
    first_word(dqo_group_explain(g), pr->ran, sizeof pr->ran);
    if (check_result(ctx, res, ref, &pr->groups_out, pr->note,
                     sizeof pr->note) != 0)
        goto fail;
    dqo_table_destroy(res);
    res = NULL;

    int reps = o->reps > 0 ? o->reps : 1;
    times = malloc((size_t)reps * sizeof *times);
    if (!times) {
        snprintf(pr->note, sizeof pr->note, "out of memory");
        goto fail;
    }
    double budget_ms = o->max_seconds * 1e3, spent = 0;
    int n = 0;
    if (o->max_seconds > 0 && warm > budget_ms) {
        /* One run is already beyond the point's budget: the warm-up is the
         * only sample (and it says so). */
        times[n++] = warm;
        snprintf(pr->note, sizeof pr->note,
                 "warm-up %.0f ms > --max-seconds: warm-up is the only sample",
                 warm);
    } else {
        while (n < reps) {
            t0 = now_ms();
            s = dqo_group_run(g, &res);
            double dt = now_ms() - t0;
            if (s != DQO_OK)
                goto error;
            first_word(dqo_group_explain(g), pr->ran, sizeof pr->ran);
            if (check_result(ctx, res, ref, &pr->groups_out, pr->note,
                             sizeof pr->note) != 0)
                goto fail;
            dqo_table_destroy(res);
            res = NULL;
            times[n++] = dt;
            spent += dt;
            if (o->max_seconds > 0 && n < reps && spent + dt > budget_ms) {
                snprintf(pr->note, sizeof pr->note,
                         "%d of %d reps (--max-seconds %g)", n, reps,
                         o->max_seconds);
                break;
            }
        }
    }
    double mn = times[0];
    for (int i = 1; i < n; i++)
        mn = times[i] < mn ? times[i] : mn;
    pr->min = mn;
    pr->median = median_of(times, n);
    pr->reps = n;
    snprintf(pr->check, sizeof pr->check, "ok");
    goto done;

error:
    snprintf(pr->note, sizeof pr->note, "%s: %s", dqo_status_name(s),
             dqo_ctx_errmsg(ctx));
    if (s == DQO_EUNSUPPORTED) {
        snprintf(pr->check, sizeof pr->check, "unsupported");
        goto done;
    }
    snprintf(pr->check, sizeof pr->check, "ERROR");
    failures++;
    goto done;
fail:
    snprintf(pr->check, sizeof pr->check, "FAIL");
    failures++;
done:
    if (strcmp(pr->check, "ok") != 0 && strcmp(pr->check, "unsupported") != 0)
        fprintf(stderr,
                "\n*** %s: kernel %s: %s\n*** (explain: %s)\n\n", pr->check,
                kernel, pr->note, g ? dqo_group_explain(g) : "");
    free(times);
    dqo_table_destroy(res);
    dqo_group_destroy(g);
}

/* Times the statistics pass on a fresh zero-copy view of the key column
 * (the view's column has no cached statistics yet). */
static void time_stats(dqo_ctx *ctx, const uint32_t *k, uint64_t rows,
                       const reference *ref, uint64_t rows_opt,
                       const char *dataset, uint64_t groups, int threads)
{
    dqo_table *view = NULL;
    char note[NOTE_LEN];
    dqo_column_stats st;
    dqo_status s = dqo_table_create(ctx, &view);
    if (s == DQO_OK)
        s = dqo_table_add_column(ctx, view, "k", DQO_TYPE_U32, k, NULL, rows,
                                 DQO_BORROW);
    double dt = -1;
    if (s == DQO_OK) {
        double t0 = now_ms();
        s = dqo_table_column_stats(ctx, view, 0, &st);
        dt = now_ms() - t0;
    }
    if (s != DQO_OK) {
        snprintf(note, sizeof note, "%s: %s", dqo_status_name(s),
                 dqo_ctx_errmsg(ctx));
        fprintf(stderr, "\n*** stats ERROR: %s\n\n", note);
        failures++;
        emit(rows_opt, dataset, groups, "stats", "stats", threads, 0, -1, -1,
             UINT64_MAX, "ERROR", note);
    } else {
        static const char *const order_names[] = {"none", "asc", "desc",
                                                  "const"};
        const char *order = (unsigned)st.order < 4 ? order_names[st.order]
                                                   : "?";
        double err = ref->distinct
                         ? 100.0 * ((double)st.distinct - (double)ref->distinct) /
                               (double)ref->distinct
                         : 0;
        snprintf(note, sizeof note,
                 "statistics pass of k (cached per column; not in query "
                 "times): distinct estimate %" PRIu64 " (exact %" PRIu64
                 "; %+.2f%%) runs %" PRIu64 " min %" PRId64 " max %" PRId64
                 " order %s",
                 st.distinct, ref->distinct, err, st.runs, st.min, st.max,
                 order);
        emit(rows_opt, dataset, groups, "stats", "stats", threads, 1, dt, dt,
             st.distinct, "n/a", note);
    }
    dqo_table_destroy(view);
}

/* ----------------------------------------------------------------- main */

static int parse_args(int argc, char **argv, options *o)
{
    static char ds[1024], gs[1024], ks[1024], ts[1024];
    snprintf(ds, sizeof ds, "%s", default_datasets);
    snprintf(gs, sizeof gs, "%s", default_groups);
    snprintf(ks, sizeof ks, "%s", default_kernels);
    snprintf(ts, sizeof ts, "1,N");
    o->rows = 100000000;
    o->reps = 5;
    o->max_seconds = 3;
    o->skip_slower = 0;
    o->budget_seconds = 0;
    o->seed = 42;
    o->out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "option %s needs a value\n", a);
            return -1;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "--rows")) {
            o->rows = parse_count(val);
            if (o->rows == 0) {
                fprintf(stderr, "bad --rows '%s'\n", val);
                return -1;
            }
        } else if (!strcmp(a, "--groups")) {
            snprintf(gs, sizeof gs, "%s", val);
        } else if (!strcmp(a, "--datasets")) {
            snprintf(ds, sizeof ds, "%s", val);
        } else if (!strcmp(a, "--kernels")) {
            snprintf(ks, sizeof ks, "%s", val);
        } else if (!strcmp(a, "--threads")) {
            snprintf(ts, sizeof ts, "%s", val);
        } else if (!strcmp(a, "--reps")) {
            o->reps = atoi(val);
            if (o->reps < 1) {
                fprintf(stderr, "bad --reps '%s'\n", val);
                return -1;
            }
        } else if (!strcmp(a, "--max-seconds")) {
            o->max_seconds = atof(val);
        } else if (!strcmp(a, "--skip-slower-than")) {
            o->skip_slower = atof(val);
        } else if (!strcmp(a, "--budget-seconds")) {
            o->budget_seconds = atof(val);
        } else if (!strcmp(a, "--seed")) {
            o->seed = strtoull(val, NULL, 0);
        } else if (!strcmp(a, "--out")) {
            o->out = val;
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return -1;
        }
    }
    char *items[MAX_LIST];
    int n = split_list(gs, items, MAX_LIST);
    if (n <= 0) {
        fprintf(stderr, "bad --groups\n");
        return -1;
    }
    o->ngroups = n;
    for (int i = 0; i < n; i++) {
        o->groups[i] = parse_count(items[i]);
        if (o->groups[i] == 0) {
            fprintf(stderr, "bad group count '%s'\n", items[i]);
            return -1;
        }
    }
    o->ndatasets = split_list(ds, o->datasets, MAX_LIST);
    if (o->ndatasets <= 0) {
        fprintf(stderr, "bad --datasets\n");
        return -1;
    }
    for (int i = 0; i < o->ndatasets; i++) {
        const char *d = o->datasets[i];
        if (strcmp(d, "sorted-dense") && strcmp(d, "sorted-sparse") &&
            strcmp(d, "unsorted-dense") && strcmp(d, "unsorted-sparse")) {
            fprintf(stderr, "unknown dataset '%s' (want %s)\n", d,
                    default_datasets);
            return -1;
        }
    }
    o->nkernels = split_list(ks, o->kernels, MAX_LIST);
    if (o->nkernels <= 0) {
        fprintf(stderr, "bad --kernels\n");
        return -1;
    }
    n = split_list(ts, items, MAX_LIST);
    if (n <= 0) {
        fprintf(stderr, "bad --threads\n");
        return -1;
    }
    o->nthreads = n;
    for (int i = 0; i < n; i++) {
        if (!strcmp(items[i], "N") || !strcmp(items[i], "n") ||
            !strcmp(items[i], "all")) {
            o->threads[i] = 0;
        } else {
            char *end;
            long t = strtol(items[i], &end, 10);
            if (*end || t < 0 || t > 4096) {
                fprintf(stderr, "bad thread count '%s'\n", items[i]);
                return -1;
            }
            o->threads[i] = (int)t;
        }
    }
    return 0;
}

static bool known_kernel(const char *k)
{
    if (!strcmp(k, "auto"))
        return true;
    const char *const *names = dqo_group_kernels();
    for (int i = 0; names && names[i]; i++)
        if (!strcmp(names[i], k))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < o.nkernels; i++) {
        if (!known_kernel(o.kernels[i])) {
            fprintf(stderr, "unknown kernel '%s' (library has:", o.kernels[i]);
            const char *const *names = dqo_group_kernels();
            for (int j = 0; names && names[j]; j++)
                fprintf(stderr, " %s", names[j]);
            fprintf(stderr, " auto)\n");
            return 2;
        }
    }
    dqo_ctx *ctx = NULL;
    if (dqo_ctx_create(&ctx) != DQO_OK) {
        fprintf(stderr, "dqo_ctx_create failed\n");
        return 1;
    }
    /* Resolve "every core" through the library (its own idea of cores). */
    dqo_ctx_set_threads(ctx, 0);
    int all = dqo_ctx_threads(ctx);
    if (all <= 0)
        all = (int)sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < o.nthreads; i++)
        if (o.threads[i] == 0)
            o.threads[i] = all;

    if (o.out) {
        csv = fopen(o.out, "w");
        if (!csv) {
            fprintf(stderr, "cannot write %s: %s\n", o.out, strerror(errno));
            dqo_ctx_destroy(ctx);
            return 2;
        }
        fputs(csv_header, csv);
    }
    fputs(csv_header, stdout);
    fprintf(stderr,
            "dqo %s: %" PRIu64 " rows, %d datasets x %d group counts x %d "
            "kernels x %d thread counts, reps %d, max %.1f s per point, "
            "all cores = %d\n",
            dqo_version_string(), o.rows, o.ndatasets, o.ngroups, o.nkernels,
            o.nthreads, o.reps, o.max_seconds, all);

    /* Slowest median seen per (kernel, threads) in the current dataset, for
     * --skip-slower-than. */
    double slowest[MAX_LIST][MAX_LIST];
    char slow_note[MAX_LIST][MAX_LIST][128];
    double start = now_ms();
    int unsupported = 0, ok = 0, skipped = 0;

    for (int d = 0; d < o.ndatasets; d++) {
        const char *dataset = o.datasets[d];
        int sorted = !strncmp(dataset, "sorted", 6);
        int sparse = strstr(dataset, "sparse") != NULL;
        memset(slowest, 0, sizeof slowest);
        for (int gi = 0; gi < o.ngroups; gi++) {
            uint64_t groups = o.groups[gi];
            bool over_budget = o.budget_seconds > 0 &&
                               now_ms() - start > o.budget_seconds * 1e3;
            if (over_budget) {
                for (int ki = 0; ki < o.nkernels; ki++)
                    for (int ti = 0; ti < o.nthreads; ti++) {
                        emit(o.rows, dataset, groups, o.kernels[ki], "-",
                             o.threads[ti], 0, -1, -1, UINT64_MAX, "skipped",
                             "--budget-seconds exhausted");
                        skipped++;
                    }
                continue;
            }
            dqo_ctx_set_threads(ctx, 0);
            dqo_table *t = NULL;
            double t0 = now_ms();
            dqo_status s = dqo_gen_grouping(ctx, o.rows, groups, sorted,
                                            sparse, o.seed, &t);
            double gen_ms = now_ms() - t0;
            if (s != DQO_OK) {
                char note[NOTE_LEN];
                snprintf(note, sizeof note, "dqo_gen_grouping: %s: %s",
                         dqo_status_name(s), dqo_ctx_errmsg(ctx));
                fprintf(stderr, "\n*** ERROR %s %" PRIu64 ": %s\n\n", dataset,
                        groups, note);
                emit(o.rows, dataset, groups, "gen", "-", all, 0, -1, -1,
                     UINT64_MAX, "ERROR", note);
                failures++;
                continue;
            }
            int ck = -1, cv = -1;
            const uint32_t *k = NULL;
            const int32_t *v = NULL;
            if (dqo_table_column_index(ctx, t, "k", &ck) != DQO_OK ||
                dqo_table_column_index(ctx, t, "v", &cv) != DQO_OK ||
                dqo_table_column_u32(ctx, t, ck, &k) != DQO_OK ||
                dqo_table_column_i32(ctx, t, cv, &v) != DQO_OK) {
                fprintf(stderr, "\n*** ERROR generated table: %s\n\n",
                        dqo_ctx_errmsg(ctx));
                emit(o.rows, dataset, groups, "gen", "-", all, 0, -1, -1,
                     UINT64_MAX, "ERROR", dqo_ctx_errmsg(ctx));
                failures++;
                dqo_table_destroy(t);
                continue;
            }
            uint64_t rows = dqo_table_rows(t);
            reference ref;
            t0 = now_ms();
            if (compute_reference(k, v, rows, &ref) != 0) {
                failures++;
                dqo_table_destroy(t);
                continue;
            }
            double ref_ms = now_ms() - t0;
            fprintf(stderr,
                    "[%6.1f s] %s groups=%" PRIu64 ": generated in %.0f ms, "
                    "reference in %.0f ms (distinct %" PRIu64 ", sum %" PRId64
                    ")\n",
                    (now_ms() - start) / 1e3, dataset, groups, gen_ms, ref_ms,
                    ref.distinct, ref.sum);
            if (ref.distinct != groups)
                fprintf(stderr,
                        "    note: generator gave %" PRIu64
                        " distinct keys for %" PRIu64 " groups\n",
                        ref.distinct, groups);

            for (int ti = 0; ti < o.nthreads; ti++) {
                dqo_ctx_set_threads(ctx, o.threads[ti]);
                time_stats(ctx, k, rows, &ref, o.rows, dataset, groups,
                           o.threads[ti]);
            }
            for (int ki = 0; ki < o.nkernels; ki++) {
                const char *kernel = o.kernels[ki];
                for (int ti = 0; ti < o.nthreads; ti++) {
                    int th = o.threads[ti];
                    if (o.budget_seconds > 0 &&
                        now_ms() - start > o.budget_seconds * 1e3) {
                        emit(o.rows, dataset, groups, kernel, "-", th, 0, -1,
                             -1, UINT64_MAX, "skipped",
                             "--budget-seconds exhausted");
                        skipped++;
                        continue;
                    }
                    if (o.skip_slower > 0 &&
                        slowest[ki][ti] > o.skip_slower * 1e3) {
                        emit(o.rows, dataset, groups, kernel, "-", th, 0, -1,
                             -1, UINT64_MAX, "skipped", slow_note[ki][ti]);
                        skipped++;
                        continue;
                    }
                    dqo_ctx_set_threads(ctx, th);
                    point_result pr;
                    double p0 = now_ms();
                    run_point(ctx, t, kernel, &ref, &o, &pr);
                    emit(o.rows, dataset, groups, kernel, pr.ran, th, pr.reps,
                         pr.median, pr.min, pr.groups_out, pr.check, pr.note);
                    char med[32] = "-";
                    if (pr.median >= 0)
                        snprintf(med, sizeof med, "%.2f ms", pr.median);
                    fprintf(stderr,
                            "[%6.1f s]   %-6s threads=%-3d %-11s %12s "
                            "(ran %s, %d reps, point took %.1f s)\n",
                            (now_ms() - start) / 1e3, kernel, th, pr.check,
                            med, pr.ran, pr.reps, (now_ms() - p0) / 1e3);
                    if (!strcmp(pr.check, "ok"))
                        ok++;
                    else if (!strcmp(pr.check, "unsupported"))
                        unsupported++;
                    if (pr.median > slowest[ki][ti]) {
                        slowest[ki][ti] = pr.median;
                        snprintf(slow_note[ki][ti], sizeof slow_note[ki][ti],
                                 "skipped: median %.0f ms at %" PRIu64
                                 " groups > --skip-slower-than %g s",
                                 pr.median, groups, o.skip_slower);
                    }
                }
            }
            dqo_table_destroy(t);
        }
    }
    if (csv)
        fclose(csv);
    fprintf(stderr,
            "done in %.1f s: %d ok, %d unsupported, %d skipped, %d FAILED\n",
            (now_ms() - start) / 1e3, ok, unsupported, skipped, failures);
    dqo_ctx_destroy(ctx);
    if (failures) {
        fprintf(stderr, "*** %d check failure(s) or error(s): see check=FAIL/"
                        "ERROR rows\n",
                failures);
        return 1;
    }
    return 0;
}
