/*
 * fig7.c - the DQO paper's Figure 7, measured: deep (DQO) against shallow
 * (SQO) optimisation of one join + grouping query,
 *
 *   SELECT R.A, COUNT(*) FROM R JOIN S ON R.ID = S.R_ID GROUP BY R.A
 *
 * R (ID u32, A u32) has 40,000 x scale rows: ID unique, A one of 20,000
 * values (as in the paper) drawn at random per row. S (R_ID u32) has
 * 90,000 x scale rows, each a foreign key to a random row of R, so the
 * join yields |S| rows. IDs are dense (0..|R|-1) or sparse (spread over the
 * 32-bit range: row i of the key order gets i * 2^32/|R| plus a random
 * offset below that stride). R is sorted by ID or in a random order; S is
 * sorted by R_ID or in random order: 2 x 2 x 2 combinations.
 *
 * Each combination runs through dqo_query with device "cpu" and opts.sqo =
 * 0 (DQO) and 1 (SQO: the classical view, sortedness only): one warm-up,
 * then the median of --reps runs. Both results are sorted by A and compared
 * with each other and with the counts computed here while generating the
 * data (exact); a mismatch is an error (exit status 1). The plans (EXPLAIN
 * ANALYZE text of the last run) go to --plans FILE (default stderr).
 *
 * The paper's estimated DQO speedups (Figure 7, from its cost model): sparse
 * IDs 1x everywhere (no dense index helps); dense IDs: R sorted and S
 * sorted 1x, R sorted / S unsorted 4x, R unsorted / S sorted 2.8x, both
 * unsorted 4x. The summary prints the measured speedup (SQO ms / DQO ms)
 * next to them.
 *
 * Output: CSV (stdout and --csv FILE)
 *   ids,r_sorted,s_sorted,r_rows,s_rows,dqo_ms,sqo_ms,speedup,paper,check
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "dqo.h"

#define R_BASE 40000u /* rows of R at scale 1 (the paper's R) */
#define S_BASE 90000u /* rows of S at scale 1 */
#define A_VALUES 20000u
#define MAX_REPS 15
#define SEED 7

static const char *const sql =
    "SELECT R.A, COUNT(*) FROM R JOIN S ON R.ID = S.R_ID GROUP BY R.A";

typedef struct options {
    uint64_t scale;
    int reps;
    const char *csv, *plans;
} options;

/* The data of one ID density: R in key order and shuffled, S in random
 * and in key order, and the expected count per A. */
