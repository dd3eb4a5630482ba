/*
 * test_stats.c - the statistics pass (cpu/stats.c) against a naive
 * single-threaded reference, on seeded random data and edge cases, for every
 * type and several thread counts. Blocks are at least 64 Ki rows, so the
 * inputs that check thread boundaries have more than 7 * 64 Ki rows.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/cpu_int.h"

static const int thread_counts[] = {1, 2, 3, 7};
static const dqo_type all_types[] = {DQO_TYPE_U32, DQO_TYPE_I32, DQO_TYPE_I64,
                                     DQO_TYPE_F64};

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A column of any type built from int64 values (f64 gets v + 0.5 so that
 * the values are not integers). */
typedef struct col {
    dqo_type type;
    uint64_t rows;
    void *data;
    uint8_t *valid;
} col;

static size_t type_size(dqo_type t)
{
    return t == DQO_TYPE_U32 || t == DQO_TYPE_I32 ? 4 : 8;
}

static void col_set(col *c, uint64_t i, int64_t v)
{
    switch (c->type) {
    case DQO_TYPE_U32: ((uint32_t *)c->data)[i] = (uint32_t)v; break;
    case DQO_TYPE_I32: ((int32_t *)c->data)[i] = (int32_t)v; break;
    case DQO_TYPE_I64: ((int64_t *)c->data)[i] = v; break;
    default: ((double *)c->data)[i] = (double)v + 0.5; break;
    }
}

static double col_get(const col *c, uint64_t i)
{
    switch (c->type) {
    case DQO_TYPE_U32: return ((const uint32_t *)c->data)[i];
    case DQO_TYPE_I32: return ((const int32_t *)c->data)[i];
    case DQO_TYPE_I64: return (double)((const int64_t *)c->data)[i];
    default: return ((const double *)c->data)[i];
    }
}

static int64_t col_get_i(const col *c, uint64_t i)
{
    switch (c->type) {
    case DQO_TYPE_U32: return ((const uint32_t *)c->data)[i];
    case DQO_TYPE_I32: return ((const int32_t *)c->data)[i];
    default: return ((const int64_t *)c->data)[i];
    }
}

static col col_new(dqo_type t, uint64_t rows, bool nulls)
{
    col c = {t, rows, calloc(rows + 1, type_size(t)),
             nulls ? calloc(rows + 1, 1) : NULL};
    if (nulls)
        memset(c.valid, 1, rows);
    return c;
}

