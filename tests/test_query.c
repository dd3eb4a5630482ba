/*
 * test_query.c - SQL queries end to end (dqo_query) against the naive
 * reference of query_ref.h.
 *
 * Seeded random tables r, s, t (u32/i32/i64/f64/str columns, with and
 * without NULLs, 0 .. 5,000 rows, sometimes sorted by a key) and random
 * queries built from templates: filters (comparisons, AND/OR/NOT, BETWEEN,
 * IN, IS NULL), arithmetic, GROUP BY one to three keys (strings, NULL keys),
 * every aggregate, global aggregates, joins of two and three tables on
 * single, composite, string and NULL-able keys, ORDER BY (position, alias,
 * expression; ASC/DESC) and LIMIT. Every query runs under several planner
 * settings (cpu, SQO, the paper's cost model, auto with MAVs, one thread,
 * and cl:0 when an OpenCL device exists): the answer must not depend on the
 * plan. Then the paper's join + group query on dense/sparse x sorted/
 * unsorted data, error cases (syntax with a caret, unknown names, types,
 * bare columns, division by zero, overflow), random mutations of valid
 * queries (never a crash) and EXPLAIN.
 *
 * Results are compared as multisets of rows (f64 with a relative tolerance
 * of 1e-9); with ORDER BY the rows must also be in order, where NULL may
 * sort first or last (not documented) as long as it does so consistently;
 * with LIMIT after ORDER BY the query orders on every output column, so the
 * prefix is determined. The seed is printed; DQO_TEST_SEED overrides it and
 * DQO_TEST_QUERIES sets the number of random queries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "dqo.h"
#include "query_ref.h"
#include "tests/test_util.h"

static uint64_t seed = 20261123;
static rng rng_g;
/* Random queries: with PoCL's kernel cache warm, about 2 s in the Debug
 * build and 20 s under ASan on 2 cores (a cold cache compiles kernels for
 * a minute or more, once). */
static int nqueries = 240;

static uint64_t rnd(void) { return rng_next(&rng_g); }

static uint64_t rnd_n(uint64_t n)
{
    return n == 0 ? 0 : rnd() % n;
}

/* Mismatches are printed (the first few in full) and counted; each test
 * fails at its end when any were found, so one run reports many findings. */
static int failures;
#define MAX_PRINTED 12

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void finding(const char *fmt, ...)
{
    if (failures++ < MAX_PRINTED) {
        va_list ap;
        va_start(ap, fmt);
        char buf[8192];
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        print_message("FINDING [seed %llu]: %s\n", (unsigned long long)seed,
                      buf);
    }
}

static void assert_no_findings(void)
{
    int n = failures;
    failures = 0;
    if (n > 0)
        fail_msg("%d finding(s) [seed %llu]", n, (unsigned long long)seed);
}

/* ------------------------------------------------------------ test tables */

static rv gen_value(const ref_colspec *c, uint64_t row, int param)
{
    rv v = {0};
    if (c->nullpct > 0 && rnd_n(100) < (uint64_t)c->nullpct) {
        v.null = 1;
        return v;
    }
    switch (c->dom) {
    case DOM_SEQ: v.i = (int64_t)row; break;
    case DOM_MOD: v.i = (int64_t)rnd_n((uint64_t)(param > 0 ? param : 1)); break;
    case DOM_SMALL: v.i = (int64_t)rnd_n(2001) - 1000; break;
    case DOM_BIG:
        v.i = c->type == DQO_TYPE_U32 ? (int64_t)(uint32_t)rnd()
                                      : (int64_t)(int32_t)rnd();
        break;
    case DOM_WIDE: v.i = (int64_t)rnd_n(2000000000001ULL) - 1000000000000LL; break;
    case DOM_DYAD: v.f = (double)((int64_t)rnd_n(128001) - 64000) / 64.0; break;
    case DOM_FEW: v.i = (int64_t)rnd_n(5) - 2; break;
    case DOM_STR: v.s = ref_pool[rnd_n((uint64_t)(param > 0 ? param : 1))]; break;
    }
    return v;
}

static double dom_bound(const ref_colspec *c, uint64_t rows, int param)
{
    switch (c->dom) {
    case DOM_SEQ: return (double)rows;
    case DOM_MOD: return param;
    case DOM_SMALL: return 1000;
    case DOM_BIG: return 4294967295.0;
    case DOM_WIDE: return 1e12;
    case DOM_DYAD: return 1000;
    case DOM_FEW: return 2;
    default: return 0;
    }
}

static int row_cmp_col;

static int row_cmp_by_col(const void *a, const void *b)
{
    const rv *x = (const rv *)a + row_cmp_col, *y = (const rv *)b + row_cmp_col;
    if (x->null != y->null)
        return x->null ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Fills tt's cells (sorted on column sort_col when >= 0; a DOM_SEQ column is
 * shuffled otherwise) and registers it. params[c] is DOM_MOD's modulus or
 * DOM_STR's pool size. */
static void table_fill(ref_table *tt, uint64_t rows, const int *params,
                       int sort_col)
{
    tt->rows = rows;
    tt->cell = calloc(rows > 0 ? rows * (size_t)tt->ncols : 1, sizeof(rv));
    for (int c = 0; c < tt->ncols; c++)
        tt->bound[c] = dom_bound(&tt->col[c], rows, params[c]);
    for (uint64_t r = 0; r < rows; r++)
        for (int c = 0; c < tt->ncols; c++)
            tt->cell[r * (size_t)tt->ncols + (size_t)c] =
                gen_value(&tt->col[c], r, params[c]);
    for (int c = 0; c < tt->ncols && sort_col < 0; c++) {
        if (tt->col[c].dom != DOM_SEQ)
            continue;
        for (uint64_t r = rows; r > 1; r--) {
            uint64_t j = rnd_n(r);
            rv tmp = tt->cell[(r - 1) * (size_t)tt->ncols + (size_t)c];
            tt->cell[(r - 1) * (size_t)tt->ncols + (size_t)c] =
                tt->cell[j * (size_t)tt->ncols + (size_t)c];
            tt->cell[j * (size_t)tt->ncols + (size_t)c] = tmp;
        }
    }
    if (sort_col >= 0) {
        row_cmp_col = sort_col;
        qsort(tt->cell, rows, (size_t)tt->ncols * sizeof(rv), row_cmp_by_col);
    }
}

static size_t type_width(dqo_type t)
{
    return t == DQO_TYPE_I64 || t == DQO_TYPE_F64 ? 8 : 4;
}

/* Builds the dqo_table from the cells (copied) and registers it. */
static void table_build(dqo_ctx *ctx, ref_table *tt)
{
    CHECK_OK(ctx, dqo_table_create(ctx, &tt->t));
    size_t n = tt->rows > 0 ? tt->rows : 1;
    for (int c = 0; c < tt->ncols; c++) {
        const ref_colspec *cs = &tt->col[c];
        const rv *cell = tt->cell + c;
        size_t stride = (size_t)tt->ncols;
        if (cs->type == DQO_TYPE_STR) {
            const char **s = calloc(n, sizeof *s);
            for (uint64_t r = 0; r < tt->rows; r++)
                s[r] = cell[r * stride].null ? NULL : cell[r * stride].s;
            CHECK_OK(ctx, dqo_table_add_strings(ctx, tt->t, cs->name, s,
                                                tt->rows));
            free(s);
            continue;
        }
        unsigned char *data = calloc(n, type_width(cs->type));
        uint8_t *valid = calloc(n, 1);
        bool any_null = false;
        for (uint64_t r = 0; r < tt->rows; r++) {
            rv v = cell[r * stride];
            valid[r] = !v.null;
            any_null |= v.null;
            switch (cs->type) {
            case DQO_TYPE_U32: ((uint32_t *)data)[r] = (uint32_t)v.i; break;
            case DQO_TYPE_I32: ((int32_t *)data)[r] = (int32_t)v.i; break;
            case DQO_TYPE_I64: ((int64_t *)data)[r] = v.i; break;
            default: ((double *)data)[r] = v.f; break;
            }
        }
        /* A NULL-able column without NULLs still passes its validity bytes
         * half of the time: both shapes must read the same. */
        const uint8_t *vp = any_null || (cs->nullpct > 0 && rnd_n(2)) ? valid
                                                                     : NULL;
        CHECK_OK(ctx, dqo_table_add_column(ctx, tt->t, cs->name, cs->type, data,
                                           vp, tt->rows, DQO_COPY));
        free(data);
        free(valid);
    }
    CHECK_OK(ctx, dqo_register_table(ctx, tt->name, tt->t));
}

static void table_free(dqo_ctx *ctx, ref_table *tt)
{
    if (tt->t != NULL)
        dqo_register_table(ctx, tt->name, NULL);
    dqo_table_destroy(tt->t);
    tt->t = NULL;
    free(tt->cell);
    tt->cell = NULL;
}

