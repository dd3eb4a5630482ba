/*
 * test_cost.c - the calibrated cost model and real planning (planner/
 * cost.c, dp.c, explain.c) on a synthetic machine: a 16-thread cpu with the
 * kernel points of bench/results/profile_device.txt and a fake OpenCL
 * device with the H100's calibration. Checks the grouping choice (sorted
 * -> og, dense small -> sphg, big sparse -> radix or hg, resident huge ->
 * device, tiny host input -> cpu, cpu only -> never a device), that cost
 * grows with rows, the plan shapes of 1-3 table queries (filter pushdown,
 * residual filter, ORDER/LIMIT on top, STATS for unknown keys, a why on
 * every node), and MAV reuse.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/backend.h"
#include "planner/mav.h"
#include "planner/plan.h"

static plan_model model;
static plan_settings settings;
static plan_machine machine = {16, 48 << 10, 2 << 20, 32 << 20};

static void add_kern(plan_calib *c, const char *k, uint64_t groups, double ns)
{
    plan_kcost *p = &c->kern[c->nkern++];
    snprintf(p->kernel, sizeof p->kernel, "%s", k);
    p->rows = 4194304;
    p->groups = groups;
    p->threads = 16;
    p->ns_per_row = ns;
}

static int setup(void **state)
{
    (void)state;
    memset(&model, 0, sizeof model);
    plan_settings_default(&settings);
    model.nloc = 2;
    plan_location *cpu = &model.loc[0];
    snprintf(cpu->id, sizeof cpu->id, "cpu");
    cpu->kind = PLAN_LOC_CPU;
    cpu->cores = 16;
    cpu->l1d = 48 << 10;
    cpu->l2 = 2 << 20;
    cpu->l3 = 32 << 20;
    plan_calib *c = &cpu->calib;
    c->valid = true;
    c->nbw = 2;
    c->bw_threads[0] = 1, c->bw_gbs[0] = 9.4;
    c->bw_threads[1] = 16, c->bw_gbs[1] = 46.4;
    /* bench/results/profile_device.txt, cpu at 1K and 1M groups. */
    static const struct { const char *k; double a, b; } pts[] = {
        {"hg", 0.47488, 6.39307}, {"sphg", 0.11753, 6.74999},
        {"bsg", 1.90166, 8.80272}, {"radix", 0.43359, 1.57954},
        {"og", 0.04268, 0.14701}, {"sog", 1.21523, 2.08204}};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        add_kern(c, pts[i].k, 1000, pts[i].a);
        add_kern(c, pts[i].k, 1000000, pts[i].b);
    }
    plan_location *cl = &model.loc[1];
    snprintf(cl->id, sizeof cl->id, "cl:0");
    cl->kind = PLAN_LOC_CL;
    cl->cores = 132;
    cl->l1d = 48 << 10;
    cl->l2 = 50 << 20;
    cl->link = PLAN_LINK_PCIE;
    plan_calib *g = &cl->calib;
    g->valid = true;
    g->nbw = 1;
    g->bw_threads[0] = 132, g->bw_gbs[0] = 2997.0;
    g->atomic_private_mops = 80776.651;
    g->atomic_shared_mops = 43235.462;
    g->h2d_pageable_gbs = 6.6563, g->h2d_pinned_gbs = 53.7236;
    g->d2h_pageable_gbs = 11.5230, g->d2h_pinned_gbs = 54.6804;
    g->launch_us = 15.084;
    return 0;
}

static plan_env env_of(bool device)
{
    plan_env e = {.model = &model, .machine = &machine, .settings = &settings,
                  .cost_model = PLAN_COST_CALIBRATED, .threads = 16};
    e.nloc = device ? 2 : 1;
    e.loc[0] = 0;
    e.loc[1] = 1;
    return e;
}

static plan_props key(uint64_t rows, uint64_t groups, bool dense, bool sorted,
                      int location)
{
    plan_props k = {.rows = rows, .ndv = groups, .min = 0,
                    .max = dense ? (int64_t)groups - 1 : INT64_C(4294967295),
                    .sorted = sorted, .dense = dense, .location = location};
    return k;
}

static plan_group_pick pick(bool device, plan_props k)
{
    plan_env e = env_of(device);
    plan_group_pick p;
    assert_int_equal(plan_group_choose(&e, &k, 1, 8, false, &p), DQO_OK);
    assert_true(p.cost > 0);
    assert_non_null(strstr(p.choice.why, "cheapest of"));
    return p;
}

