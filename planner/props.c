/*
 * props.c - properties the planner derives (DESIGN.md "Properties"): a base
 * column's sortedness, density and distinct count from its statistics, and
 * the selectivity of WHERE conjuncts, with the textbook estimates
 * (Selinger et al., 1979): = 1/ndv, a range 1/3, BETWEEN 1/4, IN k/ndv,
 * AND multiplies, OR adds minus the product, NOT 1 - s.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/plan_int.h"

void *pl_alloc(pl_arena *a, size_t bytes)
{
    void **blk = calloc(1, sizeof(void *) + bytes + 16);
    if (blk == NULL) {
        a->failed = true;
        return NULL;
    }
    blk[0] = a->head;
    a->head = blk;
    /* Keep 16-byte alignment for doubles and pointers alike. */
    return (char *)blk + 16;
}

void pl_arena_free(pl_arena *a)
{
    while (a->head != NULL) {
        void **blk = a->head;
        a->head = blk[0];
        free(blk);
    }
}

uint64_t pl_type_bytes(int type)
{
    return (type == DQO_TYPE_U32 || type == DQO_TYPE_I32 ||
            type == DQO_TYPE_STR)
               ? 4
               : 8;
}

uint64_t pl_range(int64_t min, int64_t max)
{
    if (max < min)
        return 1;
    uint64_t r = (uint64_t)max - (uint64_t)min + 1;
    return r == 0 ? UINT64_MAX : r;
}

bool pl_dense(const plan_settings *s, uint64_t ndv, int64_t min, int64_t max)
{
    if (ndv == 0)
        return false;
    return (double)ndv / (double)pl_range(min, max) >= s->direct_min_density;
}

pl_col pl_col_from_stats(const plan_settings *s, const plan_col_props *c,
                         uint64_t rows, bool paper)
{
    pl_col p = {.ndv = rows > 0 ? rows : 1, .min = 0, .max = INT64_MAX,
                .sorted = false};
    if (c == NULL || !c->known)
        return p;
    const dqo_column_stats *st = &c->stats;
    p.ndv = st->distinct > 0 ? st->distinct : 1;
    p.min = st->min;
    p.max = st->max;
    /* The paper's model knows sortedness only as declared; the real model
     * also takes clustered columns (runs close to distinct: the same slack
     * as the kernel rule, planner.h clustered_slack). */
    p.sorted = st->order != DQO_ORDER_NONE ||
               (!paper && plan_stats_clustered(s, st));
    return p;
}

static double pl_eq_sel(uint64_t ndv) { return ndv > 0 ? 1.0 / (double)ndv : 0.1; }

/* The column side of a comparison, if one side is a column. */
static const lexpr *pl_col_side(const lexpr *e)
{
    if (e->a != NULL && e->a->kind == LX_COL)
        return e->a;
    if (e->b != NULL && e->b->kind == LX_COL)
        return e->b;
    return NULL;
}

double pl_selectivity(const lexpr *e,
                      uint64_t (*ndv_of)(const void *arg, int table, int col),
                      const void *arg)
{
    if (e == NULL)
        return 1.0;
    double s = 1.0;
    const lexpr *c = e->a != NULL && e->a->kind == LX_COL ? e->a : NULL;
    uint64_t ndv = c != NULL ? ndv_of(arg, c->table, c->col) : 0;
    switch (e->kind) {
    case LX_BIN:
        if (e->op == LX_AND)
            return pl_selectivity(e->a, ndv_of, arg) *
                   pl_selectivity(e->b, ndv_of, arg);
        if (e->op == LX_OR) {
            double a = pl_selectivity(e->a, ndv_of, arg);
            double b = pl_selectivity(e->b, ndv_of, arg);
            return a + b - a * b;
        }
        c = pl_col_side(e);
        ndv = c != NULL ? ndv_of(arg, c->table, c->col) : 0;
        if (e->op == LX_EQ)
            s = pl_eq_sel(ndv);
        else if (e->op == LX_NE)
            s = 1.0 - pl_eq_sel(ndv);
        else if (e->op >= LX_LT && e->op <= LX_GE)
            s = 1.0 / 3.0;
        else
            s = 0.5; /* arithmetic used as a truth value: no information */
        break;
    case LX_NOT: return 1.0 - pl_selectivity(e->a, ndv_of, arg);
    case LX_BETWEEN: s = 0.25; break;
    case LX_IN: {
        double k = ndv > 0 ? (double)e->nlist / (double)ndv : 0.1 * e->nlist;
        s = k > 1.0 ? 1.0 : k;
        break;
    }
    case LX_ISNULL: s = 0.1; break; /* a common default for IS NULL */
    default: s = 0.5; break;
    }
    return e->negated ? 1.0 - s : s;
}

void pl_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}
