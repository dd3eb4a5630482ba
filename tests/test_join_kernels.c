/*
 * test_join_kernels.c - every join kernel (hj, sphj, oj, soj, bsj) called
 * through cpu_backend.join, for every key type (u32, i32, i64) and with 1
 * and 4 threads, against a nested-loop reference (a sort-based reference
 * for the large cases, itself checked against the nested loop).
 *
 * Cases (seeded random data): few keys (many-to-many duplicates), many
 * keys, empty sides, no matches, all keys equal, skewed keys (one hot
 * key), keys at the type's limits, NULLs on both sides, sorted inputs (oj
 * valid) with and without NULLs, unsorted inputs (oj must return
 * DQO_EUNSUPPORTED), an sphj build range exactly at 2^26 slots (runs) and
 * one past it (DQO_EUNSUPPORTED), a large case (200K x 500K) per
 * algorithm for the parallel paths, failed allocations (DQO_ENOMEM
 * without leaks) and bad arguments. Statistics come from cpu_backend.stats.
 *
 * Checks: the pairs, sorted, equal the reference's exactly; the output
 * order contract of engine/backend.h (hj, sphj, bsj: probe row order, then
 * build row; oj, soj: key order, then build row, then probe row); no leak
 * (mem_outstanding); detail names the algorithm.
 *
 * Environment: DQO_TEST_SEED=N, the seed (printed on failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/cpu_int.h"
#include "engine/alloc.h"
#include "planner/plan.h"
#include "tests/test_util.h"

static uint64_t test_seed = 20261123;
static const char *const alg_names[PLAN_JOIN_COUNT_] = {"hj", "sphj", "oj",
                                                        "soj", "bsj"};
static const int thread_counts[] = {1, 4};
static const dqo_type key_types[] = {DQO_TYPE_U32, DQO_TYPE_I32, DQO_TYPE_I64};
/* The direct join's limit (cpu/join.c JOIN_DIRECT_MAX_SLOTS). */
#define SPHJ_MAX_SLOTS (UINT64_C(1) << 26)
/* Up to this many key comparisons the nested loop is the reference. */
#define NESTED_MAX (UINT64_C(1) << 22)

/* ------------------------------------------------------------ random data */

/* Keys are large (u32 above INT32_MAX) or negative, not small positives. */
static int64_t type_base(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return INT64_C(3000000000);
    case DQO_TYPE_I32: return -500;
    default: return -(INT64_C(1) << 40);
    }
}

static const char *type_name(dqo_type t)
{
    return t == DQO_TYPE_U32 ? "u32" : t == DQO_TYPE_I32 ? "i32" : "i64";
}

/* ---------------------------------------------------------------- a side */

typedef struct side {
    dqo_type type;
    uint64_t n;
    void *keys;
    uint8_t *valid; /* NULL: no NULLs */
    dqo_column_stats st;
} side;

static int64_t key_at(const side *s, uint64_t i)
{
    switch (s->type) {
    case DQO_TYPE_U32: return ((const uint32_t *)s->keys)[i];
    case DQO_TYPE_I32: return ((const int32_t *)s->keys)[i];
    default: return ((const int64_t *)s->keys)[i];
    }
}

