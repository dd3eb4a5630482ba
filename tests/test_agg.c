/*
 * test_agg.c - the accumulators (cpu/agg.c): agg_update, agg_update_gather,
 * agg_update_atomic and agg_merge_range against naive loops, for every
 * operation and input type, with and without NULLs; integer SUM overflow
 * detection; doubles' MIN/MAX with negative values; output alloc/emit/free.
 */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/cpu_int.h"

#define ROWS 5000
#define SLOTS 37

static uint64_t rng_state;
static uint64_t rng(void)
{
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static const dqo_type types[] = {DQO_TYPE_U32, DQO_TYPE_I32, DQO_TYPE_I64,
                                 DQO_TYPE_F64};
static const agg_op ops[] = {AGG_OP_COUNT, AGG_OP_SUM, AGG_OP_MIN, AGG_OP_MAX};

/* Inputs: one column per type, values of both signs; NULLs in 1 of 7. */
static uint32_t in_u32[ROWS];
static int32_t in_i32[ROWS];
static int64_t in_i64[ROWS];
static double in_f64[ROWS];
static uint8_t in_valid[ROWS];
static uint32_t in_slot[ROWS];

static const void *type_data(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return in_u32;
    case DQO_TYPE_I32: return in_i32;
    case DQO_TYPE_I64: return in_i64;
    default: return in_f64;
    }
}

static double value(dqo_type t, uint64_t r)
{
    switch (t) {
    case DQO_TYPE_U32: return in_u32[r];
    case DQO_TYPE_I32: return in_i32[r];
    case DQO_TYPE_I64: return (double)in_i64[r];
    default: return in_f64[r];
    }
}

static void make_inputs(uint64_t seed)
{
    rng_state = seed;
    for (int r = 0; r < ROWS; r++) {
        in_u32[r] = (uint32_t)rng();
        in_i32[r] = (int32_t)rng();
        in_i64[r] = (int64_t)(rng() % 2000001) - 1000000;
        in_f64[r] = ((double)(rng() % 20001) - 10000.0) / 8.0;
        in_valid[r] = rng() % 7 != 0;
        in_slot[r] = (uint32_t)(rng() % SLOTS);
    }
}

/* The naive result of one aggregate over rows [0, n), as doubles (exact for
 * these magnitudes except u32/i32 sums, checked as int64 separately). */
typedef struct ref {
    int64_t cnt[SLOTS];
    int64_t i[SLOTS];
    double f[SLOTS];
} ref;

static void naive(const grp_agg *a, const uint32_t *rows, uint64_t n, ref *o)
{
    for (int s = 0; s < SLOTS; s++) {
        o->cnt[s] = 0;
        o->i[s] = a->op == AGG_OP_MIN ? INT64_MAX
                  : a->op == AGG_OP_MAX ? INT64_MIN
                                        : 0;
        o->f[s] = a->op == AGG_OP_MIN ? INFINITY
                  : a->op == AGG_OP_MAX ? -INFINITY
                                        : 0;
    }
    for (uint64_t j = 0; j < n; j++) {
        const uint64_t r = rows != NULL ? rows[j] : j;
        const uint32_t s = in_slot[r];
        o->cnt[s]++;
        if (a->valid != NULL && a->valid[r] == 0)
            continue;
        const double v = value(a->type, r);
        int64_t iv = 0;
        switch (a->type) {
        case DQO_TYPE_U32: iv = in_u32[r]; break;
        case DQO_TYPE_I32: iv = in_i32[r]; break;
        case DQO_TYPE_I64: iv = in_i64[r]; break;
        default: break;
        }
        switch (a->op) {
        case AGG_OP_COUNT: o->i[s]++; break;
        case AGG_OP_SUM:
            o->i[s] += iv;
            o->f[s] += v;
            break;
        case AGG_OP_MIN:
            o->i[s] = iv < o->i[s] ? iv : o->i[s];
            o->f[s] = v < o->f[s] ? v : o->f[s];
            break;
        case AGG_OP_MAX:
            o->i[s] = iv > o->i[s] ? iv : o->i[s];
            o->f[s] = v > o->f[s] ? v : o->f[s];
            break;
        }
    }
}