/* The random tables: r (the fact table), s (joins r on r.id = s.r_id) and t
 * (joins s on s.id = t.s_id); column names repeat across them on purpose. */
static const ref_colspec spec_r[] = {
    {"id", DQO_TYPE_U32, DOM_SEQ, 0},   {"a", DQO_TYPE_U32, DOM_MOD, 0},
    {"b", DQO_TYPE_I32, DOM_SMALL, 10}, {"c", DQO_TYPE_I64, DOM_WIDE, 10},
    {"d", DQO_TYPE_F64, DOM_DYAD, 10},  {"e", DQO_TYPE_STR, DOM_STR, 10},
    {"f", DQO_TYPE_U32, DOM_BIG, 0},    {"g", DQO_TYPE_I32, DOM_FEW, 20},
};
static const ref_colspec spec_s[] = {
    {"id", DQO_TYPE_U32, DOM_SEQ, 0},  {"r_id", DQO_TYPE_U32, DOM_MOD, 0},
    {"a", DQO_TYPE_U32, DOM_MOD, 0},   {"b", DQO_TYPE_I32, DOM_SMALL, 10},
    {"e", DQO_TYPE_STR, DOM_STR, 10},  {"g", DQO_TYPE_I32, DOM_FEW, 20},
    {"d", DQO_TYPE_F64, DOM_DYAD, 0},
};
static const ref_colspec spec_t[] = {
    {"id", DQO_TYPE_U32, DOM_SEQ, 0}, {"s_id", DQO_TYPE_U32, DOM_MOD, 0},
    {"e", DQO_TYPE_STR, DOM_STR, 0},  {"g", DQO_TYPE_I32, DOM_FEW, 30},
    {"b", DQO_TYPE_I32, DOM_SMALL, 0},
};

static ref_table tabs[3];

static void tables_setup(dqo_ctx *ctx, int round)
{
    /* Edge sizes first (empty, one row, a few), then random up to 5,000. */
    static const uint64_t edge[] = {0, 1, 2, 7};
    uint64_t nr = round < 4 ? edge[round]
                            : (rnd_n(3) == 0 ? 5000 : 1 + rnd_n(5000));
    uint64_t ns = round == 1 ? 0 : rnd_n(600) + (round < 4 ? 0 : 1);
    uint64_t nt = rnd_n(100);
    bool nulls = round % 3 != 2; /* every third round has no NULLs at all */
    const ref_colspec *specs[3] = {spec_r, spec_s, spec_t};
    int nspec[3] = {8, 7, 5};
    const char *names[3] = {"r", "s", "t"};
    int amod = (int[]){1, 10, 100, 1000}[rnd_n(4)];
    for (int i = 0; i < 3; i++) {
        ref_table *tt = &tabs[i];
        memset(tt, 0, sizeof *tt);
        tt->name = names[i];
        tt->ncols = nspec[i];
        for (int c = 0; c < tt->ncols; c++) {
            tt->col[c] = specs[i][c];
            if (!nulls)
                tt->col[c].nullpct = 0;
        }
    }
    int pr[8] = {0, amod, 0, 0, 0, REF_POOL_N, 0, 0};
    /* r_id covers r.id and 25% beyond it: duplicates and rows that match
     * nothing. s.e uses 8 strings of the pool, t.e 4. */
    int ps[7] = {0, (int)(nr + nr / 4 + 1), amod, 0, 8, 0, 0};
    int pt[5] = {0, (int)(ns + ns / 4 + 1), 4, 0, 0};
    /* Sorted on a (clustered keys: order-based kernels) every fourth round. */
    table_fill(&tabs[0], nr, pr, round % 4 == 3 ? 1 : -1);
    table_fill(&tabs[1], ns, ps, round % 5 == 4 ? 1 : -1);
    table_fill(&tabs[2], nt, pt, -1);
    for (int i = 0; i < 3; i++)
        table_build(ctx, &tabs[i]);
}

static void tables_teardown(dqo_ctx *ctx)
{
    for (int i = 0; i < 3; i++)
        table_free(ctx, &tabs[i]);
}

/* ------------------------------------------------------- query generator */

static const char *const item_aliases[REF_MAXI] = {"x0", "x1", "x2", "x3",
                                                   "x4", "x5", "x6", "x7"};

/* A random column of the query whose type passes `want` (0 numeric, 1
 * string, 2 any); -1 when none. */
static int pick_col(const rquery *q, int want, int *tab)
{
    for (int tries = 0; tries < 64; tries++) {
        int t = (int)rnd_n((uint64_t)q->ntab);
        int c = (int)rnd_n((uint64_t)q->tab[t]->ncols);
        bool str = q->tab[t]->col[c].type == DQO_TYPE_STR;
        if (want == 2 || (want == 1) == str) {
            *tab = t;
            return c;
        }
    }
    return -1;
}

/* A value of column (t, c) from a random row, so comparisons select some
 * rows; a random one when the table is empty or the cell NULL. */
static rv sample(const rquery *q, int t, int c)
{
    const ref_table *tt = q->tab[t];
    if (tt->rows > 0) {
        rv v = tt->cell[rnd_n(tt->rows) * (size_t)tt->ncols + (size_t)c];
        if (!v.null)
            return v;
    }
    return gen_value(&(ref_colspec){"", tt->col[c].type, tt->col[c].dom, 0}, 0,
                     tt->col[c].type == DQO_TYPE_STR ? REF_POOL_N : 100);
}

static rexpr *literal_like(rquery *q, int t, int c)
{
    rv v = sample(q, t, c);
    switch (q->tab[t]->col[c].type) {
    case DQO_TYPE_STR: return ref_str(q, v.s);
    case DQO_TYPE_F64: return ref_flt(q, v.f);
    default: return ref_int(q, v.i + (int64_t)rnd_n(3) - 1);
    }
}

/* Largest magnitude of an integer expression the generator allows: far
 * enough from 2^63 that no sum over 1e5 rows of it overflows either. */
#define SAFE_BOUND 1e12

static rexpr *gen_num(rquery *q, int depth)
{
    int t, c;
    uint64_t r = rnd_n(10);
    if (depth <= 0 || r < 4) {
        c = pick_col(q, 0, &t);
        if (c >= 0)
            return ref_col(q, t, c);
    }
    if (r < 5) {
        if (rnd_n(3) == 0)
            return ref_flt(q, (double)((int64_t)rnd_n(801) - 400) / 8.0);
        return ref_int(q, (int64_t)rnd_n(21) - 5);
    }
    if (r < 6)
        return ref_unary(q, E_NEG, gen_num(q, depth - 1));
    ref_op op = (ref_op)rnd_n(5);
    rexpr *a = gen_num(q, depth - 1), *b = gen_num(q, depth - 1);
    bool flt = a->type == DQO_TYPE_F64 || b->type == DQO_TYPE_F64;
    if (flt && op == O_MOD)
        op = O_DIV;
    /* A float divisor is a non-zero literal: division of floats by zero is
     * not specified. An integer divisor may be zero (NULL). */
    if (flt && op == O_DIV)
        b = ref_flt(q, (double)(1 + rnd_n(16)) / 4.0);
    rexpr *e = ref_bin(q, op, a, b);
    if (e->type != DQO_TYPE_F64 && e->bound > SAFE_BOUND)
        return a;
    return e;
}

static rexpr *gen_pred(rquery *q, int depth)
{
    int t, c;
    uint64_t r = rnd_n(depth > 0 ? 12 : 9);
    switch (r) {
    case 0: case 1: case 2: {
        c = pick_col(q, 0, &t);
        if (c < 0)
            break;
        rexpr *a = rnd_n(2) ? ref_col(q, t, c) : gen_num(q, 1);
        rexpr *b = rnd_n(3) ? literal_like(q, t, c) : gen_num(q, 1);
        return ref_bin(q, (ref_op)(O_EQ + rnd_n(6)), a, b);
    }
    case 3:
        c = pick_col(q, 1, &t);
        if (c < 0)
            break;
        return ref_bin(q, (ref_op)(O_EQ + rnd_n(6)), ref_col(q, t, c),
                       literal_like(q, t, c));
    case 4: {
        c = pick_col(q, 0, &t);
        if (c < 0)
            break;
        rexpr *e = ref_node(q, E_BETWEEN, REF_TYPE_BOOL);
        e->a = rnd_n(3) ? ref_col(q, t, c) : gen_num(q, 1);
        e->nlist = 2;
        e->list[0] = literal_like(q, t, c);
        e->list[1] = literal_like(q, t, c);
        e->neg = rnd_n(3) == 0;
        return e;
    }
    case 5: case 6: {
        c = pick_col(q, r == 5 ? 0 : 1, &t);
        if (c < 0)
            break;
        rexpr *e = ref_node(q, E_IN, REF_TYPE_BOOL);
        e->a = ref_col(q, t, c);
        e->nlist = 1 + (int)rnd_n(5);
        for (int i = 0; i < e->nlist; i++)
            e->list[i] = literal_like(q, t, c);
        e->neg = rnd_n(3) == 0;
        return e;
    }
    case 7: case 8: {
        c = pick_col(q, 2, &t);
        rexpr *e = ref_unary(q, E_ISNULL, ref_col(q, t, c));
        e->neg = rnd_n(2);
        return e;
    }
    case 9:
        return ref_unary(q, E_NOT, gen_pred(q, depth - 1));
    default:
        return ref_bin(q, r == 10 ? O_AND : O_OR, gen_pred(q, depth - 1),
                       gen_pred(q, depth - 1));
    }
    c = pick_col(q, 2, &t);
    return ref_unary(q, E_ISNULL, ref_col(q, t, c));
}

