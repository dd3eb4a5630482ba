/*
 * test_api.c - the public C API end to end: handles and errors, tables
 * (borrowed, copied, strings, binary directories), and grouping queries over
 * every key shape (one column of each type, several columns, NULL-able keys,
 * keys too wide to pack that need densifying and merging) against a naive
 * reference, with every aggregate, through every kernel. Also overflow and
 * the allocation-failure paths (no leaks, every failure an error).
 *
 * The random seed is printed on failure; DQO_TEST_SEED overrides it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dqo.h"
#include "engine/alloc.h"
#include "tests/test_util.h"

static uint64_t seed = 12345;
static rng rng_g;

static uint64_t rnd(void) { return rng_next(&rng_g); }

/* ---------------------------------------------------------- status, handles */

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(dqo_status_name(DQO_OK), "DQO_OK");
    assert_string_equal(dqo_status_name(DQO_ENOMEM), "DQO_ENOMEM");
    assert_string_equal(dqo_status_str(DQO_ENOMEM), "out of memory");
    assert_string_equal(dqo_status_name((dqo_status)999), "DQO_UNKNOWN");
    assert_int_equal(dqo_version(), DQO_VERSION_NUMBER);
    assert_string_equal(dqo_version_string(), DQO_VERSION_STRING);
    dqo_type t;
    assert_int_equal(dqo_type_parse("I64", &t), DQO_OK);
    assert_int_equal(t, DQO_TYPE_I64);
    assert_int_not_equal(dqo_type_parse("int", &t), DQO_OK);
    const char *const *k = dqo_group_kernels();
    int n = 0;
    while (k[n] != NULL)
        n++;
    assert_int_equal(n, 6);
}

static void test_null_handles(void **state)
{
    (void)state;
    dqo_ctx_destroy(NULL);
    dqo_table_destroy(NULL);
    dqo_group_destroy(NULL);
    assert_int_equal(dqo_ctx_create(NULL), DQO_EINVAL);
    dqo_ctx *ctx;
    CHECK_OK(NULL, dqo_ctx_create(&ctx));
    dqo_table *t = (dqo_table *)&t;
    assert_int_equal(dqo_table_create(NULL, &t), DQO_EINVAL);
    assert_null(t);
    assert_int_equal(dqo_table_add_column(ctx, NULL, "a", DQO_TYPE_I32, "", NULL,
                                          0, DQO_COPY),
                     DQO_EINVAL);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "NULL table"));
    dqo_group *g = (dqo_group *)&g;
    assert_int_equal(dqo_group_create(ctx, NULL, &g), DQO_EINVAL);
    assert_null(g);
    assert_int_equal(dqo_group_add_key(NULL, "k"), DQO_EINVAL);
    assert_int_equal(dqo_group_run(NULL, NULL), DQO_EINVAL);
    assert_string_equal(dqo_group_explain(NULL), "");
    assert_int_equal(dqo_ctx_set_threads(ctx, -1), DQO_EINVAL);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "-1"));
    CHECK_OK(ctx, dqo_ctx_set_threads(ctx, 2));
    assert_int_equal(dqo_ctx_threads(ctx), 2);
    assert_string_equal(dqo_ctx_errmsg(ctx), "");
    dqo_ctx_destroy(ctx);
}