static void check_table(const agg_table *t, const grp_input *in, const ref *r)
{
    const grp_agg *a = &in->aggs[0];
    for (int s = 0; s < SLOTS; s++) {
        assert_int_equal(t->count[s], r->cnt[s]);
        if (grp_agg_is_f64(a)) {
            const double got = ((const double *)t->acc[0])[s];
            if (a->op == AGG_OP_SUM)
                assert_true(fabs(got - r->f[s]) <= 1e-9 * (1 + fabs(r->f[s])));
            else
                assert_true(got == r->f[s]);
        } else {
            assert_int_equal(((const int64_t *)t->acc[0])[s], r->i[s]);
        }
    }
}

enum { MODE_UPDATE, MODE_GATHER, MODE_ATOMIC, MODE_MERGE };

static void run_mode(int mode)
{
    static uint32_t perm[ROWS], slots[ROWS];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        make_inputs(seed);
        for (int i = 0; i < ROWS; i++)
            perm[i] = (uint32_t)i;
        for (int i = ROWS - 1; i > 0; i--) {
            const int j = (int)(rng() % (uint64_t)(i + 1));
            const uint32_t x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (size_t ti = 0; ti < 4; ti++)
            for (size_t oi = 0; oi < 4; oi++)
                for (int nulls = 0; nulls < 2; nulls++) {
                    grp_agg a = {ops[oi], types[ti], type_data(types[ti]),
                                 nulls ? in_valid : NULL, NULL};
                    dqo_column_stats ks = {0};
                    grp_input in = {DQO_TYPE_U32, NULL, ROWS, &ks, &a, 1, 1, 0, NULL, NULL};
                    agg_table t, u;
                    agg_flags f = {-1};
                    assert_int_equal(agg_table_init(&t, &in, SLOTS), DQO_OK);
                    ref r;
                    if (mode == MODE_GATHER) {
                        /* Chunks of the permuted row ids. */
                        for (uint32_t c = 0; c < ROWS; c += AGG_CHUNK) {
                            const uint32_t n =
                                ROWS - c < AGG_CHUNK ? ROWS - c : AGG_CHUNK;
                            for (uint32_t j = 0; j < n; j++)
                                slots[j] = in_slot[perm[c + j]];
                            agg_update_gather(&t, &in, slots, perm + c, n, &f);
                        }
                        naive(&a, perm, ROWS, &r);
                    } else if (mode == MODE_ATOMIC) {
                        /* Several threads on one table, one chunk each. */
#pragma omp parallel for num_threads(3) schedule(dynamic, 1)
                        for (uint32_t c = 0; c < ROWS; c += 100) {
                            agg_flags tf = {-1};
                            const uint32_t n = ROWS - c < 100 ? ROWS - c : 100;
                            agg_update_atomic(&t, &in, in_slot + c, c, n, &tf);
                        }
                        naive(&a, NULL, ROWS, &r);
                    } else if (mode == MODE_MERGE) {
                        /* Two halves in two tables, then merged; the
                         * second table's slots sit at an offset of 5. */
                        assert_int_equal(agg_table_init(&u, &in, SLOTS + 5),
                                         DQO_OK);
                        for (uint32_t j = 0; j < ROWS / 2; j++)
                            slots[j] = in_slot[ROWS / 2 + j] + 5;
                        agg_update(&t, &in, in_slot, 0, ROWS / 2, &f);
                        agg_update(&u, &in, slots, ROWS / 2, ROWS - ROWS / 2,
                                   &f);
                        agg_merge_range(&t, 0, &u, 5, SLOTS, &in, &f);
                        agg_table_free(&u, &in);
                        naive(&a, NULL, ROWS, &r);
                    } else {
                        for (uint32_t c = 0; c < ROWS; c += AGG_CHUNK) {
                            const uint32_t n =
                                ROWS - c < AGG_CHUNK ? ROWS - c : AGG_CHUNK;
                            agg_update(&t, &in, in_slot + c, c, n, &f);
                        }
                        naive(&a, NULL, ROWS, &r);
                    }
                    check_table(&t, &in, &r);
                    assert_int_equal(f.overflow_agg, -1);
                    agg_table_free(&t, &in);
                    assert_null(t.count);
                }
    }
}

