/*
 * keys.c - turns any group key (one or more columns of any type, NULLs
 * allowed) into the one non-NULL integer key column that kernels take, and
 * turns the kernels' group keys back into typed key columns.
 *
 * A single non-NULL integer or string column is passed through untouched
 * (zero-copy). Everything else is packed into one i64 column: each key column
 * becomes a component code of `bits` bits,
 *   integers and strings: value - min (+1 when the column has NULLs, which
 *                          take code 0),
 *   f64:                  the rank of the value among the column's distinct
 *                          values (an order-preserving bit transform first),
 * and the codes are concatenated. When the ranges need more than 63 bits the
 * widest components are densified to ranks of their distinct values (found
 * with a grouping kernel, then binary search), and if that is not enough two
 * components are merged into one densified pair, until the key fits. Packing
 * is order-preserving component by component, so sorted output stays sorted.
 * The composite path costs one pass per component in the engine (single
 * threaded); single-column keys never take it.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/keys.h"

/* An order-preserving map of doubles into int64 (IEEE bits, with -0.0 equal
 * to +0.0 and every NaN equal and above +inf). */
static int64_t f64_ordered(double x)
{
    uint64_t u;
    if (x == 0.0)
        x = 0.0;
    if (isnan(x))
        x = NAN;
    memcpy(&u, &x, sizeof u);
    u = (u >> 63) != 0 ? ~u : u | (UINT64_C(1) << 63);
    return (int64_t)(u ^ (UINT64_C(1) << 63));
}

