/*
 * test_rule.c - the kernel rule's decisions (planner/rule.c) under synthetic
 * statistics and machines, without running anything: sorted and clustered
 * keys go order-based, dense ranges that fit the LLC go to the direct array,
 * groups that fit L2 go to a hash table, and the rest are radix-partitioned.
 * Thresholds are tested exactly at and one past their values. Also the same
 * decisions through the public API's explain text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/backend.h"
#include "planner/planner.h"

static const plan_machine server = {16, 48 << 10, 2 << 20, 32 << 20};
static const plan_machine tiny = {1, 32 << 10, 256 << 10, 1 << 20};

static dqo_column_stats stats(uint64_t rows, uint64_t ndv, uint64_t runs,
                              int64_t min, int64_t max, dqo_order o)
{
    dqo_column_stats s = {.rows = rows, .runs = runs, .distinct = ndv,
                          .min = min, .max = max, .order = o};
    return s;
}

static int choose(const plan_machine *m, dqo_column_stats s, char *why)
{
    plan_settings ps;
    plan_settings_default(&ps);
    plan_choice c;
    plan_choose_group(&ps, m, &s, 1, &c);
    if (why != NULL)
        strcpy(why, c.why);
    return c.g.kernel;
}

static void test_order_first(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(choose(&server, stats(1000000, 1000, 1000, 0, 999,
                                           DQO_ORDER_ASC), why),
                     GRP_KERNEL_ORDER);
    assert_non_null(strstr(why, "sorted"));
    assert_int_equal(choose(&server, stats(1000000, 10, 10, 5, 5000000000LL,
                                           DQO_ORDER_DESC), NULL),
                     GRP_KERNEL_ORDER);
    /* Clustered but unsorted: runs within 5% of the distinct estimate. */
    assert_int_equal(choose(&server, stats(1000000, 1000, 1050, 0, 1 << 30,
                                           DQO_ORDER_NONE), why),
                     GRP_KERNEL_ORDER);
    assert_non_null(strstr(why, "clustered"));
    assert_int_not_equal(choose(&server, stats(1000000, 1000, 1051, 0, 999,
                                               DQO_ORDER_NONE), NULL),
                         GRP_KERNEL_ORDER);
}

