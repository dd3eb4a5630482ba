/*
 * query_ref.h - the naive reference of test_query.c: test tables kept as
 * row-major copies, a small expression tree that prints itself as SQL and
 * evaluates itself with plain loops (SQL's three-valued logic, integer
 * division by zero -> NULL, integer overflow flagged), and a query block
 * (joins -> WHERE -> GROUP BY -> SELECT -> ORDER BY -> LIMIT) evaluated the
 * slowest obvious way: nested-loop joins, grouping by sorting tuples.
 *
 * Header-only and static: it is included by one test only.
 */
#ifndef DQO_TESTS_QUERY_REF_H
#define DQO_TESTS_QUERY_REF_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dqo.h"

#define REF_MAXC 10    /* columns of one test table */
#define REF_MAXT 3     /* tables of one query */
#define REF_MAXI 8     /* select items */
#define REF_MAXG 3     /* GROUP BY expressions */
#define REF_MAXK 3     /* keys of one join */
#define REF_NODES 512  /* expression nodes of one query */
#define REF_TYPE_BOOL DQO_TYPE_COUNT_

/* One value; the type lives on the expression or column. */
typedef struct rv {
    int64_t i;     /* integer types and BOOL */
    double f;      /* F64 */
    const char *s; /* STR: static text from the string pool */
    uint8_t null;
} rv;

/* Value domains of generated columns; `bound` is the largest magnitude, which
 * the generator uses to keep integer arithmetic clear of overflow. */
typedef enum ref_dom {
    DOM_SEQ,   /* 0..rows-1, a permutation (or ascending) */
    DOM_MOD,   /* 0..param-1: duplicates, dense */
    DOM_SMALL, /* -1000..1000 */
    DOM_BIG,   /* the type's whole range (u32, i32) */
    DOM_WIDE,  /* -1e12..1e12 (i64) */
    DOM_DYAD,  /* k/64 for |k| <= 64000: exact in binary, so sums are exact
                  in any order and the engine's float sums match exactly */
    DOM_FEW,   /* -2..2 */
    DOM_STR,   /* one of the string pool's first `param` entries */
} ref_dom;

typedef struct ref_colspec {
    const char *name;
    dqo_type type;
    ref_dom dom;
    int nullpct; /* percentage of NULLs */
} ref_colspec;

typedef struct ref_table {
    const char *name; /* registered name */
    int ncols;
    ref_colspec col[REF_MAXC];
    double bound[REF_MAXC];
    uint64_t rows;
    rv *cell; /* rows * ncols, row-major */
    dqo_table *t;
} ref_table;

/* Texts chosen to catch mistakes: the empty string (not NULL), case, a quote
 * (SQL '' escaping), a space, a multi-byte character, a prefix of another. */
static const char *const ref_pool[] = {
    "apple", "banana", "", "A", "it's", "b a", "cherry", "\xce\xa9mega",
    "app", "date", "elder", "fig", "grape", "kiwi", "lemon", "mango",
    "nut", "olive", "pear", "quince"};
#define REF_POOL_N ((int)(sizeof ref_pool / sizeof ref_pool[0]))

typedef enum ref_kind {
    E_COL, E_INT, E_FLT, E_STR, E_BIN, E_NOT, E_NEG, E_BETWEEN, E_IN,
    E_ISNULL, E_AGG, E_KEY
} ref_kind;

typedef enum ref_op {
    O_ADD, O_SUB, O_MUL, O_DIV, O_MOD, O_EQ, O_NE, O_LT, O_LE, O_GT, O_GE,
    O_AND, O_OR
} ref_op;

static const char *const ref_op_text[] = {"+", "-", "*", "/", "%", "=", "<>",
                                          "<", "<=", ">", ">=", "AND", "OR"};
static const char *const ref_agg_text[] = {"COUNT", "COUNT", "SUM",
                                           "MIN",   "MAX",   "AVG"};