typedef struct data {
    uint64_t nr, ns;
    uint32_t *r_id[2], *r_a[2]; /* [0] unsorted, [1] sorted by ID */
    uint32_t *s_rid[2];         /* [0] unsorted, [1] sorted by R_ID */
    int64_t want[A_VALUES];
} data;

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) from 64 random bits. */
static uint64_t below(uint64_t r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

static void data_free(data *d)
{
    for (int i = 0; i < 2; i++) {
        free(d->r_id[i]);
        free(d->r_a[i]);
        free(d->s_rid[i]);
    }
}

/* R's key order: row i has ID id(i) (increasing) and A a(i). */
static uint32_t key_of(uint64_t i, uint64_t nr, bool sparse)
{
    if (!sparse)
        return (uint32_t)i;
    const uint64_t stride = (UINT64_C(1) << 32) / nr;
    return (uint32_t)(i * stride + below(mix(SEED * 3 + i), stride));
}

static bool data_make(data *d, uint64_t scale, bool sparse)
{
    memset(d, 0, sizeof *d);
    d->nr = R_BASE * scale;
    d->ns = S_BASE * scale;
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        d->r_id[i] = malloc(d->nr * sizeof(uint32_t));
        d->r_a[i] = malloc(d->nr * sizeof(uint32_t));
        d->s_rid[i] = malloc(d->ns * sizeof(uint32_t));
        ok = ok && d->r_id[i] && d->r_a[i] && d->s_rid[i];
    }
    uint64_t *hist = calloc(d->nr, sizeof *hist);
    if (!ok || hist == NULL) {
        free(hist);
        data_free(d);
        return false;
    }
    for (uint64_t i = 0; i < d->nr; i++) {
        d->r_id[1][i] = key_of(i, d->nr, sparse);
        d->r_a[1][i] = (uint32_t)below(mix(SEED * 5 + i), A_VALUES);
    }
    /* Unsorted R: a Fisher-Yates shuffle of the sorted rows. */
    memcpy(d->r_id[0], d->r_id[1], d->nr * sizeof(uint32_t));
    memcpy(d->r_a[0], d->r_a[1], d->nr * sizeof(uint32_t));
    for (uint64_t i = d->nr - 1; i > 0; i--) {
        const uint64_t j = below(mix(SEED * 7 + i), i + 1);
        uint32_t t = d->r_id[0][i];
        d->r_id[0][i] = d->r_id[0][j];
        d->r_id[0][j] = t;
        t = d->r_a[0][i];
        d->r_a[0][i] = d->r_a[0][j];
        d->r_a[0][j] = t;
    }
    /* S: a random R row per row; sorted S by counting the picks. */
    for (uint64_t j = 0; j < d->ns; j++) {
        const uint64_t i = below(mix(SEED * 11 + j), d->nr);
        d->s_rid[0][j] = d->r_id[1][i];
        hist[i]++;
        d->want[d->r_a[1][i]]++;
    }
    for (uint64_t i = 0, j = 0; i < d->nr; i++)
        for (uint64_t c = 0; c < hist[i]; c++)
            d->s_rid[1][j++] = d->r_id[1][i];
    free(hist);
    return true;
}

/* Registers R and S of one combination (borrowed columns). */
static dqo_status make_tables(dqo_ctx *ctx, const data *d, int rs, int ss,
                              dqo_table **r, dqo_table **s)
{
    dqo_status st = dqo_table_create(ctx, r);
    if (st == DQO_OK)
        st = dqo_table_add_column(ctx, *r, "ID", DQO_TYPE_U32, d->r_id[rs], NULL,
                                  d->nr, DQO_BORROW);
    if (st == DQO_OK)
        st = dqo_table_add_column(ctx, *r, "A", DQO_TYPE_U32, d->r_a[rs], NULL,
                                  d->nr, DQO_BORROW);
    if (st == DQO_OK)
        st = dqo_table_create(ctx, s);
    if (st == DQO_OK)
        st = dqo_table_add_column(ctx, *s, "R_ID", DQO_TYPE_U32, d->s_rid[ss],
                                  NULL, d->ns, DQO_BORROW);
    if (st == DQO_OK)
        st = dqo_register_table(ctx, "R", *r);
    if (st == DQO_OK)
        st = dqo_register_table(ctx, "S", *s);
    return st;
}

/* Checks a result (A, COUNT) against the expected counts: every A with a
 * count appears once with it, nothing else. */
static bool result_ok(dqo_ctx *ctx, const dqo_table *res, const data *d,
                      char *why, size_t len)
{
    const uint32_t *a = NULL;
    const int64_t *n = NULL;
    if (dqo_table_ncols(res) != 2 || dqo_table_column_u32(ctx, res, 0, &a) != DQO_OK ||
        dqo_table_column_i64(ctx, res, 1, &n) != DQO_OK) {
        snprintf(why, len, "result is not (u32, i64): %s", dqo_ctx_errmsg(ctx));
        return false;
    }
    static int64_t got[A_VALUES];
    memset(got, 0, sizeof got);
    uint64_t expect_rows = 0;
    for (uint32_t v = 0; v < A_VALUES; v++)
        expect_rows += d->want[v] > 0;
    const uint64_t rows = dqo_table_rows(res);
    for (uint64_t i = 0; i < rows; i++) {
        if (a[i] >= A_VALUES || got[a[i]] != 0) {
            snprintf(why, len, "A = %u unexpected or repeated", a[i]);
            return false;
        }
        got[a[i]] = n[i];
    }
    for (uint32_t v = 0; v < A_VALUES; v++)
        if (got[v] != d->want[v]) {
            snprintf(why, len, "A = %u: count %" PRId64 ", want %" PRId64, v,
                     got[v], d->want[v]);
            return false;
        }
    if (rows != expect_rows) {
        snprintf(why, len, "%" PRIu64 " groups, want %" PRIu64, rows, expect_rows);
        return false;
    }
    return true;
}