/* An item of a grouped select list: aggregates, keys, arithmetic on them. */
static rexpr *gen_agg_item(rquery *q, int depth)
{
    int t, c;
    uint64_t r = rnd_n(depth > 0 ? 9 : 7);
    switch (r) {
    case 0:
        return ref_agg(q, DQO_AGG_COUNT_STAR, NULL);
    case 1:
        c = pick_col(q, 2, &t);
        return ref_agg(q, DQO_AGG_COUNT,
                       rnd_n(3) ? ref_col(q, t, c) : gen_num(q, 1));
    case 2: case 3: case 4: case 5: {
        dqo_agg agg = (dqo_agg)(DQO_AGG_SUM + (r - 2));
        rexpr *a = rnd_n(2) ? gen_num(q, 0) : gen_num(q, 2);
        rexpr *e = ref_agg(q, agg, a);
        if (e->type != DQO_TYPE_F64 && e->bound > 1e17)
            return ref_agg(q, agg, ref_int(q, 3));
        return e;
    }
    case 6:
        if (q->ngroup > 0)
            return ref_key(q, (int)rnd_n((uint64_t)q->ngroup));
        return ref_agg(q, DQO_AGG_COUNT_STAR, NULL);
    default: {
        rexpr *a = gen_agg_item(q, depth - 1), *b = gen_agg_item(q, depth - 1);
        bool numeric = a->type != DQO_TYPE_STR && b->type != DQO_TYPE_STR;
        ref_op op = (ref_op)rnd_n(4);
        if (!numeric)
            return ref_agg(q, DQO_AGG_COUNT_STAR, NULL);
        if (op == O_DIV && (a->type == DQO_TYPE_F64 || b->type == DQO_TYPE_F64))
            op = O_MUL;
        rexpr *e = ref_bin(q, op, a, b);
        return e->type != DQO_TYPE_F64 && e->bound > 1e17 ? a : e;
    }
    }
}

/* Join keys of table k (>= 1) to the tables before it. Small join sizes keep
 * the nested-loop reference cheap. */
static void gen_join(rquery *q, int k, int shape)
{
    /* Column indices by name, in each spec. */
    enum { R_ID, R_A, R_B, R_C, R_D, R_E, R_F, R_G };
    enum { S_ID, S_RID, S_A, S_B, S_E, S_G, S_D };
    enum { T_ID, T_SID, T_E, T_G, T_B };
    ref_join_key *j = q->key[k];
    int r = -1, s = -1;
    for (int i = 0; i < k; i++) {
        if (q->tab[i] == &tabs[0])
            r = i;
        if (q->tab[i] == &tabs[1])
            s = i;
    }
    q->nkeys[k] = 1;
    if (q->tab[k] == &tabs[2]) { /* t joins s (or r on strings) */
        if (s >= 0 && shape % 3 != 2) {
            j[0] = (ref_join_key){s, S_ID, T_SID, false};
            if (shape % 3 == 1) {
                q->nkeys[k] = 2;
                j[1] = (ref_join_key){s, S_G, T_G, false};
            }
        } else {
            int l = r >= 0 ? r : s;
            j[0] = (ref_join_key){l, l == r ? R_E : S_E, T_E, false};
        }
    } else {
        /* r with s, whichever comes first in FROM. */
        bool r_first = r >= 0;
        int other = r_first ? r : s;
        uint64_t cross = tabs[0].rows * tabs[1].rows;
        int kind = shape % 6;
        /* Low-selectivity keys (strings, -2..2, a with few values) only on
         * small inputs; three tables only after a key join. */
        if (kind >= 1 && kind <= 3 && (cross > 400000 || q->ntab == 3))
            kind = 0;
        int rc[6][2] = {{R_ID, S_RID}, {R_E, S_E}, {R_G, S_G},
                        {R_A, S_A},    {R_F, S_RID}, {R_B, S_B}};
        int lc = r_first ? rc[kind][0] : rc[kind][1];
        int rcol = r_first ? rc[kind][1] : rc[kind][0];
        j[0] = (ref_join_key){other, lc, rcol, false};
        if (kind == 3) { /* composite: a and g */
            q->nkeys[k] = 2;
            j[1] = (ref_join_key){other, r_first ? R_G : S_G,
                                  r_first ? S_G : R_G, false};
        }
    }
    for (int i = 0; i < q->nkeys[k]; i++)
        j[i].swap = rnd_n(2);
}

static void gen_from(rquery *q, int shape)
{
    static const char *const aliases[3] = {"x", "y", "z"};
    uint64_t r = rnd_n(10);
    q->ntab = r < 5 ? 1 : r < 9 ? 2 : 3;
    if (q->ntab == 1) {
        q->tab[0] = &tabs[rnd_n(4) == 0 ? 1 : 0];
    } else {
        bool swap = rnd_n(3) == 0;
        q->tab[0] = &tabs[swap ? 1 : 0];
        q->tab[1] = &tabs[swap ? 0 : 1];
        if (q->ntab == 3)
            q->tab[2] = &tabs[2];
        /* Keep the three-table reference cheap. */
        if (q->ntab == 3 && tabs[0].rows * tabs[1].rows > 400000)
            q->ntab = 2;
    }
    bool use_alias = rnd_n(4) == 0;
    for (int i = 0; i < q->ntab; i++) {
        q->alias[i] = use_alias ? aliases[i] : q->tab[i]->name;
        q->as_alias[i] = rnd_n(2);
    }
    for (int i = 1; i < q->ntab; i++)
        gen_join(q, i, shape + i);
    q->qualify = q->ntab > 1 || use_alias || rnd_n(4) == 0;
}

static bool has_ref(const rexpr *e)
{
    if (e == NULL)
        return false;
    if (e->k == E_COL || e->k == E_AGG || e->k == E_KEY)
        return true;
    return has_ref(e->a) || has_ref(e->b);
}

static void gen_order(rquery *q)
{
    int n = q->star ? 0 : q->nitems;
    if (n == 0 || rnd_n(3) == 0)
        return;
    bool used[REF_MAXI] = {false};
    int want = 1 + (int)rnd_n(3);
    for (int i = 0; i < want; i++) {
        int it = (int)rnd_n((uint64_t)n);
        if (used[it] || q->item[it]->type == REF_TYPE_BOOL)
            continue;
        used[it] = true;
        q->oitem[q->norder] = it;
        q->odesc[q->norder] = rnd_n(2);
        /* By expression only when it refers to data: ORDER BY 5 means the
         * fifth item. */
        q->ostyle[q->norder++] = (int)rnd_n(has_ref(q->item[it]) ? 3 : 2);
    }
    if (rnd_n(2) == 0)
        return;
    static const int64_t limits[] = {0, 1, 3, 10};
    q->limit = rnd_n(5) < 4 ? limits[rnd_n(4)] : (int64_t)rnd_n(100);
    /* Ties: order on every output column, so the prefix is determined. */
    for (int it = 0; it < n; it++)
        if (!used[it]) {
            q->oitem[q->norder] = it;
            q->odesc[q->norder] = false;
            q->ostyle[q->norder++] = 0;
        }
}