typedef struct rexpr {
    ref_kind k;
    ref_op op;
    int type;       /* dqo_type or REF_TYPE_BOOL */
    bool exact;     /* the result column's type is documented exactly */
    bool neg;       /* NOT BETWEEN / NOT IN / IS NOT NULL */
    int tab, col;   /* E_COL: query table index, column; E_KEY: col = key */
    int64_t ival;
    double fval;
    const char *sval;
    dqo_agg agg;
    struct rexpr *a, *b;
    int nlist;
    struct rexpr *list[6];
    double bound;   /* largest magnitude of an integer result */
    bool has_agg;
} rexpr;

typedef struct ref_join_key {
    int lt, lc; /* an earlier table's column */
    int rc;     /* a column of the joined table */
    bool swap;  /* print right = left */
} ref_join_key;

typedef struct rquery {
    int ntab;
    ref_table *tab[REF_MAXT];
    const char *alias[REF_MAXT]; /* the name used in the query */
    bool as_alias[REF_MAXT];     /* FROM name AS alias */
    bool qualify;                /* print columns as alias.column */
    int nkeys[REF_MAXT];
    ref_join_key key[REF_MAXT][REF_MAXK];
    rexpr *where;
    int ngroup;
    rexpr *group[REF_MAXG];
    bool aggregate, star;
    int nitems;
    rexpr *item[REF_MAXI];
    const char *item_alias[REF_MAXI]; /* NULL: none */
    int norder;
    int oitem[REF_MAXI];
    bool odesc[REF_MAXI];
    int ostyle[REF_MAXI]; /* 0 position, 1 alias, 2 expression */
    int64_t limit;        /* -1: none */
    rexpr nodes[REF_NODES];
    int nnodes;
} rquery;

static bool ref_is_int(int t)
{
    return t == DQO_TYPE_U32 || t == DQO_TYPE_I32 || t == DQO_TYPE_I64;
}

static rexpr *ref_node(rquery *q, ref_kind k, int type)
{
    if (q->nnodes >= REF_NODES) {
        fprintf(stderr, "query_ref: out of nodes\n");
        abort();
    }
    rexpr *e = &q->nodes[q->nnodes++];
    memset(e, 0, sizeof *e);
    e->k = k;
    e->type = type;
    return e;
}

static rexpr *ref_col(rquery *q, int tab, int col)
{
    const ref_table *t = q->tab[tab];
    rexpr *e = ref_node(q, E_COL, (int)t->col[col].type);
    e->tab = tab;
    e->col = col;
    e->exact = true;
    e->bound = t->bound[col];
    return e;
}

static rexpr *ref_int(rquery *q, int64_t v)
{
    rexpr *e = ref_node(q, E_INT, DQO_TYPE_I64);
    e->ival = v;
    e->bound = v < 0 ? -(double)v : (double)v;
    return e;
}

static rexpr *ref_flt(rquery *q, double v)
{
    rexpr *e = ref_node(q, E_FLT, DQO_TYPE_F64);
    e->fval = v;
    e->exact = true;
    return e;
}

static rexpr *ref_str(rquery *q, const char *s)
{
    rexpr *e = ref_node(q, E_STR, DQO_TYPE_STR);
    e->sval = s;
    return e;
}

/* a op b with the types of logical.h: integer op integer -> I64, anything
 * with F64 -> F64, comparisons and AND/OR -> BOOL. */
static rexpr *ref_bin(rquery *q, ref_op op, rexpr *a, rexpr *b)
{
    int type = REF_TYPE_BOOL;
    double bound = 1;
    if (op <= O_MOD) {
        type = (a->type == DQO_TYPE_F64 || b->type == DQO_TYPE_F64)
                   ? DQO_TYPE_F64
                   : DQO_TYPE_I64;
        bound = op == O_ADD || op == O_SUB ? a->bound + b->bound
                : op == O_MUL              ? a->bound * b->bound
                : op == O_DIV              ? a->bound
                                           : fmin(a->bound, b->bound);
    }
    rexpr *e = ref_node(q, E_BIN, type);
    e->op = op;
    e->a = a;
    e->b = b;
    e->bound = bound;
    e->has_agg = a->has_agg || b->has_agg;
    return e;
}

