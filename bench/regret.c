/*
 * regret.c - plan quality of the grouping planner: how much slower is the
 * plan it picks than the best plan there is?
 *
 * For every cell of the grid
 *     dataset  {unsorted, sorted} x {dense, sparse}  (dqo_gen_grouping)
 *     groups   10, 1K, 100K, 10M
 *     rows     1M, 100M
 *     data     host memory, or resident on the OpenCL device
 *              (dqo_table_to_device(ctx, t, "cl:N"))
 * the query  SELECT k, COUNT(*), SUM(v) GROUP BY k  runs
 *
 *  1. under every plan, forced through dqo_group_set_kernel and
 *     dqo_group_set_device (the oracle):
 *       cpu:  hg, sphg (dense keys), og (sorted keys), sog, bsg (up to 1K
 *             groups), radix
 *       cl:N: hg, sphg (dense keys), radix, sog, og (sorted keys)
 *     sphg needs a key range its array can hold, og needs clustered keys:
 *     on other data they are not plans at all. bsg binary-searches the
 *     sorted distinct keys for every row, log2(groups) dependent cache
 *     misses: beyond a thousand groups it is the slowest plan by far
 *     (bench/results/profile_device.txt: 8.8 ns/row at 10^6 groups against
 *     1.6 for radix) and at 100M rows it alone would take much of the time
 *     budget, so it is left out there (the planner never picks it there).
 *     A plan whose run returns an error is recorded infeasible (a device
 *     that cannot hold 10M groups, PoCL limits...);
 *  2. under the planner's own choice: kernel "auto", device "auto" (which
 *     may choose the device for host data too); dqo_group_explain, which
 *     starts "KERNEL on LOCATION: ...", says which plan it chose.
 *
 * Each plan runs once to warm up, then --reps times (median). Every run's
 * result is checked against the first plan's checksum: the sum over groups
 * of key*31 + count + sum in wrapping 64-bit arithmetic; a mismatch is an
 * error (exit status 1). regret = median of the chosen plan (as the oracle
 * timed it) / the best feasible median; regret_run = the auto run's own
 * median / the best (it includes the planning). The planner needs a
 * calibration profile (`dqo calibrate`) to choose well: without one it
 * plans from topology defaults, and the run says so.
 *
 * Output: CSV (stdout and --csv FILE) with one row per plan and cell
 *   dataset,groups,rows,location,plan,feasible,median_ms,chosen,note
 * where plan is "cpu/hg", "cl:0/radix"... or "auto" (its note names the
 * plan it chose); then on stderr the regret per cell, and the median and
 * worst regret over the cells. --max-seconds stops starting new cells once
 * the run has taken that long; the cells left are listed as skipped.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "dqo.h"

#define BENCH_SEED 42
#define MAX_LIST 16
#define MAX_PLANS 12
#define MAX_REPS 15
#define MAX_CELLS 512
/* bsg is a plan up to this many groups (see above). */
#define BSG_MAX_GROUPS 1000

typedef struct options {
    uint64_t rows[MAX_LIST], groups[MAX_LIST];
    int nrows, ngroups;
    bool dataset_on[4]; /* index: sorted * 2 + sparse */
    bool host, device;  /* the data locations */
    char cl[16];        /* "cl:N"; "" when there is no device */
    int reps;
    double max_seconds; /* 0: no budget */
    const char *csv;
} options;

static const char *const dataset_names[4] = {"unsorted-dense", "unsorted-sparse",
                                             "sorted-dense", "sorted-sparse"};

/* One plan: a kernel on a location ("cpu" or "cl:N"), or auto/auto. */
typedef struct plan {
    char location[16];
    const char *kernel;
    bool feasible;
    double median_ms;
    char note[256];
} plan;

/* The regret of one cell. */
typedef struct cell {
    char name[96];
    double regret, regret_run;
    bool ok;
} cell;

static FILE *csv_file;
static int wrong; /* results that disagreed with the reference */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench_regret [options]\n"
        "Every feasible grouping plan against the planner's choice, per cell of\n"
        "dataset x groups x rows x data location.\n"
        "  --rows LIST        row counts (1M,100M)\n"
        "  --groups LIST      group counts (10,1K,100K,10M)\n"
        "  --datasets LIST    unsorted-dense,unsorted-sparse,sorted-dense,\n"
        "                     sorted-sparse (all)\n"
        "  --locations LIST   host,device (both; device needs an OpenCL device)\n"
        "  --device cl:N      the OpenCL device (the first GPU, else cl:0)\n"
        "  --reps R           timed runs per plan after one warm-up (3)\n"
        "  --max-seconds S    start no new cell after S s; the rest are listed\n"
        "                     as skipped (0 = no limit) (0)\n"
        "  --csv FILE         also write the CSV to FILE\n"
        "CSV: dataset,groups,rows,location,plan,feasible,median_ms,chosen,note\n"
        "Exit status 1 when a result is wrong or a run failed to start.\n");
}