static double f64_from_ordered(int64_t v)
{
    uint64_t u = (uint64_t)v ^ (UINT64_C(1) << 63);
    u = (u >> 63) != 0 ? u & ~(UINT64_C(1) << 63) : ~u;
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Bits to hold codes 0..n-1 (0 bits for n <= 1). */
static unsigned bits_for(uint64_t n)
{
    unsigned b = 0;
    while (b < 64 && (n - 1) >> b != 0)
        b++;
    return n <= 1 ? 0 : b;
}

/* Value of row i of a key column as int64 (ordered transform for f64). */
static int64_t col_value(const dqo_column *c, uint64_t i)
{
    switch (c->type) {
    case DQO_TYPE_U32:
    case DQO_TYPE_STR: return ((const uint32_t *)c->data)[i];
    case DQO_TYPE_I32: return ((const int32_t *)c->data)[i];
    case DQO_TYPE_I64: return ((const int64_t *)c->data)[i];
    default: return f64_ordered(((const double *)c->data)[i]);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Index of v in the sorted array d[0..n) (v is known to be there). */
static uint64_t rank_of(const int64_t *d, uint64_t n, int64_t v)
{
    uint64_t lo = 0, hi = n;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (d[mid] <= v)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void keys_free(key_plan *kp)
{
    for (int i = 0; i < kp->ncomp; i++) {
        mem_free(kp->comp[i].codes);
        mem_free(kp->comp[i].distinct);
    }
    mem_free(kp->packed);
    memset(kp, 0, sizeof *kp);
}

/* Sorted distinct values of vals[0..n) through the back-end's hash kernel. */
static dqo_status distinct_sorted(dqo_ctx *ctx, const int64_t *vals,
                                  uint64_t n, int64_t **out, uint64_t *nout)
{
    dqo_column_stats st;
    dqo_status s = ctx->cpu->stats(DQO_TYPE_I64, vals, NULL, n,
                                   ctx_threads(ctx), &st);
    if (s != DQO_OK)
        return s;
    grp_input in = {.key_type = DQO_TYPE_I64, .keys = vals, .rows = n,
                    .key_stats = &st, .threads = ctx_threads(ctx)};
    plan_choice pc;
    plan_force_group(GRP_KERNEL_HASH, &pc);
    grp_output go;
    memset(&go, 0, sizeof go);
    if ((s = ctx->cpu->group(&in, &pc.g, &go)) != DQO_OK)
        return s;
    qsort(go.keys, go.groups, sizeof *go.keys, cmp_i64);
    *out = go.keys;
    *nout = go.groups;
    go.keys = NULL;
    grp_output_free(&go, 0);
    return DQO_OK;
}

/* Replaces component c's codes by the ranks of its non-NULL codes among
 * their distinct values; NULL rows keep code 0 and ranks start at 1 then. */
static dqo_status densify(dqo_ctx *ctx, key_comp *c, uint64_t rows)
{
    const uint8_t *valid = c->valid;
    uint64_t first = 0;
    while (valid != NULL && first < rows && valid[first] == 0)
        first++;
    /* NULL rows take a present value so they add no distinct value. */
    if (valid != NULL && first < rows)
        for (uint64_t i = 0; i < rows; i++)
            if (valid[i] == 0)
                c->codes[i] = c->codes[first];
    int64_t *d = NULL;
    uint64_t nd = 0;
    if (first < rows) {
        dqo_status s = distinct_sorted(ctx, (const int64_t *)c->codes, rows,
                                       &d, &nd);
        if (s != DQO_OK)
            return s;
    }
    uint64_t off = c->has_null ? 1 : 0;
    for (uint64_t i = 0; i < rows; i++)
        c->codes[i] = valid != NULL && valid[i] == 0
                          ? 0
                          : rank_of(d, nd, (int64_t)c->codes[i]) + off;
    mem_free(c->distinct);
    c->distinct = d;
    c->bits = bits_for(nd + off);
    c->densified = true;
    return DQO_OK;
}

/* Fills component codes from key column c (value - base, NULL = 0). */
static dqo_status comp_from_column(dqo_ctx *ctx, key_comp *k,
                                   const dqo_column *c, uint64_t rows)
{
    const dqo_column_stats *st;
    dqo_status s = column_stats(ctx, (dqo_column *)c, rows, &st);
    if (s != DQO_OK)
        return s;
    k->codes = mem_alloc(rows * sizeof *k->codes);
    if (k->codes == NULL)
        return DQO_ENOMEM;
    k->has_null = st->nulls > 0;
    k->valid = c->valid;
    k->type = c->type;
    uint64_t nn = k->has_null ? 1 : 0;
    if (c->type == DQO_TYPE_F64) {
        /* Doubles are always ranked: their bit range is not a useful width. */
        k->base = 0;
        for (uint64_t i = 0; i < rows; i++)
            k->codes[i] = (uint64_t)col_value(c, i);
        k->bits = 64;
        return densify(ctx, k, rows);
    }
    k->base = st->nulls == rows ? 0 : st->min;
    uint64_t range = st->nulls == rows ? 0 : (uint64_t)st->max - (uint64_t)st->min + 1;
    if (st->nulls == rows)
        k->bits = 0; /* only NULLs: code 0 */
    else if (range == 0 || range > UINT64_MAX - nn)
        k->bits = 64; /* the full 64-bit range: densify below */
    else
        k->bits = bits_for(range + nn);
    for (uint64_t i = 0; i < rows; i++)
        k->codes[i] = c->valid != NULL && c->valid[i] == 0
                          ? 0
                          : (uint64_t)col_value(c, i) - (uint64_t)k->base + nn;
    return DQO_OK;
}

static unsigned total_bits(const key_plan *kp)
{
    unsigned b = 0;
    for (int i = 0; i < kp->ncomp; i++)
        if (!kp->comp[i].merged_away)
            b += kp->comp[i].bits;
    return b;
}

dqo_status keys_plan(dqo_ctx *ctx, const dqo_table *t, const int *cols,
                     int ncols, key_plan *kp)
{
    memset(kp, 0, sizeof *kp);
    kp->ncols = ncols;
    uint64_t rows = t->rows;
    dqo_status s = DQO_OK;
    if (ncols == 1) {
        const dqo_column *c = &t->cols[cols[0]];
        const dqo_column_stats *st;
        if ((s = column_stats(ctx, (dqo_column *)c, rows, &st)) != DQO_OK)
            return s;
        if (c->type != DQO_TYPE_F64 && st->nulls == 0) {
            kp->direct = true;
            kp->key_type = c->type == DQO_TYPE_STR ? DQO_TYPE_U32 : c->type;
            kp->keys = c->data;
            kp->stats = *st;
            return DQO_OK;
        }
    }
    if (rows >= (UINT64_C(1) << 31))
        return ctx_error(ctx, DQO_EUNSUPPORTED,
                         "composite or NULL-able keys over %" PRIu64
                         " rows are not supported (at most 2^31 - 1)",
                         rows);
    for (int i = 0; i < ncols; i++) {
        key_comp *k = &kp->comp[kp->ncomp++];
        k->col = cols[i];
        k->child_hi = k->child_lo = -1;
        if ((s = comp_from_column(ctx, k, &t->cols[cols[i]], rows)) != DQO_OK)
            goto fail;
    }
    /* Densify the widest components until the codes fit 63 bits (so the
     * packed key is a non-negative int64). */
    while (total_bits(kp) > 63) {
        int w = -1;
        for (int i = 0; i < kp->ncomp; i++)
            if (!kp->comp[i].merged_away && !kp->comp[i].densified &&
                (w < 0 || kp->comp[i].bits > kp->comp[w].bits))
                w = i;
        if (w >= 0) {
            if ((s = densify(ctx, &kp->comp[w], rows)) != DQO_OK)
                goto fail;
            continue;
        }
        /* Every component is dense already: merge the two narrowest. */
        int a = -1, b = -1;
        for (int i = 0; i < kp->ncomp; i++) {
            if (kp->comp[i].merged_away)
                continue;
            if (a < 0 || kp->comp[i].bits < kp->comp[a].bits) {
                b = a;
                a = i;
            } else if (b < 0 || kp->comp[i].bits < kp->comp[b].bits) {
                b = i;
            }
        }
        if (b < 0 || kp->ncomp >= KEY_MAX_COMP ||
            kp->comp[a].bits + kp->comp[b].bits > 63) {
            s = ctx_error(ctx, DQO_EUNSUPPORTED,
                          "the group key needs more than 63 bits even with "
                          "every column densified");
            goto fail;
        }
        /* Keep column order: the earlier column is the high part. */
        int hi = a < b ? a : b, lo = a < b ? b : a;
        key_comp *m = &kp->comp[kp->ncomp++];
        memset(m, 0, sizeof *m);
        m->col = -1;
        m->child_hi = hi;
        m->child_lo = lo;
        m->lo_bits = kp->comp[lo].bits;
        m->codes = mem_alloc(rows * sizeof *m->codes);
        if (m->codes == NULL) {
            s = DQO_ENOMEM;
            goto fail;
        }
        for (uint64_t i = 0; i < rows; i++)
            m->codes[i] = kp->comp[hi].codes[i] << m->lo_bits |
                          kp->comp[lo].codes[i];
        kp->comp[hi].merged_away = kp->comp[lo].merged_away = true;
        m->bits = 64;
        if ((s = densify(ctx, m, rows)) != DQO_OK)
            goto fail;
    }
    /* Concatenate the live components, the first key column highest. */
    kp->packed = mem_alloc(rows * sizeof *kp->packed);
    if (kp->packed == NULL) {
        s = DQO_ENOMEM;
        goto fail;
    }
    memset(kp->packed, 0, rows * sizeof *kp->packed);
    unsigned shift = total_bits(kp);
    for (int i = 0; i < kp->ncomp; i++) {
        key_comp *k = &kp->comp[i];
        if (k->merged_away)
            continue;
        shift -= k->bits;
        k->shift = shift;
        for (uint64_t r = 0; r < rows; r++)
            kp->packed[r] |= (int64_t)(k->codes[r] << shift);
    }
    for (int i = 0; i < kp->ncomp; i++) {
        mem_free(kp->comp[i].codes);
        kp->comp[i].codes = NULL;
    }
    if ((s = ctx->cpu->stats(DQO_TYPE_I64, kp->packed, NULL, rows,
                             ctx_threads(ctx), &kp->stats)) != DQO_OK)
        goto fail;
    kp->key_type = DQO_TYPE_I64;
    kp->keys = kp->packed;
    return DQO_OK;
fail:
    keys_free(kp);
    if (s == DQO_ENOMEM)
        return ctx_error(ctx, s, "out of memory packing the group key");
    if (ctx->errmsg[0] == '\0')
        ctx_error(ctx, s, "packing the group key failed: %s",
                  dqo_status_str(s));
    return s;
}

/* Writes the decoded value of `code` of component k into output key column
 * rows, recursing into merged pairs. */
static void comp_decode(const key_plan *kp, int ci, uint64_t code,
                        uint64_t g, key_out *outs)
{
    const key_comp *k = &kp->comp[ci];
    key_out *o = NULL;
    for (int i = 0; i < kp->ncols; i++)
        if (k->col >= 0 && outs[i].col == k->col)
            o = &outs[i];
    if (o != NULL && k->has_null && code == 0) {
        o->valid[g] = 0;
        return;
    }
    if (k->densified)
        code = (uint64_t)k->distinct[code - (k->has_null ? 1 : 0)];
    if (o == NULL) {
        uint64_t mask = (UINT64_C(1) << k->lo_bits) - 1;
        comp_decode(kp, k->child_hi, code >> k->lo_bits, g, outs);
        comp_decode(kp, k->child_lo, code & mask, g, outs);
        return;
    }
    /* Integer codes are (value - base) + the NULL flag; doubles are their
     * ordered bits. */
    int64_t v = (int64_t)(code - (k->has_null ? 1 : 0) + (uint64_t)k->base);
    switch (k->type) {
    case DQO_TYPE_U32:
    case DQO_TYPE_STR: ((uint32_t *)o->data)[g] = (uint32_t)v; break;
    case DQO_TYPE_I32: ((int32_t *)o->data)[g] = (int32_t)v; break;
    case DQO_TYPE_I64: ((int64_t *)o->data)[g] = v; break;
    default: ((double *)o->data)[g] = f64_from_ordered((int64_t)code); break;
    }
}

void keys_decode(const key_plan *kp, const int64_t *gkeys, uint64_t groups,
                 key_out *outs)
{
    for (uint64_t g = 0; g < groups; g++) {
        if (kp->direct) {
            key_out *o = &outs[0];
            switch (kp->key_type) {
            case DQO_TYPE_U32: ((uint32_t *)o->data)[g] = (uint32_t)gkeys[g]; break;
            case DQO_TYPE_I32: ((int32_t *)o->data)[g] = (int32_t)gkeys[g]; break;
            default: ((int64_t *)o->data)[g] = gkeys[g]; break;
            }
            continue;
        }
        for (int i = 0; i < kp->ncomp; i++) {
            const key_comp *k = &kp->comp[i];
            if (k->merged_away)
                continue;
            uint64_t mask = k->bits >= 64 ? ~UINT64_C(0)
                                          : (UINT64_C(1) << k->bits) - 1;
            comp_decode(kp, i, ((uint64_t)gkeys[g] >> k->shift) & mask, g,
                        outs);
        }
    }
}