/* Warm-up + reps of the query in one mode; *ms the median, *plan the last
 * run's explain text (caller frees with dqo_free). */
static bool run_mode(dqo_ctx *ctx, const options *o, const data *d, int sqo,
                     double *ms, char **plan, char *why, size_t len)
{
    dqo_query_options qo;
    memset(&qo, 0, sizeof qo);
    qo.device = "cpu";
    qo.sqo = sqo;
    double t[MAX_REPS + 1];
    *plan = NULL;
    for (int r = 0; r <= o->reps; r++) {
        dqo_table *res = NULL;
        char *ex = NULL;
        const double t0 = now_ms();
        const dqo_status st = dqo_query(ctx, sql, &qo, &res, &ex);
        t[r] = now_ms() - t0;
        if (st != DQO_OK) {
            snprintf(why, len, "%s: %s", dqo_status_name(st), dqo_ctx_errmsg(ctx));
            dqo_free(ex);
            return false;
        }
        const bool ok = result_ok(ctx, res, d, why, len);
        dqo_table_destroy(res);
        dqo_free(*plan);
        *plan = ex;
        if (!ok)
            return false;
    }
    *ms = median_of(t + 1, o->reps);
    return true;
}

/* The paper's estimated DQO speedup (Figure 7). */
static double paper_factor(bool sparse, int rs, int ss)
{
    if (sparse || (rs && ss))
        return 1.0;
    if (rs && !ss)
        return 4.0;
    return ss ? 2.8 : 4.0;
}