static void test_dense(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(choose(&server, stats(100000000, 100000, 99000000, 0,
                                           99999, DQO_ORDER_NONE), why),
                     GRP_KERNEL_DIRECT);
    assert_non_null(strstr(why, "dense"));
    /* Density exactly at the threshold (0.25) is dense, below is not. */
    assert_int_equal(choose(&server, stats(10000000, 1000, 9000000, 0, 3999,
                                           DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_DIRECT);
    assert_int_not_equal(choose(&server, stats(10000000, 999, 9000000, 0, 3999,
                                               DQO_ORDER_NONE), NULL),
                         GRP_KERNEL_DIRECT);
    /* Range exactly at direct_max_range, with an L2 large enough. */
    plan_machine big = server;
    big.l2_bytes = UINT64_C(1) << 40;
    assert_int_equal(choose(&big, stats(100000000, 1 << 24, 99000000, 0,
                                        (1 << 24) - 1, DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_DIRECT);
    assert_int_not_equal(choose(&big, stats(100000000, 1 << 24, 99000000, 0,
                                            1 << 24, DQO_ORDER_NONE), NULL),
                         GRP_KERNEL_DIRECT);
    /* 1M and 10M dense groups need arrays far beyond 4 x L2: radix. */
    assert_int_equal(choose(&server, stats(100000000, 10000000, 99000000, 0,
                                           9999999, DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_RADIX);
    assert_int_equal(choose(&server, stats(100000000, 1000000, 99000000, 0,
                                           999999, DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_RADIX);
    /* 100K dense groups (2.3 MiB of 24-byte entries) stay direct; exactly
     * at 4 x L2 is direct, one slot more is not. */
    assert_int_equal(choose(&server, stats(100000000, 100000, 99000000, 0,
                                           99999, DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_DIRECT);
    const int64_t at = (int64_t)(4 * server.l2_bytes / 24);
    assert_int_equal(choose(&server, stats(100000000, (uint64_t)at, 99000000,
                                           0, at - 1, DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_DIRECT);
    assert_int_not_equal(choose(&server, stats(100000000, (uint64_t)at + 1,
                                               99000000, 0, at,
                                               DQO_ORDER_NONE), NULL),
                         GRP_KERNEL_DIRECT);
}

static void test_sparse(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(choose(&server, stats(100000000, 1000, 99000000, 7,
                                           4000000000LL, DQO_ORDER_NONE), why),
                     GRP_KERNEL_HASH);
    assert_non_null(strstr(why, "fits L2"));
    assert_int_equal(choose(&server, stats(100000000, 10000000, 99000000, 7,
                                           4000000000LL, DQO_ORDER_NONE), why),
                     GRP_KERNEL_RADIX);
    assert_non_null(strstr(why, "exceeds L2"));
    /* The same groups on a machine with a small L2 go to radix sooner. */
    assert_int_equal(choose(&server, stats(100000000, 20000, 99000000, 7,
                                           4000000000LL, DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_HASH);
    assert_int_equal(choose(&tiny, stats(100000000, 20000, 99000000, 7,
                                         4000000000LL, DQO_ORDER_NONE), NULL),
                     GRP_KERNEL_RADIX);
}

static void test_forced(void **state)
{
    (void)state;
    plan_choice c;
    for (int k = 0; k < GRP_KERNEL_COUNT_; k++) {
        plan_force_group(k, &c);
        assert_int_equal(c.g.kernel, k);
        assert_non_null(strstr(c.why, "forced"));
    }
    plan_force_group(GRP_KERNEL_BSEARCH, &c);
    assert_int_equal(c.g.index, PLAN_INDEX_SORTED_KEYS);
    plan_force_group(GRP_KERNEL_DIRECT, &c);
    assert_int_equal(c.g.part, PLAN_PART_DIRECT);
}

/* Through the API: the explain text names the kernel the rule picked. */
static void test_explain(void **state)
{
    (void)state;
    static const struct {
        int sorted, sparse;
        uint64_t groups;
        const char *kernel;
    } cases[] = {{1, 0, 100, "og on cpu: "}, {1, 1, 100, "og on cpu: "},
                 {0, 0, 1000, "sphg on cpu: "}, {0, 1, 100, "hg on cpu: "}};
    dqo_ctx *ctx;
    assert_int_equal(dqo_ctx_create(&ctx), DQO_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dqo_table *t, *r;
        dqo_group *g;
        assert_int_equal(dqo_gen_grouping(ctx, 200000, cases[i].groups,
                                          cases[i].sorted, cases[i].sparse, 3,
                                          &t),
                         DQO_OK);
        assert_int_equal(dqo_group_create(ctx, t, &g), DQO_OK);
        assert_int_equal(dqo_group_add_key(g, "k"), DQO_OK);
        assert_int_equal(dqo_group_add_agg(g, DQO_AGG_SUM, "v", NULL), DQO_OK);
        assert_int_equal(dqo_group_run(g, &r), DQO_OK);
        const char *ex = dqo_group_explain(g);
        if (strncmp(ex, cases[i].kernel, strlen(cases[i].kernel)) != 0)
            fail_msg("case %zu: expected %s..., explain says: %s", i,
                     cases[i].kernel, ex);
        assert_int_equal(dqo_table_rows(r), cases[i].groups);
        dqo_table_destroy(r);
        dqo_group_destroy(g);
        dqo_table_destroy(t);
    }
    dqo_ctx_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_first), cmocka_unit_test(test_dense),
        cmocka_unit_test(test_sparse), cmocka_unit_test(test_forced),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
