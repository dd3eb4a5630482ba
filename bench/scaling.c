/*
 * scaling.c - grouping throughput against threads (1 .. every core), with
 * the calibrated read bandwidth beside it (issue: topology and location).
 *
 * For each dataset (dense or sparse uint32 keys, unsorted, i32 values, the
 * paper's generator) the data is made once; then for every thread count a
 * fresh context with that many threads runs
 *
 *     SELECT k, COUNT(*), SUM(v) FROM t GROUP BY k
 *
 * through the planner's choice: one warm-up, then `reps` timed runs (the
 * result table is materialised inside the clock, destroyed outside; the
 * statistics pass is done once per column beforehand and is not timed).
 * Every result is checked: number of groups, SUM(COUNT) = rows and
 * SUM(SUM(v)) = the reference total.
 *
 * The calibrated sequential read bandwidth at each thread count comes from
 * the calibration profile (run `dqo calibrate` first; DQO_PROFILE or the
 * default path). "input_gbs" is the query's input bytes (8 per row) over its
 * median time: the rate the kernel consumed its input, comparable to the
 * bandwidth line. Parallel efficiency = speedup / threads.
 *
 * Output: CSV to --out (and stdout): dataset,groups,kernel,threads,reps,
 * median_ms,min_ms,mrows_s,input_gbs,speedup,efficiency,calib_gbs,check.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "dqo.h"
#include "engine/engine_int.h"

#define MAX_LIST 32

static void usage(void)
{
    fputs("usage: bench_scaling [--rows N] [--threads 1,2,4,...] "
          "[--datasets dense:1000,sparse:1M,...] [--reps R] [--out FILE]\n"
          "defaults: --rows 100M, threads 1,2,4,8,... and every core, "
          "datasets dense:1000,dense:100K,sparse:1000,sparse:1M, reps 5\n",
          stderr);
}

typedef struct dataset {
    bool sparse;
    uint64_t groups;
    char name[32];
} dataset;

/* Checks groups, SUM(COUNT) and SUM(SUM(v)) of a result (columns k, count,
 * sum). Returns 0 when right. */