static bool row_valid(const side *s, uint64_t i)
{
    return s->valid == NULL || s->valid[i] != 0;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* How keys are drawn. */
typedef struct gen {
    int64_t lo, hi;      /* uniform range */
    const int64_t *pool; /* or: drawn from these values */
    int npool;
    int hot_pct;  /* percent of rows taking the key lo (skew) */
    int null_pct; /* percent of NULL rows (their keys are random) */
    bool sorted;  /* ascending (NULL rows interspersed) */
} gen;

static void side_make(side *s, dqo_type t, uint64_t n, const gen *g, rng *r,
                      int threads)
{
    memset(s, 0, sizeof *s);
    s->type = t;
    s->n = n;
    int64_t *v = malloc((n + 1) * sizeof *v);
    for (uint64_t i = 0; i < n; i++) {
        if (g->pool != NULL)
            v[i] = g->pool[rng_next(r) % (uint64_t)g->npool];
        else if ((int)(rng_next(r) % 100) < g->hot_pct)
            v[i] = g->lo;
        else
            v[i] = rng_in(r, g->lo, g->hi);
    }
    if (g->sorted)
        qsort(v, n, sizeof *v, cmp_i64);
    const size_t w = t == DQO_TYPE_I64 ? 8 : 4;
    s->keys = malloc((n + 1) * w);
    for (uint64_t i = 0; i < n; i++) {
        if (t == DQO_TYPE_U32)
            ((uint32_t *)s->keys)[i] = (uint32_t)v[i];
        else if (t == DQO_TYPE_I32)
            ((int32_t *)s->keys)[i] = (int32_t)v[i];
        else
            ((int64_t *)s->keys)[i] = v[i];
    }
    if (g->null_pct > 0) {
        s->valid = malloc(n + 1);
        for (uint64_t i = 0; i < n; i++) {
            s->valid[i] = (int)(rng_next(r) % 100) >= g->null_pct;
            /* A NULL row's key is garbage, often a key the other side has,
             * so a kernel that reads it would match it. */
            if (!s->valid[i] && rng_next(r) % 2 == 0) {
                const int64_t x = rng_in(r, g->lo, g->hi);
                if (t == DQO_TYPE_U32)
                    ((uint32_t *)s->keys)[i] = (uint32_t)x;
                else if (t == DQO_TYPE_I32)
                    ((int32_t *)s->keys)[i] = (int32_t)x;
                else
                    ((int64_t *)s->keys)[i] = x;
            }
        }
    }
    free(v);
    assert_int_equal(
        cpu_backend.stats(t, s->keys, s->valid, n, threads, &s->st), DQO_OK);
}

static void side_free(side *s)
{
    free(s->keys);
    free(s->valid);
}

/* ------------------------------------------------------------ references */

typedef struct pairs {
    uint64_t n;
    uint64_t *v; /* build row << 32 | probe row, ascending */
} pairs;

static int cmp_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pairs_push(pairs *p, uint64_t *cap, uint64_t b, uint64_t q)
{
    if (p->n == *cap) {
        *cap = *cap == 0 ? 1024 : *cap * 2;
        p->v = realloc(p->v, *cap * sizeof *p->v);
    }
    p->v[p->n++] = b << 32 | q;
}

/* Every build row against every probe row. */
static void ref_nested(const side *b, const side *p, pairs *out)
{
    uint64_t cap = 0;
    out->n = 0;
    out->v = NULL;
    for (uint64_t i = 0; i < b->n; i++) {
        if (!row_valid(b, i))
            continue;
        const int64_t k = key_at(b, i);
        for (uint64_t j = 0; j < p->n; j++)
            if (row_valid(p, j) && key_at(p, j) == k)
                pairs_push(out, &cap, i, j);
    }
}

typedef struct krow {
    int64_t key;
    uint64_t row;
} krow;

static int cmp_krow(const void *a, const void *b)
{
    const krow *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static krow *sorted_valid(const side *s, uint64_t *n)
{
    krow *k = malloc((s->n + 1) * sizeof *k);
    *n = 0;
    for (uint64_t i = 0; i < s->n; i++)
        if (row_valid(s, i))
            k[(*n)++] = (krow){key_at(s, i), i};
    qsort(k, *n, sizeof *k, cmp_krow);
    return k;
}

/* Both sides sorted with qsort, runs of equal keys crossed. */
static void ref_sorted(const side *b, const side *p, pairs *out)
{
    uint64_t nb, np, cap = 0;
    krow *kb = sorted_valid(b, &nb), *kp = sorted_valid(p, &np);
    out->n = 0;
    out->v = NULL;
    uint64_t i = 0, j = 0;
    while (i < nb && j < np) {
        if (kb[i].key < kp[j].key) {
            i++;
        } else if (kb[i].key > kp[j].key) {
            j++;
        } else {
            uint64_t i2 = i, j2 = j;
            while (i2 < nb && kb[i2].key == kb[i].key)
                i2++;
            while (j2 < np && kp[j2].key == kp[j].key)
                j2++;
            for (uint64_t x = i; x < i2; x++)
                for (uint64_t y = j; y < j2; y++)
                    pairs_push(out, &cap, kb[x].row, kp[y].row);
            i = i2;
            j = j2;
        }
    }
    free(kb);
    free(kp);
    qsort(out->v, out->n, sizeof *out->v, cmp_u64);
}

static void ref_join(const side *b, const side *p, pairs *out)
{
    if (b->n * p->n <= NESTED_MAX)
        ref_nested(b, p, out);
    else
        ref_sorted(b, p, out);
}

/* ----------------------------------------------------------------- checks */

static bool ascending(const dqo_column_stats *s)
{
    return s->order == DQO_ORDER_ASC || s->order == DQO_ORDER_CONST;
}

/* What the kernel must return on this input (see backend.h). */
static dqo_status expected_status(int alg, const side *b, const side *p)
{
    if (alg == PLAN_JOIN_ORDER && (!ascending(&b->st) || !ascending(&p->st)))
        return DQO_EUNSUPPORTED;
    if (alg == PLAN_JOIN_DIRECT && b->n > b->st.nulls &&
        (uint64_t)b->st.max - (uint64_t)b->st.min >= SPHJ_MAX_SLOTS)
        return DQO_EUNSUPPORTED;
    return DQO_OK;
}

/* The order contract; returns the first index that breaks it, or -1. */
static int64_t order_violation(int alg, const side *b, const join_output *o)
{
    const bool key_order = alg == PLAN_JOIN_ORDER || alg == PLAN_JOIN_SORT;
    for (uint64_t i = 1; i < o->pairs; i++) {
        const uint32_t b0 = o->build_row[i - 1], b1 = o->build_row[i];
        const uint32_t p0 = o->probe_row[i - 1], p1 = o->probe_row[i];
        bool ok;
        if (key_order) {
            const int64_t k0 = key_at(b, b0), k1 = key_at(b, b1);
            ok = k0 < k1 || (k0 == k1 && (b0 < b1 || (b0 == b1 && p0 < p1)));
        } else {
            ok = p0 < p1 || (p0 == p1 && b0 < b1);
        }
        if (!ok)
            return (int64_t)i;
    }
    return -1;
}

static void check_pairs(const char *what, int alg, const side *b,
                        const join_output *o, const pairs *ref)
{
    if (o->pairs != ref->n)
        fail_msg("%s: %llu pairs, reference %llu (seed %llu)", what,
                 (unsigned long long)o->pairs, (unsigned long long)ref->n,
                 (unsigned long long)test_seed);
    const int64_t bad = order_violation(alg, b, o);
    if (bad >= 0)
        fail_msg("%s: output order broken at pair %lld (seed %llu)", what,
                 (long long)bad, (unsigned long long)test_seed);
    uint64_t *got = malloc((o->pairs + 1) * sizeof *got);
    for (uint64_t i = 0; i < o->pairs; i++)
        got[i] = (uint64_t)o->build_row[i] << 32 | o->probe_row[i];
    qsort(got, o->pairs, sizeof *got, cmp_u64);
    uint64_t i = 0;
    while (i < o->pairs && got[i] == ref->v[i])
        i++;
    const uint64_t g = i < o->pairs ? got[i] : 0;
    free(got);
    if (i < o->pairs)
        fail_msg("%s: pair %llu differs: (%llu, %llu) vs (%llu, %llu) "
                 "(seed %llu)",
                 what, (unsigned long long)i, (unsigned long long)(g >> 32),
                 (unsigned long long)(g & UINT32_MAX),
                 (unsigned long long)(ref->v[i] >> 32),
                 (unsigned long long)(ref->v[i] & UINT32_MAX),
                 (unsigned long long)test_seed);
}

static join_input make_input(const side *b, const side *p, int threads)
{
    return (join_input){.key_type = b->type,
                        .build_keys = b->keys,
                        .build_valid = b->valid,
                        .build_rows = b->n,
                        .build_stats = &b->st,
                        .probe_keys = p->keys,
                        .probe_valid = p->valid,
                        .probe_rows = p->n,
                        .probe_stats = &p->st,
                        .threads = threads};
}

/* Runs one algorithm on one input and checks status, pairs, order, leaks. */
static void run_one(const char *name, int alg, const side *b, const side *p,
                    int threads, const pairs *ref)
{
    char what[160];
    snprintf(what, sizeof what, "%s %s %s x%d", name, alg_names[alg],
             type_name(b->type), threads);
    const join_input in = make_input(b, p, threads);
    const long live = mem_outstanding();
    join_output o;
    const dqo_status st = cpu_backend.join(&in, alg, &o);
    const dqo_status want = expected_status(alg, b, p);
    if (st != want)
        fail_msg("%s: status %s, expected %s (%s) (seed %llu)", what,
                 dqo_status_name(st), dqo_status_name(want), o.detail,
                 (unsigned long long)test_seed);
    if (strncmp(o.detail, alg_names[alg], strlen(alg_names[alg])) != 0)
        fail_msg("%s: detail \"%s\" does not name the algorithm", what,
                 o.detail);
    if (st == DQO_OK)
        check_pairs(what, alg, b, &o, ref);
    else
        assert_true(o.pairs == 0 && o.build_row == NULL);
    join_output_free(&o);
    if (mem_outstanding() != live)
        fail_msg("%s: %ld allocations leaked", what, mem_outstanding() - live);
}

/* Every algorithm and thread count on one pair of sides. */
static void run_all(const char *name, const side *b, const side *p)
{
    pairs ref;
    ref_join(b, p, &ref);
    for (int a = 0; a < PLAN_JOIN_COUNT_; a++)
        for (size_t t = 0; t < sizeof thread_counts / sizeof *thread_counts;
             t++)
            run_one(name, a, b, p, thread_counts[t], &ref);
    free(ref.v);
}

/* Builds sides with generators gb and gp (offsets from the type's base
 * unless `absolute`) for every key type, and runs every algorithm. */
static void run_case(const char *name, uint64_t nb, uint64_t np, gen gb, gen gp,
                     bool absolute, uint64_t salt)
{
    for (size_t k = 0; k < sizeof key_types / sizeof *key_types; k++) {
        const dqo_type t = key_types[k];
        rng r = {test_seed ^ (salt * 0x100000001b3ULL) ^ (uint64_t)k};
        gen b = gb, p = gp;
        if (!absolute) {
            const int64_t base = type_base(t);
            b.lo += base;
            b.hi += base;
            p.lo += base;
            p.hi += base;
        }
        side sb, sp;
        side_make(&sb, t, nb, &b, &r, 2);
        side_make(&sp, t, np, &p, &r, 2);
        run_all(name, &sb, &sp);
        side_free(&sb);
        side_free(&sp);
    }
}

/* ------------------------------------------------------------------ cases */

static void test_random_few(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 19};
    run_case("few keys", 700, 1500, g, g, false, 1);
}

static void test_random_many(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 4999};
    run_case("many keys", 2000, 3000, g, g, false, 2);
}

