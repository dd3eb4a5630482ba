/*
 * test_group_kernels.c - every grouping kernel (hg, sphg, og, sog, bsg,
 * radix), called through cpu_backend.group with the granule of
 * plan_force_group, against the naive reference of kernel_ref.h.
 *
 * Each case builds one key column per key type (u32, i32, i64) and runs 32
 * aggregates at once: COUNT, SUM, MIN and MAX over u32, i32, i64 and f64
 * value columns, each with and without NULL validity bytes. Every enabled
 * kernel runs with 1, 2, 3 and 8 threads. Cases: seeded random keys (few
 * groups, many groups, the whole type domain), sorted, reverse-sorted,
 * clustered but unsorted, clustered with keys repeated in later runs, all
 * keys equal, one row, no rows, keys at the type's minimum and maximum, one
 * group per row, a key range exactly at the direct-array threshold
 * (plan_settings_default's direct_max_range) and one past it, a distinct
 * estimate 100x too small and 20x too large; then i64 SUM overflow (within a
 * thread and only in the merge of threads), failed allocations (every kernel
 * must return DQO_ENOMEM without leaking), the generator (same data for any
 * thread count) and the radix sort helper on its own.
 *
 * Checks beyond the values: no leak (mem_outstanding), sog and bsg emit keys
 * ascending, og emits groups in the order of first appearance, the overflow
 * flag matches the reference.
 *
 * sphg and wide ranges: the static perfect hash needs an array over the key
 * range, so sphg may fail exactly when max - min + 1 exceeds
 * direct_max_range (for example INT64_MIN..INT64_MAX): by refusing
 * (DQO_EUNSUPPORTED or DQO_EINVAL) or by failing to allocate the array
 * (DQO_ENOMEM, a forced kernel may try). When it runs anyway its result must
 * be right. At the threshold it must run. No other kernel may fail.
 *
 * Environment:
 *   DQO_TEST_SEED=N          the seed of the random data (printed on failure)
 *   DQO_TEST_KERNELS=hg,og   run only these kernels (names as on the CLI)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cpu/cpu_int.h"
#include "engine/alloc.h"
#include "kernel_ref.h"
#include "planner/planner.h"
#include "tests/test_util.h"

/* A forced sphg over a range far past its threshold may try to allocate
 * tens of GiB and get DQO_ENOMEM (allowed, see above); under AddressSanitizer
 * that allocation must return NULL rather than abort the test. Read by ASan
 * only; unused otherwise. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static uint64_t test_seed = 20240601;
static bool kernel_on[GRP_KERNEL_COUNT_];
static const char *const kernel_names[GRP_KERNEL_COUNT_] = {
    "hg", "sphg", "og", "sog", "bsg", "radix"};
static const int thread_counts[] = {1, 2, 3, 8};
static const dqo_type key_types[] = {DQO_TYPE_U32, DQO_TYPE_I32,
                                     DQO_TYPE_I64};

static const char *type_name(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return "u32";
    case DQO_TYPE_I32: return "i32";
    case DQO_TYPE_I64: return "i64";
    case DQO_TYPE_F64: return "f64";
    default: return "?";
    }
}

/* ------------------------------------------------------------ random data */

/* A base key per type, so that keys are large (u32 above INT32_MAX) or
 * negative (signed types) rather than small and positive. */
static int64_t type_base(dqo_type t)
{
    switch (t) {
    case DQO_TYPE_U32: return INT64_C(3000000000);
    case DQO_TYPE_I32: return -500;
    default: return -(INT64_C(1) << 40);
    }
}

/* The value columns and the 32 aggregates over them. */
typedef struct values {
    uint32_t *u32;
    int32_t *i32;
    int64_t *i64;
    double *f64;
    uint8_t *valid;
} values;