static rexpr *ref_unary(rquery *q, ref_kind k, rexpr *a)
{
    int type = k == E_NEG ? (a->type == DQO_TYPE_F64 ? DQO_TYPE_F64
                                                     : DQO_TYPE_I64)
                          : REF_TYPE_BOOL;
    rexpr *e = ref_node(q, k, type);
    e->a = a;
    e->bound = a->bound;
    e->has_agg = a->has_agg;
    return e;
}

/* COUNT -> I64, SUM of integers -> I64 and of F64 -> F64, MIN/MAX keep the
 * input type, AVG -> F64 (dqo.h, dqo_group_run). a is NULL for COUNT(*). */
static rexpr *ref_agg(rquery *q, dqo_agg agg, rexpr *a)
{
    int type = agg == DQO_AGG_COUNT_STAR || agg == DQO_AGG_COUNT ? DQO_TYPE_I64
               : agg == DQO_AGG_AVG                              ? DQO_TYPE_F64
               : agg == DQO_AGG_SUM
                   ? (a->type == DQO_TYPE_F64 ? DQO_TYPE_F64 : DQO_TYPE_I64)
                   : a->type;
    rexpr *e = ref_node(q, E_AGG, type);
    e->agg = agg;
    e->a = a;
    e->has_agg = true;
    e->exact = agg != DQO_AGG_MIN && agg != DQO_AGG_MAX ? true : a->exact;
    /* 1e5 joined rows at most in these tests. */
    e->bound = agg == DQO_AGG_SUM ? a->bound * 1e5
               : a != NULL        ? a->bound
                                  : 1e5;
    return e;
}

static rexpr *ref_key(rquery *q, int k)
{
    rexpr *e = ref_node(q, E_KEY, q->group[k]->type);
    e->col = k;
    e->exact = q->group[k]->exact;
    e->bound = q->group[k]->bound;
    e->has_agg = true; /* evaluated per group */
    return e;
}

/* ------------------------------------------------------------ SQL text */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        fprintf(stderr, "query_ref: SQL text too long\n");
        abort();
    }
    b->len += (size_t)n;
}

/* Doubles are printed exactly and always with a '.', so 3.0 stays a float
 * literal (the grammar reads "3" as an integer). */
static void sb_double(sbuf *b, double v)
{
    char t[64];
    snprintf(t, sizeof t, "%.17g", v);
    if (strpbrk(t, ".en") == NULL)
        strcat(t, ".0");
    sb_add(b, "%s", t);
}

static void sb_string(sbuf *b, const char *s)
{
    sb_add(b, "'");
    for (; *s != '\0'; s++)
        sb_add(b, "%s%c", *s == '\'' ? "'" : "", *s);
    sb_add(b, "'");
}

