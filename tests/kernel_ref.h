/*
 * kernel_ref.h - the naive reference that every grouping kernel is checked
 * against, and the comparison of a kernel's output with it.
 *
 * The reference sorts (key, row) pairs with qsort and folds each run of equal
 * keys in row order: slow, obviously right, and independent of every kernel
 * and of agg.c. It also computes what the checks need beyond the values: the
 * first row of each group (OG keeps the order of first appearance), the
 * valid values per aggregate and group (MIN/MAX of a group with no valid
 * value are the accumulator's identity, which the engine turns into NULL, so
 * they are not compared), the sum of magnitudes of f64 SUMs (their tolerance)
 * and whether an integer SUM leaves the int64 range (computed exactly in
 * __int128, so only a final sum out of range counts).
 *
 * The exact key statistics a grp_input needs are also computed here, so that
 * kernel tests do not depend on cpu_stats being right.
 */
#ifndef DQO_TESTS_KERNEL_REF_H
#define DQO_TESTS_KERNEL_REF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"

typedef struct ref_output {
    uint64_t groups;
    int64_t *keys;  /* ascending */
    int64_t *count; /* COUNT(*) */
    uint64_t *first_row;
    int64_t *iacc[GRP_MAX_AGGS];  /* integer accumulators (and COUNT) */
    double *facc[GRP_MAX_AGGS];   /* f64 SUM/MIN/MAX */
    int64_t *nvalid[GRP_MAX_AGGS]; /* valid rows per group */
    double *fabs_sum[GRP_MAX_AGGS]; /* sum of |x| of f64 SUMs */
    bool overflow[GRP_MAX_AGGS];  /* some group's SUM left int64 */
} ref_output;

typedef struct ref_pair {
    int64_t key;
    uint64_t row;
} ref_pair;