static void gen_query(rquery *q, int shape)
{
    memset(q, 0, sizeof *q);
    q->limit = -1;
    gen_from(q, shape);
    if (rnd_n(3) != 0)
        q->where = gen_pred(q, 2);
    q->aggregate = rnd_n(3) != 0;
    if (q->aggregate) {
        int ng = (int)rnd_n(4); /* 0: a global aggregate */
        for (int g = 0; g < ng; g++) {
            int t, c = pick_col(q, 2, &t);
            rexpr *e = ref_col(q, t, c);
            /* An expression key holds a column: a bare integer would be
             * read as a select-list position. */
            if (rnd_n(6) == 0 && ref_is_int(e->type))
                e = ref_bin(q, rnd_n(2) ? O_MOD : O_ADD, e,
                            ref_int(q, 2 + (int64_t)rnd_n(7)));
            bool dup = false;
            for (int h = 0; h < q->ngroup; h++)
                dup |= q->group[h]->k == E_COL && e->k == E_COL &&
                       q->group[h]->tab == e->tab && q->group[h]->col == e->col;
            if (!dup)
                q->group[q->ngroup++] = e;
        }
        for (int g = 0; g < q->ngroup; g++)
            if (rnd_n(4) != 0)
                q->item[q->nitems++] = ref_key(q, g);
        int na = 1 + (int)rnd_n(4);
        for (int i = 0; i < na && q->nitems < REF_MAXI; i++)
            q->item[q->nitems++] = gen_agg_item(q, 1);
    } else if (rnd_n(6) == 0 && q->ntab == 1) {
        q->star = true;
    } else {
        int ni = 1 + (int)rnd_n(5);
        for (int i = 0; i < ni; i++) {
            int t, c = pick_col(q, 2, &t);
            q->item[q->nitems++] = rnd_n(2) ? ref_col(q, t, c) : gen_num(q, 2);
        }
    }
    for (int i = 0; i < q->nitems; i++)
        if (rnd_n(3) == 0)
            q->item_alias[i] = item_aliases[i];
    gen_order(q);
    if (q->norder == 0 && rnd_n(8) == 0)
        q->limit = (int64_t)rnd_n(20); /* LIMIT without ORDER BY: a subset */
}

/* ------------------------------------------------------------- comparing */

/* Relative tolerance 1e-9; exact for everything else. */
static int cmp_val(int type, rv a, rv b, bool tol)
{
    if (a.null || b.null)
        return a.null == b.null ? 0 : a.null ? -1 : 1;
    if (type == DQO_TYPE_F64 && tol) {
        double m = fmax(fabs(a.f), fabs(b.f));
        if (fabs(a.f - b.f) <= 1e-9 * m)
            return 0;
    }
    return ref_cmp(type, a, type, b);
}

static const ref_result *cmp_res;

static int row_cmp_all(const void *pa, const void *pb)
{
    const rv *a = pa, *b = pb;
    for (int c = 0; c < cmp_res->ncols; c++) {
        int r = cmp_val(cmp_res->type[c], a[c], b[c], false);
        if (r != 0)
            return r;
    }
    return 0;
}

static bool rows_equal(const ref_result *r, const rv *a, const rv *b)
{
    for (int c = 0; c < r->ncols; c++)
        if (cmp_val(r->type[c], a[c], b[c], true) != 0)
            return false;
    return true;
}

/* NULL placement in ORDER BY is not documented; any of these, applied
 * consistently, is accepted. */
enum { NULLS_LOW, NULLS_HIGH, NULLS_FIRST, NULLS_LAST, NULL_CONVS };
static const char *const null_conv_name[] = {"NULL lowest", "NULL highest",
                                             "NULLS FIRST", "NULLS LAST"};
static const rquery *ord_q;
static int ord_conv;

static int order_cmp(const rv *a, const rv *b, bool tol)
{
    for (int o = 0; o < ord_q->norder; o++) {
        int c = ord_q->oitem[o];
        bool desc = ord_q->odesc[o];
        rv x = a[c], y = b[c];
        int r;
        if (x.null || y.null) {
            if (x.null && y.null)
                continue;
            r = x.null ? -1 : 1;
            if (ord_conv == NULLS_LOW)
                r = desc ? -r : r;
            else if (ord_conv == NULLS_HIGH)
                r = desc ? r : -r;
            else if (ord_conv == NULLS_LAST)
                r = -r;
        } else {
            r = cmp_val(cmp_res->type[c], x, y, tol);
            r = desc ? -r : r;
        }
        if (r != 0)
            return r;
    }
    return 0;
}

static int order_cmp_sort(const void *a, const void *b)
{
    int r = order_cmp(a, b, false);
    return r != 0 ? r : row_cmp_all(a, b);
}

static void fmt_val(int type, rv v, char *buf, size_t len)
{
    if (v.null)
        snprintf(buf, len, "NULL");
    else if (type == DQO_TYPE_STR)
        snprintf(buf, len, "'%s'", v.s);
    else if (type == DQO_TYPE_F64)
        snprintf(buf, len, "%.17g", v.f);
    else if (type == REF_TYPE_BOOL)
        snprintf(buf, len, "%s", v.i ? "true" : "false");
    else
        snprintf(buf, len, "%lld", (long long)v.i);
}

static void fmt_row(const ref_result *r, const rv *row, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < r->ncols && used + 1 < len; c++) {
        char v[96];
        fmt_val(r->type[c], row[c], v, sizeof v);
        used += (size_t)snprintf(buf + used, len - used, "%s%s", c ? ", " : "(",
                                 v);
    }
    if (used + 2 < len)
        strcat(buf, ")");
}

/* Reads the engine's result into cells of the expected column types; a
 * type that differs (exactly, where documented, else in kind) is a finding. */
static bool read_result(dqo_ctx *ctx, const dqo_table *res,
                        const ref_result *exp, const rquery *q, rv **cells,
                        char *why, size_t wlen)
{
    int nc = dqo_table_ncols(res);
    uint64_t rows = dqo_table_rows(res);
    if (nc != exp->ncols) {
        snprintf(why, wlen, "%d result columns, expected %d", nc, exp->ncols);
        return false;
    }
    *cells = calloc(rows > 0 ? rows * (size_t)nc : 1, sizeof(rv));
    for (int c = 0; c < nc; c++) {
        dqo_type t = dqo_table_column_type(res, c);
        int et = exp->type[c];
        bool ok = exp->exact[c] ? (int)t == et
                                : (ref_is_int(et) ? ref_is_int((int)t)
                                                  : (int)t == et);
        if (!ok) {
            snprintf(why, wlen, "column %d has type %s, expected %s%s", c + 1,
                     dqo_type_name(t), et == REF_TYPE_BOOL ? "bool"
                                                          : dqo_type_name(et),
                     exp->exact[c] ? "" : " (an integer type)");
            return false;
        }
        if (!q->star && q->item_alias[c] != NULL &&
            (dqo_table_column_name(res, c) == NULL ||
             strcmp(dqo_table_column_name(res, c), q->item_alias[c]) != 0)) {
            snprintf(why, wlen, "column %d is named '%s', expected alias '%s'",
                     c + 1, dqo_table_column_name(res, c), q->item_alias[c]);
            return false;
        }
        const void *data = NULL;
        dqo_status s;
        switch (t) {
        case DQO_TYPE_U32: s = dqo_table_column_u32(ctx, res, c, (const uint32_t **)&data); break;
        case DQO_TYPE_I32: s = dqo_table_column_i32(ctx, res, c, (const int32_t **)&data); break;
        case DQO_TYPE_I64: s = dqo_table_column_i64(ctx, res, c, (const int64_t **)&data); break;
        case DQO_TYPE_F64: s = dqo_table_column_f64(ctx, res, c, (const double **)&data); break;
        default: s = dqo_table_column_codes(ctx, res, c, (const uint32_t **)&data); break;
        }
        if (s != DQO_OK) {
            snprintf(why, wlen, "reading column %d: %s", c + 1,
                     dqo_ctx_errmsg(ctx));
            return false;
        }
        for (uint64_t r = 0; r < rows; r++) {
            rv *v = &(*cells)[r * (size_t)nc + (size_t)c];
            if (dqo_table_is_null(res, c, r)) {
                v->null = 1;
                continue;
            }
            switch (t) {
            case DQO_TYPE_U32: v->i = ((const uint32_t *)data)[r]; break;
            case DQO_TYPE_I32: v->i = ((const int32_t *)data)[r]; break;
            case DQO_TYPE_I64: v->i = ((const int64_t *)data)[r]; break;
            case DQO_TYPE_F64: v->f = ((const double *)data)[r]; break;
            default:
                v->s = dqo_table_dict_string(res, c, ((const uint32_t *)data)[r]);
                if (v->s == NULL) {
                    snprintf(why, wlen, "row %llu column %d: no dictionary text",
                             (unsigned long long)r, c + 1);
                    return false;
                }
            }
        }
    }
    return true;
}

/* Is `got` (n rows) a sub-multiset of exp's rows, equal to it when `all`?
 * Both get sorted. On a miss, `why` shows the first row that differs. */
static bool multiset_check(ref_result *exp, rv *got, uint64_t n, bool all,
                           char *why, size_t wlen)
{
    size_t nc = (size_t)exp->ncols;
    cmp_res = exp;
    /* qsort's pointer must be valid even for no rows (C11 7.22.5). */
    if (exp->rows > 0)
        qsort(exp->cell, exp->rows, nc * sizeof(rv), row_cmp_all);
    if (n > 0)
        qsort(got, n, nc * sizeof(rv), row_cmp_all);
    if (all ? n != exp->rows : n > exp->rows) {
        snprintf(why, wlen, "%llu rows, expected %s%llu", (unsigned long long)n,
                 all ? "" : "at most ", (unsigned long long)exp->rows);
        return false;
    }
    uint64_t e = 0;
    for (uint64_t g = 0; g < n; g++) {
        const rv *row = got + g * nc;
        while (!all && e < exp->rows &&
               !rows_equal(exp, exp->cell + e * nc, row) &&
               row_cmp_all(exp->cell + e * nc, row) < 0)
            e++;
        if (e >= exp->rows || !rows_equal(exp, exp->cell + e * nc, row)) {
            char a[400], b[400];
            fmt_row(exp, row, a, sizeof a);
            if (e < exp->rows)
                fmt_row(exp, exp->cell + e * nc, b, sizeof b);
            else
                snprintf(b, sizeof b, "(no more rows)");
            snprintf(why, wlen, "row %.150s not expected (sorted rows: got #%llu "
                     "= %.150s, expected %.150s)", a, (unsigned long long)g, a, b);
            return false;
        }
        e++;
    }
    return true;
}