static void ref_print(const rquery *q, const rexpr *e, sbuf *b)
{
    switch (e->k) {
    case E_COL:
        if (q->qualify)
            sb_add(b, "%s.", q->alias[e->tab]);
        sb_add(b, "%s", q->tab[e->tab]->col[e->col].name);
        break;
    case E_INT:
        /* A negative literal is unary minus applied to a positive one. */
        sb_add(b, e->ival < 0 ? "(%lld)" : "%lld", (long long)e->ival);
        break;
    case E_FLT:
        if (e->fval < 0)
            sb_add(b, "(");
        sb_double(b, e->fval);
        if (e->fval < 0)
            sb_add(b, ")");
        break;
    case E_STR:
        sb_string(b, e->sval);
        break;
    case E_BIN:
        sb_add(b, "(");
        ref_print(q, e->a, b);
        sb_add(b, " %s ", ref_op_text[e->op]);
        ref_print(q, e->b, b);
        sb_add(b, ")");
        break;
    case E_NOT:
        sb_add(b, "(NOT ");
        ref_print(q, e->a, b);
        sb_add(b, ")");
        break;
    case E_NEG:
        sb_add(b, "(- ");
        ref_print(q, e->a, b);
        sb_add(b, ")");
        break;
    case E_BETWEEN:
        sb_add(b, "(");
        ref_print(q, e->a, b);
        sb_add(b, e->neg ? " NOT BETWEEN " : " BETWEEN ");
        ref_print(q, e->list[0], b);
        sb_add(b, " AND ");
        ref_print(q, e->list[1], b);
        sb_add(b, ")");
        break;
    case E_IN:
        sb_add(b, "(");
        ref_print(q, e->a, b);
        sb_add(b, e->neg ? " NOT IN (" : " IN (");
        for (int i = 0; i < e->nlist; i++) {
            if (i > 0)
                sb_add(b, ", ");
            ref_print(q, e->list[i], b);
        }
        sb_add(b, "))");
        break;
    case E_ISNULL:
        sb_add(b, "(");
        ref_print(q, e->a, b);
        sb_add(b, e->neg ? " IS NOT NULL)" : " IS NULL)");
        break;
    case E_AGG:
        sb_add(b, "%s(", ref_agg_text[e->agg]);
        if (e->a == NULL)
            sb_add(b, "*");
        else
            ref_print(q, e->a, b);
        sb_add(b, ")");
        break;
    case E_KEY:
        ref_print(q, q->group[e->col], b);
        break;
    }
}

static void ref_print_query(const rquery *q, sbuf *b)
{
    sb_add(b, "SELECT ");
    if (q->star)
        sb_add(b, "*");
    for (int i = 0; !q->star && i < q->nitems; i++) {
        sb_add(b, "%s", i > 0 ? ", " : "");
        ref_print(q, q->item[i], b);
        if (q->item_alias[i] != NULL)
            sb_add(b, "%s%s", i % 2 ? " AS " : " ", q->item_alias[i]);
    }
    for (int t = 0; t < q->ntab; t++) {
        sb_add(b, t == 0 ? " FROM %s" : " JOIN %s", q->tab[t]->name);
        if (strcmp(q->alias[t], q->tab[t]->name) != 0)
            sb_add(b, "%s%s", q->as_alias[t] ? " AS " : " ", q->alias[t]);
        for (int k = 0; t > 0 && k < q->nkeys[t]; k++) {
            const ref_join_key *j = &q->key[t][k];
            const char *l = q->tab[j->lt]->col[j->lc].name;
            const char *r = q->tab[t]->col[j->rc].name;
            if (j->swap)
                sb_add(b, "%s %s.%s = %s.%s", k ? " AND" : " ON", q->alias[t], r,
                       q->alias[j->lt], l);
            else
                sb_add(b, "%s %s.%s = %s.%s", k ? " AND" : " ON",
                       q->alias[j->lt], l, q->alias[t], r);
        }
    }
    if (q->where != NULL) {
        sb_add(b, " WHERE ");
        ref_print(q, q->where, b);
    }
    for (int g = 0; g < q->ngroup; g++) {
        sb_add(b, g == 0 ? " GROUP BY " : ", ");
        ref_print(q, q->group[g], b);
    }
    for (int o = 0; o < q->norder; o++) {
        sb_add(b, o == 0 ? " ORDER BY " : ", ");
        int it = q->oitem[o];
        if (q->ostyle[o] == 1 && q->item_alias[it] != NULL)
            sb_add(b, "%s", q->item_alias[it]);
        else if (q->ostyle[o] == 2 && !q->star)
            ref_print(q, q->item[it], b);
        else
            sb_add(b, "%d", it + 1);
        sb_add(b, q->odesc[o] ? " DESC" : (o % 2 ? " ASC" : ""));
    }
    if (q->limit >= 0)
        sb_add(b, " LIMIT %lld", (long long)q->limit);
}