/* ------------------------------------------------------------- options */

static bool parse_counts(char *s, uint64_t *out, int *n)
{
    char *items[MAX_LIST];
    *n = split_list(s, items, MAX_LIST);
    for (int i = 0; i < *n; i++)
        if ((out[i] = parse_count(items[i])) == 0)
            return false;
    return *n > 0;
}

static bool parse_datasets(char *s, options *o)
{
    char *items[MAX_LIST];
    const int n = split_list(s, items, MAX_LIST);
    memset(o->dataset_on, 0, sizeof o->dataset_on);
    for (int i = 0; i < n; i++) {
        int d = 0;
        while (d < 4 && strcmp(items[i], dataset_names[d]) != 0)
            d++;
        if (d == 4)
            return false;
        o->dataset_on[d] = true;
    }
    return n > 0;
}

static bool parse_locations(char *s, options *o)
{
    char *items[MAX_LIST];
    const int n = split_list(s, items, MAX_LIST);
    o->host = o->device = false;
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "host") == 0)
            o->host = true;
        else if (strcmp(items[i], "device") == 0)
            o->device = true;
        else
            return false;
    }
    return n > 0;
}

/* 0: parsed; 1: help; 2: bad usage. */
static int parse_args(int argc, char **argv, options *o)
{
    char rows[] = "1M,100M", groups[] = "10,1K,100K,10M";
    memset(o, 0, sizeof *o);
    parse_counts(rows, o->rows, &o->nrows);
    parse_counts(groups, o->groups, &o->ngroups);
    for (int d = 0; d < 4; d++)
        o->dataset_on[d] = true;
    o->host = o->device = true;
    o->reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        if (v == NULL)
            return 2;
        i++;
        bool ok = true;
        if (strcmp(a, "--rows") == 0)
            ok = parse_counts(v, o->rows, &o->nrows);
        else if (strcmp(a, "--groups") == 0)
            ok = parse_counts(v, o->groups, &o->ngroups);
        else if (strcmp(a, "--datasets") == 0)
            ok = parse_datasets(v, o);
        else if (strcmp(a, "--locations") == 0)
            ok = parse_locations(v, o);
        else if (strcmp(a, "--device") == 0)
            ok = strncmp(v, "cl:", 3) == 0 &&
                 snprintf(o->cl, sizeof o->cl, "%s", v) < (int)sizeof o->cl;
        else if (strcmp(a, "--reps") == 0)
            ok = (o->reps = atoi(v)) >= 1 && o->reps <= MAX_REPS;
        else if (strcmp(a, "--max-seconds") == 0)
            ok = (o->max_seconds = atof(v)) >= 0;
        else if (strcmp(a, "--csv") == 0)
            o->csv = v;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "bench_regret: bad %s %s\n", a, v);
            return 2;
        }
    }
    return 0;
}

/* The first GPU among the OpenCL locations, else the first of them; ""
 * when there is none. */
static void pick_device(dqo_ctx *ctx, char *cl, size_t len)
{
    const int n = dqo_location_count(ctx);
    int first = -1;
    for (int i = 0; i < n; i++) {
        dqo_location_info li;
        if (dqo_location_get(ctx, i, &li) != DQO_OK ||
            li.kind != DQO_LOCATION_OPENCL)
            continue;
        if (first < 0)
            first = i;
        if (!li.host_memory) {
            snprintf(cl, len, "%s", li.id);
            return;
        }
    }
    if (first >= 0) {
        dqo_location_info li;
        dqo_location_get(ctx, first, &li);
        snprintf(cl, len, "%s", li.id);
    }
}

/* ----------------------------------------------------------- running */

/* sum over groups of key*31 + count + sum, wrapping. */
static dqo_status result_checksum(dqo_ctx *ctx, const dqo_table *r,
                                  uint64_t *out)
{
    const uint32_t *k;
    const int64_t *cnt, *sum;
    dqo_status s = dqo_table_column_u32(ctx, r, 0, &k);
    if (s == DQO_OK)
        s = dqo_table_column_i64(ctx, r, 1, &cnt);
    if (s == DQO_OK)
        s = dqo_table_column_i64(ctx, r, 2, &sum);
    if (s != DQO_OK)
        return s;
    uint64_t h = 0;
    for (uint64_t i = 0, n = dqo_table_rows(r); i < n; i++)
        h += (uint64_t)k[i] * 31u + (uint64_t)cnt[i] + (uint64_t)sum[i];
    *out = h;
    return DQO_OK;
}