static void test_table_errors(void **state)
{
    (void)state;
    dqo_ctx *ctx;
    CHECK_OK(NULL, dqo_ctx_create(&ctx));
    dqo_table *t;
    CHECK_OK(ctx, dqo_table_create(ctx, &t));
    int32_t a[3] = {1, 2, 3};
    int64_t b[2] = {1, 2};
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "a", DQO_TYPE_I32, a, NULL, 3,
                                       DQO_BORROW));
    assert_int_equal(dqo_table_add_column(ctx, t, "b", DQO_TYPE_I64, b, NULL, 2,
                                          DQO_COPY),
                     DQO_ELENGTH);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "'b' has 2 rows"));
    assert_int_equal(dqo_table_add_column(ctx, t, "a", DQO_TYPE_I32, a, NULL, 3,
                                          DQO_COPY),
                     DQO_EINVAL);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "already"));
    assert_int_equal(dqo_table_add_column(ctx, t, "", DQO_TYPE_I32, a, NULL, 3,
                                          DQO_COPY),
                     DQO_EINVAL);
    assert_int_equal(dqo_table_add_column(ctx, t, "s", DQO_TYPE_STR, a, NULL, 3,
                                          DQO_COPY),
                     DQO_EINVAL);
    assert_int_equal(dqo_table_ncols(t), 1);
    const int32_t *pa;
    CHECK_OK(ctx, dqo_table_column_i32(ctx, t, 0, &pa));
    assert_ptr_equal(pa, a); /* borrowed: zero-copy */
    const int64_t *pb;
    assert_int_equal(dqo_table_column_i64(ctx, t, 0, &pb), DQO_ETYPE);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "type i32, not i64"));
    assert_int_equal(dqo_table_column_i64(ctx, t, 5, &pb), DQO_EINVAL);
    int col;
    assert_int_equal(dqo_table_column_index(ctx, t, "nope", &col),
                     DQO_ENOTFOUND);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "'nope'"));
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "'a'"));

    const char *strs[4] = {"x", NULL, "y", "x"};
    assert_int_equal(dqo_table_add_strings(ctx, t, "s", strs, 4), DQO_ELENGTH);
    CHECK_OK(ctx, dqo_table_add_strings(ctx, t, "s", strs, 3));
    const uint32_t *codes;
    CHECK_OK(ctx, dqo_table_column_codes(ctx, t, 1, &codes));
    assert_int_equal(codes[0], 0);
    assert_int_equal(codes[2], 1);
    assert_true(dqo_table_is_null(t, 1, 1));
    assert_string_equal(dqo_table_dict_string(t, 1, 1), "y");
    assert_int_equal(dqo_table_dict_size(t, 1), 2);
    char buf[32];
    CHECK_OK(ctx, dqo_table_format_cell(t, 1, 1, buf, sizeof buf));
    assert_string_equal(buf, "NULL");

    dqo_group *g;
    CHECK_OK(ctx, dqo_group_create(ctx, t, &g));
    assert_int_equal(dqo_group_add_key(g, "zz"), DQO_ENOTFOUND);
    assert_int_equal(dqo_group_add_agg(g, DQO_AGG_SUM, "s", NULL), DQO_ETYPE);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "string column"));
    assert_int_equal(dqo_group_add_agg(g, DQO_AGG_SUM, NULL, NULL), DQO_EINVAL);
    assert_int_equal(dqo_group_add_agg(g, DQO_AGG_COUNT_STAR, "a", NULL),
                     DQO_EINVAL);
    assert_int_equal(dqo_group_set_kernel(g, "quantum"), DQO_EINVAL);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), "'quantum'"));
    dqo_table *r = (dqo_table *)&r;
    assert_int_equal(dqo_group_run(g, &r), DQO_EINVAL); /* no key */
    assert_null(r);
    CHECK_OK(ctx, dqo_group_add_agg(g, DQO_AGG_COUNT, "s", NULL));
    CHECK_OK(ctx, dqo_group_add_key(g, "s"));
    assert_int_equal(dqo_group_add_key(g, "s"), DQO_EINVAL);
    CHECK_OK(ctx, dqo_group_run(g, &r));
    assert_int_equal(dqo_table_rows(r), 3); /* x, NULL, y */
    dqo_table_destroy(r);
    dqo_group_destroy(g);
    dqo_table_destroy(t);
    dqo_ctx_destroy(ctx);
}

/* ------------------------------------------------------ reference grouping */

/* The key of row i of t as text (columns cols), the reference's group id. */
static void row_key(const dqo_table *t, const int *cols, int n, uint64_t i,
                    char *buf, size_t len)
{
    size_t used = 0;
    for (int c = 0; c < n; c++) {
        char cell[128];
        assert_int_equal(dqo_table_format_cell(t, cols[c], i, cell, sizeof cell),
                         DQO_OK);
        /* SQL groups -0.0 with 0.0. */
        if (strcmp(cell, "-0") == 0)
            strcpy(cell, "0");
        used += (size_t)snprintf(buf + used, len - used, "%s\x1f", cell);
    }
}

static double cell_num(const dqo_table *t, int col, uint64_t i)
{
    char b[64];
    assert_int_equal(dqo_table_format_cell(t, col, i, b, sizeof b), DQO_OK);
    return strtod(b, NULL);
}

typedef struct qagg {
    dqo_agg agg;
    const char *col;
} qagg;

/* Runs the grouping with `kernel` and checks every group against a naive
 * scan of the input. Returns the group count. */