static int ref_pair_cmp(const void *a, const void *b)
{
    const ref_pair *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static inline int64_t ref_key(const grp_input *in, uint64_t i)
{
    switch (in->key_type) {
    case DQO_TYPE_U32: return ((const uint32_t *)in->keys)[i];
    case DQO_TYPE_I32: return ((const int32_t *)in->keys)[i];
    default: return ((const int64_t *)in->keys)[i];
    }
}

static inline int64_t ref_ival(const grp_agg *a, uint64_t i)
{
    switch (a->type) {
    case DQO_TYPE_U32: return ((const uint32_t *)a->data)[i];
    case DQO_TYPE_I32: return ((const int32_t *)a->data)[i];
    default: return ((const int64_t *)a->data)[i];
    }
}

/* Exact statistics of a key column (what cpu_stats promises, with the
 * distinct count exact instead of estimated). */
static void ref_key_stats(dqo_type type, const void *keys, uint64_t rows,
                          dqo_column_stats *st)
{
    grp_input in = {.key_type = type, .keys = keys, .rows = rows};
    memset(st, 0, sizeof *st);
    st->rows = rows;
    if (rows == 0) {
        st->order = DQO_ORDER_CONST;
        return;
    }
    bool asc = true, desc = true;
    int64_t mn = ref_key(&in, 0), mx = mn;
    st->runs = 1;
    for (uint64_t i = 1; i < rows; i++) {
        int64_t k = ref_key(&in, i), p = ref_key(&in, i - 1);
        st->runs += k != p;
        asc = asc && k >= p;
        desc = desc && k <= p;
        mn = k < mn ? k : mn;
        mx = k > mx ? k : mx;
    }
    st->min = mn;
    st->max = mx;
    st->fmin = (double)mn;
    st->fmax = (double)mx;
    st->order = asc && desc ? DQO_ORDER_CONST
                : asc       ? DQO_ORDER_ASC
                : desc      ? DQO_ORDER_DESC
                            : DQO_ORDER_NONE;
    ref_pair *p = malloc(rows * sizeof *p);
    for (uint64_t i = 0; i < rows; i++)
        p[i] = (ref_pair){ref_key(&in, i), i};
    qsort(p, rows, sizeof *p, ref_pair_cmp);
    st->distinct = 1;
    for (uint64_t i = 1; i < rows; i++)
        st->distinct += p[i].key != p[i - 1].key;
    free(p);
}

static void ref_free(ref_output *r)
{
    free(r->keys);
    free(r->count);
    free(r->first_row);
    for (int a = 0; a < GRP_MAX_AGGS; a++) {
        free(r->iacc[a]);
        free(r->facc[a]);
        free(r->nvalid[a]);
        free(r->fabs_sum[a]);
    }
    memset(r, 0, sizeof *r);
}

static void ref_compute(const grp_input *in, ref_output *r)
{
    memset(r, 0, sizeof *r);
    const uint64_t n = in->rows;
    ref_pair *p = malloc((n + 1) * sizeof *p);
    for (uint64_t i = 0; i < n; i++)
        p[i] = (ref_pair){ref_key(in, i), i};
    qsort(p, n, sizeof *p, ref_pair_cmp);
    uint64_t g = 0;
    for (uint64_t i = 0; i < n; i++)
        g += i == 0 || p[i].key != p[i - 1].key;
    r->groups = g;
    const size_t m = g + 1;
    r->keys = calloc(m, sizeof *r->keys);
    r->count = calloc(m, sizeof *r->count);
    r->first_row = calloc(m, sizeof *r->first_row);
    for (int a = 0; a < in->naggs; a++) {
        r->iacc[a] = calloc(m, sizeof *r->iacc[a]);
        r->facc[a] = calloc(m, sizeof *r->facc[a]);
        r->nvalid[a] = calloc(m, sizeof *r->nvalid[a]);
        r->fabs_sum[a] = calloc(m, sizeof *r->fabs_sum[a]);
    }
    for (uint64_t i = 0, gi = 0; i < n; gi++) {
        uint64_t j = i;
        while (j < n && p[j].key == p[i].key)
            j++;
        r->keys[gi] = p[i].key;
        r->count[gi] = (int64_t)(j - i);
        r->first_row[gi] = p[i].row;
        for (int ai = 0; ai < in->naggs; ai++) {
            const grp_agg *a = &in->aggs[ai];
            __int128 isum = 0;
            int64_t imin = INT64_MAX, imax = INT64_MIN, nv = 0;
            double fsum = 0, fmin = INFINITY, fmax = -INFINITY, fab = 0;
            for (uint64_t q = i; q < j; q++) {
                const uint64_t row = p[q].row;
                if (a->valid != NULL && a->valid[row] == 0)
                    continue;
                nv++;
                if (a->type == DQO_TYPE_F64) {
                    double x = ((const double *)a->data)[row];
                    fsum += x;
                    fab += fabs(x);
                    fmin = x < fmin ? x : fmin;
                    fmax = x > fmax ? x : fmax;
                } else {
                    int64_t x = ref_ival(a, row);
                    isum += x;
                    imin = x < imin ? x : imin;
                    imax = x > imax ? x : imax;
                }
            }
            r->nvalid[ai][gi] = nv;
            r->fabs_sum[ai][gi] = fab;
            switch (a->op) {
            case AGG_OP_COUNT: r->iacc[ai][gi] = nv; break;
            case AGG_OP_SUM:
                if (a->type == DQO_TYPE_F64)
                    r->facc[ai][gi] = fsum;
                else if (isum > INT64_MAX || isum < INT64_MIN)
                    r->overflow[ai] = true;
                else
                    r->iacc[ai][gi] = (int64_t)isum;
                break;
            case AGG_OP_MIN:
                r->iacc[ai][gi] = imin;
                r->facc[ai][gi] = fmin;
                break;
            case AGG_OP_MAX:
                r->iacc[ai][gi] = imax;
                r->facc[ai][gi] = fmax;
                break;
            }
        }
        i = j;
    }
    free(p);
}

/* Order of a kernel's output groups by key (kernels may emit any order). */
static const grp_output *ref_sort_out_;
static int ref_out_cmp(const void *a, const void *b)
{
    int64_t x = ref_sort_out_->keys[*(const uint64_t *)a];
    int64_t y = ref_sort_out_->keys[*(const uint64_t *)b];
    return x < y ? -1 : x > y;
}

/* Compares a kernel's output with the reference. On the first difference
 * writes a description into msg and returns false. Integer SUMs that the
 * reference marks as overflowed are not compared (their value is
 * undefined); f64 SUMs may differ by rounding (1e-9 of the sum of
 * magnitudes, the order of additions is the kernel's). */
static bool ref_compare(const grp_input *in, const ref_output *r,
                        const grp_output *out, char *msg, size_t len)
{
    if (out->groups != r->groups) {
        snprintf(msg, len, "groups %llu, expected %llu",
                 (unsigned long long)out->groups,
                 (unsigned long long)r->groups);
        return false;
    }
    const uint64_t g = r->groups;
    uint64_t *ord = malloc((g + 1) * sizeof *ord);
    for (uint64_t i = 0; i < g; i++)
        ord[i] = i;
    ref_sort_out_ = out;
    qsort(ord, g, sizeof *ord, ref_out_cmp);
    bool ok = true;
    for (uint64_t i = 0; i < g && ok; i++) {
        const uint64_t o = ord[i];
        if (out->keys[o] != r->keys[i]) {
            snprintf(msg, len, "group %llu: key %lld, expected %lld",
                     (unsigned long long)i, (long long)out->keys[o],
                     (long long)r->keys[i]);
            ok = false;
            break;
        }
        if (out->count[o] != r->count[i]) {
            snprintf(msg, len, "key %lld: COUNT(*) %lld, expected %lld",
                     (long long)r->keys[i], (long long)out->count[o],
                     (long long)r->count[i]);
            ok = false;
            break;
        }
        for (int ai = 0; ai < in->naggs; ai++) {
            const grp_agg *a = &in->aggs[ai];
            if (a->op == AGG_OP_SUM && a->type != DQO_TYPE_F64 &&
                r->overflow[ai])
                continue;
            if ((a->op == AGG_OP_MIN || a->op == AGG_OP_MAX) &&
                r->nvalid[ai][i] == 0)
                continue;
            if (grp_agg_is_f64(a)) {
                double x = ((const double *)out->acc[ai])[o];
                double e = r->facc[ai][i];
                double tol = a->op == AGG_OP_SUM
                                 ? 1e-9 * (r->fabs_sum[ai][i] + 1.0)
                                 : 0.0;
                if (!(fabs(x - e) <= tol)) {
                    snprintf(msg, len, "key %lld: agg %d (op %d, f64) %.17g,"
                             " expected %.17g", (long long)r->keys[i], ai,
                             (int)a->op, x, e);
                    ok = false;
                    break;
                }
            } else {
                int64_t x = ((const int64_t *)out->acc[ai])[o];
                if (x != r->iacc[ai][i]) {
                    snprintf(msg, len, "key %lld: agg %d (op %d, type %d) "
                             "%lld, expected %lld", (long long)r->keys[i], ai,
                             (int)a->op, (int)a->type, (long long)x,
                             (long long)r->iacc[ai][i]);
                    ok = false;
                    break;
                }
            }
        }
    }
    free(ord);
    return ok;
}

#endif /* DQO_TESTS_KERNEL_REF_H */