/* One run of the query under plan p; *ms its wall time, *sum its checksum,
 * explain (len bytes) the query's explain text. */
static dqo_status run_once(dqo_ctx *ctx, const dqo_table *t, const plan *p,
                           double *ms, uint64_t *sum, char *explain, size_t len)
{
    dqo_group *g = NULL;
    dqo_table *r = NULL;
    dqo_status s = dqo_group_create(ctx, t, &g);
    if (s == DQO_OK)
        s = dqo_group_add_key(g, "k");
    if (s == DQO_OK)
        s = dqo_group_add_agg(g, DQO_AGG_COUNT_STAR, NULL, "n");
    if (s == DQO_OK)
        s = dqo_group_add_agg(g, DQO_AGG_SUM, "v", "s");
    if (s == DQO_OK)
        s = dqo_group_set_kernel(g, p->kernel);
    if (s == DQO_OK)
        s = dqo_group_set_device(g, p->location);
    if (s == DQO_OK) {
        const double t0 = now_ms();
        s = dqo_group_run(g, &r);
        *ms = now_ms() - t0;
    }
    if (s == DQO_OK)
        s = result_checksum(ctx, r, sum);
    if (explain != NULL)
        snprintf(explain, len, "%s",
                 s == DQO_OK ? dqo_group_explain(g) : dqo_ctx_errmsg(ctx));
    dqo_table_destroy(r);
    dqo_group_destroy(g);
    return s;
}

/* Warm-up and reps of plan p. The first feasible plan of a cell sets
 * *ref (have_ref); later runs must match it. */
static void run_plan(dqo_ctx *ctx, const dqo_table *t, int reps, plan *p,
                     uint64_t *ref, bool *have_ref, char *explain, size_t len)
{
    double ms[MAX_REPS + 1];
    for (int r = 0; r <= reps; r++) {
        uint64_t sum = 0;
        const dqo_status s = run_once(ctx, t, p, &ms[r], &sum, explain, len);
        if (s != DQO_OK) {
            p->feasible = false;
            snprintf(p->note, sizeof p->note, "%s: %s", dqo_status_name(s),
                     dqo_ctx_errmsg(ctx));
            return;
        }
        if (!*have_ref) {
            *ref = sum;
            *have_ref = true;
        } else if (sum != *ref) {
            wrong++;
            p->feasible = false;
            snprintf(p->note, sizeof p->note,
                     "WRONG checksum %016" PRIx64 " (reference %016" PRIx64 ")",
                     sum, *ref);
            return;
        }
    }
    p->feasible = true;
    p->median_ms = median_of(ms + 1, reps);
}

static void emit(const char *dataset, uint64_t groups, uint64_t rows,
                 const char *where, const char *plan_name, const plan *p,
                 bool chosen)
{
    char note[sizeof p->note];
    snprintf(note, sizeof note, "%s", p->note);
    csv_clean(note);
    char line[512];
    snprintf(line, sizeof line, "%s,%" PRIu64 ",%" PRIu64 ",%s,%s,%d,%.4f,%d,%s\n",
             dataset, groups, rows, where, plan_name, p->feasible,
             p->feasible ? p->median_ms : 0.0, chosen, note);
    fputs(line, stdout);
    fflush(stdout);
    if (csv_file != NULL) {
        fputs(line, csv_file);
        fflush(csv_file);
    }
}

/* The plans of a cell, in the order they run (cpu/hg first: it takes any
 * data, so it is the reference). */
static int cell_plans(const options *o, int d, uint64_t groups, plan *out)
{
    const bool sorted = d >= 2, dense = d % 2 == 0;
    static const char *const cpu_k[] = {"hg", "sphg", "og", "sog", "bsg", "radix"};
    static const char *const cl_k[] = {"hg", "sphg", "radix", "sog", "og"};
    int n = 0;
    for (int loc = 0; loc < 2; loc++) {
        if (loc == 1 && o->cl[0] == '\0')
            break;
        const char *const *ks = loc == 0 ? cpu_k : cl_k;
        const int nk = loc == 0 ? 6 : 5;
        for (int i = 0; i < nk; i++) {
            const char *k = ks[i];
            if ((strcmp(k, "sphg") == 0 && !dense) ||
                (strcmp(k, "og") == 0 && !sorted) ||
                (strcmp(k, "bsg") == 0 && groups > BSG_MAX_GROUPS))
                continue;
            memset(&out[n], 0, sizeof out[n]);
            snprintf(out[n].location, sizeof out[n].location, "%s",
                     loc == 0 ? "cpu" : o->cl);
            out[n++].kernel = k;
        }
    }
    return n;
}