static int check(dqo_ctx *ctx, const dqo_table *res, uint64_t rows,
                 uint64_t groups, int64_t vsum, char *why, size_t n)
{
    uint64_t g = dqo_table_rows(res);
    const int64_t *cnt = NULL, *sum = NULL;
    if (dqo_table_ncols(res) != 3 ||
        dqo_table_column_i64(ctx, res, 1, &cnt) != DQO_OK ||
        dqo_table_column_i64(ctx, res, 2, &sum) != DQO_OK) {
        snprintf(why, n, "unexpected result shape: %s", dqo_ctx_errmsg(ctx));
        return -1;
    }
    uint64_t c = 0;
    int64_t s = 0;
    for (uint64_t i = 0; i < g; i++) {
        c += (uint64_t)cnt[i];
        s += sum[i];
    }
    if (g != groups || c != rows || s != vsum) {
        snprintf(why, n,
                 "groups %" PRIu64 " (want %" PRIu64 "), rows %" PRIu64
                 " (want %" PRIu64 "), sum %" PRId64 " (want %" PRId64 ")",
                 g, groups, c, rows, s, vsum);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t rows = 100000000;
    int threads[MAX_LIST], nthreads = 0, reps = 5;
    dataset ds[MAX_LIST];
    int nds = 0;
    const char *out_path = NULL;
    char dlist[512] = "dense:1000,dense:100K,sparse:1000,sparse:1M";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--rows") == 0) {
            rows = parse_count(v);
        } else if (strcmp(a, "--reps") == 0) {
            reps = atoi(v);
        } else if (strcmp(a, "--out") == 0) {
            out_path = v;
        } else if (strcmp(a, "--datasets") == 0) {
            snprintf(dlist, sizeof dlist, "%s", v);
        } else if (strcmp(a, "--threads") == 0) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t != NULL && nthreads < MAX_LIST;
                 t = strtok(NULL, ","))
                threads[nthreads++] = atoi(t);
        } else {
            usage();
            return 2;
        }
    }
    for (char *t = strtok(dlist, ","); t != NULL && nds < MAX_LIST; t = strtok(NULL, ",")) {
        dataset *d = &ds[nds];
        char *colon = strchr(t, ':');
        if (colon == NULL) {
            usage();
            return 2;
        }
        *colon = '\0';
        d->sparse = strcmp(t, "sparse") == 0;
        d->groups = parse_count(colon + 1);
        snprintf(d->name, sizeof d->name, "%s", d->sparse ? "sparse" : "dense");
        nds++;
    }
    if (rows == 0 || reps < 1 || nds == 0) {
        usage();
        return 2;
    }

    dqo_ctx *ctx;
    if (dqo_ctx_create(&ctx) != DQO_OK)
        return 1;
    int cores = dqo_ctx_threads(ctx);
    if (nthreads == 0) {
        for (int t = 1; t < cores; t *= 2)
            threads[nthreads++] = t;
        if (cores >= 12 && cores > 8)
            threads[nthreads++] = 12 < cores ? 12 : cores;
        if (threads[nthreads - 1] != cores)
            threads[nthreads++] = cores;
    }
    /* The calibrated bandwidth of "cpu" (a warning when none). */
    plan_model *m = ctx_model(ctx);
    const plan_calib *cal = m != NULL ? &m->loc[0].calib : NULL;
    const char *w = dqo_ctx_warnings(ctx);
    if (w[0] != '\0')
        fprintf(stderr, "bench_scaling: %s", w);

    FILE *csv = out_path != NULL ? fopen(out_path, "w") : NULL;
    if (out_path != NULL && csv == NULL) {
        perror(out_path);
        return 1;
    }
    const char *header = "dataset,groups,kernel,threads,reps,median_ms,min_ms,"
                         "mrows_s,input_gbs,speedup,efficiency,calib_gbs,check\n";
    fputs(header, stdout);
    if (csv != NULL)
        fputs(header, csv);
    int failures = 0;
    for (int d = 0; d < nds; d++) {
        dqo_table *t = NULL;
        double g0 = now_ms();
        if (dqo_gen_grouping(ctx, rows, ds[d].groups, 0, ds[d].sparse, 42, &t) != DQO_OK) {
            fprintf(stderr, "gen: %s\n", dqo_ctx_errmsg(ctx));
            return 1;
        }
        const int32_t *v = NULL;
        uint64_t n = dqo_table_rows(t);
        dqo_table_column_i32(ctx, t, 1, &v);
        int64_t vsum = 0;
        for (uint64_t i = 0; i < n; i++)
            vsum += v[i];
        dqo_column_stats st;
        dqo_table_column_stats(ctx, t, 0, &st); /* cached on the column */
        fprintf(stderr, "bench_scaling: %s %" PRIu64 " groups, %" PRIu64
                        " rows made in %.0f ms\n",
                ds[d].name, ds[d].groups, rows, now_ms() - g0);
        double base_ms = 0;
        for (int ti = 0; ti < nthreads; ti++) {
            int nt = threads[ti];
            dqo_ctx_set_threads(ctx, nt);
            dqo_group *g = NULL;
            if (dqo_group_create(ctx, t, &g) != DQO_OK ||
                dqo_group_add_key(g, "k") != DQO_OK ||
                dqo_group_add_agg(g, DQO_AGG_COUNT_STAR, NULL, "count") != DQO_OK ||
                dqo_group_add_agg(g, DQO_AGG_SUM, "v", "sum") != DQO_OK) {
                fprintf(stderr, "group: %s\n", dqo_ctx_errmsg(ctx));
                return 1;
            }
            double ms[64];
            int r = 0;
            char why[256] = "ok";
            bool ok = true;
            for (int rep = -1; rep < reps && rep < 64; rep++) {
                dqo_table *res = NULL;
                double a = now_ms();
                dqo_status s = dqo_group_run(g, &res);
                double b = now_ms();
                if (s != DQO_OK) {
                    snprintf(why, sizeof why, "error: %s", dqo_ctx_errmsg(ctx));
                    ok = false;
                    break;
                }
                if (check(ctx, res, rows, ds[d].groups, vsum, why, sizeof why) != 0)
                    ok = false;
                dqo_table_destroy(res);
                if (!ok)
                    break;
                if (rep >= 0)
                    ms[r++] = b - a;
            }
            char kernel[16] = "?";
            sscanf(dqo_group_explain(g), "%15[a-z]", kernel);
            dqo_group_destroy(g);
            if (!ok) {
                failures++;
                fprintf(stderr, "bench_scaling: FAILED %s %" PRIu64 " threads %d: %s\n",
                        ds[d].name, ds[d].groups, nt, why);
                continue;
            }
            double med = median_of(ms, r); /* sorts: ms[0] is the minimum */
            if (ti == 0)
                base_ms = med * threads[0]; /* one-thread time (threads[0] = 1) */
            double speedup = base_ms / med;
            double cal_gbs = cal != NULL ? plan_calib_bw_at(cal, nt) : 0;
            char line[512];
            snprintf(line, sizeof line,
                     "%s,%" PRIu64 ",%s,%d,%d,%.3f,%.3f,%.1f,%.2f,%.2f,%.3f,%.2f,ok\n",
                     ds[d].name, ds[d].groups, kernel, nt, r, med, ms[0],
                     (double)rows / med / 1e3, 8.0 * (double)rows / med / 1e6,
                     speedup, speedup / nt, cal_gbs);
            fputs(line, stdout);
            fflush(stdout);
            if (csv != NULL)
                fputs(line, csv);
        }
        dqo_table_destroy(t);
    }
    if (csv != NULL)
        fclose(csv);
    dqo_ctx_destroy(ctx);
    return failures ? 1 : 0;
}