/* ------------------------------------------------------------ evaluation */

/* Compares two non-NULL values of types ta and tb: text for strings,
 * integers exactly, anything with a float as doubles. */
static int ref_cmp(int ta, rv a, int tb, rv b)
{
    if (ta == DQO_TYPE_STR || tb == DQO_TYPE_STR)
        return strcmp(a.s, b.s) < 0 ? -1 : strcmp(a.s, b.s) > 0;
    if (ref_is_int(ta) && ref_is_int(tb))
        return (a.i > b.i) - (a.i < b.i);
    double x = ref_is_int(ta) ? (double)a.i : a.f;
    double y = ref_is_int(tb) ? (double)b.i : b.f;
    return (x > y) - (x < y);
}

typedef struct ectx {
    const rquery *q;
    const uint32_t *tup;    /* row of each query table */
    const uint32_t *tuples; /* all joined tuples, ntab each */
    const uint32_t *grp;    /* tuple indices of the current group */
    uint32_t ngrp;
    bool ovf; /* an integer operation overflowed */
} ectx;

static rv ref_null(void)
{
    rv v = {0};
    v.null = 1;
    return v;
}

static rv ref_bool(int b)
{
    rv v = {0};
    v.i = b;
    return v;
}

static rv ref_eval(ectx *c, const rexpr *e);

static rv ref_arith(ectx *c, const rexpr *e, rv a, rv b)
{
    rv r = {0};
    if (a.null || b.null)
        return ref_null();
    if (e->type == DQO_TYPE_F64) {
        double x = ref_is_int(e->a->type) ? (double)a.i : a.f;
        double y = ref_is_int(e->b->type) ? (double)b.i : b.f;
        r.f = e->op == O_ADD   ? x + y
              : e->op == O_SUB ? x - y
              : e->op == O_MUL ? x * y
              : e->op == O_DIV ? x / y
                               : fmod(x, y);
        return r;
    }
    bool ovf = false;
    switch (e->op) {
    case O_ADD: ovf = __builtin_add_overflow(a.i, b.i, &r.i); break;
    case O_SUB: ovf = __builtin_sub_overflow(a.i, b.i, &r.i); break;
    case O_MUL: ovf = __builtin_mul_overflow(a.i, b.i, &r.i); break;
    default:
        if (b.i == 0)
            return ref_null(); /* logical.h: a zero divisor yields NULL */
        if (a.i == INT64_MIN && b.i == -1)
            ovf = e->op == O_DIV;
        else
            r.i = e->op == O_DIV ? a.i / b.i : a.i % b.i;
        break;
    }
    c->ovf |= ovf;
    return r;
}

/* SQL's three-valued AND / OR over one-byte truth values. */
static rv ref_logic(ref_op op, rv a, rv b)
{
    int dominant = op == O_AND ? 0 : 1;
    if ((!a.null && a.i == dominant) || (!b.null && b.i == dominant))
        return ref_bool(dominant);
    if (a.null || b.null)
        return ref_null();
    return ref_bool(!dominant);
}

static rv ref_compare(ref_op op, int ta, rv a, int tb, rv b)
{
    if (a.null || b.null)
        return ref_null();
    int c = ref_cmp(ta, a, tb, b);
    switch (op) {
    case O_EQ: return ref_bool(c == 0);
    case O_NE: return ref_bool(c != 0);
    case O_LT: return ref_bool(c < 0);
    case O_LE: return ref_bool(c <= 0);
    case O_GT: return ref_bool(c > 0);
    default: return ref_bool(c >= 0);
    }
}

static rv ref_not(rv a)
{
    return a.null ? a : ref_bool(!a.i);
}