static void test_choices(void **state)
{
    (void)state;
    plan_group_pick p = pick(false, key(4194304, 1000, false, true, -1));
    assert_int_equal(p.choice.g.kernel, GRP_KERNEL_ORDER);
    p = pick(false, key(4194304, 1000, true, false, -1));
    assert_int_equal(p.choice.g.kernel, GRP_KERNEL_DIRECT);
    p = pick(false, key(4194304, 1000000, false, false, -1));
    assert_true(p.choice.g.kernel == GRP_KERNEL_RADIX ||
                p.choice.g.kernel == GRP_KERNEL_HASH);
    /* 1G rows already on the device: no transfer, the device wins. */
    p = pick(true, key(UINT64_C(1) << 30, 1000000, true, false, 1));
    assert_int_equal(p.location, 1);
    assert_int_equal(p.choice.g.location, 1);
    assert_non_null(strstr(p.choice.why, "cl:0"));
    /* 1000 rows in host memory: the transfer and launches do not pay. */
    p = pick(true, key(1000, 100, true, false, -1));
    assert_int_equal(p.location, 0);
    /* bsg never runs on a device; sphg not on sparse keys. */
    plan_env e = env_of(true);
    plan_props k = key(1 << 20, 1000, false, false, 1);
    assert_true(plan_group_cost(&e, GRP_KERNEL_BSEARCH, 1, &k, 1, 8, false) < 0);
    assert_true(plan_group_cost(&e, GRP_KERNEL_DIRECT, 0, &k, 1, 8, false) < 0);
    assert_true(plan_group_cost(&e, GRP_KERNEL_ORDER, 0, &k, 1, 8, false) < 0);
}

static void test_cpu_only_and_sqo(void **state)
{
    (void)state;
    srand(7);
    for (int i = 0; i < 200; i++) {
        uint64_t rows = (uint64_t)1 << (rand() % 34);
        uint64_t groups = 1 + (uint64_t)rand() % (rows < 100000000 ? rows : 100000000);
        plan_props k = key(rows, groups, rand() % 2, rand() % 2,
                           rand() % 2 ? 1 : -1);
        plan_group_pick p = pick(false, k);
        assert_int_equal(p.location, 0);
        plan_env e = env_of(true);
        e.sqo = true;
        assert_int_equal(plan_group_choose(&e, &k, 1, 8, false, &p), DQO_OK);
        assert_int_equal(p.location, 0);
        assert_int_not_equal(p.choice.g.kernel, GRP_KERNEL_DIRECT);
        assert_int_not_equal(p.choice.g.kernel, GRP_KERNEL_BSEARCH);
    }
}

static void test_monotone(void **state)
{
    (void)state;
    plan_env e = env_of(true);
    for (int loc = 0; loc < 2; loc++)
        for (int kn = 0; kn < GRP_KERNEL_COUNT_; kn++)
            for (uint64_t rows = 1024; rows < (UINT64_C(1) << 32); rows *= 4) {
                plan_props a = key(rows, 1000, true, kn == GRP_KERNEL_ORDER, -1);
                plan_props b = a;
                b.rows *= 4;
                double ca = plan_group_cost(&e, kn, loc, &a, 1, 8, false);
                double cb = plan_group_cost(&e, kn, loc, &b, 1, 8, false);
                if (ca < 0)
                    continue;
                if (!(cb > ca))
                    fail_msg("%s at %d: %llu rows %.4g ms, 4x rows %.4g ms",
                             grp_kernel_name(kn), loc,
                             (unsigned long long)rows, ca, cb);
            }
    /* Sanity with bench/results/gpu.md: 100M resident rows, 1K dense groups
     * took 0.46-0.61 ms on the H100; 1M groups 2.25 ms. */
    plan_props k = key(100000000, 1000, true, false, 1);
    double c = plan_group_cost(&e, GRP_KERNEL_DIRECT, 1, &k, 1, 8, false);
    assert_true(c > 0.1 && c < 3.0);
    k = key(100000000, 1000000, true, false, 1);
    c = plan_group_cost(&e, GRP_KERNEL_DIRECT, 1, &k, 1, 8, false);
    assert_true(c > 0.5 && c < 10.0);
}

/* ------------------------------------------------------- plan_query */