static uint64_t check_group(dqo_ctx *ctx, const dqo_table *t,
                            const char *const *keys, int nkeys,
                            const qagg *aggs, int naggs, const char *kernel)
{
    dqo_group *g;
    CHECK_OK(ctx, dqo_group_create(ctx, t, &g));
    int kcols[8], rkcols[8];
    for (int i = 0; i < nkeys; i++) {
        CHECK_OK(ctx, dqo_group_add_key(g, keys[i]));
        CHECK_OK(ctx, dqo_table_column_index(ctx, t, keys[i], &kcols[i]));
        rkcols[i] = i;
    }
    for (int i = 0; i < naggs; i++)
        CHECK_OK(ctx, dqo_group_add_agg(g, aggs[i].agg, aggs[i].col, NULL));
    CHECK_OK(ctx, dqo_group_set_kernel(g, kernel));
    dqo_table *r;
    dqo_status s = dqo_group_run(g, &r);
    if (s != DQO_OK)
        fail_msg("kernel %s: %s [seed %llu]", kernel, dqo_ctx_errmsg(ctx),
                 (unsigned long long)seed);
    uint64_t rows = dqo_table_rows(t), groups = dqo_table_rows(r);
    assert_int_equal(dqo_table_ncols(r), nkeys + naggs);
    /* Map every input row to its result group by the key text. */
    uint64_t *gid = malloc((rows + 1) * sizeof *gid);
    char (*gk)[256] = malloc((groups + 1) * sizeof *gk);
    for (uint64_t j = 0; j < groups; j++) {
        row_key(r, rkcols, nkeys, j, gk[j], sizeof gk[j]);
        for (uint64_t k = 0; k < j; k++)
            if (strcmp(gk[j], gk[k]) == 0)
                fail_msg("kernel %s: group '%s' appears twice [seed %llu]",
                         kernel, gk[j], (unsigned long long)seed);
    }
    for (uint64_t i = 0; i < rows; i++) {
        char key[256];
        row_key(t, kcols, nkeys, i, key, sizeof key);
        gid[i] = UINT64_MAX;
        for (uint64_t j = 0; j < groups; j++)
            if (strcmp(key, gk[j]) == 0)
                gid[i] = j;
        if (gid[i] == UINT64_MAX)
            fail_msg("kernel %s: row %llu key '%s' has no group [seed %llu]",
                     kernel, (unsigned long long)i, key,
                     (unsigned long long)seed);
    }
    for (int a = 0; a < naggs; a++) {
        int vcol = -1;
        if (aggs[a].col != NULL)
            CHECK_OK(ctx, dqo_table_column_index(ctx, t, aggs[a].col, &vcol));
        for (uint64_t j = 0; j < groups; j++) {
            uint64_t cnt = 0, nval = 0;
            long double sum = 0;
            double mn = 0, mx = 0;
            for (uint64_t i = 0; i < rows; i++) {
                if (gid[i] != j)
                    continue;
                cnt++;
                if (vcol < 0 || dqo_table_is_null(t, vcol, i))
                    continue;
                double v = dqo_table_column_type(t, vcol) == DQO_TYPE_STR
                               ? 0
                               : cell_num(t, vcol, i);
                if (nval == 0 || v < mn)
                    mn = v;
                if (nval == 0 || v > mx)
                    mx = v;
                sum += v;
                nval++;
            }
            int rc = nkeys + a;
            char got[128];
            CHECK_OK(ctx, dqo_table_format_cell(r, rc, j, got, sizeof got));
            double expect;
            bool null_expected = false;
            switch (aggs[a].agg) {
            case DQO_AGG_COUNT_STAR: expect = (double)cnt; break;
            case DQO_AGG_COUNT: expect = (double)nval; break;
            case DQO_AGG_SUM: expect = (double)sum; null_expected = nval == 0; break;
            case DQO_AGG_MIN: expect = mn; null_expected = nval == 0; break;
            case DQO_AGG_MAX: expect = mx; null_expected = nval == 0; break;
            default:
                expect = nval ? (double)(sum / nval) : 0;
                null_expected = nval == 0;
            }
            if (null_expected) {
                if (!dqo_table_is_null(r, rc, j))
                    fail_msg("kernel %s: %s(%s) of group '%s' = %s, expected "
                             "NULL [seed %llu]",
                             kernel, dqo_agg_name(aggs[a].agg), aggs[a].col,
                             gk[j], got, (unsigned long long)seed);
                continue;
            }
            double v = strtod(got, NULL);
            double tol = 1e-9 * (1 + (expect < 0 ? -expect : expect));
            if (dqo_table_is_null(r, rc, j) || v - expect > tol ||
                expect - v > tol)
                fail_msg("kernel %s: %s(%s) of group '%s' = %s, expected %.17g "
                         "[seed %llu]",
                         kernel, dqo_agg_name(aggs[a].agg),
                         aggs[a].col ? aggs[a].col : "*", gk[j], got, expect,
                         (unsigned long long)seed);
        }
    }
    free(gid);
    free(gk);
    dqo_table_destroy(r);
    dqo_group_destroy(g);
    return groups;
}