static void values_make(values *v, uint64_t n, rng *r)
{
    const size_t m = n + 1;
    v->u32 = malloc(m * sizeof *v->u32);
    v->i32 = malloc(m * sizeof *v->i32);
    v->i64 = malloc(m * sizeof *v->i64);
    v->f64 = malloc(m * sizeof *v->f64);
    v->valid = malloc(m);
    for (uint64_t i = 0; i < n; i++) {
        v->u32[i] = (uint32_t)rng_next(r);
        v->i32[i] = (int32_t)rng_next(r);
        v->i64[i] = rng_in(r, -(INT64_C(1) << 40), INT64_C(1) << 40);
        v->f64[i] = (double)rng_in(r, -1000000, 1000000) / 1000.0;
        v->valid[i] = rng_next(r) % 5 != 0;
    }
}

static void values_free(values *v)
{
    free(v->u32);
    free(v->i32);
    free(v->i64);
    free(v->f64);
    free(v->valid);
}

static int aggs_all(const values *v, grp_agg *aggs)
{
    int n = 0;
    const agg_op ops[] = {AGG_OP_COUNT, AGG_OP_SUM, AGG_OP_MIN, AGG_OP_MAX};
    for (int o = 0; o < 4; o++)
        for (int t = 0; t < 4; t++)
            for (int nul = 0; nul < 2; nul++) {
                const void *data = t == 0   ? (const void *)v->u32
                                   : t == 1 ? (const void *)v->i32
                                   : t == 2 ? (const void *)v->i64
                                            : (const void *)v->f64;
                aggs[n++] = (grp_agg){
                    .op = ops[o],
                    .type = t == 0   ? DQO_TYPE_U32
                            : t == 1 ? DQO_TYPE_I32
                            : t == 2 ? DQO_TYPE_I64
                                     : DQO_TYPE_F64,
                    .data = data,
                    .valid = nul ? v->valid : NULL};
            }
    return n;
}

/* Two aggregates, for cases whose tables are large (the threshold). */
static int aggs_few(const values *v, grp_agg *aggs)
{
    aggs[0] = (grp_agg){AGG_OP_SUM, DQO_TYPE_I32, v->i32, NULL, NULL};
    aggs[1] = (grp_agg){AGG_OP_MIN, DQO_TYPE_F64, v->f64, v->valid, NULL};
    return 2;
}

/* ---------------------------------------------------------- one test case */

typedef struct test_case {
    const char *name;
    const int64_t *keys; /* n keys within the key type's domain */
    uint64_t n;
    dqo_type type;
    bool few_aggs;
    int max_threads; /* 0: every count of thread_counts */
    double distinct_scale; /* 0 or 1: exact; else the estimate is off */
} test_case;

static int failures;

static void report(const test_case *c, int kernel, int threads,
                   const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (failures < 30)
        print_error("FAIL case %s, key %s, kernel %s, threads %d (seed %llu,"
                    " DQO_TEST_SEED to repeat): %s\n",
                    c->name, type_name(c->type), kernel_names[kernel], threads,
                    (unsigned long long)test_seed, msg);
    failures++;
}

static void *typed_keys(const int64_t *k, uint64_t n, dqo_type t)
{
    const size_t m = n + 1;
    switch (t) {
    case DQO_TYPE_U32: {
        uint32_t *d = malloc(m * sizeof *d);
        for (uint64_t i = 0; i < n; i++)
            d[i] = (uint32_t)k[i];
        return d;
    }
    case DQO_TYPE_I32: {
        int32_t *d = malloc(m * sizeof *d);
        for (uint64_t i = 0; i < n; i++)
            d[i] = (int32_t)k[i];
        return d;
    }
    default: {
        int64_t *d = malloc(m * sizeof *d);
        memcpy(d, k, n * sizeof *d);
        return d;
    }
    }
}