/* The ordered check under one NULL convention: `got` in order, and the
 * expected rows sorted the same way (then cut to LIMIT) hold the same rows. */
static bool ordered_check(const rquery *q, const ref_result *exp, const rv *got,
                          uint64_t n, int conv, char *why, size_t wlen)
{
    size_t nc = (size_t)exp->ncols;
    ord_q = q;
    ord_conv = conv;
    cmp_res = exp;
    for (uint64_t i = 1; i < n; i++)
        if (order_cmp(got + (i - 1) * nc, got + i * nc, true) > 0) {
            char a[400], b[400];
            fmt_row(exp, got + (i - 1) * nc, a, sizeof a);
            fmt_row(exp, got + i * nc, b, sizeof b);
            snprintf(why, wlen, "rows %llu and %llu out of order: %s then %s",
                     (unsigned long long)i - 1, (unsigned long long)i, a, b);
            return false;
        }
    ref_result cut = *exp;
    cut.cell = malloc((exp->rows > 0 ? exp->rows : 1) * nc * sizeof(rv));
    if (exp->rows > 0)
        memcpy(cut.cell, exp->cell, exp->rows * nc * sizeof(rv));
    qsort(cut.cell, cut.rows, nc * sizeof(rv), order_cmp_sort);
    if (q->limit >= 0 && (uint64_t)q->limit < cut.rows)
        cut.rows = (uint64_t)q->limit;
    rv *copy = malloc((n > 0 ? n : 1) * nc * sizeof(rv));
    if (n > 0)
        memcpy(copy, got, n * nc * sizeof(rv));
    bool ok = multiset_check(&cut, copy, n, true, why, wlen);
    free(copy);
    free(cut.cell);
    return ok;
}

/* ------------------------------------------------------------- variants */

typedef struct variant {
    const char *name;
    dqo_query_options o;
} variant;

static variant variants[8];
static int nvariants;
static bool have_cl;

static void variants_init(dqo_ctx *ctx)
{
    nvariants = 0;
    variants[nvariants++] = (variant){"cpu", {.device = "cpu", .no_mav = 1}};
    variants[nvariants++] = (variant){"cpu sqo", {.device = "cpu", .sqo = 1,
                                                  .no_mav = 1}};
    variants[nvariants++] = (variant){
        "cpu paper", {.device = "cpu", .cost_model = DQO_COST_PAPER,
                      .no_mav = 1}};
    variants[nvariants++] = (variant){"cpu 1 thread",
                                      {.device = "cpu", .threads = 1,
                                       .no_mav = 1}};
    /* MAVs on: the second run of a shape reuses the first one's plan. */
    variants[nvariants++] = (variant){"auto mav", {.device = NULL}};
    have_cl = false;
    int n = dqo_location_count(ctx);
    for (int i = 0; i < n; i++) {
        dqo_location_info info;
        if (dqo_location_get(ctx, i, &info) == DQO_OK &&
            info.kind == DQO_LOCATION_OPENCL && strcmp(info.id, "cl:0") == 0)
            have_cl = true;
    }
    if (have_cl) {
        variants[nvariants++] = (variant){"auto", {.device = "auto",
                                                   .no_mav = 1}};
        variants[nvariants++] = (variant){"cl:0", {.device = "cl:0",
                                                   .no_mav = 1}};
        variants[nvariants++] = (variant){"cpu,cl:0 paper",
                                          {.device = "cpu,cl:0",
                                           .cost_model = DQO_COST_PAPER,
                                           .no_mav = 1}};
    }
}

/* Runs q's SQL under every variant and compares with the reference.
 * Returns the number of variants that disagreed. */
static int check_query(dqo_ctx *ctx, const rquery *q, int first_variant,
                       int last_variant)
{
    char sql[8192];
    sbuf b = {sql, 0, sizeof sql};
    ref_print_query(q, &b);
    ref_result exp;
    ref_run(q, &exp);
    int bad = 0;
    for (int v = first_variant; v < nvariants && v <= last_variant; v++) {
        dqo_table *res = NULL;
        dqo_status s = dqo_query(ctx, sql, &variants[v].o, &res, NULL);
        char why[4096] = "";
        bool ok;
        if (exp.ovf) {
            ok = s == DQO_EOVERFLOW;
            if (!ok)
                snprintf(why, sizeof why, "status %s (%s), expected DQO_EOVERFLOW",
                         dqo_status_name(s), dqo_ctx_errmsg(ctx));
        } else if (s != DQO_OK) {
            ok = false;
            snprintf(why, sizeof why, "status %s: %s", dqo_status_name(s),
                     dqo_ctx_errmsg(ctx));
        } else {
            rv *cells = NULL;
            uint64_t n = dqo_table_rows(res);
            ok = read_result(ctx, res, &exp, q, &cells, why, sizeof why);
            if (ok && q->norder > 0) {
                ok = false;
                char w[NULL_CONVS][1024];
                for (int c = 0; c < NULL_CONVS && !ok; c++)
                    ok = ordered_check(q, &exp, cells, n, c, w[c], sizeof w[c]);
                if (!ok)
                    snprintf(why, sizeof why, "%s [under %s]; %s [under %s]",
                             w[NULLS_LOW], null_conv_name[NULLS_LOW],
                             w[NULLS_LAST], null_conv_name[NULLS_LAST]);
            } else if (ok) {
                bool all = q->limit < 0 || (uint64_t)q->limit >= exp.rows;
                ok = multiset_check(&exp, cells, n, all, why, sizeof why);
                if (ok && !all && n != (uint64_t)q->limit) {
                    ok = false;
                    snprintf(why, sizeof why, "%llu rows under LIMIT %lld",
                             (unsigned long long)n, (long long)q->limit);
                }
            }
            free(cells);
        }
        dqo_table_destroy(res);
        if (!ok) {
            bad++;
            finding("[%s] %s\n    -> %s", variants[v].name, sql, why);
        }
    }
    ref_result_free(&exp);
    return bad;
}

static dqo_ctx *new_ctx(void)
{
    dqo_ctx *ctx;
    CHECK_OK(NULL, dqo_ctx_create(&ctx));
    /* Two threads at most: the suite must fit a 2-core CI machine. */
    CHECK_OK(ctx, dqo_ctx_set_threads(ctx, 2));
    variants_init(ctx);
    return ctx;
}

/* ---------------------------------------------------------------- tests */

