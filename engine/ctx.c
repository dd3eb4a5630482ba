/*
 * ctx.c - the context: settings (threads, planner thresholds), the machine
 * model, the back-ends, and the last error's text.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"
#include "topology/topology.h"

/* Live contexts: kept scratch blocks are released with the last one. */
static atomic_int ctx_live;

dqo_status dqo_ctx_create(dqo_ctx **out)
{
    if (out == NULL)
        return DQO_EINVAL;
    *out = NULL;
    dqo_ctx *ctx = mem_calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return DQO_ENOMEM;
    plan_settings_default(&ctx->settings);
    topo_machine(&ctx->machine);
    ctx->cpu = &cpu_backend;
    ctx->cpu->configure(&ctx->machine);
    const char *trace = getenv("DQO_TRACE");
    ctx->trace = trace != NULL && *trace != '\0' && strcmp(trace, "0") != 0;
    atomic_fetch_add(&ctx_live, 1);
    *out = ctx;
    return DQO_OK;
}

void dqo_ctx_destroy(dqo_ctx *ctx)
{
    if (ctx == NULL)
        return;
    query_ctx_free(ctx);
    mem_free(ctx->model);
    mem_free(ctx);
    if (atomic_fetch_sub(&ctx_live, 1) == 1) {
        mem_scratch_trim();
        opencl_backend.trim();
    }
}

const char *dqo_ctx_errmsg(const dqo_ctx *ctx)
{
    return ctx != NULL ? ctx->errmsg : "no context (NULL handle)";
}

dqo_status dqo_ctx_set_threads(dqo_ctx *ctx, int threads)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    if (threads < 0 || threads > 4096)
        return ctx_error(ctx, DQO_EINVAL,
                         "thread count %d is out of range (0 = every core, "
                         "at most 4096)",
                         threads);
    ctx_ok(ctx);
    ctx->threads = threads;
    return DQO_OK;
}

/* OMP_NUM_THREADS as the OpenMP runtime reads it: the first number of the
 * list; 0 when unset or not a positive number. */
static int omp_num_threads_env(void)
{
    const char *v = getenv("OMP_NUM_THREADS");
    if (v == NULL)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    return end != v && n > 0 && n <= 4096 ? (int)n : 0;
}

int ctx_threads(const dqo_ctx *ctx)
{
    if (ctx->threads > 0)
        return ctx->threads;
    int env = omp_num_threads_env();
    return env > 0 ? env : ctx->machine.threads;
}

int dqo_ctx_threads(const dqo_ctx *ctx)
{
    return ctx != NULL ? ctx_threads(ctx) : 0;
}

dqo_status ctx_error(dqo_ctx *ctx, dqo_status s, const char *fmt, ...)
{
    if (ctx != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
        va_end(ap);
    }
    return s;
}

void ctx_ok(dqo_ctx *ctx)
{
    if (ctx != NULL)
        ctx->errmsg[0] = '\0';
}