/* "cpu/hg", "cl:0/radix". */
static void plan_name(const plan *p, char *out, size_t len)
{
    snprintf(out, len, "%.15s/%.8s", p->location, p->kernel);
}

/* "KERNEL on LOCATION: ..." -> "LOCATION/KERNEL"; "?" when not in that
 * form. */
static void chosen_plan(const char *explain, char *out, size_t len)
{
    char kernel[16];
    const char *on = strstr(explain, " on ");
    const char *colon = on != NULL ? strstr(on + 4, ": ") : NULL;
    if (on == NULL || colon == NULL || on - explain >= (long)sizeof kernel ||
        colon - (on + 4) > 15) {
        snprintf(out, len, "?");
        return;
    }
    memcpy(kernel, explain, (size_t)(on - explain));
    kernel[on - explain] = '\0';
    snprintf(out, len, "%.*s/%s", (int)(colon - (on + 4)), on + 4, kernel);
}

/* Runs one cell: every plan, then auto; fills c. */
static void run_cell(dqo_ctx *ctx, const options *o, const dqo_table *t, int d,
                     uint64_t groups, uint64_t rows, const char *where, cell *c)
{
    plan plans[MAX_PLANS], autop;
    const int n = cell_plans(o, d, groups, plans);
    uint64_t ref = 0;
    bool have_ref = false;
    int best = -1;
    char name[32], chose[40] = "?", explain[1024];
    for (int i = 0; i < n; i++) {
        run_plan(ctx, t, o->reps, &plans[i], &ref, &have_ref, NULL, 0);
        if (plans[i].feasible &&
            (best < 0 || plans[i].median_ms < plans[best].median_ms))
            best = i;
    }
    memset(&autop, 0, sizeof autop);
    snprintf(autop.location, sizeof autop.location, "auto");
    autop.kernel = "auto";
    run_plan(ctx, t, o->reps, &autop, &ref, &have_ref, explain, sizeof explain);
    if (autop.feasible) {
        chosen_plan(explain, chose, sizeof chose);
        snprintf(autop.note, sizeof autop.note, "chose %s: %.200s", chose, explain);
    }
    for (int i = 0; i < n; i++) {
        plan_name(&plans[i], name, sizeof name);
        emit(dataset_names[d], groups, rows, where, name, &plans[i],
             strcmp(name, chose) == 0);
    }
    emit(dataset_names[d], groups, rows, where, "auto", &autop, false);

    snprintf(c->name, sizeof c->name, "%s %" PRIu64 " groups %" PRIu64 " rows %s",
             dataset_names[d], groups, rows, where);
    c->ok = autop.feasible && best >= 0;
    if (!c->ok) {
        fprintf(stderr, "%-55s no regret: %s\n", c->name,
                best < 0 ? "no feasible plan" : autop.note);
        return;
    }
    c->regret_run = autop.median_ms / plans[best].median_ms;
    c->regret = c->regret_run;
    for (int i = 0; i < n; i++) {
        plan_name(&plans[i], name, sizeof name);
        if (strcmp(name, chose) == 0 && plans[i].feasible)
            c->regret = plans[i].median_ms / plans[best].median_ms;
    }
    fprintf(stderr,
            "%-55s best %s/%s %.2f ms, chose %s %.2f ms: regret %.2f "
            "(auto run %.2f)\n",
            c->name, plans[best].location, plans[best].kernel,
            plans[best].median_ms, chose, autop.median_ms, c->regret,
            c->regret_run);
}

/* ----------------------------------------------------------- summary */

static void summarise(const cell *cells, int n, const char *const *skipped,
                      int nskipped)
{
    double r[MAX_CELLS];
    int m = 0, worst = -1;
    for (int i = 0; i < n; i++) {
        if (!cells[i].ok)
            continue;
        r[m++] = cells[i].regret;
        if (worst < 0 || cells[i].regret > cells[worst].regret)
            worst = i;
    }
    fprintf(stderr, "\n%d cells with a regret", m);
    if (m > 0)
        fprintf(stderr, ": median regret %.3f, worst %.3f (%s)", median_of(r, m),
                cells[worst].regret, cells[worst].name);
    fprintf(stderr, "\n");
    for (int i = 0; i < nskipped; i++)
        fprintf(stderr, "skipped (--max-seconds): %s\n", skipped[i]);
    if (wrong > 0)
        fprintf(stderr, "%d WRONG results\n", wrong);
}