typedef struct q3 {
    lquery q;
    lexpr c[3][2];       /* T_t.col0 (key), T_t.col1 */
    lexpr lit, lit2, pred, pred2, cross, cnt;
    lexpr *group[1];
    lq_item items[2];
    lq_order order[1];
    plan_col_props cols[3][2];
    plan_table_props tp[3];
} q3;

static char *names[3] = {"T0", "T1", "T2"};
static char iname[] = "x";

static void q3_build(q3 *b, int ntables, bool where, bool cross)
{
    memset(b, 0, sizeof *b);
    lquery *q = &b->q;
    q->ntables = ntables;
    static const uint64_t rows[3] = {1000000, 50000, 2000};
    for (int t = 0; t < ntables; t++) {
        q->tables[t].name = q->tables[t].alias = names[t];
        for (int c = 0; c < 2; c++) {
            b->c[t][c] = (lexpr){.kind = LX_COL, .type = DQO_TYPE_I64,
                                 .table = t, .col = c};
            uint64_t ndv = c == 0 ? rows[t] / (t == 0 ? 20 : 1) : 100;
            b->cols[t][c] = (plan_col_props){
                .known = true, .cached = true, .type = DQO_TYPE_I64,
                .stats = {.rows = rows[t], .distinct = ndv, .min = 0,
                          .max = (int64_t)ndv - 1, .runs = rows[t],
                          .order = DQO_ORDER_NONE}};
        }
        b->tp[t] = (plan_table_props){.rows = rows[t], .ncols = 2,
                                      .cols = b->cols[t], .location = -1,
                                      .row_bytes = 16};
    }
    /* A chain: T0.col0 = T1.col0, T1.col1 = T2.col0. */
    for (int t = 1; t < ntables; t++) {
        q->joins[t].nkeys = 1;
        q->joins[t].left[0] = &b->c[t - 1][t == 1 ? 0 : 1];
        q->joins[t].right[0] = &b->c[t][0];
    }
    b->lit = (lexpr){.kind = LX_INT, .type = DQO_TYPE_I64, .ival = 5};
    b->pred = (lexpr){.kind = LX_BIN, .op = LX_LT, .type = LX_TYPE_BOOL,
                      .a = &b->c[0][1], .b = &b->lit};
    b->cross = (lexpr){.kind = LX_BIN, .op = LX_NE, .type = LX_TYPE_BOOL,
                       .a = &b->c[0][1], .b = &b->c[ntables - 1][1]};
    b->pred2 = (lexpr){.kind = LX_BIN, .op = LX_AND, .type = LX_TYPE_BOOL,
                       .a = &b->pred, .b = &b->cross};
    q->where = where ? (cross && ntables > 1 ? &b->pred2 : &b->pred) : NULL;
    b->cnt = (lexpr){.kind = LX_AGG, .type = DQO_TYPE_I64,
                     .agg = DQO_AGG_COUNT_STAR};
    b->group[0] = &b->c[ntables - 1][1];
    q->ngroup = 1;
    q->group = b->group;
    q->aggregate = true;
    b->items[0] = (lq_item){.e = b->group[0], .name = iname};
    b->items[1] = (lq_item){.e = &b->cnt, .name = iname};
    q->nitems = 2;
    q->items = b->items;
    b->order[0] = (lq_order){.item = 1, .desc = true};
    q->norder = 1;
    q->order = b->order;
    q->limit = 10;
}

static int count_op(const plan_node *n, plan_op op)
{
    if (n == NULL)
        return 0;
    int c = n->op == op;
    for (int i = 0; i < n->nin; i++)
        c += count_op(n->in[i], op);
    return c;
}

static void all_why(const plan_node *n)
{
    if (n == NULL)
        return;
    if (n->why[0] == '\0')
        fail_msg("node op %d has no why", n->op);
    assert_true(n->measured_ms < 0);
    assert_true(n->total >= n->cost - 1e-12);
    for (int i = 0; i < n->nin; i++)
        all_why(n->in[i]);
}

static plan_result *plan3(q3 *b, bool device, mav_cache *mav)
{
    plan_env e = env_of(device);
    e.mav = mav;
    plan_result *r = NULL;
    char err[256];
    dqo_status st = plan_query(&e, &b->q, b->tp, &r, err, sizeof err);
    if (st != DQO_OK)
        fail_msg("plan_query: %s", err);
    all_why(r->root);
    return r;
}