static void test_update(void **state) { (void)state; run_mode(MODE_UPDATE); }
static void test_gather(void **state) { (void)state; run_mode(MODE_GATHER); }
static void test_atomic(void **state) { (void)state; run_mode(MODE_ATOMIC); }
static void test_merge(void **state) { (void)state; run_mode(MODE_MERGE); }

/* i64 SUM: INT64_MAX + 1 flags; a sum that goes over and comes back (so the
 * wrapped final value looks fine) still flags; the merge of two partial sums
 * that together overflow flags too. */
static void test_overflow(void **state)
{
    (void)state;
    int64_t v[4] = {INT64_MAX, 1, -5, 0};
    uint32_t s[4] = {0, 0, 0, 0};
    grp_agg aggs[2] = {{AGG_OP_COUNT, DQO_TYPE_I64, v, NULL, NULL},
                       {AGG_OP_SUM, DQO_TYPE_I64, v, NULL, NULL}};
    dqo_column_stats ks = {0};
    grp_input in = {DQO_TYPE_U32, NULL, 4, &ks, aggs, 2, 1, 0, NULL, NULL};
    for (int mode = 0; mode < 3; mode++) {
        agg_table t;
        agg_flags f = {-1};
        assert_int_equal(agg_table_init(&t, &in, 1), DQO_OK);
        if (mode == 0)
            agg_update(&t, &in, s, 0, 2, &f);
        else if (mode == 1)
            agg_update_gather(&t, &in, s, (const uint32_t[]){1, 0}, 2, &f);
        else
            agg_update_atomic(&t, &in, s, 0, 2, &f);
        assert_int_equal(f.overflow_agg, 1);
        agg_table_free(&t, &in);
    }
    /* Over and back: MAX, +1 (over), -5 (back under). */
    {
        agg_table t;
        agg_flags f = {-1};
        assert_int_equal(agg_table_init(&t, &in, 1), DQO_OK);
        agg_update(&t, &in, s, 0, 3, &f);
        assert_int_equal(f.overflow_agg, 1);
        agg_table_free(&t, &in);
    }
    /* No overflow: MAX alone, then -5. */
    {
        int64_t w[2] = {INT64_MAX, -5};
        grp_agg a = {AGG_OP_SUM, DQO_TYPE_I64, w, NULL, NULL};
        grp_input in1 = {DQO_TYPE_U32, NULL, 2, &ks, &a, 1, 1, 0, NULL, NULL};
        agg_table t;
        agg_flags f = {-1};
        assert_int_equal(agg_table_init(&t, &in1, 1), DQO_OK);
        agg_update(&t, &in1, s, 0, 2, &f);
        assert_int_equal(f.overflow_agg, -1);
        assert_int_equal(((int64_t *)t.acc[0])[0], INT64_MAX - 5);
        /* Merge: (MAX - 5) + (MAX - 5) overflows. */
        agg_table u;
        assert_int_equal(agg_table_init(&u, &in1, 1), DQO_OK);
        agg_update(&u, &in1, s, 0, 2, &f);
        agg_merge_range(&t, 0, &u, 0, 1, &in1, &f);
        assert_int_equal(f.overflow_agg, 0);
        agg_table_free(&t, &in1);
        agg_table_free(&u, &in1);
    }
    /* NULL rows are skipped: the overflowing row is NULL. */
    {
        uint8_t valid[2] = {1, 0};
        grp_agg a = {AGG_OP_SUM, DQO_TYPE_I64, v, valid, NULL};
        grp_input in1 = {DQO_TYPE_U32, NULL, 2, &ks, &a, 1, 1, 0, NULL, NULL};
        agg_table t;
        agg_flags f = {-1};
        assert_int_equal(agg_table_init(&t, &in1, 1), DQO_OK);
        agg_update(&t, &in1, s, 0, 2, &f);
        assert_int_equal(f.overflow_agg, -1);
        assert_int_equal(((int64_t *)t.acc[0])[0], INT64_MAX);
        agg_table_free(&t, &in1);
    }
}