static const char *const kernels[] = {"auto", "hg", "og", "sog", "bsg",
                                      "radix", "sphg"};
#define NKERNELS (sizeof kernels / sizeof kernels[0])

/* A table of every column type, NULLs in some, keys of several shapes. */
static dqo_table *mixed_table(dqo_ctx *ctx, uint64_t n, int distinct)
{
    dqo_table *t;
    CHECK_OK(ctx, dqo_table_create(ctx, &t));
    uint32_t *u = malloc(n * sizeof *u);
    int32_t *i32 = malloc(n * sizeof *i32);
    int64_t *i64 = malloc(n * sizeof *i64), *wide = malloc(n * sizeof *wide);
    double *f = malloc(n * sizeof *f), *fk = malloc(n * sizeof *fk);
    uint8_t *valid = malloc(n), *kvalid = malloc(n);
    const char **s = malloc(n * sizeof *s);
    static const char *const words[] = {"alpha", "beta", "gamma", "delta",
                                        "", "eps, with comma"};
    static const int64_t wides[] = {INT64_MIN, INT64_MAX, 0, -1, 42};
    for (uint64_t r = 0; r < n; r++) {
        u[r] = (uint32_t)(rnd() % (uint64_t)distinct) * 7u;
        i32[r] = (int32_t)(rnd() % 2001) - 1000;
        i64[r] = (int64_t)(rnd() % 1000000) - 500000;
        wide[r] = wides[rnd() % 5];
        f[r] = (double)(int64_t)(rnd() % 2000 - 1000) / 8.0;
        fk[r] = (rnd() % 3 == 0) ? -0.0 : (double)(rnd() % 4) - 1.5;
        valid[r] = rnd() % 5 != 0;
        kvalid[r] = rnd() % 7 != 0;
        s[r] = words[rnd() % 6];
    }
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "u", DQO_TYPE_U32, u, NULL, n, DQO_COPY));
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "i32", DQO_TYPE_I32, i32, NULL, n, DQO_COPY));
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "i64", DQO_TYPE_I64, i64, valid, n, DQO_COPY));
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "wide", DQO_TYPE_I64, wide, NULL, n, DQO_COPY));
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "f", DQO_TYPE_F64, f, valid, n, DQO_COPY));
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "fk", DQO_TYPE_F64, fk, NULL, n, DQO_COPY));
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "nk", DQO_TYPE_I32, i32, kvalid, n, DQO_COPY));
    CHECK_OK(ctx, dqo_table_add_strings(ctx, t, "s", s, n));
    free(u); free(i32); free(i64); free(wide); free(f); free(fk);
    free(valid); free(kvalid); free(s);
    return t;
}

static const qagg all_aggs[] = {
    {DQO_AGG_COUNT_STAR, NULL}, {DQO_AGG_COUNT, "i64"}, {DQO_AGG_SUM, "i64"},
    {DQO_AGG_SUM, "i32"},       {DQO_AGG_SUM, "f"},     {DQO_AGG_MIN, "u"},
    {DQO_AGG_MAX, "i32"},       {DQO_AGG_MIN, "f"},     {DQO_AGG_MAX, "i64"},
    {DQO_AGG_AVG, "i32"},       {DQO_AGG_AVG, "f"},     {DQO_AGG_COUNT, "s"}};
#define NALL (int)(sizeof all_aggs / sizeof all_aggs[0])