static void test_random_queries(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    int per_round = 20, rounds = (nqueries + per_round - 1) / per_round;
    int done = 0, disagreeing = 0;
    for (int round = 0; round < rounds; round++) {
        tables_setup(ctx, round);
        for (int i = 0; i < per_round && done < nqueries; i++, done++) {
            static rquery q;
            gen_query(&q, done);
            disagreeing += check_query(ctx, &q, 0, nvariants - 1) > 0;
        }
        tables_teardown(ctx);
    }
    print_message("%d random queries x %d plan variants%s; %d disagreed\n",
                  done, nvariants, have_cl ? " (with OpenCL)" : "",
                  disagreeing);
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

/* Builds a query by hand over the current tabs; helpers for fixed tests. */
static rquery *hand_query(int ntab, int t0, int t1)
{
    static rquery q;
    memset(&q, 0, sizeof q);
    q.limit = -1;
    q.ntab = ntab;
    q.tab[0] = &tabs[t0];
    q.alias[0] = tabs[t0].name;
    if (ntab > 1) {
        q.tab[1] = &tabs[t1];
        q.alias[1] = tabs[t1].name;
    }
    q.qualify = ntab > 1;
    return &q;
}

static void set_table(ref_table *tt, const char *name,
                      const ref_colspec *spec, int ncols)
{
    memset(tt, 0, sizeof *tt);
    tt->name = name;
    tt->ncols = ncols;
    for (int c = 0; c < ncols; c++)
        tt->col[c] = spec[c];
}

/* Global aggregates over no rows: one row, COUNT 0, the others NULL. Also
 * grouped queries over no rows (no row) and every aggregate over all-NULL
 * input. */
static void test_empty_and_null_aggregates(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    tables_setup(ctx, 0); /* r is empty */
    for (int where = 0; where < 2; where++)
        for (int grouped = 0; grouped < 2; grouped++) {
            if (grouped == 0) {
                tables_teardown(ctx);
                tables_setup(ctx, where ? 5 : 0);
            }
            rquery *q = hand_query(1, 0, 0);
            q->aggregate = true;
            if (grouped) {
                q->group[q->ngroup++] = ref_col(q, 0, 5);
                q->item[q->nitems++] = ref_key(q, 0);
            }
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_COUNT_STAR, NULL);
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_COUNT, ref_col(q, 0, 2));
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_SUM, ref_col(q, 0, 2));
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_MIN, ref_col(q, 0, 3));
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_MAX, ref_col(q, 0, 4));
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_AVG, ref_col(q, 0, 2));
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_SUM, ref_col(q, 0, 4));
            if (where) /* filters everything out of a non-empty table */
                q->where = ref_bin(q, O_GT, ref_col(q, 0, 2), ref_int(q, 5000));
            check_query(ctx, q, 0, nvariants - 1);
        }
    tables_teardown(ctx);

    /* All-NULL inputs in non-empty groups. */
    tables_setup(ctx, 5);
    ref_table *r = &tabs[0];
    for (uint64_t i = 0; i < r->rows; i++)
        for (int c = 2; c <= 4; c++)
            r->cell[i * (size_t)r->ncols + (size_t)c].null = 1;
    dqo_register_table(ctx, "r", NULL);
    dqo_table_destroy(r->t);
    table_build(ctx, r);
    rquery *q = hand_query(1, 0, 0);
    q->aggregate = true;
    q->group[q->ngroup++] = ref_col(q, 0, 7);
    q->item[q->nitems++] = ref_key(q, 0);
    q->item[q->nitems++] = ref_agg(q, DQO_AGG_COUNT, ref_col(q, 0, 2));
    q->item[q->nitems++] = ref_agg(q, DQO_AGG_SUM, ref_col(q, 0, 3));
    q->item[q->nitems++] = ref_agg(q, DQO_AGG_MIN, ref_col(q, 0, 4));
    q->item[q->nitems++] = ref_agg(q, DQO_AGG_AVG, ref_col(q, 0, 2));
    check_query(ctx, q, 0, nvariants - 1);
    tables_teardown(ctx);
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

/* Each join shape deterministically (the random pool reaches them by
 * chance), joined then grouped, on mid-size tables. */