static uint64_t ref_find(const ref_output *r, int64_t key)
{
    uint64_t lo = 0, hi = r->groups;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (r->keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Runs one kernel with one thread count and checks it; false on failure. */
static void check_kernel(const test_case *c, grp_input *in,
                         const ref_output *r, int kernel, int threads,
                         uint64_t direct_max)
{
    plan_choice pc;
    plan_force_group(kernel, &pc);
    in->threads = threads;
    grp_output out;
    memset(&out, 0, sizeof out);
    const long live = mem_outstanding();
    dqo_status st = cpu_backend.group(in, &pc.g, &out);
    const uint64_t range =
        in->rows == 0 ? 0
                      : (uint64_t)in->key_stats->max -
                            (uint64_t)in->key_stats->min + 1;
    if (st != DQO_OK) {
        bool allowed = kernel == GRP_KERNEL_DIRECT &&
                       (range == 0 || range > direct_max) &&
                       (st == DQO_EUNSUPPORTED || st == DQO_EINVAL ||
                        st == DQO_ENOMEM);
        if (!allowed)
            report(c, kernel, threads, "status %s", dqo_status_name(st));
        if (mem_outstanding() != live)
            report(c, kernel, threads, "failed call leaked %ld allocations",
                   mem_outstanding() - live);
        return;
    }
    char msg[256];
    if (!ref_compare(in, r, &out, msg, sizeof msg))
        report(c, kernel, threads, "%s", msg);
    else if (kernel == GRP_KERNEL_SORT || kernel == GRP_KERNEL_BSEARCH) {
        for (uint64_t i = 1; i < out.groups; i++)
            if (out.keys[i - 1] >= out.keys[i]) {
                report(c, kernel, threads, "keys not ascending at %llu",
                       (unsigned long long)i);
                break;
            }
    } else if (kernel == GRP_KERNEL_ORDER) {
        for (uint64_t i = 1; i < out.groups; i++) {
            uint64_t a = r->first_row[ref_find(r, out.keys[i - 1])];
            uint64_t b = r->first_row[ref_find(r, out.keys[i])];
            if (a >= b) {
                report(c, kernel, threads,
                       "group %llu not in order of first appearance",
                       (unsigned long long)i);
                break;
            }
        }
    }
    bool ovf = false;
    for (int a = 0; a < in->naggs; a++)
        ovf = ovf || r->overflow[a];
    if (out.overflow != ovf)
        report(c, kernel, threads, "overflow flag %d, expected %d",
               (int)out.overflow, (int)ovf);
    else if (ovf && (out.overflow_agg < 0 || out.overflow_agg >= in->naggs ||
                     !r->overflow[out.overflow_agg]))
        report(c, kernel, threads, "overflow_agg %d names no overflowed SUM",
               out.overflow_agg);
    grp_output_free(&out, in->naggs);
    if (mem_outstanding() != live)
        report(c, kernel, threads, "leaked %ld allocations",
               mem_outstanding() - live);
}

static void run_case(const test_case *c, rng *r)
{
    plan_settings ps;
    plan_settings_default(&ps);
    values v;
    values_make(&v, c->n, r);
    grp_agg aggs[GRP_MAX_AGGS];
    void *keys = typed_keys(c->keys, c->n, c->type);
    dqo_column_stats ks;
    ref_key_stats(c->type, keys, c->n, &ks);
    /* The distinct count is only an estimate: kernels must stay exact when
     * it is far off. */
    if (c->distinct_scale > 0)
        ks.distinct = (uint64_t)((double)ks.distinct * c->distinct_scale);
    grp_input in = {.key_type = c->type,
                    .keys = keys,
                    .rows = c->n,
                    .key_stats = &ks,
                    .aggs = aggs,
                    .naggs = c->few_aggs ? aggs_few(&v, aggs)
                                         : aggs_all(&v, aggs),
                    .threads = 1};
    ref_output ref;
    ref_compute(&in, &ref);
    for (int k = 0; k < GRP_KERNEL_COUNT_; k++) {
        if (!kernel_on[k])
            continue;
        for (size_t t = 0; t < sizeof thread_counts / sizeof *thread_counts;
             t++) {
            if (c->max_threads > 0 && thread_counts[t] > c->max_threads)
                continue;
            check_kernel(c, &in, &ref, k, thread_counts[t],
                         ps.direct_max_range);
        }
    }
    ref_free(&ref);
    /* Keys only (COUNT(*) alone, or DISTINCT): kernels may skip row ids and
     * accumulators then, a path of its own. */
    in.naggs = 0;
    ref_compute(&in, &ref);
    for (int k = 0; k < GRP_KERNEL_COUNT_; k++)
        for (int t = 1; kernel_on[k] && t <= 3; t += 2)
            if (c->max_threads == 0 || t <= c->max_threads)
                check_kernel(c, &in, &ref, k, t, ps.direct_max_range);
    ref_free(&ref);
    /* The benchmark's shape, COUNT(*) plus one SUM over a 32-bit column
     * without NULLs, which kernels run through fused fast paths. */
    for (int vt = 0; vt < 2; vt++) {
        aggs[0] = vt == 0 ? (grp_agg){AGG_OP_SUM, DQO_TYPE_I32, v.i32, NULL, NULL}
                          : (grp_agg){AGG_OP_SUM, DQO_TYPE_U32, v.u32, NULL, NULL};
        in.naggs = 1;
        ref_compute(&in, &ref);
        for (int k = 0; k < GRP_KERNEL_COUNT_; k++)
            for (int t = 1; kernel_on[k] && t <= 3; t += 2)
                if (c->max_threads == 0 || t <= c->max_threads)
                    check_kernel(c, &in, &ref, k, t, ps.direct_max_range);
        ref_free(&ref);
    }
    free(keys);
    values_free(&v);
}

/* Runs a key generator for every key type. */
typedef uint64_t (*keygen)(int64_t *k, dqo_type t, rng *r);

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void run_all_types_scaled(const char *name, keygen gen, uint64_t cap,
                                 bool few_aggs, int max_threads,
                                 double distinct_scale)
{
    rng r = {test_seed ^ (uint64_t)(uintptr_t)name[0] * 0x100000001b3ULL};
    int64_t *k = malloc((cap + 1) * sizeof *k);
    failures = 0;
    for (size_t t = 0; t < sizeof key_types / sizeof *key_types; t++) {
        uint64_t n = gen(k, key_types[t], &r);
        test_case c = {name,     k,           n,           key_types[t],
                       few_aggs, max_threads, distinct_scale};
        run_case(&c, &r);
    }
    free(k);
    if (failures > 0)
        fail_msg("%d failures in case %s (seed %llu)", failures, name,
                 (unsigned long long)test_seed);
}

static void run_all_types(const char *name, keygen gen, uint64_t cap,
                          bool few_aggs, int max_threads)
{
    run_all_types_scaled(name, gen, cap, few_aggs, max_threads, 0);
}

/* ---------------------------------------------------------------- the keys */

#define N_FEW 80000
#define N_MANY 40000

static uint64_t gen_random_few(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    for (uint64_t i = 0; i < N_FEW; i++)
        k[i] = b + rng_in(r, 0, 999);
    return N_FEW;
}

static uint64_t gen_random_many(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    for (uint64_t i = 0; i < N_MANY; i++)
        k[i] = b + rng_in(r, 0, 24999);
    return N_MANY;
}

/* A dense-ish range whose direct table exceeds L2: the prefetching paths. */
static uint64_t gen_random_large_range(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    for (uint64_t i = 0; i < N_MANY; i++)
        k[i] = b + rng_in(r, 0, 399999);
    return N_MANY;
}

static uint64_t gen_random_wide(int64_t *k, dqo_type t, rng *r)
{
    int64_t lo, hi;
    type_domain(t, &lo, &hi);
    for (uint64_t i = 0; i < 30000; i++)
        k[i] = rng_in(r, lo, hi);
    return 30000;
}

static uint64_t gen_sorted_few(int64_t *k, dqo_type t, rng *r)
{
    uint64_t n = gen_random_few(k, t, r);
    qsort(k, n, sizeof *k, cmp_i64);
    return n;
}

static uint64_t gen_sorted_many(int64_t *k, dqo_type t, rng *r)
{
    uint64_t n = gen_random_many(k, t, r);
    qsort(k, n, sizeof *k, cmp_i64);
    return n;
}

static uint64_t gen_reverse(int64_t *k, dqo_type t, rng *r)
{
    uint64_t n = gen_sorted_many(k, t, r);
    for (uint64_t i = 0; i < n / 2; i++) {
        int64_t x = k[i];
        k[i] = k[n - 1 - i];
        k[n - 1 - i] = x;
    }
    return n;
}

/* 300 groups with distinct sparse keys, each one run of 1..300 rows, the
 * groups in random order: clustered, unsorted. */
static uint64_t gen_clustered(int64_t *k, dqo_type t, rng *r)
{
    int64_t lo, hi;
    type_domain(t, &lo, &hi);
    uint64_t n = 0;
    for (int g = 0; g < 300; g++) {
        /* Distinct: the group number in the low bits of a random key. */
        int64_t key = (int64_t)(((uint64_t)rng_in(r, lo, hi) & ~UINT64_C(511)) |
                                (uint64_t)g);
        if (t == DQO_TYPE_I32)
            key = (int32_t)key;
        else if (t == DQO_TYPE_U32)
            key = (uint32_t)key;
        int64_t len = rng_in(r, 1, 300);
        for (int64_t j = 0; j < len; j++)
            k[n++] = key;
    }
    return n;
}

/* Runs of 1..40 rows whose keys come from 300 values: keys come back in
 * later runs (OG must merge them). */
static uint64_t gen_repeated_runs(int64_t *k, dqo_type t, rng *r)
{
    const int64_t b = type_base(t);
    uint64_t n = 0;
    while (n < N_MANY) {
        int64_t key = b + rng_in(r, 0, 299) * 7;
        int64_t len = rng_in(r, 1, 40);
        for (int64_t j = 0; j < len && n < N_MANY; j++)
            k[n++] = key;
    }
    return n;
}

static uint64_t gen_const(int64_t *k, dqo_type t, rng *r)
{
    (void)r;
    for (uint64_t i = 0; i < 12000; i++)
        k[i] = type_base(t) + 5;
    return 12000;
}

static uint64_t gen_one_row(int64_t *k, dqo_type t, rng *r)
{
    (void)r;
    k[0] = type_base(t);
    return 1;
}

static uint64_t gen_empty(int64_t *k, dqo_type t, rng *r)
{
    (void)k;
    (void)t;
    (void)r;
    return 0;
}

static uint64_t gen_minmax(int64_t *k, dqo_type t, rng *r)
{
    int64_t lo, hi;
    type_domain(t, &lo, &hi);
    const int64_t pick[] = {lo, lo + 1, lo / 2 + hi / 2, hi - 1, hi};
    for (uint64_t i = 0; i < 20000; i++)
        k[i] = pick[rng_in(r, 0, 4)];
    k[0] = lo;
    k[1] = hi;
    return 20000;
}

/* One group per row: a shuffled arithmetic sequence. */
static uint64_t gen_distinct(int64_t *k, dqo_type t, rng *r)
{
    const uint64_t n = 20000;
    for (uint64_t i = 0; i < n; i++)
        k[i] = type_base(t) + (int64_t)i * 3;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = (uint64_t)rng_in(r, 0, (int64_t)i);
        int64_t x = k[i];
        k[i] = k[j];
        k[j] = x;
    }
    return n;
}

static uint64_t threshold_range(void)
{
    plan_settings ps;
    plan_settings_default(&ps);
    return ps.direct_max_range;
}

/* max - min + 1 == direct_max_range (+ extra): both ends present. */
static uint64_t gen_range(int64_t *k, dqo_type t, rng *r, uint64_t extra)
{
    const int64_t span = (int64_t)(threshold_range() + extra);
    const int64_t b = t == DQO_TYPE_U32 ? 7 : -span / 2;
    const uint64_t n = 20000;
    for (uint64_t i = 0; i < n; i++)
        k[i] = b + rng_in(r, 0, span - 1);
    k[rng_in(r, 0, n - 1)] = b;
    k[rng_in(r, 0, n - 1)] = b + span - 1;
    return n;
}

static uint64_t gen_threshold(int64_t *k, dqo_type t, rng *r)
{
    return gen_range(k, t, r, 0);
}

static uint64_t gen_threshold_plus(int64_t *k, dqo_type t, rng *r)
{
    return gen_range(k, t, r, 1);
}

/* ------------------------------------------------------------------ tests */

static void test_random_few(void **s) { (void)s; run_all_types("random_few", gen_random_few, N_FEW, false, 0); }
static void test_random_many(void **s) { (void)s; run_all_types("random_many", gen_random_many, N_MANY, false, 0); }
static void test_random_large_range(void **s) { (void)s; run_all_types("random_large_range", gen_random_large_range, N_MANY, false, 0); }
static void test_random_wide(void **s) { (void)s; run_all_types("random_wide", gen_random_wide, 30000, false, 0); }
static void test_sorted_few(void **s) { (void)s; run_all_types("sorted_few", gen_sorted_few, N_FEW, false, 0); }
static void test_sorted_many(void **s) { (void)s; run_all_types("sorted_many", gen_sorted_many, N_MANY, false, 0); }
static void test_reverse(void **s) { (void)s; run_all_types("reverse_sorted", gen_reverse, N_MANY, false, 0); }
static void test_clustered(void **s) { (void)s; run_all_types("clustered", gen_clustered, 300 * 300, false, 0); }
static void test_repeated_runs(void **s) { (void)s; run_all_types("repeated_runs", gen_repeated_runs, N_MANY, false, 0); }
static void test_const(void **s) { (void)s; run_all_types("all_equal", gen_const, 12000, false, 0); }
static void test_one_row(void **s) { (void)s; run_all_types("one_row", gen_one_row, 1, false, 0); }
static void test_empty(void **s) { (void)s; run_all_types("empty", gen_empty, 0, false, 0); }
static void test_minmax(void **s) { (void)s; run_all_types("type_min_max", gen_minmax, 20000, false, 0); }
static void test_distinct(void **s) { (void)s; run_all_types("one_group_per_row", gen_distinct, 20000, false, 0); }
/* Tables over 2^24 slots: two aggregates and at most two threads keep the
 * direct kernel's arrays to a few hundred MiB. */
static void test_threshold(void **s) { (void)s; run_all_types("range_at_threshold", gen_threshold, 20000, true, 2); }
static void test_threshold_plus(void **s) { (void)s; run_all_types("range_past_threshold", gen_threshold_plus, 20000, true, 1); }

/* A distinct estimate 100 times too small, then 20 times too large. */
static void test_estimate_off(void **s)
{
    (void)s;
    run_all_types_scaled("distinct_underestimated", gen_random_many, N_MANY,
                         true, 0, 0.01);
    run_all_types_scaled("distinct_overestimated", gen_random_few, N_FEW,
                         true, 0, 20.0);
}

/* i64 SUM overflow: 8000 rows of one group whose values sum to twice
 * INT64_MAX; with 8 threads each thread's partial sum fits and only the
 * merge overflows. A second group stays small. */
static void test_overflow(void **s)
{
    (void)s;
    const uint64_t n = 8000;
    int64_t *keys = malloc(n * sizeof *keys), *vals = malloc(n * sizeof *vals);
    for (uint64_t i = 0; i < n; i++) {
        keys[i] = i % 10 == 9 ? -3 : 7;
        vals[i] = i % 10 == 9 ? 1 : INT64_MAX / 3600;
    }
    for (int sign = 0; sign < 2; sign++) {
        failures = 0;
        if (sign == 1)
            for (uint64_t i = 0; i < n; i++)
                vals[i] = -vals[i];
        dqo_column_stats ks;
        ref_key_stats(DQO_TYPE_I64, keys, n, &ks);
        grp_agg aggs[2] = {{AGG_OP_COUNT, DQO_TYPE_I64, vals, NULL, NULL},
                           {AGG_OP_SUM, DQO_TYPE_I64, vals, NULL, NULL}};
        grp_input in = {DQO_TYPE_I64, keys, n, &ks, aggs, 2, 1, 0, NULL, NULL};
        ref_output ref;
        ref_compute(&in, &ref);
        assert_true(ref.overflow[1]);
        test_case c = {sign ? "sum_overflow_negative" : "sum_overflow", keys,
                       n, DQO_TYPE_I64, true, 0, 0};
        for (int k = 0; k < GRP_KERNEL_COUNT_; k++)
            for (size_t t = 0; kernel_on[k] && t < 4; t++)
                check_kernel(&c, &in, &ref, k, thread_counts[t], UINT64_MAX);
        ref_free(&ref);
        if (failures > 0)
            fail_msg("%d failures in case %s", failures, c.name);
    }
    free(keys);
    free(vals);
}

/* Every allocation of every kernel fails once in turn: the kernel must
 * return DQO_ENOMEM with nothing leaked, until it runs through. */
static void test_alloc_failures(void **s)
{
    (void)s;
    rng r = {test_seed ^ 0xa110c};
    const uint64_t n = 20000;
    int64_t *k = malloc(n * sizeof *k);
    for (uint64_t i = 0; i < n; i++)
        k[i] = rng_in(&r, -200, 200);
    values v;
    values_make(&v, n, &r);
    grp_agg aggs[3] = {{AGG_OP_SUM, DQO_TYPE_I64, v.i64, v.valid, NULL},
                       {AGG_OP_MAX, DQO_TYPE_F64, v.f64, NULL, NULL},
                       {AGG_OP_COUNT, DQO_TYPE_U32, v.u32, v.valid, NULL}};
    dqo_column_stats ks;
    ref_key_stats(DQO_TYPE_I64, k, n, &ks);
    grp_input in = {DQO_TYPE_I64, k, n, &ks, aggs, 3, 2, 0, NULL, NULL};
    ref_output ref;
    ref_compute(&in, &ref);
    test_case c = {"alloc_failures", k, n, DQO_TYPE_I64, true, 0, 0};
    failures = 0;
    for (int kern = 0; kern < GRP_KERNEL_COUNT_; kern++) {
        if (!kernel_on[kern])
            continue;
        plan_choice pc;
        plan_force_group(kern, &pc);
        for (long fail_at = 1; fail_at < 1000; fail_at++) {
            grp_output out;
            memset(&out, 0, sizeof out);
            const long live = mem_outstanding();
            mem_fail_after(fail_at);
            dqo_status st = cpu_backend.group(&in, &pc.g, &out);
            mem_fail_after(0);
            if (st == DQO_OK) {
                char msg[256];
                if (!ref_compare(&in, &ref, &out, msg, sizeof msg))
                    report(&c, kern, 2, "%s", msg);
                grp_output_free(&out, in.naggs);
                break;
            }
            if (st != DQO_ENOMEM)
                report(&c, kern, 2, "allocation %ld failed: status %s",
                       fail_at, dqo_status_name(st));
            if (mem_outstanding() != live)
                report(&c, kern, 2, "allocation %ld failed: %ld leaked",
                       fail_at, mem_outstanding() - live);
            if (st != DQO_ENOMEM)
                break;
        }
    }
    ref_free(&ref);
    values_free(&v);
    free(k);
    if (failures > 0)
        fail_msg("%d failures in case alloc_failures", failures);
}

/* The generator: deterministic for a seed whatever the thread count, keys
 * within the promised domain, sorted stays sorted, values in range. */
static void test_gen(void **s)
{
    (void)s;
    const uint64_t n = 100000;
    uint32_t *k1 = malloc(n * 4), *k2 = malloc(n * 4);
    int32_t *v1 = malloc(n * 4), *v2 = malloc(n * 4);
    const uint64_t groups[] = {1, 7, 1000, 100000, UINT64_C(1) << 32};
    for (int sorted = 0; sorted < 2; sorted++)
        for (int sparse = 0; sparse < 2; sparse++)
            for (size_t gi = 0; gi < 5; gi++) {
                const uint64_t g = groups[gi];
                assert_int_equal(cpu_backend.gen_grouping(k1, v1, n, g, sorted,
                                                          sparse, 99, 1),
                                 DQO_OK);
                assert_int_equal(cpu_backend.gen_grouping(k2, v2, n, g, sorted,
                                                          sparse, 99, 3),
                                 DQO_OK);
                assert_memory_equal(k1, k2, n * 4);
                assert_memory_equal(v1, v2, n * 4);
                for (uint64_t i = 0; i < n; i++) {
                    assert_true(v1[i] >= -1000 && v1[i] <= 1000);
                    if (!sparse)
                        assert_true(k1[i] < g);
                    if (sorted && i > 0)
                        assert_true(k1[i - 1] <= k1[i]);
                }
                if (sorted && !sparse && g <= n) {
                    assert_int_equal(k1[0], 0);
                    assert_int_equal(k1[n - 1], g - 1);
                }
            }
    /* Different seeds differ. */
    assert_int_equal(cpu_backend.gen_grouping(k2, v2, n, 1000, 0, 1, 100, 2),
                     DQO_OK);
    assert_true(memcmp(k1, k2, n * 4) != 0 || memcmp(v1, v2, n * 4) != 0);
    assert_int_equal(cpu_backend.gen_grouping(k1, v1, n, 0, 0, 0, 1, 1),
                     DQO_EINVAL);
    assert_int_equal(cpu_backend.gen_grouping(k1, v1, n,
                                              (UINT64_C(1) << 32) + 1, 0, 0,
                                              1, 1),
                     DQO_EINVAL);
    assert_int_equal(cpu_backend.gen_grouping(NULL, v1, n, 10, 0, 0, 1, 1),
                     DQO_EINVAL);
    assert_int_equal(cpu_backend.gen_grouping(NULL, NULL, 0, 10, 0, 0, 1, 1),
                     DQO_OK);
    free(k1);
    free(k2);
    free(v1);
    free(v2);
}

/* The radix sort helper on its own: every bit width, stability. */
static void test_radix_sort(void **s)
{
    (void)s;
    rng r = {test_seed ^ 0x50f7};
    const uint64_t n = 50000;
    uint64_t *a = malloc(n * 8), *tmp = malloc(n * 8), *ref = malloc(n * 8);
    const unsigned widths[] = {1, 8, 11, 12, 22, 33, 64};
    for (size_t w = 0; w < 7; w++) {
        for (int threads = 1; threads <= 8; threads *= 2) {
            const unsigned bits = widths[w];
            const unsigned lo = bits <= 32 ? 20 : 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t key = rng_next(&r);
                if (bits < 64)
                    key &= (UINT64_C(1) << bits) - 1;
                /* Row ids below `lo` show whether the sort is stable. */
                a[i] = lo > 0 ? key << lo | i : key;
                ref[i] = a[i];
            }
            uint64_t *out = NULL;
            assert_int_equal(
                cpu_radix_sort_u64(a, tmp, n, lo, bits, threads, &out),
                DQO_OK);
            qsort(ref, n, 8, cmp_i64); /* ties impossible: row ids differ */
            /* cmp_i64 orders as signed: fix up for the full 64-bit case. */
            if (bits == 64) {
                uint64_t split = 0;
                while (split < n && (int64_t)ref[split] < 0)
                    split++;
                uint64_t *t2 = malloc(n * 8);
                memcpy(t2, ref + split, (n - split) * 8);
                memcpy(t2 + (n - split), ref, split * 8);
                memcpy(ref, t2, n * 8);
                free(t2);
            }
            assert_memory_equal(out, ref, n * 8);
        }
    }
    free(a);
    free(tmp);
    free(ref);
}