static rv ref_aggregate(ectx *c, const rexpr *e)
{
    int64_t n = 0, isum = 0;
    double fsum = 0;
    rv best = ref_null();
    const uint32_t *saved = c->tup;
    for (uint32_t g = 0; g < c->ngrp; g++) {
        c->tup = c->tuples + (size_t)c->grp[g] * (size_t)c->q->ntab;
        if (e->a == NULL) {
            n++;
            continue;
        }
        rv v = ref_eval(c, e->a);
        if (v.null)
            continue;
        n++;
        if (e->a->type == DQO_TYPE_F64)
            fsum += v.f;
        else if (e->agg == DQO_AGG_SUM || e->agg == DQO_AGG_AVG)
            c->ovf |= __builtin_add_overflow(isum, v.i, &isum);
        int cmp = best.null ? 0 : ref_cmp(e->a->type, v, e->a->type, best);
        if (best.null || (e->agg == DQO_AGG_MIN && cmp < 0) ||
            (e->agg == DQO_AGG_MAX && cmp > 0))
            best = v;
    }
    c->tup = saved;
    rv r = {0};
    switch (e->agg) {
    case DQO_AGG_COUNT_STAR:
    case DQO_AGG_COUNT:
        r.i = n;
        return r;
    case DQO_AGG_MIN:
    case DQO_AGG_MAX:
        return best;
    default:
        break;
    }
    if (n == 0)
        return ref_null();
    if (e->a->type == DQO_TYPE_F64) {
        r.f = e->agg == DQO_AGG_SUM ? fsum : fsum / (double)n;
        return r;
    }
    if (e->agg == DQO_AGG_SUM)
        r.i = isum;
    else
        r.f = (double)isum / (double)n;
    return r;
}

static rv ref_eval(ectx *c, const rexpr *e)
{
    switch (e->k) {
    case E_COL: {
        const ref_table *t = c->q->tab[e->tab];
        return t->cell[(size_t)c->tup[e->tab] * (size_t)t->ncols +
                       (size_t)e->col];
    }
    case E_INT: {
        rv v = {0};
        v.i = e->ival;
        return v;
    }
    case E_FLT: {
        rv v = {0};
        v.f = e->fval;
        return v;
    }
    case E_STR: {
        rv v = {0};
        v.s = e->sval;
        return v;
    }
    case E_BIN: {
        rv a = ref_eval(c, e->a);
        rv b = ref_eval(c, e->b);
        if (e->op == O_AND || e->op == O_OR)
            return ref_logic(e->op, a, b);
        if (e->op >= O_EQ)
            return ref_compare(e->op, e->a->type, a, e->b->type, b);
        return ref_arith(c, e, a, b);
    }
    case E_NOT:
        return ref_not(ref_eval(c, e->a));
    case E_NEG: {
        rv a = ref_eval(c, e->a);
        if (a.null)
            return a;
        if (e->type == DQO_TYPE_F64) {
            a.f = -(ref_is_int(e->a->type) ? (double)a.i : a.f);
            return a;
        }
        c->ovf |= a.i == INT64_MIN;
        a.i = -a.i;
        return a;
    }
    case E_BETWEEN: {
        rv a = ref_eval(c, e->a);
        rv lo = ref_eval(c, e->list[0]), hi = ref_eval(c, e->list[1]);
        rv r = ref_logic(O_AND,
                         ref_compare(O_GE, e->a->type, a, e->list[0]->type, lo),
                         ref_compare(O_LE, e->a->type, a, e->list[1]->type, hi));
        return e->neg ? ref_not(r) : r;
    }
    case E_IN: {
        rv a = ref_eval(c, e->a);
        if (a.null)
            return a;
        int found = 0;
        for (int i = 0; i < e->nlist; i++)
            found |= ref_cmp(e->a->type, a, e->list[i]->type,
                             ref_eval(c, e->list[i])) == 0;
        return ref_bool(e->neg ? !found : found);
    }
    case E_ISNULL:
        return ref_bool(ref_eval(c, e->a).null != e->neg);
    case E_AGG:
        return ref_aggregate(c, e);
    case E_KEY: {
        /* A grouped query's key: the same for every tuple of the group. */
        const uint32_t *saved = c->tup;
        c->tup = c->tuples + (size_t)c->grp[0] * (size_t)c->q->ntab;
        rv v = ref_eval(c, c->q->group[e->col]);
        c->tup = saved;
        return v;
    }
    }
    return ref_null();
}

