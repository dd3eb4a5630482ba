/*
 * query.c - the SQL C API: dqo_query and dqo_explain.
 *
 * One query: sql_compile binds the text against the catalog (registered
 * tables, and CSV paths loaded for this query only); a statistics pass
 * measures the key columns (join keys, GROUP BY columns) that are not
 * cached yet, timed per table so that EXPLAIN ANALYZE can show the STATS
 * granule's real cost; the planner (planner/plan.h) chooses granules and
 * locations under the options; exec.c runs the tree.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/device.h"
#include "engine/query_int.h"
#include "planner/mav.h"
#include "sql/sql.h"

/* The catalog one query sees; owns the CSV tables loaded for it. */
typedef struct qcat {
    dqo_ctx *ctx;
    int n, cap;
    dqo_table **loaded;
} qcat;

static const dqo_table *cat_find(void *arg, const char *name)
{
    return catalog_find(((const qcat *)arg)->ctx, name);
}

static const dqo_table *cat_load(void *arg, const char *path, char *err,
                                 int errlen)
{
    qcat *c = arg;
    if (c->n == c->cap) {
        int cap = c->cap > 0 ? 2 * c->cap : 4;
        dqo_table **l = mem_realloc(c->loaded, (size_t)cap * sizeof *l);
        if (l == NULL) {
            snprintf(err, (size_t)errlen, "out of memory loading '%s'", path);
            return NULL;
        }
        c->loaded = l;
        c->cap = cap;
    }
    dqo_table *t;
    if (dqo_table_load_csv(c->ctx, path, NULL, &t) != DQO_OK) {
        snprintf(err, (size_t)errlen, "%s", dqo_ctx_errmsg(c->ctx));
        return NULL;
    }
    c->loaded[c->n++] = t;
    return t;
}

/* A query compiled, measured and planned. */
typedef struct qprep {
    qcat cat;
    lquery *q;
    plan_col_props *cols[LQ_MAX_TABLES];
    plan_table_props props[LQ_MAX_TABLES];
    double stats_ms[LQ_MAX_TABLES]; /* statistics pass time per table */
    int stats_cols;                 /* columns measured (not cached) */
    double stats_total_ms;
    plan_result *plan;
    int saved_threads; /* the context's setting, restored after the query */
} qprep;