static int setup(void **s)
{
    (void)s;
    const char *env = getenv("DQO_TEST_SEED");
    if (env != NULL && *env != '\0')
        test_seed = strtoull(env, NULL, 10);
    const char *ks = getenv("DQO_TEST_KERNELS");
    for (int k = 0; k < GRP_KERNEL_COUNT_; k++)
        kernel_on[k] = ks == NULL || *ks == '\0';
    while (ks != NULL && *ks != '\0') {
        size_t len = strcspn(ks, ",");
        for (int k = 0; k < GRP_KERNEL_COUNT_; k++)
            if (strlen(kernel_names[k]) == len &&
                strncmp(ks, kernel_names[k], len) == 0)
                kernel_on[k] = true;
        ks += len;
        if (*ks == ',')
            ks++;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gen),
        cmocka_unit_test(test_radix_sort),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_one_row),
        cmocka_unit_test(test_const),
        cmocka_unit_test(test_minmax),
        cmocka_unit_test(test_distinct),
        cmocka_unit_test(test_sorted_few),
        cmocka_unit_test(test_sorted_many),
        cmocka_unit_test(test_reverse),
        cmocka_unit_test(test_clustered),
        cmocka_unit_test(test_repeated_runs),
        cmocka_unit_test(test_random_few),
        cmocka_unit_test(test_random_many),
        cmocka_unit_test(test_random_large_range),
        cmocka_unit_test(test_random_wide),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_threshold_plus),
        cmocka_unit_test(test_estimate_off),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