static void test_shapes(void **state)
{
    (void)state;
    for (int nt = 1; nt <= 3; nt++) {
        q3 b;
        q3_build(&b, nt, true, true);
        plan_result *r = plan3(&b, true, NULL);
        const plan_node *n = r->root;
        assert_int_equal(n->op, PLAN_OP_LIMIT);
        assert_int_equal(n->out.rows, 10);
        assert_int_equal(n->in[0]->op, PLAN_OP_ORDER);
        assert_int_equal(n->in[0]->in[0]->op, PLAN_OP_PROJECT);
        assert_int_equal(count_op(n, PLAN_OP_GROUP), 1);
        assert_int_equal(count_op(n, PLAN_OP_JOIN), nt - 1);
        assert_int_equal(count_op(n, PLAN_OP_SCAN), nt);
        /* The single-table conjunct sits right above T0's scan; the
         * cross-table one above the joins. */
        assert_int_equal(count_op(n, PLAN_OP_FILTER), nt > 1 ? 2 : 1);
        char *t = plan_explain(r, &b.q, true);
        assert_non_null(strstr(t, "calibrated cost model"));
        assert_non_null(strstr(t, "FILTER"));
        char *dp = plan_dp_table_format(r);
        assert_non_null(strstr(dp, "\u0393("));
        free(dp);
        free(t);
        /* Find the pushed filter: its input is a SCAN of T0. */
        bool pushed = false;
        const plan_node *stack[64];
        int sp = 0;
        stack[sp++] = n;
        while (sp > 0) {
            const plan_node *x = stack[--sp];
            if (x->op == PLAN_OP_FILTER && x->in[0]->op == PLAN_OP_SCAN &&
                x->in[0]->table == 0) {
                pushed = true;
                assert_true(x->out.rows < b.tp[0].rows);
            }
            for (int i = 0; i < x->nin && sp < 64; i++)
                stack[sp++] = x->in[i];
        }
        assert_true(pushed);
        plan_result_free(r);
    }
}

static void test_stats_node_and_global(void **state)
{
    (void)state;
    q3 b;
    q3_build(&b, 2, false, false);
    b.cols[1][0].known = false; /* T1's join key never measured */
    b.q.ngroup = 0;             /* one global group */
    b.q.norder = 0;
    b.q.limit = -1;
    plan_result *r = plan3(&b, false, NULL);
    assert_int_equal(count_op(r->root, PLAN_OP_STATS), 1);
    assert_int_equal(r->root->op, PLAN_OP_PROJECT);
    assert_int_equal(r->root->in[0]->op, PLAN_OP_GROUP);
    assert_int_equal(r->root->in[0]->out.rows, 1);
    plan_result_free(r);
}

static void collect(const plan_node *n, char *buf, size_t len)
{
    if (n == NULL)
        return;
    for (int i = 0; i < n->nin; i++)
        collect(n->in[i], buf, len);
    if (n->op == PLAN_OP_JOIN || n->op == PLAN_OP_GROUP) {
        size_t o = strlen(buf);
        snprintf(buf + o, len - o, "%d:%d@%d ", n->op, n->alg, n->location);
    }
}

static void test_mav(void **state)
{
    (void)state;
    char warn[128];
    mav_cache *m = mav_open(NULL, warn, sizeof warn);
    assert_non_null(m);
    q3 b;
    q3_build(&b, 3, true, false);
    plan_result *r1 = plan3(&b, true, m);
    assert_false(r1->mav_hit);
    assert_int_equal(mav_count(m), 1);
    plan_result *r2 = plan3(&b, true, m);
    assert_true(r2->mav_hit);
    assert_string_equal(r1->mav_key, r2->mav_key);
    char a1[256] = "", a2[256] = "";
    collect(r1->root, a1, sizeof a1);
    collect(r2->root, a2, sizeof a2);
    assert_string_equal(a1, a2);
    assert_true(fabs(r1->cost - r2->cost) <= 1e-9 * r1->cost);
    char *t = plan_explain(r2, &b.q, false);
    assert_non_null(strstr(t, "MAV hit: "));
    free(t);
    plan_result_free(r1);
    plan_result_free(r2);
    mav_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_choices, setup),
        cmocka_unit_test_setup(test_cpu_only_and_sqo, setup),
        cmocka_unit_test_setup(test_monotone, setup),
        cmocka_unit_test_setup(test_shapes, setup),
        cmocka_unit_test_setup(test_stats_node_and_global, setup),
        cmocka_unit_test_setup(test_mav, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