static void qprep_free(dqo_ctx *ctx, qprep *p)
{
    plan_result_free(p->plan);
    lquery_free(p->q);
    for (int i = 0; i < LQ_MAX_TABLES; i++)
        mem_free(p->cols[i]);
    for (int i = 0; i < p->cat.n; i++)
        dqo_table_destroy(p->cat.loaded[i]);
    mem_free(p->cat.loaded);
    ctx->threads = p->saved_threads;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Measures key column e (a column reference) unless already known. */
static dqo_status measure_key(dqo_ctx *ctx, qprep *p, const lexpr *e)
{
    if (e == NULL || e->kind != LX_COL || e->table < 0 ||
        e->table >= p->q->ntables)
        return DQO_OK;
    const dqo_table *t = p->q->tables[e->table].table;
    if (e->col < 0 || e->col >= t->ncols)
        return DQO_OK;
    plan_col_props *pc = &p->cols[e->table][e->col];
    if (pc->known)
        return DQO_OK;
    dqo_column *c = (dqo_column *)&t->cols[e->col]; /* stats are a cache */
    pc->cached = c->has_stats;
    double t0 = now_ms();
    const dqo_column_stats *st;
    dqo_status s = column_stats(ctx, c, t->rows, &st);
    if (s != DQO_OK)
        return s;
    if (!pc->cached) {
        double ms = now_ms() - t0;
        p->stats_ms[e->table] += ms;
        p->stats_total_ms += ms;
        p->stats_cols++;
    }
    pc->stats = *st;
    pc->known = true;
    return DQO_OK;
}

/* What the planner knows of every base table. */
static dqo_status table_props(dqo_ctx *ctx, const plan_model *m, qprep *p)
{
    const lquery *q = p->q;
    for (int i = 0; i < q->ntables; i++) {
        const dqo_table *t = q->tables[i].table;
        p->cols[i] = mem_calloc((size_t)t->ncols + 1, sizeof *p->cols[i]);
        if (p->cols[i] == NULL)
            return ctx_error(ctx, DQO_ENOMEM, "out of memory planning");
        plan_table_props *tp = &p->props[i];
        tp->rows = t->rows;
        tp->ncols = t->ncols;
        tp->cols = p->cols[i];
        tp->location = -1;
        tp->pinned = t->ncols > 0;
        for (int c = 0; c < t->ncols; c++) {
            p->cols[i][c].type = t->cols[c].type;
            tp->row_bytes += type_width(t->cols[c].type);
            tp->pinned = tp->pinned && t->cols[c].pin != NULL;
        }
        if (t->device >= 0 && m != NULL) {
            char id[24];
            snprintf(id, sizeof id, "cl:%d", t->device);
            tp->location = plan_model_find(m, id);
        }
    }
    dqo_status s = DQO_OK;
    for (int i = 1; i < q->ntables && s == DQO_OK; i++)
        for (int k = 0; k < q->joins[i].nkeys && s == DQO_OK; k++)
            if ((s = measure_key(ctx, p, q->joins[i].left[k])) == DQO_OK)
                s = measure_key(ctx, p, q->joins[i].right[k]);
    for (int i = 0; i < q->ngroup && s == DQO_OK; i++)
        s = measure_key(ctx, p, q->group[i]);
    return s;
}

/* Adds location `id` ("auto" adds the CPU and every OpenCL device). */
static dqo_status add_location(dqo_ctx *ctx, const plan_model *m,
                               const char *id, plan_env *env)
{
    int cpu = plan_model_find(m, "cpu");
    int idx[PLAN_MAX_LOCATIONS], n = 0;
    if (strcmp(id, "auto") == 0) {
        idx[n++] = cpu < 0 ? 0 : cpu;
        for (int i = 0; i < m->nloc && n < PLAN_MAX_LOCATIONS; i++)
            if (m->loc[i].kind == PLAN_LOC_CL)
                idx[n++] = i;
    } else {
        int dev;
        dqo_status s;
        /* engine_parse_location explains a missing OpenCL platform. */
        if (strncmp(id, "cl:", 3) == 0 &&
            (s = engine_parse_location(ctx, id, &dev)) != DQO_OK)
            return s;
        if ((idx[0] = plan_model_find(m, id)) < 0)
            return dqo_location_find(ctx, id, &idx[0]); /* names known ids */
        n = 1;
    }
    for (int k = 0; k < n; k++) {
        bool dup = false;
        for (int i = 0; i < env->nloc; i++)
            dup |= env->loc[i] == idx[k];
        if (!dup && env->nloc < PLAN_MAX_LOCATIONS)
            env->loc[env->nloc++] = idx[k];
    }
    return DQO_OK;
}

/* The locations of opts->device: NULL or "auto", "cpu", "cl:N" or a comma
 * list of them. */
static dqo_status parse_locations(dqo_ctx *ctx, const plan_model *m,
                                  const char *device, plan_env *env)
{
    const char *p = device != NULL && device[0] != '\0' ? device : "auto";
    while (*p != '\0') {
        char id[32];
        size_t len = strcspn(p, ",");
        const char *tok = p;
        while (len > 0 && *tok == ' ') {
            tok++;
            len--;
        }
        while (len > 0 && tok[len - 1] == ' ')
            len--;
        if (len == 0 || len >= sizeof id)
            return ctx_error(ctx, DQO_EINVAL,
                             "device list \"%s\": expected auto, cpu, cl:N "
                             "or a comma list of them",
                             device);
        memcpy(id, tok, len);
        id[len] = '\0';
        dqo_status s = add_location(ctx, m, id, env);
        if (s != DQO_OK)
            return s;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return DQO_OK;
}

/* Compiles, measures and plans `sql` under opts. */
static dqo_status prepare(dqo_ctx *ctx, const char *sql,
                          const dqo_query_options *opts, qprep *p)
{
    static const dqo_query_options defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    memset(p, 0, sizeof *p);
    p->saved_threads = ctx->threads;
    p->cat.ctx = ctx;
    if (opts->threads < 0 || opts->threads > 4096)
        return ctx_error(ctx, DQO_EINVAL, "thread count %d is out of range "
                         "(0 = the context's setting, at most 4096)",
                         opts->threads);
    if (opts->cost_model != DQO_COST_CALIBRATED &&
        opts->cost_model != DQO_COST_PAPER)
        return ctx_error(ctx, DQO_EINVAL, "unknown cost model %d",
                         (int)opts->cost_model);
    sql_catalog cat = {&p->cat, cat_find, cat_load};
    sql_error err;
    memset(&err, 0, sizeof err);
    dqo_status s = sql_compile(sql, &cat, &p->q, &err);
    if (s != DQO_OK) {
        char msg[sizeof ctx->errmsg];
        sql_error_format(sql, &err, msg, sizeof msg);
        return ctx_error(ctx, s, "%s", msg);
    }
    plan_model *m = ctx_model(ctx);
    if (m == NULL)
        return DQO_ENOMEM;
    if ((s = table_props(ctx, m, p)) != DQO_OK)
        return s;
    plan_env env = {.model = m, .machine = &ctx->machine,
                    .settings = &ctx->settings,
                    .cost_model = opts->cost_model == DQO_COST_PAPER
                                      ? PLAN_COST_PAPER
                                      : PLAN_COST_CALIBRATED,
                    .sqo = opts->sqo != 0,
                    .threads = opts->threads > 0 ? opts->threads
                                                 : ctx_threads(ctx)};
    if ((s = parse_locations(ctx, m, opts->device, &env)) != DQO_OK)
        return s;
    if (env.sqo) { /* a classical optimiser knows only the CPU */
        int cpu = plan_model_find(m, "cpu");
        env.nloc = 1;
        env.loc[0] = cpu < 0 ? 0 : cpu;
    }
    if (!opts->no_mav && (s = catalog_mav(ctx, &env.mav)) != DQO_OK)
        return s;
    char perr[512] = "";
    s = plan_query(&env, p->q, p->props, &p->plan, perr, sizeof perr);
    if (s != DQO_OK)
        return ctx_error(ctx, s, "planning failed: %s",
                         perr[0] ? perr : dqo_status_str(s));
    if (env.mav != NULL && mav_flush(env.mav) != DQO_OK)
        ctx_warn(ctx, "could not write the MAV cache %s", mav_path(env.mav));
    if (opts->threads > 0)
        ctx->threads = opts->threads; /* restored by qprep_free */
    return DQO_OK;
}

/* A malloc'ed string from the planner as a dqo_free-able one; frees it. */
static dqo_status own_text(dqo_ctx *ctx, char *text, const char *prefix,
                           const char *suffix, char **out)
{
    if (text == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory formatting EXPLAIN");
    size_t a = strlen(prefix), b = strlen(text), c = strlen(suffix);
    char *r = mem_alloc(a + b + c + 1);
    if (r != NULL) {
        memcpy(r, prefix, a);
        memcpy(r + a, text, b);
        memcpy(r + a + b, suffix, c + 1);
    }
    free(text);
    if (r == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory formatting EXPLAIN");
    *out = r;
    return DQO_OK;
}

static dqo_status check_args(dqo_ctx *ctx, const char *sql, const void *out)
{
    if (sql == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "NULL %s",
                         sql == NULL ? "SQL text" : "out-parameter");
    return DQO_OK;
}

dqo_status dqo_query(dqo_ctx *ctx, const char *sql,
                     const dqo_query_options *opts, dqo_table **result,
                     char **explain)
{
    if (result != NULL)
        *result = NULL;
    if (explain != NULL)
        *explain = NULL;
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    dqo_status s = check_args(ctx, sql, result);
    if (s != DQO_OK)
        return s;
    qprep p;
    dqo_table *r = NULL;
    if ((s = prepare(ctx, sql, opts, &p)) == DQO_OK)
        s = qexec_run(ctx, p.q, p.plan, p.stats_ms, &r);
    if (s == DQO_OK && explain != NULL)
        s = own_text(ctx, plan_explain(p.plan, p.q, true), "", "", explain);
    qprep_free(ctx, &p);
    if (s != DQO_OK) {
        dqo_table_destroy(r);
        return s;
    }
    ctx_ok(ctx);
    *result = r;
    return DQO_OK;
}

dqo_status dqo_explain(dqo_ctx *ctx, const char *sql,
                       const dqo_query_options *opts, int dp_table,
                       char **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    dqo_status s = check_args(ctx, sql, out);
    if (s != DQO_OK)
        return s;
    qprep p;
    if ((s = prepare(ctx, sql, opts, &p)) == DQO_OK) {
        char note[256] = "";
        if (p.stats_cols > 0)
            snprintf(note, sizeof note,
                     "statistics: planning ran a statistics pass over %d key "
                     "column(s) in %.3f ms (now cached on the columns)\n",
                     p.stats_cols, p.stats_total_ms);
        char *dp = dp_table ? plan_dp_table_format(p.plan) : NULL;
        if (dp_table && dp == NULL)
            s = ctx_error(ctx, DQO_ENOMEM, "out of memory formatting the DP "
                          "table");
        char *text = plan_explain(p.plan, p.q, false);
        if (s == DQO_OK && dp != NULL && text != NULL) {
            size_t a = strlen(text), b = strlen(dp);
            char *both = malloc(a + b + 2);
            if (both != NULL) {
                memcpy(both, text, a);
                both[a] = '\n';
                memcpy(both + a + 1, dp, b + 1);
            }
            free(text);
            text = both;
        }
        if (s == DQO_OK)
            s = own_text(ctx, text, note, "", out);
        else
            free(text);
        free(dp);
    }
    qprep_free(ctx, &p);
    if (s == DQO_OK)
        ctx_ok(ctx);
    return s;
}