/* ------------------------------------------------------ the query block */

typedef struct ref_result {
    int ncols;
    int type[REF_MAXC * REF_MAXT];
    bool exact[REF_MAXC * REF_MAXT];
    uint64_t rows;
    rv *cell; /* rows * ncols */
    bool ovf;
} ref_result;

static void ref_result_free(ref_result *r)
{
    free(r->cell);
    r->cell = NULL;
}

static bool ref_join_match(const rquery *q, int t, const uint32_t *tup,
                           uint32_t row)
{
    for (int k = 0; k < q->nkeys[t]; k++) {
        const ref_join_key *j = &q->key[t][k];
        const ref_table *lt = q->tab[j->lt], *rt = q->tab[t];
        rv l = lt->cell[(size_t)tup[j->lt] * (size_t)lt->ncols + (size_t)j->lc];
        rv r = rt->cell[(size_t)row * (size_t)rt->ncols + (size_t)j->rc];
        /* NULL keys never match. */
        if (l.null || r.null ||
            ref_cmp(lt->col[j->lc].type, l, rt->col[j->rc].type, r) != 0)
            return false;
    }
    return true;
}

/* The joined tuples (ntab row indices each) that pass WHERE; caller frees. */
static uint32_t *ref_tuples(const rquery *q, uint64_t *count, bool *ovf)
{
    size_t n = q->tab[0]->rows, cap = n > 0 ? n : 1;
    uint32_t *cur = malloc(cap * REF_MAXT * sizeof *cur);
    for (size_t i = 0; i < n; i++)
        cur[i * (size_t)q->ntab] = (uint32_t)i;
    for (int t = 1; t < q->ntab; t++) {
        size_t m = 0, mcap = 16;
        uint32_t *next = malloc(mcap * REF_MAXT * sizeof *next);
        for (size_t i = 0; i < n; i++) {
            const uint32_t *tup = cur + i * (size_t)q->ntab;
            for (uint32_t r = 0; r < q->tab[t]->rows; r++) {
                if (!ref_join_match(q, t, tup, r))
                    continue;
                if (m == mcap) {
                    mcap *= 2;
                    next = realloc(next, mcap * REF_MAXT * sizeof *next);
                }
                memcpy(next + m * (size_t)q->ntab, tup,
                       (size_t)t * sizeof *tup);
                next[m * (size_t)q->ntab + (size_t)t] = r;
                m++;
            }
        }
        free(cur);
        cur = next;
        n = m;
    }
    size_t kept = 0;
    ectx c = {.q = q, .tuples = cur};
    for (size_t i = 0; i < n; i++) {
        c.tup = cur + i * (size_t)q->ntab;
        if (q->where != NULL) {
            rv w = ref_eval(&c, q->where);
            if (w.null || w.i == 0)
                continue;
        }
        memmove(cur + kept * (size_t)q->ntab, c.tup,
                (size_t)q->ntab * sizeof *cur);
        kept++;
    }
    *ovf = c.ovf;
    *count = kept;
    return cur;
}

/* Grouping by sorting the tuples on their key values (NULL is a value of its
 * own: equal to itself, so NULL keys form one group). */
static const rquery *ref_sort_q;
static const uint32_t *ref_sort_tuples;

