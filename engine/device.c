/*
 * device.c - tables on OpenCL devices and the device side of a grouping:
 * resident column copies (dqo_table_to_device), location ids ("auto",
 * "cpu", "cl:N") for queries, the run on a device with its fallbacks, and
 * the merge of partial results that a device returns when it ran in chunks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/device.h"

dqo_status engine_parse_location(dqo_ctx *ctx, const char *loc, int *device)
{
    if (loc == NULL || strcmp(loc, "auto") == 0) {
        *device = ENGINE_LOC_AUTO;
        return DQO_OK;
    }
    if (strcmp(loc, "cpu") == 0) {
        *device = ENGINE_LOC_CPU;
        return DQO_OK;
    }
    if (strncmp(loc, "cl:", 3) != 0)
        return ctx_error(ctx, DQO_EINVAL,
                         "unknown location '%s' (auto, cpu or cl:N)", loc);
    int idx;
    dqo_status s = dqo_location_find(ctx, loc, &idx);
    if (s != DQO_OK) {
        /* dqo_location_find names the known ids; say why none is cl:. */
        int n = 0;
        const plan_model *m = ctx->model;
        for (int i = 0; m != NULL && i < m->nloc; i++)
            n += m->loc[i].kind == PLAN_LOC_CL;
        if (n == 0) {
            char why[256];
            snprintf(why, sizeof why, "%s", dqo_ctx_errmsg(ctx));
            return ctx_error(ctx, DQO_ENOTFOUND,
                             "no OpenCL device '%s': no OpenCL platform or "
                             "device was found (install an ICD such as "
                             "pocl-opencl-icd or a GPU driver; %s)",
                             loc, why);
        }
        return s;
    }
    /* "cl:N" counts devices in the ICD loader's order, as the back-end. */
    *device = atoi(loc + 3);
    return DQO_OK;
}

const char *dqo_table_location(const dqo_table *t)
{
    return t != NULL && t->device >= 0 ? t->location : "host";
}

void dqo_table_drop_device(dqo_table *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < t->ncols; i++) {
        opencl_backend.col_free(t->cols[i].dev);
        t->cols[i].dev = NULL;
    }
    t->device = -1;
    t->location[0] = '\0';
}

dqo_status dqo_table_to_device(dqo_ctx *ctx, dqo_table *t,
                               const char *location)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL || location == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_to_device: NULL %s",
                         t == NULL ? "table" : "location");
    int dev;
    dqo_status s = engine_parse_location(ctx, location, &dev);
    if (s != DQO_OK)
        return s;
    if (dev < 0)
        return ctx_error(ctx, DQO_EINVAL,
                         "dqo_table_to_device needs an OpenCL device "
                         "(cl:N), not '%s'",
                         location);
    dqo_table_drop_device(t);
    for (int i = 0; i < t->ncols; i++) {
        dqo_column *c = &t->cols[i];
        char err[512];
        s = opencl_backend.col_upload(dev, c->data, type_width(c->type),
                                      c->valid, t->rows, &c->dev, err,
                                      sizeof err);
        if (s != DQO_OK) {
            dqo_table_drop_device(t);
            return ctx_error(ctx, s, "copying column '%s' to %s: %s", c->name,
                             location, err);
        }
    }
    t->device = dev;
    snprintf(t->location, sizeof t->location, "cl:%d", dev);
    return DQO_OK;
}

dqo_status dqo_table_pin(dqo_ctx *ctx, dqo_table *t, const char *location)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (t == NULL || location == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_table_pin: NULL %s",
                         t == NULL ? "table" : "location");
    int dev;
    dqo_status s = engine_parse_location(ctx, location, &dev);
    if (s != DQO_OK)
        return s;
    if (dev < 0)
        return ctx_error(ctx, DQO_EINVAL,
                         "dqo_table_pin needs an OpenCL device (cl:N), not "
                         "'%s'",
                         location);
    for (int i = 0; i < t->ncols; i++) {
        dqo_column *c = &t->cols[i];
        const size_t bytes = (size_t)(t->rows * type_width(c->type));
        void *ptr, *handle;
        char err[512];
        s = opencl_backend.host_pin(dev, bytes, &ptr, &handle, err,
                                    sizeof err);
        if (s != DQO_OK)
            return ctx_error(ctx, s, "pinning column '%s' for %s: %s",
                             c->name, location, err);
        ctx->cpu->place_copy(ptr, c->data, bytes, ctx_threads(ctx));
        if (c->pin != NULL)
            opencl_backend.host_unpin(c->pin);
        else if (c->map_base == NULL && c->owns_data)
            mem_free(c->data);
        c->data = ptr;
        c->pin = handle;
    }
    return DQO_OK;
}

/* The merge of a partial result: equal keys are folded with the CPU's hash
 * grouping (COUNT(*) and COUNT/SUM partials add up, MIN/MAX fold). */
dqo_status engine_merge_partial(dqo_ctx *ctx, const grp_agg *low, int nlow,
                                int threads, grp_output *go)
{
    grp_agg m[GRP_MAX_AGGS];
    if (nlow + 1 > GRP_MAX_AGGS)
        return ctx_error(ctx, DQO_EUNSUPPORTED,
                         "too many aggregates to merge a device's partial "
                         "results");
    m[0] = (grp_agg){AGG_OP_SUM, DQO_TYPE_I64, go->count, NULL, NULL};
    for (int j = 0; j < nlow; j++) {
        const bool f = grp_agg_is_f64(&low[j]);
        const agg_op op = low[j].op == AGG_OP_COUNT ? AGG_OP_SUM : low[j].op;
        m[j + 1] = (grp_agg){op, f ? DQO_TYPE_F64 : DQO_TYPE_I64, go->acc[j],
                             NULL, NULL};
    }
    dqo_column_stats ks;
    dqo_status s = ctx->cpu->stats(DQO_TYPE_I64, go->keys, NULL, go->groups,
                                   threads, &ks);
    if (s != DQO_OK)
        return ctx_error(ctx, s, "merging partial results: %s",
                         dqo_status_str(s));
    grp_input in = {.key_type = DQO_TYPE_I64, .keys = go->keys,
                    .rows = go->groups, .key_stats = &ks, .aggs = m,
                    .naggs = nlow + 1, .threads = threads};
    plan_choice pc;
    plan_force_group(GRP_KERNEL_HASH, &pc);
    grp_output r;
    s = ctx->cpu->group(&in, &pc.g, &r);
    if (s != DQO_OK)
        return ctx_error(ctx, s, "merging partial results: %s",
                         dqo_status_str(s));
    /* r.count counts partials per key; the true count is r.acc[0]. */
    grp_output out;
    memset(&out, 0, sizeof out);
    out.groups = r.groups;
    out.keys = r.keys;
    out.count = r.acc[0];
    for (int j = 0; j < nlow; j++)
        out.acc[j] = r.acc[j + 1];
    out.overflow = r.overflow;
    out.overflow_agg = r.overflow ? r.overflow_agg - 1 : 0;
    memcpy(out.detail, go->detail, sizeof out.detail);
    out.device_ms = go->device_ms;
    out.download_ms = go->download_ms;
    mem_free(r.count);
    grp_output_free(go, nlow);
    *go = out;
    return DQO_OK;
}