static void test_f64_minmax_negative(void **state)
{
    (void)state;
    double v[5] = {-3.5, -0.25, -100.0, -7.0, -1e300};
    uint32_t s[5] = {0, 0, 0, 1, 1};
    grp_agg aggs[2] = {{AGG_OP_MIN, DQO_TYPE_F64, v, NULL, NULL},
                       {AGG_OP_MAX, DQO_TYPE_F64, v, NULL, NULL}};
    dqo_column_stats ks = {0};
    grp_input in = {DQO_TYPE_U32, NULL, 5, &ks, aggs, 2, 1, 0, NULL, NULL};
    for (int mode = 0; mode < 2; mode++) {
        agg_table t;
        assert_int_equal(agg_table_init(&t, &in, 3), DQO_OK);
        if (mode == 0)
            agg_update(&t, &in, s, 0, 5, NULL);
        else
            agg_update_atomic(&t, &in, s, 0, 5, NULL);
        const double *mn = t.acc[0], *mx = t.acc[1];
        assert_true(mn[0] == -100.0 && mx[0] == -0.25);
        assert_true(mn[1] == -1e300 && mx[1] == -7.0);
        /* An untouched slot keeps the identities. */
        assert_true(isinf(mn[2]) && mn[2] > 0 && isinf(mx[2]) && mx[2] < 0);
        agg_table_free(&t, &in);
    }
}

static void test_output(void **state)
{
    (void)state;
    make_inputs(7);
    grp_agg aggs[2] = {{AGG_OP_SUM, DQO_TYPE_I32, in_i32, NULL, NULL},
                       {AGG_OP_MAX, DQO_TYPE_F64, in_f64, NULL, NULL}};
    dqo_column_stats ks = {0};
    grp_input in = {DQO_TYPE_U32, NULL, ROWS, &ks, aggs, 2, 1, 0, NULL, NULL};
    agg_table t;
    assert_int_equal(agg_table_init(&t, &in, SLOTS), DQO_OK);
    agg_update(&t, &in, in_slot, 0, AGG_CHUNK, NULL);
    grp_output out;
    memset(&out, 0, sizeof out);
    grp_output_free(&out, 2); /* safe on a zeroed struct */
    assert_int_equal(grp_output_alloc(&out, &in, 10), DQO_OK);
    agg_emit_range(&out, 3, &t, 20, 7, &in);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(out.count[3 + i], t.count[20 + i]);
        assert_int_equal(((int64_t *)out.acc[0])[3 + i],
                         ((int64_t *)t.acc[0])[20 + i]);
        assert_true(((double *)out.acc[1])[3 + i] ==
                    ((double *)t.acc[1])[20 + i]);
    }
    grp_output_free(&out, 2);
    assert_null(out.keys);
    agg_table_free(&t, &in);
    /* Failure paths leave nothing allocated. */
    const long before = mem_outstanding();
    for (long k = 1; k <= 4; k++) {
        mem_fail_after(k);
        agg_table tt;
        if (agg_table_init(&tt, &in, 16) == DQO_OK)
            agg_table_free(&tt, &in);
        mem_fail_after(k);
        grp_output o;
        memset(&o, 0, sizeof o);
        if (grp_output_alloc(&o, &in, 16) == DQO_OK)
            grp_output_free(&o, 2);
        mem_fail_after(0);
    }
    assert_int_equal(mem_outstanding(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_f64_minmax_negative),
        cmocka_unit_test(test_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