static void test_empty(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 9};
    run_case("empty build", 0, 100, g, g, false, 3);
    run_case("empty probe", 100, 0, g, g, false, 4);
    run_case("both empty", 0, 0, g, g, false, 5);
    const gen all_null = {.lo = 0, .hi = 9, .null_pct = 100};
    run_case("all NULL build", 50, 100, all_null, g, false, 6);
    run_case("all NULL probe", 50, 100, g, all_null, false, 7);
}

static void test_one_row(void **state)
{
    (void)state;
    const gen g = {.lo = 3, .hi = 3};
    run_case("one row", 1, 1, g, g, false, 8);
    const gen h = {.lo = 4, .hi = 4};
    run_case("one row, no match", 1, 1, g, h, false, 9);
}

static void test_no_match(void **state)
{
    (void)state;
    const gen gb = {.lo = 0, .hi = 99}, gp = {.lo = 1000, .hi = 1099};
    run_case("no match", 500, 800, gb, gp, false, 10);
    run_case("no match, probe below", 500, 800, gp, gb, false, 11);
}

static void test_all_equal(void **state)
{
    (void)state;
    const gen g = {.lo = 7, .hi = 7};
    run_case("all equal", 60, 80, g, g, false, 12);
}

static void test_skewed(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 2000, .hot_pct = 70};
    run_case("skewed", 400, 600, g, g, false, 13);
}

