/*
 * group.c - the grouping query: the builder, the lowering of SQL aggregates
 * to the kernels' COUNT/SUM/MIN/MAX, the kernel choice (planner/rule.c or a
 * forced kernel), the run on the CPU back-end, and the typed result table.
 *
 * Lowering: COUNT(*) is the kernels' own count; COUNT(col) is that count when
 * col has no NULLs; AVG is SUM / COUNT(col); every aggregate over a NULL-able
 * column also gets COUNT(col) so that a group without values yields NULL.
 * Identical lowered aggregates are computed once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/device.h"
#include "engine/keys.h"
#include "planner/plan.h"

/* Rows a thread should have before another one is woken: 16K rows take
 * ~10 us to aggregate, about what a fork/join of the OpenMP team costs. */
#define GROUP_ROWS_PER_THREAD 16384

typedef struct group_agg {
    dqo_agg agg;
    int col;     /* -1 for COUNT(*) */
    char *alias; /* result column name */
    int lowered; /* index of the lowered aggregate, -1: the kernel's count */
    int count;   /* lowered COUNT(col), -1: the kernel's count */
} group_agg;

struct dqo_group {
    dqo_ctx *ctx;
    const dqo_table *in;
    int nkeys;
    int keys[KEY_MAX_COLS];
    int naggs, cap;
    group_agg *aggs;
    int kernel; /* -1: auto */
    int device; /* ENGINE_LOC_AUTO, ENGINE_LOC_CPU or an OpenCL device */
    char explain[1024];
};