static void test_group_key_shapes(void **state)
{
    (void)state;
    rng_g.s = seed;
    dqo_ctx *ctx;
    CHECK_OK(NULL, dqo_ctx_create(&ctx));
    CHECK_OK(ctx, dqo_ctx_set_threads(ctx, 3));
    dqo_table *t = mixed_table(ctx, 700, 40);
    static const char *const shapes[][3] = {
        {"u"}, {"i32"}, {"s"}, {"wide"}, {"fk"}, {"nk"}, {"i64"},
        {"u", "s"}, {"s", "nk", "fk"}, {"wide", "i64", "u"}};
    static const int nshape[] = {1, 1, 1, 1, 1, 1, 1, 2, 3, 3};
    for (size_t sh = 0; sh < sizeof nshape / sizeof nshape[0]; sh++) {
        uint64_t groups0 = 0;
        for (size_t k = 0; k < NKERNELS; k++) {
            /* sphg refuses key ranges beyond its array limit. */
            if (strcmp(kernels[k], "sphg") == 0 && strcmp(shapes[sh][0], "wide") == 0)
                continue;
            uint64_t gr = check_group(ctx, t, shapes[sh], nshape[sh], all_aggs,
                                      NALL, kernels[k]);
            if (k == 0)
                groups0 = gr;
            assert_int_equal(gr, groups0);
        }
    }
    dqo_table_destroy(t);
    dqo_ctx_destroy(ctx);
}

/* Seven wide i64 key columns with ~500 distinct values each need 7 x 9 = 63+
 * bits after densifying: the key is packed only after merging pairs. */
static void test_group_merged_key(void **state)
{
    (void)state;
    rng_g.s = seed + 1;
    dqo_ctx *ctx;
    CHECK_OK(NULL, dqo_ctx_create(&ctx));
    dqo_table *t;
    CHECK_OK(ctx, dqo_table_create(ctx, &t));
    enum { N = 1200, C = 8 };
    static const char *const names[C] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    int64_t *v = malloc(N * sizeof *v);
    for (int c = 0; c < C; c++) {
        for (int r = 0; r < N; r++)
            v[r] = (int64_t)(rnd() % 600) * (INT64_MAX / 700) * (r % 2 ? 1 : -1);
        CHECK_OK(ctx, dqo_table_add_column(ctx, t, names[c], DQO_TYPE_I64, v,
                                           NULL, N, DQO_COPY));
    }
    free(v);
    qagg aggs[] = {{DQO_AGG_COUNT_STAR, NULL}, {DQO_AGG_MIN, "a"}};
    assert_int_equal(check_group(ctx, t, names, C, aggs, 2, "auto"), N);
    assert_int_equal(check_group(ctx, t, names, C, aggs, 2, "sog"), N);
    dqo_table_destroy(t);
    dqo_ctx_destroy(ctx);
}

static void test_group_overflow(void **state)
{
    (void)state;
    dqo_ctx *ctx;
    CHECK_OK(NULL, dqo_ctx_create(&ctx));
    dqo_table *t;
    CHECK_OK(ctx, dqo_table_create(ctx, &t));
    int32_t k[4] = {1, 1, 2, 2};
    int64_t v[4] = {INT64_MAX, 1, INT64_MAX, -1};
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "k", DQO_TYPE_I32, k, NULL, 4, DQO_BORROW));
    CHECK_OK(ctx, dqo_table_add_column(ctx, t, "v", DQO_TYPE_I64, v, NULL, 4, DQO_BORROW));
    for (size_t i = 0; i < NKERNELS; i++) {
        dqo_group *g;
        CHECK_OK(ctx, dqo_group_create(ctx, t, &g));
        CHECK_OK(ctx, dqo_group_add_key(g, "k"));
        CHECK_OK(ctx, dqo_group_add_agg(g, DQO_AGG_SUM, "v", "total"));
        CHECK_OK(ctx, dqo_group_set_kernel(g, kernels[i]));
        dqo_table *r = NULL;
        dqo_status s = dqo_group_run(g, &r);
        if (s != DQO_EOVERFLOW)
            fail_msg("kernel %s: expected DQO_EOVERFLOW, got %s (%s)",
                     kernels[i], dqo_status_name(s), dqo_ctx_errmsg(ctx));
        assert_null(r);
        assert_non_null(strstr(dqo_ctx_errmsg(ctx), "total"));
        dqo_group_destroy(g);
    }
    dqo_table_destroy(t);
    dqo_ctx_destroy(ctx);
}