static void test_limits(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof key_types / sizeof *key_types; k++) {
        const dqo_type t = key_types[k];
        int64_t lo, hi;
        type_domain(t, &lo, &hi);
        const int64_t pool[] = {lo, lo + 1, hi - 1, hi, 0, -1 > lo ? -1 : 1};
        gen g = {.pool = pool, .npool = 6};
        rng r = {test_seed ^ 14 ^ (uint64_t)k};
        side sb, sp;
        side_make(&sb, t, 300, &g, &r, 1);
        side_make(&sp, t, 500, &g, &r, 1);
        run_all("type limits", &sb, &sp);
        side_free(&sb);
        side_free(&sp);
        /* The same, sorted, so that oj runs too. */
        g.sorted = true;
        side_make(&sb, t, 300, &g, &r, 1);
        side_make(&sp, t, 500, &g, &r, 1);
        run_all("type limits sorted", &sb, &sp);
        side_free(&sb);
        side_free(&sp);
        /* Uniform over the whole domain: almost no matches, wide keys. */
        gen w = {.lo = lo, .hi = hi};
        side_make(&sb, t, 400, &w, &r, 1);
        side_make(&sp, t, 400, &w, &r, 1);
        run_all("whole domain", &sb, &sp);
        side_free(&sb);
        side_free(&sp);
    }
}