dqo_status dqo_group_create(dqo_ctx *ctx, const dqo_table *input,
                            dqo_group **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (input == NULL || out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_group_create: NULL %s",
                         input == NULL ? "input table" : "out-parameter");
    dqo_group *g = mem_calloc(1, sizeof *g);
    if (g == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory creating a query");
    g->ctx = ctx;
    g->in = input;
    g->kernel = -1;
    g->device = ENGINE_LOC_AUTO;
    *out = g;
    return DQO_OK;
}

void dqo_group_destroy(dqo_group *g)
{
    if (g == NULL)
        return;
    for (int i = 0; i < g->naggs; i++)
        mem_free(g->aggs[i].alias);
    mem_free(g->aggs);
    mem_free(g);
}

dqo_status dqo_group_add_key(dqo_group *g, const char *column)
{
    if (g == NULL)
        return DQO_EINVAL;
    dqo_ctx *ctx = g->ctx;
    ctx_ok(ctx);
    int col;
    dqo_status s = table_find(ctx, g->in, column, &col);
    if (s != DQO_OK)
        return s;
    for (int i = 0; i < g->nkeys; i++)
        if (g->keys[i] == col)
            return ctx_error(ctx, DQO_EINVAL, "'%s' is already a group key",
                             column);
    if (g->nkeys == KEY_MAX_COLS)
        return ctx_error(ctx, DQO_EUNSUPPORTED,
                         "at most %d group key columns", KEY_MAX_COLS);
    g->keys[g->nkeys++] = col;
    return DQO_OK;
}

dqo_status dqo_group_add_agg(dqo_group *g, dqo_agg agg, const char *column,
                             const char *alias)
{
    if (g == NULL)
        return DQO_EINVAL;
    dqo_ctx *ctx = g->ctx;
    ctx_ok(ctx);
    if ((unsigned)agg >= DQO_AGG_COUNT_)
        return ctx_error(ctx, DQO_EINVAL, "unknown aggregate %d", (int)agg);
    int col = -1;
    if (agg == DQO_AGG_COUNT_STAR) {
        if (column != NULL)
            return ctx_error(ctx, DQO_EINVAL,
                             "COUNT(*) takes no column (got '%s'); use "
                             "DQO_AGG_COUNT to count a column's values",
                             column);
    } else {
        if (column == NULL)
            return ctx_error(ctx, DQO_EINVAL, "%s needs a column",
                             dqo_agg_name(agg));
        dqo_status s = table_find(ctx, g->in, column, &col);
        if (s != DQO_OK)
            return s;
        if (agg != DQO_AGG_COUNT &&
            g->in->cols[col].type == DQO_TYPE_STR)
            return ctx_error(ctx, DQO_ETYPE,
                             "%s(%s): '%s' is a string column; %s needs a "
                             "numeric column (u32, i32, i64 or f64)",
                             dqo_agg_name(agg), column, column,
                             dqo_agg_name(agg));
    }
    char name[300];
    if (alias != NULL && alias[0] != '\0')
        snprintf(name, sizeof name, "%s", alias);
    else if (col < 0)
        snprintf(name, sizeof name, "count_star");
    else
        snprintf(name, sizeof name, "%s_%s", dqo_agg_name(agg), column);
    if (g->naggs == g->cap) {
        int cap = g->cap > 0 ? 2 * g->cap : 8;
        group_agg *a = mem_realloc(g->aggs, (size_t)cap * sizeof *a);
        if (a == NULL)
            return ctx_error(ctx, DQO_ENOMEM, "out of memory adding %s",
                             name);
        g->aggs = a;
        g->cap = cap;
    }
    group_agg *a = &g->aggs[g->naggs];
    memset(a, 0, sizeof *a);
    a->alias = mem_strdup(name);
    if (a->alias == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory adding %s", name);
    a->agg = agg;
    a->col = col;
    g->naggs++;
    return DQO_OK;
}

dqo_status dqo_group_set_kernel(dqo_group *g, const char *kernel)
{
    if (g == NULL)
        return DQO_EINVAL;
    ctx_ok(g->ctx);
    if (kernel != NULL && strcmp(kernel, "auto") == 0) {
        g->kernel = -1;
        return DQO_OK;
    }
    int k = grp_kernel_parse(kernel);
    if (k < 0)
        return ctx_error(g->ctx, DQO_EINVAL,
                         "unknown kernel '%s' (auto, hg, sphg, og, sog, bsg "
                         "or radix)",
                         kernel != NULL ? kernel : "(null)");
    g->kernel = k;
    return DQO_OK;
}

dqo_status dqo_group_set_device(dqo_group *g, const char *location)
{
    if (g == NULL)
        return DQO_EINVAL;
    ctx_ok(g->ctx);
    int dev;
    dqo_status s = engine_parse_location(g->ctx, location, &dev);
    if (s == DQO_OK)
        g->device = dev;
    return s;
}

const char *dqo_group_explain(const dqo_group *g)
{
    return g != NULL ? g->explain : "";
}

/* The index of lowered aggregate (op, col), added if new. */
static int lower_one(const dqo_table *t, grp_agg *low, int *nlow, agg_op op,
                     int col)
{
    const dqo_column *c = &t->cols[col];
    dqo_type ty = c->type == DQO_TYPE_STR ? DQO_TYPE_U32 : c->type;
    for (int i = 0; i < *nlow; i++)
        if (low[i].op == op && low[i].data == c->data && low[i].type == ty)
            return i;
    if (*nlow == GRP_MAX_AGGS)
        return -2;
    low[*nlow] = (grp_agg){op, ty, c->data, c->valid, c->dev};
    return (*nlow)++;
}

static dqo_status group_lower(dqo_group *g, grp_agg *low, int *nlow)
{
    const dqo_table *t = g->in;
    *nlow = 0;
    for (int i = 0; i < g->naggs; i++) {
        group_agg *a = &g->aggs[i];
        a->lowered = a->count = -1;
        if (a->col < 0)
            continue;
        bool nullable = t->cols[a->col].valid != NULL;
        if (nullable)
            a->count = lower_one(t, low, nlow, AGG_OP_COUNT, a->col);
        switch (a->agg) {
        case DQO_AGG_COUNT: a->lowered = a->count; break;
        case DQO_AGG_SUM:
        case DQO_AGG_AVG:
            a->lowered = lower_one(t, low, nlow, AGG_OP_SUM, a->col);
            break;
        case DQO_AGG_MIN:
            a->lowered = lower_one(t, low, nlow, AGG_OP_MIN, a->col);
            break;
        case DQO_AGG_MAX:
            a->lowered = lower_one(t, low, nlow, AGG_OP_MAX, a->col);
            break;
        default: break;
        }
        if (a->lowered == -2 || a->count == -2)
            return ctx_error(g->ctx, DQO_EUNSUPPORTED,
                             "too many aggregates (at most %d distinct ones)",
                             GRP_MAX_AGGS);
    }
    return DQO_OK;
}

/* The result type of aggregate a. */
static dqo_type agg_result_type(const dqo_table *t, const group_agg *a)
{
    switch (a->agg) {
    case DQO_AGG_COUNT_STAR:
    case DQO_AGG_COUNT: return DQO_TYPE_I64;
    case DQO_AGG_AVG: return DQO_TYPE_F64;
    case DQO_AGG_SUM:
        return t->cols[a->col].type == DQO_TYPE_F64 ? DQO_TYPE_F64
                                                    : DQO_TYPE_I64;
    default: return t->cols[a->col].type;
    }
}

/* Copies a dictionary (codes stay the same). NULL on allocation failure. */
static dqo_dict *dict_copy(const dqo_dict *d)
{
    dqo_dict *c = dict_create();
    for (uint32_t i = 0; c != NULL && i < dict_size(d); i++) {
        const char *s = dict_get(d, i);
        uint32_t code;
        if (dict_intern(c, s, strlen(s), &code) != DQO_OK) {
            dict_destroy(c);
            return NULL;
        }
    }
    return c;
}

/* Builds the result's key columns into r. */
static dqo_status result_keys(dqo_group *g, const key_plan *kp,
                              const grp_output *go, dqo_table *r)
{
    dqo_ctx *ctx = g->ctx;
    const dqo_table *t = g->in;
    uint64_t n = go->groups;
    key_out outs[KEY_MAX_COLS];
    memset(outs, 0, sizeof outs);
    dqo_status s = DQO_OK;
    for (int i = 0; i < g->nkeys; i++) {
        const dqo_column *c = &t->cols[g->keys[i]];
        outs[i].col = g->keys[i];
        outs[i].data = mem_alloc(n * type_width(c->type));
        outs[i].valid = mem_alloc(n);
        if (outs[i].data == NULL || outs[i].valid == NULL) {
            s = DQO_ENOMEM;
            goto fail;
        }
        memset(outs[i].valid, 1, n);
    }
    keys_decode(kp, go->keys, n, outs);
    int i = 0;
    for (; i < g->nkeys; i++) {
        const dqo_column *c = &t->cols[g->keys[i]];
        bool any_null = memchr(outs[i].valid, 0, n) != NULL;
        if (!any_null) {
            mem_free(outs[i].valid);
            outs[i].valid = NULL;
        }
        dqo_dict *d = NULL;
        if (c->dict != NULL && (d = dict_copy(c->dict)) == NULL) {
            s = DQO_ENOMEM;
            goto fail;
        }
        s = table_add_owned(ctx, r, c->name, c->type, outs[i].data,
                            outs[i].valid, n, d);
        outs[i].data = outs[i].valid = NULL;
        if (s != DQO_OK)
            goto fail;
    }
    return DQO_OK;
fail:
    for (int j = 0; j < g->nkeys; j++) {
        mem_free(outs[j].data);
        mem_free(outs[j].valid);
    }
    if (s == DQO_ENOMEM)
        return ctx_error(ctx, s, "out of memory building the result keys");
    return s;
}

/* The index in `uses` of the count array aggregate a reads: a lowered
 * COUNT(col), or GRP_MAX_AGGS for the kernel's COUNT(*). */
static int agg_count_src(const group_agg *a)
{
    return a->count >= 0 ? a->count : GRP_MAX_AGGS;
}

/* Counts how many result columns read each kernel output array, so that a
 * column that is the only reader of an array can take it over instead of
 * copying it (at 10M groups a copy is 80 MB of fresh pages). */
static void agg_uses(const dqo_group *g, int uses[GRP_MAX_AGGS + 1])
{
    memset(uses, 0, (GRP_MAX_AGGS + 1) * sizeof *uses);
    for (int i = 0; i < g->naggs; i++) {
        const group_agg *a = &g->aggs[i];
        bool counts = a->agg == DQO_AGG_COUNT_STAR || a->agg == DQO_AGG_COUNT ||
                      a->agg == DQO_AGG_AVG || a->count >= 0;
        if (counts)
            uses[agg_count_src(a)]++;
        if (a->lowered >= 0 && a->agg != DQO_AGG_COUNT)
            uses[a->lowered]++;
    }
}

/* Builds one aggregate's result column into r, taking the kernel's array
 * over when this column is its only reader and needs it unchanged. */
static dqo_status result_agg(dqo_group *g, const group_agg *a,
                             const grp_agg *low, grp_output *go,
                             const int *uses, dqo_table *r)
{
    uint64_t n = go->groups;
    dqo_type ty = agg_result_type(g->in, a);
    void *data = NULL;
    uint8_t *valid = NULL;
    const int64_t *cnt = a->count >= 0 ? go->acc[a->count] : go->count;
    /* A group with no values of a NULL-able column gets NULL. */
    if (a->agg != DQO_AGG_COUNT && a->agg != DQO_AGG_COUNT_STAR &&
        a->count >= 0) {
        for (uint64_t i = 0; i < n && valid == NULL; i++) {
            if (cnt[i] == 0) {
                if ((valid = mem_alloc(n)) == NULL)
                    goto oom;
                memset(valid, 1, n);
            }
        }
        for (uint64_t i = 0; valid != NULL && i < n; i++)
            valid[i] = cnt[i] != 0;
    }
    void **own = NULL; /* the output slot this column may take over */
    int src = -1;
    if (a->agg == DQO_AGG_COUNT_STAR || a->agg == DQO_AGG_COUNT) {
        src = agg_count_src(a);
        own = a->count >= 0 ? &go->acc[a->count] : (void **)&go->count;
    } else if (a->agg != DQO_AGG_AVG && valid == NULL &&
               (ty == DQO_TYPE_I64 || ty == DQO_TYPE_F64)) {
        src = a->lowered;
        own = &go->acc[a->lowered];
    }
    if (own != NULL && *own != NULL && uses[src] == 1) {
        data = *own;
        *own = NULL;
        return table_add_owned(g->ctx, r, a->alias, ty, data, valid, n, NULL);
    }
    if ((data = mem_alloc(n * type_width(ty))) == NULL)
        goto oom;
    const void *acc = a->lowered >= 0 ? go->acc[a->lowered] : NULL;
    bool facc = a->lowered >= 0 && grp_agg_is_f64(&low[a->lowered]);
    switch (a->agg) {
    case DQO_AGG_COUNT_STAR:
    case DQO_AGG_COUNT:
        memcpy(data, cnt, n * sizeof(int64_t));
        break;
    case DQO_AGG_AVG:
        for (uint64_t i = 0; i < n; i++) {
            double sum = facc ? ((const double *)acc)[i]
                              : (double)((const int64_t *)acc)[i];
            ((double *)data)[i] = cnt[i] != 0 ? sum / (double)cnt[i] : 0.0;
        }
        break;
    default:
        /* SUM, MIN, MAX: narrow the int64 accumulator to the result type. */
        for (uint64_t i = 0; i < n; i++) {
            bool empty = valid != NULL && valid[i] == 0;
            switch (ty) {
            case DQO_TYPE_F64:
                ((double *)data)[i] = empty ? 0.0 : ((const double *)acc)[i];
                break;
            case DQO_TYPE_I64:
                ((int64_t *)data)[i] = empty ? 0 : ((const int64_t *)acc)[i];
                break;
            case DQO_TYPE_I32:
                ((int32_t *)data)[i] =
                    empty ? 0 : (int32_t)((const int64_t *)acc)[i];
                break;
            default:
                ((uint32_t *)data)[i] =
                    empty ? 0 : (uint32_t)((const int64_t *)acc)[i];
                break;
            }
        }
    }
    return table_add_owned(g->ctx, r, a->alias, ty, data, valid, n, NULL);
oom:
    mem_free(data);
    mem_free(valid);
    return ctx_error(g->ctx, DQO_ENOMEM, "out of memory building column '%s'",
                     a->alias);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* True when every column the query reads (keys and aggregates) has a
 * resident copy on the table's device. */
static bool group_resident(const dqo_group *g)
{
    const dqo_table *t = g->in;
    if (t->device < 0)
        return false;
    for (int i = 0; i < g->nkeys; i++)
        if (t->cols[g->keys[i]].dev == NULL)
            return false;
    for (int i = 0; i < g->naggs; i++)
        if (g->aggs[i].col >= 0 && t->cols[g->aggs[i].col].dev == NULL)
            return false;
    return true;
}

/* The OpenCL device the query runs on, or -1 for the CPU, when the kernel
 * is forced: the device asked for, or under auto the device that holds
 * the table's columns. */
static int group_device(const dqo_group *g)
{
    if (g->device >= 0)
        return g->device;
    if (g->device == ENGINE_LOC_AUTO && group_resident(g))
        return g->in->device;
    return -1;
}

/* True when every column the query reads lives in page-locked memory. */
static bool group_pinned(const dqo_group *g)
{
    const dqo_table *t = g->in;
    for (int i = 0; i < g->nkeys; i++)
        if (t->cols[g->keys[i]].pin == NULL)
            return false;
    for (int i = 0; i < g->naggs; i++)
        if (g->aggs[i].col >= 0 && t->cols[g->aggs[i].col].pin == NULL)
            return false;
    return true;
}

/* The model location index of OpenCL device `dev` ("cl:N"), or -1. */
static int group_cl_index(const plan_model *m, int dev)
{
    char id[24];
    snprintf(id, sizeof id, "cl:%d", dev);
    return plan_model_find(m, id);
}

/* The planner's cost-based choice of kernel and location (kernel auto):
 * among the CPU and every OpenCL device under device auto, or only the
 * location asked for. Devices that compute on the host's own cores (an
 * OpenCL CPU device such as PoCL) are candidates under auto only when
 * they hold the table: they share the cores the CPU kernels use. Returns
 * the OpenCL device to run on, or -1 for the CPU; false when there is no
 * machine model (the caller then uses the property rule). */
static bool group_pick(dqo_group *g, const key_plan *kp, const grp_agg *low,
                       int nlow, plan_choice *pc, int *dev)
{
    dqo_ctx *ctx = g->ctx;
    const plan_model *m = ctx_model(ctx);
    if (m == NULL) {
        ctx_ok(ctx);
        return false;
    }
    plan_env env = {.model = m, .machine = &ctx->machine,
                    .settings = &ctx->settings,
                    .cost_model = PLAN_COST_CALIBRATED,
                    .threads = ctx_threads(ctx)};
    const int cpu = plan_model_find(m, "cpu");
    const int resident = group_resident(g) ? group_cl_index(m, g->in->device)
                                           : -1;
    if (g->device >= 0) {
        env.loc[env.nloc++] = group_cl_index(m, g->device);
    } else {
        env.loc[env.nloc++] = cpu < 0 ? 0 : cpu;
        for (int i = 0; g->device == ENGINE_LOC_AUTO && i < m->nloc; i++)
            if (m->loc[i].kind == PLAN_LOC_CL &&
                (m->loc[i].link != PLAN_LINK_HOST || i == resident) &&
                env.nloc < PLAN_MAX_LOCATIONS)
                env.loc[env.nloc++] = i;
    }
    if (env.loc[0] < 0)
        return false;
    const dqo_column_stats *ks = &kp->stats;
    uint64_t range = (uint64_t)ks->max - (uint64_t)ks->min + 1;
    plan_props key = {
        .rows = ks->rows - ks->nulls, .ndv = ks->distinct, .min = ks->min,
        .max = ks->max,
        .sorted = plan_stats_clustered(&ctx->settings, ks),
        .dense = range != 0 && (double)ks->distinct / (double)range >=
                                   ctx->settings.direct_min_density,
        .location = resident};
    uint64_t row_bytes = type_width(kp->key_type);
    for (int i = 0; i < nlow; i++)
        row_bytes += type_width(low[i].type);
    plan_group_pick pick;
    if (plan_group_choose(&env, &key, nlow, row_bytes, group_pinned(g),
                          &pick) != DQO_OK)
        return false;
    *pc = pick.choice;
    *dev = -1;
    if (pick.location >= 0 && pick.location < m->nloc &&
        m->loc[pick.location].kind == PLAN_LOC_CL)
        sscanf(m->loc[pick.location].id, "cl:%d", dev);
    return true;
}

dqo_status dqo_group_run(dqo_group *g, dqo_table **result)
{
    if (result != NULL)
        *result = NULL;
    if (g == NULL)
        return DQO_EINVAL;
    dqo_ctx *ctx = g->ctx;
    ctx_ok(ctx);
    if (result == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_group_run: NULL out-parameter");
    if (g->nkeys == 0)
        return ctx_error(ctx, DQO_EINVAL,
                         "no group key: add one with dqo_group_add_key");
    g->explain[0] = '\0';
    double t0 = now_ms();
    grp_agg low[GRP_MAX_AGGS];
    int nlow;
    key_plan kp;
    grp_output go;
    memset(&go, 0, sizeof go);
    dqo_table *r = NULL;
    dqo_status s = group_lower(g, low, &nlow);
    if (s != DQO_OK)
        return s;
    if ((s = keys_plan(ctx, g->in, g->keys, g->nkeys, &kp)) != DQO_OK)
        return s;
    double t_keys = now_ms();

    /* Waking a thread costs microseconds; below GROUP_ROWS_PER_THREAD rows
     * per thread the extra threads cost more than they save. */
    int threads = ctx_threads(ctx);
    if ((uint64_t)threads > g->in->rows / GROUP_ROWS_PER_THREAD)
        threads = (int)(g->in->rows / GROUP_ROWS_PER_THREAD) + 1;
    grp_input in = {.key_type = kp.key_type, .keys = kp.keys,
                    .rows = g->in->rows, .key_stats = &kp.stats, .aggs = low,
                    .naggs = nlow, .threads = threads};
    plan_choice pc;
    const char *kname = NULL;
    char where[64] = "cpu";
    char note[600] = "";
    int dev = group_device(g);
    bool picked = false;
    if (g->kernel < 0)
        picked = group_pick(g, &kp, low, nlow, &pc, &dev);
    if (dev >= 0) {
        if (g->kernel >= 0)
            plan_force_group(g->kernel, &pc);
        else if (!picked)
            plan_choose_group_device(&ctx->settings, &kp.stats, nlow, &pc);
        kname = grp_kernel_name((grp_kernel)pc.g.kernel);
        in.device = dev;
        in.keys_dev = kp.direct && g->nkeys == 1 && g->in->device == dev
                          ? g->in->cols[g->keys[0]].dev
                          : NULL;
        in.copy = ctx->cpu->place_copy;
        if (g->in->device != dev) /* resident copies elsewhere: stream */
            for (int i = 0; i < nlow; i++)
                low[i].dev = NULL;
        s = opencl_backend.group(&in, &pc.g, &go);
        if (s == DQO_OK && go.partial)
            s = engine_merge_partial(ctx, low, nlow, threads, &go);
        if (s == DQO_OK) {
            snprintf(where, sizeof where, "cl:%d", dev);
        } else {
            const bool wrapped = strstr(go.error, "wrapped") != NULL;
            if (g->device != ENGINE_LOC_AUTO && !wrapped) {
                s = ctx_error(ctx, s, "kernel %s on cl:%d: %s", kname, dev,
                              go.error[0] ? go.error : dqo_status_str(s));
                goto fail;
            }
            snprintf(note, sizeof note, "; cl:%d could not run it (%s), so it "
                     "ran on the CPU", dev, go.error[0] ? go.error
                                                         : dqo_status_str(s));
            grp_output_free(&go, nlow);
            dev = -1;
            picked = false; /* the device's choice does not hold on the CPU */
        }
    }
    if (dev < 0) {
        if (g->kernel >= 0)
            plan_force_group(g->kernel, &pc);
        else if (!picked)
            plan_choose_group(&ctx->settings, &ctx->machine, &kp.stats, nlow,
                              &pc);
        kname = grp_kernel_name((grp_kernel)pc.g.kernel);
        in.device = 0;
        in.keys_dev = NULL;
        s = ctx->cpu->group(&in, &pc.g, &go);
    }
    double t_kernel = now_ms();
    if (s == DQO_EUNSUPPORTED) {
        s = ctx_error(ctx, s,
                      "kernel %s cannot group this key (%s, range %" PRId64
                      "..%" PRId64 ", about %" PRIu64 " groups)%s%s",
                      kname, dqo_type_name(kp.key_type), kp.stats.min,
                      kp.stats.max, kp.stats.distinct, go.detail[0] ? ": " : "",
                      go.detail);
        goto fail;
    }
    if (s != DQO_OK) {
        s = ctx_error(ctx, s, "kernel %s failed: %s", kname,
                      dqo_status_str(s));
        goto fail;
    }
    if (go.overflow) {
        const char *what = "an integer SUM";
        for (int i = 0; i < g->naggs; i++)
            if (g->aggs[i].lowered == go.overflow_agg)
                what = g->aggs[i].alias;
        s = ctx_error(ctx, DQO_EOVERFLOW,
                      "%s: the integer sum leaves the int64 range", what);
        goto fail;
    }
    if ((s = table_new(ctx, &r)) != DQO_OK)
        goto fail;
    if ((s = result_keys(g, &kp, &go, r)) != DQO_OK)
        goto fail;
    int uses[GRP_MAX_AGGS + 1];
    agg_uses(g, uses);
    for (int i = 0; i < g->naggs; i++)
        if ((s = result_agg(g, &g->aggs[i], low, &go, uses, r)) != DQO_OK)
            goto fail;
    double t_end = now_ms();
    char dtime[96] = "";
    if (strcmp(where, "cpu") != 0)
        snprintf(dtime, sizeof dtime, ", on the device %.3f ms + download "
                 "%.3f ms", go.device_ms, go.download_ms);
    snprintf(g->explain, sizeof g->explain,
             "%s on %s: %s; %" PRIu64 " rows -> %" PRIu64 " groups, %d "
             "threads%s%s%s (keys %.3f ms, kernel %.3f ms%s, result %.3f ms)%.300s",
             kname, where, pc.why, g->in->rows, go.groups, in.threads,
             kp.direct ? "" : ", packed key",
             go.detail[0] ? "; " : "", go.detail, t_keys - t0,
             t_kernel - t_keys, dtime, t_end - t_kernel, note);
    if (ctx->trace)
        fprintf(stderr, "dqo trace: group %s\n", g->explain);
    grp_output_free(&go, nlow);
    keys_free(&kp);
    *result = r;
    return DQO_OK;
fail:
    grp_output_free(&go, nlow);
    keys_free(&kp);
    dqo_table_destroy(r);
    return s;
}

dqo_status dqo_gen_grouping(dqo_ctx *ctx, uint64_t rows, uint64_t groups,
                            int sorted, int sparse, uint64_t seed,
                            dqo_table **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_gen_grouping: NULL out-parameter");
    if (groups == 0 || groups > (UINT64_C(1) << 32))
        return ctx_error(ctx, DQO_EINVAL,
                         "groups must be in 1..2^32 (got %" PRIu64 ")", groups);
    if (rows > (UINT64_C(1) << 40))
        return ctx_error(ctx, DQO_EINVAL, "rows %" PRIu64 " is too many",
                         rows);
    uint32_t *k = mem_alloc(rows * sizeof *k);
    int32_t *v = mem_alloc(rows * sizeof *v);
    dqo_table *t = NULL;
    dqo_status s;
    if (k == NULL || v == NULL) {
        mem_free(k);
        mem_free(v);
        return ctx_error(ctx, DQO_ENOMEM,
                         "out of memory generating %" PRIu64 " rows", rows);
    }
    s = ctx->cpu->gen_grouping(k, v, rows, groups, sorted != 0, sparse != 0,
                               seed, ctx_threads(ctx));
    if (s != DQO_OK) {
        mem_free(k);
        mem_free(v);
        return ctx_error(ctx, s, "generating the dataset failed: %s",
                         dqo_status_str(s));
    }
    if ((s = table_new(ctx, &t)) != DQO_OK) {
        mem_free(k);
        mem_free(v);
        return s;
    }
    /* table_add_owned takes its array over even when it fails. */
    if ((s = table_add_owned(ctx, t, "k", DQO_TYPE_U32, k, NULL, rows, NULL)) !=
        DQO_OK) {
        mem_free(v);
        dqo_table_destroy(t);
        return s;
    }
    if ((s = table_add_owned(ctx, t, "v", DQO_TYPE_I32, v, NULL, rows, NULL)) !=
        DQO_OK) {
        dqo_table_destroy(t);
        return s;
    }
    *out = t;
    return DQO_OK;
}