static void test_dir_roundtrip(void **state)
{
    (void)state;
    dqo_ctx *ctx;
    CHECK_OK(NULL, dqo_ctx_create(&ctx));
    dqo_table *t, *u;
    CHECK_OK(ctx, dqo_gen_grouping(ctx, 5000, 100, 0, 1, 7, &t));
    char dir[] = "/tmp/dqo-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    CHECK_OK(ctx, dqo_table_write_dir(ctx, t, dir));
    CHECK_OK(ctx, dqo_table_load_dir(ctx, dir, &u));
    assert_int_equal(dqo_table_rows(u), 5000);
    const uint32_t *a, *b;
    CHECK_OK(ctx, dqo_table_column_u32(ctx, t, 0, &a));
    CHECK_OK(ctx, dqo_table_column_u32(ctx, u, 0, &b));
    assert_memory_equal(a, b, 5000 * sizeof *a);
    dqo_column_stats st;
    CHECK_OK(ctx, dqo_table_column_stats(ctx, u, 0, &st));
    assert_int_equal(st.rows, 5000);
    assert_true(st.distinct >= 95 && st.distinct <= 100);
    dqo_table_destroy(u);
    char path[256];
    snprintf(path, sizeof path, "%s/k.u32", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/v.i32", dir);
    unlink(path);
    rmdir(dir);
    assert_int_equal(dqo_table_load_dir(ctx, dir, &u), DQO_EIO);
    assert_non_null(strstr(dqo_ctx_errmsg(ctx), dir));
    assert_null(u);
    dqo_table_destroy(t);
    dqo_ctx_destroy(ctx);
}

/* Fails the n-th allocation for n = 1, 2, ... through a whole query: each
 * call must fail cleanly with DQO_ENOMEM and leave nothing allocated. */
static void test_alloc_failures(void **state)
{
    (void)state;
    long base = mem_outstanding();
    int succeeded = 0;
    for (long n = 1; n < 5000 && !succeeded; n++) {
        dqo_ctx *ctx = NULL;
        dqo_table *t = NULL, *r = NULL;
        dqo_group *g = NULL;
        mem_fail_after(n);
        dqo_status s = dqo_ctx_create(&ctx);
        if (s == DQO_OK)
            s = dqo_table_create(ctx, &t);
        const char *strs[6] = {"a", "b", NULL, "a", "c", "b"};
        int32_t k[6] = {3, 1, 3, 2, 1, 3};
        int64_t v[6] = {1, 2, 3, 4, 5, 6};
        uint8_t valid[6] = {1, 1, 0, 1, 1, 1};
        if (s == DQO_OK)
            s = dqo_table_add_column(ctx, t, "k", DQO_TYPE_I32, k, NULL, 6, DQO_COPY);
        if (s == DQO_OK)
            s = dqo_table_add_column(ctx, t, "v", DQO_TYPE_I64, v, valid, 6, DQO_COPY);
        if (s == DQO_OK)
            s = dqo_table_add_strings(ctx, t, "s", strs, 6);
        if (s == DQO_OK)
            s = dqo_group_create(ctx, t, &g);
        if (s == DQO_OK)
            s = dqo_group_add_key(g, "s");
        if (s == DQO_OK)
            s = dqo_group_add_key(g, "k");
        if (s == DQO_OK)
            s = dqo_group_add_agg(g, DQO_AGG_AVG, "v", NULL);
        if (s == DQO_OK)
            s = dqo_group_add_agg(g, DQO_AGG_COUNT_STAR, NULL, NULL);
        if (s == DQO_OK)
            s = dqo_group_run(g, &r);
        if (s == DQO_OK) {
            assert_int_equal(dqo_table_rows(r), 6);
            /* Success with the hook still armed means every allocation
             * of the query came before the n-th: all paths were tried. */
            succeeded = 1;
        } else if (s != DQO_ENOMEM) {
            fail_msg("allocation %ld failed: expected DQO_ENOMEM, got %s (%s)",
                     n, dqo_status_name(s), dqo_ctx_errmsg(ctx));
        }
        mem_fail_after(0);
        dqo_table_destroy(r);
        dqo_group_destroy(g);
        dqo_table_destroy(t);
        dqo_ctx_destroy(ctx);
        if (mem_outstanding() != base)
            fail_msg("allocation %ld: %ld blocks leaked", n,
                     mem_outstanding() - base);
    }
    assert_true(succeeded);
}

int main(void)
{
    const char *env = getenv("DQO_TEST_SEED");
    if (env != NULL)
        seed = strtoull(env, NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_null_handles),
        cmocka_unit_test(test_table_errors),
        cmocka_unit_test(test_group_key_shapes),
        cmocka_unit_test(test_group_merged_key),
        cmocka_unit_test(test_group_overflow),
        cmocka_unit_test(test_dir_roundtrip),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