static void test_nulls(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 29, .null_pct = 25};
    run_case("NULLs both sides", 600, 900, g, g, false, 15);
    const gen s = {.lo = 0, .hi = 29, .null_pct = 25, .sorted = true};
    run_case("NULLs sorted", 600, 900, s, s, false, 16);
    const gen n = {.lo = 0, .hi = 29};
    run_case("NULLs build only", 600, 900, g, n, false, 17);
}

static void test_sorted(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 299, .sorted = true};
    const gen u = {.lo = 0, .hi = 299};
    run_case("sorted", 1500, 2500, g, g, false, 18);
    run_case("sorted build, unsorted probe", 1500, 2500, g, u, false, 19);
    run_case("unsorted build, sorted probe", 1500, 2500, u, g, false, 20);
}

/* sphj at exactly 2^26 build slots runs; one slot more is refused. */
static void test_direct_limit(void **state)
{
    (void)state;
    const int64_t base = 1000;
    for (int extra = 0; extra <= 1; extra++) {
        const int64_t pool[] = {
            base, base + (int64_t)SPHJ_MAX_SLOTS - 1 + extra, base + 5};
        gen g = {.pool = pool, .npool = 3};
        rng r = {test_seed ^ 21};
        side sb, sp;
        side_make(&sb, DQO_TYPE_U32, 200, &g, &r, 1);
        side_make(&sp, DQO_TYPE_U32, 300, &g, &r, 1);
        assert_int_equal((uint64_t)sb.st.max - (uint64_t)sb.st.min + 1,
                         SPHJ_MAX_SLOTS + (uint64_t)extra);
        pairs ref;
        ref_join(&sb, &sp, &ref);
        run_one(extra ? "past the sphj limit" : "at the sphj limit",
                PLAN_JOIN_DIRECT, &sb, &sp, 1, &ref);
        free(ref.v);
        side_free(&sb);
        side_free(&sp);
    }
}