static void col_free(col *c)
{
    free(c->data);
    free(c->valid);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The naive reference; `exact_distinct` is the true distinct count. */
static void reference(const col *c, dqo_column_stats *s,
                      uint64_t *exact_distinct)
{
    memset(s, 0, sizeof *s);
    s->rows = c->rows;
    bool asc = true, desc = true, seen = false;
    const bool f = c->type == DQO_TYPE_F64;
    double prev = 0;
    int64_t iprev = 0;
    void *vals = malloc((c->rows + 1) * 8);
    uint64_t n = 0;
    for (uint64_t i = 0; i < c->rows; i++) {
        if (c->valid != NULL && c->valid[i] == 0) {
            s->nulls++;
            continue;
        }
        if (f) {
            const double v = col_get(c, i);
            ((double *)vals)[n++] = v;
            if (!seen) {
                s->fmin = s->fmax = v;
                s->runs = 1;
            } else {
                asc &= prev <= v;
                desc &= prev >= v;
                s->runs += prev != v;
                s->fmin = fmin(s->fmin, v);
                s->fmax = fmax(s->fmax, v);
            }
            prev = v;
        } else {
            const int64_t v = col_get_i(c, i);
            ((int64_t *)vals)[n++] = v;
            if (!seen) {
                s->min = s->max = v;
                s->runs = 1;
            } else {
                asc &= iprev <= v;
                desc &= iprev >= v;
                s->runs += iprev != v;
                s->min = v < s->min ? v : s->min;
                s->max = v > s->max ? v : s->max;
            }
            iprev = v;
        }
        seen = true;
    }
    s->order = asc && desc ? DQO_ORDER_CONST
               : asc       ? DQO_ORDER_ASC
               : desc      ? DQO_ORDER_DESC
                           : DQO_ORDER_NONE;
    qsort(vals, n, 8, f ? cmp_f64 : cmp_i64);
    uint64_t d = 0;
    for (uint64_t i = 0; i < n; i++)
        d += i == 0 || memcmp((char *)vals + 8 * i, (char *)vals + 8 * (i - 1), 8) != 0;
    *exact_distinct = d;
    free(vals);
}

/* Runs the pass with every thread count and compares with the reference;
 * `tol` is the relative tolerance of the distinct estimate. */
static void check_col(const col *c, double tol, uint64_t seed)
{
    dqo_column_stats want;
    uint64_t exact;
    reference(c, &want, &exact);
    for (size_t k = 0; k < sizeof thread_counts / sizeof *thread_counts; k++) {
        const int T = thread_counts[k];
        dqo_column_stats got;
        const dqo_status st = cpu_stats(c->type, c->data, c->valid, c->rows,
                                        T, &got);
        bool ok = st == DQO_OK && got.rows == want.rows &&
                  got.nulls == want.nulls && got.runs == want.runs &&
                  got.order == want.order;
        if (c->type == DQO_TYPE_F64)
            ok = ok && (exact == 0 || (got.fmin == want.fmin &&
                                       got.fmax == want.fmax));
        else
            ok = ok && got.min == want.min && got.max == want.max;
        const double err =
            exact == 0 ? (double)got.distinct
                       : fabs((double)got.distinct - (double)exact) / (double)exact;
        ok = ok && err <= tol && got.distinct <= c->rows - want.nulls;
        if (exact > 0)
            ok = ok && got.distinct >= 1;
        if (!ok) {
            print_error("seed %llu type %d rows %llu threads %d: status %d "
                        "nulls %llu/%llu runs %llu/%llu order %d/%d min %lld/%lld "
                        "max %lld/%lld distinct %llu/%llu\n",
                        (unsigned long long)seed, (int)c->type,
                        (unsigned long long)c->rows, T, (int)st,
                        (unsigned long long)got.nulls,
                        (unsigned long long)want.nulls,
                        (unsigned long long)got.runs,
                        (unsigned long long)want.runs, (int)got.order,
                        (int)want.order, (long long)got.min,
                        (long long)want.min, (long long)got.max,
                        (long long)want.max, (unsigned long long)got.distinct,
                        (unsigned long long)exact);
            fail();
        }
    }
}

static void test_empty(void **state)
{
    (void)state;
    for (size_t t = 0; t < 4; t++) {
        dqo_column_stats s;
        assert_int_equal(cpu_stats(all_types[t], NULL, NULL, 0, 3, &s), DQO_OK);
        assert_int_equal(s.rows, 0);
        assert_int_equal(s.runs, 0);
        assert_int_equal(s.distinct, 0);
        assert_int_equal(s.order, DQO_ORDER_CONST);
        assert_int_equal(s.min, 0);
        assert_int_equal(s.max, 0);
    }
}

static void test_one_row(void **state)
{
    (void)state;
    for (size_t t = 0; t < 4; t++) {
        col c = col_new(all_types[t], 1, false);
        col_set(&c, 0, 42);
        check_col(&c, 0, 0);
        col_free(&c);
    }
}

static void test_all_null(void **state)
{
    (void)state;
    for (size_t t = 0; t < 4; t++) {
        col c = col_new(all_types[t], 1000, true);
        memset(c.valid, 0, 1000);
        dqo_column_stats s;
        assert_int_equal(cpu_stats(c.type, c.data, c.valid, c.rows, 2, &s),
                         DQO_OK);
        assert_int_equal(s.nulls, 1000);
        assert_int_equal(s.distinct, 0);
        assert_int_equal(s.runs, 0);
        col_free(&c);
    }
}

/* Patterns over n rows (n above 7 blocks so thread boundaries fall inside
 * runs), each for every type, with and without NULLs. */
enum { PAT_EQUAL, PAT_ASC, PAT_DESC, PAT_CLUSTERED, PAT_RANDOM, PAT_EXTREMES,
       PAT_COUNT_ };

static void fill(col *c, int pat, uint64_t domain)
{
    const uint64_t n = c->rows;
    for (uint64_t i = 0; i < n; i++) {
        int64_t v = 0;
        switch (pat) {
        case PAT_EQUAL: v = 7; break;
        case PAT_ASC: v = (int64_t)(i / 3); break;
        case PAT_DESC: v = (int64_t)((n - i) / 5); break;
        case PAT_CLUSTERED:
            /* Runs of ~1000 equal values, in a shuffled order of values. */
            v = (int64_t)(cpu_hash64(i / 1000) % domain);
            break;
        case PAT_RANDOM: v = (int64_t)(rng() % domain); break;
        case PAT_EXTREMES: {
            const int64_t lo = c->type == DQO_TYPE_U32   ? 0
                               : c->type == DQO_TYPE_I32 ? INT32_MIN
                                                         : INT64_MIN;
            const int64_t hi = c->type == DQO_TYPE_U32   ? UINT32_MAX
                               : c->type == DQO_TYPE_I32 ? INT32_MAX
                                                         : INT64_MAX;
            v = rng() % 2 ? lo : hi;
            if (c->type == DQO_TYPE_F64)
                v = rng() % 2 ? -1000000 : 1000000;
            break;
        }
        }
        col_set(c, i, v);
        if (c->valid != NULL)
            c->valid[i] = rng() % 10 != 0;
    }
}

static void test_patterns(void **state)
{
    (void)state;
    const uint64_t seed = 1234;
    rng_state = seed;
    const uint64_t n = 7 * 65536 + 12345;
    for (size_t t = 0; t < 4; t++)
        for (int pat = 0; pat < PAT_COUNT_; pat++)
            for (int nulls = 0; nulls < 2; nulls++) {
                col c = col_new(all_types[t], n, nulls != 0);
                fill(&c, pat, 5000);
                /* Distinct counts here are up to ~1.6e5: HLL within 2%. */
                check_col(&c, 0.02, seed);
                col_free(&c);
            }
}

static void test_small_exact(void **state)
{
    (void)state;
    const uint64_t seed = 99;
    rng_state = seed;
    const uint64_t domains[] = {1, 2, 10, 100, 1000};
    for (size_t t = 0; t < 4; t++)
        for (size_t d = 0; d < 5; d++) {
            col c = col_new(all_types[t], 600000, false);
            for (uint64_t i = 0; i < c.rows; i++)
                col_set(&c, i, (int64_t)(i % domains[d]) * 7919 - 3000);
            /* Linear counting is exact at 1..100 and within 1% at 1000. */
            check_col(&c, domains[d] <= 100 ? 0 : 0.01, seed);
            col_free(&c);
        }
}

static void test_hll_large(void **state)
{
    (void)state;
    const uint64_t seed = 2024;
    rng_state = seed;
    const uint64_t distinct[] = {100000, 300000, 1000000};
    for (size_t t = 0; t < 4; t++)
        for (size_t d = 0; d < 3; d++) {
            col c = col_new(all_types[t], distinct[d] * 2, false);
            const uint64_t off = rng() % 1000000;
            for (uint64_t i = 0; i < c.rows; i++)
                col_set(&c, i, (int64_t)((i * 7 + off) % distinct[d]) - 500);
            check_col(&c, 0.02, seed);
            col_free(&c);
        }
}

static void test_random_seeds(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        rng_state = seed;
        const uint64_t n = 100000 + rng() % 500000;
        const uint64_t domain = 1 + rng() % 200000;
        for (size_t t = 0; t < 4; t++) {
            col c = col_new(all_types[t], n, seed % 2 == 0);
            fill(&c, PAT_RANDOM, domain);
            check_col(&c, 0.02, seed);
            col_free(&c);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),        cmocka_unit_test(test_one_row),
        cmocka_unit_test(test_all_null),     cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_small_exact),  cmocka_unit_test(test_hll_large),
        cmocka_unit_test(test_random_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