/* Runs the cells of one generated table at each data location. */
static void run_table(dqo_ctx *ctx, const options *o, dqo_table *t, int d,
                      uint64_t groups, uint64_t rows, cell *cells, int *ncells)
{
    for (int loc = 0; loc < 2 && *ncells < MAX_CELLS; loc++) {
        if ((loc == 0 && !o->host) || (loc == 1 && !o->device))
            continue;
        if (loc == 1 && dqo_table_to_device(ctx, t, o->cl) != DQO_OK) {
            fprintf(stderr, "%s %" PRIu64 " groups %" PRIu64
                    " rows: cannot move to %s: %s\n",
                    dataset_names[d], groups, rows, o->cl, dqo_ctx_errmsg(ctx));
            continue;
        }
        run_cell(ctx, o, t, d, groups, rows, loc == 0 ? "host" : "device",
                 &cells[(*ncells)++]);
    }
}

static int run_all(dqo_ctx *ctx, const options *o)
{
    static cell cells[MAX_CELLS];
    static char skipped_names[MAX_CELLS][96];
    const char *skipped[MAX_CELLS];
    int ncells = 0, nskipped = 0;
    const double t0 = now_ms();
    for (int ri = 0; ri < o->nrows; ri++)
        for (int d = 0; d < 4; d++)
            for (int gi = 0; gi < o->ngroups && o->dataset_on[d]; gi++) {
                const uint64_t rows = o->rows[ri], groups = o->groups[gi];
                if (o->max_seconds > 0 && now_ms() - t0 > o->max_seconds * 1e3) {
                    if (nskipped < MAX_CELLS) {
                        snprintf(skipped_names[nskipped], sizeof skipped_names[0],
                                 "%s %" PRIu64 " groups %" PRIu64 " rows",
                                 dataset_names[d], groups, rows);
                        skipped[nskipped] = skipped_names[nskipped];
                        nskipped++;
                    }
                    continue;
                }
                dqo_table *t = NULL;
                if (dqo_gen_grouping(ctx, rows, groups, d >= 2, d % 2, BENCH_SEED,
                                     &t) != DQO_OK) {
                    fprintf(stderr, "bench_regret: generating %s: %s\n",
                            dataset_names[d], dqo_ctx_errmsg(ctx));
                    return 1;
                }
                run_table(ctx, o, t, d, groups, rows, cells, &ncells);
                dqo_table_destroy(t);
            }
    summarise(cells, ncells, skipped, nskipped);
    return wrong > 0;
}

int main(int argc, char **argv)
{
    options o;
    const int pa = parse_args(argc, argv, &o);
    if (pa != 0) {
        usage(pa == 1 ? stdout : stderr);
        return pa == 1 ? 0 : 2;
    }
    dqo_ctx *ctx = NULL;
    if (dqo_ctx_create(&ctx) != DQO_OK) {
        fprintf(stderr, "bench_regret: cannot create a context\n");
        return 1;
    }
    /* Loads the machine model and its profile (warnings below). */
    (void)dqo_location_count(ctx);
    if (o.device && o.cl[0] == '\0')
        pick_device(ctx, o.cl, sizeof o.cl);
    if (o.device && o.cl[0] == '\0') {
        fprintf(stderr, "bench_regret: no OpenCL device: host data, CPU plans only\n");
        o.device = false;
    }
    const char *warn = dqo_ctx_warnings(ctx);
    if (warn[0] != '\0')
        fprintf(stderr, "bench_regret: %s (the planner's choices need a "
                        "calibration profile)\n", warn);
    if (o.csv != NULL && (csv_file = fopen(o.csv, "w")) == NULL) {
        fprintf(stderr, "bench_regret: cannot write %s\n", o.csv);
        dqo_ctx_destroy(ctx);
        return 1;
    }
    const char *header =
        "dataset,groups,rows,location,plan,feasible,median_ms,chosen,note\n";
    fputs(header, stdout);
    if (csv_file != NULL)
        fputs(header, csv_file);
    fprintf(stderr, "bench_regret: %d threads, device %s, reps %d\n",
            dqo_ctx_threads(ctx), o.cl[0] ? o.cl : "none", o.reps);
    const int rc = run_all(ctx, &o);
    if (csv_file != NULL)
        fclose(csv_file);
    dqo_ctx_destroy(ctx);
    return rc;
}