/* The sort-based reference (used for large cases) against the nested
 * loop, so that the large cases' reference is trusted. */
static void test_references_agree(void **state)
{
    (void)state;
    const gen g = {.lo = -50, .hi = 50, .null_pct = 10};
    rng r = {test_seed ^ 22};
    side sb, sp;
    side_make(&sb, DQO_TYPE_I64, 800, &g, &r, 1);
    side_make(&sp, DQO_TYPE_I64, 900, &g, &r, 1);
    pairs a, b;
    ref_nested(&sb, &sp, &a);
    ref_sorted(&sb, &sp, &b);
    assert_int_equal(a.n, b.n);
    assert_true(a.n > 0);
    assert_memory_equal(a.v, b.v, a.n * sizeof *a.v);
    free(a.v);
    free(b.v);
    side_free(&sb);
    side_free(&sp);
}

/* 200K x 500K rows per algorithm with 4 threads: the parallel builds,
 * probes, sorts and merges. */
static void test_large(void **state)
{
    (void)state;
    const dqo_type types[] = {DQO_TYPE_U32, DQO_TYPE_I64};
    for (size_t k = 0; k < 2; k++) {
        const dqo_type t = types[k];
        const int64_t base = type_base(t);
        for (int sorted = 0; sorted <= 1; sorted++) {
            gen g = {.lo = base,
                     .hi = base + 399999,
                     .sorted = sorted != 0,
                     .null_pct = t == DQO_TYPE_I64 ? 5 : 0};
            rng r = {test_seed ^ 23 ^ (uint64_t)k << 8 ^ (uint64_t)sorted};
            side sb, sp;
            side_make(&sb, t, 200000, &g, &r, 4);
            side_make(&sp, t, 500000, &g, &r, 4);
            pairs ref;
            ref_join(&sb, &sp, &ref);
            for (int a = 0; a < PLAN_JOIN_COUNT_; a++)
                if (sorted || a != PLAN_JOIN_ORDER)
                    run_one(sorted ? "large sorted" : "large", a, &sb, &sp, 4,
                            &ref);
            free(ref.v);
            side_free(&sb);
            side_free(&sp);
        }
    }
    /* Wide i64 keys (key and row bits above 64): soj's and bsj's sort with
     * row ids beside the keys. */
    gen w = {.lo = INT64_MIN, .hi = INT64_MAX};
    rng r = {test_seed ^ 24};
    side sb, sp;
    side_make(&sb, DQO_TYPE_I64, 100000, &w, &r, 4);
    side_make(&sp, DQO_TYPE_I64, 100000, &w, &r, 4);
    /* Some matches: copy a few build keys into the probe side. */
    for (uint64_t i = 0; i < 1000; i++)
        ((int64_t *)sp.keys)[i * 97] = ((int64_t *)sb.keys)[i * 89];
    assert_int_equal(
        cpu_backend.stats(DQO_TYPE_I64, sp.keys, NULL, sp.n, 4, &sp.st),
        DQO_OK);
    pairs ref;
    ref_join(&sb, &sp, &ref);
    assert_true(ref.n >= 1000);
    run_one("wide", PLAN_JOIN_SORT, &sb, &sp, 4, &ref);
    run_one("wide", PLAN_JOIN_BSEARCH, &sb, &sp, 4, &ref);
    run_one("wide", PLAN_JOIN_HASH, &sb, &sp, 4, &ref);
    free(ref.v);
    side_free(&sb);
    side_free(&sp);
}

/* Every allocation of every algorithm fails in turn: DQO_ENOMEM, no leak,
 * nothing in the output. */