static int run_density(dqo_ctx *ctx, const options *o, bool sparse, FILE *csv,
                       FILE *plans, char *summary, size_t slen)
{
    data *d = malloc(sizeof *d);
    if (d == NULL || !data_make(d, o->scale, sparse)) {
        free(d);
        fprintf(stderr, "bench_fig7: out of memory at scale %" PRIu64 "\n", o->scale);
        return 1;
    }
    int bad = 0;
    for (int rs = 1; rs >= 0; rs--)
        for (int ss = 1; ss >= 0; ss--) {
            dqo_table *r = NULL, *s = NULL;
            double ms[2] = {0, 0};
            char *plan[2] = {NULL, NULL}, why[256] = "";
            bool ok = make_tables(ctx, d, rs, ss, &r, &s) == DQO_OK;
            if (!ok)
                snprintf(why, sizeof why, "tables: %s", dqo_ctx_errmsg(ctx));
            for (int m = 0; m < 2 && ok; m++)
                ok = run_mode(ctx, o, d, m, &ms[m], &plan[m], why, sizeof why);
            dqo_register_table(ctx, "R", NULL);
            dqo_register_table(ctx, "S", NULL);
            dqo_table_destroy(r);
            dqo_table_destroy(s);
            const char *ids = sparse ? "sparse" : "dense";
            const double paper = paper_factor(sparse, rs, ss);
            const double speedup = ok && ms[0] > 0 ? ms[1] / ms[0] : 0;
            csv_clean(why);
            char line[512];
            snprintf(line, sizeof line,
                     "%s,%d,%d,%" PRIu64 ",%" PRIu64 ",%.3f,%.3f,%.3f,%.1f,%s\n",
                     ids, rs, ss, d->nr, d->ns, ms[0], ms[1], speedup, paper,
                     ok ? "ok" : why);
            fputs(line, stdout);
            if (csv != NULL)
                fputs(line, csv);
            const size_t used = strlen(summary);
            snprintf(summary + used, slen - used,
                     "| %-6s | %-8s | %-8s | %9.2f | %9.2f | %6.2fx | %4.1fx |%s\n",
                     ids, rs ? "sorted" : "unsorted", ss ? "sorted" : "unsorted",
                     ms[0], ms[1], speedup, paper, ok ? "" : " FAILED");
            for (int m = 0; m < 2; m++)
                fprintf(plans, "=== %s ids, R %s, S %s: %s plan ===\n%s\n", ids,
                        rs ? "sorted" : "unsorted", ss ? "sorted" : "unsorted",
                        m ? "SQO" : "DQO", plan[m] ? plan[m] : "(none)");
            dqo_free(plan[0]);
            dqo_free(plan[1]);
            if (!ok) {
                fprintf(stderr, "bench_fig7: %s R %d S %d: %s\n", ids, rs, ss, why);
                bad = 1;
            }
        }
    data_free(d);
    free(d);
    return bad;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->scale = 100;
    o->reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        if (v == NULL)
            return 2;
        i++;
        if (strcmp(a, "--scale") == 0 && (o->scale = parse_count(v)) > 0 &&
            o->scale <= 40000)
            continue;
        if (strcmp(a, "--reps") == 0 && (o->reps = atoi(v)) >= 1 &&
            o->reps <= MAX_REPS)
            continue;
        if (strcmp(a, "--csv") == 0 && (o->csv = v) != NULL)
            continue;
        if (strcmp(a, "--plans") == 0 && (o->plans = v) != NULL)
            continue;
        fprintf(stderr, "bench_fig7: bad %s %s\n", a, v);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    const int pa = parse_args(argc, argv, &o);
    if (pa != 0) {
        fprintf(pa == 1 ? stdout : stderr,
                "usage: bench_fig7 [--scale N (100)] [--reps R (3)] [--csv FILE]\n"
                "                  [--plans FILE]\n"
                "%s\nwith |R| = 40000 x scale, |S| = 90000 x scale, on the CPU,\n"
                "DQO against SQO, per R/S sortedness and dense/sparse IDs.\n",
                sql);
        return pa == 1 ? 0 : 2;
    }
    dqo_ctx *ctx = NULL;
    if (dqo_ctx_create(&ctx) != DQO_OK)
        return 1;
    FILE *csv = o.csv != NULL ? fopen(o.csv, "w") : NULL;
    FILE *plans = o.plans != NULL ? fopen(o.plans, "w") : stderr;
    if ((o.csv != NULL && csv == NULL) || plans == NULL) {
        fprintf(stderr, "bench_fig7: cannot write %s\n", csv == NULL ? o.csv : o.plans);
        dqo_ctx_destroy(ctx);
        return 1;
    }
    const char *header =
        "ids,r_sorted,s_sorted,r_rows,s_rows,dqo_ms,sqo_ms,speedup,paper,check\n";
    fputs(header, stdout);
    if (csv != NULL)
        fputs(header, csv);
    char summary[2048];
    snprintf(summary, sizeof summary,
             "| ids    | R        | S        |    DQO ms |    SQO ms | speedup | paper |\n"
             "|--------|----------|----------|-----------|-----------|---------|-------|\n");
    int bad = run_density(ctx, &o, false, csv, plans, summary, sizeof summary);
    bad |= run_density(ctx, &o, true, csv, plans, summary, sizeof summary);
    fprintf(stderr, "\nFigure 7 at scale %" PRIu64 " (|R| = %" PRIu64 ", |S| = %" PRIu64
            "), %d threads, median of %d:\n%s",
            o.scale, R_BASE * o.scale, S_BASE * o.scale, dqo_ctx_threads(ctx), o.reps,
            summary);
    if (csv != NULL)
        fclose(csv);
    if (plans != stderr)
        fclose(plans);
    dqo_ctx_destroy(ctx);
    return bad;
}