/* Compares the group keys of tuples ia and ib. */
static int ref_keys_cmp(uint32_t ia, uint32_t ib)
{
    const rquery *q = ref_sort_q;
    ectx c = {.q = q, .tuples = ref_sort_tuples};
    for (int g = 0; g < q->ngroup; g++) {
        c.tup = ref_sort_tuples + (size_t)ia * (size_t)q->ntab;
        rv a = ref_eval(&c, q->group[g]);
        c.tup = ref_sort_tuples + (size_t)ib * (size_t)q->ntab;
        rv b = ref_eval(&c, q->group[g]);
        if (a.null != b.null)
            return a.null ? -1 : 1;
        int t = q->group[g]->type;
        int r = a.null ? 0 : ref_cmp(t, a, t, b);
        if (r != 0)
            return r;
    }
    return 0;
}

static int ref_key_cmp(const void *pa, const void *pb)
{
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    int r = ref_keys_cmp(ia, ib);
    return r != 0 ? r : (ia > ib) - (ia < ib);
}

static void ref_emit(ectx *c, ref_result *out, size_t *cap)
{
    if (out->rows == *cap) {
        *cap = *cap * 2 + 16;
        out->cell = realloc(out->cell, *cap * (size_t)out->ncols * sizeof(rv));
    }
    rv *row = out->cell + out->rows * (size_t)out->ncols;
    if (c->q->star) {
        int k = 0;
        for (int t = 0; t < c->q->ntab; t++)
            for (int col = 0; col < c->q->tab[t]->ncols; col++)
                row[k++] = c->q->tab[t]->cell[(size_t)c->tup[t] *
                                                  (size_t)c->q->tab[t]->ncols +
                                              (size_t)col];
    } else {
        for (int i = 0; i < c->q->nitems; i++)
            row[i] = ref_eval(c, c->q->item[i]);
    }
    out->rows++;
}

static void ref_columns(const rquery *q, ref_result *out)
{
    out->ncols = 0;
    if (q->star) {
        for (int t = 0; t < q->ntab; t++)
            for (int col = 0; col < q->tab[t]->ncols; col++) {
                out->type[out->ncols] = (int)q->tab[t]->col[col].type;
                out->exact[out->ncols++] = true;
            }
        return;
    }
    for (int i = 0; i < q->nitems; i++) {
        out->type[out->ncols] = q->item[i]->type;
        out->exact[out->ncols++] = q->item[i]->exact;
    }
}

/* Evaluates q up to the select list (ORDER BY and LIMIT are the checker's). */
static void ref_run(const rquery *q, ref_result *out)
{
    memset(out, 0, sizeof *out);
    ref_columns(q, out);
    uint64_t n;
    bool ovf;
    uint32_t *tuples = ref_tuples(q, &n, &ovf);
    ectx c = {.q = q, .tuples = tuples};
    size_t cap = 0;
    if (!q->aggregate) {
        for (uint64_t i = 0; i < n; i++) {
            c.tup = tuples + i * (size_t)q->ntab;
            ref_emit(&c, out, &cap);
        }
    } else {
        uint32_t *idx = malloc((n > 0 ? n : 1) * sizeof *idx);
        for (uint64_t i = 0; i < n; i++)
            idx[i] = (uint32_t)i;
        ref_sort_q = q;
        ref_sort_tuples = tuples;
        qsort(idx, n, sizeof *idx, ref_key_cmp);
        /* A global aggregate is one group, even over no rows. */
        if (q->ngroup == 0) {
            c.grp = idx;
            c.ngrp = (uint32_t)n;
            ref_emit(&c, out, &cap);
        }
        for (uint64_t s = 0; q->ngroup > 0 && s < n;) {
            uint64_t e = s + 1;
            while (e < n && ref_keys_cmp(idx[s], idx[e]) == 0)
                e++;
            c.grp = idx + s;
            c.ngrp = (uint32_t)(e - s);
            ref_emit(&c, out, &cap);
            s = e;
        }
        free(idx);
    }
    out->ovf = ovf || c.ovf;
    free(tuples);
}

#endif /* DQO_TESTS_QUERY_REF_H */