static void test_alloc_failures(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 999, .null_pct = 10};
    const gen s = {.lo = 0, .hi = 999, .null_pct = 10, .sorted = true};
    rng r = {test_seed ^ 25};
    side sb, sp, ss;
    side_make(&sb, DQO_TYPE_I32, 20000, &g, &r, 4);
    side_make(&sp, DQO_TYPE_I32, 30000, &g, &r, 4);
    side_make(&ss, DQO_TYPE_I32, 30000, &s, &r, 4);
    for (int a = 0; a < PLAN_JOIN_COUNT_; a++) {
        const side *b = a == PLAN_JOIN_ORDER ? &ss : &sb;
        const side *p = a == PLAN_JOIN_ORDER ? &ss : &sp;
        const join_input in = make_input(b, p, 4);
        bool done = false;
        for (long n = 1; !done && n < 100; n++) {
            const long live = mem_outstanding();
            join_output o;
            mem_fail_after(n);
            const dqo_status st = cpu_backend.join(&in, a, &o);
            mem_fail_after(0);
            if (st == DQO_OK) {
                done = true;
                assert_true(o.pairs > 0);
            } else if (st != DQO_ENOMEM) {
                fail_msg("%s, allocation %ld failing: %s", alg_names[a], n,
                         dqo_status_name(st));
            } else {
                assert_true(o.build_row == NULL && o.probe_row == NULL);
                assert_non_null(strstr(o.detail, alg_names[a]));
            }
            join_output_free(&o);
            if (mem_outstanding() != live)
                fail_msg("%s, allocation %ld failing: %ld leaked", alg_names[a],
                         n, mem_outstanding() - live);
        }
        assert_true(done);
    }
    side_free(&sb);
    side_free(&sp);
    side_free(&ss);
}

static void test_bad_args(void **state)
{
    (void)state;
    const gen g = {.lo = 0, .hi = 9};
    rng r = {test_seed ^ 26};
    side sb, sp;
    side_make(&sb, DQO_TYPE_U32, 10, &g, &r, 1);
    side_make(&sp, DQO_TYPE_U32, 10, &g, &r, 1);
    join_output o;
    join_input in = make_input(&sb, &sp, 1);
    assert_int_equal(cpu_backend.join(&in, PLAN_JOIN_COUNT_, &o), DQO_EINVAL);
    assert_non_null(strstr(o.detail, "algorithm"));
    assert_int_equal(cpu_backend.join(&in, -1, &o), DQO_EINVAL);
    in.threads = 0;
    assert_int_equal(cpu_backend.join(&in, PLAN_JOIN_HASH, &o), DQO_EINVAL);
    in = make_input(&sb, &sp, 1);
    in.key_type = DQO_TYPE_F64;
    assert_int_equal(cpu_backend.join(&in, PLAN_JOIN_HASH, &o), DQO_ETYPE);
    in = make_input(&sb, &sp, 1);
    in.probe_keys = NULL;
    assert_int_equal(cpu_backend.join(&in, PLAN_JOIN_SORT, &o), DQO_EINVAL);
    in = make_input(&sb, &sp, 1);
    in.build_stats = NULL;
    assert_int_equal(cpu_backend.join(&in, PLAN_JOIN_DIRECT, &o), DQO_EINVAL);
    in = make_input(&sb, &sp, 1);
    in.build_rows = UINT64_C(1) << 32;
    assert_int_equal(cpu_backend.join(&in, PLAN_JOIN_BSEARCH, &o), DQO_EINVAL);
    assert_non_null(strstr(o.detail, "32-bit"));
    assert_int_equal(cpu_backend.join(NULL, PLAN_JOIN_HASH, &o), DQO_EINVAL);
    assert_int_equal(cpu_backend.join(&in, PLAN_JOIN_HASH, NULL), DQO_EINVAL);
    join_output_free(NULL);
    side_free(&sb);
    side_free(&sp);
}

static int setup(void **s)
{
    (void)s;
    const char *env = getenv("DQO_TEST_SEED");
    if (env != NULL && *env != '\0')
        test_seed = strtoull(env, NULL, 10);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_references_agree),
        cmocka_unit_test(test_random_few),
        cmocka_unit_test(test_random_many),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_one_row),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_all_equal),
        cmocka_unit_test(test_skewed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_nulls),
        cmocka_unit_test(test_sorted),
        cmocka_unit_test(test_direct_limit),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
