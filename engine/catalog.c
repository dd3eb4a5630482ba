/*
 * catalog.c - the SQL catalog of a context: tables registered by name
 * (dqo_register_table), and the context's cache of materialised algorithmic
 * views (dqo_mav_list, dqo_mav_clear; planner/mav.c keeps the file).
 *
 * Kept apart from query.c so that creating a context does not pull the SQL
 * front end and the planner into every program that links the library.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/query_int.h"
#include "planner/mav.h"

void query_ctx_free(dqo_ctx *ctx)
{
    for (int i = 0; i < ctx->nreg; i++)
        mem_free(ctx->reg[i].name);
    mem_free(ctx->reg);
    ctx->reg = NULL;
    ctx->nreg = ctx->cap_reg = 0;
    mav_close(ctx->mav);
    ctx->mav = NULL;
}

static int reg_index(const dqo_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->nreg; i++)
        if (strcasecmp(ctx->reg[i].name, name) == 0)
            return i;
    return -1;
}

const dqo_table *catalog_find(const dqo_ctx *ctx, const char *name)
{
    int i = name != NULL ? reg_index(ctx, name) : -1;
    return i >= 0 ? ctx->reg[i].t : NULL;
}

/* An SQL identifier as sql.h defines it: [A-Za-z_][A-Za-z0-9_]*. */
static bool is_ident(const char *s)
{
    if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                       *s == '_'))
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

dqo_status dqo_register_table(dqo_ctx *ctx, const char *name,
                              const dqo_table *t)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (!is_ident(name))
        return ctx_error(ctx, DQO_EINVAL,
                         "table name '%s' is not an identifier (letters, "
                         "digits and _, not starting with a digit)",
                         name != NULL ? name : "(null)");
    int i = reg_index(ctx, name);
    if (t == NULL) { /* unregister */
        if (i >= 0) {
            mem_free(ctx->reg[i].name);
            ctx->reg[i] = ctx->reg[--ctx->nreg];
        }
        return DQO_OK;
    }
    if (i >= 0) {
        ctx->reg[i].t = t;
        return DQO_OK;
    }
    if (ctx->nreg == ctx->cap_reg) {
        int cap = ctx->cap_reg > 0 ? 2 * ctx->cap_reg : 8;
        ctx_table_reg *r = mem_realloc(ctx->reg, (size_t)cap * sizeof *r);
        if (r == NULL)
            return ctx_error(ctx, DQO_ENOMEM, "out of memory registering '%s'",
                             name);
        ctx->reg = r;
        ctx->cap_reg = cap;
    }
    char *copy = mem_strdup(name);
    if (copy == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory registering '%s'",
                         name);
    ctx->reg[ctx->nreg++] = (ctx_table_reg){copy, t};
    return DQO_OK;
}

/* ----------------------------------------------------------------- MAV */

/* The cache file: $DQO_MAV, else "mav-" + the profile's file name in the
 * profile's directory; "" when neither is known (in memory only). */
static void mav_file(dqo_ctx *ctx, char *path, size_t len)
{
    const char *env = getenv("DQO_MAV");
    path[0] = '\0';
    if (env != NULL && env[0] != '\0') {
        snprintf(path, len, "%s", env);
        return;
    }
    if (ctx_model(ctx) == NULL || ctx->profile_path[0] == '\0')
        return;
    const char *p = ctx->profile_path;
    const char *base = strrchr(p, '/');
    base = base != NULL ? base + 1 : p;
    snprintf(path, len, "%.*smav-%s", (int)(base - p), p, base);
}

dqo_status catalog_mav(dqo_ctx *ctx, mav_cache **out)
{
    if (ctx->mav == NULL) {
        char path[600], warn[512] = "";
        mav_file(ctx, path, sizeof path);
        ctx->mav = mav_open(path[0] != '\0' ? path : NULL, warn, sizeof warn);
        if (ctx->mav == NULL)
            return ctx_error(ctx, DQO_ENOMEM, "out of memory opening the MAV "
                             "cache");
        if (warn[0] != '\0')
            ctx_warn(ctx, "%s", warn);
    }
    *out = ctx->mav;
    return DQO_OK;
}

dqo_status dqo_mav_list(dqo_ctx *ctx, char **out)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    if (out == NULL)
        return ctx_error(ctx, DQO_EINVAL, "dqo_mav_list: NULL out-parameter");
    *out = NULL;
    mav_cache *m;
    dqo_status s = catalog_mav(ctx, &m);
    if (s != DQO_OK)
        return s;
    /* One line is at most key + value + "\thits " + 20 digits + "\n". */
    size_t line = MAV_KEY_MAX + MAV_VALUE_MAX + 32;
    size_t cap = (size_t)mav_count(m) * line + 1, len = 0;
    char *text = mem_alloc(cap);
    if (text == NULL)
        return ctx_error(ctx, DQO_ENOMEM, "out of memory listing MAVs");
    text[0] = '\0';
    for (int i = 0; i < mav_count(m); i++) {
        const mav_entry *e = mav_get(m, i);
        int w = snprintf(text + len, cap - len, "%s\t%s\thits %" PRIu64 "\n",
                         e->key, e->value, e->hits);
        if (w > 0)
            len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
    }
    *out = text;
    return DQO_OK;
}

dqo_status dqo_mav_clear(dqo_ctx *ctx)
{
    if (ctx == NULL)
        return DQO_EINVAL;
    ctx_ok(ctx);
    mav_cache *m;
    dqo_status s = catalog_mav(ctx, &m);
    if (s != DQO_OK)
        return s;
    s = mav_clear(m);
    if (s != DQO_OK)
        return ctx_error(ctx, s, "could not remove the MAV cache file %s",
                         mav_path(m));
    return DQO_OK;
}