static void test_join_shapes(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    for (int round = 4; round < 8; round++) {
        tables_setup(ctx, round);
        for (int shape = 0; shape < 6; shape++)
            for (int three = 0; three < 2; three++) {
                rquery *q = hand_query(2, 0, 1);
                if (three) {
                    q->ntab = 3;
                    q->tab[2] = &tabs[2];
                    q->alias[2] = "t";
                }
                for (int k = 1; k < q->ntab; k++)
                    gen_join(q, k, shape + k - 1);
                if (three && tabs[0].rows * tabs[1].rows > 400000)
                    q->ntab = 2;
                q->aggregate = shape % 2 == 0;
                if (q->aggregate) {
                    q->group[q->ngroup++] = ref_col(q, 0, 1 + shape % 3);
                    q->item[q->nitems++] = ref_key(q, 0);
                    q->item[q->nitems++] = ref_agg(q, DQO_AGG_COUNT_STAR, NULL);
                    q->item[q->nitems++] = ref_agg(q, DQO_AGG_SUM,
                                                   ref_col(q, 1, 3));
                } else {
                    q->item[q->nitems++] = ref_col(q, 0, 0);
                    q->item[q->nitems++] = ref_col(q, 1, 0);
                    q->item[q->nitems++] = ref_col(q, 1, 4);
                    if (q->ntab == 3)
                        q->item[q->nitems++] = ref_col(q, 2, 0);
                }
                check_query(ctx, q, 0, nvariants - 1);
            }
        tables_teardown(ctx);
    }
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

/* The paper's query, SELECT R.A, COUNT(*) FROM R JOIN S ON R.ID = S.R_ID
 * GROUP BY R.A, on dense or sparse ids and A, sorted or not. */
static void test_paper_query(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    static const ref_colspec rspec[] = {{"ID", DQO_TYPE_U32, DOM_SEQ, 0},
                                        {"A", DQO_TYPE_U32, DOM_MOD, 0}};
    static const ref_colspec sspec[] = {{"R_ID", DQO_TYPE_U32, DOM_MOD, 0}};
    for (int sparse = 0; sparse < 2; sparse++)
        for (int sorted = 0; sorted < 2; sorted++) {
            ref_table *R = &tabs[0], *S = &tabs[1];
            set_table(R, "R", rspec, 2);
            set_table(S, "S", sspec, 1);
            uint64_t nr = 3000, ns = 5000;
            int pr[2] = {0, 100}, ps[1] = {(int)nr};
            table_fill(R, nr, pr, sorted ? 0 : -1);
            table_fill(S, ns, ps, sorted ? 0 : -1);
            if (sparse) {
                /* Spread ids and A over the u32 range; a monotone map keeps
                 * the order and the equalities. */
                for (uint64_t i = 0; i < nr; i++) {
                    R->cell[i * 2].i = R->cell[i * 2].i * 1000003 + 17;
                    R->cell[i * 2 + 1].i = R->cell[i * 2 + 1].i * 40000000 + 5;
                }
                for (uint64_t i = 0; i < ns; i++)
                    S->cell[i].i = S->cell[i].i * 1000003 + 17;
            }
            if (sorted) /* sorted on A as well: sort R by A, then ID */
                for (uint64_t i = 0; i < nr; i++)
                    R->cell[i * 2 + 1].i = (int64_t)(i * 100 / nr) *
                                           (sparse ? 40000000 : 1);
            table_build(ctx, R);
            table_build(ctx, S);
            rquery *q = hand_query(2, 0, 1);
            q->alias[0] = "R";
            q->alias[1] = "S";
            q->nkeys[1] = 1;
            q->key[1][0] = (ref_join_key){0, 0, 0, false};
            q->aggregate = true;
            q->group[q->ngroup++] = ref_col(q, 0, 1);
            q->item[q->nitems++] = ref_key(q, 0);
            q->item[q->nitems++] = ref_agg(q, DQO_AGG_COUNT_STAR, NULL);
            check_query(ctx, q, 0, nvariants - 1);
            table_free(ctx, R);
            table_free(ctx, S);
        }
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

/* ---------------------------------------------------------- error cases */

typedef struct err_case {
    const char *sql;
    dqo_status status; /* DQO_OK: any error */
    const char *needle; /* in the message; NULL: nothing asked */
    bool caret;
} err_case;

static void test_errors(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    tables_setup(ctx, 5);
    static const err_case cases[] = {
        {"SELECT a FORM r", DQO_EPARSE, "FROM", true},
        {"SELECT a FROM r WHERE", DQO_EPARSE, NULL, true},
        {"SELECT FROM r", DQO_EPARSE, NULL, true},
        {"SELECT a, FROM r", DQO_EPARSE, NULL, true},
        {"SELECT a FROM r GROUP a", DQO_EPARSE, "BY", true},
        {"SELECT a FROM r ORDER a", DQO_EPARSE, "BY", true},
        {"SELECT a FROM r LIMIT x", DQO_EPARSE, NULL, true},
        {"SELECT a FROM r LIMIT -1", DQO_EPARSE, NULL, false},
        {"SELECT (a FROM r", DQO_EPARSE, ")", true},
        {"SELECT a FROM r WHERE e = 'unterminated", DQO_EPARSE, NULL, true},
        {"SELECT a FROM r JOIN s r.id = s.r_id", DQO_EPARSE, "ON", true},
        {"SELECT a FROM r JOIN s ON r.id < s.r_id", DQO_EPARSE, NULL, false},
        {"SELECT a FROM r; SELECT a FROM r", DQO_EPARSE, NULL, true},
        {"SELECT a FROM r WHERE a IN ()", DQO_EPARSE, NULL, true},
        {"SELECT a FROM r WHERE a BETWEEN 1", DQO_EPARSE, "AND", true},
        {"", DQO_EPARSE, NULL, false},
        {"SELECT a FROM nosuch", DQO_ENOTFOUND, "nosuch", true},
        {"SELECT nosuch FROM r", DQO_ENOTFOUND, "nosuch", true},
        {"SELECT r.nosuch FROM r", DQO_ENOTFOUND, "nosuch", true},
        {"SELECT q.a FROM r", DQO_ENOTFOUND, "q", true},
        {"SELECT a FROM r JOIN s ON r.id = s.nosuch", DQO_ENOTFOUND, "nosuch",
         true},
        {"SELECT a + e FROM r", DQO_ETYPE, NULL, true},
        {"SELECT a FROM r WHERE e > 5", DQO_ETYPE, NULL, true},
        {"SELECT a FROM r WHERE a = 'x'", DQO_ETYPE, NULL, true},
        {"SELECT SUM(e) FROM r", DQO_ETYPE, NULL, true},
        {"SELECT AVG(e) FROM r", DQO_ETYPE, NULL, true},
        {"SELECT a FROM r WHERE a + 1", DQO_ETYPE, NULL, false},
        {"SELECT a FROM r WHERE NOT a", DQO_ETYPE, NULL, false},
        {"SELECT -e FROM r", DQO_ETYPE, NULL, false},
        {"SELECT a FROM r WHERE a IN ('x', 'y')", DQO_ETYPE, NULL, false},
        {"SELECT b, COUNT(*) FROM r GROUP BY a", DQO_EINVAL, "b", true},
        {"SELECT b, COUNT(*) FROM r", DQO_EINVAL, "b", true},
        {"SELECT a + b FROM r GROUP BY a", DQO_EINVAL, "b", false},
        {"SELECT id FROM r JOIN s ON r.id = s.r_id", DQO_EINVAL, "id", true},
        {"SELECT a FROM r WHERE COUNT(*) > 1", DQO_EINVAL, NULL, false},
        {"SELECT SUM(COUNT(*)) FROM r", DQO_EINVAL, NULL, false},
        {"SELECT a FROM r GROUP BY COUNT(*)", DQO_EINVAL, NULL, false},
        {"SELECT a FROM r ORDER BY 2", DQO_EINVAL, "2", false},
        {"SELECT a FROM r ORDER BY 0", DQO_EINVAL, NULL, false},
        {"SELECT a FROM r r JOIN s r ON r.id = r.id", DQO_EINVAL, NULL, false},
        {"SELECT a FROM 'does/not/exist.csv'", DQO_EIO, NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const err_case *c = &cases[i];
        dqo_table *res = (dqo_table *)&res;
        dqo_query_options o = {.device = "cpu", .no_mav = 1};
        dqo_status s = dqo_query(ctx, c->sql, &o, &res, NULL);
        const char *msg = dqo_ctx_errmsg(ctx);
        if (s == DQO_OK) {
            finding("%s\n    -> accepted, expected %s", c->sql,
                    dqo_status_name(c->status));
            dqo_table_destroy(res);
            continue;
        }
        if (res != NULL)
            finding("%s\n    -> *result not NULL after an error", c->sql);
        if (c->status != DQO_OK && s != c->status)
            finding("%s\n    -> %s, expected %s: %s", c->sql,
                    dqo_status_name(s), dqo_status_name(c->status), msg);
        if (c->needle != NULL && strstr(msg, c->needle) == NULL)
            finding("%s\n    -> message lacks '%s': %s", c->sql, c->needle, msg);
        /* The caret line: the query quoted, then '^' under the token. */
        if (c->caret && (strchr(msg, '^') == NULL || strchr(msg, '\n') == NULL))
            finding("%s\n    -> message has no caret line: %s", c->sql, msg);
        /* dqo_explain reports the same error. */
        char *text = (char *)&text;
        dqo_status se = dqo_explain(ctx, c->sql, &o, 0, &text);
        if (se == DQO_OK) {
            finding("%s\n    -> dqo_explain accepted it", c->sql);
            dqo_free(text);
        }
    }
    /* The caret sits under the offending token. */
    dqo_table *res;
    dqo_query_options o = {.device = "cpu", .no_mav = 1};
    if (dqo_query(ctx, "SELECT a FORM r", &o, &res, NULL) != DQO_OK) {
        const char *msg = dqo_ctx_errmsg(ctx);
        const char *line = strstr(msg, "SELECT a FORM r");
        const char *caret = strchr(msg, '^');
        if (line == NULL || caret == NULL)
            finding("caret: no quoted line or caret in: %s", msg);
        else {
            const char *bol = caret;
            while (bol > msg && bol[-1] != '\n')
                bol--;
            const char *lbol = line;
            while (lbol > msg && lbol[-1] != '\n')
                lbol--;
            if ((caret - bol) - (line - lbol) != 9)
                finding("caret: not under 'FORM' (column %d of the query): %s",
                        (int)((caret - bol) - (line - lbol)), msg);
        }
    }
    tables_teardown(ctx);
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

static dqo_status run_sql(dqo_ctx *ctx, const char *sql, dqo_table **res)
{
    dqo_query_options o = {.device = "cpu", .no_mav = 1};
    *res = NULL;
    return dqo_query(ctx, sql, &o, res, NULL);
}

/* Integer division and modulo by zero are NULL, not errors; integer
 * overflow in arithmetic or SUM is DQO_EOVERFLOW. */
static void test_div_zero_and_overflow(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    tables_setup(ctx, 6);
    dqo_table *res;
    dqo_status s = run_sql(ctx, "SELECT b / 0, b % 0, b / (g - g) FROM r", &res);
    if (s != DQO_OK)
        finding("SELECT b / 0, b %% 0 ... -> %s: %s", dqo_status_name(s),
                dqo_ctx_errmsg(ctx));
    else {
        for (uint64_t i = 0; i < dqo_table_rows(res); i++)
            for (int c = 0; c < 3; c++)
                if (!dqo_table_is_null(res, c, i)) {
                    finding("b / 0: row %llu column %d is not NULL",
                            (unsigned long long)i, c + 1);
                    i = dqo_table_rows(res);
                    break;
                }
        if (dqo_table_rows(res) != tabs[0].rows)
            finding("b / 0: %llu rows, expected %llu",
                    (unsigned long long)dqo_table_rows(res),
                    (unsigned long long)tabs[0].rows);
    }
    dqo_table_destroy(res);
    tables_teardown(ctx);

    /* A table of i64 values near the top of the range. */
    static const ref_colspec ospec[] = {{"k", DQO_TYPE_I32, DOM_FEW, 0},
                                        {"v", DQO_TYPE_I64, DOM_WIDE, 0}};
    ref_table *o = &tabs[0];
    set_table(o, "o", ospec, 2);
    int params[2] = {0, 0};
    table_fill(o, 100, params, -1);
    for (uint64_t i = 0; i < o->rows; i++)
        o->cell[i * 2 + 1].i = INT64_MAX / 4 + (int64_t)i;
    table_build(ctx, o);
    static const char *const ovf[] = {
        "SELECT SUM(v) FROM o",
        "SELECT k, SUM(v) FROM o GROUP BY k",
        "SELECT SUM(o.v) FROM o JOIN o AS p ON o.k = p.k",
        "SELECT v * 5 FROM o",
        "SELECT v + v + v + v + v FROM o",
        "SELECT - v - v - v - v - v FROM o",
        "SELECT k FROM o WHERE v * 8 > 0",
        "SELECT k, MAX(v * 4 + v) FROM o GROUP BY k",
    };
    for (size_t i = 0; i < sizeof ovf / sizeof ovf[0]; i++) {
        for (int v = 0; v < nvariants; v++) {
            s = dqo_query(ctx, ovf[i], &variants[v].o, &res, NULL);
            if (s != DQO_EOVERFLOW)
                finding("[%s] %s\n    -> %s, expected DQO_EOVERFLOW (%s)",
                        variants[v].name, ovf[i], dqo_status_name(s),
                        dqo_ctx_errmsg(ctx));
            dqo_table_destroy(res);
        }
    }
    /* Not overflows: three of the values (v = INT64_MAX / 4 + i) sum to
     * 3 * 2305843009213693951 + 0 + 1 + 2, inside the range. */
    static const char *const fits[] = {
        "SELECT SUM(v) FROM o WHERE v < 2305843009213693954",
        "SELECT k, SUM(v) FROM o WHERE v < 2305843009213693954 GROUP BY k",
        "SELECT SUM(v) - 0 FROM o WHERE v BETWEEN 0 AND 2305843009213693953",
    };
    for (size_t i = 0; i < sizeof fits / sizeof fits[0]; i++) {
        s = run_sql(ctx, fits[i], &res);
        int64_t sum = 0;
        const int64_t *p = NULL;
        int col = dqo_table_ncols(res) - 1;
        if (s != DQO_OK)
            finding("%s\n    -> %s: %s", fits[i], dqo_status_name(s),
                    dqo_ctx_errmsg(ctx));
        else if (dqo_table_column_i64(ctx, res, col, &p) != DQO_OK)
            finding("%s\n    -> the sum is not i64", fits[i]);
        else {
            for (uint64_t r = 0; r < dqo_table_rows(res); r++)
                sum += p[r];
            if (sum != 3 * (INT64_MAX / 4) + 3)
                finding("%s\n    -> %lld, expected %lld", fits[i],
                        (long long)sum, (long long)(3 * (INT64_MAX / 4) + 3));
        }
        dqo_table_destroy(res);
    }
    table_free(ctx, o);
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

/* Random mutations of valid queries: each must return OK or an error with a
 * message, never crash or leak (this is what the ASan build is for). */
static void test_mutations(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    tables_setup(ctx, 4);
    static const char *const tokens[] = {
        "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT", "JOIN",
        "ON", "AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL", "(", ")",
        ",", ".", "*", "+", "-", "/", "%", "=", "<>", "<", ">=", "'", "''",
        "\"", "--", ";", "COUNT(*)", "SUM(", "AVG", "1e309", "9223372036854775808",
        "-9223372036854775808", "0", "1.5", "r", "s", "t", "a", "e", "r.a",
        "'x'", "\xff", "DESC", "AS", "''''", "1e", ".5", "\"r\"", "r.*",
        "'r.csv'", "\t", "\n"};
    int ntok = (int)(sizeof tokens / sizeof tokens[0]);
    int ok = 0, errors = 0;
    for (int i = 0; i < 400; i++) {
        static rquery q;
        gen_query(&q, i);
        char sql[8192];
        sbuf b = {sql, 0, sizeof sql - 64};
        ref_print_query(&q, &b);
        size_t len = strlen(sql);
        int nmut = rnd_n(2) ? 1 : 1 + (int)rnd_n(3);
        for (int m = 0; m < nmut && len > 0; m++) {
            size_t at = rnd_n(len);
            switch (rnd_n(4)) {
            case 0: { /* delete a span */
                size_t n = 1 + rnd_n(8);
                if (at + n > len)
                    n = len - at;
                memmove(sql + at, sql + at + n, len - at - n + 1);
                break;
            }
            case 1: { /* insert a token */
                const char *tk = tokens[rnd_n((uint64_t)ntok)];
                size_t n = strlen(tk);
                if (len + n + 2 >= sizeof sql)
                    break;
                memmove(sql + at + n, sql + at, len - at + 1);
                memcpy(sql + at, tk, n);
                break;
            }
            case 2: /* truncate */
                sql[at] = '\0';
                break;
            default: /* replace one byte */
                sql[at] = (char)" ()'\",.*=0aZ;"[rnd_n(14)];
                break;
            }
            len = strlen(sql);
        }
        dqo_table *res = NULL;
        char *explain = NULL;
        dqo_query_options o = variants[rnd_n((uint64_t)(nvariants < 4 ? nvariants
                                                                     : 4))].o;
        dqo_status s = dqo_query(ctx, sql, &o, &res, i % 4 ? NULL : &explain);
        if (s == DQO_OK) {
            ok++;
            if (res == NULL)
                finding("mutation OK without a result: %s", sql);
        } else {
            errors++;
            if (res != NULL)
                finding("mutation %s with a result: %s", dqo_status_name(s), sql);
            if (dqo_ctx_errmsg(ctx)[0] == '\0')
                finding("mutation %s without a message: %s", dqo_status_name(s),
                        sql);
            if (s == DQO_EINTERNAL || s == DQO_ENOMEM)
                finding("mutation %s (%s): %s", dqo_status_name(s),
                        dqo_ctx_errmsg(ctx), sql);
        }
        dqo_table_destroy(res);
        dqo_free(explain);
    }
    print_message("mutations: %d ran, %d errors\n", ok, errors);
    tables_teardown(ctx);
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

/* dqo_explain names each granule of the plan; EXPLAIN ANALYZE (the explain
 * text of dqo_query) has measured times. */
static void test_explain(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    tables_setup(ctx, 6);
    static const char *const group_algs[] = {"hg", "sphg", "og", "sog", "bsg",
                                             "radix"};
    static const char *const join_algs[] = {"hj", "sphj", "oj", "soj", "bsj"};
    const char *sql = "SELECT r.a, COUNT(*) FROM r JOIN s ON r.id = s.r_id "
                      "WHERE s.b > 0 GROUP BY r.a ORDER BY 2 DESC LIMIT 5";
    for (int v = 0; v < nvariants; v++) {
        char *text = NULL;
        dqo_status s = dqo_explain(ctx, sql, &variants[v].o, 0, &text);
        if (s != DQO_OK) {
            finding("[%s] dqo_explain: %s: %s", variants[v].name,
                    dqo_status_name(s), dqo_ctx_errmsg(ctx));
            continue;
        }
        static const char *const ops[] = {"scan", "join", "group", "order",
                                          "limit"};
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            if (!contains_ci(text, ops[i]))
                finding("[%s] explain lacks '%s':\n%s", variants[v].name,
                        ops[i], text);
        bool g = false, j = false;
        for (size_t i = 0; i < 6; i++)
            g |= contains_ci(text, group_algs[i]);
        for (size_t i = 0; i < 5; i++)
            j |= contains_ci(text, join_algs[i]);
        if (!g || !j)
            finding("[%s] explain names no %s algorithm:\n%s", variants[v].name,
                    g ? "join" : "grouping", text);
        if (!contains_ci(text, "cpu") && !contains_ci(text, "cl:"))
            finding("[%s] explain names no location:\n%s", variants[v].name,
                    text);
        char *dp = NULL;
        s = dqo_explain(ctx, sql, &variants[v].o, 1, &dp);
        if (s != DQO_OK || dp == NULL || strlen(dp) <= strlen(text))
            finding("[%s] explain with the DP table: %s, %zu vs %zu bytes",
                    variants[v].name, dqo_status_name(s),
                    dp != NULL ? strlen(dp) : 0, strlen(text));
        dqo_free(dp);
        dqo_free(text);

        dqo_table *res = NULL;
        char *an = NULL;
        s = dqo_query(ctx, sql, &variants[v].o, &res, &an);
        if (s != DQO_OK || an == NULL || !contains_ci(an, "actual"))
            finding("[%s] EXPLAIN ANALYZE: %s, text without 'actual':\n%s",
                    variants[v].name, dqo_status_name(s),
                    an != NULL ? an : "(null)");
        dqo_free(an);
        dqo_table_destroy(res);
    }
    /* The SQO view never uses density-based granules. */
    char *text = NULL;
    if (dqo_explain(ctx, sql, &variants[1].o, 0, &text) == DQO_OK) {
        if (contains_ci(text, "sphg") || contains_ci(text, "sphj") ||
            contains_ci(text, "bsj") || contains_ci(text, "bsg"))
            finding("sqo plan uses a density granule:\n%s", text);
        dqo_free(text);
    }
    tables_teardown(ctx);
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

/* Strings: ORDER BY compares text (not dictionary codes, which follow first
 * appearance), joins compare text across two dictionaries, '' is not NULL. */
static void test_strings(void **state)
{
    (void)state;
    dqo_ctx *ctx = new_ctx();
    tables_setup(ctx, 7);
    rquery *q = hand_query(1, 0, 0);
    q->item[q->nitems++] = ref_col(q, 0, 5);
    q->item[q->nitems++] = ref_col(q, 0, 0);
    q->norder = 2;
    q->oitem[0] = 0;
    q->oitem[1] = 1;
    q->odesc[0] = true;
    check_query(ctx, q, 0, nvariants - 1);
    q->limit = 7;
    check_query(ctx, q, 0, nvariants - 1);

    q = hand_query(1, 0, 0);
    q->aggregate = true;
    q->group[q->ngroup++] = ref_col(q, 0, 5);
    q->item[q->nitems++] = ref_key(q, 0);
    q->item[q->nitems++] = ref_agg(q, DQO_AGG_COUNT_STAR, NULL);
    q->where = ref_bin(q, O_OR,
                       ref_bin(q, O_GE, ref_col(q, 0, 5), ref_str(q, "b")),
                       ref_bin(q, O_EQ, ref_col(q, 0, 5), ref_str(q, "")));
    q->norder = 1;
    check_query(ctx, q, 0, nvariants - 1);
    q->where = ref_bin(q, O_EQ, ref_col(q, 0, 5), ref_str(q, "it's"));
    check_query(ctx, q, 0, nvariants - 1);
    q->where = ref_bin(q, O_LT, ref_col(q, 0, 5), ref_str(q, "not in pool"));
    check_query(ctx, q, 0, nvariants - 1);
    tables_teardown(ctx);
    dqo_ctx_destroy(ctx);
    assert_no_findings();
}

int main(void)
{
    const char *env = getenv("DQO_TEST_SEED");
    if (env != NULL)
        seed = strtoull(env, NULL, 10);
    env = getenv("DQO_TEST_QUERIES");
    if (env != NULL)
        nqueries = atoi(env);
    rng_g.s = seed;
    /* MAVs go to a file of this run, not the user's cache. */
    char mav[64];
    snprintf(mav, sizeof mav, "/tmp/dqo_test_query_%d.mav", (int)getpid());
    setenv("DQO_MAV", mav, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_null_aggregates),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_join_shapes),
        cmocka_unit_test(test_paper_query),
        cmocka_unit_test(test_random_queries),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_div_zero_and_overflow),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_explain),
    };
    env = getenv("DQO_TEST_FILTER"); /* a glob over the test names */
    if (env != NULL)
        cmocka_set_test_filter(env);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(mav);
    return rc;
}
